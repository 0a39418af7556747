//! Join: observations of one connection at several capture points become one **leg**;
//! legs carrying the same bytes through userspace forwarders become one **path**
//! (DESIGN.md's words).
//!
//! ## Contract
//!
//! Input, all optional except the observations:
//!
//! * per observation (one tuple at one capture point), an [`ObservationFeatures`] the flow
//!   table fills packet by packet (see [`features`] for the hooks) and an [`ObservationId`]
//!   of the flow table's choosing ([`Joiner::add_observation`]);
//! * capture point labels and namespaces ([`Joiner::set_points`], [`Joiner::set_point`]);
//! * conntrack entries ([`Joiner::add_conntrack`]);
//! * socket owners for sockets no observation was attributed to, e.g. the pre-NAT socket of
//!   a conntrack entry ([`Joiner::add_socket_owner`]).
//!
//! Output: [`Joiner::join`] returns a [`Model`]: every observation in exactly one leg, every
//! leg in exactly one path, paths ordered by first packet with ids from 1, legs client to
//! server, observations of a leg along the direction of travel, plus synthetic observations
//! made from conntrack. The joiner is pure (no clock, no I/O), deterministic for the same
//! input, never panics, and its memory is linear in the number of observations. It is
//! re-run from scratch on every snapshot (50k paths take well under a second).
//!
//! ## The flow table's side (the adapter)
//!
//! ```text
//! observation created   f = ObservationFeatures::new(point, Proto::Tcp | Proto::Udp, client, server)
//!                       (a SYN with a new ISN on a finished tuple is a new observation)
//! every frame           f.on_link(dir, frame.linktype, &frame.data)   // MACs, first frame per dir
//! every TCP segment     f.on_tcp(dir, now, &ip, &tcp)                 // before reassembling it
//! every UDP datagram    f.on_udp(dir, now, &ip, &udp)                 // a first fragment too
//! reassembler Data      f.on_stream_data(dir, offset, &bytes)         // every TCP flow, not only
//! reassembler Gap       f.on_stream_gap(dir, offset)                  //   those shown by --follow
//! owner attributed      f.set_owner(Side::Client | Side::Server, Owner::from(&process_info))
//! snapshot / end        let mut j = Joiner::new(JoinConfig::default());
//!                       j.set_points(&points);   // or j.set_point(i, label, Some(netns)) live
//!                       for each observation: j.add_observation(ObservationId(flow id), &f);
//!                       for each conntrack entry: j.add_conntrack(&entry);
//!                       for each rewritten entry whose original socket has an owner:
//!                           j.add_socket_owner(Some(entry.netns.clone()), proto,
//!                                              entry.orig.src_addr(), entry.orig.dst_addr(), owner);
//!                       let model = j.join();
//!                       model.write_json_lines(&mut out)   // --flows=json
//!                       write!(out, "{model}")             // --flows
//! ```
//!
//! `dir` is the flow table's own direction relative to the `client` it gave `new`; `now` is
//! the packet's time ([`At`]: `Timestamp`, `flow::Nanos` or nanoseconds). In
//! `flow/table.rs` that is: the features of a TCP or UDP flow in `FlowTable::features` at
//! the flow's slot (no allocation per flow), made in `FlowTable::create` from `FlowInfo`
//! (`point_index`, client and server endpoints); `on_tcp` in `FlowTable::tcp` once `dir` is
//! known, before `tcp_packet`; `on_udp` in `FlowTable::datagram` (it needs the `Ip` and
//! `Udp`); the stream hooks in the reassembly sinks of `Flow::tcp_packet` and
//! `Flow::finish`; the features lent with the record to `FlowObserver::flow_ended` when a
//! flow ends (the report copies them into its batch's block, `report::paths::BatchFeatures`,
//! which goes with the records to the join thread), and lent from live flows for snapshots.
//!
//! ## Leg join: one connection, several points
//!
//! Candidates: observations sharing an ISN (or whose acknowledgement names one), a first
//! TSval, a tuple, a 1 MiB sequence block (midstream), or a datagram digest, and live within
//! [`JoinConfig::leg_window_ns`] of each other. Each candidate pair is scored per direction
//! (points in [`evidence::points`]):
//!
//! | evidence | points | why |
//! |---|---|---|
//! | equal ISN | 40 | 32 random bits per connection, unchanged by NAT |
//! | acknowledgement names the other half's ISN | 40 | the same, across two half observations |
//! | constant sequence shift, confirmed by the acks, payload and the other direction | 20 | sequence-randomizing middleboxes |
//! | equal segments (seq, length, flags) | 15 | the same packets |
//! | overlapping sequence ranges (no SYN seen) | 10 | midstream pickups |
//! | equal TSval / echoed TSval / TSval advancing at 1 kHz | 20 / 20 / 10 | the same sender clock |
//! | TSvals of the same SYN differ | -10 | a box rewriting timestamps, or another connection |
//! | >= 2 equal non-zero IP-IDs | 15 | the same packets |
//! | equal payload prefix (16/64/256/1024 bytes) | 15/20/25/30 (10 below 16) | the same bytes |
//! | equal UDP datagram digests | 15 each, at most 30 | the same datagrams |
//! | equal final byte count | 5 | |
//! | same tuple | 15 (UDP 25) | the two ends of a veth, a bridge and its port |
//! | conntrack maps one tuple to the other | 50 | the kernel says so |
//!
//! A pair is **rejected** when the ISNs of a direction differ without a confirmed shift, when
//! the payload prefixes differ, or when they are not within the window. A pair is a **leg
//! link** when it scores at least [`JoinConfig::leg_threshold`] (40) *and* has structural
//! evidence: for TCP, agreement of the sequence space (equal ISN, acknowledged ISN,
//! confirmed shift, equal segments or overlapping ranges), because only that separates one
//! connection from the next leg of a forwarder, which carries the same payload (and, on
//! hosts without per-connection timestamp offsets, similar TSvals); for UDP, equal IP-IDs or
//! the same tuple. Hence UDP through NAT is one leg only with IPv4 IP-IDs or conntrack;
//! IPv6 UDP through NAT66 without conntrack comes out as two legs of one path. Links are
//! merged strongest first; a merge that would put two observations of the same tuple at the
//! same point into one leg (a reused tuple) is refused and counted
//! ([`JoinStats::leg_conflicts`]). Two observations at one point showing one direction each
//! under different tuples (a bridge with br_netfilter shows replies already un-NATed) are
//! merged into one observation with a `reply` tuple.
//!
//! Conntrack: an entry whose tuple was rewritten links an observation of its original tuple
//! to one of its wire tuple (the reply reversed), each chosen nearest the entry's start (or
//! the latest); the link still needs the pair not to contradict itself (reused tuples). When
//! only one of the two tuples is observed anywhere, the other becomes a *synthetic
//! observation* (point `NETNS/conntrack`, source `conntrack`), placed first in the leg if it
//! is the original tuple (the socket's own view, before the rewrite), last otherwise.
//!
//! ## Path join: legs through a forwarder
//!
//! Candidates: legs sharing a payload key (digest of a direction's first 16 bytes, of a
//! shorter whole stream, or of a first datagram) whose starts are within
//! [`JoinConfig::path_window_ns`] of the upstream leg's start or first data. An edge
//! upstream -> downstream must satisfy: the downstream leg starts after the upstream one
//! (strictly, so no cycles); its first forwarded byte is not earlier than the upstream's
//! first byte, and the upstream's first reply byte not earlier than the downstream's
//! (causality, within [`JoinConfig::causality_slack_ns`]), and so is every recorded payload
//! segment (a downstream segment not before the upstream segment holding its last byte, and
//! back for replies); no differing payload prefix; at
//! least one direction with an equal prefix; not the same tuple or endpoint at one point.
//! It scores:
//!
//! | evidence | points |
//! |---|---|
//! | equal payload prefix per direction (16/64/256/1024 bytes) | 25/30/35/40 (20 below 16); UDP datagrams 10 + 15 each, at most 40 |
//! | timing: the worst of connect, forward and reply delays | 30 at <= 10 us, -10 per decade, 0 from 10 ms |
//! | equal / differing final byte counts | 5 / -10 |
//! | the same process ends the upstream and opens the downstream leg | 50 |
//! | different processes (`comm`) at the two ends | -30 |
//! | forwarder ends in different namespaces | -10 |
//!
//! and needs [`JoinConfig::path_threshold`] (40). Forwarding has one direction between two
//! services: an edge says the service its upstream leg connects to forwards to the one its
//! downstream leg connects to, and where candidate edges go both ways between the same two
//! services (a loop; mirrored candidates from one forwarder's own legs), the direction with
//! fewer edges is dropped (`path::drop_reversed`). Edges are then chosen as a matching (one
//! upstream and one downstream per leg): an edge without rivals is taken; among edges
//! sharing a leg end, every matching is weighed (`sum(score + 1000)`, so a chain through a
//! middle leg beats its own skip edge), and only edges common to every matching within
//! [`JoinConfig::margin`] (15) of the best are taken. A taken edge must then also be the
//! clear best at both of its ends: it beats by the margin every other candidate next leg of
//! its upstream leg and every other candidate previous leg of its downstream leg (mutual
//! best; rivals that a chain of forwarders explains, a skip edge over a middle leg, do not
//! count, and skip edges are never taken). The others are **ambiguous**: not joined, and
//! listed in each path's `ambiguous` with the candidate paths and scores, unless
//! elimination settles them.
//!
//! Elimination: two clients sending identical bytes at the same moment through one forking
//! forwarder give legs that payload and timing scores cannot tell apart (and the owning
//! process is lost when the forwarder's child exits before attribution finds it). A
//! forwarder hands every upstream leg to exactly one downstream leg, though, and most ways
//! to pair such legs break causality somewhere: a byte written before it was read, or a
//! leg closed before anything made the forwarder close it. The forwarder closes after it
//! reads an end (the client's on the upstream leg, the server's on the downstream leg), and
//! either passes it on (a half-close: the client's FIN becomes its FIN towards the server)
//! or closes both legs at once; a close back to the client that came before the server's
//! end, after the client's own, but not with the close towards the server, fits neither (in
//! the lab, that was the one tell of a wrong pairing in about a third of the runs that
//! elimination could not settle before). A connected group of
//! ambiguous edges with as many upstream as downstream legs is joined when exactly one
//! pairing of all its legs uses only possible pairings, and every pair in it is a candidate
//! edge (evidence `elimination`). Possible means not ruled out by more than
//! [`JoinConfig::elimination_doubt_ns`] (100 us): a pair that missed candidacy by less
//! (its first byte looked acausal by 40 us, say: timestamps of two points) still counts as
//! a possible pairing, so the structure alone never forces a pairing that noise could
//! explain. An end on the leg's own point must come before the close within the slack;
//! one at another point within the doubt; closing both at once, the two closes within the
//! doubt of each other. A forwarder that closes on its own (an idle
//! timeout, a proxy ending a response) makes every pairing of its legs look impossible,
//! so nothing is eliminated there. A missing join is preferred to a wrong one. When two
//! or more pairings of such a group use only possible pairings, its hops are
//! **undecidable** from what the joiner kept of the packets, and say so:
//! `"fitting_pairings": n` on their `ambiguous` notes (`undecidable: n pairings fit the
//! packets` in the tree, [`JoinStats::undecidable_hops`]). An ambiguous hop without it had
//! scores too close to call, or rivals outside its group; nothing is claimed of it.
//!
//! Orientation: the joiner calls the sender of the SYN the client, whatever the flow table
//! said. Observations without a SYN keep the flow table's naming; when two of them match
//! only with the directions swapped, the link says so and the leg's observations are turned
//! to agree (the one with a SYN, or the first, decides).
//!
//! ## Limits
//!
//! Payload digests need the SYN of the direction (the stream's real offset 0): a midstream
//! pickup has no payload evidence, so its legs are not joined into paths. IP-IDs count only
//! when equal (the same packets), not as a progression: sockets of one host can advance
//! alike. TSval progression assumes a 1 kHz clock (Linux). Hop latency needs the same
//! segments at both points (equal sequence numbers: a leg through a sequence-shifting box
//! gets no latency for that hop). Timestamps of all points are assumed to come from one
//! clock.
//!
//! Offline, legs that carry identical bytes through one forwarder can be undecidable: only
//! time tells them apart, and a forking forwarder's children race. Seen in the lab: two
//! clients each send 20000 bytes, ~0.6 ms apart (upstream A at .8255, B at .8249); the
//! forwarder's children connect out in the other order (downstream C at .8229, D at .8253)
//! and forward to D at .8293 and C at .8305; the replies come back and the clients reset.
//! Every byte and every end fits both A->D, B->C (the truth, from the forwarder's log) and
//! A->C, B->D: each forwarded byte after the byte read, each close after an end. Such a
//! group stays `ambiguous`, marked undecidable (2 pairings fit), rather than joined by a
//! guess; live, the owning process decides.
//!
//! ## Cost
//!
//! Candidate search groups 64-bit keys (ISNs, TSvals, tuples, sequence blocks, datagram
//! and payload digests) by sorting them, and pairs only within the time windows, at most
//! [`JoinConfig::max_candidates`] per entry and key, never all pairs. Memory: the features
//! (816 bytes per observation, fixed), 80 bytes per candidate link, and the model.
//! Scratch lists of a leg or of a conflict group stay on the stack, and the path graph is
//! indexed by dense leg numbers, not hashed (heap blocks and SipHash were a tenth of the
//! join's instructions). The joiner runs over features that went cold long ago, so what a
//! phase reads matters more than what it computes: each leg's ends are taken once, with its
//! summary (`path::Ends`), not looked up in the features per candidate edge. On the 2-core
//! development machine (a noisy VM) `tests/join_bench.rs` joins 50k seed-path-like paths
//! (250k observations, 50k conntrack entries) in about 0.52-0.65 s, best of three joins in
//! one process (the first, on memory fresh from the kernel, takes about 0.6-0.7 s).

