//! The read-only model the TUI draws: what a model source (the phase-1 [`source`] adapter
//! today, the flow table + joiner later) must provide.
//!
//! ## Contract
//!
//! * A [`Snapshot`] is immutable once published and shared as `Arc<Snapshot>`; the source
//!   publishes a new one at a fixed rate (only when something changed) and the UI adopts it
//!   between frames. It holds one compact [`PathRow`] per path, nothing per packet, so 100k
//!   paths cost one `Vec` clone per publish and nothing per drawn frame.
//! * Everything heavier is lazy and asked for one path at a time through [`ModelSource`]:
//!   [`PathDetail`] (legs and observations), [`StreamView`] (the conversation), the
//!   [`PacketList`] (tcpdump one-line summaries) and one packet's `-X` dump. The UI asks again
//!   when the selection changes or when the selected path's row changed in a new snapshot.
//! * Times are packet times ([`Timestamp`]), never the wall clock, so an offline file looks
//!   the same every time it is opened. "Last seen" is relative to [`Snapshot::clock`].
//! * `[0]` of every pair is client -> server, `[1]` server -> client.
//! * Strings that came from packets (summary lines, dumps, process names) may hold anything;
//!   the panes escape every control or non-printable character before drawing
//!   ([`crate::tui::escape`]).
//!
//! [`source`]: crate::tui::source

use crate::capture::Timestamp;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

/// Stable id of a path (what `--follow ID` and the JSON `id` use).
pub type PathId = u64;

/// Transport protocol of a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
    /// Another IP protocol number.
    Other(u8),
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
            Proto::Other(_) => "ip",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Proto::Other(n) => write!(f, "ip-{n}"),
            p => f.write_str(p.name()),
        }
    }
}

/// One end of a tuple. Written `IP:PORT`, IPv6 as `[IP]:PORT` (the JSON's form); port 0
/// of an ICMP or other-protocol tuple is left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.ip, self.port) {
            (IpAddr::V4(a), 0) => write!(f, "{a}"),
            (IpAddr::V6(a), 0) => write!(f, "{a}"),
            (IpAddr::V4(a), p) => write!(f, "{a}:{p}"),
            (IpAddr::V6(a), p) => write!(f, "[{a}]:{p}"),
        }
    }
}

/// One observation's tuple and where it was seen: enough for the `/` filter to match any hop
/// of a path without asking for its detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hop {
    /// Index into [`Snapshot::points`].
    pub point: u32,
    pub client: Endpoint,
    pub server: Endpoint,
}

/// One row of the paths table.
#[derive(Clone, Debug, PartialEq)]
pub struct PathRow {
    pub id: PathId,
    pub proto: Proto,
    /// The client of the first leg, and the server of the last one (after every rewrite).
    pub client: Endpoint,
    pub server: Endpoint,
    pub legs: u32,
    /// Every observation of every leg, client side first (shared between snapshots).
    pub hops: Arc<[Hop]>,
    /// Summed over the path's first leg as seen at its first point (what the client saw).
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    /// Zeek's `conn_state` (`S0`, `SF`, `RSTO`, ...) and `history` (`ShADadFf`).
    pub state: Arc<str>,
    pub history: Arc<str>,
    pub first: Timestamp,
    pub last: Timestamp,
    /// Owning process of the client socket (`comm[pid]`), when known.
    pub process: Option<Arc<str>>,
}

impl PathRow {
    /// `last - first` in nanoseconds (0 when out of order).
    pub fn duration_ns(&self) -> i64 {
        ts_diff_ns(self.last, self.first).max(0)
    }
}

/// Per capture point counters for the status bar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PointStatus {
    pub label: Arc<str>,
    /// Frames seen (after the capture filter).
    pub packets: u64,
    /// Kernel drops (live capture), `None` when not known (offline input).
    pub dropped: Option<u64>,
}

/// Limits that were reached: each is a count of what was not kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapCounters {
    /// Paths not tracked because the path cap was reached.
    pub paths: u64,
    /// Packets whose bytes were not kept (packet list, stream, `w` miss them).
    pub packet_bytes: u64,
    /// Stream bytes not kept (reassembly memory cap).
    pub stream_bytes: u64,
    /// Observations left out of the join (the cap on kept joiner features): shown alone.
    pub unjoined: u64,
    /// Flows the flow table evicted (its cap).
    pub flows_evicted: u64,
}

