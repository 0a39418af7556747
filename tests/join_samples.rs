//! The joiner on the recorded seed-path captures (samples/), checked against ground truth.
//!
//! A small test-only extractor stands in for the flow table: it reads the pcaps with
//! `OfflineReader`, decodes frames, keeps one `ObservationFeatures` per (point, 5-tuple)
//! (the first packet's sender is the client), reassembles TCP with `Conversation` and feeds
//! its Data/Gap events to the features. Ground truth comes from the payloads themselves:
//! lab/client.py's lines name their connection (`ft s1 c0003 ...`), and the server port
//! names the leg (49673: client -> HOST forwarder, 49700: HOST -> VM forwarder, 8443: VM
//! forwarder -> server).

use flowtrail::capture::{FrameSource, OfflineReader, Points};
use flowtrail::conntrack::{CtEntry, text};
use flowtrail::decode::{Transport, decode};
use flowtrail::join::{
    JoinConfig, JoinKind, Joiner, Model, ObservationFeatures, ObservationId, Proto, Source,
};
use flowtrail::reassembly::{Budget, Config, Conversation, Direction, Event, Segment, TcpFlags};
use flowtrail::seq::SeqNum;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

fn sample(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// Rewrites a packet's `(src, dst)` at a point (to make NAT out of a recording).
type Nat = Box<dyn Fn(SocketAddr, SocketAddr) -> (SocketAddr, SocketAddr)>;

struct Flow {
    f: ObservationFeatures,
    conv: Option<Conversation>,
    /// First bytes of the client's stream (ground truth).
    head: Vec<u8>,
}

#[derive(Default)]
struct Extractor {
    points: Points,
    flows: Vec<Flow>,
    index: HashMap<(usize, Proto, SocketAddr, SocketAddr), usize>,
    budget: Budget,
}

impl Extractor {
    fn read(&mut self, spec: &str, nat: Option<Nat>) {
        let mut r =
            OfflineReader::open(spec, &mut self.points).unwrap_or_else(|e| panic!("{spec}: {e}"));
        while let Some(fr) = r.next_frame(&mut self.points, Vec::new()).unwrap() {
            let mut d = decode(fr.linktype, &fr.data);
            let Some(mut ip) = d.ip else { continue };
            if let Some(u) = first_fragment_udp(fr.linktype, &fr.data) {
                d.transport = Transport::Udp(u);
            }
            let (proto, sport, dport) = match &d.transport {
                Transport::Tcp(t) => (Proto::Tcp, t.sport, t.dport),
                Transport::Udp(u) => (Proto::Udp, u.sport, u.dport),
                _ => continue,
            };
            let (mut src, mut dst) = (
                SocketAddr::new(ip.src, sport),
                SocketAddr::new(ip.dst, dport),
            );
            if let Some(n) = &nat {
                (src, dst) = n(src, dst);
                ip.src = src.ip();
                ip.dst = dst.ip();
            }
            let key = if src <= dst {
                (fr.point, proto, src, dst)
            } else {
                (fr.point, proto, dst, src)
            };
            let budget = &self.budget;
            let i = *self.index.entry(key).or_insert_with(|| {
                self.flows.push(Flow {
                    f: ObservationFeatures::new(fr.point as u32, proto, src, dst),
                    conv: (proto == Proto::Tcp)
                        .then(|| Conversation::new(Config::default(), budget)),
                    head: Vec::new(),
                });
                self.flows.len() - 1
            });
            let flow = &mut self.flows[i];
            let dir = if src == flow.f.client {
                Direction::ClientToServer
            } else {
                Direction::ServerToClient
            };
            flow.f.on_link(dir, fr.linktype, &fr.data);
            match d.transport {
                Transport::Tcp(t) => {
                    flow.f.on_tcp(dir, fr.ts, &ip, &t);
                    let mut seg = Segment::new(SeqNum(t.seq), TcpFlags(t.flags as u8), t.payload);
                    if t.flags & flowtrail::decode::tcp_flags::ACK != 0 {
                        seg = seg.with_ack(SeqNum(t.ack));
                    }
                    let (f, head) = (&mut flow.f, &mut flow.head);
                    if let Some(conv) = flow.conv.as_mut() {
                        conv.segment(dir, seg, &mut |d: Direction, ev: Event<'_>| match ev {
                            Event::Data { offset, bytes } => {
                                if d == Direction::ClientToServer && head.len() < 32 {
                                    head.extend(bytes.iter().take(32 - head.len()));
                                }
                                f.on_stream_data(d, offset, &bytes);
                            }
                            Event::Gap { offset, .. } => f.on_stream_gap(d, offset),
                            _ => {}
                        });
                    }
                }
                Transport::Udp(u) => {
                    if dir == Direction::ClientToServer && flow.head.is_empty() {
                        flow.head.extend(u.payload.iter().take(32));
                    }
                    flow.f.on_udp(dir, fr.ts, &ip, &u);
                }
                _ => {}
            }
        }
    }

    fn joiner(&self) -> Joiner<'_> {
        let mut j = Joiner::new(JoinConfig::default());
        j.set_points(&self.points);
        for (i, fl) in self.flows.iter().enumerate() {
            j.add_observation(ObservationId(i as u64), &fl.f);
        }
        j
    }

    /// Connection index named by the client's first payload line (`ft s1 c0003 ...`).
    fn conn_of(&self, id: u64) -> Option<u64> {
        let h = &self.flows[id as usize].head;
        let s = std::str::from_utf8(h).ok()?;
        let c = s.split_whitespace().nth(2)?;
        c.strip_prefix('c')?.parse().ok()
    }
}

