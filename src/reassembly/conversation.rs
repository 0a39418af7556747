//! Both directions of one TCP connection: [`Conversation`].

use super::{Budget, Config, Counters, Direction, EventSink, HalfStream, Segment};

/// The two [`HalfStream`]s of one connection, wired together: each segment's data goes to
/// its own direction, its acknowledgement to the other (midstream pickup from the ACK, gaps
/// the peer acknowledged), and a RST from either side resets both.
///
/// Events carry their [`Direction`]; which side is the client is the caller's decision.
#[derive(Debug)]
pub struct Conversation {
    client: HalfStream,
    server: HalfStream,
}

impl Conversation {
    /// Both directions with the same `config`, drawing from the same `budget`.
    pub fn new(config: Config, budget: &Budget) -> Conversation {
        Conversation {
            client: HalfStream::new(Direction::ClientToServer, config, budget),
            server: HalfStream::new(Direction::ServerToClient, config, budget),
        }
    }

    /// Feed one segment travelling `direction`.
    pub fn segment<'a>(
        &mut self,
        direction: Direction,
        segment: Segment<'a>,
        sink: &mut impl EventSink<'a>,
    ) {
        let (sender, receiver) = match direction {
            Direction::ClientToServer => (&mut self.client, &mut self.server),
            Direction::ServerToClient => (&mut self.server, &mut self.client),
        };
        let reset = segment.flags.rst() && sender.accepts_rst(segment.seq);
        sender.segment(segment, sink);
        if let Some(ack) = segment.acknowledgement() {
            receiver.peer_ack(ack, sink);
        }
        if reset {
            receiver.reset(sink);
        }
    }

    /// Flush both directions (see [`HalfStream::flush`]): client first, then server.
    pub fn flush<'a>(&mut self, sink: &mut impl EventSink<'a>) {
        self.client.flush(sink);
        self.server.flush(sink);
    }

    /// One direction.
    pub fn half(&self, direction: Direction) -> &HalfStream {
        match direction {
            Direction::ClientToServer => &self.client,
            Direction::ServerToClient => &self.server,
        }
    }

    pub fn counters(&self, direction: Direction) -> &Counters {
        self.half(direction).counters()
    }

    /// Both directions closed.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed() && self.server.is_closed()
    }

    /// Out-of-order memory held by both directions.
    pub fn buffered(&self) -> usize {
        self.client.buffered() + self.server.buffered()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reassembly::{CloseReason, Event, TcpFlags};
    use crate::seq::SeqNum;

    const C2S: Direction = Direction::ClientToServer;
    const S2C: Direction = Direction::ServerToClient;

    fn seg(seq: u32, ack: Option<u32>, flags: TcpFlags, payload: &[u8]) -> Segment<'_> {
        let segment = Segment::new(SeqNum(seq), flags, payload);
        match ack {
            Some(ack) => segment.with_ack(SeqNum(ack)),
            None => segment,
        }
    }

    fn text(events: &[(Direction, Event<'_>)], direction: Direction) -> Vec<u8> {
        events
            .iter()
            .filter(|(d, _)| *d == direction)
            .filter_map(|(_, e)| match e {
                Event::Data { bytes, .. } => Some(bytes.to_vec()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    #[test]
    fn handshake_exchange_and_close() {
        let mut conversation = Conversation::new(Config::default(), &Budget::default());
        let mut events = Vec::new();
        let (a, b) = (1000u32, 5000u32);
        conversation.segment(C2S, seg(a, None, TcpFlags::SYN, b""), &mut events);
        conversation.segment(S2C, seg(b, Some(a + 1), TcpFlags::SYN, b""), &mut events);
        conversation.segment(
            C2S,
            seg(a + 1, Some(b + 1), TcpFlags::ACK, b""),
            &mut events,
        );
        conversation.segment(
            C2S,
            seg(a + 1, Some(b + 1), TcpFlags::PSH, b"GET /"),
            &mut events,
        );
        conversation.segment(
            S2C,
            seg(b + 1, Some(a + 6), TcpFlags::PSH, b"200 OK"),
            &mut events,
        );
        conversation.segment(
            C2S,
            seg(a + 6, Some(b + 7), TcpFlags::FIN, b""),
            &mut events,
        );
        conversation.segment(
            S2C,
            seg(b + 7, Some(a + 7), TcpFlags::FIN, b""),
            &mut events,
        );
        conversation.segment(
            C2S,
            seg(a + 7, Some(b + 8), TcpFlags::ACK, b""),
            &mut events,
        );
        assert_eq!(text(&events, C2S), b"GET /");
        assert_eq!(text(&events, S2C), b"200 OK");
        assert!(conversation.is_closed());
        assert_eq!(
            conversation.half(C2S).close_reason(),
            Some(CloseReason::Fin)
        );
        assert_eq!(conversation.counters(S2C).delivered_bytes, 6);
        assert!(!events.iter().any(|(_, e)| matches!(e, Event::Gap { .. })));
    }

    #[test]
    fn midstream_pickup_takes_base_from_peer_ack() {
        let mut conversation = Conversation::new(Config::default(), &Budget::default());
        let mut events = Vec::new();
        // The server's ACK is the first thing seen: client data starts at 700.
        conversation.segment(S2C, seg(90, Some(700), TcpFlags::ACK, b""), &mut events);
        conversation.segment(
            C2S,
            seg(705, Some(90), TcpFlags::ACK, b"world"),
            &mut events,
        );
        conversation.segment(
            C2S,
            seg(700, Some(90), TcpFlags::ACK, b"hello"),
            &mut events,
        );
        assert_eq!(text(&events, C2S), b"helloworld");
    }

    #[test]
    fn ack_above_a_hole_reports_the_gap() {
        let mut conversation = Conversation::new(Config::default(), &Budget::default());
        let mut events = Vec::new();
        conversation.segment(C2S, seg(0, None, TcpFlags::SYN, b""), &mut events);
        conversation.segment(C2S, seg(1, None, TcpFlags::NONE, b"ab"), &mut events);
        conversation.segment(C2S, seg(5, None, TcpFlags::NONE, b"ef"), &mut events);
        conversation.segment(S2C, seg(77, Some(7), TcpFlags::ACK, b""), &mut events);
        let gaps: Vec<_> = events
            .iter()
            .filter_map(|(d, e)| match e {
                Event::Gap { offset, len } => Some((*d, *offset, *len)),
                _ => None,
            })
            .collect();
        assert_eq!(gaps, vec![(C2S, 2, 2)]);
        assert_eq!(text(&events, C2S), b"abef");
    }

    #[test]
    fn rst_from_one_side_closes_both() {
        let mut conversation = Conversation::new(Config::default(), &Budget::default());
        let mut events = Vec::new();
        conversation.segment(C2S, seg(0, None, TcpFlags::SYN, b""), &mut events);
        conversation.segment(S2C, seg(50, Some(1), TcpFlags::SYN, b""), &mut events);
        conversation.segment(S2C, seg(53, Some(1), TcpFlags::ACK, b"held"), &mut events);
        conversation.segment(C2S, seg(1, Some(51), TcpFlags::RST, b""), &mut events);
        assert!(conversation.is_closed());
        let closes: Vec<_> = events
            .iter()
            .filter_map(|(d, e)| match e {
                Event::Closed { reason } => Some((*d, *reason)),
                _ => None,
            })
            .collect();
        assert_eq!(
            closes,
            vec![(C2S, CloseReason::Rst), (S2C, CloseReason::Rst)]
        );
        assert_eq!(text(&events, S2C), b"held");
        assert_eq!(conversation.buffered(), 0);
    }

    #[test]
    fn flush_closes_both_directions() {
        let mut conversation = Conversation::new(Config::default(), &Budget::default());
        let mut events: Vec<Event> = Vec::new();
        conversation.segment(C2S, seg(10, None, TcpFlags::NONE, b"abc"), &mut events);
        conversation.flush(&mut events);
        assert!(conversation.is_closed());
        assert_eq!(
            conversation.half(S2C).close_reason(),
            Some(CloseReason::Flush)
        );
    }
}
