//! [`FlowTable`]: the live flows, their expiry, the flow cap and port reuse. See the module
//! docs of `crate::flow` for the contract.
//!
//! Storage: a slab of flows (`Vec<Option<Flow>>` plus a free list), a hash index from
//! [`FlowKey`] to slot, and a min-heap of `(deadline, slot, id)` entries. The joiner's
//! features (when [`FlowConfig::features`]) live in a second vector indexed by slot, not in a
//! box per flow: a slot's features are rewritten when the slot is reused, and an ended flow's
//! are lent to [`FlowObserver::flow_ended`] (the report copies them into its batch's block),
//! so no flow costs an allocation or a free for them.
//!
//! Heap invariant: every live flow has exactly one *current* entry, the one whose deadline
//! equals the flow's `queued` field, and `queued <= ` the flow's real deadline (last packet
//! plus its state's timeout). A packet can only move the real deadline later, except when a
//! state change shortens the timeout: then a new entry is pushed and `queued` lowered. Other
//! entries are stale and skipped when popped. So popping entries in order and re-queueing
//! those whose flow was active since finds expired flows in deadline order, and the first
//! current entry whose deadline is real is the flow closest to expiry (the eviction victim).
//! The heap is rebuilt when stale entries outnumber live flows.

use super::analysis::{SegmentFacts, TcpAnalysis};
use super::conn_state::{ConnState, History, TcpEndpoints};
use super::key::{Endpoint, FlowKey, Proto, Side, destination_is_server, icmp_ports};
use super::stream::{ReassemblyParams, TcpStreams};
use super::{AuxBudget, EndReason, FlowConfig, FlowInfo, FlowObserver, FlowRecord, Nanos, TcpRecord};
use crate::capture::{Frame, Points};
use crate::decode::{Ip, Tcp, Transport, Udp, decode};
use crate::join::ObservationFeatures;
use crate::reassembly::{Budget, Counters, Direction, Event, Segment, TcpFlags};
use crate::seq::SeqNum;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

/// Global counters of a [`FlowTable`]: every frame and every byte not delivered shows up in
/// one of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FlowTableStats {
    pub frames: u64,
    /// Frames without an IPv4/IPv6 header (ARP, unknown link types, garbage).
    pub not_ip: u64,
    /// IP fragments (not reassembled; a first fragment's transport header is not read).
    pub fragments: u64,
    /// IP packets of other protocols, or with a transport header cut short.
    pub other_proto: u64,
    pub tcp_packets: u64,
    pub udp_packets: u64,
    pub icmp_packets: u64,
    pub flows_created: u64,
    pub flows_active: u64,
    pub flows_active_peak: u64,
    pub flows_idle: u64,
    /// Flows evicted by the flow cap.
    pub flows_evicted: u64,
    /// Flows ended by a new connection on their tuple.
    pub flows_reused: u64,
    pub flows_at_eof: u64,
    /// Reassembly totals over ended flows (see `reassembly::Counters`).
    pub stream_delivered_bytes: u64,
    pub stream_gaps: u64,
    pub stream_gap_bytes: u64,
    pub stream_overlaps: u64,
    pub stream_conflicting_overlaps: u64,
    pub stream_conflicting_bytes: u64,
    pub stream_retransmitted_bytes: u64,
    pub stream_out_of_order_bytes: u64,
    pub stream_cap_skips: u64,
    pub stream_budget_skips: u64,
    pub stream_keep_alives: u64,
    pub stream_before_start_bytes: u64,
    pub stream_after_close_bytes: u64,
    pub stream_out_of_window_bytes: u64,
    /// The shared reassembly budget: limit, most held at once (sampled per segment), refusals.
    pub reassembly_memory_limit: u64,
    pub reassembly_memory_peak: u64,
    pub reassembly_budget_refusals: u64,
    /// Side tables (RTT segments, gap lists): limit, peak, refusals.
    pub aux_memory_limit: u64,
    pub aux_memory_peak: u64,
    pub aux_refusals: u64,
    /// Segments without an RTT sample because they were not remembered.
    pub rtt_untracked: u64,
    pub gaps_unlisted: u64,
    pub history_truncated: u64,
}

impl FlowTableStats {
    fn add_stream(&mut self, c: &Counters) {
        self.stream_delivered_bytes += c.delivered_bytes;
        self.stream_gaps += c.gaps;
        self.stream_gap_bytes += c.gap_bytes;
        self.stream_overlaps += c.overlaps;
        self.stream_conflicting_overlaps += c.conflicting_overlaps;
        self.stream_conflicting_bytes += c.conflicting_bytes;
        self.stream_retransmitted_bytes += c.retransmitted_bytes;
        self.stream_out_of_order_bytes += c.out_of_order_bytes;
        self.stream_cap_skips += c.cap_skips;
        self.stream_budget_skips += c.budget_skips;
        self.stream_keep_alives += c.keep_alives;
        self.stream_before_start_bytes += c.before_start_bytes;
        self.stream_after_close_bytes += c.after_close_bytes;
        self.stream_out_of_window_bytes += c.out_of_window_bytes;
    }
}

/// Per-direction traffic of a flow.
#[derive(Debug, Default, Clone, Copy)]
struct Traffic {
    packets: u64,
    bytes: u64,
}

