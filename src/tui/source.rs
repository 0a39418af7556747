//! The TUI's model source: the real pipeline (flow table + joiner) over offline files or
//! live capture points, plus a store of the frames themselves for the packet list, the
//! stream, `-X` dumps and `w`.
//!
//! ```text
//! data thread:   frames (Merger over -r files or LiveSource) -> filter
//!                  -> FrameTable::ingest: frame store (tuple entries x points, kept frames)
//!                                         + FlowTable (features for the joiner)
//!                  -> publishes a Snapshot every PUBLISH_PERIOD (counters, progress, rows of
//!                     the latest join)
//! joiner thread: every JOIN_PERIOD, when something changed: copies the join input under the
//!                lock (FrameTable::join_input), joins outside it (joined.rs), swaps the
//!                result in. The data thread never waits for a join.
//! UI thread:     reads snapshots; lazy per-path queries take the lock briefly.
//! ```
//!
//! * A *tuple entry* is one TCP/UDP/ICMP 5-tuple (client and server decided like the flow
//!   table); each capture point that saw it is one of its observations, holding the indices
//!   of its kept frames. The joined paths ([`super::joined`]) refer to them through the flow
//!   table's ids (`FlowInfo`, told at creation). Tuples without joiner features (ICMP, other
//!   protocols, or beyond the features cap) are shown as paths of one leg.
//! * State and history shown are the frame store's approximation of Zeek's (`S0 S1 SF S2 S3
//!   REJ RSTO RSTR RSTOS0 OTH`, history letters `ShADFR` once per direction).
//! * The stream is the captured payload in sequence order per direction at one observation,
//!   with gaps where sequence numbers jump or the capture cut a payload, and overlapping
//!   retransmissions dropped.
//! * Memory ([`TuiLimits`], from `--max-memory` like the rest, `crate::limits`): the flow
//!   table gets the flow share (with features) and half the reassembly share; kept frame bytes
//!   the other half; ended observations' joiner features the records share. Past a cap
//!   packets are counted, not kept (`caps` in the status bar).

use super::model::*;
use super::joined::{FeaturedObs, JoinInput, Joined, LooseEntry, Shown};
use crate::capture::{Frame, FrameSource, Merger, OfflineReader, Points, Timestamp};
use crate::flow::{FlowConfig, FlowInfo, FlowObserver, FlowRecord, FlowTable as Flows};
use crate::join::ObservationFeatures;
use crate::decode::{self, tcp_flags, Transport};
use crate::filter::Filter;
use crate::print::{Options, Printer, TsFormat};
use crate::savefile::{Format, SaveWriter};
use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the data thread publishes a snapshot (when something changed).
pub const PUBLISH_PERIOD: Duration = Duration::from_millis(200);
/// How often the joiner thread re-joins (when something changed).
pub const JOIN_PERIOD: Duration = Duration::from_millis(1000);

/// The TUI's memory caps, derived from [`crate::limits::Limits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TuiLimits {
    /// The flow table's configuration (flow cap with features, reassembly).
    pub max_flows: usize,
    pub reassembly_memory: usize,
    pub aux_memory: usize,
    /// Bytes of frames kept for the packet list, streams and `w`.
    pub kept_bytes: usize,
    /// Ended observations whose joiner features are kept.
    pub ended_features: usize,
}

impl TuiLimits {
    pub fn new(l: &crate::limits::Limits) -> TuiLimits {
        let joined = crate::limits::Limits::for_flows(l.max_memory, true);
        TuiLimits {
            max_flows: l.max_flows.min(joined.max_flows),
            reassembly_memory: l.reassembly_memory / 2,
            aux_memory: l.aux_memory,
            kept_bytes: l.reassembly_memory / 2,
            ended_features: (l.held_records / Flows::FEATURES_BYTES).max(1),
        }
    }
}

impl Default for TuiLimits {
    fn default() -> Self {
        TuiLimits::new(&crate::limits::Limits::default())
    }
}

/// What the flow table tells the frame store.
#[derive(Default)]
struct FlowTap {
    created: Vec<FlowInfo>,
    ended: Vec<FlowRecord>,
}

impl FlowObserver for FlowTap {
    fn wants_payload(&mut self, flow: &FlowInfo) -> bool {
        self.created.push(flow.clone());
        false
    }
    fn flow_ended(&mut self, record: FlowRecord) {
        self.ended.push(record);
    }
}
/// Frames read before the table's lock is taken to ingest them.
const BATCH: usize = 1024;
/// Most packets one packet list holds.
const MAX_PACKET_LINES: usize = 100_000;
/// Most payload bytes one stream view holds.
const MAX_STREAM_BYTES: usize = 8 << 20;

/// Canonical key of a tuple: protocol and the two endpoints in sorted order.
type TupleKey = (Proto, Endpoint, Endpoint);

/// TCP flags seen per direction, for the approximate state.
#[derive(Clone, Copy, Debug, Default)]
struct TcpSeen {
    syn: [bool; 2],
    synack: [bool; 2],
    fin: [bool; 2],
    rst: [bool; 2],
    data: [bool; 2],
}

/// One observation: a path's tuple at one point.
#[derive(Debug)]
struct Observation {
    point: u32,
    packets: [u64; 2],
    bytes: [u64; 2],
    first: Timestamp,
    last: Timestamp,
    seen: TcpSeen,
    history: String,
    state: Arc<str>,
    history_shared: Arc<str>,
    /// Indices into `FrameTable::frames` (kept frames only), in arrival order.
    frames: Vec<u32>,
}

/// A path (one tuple, one leg) and its observations.
#[derive(Debug)]
struct PathEntry {
    row: PathRow,
    observations: Vec<Observation>,
}

/// A kept frame and what it belongs to.
struct Kept {
    frame: Frame,
    side: Side,
}

