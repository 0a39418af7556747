//! PacketsPane: tcpdump's one-line summaries of the open path's packets (every point, or
//! the picked observation's), and the selected packet as tcpdump's `-X` dump. The strings
//! come from [`crate::print::Printer`] through the model source; they are escaped again
//! here before drawing (the printers already escape packet bytes, this is the backstop).

use super::app::{App, Pane, PathState};
use super::escape;
use super::paths::pane_block;
use super::stream::side_style;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// The packet list and the dump of the selected packet.
pub struct PacketsPane<'a> {
    pub app: &'a App,
    pub path: &'a PathState,
}

impl PacketsPane<'_> {
    pub fn render(&self, frame: &mut Frame<'_>, list_area: Rect, dump_area: Rect) {
        let p = self.path;
        let n = p.packets.lines.len();
        let scope = match (p.picked, &p.detail) {
            (Some(r), Some(d)) => d
                .legs
                .get(r.leg)
                .and_then(|l| l.observations.get(r.observation))
                .map_or_else(|| "observation".to_string(), |o| format!("at {}", escape::text(&o.point))),
            _ => "every point".to_string(),
        };
        let mut title = vec![
            Span::styled(" packets ", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(format!("{n} {scope} ")),
        ];
        if p.packets.truncated {
            title.push(Span::raw("(not all kept) "));
        }
        let block = pane_block(Line::from(title), self.app.focus == Pane::Packets);
        let height = usize::from(list_area.height.saturating_sub(2));
        let start = p.packet_offset.min(n);
        let lines: Vec<Line<'_>> = p.packets.lines[start..]
            .iter()
            .take(height)
            .enumerate()
            .map(|(i, l)| {
                let mut style = side_style(l.side);
                if start + i == p.packet_selected {
                    style = style.add_modifier(Modifier::REVERSED);
                }
                Line::styled(escape::text(&l.summary).into_owned(), style)
            })
            .collect();
        frame.render_widget(Paragraph::new(lines).block(block), list_area);

        let dump_title = Line::from(vec![
            Span::styled(" packet ", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(if n == 0 { "- ".to_string() } else { format!("{}/{n} -X ", p.packet_selected + 1) }),
        ]);
        let dump_block = pane_block(dump_title, false);
        let dump: Vec<Line<'_>> = match &p.dump {
            Some(d) => d.iter().map(|l| Line::raw(escape::text(l).into_owned())).collect(),
            None if n == 0 => vec![Line::raw("no packets")],
            None => vec![Line::raw("bytes of this packet were not kept")],
        };
        frame.render_widget(Paragraph::new(dump).block(dump_block), dump_area);
    }
}
