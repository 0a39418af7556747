//! The terminal UI (`flowtrail --tui`): paths, their legs and observations, the
//! conversation, and the packets, drawn with ratatui from read-only model snapshots.
//!
//! ## Structure (DESIGN.md style rule 8)
//!
//! ```text
//! data thread(s): model source (source.rs today; flow table + joiner in phase 2)
//!    |  Arc<Snapshot> published every 200 ms when something changed   (model.rs)
//!    |  lazy per-path queries: detail, stream, packets, dump, save    (ModelSource)
//!    v
//! UI thread:  terminal.rs --crossterm events--> event.rs Event
//!             Event --App::handle--> action.rs Action --App::update--> app.rs App (mutates)
//!             App --render (reads only, <= 30 frames/s)--> panes --> terminal.rs
//! ```
//!
//! One file per pane: `paths.rs` (PathsPane), `detail.rs` (DetailPane), `stream.rs`
//! (StreamPane), `packets.rs` (PacketsPane), `status.rs` (StatusBar and the message/filter
//! line), `help.rs` (HelpPane); `filter.rs` parses the `/` filter. Text that came from
//! packets is escaped by `escape.rs` before it is drawn; quantities are written by
//! `units.rs`.
//!
//! ## Threads and rates
//!
//! The UI never slows capture: the data thread only takes the model's lock to ingest a
//! batch of frames and to build a snapshot; the UI thread reads published snapshots and
//! takes the lock only for the lazy per-path queries (on a selection change). Drawing happens
//! at most every [`FRAME_PERIOD`] and only when something changed; input is drained between
//! frames, so a burst of keys costs one frame. Sorting and filtering run when the snapshot,
//! the sort or the filter changes, never per frame, and only visible rows are drawn.
//!
//! ## Terminal safety
//!
//! `terminal.rs` restores the terminal (raw mode off, main screen, mouse reporting off,
//! cursor shown) on every exit path: normal return, error, panic (a panic hook restores
//! before the message is printed) and SIGINT/SIGTERM (a flag the loop polls). Payload bytes
//! never reach the terminal raw (see `escape.rs`).

pub mod action;
pub mod app;
pub mod detail;
pub mod escape;
pub mod event;
pub mod filter;
pub mod help;
pub mod joined;
pub mod model;
pub mod packets;
pub mod paths;
pub mod source;
pub mod status;
pub mod stream;
pub mod terminal;
pub mod units;

use app::{App, View};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Shortest time between two drawn frames (30 frames per second at most).
pub const FRAME_PERIOD: Duration = Duration::from_millis(33);
/// How long the loop waits for input when nothing needs drawing (snapshots and signals are
/// checked at least this often).
const IDLE_POLL: Duration = Duration::from_millis(50);

/// Where each pane is drawn. `None`: not shown in this view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Areas {
    pub paths: Option<Rect>,
    pub detail: Option<Rect>,
    pub stream: Option<Rect>,
    pub packets: Option<Rect>,
    /// The selected packet's `-X` dump (part of the packets pane).
    pub dump: Option<Rect>,
    /// The filter input / message line.
    pub message: Rect,
    pub status: Rect,
    /// The help pane, when open.
    pub help: Rect,
}

