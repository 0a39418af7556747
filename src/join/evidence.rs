//! [`Evidence`]: one reason two observations are one leg, or two legs one path, with the
//! points it scored. The point values are the scoring rules; they live here, next to the
//! evidence they price, and the module docs of [`crate::join`] explain them.

use serde::Serialize;
use std::fmt;

/// Which way, relative to the leg's (or path's) client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Dir {
    #[serde(rename = "c2s")]
    C2s,
    #[serde(rename = "s2c")]
    S2c,
}

impl Dir {
    pub const BOTH: [Dir; 2] = [Dir::C2s, Dir::S2c];
    pub const fn index(self) -> usize {
        match self {
            Dir::C2s => 0,
            Dir::S2c => 1,
        }
    }
    pub const fn other(self) -> Dir {
        match self {
            Dir::C2s => Dir::S2c,
            Dir::S2c => Dir::C2s,
        }
    }
    pub const fn name(self) -> &'static str {
        match self {
            Dir::C2s => "c2s",
            Dir::S2c => "s2c",
        }
    }
}

impl fmt::Display for Dir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Points per kind of evidence (see the module docs of [`crate::join`]).
pub mod points {
    /// Equal ISN in one direction: a 32-bit random number chosen per connection.
    pub const ISN: i32 = 40;
    /// The other half's acknowledgement (or SYN-ACK) names this direction's ISN + 1.
    pub const ACK_ISN: i32 = 40;
    /// A constant sequence shift in one direction, confirmed by the acknowledgements.
    pub const SEQ_SHIFT: i32 = 20;
    /// The same segments (sequence number, length, flags) seen at both points.
    pub const SEGMENTS: i32 = 15;
    /// Overlapping sequence ranges (midstream, no SYN at either point).
    pub const SEQ_OVERLAP: i32 = 10;
    /// Equal TSvals.
    pub const TSVAL: i32 = 20;
    /// TSvals advancing with the clock between the two points (midstream).
    pub const TSVAL_PROGRESSION: i32 = 10;
    /// One half echoes (TSecr) the other half's TSval.
    pub const TS_ECHO: i32 = 20;
    /// A TSval differs on the same SYN.
    pub const TSVAL_DIFFERS: i32 = -10;
    /// At least two equal non-zero IPv4 identifications.
    pub const IP_ID: i32 = 15;
    /// Equal per-datagram digests (UDP), per datagram, up to [`DATAGRAMS_MAX`].
    pub const DATAGRAM: i32 = 15;
    pub const DATAGRAMS_MAX: i32 = 30;
    /// Same byte count, both directions finished.
    pub const SIZE: i32 = 5;
    /// Different byte counts although both finished (path join).
    pub const SIZE_DIFFERS: i32 = -10;
    /// Same 5-tuple at two points overlapping in time.
    pub const SAME_TUPLE_TCP: i32 = 15;
    pub const SAME_TUPLE_UDP: i32 = 25;
    /// Conntrack maps one tuple to the other.
    pub const CONNTRACK: i32 = 50;
    /// The same process ends the upstream leg and opens the downstream one.
    pub const PROCESS: i32 = 50;
    /// Different processes (different `comm`) at the two ends of a forwarder hop.
    pub const PROCESS_DIFFERS: i32 = -30;
    /// Forwarder ends seen in different network namespaces.
    pub const NETNS_DIFFERS: i32 = -10;
    /// Most points timing can give (path join; see [`super::timing_points`]).
    pub const TIMING_MAX: i32 = 30;

    /// Points for an equal payload prefix of `n` bytes, for a leg join.
    pub fn payload_leg(n: u32) -> i32 {
        match n {
            1024.. => 30,
            256.. => 25,
            64.. => 20,
            16.. => 15,
            _ => 10,
        }
    }

    /// Points for an equal payload prefix of `n` bytes, for a path join (payload is what a
    /// forwarder carries over, so it weighs more there).
    pub fn payload_path(n: u32) -> i32 {
        payload_leg(n) + 10
    }
}

/// Timing points for a forwarder hop whose worst delay is `delay_ns`: 30 at 10 us or less,
/// minus 10 per decade, 0 from 10 ms on.
pub fn timing_points(delay_ns: i64) -> i32 {
    let d = (delay_ns.max(10_000) as f64) / 10_000.0;
    let p = 30.0 - 10.0 * d.log10();
    p.clamp(0.0, points::TIMING_MAX as f64).round() as i32
}

