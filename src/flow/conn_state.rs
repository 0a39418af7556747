//! Zeek's view of a connection: per-endpoint TCP states, the `conn_state` summary and the
//! `history` string, following Zeek's documented semantics (conn.log, `base/protocols/conn`,
//! and the TCP analyzer's state machine). Facts carry over, code does not.
//!
//! - [`TcpEndpoints`] tracks each endpoint's state (inactive, SYN sent, SYN/ACK sent,
//!   partial, established, closed, reset) as Zeek's TCP analyzer does, packet by packet.
//! - [`ConnState`] is Zeek's `conn_state` (S0, S1, SF, REJ, S2, S3, RSTO, RSTR, RSTOS0,
//!   RSTRH, SH, SHR, OTH), computed from the two endpoint states, the payload sizes and
//!   the history.
//! - [`History`] is Zeek's `history`: one letter per event, upper case for the originator
//!   (client), lower case for the responder. `a d i q` are recorded once per direction;
//!   `s h f r` again whenever the sequence number differs from the last packet of that kind;
//!   `c g t w` logarithmically (1st, 10th, 100th, ... occurrence); `^` first if the roles
//!   were decided against the first packet's direction. flowtrail does not verify checksums,
//!   so `c` never appears. `x` (analysis partial) marks a direction whose reassembly hit a
//!   memory cap. The string is capped at [`History::MAX`] letters (counted when cut).

use crate::reassembly::TcpFlags;
use std::fmt;

/// One endpoint's TCP state, as Zeek's TCP analyzer tracks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EndpointState {
    #[default]
    Inactive,
    SynSent,
    SynAckSent,
    /// Seen sending, but not from the start (midstream).
    Partial,
    Established,
    Closed,
    Reset,
}

impl EndpointState {
    /// Zeek's name for the state (`TCP_SYN_SENT` is `syn_sent`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            EndpointState::Inactive => "inactive",
            EndpointState::SynSent => "syn_sent",
            EndpointState::SynAckSent => "syn_ack_sent",
            EndpointState::Partial => "partial",
            EndpointState::Established => "established",
            EndpointState::Closed => "closed",
            EndpointState::Reset => "reset",
        }
    }
}

impl serde::Serialize for EndpointState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Both endpoints' states; index 0 is the originator (client), 1 the responder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpEndpoints {
    state: [EndpointState; 2],
    prev: [EndpointState; 2],
}

impl TcpEndpoints {
    pub fn orig(&self) -> EndpointState {
        self.state[0]
    }
    pub fn resp(&self) -> EndpointState {
        self.state[1]
    }

    fn set(&mut self, i: usize, s: EndpointState) {
        self.prev[i] = self.state[i];
        self.state[i] = s;
    }

    /// One packet from the originator (`from_orig`) or the responder, with `len` payload
    /// bytes. Zeek's `UpdateStateMachine` without its weirds and timers.
    pub fn update(&mut self, from_orig: bool, flags: TcpFlags, len: u32) {
        use EndpointState::*;
        let (me, peer) = if from_orig { (0, 1) } else { (1, 0) };
        match self.state[me] {
            Inactive => {
                if flags.syn() {
                    if from_orig {
                        self.set(me, if flags.ack() { SynAckSent } else { SynSent });
                    } else {
                        if self.state[peer] == SynSent {
                            self.set(peer, Established);
                        }
                        self.set(me, Established);
                    }
                }
                if flags.fin() {
                    self.set(me, Closed);
                }
                if flags.rst() {
                    self.set(me, Reset);
                }
                if self.state[me] == Inactive {
                    if !from_orig && len == 0 && self.state[0] == SynSent {
                        // An ACK of the SYN before the SYN/ACK: not a partial connection.
                    } else if flags.ack() && self.state[peer] == Established {
                        // Missed the originator's SYN but saw the SYN/ACK: established.
                        self.set(me, Established);
                    } else {
                        self.set(me, Partial);
                    }
                }
            }
            SynSent | SynAckSent => {
                if flags.fin() {
                    self.set(me, Closed);
                }
                if flags.rst() {
                    self.set(me, Reset);
                }
            }
            Established | Partial => {
                if flags.syn() && self.state[me] == Partial && self.state[peer] == Inactive && !flags.ack() {
                    self.set(me, SynSent);
                }
                if flags.fin() && !flags.rst() {
                    self.set(me, Closed);
                    if self.state[peer] == Reset && self.prev[peer] == Closed {
                        // The peer's FIN then RST was a normal termination after all.
                        self.set(peer, Closed);
                    }
                }
                if flags.rst() {
                    self.set(me, Reset);
                }
            }
            Closed => {
                if flags.rst() && self.state[peer] != Closed {
                    self.set(me, Reset);
                }
            }
            Reset => {}
        }
    }

