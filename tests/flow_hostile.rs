//! Hostile traffic (no root needed): captures generated here, run through the binary with
//! `--flows=json`; memory stays under the caps (peak RSS from the child's own
//! /proc/self/status, reported in its stats) and the counters say what was dropped, evicted
//! or cut.

mod flow_support;

use flow_support::*;
use serde_json::Value;
use std::process::Stdio;

const T0: u64 = 1_700_000_000_000_000;

/// Runs `--flows=json` with stdout discarded; returns the stats object.
fn stats_only(args: &[&str]) -> Value {
    let o = flowtrail().args(args).arg("--flows=json").stdout(Stdio::null()).stderr(Stdio::piped()).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    stats(&o)
}

fn kib(v: &Value) -> u64 {
    v["peak_rss_kib"].as_u64().expect("peak RSS reported")
}

/// A million distinct SYNs (a SYN flood from spoofed addresses and ports) within one second:
/// the flow cap holds, every flow beyond it is evicted and counted, nothing else is lost.
#[test]
fn a_million_syns_stay_under_the_flow_cap() {
    let dir = tempdir("syns");
    let path = dir.join("syns.pcap");
    let template = Conn::new(([10, 0, 0, 0], 1), ([192, 168, 1, 1], 443), 0, 0).raw(true, 7, 0, SYN, b"");
    let mut p = Pcap::create(&path);
    let mut frame = template.clone();
    for i in 0..1_000_000u32 {
        // Spoofed source 10.x.y.z:port; checksums are not checked by anyone here.
        frame[27..30].copy_from_slice(&(i >> 4).to_be_bytes()[1..]);
        frame[34..36].copy_from_slice(&(1024 + (i & 15) as u16).to_be_bytes());
        frame[38..42].copy_from_slice(&i.to_be_bytes());
        p.frame(T0 + u64::from(i), &frame);
    }
    p.finish();
    let f = path.to_str().unwrap();
    // The flow cap alone (the joiner's features would add about 1.3 KiB per flow; the
    // default run below joins, under --max-memory).
    let capped = stats_only(&["-r", f, "--max-flows", "100000", "--no-join"]);
    assert_eq!(capped["flows_created"], 1_000_000);
    assert_eq!(capped["flows_evicted"], 900_000);
    assert_eq!(capped["flows_at_eof"], 100_000);
    assert_eq!(capped["flows_active_peak"], 100_000);
    assert_eq!(capped["tcp_packets"], 1_000_000);
    // A SYN-only flow costs well under 1 KiB; records wait in batches of 65536.
    assert!(kib(&capped) < 200 * 1024, "peak RSS {} KiB with 100k flows", kib(&capped));
    // The default cap is what the flow table's share of --max-memory (512M) holds.
    let default = stats_only(&["-r", f]);
    let cap = default["max_flows"].as_u64().unwrap();
    assert!((50_000..262_144).contains(&cap), "default flow cap {cap}");
    assert_eq!(default["flows_evicted"], 1_000_000 - cap);
    assert!(kib(&default) < 512 * 1024, "peak RSS {} KiB with {cap} flows", kib(&default));
    eprintln!(
        "1M SYNs: peak RSS {} KiB at --max-flows 100000, {} KiB at the default {cap}; {} evicted",
        kib(&capped),
        kib(&default),
        default["flows_evicted"]
    );
}

