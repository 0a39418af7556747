//! TCP sequence analysis as Wireshark names and defines it (`tcp_analyze_sequence_number` in
//! Wireshark's TCP dissector, 3.6/4.0 rules with its default preferences: fast retransmission
//! takes precedence over out-of-order). The facts carry over, the code does not.
//!
//! Per segment, in this order (`fwd` is the sender's direction, `rev` the other):
//!
//! - **zero window probe**: 1 byte at `fwd.nextseq` while `rev`'s window is 0 (and nothing
//!   else is checked for it);
//! - **zero window**: window 0 on a segment without SYN/FIN/RST;
//! - **previous segment not captured** (`lost_segment`): starts beyond `fwd.nextseq` (no RST);
//! - **keep-alive**: 0 or 1 byte at `fwd.nextseq - 1`, no SYN/FIN/RST;
//! - **window update**: no payload, window changed, same seq/ack as before, no SYN/FIN/RST;
//! - **window full**: payload reaching exactly the right edge of `rev`'s advertised window
//!   (only when the window scale is known; SYN windows are unscaled);
//! - **keep-alive ACK** / **zero window probe ACK**: repeats the previous ACK right after a
//!   keep-alive / probe from `rev`;
//! - **dup ACK**: no payload, same non-zero window, seq and ack as the previous segment;
//! - **ACKed unseen segment**: acknowledges beyond the highest contiguous byte seen from
//!   `rev` (reported once per hole);
//! - for segments with payload, SYN or FIN that start before `fwd.nextseq` (unless a
//!   keep-alive): **spurious retransmission** if everything was already acknowledged by
//!   `rev`; else **fast retransmission** if `rev` sent at least 2 dup ACKs for exactly this
//!   seq within 20 ms; else **out-of-order** if it came within the handshake RTT (3 ms
//!   without one) of the highest segment and does not end exactly at `fwd.nextseq`; else
//!   **retransmission**.
//!
//! Flags are exclusive per packet in the retransmission family (a fast retransmission is not
//! also counted as a plain retransmission; Wireshark's `tcp.analysis.retransmission` filter
//! matches all three).
//!
//! RTTs: the handshake RTT (Wireshark's iRTT: SYN to the first pure ACK after it) split at the
//! SYN/ACK, and per direction the data/ACK RTT: the time from a segment to the first ACK that
//! acknowledges exactly its end (Wireshark's `ack_rtt`), as min/avg/max. The unacknowledged
//! segments needed for that are kept per direction up to [`MAX_UNACKED`] entries, drawing
//! from the table's [`AuxBudget`]; segments not kept get no RTT sample (counted).
//!
//! Sequence numbers use Wireshark's conventions: 0 means "not known yet" for `nextseq`,
//! `lastack` and `maxseqtobeacked`.

use super::{AuxBudget, Nanos};
use crate::reassembly::TcpFlags;
use crate::seq::SeqNum;

/// Per-packet analysis flags.
pub mod flag {
    pub const RETRANSMISSION: u32 = 1 << 0;
    pub const FAST_RETRANSMISSION: u32 = 1 << 1;
    pub const SPURIOUS_RETRANSMISSION: u32 = 1 << 2;
    pub const OUT_OF_ORDER: u32 = 1 << 3;
    pub const DUP_ACK: u32 = 1 << 4;
    pub const ZERO_WINDOW: u32 = 1 << 5;
    pub const ZERO_WINDOW_PROBE: u32 = 1 << 6;
    pub const ZERO_WINDOW_PROBE_ACK: u32 = 1 << 7;
    pub const WINDOW_FULL: u32 = 1 << 8;
    pub const WINDOW_UPDATE: u32 = 1 << 9;
    pub const KEEP_ALIVE: u32 = 1 << 10;
    pub const KEEP_ALIVE_ACK: u32 = 1 << 11;
    pub const LOST_SEGMENT: u32 = 1 << 12;
    pub const ACK_LOST_SEGMENT: u32 = 1 << 13;
}

/// Most unacknowledged segments remembered per direction (for ACK RTTs).
pub const MAX_UNACKED: usize = 64;
/// Memory charged per remembered segment.
const UNACKED_COST: usize = std::mem::size_of::<Unacked>();

/// What a remembered-segment vector of `capacity` costs (its heap block, allocator header
/// included; nothing when unallocated). The side-table budget is charged by capacity, so
/// what it says is what the allocator holds.
const fn unacked_alloc(capacity: usize) -> usize {
    if capacity == 0 { 0 } else { (capacity * UNACKED_COST + 16).div_ceil(16) * 16 }
}

