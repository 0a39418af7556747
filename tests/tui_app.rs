//! State and key handling of the TUI: every key of the key map and every action, on the
//! samples (phase-1 model), without a terminal.

mod tui_support;

use crossterm::event::KeyCode;
use flowtrail::capture::{FrameSource, OfflineReader, Points};
use flowtrail::tui::action::{Action, KEY_MAP};
use flowtrail::tui::app::{Pane, SortKey, StreamFormat, View};
use flowtrail::tui::event::Event;
use flowtrail::tui::model::{ModelSource, Snapshot};
use std::sync::Arc;
use tui_support::*;

/// Samples that make more paths than a short terminal shows.
const MANY: &[&str] = &["vm-all.pcapng", "udp.pcap", "icmp.pcap", "tcp6.pcap", "udp6.pcap", "icmp6.pcap"];

fn selected_id(a: &flowtrail::tui::app::App) -> Option<u64> {
    a.selected_row().map(|r| r.id)
}

#[test]
fn vertical_movement_keys() {
    let m = model(MANY);
    let mut a = app(&m, WIDTH, 12); // 12 rows: 7 visible paths
    let n = a.paths.order.len();
    assert!((15..=28).contains(&n), "{n} paths");
    assert_eq!(selected_id(&a), Some(1));
    press(&mut a, &m, [key('j'), code(KeyCode::Down)]);
    assert_eq!(a.paths.selected, 2);
    press(&mut a, &m, [key('k')]);
    assert_eq!(a.paths.selected, 1);
    press(&mut a, &m, [code(KeyCode::Up), code(KeyCode::Up)]);
    assert_eq!(a.paths.selected, 0);
    press(&mut a, &m, [key('G')]);
    assert_eq!(a.paths.selected, n - 1);
    assert!(a.paths.offset > 0 && a.paths.offset < n, "selection scrolled into view");
    press(&mut a, &m, [key('g')]);
    assert_eq!((a.paths.selected, a.paths.offset), (0, 0));
    press(&mut a, &m, [code(KeyCode::End)]);
    assert_eq!(a.paths.selected, n - 1);
    press(&mut a, &m, [code(KeyCode::Home)]);
    assert_eq!(a.paths.selected, 0);
    // 12 rows - 2 (message, status) - 3 (borders, header) = 7 rows: half a page is 3.
    press(&mut a, &m, [ctrl('d')]);
    assert_eq!(a.paths.selected, 3);
    press(&mut a, &m, [ctrl('u')]);
    assert_eq!(a.paths.selected, 0);
    press(&mut a, &m, [code(KeyCode::PageDown)]);
    assert_eq!(a.paths.selected, 7);
    assert_eq!(a.paths.offset, 1);
    press(&mut a, &m, [ctrl('f'), ctrl('f'), ctrl('f')]);
    assert_eq!(a.paths.selected, n - 1, "clamped at the last row");
    press(&mut a, &m, [code(KeyCode::PageUp)]);
    assert_eq!(a.paths.selected, n - 8);
    press(&mut a, &m, [ctrl('b')]);
    press(&mut a, &m, [ctrl('b'), ctrl('b')]);
    assert_eq!(a.paths.selected, 0);
    // Nothing panics or moves on an empty table.
    press(&mut a, &m, [key('/')]);
    type_text(&mut a, &m, "port 1");
    press(&mut a, &m, [code(KeyCode::Enter), key('j'), key('G'), ctrl('d'), code(KeyCode::Enter), key('w')]);
    assert_eq!(a.paths.order.len(), 0);
    assert_eq!(a.view, View::Paths);
    assert_eq!(a.message.as_deref(), Some("no path selected"));
}

