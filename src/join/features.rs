//! [`ObservationFeatures`]: what the joiner needs to know about one observation (one 5-tuple
//! at one capture point), filled packet by packet by the flow table.
//!
//! ## Filling it (the flow table's side)
//!
//! ```text
//! new observation          ObservationFeatures::new(point, proto, client, server)
//! every TCP segment        .on_tcp(direction, time, &ip, &tcp)   // before reassembling it
//! every UDP datagram       .on_udp(direction, time, &ip, &udp)   // (time: Timestamp, flow::Nanos
//!                                                                //  or i64 ns, see [`At`])
//! every frame (optional)   .on_link(direction, frame.linktype, &frame.data)   (MACs)
//! reassembler Data event   .on_stream_data(direction, offset, &bytes)
//! reassembler Gap event    .on_stream_gap(direction, offset)
//! socket owner known       .set_owner(Side::Client | Side::Server, Owner { pid, comm })
//! ```
//!
//! `direction` is the flow table's own: `ClientToServer` is from `client` to `server` as
//! given to `new`. The joiner re-orients an observation whose "client" turns out to have
//! sent the SYN-ACK, so a flow table that calls the first sender the client is fine.
//!
//! ## Memory
//!
//! Fixed size, no heap except the socket owners (boxed, only when [`ObservationFeatures::set_owner`]
//! is called; the flow table never does, live owners reach the joiner as evidence): every
//! list keeps only its first few entries ([`K_IPID`], [`K_TSVAL`], [`K_SEGMENTS`],
//! [`K_DATAGRAMS`]), record times are 4-byte offsets from the direction's first packet
//! ([`Rel`], 16 ns ticks), TCP segment records and UDP datagram records share their room
//! (an observation has one kind), and the stream digest keeps 32-bit prefix hashes
//! ([`StreamDigest`], 56 bytes). Per direction: SYN 32 bytes, TSvals 36, IP-IDs 36,
//! segment or datagram records 104, digest 56, times and counters about 90;
//! `size_of::<ObservationFeatures>()` is 832 bytes (asserted in the tests), whatever the
//! connection carries.
//!
//! ## Cost per packet
//!
//! A handful of comparisons and stores per packet; hashing touches only the first 1024
//! bytes of each TCP direction and 256 bytes of each of the first [`K_DATAGRAMS`] datagrams
//! of UDP (later ones are counted, not hashed).

use super::digest::{StreamDigest, datagram_digest};
use crate::capture::Timestamp;
use crate::decode::{Ip, Tcp, Udp, linktype, tcp_flags};
use crate::process::{ProcessInfo, SockProto};
use crate::reassembly::Direction;
use crate::seq::SeqNum;
use std::net::SocketAddr;

/// Nanoseconds since the UNIX epoch.
pub type Nanos = i64;

/// A capture timestamp in [`Nanos`] (saturating).
pub fn nanos(ts: Timestamp) -> Nanos {
    ts.sec
        .saturating_mul(1_000_000_000)
        .saturating_add(i64::try_from(ts.nsec).unwrap_or(i64::MAX))
}

/// A packet's time as the hooks take it: a capture [`Timestamp`], the flow table's
/// [`crate::flow::Nanos`], or nanoseconds since the epoch.
pub trait At {
    fn nanos(self) -> Nanos;
}

impl At for Timestamp {
    fn nanos(self) -> Nanos {
        nanos(self)
    }
}

impl At for Nanos {
    fn nanos(self) -> Nanos {
        self
    }
}

impl At for crate::flow::Nanos {
    fn nanos(self) -> Nanos {
        self.0
    }
}

/// Transport protocol of an observation.
pub type Proto = SockProto;

/// IP-IDs kept per direction.
pub const K_IPID: usize = 4;
/// Distinct TCP timestamp values kept per direction.
pub const K_TSVAL: usize = 4;
/// Segment records (SYN, FIN, RST or payload) kept per direction.
pub const K_SEGMENTS: usize = 6;
/// Datagram records kept per direction (UDP).
pub const K_DATAGRAMS: usize = 4;

