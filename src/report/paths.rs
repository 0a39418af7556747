//! Joined `--flows`: the finished records' observations joined into legs and paths
//! ([`crate::join`]), printed as a tree (`--flows`) or one JSON object per path
//! (`--flows=json`).
//!
//! ## Contract
//!
//! * Input: finished [`FlowRecord`]s, the [`ObservationFeatures`] of the TCP and UDP ones
//!   in one [`BatchFeatures`] block (the report turns
//!   [`FlowConfig::features`](crate::flow::FlowConfig) on, and copies each ended flow's
//!   features there), and [`JoinEvidence`]: conntrack
//!   entries (`--conntrack`, or live watchers), socket owners (live attribution), the
//!   namespace of each live capture point.
//! * [`join_batch`] writes every record exactly once: TCP/UDP observations as the joiner
//!   placed them, ICMP flows (and anything without features) as paths of one leg of one
//!   observation. Paths are numbered by first packet from the batch's first id, and written
//!   as the joiner builds them ([`Joiner::join_each`]), 64 at a time: a batch's output is
//!   never held as a whole model.
//! * Ids: an observation's `ids` (JSON) and `#ID` (text) are the flow table's ids, the ones
//!   `--follow ID` and `--streams` (file names, `index.json`) use. Path ids are a separate
//!   numbering (`"id"` of a JSON line, `path N` in the tree).
//! * JSON: each line is the model's shape (see `crate::join::model`) with each
//!   captured observation's added fields from its record (`duration`, `conn_state`,
//!   `history`, `end`, `tcp_state`, `isn`, `stream`, `analysis`, `rtt`; see
//!   `report::json`); for two half observations merged into one, those of the first.

use super::json::{Details, details};
use crate::conntrack::CtEntry;
use crate::flow::FlowRecord;
use crate::join::model::Ids;
use crate::join::{
    JoinConfig, JoinKind, Joiner, Leg, LegJoin, Observation, ObservationFeatures, ObservationId, Owner, Path,
    Proto, Source,
};
use crate::json::addr_opt;
use crate::netns::Netns;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// What the joiner learns besides packets.
#[derive(Debug, Default, Clone)]
pub struct JoinEvidence {
    /// Conntrack entries. With a scope (offline `--conntrack NETNS=FILE`) their synthetic
    /// observations are labelled `SCOPE/conntrack`, else `NETNS/conntrack` by the entry's
    /// namespace.
    pub conntrack: Vec<(CtEntry, Option<Arc<str>>)>,
    /// Owners of sockets (live attribution).
    pub owners: Vec<SocketOwner>,
    /// The namespace of each live capture point, by point index (offline: none, which
    /// matches any namespace).
    pub point_netns: HashMap<u32, Netns>,
}

/// Evidence for a batch of records joined before a live capture ends (the held records
/// reached their bound): what was gathered so far that bears on `records`
/// ([`crate::evidence::EvidenceSoFar`]). Asked once per batch, on the report's thread, when
/// the batch is handed to the joiner.
pub trait EarlyEvidence: Send {
    fn for_batch(&self, records: &[FlowRecord]) -> JoinEvidence;
}

/// The process holding the socket `local -> remote` in `netns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketOwner {
    pub netns: Netns,
    pub proto: Proto,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub owner: Owner,
}

/// The joiner features of a batch's records, in the order their flows ended: one block for
/// the whole batch, so that no record costs an allocation or a free for them, and the
/// block is reused batch after batch (the report sizes it once for its batch bound).
#[derive(Debug, Default)]
pub struct BatchFeatures {
    /// Flow id of each entry of `items`.
    ids: Vec<u64>,
    items: Vec<ObservationFeatures>,
}

impl BatchFeatures {
    /// What one entry costs, an upper bound: the features as the flow table counts them
    /// ([`FlowTable::FEATURES_BYTES`](crate::flow::FlowTable::FEATURES_BYTES)) and the id.
    pub const ENTRY_BYTES: usize = crate::flow::FlowTable::FEATURES_BYTES + std::mem::size_of::<u64>();

    pub fn with_capacity(n: usize) -> BatchFeatures {
        BatchFeatures { ids: Vec::with_capacity(n), items: Vec::with_capacity(n) }
    }

