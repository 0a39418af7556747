//! Property tests of the reassembly contract (module docs of [`super`]). 256 cases each by
//! default; `PROPTEST_CASES=N` for a longer run.
//!
//! - `any_segmentation_rebuilds_the_stream`, `midstream_pickup_rebuilds_the_tail`: any
//!   segmentation, reordering, duplication and identical-byte overlap of a known stream,
//!   under either policy and any ISN (often near the wrap), rebuilds it exactly: no gaps, no
//!   conflicts, `Closed { Fin }` last.
//! - `dropped_ranges_become_exact_gaps`: dropping pieces yields `Gap` events exactly at the
//!   dropped ranges (adjacent drops merged), on flush or on the ACK of the FIN, and every
//!   other byte intact.
//! - `conflicting_overlaps_are_reported`: a forged copy of held bytes is reported with the
//!   exact overlapped ranges, `conflicting` exactly where bytes differ, and the policy decides
//!   what is delivered.
//! - `caps_bound_memory_and_never_corrupt`: random sub-ranges of a known stream under tiny
//!   per-stream caps and a tiny shared budget: memory stays within both caps, events tile
//!   the stream, every delivered byte is the stream's byte, and the budget is returned.
//! - `arbitrary_segments_never_break_invariants`: arbitrary seq/ack/flags/payloads on two
//!   conversations sharing a budget never panic and never break the invariants.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::{
    Budget, CHUNK_OVERHEAD, CloseReason, Config, Conversation, Direction, Event, EventSink,
    HalfStream, OverlapPolicy, Segment, TcpFlags,
};
use crate::seq::SeqNum;

/// Sink that checks contiguity per direction and records what arrived.
#[derive(Default)]
struct Tracker {
    next: BTreeMap<bool, u64>,
    data: Vec<(u64, Vec<u8>)>,
    gaps: Vec<(u64, u64)>,
    overlaps: Vec<(u64, u64, bool)>,
    closed: Vec<CloseReason>,
    after_close: bool,
}

impl<'a> EventSink<'a> for Tracker {
    fn event(&mut self, direction: Direction, event: Event<'a>) {
        let key = direction == Direction::ClientToServer;
        let next = self.next.entry(key).or_insert(0);
        if !self.closed.is_empty() {
            self.after_close = true;
        }
        match event {
            Event::Data { offset, bytes } => {
                assert_eq!(offset, *next, "data not contiguous");
                assert!(!bytes.is_empty(), "empty data event");
                *next += bytes.len() as u64;
                self.data.push((offset, bytes.into_owned()));
            }
            Event::Gap { offset, len } => {
                assert_eq!(offset, *next, "gap not contiguous");
                assert!(len > 0, "empty gap event");
                *next += len;
                self.gaps.push((offset, len));
            }
            Event::Overlap {
                offset,
                len,
                conflicting,
            } => self.overlaps.push((offset, len, conflicting)),
            Event::Closed { reason } => self.closed.push(reason),
        }
    }
}

impl Tracker {
    fn bytes(&self) -> Vec<u8> {
        self.data
            .iter()
            .flat_map(|(_, bytes)| bytes.iter().copied())
            .collect()
    }
}

fn isn() -> impl Strategy<Value = u32> {
    prop_oneof![any::<u32>(), (u32::MAX - 4000)..=u32::MAX]
}

fn policy() -> impl Strategy<Value = OverlapPolicy> {
    prop_oneof![
        Just(OverlapPolicy::FirstWins),
        Just(OverlapPolicy::LastWins)
    ]
}

/// Cut `len` bytes into consecutive pieces of the given sizes (the last one reaching `len`).
fn pieces(len: usize, sizes: &[usize]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut sizes = sizes.iter().cycle();
    while start < len {
        let size = sizes.next().copied().unwrap_or(len);
        let end = (start + size).min(len);
        out.push((start, end));
        start = end;
    }
    out
}

/// Order `items` by the random `keys` (a shuffle that proptest can shrink).
fn shuffled<T: Clone>(items: &[T], keys: &[u32]) -> Vec<T> {
    let mut keyed: Vec<(u32, usize)> = (0..items.len())
        .map(|i| (keys.get(i).copied().unwrap_or(0), i))
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, i)| items[i].clone()).collect()
}

fn data_at(isn: u32, offset: usize, payload: &[u8]) -> Segment<'_> {
    Segment::new(
        SeqNum(isn).add(1).add_u64(offset as u64),
        TcpFlags::ACK | TcpFlags::PSH,
        payload,
    )
}

