//! The joined view the TUI shows: the flow table's observations joined by [`crate::join`]
//! into legs and paths, turned into the TUI's [`PathRow`]s, with what the lazy
//! [`PathDetail`] needs kept per path.
//!
//! ## Contract
//!
//! * Input ([`JoinInput`]): a copy, taken under the model's lock, of every TCP/UDP
//!   observation's joiner features (live flows' cloned, ended flows' shared), each with the
//!   frame-store observation it is, its state, history and analysis (the flow table's); the
//!   observations that have no features (ICMP, other protocols, or left out by the features
//!   cap) as *loose* entries, grouped by tuple; the points; the conntrack and process
//!   evidence.
//! * [`Joined::build`] runs without any lock (on the joiner thread): the join itself, then one
//!   row per path. Loose entries become paths of one leg whose observations are the entry's
//!   points (join kind `same-tuple`, as before the joiner). Paths are numbered by first packet
//!   from 1, so an offline file always shows the same ids once loaded.
//! * Detail is built on request ([`Joined::detail`]) from the kept join [`Path`]: hop changes
//!   and latencies, processes, and the evidence with scores ("why joined").

use super::model::*;
use crate::capture::Timestamp;
use crate::join::{JoinConfig, Joiner, ObservationFeatures, ObservationId, Path, Source};
use crate::netns::Netns;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// One featured observation of the flow table, as copied for a join.
pub struct FeaturedObs {
    pub id: u64,
    pub features: Arc<ObservationFeatures>,
    /// The frame store's observation.
    pub at: Option<u32>,
    /// The flow table's `conn_state`, history and analysis text (`--flows`' values).
    pub state: Arc<str>,
    pub history: Arc<str>,
    pub analysis: Arc<str>,
}

/// Observations of one tuple (a group of the frame store) with no features: one path of
/// one leg.
pub struct LooseEntry {
    pub entry: u32,
    pub observations: Vec<u32>,
    pub row: PathRow,
}

/// Everything one join needs (copied under the lock, joined outside it).
#[derive(Default)]
pub struct JoinInput {
    /// `(index, label, namespace)` of every point.
    pub points: Vec<(u32, Arc<str>, Option<Netns>)>,
    pub observations: Vec<FeaturedObs>,
    pub loose: Vec<LooseEntry>,
    /// Conntrack entries, each with its scope (offline `--conntrack NETNS=FILE`).
    pub conntrack: Arc<Vec<(crate::conntrack::CtEntry, Option<Arc<str>>)>>,
    /// Live conntrack entries (labelled by their namespace) and socket owners.
    pub live_conntrack: Arc<Vec<crate::conntrack::CtEntry>>,
    pub owners: Arc<Vec<crate::report::paths::SocketOwner>>,
}

/// What one path row stands for.
pub enum Shown {
    /// A joined path (boxed: paths are large and most tables are mostly loose entries).
    Joined(Box<Path>),
    /// Observations of one tuple with no features (frame-store observation indices).
    Loose { entry: u32, observations: Vec<u32> },
}

/// The result of one join: rows (ordered by id) and what each stands for.
#[derive(Default)]
pub struct Joined {
    pub rows: Vec<PathRow>,
    pub shown: Vec<Shown>,
    /// Flow id -> observation of the frame store, for the joined observations.
    pub at: HashMap<u64, u32>,
    /// Flow id -> state, history and analysis (the flow table's, at join time).
    pub state: HashMap<u64, (Arc<str>, Arc<str>, Arc<str>)>,
    pub stats: crate::join::JoinStats,
}

fn ts(ns: i64) -> Timestamp {
    Timestamp { sec: ns.div_euclid(1_000_000_000), nsec: ns.rem_euclid(1_000_000_000) as u64 }
}

fn ep(a: SocketAddr) -> Endpoint {
    Endpoint { ip: a.ip(), port: a.port() }
}

fn secs_to_ts(s: f64) -> Timestamp {
    if !s.is_finite() {
        return Timestamp { sec: 0, nsec: 0 };
    }
    let sec = s.floor();
    let nsec = ((s - sec) * 1e9).round().clamp(0.0, 999_999_999.0) as u64;
    Timestamp { sec: sec as i64, nsec }
}

fn proto_of(name: &str) -> Proto {
    match name {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        _ => Proto::Icmp,
    }
}

