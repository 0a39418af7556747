//! [`ConntrackWatcher`]: one background thread per namespace that hands the table and its
//! changes to a channel.

use super::source::{CtSocket, ProcTable, Recv};
use super::wire::{self, CtMessage};
use super::{Backend, ConntrackError, CtEntry, CtEvent, CtEventKind, CtProto, CtTuple, EventOrigin};
use crate::netns::Netns;
use crate::priority::{RealtimeCounts, Urgent, raise_priority};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// How often the thread looks at its stop flag while idle.
const STOP_POLL: Duration = Duration::from_millis(100);

/// What the watcher hands over, in order: the initial dump's entries (when asked for),
/// `DumpDone`, then events as they come.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CtUpdate {
    /// One entry of the initial dump.
    Entry(CtEntry),
    /// The initial dump is complete.
    DumpDone { entries: usize },
    /// A NEW, UPDATE or DESTROY event.
    Event(CtEvent),
    /// The kernel dropped events (socket buffer overrun); `total` overruns so far.
    Lost { total: u64 },
    /// Something failed; the message names the namespace. After a failed initial dump the
    /// watcher keeps streaming events; after a failed receive it stops.
    Failed(String),
}

#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// Netlink, procfs, or netlink else procfs.
    pub backend: Backend,
    /// Send the current table first (as [`CtUpdate::Entry`] + [`CtUpdate::DumpDone`]).
    pub initial_dump: bool,
    /// How often the procfs fallback rereads the table.
    pub poll_interval: Duration,
    /// Nice value the watcher thread asks for, where allowed (`CAP_SYS_NICE`); `None`
    /// leaves it as it is.
    pub nice: Option<i32>,
    /// Run the thread real-time where allowed, guarded, counted here
    /// ([`crate::priority::Urgent`]; at `nice` when it rests or is not allowed): netlink
    /// events only, after the initial dump (the procfs fallback stays at `nice`).
    pub realtime: Option<Arc<RealtimeCounts>>,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            backend: Backend::Auto,
            initial_dump: true,
            poll_interval: Duration::from_millis(200),
            nice: None,
            realtime: None,
        }
    }
}

/// Counters of one watcher (a snapshot).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchStats {
    pub dump_entries: u64,
    pub events: u64,
    /// Kernel overruns (events lost before flowtrail could read them).
    pub overruns: u64,
    /// Messages or lines that did not parse (skipped).
    pub malformed: u64,
    /// Updates dropped because the channel was full.
    pub channel_full: u64,
    /// Table reads of the procfs fallback.
    pub polls: u64,
}

#[derive(Default)]
struct Counters {
    dump_entries: AtomicU64,
    events: AtomicU64,
    overruns: AtomicU64,
    malformed: AtomicU64,
    channel_full: AtomicU64,
    polls: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> WatchStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        WatchStats {
            dump_entries: g(&self.dump_entries),
            events: g(&self.events),
            overruns: g(&self.overruns),
            malformed: g(&self.malformed),
            channel_full: g(&self.channel_full),
            polls: g(&self.polls),
        }
    }
}

fn bump(a: &AtomicU64) -> u64 {
    a.fetch_add(1, Ordering::Relaxed) + 1
}

/// Watches the conntrack table of one namespace on a background thread.
///
/// Sockets and files are opened in [`ConntrackWatcher::start`] (inside the namespace), so
/// permission and availability problems are errors there, not later. The thread ends when
/// [`ConntrackWatcher::stop`] is called (within about 100 ms), when the watcher is dropped,
/// or when the receiver hangs up.
pub struct ConntrackWatcher {
    ns: Netns,
    backend: Backend,
    fallback: Option<String>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    handle: Option<JoinHandle<()>>,
}

enum Source {
    Netlink { events: CtSocket, dump: Option<CtSocket> },
    Proc { table: ProcTable, interval: Duration },
}

