//! Joiner microbenchmarks (release builds; timings are printed, not asserted, except the
//! 50k-path budget in the ignored benchmark):
//!
//! ```sh
//! cargo test --release --test join_bench -- --nocapture                 # 5k paths, quick
//! cargo test --release --test join_bench -- --ignored --nocapture       # 50k paths; analysis overhead
//! ```
//!
//! * `join_seed_paths_*`: N synthetic seed-path-like paths (3 legs, 5 observations each, plus
//!   one conntrack entry per path for the DNAT'ed leg, so 6 observations after the join),
//!   a new connection every 20 us so thousands overlap in time; every path must come out
//!   whole.
//! * `analysis_overhead`: the same traffic written as five pcap files (one per capture
//!   point), then analysed as `--flows=json` would: read, decoded, tracked per tuple
//!   (packets, bytes, times), reassembled, and written as JSON lines. The baseline writes
//!   one line per flow (no joins); the joined run also fills the features, joins and writes
//!   the joined paths. Prints the CPU time of each and the overhead.

mod common;
mod join_support;

use flowtrail::capture::{FrameSource, OfflineReader, Points};
use flowtrail::conntrack::{CtEntry, text};
use flowtrail::decode::{Transport, decode, tcp_flags};
use flowtrail::join::{JoinConfig, Joiner, Model, ObservationFeatures, ObservationId, Proto};
use flowtrail::reassembly::{Budget, Config, Conversation, Direction, Event, Segment, TcpFlags};
use flowtrail::seq::SeqNum;
use join_support::*;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

struct Corpus {
    obs: Vec<ObservationFeatures>,
    cts: Vec<CtEntry>,
    /// Path index of each observation.
    truth: Vec<u64>,
}

fn corpus(n: u64) -> Corpus {
    let mut rng = Rng(0x5eed);
    let mut obs = Vec::with_capacity(n as usize * 5);
    let mut truth = Vec::with_capacity(n as usize * 5);
    let mut lines = String::new();
    for i in 0..n {
        let size = 64 + (i as usize * 131) % 6000;
        let sp = seed_path(
            &mut rng,
            i,
            1_700_000_000_000_000_000 + i as i64 * 20 * US,
            size,
        );
        for f in sp.observations() {
            obs.push(f);
            truth.push(i);
        }
        lines.push_str(&sp.conntrack);
        lines.push('\n');
    }
    let (cts, errs) = text::parse_entries(&lines);
    assert!(errs.is_empty());
    Corpus { obs, cts, truth }
}

fn join(c: &Corpus) -> Model {
    let mut j = Joiner::new(JoinConfig::default());
    for (i, l) in SEED_POINTS.iter().enumerate() {
        j.set_point(i as u32, *l, None);
    }
    for (i, f) in c.obs.iter().enumerate() {
        j.add_observation(ObservationId(i as u64), f);
    }
    for e in &c.cts {
        j.add_conntrack_in(e, "vm");
    }
    j.join()
}

fn check(c: &Corpus, m: &Model, n: u64) {
    assert_eq!(m.paths.len() as u64, n, "{:?}", m.stats);
    for p in &m.paths {
        assert_eq!(p.legs.len(), 3);
        let ids: Vec<u64> = p
            .legs
            .iter()
            .flat_map(|l| l.observations.iter().flat_map(|o| o.ids.iter().copied()))
            .collect();
        assert_eq!(ids.len(), 5);
        assert!(
            ids.iter()
                .all(|&id| c.truth[id as usize] == c.truth[ids[0] as usize])
        );
    }
}

/// CPU time of this thread in seconds (the scheduler's run time, ns precision, from
/// /proc/thread-self/schedstat): wall time on a shared 2-core machine measures the
/// neighbours too.
fn cpu_time() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    stat.split_whitespace()
        .next()
        .and_then(|x| x.parse::<u64>().ok())
        .unwrap_or(0) as f64
        / 1e9
}

