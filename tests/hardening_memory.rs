//! `--max-memory` under hostile traffic (no root needed): a capture made here holds a
//! million random flows (a SYN flood from spoofed addresses, UDP from random ports) mixed
//! with a few thousand streams that never fill their first hole and receive random
//! overlapping segments of 1-300 bytes (half of them 1 byte), zero-window ACKs and ACKs that skip ahead (gaps). Run
//! through the binary with `--flows=json`, the child's peak resident memory (measured from
//! outside by GNU time, `wait4`'s `ru_maxrss`) stays under the cap plus a small fixed
//! overhead, and the counters say what each cap cut.

mod flow_support;

use flow_support::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

const T0: u64 = 1_700_000_000_000_000;

/// What the undivided part of --max-memory does not cover: the program and its libraries,
/// I/O buffers, allocator slack at the end of a run. (The caps' shares add up to 88%, so
/// 12% of the cap is already left for this.)
const OVERHEAD_KIB: u64 = 24 * 1024;

/// Runs flowtrail under GNU time; returns its stderr and its peak RSS in KiB.
fn measured(args: &[&str]) -> (String, u64) {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        let msg = "/usr/bin/time (GNU time) is not installed (scripts/install-deps.sh installs it)";
        assert!(!ci(), "{msg}");
        eprintln!("SKIP: {msg}");
        return (String::new(), 0);
    }
    let dir = tempdir("rss-out");
    let rss_file = dir.join(format!("rss-{}", std::process::id()));
    let o = Command::new(time)
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss_file)
        .arg(env!("CARGO_BIN_EXE_flowtrail"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run /usr/bin/time flowtrail");
    let err = text(&o.stderr);
    assert!(o.status.success(), "flowtrail {args:?}: {err}");
    let kib = std::fs::read_to_string(&rss_file).unwrap().trim().parse().expect("GNU time's %M");
    (err, kib)
}

/// The `--flows` (text) case: the counters are in the stderr summary lines.
fn text_case(cap_mib: u64, err: &str, rss: u64) {
    let limit = cap_mib * 1024 + OVERHEAD_KIB;
    let line = err.lines().find(|l| l.starts_with("flowtrail: ") && l.contains(" flows (")).unwrap_or_else(|| panic!("{err}"));
    // "N flows (E evicted at the cap of C, ...) ...; B budget skips; ...; K record batches printed early; ..."
    let num_before = |what: &str| -> u64 {
        let i = line.find(what).unwrap_or_else(|| panic!("{what:?} in {line}"));
        line[..i].rsplit(|c: char| !c.is_ascii_digit()).find(|w| !w.is_empty()).and_then(|w| w.parse().ok()).unwrap()
    };
    let cap = line.split("at the cap of ").nth(1).and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next()?.parse::<u64>().ok()).unwrap();
    let (flows, evicted, budget, early) =
        (num_before(" flows ("), num_before(" evicted"), num_before(" budget skips"), num_before(" record batches printed early"));
    let joined = err.lines().find(|l| l.starts_with("flowtrail: joined ")).unwrap_or_else(|| panic!("no join summary: {err}"));
    eprintln!("--flows --max-memory {cap_mib}M: peak RSS {rss} KiB (limit {limit} KiB); {flows} flows ({evicted} evicted at the cap of {cap}), {budget} budget skips, {early} batches early; {joined}");
    assert!(rss < limit, "--flows --max-memory {cap_mib}M: peak RSS {rss} KiB over {limit} KiB");
    assert!(flows > u64::from(FLOOD) && evicted > 0 && budget > 0 && early > 0, "{line}");
    // Batches of thousands of records, not one per record.
    assert!(early < flows / 1000, "{line}");
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn stats_of(stderr: &str) -> Value {
    stderr
        .lines()
        .find_map(|l| serde_json::from_str::<Value>(l).ok().and_then(|v| v.get("stats").cloned()))
        .unwrap_or_else(|| panic!("no stats in stderr: {stderr}"))
}

fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("{k} missing in {v}"))
}

/// xorshift32: deterministic noise.
struct Rng(u32);
impl Rng {
    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }
}

