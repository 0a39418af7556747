//! The joined view: [`Model`] -> [`Path`]s -> [`Leg`]s -> [`Observation`]s, and its JSON
//! rendering (one object per path, one line each, DESIGN.md's `--flows=json` shape; fields
//! are only ever added).
//!
//! One seed-path connection from `samples/` (wrapped here; one line in the output):
//!
//! ```json
//! {"id":2,"proto":"tcp","client":"127.0.0.1:40001","server":"192.168.49.2:8443",
//!  "first":1795928336.034943,"last":1795928336.049746,
//!  "legs":[
//!   {"observations":[{"point":"host-lo","src":"127.0.0.1:40001","dst":"127.0.0.1:49673",
//!      "packets":[6,4],"bytes":[64,64],"first":1795928336.034943,"last":1795928336.04973,"ids":[0]}],
//!    "join":{"kind":"none","score":0,"evidence":[],"links":[]},"process":null,"hops":[]},
//!   {"observations":[{"point":"host-veth","src":"192.168.65.1:38892",..},{"point":"vm-veth",..}],
//!    "join":{"kind":"same-tuple","score":245,"evidence":["isn","segments","tsval","ip-id",
//!      "payload 64B","size","same tuple"],"links":[{"between":[0,1],"score":245}]},
//!    "process":null,"hops":[{"from":0,"to":1,"changes":[],
//!      "latency":{"c2s_us":3.0,"s2c_us":3.0,"samples":8}}]},
//!   {"observations":[{"point":"vm/conntrack","src":"127.0.0.1:39658","dst":"127.0.0.1:55001",
//!      ..,"source":"conntrack","ids":[],"conntrack":{"id":2727558185,
//!      "orig":"127.0.0.1:39658 -> 127.0.0.1:55001","reply":"192.168.49.2:8443 -> 192.168.49.1:39658"}},
//!      {"point":"vm-br0",..},{"point":"vm-brport",..},{"point":"node-eth0",..}],
//!    "join":{"kind":"nat","score":50,"evidence":["conntrack id=2727558185","isn",..],"links":[..]},
//!    "process":null,"hops":[{"from":0,"to":1,"changes":[{"field":"src","from":"127.0.0.1:39658",
//!      "to":"192.168.49.1:39658"},{"field":"dst","from":"127.0.0.1:55001","to":"192.168.49.2:8443"}],
//!      "latency":{"samples":0}},..],
//!    "rewrite":{"src":["127.0.0.1:39658","192.168.49.1:39658"],"dst":["127.0.0.1:55001","192.168.49.2:8443"]}}],
//!  "via":[{"between":[0,1],"process":null,"score":72,"evidence":["payload 64B","size","timing"],
//!          "connect_us":6912.0,"forward_us":3965.0,"reply_us":580.0},
//!         {"between":[1,2],..}]}
//! ```
//!
//! Evidence in JSON is short text, each once per leg (the model keeps every link's
//! evidence with values and points: [`LegJoin::evidence`], [`Via::evidence`]); `process` is
//! `{"client":{"pid":..,"comm":..}|null,"server":..}` when an owner is known; paths with
//! undecided forwarder hops carry `"ambiguous":[{"leg":i,"side":"upstream|downstream",
//! "candidates":[{"path":p,"leg":j,"score":s}],"fitting_pairings":n}]`, with
//! `fitting_pairings` only for an undecidable hop: `n` (2 or more) ways to pair the legs of
//! its group fit every byte and end the joiner kept, so no score could decide it.

use super::evidence::{Evidence, LinkEvidence, Scored, Short};
use super::features::{Nanos, Owner};
use super::view::{Change, Latency};
use crate::conntrack::CtTuple;
use crate::json::{addr, addr_opt, display};
use serde::{Serialize, Serializer};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

/// A label as its text.
fn text<S: Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
}

fn display_pair<S: Serializer>(v: &Option<[SocketAddr; 2]>, s: S) -> Result<S::Ok, S::Error> {
    struct D<'a>(&'a SocketAddr);
    impl Serialize for D<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            addr(self.0, s)
        }
    }
    match v {
        Some([a, b]) => [D(a), D(b)].serialize(s),
        None => s.serialize_none(),
    }
}

/// UNIX seconds as JSON numbers.
pub(crate) fn unix_s(ns: Nanos) -> f64 {
    let s = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000);
    s as f64 + frac as f64 / 1e9
}