/// Makes room for one more remembered segment, charging any growth of the vector to `aux`
/// (capacity doubles from 4 up to [`MAX_UNACKED`]). False if the budget refuses.
fn room_for_one(v: &mut Vec<Unacked>, aux: &mut AuxBudget) -> bool {
    if v.len() < v.capacity() {
        return true;
    }
    let new_cap = (v.capacity() * 2).clamp(4, MAX_UNACKED);
    if new_cap <= v.len() || !aux.reserve(unacked_alloc(new_cap) - unacked_alloc(v.capacity())) {
        return false;
    }
    v.reserve_exact(new_cap - v.len());
    true
}
/// Out-of-order threshold without a handshake RTT: 3 ms.
const DEFAULT_OOO_THRESHOLD: i64 = 3_000_000;
/// A fast retransmission follows the last dup ACK within 20 ms.
const FAST_RETRANSMISSION_WINDOW: i64 = 20_000_000;

/// Counters per analysis kind, each `[client->server, server->client]` by the direction of the
/// flagged packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AnalysisCounters {
    pub retransmission: [u32; 2],
    pub fast_retransmission: [u32; 2],
    pub spurious_retransmission: [u32; 2],
    pub out_of_order: [u32; 2],
    pub dup_ack: [u32; 2],
    pub zero_window: [u32; 2],
    pub zero_window_probe: [u32; 2],
    pub zero_window_probe_ack: [u32; 2],
    pub window_full: [u32; 2],
    pub window_update: [u32; 2],
    pub keep_alive: [u32; 2],
    pub keep_alive_ack: [u32; 2],
    /// "Previous segment not captured".
    pub lost_segment: [u32; 2],
    /// "ACKed unseen segment".
    pub ack_unseen_segment: [u32; 2],
}

impl AnalysisCounters {
    fn count(&mut self, dir: usize, flags: u32) {
        let fields: [(u32, &mut [u32; 2]); 14] = [
            (flag::RETRANSMISSION, &mut self.retransmission),
            (flag::FAST_RETRANSMISSION, &mut self.fast_retransmission),
            (flag::SPURIOUS_RETRANSMISSION, &mut self.spurious_retransmission),
            (flag::OUT_OF_ORDER, &mut self.out_of_order),
            (flag::DUP_ACK, &mut self.dup_ack),
            (flag::ZERO_WINDOW, &mut self.zero_window),
            (flag::ZERO_WINDOW_PROBE, &mut self.zero_window_probe),
            (flag::ZERO_WINDOW_PROBE_ACK, &mut self.zero_window_probe_ack),
            (flag::WINDOW_FULL, &mut self.window_full),
            (flag::WINDOW_UPDATE, &mut self.window_update),
            (flag::KEEP_ALIVE, &mut self.keep_alive),
            (flag::KEEP_ALIVE_ACK, &mut self.keep_alive_ack),
            (flag::LOST_SEGMENT, &mut self.lost_segment),
            (flag::ACK_LOST_SEGMENT, &mut self.ack_unseen_segment),
        ];
        for (bit, counter) in fields {
            if flags & bit != 0 {
                counter[dir] = counter[dir].saturating_add(1);
            }
        }
    }