/// Ethernet + IPv4 + TCP (54 bytes) template with the ACK flag; fields are patched in place
/// (nobody here checks checksums).
struct Frame(Vec<u8>);
impl Frame {
    fn tcp() -> Frame {
        Frame(Conn::new(([10, 0, 0, 1], 1), ([192, 168, 1, 1], 443), 0, 0).raw(true, 0, 0, ACK, b""))
    }
    #[allow(clippy::too_many_arguments)]
    fn set(&mut self, src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, seq: u32, ack: u32, flags: u8, window: u16) {
        let f = &mut self.0;
        f[26..30].copy_from_slice(&src);
        f[30..34].copy_from_slice(&dst);
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f[38..42].copy_from_slice(&seq.to_be_bytes());
        f[42..46].copy_from_slice(&ack.to_be_bytes());
        f[47] = flags;
        f[48..50].copy_from_slice(&window.to_be_bytes());
    }
    fn payload(&mut self, bytes: &[u8]) {
        self.0.truncate(54);
        self.0.extend_from_slice(bytes);
        self.0[16..18].copy_from_slice(&(40 + bytes.len() as u16).to_be_bytes());
    }
}

const FLOOD: u32 = 1_000_000;
const STREAMS: u32 = 3000;

/// The hostile capture; returns the number of frames.
fn hostile_capture(path: &Path) -> u64 {
    let mut p = Pcap::create(path);
    let mut rng = Rng(0x1234_5678);
    let mut t = T0;
    let mut f = Frame::tcp();
    let mut udp = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [192, 168, 1, 1], 64)
        .udp(1, 53)
        .write(&mut udp, b"")
        .unwrap();
    let server = [192, 168, 2, 1];
    let isn = |j: u32| j.wrapping_mul(0x9e37_79b9);
    let client = |j: u32| [10, 200, (j >> 8) as u8, j as u8];
    // Every stream is an established connection (its offset 0 is the byte after the SYN), so
    // its idle timeout is long: a SYN flood evicts its own half-open flows, not these.
    for j in 0..STREAMS {
        f.payload(b"");
        for (src, sport, dst, dport, seq, ack, flags) in [
            (client(j), 40000, server, 80, isn(j), 0, SYN),
            (server, 80, client(j), 40000, 7, isn(j).wrapping_add(1), SYN | ACK),
            (client(j), 40000, server, 80, isn(j).wrapping_add(1), 8, ACK),
        ] {
            f.set(src, sport, dst, dport, seq, ack, flags, 65535);
            t += 1;
            p.frame(t, &f.0);
        }
    }
    let mut last = vec![0u32; STREAMS as usize];
    let mut payload = vec![0u8; 300];
    for i in 0..FLOOD {
        t += 1;
        if i % 10 == 9 {
            // UDP from a random source and port.
            udp[26..30].copy_from_slice(&rng.next().to_be_bytes());
            udp[34..36].copy_from_slice(&(rng.next() as u16 | 1024).to_be_bytes());
            p.frame(t, &udp);
        } else {
            // A SYN from a spoofed source.
            f.payload(b"");
            let src = (0x0a00_0000 | (i & 0x00ff_ffff)).to_be_bytes();
            f.set(src, 1024 + (i >> 24) as u16, [192, 168, 1, 1], 443, rng.next(), 0, SYN, 64240);
            p.frame(t, &f.0);
        }
        // One segment of a stream that never fills its first byte: random offset (or, one
        // time in eight, overlapping the previous one with other bytes), random length.
        let j = rng.next() % STREAMS;
        // Half of them one byte long (adversarial segmentation: each a stored chunk).
        let len = if rng.next().is_multiple_of(2) { 1 } else { 1 + rng.next() as usize % 300 };
        let off = if rng.next().is_multiple_of(8) { last[j as usize].wrapping_add(3) } else { 1 + rng.next() % (1 << 20) };
        last[j as usize] = off;
        for b in payload.iter_mut().take(len) {
            *b = rng.next() as u8;
        }
        f.payload(&payload[..len]);
        f.set(client(j), 40000, server, 80, isn(j).wrapping_add(1).wrapping_add(off), 0, ACK, 65535);
        t += 1;
        p.frame(t, &f.0);
        if i % 16 == 0 {
            // The server: a zero window, acknowledging nothing new; for one stream in 100
            // an ACK far ahead (the hole and what follows become gaps).
            let k = rng.next() % STREAMS;
            let ack = if k.is_multiple_of(100) { isn(k).wrapping_add(1).wrapping_add(rng.next() % (1 << 20)) } else { isn(k).wrapping_add(1) };
            f.payload(b"");
            f.set(server, 80, client(k), 40000, 8, ack, ACK, 0);
            t += 1;
            p.frame(t, &f.0);
        }
    }
    let frames = p.count;
    p.finish();
    frames
}