/// Everything the data thread knows. Lives behind [`FrameModel`]'s lock.
pub struct FrameTable {
    points: Points,
    point_packets: Vec<u64>,
    paths: Vec<PathEntry>,
    by_key: HashMap<TupleKey, u32>,
    frames: Vec<Kept>,
    kept_bytes: usize,
    caps: CapCounters,
    clock: Option<Timestamp>,
    frames_seen: u64,
    print: Options,
    dirty: bool,
    limits: TuiLimits,
    flows: Flows,
    tap: FlowTap,
    /// Flow id -> (tuple entry, observation) of every TCP/UDP flow with features.
    flow_at: HashMap<u64, (u32, u32)>,
    /// Ended flows' joiner features (at most `limits.ended_features`).
    ended: Vec<(u64, Arc<ObservationFeatures>)>,
    /// Something changed since the last join input was taken.
    join_dirty: bool,
    /// The latest join.
    joined: Arc<Joined>,
    conntrack: Arc<Vec<(crate::conntrack::CtEntry, Option<Arc<str>>)>>,
    /// Namespaces of live points (joiner evidence), by point index.
    point_netns: Vec<Option<crate::netns::Netns>>,
    /// Kernel drops per point (live).
    point_drops: Vec<Option<u64>>,
    live: bool,
    /// The final join's input was taken: later joins of older input are dropped.
    input_done: bool,
}

impl FrameTable {
    /// Most tuple entries tracked.
    pub const MAX_PATHS: usize = 1_000_000;

    /// An empty table with the default limits; `print` are the options of the packet
    /// summaries (labels are turned on by the table when there is more than one point).
    pub fn new(print: Options) -> FrameTable {
        FrameTable::with_limits(print, TuiLimits::default())
    }

    /// An empty table with `limits`.
    pub fn with_limits(print: Options, limits: TuiLimits) -> FrameTable {
        let mut config = FlowConfig {
            max_flows: limits.max_flows,
            reassembly_memory: limits.reassembly_memory,
            aux_memory: limits.aux_memory,
            features: true,
            ..FlowConfig::default()
        };
        config.reassembly.max_buffered = config.reassembly.max_buffered.min((limits.reassembly_memory / 32).max(4096));
        FrameTable {
            limits,
            flows: Flows::new(config),
            tap: FlowTap::default(),
            flow_at: HashMap::new(),
            ended: Vec::new(),
            join_dirty: true,
            joined: Arc::new(Joined::default()),
            conntrack: Arc::new(Vec::new()),
            point_netns: Vec::new(),
            point_drops: Vec::new(),
            live: false,
            input_done: false,
            points: Points::default(),
            point_packets: Vec::new(),
            paths: Vec::new(),
            by_key: HashMap::new(),
            frames: Vec::new(),
            kept_bytes: 0,
            caps: CapCounters::default(),
            clock: None,
            frames_seen: 0,
            print,
            dirty: true,
        }
    }

    /// Takes in the current point registry (points only ever get added).
    pub fn set_points(&mut self, points: &Points) {
        if points.len() != self.points.len() {
            self.points = points.clone();
            self.point_packets.resize(points.len(), 0);
            self.dirty = true;
        }
    }

    /// Adds one frame (its point must be known, see [`FrameTable::set_points`]).
    pub fn ingest(&mut self, frame: Frame) {
        self.dirty = true;
        self.join_dirty = true;
        self.frames_seen += 1;
        if let Some(n) = self.point_packets.get_mut(frame.point) {
            *n += 1;
        }
        if self.clock.is_none_or(|c| frame.ts > c) {
            self.clock = Some(frame.ts);
        }
        let d = decode::decode(frame.linktype, &frame.data);
        let Some(ip) = d.ip else { return };
        let (proto, sport, dport, payload_len, flags) = match d.transport {
            Transport::Tcp(t) => (Proto::Tcp, t.sport, t.dport, t.payload_len, Some(t.flags)),
            Transport::Udp(u) => (Proto::Udp, u.sport, u.dport, u.payload_len, None),
            Transport::Icmp { .. } => (Proto::Icmp, 0, 0, 0, None),
            Transport::Other { proto } => (Proto::Other(proto), 0, 0, 0, None),
            Transport::None => return,
        };
        let src = Endpoint { ip: ip.src, port: sport };
        let dst = Endpoint { ip: ip.dst, port: dport };
        let key = if src <= dst { (proto, src, dst) } else { (proto, dst, src) };
        let point = frame.point as u32;
        let idx = match self.by_key.get(&key) {
            Some(&i) => i as usize,
            None => {
                if self.paths.len() >= Self::MAX_PATHS {
                    self.caps.paths += 1;
                    return;
                }
                let (client, server) = roles(src, dst, flags);
                let i = self.paths.len();
                self.by_key.insert(key, i as u32);
                self.paths.push(PathEntry {
                    row: PathRow {
                        id: i as u64 + 1,
                        proto,
                        client,
                        server,
                        legs: 1,
                        hops: Arc::from(Vec::new()),
                        packets: [0; 2],
                        bytes: [0; 2],
                        state: Arc::from(""),
                        history: Arc::from(""),
                        first: frame.ts,
                        last: frame.ts,
                        process: None,
                    },
                    observations: Vec::new(),
                });
                i
            }
        };
        let keep = self.kept_bytes + frame.data.len() <= self.limits.kept_bytes && self.frames.len() < u32::MAX as usize;
        let frame_index = self.frames.len() as u32;
        let entry = &mut self.paths[idx];
        let side = if src == entry.row.client && dst == entry.row.server { Side::Client } else { Side::Server };
        let s = side.index();
        let oi = match entry.observations.iter().position(|o| o.point == point) {
            Some(oi) => oi,
            None => {
                entry.observations.push(Observation {
                    point,
                    packets: [0; 2],
                    bytes: [0; 2],
                    first: frame.ts,
                    last: frame.ts,
                    seen: TcpSeen::default(),
                    history: String::new(),
                    state: Arc::from(""),
                    history_shared: Arc::from(""),
                    frames: Vec::new(),
                });
                let hops: Vec<Hop> = entry
                    .observations
                    .iter()
                    .map(|o| Hop { point: o.point, client: entry.row.client, server: entry.row.server })
                    .collect();
                entry.row.hops = Arc::from(hops);
                entry.observations.len() - 1
            }
        };
        let obs = &mut entry.observations[oi];
        obs.packets[s] += 1;
        obs.bytes[s] += u64::from(payload_len);
        obs.first = obs.first.min(frame.ts);
        obs.last = obs.last.max(frame.ts);
        if let Some(f) = flags {
            let history_before = obs.history.len();
            tcp_packet(&mut obs.seen, &mut obs.history, s, f, payload_len);
            let state = tcp_state(&obs.seen);
            if *obs.state != *state {
                obs.state = Arc::from(state);
            }
            if obs.history.len() != history_before {
                obs.history_shared = Arc::from(obs.history.as_str());
            }
        } else {
            let letter = if s == 0 { 'D' } else { 'd' };
            if !obs.history.contains(letter) {
                obs.history.push(letter);
                obs.history_shared = Arc::from(obs.history.as_str());
            }
            let state = match (obs.packets[0] > 0, obs.packets[1] > 0) {
                (true, true) => "SF",
                (true, false) => "S0",
                _ => "SHR",
            };
            if *obs.state != *state {
                obs.state = Arc::from(state);
            }
        }
        if keep {
            obs.frames.push(frame_index);
        }
        // The row shows the first observation (what the client side saw).
        let first = &entry.observations[0];
        entry.row.packets = first.packets;
        entry.row.bytes = first.bytes;
        entry.row.state = first.state.clone();
        entry.row.history = first.history_shared.clone();
        entry.row.first = entry.row.first.min(frame.ts);
        entry.row.last = entry.row.last.max(frame.ts);
        self.flows.frame(&frame, &self.points, &mut self.tap);
        self.after_flows();
        if keep {
            self.kept_bytes += frame.data.len();
            self.frames.push(Kept { frame, side });
        } else {
            self.caps.packet_bytes += 1;
        }
    }