    /// The features of flow `id` (copied in).
    pub fn push(&mut self, id: u64, features: &ObservationFeatures) {
        self.ids.push(id);
        self.items.push(features.clone());
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.items.capacity()
    }

    pub fn clear(&mut self) {
        self.ids.clear();
        self.items.clear();
    }

    /// `(flow id, index)` of every entry, by id.
    fn by_id(&self) -> Vec<(u64, u32)> {
        let mut v: Vec<(u64, u32)> = self.ids.iter().enumerate().map(|(i, &id)| (id, i as u32)).collect();
        v.sort_unstable();
        v
    }
}

/// A joiner holding `records` (sorted by id) with their `features` (see the module docs)
/// and the evidence of every part of `evidence`, in order (a point's namespace: the first
/// part that knows it); and the records it does not hold (no features: ICMP), which become
/// paths of their own.
fn joiner<'r>(
    records: &'r [FlowRecord],
    features: &'r BatchFeatures,
    evidence: &[&JoinEvidence],
) -> (Joiner<'r>, Vec<&'r FlowRecord>) {
    let mut j = Joiner::new(JoinConfig::default());
    let mut labelled: Vec<u32> = Vec::new();
    for r in records {
        let p = r.info.point_index;
        if let Err(k) = labelled.binary_search(&p) {
            labelled.insert(k, p);
            j.set_point(p, &*r.info.point, evidence.iter().find_map(|e| e.point_netns.get(&p)).cloned());
        }
    }
    let mut loose: Vec<&FlowRecord> = Vec::new();
    // Both by id: each record's features, if any, are the next entry not before it.
    let by_id = features.by_id();
    let mut next = by_id.iter().peekable();
    for r in records {
        while next.next_if(|&&(id, _)| id < r.info.id).is_some() {}
        let f = next.next_if(|&&(id, _)| id == r.info.id).and_then(|&(_, i)| features.items.get(i as usize));
        match f {
            Some(f) if !f.is_empty() => j.add_observation(ObservationId(r.info.id), f),
            _ => loose.push(r),
        }
    }
    for (e, scope) in evidence.iter().flat_map(|e| &e.conntrack) {
        match scope {
            Some(s) => j.add_conntrack_in(e, s),
            None => j.add_conntrack(e),
        }
    }
    for o in evidence.iter().flat_map(|e| &e.owners) {
        j.add_socket_owner(Some(o.netns.clone()), o.proto, o.local, o.remote, o.owner.clone());
    }
    (j, loose)
}

/// Where a batch's output goes, a buffer of about [`CHUNK`] bytes at a time.
pub trait Sink {
    /// Takes the bytes of `buf`, leaving it empty (with room for the next chunk): written
    /// and cleared ([`Direct`]), or handed on whole for an empty buffer (the join thread's
    /// output: its chunks are never copied).
    fn put(&mut self, buf: &mut Vec<u8>) -> std::io::Result<()>;
}

/// A [`Sink`] writing to a writer.
pub struct Direct<'a>(pub &'a mut dyn std::io::Write);

impl Sink for Direct<'_> {
    fn put(&mut self, buf: &mut Vec<u8>) -> std::io::Result<()> {
        self.0.write_all(buf)?;
        buf.clear();
        Ok(())
    }
}

/// Output is handed to the [`Sink`] once this much is buffered.
pub const CHUNK: usize = 1 << 18;
/// Room of a chunk's buffer: a chunk ends with the first path line past [`CHUNK`].
pub const CHUNK_ROOM: usize = CHUNK + CHUNK / 4;

/// Records held back from a batch, with their features, for the next one (see
/// [`join_batch`]).
pub type Carried = Vec<(FlowRecord, ObservationFeatures)>;

