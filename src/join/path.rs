//! Path join: which legs carry the same bytes through a forwarder (see the module docs of
//! [`crate::join`] for the rules). Candidates share a payload key (the digest of the first
//! 16 bytes of a direction, or of a whole shorter stream; for UDP a datagram digest) and
//! start within the path window; every candidate edge upstream -> downstream is scored by
//! [`score_edge`]; edges are then chosen as a matching (each leg has at most one upstream
//! and one downstream leg) that must be clearly better than every alternative
//! ([`choose`]).

use super::evidence::{Dir, Evidence, Scored, points, timing_points};
use super::features::{DirFeatures, Nanos, Owner, Proto};
use super::index::{Grouper, key};
use super::leg::{Ob, datagram_alignment, same_tuple};
use super::model::{FITTING_MAX, Observation, Source};
use super::view::{View, Views};
use super::{JoinConfig, JoinStats};
use crate::join::digest::{DigestCmp, StreamDigest};
use crate::netns::Netns;
use smallvec::SmallVec;
use std::net::SocketAddr;

/// Per leg ([`LegSum::ends`]): the server endpoint nearest the client and nearest the server,
/// with the points; `None` for a leg of synthetic observations only. The path phases ask
/// for it per leg and per edge, when the features it comes from are out of the cache; kept
/// beside the summaries, not in them (a larger summary slowed the model's output by a
/// third).
pub(crate) type Ends = [Option<(u32, SocketAddr)>; 2];

/// One direction of a leg, summarized over its views.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct StreamSum<'b> {
    /// The anchored digest that hashed the most bytes.
    pub digest: Option<&'b StreamDigest>,
    /// The view direction with the most comparable datagram digests (UDP).
    pub datagrams: Option<&'b DirFeatures>,
    pub bytes: u64,
    pub finished: bool,
    /// First payload at the view nearest the client / the server.
    pub data_near_client: Option<Nanos>,
    pub data_near_server: Option<Nanos>,
    /// This direction at the real view nearest the client / the server (TCP segment
    /// records, for per-segment causality).
    pub dir_near_client: Option<&'b DirFeatures>,
    pub dir_near_server: Option<&'b DirFeatures>,
}

/// A leg as the path join sees it.
#[derive(Clone, Debug)]
pub(crate) struct LegSum<'b> {
    pub proto: Proto,
    pub views: Views,
    /// Changes and latency between consecutive views.
    pub hops: Vec<super::model::Hop>,
    pub first: Nanos,
    pub last: Nanos,
    /// Connection start at the real view nearest the client / the server.
    pub start_near_client: Nanos,
    pub start_near_server: Nanos,
    pub streams: [StreamSum<'b>; 2],
    pub client_owner: Option<Owner>,
    pub server_owner: Option<Owner>,
    /// Points of the real views nearest the client / the server.
    pub point_near_client: u32,
    pub point_near_server: u32,
    /// The leg's observations as the model shows them (taken by the model's leg).
    pub observations: Vec<Observation>,
    /// Payload head key of each direction ([`LegSum::keys`]), taken while the digests are
    /// at hand (in the features, one cache miss each).
    heads: [Option<u64>; 2],
}

impl<'b> LegSum<'b> {
    pub fn new(
        views: Views,
        obs: &[Ob<'b>],
        owner: &dyn Fn(&View, bool) -> Option<Owner>,
    ) -> LegSum<'b> {
        let is_real = |v: &&View| v.synthetic(obs).is_none();
        let near_client = views.iter().find(is_real).or(views.first());
        let near_server = views.iter().rev().find(is_real).or(views.last());
        let proto = views.first().map_or(Proto::Tcp, |v| v.main(obs).f.proto);
        let mut streams = [StreamSum::default(); 2];
        for dir in Dir::BOTH {
            let s = &mut streams[dir.index()];
            for v in views.iter().filter(is_real) {
                let d = v.d(obs, dir);
                s.bytes = s.bytes.max(d.bytes);
                s.finished |= d.finished();
                if d.stream.anchor_state() == super::digest::Anchor::Syn
                    && s.digest.is_none_or(|b| d.stream.hashed() > b.hashed())
                {
                    s.digest = Some(&d.stream);
                }
                let comparable = |x: &DirFeatures| {
                    x.datagrams()
                        .as_slice()
                        .iter()
                        .filter(|g| g.digest().is_some())
                        .count()
                };
                if comparable(d) > 0 && s.datagrams.is_none_or(|b| comparable(d) > comparable(b)) {
                    s.datagrams = Some(d);
                }
            }
            let data_at = |v: Option<&View>| -> Option<Nanos> {
                let d = v?.d(obs, dir);
                d.data_at()
                    .or_else(|| d.datagrams().as_slice().first().and_then(|g| d.time(g.at)))
            };
            s.data_near_client = data_at(near_client);
            s.data_near_server = data_at(near_server);
            s.dir_near_client = near_client.map(|v| v.d(obs, dir));
            s.dir_near_server = near_server.map(|v| v.d(obs, dir));
        }
        let client_owner = views.iter().find_map(|v| owner(v, true));
        let server_owner = views.iter().rev().find_map(|v| owner(v, false));
        let first = views.iter().map(|v| v.first(obs)).min().unwrap_or(0);
        let last = views.iter().map(|v| v.last(obs)).max().unwrap_or(0);
        let heads = match proto {
            Proto::Tcp => streams.map(|s| s.digest.and_then(|x| x.index_key())),
            Proto::Udp => streams.map(|s| {
                s.datagrams
                    .and_then(|x| x.datagrams().as_slice().iter().find_map(|g| g.digest()))
            }),
        };
        LegSum {
            proto,
            first,
            last,
            start_near_client: near_client.map_or(first, |v| v.start(obs)),
            start_near_server: near_server.map_or(first, |v| v.start(obs)),
            streams,
            client_owner,
            server_owner,
            point_near_client: near_client.map_or(0, |v| v.point),
            point_near_server: near_server.map_or(0, |v| v.point),
            views,
            hops: Vec::new(),
            observations: Vec::new(),
            heads,
        }
    }

    /// The server endpoint as the captured views nearest the client and nearest the server
    /// show it, with their points ([`Ends`]), from the leg's model observations (one per
    /// view, in order), just made and in the cache.
    pub fn ends(&self) -> Ends {
        let ends = self.views.iter().zip(&self.observations);
        let captured = |(_, o): &(&View, &Observation)| o.source == Source::Capture;
        [ends.clone().find(captured), ends.rev().find(captured)].map(|end| end.map(|(v, o)| (v.point, o.dst)))
    }

