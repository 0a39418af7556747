//! DetailPane: the path as a hop diagram. Legs in path order (client first); inside a leg,
//! one block per observation: point, tuple, what changed against the previous hop, the
//! latency from the previous hop (first packet here minus first packet there), counters, the
//! owning process, and why the observations (and legs) were joined.
//!
//! ```text
//!  leg 1  process curl[4242]
//!    joined: nat (conntrack DNAT ...)
//!  > host/lo              12:00:00.120
//!  |   127.0.0.1:40001 -> 127.0.0.1:49673        SF ShADadFf
//!  |   pkts 10>/8<  bytes 64>/64<
//!  * vm/br0               12:00:00.121  +1.20ms
//!  |   192.168.49.1:39658 -> 192.168.49.2:8443   SF ShADadFf
//!  |   changed: dst 127.0.0.1:55001 -> 192.168.49.2:8443
//!  v  next leg: forwarder socat[77] (first 64 payload bytes equal)
//! ```

use super::app::{App, Pane, PathState};
use super::escape;
use super::model::{ObservationRef, PathDetail, tuple_changes, ts_diff_ns};
use super::paths::pane_block;
use super::units;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// The hop diagram of the open path.
pub struct DetailPane<'a> {
    pub app: &'a App,
    pub path: &'a PathState,
}

/// The diagram's lines, and for each line the observation (flat index) it belongs to.
pub fn lines(
    d: &PathDetail,
    selected: usize,
    picked: Option<ObservationRef>,
    utc: bool,
) -> (Vec<Line<'static>>, Vec<Option<usize>>) {
    let mut out: Vec<Line<'static>> = Vec::new();
    let mut owner: Vec<Option<usize>> = Vec::new();
    let dim = Style::new().fg(Color::DarkGray);
    let n_obs: usize = d.legs.iter().map(|l| l.observations.len()).sum();
    out.push(Line::from(vec![
        Span::styled(format!("path {} ", d.id), Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!(
            "{}  {} leg{}, {} observation{}",
            d.proto,
            d.legs.len(),
            if d.legs.len() == 1 { "" } else { "s" },
            n_obs,
            if n_obs == 1 { "" } else { "s" }
        )),
    ]));
    owner.push(None);
    let mut flat = 0usize;
    let mut prev: Option<&super::model::ObservationDetail> = None;
    for (li, leg) in d.legs.iter().enumerate() {
        if let Some(link) = &leg.link {
            out.push(Line::from(vec![
                Span::styled(" v  next leg: ", Style::new().fg(Color::Magenta)),
                Span::raw(escape::text(&link.kind).into_owned()),
                Span::styled(format!(" ({})", escape::text(&link.evidence.join("; "))), dim),
            ]));
            owner.push(None);
        }
        let mut head = vec![Span::styled(format!(" leg {}", li + 1), Style::new().add_modifier(Modifier::BOLD))];
        head.push(Span::raw(format!(
            "  process {}",
            leg.process.as_deref().map(|p| escape::text(p).into_owned()).unwrap_or_else(|| "?".into())
        )));
        out.push(Line::from(head));
        owner.push(None);
        if let Some(j) = &leg.join {
            let mut why = vec![Span::raw(format!("   joined: {}", escape::text(&j.kind)))];
            if !j.evidence.is_empty() {
                why.push(Span::styled(format!(" ({})", escape::text(&j.evidence.join("; "))), dim));
            }
            out.push(Line::from(why));
            owner.push(None);
        }
        for (oi, o) in leg.observations.iter().enumerate() {
            let is_sel = flat == selected;
            let is_picked = picked == Some(ObservationRef { leg: li, observation: oi });
            let marker = if is_picked { " * " } else if is_sel { " > " } else { " o " };
            let mut first = vec![
                Span::styled(marker, Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)),
                Span::styled(
                    format!("{:<20}", escape::text(&o.point)),
                    Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
                ),
                Span::raw(format!(" {}", units::time_of_day(o.first, utc))),
            ];
            if let Some(lat) = &o.latency {
                first.push(Span::styled(format!("  {}", escape::text(lat)), Style::new().fg(Color::Magenta)));
            } else if let Some(p) = prev.filter(|p| ts_diff_ns(o.first, p.first) >= 0) {
                first.push(Span::styled(
                    format!("  +{}", units::duration(ts_diff_ns(o.first, p.first))),
                    Style::new().fg(Color::Magenta),
                ));
            }
            let mut l = Line::from(first);
            if is_sel {
                l = l.style(Style::new().add_modifier(Modifier::REVERSED));
            }
            out.push(l);
            owner.push(Some(flat));
            out.push(Line::from(vec![
                Span::styled(" |   ", dim),
                Span::raw(format!("{} -> {}", o.client, o.server)),
                Span::styled(
                    format!("  {} {}", escape::text(&o.state), escape::text(&o.history)),
                    Style::new().fg(Color::Green),
                ),
            ]));
            owner.push(Some(flat));
            let changes = match &o.changes {
                Some(c) => c.clone(),
                None => prev.filter(|_| oi > 0).map(|p| tuple_changes(p, o)).unwrap_or_default(),
            };
            let third = if changes.is_empty() {
                Line::from(vec![
                    Span::styled(" |   ", dim),
                    Span::raw(format!(
                        "pkts {}>/{}<  bytes {}>/{}<  last {}",
                        units::count(o.packets[0]),
                        units::count(o.packets[1]),
                        units::bytes(o.bytes[0]),
                        units::bytes(o.bytes[1]),
                        units::time_of_day(o.last, utc)
                    )),
                ])
            } else {
                Line::from(vec![
                    Span::styled(" |   ", dim),
                    Span::styled(format!("changed: {}", changes.join(", ")), Style::new().fg(Color::Red)),
                    Span::raw(format!(
                        "  pkts {}>/{}<  bytes {}>/{}<",
                        units::count(o.packets[0]),
                        units::count(o.packets[1]),
                        units::bytes(o.bytes[0]),
                        units::bytes(o.bytes[1]),
                    )),
                ])
            };
            out.push(third);
            owner.push(Some(flat));
            if let Some(n) = &o.note {
                out.push(Line::from(vec![
                    Span::styled(" |   ", dim),
                    Span::styled(escape::text(n).into_owned(), dim),
                ]));
                owner.push(Some(flat));
            }
            prev = Some(o);
            flat += 1;
        }
    }
    for n in &d.notes {
        out.push(Line::styled(format!(" ! {}", escape::text(n)), Style::new().fg(Color::Red)));
        owner.push(None);
    }
    (out, owner)
}

