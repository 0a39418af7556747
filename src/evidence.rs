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
//!   first datagram of a UDP tuple, as soon as libpcap hands the frame over (live joins
//!   run in immediate mode, so that is within a millisecond or so, while the flow table
//!   sees frames only after the reorder window: a connection of a few milliseconds is
//!   over by then); and the flow table's new-flow hook ([`LiveEvidence::hook`]) for
//!   observations that started before the capture (no SYN). The attribution thread looks
//!   up both sockets of the observation in the capture point's namespace, skipping sockets
//!   already attributed exactly (the client's exactly, at SYN time; the
//!   server's may only be its listener then, so a listener-only answer is looked up again
//!   [`RETRY_AFTER`] later, when the accepted socket exists, and the better answer kept).
//!   For every conntrack entry with a rewrite, the socket of its original tuple (the one
//!   the socket itself sees, before NAT) is looked up in the entry's namespace: that is the
//!   process behind a leg no interface shows (e.g. a forwarder connecting to a DNATed
//!   `127.0.0.1`). What is not found stays unknown.
//! * Memory is bounded: at most [`MAX_ENTRIES`] conntrack entries and [`MAX_OWNERS`] socket
//!   owners are kept; what does not fit is counted.
//! * [`LiveEvidence::finish`] stops the watchers, drains both threads and returns what they
//!   gathered; it waits at most about [`RETRY_AFTER`] plus the queued lookups.

use crate::conntrack::{ConntrackWatcher, CtEntry, CtProto, CtUpdate, WatchOptions};
use crate::flow::{FlowInfo, Proto as FlowProto};
use crate::join::{Owner, Proto};
use crate::netns::Netns;
use crate::process::{MatchKind, ProcessIndex, SocketKey};
use crate::report::paths::{JoinEvidence, SocketOwner};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Attribution requests queued at most.
pub const QUEUE: usize = 4096;
/// A listener-only answer is asked again this much later.
pub const RETRY_AFTER: Duration = Duration::from_millis(15);
/// Conntrack entries kept at most.
pub const MAX_ENTRIES: usize = 1 << 18;
/// Socket owners kept at most.
pub const MAX_OWNERS: usize = 1 << 18;

/// Counters of the live evidence.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EvidenceStats {
    /// Namespaces whose conntrack is watched.
    pub conntrack_watched: u64,
    /// `NETNS: reason` for each namespace that could not be watched.
    pub conntrack_unavailable: Vec<String>,
    pub conntrack_entries: u64,
    pub conntrack_dropped: u64,
    pub conntrack_lost_events: u64,
    pub attribution_requests: u64,
    pub attribution_dropped: u64,
    pub sockets_attributed: u64,
    pub sockets_unknown: u64,
    pub owners_dropped: u64,
}

/// One socket to attribute.
#[derive(Clone, Debug)]
struct Request {
    netns: Netns,
    proto: Proto,
    local: SocketAddr,
    remote: SocketAddr,
    /// Look only after [`RETRY_AFTER`] (a server's accepted socket, or a flow the flow
    /// table reported late); otherwise at once (a connecting socket, a pre-NAT socket).
    deferred: bool,
    /// When it was asked (for the debug output: time spent queued).
    asked: Instant,
}

type OwnerKey = (Netns, Proto, SocketAddr, SocketAddr);

/// The capture threads' side: queues attribution requests for connection starts.
#[derive(Clone, Debug)]
pub struct SocketTap {
    tx: SyncSender<Request>,
    requests: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
}

/// UDP tuples a capture thread has asked about already (cleared when full).
const UDP_SEEN: usize = 4096;

impl SocketTap {
    fn send(&self, r: Request) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if self.tx.try_send(r).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
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
                if udp_seen.len() >= UDP_SEEN {
                    udp_seen.clear();
                }
                if !udp_seen.insert(key) {
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
    ct_thread: Option<JoinHandle<(Vec<CtEntry>, u64, u64)>>,
    attr_thread: Option<JoinHandle<(HashMap<OwnerKey, (Owner, u8)>, u64)>>,
    attr_tx: Option<SyncSender<Request>>,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    point_netns: HashMap<u32, Netns>,
    stats: EvidenceStats,
}

impl LiveEvidence {
    /// Starts watching conntrack in every namespace of `points` (`(point index, netns)`) and
    /// the attribution thread (which first warms its process cache and opens each
    /// namespace's socket tables).
    pub fn start(points: &[(u32, Netns)]) -> LiveEvidence {
        let stop = Arc::new(AtomicBool::new(false));
        let (attr_tx, attr_rx) = sync_channel::<Request>(QUEUE);
        let mut stats = EvidenceStats::default();
        let (ct_tx, ct_rx) = sync_channel::<CtUpdate>(QUEUE);
        let mut namespaces: Vec<Netns> = Vec::new();
        for (_, ns) in points {
            if !namespaces.contains(ns) {
                namespaces.push(ns.clone());
            }
        }
        let mut watchers = Vec::new();
        for ns in &namespaces {
            match ConntrackWatcher::start(ns, WatchOptions::default(), ct_tx.clone()) {
                Ok(w) => watchers.push(w),
                Err(e) => stats.conntrack_unavailable.push(format!("{ns}: {e}")),
            }
        }
        stats.conntrack_watched = watchers.len() as u64;
        drop(ct_tx);
        let ct_attr = attr_tx.clone();
        let ct_thread =
            std::thread::Builder::new().name("conntrack".into()).spawn(move || collect_conntrack(ct_rx, ct_attr)).ok();
        let attr_stop = stop.clone();
        let warm = namespaces.clone();
        let attr_thread = std::thread::Builder::new()
            .name("attribution".into())
            .spawn(move || attribute(attr_rx, attr_stop, warm))
            .ok();
        LiveEvidence {
            watchers,
            ct_thread,
            attr_thread,
            attr_tx: Some(attr_tx),
            stop,
            requests: Arc::new(AtomicU64::new(0)),
            dropped: Arc::new(AtomicU64::new(0)),
            point_netns: points.iter().cloned().collect(),
            stats,
        }
    }

