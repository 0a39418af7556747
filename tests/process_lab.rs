//! Process attribution on the seed-path lab (root; in CI it must run, elsewhere it skips).

mod os_lab;

use flowtrail::netns;
use flowtrail::process::{
    Attribution, LiveProc, MatchKind, ProcSource, ProcessIndex, RecordedProc, SockProto, SockState,
    SocketKey, UnknownReason, procfs,
};
use os_lab::{Lab, TablesOnly, check_seed_owners, open_seed_connection, seed_sockets};
use std::io::{Read, Seek, SeekFrom};
use std::time::Instant;

fn listeners(text: &str) -> Vec<std::net::SocketAddr> {
    procfs::parse_net_table(text, SockProto::Tcp).0.into_iter().filter(|r| r.state == SockState::Listen).map(|r| r.local).collect()
}

/// What the module docs of `process` claim: after `setns` on a thread, `/proc/net` and
/// `/proc/self/net` still show the main thread's namespace; `/proc/thread-self/net` shows the
/// thread's. And an open /proc/net file stays bound to its namespace and rereads live.
#[test]
fn proc_self_net_is_the_main_threads_namespace() {
    let Some(lab) = Lab::up("pself") else { return };
    let entry: std::net::SocketAddr = lab.var("FT_ENTRY").parse().unwrap();
    let root_has_entry = listeners(&std::fs::read_to_string("/proc/thread-self/net/tcp").unwrap()).contains(&entry);
    let (self_net, proc_net, thread_net, self_ns, thread_ns, file) = netns::run_in(&lab.ns("host"), || {
        let r = |p: &str| std::fs::read_to_string(p).unwrap();
        let l = |p: &str| std::fs::read_link(p).unwrap();
        (
            r("/proc/self/net/tcp"),
            r("/proc/net/tcp"),
            r("/proc/thread-self/net/tcp"),
            l("/proc/self/ns/net"),
            l("/proc/thread-self/ns/net"),
            std::fs::File::open("/proc/thread-self/net/tcp").unwrap(),
        )
    })
    .unwrap();
    assert_ne!(self_ns, thread_ns, "the thread moved, the process did not");
    assert_eq!(std::fs::read_link("/proc/thread-self/ns/net").unwrap(), self_ns);
    assert!(listeners(&thread_net).contains(&entry), "thread-self/net shows HOST's listener");
    if !root_has_entry {
        assert!(!listeners(&self_net).contains(&entry), "/proc/self/net is the main thread's namespace");
        assert!(!listeners(&proc_net).contains(&entry), "/proc/net is /proc/self/net");
    }
    // The file opened in HOST, reread from offset 0 on this (root-namespace) thread after a
    // new listener appeared in HOST, shows it.
    let extra = netns::run_in(&lab.ns("host"), || std::net::TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
    let extra_addr = extra.local_addr().unwrap();
    let mut file = file;
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.read_to_string(&mut text).unwrap();
    assert!(listeners(&text).contains(&extra_addr) && listeners(&text).contains(&entry), "{text}");
}

#[test]
fn seed_path_sockets_belong_to_the_forwarders_and_the_server() {
    let Some(lab) = Lab::up("pseed") else { return };
    let (host, vm, node) = (lab.ns("host"), lab.ns("vm"), lab.ns("node"));
    let stream = open_seed_connection(&lab);
    let client = stream.local_addr().unwrap();
    let mut ix = ProcessIndex::new();
    let socks = seed_sockets(&mut ix, &host, &vm, &node, client);
    let t = Instant::now();
    let [client_pid, hf, vf, server] = check_seed_owners(&mut ix, &host, &vm, &node, &socks);
    eprintln!("seed path owners: client {client_pid}, HOST socat {hf}, VM socat {vf}, server {server} ({:?}, {:?})", t.elapsed(), ix.stats());
    assert_eq!(client_pid, std::process::id(), "the test holds the client socket");
    assert!(ix.stats().kernel_lookups > 0 && ix.stats().kernel_lookup_errors == 0, "{:?}", ix.stats());

    // The same answers from the tables alone (no sock_diag).
    let mut tables = ProcessIndex::with_source(TablesOnly(LiveProc::new()));
    assert_eq!(check_seed_owners(&mut tables, &host, &vm, &node, &socks), [client_pid, hf, vf, server]);
    assert_eq!(tables.stats().kernel_lookups, 0);

    // UDP: the VM's echo service is an unconnected socket, IPv4 and IPv6, both ways.
    for (local, remote) in [("192.168.65.2:41000", "192.168.65.1:5000"), ("[fd00:65::2]:41000", "[fd00:65::1]:5000")] {
        let key = SocketKey::udp(local.parse().unwrap(), remote.parse().unwrap());
        for a in [ix.lookup(&vm, &key), tables.lookup(&vm, &key)] {
            assert_eq!(a.matched(), Some(MatchKind::Unconnected), "{key}: {a:?}");
            assert!(a.owner().unwrap().cmdline.iter().any(|x| x.ends_with("server.py")), "{a:?}");
        }
    }
    assert_eq!(ix.stats().kernel_lookup_errors, 0, "{:?}", ix.stats());
    // Nothing there at all.
    let none = SocketKey::tcp("127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap());
    assert_eq!(ix.lookup(&vm, &none), Attribution::Unknown(UnknownReason::NoSocket));
    assert_eq!(tables.lookup(&vm, &none), Attribution::Unknown(UnknownReason::NoSocket));

    // Conntrack in the VM agrees: the VM forwarder's outgoing socket is the DNAT'ed leg.
    let d = flowtrail::conntrack::dump(&vm).unwrap();
    let e = d.entries.iter().find(|e| e.orig.src_addr() == socks.vm_out.local && e.orig.dst_addr() == socks.vm_out.remote).expect("conntrack entry of the VM's outgoing leg");
    let rw = e.rewrite();
    assert_eq!(rw.dnat.unwrap().1.to_string(), "192.168.49.2:8443");
    assert_eq!(rw.snat.unwrap().1, socks.node_accepted.remote);

    // Once the connection is gone, the answers are remembered.
    drop(stream);
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    while Instant::now() < deadline {
        let rows = ix.sockets(&host, SockProto::Tcp).unwrap();
        if !rows.iter().any(|r| r.local == socks.host_accepted.local && r.remote == socks.host_accepted.remote && r.inode != 0) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let a = ix.lookup(&host, &socks.host_accepted);
    assert_eq!(a.owner().map(|o| o.pid), Some(hf), "{a:?}");
}

/// Records `tests/fixtures/os/proc-seedpath/` (run on demand: `cargo test --test
/// process_lab -- --ignored record_proc_fixture`).
#[test]
#[ignore]
fn record_proc_fixture() {
    let Some(lab) = Lab::up("prec") else { return };
    let (host, vm, node) = (lab.ns("host"), lab.ns("vm"), lab.ns("node"));
    let stream = open_seed_connection(&lab);
    let mut live = LiveProc::new();
    let lab_inodes: Vec<u64> = [&host, &vm, &node].iter().map(|n| live.netns_inode(n).unwrap()).collect();
    let pids: Vec<u32> = live
        .pids()
        .unwrap()
        .into_iter()
        .filter(|&p| p == std::process::id() || live.pid_netns(p).is_ok_and(|i| lab_inodes.contains(&i)))
        .collect();
    let rec = RecordedProc::record(&mut live, &[("host", host), ("vm", vm), ("node", node)], &pids).unwrap();
    let dir = os_lab::root_dir().join("tests/fixtures/os/proc-seedpath");
    let _ = std::fs::remove_dir_all(&dir);
    rec.save(&dir).unwrap();
    std::fs::write(dir.join("client"), format!("{}\n", stream.local_addr().unwrap())).unwrap();
    eprintln!("recorded {} processes into {}", rec.procs.len(), dir.display());
}

/// A forwarder's child that served one short connection and exited is named by the fork
/// watch, with both of its sockets as it saw them, though nothing in /proc is left of it
/// once the connection is over.
#[test]
fn fork_watch_names_a_forwarder_child_that_is_gone() {
    use flowtrail::process::forks::{ForkWatch, ProcEvents};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;
    let Some(lab) = Lab::up("pfork") else { return };
    let (host, vm) = (lab.ns("host"), lab.ns("vm"));
    let entry: std::net::SocketAddr = lab.var("FT_ENTRY").parse().unwrap();
    // Subscribed before the connection: its children's forks queue from here on.
    let mut events = ProcEvents::open().unwrap_or_else(|e| panic!("the process connector (root): {e}"));
    let mut watch = ForkWatch::new(&[host.clone(), vm.clone()]);
    let stop = Arc::new(AtomicBool::new(false));
    let pump_stop = stop.clone();
    let pump = std::thread::spawn(move || {
        let mut found = Vec::new();
        let mut keep = |ns: &netns::Netns, l, r, o: flowtrail::join::Owner, p| found.push((ns.clone(), l, r, o, p));
        while !pump_stop.load(Ordering::Relaxed) {
            watch.step(&mut events, Duration::from_millis(20), &mut keep).unwrap();
        }
        (found, watch.stats())
    });
    let stream = open_seed_connection(&lab);
    let client = stream.local_addr().unwrap();
    // Long enough for the watch to see the children on a loaded host (the lookups race
    // children of a few milliseconds; this test checks what the watch records).
    std::thread::sleep(Duration::from_millis(100));
    drop(stream);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (found, stats) = pump.join().unwrap();
    eprintln!("fork watch: {stats:?}\n{found:#?}");
    // HOST's child: the accepted socket from the client, and its own connection on.
    let acc = found.iter().find(|f| f.0 == host && f.1 == entry && f.2 == client).expect("HOST child's accepted socket");
    let (child, parent) = (acc.3.pid, acc.4);
    assert_ne!(child, parent);
    assert_eq!(acc.3.comm, "socat");
    let out = found.iter().find(|f| f.0 == host && f.3.pid == child && f.2 != client).expect("HOST child's connecting socket");
    // The VM's child accepted that connection (no NAT between them).
    let vm_acc = found.iter().find(|f| f.0 == vm && f.2 == out.1).expect("VM child's accepted socket");
    assert!(found.iter().any(|f| f.0 == vm && f.3.pid == vm_acc.3.pid && f.2 != out.1), "VM child's connecting socket");
    assert!(stats.watched >= 2 && stats.sockets >= 4, "{stats:?}");
    // Gone: no process, so no lookup could name it now.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{child}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!std::path::Path::new(&format!("/proc/{child}")).exists(), "the HOST child {child} is still there");
}

/// A server that runs programs (`fork`, a pause, then `exec`, or an exit without it, as
/// when `exec` fails) lends its sockets to each child until then: the fork watch must not
/// name the child as their owner.
#[test]
fn fork_watch_leaves_a_servers_sockets_to_the_server() {
    use flowtrail::process::forks::{ForkWatch, ProcEvents};
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    use std::time::Duration;
    if !os_lab::prerequisite(nix::unistd::geteuid().is_root(), "the fork watch needs root (the process connector, pidfd_getfd)") {
        return;
    }
    const SERVER: &str = r#"
import os, socket, sys, time
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
c = socket.create_connection(l.getsockname()); a, _ = l.accept()
print(c.getsockname()[1], l.getsockname()[1], flush=True)
sys.stdin.readline()
for i in range(10):
    pid = os.fork()
    if pid == 0:
        time.sleep(0.01)
        if i % 2:
            os.execv("/bin/true", ["true"])
        os._exit(127)
    os.waitpid(pid, 0)
print("done", flush=True)
sys.stdin.readline()
"#;
    let mut py = Command::new("python3").args(["-c", SERVER]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(py.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let ports: Vec<u16> = line.split_whitespace().map(|p| p.parse().unwrap()).collect();
    let (client, server): (std::net::SocketAddr, std::net::SocketAddr) =
        (([127, 0, 0, 1], ports[0]).into(), ([127, 0, 0, 1], ports[1]).into());
    let mut events = ProcEvents::open().unwrap_or_else(|e| panic!("the process connector (root): {e}"));
    let mut watch = ForkWatch::new(&[netns::Netns::Current]);
    let mut found = Vec::new();
    let mut keep = |ns: &netns::Netns, l, r, o: flowtrail::join::Owner, p| found.push((ns.clone(), l, r, o, p));
    let mut stdin = py.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(600) {
        watch.step(&mut events, Duration::from_millis(1), &mut keep).unwrap();
    }
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "done");
    stdin.write_all(b"end\n").unwrap();
    py.wait().unwrap();
    let stats = watch.stats();
    let ours = [(client, server), (server, client)];
    let wrong: Vec<_> = found.iter().filter(|f| ours.contains(&(f.1, f.2))).collect();
    assert!(wrong.is_empty(), "the server's own sockets named after its children: {wrong:?} ({stats:?})");
    assert!(stats.watched >= 10, "the server's children were not all watched: {stats:?}");
}