/// `decode` leaves the transport of every IPv4 fragment unparsed, the first one too (whose
/// UDP header tcpdump prints as `UDP, length 2000`): the flow table needs it, so this
/// test-only stand-in takes it from an Ethernet/IPv4 first fragment.
fn first_fragment_udp(linktype: u32, data: &[u8]) -> Option<flowtrail::decode::Udp<'_>> {
    if linktype != 1 || data.get(12..14)? != [8, 0] {
        return None;
    }
    let ip = data.get(14..)?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
    let (more, offset) = (frag & 0x2000 != 0, frag & 0x1fff);
    if ip.get(9) != Some(&17) || !more || offset != 0 {
        return None;
    }
    let u = ip.get(ihl..)?;
    let len = u16::from_be_bytes([*u.get(4)?, *u.get(5)?]);
    Some(flowtrail::decode::Udp {
        sport: u16::from_be_bytes([u[0], u[1]]),
        dport: u16::from_be_bytes([u[2], u[3]]),
        payload: u.get(8..)?,
        payload_len: u32::from(len).saturating_sub(8),
    })
}

fn conntrack(file: &str) -> Vec<CtEntry> {
    let text = std::fs::read_to_string(sample(file)).unwrap();
    let (v, errs) = text::parse_entries(&text);
    assert!(errs.is_empty(), "{errs:?}");
    v
}

/// Pairwise precision and recall of "same leg" and "same path" over the observations,
/// against `truth(id) = (path, leg)`.
fn score(m: &Model, truth: &dyn Fn(u64) -> (String, u32)) -> [f64; 4] {
    let mut ids: Vec<(u64, u64, usize)> = Vec::new();
    let mut serial = 0;
    for p in &m.paths {
        for l in &p.legs {
            serial += 1;
            for o in &l.observations {
                for &id in &o.ids {
                    ids.push((id, p.id, serial));
                }
            }
        }
    }
    let mut c = [0u64; 6];
    for i in 0..ids.len() {
        for j in i + 1..ids.len() {
            let (a, b) = (ids[i], ids[j]);
            let (ta, tb) = (truth(a.0), truth(b.0));
            let k = |pred: bool, real: bool, base: usize, c: &mut [u64; 6]| match (pred, real) {
                (true, true) => c[base] += 1,
                (true, false) => c[base + 1] += 1,
                (false, true) => c[base + 2] += 1,
                _ => {}
            };
            k(a.2 == b.2, ta == tb, 0, &mut c);
            k(a.1 == b.1, ta.0 == tb.0, 3, &mut c);
        }
    }
    let r = |tp: u64, x: u64| {
        if tp + x == 0 {
            1.0
        } else {
            tp as f64 / (tp + x) as f64
        }
    };
    [r(c[0], c[1]), r(c[0], c[2]), r(c[3], c[4]), r(c[3], c[5])]
}