    /// `(short name, [c2s, s2c])` of every kind, for compact text output.
    pub fn entries(&self) -> [(&'static str, [u32; 2]); 14] {
        [
            ("retx", self.retransmission),
            ("fast-retx", self.fast_retransmission),
            ("spurious-retx", self.spurious_retransmission),
            ("ooo", self.out_of_order),
            ("dup-ack", self.dup_ack),
            ("zero-win", self.zero_window),
            ("zwp", self.zero_window_probe),
            ("zwp-ack", self.zero_window_probe_ack),
            ("win-full", self.window_full),
            ("win-update", self.window_update),
            ("keep-alive", self.keep_alive),
            ("keep-alive-ack", self.keep_alive_ack),
            ("lost", self.lost_segment),
            ("ack-unseen", self.ack_unseen_segment),
        ]
    }
}

/// One sent segment not yet acknowledged.
#[derive(Clone, Copy, Debug)]
struct Unacked {
    seq: SeqNum,
    nextseq: SeqNum,
    ts: Nanos,
}

/// Wireshark's per-direction sequence analysis state.
#[derive(Debug)]
struct SeqInfo {
    nextseq: SeqNum,
    nextseq_time: Nanos,
    maxseqtobeacked: SeqNum,
    lastack: SeqNum,
    lastack_time: Nanos,
    /// Raw window of the last segment (u32::MAX before any).
    window: u32,
    /// -1 unknown, -2 no scaling, else the shift.
    win_scale: i8,
    /// The last segment was a SYN (its window is never scaled).
    window_from_syn: bool,
    dupacknum: i32,
    lastsegmentflags: u32,
    segments: Vec<Unacked>,
}

impl Default for SeqInfo {
    fn default() -> Self {
        SeqInfo {
            nextseq: SeqNum(0),
            nextseq_time: Nanos(0),
            maxseqtobeacked: SeqNum(0),
            lastack: SeqNum(0),
            lastack_time: Nanos(0),
            window: u32::MAX,
            win_scale: -1,
            window_from_syn: false,
            dupacknum: 0,
            lastsegmentflags: 0,
            segments: Vec::new(),
        }
    }
}

/// Running RTT statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RttStats {
    pub samples: u32,
    pub min: i64,
    pub max: i64,
    pub sum: i64,
}

impl RttStats {
    fn add(&mut self, nanos: i64) {
        if self.samples == 0 || nanos < self.min {
            self.min = nanos;
        }
        if self.samples == 0 || nanos > self.max {
            self.max = nanos;
        }
        self.samples = self.samples.saturating_add(1);
        self.sum = self.sum.saturating_add(nanos);
    }

    /// Mean in nanoseconds.
    pub fn avg(&self) -> Option<i64> {
        (self.samples > 0).then(|| self.sum / i64::from(self.samples))
    }
}

/// RTTs measured at the capture point, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rtt {
    /// SYN to SYN/ACK (the server side of the capture point).
    pub syn_synack: Option<i64>,
    /// SYN/ACK to the handshake's ACK (the client side).
    pub synack_ack: Option<i64>,
    /// SYN to the first pure ACK after it (Wireshark's iRTT).
    pub handshake: Option<i64>,
    /// Data/ACK RTT of each direction's data (`[c2s data acked by the server, s2c data]`).
    pub ack: [RttStats; 2],
}

/// One TCP segment as the analysis needs it.
#[derive(Clone, Copy, Debug)]
pub struct SegmentFacts {
    pub seq: SeqNum,
    /// The header's acknowledgement field (even without the ACK flag, as Wireshark reads it).
    pub ack: SeqNum,
    /// Payload length on the wire.
    pub len: u32,
    pub flags: TcpFlags,
    /// Raw (unscaled) window field.
    pub window: u16,
    pub wscale: Option<u8>,
    pub ts: Nanos,
}

/// The analysis of one TCP observation. Directions: 0 is client to server, 1 the reverse.
#[derive(Debug, Default)]
pub struct TcpAnalysis {
    dirs: [SeqInfo; 2],
    pub counters: AnalysisCounters,
    pub rtt: Rtt,
    /// Segments not remembered for RTTs (per-direction cap or budget).
    pub rtt_untracked: u32,
    mru_syn: Option<Nanos>,
    synack: Option<Nanos>,
}