fn bench_join(n: u64) -> f64 {
    let t = Instant::now();
    let c = corpus(n);
    let build = t.elapsed();
    let (t, cpu) = (Instant::now(), cpu_time());
    let m = join(&c);
    let joined = t.elapsed();
    let joined_cpu = cpu_time() - cpu;
    let (t, cpu) = (Instant::now(), cpu_time());
    let mut out = Vec::with_capacity(n as usize * 4096);
    m.write_json_lines(&mut out).unwrap();
    let json = t.elapsed();
    let json_cpu = cpu_time() - cpu;
    check(&c, &m, n);
    println!(
        "{n} paths ({} observations + {} conntrack): features built in {:.0} ms, join {:.0} ms (cpu {:.0} ms), JSON {:.0} ms (cpu {:.0} ms, {} MB); {:?}",
        c.obs.len(),
        c.cts.len(),
        build.as_secs_f64() * 1e3,
        joined.as_secs_f64() * 1e3,
        joined_cpu * 1e3,
        json.as_secs_f64() * 1e3,
        json_cpu * 1e3,
        out.len() >> 20,
        m.stats
    );
    joined.as_secs_f64().min(joined_cpu.max(0.001))
}

#[test]
fn join_seed_paths_5k() {
    bench_join(5_000);
}

#[test]
#[ignore = "benchmark: cargo test --release --test join_bench -- --ignored --nocapture"]
fn join_seed_paths_50k() {
    let best = (0..3).map(|_| bench_join(50_000)).fold(f64::MAX, f64::min);
    println!("50k paths: best join time {:.0} ms", best * 1e3);
    if !cfg!(debug_assertions) {
        assert!(best < 1.0, "50k paths must join in under a second");
    }
}

// ---- the analysis-overhead benchmark ----

/// Writes one Ethernet/IPv4/TCP (TS option) frame.
#[allow(clippy::too_many_arguments)]
fn tcp_frame(
    out: &mut Vec<u8>,
    src: SocketAddr,
    dst: SocketAddr,
    ttl: u8,
    id: u16,
    seq: u32,
    ack: u32,
    flags: u16,
    ts: (u32, u32),
    payload: &[u8],
) {
    out.clear();
    out.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0]);
    let (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) = (src.ip(), dst.ip()) else {
        panic!()
    };
    let total = (20 + 32 + payload.len()) as u16;
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x40, 0, ttl, 6, 0, 0]);
    out.extend_from_slice(&s.octets());
    out.extend_from_slice(&d.octets());
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&dst.port().to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&ack.to_be_bytes());
    out.extend_from_slice(&[0x80, flags as u8, 0x02, 0x00, 0, 0, 0, 0]);
    out.extend_from_slice(&[1, 1, 8, 10]);
    out.extend_from_slice(&ts.0.to_be_bytes());
    out.extend_from_slice(&ts.1.to_be_bytes());
    out.extend_from_slice(payload);
}