/// First line shown so that the selected observation's block is visible in `height` lines.
fn scroll(owner: &[Option<usize>], selected: usize, height: usize) -> usize {
    let Some(last) = owner.iter().rposition(|o| *o == Some(selected)) else { return 0 };
    (last + 1).saturating_sub(height)
}

/// The observation drawn at `line` (0 = first line inside the border) of a pane of `area`.
pub fn observation_at_line(d: &PathDetail, line: usize, selected: usize, area: Rect) -> Option<usize> {
    let (_, owner) = lines(d, selected, None, true);
    let height = usize::from(area.height.saturating_sub(2));
    let top = scroll(&owner, selected, height);
    owner.get(top + line).copied().flatten()
}

impl DetailPane<'_> {
    pub fn render(&self, frame: &mut Frame<'_>, area: Rect) {
        let p = self.path;
        let mut title = vec![Span::styled(" detail ", Style::new().add_modifier(Modifier::BOLD))];
        if p.picked.is_some() {
            title.push(Span::raw("- observation picked (Esc: whole path) "));
        }
        let block = pane_block(Line::from(title), self.app.focus == Pane::Detail);
        let Some(d) = &p.detail else {
            frame.render_widget(Paragraph::new("this path is gone from the model").block(block), area);
            return;
        };
        let (lines, owner) = lines(d, p.detail_selected, p.picked, self.app.utc);
        let height = usize::from(area.height.saturating_sub(2));
        let top = scroll(&owner, p.detail_selected, height);
        let visible: Vec<Line<'static>> = lines.into_iter().skip(top).take(height).collect();
        frame.render_widget(Paragraph::new(visible).block(block), area);
    }
}