pub mod digest;
pub mod evidence;
pub mod features;
mod index;
mod leg;
pub mod model;
mod path;
mod text;
pub mod view;

pub use evidence::LinkEvidence;
pub use evidence::{Dir, Evidence, Scored};
pub use features::{At, Nanos, ObservationFeatures, Owner, Proto, Side, nanos};
pub use model::{JoinKind, Leg, LegJoin, Link, Model, Observation, Path, Source, Via};

use crate::capture::Points;
use crate::conntrack::CtEntry;
use crate::netns::Netns;
pub(crate) use index::KeyMap;
use leg::{Clusters, Ob, canon};
pub(crate) use leg::tuple_key;
use path::LegSum;
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use view::View;

/// The flow table's name for an observation (returned in [`Observation::ids`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObservationId(pub u64);

/// Thresholds and windows (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinConfig {
    /// Observations of one leg start (SYN) within this of each other, or their time ranges
    /// overlap within it. Default 1 s: one leg crosses all points within milliseconds; the
    /// rest is slack for timestamping delays.
    pub leg_window_ns: i64,
    /// A downstream leg starts within this of the upstream leg's start or first data.
    /// Default 10 s (forwarders that connect lazily, on the first request).
    pub path_window_ns: i64,
    /// Causality slack for forwarded bytes (timestamps of different points). Default 20 us:
    /// every point of one host is stamped by one kernel clock, a forwarded byte is strictly
    /// later than the byte read, and pcap files keep microseconds. Raise it for captures
    /// from several hosts.
    pub causality_slack_ns: i64,
    /// Default 40: one ISN, or conntrack, or TSval and a payload prefix.
    pub leg_threshold: i32,
    /// Default 40: a payload prefix in each direction, or one and good timing.
    pub path_threshold: i32,
    /// A path matching must beat every alternative by this. Default 15.
    pub margin: i32,
    /// A pairing of legs is *impossible* for the elimination rule only when it breaks
    /// causality by more than this (forwarded bytes, or a forwarder closing before anything
    /// ended; see the module docs); a pairing acausal by less is still *possible*, though not a
    /// candidate. Default 100 us, five times the slack.
    pub elimination_doubt_ns: i64,
    /// Candidate pairs per observation and key at most. Default 64.
    pub max_candidates: usize,
    /// Observations per leg at most. Default 64.
    pub max_leg_observations: usize,
}

