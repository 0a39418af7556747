//! The TUI shows what the command line gives for the same input: every observation's state
//! and history equal `--flows=json`'s `conn_state` and `history`, the stream pane equals
//! `--follow ID --follow-format ascii` (gaps declared the same way, also on captures with
//! deleted frames), and a tuple reused at one point keeps each connection's packets apart.

mod flow_support;
mod tui_support;

use flowtrail::report::follow::{Follow, FollowFormat};
use flowtrail::tui::model::{ModelSource, ObservationRef, Side, StreamChunk, StreamView};
use flowtrail::tui::source::{FrameModel, Inputs};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use tui_support::*;

/// Sample sets: each one a `-r` list (with `--conntrack` for the seed path).
fn sets() -> Vec<(Vec<String>, Option<String>)> {
    let one = |f: &str| (vec![sample(f)], None);
    let seed: Vec<String> = ["host-lo", "host-veth", "vm-veth", "vm-lo", "vm-br0", "vm-brport", "node-eth0"]
        .iter()
        .map(|p| sample(&format!("{p}.pcap")))
        .collect();
    vec![
        (seed, Some(format!("vm={}", sample("vm-conntrack.txt")))),
        one("vm-all.pcapng"),
        one("udp.pcap"),
        one("icmp.pcap"),
        one("tcp6.pcap"),
        one("udp6.pcap"),
        one("icmp6.pcap"),
        one("vm-br0-brnf.pcap"),
    ]
}

fn load(files: &[String], conntrack: Option<&str>) -> FrameModel {
    let mut inputs = Inputs::open(files, None).expect("inputs open");
    if let Some(spec) = conntrack {
        let (scope, file) = spec.split_once('=').unwrap();
        let text = std::fs::read_to_string(file).unwrap();
        let (entries, _) = flowtrail::conntrack::text::parse_entries(&text);
        let scope: std::sync::Arc<str> = std::sync::Arc::from(scope);
        inputs = inputs.with_conntrack(entries.into_iter().map(|e| (e, Some(scope.clone()))).collect());
    }
    let print = flowtrail::print::Options { numeric: 2, ..Default::default() };
    FrameModel::load(inputs, print)
}

fn flowtrail(files: &[String], extra: &[&str]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flowtrail"));
    for f in files {
        c.arg("-r").arg(f);
    }
    c.args(extra).env("TZ", "UTC");
    let o = c.output().expect("flowtrail runs");
    assert!(o.status.success(), "flowtrail {extra:?}: {}", String::from_utf8_lossy(&o.stderr));
    o
}

/// Every captured observation of `--flows=json`: `(point, src, dst) -> observation`.
fn json_observations(files: &[String], conntrack: Option<&str>) -> Vec<Value> {
    let mut extra = vec!["--flows=json"];
    if let Some(c) = conntrack {
        extra.push("--conntrack");
        extra.push(c);
    }
    let o = flowtrail(files, &extra);
    let mut out = Vec::new();
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let v: Value = serde_json::from_str(line).expect("json line");
        for leg in v["legs"].as_array().unwrap() {
            for ob in leg["observations"].as_array().unwrap() {
                if ob.get("conn_state").is_some() {
                    out.push(ob.clone());
                }
            }
        }
    }
    out
}

/// The JSON observation at `point` with the TUI's tuple (ICMP: the TUI writes no ports, so
/// its first packet's time tells flows of one address pair apart).
fn find<'a>(json: &'a [Value], o: &flowtrail::tui::model::ObservationDetail) -> Option<&'a Value> {
    let (point, src, dst) = (&*o.point, o.client.to_string(), o.server.to_string());
    let first = o.first.sec as f64 + o.first.nsec as f64 / 1e9;
    let strip = |s: &str| -> String {
        let s = s.rsplit_once(':').map_or(s, |(a, _)| a);
        s.trim_start_matches('[').trim_end_matches(']').to_string()
    };
    json.iter().find(|o| {
        let (js, jd) = (o["src"].as_str().unwrap_or(""), o["dst"].as_str().unwrap_or(""));
        let at = (o["first"].as_f64().unwrap_or(0.0) - first).abs() < 2e-6;
        o["point"] == point && ((js == src && jd == dst) || (strip(js) == src && strip(jd) == dst && at))
    })
}

