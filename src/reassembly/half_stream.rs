//! One direction of a TCP connection: [`HalfStream`].

use std::borrow::Cow;
use std::cmp::{max, min};
use std::collections::BTreeMap;

use super::{
    Budget, CHUNK_OVERHEAD, CloseReason, Config, Counters, Direction, Event, EventSink, Origin,
    OverlapPolicy, Segment,
};
use crate::seq::SeqNum;

/// Reassembles one direction of a TCP connection. See the [module docs](super) for the
/// contract.
///
/// Invariants, true after every public call (checked by [`HalfStream::invariant_violation`]):
/// - `next` is the offset of the next byte to deliver; the Data and Gap events emitted so far
///   tile `[0, next)`, so `delivered_bytes + gap_bytes == next`.
/// - The out-of-order store holds non-empty, disjoint chunks, each starting after `next`
///   and ending at or before the FIN offset if one is known.
/// - `buffered` is exactly the sum over chunks of `len + CHUNK_OVERHEAD`, is at most
///   `config.max_buffered`, and is exactly what this stream holds reserved in its budget.
/// - Once closed, the store is empty and nothing more is emitted.
#[derive(Debug)]
pub struct HalfStream {
    direction: Direction,
    config: Config,
    budget: Budget,
    /// Sequence number of offset 0, once known.
    base: Option<SeqNum>,
    origin: Option<Origin>,
    /// The SYN's sequence number, if a SYN was seen.
    isn: Option<SeqNum>,
    next: u64,
    store: BTreeMap<u64, Vec<u8>>,
    buffered: usize,
    /// Offset of the FIN (the end of the data), once seen.
    fin: Option<u64>,
    closed: Option<CloseReason>,
    counters: Counters,
}

/// Which limit refused a reservation.
#[derive(Debug, Clone, Copy)]
enum Pressure {
    Cap,
    Budget,
}

