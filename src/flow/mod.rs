//! The flow table: every TCP, UDP and ICMP conversation seen at each capture point (an
//! *observation*, DESIGN.md), with Zeek's `conn_state`/`history`, Wireshark's TCP analysis,
//! and exact reassembly of every TCP stream.
//!
//! ```text
//! Frame -> decode -> FlowKey (point, proto, endpoints) -> Flow
//!                                         |- per direction: packets, payload bytes, first/last
//!                                         |- TcpEndpoints + History (Zeek)     conn_state.rs
//!                                         |- TcpAnalysis (Wireshark)           analysis.rs
//!                                         '- TcpStreams -> reassembly::Conversation  stream.rs
//!                                                  | Data / Gap / Overlap / Closed
//!                                                  v
//!                                   FlowObserver (report/: --follow, --streams)
//! idle expiry, flow cap, port reuse -> FlowRecord -> FlowObserver::flow_ended (--flows)
//! ```
//!
//! # Contract
//!
//! - **Flows are per capture point.** The key includes the point, so the same packet seen at
//!   two points makes two observations; it is never a retransmission of itself.
//! - **Roles.** The client is the sender of a SYN without ACK (the receiver of a SYN/ACK seen
//!   first). Otherwise (midstream TCP, UDP) a well-known port (< 1024), or else a port below
//!   the ephemeral range (32768) against one inside it, is the server's; failing that the
//!   first packet's sender is the client. ICMP request/reply pairs make one flow whose client
//!   is the requester (Zeek's ICMP "ports": type and code). Roles decided against the first
//!   packet's direction start the history with `^`.
//! - **Clock.** Time is the packets' timestamps (never the wall clock), so offline and live
//!   input behave the same. The table's clock is the largest timestamp seen; a flow expires
//!   when the clock passes its last packet plus its timeout ([`FlowConfig`]: TCP 300 s
//!   established, 30 s for an unanswered attempt, 10 s once closed or reset; UDP and ICMP
//!   60 s). Expiry is checked on every frame in deadline order (a heap with lazy deletion:
//!   O(log n) per flow per timeout period).
//! - **Port reuse.** A SYN without ACK whose sequence number is not the known ISN of its
//!   direction, on a flow that is finished (both FINs, or a RST) or only an unanswered
//!   attempt, ends that flow (`end: "reused"`) and starts a new one with a new id.
//! - **Caps, all counted.** At most [`FlowConfig::max_flows`] live flows: a new flow evicts
//!   the one closest to expiry (exactly: least recently active relative to its timeout),
//!   `flows_evicted`. A live flow costs at most [`FlowTable::BYTES_PER_FLOW`] outside the two
//!   budgets below, which is how `--max-memory` turns memory into a flow cap
//!   (`crate::limits`); side-table memory is charged by allocation size (capacity plus the
//!   allocator's header), so the budgets say what the allocator holds. Reassembly memory is
//!   bounded per direction ([`Config::max_buffered`](crate::reassembly::Config)) and
//!   globally (one shared [`Budget`]); see `crate::reassembly` for what a cap does to a
//!   stream (a declared gap, never silent loss). Per-flow side tables (unacknowledged
//!   segments for RTTs, gap lists) draw from one [`AuxBudget`]; what does not fit is counted,
//!   not stored. History strings are capped at 32 letters.
//! - **Nothing panics, nothing stops.** A frame that does not decode, a fragment, an unknown
//!   protocol: counted in [`FlowTableStats`], and the next frame is processed.
//! - **IDs.** Flows are numbered from 1 in the order they are created (the order of their
//!   first packet after filtering), so the same input and options give the same ids (what
//!   `--follow ID` relies on).
//! - **Bytes** are payload bytes on the wire (TCP: IP length minus headers, including
//!   retransmissions; UDP: datagram payload). ICMP flows count packets only (bytes 0).

pub mod analysis;
pub mod conn_state;
pub mod key;
pub mod stream;
mod table;

pub use analysis::{AnalysisCounters, Rtt, RttStats};
pub use conn_state::{ConnState, EndpointState, History};
pub use key::{Endpoint, FlowKey, Proto};
pub use stream::GapList;
pub use table::{FlowTable, FlowTableStats, LiveFlow};

