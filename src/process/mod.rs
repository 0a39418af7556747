//! Process attribution: which process owns a socket, per network namespace.
//!
//! ## Contract
//!
//! [`ProcessIndex::lookup`] takes a namespace and a [`SocketKey`] (protocol, local and
//! remote address as the socket itself sees them, i.e. before any NAT on the way out) and
//! returns an [`Attribution`]: the processes holding the socket (pid, `comm`, full
//! `cmdline`), how the socket was matched ([`MatchKind`]), or [`Attribution::Unknown`] with
//! a reason. It never fails and never panics; every problem is a reason or a counter in
//! [`IndexStats`].
//!
//! How a socket is found:
//!
//! 1. The socket with exactly that local and remote address gives the inode
//!    ([`MatchKind::Socket`]); IPv4-mapped IPv6 addresses match their IPv4 form. Where it is
//!    found, cheapest first: the rows read last, when a cached owner still holds the row's
//!    inode (a connected socket's addresses never change and an inode is not reused while
//!    held, so no read is needed); the kernel's own lookup through sock_diag ([`diag`],
//!    microseconds); the namespace's socket tables (`tcp`+`tcp6` or `udp`+`udp6`) read
//!    again, which costs milliseconds because the kernel walks its whole global TCP hash for
//!    each namespace's file (see Cost). sock_diag is skipped, and the tables used, when its
//!    socket cannot be opened or a lookup fails.
//! 2. Otherwise the listening TCP socket on the local port ([`MatchKind::Listener`]): a
//!    connection the server has not `accept`ed yet (at SYN time it is a request socket
//!    without inode) belongs to whoever listens, and an accepted socket's local port is the
//!    listening port. For UDP, the unconnected socket bound to the local port
//!    ([`MatchKind::Unconnected`]).
//! 3. The inode's owners come from `/proc/PID/fd/*` -> `socket:[INODE]` links. This scan is
//!    the expensive part, so it is cached and incremental: a cached `(pid, fd)` is verified
//!    with one `readlink`; on a miss the lowest descriptor that was free at each scan of the
//!    namespace's socket holders is read (a socket made since sits there: one `readlink` a
//!    process), then the pids above the newest one known, up to the last
//!    one the kernel handed out (`/proc/loadavg`), are probed (a process forked a moment
//!    ago; only those in the socket's namespace are scanned), then
//!    the processes are rescanned in tiers, stopping after the first tier that holds the
//!    inode: (a) processes in the same namespace that are new since the last scan or held
//!    sockets then (forwarders and their fresh children; scanned before the process list is
//!    read again, then the new ones listed), (b) the other processes in the namespace, (c)
//!    other processes (a socket can be passed to, or created by a thread of, a process in
//!    another namespace), [`FAR_SCAN`] of them per lookup, round-robin, so that one lookup
//!    never holds up the next for long. Processes that disappeared are dropped from the
//!    cache.
//! 4. When the socket is gone (closed, `TIME_WAIT` rows have no inode) an earlier answer for
//!    the same key is returned as [`MatchKind::Remembered`] (the last 4096 answers are
//!    kept), and it is preferred over a mere [`MatchKind::Listener`] match.
//!
//! So a lookup at connection start (on the SYN) attributes the client side exactly (its
//! socket exists in `SYN_SENT`) and the server side to its listener; a second lookup once the
//! connection is established finds the accepted socket and its owner (the forked child, for
//! `socat fork`). `owners` lists every process found holding the inode, by pid (a listening
//! socket inherited across `fork` is held by the parent and every child); with the tiered
//! scan, holders in a later tier are not searched once an earlier tier had one.
//!
//! ## Namespaces
//!
//! Socket tables are per network namespace; processes, file descriptors and socket inodes
//! are global (one pid namespace is assumed: flowtrail's). `/proc/net` is a symlink to
//! `/proc/self/net`, and `/proc/self` names the thread-group leader, so it shows the
//! namespace of the process's *main thread*, whatever thread reads it. A thread that
//! `setns`-ed must read `/proc/thread-self/net/...` (verified in
//! `tests/process_lab.rs::proc_self_net_is_the_main_threads_namespace`). [`LiveProc`] opens
//! the four tables under `/proc/thread-self/net` once per namespace on a thread inside it
//! ([`crate::netns::run_in`]) and keeps them open: the open file stays bound to that
//! namespace, and seeking back to 0 and reading again gives the current table from any
//! thread. The namespace's own inode (`/proc/thread-self/ns/net`) is read there too and
//! compared with `/proc/PID/ns/net` to tell which processes live in it. The sock_diag socket
//! is opened there the same way. Open files and sockets hold a reference to their namespace:
//! a namespace deleted meanwhile (`ip netns del`, a container gone) lives on until
//! [`ProcessIndex::forget_namespace`] or the index is dropped.
//!
//! ## Failure modes
//!
//! Without root (no `CAP_SYS_PTRACE`/`CAP_DAC_READ_SEARCH`) other users' `/proc/PID/fd` are
//! unreadable: those processes are skipped and counted ([`IndexStats::denied`]), their sockets
//! come out [`UnknownReason::NoOwner`]. Entering a namespace needs `CAP_SYS_ADMIN`: the lookup
//! gives [`UnknownReason::Unreadable`] naming it. Processes and descriptors that vanish
//! mid-scan are skipped. Pid reuse between two scans can make `comm`/`cmdline` stale; owners
//! themselves are always verified against the descriptor.
//!
//! ## Cost
//!
//! Measured on the development machine (2 cores, kernel 6.18, ~1100 processes; the table and
//! the method are in `tests/process_scan_cost.rs`): a verified cache hit 4-8 us; a new
//! connection's socket in a namespace with a few processes 2-6 ms (sock_diag ~40 us, the
//! rest is re-reading the process list), ~10 ms from the tables alone; a full scan of all
//! processes ~100 ms cold, 40-65 ms warm. Cheap enough once per new leg (on its SYN), not per
//! packet; [`ProcessIndex::scan_all`] warms a cold index at start.