/// TCP-only state of a flow.
#[derive(Debug, Default)]
struct TcpFlow {
    ends: TcpEndpoints,
    analysis: TcpAnalysis,
    streams: TcpStreams,
    /// Zeek's "last seq" per direction (highest segment end), for the `t` history letter.
    last_seq: [Option<SeqNum>; 2],
    /// Reassembly skips already reflected in the history (`x`).
    skips: [u64; 2],
}

#[derive(Debug)]
enum FlowState {
    Tcp(Box<TcpFlow>),
    /// UDP or ICMP: who sent anything.
    Datagram {
        sent: [bool; 2],
    },
}

/// One live observation.
#[derive(Debug)]
struct Flow {
    info: FlowInfo,
    key: FlowKey,
    /// Which side of the key is the client.
    client: Side,
    wants_payload: bool,
    traffic: [Traffic; 2],
    first: Nanos,
    last: Nanos,
    history: History,
    state: FlowState,
    /// Deadline of this flow's current heap entry.
    queued: Nanos,
    /// Whether the flow has the joiner's features (TCP and UDP flows, when
    /// [`FlowConfig::features`]): `FlowTable::features` at its slot.
    features: bool,
}

/// A heap entry: `(deadline, slot, flow id)`, smallest deadline first.
type Entry = Reverse<(i64, u32, u64)>;

/// What the allocator adds to every heap block (glibc: an 8-byte header, 16-byte alignment).
const ALLOC_OVERHEAD: usize = 16;

/// A heap block of `size` bytes as the allocator sees it.
const fn heap_block(size: usize) -> usize {
    (size + ALLOC_OVERHEAD).div_ceil(16) * 16
}

/// One live flow as [`FlowTable::live_flows_from`] lends it.
pub struct LiveFlow<'a> {
    pub slot: usize,
    pub id: u64,
    pub conn_state: ConnState,
    pub history: &'a str,
    pub features: Option<&'a ObservationFeatures>,
}

/// The flow table. Feed it frames with [`FlowTable::frame`], end with [`FlowTable::finish`].
pub struct FlowTable {
    config: FlowConfig,
    params: ReassemblyParams,
    aux: AuxBudget,
    index: HashMap<FlowKey, u32>,
    slab: Vec<Option<Flow>>,
    /// The joiner's features by slot (empty unless [`FlowConfig::features`]); meaningful for
    /// the live flows whose `features` is set.
    features: Vec<ObservationFeatures>,
    free: Vec<u32>,
    heap: BinaryHeap<Entry>,
    clock: Nanos,
    next_id: u64,
    labels: Vec<Arc<str>>,
    stats: FlowTableStats,
    /// The flow the latest frame was counted in and its direction (see [`FlowTable::last_flow`]).
    last: Option<(u64, u8)>,
}

impl FlowTable {
    /// An upper bound of the memory one live flow costs, outside the reassembly budget and
    /// the side-table budget (which account for themselves): its slab slot, the boxed TCP
    /// state and a reassembler (created on the first payload; counted for every flow), its
    /// share of the hash index (at most 16/7 buckets per flow: load factor 7/8, and up to half
    /// the buckets of a power-of-two table unused), up to two deadline-heap entries (the
    /// heap is rebuilt beyond that), and its free-list slot. [`crate::limits`] divides the
    /// flow table's share of `--max-memory` by this to get the flow cap.
    pub const BYTES_PER_FLOW: usize = std::mem::size_of::<Option<Flow>>()
        + heap_block(std::mem::size_of::<TcpFlow>())
        + heap_block(std::mem::size_of::<crate::reassembly::Conversation>())
        + (std::mem::size_of::<(FlowKey, u32)>() + 1) * 16 / 7
        + 2 * std::mem::size_of::<Entry>()
        + std::mem::size_of::<u32>();

    /// What the joiner's features add to a TCP or UDP flow when [`FlowConfig::features`] is
    /// on, an upper bound: its slot in the features vector (fixed size; the flow table never
    /// sets their socket owners, the only part on the heap, since live owners reach the
    /// joiner as evidence), or its entry in a batch of ended records (the report counts
    /// this much per record with features).
    pub const FEATURES_BYTES: usize = heap_block(std::mem::size_of::<ObservationFeatures>());

    pub fn new(config: FlowConfig) -> FlowTable {
        let budget = Budget::new(config.reassembly_memory);
        let params = ReassemblyParams { config: config.reassembly, budget };
        let aux = AuxBudget::new(config.aux_memory);
        // Reserved up front (when asked) so the index never rehashes into a second table and
        // no vector doubles past what the cap needs; untouched pages cost no resident memory.
        let reserve = config.reserve_flows.min(config.max_flows);
        FlowTable {
            params,
            aux,
            index: HashMap::with_capacity(reserve),
            slab: Vec::with_capacity(reserve),
            features: Vec::with_capacity(if config.features { reserve } else { 0 }),
            free: Vec::new(),
            heap: BinaryHeap::with_capacity(if reserve > 0 { 2 * reserve + 4096 } else { 0 }),
            clock: Nanos(i64::MIN),
            next_id: 1,
            labels: Vec::new(),
            stats: FlowTableStats::default(),
            last: None,
            config,
        }
    }

