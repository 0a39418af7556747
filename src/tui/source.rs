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
//! joiner thread: every JOIN_PERIOD, when something changed: takes in the live evidence
//!                gathered since (conntrack, socket owners), copies the join input a piece
//!                of JOIN_PIECE observations per hold of the lock, joins outside it
//!                (joined.rs), swaps the result in. Nobody waits for a whole copy or a join.
//! UI thread:     reads snapshots; lazy per-path queries take the lock briefly.
//! ```
//!
//! * An *observation* of the frame store is one flow-table observation, keyed by its flow id
//!   (the flow table tells which flow each frame went to, `FlowTable::last_flow`): a new
//!   connection on a reused tuple is a new observation with its own packets. Frames the flow
//!   table keeps no flow for (other IP protocols) make one observation per tuple and point.
//!   The joined paths ([`super::joined`]) refer to observations by flow id. Observations
//!   without joiner features (ICMP, other protocols, or beyond the features cap) are shown
//!   grouped by tuple, as paths of one leg.
//! * State, history and analysis are the flow table's, the values `--flows` prints: an ended
//!   flow's from its record, a live flow's as of the latest join (the detail pane's analysis
//!   as of the moment it is asked for).
//! * The stream is what `--follow ID` writes for the observation: its kept frames replayed
//!   through a flow table of the same reassembly settings, the reassembler's Data and Gap
//!   events in order (UDP: one chunk per datagram).
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
/// Observations copied for a join per hold of the lock.
const JOIN_PIECE: usize = 2048;

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
    /// Ended flows, with their joiner features when they saw anything.
    ended: Vec<(FlowRecord, Option<Arc<ObservationFeatures>>)>,
    /// Live: the evidence's new-flow hook (queues the attribution of both sockets).
    hook: Option<Box<dyn FnMut(&FlowInfo) + Send>>,
}