pub mod diag;
pub mod forks;
pub mod procfs;
mod recorded;
mod source;

pub use recorded::{RecordedPid, RecordedProc};
pub use source::{LiveProc, ProcSource};

use crate::netns::{Netns, NetnsError};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::SocketAddr;

/// TCP or UDP (the tables attribution reads).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SockProto {
    Tcp,
    Udp,
}

impl fmt::Display for SockProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SockProto::Tcp => "tcp",
            SockProto::Udp => "udp",
        })
    }
}

/// One of the four socket tables of a namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NetTable {
    pub proto: SockProto,
    pub ipv6: bool,
}

impl NetTable {
    pub const ALL: [NetTable; 4] = [
        NetTable { proto: SockProto::Tcp, ipv6: false },
        NetTable { proto: SockProto::Tcp, ipv6: true },
        NetTable { proto: SockProto::Udp, ipv6: false },
        NetTable { proto: SockProto::Udp, ipv6: true },
    ];

    /// `tcp`, `tcp6`, `udp`, `udp6`.
    pub fn file_name(self) -> &'static str {
        match (self.proto, self.ipv6) {
            (SockProto::Tcp, false) => "tcp",
            (SockProto::Tcp, true) => "tcp6",
            (SockProto::Udp, false) => "udp",
            (SockProto::Udp, true) => "udp6",
        }
    }
}

/// The socket state column (`st`), the kernel's `TCP_*` numbers. UDP uses `Established`
/// for connected and `Close` for unconnected sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SockState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
    NewSynRecv,
    Other(u8),
}

impl SockState {
    pub fn from_number(n: u8) -> SockState {
        use SockState::*;
        match n {
            1 => Established,
            2 => SynSent,
            3 => SynRecv,
            4 => FinWait1,
            5 => FinWait2,
            6 => TimeWait,
            7 => Close,
            8 => CloseWait,
            9 => LastAck,
            10 => Listen,
            11 => Closing,
            12 => NewSynRecv,
            n => Other(n),
        }
    }
}

/// One line of a socket table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SocketRow {
    pub proto: SockProto,
    pub local: SocketAddr,
    /// `0.0.0.0:0` / `[::]:0` for listening and unconnected sockets.
    pub remote: SocketAddr,
    pub state: SockState,
    pub uid: u32,
    /// 0 for sockets no descriptor refers to (TIME_WAIT, request sockets).
    pub inode: u64,
}

/// A socket as its owner sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SocketKey {
    pub proto: SockProto,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

impl SocketKey {
    pub fn tcp(local: SocketAddr, remote: SocketAddr) -> SocketKey {
        SocketKey { proto: SockProto::Tcp, local, remote }
    }
    pub fn udp(local: SocketAddr, remote: SocketAddr) -> SocketKey {
        SocketKey { proto: SockProto::Udp, local, remote }
    }
    /// The TCP listener on `local`: remote end unspecified, in `local`'s family.
    pub fn listener(local: SocketAddr) -> SocketKey {
        let any: std::net::IpAddr =
            if local.is_ipv4() { std::net::Ipv4Addr::UNSPECIFIED.into() } else { std::net::Ipv6Addr::UNSPECIFIED.into() };
        SocketKey::tcp(local, SocketAddr::new(any, 0))
    }
    /// The same connection from the other end.
    pub fn peer(&self) -> SocketKey {
        SocketKey { proto: self.proto, local: self.remote, remote: self.local }
    }
    fn canonical(&self) -> SocketKey {
        SocketKey { proto: self.proto, local: canon(self.local), remote: canon(self.remote) }
    }
}

impl fmt::Display for SocketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} -> {}", self.proto, self.local, self.remote)
    }
}

fn canon(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// A process holding a socket.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProcessInfo {
    pub pid: u32,
    /// `/proc/PID/comm` (at most 15 bytes, the kernel's task name).
    pub comm: String,
    /// `/proc/PID/cmdline`, one string per argument (empty for kernel threads and zombies).
    pub cmdline: Vec<String>,
}