    /// The capture threads' tap (`LiveOptions::tap`).
    pub fn tap(&self) -> Option<SocketTap> {
        Some(SocketTap { tx: self.attr_tx.clone()?, requests: self.requests.clone(), dropped: self.dropped.clone() })
    }

    /// The new-flow hook for [`crate::report::FlowReport::on_new_flow`]: queues the
    /// attribution of both sockets of a TCP/UDP observation at a point with a known
    /// namespace; never blocks.
    pub fn hook(&self) -> Box<dyn FnMut(&FlowInfo)> {
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
        let (entries, dropped, lost) = self.ct_thread.take().and_then(|h| h.join().ok()).unwrap_or_default();
        stats.conntrack_entries = entries.len() as u64;
        stats.conntrack_dropped = dropped;
        stats.conntrack_lost_events += lost;
        self.attr_tx = None;
        self.stop.store(true, Ordering::Relaxed);
        let (owners, owners_dropped) = self.attr_thread.take().and_then(|h| h.join().ok()).unwrap_or_default();
        stats.owners_dropped = owners_dropped;
        stats.attribution_requests = self.requests.load(Ordering::Relaxed);
        stats.attribution_dropped = self.dropped.load(Ordering::Relaxed);
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
        ev.owners.sort_by(|a, b| (a.local, a.remote).cmp(&(b.local, b.remote)));
        (ev, stats)
    }
}

impl Drop for LiveEvidence {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The conntrack thread: keeps the latest state of every entry, asks for the owner of each
/// rewritten entry's original socket. Returns `(entries, dropped, lost events)`.
fn collect_conntrack(rx: Receiver<CtUpdate>, attr: SyncSender<Request>) -> (Vec<CtEntry>, u64, u64) {
    let mut entries: Vec<CtEntry> = Vec::new();
    let mut index: HashMap<(Netns, Option<u32>, CtProto, SocketAddr, SocketAddr), usize> = HashMap::new();
    let (mut dropped, mut lost) = (0u64, 0u64);
    for u in rx {
        let e = match u {
            CtUpdate::Entry(e) => e,
            CtUpdate::Event(ev) => ev.entry,
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
        match index.get(&key) {
            Some(&i) => {
                // Later messages may lack fields an earlier one had (DESTROY: no timeout).
                let old = &mut entries[i];
                let start = old.start_ns.or(e.start_ns);
                *old = CtEntry { start_ns: e.start_ns.or(start), ..e };
            }
            None if entries.len() >= MAX_ENTRIES => dropped += 1,
            None => {
                if !e.rewrite().is_none() {
                    let _ = attr.try_send(Request {
                        netns: e.netns.clone(),
                        proto,
                        local: e.orig.src_addr(),
                        remote: e.orig.dst_addr(),
                        deferred: false,
                        asked: Instant::now(),
                    });
                }
                index.insert(key, entries.len());
                entries.push(e);
            }
        }
    }
    (entries, dropped, lost)
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

/// The connected sockets of process `pid` in `netns`: its `socket:[INODE]` descriptors
/// matched with the namespace's table (read now). Processes with many descriptors are
/// skipped (a forwarder's connection child holds a handful).
fn sockets_of(index: &mut ProcessIndex, netns: &Netns, proto: Proto, pid: u32) -> Vec<(SocketAddr, SocketAddr)> {
    const MAX_FDS: usize = 64;
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let mut inodes = std::collections::HashSet::new();
    for (n, e) in dir.flatten().enumerate() {
        if n >= MAX_FDS {
            return Vec::new();
        }
        if let Ok(t) = std::fs::read_link(e.path())
            && let Some(i) = t.to_str().and_then(crate::process::procfs::parse_socket_link)
        {
            inodes.insert(i);
        }
    }
    if inodes.len() < 2 {
        return Vec::new();
    }
    let p = match proto {
        Proto::Tcp => crate::process::SockProto::Tcp,
        Proto::Udp => crate::process::SockProto::Udp,
    };
    let Ok(rows) = index.sockets(netns, p) else {
        return Vec::new();
    };
    rows.into_iter()
        .filter(|r| r.inode != 0 && inodes.contains(&r.inode) && r.remote.port() != 0)
        .map(|r| (r.local, r.remote))
        .collect()
}

/// The attribution thread: immediate requests first, each as it comes; deferred ones when
/// due and nothing immediate waits (each looked up at most twice: [`RETRY_AFTER`] and four
/// times that after it was asked).
fn attribute(rx: Receiver<Request>, stop: Arc<AtomicBool>, warm: Vec<Netns>) -> (HashMap<OwnerKey, (Owner, u8)>, u64) {
    let mut index = ProcessIndex::new();
    index.scan_all();
    for ns in &warm {
        let _ = index.sockets(ns, crate::process::SockProto::Tcp);
    }
    let mut out: HashMap<OwnerKey, (Owner, u8)> = HashMap::new();
    let mut later: std::collections::VecDeque<(Instant, u8, Request)> = std::collections::VecDeque::new();
    // FLOWTRAIL_DEBUG_ATTRIBUTION=1: every lookup and its answer on stderr.
    let debug = std::env::var_os("FLOWTRAIL_DEBUG_ATTRIBUTION").is_some();
    let mut owners_dropped = 0u64;
    // Processes whose sockets were listed already.
    let mut expanded: std::collections::HashSet<u32> = std::collections::HashSet::new();
    let mut look = |r: &Request, out: &mut HashMap<OwnerKey, (Owner, u8)>| -> u8 {
        let k = (r.netns.clone(), r.proto, r.local, r.remote);
        if !r.deferred
            && let Some((_, rk)) = out.get(&k)
            && *rk >= 3
        {
            return *rk;
        }
        let key = match r.proto {
            Proto::Tcp => SocketKey::tcp(r.local, r.remote),
            Proto::Udp => SocketKey::udp(r.local, r.remote),
        };
        let t0 = Instant::now();
        let a = index.lookup(&r.netns, &key);
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
                a.owners().iter().map(|p| format!(" {p}")).collect::<String>()
            );
        }
        // Several holders (a listener's accepted socket right after `fork`): the newest
        // process, i.e. the child that serves the connection.
        let owner = a.owners().iter().max_by_key(|p| p.pid).map(Owner::from);
        // A connecting socket's owner also holds the socket it forwards from (a forwarder's
        // child connects on behalf of the connection it accepted): attribute that one now,
        // while it is certainly open, instead of trusting a later lookup of the server side.
        let mut siblings = Vec::new();
        if !r.deferred
            && rk == 3
            && let Some(o) = &owner
            && expanded.insert(o.pid)
        {
            let t1 = Instant::now();
            siblings = sockets_of(&mut index, &r.netns, r.proto, o.pid);
            if debug {
                eprintln!("flowtrail: attribution: sockets of {}: {siblings:?} in {:?}", o.pid, t1.elapsed());
            }
        }
        let room = out.len() < MAX_OWNERS;
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
            None if room => {
                let unknown = || Owner { pid: 0, comm: String::new() };
                out.insert(k, owner.map_or_else(|| (unknown(), 0), |o| (o, rk)));
            }
            None => owners_dropped += 1,
        }
        if let Some(o) = a.owners().iter().max_by_key(|p| p.pid).map(Owner::from) {
            for (local, remote) in siblings {
                let k = (r.netns.clone(), r.proto, local, remote);
                if out.len() < MAX_OWNERS || out.contains_key(&k) {
                    out.insert(k, (o.clone(), 3));
                }
            }
        }
        rk
    };
    let mut disconnected = false;
    loop {
        // Immediate requests first.
        if !disconnected {
            match rx.try_recv() {
                Ok(r) => {
                    if r.deferred {
                        if later.len() < QUEUE {
                            later.push_back((Instant::now() + RETRY_AFTER, 0, r));
                        }
                    } else {
                        look(&r, &mut out);
                    }
                    continue;
                }
                Err(std::sync::mpsc::TryRecvError::Disconnected) => disconnected = true,
                Err(std::sync::mpsc::TryRecvError::Empty) => {}
            }
        }
        let now = Instant::now();
        if let Some((due, _, _)) = later.front()
            && *due <= now
        {
            // Deferred sockets are looked at twice whatever the first answer (the process
            // holding an accepted socket can change once, parent to child).
            if let Some((_, tries, r)) = later.pop_front()
                && look(&r, &mut out) <= 3
                && tries == 0
                && later.len() < QUEUE
            {
                later.push_back((now + 4 * RETRY_AFTER, 1, r));
            }
            continue;
        }
        if (disconnected || stop.load(Ordering::Relaxed)) && later.is_empty() {
            break;
        }
        let wait = later
            .front()
            .map_or(Duration::from_millis(50), |(due, _, _)| due.saturating_duration_since(now))
            .max(Duration::from_micros(200));
        if disconnected {
            std::thread::sleep(wait);
            continue;
        }
        match rx.recv_timeout(wait) {
            Ok(r) => {
                if r.deferred {
                    if later.len() < QUEUE {
                        later.push_back((Instant::now() + RETRY_AFTER, 0, r));
                    }
                } else {
                    look(&r, &mut out);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => disconnected = true,
        }
    }
    (out, owners_dropped)
}