    /// The payload keys the path search groups legs by, `(key, pairs on its own)` (see
    /// [`Grouper::push_level`]). A forwarder hop carries the same bytes both ways, so a TCP
    /// leg with payload in both directions is found under the key of both heads together;
    /// its per-direction keys only pair it with legs that show one direction (midstream,
    /// or cut short). UDP: the first datagram digest of each direction.
    fn keys(&self, out: &mut Vec<(u64, bool)>) {
        match (self.proto, self.heads) {
            (Proto::Tcp, [Some(a), Some(b)]) => {
                out.push((key(12, a ^ b.rotate_left(29)), true));
                out.push((key(10, a), false));
                out.push((key(11, b), false));
            }
            _ => {
                for (d, h) in self.heads.iter().enumerate() {
                    if let Some(h) = h {
                        out.push((key(10 + d as u8, *h), true));
                    }
                }
            }
        }
    }
}

/// A candidate forwarder hop: leg `up` hands its bytes to leg `down`.
#[derive(Clone, Debug)]
pub(crate) struct PathEdge {
    pub up: u32,
    pub down: u32,
    pub score: i32,
    /// The forwarder closed a leg before anything could have made it
    /// ([`close_unexplained`]): impossible for [`eliminate`].
    pub close_unexplained: bool,
    pub evidence: Vec<Scored>,
}

