//! Conntrack on the seed-path lab (root; in CI it must run, elsewhere it skips).

mod os_lab;

use flowtrail::conntrack::{
    self, Backend, ConntrackError, ConntrackWatcher, CtEntry, CtEventKind, CtSocket, CtUpdate, EventOrigin, ProcTable,
    Recv, WatchOptions,
};
use flowtrail::netns::Netns;
use os_lab::Lab;
use std::collections::BTreeSet;
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::{Duration, Instant};

const VM_LOCAL: &str = "127.0.0.1:55001";
const NODE: &str = "192.168.49.2:8443";

fn is_seed_dnat(e: &CtEntry) -> bool {
    e.orig.dst_addr().to_string() == VM_LOCAL
        && e.rewrite().dnat == Some((VM_LOCAL.parse().unwrap(), NODE.parse().unwrap()))
}

/// Receives until `done` says so or `within` passes; returns everything received.
fn collect(rx: &Receiver<CtUpdate>, within: Duration, mut done: impl FnMut(&[CtUpdate]) -> bool) -> Vec<CtUpdate> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while !done(&got) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        if let Ok(u) = rx.recv_timeout(left.min(Duration::from_millis(100))) {
            got.push(u);
        }
    }
    got
}

fn events(got: &[CtUpdate], kind: CtEventKind, f: impl Fn(&CtEntry) -> bool) -> Vec<CtEntry> {
    got.iter()
        .filter_map(|u| match u {
            CtUpdate::Event(e) if e.kind == kind && f(&e.entry) => Some(e.entry.clone()),
            _ => None,
        })
        .collect()
}

/// Connections of lab/client.py in HOST that went through (client JSON lines).
fn ok_connections(lines: &[String]) -> usize {
    lines.iter().filter(|l| l.contains("\"echo_ok\": true") || l.contains("\"echo_ok\":true")).count()
}

#[test]
fn vm_dump_and_events_show_the_dnat_of_each_client_connection() {
    let Some(lab) = Lab::up("cdnat") else { return };
    let vm = lab.ns("vm");
    // Timestamps and counters, in the lab's VM namespace only.
    let out = lab.exec("vm", &["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_timestamp=1", "net.netfilter.nf_conntrack_acct=1"]);
    assert!(out.status.success(), "{out:?}");

    let (tx, rx) = sync_channel(4096);
    let w = ConntrackWatcher::start(&vm, WatchOptions { backend: Backend::Netlink, ..WatchOptions::default() }, tx).unwrap();
    assert_eq!(w.backend(), Backend::Netlink);
    let first = collect(&rx, Duration::from_secs(10), |g| g.iter().any(|u| matches!(u, CtUpdate::DumpDone { .. })));
    assert!(matches!(first.last(), Some(CtUpdate::DumpDone { .. })), "{first:?}");

    const N: usize = 5;
    let log = lab.traffic(&["-n", &N.to_string(), "--size", "1000,20000", "--mode", "halfclose,close,reset"]);
    assert_eq!(ok_connections(&log), N, "{log:?}");

    // NEW for each connection's DNAT'ed leg, and for the HOST -> VM leg.
    let got = collect(&rx, Duration::from_secs(10), |g| events(g, CtEventKind::New, is_seed_dnat).len() >= N);
    let new = events(&got, CtEventKind::New, is_seed_dnat);
    assert_eq!(new.len(), N, "{got:#?}");
    for e in &new {
        assert_eq!(e.netns, vm);
        assert_eq!(e.rewrite().snat.unwrap().1.ip().to_string(), "192.168.49.1");
        // The kernel puts timestamps and counters only in dumps and DESTROY events.
        assert!(e.id.is_some() && e.start_ns.is_none(), "{e:?}");
        assert_eq!(e.tcp_state, Some(conntrack::TcpCtState::SynSent));
    }
    let vm_leg = events(&got, CtEventKind::New, |e| e.orig.dst_addr().to_string() == "192.168.65.2:49700");
    assert_eq!(vm_leg.len(), N);
    assert!(vm_leg.iter().all(|e| e.rewrite().is_none()));
    let ids: BTreeSet<u32> = new.iter().filter_map(|e| e.id).collect();
    assert_eq!(ids.len(), N);
    // Every update event of those ids is an UPDATE of the same tuples.
    let updates = events(&got, CtEventKind::Update, |e| e.id.is_some_and(|i| ids.contains(&i)));
    assert!(updates.iter().all(is_seed_dnat) && !updates.is_empty());

    // The dump has them too, with the same ids, counters and start times.
    let d = conntrack::dump_with(&vm, Backend::Netlink).unwrap();
    assert_eq!((d.backend, d.malformed), (Backend::Netlink, 0));
    let dumped: Vec<&CtEntry> = d.entries.iter().filter(|e| is_seed_dnat(e)).collect();
    assert_eq!(dumped.iter().filter_map(|e| e.id).collect::<BTreeSet<_>>(), ids);
    for e in &dumped {
        let (o, r) = e.counters.expect("nf_conntrack_acct=1 gives counters");
        assert!(o.packets > 0 && r.packets > 0 && o.bytes >= 1000, "{e:?}");
        assert!(e.start_ns.is_some());
    }
    // The same entries through procfs (no ids there).
    let p = conntrack::dump_with(&vm, Backend::Proc).unwrap();
    let tuples = |v: &[CtEntry]| -> BTreeSet<String> { v.iter().filter(|e| is_seed_dnat(e)).map(|e| format!("{} {}", e.orig, e.reply)).collect() };
    assert_eq!(tuples(&p.entries), tuples(&d.entries));
    assert_eq!(p.malformed, 0);

    // DESTROY: delete them in the lab's VM (TIME_WAIT would take 120 s).
    let out = lab.exec("vm", &["conntrack", "-D", "-p", "tcp", "--orig-port-dst", "55001"]);
    assert!(out.status.success(), "{out:?}");
    let got = collect(&rx, Duration::from_secs(10), |g| events(g, CtEventKind::Destroy, is_seed_dnat).len() >= N);
    let destroyed = events(&got, CtEventKind::Destroy, is_seed_dnat);
    assert_eq!(destroyed.iter().filter_map(|e| e.id).collect::<BTreeSet<_>>(), ids);
    assert!(destroyed.iter().all(|e| e.start_ns.is_some() && e.stop_ns >= e.start_ns && e.counters.is_some()), "{destroyed:?}");

    let t = Instant::now();
    let stats = w.stop();
    assert!(t.elapsed() < Duration::from_secs(1), "stop took {:?}", t.elapsed());
    assert!(stats.events as usize >= 3 * N && stats.overruns == 0 && stats.malformed == 0, "{stats:?}");
}