/// One batch of finished records joined and written (`--flows=json` lines, or the `--flows`
/// tree) to `out`, paths numbered from `*next_path` (advanced past them). The records are
/// sorted by id first; those not held back stay in `records` for the caller to free (on the
/// thread that allocated them: cheaper for the allocator), the features' block is left empty
/// for a later batch. Used the same way inline and
/// on the report's join thread, so both write the same bytes. `evidence` as for `joiner`.
///
/// With `hold` (every batch but the last), the paths that may still grow are held back:
/// those with an observation whose last packet came near the batch's latest one (see
/// [`Joiner::join_each`]; at most about the latest quarter of the batch's records, and
/// `hold` bytes of them as held records count them). Their records come back, with their features,
/// to be joined again with the next batch: a path whose legs end on both sides of a batch
/// boundary (a forwarder closes one leg as the other one closes, and their records end a
/// few milliseconds apart) is not cut in two there.
pub fn join_batch(
    records: &mut Vec<FlowRecord>,
    features: &mut BatchFeatures,
    evidence: &[&JoinEvidence],
    next_path: &mut u64,
    json: bool,
    hold: Option<usize>,
    out: &mut dyn Sink,
) -> (std::io::Result<()>, crate::join::JoinStats, Carried) {
    // Records end roughly in id order: sorting is cheap, and moves only small records. In
    // place: the stable sort merges the runs it finds in a third of the instructions, but
    // with a scratch copy of up to the whole batch that no memory bound counts.
    records.sort_unstable_by_key(|r| r.info.id);
    let (r, stats, held) = {
        let (j, mut loose) = joiner(records, features, evidence);
        let hold = hold.and_then(|most| hold_bound(records, most));
        // Paths of one record, by first packet (ties: by id, the order they come in).
        loose.sort_by_key(|r| r.first.0);
        let first = *next_path;
        let index = Records::new(records);
        let mut w = PathWriter::new(out, json, &index);
        // Paths are numbered by first packet, the joiner's before single records on a tie
        // (ambiguity notes name the joiner's by these numbers): the two orders merged.
        let number = |firsts: &[i64]| {
            let mut k = 0;
            (0..firsts.len())
                .map(|i| {
                    while loose.get(k).is_some_and(|r| r.first.0 < firsts[i]) {
                        k += 1;
                    }
                    first.saturating_add((i + k) as u64)
                })
                .collect()
        };
        // Written so far: single records (`loose[..singles]`) and joiner paths.
        let (mut singles, mut joined) = (0usize, 0usize);
        let (mut stats, held) = j.join_each(hold, number, |p| {
            while loose.get(singles).is_some_and(|r| r.first.0 < p.first_ns) {
                w.write(single(loose[singles], first.saturating_add((singles + joined) as u64)));
                singles += 1;
            }
            w.write(p);
            joined += 1;
        });
        for &r in &loose[singles..] {
            w.write(single(r, first.saturating_add((singles + joined) as u64)));
            singles += 1;
        }
        stats.paths = (singles + joined) as u64;
        *next_path = first.saturating_add(stats.paths);
        (w.finish(), stats, held)
    };
    let mut carried = Carried::new();
    if !held.is_empty() {
        let mut held: Vec<u64> = held.into_iter().map(|id| id.0).collect();
        held.sort_unstable();
        let by_id = features.by_id();
        let feature = |id: u64| {
            by_id
                .binary_search_by_key(&id, |x| x.0)
                .ok()
                .and_then(|k| features.items.get(by_id[k].1 as usize))
        };
        // Taken out in id order (every held record has features: the joiner held it); the
        // others stay, for the caller to free.
        for r in records.extract_if(.., |r| held.binary_search(&r.info.id).is_ok()) {
            if let Some(f) = feature(r.info.id) {
                carried.push((r, f.clone()));
            }
        }
    }
    features.clear();
    (r, stats, carried)
}

/// How far back [`join_batch`] may hold paths back ([`Joiner::join_each`]): from the last
/// packet of the batch's latest records, a quarter of them at most and `most` bytes at most
/// (as held records count them), so that most of every batch is written and what is held
/// back stays bounded; `None` for an empty batch.
fn hold_bound(records: &[FlowRecord], most: usize) -> Option<i64> {
    let mut lasts: Vec<(i64, usize)> = records
        .iter()
        .map(|r| (r.last.0, r.heap_bytes() + BatchFeatures::ENTRY_BYTES))
        .collect();
    if lasts.is_empty() {
        return None;
    }
    let quarter = lasts.len() - lasts.len() * 3 / 4;
    // The latest quarter (and the next record, to compare with), latest first: only they
    // are sorted.
    let take = (quarter + 1).min(lasts.len());
    if take < lasts.len() {
        lasts.select_nth_unstable_by(take - 1, |a, b| b.cmp(a));
    }
    lasts[..take].sort_unstable_by(|a, b| b.cmp(a));
    let (mut count, mut bytes, mut from) = (0, 0, i64::MAX);
    for &(last, b) in &lasts[..take] {
        if count == quarter || bytes + b > most {
            break;
        }
        (count, bytes, from) = (count + 1, bytes + b, last);
    }
    // Holding is by time: a record left out that ends at the same instant as the last one
    // kept would be held with it, so start just after that instant instead.
    Some(if count < lasts.len() && lasts[count].0 == from { from.saturating_add(1) } else { from })
}