/// The joiner's answer.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Model {
    /// Ordered by first packet, ids from 1.
    pub paths: Vec<Path>,
    pub stats: super::JoinStats,
}

/// Legs carrying one byte stream, client to server.
#[derive(Clone, Debug, Serialize)]
pub struct Path {
    pub id: u64,
    /// `tcp` or `udp`.
    pub proto: &'static str,
    /// The first leg's client and the last leg's server, as seen nearest to them.
    #[serde(serialize_with = "addr_opt")]
    pub client: Option<SocketAddr>,
    #[serde(serialize_with = "addr_opt")]
    pub server: Option<SocketAddr>,
    pub first: f64,
    pub last: f64,
    pub legs: Vec<Leg>,
    /// One entry per forwarder hop, between consecutive legs.
    pub via: Vec<Via>,
    /// Forwarder hops the evidence could not decide (not joined).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ambiguous: Vec<Ambiguity>,
    #[serde(skip)]
    pub first_ns: Nanos,
    #[serde(skip)]
    pub last_ns: Nanos,
}

/// One transport connection, with every observation of it in travel order.
#[derive(Clone, Debug, Serialize)]
pub struct Leg {
    pub observations: Vec<Observation>,
    pub join: LegJoin,
    /// Owners of the connection's two sockets, when known.
    pub process: Option<Box<LegProcess>>,
    /// Between consecutive observations.
    pub hops: Vec<Hop>,
    /// Tuple rewrite from the first observation to the last (NAT), when any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<Box<Rewrite>>,
}

/// How the observations of a leg were joined.
///
/// JSON: `{"kind":..,"score":..,"evidence":[short texts, each once],"links":[{"between":
/// [i,j],"score":..}]}`; the full evidence of each link, with values and points, is
/// [`LegJoin::evidence`].
#[derive(Clone, Debug)]
pub struct LegJoin {
    pub kind: JoinKind,
    /// Score of the weakest link (0 for a single observation).
    pub score: i32,
    /// The links that joined the observations (a spanning tree).
    pub links: Vec<Link>,
}

/// Two observations of a leg joined: indices into the leg's `observations`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub between: [u32; 2],
    pub score: i32,
    pub evidence: LinkEvidence,
}

/// The items that read differently in short form, in order.
pub(crate) fn distinct(items: impl Iterator<Item = Evidence>) -> Vec<Evidence> {
    // Allocated at the first item: a leg of one observation has none.
    let mut out: Vec<Evidence> = Vec::new();
    for e in items {
        if !out.iter().any(|o| o.same_short(&e)) {
            if out.is_empty() {
                out.reserve(16);
            }
            out.push(e);
        }
    }
    out
}

/// Each short text once, in order.
pub(crate) fn summary(items: impl Iterator<Item = Evidence>) -> Vec<String> {
    distinct(items)
        .iter()
        .map(|e| Short(e).to_string())
        .collect()
}

/// Serializes items as a JSON array of their short texts.
struct Shorts(Vec<Evidence>);

impl Serialize for Shorts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut q = s.serialize_seq(Some(self.0.len()))?;
        for e in &self.0 {
            q.serialize_element(&ShortStr(e))?;
        }
        q.end()
    }
}

struct ShortStr<'a>(&'a Evidence);

impl Serialize for ShortStr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        display(&Short(self.0), s)
    }
}

impl LegJoin {
    /// Every link's evidence items, `between` naming the two observations it joins.
    pub fn evidence(&self) -> Vec<Scored> {
        let mut out = Vec::new();
        for l in &self.links {
            out.extend(l.evidence.items().into_iter().map(|mut s| {
                s.between = Some(l.between);
                s
            }));
        }
        out
    }

    /// Short texts of the evidence, each once (`isn`, `payload 64B`, `conntrack id=7`).
    pub fn summary(&self) -> Vec<String> {
        summary(
            self.links
                .iter()
                .flat_map(|l| l.evidence.iter().map(|s| s.evidence)),
        )
    }
}

impl Serialize for LegJoin {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct LinkOut<'a>(&'a Link);
        impl Serialize for LinkOut<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("between", &self.0.between)?;
                m.serialize_entry("score", &self.0.score)?;
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("kind", &self.kind)?;
        m.serialize_entry("score", &self.score)?;
        m.serialize_entry(
            "evidence",
            &Shorts(distinct(
                self.links
                    .iter()
                    .flat_map(|l| l.evidence.iter().map(|s| s.evidence)),
            )),
        )?;
        let links: Vec<LinkOut<'_>> = self.links.iter().map(LinkOut).collect();
        m.serialize_entry("links", &links)?;
        m.end()
    }
}