impl Default for JoinConfig {
    fn default() -> Self {
        JoinConfig {
            leg_window_ns: 1_000_000_000,
            path_window_ns: 10_000_000_000,
            causality_slack_ns: 20_000,
            leg_threshold: 40,
            path_threshold: 40,
            margin: 15,
            elimination_doubt_ns: 100_000,
            max_candidates: 64,
            max_leg_observations: 64,
        }
    }
}

/// Counters of one join.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct JoinStats {
    pub observations: u64,
    pub synthetic: u64,
    pub legs: u64,
    pub paths: u64,
    pub leg_pairs_scored: u64,
    pub leg_links: u64,
    /// Links refused because they would join two observations of one tuple at one point.
    pub leg_conflicts: u64,
    pub path_pairs_scored: u64,
    /// Candidate pairs skipped unscored: both legs end at the same server socket.
    pub path_pairs_same_server: u64,
    pub path_edges: u64,
    pub path_links: u64,
    pub ambiguous_hops: u64,
    /// Of those, hops that every byte and end kept fits in two pairings or more
    /// ([`model::Ambiguity::fitting_pairings`]).
    pub undecidable_hops: u64,
    /// Entries that hit [`JoinConfig::max_candidates`].
    pub capped_candidates: u64,
    pub path_groups_exact: u64,
    pub path_groups_greedy: u64,
    /// Forwarder hops joined by elimination: the only pairing of a group of ambiguous legs
    /// that is not impossible.
    pub path_eliminated: u64,
    /// Forwarder hops dropped because their path would pass one listening socket twice.
    pub path_loops_cut: u64,
    /// Candidate hops dropped because more candidates between the same two services go the
    /// other way (`path::drop_reversed`).
    pub path_reversed: u64,
    /// Paths written from a batch joined before the end although a leg of theirs ended
    /// near the batch's end (see [`Joiner::join_each`]): what a batch may hold back for the
    /// next one was full. Such a path may lack legs whose records came in the next batch.
    pub batch_cut_paths: u64,
}