    /// Counters so far (memory figures included).
    pub fn stats(&self) -> FlowTableStats {
        let mut s = self.stats.clone();
        s.reassembly_memory_limit = self.params.budget.limit() as u64;
        s.reassembly_budget_refusals = self.params.budget.refusals();
        s.aux_memory_limit = self.aux.limit() as u64;
        s.aux_memory_peak = self.aux.peak() as u64;
        s.aux_refusals = self.aux.refusals();
        s
    }

    /// Memory held now: `(reassembly budget in use, side tables in use)`. Both are 0 once
    /// every flow ended.
    pub fn memory_in_use(&self) -> (usize, usize) {
        (self.params.budget.used(), self.aux.used())
    }

    /// The joiner's features of every live flow, `(flow id, features)` in slot order, lent
    /// for a snapshot join (an ended flow lends its own to [`FlowObserver::flow_ended`]).
    pub fn live_features(&self) -> impl Iterator<Item = (u64, &ObservationFeatures)> + '_ {
        self.live_flows_from(0).filter_map(|f| f.features.map(|x| (f.id, x)))
    }

    /// The flow the latest frame given to [`FlowTable::frame`] was counted in, and its
    /// direction (0 client -> server, 1 server -> client); `None` when it was in none (not
    /// IP, a fragment, another protocol). Lets a caller key what it keeps per frame by the
    /// observation (flow id), not by the tuple (which a new connection may reuse).
    pub fn last_flow(&self) -> Option<(u64, u8)> {
        self.last
    }

    /// Every live flow from slab slot `from` on, in slot order: its id, the conn_state and
    /// history its record would carry if it ended now (streams not flushed), and its joiner
    /// features. The slot lets a caller copy the table a piece at a time (a flow stays in
    /// its slot while it lives).
    pub fn live_flows_from(&self, from: usize) -> impl Iterator<Item = LiveFlow<'_>> + '_ {
        self.slab.iter().enumerate().skip(from).filter_map(|(slot, f)| {
            let f = f.as_ref()?;
            Some(LiveFlow {
                slot,
                id: f.info.id,
                conn_state: f.conn_state_now(),
                history: f.history.as_str(),
                features: if f.features { self.features.get(slot) } else { None },
            })
        })
    }

    /// The record live flow `id` would end with now (not flushed, `end: eof`, no features);
    /// `None` when it is not live. A scan of the live flows.
    pub fn peek(&self, id: u64) -> Option<FlowRecord> {
        let f = self.slab.iter().flatten().find(|f| f.info.id == id)?;
        let tcp = match &f.state {
            FlowState::Tcp(tcp) => {
                let isn = tcp.streams.isn();
                Some(Box::new(TcpRecord {
                    state: [tcp.ends.orig(), tcp.ends.resp()],
                    isn: [isn[0].map(SeqNum::get), isn[1].map(SeqNum::get)],
                    stream: tcp.streams.counters(),
                    gaps: tcp.streams.gaps.clone(),
                    analysis: tcp.analysis.counters,
                    rtt: tcp.analysis.rtt,
                }))
            }
            FlowState::Datagram { .. } => None,
        };
        Some(FlowRecord {
            info: f.info.clone(),
            packets: [f.traffic[0].packets, f.traffic[1].packets],
            bytes: [f.traffic[0].bytes, f.traffic[1].bytes],
            first: f.first,
            last: f.last,
            conn_state: f.conn_state_now(),
            history: f.history.as_str().to_string(),
            end: EndReason::Eof,
            tcp,
        })
    }

    /// Live flows now.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// One captured frame. Expires flows idle at this frame's time first.
    pub fn frame(&mut self, frame: &Frame, points: &Points, obs: &mut impl FlowObserver) {
        self.stats.frames += 1;
        self.last = None;
        let now = Nanos::from(frame.ts);
        self.advance(now, obs);
        let decoded = decode(frame.linktype, &frame.data);
        let Some(ip) = decoded.ip else {
            self.stats.not_ip += 1;
            return;
        };
        if ip.fragmented {
            self.stats.fragments += 1;
            return;
        }
        let point = u32::try_from(frame.point).unwrap_or(u32::MAX);
        match decoded.transport {
            Transport::Tcp(t) => self.tcp(point, &ip, &t, now, frame, points, obs),
            Transport::Udp(u) => {
                self.stats.udp_packets += 1;
                let src = Endpoint::new(ip.src, u.sport);
                let dst = Endpoint::new(ip.dst, u.dport);
                let dst_server = destination_is_server(u.sport, u.dport);
                let link = Some((&ip, &u, frame));
                self.datagram(
                    point,
                    Proto::Udp,
                    src,
                    dst,
                    dst_server,
                    u.payload_len,
                    u.payload,
                    now,
                    link,
                    points,
                    obs,
                );
            }
            Transport::Icmp { v6, kind, code } => {
                self.stats.icmp_packets += 1;
                let (sport, dport, originator) = icmp_ports(v6, kind, code);
                let src = Endpoint::new(ip.src, sport);
                let dst = Endpoint::new(ip.dst, dport);
                let proto = if v6 { Proto::Icmp6 } else { Proto::Icmp };
                self.datagram(point, proto, src, dst, originator, 0, &[], now, None, points, obs);
            }
            Transport::Other { .. } | Transport::None => self.stats.other_proto += 1,
        }
    }

    /// End of input: every live flow ends (`eof`), in id order.
    pub fn finish(&mut self, obs: &mut impl FlowObserver) {
        let mut live: Vec<(u64, u32)> =
            self.slab.iter().enumerate().filter_map(|(i, f)| f.as_ref().map(|f| (f.info.id, i as u32))).collect();
        live.sort_unstable();
        for (_, slot) in live {
            self.end(slot, EndReason::Eof, obs);
        }
        self.heap.clear();
    }

    fn label(&mut self, point: u32, points: &Points) -> Arc<str> {
        let i = point as usize;
        while self.labels.len() <= i {
            let n = self.labels.len();
            let label = points.get(n).map_or_else(|| format!("point{n}"), |p| p.label.clone());
            self.labels.push(Arc::from(label));
        }
        self.labels[i].clone()
    }

    #[allow(clippy::too_many_arguments)]
    fn tcp(
        &mut self,
        point: u32,
        ip: &Ip,
        t: &Tcp<'_>,
        now: Nanos,
        frame: &Frame,
        points: &Points,
        obs: &mut impl FlowObserver,
    ) {
        self.stats.tcp_packets += 1;
        let src = Endpoint::new(ip.src, t.sport);
        let dst = Endpoint::new(ip.dst, t.dport);
        let (key, side) = FlowKey::of_packet(point, Proto::Tcp, src, dst);
        let flags = TcpFlags((t.flags & 0xff) as u8);
        let existing = self.index.get(&key).copied();
        let slot = match existing {
            Some(slot) if !self.reuses(slot, side, flags, t.seq) => slot,
            _ => {
                if let Some(old) = existing {
                    self.end(old, EndReason::Reused, obs);
                }
                // Roles: from the SYN, else from the ports.
                let sender_is_client = if flags.syn() { !flags.ack() } else { destination_is_server(t.sport, t.dport) };
                let state = FlowState::Tcp(Box::default());
                self.create(key, side, sender_is_client, state, now, points, obs)
            }
        };
        let Self { slab, features, params, aux, stats, .. } = self;
        let Some(flow) = slab.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        let dir = if side == flow.client { 0 } else { 1 };
        self.last = Some((flow.info.id, dir as u8));
        let mut features = if flow.features { features.get_mut(slot as usize) } else { None };
        if let Some(f) = features.as_deref_mut() {
            f.on_link(direction(dir), frame.linktype, &frame.data);
            f.on_tcp(direction(dir), now, ip, t);
        }
        flow.tcp_packet(dir, t, flags, now, params, aux, features, obs);
        stats.reassembly_memory_peak = stats.reassembly_memory_peak.max(params.budget.used() as u64);
        self.touch(slot);
    }

    /// Whether a SYN on the flow in `slot` starts a new connection on its tuple.
    fn reuses(&self, slot: u32, side: Side, flags: TcpFlags, seq: u32) -> bool {
        if !flags.syn() || flags.ack() {
            return false;
        }
        let Some(flow) = self.slab.get(slot as usize).and_then(Option::as_ref) else {
            return false;
        };
        let FlowState::Tcp(tcp) = &flow.state else {
            return false;
        };
        let dir = if side == flow.client { 0 } else { 1 };
        if tcp.streams.isn()[dir] == Some(SeqNum(seq)) {
            return false; // a retransmitted SYN
        }
        tcp.ends.finished() || tcp.ends.attempt()
    }

    #[allow(clippy::too_many_arguments)]
    fn datagram(
        &mut self,
        point: u32,
        proto: Proto,
        src: Endpoint,
        dst: Endpoint,
        sender_is_client: bool,
        bytes: u32,
        payload: &[u8],
        now: Nanos,
        link: Option<(&Ip, &Udp<'_>, &Frame)>,
        points: &Points,
        obs: &mut impl FlowObserver,
    ) {
        let (key, side) = FlowKey::of_packet(point, proto, src, dst);
        let slot = match self.index.get(&key).copied() {
            Some(slot) => slot,
            None => {
                let state = FlowState::Datagram { sent: [false; 2] };
                self.create(key, side, sender_is_client, state, now, points, obs)
            }
        };
        let Some(flow) = self.slab.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        let dir = if side == flow.client { 0 } else { 1 };
        self.last = Some((flow.info.id, dir as u8));
        let features = if flow.features { self.features.get_mut(slot as usize) } else { None };
        if let (Some(f), Some((ip, u, frame))) = (features, link) {
            f.on_link(direction(dir), frame.linktype, &frame.data);
            f.on_udp(direction(dir), now, ip, u);
        }
        flow.count(dir, bytes, now);
        if let FlowState::Datagram { sent } = &mut flow.state {
            sent[dir] = true;
        }
        if proto == Proto::Udp {
            flow.history.datagram(dir == 0);
            if flow.wants_payload {
                obs.datagram(&flow.info, direction(dir), payload);
            }
        }
        self.touch(slot);
    }

    /// A new flow for `key`, whose first packet came from `side`.
    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        key: FlowKey,
        side: Side,
        sender_is_client: bool,
        state: FlowState,
        now: Nanos,
        points: &Points,
        obs: &mut impl FlowObserver,
    ) -> u32 {
        while self.index.len() >= self.config.max_flows.max(1) {
            if !self.evict_one(obs) {
                break;
            }
        }
        let other = match side {
            Side::Lo => Side::Hi,
            Side::Hi => Side::Lo,
        };
        let client = if sender_is_client { side } else { other };
        let server = if sender_is_client { other } else { side };
        let id = self.next_id;
        self.next_id += 1;
        let info = FlowInfo {
            id,
            point_index: key.point,
            point: self.label(key.point, points),
            proto: key.proto,
            client: key.endpoint(client),
            server: key.endpoint(server),
        };
        let features = (self.config.features && matches!(key.proto, Proto::Tcp | Proto::Udp)).then(|| {
            let proto = if key.proto == Proto::Tcp { crate::join::Proto::Tcp } else { crate::join::Proto::Udp };
            let addr = |e: super::Endpoint| std::net::SocketAddr::new(e.addr, e.port);
            ObservationFeatures::new(key.point, proto, addr(info.client), addr(info.server))
        });
        let wants_payload = obs.wants_payload(&info);
        let mut history = History::default();
        if !sender_is_client {
            history.flipped();
        }
        let mut flow = Flow {
            info,
            key,
            client,
            wants_payload,
            traffic: [Traffic::default(); 2],
            first: now,
            last: now,
            history,
            state,
            queued: Nanos(0),
            features: features.is_some(),
        };
        let deadline = flow.deadline(&self.config);
        flow.queued = deadline;
        // A freed slot (always inside the slab), else a new one at the end.
        let slot = match self.free.pop().and_then(|slot| self.slab.get_mut(slot as usize).map(|s| (slot, s))) {
            Some((slot, place)) => {
                *place = Some(flow);
                slot
            }
            None => {
                self.slab.push(Some(flow));
                (self.slab.len() - 1) as u32
            }
        };
        if let Some(f) = features {
            match self.features.get_mut(slot as usize) {
                Some(place) => *place = f,
                None => {
                    // A new slot, at or past the end (slots of flows without features stay
                    // as placeholders).
                    self.features.resize(slot as usize, f.clone());
                    self.features.push(f);
                }
            }
        }
        self.index.insert(key, slot);
        self.heap.push(Reverse((deadline.0, slot, id)));
        self.stats.flows_created += 1;
        self.stats.flows_active = self.index.len() as u64;
        self.stats.flows_active_peak = self.stats.flows_active_peak.max(self.stats.flows_active);
        slot
    }

    /// After a packet: queue an earlier deadline if the flow's timeout shrank.
    fn touch(&mut self, slot: u32) {
        let Some(flow) = self.slab.get_mut(slot as usize).and_then(Option::as_mut) else {
            return;
        };
        let real = flow.deadline(&self.config);
        if real < flow.queued {
            flow.queued = real;
            self.heap.push(Reverse((real.0, slot, flow.info.id)));
        }
        if self.heap.len() > 2 * self.index.len() + 4096 {
            self.rebuild_heap();
        }
    }

    fn rebuild_heap(&mut self) {
        let entries: Vec<Entry> = self
            .slab
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.as_ref().map(|f| Reverse((f.queued.0, i as u32, f.info.id))))
            .collect();
        self.heap = BinaryHeap::from(entries);
    }

    /// The flow a heap entry refers to, if the entry is its current one.
    fn current(&self, entry: (i64, u32, u64)) -> Option<&Flow> {
        let (deadline, slot, id) = entry;
        self.slab.get(slot as usize).and_then(Option::as_ref).filter(|f| f.info.id == id && f.queued.0 == deadline)
    }

    /// Moves the clock to `now` and ends every flow idle past its deadline.
    fn advance(&mut self, now: Nanos, obs: &mut impl FlowObserver) {
        if now > self.clock {
            self.clock = now;
        }
        while let Some(&Reverse(entry)) = self.heap.peek() {
            if entry.0 > self.clock.0 {
                break;
            }
            self.heap.pop();
            let Some(flow) = self.current(entry) else {
                continue;
            };
            let real = flow.deadline(&self.config);
            let slot = entry.1;
            if real <= self.clock {
                self.end(slot, EndReason::Idle, obs);
            } else {
                self.requeue(slot, real);
            }
        }
    }

    fn requeue(&mut self, slot: u32, deadline: Nanos) {
        if let Some(flow) = self.slab.get_mut(slot as usize).and_then(Option::as_mut) {
            flow.queued = deadline;
            self.heap.push(Reverse((deadline.0, slot, flow.info.id)));
        }
    }

    /// Ends the live flow closest to expiry. False if there is none.
    fn evict_one(&mut self, obs: &mut impl FlowObserver) -> bool {
        while let Some(Reverse(entry)) = self.heap.pop() {
            let Some(flow) = self.current(entry) else {
                continue;
            };
            let real = flow.deadline(&self.config);
            if real.0 > entry.0 {
                self.requeue(entry.1, real);
                continue;
            }
            self.end(entry.1, EndReason::Evicted, obs);
            return true;
        }
        // No entries left but flows remain (cannot happen while the invariant holds).
        if !self.index.is_empty() {
            self.rebuild_heap();
            return !self.heap.is_empty() && self.evict_one(obs);
        }
        false
    }

    /// Ends the flow in `slot`: flushes its streams, emits its record, frees its memory.
    fn end(&mut self, slot: u32, reason: EndReason, obs: &mut impl FlowObserver) {
        let Some(mut flow) = self.slab.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        self.index.remove(&flow.key);
        self.free.push(slot);
        match reason {
            EndReason::Eof => self.stats.flows_at_eof += 1,
            EndReason::Idle => self.stats.flows_idle += 1,
            EndReason::Evicted => self.stats.flows_evicted += 1,
            EndReason::Reused => self.stats.flows_reused += 1,
        }
        self.stats.flows_active = self.index.len() as u64;
        let mut features = if flow.features { self.features.get_mut(slot as usize) } else { None };
        let record = flow.finish(reason, &mut self.aux, features.as_deref_mut(), obs);
        if let Some(tcp) = &record.tcp {
            for c in &tcp.stream {
                self.stats.add_stream(c);
            }
            self.stats.gaps_unlisted += u64::from(tcp.gaps[0].unlisted) + u64::from(tcp.gaps[1].unlisted);
        }
        if let FlowState::Tcp(tcp) = &flow.state {
            self.stats.rtt_untracked += u64::from(tcp.analysis.rtt_untracked);
        }
        self.stats.history_truncated += u64::from(flow.history.truncated);
        obs.flow_ended(record, features.as_deref());
    }
}

