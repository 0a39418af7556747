//! The seed-path lab (`lab/seedpath.sh`) for the conntrack and process tests: root only;
//! in CI (`CI=true`) a missing prerequisite fails the test, elsewhere it skips with a message.
#![allow(dead_code)]

use flowtrail::netns::Netns;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub fn root_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Fails in CI, skips (returns false) elsewhere.
pub fn prerequisite(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    assert!(!in_ci(), "{what} (CI=true: the lab tests must run)");
    eprintln!("SKIP: {what}");
    false
}

pub fn have_tool(tool: &str) -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .map(PathBuf::from)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|d| d.join(tool).is_file())
}

/// The real /proc through the required [`ProcSource`] methods only: no sock_diag
/// ([`ProcSource::find_socket`] says "not available", so every lookup reads the socket
/// tables) and the trait's defaults for the rest (descriptor listings, the last pid).
pub struct TablesOnly(pub LiveProc);

impl ProcSource for TablesOnly {
    fn net_table(&mut self, ns: &Netns, t: NetTable) -> Result<String, ProcessError> {
        self.0.net_table(ns, t)
    }
    fn netns_inode(&mut self, ns: &Netns) -> Result<u64, ProcessError> {
        self.0.netns_inode(ns)
    }
    fn pids(&mut self) -> std::io::Result<Vec<u32>> {
        self.0.pids()
    }
    fn pid_netns(&mut self, pid: u32) -> std::io::Result<u64> {
        self.0.pid_netns(pid)
    }
    fn socket_fds(&mut self, pid: u32) -> std::io::Result<Vec<(u32, u64)>> {
        self.0.socket_fds(pid)
    }
    fn fd_socket(&mut self, pid: u32, fd: u32) -> std::io::Result<Option<u64>> {
        self.0.fd_socket(pid, fd)
    }
    fn comm(&mut self, pid: u32) -> std::io::Result<Vec<u8>> {
        self.0.comm(pid)
    }
    fn cmdline(&mut self, pid: u32) -> std::io::Result<Vec<u8>> {
        self.0.cmdline(pid)
    }
}

/// A running lab, torn down on drop (also when the test panics).
pub struct Lab {
    pub id: String,
    pub env: HashMap<String, String>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Lab {
    /// Builds a lab, or `None` when the test must skip (not root, tools missing; outside CI).
    pub fn up(tag: &str) -> Option<Lab> {
        if !prerequisite(nix::unistd::geteuid().is_root(), "the lab needs root (network namespaces, iptables)") {
            return None;
        }
        for t in ["ip", "socat", "python3", "conntrack", "timeout"] {
            if !prerequisite(have_tool(t), &format!("{t} is not installed (scripts/install-deps.sh installs it)")) {
                return None;
            }
        }
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let id = format!("ftos{tag}{}x{n}", std::process::id());
        let out = Command::new(root_dir().join("lab/seedpath.sh"))
            .arg("up")
            .env("FT_LAB_ID", &id)
            .env("FT_LAB_TTL", "600")
            .stdin(Stdio::null())
            .output()
            .expect("run lab/seedpath.sh");
        // From here on the guard cleans up whatever `up` left.
        let mut lab = Lab { id, env: HashMap::new() };
        assert!(out.status.success(), "lab up failed: {}", String::from_utf8_lossy(&out.stderr));
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((k, v)) = l.split_once('=') {
                lab.env.insert(k.to_string(), v.to_string());
            }
        }
        Some(lab)
    }

    pub fn var(&self, k: &str) -> &str {
        self.env.get(k).map(String::as_str).unwrap_or_else(|| panic!("lab variable {k} missing"))
    }

    /// `host`, `vm` or `node`.
    pub fn ns(&self, role: &str) -> Netns {
        Netns::Named(format!("{}_{role}", self.id))
    }

