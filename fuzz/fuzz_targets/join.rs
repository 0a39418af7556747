//! Fuzz the leg/path joiner (`flowtrail::join`) with arbitrary input: observations at several
//! capture points built through the flow table's hooks (`on_tcp`, `on_udp`, `on_link`,
//! `on_stream_data`, `on_stream_gap`, `set_owner`) from a small universe of addresses, ports,
//! ISNs and times (so that ISNs, TSvals, tuples, payload prefixes and datagram digests
//! collide and the candidate, scoring and matching code runs), then optionally corrupted
//! field by field (arbitrary first/last times, bases, SYNs, segment and datagram records,
//! digests: states the hooks never produce); conntrack entries parsed from lines built from
//! the same universe mixed with garbage lines, in hostile namespaces or scopes; socket owners
//! with hostile process names; hostile point labels; the default or a tiny `JoinConfig`.
//!
//! Asserts: no panic; memory during `join` bounded by a linear function of the input (a
//! counting allocator); every non-empty observation in exactly one leg, nothing else named,
//! every leg in exactly one path (legs and vias consistent, path ids 1.. in order of first
//! packet); joined again holding back the paths near the end (`Joiner::join_each`), every
//! non-empty observation written or held exactly once; the text tree and each JSON line are terminal-safe (nothing `escape::text`
//! would change, no control character but the newline ending a line) and each JSON line
//! parses.
#![no_main]

