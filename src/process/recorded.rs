//! [`RecordedProc`]: a /proc snapshot (socket tables of some namespaces, and the processes
//! with their socket descriptors) that plays the [`ProcSource`] role, so attribution runs on
//! recorded input. It is written and read as a directory:
//!
//! ```text
//! ns/ALIAS/tcp, tcp6, udp, udp6   the tables as read in that namespace (ALIAS becomes
//!                                 Netns::Named(ALIAS) when loaded)
//! ns/ALIAS/inode                  the namespace's inode
//! procs.tsv                       PID \t NETNS_INODE \t COMM \t ARG0 \t ARG1 ...
//! fds.tsv                         PID \t FD \t SOCKET_INODE
//! ```

use super::{NetTable, ProcSource, ProcessError};
use crate::netns::Netns;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;

/// One recorded process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordedPid {
    pub netns: u64,
    pub comm: String,
    pub cmdline: Vec<String>,
    /// `(fd, socket inode)`.
    pub fds: Vec<(u32, u64)>,
}

/// A scripted or recorded /proc (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct RecordedProc {
    pub tables: HashMap<(Netns, NetTable), String>,
    pub ns_inodes: HashMap<Netns, u64>,
    pub procs: BTreeMap<u32, RecordedPid>,
    /// `/proc/PID/fd` directories read so far (to check the scan strategy).
    pub fd_dirs_read: usize,
    /// Network namespaces of pids asked for (a probe for new pids asks for each).
    pub netns_asked: usize,
}

fn bad(path: &Path, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{}: {what}", path.display()))
}

impl RecordedProc {
    /// Takes a snapshot through any source: the tables of `namespaces` (stored under their
    /// aliases) and the processes in `pids`.
    pub fn record<S: ProcSource>(
        src: &mut S,
        namespaces: &[(&str, Netns)],
        pids: &[u32],
    ) -> Result<RecordedProc, ProcessError> {
        let mut r = RecordedProc::default();
        for (alias, ns) in namespaces {
            let key = Netns::Named(alias.to_string());
            r.ns_inodes.insert(key.clone(), src.netns_inode(ns)?);
            for t in NetTable::ALL {
                r.tables.insert((key.clone(), t), src.net_table(ns, t)?);
            }
        }
        for &pid in pids {
            let (Ok(netns), Ok(fds)) = (src.pid_netns(pid), src.socket_fds(pid)) else { continue };
            let comm = super::procfs::parse_comm(&src.comm(pid).unwrap_or_default());
            let cmdline = super::procfs::parse_cmdline(&src.cmdline(pid).unwrap_or_default());
            r.procs.insert(pid, RecordedPid { netns, comm, cmdline, fds });
        }
        Ok(r)
    }

    pub fn save(&self, dir: &Path) -> io::Result<()> {
        for ((ns, t), text) in &self.tables {
            let d = dir.join("ns").join(ns.label_prefix().trim_end_matches('/'));
            std::fs::create_dir_all(&d)?;
            std::fs::write(d.join(t.file_name()), text)?;
        }
        for (ns, ino) in &self.ns_inodes {
            let d = dir.join("ns").join(ns.label_prefix().trim_end_matches('/'));
            std::fs::create_dir_all(&d)?;
            std::fs::write(d.join("inode"), format!("{ino}\n"))?;
        }
        let mut procs = String::new();
        let mut fds = String::new();
        for (pid, p) in &self.procs {
            procs.push_str(&format!("{pid}\t{}\t{}", p.netns, p.comm));
            for a in &p.cmdline {
                procs.push('\t');
                procs.push_str(a);
            }
            procs.push('\n');
            for (fd, ino) in &p.fds {
                fds.push_str(&format!("{pid}\t{fd}\t{ino}\n"));
            }
        }
        std::fs::write(dir.join("procs.tsv"), procs)?;
        std::fs::write(dir.join("fds.tsv"), fds)
    }