/// One reason for a join.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Evidence {
    /// Equal ISN.
    Isn { dir: Dir, isn: u32 },
    /// One half-observation's acknowledgement names the other's ISN.
    AckIsn { dir: Dir, isn: u32 },
    /// Sequence numbers of `dir` differ by a constant `shift` (a sequence-randomizing box).
    SeqShift { dir: Dir, shift: i32 },
    /// Equal segments (sequence number, length, flags).
    Segments { dir: Dir, matched: u32 },
    /// Overlapping sequence ranges (midstream).
    SeqOverlap { dir: Dir },
    /// Equal TSvals.
    Tsval { dir: Dir, matched: u32 },
    /// TSvals consistent with the clock between the points (midstream).
    TsvalProgression { dir: Dir },
    /// The other half echoes this direction's TSval.
    TsEcho { dir: Dir },
    /// TSvals of the same SYN differ (penalty).
    TsvalDiffers { dir: Dir },
    /// Equal IPv4 identifications.
    IpId { dir: Dir, matched: u32 },
    /// Equal payload prefix.
    Payload { dir: Dir, bytes: u32 },
    /// Equal datagram digests (UDP).
    Datagrams { dir: Dir, matched: u32 },
    /// Equal final byte counts.
    Size { dir: Dir, bytes: u64 },
    /// Different final byte counts (penalty).
    SizeDiffers {
        dir: Dir,
        upstream: u64,
        downstream: u64,
    },
    /// Same 5-tuple.
    SameTuple,
    /// A conntrack entry maps one tuple to the other (the entry's tuples are on the
    /// observations it joins, or on the synthetic observation made from it).
    Conntrack {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
    },
    /// Forwarder delays (path join): downstream SYN after upstream SYN, first downstream
    /// byte after the first upstream byte, first upstream reply byte after the downstream's.
    Timing {
        #[serde(skip_serializing_if = "Option::is_none")]
        connect_us: Option<f32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        forward_us: Option<f32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        reply_us: Option<f32>,
    },
    /// The same process ends one leg and starts the next.
    Process { pid: u32, comm: Box<str> },
    /// Different processes at the two ends of a forwarder hop (penalty).
    ProcessDiffers {
        upstream: Box<super::Owner>,
        downstream: Box<super::Owner>,
    },
    /// Forwarder ends seen in different namespaces (penalty).
    NetnsDiffers,
    /// Joined by elimination: of the `legs` ambiguous legs around this hop, every other
    /// way to pair them breaks causality by more than the doubt (path join; no points).
    Elimination { legs: u32 },
}

/// [`Evidence::short`] without allocating (`Display`).
pub struct Short<'a>(pub &'a Evidence);

impl fmt::Display for Short<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Evidence::Isn { .. } => f.write_str("isn"),
            Evidence::AckIsn { .. } => f.write_str("ack=isn"),
            Evidence::SeqShift { dir, shift } => write!(f, "seq shift {dir} {shift:+}"),
            Evidence::Segments { .. } => f.write_str("segments"),
            Evidence::SeqOverlap { .. } => f.write_str("seq overlap"),
            Evidence::Tsval { .. } => f.write_str("tsval"),
            Evidence::TsvalProgression { .. } => f.write_str("tsval progression"),
            Evidence::TsEcho { .. } => f.write_str("ts echo"),
            Evidence::TsvalDiffers { .. } => f.write_str("tsval differs"),
            Evidence::IpId { .. } => f.write_str("ip-id"),
            Evidence::Payload { bytes, .. } => write!(f, "payload {bytes}B"),
            Evidence::Datagrams { .. } => f.write_str("datagrams"),
            Evidence::Size { .. } => f.write_str("size"),
            Evidence::SizeDiffers {
                dir,
                upstream,
                downstream,
            } => write!(f, "size differs {dir} {upstream}B/{downstream}B"),
            Evidence::SameTuple => f.write_str("same tuple"),
            Evidence::Conntrack { id: Some(id) } => write!(f, "conntrack id={id}"),
            Evidence::Conntrack { id: None } => f.write_str("conntrack"),
            Evidence::Timing {
                connect_us,
                forward_us,
                reply_us,
            } => {
                f.write_str("timing")?;
                for (name, v) in [
                    ("connect", connect_us),
                    ("forward", forward_us),
                    ("reply", reply_us),
                ] {
                    if let Some(v) = v {
                        write!(f, " {name} {}", fmt_us(f64::from(*v)))?;
                    }
                }
                Ok(())
            }
            Evidence::Process { pid, comm } => write!(f, "process {comm}[{pid}]"),
            Evidence::ProcessDiffers {
                upstream,
                downstream,
            } => write!(f, "process differs {upstream}/{downstream}"),
            Evidence::NetnsDiffers => f.write_str("netns differs"),
            Evidence::Elimination { .. } => f.write_str("elimination"),
        }
    }
}

