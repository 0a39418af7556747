//! Within one leg: observations at the same point that show complementary halves of the
//! connection merge into one *view*; views are ordered along the client-to-server direction
//! of travel; consecutive views give a hop (what changed, how long it took).
//!
//! Order: every view is placed relative to a reference view (the one with the most
//! segment records) by the median time difference of the *same* segments (same sequence
//! number, length and flags; for UDP the same datagram digest) at both points, counted
//! positive when the other view is downstream: `t_v - t_ref` for client-to-server segments,
//! `t_ref - t_v` for server-to-client ones. Without common segments the SYN (or SYN-ACK)
//! times stand in, and without those the first-packet times. A synthetic observation of a
//! conntrack entry's original tuple goes first (the tuple before the rewrite is nearest the
//! socket that sent it); one of the wire tuple goes last. Ties keep the capture points'
//! registration order.

use super::evidence::Dir;
use super::features::{DirFeatures, Nanos};
use super::leg::{Ob, same_tuple};
use super::model::Hop;
use serde::Serialize;
use std::net::SocketAddr;

/// A leg's views, most legs have one (kept inline: no allocation per leg).
pub(crate) type Views = smallvec::SmallVec<[View; 1]>;

/// One or two observations at one point (two when the directions show different tuples).
#[derive(Clone, Debug)]
pub(crate) struct View {
    pub point: u32,
    /// Observation that carries the client-to-server direction.
    pub c2s: u32,
    /// Observation that carries the server-to-client direction (== `c2s` unless merged).
    pub s2c: u32,
    /// Position along the leg (ns relative to the reference view).
    pub pos: i64,
}