const fn direction(dir: usize) -> Direction {
    if dir == 0 { Direction::ClientToServer } else { Direction::ServerToClient }
}

impl Flow {
    /// The conn_state the flow's record would carry if it ended now.
    fn conn_state_now(&self) -> ConnState {
        match &self.state {
            FlowState::Tcp(tcp) => {
                ConnState::tcp(&tcp.ends, [self.traffic[0].bytes, self.traffic[1].bytes], &self.history)
            }
            FlowState::Datagram { .. } if self.info.proto != Proto::Udp => ConnState::OTH,
            FlowState::Datagram { sent } => ConnState::datagram(*sent),
        }
    }

    fn count(&mut self, dir: usize, bytes: u32, now: Nanos) {
        let t = &mut self.traffic[dir];
        t.packets += 1;
        t.bytes += u64::from(bytes);
        if now > self.last {
            self.last = now;
        }
        if now < self.first {
            self.first = now;
        }
    }

    /// Last packet plus the timeout of the flow's current state.
    fn deadline(&self, config: &FlowConfig) -> Nanos {
        let timeout = match &self.state {
            FlowState::Tcp(tcp) if tcp.ends.finished() => config.tcp_closed_timeout,
            FlowState::Tcp(tcp) if tcp.ends.attempt() => config.tcp_attempt_timeout,
            FlowState::Tcp(_) => config.tcp_timeout,
            FlowState::Datagram { .. } if matches!(self.info.proto, Proto::Udp) => config.udp_timeout,
            FlowState::Datagram { .. } => config.icmp_timeout,
        };
        Nanos(self.last.0.saturating_add(timeout.0))
    }