impl Evidence {
    /// Whether two items read the same in short form ([`Short`]).
    pub fn same_short(&self, other: &Evidence) -> bool {
        use Evidence::*;
        match (self, other) {
            (Payload { bytes: a, .. }, Payload { bytes: b, .. }) => a == b,
            (SeqShift { .. }, _)
            | (SizeDiffers { .. }, _)
            | (Timing { .. }, _)
            | (Process { .. }, _)
            | (ProcessDiffers { .. }, _) => self == other,
            (Conntrack { id: a }, Conntrack { id: b }) => a == b,
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }

    /// Short text for the tree view (directions and counts left out, so both directions'
    /// evidence of one kind reads once).
    pub fn short(&self) -> String {
        Short(self).to_string()
    }
}

/// Points an item of leg evidence scores (the leg-join rules of [`points`]).
pub fn leg_points(e: &Evidence) -> i32 {
    match e {
        Evidence::Isn { .. } => points::ISN,
        Evidence::AckIsn { .. } => points::ACK_ISN,
        Evidence::SeqShift { .. } => points::SEQ_SHIFT,
        Evidence::Segments { .. } => points::SEGMENTS,
        Evidence::SeqOverlap { .. } => points::SEQ_OVERLAP,
        Evidence::Tsval { .. } => points::TSVAL,
        Evidence::TsvalProgression { .. } => points::TSVAL_PROGRESSION,
        Evidence::TsEcho { .. } => points::TS_ECHO,
        Evidence::TsvalDiffers { .. } => points::TSVAL_DIFFERS,
        Evidence::IpId { .. } => points::IP_ID,
        Evidence::Payload { bytes, .. } => points::payload_leg(*bytes),
        Evidence::Datagrams { matched, .. } => {
            (*matched as i32 * points::DATAGRAM).min(points::DATAGRAMS_MAX)
        }
        Evidence::Size { .. } => points::SIZE,
        Evidence::SameTuple => points::SAME_TUPLE_TCP,
        Evidence::Conntrack { .. } => points::CONNTRACK,
        _ => 0,
    }
}

/// Kinds of leg evidence, as bit positions of [`LinkEvidence`] (two bits each: c2s, s2c).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Isn,
    AckIsn,
    SeqShift,
    Segments,
    SeqOverlap,
    Tsval,
    TsvalProgression,
    TsEcho,
    TsvalDiffers,
    IpId,
    Payload,
    Datagrams,
    Size,
    SameTuple,
    Conntrack,
}

const KINDS: [Kind; 15] = [
    Kind::Isn,
    Kind::AckIsn,
    Kind::SeqShift,
    Kind::Segments,
    Kind::SeqOverlap,
    Kind::Tsval,
    Kind::TsvalProgression,
    Kind::TsEcho,
    Kind::TsvalDiffers,
    Kind::IpId,
    Kind::Payload,
    Kind::Datagrams,
    Kind::Size,
    Kind::SameTuple,
    Kind::Conntrack,
];

/// The evidence of one leg link in a fixed 64 bytes (a link is kept per joined pair, so a
/// list of [`Evidence`] per link would cost ten times more): which kinds held in which
/// direction, and their values. [`LinkEvidence::items`] expands it, with points.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkEvidence {
    bits: u32,
    isn: [u32; 2],
    shift: [i32; 2],
    /// Matched counts: segments, tsvals, ip-ids, datagrams.
    counts: [[u8; 2]; 4],
    payload: [u32; 2],
    size: [u64; 2],
    conntrack: u32,
    score: i32,
    /// UDP: the same tuple scores [`points::SAME_TUPLE_UDP`].
    udp: bool,
}

impl LinkEvidence {
    /// Evidence of a UDP link (the same tuple weighs more: UDP has no sequence space).
    pub fn udp() -> LinkEvidence {
        LinkEvidence {
            udp: true,
            ..LinkEvidence::default()
        }
    }

    fn points(&self, e: &Evidence) -> i32 {
        match e {
            Evidence::SameTuple if self.udp => points::SAME_TUPLE_UDP,
            e => leg_points(e),
        }
    }

    fn bit(kind: Kind, dir: Dir) -> u32 {
        1 << (kind as u32 * 2 + dir.index() as u32)
    }