impl View {
    pub fn d<'b>(&self, obs: &[Ob<'b>], dir: Dir) -> &'b DirFeatures {
        obs[self.member(dir) as usize].d(dir)
    }
    pub fn member(&self, dir: Dir) -> u32 {
        match dir {
            Dir::C2s => self.c2s,
            Dir::S2c => self.s2c,
        }
    }
    pub fn merged(&self) -> bool {
        self.c2s != self.s2c
    }
    pub fn main<'a, 'b>(&self, obs: &'a [Ob<'b>]) -> &'a Ob<'b> {
        &obs[self.c2s as usize]
    }
    pub fn client(&self, obs: &[Ob<'_>]) -> SocketAddr {
        self.main(obs).client()
    }
    pub fn server(&self, obs: &[Ob<'_>]) -> SocketAddr {
        self.main(obs).server()
    }
    /// The server-to-client direction's `(src, dst)` when it shows another tuple.
    pub fn reply(&self, obs: &[Ob<'_>]) -> Option<(SocketAddr, SocketAddr)> {
        let r = &obs[self.s2c as usize];
        let m = self.main(obs);
        (self.merged() && !same_tuple((r.client(), r.server()), (m.client(), m.server())))
            .then(|| (r.server(), r.client()))
    }
    pub fn synthetic(&self, obs: &[Ob<'_>]) -> Option<usize> {
        self.main(obs).synthetic
    }
    pub fn first(&self, obs: &[Ob<'_>]) -> Nanos {
        obs[self.c2s as usize]
            .f
            .first
            .min(obs[self.s2c as usize].f.first)
    }
    pub fn last(&self, obs: &[Ob<'_>]) -> Nanos {
        obs[self.c2s as usize]
            .f
            .last
            .max(obs[self.s2c as usize].f.last)
    }
    /// When the connection started here (client SYN, else first packet).
    pub fn start(&self, obs: &[Ob<'_>]) -> Nanos {
        self.d(obs, Dir::C2s).syn.map_or(self.first(obs), |s| s.at)
    }
    fn records(&self, obs: &[Ob<'_>]) -> usize {
        Dir::BOTH
            .iter()
            .map(|&d| self.d(obs, d).segments().len() + self.d(obs, d).datagrams().len())
            .sum()
    }
}

/// Builds the views of one leg's members (merging complementary halves at one point) and
/// orders them along the direction of travel; with the hops between consecutive views, as
/// the model holds them (the leg takes them over without a copy).
pub(crate) fn views(
    members: &[u32],
    obs: &[Ob<'_>],
    synthetic_orig: &dyn Fn(usize, &Ob<'_>) -> bool,
) -> (Views, Vec<Hop>) {
    if let [m] = members {
        let v = View {
            point: obs[*m as usize].point,
            c2s: *m,
            s2c: *m,
            pos: 0,
        };
        return (smallvec::smallvec![v], Vec::new());
    }
    // Scratch on the stack: a leg has a few observations (one or two per point).
    let mut sorted: smallvec::SmallVec<[u32; 8]> = members.iter().copied().collect();
    sorted.sort_by_key(|&m| (obs[m as usize].point, m));
    let mut used: smallvec::SmallVec<[bool; 8]> = smallvec::smallvec![false; sorted.len()];
    let mut out = Views::with_capacity(sorted.len());
    for i in 0..sorted.len() {
        if used[i] {
            continue;
        }
        used[i] = true;
        let a = &obs[sorted[i] as usize];
        let only = |o: &Ob<'_>, d: Dir| o.covers(d) && !o.covers(d.other());
        let mut view = View {
            point: a.point,
            c2s: sorted[i],
            s2c: sorted[i],
            pos: 0,
        };
        for dir in Dir::BOTH {
            if !only(a, dir) {
                continue;
            }
            let partner = (i + 1..sorted.len()).find(|&j| {
                !used[j]
                    && obs[sorted[j] as usize].point == a.point
                    && only(&obs[sorted[j] as usize], dir.other())
            });
            if let Some(j) = partner {
                used[j] = true;
                match dir {
                    Dir::C2s => view.s2c = sorted[j],
                    Dir::S2c => view.c2s = sorted[j],
                }
            }
        }
        out.push(view);
    }
    let reference = out
        .iter()
        .enumerate()
        .filter(|(_, v)| v.synthetic(obs).is_none())
        .max_by_key(|(i, v)| (v.records(obs), std::cmp::Reverse(*i)))
        .map(|(i, _)| i);
    // Delays measured against the reference, kept for the hops: `(other's c2s member,
    // c2s samples, s2c samples)`, as the other view lags behind the reference.
    let mut memo: smallvec::SmallVec<[(u32, Samples, Samples); 4]> = smallvec::SmallVec::new();
    if let Some(r) = reference {
        let rv = out[r].clone();
        for v in out.iter_mut() {
            v.pos = match v.synthetic(obs) {
                Some(e) if synthetic_orig(e, v.main(obs)) => i64::MIN,
                Some(_) => i64::MAX,
                None if v.c2s == rv.c2s => 0,
                None => {
                    let (c, s) = (delays(&rv, v, obs, Dir::C2s), delays(&rv, v, obs, Dir::S2c));
                    memo.push((v.c2s, c, s));
                    offset(&rv, v, obs, c, s)
                }
            };
        }
        out.sort_by_key(|v| (v.pos, v.point));
        let hops = out
            .windows(2)
            .enumerate()
            .map(|(i, w)| {
                // Reuse a pair already measured (one end is the reference).
                let known = |a: &View, b: &View| -> Option<(Samples, Samples)> {
                    (a.c2s == rv.c2s)
                        .then(|| memo.iter().find(|m| m.0 == b.c2s).map(|m| (m.1, m.2)))
                        .flatten()
                };
                let pair = known(&w[0], &w[1])
                    .or_else(|| known(&w[1], &w[0]).map(|(c, s)| (c.negated(), s.negated())));
                hop(i, &w[0], &w[1], obs, pair)
            })
            .collect();
        return (out, hops);
    }
    out.sort_by_key(|v| (v.pos, v.point));
    let hops = out
        .windows(2)
        .enumerate()
        .map(|(i, w)| hop(i, &w[0], &w[1], obs, None))
        .collect();
    (out, hops)
}

/// Records compared per direction at most (segments and datagrams).
const RECORDS: usize = super::features::K_SEGMENTS + super::features::K_DATAGRAMS;

/// Up to [`RECORDS`] values on the stack.
#[derive(Clone, Copy)]
struct Samples {
    v: [i64; 2 * RECORDS],
    n: usize,
}

impl Samples {
    fn new() -> Samples {
        Samples {
            v: [0; 2 * RECORDS],
            n: 0,
        }
    }
    fn push(&mut self, x: i64) {
        if self.n < self.v.len() {
            self.v[self.n] = x;
            self.n += 1;
        }
    }
    fn extend(&mut self, o: &Samples) {
        for &x in &o.v[..o.n] {
            self.push(x);
        }
    }
    fn median(&mut self) -> Option<i64> {
        median(&mut self.v[..self.n])
    }
    fn negated(mut self) -> Samples {
        for x in &mut self.v[..self.n] {
            *x = x.saturating_neg();
        }
        self
    }
}

fn median(v: &mut [i64]) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        v[n / 2 - 1] / 2 + v[n / 2] / 2
    })
}

/// Signed delays of `v` behind `u` along the direction of travel, over the same records
/// (segments, datagrams) of `dir` at both views.
fn delays(u: &View, v: &View, obs: &[Ob<'_>], dir: Dir) -> Samples {
    let (a, b) = (u.d(obs, dir), v.d(obs, dir));
    let mut out = Samples::new();
    let mut add = |tu: Nanos, tv: Nanos| {
        out.push(match dir {
            Dir::C2s => tv.saturating_sub(tu),
            Dir::S2c => tu.saturating_sub(tv),
        })
    };
    for x in a.segments().as_slice() {
        if let Some(y) = b
            .segments()
            .as_slice()
            .iter()
            .find(|y| (y.seq, y.len, y.flags) == (x.seq, x.len, x.flags))
            && let (Some(tx), Some(ty)) = (a.time(x.at), b.time(y.at))
        {
            add(tx, ty);
        }
    }
    for x in a.datagrams().as_slice() {
        if x.digest().is_none() {
            continue;
        }
        if let Some(y) = b.datagrams().as_slice().iter().find(|y| y.hash == x.hash)
            && let (Some(tx), Some(ty)) = (a.time(x.at), b.time(y.at))
        {
            add(tx, ty);
        }
    }
    out
}

/// How far downstream `v` is of `u` (ns).
fn offset(u: &View, v: &View, obs: &[Ob<'_>], c2s: Samples, s2c: Samples) -> i64 {
    let mut all = c2s;
    all.extend(&s2c);
    if let Some(m) = all.median() {
        return m;
    }
    let mut syn = [0i64; 2];
    let mut n = 0;
    for dir in Dir::BOTH {
        if let (Some(a), Some(b)) = (u.d(obs, dir).syn, v.d(obs, dir).syn) {
            syn[n] = if dir == Dir::C2s {
                b.at.saturating_sub(a.at)
            } else {
                a.at.saturating_sub(b.at)
            };
            n += 1;
        }
    }
    median(&mut syn[..n]).unwrap_or_else(|| v.first(obs).saturating_sub(u.first(obs)))
}

/// What differs between two consecutive views.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `src`, `dst`, `reply-src`, `reply-dst`, `ttl`, `src-mac`, `dst-mac`.
    pub field: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<Dir>,
    pub from: Value,
    pub to: Value,
}

/// A changed value: an address or MAC (as a string) or a TTL (a number).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    Addr(SocketAddr),
    Ttl(u8),
    Mac([u8; 6]),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Addr(a) => write!(f, "{a}"),
            Value::Ttl(t) => write!(f, "{t}"),
            Value::Mac(m) => write!(
                f,
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            ),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Ttl(t) => s.serialize_u8(*t),
            v => crate::json::display(v, s),
        }
    }
}

/// Latency one hop added, per direction (median over the same segments, microseconds).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub c2s_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s2c_us: Option<f64>,
    /// Segments the medians are taken over.
    pub samples: u32,
}

/// Changes and latency from view `u` (the leg's view `from`) to the next view `v`.
fn hop(
    from: usize,
    u: &View,
    v: &View,
    obs: &[Ob<'_>],
    measured: Option<(Samples, Samples)>,
) -> Hop {
    // A synthetic observation has no packets (times, TTLs, MACs) of its own.
    let timed = u.synthetic(obs).is_none() && v.synthetic(obs).is_none();
    let mut ch = Vec::new();
    let mut addr = |field: &'static str, a: SocketAddr, b: SocketAddr| {
        if a != b {
            ch.push(Change {
                field,
                dir: None,
                from: Value::Addr(a),
                to: Value::Addr(b),
            });
        }
    };
    addr("src", u.client(obs), v.client(obs));
    addr("dst", u.server(obs), v.server(obs));
    let (ur, vr) = (u.reply(obs), v.reply(obs));
    if ur.is_some() || vr.is_some() {
        let ur = ur.unwrap_or((u.server(obs), u.client(obs)));
        let vr = vr.unwrap_or((v.server(obs), v.client(obs)));
        addr("reply-src", ur.0, vr.0);
        addr("reply-dst", ur.1, vr.1);
    }
    for dir in Dir::BOTH.into_iter().filter(|_| timed) {
        let (a, b) = (u.d(obs, dir), v.d(obs, dir));
        if let (Some(x), Some(y)) = (a.ttl, b.ttl)
            && x.first != y.first
        {
            ch.push(Change {
                field: "ttl",
                dir: Some(dir),
                from: Value::Ttl(x.first),
                to: Value::Ttl(y.first),
            });
        }
        if let (Some(x), Some(y)) = (a.macs, b.macs) {
            if x.src != y.src {
                ch.push(Change {
                    field: "src-mac",
                    dir: Some(dir),
                    from: Value::Mac(x.src),
                    to: Value::Mac(y.src),
                });
            }
            if x.dst != y.dst {
                ch.push(Change {
                    field: "dst-mac",
                    dir: Some(dir),
                    from: Value::Mac(x.dst),
                    to: Value::Mac(y.dst),
                });
            }
        }
    }
    let (mut c2s, mut s2c) = match (timed, measured) {
        (false, _) => (Samples::new(), Samples::new()),
        (true, Some(m)) => m,
        (true, None) => (delays(u, v, obs, Dir::C2s), delays(u, v, obs, Dir::S2c)),
    };
    let samples = (c2s.n + s2c.n) as u32;
    let us = |ns: i64| ns as f64 / 1000.0;
    let lat = Latency {
        c2s_us: c2s.median().map(us),
        s2c_us: s2c.median().map(us),
        samples,
    };
    Hop {
        from,
        to: from + 1,
        changes: ch,
        latency: lat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [5, 1, 3]), Some(3));
        assert_eq!(median(&mut [4, 2]), Some(3));
        assert_eq!(median(&mut [i64::MAX, i64::MAX]), Some(i64::MAX - 1));
    }
}
