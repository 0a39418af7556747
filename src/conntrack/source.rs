//! The OS seam of conntrack: the ctnetlink socket and the procfs file. Everything that
//! talks to the kernel is here; what it reads goes through the pure parsers.

use super::wire::{self, CtMessage};
use super::{Backend, ConntrackError, Dump, PROC_CONNTRACK, text};
use crate::netns::{self, Netns};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// Receive buffer: a dump datagram is at most 32 KiB, an event far less.
const RECV_BUF: usize = 256 * 1024;
/// Kernel socket buffer asked for event sockets (capped by `net.core.rmem_max`).
const EVENT_SOCKET_BUFFER: usize = 8 * 1024 * 1024;
/// How long a dump may take before it is abandoned.
pub(super) const DUMP_TIMEOUT: Duration = Duration::from_secs(10);

/// What one receive gave.
#[derive(Debug)]
pub enum Recv<'a> {
    /// One datagram (parse it with [`wire::messages`]).
    Data(&'a [u8]),
    /// Nothing arrived within the timeout.
    Idle,
    /// The kernel dropped messages because the socket buffer was full (`ENOBUFS`).
    Overrun,
}

/// A ctnetlink socket bound to one namespace (opened on a thread inside it; usable from any
/// thread afterwards).
pub struct CtSocket {
    sock: Socket,
    ns: Netns,
    buf: Vec<u8>,
    seq: u32,
}

impl CtSocket {
    /// A socket for requests (dumps).
    pub fn open(ns: &Netns) -> Result<CtSocket, ConntrackError> {
        Self::open_with(ns, &[])
    }

    /// A socket subscribed to NEW, UPDATE and DESTROY events.
    pub fn open_events(ns: &Netns) -> Result<CtSocket, ConntrackError> {
        Self::open_with(
            ns,
            &[wire::NFNLGRP_CONNTRACK_NEW, wire::NFNLGRP_CONNTRACK_UPDATE, wire::NFNLGRP_CONNTRACK_DESTROY],
        )
    }

    fn open_with(ns: &Netns, groups: &'static [u32]) -> Result<CtSocket, ConntrackError> {
        let ns2 = ns.clone();
        let err = move |what, source| ConntrackError::Socket { ns: ns2.clone(), what, source };
        let sock = netns::run_in(ns, move || -> Result<Socket, (&'static str, io::Error)> {
            let mut s = Socket::new(NETLINK_NETFILTER).map_err(|e| ("create", e))?;
            s.bind(&SocketAddr::new(0, 0)).map_err(|e| ("bind", e))?;
            for &g in groups {
                s.add_membership(g).map_err(|e| ("subscribe to events on", e))?;
            }
            if !groups.is_empty() {
                // Best effort: a smaller buffer only means earlier overruns, which are counted.
                let _ = s.set_rx_buf_sz(EVENT_SOCKET_BUFFER);
            }
            Ok(s)
        })?
        .map_err(|(what, e)| err(what, e))?;
        Ok(CtSocket { sock, ns: ns.clone(), buf: vec![0; RECV_BUF], seq: 0 })
    }

    pub fn netns(&self) -> &Netns {
        &self.ns
    }

    /// Sends a dump request; returns its sequence number.
    pub fn request_dump(&mut self) -> Result<u32, ConntrackError> {
        self.seq = self.seq.wrapping_add(1);
        let req = wire::dump_request(self.seq);
        self.sock
            .send(&req, 0)
            .map_err(|source| ConntrackError::Socket { ns: self.ns.clone(), what: "send a dump request on", source })?;
        Ok(self.seq)
    }