#[test]
fn auto_backend_uses_netlink_and_proc_fallback_watches_too() {
    let Some(lab) = Lab::up("cproc") else { return };
    let vm = lab.ns("vm");
    let d = conntrack::dump(&vm).unwrap();
    assert_eq!((d.backend, d.fallback.clone()), (Backend::Netlink, None));

    // The procfs watcher sees a connection that lives longer than its poll interval.
    let (tx, rx) = sync_channel(1024);
    let opts = WatchOptions { backend: Backend::Proc, poll_interval: Duration::from_millis(50), ..WatchOptions::default() };
    let w = ConntrackWatcher::start(&vm, opts, tx).unwrap();
    assert_eq!(w.backend(), Backend::Proc);
    collect(&rx, Duration::from_secs(5), |g| g.iter().any(|u| matches!(u, CtUpdate::DumpDone { .. })));
    let stream = os_lab::open_seed_connection(&lab);
    let got = collect(&rx, Duration::from_secs(5), |g| !events(g, CtEventKind::New, is_seed_dnat).is_empty());
    let new = events(&got, CtEventKind::New, is_seed_dnat);
    assert_eq!(new.len(), 1, "{got:#?}");
    assert!(got.iter().all(|u| !matches!(u, CtUpdate::Event(e) if e.origin != EventOrigin::ProcPoll)));
    drop(stream);
    lab.exec("vm", &["conntrack", "-D", "-p", "tcp", "--orig-port-dst", "55001"]);
    let got = collect(&rx, Duration::from_secs(5), |g| !events(g, CtEventKind::Destroy, is_seed_dnat).is_empty());
    assert_eq!(events(&got, CtEventKind::Destroy, is_seed_dnat).len(), 1, "{got:#?}");
    let stats = w.stop();
    assert!(stats.polls >= 2, "{stats:?}");
}