/// The corpus as pcap files, one per capture point, from the features' packet records:
/// re-simulated from the same generator so frames and features agree.
fn write_pcaps(n: u64, spacing: i64, dir: &std::path::Path) -> Vec<String> {
    use std::io::Write;
    let mut rng = Rng(0x5eed);
    let mut frames: Vec<Vec<(i64, Vec<u8>)>> = vec![Vec::new(); 5];
    let mut buf = Vec::new();
    for i in 0..n {
        let size = 64 + (i as usize * 131) % 6000;
        let sp = seed_path(
            &mut rng,
            i,
            1_700_000_000_000_000_000 + i as i64 * spacing,
            size,
        );
        for (leg, s) in &sp.sights {
            let c = &sp.legs[*leg];
            for p in packets(c) {
                let at = if p.dir == 0 {
                    p.at + s.delay
                } else {
                    p.at - s.delay
                };
                let (src, dst) = if p.dir == 0 {
                    (s.client, s.server)
                } else {
                    (s.server, s.client)
                };
                tcp_frame(
                    &mut buf,
                    src,
                    dst,
                    64,
                    p.ipid,
                    p.seq,
                    p.ack,
                    p.flags,
                    (p.tsval, p.tsecr),
                    &c.payload[p.dir][p.data.clone()],
                );
                frames[s.point as usize].push((at, buf.clone()));
            }
        }
    }
    let mut files = Vec::new();
    for (k, fr) in frames.iter_mut().enumerate() {
        fr.sort_by_key(|f| f.0);
        let path = dir.join(format!("{}.pcap", SEED_POINTS[k]));
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        w.write_all(&[
            0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0,
        ])
        .unwrap();
        for (at, f) in fr.iter() {
            let (sec, nsec) = (at.div_euclid(1_000_000_000), at.rem_euclid(1_000_000_000));
            w.write_all(&(sec as u32).to_le_bytes()).unwrap();
            w.write_all(&((nsec / 1000) as u32).to_le_bytes()).unwrap();
            w.write_all(&(f.len() as u32).to_le_bytes()).unwrap();
            w.write_all(&(f.len() as u32).to_le_bytes()).unwrap();
            w.write_all(f).unwrap();
        }
        files.push(format!("{}={}", SEED_POINTS[k], path.display()));
    }
    files
}

struct Flow {
    point: usize,
    client: SocketAddr,
    server: SocketAddr,
    conv: Conversation,
    delivered: u64,
    /// What a flow table keeps anyway: packets, payload bytes, first and last time.
    packets: [u64; 2],
    bytes: [u64; 2],
    first: i64,
    last: i64,
    f: Option<ObservationFeatures>,
}

/// `--flows=json` without joins: one path, one leg, one observation per flow.
#[derive(serde::Serialize)]
struct FlowLine<'a> {
    id: usize,
    proto: &'static str,
    legs: [FlowLeg<'a>; 1],
    via: [u8; 0],
}
#[derive(serde::Serialize)]
struct FlowLeg<'a> {
    observations: [FlowObs<'a>; 1],
}
#[derive(serde::Serialize)]
struct FlowObs<'a> {
    point: &'a str,
    src: String,
    dst: String,
    packets: [u64; 2],
    bytes: [u64; 2],
    first: f64,
    last: f64,
}

/// Reads the files, decodes, tracks tuples, reassembles; with `features`, also fills the
/// joiner's features and joins at the end. Returns (seconds, paths).
fn analyse(files: &[String], features: bool, cts: &[CtEntry]) -> (f64, usize) {
    analyse_with(files, features, features, features, cts)
}

