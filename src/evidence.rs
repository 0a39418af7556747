//! Live evidence for the joiner, gathered off the packet path: the conntrack table of every
//! namespace a live capture runs in, and the processes owning the sockets of new
//! connections.
//!
//! ```text
//!  ConntrackWatcher per namespace --CtUpdate--> conntrack thread: entries by (netns, id | tuple)
//!                                                   | rewritten entries: pre-NAT socket
//!  capture threads (SYN, first UDP) --try_send--+   v
//!  FlowReport (new flow)            --try_send--+-> attribution thread: ProcessIndex (sock_diag)
//!                                                   v
//!              both stores, shared: EvidenceSoFar::for_records -> JoinEvidence of one batch
//!                                                                 (batches joined early)
//!                              LiveEvidence::finish -> JoinEvidence (conntrack, socket owners)
//! ```
//!
//! ## Contract
//!
//! * [`LiveEvidence::start`] never fails: a namespace whose conntrack cannot be watched (not
//!   root, no conntrack) is noted in [`EvidenceStats::conntrack_unavailable`], and the join
//!   goes on without it.
//! * Requests come from two places, each one `try_send` to a bounded queue ([`QUEUE`]; a
//!   full queue drops the request and counts it, `attribution_dropped`): the capture
//!   threads ([`SocketTap`], in `LiveOptions::tap`) on every SYN without ACK and on the
//!   first datagram of a UDP tuple, as soon as libpcap hands the frame over (each point
//!   has a small immediate-mode handle for these, see `live::TRIGGER_FILTER`, so that is
//!   within a millisecond or so, while the flow table
//!   sees frames only after the reorder window: a connection of a few milliseconds is
//!   over by then); and the flow table's new-flow hook ([`LiveEvidence::hook`]) for
//!   observations that started before the capture (no SYN). The attribution thread looks
//!   up both sockets of the observation in the capture point's namespace, skipping sockets
//!   already attributed exactly. The client's socket is looked up at once (at SYN time it
//!   exists, `SYN_SENT`), in the point's namespace and in the capture's other namespaces
//!   (whichever point's thread hands the SYN over first starts the race against a
//!   short-lived client; answers stay per namespace); the server's is *deferred*: at first only its listener holds the
//!   connection, and a forwarder's child holds the accepted socket only after `accept` and
//!   `fork`, for as long as the connection lasts (a few milliseconds, in a lab). So it is
//!   looked up [`RETRY_FIRST`] after the SYN and again with backoff until two exact answers
//!   name the same process, one that does not hold the listener too (a forking server's
//!   parent holds the accepted socket alone until it has forked: 10 ms and more for a
//!   Python forwarder) ([`DEFERRED_TRIES`] at most), and at once when the child shows
//!   itself: a connecting socket held by a process not seen before makes the thread look up
//!   every pending deferred request of that namespace (see `attribute`). No lookup reads a
//!   whole socket table (milliseconds to tens of milliseconds on a host with many sockets,
//!   during which every later connection would be over before its turn).
//!   As root, a fork thread also watches the children of listener holders from their fork
//!   on ([`crate::process::forks`], the kernel's process connector): each connected TCP
//!   socket such a child is found holding is stored as an exact answer before its SYN
//!   reaches this thread (a child may connect and exit within a few milliseconds of its
//!   fork, sooner than the capture path hands the SYN over on a loaded host). An exact
//!   answer naming another process than the child's parent is not replaced.
//!   Both threads, the conntrack watchers and their collector run real-time where
//!   allowed, guarded against taking a core ([`Urgent`]).
//!   For every conntrack entry with a rewrite, the socket of its original tuple (the one
//!   the socket itself sees, before NAT) is looked up in the entry's namespace: that is the
//!   process behind a leg no interface shows (e.g. a forwarder connecting to a DNATed
//!   `127.0.0.1`). What is not found stays unknown.
//! * Memory is bounded by the evidence share of `--max-memory` (`Limits::evidence_memory`,
//!   4 %): a third for conntrack entries ([`BYTES_PER_ENTRY`] each), two thirds for socket
//!   owners ([`BYTES_PER_OWNER`] each), and never more than [`MAX_ENTRIES`] / [`MAX_OWNERS`].
//!   A new entry or owner that does not fit evicts the oldest: conntrack entries of
//!   connections destroyed (DESTROY event) first, oldest destroyed first, then the oldest
//!   seen; owners oldest first. Evictions are counted (`conntrack_evicted`,
//!   `owners_evicted`). Evidence is applied when held records are joined (a batch joined
//!   early, or the rest at the end), so what is evicted before then is what the oldest
//!   connections would have brought to it.
//! * Batches joined before the capture ends (the held records reached their bound) get the
//!   evidence gathered so far that bears on their records: [`LiveEvidence::so_far`] is a
//!   handle on both stores, which the report asks once per such batch
//!   ([`crate::report::FlowReport::set_early_evidence`], [`EvidenceSoFar::for_records`]):
//!   conntrack entries whose original or reply tuple is one of the batch's, the known
//!   owners of both sockets of those tuples and of the entries' tuples, the points'
//!   namespaces. The copy is proportional to the batch, not to the evidence, and lives
//!   until the batch is joined. Each store is an `Arc<Mutex<..>>` its thread locks per
//!   update (never across a socket lookup), the capture threads never touch it, and the
//!   report holds the owners' lock for [`SO_FAR_CHUNK`] lookups at a time and the conntrack
//!   lock for one pass over the entries. What a batch cannot see is what was not gathered
//!   when it was handed over: a server socket whose deferred lookups are still going (its
//!   connection ended less than about 250 ms before), conntrack events still queued, what
//!   was evicted. When the threads end (`finish`) they take their stores' contents out,
//!   and the report uses the final evidence alone from then on: no entry reaches a batch
//!   twice.
//! * [`LiveEvidence::finish`] stops the watchers, drains both threads and returns what they
//!   gathered (all of it, for the batches joined from then on); it waits for the pending
//!   deferred lookups (at most about 250 ms).
//! * While capture runs, [`LiveEvidence::follower`] gives what was gathered so far (for joins
//!   made every so often, the TUI's): once asked for, both threads also journal every change
//!   they make (at most [`MAX_JOURNAL`] pending, the rest counted), and
//!   [`EvidenceFollower::update`] applies the journal to its own copy.

use crate::conntrack::{ConntrackWatcher, CtEntry, CtProto, CtUpdate, WatchOptions};
use crate::flow::{FlowInfo, FlowRecord, Proto as FlowProto};
use crate::join::{Owner, Proto};
use crate::netns::Netns;
use crate::process::forks::{ForkStats, ForkWatch, ProcEvents};
use crate::priority::{RealtimeCounts, Urgent};
use crate::process::{MatchKind, ProcessIndex, SocketKey};
use crate::report::paths::{JoinEvidence, SocketOwner};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Attribution requests queued at most.
pub const QUEUE: usize = 4096;
/// Conntrack entries kept at most.
pub const MAX_ENTRIES: usize = 1 << 18;
/// Socket owners kept at most.
pub const MAX_OWNERS: usize = 1 << 18;
/// Bytes a conntrack entry is counted for: the entry, its key in the index and in the two
/// eviction queues, the namespace names those keys own, and the hash table's slack.
pub const BYTES_PER_ENTRY: usize = std::mem::size_of::<(u64, CtEntry)>() + 3 * (std::mem::size_of::<CtKey>() + 8) + 3 * 32 + 64;
/// Bytes a socket owner is counted for: key and owner in the map, the key again in the
/// eviction queue, the namespace names and `comm` they own, and the hash table's slack.
pub const BYTES_PER_OWNER: usize =
    2 * std::mem::size_of::<OwnerKey>() + std::mem::size_of::<(Owner, u8)>() + 3 * 32 + 48;
/// Changes journaled for a follower and not yet taken, at most.
pub const MAX_JOURNAL: usize = 1 << 16;

/// Lookups made in one hold of the owners' lock by [`EvidenceSoFar::for_records`].
pub const SO_FAR_CHUNK: usize = 256;

/// A store shared by the thread that fills it and [`EvidenceSoFar`], locked per operation.
type Shared<T> = Arc<Mutex<T>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Changes for an [`EvidenceFollower`] (kept only once one exists).
#[derive(Default)]
struct Journal {
    on: AtomicBool,
    pending: std::sync::Mutex<(Vec<CtEntry>, Vec<(OwnerKey, Owner, u8)>)>,
    dropped: AtomicU64,
}

