//! Exact TCP stream reassembly: a pure, clock-free state machine that turns segments into
//! events.
//!
//! No I/O, no clock, no global state: the caller (the flow table) feeds each TCP segment of
//! one direction to a [`HalfStream`], or of both directions to a [`Conversation`], and gets
//! [`Event`]s back through an [`EventSink`] (a `Vec<Event>`, or a closure). The caller decides
//! what to do with them (write to a file, hash, count) and when a silent stream has been idle
//! long enough to [`HalfStream::flush`].
//!
//! ```
//! use flowtrail::reassembly::{Budget, Config, Conversation, Direction, Event, Segment, TcpFlags};
//! use flowtrail::seq::SeqNum;
//!
//! let budget = Budget::default(); // one per flow table
//! let mut conversation = Conversation::new(Config::default(), &budget);
//! let c2s = Direction::ClientToServer;
//! let mut events: Vec<(Direction, Event)> = Vec::new();
//! conversation.segment(c2s, Segment::new(SeqNum(100), TcpFlags::SYN, b""), &mut events);
//! conversation.segment(c2s, Segment::new(SeqNum(104), TcpFlags::ACK, b"lo"), &mut events);
//! assert!(events.is_empty()); // held: bytes 0..3 are missing
//! conversation.segment(c2s, Segment::new(SeqNum(101), TcpFlags::ACK, b"hel"), &mut events);
//! assert_eq!(events.len(), 2); // "hel" lent from the payload, then "lo" from the store
//!
//! // Or a closure: write, hash, count, without collecting.
//! let mut delivered = 0;
//! conversation.flush(&mut |_direction: Direction, event: Event<'_>| {
//!     if let Event::Data { bytes, .. } = event {
//!         delivered += bytes.len();
//!     }
//! });
//! ```
//!
//! # Offsets
//!
//! Every byte of a direction has a 64-bit *offset*: offset 0 is the byte after the SYN
//! (`ISN + 1`). Without a SYN (midstream pickup) offset 0 is the first byte of the first
//! segment that carries data or FIN, or, in a [`Conversation`], the peer's acknowledgement
//! number if that is seen first. Sequence numbers map to offsets through
//! [`crate::seq::SeqNum::offset_from`] relative to the next expected offset, so streams
//! longer than 4 GiB and sequence wrap-around just work. Bytes *before* offset 0 are never
//! delivered: they are counted in [`Counters::before_start_bytes`] (on a midstream pickup,
//! that is the data of segments reordered ahead of the first one seen).
//!
//! # Events and their invariants
//!
//! - [`Event::Data`] `{ offset, bytes }`: the next bytes of the stream, in order. `offset` is
//!   always the end of the previous `Data` or `Gap`, so Data and Gap events of one direction
//!   tile `[0, next)` without holes or repeats. In-order data that needs no buffering is
//!   handed out as a slice borrowed from the caller's payload (`Cow::Borrowed`, zero copies);
//!   data that waited in the out-of-order store is moved out of it (`Cow::Owned`, copied once
//!   on arrival).
//! - [`Event::Gap`] `{ offset, len }`: `len` bytes at `offset` that were never seen and never
//!   will be delivered. Gaps are *never* filled with zeros. A gap is declared only when the
//!   reassembler must move past a hole: the peer acknowledged bytes beyond it (they were sent
//!   and received, so the capture missed them; see [`Config::gap_on_ack`]), the stream is
//!   flushed or reset, a FIN is due, or a cap forced a skip (see *Caps*). The data after it
//!   follows as `Data` events.
//! - [`Event::Overlap`] `{ offset, len, conflicting }`: bytes at `[offset, offset + len)`
//!   arrived again while an earlier copy was still held (not yet delivered). `conflicting`
//!   means at least one byte differs: a Ptacek–Newsham style ambiguity, resolved by
//!   [`OverlapPolicy`]. Emitted when the second copy arrives, before any `Data` it causes.
//!   Bytes that arrive again after their offset was already delivered cannot be compared
//!   (the reassembler keeps no history) and only count in [`Counters::retransmitted_bytes`].
//! - [`Event::Closed`] `{ reason }`: the direction is finished; exactly once, last. After it
//!   every segment is only counted. `Fin` when delivery reaches the FIN's offset (gaps
//!   before it are declared once the FIN is acknowledged, or on flush), `Rst` on a reset of
//!   either side (held data is delivered first, with gaps between), `Flush` on
//!   [`HalfStream::flush`] without a FIN.
//!
//! # Segments that are not data
//!
//! - Keep-alive probes (no SYN/FIN/RST, 0 or 1 byte, sequence number = next expected - 1)
//!   are counted in [`Counters::keep_alives`] and otherwise ignored.
//! - A repeated SYN with the same ISN is a retransmission (its data, if any, too); a SYN
//!   with another ISN after data or a close belongs to a new connection on the same tuple:
//!   it is counted ([`Counters::unexpected_syns`]) and ignored. The flow table should start a
//!   new stream for it (see [`HalfStream::is_closed`]).
//! - Data beyond a FIN, or arriving after `Closed`, is counted in
//!   [`Counters::after_close_bytes`].
//! - A segment starting more than [`Config::max_ahead`] bytes beyond the next expected
//!   offset is implausible (outside any TCP window): dropped and counted in
//!   [`Counters::out_of_window_bytes`].
//!
//! # Overlap policy
//!
//! [`OverlapPolicy::FirstWins`] (default): the bytes already held win; the new copy only
//! fills what was missing. [`OverlapPolicy::LastWins`]: the new copy overwrites held bytes.
//! Either way delivered bytes are final, and every overlap with held bytes is reported.
//!
//! # Caps
//!
//! Memory held for out-of-order data is accounted as the payload bytes of each stored chunk
//! plus [`CHUNK_OVERHEAD`] per chunk (so adversarial one-byte segmentation stays bounded).
//! It is limited twice: per direction by [`Config::max_buffered`] and, across every stream
//! sharing it, by a [`Budget`]. When storing a piece would exceed either, the stream *skips
//! ahead* instead of dropping anything it has: it declares the first hole a `Gap` and
//! delivers the held data after it (nearest first), repeating until the piece fits or is
//! itself in order (then it is delivered directly). Each forced skip is counted
//! ([`Counters::cap_skips`], [`Counters::budget_skips`]); data that arrives later for a
//! skipped hole counts as `retransmitted_bytes`. Loss is never silent: every byte not
//! delivered is in a `Gap` or a counter. A stream's held memory is returned to the budget
//! as it is delivered, and on drop.
//!
//! Chunks are not merged when adjacent: merging would copy bytes again; the per-chunk
//! charge keeps the chunk count bounded instead (at most `max_buffered / CHUNK_OVERHEAD`).

