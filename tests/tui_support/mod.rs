//! Helpers shared by the TUI tests: load samples into the phase-1 model, build an app of a
//! fixed size and clock (UTC, epoch timestamps in packet lines), press keys, draw on
//! ratatui's TestBackend.
#![allow(dead_code)]

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use flowtrail::print::{Options, TsFormat};
use flowtrail::tui::app::App;
use flowtrail::tui::event::Event;
use flowtrail::tui::model::ModelSource;
use flowtrail::tui::source::{FrameModel, Inputs};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

pub const WIDTH: u16 = 160;
pub const HEIGHT: u16 = 48;

pub fn sample(name: &str) -> String {
    format!("{}/samples/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Loads `specs` (`[LABEL=]FILE` under samples/) to the end.
pub fn model(specs: &[&str]) -> FrameModel {
    let specs: Vec<String> = specs
        .iter()
        .map(|s| match s.split_once('=') {
            Some((l, f)) => format!("{l}={}", sample(f)),
            None => sample(s),
        })
        .collect();
    let inputs = Inputs::open(&specs, None).expect("samples open");
    let print = Options { numeric: 2, ts_format: TsFormat::Unix, ..Options::default() };
    FrameModel::load(inputs, print)
}

/// The seed path as scripts/demo.sh shows it: every point's capture and the VM's
/// conntrack table (`--conntrack vm=samples/vm-conntrack.txt`), loaded to the end.
pub fn seed_model() -> FrameModel {
    let specs: Vec<String> = ["host-lo", "host-veth", "vm-veth", "vm-lo", "vm-br0", "vm-brport", "node-eth0"]
        .iter()
        .map(|p| sample(&format!("{p}.pcap")))
        .collect();
    let text = std::fs::read_to_string(sample("vm-conntrack.txt")).expect("conntrack sample");
    let (entries, _) = flowtrail::conntrack::text::parse_entries(&text);
    let scope: std::sync::Arc<str> = std::sync::Arc::from("vm");
    let inputs = Inputs::open(&specs, None)
        .expect("samples open")
        .with_conntrack(entries.into_iter().map(|e| (e, Some(scope.clone()))).collect());
    let print = Options { numeric: 2, ts_format: TsFormat::Unix, ..Options::default() };
    FrameModel::load(inputs, print)
}

/// An app over `model` at the given size, showing times in UTC.
pub fn app(model: &FrameModel, width: u16, height: u16) -> App {
    let mut a = App::new(model.snapshot(), width, height);
    a.utc = true;
    a
}

pub fn key(c: char) -> Event {
    Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

pub fn ctrl(c: char) -> Event {
    Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

pub fn code(c: KeyCode) -> Event {
    Event::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

pub fn click(column: u16, row: u16) -> Event {
    Event::Mouse(MouseEvent { kind: MouseEventKind::Down(MouseButton::Left), column, row, modifiers: KeyModifiers::NONE })
}

pub fn wheel(column: u16, row: u16, down: bool) -> Event {
    let kind = if down { MouseEventKind::ScrollDown } else { MouseEventKind::ScrollUp };
    Event::Mouse(MouseEvent { kind, column, row, modifiers: KeyModifiers::NONE })
}

/// Sends events in order.
pub fn press(app: &mut App, model: &FrameModel, events: impl IntoIterator<Item = Event>) {
    for e in events {
        app.handle(e, model);
    }
}

/// Types `text` as key presses.
pub fn type_text(app: &mut App, model: &FrameModel, text: &str) {
    for c in text.chars() {
        app.handle(key(c), model);
    }
}

/// Draws the app on a TestBackend of its size.
pub fn draw(app: &App) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(app.size.width, app.size.height)).expect("test backend");
    t.draw(|f| flowtrail::tui::render(f, app)).expect("draw");
    t
}

/// The drawn screen as text lines (trailing spaces kept).
pub fn screen(app: &App) -> Vec<String> {
    let t = draw(app);
    let buf = t.backend().buffer();
    (0..buf.area.height)
        .map(|y| (0..buf.area.width).map(|x| buf[(x, y)].symbol().to_string()).collect::<String>())
        .collect()
}
