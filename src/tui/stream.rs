//! StreamPane: the conversation of the open path (or of the picked observation), client
//! and server in two colours and marked `>` / `<`, as ASCII text or a hex dump (`x`), with
//! gaps (bytes that were not captured) shown as gaps, never papered over.
//!
//! The stream is laid out into [`StreamLine`]s in `update` (when it loads, the format
//! changes or the pane is resized), so drawing only slices the visible lines. Every payload
//! byte goes through [`escape::payload_ascii`] or is written in hex: nothing raw reaches
//! the terminal.

use super::app::{App, Pane, PathState, StreamFormat};
use super::escape;
use super::model::{Side, StreamChunk, StreamView};
use super::paths::pane_block;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// What a laid-out line shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    Data(Side),
    Gap(Side),
    Note,
}

/// One line of the stream pane, ready to draw (ASCII-safe text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamLine {
    pub kind: LineKind,
    pub text: String,
}

fn marker(side: Side) -> &'static str {
    match side {
        Side::Client => "> ",
        Side::Server => "< ",
    }
}

/// Lays `view` out for a pane `width` columns wide.
pub fn layout(view: &StreamView, format: StreamFormat, width: usize) -> Vec<StreamLine> {
    let mut out = Vec::new();
    let text_width = width.saturating_sub(2).max(4);
    for c in &view.chunks {
        match c {
            StreamChunk::Data { side, offset, bytes } => match format {
                StreamFormat::Ascii => ascii_lines(*side, bytes, text_width, &mut out),
                StreamFormat::Hex => hex_lines(*side, *offset, bytes, &mut out),
            },
            StreamChunk::Gap { side, offset, len } => out.push(StreamLine {
                kind: LineKind::Gap(*side),
                text: format!(
                    "{}~~ gap: {len} bytes not captured ({} offset {offset}) ~~",
                    marker(*side),
                    match side {
                        Side::Client => "client",
                        Side::Server => "server",
                    }
                ),
            }),
        }
    }
    if view.truncated {
        out.push(StreamLine { kind: LineKind::Note, text: "... (more data: the view shows the first part)".into() });
    }
    if out.is_empty() {
        out.push(StreamLine { kind: LineKind::Note, text: "no payload".into() });
    }
    out
}

/// Text lines: split at LF (a CR before it is dropped), wrapped at `width`; other
/// non-printables are `.`.
fn ascii_lines(side: Side, bytes: &[u8], width: usize, out: &mut Vec<StreamLine>) {
    let mut pieces = bytes.split(|&b| b == b'\n').peekable();
    while let Some(piece) = pieces.next() {
        let last = pieces.peek().is_none();
        if last && piece.is_empty() {
            break; // the chunk ended with a newline
        }
        let piece = piece.strip_suffix(b"\r").unwrap_or(piece);
        let mut text = String::with_capacity(piece.len());
        escape::payload_ascii(piece, &mut text);
        if text.is_empty() {
            out.push(StreamLine { kind: LineKind::Data(side), text: marker(side).to_string() });
            continue;
        }
        // `text` is ASCII, so byte positions are character positions.
        let mut start = 0;
        while start < text.len() {
            let end = (start + width).min(text.len());
            out.push(StreamLine { kind: LineKind::Data(side), text: format!("{}{}", marker(side), &text[start..end]) });
            start = end;
        }
    }
}

/// Hex lines of 16 bytes: stream offset, hex pairs, ASCII.
fn hex_lines(side: Side, offset: u64, bytes: &[u8], out: &mut Vec<StreamLine>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let mut text = String::with_capacity(72);
        text.push_str(marker(side));
        text.push_str(&format!("{:08x} ", offset + 16 * i as u64));
        for (j, b) in chunk.iter().enumerate() {
            if j % 2 == 0 {
                text.push(' ');
            }
            text.push(char::from(HEX[usize::from(b >> 4)]));
            text.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        let used = chunk.len() * 2 + chunk.len().div_ceil(2);
        text.push_str(&" ".repeat(40 - used + 2));
        escape::payload_ascii(chunk, &mut text);
        out.push(StreamLine { kind: LineKind::Data(side), text });
    }
}