#[test]
fn enter_esc_and_tab_between_panes() {
    let m = model(&["br0=vm-br0.pcap", "veth-node=vm-brport.pcap"]);
    let mut a = app(&m, WIDTH, HEIGHT);
    press(&mut a, &m, [key('j'), code(KeyCode::Enter)]);
    assert_eq!(a.view, View::Path);
    assert_eq!(a.focus, Pane::Detail);
    let p = a.path.as_ref().unwrap();
    assert_eq!(p.id, 2);
    assert_eq!(p.observations.len(), 2);
    assert_eq!(p.packets.lines.len(), 20, "both points' packets");
    assert!(p.dump.as_ref().is_some_and(|d| d[0].starts_with("0x0000:  4500")));
    press(&mut a, &m, [code(KeyCode::Tab)]);
    assert_eq!(a.focus, Pane::Stream);
    press(&mut a, &m, [code(KeyCode::Tab)]);
    assert_eq!(a.focus, Pane::Packets);
    press(&mut a, &m, [code(KeyCode::Tab)]);
    assert_eq!(a.focus, Pane::Detail);
    press(&mut a, &m, [code(KeyCode::BackTab)]);
    assert_eq!(a.focus, Pane::Packets);
    press(&mut a, &m, [code(KeyCode::BackTab), code(KeyCode::BackTab)]);
    assert_eq!(a.focus, Pane::Detail);
    // Pick the second observation: packets of that point only.
    press(&mut a, &m, [key('j'), code(KeyCode::Enter)]);
    let p = a.path.as_ref().unwrap();
    assert_eq!(p.detail_selected, 1);
    assert!(p.picked.is_some());
    assert_eq!(p.packets.lines.len(), 10);
    assert!(p.packets.lines.iter().all(|l| l.summary.contains(" veth-node ")));
    // Esc: whole path again, then the paths table with the same path selected.
    press(&mut a, &m, [code(KeyCode::Esc)]);
    assert_eq!(a.view, View::Path);
    assert_eq!(a.path.as_ref().unwrap().packets.lines.len(), 20);
    press(&mut a, &m, [code(KeyCode::Left)]);
    assert_eq!(a.view, View::Paths);
    assert_eq!(a.focus, Pane::Paths);
    assert_eq!(selected_id(&a), Some(2));
    // Right / l open too; h goes back.
    press(&mut a, &m, [code(KeyCode::Right)]);
    assert_eq!(a.view, View::Path);
    press(&mut a, &m, [key('h'), key('l')]);
    assert_eq!(a.view, View::Path);
    // Tab does nothing in the paths view.
    press(&mut a, &m, [code(KeyCode::Esc), code(KeyCode::Tab)]);
    assert_eq!(a.focus, Pane::Paths);
}

#[test]
fn packets_and_stream_panes_move_and_scroll() {
    let m = model(&["host-lo.pcap"]);
    let mut a = app(&m, WIDTH, 30);
    // Connection 3 (12000 bytes each way).
    press(&mut a, &m, [key('j'), key('j'), key('j'), code(KeyCode::Enter), code(KeyCode::Tab)]);
    let lines = a.path.as_ref().unwrap().stream_lines.len();
    assert!(lines > 300, "12000 bytes in 64-byte lines each way: {lines}");
    press(&mut a, &m, [key('j'), key('j')]);
    assert_eq!(a.path.as_ref().unwrap().stream_offset, 2);
    press(&mut a, &m, [key('G')]);
    let bottom = a.path.as_ref().unwrap().stream_offset;
    assert!(bottom > 300 && bottom < lines);
    press(&mut a, &m, [key('x')]);
    assert_eq!(a.stream_format, StreamFormat::Hex);
    assert!(a.path.as_ref().unwrap().stream_lines[0].text.starts_with("> 00000000  6674 2073"));
    press(&mut a, &m, [key('x')]);
    assert_eq!(a.stream_format, StreamFormat::Ascii);
    press(&mut a, &m, [key('g'), code(KeyCode::Tab)]);
    assert_eq!(a.focus, Pane::Packets);
    let before = a.path.as_ref().unwrap().dump.clone();
    press(&mut a, &m, [key('j'), key('j'), key('j')]);
    let p = a.path.as_ref().unwrap();
    assert_eq!(p.packet_selected, 3);
    assert_ne!(p.dump, before, "the dump follows the selected packet");
    press(&mut a, &m, [key('G')]);
    let p = a.path.as_ref().unwrap();
    assert_eq!(p.packet_selected, p.packets.lines.len() - 1);
    // Enter in the packets pane goes to the stream.
    press(&mut a, &m, [code(KeyCode::Enter)]);
    assert_eq!(a.focus, Pane::Stream);
}

