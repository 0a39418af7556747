//! HelpPane: every key, generated from the key map in `action.rs` (so it cannot drift from
//! what the keys do), plus the filter syntax and the mouse.

use super::action::{FILTER_KEYS, KEY_MAP, MOUSE_HELP};
use super::paths::pane_block;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

/// The help overlay.
pub struct HelpPane;

/// The help text, one line per key or group of keys.
pub fn help_lines() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = KEY_MAP
        .iter()
        .map(|e| (e.keys.iter().map(|b| b.label()).collect::<Vec<_>>().join(" "), e.help.to_string()))
        .collect();
    v.push((String::new(), String::new()));
    v.push(("filter line".into(), String::new()));
    v.extend(FILTER_KEYS.iter().map(|(k, h)| (format!("  {k}"), h.to_string())));
    v.push(("  syntax".into(), "host ADDR, port N, net ADDR/BITS, point LABEL, proto tcp|udp|icmp|N,".into()));
    v.push((String::new(), "tcp, udp, icmp; and (or juxtaposition), or, not, ( ); any hop matches".into()));
    v.push((String::new(), String::new()));
    v.extend(MOUSE_HELP.iter().map(|(k, h)| (k.to_string(), h.to_string())));
    v
}

impl HelpPane {
    pub fn render(&self, frame: &mut Frame<'_>, area: Rect) {
        let key = Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD);
        let lines: Vec<Line<'_>> = help_lines()
            .into_iter()
            .map(|(k, h)| Line::from(vec![Span::styled(format!(" {k:<22}"), key), Span::raw(h)]))
            .collect();
        frame.render_widget(Clear, area);
        let title = Line::from(vec![
            Span::styled(" help ", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw("- ? or Esc closes "),
        ]);
        frame.render_widget(Paragraph::new(lines).block(pane_block(title, true)), area);
    }
}