/// The first `N` values pushed; later pushes are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Firsts<T: Copy + Default, const N: usize> {
    items: [T; N],
    len: u8,
}

impl<T: Copy + Default, const N: usize> Default for Firsts<T, N> {
    fn default() -> Self {
        Firsts {
            items: [T::default(); N],
            len: 0,
        }
    }
}

impl<T: Copy + Default, const N: usize> Firsts<T, N> {
    /// Keeps `v` if there is room; returns whether it was kept.
    pub fn push(&mut self, v: T) -> bool {
        let i = usize::from(self.len);
        if i < N {
            self.items[i] = v;
            self.len += 1;
            true
        } else {
            false
        }
    }
    pub fn as_slice(&self) -> &[T] {
        &self.items[..usize::from(self.len).min(N)]
    }
    pub fn last(&self) -> Option<&T> {
        self.as_slice().last()
    }
    pub fn is_full(&self) -> bool {
        usize::from(self.len) >= N
    }
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A time relative to the direction's first packet ([`DirFeatures::base`]), in ticks of
/// [`Rel::TICK_NS`] (16 ns), saturating at about +-34 s: records keep four bytes of time
/// instead of eight. Resolve with [`DirFeatures::time`]; a saturated value resolves to
/// `None` (its record is still compared, but gives no latency).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rel(pub i32);

impl Rel {
    pub const TICK_NS: i64 = 16;

    fn from(base: Nanos, at: Nanos) -> Rel {
        let ticks = at.saturating_sub(base).div_euclid(Rel::TICK_NS);
        Rel(ticks.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
    }

    fn resolve(self, base: Nanos) -> Option<Nanos> {
        (self.0 != i32::MIN && self.0 != i32::MAX)
            .then(|| base.saturating_add(i64::from(self.0) * Rel::TICK_NS))
    }
}

/// A value and when it was seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamped<T> {
    pub value: T,
    pub at: Rel,
}

/// The SYN (or SYN-ACK) of one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Syn {
    /// Initial sequence number.
    pub isn: u32,
    /// Acknowledgement number when the SYN carried ACK (a SYN-ACK): the peer's ISN + 1.
    pub ack: Option<u32>,
    pub at: Nanos,
    /// TSval of the SYN, if it had the timestamp option.
    pub tsval: Option<u32>,
}

/// One TCP segment that carried SYN, FIN, RST or payload (16 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentRecord {
    /// Absolute sequence number (the same at every point of a leg).
    pub seq: u32,
    /// Payload length on the wire.
    pub len: u32,
    pub at: Rel,
    /// TCP flags (low byte, [`tcp_flags`]).
    pub flags: u8,
}

/// One UDP datagram (16 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DatagramRecord {
    /// [`datagram_digest`], 0 when too little was captured (see [`DatagramRecord::digest`]).
    pub hash: u64,
    pub len: u32,
    pub at: Rel,
}

impl DatagramRecord {
    /// The datagram's digest, `None` when too little was captured to compute it.
    pub fn digest(&self) -> Option<u64> {
        (self.hash != 0).then_some(self.hash)
    }
}

/// Source and destination MAC of a direction's first frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Macs {
    pub src: [u8; 6],
    pub dst: [u8; 6],
}

/// TTL (hop limit) range seen in one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TtlRange {
    pub first: u8,
    pub min: u8,
    pub max: u8,
}

