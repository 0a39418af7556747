//! UI state and the one place it changes: [`App::handle`] turns an [`Event`] into an
//! [`Action`] and [`App::update`] applies it. Rendering (the panes, [`crate::tui::render`])
//! only reads an `App`.
//!
//! ## Invariants
//!
//! * `paths.order` holds the indices (into `snapshot.paths`) of the rows the filter lets
//!   through, in sort order; it is rebuilt only when the snapshot, the sort or the filter
//!   changed (never per frame). `paths.selected < order.len()` whenever `order` is not empty,
//!   and the selected path is followed by id across snapshots.
//! * Every scroll offset keeps its selection visible for the current terminal size (pane
//!   heights come from the same pure [`areas`] function render uses).
//! * Per-path data (detail, stream, packets, dump) is asked from the [`ModelSource`] only
//!   when the path view opens, the selection changes, or the selected path's row changed in
//!   a new snapshot.
//! * While paused the app keeps its snapshot; newer ones wait in `pending` (capture and the
//!   model go on).

use super::action::{Action, action_for_key, filter_action_for_key};
use super::event::Event;
use super::filter::{FilterError, PathFilter};
use super::model::*;
use super::stream::StreamLine;
use super::{Areas, areas};
use crossterm::event::{MouseButton, MouseEventKind};
use ratatui::layout::{Position, Rect};
use std::cmp::Ordering;
use std::sync::Arc;

/// Which screen is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// The paths table.
    Paths,
    /// One path: detail, stream, packets.
    Path,
}

/// Which pane has the keyboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    Paths,
    Detail,
    Stream,
    Packets,
}

/// Columns the paths table sorts by, in the order `s` cycles through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Id,
    Proto,
    Client,
    Server,
    Legs,
    Packets,
    Bytes,
    State,
    Duration,
    LastSeen,
    Process,
}

impl SortKey {
    pub const ALL: [SortKey; 11] = [
        SortKey::Id,
        SortKey::Proto,
        SortKey::Client,
        SortKey::Server,
        SortKey::Legs,
        SortKey::Packets,
        SortKey::Bytes,
        SortKey::State,
        SortKey::Duration,
        SortKey::LastSeen,
        SortKey::Process,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SortKey::Id => "id",
            SortKey::Proto => "proto",
            SortKey::Client => "client",
            SortKey::Server => "server",
            SortKey::Legs => "legs",
            SortKey::Packets => "packets",
            SortKey::Bytes => "bytes",
            SortKey::State => "state",
            SortKey::Duration => "duration",
            SortKey::LastSeen => "last seen",
            SortKey::Process => "process",
        }
    }

    fn next(self) -> SortKey {
        let i = SortKey::ALL.iter().position(|k| *k == self).unwrap_or(0);
        SortKey::ALL[(i + 1) % SortKey::ALL.len()]
    }

    /// Natural order of two rows for this key (ties broken by id).
    fn compare(self, a: &PathRow, b: &PathRow) -> Ordering {
        let o = match self {
            SortKey::Id => Ordering::Equal,
            SortKey::Proto => a.proto.cmp(&b.proto),
            SortKey::Client => a.client.cmp(&b.client),
            SortKey::Server => a.server.cmp(&b.server),
            SortKey::Legs => a.legs.cmp(&b.legs),
            SortKey::Packets => (a.packets[0] + a.packets[1]).cmp(&(b.packets[0] + b.packets[1])),
            SortKey::Bytes => (a.bytes[0] + a.bytes[1]).cmp(&(b.bytes[0] + b.bytes[1])),
            SortKey::State => a.state.cmp(&b.state),
            SortKey::Duration => a.duration_ns().cmp(&b.duration_ns()),
            SortKey::LastSeen => a.last.cmp(&b.last),
            SortKey::Process => a.process.cmp(&b.process),
        };
        o.then(a.id.cmp(&b.id))
    }
}

/// The stream pane's rendering of payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamFormat {
    Ascii,
    Hex,
}

/// The paths table's state.
#[derive(Clone, Debug)]
pub struct PathsState {
    /// Indices into `snapshot.paths`, filtered and sorted.
    pub order: Vec<u32>,
    /// Index into `order`.
    pub selected: usize,
    /// First visible row (index into `order`).
    pub offset: usize,
    /// The selected path, followed across snapshots.
    pub selected_id: Option<PathId>,
    pub sort: SortKey,
    pub descending: bool,
    /// What `order` was built from: (snapshot generation, sort, descending, filter generation).
    built_for: Option<(u64, SortKey, bool, u64)>,
    /// How many times `order` was rebuilt (tests and the benchmark check it is not per frame).
    pub rebuilds: u64,
}