#[test]
fn state_and_history_equal_flows_json() {
    let mut checked = 0;
    for (files, ct) in sets() {
        let m = load(&files, ct.as_deref());
        let json = json_observations(&files, ct.as_deref());
        let snap = m.snapshot();
        for row in &snap.paths {
            let d = m.detail(row.id).expect("detail");
            if matches!(d.proto, flowtrail::tui::model::Proto::Other(_)) {
                continue; // IP fragments and other protocols: in no flow, not in --flows
            }
            let mut first_captured = None;
            for leg in &d.legs {
                for o in &leg.observations {
                    if &*o.state == "conntrack" {
                        continue;
                    }
                    let (src, dst) = (o.client.to_string(), o.server.to_string());
                    let Some(j) = find(&json, o) else {
                        // Frames in no flow (other IP protocols) are not in --flows.
                        assert!(o.history.is_empty(), "{files:?}: {} {src} -> {dst} not in --flows=json", o.point);
                        continue;
                    };
                    assert_eq!(&*o.state, j["conn_state"].as_str().unwrap(), "{files:?}: {} {src}->{dst}", o.point);
                    assert_eq!(&*o.history, j["history"].as_str().unwrap(), "{files:?}: {} {src}->{dst}", o.point);
                    first_captured.get_or_insert((o.state.clone(), o.history.clone()));
                    checked += 1;
                }
            }
            if let Some((s, h)) = first_captured {
                assert_eq!((&row.state, &row.history), (&s, &h), "{files:?}: row {} shows its first observation", row.id);
            }
        }
    }
    assert!(checked >= 60, "{checked} observations compared");
}

/// The body of `--follow`'s ascii output for `view` (the chunks written by the same
/// formatter), without the header lines.
fn follow_text(view: &StreamView) -> String {
    let info = flowtrail::flow::FlowInfo {
        id: 1,
        point_index: 0,
        point: std::sync::Arc::from("p"),
        proto: flowtrail::flow::Proto::Tcp,
        client: flowtrail::flow::Endpoint::new("127.0.0.1".parse().unwrap(), 1),
        server: flowtrail::flow::Endpoint::new("127.0.0.1".parse().unwrap(), 2),
    };
    let mut f = Follow::new(1, FollowFormat::Ascii);
    let mut out = Vec::new();
    let dir = |s: Side| match s {
        Side::Client => flowtrail::reassembly::Direction::ClientToServer,
        Side::Server => flowtrail::reassembly::Direction::ServerToClient,
    };
    for c in &view.chunks {
        match c {
            StreamChunk::Data { side, offset, bytes } => f.data(&mut out, &info, dir(*side), *offset, bytes).unwrap(),
            StreamChunk::Gap { side, offset, len } => f.gap(&mut out, &info, dir(*side), *offset, *len).unwrap(),
        }
    }
    f.end(&mut out, &info).unwrap();
    body(&String::from_utf8_lossy(&out))
}

/// Follow output without its seven header lines.
fn body(text: &str) -> String {
    text.lines().skip(7).collect::<Vec<_>>().join("\n")
}

