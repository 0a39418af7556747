//! TUI benchmark (`cargo bench --bench tui_bench`; `-- --quick` for a short run).
//!
//! 1. Frame render time with 100 000 paths loaded (160x48, ratatui's TestBackend, which
//!    does everything a real terminal backend does but the write): paths view and path view,
//!    median / p99 / max over many frames; the cost of adopting a new snapshot, re-sorting
//!    and re-filtering (done on change, never per frame). Budget: a frame under 16 ms.
//! 2. Responsiveness while replaying a large capture (`bench/gen_capture.py`, 25k
//!    connections, about 500k packets): the data thread loads the file while a UI loop on
//!    this thread adopts snapshots, presses keys and draws at 30 frames/s; reports the UI's
//!    per-frame work and key-to-frame latency, and the load time with and without the UI.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use flowtrail::capture::Timestamp;
use flowtrail::tui::app::App;
use flowtrail::tui::event::Event;
use flowtrail::tui::model::*;
use flowtrail::tui::source::{FrameModel, Inputs};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PATHS: usize = 100_000;
const BUDGET: Duration = Duration::from_millis(16);

/// A model of `n` synthetic paths with canned per-path data.
struct Synthetic {
    snapshot: Arc<Snapshot>,
}

fn ep(a: u32, port: u16) -> Endpoint {
    Endpoint { ip: IpAddr::V4(Ipv4Addr::from(a)), port }
}

impl Synthetic {
    fn new(n: usize, generation: u64) -> Synthetic {
        let states: [Arc<str>; 4] = [Arc::from("SF"), Arc::from("S1"), Arc::from("RSTO"), Arc::from("S0")];
        let history: Arc<str> = Arc::from("ShADadFf");
        let proc_: Arc<str> = Arc::from("socat[4242]");
        let paths = (0..n)
            .map(|i| {
                let client = ep(0x0a00_0000 + (i as u32 % 60_000), 32768 + (i % 28_000) as u16);
                let server = ep(0xc0a8_3102 + (i as u32 % 50), [8443, 55001, 49673][i % 3]);
                let x = (i as u64).wrapping_mul(2_654_435_761) % 1_000_003;
                PathRow {
                    id: i as u64 + 1,
                    proto: if i % 10 == 9 { Proto::Udp } else { Proto::Tcp },
                    client,
                    server,
                    legs: 1 + (i % 3) as u32,
                    hops: Arc::from(vec![Hop { point: (i % 4) as u32, client, server }]),
                    packets: [x % 100, x % 77],
                    bytes: [x * 13, x * 7],
                    state: states[i % 4].clone(),
                    history: history.clone(),
                    first: Timestamp { sec: 1_700_000_000 + (i / 100) as i64, nsec: 0 },
                    last: Timestamp { sec: 1_700_000_000 + (i / 100) as i64 + (x % 100) as i64, nsec: 0 },
                    process: (i % 2 == 0).then(|| proc_.clone()),
                }
            })
            .collect();
        let points = ["lo", "vm/br0", "vm/veth-node", "node/eth0"]
            .iter()
            .map(|l| PointStatus { label: Arc::from(*l), packets: 1_234_567, dropped: Some(0) })
            .collect();
        Synthetic {
            snapshot: Arc::new(Snapshot {
                generation,
                clock: Some(Timestamp { sec: 1_700_001_100, nsec: 0 }),
                paths,
                points,
                live: true,
                packets_per_second: Some(250_000.0),
                ..Snapshot::default()
            }),
        }
    }
}

impl ModelSource for Synthetic {
    fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.clone()
    }
    fn detail(&self, id: PathId) -> Option<PathDetail> {
        let r = self.snapshot.paths.get(usize::try_from(id).ok()?.checked_sub(1)?)?;
        let obs = |p: &str| ObservationDetail {
            point: Arc::from(p),
            client: r.client,
            server: r.server,
            packets: r.packets,
            bytes: r.bytes,
            first: r.first,
            last: r.last,
            state: r.state.clone(),
            history: r.history.clone(),
            changes: None,
            latency: Some("c2s +3us s2c +2us".into()),
            note: None,
        };
        Some(PathDetail {
            id,
            proto: r.proto,
            legs: vec![LegDetail {
                observations: vec![obs("lo"), obs("vm/br0"), obs("node/eth0")],
                process: r.process.clone(),
                join: Some(JoinInfo { kind: "nat".into(), evidence: vec!["conntrack".into()] }),
                link: None,
            }],
            notes: Vec::new(),
        })
    }
    fn stream(&self, _id: PathId, _at: Option<ObservationRef>) -> StreamView {
        let line = b"GET /api/v1/items?page=1 HTTP/1.1\r\nHost: svc.local\r\n\r\n".to_vec();
        StreamView {
            chunks: (0..2000)
                .map(|i| StreamChunk::Data {
                    side: if i % 2 == 0 { Side::Client } else { Side::Server },
                    offset: i as u64 * 64,
                    bytes: line.clone(),
                })
                .collect(),
            truncated: false,
        }
    }
    fn packets(&self, _id: PathId, _at: Option<ObservationRef>) -> PacketList {
        PacketList {
            lines: (0..5000)
                .map(|i| PacketLine {
                    packet: PacketRef(i),
                    side: if i % 2 == 0 { Side::Client } else { Side::Server },
                    summary: format!("12:00:00.{i:06} IP 10.0.0.1.40000 > 192.168.49.2.8443: Flags [P.], seq {i}:{}, ack 1, win 502, length 64", i + 64),
                })
                .collect(),
            truncated: false,
        }
    }
    fn packet_dump(&self, _p: PacketRef) -> Option<Vec<String>> {
        Some((0..20).map(|i| format!("0x{:04x}:  4500 003c e585 4000 4006 71e2 c0a8 3101  E..<..@.@.q...1.", i * 16)).collect())
    }
    fn save(&self, _id: PathId, _file: &Path) -> Result<Saved, String> {
        Err("not in the benchmark".into())
    }
}