/// Candidate pairs of legs (unordered).
pub(crate) fn candidates(
    legs: &[LegSum<'_>],
    cfg: &JoinConfig,
    stats: &mut JoinStats,
) -> Vec<(u32, u32)> {
    let mut g = Grouper::with_capacity(legs.len() * 2);
    let mut keys = Vec::with_capacity(4);
    for (i, l) in legs.iter().enumerate() {
        keys.clear();
        l.keys(&mut keys);
        keys.sort_unstable();
        keys.dedup();
        let busy = l.streams[0]
            .data_near_server
            .unwrap_or(l.start_near_server)
            .max(l.start_near_server);
        for &(k, top) in &keys {
            g.push_level(
                k,
                l.start_near_client,
                busy.saturating_add(cfg.path_window_ns),
                i as u32,
                top,
            );
        }
    }
    let mut pairs = Vec::new();
    g.pairs(
        0,
        cfg.max_candidates,
        &mut pairs,
        &mut stats.capped_candidates,
    );
    super::index::dedup_unordered(&mut pairs);
    pairs
}

/// What scoring one orientation of a pair gave.
#[derive(Debug)]
pub(crate) enum EdgeScore {
    /// A candidate hop.
    Edge(PathEdge),
    /// Everything fits but causality, broken by this much (beyond the slack); `close`:
    /// [`close_unexplained`].
    Acausal { by: Nanos, close: bool },
    /// Not a hop (protocol, window, a loop, payload, score).
    No,
}

/// Scores `up -> down` as a forwarder hop: [`EdgeScore::Edge`] when it can be one, else why
/// not (order and causality beyond the slack are told apart from the rest, for
/// [`eliminate`]).
pub(crate) fn score_edge(
    up: &LegSum<'_>,
    down: &LegSum<'_>,
    ui: u32,
    di: u32,
    obs: &[Ob<'_>],
    netns: &[Option<Netns>],
    cfg: &JoinConfig,
) -> EdgeScore {
    if up.proto != down.proto {
        return EdgeScore::No;
    }
    // Order: the downstream leg starts after the upstream one (strictly; ties by index, so
    // the candidate graph has no cycles). Reversed by more than the doubt: not worth more.
    let (us, ds) = (up.start_near_server, down.start_near_client);
    let order = if ds < us || (ds == us && di < ui) {
        us.saturating_sub(ds).max(1)
    } else {
        0
    };
    if order > cfg.elimination_doubt_ns {
        return EdgeScore::No;
    }
    let up_busy = up.streams[0].data_near_server.unwrap_or(us).max(us);
    if ds > up_busy.saturating_add(cfg.path_window_ns) {
        return EdgeScore::No;
    }
    // A forwarder does not connect to itself at the same point.
    for u in &up.views {
        for d in down.views.iter().filter(|d| d.point == u.point) {
            let (c, s, c2, s2) = (u.client(obs), u.server(obs), d.client(obs), d.server(obs));
            if same_tuple((c, s), (c2, s2)) || c == c2 || s == s2 {
                return EdgeScore::No;
            }
        }
    }
    let mut ev: Vec<(Evidence, i32)> = Vec::with_capacity(8);
    let mut payload = false;
    for dir in Dir::BOTH {
        let (a, b) = (&up.streams[dir.index()], &down.streams[dir.index()]);
        match up.proto {
            Proto::Tcp => {
                if let (Some(x), Some(y)) = (a.digest, b.digest) {
                    match x.compare(y) {
                        DigestCmp::Match(n) => {
                            ev.push((Evidence::Payload { dir, bytes: n }, points::payload_path(n)));
                            payload = true;
                        }
                        DigestCmp::Mismatch(_) => return EdgeScore::No,
                        DigestCmp::Unknown => {}
                    }
                }
                if a.finished && b.finished && a.bytes > 0 {
                    if a.bytes == b.bytes {
                        ev.push((
                            Evidence::Size {
                                dir,
                                bytes: a.bytes,
                            },
                            points::SIZE,
                        ));
                    } else {
                        ev.push((
                            Evidence::SizeDiffers {
                                dir,
                                upstream: a.bytes,
                                downstream: b.bytes,
                            },
                            points::SIZE_DIFFERS,
                        ));
                    }
                }
            }
            Proto::Udp => {
                if let (Some(x), Some(y)) = (a.datagrams, b.datagrams)
                    && let Some(m) = datagram_alignment(x, y).filter(|&m| m > 0)
                {
                    ev.push((
                        Evidence::Datagrams { dir, matched: m },
                        10 + (m as i32 * points::DATAGRAM).min(points::DATAGRAMS_MAX),
                    ));
                    payload = true;
                }
            }
        }
    }
    if !payload {
        return EdgeScore::No;
    }
    // Causality: the forwarder writes downstream what it read upstream, and back.
    let slack = cfg.causality_slack_ns;
    let forward = match (a_data(up, Dir::C2s, false), a_data(down, Dir::C2s, true)) {
        (Some(u), Some(d)) => Some(d.saturating_sub(u)),
        _ => None,
    };
    let reply = match (a_data(up, Dir::S2c, false), a_data(down, Dir::S2c, true)) {
        (Some(u), Some(d)) => Some(u.saturating_sub(d)),
        _ => None,
    };
    let mut acausal = order
        .max(forward.map_or(0, |f| f.saturating_neg()))
        .max(reply.map_or(0, |r| r.saturating_neg()));
    // The same, segment by segment: no byte is written downstream (upstream, for replies)
    // before the forwarder could have read it.
    let (c, s) = (Dir::C2s.index(), Dir::S2c.index());
    if up.proto == Proto::Tcp {
        let late = |reader: Option<&DirFeatures>, writer: Option<&DirFeatures>| match (reader, writer) {
            (Some(r), Some(w)) => segments_acausal(r, w),
            _ => 0,
        };
        acausal = acausal
            .max(late(up.streams[c].dir_near_server, down.streams[c].dir_near_client))
            .max(late(down.streams[s].dir_near_client, up.streams[s].dir_near_server));
    }
    if order > 0 || acausal > slack {
        return EdgeScore::Acausal {
            by: acausal,
            close: close_unexplained(up, down, slack, cfg.elimination_doubt_ns),
        };
    }
    let connect = ds.saturating_sub(us);
    let worst = [Some(connect), forward, reply]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(connect);
    let us_f = |ns: i64| Some((ns as f64 / 1000.0) as f32);
    ev.push((
        Evidence::Timing {
            connect_us: us_f(connect),
            forward_us: forward.and_then(us_f),
            reply_us: reply.and_then(us_f),
        },
        timing_points(worst),
    ));
    match (&up.server_owner, &down.client_owner) {
        (Some(a), Some(b)) if a.pid == b.pid => ev.push((
            Evidence::Process {
                pid: a.pid,
                comm: a.comm.as_str().into(),
            },
            points::PROCESS,
        )),
        (Some(a), Some(b)) if a.comm != b.comm => ev.push((
            Evidence::ProcessDiffers {
                upstream: Box::new(a.clone()),
                downstream: Box::new(b.clone()),
            },
            points::PROCESS_DIFFERS,
        )),
        _ => {}
    }
    let ns = |p: u32| netns.get(p as usize).and_then(|n| n.as_ref());
    if let (Some(a), Some(b)) = (ns(up.point_near_server), ns(down.point_near_client))
        && a != b
    {
        ev.push((Evidence::NetnsDiffers, points::NETNS_DIFFERS));
    }
    let score = ev.iter().map(|(_, p)| p).sum();
    if score < cfg.path_threshold {
        return EdgeScore::No;
    }
    EdgeScore::Edge(PathEdge {
        up: ui,
        down: di,
        score,
        close_unexplained: close_unexplained(up, down, slack, cfg.elimination_doubt_ns),
        evidence: ev
            .into_iter()
            .map(|(evidence, points)| Scored {
                evidence,
                points,
                between: None,
            })
            .collect(),
    })
}

/// How much earlier than the forwarder could have read it a recorded payload segment of
/// `writer` was written (the earliest recorded `reader` segment holding its last stream
/// offset); 0 when none was. Offsets count from each side's SYN; bytes `reader` has no
/// record of are not judged.
fn segments_acausal(reader: &DirFeatures, writer: &DirFeatures) -> Nanos {
    let (Some(rs), Some(ws)) = (reader.syn, writer.syn) else {
        return 0;
    };
    let off = |seq: u32, isn: u32| u64::from(seq.wrapping_sub(isn.wrapping_add(1)));
    let mut worst = 0;
    for w in writer.segments().as_slice().iter().filter(|w| w.len > 0) {
        let Some(w_at) = writer.time(w.at) else { continue };
        let last = off(w.seq, ws.isn) + u64::from(w.len) - 1;
        let read = reader
            .segments()
            .as_slice()
            .iter()
            .filter(|r| r.len > 0)
            .filter(|r| {
                let o = off(r.seq, rs.isn);
                o <= last && last < o + u64::from(r.len)
            })
            .filter_map(|r| reader.time(r.at))
            .min();
        if let Some(r) = read {
            worst = worst.max(r.saturating_sub(w_at));
        }
    }
    worst
}

/// Whether the forwarder of `up -> down` closed a leg before anything could have made it
/// (TCP). The forwarder's closes are the first FIN or RST it sends: downstream towards the
/// server, upstream back to the client. What makes it close is an end it reads: the
/// client's on the upstream leg, the server's on the downstream leg. A forwarder either
/// passes an end on (a half-close: the client's FIN becomes its FIN towards the server, the
/// server's its FIN back to the client), or closes both legs on either end. So a close is
/// explained by an end on the other leg, seen at another point, before it within `doubt`
/// (timestamps of two points: passed on), or by an end on its own leg seen at the same
/// point before it (within `slack`) when the forwarder's other close came with it, within
/// `doubt` (both closed at once; or the other close not seen). Not judged when nothing ended.
///
/// A forwarder that passes ends on closes its two legs at two unrelated moments; in a wrong
/// pairing, its close back to the client can then come before the server's end on the
/// other leg (it was the server's end on another connection), with only the client's own
/// end, long before, and no close towards the server with it to explain it.
///
/// An unexplained close happens for the wrong pairing, or for a forwarder that closes on
/// its own (an idle timeout, a proxy closing after a response), so this is no gate: it only
/// makes a pairing impossible for [`eliminate`], where a forwarder closing on its own
/// breaks the true pairings too and nothing is eliminated.
fn close_unexplained(up: &LegSum<'_>, down: &LegSum<'_>, slack: Nanos, doubt: Nanos) -> bool {
    let (c, s) = (Dir::C2s.index(), Dir::S2c.index());
    let end = |d: Option<&DirFeatures>| d.and_then(DirFeatures::end_at);
    let client_end = end(up.streams[c].dir_near_server);
    let server_end = end(down.streams[s].dir_near_client);
    if client_end.is_none() && server_end.is_none() {
        return false;
    }
    let to_server = end(down.streams[c].dir_near_client);
    let to_client = end(up.streams[s].dir_near_server);
    // (the forwarder's close, the end on the same leg, the end on the other leg, the
    // forwarder's close of the other leg)
    [(to_server, server_end, client_end, to_client), (to_client, client_end, server_end, to_server)]
        .into_iter()
        .any(|(close, same, other, other_close)| {
            close.is_some_and(|t| {
                let passed_on = other.is_some_and(|e| e <= t.saturating_add(doubt));
                let both_at_once = same.is_some_and(|e| e <= t.saturating_add(slack))
                    && other_close.is_none_or(|o| o.abs_diff(t) <= doubt.unsigned_abs());
                !passed_on && !both_at_once
            })
        })
}

/// First payload of `dir` at the view nearest the forwarder: the server end of an upstream
/// leg (`near_client == false`), the client end of a downstream leg.
fn a_data(l: &LegSum<'_>, dir: Dir, near_client: bool) -> Option<Nanos> {
    let s = &l.streams[dir.index()];
    if near_client {
        s.data_near_client
    } else {
        s.data_near_server
    }
}

/// A pair that is no candidate only because causality looked broken, by at most
/// [`JoinConfig::elimination_doubt_ns`] (forwarded bytes and close order alike): for
/// [`eliminate`], still a possible pairing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NearMiss {
    pub up: u32,
    pub down: u32,
}

/// Scores candidate pairs in both orders; at most one order passes the order gate. Also
/// returns the near misses.
pub(crate) fn edges(
    legs: &[LegSum<'_>],
    ends: &[Ends],
    pairs: &[(u32, u32)],
    obs: &[Ob<'_>],
    netns: &[Option<Netns>],
    cfg: &JoinConfig,
    stats: &mut JoinStats,
) -> (Vec<PathEdge>, Vec<NearMiss>) {
    let mut out = Vec::new();
    let mut near = Vec::new();
    for &(a, b) in pairs {
        // The server nearest the server: legs with the same one at the same point are two
        // connections to one listening socket, never a forwarder hop (cheap check first).
        let (sa, sb) = (ends[a as usize][1], ends[b as usize][1]);
        if sa.is_some() && sa == sb {
            stats.path_pairs_same_server += 1;
            continue;
        }
        stats.path_pairs_scored += 1;
        let (la, lb) = (&legs[a as usize], &legs[b as usize]);
        let doubt = cfg.elimination_doubt_ns;
        let mut miss = |e: EdgeScore, up: u32, down: u32| match e {
            EdgeScore::Edge(e) => Some(e),
            EdgeScore::Acausal { by, close } => {
                if by <= doubt && !close {
                    near.push(NearMiss { up, down });
                }
                None
            }
            EdgeScore::No => None,
        };
        if let Some(e) = miss(score_edge(la, lb, a, b, obs, netns, cfg), a, b)
            .or_else(|| miss(score_edge(lb, la, b, a, obs, netns, cfg), b, a))
        {
            out.push(e);
        }
    }
    // A pair with an edge one way is no near miss the other way.
    if !near.is_empty() {
        let edge_pairs: std::collections::HashSet<(u32, u32)> =
            out.iter().map(|e| (e.up.min(e.down), e.up.max(e.down))).collect();
        near.retain(|n| !edge_pairs.contains(&(n.up.min(n.down), n.up.max(n.down))));
    }
    (out, near)
}

/// Drops the edges (and near misses) that run against the other edges between the same two
/// services. An edge `up -> down` says the service `up` connects to (its server end nearest
/// the server) forwards to the service `down` connects to (nearest the client); a hop the
/// other way between the same two services would close a forwarding loop, which no sane
/// setup has. Such mirrored candidates come from one forwarder's own legs: two clients
/// sending the same bytes through it make the downstream leg of one and the upstream leg
/// of the next look like a hop from the server's side back to the forwarder's. Of the two
/// directions the one with fewer candidate edges is dropped (a tie drops nothing: the
/// matching decides, and the chain loop cut in [`super::Joiner`] stays the backstop).
pub(crate) fn drop_reversed(
    ends: &[Ends],
    edges: &mut Vec<PathEdge>,
    near: &mut Vec<NearMiss>,
    stats: &mut JoinStats,
) {
    // Each leg's service as seen nearest its server and nearest its client
    // ([`Ends`]), then every hop's pair once per edge.
    let hop = |up: u32, down: u32| {
        let at = |l: u32, near_server: bool| {
            let (_, a) = ends.get(l as usize)?[usize::from(near_server)]?;
            Some(super::leg::canon(a))
        };
        Some((at(up, true)?, at(down, false)?))
    };
    let mut count: foldhash::HashMap<(SocketAddr, SocketAddr), u32> = foldhash::HashMap::default();
    for e in edges.iter() {
        if let Some(k) = hop(e.up, e.down) {
            *count.entry(k).or_default() += 1;
        }
    }
    let against = |up: u32, down: u32| {
        hop(up, down).is_some_and(|(s, t)| {
            let n = |k| count.get(&k).copied().unwrap_or(0);
            s != t && n((t, s)) > n((s, t))
        })
    };
    let before = edges.len();
    edges.retain(|e| !against(e.up, e.down));
    stats.path_reversed = (before - edges.len()) as u64;
    near.retain(|n| !against(n.up, n.down));
}

/// What the matching decided.
#[derive(Debug, Default)]
pub(crate) struct Choice {
    /// Indices into the edge list.
    pub accepted: Vec<usize>,
    pub ambiguous: Vec<usize>,
    /// Accepted by elimination ([`eliminate`]), a subset of `accepted`: each with the
    /// number of legs of its group.
    pub eliminated: Vec<(usize, u32)>,
    /// Ambiguous edges of a group that [`eliminate`] found undecidable, a subset of
    /// `ambiguous`: each with the number of ways to pair the group's legs that every kept
    /// byte and end fits (at least 2, at most [`FITTING_MAX`]).
    pub undecidable: Vec<(usize, u32)>,
}


/// Weight of one edge in a matching: cardinality first (a leg in the middle of a chain needs
/// both its edges), then score.
const BONUS: i64 = 1000;
/// Edges per conflict group solved exactly; larger groups are solved greedily.
const EXACT_EDGES: usize = 20;
/// Matchings enumerated per group at most.
const EXACT_MATCHINGS: usize = 1 << 16;

/// Chooses edges so each leg has at most one upstream and one downstream leg.
///
/// Edges conflict when they share an upstream leg or a downstream leg. An edge without
/// conflicts is taken. In a group of conflicting edges every matching is enumerated with
/// weight `sum(score + BONUS)`; the edges common to every matching within `margin` of the
/// best are taken, the other edges of those matchings are ambiguous (not joined, reported).
/// Groups too large to enumerate are solved greedily: an edge is taken when it beats every
/// edge it conflicts with (whose other end is still free) by `margin`.
///
/// Last, [`eliminate`] joins groups of ambiguous legs that only one pairing explains.
pub(crate) fn choose(
    edges: &[PathEdge],
    near: &[NearMiss],
    cfg: &JoinConfig,
    stats: &mut JoinStats,
) -> Choice {
    let margin = cfg.margin;
    let mut choice = Choice::default();
    let graph = Graph::new(edges);
    // Conflict groups: union-find over edges through their (up, out) and (down, in) ends.
    let mut parent: Vec<usize> = (0..edges.len()).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    let legs = graph.legs();
    let mut first_out: Vec<u32> = vec![u32::MAX; legs];
    let mut first_in: Vec<u32> = vec![u32::MAX; legs];
    for (i, e) in edges.iter().enumerate() {
        for slot in [
            &mut first_out[e.up as usize],
            &mut first_in[e.down as usize],
        ] {
            if *slot == u32::MAX {
                *slot = i as u32;
            } else {
                let (a, b) = (find(&mut parent, i), find(&mut parent, *slot as usize));
                parent[a] = b;
            }
        }
    }
    let mut order: Vec<(usize, usize)> = (0..edges.len())
        .map(|i| (find(&mut parent, i), i))
        .collect();
    order.sort_unstable();
    let mut g: Vec<usize> = Vec::new();
    for group in order.chunk_by(|a, b| a.0 == b.0) {
        g.clear();
        g.extend(group.iter().map(|x| x.1));
        if g.len() == 1 {
            choice.accepted.push(g[0]);
        } else if g.len() <= EXACT_EDGES && exact(edges, &g, margin, &mut choice) {
            stats.path_groups_exact += 1;
        } else {
            stats.path_groups_greedy += 1;
            greedy(edges, &graph, &g, margin, &mut choice);
        }
    }
    clear_best(edges, &graph, margin, &mut choice);
    eliminate(edges, near, &mut choice);
    stats.path_eliminated = choice.eliminated.len() as u64;
    choice.accepted.sort_unstable();
    choice.ambiguous.sort_unstable();
    choice.undecidable.sort_unstable();
    choice
}

/// Legs per side of a group [`eliminate`] solves at most.
const ELIMINATION_LEGS: usize = 8;

/// Joins ambiguous legs by elimination. Two clients sending the same bytes at the same
/// moment through one forking forwarder give legs that payload and timing scores cannot
/// tell apart, and attribution may miss the forwarder's short-lived children; but a
/// forwarder hands every upstream leg to exactly one downstream leg, and most ways to pair
/// them break causality somewhere (a byte forwarded before it was read, a close before
/// anything ended it: [`close_unexplained`]).
///
/// A group is a connected set of ambiguous edges whose upstream legs and downstream legs
/// are distinct and equal in number, at most [`ELIMINATION_LEGS`] each. A pairing of two
/// of its legs is *possible* when it is a candidate edge whose closes are explained
/// ([`close_unexplained`]), or a near miss (acausal by at most the doubt, [`NearMiss`]);
/// only pairings broken by more than the doubt are ruled out, so timestamp noise that made a
/// true hop no candidate keeps its alternative alive. When exactly one way to pair every leg
/// of the group uses possible pairings only, and all of them are candidate edges, its edges
/// are taken ([`Evidence::Elimination`]). When two or more ways do, the group's hops stay
/// ambiguous and are marked *undecidable*, with the number of ways
/// ([`Choice::undecidable`]): what the packets kept cannot tell them apart, a better score
/// or margin would only be a guess. Legs that a taken edge joined already
/// are out of the game (their other candidates are no rivals); groups whose legs have
/// possible partners outside the group are left as they are (nothing is claimed of them).
fn eliminate(edges: &[PathEdge], near: &[NearMiss], choice: &mut Choice) {
    use std::collections::{HashMap, HashSet};
    if choice.ambiguous.is_empty() {
        return;
    }
    // Components of the ambiguous edges, over their legs.
    let mut comp: HashMap<u32, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut by_leg: HashMap<u32, Vec<usize>> = HashMap::new();
    for &i in &choice.ambiguous {
        by_leg.entry(edges[i].up).or_default().push(i);
        by_leg.entry(edges[i].down).or_default().push(i);
    }
    for &i in &choice.ambiguous {
        if comp.contains_key(&edges[i].up) {
            continue;
        }
        let g = groups.len();
        let mut members = Vec::new();
        let mut stack = vec![edges[i].up];
        comp.insert(edges[i].up, g);
        while let Some(l) = stack.pop() {
            for &j in &by_leg[&l] {
                if !members.contains(&j) {
                    members.push(j);
                }
                for m in [edges[j].up, edges[j].down] {
                    if let std::collections::hash_map::Entry::Vacant(v) = comp.entry(m) {
                        v.insert(g);
                        stack.push(m);
                    }
                }
            }
        }
        groups.push(members);
    }
    let taken_up: HashSet<u32> = choice.accepted.iter().map(|&i| edges[i].up).collect();
    let taken_down: HashSet<u32> = choice.accepted.iter().map(|&i| edges[i].down).collect();
    let mut solved: Vec<usize> = Vec::new();
    'group: for g in &groups {
        // Legs a taken edge has joined already are not to be had.
        let free = |i: &usize| !taken_up.contains(&edges[*i].up) && !taken_down.contains(&edges[*i].down);
        let mut ups: Vec<u32> = g.iter().filter(|i| free(i)).map(|&i| edges[i].up).collect();
        let mut downs: Vec<u32> = g.iter().filter(|i| free(i)).map(|&i| edges[i].down).collect();
        ups.sort_unstable();
        ups.dedup();
        downs.sort_unstable();
        downs.dedup();
        if ups.is_empty()
            || ups.len() != downs.len()
            || ups.len() > ELIMINATION_LEGS
            || ups.iter().any(|u| downs.binary_search(u).is_ok())
        {
            continue;
        }
        let (iu, id) = (
            |l: u32| ups.binary_search(&l).ok(),
            |l: u32| downs.binary_search(&l).ok(),
        );
        // Possible pairings, as [up][down] -> Some(edge) for a candidate, None for a near
        // miss; any possible partner outside the group that is still free leaves the group
        // alone.
        let n = ups.len();
        let mut possible: Vec<Vec<Option<Option<usize>>>> = vec![vec![None; n]; n];
        let open = |up: u32, down: u32| match (iu(up), id(down)) {
            (Some(_), None) => !taken_down.contains(&down),
            (None, Some(_)) => !taken_up.contains(&up),
            _ => false,
        };
        for (i, e) in edges.iter().enumerate() {
            if e.close_unexplained {
                continue;
            }
            if let (Some(a), Some(b)) = (iu(e.up), id(e.down)) {
                possible[a][b] = Some(Some(i));
            } else if open(e.up, e.down) {
                continue 'group;
            }
        }
        for m in near {
            if let (Some(a), Some(b)) = (iu(m.up), id(m.down)) {
                if possible[a][b].is_none() {
                    possible[a][b] = Some(None);
                }
            } else if open(m.up, m.down) {
                continue 'group;
            }
        }
        // Perfect matchings of ups to downs over possible pairings: the first, and how
        // many there are (up to FITTING_MAX).
        let mut first: Option<Vec<usize>> = None;
        let mut count = 0;
        let mut pick: Vec<usize> = Vec::with_capacity(n);
        fn search(
            possible: &[Vec<Option<Option<usize>>>],
            used: u32,
            pick: &mut Vec<usize>,
            first: &mut Option<Vec<usize>>,
            count: &mut u32,
        ) {
            let a = pick.len();
            if a == possible.len() {
                first.get_or_insert_with(|| pick.clone());
                *count += 1;
                return;
            }
            for b in 0..possible.len() {
                if used & (1 << b) == 0 && possible[a][b].is_some() && *count < FITTING_MAX {
                    pick.push(b);
                    search(possible, used | (1 << b), pick, first, count);
                    pick.pop();
                }
            }
        }
        search(&possible, 0, &mut pick, &mut first, &mut count);
        if count >= 2 {
            // Undecidable by what the packets kept: say so with each of its hops.
            choice.undecidable.extend(g.iter().filter(|i| free(i)).map(|&i| (i, count)));
            continue;
        }
        let Some(only) = first else { continue };
        let chosen: Option<Vec<usize>> = only
            .iter()
            .enumerate()
            .map(|(a, &b)| possible[a][b].flatten())
            .collect();
        let Some(chosen) = chosen else { continue };
        for &i in &chosen {
            choice.accepted.push(i);
            choice.eliminated.push((i, 2 * n as u32));
        }
        solved.extend(g.iter().copied());
    }
    choice.ambiguous.retain(|i| !solved.contains(i));
}

/// Legs reachable from a leg over candidate edges, at most this many steps away (chains of
/// forwarders are short), visiting at most [`CHAIN_LEGS`] legs.
const CHAIN_DEPTH: usize = 8;
const CHAIN_LEGS: usize = 256;

/// The candidate edges as a graph: each leg's edges out and in.
struct Graph<'e> {
    edges: &'e [PathEdge],
    /// Edge indices by upstream leg and by downstream leg, as compressed rows (legs are
    /// dense indices): leg `l`'s are `idx[at[l]..at[l + 1]]`.
    outs: Rows,
    ins: Rows,
}

/// Edge indices grouped by one end's leg (a compressed sparse row).
struct Rows {
    at: Vec<u32>,
    idx: Vec<usize>,
}

impl Rows {
    /// Counting sort of the edges by `leg(edge)`; `legs` bounds every leg index.
    fn new(edges: &[PathEdge], legs: usize, leg: impl Fn(&PathEdge) -> u32) -> Rows {
        let mut at = vec![0u32; legs + 1];
        for e in edges {
            at[leg(e) as usize + 1] += 1;
        }
        for l in 0..legs {
            at[l + 1] += at[l];
        }
        let mut fill = at.clone();
        let mut idx = vec![0usize; edges.len()];
        for (i, e) in edges.iter().enumerate() {
            let f = &mut fill[leg(e) as usize];
            idx[*f as usize] = i;
            *f += 1;
        }
        Rows { at, idx }
    }

    fn of(&self, l: u32) -> &[usize] {
        let l = l as usize;
        match (self.at.get(l), self.at.get(l + 1)) {
            (Some(&a), Some(&b)) => &self.idx[a as usize..b as usize],
            _ => &[],
        }
    }
}

impl<'e> Graph<'e> {
    fn new(edges: &'e [PathEdge]) -> Graph<'e> {
        let legs = edges.iter().map(|e| e.up.max(e.down) as usize + 1).max().unwrap_or(0);
        Graph {
            edges,
            outs: Rows::new(edges, legs, |e| e.up),
            ins: Rows::new(edges, legs, |e| e.down),
        }
    }

    /// One more than the highest leg index of any edge.
    fn legs(&self) -> usize {
        self.outs.at.len() - 1
    }

    fn out_of(&self, l: u32) -> &[usize] {
        self.outs.of(l)
    }

    fn in_of(&self, l: u32) -> &[usize] {
        self.ins.of(l)
    }

    /// Whether `to` is downstream of `from` over candidate edges (`from` itself excluded).
    fn reaches(&self, from: u32, to: u32) -> bool {
        // On the stack: chains are short (a heap block per call cost more than the search).
        type Legs = SmallVec<[u32; 8]>;
        let mut frontier: Legs = smallvec::smallvec![from];
        let mut seen: Legs = smallvec::smallvec![from];
        for _ in 0..CHAIN_DEPTH {
            let mut next = Legs::new();
            for l in frontier {
                for &i in self.out_of(l) {
                    let d = self.edges[i].down;
                    if d == to {
                        return true;
                    }
                    if !seen.contains(&d) && seen.len() < CHAIN_LEGS {
                        seen.push(d);
                        next.push(d);
                    }
                }
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        false
    }

    /// Whether edge `i` skips over another candidate leg: `up -> m` and `m` reaches `down`.
    fn is_skip(&self, i: usize) -> bool {
        let e = &self.edges[i];
        self.out_of(e.up)
            .iter()
            .any(|&j| j != i && self.reaches(self.edges[j].down, e.down))
    }
}

/// The last word on every edge the matching took: `up -> down` is joined only when it is
/// the clear best at both ends, i.e. it beats by `margin` every other candidate next leg of
/// `up` and every other candidate previous leg of `down`. A matching alone can be forced
/// into a wrong pairing: when the true partner of a leg was no candidate (its timing looked
/// acausal within the slack, or its digest was cut short), the leg's only remaining
/// candidate is another leg's partner, and a matching that prefers more edges takes it.
/// Mutual best with a margin takes a hop only on evidence that separates it from the
/// runner-up; otherwise the hop and its close rivals are ambiguous.
///
/// Rivals that a chain explains are not rivals: with forwarders in a row `a -> b -> c`, the
/// skip edge `a -> c` carries the same bytes too; so a candidate next leg of `up` that lies
/// downstream of `down`, or a candidate previous leg of `down` upstream of `up`, does not
/// count. A taken edge that is itself such a skip (a chain through another candidate leg
/// joins its two ends) is not taken.
fn clear_best(edges: &[PathEdge], g: &Graph<'_>, margin: i32, choice: &mut Choice) {
    if choice.accepted.is_empty() {
        return;
    }
    let reaches = |a: u32, b: u32| g.reaches(a, b);
    let accepted = std::mem::take(&mut choice.accepted);
    for i in accepted {
        let e = &edges[i];
        let mut close: Vec<usize> = Vec::new();
        let mut skip = false;
        for &j in g.out_of(e.up) {
            let r = &edges[j];
            if j == i || reaches(e.down, r.down) {
                continue;
            }
            if reaches(r.down, e.down) {
                skip = true;
            } else if e.score - r.score < margin {
                close.push(j);
            }
        }
        for &j in g.in_of(e.down) {
            let r = &edges[j];
            if j == i || reaches(r.up, e.up) {
                continue;
            }
            if reaches(e.up, r.up) {
                skip = true;
            } else if e.score - r.score < margin {
                close.push(j);
            }
        }
        if skip || !close.is_empty() {
            for k in std::iter::once(i).chain(close) {
                if !choice.ambiguous.contains(&k) {
                    choice.ambiguous.push(k);
                }
            }
        } else {
            choice.accepted.push(i);
        }
    }
    // An edge noted as a close rival may have been taken elsewhere only if it shares no end
    // with the edge that named it, which it does: accepted and ambiguous stay disjoint.
    choice.ambiguous.retain(|k| !choice.accepted.contains(k));
}

fn exact(edges: &[PathEdge], g: &[usize], margin: i32, choice: &mut Choice) -> bool {
    // Every matching, as (weight, edge mask), by depth-first search with the used ends in
    // bitmasks over the group's own legs (at most 2 * EXACT_EDGES of them). Groups are
    // mostly a path's two or three edges: the lists stay on the stack then.
    let mut legs: SmallVec<[u32; 8]> = SmallVec::new();
    for &i in g {
        for l in [edges[i].up, edges[i].down] {
            if !legs.contains(&l) {
                legs.push(l);
            }
        }
    }
    let local = |l: u32| legs.iter().position(|&x| x == l).unwrap_or(0) as u32;
    let ends: SmallVec<[(u64, u64, i64); 4]> = g
        .iter()
        .map(|&i| {
            (
                1u64 << local(edges[i].up),
                1u64 << local(edges[i].down),
                i64::from(edges[i].score) + BONUS,
            )
        })
        .collect();
    let mut found: SmallVec<[(i64, u32); 8]> = SmallVec::new();
    // Iterative DFS: (next edge, used ups, used downs, weight, mask).
    let mut stack: SmallVec<[(usize, u64, u64, i64, u32); 8]> = smallvec::smallvec![(0, 0, 0, 0, 0)];
    while let Some((k, ups, downs, w, mask)) = stack.pop() {
        if k == ends.len() {
            found.push((w, mask));
            if found.len() > EXACT_MATCHINGS {
                return false;
            }
            continue;
        }
        stack.push((k + 1, ups, downs, w, mask));
        let (u, d, ew) = ends[k];
        if ups & u == 0 && downs & d == 0 {
            stack.push((k + 1, ups | u, downs | d, w + ew, mask | (1 << k)));
        }
    }
    let Some(best) = found.iter().map(|f| f.0).max() else {
        return true;
    };
    let near = found.iter().filter(|f| f.0 >= best - i64::from(margin));
    let (all, any) = near.fold((u32::MAX, 0u32), |(a, o), f| (a & f.1, o | f.1));
    for (k, &i) in g.iter().enumerate() {
        if all & (1 << k) != 0 {
            choice.accepted.push(i);
        } else if any & (1 << k) != 0 {
            choice.ambiguous.push(i);
        }
    }
    true
}

fn greedy(edges: &[PathEdge], graph: &Graph<'_>, g: &[usize], margin: i32, choice: &mut Choice) {
    // Skip edges (a chain of candidates joins their ends) are neither taken nor rivals here.
    let mut order: Vec<usize> = g.iter().copied().filter(|&i| !graph.is_skip(i)).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(edges[i].score), i));
    let mut up_used = std::collections::HashSet::new();
    let mut down_used = std::collections::HashSet::new();
    let mut taken = vec![false; edges.len()];
    loop {
        let mut progress = false;
        for &i in &order {
            let e = &edges[i];
            if taken[i] || up_used.contains(&e.up) || down_used.contains(&e.down) {
                continue;
            }
            let rival = order
                .iter()
                .filter(|&&j| j != i && !taken[j])
                .map(|&j| &edges[j])
                .filter(|r| {
                    (r.up == e.up && !down_used.contains(&r.down))
                        || (r.down == e.down && !up_used.contains(&r.up))
                });
            if rival
                .map(|r| r.score)
                .max()
                .is_none_or(|s| e.score - s >= margin)
            {
                taken[i] = true;
                up_used.insert(e.up);
                down_used.insert(e.down);
                choice.accepted.push(i);
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
    for &i in &order {
        let e = &edges[i];
        if !taken[i] && !up_used.contains(&e.up) && !down_used.contains(&e.down) {
            choice.ambiguous.push(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(up: u32, down: u32, score: i32) -> PathEdge {
        PathEdge {
            up,
            down,
            score,
            close_unexplained: false,
            evidence: Vec::new(),
        }
    }

    fn pick(edges: &[PathEdge]) -> Choice {
        choose(edges, &[], &JoinConfig::default(), &mut JoinStats::default())
    }

    #[test]
    fn chain_beats_its_skip_edge() {
        let edges = vec![e(0, 1, 80), e(1, 2, 80), e(0, 2, 90)];
        let c = pick(&edges);
        assert_eq!(c.accepted, vec![0, 1]);
        assert!(c.ambiguous.is_empty());
    }

    #[test]
    fn symmetric_crossing_is_ambiguous() {
        // Two upstream legs 0, 1 and two downstream legs 2, 3, all alike.
        let edges = vec![e(0, 2, 80), e(0, 3, 80), e(1, 2, 80), e(1, 3, 78)];
        let c = pick(&edges);
        assert!(c.accepted.is_empty());
        assert_eq!(c.ambiguous, vec![0, 1, 2, 3]);
        // 0-2, 1-3 and 0-3, 1-2 both fit: undecidable, and said so with every hop.
        assert_eq!(c.undecidable, vec![(0, 2), (1, 2), (2, 2), (3, 2)]);
    }

    #[test]
    fn undecidable_counts_every_fitting_pairing() {
        // Three upstream legs and three downstream legs, all alike: 3! ways.
        let mut edges = Vec::new();
        for up in 0..3 {
            for down in 3..6 {
                edges.push(e(up, down, 80));
            }
        }
        let c = pick(&edges);
        assert!(c.accepted.is_empty());
        assert_eq!(c.ambiguous.len(), 9);
        assert!(c.undecidable.iter().all(|&(_, n)| n == 6), "{c:?}");
        assert_eq!(c.undecidable.len(), 9);
        // One crossing ruled out by an unexplained close leaves 4 ways.
        edges[0].close_unexplained = true;
        let c = pick(&edges);
        assert!(c.undecidable.iter().all(|&(_, n)| n == 4), "{c:?}");
    }

    #[test]
    fn a_forced_pairing_is_not_taken_when_the_alternative_is_a_near_miss() {
        // Leg 2 can only come from 0; leg 3 from 0 or 1: the only full matching of the
        // candidates is 0-2, 1-3, but 0's two candidates score alike, and 1 -> 2 is no
        // candidate only through timestamp noise (a near miss): 0-3, 1-2 is possible too,
        // so nothing separates them and nothing is joined.
        let edges = vec![e(0, 2, 80), e(0, 3, 80), e(1, 3, 80)];
        let near = [NearMiss { up: 1, down: 2 }];
        let c = choose(&edges, &near, &JoinConfig::default(), &mut JoinStats::default());
        assert!(c.accepted.is_empty(), "{c:?}");
        assert_eq!(c.ambiguous, vec![0, 1, 2]);
        assert_eq!(c.undecidable, vec![(0, 2), (1, 2), (2, 2)]);
    }

    #[test]
    fn a_forced_pairing_is_taken_by_elimination() {
        // The same, with 1 -> 2 impossible beyond the doubt: 1 can only go to 3, so 0 to 2.
        let edges = vec![e(0, 2, 80), e(0, 3, 80), e(1, 3, 80)];
        let mut stats = JoinStats::default();
        let c = choose(&edges, &[], &JoinConfig::default(), &mut stats);
        assert_eq!(c.accepted, vec![0, 2]);
        assert!(c.ambiguous.is_empty(), "{c:?}");
        assert_eq!(c.eliminated.len(), 2);
        assert_eq!(stats.path_eliminated, 2);
    }

    #[test]
    fn a_close_before_any_end_rules_a_crossing_out() {
        // Two upstream legs 0, 1 and two downstream legs 2, 3, all alike; with 0 -> 3 the
        // forwarder would have closed a leg before anything ended.
        let mut edges = vec![e(0, 2, 80), e(0, 3, 80), e(1, 2, 80), e(1, 3, 80)];
        edges[1].close_unexplained = true;
        let c = pick(&edges);
        assert_eq!(c.accepted, vec![0, 3]);
        assert!(c.ambiguous.is_empty(), "{c:?}");
        // A forwarder that closes on its own breaks every pairing alike: nothing is ruled
        // in by ruling everything out.
        for x in &mut edges {
            x.close_unexplained = true;
        }
        let c = pick(&edges);
        assert!(c.accepted.is_empty(), "{c:?}");
    }

    #[test]
    fn a_rival_joined_elsewhere_is_no_rival() {
        // Leg 1 goes to 3 with the forwarder's process as evidence (clearly); its weaker
        // candidate 1 -> 2 made 0 -> 2 ambiguous, but 1 is taken: 2 can only come from 0.
        let edges = vec![e(1, 3, 135), e(1, 2, 85), e(0, 2, 85)];
        let c = pick(&edges);
        assert_eq!(c.accepted, vec![0, 2], "{c:?}");
        assert!(c.ambiguous.is_empty(), "{c:?}");
        // While 0 has another free possible partner (a near miss), it stays ambiguous.
        let near = [NearMiss { up: 0, down: 4 }];
        let c = choose(&edges, &near, &JoinConfig::default(), &mut JoinStats::default());
        assert_eq!(c.accepted, vec![0], "{c:?}");
    }

    #[test]
    fn elimination_leaves_open_groups_alone() {
        // Leg 1's possible partner 4 lies outside the group (a near miss): no elimination.
        let edges = vec![e(0, 2, 80), e(0, 3, 80), e(1, 3, 80)];
        let near = [NearMiss { up: 1, down: 4 }];
        let c = choose(&edges, &near, &JoinConfig::default(), &mut JoinStats::default());
        assert!(c.accepted.is_empty(), "{c:?}");
        // Nor any claim about them: the packets may yet decide them.
        assert!(c.undecidable.is_empty(), "{c:?}");
        // Unequal sides (three upstream legs, two downstream): no elimination.
        let edges = vec![e(0, 3, 80), e(0, 4, 80), e(1, 4, 80), e(2, 4, 80)];
        let c = pick(&edges);
        assert!(c.accepted.is_empty(), "{c:?}");
        assert!(c.undecidable.is_empty(), "{c:?}");
    }

    #[test]
    fn a_forced_pairing_with_clear_scores_resolves() {
        let edges = vec![e(0, 2, 100), e(0, 3, 80), e(1, 3, 100)];
        let c = pick(&edges);
        assert_eq!(c.accepted, vec![0, 2]);
        assert!(c.ambiguous.is_empty());
    }

    #[test]
    fn matching_against_one_ends_runner_up_is_ambiguous() {
        // The heavier matching is 0-3 + 1-2 (195 vs 175, beyond the margin), but leg 3's two
        // candidate upstreams score 100 and 90: that end does not separate them.
        let edges = vec![e(0, 2, 85), e(0, 3, 100), e(1, 2, 95), e(1, 3, 90)];
        let c = pick(&edges);
        assert!(c.accepted.is_empty(), "{c:?}");
    }

    #[test]
    fn a_chain_of_three_beats_its_skip_edges() {
        let edges = vec![
            e(0, 1, 80),
            e(1, 2, 80),
            e(2, 3, 80),
            e(0, 2, 95),
            e(1, 3, 95),
            e(0, 3, 99),
        ];
        let c = pick(&edges);
        assert_eq!(c.accepted, vec![0, 1, 2]);
        assert!(c.ambiguous.is_empty(), "{c:?}");
    }

    #[test]
    fn a_skip_edge_is_not_taken_greedily() {
        // A group too large to enumerate: chains 10k -> 10k+1 -> 10k+2 with skip edges that
        // outscore the chain's own edges by the margin.
        let mut edges = Vec::new();
        for k in 0..8u32 {
            let b = 10 * k;
            edges.push(e(b, b + 1, 80));
            edges.push(e(b + 1, b + 2, 80));
            edges.push(e(b, b + 2, 120));
        }
        // One shared leg ties the chains into one conflict group.
        for k in 0..8u32 {
            edges.push(e(10 * k + 2, 200, 41));
        }
        let c = pick(&edges);
        for &i in &c.accepted {
            assert_ne!(edges[i].score, 120, "skip edge taken: {:?}", edges[i]);
        }
    }

    #[test]
    fn clear_margin_wins() {
        let edges = vec![e(0, 2, 130), e(0, 3, 80)];
        let c = pick(&edges);
        assert_eq!(c.accepted, vec![0]);
        assert!(c.ambiguous.is_empty());
    }

    #[test]
    fn greedy_groups() {
        let mut edges = Vec::new();
        for u in 0..6u32 {
            for d in 10..16u32 {
                edges.push(e(u, d, if d - 10 == u { 120 } else { 60 }));
            }
        }
        let c = pick(&edges);
        assert_eq!(c.accepted.len(), 6);
        for &i in &c.accepted {
            assert_eq!(edges[i].down - 10, edges[i].up);
        }
    }
}