impl Journal {
    fn entry(&self, e: &CtEntry) {
        if !self.on.load(Ordering::Relaxed) {
            return;
        }
        let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if p.0.len() + p.1.len() < MAX_JOURNAL {
            p.0.push(e.clone());
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn owner(&self, k: &OwnerKey, o: &Owner, rank: u8) {
        if !self.on.load(Ordering::Relaxed) {
            return;
        }
        let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if p.0.len() + p.1.len() < MAX_JOURNAL {
            p.1.push((k.clone(), o.clone(), rank));
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

type CtKey = (Netns, Option<u32>, CtProto, SocketAddr, SocketAddr);

/// What the live evidence gathered so far, kept up to date by [`EvidenceFollower::update`].
pub struct EvidenceFollower {
    journal: Arc<Journal>,
    entries: Vec<CtEntry>,
    index: HashMap<CtKey, usize>,
    owners: HashMap<OwnerKey, (Owner, u8)>,
}

impl EvidenceFollower {
    /// Takes in the changes journaled since the last call; true when there were any.
    pub fn update(&mut self) -> bool {
        let (entries, owners) = {
            let mut p = self.journal.pending.lock().unwrap_or_else(|p| p.into_inner());
            (std::mem::take(&mut p.0), std::mem::take(&mut p.1))
        };
        let changed = !entries.is_empty() || !owners.is_empty();
        for e in entries {
            let key = (e.netns.clone(), e.id, e.proto, e.orig.src_addr(), e.orig.dst_addr());
            match self.index.get(&key) {
                Some(&i) => self.entries[i] = e,
                None if self.entries.len() >= MAX_ENTRIES => {}
                None => {
                    self.index.insert(key, self.entries.len());
                    self.entries.push(e);
                }
            }
        }
        for (k, o, rank) in owners {
            if self.owners.len() < MAX_OWNERS || self.owners.contains_key(&k) {
                self.owners.insert(k, (o, rank));
            }
        }
        changed
    }

    /// Changes the journal could not hold (the final evidence of `finish` has them).
    pub fn dropped(&self) -> u64 {
        self.journal.dropped.load(Ordering::Relaxed)
    }

    /// Conntrack entries gathered so far (unscoped: labelled by their namespace).
    pub fn conntrack(&self) -> &[CtEntry] {
        &self.entries
    }

    /// Socket owners found so far (unknown ones left out).
    pub fn owners(&self) -> Vec<SocketOwner> {
        let mut v: Vec<SocketOwner> = self
            .owners
            .iter()
            .filter(|(_, (_, rank))| *rank > 0)
            .map(|((netns, proto, local, remote), (owner, _))| SocketOwner {
                netns: netns.clone(),
                proto: *proto,
                local: *local,
                remote: *remote,
                owner: owner.clone(),
            })
            .collect();
        v.sort_by_key(|o| (o.local, o.remote));
        v
    }
}

/// What the conntrack and attribution threads hold so far, for a batch of records joined
/// before the capture ends ([`LiveEvidence::so_far`]): [`EvidenceSoFar::for_records`] copies
/// out only what bears on the batch, so the copy grows with the batch, not with the
/// evidence. It shares the threads' stores (nothing is copied until asked).
#[derive(Clone)]
pub struct EvidenceSoFar {
    ct: Shared<CtStore>,
    owners: Shared<OwnerStore>,
    point_netns: HashMap<u32, Netns>,
}

impl EvidenceSoFar {
    /// The evidence gathered so far that bears on `records` (TCP and UDP ones):
    ///
    /// * conntrack entries whose original or reply tuple is a record's tuple (either
    ///   orientation, IPv4-mapped addresses as IPv4), found in one pass over the entries
    ///   under the conntrack store's lock (a 64-bit key per tuple, no allocation);
    /// * the known owners (rank above unknown) of both sockets of every record's tuple, in
    ///   the namespace of the record's capture point (every capture namespace when the
    ///   point's is not known), and of both tuples of every entry picked, in the entry's
    ///   namespace: a leg no interface shows is made from the entry, and its process is
    ///   the owner of that socket. Looked up by key, [`SO_FAR_CHUNK`] per hold of the
    ///   owners' lock, so the attribution thread never waits long;
    /// * the capture points' namespaces.
    ///
    /// Entries in the order first seen and owners sorted by tuple, as [`LiveEvidence::finish`]
    /// gives them.
    pub fn for_records(&self, records: &[FlowRecord]) -> JoinEvidence {
        let addr = |e: crate::flow::Endpoint| SocketAddr::new(e.addr, e.port);
        let ct_proto = |p: CtProto| match p {
            CtProto::Tcp => Some(Proto::Tcp),
            CtProto::Udp => Some(Proto::Udp),
            _ => None,
        };
        let mut keys: crate::join::KeyMap<()> = crate::join::KeyMap::default();
        keys.reserve(records.len());
        for r in records {
            let proto = match r.info.proto {
                FlowProto::Tcp => Proto::Tcp,
                FlowProto::Udp => Proto::Udp,
                _ => continue,
            };
            keys.insert(crate::join::tuple_key(proto, addr(r.info.client), addr(r.info.server)), ());
        }
        let mut ev = JoinEvidence { point_netns: self.point_netns.clone(), ..JoinEvidence::default() };
        if keys.is_empty() {
            return ev;
        }
        // A key match is a tuple match but for a hash collision, and an entry of a tuple
        // no record has joins nothing: no need to compare the tuples again.
        let mut picked: Vec<(u64, CtEntry)> = {
            let store = lock(&self.ct);
            store
                .map
                .values()
                .filter(|(_, e)| {
                    ct_proto(e.proto).is_some_and(|p| {
                        keys.contains_key(&crate::join::tuple_key(p, e.orig.src_addr(), e.orig.dst_addr()))
                            || keys.contains_key(&crate::join::tuple_key(p, e.reply.src_addr(), e.reply.dst_addr()))
                    })
                })
                .cloned()
                .collect()
        };
        drop(keys);
        picked.sort_unstable_by_key(|p| p.0);
        // The sockets to look up: both ends of each tuple, in its namespace (any capture
        // namespace when not known), as seen and with IPv4-mapped addresses as IPv4.
        let mut all_ns: Vec<&Netns> = Vec::new();
        for ns in self.point_netns.values() {
            if !all_ns.contains(&ns) {
                all_ns.push(ns);
            }
        }
        let mut wanted: std::collections::HashSet<OwnerKey> = std::collections::HashSet::new();
        let mut want = |ns: Option<&Netns>, proto: Proto, a: SocketAddr, b: SocketAddr| {
            let canon = |x: SocketAddr| SocketAddr::new(x.ip().to_canonical(), x.port());
            let one;
            let spaces: &[&Netns] = match ns {
                Some(ns) => {
                    one = [ns];
                    &one
                }
                None => &all_ns,
            };
            for ns in spaces {
                for (l, r) in [(a, b), (b, a), (canon(a), canon(b)), (canon(b), canon(a))] {
                    wanted.insert((Netns::clone(ns), proto, l, r));
                }
            }
        };
        for r in records {
            let proto = match r.info.proto {
                FlowProto::Tcp => Proto::Tcp,
                FlowProto::Udp => Proto::Udp,
                _ => continue,
            };
            want(self.point_netns.get(&r.info.point_index), proto, addr(r.info.client), addr(r.info.server));
        }
        for (_, e) in &picked {
            if let Some(p) = ct_proto(e.proto) {
                want(Some(&e.netns), p, e.orig.src_addr(), e.orig.dst_addr());
                want(Some(&e.netns), p, e.reply.src_addr(), e.reply.dst_addr());
            }
        }
        let wanted: Vec<OwnerKey> = wanted.into_iter().collect();
        for chunk in wanted.chunks(SO_FAR_CHUNK) {
            let store = lock(&self.owners);
            for k in chunk {
                if let Some((owner, rank)) = store.get(k)
                    && *rank > 0
                {
                    let (netns, proto, local, remote) = k.clone();
                    ev.owners.push(SocketOwner { netns, proto, local, remote, owner: owner.clone() });
                }
            }
        }
        ev.owners.sort_by_key(|a| (a.local, a.remote));
        ev.conntrack = picked.into_iter().map(|(_, e)| (e, None)).collect();
        ev
    }
}

#[cfg(test)]
impl EvidenceSoFar {
    /// Stores holding `entries` and `owners` (owners found exactly), as the threads fill them.
    pub(crate) fn holding(entries: Vec<CtEntry>, owners: Vec<SocketOwner>, point_netns: HashMap<u32, Netns>) -> EvidenceSoFar {
        let mut ct = CtStore::new(MAX_ENTRIES);
        for e in entries {
            ct.insert((e.netns.clone(), e.id, e.proto, e.orig.src_addr(), e.orig.dst_addr()), e);
        }
        let mut os = OwnerStore::new(MAX_OWNERS);
        for o in owners {
            os.insert((o.netns, o.proto, o.local, o.remote), (o.owner, 3));
        }
        EvidenceSoFar { ct: Arc::new(Mutex::new(ct)), owners: Arc::new(Mutex::new(os)), point_netns }
    }
}

impl crate::report::paths::EarlyEvidence for EvidenceSoFar {
    fn for_batch(&self, records: &[FlowRecord]) -> JoinEvidence {
        self.for_records(records)
    }
}

/// Counters of the live evidence.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EvidenceStats {
    /// Namespaces whose conntrack is watched.
    pub conntrack_watched: u64,
    /// `NETNS: reason` for each namespace that could not be watched.
    pub conntrack_unavailable: Vec<String>,
    pub conntrack_entries: u64,
    pub conntrack_lost_events: u64,
    pub attribution_requests: u64,
    pub attribution_dropped: u64,
    pub sockets_attributed: u64,
    pub sockets_unknown: u64,
    /// Conntrack entries evicted (oldest destroyed first, then oldest) for new ones.
    pub conntrack_evicted: u64,
    /// Socket owners evicted (oldest first) for new ones.
    pub owners_evicted: u64,
    /// Conntrack entries and socket owners the evidence share holds at most.
    pub conntrack_max_entries: u64,
    pub owners_max: u64,
    /// Fork events are watched (the process connector could be opened: root).
    pub fork_events: bool,
    /// Children of listener holders watched after their fork, and those not watched
    /// because [`crate::process::forks::MAX_WATCHED`] were.
    pub forks_watched: u64,
    pub forks_skipped: u64,
    /// Sockets found held by a watched child.
    pub fork_sockets: u64,
    /// Times the kernel dropped fork events (a burst filled the socket's buffer).
    pub fork_events_lost: u64,
    /// Points whose connection starts came from their own immediate-mode handle (see
    /// `live::TRIGGER_FILTER`), and frames the kernel dropped on those handles (connection
    /// starts not asked about at once).
    pub connection_start_handles: u64,
    pub connection_starts_dropped: u64,
    /// Evidence threads that ran real-time (where allowed, see [`Urgent`]: the attribution
    /// thread, the fork watch, each conntrack watcher on netlink and their collector), and times one
    /// of them gave it up for [`crate::priority::URGENT_REST`] because it used more than
    /// half a core.
    pub realtime_threads: u64,
    pub realtime_rests: u64,
}

/// Conntrack entries by key, in the order first seen, bounded: a new entry past `max`
/// evicts the oldest destroyed one, else the oldest.
struct CtStore {
    map: HashMap<CtKey, (u64, CtEntry)>,
    /// `(seq, key)` in the order first seen; stale pairs (evicted) are skipped and
    /// compacted away.
    order: std::collections::VecDeque<(u64, CtKey)>,
    /// `(seq, key)` of destroyed entries, in the order destroyed.
    destroyed: std::collections::VecDeque<(u64, CtKey)>,
    next: u64,
    max: usize,
    evicted: u64,
}

impl CtStore {
    fn new(max: usize) -> CtStore {
        CtStore {
            map: HashMap::new(),
            order: Default::default(),
            destroyed: Default::default(),
            next: 0,
            max: max.max(1),
            evicted: 0,
        }
    }

    fn live(map: &HashMap<CtKey, (u64, CtEntry)>, q: &(u64, CtKey)) -> bool {
        map.get(&q.1).is_some_and(|(seq, _)| *seq == q.0)
    }

    /// Inserts a new entry, evicting as needed.
    fn insert(&mut self, key: CtKey, e: CtEntry) {
        while self.map.len() >= self.max {
            let victim = loop {
                let q = match self.destroyed.pop_front() {
                    Some(q) => q,
                    None => match self.order.pop_front() {
                        Some(q) => q,
                        None => break None,
                    },
                };
                if CtStore::live(&self.map, &q) {
                    break Some(q.1);
                }
            };
            let Some(k) = victim else { break };
            self.map.remove(&k);
            self.evicted += 1;
        }
        let seq = self.next;
        self.next += 1;
        self.order.push_back((seq, key.clone()));
        self.compact();
        self.map.insert(key, (seq, e));
    }

    /// Marks an entry destroyed (it goes first when room is needed).
    fn destroyed(&mut self, key: &CtKey) {
        if let Some((seq, _)) = self.map.get(key) {
            self.destroyed.push_back((*seq, key.clone()));
            self.compact();
        }
    }

    /// Drops stale queue pairs once a queue is twice the map (amortized O(1)).
    fn compact(&mut self) {
        let n = self.map.len().max(16);
        for q in [&mut self.order, &mut self.destroyed] {
            if q.len() > 2 * n {
                q.retain(|p| CtStore::live(&self.map, p));
                // A key destroyed twice (events repeated) appears once.
                let mut seen = std::collections::HashSet::new();
                q.retain(|p| seen.insert(p.0));
            }
        }
    }

    /// The entries in the order first seen.
    fn into_entries(self) -> Vec<CtEntry> {
        let mut v: Vec<(u64, CtEntry)> = self.map.into_values().collect();
        v.sort_unstable_by_key(|p| p.0);
        v.into_iter().map(|p| p.1).collect()
    }
}

/// Socket owners by key, bounded: a new owner past `max` evicts the oldest.
struct OwnerStore {
    map: HashMap<OwnerKey, (Owner, u8)>,
    /// Every key of `map`, in the order inserted (keys leave only by eviction).
    order: std::collections::VecDeque<OwnerKey>,
    max: usize,
    evicted: u64,
}

impl OwnerStore {
    fn new(max: usize) -> OwnerStore {
        OwnerStore { map: HashMap::new(), order: Default::default(), max: max.max(1), evicted: 0 }
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn get(&self, k: &OwnerKey) -> Option<&(Owner, u8)> {
        self.map.get(k)
    }

    fn get_mut(&mut self, k: &OwnerKey) -> Option<&mut (Owner, u8)> {
        self.map.get_mut(k)
    }

    fn insert(&mut self, k: OwnerKey, v: (Owner, u8)) {
        if let Some(old) = self.map.get_mut(&k) {
            *old = v;
            return;
        }
        while self.map.len() >= self.max
            && let Some(old) = self.order.pop_front()
        {
            self.map.remove(&old);
            self.evicted += 1;
        }
        self.order.push_back(k.clone());
        self.map.insert(k, v);
    }
}

/// The conntrack entries and socket owners an evidence share of `bytes` holds.
fn evidence_caps(bytes: usize) -> (usize, usize) {
    ((bytes / 3 / BYTES_PER_ENTRY).clamp(1, MAX_ENTRIES), (bytes / 3 * 2 / BYTES_PER_OWNER).clamp(1, MAX_OWNERS))
}

/// One socket to attribute.
#[derive(Clone, Debug)]
struct Request {
    netns: Netns,
    proto: Proto,
    local: SocketAddr,
    remote: SocketAddr,
    /// Look only after [`RETRY_FIRST`], and again (a server's accepted socket, or a flow the flow
    /// table reported late); otherwise at once (a connecting socket, a pre-NAT socket).
    deferred: bool,
    /// When it was asked (deferred lookups count from it; the debug output shows it).
    asked: Instant,
}

type OwnerKey = (Netns, Proto, SocketAddr, SocketAddr);

/// The capture threads' side: queues attribution requests for connection starts.
#[derive(Clone, Debug)]
pub struct SocketTap {
    tx: SyncSender<Request>,
    requests: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    starts: Arc<StartCounts>,
}

/// Counters of the connection-start handles (see `live::TRIGGER_FILTER`).
#[derive(Debug, Default)]
struct StartCounts {
    handles: AtomicU64,
    /// Frames the kernel dropped on those handles' rings.
    dropped: AtomicU64,
}

/// UDP tuples a capture thread has asked about already (cleared when full).
const UDP_SEEN: usize = 4096;

/// Whether `v` is new to `seen`, which remembers at most `max` values (all forgotten at once
/// when full: asking again now and then costs less than keeping them in order).
fn first_time<T: std::hash::Hash + Eq>(seen: &mut std::collections::HashSet<T>, v: T, max: usize) -> bool {
    if seen.len() >= max {
        seen.clear();
    }
    seen.insert(v)
}

impl SocketTap {
    fn send(&self, r: Request) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if self.tx.try_send(r).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A capture thread opened its point's connection-start handle.
    pub fn start_handle_opened(&self) {
        self.starts.handles.fetch_add(1, Ordering::Relaxed);
    }

    /// The kernel dropped `n` frames on a connection-start handle.
    pub fn starts_dropped(&self, n: u64) {
        self.starts.dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// One captured frame at a point in `netns`: a SYN without ACK queues both of its
    /// sockets, so does the first datagram of a UDP tuple (`udp_seen` is the thread's own
    /// memory of those). Costs a decode of the headers; never blocks.
    pub fn frame(
        &self,
        netns: &Netns,
        linktype: u32,
        data: &[u8],
        udp_seen: &mut std::collections::HashSet<(SocketAddr, SocketAddr)>,
    ) {
        let d = crate::decode::decode(linktype, data);
        let Some(ip) = d.ip else { return };
        let (proto, src, dst) = match d.transport {
            crate::decode::Transport::Tcp(t)
                if t.has(crate::decode::tcp_flags::SYN) && !t.has(crate::decode::tcp_flags::ACK) =>
            {
                (Proto::Tcp, SocketAddr::new(ip.src, t.sport), SocketAddr::new(ip.dst, t.dport))
            }
            crate::decode::Transport::Udp(u) => {
                let (a, b) = (SocketAddr::new(ip.src, u.sport), SocketAddr::new(ip.dst, u.dport));
                let key = if a <= b { (a, b) } else { (b, a) };
                if !first_time(udp_seen, key, UDP_SEEN) {
                    return;
                }
                (Proto::Udp, a, b)
            }
            _ => return,
        };
        for (local, remote, deferred) in [(src, dst, false), (dst, src, true)] {
            self.send(Request { netns: netns.clone(), proto, local, remote, deferred, asked: Instant::now() });
        }
    }
}

/// Conntrack watchers and the attribution thread of one live capture.
pub struct LiveEvidence {
    watchers: Vec<ConntrackWatcher>,
    ct_store: Shared<CtStore>,
    owner_store: Shared<OwnerStore>,
    ct_thread: Option<JoinHandle<(Vec<CtEntry>, u64, u64)>>,
    attr_thread: Option<JoinHandle<OwnerStore>>,
    attr_tx: Option<SyncSender<Request>>,
    stop: Arc<AtomicBool>,
    fork_thread: Option<JoinHandle<ForkStats>>,
    fork_stop: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    starts: Arc<StartCounts>,
    realtime: Arc<RealtimeCounts>,
    point_netns: HashMap<u32, Netns>,
    stats: EvidenceStats,
    journal: Arc<Journal>,
}

impl LiveEvidence {
    /// [`LiveEvidence::with_memory`] with the evidence share of the default `--max-memory`.
    pub fn start(points: &[(u32, Netns)]) -> LiveEvidence {
        LiveEvidence::with_memory(points, crate::limits::Limits::default().evidence_memory)
    }

    /// Starts watching conntrack in every namespace of `points` (`(point index, netns)`) and
    /// the attribution thread (which first warms its process cache and opens each
    /// namespace's socket tables); what they keep is bounded by `max_bytes` (see the module
    /// docs).
    pub fn with_memory(points: &[(u32, Netns)], max_bytes: usize) -> LiveEvidence {
        let (max_entries, max_owners) = evidence_caps(max_bytes);
        let stop = Arc::new(AtomicBool::new(false));
        let (attr_tx, attr_rx) = sync_channel::<Request>(QUEUE);
        let mut stats =
            EvidenceStats { conntrack_max_entries: max_entries as u64, owners_max: max_owners as u64, ..Default::default() };
        let (ct_tx, ct_rx) = sync_channel::<CtUpdate>(QUEUE);
        let mut namespaces: Vec<Netns> = Vec::new();
        for (_, ns) in points {
            if !namespaces.contains(ns) {
                namespaces.push(ns.clone());
            }
        }
        let realtime = Arc::new(RealtimeCounts::default());
        let mut watchers = Vec::new();
        for ns in &namespaces {
            // A rewritten connection's pre-NAT socket is looked up when its entry arrives:
            // the watchers and the conntrack thread race short connections too.
            let opts = WatchOptions {
                nice: Some(ATTRIBUTION_NICE),
                realtime: Some(realtime.clone()),
                ..WatchOptions::default()
            };
            match ConntrackWatcher::start(ns, opts, ct_tx.clone()) {
                Ok(w) => watchers.push(w),
                Err(e) => stats.conntrack_unavailable.push(format!("{ns}: {e}")),
            }
        }
        stats.conntrack_watched = watchers.len() as u64;
        drop(ct_tx);
        let ct_attr = attr_tx.clone();
        let journal = Arc::new(Journal::default());
        let ct_journal = journal.clone();
        let ct_store = Arc::new(Mutex::new(CtStore::new(max_entries)));
        let owner_store = Arc::new(Mutex::new(OwnerStore::new(max_owners)));
        let ct_shared = ct_store.clone();
        let ct_realtime = realtime.clone();
        let ct_thread = std::thread::Builder::new()
            .name("conntrack".into())
            .spawn(move || collect_conntrack(ct_rx, ct_attr, &ct_journal, ct_shared, ct_realtime))
            .ok();
        let attr_stop = stop.clone();
        let warm = namespaces.clone();
        let attr_journal = journal.clone();
        let attr_shared = owner_store.clone();
        let attr_realtime = realtime.clone();
        let attr_thread = std::thread::Builder::new()
            .name("attribution".into())
            .spawn(move || attribute(attr_rx, attr_stop, warm, &attr_journal, attr_shared, attr_realtime))
            .ok();
        // Fork events (root): a forking server's children are watched from their fork on.
        let fork_stop = Arc::new(AtomicBool::new(false));
        let fork_thread = match ProcEvents::open() {
            Ok(events) => {
                let (stop, journal, shared, realtime) =
                    (fork_stop.clone(), journal.clone(), owner_store.clone(), realtime.clone());
                std::thread::Builder::new()
                    .name("forks".into())
                    .spawn(move || watch_forks(events, stop, namespaces, &journal, shared, realtime))
                    .ok()
            }
            Err(_) => None,
        };
        stats.fork_events = fork_thread.is_some();
        LiveEvidence {
            watchers,
            ct_store,
            owner_store,
            ct_thread,
            attr_thread,
            attr_tx: Some(attr_tx),
            stop,
            fork_thread,
            fork_stop,
            requests: Arc::new(AtomicU64::new(0)),
            dropped: Arc::new(AtomicU64::new(0)),
            starts: Arc::default(),
            realtime,
            point_netns: points.iter().cloned().collect(),
            stats,
            journal,
        }
    }

    /// What was gathered so far, kept up to date by [`EvidenceFollower::update`] (changes from
    /// now on; ask for it before capture starts).
    pub fn follower(&self) -> EvidenceFollower {
        self.journal.on.store(true, Ordering::Relaxed);
        EvidenceFollower {
            journal: self.journal.clone(),
            entries: Vec::new(),
            index: HashMap::new(),
            owners: HashMap::new(),
        }
    }

    /// What the evidence threads hold so far, for batches of records joined before
    /// [`LiveEvidence::finish`] (see [`EvidenceSoFar`]); after `finish` it finds nothing.
    pub fn so_far(&self) -> EvidenceSoFar {
        EvidenceSoFar {
            ct: self.ct_store.clone(),
            owners: self.owner_store.clone(),
            point_netns: self.point_netns.clone(),
        }
    }

    /// The capture threads' tap (`LiveOptions::tap`).
    pub fn tap(&self) -> Option<SocketTap> {
        Some(SocketTap {
            tx: self.attr_tx.clone()?,
            requests: self.requests.clone(),
            dropped: self.dropped.clone(),
            starts: self.starts.clone(),
        })
    }

    /// The new-flow hook for [`crate::report::FlowReport::on_new_flow`]: queues the
    /// attribution of both sockets of a TCP/UDP observation at a point with a known
    /// namespace; never blocks.
    pub fn hook(&self) -> Box<dyn FnMut(&FlowInfo) + Send> {
        let tx = self.attr_tx.clone();
        let netns = self.point_netns.clone();
        let requests = self.requests.clone();
        let dropped = self.dropped.clone();
        Box::new(move |info: &FlowInfo| {
            let proto = match info.proto {
                FlowProto::Tcp => Proto::Tcp,
                FlowProto::Udp => Proto::Udp,
                _ => return,
            };
            let (Some(tx), Some(ns)) = (tx.as_ref(), netns.get(&info.point_index)) else {
                return;
            };
            let c = SocketAddr::new(info.client.addr, info.client.port);
            let s = SocketAddr::new(info.server.addr, info.server.port);
            for (local, remote) in [(c, s), (s, c)] {
                requests.fetch_add(1, Ordering::Relaxed);
                let r = Request { netns: ns.clone(), proto, local, remote, deferred: true, asked: Instant::now() };
                if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = tx.try_send(r) {
                    dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    }

    /// Stops everything and returns the evidence (with the points' namespaces) and counters.
    pub fn finish(mut self) -> (JoinEvidence, EvidenceStats) {
        let mut stats = std::mem::take(&mut self.stats);
        for w in self.watchers.drain(..) {
            let s = w.stop();
            stats.conntrack_lost_events += s.overruns;
        }
        // The watchers' senders are gone: the conntrack thread drains and ends, and with it
        // its sender of attribution requests.
        let (entries, lost, evicted) = self.ct_thread.take().and_then(|h| h.join().ok()).unwrap_or_default();
        stats.conntrack_entries = entries.len() as u64;
        stats.conntrack_evicted = evicted;
        stats.conntrack_lost_events += lost;
        // The fork watch ends first: what it finds goes into the store the attribution
        // thread takes out when it ends.
        self.fork_stop.store(true, Ordering::Relaxed);
        if let Some(f) = self.fork_thread.take().and_then(|h| h.join().ok()) {
            (stats.forks_watched, stats.forks_skipped, stats.fork_sockets, stats.fork_events_lost) =
                (f.watched, f.skipped, f.sockets, f.overruns);
        }
        self.attr_tx = None;
        self.stop.store(true, Ordering::Relaxed);
        let owners = self.attr_thread.take().and_then(|h| h.join().ok()).unwrap_or_else(|| OwnerStore::new(1));
        stats.owners_evicted = owners.evicted;
        let owners = owners.map;
        stats.attribution_requests = self.requests.load(Ordering::Relaxed);
        stats.attribution_dropped = self.dropped.load(Ordering::Relaxed);
        stats.connection_start_handles = self.starts.handles.load(Ordering::Relaxed);
        stats.connection_starts_dropped = self.starts.dropped.load(Ordering::Relaxed);
        stats.realtime_threads = self.realtime.threads();
        stats.realtime_rests = self.realtime.rests();
        let mut ev = JoinEvidence {
            conntrack: entries.into_iter().map(|e| (e, None)).collect(),
            owners: Vec::with_capacity(owners.len()),
            point_netns: std::mem::take(&mut self.point_netns),
        };
        for ((netns, proto, local, remote), (owner, rank)) in owners {
            if rank == 0 {
                stats.sockets_unknown += 1;
                continue;
            }
            stats.sockets_attributed += 1;
            ev.owners.push(SocketOwner { netns, proto, local, remote, owner });
        }
        ev.owners.sort_by_key(|o| (o.local, o.remote));
        (ev, stats)
    }
}

impl Drop for LiveEvidence {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.fork_stop.store(true, Ordering::Relaxed);
    }
}

/// The conntrack thread: keeps the latest state of every entry in `shared` (locked per
/// update), asks for the owner of each rewritten entry's original socket; the store keeps at
/// most its `max` entries (the oldest evicted, destroyed ones first). At the end it takes the
/// entries out of the store (an [`EvidenceSoFar`] then finds none) and returns `(entries,
/// lost events, evicted)`.
fn collect_conntrack(
    rx: Receiver<CtUpdate>,
    attr: SyncSender<Request>,
    journal: &Journal,
    shared: Shared<CtStore>,
    realtime: Arc<RealtimeCounts>,
) -> (Vec<CtEntry>, u64, u64) {
    let mut urgent = Urgent::start(Some(ATTRIBUTION_NICE), realtime);
    let mut lost = 0u64;
    for u in rx {
        urgent.tick();
        let (e, destroy) = match u {
            CtUpdate::Entry(e) => (e, false),
            CtUpdate::Event(ev) => (ev.entry, ev.kind == crate::conntrack::CtEventKind::Destroy),
            CtUpdate::Lost { total } => {
                lost = lost.max(total);
                continue;
            }
            CtUpdate::DumpDone { .. } | CtUpdate::Failed(_) => continue,
        };
        let proto = match e.proto {
            CtProto::Tcp => Proto::Tcp,
            CtProto::Udp => Proto::Udp,
            _ => continue,
        };
        let key = (e.netns.clone(), e.id, e.proto, e.orig.src_addr(), e.orig.dst_addr());
        let mut ask = None;
        {
            let mut store = lock(&shared);
            match store.map.get_mut(&key) {
                Some((_, old)) => {
                    // Later messages may lack fields an earlier one had (DESTROY: no timeout).
                    let start = old.start_ns.or(e.start_ns);
                    *old = CtEntry { start_ns: e.start_ns.or(start), ..e };
                    journal.entry(old);
                }
                None => {
                    if !e.rewrite().is_none() {
                        ask = Some(Request {
                            netns: e.netns.clone(),
                            proto,
                            local: e.orig.src_addr(),
                            remote: e.orig.dst_addr(),
                            deferred: false,
                            asked: Instant::now(),
                        });
                    }
                    journal.entry(&e);
                    store.insert(key.clone(), e);
                }
            }
            if destroy {
                store.destroyed(&key);
            }
        }
        if let Some(r) = ask {
            let _ = attr.try_send(r);
        }
    }
    let store = std::mem::replace(&mut *lock(&shared), CtStore::new(1));
    if debug_sizes() {
        eprintln!(
            "flowtrail: evidence sizes: conntrack entries {} (max {}, {BYTES_PER_ENTRY} bytes each) queues {}+{} evicted {}",
            store.map.len(),
            store.max,
            store.order.len(),
            store.destroyed.len(),
            store.evicted
        );
    }
    let evicted = store.evicted;
    (store.into_entries(), lost, evicted)
}

/// How good an answer is: 0 unknown, 1 listener or unconnected, 2 remembered, 3 the socket.
fn rank(kind: Option<MatchKind>) -> u8 {
    match kind {
        None => 0,
        Some(MatchKind::Listener | MatchKind::Unconnected) => 1,
        Some(MatchKind::Remembered) => 2,
        Some(MatchKind::Socket) => 3,
    }
}

/// A lookup found `pid` holding a socket of `r`'s namespace. The first time a holder shows
/// itself, every pending request of that namespace is looked up at once (at most
/// [`SIBLINGS_AT_ONCE`]), and so is every `provisional` one (out of tries on the listener or
/// its holder): a forwarder's child holds its other socket right now, and may be gone a few
/// milliseconds later. Those found held by `pid` itself (and not by the listener's holder)
/// are settled.
#[allow(clippy::too_many_arguments)]
fn found_holder(
    pid: u32,
    r: &Request,
    pending: &mut HashMap<u64, Pending>,
    queued: &mut std::collections::HashSet<OwnerKey>,
    expanded: &mut std::collections::HashSet<u32>,
    provisional: &mut std::collections::VecDeque<Request>,
    out: &Mutex<OwnerStore>,
    look: &mut impl FnMut(&Request, &Mutex<OwnerStore>, How) -> Looked,
) {
    if !first_time(expanded, pid, EXPANDED) {
        return;
    }
    let sibling = |q: &Request| q.netns == r.netns && q.proto == r.proto && q.local != r.local;
    // Only what the holder's scan cached: a sibling held by another process waits for its
    // own retry rather than a process scan here, while connections keep starting.
    let claims = |q: &Request, look: &mut dyn FnMut(&Request, &Mutex<OwnerStore>, How) -> Looked| {
        let l = look(q, out, How::Cached);
        l.rank == 3 && l.pid == Some(pid) && !l.listener_holder
    };
    // Accepted sockets whose retries ended on the listener or its holder: the child that
    // serves one may be this process.
    provisional.retain(|q| !(sibling(q) && claims(q, look)));
    let mut ids: Vec<u64> = pending
        .iter()
        .filter(|(_, p)| sibling(&p.req))
        .map(|(&id, _)| id)
        .collect();
    ids.sort_unstable();
    ids.truncate(SIBLINGS_AT_ONCE);
    for id in ids {
        let Some(p) = pending.get(&id) else { continue };
        if claims(&p.req, look)
            && let Some(p) = pending.remove(&id)
        {
            queued.remove(&(p.req.netns, p.req.proto, p.req.local, p.req.remote));
        }
    }
}

/// Nice value of the threads that race short-lived processes for their sockets (the
/// capture threads that tap connection starts, the fork watch and the conntrack threads).
pub const ATTRIBUTION_NICE: i32 = -10;

/// Nice value of the socket attribution thread itself: above the threads that feed it, so
/// that a request does not wait for a core behind them (a capture thread handles a whole
/// ring block at once); a short connection's socket is gone a millisecond after its SYN.
/// Its lookups take tens of microseconds, one or a few per new connection.
pub const LOOKUP_NICE: i32 = -15;

/// Holders remembered as expanded at most (forgotten all at once when full: pids are
/// reused).
const EXPANDED: usize = 4096;

/// The first retry of a deferred lookup comes this long after it was asked; every further
/// one twice as long after the previous, [`DEFERRED_TRIES`] at most (about 250 ms in all).
pub const RETRY_FIRST: Duration = Duration::from_millis(2);
/// Lookups of one deferred request at most.
pub const DEFERRED_TRIES: u8 = 7;
/// Pending deferred requests looked up at once when a fresh holder is found (see
/// `attribute`).
pub const SIBLINGS_AT_ONCE: usize = 256;
/// Connecting sockets remembered as probed in another namespace at most (forgotten all at
/// once when full).
const PROBED: usize = 4096;
/// Accepted sockets kept at most after their retries ended on the listener or its holder
/// (the oldest forgotten first), for the child that serves them to claim (see
/// `attribute`).
pub const PROVISIONAL: usize = 256;

/// How the attribution thread looks a socket up.
#[derive(Clone, Copy, PartialEq, Eq)]
enum How {
    /// Through the kernel and the holders, scanning processes if needed; the answer is kept
    /// whatever it is.
    Full,
    /// Only through holders already cached ([`ProcessIndex::lookup_cached`]).
    Cached,
    /// As `Full`, in a namespace no point asked about (yet): kept only when found.
    Probe,
}

/// One lookup's answer, as the attribution thread uses it.
struct Looked {
    /// [`rank`] of the answer.
    rank: u8,
    /// The newest holder of the socket, when found.
    pid: Option<u32>,
    /// The socket is there but its holder was not found (worth asking again).
    holderless: bool,
    /// An exact answer for an accepted socket (a deferred TCP request) whose holder also
    /// holds the listener on the socket's local address: the parent of a forking server
    /// holds each accepted socket alone between `accept` and `fork` (Python's `fork` takes
    /// 10 ms and more), so it is not taken as settled.
    listener_holder: bool,
}

/// A deferred request waiting for its next lookup.
struct Pending {
    req: Request,
    /// Lookups done.
    tries: u8,
    /// The holder of the last exact answer: a second exact answer naming the same process
    /// ends the retries (between `accept` and `fork` the parent alone holds the socket).
    exact_pid: Option<u32>,
    /// Quick retries made after answers naming the listener's holder (see [`QUICK_TRIES`]).
    quick: u8,
}

/// Retries [`RETRY_FIRST`] after an answer naming the listener's holder, before the backoff
/// goes on: a forking server's child takes the accepted socket over within a millisecond or
/// so of the parent's `accept` (socat), and may be done with it a few milliseconds later.
pub const QUICK_TRIES: u8 = 2;

/// `FLOWTRAIL_DEBUG_ATTRIBUTION=1`: the attribution and fork threads report what they do on
/// stderr.
fn debug_attribution() -> bool {
    std::env::var_os("FLOWTRAIL_DEBUG_ATTRIBUTION").is_some()
}

/// The fork thread: watches the children a listener holder in one of `namespaces` forks
/// ([`ForkWatch`]) and stores each socket such a child is found holding as an exact answer
/// (rank 3, as a lookup would), unless an exact answer naming another process than the
/// child's parent is there already. A connection's SYN then finds its socket's owner
/// known, however late it reaches the attribution thread and however soon the child exits.
fn watch_forks(
    mut events: ProcEvents,
    stop: Arc<AtomicBool>,
    namespaces: Vec<Netns>,
    journal: &Journal,
    shared: Shared<OwnerStore>,
    realtime: Arc<RealtimeCounts>,
) -> ForkStats {
    // It must see a child's sockets within the millisecond or two the child may live.
    let mut urgent = Urgent::start(Some(ATTRIBUTION_NICE), realtime);
    let mut watch = ForkWatch::new(&namespaces);
    // Every fork in a captured namespace and every socket found on stderr.
    let debug = debug_attribution();
    watch.debug = debug;
    let mut found = |ns: &Netns, local: SocketAddr, remote: SocketAddr, owner: Owner, parent: u32| {
        let k = (ns.clone(), Proto::Tcp, local, remote);
        let mut s = lock(&shared);
        if debug {
            eprintln!("flowtrail: fork watch: {ns} tcp {local} -> {remote}: {owner} (parent {parent}), had {:?}", s.get(&k));
        }
        if s.get(&k).is_none_or(|(o, rank)| *rank < 3 || o.pid == parent) {
            s.insert(k.clone(), (owner.clone(), 3));
            journal.owner(&k, &owner, 3);
        }
    };
    while !stop.load(Ordering::Relaxed) && watch.step(&mut events, Duration::from_millis(50), &mut found).is_ok() {
        urgent.tick();
    }
    ForkStats { overruns: events.overruns, ..watch.stats() }
}

/// The attribution thread.
///
/// Immediate requests (a connecting socket, seen on its SYN; a pre-NAT socket) are looked
/// up as they come, before anything else. Deferred ones (the server side of a SYN: at first
/// only the listener holds the connection; flows the flow table reported) are retried with
/// backoff, [`RETRY_FIRST`] after they were asked and then twice as long each time, until two
/// exact answers name the same process that does not also hold the listener (see
/// [`Looked::listener_holder`]) or [`DEFERRED_TRIES`] were made: a short connection
/// served by a forked child is found while the child holds the accepted socket. Every
/// lookup goes through the kernel (sock_diag, microseconds) and the cached or freshly probed
/// holders; nothing here reads a whole socket table, so one lookup never holds up the next.
///
/// A forwarder's child holds both of its sockets: when an immediate lookup finds a
/// connecting socket held by a process not seen before, the pending deferred requests of
/// that namespace (the accepted socket the child forwards from is among them) are looked
/// up at once, at most [`SIBLINGS_AT_ONCE`], while the child certainly holds them.
fn attribute(
    rx: Receiver<Request>,
    stop: Arc<AtomicBool>,
    warm: Vec<Netns>,
    journal: &Journal,
    shared: Shared<OwnerStore>,
    realtime: Arc<RealtimeCounts>,
) -> OwnerStore {
    use std::cmp::Reverse;
    // The lookups race short-lived forwarder children (a forked child holds its sockets for
    // as long as its connection lasts: milliseconds in a lab), and on a busy host a thread
    // at the default priority can wait 10-30 ms for a core. Where allowed (CAP_SYS_NICE,
    // e.g. root) this thread, which sleeps between lookups, runs real-time, guarded
    // ([`Urgent`]), else at [`LOOKUP_NICE`].
    // The warm-up (every process's descriptors: tens of milliseconds on a busy host) runs at
    // the nice value; real-time is for the short lookups after it.
    crate::priority::raise_priority(LOOKUP_NICE);
    let mut index = ProcessIndex::new();
    index.scan_all();
    for ns in &warm {
        index.warm(ns);
    }
    let mut urgent = Urgent::start(None, realtime);
    // Locked per lookup's update, never across a lookup (an [`EvidenceSoFar`] reads it).
    let out: &Mutex<OwnerStore> = &shared;
    // Deferred requests by id, and their due times.
    let mut pending: HashMap<u64, Pending> = HashMap::new();
    let mut due: std::collections::BinaryHeap<Reverse<(Instant, u64)>> = std::collections::BinaryHeap::new();
    let mut next_id = 0u64;
    // Every lookup and its answer on stderr.
    let debug = debug_attribution();
    // Holders whose namespace's pending requests were looked up already.
    let mut expanded: std::collections::HashSet<u32> = std::collections::HashSet::new();
    // One lookup: the rank of the answer, its newest holder, and whether the socket is
    // there without a known holder (worth asking again).
    let mut look = |r: &Request, out: &Mutex<OwnerStore>, how: How| -> Looked {
        let k = (r.netns.clone(), r.proto, r.local, r.remote);
        let known = if r.deferred { None } else { lock(out).get(&k).map(|(o, rk)| (*rk, o.pid)) };
        if let Some((rk, pid)) = known
            && rk >= 3
        {
            return Looked { rank: rk, pid: Some(pid), holderless: false, listener_holder: false };
        }
        let key = match r.proto {
            Proto::Tcp => SocketKey::tcp(r.local, r.remote),
            Proto::Udp => SocketKey::udp(r.local, r.remote),
        };
        let t0 = Instant::now();
        let a = if how == How::Cached {
            match index.lookup_cached(&r.netns, &key) {
                Some(a) => a,
                None => return Looked { rank: 0, pid: None, holderless: false, listener_holder: false },
            }
        } else {
            index.lookup(&r.netns, &key)
        };
        let rk = rank(a.matched());
        if debug {
            let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            eprintln!(
                "flowtrail: attribution: {} {key}: {:?} in {:?} at {}.{:06} asked {:?} before{}",
                r.netns,
                a.matched(),
                t0.elapsed(),
                wall.as_secs(),
                wall.subsec_micros(),
                r.asked.elapsed(),
                match &a {
                    crate::process::Attribution::Unknown(why) => format!(" {why:?}"),
                    a => a.owners().iter().map(|p| format!(" {p}")).collect::<String>(),
                }
            );
        }
        // Several holders (a listener's accepted socket right after `fork`): the newest
        // process, i.e. the child that serves the connection.
        let owner = a.owners().iter().max_by_key(|p| p.pid).map(Owner::from);
        let pid = owner.as_ref().map(|o| o.pid);
        let mut out = lock(out);
        match out.get_mut(&k) {
            Some(old) => {
                // A later exact answer wins (the parent may have held it at first).
                if rk >= old.1
                    && rk > 0
                    && let Some(o) = owner
                {
                    *old = (o, rk);
                }
            }
            None if how == How::Probe && owner.is_none() => {}
            None => {
                let unknown = || Owner { pid: 0, comm: String::new() };
                out.insert(k.clone(), owner.map_or_else(|| (unknown(), 0), |o| (o, rk)));
            }
        }
        if let Some((o, rk)) = out.get(&k) {
            journal.owner(&k, o, *rk);
        }
        drop(out);
        let holderless = matches!(a, crate::process::Attribution::Unknown(crate::process::UnknownReason::NoOwner));
        // An accepted socket held by its listener's holder: perhaps a parent between
        // `accept` and `fork` (see [`Looked::listener_holder`]).
        let listener_holder = r.deferred
            && r.proto == Proto::Tcp
            && rk == 3
            && pid.is_some_and(|pid| index.holds_listener(&r.netns, r.local, pid));
        Looked { rank: rk, pid, holderless, listener_holder }
    };
    // Deferred keys pending (one retry schedule per socket, however many asked for it).
    let mut queued: std::collections::HashSet<OwnerKey> = std::collections::HashSet::new();
    // Accepted sockets out of tries on the listener or its holder, oldest first.
    let mut provisional: std::collections::VecDeque<Request> = std::collections::VecDeque::new();
    // Connecting sockets probed in a namespace no point asked about (cleared when full).
    let mut probed: std::collections::HashSet<OwnerKey> = std::collections::HashSet::new();
    let mut defer = |r: Request,
                     pending: &mut HashMap<u64, Pending>,
                     due: &mut std::collections::BinaryHeap<Reverse<(Instant, u64)>>,
                     queued: &mut std::collections::HashSet<OwnerKey>| {
        if pending.len() < QUEUE && queued.insert((r.netns.clone(), r.proto, r.local, r.remote)) {
            next_id += 1;
            due.push(Reverse((r.asked + RETRY_FIRST, next_id)));
            pending.insert(next_id, Pending { req: r, tries: 0, exact_pid: None, quick: 0 });
        }
    };
    let mut disconnected = false;
    loop {
        urgent.tick();
        // Immediate requests first.
        let mut got = None;
        if !disconnected {
            match rx.try_recv() {
                Ok(r) => got = Some(r),
                Err(std::sync::mpsc::TryRecvError::Disconnected) => disconnected = true,
                Err(std::sync::mpsc::TryRecvError::Empty) => {}
            }
        }
        if got.is_none() && !disconnected && due.peek().is_none_or(|Reverse((t, _))| *t > Instant::now()) {
            let wait = due
                .peek()
                .map_or(Duration::from_millis(50), |Reverse((t, _))| t.saturating_duration_since(Instant::now()))
                .max(Duration::from_micros(200));
            match rx.recv_timeout(wait) {
                Ok(r) => got = Some(r),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => disconnected = true,
            }
        }
        if let Some(r) = got {
            if r.deferred {
                defer(r, &mut pending, &mut due, &mut queued);
                continue;
            }
            // The connecting socket in the point's namespace, then, until it is found, in
            // the capture's other namespaces: a connection is often seen first at a point in
            // another namespace than its client's (the far end of a veth, whose capture
            // thread may hand the SYN over a millisecond sooner), and a forwarder's child
            // may be gone a couple of milliseconds after its SYN. Answers are kept per
            // namespace, so the other namespaces' lookups only come early; one that finds
            // nothing keeps nothing, and each (namespace, tuple) is probed once.
            let others = warm.iter().filter(|ns| **ns != r.netns).map(|ns| (Request { netns: ns.clone(), ..r.clone() }, How::Probe));
            for (r, how) in std::iter::once((r.clone(), How::Full)).chain(others) {
                if how == How::Probe && !first_time(&mut probed, (r.netns.clone(), r.proto, r.local, r.remote), PROBED) {
                    continue;
                }
                let Looked { rank: rk, pid, holderless, .. } = look(&r, out, how);
                if holderless {
                    // The socket is there but its holder was not found yet: ask again.
                    defer(Request { deferred: true, asked: Instant::now(), ..r }, &mut pending, &mut due, &mut queued);
                } else if rk == 3
                    && let Some(pid) = pid
                {
                    found_holder(pid, &r, &mut pending, &mut queued, &mut expanded, &mut provisional, out, &mut look);
                }
                if rk == 3 {
                    break;
                }
            }
            continue;
        }
        let now = Instant::now();
        if let Some(&Reverse((t, id))) = due.peek()
            && t <= now
        {
            due.pop();
            let Some(mut p) = pending.remove(&id) else { continue };
            let Looked { rank: rk, pid, holderless, listener_holder } = look(&p.req, out, How::Full);
            // A quick retry after the listener's holder answered does not count as a try (the
            // last try is not made quick).
            let quick = listener_holder && p.quick < QUICK_TRIES && p.tries + 1 < DEFERRED_TRIES;
            if quick {
                p.quick += 1;
            } else {
                p.tries += 1;
            }
            // Two exact answers naming the same process settle it, unless that process holds
            // the listener too: a forking server's parent may hold the socket for a while
            // before its child does (later answers replace it; a server that serves its own
            // connections is simply asked every time).
            let settled = rk == 3 && pid.is_some() && pid == p.exact_pid && !listener_holder;
            if rk == 3 {
                p.exact_pid = pid;
            }
            // Nothing more to learn: settled, out of tries, or no such socket here (another
            // namespace's, or gone: remembered or no inode; a connection the listener has
            // not accepted yet is answered with the listener, rank 1, and asked again).
            if !settled && p.tries < DEFERRED_TRIES && (rk == 1 || rk == 3 || holderless) {
                let back = if quick { RETRY_FIRST } else { RETRY_FIRST * (1u32 << p.tries) };
                due.push(Reverse((now + back, id)));
                let r = p.req.clone();
                pending.insert(id, p);
                if rk == 3
                    && let Some(pid) = pid
                {
                    found_holder(pid, &r, &mut pending, &mut queued, &mut expanded, &mut provisional, out, &mut look);
                }
            } else {
                queued.remove(&(p.req.netns.clone(), p.req.proto, p.req.local, p.req.remote));
                if rk == 3
                    && let Some(pid) = pid
                {
                    found_holder(pid, &p.req, &mut pending, &mut queued, &mut expanded, &mut provisional, out, &mut look);
                }
                // Out of tries while the listener (a connection not accepted yet) or its
                // holder still had it: a forking server's accept queue was long, or its
                // parent slow to fork. Kept for the child to claim when it shows itself.
                if !settled && (rk == 1 || listener_holder) && p.req.proto == Proto::Tcp {
                    if provisional.len() >= PROVISIONAL {
                        provisional.pop_front();
                    }
                    provisional.push_back(p.req);
                }
            }
            continue;
        }
        if (disconnected || stop.load(Ordering::Relaxed)) && pending.is_empty() {
            break;
        }
        if disconnected {
            let wait = due
                .peek()
                .map_or(Duration::from_millis(5), |Reverse((t, _))| t.saturating_duration_since(now))
                .max(Duration::from_micros(200));
            std::thread::sleep(wait);
        }
    }
    let out = std::mem::replace(&mut *lock(out), OwnerStore::new(1));
    if debug_sizes() {
        eprintln!(
            "flowtrail: evidence sizes: owners {} (max {}, {BYTES_PER_OWNER} bytes each) evicted {} pending {} expanded {} index {:?}",
            out.len(),
            out.max,
            out.evicted,
            pending.len(),
            expanded.len(),
            index.sizes()
        );
    }
    out
}

/// FLOWTRAIL_DEBUG_EVIDENCE=1: what the evidence threads hold, on stderr at the end.
fn debug_sizes() -> bool {
    std::env::var_os("FLOWTRAIL_DEBUG_EVIDENCE").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::{CtEvent, CtEventKind, CtTuple, EventOrigin};

    fn entry(id: u32) -> CtEntry {
        let a: SocketAddr = format!("10.0.0.1:{}", 1000 + id).parse().unwrap();
        let b: SocketAddr = "10.0.0.2:80".parse().unwrap();
        CtEntry {
            netns: Netns::Named("ev".into()),
            id: Some(id),
            timeout_s: Some(100),
            ..CtEntry::new(CtProto::Tcp, CtTuple::between(a, b), CtTuple::between(b, a))
        }
    }

    fn event(kind: CtEventKind, id: u32) -> CtUpdate {
        CtUpdate::Event(CtEvent { kind, entry: entry(id), at: std::time::SystemTime::now(), origin: EventOrigin::Netlink })
    }

    /// Runs the conntrack thread over `updates` with room for `max` entries.
    fn collect(updates: Vec<CtUpdate>, max: usize) -> (Vec<u32>, u64) {
        let (tx, rx) = sync_channel(updates.len() + 1);
        for u in updates {
            tx.send(u).unwrap();
        }
        drop(tx);
        let (attr, _attr_rx) = sync_channel(QUEUE);
        let (entries, _, evicted) = collect_conntrack(rx, attr, &Journal::default(), Arc::new(Mutex::new(CtStore::new(max))), Arc::default());
        (entries.iter().map(|e| e.id.unwrap()).collect(), evicted)
    }

    #[test]
    fn conntrack_evicts_destroyed_entries_first_then_the_oldest() {
        // 1..=4 new, 2 and 3 destroyed (3 first), then 5 and 6 need room: 3 and 2 go.
        let mut u: Vec<CtUpdate> = (1..=4).map(|i| event(CtEventKind::New, i)).collect();
        u.push(event(CtEventKind::Destroy, 3));
        u.push(event(CtEventKind::Destroy, 2));
        u.push(event(CtEventKind::New, 5));
        u.push(event(CtEventKind::New, 6));
        assert_eq!(collect(u, 4), (vec![1, 4, 5, 6], 2));
        // Nothing destroyed: the oldest first seen goes, whatever was updated since.
        let mut u: Vec<CtUpdate> = (1..=3).map(|i| event(CtEventKind::New, i)).collect();
        u.push(event(CtEventKind::Update, 1));
        u.push(event(CtEventKind::New, 4));
        assert_eq!(collect(u, 3), (vec![2, 3, 4], 1));
        // Under the cap nothing is evicted, and an entry destroyed twice is kept once.
        let u = vec![event(CtEventKind::New, 1), event(CtEventKind::Destroy, 1), event(CtEventKind::Destroy, 1)];
        assert_eq!(collect(u, 4), (vec![1], 0));
    }

    #[test]
    fn conntrack_queues_stay_bounded_under_churn() {
        let mut s = CtStore::new(100);
        for i in 0..10_000u32 {
            let e = entry(i);
            let key = (e.netns.clone(), e.id, e.proto, e.orig.src_addr(), e.orig.dst_addr());
            s.insert(key.clone(), e);
            if i % 2 == 0 {
                s.destroyed(&key);
                s.destroyed(&key);
            }
            assert!(s.map.len() <= 100);
            assert!(s.order.len() <= 2 * 100 + 1 && s.destroyed.len() <= 2 * 100 + 1, "{i}: {} {}", s.order.len(), s.destroyed.len());
        }
        assert_eq!(s.evicted, 10_000 - 100);
        // The newest odd (live) entries outlived the destroyed ones.
        let ids = s.into_entries().iter().map(|e| e.id.unwrap()).collect::<Vec<_>>();
        assert_eq!(ids.len(), 100);
        assert!(ids.iter().filter(|i| *i % 2 == 1).count() >= 50, "{ids:?}");
        assert_eq!(ids.last(), Some(&9_999));
    }

    #[test]
    fn owners_evict_the_oldest_and_count_it() {
        let mut s = OwnerStore::new(3);
        let key = |p: u16| (Netns::Current, Proto::Tcp, SocketAddr::from(([10, 0, 0, 1], p)), SocketAddr::from(([10, 0, 0, 2], 80)));
        let owner = |pid| (Owner { pid, comm: "socat".into() }, 3);
        for p in 1..=3 {
            s.insert(key(p), owner(u32::from(p)));
        }
        // Replacing keeps the place; a fourth key evicts the oldest.
        s.insert(key(1), owner(11));
        s.insert(key(4), owner(4));
        assert_eq!((s.len(), s.evicted), (3, 1));
        assert!(s.get(&key(1)).is_none());
        assert_eq!(s.get(&key(2)).map(|o| o.0.pid), Some(2));
        for p in 5..1000 {
            s.insert(key(p), owner(u32::from(p)));
        }
        assert_eq!((s.map.len(), s.order.len(), s.evicted), (3, 3, 996));
    }

    /// A finished TCP record of `client -> server` at point `point`.
    fn record(id: u64, point: u32, client: SocketAddr, server: SocketAddr) -> FlowRecord {
        let end = |a: SocketAddr| crate::flow::Endpoint { addr: a.ip(), port: a.port() };
        FlowRecord {
            info: FlowInfo { id, point_index: point, point: "p".into(), proto: FlowProto::Tcp, client: end(client), server: end(server) },
            packets: [1, 1],
            bytes: [0, 0],
            first: crate::flow::Nanos(0),
            last: crate::flow::Nanos(0),
            conn_state: crate::flow::ConnState::S1,
            history: String::new(),
            end: crate::flow::EndReason::Eof,
            tcp: None,
        }
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// An entry of `orig` rewritten to `reply` (reply direction), in namespace `ns`.
    fn nat(id: u32, ns: &str, orig: (&str, &str), reply: (&str, &str)) -> CtEntry {
        let t = |(s, d): (&str, &str)| CtTuple::between(sa(s), sa(d));
        CtEntry { netns: Netns::Named(ns.into()), orig: t(orig), reply: t(reply), ..entry(id) }
    }

    #[test]
    fn so_far_copies_only_what_bears_on_the_batch() {
        let ns = || Netns::Named("ev".into());
        let so = |local: &str, remote: &str, ns: Netns, comm: &str| SocketOwner {
            netns: ns,
            proto: Proto::Tcp,
            local: sa(local),
            remote: sa(remote),
            owner: Owner { pid: 7, comm: comm.into() },
        };
        let entries = vec![
            // A forwarder's connection to a DNATed 127.0.0.1: the wire side is the record's
            // tuple (its reply, reversed).
            nat(1, "ev", ("127.0.0.1:39676", "127.0.0.1:55001"), ("192.168.49.2:8443", "192.168.49.1:39676")),
            // Another connection.
            nat(2, "ev", ("127.0.0.1:39678", "127.0.0.1:55001"), ("192.168.49.2:8443", "192.168.49.1:39678")),
            // Not rewritten, of the second record (original tuple, the other way round).
            nat(3, "ev", ("10.0.0.2:80", "10.0.0.1:5000"), ("10.0.0.1:5000", "10.0.0.2:80")),
        ];
        let owners = vec![
            so("192.168.49.1:39676", "192.168.49.2:8443", ns(), "client"),
            so("127.0.0.1:39676", "127.0.0.1:55001", ns(), "forwarder"),
            so("127.0.0.1:39678", "127.0.0.1:55001", ns(), "other"),
            // The record's tuple in a namespace the record's point is not in.
            so("192.168.49.2:8443", "192.168.49.1:39676", Netns::Named("elsewhere".into()), "elsewhere"),
            // An IPv4 socket of a record with IPv4-mapped addresses.
            so("10.0.0.2:80", "10.0.0.1:5000", ns(), "server"),
        ];
        let points = HashMap::from([(0, ns())]);
        let so_far = EvidenceSoFar::holding(entries, owners, points.clone());
        // A socket looked up and not found (unknown) is left out.
        lock(&so_far.owners).insert((ns(), Proto::Tcp, sa("10.0.0.1:5000"), sa("10.0.0.2:80")), (Owner { pid: 0, comm: String::new() }, 0));
        let batch = [
            record(1, 0, sa("192.168.49.1:39676"), sa("192.168.49.2:8443")),
            record(2, 0, sa("[::ffff:10.0.0.1]:5000"), sa("[::ffff:10.0.0.2]:80")),
        ];
        let ev = so_far.for_records(&batch);
        assert_eq!(ev.conntrack.iter().map(|(e, scope)| (e.id, scope.is_none())).collect::<Vec<_>>(), [(Some(1), true), (Some(3), true)]);
        let mut comms: Vec<&str> = ev.owners.iter().map(|o| o.owner.comm.as_str()).collect();
        comms.sort_unstable();
        assert_eq!(comms, ["client", "forwarder", "server"]);
        assert_eq!(ev.point_netns, points);
        // Nothing of a batch without TCP or UDP, or of connections the store does not have.
        let empty = so_far.for_records(&[record(3, 0, sa("10.9.9.9:1"), sa("10.9.9.8:2"))]);
        assert!(empty.conntrack.is_empty() && empty.owners.is_empty());
    }

    /// The evidence threads share what they gathered while they run, and take it out when
    /// they end ([`LiveEvidence::finish`] returns it): a batch joined after that gets it
    /// once, from the final evidence.
    #[test]
    fn so_far_sees_what_the_threads_gathered_until_finish() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        let conn = std::net::TcpStream::connect(server).unwrap();
        let (_accepted, _) = listener.accept().unwrap();
        let client = conn.local_addr().unwrap();
        let ev = LiveEvidence::with_memory(&[(0, Netns::Current)], 1 << 20);
        let so_far = ev.so_far();
        let batch = [record(1, 0, client, server)];
        // Both sockets asked for as the flow table asks for a flow seen without its SYN.
        (ev.hook())(&batch[0].info);
        let t0 = Instant::now();
        let found = loop {
            let e = so_far.for_records(&batch);
            if e.owners.len() == 2 || t0.elapsed() > Duration::from_secs(10) {
                break e;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let me = std::process::id();
        let mut got: Vec<(SocketAddr, u32)> = found.owners.iter().map(|o| (o.local, o.owner.pid)).collect();
        got.sort_unstable();
        let mut want = [(client, me), (server, me)];
        want.sort_unstable();
        assert_eq!(got, want, "{found:?}");
        let (last, _) = ev.finish();
        assert!(last.owners.iter().any(|o| o.local == client && o.owner.pid == me));
        let after = so_far.for_records(&batch);
        assert!(after.owners.is_empty() && after.conntrack.is_empty());
        // The conntrack thread leaves its store empty too.
        let shared = Arc::new(Mutex::new(CtStore::new(4)));
        let (tx, rx) = sync_channel(2);
        tx.send(event(CtEventKind::New, 1)).unwrap();
        drop(tx);
        let (attr, _attr_rx) = sync_channel(QUEUE);
        let (entries, _, _) = collect_conntrack(rx, attr, &Journal::default(), shared.clone(), Arc::default());
        assert_eq!((entries.len(), lock(&shared).map.len()), (1, 0));
    }

    #[test]
    fn the_evidence_share_sets_both_caps() {
        let (e, o) = evidence_caps(crate::limits::Limits::default().evidence_memory);
        assert!(e * BYTES_PER_ENTRY + o * BYTES_PER_OWNER <= crate::limits::Limits::default().evidence_memory);
        assert!(e >= 9_000 && o >= 35_000, "{e} {o}");
        assert_eq!(evidence_caps(0), (1, 1));
        assert_eq!(evidence_caps(usize::MAX / 2), (MAX_ENTRIES, MAX_OWNERS));
    }
}