/// Paths a [`PathWriter`] holds before writing them out.
const PENDING_PATHS: usize = 64;

/// Writes paths in order (`--flows=json` lines, or the `--flows` tree), [`PENDING_PATHS`]
/// at a time: the joiner builds a run of paths, then they are all formatted, so neither
/// loop's code pushes the other's out of the instruction cache (path by path, the two
/// alternated). Hands its buffer to the sink every [`CHUNK`] bytes; after the first error
/// it writes nothing more.
struct PathWriter<'a, 'r> {
    sink: &'a mut dyn Sink,
    buf: Vec<u8>,
    pending: Vec<Path>,
    result: std::io::Result<()>,
    json: bool,
    records: &'a Records<'r>,
}

impl<'a, 'r> PathWriter<'a, 'r> {
    fn new(sink: &'a mut dyn Sink, json: bool, records: &'a Records<'r>) -> Self {
        PathWriter {
            sink,
            buf: Vec::with_capacity(CHUNK_ROOM),
            pending: Vec::with_capacity(PENDING_PATHS),
            result: Ok(()),
            json,
            records,
        }
    }

    fn write(&mut self, p: Path) {
        if self.result.is_ok() {
            self.pending.push(p);
            if self.pending.len() >= PENDING_PATHS {
                self.flush_pending();
            }
        }
    }

    fn flush_pending(&mut self) {
        for mut p in self.pending.drain(..) {
            if self.result.is_err() {
                break;
            }
            self.result = if self.json {
                write_path(&mut self.buf, &p, self.records)
            } else {
                write_tree(&mut self.buf, &mut p, self.records);
                Ok(())
            };
            if self.result.is_ok() && self.buf.len() >= CHUNK {
                self.result = self.sink.put(&mut self.buf);
            }
        }
    }

    fn finish(mut self) -> std::io::Result<()> {
        self.flush_pending();
        self.result?;
        if self.buf.is_empty() {
            return Ok(());
        }
        self.sink.put(&mut self.buf)
    }
}

/// A record without features (ICMP) as a path of one leg of one observation.
fn single(r: &FlowRecord, id: u64) -> Path {
    let addr = |e: crate::flow::Endpoint| SocketAddr::new(e.addr, e.port);
    let mut ids = Ids::default();
    ids.push(r.info.id);
    let (src, dst) = (addr(r.info.client), addr(r.info.server));
    let o = Observation {
        point: r.info.point.clone(),
        src,
        dst,
        packets: r.packets,
        bytes: r.bytes,
        first: r.first.as_secs_f64(),
        last: r.last.as_secs_f64(),
        source: Source::Capture,
        reply: None,
        ids,
        conntrack: None,
        note: None,
    };
    Path {
        id,
        proto: r.info.proto.name(),
        client: Some(src),
        server: Some(dst),
        first: o.first,
        last: o.last,
        legs: vec![Leg {
            observations: vec![o],
            join: LegJoin { kind: JoinKind::None, score: 0, links: Vec::new() },
            process: None,
            hops: Vec::new(),
            rewrite: None,
        }],
        via: Vec::new(),
        ambiguous: Vec::new(),
        first_ns: r.first.0,
        last_ns: r.last.0,
    }
}

/// Record index by flow id, over records sorted by id.
struct Records<'a> {
    all: &'a [FlowRecord],
    /// Lowest id, and the position + 1 of the record with id `base + i` at `slot[i]` (0:
    /// none) when ids are dense enough (a batch's ids mostly are: a few slots per record),
    /// else empty: a binary search then. A path's observations have ids all over the
    /// batch, so lookups are random and a search misses the cache at every step.
    base: u64,
    slot: Vec<u32>,
}