/// Offsets are `u64`; segment positions are `i64` (they may fall before offset 0). Real
/// streams never come near 2^63, so saturating is only there to keep absurd input panic-free.
fn signed(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

fn len64(bytes: &[u8]) -> u64 {
    bytes.len() as u64
}

/// Index into a slice for a distance known to be at most its length.
fn index(distance: u64) -> usize {
    usize::try_from(distance).unwrap_or(usize::MAX)
}

impl HalfStream {
    /// A fresh direction that reports its events as `direction` and draws out-of-order memory
    /// from `budget` (the handle is cloned; the memory goes back when this is dropped).
    pub fn new(direction: Direction, config: Config, budget: &Budget) -> HalfStream {
        HalfStream {
            direction,
            config,
            budget: budget.clone(),
            base: None,
            origin: None,
            isn: None,
            next: 0,
            store: BTreeMap::new(),
            buffered: 0,
            fin: None,
            closed: None,
            counters: Counters::default(),
        }
    }

    /// Feed one segment of this direction. Events it causes go to `sink`, in order.
    ///
    /// The acknowledgement number is ignored here (it describes the *other* direction): pass
    /// it to the peer's [`HalfStream::peer_ack`], or use a [`super::Conversation`] which does.
    pub fn segment<'a>(&mut self, segment: Segment<'a>, sink: &mut impl EventSink<'a>) {
        self.counters.segments += 1;
        let flags = segment.flags;
        let payload = segment.payload;

        if flags.rst() {
            if self.accepts_rst(segment.seq) {
                self.reset(sink);
            } else {
                self.counters.out_of_window_segments += 1;
            }
            return;
        }
        if flags.syn() && !self.syn(segment.seq) {
            return;
        }
        let base = match self.base {
            Some(base) => base,
            None => {
                if payload.is_empty() && !flags.fin() {
                    // A pure ACK says little about where data starts (it may be a keep-alive).
                    return;
                }
                self.base = Some(segment.seq);
                self.origin = Some(Origin::Midstream);
                segment.seq
            }
        };
        let data_seq = if flags.syn() {
            segment.seq.add(1)
        } else {
            segment.seq
        };
        let start = data_seq.offset_from(base, self.next);
        let next = signed(self.next);

        if !flags.syn() && !flags.fin() && payload.len() <= 1 && start == next - 1 {
            self.counters.keep_alives += 1;
            return;
        }
        if payload.is_empty() && !flags.fin() {
            return;
        }
        let max_ahead = i64::try_from(self.config.max_ahead).unwrap_or(i64::MAX);
        if start > next.saturating_add(max_ahead) {
            self.counters.out_of_window_segments += 1;
            self.counters.out_of_window_bytes += len64(payload);
            return;
        }
        if !payload.is_empty() {
            self.data(start, payload, sink);
        }
        if flags.fin() {
            let end = start.saturating_add(i64::try_from(payload.len()).unwrap_or(i64::MAX));
            self.fin_at(end);
        }
        self.settle(sink);
    }

    /// The peer acknowledged `ack` in this direction's sequence space.
    ///
    /// Before any data, this fixes offset 0 (midstream pickup, [`Origin::PeerAck`]). After,
    /// with [`Config::gap_on_ack`], bytes below `ack` that were never seen are declared gaps
    /// at once (the peer received them, so the capture missed them) and held data behind
    /// them is delivered. An acknowledgement of the FIN completes the close.
    pub fn peer_ack<'a>(&mut self, ack: SeqNum, sink: &mut impl EventSink<'a>) {
        if self.closed.is_some() {
            return;
        }
        let Some(base) = self.base else {
            self.base = Some(ack);
            self.origin = Some(Origin::PeerAck);
            return;
        };
        if !self.config.gap_on_ack {
            return;
        }
        let mut target = ack.offset_from(base, self.next);
        if let Some(fin) = self.fin {
            // The FIN occupies one sequence number: its ACK is fin + 1.
            target = min(target, signed(fin));
        }
        if target <= signed(self.next) {
            return;
        }
        // target > next >= 0 here.
        let target = target.unsigned_abs();
        if target - self.next > self.config.max_ahead {
            self.counters.out_of_window_segments += 1;
            return;
        }
        while self.next < target {
            match self.store.first_key_value().map(|(&start, _)| start) {
                Some(start) if start <= self.next => {}
                Some(start) => self.gap(min(start, target) - self.next, sink),
                None => self.gap(target - self.next, sink),
            }
            self.deliver_contiguous(sink);
        }
        self.settle(sink);
    }

    /// Give up waiting: deliver everything held, declaring each hole before it a gap, then a
    /// gap up to the FIN if one is known, and close (`Fin` if a FIN was seen, else `Flush`).
    /// For end of input or an idle timeout decided by the caller. Idempotent.
    pub fn flush<'a>(&mut self, sink: &mut impl EventSink<'a>) {
        if self.closed.is_some() {
            return;
        }
        self.deliver_all_held(sink);
        if let Some(fin) = self.fin
            && fin > self.next
        {
            self.gap(fin - self.next, sink);
        }
        self.settle(sink);
        self.close(CloseReason::Flush, sink);
    }

    /// The connection was reset (by either side): deliver everything held, with gaps between,
    /// and close with [`CloseReason::Rst`]. Idempotent.
    pub fn reset<'a>(&mut self, sink: &mut impl EventSink<'a>) {
        if self.closed.is_some() {
            return;
        }
        self.deliver_all_held(sink);
        self.close(CloseReason::Rst, sink);
    }

    pub fn direction(&self) -> Direction {
        self.direction
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Offset of the next byte to deliver (= bytes delivered + gap bytes so far).
    pub fn next_offset(&self) -> u64 {
        self.next
    }

    /// Sequence number of the next byte to deliver, once offset 0 is known.
    pub fn next_seq(&self) -> Option<SeqNum> {
        self.base.map(|base| SeqNum::at_offset(base, self.next))
    }

    /// Sequence number of offset 0, once known.
    pub fn base(&self) -> Option<SeqNum> {
        self.base
    }

    /// How offset 0 was chosen, once known.
    pub fn origin(&self) -> Option<Origin> {
        self.origin
    }

    /// The SYN's sequence number, if a SYN was seen.
    pub fn isn(&self) -> Option<SeqNum> {
        self.isn
    }

    /// Offset of the FIN, if one was seen.
    pub fn fin_offset(&self) -> Option<u64> {
        self.fin
    }

    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    pub fn close_reason(&self) -> Option<CloseReason> {
        self.closed
    }

    /// Memory held for out-of-order data, accounted like [`Config::max_buffered`].
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Number of out-of-order chunks held.
    pub fn held_chunks(&self) -> usize {
        self.store.len()
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Checks the invariants listed on [`HalfStream`]; `None` when they hold. O(held chunks):
    /// meant for tests and fuzzing.
    pub fn invariant_violation(&self) -> Option<&'static str> {
        let mut cost = 0usize;
        let mut previous_end = self.next;
        for (&start, chunk) in &self.store {
            if chunk.is_empty() {
                return Some("empty chunk held");
            }
            if start <= self.next {
                return Some("held chunk not after next");
            }
            if start < previous_end {
                return Some("held chunks overlap");
            }
            previous_end = start + len64(chunk);
            if self.fin.is_some_and(|fin| previous_end > fin) {
                return Some("held chunk beyond FIN");
            }
            cost += chunk.len() + CHUNK_OVERHEAD;
        }
        if cost != self.buffered {
            return Some("buffered differs from held chunks");
        }
        if self.buffered > self.config.max_buffered {
            return Some("buffered exceeds max_buffered");
        }
        if self.closed.is_some() && !self.store.is_empty() {
            return Some("closed stream holds data");
        }
        if self.counters.delivered_bytes + self.counters.gap_bytes != self.next {
            return Some("delivered and gap bytes do not add up to next");
        }
        None
    }

    /// Handle a SYN; returns whether the rest of the segment belongs to this stream.
    fn syn(&mut self, seq: SeqNum) -> bool {
        match self.isn {
            Some(isn) if isn == seq => {
                self.counters.duplicate_syns += 1;
                true
            }
            Some(_) => {
                self.counters.unexpected_syns += 1;
                false
            }
            None if self.is_pristine() => {
                self.isn = Some(seq);
                self.base = Some(seq.add(1));
                self.origin = Some(Origin::Syn);
                true
            }
            None => {
                self.counters.unexpected_syns += 1;
                false
            }
        }
    }

    /// Nothing delivered, held or closed yet: offset 0 may still be re-chosen.
    fn is_pristine(&self) -> bool {
        self.next == 0 && self.store.is_empty() && self.fin.is_none() && self.closed.is_none()
    }

    /// Whether a RST with sequence number `seq` would be believed: unless it is farther than
    /// [`Config::max_ahead`] from the next expected byte (or offset 0 is still unknown).
    pub fn accepts_rst(&self, seq: SeqNum) -> bool {
        let Some(base) = self.base else { return true };
        let distance = seq.offset_from(base, self.next).abs_diff(signed(self.next));
        distance <= self.config.max_ahead
    }

    /// Payload bytes starting at (possibly negative) offset `start`.
    fn data<'a>(&mut self, start: i64, payload: &'a [u8], sink: &mut impl EventSink<'a>) {
        let mut bytes = payload;
        if start < 0 {
            let cut = min(start.unsigned_abs(), len64(bytes));
            self.counters.before_start_bytes += cut;
            bytes = &bytes[index(cut)..];
            if bytes.is_empty() {
                return;
            }
        }
        let mut start = start.max(0).unsigned_abs();
        if start < self.next {
            let cut = min(self.next - start, len64(bytes));
            self.counters.retransmitted_bytes += cut;
            bytes = &bytes[index(cut)..];
            start += cut;
            if bytes.is_empty() {
                return;
            }
        }
        if self.closed.is_some() {
            self.counters.after_close_bytes += len64(bytes);
            return;
        }
        if let Some(fin) = self.fin {
            let room = fin.saturating_sub(start);
            if len64(bytes) > room {
                self.counters.after_close_bytes += len64(bytes) - room;
                bytes = &bytes[..index(room)];
                if bytes.is_empty() {
                    return;
                }
            }
        }
        self.compare_held(start, bytes, sink);
        self.place(start, bytes, sink);
    }

    /// Report every overlap of `[start, start + len)` with held chunks; under
    /// [`OverlapPolicy::LastWins`] overwrite the held bytes with the new ones.
    fn compare_held<'a>(&mut self, start: u64, bytes: &[u8], sink: &mut impl EventSink<'a>) {
        if self.store.is_empty() {
            return;
        }
        let end = start + len64(bytes);
        let low = match self.store.range(..start).next_back() {
            Some((&chunk_start, chunk)) if chunk_start + len64(chunk) > start => chunk_start,
            _ => start,
        };
        for (&chunk_start, chunk) in self.store.range_mut(low..end) {
            let overlap_start = max(chunk_start, start);
            let overlap_end = min(chunk_start + len64(chunk), end);
            if overlap_start >= overlap_end {
                continue;
            }
            let held =
                &mut chunk[index(overlap_start - chunk_start)..index(overlap_end - chunk_start)];
            let new = &bytes[index(overlap_start - start)..index(overlap_end - start)];
            let differing = if held == new {
                0
            } else {
                held.iter().zip(new).filter(|(a, b)| a != b).count() as u64
            };
            let len = overlap_end - overlap_start;
            self.counters.overlaps += 1;
            self.counters.overlap_bytes += len;
            if differing > 0 {
                self.counters.conflicting_overlaps += 1;
                self.counters.conflicting_bytes += differing;
                if self.config.policy == OverlapPolicy::LastWins {
                    held.copy_from_slice(new);
                }
            }
            sink.event(
                self.direction,
                Event::Overlap {
                    offset: overlap_start,
                    len,
                    conflicting: differing > 0,
                },
            );
        }
    }

    /// Deliver or store the parts of `[start, start + len)` that no held chunk covers
    /// (covered parts were settled by `compare_held`). `start >= next`.
    fn place<'a>(&mut self, start: u64, bytes: &'a [u8], sink: &mut impl EventSink<'a>) {
        let end = start + len64(bytes);
        let mut cursor = start;
        let mut stored = false;
        while cursor < end {
            if cursor < self.next {
                // Only reachable after delivering a held chunk that covered these bytes.
                cursor = min(self.next, end);
                continue;
            }
            if cursor == self.next {
                match self.store.first_key_value().map(|(&held, _)| held) {
                    Some(held) if held <= cursor => self.deliver_contiguous(sink),
                    held => {
                        // The in-order fast path: lend the caller's bytes, no copy.
                        let stop = held.map_or(end, |held| min(held, end));
                        let piece = &bytes[index(cursor - start)..index(stop - start)];
                        self.emit_data(Cow::Borrowed(piece), sink);
                        cursor = stop;
                    }
                }
                continue;
            }
            // Out of order: skip what a held chunk covers, store the rest.
            if let Some((&held, chunk)) = self.store.range(..=cursor).next_back()
                && held + len64(chunk) > cursor
            {
                cursor = min(held + len64(chunk), end);
                continue;
            }
            let stop = self
                .store
                .range(cursor..)
                .next()
                .map_or(end, |(&held, _)| min(held, end));
            let piece = &bytes[index(cursor - start)..index(stop - start)];
            match self.reserve(piece.len() + CHUNK_OVERHEAD) {
                Ok(()) => {
                    self.store.insert(cursor, piece.to_vec());
                    self.counters.out_of_order_bytes += len64(piece);
                    stored = true;
                    cursor = stop;
                }
                Err(pressure) => self.skip_ahead(cursor, pressure, sink),
            }
        }
        if stored {
            self.counters.out_of_order_segments += 1;
        }
    }

    /// A cap refused to hold data at `cursor` (> next): move to the nearest known data (the
    /// first held chunk, or `cursor` itself), declaring the hole a gap, and deliver what is
    /// contiguous. Each call advances `next` or frees a chunk.
    fn skip_ahead<'a>(&mut self, cursor: u64, pressure: Pressure, sink: &mut impl EventSink<'a>) {
        match pressure {
            Pressure::Cap => self.counters.cap_skips += 1,
            Pressure::Budget => self.counters.budget_skips += 1,
        }
        let target = self
            .store
            .first_key_value()
            .map_or(cursor, |(&held, _)| min(held, cursor));
        if target > self.next {
            self.gap(target - self.next, sink);
        }
        self.deliver_contiguous(sink);
    }

    fn reserve(&mut self, cost: usize) -> Result<(), Pressure> {
        if self.buffered.saturating_add(cost) > self.config.max_buffered {
            return Err(Pressure::Cap);
        }
        if !self.budget.try_reserve(cost) {
            return Err(Pressure::Budget);
        }
        self.buffered += cost;
        self.counters.peak_buffered = max(self.counters.peak_buffered, self.buffered);
        Ok(())
    }

    fn release(&mut self, cost: usize) {
        self.buffered = self.buffered.saturating_sub(cost);
        self.budget.release(cost);
    }

    /// Deliver held chunks while the first one starts at `next`.
    fn deliver_contiguous<'a>(&mut self, sink: &mut impl EventSink<'a>) {
        while let Some(entry) = self.store.first_entry() {
            let start = *entry.key();
            if start > self.next {
                break;
            }
            let mut bytes = entry.remove();
            self.release(bytes.len() + CHUNK_OVERHEAD);
            if start < self.next {
                // Unreachable while the invariants hold; trimmed rather than trusted.
                debug_assert!(false, "held chunk at {start} before next {}", self.next);
                let cut = min(self.next - start, len64(&bytes));
                bytes.drain(..index(cut));
            }
            self.emit_data(Cow::Owned(bytes), sink);
        }
    }

    /// Deliver every held chunk, declaring the hole before each a gap.
    fn deliver_all_held<'a>(&mut self, sink: &mut impl EventSink<'a>) {
        while let Some(start) = self.store.first_key_value().map(|(&start, _)| start) {
            if start > self.next {
                self.gap(start - self.next, sink);
            }
            self.deliver_contiguous(sink);
        }
    }

    fn emit_data<'a>(&mut self, bytes: Cow<'a, [u8]>, sink: &mut impl EventSink<'a>) {
        if bytes.is_empty() {
            return;
        }
        let offset = self.next;
        self.next += len64(&bytes);
        self.counters.delivered_bytes += len64(&bytes);
        sink.event(self.direction, Event::Data { offset, bytes });
    }

    fn gap<'a>(&mut self, len: u64, sink: &mut impl EventSink<'a>) {
        if len == 0 {
            return;
        }
        let offset = self.next;
        self.next += len;
        self.counters.gaps += 1;
        self.counters.gap_bytes += len;
        sink.event(self.direction, Event::Gap { offset, len });
    }

    /// A FIN at (possibly negative) offset `offset`: the end of the data.
    fn fin_at(&mut self, offset: i64) {
        if self.closed.is_some() {
            return;
        }
        if offset < signed(self.next) {
            self.counters.fin_conflicts += 1;
            return;
        }
        let offset = offset.unsigned_abs();
        match self.fin {
            Some(fin) if fin == offset => {}
            Some(_) => self.counters.fin_conflicts += 1,
            None => {
                self.fin = Some(offset);
                self.truncate_held(offset);
            }
        }
    }

    /// Drop held bytes at or beyond `limit` (data after the FIN).
    fn truncate_held(&mut self, limit: u64) {
        let beyond = self.store.split_off(&limit);
        for chunk in beyond.into_values() {
            self.counters.after_close_bytes += len64(&chunk);
            self.release(chunk.len() + CHUNK_OVERHEAD);
        }
        let mut excess = 0;
        if let Some((&start, chunk)) = self.store.iter_mut().next_back()
            && start + len64(chunk) > limit
        {
            // start < limit, so the chunk keeps at least one byte.
            let keep = limit - start;
            excess = chunk.len() - index(keep);
            chunk.truncate(index(keep));
            chunk.shrink_to_fit();
        }
        if excess > 0 {
            self.counters.after_close_bytes += excess as u64;
            self.release(excess);
        }
    }

    /// Deliver what became contiguous; close when delivery reaches the FIN.
    fn settle<'a>(&mut self, sink: &mut impl EventSink<'a>) {
        if self.closed.is_some() {
            return;
        }
        self.deliver_contiguous(sink);
        if self.fin == Some(self.next) {
            self.close(CloseReason::Fin, sink);
        }
    }

    fn close<'a>(&mut self, reason: CloseReason, sink: &mut impl EventSink<'a>) {
        if self.closed.is_some() {
            return;
        }
        self.closed = Some(reason);
        let held = std::mem::take(&mut self.store);
        for chunk in held.into_values() {
            // Empty for Fin (held data never lies beyond the FIN) and after deliver_all_held.
            self.counters.after_close_bytes += len64(&chunk);
            self.release(chunk.len() + CHUNK_OVERHEAD);
        }
        sink.event(self.direction, Event::Closed { reason });
    }
}