    /// Both directions are done: each closed or either reset.
    pub fn finished(&self) -> bool {
        use EndpointState::*;
        self.state.contains(&Reset) || (self.state[0] == Closed && self.state[1] == Closed)
    }

    /// Only the originator's SYN(s) so far.
    pub fn attempt(&self) -> bool {
        matches!(self.state[0], EndpointState::SynSent | EndpointState::SynAckSent)
            && self.state[1] == EndpointState::Inactive
    }
}

/// Zeek's `conn_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnState {
    /// Connection attempt seen, no reply.
    S0,
    /// Established, not terminated.
    S1,
    /// Normal establishment and termination.
    SF,
    /// Attempt rejected.
    REJ,
    /// Established, close attempt by the originator seen (no reply from the responder).
    S2,
    /// Established, close attempt by the responder seen (no reply from the originator).
    S3,
    /// Established, the originator aborted (RST).
    RSTO,
    /// The responder sent a RST.
    RSTR,
    /// The originator sent a SYN then a RST; no SYN/ACK seen.
    RSTOS0,
    /// The responder sent a SYN/ACK then a RST; no SYN from the originator seen.
    RSTRH,
    /// The originator sent a SYN then a FIN; no SYN/ACK seen (half open).
    SH,
    /// The responder sent a SYN/ACK then a FIN; no SYN seen.
    SHR,
    /// No SYN seen, just midstream traffic (or anything else).
    OTH,
}

impl ConnState {
    pub const fn name(self) -> &'static str {
        match self {
            ConnState::S0 => "S0",
            ConnState::S1 => "S1",
            ConnState::SF => "SF",
            ConnState::REJ => "REJ",
            ConnState::S2 => "S2",
            ConnState::S3 => "S3",
            ConnState::RSTO => "RSTO",
            ConnState::RSTR => "RSTR",
            ConnState::RSTOS0 => "RSTOS0",
            ConnState::RSTRH => "RSTRH",
            ConnState::SH => "SH",
            ConnState::SHR => "SHR",
            ConnState::OTH => "OTH",
        }
    }

    /// Zeek's `Conn::conn_state` for TCP. `sizes` are the payload bytes each side sent.
    pub fn tcp(ends: &TcpEndpoints, sizes: [u64; 2], history: &History) -> ConnState {
        use EndpointState::*;
        let (os, rs) = (ends.orig(), ends.resp());
        let o_inactive = matches!(os, Inactive | Partial);
        let r_inactive = matches!(rs, Inactive | Partial);
        if rs == Reset {
            if matches!(os, SynSent | SynAckSent) || (os == Reset && sizes == [0, 0]) {
                ConnState::REJ
            } else if o_inactive {
                ConnState::RSTRH
            } else {
                ConnState::RSTR
            }
        } else if os == Reset {
            if r_inactive {
                if history.syn_then_reset() { ConnState::RSTOS0 } else { ConnState::OTH }
            } else {
                ConnState::RSTO
            }
        } else if rs == Closed && os == Closed {
            ConnState::SF
        } else if os == Closed {
            if r_inactive { ConnState::SH } else { ConnState::S2 }
        } else if rs == Closed {
            if o_inactive { ConnState::SHR } else { ConnState::S3 }
        } else if os == SynSent && rs == Inactive {
            ConnState::S0
        } else if os == Established && rs == Established {
            ConnState::S1
        } else {
            ConnState::OTH
        }
    }

    /// Zeek's `Conn::conn_state` for UDP: who sent anything. (ICMP flows are always `OTH`.)
    pub fn datagram(sent: [bool; 2]) -> ConnState {
        match sent {
            [true, true] => ConnState::SF,
            [true, false] => ConnState::S0,
            [false, true] => ConnState::SHR,
            [false, false] => ConnState::OTH,
        }
    }
}