impl Joined {
    /// Joins `input` (see the module docs).
    pub fn build(input: JoinInput) -> Joined {
        let mut j = Joiner::new(JoinConfig::default());
        let mut label_index: HashMap<Arc<str>, u32> = HashMap::new();
        for (i, label, ns) in &input.points {
            j.set_point(*i, &**label, ns.clone());
            label_index.insert(label.clone(), *i);
        }
        for o in &input.observations {
            j.add_observation(ObservationId(o.id), &o.features);
        }
        for (e, scope) in input.conntrack.iter() {
            match scope {
                Some(s) => j.add_conntrack_in(e, s),
                None => j.add_conntrack(e),
            }
        }
        for e in input.live_conntrack.iter() {
            j.add_conntrack(e);
        }
        for o in input.owners.iter() {
            j.add_socket_owner(Some(o.netns.clone()), o.proto, o.local, o.remote, o.owner.clone());
        }
        let model = j.join();
        let mut at = HashMap::with_capacity(input.observations.len());
        let mut state = HashMap::with_capacity(input.observations.len());
        for o in input.observations {
            if let Some(a) = o.at {
                at.insert(o.id, a);
            }
            state.insert(o.id, (o.state, o.history, o.analysis));
        }
        // (first packet, kind order, index): joined paths then loose entries.
        let mut items: Vec<(Timestamp, PathRow, Shown)> = Vec::with_capacity(model.paths.len() + input.loose.len());
        for p in model.paths {
            let row = row_of(&p, &label_index, &state);
            items.push((row.first, row, Shown::Joined(Box::new(p))));
        }
        for l in input.loose {
            items.push((l.row.first, l.row, Shown::Loose { entry: l.entry, observations: l.observations }));
        }
        items.sort_by_key(|i| i.0);
        let mut rows = Vec::with_capacity(items.len());
        let mut shown = Vec::with_capacity(items.len());
        for (k, (_, mut row, s)) in items.into_iter().enumerate() {
            row.id = k as u64 + 1;
            rows.push(row);
            shown.push(s);
        }
        Joined { rows, shown, at, state, stats: model.stats }
    }

    /// Index of path `id` in `rows`/`shown`.
    pub fn index(&self, id: PathId) -> Option<usize> {
        let i = usize::try_from(id.checked_sub(1)?).ok()?;
        (i < self.rows.len()).then_some(i)
    }