/// The layout (pure: the same for render and for mouse hit tests in `update`).
///
/// ```text
/// View::Paths                                  View::Path (width >= 100)
/// +----------------------------------------+   +--------------+-------------------------+
/// | PathsPane (paths.rs)                    |   | DetailPane   | StreamPane (stream.rs)  |
/// |  ID PROTO CLIENT SERVER LEGS PKTS BYTES |   | (detail.rs)  |  client / server text   |
/// |  STATE HISTORY DURATION LAST PROCESS    |   | hop diagram  |  or hex, gaps marked    |
/// |                                         |   +--------------+-------------------------+
/// |                                         |   | PacketsPane (packets.rs): tcpdump lines |
/// |                                         |   +-----------------------------------------+
/// |                                         |   | the selected packet's -X dump           |
/// +----------------------------------------+   +-----------------------------------------+
/// | filter input / message (status.rs)                                                   |
/// | StatusBar (status.rs): live/paused/progress, points, drops, pkt/s, caps, filter      |
/// +--------------------------------------------------------------------------------------+
/// HelpPane (help.rs) floats centred over either view. Narrower than 100 columns the path
/// view stacks detail, stream, packets and dump; from 200 columns the dump sits right of the
/// packet list.
/// ```
pub fn areas(size: Rect, view: View) -> Areas {
    let [body, message, status] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(1), Constraint::Length(1)]).areas(size);
    let help_w = size.width.min(96);
    let help_h = size.height.saturating_sub(2).min(40);
    let help = Rect::new(
        size.x + (size.width - help_w) / 2,
        size.y + (size.height.saturating_sub(help_h)) / 2,
        help_w,
        help_h,
    );
    let mut a = Areas { paths: None, detail: None, stream: None, packets: None, dump: None, message, status, help };
    match view {
        View::Paths => a.paths = Some(body),
        View::Path if size.width >= 100 => {
            let [top, bottom] = Layout::vertical([Constraint::Percentage(50), Constraint::Fill(1)]).areas(body);
            let [detail, stream] = Layout::horizontal([Constraint::Percentage(42), Constraint::Fill(1)]).areas(top);
            let [packets, dump] = if size.width >= 200 {
                Layout::horizontal([Constraint::Fill(1), Constraint::Length(72)]).areas(bottom)
            } else {
                Layout::vertical([Constraint::Percentage(50), Constraint::Fill(1)]).areas(bottom)
            };
            (a.detail, a.stream, a.packets, a.dump) = (Some(detail), Some(stream), Some(packets), Some(dump));
        }
        View::Path => {
            let [detail, stream, packets, dump] = Layout::vertical([
                Constraint::Percentage(30),
                Constraint::Percentage(30),
                Constraint::Percentage(25),
                Constraint::Fill(1),
            ])
            .areas(body);
            (a.detail, a.stream, a.packets, a.dump) = (Some(detail), Some(stream), Some(packets), Some(dump));
        }
    }
    a
}

/// Draws the whole UI from `app` (reads only). The layout is [`areas`]'s.
pub fn render(frame: &mut Frame<'_>, app: &App) {
    let a = areas(frame.area(), app.view);
    if let Some(r) = a.paths {
        paths::PathsPane { app }.render(frame, r);
    }
    if let (Some(r), Some(p)) = (a.detail, &app.path) {
        detail::DetailPane { app, path: p }.render(frame, r);
    }
    if let (Some(r), Some(p)) = (a.stream, &app.path) {
        stream::StreamPane { app, path: p }.render(frame, r);
    }
    if let (Some(r), Some(d), Some(p)) = (a.packets, a.dump, &app.path) {
        packets::PacketsPane { app, path: p }.render(frame, r, d);
    }
    status::MessageLine { app }.render(frame, a.message);
    status::StatusBar { app }.render(frame, a.status);
    if app.help {
        help::HelpPane.render(frame, a.help);
    }
}

/// `flowtrail --tui`: runs the UI on the command line's input until `q`, SIGINT or SIGTERM;
/// returns the exit status.
pub fn run(args: &crate::cli::Args) -> i32 {
    if !terminal::is_terminal() {
        eprintln!("flowtrail: --tui needs a terminal: standard input and output must be a tty");
        return 1;
    }
    let expr = match args.filter_expression() {
        Some(e) => e,
        None => return 1,
    };
    let limits = crate::limits::Limits::from_args(args);
    let ct = match conntrack(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("flowtrail: {e}");
            return 1;
        }
    };
    let opened = if args.read.is_empty() {
        live_inputs(args, expr, &limits)
    } else {
        source::Inputs::open(&args.read, expr.as_deref())
    };
    let inputs = match opened {
        Ok(i) => i.with_conntrack(ct).with_limits(source::TuiLimits::new(&limits)),
        Err(e) => {
            eprintln!("flowtrail: {e}");
            return 1;
        }
    };
    let mut print = crate::pipeline::print_options(args);
    if print.numeric == 0 {
        print.numeric = 2;
    }
    let (model, handle) = source::FrameModel::spawn(inputs, print);
    let result = ui_loop(model.clone());
    model.stop();
    let _ = handle.join();
    match result {
        Ok(()) => {
            let errors = crate::tui::model::ModelSource::snapshot(&*model).errors.clone();
            for e in &errors {
                eprintln!("flowtrail: {e}");
            }
            if errors.is_empty() { 0 } else { 1 }
        }
        Err(e) => {
            eprintln!("flowtrail: terminal: {e}");
            1
        }
    }
}

