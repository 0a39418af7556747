//! StatusBar (the last line) and MessageLine (the line above it: the `/` filter being
//! edited with its inline error, or the last message, or key hints).
//!
//! ```text
//! /host 10.0.0.x           column 6: '10.0.0.x' is not an IP address
//!  DONE 100%  | host-lo 50  vm-br0 60 (drops 0) | 1204 pkt/s | caps ok | view: port 8443 | capture: tcp
//! ```

use super::app::{App, View};
use super::escape;
use super::units;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// The filter input, a message, or key hints.
pub struct MessageLine<'a> {
    pub app: &'a App,
}

impl MessageLine<'_> {
    pub fn render(&self, frame: &mut Frame<'_>, area: Rect) {
        let app = self.app;
        let f = &app.filter;
        let line = if f.editing {
            let input = escape::text(&f.input).into_owned();
            let mut spans = vec![Span::styled("/", Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD))];
            match &f.error {
                Some(e) => {
                    let chars: Vec<char> = input.chars().collect();
                    let at = e.column.min(chars.len());
                    spans.push(Span::raw(chars[..at].iter().collect::<String>()));
                    spans.push(Span::styled(
                        chars[at..].iter().collect::<String>(),
                        Style::new().fg(Color::Red).add_modifier(Modifier::UNDERLINED),
                    ));
                    spans.push(Span::styled("_", Style::new().add_modifier(Modifier::SLOW_BLINK)));
                    spans.push(Span::styled(format!("   {e}"), Style::new().fg(Color::Red)));
                }
                None => {
                    spans.push(Span::raw(input));
                    spans.push(Span::styled("_", Style::new().add_modifier(Modifier::SLOW_BLINK)));
                    spans.push(Span::styled(
                        "   host ADDR  port N  net ADDR/BITS  point LABEL  proto tcp|udp|icmp  and or not ( )",
                        Style::new().fg(Color::DarkGray),
                    ));
                }
            }
            Line::from(spans)
        } else if let Some(m) = &app.message {
            Line::styled(escape::text(m).into_owned(), Style::new().fg(Color::Yellow))
        } else {
            let hints = match app.view {
                View::Paths => "Enter open  / filter  s sort  S reverse  space pause  w write pcapng  ? help  q quit",
                View::Path => {
                    "Tab pane  Enter pick observation  Esc back  x ascii/hex  w write pcapng  space pause  ? help  q quit"
                }
            };
            Line::styled(hints, Style::new().fg(Color::DarkGray))
        };
        frame.render_widget(Paragraph::new(line), area);
    }
}

/// The status line.
pub struct StatusBar<'a> {
    pub app: &'a App,
}

impl StatusBar<'_> {
    pub fn render(&self, frame: &mut Frame<'_>, area: Rect) {
        let app = self.app;
        let s = &app.snapshot;
        let sep = || Span::styled(" | ", Style::new().fg(Color::DarkGray));
        let mut spans = Vec::new();
        let (mode, style) = if app.paused {
            ("PAUSED".to_string(), Style::new().fg(Color::Black).bg(Color::Yellow))
        } else if s.live {
            if s.finished {
                ("STOPPED".to_string(), Style::new().fg(Color::Black).bg(Color::Gray))
            } else {
                ("LIVE".to_string(), Style::new().fg(Color::Black).bg(Color::Green))
            }
        } else {
            let pct = s.progress.and_then(|p| {
                p.bytes_total.filter(|t| *t > 0).map(|t| (p.bytes_read.min(t) as f64 * 100.0 / t as f64) as u32)
            });
            match (s.finished, pct) {
                (true, _) => ("DONE".to_string(), Style::new().fg(Color::Black).bg(Color::Gray)),
                (false, Some(p)) => (format!("LOADING {p:>3}%"), Style::new().fg(Color::Black).bg(Color::Cyan)),
                (false, None) => (
                    format!("LOADING {}", units::bytes(s.progress.map_or(0, |p| p.bytes_read))),
                    Style::new().fg(Color::Black).bg(Color::Cyan),
                ),
            }
        };
        spans.push(Span::styled(format!(" {mode} "), style.add_modifier(Modifier::BOLD)));
        if app.paused && app.pending.is_some() {
            spans.push(Span::styled(" (newer data waiting)", Style::new().fg(Color::Yellow)));
        }
        spans.push(sep());
        if s.points.is_empty() {
            spans.push(Span::raw("no capture point yet"));
        }
        for (i, p) in s.points.iter().enumerate() {
            if i > 0 {
                spans.push(Span::raw("  "));
            }
            spans.push(Span::styled(escape::text(&p.label).into_owned(), Style::new().fg(Color::Yellow)));
            spans.push(Span::raw(format!(" {}", units::count(p.packets))));
            if let Some(d) = p.dropped {
                let st = if d > 0 { Style::new().fg(Color::Red) } else { Style::new() };
                spans.push(Span::styled(format!(" (drops {})", units::count(d)), st));
            }
        }
        spans.push(sep());
        spans.push(Span::raw(match s.packets_per_second {
            Some(r) => format!("{} pkt/s", units::count(r.round() as u64)),
            None => "- pkt/s".to_string(),
        }));
        spans.push(sep());
        let c = s.caps;
        if c.any() {
            let mut parts = Vec::new();
            if c.paths > 0 {
                parts.push(format!("{} paths", units::count(c.paths)));
            }
            if c.packet_bytes > 0 {
                parts.push(format!("{} packets not kept", units::count(c.packet_bytes)));
            }
            if c.stream_bytes > 0 {
                parts.push(format!("{} stream bytes", units::bytes(c.stream_bytes)));
            }
            if c.unjoined > 0 {
                parts.push(format!("{} not joined", units::count(c.unjoined)));
            }
            if c.flows_evicted > 0 {
                parts.push(format!("{} flows evicted", units::count(c.flows_evicted)));
            }
            spans.push(Span::styled(format!("caps hit: {}", parts.join(", ")), Style::new().fg(Color::Red)));
        } else {
            spans.push(Span::raw("caps ok"));
        }
        if let Some((t, _)) = &app.filter.applied {
            spans.push(sep());
            spans.push(Span::styled(format!("view: {}", escape::text(t)), Style::new().fg(Color::Cyan)));
        }
        if let Some(f) = &s.filter {
            spans.push(sep());
            spans.push(Span::raw(format!("capture: {}", escape::text(f))));
        }
        if !s.errors.is_empty() {
            spans.push(sep());
            spans.push(Span::styled(
                format!("error: {}", escape::text(&s.errors[0])),
                Style::new().fg(Color::Red),
            ));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
    }
}