    /// Takes in what the flow table told: new flows are located in the frame store, ended
    /// ones hand over their joiner features (up to the cap).
    fn after_flows(&mut self) {
        for info in self.tap.created.drain(..) {
            let proto = match info.proto {
                crate::flow::Proto::Tcp => Proto::Tcp,
                crate::flow::Proto::Udp => Proto::Udp,
                _ => continue,
            };
            let c = Endpoint { ip: info.client.addr, port: info.client.port };
            let s = Endpoint { ip: info.server.addr, port: info.server.port };
            let key = if c <= s { (proto, c, s) } else { (proto, s, c) };
            let Some(&e) = self.by_key.get(&key) else { continue };
            let Some(o) = self.paths[e as usize].observations.iter().position(|o| o.point == info.point_index) else {
                continue;
            };
            self.flow_at.insert(info.id, (e, o as u32));
        }
        for r in self.tap.ended.drain(..) {
            self.join_dirty = true;
            let Some(f) = r.features else { continue };
            if f.is_empty() {
                continue;
            }
            if self.ended.len() < self.limits.ended_features {
                self.ended.push((r.info.id, Arc::from(f)));
            } else {
                self.caps.unjoined += 1;
                self.flow_at.remove(&r.info.id);
            }
        }
    }

    /// End of input: every live flow ends (its features move to the ended ones).
    pub fn finish_flows(&mut self) {
        self.flows.finish(&mut self.tap);
        self.after_flows();
        self.join_dirty = true;
        self.dirty = true;
    }

    /// A copy of what a join needs (see `joined.rs`); clears the changed mark. `None` when
    /// nothing changed since the last one.
    pub fn join_input(&mut self) -> Option<JoinInput> {
        if !self.join_dirty {
            return None;
        }
        self.join_dirty = false;
        let mut input = JoinInput {
            points: self
                .points
                .points
                .iter()
                .enumerate()
                .map(|(i, p)| (i as u32, Arc::from(p.label.as_str()), self.point_netns.get(i).cloned().flatten()))
                .collect(),
            conntrack: self.conntrack.clone(),
            ..JoinInput::default()
        };
        let mut covered = vec![false; self.paths.len()];
        let featured = |id: u64, f: Arc<ObservationFeatures>, t: &FrameTable, covered: &mut Vec<bool>| {
            let at = t.flow_at.get(&id).copied();
            let (state, history) = match at.and_then(|(e, o)| t.paths.get(e as usize)?.observations.get(o as usize)) {
                Some(o) => (o.state.clone(), o.history_shared.clone()),
                None => (Arc::from(""), Arc::from("")),
            };
            if let Some((e, _)) = at
                && let Some(c) = covered.get_mut(e as usize)
            {
                *c = true;
            }
            FeaturedObs { id, features: f, at, state, history }
        };
        for (id, f) in &self.ended {
            let o = featured(*id, f.clone(), self, &mut covered);
            input.observations.push(o);
        }
        let live: Vec<(u64, Arc<ObservationFeatures>)> =
            self.flows.live_features().filter(|(_, f)| !f.is_empty()).map(|(id, f)| (id, Arc::new(f.clone()))).collect();
        for (id, f) in live {
            let o = featured(id, f, self, &mut covered);
            input.observations.push(o);
        }
        for (e, entry) in self.paths.iter().enumerate() {
            if !covered[e] {
                input.loose.push(LooseEntry { entry: e as u32, row: entry.row.clone() });
            }
        }
        Some(input)
    }

    /// Puts a finished join in place.
    pub fn set_joined(&mut self, j: Joined) {
        self.joined = Arc::new(j);
        self.dirty = true;
    }

    /// Joins now on this thread (tests, end of input).
    pub fn join_now(&mut self) {
        if let Some(input) = self.join_input() {
            self.set_joined(Joined::build(input));
        }
    }

    /// The latest join.
    pub fn joined(&self) -> &Joined {
        &self.joined
    }

