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
            4096.. => 30,
            512.. => 25,
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
    SizeDiffers { dir: Dir, upstream: u64, downstream: u64 },
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
    ProcessDiffers { upstream: Box<super::Owner>, downstream: Box<super::Owner> },
    /// Forwarder ends seen in different namespaces (penalty).
    NetnsDiffers,
}

impl Evidence {
    /// Short text for the tree view (directions and counts left out, so both directions'
    /// evidence of one kind reads once).
    pub fn short(&self) -> String {
        match self {
            Evidence::Isn { .. } => "isn".into(),
            Evidence::AckIsn { .. } => "ack=isn".into(),
            Evidence::SeqShift { dir, shift } => format!("seq shift {dir} {shift:+}"),
            Evidence::Segments { .. } => "segments".into(),
            Evidence::SeqOverlap { .. } => "seq overlap".into(),
            Evidence::Tsval { .. } => "tsval".into(),
            Evidence::TsvalProgression { .. } => "tsval progression".into(),
            Evidence::TsEcho { .. } => "ts echo".into(),
            Evidence::TsvalDiffers { .. } => "tsval differs".into(),
            Evidence::IpId { .. } => "ip-id".into(),
            Evidence::Payload { bytes, .. } => format!("payload {bytes}B"),
            Evidence::Datagrams { .. } => "datagrams".into(),
            Evidence::Size { .. } => "size".into(),
            Evidence::SizeDiffers { dir, upstream, downstream } => {
                format!("size differs {dir} {upstream}B/{downstream}B")
            }
            Evidence::SameTuple => "same tuple".into(),
            Evidence::Conntrack { id: Some(id), .. } => format!("conntrack id={id}"),
            Evidence::Conntrack { id: None, .. } => "conntrack".into(),
            Evidence::Timing { connect_us, forward_us, reply_us } => {
                let mut s = String::from("timing");
                for (name, v) in [("connect", connect_us), ("forward", forward_us), ("reply", reply_us)] {
                    if let Some(v) = v {
                        s.push_str(&format!(" {name} {}", fmt_us(f64::from(*v))));
                    }
                }
                s
            }
            Evidence::Process { pid, comm } => format!("process {comm}[{pid}]"),
            Evidence::ProcessDiffers { upstream, downstream } => format!("process differs {upstream}/{downstream}"),
            Evidence::NetnsDiffers => "netns differs".into(),
        }
    }
}

/// Microseconds for humans: `4us`, `1.25ms`, `2.0s`.
pub fn fmt_us(us: f64) -> String {
    if us.abs() < 1000.0 {
        format!("{us:.0}us")
    } else if us.abs() < 1_000_000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{:.1}s", us / 1_000_000.0)
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
    fn evidence_is_small() {
        assert!(std::mem::size_of::<Evidence>() <= 32, "{}", std::mem::size_of::<Evidence>());
    }

    #[test]
    fn evidence_json() {
        let s = Scored { evidence: Evidence::Isn { dir: Dir::C2s, isn: 7 }, points: 40, between: Some([0, 1]) };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"kind":"isn","dir":"c2s","isn":7,"points":40,"between":[0,1]}"#
        );
    }
}