impl fmt::Display for ProcessInfo {
    /// `comm[pid]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.comm, self.pid)
    }
}

/// How the socket of a lookup was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchKind {
    /// The row with exactly that local and remote address.
    Socket,
    /// The listening TCP socket on the local port (no exact row with an inode).
    Listener,
    /// The unconnected UDP socket bound to the local port.
    Unconnected,
    /// An earlier answer for the same key; the socket itself is gone now.
    Remembered,
}

/// Why a socket could not be attributed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum UnknownReason {
    /// No such socket (nor a listener) in the namespace's tables.
    NoSocket,
    /// The row exists but has no inode (TIME_WAIT, or a request socket without listener).
    NoInode,
    /// No process holds the inode (it exited, or its /proc/PID/fd was unreadable).
    NoOwner,
    /// The namespace's tables could not be read (the message says why).
    Unreadable(String),
}

/// The answer of a lookup.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Attribution {
    Owned { owners: Vec<ProcessInfo>, inode: u64, matched: MatchKind },
    Unknown(UnknownReason),
}

impl Attribution {
    /// The first owner (lowest pid), if any.
    pub fn owner(&self) -> Option<&ProcessInfo> {
        match self {
            Attribution::Owned { owners, .. } => owners.first(),
            Attribution::Unknown(_) => None,
        }
    }
    pub fn owners(&self) -> &[ProcessInfo] {
        match self {
            Attribution::Owned { owners, .. } => owners,
            Attribution::Unknown(_) => &[],
        }
    }
    pub fn matched(&self) -> Option<MatchKind> {
        match self {
            Attribution::Owned { matched, .. } => Some(*matched),
            Attribution::Unknown(_) => None,
        }
    }
    pub fn is_known(&self) -> bool {
        matches!(self, Attribution::Owned { .. })
    }
}

impl fmt::Display for Attribution {
    /// `socat[12]` (several owners comma-separated), or `unknown`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attribution::Owned { owners, .. } => {
                for (i, o) in owners.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{o}")?;
                }
                Ok(())
            }
            Attribution::Unknown(_) => f.write_str("unknown"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("{ns}: cannot read {path}: {source}")]
    Table { ns: Netns, path: String, source: std::io::Error },
}

/// Counters of one index (cumulative).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub lookups: u64,
    pub attributed: u64,
    pub unknown: u64,
    /// Lookups answered by a verified cached owner (no scan).
    pub cache_hits: u64,
    pub table_reads: u64,
    /// Sockets looked up through the kernel (sock_diag) instead of the tables.
    pub kernel_lookups: u64,
    /// sock_diag lookups that failed (the tables were read instead).
    pub kernel_lookup_errors: u64,
    /// Reads of the process list.
    pub pid_lists: u64,
    /// `/proc/PID/fd` directories read.
    pub pids_scanned: u64,
    /// Processes skipped because their descriptors were not readable (EACCES/EPERM).
    pub denied: u64,
    /// Lines of socket tables that did not parse.
    pub malformed: u64,
    /// Lookups answered by probing the pids above the newest known one (a fresh child).
    pub probe_hits: u64,
    /// Lookups answered by a known process's lowest free descriptor of its last scan.
    pub free_fd_hits: u64,
}

/// How much a [`ProcessIndex`] holds (see [`ProcessIndex::sizes`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexSizes {
    /// Processes known.
    pub pids: usize,
    /// `(fd, inode)` socket descriptors of those processes.
    pub pid_sockets: usize,
    /// Socket inodes with cached holders.
    pub inodes: usize,
    /// Socket rows read last (all namespaces and protocols).
    pub rows: usize,
    /// Answers remembered for sockets that are gone.
    pub remembered: usize,
}

#[derive(Default)]
struct PidState {
    /// Network namespace inode, `None` when unreadable.
    netns: Option<u64>,
    /// `(fd, inode)` of its sockets at its last scan.
    sockets: Vec<(u32, u64)>,
    /// Never scanned since it appeared.
    fresh: bool,
    /// The lowest free descriptor at its last scan (its next socket's), while not known to
    /// be taken.
    free_fd: Option<u32>,
    info: Option<ProcessInfo>,
}

/// Pids above the newest known one that [`ProcessIndex`] opens directly for a new socket's
/// holder at most, and how many missing ones in a row end the probe.
pub const PROBE_PIDS: u32 = 256;
pub const PROBE_GAP: u32 = 48;

/// Known socket holders whose lowest free descriptor one lookup reads at most (newest
/// first; ~5 us each).
pub const FREE_FD_CHECKS: usize = 64;

/// How many answers [`ProcessIndex`] remembers for sockets that are gone.
pub const REMEMBERED: usize = 4096;