    /// The snapshot of the table as it is now (the rows of the latest join).
    pub fn snapshot(&self, generation: u64) -> Snapshot {
        let mut caps = self.caps;
        caps.flows_evicted = self.flows.stats().flows_evicted;
        Snapshot {
            generation,
            clock: self.clock,
            paths: self.joined.rows.clone(),
            points: self
                .points
                .points
                .iter()
                .enumerate()
                .zip(&self.point_packets)
                .map(|((i, p), &n)| PointStatus {
                    label: Arc::from(p.label.as_str()),
                    packets: n,
                    dropped: self.point_drops.get(i).copied().flatten(),
                })
                .collect(),
            caps,
            live: self.live,
            ..Snapshot::default()
        }
    }

    /// The frame-store observations `(entry, observation)` of a path, or of one of its
    /// observations, in path order (each once).
    fn located(&self, id: PathId, at: Option<ObservationRef>) -> Vec<(u32, u32)> {
        let j = &self.joined;
        let Some(i) = j.index(id) else { return Vec::new() };
        let mut out: Vec<(u32, u32)> = Vec::new();
        match &j.shown[i] {
            Shown::Loose { entry } => {
                let Some(e) = self.paths.get(*entry as usize) else { return out };
                match at {
                    Some(r) if r.leg == 0 => {
                        if r.observation < e.observations.len() {
                            out.push((*entry, r.observation as u32));
                        }
                    }
                    Some(_) => {}
                    None => out.extend((0..e.observations.len() as u32).map(|o| (*entry, o))),
                }
            }
            Shown::Joined(p) => {
                for (li, l) in p.legs.iter().enumerate() {
                    for (oi, o) in l.observations.iter().enumerate() {
                        if at.is_some_and(|r| r != ObservationRef { leg: li, observation: oi }) {
                            continue;
                        }
                        for id in o.ids.iter() {
                            if let Some(&x) = j.at.get(id)
                                && !out.contains(&x)
                            {
                                out.push(x);
                            }
                        }
                    }
                }
            }
        }
        out
    }

    fn store(&self, (e, o): (u32, u32)) -> Option<(&PathEntry, &Observation)> {
        let entry = self.paths.get(e as usize)?;
        Some((entry, entry.observations.get(o as usize)?))
    }

    /// Legs and observations of one path.
    pub fn detail(&self, id: PathId) -> Option<PathDetail> {
        let j = &self.joined;
        let i = j.index(id)?;
        let entry = match &j.shown[i] {
            Shown::Joined(p) => return Some(j.detail(id, p)),
            Shown::Loose { entry } => self.paths.get(*entry as usize)?,
        };
        let observations = entry
            .observations
            .iter()
            .map(|o| ObservationDetail {
                point: Arc::from(self.points.get(o.point as usize).map_or("?", |p| p.label.as_str())),
                client: entry.row.client,
                server: entry.row.server,
                packets: o.packets,
                bytes: o.bytes,
                first: o.first,
                last: o.last,
                state: o.state.clone(),
                history: o.history_shared.clone(),
                changes: None,
                latency: None,
                note: None,
            })
            .collect::<Vec<_>>();
        let join = (observations.len() > 1).then(|| JoinInfo {
            kind: "same-tuple".into(),
            evidence: vec![format!("identical tuple at {} points", observations.len())],
        });
        Some(PathDetail {
            id,
            proto: entry.row.proto,
            legs: vec![LegDetail { observations, process: entry.row.process.clone(), join, link: None }],
            notes: Vec::new(),
        })
    }

    /// The conversation at one observation (the path's first captured one by default).
    pub fn stream(&self, id: PathId, at: Option<ObservationRef>) -> StreamView {
        let Some(&loc) = self.located(id, at).first() else { return StreamView::default() };
        let Some((_, obs)) = self.store(loc) else { return StreamView::default() };
        let mut view = StreamView::default();
        let mut dirs = [StreamDir::default(); 2];
        let mut total = 0usize;
        for &fi in &obs.frames {
            let Some(k) = self.frames.get(fi as usize) else { continue };
            let s = k.side.index();
            let d = decode::decode(k.frame.linktype, &k.frame.data);
            let dir = &mut dirs[s];
            let before = view.chunks.len();
            match d.transport {
                Transport::Tcp(t) => dir.tcp(&t, k.side, &mut view.chunks),
                Transport::Udp(u) if u.payload_len > 0 => dir.datagram(u.payload, u.payload_len, k.side, &mut view.chunks),
                _ => {}
            }
            for c in &view.chunks[before..] {
                if let StreamChunk::Data { bytes, .. } = c {
                    total += bytes.len();
                }
            }
            if total > MAX_STREAM_BYTES {
                view.truncated = true;
                break;
            }
        }
        view
    }

    /// Kept frame indices of a path or observation, in time order.
    fn frame_indices(&self, id: PathId, at: Option<ObservationRef>) -> Vec<u32> {
        let mut indices: Vec<u32> =
            self.located(id, at).into_iter().filter_map(|l| self.store(l)).flat_map(|(_, o)| o.frames.iter().copied()).collect();
        // Frames are kept in arrival (merged time) order: index order is time order.
        indices.sort_unstable();
        indices.dedup();
        indices
    }

    /// Packet summaries of a path (every point) or of one observation.
    pub fn packets(&self, id: PathId, at: Option<ObservationRef>) -> PacketList {
        if self.joined.index(id).is_none() {
            return PacketList::default();
        }
        let mut indices = self.frame_indices(id, at);
        let mut list = PacketList { lines: Vec::new(), truncated: self.caps.packet_bytes > 0 };
        if indices.len() > MAX_PACKET_LINES {
            indices.truncate(MAX_PACKET_LINES);
            list.truncated = true;
        }
        let mut opts = self.print.clone();
        opts.labels = self.points.len() > 1;
        opts.hex = 0;
        opts.hex_ascii = 0;
        opts.ascii = 0;
        opts.number = false;
        let mut printer = Printer::new(opts);
        let mut text = String::new();
        for fi in indices {
            let Some(k) = self.frames.get(fi as usize) else { continue };
            let Some(point) = self.points.get(k.frame.point) else { continue };
            text.clear();
            printer.print_frame(&k.frame, point, &mut text);
            let summary = text.lines().next().unwrap_or("").to_string();
            list.lines.push(PacketLine { packet: PacketRef(u64::from(fi)), side: k.side, summary });
        }
        list
    }

