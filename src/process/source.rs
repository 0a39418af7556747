//! The OS seam of process attribution: [`ProcSource`] is everything [`super::ProcessIndex`]
//! asks of /proc; [`LiveProc`] reads the real one, tests script their own.

use super::{NetTable, ProcessError, SocketKey, SocketRow, diag, procfs};
use netlink_sys::{Socket, SocketAddr as NlAddr, protocols::NETLINK_SOCK_DIAG};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};
use crate::netns::{self, Netns};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

/// A process's socket descriptors `(fd, inode)` and its lowest free descriptor number.
pub type FdListing = (Vec<(u32, u64)>, Option<u32>);

/// What process attribution reads from /proc.
pub trait ProcSource {
    /// The text of one socket table of `ns`.
    fn net_table(&mut self, ns: &Netns, table: NetTable) -> Result<String, ProcessError>;
    /// The inode of `ns` (what `/proc/PID/ns/net` of its processes points to).
    fn netns_inode(&mut self, ns: &Netns) -> Result<u64, ProcessError>;
    /// Every process id (thread-group ids: `/proc/[0-9]*`).
    fn pids(&mut self) -> io::Result<Vec<u32>>;
    /// The network namespace inode of a process.
    fn pid_netns(&mut self, pid: u32) -> io::Result<u64>;
    /// `(fd, inode)` of every socket the process has open.
    fn socket_fds(&mut self, pid: u32) -> io::Result<Vec<(u32, u64)>>;
    /// [`Self::socket_fds`] and the lowest descriptor number free at the time: where the
    /// process's next socket goes (POSIX hands out the lowest free number). `None` when
    /// the source cannot tell.
    fn fd_listing(&mut self, pid: u32) -> io::Result<FdListing> {
        Ok((self.socket_fds(pid)?, None))
    }
    /// The socket inode behind one descriptor (`None`: not a socket).
    fn fd_socket(&mut self, pid: u32, fd: u32) -> io::Result<Option<u64>>;
    /// `/proc/PID/comm`, raw.
    fn comm(&mut self, pid: u32) -> io::Result<Vec<u8>>;
    /// `/proc/PID/cmdline`, raw.
    fn cmdline(&mut self, pid: u32) -> io::Result<Vec<u8>>;
    /// The kernel's own lookup of one socket (sock_diag; see [`super::diag`] for what it
    /// matches), when the source has one: `None` means "not available, read the tables",
    /// `Some(Ok(None))` "no such socket".
    fn find_socket(&mut self, _ns: &Netns, _key: &SocketKey) -> Option<io::Result<Option<SocketRow>>> {
        None
    }
    /// Lets go of whatever the source keeps open for `ns`.
    fn forget_namespace(&mut self, _ns: &Netns) {}
    /// The pid the kernel handed out last, when known: no process is newer, so a probe for
    /// new pids stops there.
    fn last_pid(&mut self) -> Option<u32> {
        None
    }
    /// Whether `pid` names a process (a thread-group leader), not another thread of one:
    /// `/proc/TID` answers for threads too, though `/proc` does not list them.
    fn is_process(&mut self, _pid: u32) -> bool {
        true
    }
}

/// The per-namespace socket tables, relative to the reading thread:
/// `/proc/thread-self/net/...` (see the module docs for why not `/proc/net`).
const NET_DIR: &str = "/proc/thread-self/net";
const NETNS_LINK: &str = "/proc/thread-self/ns/net";

struct NsFiles {
    /// Indexed like [`NetTable::ALL`]; `None` when the table does not exist there (no IPv6).
    files: [Option<File>; 4],
    inode: u64,
}

/// The real /proc. Socket tables are opened once per namespace on a thread inside it and
/// kept open: a /proc/net file stays bound to the namespace it was opened in, and reading it
/// again from offset 0 gives the current table, from any thread.
#[derive(Default)]
pub struct LiveProc {
    namespaces: HashMap<Netns, NsFiles>,
    /// sock_diag sockets per namespace; `None` once opening failed (not retried).
    diag: HashMap<Netns, Option<DiagSocket>>,
}

/// How long one sock_diag lookup may take before the tables are used instead.
const DIAG_TIMEOUT: Duration = Duration::from_millis(500);

struct DiagSocket {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl DiagSocket {
    fn open(ns: &Netns) -> Option<DiagSocket> {
        let sock = netns::run_in(ns, || -> io::Result<Socket> {
            let mut s = Socket::new(NETLINK_SOCK_DIAG)?;
            s.bind(&NlAddr::new(0, 0))?;
            Ok(s)
        })
        .ok()?
        .ok()?;
        Some(DiagSocket { sock, seq: 0, buf: vec![0; 16 * 1024] })
    }

    fn lookup(&mut self, key: &SocketKey) -> io::Result<Option<SocketRow>> {
        self.seq = self.seq.wrapping_add(1);
        self.sock.send(&diag::request(self.seq, key), 0)?;
        let deadline = Instant::now() + DIAG_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "sock_diag did not answer"));
            }
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX).max(1);
            let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
            let n = match self.sock.recv(&mut &mut self.buf[..], libc::MSG_DONTWAIT) {
                Ok(n) => n,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => continue,
                Err(e) => return Err(e),
            };
            match diag::parse_reply(self.buf.get(..n).unwrap_or_default(), self.seq, key.proto) {
                diag::Reply::Found(row) => return Ok(Some(row)),
                diag::Reply::NotFound => return Ok(None),
                diag::Reply::Error(e) => return Err(io::Error::from_raw_os_error(e)),
                diag::Reply::Nothing => continue,
            }
        }
    }
}

