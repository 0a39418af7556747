//! PathsPane: one row per path, in the app's filtered and sorted order. Only the visible
//! rows are formatted (the table costs the same with 100 or 100 000 paths).

use super::app::{App, Pane, SortKey};
use super::escape;
use super::model::PathRow;
use super::units;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Cell, Paragraph, Row, Table};

/// Columns: header, width, and the sort key a header stands for.
const COLUMNS: &[(&str, Constraint, Option<SortKey>)] = &[
    ("ID", Constraint::Length(6), Some(SortKey::Id)),
    ("PROTO", Constraint::Length(5), Some(SortKey::Proto)),
    ("CLIENT", Constraint::Fill(2), Some(SortKey::Client)),
    ("-> SERVER", Constraint::Fill(2), Some(SortKey::Server)),
    ("LEGS", Constraint::Length(4), Some(SortKey::Legs)),
    ("PKTS>", Constraint::Length(7), Some(SortKey::Packets)),
    ("<PKTS", Constraint::Length(7), None),
    ("BYTES>", Constraint::Length(8), Some(SortKey::Bytes)),
    ("<BYTES", Constraint::Length(8), None),
    ("STATE", Constraint::Length(6), Some(SortKey::State)),
    ("HISTORY", Constraint::Length(10), None),
    ("DURATION", Constraint::Length(9), Some(SortKey::Duration)),
    ("LAST SEEN", Constraint::Length(12), Some(SortKey::LastSeen)),
    ("PROCESS", Constraint::Fill(1), Some(SortKey::Process)),
];

/// The paths table.
pub struct PathsPane<'a> {
    pub app: &'a App,
}

/// Border style of a pane: bright when it has the keyboard.
pub fn pane_block(title: Line<'_>, focused: bool) -> Block<'_> {
    let style = if focused { Style::new().fg(Color::Cyan) } else { Style::new().fg(Color::DarkGray) };
    Block::new()
        .borders(Borders::ALL)
        .border_type(if focused { BorderType::Thick } else { BorderType::Plain })
        .border_style(style)
        .title(title)
}

impl PathsPane<'_> {
    pub fn render(&self, frame: &mut Frame<'_>, area: Rect) {
        let app = self.app;
        let snap = &app.snapshot;
        let st = &app.paths;
        let arrow = if st.descending { "v" } else { "^" };
        let shown = st.order.len();
        let total = snap.paths.len();
        let mut title = vec![Span::styled(" paths ", Style::new().add_modifier(Modifier::BOLD))];
        title.push(Span::raw(if shown == total {
            format!("{total} ")
        } else {
            format!("{shown} of {total} ")
        }));
        title.push(Span::raw(format!("- sorted by {} {arrow} ", st.sort.name())));
        let block = pane_block(Line::from(title), app.focus == Pane::Paths);
        let inner_rows = usize::from(area.height.saturating_sub(3));

        if shown == 0 {
            let text = if total == 0 {
                if snap.finished { "no TCP, UDP or ICMP traffic in the input" } else { "waiting for packets ..." }
            } else {
                "no path matches the filter (/ to change it)"
            };
            frame.render_widget(Paragraph::new(text).block(block), area);
            return;
        }

        let header = Row::new(COLUMNS.iter().map(|(name, _, key)| {
            let mut s = (*name).to_string();
            if *key == Some(st.sort) {
                s.push_str(arrow);
            }
            Cell::from(s)
        }))
        .style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));

        let start = st.offset.min(shown.saturating_sub(1));
        let end = (start + inner_rows).min(shown);
        let rows = st.order[start..end].iter().enumerate().filter_map(|(i, &idx)| {
            let r = snap.paths.get(idx as usize)?;
            let mut row = path_row(r, app.utc);
            if start + i == st.selected {
                row = row.style(Style::new().add_modifier(Modifier::REVERSED));
            }
            Some(row)
        });
        let table = Table::new(rows, COLUMNS.iter().map(|c| c.1)).header(header).column_spacing(1).block(block);
        frame.render_widget(table, area);
    }
}

/// The cells of one path.
fn path_row(r: &PathRow, utc: bool) -> Row<'static> {
    let state_style = match &*r.state {
        "SF" | "S1" => Style::new().fg(Color::Green),
        "REJ" | "RSTO" | "RSTR" | "RSTOS0" | "RSTRH" => Style::new().fg(Color::Red),
        "S0" | "SH" | "SHR" | "OTH" => Style::new().fg(Color::Yellow),
        _ => Style::new(),
    };
    Row::new(vec![
        Cell::from(r.id.to_string()),
        Cell::from(r.proto.to_string()),
        Cell::from(r.client.to_string()),
        Cell::from(r.server.to_string()),
        Cell::from(r.legs.to_string()),
        Cell::from(units::count(r.packets[0])),
        Cell::from(units::count(r.packets[1])),
        Cell::from(units::bytes(r.bytes[0])),
        Cell::from(units::bytes(r.bytes[1])),
        Cell::from(escape::text(&r.state).into_owned()).style(state_style),
        Cell::from(escape::text(&r.history).into_owned()),
        Cell::from(units::duration(r.duration_ns())),
        Cell::from(units::time_of_day(r.last, utc)),
        Cell::from(r.process.as_deref().map(|p| escape::text(p).into_owned()).unwrap_or_default()),
    ])
}