    /// Waits up to `timeout` for one datagram.
    pub fn recv(&mut self, timeout: Duration) -> Result<Recv<'_>, ConntrackError> {
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => return Ok(Recv::Idle),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return Ok(Recv::Idle),
            Err(e) => {
                return Err(ConntrackError::Socket { ns: self.ns.clone(), what: "poll", source: e.into() });
            }
        }
        match self.sock.recv(&mut &mut self.buf[..], libc::MSG_DONTWAIT) {
            Ok(n) => Ok(Recv::Data(self.buf.get(..n).unwrap_or_default())),
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => Ok(Recv::Overrun),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(Recv::Idle),
            Err(source) => Err(ConntrackError::Socket { ns: self.ns.clone(), what: "receive from", source }),
        }
    }

    /// Dumps the table: the raw datagrams (for recording) and the parsed entries.
    pub fn dump_raw(&mut self) -> Result<(Vec<Vec<u8>>, Dump), ConntrackError> {
        let seq = self.request_dump()?;
        let deadline = Instant::now() + DUMP_TIMEOUT;
        let ns = self.ns.clone();
        let mut raw = Vec::new();
        let mut dump = Dump { backend: Backend::Netlink, ..Dump::default() };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ConntrackError::Timeout { ns, what: "dump", ms: DUMP_TIMEOUT.as_millis() as u64 });
            }
            let data = match self.recv(left.min(Duration::from_millis(500)))? {
                Recv::Idle => continue,
                Recv::Overrun => {
                    return Err(ConntrackError::Kernel { ns, what: "dump (receive buffer overrun)", errno: libc::ENOBUFS });
                }
                Recv::Data(d) => d,
            };
            raw.push(data.to_vec());
            for m in wire::messages(data) {
                match m {
                    Ok(CtMessage::Entry { seq: s, mut entry, .. }) if s == seq => {
                        entry.netns = ns.clone();
                        dump.entries.push(entry);
                    }
                    Ok(CtMessage::Done { seq: s }) if s == seq => return Ok((raw, dump)),
                    Ok(CtMessage::Error { errno, seq: s }) if s == seq && errno != 0 => {
                        return Err(ConntrackError::Kernel { ns, what: "dump", errno });
                    }
                    Ok(_) => {}
                    Err(e @ (wire::WireError::ShortHeader { .. } | wire::WireError::BadLength { .. })) => {
                        // The rest of the datagram, possibly the DONE, is lost: give up.
                        return Err(ConntrackError::Wire { ns, what: "dump", source: e });
                    }
                    Err(wire::WireError::Entry { .. }) => dump.malformed += 1,
                }
            }
        }
    }
}

/// Reads the whole table of `ns` once ([`Backend::Auto`]: netlink, else procfs).
pub fn dump(ns: &Netns) -> Result<Dump, ConntrackError> {
    dump_with(ns, Backend::Auto)
}

/// Reads the whole table of `ns` once from the given back end.
pub fn dump_with(ns: &Netns, backend: Backend) -> Result<Dump, ConntrackError> {
    match backend {
        Backend::Netlink => Ok(CtSocket::open(ns)?.dump_raw()?.1),
        Backend::Proc => ProcTable::open(ns)?.read(),
        Backend::Auto => match CtSocket::open(ns).and_then(|mut s| s.dump_raw()) {
            Ok((_, d)) => Ok(d),
            Err(ConntrackError::Netns(e)) => Err(e.into()),
            Err(nl) => match ProcTable::open(ns).and_then(|mut p| p.read()) {
                Ok(mut d) => {
                    d.fallback = Some(nl.to_string());
                    Ok(d)
                }
                Err(pe) => Err(ConntrackError::Unavailable { ns: ns.clone(), netlink: nl.to_string(), proc: pe.to_string() }),
            },
        },
    }
}

/// `/proc/thread-self/net/nf_conntrack` of one namespace, opened once inside it and re-read
/// from the start on every [`ProcTable::read`].
pub struct ProcTable {
    file: File,
    ns: Netns,
    text: String,
}

impl ProcTable {
    pub fn open(ns: &Netns) -> Result<ProcTable, ConntrackError> {
        let file = netns::run_in(ns, || File::open(PROC_CONNTRACK))?
            .map_err(|source| ConntrackError::Proc { ns: ns.clone(), path: PROC_CONNTRACK, source })?;
        Ok(ProcTable { file, ns: ns.clone(), text: String::new() })
    }

    /// The current table text.
    pub fn read_text(&mut self) -> Result<&str, ConntrackError> {
        self.text.clear();
        self.file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.read_to_string(&mut self.text))
            .map_err(|source| ConntrackError::Proc { ns: self.ns.clone(), path: PROC_CONNTRACK, source })?;
        Ok(&self.text)
    }

    pub fn read(&mut self) -> Result<Dump, ConntrackError> {
        let ns = self.ns.clone();
        let (mut entries, bad) = text::parse_entries(self.read_text()?);
        for e in &mut entries {
            e.netns = ns.clone();
        }
        Ok(Dump { entries, backend: Backend::Proc, malformed: bad.len(), fallback: None })
    }
}