impl TcpAnalysis {
    /// Analyses one segment travelling in direction `dir`; returns its [`flag`]s.
    pub fn segment(&mut self, dir: usize, s: &SegmentFacts, aux: &mut AuxBudget) -> u32 {
        let dir = dir.min(1);
        let (fwd_i, rev_i) = (dir, 1 - dir);
        let flags = s.flags;
        let syn_fin_rst = flags.syn() || flags.fin() || flags.rst();
        if flags.syn() {
            self.window_scaling(fwd_i, rev_i, flags.ack(), s.wscale);
        }
        self.handshake_times(flags, s.ts);

        let [d0, d1] = &mut self.dirs;
        let (fwd, rev) = if dir == 0 { (d0, d1) } else { (d1, d0) };
        let seq = s.seq;
        let ack = s.ack;
        let seglen = s.len;
        let window = u32::from(s.window);
        let mut ta = 0u32;

        'fwd: {
            if seglen == 1 && seq == fwd.nextseq && rev.window == 0 {
                ta |= flag::ZERO_WINDOW_PROBE;
                break 'fwd;
            }
            if window == 0 && !syn_fin_rst {
                ta |= flag::ZERO_WINDOW;
            }
            if fwd.nextseq != SeqNum(0) && seq.gt(fwd.nextseq) && !flags.rst() {
                ta |= flag::LOST_SEGMENT;
            }
            if seglen <= 1 && seq == fwd.nextseq.sub(1) && !syn_fin_rst {
                ta |= flag::KEEP_ALIVE;
            }
            let same_seq_ack = seglen == 0 && seq == fwd.nextseq && ack == fwd.lastack && !syn_fin_rst;
            if same_seq_ack && window != 0 && window != fwd.window {
                ta |= flag::WINDOW_UPDATE;
            }
            if seglen > 0 && rev.win_scale != -1 && !syn_fin_rst {
                let shift = if rev.win_scale < 0 || rev.window_from_syn { 0 } else { rev.win_scale.unsigned_abs() };
                let edge = rev.lastack.add(rev.window.checked_shl(u32::from(shift)).unwrap_or(0));
                if seq.add(seglen) == edge {
                    ta |= flag::WINDOW_FULL;
                }
            }
            if same_seq_ack && window != 0 && window == fwd.window && rev.lastsegmentflags & flag::KEEP_ALIVE != 0 {
                ta |= flag::KEEP_ALIVE_ACK;
                break 'fwd;
            }
            if same_seq_ack
                && window == 0
                && window == fwd.window
                && rev.lastsegmentflags & flag::ZERO_WINDOW_PROBE != 0
            {
                ta |= flag::ZERO_WINDOW_PROBE_ACK;
                break 'fwd;
            }
            if same_seq_ack && window != 0 && window == fwd.window {
                fwd.dupacknum = if fwd.dupacknum == -1 { 1 } else { fwd.dupacknum.saturating_add(1) };
                ta |= flag::DUP_ACK;
            }
        }
        // finished_fwd:
        if ack != fwd.lastack {
            fwd.dupacknum = 0;
        }
        if rev.maxseqtobeacked != SeqNum(0) && ack.gt(rev.maxseqtobeacked) && flags.ack() {
            if rev.maxseqtobeacked.gt(rev.nextseq) {
                rev.maxseqtobeacked = rev.nextseq;
                ta |= flag::ACK_LOST_SEGMENT;
            } else {
                if rev.dupacknum == 0 {
                    ta |= flag::ACK_LOST_SEGMENT;
                }
                rev.dupacknum = -1;
            }
        }