    /// `-X` dump lines of one kept frame.
    pub fn packet_dump(&self, packet: PacketRef) -> Option<Vec<String>> {
        let k = self.frames.get(usize::try_from(packet.0).ok()?)?;
        let point = self.points.get(k.frame.point)?;
        let opts = Options { hex_ascii: 1, ts_format: TsFormat::None, numeric: 2, ..Options::default() };
        let mut text = String::new();
        Printer::new(opts).print_frame(&k.frame, point, &mut text);
        Some(text.lines().skip(1).map(|l| l.trim_start_matches('\t').to_string()).collect())
    }

    /// Writes every kept frame of a path to a pcapng file (one interface per point it was
    /// seen at).
    pub fn save(&self, id: PathId, file: &std::path::Path) -> Result<Saved, String> {
        if self.joined.index(id).is_none() {
            return Err(format!("path {id} is gone"));
        }
        let indices = self.frame_indices(id, None);
        let mut used: Vec<u32> =
            self.located(id, None).into_iter().filter_map(|l| self.store(l)).map(|(_, o)| o.point).collect();
        used.sort_unstable();
        used.dedup();
        let mut points = Points::default();
        let mut remap = HashMap::new();
        for p in &used {
            if let Some(pt) = self.points.get(*p as usize) {
                remap.insert(*p as usize, points.add(pt.clone()));
            }
        }
        let name = file.to_string_lossy().into_owned();
        let mut w = SaveWriter::create(&name, Format::Pcapng, &points, None).map_err(|e| e.to_string())?;
        let mut n = 0u64;
        for fi in indices {
            let Some(k) = self.frames.get(fi as usize) else { continue };
            let Some(&p) = remap.get(&k.frame.point) else { continue };
            let mut f = k.frame.clone();
            f.point = p;
            w.write(&f, &points).map_err(|e| e.to_string())?;
            n += 1;
        }
        w.flush().map_err(|e| e.to_string())?;
        Ok(Saved { path: name, packets: n })
    }
}

/// Client and server of a new tuple, from its first packet.
fn roles(src: Endpoint, dst: Endpoint, flags: Option<u16>) -> (Endpoint, Endpoint) {
    if let Some(f) = flags {
        let syn = f & tcp_flags::SYN != 0;
        let ack = f & tcp_flags::ACK != 0;
        if syn && !ack {
            return (src, dst);
        }
        if syn && ack {
            return (dst, src);
        }
    }
    let rank = |p: u16| match p {
        0 => 3,
        1..=1023 => 0,
        1024..=32767 => 1,
        _ => 2,
    };
    if rank(src.port) < rank(dst.port) { (dst, src) } else { (src, dst) }
}

/// Records one TCP segment's flags: history letters once per direction (`S h A D F R`,
/// upper case from the client), and the flags seen.
fn tcp_packet(seen: &mut TcpSeen, history: &mut String, s: usize, flags: u16, payload_len: u32) {
    let syn = flags & tcp_flags::SYN != 0;
    let ack = flags & tcp_flags::ACK != 0;
    let letter = |history: &mut String, c: char, seen_before: bool| {
        let c = if s == 0 { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() };
        if !seen_before && history.len() < 32 {
            history.push(c);
        }
    };
    if syn && ack {
        letter(history, 'h', seen.synack[s]);
        seen.synack[s] = true;
    } else if syn {
        letter(history, 's', seen.syn[s]);
        seen.syn[s] = true;
    }
    if payload_len > 0 {
        letter(history, 'd', seen.data[s]);
        seen.data[s] = true;
    } else if ack && !syn && flags & (tcp_flags::FIN | tcp_flags::RST) == 0 {
        let a = if s == 0 { 'A' } else { 'a' };
        let had = history.contains(a);
        letter(history, 'a', had);
    }
    if flags & tcp_flags::FIN != 0 {
        letter(history, 'f', seen.fin[s]);
        seen.fin[s] = true;
    }
    if flags & tcp_flags::RST != 0 {
        letter(history, 'r', seen.rst[s]);
        seen.rst[s] = true;
    }
}

/// An approximation of Zeek's `conn_state` from the flags seen.
fn tcp_state(seen: &TcpSeen) -> &'static str {
    let established = seen.synack[1] || (seen.data[0] && seen.data[1]);
    if seen.rst[0] {
        if established { "RSTO" } else { "RSTOS0" }
    } else if seen.rst[1] {
        if seen.synack[1] { "RSTR" } else { "REJ" }
    } else if seen.fin[0] && seen.fin[1] {
        "SF"
    } else if seen.fin[0] {
        "S2"
    } else if seen.fin[1] {
        "S3"
    } else if seen.syn[0] && !seen.synack[1] {
        "S0"
    } else if established {
        "S1"
    } else {
        "OTH"
    }
}

/// In-order stream position of one direction.
#[derive(Clone, Copy, Debug, Default)]
struct StreamDir {
    /// Next expected sequence number (None before the first SYN or data).
    next: Option<u32>,
    /// Stream offset of `next`.
    offset: u64,
}