/// The `/` filter line.
#[derive(Clone, Debug, Default)]
pub struct FilterState {
    pub editing: bool,
    pub input: String,
    /// Error of the text being edited (shown inline).
    pub error: Option<FilterError>,
    /// The filter in force and its text.
    pub applied: Option<(String, PathFilter)>,
    pub generation: u64,
}

/// The path view's state.
#[derive(Clone, Debug)]
pub struct PathState {
    pub id: PathId,
    /// The path's row as of the last refresh (to notice changes).
    pub row: Option<PathRow>,
    pub detail: Option<PathDetail>,
    /// Observations of the detail in order (the detail pane's selectable items).
    pub observations: Vec<ObservationRef>,
    pub detail_selected: usize,
    /// Observation picked with Enter: stream and packets show only it.
    pub picked: Option<ObservationRef>,
    pub stream: StreamView,
    /// `stream` laid out for the pane's width and the current format.
    pub stream_lines: Vec<StreamLine>,
    pub stream_offset: usize,
    pub packets: PacketList,
    pub packet_selected: usize,
    pub packet_offset: usize,
    /// `-X` lines of the selected packet.
    pub dump: Option<Vec<String>>,
}

/// The whole UI state.
pub struct App {
    pub snapshot: Arc<Snapshot>,
    /// Newest snapshot received while paused.
    pub pending: Option<Arc<Snapshot>>,
    pub view: View,
    pub focus: Pane,
    pub size: Rect,
    pub paths: PathsState,
    pub filter: FilterState,
    pub path: Option<PathState>,
    pub stream_format: StreamFormat,
    pub paused: bool,
    pub help: bool,
    /// One-line message (what `w` wrote, an error).
    pub message: Option<String>,
    pub quit: bool,
    /// Show times in UTC (tests) rather than local time.
    pub utc: bool,
    /// Where `w` writes (`flowtrail-path-ID.pcapng` inside it).
    pub save_dir: std::path::PathBuf,
}

impl App {
    /// A new app for a terminal of `width` x `height`.
    pub fn new(snapshot: Arc<Snapshot>, width: u16, height: u16) -> App {
        let mut app = App {
            snapshot,
            pending: None,
            view: View::Paths,
            focus: Pane::Paths,
            size: Rect::new(0, 0, width, height),
            paths: PathsState {
                order: Vec::new(),
                selected: 0,
                offset: 0,
                selected_id: None,
                sort: SortKey::Id,
                descending: false,
                built_for: None,
                rebuilds: 0,
            },
            filter: FilterState::default(),
            path: None,
            stream_format: StreamFormat::Ascii,
            paused: false,
            help: false,
            message: None,
            quit: false,
            utc: false,
            save_dir: std::path::PathBuf::from("."),
        };
        app.rebuild_order();
        app
    }

    /// The pane rectangles for the current size and view.
    pub fn areas(&self) -> Areas {
        areas(self.size, self.view)
    }

    /// The row of the selected path in the paths table, if any.
    pub fn selected_row(&self) -> Option<&PathRow> {
        let i = *self.paths.order.get(self.paths.selected)?;
        self.snapshot.paths.get(i as usize)
    }

    /// Turns one event into an action and applies it.
    pub fn handle(&mut self, event: Event, source: &dyn ModelSource) {
        let action = match event {
            Event::Snapshot(s) => {
                self.receive(s, source);
                return;
            }
            Event::Terminate => Some(Action::Quit),
            Event::Resize { width, height } => Some(Action::Resize { width, height }),
            Event::Key(k) => {
                if self.filter.editing {
                    filter_action_for_key(&k)
                } else {
                    action_for_key(&k)
                }
            }
            Event::Mouse(m) => match m.kind {
                MouseEventKind::Down(MouseButton::Left) => Some(Action::Click { column: m.column, row: m.row }),
                MouseEventKind::ScrollDown => Some(Action::Scroll { column: m.column, row: m.row, down: true }),
                MouseEventKind::ScrollUp => Some(Action::Scroll { column: m.column, row: m.row, down: false }),
                _ => None,
            },
        };
        if let Some(a) = action {
            self.update(a, source);
        }
    }

