//! Fork events from the kernel's process connector, and the watch that records the sockets
//! of a forking server's fresh children while they hold them.
//!
//! A forwarder that forks per connection (`socat ... fork`, a forking Python server) serves
//! each connection from a child that may hold its two sockets for a few milliseconds. The
//! attribution thread learns of a connection from its SYN, which reaches it 0.5 to 17 ms
//! after it was sent on a loaded 2-core host (capture and thread latency): by then such a
//! child may be gone, and nothing in `/proc` says who held the sockets. The kernel announces
//! every `fork` on the process connector (`NETLINK_CONNECTOR`, `CN_IDX_PROC`; root only) as
//! it happens, so the watch starts before any packet of the child's connection is seen.
//!
//! ```text
//! nlmsghdr (16) | cn_msg { idx, val, seq, ack, u16 len, u16 flags } (20)
//!               | proc_event { u32 what, u32 cpu, u64 timestamp_ns,                     (16)
//!                              fork: u32 parent_pid, parent_tgid, child_pid, child_tgid
//!                              exit: u32 process_pid, process_tgid, ... }
//! subscribe: nlmsghdr (NLMSG_DONE) | cn_msg (len 4) | u32 PROC_CN_MCAST_LISTEN
//! ```
//!
//! [`ForkWatch`] keeps the children to watch: those whose parent holds a listening TCP
//! socket in one of the capture's namespaces (forking servers; not every process a busy host
//! forks). Each is polled ([`POLL_EVERY`] for the first [`FAST_FOR`] or until it shows two
//! connections, then every [`POLL_SLOW`], for [`WATCH_FOR`] at most; [`MAX_WATCHED`]
//! children at once, the rest counted; [`POLL_BUDGET`] polls per millisecond): its socket
//! descriptors are listed and each new one is asked for its addresses
//! through a duplicate taken with `pidfd_getfd` (`getsockname`, `getpeername`; held for
//! microseconds and closed: were the child to close the socket in those microseconds, its
//! close would complete when the duplicate is closed). Reading the namespace's socket table instead costs
//! milliseconds to tens of milliseconds (the kernel walks its whole TCP hash for it), which
//! is longer than such a child lives. A connected TCP socket is handed to the caller as
//! `(namespace, local, remote, owner)` once the child is known not to be a program a server
//! started (`fork` then `exec`, which holds its parent's sockets until the `exec`): when it
//! exits without having run `exec`, or, while it runs, if it still holds the socket
//! [`COMMIT_AFTER`] after its fork; and only a socket its parent does not hold (any more: a
//! forwarder's parent closes its copy of the accepted socket at once). A child that runs
//! `exec` is dropped with what it was seen holding. A socket not connected yet is asked again at the next poll; listeners and
//! other sockets are skipped. A parent "holds a listener" when one of
//! its sockets, asked the same way, accepts connections. The events give pids of the
//! initial pid namespace: in any other one (a container's) they name other processes in
//! `/proc`, so there the subscription is refused ([`ProcEvents::open`]).

use super::{LiveProc, ProcSource};
use crate::join::Owner;
use crate::netns::Netns;
use netlink_sys::{Socket, SocketAddr as NlAddr, protocols::NETLINK_CONNECTOR};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{SockType, SockaddrLike, SockaddrStorage, getpeername, getsockname, getsockopt, sockopt};
use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, pidfd_getfd, pidfd_open};
use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const NLMSG_DONE: u16 = 3;
const PROC_EVENT_FORK: u32 = 1;
const PROC_EVENT_EXEC: u32 = 2;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;
/// Where the event data starts: nlmsghdr, cn_msg, then `what`, `cpu`, `timestamp_ns`.
const EVENT_DATA: usize = 16 + 20 + 16;