/// Join kind of a leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JoinKind {
    /// One observation: nothing joined (in JSON `same-tuple`, DESIGN.md's two kinds: one
    /// tuple, trivially; its evidence list is empty).
    #[serde(rename = "same-tuple")]
    None,
    /// Every observation shows the same tuple.
    SameTuple,
    /// Some observation shows a rewritten tuple.
    Nat,
}

impl JoinKind {
    pub fn name(self) -> &'static str {
        match self {
            JoinKind::None => "none",
            JoinKind::SameTuple => "same-tuple",
            JoinKind::Nat => "nat",
        }
    }
}

/// The owners of a leg's sockets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LegProcess {
    pub client: Option<Owner>,
    pub server: Option<Owner>,
}

/// Where an observation came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Packets captured at the point.
    Capture,
    /// A conntrack entry: a tuple no capture point showed. Its packet and byte counts are
    /// those of the leg's nearest captured observation (the same packets, before or after
    /// the rewrite).
    Conntrack,
}

impl Source {
    pub fn is_capture(&self) -> bool {
        *self == Source::Capture
    }
}

/// A tuple.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Endpoints {
    #[serde(serialize_with = "addr")]
    pub src: SocketAddr,
    #[serde(serialize_with = "addr")]
    pub dst: SocketAddr,
}

/// A conntrack entry a synthetic observation was made from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CtRef {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
    #[serde(serialize_with = "display")]
    pub orig: CtTuple,
    #[serde(serialize_with = "display")]
    pub reply: CtTuple,
}

/// One observation (or two halves at one point, merged) of a leg.
#[derive(Clone, Debug, Serialize)]
pub struct Observation {
    #[serde(serialize_with = "text")]
    pub point: Arc<str>,
    /// Client side as seen here.
    #[serde(serialize_with = "addr")]
    pub src: SocketAddr,
    /// Server side as seen here.
    #[serde(serialize_with = "addr")]
    pub dst: SocketAddr,
    /// `[c2s, s2c]`.
    pub packets: [u64; 2],
    /// TCP/UDP payload bytes, `[c2s, s2c]`.
    pub bytes: [u64; 2],
    pub first: f64,
    pub last: f64,
    /// `conntrack` for a synthetic observation (absent for captured ones).
    #[serde(skip_serializing_if = "Source::is_capture")]
    pub source: Source,
    /// The server-to-client direction's tuple, when this point shows the replies under
    /// other addresses (two half observations merged, e.g. a bridge with br_netfilter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<Box<Endpoints>>,
    /// The flow table's ids of the observations shown here (two for merged halves, none
    /// for a synthetic observation).
    pub ids: Ids,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conntrack: Option<Box<CtRef>>,
    /// What the text tree prints after the counters: state, history and analysis, filled by
    /// the report from the observation's flow record (the JSON has the record's own fields).
    #[serde(skip)]
    pub note: Option<Box<str>>,
}

/// Up to two observation ids, serialized as a JSON array.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ids {
    ids: [u64; 2],
    n: u8,
}

impl Ids {
    pub fn push(&mut self, id: u64) {
        if usize::from(self.n) < 2 && !self.as_slice().contains(&id) {
            self.ids[usize::from(self.n)] = id;
            self.n += 1;
        }
    }
    pub fn as_slice(&self) -> &[u64] {
        &self.ids[..usize::from(self.n).min(2)]
    }
    pub fn contains(&self, id: &u64) -> bool {
        self.as_slice().contains(id)
    }
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
    pub fn iter(&self) -> std::slice::Iter<'_, u64> {
        self.as_slice().iter()
    }
}

impl<'a> IntoIterator for &'a Ids {
    type Item = &'a u64;
    type IntoIter = std::slice::Iter<'a, u64>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl Serialize for Ids {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(s)
    }
}

/// Between two consecutive observations of a leg.
#[derive(Clone, Debug, Serialize)]
pub struct Hop {
    pub from: usize,
    pub to: usize,
    pub changes: Vec<Change>,
    pub latency: Latency,
}