/// Socket -> process attribution over any number of namespaces (see the module docs).
pub struct ProcessIndex<S: ProcSource = LiveProc> {
    src: S,
    ns_inodes: HashMap<Netns, u64>,
    /// The socket rows read last, per namespace and protocol.
    rows: HashMap<(Netns, SockProto), Vec<SocketRow>>,
    /// inode -> (pid, fd) holding it, as of each pid's last scan.
    owners: HashMap<u64, Vec<(u32, u32)>>,
    pids: HashMap<u32, PidState>,
    remembered: HashMap<(Netns, SocketKey), Attribution>,
    remembered_order: VecDeque<(Netns, SocketKey)>,
    stats: IndexStats,
    /// The highest pid seen (listed or probed): where [`ProcessIndex::probe_new_pids`]
    /// starts.
    newest_pid: u32,
    /// The last pid of the last tier (c) scan: the next one resumes after it (see
    /// [`FAR_SCAN`]).
    far_cursor: u32,
}

/// Processes of other namespaces (tier (c)) scanned in one lookup at most, round-robin over
/// lookups: a whole sweep over a host's ~1000 processes took 20 ms, while every other lookup
/// waited and short connections ended unattributed. A socket held only there is answered
/// `NoOwner` until the sweep reaches its holder (the attribution thread asks again).
pub const FAR_SCAN: usize = 128;

impl ProcessIndex<LiveProc> {
    /// An index over the real /proc. Nothing is read until the first lookup.
    pub fn new() -> Self {
        ProcessIndex::with_source(LiveProc::new())
    }
}

impl Default for ProcessIndex<LiveProc> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: ProcSource> ProcessIndex<S> {
    pub fn with_source(src: S) -> Self {
        ProcessIndex {
            src,
            ns_inodes: HashMap::new(),
            rows: HashMap::new(),
            owners: HashMap::new(),
            pids: HashMap::new(),
            remembered: HashMap::new(),
            remembered_order: VecDeque::new(),
            stats: IndexStats::default(),
            newest_pid: 0,
            far_cursor: 0,
        }
    }

    pub fn stats(&self) -> IndexStats {
        self.stats
    }

    /// What the index holds now (for accounting and `FLOWTRAIL_DEBUG_EVIDENCE`).
    pub fn sizes(&self) -> IndexSizes {
        IndexSizes {
            pids: self.pids.len(),
            pid_sockets: self.pids.values().map(|s| s.sockets.len()).sum(),
            inodes: self.owners.len(),
            rows: self.rows.values().map(Vec::len).sum(),
            remembered: self.remembered.len(),
        }
    }

    pub fn source_mut(&mut self) -> &mut S {
        &mut self.src
    }

    /// Opens what lookups in `ns` use (its socket tables, read once, and the sock_diag
    /// socket) and learns the namespace's inode, so that the first lookup there does not pay
    /// for entering the namespace (a thread and `setns`: milliseconds).
    pub fn warm(&mut self, ns: &Netns) {
        let _ = self.sockets(ns, SockProto::Tcp);
        let _ = self.ns_inode(ns);
        let nowhere = SocketAddr::from(([0, 0, 0, 0], 0));
        let _ = self.src.find_socket(ns, &SocketKey::tcp(nowhere, nowhere));
    }

    /// The current socket rows of `ns` for one protocol (IPv4 and IPv6 tables), read now.
    pub fn sockets(&mut self, ns: &Netns, proto: SockProto) -> Result<Vec<SocketRow>, ProcessError> {
        let mut rows = Vec::new();
        for t in NetTable::ALL.into_iter().filter(|t| t.proto == proto) {
            let text = self.src.net_table(ns, t)?;
            self.stats.table_reads += 1;
            let (r, bad) = procfs::parse_net_table(&text, proto);
            self.stats.malformed += bad as u64;
            rows.extend(r);
        }
        self.rows.insert((ns.clone(), proto), rows.clone());
        Ok(rows)
    }

    /// Who owns the socket `key` in `ns` (see the module docs).
    pub fn lookup(&mut self, ns: &Netns, key: &SocketKey) -> Attribution {
        self.stats.lookups += 1;
        let live = self.lookup_live(ns, key);
        let remembered = self.remembered.get(&(ns.clone(), key.canonical()));
        let answer = match (&live, remembered) {
            (Attribution::Owned { matched: MatchKind::Socket | MatchKind::Unconnected, .. }, _) | (_, None) => live,
            (Attribution::Owned { matched: MatchKind::Listener, .. }, Some(r))
                if r.matched() == Some(MatchKind::Listener) =>
            {
                live
            }
            (_, Some(r)) => match r.clone() {
                Attribution::Owned { owners, inode, .. } => {
                    Attribution::Owned { owners, inode, matched: MatchKind::Remembered }
                }
                u => u,
            },
        };
        match &answer {
            Attribution::Owned { matched, .. } => {
                self.stats.attributed += 1;
                if *matched != MatchKind::Remembered {
                    self.remember(ns, key, &answer);
                }
            }
            Attribution::Unknown(_) => self.stats.unknown += 1,
        }
        answer
    }