#[test]
fn sort_cycles_every_column_and_reverses() {
    let m = model(&["vm-all.pcapng", "host=host-lo.pcap"]);
    let mut a = app(&m, WIDTH, HEIGHT);
    press(&mut a, &m, [key('j'), key('j')]);
    let id = selected_id(&a);
    for k in SortKey::ALL.iter().skip(1) {
        press(&mut a, &m, [key('s')]);
        assert_eq!(a.paths.sort, *k);
        assert_eq!(selected_id(&a), id, "selection follows the path");
        let rows: Vec<_> = a.paths.order.iter().map(|&i| &a.snapshot.paths[i as usize]).collect();
        if *k == SortKey::Bytes {
            assert!(rows.windows(2).all(|w| w[0].bytes[0] + w[0].bytes[1] <= w[1].bytes[0] + w[1].bytes[1]));
        }
    }
    press(&mut a, &m, [key('s')]);
    assert_eq!(a.paths.sort, SortKey::Id);
    press(&mut a, &m, [key('S')]);
    assert!(a.paths.descending);
    let first = a.paths.order[0] as usize;
    assert_eq!(a.snapshot.paths[first].id, a.snapshot.paths.len() as u64);
    assert_eq!(selected_id(&a), id);
}

#[test]
fn filter_keys_apply_cancel_clear_and_errors() {
    let m = model(&["vm-all.pcapng", "host=host-lo.pcap"]);
    let mut a = app(&m, WIDTH, HEIGHT);
    let all = a.paths.order.len();
    press(&mut a, &m, [key('/')]);
    assert!(a.filter.editing);
    // Keys that are actions elsewhere are text here.
    type_text(&mut a, &m, "port 8443 and q");
    assert!(!a.quit);
    assert!(a.filter.error.is_some());
    press(&mut a, &m, [code(KeyCode::Enter)]);
    assert!(a.filter.editing, "an invalid filter is not applied");
    press(&mut a, &m, [code(KeyCode::Backspace), code(KeyCode::Backspace), code(KeyCode::Backspace), code(KeyCode::Backspace), code(KeyCode::Backspace), code(KeyCode::Backspace)]);
    assert_eq!(a.filter.input, "port 8443");
    assert!(a.filter.error.is_none());
    press(&mut a, &m, [code(KeyCode::Enter)]);
    assert!(!a.filter.editing);
    assert_eq!(a.paths.order.len(), 5);
    assert!(a.paths.order.iter().all(|&i| a.snapshot.paths[i as usize].server.port == 8443));
    // Esc cancels an edit and keeps the filter.
    press(&mut a, &m, [key('/'), ctrl('u')]);
    assert_eq!(a.filter.input, "");
    type_text(&mut a, &m, "udp");
    press(&mut a, &m, [code(KeyCode::Esc)]);
    assert_eq!(a.paths.order.len(), 5);
    assert_eq!(a.filter.input, "port 8443");
    // ctrl-c cancels too (it does not quit while editing).
    press(&mut a, &m, [key('/'), ctrl('c')]);
    assert!(!a.filter.editing && !a.quit);
    // Other filters.
    for (f, n) in [("point host", 5), ("net 192.168.65.0/24", 5), ("host 127.0.0.1 and not port 55002", 5), ("proto tcp", all), ("", all)] {
        press(&mut a, &m, [key('/'), ctrl('u')]);
        type_text(&mut a, &m, f);
        press(&mut a, &m, [code(KeyCode::Enter)]);
        assert_eq!(a.paths.order.len(), n, "{f}");
    }
    assert!(a.filter.applied.is_none());
}

#[test]
fn pause_keeps_the_view_and_resume_adopts_the_newest_snapshot() {
    let m = model(&["host-lo.pcap"]);
    let mut a = app(&m, WIDTH, HEIGHT);
    let old = a.snapshot.generation;
    press(&mut a, &m, [key(' ')]);
    assert!(a.paused);
    let mut newer = (*m.snapshot()).clone();
    newer.generation = old + 10;
    newer.paths.truncate(2);
    a.handle(Event::Snapshot(Arc::new(newer)), &m);
    assert_eq!(a.snapshot.generation, old, "paused: the view stays");
    assert_eq!(a.paths.order.len(), 5);
    assert!(a.pending.is_some());
    press(&mut a, &m, [key(' ')]);
    assert!(!a.paused);
    assert_eq!(a.snapshot.generation, old + 10);
    assert_eq!(a.paths.order.len(), 2);
}