use crate::capture::Timestamp;
use crate::reassembly::{Budget, Config, Counters, Direction, Event};
use std::sync::Arc;

/// A point in packet time: nanoseconds since the UNIX epoch (saturating; years 1678-2262).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Nanos(pub i64);

impl Nanos {
    pub const fn from_secs(secs: i64) -> Nanos {
        Nanos(secs.saturating_mul(1_000_000_000))
    }

    /// Seconds as a float (JSON's `UNIX_S`).
    pub fn as_secs_f64(self) -> f64 {
        self.0.div_euclid(1_000_000_000) as f64 + self.0.rem_euclid(1_000_000_000) as f64 / 1e9
    }
}

impl From<Timestamp> for Nanos {
    fn from(ts: Timestamp) -> Nanos {
        let frac = i64::try_from(ts.nsec).unwrap_or(i64::MAX);
        Nanos(ts.sec.saturating_mul(1_000_000_000).saturating_add(frac))
    }
}

/// A byte budget for the flow table's side tables (remembered segments, gap lists): what
/// does not fit is refused and counted by the caller. Single-threaded (the table's owner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuxBudget {
    limit: usize,
    used: usize,
    peak: usize,
    refusals: u64,
}

impl AuxBudget {
    pub const fn new(limit: usize) -> AuxBudget {
        AuxBudget { limit, used: 0, peak: 0, refusals: 0 }
    }

    /// Takes `bytes` if they fit.
    pub fn reserve(&mut self, bytes: usize) -> bool {
        match self.used.checked_add(bytes) {
            Some(total) if total <= self.limit => {
                self.used = total;
                self.peak = self.peak.max(total);
                true
            }
            _ => {
                self.refusals += 1;
                false
            }
        }
    }

    pub fn release(&mut self, bytes: usize) {
        self.used = self.used.saturating_sub(bytes);
    }

    pub fn used(&self) -> usize {
        self.used
    }
    pub fn peak(&self) -> usize {
        self.peak
    }
    pub fn limit(&self) -> usize {
        self.limit
    }
    pub fn refusals(&self) -> u64 {
        self.refusals
    }
}

/// Limits and timeouts of a [`FlowTable`].
#[derive(Debug, Clone)]
pub struct FlowConfig {
    /// Most live flows; a new one beyond it evicts the flow closest to expiry.
    pub max_flows: usize,
    /// Idle timeout of an established (or midstream) TCP flow.
    pub tcp_timeout: Nanos,
    /// Idle timeout of a TCP flow with only the originator's SYN(s).
    pub tcp_attempt_timeout: Nanos,
    /// Idle timeout of a TCP flow closed by FINs both ways or reset.
    pub tcp_closed_timeout: Nanos,
    pub udp_timeout: Nanos,
    pub icmp_timeout: Nanos,
    /// Per-direction reassembly settings.
    pub reassembly: Config,
    /// Global reassembly memory (the shared [`Budget`]).
    pub reassembly_memory: usize,
    /// Memory for side tables (remembered segments for RTTs, gap lists).
    pub aux_memory: usize,
    /// Flows to reserve room for up front (0: grow on demand). At most `max_flows` is used.
    pub reserve_flows: usize,
    /// Keep an [`ObservationFeatures`](crate::join::ObservationFeatures) per TCP and UDP
    /// flow for the joiner ([`FlowTable::FEATURES_BYTES`] each, fixed; bounded with the
    /// flows by `max_flows`), lent with each ended flow's record to
    /// [`FlowObserver::flow_ended`] and from live flows by [`FlowTable::live_features`].
    pub features: bool,
}

impl FlowConfig {
    pub const DEFAULT_MAX_FLOWS: usize = 1 << 18;
    pub const DEFAULT_TCP_TIMEOUT_SECS: i64 = 300;
    pub const DEFAULT_AUX_MEMORY: usize = 64 << 20;
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            max_flows: FlowConfig::DEFAULT_MAX_FLOWS,
            tcp_timeout: Nanos::from_secs(FlowConfig::DEFAULT_TCP_TIMEOUT_SECS),
            tcp_attempt_timeout: Nanos::from_secs(30),
            tcp_closed_timeout: Nanos::from_secs(10),
            udp_timeout: Nanos::from_secs(60),
            icmp_timeout: Nanos::from_secs(60),
            reassembly: Config::default(),
            reassembly_memory: Budget::DEFAULT_LIMIT,
            aux_memory: FlowConfig::DEFAULT_AUX_MEMORY,
            reserve_flows: 0,
            features: false,
        }
    }
}