fn analyse_with(
    files: &[String],
    features: bool,
    digests: bool,
    joining: bool,
    cts: &[CtEntry],
) -> (f64, usize) {
    let t = cpu_time();
    let budget = Budget::default();
    let mut points = Points::default();
    let mut flows: Vec<Flow> = Vec::new();
    let mut index: HashMap<(usize, SocketAddr, SocketAddr), usize> = HashMap::new();
    for spec in files {
        let mut r = OfflineReader::open(spec, &mut points).unwrap();
        let mut spare = Vec::new();
        while let Some(fr) = r.next_frame(&mut points, spare).unwrap() {
            let d = decode(fr.linktype, &fr.data);
            if let (Some(ip), Transport::Tcp(tcp)) = (d.ip, d.transport) {
                let (src, dst) = (
                    SocketAddr::new(ip.src, tcp.sport),
                    SocketAddr::new(ip.dst, tcp.dport),
                );
                let key = if src <= dst {
                    (fr.point, src, dst)
                } else {
                    (fr.point, dst, src)
                };
                let i = *index.entry(key).or_insert_with(|| {
                    flows.push(Flow {
                        point: fr.point,
                        client: src,
                        server: dst,
                        conv: Conversation::new(Config::default(), &budget),
                        delivered: 0,
                        packets: [0; 2],
                        bytes: [0; 2],
                        first: i64::MAX,
                        last: i64::MIN,
                        f: features.then(|| {
                            ObservationFeatures::new(fr.point as u32, Proto::Tcp, src, dst)
                        }),
                    });
                    flows.len() - 1
                });
                let fl = &mut flows[i];
                let dir = if src == fl.client {
                    Direction::ClientToServer
                } else {
                    Direction::ServerToClient
                };
                let k = usize::from(dir == Direction::ServerToClient);
                let at = flowtrail::join::nanos(fr.ts);
                fl.packets[k] += 1;
                fl.bytes[k] += u64::from(tcp.payload_len);
                fl.first = fl.first.min(at);
                fl.last = fl.last.max(at);
                if let Some(f) = fl.f.as_mut() {
                    f.on_tcp(dir, fr.ts, &ip, &tcp);
                    f.on_link(dir, fr.linktype, &fr.data);
                }
                let mut seg = Segment::new(SeqNum(tcp.seq), TcpFlags(tcp.flags as u8), tcp.payload);
                if tcp.flags & tcp_flags::ACK != 0 {
                    seg = seg.with_ack(SeqNum(tcp.ack));
                }
                let (f, delivered) = (&mut fl.f, &mut fl.delivered);
                fl.conv
                    .segment(dir, seg, &mut |d: Direction, ev: Event<'_>| {
                        if let Event::Data { offset, bytes } = ev {
                            *delivered += bytes.len() as u64;
                            if let Some(f) = f.as_mut().filter(|_| digests) {
                                f.on_stream_data(d, offset, &bytes);
                            }
                        }
                    });
            }
            spare = fr.data;
        }
    }
    let mut paths = flows.len();
    let mut out: Vec<u8> = Vec::with_capacity(flows.len() * 512);
    let t_read = cpu_time();
    let mut t_join = t_read;
    if joining {
        let mut j = Joiner::new(JoinConfig::default());
        j.set_points(&points);
        for (i, fl) in flows.iter().enumerate() {
            if let Some(f) = &fl.f {
                j.add_observation(ObservationId(i as u64), f);
            }
        }
        for e in cts {
            j.add_conntrack_in(e, "vm");
        }
        let m = j.join();
        t_join = cpu_time();
        paths = m.paths.len();
        m.write_json_lines(&mut out).unwrap();
    } else {
        use std::io::Write;
        for (i, fl) in flows.iter().enumerate() {
            let line = FlowLine {
                id: i + 1,
                proto: "tcp",
                legs: [FlowLeg {
                    observations: [FlowObs {
                        point: points.get(fl.point).map_or("", |p| p.label.as_str()),
                        src: fl.client.to_string(),
                        dst: fl.server.to_string(),
                        packets: fl.packets,
                        bytes: fl.bytes,
                        first: fl.first as f64 / 1e9,
                        last: fl.last as f64 / 1e9,
                    }],
                }],
                via: [],
            };
            serde_json::to_writer(&mut out, &line).unwrap();
            out.write_all(b"\n").unwrap();
        }
    }
    std::hint::black_box(&out);
    let end = cpu_time();
    if std::env::var_os("FT_BENCH_PHASES").is_some() {
        println!(
            "  phases: read+decode+flows {:.0} ms, join {:.0} ms, JSON {:.0} ms ({} MB)",
            (t_read - t) * 1e3,
            (t_join - t_read) * 1e3,
            (end - t_join) * 1e3,
            out.len() >> 20
        );
    }
    (end - t, paths)
}