    #[allow(clippy::too_many_arguments)]
    fn tcp_packet(
        &mut self,
        dir: usize,
        t: &Tcp<'_>,
        flags: TcpFlags,
        now: Nanos,
        params: &ReassemblyParams,
        aux: &mut AuxBudget,
        mut features: Option<&mut ObservationFeatures>,
        obs: &mut impl FlowObserver,
    ) {
        self.count(dir, t.payload_len, now);
        let Flow { info, history, state, wants_payload, .. } = self;
        let FlowState::Tcp(tcp) = state else { return };
        let from_orig = dir == 0;
        let len = t.payload_len;
        history.tcp_packet(from_orig, flags, t.seq, len);

        // Zeek: a payload that does not advance the highest sequence seen is a retransmission.
        let end = SeqNum(t.seq).add(len).add(u32::from(flags.syn())).add(u32::from(flags.fin()));
        match tcp.last_seq[dir] {
            None => tcp.last_seq[dir] = Some(end),
            Some(last) => {
                let delta = end.diff(last);
                if (flags.syn() || flags.rst()) && !(-16384..=16384).contains(&delta) {
                    tcp.last_seq[dir] = Some(end);
                } else if delta <= 0 && len > 0 {
                    history.retransmission(from_orig);
                } else if delta > 0 {
                    tcp.last_seq[dir] = Some(end);
                }
            }
        }

        tcp.ends.update(from_orig, flags, len);
        // Zeek: zero windows matter unless reset, or after the peer's FIN.
        let (me, peer) =
            if from_orig { (tcp.ends.orig(), tcp.ends.resp()) } else { (tcp.ends.resp(), tcp.ends.orig()) };
        if t.window == 0
            && !flags.rst()
            && peer != super::conn_state::EndpointState::Closed
            && me != super::conn_state::EndpointState::Reset
        {
            history.zero_window(from_orig);
        }

        let facts = SegmentFacts {
            seq: SeqNum(t.seq),
            ack: SeqNum(t.ack),
            len,
            flags,
            window: t.window,
            wscale: t.wscale,
            ts: now,
        };
        tcp.analysis.segment(dir, &facts, aux);

        let mut segment = Segment::new(SeqNum(t.seq), flags, t.payload);
        if flags.ack() {
            segment = segment.with_ack(SeqNum(t.ack));
        }
        let wants = *wants_payload;
        let info = &*info;
        let mut sink = |d: Direction, e: Event<'_>| {
            if let Event::Gap { .. } = e {
                history.gap(d == Direction::ClientToServer);
            }
            feed(&mut features, d, &e);
            if wants {
                obs.stream_event(info, d, &e);
            }
        };
        tcp.streams.segment(direction(dir), segment, params, aux, &mut sink);

