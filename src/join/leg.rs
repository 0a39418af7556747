//! Leg join: which observations are one transport connection (see the module docs of
//! [`crate::join`] for the rules). Candidates come from [`Grouper`] keys, every candidate
//! pair is scored by [`compare`], and accepted links are merged greedily, strongest first,
//! under the constraint that a leg never holds two observations of the same tuple at the
//! same point (those are two connections reusing a tuple).

use super::evidence::{Dir, Evidence, LinkEvidence};
use super::features::{DirFeatures, Nanos, ObservationFeatures, Proto};
use super::index::{Grouper, key};
use super::{JoinConfig, JoinStats, ObservationId};
use crate::conntrack::CtEntry;
use crate::seq::SeqNum;
use std::net::SocketAddr;

/// One observation as the joiner sees it: re-oriented so `C2s` is the SYN sender's
/// direction, and possibly synthetic (made from a conntrack entry).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ob<'b> {
    pub f: &'b ObservationFeatures,
    /// `C2s` is `f.dirs[1]`.
    pub flip: bool,
    /// The flow table's id; `None` for synthetic observations.
    pub id: Option<ObservationId>,
    /// Conntrack entry this observation was made from.
    pub synthetic: Option<usize>,
    /// Index into the joiner's point table.
    pub point: u32,
    /// `(client, server)` of a synthetic observation (its `f` is the observation it was
    /// made for: the same packets, before or after the rewrite).
    pub tuple: Option<&'b (SocketAddr, SocketAddr)>,
    /// [`tuple_key`] of the tuple.
    pub key: u64,
}

impl<'b> Ob<'b> {
    pub fn new(f: &'b ObservationFeatures, id: Option<ObservationId>, point: u32) -> Ob<'b> {
        Ob {
            f,
            flip: flipped(f),
            id,
            synthetic: None,
            point,
            tuple: None,
            key: tuple_key(f.proto, f.client, f.server),
        }
    }
    /// A synthetic observation of `tuple` (from conntrack entry `entry`), standing for the
    /// same packets as `of`.
    pub fn synthetic(
        of: &Ob<'b>,
        tuple: &'b (SocketAddr, SocketAddr),
        entry: usize,
        point: u32,
    ) -> Ob<'b> {
        Ob {
            f: of.f,
            flip: of.flip,
            id: None,
            synthetic: Some(entry),
            point,
            tuple: Some(tuple),
            key: tuple_key(of.f.proto, tuple.0, tuple.1),
        }
    }
    pub fn d(&self, dir: Dir) -> &'b DirFeatures {
        &self.f.dirs[dir.index() ^ usize::from(self.flip)]
    }
    pub fn client(&self) -> SocketAddr {
        match self.tuple {
            Some(t) => t.0,
            None if self.flip => self.f.server,
            None => self.f.client,
        }
    }
    pub fn server(&self) -> SocketAddr {
        match self.tuple {
            Some(t) => t.1,
            None if self.flip => self.f.client,
            None => self.f.server,
        }
    }
    /// Owner of the client's / server's socket as the flow table attributed it.
    pub fn owner(&self, dir_side_client: bool) -> Option<&'b super::Owner> {
        let i = usize::from(!dir_side_client) ^ usize::from(self.flip);
        self.f.owner(i)
    }
    /// A SYN was seen (either way): client and server are known, not guessed.
    pub fn oriented(&self) -> bool {
        self.f.dirs.iter().any(|d| d.syn.is_some())
    }
    /// Which directions carry packets.
    pub fn covers(&self, dir: Dir) -> bool {
        self.d(dir).packets > 0
    }
    /// Orientation-free tuple key.
    pub fn tuple_key(&self) -> u64 {
        self.key
    }
    /// When the connection started here: the client's SYN, else the first packet.
    pub fn start(&self) -> Nanos {
        self.d(Dir::C2s).syn.map_or(self.f.first, |s| s.at)
    }
}