fn report(name: &str, m: &Model, s: [f64; 4]) {
    println!(
        "{name}: legs precision {:.1}% recall {:.1}%, paths precision {:.1}% recall {:.1}% ({} paths, {} legs, {} observations + {} from conntrack)",
        s[0] * 100.0,
        s[1] * 100.0,
        s[2] * 100.0,
        s[3] * 100.0,
        m.stats.paths,
        m.stats.legs,
        m.stats.observations,
        m.stats.synthetic
    );
}

/// The seed-path truth: `(path, leg)` of an observation.
fn seed_truth(x: &Extractor) -> impl Fn(u64) -> (String, u32) + '_ {
    move |id| {
        let f = &x.flows[id as usize].f;
        let conn = x.conn_of(id);
        let port = [f.client.port(), f.server.port()];
        let leg = if port.contains(&49673) {
            1
        } else if port.contains(&49700) {
            2
        } else if port.contains(&8443) {
            3
        } else {
            0
        };
        if leg == 0 {
            (format!("other {}", f.client), 0)
        } else {
            (format!("seed {conn:?}"), leg)
        }
    }
}

fn client_log(file: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(sample(file))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The five seed connections: one path of three legs each, on the right points.
fn check_seed(m: &Model, x: &Extractor, lo: &str, veth: [&str; 2], leg3: [&str; 3]) {
    let log = client_log("seedpath-client.jsonl");
    let seed: Vec<_> = m
        .paths
        .iter()
        .filter(|p| {
            p.legs
                .iter()
                .any(|l| l.observations.iter().any(|o| o.dst.port() == 49673))
        })
        .collect();
    assert_eq!(seed.len(), 5, "{m}");
    for p in &seed {
        assert_eq!(p.legs.len(), 3, "{p}");
        let pts = |l: usize| {
            p.legs[l]
                .observations
                .iter()
                .map(|o| &*o.point)
                .collect::<Vec<_>>()
        };
        assert_eq!(pts(0), [lo]);
        assert_eq!(pts(1), veth);
        assert_eq!(pts(2), ["vm/conntrack", leg3[0], leg3[1], leg3[2]], "{p}");
        assert_eq!(p.legs[1].join.kind, JoinKind::SameTuple);
        assert_eq!(p.legs[2].join.kind, JoinKind::Nat);
        assert_eq!(p.legs[2].observations[0].source, Source::Conntrack);
        assert_eq!(p.legs[2].observations[0].dst.to_string(), "127.0.0.1:55001");
        assert_eq!(p.server.unwrap().to_string(), "192.168.49.2:8443");
        // The client's log: its address and byte counts, on every leg.
        let client = p.client.unwrap().to_string();
        let entry = log
            .iter()
            .find(|e| e["local"] == client.as_str())
            .unwrap_or_else(|| panic!("{client} not in the log"));
        let (sent, received) = (
            entry["sent"].as_u64().unwrap(),
            entry["received"].as_u64().unwrap(),
        );
        for l in &p.legs {
            for o in &l.observations {
                assert_eq!(o.bytes, [sent, received], "{client} at {}", o.point);
            }
        }
        // The conntrack mapping: leg 3's port survives MASQUERADE.
        let port = p.legs[2].observations[1].src.port();
        assert_eq!(
            p.legs[2].observations[0].src.to_string(),
            format!("127.0.0.1:{port}")
        );
        assert_eq!(p.via.len(), 2);
        // Hops along travel order: no negative latency.
        for l in &p.legs {
            for h in &l.hops {
                for v in [h.latency.c2s_us, h.latency.s2c_us].into_iter().flatten() {
                    assert!(v >= 0.0, "{p}");
                }
            }
        }
    }
    // Nothing of the seed path on VM lo.
    for p in &m.paths {
        let on_vm_lo = p
            .legs
            .iter()
            .flat_map(|l| &l.observations)
            .any(|o| o.point.ends_with("lo") && &*o.point != lo);
        if on_vm_lo {
            assert_eq!(p.legs.len(), 1, "{p}");
            assert!(
                p.legs[0].observations.iter().all(|o| o.dst.port() == 55002),
                "{p}"
            );
        }
    }
    let _ = x;
}

/// The seed path's capture points, one bundled pcap each.
const SEED_SAMPLES: [&str; 7] = ["host-lo", "host-veth", "vm-veth", "vm-lo", "vm-br0", "vm-brport", "node-eth0"];

/// The seven seed pcaps read.
fn seed_samples() -> Extractor {
    let mut x = Extractor::default();
    for f in SEED_SAMPLES {
        x.read(&sample(&format!("{f}.pcap")), None);
    }
    x
}

#[test]
fn seed_path_samples() {
    let x = seed_samples();
    let cts = conntrack("vm-conntrack.txt");
    let mut j = x.joiner();
    for e in &cts {
        j.add_conntrack_in(e, "vm");
    }
    let m = j.join();
    println!("{m}");
    let s = score(&m, &seed_truth(&x));
    report("seed path (7 pcaps + conntrack)", &m, s);
    assert_eq!(s, [1.0; 4]);
    check_seed(
        &m,
        &x,
        "host-lo",
        ["host-veth", "vm-veth"],
        ["vm-br0", "vm-brport", "node-eth0"],
    );
    assert_eq!(
        m.paths.len(),
        6,
        "5 seed paths and VM lo's control connection"
    );
    // JSON: one line per path.
    let mut out = Vec::new();
    m.write_json_lines(&mut out).unwrap();
    assert_eq!(String::from_utf8(out).unwrap().lines().count(), 6);
}

#[test]
fn seed_path_samples_without_conntrack() {
    let x = seed_samples();
    let m = x.joiner().join();
    let s = score(&m, &seed_truth(&x));
    report("seed path (7 pcaps, no conntrack)", &m, s);
    assert_eq!(s, [1.0; 4]);
    assert_eq!(m.stats.synthetic, 0);
}

#[test]
fn seed_path_with_the_vm_pcapng() {
    let mut x = Extractor::default();
    x.read(&sample("host-lo.pcap"), None);
    x.read(&sample("host-veth.pcap"), None);
    x.read(&format!("vm={}", sample("vm-all.pcapng")), None);
    x.read(&sample("node-eth0.pcap"), None);
    let mut j = x.joiner();
    for e in &conntrack("vm-conntrack.txt") {
        j.add_conntrack_in(e, "vm");
    }
    let m = j.join();
    let s = score(&m, &seed_truth(&x));
    report("seed path (host pcaps + vm-all.pcapng + node)", &m, s);
    assert_eq!(s, [1.0; 4]);
    check_seed(
        &m,
        &x,
        "host-lo",
        ["host-veth", "vm/veth-host"],
        ["vm/br0", "vm/veth-node", "node-eth0"],
    );
}

#[test]
fn bridge_nf_sample_merges_half_observations() {
    let mut x = Extractor::default();
    x.read(&sample("vm-br0-brnf.pcap"), None);
    assert_eq!(x.flows.len(), 2, "the flow table sees two tuples");
    let m = x.joiner().join();
    println!("{m}");
    let s = score(&m, &|_| ("brnf".into(), 1));
    report("vm-br0-brnf", &m, s);
    assert_eq!(s, [1.0; 4]);
    assert_eq!(m.paths.len(), 1);
    let l = &m.paths[0].legs[0];
    assert_eq!(l.observations.len(), 1, "two halves, one observation");
    let o = &l.observations[0];
    assert_eq!(
        (o.src.to_string().as_str(), o.dst.to_string().as_str()),
        ("192.168.49.1:53340", "192.168.49.2:8443")
    );
    let r = o.reply.as_ref().unwrap();
    assert_eq!(
        (r.src.to_string().as_str(), r.dst.to_string().as_str()),
        ("192.168.49.2:8443", "127.0.0.1:53340")
    );
    let log = client_log("brnf-client.jsonl");
    assert_eq!(
        o.bytes,
        [
            log[0]["sent"].as_u64().unwrap(),
            log[0]["received"].as_u64().unwrap()
        ]
    );
    assert_eq!(o.ids.len(), 2);
    assert_eq!(l.join.kind, JoinKind::Nat);
}

/// Ground truth for the single-point files: one path per client socket.
fn by_client(x: &Extractor) -> impl Fn(u64) -> (String, u32) + '_ {
    move |id| {
        let f = &x.flows[id as usize].f;
        let c = if f.client.port() >= 40000 && f.client.port() < 41000 {
            f.client
        } else {
            f.server
        };
        (c.port().to_string(), 1)
    }
}