impl<'a> Records<'a> {
    fn new(all: &'a [FlowRecord]) -> Records<'a> {
        debug_assert!(all.is_sorted_by_key(|r| r.info.id));
        let (Some(first), Some(last)) = (all.first(), all.last()) else {
            return Records { all, base: 0, slot: Vec::new() };
        };
        let span = last.info.id - first.info.id + 1;
        let mut slot = Vec::new();
        if span <= 4 * all.len() as u64 + 64 && all.len() < u32::MAX as usize {
            slot = vec![0u32; span as usize];
            for (i, r) in all.iter().enumerate() {
                slot[(r.info.id - first.info.id) as usize] = i as u32 + 1;
            }
        }
        Records { all, base: first.info.id, slot }
    }

    /// The record with flow id `id`.
    fn get(&self, id: &u64) -> Option<&'a FlowRecord> {
        if self.slot.is_empty() {
            let i = self.all.binary_search_by_key(id, |r| r.info.id).ok()?;
            return self.all.get(i);
        }
        let at = id.checked_sub(self.base)?;
        let i = *self.slot.get(usize::try_from(at).ok()?)?;
        self.all.get(i.checked_sub(1)? as usize)
    }
}

/// `--flows=json`: one line per path.
fn write_path(buf: &mut Vec<u8>, p: &Path, records: &Records<'_>) -> std::io::Result<()> {
    crate::json::line(buf, &PathOut { p, r: records })
}

struct PathOut<'a> {
    p: &'a Path,
    r: &'a Records<'a>,
}

struct Addr(Option<SocketAddr>);

impl Serialize for Addr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        addr_opt(&self.0, s)
    }
}

impl Serialize for PathOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let p = self.p;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &p.id)?;
        m.serialize_entry("proto", p.proto)?;
        m.serialize_entry("client", &Addr(p.client))?;
        m.serialize_entry("server", &Addr(p.server))?;
        m.serialize_entry("first", &p.first)?;
        m.serialize_entry("last", &p.last)?;
        m.serialize_entry("legs", &LegsOut { legs: &p.legs, r: self.r })?;
        m.serialize_entry("via", &p.via)?;
        if !p.ambiguous.is_empty() {
            m.serialize_entry("ambiguous", &p.ambiguous)?;
        }
        m.end()
    }
}

struct LegsOut<'a> {
    legs: &'a [Leg],
    r: &'a Records<'a>,
}

impl Serialize for LegsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut q = s.serialize_seq(Some(self.legs.len()))?;
        for l in self.legs {
            q.serialize_element(&LegOut { l, r: self.r })?;
        }
        q.end()
    }
}

struct LegOut<'a> {
    l: &'a Leg,
    r: &'a Records<'a>,
}

impl Serialize for LegOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let l = self.l;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("observations", &ObsList { obs: &l.observations, r: self.r })?;
        m.serialize_entry("join", &l.join)?;
        m.serialize_entry("process", &l.process)?;
        m.serialize_entry("hops", &l.hops)?;
        if let Some(r) = &l.rewrite {
            m.serialize_entry("rewrite", r)?;
        }
        m.end()
    }
}

struct ObsList<'a> {
    obs: &'a [Observation],
    r: &'a Records<'a>,
}

impl Serialize for ObsList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut q = s.serialize_seq(Some(self.obs.len()))?;
        for o in self.obs {
            let details = o.ids.iter().next().and_then(|id| self.r.get(id)).map(|r| details(r));
            q.serialize_element(&ObsOut { o, details })?;
        }
        q.end()
    }
}

#[derive(Serialize)]
struct ObsOut<'a> {
    #[serde(flatten)]
    o: &'a Observation,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    details: Option<Details<'a>>,
}

/// `--flows` text: the tree of a path ([`crate::join`]'s `Display`), every captured
/// observation followed by its record's state, history and analysis (as the table without
/// joins shows them).
fn write_tree(buf: &mut Vec<u8>, p: &mut Path, records: &Records<'_>) {
    use std::io::Write;
    for o in p.legs.iter_mut().flat_map(|l| l.observations.iter_mut()) {
        let notes: Vec<String> = o
            .ids
            .as_slice()
            .iter()
            .filter_map(|id| records.get(id))
            .map(|r| {
                let a = super::table::analysis_text(r);
                let mut n = format!("{} {}", r.conn_state, if r.history.is_empty() { "-" } else { &r.history });
                if a != "-" {
                    n.push_str("  ");
                    n.push_str(&a);
                }
                n
            })
            .collect();
        if !notes.is_empty() {
            o.note = Some(notes.join(" | ").into());
        }
    }
    let _ = write!(buf, "{p}");
}