/// Everything about one direction of an observation.
///
/// `repr(C)`, fields in the order the joiner reads them: what every observation's join
/// touches (times, counts, SYN, end, stream digest) fills the first cache lines; the lists
/// only candidate scoring reads come after. The joiner runs over records that went cold
/// long ago, so this order, not the size alone, sets its cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct DirFeatures {
    /// Time of the direction's first packet as it arrived (never changes afterwards): the
    /// base of every [`Rel`] time, and the direction's first time ([`DirFeatures::first`]).
    pub base: Nanos,
    pub packets: u64,
    /// Payload bytes on the wire (TCP payload / UDP payload lengths, retransmissions too).
    pub bytes: u64,
    /// First packet with payload ([`DirFeatures::data_at`]; [`NO_TIME`] before one).
    data_at: Nanos,
    pub syn: Option<Syn>,
    /// In-order payload digest (TCP).
    pub stream: StreamDigest,
    /// SYNs with the same ISN again.
    pub syn_retransmits: u32,
    /// SYNs with another ISN (a new connection on the same tuple the flow table did not split).
    pub other_syns: u32,
    /// Acknowledgement number of the first segment with ACK.
    pub first_ack: Option<u32>,
    /// First non-zero TSecr.
    pub tsecr: Option<u32>,
    /// Lowest sequence number and highest `seq + len` seen (TCP, wrapping).
    pub seq_lo: Option<u32>,
    pub seq_hi: Option<u32>,
    /// First distinct TSvals.
    pub tsvals: Firsts<Stamped<u32>, K_TSVAL>,
    /// First IPv4 identifications.
    pub ip_ids: Firsts<Stamped<u16>, K_IPID>,
    /// TCP segment records or UDP datagram records ([`DirFeatures::segments`],
    /// [`DirFeatures::datagrams`]): an observation has one kind only, so they share room.
    records: Records,
    pub ttl: Option<TtlRange>,
    pub macs: Option<Macs>,
    /// [`END_FIN`] | [`END_RST`]: a FIN or RST was seen.
    ends: u8,
    /// When the first FIN or RST was seen ([`DirFeatures::end_at`]; meaningless while
    /// `ends` is 0).
    end: Rel,
}

/// No time (an absent optional time stored in a plain [`Nanos`]).
const NO_TIME: Nanos = Nanos::MIN;
const END_FIN: u8 = 1;
const END_RST: u8 = 2;

/// The records of one direction: segments (TCP) or datagrams (UDP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Records {
    Segments(Firsts<SegmentRecord, K_SEGMENTS>),
    Datagrams(Firsts<DatagramRecord, K_DATAGRAMS>),
}

impl Default for Records {
    fn default() -> Self {
        Records::Segments(Firsts::default())
    }
}

const NO_SEGMENT: SegmentRecord = SegmentRecord {
    seq: 0,
    len: 0,
    at: Rel(0),
    flags: 0,
};
const NO_DATAGRAM: DatagramRecord = DatagramRecord {
    hash: 0,
    len: 0,
    at: Rel(0),
};
static NO_SEGMENTS: Firsts<SegmentRecord, K_SEGMENTS> = Firsts {
    items: [NO_SEGMENT; K_SEGMENTS],
    len: 0,
};
static NO_DATAGRAMS: Firsts<DatagramRecord, K_DATAGRAMS> = Firsts {
    items: [NO_DATAGRAM; K_DATAGRAMS],
    len: 0,
};

impl DirFeatures {
    /// Time of the direction's first packet (`None` before one).
    pub fn first(&self) -> Option<Nanos> {
        (self.packets > 0).then_some(self.base)
    }

    /// Time of the direction's first packet with payload.
    pub fn data_at(&self) -> Option<Nanos> {
        (self.data_at != NO_TIME).then_some(self.data_at)
    }

    /// The first segments that carried SYN, FIN, RST or payload (none for UDP).
    pub fn segments(&self) -> &Firsts<SegmentRecord, K_SEGMENTS> {
        match &self.records {
            Records::Segments(s) => s,
            Records::Datagrams(_) => &NO_SEGMENTS,
        }
    }

    /// The first datagrams (none for TCP).
    pub fn datagrams(&self) -> &Firsts<DatagramRecord, K_DATAGRAMS> {
        match &self.records {
            Records::Datagrams(d) => d,
            Records::Segments(_) => &NO_DATAGRAMS,
        }
    }

    fn new(proto: Proto) -> DirFeatures {
        DirFeatures {
            data_at: NO_TIME,
            records: match proto {
                Proto::Udp => Records::Datagrams(Firsts::default()),
                _ => Records::Segments(Firsts::default()),
            },
            ..DirFeatures::default()
        }
    }