    /// A new snapshot from the model.
    pub fn receive(&mut self, s: Arc<Snapshot>, source: &dyn ModelSource) {
        if self.paused {
            self.pending = Some(s);
        } else {
            self.adopt(s, source);
        }
    }

    fn adopt(&mut self, s: Arc<Snapshot>, source: &dyn ModelSource) {
        if s.generation == self.snapshot.generation && Arc::ptr_eq(&s, &self.snapshot) {
            return;
        }
        self.snapshot = s;
        self.rebuild_order();
        if let Some(p) = &self.path {
            let id = p.id;
            let row = self.snapshot.paths.iter().find(|r| r.id == id);
            if row != p.row.as_ref() {
                let row = row.cloned();
                self.refresh_path(row, source);
            }
        }
    }

    /// Applies one action.
    pub fn update(&mut self, action: Action, source: &dyn ModelSource) {
        if self.help && !matches!(action, Action::Quit | Action::ToggleHelp | Action::Back | Action::Resize { .. }) {
            return;
        }
        match action {
            Action::Quit => self.quit = true,
            Action::ToggleHelp => self.help = !self.help,
            Action::Back => self.back(source),
            Action::Open => self.open(source),
            Action::FocusNext => self.cycle_focus(true),
            Action::FocusPrev => self.cycle_focus(false),
            Action::Up => self.move_by(-1, source),
            Action::Down => self.move_by(1, source),
            Action::Top => self.move_by(isize::MIN / 2, source),
            Action::Bottom => self.move_by(isize::MAX / 2, source),
            Action::HalfPageDown => self.move_by(self.page() / 2, source),
            Action::HalfPageUp => self.move_by(-(self.page() / 2), source),
            Action::PageDown => self.move_by(self.page(), source),
            Action::PageUp => self.move_by(-self.page(), source),
            Action::SortNext => {
                self.paths.sort = self.paths.sort.next();
                self.rebuild_order();
            }
            Action::SortReverse => {
                self.paths.descending = !self.paths.descending;
                self.rebuild_order();
            }
            Action::TogglePause => {
                self.paused = !self.paused;
                if !self.paused
                    && let Some(s) = self.pending.take()
                {
                    self.adopt(s, source);
                }
            }
            Action::WritePath => self.write_path(source),
            Action::ToggleStreamFormat => {
                self.stream_format = match self.stream_format {
                    StreamFormat::Ascii => StreamFormat::Hex,
                    StreamFormat::Hex => StreamFormat::Ascii,
                };
                self.layout_stream();
            }
            Action::FilterStart => {
                self.filter.editing = true;
                self.filter.input = self.filter.applied.as_ref().map(|(t, _)| t.clone()).unwrap_or_default();
                self.filter.error = None;
            }
            Action::FilterInput(c) => {
                if self.filter.input.chars().count() < 512 {
                    self.filter.input.push(c);
                }
                self.validate_filter();
            }
            Action::FilterBackspace => {
                self.filter.input.pop();
                self.validate_filter();
            }
            Action::FilterClear => {
                self.filter.input.clear();
                self.filter.error = None;
            }
            Action::FilterApply => match PathFilter::parse(&self.filter.input) {
                Ok(f) => {
                    self.filter.applied = f.map(|f| (self.filter.input.trim().to_string(), f));
                    self.filter.editing = false;
                    self.filter.error = None;
                    self.filter.generation += 1;
                    self.rebuild_order();
                }
                Err(e) => self.filter.error = Some(e),
            },
            Action::FilterCancel => {
                self.filter.editing = false;
                self.filter.error = None;
                self.filter.input = self.filter.applied.as_ref().map(|(t, _)| t.clone()).unwrap_or_default();
            }
            Action::Click { column, row } => self.click(column, row, source),
            Action::Scroll { column, row, down } => {
                if let Some(pane) = self.pane_at(column, row) {
                    let keep = self.focus;
                    self.focus = pane;
                    self.move_by(if down { 3 } else { -3 }, source);
                    self.focus = keep;
                }
            }
            Action::Resize { width, height } => {
                self.size = Rect::new(0, 0, width, height);
                self.layout_stream();
                self.clamp_offsets();
            }
        }
    }

