//! The byte streams of one TCP observation: [`TcpStreams`] feeds every segment to a
//! [`Conversation`] from `crate::reassembly` (shared [`Budget`], per-direction caps) and
//! keeps the list of gaps each direction had.
//!
//! The conversation is created lazily, on the first segment that carries payload or FIN, so
//! a flood of SYNs or pure ACKs costs no reassembly memory. What the reassembler would have
//! learned from the earlier segments is replayed first, exactly: each direction's SYN (its
//! ISN fixes offset 0) and the first and last acknowledgement each side sent (a midstream
//! pickup takes offset 0 from the peer's first ACK; the last one declares the bytes the peer
//! acknowledged but the capture never saw as a gap, as it would have on arrival). Before any
//! payload or FIN nothing else changes a reassembler's state, so the events are the same as
//! if the conversation had existed from the first packet.
//!
//! Gaps are listed per direction as `(offset, len)` up to the table's [`AuxBudget`]; gaps
//! beyond it are only counted (`unlisted`). They are never filled with anything.

use super::AuxBudget;
use crate::reassembly::{Budget, Config, Conversation, Counters, Direction, Event, Segment, TcpFlags};
use crate::seq::SeqNum;

/// Memory charged per listed gap.
const GAP_COST: usize = std::mem::size_of::<(u64, u64)>();

/// The gaps of one direction, in stream order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GapList {
    pub listed: Vec<(u64, u64)>,
    /// Gaps not listed (the auxiliary memory budget was exhausted).
    pub unlisted: u32,
}

impl GapList {
    fn add(&mut self, offset: u64, len: u64, aux: &mut AuxBudget) {
        if aux.reserve(GAP_COST) {
            self.listed.push((offset, len));
        } else {
            self.unlisted = self.unlisted.saturating_add(1);
        }
    }

    fn release(&mut self, aux: &mut AuxBudget) {
        aux.release(self.listed.len() * GAP_COST);
    }
}

/// Index of a direction in `[c2s, s2c]` arrays.
pub const fn index(direction: Direction) -> usize {
    match direction {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    }
}

/// Both directions' reassembly of one TCP observation.
#[derive(Debug, Default)]
pub struct TcpStreams {
    conversation: Option<Box<Conversation>>,
    isn: [Option<SeqNum>; 2],
    first_ack: [Option<SeqNum>; 2],
    last_ack: [Option<SeqNum>; 2],
    pub gaps: [GapList; 2],
}

/// What a new conversation is made with.
#[derive(Debug, Clone)]
pub struct ReassemblyParams {
    pub config: Config,
    pub budget: Budget,
}

impl TcpStreams {
    /// The ISN each direction's first SYN carried.
    pub fn isn(&self) -> [Option<SeqNum>; 2] {
        self.isn
    }

    /// Feeds one segment; events go to `sink` after the gap list saw them.
    pub fn segment<'a>(
        &mut self,
        direction: Direction,
        segment: Segment<'a>,
        params: &ReassemblyParams,
        aux: &mut AuxBudget,
        sink: &mut impl FnMut(Direction, Event<'a>),
    ) {
        let d = index(direction);
        if segment.flags.syn() && self.isn[d].is_none() {
            self.isn[d] = Some(segment.seq);
        }
        if let Some(ack) = segment.acknowledgement() {
            self.first_ack[d].get_or_insert(ack);
            self.last_ack[d] = Some(ack);
        }
        let Self { conversation, isn, first_ack, last_ack, gaps } = self;
        let mut on_event = |direction: Direction, event: Event<'a>| {
            if let Event::Gap { offset, len } = event {
                gaps[index(direction)].add(offset, len, aux);
            }
            sink(direction, event);
        };
        match conversation {
            Some(c) => c.segment(direction, segment, &mut on_event),
            None if !segment.payload.is_empty() || segment.flags.fin() => {
                let mut c = Box::new(Conversation::new(params.config, &params.budget));
                replay(&mut c, isn, first_ack, last_ack, &mut on_event);
                c.segment(direction, segment, &mut on_event);
                *conversation = Some(c);
            }
            None => {}
        }
    }

    /// End of the observation: delivers what is held, declaring gaps, and closes both
    /// directions (see `HalfStream::flush`).
    pub fn flush<'a>(&mut self, aux: &mut AuxBudget, sink: &mut impl FnMut(Direction, Event<'a>)) {
        let Self { conversation, gaps, .. } = self;
        if let Some(c) = conversation {
            c.flush(&mut |direction: Direction, event: Event<'a>| {
                if let Event::Gap { offset, len } = event {
                    gaps[index(direction)].add(offset, len, aux);
                }
                sink(direction, event);
            });
        }
    }

    /// Reassembly counters per direction (all zero before any payload).
    pub fn counters(&self) -> [Counters; 2] {
        match &self.conversation {
            Some(c) => [*c.counters(Direction::ClientToServer), *c.counters(Direction::ServerToClient)],
            None => [Counters::default(); 2],
        }
    }

    /// Both directions closed by the reassembler (FIN delivered or reset).
    pub fn closed(&self) -> bool {
        self.conversation.as_ref().is_some_and(|c| c.is_closed())
    }

    /// Returns the gap lists' memory to `aux` (call before dropping).
    pub fn release(&mut self, aux: &mut AuxBudget) {
        for g in &mut self.gaps {
            g.release(aux);
        }
    }
}

