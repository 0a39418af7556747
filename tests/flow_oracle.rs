//! Oracle test on a real network (root; runs in CI, skips with a message elsewhere): the
//! seed-path lab (lab/seedpath.sh) with random loss inside its namespaces, tcpdump at five
//! capture points along the three legs, and lab/client.py logging the sha256 of what each
//! connection sent and received.
//!
//! Loss: `iptables -m statistic --mode random` DROP rules in the lab's namespaces only (the
//! kernel has no netem). Drops in a sender's OUTPUT happen before the capture tap, so the
//! capture has a hole that the retransmission fills later, out of order; drops in a
//! receiver's INPUT happen after the tap, so the capture holds the segment and its
//! retransmission. SYNs are never dropped (their 1 s retry would only slow the test).
//!
//! Checks:
//! 1. every stream flowtrail rebuilds (`--streams`) at every point equals what the client
//!    sent or received (sha256), connection by connection;
//! 2. tshark's `follow,tcp,raw` of the same files gives the same streams (agreement counted);
//! 3. data frames deleted from a capture (the test rewrites the pcap without them, choosing
//!    frames no retransmission covers) show as gaps of exactly the missing ranges, the rest
//!    of the stream is intact, and tshark's follow of the cut file shows the same bytes with
//!    its "[N bytes missing in capture file]." text where we declare the gap;
//! 4. the TCP analysis counters per point agree with tshark's (reported, per flag).

mod common;
mod flow_support;

use common::{TCPDUMP_SETTLE, tcpdump_writer, tcpdump_wrote_all};
use flow_support::*;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Root, or skip (fail in CI).
fn root_or_skip() -> bool {
    if nix::unistd::Uid::effective().is_root() {
        return true;
    }
    let msg = "flow_oracle needs root (network namespaces, iptables, tcpdump)";
    if common::in_ci() {
        panic!("{msg}");
    }
    eprintln!("SKIP: {msg}");
    false
}

/// A running lab; `down` on drop, whatever happened.
struct Lab {
    id: String,
    env: HashMap<String, String>,
}

impl Lab {
    fn up(id: &str) -> Lab {
        let o = Command::new(root().join("lab/seedpath.sh"))
            .arg("up")
            .env("FT_LAB_ID", id)
            .env("FT_LAB_TTL", "600")
            .output()
            .unwrap();
        // Build the guard first so that a half-built lab is torn down too.
        let mut lab = Lab { id: id.to_string(), env: HashMap::new() };
        assert!(o.status.success(), "lab up failed: {}", text(&o.stderr));
        for line in text(&o.stdout).lines() {
            if let Some((k, v)) = line.split_once('=') {
                lab.env.insert(k.to_string(), v.to_string());
            }
        }
        lab
    }

    fn var(&self, k: &str) -> &str {
        self.env.get(k).map(String::as_str).unwrap_or_else(|| panic!("lab variable {k}"))
    }

    /// Runs a command inside the lab namespace `ns` (one of FT_*_NS), checked.
    fn exec(&self, ns: &str, args: &[&str]) {
        let o = Command::new("ip").args(["netns", "exec", self.var(ns)]).args(args).output().unwrap();
        assert!(o.status.success(), "{ns}: {args:?}: {}", text(&o.stderr));
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(root().join("lab/seedpath.sh")).args(["down", &self.id]).status();
    }
}

/// tcpdump processes, stopped with SIGINT (by pid) when done or dropped.
struct Captures {
    children: Vec<(Child, PathBuf)>,
}