/// Whether the flow table's client is really the server: its "client" sent the SYN-ACK,
/// or its "server" sent the SYN.
fn flipped(f: &ObservationFeatures) -> bool {
    let pure_syn = |d: &DirFeatures| d.syn.is_some_and(|s| s.ack.is_none());
    let syn_ack = |d: &DirFeatures| d.syn.is_some_and(|s| s.ack.is_some());
    if pure_syn(&f.dirs[0]) {
        false
    } else if pure_syn(&f.dirs[1]) {
        true
    } else {
        syn_ack(&f.dirs[0])
    }
}

pub(crate) fn canon(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// Orientation-free hash of a 5-tuple (equal tuples give equal keys; callers compare the
/// tuples themselves on a key match).
pub(crate) fn tuple_key(proto: Proto, a: SocketAddr, b: SocketAddr) -> u64 {
    fn end(a: SocketAddr) -> u64 {
        let ip = match a.ip().to_canonical() {
            std::net::IpAddr::V4(v) => u64::from(u32::from(v)),
            std::net::IpAddr::V6(v) => {
                let x = u128::from(v);
                (x as u64) ^ ((x >> 64) as u64).rotate_left(17)
            }
        };
        let h = (ip ^ (u64::from(a.port()) << 48) ^ u64::from(a.port()))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^ (h >> 29)
    }
    let (x, y) = (end(a), end(b));
    let (lo, hi) = if x <= y { (x, y) } else { (y, x) };
    super::index::key(
        proto as u8,
        lo.rotate_left(21) ^ hi.wrapping_mul(0xC2B2_AE3D_27D4_EB4F),
    )
}

/// Whether two endpoint pairs are the same tuple (either orientation).
pub(crate) fn same_tuple(a: (SocketAddr, SocketAddr), b: (SocketAddr, SocketAddr)) -> bool {
    let (a0, a1, b0, b1) = (canon(a.0), canon(a.1), canon(b.0), canon(b.1));
    (a0 == b0 && a1 == b1) || (a0 == b1 && a1 == b0)
}

/// The outcome of comparing two observations.
#[derive(Clone, Debug, Default)]
pub(crate) struct PairScore {
    pub evidence: LinkEvidence,
    /// Sequence space agrees (ISN, ack of the ISN, shift, segments, overlap).
    pub seq_agrees: bool,
    pub ipid_agrees: bool,
    pub same_tuple: bool,
}

impl PairScore {
    fn add(&mut self, e: Evidence) {
        self.evidence.add(&e);
    }
    pub fn score(&self) -> i32 {
        self.evidence.score()
    }
    /// Enough for a leg link on its own (without conntrack).
    pub fn is_leg(&self, proto: Proto, threshold: i32) -> bool {
        let structural = match proto {
            Proto::Tcp => self.seq_agrees,
            Proto::Udp => self.ipid_agrees || self.same_tuple,
        };
        structural && self.score() >= threshold
    }
}

/// Compares two real observations as candidates for one leg. `None` when they cannot be one
/// leg: other protocol, too far apart in time, ISNs that differ without a confirmed shift,
/// or payloads that differ.
pub(crate) fn compare(a: &Ob<'_>, b: &Ob<'_>, cfg: &JoinConfig) -> Option<PairScore> {
    if a.f.proto != b.f.proto || !time_compatible(a, b, cfg.leg_window_ns) {
        return None;
    }
    let tcp = a.f.proto == Proto::Tcp;
    let mut ps = PairScore {
        evidence: if tcp {
            LinkEvidence::default()
        } else {
            LinkEvidence::udp()
        },
        ..PairScore::default()
    };
    let mut isn_diff: [Option<i32>; 2] = [None, None];
    for dir in Dir::BOTH {
        let (x, y) = (a.d(dir), b.d(dir));
        if tcp {
            match (x.syn, y.syn) {
                (Some(sx), Some(sy)) if sx.isn == sy.isn => {
                    ps.add(Evidence::Isn { dir, isn: sx.isn });
                    ps.seq_agrees = true;
                }
                (Some(sx), Some(sy)) => {
                    isn_diff[dir.index()] = Some(SeqNum(sy.isn).diff(SeqNum(sx.isn)))
                }
                _ => {}
            }
            if let Some(isn) = ack_names_isn(x, y, b.d(dir.other()))
                .or_else(|| ack_names_isn(y, x, a.d(dir.other())))
            {
                ps.add(Evidence::AckIsn { dir, isn });
                ps.seq_agrees = true;
            }
            let common = common_count(
                x.tsvals.as_slice().iter().map(|t| t.value),
                y.tsvals.as_slice().iter().map(|t| t.value),
                |_| true,
            );
            if common > 0 {
                ps.add(Evidence::Tsval {
                    dir,
                    matched: common,
                });
            } else if let (Some(p), Some(q)) =
                (x.syn.and_then(|s| s.tsval), y.syn.and_then(|s| s.tsval))
            {
                if p != q {
                    ps.add(Evidence::TsvalDiffers { dir });
                }
            } else if tsval_progresses(x, y) {
                ps.add(Evidence::TsvalProgression { dir });
            }
            if echoes(x, y, b.d(dir.other())) || echoes(y, x, a.d(dir.other())) {
                ps.add(Evidence::TsEcho { dir });
            }
            let segs = common_count(
                x.segments()
                    .as_slice()
                    .iter()
                    .map(|s| (s.seq, s.len, s.flags)),
                y.segments()
                    .as_slice()
                    .iter()
                    .map(|s| (s.seq, s.len, s.flags)),
                |_| true,
            );
            if segs > 0 {
                ps.add(Evidence::Segments { dir, matched: segs });
                ps.seq_agrees = true;
            } else if x.syn.is_none() && y.syn.is_none() && ranges_overlap(x, y) {
                ps.add(Evidence::SeqOverlap { dir });
                ps.seq_agrees = true;
            }
            match x.stream.compare(&y.stream) {
                super::digest::DigestCmp::Match(n) => ps.add(Evidence::Payload { dir, bytes: n }),
                super::digest::DigestCmp::Mismatch(_) => return None,
                super::digest::DigestCmp::Unknown => {}
            }
            if x.finished() && y.finished() && x.bytes == y.bytes && x.bytes > 0 {
                ps.add(Evidence::Size {
                    dir,
                    bytes: x.bytes,
                });
            }
        } else if let Some(m) = datagram_alignment(x, y) {
            ps.add(Evidence::Datagrams { dir, matched: m });
        }
        let ids = common_count(
            x.ip_ids.as_slice().iter().map(|i| i.value),
            y.ip_ids.as_slice().iter().map(|i| i.value),
            |&v| v != 0,
        );
        if ids >= 2 {
            ps.add(Evidence::IpId { dir, matched: ids });
            ps.ipid_agrees = true;
        }
    }
    for dir in Dir::BOTH {
        let Some(shift) = isn_diff[dir.index()] else {
            continue;
        };
        let other = dir.other();
        let payload = ps.evidence.has(&Evidence::Payload { dir, bytes: 0 });
        let anchored = ps.evidence.has(&Evidence::Isn { dir: other, isn: 0 })
            || ps.evidence.has(&Evidence::Tsval { dir, matched: 0 });
        let acks = match (a.d(other).first_ack, b.d(other).first_ack) {
            (Some(p), Some(q)) => SeqNum(q).diff(SeqNum(p)) == shift,
            _ => false,
        };
        if payload && anchored && acks {
            ps.add(Evidence::SeqShift { dir, shift });
            ps.seq_agrees = true;
        } else {
            return None;
        }
    }
    if same_tuple((a.client(), a.server()), (b.client(), b.server())) {
        ps.same_tuple = true;
        ps.add(Evidence::SameTuple);
    }
    Some(ps)
}

/// Observations of one leg are seen within `window` of each other: the client SYNs (or
/// the SYN-ACKs) when both saw one, else their time ranges overlap within `window`.
fn time_compatible(a: &Ob<'_>, b: &Ob<'_>, window: Nanos) -> bool {
    for dir in Dir::BOTH {
        if let (Some(p), Some(q)) = (a.d(dir).syn, b.d(dir).syn) {
            return p.at.abs_diff(q.at) <= window.unsigned_abs();
        }
    }
    a.f.first <= b.f.last.saturating_add(window) && b.f.first <= a.f.last.saturating_add(window)
}

/// `x` saw the SYN of a direction `y` did not see at all, and `y`'s observation's other
/// direction (`y_other`) acknowledges it: two halves of one connection.
fn ack_names_isn(x: &DirFeatures, y: &DirFeatures, y_other: &DirFeatures) -> Option<u32> {
    let s = x.syn?;
    if y.packets != 0 {
        return None;
    }
    let want = s.isn.wrapping_add(1);
    let acked = y_other.syn.and_then(|s| s.ack).or(y_other.first_ack);
    (acked == Some(want)).then_some(s.isn)
}

/// `x` is a direction `y` did not see, and `y`'s other direction echoes one of `x`'s TSvals.
fn echoes(x: &DirFeatures, y: &DirFeatures, y_other: &DirFeatures) -> bool {
    y.packets == 0
        && y_other
            .tsecr
            .is_some_and(|e| x.tsvals.as_slice().iter().any(|t| t.value == e))
}

/// Midstream: the first TSvals differ by about the elapsed time at 1 kHz (Linux), within
/// 2 ticks or 10 %.
fn tsval_progresses(x: &DirFeatures, y: &DirFeatures) -> bool {
    let (Some(p), Some(q)) = (x.tsvals.as_slice().first(), y.tsvals.as_slice().first()) else {
        return false;
    };
    if x.syn.is_some() && y.syn.is_some() {
        return false;
    }
    let (Some(tp), Some(tq)) = (x.time(p.at), y.time(q.at)) else {
        return false;
    };
    let dt_ms = (tq.saturating_sub(tp)) as f64 / 1e6;
    if dt_ms.abs() > 600_000.0 {
        return false;
    }
    let dv = SeqNum(q.value).diff(SeqNum(p.value)) as f64;
    (dv - dt_ms).abs() <= 2.0 + dt_ms.abs() / 10.0
}

fn ranges_overlap(x: &DirFeatures, y: &DirFeatures) -> bool {
    let (Some(xl), Some(xh), Some(yl), Some(yh)) = (x.seq_lo, x.seq_hi, y.seq_lo, y.seq_hi) else {
        return false;
    };
    SeqNum(xl).lt(SeqNum(yh)) && SeqNum(yl).lt(SeqNum(xh))
}

/// How many values of `a` (passing `keep`) occur in `b`.
fn common_count<T: PartialEq + Copy>(
    a: impl Iterator<Item = T>,
    b: impl Iterator<Item = T> + Clone,
    keep: impl Fn(&T) -> bool,
) -> u32 {
    let mut n = 0;
    for v in a.filter(|v| keep(v)) {
        if b.clone().any(|w| w == v) {
            n += 1;
        }
    }
    n
}

/// Datagram digests equal at a constant index shift (one point may have started later);
/// the number of equal datagrams, `None` if no alignment agrees on every comparable pair.
pub(crate) fn datagram_alignment(x: &DirFeatures, y: &DirFeatures) -> Option<u32> {
    let (xs, ys) = (x.datagrams().as_slice(), y.datagrams().as_slice());
    let mut best = None;
    for (i, dx) in xs.iter().enumerate() {
        let Some(hx) = dx.digest() else { continue };
        for (j, dy) in ys.iter().enumerate() {
            if dy.digest() != Some(hx) {
                continue;
            }
            let shift = j as isize - i as isize;
            let mut matched = 0u32;
            let mut ok = true;
            for (k, a) in xs.iter().enumerate() {
                let Some(b) = usize::try_from(k as isize + shift)
                    .ok()
                    .and_then(|m| ys.get(m))
                else {
                    continue;
                };
                match (a.digest(), b.digest()) {
                    (Some(p), Some(q)) if p == q => matched += 1,
                    (Some(_), Some(_)) => ok = false,
                    _ => {}
                }
            }
            if ok && best.is_none_or(|b| matched > b) {
                best = Some(matched);
            }
        }
    }
    best
}

/// A link between two observations (indices into the joiner's observation list).
#[derive(Clone, Debug)]
pub(crate) struct LegLink {
    pub a: u32,
    pub b: u32,
    pub score: i32,
    pub evidence: LinkEvidence,
    /// `b` matches `a` only with its directions swapped (neither saw a SYN, and the flow
    /// table named different ends the client).
    pub flipped: bool,
}

/// Candidate pairs of observations for the leg join.
pub(crate) fn candidates(
    obs: &[Ob<'_>],
    cfg: &JoinConfig,
    stats: &mut JoinStats,
) -> Vec<(u32, u32)> {
    const ISN: u8 = 1;
    const TSVAL: u8 = 2;
    const TUPLE: u8 = 3;
    const SEQ_BLOCK: u8 = 4;
    const DATAGRAM: u8 = 5;
    let mut g = Grouper::with_capacity(obs.len() * 4);
    let mut keys: Vec<u64> = Vec::with_capacity(16);
    for (i, o) in obs.iter().enumerate() {
        if o.synthetic.is_some() {
            continue;
        }
        keys.clear();
        keys.push(key(TUPLE, o.tuple_key()));
        for dir in Dir::BOTH {
            let d = o.d(dir);
            match o.f.proto {
                Proto::Tcp => {
                    if let Some(s) = d.syn {
                        keys.push(key(ISN, u64::from(s.isn)));
                    }
                    // A half observation: the ISN its acknowledgements name.
                    if o.d(dir.other()).syn.is_none()
                        && let Some(ack) = d.syn.and_then(|s| s.ack).or(d.first_ack)
                    {
                        keys.push(key(ISN, u64::from(ack.wrapping_sub(1))));
                    }
                    // Without a SYN, the first TSval finds the same packets elsewhere.
                    if d.syn.is_none()
                        && let Some(t) = d.first_tsval()
                    {
                        keys.push(key(TSVAL, u64::from(t)));
                    }
                    if d.syn.is_none()
                        && let (Some(lo), Some(hi)) = (d.seq_lo, d.seq_hi)
                    {
                        let blocks = (SeqNum(hi).diff(SeqNum(lo)).max(0) as u32 >> 20).min(15);
                        for k in 0..=blocks {
                            keys.push(key(
                                SEQ_BLOCK,
                                u64::from((lo >> 20).wrapping_add(k) & 0xfff),
                            ));
                        }
                    }
                }
                Proto::Udp => {
                    for dg in d.datagrams().as_slice() {
                        if let Some(h) = dg.digest() {
                            keys.push(key(DATAGRAM, h));
                        }
                    }
                }
            }
        }
        keys.sort_unstable();
        keys.dedup();
        for &k in &keys {
            g.push(k, o.f.first, o.f.last, i as u32);
        }
    }
    let mut pairs = Vec::new();
    g.pairs(
        cfg.leg_window_ns,
        cfg.max_candidates,
        &mut pairs,
        &mut stats.capped_candidates,
    );
    super::index::dedup_unordered(&mut pairs);
    pairs
}

/// Scores candidate pairs; keeps those that are leg links.
pub(crate) fn links(
    obs: &[Ob<'_>],
    pairs: &[(u32, u32)],
    cfg: &JoinConfig,
    stats: &mut JoinStats,
) -> Vec<LegLink> {
    let mut out = Vec::new();
    for &(a, b) in pairs {
        stats.leg_pairs_scored += 1;
        let (oa, ob) = (&obs[a as usize], &obs[b as usize]);
        let leg = |ps: Option<PairScore>| ps.filter(|ps| ps.is_leg(oa.f.proto, cfg.leg_threshold));
        let mut flipped = false;
        let mut found = leg(compare(oa, ob, cfg));
        if found.is_none() && (!oa.oriented() || !ob.oriented()) {
            // Without a SYN the flow table's client is whoever sent first: try the other way.
            let fb = Ob {
                flip: !ob.flip,
                ..*ob
            };
            found = leg(compare(oa, &fb, cfg));
            flipped = found.is_some();
        }
        if let Some(ps) = found {
            out.push(LegLink {
                a,
                b,
                score: ps.score(),
                evidence: ps.evidence,
                flipped,
            });
        }
    }
    out
}

/// Orients the observations of each leg alike: along accepted links, an observation without
/// a SYN is turned around when its link says so (relative to an observation with a SYN, or
/// the leg's first). Observations with a SYN are never turned.
pub(crate) fn orient(
    obs: &mut [Ob<'_>],
    links: &[LegLink],
    accepted: &[usize],
    clusters: &mut Clusters,
) {
    if !accepted.iter().any(|&i| links[i].flipped) {
        return;
    }
    let mut adj: std::collections::HashMap<u32, Vec<(u32, bool)>> =
        std::collections::HashMap::new();
    for &i in accepted {
        let l = &links[i];
        adj.entry(l.a).or_default().push((l.b, l.flipped));
        adj.entry(l.b).or_default().push((l.a, l.flipped));
    }
    let mut rel: std::collections::HashMap<u32, bool> = std::collections::HashMap::new();
    let mut roots: Vec<u32> = accepted
        .iter()
        .map(|&i| clusters.find(links[i].a))
        .collect();
    roots.sort_unstable();
    roots.dedup();
    for r in roots {
        let members = clusters.members(r);
        let start = members
            .iter()
            .copied()
            .filter(|&m| obs[m as usize].oriented())
            .min()
            .or(members.iter().copied().min());
        let Some(start) = start else { continue };
        rel.insert(start, false);
        let mut stack = vec![start];
        while let Some(x) = stack.pop() {
            let rx = rel[&x];
            for &(y, f) in adj.get(&x).map(Vec::as_slice).unwrap_or(&[]) {
                if let std::collections::hash_map::Entry::Vacant(v) = rel.entry(y) {
                    v.insert(rx ^ f);
                    stack.push(y);
                }
            }
        }
    }
    for (i, turn) in rel {
        let o = &mut obs[i as usize];
        if turn && !o.oriented() {
            o.flip = !o.flip;
        }
    }
}

/// What conntrack adds: links between observed tuples, and synthetic observations to make.
#[derive(Debug, Default)]
pub(crate) struct CtPlan {
    pub links: Vec<LegLink>,
    /// `(entry index, use the original tuple, observation to link to)`.
    pub synthetic: Vec<(usize, bool, u32)>,
}

/// Matches conntrack entries to observations by tuple. An entry whose tuple was rewritten
/// links an observation of its original tuple with one of its wire tuple (the reply
/// reversed). The wire-side observation is the one nearest the entry's start (or the
/// latest, for entries without a start time, as a dump shows the newest use of a tuple);
/// the original-side one is the one nearest the wire side's start. Observations in the
/// entry's own namespace are preferred. When only one of the two tuples is observed, or the
/// observation of the other contradicts it (a reused tuple), the other becomes a synthetic
/// observation.
pub(crate) fn conntrack_plan(
    obs: &[Ob<'_>],
    entries: &[(CtEntry, String)],
    netns: &[Option<crate::netns::Netns>],
    cfg: &JoinConfig,
) -> CtPlan {
    let mut plan = CtPlan::default();
    if entries.is_empty() {
        return plan;
    }
    let mut by_tuple: Vec<(u64, u32)> = obs
        .iter()
        .enumerate()
        .filter(|(_, o)| o.synthetic.is_none())
        .map(|(i, o)| (o.tuple_key(), i as u32))
        .collect();
    by_tuple.sort_unstable();
    // Where each key's run starts (one hash probe instead of a binary search per lookup).
    let mut runs: super::index::KeyMap<u32> = super::index::KeyMap::default();
    runs.reserve(by_tuple.len());
    for (i, &(k, _)) in by_tuple.iter().enumerate() {
        runs.entry(k).or_insert(i as u32);
    }
    for (ei, (e, _)) in entries.iter().enumerate() {
        let proto = match e.proto {
            crate::conntrack::CtProto::Tcp => Proto::Tcp,
            crate::conntrack::CtProto::Udp => Proto::Udp,
            _ => continue,
        };
        // The observation of `(src, dst)` whose start is nearest `near` (the latest if None).
        let pick = |src: SocketAddr, dst: SocketAddr, near: Option<Nanos>| -> Option<u32> {
            let k = tuple_key(proto, src, dst);
            let from = *runs.get(&k)? as usize;
            let run = by_tuple[from..]
                .iter()
                .take_while(|x| x.0 == k)
                .map(|x| x.1);
            let fits = |i: &u32| {
                let o = &obs[*i as usize];
                o.f.proto == proto && same_tuple((o.client(), o.server()), (src, dst))
            };
            let in_ns = |i: &u32| {
                netns
                    .get(obs[*i as usize].point as usize)
                    .and_then(|n| n.as_ref())
                    .is_none_or(|n| *n == e.netns)
            };
            let rank = |i: &u32| {
                let t = obs[*i as usize].start();
                match near {
                    Some(n) => t.abs_diff(n),
                    None => u64::MAX - (t.max(0) as u64),
                }
            };
            run.clone()
                .filter(fits)
                .filter(in_ns)
                .min_by_key(rank)
                .or_else(|| run.filter(fits).min_by_key(rank))
        };
        if e.rewrite().is_none() {
            continue;
        }
        let wire = e.wire_orig();
        let start = e.start_ns.and_then(|s| i64::try_from(s).ok());
        let w = pick(wire.src_addr(), wire.dst_addr(), start);
        let near = w.map(|w| obs[w as usize].start()).or(start);
        let o = pick(e.orig.src_addr(), e.orig.dst_addr(), near);
        let ev = Evidence::Conntrack { id: e.id };
        match (o, w) {
            (Some(a), Some(b)) if a != b => {
                // Conntrack vouches for the tuples, not for the time: a contradiction in the
                // sequence space or the payload means a reused tuple.
                match compare(&obs[a as usize], &obs[b as usize], cfg) {
                    Some(mut ps) => {
                        ps.evidence.add(&ev);
                        plan.links.push(LegLink {
                            a,
                            b,
                            score: ps.score(),
                            evidence: ps.evidence,
                            flipped: false,
                        });
                    }
                    None => plan.synthetic.push((ei, true, b)),
                }
            }
            (None, Some(b)) => plan.synthetic.push((ei, true, b)),
            (Some(a), None) => plan.synthetic.push((ei, false, a)),
            _ => {}
        }
    }
    plan
}

/// Union-find over observations with per-cluster members.
pub(crate) struct Clusters {
    parent: Vec<u32>,
    /// Members of each root; empty for a root that is alone (most observations are, and
    /// a list each would be an allocation each): its members are `ids[root..=root]`.
    members: Vec<Vec<u32>>,
    ids: Vec<u32>,
}

impl Clusters {
    pub fn new(n: usize) -> Clusters {
        Clusters {
            parent: (0..n as u32).collect(),
            members: (0..n).map(|_| Vec::new()).collect(),
            ids: (0..n as u32).collect(),
        }
    }
    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            self.parent[x as usize] = self.parent[p as usize];
            x = p;
        }
        x
    }
    pub fn members(&self, root: u32) -> &[u32] {
        let r = root as usize;
        if self.members[r].is_empty() {
            std::slice::from_ref(&self.ids[r])
        } else {
            &self.members[r]
        }
    }
    /// Merges unless the union would hold two observations of the same tuple at the same
    /// point, or more than `max` observations. Returns whether it merged (or was merged).
    pub fn try_union(&mut self, a: u32, b: u32, obs: &[Ob<'_>], max: usize) -> Result<bool, ()> {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return Ok(false);
        }
        let (ma, mb) = (self.members(ra), self.members(rb));
        if ma.len() + mb.len() > max {
            return Err(());
        }
        for &x in ma {
            for &y in mb {
                let (ox, oy) = (&obs[x as usize], &obs[y as usize]);
                if ox.point == oy.point
                    && ox.key == oy.key
                    && same_tuple((ox.client(), ox.server()), (oy.client(), oy.server()))
                {
                    return Err(());
                }
            }
        }
        let (big, small) = if ma.len() >= mb.len() {
            (ra, rb)
        } else {
            (rb, ra)
        };
        let moved = std::mem::take(&mut self.members[small as usize]);
        let into = &mut self.members[big as usize];
        if into.is_empty() {
            into.push(big);
        }
        if moved.is_empty() {
            into.push(small);
        } else {
            into.extend(moved);
        }
        self.parent[small as usize] = big;
        Ok(true)
    }
}