mod budget;
mod conversation;
mod half_stream;
#[cfg(test)]
mod properties;

use std::borrow::Cow;
use std::ops::BitOr;

pub use budget::Budget;
pub use conversation::Conversation;
pub use half_stream::HalfStream;

use crate::seq::SeqNum;

/// Memory charged per stored out-of-order chunk on top of its payload: the B-tree entry
/// (32 bytes in nodes that are not always full), the payload's heap block header and
/// allocator rounding (glibc: at least 32 bytes per block). An upper bound, measured: a
/// million held 1-byte chunks cost 107 bytes each in resident memory, 100-byte chunks 191
/// (64, the earlier value, undercounted one-byte segmentation by 40%).
pub const CHUNK_OVERHEAD: usize = 112;

/// Which way a segment travels. The client is whoever the caller says it is (normally the
/// sender of the first SYN, or the first segment seen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    ClientToServer,
    ServerToClient,
}

impl Direction {
    /// The opposite direction.
    pub const fn reverse(self) -> Direction {
        match self {
            Direction::ClientToServer => Direction::ServerToClient,
            Direction::ServerToClient => Direction::ClientToServer,
        }
    }
}

/// TCP header flags, with the wire's bit values so a raw flags byte converts directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x01);
    pub const SYN: TcpFlags = TcpFlags(0x02);
    pub const RST: TcpFlags = TcpFlags(0x04);
    pub const PSH: TcpFlags = TcpFlags(0x08);
    pub const ACK: TcpFlags = TcpFlags(0x10);
    pub const URG: TcpFlags = TcpFlags(0x20);
    pub const NONE: TcpFlags = TcpFlags(0);

    /// All bits of `other` are set in `self`.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn syn(self) -> bool {
        self.contains(TcpFlags::SYN)
    }
    pub const fn fin(self) -> bool {
        self.contains(TcpFlags::FIN)
    }
    pub const fn rst(self) -> bool {
        self.contains(TcpFlags::RST)
    }
    pub const fn ack(self) -> bool {
        self.contains(TcpFlags::ACK)
    }
}