fn key(c: KeyCode) -> Event {
    Event::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

struct Stats {
    median: Duration,
    p99: Duration,
    max: Duration,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Stats { median: at(0.5), p99: at(0.99), max: *v.last().unwrap_or(&Duration::ZERO) }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn time_frames(term: &mut Terminal<TestBackend>, app: &mut App, model: &dyn ModelSource, frames: usize) -> Stats {
    let mut v = Vec::with_capacity(frames);
    for i in 0..frames {
        // Move the selection every frame (a scrolling user), as the worst realistic case.
        app.handle(key(if (i / 50) % 2 == 0 { KeyCode::Char('j') } else { KeyCode::Char('k') }), model);
        let t = Instant::now();
        term.draw(|f| flowtrail::tui::render(f, app)).expect("draw");
        v.push(t.elapsed());
    }
    stats(v)
}

fn render_benchmark(frames: usize) -> bool {
    println!("== render with {PATHS} paths, 160x48 ==");
    let t = Instant::now();
    let model = Synthetic::new(PATHS, 1);
    println!("build synthetic snapshot:        {}", ms(t.elapsed()));
    let t = Instant::now();
    let mut app = App::new(model.snapshot(), 160, 48);
    println!("first order (filter+sort, id):   {}", ms(t.elapsed()));
    let mut term = Terminal::new(TestBackend::new(160, 48)).expect("backend");
    let rebuilds = app.paths.rebuilds;
    let paths = time_frames(&mut term, &mut app, &model, frames);
    assert_eq!(app.paths.rebuilds, rebuilds, "order rebuilt while drawing");
    println!(
        "paths view frame:                median {}  p99 {}  max {}  ({frames} frames, order rebuilt 0 times)",
        ms(paths.median),
        ms(paths.p99),
        ms(paths.max)
    );
    // The same, scrolled to the end of the table.
    app.handle(key(KeyCode::Char('G')), &model);
    let end = time_frames(&mut term, &mut app, &model, frames / 4);
    println!("paths view frame at row 100000:  median {}  p99 {}", ms(end.median), ms(end.p99));
    let mut sort = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        app.handle(key(KeyCode::Char('s')), &model);
        sort.push(t.elapsed());
    }
    let sort = stats(sort);
    println!("re-sort on `s` (once per change): median {}  max {}", ms(sort.median), ms(sort.max));
    let t = Instant::now();
    for c in "/net 10.0.0.0/20 and port 8443".chars() {
        app.handle(key(KeyCode::Char(c)), &model);
    }
    app.handle(key(KeyCode::Enter), &model);
    println!(
        "apply a filter (once per change): {}  ({} of {PATHS} paths match)",
        ms(t.elapsed()),
        app.paths.order.len()
    );
    let next = Arc::new(Snapshot { generation: 2, ..(*model.snapshot()).clone() });
    let t = Instant::now();
    app.handle(Event::Snapshot(next), &model);
    println!("adopt a new snapshot (re-filter+sort): {}", ms(t.elapsed()));
    app.handle(key(KeyCode::Enter), &model);
    let path = time_frames(&mut term, &mut app, &model, frames / 2);
    println!(
        "path view frame (5000 packets, 2000 stream chunks): median {}  p99 {}  max {}",
        ms(path.median),
        ms(path.p99),
        ms(path.max)
    );
    let ok = paths.p99 < BUDGET && path.p99 < BUDGET && end.p99 < BUDGET;
    println!("budget {}: {}", ms(BUDGET), if ok { "met (p99)" } else { "MISSED" });
    ok
}

fn replay_benchmark(quick: bool) {
    println!("\n== responsiveness while replaying a large capture ==");
    let dir = std::env::temp_dir().join(format!("flowtrail-tui-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join("replay.pcap");
    let conns_arg = std::env::args().skip_while(|a| a != "--connections").nth(1);
    let conns = conns_arg.as_deref().unwrap_or(if quick { "2500" } else { "25000" });
    let generated = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/gen_capture.py"))
        .arg(&file)
        .args(["--connections", conns])
        .status();
    if !generated.is_ok_and(|s| s.success()) {
        println!("SKIP: python3 bench/gen_capture.py failed");
        return;
    }
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let spec = vec![file.to_string_lossy().into_owned()];
    let print = flowtrail::print::Options { numeric: 2, ..Default::default() };

    // The data thread alone (no UI), before and after the run with the UI.
    let without_ui = |print: flowtrail::print::Options| {
        let t = Instant::now();
        let (m, h) = FrameModel::spawn(Inputs::open(&spec, None).expect("open"), print);
        let _ = h.join();
        let took = t.elapsed();
        (m, took)
    };
    let (m, alone) = without_ui(print.clone());
    let s = m.snapshot();
    let packets: u64 = s.points.iter().map(|p| p.packets).sum();
    println!(
        "capture: {conns} connections, {packets} packets, {:.1} MB, {} paths",
        size as f64 / 1e6,
        s.paths.len()
    );
    println!("load without UI:                 {:.3} s ({:.0} packets/s)", alone.as_secs_f64(), packets as f64 / alone.as_secs_f64());
    drop(s);
    drop(m);

    let t = Instant::now();
    let print2 = print.clone();
    let (model, handle) = FrameModel::spawn(Inputs::open(&spec, None).expect("open"), print);
    // When the data thread ends (not quantised to the UI's frames).
    let loaded = std::thread::spawn(move || {
        let _ = handle.join();
        t.elapsed()
    });
    let mut app = App::new(model.snapshot(), 160, 48);
    let mut term = Terminal::new(TestBackend::new(160, 48)).expect("backend");
    let mut frame_work = Vec::new();
    let mut key_to_frame = Vec::new();
    let mut snapshots = 0;
    let mut seen = app.snapshot.generation;
    let mut i = 0u64;
    let mut opened = false;
    loop {
        let start = Instant::now();
        let s = model.snapshot();
        if s.generation != seen {
            seen = s.generation;
            snapshots += 1;
            app.handle(Event::Snapshot(s.clone()), &*model);
        }
        // A key every frame: scroll the table; open a path half way through and browse it.
        let k = Instant::now();
        if !opened && app.paths.order.len() > 1000 && i > 10 {
            app.handle(key(KeyCode::Enter), &*model);
            app.handle(key(KeyCode::Tab), &*model);
            app.handle(key(KeyCode::Tab), &*model);
            opened = true;
        }
        app.handle(key(KeyCode::Char(if i % 40 < 20 { 'j' } else { 'k' })), &*model);
        term.draw(|f| flowtrail::tui::render(f, &app)).expect("draw");
        key_to_frame.push(k.elapsed());
        frame_work.push(start.elapsed());
        i += 1;
        if s.finished {
            break;
        }
        std::thread::sleep(flowtrail::tui::FRAME_PERIOD.saturating_sub(start.elapsed()));
    }
    let with_ui = loaded.join().unwrap_or_default();
    // Frames of the fully loaded, joined model (the real source): table, then a path.
    let mut table = Vec::new();
    app.handle(key(KeyCode::Esc), &*model);
    for j in 0..200 {
        let t0 = Instant::now();
        app.handle(key(KeyCode::Char(if j % 40 < 20 { 'j' } else { 'k' })), &*model);
        term.draw(|f| flowtrail::tui::render(f, &app)).expect("draw");
        table.push(t0.elapsed());
    }
    let mut opened_frames = Vec::new();
    app.handle(key(KeyCode::Enter), &*model);
    for j in 0..200 {
        let t0 = Instant::now();
        app.handle(key(KeyCode::Char(if j % 20 < 10 { 'j' } else { 'k' })), &*model);
        term.draw(|f| flowtrail::tui::render(f, &app)).expect("draw");
        opened_frames.push(t0.elapsed());
    }
    let (tb, op) = (stats(table), stats(opened_frames));
    println!(
        "joined model loaded ({} paths): table key+frame median {} p99 {}; path view key+frame median {} p99 {}",
        app.snapshot.paths.len(),
        ms(tb.median),
        ms(tb.p99),
        ms(op.median),
        ms(op.p99)
    );
    drop(model);
    let (m, again) = without_ui(print2);
    drop(m);
    println!("load without UI (again):         {:.3} s", again.as_secs_f64());
    let alone = alone.min(again);
    let fw = stats(frame_work);
    let kf = stats(key_to_frame);
    println!(
        "load with UI at 30 frames/s:     {:.3} s ({:+.1}% vs the faster run without)",
        with_ui.as_secs_f64(),
        (with_ui.as_secs_f64() / alone.as_secs_f64() - 1.0) * 100.0
    );
    println!("UI frames: {i}, snapshots adopted: {snapshots} (published every {} ms)", flowtrail::tui::source::PUBLISH_PERIOD.as_millis());
    println!("UI work per frame (adopt+keys+draw): median {}  p99 {}  max {}", ms(fw.median), ms(fw.p99), ms(fw.max));
    println!("key to drawn frame:              median {}  p99 {}  max {}", ms(kf.median), ms(kf.p99), ms(kf.max));
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let ok = render_benchmark(if quick { 100 } else { 1000 });
    replay_benchmark(quick);
    if !ok {
        std::process::exit(1);
    }
}