fn check_single_point(file: &str, log: &str) {
    let mut x = Extractor::default();
    x.read(&sample(file), None);
    let m = x.joiner().join();
    let s = score(&m, &by_client(&x));
    report(file, &m, s);
    assert_eq!(s, [1.0; 4]);
    for e in client_log(log) {
        let p = m
            .paths
            .iter()
            .find(|p| p.client.map(|c| c.to_string()).as_deref() == e["local"].as_str())
            .unwrap_or_else(|| panic!("{e}\n{m}"));
        assert_eq!(p.legs.len(), 1);
        let o = &p.legs[0].observations[0];
        assert_eq!(o.bytes[0], e["sent"].as_u64().unwrap(), "{p}");
        assert_eq!(o.bytes[1], e["received"].as_u64().unwrap(), "{p}");
    }
}

#[test]
fn tcp6_udp_udp6_samples() {
    check_single_point("tcp6.pcap", "tcp6-client.jsonl");
    check_single_point("udp.pcap", "udp-client.jsonl");
    check_single_point("udp6.pcap", "udp6-client.jsonl");
}

/// The same recording at two points (both ends of a link): every connection one leg of
/// two same-tuple observations.
#[test]
fn tcp6_and_udp_seen_twice_are_same_tuple_legs() {
    for (file, log) in [
        ("tcp6.pcap", "tcp6-client.jsonl"),
        ("udp.pcap", "udp-client.jsonl"),
        ("udp6.pcap", "udp6-client.jsonl"),
    ] {
        let mut x = Extractor::default();
        x.read(&format!("a={}", sample(file)), None);
        x.read(&format!("b={}", sample(file)), None);
        let m = x.joiner().join();
        let s = score(&m, &by_client(&x));
        report(&format!("{file} at two points"), &m, s);
        assert_eq!(s, [1.0; 4], "{m}");
        assert_eq!(m.paths.len(), client_log(log).len(), "{m}");
        for p in &m.paths {
            assert_eq!(p.legs[0].observations.len(), 2);
            assert_eq!(p.legs[0].join.kind, JoinKind::SameTuple);
        }
    }
}

fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// UDP through DNAT: udp.pcap as the client sent it, and again with the server rewritten
/// to 10.0.0.2:5353 (IP-IDs kept, as NAT keeps them): one leg per socket, kind nat.
#[test]
fn udp_through_dnat() {
    let mut x = Extractor::default();
    x.read(&format!("pre={}", sample("udp.pcap")), None);
    let server = sock("192.168.65.2:41000");
    let dnat: Nat = Box::new(move |s, d| {
        let map = |a: SocketAddr| {
            if a == server {
                sock("10.0.0.2:5353")
            } else {
                a
            }
        };
        (map(s), map(d))
    });
    x.read(&format!("post={}", sample("udp.pcap")), Some(dnat));
    let m = x.joiner().join();
    println!("{m}");
    let s = score(&m, &by_client(&x));
    report("udp.pcap through DNAT", &m, s);
    assert_eq!(s, [1.0; 4]);
    assert_eq!(m.paths.len(), 3);
    for p in &m.paths {
        let l = &p.legs[0];
        assert_eq!(l.observations.len(), 2, "{p}");
        let rewritten = l.observations[0].dst.port() == 41000;
        assert_eq!(
            l.join.kind,
            if rewritten {
                JoinKind::Nat
            } else {
                JoinKind::SameTuple
            },
            "{p}"
        );
    }
}

/// IPv6 UDP through NAT66 has no IP-IDs: conntrack joins it.
#[test]
fn udp6_through_nat66_with_conntrack() {
    let mut x = Extractor::default();
    x.read(&format!("pre={}", sample("udp6.pcap")), None);
    let server = sock("[fd00:65::2]:41000");
    let new = sock("[fd00:99::2]:5353");
    let dnat: Nat = Box::new(move |s, d| {
        let map = |a: SocketAddr| if a == server { new } else { a };
        (map(s), map(d))
    });
    x.read(&format!("post={}", sample("udp6.pcap")), Some(dnat));
    let mut j = x.joiner();
    let cts: Vec<CtEntry> = [40050, 40051]
        .iter()
        .map(|p| {
            let line = format!("udp      17 29 src=fd00:65::1 dst=fd00:65::2 sport={p} dport=41000 src=fd00:99::2 dst=fd00:65::1 sport=5353 dport={p} mark=0 use=1");
            text::parse_entries(&line).0.remove(0)
        })
        .collect();
    for e in &cts {
        j.add_conntrack(e);
    }
    let m = j.join();
    let s = score(&m, &by_client(&x));
    report("udp6.pcap through NAT66 + conntrack", &m, s);
    assert_eq!(s, [1.0; 4], "{m}");
    assert_eq!(m.stats.synthetic, 0);
}