/// Replays what a conversation would have seen before its first payload or FIN.
fn replay<'a>(
    c: &mut Conversation,
    isn: &[Option<SeqNum>; 2],
    first_ack: &[Option<SeqNum>; 2],
    last_ack: &[Option<SeqNum>; 2],
    sink: &mut impl FnMut(Direction, Event<'a>),
) {
    const DIRECTIONS: [Direction; 2] = [Direction::ClientToServer, Direction::ServerToClient];
    for (d, direction) in DIRECTIONS.into_iter().enumerate() {
        if let Some(isn) = isn[d] {
            c.segment(direction, Segment::new(isn, TcpFlags::SYN, &[]), sink);
        }
    }
    for acks in [first_ack, last_ack] {
        for (d, direction) in DIRECTIONS.into_iter().enumerate() {
            if let Some(ack) = acks[d] {
                // A pure ACK at the sender's offset 0: never data, never a keep-alive.
                let seq = isn[d].map_or(SeqNum(0), |isn| isn.add(1));
                c.segment(direction, Segment::new(seq, TcpFlags::ACK, &[]).with_ack(ack), sink);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C2S: Direction = Direction::ClientToServer;
    const S2C: Direction = Direction::ServerToClient;

    fn params() -> ReassemblyParams {
        ReassemblyParams { config: Config::default(), budget: Budget::default() }
    }

    fn seg(seq: u32, ack: Option<u32>, flags: u8, payload: &[u8]) -> Segment<'_> {
        let s = Segment::new(SeqNum(seq), TcpFlags(flags), payload);
        match ack {
            Some(a) => s.with_ack(SeqNum(a)),
            None => s,
        }
    }

    type Events = Vec<(Direction, Event<'static>)>;

    /// Runs segments through lazily created streams and through an eager conversation;
    /// returns both event lists (owned).
    fn both(segments: &[(Direction, Segment<'static>)]) -> (Events, Events) {
        let p = params();
        let mut aux = AuxBudget::new(1 << 20);
        let mut lazy = TcpStreams::default();
        let mut a = Vec::new();
        for (d, s) in segments {
            lazy.segment(*d, *s, &p, &mut aux, &mut |d, e: Event<'_>| a.push((d, e.into_owned())));
        }
        lazy.flush(&mut aux, &mut |d, e: Event<'_>| a.push((d, e.into_owned())));
        let mut eager = Conversation::new(p.config, &p.budget);
        let mut b = Vec::new();
        for (d, s) in segments {
            eager.segment(*d, *s, &mut |d, e: Event<'_>| b.push((d, e.into_owned())));
        }
        eager.flush(&mut |d, e: Event<'_>| b.push((d, e.into_owned())));
        (a, b)
    }

    #[test]
    fn lazy_creation_matches_an_eager_conversation() {
        // Handshake, an ACK covering bytes never seen, then data.
        let (a, b) = both(&[
            (C2S, seg(100, None, 0x02, b"")),
            (S2C, seg(900, Some(101), 0x12, b"")),
            (C2S, seg(101, Some(901), 0x10, b"")),
            (S2C, seg(901, Some(111), 0x10, b"")),
            (C2S, seg(111, Some(901), 0x18, b"tail")),
            (S2C, seg(901, Some(115), 0x18, b"back")),
        ]);
        assert_eq!(a, b);
        assert!(a.iter().any(|(d, e)| *d == C2S && *e == Event::Gap { offset: 0, len: 10 }));
        // Midstream: offset 0 from the peer's first ACK.
        let (a, b) = both(&[
            (S2C, seg(900, Some(500), 0x10, b"")),
            (S2C, seg(900, Some(505), 0x10, b"")),
            (C2S, seg(505, Some(900), 0x18, b"xyz")),
        ]);
        assert_eq!(a, b);
    }

    #[test]
    fn gaps_are_listed_until_the_budget_ends() {
        let p = params();
        let mut aux = AuxBudget::new(2 * GAP_COST);
        let mut s = TcpStreams::default();
        let mut sink = |_d, _e: Event<'_>| {};
        s.segment(C2S, seg(0, None, 0x02, b""), &p, &mut aux, &mut sink);
        for i in 0..5u32 {
            s.segment(C2S, seg(1 + i * 10, None, 0x10, b"ab"), &p, &mut aux, &mut sink);
        }
        s.flush(&mut aux, &mut sink);
        assert_eq!(s.gaps[0].listed, vec![(2, 8), (12, 8)]);
        assert_eq!(s.gaps[0].unlisted, 2);
        s.release(&mut aux);
        assert_eq!(aux.used(), 0);
        assert!(s.closed());
    }
}