        let counters = tcp.streams.counters();
        for (d, c) in counters.iter().enumerate() {
            let skips = c.cap_skips + c.budget_skips;
            if skips > tcp.skips[d] {
                tcp.skips[d] = skips;
                history.partial(d == 0);
            }
        }
    }

    /// Flushes the streams and builds the record.
    fn finish(
        &mut self,
        end: EndReason,
        aux: &mut AuxBudget,
        mut features: Option<&mut ObservationFeatures>,
        obs: &mut impl FlowObserver,
    ) -> FlowRecord {
        let sizes = [self.traffic[0].bytes, self.traffic[1].bytes];
        let Flow { info, history, state, wants_payload, .. } = self;
        let (conn_state, tcp_record) = match state {
            FlowState::Tcp(tcp) => {
                let wants = *wants_payload;
                let info = &*info;
                tcp.streams.flush(aux, &mut |d: Direction, e: Event<'_>| {
                    if let Event::Gap { .. } = e {
                        history.gap(d == Direction::ClientToServer);
                    }
                    feed(&mut features, d, &e);
                    if wants {
                        obs.stream_event(info, d, &e);
                    }
                });
                tcp.analysis.release(aux);
                tcp.streams.release(aux);
                let isn = tcp.streams.isn();
                let record = TcpRecord {
                    state: [tcp.ends.orig(), tcp.ends.resp()],
                    isn: [isn[0].map(SeqNum::get), isn[1].map(SeqNum::get)],
                    stream: tcp.streams.counters(),
                    gaps: std::mem::take(&mut tcp.streams.gaps),
                    analysis: tcp.analysis.counters,
                    rtt: tcp.analysis.rtt,
                };
                (ConnState::tcp(&tcp.ends, sizes, history), Some(Box::new(record)))
            }
            // Zeek's conn_state is OTH for every ICMP flow.
            FlowState::Datagram { .. } if info.proto != Proto::Udp => (ConnState::OTH, None),
            FlowState::Datagram { sent } => (ConnState::datagram(*sent), None),
        };
        FlowRecord {
            info: self.info.clone(),
            packets: [self.traffic[0].packets, self.traffic[1].packets],
            bytes: sizes,
            first: self.first,
            last: self.last,
            conn_state,
            history: self.history.as_str().to_string(),
            end,
            tcp: tcp_record,
        }
    }
}