impl FlowObserver for FlowTap {
    fn wants_payload(&mut self, flow: &FlowInfo) -> bool {
        if let Some(h) = self.hook.as_mut() {
            h(flow);
        }
        self.created.push(flow.clone());
        false
    }
    fn flow_ended(&mut self, record: FlowRecord, features: Option<&ObservationFeatures>) {
        let features = features.filter(|f| !f.is_empty()).map(|f| Arc::new(f.clone()));
        self.ended.push((record, features));
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

/// One observation of the frame store: one flow-table observation (its flow id; a new
/// connection on a reused tuple is a new one), or, for frames the flow table keeps no flow
/// for (other IP protocols), one tuple at one point.
#[derive(Debug)]
struct Observation {
    flow: Option<u64>,
    /// The tuple group it belongs to (how it is shown when it is not joined).
    group: u32,
    point: u32,
    client: Endpoint,
    server: Endpoint,
    packets: [u64; 2],
    bytes: [u64; 2],
    first: Timestamp,
    last: Timestamp,
    /// The flow table's `conn_state`, history and analysis (`--flows`' values; a live flow's
    /// as of the last join input, an ended one's from its record).
    state: Arc<str>,
    history: Arc<str>,
    analysis: Arc<str>,
    /// Indices into `FrameTable::frames` (kept frames only), in arrival order.
    frames: Vec<u32>,
}

/// The observations of one tuple at any point: a path of one leg when they have no joiner
/// features.
#[derive(Debug)]
struct Group {
    row: PathRow,
    observations: Vec<u32>,
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
    observations: Vec<Observation>,
    groups: Vec<Group>,
    /// Tuple -> group.
    by_key: HashMap<TupleKey, u32>,
    /// Flow id -> observation.
    by_flow: HashMap<u64, u32>,
    /// (point, tuple) -> observation, for frames in no flow.
    other: HashMap<(u32, TupleKey), u32>,
    frames: Vec<Kept>,
    kept_bytes: usize,
    caps: CapCounters,
    clock: Option<Timestamp>,
    frames_seen: u64,
    print: Options,
    dirty: bool,
    limits: TuiLimits,
    flows: Flows,
    /// The flow table's configuration without features (stream replays).
    flow_config: FlowConfig,
    tap: FlowTap,
    /// Ended flows' joiner features (at most `limits.ended_features`).
    ended: Vec<(u64, Arc<ObservationFeatures>)>,
    /// Something changed since the last join input was taken.
    join_dirty: bool,
    /// The latest join.
    joined: Arc<Joined>,
    conntrack: Arc<Vec<(crate::conntrack::CtEntry, Option<Arc<str>>)>>,
    /// Live evidence: conntrack entries gathered in the captured namespaces and socket owners
    /// (so far while capture runs, all of them after it stopped).
    live_conntrack: Arc<Vec<crate::conntrack::CtEntry>>,
    owners: Arc<Vec<crate::report::paths::SocketOwner>>,
    /// Namespaces of live points (joiner evidence), by point index.
    point_netns: Vec<Option<crate::netns::Netns>>,
    /// Kernel drops per point (live).
    point_drops: Vec<Option<u64>>,
    live: bool,
    /// The final join's input was taken: later joins of older input are dropped.
    input_done: bool,
}

fn tui_proto(p: crate::flow::Proto) -> Proto {
    match p {
        crate::flow::Proto::Tcp => Proto::Tcp,
        crate::flow::Proto::Udp => Proto::Udp,
        _ => Proto::Icmp,
    }
}

impl FrameTable {
    /// Most observations tracked.
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
        let flow_config = FlowConfig { features: false, ..config.clone() };
        // Room for every flow up front (untouched pages cost nothing): the table never
        // rehashes or doubles a vector while the UI waits (as `--flows` does).
        config.reserve_flows = limits.max_flows;
        FrameTable {
            limits,
            flows: Flows::new(config),
            flow_config,
            tap: FlowTap::default(),
            ended: Vec::new(),
            join_dirty: true,
            joined: Arc::new(Joined::default()),
            conntrack: Arc::new(Vec::new()),
            live_conntrack: Arc::new(Vec::new()),
            owners: Arc::new(Vec::new()),
            point_netns: Vec::new(),
            point_drops: Vec::new(),
            live: false,
            input_done: false,
            points: Points::default(),
            point_packets: Vec::new(),
            observations: Vec::new(),
            groups: Vec::new(),
            by_key: HashMap::new(),
            by_flow: HashMap::new(),
            other: HashMap::new(),
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

    /// A new observation of `client -> server` at `point`, in its tuple's group; `None` past
    /// the cap (counted).
    fn add_observation(
        &mut self,
        flow: Option<u64>,
        proto: Proto,
        point: u32,
        client: Endpoint,
        server: Endpoint,
        ts: Timestamp,
    ) -> Option<u32> {
        if self.observations.len() >= Self::MAX_PATHS {
            self.caps.paths += 1;
            return None;
        }
        let key = if client <= server { (proto, client, server) } else { (proto, server, client) };
        let oi = self.observations.len() as u32;
        let g = match self.by_key.get(&key) {
            Some(&g) => g,
            None => {
                let g = self.groups.len() as u32;
                self.by_key.insert(key, g);
                self.groups.push(Group {
                    row: PathRow {
                        id: u64::from(g) + 1,
                        proto,
                        client,
                        server,
                        legs: 1,
                        hops: Arc::from(Vec::new()),
                        packets: [0; 2],
                        bytes: [0; 2],
                        state: Arc::from(""),
                        history: Arc::from(""),
                        first: ts,
                        last: ts,
                        process: None,
                    },
                    observations: Vec::new(),
                });
                g
            }
        };
        let group = &mut self.groups[g as usize];
        group.observations.push(oi);
        let mut hops: Vec<Hop> = group.row.hops.to_vec();
        hops.push(Hop { point, client, server });
        group.row.hops = Arc::from(hops);
        self.observations.push(Observation {
            flow,
            group: g,
            point,
            client,
            server,
            packets: [0; 2],
            bytes: [0; 2],
            first: ts,
            last: ts,
            state: Arc::from(""),
            history: Arc::from(""),
            analysis: Arc::from(""),
            frames: Vec::new(),
        });
        if let Some(id) = flow {
            self.by_flow.insert(id, oi);
        }
        Some(oi)
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
        self.flows.frame(&frame, &self.points, &mut self.tap);
        let flow = self.flows.last_flow();
        self.after_flows(frame.ts);
        let d = decode::decode(frame.linktype, &frame.data);
        let Some(ip) = d.ip else { return };
        let (proto, sport, dport, payload_len, flags) = match d.transport {
            Transport::Tcp(t) => (Proto::Tcp, t.sport, t.dport, t.payload_len, Some(t.flags)),
            Transport::Udp(u) => (Proto::Udp, u.sport, u.dport, u.payload_len, None),
            Transport::Icmp { .. } => (Proto::Icmp, 0, 0, 0, None),
            Transport::Other { proto } => (Proto::Other(proto), 0, 0, 0, None),
            Transport::None => return,
        };
        let point = frame.point as u32;
        let (oi, side) = match flow {
            Some((id, dir)) => {
                let Some(&oi) = self.by_flow.get(&id) else {
                    return; // past the observation cap (counted)
                };
                (oi, if dir == 0 { Side::Client } else { Side::Server })
            }
            None => {
                let src = Endpoint { ip: ip.src, port: sport };
                let dst = Endpoint { ip: ip.dst, port: dport };
                let key = if src <= dst { (proto, src, dst) } else { (proto, dst, src) };
                let oi = match self.other.get(&(point, key)) {
                    Some(&oi) => oi,
                    None => {
                        let (client, server) = roles(src, dst, flags);
                        let Some(oi) = self.add_observation(None, proto, point, client, server, frame.ts) else {
                            return;
                        };
                        self.other.insert((point, key), oi);
                        oi
                    }
                };
                let o = &self.observations[oi as usize];
                (oi, if src == o.client && dst == o.server { Side::Client } else { Side::Server })
            }
        };
        let keep = self.kept_bytes + frame.data.len() <= self.limits.kept_bytes && self.frames.len() < u32::MAX as usize;
        let frame_index = self.frames.len() as u32;
        let s = side.index();
        let obs = &mut self.observations[oi as usize];
        obs.packets[s] += 1;
        obs.bytes[s] += u64::from(payload_len);
        obs.first = obs.first.min(frame.ts);
        obs.last = obs.last.max(frame.ts);
        if keep {
            obs.frames.push(frame_index);
        }
        if obs.flow.is_none() {
            // Frames in no flow: `--flows` has no state for them; who sent anything.
            let state = match (obs.packets[0] > 0, obs.packets[1] > 0) {
                (true, true) => "SF",
                (true, false) => "S0",
                _ => "SHR",
            };
            if *obs.state != *state {
                obs.state = Arc::from(state);
            }
        }
        let g = obs.group as usize;
        self.refresh_group(g);
        let group = &mut self.groups[g];
        group.row.first = group.row.first.min(frame.ts);
        group.row.last = group.row.last.max(frame.ts);
        if keep {
            self.kept_bytes += frame.data.len();
            self.frames.push(Kept { frame, side });
        } else {
            self.caps.packet_bytes += 1;
        }
    }

    /// A group's row shows its first observation (what the client side saw).
    fn refresh_group(&mut self, g: usize) {
        let Some(group) = self.groups.get_mut(g) else { return };
        let Some(first) = group.observations.first().and_then(|&o| self.observations.get(o as usize)) else {
            return;
        };
        group.row.packets = first.packets;
        group.row.bytes = first.bytes;
        if *group.row.state != *first.state {
            group.row.state = first.state.clone();
        }
        if *group.row.history != *first.history {
            group.row.history = first.history.clone();
        }
    }

    /// Takes in what the flow table told: new flows get an observation, ended ones their
    /// record's state, history and analysis, and hand over their joiner features (up to the
    /// cap).
    fn after_flows(&mut self, ts: Timestamp) {
        let created = std::mem::take(&mut self.tap.created);
        for info in created {
            let proto = tui_proto(info.proto);
            let port = |p: u16| if proto == Proto::Icmp { 0 } else { p };
            let c = Endpoint { ip: info.client.addr, port: port(info.client.port) };
            let s = Endpoint { ip: info.server.addr, port: port(info.server.port) };
            self.add_observation(Some(info.id), proto, info.point_index, c, s, ts);
        }
        let ended = std::mem::take(&mut self.tap.ended);
        for (r, features) in ended {
            self.join_dirty = true;
            if let Some(&oi) = self.by_flow.get(&r.info.id) {
                let o = &mut self.observations[oi as usize];
                o.state = Arc::from(r.conn_state.name());
                o.history = Arc::from(r.history.as_str());
                o.analysis = Arc::from(crate::report::table::analysis_text(&r));
                let g = o.group as usize;
                self.refresh_group(g);
            }
            let Some(f) = features else { continue };
            if self.ended.len() < self.limits.ended_features {
                self.ended.push((r.info.id, f));
            } else {
                self.caps.unjoined += 1;
            }
        }
    }

    /// End of input: every live flow ends (its features move to the ended ones).
    pub fn finish_flows(&mut self) {
        self.flows.finish(&mut self.tap);
        let ts = self.clock.unwrap_or(Timestamp { sec: 0, nsec: 0 });
        self.after_flows(ts);
        self.join_dirty = true;
        self.dirty = true;
    }

    /// A copy of what a join needs (see `joined.rs`), all at once; clears the changed mark.
    /// `None` when nothing changed since the last one. ([`FrameModel`]'s joiner thread copies
    /// it a piece at a time instead, releasing the lock in between.)
    pub fn join_input(&mut self) -> Option<JoinInput> {
        let mut input = self.join_begin(false)?;
        self.join_ended(&mut input, 0, usize::MAX);
        self.join_live(&mut input, 0, usize::MAX);
        self.join_loose(&mut input);
        Some(input)
    }

    /// The start of a join input: points and evidence (cheap); clears the changed mark.
    /// `None` when nothing changed since the last one.
    fn join_begin(&mut self, force: bool) -> Option<JoinInput> {
        if !self.join_dirty && !force {
            return None;
        }
        self.join_dirty = false;
        Some(JoinInput {
            points: self
                .points
                .points
                .iter()
                .enumerate()
                .map(|(i, p)| (i as u32, Arc::from(p.label.as_str()), self.point_netns.get(i).cloned().flatten()))
                .collect(),
            conntrack: self.conntrack.clone(),
            live_conntrack: self.live_conntrack.clone(),
            owners: self.owners.clone(),
            ..JoinInput::default()
        })
    }

    fn featured(&self, id: u64, features: Arc<ObservationFeatures>) -> FeaturedObs {
        let at = self.by_flow.get(&id).copied();
        let (state, history, analysis) = match at.and_then(|o| self.observations.get(o as usize)) {
            Some(o) => (o.state.clone(), o.history.clone(), o.analysis.clone()),
            None => (Arc::from(""), Arc::from(""), Arc::from("")),
        };
        FeaturedObs { id, features, at, state, history, analysis }
    }

    /// Adds at most `n` ended flows' features from index `from` (they only get appended);
    /// returns the next index, `ended.len()` when done.
    fn join_ended(&self, input: &mut JoinInput, from: usize, n: usize) -> usize {
        let end = from.saturating_add(n).min(self.ended.len());
        for (id, f) in self.ended.get(from..end).unwrap_or(&[]) {
            input.observations.push(self.featured(*id, f.clone()));
        }
        end
    }

    /// Adds at most `n` live flows from slab slot `from` on (their features copied, their
    /// state and history taken from the flow table now); returns the next slot, `None` when
    /// done.
    fn join_live(&mut self, input: &mut JoinInput, from: usize, n: usize) -> Option<usize> {
        let mut copied: Vec<(u64, Option<Arc<ObservationFeatures>>)> = Vec::new();
        let mut next = None;
        let mut groups = Vec::new();
        for lf in self.flows.live_flows_from(from) {
            if copied.len() >= n {
                next = Some(lf.slot);
                break;
            }
            let features = lf.features.filter(|f| !f.is_empty()).map(|f| Arc::new(f.clone()));
            copied.push((lf.id, features));
            let Some(&oi) = self.by_flow.get(&lf.id) else { continue };
            let o = &mut self.observations[oi as usize];
            let mut changed = false;
            if *o.state != *lf.conn_state.name() {
                o.state = Arc::from(lf.conn_state.name());
                changed = true;
            }
            if *o.history != *lf.history {
                o.history = Arc::from(lf.history);
                changed = true;
            }
            if changed {
                groups.push(o.group as usize);
            }
        }
        for g in groups {
            self.refresh_group(g);
        }
        for (id, f) in copied {
            if let Some(f) = f {
                input.observations.push(self.featured(id, f));
            }
        }
        next
    }

    /// Which observations `input` has joiner features for (by frame-store index).
    fn covered(input: &JoinInput) -> Vec<bool> {
        let n = input.observations.iter().filter_map(|o| o.at).max().map_or(0, |m| m as usize + 1);
        let mut covered = vec![false; n];
        for o in &input.observations {
            if let Some(c) = o.at.and_then(|a| covered.get_mut(a as usize)) {
                *c = true;
            }
        }
        covered
    }

    /// Adds the observations without features, by tuple (every point of it, one leg).
    fn join_loose(&self, input: &mut JoinInput) {
        let covered = FrameTable::covered(input);
        self.join_loose_from(input, &covered, 0, usize::MAX);
    }

    /// [`FrameTable::join_loose`] for at most `n` tuple groups from group `from` on (groups
    /// only get appended); returns the next group, `None` when done.
    fn join_loose_from(&self, input: &mut JoinInput, covered: &[bool], from: usize, n: usize) -> Option<usize> {
        let is_covered = |o: u32| covered.get(o as usize).copied().unwrap_or(false);
        let end = from.saturating_add(n).min(self.groups.len());
        for (g, group) in self.groups.iter().enumerate().take(end).skip(from) {
            if group.observations.iter().all(|&o| is_covered(o)) {
                continue;
            }
            let rest: Vec<u32> = group.observations.iter().copied().filter(|&o| !is_covered(o)).collect();
            let mut row = group.row.clone();
            if rest.len() != group.observations.len() {
                let first = &self.observations[rest[0] as usize];
                row.client = first.client;
                row.server = first.server;
                row.packets = first.packets;
                row.bytes = first.bytes;
                row.state = first.state.clone();
                row.history = first.history.clone();
                row.first = rest.iter().map(|&o| self.observations[o as usize].first).min().unwrap_or(row.first);
                row.last = rest.iter().map(|&o| self.observations[o as usize].last).max().unwrap_or(row.last);
                let hops: Vec<Hop> = rest
                    .iter()
                    .map(|&o| {
                        let o = &self.observations[o as usize];
                        Hop { point: o.point, client: o.client, server: o.server }
                    })
                    .collect();
                row.hops = Arc::from(hops);
            }
            input.loose.push(LooseEntry { entry: g as u32, observations: rest, row });
        }
        (end < self.groups.len()).then_some(end)
    }

    /// Puts the live evidence gathered so far (or in all) in place for the next join.
    pub fn set_live_evidence(
        &mut self,
        conntrack: Arc<Vec<crate::conntrack::CtEntry>>,
        owners: Arc<Vec<crate::report::paths::SocketOwner>>,
    ) {
        self.live_conntrack = conntrack;
        self.owners = owners;
        self.join_dirty = true;
    }

    /// Puts a finished join in place; returns the previous one (drop it outside the lock: a
    /// large join takes a while to free).
    pub fn set_joined(&mut self, j: Joined) -> Arc<Joined> {
        self.dirty = true;
        std::mem::replace(&mut self.joined, Arc::new(j))
    }

    /// Joins now on this thread (tests, end of input).
    pub fn join_now(&mut self) {
        if let Some(input) = self.join_input() {
            let _ = self.set_joined(Joined::build(input));
        }
    }

    /// The latest join.
    pub fn joined(&self) -> &Joined {
        &self.joined
    }

    /// The snapshot of the table as it is now (the rows of the latest join).
    pub fn snapshot(&self, generation: u64) -> Snapshot {
        let mut s = self.snapshot_without_rows(generation);
        s.paths = self.joined.rows.clone();
        s
    }

    /// [`FrameTable::snapshot`] without the rows (filled outside the lock from the join).
    fn snapshot_without_rows(&self, generation: u64) -> Snapshot {
        let mut caps = self.caps;
        caps.flows_evicted = self.flows.stats().flows_evicted;
        Snapshot {
            generation,
            clock: self.clock,
            paths: Vec::new(),
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

    /// The frame-store observations of a path, or of one of its observations, in path
    /// order (each once).
    fn located(&self, id: PathId, at: Option<ObservationRef>) -> Vec<u32> {
        let j = &self.joined;
        let Some(i) = j.index(id) else { return Vec::new() };
        let mut out: Vec<u32> = Vec::new();
        match &j.shown[i] {
            Shown::Loose { observations, .. } => match at {
                Some(r) if r.leg == 0 => out.extend(observations.get(r.observation).copied()),
                Some(_) => {}
                None => out.extend(observations.iter().copied()),
            },
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

    /// State, history and analysis of an observation: the join's copy, refreshed from the
    /// store (an ended flow's record) and, for a live flow, from the flow table now.
    fn analysis_of(&self, o: &Observation) -> Arc<str> {
        match o.flow.and_then(|id| self.flows.peek(id)) {
            Some(r) => Arc::from(crate::report::table::analysis_text(&r)),
            None => o.analysis.clone(),
        }
    }

    /// Legs and observations of one path.
    pub fn detail(&self, id: PathId) -> Option<PathDetail> {
        let j = &self.joined;
        let i = j.index(id)?;
        let obs = match &j.shown[i] {
            Shown::Joined(p) => {
                let mut d = j.detail(id, p);
                // Analysis of each captured observation (its first flow id's), now.
                for (l, leg) in d.legs.iter_mut().zip(&p.legs) {
                    for (od, o) in l.observations.iter_mut().zip(&leg.observations) {
                        if let Some(x) = o.ids.iter().find_map(|id| self.by_flow.get(id)) {
                            od.analysis = Some(self.analysis_of(&self.observations[*x as usize]));
                        }
                    }
                }
                return Some(d);
            }
            Shown::Loose { observations, .. } => observations,
        };
        let observations = obs
            .iter()
            .filter_map(|&o| self.observations.get(o as usize))
            .map(|o| ObservationDetail {
                point: Arc::from(self.points.get(o.point as usize).map_or("?", |p| p.label.as_str())),
                client: o.client,
                server: o.server,
                packets: o.packets,
                bytes: o.bytes,
                first: o.first,
                last: o.last,
                state: o.state.clone(),
                history: o.history.clone(),
                analysis: o.flow.map(|_| self.analysis_of(o)),
                changes: None,
                latency: None,
                note: None,
            })
            .collect::<Vec<_>>();
        let join = (observations.len() > 1).then(|| JoinInfo {
            kind: "same-tuple".into(),
            evidence: vec![format!("identical tuple at {} points", observations.len())],
        });
        let row = &j.rows[i];
        Some(PathDetail {
            id,
            proto: row.proto,
            legs: vec![LegDetail { observations, process: row.process.clone(), join, link: None }],
            notes: Vec::new(),
        })
    }

    /// The conversation at one observation (the path's first captured one by default), as
    /// `--follow ID` gives it: the observation's kept frames through a flow table of the same
    /// reassembly settings, its Data and Gap events in order (datagrams for UDP).
    pub fn stream(&self, id: PathId, at: Option<ObservationRef>) -> StreamView {
        let Some(&loc) = self.located(id, at).first() else { return StreamView::default() };
        let Some(obs) = self.observations.get(loc as usize) else { return StreamView::default() };
        let mut replay = StreamReplay { view: StreamView::default(), bytes: 0, offsets: [0; 2] };
        if obs.flow.is_none() {
            return replay.view;
        }
        let mut table = Flows::new(self.flow_config.clone());
        for &fi in &obs.frames {
            let Some(k) = self.frames.get(fi as usize) else { continue };
            table.frame(&k.frame, &self.points, &mut replay);
            if replay.view.truncated {
                return replay.view;
            }
        }
        table.finish(&mut replay);
        replay.view
    }

    /// Kept frame indices of a path or observation, in time order.
    fn frame_indices(&self, id: PathId, at: Option<ObservationRef>) -> Vec<u32> {
        let mut indices: Vec<u32> = self
            .located(id, at)
            .into_iter()
            .filter_map(|o| self.observations.get(o as usize))
            .flat_map(|o| o.frames.iter().copied())
            .collect();
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
            self.located(id, None).into_iter().filter_map(|o| self.observations.get(o as usize)).map(|o| o.point).collect();
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

/// Collects one replayed observation's stream into a [`StreamView`] (at most
/// [`MAX_STREAM_BYTES`] of data).
struct StreamReplay {
    view: StreamView,
    bytes: usize,
    /// Datagram bytes so far per side (their offsets).
    offsets: [u64; 2],
}

impl StreamReplay {
    fn push(&mut self, c: StreamChunk) {
        if self.view.truncated {
            return;
        }
        if let StreamChunk::Data { bytes, .. } = &c {
            if self.bytes + bytes.len() > MAX_STREAM_BYTES {
                self.view.truncated = true;
                return;
            }
            self.bytes += bytes.len();
        }
        self.view.chunks.push(c);
    }
}

fn side_of(d: crate::reassembly::Direction) -> Side {
    match d {
        crate::reassembly::Direction::ClientToServer => Side::Client,
        crate::reassembly::Direction::ServerToClient => Side::Server,
    }
}

impl FlowObserver for StreamReplay {
    fn wants_payload(&mut self, _flow: &FlowInfo) -> bool {
        true
    }
    fn stream_event(&mut self, _flow: &FlowInfo, d: crate::reassembly::Direction, e: &crate::reassembly::Event<'_>) {
        let side = side_of(d);
        match e {
            crate::reassembly::Event::Data { offset, bytes } => {
                self.push(StreamChunk::Data { side, offset: *offset, bytes: bytes.to_vec() })
            }
            crate::reassembly::Event::Gap { offset, len } => self.push(StreamChunk::Gap { side, offset: *offset, len: *len }),
            _ => {}
        }
    }
    fn datagram(&mut self, _flow: &FlowInfo, d: crate::reassembly::Direction, payload: &[u8]) {
        let side = side_of(d);
        let offset = self.offsets[side.index()];
        self.offsets[side.index()] += payload.len() as u64;
        self.push(StreamChunk::Data { side, offset, bytes: payload.to_vec() });
    }
    fn flow_ended(&mut self, _record: FlowRecord, _features: Option<&ObservationFeatures>) {}
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
    /// Live evidence so far, for the joiner thread's periodic joins (taken by it).
    follower: Mutex<Option<crate::evidence::EvidenceFollower>>,
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
    /// Conntrack watchers and process attribution (as joined live `--flows` uses).
    evidence: Option<crate::evidence::LiveEvidence>,
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
    /// With `evidence`, the conntrack tables of the points' namespaces are watched and the
    /// sockets of new connections attributed to processes, as joined live `--flows` does.
    pub fn live(
        specs: &[crate::netns::PointSpec],
        mut opts: crate::live::LiveOptions,
        evidence: bool,
    ) -> Result<Inputs, String> {
        let stop = crate::live::StopFlag::new();
        let expr = opts.filter.clone();
        let evidence = evidence.then(|| {
            let pts: Vec<(u32, crate::netns::Netns)> =
                specs.iter().enumerate().map(|(i, s)| (i as u32, s.netns.clone())).collect();
            crate::evidence::LiveEvidence::start(&pts)
        });
        if let Some(e) = &evidence {
            opts.tap = e.tap();
        }
        let mut capture = crate::live::LiveCapture::start(specs, &opts, 0, stop.clone()).map_err(|e| e.to_string())?;
        let points = capture.capture_points(opts.nano);
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
            live: Some(LiveInput { capture, stop, netns, evidence }),
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
        let mut follower = None;
        if let Some(l) = &live {
            table.live = true;
            table.point_netns = l.netns.iter().cloned().map(Some).collect();
            table.point_drops = vec![Some(0); l.netns.len()];
            if let Some(e) = &l.evidence {
                table.tap.hook = Some(e.hook());
                follower = Some(e.follower());
            }
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
            follower: Mutex::new(follower),
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
                let mut follower = m.follower.lock().unwrap_or_else(|p| p.into_inner()).take();
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
                        // Live evidence gathered since the last join (copied outside the lock).
                        if let Some(f) = follower.as_mut()
                            && f.update()
                        {
                            let ct = Arc::new(f.conntrack().to_vec());
                            let owners = Arc::new(f.owners());
                            let mut t = m.lock();
                            if !t.input_done {
                                t.set_live_evidence(ct, owners);
                            }
                        }
                        if let Some(input) = m.join_input_in_pieces(false) {
                            let j = Joined::build(input);
                            // The final join (after the end of input) wins over this one.
                            let mut t = m.lock();
                            if !t.input_done {
                                let old = t.set_joined(j);
                                drop(t);
                                drop(old);
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
            // All the evidence, for the final join (as joined live `--flows` gets it).
            let evidence = l.evidence.take().map(|e| e.finish().0);
            let mut t = self.lock();
            t.point_drops = stats.iter().map(|s| Some(s.dropped)).collect();
            if let Some(ev) = evidence {
                let ct = ev.conntrack.into_iter().map(|(e, _)| e).collect();
                t.set_live_evidence(Arc::new(ct), Arc::new(ev.owners));
            }
        }
        drop(live);
        self.errors.lock().unwrap_or_else(|p| p.into_inner()).extend(errs);
        // Every live flow ends: outside the lock (the table is moved out; nothing is ingested
        // any more), the records taken in a piece at a time, then the final join's input.
        let (mut flows, mut tap) = {
            let mut t = self.lock();
            t.input_done = true;
            let empty = Flows::new(FlowConfig { max_flows: 1, ..FlowConfig::default() });
            (std::mem::replace(&mut t.flows, empty), std::mem::take(&mut t.tap))
        };
        flows.finish(&mut tap);
        let mut ended = std::mem::take(&mut tap.ended);
        {
            let mut t = self.lock();
            t.flows = flows;
            t.tap = tap;
        }
        while !ended.is_empty() {
            let rest = ended.split_off(ended.len().min(JOIN_PIECE));
            let mut t = self.lock();
            t.tap.ended = std::mem::replace(&mut ended, rest);
            let ts = t.clock.unwrap_or(Timestamp { sec: 0, nsec: 0 });
            t.after_flows(ts);
            t.dirty = true;
        }
        let input = self.join_input_in_pieces(true);
        self.done.store(true, Ordering::Release);
        if let Some(input) = input {
            let j = Joined::build(input);
            let old = self.lock().set_joined(j);
            drop(old);
        }
    }

    /// The join input copied a piece ([`JOIN_PIECE`] observations) at a time, the lock
    /// released in between, so the UI's queries and the data thread never wait for a whole
    /// copy (at 100k flows, 1.3 KiB of features each, that took 70 ms and more). Flows that
    /// end or start meanwhile may be left out: they changed the table, so the next join has
    /// them. `None` when nothing changed (unless `force`: the final join).
    fn join_input_in_pieces(&self, force: bool) -> Option<JoinInput> {
        let mut input = self.lock().join_begin(force)?;
        let mut next = 0;
        loop {
            let t = self.lock();
            next = t.join_ended(&mut input, next, JOIN_PIECE);
            if next >= t.ended.len() {
                break;
            }
        }
        let mut slot = Some(0);
        while let Some(from) = slot {
            slot = self.lock().join_live(&mut input, from, JOIN_PIECE);
        }
        let covered = FrameTable::covered(&input);
        let mut group = 0;
        while let Some(g) = self.lock().join_loose_from(&mut input, &covered, group, JOIN_PIECE) {
            group = g;
        }
        Some(input)
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
        let mut s = t.snapshot_without_rows(generation);
        let joined = t.joined.clone();
        drop(t);
        // 100k rows take milliseconds to copy: not under the lock.
        s.paths = joined.rows.clone();
        drop(joined);
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

}