    /// Rows visible in the focused pane.
    fn page(&self) -> isize {
        let a = self.areas();
        let rect = match self.focus {
            Pane::Paths => a.paths.map(|r| r.height.saturating_sub(3)),
            Pane::Detail => a.detail.map(|r| r.height.saturating_sub(2)),
            Pane::Stream => a.stream.map(|r| r.height.saturating_sub(2)),
            Pane::Packets => a.packets.map(|r| r.height.saturating_sub(2)),
        };
        isize::from(rect.unwrap_or(1).max(1) as i16)
    }

    fn back(&mut self, source: &dyn ModelSource) {
        if self.help {
            self.help = false;
            return;
        }
        if self.message.take().is_some() && self.view == View::Paths {
            return;
        }
        if self.view == View::Path {
            if let Some(p) = &mut self.path
                && p.picked.take().is_some()
            {
                self.load_path_data(source);
                return;
            }
            self.view = View::Paths;
            self.focus = Pane::Paths;
            self.path = None;
        }
    }

    fn open(&mut self, source: &dyn ModelSource) {
        match (self.view, self.focus) {
            (View::Paths, _) => {
                let Some(row) = self.selected_row().cloned() else { return };
                self.view = View::Path;
                self.focus = Pane::Detail;
                self.path = Some(PathState {
                    id: row.id,
                    row: None,
                    detail: None,
                    observations: Vec::new(),
                    detail_selected: 0,
                    picked: None,
                    stream: StreamView::default(),
                    stream_lines: Vec::new(),
                    stream_offset: 0,
                    packets: PacketList::default(),
                    packet_selected: 0,
                    packet_offset: 0,
                    dump: None,
                });
                self.refresh_path(Some(row), source);
            }
            (View::Path, Pane::Detail) => {
                if let Some(p) = &mut self.path
                    && let Some(r) = p.observations.get(p.detail_selected).copied()
                {
                    p.picked = Some(r);
                    p.stream_offset = 0;
                    p.packet_selected = 0;
                    p.packet_offset = 0;
                    self.load_path_data(source);
                }
            }
            (View::Path, Pane::Packets) => self.focus = Pane::Stream,
            (View::Path, _) => {}
        }
    }

    fn cycle_focus(&mut self, forward: bool) {
        if self.view != View::Path {
            return;
        }
        const ORDER: [Pane; 3] = [Pane::Detail, Pane::Stream, Pane::Packets];
        let i = ORDER.iter().position(|p| *p == self.focus).unwrap_or(0);
        let n = ORDER.len();
        self.focus = ORDER[if forward { (i + 1) % n } else { (i + n - 1) % n }];
    }

    /// Moves the focused pane's selection (or scroll) by `delta` rows, clamped.
    fn move_by(&mut self, delta: isize, source: &dyn ModelSource) {
        let heights = self.visible_rows();
        match self.focus {
            Pane::Paths => {
                let n = self.paths.order.len();
                if n == 0 {
                    return;
                }
                self.paths.selected = step(self.paths.selected, delta, n);
                self.paths.selected_id = self.selected_row().map(|r| r.id);
                self.paths.offset = follow(self.paths.offset, self.paths.selected, heights.paths);
            }
            Pane::Detail => {
                if let Some(p) = &mut self.path
                    && !p.observations.is_empty()
                {
                    p.detail_selected = step(p.detail_selected, delta, p.observations.len());
                }
            }
            Pane::Stream => {
                if let Some(p) = &mut self.path {
                    let max = p.stream_lines.len().saturating_sub(heights.stream.max(1));
                    p.stream_offset = step(p.stream_offset, delta, max + 1);
                }
            }
            Pane::Packets => {
                let mut changed = false;
                if let Some(p) = &mut self.path
                    && !p.packets.lines.is_empty()
                {
                    let before = p.packet_selected;
                    p.packet_selected = step(p.packet_selected, delta, p.packets.lines.len());
                    p.packet_offset = follow(p.packet_offset, p.packet_selected, heights.packets);
                    changed = before != p.packet_selected || p.dump.is_none();
                }
                if changed {
                    self.load_dump(source);
                }
            }
        }
    }