fn fin_at(isn: u32, offset: usize) -> Segment<'static> {
    Segment::new(
        SeqNum(isn).add(1).add_u64(offset as u64),
        TcpFlags::FIN | TcpFlags::ACK,
        &[],
    )
}

fn syn(isn: u32) -> Segment<'static> {
    Segment::new(SeqNum(isn), TcpFlags::SYN, &[])
}

/// What to feed: a data range, or the FIN.
#[derive(Debug, Clone, Copy)]
enum Feed {
    Range(usize, usize),
    Fin,
}

fn check(stream: &HalfStream) -> Result<(), TestCaseError> {
    prop_assert_eq!(stream.invariant_violation(), None);
    Ok(())
}

proptest! {
    #[test]
    fn any_segmentation_rebuilds_the_stream(
        stream in prop::collection::vec(any::<u8>(), 1..3000),
        sizes in prop::collection::vec(1usize..400, 1..40),
        extras in prop::collection::vec((any::<prop::sample::Index>(), 1usize..500), 0..20),
        keys in prop::collection::vec(any::<u32>(), 100),
        isn in isn(),
        policy in policy(),
    ) {
        let mut feeds: Vec<Feed> = pieces(stream.len(), &sizes).into_iter().map(|(s, e)| Feed::Range(s, e)).collect();
        for (at, len) in &extras {
            let start = at.index(stream.len());
            feeds.push(Feed::Range(start, (start + len).min(stream.len())));
        }
        feeds.push(Feed::Fin);
        let feeds = shuffled(&feeds, &keys);

        let config = Config { policy, ..Config::default() };
        let mut half = HalfStream::new(Direction::ClientToServer, config, &Budget::unlimited());
        let mut tracker = Tracker::default();
        half.segment(syn(isn), &mut tracker);
        for feed in &feeds {
            match *feed {
                Feed::Range(start, end) => half.segment(data_at(isn, start, &stream[start..end]), &mut tracker),
                Feed::Fin => half.segment(fin_at(isn, stream.len()), &mut tracker),
            }
            check(&half)?;
        }
        prop_assert_eq!(tracker.bytes(), stream.clone());
        prop_assert!(tracker.gaps.is_empty());
        prop_assert!(tracker.overlaps.iter().all(|o| !o.2));
        prop_assert_eq!(&tracker.closed, &vec![CloseReason::Fin]);
        prop_assert!(!tracker.after_close);
        prop_assert_eq!(half.buffered(), 0);
        prop_assert_eq!(half.counters().delivered_bytes, stream.len() as u64);
    }

    #[test]
    fn midstream_pickup_rebuilds_the_tail(
        stream in prop::collection::vec(any::<u8>(), 1..2000),
        sizes in prop::collection::vec(1usize..300, 1..30),
        keys in prop::collection::vec(any::<u32>(), 100),
        duplicates in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        isn in isn(),
    ) {
        let all = pieces(stream.len(), &sizes);
        let mut ranges = all.clone();
        for index in &duplicates {
            ranges.push(all[index.index(all.len())]);
        }
        let ranges = shuffled(&ranges, &keys);
        let first = ranges[0].0;
        let mut half = HalfStream::new(Direction::ClientToServer, Config::default(), &Budget::unlimited());
        let mut tracker = Tracker::default();
        for &(start, end) in &ranges {
            half.segment(data_at(isn, start, &stream[start..end]), &mut tracker);
            check(&half)?;
        }
        half.segment(fin_at(isn, stream.len()), &mut tracker);
        prop_assert_eq!(tracker.bytes(), stream[first..].to_vec());
        prop_assert!(tracker.gaps.is_empty());
        prop_assert_eq!(&tracker.closed, &vec![CloseReason::Fin]);
        prop_assert_eq!(half.base(), Some(SeqNum(isn).add(1).add_u64(first as u64)));
    }

    #[test]
    fn dropped_ranges_become_exact_gaps(
        stream in prop::collection::vec(any::<u8>(), 1..3000),
        sizes in prop::collection::vec(1usize..300, 1..40),
        drops in prop::collection::vec(any::<bool>(), 40),
        duplicates in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        keys in prop::collection::vec(any::<u32>(), 100),
        isn in isn(),
        close_by_ack in any::<bool>(),
    ) {
        let all = pieces(stream.len(), &sizes);
        let dropped = |i: usize| drops[i % drops.len()];
        let kept: Vec<(usize, usize)> = all.iter().enumerate().filter(|(i, _)| !dropped(*i)).map(|(_, r)| *r).collect();
        let mut feeds: Vec<Feed> = kept.iter().map(|&(s, e)| Feed::Range(s, e)).collect();
        if !kept.is_empty() {
            for index in &duplicates {
                let (s, e) = kept[index.index(kept.len())];
                feeds.push(Feed::Range(s, e));
            }
        }
        feeds.push(Feed::Fin);
        let feeds = shuffled(&feeds, &keys);
        // Expected gaps: runs of dropped pieces.
        let mut expected: Vec<(u64, u64)> = Vec::new();
        for (i, &(s, e)) in all.iter().enumerate() {
            if dropped(i) {
                match expected.last_mut() {
                    Some((offset, len)) if *offset + *len == s as u64 => *len += (e - s) as u64,
                    _ => expected.push((s as u64, (e - s) as u64)),
                }
            }
        }

        let mut half = HalfStream::new(Direction::ClientToServer, Config::default(), &Budget::unlimited());
        let mut tracker = Tracker::default();
        half.segment(syn(isn), &mut tracker);
        for feed in &feeds {
            match *feed {
                Feed::Range(start, end) => half.segment(data_at(isn, start, &stream[start..end]), &mut tracker),
                Feed::Fin => half.segment(fin_at(isn, stream.len()), &mut tracker),
            }
            check(&half)?;
        }
        if close_by_ack {
            // The peer acknowledges the FIN: every hole was received, so the capture missed it.
            half.peer_ack(SeqNum(isn).add(2).add_u64(stream.len() as u64), &mut tracker);
        } else {
            half.flush(&mut tracker);
        }
        check(&half)?;
        prop_assert_eq!(&tracker.gaps, &expected);
        for (offset, bytes) in &tracker.data {
            let offset = *offset as usize;
            prop_assert_eq!(&bytes[..], &stream[offset..offset + bytes.len()]);
        }
        let gap_bytes: u64 = expected.iter().map(|g| g.1).sum();
        prop_assert_eq!(half.counters().delivered_bytes + gap_bytes, stream.len() as u64);
        prop_assert_eq!(&tracker.closed, &vec![CloseReason::Fin]);
    }

    #[test]
    fn conflicting_overlaps_are_reported(
        stream in prop::collection::vec(any::<u8>(), 2..2000),
        sizes in prop::collection::vec(1usize..300, 1..30),
        keys in prop::collection::vec(any::<u32>(), 100),
        forged_at in any::<prop::sample::Index>(),
        forged_len in 1usize..600,
        forged_bytes in prop::collection::vec(any::<u8>(), 600),
        isn in isn(),
        policy in policy(),
    ) {
        let all = pieces(stream.len(), &sizes);
        // The first piece is held back; it must leave something after it to forge.
        let first_end = all[0].1.min(stream.len() - 1);
        let mut later = all[1..].to_vec();
        if first_end < all[0].1 {
            later.push((first_end, all[0].1));
        }
        // A forged copy of held bytes: somewhere after the first piece, which is held back.
        let forged_start = first_end + forged_at.index(stream.len() - first_end);
        let forged_end = (forged_start + forged_len).min(stream.len());
        let mut forged = forged_bytes[..forged_end - forged_start].to_vec();
        if forged[..] == stream[forged_start..forged_end] {
            forged[0] ^= 0x55;
        }
        let rest = shuffled(&later, &keys);

        let config = Config { policy, ..Config::default() };
        let mut half = HalfStream::new(Direction::ClientToServer, config, &Budget::unlimited());
        let mut tracker = Tracker::default();
        half.segment(syn(isn), &mut tracker);
        for &(start, end) in &rest {
            half.segment(data_at(isn, start, &stream[start..end]), &mut tracker);
        }
        prop_assert!(tracker.data.is_empty());
        half.segment(data_at(isn, forged_start, &forged), &mut tracker);
        check(&half)?;
        // Overlaps tile exactly the forged range; conflicting exactly where bytes differ.
        let mut cursor = forged_start as u64;
        for &(offset, len, conflicting) in &tracker.overlaps {
            prop_assert_eq!(offset, cursor);
            let (s, e) = (offset as usize, (offset + len) as usize);
            let differs = stream[s..e] != forged[s - forged_start..e - forged_start];
            prop_assert_eq!(conflicting, differs);
            cursor += len;
        }
        prop_assert_eq!(cursor, forged_end as u64);
        prop_assert!(tracker.overlaps.iter().any(|o| o.2));
        half.segment(data_at(isn, 0, &stream[..first_end]), &mut tracker);
        let mut expected = stream.clone();
        if policy == OverlapPolicy::LastWins {
            expected[forged_start..forged_end].copy_from_slice(&forged);
        }
        prop_assert_eq!(tracker.bytes(), expected);
        let counters = half.counters();
        prop_assert!(counters.conflicting_overlaps >= 1);
        let differing = stream[forged_start..forged_end].iter().zip(&forged).filter(|(a, b)| a != b).count();
        prop_assert_eq!(counters.conflicting_bytes, differing as u64);
    }

    #[test]
    fn caps_bound_memory_and_never_corrupt(
        stream in prop::collection::vec(any::<u8>(), 1..4000),
        ranges in prop::collection::vec((any::<prop::sample::Index>(), 1usize..400), 1..60),
        max_buffered in 0usize..3000,
        budget_limit in 0usize..4000,
        isn in isn(),
        policy in policy(),
        second_stream in prop::collection::vec((any::<prop::sample::Index>(), 1usize..400), 0..30),
    ) {
        let budget = Budget::new(budget_limit);
        let config = Config { policy, max_buffered, ..Config::default() };
        let mut half = HalfStream::new(Direction::ClientToServer, config, &budget);
        let mut other = HalfStream::new(Direction::ServerToClient, config, &budget);
        let mut tracker = Tracker::default();
        let mut other_tracker = Tracker::default();
        half.segment(syn(isn), &mut tracker);
        other.segment(syn(isn), &mut other_tracker);
        let mut second = second_stream.iter();
        for (at, len) in &ranges {
            let start = at.index(stream.len());
            let end = (start + len).min(stream.len());
            half.segment(data_at(isn, start, &stream[start..end]), &mut tracker);
            if let Some((at, len)) = second.next() {
                let start = at.index(stream.len());
                let end = (start + len).min(stream.len());
                other.segment(data_at(isn, start, &stream[start..end]), &mut other_tracker);
            }
            check(&half)?;
            check(&other)?;
            prop_assert!(half.buffered() <= max_buffered);
            prop_assert!(budget.used() <= budget_limit);
            prop_assert_eq!(budget.used(), half.buffered() + other.buffered());
        }
        half.flush(&mut tracker);
        other.flush(&mut other_tracker);
        for tracker in [&tracker, &other_tracker] {
            for (offset, bytes) in &tracker.data {
                let offset = *offset as usize;
                prop_assert_eq!(&bytes[..], &stream[offset..offset + bytes.len()]);
            }
        }
        let counters = half.counters();
        prop_assert_eq!(counters.delivered_bytes + counters.gap_bytes, half.next_offset());
        prop_assert_eq!(budget.used(), 0);
        prop_assert!(counters.peak_buffered <= max_buffered);
        // Chunks never outnumber what the overhead charge allows.
        prop_assert!(half.held_chunks() <= max_buffered / CHUNK_OVERHEAD);
    }

    #[test]
    fn arbitrary_segments_never_break_invariants(
        segments in prop::collection::vec(
            (any::<bool>(), any::<bool>(), -200i64..5000, any::<u32>(), any::<u8>(), prop::option::of(-200i64..5000), 0usize..300),
            0..80,
        ),
        payload in prop::collection::vec(any::<u8>(), 300),
        max_buffered in 0usize..2000,
        budget_limit in 0usize..3000,
        isn in isn(),
        policy in policy(),
        gap_on_ack in any::<bool>(),
    ) {
        let budget = Budget::new(budget_limit);
        let config = Config { policy, max_buffered, max_ahead: 4096, gap_on_ack };
        let mut conversations = [Conversation::new(config, &budget), Conversation::new(config, &budget)];
        let mut trackers = [Tracker::default(), Tracker::default()];
        for (i, &(second, reverse, near, wild, flags, ack, len)) in segments.iter().enumerate() {
            let which = usize::from(second);
            let direction = if reverse { Direction::ServerToClient } else { Direction::ClientToServer };
            // Mostly near the ISN, sometimes anywhere in sequence space.
            let seq = if i % 7 == 6 { SeqNum(wild) } else { SeqNum(isn).add_u64(near as u64) };
            let mut segment = Segment::new(seq, TcpFlags(flags), &payload[..len]);
            if let Some(ack) = ack {
                segment = segment.with_ack(SeqNum(isn).add_u64(ack as u64));
            }
            conversations[which].segment(direction, segment, &mut trackers[which]);
            for conversation in &conversations {
                for direction in [Direction::ClientToServer, Direction::ServerToClient] {
                    let half = conversation.half(direction);
                    check(half)?;
                    prop_assert!(half.buffered() <= max_buffered);
                }
            }
            prop_assert!(budget.used() <= budget_limit);
        }
        for (conversation, tracker) in conversations.iter_mut().zip(trackers.iter_mut()) {
            conversation.flush(tracker);
            prop_assert!(conversation.is_closed());
        }
        prop_assert_eq!(budget.used(), 0);
    }
}