impl CapCounters {
    pub fn any(&self) -> bool {
        self.paths + self.packet_bytes + self.stream_bytes + self.unjoined + self.flows_evicted > 0
    }
}

/// How far an offline load got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub bytes_read: u64,
    /// Sum of the input files' sizes (`None` for a pipe).
    pub bytes_total: Option<u64>,
}

/// The whole table as of one moment. Built by the source, read by the UI.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Increases with every published snapshot.
    pub generation: u64,
    /// Packet time of the newest frame (what "last seen" is relative to).
    pub clock: Option<Timestamp>,
    pub paths: Vec<PathRow>,
    pub points: Vec<PointStatus>,
    pub caps: CapCounters,
    /// Live capture (else offline input).
    pub live: bool,
    /// Input ended (offline: the files are read; live: capture stopped).
    pub finished: bool,
    /// The capture filter (pcap-filter expression) in force, if any.
    pub filter: Option<String>,
    /// Offline load progress (`None` when live).
    pub progress: Option<Progress>,
    /// Frames per second over the last publish period (wall clock; `None` when not measured).
    pub packets_per_second: Option<f64>,
    /// Input errors to show (a file that failed half way).
    pub errors: Vec<String>,
}

impl Snapshot {
    /// Label of point `i` (`?` when unknown).
    pub fn point_label(&self, i: u32) -> &str {
        self.points.get(i as usize).map_or("?", |p| &p.label)
    }
}

/// Why observations (or legs) were put together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinInfo {
    /// `same-tuple`, `nat`, `forwarder`, ...
    pub kind: String,
    /// Human-readable evidence, one item each (`conntrack DNAT 127.0.0.1:55001 -> ...`,
    /// `ISN 0x1234abcd equal`, `first 64 payload bytes equal`).
    pub evidence: Vec<String>,
}

/// One sighting of a leg at one capture point.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservationDetail {
    pub point: Arc<str>,
    pub client: Endpoint,
    pub server: Endpoint,
    pub packets: [u64; 2],
    pub bytes: [u64; 2],
    pub first: Timestamp,
    pub last: Timestamp,
    pub state: Arc<str>,
    pub history: Arc<str>,
    /// What changed against the previous observation of the leg (`src A -> B`, `ttl 64 ->
    /// 63`); `None` for the first one, or when the source does not know (then the panes
    /// compare the tuples themselves).
    pub changes: Option<Vec<String>>,
    /// Latency this hop added (`c2s +3us s2c +2us`), when measured.
    pub latency: Option<String>,
    /// A remark: the conntrack entry of a synthetic observation, a reply tuple.
    pub note: Option<String>,
}

/// One transport connection along the path.
#[derive(Clone, Debug, PartialEq)]
pub struct LegDetail {
    /// Observations in path order (client side first).
    pub observations: Vec<ObservationDetail>,
    /// Process owning this leg's client socket (for leg 0 the client, for later legs the
    /// forwarder that opened it).
    pub process: Option<Arc<str>>,
    /// Why these observations are one leg.
    pub join: Option<JoinInfo>,
    /// Why this leg follows the previous one (None for the first leg).
    pub link: Option<JoinInfo>,
}

/// Everything about one path (asked for lazily).
#[derive(Clone, Debug, PartialEq)]
pub struct PathDetail {
    pub id: PathId,
    pub proto: Proto,
    pub legs: Vec<LegDetail>,
    /// Remarks about the whole path (forwarder hops the joiner could not decide).
    pub notes: Vec<String>,
}

/// Which observation of a path (leg index, observation index within the leg).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ObservationRef {
    pub leg: usize,
    pub observation: usize,
}

/// Which way bytes went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// Client -> server.
    Client,
    /// Server -> client.
    Server,
}

impl Side {
    pub fn index(self) -> usize {
        match self {
            Side::Client => 0,
            Side::Server => 1,
        }
    }
}