impl fmt::Display for ConnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for ConnState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Once-per-direction letters, as bits (originator's; the responder's are shifted by 8).
mod seen {
    pub const SYN: u16 = 1;
    pub const FIN: u16 = 2;
    pub const RST: u16 = 4;
    pub const DATA: u16 = 8;
    pub const ACK: u16 = 16;
    pub const FIN_RST: u16 = 32;
    pub const MULTI: u16 = 64;
    pub const PARTIAL: u16 = 128;
}

/// A logarithmic letter's state: occurrences and the count at which it is next written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Scaled {
    count: u32,
    threshold: u32,
}

impl Default for Scaled {
    fn default() -> Self {
        Scaled { count: 0, threshold: 1 }
    }
}

impl Scaled {
    /// Counts one occurrence; true when the letter is due (at 1, 10, 100, ...).
    fn hit(&mut self) -> bool {
        self.count = self.count.saturating_add(1);
        if self.count == self.threshold {
            self.threshold = self.threshold.saturating_mul(10);
            true
        } else {
            false
        }
    }
}

/// Zeek's `history` string for one connection. See the module docs for the letters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    letters: [u8; History::MAX],
    len: u8,
    seen: u16,
    /// Letters dropped because the string was full.
    pub truncated: u32,
    last_syn: [Option<u32>; 2],
    last_fin: [Option<u32>; 2],
    last_rst: [Option<u32>; 2],
    gaps: [Scaled; 2],
    retransmissions: [Scaled; 2],
    zero_windows: [Scaled; 2],
}