    fn visible_rows(&self) -> VisibleRows {
        let a = self.areas();
        // Paths: borders (2) and the header row (1). Others: borders.
        VisibleRows {
            paths: a.paths.map_or(1, |r| usize::from(r.height.saturating_sub(3)).max(1)),
            stream: a.stream.map_or(1, |r| usize::from(r.height.saturating_sub(2)).max(1)),
            packets: a.packets.map_or(1, |r| usize::from(r.height.saturating_sub(2)).max(1)),
        }
    }

    fn clamp_offsets(&mut self) {
        let h = self.visible_rows();
        self.paths.offset = follow(self.paths.offset, self.paths.selected, h.paths);
        if let Some(p) = &mut self.path {
            p.packet_offset = follow(p.packet_offset, p.packet_selected, h.packets);
            p.stream_offset = p.stream_offset.min(p.stream_lines.len().saturating_sub(h.stream));
        }
    }

    /// Rebuilds `paths.order` if the snapshot, sort or filter changed since it was built,
    /// keeping the selected path selected.
    pub fn rebuild_order(&mut self) {
        let key = (self.snapshot.generation, self.paths.sort, self.paths.descending, self.filter.generation);
        if self.paths.built_for == Some(key) {
            return;
        }
        self.paths.built_for = Some(key);
        self.paths.rebuilds += 1;
        let snap = &self.snapshot;
        let filter = self.filter.applied.as_ref().map(|(_, f)| f);
        let mut order: Vec<u32> = std::mem::take(&mut self.paths.order);
        order.clear();
        order.extend(
            snap.paths
                .iter()
                .enumerate()
                .filter(|(_, r)| filter.is_none_or(|f| f.matches(r, snap)))
                .map(|(i, _)| i as u32),
        );
        let (sort, desc) = (self.paths.sort, self.paths.descending);
        if !(sort == SortKey::Id && !desc && snap.paths.windows(2).all(|w| w[0].id < w[1].id)) {
            sort_order(&mut order, &snap.paths, sort, desc);
        }
        self.paths.order = order;
        // Follow the selected id; else keep the position.
        let pos = self
            .paths
            .selected_id
            .and_then(|id| self.paths.order.iter().position(|&i| self.snapshot.paths[i as usize].id == id));
        self.paths.selected = match pos {
            Some(p) => p,
            None => self.paths.selected.min(self.paths.order.len().saturating_sub(1)),
        };
        self.paths.selected_id = self.selected_row().map(|r| r.id);
        let h = self.visible_rows().paths;
        self.paths.offset = follow(self.paths.offset, self.paths.selected, h);
    }

    fn validate_filter(&mut self) {
        self.filter.error = PathFilter::parse(&self.filter.input).err();
    }

    /// The path's row changed (or the view just opened): ask for its data again.
    fn refresh_path(&mut self, row: Option<PathRow>, source: &dyn ModelSource) {
        let Some(p) = &mut self.path else { return };
        p.row = row;
        p.detail = source.detail(p.id);
        p.observations = p
            .detail
            .as_ref()
            .map(|d| {
                d.legs
                    .iter()
                    .enumerate()
                    .flat_map(|(l, leg)| {
                        (0..leg.observations.len()).map(move |o| ObservationRef { leg: l, observation: o })
                    })
                    .collect()
            })
            .unwrap_or_default();
        p.detail_selected = p.detail_selected.min(p.observations.len().saturating_sub(1));
        self.load_path_data(source);
    }

    /// Stream, packets and dump of the open path (or its picked observation).
    fn load_path_data(&mut self, source: &dyn ModelSource) {
        let Some(p) = &mut self.path else { return };
        p.stream = source.stream(p.id, p.picked);
        p.packets = source.packets(p.id, p.picked);
        p.packet_selected = p.packet_selected.min(p.packets.lines.len().saturating_sub(1));
        p.dump = None;
        self.layout_stream();
        self.clamp_offsets();
        self.load_dump(source);
    }

    fn load_dump(&mut self, source: &dyn ModelSource) {
        let Some(p) = &mut self.path else { return };
        p.dump = p.packets.lines.get(p.packet_selected).and_then(|l| source.packet_dump(l.packet));
    }

    /// Lays the stream out for the stream pane's width.
    fn layout_stream(&mut self) {
        let width = self.areas().stream.map_or(80, |r| usize::from(r.width.saturating_sub(2)).max(8));
        let format = self.stream_format;
        if let Some(p) = &mut self.path {
            p.stream_lines = super::stream::layout(&p.stream, format, width);
        }
    }