    /// Records `e` (leg evidence only; other kinds are ignored) and its points.
    pub fn add(&mut self, e: &Evidence) {
        let clamp = |n: u32| n.min(255) as u8;
        let (kind, dir) = match *e {
            Evidence::Isn { dir, isn } => {
                self.isn[dir.index()] = isn;
                (Kind::Isn, dir)
            }
            Evidence::AckIsn { dir, isn } => {
                self.isn[dir.index()] = isn;
                (Kind::AckIsn, dir)
            }
            Evidence::SeqShift { dir, shift } => {
                self.shift[dir.index()] = shift;
                (Kind::SeqShift, dir)
            }
            Evidence::Segments { dir, matched } => {
                self.counts[0][dir.index()] = clamp(matched);
                (Kind::Segments, dir)
            }
            Evidence::SeqOverlap { dir } => (Kind::SeqOverlap, dir),
            Evidence::Tsval { dir, matched } => {
                self.counts[1][dir.index()] = clamp(matched);
                (Kind::Tsval, dir)
            }
            Evidence::TsvalProgression { dir } => (Kind::TsvalProgression, dir),
            Evidence::TsEcho { dir } => (Kind::TsEcho, dir),
            Evidence::TsvalDiffers { dir } => (Kind::TsvalDiffers, dir),
            Evidence::IpId { dir, matched } => {
                self.counts[2][dir.index()] = clamp(matched);
                (Kind::IpId, dir)
            }
            Evidence::Payload { dir, bytes } => {
                self.payload[dir.index()] = bytes;
                (Kind::Payload, dir)
            }
            Evidence::Datagrams { dir, matched } => {
                self.counts[3][dir.index()] = clamp(matched);
                (Kind::Datagrams, dir)
            }
            Evidence::Size { dir, bytes } => {
                self.size[dir.index()] = bytes;
                (Kind::Size, dir)
            }
            Evidence::SameTuple => (Kind::SameTuple, Dir::C2s),
            Evidence::Conntrack { id } => {
                self.conntrack = id.unwrap_or(0);
                if id.is_some() {
                    self.bits |= Self::bit(Kind::Conntrack, Dir::S2c);
                }
                (Kind::Conntrack, Dir::C2s)
            }
            _ => return,
        };
        let b = Self::bit(kind, dir);
        if self.bits & b == 0 {
            self.bits |= b;
            self.score += self.points(e);
        }
    }

    /// Sum of the points.
    pub fn score(&self) -> i32 {
        self.score
    }

    /// Whether some evidence of `e`'s kind and direction is recorded.
    pub fn has(&self, e: &Evidence) -> bool {
        let mut probe = LinkEvidence::default();
        probe.add(e);
        self.bits & probe.bits & !Self::bit(Kind::Conntrack, Dir::S2c) != 0
    }

    /// Merges another link's evidence (kinds already present keep their values).
    pub fn merge(&mut self, other: &LinkEvidence) {
        for s in other.items() {
            self.add(&s.evidence);
        }
    }

    /// The evidence items, strongest kinds first, c2s before s2c.
    pub fn items(&self) -> Vec<Scored> {
        self.iter().collect()
    }

    /// [`LinkEvidence::items`] without allocating.
    pub fn iter(&self) -> impl Iterator<Item = Scored> + '_ {
        KINDS.iter().flat_map(move |&kind| {
            Dir::BOTH
                .into_iter()
                .filter_map(move |dir| self.item(kind, dir))
        })
    }

    fn item(&self, kind: Kind, dir: Dir) -> Option<Scored> {
        {
            {
                if self.bits & Self::bit(kind, dir) == 0 {
                    return None;
                }
                let i = dir.index();
                let e = match kind {
                    Kind::Isn => Evidence::Isn {
                        dir,
                        isn: self.isn[i],
                    },
                    Kind::AckIsn => Evidence::AckIsn {
                        dir,
                        isn: self.isn[i],
                    },
                    Kind::SeqShift => Evidence::SeqShift {
                        dir,
                        shift: self.shift[i],
                    },
                    Kind::Segments => Evidence::Segments {
                        dir,
                        matched: u32::from(self.counts[0][i]),
                    },
                    Kind::SeqOverlap => Evidence::SeqOverlap { dir },
                    Kind::Tsval => Evidence::Tsval {
                        dir,
                        matched: u32::from(self.counts[1][i]),
                    },
                    Kind::TsvalProgression => Evidence::TsvalProgression { dir },
                    Kind::TsEcho => Evidence::TsEcho { dir },
                    Kind::TsvalDiffers => Evidence::TsvalDiffers { dir },
                    Kind::IpId => Evidence::IpId {
                        dir,
                        matched: u32::from(self.counts[2][i]),
                    },
                    Kind::Payload => Evidence::Payload {
                        dir,
                        bytes: self.payload[i],
                    },
                    Kind::Datagrams => Evidence::Datagrams {
                        dir,
                        matched: u32::from(self.counts[3][i]),
                    },
                    Kind::Size => Evidence::Size {
                        dir,
                        bytes: self.size[i],
                    },
                    Kind::SameTuple if dir == Dir::C2s => Evidence::SameTuple,
                    Kind::Conntrack if dir == Dir::C2s => {
                        let known = self.bits & Self::bit(Kind::Conntrack, Dir::S2c) != 0;
                        Evidence::Conntrack {
                            id: known.then_some(self.conntrack),
                        }
                    }
                    _ => return None,
                };
                let points = self.points(&e);
                Some(Scored {
                    evidence: e,
                    points,
                    between: None,
                })
            }
        }
    }
}