/// The command line on the bundled seed samples (what scripts/demo.sh and the README show):
/// `--flows=json` and `--flows` give each seed connection of the client's log as ONE path
/// from host-lo to node-eth0, with its three legs: host-lo; host-veth + vm-veth (same
/// tuple); vm/conntrack (the DNATed 127.0.0.1:55001 no interface shows) + vm-br0 +
/// vm-brport + node-eth0.
#[test]
fn cli_flows_on_the_seed_samples_one_path_per_connection() {
    let run = |flows: &str| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_flowtrail"));
        for p in SEED_SAMPLES {
            c.arg("-r").arg(sample(&format!("{p}.pcap")));
        }
        c.arg("--conntrack").arg(format!("vm={}", sample("vm-conntrack.txt"))).arg(flows);
        let out = c.output().expect("flowtrail");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let json = run("--flows=json");
    let paths: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let seed = client_log("seedpath-client.jsonl");
    assert_eq!(seed.len(), 5);
    let obs = |leg: &serde_json::Value| -> Vec<(String, String, String)> {
        leg["observations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                let s = |k: &str| o[k].as_str().unwrap_or_default().to_string();
                (s("point"), s("src"), s("dst"))
            })
            .collect()
    };
    for c in &seed {
        let local = c["local"].as_str().unwrap();
        let holding: Vec<&serde_json::Value> = paths
            .iter()
            .filter(|p| p["legs"].as_array().unwrap().iter().any(|l| obs(l).iter().any(|o| o.1 == local)))
            .collect();
        assert_eq!(holding.len(), 1, "{local} is in {} paths:\n{json}", holding.len());
        let p = holding[0];
        let legs = p["legs"].as_array().unwrap();
        assert_eq!(legs.len(), 3, "{local}: {p}");
        let (l1, l2, l3) = (obs(&legs[0]), obs(&legs[1]), obs(&legs[2]));
        assert_eq!(l1, vec![("host-lo".into(), local.into(), "127.0.0.1:49673".into())], "{p}");
        assert_eq!(l2.iter().map(|o| o.0.as_str()).collect::<Vec<_>>(), ["host-veth", "vm-veth"], "{p}");
        assert!(l2.iter().all(|o| o.2 == "192.168.65.2:49700" && o.1 == l2[0].1), "{p}");
        assert_eq!(
            l3.iter().map(|o| o.0.as_str()).collect::<Vec<_>>(),
            ["vm/conntrack", "vm-br0", "vm-brport", "node-eth0"],
            "{p}"
        );
        assert_eq!(l3[0].2, "127.0.0.1:55001", "{p}");
        assert!(l3[1..].iter().all(|o| o.2 == "192.168.49.2:8443" && o.1 == l3[1].1), "{p}");
        assert_eq!(legs[1]["join"]["kind"], "same-tuple", "{p}");
        assert_eq!(legs[2]["join"]["kind"], "nat", "{p}");
        assert_eq!(p["via"].as_array().map_or(0, |v| v.len()), 2, "{p}");
        assert!(p["ambiguous"].as_array().is_none_or(|a| a.is_empty()), "{p}");
    }
    // The text tree: one `path` line with `3 legs` per seed connection, holding both ends.
    let text = run("--flows");
    for c in &seed {
        let local = c["local"].as_str().unwrap();
        let blocks: Vec<&str> = text.split("\npath ").filter(|b| b.contains(&format!("{local} -> "))).collect();
        assert_eq!(blocks.len(), 1, "{local}:\n{text}");
        let b = blocks[0];
        assert!(b.lines().next().unwrap().contains(" 3 legs "), "{b}");
        assert!(b.contains("host-lo ") && b.contains("node-eth0 ") && b.contains("vm/conntrack "), "{b}");
    }
}