/// A reassembly event to the joiner's digests (Data and Gap; the others carry nothing it uses).
fn feed(features: &mut Option<&mut ObservationFeatures>, d: Direction, e: &Event<'_>) {
    let Some(f) = features.as_deref_mut() else {
        return;
    };
    match e {
        Event::Data { offset, bytes } => f.on_stream_data(d, *offset, bytes),
        Event::Gap { offset, .. } => f.on_stream_gap(d, *offset),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{Point, Timestamp};
    use etherparse::PacketBuilder;

    fn points() -> Points {
        let mut p = Points::default();
        p.add(Point { label: "a".into(), linktype: 1, snaplen: 262144, nano: false });
        p.add(Point { label: "b".into(), linktype: 1, snaplen: 262144, nano: false });
        p
    }

    /// An Ethernet TCP frame at `t` ms.
    #[allow(clippy::too_many_arguments)]
    fn tcp(
        point: usize,
        t: i64,
        src: ([u8; 4], u16),
        dst: ([u8; 4], u16),
        seq: u32,
        ack: Option<u32>,
        flags: u8,
        payload: &[u8],
    ) -> Frame {
        let mut b = PacketBuilder::ethernet2([1; 6], [2; 6]).ipv4(src.0, dst.0, 64).tcp(src.1, dst.1, seq, 65000);
        if flags & 0x02 != 0 {
            b = b.syn();
        }
        if flags & 0x01 != 0 {
            b = b.fin();
        }
        if flags & 0x04 != 0 {
            b = b.rst();
        }
        if flags & 0x08 != 0 {
            b = b.psh();
        }
        if let Some(a) = ack {
            b = b.ack(a);
        }
        let mut data = Vec::new();
        b.write(&mut data, payload).unwrap();
        Frame {
            point,
            ts: Timestamp { sec: t.div_euclid(1000), nsec: (t.rem_euclid(1000) * 1_000_000) as u64 },
            linktype: 1,
            origlen: data.len() as u32,
            data,
            direction: Default::default(),
        }
    }

    const C: ([u8; 4], u16) = ([10, 0, 0, 1], 40000);
    const S: ([u8; 4], u16) = ([10, 0, 0, 2], 80);

    fn connection(point: usize, t0: i64, isn: u32) -> Vec<Frame> {
        vec![
            tcp(point, t0, C, S, isn, None, 0x02, b""),
            tcp(point, t0 + 1, S, C, 900, Some(isn + 1), 0x02, b""),
            tcp(point, t0 + 2, C, S, isn + 1, Some(901), 0, b""),
            tcp(point, t0 + 3, C, S, isn + 1, Some(901), 0x08, b"hello"),
            tcp(point, t0 + 4, S, C, 901, Some(isn + 6), 0x08, b"world!"),
            tcp(point, t0 + 5, C, S, isn + 6, Some(907), 0x01, b""),
            tcp(point, t0 + 6, S, C, 907, Some(isn + 7), 0x01, b""),
            tcp(point, t0 + 7, C, S, isn + 7, Some(908), 0, b""),
        ]
    }

    fn run(table: &mut FlowTable, frames: &[Frame]) -> Vec<FlowRecord> {
        let p = points();
        let mut out = Vec::new();
        for f in frames {
            table.frame(f, &p, &mut out);
        }
        table.finish(&mut out);
        out
    }

    #[test]
    fn one_connection_one_record() {
        let mut table = FlowTable::new(FlowConfig::default());
        let out = run(&mut table, &connection(0, 1000, 100));
        assert_eq!(out.len(), 1);
        let r = &out[0];
        assert_eq!(r.info.client.to_string(), "10.0.0.1:40000");
        assert_eq!(r.info.server.to_string(), "10.0.0.2:80");
        assert_eq!(r.packets, [5, 3]);
        assert_eq!(r.bytes, [5, 6]);
        assert_eq!(r.conn_state, ConnState::SF);
        assert_eq!(r.history, "ShADdFf");
        let tcp = r.tcp.as_ref().unwrap();
        assert_eq!(tcp.isn, [Some(100), Some(900)]);
        assert_eq!(tcp.stream[0].delivered_bytes, 5);
        assert_eq!(tcp.stream[1].delivered_bytes, 6);
        assert_eq!(tcp.analysis, Default::default());
        assert_eq!(r.end, EndReason::Eof);
    }

    #[test]
    fn the_same_packets_at_two_points_are_two_observations() {
        let mut frames = connection(0, 1000, 100);
        frames.extend(connection(1, 1000, 100));
        frames.sort_by_key(|f| (f.ts, f.point));
        let mut table = FlowTable::new(FlowConfig::default());
        let out = run(&mut table, &frames);
        assert_eq!(out.len(), 2);
        for r in &out {
            let tcp = r.tcp.as_ref().unwrap();
            assert_eq!(tcp.analysis, Default::default(), "no retransmissions at {}", r.info.point);
            assert_eq!(tcp.stream[0].retransmitted_bytes, 0);
            assert_eq!(r.history, "ShADdFf");
        }
        assert_ne!(out[0].info.point, out[1].info.point);
    }

    #[test]
    fn port_reuse_starts_a_new_flow_and_idle_flows_expire() {
        let mut frames = connection(0, 1000, 100);
        frames.extend(connection(0, 3000, 7777)); // same tuple, new ISN, after close
        frames.extend(connection(0, 1_000_000, 5)); // long after: the second expired idle
        let mut table = FlowTable::new(FlowConfig::default());
        let out = run(&mut table, &frames);
        let ids: Vec<(u64, EndReason)> = out.iter().map(|r| (r.info.id, r.end)).collect();
        assert_eq!(ids, vec![(1, EndReason::Reused), (2, EndReason::Idle), (3, EndReason::Eof)]);
        assert_eq!(table.stats().flows_reused, 1);
    }

    #[test]
    fn the_cap_evicts_the_least_recently_active() {
        let config = FlowConfig { max_flows: 2, ..FlowConfig::default() };
        let mut table = FlowTable::new(config);
        let s = |port: u16, t: i64| tcp(0, t, ([10, 0, 0, 9], port), S, 1, None, 0x02, b"");
        let frames = vec![s(1001, 0), s(1002, 10), s(1001, 20), s(1003, 30)];
        let out = run(&mut table, &frames);
        // 1002 was idle longest when 1003 came.
        assert_eq!(out[0].info.client.port, 1002);
        assert_eq!(out[0].end, EndReason::Evicted);
        assert_eq!(table.stats().flows_evicted, 1);
        assert_eq!(table.stats().flows_active_peak, 2);
    }

    #[test]
    fn midstream_roles_and_flip() {
        let mut table = FlowTable::new(FlowConfig::default());
        // First packet from the server (port 80): the client is the other side, history '^'.
        let frames = vec![tcp(0, 0, S, C, 900, Some(105), 0x08, b"data"), tcp(0, 1, C, S, 105, Some(904), 0, b"")];
        let out = run(&mut table, &frames);
        assert_eq!(out[0].info.client.port, 40000);
        assert_eq!(out[0].history, "^dA");
        assert_eq!(out[0].conn_state, ConnState::OTH);
    }

    #[test]
    fn garbage_frames_are_counted() {
        let mut table = FlowTable::new(FlowConfig::default());
        let mut f = tcp(0, 0, C, S, 1, None, 0x02, b"");
        f.data.truncate(20);
        let p = points();
        let mut out = Vec::new();
        table.frame(&f, &p, &mut out);
        f.data = vec![0xff; 3];
        table.frame(&f, &p, &mut out);
        let s = table.stats();
        assert_eq!(s.frames, 2);
        assert_eq!(s.not_ip + s.other_proto, 2);
    }
}