    fn write_path(&mut self, source: &dyn ModelSource) {
        let id = match self.view {
            View::Path => self.path.as_ref().map(|p| p.id),
            View::Paths => self.selected_row().map(|r| r.id),
        };
        let Some(id) = id else {
            self.message = Some("no path selected".into());
            return;
        };
        let file = self.save_dir.join(format!("flowtrail-path-{id}.pcapng"));
        self.message = Some(match source.save(id, &file) {
            Ok(s) => format!("wrote {} packets of path {id} to {}", s.packets, s.path),
            Err(e) => format!("writing path {id}: {e}"),
        });
    }

    /// The pane under a screen cell.
    pub fn pane_at(&self, column: u16, row: u16) -> Option<Pane> {
        let a = self.areas();
        let pos = Position { x: column, y: row };
        let hit = |r: Option<Rect>| r.is_some_and(|r| r.contains(pos));
        if hit(a.paths) {
            Some(Pane::Paths)
        } else if hit(a.detail) {
            Some(Pane::Detail)
        } else if hit(a.stream) {
            Some(Pane::Stream)
        } else if hit(a.packets) || hit(a.dump) {
            Some(Pane::Packets)
        } else {
            None
        }
    }

    fn click(&mut self, column: u16, row: u16, source: &dyn ModelSource) {
        if self.help {
            return;
        }
        let Some(pane) = self.pane_at(column, row) else { return };
        self.focus = pane;
        let a = self.areas();
        match pane {
            Pane::Paths => {
                let Some(r) = a.paths else { return };
                // Border and header take the first two rows.
                let Some(line) = row.checked_sub(r.y + 2) else { return };
                let i = self.paths.offset + usize::from(line);
                if i >= self.paths.order.len() || line + 3 > r.height {
                    return;
                }
                if i == self.paths.selected {
                    self.open(source);
                } else {
                    let delta = i as isize - self.paths.selected as isize;
                    self.move_by(delta, source);
                }
            }
            Pane::Packets => {
                let (Some(r), Some(p)) = (a.packets, &self.path) else { return };
                if !r.contains(Position { x: column, y: row }) {
                    return;
                }
                let Some(line) = row.checked_sub(r.y + 1) else { return };
                let i = p.packet_offset + usize::from(line);
                if i < p.packets.lines.len() && line + 2 < r.height + 1 {
                    let delta = i as isize - p.packet_selected as isize;
                    self.move_by(delta, source);
                }
            }
            Pane::Detail => {
                let Some(r) = a.detail else { return };
                let Some(line) = row.checked_sub(r.y + 1) else { return };
                if let Some(p) = &mut self.path
                    && let Some(d) = &p.detail
                    && let Some(i) = super::detail::observation_at_line(d, usize::from(line), p.detail_selected, r)
                {
                    p.detail_selected = i;
                }
            }
            Pane::Stream => {}
        }
    }
}

/// Sorts `order` (indices into `rows`) by `key`, ties by id. Numeric keys are computed once
/// per row and sorted as plain integers (no pointer chasing into the rows while sorting:
/// 100k rows sort in a few milliseconds); text keys compare the rows.
fn sort_order(order: &mut Vec<u32>, rows: &[PathRow], key: SortKey, desc: bool) {
    let ip = |e: &Endpoint| -> u128 {
        match e.ip {
            std::net::IpAddr::V4(a) => u128::from(u32::from(a)),
            std::net::IpAddr::V6(a) => u128::from(a),
        }
    };
    let numeric = |r: &PathRow| -> Option<(u128, u128)> {
        let id = u128::from(r.id);
        let by = |v: u128| Some((v, id));
        match key {
            SortKey::Id => by(id),
            SortKey::Proto => by(match r.proto {
                Proto::Tcp => 0,
                Proto::Udp => 1,
                Proto::Icmp => 2,
                Proto::Other(n) => 3 + u128::from(n),
            }),
            SortKey::Client => Some((ip(&r.client), (u128::from(r.client.port) << 64) | id)),
            SortKey::Server => Some((ip(&r.server), (u128::from(r.server.port) << 64) | id)),
            SortKey::Legs => by(u128::from(r.legs)),
            SortKey::Packets => by(u128::from(r.packets[0]) + u128::from(r.packets[1])),
            SortKey::Bytes => by(u128::from(r.bytes[0]) + u128::from(r.bytes[1])),
            SortKey::Duration => by(r.duration_ns() as u128),
            SortKey::LastSeen => by(((r.last.sec as i128 + (1 << 62)) as u128) << 32 | u128::from(r.last.nsec as u32)),
            SortKey::State | SortKey::Process => None,
        }
    };
    if matches!(key, SortKey::State | SortKey::Process) {
        order.sort_unstable_by(|&a, &b| {
            let o = key.compare(&rows[a as usize], &rows[b as usize]);
            if desc { o.reverse() } else { o }
        });
        return;
    }
    let mut keyed: Vec<(u128, u128, u32)> = order
        .iter()
        .filter_map(|&i| numeric(rows.get(i as usize)?).map(|(a, b)| (a, b, i)))
        .collect();
    if desc {
        keyed.sort_unstable_by_key(|k| std::cmp::Reverse((k.0, k.1)));
    } else {
        keyed.sort_unstable_by_key(|k| (k.0, k.1));
    }
    order.clear();
    order.extend(keyed.into_iter().map(|k| k.2));
}