impl BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

/// One TCP segment of one direction, as the reassembler needs it. No timestamps: expiry is
/// the caller's business.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Sequence number of the segment (of the SYN itself when SYN is set).
    pub seq: SeqNum,
    /// Acknowledgement number; used only when `flags` contains ACK.
    pub ack: Option<SeqNum>,
    pub flags: TcpFlags,
    /// TCP payload (what the IP total length says, possibly truncated by the snap length:
    /// pass only the bytes actually captured and the reassembler sees a shorter segment, so
    /// the missing tail becomes a gap if nothing else covers it).
    pub payload: &'a [u8],
}

impl<'a> Segment<'a> {
    /// A segment without an acknowledgement number.
    pub const fn new(seq: SeqNum, flags: TcpFlags, payload: &'a [u8]) -> Segment<'a> {
        Segment {
            seq,
            ack: None,
            flags,
            payload,
        }
    }

    /// The same segment carrying acknowledgement number `ack` (and the ACK flag).
    #[must_use]
    pub const fn with_ack(mut self, ack: SeqNum) -> Segment<'a> {
        self.ack = Some(ack);
        self.flags = TcpFlags(self.flags.0 | TcpFlags::ACK.0);
        self
    }

    /// The acknowledgement number if the ACK flag makes it meaningful.
    pub const fn acknowledgement(&self) -> Option<SeqNum> {
        if self.flags.ack() { self.ack } else { None }
    }
}

/// Why a direction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Delivery reached the FIN.
    Fin,
    /// Either side sent RST.
    Rst,
    /// The caller flushed the stream without a FIN.
    Flush,
}

/// What the reassembler reports. See the module docs for the exact contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// The next `bytes.len()` bytes of the stream, starting at `offset`.
    Data { offset: u64, bytes: Cow<'a, [u8]> },
    /// `len` bytes at `offset` that will never be delivered.
    Gap { offset: u64, len: u64 },
    /// Bytes at `[offset, offset + len)` arrived again while held; `conflicting` when they
    /// differ from the held copy.
    Overlap {
        offset: u64,
        len: u64,
        conflicting: bool,
    },
    /// The direction is finished.
    Closed { reason: CloseReason },
}

impl Event<'_> {
    /// The same event owning its bytes.
    pub fn into_owned(self) -> Event<'static> {
        match self {
            Event::Data { offset, bytes } => Event::Data {
                offset,
                bytes: Cow::Owned(bytes.into_owned()),
            },
            Event::Gap { offset, len } => Event::Gap { offset, len },
            Event::Overlap {
                offset,
                len,
                conflicting,
            } => Event::Overlap {
                offset,
                len,
                conflicting,
            },
            Event::Closed { reason } => Event::Closed { reason },
        }
    }
}

/// Where events go. Implemented for `Vec<Event>` (direction dropped), for
/// `Vec<(Direction, Event)>`, and for any `FnMut(Direction, Event)` closure. (Because both
/// `Vec`s qualify, a bare `Vec::new()` needs its element type named.)
///
/// Events borrow from the segment's payload for `'a` (in-order data is lent, not copied), so
/// a sink that outlives the payload must [`Event::into_owned`] what it keeps.
pub trait EventSink<'a> {
    fn event(&mut self, direction: Direction, event: Event<'a>);
}

impl<'a> EventSink<'a> for Vec<Event<'a>> {
    fn event(&mut self, _direction: Direction, event: Event<'a>) {
        self.push(event);
    }
}

impl<'a> EventSink<'a> for Vec<(Direction, Event<'a>)> {
    fn event(&mut self, direction: Direction, event: Event<'a>) {
        self.push((direction, event));
    }
}