/// `--conntrack [NETNS=]FILE` entries for the joiner.
fn conntrack(args: &crate::cli::Args) -> Result<Vec<(crate::conntrack::CtEntry, Option<Arc<str>>)>, String> {
    let mut out = Vec::new();
    for spec in &args.conntrack {
        let (scope, file) = crate::report::conntrack_spec(spec);
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("--conntrack {file}: {}", crate::capture::os_message(&e)))?;
        let (entries, errors) = crate::conntrack::text::parse_entries(&text);
        if entries.is_empty() && !errors.is_empty() {
            return Err(format!("--conntrack {file}: no conntrack entries ({})", errors[0]));
        }
        let scope: Arc<str> = Arc::from(scope);
        out.extend(entries.into_iter().map(|e| (e, Some(scope.clone()))));
    }
    Ok(out)
}

/// Live capture on the `-i` points (the default device without one), as `flowtrail -i`
/// opens them; frames come at once (immediate mode) so the view is current.
fn live_inputs(
    args: &crate::cli::Args,
    expr: Option<String>,
    limits: &crate::limits::Limits,
) -> Result<source::Inputs, String> {
    let specs: Vec<crate::netns::PointSpec> = if args.interface.is_empty() {
        match pcap::Device::lookup() {
            Ok(Some(d)) => vec![crate::netns::PointSpec { netns: crate::netns::Netns::Current, iface: d.name }],
            _ => return Err("no suitable device found; name one with -i (or read files with -r)".into()),
        }
    } else {
        args.interface.iter().map(|i| crate::netns::parse_point(i).map_err(|e| e.to_string())).collect::<Result<_, _>>()?
    };
    let direction = match args.direction.as_deref() {
        None | Some("inout") => None,
        Some("in") => Some(crate::capture::Direction::In),
        Some("out") => Some(crate::capture::Direction::Out),
        Some(d) => return Err(format!("{d}: invalid direction specified with -Q")),
    };
    let opts = crate::live::LiveOptions {
        snaplen: args.snaplen.unwrap_or(crate::live::MAXIMUM_SNAPLEN),
        buffer_kib: args.buffer_size,
        promisc: !args.no_promisc,
        direction,
        immediate: true,
        nano: args.want_nano(),
        filter: expr,
        directions: specs.len() > 1,
        max_queued_bytes: limits.live_frames,
        tap: None,
    };
    // Conntrack and process evidence for the joiner, as joined live `--flows` gathers it.
    let inputs = source::Inputs::live(&specs, opts, !args.no_join)?;
    if let Some(user) = &args.user {
        crate::live::drop_privileges(user)?;
    }
    Ok(inputs)
}

/// The UI thread: events in, actions applied, frames drawn at most every [`FRAME_PERIOD`].
fn ui_loop(model: Arc<source::FrameModel>) -> std::io::Result<()> {
    use model::ModelSource;
    let signals = terminal::Signals::install();
    let mut term = terminal::Terminal::enter()?;
    let size = term.size()?;
    let mut app = App::new(model.snapshot(), size.width, size.height);
    let mut seen_generation = app.snapshot.generation;
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    loop {
        if signals.raised() {
            app.handle(event::Event::Terminate, &*model);
        }
        let s = model.snapshot();
        if s.generation != seen_generation {
            seen_generation = s.generation;
            app.handle(event::Event::Snapshot(s), &*model);
            dirty = true;
        }
        if app.quit {
            break;
        }
        let since = last_draw.map_or(FRAME_PERIOD, |t| t.elapsed());
        if dirty && since >= FRAME_PERIOD {
            term.draw(|f| render(f, &app))?;
            last_draw = Some(Instant::now());
            dirty = false;
        }
        let timeout = if dirty { FRAME_PERIOD.saturating_sub(since) } else { IDLE_POLL };
        if let Some(e) = term.next_event(timeout)? {
            app.handle(e, &*model);
            dirty = true;
            // Drain whatever else is queued: one frame for a burst of input.
            while let Some(e) = term.next_event(Duration::ZERO)? {
                app.handle(e, &*model);
                if app.quit {
                    break;
                }
            }
        }
    }
    term.leave()
}