    /// [`ProcessIndex::lookup`] for a socket whose holder is known already: the socket
    /// through the kernel (sock_diag), its cached holders verified with one `readlink` each,
    /// and no process scanned. `None` otherwise (not exact, no cached holder, no sock_diag).
    /// Microseconds: for the other sockets of a process just scanned (a forwarder's child
    /// found by its connecting socket holds the accepted one too).
    pub fn lookup_cached(&mut self, ns: &Netns, key: &SocketKey) -> Option<Attribution> {
        let Some(Ok((inode, MatchKind::Socket))) = self.kernel_lookup(ns, key) else {
            return None;
        };
        let owners = self.cached_owners(inode)?;
        let a = Attribution::Owned { owners, inode, matched: MatchKind::Socket };
        self.stats.lookups += 1;
        self.stats.attributed += 1;
        self.remember(ns, key, &a);
        Some(a)
    }

    /// Whether `pid` holds the TCP listener that `local` (an accepted socket's local end)
    /// belongs to, in `ns`. A server that forks per connection holds each accepted socket
    /// alone between `accept` and `fork`, so an exact answer naming it may name the parent
    /// of the process that will serve the connection.
    pub fn holds_listener(&mut self, ns: &Netns, local: SocketAddr, pid: u32) -> bool {
        // The kernel answers the listener's own row (remote end unspecified), an exact match.
        match self.lookup_live(ns, &SocketKey::listener(local)) {
            Attribution::Owned { matched: MatchKind::Listener | MatchKind::Socket, owners, .. } => {
                owners.iter().any(|p| p.pid == pid)
            }
            _ => false,
        }
    }

    fn lookup_live(&mut self, ns: &Netns, key: &SocketKey) -> Attribution {
        // Fast path: the socket is in the rows read last time and a cached owner still holds
        // its inode. Socket inodes are not reused while held and a connected socket's
        // addresses never change, so the verified owner proves the row is current.
        if let Some(rows) = self.rows.get(&(ns.clone(), key.proto))
            && let Ok((inode, MatchKind::Socket)) = find_socket(rows, key)
            && let Some(owners) = self.cached_owners(inode)
        {
            return Attribution::Owned { owners, inode, matched: MatchKind::Socket };
        }
        let found = match self.kernel_lookup(ns, key) {
            Some(found) => found,
            None => match self.sockets(ns, key.proto) {
                Ok(rows) => find_socket(&rows, key),
                Err(e) => return Attribution::Unknown(UnknownReason::Unreadable(e.to_string())),
            },
        };
        let (inode, matched) = match found {
            Ok(found) => found,
            Err(reason) => return Attribution::Unknown(reason),
        };
        let owners = self.owners_of(ns, inode);
        if owners.is_empty() {
            Attribution::Unknown(UnknownReason::NoOwner)
        } else {
            Attribution::Owned { owners, inode, matched }
        }
    }

    /// The socket through the source's own lookup (sock_diag), `None` when it has none or
    /// it failed (then the tables are read).
    fn kernel_lookup(&mut self, ns: &Netns, key: &SocketKey) -> Option<Result<(u64, MatchKind), UnknownReason>> {
        let k = key.canonical();
        let waiting = if k.proto == SockProto::Tcp { MatchKind::Listener } else { MatchKind::Unconnected };
        let row = match self.src.find_socket(ns, key)? {
            Ok(Some(row)) => row,
            Ok(None) => {
                self.stats.kernel_lookups += 1;
                return Some(Err(UnknownReason::NoSocket));
            }
            Err(_) => {
                self.stats.kernel_lookup_errors += 1;
                return None;
            }
        };
        self.stats.kernel_lookups += 1;
        let exact = canon(row.local) == k.local && canon(row.remote) == k.remote;
        if !exact {
            // The kernel fell back to the listener (TCP) or a bound socket (UDP).
            return Some(if row.inode != 0 { Ok((row.inode, waiting)) } else { Err(UnknownReason::NoSocket) });
        }
        if row.inode != 0 {
            return Some(Ok((row.inode, MatchKind::Socket)));
        }
        // TIME_WAIT or a request socket: ask for the listener on the local address.
        if k.proto == SockProto::Tcp
            && let Some(Ok(Some(l))) = self.src.find_socket(ns, &SocketKey::listener(key.local))
            && l.inode != 0
            && l.state == SockState::Listen
        {
            return Some(Ok((l.inode, MatchKind::Listener)));
        }
        Some(Err(UnknownReason::NoInode))
    }

    fn remember(&mut self, ns: &Netns, key: &SocketKey, a: &Attribution) {
        let k = (ns.clone(), key.canonical());
        if self.remembered.insert(k.clone(), a.clone()).is_none() {
            self.remembered_order.push_back(k);
            while self.remembered_order.len() > REMEMBERED {
                if let Some(old) = self.remembered_order.pop_front() {
                    self.remembered.remove(&old);
                }
            }
        }
    }