#[test]
fn missing_namespace_is_an_error_naming_it() {
    let ns = Netns::Named("flowtrail-no-such-ns-ct".into());
    let e = conntrack::dump(&ns).unwrap_err();
    assert!(matches!(e, ConntrackError::Netns(_)) && e.to_string().contains("flowtrail-no-such-ns-ct"), "{e}");
    let (tx, _rx) = sync_channel(1);
    let e = ConntrackWatcher::start(&ns, WatchOptions::default(), tx).err().unwrap();
    assert!(e.to_string().contains("flowtrail-no-such-ns-ct"), "{e}");
}

#[test]
fn watcher_ends_when_the_receiver_hangs_up() {
    let Some(lab) = Lab::up("chang") else { return };
    let (tx, rx) = sync_channel(1);
    let w = ConntrackWatcher::start(&lab.ns("vm"), WatchOptions::default(), tx).unwrap();
    drop(rx);
    lab.traffic(&["-n", "1"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while w.is_running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!w.is_running());
}

/// Records the conntrack fixtures of `tests/fixtures/os/` from a fresh lab: raw ctnetlink
/// datagrams of a dump and of the events, and what `conntrack -L`, `conntrack -E` and
/// /proc/net/nf_conntrack said at the same moments (run on demand: `cargo test --test
/// conntrack_lab -- --ignored record_conntrack_fixtures`).
#[test]
#[ignore]
fn record_conntrack_fixtures() {
    let Some(lab) = Lab::up("crec") else { return };
    let vm = lab.ns("vm");
    let dir = os_lab::root_dir().join("tests/fixtures/os");
    std::fs::create_dir_all(&dir).unwrap();
    lab.exec("vm", &["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_timestamp=1", "net.netfilter.nf_conntrack_acct=1"]);
    // An ip6tables rule using conntrack makes the VM track IPv6 too (in the lab's VM only).
    let ip6t = lab.var("FT_IPTABLES").replace("iptables", "ip6tables");
    let out = lab.exec("vm", &[&ip6t, "-A", "INPUT", "-m", "conntrack", "--ctstate", "NEW", "-j", "ACCEPT"]);
    assert!(out.status.success(), "{out:?}");
    // conntrack -E first, then our socket: both see every event from here on.
    let cli = std::process::Command::new("ip")
        .args(["netns", "exec", &format!("{}_vm", lab.id), "timeout", "60", "conntrack", "-E", "-o", "timestamp,id"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let mut ev = CtSocket::open_events(&vm).unwrap();
    lab.traffic(&["-n", "3", "--size", "1000,20000,64", "--mode", "halfclose,close,reset"]);
    lab.traffic(&["--connect", "[fd00:65::2]:49700", "-n", "1"]);
    lab.traffic(&["--udp", "--connect", "192.168.65.2:41000", "-n", "1", "--datagrams", "2"]);
    lab.traffic(&["--udp", "--connect", "[fd00:65::2]:41000", "-n", "1"]);
    std::thread::sleep(Duration::from_millis(300));

    let (raw, dump) = CtSocket::open(&vm).unwrap().dump_raw().unwrap();
    let cli_list = lab.exec("vm", &["conntrack", "-L", "-o", "id"]);
    let proc_text = ProcTable::open(&vm).unwrap().read_text().unwrap().to_string();
    std::fs::write(dir.join("ct-dump-vm.bin"), raw.concat()).unwrap();
    std::fs::write(dir.join("ct-dump-vm.txt"), &cli_list.stdout).unwrap();
    std::fs::write(dir.join("ct-proc-vm.txt"), proc_text).unwrap();

    lab.exec("vm", &["conntrack", "-F"]);
    let mut raw_events = Vec::new();
    let idle_until = |t: Duration| Instant::now() + t;
    let mut until = idle_until(Duration::from_millis(800));
    while Instant::now() < until {
        if let Recv::Data(d) = ev.recv(Duration::from_millis(100)).unwrap() {
            raw_events.extend_from_slice(d);
            until = idle_until(Duration::from_millis(800));
        }
    }
    std::fs::write(dir.join("ct-events-vm.bin"), &raw_events).unwrap();
    // SIGINT to `timeout`, which passes it on to conntrack (our own child, by its pid).
    let _ = std::process::Command::new("kill").args(["-INT", &cli.id().to_string()]).status();
    let out = cli.wait_with_output().unwrap();
    std::fs::write(dir.join("ct-events-vm.txt"), &out.stdout).unwrap();
    eprintln!(
        "recorded: dump of {} entries in {} datagrams, {} bytes of events, {} lines of conntrack -E",
        dump.entries.len(),
        raw.len(),
        raw_events.len(),
        out.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count()
    );
}