impl Drop for HalfStream {
    fn drop(&mut self) {
        self.budget.release(self.buffered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reassembly::TcpFlags;

    const C2S: Direction = Direction::ClientToServer;

    fn half(config: Config) -> HalfStream {
        HalfStream::new(C2S, config, &Budget::unlimited())
    }

    fn data(seq: u32, payload: &[u8]) -> Segment<'_> {
        Segment::new(SeqNum(seq), TcpFlags::ACK, payload)
    }

    fn syn(seq: u32) -> Segment<'static> {
        Segment::new(SeqNum(seq), TcpFlags::SYN, &[])
    }

    fn fin(seq: u32, payload: &[u8]) -> Segment<'_> {
        Segment::new(SeqNum(seq), TcpFlags::FIN | TcpFlags::ACK, payload)
    }

    fn rst(seq: u32) -> Segment<'static> {
        Segment::new(SeqNum(seq), TcpFlags::RST, &[])
    }

    /// Data bytes delivered, concatenated, asserting contiguity on the way.
    fn delivered(events: &[Event<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut next = None;
        for event in events {
            match event {
                Event::Data { offset, bytes } => {
                    if let Some(next) = next {
                        assert_eq!(*offset, next, "data not contiguous");
                    }
                    out.extend_from_slice(bytes);
                    next = Some(offset + bytes.len() as u64);
                }
                Event::Gap { offset, len } => {
                    if let Some(next) = next {
                        assert_eq!(*offset, next, "gap not contiguous");
                    }
                    next = Some(offset + len);
                }
                _ => {}
            }
        }
        out
    }

    fn gaps(events: &[Event<'_>]) -> Vec<(u64, u64)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Gap { offset, len } => Some((*offset, *len)),
                _ => None,
            })
            .collect()
    }

    fn overlaps(events: &[Event<'_>]) -> Vec<(u64, u64, bool)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Overlap {
                    offset,
                    len,
                    conflicting,
                } => Some((*offset, *len, *conflicting)),
                _ => None,
            })
            .collect()
    }

    fn closed(events: &[Event<'_>]) -> Option<CloseReason> {
        events.iter().find_map(|e| match e {
            Event::Closed { reason } => Some(*reason),
            _ => None,
        })
    }

    fn check(stream: &HalfStream) {
        assert_eq!(stream.invariant_violation(), None);
    }

    #[test]
    fn in_order_data_is_lent_without_copy() {
        let mut stream = half(Config::default());
        let mut events = Vec::new();
        stream.segment(syn(1000), &mut events);
        stream.segment(data(1001, b"hello "), &mut events);
        stream.segment(data(1007, b"world"), &mut events);
        assert_eq!(delivered(&events), b"hello world");
        assert!(
            matches!(&events[0], Event::Data { offset: 0, bytes: Cow::Borrowed(b) } if *b == b"hello ")
        );
        assert!(matches!(
            &events[1],
            Event::Data {
                offset: 6,
                bytes: Cow::Borrowed(_)
            }
        ));
        assert_eq!(stream.next_offset(), 11);
        assert_eq!(stream.next_seq(), Some(SeqNum(1012)));
        assert_eq!(stream.origin(), Some(Origin::Syn));
        assert_eq!(stream.isn(), Some(SeqNum(1000)));
        assert_eq!(stream.counters().delivered_bytes, 11);
        check(&stream);
    }

    #[test]
    fn reordered_segments_are_delivered_in_order() {
        let mut stream = half(Config::default());
        let mut events = Vec::new();
        stream.segment(syn(0), &mut events);
        stream.segment(data(8, b"world"), &mut events);
        stream.segment(data(5, b"o, "), &mut events);
        assert!(events.is_empty());
        assert_eq!(stream.held_chunks(), 2);
        assert_eq!(stream.buffered(), 8 + 2 * CHUNK_OVERHEAD);
        stream.segment(data(1, b"hel"), &mut events);
        assert_eq!(delivered(&events), b"hel");
        stream.segment(data(4, b"l"), &mut events);
        assert_eq!(delivered(&events), b"hello, world");
        assert!(matches!(
            &events[1],
            Event::Data {
                offset: 3,
                bytes: Cow::Borrowed(_)
            }
        ));
        assert!(matches!(
            &events[2],
            Event::Data {
                offset: 4,
                bytes: Cow::Owned(_)
            }
        ));
        assert_eq!(stream.buffered(), 0);
        assert_eq!(stream.counters().out_of_order_segments, 2);
        assert_eq!(stream.counters().out_of_order_bytes, 8);
        assert_eq!(stream.counters().peak_buffered, 8 + 2 * CHUNK_OVERHEAD);
        check(&stream);
    }

    #[test]
    fn duplicates_count_as_retransmissions() {
        let mut stream = half(Config::default());
        let mut events = Vec::new();
        stream.segment(syn(0), &mut events);
        stream.segment(data(1, b"abcdef"), &mut events);
        stream.segment(data(1, b"abcdef"), &mut events);
        stream.segment(data(4, b"defgh"), &mut events);
        assert_eq!(delivered(&events), b"abcdefgh");
        assert_eq!(stream.counters().retransmitted_bytes, 6 + 3);
        assert!(overlaps(&events).is_empty());
        check(&stream);
    }

    #[test]
    fn overlap_first_wins_keeps_held_bytes_and_reports_conflict() {
        let mut stream = half(Config::default());
        let mut events = Vec::new();
        stream.segment(syn(0), &mut events);
        stream.segment(data(5, b"EFGH"), &mut events); // offsets 4..8
        stream.segment(data(3, b"cdXXgh"), &mut events); // offsets 2..8: 4..8 conflicts in 2 bytes
        assert_eq!(overlaps(&events), vec![(4, 4, true)]);
        stream.segment(data(1, b"ab"), &mut events);
        assert_eq!(delivered(&events), b"abcdEFGH");
        let counters = stream.counters();
        assert_eq!((counters.overlaps, counters.overlap_bytes), (1, 4));
        assert_eq!(
            (counters.conflicting_overlaps, counters.conflicting_bytes),
            (1, 4)
        );
        check(&stream);
    }

    #[test]
    fn overlap_last_wins_overwrites_held_bytes() {
        let config = Config {
            policy: OverlapPolicy::LastWins,
            ..Config::default()
        };
        let mut stream = half(config);
        let mut events = Vec::new();
        stream.segment(syn(0), &mut events);
        stream.segment(data(5, b"EFGH"), &mut events);
        stream.segment(data(3, b"cdefgX"), &mut events);
        stream.segment(data(1, b"ab"), &mut events);
        assert_eq!(delivered(&events), b"abcdefgX");
        assert_eq!(overlaps(&events), vec![(4, 4, true)]);
        check(&stream);
    }

    #[test]
    fn identical_overlap_is_reported_not_conflicting() {
        let mut stream = half(Config::default());
        let mut events = Vec::new();
        stream.segment(syn(0), &mut events);
        stream.segment(data(5, b"efgh"), &mut events);
        stream.segment(data(6, b"fghij"), &mut events);
        assert_eq!(overlaps(&events), vec![(5, 3, false)]);
        stream.segment(data(1, b"abcd"), &mut events);
        assert_eq!(delivered(&events), b"abcdefghij");
        assert_eq!(stream.counters().conflicting_overlaps, 0);
        check(&stream);
    }

    #[test]
    fn segment_spanning_next_and_held_chunks_interleaves_delivery() {
        let mut stream = half(Config::default());
        let mut events = Vec::new();
        stream.segment(syn(0), &mut events);
        stream.segment(data(4, b"DE"), &mut events); // 3..5
        stream.segment(data(8, b"HI"), &mut events); // 7..9
        stream.segment(data(1, b"abcdefghijk"), &mut events); // 0..11
        assert_eq!(delivered(&events), b"abcDEfgHIjk");
        assert_eq!(overlaps(&events), vec![(3, 2, true), (7, 2, true)]);
        let kinds: Vec<bool> = events
            .iter()
            .filter_map(|e| match e {
                Event::Data { bytes, .. } => Some(matches!(bytes, Cow::Borrowed(_))),
                _ => None,
            })
            .collect();
        assert_eq!(kinds, vec![true, false, true, false, true]);
        check(&stream);
    }

    #[test]
    fn syn_with_data_starts_at_offset_zero() {
        let mut stream = half(Config::default());
        let mut events = Vec::new();
        stream.segment(Segment::new(SeqNum(41), TcpFlags::SYN, b"tfo"), &mut events);
        stream.segment(data(45, b"!"), &mut events);
        assert_eq!(delivered(&events), b"tfo!");
        assert!(matches!(events[0], Event::Data { offset: 0, .. }));
    }

    #[test]
    fn repeated_syn_counts_and_new_isn_after_data_is_ignored() {
        let mut stream = half(Config::default());
        let mut events = Vec::new();
        stream.segment(syn(100), &mut events);
        stream.segment(syn(100), &mut events);
        stream.segment(data(101, b"x"), &mut events);
        stream.segment(
            Segment::new(SeqNum(9000), TcpFlags::SYN, b"other"),
            &mut events,
        );
        assert_eq!(delivered(&events), b"x");
        assert_eq!(stream.counters().duplicate_syns, 1);
        assert_eq!(stream.counters().unexpected_syns, 1);
    }

    #[test]
    fn syn_seen_after_midstream_base_rebases_while_nothing_happened() {
        let mut stream = half(Config::default());
        let mut events = Vec::new();
        stream.peer_ack(SeqNum(5000), &mut events);
        assert_eq!(stream.origin(), Some(Origin::PeerAck));
        stream.segment(syn(10), &mut events);
        assert_eq!(stream.origin(), Some(Origin::Syn));
        stream.segment(data(11, b"a"), &mut events);
        assert_eq!(delivered(&events), b"a");
    }

    #[test]
    fn fin_closes_once_delivery_reaches_it() {
        let mut stream = half(Config::default());
        let mut events = Vec::new();
        stream.segment(syn(0), &mut events);
        stream.segment(fin(4, b"def"), &mut events); // FIN at offset 6, data 3..6 held
        assert_eq!(closed(&events), None);
        assert_eq!(stream.fin_offset(), Some(6));
        stream.segment(data(1, b"abc"), &mut events);
        assert_eq!(delivered(&events), b"abcdef");
        assert_eq!(closed(&events), Some(CloseReason::Fin));
        assert!(matches!(
            events.last(),
            Some(Event::Closed {
                reason: CloseReason::Fin
            })
        ));
        assert!(stream.is_closed());
        // Retransmitted FIN and late data after close only count.
        stream.segment(fin(4, b"def"), &mut events);
        stream.segment(data(7, b"zz"), &mut events);
        assert_eq!(events.len(), 3);
        assert_eq!(stream.counters().retransmitted_bytes, 3);
        assert_eq!(stream.counters().after_close_bytes, 2);
        check(&stream);
    }

    #[test]
    fn data_beyond_fin_is_dropped_and_counted() {
        let mut stream = half(Config::default());
        let mut events = Vec::new();
        stream.segment(syn(0), &mut events);
        stream.segment(data(5, b"efgh"), &mut events); // 4..8 held
        stream.segment(fin(3, b""), &mut events); // FIN at 2: held data after it is void
        assert_eq!(stream.counters().after_close_bytes, 4);
        assert_eq!(stream.buffered(), 0);
        stream.segment(data(1, b"abXY"), &mut events);
        assert_eq!(delivered(&events), b"ab");
        assert_eq!(stream.counters().after_close_bytes, 6);
        assert_eq!(closed(&events), Some(CloseReason::Fin));
        check(&stream);
    }

    #[test]
    fn fin_with_hole_declares_gap_on_flush() {
        let mut stream = half(Config::default());
        let mut events = Vec::new();
        stream.segment(syn(0), &mut events);
        stream.segment(data(1, b"ab"), &mut events);
        stream.segment(data(6, b"fg"), &mut events); // 5..7
        stream.segment(fin(10, b""), &mut events); // FIN at 9
        stream.flush(&mut events);
        assert_eq!(gaps(&events), vec![(2, 3), (7, 2)]);
        assert_eq!(delivered(&events), b"abfg");
        assert_eq!(closed(&events), Some(CloseReason::Fin));
        stream.flush(&mut events);
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, Event::Closed { .. }))
                .count(),
            1
        );
        check(&stream);
    }

    #[test]
    fn flush_without_fin_closes_with_flush() {
        let mut stream = half(Config::default());
        let mut events = Vec::new();
        stream.segment(syn(0), &mut events);
        stream.segment(data(4, b"d"), &mut events);
        stream.flush(&mut events);
        assert_eq!(gaps(&events), vec![(0, 3)]);
        assert_eq!(delivered(&events), b"d");
        assert_eq!(closed(&events), Some(CloseReason::Flush));
        check(&stream);
    }

    #[test]
    fn rst_delivers_held_data_with_gaps_and_closes() {
        let mut stream = half(Config::default());
        let mut events = Vec::new();
        stream.segment(syn(0), &mut events);
        stream.segment(data(1, b"ab"), &mut events);
        stream.segment(data(5, b"ef"), &mut events);
        stream.segment(data(9, b"ij"), &mut events);
        stream.segment(rst(3), &mut events);
        assert_eq!(gaps(&events), vec![(2, 2), (6, 2)]);
        assert_eq!(delivered(&events), b"abefij");
        assert_eq!(closed(&events), Some(CloseReason::Rst));
        assert_eq!(stream.buffered(), 0);
        check(&stream);
    }

    #[test]
    fn rst_far_out_of_window_is_ignored() {
        let config = Config {
            max_ahead: 1000,
            ..Config::default()
        };
        let mut stream = half(config);
        let mut events: Vec<Event> = Vec::new();
        stream.segment(syn(0), &mut events);
        stream.segment(rst(1_000_000), &mut events);
        assert!(!stream.is_closed());
        assert_eq!(stream.counters().out_of_window_segments, 1);
    }

    #[test]
    fn keep_alives_are_ignored() {
        let mut stream = half(Config::default());
        let mut events = Vec::new();
        stream.segment(syn(0), &mut events);
        stream.segment(data(0, b""), &mut events); // seq = next - 1 right after the SYN
        stream.segment(data(1, b"abc"), &mut events);
        stream.segment(data(3, b""), &mut events);
        stream.segment(data(3, b"\0"), &mut events); // garbage byte, not data
        stream.segment(data(4, b"d"), &mut events);
        assert_eq!(delivered(&events), b"abcd");
        assert_eq!(stream.counters().keep_alives, 3);
        assert_eq!(stream.counters().conflicting_overlaps, 0);
        assert_eq!(stream.counters().retransmitted_bytes, 0);
    }

    #[test]
    fn sequence_wrap_around_is_seamless() {
        let isn = u32::MAX - 5;
        let mut stream = half(Config::default());
        let mut events = Vec::new();
        stream.segment(syn(isn), &mut events);
        let payload: Vec<u8> = (0..20).collect();
        // Crosses 2^32 at offset 5; deliver the second half first.
        stream.segment(data(isn.wrapping_add(11), &payload[10..]), &mut events);
        stream.segment(data(isn.wrapping_add(1), &payload[..10]), &mut events);
        assert_eq!(delivered(&events), payload);
        assert_eq!(stream.next_seq(), Some(SeqNum(isn).add(21)));
        check(&stream);
    }

    #[test]
    fn stream_longer_than_4_gib_keeps_exact_offsets() {
        let mut stream = half(Config::default());
        let isn = 0xfff0_0000u32;
        stream.segment(syn(isn), &mut Vec::<Event>::new());
        let chunk = vec![7u8; 65536];
        let chunks = (1u64 << 32) / 65536 + 3; // past 4 GiB, crossing the sequence wrap twice
        let mut total = 0u64;
        let mut gaps_seen = 0;
        let mut sink = |_: Direction, event: Event<'_>| match event {
            Event::Data { offset, bytes } => {
                assert_eq!(offset, total);
                total += bytes.len() as u64;
            }
            Event::Gap { .. } => gaps_seen += 1,
            _ => {}
        };
        for i in 0..chunks - 2 {
            let seq = SeqNum(isn).add(1).add_u64(i * 65536);
            stream.segment(Segment::new(seq, TcpFlags::ACK, &chunk), &mut sink);
        }
        // The last two reordered, across the 4 GiB boundary.
        for i in [chunks - 1, chunks - 2] {
            let seq = SeqNum(isn).add(1).add_u64(i * 65536);
            stream.segment(Segment::new(seq, TcpFlags::ACK, &chunk), &mut sink);
        }
        assert_eq!(total, chunks * 65536);
        assert_eq!(gaps_seen, 0);
        assert_eq!(stream.next_offset(), chunks * 65536);
        assert!(stream.next_offset() > 1 << 32);
        check(&stream);
    }

    #[test]
    fn midstream_pickup_starts_at_first_data_and_counts_earlier_bytes() {
        let mut stream = half(Config::default());
        let mut events = Vec::new();
        stream.segment(data(5000, b""), &mut events); // pure ACK: no base yet
        assert_eq!(stream.base(), None);
        stream.segment(data(5010, b"klm"), &mut events);
        assert_eq!(stream.origin(), Some(Origin::Midstream));
        stream.segment(data(5000, b"abcdefghijklmn"), &mut events); // reordered earlier segment
        assert_eq!(delivered(&events), b"klmn");
        assert_eq!(stream.counters().before_start_bytes, 10);
        assert_eq!(stream.counters().retransmitted_bytes, 3);
        check(&stream);
    }

    #[test]
    fn per_stream_cap_skips_ahead_with_a_gap() {
        let config = Config {
            max_buffered: 2 * (100 + CHUNK_OVERHEAD),
            ..Config::default()
        };
        let mut stream = half(config);
        let mut events = Vec::new();
        stream.segment(syn(0), &mut events);
        let payload = [1u8; 100];
        // Offsets 0..100 lost; 100..400 arrive; the third chunk does not fit.
        stream.segment(data(101, &payload), &mut events);
        stream.segment(data(201, &payload), &mut events);
        assert!(events.is_empty());
        stream.segment(data(301, &payload), &mut events);
        assert_eq!(gaps(&events), vec![(0, 100)]);
        assert_eq!(delivered(&events).len(), 300);
        assert_eq!(stream.counters().cap_skips, 1);
        assert_eq!(stream.buffered(), 0);
        // The lost bytes arriving now are too late.
        stream.segment(data(1, &payload), &mut events);
        assert_eq!(stream.counters().retransmitted_bytes, 100);
        check(&stream);
    }

    #[test]
    fn cap_smaller_than_a_segment_delivers_it_directly() {
        let config = Config {
            max_buffered: 0,
            ..Config::default()
        };
        let mut stream = half(config);
        let mut events = Vec::new();
        stream.segment(syn(0), &mut events);
        stream.segment(data(11, b"later"), &mut events);
        assert_eq!(gaps(&events), vec![(0, 10)]);
        assert_eq!(delivered(&events), b"later");
        assert!(matches!(
            events[1],
            Event::Data {
                bytes: Cow::Borrowed(_),
                ..
            }
        ));
        check(&stream);
    }

    #[test]
    fn shared_budget_bounds_many_streams_and_is_returned() {
        let budget = Budget::new(3 * (10 + CHUNK_OVERHEAD));
        let mut streams: Vec<HalfStream> = (0..4)
            .map(|_| HalfStream::new(C2S, Config::default(), &budget))
            .collect();
        let mut events = Vec::new();
        for stream in &mut streams {
            stream.segment(syn(0), &mut events);
            stream.segment(data(11, &[9u8; 10]), &mut events);
            assert!(budget.used() <= budget.limit());
        }
        assert_eq!(budget.used(), 3 * (10 + CHUNK_OVERHEAD));
        // The fourth stream could not hold its data: it skipped ahead.
        assert_eq!(streams[3].counters().budget_skips, 1);
        assert_eq!(gaps(&events), vec![(0, 10)]);
        assert_eq!(budget.refusals(), 1);
        // Delivery returns memory; dropping a stream returns the rest.
        streams[0].segment(data(1, &[0u8; 10]), &mut events);
        assert_eq!(budget.used(), 2 * (10 + CHUNK_OVERHEAD));
        streams.truncate(1);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn far_ahead_segment_is_dropped_as_out_of_window() {
        let config = Config {
            max_ahead: 1 << 16,
            ..Config::default()
        };
        let mut stream = half(config);
        let mut events = Vec::new();
        stream.segment(syn(0), &mut events);
        stream.segment(data(1 << 20, b"junk"), &mut events);
        stream.segment(fin(1 << 21, b""), &mut events);
        assert_eq!(stream.counters().out_of_window_segments, 2);
        assert_eq!(stream.counters().out_of_window_bytes, 4);
        assert_eq!(stream.fin_offset(), None);
        stream.segment(data(1, b"ok"), &mut events);
        assert_eq!(delivered(&events), b"ok");
        check(&stream);
    }

    #[test]
    fn peer_ack_beyond_a_hole_declares_it_a_gap() {
        let mut stream = half(Config::default());
        let mut events = Vec::new();
        stream.segment(syn(0), &mut events);
        stream.segment(data(1, b"ab"), &mut events);
        stream.segment(data(6, b"fg"), &mut events);
        stream.peer_ack(SeqNum(3), &mut events); // acks what we have: nothing new
        assert!(gaps(&events).is_empty());
        stream.peer_ack(SeqNum(10), &mut events); // acks 0..9: holes 2..5 and 7..9 were missed
        assert_eq!(gaps(&events), vec![(2, 3), (7, 2)]);
        assert_eq!(delivered(&events), b"abfg");
        assert_eq!(stream.next_offset(), 9);
        check(&stream);
    }

    #[test]
    fn peer_ack_of_fin_completes_close_over_a_hole() {
        let mut stream = half(Config::default());
        let mut events = Vec::new();
        stream.segment(syn(0), &mut events);
        stream.segment(fin(4, b"d"), &mut events); // data 3..4, FIN at 4
        stream.peer_ack(SeqNum(6), &mut events); // ack of FIN = fin seq + 1
        assert_eq!(gaps(&events), vec![(0, 3)]);
        assert_eq!(closed(&events), Some(CloseReason::Fin));
        check(&stream);
    }

    #[test]
    fn gap_on_ack_can_be_turned_off() {
        let config = Config {
            gap_on_ack: false,
            ..Config::default()
        };
        let mut stream = half(config);
        let mut events: Vec<Event> = Vec::new();
        stream.segment(syn(0), &mut events);
        stream.segment(data(6, b"fg"), &mut events);
        stream.peer_ack(SeqNum(10), &mut events);
        assert!(events.is_empty());
    }

    #[test]
    fn events_go_to_a_closure_sink_with_direction() {
        let mut stream = HalfStream::new(
            Direction::ServerToClient,
            Config::default(),
            &Budget::default(),
        );
        let mut seen = Vec::new();
        stream.segment(syn(0), &mut |d: Direction, e: Event<'_>| {
            seen.push((d, e.into_owned()))
        });
        stream.segment(data(1, b"x"), &mut |d: Direction, e: Event<'_>| {
            seen.push((d, e.into_owned()))
        });
        assert_eq!(
            seen,
            vec![(
                Direction::ServerToClient,
                Event::Data {
                    offset: 0,
                    bytes: Cow::Owned(b"x".to_vec())
                }
            )]
        );
    }
}