impl ConntrackWatcher {
    pub fn start(ns: &Netns, opts: WatchOptions, tx: SyncSender<CtUpdate>) -> Result<Self, ConntrackError> {
        let open_netlink = || -> Result<Source, ConntrackError> {
            // Events first: whatever happens during the dump is then also in the stream.
            let events = CtSocket::open_events(ns)?;
            let dump = if opts.initial_dump { Some(CtSocket::open(ns)?) } else { None };
            Ok(Source::Netlink { events, dump })
        };
        let open_proc = || -> Result<Source, ConntrackError> {
            Ok(Source::Proc { table: ProcTable::open(ns)?, interval: opts.poll_interval.max(Duration::from_millis(10)) })
        };
        let mut fallback = None;
        let source = match opts.backend {
            Backend::Netlink => open_netlink()?,
            Backend::Proc => open_proc()?,
            Backend::Auto => match open_netlink() {
                Ok(s) => s,
                Err(ConntrackError::Netns(e)) => return Err(e.into()),
                Err(nl) => match open_proc() {
                    Ok(s) => {
                        fallback = Some(nl.to_string());
                        s
                    }
                    Err(pe) => {
                        return Err(ConntrackError::Unavailable {
                            ns: ns.clone(),
                            netlink: nl.to_string(),
                            proc: pe.to_string(),
                        });
                    }
                },
            },
        };
        let backend = match source {
            Source::Netlink { .. } => Backend::Netlink,
            Source::Proc { .. } => Backend::Proc,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let run = Run { ns: ns.clone(), tx, stop: stop.clone(), counters: counters.clone() };
        let initial_dump = opts.initial_dump;
        let nice = opts.nice;
        let realtime = opts.realtime;
        let label = ns.label_prefix();
        let handle = std::thread::Builder::new()
            .name(format!("conntrack-{}", label.trim_end_matches('/')))
            .spawn(move || {
                if let Some(n) = nice {
                    raise_priority(n);
                }
                match source {
                    // Real-time (where asked) once the initial dump is done: the events are
                    // short jobs, the dump of a large table is not.
                    Source::Netlink { events, dump } => run.netlink(events, dump, realtime),
                    // The procfs fallback rereads the whole table each time: not a short
                    // job, so never real-time.
                    Source::Proc { table, interval } => run.proc(table, interval, initial_dump),
                }
            })
            .map_err(|e| ConntrackError::Thread { ns: ns.clone(), msg: e.to_string() })?;
        Ok(ConntrackWatcher { ns: ns.clone(), backend, fallback, stop, counters, handle: Some(handle) })
    }

    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    /// [`Backend::Netlink`] or [`Backend::Proc`].
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Why netlink was not used, when [`Backend::Auto`] fell back to procfs.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    pub fn stats(&self) -> WatchStats {
        self.counters.snapshot()
    }

    /// Whether the thread still runs.
    pub fn is_running(&self) -> bool {
        self.handle.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Stops the thread, waits for it, returns the final counters.
    pub fn stop(mut self) -> WatchStats {
        self.shutdown();
        self.counters.snapshot()
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for ConntrackWatcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Run {
    ns: Netns,
    tx: SyncSender<CtUpdate>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
}

impl Run {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Hands one update over; false when the receiver is gone (the thread then ends).
    fn send(&self, u: CtUpdate) -> bool {
        match self.tx.try_send(u) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                bump(&self.counters.channel_full);
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Events (after the dump, if asked); `realtime`: run them real-time ([`Urgent`], resting
    /// at the nice value the thread set at its start).
    fn netlink(self, mut events: CtSocket, dump: Option<CtSocket>, realtime: Option<Arc<RealtimeCounts>>) {
        if let Some(mut d) = dump {
            match d.dump_raw() {
                Ok((_, dump)) => {
                    let n = dump.entries.len();
                    self.counters.malformed.fetch_add(dump.malformed as u64, Ordering::Relaxed);
                    for e in dump.entries {
                        bump(&self.counters.dump_entries);
                        if !self.send(CtUpdate::Entry(e)) {
                            return;
                        }
                    }
                    if !self.send(CtUpdate::DumpDone { entries: n }) {
                        return;
                    }
                }
                Err(e) => {
                    if !self.send(CtUpdate::Failed(e.to_string())) {
                        return;
                    }
                }
            }
        }
        let mut urgent = realtime.map(|counts| Urgent::start(None, counts));
        while !self.stopped() {
            if let Some(u) = &mut urgent {
                u.tick();
            }
            let data = match events.recv(STOP_POLL) {
                Ok(Recv::Idle) => continue,
                Ok(Recv::Overrun) => {
                    let total = bump(&self.counters.overruns);
                    if !self.send(CtUpdate::Lost { total }) {
                        return;
                    }
                    continue;
                }
                Ok(Recv::Data(d)) => d,
                Err(e) => {
                    let _ = self.send(CtUpdate::Failed(e.to_string()));
                    return;
                }
            };
            let at = SystemTime::now();
            let mut out = Vec::new();
            for m in wire::messages(data) {
                match m {
                    Ok(CtMessage::Entry { kind, mut entry, .. }) => {
                        entry.netns = self.ns.clone();
                        out.push(CtUpdate::Event(CtEvent { kind, entry, at, origin: EventOrigin::Netlink }));
                    }
                    Ok(CtMessage::Overrun) => {
                        let total = bump(&self.counters.overruns);
                        out.push(CtUpdate::Lost { total });
                    }
                    Ok(_) => {}
                    Err(_) => {
                        bump(&self.counters.malformed);
                    }
                }
            }
            for u in out {
                if matches!(u, CtUpdate::Event(_)) {
                    bump(&self.counters.events);
                }
                if !self.send(u) {
                    return;
                }
            }
        }
    }

    fn proc(self, mut table: ProcTable, interval: Duration, initial_dump: bool) {
        let mut prev: HashMap<Key, CtEntry> = HashMap::new();
        let mut first = true;
        while !self.stopped() {
            let started = Instant::now();
            bump(&self.counters.polls);
            match table.read() {
                Ok(d) => {
                    self.counters.malformed.fetch_add(d.malformed as u64, Ordering::Relaxed);
                    let at = SystemTime::now();
                    let cur: HashMap<Key, CtEntry> = d.entries.into_iter().map(|e| (key(&e), e)).collect();
                    let updates = if first { initial(&cur, initial_dump) } else { diff(&prev, &cur, at) };
                    for u in updates {
                        match &u {
                            CtUpdate::Entry(_) => bump(&self.counters.dump_entries),
                            CtUpdate::Event(_) => bump(&self.counters.events),
                            _ => 0,
                        };
                        if !self.send(u) {
                            return;
                        }
                    }
                    prev = cur;
                    first = false;
                }
                Err(e) => {
                    let _ = self.send(CtUpdate::Failed(e.to_string()));
                    return;
                }
            }
            // Sleep in short slices so stop is prompt.
            while !self.stopped() {
                let left = interval.saturating_sub(started.elapsed());
                if left.is_zero() {
                    break;
                }
                std::thread::sleep(left.min(STOP_POLL));
            }
        }
    }
}

/// Identity of an entry across procfs reads (no ids there): protocol, original tuple, zone.
type Key = (CtProto, CtTuple, Option<u16>);

fn key(e: &CtEntry) -> Key {
    (e.proto, e.orig, e.zone)
}

fn initial(cur: &HashMap<Key, CtEntry>, send: bool) -> Vec<CtUpdate> {
    if !send {
        return Vec::new();
    }
    let mut v: Vec<&CtEntry> = cur.values().collect();
    v.sort_by_key(|e| (e.proto, e.orig.src, e.orig.sport, e.orig.dst, e.orig.dport));
    let mut out: Vec<CtUpdate> = v.into_iter().cloned().map(CtUpdate::Entry).collect();
    out.push(CtUpdate::DumpDone { entries: cur.len() });
    out
}

/// Events that turn `prev` into `cur`: NEW for added entries, UPDATE when the TCP state or
/// the status changed, DESTROY (with the last entry seen) for removed ones.
fn diff(prev: &HashMap<Key, CtEntry>, cur: &HashMap<Key, CtEntry>, at: SystemTime) -> Vec<CtUpdate> {
    let ev = |kind, entry: &CtEntry| CtUpdate::Event(CtEvent { kind, entry: entry.clone(), at, origin: EventOrigin::ProcPoll });
    let mut out = Vec::new();
    let mut keys: Vec<&Key> = cur.keys().collect();
    keys.sort_by_key(|k| (k.0, k.1.src, k.1.sport, k.1.dst, k.1.dport));
    for k in keys {
        let e = &cur[k];
        match prev.get(k) {
            None => out.push(ev(CtEventKind::New, e)),
            Some(p) if p.tcp_state != e.tcp_state || p.status != e.status || p.reply != e.reply => {
                out.push(ev(CtEventKind::Update, e))
            }
            Some(_) => {}
        }
    }
    let mut gone: Vec<(&Key, &CtEntry)> = prev.iter().filter(|(k, _)| !cur.contains_key(*k)).collect();
    gone.sort_by_key(|(k, _)| (k.0, k.1.src, k.1.sport, k.1.dst, k.1.dport));
    for (_, e) in gone {
        out.push(ev(CtEventKind::Destroy, e));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::text::parse_line;

    fn map(lines: &[&str]) -> HashMap<Key, CtEntry> {
        lines.iter().map(|l| parse_line(l).unwrap().entry).map(|e| (key(&e), e)).collect()
    }

    #[test]
    fn proc_diff_synthesizes_new_update_destroy() {
        let a = "tcp 6 120 SYN_SENT src=127.0.0.1 dst=127.0.0.1 sport=1 dport=55001 [UNREPLIED] src=192.168.49.2 dst=192.168.49.1 sport=8443 dport=1";
        let a2 = "tcp 6 431999 ESTABLISHED src=127.0.0.1 dst=127.0.0.1 sport=1 dport=55001 src=192.168.49.2 dst=192.168.49.1 sport=8443 dport=1 [ASSURED]";
        let a3 = "tcp 6 431998 ESTABLISHED src=127.0.0.1 dst=127.0.0.1 sport=1 dport=55001 src=192.168.49.2 dst=192.168.49.1 sport=8443 dport=1 [ASSURED]";
        let b = "udp 17 29 src=10.0.0.1 dst=10.0.0.2 sport=5 dport=53 src=10.0.0.2 dst=10.0.0.1 sport=53 dport=5";
        let at = SystemTime::UNIX_EPOCH;
        let kinds = |v: Vec<CtUpdate>| -> Vec<CtEventKind> {
            v.into_iter().map(|u| match u { CtUpdate::Event(e) => e.kind, u => panic!("{u:?}") }).collect()
        };
        assert_eq!(kinds(diff(&map(&[]), &map(&[a, b]), at)), [CtEventKind::New, CtEventKind::New]);
        assert_eq!(kinds(diff(&map(&[a, b]), &map(&[a2, b]), at)), [CtEventKind::Update]);
        // A timeout tick alone is not an update.
        assert!(diff(&map(&[a2]), &map(&[a3]), at).is_empty());
        assert_eq!(kinds(diff(&map(&[a2, b]), &map(&[a2]), at)), [CtEventKind::Destroy]);
        let init = initial(&map(&[a, b]), true);
        assert_eq!(init.len(), 3);
        assert_eq!(init[2], CtUpdate::DumpDone { entries: 2 });
        assert!(initial(&map(&[a]), false).is_empty());
    }
}