impl History {
    /// Most letters kept.
    pub const MAX: usize = 32;

    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever pushed.
        std::str::from_utf8(&self.letters[..usize::from(self.len)]).unwrap_or("")
    }

    fn push(&mut self, from_orig: bool, letter: u8) {
        let letter = if from_orig { letter.to_ascii_uppercase() } else { letter.to_ascii_lowercase() };
        if usize::from(self.len) < History::MAX {
            self.letters[usize::from(self.len)] = letter;
            self.len += 1;
        } else {
            self.truncated = self.truncated.saturating_add(1);
        }
    }

    /// Zeek's `CheckHistory`: writes the letter the first time; true if it was seen before.
    fn once(&mut self, from_orig: bool, bit: u16, letter: u8) -> bool {
        let bit = if from_orig { bit } else { bit << 8 };
        if self.seen & bit == 0 {
            self.seen |= bit;
            self.push(from_orig, letter);
            false
        } else {
            true
        }
    }

    /// The roles were decided against the first packet's direction (`^`, always first).
    pub fn flipped(&mut self) {
        if self.len == 0 {
            self.letters[0] = b'^';
            self.len = 1;
        }
    }

    /// The letters of one TCP packet (Zeek's `update_history`). `seq` is the segment's
    /// sequence number, `len` its payload length.
    pub fn tcp_packet(&mut self, from_orig: bool, flags: TcpFlags, seq: u32, len: u32) {
        let side = usize::from(!from_orig);
        let bits = u8::from(flags.syn()) + u8::from(flags.fin()) + u8::from(flags.rst());
        if bits > 1 {
            if flags.fin() && flags.rst() {
                self.once(from_orig, seen::FIN_RST, b'i');
            } else {
                self.once(from_orig, seen::MULTI, b'q');
            }
        } else if bits == 1 {
            if flags.syn() {
                let letter = if flags.ack() { b'h' } else { b's' };
                if self.once(from_orig, seen::SYN, letter) && self.last_syn[side] != Some(seq) {
                    self.push(from_orig, letter);
                }
                self.last_syn[side] = Some(seq);
            }
            if flags.fin() {
                // A FIN's sequence number is at the end of its data.
                let end = seq.wrapping_add(len);
                if self.once(from_orig, seen::FIN, b'f') && self.last_fin[side] != Some(end) {
                    self.push(from_orig, b'f');
                }
                self.last_fin[side] = Some(end);
            }
            if flags.rst() {
                if self.once(from_orig, seen::RST, b'r') && self.last_rst[side] != Some(seq) {
                    self.push(from_orig, b'r');
                }
                self.last_rst[side] = Some(seq);
            }
        } else if len > 0 {
            self.once(from_orig, seen::DATA, b'd');
        } else if flags.ack() {
            self.once(from_orig, seen::ACK, b'a');
        }
    }

    /// A datagram (UDP: `d` once per direction).
    pub fn datagram(&mut self, from_orig: bool) {
        self.once(from_orig, seen::DATA, b'd');
    }

    /// A content gap in this direction (`g`, logarithmic).
    pub fn gap(&mut self, from_orig: bool) {
        if self.gaps[usize::from(!from_orig)].hit() {
            self.push(from_orig, b'g');
        }
    }

    /// A packet with retransmitted payload (`t`, logarithmic).
    pub fn retransmission(&mut self, from_orig: bool) {
        if self.retransmissions[usize::from(!from_orig)].hit() {
            self.push(from_orig, b't');
        }
    }

    /// A zero window advertisement (`w`, logarithmic).
    pub fn zero_window(&mut self, from_orig: bool) {
        if self.zero_windows[usize::from(!from_orig)].hit() {
            self.push(from_orig, b'w');
        }
    }

    /// Reassembly of this direction was cut short by a memory cap (`x`, once).
    pub fn partial(&mut self, from_orig: bool) {
        self.once(from_orig, seen::PARTIAL, b'x');
    }

    /// Zeek's RSTOS0 test: `^?S[^HAFGIQ]*R.*` matches the whole history.
    pub fn syn_then_reset(&self) -> bool {
        let s = self.as_str();
        let s = s.strip_prefix('^').unwrap_or(s);
        let Some(rest) = s.strip_prefix('S') else { return false };
        for c in rest.chars() {
            match c {
                'R' => return true,
                'H' | 'A' | 'F' | 'G' | 'I' | 'Q' => return false,
                _ => {}
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: TcpFlags = TcpFlags::SYN;
    const SA: TcpFlags = TcpFlags(0x12);
    const A: TcpFlags = TcpFlags::ACK;
    const PA: TcpFlags = TcpFlags(0x18);
    const FA: TcpFlags = TcpFlags(0x11);
    const R: TcpFlags = TcpFlags::RST;
    const RA: TcpFlags = TcpFlags(0x14);

    /// Feeds (from_orig, flags, seq, len) packets; returns (conn_state, history).
    fn run(packets: &[(bool, TcpFlags, u32, u32)]) -> (ConnState, String) {
        let mut ends = TcpEndpoints::default();
        let mut history = History::default();
        let mut sizes = [0u64; 2];
        for &(o, flags, seq, len) in packets {
            history.tcp_packet(o, flags, seq, len);
            ends.update(o, flags, len);
            sizes[usize::from(!o)] += u64::from(len);
        }
        (ConnState::tcp(&ends, sizes, &history), history.as_str().to_string())
    }

    #[test]
    fn normal_connection_is_sf() {
        let (state, history) = run(&[
            (true, S, 100, 0),
            (false, SA, 500, 0),
            (true, A, 101, 0),
            (true, PA, 101, 10),
            (false, PA, 501, 10),
            (true, FA, 111, 0),
            (false, FA, 511, 0),
            (true, A, 112, 0),
        ]);
        assert_eq!(state, ConnState::SF);
        assert_eq!(history, "ShADdFf");
    }

    #[test]
    fn rejected_and_unanswered() {
        assert_eq!(run(&[(true, S, 1, 0), (false, RA, 0, 0)]), (ConnState::REJ, "Sr".into()));
        assert_eq!(run(&[(true, S, 1, 0)]).0, ConnState::S0);
        // A retransmitted SYN (same seq) adds nothing; a new ISN adds another S.
        assert_eq!(run(&[(true, S, 1, 0), (true, S, 1, 0)]).1, "S");
        assert_eq!(run(&[(true, S, 1, 0), (true, S, 9, 0)]).1, "SS");
        assert_eq!(run(&[(true, S, 1, 0), (true, R, 2, 0)]), (ConnState::RSTOS0, "SR".into()));
    }

    #[test]
    fn resets_after_establishment() {
        let hs = [(true, S, 1, 0), (false, SA, 9, 0), (true, A, 2, 0)];
        let mut p = hs.to_vec();
        p.push((true, R, 2, 0));
        assert_eq!(run(&p).0, ConnState::RSTO);
        let mut p = hs.to_vec();
        p.push((false, R, 10, 0));
        assert_eq!(run(&p).0, ConnState::RSTR);
        let mut p = hs.to_vec();
        p.push((true, FA, 2, 0));
        assert_eq!(run(&p).0, ConnState::S2);
        let mut p = hs.to_vec();
        p.push((false, FA, 10, 0));
        assert_eq!(run(&p).0, ConnState::S3);
        let mut p = hs.to_vec();
        p.push((true, S, 1, 0));
        assert_eq!(run(&p).0, ConnState::S1);
    }

    #[test]
    fn midstream_and_half_open() {
        assert_eq!(run(&[(true, PA, 5, 10), (false, A, 9, 0)]), (ConnState::OTH, "Da".into()));
        assert_eq!(run(&[(true, S, 1, 0), (true, FA, 2, 0)]).0, ConnState::SH);
        assert_eq!(run(&[(false, SA, 1, 0), (false, FA, 2, 0)]).0, ConnState::SHR);
        assert_eq!(run(&[(false, SA, 1, 0), (false, R, 2, 0)]).0, ConnState::RSTRH);
        // FIN then RST from one side, FIN from the other: still a normal close.
        let (state, _) = run(&[
            (true, S, 1, 0),
            (false, SA, 9, 0),
            (true, A, 2, 0),
            (false, FA, 10, 0),
            (false, R, 11, 0),
            (true, FA, 2, 0),
        ]);
        assert_eq!(state, ConnState::SF);
    }

    #[test]
    fn logarithmic_and_multi_flag_letters() {
        let mut h = History::default();
        for _ in 0..100 {
            h.retransmission(true);
            h.zero_window(false);
        }
        h.tcp_packet(true, TcpFlags(0x03), 1, 0); // SYN+FIN
        h.tcp_packet(false, TcpFlags(0x05), 1, 0); // FIN+RST
        assert_eq!(h.as_str(), "TwTwTwQi");
        let mut h = History::default();
        h.flipped();
        h.tcp_packet(false, SA, 1, 0);
        assert_eq!(h.as_str(), "^h");
    }

    #[test]
    fn history_is_capped() {
        let mut h = History::default();
        for seq in 0..100u32 {
            h.tcp_packet(true, S, seq, 0);
        }
        assert_eq!(h.as_str().len(), History::MAX);
        assert_eq!(h.truncated, 100 - History::MAX as u32);
    }

    #[test]
    fn udp_states() {
        assert_eq!(ConnState::datagram([true, true]), ConnState::SF);
        assert_eq!(ConnState::datagram([true, false]), ConnState::S0);
        assert_eq!(ConnState::datagram([false, true]), ConnState::SHR);
    }
}