use arbitrary::Arbitrary;
use flowtrail::capture::Timestamp;
use flowtrail::conntrack::text;
use flowtrail::decode::{Ip, Tcp, Udp};
use flowtrail::join::features::{DatagramRecord, Rel, SegmentRecord, Stamped, Syn};
use flowtrail::join::{JoinConfig, Joiner, ObservationFeatures, ObservationId, Owner, Proto, Side};
use flowtrail::netns::Netns;
use flowtrail::reassembly::Direction;
use libfuzzer_sys::fuzz_target;
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts live heap bytes and their peak (reset before `join`).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            if new >= l.size() {
                let now = LIVE.fetch_add(new - l.size(), Ordering::Relaxed) + (new - l.size());
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(l.size() - new, Ordering::Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[derive(Arbitrary, Debug)]
struct Input {
    tiny_config: bool,
    /// Joins again holding back the paths near the end ([`Joiner::join_each`]), from the
    /// last packet of this observation (by index) on, or from the start of time.
    hold: Option<u8>,
    points: Vec<PointSpec>,
    observations: Vec<ObsSpec>,
    conntrack: Vec<CtSpec>,
    owners: Vec<SocketOwner>,
}

#[derive(Arbitrary, Debug)]
struct PointSpec {
    index: u8,
    label: String,
    netns: Option<NsSpec>,
}

#[derive(Arbitrary, Debug, Clone)]
enum NsSpec {
    Current,
    Named(String),
    Pid(u32),
}

impl NsSpec {
    fn netns(&self) -> Netns {
        match self {
            NsSpec::Current => Netns::Current,
            NsSpec::Named(n) => Netns::Named(n.clone()),
            NsSpec::Pid(p) => Netns::Pid(*p),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct ObsSpec {
    /// Index into the point universe, or an arbitrary point index.
    point: PointIx,
    udp: bool,
    client: u8,
    server: u8,
    /// Base time: one of a few (so windows overlap), or anything.
    start: Time,
    events: Vec<Event>,
    owners: Vec<(bool, u32, String)>,
    corrupt: Vec<Corrupt>,
}

#[derive(Arbitrary, Debug)]
enum PointIx {
    Small(u8),
    Any(u32),
}

#[derive(Arbitrary, Debug)]
enum Time {
    Near(u8),
    Any(i64),
}

impl Time {
    fn ns(&self) -> i64 {
        match self {
            Time::Near(k) => 1_800_000_000_000_000_000 + i64::from(*k % 8) * 700_000_000,
            Time::Any(t) => *t,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Event {
    Tcp {
        c2s: bool,
        /// Microseconds after the previous event (saturating).
        dt_us: u16,
        isn: u8,
        seq_delta: i16,
        ack_isn: u8,
        ack_delta: i16,
        flags: u8,
        ts: Option<(u8, u8)>,
        ip_id: Option<u8>,
        ttl: u8,
        payload: Vec<u8>,
        /// Wire length beyond what was captured.
        extra_len: u16,
        stream: Option<u16>,
    },
    Udp {
        c2s: bool,
        dt_us: u16,
        ip_id: Option<u8>,
        payload: Vec<u8>,
        extra_len: u16,
    },
    Link {
        c2s: bool,
        linktype: u8,
        frame: Vec<u8>,
    },
    StreamData {
        c2s: bool,
        offset: u64,
        bytes: Vec<u8>,
    },
    StreamGap {
        c2s: bool,
        offset: u64,
    },
}

/// Field-level states the hooks do not produce.
#[derive(Arbitrary, Debug)]
enum Corrupt {
    Times { first: i64, last: i64 },
    Base { c2s: bool, base: i64 },
    Syn { c2s: bool, isn: u32, ack: Option<u32>, at: i64, tsval: Option<u32> },
    Segment { c2s: bool, seq: u32, len: u32, at: i32, flags: u8 },
    Datagram { c2s: bool, hash: u64, len: u32, at: i32 },
    Tsval { c2s: bool, value: u32, at: i32 },
    IpId { c2s: bool, value: u16, at: i32 },
    SeqRange { c2s: bool, lo: Option<u32>, hi: Option<u32> },
    Counts { c2s: bool, packets: u64, bytes: u64 },
    DataAt { c2s: bool, at: Option<i64> },
    Endpoints { client: u8, server: u8 },
    End { c2s: bool, at: Option<i32> },
}

#[derive(Arbitrary, Debug)]
struct CtSpec {
    udp: bool,
    orig: (u8, u8),
    reply: (u8, u8),
    id: Option<u32>,
    start_s: Option<u8>,
    garbage: Option<String>,
    scope: Option<String>,
    netns: Option<NsSpec>,
}

#[derive(Arbitrary, Debug)]
struct SocketOwner {
    netns: Option<NsSpec>,
    udp: bool,
    local: u8,
    remote: u8,
    pid: u32,
    comm: String,
}

/// A small address universe: IPv4 and IPv6 (and a v4-mapped one), few ports.
fn addr(i: u8) -> SocketAddr {
    let ip: IpAddr = match i % 7 {
        0..=2 => IpAddr::from([10, 0, 0, i % 3]),
        3 => IpAddr::from([127, 0, 0, 1]),
        4 => "fd00::1".parse().unwrap(),
        5 => "fd00::2".parse().unwrap(),
        _ => "::ffff:10.0.0.1".parse().unwrap(),
    };
    SocketAddr::new(ip, 1000 + u16::from((i / 7) % 3))
}

fn isn(k: u8) -> u32 {
    match k % 4 {
        0 => 0,
        1 => 0x7fff_fff0,
        2 => 0xffff_fff0,
        _ => u32::from(k).wrapping_mul(0x9e37_79b9),
    }
}

fn dir(c2s: bool) -> Direction {
    if c2s { Direction::ClientToServer } else { Direction::ServerToClient }
}

fn ts(ns: i64) -> Timestamp {
    Timestamp { sec: ns.div_euclid(1_000_000_000), nsec: ns.rem_euclid(1_000_000_000) as u64 }
}

fn build(o: &ObsSpec) -> ObservationFeatures {
    let point = match o.point {
        PointIx::Small(p) => u32::from(p % 4),
        PointIx::Any(p) => p,
    };
    let proto = if o.udp { Proto::Udp } else { Proto::Tcp };
    let mut f = ObservationFeatures::new(point, proto, addr(o.client), addr(o.server));
    let mut now = o.start.ns();
    for e in o.events.iter().take(64) {
        match e {
            Event::Tcp {
                c2s,
                dt_us,
                isn: k,
                seq_delta,
                ack_isn,
                ack_delta,
                flags,
                ts: t,
                ip_id,
                ttl,
                payload,
                extra_len,
                stream,
            } => {
                now = now.saturating_add(i64::from(*dt_us) * 1000);
                let (src, dst) = if *c2s { (f.client, f.server) } else { (f.server, f.client) };
                let ip = Ip { src: src.ip(), dst: dst.ip(), ttl: *ttl, ip_id: ip_id.map(u16::from), fragmented: false };
                let seq = isn(*k).wrapping_add(*seq_delta as i32 as u32);
                let tcp = Tcp {
                    sport: src.port(),
                    dport: dst.port(),
                    seq,
                    ack: isn(*ack_isn).wrapping_add(*ack_delta as i32 as u32),
                    flags: u16::from(*flags),
                    ts: t.map(|(a, b)| (u32::from(a) * 1000, u32::from(b) * 1000)),
                    payload,
                    payload_len: (payload.len() as u32).saturating_add(u32::from(*extra_len)),
                    ..Tcp::default()
                };
                f.on_tcp(dir(*c2s), ts(now), &ip, &tcp);
                if let Some(off) = stream {
                    f.on_stream_data(dir(*c2s), u64::from(*off), payload);
                }
            }
            Event::Udp { c2s, dt_us, ip_id, payload, extra_len } => {
                now = now.saturating_add(i64::from(*dt_us) * 1000);
                let (src, dst) = if *c2s { (f.client, f.server) } else { (f.server, f.client) };
                let ip = Ip { src: src.ip(), dst: dst.ip(), ttl: 64, ip_id: ip_id.map(u16::from), fragmented: false };
                let udp = Udp {
                    sport: src.port(),
                    dport: dst.port(),
                    payload,
                    payload_len: (payload.len() as u32).saturating_add(u32::from(*extra_len)),
                };
                f.on_udp(dir(*c2s), ts(now), &ip, &udp);
            }
            Event::Link { c2s, linktype, frame } => f.on_link(dir(*c2s), u32::from(*linktype), frame),
            Event::StreamData { c2s, offset, bytes } => f.on_stream_data(dir(*c2s), *offset, bytes),
            Event::StreamGap { c2s, offset } => f.on_stream_gap(dir(*c2s), *offset),
        }
    }
    for (client, pid, comm) in o.owners.iter().take(2) {
        f.set_owner(if *client { Side::Client } else { Side::Server }, Owner { pid: *pid, comm: comm.clone() });
    }
    for c in o.corrupt.iter().take(8) {
        let d = |c2s: &bool| usize::from(!*c2s);
        match c {
            Corrupt::Times { first, last } => {
                f.first = *first;
                f.last = *last;
            }
            Corrupt::Base { c2s, base } => f.dirs[d(c2s)].base = *base,
            Corrupt::Syn { c2s, isn, ack, at, tsval } => {
                f.dirs[d(c2s)].syn = Some(Syn { isn: *isn, ack: *ack, at: *at, tsval: *tsval })
            }
            Corrupt::Segment { c2s, seq, len, at, flags } => {
                f.dirs[d(c2s)].fuzz_push_segment(SegmentRecord { seq: *seq, len: *len, at: Rel(*at), flags: *flags });
            }
            Corrupt::Datagram { c2s, hash, len, at } => {
                f.dirs[d(c2s)].fuzz_push_datagram(DatagramRecord { hash: *hash, len: *len, at: Rel(*at) });
            }
            Corrupt::Tsval { c2s, value, at } => {
                f.dirs[d(c2s)].tsvals.push(Stamped { value: *value, at: Rel(*at) });
            }
            Corrupt::IpId { c2s, value, at } => {
                f.dirs[d(c2s)].ip_ids.push(Stamped { value: *value, at: Rel(*at) });
            }
            Corrupt::SeqRange { c2s, lo, hi } => {
                f.dirs[d(c2s)].seq_lo = *lo;
                f.dirs[d(c2s)].seq_hi = *hi;
            }
            Corrupt::Counts { c2s, packets, bytes } => {
                f.dirs[d(c2s)].packets = *packets;
                f.dirs[d(c2s)].bytes = *bytes;
            }
            Corrupt::DataAt { c2s, at } => f.dirs[d(c2s)].fuzz_set_data_at(*at),
            Corrupt::End { c2s, at } => f.dirs[d(c2s)].fuzz_set_end(at.map(Rel)),
            Corrupt::Endpoints { client, server } => {
                f.client = addr(*client);
                f.server = addr(*server);
            }
        }
    }
    f
}

fn conntrack_line(c: &CtSpec) -> String {
    if let Some(g) = &c.garbage {
        return g.clone();
    }
    let (o1, o2) = (addr(c.orig.0), addr(c.orig.1));
    let (r1, r2) = (addr(c.reply.0), addr(c.reply.1));
    let ip = |a: SocketAddr| a.ip().to_canonical();
    let mut l = String::new();
    if let Some(s) = c.start_s {
        l.push_str(&format!("[{}.000000] [NEW] ", 1_800_000_000 + u64::from(s)));
    }
    l.push_str(if c.udp { "udp      17 30 " } else { "tcp      6 431999 ESTABLISHED " });
    l.push_str(&format!(
        "src={} dst={} sport={} dport={} src={} dst={} sport={} dport={} [ASSURED] mark=0 use=1",
        ip(o1),
        ip(o2),
        o1.port(),
        o2.port(),
        ip(r1),
        ip(r2),
        r1.port(),
        r2.port()
    ));
    if let Some(id) = c.id {
        l.push_str(&format!(" id={id}"));
    }
    l
}

/// Nothing `escape::text` would change, and no control character at all.
fn terminal_safe(what: &str, s: &str) {
    assert!(
        matches!(flowtrail::escape::text(s), std::borrow::Cow::Borrowed(_)) && !s.chars().any(char::is_control),
        "{what} not terminal-safe: {s:?}"
    );
}

fuzz_target!(|input: Input| {
    let observations: Vec<ObservationFeatures> = input.observations.iter().take(48).map(build).collect();
    let lines: Vec<String> = input.conntrack.iter().take(24).map(conntrack_line).collect();
    let mut entries = Vec::new();
    for (c, l) in input.conntrack.iter().take(24).zip(&lines) {
        // Each line on its own, so that its scope and namespace go with it.
        let (es, _errors) = text::parse_entries(l);
        for mut e in es {
            if let Some(ns) = &c.netns {
                e.netns = ns.netns();
            }
            entries.push((e, c.scope.clone()));
        }
    }
    let config = if input.tiny_config {
        JoinConfig {
            max_candidates: 2,
            max_leg_observations: 2,
            leg_threshold: 0,
            path_threshold: 0,
            margin: 0,
            ..JoinConfig::default()
        }
    } else {
        JoinConfig::default()
    };
    let mut j = Joiner::new(config);
    for p in input.points.iter().take(8) {
        j.set_point(u32::from(p.index % 6), p.label.clone(), p.netns.as_ref().map(NsSpec::netns));
    }
    for (i, f) in observations.iter().enumerate() {
        j.add_observation(ObservationId(i as u64), f);
    }
    for (e, scope) in &entries {
        match scope {
            Some(s) => j.add_conntrack_in(e, s),
            None => j.add_conntrack(e),
        }
    }
    for o in input.owners.iter().take(16) {
        let proto = if o.udp { Proto::Udp } else { Proto::Tcp };
        let owner = Owner { pid: o.pid, comm: o.comm.clone() };
        j.add_socket_owner(o.netns.as_ref().map(NsSpec::netns), proto, addr(o.local), addr(o.remote), owner);
    }

    // Memory: linear in the input (features are fixed-size; strings are the labels').
    let strings: usize = input.points.iter().take(8).map(|p| p.label.len()).sum::<usize>()
        + input.conntrack.iter().take(24).map(|c| c.scope.as_ref().map_or(0, String::len) + 64).sum::<usize>()
        + input.owners.iter().take(16).map(|o| o.comm.len()).sum::<usize>()
        + input.observations.iter().take(48).flat_map(|o| o.owners.iter().take(2)).map(|o| o.2.len()).sum::<usize>();
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let model = j.join();
    let used = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    let items = observations.len() + entries.len() + 1;
    let bound = (1 << 20) + items * items * 512 + items * (64 << 10) + strings * 64;
    assert!(used <= bound, "join used {used} bytes for {items} items (bound {bound})");

    // Every non-empty observation in exactly one leg; no other id.
    let mut seen = vec![0u32; observations.len()];
    let mut prev_first = i64::MIN;
    for (k, p) in model.paths.iter().enumerate() {
        assert_eq!(p.id, k as u64 + 1, "path ids from 1 in order");
        assert!(p.first_ns >= prev_first, "paths ordered by first packet");
        prev_first = p.first_ns;
        assert!(!p.legs.is_empty(), "path without legs");
        assert_eq!(p.via.len() + 1, p.legs.len(), "one via between consecutive legs");
        for v in &p.via {
            assert!(v.between[0] < p.legs.len() && v.between[1] < p.legs.len(), "via out of range");
        }
        for l in &p.legs {
            assert!(!l.observations.is_empty(), "leg without observations");
            assert_eq!(l.hops.len() + 1, l.observations.len(), "one hop between observations");
            for o in &l.observations {
                for &id in &o.ids {
                    let n = seen.get_mut(id as usize).unwrap_or_else(|| panic!("unknown observation id {id}"));
                    *n += 1;
                }
            }
        }
    }
    for (i, f) in observations.iter().enumerate() {
        assert_eq!(seen[i], u32::from(!f.is_empty()), "observation {i} in {} legs", seen[i]);
    }

    // Holding back: every non-empty observation written or held, exactly once, the held
    // ones not in the stats; ids numbered as asked, in order.
    if let Some(h) = input.hold {
        let from = observations.get(h as usize).map_or(i64::MIN, |f| f.last);
        let mut written = vec![0u32; observations.len()];
        let mut paths = 0u64;
        let (stats, held) = j.join_each(
            Some(from),
            |firsts| (1..=firsts.len() as u64).collect(),
            |p| {
                paths += 1;
                assert_eq!(p.id, paths, "held-back join: path ids from 1 in order");
                for o in p.legs.iter().flat_map(|l| &l.observations) {
                    for &id in &o.ids {
                        written[id as usize] += 1;
                    }
                }
            },
        );
        for id in &held {
            written[id.0 as usize] += 1;
        }
        for (i, f) in observations.iter().enumerate() {
            assert_eq!(written[i], u32::from(!f.is_empty()), "held-back join: observation {i} {} times", written[i]);
        }
        assert_eq!(stats.paths, paths);
        assert_eq!(stats.observations + held.len() as u64, model.stats.observations);
    }

    // Output: terminal-safe text, parseable terminal-safe JSON lines.
    let text = model.to_string();
    for line in text.lines() {
        terminal_safe("text line", line);
    }
    assert!(text.is_empty() || text.ends_with('\n'));
    let mut json = Vec::new();
    model.write_json_lines(&mut json).expect("write to a Vec");
    let json = String::from_utf8(json).expect("JSON is UTF-8");
    assert_eq!(json.lines().count(), model.paths.len(), "one JSON line per path");
    for line in json.lines() {
        terminal_safe("JSON line", line);
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON line parses");
        assert!(v["legs"].is_array());
    }
});