impl<'a, F: FnMut(Direction, Event<'a>)> EventSink<'a> for F {
    fn event(&mut self, direction: Direction, event: Event<'a>) {
        self(direction, event);
    }
}

/// Which copy wins when bytes for the same offset arrive twice before delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OverlapPolicy {
    /// The bytes already held win; a later copy only fills what was missing. Default.
    #[default]
    FirstWins,
    /// A later copy overwrites the held bytes it overlaps.
    LastWins,
}

/// Tunables of one direction. `Config::default()` is meant for production use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Overlap policy; default [`OverlapPolicy::FirstWins`].
    pub policy: OverlapPolicy,
    /// Most memory one direction may hold for out-of-order data (payload plus
    /// [`CHUNK_OVERHEAD`] per chunk); default 1 MiB. Exceeding it forces a skip ahead.
    pub max_buffered: usize,
    /// A segment starting more than this many bytes beyond the next expected offset is
    /// dropped as out of window; default 1 GiB (the largest scaled TCP window).
    pub max_ahead: u64,
    /// When the peer acknowledges bytes that were never seen, declare them a gap right away
    /// (they were sent and received, so the capture missed them) instead of waiting for
    /// flush; default true. Turn off when the capture may deliver an ACK before the data it
    /// acknowledges.
    pub gap_on_ack: bool,
}

impl Config {
    pub const DEFAULT_MAX_BUFFERED: usize = 1 << 20;
    pub const DEFAULT_MAX_AHEAD: u64 = 1 << 30;
}

impl Default for Config {
    fn default() -> Self {
        Config {
            policy: OverlapPolicy::FirstWins,
            max_buffered: Config::DEFAULT_MAX_BUFFERED,
            max_ahead: Config::DEFAULT_MAX_AHEAD,
            gap_on_ack: true,
        }
    }
}

/// Per-direction counters: every byte that is not delivered shows up in one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Segments fed to this direction.
    pub segments: u64,
    /// Bytes delivered in `Data` events.
    pub delivered_bytes: u64,
    /// `Gap` events and their total length.
    pub gaps: u64,
    pub gap_bytes: u64,
    /// `Overlap` events and the bytes they cover.
    pub overlaps: u64,
    pub overlap_bytes: u64,
    /// Overlaps with differing bytes, and how many bytes differed.
    pub conflicting_overlaps: u64,
    pub conflicting_bytes: u64,
    /// Bytes for offsets already passed (delivered, or skipped as a gap): retransmissions,
    /// and data arriving too late for a hole already declared a gap. Not compared.
    pub retransmitted_bytes: u64,
    /// Segments that had bytes put in the out-of-order store, and those bytes.
    pub out_of_order_segments: u64,
    pub out_of_order_bytes: u64,
    /// Skips ahead forced by [`Config::max_buffered`] or by the shared [`Budget`].
    pub cap_skips: u64,
    pub budget_skips: u64,
    /// Keep-alive probes ignored.
    pub keep_alives: u64,
    /// Bytes before offset 0 (midstream pickup), never delivered.
    pub before_start_bytes: u64,
    /// Bytes beyond the FIN or after `Closed`.
    pub after_close_bytes: u64,
    /// Segments (and their bytes) dropped for starting beyond [`Config::max_ahead`], plus
    /// RSTs and ACKs that far off (ignored).
    pub out_of_window_segments: u64,
    pub out_of_window_bytes: u64,
    /// SYNs repeating the known ISN.
    pub duplicate_syns: u64,
    /// SYNs that cannot belong to this stream (another ISN after data or close).
    pub unexpected_syns: u64,
    /// FINs at an offset other than the first FIN's.
    pub fin_conflicts: u64,
    /// Most memory held at once for out-of-order data (accounted like the caps).
    pub peak_buffered: usize,
}

/// How offset 0 of a direction was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// From the SYN: offset 0 is `ISN + 1`.
    Syn,
    /// Midstream pickup: the first data (or FIN) segment's sequence number.
    Midstream,
    /// Midstream pickup: the peer's acknowledgement number, seen before any data.
    PeerAck,
}
