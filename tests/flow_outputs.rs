//! Flow outputs over recorded and generated captures (no root needed): `--flows` text and
//! JSON, `--follow` against tshark, `--streams` against the lab client's sha256 ground truth,
//! exact gaps in cut captures, stream file names, and TCP analysis against tshark.

mod common;
mod flow_support;

use flow_support::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

fn sample(name: &str) -> String {
    root().join("samples").join(name).to_string_lossy().into_owned()
}

/// Every TCP stream the samples hold equals what lab/client.py sent or received (its log is
/// the ground truth). Complete flows must match a (sent, received) pair of one connection;
/// vm-br0-brnf shows each connection as two half flows (br_netfilter de-NATs replies before
/// the tap), so there each direction must match on its own.
#[test]
fn sample_streams_equal_the_client_logs() {
    if common::require_tool("sha256sum").is_none() {
        return;
    }
    let mut pairs = BTreeSet::new();
    let (mut sent, mut received) = (BTreeSet::new(), BTreeSet::new());
    for log in ["seedpath-client.jsonl", "vm-lo-client.jsonl", "tcp6-client.jsonl", "brnf-client.jsonl"] {
        for line in std::fs::read_to_string(root().join("samples").join(log)).unwrap().lines() {
            let r: Value = serde_json::from_str(line).unwrap();
            if r["proto"] == "tcp" {
                let (s, rx) = (
                    r["sha256_sent"].as_str().unwrap().to_string(),
                    r["sha256_received"].as_str().unwrap().to_string(),
                );
                pairs.insert((s.clone(), rx.clone()));
                sent.insert(s);
                received.insert(rx);
            }
        }
    }
    let mut matched = 0;
    let mut streams = 0;
    for f in common::sample_files() {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let dir = tempdir(&format!("samples-{name}"));
        let st = dir.join("streams");
        let o = run(&["-r", f.to_str().unwrap(), "--streams", st.to_str().unwrap()]);
        assert!(o.status.success(), "{name}: {}", text(&o.stderr));
        assert!(o.stdout.is_empty(), "--streams alone prints no packets");
        let index = std::fs::read_to_string(st.join("index.json")).unwrap();
        for line in index.lines() {
            let r: Value = serde_json::from_str(line).unwrap();
            let hash = |d: &str| match r[d]["file"].as_str() {
                Some(file) => sha256_file(&st.join(file)),
                None => sha256(b""),
            };
            let (c2s, s2c) = (hash("c2s"), hash("s2c"));
            streams += 2;
            if name.contains("brnf") {
                let ok_c = r["c2s"]["bytes"] == 0 || sent.contains(&c2s);
                let ok_s = r["s2c"]["bytes"] == 0 || received.contains(&s2c);
                assert!(ok_c && ok_s, "{name}: flow {} does not match the client log", r["id"]);
            } else {
                assert!(
                    pairs.contains(&(c2s, s2c)),
                    "{name}: flow {} {} does not match the client log",
                    r["id"],
                    r["src"]
                );
            }
            matched += 2;
        }
    }
    eprintln!("sample streams matching the client logs' sha256: {matched}/{streams}");
    assert!(matched >= 100, "only {matched} streams checked");
}

