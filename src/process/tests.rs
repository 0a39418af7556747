use super::procfs::format_endpoint;
use super::*;

const HOST: u64 = 4026532001;
const OTHER: u64 = 4026532999;

fn ns() -> Netns {
    Netns::Named("host".into())
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn line(i: usize, local: &str, remote: &str, st: u8, inode: u64) -> String {
    format!(
        "{i:4}: {} {} {st:02X} 00000000:00000000 00:00000000 00000000     0        0 {inode} 1 0000000000000000 20 4 30 10 -1\n",
        format_endpoint(sa(local)),
        format_endpoint(sa(remote))
    )
}

const HEADER: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

/// The HOST side of the seed path: socat listening on 127.0.0.1:49673 (pid 100), its forked
/// child 101 holding the accepted socket and its outgoing socket to the VM, the client 50,
/// a server 200 (IPv6 wildcard listener, UDP socket), and init in another namespace.
fn host() -> RecordedProc {
    let mut r = RecordedProc::default();
    r.ns_inodes.insert(ns(), HOST);
    let tcp = [
        HEADER.to_string(),
        line(0, "127.0.0.1:49673", "0.0.0.0:0", 0x0A, 1000),
        line(1, "127.0.0.1:49673", "127.0.0.1:40000", 0x01, 1001),
        line(2, "127.0.0.1:40000", "127.0.0.1:49673", 0x01, 1002),
        line(3, "192.168.65.1:38892", "192.168.65.2:49700", 0x01, 1003),
        line(4, "127.0.0.1:40001", "127.0.0.1:49673", 0x06, 0),
        line(5, "127.0.0.1:49673", "127.0.0.1:40002", 0x0C, 0),
    ]
    .concat();
    let tcp6 = [HEADER.to_string(), line(0, "[::]:8080", "[::]:0", 0x0A, 2000)].concat();
    let udp = [HEADER.to_string(), line(0, "0.0.0.0:41000", "0.0.0.0:0", 0x07, 3000)].concat();
    r.tables.insert((ns(), NetTable::ALL[0]), tcp);
    r.tables.insert((ns(), NetTable::ALL[1]), tcp6);
    r.tables.insert((ns(), NetTable::ALL[2]), udp);
    let p = |netns, comm: &str, fds: &[(u32, u64)]| RecordedPid {
        netns,
        comm: comm.into(),
        cmdline: vec![comm.into(), "-d".into()],
        fds: fds.to_vec(),
    };
    r.procs.insert(1, p(OTHER, "init", &[(3, 9)]));
    r.procs.insert(50, p(HOST, "python3", &[(3, 1002)]));
    r.procs.insert(100, p(HOST, "socat", &[(5, 1000)]));
    r.procs.insert(101, p(HOST, "socat", &[(5, 1000), (6, 1001), (7, 1003)]));
    r.procs.insert(200, p(HOST, "server", &[(3, 2000), (4, 3000)]));
    r
}

#[test]
fn exact_sockets_find_their_owner() {
    let mut ix = ProcessIndex::with_source(host());
    let a = ix.lookup(&ns(), &SocketKey::tcp(sa("127.0.0.1:49673"), sa("127.0.0.1:40000")));
    assert_eq!(a.matched(), Some(MatchKind::Socket));
    assert_eq!(a.to_string(), "socat[101]");
    assert_eq!(a.owner().unwrap().cmdline, ["socat", "-d"]);
    let out = ix.lookup(&ns(), &SocketKey::tcp(sa("192.168.65.1:38892"), sa("192.168.65.2:49700")));
    assert_eq!(out.to_string(), "socat[101]");
    let client = ix.lookup(&ns(), &SocketKey::tcp(sa("127.0.0.1:40000"), sa("127.0.0.1:49673")));
    assert_eq!(client.to_string(), "python3[50]");
    // The listener is shared by parent and child.
    let l = ix.lookup(&ns(), &SocketKey::tcp(sa("127.0.0.1:49673"), sa("0.0.0.0:0")));
    assert_eq!(l.to_string(), "socat[100],socat[101]");
    assert_eq!(ix.stats().unknown, 0);
}

#[test]
fn pending_connections_go_to_the_listener_and_time_wait_is_unknown() {
    let mut ix = ProcessIndex::with_source(host());
    // NEW_SYN_RECV request socket, inode 0: the listener.
    let a = ix.lookup(&ns(), &SocketKey::tcp(sa("127.0.0.1:49673"), sa("127.0.0.1:40002")));
    assert_eq!(a.matched(), Some(MatchKind::Listener));
    assert_eq!(a.owners().len(), 2);
    // No row at all, but a listener on the port.
    let a = ix.lookup(&ns(), &SocketKey::tcp(sa("127.0.0.1:49673"), sa("127.0.0.1:1")));
    assert_eq!(a.matched(), Some(MatchKind::Listener));
    // Wildcard IPv6 listener takes IPv4 (mapped) and IPv6 peers.
    let a = ix.lookup(&ns(), &SocketKey::tcp(sa("10.1.1.1:8080"), sa("10.1.1.2:5")));
    assert_eq!(a.to_string(), "server[200]");
    // UDP unconnected socket.
    let a = ix.lookup(&ns(), &SocketKey::udp(sa("192.168.65.2:41000"), sa("192.168.65.1:5000")));
    assert_eq!((a.matched(), a.to_string().as_str()), (Some(MatchKind::Unconnected), "server[200]"));
    // TIME_WAIT client side: no inode, no listener on its port.
    let a = ix.lookup(&ns(), &SocketKey::tcp(sa("127.0.0.1:40001"), sa("127.0.0.1:49673")));
    assert_eq!(a, Attribution::Unknown(UnknownReason::NoInode));
    assert_eq!(a.to_string(), "unknown");
    let a = ix.lookup(&ns(), &SocketKey::tcp(sa("127.0.0.1:1"), sa("127.0.0.1:2")));
    assert_eq!(a, Attribution::Unknown(UnknownReason::NoSocket));
    let a = ix.lookup(&Netns::Named("nope".into()), &SocketKey::tcp(sa("127.0.0.1:1"), sa("127.0.0.1:2")));
    assert!(matches!(a, Attribution::Unknown(UnknownReason::Unreadable(ref m)) if m.contains("nope")), "{a:?}");
}

#[test]
fn cache_verifies_and_rescans_only_when_needed() {
    let mut ix = ProcessIndex::with_source(host());
    let key = SocketKey::tcp(sa("127.0.0.1:49673"), sa("127.0.0.1:40000"));
    ix.lookup(&ns(), &key);
    let scans = ix.source_mut().fd_dirs_read;
    // Tier (a) on a cold cache: every process of the namespace, not init in the other one.
    assert_eq!(scans, 4);
    let a = ix.lookup(&ns(), &key);
    assert_eq!(a.to_string(), "socat[101]");
    assert_eq!(ix.source_mut().fd_dirs_read, scans, "a verified cache hit reads no fd directory");
    assert_eq!(ix.stats().cache_hits, 1);
    // The fd is reused for another socket: the cache entry fails verification, rescan.
    ix.source_mut().procs.get_mut(&101).unwrap().fds = vec![(5, 1000), (6, 4242)];
    let a = ix.lookup(&ns(), &key);
    assert_eq!(a.matched(), Some(MatchKind::Remembered));
    assert!(ix.source_mut().fd_dirs_read > scans);
}

#[test]
fn new_processes_and_other_namespaces() {
    let mut ix = ProcessIndex::with_source(host());
    ix.scan_all();
    // A new connection whose accepted socket belongs to a freshly forked child.
    let src = ix.source_mut();
    src.tables.get_mut(&(ns(), NetTable::ALL[0])).unwrap().push_str(&line(9, "127.0.0.1:49673", "127.0.0.1:40009", 1, 1009));
    src.procs.insert(102, RecordedPid { netns: HOST, comm: "socat".into(), cmdline: vec![], fds: vec![(5, 1000), (6, 1009)] });
    let before = src.fd_dirs_read;
    let a = ix.lookup(&ns(), &SocketKey::tcp(sa("127.0.0.1:49673"), sa("127.0.0.1:40009")));
    assert_eq!(a.to_string(), "socat[102]");
    assert!(a.owner().unwrap().cmdline.is_empty());
    // Tier (a): the new pid and the ones holding sockets (50, 100, 101, 200), not init.
    assert_eq!(ix.source_mut().fd_dirs_read - before, 5);
    // A socket held only by a process of another namespace is found in tier (c).
    let src = ix.source_mut();
    src.tables.get_mut(&(ns(), NetTable::ALL[0])).unwrap().push_str(&line(10, "127.0.0.1:7", "127.0.0.1:8", 1, 77));
    src.procs.get_mut(&1).unwrap().fds.push((9, 77));
    let a = ix.lookup(&ns(), &SocketKey::tcp(sa("127.0.0.1:7"), sa("127.0.0.1:8")));
    assert_eq!(a.to_string(), "init[1]");
    // A process that exited is forgotten; its socket's answer is remembered.
    let key = SocketKey::tcp(sa("127.0.0.1:40000"), sa("127.0.0.1:49673"));
    assert_eq!(ix.lookup(&ns(), &key).to_string(), "python3[50]");
    ix.source_mut().procs.remove(&50);
    let a = ix.lookup(&ns(), &key);
    assert_eq!((a.matched(), a.to_string().as_str()), (Some(MatchKind::Remembered), "python3[50]"));
    let fresh = ix.lookup(&ns(), &SocketKey::tcp(sa("127.0.0.1:40000"), sa("127.0.0.1:49999")));
    assert_eq!(fresh, Attribution::Unknown(UnknownReason::NoSocket));
}

#[test]
fn ipv4_mapped_keys_match_ipv4_rows_and_back() {
    let mut ix = ProcessIndex::with_source(host());
    let a = ix.lookup(&ns(), &SocketKey::tcp(sa("[::ffff:127.0.0.1]:49673"), sa("[::ffff:127.0.0.1]:40000")));
    assert_eq!(a.to_string(), "socat[101]");
    assert_eq!(SocketKey::tcp(sa("1.1.1.1:1"), sa("2.2.2.2:2")).peer().local, sa("2.2.2.2:2"));
}

#[test]
fn attribute_all_lists_every_socket() {
    let mut ix = ProcessIndex::with_source(host());
    let all = ix.attribute_all(&ns()).unwrap();
    assert_eq!(all.len(), 8);
    let unknown = all.iter().filter(|(_, a)| !a.is_known()).count();
    assert_eq!(unknown, 2); // TIME_WAIT and the request socket
    let text: Vec<String> = all.iter().map(|(r, a)| format!("{} {} {a}", r.local, r.remote)).collect();
    assert!(text.contains(&"192.168.65.1:38892 192.168.65.2:49700 socat[101]".to_string()), "{text:?}");
}

#[test]
fn forgetting_a_namespace_drops_its_answers() {
    let mut ix = ProcessIndex::with_source(host());
    let key = SocketKey::tcp(sa("127.0.0.1:40000"), sa("127.0.0.1:49673"));
    assert!(ix.lookup(&ns(), &key).is_known());
    ix.forget_namespace(&ns());
    ix.source_mut().procs.remove(&50);
    assert_eq!(ix.lookup(&ns(), &key), Attribution::Unknown(UnknownReason::NoOwner));
}

#[test]
fn recorded_proc_round_trips_through_a_directory() {
    let dir = std::env::temp_dir().join(format!("flowtrail-recorded-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let r = host();
    r.save(&dir).unwrap();
    let back = RecordedProc::load(&dir).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(back.procs, r.procs);
    assert_eq!(back.ns_inodes, r.ns_inodes);
    for (k, v) in &r.tables {
        assert_eq!(back.tables.get(k), Some(v));
    }
}

#[test]
fn listener_holders_are_told_apart_from_a_forked_child_that_closed_it() {
    let mut h = host();
    // socat's child 101 closes its copy of the listener, as a forwarder's child usually
    // does; the parent 100 keeps it.
    h.procs.get_mut(&101).unwrap().fds.retain(|&(_, inode)| inode != 1000);
    let mut ix = ProcessIndex::with_source(h);
    let local = sa("127.0.0.1:49673");
    assert!(ix.holds_listener(&ns(), local, 100));
    assert!(!ix.holds_listener(&ns(), local, 101));
    // The client's own port listens nowhere; the server's wildcard listener covers any
    // local address on its port.
    assert!(!ix.holds_listener(&ns(), sa("127.0.0.1:40000"), 50));
    assert!(ix.holds_listener(&ns(), sa("[::1]:8080"), 200));
}

#[test]
fn other_namespaces_are_swept_a_slice_per_lookup_until_the_holder_is_found() {
    // The socket 127.0.0.1:40000 -> 127.0.0.1:49673 (inode 1002) is held only by a process
    // in another namespace, listed after FAR_SCAN + 50 others there.
    let mut h = host();
    h.procs.remove(&50);
    let p = |fds: &[(u32, u64)]| RecordedPid { netns: OTHER, comm: "worker".into(), cmdline: vec![], fds: fds.to_vec() };
    for i in 0..FAR_SCAN as u32 + 50 {
        h.procs.insert(1000 + i, p(&[(3, 500_000 + u64::from(i))]));
    }
    let holder = 1000 + FAR_SCAN as u32 + 40;
    h.procs.insert(holder, p(&[(3, 500_000), (4, 1002)]));
    let mut ix = ProcessIndex::with_source(h);
    let key = SocketKey::tcp(sa("127.0.0.1:40000"), sa("127.0.0.1:49673"));
    // One slice of the other namespace's processes per lookup: not there yet ...
    assert_eq!(ix.lookup(&ns(), &key), Attribution::Unknown(UnknownReason::NoOwner));
    // ... then the next slice holds it.
    let a = ix.lookup(&ns(), &key);
    assert_eq!(a.to_string(), format!("worker[{holder}]"));
}

#[test]
fn a_known_process_connecting_on_is_found_on_its_lowest_free_descriptor_first() {
    let mut ix = ProcessIndex::with_source(host());
    ix.scan_all();
    // socat's child 101 (descriptors 5, 6, 7: the recorded ones are all it has, so 0 is the
    // lowest free) opens a second outgoing connection; no process is newer than 200.
    let src = ix.source_mut();
    let tcp = src.tables.get_mut(&(ns(), NetTable::ALL[0])).unwrap();
    tcp.push_str(&line(9, "192.168.65.1:38900", "192.168.65.2:49700", 2, 1010));
    tcp.push_str(&line(10, "192.168.65.1:38901", "192.168.65.2:49700", 2, 1011));
    src.procs.get_mut(&101).unwrap().fds.push((0, 1010));
    let (asked, read) = (src.netns_asked, src.fd_dirs_read);
    let a = ix.lookup(&ns(), &SocketKey::tcp(sa("192.168.65.1:38900"), sa("192.168.65.2:49700")));
    assert_eq!(a.to_string(), "socat[101]");
    let src = ix.source_mut();
    assert_eq!((src.netns_asked - asked, src.fd_dirs_read - read), (0, 0), "probed or rescanned");
    // One that is not on the lowest free descriptor (say, moved with dup2) takes a rescan
    // of the namespace's socket holders, still without probing pids never handed out.
    src.procs.get_mut(&101).unwrap().fds.push((9, 1011));
    let (asked, read) = (src.netns_asked, src.fd_dirs_read);
    let a = ix.lookup(&ns(), &SocketKey::tcp(sa("192.168.65.1:38901"), sa("192.168.65.2:49700")));
    assert_eq!(a.to_string(), "socat[101]");
    let src = ix.source_mut();
    assert_eq!(src.netns_asked - asked, 0, "pids above the last one handed out were probed");
    assert!(src.fd_dirs_read - read >= 1);
    // A child forked since is still probed for, up to the last pid and no further.
    src.tables.get_mut(&(ns(), NetTable::ALL[0])).unwrap().push_str(&line(11, "127.0.0.1:49673", "127.0.0.1:40010", 1, 1012));
    src.procs.insert(203, RecordedPid { netns: HOST, comm: "socat".into(), cmdline: vec![], fds: vec![(6, 1012)] });
    let asked = src.netns_asked;
    let a = ix.lookup(&ns(), &SocketKey::tcp(sa("127.0.0.1:49673"), sa("127.0.0.1:40010")));
    assert_eq!(a.to_string(), "socat[203]");
    assert_eq!(ix.source_mut().netns_asked - asked, 3, "201, 202 (gone) and 203");
}