impl Captures {
    /// `points`: (name, namespace, interface), resolved.
    fn start(dir: &Path, points: &[(&str, String, String)]) -> Captures {
        let mut children = Vec::new();
        for (name, ns, iface) in points {
            let file = dir.join(format!("{name}.pcap"));
            let err = std::fs::File::create(dir.join(format!("{name}.tcpdump.log"))).unwrap();
            let child = tcpdump_writer(ns, iface, &file)
                .stdout(Stdio::null())
                .stderr(err)
                .spawn()
                .unwrap();
            children.push((child, file));
        }
        // Wait until each says it is listening.
        let deadline = Instant::now() + Duration::from_secs(10);
        for (name, _, _) in points {
            let log = dir.join(format!("{name}.tcpdump.log"));
            while !std::fs::read_to_string(&log).unwrap_or_default().contains("listening on") {
                assert!(Instant::now() < deadline, "tcpdump at {name} did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Captures { children }
    }

    /// Checks each capture's closing statistics ([`tcpdump_wrote_all`]).
    fn check_complete(dir: &Path, points: &[(&str, String, String)]) {
        for (name, _, iface) in points {
            let log = std::fs::read_to_string(dir.join(format!("{name}.tcpdump.log"))).unwrap_or_default();
            if let Err(e) = tcpdump_wrote_all(iface, &log) {
                panic!("at {name}: {e}");
            }
        }
    }

    fn stop(&mut self) {
        for (child, _) in &self.children {
            // Our own child (`timeout`, which passes SIGINT on to tcpdump), by pid.
            let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        }
        for (mut child, _) in self.children.drain(..) {
            let _ = child.wait();
        }
    }
}

impl Drop for Captures {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Splits tshark `follow,tcp,raw` output (several streams) into (filter, c2s, s2c) bytes.
fn tshark_raw_streams(out: &str) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let mut streams = Vec::new();
    let mut current: Option<(String, Vec<u8>, Vec<u8>)> = None;
    for line in out.lines() {
        if let Some(f) = line.strip_prefix("Filter: ") {
            if let Some(c) = current.take() {
                streams.push(c);
            }
            current = Some((f.to_string(), Vec::new(), Vec::new()));
            continue;
        }
        let Some(c) = current.as_mut() else { continue };
        if line.starts_with("===") || line.starts_with("Follow:") || line.starts_with("Node ") || line.is_empty() {
            continue;
        }
        let (target, hex) = match line.strip_prefix('\t') {
            Some(h) => (&mut c.2, h),
            None => (&mut c.1, line),
        };
        let bytes = hex.as_bytes();
        for pair in bytes.chunks(2) {
            if let Ok(b) = u8::from_str_radix(std::str::from_utf8(pair).unwrap_or("zz"), 16) {
                target.push(b);
            }
        }
    }
    if let Some(c) = current.take() {
        streams.push(c);
    }
    streams
}

fn tshark_tcp_streams(file: &Path) -> usize {
    let o = Command::new("tshark")
        .args(["-r", file.to_str().unwrap(), "-T", "fields", "-e", "tcp.stream"])
        .output()
        .unwrap();
    text(&o.stdout).lines().filter_map(|l| l.trim().parse::<usize>().ok()).max().map_or(0, |m| m + 1)
}


/// Per-flag packet counts tshark reports for a file.
fn tshark_analysis(file: &Path) -> [u64; 12] {
    let mut args: Vec<String> = vec!["-r".into(), file.to_string_lossy().into_owned(), "-T".into(), "fields".into()];
    args.extend(["-E", "separator=,", "-E", "occurrence=f"].map(String::from));
    for (_, f) in ANALYSIS_FIELDS {
        args.push("-e".into());
        args.push(f.into());
    }
    let o = Command::new("tshark").args(&args).output().unwrap();
    let mut n = [0u64; 12];
    for line in text(&o.stdout).lines() {
        for (i, cell) in line.split(',').enumerate().take(12) {
            if !cell.is_empty() {
                n[i] += 1;
            }
        }
    }
    n
}

#[test]
fn streams_under_random_loss_equal_what_was_sent() {
    if !root_or_skip() {
        return;
    }
    for tool in ["ip", "tcpdump", "socat", "python3", "tshark", "sha256sum", "timeout"] {
        if common::require_tool(tool).is_none() {
            return;
        }
    }
    let started = Instant::now();
    let dir = tempdir("oracle");
    let lab = Lab::up(&format!("ftor{}", std::process::id()));
    let ipt = lab.var("FT_IPTABLES").to_string();
    // Loss, inside the lab only: sender-side (before the tap) and receiver-side (after it).
    let drop = |p: &'static str| {
        vec![
            "-p",
            "tcp",
            "--tcp-flags",
            "SYN",
            "NONE",
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            p,
            "-j",
            "DROP",
        ]
    };
    let rules: [(&str, &str, &str, &str); 5] = [
        ("FT_HOST_NS", "OUTPUT", "-o", "lo"),
        ("FT_HOST_NS", "OUTPUT", "-o", "FT_HOST_IF"),
        ("FT_VM_NS", "INPUT", "-i", "FT_VM_IF"),
        ("FT_VM_NS", "OUTPUT", "-o", "FT_VM_IF"),
        ("FT_NODE_NS", "INPUT", "-i", "FT_NODE_IF"),
    ];
    for (ns, chain, dirflag, iface) in rules {
        let iface = if iface.starts_with("FT_") { lab.var(iface).to_string() } else { iface.to_string() };
        let mut args = vec![ipt.as_str(), "-A", chain, dirflag, iface.as_str()];
        args.extend(drop("0.04"));
        lab.exec(ns, &args);
    }
    let points = [
        ("host-lo", "FT_HOST_NS", "lo"),
        ("host-veth", "FT_HOST_NS", "FT_HOST_IF"),
        ("vm-veth", "FT_VM_NS", "FT_VM_IF"),
        ("vm-br0", "FT_VM_NS", "FT_VM_BR"),
        ("node-eth0", "FT_NODE_NS", "FT_NODE_IF"),
    ];
    let resolved: Vec<(&str, String, String)> = points
        .iter()
        .map(|(n, ns, i)| {
            (*n, lab.var(ns).to_string(), if i.starts_with("FT_") { lab.var(i).to_string() } else { i.to_string() })
        })
        .collect();
    let mut caps = Captures::start(&dir, &resolved);
    let log = dir.join("client.jsonl");
    let traffic = Command::new(root().join("lab/seedpath.sh"))
        .args([
            "traffic",
            &lab.id,
            "--",
            "-n",
            "15",
            "--size",
            "30000,200000,600000",
            "--mode",
            "halfclose,close,reset",
        ])
        .args(["--timeout", "15", "--deadline", "90", "--log", log.to_str().unwrap()])
        .env("FT_CLIENT_TIMEOUT", "120")
        .output()
        .unwrap();
    std::thread::sleep(TCPDUMP_SETTLE);
    caps.stop();
    assert!(traffic.status.success(), "client failed: {}", text(&traffic.stderr));
    Captures::check_complete(&dir, &resolved);
    let truth: Vec<Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(truth.len(), 15);
    let pairs: Vec<(String, String)> = truth
        .iter()
        .map(|r| (r["sha256_sent"].as_str().unwrap().to_string(), r["sha256_received"].as_str().unwrap().to_string()))
        .collect();

    // 1. flowtrail over all five points at once.
    let st = dir.join("streams");
    let mut args: Vec<String> = Vec::new();
    for (name, _, _) in &points {
        args.push("-r".into());
        args.push(format!("{name}={}", dir.join(format!("{name}.pcap")).display()));
    }
    // Per observation (this test is about capture, reassembly and analysis at each point;
    // joins are tested in tests/join_*.rs).
    args.extend(["--flows=json".to_string(), "--no-join".into(), "--streams".into(), st.to_string_lossy().into_owned()]);
    let o = flowtrail().args(&args).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let flows = json_lines(&o);
    let mut by_point: BTreeMap<String, usize> = BTreeMap::new();
    let mut matched = 0;
    let mut ours: HashMap<(String, String, String), (String, String)> = HashMap::new();
    for line in std::fs::read_to_string(st.join("index.json")).unwrap().lines() {
        let r: Value = serde_json::from_str(line).unwrap();
        let h = |d: &str| r[d]["file"].as_str().map_or_else(|| sha256(b""), |f| sha256_file(&st.join(f)));
        let pair = (h("c2s"), h("s2c"));
        let point = r["point"].as_str().unwrap().to_string();
        assert!(
            pairs.contains(&pair),
            "{point} flow {} {} -> {}: stream differs from what was sent",
            r["id"],
            r["src"],
            r["dst"]
        );
        assert_eq!(r["c2s"]["gaps"], serde_json::json!([]), "{point} flow {}: gap in a complete capture", r["id"]);
        matched += 2;
        *by_point.entry(point.clone()).or_default() += 1;
        ours.insert((point, r["src"].as_str().unwrap().into(), r["dst"].as_str().unwrap().into()), pair);
    }
    for (name, _, _) in &points {
        assert_eq!(by_point.get(*name), Some(&15), "{name}: {by_point:?}");
    }
    let mut lossy = 0;
    for v in &flows {
        let a = &obs(v)["analysis"];
        if a["retransmission"][0].as_u64().unwrap_or(0) + a["retransmission"][1].as_u64().unwrap_or(0) > 0 {
            lossy += 1;
        }
    }
    eprintln!(
        "oracle: {matched}/{} streams equal the client's sha256 ({} observations, {lossy} with retransmissions)",
        2 * 15 * points.len(),
        flows.len()
    );
    assert!(lossy > 0, "no retransmission anywhere: the loss rules did not work");

    // 2. tshark's follow of the same files, and 4. its analysis counters.
    let mut agree = 0;
    let mut total = 0;
    let mut flag_agree = 0;
    let mut flag_total = 0;
    for (name, _, _) in &points {
        let file = dir.join(format!("{name}.pcap"));
        let n = tshark_tcp_streams(&file);
        let mut targs = vec!["-r".to_string(), file.to_string_lossy().into_owned(), "-q".into()];
        for i in 0..n {
            targs.push("-z".into());
            targs.push(format!("follow,tcp,raw,{i}"));
        }
        let out = Command::new("tshark").args(&targs).output().unwrap();
        let mut nodes: HashMap<String, (String, String)> = HashMap::new();
        let text_out = text(&out.stdout);
        // Node lines follow each Filter line.
        let mut filter = String::new();
        for line in text_out.lines() {
            if let Some(f) = line.strip_prefix("Filter: ") {
                filter = f.to_string();
            } else if let Some(n0) = line.strip_prefix("Node 0: ") {
                nodes.entry(filter.clone()).or_default().0 = n0.to_string();
            } else if let Some(n1) = line.strip_prefix("Node 1: ") {
                nodes.entry(filter.clone()).or_default().1 = n1.to_string();
            }
        }
        for (filter, c2s, s2c) in tshark_raw_streams(&text_out) {
            let (n0, n1) = nodes.get(&filter).cloned().unwrap_or_default();
            let Some(pair) = ours.get(&(name.to_string(), n0.clone(), n1.clone())) else { continue };
            total += 2;
            agree += usize::from(sha256(&c2s) == pair.0) + usize::from(sha256(&s2c) == pair.1);
        }
        let theirs = tshark_analysis(&file);
        let mut mine = [0u64; 12];
        for v in flows.iter().filter(|v| obs(v)["point"] == *name) {
            let a = &obs(v)["analysis"];
            for (i, (k, _)) in ANALYSIS_FIELDS.iter().enumerate() {
                mine[i] += a[k][0].as_u64().unwrap_or(0) + a[k][1].as_u64().unwrap_or(0);
            }
        }
        mine[0] += mine[1] + mine[2]; // tshark's retransmission field includes fast and spurious
        for i in 0..12 {
            flag_total += 1;
            if mine[i] == theirs[i] {
                flag_agree += 1;
            } else {
                eprintln!("oracle: {name}: {}: flowtrail {} tshark {}", ANALYSIS_FIELDS[i].1, mine[i], theirs[i]);
            }
        }
    }
    eprintln!(
        "oracle: tshark follow,tcp,raw agrees on {agree}/{total} streams; analysis counters agree on {flag_agree}/{flag_total} (point, flag) pairs"
    );
    assert_eq!(agree, total, "tshark disagrees on some streams");

    // 3. Cut: delete data frames nobody else covers from host-veth; exact gaps.
    let src = dir.join("host-veth.pcap");
    let (header, records) = read_pcap(&src);
    let linktype = u32::from_le_bytes([header[20], header[21], header[22], header[23]]);
    let facts: Vec<Option<TcpFacts>> = records.iter().map(|(_, d)| tcp_facts(linktype, d)).collect();
    let covers = |i: usize, j: usize| -> bool {
        let (Some(a), Some(b)) = (&facts[i], &facts[j]) else { return false };
        if (a.0.as_str(), a.1, a.2.as_str(), a.3) != (b.0.as_str(), b.1, b.2.as_str(), b.3) || b.6 == 0 {
            return false;
        }
        let (s, e) = (a.4, a.4.wrapping_add(a.6));
        let (bs, be) = (b.4, b.4.wrapping_add(b.6));
        (bs.wrapping_sub(s) as i32) < a.6 as i32 && (s.wrapping_sub(bs) as i32) < b.6 as i32 && e != bs && be != s
    };
    // The third uncovered data segment of each flow direction (mid-stream), six in all.
    let mut victims = Vec::new();
    let mut eligible: HashMap<(u16, u16), u32> = HashMap::new();
    for (i, f) in facts.iter().enumerate() {
        let Some(f) = f else { continue };
        if f.6 < 1000 || f.5 & (SYN | FIN | RST) != 0 || (0..facts.len()).any(|j| j != i && covers(i, j)) {
            continue;
        }
        let n = eligible.entry((f.1, f.3)).or_default();
        *n += 1;
        if *n != 3 {
            continue;
        }
        victims.push(i);
        if victims.len() == 6 {
            break;
        }
    }
    assert!(victims.len() >= 3, "too few deletable frames");
    let cut: Vec<Record> =
        records.iter().enumerate().filter(|(i, _)| !victims.contains(i)).map(|(_, r)| r.clone()).collect();
    let cut_path = dir.join("host-veth-cut.pcap");
    write_pcap(&cut_path, &header, &cut);
    let cst = dir.join("cut-streams");
    let o = flowtrail()
        .args(["-r", &format!("host-veth={}", cut_path.display()), "--flows=json", "--no-join", "--streams", cst.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let index: Vec<Value> = std::fs::read_to_string(cst.join("index.json"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let full_index: Vec<Value> = std::fs::read_to_string(st.join("index.json"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // tshark's view of the cut file: its follow inserts the text "[N bytes missing in
    // capture file]" and a NUL byte as data where we declare a gap.
    let n = tshark_tcp_streams(&cut_path);
    let mut targs = vec!["-r".to_string(), cut_path.to_string_lossy().into_owned(), "-q".into()];
    for i in 0..n {
        targs.push("-z".into());
        targs.push(format!("follow,tcp,raw,{i}"));
    }
    let tshark_cut = text(&Command::new("tshark").args(&targs).output().unwrap().stdout);
    let mut cut_nodes: HashMap<String, String> = HashMap::new();
    let mut filter = String::new();
    for line in tshark_cut.lines() {
        if let Some(f) = line.strip_prefix("Filter: ") {
            filter = f.to_string();
        } else if let Some(n0) = line.strip_prefix("Node 0: ") {
            cut_nodes.insert(filter.clone(), n0.to_string());
        }
    }
    let cut_streams = tshark_raw_streams(&tshark_cut);
    let mut exact = 0;
    let mut tshark_agree = 0;
    let mut tshark_diff: Vec<String> = Vec::new();
    let mut tail_cuts = 0;
    for &v in &victims {
        let f = facts[v].as_ref().unwrap();
        let ep = |a: &str, p: u16| if a.contains(':') { format!("[{a}]:{p}") } else { format!("{a}:{p}") };
        let (sender, receiver) = (ep(&f.0, f.1), ep(&f.2, f.3));
        let entry = index
            .iter()
            .find(|r| {
                (r["src"] == sender.as_str() && r["dst"] == receiver.as_str())
                    || (r["src"] == receiver.as_str() && r["dst"] == sender.as_str())
            })
            .expect("flow of a deleted frame");
        let d = if entry["src"] == sender.as_str() { "c2s" } else { "s2c" };
        // The ISN of the sender: its SYN in the file.
        let isn = facts
            .iter()
            .flatten()
            .find(|g| {
                (g.0.as_str(), g.1, g.2.as_str(), g.3) == (f.0.as_str(), f.1, f.2.as_str(), f.3) && g.5 & SYN != 0
            })
            .map(|g| g.4)
            .expect("SYN");
        let offset = f.4.wrapping_sub(isn).wrapping_sub(1) as u64;
        assert_eq!(entry[d]["gaps"], serde_json::json!([[offset, f.6]]), "deleted frame {v}: {sender} seq {}", f.4);
        // The file is the full stream without that range.
        let full = full_index
            .iter()
            .find(|r| r["point"] == "host-veth" && r["src"] == entry["src"] && r["dst"] == entry["dst"])
            .unwrap();
        let whole = std::fs::read(st.join(full[d]["file"].as_str().unwrap())).unwrap();
        let got = std::fs::read(cst.join(entry[d]["file"].as_str().unwrap())).unwrap();
        let (o, l) = (offset as usize, f.6 as usize);
        assert_eq!(got, [&whole[..o], &whole[o + l..]].concat(), "deleted frame {v}: the rest of the stream");
        exact += 1;
        let client = entry["src"].as_str().unwrap();
        if let Some((_, c2s, s2c)) =
            cut_streams.iter().find(|(f, _, _)| cut_nodes.get(f).map(String::as_str) == Some(client))
        {
            let theirs = if d == "c2s" { c2s } else { s2c };
            // (In raw follow the marker ends in a NUL byte, shown as "." by ascii follow.)
            let marker = format!("[{l} bytes missing in capture file]\0");
            // tshark writes that text only when data after the hole reaches its follow: when
            // the deleted frame carried the direction's last bytes (only the FIN, or nothing,
            // follows it), its follow simply ends where the data does. Seen in about one run
            // of two (the third uncovered segment is often the last of a 30000-byte stream):
            // "deleted frame 22 (s2c, offset 16384, 13616 bytes; next in that direction:
            // seq 30000 flags FIN|ACK len 0): tshark 16384 bytes". Our own gap at the end of
            // the stream was checked exactly above (range and the bytes around it).
            let tail = o + l == whole.len();
            tail_cuts += usize::from(tail);
            let expected = if tail { got.clone() } else { [&got[..o], marker.as_bytes(), &got[o..]].concat() };
            if *theirs == expected {
                tshark_agree += 1;
            } else {
                let at = theirs.iter().zip(&expected).position(|(a, b)| a != b).unwrap_or(theirs.len().min(expected.len()));
                let show = |b: &[u8]| String::from_utf8_lossy(&b[at.saturating_sub(40)..(at + 80).min(b.len())]).escape_debug().to_string();
                let later: Vec<String> = facts
                    .iter()
                    .enumerate()
                    .skip(v + 1)
                    .filter_map(|(j, g)| g.as_ref().map(|g| (j, g)))
                    .filter(|(_, g)| (g.0.as_str(), g.1, g.2.as_str(), g.3) == (f.0.as_str(), f.1, f.2.as_str(), f.3))
                    .take(4)
                    .map(|(j, g)| format!("frame {j} seq {} flags {:#x} len {}", g.4.wrapping_sub(isn).wrapping_sub(1), g.5, g.6))
                    .collect();
                tshark_diff.push(format!(
                    "deleted frame {v} ({d} of {client}, offset {o}, {l} bytes; stream {} bytes; next in that direction: {}): \
                     tshark {} bytes, expected {} bytes, first difference at {at}: tshark {:?} expected {:?}",
                    got.len(),
                    later.join("; "),
                    theirs.len(),
                    expected.len(),
                    show(theirs),
                    show(&expected)
                ));
            }
        } else {
            tshark_diff.push(format!("deleted frame {v}: no tshark stream with client {client}"));
        }
    }
    eprintln!(
        "oracle: {exact}/{} deleted frames show as gaps of exactly their range; tshark's follow of the cut file \
         agrees (its missing-bytes text where we declare the gap, none after a cut at the end of a \
         direction's data: {tail_cuts}) on {tshark_agree}/{}; took {:?}",
        victims.len(),
        victims.len(),
        started.elapsed()
    );
    assert_eq!(tshark_agree, victims.len(), "tshark differs:\n{}", tshark_diff.join("\n"));
}

/// The check every tcpdump capture of this test and of join_truth passes through: drops,
/// packets left in the ring at SIGINT, tcpdump's singular, and `lo`'s two copies.
#[test]
fn tcpdump_statistics_are_checked() {
    let stats = |c: &str, r: &str, d: &str| {
        format!("tcpdump: listening on x\n{c} captured\n{r} received by filter\n{d} dropped by kernel\n")
    };
    assert_eq!(tcpdump_wrote_all("veth0", &stats("515 packets", "515 packets", "0 packets")), Ok(515));
    assert_eq!(tcpdump_wrote_all("veth0", &stats("1 packet", "1 packet", "0 packets")), Ok(1));
    assert_eq!(tcpdump_wrote_all("lo", &stats("572 packets", "1144 packets", "0 packets")), Ok(572));
    // Dropped by the kernel (CI, before the ring was V3), and left in an unretired block.
    assert!(tcpdump_wrote_all("r0", &stats("515 packets", "578 packets", "63 packets")).is_err());
    assert!(tcpdump_wrote_all("r0", &stats("0 packets", "10 packets", "0 packets")).is_err());
    assert!(tcpdump_wrote_all("lo", &stats("572 packets", "572 packets", "0 packets")).is_err());
    // No statistics at all (killed, or never started).
    assert!(tcpdump_wrote_all("r0", "tcpdump: listening on r0\n").is_err());
}