    /// `ip netns exec` in a role's namespace.
    pub fn exec(&self, role: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &format!("{}_{role}", self.id)])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("ip netns exec")
    }

    /// Runs the bounded lab client in HOST; returns its JSON lines.
    pub fn traffic(&self, args: &[&str]) -> Vec<String> {
        let out = Command::new(root_dir().join("lab/seedpath.sh"))
            .args(["traffic", &self.id, "--"])
            .args(args)
            .env("FT_CLIENT_TIMEOUT", "60")
            .stdin(Stdio::null())
            .output()
            .expect("lab traffic");
        assert!(out.status.success(), "lab traffic failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(root_dir().join("lab/seedpath.sh"))
            .args(["down", &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

use flowtrail::process::{
    Attribution, LiveProc, MatchKind, NetTable, ProcSource, ProcessError, ProcessIndex, SockProto, SockState, SocketKey,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Opens one TCP connection from HOST through the whole seed path and checks the echo, so
/// that every leg is established when it returns. The stream stays bound to HOST.
pub fn open_seed_connection(lab: &Lab) -> TcpStream {
    let entry: SocketAddr = lab.var("FT_ENTRY").parse().unwrap();
    let mut s = flowtrail::netns::run_in(&lab.ns("host"), move || TcpStream::connect_timeout(&entry, Duration::from_secs(5)))
        .unwrap()
        .expect("connect to the lab entry");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let msg = vec![b'x'; 1000];
    s.write_all(&msg).unwrap();
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).expect("echo through the seed path");
    assert_eq!(back, msg);
    s
}

/// The six sockets of one connection through the seed path, as their owners see them.
#[derive(Debug)]
pub struct SeedSockets {
    pub host_client: SocketKey,
    pub host_accepted: SocketKey,
    pub host_out: SocketKey,
    pub vm_accepted: SocketKey,
    pub vm_out: SocketKey,
    pub node_accepted: SocketKey,
}

fn one<S: ProcSource>(ix: &mut ProcessIndex<S>, ns: &Netns, what: &str, f: impl Fn(&flowtrail::process::SocketRow) -> bool) -> SocketKey {
    let rows: Vec<_> = ix.sockets(ns, SockProto::Tcp).unwrap().into_iter().filter(|r| r.state == SockState::Established && f(r)).collect();
    assert_eq!(rows.len(), 1, "{ns}: expected one established {what}, got {rows:?}");
    SocketKey::tcp(rows[0].local, rows[0].remote)
}

/// Finds the sockets of the connection whose client end is `client` (in HOST) from the
/// namespaces' tables: each leg's local port gives the next one's.
pub fn seed_sockets<S: ProcSource>(ix: &mut ProcessIndex<S>, host: &Netns, vm: &Netns, node: &Netns, client: SocketAddr) -> SeedSockets {
    let entry: SocketAddr = "127.0.0.1:49673".parse().unwrap();
    let vm_listen: SocketAddr = "192.168.65.2:49700".parse().unwrap();
    let vm_local: SocketAddr = "127.0.0.1:55001".parse().unwrap();
    let node_listen: SocketAddr = "192.168.49.2:8443".parse().unwrap();
    let host_client = one(ix, host, "client socket", |r| r.local == client && r.remote == entry);
    let host_accepted = one(ix, host, "accepted socket", |r| r.local == entry && r.remote == client);
    let host_out = one(ix, host, "socket to the VM", |r| r.remote == vm_listen);
    let vm_accepted = one(ix, vm, "accepted socket", |r| r.local == vm_listen && r.remote == host_out.local);
    let vm_out = one(ix, vm, "socket to 127.0.0.1:55001", |r| r.remote == vm_local);
    // MASQUERADE keeps the port: NODE sees 192.168.49.1:<the VM forwarder's port>.
    let node_accepted = one(ix, node, "accepted socket", |r| r.local == node_listen && r.remote.port() == vm_out.local.port());
    SeedSockets { host_client, host_accepted, host_out, vm_accepted, vm_out, node_accepted }
}

/// The owners of the seed path's sockets: (client, HOST forwarder, VM forwarder, server).
pub fn check_seed_owners<S: ProcSource>(ix: &mut ProcessIndex<S>, host: &Netns, vm: &Netns, node: &Netns, s: &SeedSockets) -> [u32; 4] {
    let exact = |a: &Attribution, what: &str| {
        assert_eq!(a.matched(), Some(MatchKind::Socket), "{what}: {a:?}");
        assert_eq!(a.owners().len(), 1, "{what}: {a:?}");
        a.owner().unwrap().clone()
    };
    let client = exact(&ix.lookup(host, &s.host_client), "HOST client");
    let hf = exact(&ix.lookup(host, &s.host_accepted), "HOST accepted");
    assert_eq!(hf.comm, "socat", "{hf:?}");
    assert!(hf.cmdline.iter().any(|a| a.starts_with("TCP4-LISTEN:49673")), "{hf:?}");
    let hf_out = exact(&ix.lookup(host, &s.host_out), "HOST outgoing");
    assert_eq!(hf_out.pid, hf.pid, "one socat child carries both HOST sockets");
    let vf = exact(&ix.lookup(vm, &s.vm_accepted), "VM accepted");
    assert_eq!(vf.comm, "socat", "{vf:?}");
    assert!(vf.cmdline.iter().any(|a| a.starts_with("TCP4-LISTEN:49700")), "{vf:?}");
    let vf_out = exact(&ix.lookup(vm, &s.vm_out), "VM outgoing");
    assert_eq!(vf_out.pid, vf.pid, "one socat child carries both VM sockets");
    assert_ne!(vf.pid, hf.pid);
    let server = ix.lookup(node, &s.node_accepted);
    assert_eq!(server.matched(), Some(MatchKind::Socket), "{server:?}");
    let server = server.owner().unwrap().clone();
    assert_eq!(server.comm, "python3", "{server:?}");
    assert!(server.cmdline.iter().any(|a| a.ends_with("server.py")), "{server:?}");
    // Before accept (or for any other peer) the listener answers: the forwarder's parent.
    let pending = ix.lookup(host, &SocketKey::tcp(s.host_accepted.local, "127.0.0.1:1".parse().unwrap()));
    assert_eq!(pending.matched(), Some(MatchKind::Listener), "{pending:?}");
    assert!(pending.owners().iter().all(|o| o.comm == "socat"), "{pending:?}");
    [client.pid, hf.pid, vf.pid, server.pid]
}