#[test]
fn hostile_traffic_stays_under_max_memory() {
    let dir = tempdir("hostile-memory");
    let path = dir.join("hostile.pcap");
    let frames = hostile_capture(&path);
    let f = path.to_str().unwrap();
    // Joined (the default) text and JSON, at a small and the default --max-memory.
    for (cap_mib, args) in [
        (128u64, vec!["--flows=json", "--max-memory", "128M"]),
        (512, vec!["--flows=json"]),
        (128, vec!["--flows", "--max-memory", "128M"]),
        (512, vec!["--flows"]),
    ] {
        let mut a = vec!["-r", f];
        a.extend(args.iter().copied());
        let (err, rss) = measured(&a);
        if rss == 0 {
            return; // skipped
        }
        if args[0] == "--flows" {
            text_case(cap_mib, &err, rss);
            continue;
        }
        let s = stats_of(&err);
        let limit = cap_mib * 1024 + OVERHEAD_KIB;
        eprintln!(
            "--max-memory {cap_mib}M: {frames} frames, peak RSS {rss} KiB (child's own VmHWM {} KiB; limit {limit} KiB); \
             max_flows {}, {} flows ({} evicted), reassembly peak {} KiB of {} KiB ({} budget skips, {} cap skips, \
             {} conflicting overlaps), side tables peak {} KiB ({} refusals), records held peak {} KiB ({} batches early)",
            n(&s, "peak_rss_kib"),
            n(&s, "max_flows"),
            n(&s, "flows_created"),
            n(&s, "flows_evicted"),
            n(&s, "reassembly_memory_peak") / 1024,
            n(&s, "reassembly_memory_limit") / 1024,
            n(&s, "stream_budget_skips"),
            n(&s, "stream_cap_skips"),
            n(&s, "stream_conflicting_overlaps"),
            n(&s, "aux_memory_peak") / 1024,
            n(&s, "aux_refusals"),
            n(&s, "records_held_peak_bytes") / 1024,
            n(&s, "records_flushed_early"),
        );
        assert!(rss < limit, "--max-memory {cap_mib}M: peak RSS {rss} KiB over {limit} KiB");
        assert_eq!(n(&s, "max_memory"), cap_mib << 20);
        assert_eq!(n(&s, "frames"), frames);
        assert!(n(&s, "flows_created") > u64::from(FLOOD));
        // The caps that bind here say so.
        assert!(n(&s, "flows_evicted") > 0, "{s}");
        assert!(n(&s, "flows_active_peak") <= n(&s, "max_flows"));
        assert!(n(&s, "stream_budget_skips") > 0, "{s}");
        assert!(n(&s, "reassembly_memory_peak") <= n(&s, "reassembly_memory_limit"));
        assert!(n(&s, "records_flushed_early") > 0, "{s}");
        // Joined batches of thousands of records (the features counted), not one per record.
        assert!(n(&s, "records_flushed_early") < n(&s, "flows_created") / 1000, "{s}");
        // A batch is printed once it reaches the bound: over it by at most one record (whose
        // gap list the side-table share bounded).
        assert!(
            n(&s, "records_held_peak_bytes") <= n(&s, "records_held_limit_bytes") + (1 << 20),
            "{} {}",
            n(&s, "records_held_peak_bytes"),
            n(&s, "records_held_limit_bytes")
        );
        assert!(n(&s, "stream_conflicting_overlaps") > 0, "{s}");
    }
}