impl StreamDir {
    fn tcp(&mut self, t: &decode::Tcp<'_>, side: Side, out: &mut Vec<StreamChunk>) {
        if t.has(tcp_flags::SYN) {
            if self.next.is_none() {
                self.next = Some(t.seq.wrapping_add(1));
            }
            if t.payload_len == 0 {
                return;
            }
        }
        if t.payload_len == 0 {
            // A FIN past the expected sequence number: the bytes before it were not captured.
            if t.has(tcp_flags::FIN)
                && let Some(next) = self.next
            {
                let delta = t.seq.wrapping_sub(next) as i32;
                if delta > 0 {
                    out.push(StreamChunk::Gap { side, offset: self.offset, len: delta as u64 });
                    self.offset += delta as u64;
                    self.next = Some(t.seq);
                }
            }
            return;
        }
        let seq = if t.has(tcp_flags::SYN) { t.seq.wrapping_add(1) } else { t.seq };
        let next = *self.next.get_or_insert(seq);
        let delta = seq.wrapping_sub(next) as i32;
        let mut skip = 0u32;
        if delta > 0 {
            out.push(StreamChunk::Gap { side, offset: self.offset, len: delta as u64 });
            self.offset += delta as u64;
        } else if delta < 0 {
            skip = delta.unsigned_abs();
            if skip >= t.payload_len {
                return; // a retransmission of what we have
            }
        }
        let captured = t.payload.len().min(t.payload_len as usize);
        let from = (skip as usize).min(captured);
        if from < captured {
            out.push(StreamChunk::Data { side, offset: self.offset, bytes: t.payload[from..captured].to_vec() });
        }
        let missing = u64::from(t.payload_len - skip) - (captured - from) as u64;
        if missing > 0 {
            out.push(StreamChunk::Gap { side, offset: self.offset + (captured - from) as u64, len: missing });
        }
        let advance = t.payload_len - skip;
        self.offset += u64::from(advance);
        self.next = Some(seq.wrapping_add(t.payload_len));
    }

    fn datagram(&mut self, payload: &[u8], len: u32, side: Side, out: &mut Vec<StreamChunk>) {
        let captured = payload.len().min(len as usize);
        out.push(StreamChunk::Data { side, offset: self.offset, bytes: payload[..captured].to_vec() });
        if (captured as u64) < u64::from(len) {
            out.push(StreamChunk::Gap { side, offset: self.offset + captured as u64, len: u64::from(len) - captured as u64 });
        }
        self.offset += u64::from(len);
    }
}

/// The shared model: the table (data thread writes, UI reads lazily) and the newest snapshot.
pub struct FrameModel {
    table: Mutex<FrameTable>,
    published: Mutex<Arc<Snapshot>>,
    /// Offline progress counters, one per input.
    read: Vec<Arc<AtomicU64>>,
    total: Option<u64>,
    filter: Option<String>,
    stop: AtomicBool,
    /// The data thread has read all input (and made the final join).
    done: AtomicBool,
    errors: Mutex<Vec<String>>,
    generation: AtomicU64,
    live: Mutex<Option<LiveInput>>,
    live_stop: Option<crate::live::StopFlag>,
}

/// Counts the bytes read from an input for the progress indicator.
struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opened inputs, ready to be read on a data thread.
pub struct Inputs {
    readers: Vec<Box<dyn FrameSource + Send>>,
    points: Points,
    filter: Filter,
    read: Vec<Arc<AtomicU64>>,
    total: Option<u64>,
    expr: Option<String>,
    conntrack: Vec<(crate::conntrack::CtEntry, Option<Arc<str>>)>,
    limits: TuiLimits,
    live: Option<LiveInput>,
}

/// A running live capture and what the status bar and joiner need of it.
struct LiveInput {
    capture: crate::live::LiveCapture,
    stop: crate::live::StopFlag,
    netns: Vec<crate::netns::Netns>,
}

impl Inputs {
    /// Opens every `-r` spec (`[LABEL=]FILE`) and checks the capture filter compiles for
    /// each input's link type. Errors are the messages the text pipeline prints.
    pub fn open(specs: &[String], expr: Option<&str>) -> Result<Inputs, String> {
        let mut points = Points::default();
        let mut readers = Vec::new();
        let mut read = Vec::new();
        let mut total = Some(0u64);
        let mut filter = Filter::new(expr);
        filter.set_lenient(specs.len() > 1);
        let mut compiled = 0;
        let mut first_error = None;
        for spec in specs {
            let is = crate::capture::InputSpec::parse(spec);
            let count = Arc::new(AtomicU64::new(0));
            let r: Box<dyn Read + Send> = if is.path == "-" {
                total = None;
                Box::new(CountingReader { inner: std::io::stdin(), count: count.clone() })
            } else {
                let f = std::fs::File::open(&is.path)
                    .map_err(|e| format!("{}: {}", is.path, crate::capture::os_message(&e)))?;
                match (total, f.metadata()) {
                    (Some(t), Ok(m)) => total = Some(t + m.len()),
                    _ => total = None,
                }
                Box::new(CountingReader { inner: f, count: count.clone() })
            };
            let reader = OfflineReader::from_reader(is, r, &mut points).map_err(|e| e.to_string())?;
            match filter.prepare(reader.info().linktype) {
                Ok(()) => compiled += 1,
                Err(e) => {
                    first_error.get_or_insert(e.msg);
                }
            }
            readers.push(Box::new(reader) as Box<dyn FrameSource + Send>);
            read.push(count);
        }
        if let Some(e) = first_error
            && (specs.len() == 1 || compiled == 0)
        {
            return Err(e);
        }
        Ok(Inputs {
            readers,
            points,
            filter,
            read,
            total,
            expr: expr.map(str::to_string),
            conntrack: Vec::new(),
            limits: TuiLimits::default(),
            live: None,
        })
    }

    /// Starts live capture on `specs` (`-i` points; the filter is applied by each handle).
    /// Errors are the messages `flowtrail -i` prints.
    pub fn live(specs: &[crate::netns::PointSpec], opts: crate::live::LiveOptions) -> Result<Inputs, String> {
        let stop = crate::live::StopFlag::new();
        let expr = opts.filter.clone();
        let mut capture = crate::live::LiveCapture::start(specs, &opts, 0, stop.clone()).map_err(|e| e.to_string())?;
        let mut points = Points::default();
        for p in &capture.points {
            points.add(crate::capture::Point {
                label: p.label.clone(),
                linktype: p.linktype,
                snaplen: p.snaplen,
                nano: opts.nano,
            });
        }
        let source = capture.source();
        let netns = capture.points.iter().map(|p| p.spec.netns.clone()).collect();
        Ok(Inputs {
            readers: vec![Box::new(source) as Box<dyn FrameSource + Send>],
            points,
            filter: Filter::new(None),
            read: Vec::new(),
            total: None,
            expr,
            conntrack: Vec::new(),
            limits: TuiLimits::default(),
            live: Some(LiveInput { capture, stop, netns }),
        })
    }

