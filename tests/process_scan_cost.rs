//! What process attribution costs with about 1000 extra processes (run on demand, as root:
//! `cargo test --release --test process_scan_cost -- --ignored --nocapture`).
//!
//! Measured on the development machine (2 cores, kernel 6.18, release build, ~1100
//! processes in all, each extra one a `sleep` holding 4 descriptors, one of them a socket;
//! two runs, so ranges):
//!
//! | step | time |
//! |---|---|
//! | reading one namespace's tcp+tcp6 tables (a handful of sockets) | 8-23 ms |
//! | sock_diag lookup of one socket (here: the listener) | ~40 us |
//! | process list (`/proc` read_dir) | ~1.3 ms |
//! | full scan, cold: every `/proc/PID/fd` read, every link resolved (`scan_all`) | ~100 ms |
//! | full scan, again | 40-65 ms |
//! | lookup, verified cache hit (one `readlink`) | 4-8 us |
//! | lookup of a new connection's accepted socket in the lab's VM (fresh socat child; sock_diag, then tier (a) = the VM's 4 processes) | 2-6 ms |
//! | the same from the tables only (no sock_diag) | ~10 ms |
//! | lookup, cold index, of a socket held from outside its namespace (falls through to tier (c): all processes) | 75-95 ms |
//!
//! The table read is slow because the kernel walks its whole TCP established hash (global,
//! 262144 buckets on this machine) for every namespace's file; sock_diag looks the socket up
//! in that hash directly. A new connection's lookup is then dominated by re-reading the
//! process list and learning the namespace of new pids, not by the 1000 unrelated
//! processes, which the namespace tiers skip. So: cheap enough once per new leg (SYN), not
//! per packet; a cold index should be warmed with `scan_all` at start, off the packet path.

mod os_lab;

use flowtrail::process::{MatchKind, ProcSource, ProcessIndex, SockProto, SocketKey};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Children killed (by their own pid) and reaped on drop.
struct Sleepers(Vec<Child>);

impl Drop for Sleepers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

fn time<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let v = f();
    eprintln!("{what:<70} {:>10.3} ms", t.elapsed().as_secs_f64() * 1e3);
    v
}

#[test]
#[ignore]
fn scan_cost_with_a_thousand_processes() {
    let Some(lab) = os_lab::Lab::up("pcost") else { return };
    let mut sleepers = Sleepers(Vec::new());
    let mut keep = Vec::new();
    time("spawning 1000 processes", || {
        for _ in 0..1000 {
            let (a, b) = UnixStream::pair().unwrap();
            let child = Command::new("sleep")
                .arg("120")
                .stdin(Stdio::from(std::os::fd::OwnedFd::from(a)))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            sleepers.0.push(child);
            keep.push(b);
        }
    });
    let mut live = flowtrail::process::LiveProc::new();
    let n = live.pids().unwrap().len();
    eprintln!("{n} processes");
    assert!(n >= 1000);

    let vm = lab.ns("vm");
    let host = lab.ns("host");
    let mut ix = ProcessIndex::new();
    time("first table read of a namespace (opens the files in it)", || ix.sockets(&vm, SockProto::Tcp).unwrap());
    time("tcp+tcp6 table read", || ix.sockets(&vm, SockProto::Tcp).unwrap());
    time("process list", || live.pids().unwrap());
    let scanned = time("full scan, cold (scan_all)", || ix.scan_all());
    eprintln!("  scanned {scanned}");
    time("full scan, again", || ix.scan_all());

    // A new connection: fresh socat children in HOST and the VM.
    let stream = os_lab::open_seed_connection(&lab);
    let client = stream.local_addr().unwrap();
    let socks = os_lab::seed_sockets(&mut ix, &host, &vm, &lab.ns("node"), client);
    let before = ix.stats();
    let a = time("lookup: new connection's accepted socket in the VM", || ix.lookup(&vm, &socks.vm_accepted));
    assert_eq!((a.matched(), a.owner().unwrap().comm.as_str()), (Some(MatchKind::Socket), "socat"));
    eprintln!("  fd directories read: {}", ix.stats().pids_scanned - before.pids_scanned);
    let a = time("lookup: same socket again (verified cache hit)", || ix.lookup(&vm, &socks.vm_accepted));
    assert!(a.is_known());
    let a = time("lookup: the VM forwarder's outgoing socket (cached)", || ix.lookup(&vm, &socks.vm_out));
    assert!(a.is_known());

    // A socket in HOST held by this test process (root namespace): falls through to tier (c).
    let mut cold = ProcessIndex::new();
    cold.sockets(&host, SockProto::Tcp).unwrap();
    let a = time("lookup, cold index: HOST client socket held from the root namespace", || {
        cold.lookup(&host, &socks.host_client)
    });
    assert_eq!(a.owner().unwrap().pid, std::process::id());
    eprintln!("  fd directories read: {}", cold.stats().pids_scanned);

    // Many lookups in a row (the warm path at connection rate).
    let keys: Vec<SocketKey> = [socks.host_accepted, socks.host_out, socks.host_client].to_vec();
    let t = Instant::now();
    let rounds = 300;
    for _ in 0..rounds {
        for k in &keys {
            assert!(cold.lookup(&host, k).is_known());
        }
    }
    eprintln!("{:<70} {:>10.3} ms", "lookup, warm, average", t.elapsed().as_secs_f64() * 1e3 / (rounds * keys.len()) as f64);
    eprintln!("{:?}", cold.stats());

    // The same with the tables only (no sock_diag): every miss reads tcp+tcp6.
    let mut tables = ProcessIndex::with_source(os_lab::TablesOnly(flowtrail::process::LiveProc::new()));
    tables.scan_all();
    drop(stream);
    std::thread::sleep(Duration::from_millis(300));
    let stream2 = os_lab::open_seed_connection(&lab);
    let socks2 = os_lab::seed_sockets(&mut ix, &host, &vm, &lab.ns("node"), stream2.local_addr().unwrap());
    let a = time("tables only: lookup of a new connection's accepted socket in the VM", || tables.lookup(&vm, &socks2.vm_accepted));
    assert!(a.is_known());
    let a = time("tables only: same socket again (rows cached, verified owner)", || tables.lookup(&vm, &socks2.vm_accepted));
    assert!(a.is_known());
    let a = time("tables only: listener fallback (table read)", || {
        tables.lookup(&vm, &SocketKey::tcp(socks2.vm_accepted.local, "192.168.65.1:1".parse().unwrap()))
    });
    assert_eq!(a.matched(), Some(MatchKind::Listener));
    let a = time("sock_diag: listener fallback", || {
        ix.lookup(&vm, &SocketKey::tcp(socks2.vm_accepted.local, "192.168.65.1:1".parse().unwrap()))
    });
    assert_eq!(a.matched(), Some(MatchKind::Listener));
    drop(stream2);
    assert!(t.elapsed() < Duration::from_secs(30));
}