    /// Absolute time of a record's [`Rel`] time.
    pub fn time(&self, at: Rel) -> Option<Nanos> {
        at.resolve(self.base)
    }

    fn rel(&mut self, at: Nanos) -> Rel {
        if self.packets == 0 {
            self.base = at;
        }
        Rel::from(self.base, at)
    }

    /// A FIN or RST was seen: the byte count is final.
    pub fn finished(&self) -> bool {
        self.ends != 0
    }

    /// Time of the direction's first FIN or RST.
    pub fn end_at(&self) -> Option<Nanos> {
        if self.ends == 0 {
            return None;
        }
        self.time(self.end)
    }

    /// The first TSval (of the SYN if seen).
    pub fn first_tsval(&self) -> Option<u32> {
        self.syn
            .and_then(|s| s.tsval)
            .or_else(|| self.tsvals.as_slice().first().map(|t| t.value))
    }

    fn packet(&mut self, at: Nanos, ip: &Ip, payload_len: u32) -> Rel {
        let rel = self.rel(at);
        self.packets = self.packets.saturating_add(1);
        self.bytes = self.bytes.saturating_add(u64::from(payload_len));
        if payload_len > 0 && self.data_at == NO_TIME {
            self.data_at = at;
        }
        match &mut self.ttl {
            Some(t) => {
                t.min = t.min.min(ip.ttl);
                t.max = t.max.max(ip.ttl);
            }
            None => {
                self.ttl = Some(TtlRange {
                    first: ip.ttl,
                    min: ip.ttl,
                    max: ip.ttl,
                })
            }
        }
        if let Some(id) = ip.ip_id
            && !self.ip_ids.is_full()
        {
            self.ip_ids.push(Stamped { value: id, at: rel });
        }
        rel
    }
}

/// Raw access for the `join` fuzz target (`--cfg fuzzing` builds only): records and times
/// that no packet sequence would give.
#[cfg(fuzzing)]
impl DirFeatures {
    pub fn fuzz_push_segment(&mut self, r: SegmentRecord) {
        if let Records::Segments(s) = &mut self.records {
            s.push(r);
        }
    }

    pub fn fuzz_push_datagram(&mut self, r: DatagramRecord) {
        if let Records::Datagrams(d) = &mut self.records {
            d.push(r);
        }
    }

    pub fn fuzz_set_data_at(&mut self, at: Option<Nanos>) {
        self.data_at = at.unwrap_or(NO_TIME);
    }

    /// Marks the direction ended (FIN) at `at`, or not ended.
    pub fn fuzz_set_end(&mut self, at: Option<Rel>) {
        match at {
            Some(at) => {
                self.ends |= END_FIN;
                self.end = at;
            }
            None => self.ends = 0,
        }
    }
}

/// Which end of an observation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Client,
    Server,
}

/// The process holding a socket.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Owner {
    pub pid: u32,
    pub comm: String,
}

impl From<&ProcessInfo> for Owner {
    fn from(p: &ProcessInfo) -> Owner {
        Owner {
            pid: p.pid,
            comm: p.comm.clone(),
        }
    }
}

impl Owner {
    /// The owner with its `comm` made terminal-safe ([`crate::escape::text`]); the joiner
    /// cleans every owner it is given, so text and JSON output never carry a raw name.
    pub fn clean(mut self) -> Owner {
        if let std::borrow::Cow::Owned(c) = crate::escape::text(&self.comm) {
            self.comm = c;
        }
        self
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]", self.comm, self.pid)
    }
}

/// Everything the joiner needs about one observation (see the module docs). `repr(C)` for
/// the same reason as [`DirFeatures`]: the endpoints and times first.
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct ObservationFeatures {
    /// Index of the capture point (`capture::Points`).
    pub point: u32,
    pub proto: Proto,
    /// The endpoints as seen at this point: `ClientToServer` goes `client -> server`.
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub first: Nanos,
    pub last: Nanos,
    /// `[ClientToServer, ServerToClient]`.
    pub dirs: [DirFeatures; 2],
    /// Owner of the client's socket, of the server's socket, when attributed (live only:
    /// boxed, so that offline observations do not carry the room).
    owners: Option<Box<[Option<Owner>; 2]>>,
}