struct VisibleRows {
    paths: usize,
    stream: usize,
    packets: usize,
}

/// `pos + delta` clamped to `0..n` (n > 0).
fn step(pos: usize, delta: isize, n: usize) -> usize {
    let max = n.saturating_sub(1) as isize;
    (pos as isize).saturating_add(delta).clamp(0, max) as usize
}

/// Scroll offset that keeps `selected` inside a window of `height` rows starting at `offset`.
fn follow(offset: usize, selected: usize, height: usize) -> usize {
    let height = height.max(1);
    if selected < offset {
        selected
    } else if selected >= offset + height {
        selected + 1 - height
    } else {
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_clamp() {
        assert_eq!(step(0, -1, 5), 0);
        assert_eq!(step(3, 1, 5), 4);
        assert_eq!(step(4, 1, 5), 4);
        assert_eq!(step(2, isize::MIN / 2, 5), 0);
        assert_eq!(step(2, isize::MAX / 2, 5), 4);
    }

    #[test]
    fn follow_keeps_the_selection_visible() {
        assert_eq!(follow(0, 0, 10), 0);
        assert_eq!(follow(0, 10, 10), 1);
        assert_eq!(follow(5, 3, 10), 3);
        assert_eq!(follow(5, 14, 10), 5);
        assert_eq!(follow(0, 3, 0), 3);
    }

    #[test]
    fn integer_keys_sort_like_the_row_comparison() {
        use crate::capture::Timestamp;
        let ep = |a: &str, p| Endpoint { ip: a.parse().unwrap(), port: p };
        let rows: Vec<PathRow> = (0..60u64)
            .map(|i| PathRow {
                id: i + 1,
                proto: [Proto::Udp, Proto::Tcp, Proto::Icmp, Proto::Other(47)][(i % 4) as usize],
                client: if i % 5 == 0 { ep("fd00::1", (i % 7) as u16) } else { ep(&format!("10.0.{}.1", i % 9), (i % 7) as u16) },
                server: ep(&format!("192.168.{}.2", i % 3), 8443),
                legs: (i % 3) as u32,
                hops: Arc::from(Vec::new()),
                packets: [i % 11, i % 5],
                bytes: [i * 7 % 13, 0],
                state: Arc::from(["SF", "S0", "RSTO"][(i % 3) as usize]),
                history: Arc::from(""),
                first: Timestamp { sec: -5, nsec: 0 },
                last: Timestamp { sec: (i % 4) as i64 - 2, nsec: i * 1000 },
                process: None,
            })
            .collect();
        for key in SortKey::ALL {
            for desc in [false, true] {
                let mut fast: Vec<u32> = (0..rows.len() as u32).collect();
                sort_order(&mut fast, &rows, key, desc);
                let mut slow: Vec<u32> = (0..rows.len() as u32).collect();
                slow.sort_by(|&a, &b| {
                    let o = key.compare(&rows[a as usize], &rows[b as usize]);
                    if desc { o.reverse() } else { o }
                });
                assert_eq!(fast, slow, "{key:?} desc={desc}");
            }
        }
    }

    #[test]
    fn sort_keys_cycle_through_all() {
        let mut k = SortKey::Id;
        for _ in 0..SortKey::ALL.len() {
            k = k.next();
        }
        assert_eq!(k, SortKey::Id);
    }
}