/// A capture point as the joiner names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PointInfo {
    pub label: String,
    /// `None` when unknown (offline files): matches any namespace.
    pub netns: Option<Netns>,
}

/// How near the end of a batch a path must end to be held back by [`Joiner::join_each`]:
/// twice the largest spread of the last packets within one of the batch's paths (its
/// observations' ends, synthetic ones aside: how far apart one connection's legs end), at
/// least this, at most [`JoinConfig::leg_window_ns`].
pub const HOLD_WINDOW_MIN_NS: i64 = 10_000_000;

/// Collects the input and joins it (see the module docs).
#[derive(Debug, Default)]
pub struct Joiner<'a> {
    config: JoinConfig,
    points: HashMap<u32, PointInfo>,
    inputs: Vec<(ObservationId, &'a ObservationFeatures)>,
    conntrack: Vec<(CtEntry, String)>,
    sockets: HashMap<SocketKey, Vec<(Option<Netns>, Owner)>>,
}

/// `(protocol, local, remote)` of a socket, addresses canonical.
type SocketKey = (Proto, SocketAddr, SocketAddr);

impl<'a> Joiner<'a> {
    pub fn new(config: JoinConfig) -> Joiner<'a> {
        Joiner {
            config,
            ..Joiner::default()
        }
    }

    pub fn config(&self) -> &JoinConfig {
        &self.config
    }

    /// Labels of every capture point (namespaces unknown).
    pub fn set_points(&mut self, points: &Points) {
        for (i, p) in points.points.iter().enumerate() {
            self.set_point(i as u32, p.label.clone(), None);
        }
    }

    /// Label and namespace of point `index`.
    pub fn set_point(&mut self, index: u32, label: impl Into<String>, netns: Option<Netns>) {
        self.points.insert(
            index,
            PointInfo {
                label: crate::escape::text(&label.into()).into_owned(),
                netns,
            },
        );
    }

    pub fn add_observation(&mut self, id: ObservationId, features: &'a ObservationFeatures) {
        self.inputs.push((id, features));
    }

    /// A conntrack entry of namespace `entry.netns`; synthetic observations made from it are
    /// labelled `NETNS/conntrack`.
    pub fn add_conntrack(&mut self, entry: &CtEntry) {
        let label = format!("{}conntrack", crate::escape::text(&entry.netns.label_prefix()));
        self.conntrack.push((entry.clone(), label));
    }

    /// A conntrack entry whose namespace is known only by a name (offline input): synthetic
    /// observations are labelled `SCOPE/conntrack`.
    pub fn add_conntrack_in(&mut self, entry: &CtEntry, scope: &str) {
        self.conntrack
            .push((entry.clone(), format!("{}/conntrack", crate::escape::text(scope))));
    }

    /// The process holding the socket `local -> remote` in `netns` (`None`: any).
    pub fn add_socket_owner(
        &mut self,
        netns: Option<Netns>,
        proto: Proto,
        local: SocketAddr,
        remote: SocketAddr,
        owner: Owner,
    ) {
        self.sockets
            .entry((proto, canon(local), canon(remote)))
            .or_default()
            .push((netns, owner.clean()));
    }

    fn label(&self, point: u32) -> String {
        match self.points.get(&point) {
            Some(p) if !p.label.is_empty() => p.label.clone(),
            _ => format!("point{point}"),
        }
    }

    fn netns(&self, point: u32) -> Option<Netns> {
        self.points.get(&point).and_then(|p| p.netns.clone())
    }

    /// Joins everything added so far.
    pub fn join(&self) -> Model {
        let mut paths = Vec::new();
        let (stats, _) = self.join_each(None, |firsts| (1..=firsts.len() as u64).collect(), |p| paths.push(p));
        Model { paths, stats }
    }

    /// Joins everything added so far, handing each path to `emit` as soon as it is built
    /// (a caller writing them out holds a few paths at a time, not the whole model), in order
    /// of first packet. `number` gets every path's first packet (ns, in that order, before
    /// any is built) and returns their ids (the ids ambiguity notes refer to): a caller
    /// placing other paths between the joiner's numbers them here.
    ///
    /// With `hold_from`, the paths that may still grow are held back: those with an
    /// observation whose last packet is near the batch's latest one (within twice the largest
    /// spread of ends within a path, [`HOLD_WINDOW_MIN_NS`] at least, the leg window at most)
    /// and at or after `hold_from` (ns, the caller's bound), with those ambiguous with them.
    /// They are neither numbered nor emitted nor counted in the stats; their captured
    /// observations are returned, for the caller to join again with what comes later (a
    /// batch's last connections may belong with legs not yet ended). The paths near the end
    /// but before `hold_from` are written, and counted ([`JoinStats::batch_cut_paths`]).
    pub fn join_each(
        &self,
        hold_from: Option<i64>,
        number: impl FnOnce(&[i64]) -> Vec<u64>,
        mut emit: impl FnMut(Path),
    ) -> (JoinStats, Vec<ObservationId>) {
        let cfg = &self.config;
        let mut stats = JoinStats::default();
        // Dense point ids (capture points in index order, then one per conntrack scope), so
        // that no point index taken from the input sizes a table.
        let mut seen_points: Vec<u32> = self.inputs.iter().map(|(_, f)| f.point).collect();
        seen_points.sort_unstable();
        seen_points.dedup();
        let mut labels: Vec<Arc<str>> = seen_points
            .iter()
            .map(|&p| Arc::from(self.label(p)))
            .collect();
        let mut nss: Vec<Option<Netns>> = seen_points.iter().map(|&p| self.netns(p)).collect();
        let dense = |p: u32| seen_points.binary_search(&p).unwrap_or(0) as u32;
        let real: Vec<Ob<'_>> = self
            .inputs
            .iter()
            .filter(|(_, f)| !f.is_empty())
            .map(|&(id, f)| Ob::new(f, Some(id), dense(f.point)))
            .collect();
        stats.observations = real.len() as u64;

        // Conntrack: links, and synthetic observations (with their own points).
        let plan = leg::conntrack_plan(&real, &self.conntrack, &nss, cfg);
        let mut synth_tuples: Vec<(SocketAddr, SocketAddr)> =
            Vec::with_capacity(plan.synthetic.len());
        let mut synth_meta: Vec<(usize, u32, u32)> = Vec::with_capacity(plan.synthetic.len());
        for &(ei, orig, anchor) in &plan.synthetic {
            let (e, label) = &self.conntrack[ei];
            synth_tuples.push(if orig {
                (e.orig.src_addr(), e.orig.dst_addr())
            } else {
                (e.reply.dst_addr(), e.reply.src_addr())
            });
            let point = match labels[seen_points.len()..]
                .iter()
                .position(|l| **l == **label)
            {
                Some(k) => seen_points.len() + k,
                None => {
                    labels.push(Arc::from(label.as_str()));
                    nss.push(Some(e.netns.clone()));
                    labels.len() - 1
                }
            };
            synth_meta.push((ei, anchor, point as u32));
        }
        let n_real = real.len();
        // Without synthetic observations (no conntrack), the real ones are all (no copy).
        let mut obs = if synth_meta.is_empty() {
            real
        } else {
            let mut obs = Vec::with_capacity(real.len() + synth_meta.len());
            obs.extend_from_slice(&real);
            for (t, &(ei, anchor, point)) in synth_tuples.iter().zip(&synth_meta) {
                obs.push(Ob::synthetic(&real[anchor as usize], t, ei, point));
            }
            obs
        };
        stats.synthetic = synth_meta.len() as u64;

        // Leg links: scored candidates, conntrack links, synthetic links.
        let pairs = leg::candidates(&obs, cfg, &mut stats);
        let mut links = leg::links(&obs, &pairs, cfg, &mut stats);
        links.extend(plan.links);
        for (i, &(ei, anchor, _)) in synth_meta.iter().enumerate() {
            let e = &self.conntrack[ei].0;
            let ev = Evidence::Conntrack { id: e.id };
            links.push(leg::LegLink {
                a: anchor,
                b: (n_real + i) as u32,
                score: evidence::points::CONNTRACK,
                evidence: {
                    let mut l = evidence::LinkEvidence::default();
                    l.add(&ev);
                    l
                },
                flipped: false,
            });
        }
        links.sort_unstable_by(|x, y| y.score.cmp(&x.score).then((x.a, x.b).cmp(&(y.a, y.b))));
        let mut clusters = Clusters::new(obs.len());
        let mut accepted: Vec<usize> = Vec::new();
        for (i, l) in links.iter().enumerate() {
            match clusters.try_union(l.a, l.b, &obs, cfg.max_leg_observations) {
                Ok(true) => accepted.push(i),
                Ok(false) => {}
                Err(()) => stats.leg_conflicts += 1,
            }
        }
        stats.leg_links = accepted.len() as u64;
        leg::orient(&mut obs, &links, &accepted, &mut clusters);

        // Legs, in order of their first observation.
        let mut roots: Vec<u32> = Vec::new();
        let mut seen = vec![false; obs.len()];
        for i in 0..obs.len() as u32 {
            let r = clusters.find(i);
            if !seen[r as usize] {
                seen[r as usize] = true;
                roots.push(r);
            }
        }
        let is_orig = |ei: usize, o: &Ob<'_>| {
            let e = &self.conntrack[ei].0;
            leg::same_tuple(
                (o.client(), o.server()),
                (e.orig.src_addr(), e.orig.dst_addr()),
            )
        };
        let owner_of = |v: &View, client_side: bool| -> Option<Owner> {
            let o = v.main(&obs);
            if let Some(w) = o.owner(client_side) {
                return Some(w.clone());
            }
            if self.sockets.is_empty() {
                return None;
            }
            let (local, remote) = if client_side {
                (o.client(), o.server())
            } else {
                (o.server(), o.client())
            };
            let ns = nss.get(v.point as usize).and_then(|n| n.as_ref());
            self.sockets
                .get(&(o.f.proto, canon(local), canon(remote)))
                .and_then(|list| {
                    list.iter()
                        .find(|(n, _)| n.is_none() || ns.is_none() || n.as_ref() == ns)
                        .map(|(_, w)| w.clone())
                })
        };
        let mut leg_of_obs = vec![0u32; obs.len()];
        let mut sums: Vec<LegSum<'_>> = Vec::with_capacity(roots.len());
        let mut ends: Vec<path::Ends> = Vec::with_capacity(roots.len());
        for (li, &r) in roots.iter().enumerate() {
            for &m in clusters.members(r) {
                leg_of_obs[m as usize] = li as u32;
            }
            let vs = view::views(clusters.members(r), &obs, &is_orig);
            let (vs, hops) = vs;
            let mut sum = LegSum::new(vs, &obs, &owner_of);
            sum.hops = hops;
            sum.observations = self.observations_out(&sum.views, &obs, &labels);
            ends.push(sum.ends());
            sums.push(sum);
        }
        stats.legs = sums.len() as u64;

        // Path edges and the matching.
        let ppairs = path::candidates(&sums, cfg, &mut stats);
        let (mut edges, mut near) = path::edges(&sums, &ends, &ppairs, &obs, &nss, cfg, &mut stats);
        path::drop_reversed(&ends, &mut edges, &mut near, &mut stats);
        stats.path_edges = edges.len() as u64;
        let choice = path::choose(&edges, &near, cfg, &mut stats);
        for &(i, legs) in &choice.eliminated {
            edges[i].evidence.push(Scored {
                evidence: Evidence::Elimination { legs },
                points: 0,
                between: None,
            });
        }
        stats.path_links = choice.accepted.len() as u64;
        stats.ambiguous_hops = choice.ambiguous.len() as u64;
        stats.undecidable_hops = choice.undecidable.len() as u64;
        let mut next: Vec<Option<usize>> = vec![None; sums.len()];
        let mut prev: Vec<Option<usize>> = vec![None; sums.len()];
        for &i in &choice.accepted {
            let e = &edges[i];
            next[e.up as usize] = Some(i);
            prev[e.down as usize] = Some(i);
        }
        // A path never passes one listening socket twice: two legs of a chain with the same
        // server endpoint at the same point (nearest the server) are two connections to the
        // same server, i.e. two paths that identical bytes chained head to tail (A's last
        // leg -> B's first leg). The weakest hop between them is cut, until none is left.
        let server_at = |l: usize| ends[l][1].map(|(p, a)| (p, canon(a)));
        for head in 0..sums.len() {
            if prev[head].is_some() || next[head].is_none() {
                continue;
            }
            let mut start = head;
            'chain: loop {
                // Legs from `start` on, with the hop into each.
                let mut legs: Vec<(usize, Option<usize>)> = vec![(start, None)];
                let mut cur = start;
                while let Some(ei) = next[cur] {
                    cur = edges[ei].down as usize;
                    if legs.iter().any(|&(l, _)| l == cur) || legs.len() > sums.len() {
                        break;
                    }
                    legs.push((cur, Some(ei)));
                }
                for j in 1..legs.len() {
                    let Some(sj) = server_at(legs[j].0) else {
                        continue;
                    };
                    if let Some(i) = (0..j).find(|&i| server_at(legs[i].0) == Some(sj)) {
                        // Weakest hop among those between legs i and j.
                        let cut = (i + 1..=j)
                            .filter_map(|k| legs[k].1)
                            .min_by_key(|&ei| (edges[ei].score, std::cmp::Reverse(ei)));
                        if let Some(ei) = cut {
                            let e = &edges[ei];
                            next[e.up as usize] = None;
                            prev[e.down as usize] = None;
                            stats.path_loops_cut += 1;
                            stats.path_links = stats.path_links.saturating_sub(1);
                            start = e.down as usize;
                            continue 'chain;
                        }
                    }
                }
                break;
            }
        }
        // Chains from their heads.
        // Every chain's legs in one vector (`chained[range]`, most chains are one leg).
        let mut chained: Vec<u32> = Vec::with_capacity(sums.len());
        let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
        let mut placed = vec![false; sums.len()];
        for head in 0..sums.len() {
            if prev[head].is_some() {
                continue;
            }
            let start = chained.len();
            chained.push(head as u32);
            placed[head] = true;
            let mut cur = head;
            while let Some(ei) = next[cur] {
                let d = edges[ei].down as usize;
                if placed[d] {
                    break;
                }
                placed[d] = true;
                chained.push(d as u32);
                cur = d;
            }
            ranges.push(start..chained.len());
        }
        // Anything left (cannot happen: edges go forward in time) becomes its own path.
        for (i, p) in placed.iter().enumerate() {
            if !p {
                chained.push(i as u32);
                ranges.push(chained.len() - 1..chained.len());
            }
        }
        ranges.sort_unstable_by_key(|r| {
            let c = &chained[r.clone()];
            (
                c.iter().map(|&l| sums[l as usize].first).min().unwrap_or(0),
                c[0],
            )
        });
        let chains: Vec<&[u32]> = ranges.iter().map(|r| &chained[r.clone()]).collect();
        let mut path_of_leg = vec![(0u64, 0usize); sums.len()];
        for (pi, c) in chains.iter().enumerate() {
            for (k, &l) in c.iter().enumerate() {
                path_of_leg[l as usize] = (pi as u64 + 1, k);
            }
        }
        stats.paths = chains.len() as u64;

        // The model.
        // Accepted links grouped by leg: `by_leg[starts[l]..starts[l + 1]]`.
        let mut by_leg: Vec<(u32, usize)> = accepted
            .iter()
            .map(|&i| (leg_of_obs[links[i].a as usize], i))
            .collect();
        by_leg.sort_unstable();
        let mut starts = vec![0usize; sums.len() + 1];
        for &(l, _) in &by_leg {
            starts[l as usize + 1] += 1;
        }
        for l in 0..sums.len() {
            starts[l + 1] += starts[l];
        }
        let link_ids: Vec<usize> = by_leg.iter().map(|x| x.1).collect();
        let firsts: Vec<i64> = chains
            .iter()
            .map(|c| c.iter().map(|&l| sums[l as usize].first).min().unwrap_or(0))
            .collect();
        // Held back (see above): by leg end, then closed over the ambiguity notes, so that
        // no note names a path not written with it.
        let mut held = vec![false; chains.len()];
        let mut held_ids: Vec<ObservationId> = Vec::new();
        if let Some(bound) = hold_from {
            // Each path's latest end and the spread of its observations' ends.
            let ends: Vec<(i64, i64)> = chains
                .iter()
                .map(|c| {
                    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
                    for v in c.iter().flat_map(|&l| sums[l as usize].views.iter()) {
                        if v.synthetic(&obs).is_none() {
                            let last = v.last(&obs);
                            (lo, hi) = (lo.min(last), hi.max(last));
                        }
                    }
                    if hi < lo { (sums[c[0] as usize].last, 0) } else { (hi, hi.saturating_sub(lo)) }
                })
                .collect();
            let latest = ends.iter().map(|e| e.0).max().unwrap_or(0);
            let spread = ends.iter().map(|e| e.1).max().unwrap_or(0);
            let window = spread.saturating_mul(2).clamp(HOLD_WINDOW_MIN_NS, cfg.leg_window_ns.max(HOLD_WINDOW_MIN_NS));
            let near = latest.saturating_sub(window);
            for (pi, &(end, _)) in ends.iter().enumerate() {
                held[pi] = end >= near.max(bound);
                if end >= near && !held[pi] {
                    stats.batch_cut_paths += 1;
                }
            }
            let path_index = |leg: u32| path_of_leg[leg as usize].0 as usize - 1;
            loop {
                let mut changed = false;
                for &i in &choice.ambiguous {
                    let (a, b) = (path_index(edges[i].up), path_index(edges[i].down));
                    if held[a] != held[b] {
                        (held[a], held[b], changed) = (true, true, true);
                    }
                }
                if !changed {
                    break;
                }
            }
            for (c, _) in chains.iter().zip(&held).filter(|(_, h)| **h) {
                stats.paths -= 1;
                stats.legs -= c.len() as u64;
                for v in c.iter().flat_map(|&l| sums[l as usize].views.iter()) {
                    let members: &[u32] = if v.c2s == v.s2c { &[v.c2s] } else { &[v.c2s, v.s2c] };
                    for &m in members {
                        match obs[m as usize].id {
                            Some(id) => {
                                held_ids.push(id);
                                stats.observations -= 1;
                            }
                            None => stats.synthetic = stats.synthetic.saturating_sub(1),
                        }
                    }
                }
            }
        }
        let emitted: Vec<usize> = (0..chains.len()).filter(|&pi| !held[pi]).collect();
        let ids = number(&emitted.iter().map(|&pi| firsts[pi]).collect::<Vec<i64>>());
        let mut id_by_chain = vec![0u64; chains.len()];
        for (k, &pi) in emitted.iter().enumerate() {
            id_by_chain[pi] = ids.get(k).copied().unwrap_or(k as u64 + 1);
        }
        let id_of = |pi: usize| id_by_chain[pi];
        // Ambiguity notes by path index (few: most batches have none).
        let mut notes: HashMap<usize, Vec<model::Ambiguity>> = HashMap::new();
        for &i in &choice.ambiguous {
            let e = &edges[i];
            let (up_path, up_leg) = path_of_leg[e.up as usize];
            let (down_path, down_leg) = path_of_leg[e.down as usize];
            let (up_pi, down_pi) = (up_path as usize - 1, down_path as usize - 1);
            if held[up_pi] {
                continue;
            }
            let fitting = choice
                .undecidable
                .binary_search_by_key(&i, |&(k, _)| k)
                .ok()
                .map(|k| choice.undecidable[k].1);
            let mut note = |pi: usize, leg: usize, side: &'static str, cand: model::Candidate| {
                let list = notes.entry(pi).or_default();
                match list.iter_mut().find(|a| a.leg == leg && a.side == side) {
                    Some(a) => {
                        a.candidates.push(cand);
                        a.fitting_pairings = a.fitting_pairings.max(fitting);
                    }
                    None => list.push(model::Ambiguity {
                        leg,
                        side,
                        candidates: vec![cand],
                        fitting_pairings: fitting,
                    }),
                }
            };
            note(
                up_pi,
                up_leg,
                "downstream",
                model::Candidate {
                    path: id_of(down_pi),
                    leg: down_leg,
                    score: e.score,
                },
            );
            note(
                down_pi,
                down_leg,
                "upstream",
                model::Candidate {
                    path: id_of(up_pi),
                    leg: up_leg,
                    score: e.score,
                },
            );
        }
        for (pi, c) in chains.iter().enumerate() {
            if held[pi] {
                continue;
            }
            let legs_out: Vec<Leg> = c
                .iter()
                .map(|&l| {
                    self.leg_out(
                        &mut sums[l as usize],
                        &obs,
                        &links,
                        &link_ids[starts[l as usize]..starts[l as usize + 1]],
                    )
                })
                .collect();
            let mut via = Vec::new();
            for w in c.windows(2) {
                let Some(ei) = next[w[0] as usize] else {
                    continue;
                };
                let e = &mut edges[ei];
                let (u, d) = (&sums[e.up as usize], &sums[e.down as usize]);
                let process = e
                    .evidence
                    .iter()
                    .find_map(|s| match &s.evidence {
                        Evidence::Process { pid, comm } => Some(Owner {
                            pid: *pid,
                            comm: comm.to_string(),
                        }),
                        _ => None,
                    })
                    .or_else(|| d.client_owner.clone())
                    .or_else(|| u.server_owner.clone());
                let k = path_of_leg[e.up as usize].1;
                via.push(Via {
                    between: [k, k + 1],
                    process,
                    score: e.score,
                    evidence: std::mem::take(&mut e.evidence),
                });
            }
            let first_ns = firsts[pi];
            let last_ns = c.iter().map(|&l| sums[l as usize].last).max().unwrap_or(0);
            let (fl, ll) = (&sums[c[0] as usize], &sums[c[c.len() - 1] as usize]);
            let client = fl
                .views
                .iter()
                .find(|v| v.synthetic(&obs).is_none())
                .or(fl.views.first())
                .map(|v| v.client(&obs));
            let server = ll
                .views
                .iter()
                .rev()
                .find(|v| v.synthetic(&obs).is_none())
                .or(ll.views.last())
                .map(|v| v.server(&obs));
            emit(Path {
                id: id_of(pi),
                proto: match fl.proto {
                    Proto::Tcp => "tcp",
                    Proto::Udp => "udp",
                },
                client,
                server,
                first: model::unix_s(first_ns),
                last: model::unix_s(last_ns),
                legs: legs_out,
                via,
                ambiguous: notes.remove(&pi).unwrap_or_default(),
                first_ns,
                last_ns,
            });
        }
        (stats, held_ids)
    }

    /// The model observations of a leg's views (built with its summary, while their features
    /// are in the cache).
    fn observations_out(&self, views: &[View], obs: &[Ob<'_>], labels: &[Arc<str>]) -> Vec<Observation> {
        views
            .iter()
            .map(|v| {
                let main = v.main(obs);
                let mut ids = model::Ids::default();
                for m in [v.c2s, v.s2c] {
                    if let Some(i) = obs[m as usize].id {
                        ids.push(i.0);
                    }
                }
                let conntrack =
                    v.synthetic(obs)
                        .and_then(|ei| self.conntrack.get(ei))
                        .map(|(e, _)| {
                            Box::new(model::CtRef {
                                id: e.id,
                                orig: e.orig,
                                reply: e.reply,
                            })
                        });
                Observation {
                    point: labels
                        .get(v.point as usize)
                        .cloned()
                        .unwrap_or_else(|| Arc::from("?")),
                    src: main.client(),
                    dst: main.server(),
                    packets: [v.d(obs, Dir::C2s).packets, v.d(obs, Dir::S2c).packets],
                    bytes: [v.d(obs, Dir::C2s).bytes, v.d(obs, Dir::S2c).bytes],
                    first: model::unix_s(v.first(obs)),
                    last: model::unix_s(v.last(obs)),
                    source: if conntrack.is_some() {
                        Source::Conntrack
                    } else {
                        Source::Capture
                    },
                    reply: v
                        .reply(obs)
                        .map(|(src, dst)| Box::new(model::Endpoints { src, dst })),
                    ids,
                    note: None,
                    conntrack,
                }
            })
            .collect()
    }

    fn leg_out(
        &self,
        sum: &mut LegSum<'_>,
        obs: &[Ob<'_>],
        links: &[leg::LegLink],
        mine: &[usize],
    ) -> Leg {
        let views = &sum.views;
        let view_of = |m: u32| views.iter().position(|v| v.c2s == m || v.s2c == m);
        let observations = std::mem::take(&mut sum.observations);
        let mut joined: Vec<model::Link> = Vec::with_capacity(mine.len());
        let mut score: Option<i32> = None;
        for &i in mine {
            let l = &links[i];
            let (a, b) = (
                view_of(l.a).unwrap_or(0) as u32,
                view_of(l.b).unwrap_or(0) as u32,
            );
            joined.push(model::Link {
                between: [a.min(b), a.max(b)],
                score: l.score,
                evidence: l.evidence,
            });
            score = Some(score.map_or(l.score, |s| s.min(l.score)));
        }
        joined.sort_by_key(|l| l.between);
        let same = views.iter().all(|v| {
            v.reply(obs).is_none()
                && ((v.client(obs), v.server(obs)) == (views[0].client(obs), views[0].server(obs))
                    || leg::same_tuple(
                        (v.client(obs), v.server(obs)),
                        (views[0].client(obs), views[0].server(obs)),
                    ))
        });
        let kind = if views.len() <= 1 && views.iter().all(|v| !v.merged()) {
            JoinKind::None
        } else if same {
            JoinKind::SameTuple
        } else {
            JoinKind::Nat
        };
        let hops = std::mem::take(&mut sum.hops);
        let rewrite = match (views.first(), views.last()) {
            (Some(a), Some(b)) => {
                let pair = |x: SocketAddr, y: SocketAddr| (x != y).then_some([x, y]);
                let r = model::Rewrite {
                    src: pair(a.client(obs), b.client(obs)),
                    dst: pair(a.server(obs), b.server(obs)),
                };
                (r.src.is_some() || r.dst.is_some()).then(|| Box::new(r))
            }
            _ => None,
        };
        let process = (sum.client_owner.is_some() || sum.server_owner.is_some()).then(|| {
            Box::new(model::LegProcess {
                client: sum.client_owner.clone(),
                server: sum.server_owner.clone(),
            })
        });
        Leg {
            observations,
            join: model::LegJoin {
                kind,
                score: score.unwrap_or(0),
                links: joined,
            },
            process,
            hops,
            rewrite,
        }
    }
}

#[cfg(test)]
mod tests;