    /// Every socket of `ns` with its owners, after a full scan of all processes (for
    /// listings and tests; too slow for the packet path).
    pub fn attribute_all(&mut self, ns: &Netns) -> Result<Vec<(SocketRow, Attribution)>, ProcessError> {
        let mut rows = self.sockets(ns, SockProto::Tcp)?;
        rows.extend(self.sockets(ns, SockProto::Udp)?);
        self.scan_all();
        Ok(rows
            .into_iter()
            .map(|r| {
                let a = if r.inode == 0 {
                    Attribution::Unknown(UnknownReason::NoInode)
                } else {
                    let pids: Vec<u32> = self.owners.get(&r.inode).map(|v| v.iter().map(|p| p.0).collect()).unwrap_or_default();
                    let owners = self.infos(&pids);
                    if owners.is_empty() {
                        Attribution::Unknown(UnknownReason::NoOwner)
                    } else {
                        Attribution::Owned { owners, inode: r.inode, matched: MatchKind::Socket }
                    }
                };
                (r, a)
            })
            .collect())
    }

    /// Forgets a namespace: closes its table files and sock_diag socket (they keep a deleted
    /// namespace alive) and drops what was learnt there. Owners of sockets stay cached.
    pub fn forget_namespace(&mut self, ns: &Netns) {
        self.src.forget_namespace(ns);
        self.ns_inodes.remove(ns);
        self.rows.retain(|(n, _), _| n != ns);
        self.remembered.retain(|(n, _), _| n != ns);
        self.remembered_order.retain(|(n, _)| n != ns);
    }

    /// Rescans every process (e.g. at start, to warm the cache). Returns how many.
    pub fn scan_all(&mut self) -> usize {
        self.refresh_pids();
        let all: Vec<u32> = self.pids.keys().copied().collect();
        for &p in &all {
            self.scan_pid(p);
        }
        all.len()
    }

    fn ns_inode(&mut self, ns: &Netns) -> Option<u64> {
        if let Some(&i) = self.ns_inodes.get(ns) {
            return Some(i);
        }
        let i = self.src.netns_inode(ns).ok()?;
        self.ns_inodes.insert(ns.clone(), i);
        Some(i)
    }

    /// The cached holders of `inode` that still hold it (one `readlink` each), if any.
    fn cached_owners(&mut self, inode: u64) -> Option<Vec<ProcessInfo>> {
        let cached = self.owners.get(&inode)?.clone();
        let verified: Vec<(u32, u32)> = cached
            .into_iter()
            .filter(|&(pid, fd)| matches!(self.src.fd_socket(pid, fd), Ok(Some(i)) if i == inode))
            .collect();
        if verified.is_empty() {
            self.owners.remove(&inode);
            return None;
        }
        self.stats.cache_hits += 1;
        let pids: Vec<u32> = verified.iter().map(|p| p.0).collect();
        self.owners.insert(inode, verified);
        let infos = self.infos(&pids);
        (!infos.is_empty()).then_some(infos)
    }

    /// The processes holding `inode`: cached and verified, else found by a tiered rescan.
    fn owners_of(&mut self, ns: &Netns, inode: u64) -> Vec<ProcessInfo> {
        if let Some(owners) = self.cached_owners(inode) {
            return owners;
        }
        if let Some(owners) = self.lowest_free_fds(ns, inode) {
            return owners;
        }
        if let Some(owners) = self.probe_new_pids(ns, inode) {
            return owners;
        }
        // The namespace's known processes that held sockets or are new (a forwarder's child
        // found through its accepted socket, connecting on now): scanned before the process
        // list is read again, which takes milliseconds on a busy host.
        let ns_ino = self.ns_inode(ns);
        let known: HashSet<u32> = self
            .pids
            .iter()
            .filter(|(_, st)| ns_ino.is_some() && st.netns == ns_ino && (st.fresh || !st.sockets.is_empty()))
            .map(|(&pid, _)| pid)
            .collect();
        for &pid in &known {
            self.scan_pid(pid);
        }
        if let Some(v) = self.owners.get(&inode) {
            let pids: Vec<u32> = v.iter().map(|p| p.0).collect();
            return self.infos(&pids);
        }
        self.refresh_pids();
        let mut tiers: [Vec<u32>; 3] = Default::default();
        for (&pid, st) in self.pids.iter().filter(|(pid, _)| !known.contains(pid)) {
            let tier = match (ns_ino, st.netns) {
                (Some(a), Some(b)) if a == b && (st.fresh || !st.sockets.is_empty()) => 0,
                (Some(a), Some(b)) if a == b => 1,
                _ => 2,
            };
            tiers[tier].push(pid);
        }
        let [near, rest, mut far] = tiers;
        far.sort_unstable();
        let start = far.partition_point(|&p| p <= self.far_cursor);
        far.rotate_left(start);
        far.truncate(FAR_SCAN);
        if let Some(&last) = far.last() {
            self.far_cursor = last;
        }
        for tier in [near, rest, far] {
            for pid in tier {
                self.scan_pid(pid);
            }
            if let Some(v) = self.owners.get(&inode) {
                let pids: Vec<u32> = v.iter().map(|p| p.0).collect();
                return self.infos(&pids);
            }
        }
        Vec::new()
    }