/// Microseconds for humans: `4us`, `1.25ms`, `2.0s` (integer arithmetic: float
/// formatting with a precision is slow).
pub fn fmt_us(us: f64) -> String {
    let neg = if us < 0.0 { "-" } else { "" };
    let u = if us.is_nan() {
        0
    } else {
        us.abs().round().min(1e15) as u64
    };
    if u < 1000 {
        format!("{neg}{u}us")
    } else if u < 1_000_000 {
        let c = (u + 5) / 10; // centi-milliseconds
        format!("{neg}{}.{:02}ms", c / 100, c % 100)
    } else {
        let d = (u + 50_000) / 100_000; // tenths of seconds
        format!("{neg}{}.{}s", d / 10, d % 10)
    }
}

/// An [`Evidence`] with its points and, within a leg, which observations it joins
/// (indices into the leg's `observations`, in travel order).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scored {
    #[serde(flatten)]
    pub evidence: Evidence,
    pub points: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub between: Option<[u32; 2]>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_points_per_decade() {
        assert_eq!(timing_points(0), 30);
        assert_eq!(timing_points(10_000), 30);
        assert_eq!(timing_points(100_000), 20);
        assert_eq!(timing_points(1_000_000), 10);
        assert_eq!(timing_points(10_000_000), 0);
        assert_eq!(timing_points(i64::MAX), 0);
        assert_eq!(timing_points(-5), 30);
    }

    #[test]
    fn link_evidence_round_trips() {
        let mut l = LinkEvidence::default();
        let items = [
            Evidence::Isn {
                dir: Dir::C2s,
                isn: 7,
            },
            Evidence::Isn {
                dir: Dir::S2c,
                isn: 9,
            },
            Evidence::Payload {
                dir: Dir::C2s,
                bytes: 64,
            },
            Evidence::Datagrams {
                dir: Dir::S2c,
                matched: 3,
            },
            Evidence::SameTuple,
            Evidence::Conntrack { id: Some(5) },
        ];
        for e in &items {
            l.add(e);
        }
        l.add(&Evidence::Isn {
            dir: Dir::C2s,
            isn: 7,
        });
        assert_eq!(l.score(), 40 + 40 + 20 + 30 + 15 + 50);
        let back: Vec<Evidence> = l.items().into_iter().map(|s| s.evidence).collect();
        assert_eq!(back.len(), items.len());
        for e in &items {
            assert!(back.contains(e), "{e:?}");
            assert!(l.has(e));
        }
        assert!(std::mem::size_of::<LinkEvidence>() <= 72);
        let mut c = LinkEvidence::default();
        c.add(&Evidence::Conntrack { id: None });
        assert_eq!(c.items()[0].evidence, Evidence::Conntrack { id: None });
    }

    #[test]
    fn microseconds_for_humans() {
        assert_eq!(fmt_us(3.4), "3us");
        assert_eq!(fmt_us(6910.0), "6.91ms");
        assert_eq!(fmt_us(997.0), "997us");
        assert_eq!(fmt_us(999.6), "1.00ms");
        assert_eq!(fmt_us(2_040_000.0), "2.0s");
        assert_eq!(fmt_us(-4.0), "-4us");
        assert_eq!(fmt_us(f64::NAN), "0us");
    }

    #[test]
    fn evidence_is_small() {
        assert!(
            std::mem::size_of::<Evidence>() <= 32,
            "{}",
            std::mem::size_of::<Evidence>()
        );
    }

    #[test]
    fn evidence_json() {
        let s = Scored {
            evidence: Evidence::Isn {
                dir: Dir::C2s,
                isn: 7,
            },
            points: 40,
            between: Some([0, 1]),
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"kind":"isn","dir":"c2s","isn":7,"points":40,"between":[0,1]}"#
        );
    }
}