/// Children watched at once, at most (a new fork past this is counted, not watched).
pub const MAX_WATCHED: usize = 256;
/// How long a child is watched after its fork.
pub const WATCH_FOR: Duration = Duration::from_millis(200);
/// Poll interval for the first [`FAST_FOR`] (a forwarder's child connects right after
/// `fork`, and may be done a couple of milliseconds later).
pub const POLL_EVERY: Duration = Duration::from_millis(1);
pub const FAST_FOR: Duration = Duration::from_millis(30);
/// Poll interval after that.
pub const POLL_SLOW: Duration = Duration::from_millis(5);
/// How long after its fork a child's sockets wait before they are handed over while it
/// runs: a server's child that runs a program (`fork`, then `exec`) holds its parent's
/// sockets until the `exec`, microseconds to a millisecond or so later, and is dropped then.
pub const COMMIT_AFTER: Duration = Duration::from_millis(5);
/// Child polls per millisecond, at most (a poll costs tens of microseconds): under a storm of
/// forks the watch falls behind rather than take a core.
pub const POLL_BUDGET: u32 = 8;
/// Receive buffer asked for the event socket.
const RECV_BUFFER: usize = 4 << 20;
/// How long "this parent holds a listener" is believed before it is checked again.
const LISTENER_TTL: Duration = Duration::from_secs(1);

/// One event of the process connector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcEvent {
    /// A new process (not a thread): its parent's and its own thread-group id.
    Fork { parent: u32, child: u32 },
    /// A process (thread-group leader) ran a new program.
    Exec { pid: u32 },
    /// A process (thread-group leader) ended.
    Exit { pid: u32 },
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The events in one datagram (several netlink messages may share it); anything short or of
/// another kind is skipped.
pub fn parse(buf: &[u8], out: &mut Vec<ProcEvent>) {
    let mut at = 0;
    while let Some(len) = u32_at(buf, at) {
        let len = len as usize;
        if len < 16 || at + len > buf.len() {
            return;
        }
        let m = &buf[at..at + len];
        let event = (|| {
            if u32_at(m, 16)? != CN_IDX_PROC || u32_at(m, 20)? != CN_VAL_PROC {
                return None;
            }
            match u32_at(m, 36)? {
                PROC_EVENT_FORK => {
                    let (parent, child_pid, child) =
                        (u32_at(m, EVENT_DATA + 4)?, u32_at(m, EVENT_DATA + 8)?, u32_at(m, EVENT_DATA + 12)?);
                    (child_pid == child).then_some(ProcEvent::Fork { parent, child })
                }
                what @ (PROC_EVENT_EXEC | PROC_EVENT_EXIT) => {
                    let (pid, tgid) = (u32_at(m, EVENT_DATA)?, u32_at(m, EVENT_DATA + 4)?);
                    (pid == tgid).then_some(if what == PROC_EVENT_EXEC { ProcEvent::Exec { pid } } else { ProcEvent::Exit { pid } })
                }
                _ => None,
            }
        })();
        out.extend(event);
        // Messages are 4-byte aligned.
        at += (len + 3) & !3;
    }
}