/// A piece of the reassembled conversation, in arrival order across directions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamChunk {
    /// Bytes at `offset` of the side's stream.
    Data { side: Side, offset: u64, bytes: Vec<u8> },
    /// `len` bytes at `offset` that were not captured.
    Gap { side: Side, offset: u64, len: u64 },
}

/// The conversation of one leg, as seen at one observation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamView {
    pub chunks: Vec<StreamChunk>,
    /// More data exists than was returned (the view's cap).
    pub truncated: bool,
}

/// Names one packet for [`ModelSource::packet_dump`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PacketRef(pub u64);

/// One packet of the packet list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketLine {
    pub packet: PacketRef,
    pub side: Side,
    /// tcpdump's one-line summary (as `flowtrail -r` prints it, with the point's label when
    /// there are several points).
    pub summary: String,
}

/// Packets of a path or of one observation, in time order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PacketList {
    pub lines: Vec<PacketLine>,
    /// More packets exist than were returned (the list's cap), or bytes were not kept.
    pub truncated: bool,
}

/// What `w` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Saved {
    pub path: String,
    pub packets: u64,
}

/// The seam between the TUI and whatever owns the data.
///
/// The UI thread calls these; implementations must answer quickly (they may take a lock the
/// data thread holds for a batch of frames, never for longer). `Send + Sync` because the
/// model is shared with the data thread.
pub trait ModelSource: Send + Sync {
    /// The newest published snapshot.
    fn snapshot(&self) -> Arc<Snapshot>;
    /// Legs and observations of one path; `None` when the path is gone.
    fn detail(&self, id: PathId) -> Option<PathDetail>;
    /// The conversation of the path's first leg, or of the leg of `at`, as seen at `at`.
    fn stream(&self, id: PathId, at: Option<ObservationRef>) -> StreamView;
    /// tcpdump summaries of the path's packets at every point, or of one observation's.
    fn packets(&self, id: PathId, at: Option<ObservationRef>) -> PacketList;
    /// tcpdump's `-X` dump lines of one packet (from the network header), without the
    /// summary line; `None` when its bytes were not kept.
    fn packet_dump(&self, packet: PacketRef) -> Option<Vec<String>>;
    /// Writes the path's packets (every point) to a pcapng file at `file`.
    fn save(&self, id: PathId, file: &Path) -> Result<Saved, String>;
}

/// `a - b` in nanoseconds, saturating.
pub fn ts_diff_ns(a: Timestamp, b: Timestamp) -> i64 {
    let s = a.sec.saturating_sub(b.sec);
    let n = a.nsec as i64 - b.nsec as i64;
    s.saturating_mul(1_000_000_000).saturating_add(n)
}

/// What differs between two consecutive observations, for the hop diagram:
/// `src 127.0.0.1:39658 -> 192.168.49.1:39658` style items; empty when the tuple is the same.
pub fn tuple_changes(prev: &ObservationDetail, next: &ObservationDetail) -> Vec<String> {
    let mut v = Vec::new();
    if prev.client != next.client {
        v.push(format!("src {} -> {}", prev.client, next.client));
    }
    if prev.server != next.server {
        v.push(format!("dst {} -> {}", prev.server, next.server));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_print_like_the_json() {
        let e = Endpoint { ip: "fd00:65::1".parse().unwrap(), port: 40020 };
        assert_eq!(e.to_string(), "[fd00:65::1]:40020");
        let e = Endpoint { ip: "10.0.0.1".parse().unwrap(), port: 0 };
        assert_eq!(e.to_string(), "10.0.0.1");
    }

    #[test]
    fn time_differences_saturate() {
        let a = Timestamp { sec: 10, nsec: 5 };
        let b = Timestamp { sec: 9, nsec: 999_999_999 };
        assert_eq!(ts_diff_ns(a, b), 6);
        assert_eq!(ts_diff_ns(b, a), -6);
        let far = Timestamp { sec: i64::MAX, nsec: 0 };
        assert_eq!(ts_diff_ns(far, Timestamp { sec: i64::MIN, nsec: 0 }), i64::MAX);
    }
}