/// What NAT changed along a leg.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rewrite {
    /// `[before, after]`.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "display_pair"
    )]
    pub src: Option<[SocketAddr; 2]>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "display_pair"
    )]
    pub dst: Option<[SocketAddr; 2]>,
}

/// A forwarder between legs `between[0]` and `between[1]`.
///
/// JSON: `{"between":[i,j],"process":{"pid":..,"comm":..}|null,"score":..,"evidence":[short
/// texts],"connect_us":..,"forward_us":..,"reply_us":..}` (delays when known).
#[derive(Clone, Debug)]
pub struct Via {
    pub between: [usize; 2],
    /// The process that ends the first leg and opens the second, when known.
    pub process: Option<Owner>,
    pub score: i32,
    pub evidence: Vec<Scored>,
}

impl Via {
    /// Short texts of the evidence, each once.
    pub fn summary(&self) -> Vec<String> {
        summary(self.evidence.iter().map(|s| s.evidence.clone()))
    }
}

impl Serialize for Via {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("between", &self.between)?;
        m.serialize_entry("process", &self.process)?;
        m.serialize_entry("score", &self.score)?;
        // The delays are numbers of their own: the text says only "timing".
        let bare = |e: &Evidence| match e {
            Evidence::Timing { .. } => Evidence::Timing {
                connect_us: None,
                forward_us: None,
                reply_us: None,
            },
            e => e.clone(),
        };
        m.serialize_entry(
            "evidence",
            &Shorts(distinct(self.evidence.iter().map(|s| bare(&s.evidence)))),
        )?;
        for e in &self.evidence {
            if let Evidence::Timing {
                connect_us,
                forward_us,
                reply_us,
            } = &e.evidence
            {
                for (k, v) in [
                    ("connect_us", connect_us),
                    ("forward_us", forward_us),
                    ("reply_us", reply_us),
                ] {
                    if let Some(v) = v {
                        m.serialize_entry(k, v)?;
                    }
                }
            }
        }
        m.end()
    }
}

/// A forwarder hop left undecided.
#[derive(Clone, Debug, Serialize)]
pub struct Ambiguity {
    /// Index of the leg in this path.
    pub leg: usize,
    /// `upstream` or `downstream`: which neighbour is in doubt.
    pub side: &'static str,
    /// Paths holding the candidate legs, with each candidate's score.
    pub candidates: Vec<Candidate>,
    /// When the hop is undecidable: how many ways to pair the legs of its group every
    /// byte and end the joiner kept fits (2 or more; `None`: not known to be undecidable,
    /// the scores were only too close). Counted up to [`FITTING_MAX`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fitting_pairings: Option<u32>,
}

impl Ambiguity {
    /// Why the hop stays undecided when it is undecidable (`undecidable: 2 pairings fit the
    /// packets`); `None` when its scores were only too close.
    pub fn undecidable_note(&self) -> Option<String> {
        let n = self.fitting_pairings?;
        let more = if n >= FITTING_MAX { " or more" } else { "" };
        Some(format!("undecidable: {n}{more} pairings fit the packets"))
    }
}

/// Ways to pair the legs of an undecidable group counted at most
/// ([`Ambiguity::fitting_pairings`]).
pub const FITTING_MAX: u32 = 1000;

/// A candidate of an [`Ambiguity`].
#[derive(Clone, Debug, Serialize)]
pub struct Candidate {
    pub path: u64,
    pub leg: usize,
    pub score: i32,
}

impl Path {
    /// One JSON line (no newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

impl Model {
    /// `--flows=json`: one JSON object per path, one line each.
    pub fn write_json_lines(&self, w: &mut dyn io::Write) -> io::Result<()> {
        // Each line is built in one buffer (serde_json writes many small pieces; through a
        // `dyn Write` each would be a call) and handed over whole.
        let mut line = Vec::with_capacity(4096);
        for p in &self.paths {
            line.clear();
            serde_json::to_writer(&mut line, p).map_err(io::Error::other)?;
            line.push(b'\n');
            w.write_all(&line)?;
        }
        Ok(())
    }

    /// The path holding the flow table's observation `id`.
    pub fn path_of(&self, id: u64) -> Option<&Path> {
        self.paths.iter().find(|p| {
            p.legs
                .iter()
                .any(|l| l.observations.iter().any(|o| o.ids.contains(&id)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds() {
        assert_eq!(unix_s(1_500_000_000), 1.5);
        assert_eq!(unix_s(-500_000_000), -0.5);
    }
}
