//! Snapshot tests of every TUI view on ratatui's TestBackend (160x48 unless said), built
//! from the bundled samples with a fixed clock: packet times only, shown in UTC, packet
//! lines with `-tt` epoch timestamps.

mod tui_support;

use crossterm::event::KeyCode;
use flowtrail::tui::model::ModelSource;
use tui_support::*;

fn snap(name: &str, app: &flowtrail::tui::app::App) {
    let t = draw(app);
    insta::assert_snapshot!(name, t.backend());
}

#[test]
fn paths_table_host_lo() {
    let m = model(&["host-lo.pcap"]);
    let a = app(&m, WIDTH, HEIGHT);
    snap("paths_host_lo", &a);
}

#[test]
fn paths_table_several_points_sorted_by_bytes_descending() {
    let m = model(&["vm-all.pcapng", "host=host-lo.pcap", "node=node-eth0.pcap"]);
    let mut a = app(&m, WIDTH, HEIGHT);
    // s x6: id -> proto -> client -> server -> legs -> packets -> bytes; S: descending.
    press(&mut a, &m, [key('s'), key('s'), key('s'), key('s'), key('s'), key('s'), key('S')]);
    snap("paths_several_points_bytes_desc", &a);
}

#[test]
fn paths_table_udp_icmp_and_ipv6() {
    let m = model(&["udp.pcap", "icmp.pcap", "udp6.pcap", "icmp6.pcap", "tcp6.pcap"]);
    let a = app(&m, WIDTH, HEIGHT);
    snap("paths_udp_icmp_ipv6", &a);
}

#[test]
fn path_view_detail_stream_packets_dump() {
    let m = model(&["vm-br0.pcap"]);
    let mut a = app(&m, WIDTH, HEIGHT);
    // The 1500-byte connection: the second path.
    press(&mut a, &m, [key('j'), code(KeyCode::Enter)]);
    snap("path_view_vm_br0", &a);
}

#[test]
fn detail_hop_diagram_with_three_observations_and_a_picked_one() {
    let m = model(&["br0=vm-br0.pcap", "veth-node=vm-brport.pcap", "node-eth0=node-eth0.pcap"]);
    let mut a = app(&m, WIDTH, HEIGHT);
    press(&mut a, &m, [code(KeyCode::Enter), key('j'), key('j'), code(KeyCode::Enter)]);
    snap("detail_three_observations_picked", &a);
}

#[test]
fn seed_path_joined_from_host_lo_to_node_eth0() {
    let m = seed_model();
    let mut a = app(&m, WIDTH, HEIGHT);
    snap("seed_paths_joined", &a);
    // Path 2 is the first seed connection: 3 legs, host-lo ... node-eth0. A tall terminal
    // shows the whole hop diagram.
    let mut a2 = app(&m, WIDTH, 100);
    press(&mut a2, &m, [key('j'), code(KeyCode::Enter)]);
    let d = a2.path.as_ref().and_then(|p| p.detail.as_ref()).expect("detail");
    assert_eq!(d.legs.len(), 3);
    let points: Vec<&str> = d.legs.iter().flat_map(|l| l.observations.iter().map(|o| &*o.point)).collect();
    assert_eq!(points, ["host-lo", "host-veth", "vm-veth", "vm/conntrack", "vm-br0", "vm-brport", "node-eth0"]);
    snap("seed_path_detail", &a2);
    press(&mut a, &m, [key('j'), code(KeyCode::Enter)]);
    snap("seed_path_view", &a);
}

#[test]
fn stream_hex_ipv6_and_packet_selection() {
    let m = model(&["tcp6.pcap"]);
    let mut a = app(&m, WIDTH, HEIGHT);
    press(&mut a, &m, [code(KeyCode::Enter), code(KeyCode::Tab), key('x'), code(KeyCode::Tab), key('j'), key('j'), key('j')]);
    snap("stream_hex_tcp6_packet_4", &a);
}

#[test]
fn stream_shows_gaps_as_gaps() {
    // vm-br0.pcap without its first server data segment: the reply has a hole.
    let dir = std::env::temp_dir().join(format!("ft-tui-gap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("gap.pcap");
    let mut points = flowtrail::capture::Points::default();
    let mut r = flowtrail::capture::OfflineReader::open(&sample("vm-br0.pcap"), &mut points).unwrap();
    let mut w = flowtrail::savefile::SaveWriter::create(
        out.to_str().unwrap(),
        flowtrail::savefile::Format::Pcap,
        &points,
        None,
    )
    .unwrap();
    let mut dropped = false;
    use flowtrail::capture::FrameSource;
    while let Some(f) = r.next_frame(&mut points, Vec::new()).unwrap() {
        let d = flowtrail::decode::decode(f.linktype, &f.data);
        if let flowtrail::decode::Transport::Tcp(t) = d.transport
            && !dropped
            && t.sport == 8443
            && t.payload_len > 0
        {
            dropped = true;
            continue;
        }
        w.write(&f, &points).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let inputs = flowtrail::tui::source::Inputs::open(&[out.to_string_lossy().into_owned()], None).unwrap();
    let print = flowtrail::print::Options { numeric: 2, ts_format: flowtrail::print::TsFormat::Unix, ..Default::default() };
    let m = flowtrail::tui::source::FrameModel::load(inputs, print);
    let mut a = app(&m, WIDTH, HEIGHT);
    press(&mut a, &m, [code(KeyCode::Enter)]);
    let _ = std::fs::remove_dir_all(&dir);
    snap("stream_with_gap", &a);
}

#[test]
fn help_overlay() {
    let m = model(&["host-lo.pcap"]);
    let mut a = app(&m, WIDTH, HEIGHT);
    press(&mut a, &m, [key('?')]);
    snap("help", &a);
}

#[test]
fn filter_line_with_inline_error_and_paused_status() {
    let m = model(&["host-lo.pcap"]);
    let mut a = app(&m, WIDTH, HEIGHT);
    press(&mut a, &m, [key(' '), key('/')]);
    type_text(&mut a, &m, "port 49673 and host 127.0.0.x");
    snap("filter_error_paused", &a);
}

#[test]
fn filter_applied_and_nothing_matching() {
    let m = model(&["vm-all.pcapng"]);
    let mut a = app(&m, WIDTH, HEIGHT);
    press(&mut a, &m, [key('/')]);
    type_text(&mut a, &m, "point br0 and port 8443");
    press(&mut a, &m, [code(KeyCode::Enter)]);
    snap("filter_point_br0", &a);
    press(&mut a, &m, [key('/'), ctrl('u')]);
    type_text(&mut a, &m, "udp");
    press(&mut a, &m, [code(KeyCode::Enter)]);
    snap("filter_nothing_matches", &a);
}

#[test]
fn narrow_terminal_stacks_the_path_view() {
    let m = model(&["host-lo.pcap"]);
    let mut a = app(&m, 90, 40);
    press(&mut a, &m, [key('G'), code(KeyCode::Enter)]);
    snap("path_view_narrow_90x40", &a);
}

#[test]
fn message_after_writing_a_path() {
    let m = model(&["host-lo.pcap"]);
    let mut a = app(&m, WIDTH, 12);
    let dir = std::env::temp_dir().join(format!("ft-tui-w-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    a.save_dir = std::path::PathBuf::from("/nonexistent-dir-for-flowtrail-test");
    press(&mut a, &m, [key('w')]);
    snap("write_error_message", &a);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(m.snapshot().finished);
}