    /// The hop diagram of a joined path; `stats(entry, obs)` gives a frame-store observation's
    /// counters for observations that are not in the join (loose ones are built by the caller).
    pub fn detail(&self, id: PathId, p: &Path) -> PathDetail {
        let mut legs = Vec::with_capacity(p.legs.len());
        for (li, l) in p.legs.iter().enumerate() {
            let mut observations = Vec::with_capacity(l.observations.len());
            for (oi, o) in l.observations.iter().enumerate() {
                let (state, history, analysis) = match o.ids.iter().find_map(|id| self.state.get(id)) {
                    Some((s, h, a)) => (s.clone(), h.clone(), (!a.is_empty()).then(|| a.clone())),
                    None if o.source == Source::Conntrack => (Arc::from("conntrack"), Arc::from(""), None),
                    None => (Arc::from(""), Arc::from(""), None),
                };
                let hop = l.hops.iter().find(|h| h.to == oi);
                let mut changes: Vec<String> = Vec::new();
                let mut latency = None;
                if let Some(h) = hop {
                    for c in &h.changes {
                        changes.push(format!("{} {} -> {}", c.field, c.from, c.to));
                    }
                    let mut parts = Vec::new();
                    if let Some(us) = h.latency.c2s_us {
                        parts.push(format!("c2s +{}", crate::join::evidence::fmt_us(us)));
                    }
                    if let Some(us) = h.latency.s2c_us {
                        parts.push(format!("s2c +{}", crate::join::evidence::fmt_us(us)));
                    }
                    if !parts.is_empty() {
                        latency = Some(parts.join(" "));
                    }
                }
                let mut note = None;
                if let Some(ct) = &o.conntrack {
                    note = Some(match ct.id {
                        Some(id) => format!("conntrack id={id}: {} / {}", ct.orig, ct.reply),
                        None => format!("conntrack: {} / {}", ct.orig, ct.reply),
                    });
                }
                if let Some(r) = &o.reply {
                    note = Some(format!("replies seen as {} -> {}", r.src, r.dst));
                }
                observations.push(ObservationDetail {
                    point: o.point.clone(),
                    client: ep(o.src),
                    server: ep(o.dst),
                    packets: o.packets,
                    bytes: o.bytes,
                    first: secs_to_ts(o.first),
                    last: secs_to_ts(o.last),
                    state,
                    history,
                    analysis,
                    changes: (oi > 0).then_some(changes),
                    latency,
                    note,
                });
            }
            let process = l.process.as_ref().map(|pr| {
                let show = |o: &Option<crate::join::Owner>| o.as_ref().map_or("?".to_string(), |o| o.to_string());
                Arc::from(format!("{} -> {}", show(&pr.client), show(&pr.server)))
            });
            let join = (l.join.kind != crate::join::JoinKind::None).then(|| JoinInfo {
                kind: format!("{} score {}", l.join.kind.name(), l.join.score),
                evidence: l.join.summary(),
            });
            let link = p.via.iter().find(|v| v.between[1] == li).map(|v| {
                let who = v.process.as_ref().map_or("forwarder ?".to_string(), |o| format!("forwarder {o}"));
                let mut evidence = v.summary();
                for e in &v.evidence {
                    if let crate::join::evidence::Evidence::Timing { connect_us, forward_us, reply_us } = &e.evidence {
                        for (k, v) in [("connect", connect_us), ("forward", forward_us), ("reply", reply_us)] {
                            if let Some(us) = v {
                                evidence.push(format!("{k} {}", crate::join::evidence::fmt_us(f64::from(*us))));
                            }
                        }
                    }
                }
                JoinInfo { kind: format!("{who} score {}", v.score), evidence }
            });
            let link = link.or_else(|| {
                (li > 0).then(|| JoinInfo { kind: "forwarder".into(), evidence: Vec::new() })
            });
            legs.push(LegDetail { observations, process, join, link });
        }
        let mut notes = Vec::new();
        for a in &p.ambiguous {
            let c: Vec<String> =
                a.candidates.iter().map(|c| format!("path {} leg {} score {}", c.path, c.leg + 1, c.score)).collect();
            let why = a.undecidable_note().map(|w| format!(" ({w})")).unwrap_or_default();
            notes.push(format!("leg {} {} undecided: {}{why}", a.leg + 1, a.side, c.join(", ")));
        }
        PathDetail { id, proto: proto_of(p.proto), legs, notes }
    }
}

/// The table row of a joined path.
fn row_of(
    p: &Path,
    label_index: &HashMap<Arc<str>, u32>,
    state: &HashMap<u64, (Arc<str>, Arc<str>, Arc<str>)>,
) -> PathRow {
    let all = || p.legs.iter().flat_map(|l| l.observations.iter());
    let first_captured = all().find(|o| o.source == Source::Capture);
    let hops: Vec<Hop> = all()
        .map(|o| Hop {
            point: label_index.get(&o.point).copied().unwrap_or(u32::MAX),
            client: ep(o.src),
            server: ep(o.dst),
        })
        .collect();
    let (client, server) = (
        p.client.or_else(|| all().next().map(|o| o.src)),
        p.server.or_else(|| all().last().map(|o| o.dst)),
    );
    let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
    let (st, hi) = first_captured
        .and_then(|o| o.ids.iter().find_map(|id| state.get(id)))
        .map(|(s, h, _)| (s.clone(), h.clone()))
        .unwrap_or_else(|| (Arc::from(""), Arc::from("")));
    let process = p
        .legs
        .first()
        .and_then(|l| l.process.as_ref())
        .and_then(|pr| pr.client.as_ref())
        .map(|o| Arc::from(o.to_string()))
        .or_else(|| p.via.iter().find_map(|v| v.process.as_ref()).map(|o| Arc::from(format!("via {o}"))));
    PathRow {
        id: p.id,
        proto: proto_of(p.proto),
        client: ep(client.unwrap_or(unspecified)),
        server: ep(server.unwrap_or(unspecified)),
        legs: p.legs.len() as u32,
        hops: Arc::from(hops),
        packets: first_captured.map_or([0; 2], |o| o.packets),
        bytes: first_captured.map_or([0; 2], |o| o.bytes),
        state: st,
        history: hi,
        first: ts(p.first_ns),
        last: ts(p.last_ns),
        process,
    }
}