/// Index of a direction in [`ObservationFeatures::dirs`].
pub const fn dir_index(d: Direction) -> usize {
    match d {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    }
}

impl ObservationFeatures {
    pub fn new(
        point: u32,
        proto: Proto,
        client: SocketAddr,
        server: SocketAddr,
    ) -> ObservationFeatures {
        ObservationFeatures {
            point,
            proto,
            client,
            server,
            first: Nanos::MAX,
            last: Nanos::MIN,
            dirs: [DirFeatures::new(proto); 2],
            owners: None,
        }
    }

    pub fn dir(&self, d: Direction) -> &DirFeatures {
        &self.dirs[dir_index(d)]
    }

    fn touch(&mut self, at: Nanos) -> Nanos {
        self.first = self.first.min(at);
        self.last = self.last.max(at);
        at
    }

    /// Whether anything was seen (first/last are meaningful).
    pub fn is_empty(&self) -> bool {
        self.first > self.last
    }

    /// One TCP segment travelling `dir`.
    pub fn on_tcp(&mut self, dir: Direction, at: impl At, ip: &Ip, tcp: &Tcp<'_>) {
        let at = self.touch(at.nanos());
        let d = &mut self.dirs[dir_index(dir)];
        let rel = d.packet(at, ip, tcp.payload_len);
        let syn = tcp.has(tcp_flags::SYN);
        let fin = tcp.has(tcp_flags::FIN);
        let rst = tcp.has(tcp_flags::RST);
        let ack = tcp.has(tcp_flags::ACK);
        if syn {
            match d.syn {
                None => {
                    d.syn = Some(Syn {
                        isn: tcp.seq,
                        ack: ack.then_some(tcp.ack),
                        at,
                        tsval: tcp.ts.map(|t| t.0),
                    })
                }
                Some(s) if s.isn == tcp.seq => {
                    d.syn_retransmits = d.syn_retransmits.saturating_add(1)
                }
                Some(_) => d.other_syns = d.other_syns.saturating_add(1),
            }
        }
        if ack && d.first_ack.is_none() {
            d.first_ack = Some(tcp.ack);
        }
        if let Some((val, ecr)) = tcp.ts {
            // The first few distinct values only: once they are kept, nothing to compare.
            if !d.tsvals.is_full() && d.tsvals.last().is_none_or(|t| t.value != val) {
                d.tsvals.push(Stamped {
                    value: val,
                    at: rel,
                });
            }
            if ecr != 0 && d.tsecr.is_none() {
                d.tsecr = Some(ecr);
            }
        }
        // Sequence range covered (SYN and FIN take one number each).
        let span = tcp
            .payload_len
            .saturating_add(u32::from(syn))
            .saturating_add(u32::from(fin));
        let (lo, hi) = (SeqNum(tcp.seq), SeqNum(tcp.seq).add(span));
        match (d.seq_lo, d.seq_hi) {
            (Some(l), Some(h)) => {
                if lo.lt(SeqNum(l)) {
                    d.seq_lo = Some(lo.get());
                }
                if hi.gt(SeqNum(h)) {
                    d.seq_hi = Some(hi.get());
                }
            }
            _ => {
                d.seq_lo = Some(lo.get());
                d.seq_hi = Some(hi.get());
            }
        }
        if (syn || fin || rst || tcp.payload_len > 0)
            && let Records::Segments(s) = &mut d.records
        {
            s.push(SegmentRecord {
                seq: tcp.seq,
                len: tcp.payload_len,
                flags: tcp.flags as u8,
                at: rel,
            });
        }
        if (fin || rst) && d.ends == 0 {
            d.end = rel;
        }
        if fin {
            d.ends |= END_FIN;
        }
        if rst {
            d.ends |= END_RST;
        }
    }