    pub fn load(dir: &Path) -> io::Result<RecordedProc> {
        let mut r = RecordedProc::default();
        for e in std::fs::read_dir(dir.join("ns"))? {
            let e = e?;
            let Some(alias) = e.file_name().to_str().map(str::to_string) else { continue };
            let ns = Netns::Named(alias);
            let ino_path = e.path().join("inode");
            let ino = std::fs::read_to_string(&ino_path)?;
            r.ns_inodes.insert(ns.clone(), ino.trim().parse().map_err(|_| bad(&ino_path, "not a number"))?);
            for t in NetTable::ALL {
                if let Ok(text) = std::fs::read_to_string(e.path().join(t.file_name())) {
                    r.tables.insert((ns.clone(), t), text);
                }
            }
        }
        let path = dir.join("procs.tsv");
        for l in std::fs::read_to_string(&path)?.lines() {
            let mut f = l.split('\t');
            let (Some(pid), Some(netns), Some(comm)) = (f.next(), f.next(), f.next()) else {
                return Err(bad(&path, format!("bad line {l:?}")));
            };
            let pid: u32 = pid.parse().map_err(|_| bad(&path, "bad pid"))?;
            let netns = netns.parse().map_err(|_| bad(&path, "bad netns inode"))?;
            let cmdline = f.map(str::to_string).collect();
            r.procs.insert(pid, RecordedPid { netns, comm: comm.to_string(), cmdline, fds: Vec::new() });
        }
        let path = dir.join("fds.tsv");
        for l in std::fs::read_to_string(&path)?.lines() {
            let v: Vec<&str> = l.split('\t').collect();
            let [pid, fd, ino] = v[..] else { return Err(bad(&path, format!("bad line {l:?}"))) };
            let (Ok(pid), Ok(fd), Ok(ino)) = (pid.parse::<u32>(), fd.parse(), ino.parse()) else {
                return Err(bad(&path, format!("bad line {l:?}")));
            };
            r.procs.entry(pid).or_default().fds.push((fd, ino));
        }
        Ok(r)
    }

    fn gone(pid: u32) -> io::Error {
        io::Error::new(io::ErrorKind::NotFound, format!("no process {pid}"))
    }
}

impl ProcSource for RecordedProc {
    fn net_table(&mut self, ns: &Netns, table: NetTable) -> Result<String, ProcessError> {
        if !self.ns_inodes.contains_key(ns) {
            return Err(ProcessError::Table {
                ns: ns.clone(),
                path: format!("/proc/thread-self/net/{}", table.file_name()),
                source: io::Error::new(io::ErrorKind::NotFound, "not recorded"),
            });
        }
        Ok(self.tables.get(&(ns.clone(), table)).cloned().unwrap_or_default())
    }

    fn netns_inode(&mut self, ns: &Netns) -> Result<u64, ProcessError> {
        self.ns_inodes.get(ns).copied().ok_or_else(|| ProcessError::Table {
            ns: ns.clone(),
            path: "/proc/thread-self/ns/net".into(),
            source: io::Error::new(io::ErrorKind::NotFound, "not recorded"),
        })
    }

    fn pids(&mut self) -> io::Result<Vec<u32>> {
        Ok(self.procs.keys().copied().collect())
    }

    fn pid_netns(&mut self, pid: u32) -> io::Result<u64> {
        self.netns_asked += 1;
        self.procs.get(&pid).map(|p| p.netns).ok_or_else(|| Self::gone(pid))
    }

    fn socket_fds(&mut self, pid: u32) -> io::Result<Vec<(u32, u64)>> {
        self.fd_dirs_read += 1;
        self.procs.get(&pid).map(|p| p.fds.clone()).ok_or_else(|| Self::gone(pid))
    }

    /// The recorded descriptors are taken for all the process has.
    fn fd_listing(&mut self, pid: u32) -> io::Result<super::source::FdListing> {
        let fds = self.socket_fds(pid)?;
        let free = super::procfs::lowest_free(fds.iter().map(|&(fd, _)| fd).collect());
        Ok((fds, Some(free)))
    }

    fn fd_socket(&mut self, pid: u32, fd: u32) -> io::Result<Option<u64>> {
        let p = self.procs.get(&pid).ok_or_else(|| Self::gone(pid))?;
        p.fds
            .iter()
            .find(|(f, _)| *f == fd)
            .map(|&(_, ino)| Some(ino))
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such fd"))
    }

    /// The highest recorded pid, as if the kernel had handed out none since.
    fn last_pid(&mut self) -> Option<u32> {
        self.procs.keys().next_back().copied()
    }

    fn comm(&mut self, pid: u32) -> io::Result<Vec<u8>> {
        self.procs.get(&pid).map(|p| format!("{}\n", p.comm).into_bytes()).ok_or_else(|| Self::gone(pid))
    }

    fn cmdline(&mut self, pid: u32) -> io::Result<Vec<u8>> {
        let p = self.procs.get(&pid).ok_or_else(|| Self::gone(pid))?;
        Ok(p.cmdline.iter().flat_map(|a| a.bytes().chain([0])).collect())
    }
}