/// Ptacek-Newsham overlaps: a held out-of-order segment, then an overlapping one with other
/// bytes (reported as conflicting; the first copy wins); a retransmission of delivered bytes
/// with other content (cannot be compared: counted, never delivered twice); an overlap
/// straddling two held segments.
#[test]
fn overlapping_segments_first_copy_wins_and_is_reported() {
    let dir = tempdir("overlap");
    let path = dir.join("overlap.pcap");
    let mut c = Conn::new(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 80), 1000, 5000);
    let mut frames = c.handshake();
    let base = c.cseq;
    let at = |off: u32| base.wrapping_add(off);
    frames.push(c.raw(true, at(4), c.sseq, ACK, b"XXXX")); // held: offsets 4..8
    frames.push(c.raw(true, at(0), c.sseq, ACK, b"abcdefgh")); // 4..8 conflict: XXXX stays
    frames.push(c.raw(true, at(0), c.sseq, ACK, b"ABCDEFGH")); // already delivered
    frames.push(c.raw(true, at(12), c.sseq, ACK, b"MM")); // held: 12..14
    frames.push(c.raw(true, at(16), c.sseq, ACK, b"NN")); // held: 16..18
    frames.push(c.raw(true, at(8), c.sseq, ACK, b"ijklmnopqr")); // 8..18: straddles both
    c.cseq = at(18);
    frames.extend(c.close());
    let mut p = Pcap::create(&path);
    for (i, f) in frames.iter().enumerate() {
        p.frame(T0 + i as u64 * 1000, f);
    }
    p.finish();
    let st = dir.join("streams");
    let o = run(&["-r", path.to_str().unwrap(), "--flows=json", "--streams", st.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let flows = json_lines(&o);
    let s = &obs(&flows[0])["stream"];
    assert_eq!(s["conflicting_overlaps"][0], 3, "{s}");
    assert_eq!(s["conflicting_bytes"][0], 4 + 2 + 2);
    assert_eq!(s["overlaps"][0], 3);
    assert_eq!(s["retransmitted_bytes"][0], 8);
    assert_eq!(s["gaps"][0], serde_json::json!([]));
    let index: Value = serde_json::from_str(std::fs::read_to_string(st.join("index.json")).unwrap().trim()).unwrap();
    let stream = std::fs::read(st.join(index["c2s"]["file"].as_str().unwrap())).unwrap();
    assert_eq!(stream, b"abcdXXXXijklMMopNN");
    let table = run(&["-r", path.to_str().unwrap(), "--flows"]);
    assert!(text(&table.stdout).contains("conflicts:8/0"), "{}", text(&table.stdout));
}

/// Huge windows and memory caps: a segment beyond any TCP window is dropped and counted; a
/// stream that never fills its first hole is cut at its per-direction cap; many such streams
/// together are cut by the global budget. Memory stays under the caps; the counters and the
/// declared gaps account for every byte not delivered.
#[test]
fn caps_bound_memory_and_say_what_they_cut() {
    let dir = tempdir("caps");
    let path = dir.join("caps.pcap");
    let mut p = Pcap::create(&path);
    let mut t = T0;
    let mut put = |p: &mut Pcap, f: &[u8]| {
        t += 10;
        p.frame(t, f);
    };
    const FLOWS: u16 = 300;
    const SEGMENTS: u32 = 200;
    let payload = vec![b'z'; 1400];
    let mut conns = Vec::new();
    for i in 0..FLOWS {
        let mut c = Conn::new(([10, 1, (i >> 8) as u8, i as u8], 40000 + i), ([10, 2, 0, 1], 80), 1000, 5000);
        for f in c.handshake() {
            put(&mut p, &f);
        }
        // A segment 1.5 GiB ahead: beyond the largest TCP window (1 GiB).
        put(&mut p, &c.raw(true, c.cseq.wrapping_add(3 << 29), c.sseq, ACK, b"far"));
        conns.push(c);
    }
    // Then every flow sends 200 segments after a 1400-byte hole it never fills (280 kB held
    // each, 84 MB in all), interleaved across flows.
    for k in 1..=SEGMENTS {
        for c in &conns {
            put(&mut p, &c.raw(true, c.cseq.wrapping_add(1400 * k), c.sseq, ACK, &payload));
        }
    }
    p.finish();
    let f = path.to_str().unwrap();
    let s = stats_only(&["-r", f, "--reassembly-memory", "16M", "--stream-buffer", "256K"]);
    let held_total = u64::from(FLOWS) * u64::from(SEGMENTS) * 1400;
    assert_eq!(s["stream_out_of_window_bytes"], u64::from(FLOWS) * 3);
    assert!(s["reassembly_memory_peak"].as_u64().unwrap() <= 16 << 20);
    assert!(s["stream_cap_skips"].as_u64().unwrap() > 0, "{s}");
    assert!(s["stream_budget_skips"].as_u64().unwrap() > 0, "{s}");
    // Every byte sent is delivered or in a gap: the first hole of each flow at least.
    let delivered = s["stream_delivered_bytes"].as_u64().unwrap();
    let gap_bytes = s["stream_gap_bytes"].as_u64().unwrap();
    assert_eq!(delivered, held_total);
    assert_eq!(gap_bytes, u64::from(FLOWS) * 1400);
    let rss = kib(&s);
    assert!(rss < 150 * 1024, "peak RSS {rss} KiB with a 16 MiB reassembly budget");
    let unbounded = stats_only(&["-r", f, "--reassembly-memory", "1G", "--stream-buffer", "1G"]);
    assert_eq!(unbounded["stream_cap_skips"], 0);
    assert_eq!(unbounded["stream_budget_skips"], 0);
    eprintln!(
        "caps: {held_total} bytes held out of order; with 16M/256K caps peak reassembly {} KiB, RSS {rss} KiB, \
         {} cap skips, {} budget skips; uncapped peak reassembly {} KiB, RSS {} KiB",
        s["reassembly_memory_peak"].as_u64().unwrap() / 1024,
        s["stream_cap_skips"],
        s["stream_budget_skips"],
        unbounded["reassembly_memory_peak"].as_u64().unwrap() / 1024,
        kib(&unbounded)
    );
}

/// Frames that are not what they claim: truncated headers, every flag at once, random bytes,
/// empty frames. Counted, and the one good connection among them is intact.
#[test]
fn garbage_never_stops_the_run() {
    let dir = tempdir("garbage");
    let path = dir.join("garbage.pcap");
    let mut c = Conn::new(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 80), 77, 99);
    let mut good = c.handshake();
    good.push(c.data(true, b"request"));
    good.push(c.data(false, b"response"));
    good.extend(c.close());
    let mut p = Pcap::create(&path);
    let mut x: u32 = 1;
    let mut rand = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let mut t = T0;
    for (i, g) in good.iter().enumerate() {
        for k in 0..50u32 {
            t += 1;
            let junk: Vec<u8> = match k % 5 {
                0 => g[..(rand() as usize % g.len())].to_vec(),
                1 => (0..rand() % 200).map(|_| rand() as u8).collect(),
                2 => {
                    let mut f = g.clone();
                    f[47] = 0xff; // every TCP flag
                    f[36..38].copy_from_slice(&(rand() as u16).to_be_bytes());
                    f
                }
                3 => {
                    let mut f = g.clone();
                    f[46] = 0xf0 | (rand() as u8 & 0x0f); // data offset beyond the frame
                    f[34..36].copy_from_slice(&(rand() as u16).to_be_bytes());
                    f
                }
                _ => Vec::new(),
            };
            p.frame(t, &junk);
        }
        t += 1;
        p.frame(t, g);
        let _ = i;
    }
    p.finish();
    let o = run(&["-r", path.to_str().unwrap(), "--flows=json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let s = stats(&o);
    assert_eq!(s["frames"], good.len() as u64 * 51);
    let flow = json_lines(&o)
        .into_iter()
        .find(|v| obs(v)["src"] == "10.0.0.1:40000" && obs(v)["dst"] == "10.0.0.2:80")
        .expect("the good connection");
    let ob = obs(&flow);
    assert_eq!(ob["conn_state"], "SF");
    assert_eq!(ob["stream"]["delivered"], serde_json::json!([7, 8]));
    assert_eq!(ob["stream"]["gaps"], serde_json::json!([[], []]));
}