    /// One UDP datagram travelling `dir` (for a fragmented datagram: its first fragment).
    pub fn on_udp(&mut self, dir: Direction, at: impl At, ip: &Ip, udp: &Udp<'_>) {
        let at = self.touch(at.nanos());
        let d = &mut self.dirs[dir_index(dir)];
        let rel = d.packet(at, ip, udp.payload_len);
        if let Records::Datagrams(g) = &mut d.records
            && !g.is_full()
        {
            let hash = datagram_digest(udp.payload_len, udp.payload).map_or(0, |h| h.max(1));
            g.push(DatagramRecord {
                hash,
                len: udp.payload_len,
                at: rel,
            });
        }
    }

    /// The frame's link layer: records the MACs of the direction's first Ethernet frame.
    pub fn on_link(&mut self, dir: Direction, linktype: u32, frame: &[u8]) {
        let d = &mut self.dirs[dir_index(dir)];
        if d.macs.is_none() {
            d.macs = ethernet_macs(linktype, frame);
        }
    }

    /// In-order stream bytes of `dir` at `offset` (the reassembler's `Data` event).
    pub fn on_stream_data(&mut self, dir: Direction, offset: u64, bytes: &[u8]) {
        let d = &mut self.dirs[dir_index(dir)];
        d.stream.anchor(d.syn.is_some());
        d.stream.data(offset, bytes);
    }

    /// A gap in `dir` at `offset` (the reassembler's `Gap` event).
    pub fn on_stream_gap(&mut self, dir: Direction, offset: u64) {
        let d = &mut self.dirs[dir_index(dir)];
        d.stream.anchor(d.syn.is_some());
        d.stream.gap(offset);
    }

    /// The process owning one end's socket (as attributed at this point's namespace). The
    /// name is made terminal-safe here ([`Owner::clean`]): a process chooses its own `comm`.
    pub fn set_owner(&mut self, side: Side, owner: Owner) {
        self.owners.get_or_insert_default()[match side {
            Side::Client => 0,
            Side::Server => 1,
        }] = Some(owner.clean());
    }

    /// The owner of the flow table's client's (`0`) or server's (`1`) socket.
    pub fn owner(&self, i: usize) -> Option<&Owner> {
        self.owners.as_ref()?.get(i)?.as_ref()
    }
}