/// Per-flow packets and payload bytes agree with samples/manifest.json (lab/pcapsummary.py,
/// an independent reader) for every TCP flow of every sample.
#[test]
fn sample_flows_match_the_manifest() {
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("samples/manifest.json")).unwrap()).unwrap();
    let mut checked = 0;
    for (file, entry) in manifest.as_object().unwrap() {
        // Per flow-table flow (joins off: a bridge showing the replies un-NATed would merge
        // two flows into one observation).
        let o = run(&["-r", &sample(file), "--flows=json", "--no-join"]);
        assert!(o.status.success(), "{file}: {}", text(&o.stderr));
        let paths = json_lines(&o);
        let ours: HashMap<(String, String, String), (Value, Value)> = paths
            .iter()
            .flat_map(all_obs)
            .map(|ob| {
                (
                    (
                        ob["point"].as_str().unwrap().to_string(),
                        ob["src"].as_str().unwrap().to_string(),
                        ob["dst"].as_str().unwrap().to_string(),
                    ),
                    (ob["packets"].clone(), ob["bytes"].clone()),
                )
            })
            .collect();
        let stem = Path::new(file).file_stem().unwrap().to_string_lossy().into_owned();
        for iface in entry["interfaces"].as_array().unwrap() {
            let label = iface["name"].as_str().map_or(stem.clone(), str::to_string);
            for flow in iface["flows"].as_array().unwrap() {
                if flow["proto"] != "tcp" {
                    continue;
                }
                let key = (
                    label.clone(),
                    flow["client"].as_str().unwrap().to_string(),
                    flow["server"].as_str().unwrap().to_string(),
                );
                let (packets, bytes) = ours.get(&key).unwrap_or_else(|| panic!("{file}: no flow {key:?}"));
                assert_eq!(packets, &flow["packets"], "{file} {key:?}");
                assert_eq!(bytes, &flow["bytes"], "{file} {key:?}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 40, "{checked} flows checked");
}

/// `--follow ID --follow-format ascii|hex` is byte for byte tshark's `follow,tcp,ascii|hex`
/// output (but for flowtrail's own Filter/Point lines) for every TCP stream of the samples,
/// and `follow,udp` for UDP flows.
#[test]
fn follow_matches_tshark_on_the_samples() {
    if common::require_tool("tshark").is_none() {
        return;
    }
    const RULE: &str = "===================================================================";
    let strip = |s: &str| {
        s.lines().filter(|l| !l.starts_with("Filter:") && !l.starts_with("Point:")).collect::<Vec<_>>().join("\n")
    };
    let mut compared = 0;
    for file in ["host-lo.pcap", "host-veth.pcap", "node-eth0.pcap", "tcp6.pcap", "vm-br0.pcap", "udp6.pcap"] {
        let o = run(&["-r", &sample(file), "--flows=json"]);
        // tshark numbers TCP and UDP streams separately, in order of first packet, as we
        // number flows (which also counts ICMP flows).
        let mut nth: HashMap<String, u64> = HashMap::new();
        let mut streams = Vec::new();
        for v in json_lines(&o) {
            let proto = v["proto"].as_str().unwrap().to_string();
            if proto == "tcp" || proto == "udp" {
                let n = nth.entry(proto.clone()).or_insert(0);
                streams.push((v["id"].as_u64().unwrap(), proto, *n));
                *n += 1;
            }
        }
        for format in ["ascii", "hex"] {
            // One tshark run per file and format; its blocks are keyed by their Filter line.
            let mut args = vec!["-r".to_string(), sample(file), "-q".into()];
            for (_, proto, n) in &streams {
                args.push("-z".into());
                args.push(format!("follow,{proto},{format},{n}"));
            }
            let out = text(&std::process::Command::new("tshark").args(&args).output().unwrap().stdout);
            let starts: Vec<usize> = out.match_indices(&format!("{RULE}\nFollow:")).map(|(i, _)| i).collect();
            let mut blocks: HashMap<String, &str> = HashMap::new();
            for (k, &start) in starts.iter().enumerate() {
                let end = starts.get(k + 1).map_or(out.len(), |&e| e - 1);
                let block = &out[start..end];
                let filter = block.lines().find(|l| l.starts_with("Filter:")).unwrap_or_default().to_string();
                blocks.insert(filter, block);
            }
            for (id, proto, n) in &streams {
                let ours = run(&["-r", &sample(file), "--follow", &id.to_string(), "--follow-format", format]);
                assert!(ours.status.success(), "{}", text(&ours.stderr));
                let ours = text(&ours.stdout);
                let theirs = blocks
                    .get(&format!("Filter: {proto}.stream eq {n}"))
                    .unwrap_or_else(|| panic!("{file}: tshark printed no {proto} stream {n}"));
                let (a, b) = (strip(ours.trim_start_matches('\n')), strip(theirs));
                if a != b {
                    let line = a.lines().zip(b.lines()).position(|(x, y)| x != y);
                    panic!(
                        "{file} flow {id} {format}: first difference at line {line:?} ({} vs {} lines)",
                        a.lines().count(),
                        b.lines().count()
                    );
                }
                compared += 1;
            }
        }
    }
    eprintln!("follow outputs identical to tshark's: {compared}");
    assert!(compared >= 30);
}

#[test]
fn flows_json_shape_and_ipv6_endpoints() {
    let o = run(&["-r", &sample("tcp6.pcap"), "--flows=json"]);
    assert!(o.status.success());
    let flows: Vec<Value> = json_lines(&o).into_iter().filter(|v| v["proto"] == "tcp").collect();
    assert_eq!(flows.len(), 2);
    let v = &flows[0];
    assert_eq!(v["proto"], "tcp");
    assert_eq!(v["via"], serde_json::json!([]));
    let leg = &v["legs"][0];
    // One observation: trivially one tuple, nothing scored.
    assert_eq!(leg["join"]["kind"], "same-tuple");
    assert_eq!(leg["join"]["evidence"], serde_json::json!([]));
    assert_eq!(leg["join"]["score"], 0);
    assert_eq!(leg["process"], Value::Null);
    let ob = obs(v);
    assert_eq!(ob["point"], "tcp6");
    assert_eq!(ob["src"], "[fd00:65::1]:40020");
    assert_eq!(ob["dst"], "[fd00:65::2]:49700");
    assert_eq!(ob["conn_state"], "SF");
    assert!(ob["first"].as_f64().unwrap() > 1.7e9 && ob["last"].as_f64() >= ob["first"].as_f64());
    for key in ["packets", "bytes"] {
        assert_eq!(ob[key].as_array().unwrap().len(), 2);
    }
    assert_eq!(ob["bytes"][0], ob["stream"]["delivered"][0]);
    assert!(ob["rtt"]["handshake"].as_f64().unwrap() > 0.0);
    let st = stats(&o);
    assert_eq!(st["flows_created"], 4);
    assert!(st["peak_rss_kib"].as_u64().unwrap() > 0);
}

#[test]
fn flows_table_snapshot() {
    // The per-observation table (joins off) and the joined tree.
    let o = run(&["-r", &sample("host-lo.pcap"), "--flows", "--no-join"]);
    assert!(o.status.success());
    insta::assert_snapshot!("flows_host_lo", text(&o.stdout));
    let o = run(&["-r", &sample("host-lo.pcap"), "--flows"]);
    assert!(o.status.success());
    insta::assert_snapshot!("flows_tree_host_lo", text(&o.stdout));
    let o = run(&["-r", &sample("host-veth.pcap"), "--follow", "2"]);
    let excerpt: String = text(&o.stdout).lines().take(12).collect::<Vec<_>>().join("\n");
    insta::assert_snapshot!("follow_host_veth_2", excerpt);
}

#[test]
fn following_an_unknown_flow_fails() {
    let o = run(&["-r", &sample("host-lo.pcap"), "--follow", "99"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("--follow 99: no such flow (5 flows)"), "{}", text(&o.stderr));
    assert!(o.stdout.is_empty());
}

/// The same packets at two capture points (leg 2 of the seed path, captured on both ends of
/// the veth pair) are two observations, and neither has a single retransmission.
#[test]
fn the_same_packets_at_two_points_are_not_retransmissions() {
    let a = format!("host-veth={}", sample("host-veth.pcap"));
    let b = format!("vm-veth={}", sample("vm-veth.pcap"));
    let o = run(&["-r", &a, "-r", &b, "--flows=json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let paths: Vec<Value> = json_lines(&o).into_iter().filter(|v| v["proto"] == "tcp").collect();
    // Five connections, each one leg seen at both ends of the veth.
    assert_eq!(paths.len(), 5);
    for p in &paths {
        assert_eq!(p["legs"].as_array().unwrap().len(), 1, "{p}");
        assert_eq!(p["legs"][0]["join"]["kind"], "same-tuple", "{p}");
    }
    let flows: Vec<&Value> = paths.iter().flat_map(all_obs).collect();
    assert_eq!(flows.len(), 10);
    for ob in &flows {
        for (k, pair) in ob["analysis"].as_object().unwrap() {
            assert_eq!(pair, &serde_json::json!([0, 0]), "{} {}: {k}", ob["point"], ob["src"]);
        }
        assert_eq!(ob["stream"]["retransmitted_bytes"], serde_json::json!([0, 0]));
        assert!(!ob["history"].as_str().unwrap().contains(['T', 't']));
    }
    let points: BTreeSet<&str> = flows.iter().map(|ob| ob["point"].as_str().unwrap()).collect();
    assert_eq!(points.len(), 2);
}

/// Keep-alive probes (one byte at next - 1, often garbage) are counted, never stream data.
#[test]
fn keep_alives_are_not_data() {
    let dir = tempdir("keepalive");
    let path = dir.join("ka.pcap");
    let mut c = Conn::new(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 80), 1000, 5000);
    let mut frames = c.handshake();
    frames.push(c.data(true, b"hello"));
    frames.push(c.ack(false));
    for _ in 0..3 {
        frames.push(c.raw(true, c.cseq.wrapping_sub(1), c.sseq, ACK, b"\0"));
        frames.push(c.ack(false));
    }
    frames.push(c.data(true, b" world"));
    frames.extend(c.close());
    let mut p = Pcap::create(&path);
    for (i, f) in frames.iter().enumerate() {
        p.frame(1_700_000_000_000_000 + i as u64 * 1_000_000, f);
    }
    p.finish();
    let st = dir.join("streams");
    let o = run(&["-r", path.to_str().unwrap(), "--flows=json", "--streams", st.to_str().unwrap()]);
    let ob = obs(&json_lines(&o)[0]).clone();
    assert_eq!(ob["stream"]["keep_alives"], serde_json::json!([3, 0]));
    assert_eq!(ob["analysis"]["keep_alive"], serde_json::json!([3, 0]));
    assert_eq!(ob["analysis"]["keep_alive_ack"], serde_json::json!([0, 3]));
    assert_eq!(ob["tcp_state"], serde_json::json!(["closed", "closed"]));
    let index: Value = serde_json::from_str(std::fs::read_to_string(st.join("index.json")).unwrap().trim()).unwrap();
    assert_eq!(std::fs::read(st.join(index["c2s"]["file"].as_str().unwrap())).unwrap(), b"hello world");
}

/// Packet printing is off with flow outputs unless `--print`, and unchanged otherwise.
#[test]
fn printing_only_with_print() {
    let plain = run(&["-r", &sample("host-lo.pcap"), "-nn"]);
    let flows = run(&["-r", &sample("host-lo.pcap"), "-nn", "--flows"]);
    let both = run(&["-r", &sample("host-lo.pcap"), "-nn", "--flows", "--print"]);
    assert!(text(&flows.stdout).starts_with("path 1 tcp "), "{}", text(&flows.stdout));
    assert!(text(&both.stdout).starts_with(&text(&plain.stdout)));
    assert!(text(&both.stdout).ends_with(&text(&flows.stdout)));
    assert_eq!(text(&plain.stderr), text(&flows.stderr).lines().next().unwrap().to_string() + "\n");
}

/// Builds a connection with 10 client and 10 server segments of 100 bytes each, and returns
/// (frames, client isn, server isn).
fn ten_by_ten() -> (Vec<Vec<u8>>, Vec<u8>, Vec<u8>) {
    let mut c = Conn::new(([10, 1, 1, 1], 40000), ([10, 2, 2, 2], 8080), 1000, 50_000);
    let mut frames = c.handshake();
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for i in 0..10u8 {
        let p = vec![b'a' + i; 100];
        up.extend_from_slice(&p);
        frames.push(c.data(true, &p));
        let q = vec![b'A' + i; 100];
        down.extend_from_slice(&q);
        frames.push(c.data(false, &q));
        frames.push(c.ack(true));
    }
    frames.extend(c.close());
    (frames, up, down)
}

/// Frames deleted from a capture show as gaps of exactly the missing ranges: in JSON, in
/// index.json, as `--follow` markers; stream files hold the remaining bytes only, never
/// zeros; a deleted frame from a recorded sample gives the gap its sequence numbers say.
#[test]
fn cut_captures_show_exact_gaps() {
    let dir = tempdir("cut");
    let (frames, up, down) = ten_by_ten();
    // Delete client segments 3 and 7 (frames 3 + 3*i) and server segment 5 (frames 4 + 3*i).
    let deleted = [3 + 3 * 3, 3 + 3 * 7, 4 + 3 * 5];
    let path = dir.join("cut.pcap");
    let mut p = Pcap::create(&path);
    for (i, f) in frames.iter().enumerate() {
        if !deleted.contains(&i) {
            p.frame(1_700_000_000_000_000 + i as u64 * 1000, f);
        }
    }
    p.finish();
    let st = dir.join("streams");
    let o = run(&["-r", path.to_str().unwrap(), "--flows=json", "--streams", st.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let ob = obs(&json_lines(&o)[0]).clone();
    assert_eq!(ob["stream"]["gaps"], serde_json::json!([[[300, 100], [700, 100]], [[500, 100]]]));
    assert_eq!(ob["stream"]["gap_bytes"], serde_json::json!([200, 100]));
    let index: Value = serde_json::from_str(std::fs::read_to_string(st.join("index.json")).unwrap().trim()).unwrap();
    assert_eq!(index["c2s"]["gaps"], serde_json::json!([[300, 100], [700, 100]]));
    assert_eq!(index["s2c"]["gaps"], serde_json::json!([[500, 100]]));
    let expect_up: Vec<u8> = [&up[..300], &up[400..700], &up[800..]].concat();
    let expect_down: Vec<u8> = [&down[..500], &down[600..]].concat();
    assert_eq!(std::fs::read(st.join(index["c2s"]["file"].as_str().unwrap())).unwrap(), expect_up);
    assert_eq!(std::fs::read(st.join(index["s2c"]["file"].as_str().unwrap())).unwrap(), expect_down);
    assert_eq!(index["c2s"]["bytes"], 800);

    let f = run(&["-r", path.to_str().unwrap(), "--follow", "1"]);
    let t = text(&f.stdout);
    assert_eq!(t.matches("[100 bytes missing in capture file]").count(), 3);
    assert!(t.contains("\t[100 bytes missing in capture file]\n"));
    assert!(!t.contains('\0'));
    let raw = run(&["-r", path.to_str().unwrap(), "--follow", "1", "--follow-format", "raw"]);
    assert_eq!(raw.stdout.len(), 800 + 900);
    assert!(!raw.stdout.contains(&0u8));
    assert_eq!(text(&raw.stderr).matches("100 bytes missing").count(), 3);

    // A recorded sample with one data frame deleted: the gap is that segment's range.
    let (header, records) = read_pcap(&root().join("samples/host-veth.pcap"));
    let victim = records
        .iter()
        .position(|(_, d)| tcp_facts(1, d).is_some_and(|t| t.6 >= 1000 && t.3 == 49700))
        .expect("a data frame to delete");
    let facts = tcp_facts(1, &records[victim].1).unwrap();
    let isn = records
        .iter()
        .find_map(|(_, d)| tcp_facts(1, d).filter(|t| t.1 == facts.1 && t.5 & SYN != 0).map(|t| t.4))
        .unwrap();
    let mut cut = records.clone();
    cut.remove(victim);
    let cut_path = dir.join("host-veth-cut.pcap");
    write_pcap(&cut_path, &header, &cut);
    let o = run(&["-r", cut_path.to_str().unwrap(), "--flows=json"]);
    let flow = json_lines(&o)
        .into_iter()
        .find(|v| obs(v)["src"].as_str().unwrap().ends_with(&format!(":{}", facts.1)))
        .unwrap();
    let offset = facts.4.wrapping_sub(isn).wrapping_sub(1);
    assert_eq!(obs(&flow)["stream"]["gaps"][0], serde_json::json!([[offset, facts.6]]));
}

/// The same tuple at two capture points, and a reused tuple: tcpflow's name, then `@POINT`,
/// then tcpflow's `c1` counter; index.json says which file is which.
#[test]
fn stream_names_for_points_and_reused_tuples() {
    let dir = tempdir("names");
    let mut conns = Vec::new();
    for isn in [1000u32, 900_000] {
        let mut c = Conn::new(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 80), isn, 7000 + isn);
        let mut f = c.handshake();
        f.push(c.data(true, b"hello"));
        f.push(c.data(false, b"world"));
        f.extend(c.close());
        conns.extend(f);
    }
    let write = |name: &str, delay: u64| {
        let path = dir.join(name);
        let mut p = Pcap::create(&path);
        for (i, f) in conns.iter().enumerate() {
            p.frame(1_700_000_000_000_000 + delay + i as u64 * 1000, f);
        }
        p.finish();
        path.to_string_lossy().into_owned()
    };
    let (a, b) = (write("a.pcap", 0), write("b.pcap", 100));
    let st = dir.join("streams");
    let o = run(&["-r", &format!("outer={a}"), "-r", &format!("inner={b}"), "--streams", st.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut names: BTreeMap<u64, (String, String)> = BTreeMap::new();
    for line in std::fs::read_to_string(st.join("index.json")).unwrap().lines() {
        let r: Value = serde_json::from_str(line).unwrap();
        names.insert(
            r["id"].as_u64().unwrap(),
            (r["point"].as_str().unwrap().into(), r["c2s"]["file"].as_str().unwrap().into()),
        );
    }
    let base = "010.000.000.001.40000-010.000.000.002.00080";
    let files: BTreeSet<String> = names.values().map(|(_, f)| f.clone()).collect();
    let expected: BTreeSet<String> =
        [base.to_string(), format!("{base}c1"), format!("{base}@inner"), format!("{base}@innerc1")]
            .into_iter()
            .collect();
    assert_eq!(files, expected, "{names:?}");
    for f in &files {
        assert_eq!(std::fs::read(st.join(f)).unwrap(), b"hello");
    }
}

/// Wireshark's analysis flags on a scripted connection agree with tshark, flag by flag.
#[test]
fn analysis_matches_tshark() {
    if common::require_tool("tshark").is_none() {
        return;
    }
    let dir = tempdir("analysis");
    let path = dir.join("analysis.pcap");
    let mut p = Pcap::create(&path);
    let mut t = 1_700_000_000_000_000u64;
    let mut put = |p: &mut Pcap, dt_ms: u64, f: Vec<u8>| {
        t += dt_ms * 1000;
        p.frame(t, &f);
    };
    let mut c = Conn::new(([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 80), 1000, 9000);
    for f in c.handshake() {
        put(&mut p, 1, f);
    }
    let s1 = c.data(true, &[1; 100]);
    put(&mut p, 1, s1.clone());
    put(&mut p, 200, s1.clone()); // retransmission
    put(&mut p, 1, c.ack(false));
    put(&mut p, 200, s1); // spurious retransmission
    let lost = c.data(true, &[2; 100]); // not captured
    let s3 = c.data(true, &[3; 100]); // previous segment not captured
    put(&mut p, 1, s3);
    let (cseq_after, _) = (c.cseq, ());
    c.cseq -= 200;
    put(&mut p, 1, c.ack(false)); // dup ack 1 (acks before the hole)
    put(&mut p, 1, c.ack(false)); // dup ack 2
    put(&mut p, 1, c.ack(false)); // dup ack 3
    c.cseq = cseq_after;
    put(&mut p, 1, lost); // fast retransmission
    put(&mut p, 1, c.ack(false));
    let s4 = c.data(true, &[4; 100]);
    let s5 = c.data(true, &[5; 100]);
    put(&mut p, 1, s5);
    put(&mut p, 0, s4); // out of order
    put(&mut p, 1, c.ack(false));
    put(&mut p, 1, c.raw_window(false, c.sseq, c.cseq, ACK, b"", 0)); // zero window
    put(&mut p, 1, c.raw_window(false, c.sseq, c.cseq, ACK, b"", 200)); // window update
    let s6 = c.data(true, &[6; 200]); // fills the 200-byte window: window full
    put(&mut p, 1, s6);
    put(&mut p, 1, c.ack(false));
    put(&mut p, 5000, c.raw(true, c.cseq.wrapping_sub(1), c.sseq, ACK, b"")); // keep-alive
    put(&mut p, 1, c.ack(false)); // keep-alive ack
    put(&mut p, 1, c.raw(false, c.sseq, c.cseq.wrapping_add(500), ACK, b"")); // acked unseen
    for f in c.close() {
        put(&mut p, 1, f);
    }
    p.finish();

    let o = run(&["-r", path.to_str().unwrap(), "--flows=json"]);
    let ours = obs(&json_lines(&o)[0])["analysis"].clone();
    let fields = ANALYSIS_FIELDS;
    let mut args = vec![
        "-r".to_string(),
        path.to_string_lossy().into_owned(),
        "-T".into(),
        "fields".into(),
        "-E".into(),
        "separator=,".into(),
        "-E".into(),
        "occurrence=f".into(),
    ];
    for (_, f) in &fields {
        args.push("-e".into());
        args.push((*f).into());
    }
    let tshark = std::process::Command::new("tshark").args(&args).output().unwrap();
    let mut theirs = [0u64; 12];
    for line in text(&tshark.stdout).lines() {
        for (i, cell) in line.split(',').enumerate() {
            if !cell.is_empty() {
                theirs[i] += 1;
            }
        }
    }
    let total = |k: &str| ours[k][0].as_u64().unwrap() + ours[k][1].as_u64().unwrap();
    let mut agree = 0;
    for (i, (ours_name, field)) in fields.iter().enumerate() {
        // tshark's retransmission field is also set on fast and spurious retransmissions.
        let mine = if *ours_name == "retransmission" {
            total("retransmission") + total("fast_retransmission") + total("spurious_retransmission")
        } else {
            total(ours_name)
        };
        assert_eq!(mine, theirs[i], "{field}: flowtrail {mine}, tshark {}", theirs[i]);
        assert!(mine > 0, "{field} not exercised");
        agree += 1;
    }
    eprintln!("analysis flags agreeing with tshark: {agree}/{}", fields.len());
}