/// Colour of a side.
pub fn side_style(side: Side) -> Style {
    match side {
        Side::Client => Style::new().fg(Color::LightRed),
        Side::Server => Style::new().fg(Color::LightBlue),
    }
}

/// The conversation pane.
pub struct StreamPane<'a> {
    pub app: &'a App,
    pub path: &'a PathState,
}

impl StreamPane<'_> {
    pub fn render(&self, frame: &mut Frame<'_>, area: Rect) {
        let p = self.path;
        let format = match self.app.stream_format {
            StreamFormat::Ascii => "ascii",
            StreamFormat::Hex => "hex",
        };
        let bytes: [u64; 2] = p.stream.chunks.iter().fold([0, 0], |mut acc, c| {
            if let StreamChunk::Data { side, bytes, .. } = c {
                acc[side.index()] += bytes.len() as u64;
            }
            acc
        });
        let title = Line::from(vec![
            Span::styled(" stream ", Style::new().add_modifier(Modifier::BOLD)),
            Span::styled(format!("> client {} B ", bytes[0]), side_style(Side::Client)),
            Span::styled(format!("< server {} B ", bytes[1]), side_style(Side::Server)),
            Span::raw(format!("- {format} (x) ")),
        ]);
        let block = pane_block(title, self.app.focus == Pane::Stream);
        let height = usize::from(area.height.saturating_sub(2));
        let start = p.stream_offset.min(p.stream_lines.len());
        let lines: Vec<Line<'_>> = p.stream_lines[start..]
            .iter()
            .take(height)
            .map(|l| match l.kind {
                LineKind::Data(s) => Line::styled(l.text.as_str(), side_style(s)),
                LineKind::Gap(_) => {
                    Line::styled(l.text.as_str(), Style::new().fg(Color::Yellow).add_modifier(Modifier::ITALIC))
                }
                LineKind::Note => Line::styled(l.text.as_str(), Style::new().fg(Color::DarkGray)),
            })
            .collect();
        frame.render_widget(Paragraph::new(lines).block(block), area);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(chunks: Vec<StreamChunk>) -> StreamView {
        StreamView { chunks, truncated: false }
    }

    #[test]
    fn ascii_splits_lines_wraps_and_escapes() {
        let v = view(vec![
            StreamChunk::Data { side: Side::Client, offset: 0, bytes: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec() },
            StreamChunk::Gap { side: Side::Server, offset: 0, len: 10 },
            StreamChunk::Data { side: Side::Server, offset: 10, bytes: b"\x1b[2Jabcdefghij\x07".to_vec() },
        ]);
        let l = layout(&v, StreamFormat::Ascii, 10);
        let texts: Vec<&str> = l.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "> GET / HT",
                "> TP/1.1",
                "> Host: x",
                "> ",
                "< ~~ gap: 10 bytes not captured (server offset 0) ~~",
                "< .[2Jabcd",
                "< efghij.",
            ]
        );
        assert!(l.iter().all(|l| l.text.bytes().all(|b| (0x20..=0x7e).contains(&b))));
    }

    #[test]
    fn hex_lines_carry_stream_offsets() {
        let v = view(vec![StreamChunk::Data { side: Side::Server, offset: 0x30, bytes: (0u8..20).collect() }]);
        let l = layout(&v, StreamFormat::Hex, 80);
        assert_eq!(l[0].text, "< 00000030  0001 0203 0405 0607 0809 0a0b 0c0d 0e0f  ................");
        assert_eq!(l[1].text, "< 00000040  1011 1213                                ....");
    }

    #[test]
    fn empty_and_truncated() {
        assert_eq!(layout(&StreamView::default(), StreamFormat::Ascii, 40)[0].text, "no payload");
        let v = StreamView { chunks: vec![], truncated: true };
        assert!(layout(&v, StreamFormat::Hex, 40)[0].text.starts_with("..."));
    }
}