impl LiveProc {
    pub fn new() -> LiveProc {
        LiveProc::default()
    }

    fn ns_files(&mut self, ns: &Netns) -> Result<&mut NsFiles, ProcessError> {
        if !self.namespaces.contains_key(ns) {
            let opened = netns::run_in(ns, || -> Result<NsFiles, (String, io::Error)> {
                let link = std::fs::read_link(NETNS_LINK).map_err(|e| (NETNS_LINK.to_string(), e))?;
                let inode = procfs::parse_netns_link(&link.to_string_lossy()).ok_or_else(|| {
                    (NETNS_LINK.to_string(), io::Error::new(io::ErrorKind::InvalidData, format!("unexpected link {link:?}")))
                })?;
                let mut files: [Option<File>; 4] = Default::default();
                for (slot, t) in files.iter_mut().zip(NetTable::ALL) {
                    let path = format!("{NET_DIR}/{}", t.file_name());
                    *slot = match File::open(&path) {
                        Ok(f) => Some(f),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                        Err(e) => return Err((path, e)),
                    };
                }
                Ok(NsFiles { files, inode })
            })?
            .map_err(|(path, source)| ProcessError::Table { ns: ns.clone(), path, source })?;
            self.namespaces.insert(ns.clone(), opened);
        }
        self.namespaces.get_mut(ns).ok_or_else(|| ProcessError::Table {
            ns: ns.clone(),
            path: NET_DIR.into(),
            source: io::Error::other("namespace files vanished"),
        })
    }
}

impl ProcSource for LiveProc {
    fn net_table(&mut self, ns: &Netns, table: NetTable) -> Result<String, ProcessError> {
        let files = self.ns_files(ns)?;
        let idx = NetTable::ALL.iter().position(|t| *t == table).unwrap_or(0);
        let Some(f) = files.files.get_mut(idx).and_then(Option::as_mut) else { return Ok(String::new()) };
        let mut text = String::new();
        f.seek(SeekFrom::Start(0)).and_then(|_| f.read_to_string(&mut text)).map_err(|source| {
            ProcessError::Table { ns: ns.clone(), path: format!("{NET_DIR}/{}", table.file_name()), source }
        })?;
        Ok(text)
    }

    fn netns_inode(&mut self, ns: &Netns) -> Result<u64, ProcessError> {
        Ok(self.ns_files(ns)?.inode)
    }

    fn pids(&mut self) -> io::Result<Vec<u32>> {
        Ok(std::fs::read_dir("/proc")?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect())
    }

    fn pid_netns(&mut self, pid: u32) -> io::Result<u64> {
        let l = std::fs::read_link(format!("/proc/{pid}/ns/net"))?;
        procfs::parse_netns_link(&l.to_string_lossy()).ok_or_else(|| io::Error::other("not a net namespace link"))
    }

    fn socket_fds(&mut self, pid: u32) -> io::Result<Vec<(u32, u64)>> {
        self.fd_listing(pid).map(|(sockets, _)| sockets)
    }

    fn fd_listing(&mut self, pid: u32) -> io::Result<FdListing> {
        let dir = format!("/proc/{pid}/fd");
        let mut out = Vec::new();
        let mut all = Vec::new();
        for e in std::fs::read_dir(&dir)? {
            let Ok(e) = e else { continue };
            let Some(fd) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            all.push(fd);
            // The descriptor may be closed meanwhile: skip it.
            if let Ok(t) = std::fs::read_link(e.path())
                && let Some(inode) = procfs::parse_socket_link(&t.to_string_lossy())
            {
                out.push((fd, inode));
            }
        }
        Ok((out, Some(procfs::lowest_free(all))))
    }

    /// `/proc/loadavg`'s last field: the pid most recently created (a process's or a
    /// thread's) in our pid namespace.
    fn last_pid(&mut self) -> Option<u32> {
        let t = std::fs::read_to_string("/proc/loadavg").ok()?;
        t.split_ascii_whitespace().last()?.parse().ok()
    }

    fn is_process(&mut self, pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("Tgid:"))
                .and_then(|v| v.trim().parse::<u32>().ok())
                == Some(pid)
        })
    }

    fn fd_socket(&mut self, pid: u32, fd: u32) -> io::Result<Option<u64>> {
        let t = std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))?;
        Ok(procfs::parse_socket_link(&t.to_string_lossy()))
    }

    fn comm(&mut self, pid: u32) -> io::Result<Vec<u8>> {
        std::fs::read(format!("/proc/{pid}/comm"))
    }

    fn cmdline(&mut self, pid: u32) -> io::Result<Vec<u8>> {
        std::fs::read(format!("/proc/{pid}/cmdline"))
    }

    fn forget_namespace(&mut self, ns: &Netns) {
        self.namespaces.remove(ns);
        self.diag.remove(ns);
    }

    fn find_socket(&mut self, ns: &Netns, key: &SocketKey) -> Option<io::Result<Option<SocketRow>>> {
        let slot = self.diag.entry(ns.clone()).or_insert_with(|| DiagSocket::open(ns));
        let result = slot.as_mut()?.lookup(key);
        if result.is_err() {
            // A broken or unsupported socket: use the tables from now on.
            *slot = None;
        }
        Some(result)
    }
}