/// Who a flow is: what observers are told with every event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowInfo {
    pub id: u64,
    /// Index of the capture point in [`Points`](crate::capture::Points), and its label.
    pub point_index: u32,
    pub point: Arc<str>,
    pub proto: Proto,
    pub client: Endpoint,
    pub server: Endpoint,
}

/// Why a flow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// Input ended while it was live.
    Eof,
    /// Idle longer than its timeout.
    Idle,
    /// Evicted by the flow cap.
    Evicted,
    /// A new connection reused its tuple.
    Reused,
}

impl EndReason {
    pub const fn name(self) -> &'static str {
        match self {
            EndReason::Eof => "eof",
            EndReason::Idle => "idle",
            EndReason::Evicted => "evicted",
            EndReason::Reused => "reused",
        }
    }
}

impl serde::Serialize for EndReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// What a finished TCP observation adds to its record.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpRecord {
    /// Each endpoint's final TCP state, `[client, server]` (Zeek's endpoint states).
    pub state: [EndpointState; 2],
    /// Each direction's ISN (from its SYN), if seen.
    pub isn: [Option<u32>; 2],
    /// Reassembly counters per direction.
    pub stream: [Counters; 2],
    /// Gaps per direction, `(stream offset, length)`.
    pub gaps: [GapList; 2],
    pub analysis: AnalysisCounters,
    pub rtt: Rtt,
}

/// A finished observation: everything the outputs print about it.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRecord {
    pub info: FlowInfo,
    /// Packets and payload bytes, `[client->server, server->client]`.
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub first: Nanos,
    pub last: Nanos,
    pub conn_state: ConnState,
    pub history: String,
    pub end: EndReason,
    /// TCP's additions (boxed: records wait in memory, and most of their size is here).
    pub tcp: Option<Box<TcpRecord>>,
}

impl FlowRecord {
    /// Heap bytes this record holds (itself, boxed, its history and its gap lists), an upper
    /// bound as the allocator counts them: what a batch of records waiting to be printed
    /// costs (the report bounds that sum, plus [`FlowTable::FEATURES_BYTES`] for the
    /// features it keeps of a record).
    pub fn heap_bytes(&self) -> usize {
        let block = |n: usize| if n == 0 { 0 } else { (n + 16).div_ceil(16) * 16 };
        let tcp = self.tcp.as_ref().map_or(0, |t| {
            block(std::mem::size_of::<TcpRecord>()) + t.gaps[0].heap_bytes() + t.gaps[1].heap_bytes()
        });
        std::mem::size_of::<FlowRecord>() + block(self.history.capacity()) + tcp
    }
}

/// Receives what the flow table produces. All methods but `flow_ended` have empty defaults.
///
/// Stream events arrive in order per direction (the reassembler's contract: Data and Gap tile
/// the stream from offset 0), interleaved across directions in packet order, and only for
/// flows whose [`FlowObserver::wants_payload`] was true when they were created.
pub trait FlowObserver {
    /// Asked once per new flow: should its payload (stream events, datagrams) be passed on?
    fn wants_payload(&mut self, _flow: &FlowInfo) -> bool {
        false
    }
    /// A reassembly event of a TCP flow.
    fn stream_event(&mut self, _flow: &FlowInfo, _direction: Direction, _event: &Event<'_>) {}
    /// One UDP datagram's captured payload.
    fn datagram(&mut self, _flow: &FlowInfo, _direction: Direction, _payload: &[u8]) {}
    /// The flow ended; its streams were flushed (their last events came before this).
    /// `features`: its joiner features (TCP and UDP flows, when [`FlowConfig::features`]),
    /// lent: the flow table reuses their room for a later flow.
    fn flow_ended(&mut self, record: FlowRecord, features: Option<&crate::join::ObservationFeatures>);
}

/// An observer that keeps every record (tests, tools).
impl FlowObserver for Vec<FlowRecord> {
    fn flow_ended(&mut self, record: FlowRecord, _features: Option<&crate::join::ObservationFeatures>) {
        self.push(record);
    }
}