/// Source and destination MAC of an Ethernet frame (also inside Linux cooked v1/v2 for the
/// source). `None` for other link types or short frames.
pub fn ethernet_macs(lt: u32, frame: &[u8]) -> Option<Macs> {
    let six = |at: usize| -> Option<[u8; 6]> {
        let mut m = [0u8; 6];
        m.copy_from_slice(frame.get(at..at + 6)?);
        Some(m)
    };
    match lt {
        linktype::EN10MB => Some(Macs {
            dst: six(0)?,
            src: six(6)?,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(ttl: u8, id: u16) -> Ip {
        Ip {
            src: IpAddr::from([10, 0, 0, 1]),
            dst: IpAddr::from([10, 0, 0, 2]),
            ttl,
            ip_id: Some(id),
            fragmented: false,
        }
    }

    fn ts(us: i64) -> Timestamp {
        Timestamp {
            sec: 1000 + us / 1_000_000,
            nsec: (us % 1_000_000) as u64 * 1000,
        }
    }

    #[test]
    fn fixed_size() {
        let n = std::mem::size_of::<ObservationFeatures>();
        assert!(n <= 832, "ObservationFeatures is {n} bytes");
        assert!(std::mem::size_of::<DirFeatures>() <= 360);
        assert_eq!(std::mem::size_of::<SegmentRecord>(), 16);
        assert_eq!(std::mem::size_of::<DatagramRecord>(), 16);
    }

    #[test]
    fn tcp_handshake_and_data() {
        let mut f = ObservationFeatures::new(
            0,
            Proto::Tcp,
            "10.0.0.1:40000".parse().unwrap(),
            "10.0.0.2:80".parse().unwrap(),
        );
        let c2s = Direction::ClientToServer;
        let s2c = Direction::ServerToClient;
        let syn = Tcp {
            seq: 100,
            flags: tcp_flags::SYN,
            ts: Some((7, 0)),
            ..Tcp::default()
        };
        f.on_tcp(c2s, ts(0), &ip(64, 1), &syn);
        f.on_tcp(c2s, ts(5), &ip(64, 1), &syn); // retransmitted
        let synack = Tcp {
            seq: 900,
            ack: 101,
            flags: tcp_flags::SYN | tcp_flags::ACK,
            ts: Some((50, 7)),
            ..Tcp::default()
        };
        f.on_tcp(s2c, ts(10), &ip(63, 0), &synack);
        let data = Tcp {
            seq: 101,
            ack: 901,
            flags: tcp_flags::ACK | tcp_flags::PSH,
            payload: b"hello",
            payload_len: 5,
            ts: Some((8, 50)),
            ..Tcp::default()
        };
        f.on_tcp(c2s, ts(20), &ip(64, 2), &data);
        f.on_stream_data(c2s, 0, b"hello");
        let d = f.dir(c2s);
        assert_eq!(d.syn.unwrap().isn, 100);
        assert_eq!(d.syn_retransmits, 1);
        assert_eq!(d.packets, 3);
        assert_eq!(d.bytes, 5);
        assert_eq!(d.first_ack, Some(901));
        assert_eq!(d.tsecr, Some(50));
        assert_eq!(
            d.tsvals
                .as_slice()
                .iter()
                .map(|t| t.value)
                .collect::<Vec<_>>(),
            [7, 8]
        );
        assert_eq!((d.seq_lo, d.seq_hi), (Some(100), Some(106)));
        assert_eq!(d.segments().len(), 3);
        assert_eq!(d.datagrams().len(), 0);
        assert_eq!(d.first(), Some(nanos(ts(0))));
        assert_eq!(d.data_at(), Some(nanos(ts(20))));
        assert!(!d.finished());
        assert_eq!(d.stream.hashed(), 5);
        let r = f.dir(s2c);
        assert_eq!(r.syn.unwrap().ack, Some(101));
        assert_eq!(r.ttl.unwrap().first, 63);
        assert_eq!(f.first, nanos(ts(0)));
        assert_eq!(f.last, nanos(ts(20)));
    }

    #[test]
    fn midstream_stream_is_not_anchored() {
        let mut f = ObservationFeatures::new(
            0,
            Proto::Tcp,
            "10.0.0.1:1".parse().unwrap(),
            "10.0.0.2:2".parse().unwrap(),
        );
        let data = Tcp {
            seq: 5,
            flags: tcp_flags::ACK,
            payload: b"abc",
            payload_len: 3,
            ..Tcp::default()
        };
        f.on_tcp(Direction::ClientToServer, ts(0), &ip(64, 1), &data);
        f.on_stream_data(Direction::ClientToServer, 0, b"abc");
        assert_eq!(f.dir(Direction::ClientToServer).stream.index_key(), None);
    }

    #[test]
    fn macs_of_ethernet_only() {
        let mut frame = vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 8, 0];
        assert_eq!(ethernet_macs(1, &frame).unwrap().src, [7, 8, 9, 10, 11, 12]);
        frame.truncate(10);
        assert_eq!(ethernet_macs(1, &frame), None);
        assert_eq!(ethernet_macs(101, &[0; 40]), None);
    }

    #[test]
    fn relative_times() {
        let mut d = DirFeatures::default();
        let base = 1_700_000_000_123_456_789;
        let r = d.rel(base);
        d.packets = 1;
        assert_eq!(d.time(r), Some(base));
        let later = d.rel(base + 1_000_000);
        assert_eq!(d.time(later).unwrap() - d.time(r).unwrap(), 1_000_000);
        let earlier = d.rel(base - 3_200);
        assert_eq!(d.time(r).unwrap() - d.time(earlier).unwrap(), 3_200);
        let far = d.rel(base + 3_600_000_000_000);
        assert_eq!(d.time(far), None);
    }

    #[test]
    fn timestamps_saturate() {
        assert_eq!(
            nanos(Timestamp {
                sec: i64::MAX,
                nsec: 5
            }),
            i64::MAX
        );
        assert_eq!(nanos(Timestamp { sec: 1, nsec: 2 }), 1_000_000_002);
    }
}