/// The subscription message.
fn listen_request() -> [u8; 40] {
    let mut b = [0u8; 40];
    b[0..4].copy_from_slice(&40u32.to_ne_bytes());
    b[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
    b[12..16].copy_from_slice(&std::process::id().to_ne_bytes());
    b[16..20].copy_from_slice(&CN_IDX_PROC.to_ne_bytes());
    b[20..24].copy_from_slice(&CN_VAL_PROC.to_ne_bytes());
    b[32..34].copy_from_slice(&4u16.to_ne_bytes());
    b[36..40].copy_from_slice(&PROC_CN_MCAST_LISTEN.to_ne_bytes());
    b
}

/// A subscription to the process connector.
pub struct ProcEvents {
    sock: Socket,
    buf: Vec<u8>,
    /// Times the kernel dropped events (the socket's buffer was full: `ENOBUFS`).
    pub overruns: u64,
}

impl ProcEvents {
    /// Subscribes (needs CAP_NET_ADMIN, and flowtrail's network namespace must be the
    /// initial one). Refused in a pid namespace other than the initial one.
    pub fn open() -> io::Result<ProcEvents> {
        let status = std::fs::read_to_string("/proc/self/status")?;
        if !initial_pid_namespace(&status) {
            return Err(io::Error::other("not in the initial pid namespace: fork events name other pids"));
        }
        let mut sock = Socket::new(NETLINK_CONNECTOR)?;
        // Room for a burst of forks (every fork and exit on the host comes here); the kernel
        // caps it at net.core.rmem_max.
        let _ = sock.set_rx_buf_sz(RECV_BUFFER);
        sock.bind(&NlAddr::new(0, CN_IDX_PROC))?;
        sock.send(&listen_request(), 0)?;
        Ok(ProcEvents { sock, buf: vec![0; 64 * 1024], overruns: 0 })
    }

    /// Waits up to `timeout` for events and appends what arrived (everything queued).
    pub fn wait(&mut self, timeout: Duration, out: &mut Vec<ProcEvent>) -> io::Result<()> {
        let ms = u16::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        loop {
            match self.sock.recv(&mut &mut self.buf[..], libc::MSG_DONTWAIT) {
                Ok(n) => parse(self.buf.get(..n).unwrap_or_default(), out),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ENOBUFS: events were lost (a burst of forks); counted, and what comes next
                // is read.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.overruns += 1;
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Counters of a [`ForkWatch`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForkStats {
    /// Children of listener holders watched.
    pub watched: u64,
    /// Such children not watched: [`MAX_WATCHED`] were watched already.
    pub skipped: u64,
    /// Sockets found held by a watched child (handed to the caller).
    pub sockets: u64,
    /// Times fork events were lost ([`ProcEvents::overruns`]).
    pub overruns: u64,
}

struct Child {
    pid: u32,
    pidfd: OwnedFd,
    parent: u32,
    ns: Netns,
    forked: Instant,
    next: Instant,
    /// Socket inodes already seen (connected, or not TCP connections).
    done: HashSet<u64>,
    /// Connected sockets seen.
    found: u32,
    /// Connected sockets seen and not handed over yet: `(inode, local, remote)`.
    pending: Vec<(u64, SocketAddr, SocketAddr)>,
    /// The child's `comm` (read once, before any `exec`).
    owner: Option<Owner>,
    /// `/proc` no longer has it: it is waited for its exit event.
    gone: bool,
}

/// What one socket of another process is, asked through a duplicate of its descriptor.
enum Sock {
    Listener,
    Connected(SocketAddr, SocketAddr),
    /// A TCP socket not connected (yet).
    Unconnected,
    /// Not a TCP/IP socket, or gone.
    Other,
}

fn std_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    Some(super::canon(std::net::SocketAddrV6::from(*a.as_sockaddr_in6()?).into()))
}

/// Descriptor `fd` of the process behind `pidfd`, asked what it is; the duplicate is closed
/// at once.
fn ask(pidfd: &OwnedFd, fd: u32) -> Sock {
    let Ok(dup) = pidfd_getfd(pidfd, fd as i32, PidfdGetfdFlags::empty()) else { return Sock::Other };
    if getsockopt(&dup, sockopt::SockType).ok() != Some(SockType::Stream) {
        return Sock::Other;
    }
    let Some(local) = getsockname::<SockaddrStorage>(dup.as_raw_fd()).ok().as_ref().and_then(std_addr) else {
        return Sock::Other;
    };
    if getsockopt(&dup, sockopt::AcceptConn).unwrap_or(false) {
        return Sock::Listener;
    }
    match getpeername::<SockaddrStorage>(dup.as_raw_fd()) {
        Ok(peer) if peer.family().is_some() => std_addr(&peer).map_or(Sock::Other, |r| Sock::Connected(local, r)),
        _ => Sock::Unconnected,
    }
}

fn pidfd(pid: u32) -> Option<OwnedFd> {
    pidfd_open(Pid::from_raw(i32::try_from(pid).ok()?)?, PidfdFlags::empty()).ok()
}

/// The children being watched, and what is known of their parents.
pub struct ForkWatch {
    src: LiveProc,
    /// Namespace inode -> the capture's namespace.
    namespaces: HashMap<u64, Netns>,
    children: Vec<Child>,
    /// Parent pid -> (holds a TCP listener in its namespace, checked at).
    listeners: HashMap<u32, (bool, Instant)>,
    /// The current millisecond's start, and the polls made in it.
    slot: Instant,
    used: u32,
    stats: ForkStats,
    /// Events taken in a [`ForkWatch::step`] (kept for its room).
    got: Vec<ProcEvent>,
    /// Every fork of a captured namespace on stderr (`FLOWTRAIL_DEBUG_ATTRIBUTION`).
    pub debug: bool,
}

impl ForkWatch {
    /// A watch over children in `namespaces` (their socket tables are opened now).
    pub fn new(namespaces: &[Netns]) -> ForkWatch {
        let mut src = LiveProc::new();
        let by_inode = namespaces.iter().filter_map(|ns| Some((src.netns_inode(ns).ok()?, ns.clone()))).collect();
        ForkWatch {
            src,
            namespaces: by_inode,
            children: Vec::new(),
            listeners: HashMap::new(),
            slot: Instant::now(),
            used: 0,
            stats: ForkStats::default(),
            got: Vec::new(),
            debug: false,
        }
    }

    pub fn stats(&self) -> ForkStats {
        self.stats
    }

    /// One turn of the watch: waits for `events` (at most `longest`, less when a poll is
    /// due), takes what came ([`ForkWatch::event`]), then polls ([`ForkWatch::poll`]).
    pub fn step(
        &mut self,
        events: &mut ProcEvents,
        longest: Duration,
        found: &mut impl FnMut(&Netns, SocketAddr, SocketAddr, Owner, u32),
    ) -> io::Result<()> {
        let wait = self.due().map_or(longest, |t| t.saturating_duration_since(Instant::now())).min(longest);
        let mut got = std::mem::take(&mut self.got);
        let r = events.wait(wait, &mut got);
        for e in got.drain(..) {
            self.event(e, found);
        }
        self.got = got;
        self.poll(Instant::now(), found);
        r
    }

    /// Whether children are watched (the caller then waits at most until [`ForkWatch::due`]).
    pub fn due(&self) -> Option<Instant> {
        let next = self.children.iter().map(|c| c.next).min()?;
        Some(if self.used >= POLL_BUDGET { next.max(self.slot + Duration::from_millis(1)) } else { next })
    }

    /// Takes one event: a fork of a listener holder in a captured namespace starts a watch
    /// (its first poll is made at once, through `found`, unless this millisecond's polls are
    /// spent); an exit ends one.
    pub fn event(&mut self, e: ProcEvent, found: &mut impl FnMut(&Netns, SocketAddr, SocketAddr, Owner, u32)) {
        match e {
            // A program run by a server's child (`fork` then `exec`, a helper): what it held
            // between the two was its parent's, not its own.
            ProcEvent::Exec { pid } => self.children.retain(|c| c.pid != pid),
            // Ended without `exec`: it held what it was seen holding.
            ProcEvent::Exit { pid } => {
                if let Some(i) = self.children.iter().position(|c| c.pid == pid) {
                    let mut c = self.children.swap_remove(i);
                    let all = std::mem::take(&mut c.pending);
                    self.hand_over(&c, all, found);
                }
            }
            ProcEvent::Fork { parent, child } => {
                let ns = self.src.pid_netns(child);
                let Some(ns) = ns.as_ref().ok().and_then(|i| self.namespaces.get(i)).cloned() else {
                    if self.debug {
                        eprintln!("flowtrail: fork watch: {parent} -> {child}: namespace {ns:?} not captured");
                    }
                    return;
                };
                let listener = self.holds_listener(parent);
                if self.debug {
                    eprintln!("flowtrail: fork watch: {parent} -> {child} in {ns}: listener {listener}");
                }
                if !listener {
                    return;
                }
                if self.children.len() >= MAX_WATCHED {
                    self.stats.skipped += 1;
                    return;
                }
                let Some(pidfd) = pidfd(child) else { return };
                self.stats.watched += 1;
                let now = Instant::now();
                self.children.push(Child {
                    pid: child,
                    pidfd,
                    parent,
                    ns,
                    forked: now,
                    next: now,
                    done: HashSet::new(),
                    found: 0,
                    pending: Vec::new(),
                    owner: None,
                    gone: false,
                });
                self.poll(now, found);
            }
        }
    }

    /// Polls every child that is due; drops those gone or watched long enough.
    /// At most [`POLL_BUDGET`] polls per millisecond, the most overdue children first.
    pub fn poll(&mut self, now: Instant, found: &mut impl FnMut(&Netns, SocketAddr, SocketAddr, Owner, u32)) {
        if now >= self.slot + Duration::from_millis(1) {
            (self.slot, self.used) = (now, 0);
        }
        let mut children = std::mem::take(&mut self.children);
        children.sort_unstable_by_key(|c| c.next);
        children.retain_mut(|c| {
            let age = now.saturating_duration_since(c.forked);
            if c.gone {
                return age < WATCH_FOR;
            }
            if c.next > now || self.used >= POLL_BUDGET {
                return true;
            }
            self.used += 1;
            let alive = self.poll_child(c, age, found);
            c.gone = !alive;
            // A forwarder's child shows its two sockets within a few polls; after that, or
            // after FAST_FOR, it is looked at now and then only.
            let fast = age < FAST_FOR && c.found < 2;
            c.next = now + if fast { POLL_EVERY } else { POLL_SLOW };
            age < WATCH_FOR
        });
        // Events taken while polling could not have added any (one thread).
        self.children = children;
    }

    /// One poll of one child; false when it is gone. Connected sockets are kept pending;
    /// from [`COMMIT_AFTER`] on, those the child still holds are handed over (a child that
    /// `exec`s does so sooner, and is dropped on its exec event); the rest wait for its exit.
    fn poll_child(
        &mut self,
        c: &mut Child,
        age: Duration,
        found: &mut impl FnMut(&Netns, SocketAddr, SocketAddr, Owner, u32),
    ) -> bool {
        let Ok(fds) = self.src.socket_fds(c.pid) else { return false };
        for &(fd, inode) in &fds {
            if c.done.contains(&inode) {
                continue;
            }
            match ask(&c.pidfd, fd) {
                Sock::Unconnected => continue,
                Sock::Listener | Sock::Other => {}
                Sock::Connected(l, r) => {
                    c.found += 1;
                    c.pending.push((inode, l, r));
                    if c.owner.is_none() {
                        let comm = super::procfs::parse_comm(&self.src.comm(c.pid).unwrap_or_default());
                        c.owner = Some(Owner { pid: c.pid, comm });
                    }
                }
            }
            c.done.insert(inode);
        }
        if age >= COMMIT_AFTER && !c.pending.is_empty() {
            let (held, rest) = std::mem::take(&mut c.pending).into_iter().partition(|p| fds.iter().any(|f| f.1 == p.0));
            c.pending = rest;
            self.hand_over(c, held, found);
        }
        true
    }

    /// Hands over the sockets the child's parent does not hold (any more): a forwarder's
    /// parent closes its copy of the accepted socket right after `fork`, while a server
    /// whose child was to run a program (and failed, or has not yet) still holds its own.
    fn hand_over(
        &mut self,
        c: &Child,
        sockets: Vec<(u64, SocketAddr, SocketAddr)>,
        found: &mut impl FnMut(&Netns, SocketAddr, SocketAddr, Owner, u32),
    ) {
        let Some(owner) = &c.owner else { return };
        if sockets.is_empty() {
            return;
        }
        let parents: HashSet<u64> =
            self.src.socket_fds(c.parent).map(|f| f.into_iter().map(|(_, i)| i).collect()).unwrap_or_default();
        for (_, local, remote) in sockets.into_iter().filter(|s| !parents.contains(&s.0)) {
            self.stats.sockets += 1;
            found(&c.ns, local, remote, owner.clone(), c.parent);
        }
    }

    /// Whether `pid` holds a listening TCP socket (cached for [`LISTENER_TTL`]).
    fn holds_listener(&mut self, pid: u32) -> bool {
        let now = Instant::now();
        if let Some(&(yes, at)) = self.listeners.get(&pid)
            && now.saturating_duration_since(at) < LISTENER_TTL
        {
            return yes;
        }
        let yes = pidfd(pid).is_some_and(|p| {
            // A listener is among a server's first descriptors; a process with thousands of
            // connections is not asked about each.
            self.src
                .socket_fds(pid)
                .is_ok_and(|fds| fds.iter().take(256).any(|&(fd, _)| matches!(ask(&p, fd), Sock::Listener)))
        });
        if self.listeners.len() >= 4096 {
            self.listeners.clear();
        }
        self.listeners.insert(pid, (yes, now));
        yes
    }
}

/// Whether `/proc/self/status` is that of a process in the initial pid namespace: its
/// `NSpid` line has one pid (one per nested namespace otherwise; kernels before 4.1 have no
/// such line, and no way to tell: taken as initial).
fn initial_pid_namespace(status: &str) -> bool {
    status.lines().find_map(|l| l.strip_prefix("NSpid:")).is_none_or(|v| v.split_whitespace().count() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(what: u32, data: [u32; 4]) -> Vec<u8> {
        let mut m = vec![0u8; EVENT_DATA + 24];
        let len = m.len() as u32;
        m[0..4].copy_from_slice(&len.to_ne_bytes());
        m[16..20].copy_from_slice(&CN_IDX_PROC.to_ne_bytes());
        m[20..24].copy_from_slice(&CN_VAL_PROC.to_ne_bytes());
        m[36..40].copy_from_slice(&what.to_ne_bytes());
        for (i, v) in data.iter().enumerate() {
            m[EVENT_DATA + 4 * i..EVENT_DATA + 4 * i + 4].copy_from_slice(&v.to_ne_bytes());
        }
        m
    }

    #[test]
    fn forks_of_processes_and_exits_of_leaders() {
        let mut buf = message(PROC_EVENT_FORK, [10, 10, 11, 11]);
        // A thread: child pid != child tgid.
        buf.extend(message(PROC_EVENT_FORK, [10, 10, 12, 10]));
        buf.extend(message(PROC_EVENT_EXIT, [11, 11, 0, 0]));
        // A thread's exit.
        buf.extend(message(PROC_EVENT_EXIT, [12, 10, 0, 0]));
        buf.extend(message(PROC_EVENT_EXEC, [11, 11, 0, 0]));
        // Another kind (uid change): not wanted.
        buf.extend(message(4, [11, 11, 0, 0]));
        let mut out = Vec::new();
        parse(&buf, &mut out);
        assert_eq!(
            out,
            vec![ProcEvent::Fork { parent: 10, child: 11 }, ProcEvent::Exit { pid: 11 }, ProcEvent::Exec { pid: 11 }]
        );
    }

    #[test]
    fn short_and_foreign_messages_are_skipped() {
        let mut out = Vec::new();
        let m = message(PROC_EVENT_FORK, [1, 1, 2, 2]);
        for cut in 0..m.len() {
            parse(&m[..cut], &mut out);
        }
        assert!(out.is_empty());
        let mut other = m.clone();
        other[16..20].copy_from_slice(&7u32.to_ne_bytes());
        parse(&other, &mut out);
        assert!(out.is_empty());
        // A length that runs past the datagram, or below a header.
        let mut bad = m.clone();
        bad[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        parse(&bad, &mut out);
        bad[0..4].copy_from_slice(&3u32.to_ne_bytes());
        parse(&bad, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn pid_namespace_from_status() {
        assert!(initial_pid_namespace("Name:\tx\nNSpid:\t1234\nNSpgid:\t1\n"));
        assert!(!initial_pid_namespace("Name:\tx\nNSpid:\t1234\t7\n"));
        assert!(initial_pid_namespace("Name:\tx\n"));
    }

    #[test]
    fn subscription_message() {
        let b = listen_request();
        assert_eq!(u32_at(&b, 0), Some(40));
        assert_eq!(u32_at(&b, 16), Some(CN_IDX_PROC));
        assert_eq!(u32_at(&b, 36), Some(PROC_CN_MCAST_LISTEN));
    }
}