#[test]
#[ignore = "benchmark: cargo test --release --test join_bench -- --ignored --nocapture"]
fn analysis_overhead() {
    let n = 20_000;
    let dir = std::env::temp_dir().join(format!("flowtrail-join-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = write_pcaps(n, 20 * US, &dir);
    let c = corpus(n);
    // The frames and the simulator's features must agree (same schedule).
    let (_, paths) = analyse(&files, true, &c.cts);
    assert_eq!(paths as u64, n);
    // CPU time of this thread, best of several rounds with the variants interleaved.
    let rounds = std::env::var("FT_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(7);
    let mut best = [f64::MAX; 4];
    for _ in 0..rounds {
        let x = [
            analyse(&files, false, &c.cts).0,
            analyse_with(&files, true, false, false, &c.cts).0,
            analyse_with(&files, true, true, false, &c.cts).0,
            analyse(&files, true, &c.cts).0,
        ];
        for (b, v) in best.iter_mut().zip(x) {
            *b = b.min(v);
        }
    }
    let [base, hooks, digests, with] = best;
    println!(
        "best of {rounds}: baseline {:.0} ms, + per-packet hooks {:.0} ms, + stream digests {:.0} ms, + join {:.0} ms",
        base * 1e3,
        hooks * 1e3,
        digests * 1e3,
        with * 1e3
    );
    let bytes: u64 = files
        .iter()
        .map(|f| {
            std::fs::metadata(f.split_once('=').unwrap().1)
                .unwrap()
                .len()
        })
        .sum();
    println!(
        "analysis of {n} paths ({} MB of pcap): baseline {:.0} ms, with features + join {:.0} ms: +{:.1} %",
        bytes >> 20,
        base * 1e3,
        with * 1e3,
        (with / base - 1.0) * 100.0
    );
    if std::env::var_os("FT_BENCH_KEEP").is_some() {
        println!("pcaps kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
#[ignore = "profiling helper: perf record ... --ignored --exact join_profile"]
fn join_profile() {
    let paths = std::env::var("FT_JOIN_PATHS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(50_000);
    let c = corpus(paths);
    let n = std::env::var("FT_JOIN_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    for _ in 0..n {
        let (t, cpu) = (Instant::now(), cpu_time());
        let m = join(&c);
        println!(
            "join {:.0} ms (cpu {:.0} ms)",
            t.elapsed().as_secs_f64() * 1e3,
            (cpu_time() - cpu) * 1e3
        );
        let t = Instant::now();
        drop(m);
        println!("drop {:.0} ms", t.elapsed().as_secs_f64() * 1e3);
    }
}

#[test]
#[ignore = "profiling helper: perf record ... --ignored --exact json_profile"]
fn json_profile() {
    let c = corpus(20_000);
    let m = join(&c);
    for _ in 0..10 {
        let cpu = cpu_time();
        let mut out = Vec::with_capacity(64 << 20);
        m.write_json_lines(&mut out).unwrap();
        println!(
            "json {:.0} ms cpu, {} MB",
            (cpu_time() - cpu) * 1e3,
            out.len() >> 20
        );
    }
}

/// The real binary on five capture files of seed paths (a new one every `spacing`), joined
/// with `--max-memory 64M`, so in many batches: the connections whose paths are not written
/// whole (Truth: `seed_path`'s ports, `10000 + (base + i) % 50000` with base 0 for the first
/// leg (host-lo), 7919 for the second (host-veth, vm-veth) and 23459 for the third (vm-br0,
/// node-eth0)), and the stats.
fn joined_in_batches(n: u64, spacing: i64) -> (Vec<u64>, serde_json::Value) {
    let dir = std::env::temp_dir().join(format!("flowtrail-join-batches-{}-{spacing}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = write_pcaps(n, spacing, &dir);
    let out = in_batches(&files, false);
    let _ = std::fs::remove_dir_all(&dir);
    check_batches(n, out)
}

/// `flowtrail --flows=json --max-memory 64M` on `files`; with `one_cpu`, pinned to CPU 0
/// (`taskset -c 0`).
fn in_batches(files: &[String], one_cpu: bool) -> std::process::Output {
    let bin = env!("CARGO_BIN_EXE_flowtrail");
    let mut cmd = std::process::Command::new(if one_cpu { "taskset" } else { bin });
    if one_cpu {
        cmd.args(["-c", "0", bin]);
    }
    for f in files {
        cmd.arg("-r").arg(f.split_once('=').unwrap().1);
    }
    let out = cmd.args(["--flows=json", "--max-memory", "64M"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// The cut connections and the stats of [`joined_in_batches`]' run.
fn check_batches(n: u64, out: std::process::Output) -> (Vec<u64>, serde_json::Value) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stats: serde_json::Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    let base = |point: &str| match point {
        "host-lo" => 0,
        "host-veth" | "vm-veth" => 7_919,
        _ => 23_459,
    };
    let mut pieces = vec![0u32; n as usize];
    let mut whole = vec![false; n as usize];
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let p: serde_json::Value = serde_json::from_str(line).unwrap();
        let legs = p["legs"].as_array().unwrap();
        let mut conns = Vec::new();
        for o in legs.iter().flat_map(|l| l["observations"].as_array().unwrap()) {
            let port: u64 = o["src"].as_str().unwrap().rsplit_once(':').unwrap().1.parse().unwrap();
            conns.push((port + 50_000 - 10_000 - base(o["point"].as_str().unwrap())) % 50_000);
        }
        conns.dedup();
        // Never two connections in one path.
        assert_eq!(conns.len(), 1, "path {}: connections {conns:?}", p["id"]);
        let observations: usize = legs.iter().map(|l| l["observations"].as_array().unwrap().len()).sum();
        pieces[conns[0] as usize] += 1;
        whole[conns[0] as usize] = legs.len() == 3 && observations == 5;
    }
    let cut = (0..n).filter(|&i| pieces[i as usize] != 1 || !whole[i as usize]).collect();
    (cut, stats["stats"].clone())
}

#[test]
fn paths_stay_whole_when_joined_in_many_batches() {
    // A connection every 100 us: what a batch holds back for the next one (a quarter) spans
    // more than the 3 ms between the ends of one path's legs. Every path is written whole.
    let (cut, stats) = joined_in_batches(2_000, 100 * US);
    let batches = stats["records_flushed_early"].as_u64().unwrap();
    println!("every 100 us: {} of 2000 paths cut, {batches} batches joined early; batch_cut_paths {}", cut.len(), stats["join"]["batch_cut_paths"]);
    assert!(batches >= 4, "{batches} batches joined before the end: make them smaller");
    assert!(cut.is_empty(), "{cut:?}");
    assert_eq!(stats["join"]["paths"], 2_000);
    // Every 20 us, the quarter is too small: paths are cut, and counted (at least those cut).
    let (cut, stats) = joined_in_batches(2_000, 20 * US);
    let counted = stats["join"]["batch_cut_paths"].as_u64().unwrap();
    println!("every 20 us: {} of 2000 paths cut; batch_cut_paths {counted}", cut.len());
    assert!(!cut.is_empty() && counted >= cut.len() as u64, "{} cut, {counted} counted", cut.len());
}

/// Pinned to one CPU, flowtrail joins its batches inline instead of on a second thread
/// (there the thread would only take turns with the capture loop): the output is the same,
/// byte for byte, and so are the join's stats.
#[test]
fn one_cpu_joins_inline_with_the_same_output() {
    // Skips with a message outside CI when taskset (util-linux) is missing; fails in CI.
    if common::require_tool("taskset").is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("flowtrail-join-one-cpu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = write_pcaps(2_000, 100 * US, &dir);
    let free = in_batches(&files, false);
    let pinned = in_batches(&files, true);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(free.stdout == pinned.stdout, "pinned to one CPU, the joined paths differ");
    let (_, with_thread) = check_batches(2_000, free);
    let (cut, inline) = check_batches(2_000, pinned);
    assert_eq!(with_thread["join"], inline["join"]);
    assert!(cut.is_empty(), "{cut:?}");
    assert!(inline["records_flushed_early"].as_u64().unwrap() >= 4, "joined in too few batches: {inline}");
}