/// For every TCP/UDP observation of every path: the TUI's stream equals `--follow ID`.
fn streams_equal_follow(files: &[String], ct: Option<&str>) -> (usize, usize) {
    let m = load(files, ct);
    let json = json_observations(files, ct);
    let (mut compared, mut gaps) = (0, 0);
    for row in &m.snapshot().paths {
        let d = m.detail(row.id).expect("detail");
        for (li, leg) in d.legs.iter().enumerate() {
            for (oi, o) in leg.observations.iter().enumerate() {
                if o.client.port == 0 || &*o.state == "conntrack" {
                    continue;
                }
                let Some(j) = find(&json, o) else { continue };
                let id = j["ids"][0].as_u64().unwrap().to_string();
                let view = m.stream(row.id, Some(ObservationRef { leg: li, observation: oi }));
                let want = body(&String::from_utf8_lossy(
                    &flowtrail(files, &["--follow", &id, "--follow-format", "ascii"]).stdout,
                ));
                assert_eq!(follow_text(&view), want, "{files:?}: path {} {} flow {id}", row.id, o.point);
                gaps += view.chunks.iter().filter(|c| matches!(c, StreamChunk::Gap { .. })).count();
                compared += 1;
            }
        }
    }
    (compared, gaps)
}

#[test]
fn stream_pane_equals_follow_on_the_samples() {
    let mut compared = 0;
    for (files, ct) in sets() {
        compared += streams_equal_follow(&files, ct.as_deref()).0;
    }
    assert!(compared >= 50, "{compared} streams compared");
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ft-tui-parity-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn stream_pane_equals_follow_with_deleted_frames() {
    // host-lo.pcap without every third TCP data segment: holes in both directions, some
    // at the end of a direction (before its FIN).
    let dir = tempdir("gaps");
    let (header, records) = flow_support::read_pcap(Path::new(&sample("host-lo.pcap")));
    let mut data = 0;
    let kept: Vec<flow_support::Record> = records
        .into_iter()
        .filter(|(_, d)| {
            let Some(t) = flow_support::tcp_facts(1, d) else { return true };
            if t.6 == 0 {
                return true;
            }
            data += 1;
            data % 3 != 2
        })
        .collect();
    let file = dir.join("holes.pcap");
    flow_support::write_pcap(&file, &header, &kept);
    let files = vec![file.to_string_lossy().into_owned()];
    let (compared, gaps) = streams_equal_follow(&files, None);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(compared >= 5, "{compared} streams compared");
    assert!(gaps >= 3, "the deleted segments show as gaps ({gaps})");
}

#[test]
fn a_reused_tuple_keeps_each_connections_packets() {
    // One tuple at one point, two connections (the second SYN after both FINs, a new ISN).
    let dir = tempdir("reuse");
    let file = dir.join("reuse.pcap");
    let mut p = flow_support::Pcap::create(&file);
    let mut us = 1_700_000_000_000_000u64;
    let mut counts = Vec::new();
    for (i, (cisn, sisn)) in [(1000u32, 5000u32), (900_000, 7_000_000)].into_iter().enumerate() {
        let mut c = flow_support::Conn::new(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 80), cisn, sisn);
        let mut frames = c.handshake();
        for k in 0..=i {
            frames.push(c.data(true, format!("request {i}.{k}\n").as_bytes()));
            frames.push(c.data(false, format!("reply {i}.{k}\n").as_bytes()));
        }
        frames.extend(c.close());
        counts.push(frames.len());
        for f in frames {
            us += 1000;
            p.frame(us, &f);
        }
    }
    p.finish();
    let files = vec![file.to_string_lossy().into_owned()];
    let json = json_observations(&files, None);
    assert_eq!(json.len(), 2, "--flows sees two connections");
    let m = load(&files, None);
    let snap = m.snapshot();
    assert_eq!(snap.paths.len(), 2, "two paths");
    for (row, want) in snap.paths.iter().zip(&counts) {
        let list = m.packets(row.id, None);
        assert_eq!(list.lines.len(), *want, "path {}: its own packets only", row.id);
        assert_eq!((row.packets[0] + row.packets[1]) as usize, *want);
        let text = follow_text(&m.stream(row.id, None));
        let i = row.id - 1;
        assert!(text.contains(&format!("request {i}.0")), "path {}: {text}", row.id);
        assert!(!text.contains(&format!("request {}.0", 1 - i)), "path {}: the other connection's bytes: {text}", row.id);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