#[test]
fn order_is_rebuilt_only_when_something_changed() {
    let m = model(&["vm-all.pcapng"]);
    let mut a = app(&m, WIDTH, HEIGHT);
    let r = a.paths.rebuilds;
    for _ in 0..10 {
        let _ = draw(&a);
    }
    a.handle(Event::Snapshot(m.snapshot()), &m); // the same snapshot again
    press(&mut a, &m, [key('j'), key('k'), key('G')]);
    assert_eq!(a.paths.rebuilds, r);
    press(&mut a, &m, [key('s')]);
    assert_eq!(a.paths.rebuilds, r + 1);
    let mut s: Snapshot = (*m.snapshot()).clone();
    s.generation += 1;
    a.handle(Event::Snapshot(Arc::new(s)), &m);
    assert_eq!(a.paths.rebuilds, r + 2);
}

#[test]
fn help_quit_and_terminate() {
    let m = model(&["host-lo.pcap"]);
    let mut a = app(&m, WIDTH, HEIGHT);
    press(&mut a, &m, [key('?')]);
    assert!(a.help);
    press(&mut a, &m, [key('j'), code(KeyCode::Enter)]);
    assert_eq!((a.paths.selected, a.view), (0, View::Paths), "keys do not reach the panes under the help");
    press(&mut a, &m, [key('?')]);
    assert!(!a.help);
    press(&mut a, &m, [code(KeyCode::F(1)), code(KeyCode::Esc)]);
    assert!(!a.help);
    press(&mut a, &m, [key('q')]);
    assert!(a.quit);
    let mut a = app(&m, WIDTH, HEIGHT);
    press(&mut a, &m, [ctrl('c')]);
    assert!(a.quit);
    let mut a = app(&m, WIDTH, HEIGHT);
    a.handle(Event::Terminate, &m);
    assert!(a.quit);
}