    /// The fast path for a socket that a process of `ns` holding sockets made since its
    /// last scan: the kernel put it on the lowest free descriptor, so one `readlink` per
    /// such process finds it, where a rescan reads each one's whole descriptor table (~30 us
    /// a process). A forwarder's child connecting on after a delay, or a server's accepted
    /// socket, is found this way while a short connection's socket still exists.
    fn lowest_free_fds(&mut self, ns: &Netns, inode: u64) -> Option<Vec<ProcessInfo>> {
        let ns_ino = self.ns_inode(ns)?;
        let mut candidates: Vec<(u32, u32)> = self
            .pids
            .iter()
            .filter(|(_, st)| st.netns == Some(ns_ino) && !st.sockets.is_empty())
            .filter_map(|(&pid, st)| Some((pid, st.free_fd?)))
            .collect();
        // Newest first, and not so many that a host's namespace full of socket holders
        // delays the probe for a child forked a moment ago.
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        candidates.truncate(FREE_FD_CHECKS);
        for (pid, fd) in candidates {
            if !matches!(self.src.fd_socket(pid, fd), Ok(Some(i)) if i == inode) {
                continue;
            }
            self.stats.free_fd_hits += 1;
            let st = self.pids.get_mut(&pid)?;
            // The next free one is not known before the next scan.
            st.free_fd = None;
            st.sockets.push((fd, inode));
            st.sockets.sort_unstable();
            hold(&mut self.owners, inode, pid, fd);
            return Some(self.infos(&[pid]));
        }
        None
    }

    /// The fast path for a socket a process made a moment ago, before listing `/proc`
    /// (milliseconds on a busy host, while the socket of a short connection may be gone by
    /// then): the kernel hands out pids in increasing order, so a forwarder's child forked
    /// for this connection has a pid just above every pid seen so far. The pids above the
    /// newest known one are opened directly (a missing one costs one failed `open`), up to
    /// the last pid handed out (when the source knows it) and [`PROBE_PIDS`] of them,
    /// stopping after [`PROBE_GAP`] missing in a row; each one
    /// found is remembered (fresh, as a listing would add it), and scanned when it lives in
    /// `ns` (processes in other namespaces, say another lab's or container's, wait for the
    /// tiered rescan: on a host that starts many processes, scanning them all here took
    /// milliseconds, while a forwarder's child may be gone by then). `None` when none of the
    /// scanned ones holds `inode` (after a pid wrap-around, or when the holder is older or
    /// elsewhere): the tiered rescan follows.
    fn probe_new_pids(&mut self, ns: &Netns, inode: u64) -> Option<Vec<ProcessInfo>> {
        if self.newest_pid == 0 {
            return None;
        }
        // Nothing newer than the last pid handed out: without this bound a lookup whose
        // holder is an older process (a forwarder's child connecting on after a delay) first
        // spent PROBE_GAP failed opens (~0.3 ms) on pids that do not exist, while the
        // socket of a short connection was closing.
        let last = self.src.last_pid();
        if last.is_some_and(|l| l <= self.newest_pid) {
            return None;
        }
        let ns_ino = self.ns_inode(ns);
        let mut missing = 0;
        let mut pid = self.newest_pid;
        for _ in 0..PROBE_PIDS {
            pid = pid.checked_add(1)?;
            if last.is_some_and(|l| pid > l) {
                break;
            }
            if self.pids.contains_key(&pid) {
                missing = 0;
                continue;
            }
            let Ok(netns) = self.src.pid_netns(pid) else {
                missing += 1;
                if missing >= PROBE_GAP {
                    break;
                }
                continue;
            };
            missing = 0;
            if !self.src.is_process(pid) {
                continue;
            }
            self.newest_pid = self.newest_pid.max(pid);
            self.pids.insert(pid, PidState { netns: Some(netns), fresh: true, ..PidState::default() });
            if ns_ino.is_some_and(|n| n != netns) {
                continue;
            }
            self.scan_pid(pid);
            if let Some(v) = self.owners.get(&inode) {
                self.stats.probe_hits += 1;
                let pids: Vec<u32> = v.iter().map(|p| p.0).collect();
                return Some(self.infos(&pids));
            }
        }
        None
    }