    /// Conntrack entries for the joiner (offline `--conntrack [NETNS=]FILE`), each with its
    /// scope.
    pub fn with_conntrack(mut self, entries: Vec<(crate::conntrack::CtEntry, Option<Arc<str>>)>) -> Inputs {
        self.conntrack = entries;
        self
    }

    /// Memory caps (from `--max-memory` and the finer options).
    pub fn with_limits(mut self, limits: TuiLimits) -> Inputs {
        self.limits = limits;
        self
    }
}

impl FrameModel {
    fn new(inputs: &mut Inputs, print: Options) -> FrameModel {
        let mut table = FrameTable::with_limits(print, inputs.limits);
        table.set_points(&inputs.points);
        table.conntrack = Arc::new(std::mem::take(&mut inputs.conntrack));
        let live = inputs.live.take();
        if let Some(l) = &live {
            table.live = true;
            table.point_netns = l.netns.iter().cloned().map(Some).collect();
            table.point_drops = vec![Some(0); l.netns.len()];
        }
        FrameModel {
            table: Mutex::new(table),
            published: Mutex::new(Arc::new(Snapshot::default())),
            read: inputs.read.clone(),
            total: inputs.total,
            filter: inputs.expr.clone(),
            stop: AtomicBool::new(false),
            done: AtomicBool::new(false),
            errors: Mutex::new(Vec::new()),
            generation: AtomicU64::new(0),
            live_stop: live.as_ref().map(|l| l.stop.clone()),
            live: Mutex::new(live),
        }
    }

    /// Reads every input to the end on this thread, joins, and publishes the final snapshot
    /// (tests, benchmarks, small files).
    pub fn load(mut inputs: Inputs, print: Options) -> FrameModel {
        let model = FrameModel::new(&mut inputs, print);
        let mut pump = Pump::new(inputs);
        while pump.step(&model) {}
        model.finish_input(&mut pump);
        model.publish(true, None);
        model
    }

    /// Starts the data thread (reads the inputs into the table) and the publisher thread
    /// (joins every [`JOIN_PERIOD`], publishes snapshots every [`PUBLISH_PERIOD`]). Both end
    /// at the end of input or after [`FrameModel::stop`]; the handle is the publisher's, which
    /// ends after the data thread.
    pub fn spawn(mut inputs: Inputs, print: Options) -> (Arc<FrameModel>, JoinHandle<()>) {
        let model = Arc::new(FrameModel::new(&mut inputs, print));
        let m = model.clone();
        let data = std::thread::Builder::new()
            .name("flowtrail-model".into())
            .spawn(move || {
                let mut pump = Pump::new(inputs);
                while !m.stop.load(Ordering::Relaxed) && pump.step(&m) {}
                m.finish_input(&mut pump);
            })
            .expect("spawning a thread");
        let m = model.clone();
        let handle = std::thread::Builder::new()
            .name("flowtrail-join".into())
            .spawn(move || {
                let mut last_join: Option<Instant> = None;
                let mut last = Instant::now();
                let mut frames_at_last = 0u64;
                m.publish(false, None);
                loop {
                    let done = m.done.load(Ordering::Acquire);
                    if done || m.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if last_join.is_none_or(|t| t.elapsed() >= JOIN_PERIOD) {
                        last_join = Some(Instant::now());
                        let input = m.lock().join_input();
                        if let Some(input) = input {
                            let j = Joined::build(input);
                            // The final join (after the end of input) wins over this one.
                            let mut t = m.lock();
                            if !t.input_done {
                                t.set_joined(j);
                            }
                        }
                    }
                    let elapsed = last.elapsed();
                    if elapsed >= PUBLISH_PERIOD {
                        let seen = m.lock().frames_seen;
                        let pps = seen.saturating_sub(frames_at_last) as f64 / elapsed.as_secs_f64();
                        frames_at_last = seen;
                        last = Instant::now();
                        m.publish(false, Some(pps));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = data.join();
                m.publish(true, None);
            })
            .expect("spawning a thread");
        (model, handle)
    }

    /// Asks the data thread to stop (live capture stops too).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(s) = &self.live_stop {
            s.stop();
        }
    }

    fn lock(&self) -> MutexGuard<'_, FrameTable> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// End of input: errors kept, flows ended, the final join made.
    fn finish_input(&self, pump: &mut Pump) {
        let mut errs: Vec<String> = pump.merger.take_errors().iter().map(|e| e.to_string()).collect();
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = live.as_mut() {
            let stats = l.capture.finish();
            errs.extend(l.capture.take_errors());
            let mut t = self.lock();
            t.point_drops = stats.iter().map(|s| Some(s.dropped)).collect();
        }
        drop(live);
        self.errors.lock().unwrap_or_else(|p| p.into_inner()).extend(errs);
        let input = {
            let mut t = self.lock();
            t.finish_flows();
            t.input_done = true;
            t.join_input()
        };
        self.done.store(true, Ordering::Release);
        if let Some(input) = input {
            let j = Joined::build(input);
            self.lock().set_joined(j);
        }
    }

    fn publish(&self, finished: bool, pps: Option<f64>) {
        let drops = self
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|l| l.capture.kernel_drops());
        let mut t = self.lock();
        if let Some(d) = drops {
            for (slot, n) in t.point_drops.iter_mut().zip(d) {
                *slot = Some(slot.unwrap_or(0).max(n));
            }
        }
        if !t.dirty && !finished && t.live {
            // Live: the packet rate still changes.
        } else if !t.dirty && !finished {
            return;
        }
        t.dirty = false;
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let mut s = t.snapshot(generation);
        drop(t);
        s.finished = finished;
        s.filter = self.filter.clone();
        s.packets_per_second = pps;
        s.errors = self.errors.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if !s.live {
            s.progress = Some(Progress {
                bytes_read: self.read.iter().map(|c| c.load(Ordering::Relaxed)).sum(),
                bytes_total: self.total,
            });
        }
        *self.published.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(s);
    }
}

