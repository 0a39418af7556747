//! Fuzz the TCP reassembler with arbitrary segment sequences on two conversations sharing a
//! budget. Asserts: no panic; after every step every direction's invariants hold
//! (`HalfStream::invariant_violation`), held memory is within the per-stream cap and the shared
//! budget, and the budget equals what the streams hold; Data/Gap events of each direction are
//! contiguous from offset 0; nothing follows `Closed`; dropping streams returns all memory.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

use flowtrail::reassembly::{
    Budget, Config, Conversation, Direction, Event, EventSink, OverlapPolicy, Segment, TcpFlags,
};
use flowtrail::seq::SeqNum;

#[derive(Arbitrary, Debug)]
struct Input {
    last_wins: bool,
    max_buffered: u16,
    budget: u16,
    max_ahead: u32,
    gap_on_ack: bool,
    isn: u32,
    steps: Vec<Step>,
}

#[derive(Arbitrary, Debug)]
enum Step {
    Segment {
        second: bool,
        reverse: bool,
        seq: Position,
        ack: Option<Position>,
        flags: u8,
        payload: Vec<u8>,
    },
    Flush {
        second: bool,
    },
    /// Drop a conversation and start a fresh one in its place (budget must come back).
    Replace {
        second: bool,
    },
}

/// A sequence number: mostly near the ISN so segments interact, sometimes anywhere.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Position {
    Near(i16),
    Wild(u32),
}

impl Position {
    fn seq(self, isn: u32) -> SeqNum {
        match self {
            Position::Near(delta) => SeqNum(isn).add(delta as i32 as u32),
            Position::Wild(seq) => SeqNum(seq),
        }
    }
}

/// Checks the event contract per direction.
#[derive(Default)]
struct Checker {
    next: [u64; 2],
    closed: [bool; 2],
}

impl<'a> EventSink<'a> for Checker {
    fn event(&mut self, direction: Direction, event: Event<'a>) {
        let d = usize::from(direction == Direction::ServerToClient);
        assert!(!self.closed[d], "event after Closed: {event:?}");
        match event {
            Event::Data { offset, bytes } => {
                assert_eq!(offset, self.next[d], "data not contiguous");
                assert!(!bytes.is_empty(), "empty Data");
                self.next[d] += bytes.len() as u64;
            }
            Event::Gap { offset, len } => {
                assert_eq!(offset, self.next[d], "gap not contiguous");
                assert!(len > 0, "empty Gap");
                self.next[d] += len;
            }
            Event::Overlap { len, .. } => assert!(len > 0, "empty Overlap"),
            Event::Closed { .. } => self.closed[d] = true,
        }
    }
}

fuzz_target!(|input: Input| {
    let budget = Budget::new(usize::from(input.budget));
    let config = Config {
        policy: if input.last_wins {
            OverlapPolicy::LastWins
        } else {
            OverlapPolicy::FirstWins
        },
        max_buffered: usize::from(input.max_buffered),
        max_ahead: u64::from(input.max_ahead),
        gap_on_ack: input.gap_on_ack,
    };
    let mut conversations = [
        Conversation::new(config, &budget),
        Conversation::new(config, &budget),
    ];
    let mut checkers = [Checker::default(), Checker::default()];
    for step in &input.steps {
        match step {
            Step::Segment {
                second,
                reverse,
                seq,
                ack,
                flags,
                payload,
            } => {
                let which = usize::from(*second);
                let direction = if *reverse {
                    Direction::ServerToClient
                } else {
                    Direction::ClientToServer
                };
                let mut segment = Segment::new(seq.seq(input.isn), TcpFlags(*flags), payload);
                if let Some(ack) = ack {
                    segment = segment.with_ack(ack.seq(input.isn));
                }
                conversations[which].segment(direction, segment, &mut checkers[which]);
            }
            Step::Flush { second } => {
                let which = usize::from(*second);
                conversations[which].flush(&mut checkers[which]);
                assert!(conversations[which].is_closed());
            }
            Step::Replace { second } => {
                let which = usize::from(*second);
                conversations[which] = Conversation::new(config, &budget);
                checkers[which] = Checker::default();
            }
        }
        let mut held = 0;
        for conversation in &conversations {
            for direction in [Direction::ClientToServer, Direction::ServerToClient] {
                let half = conversation.half(direction);
                assert_eq!(half.invariant_violation(), None);
                assert!(half.buffered() <= config.max_buffered);
                held += half.buffered();
            }
        }
        assert!(budget.used() <= budget.limit());
        assert_eq!(budget.used(), held);
    }
    for (conversation, checker) in conversations.iter_mut().zip(checkers.iter_mut()) {
        conversation.flush(checker);
        assert!(conversation.is_closed());
    }
    drop(conversations);
    assert_eq!(budget.used(), 0);
});