    /// Re-reads the process list: drops processes that are gone, adds new ones (fresh).
    fn refresh_pids(&mut self) {
        self.stats.pid_lists += 1;
        let Ok(list) = self.src.pids() else { return };
        if let Some(&m) = list.iter().max() {
            self.newest_pid = self.newest_pid.max(m);
        }
        let alive: HashSet<u32> = list.iter().copied().collect();
        let gone: Vec<u32> = self.pids.keys().filter(|p| !alive.contains(p)).copied().collect();
        for p in gone {
            self.forget_pid_sockets(p);
            self.pids.remove(&p);
        }
        for p in list {
            if !self.pids.contains_key(&p) {
                let netns = self.src.pid_netns(p).ok();
                self.pids.insert(p, PidState { netns, fresh: true, ..PidState::default() });
            }
        }
    }

    fn forget_pid_sockets(&mut self, pid: u32) {
        let Some(st) = self.pids.get_mut(&pid) else { return };
        for (fd, inode) in std::mem::take(&mut st.sockets) {
            if let Some(v) = self.owners.get_mut(&inode) {
                v.retain(|&(p, f)| (p, f) != (pid, fd));
                if v.is_empty() {
                    self.owners.remove(&inode);
                }
            }
        }
    }

    fn scan_pid(&mut self, pid: u32) {
        self.stats.pids_scanned += 1;
        let result = self.src.fd_listing(pid);
        self.forget_pid_sockets(pid);
        let Some(st) = self.pids.get_mut(&pid) else { return };
        st.fresh = false;
        st.free_fd = None;
        match result {
            Ok((mut socks, free_fd)) => {
                st.free_fd = free_fd;
                socks.sort_unstable();
                if !socks.is_empty() && st.info.is_none() {
                    st.info = read_info(&mut self.src, pid);
                }
                for &(fd, inode) in &socks {
                    hold(&mut self.owners, inode, pid, fd);
                }
                st.sockets = socks;
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)) => self.stats.denied += 1,
            Err(_) => {} // gone meanwhile
        }
    }

    /// Process infos for pids (deduplicated, sorted), reading and caching missing ones;
    /// processes that are gone by now are left out.
    fn infos(&mut self, pids: &[u32]) -> Vec<ProcessInfo> {
        let mut pids = pids.to_vec();
        pids.sort_unstable();
        pids.dedup();
        let mut out = Vec::new();
        for pid in pids {
            let cached = self.pids.get(&pid).and_then(|s| s.info.clone());
            let info = match cached {
                Some(i) => Some(i),
                None => {
                    let i = read_info(&mut self.src, pid);
                    if let (Some(i), Some(st)) = (&i, self.pids.get_mut(&pid)) {
                        st.info = Some(i.clone());
                    }
                    i
                }
            };
            out.extend(info);
        }
        out
    }
}

/// Records that `pid` holds `inode` on descriptor `fd` (the holders of each inode are kept
/// sorted, each once).
fn hold(owners: &mut HashMap<u64, Vec<(u32, u32)>>, inode: u64, pid: u32, fd: u32) {
    let v = owners.entry(inode).or_default();
    if let Err(at) = v.binary_search(&(pid, fd)) {
        v.insert(at, (pid, fd));
    }
}

fn read_info<S: ProcSource>(src: &mut S, pid: u32) -> Option<ProcessInfo> {
    let comm = procfs::parse_comm(&src.comm(pid).ok()?);
    let cmdline = src.cmdline(pid).map(|c| procfs::parse_cmdline(&c)).unwrap_or_default();
    Some(ProcessInfo { pid, comm, cmdline })
}

/// Finds the inode for `key` in `rows` (see the module docs, steps 1 and 2).
pub fn find_socket(rows: &[SocketRow], key: &SocketKey) -> Result<(u64, MatchKind), UnknownReason> {
    let k = key.canonical();
    let mut no_inode = false;
    for r in rows.iter().filter(|r| r.proto == k.proto && canon(r.local) == k.local && canon(r.remote) == k.remote) {
        if r.inode != 0 {
            return Ok((r.inode, MatchKind::Socket));
        }
        no_inode = true;
    }
    // Listener (TCP) or unconnected socket (UDP) on the local port: an exact address beats
    // a wildcard one.
    let mut best: Option<(u64, bool)> = None;
    for r in rows.iter().filter(|r| r.proto == k.proto && r.inode != 0 && r.local.port() == k.local.port()) {
        let waiting = match k.proto {
            SockProto::Tcp => r.state == SockState::Listen,
            SockProto::Udp => r.remote.port() == 0 && r.remote.ip().is_unspecified(),
        };
        if !waiting {
            continue;
        }
        let ip = r.local.ip().to_canonical();
        let exact = ip == k.local.ip();
        let wildcard = ip.is_unspecified() && (r.local.is_ipv6() || k.local.is_ipv4());
        if (exact || wildcard) && best.is_none_or(|(_, was_exact)| exact && !was_exact) {
            best = Some((r.inode, exact));
        }
    }
    match best {
        Some((inode, _)) => {
            Ok((inode, if k.proto == SockProto::Tcp { MatchKind::Listener } else { MatchKind::Unconnected }))
        }
        None if no_inode => Err(UnknownReason::NoInode),
        None => Err(UnknownReason::NoSocket),
    }
}

#[cfg(test)]
mod tests;