/// Moves frames from the inputs into the table, a batch at a time.
struct Pump {
    merger: Merger,
    points: Points,
    filter: Filter,
    batch: Vec<Frame>,
    primed: bool,
    /// Frames per lock: live input ingests each frame at once (a batch would wait for
    /// more traffic).
    batch_size: usize,
}

impl Pump {
    fn new(inputs: Inputs) -> Pump {
        let mut merger = Merger::new();
        let live = inputs.total.is_none() && inputs.read.is_empty();
        for r in inputs.readers {
            merger.add(r);
        }
        Pump {
            merger,
            points: inputs.points,
            filter: inputs.filter,
            batch: Vec::with_capacity(BATCH),
            primed: false,
            batch_size: if live { 1 } else { BATCH },
        }
    }

    /// Reads and ingests up to one batch; false at the end of input.
    fn step(&mut self, model: &FrameModel) -> bool {
        if !self.primed {
            self.merger.prime(&mut self.points);
            self.primed = true;
        }
        let mut more = true;
        while self.batch.len() < self.batch_size {
            match self.merger.next(&mut self.points) {
                Some(f) => {
                    if matches!(self.filter.matches(&f), Ok(true)) {
                        self.batch.push(f);
                    } else {
                        self.merger.recycle(f);
                    }
                }
                None => {
                    more = false;
                    break;
                }
            }
        }
        let mut t = model.lock();
        t.set_points(&self.points);
        for f in self.batch.drain(..) {
            t.ingest(f);
        }
        more
    }
}

impl ModelSource for FrameModel {
    fn snapshot(&self) -> Arc<Snapshot> {
        self.published.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    fn detail(&self, id: PathId) -> Option<PathDetail> {
        self.lock().detail(id)
    }
    fn stream(&self, id: PathId, at: Option<ObservationRef>) -> StreamView {
        self.lock().stream(id, at)
    }
    fn packets(&self, id: PathId, at: Option<ObservationRef>) -> PacketList {
        self.lock().packets(id, at)
    }
    fn packet_dump(&self, packet: PacketRef) -> Option<Vec<String>> {
        self.lock().packet_dump(packet)
    }
    fn save(&self, id: PathId, file: &std::path::Path) -> Result<Saved, String> {
        self.lock().save(id, file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str) -> Endpoint {
        let (ip, port) = s.rsplit_once(':').unwrap();
        Endpoint { ip: ip.parse().unwrap(), port: port.parse().unwrap() }
    }

    #[test]
    fn roles_follow_syn_then_ports() {
        let (a, b) = (ep("10.0.0.1:40000"), ep("10.0.0.2:8443"));
        assert_eq!(roles(a, b, Some(tcp_flags::SYN)), (a, b));
        assert_eq!(roles(b, a, Some(tcp_flags::SYN | tcp_flags::ACK)), (a, b));
        assert_eq!(roles(b, a, Some(tcp_flags::ACK)), (a, b));
        assert_eq!(roles(ep("10.0.0.2:53"), ep("10.0.0.1:5353"), None), (ep("10.0.0.1:5353"), ep("10.0.0.2:53")));
    }

    #[test]
    fn states_from_flags() {
        let mut s = TcpSeen::default();
        let mut h = String::new();
        tcp_packet(&mut s, &mut h, 0, tcp_flags::SYN, 0);
        assert_eq!(tcp_state(&s), "S0");
        tcp_packet(&mut s, &mut h, 1, tcp_flags::SYN | tcp_flags::ACK, 0);
        tcp_packet(&mut s, &mut h, 0, tcp_flags::ACK, 0);
        assert_eq!(tcp_state(&s), "S1");
        tcp_packet(&mut s, &mut h, 0, tcp_flags::ACK | tcp_flags::PSH, 10);
        tcp_packet(&mut s, &mut h, 0, tcp_flags::ACK | tcp_flags::FIN, 0);
        tcp_packet(&mut s, &mut h, 1, tcp_flags::ACK | tcp_flags::FIN, 0);
        assert_eq!(tcp_state(&s), "SF");
        assert_eq!(h, "ShADFf");
        tcp_packet(&mut s, &mut h, 0, tcp_flags::RST, 0);
        assert_eq!(tcp_state(&s), "RSTO");
    }

    #[test]
    fn stream_positions_gaps_and_retransmissions() {
        let mut d = StreamDir::default();
        let mut out = Vec::new();
        let seg = |seq, payload: &'static [u8], len| decode::Tcp {
            seq,
            flags: tcp_flags::ACK,
            payload,
            payload_len: len,
            ..decode::Tcp::default()
        };
        d.tcp(&decode::Tcp { seq: 99, flags: tcp_flags::SYN, ..decode::Tcp::default() }, Side::Client, &mut out);
        d.tcp(&seg(100, b"abcd", 4), Side::Client, &mut out);
        d.tcp(&seg(102, b"cdef", 4), Side::Client, &mut out); // overlap: "ef" is new
        d.tcp(&seg(110, b"xy", 4), Side::Client, &mut out); // a gap of 4, then cut by the capture
        d.tcp(&seg(100, b"abcd", 4), Side::Client, &mut out); // old retransmission
        let fin = decode::Tcp { seq: 120, flags: tcp_flags::FIN | tcp_flags::ACK, ..decode::Tcp::default() };
        d.tcp(&fin, Side::Client, &mut out); // 6 bytes before the FIN are missing
        d.tcp(&fin, Side::Client, &mut out); // a retransmitted FIN adds nothing
        assert_eq!(
            out,
            vec![
                StreamChunk::Data { side: Side::Client, offset: 0, bytes: b"abcd".to_vec() },
                StreamChunk::Data { side: Side::Client, offset: 4, bytes: b"ef".to_vec() },
                StreamChunk::Gap { side: Side::Client, offset: 6, len: 4 },
                StreamChunk::Data { side: Side::Client, offset: 10, bytes: b"xy".to_vec() },
                StreamChunk::Gap { side: Side::Client, offset: 12, len: 2 },
                StreamChunk::Gap { side: Side::Client, offset: 14, len: 6 },
            ]
        );
    }
}