        if (seglen > 0 || flags.syn() || flags.fin()) && ta & flag::KEEP_ALIVE == 0 {
            let mut seq_not_advanced = fwd.nextseq != SeqNum(0) && seq.lt(fwd.nextseq);
            if seglen > 1 && fwd.nextseq.sub(1) == seq {
                seq_not_advanced = false;
            }
            let syn_fin = u32::from(flags.syn() || flags.fin());
            'kind: {
                if seglen > 0 && rev.lastack != SeqNum(0) && seq.add(seglen).le(rev.lastack) {
                    ta |= flag::SPURIOUS_RETRANSMISSION;
                    break 'kind;
                }
                let since_dup = s.ts.0.saturating_sub(rev.lastack_time.0);
                if seq_not_advanced
                    && rev.dupacknum >= 2
                    && rev.lastack == seq
                    && since_dup < FAST_RETRANSMISSION_WINDOW
                {
                    ta |= flag::FAST_RETRANSMISSION;
                    break 'kind;
                }
                let since_next = s.ts.0.saturating_sub(fwd.nextseq_time.0);
                let threshold = self.rtt.handshake.filter(|&r| r != 0).unwrap_or(DEFAULT_OOO_THRESHOLD);
                if seq_not_advanced && since_next < threshold && fwd.nextseq != seq.add(seglen).add(syn_fin) {
                    ta |= flag::OUT_OF_ORDER;
                    break 'kind;
                }
                if seq_not_advanced {
                    ta |= flag::RETRANSMISSION;
                }
            }
        }

        // finished_checking_retransmission_type:
        let mut nextseq = seq.add(seglen);
        if seglen > 0 || flags.syn() || flags.fin() {
            if flags.syn() || flags.fin() {
                nextseq = nextseq.add(1);
            }
            if fwd.segments.len() < MAX_UNACKED && room_for_one(&mut fwd.segments, aux) {
                fwd.segments.push(Unacked { seq, nextseq, ts: s.ts });
            } else {
                self.rtt_untracked = self.rtt_untracked.saturating_add(1);
            }
        }
        let probe = ta & flag::ZERO_WINDOW_PROBE != 0;
        if (nextseq.gt(fwd.nextseq) || fwd.nextseq == SeqNum(0)) && !probe {
            fwd.nextseq = nextseq;
            fwd.nextseq_time = s.ts;
        }
        if (seq == fwd.maxseqtobeacked || fwd.maxseqtobeacked == SeqNum(0)) && !probe {
            fwd.maxseqtobeacked = fwd.nextseq;
        }
        fwd.window = window;
        fwd.window_from_syn = flags.syn();
        fwd.lastack = ack;
        fwd.lastack_time = s.ts;
        fwd.lastsegmentflags = ta;

        // What this acknowledges of the other direction's segments: ACK RTT, then forget them.
        let mut sample = None;
        let before = rev.segments.len();
        rev.segments.retain_mut(|u| {
            if ack == u.nextseq {
                sample.get_or_insert(s.ts.0.saturating_sub(u.ts.0));
                false
            } else if u.nextseq.lt(ack) {
                false
            } else {
                if ack.gt(u.seq) {
                    u.seq = ack;
                }
                true
            }
        });
        if before > 0 && rev.segments.is_empty() {
            aux.release(unacked_alloc(rev.segments.capacity()));
            rev.segments = Vec::new();
        }
        if let Some(nanos) = sample {
            self.rtt.ack[rev_i].add(nanos);
        }

        self.counters.count(dir, ta);
        ta
    }

    /// Wireshark's window scale bookkeeping on SYN and SYN/ACK.
    fn window_scaling(&mut self, fwd: usize, rev: usize, is_synack: bool, wscale: Option<u8>) {
        match wscale {
            Some(ws) => {
                self.dirs[fwd].win_scale = ws.min(14) as i8;
                if is_synack && self.dirs[rev].win_scale == -2 {
                    self.dirs[fwd].win_scale = -2;
                }
            }
            None => {
                self.dirs[fwd].win_scale = -2;
                self.dirs[rev].win_scale = -2;
            }
        }
    }

    fn handshake_times(&mut self, flags: TcpFlags, ts: Nanos) {
        if flags.syn() && !flags.ack() {
            self.mru_syn = Some(ts);
        } else if flags.syn() && flags.ack() {
            if let Some(syn) = self.mru_syn
                && self.synack.is_none()
            {
                self.synack = Some(ts);
                self.rtt.syn_synack = Some(ts.0.saturating_sub(syn.0));
            }
        } else if flags.ack()
            && !flags.rst()
            && self.rtt.handshake.is_none()
            && let Some(syn) = self.mru_syn
        {
            self.rtt.handshake = Some(ts.0.saturating_sub(syn.0));
            if let Some(synack) = self.synack {
                self.rtt.synack_ack = Some(ts.0.saturating_sub(synack.0));
            }
        }
    }

    /// Returns every remembered segment's memory to `aux` (call before dropping).
    pub fn release(&mut self, aux: &mut AuxBudget) {
        for d in &mut self.dirs {
            aux.release(unacked_alloc(d.segments.capacity()));
            d.segments = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    struct Run {
        a: TcpAnalysis,
        aux: AuxBudget,
        t: i64,
    }

    impl Run {
        fn new() -> Run {
            Run { a: TcpAnalysis::default(), aux: AuxBudget::new(1 << 20), t: 0 }
        }
        /// Sends one segment `dt` ms after the previous one.
        #[allow(clippy::too_many_arguments)]
        fn seg(&mut self, dir: usize, dt: i64, flags: u8, seq: u32, ack: u32, len: u32, window: u16) -> u32 {
            self.t += dt * MS;
            let facts = SegmentFacts {
                seq: SeqNum(seq),
                ack: SeqNum(ack),
                len,
                flags: TcpFlags(flags),
                window,
                wscale: if flags & 2 != 0 { Some(0) } else { None },
                ts: Nanos(self.t),
            };
            self.a.segment(dir, &facts, &mut self.aux)
        }
        fn handshake(&mut self) {
            self.seg(0, 0, 0x02, 1000, 0, 0, 65535);
            self.seg(1, 10, 0x12, 5000, 1001, 0, 65535);
            self.seg(0, 10, 0x10, 1001, 5001, 0, 65535);
        }
    }

    #[test]
    fn clean_exchange_has_no_flags_and_measures_rtt() {
        let mut r = Run::new();
        r.handshake();
        assert_eq!(r.seg(0, 1, 0x18, 1001, 5001, 100, 65535), 0);
        assert_eq!(r.seg(1, 4, 0x18, 5001, 1101, 50, 65535), 0);
        assert_eq!(r.seg(0, 2, 0x10, 1101, 5051, 0, 65535), 0);
        assert_eq!(r.a.counters, AnalysisCounters::default());
        assert_eq!(r.a.rtt.handshake, Some(20 * MS));
        assert_eq!(r.a.rtt.syn_synack, Some(10 * MS));
        assert_eq!(r.a.rtt.synack_ack, Some(10 * MS));
        assert_eq!(r.a.rtt.ack[0].samples, 2, "SYN/ACK acks the SYN, then the data");
        assert_eq!(r.a.rtt.ack[0].max, 10 * MS);
        assert_eq!(r.a.rtt.ack[1].min, 2 * MS);
    }

    #[test]
    fn retransmission_kinds() {
        let mut r = Run::new();
        r.handshake();
        r.seg(0, 1, 0x18, 1001, 5001, 100, 65535);
        // The same segment 200 ms later, unacknowledged: a retransmission.
        assert_eq!(r.seg(0, 200, 0x18, 1001, 5001, 100, 65535), flag::RETRANSMISSION);
        // Acknowledged, then sent again: spurious.
        r.seg(1, 1, 0x10, 5001, 1101, 0, 65535);
        assert_eq!(r.seg(0, 200, 0x18, 1001, 5001, 100, 65535), flag::SPURIOUS_RETRANSMISSION);
        // A hole, three dup ACKs, then the fill: previous segment not captured, dup ACKs, fast
        // retransmission.
        assert_eq!(r.seg(0, 1, 0x18, 1201, 5001, 100, 65535), flag::LOST_SEGMENT);
        assert_eq!(r.seg(1, 1, 0x10, 5001, 1101, 0, 65535), flag::DUP_ACK);
        assert_eq!(r.seg(1, 1, 0x10, 5001, 1101, 0, 65535), flag::DUP_ACK);
        assert_eq!(r.seg(0, 1, 0x18, 1101, 5001, 100, 65535), flag::FAST_RETRANSMISSION);
        // Out of order: an earlier segment right after a later one.
        assert_eq!(r.seg(0, 1, 0x18, 1401, 5001, 100, 65535), flag::LOST_SEGMENT);
        assert_eq!(r.seg(0, 0, 0x18, 1301, 5001, 100, 65535), flag::OUT_OF_ORDER);
        assert_eq!(r.a.counters.retransmission, [1, 0]);
        assert_eq!(r.a.counters.dup_ack, [0, 2]);
    }

    #[test]
    fn keep_alive_zero_window_and_acked_unseen() {
        let mut r = Run::new();
        r.handshake();
        assert_eq!(r.seg(0, 1000, 0x10, 1000, 5001, 0, 65535), flag::KEEP_ALIVE);
        assert_eq!(r.seg(1, 1, 0x10, 5001, 1001, 0, 65535), flag::KEEP_ALIVE_ACK);
        assert_eq!(r.seg(1, 1, 0x10, 5001, 1001, 0, 0), flag::ZERO_WINDOW);
        // The server acknowledges 500 bytes the capture never saw.
        assert_eq!(r.seg(1, 1, 0x10, 5001, 1501, 0, 100), flag::ACK_LOST_SEGMENT);
        assert_eq!(r.a.counters.zero_window, [0, 1]);
    }

    #[test]
    fn window_full_uses_the_advertised_edge() {
        let mut r = Run::new();
        r.handshake();
        r.seg(1, 1, 0x10, 5001, 1001, 100, 100); // server advertises 100 bytes at ack 1001
        assert_eq!(r.seg(0, 1, 0x18, 1001, 5101, 100, 65535), flag::WINDOW_FULL);
    }

    #[test]
    fn unacked_memory_is_bounded_and_returned() {
        let mut r = Run::new();
        r.handshake();
        for i in 0..1000u32 {
            r.seg(0, 0, 0x10, 1001 + i * 10, 5001, 10, 65535);
        }
        assert!(r.aux.used() <= 2 * unacked_alloc(MAX_UNACKED));
        assert_eq!(r.aux.used(), unacked_alloc(MAX_UNACKED), "charged by capacity");
        assert!(r.a.rtt_untracked > 900);
        let mut aux = std::mem::replace(&mut r.aux, AuxBudget::new(0));
        r.a.release(&mut aux);
        assert_eq!(aux.used(), 0);
    }
}