#[test]
fn write_saves_the_selected_path_as_pcapng() {
    let m = model(&["br0=vm-br0.pcap", "veth-node=vm-brport.pcap"]);
    let dir = std::env::temp_dir().join(format!("ft-tui-write-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut a = app(&m, WIDTH, HEIGHT);
    a.save_dir = dir.clone();
    press(&mut a, &m, [key('j'), key('w')]);
    let file = dir.join("flowtrail-path-2.pcapng");
    assert_eq!(
        a.message.as_deref(),
        Some(format!("wrote 20 packets of path 2 to {}", file.display()).as_str())
    );
    let mut points = Points::default();
    let mut r = OfflineReader::open(file.to_str().unwrap(), &mut points).unwrap();
    let mut n = 0;
    while let Some(_f) = r.next_frame(&mut points, Vec::new()).unwrap() {
        n += 1;
    }
    assert_eq!(n, 20);
    let labels: Vec<&str> = points.points.iter().map(|p| p.label.as_str()).collect();
    assert_eq!(labels, ["br0", "veth-node"]);
    // From the path view too; Esc clears the message in the table.
    press(&mut a, &m, [code(KeyCode::Enter), key('w')]);
    assert!(a.message.as_deref().unwrap().starts_with("wrote 20 packets of path 2"));
    press(&mut a, &m, [code(KeyCode::Esc), code(KeyCode::Esc)]);
    assert_eq!((a.view, a.message.as_deref()), (View::Paths, None));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mouse_click_selects_opens_and_wheel_scrolls() {
    let m = model(MANY);
    let mut a = app(&m, WIDTH, HEIGHT);
    // Row 0 is the border, row 1 the header: row 5 shows the fourth path.
    a.handle(click(20, 5), &m);
    assert_eq!(a.paths.selected, 3);
    a.handle(wheel(20, 5, true), &m);
    assert_eq!(a.paths.selected, 6);
    a.handle(wheel(20, 5, false), &m);
    assert_eq!(a.paths.selected, 3);
    // Clicks outside the rows do nothing.
    a.handle(click(20, 1), &m);
    a.handle(click(20, 40), &m);
    assert_eq!(a.paths.selected, 3);
    // A click on the selected row opens it.
    a.handle(click(20, 5), &m);
    assert_eq!(a.view, View::Path);
    assert_eq!(a.path.as_ref().unwrap().id, 4);
    let areas = a.areas();
    let s = areas.stream.unwrap();
    a.handle(click(s.x + 3, s.y + 3), &m);
    assert_eq!(a.focus, Pane::Stream);
    let pk = areas.packets.unwrap();
    a.handle(click(pk.x + 3, pk.y + 3), &m);
    assert_eq!(a.focus, Pane::Packets);
    assert_eq!(a.path.as_ref().unwrap().packet_selected, 2);
    a.handle(wheel(pk.x + 3, pk.y + 3, true), &m);
    assert_eq!(a.path.as_ref().unwrap().packet_selected, 5);
    let d = areas.detail.unwrap();
    a.handle(click(d.x + 3, d.y + 4), &m);
    assert_eq!(a.focus, Pane::Detail);
    assert_eq!(a.path.as_ref().unwrap().detail_selected, 0);
}

#[test]
fn resize_changes_the_layout_and_keeps_the_selection_visible() {
    let m = model(&["vm-all.pcapng"]);
    let mut a = app(&m, WIDTH, HEIGHT);
    press(&mut a, &m, [key('G')]);
    a.handle(Event::Resize { width: 80, height: 10 }, &m);
    assert_eq!((a.size.width, a.size.height), (80, 10));
    let visible = 10 - 2 - 3;
    assert!(a.paths.selected < a.paths.offset + visible && a.paths.selected >= a.paths.offset);
    press(&mut a, &m, [code(KeyCode::Enter)]);
    assert!(a.areas().dump.unwrap().y > a.areas().packets.unwrap().y, "narrow: stacked");
    a.handle(Event::Resize { width: 220, height: 50 }, &m);
    assert!(a.areas().dump.unwrap().x > a.areas().packets.unwrap().x, "wide: side by side");
    // Tiny terminals draw without panicking.
    for (w, h) in [(1, 1), (0, 0), (5, 3), (20, 4)] {
        a.handle(Event::Resize { width: w, height: h }, &m);
        let _ = draw(&a);
    }
}

#[test]
fn every_key_map_action_is_covered_here() {
    // The tests above exercise each of these; this guards the list against new actions.
    let covered = [
        Action::Up, Action::Down, Action::Top, Action::Bottom, Action::HalfPageDown, Action::HalfPageUp,
        Action::PageDown, Action::PageUp, Action::Open, Action::Back, Action::FocusNext, Action::FocusPrev,
        Action::FilterStart, Action::SortNext, Action::SortReverse, Action::TogglePause,
        Action::ToggleStreamFormat, Action::WritePath, Action::ToggleHelp, Action::Quit,
    ];
    for e in KEY_MAP {
        assert!(covered.contains(&e.action), "{:?} has no test", e.action);
    }
}

#[test]
fn hostile_payloads_never_reach_the_screen_raw() {
    // A UDP datagram full of escape sequences and every byte value.
    let dir = std::env::temp_dir().join(format!("ft-tui-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hostile.pcap");
    let mut payload: Vec<u8> = b"\x1b]0;pwned\x07\x1b[2J\x1b[31m\r\n\x9b31m".to_vec();
    payload.extend(0u8..=255);
    let mut frame = Vec::new();
    etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(5353, 53)
        .write(&mut frame, &payload)
        .unwrap();
    let mut pcap = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0];
    pcap.extend(1u32.to_le_bytes());
    pcap.extend(0u32.to_le_bytes());
    pcap.extend((frame.len() as u32).to_le_bytes());
    pcap.extend((frame.len() as u32).to_le_bytes());
    pcap.extend(&frame);
    std::fs::write(&file, pcap).unwrap();
    let inputs = flowtrail::tui::source::Inputs::open(&[file.to_string_lossy().into_owned()], None).unwrap();
    let m = flowtrail::tui::source::FrameModel::load(inputs, flowtrail::print::Options::default());
    let mut a = app(&m, WIDTH, HEIGHT);
    press(&mut a, &m, [code(KeyCode::Enter)]);
    for fmt in [0, 1] {
        let t = draw(&a);
        for cell in t.backend().buffer().content() {
            assert!(!cell.symbol().chars().any(|c| c.is_control()), "{:?}", cell.symbol());
        }
        if fmt == 0 {
            press(&mut a, &m, [key('x')]);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
