//! The OS seam of process attribution: [`ProcSource`] is everything [`super::ProcessIndex`]
//! asks of /proc; [`LiveProc`] reads the real one, tests script their own.

use super::{NetTable, ProcessError, procfs};
use crate::netns::{self, Netns};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

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
    /// The socket inode behind one descriptor (`None`: not a socket).
    fn fd_socket(&mut self, pid: u32, fd: u32) -> io::Result<Option<u64>>;
    /// `/proc/PID/comm`, raw.
    fn comm(&mut self, pid: u32) -> io::Result<Vec<u8>>;
    /// `/proc/PID/cmdline`, raw.
    fn cmdline(&mut self, pid: u32) -> io::Result<Vec<u8>>;
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
        let dir = format!("/proc/{pid}/fd");
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir)? {
            let Ok(e) = e else { continue };
            let Some(fd) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            // The descriptor may be closed meanwhile: skip it.
            if let Ok(t) = std::fs::read_link(e.path())
                && let Some(inode) = procfs::parse_socket_link(&t.to_string_lossy())
            {
                out.push((fd, inode));
            }
        }
        Ok(out)
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
}
