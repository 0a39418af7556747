//! Ground truth for the joiner on real networks: every scenario is built in fresh network
//! namespaces, carries many concurrent connections of varied sizes (some half-closed, some
//! reset), and is captured twice in the same run: (a) live by flowtrail on every point with
//! `--flows=json`, (b) by one tcpdump per interface, then `flowtrail -r ... --conntrack
//! NETNS=FILE --flows=json` on those files and the NAT namespaces' conntrack dumps.
//!
//! Truth is built without the joiner: tuples and payload heads from the pcaps (read with
//! flowtrail's reader and decoder; lab/client.py's lines name their connection), tuple
//! rewrites from conntrack (`conntrack -L -o id`), and the forwarders' logs (lab/forwarder.py
//! logs which upstream connection each downstream one serves). Each output is scored by
//! pairwise precision and recall of "same leg" and "same path" over its observations; the
//! acceptance is 100% on all four, live and offline, for every scenario, except path recall
//! in the identical-payloads scenario, where a hop nothing in the data decides may stay
//! unjoined if the output flags it `ambiguous`, and the test checks that the packets at the
//! forwarder (every byte, every end) fit more than one pairing of its legs (see
//! `Case::undecidable_hops`).
//!
//! Scenarios: the seed path (lab/seedpath.sh), SNAT (MASQUERADE), two DNATs in a row in two
//! namespaces, UDP through DNAT, IPv6 DNAT (ip6tables), a forwarder that connects only after
//! 300 ms (and whose parent forks only 60 ms after each `accept`: the process named for each
//! accepted socket must be the child that served it, not the parent), and two clients sending identical payloads at the same moment through one
//! forwarder (joins must not cross).
//!
//! Needs root (CI runs as root; elsewhere each test skips with a message), iproute2,
//! iptables/ip6tables, conntrack, tcpdump, socat, python3. Namespaces are named
//! `ftj<pid>x<n>_<i>` and always deleted (guards' `Drop`); every process runs under
//! `timeout`; traffic only goes to the namespaces' own addresses.

mod common;
mod lab;

use flowtrail::capture::{FrameSource, OfflineReader, Points};
use flowtrail::conntrack::{CtEntry, text};
use flowtrail::decode::{Transport, decode};
use lab::{Background, Lab};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// `(protocol number, lower endpoint, higher endpoint)`: one connection, either direction.
type Key = (u8, SocketAddr, SocketAddr);

fn canon(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

fn key(proto: u8, a: SocketAddr, b: SocketAddr) -> Key {
    let (a, b) = (canon(a), canon(b));
    if a <= b { (proto, a, b) } else { (proto, b, a) }
}

// ---------------------------------------------------------------------------------------
// Scenario networks: a chain of namespaces n0 - n1 - ... - nk joined by veth pairs.

/// A chain of namespaces; link `i` joins `n_i` (interface `r{i}`, address `.1`) and
/// `n_{i+1}` (interface `l{i}`, address `.2`) on 10.77.(i+1).0/24 and fd77:(i+1)::/64.
/// Every namespace routes every link's subnet along the chain; middle ones forward.
/// Dropped: processes in the namespaces killed, namespaces deleted.
struct Chain {
    names: Vec<String>,
    pub dir: PathBuf,
    iptables: String,
    ip6tables: String,
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.stdin(Stdio::null()).output().expect("spawn");
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

fn first_working(ns: &str, candidates: &[&str]) -> String {
    for c in candidates {
        let ok = Command::new("ip")
            .args(["netns", "exec", ns, c, "-t", "nat", "-S"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return c.to_string();
        }
    }
    panic!("no working variant of {candidates:?} inside a namespace");
}

impl Chain {
    /// `hops + 1` namespaces. `None` (skipped) when not root or a tool is missing outside CI.
    fn new(tag: &str, hops: usize, v6: bool) -> Option<Chain> {
        if !lab::is_root() {
            return lab::skip_or_fail("needs root (network namespaces, iptables); CI runs as root");
        }
        for t in ["ip", "iptables", "ip6tables", "conntrack", "tcpdump", "python3", "timeout"] {
            common::require_tool(t)?;
        }
        let id = format!("ftj{}x{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        let dir = std::env::temp_dir().join(format!("flowtrail-{id}-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let names: Vec<String> = (0..=hops).map(|i| format!("{id}_{i}")).collect();
        let mut c = Chain { names: Vec::new(), dir, iptables: String::new(), ip6tables: String::new() };
        for n in &names {
            ip(&["netns", "add", n]);
            c.names.push(n.clone()); // from here on, Drop deletes it
            c.sysctl(
                c.names.len() - 1,
                &[
                    "net.ipv6.conf.default.accept_dad=0",
                    "net.ipv6.conf.default.router_solicitations=0",
                    "net.ipv6.conf.default.accept_ra=0",
                    "net.ipv6.conf.all.accept_ra=0",
                ],
            );
            if !v6 {
                c.sysctl(
                    c.names.len() - 1,
                    &["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"],
                );
            }
            ip(&["-n", n, "link", "set", "lo", "up"]);
        }
        for i in 0..hops {
            let (a, b) = (&names[i], &names[i + 1]);
            let (r, l) = (format!("r{i}"), format!("l{i}"));
            ip(&["-n", a, "link", "add", &r, "type", "veth", "peer", "name", &l, "netns", b]);
            ip(&["-n", a, "addr", "add", &format!("10.77.{}.1/24", i + 1), "dev", &r]);
            ip(&["-n", b, "addr", "add", &format!("10.77.{}.2/24", i + 1), "dev", &l]);
            if v6 {
                ip(&["-n", a, "-6", "addr", "add", &format!("fd77:{}::1/64", i + 1), "dev", &r, "nodad"]);
                ip(&["-n", b, "-6", "addr", "add", &format!("fd77:{}::2/64", i + 1), "dev", &l, "nodad"]);
            }
            ip(&["-n", a, "link", "set", &r, "up"]);
            ip(&["-n", b, "link", "set", &l, "up"]);
        }
        // Routes: links right of n_j via link j's far end, links left via link j-1's near end.
        for j in 0..=hops {
            for k in 0..hops {
                let (via4, via6, dev) = if k > j {
                    (format!("10.77.{}.2", j + 1), format!("fd77:{}::2", j + 1), format!("r{j}"))
                } else if k + 1 < j {
                    (format!("10.77.{}.1", j), format!("fd77:{}::1", j), format!("l{}", j - 1))
                } else {
                    continue;
                };
                ip(&["-n", &names[j], "route", "add", &format!("10.77.{}.0/24", k + 1), "via", &via4, "dev", &dev]);
                if v6 {
                    ip(&[
                        "-n",
                        &names[j],
                        "-6",
                        "route",
                        "add",
                        &format!("fd77:{}::/64", k + 1),
                        "via",
                        &via6,
                        "dev",
                        &dev,
                    ]);
                }
            }
            if j > 0 && j < hops {
                c.sysctl(j, &["net.ipv4.ip_forward=1"]);
                if v6 {
                    c.sysctl(j, &["net.ipv6.conf.all.forwarding=1"]);
                }
            }
        }
        c.iptables = first_working(&names[0], &["iptables", "iptables-nft", "iptables-legacy"]);
        c.ip6tables = first_working(&names[0], &["ip6tables", "ip6tables-nft", "ip6tables-legacy"]);
        // Links come up in the kernel's linkwatch work (about a second).
        let t0 = Instant::now();
        for i in 0..hops {
            for (n, dev) in [(&names[i], format!("r{i}")), (&names[i + 1], format!("l{i}"))] {
                while !String::from_utf8_lossy(
                    &run(Command::new("ip").args(["-n", n, "-o", "link", "show", "dev", &dev])).stdout,
                )
                .contains(" state UP ")
                {
                    assert!(t0.elapsed() < Duration::from_secs(10), "{n}/{dev} not up");
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        Some(c)
    }

    fn ns(&self, i: usize) -> &str {
        &self.names[i]
    }

    fn sysctl(&self, i: usize, kv: &[&str]) {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.names[i], "sysctl", "-q", "-w"]).args(kv);
        run(&mut c);
    }

    /// `iptables` (or `ip6tables` when `v6`) inside namespace `i`.
    /// Adds `rule` (iptables words, or ip6tables' with `v6`) to namespace `i`'s nat table.
    fn nat(&self, i: usize, v6: bool, rule: &str) {
        let t = if v6 { &self.ip6tables } else { &self.iptables };
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.names[i], t, "-t", "nat"]).args(rule.split_whitespace());
        run(&mut c);
    }

    /// One lab/client.py in the first namespace with `client_args` (its log in the chain's
    /// directory), through the chain's NAT: the truth comes from payloads and the conntrack
    /// of the namespaces `ct` (indices).
    fn run_nat_case(&self, name: &str, ct: &[usize], client_args: &[&str]) {
        let client = client_cmd(self.ns(0), client_args, &self.dir.join("client.jsonl"));
        run_case(Case {
            name,
            dir: &self.dir,
            points: self.points(),
            ct_ns: ct.iter().map(|&i| self.ns(i).to_string()).collect(),
            clients: vec![client],
            fwd_logs: Vec::new(),
            payload_truth: true,
            undecidable_hops: None,
        });
    }

    /// Every veth end as a capture point `NETNS/IFACE`, in chain order.
    fn points(&self) -> Vec<String> {
        let mut v = Vec::new();
        for (j, n) in self.names.iter().enumerate() {
            if j > 0 {
                v.push(format!("{n}/l{}", j - 1));
            }
            if j + 1 < self.names.len() {
                v.push(format!("{n}/r{j}"));
            }
        }
        v
    }

    /// A bounded daemon in namespace `i`; waits for "ready" on its stdout.
    /// lab/server.py (echo) in namespace `i`, `proto` `--tcp` or `--udp` on `addr`.
    fn echo_server(&self, i: usize, proto: &str, addr: &str) -> Background {
        let server = common::root().join("lab/server.py");
        self.daemon(i, "server", &["python3", server.to_str().unwrap(), proto, addr, "--lifetime", "120"])
    }

    fn daemon(&self, i: usize, name: &str, args: &[&str]) -> Background {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.names[i], "timeout", "300"]).args(args);
        let mut b = Background::spawn(c, &self.dir, name);
        let t0 = Instant::now();
        while !std::fs::read_to_string(&b.stdout).unwrap_or_default().contains("ready") {
            assert!(b.is_running(), "{name} exited: {}", std::fs::read_to_string(&b.stderr).unwrap_or_default());
            assert!(t0.elapsed() < Duration::from_secs(10), "{name} not ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        b
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        for n in &self.names {
            for _ in 0..20 {
                let out = Command::new("ip").args(["netns", "pids", n]).output();
                let pids = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
                let pids: Vec<&str> = pids.split_whitespace().collect();
                if pids.is_empty() {
                    break;
                }
                let _ = Command::new("kill").arg("-KILL").args(&pids).status();
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
        if std::env::var_os("FT_KEEP_LAB_FILES").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

// ---------------------------------------------------------------------------------------
// One run: live flowtrail + tcpdump per point, traffic, stop, offline flowtrail, truth.

/// What a scenario hands to [`run_case`].
struct Case<'a> {
    name: &'a str,
    dir: &'a Path,
    points: Vec<String>,
    /// Namespaces whose conntrack is dumped for the offline run (and for the truth).
    ct_ns: Vec<String>,
    /// Client commands, started together.
    clients: Vec<Command>,
    /// lab/forwarder.py logs.
    fwd_logs: Vec<PathBuf>,
    /// Connections named by their payload (`ft sS cN`): same name, same path. Off when
    /// clients send identical payloads.
    payload_truth: bool,
    /// Identical payloads at the same moment through one forking forwarder (running in this
    /// namespace): when the two clients' legs fit every causal constraint in both pairings
    /// (no byte forwarded before it was read, no leg closed before an end made the forwarder
    /// close it, so elimination has nothing to rule out) and attribution missed the
    /// forwarder's children (they exit within milliseconds; on a loaded host the lookup can
    /// come later), nothing in the data decides the hop. Then path recall may fall short,
    /// but only through hops the output flags as `ambiguous`, and only where the packets
    /// cannot decide: every ambiguous group is checked against every byte and every end
    /// its legs carried at the forwarder ([`decided_by_the_packets`]); every other figure
    /// must still be 100%.
    undecidable_hops: Option<String>,
}

/// Precision and recall of leg and path joins.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Score {
    leg_p: f64,
    leg_r: f64,
    path_p: f64,
    path_r: f64,
    observations: usize,
    paths: usize,
}

fn client_cmd(ns: &str, args: &[&str], log: &Path) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, "timeout", "120", "python3"])
        .arg(common::root().join("lab/client.py"))
        .args(args)
        .arg("--log")
        .arg(log);
    c
}

fn run_case(case: Case<'_>) -> (Score, Score) {
    let dir = case.dir;
    // 1. Captures.
    let mut ft = common::flowtrail();
    for p in &case.points {
        ft.arg("-i").arg(p);
    }
    // Rings large enough for 64 KiB loopback segments in bursts (a dropped frame would make
    // both the joins and the truth wrong; drops are checked below).
    ft.args(["--flows=json", "-B", "32768"]);
    let mut ft = Background::spawn(ft, dir, "flowtrail-live");
    let mut dumps = Vec::new();
    for (i, p) in case.points.iter().enumerate() {
        let (ns, dev) = p.split_once('/').unwrap();
        let file = dir.join(format!("p{i}.pcap"));
        let c = common::tcpdump_writer(ns, dev, &file);
        let mut b = Background::spawn(c, dir, &format!("tcpdump{i}"));
        b.wait_for("listening on", 1, Duration::from_secs(20));
        dumps.push((format!("p{i}"), dev, file, b));
    }
    ft.wait_for("listening on", case.points.len(), Duration::from_secs(20));

    // 2. Traffic: all clients at once, bounded.
    let mut children: Vec<std::process::Child> = case
        .clients
        .into_iter()
        .map(|mut c| c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("client"))
        .collect();
    for c in &mut children {
        let st = c.wait().expect("client");
        let mut err = String::new();
        if let Some(mut e) = c.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        assert!(st.success(), "{}: client failed ({st}): {err}", case.name);
    }
    std::thread::sleep(common::TCPDUMP_SETTLE);

    // 3. Stop: tcpdumps, then flowtrail (which prints the joined paths).
    for (_, _, _, b) in dumps.iter_mut() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(b.pid() as i32), nix::sys::signal::Signal::SIGINT);
    }
    let live = ft.interrupt();
    assert!(live.status.success(), "{}: live flowtrail: {}", case.name, live.stderr);
    let mut files = Vec::new();
    for (label, dev, file, b) in dumps {
        let done = b.interrupt();
        if let Err(e) = common::tcpdump_wrote_all(dev, &done.stderr) {
            panic!("{}: at {label}: {e}", case.name);
        }
        files.push((label, file));
    }
    assert!(
        live.stderr.lines().any(|l| l == "0 packets dropped by kernel"),
        "{}: live capture dropped packets:\n{}",
        case.name,
        live.stderr
    );

    // 4. Conntrack of the NAT namespaces (IPv4 and IPv6), the offline run's input.
    let mut ct_files = Vec::new();
    let mut entries: Vec<CtEntry> = Vec::new();
    for ns in &case.ct_ns {
        let mut text_all = String::new();
        for fam in ["ipv4", "ipv6"] {
            let o = Command::new("ip")
                .args(["netns", "exec", ns, "conntrack", "-L", "-o", "id", "-f", fam])
                .output()
                .unwrap();
            text_all.push_str(&String::from_utf8_lossy(&o.stdout));
        }
        let (e, errs) = text::parse_entries(&text_all);
        assert!(errs.is_empty(), "{errs:?}\n{text_all}");
        entries.extend(e);
        let f = dir.join(format!("{ns}.conntrack"));
        std::fs::write(&f, &text_all).unwrap();
        ct_files.push((ns.clone(), f));
    }
    let mut off = common::flowtrail();
    for (label, file) in &files {
        off.arg("-r").arg(format!("{label}={}", file.display()));
    }
    for (ns, f) in &ct_files {
        off.arg("--conntrack").arg(format!("{ns}={}", f.display()));
    }
    off.arg("--flows=json");
    let offline = off.output().expect("flowtrail -r");
    assert!(offline.status.success(), "{}: offline: {}", case.name, String::from_utf8_lossy(&offline.stderr));

    // 5. Truth, and the scores.
    let truth = Truth::build(&files, &entries, &case.fwd_logs, case.payload_truth);
    let s_live = score(&live.stdout, &truth);
    let s_off = score(&offline.stdout, &truth);
    for (mode, s) in [("live", s_live), ("offline", s_off)] {
        println!(
            "join_truth {} {mode}: legs precision {:.1}% recall {:.1}%, paths precision {:.1}% recall {:.1}% ({} observations, {} paths)",
            case.name,
            s.leg_p * 100.0,
            s.leg_r * 100.0,
            s.path_p * 100.0,
            s.path_r * 100.0,
            s.observations,
            s.paths
        );
    }
    let keep = |what: &str, bytes: &[u8]| {
        let _ = std::fs::write(dir.join(what), bytes);
    };
    keep("live.json", &live.stdout);
    keep("live.stderr", live.stderr.as_bytes());
    keep("offline.json", &offline.stdout);
    // The fork watch (root, as in CI): every scenario with a forwarder forks per connection,
    // so its children must have been watched and their sockets found.
    let stats: Value = live
        .stderr
        .lines()
        .find(|l| l.starts_with("{\"stats\""))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    let ev = &stats["stats"]["evidence"];
    let n = |k: &str| ev[k].as_u64().unwrap_or(0);
    if forwarder_hops(&live.stdout).0 > 0 {
        println!(
            "join_truth {} live: fork watch: {} children watched, {} sockets found, {} skipped, events lost {} times",
            case.name,
            n("forks_watched"),
            n("fork_sockets"),
            n("forks_skipped"),
            n("fork_events_lost")
        );
        assert!(
            ev["fork_events"] == Value::Bool(true) && n("fork_sockets") > 0,
            "{}: the forwarder's children were not watched: {ev}",
            case.name
        );
        // Root: the attribution thread, the fork watch, the conntrack collector and each
        // conntrack watcher run real-time (guarded).
        assert_eq!(n("realtime_threads"), 3 + n("conntrack_watched"), "{}: {ev}", case.name);
    }
    // Each point's connection starts came from its own immediate-mode handle (the packets
    // through the ordinary ring), and it lost none of them.
    assert_eq!(
        (n("connection_start_handles"), n("connection_starts_dropped")),
        (case.points.len() as u64, 0),
        "{}: connection-start handles: {ev}",
        case.name
    );
    for (mode, s, out) in [("live", s_live, &live.stdout), ("offline", s_off, &offline.stdout)] {
        let unflagged = unflagged_splits(out, &truth);
        let (hops_all, with_process, by_elimination) = forwarder_hops(out);
        let hops = ambiguous_hops(out);
        if hops_all > 0 || !hops.is_empty() {
            println!(
                "join_truth {} {mode}: {hops_all} forwarder hop(s) joined, {with_process} with the forwarder's process as evidence, {by_elimination} by elimination; {} ambiguous: {}",
                case.name,
                hops.len(),
                if hops.is_empty() { "-".to_string() } else { hops.join("; ") }
            );
        }
        let perfect = if let Some(ns) = &case.undecidable_hops {
            let at_forwarder: Vec<&PathBuf> = files
                .iter()
                .zip(&case.points)
                .filter(|(_, p)| p.split_once('/').is_some_and(|(n, _)| n == ns))
                .map(|((_, f), _)| f)
                .collect();
            let (decided, fitting) = decided_by_the_packets(out, &Halves::read(&at_forwarder));
            if let Some(n) = fitting {
                println!(
                    "join_truth {} {mode}: ways to pair the legs left ambiguous that every byte and end at the forwarder fits: {n}",
                    case.name
                );
            }
            assert!(
                decided.is_empty(),
                "{} {mode}: hops left ambiguous that the packets at the forwarder decide: {}",
                case.name,
                decided.join("; ")
            );
            // Where flowtrail calls a hop undecidable, the packets must fit two pairings
            // or more here too.
            let claimed = claimed_undecidable(out);
            if claimed > 0 && let Some(n) = fitting {
                assert!(
                    n >= 2,
                    "{} {mode}: flowtrail calls {claimed} hop(s) undecidable, but only {n} pairing(s) fit the packets",
                    case.name
                );
            }
            [s.leg_p, s.leg_r, s.path_p] == [1.0; 3] && unflagged.is_empty()
        } else {
            [s.leg_p, s.leg_r, s.path_p, s.path_r] == [1.0; 4] && unflagged.is_empty()
        };
        assert!(
            perfect,
            "{} {mode}: {s:?}\n{}\nmisplaced: {}",
            case.name,
            String::from_utf8_lossy(out).lines().take(200).collect::<Vec<_>>().join("\n"),
            mistakes(out, &truth).join("\n")
        );
    }
    (s_live, s_off)
}

// ---------------------------------------------------------------------------------------
// Truth.

#[derive(Default)]
struct Uf {
    parent: HashMap<Key, Key>,
}

impl Uf {
    fn find(&mut self, k: Key) -> Key {
        let p = *self.parent.entry(k).or_insert(k);
        if p == k {
            return k;
        }
        let r = self.find(p);
        self.parent.insert(k, r);
        r
    }
    fn union(&mut self, a: Key, b: Key) {
        let (x, y) = (self.find(a), self.find(b));
        if x != y {
            self.parent.insert(x, y);
        }
    }
}

struct Truth {
    leg: Uf,
    path: Uf,
}

/// `ft sS cN ` at the start of a payload: `(S, N)`.
fn payload_name(p: &[u8]) -> Option<(u64, u64)> {
    let s = std::str::from_utf8(p.get(..p.len().min(24))?).ok()?;
    let mut w = s.split(' ');
    if w.next()? != "ft" {
        return None;
    }
    let seed = w.next()?.strip_prefix('s')?.parse().ok()?;
    let conn = w.next()?.strip_prefix('c')?.parse().ok()?;
    Some((seed, conn))
}

fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|_| panic!("address {s}"))
}

impl Truth {
    fn build(files: &[(String, PathBuf)], ct: &[CtEntry], fwd_logs: &[PathBuf], payload_truth: bool) -> Truth {
        let mut t = Truth { leg: Uf::default(), path: Uf::default() };
        // Tuples and payload names from every capture.
        let mut named: HashMap<(u64, u64), Key> = HashMap::new();
        for (label, file) in files {
            let mut points = Points::default();
            let spec = format!("{label}={}", file.display());
            let mut r = OfflineReader::open(&spec, &mut points).expect("open pcap");
            while let Some(f) = r.next_frame(&mut points, Vec::new()).expect("frame") {
                let d = decode(f.linktype, &f.data);
                let Some(ip) = d.ip else { continue };
                let (k, payload, udp) = match d.transport {
                    Transport::Tcp(x) => {
                        (key(6, SocketAddr::new(ip.src, x.sport), SocketAddr::new(ip.dst, x.dport)), x.payload, false)
                    }
                    Transport::Udp(x) => {
                        (key(17, SocketAddr::new(ip.src, x.sport), SocketAddr::new(ip.dst, x.dport)), x.payload, true)
                    }
                    _ => continue,
                };
                t.leg.find(k);
                t.path.find(k);
                if payload_truth && let Some((seed, mut conn)) = payload_name(payload) {
                    if udp {
                        conn /= 1000;
                    }
                    match named.get(&(seed, conn)) {
                        Some(&other) => t.path.union(k, other),
                        None => {
                            named.insert((seed, conn), k);
                        }
                    }
                }
            }
        }
        // Conntrack: the original tuple and the wire tuple are one leg.
        for e in ct {
            let proto = e.proto.number();
            let a = key(proto, e.orig.src_addr(), e.orig.dst_addr());
            let b = key(proto, e.reply.dst_addr(), e.reply.src_addr());
            t.leg.union(a, b);
            t.path.union(a, b);
        }
        // Forwarders: the upstream and downstream legs are one path.
        for log in fwd_logs {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            for line in text.lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                let s = |k: &str| sock(v[k].as_str().unwrap());
                t.path.union(key(6, s("peer"), s("in_local")), key(6, s("out_local"), s("out_remote")));
            }
        }
        t
    }
}

/// Every captured-or-synthetic TCP/UDP observation of a `--flows=json` output:
/// `(key, path id, leg serial)`.
fn observations(out: &[u8]) -> Vec<(Key, u64, usize, String)> {
    let mut v = Vec::new();
    let mut serial = 0;
    for line in String::from_utf8_lossy(out).lines() {
        let p: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let proto = match p["proto"].as_str() {
            Some("tcp") => 6,
            Some("udp") => 17,
            _ => continue,
        };
        for l in p["legs"].as_array().unwrap() {
            serial += 1;
            for o in l["observations"].as_array().unwrap() {
                let k = key(proto, sock(o["src"].as_str().unwrap()), sock(o["dst"].as_str().unwrap()));
                v.push((k, p["id"].as_u64().unwrap(), serial, o["point"].as_str().unwrap_or("").to_string()));
            }
        }
    }
    v
}

fn score(out: &[u8], truth: &Truth) -> Score {
    let mut t = Truth { leg: Uf { parent: truth.leg.parent.clone() }, path: Uf { parent: truth.path.parent.clone() } };
    let obs = observations(out);
    let tr: Vec<(Key, Key)> = obs.iter().map(|o| (t.path.find(o.0), t.leg.find(o.0))).collect();
    let mut c = [0u64; 6];
    for i in 0..obs.len() {
        for j in i + 1..obs.len() {
            let k = |pred: bool, real: bool, base: usize, c: &mut [u64; 6]| match (pred, real) {
                (true, true) => c[base] += 1,
                (true, false) => c[base + 1] += 1,
                (false, true) => c[base + 2] += 1,
                _ => {}
            };
            k(obs[i].2 == obs[j].2, tr[i].1 == tr[j].1, 0, &mut c);
            k(obs[i].1 == obs[j].1, tr[i].0 == tr[j].0, 3, &mut c);
        }
    }
    let r = |tp: u64, x: u64| if tp + x == 0 { 1.0 } else { tp as f64 / (tp + x) as f64 };
    let mut paths: Vec<u64> = obs.iter().map(|o| o.1).collect();
    paths.dedup();
    Score {
        leg_p: r(c[0], c[1]),
        leg_r: r(c[0], c[2]),
        path_p: r(c[3], c[4]),
        path_r: r(c[3], c[5]),
        observations: obs.len(),
        paths: paths.len(),
    }
}

/// The forwarder hops an output left undecided, each once (`path P leg L -> candidates`), with
/// why: equal payloads and causal timing both ways make every pairing score alike, and the
/// scores say how close they came (the margin needed is 15).
fn ambiguous_hops(out: &[u8]) -> Vec<String> {
    let mut v = Vec::new();
    for line in String::from_utf8_lossy(out).lines() {
        let Ok(p) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        for a in p["ambiguous"].as_array().into_iter().flatten() {
            if a["side"] != "downstream" {
                continue;
            }
            let cands: Vec<String> = a["candidates"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| format!("path {} leg {} score {}", c["path"], c["leg"], c["score"]))
                .collect();
            let why = match a["fitting_pairings"].as_u64() {
                Some(n) => format!(" (flowtrail: undecidable, {n} pairings fit)"),
                None => String::new(),
            };
            v.push(format!("path {} leg {} downstream: {}{why}", p["id"], a["leg"], cands.join(", ")));
        }
    }
    v
}

/// Ambiguity notes flowtrail marks undecidable (`fitting_pairings`).
fn claimed_undecidable(out: &[u8]) -> usize {
    String::from_utf8_lossy(out)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|p| {
            p["ambiguous"].as_array().into_iter().flatten().filter(|a| a["fitting_pairings"].as_u64().is_some()).count()
        })
        .sum()
}

/// Forwarder hops joined, how many of them name one process holding both sockets, and how
/// many were joined by elimination.
fn forwarder_hops(out: &[u8]) -> (usize, usize, usize) {
    let (mut all, mut with, mut elim) = (0, 0, 0);
    for line in String::from_utf8_lossy(out).lines() {
        let Ok(p) = serde_json::from_str::<Value>(line) else { continue };
        for v in p["via"].as_array().into_iter().flatten() {
            all += 1;
            let ev: Vec<&str> = v["evidence"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            with += usize::from(ev.iter().any(|e| e.starts_with("process ")));
            elim += usize::from(ev.contains(&"elimination"));
        }
    }
    (all, with, elim)
}

/// Output paths holding part of a true path that is split, without an `ambiguous` note.
fn unflagged_splits(out: &[u8], truth: &Truth) -> Vec<u64> {
    let mut t = Truth { leg: Uf { parent: truth.leg.parent.clone() }, path: Uf { parent: truth.path.parent.clone() } };
    let mut flagged: HashMap<u64, bool> = HashMap::new();
    for line in String::from_utf8_lossy(out).lines() {
        let p: Value = serde_json::from_str(line).unwrap();
        let amb = p["ambiguous"].as_array().is_some_and(|a| !a.is_empty());
        flagged.insert(p["id"].as_u64().unwrap(), amb);
    }
    let mut paths_of: HashMap<Key, Vec<u64>> = HashMap::new();
    for o in observations(out) {
        let v = paths_of.entry(t.path.find(o.0)).or_default();
        if !v.contains(&o.1) {
            v.push(o.1);
        }
    }
    let mut bad: Vec<u64> = paths_of
        .values()
        .filter(|v| v.len() > 1)
        .flatten()
        .filter(|id| !flagged.get(id).copied().unwrap_or(false))
        .copied()
        .collect();
    bad.sort_unstable();
    bad.dedup();
    bad
}

/// Observations whose path or leg disagrees with the truth (for the failure message).
fn mistakes(out: &[u8], truth: &Truth) -> Vec<String> {
    let mut t = Truth { leg: Uf { parent: truth.leg.parent.clone() }, path: Uf { parent: truth.path.parent.clone() } };
    let obs = observations(out);
    let mut by_path: HashMap<Key, Vec<u64>> = HashMap::new();
    let mut by_leg: HashMap<Key, Vec<usize>> = HashMap::new();
    let mut truth_of_path: HashMap<u64, Vec<Key>> = HashMap::new();
    for o in &obs {
        by_path.entry(t.path.find(o.0)).or_default().push(o.1);
        by_leg.entry(t.leg.find(o.0)).or_default().push(o.2);
        truth_of_path.entry(o.1).or_default().push(t.path.find(o.0));
    }
    let mut v = Vec::new();
    for o in &obs {
        let ps = &by_path[&t.path.find(o.0)];
        let ls = &by_leg[&t.leg.find(o.0)];
        let mixed = truth_of_path[&o.1].iter().any(|r| *r != t.path.find(o.0));
        if mixed || ps.iter().any(|p| *p != o.1) || ls.iter().any(|l| *l != o.2) {
            v.push(format!("path {} leg#{} {} {:?} truth {:?}", o.1, o.2, o.3, o.0, t.path.find(o.0)));
        }
    }
    v.truncate(60);
    v
}

// ---------------------------------------------------------------------------------------
// Undecidable hops: what every byte and every end at the forwarder allows.

/// One direction of TCP connections at a forwarder's points, by `(sender, receiver)`.
#[derive(Default)]
struct Half {
    isn: Option<u32>,
    /// Time of the first SYN (ns).
    syn: Option<i64>,
    /// Payload segments: `(time ns, first stream offset, end offset)`.
    segs: Vec<(i64, u64, u64)>,
    /// Time of the first FIN or RST.
    end: Option<i64>,
}

struct Halves(HashMap<(SocketAddr, SocketAddr), Half>);

/// The joiner's defaults (`JoinConfig`): a pairing is impossible only when broken by more
/// than the doubt; an end at the same point explains a close within the slack.
const DOUBT_NS: i64 = 100_000;
const SLACK_NS: i64 = 20_000;

impl Halves {
    fn read(files: &[&PathBuf]) -> Halves {
        let mut h: HashMap<(SocketAddr, SocketAddr), Half> = HashMap::new();
        for (i, file) in files.iter().enumerate() {
            let mut points = Points::default();
            let mut r = OfflineReader::open(&format!("f{i}={}", file.display()), &mut points).expect("open pcap");
            while let Some(f) = r.next_frame(&mut points, Vec::new()).expect("frame") {
                let d = decode(f.linktype, &f.data);
                let (Some(ip), Transport::Tcp(t)) = (d.ip, d.transport) else { continue };
                let at = flowtrail::join::features::nanos(f.ts);
                let x = h.entry((SocketAddr::new(ip.src, t.sport), SocketAddr::new(ip.dst, t.dport))).or_default();
                let has = |flag: u16| t.flags & flag != 0;
                // The earliest SYN of the connection, whichever point saw it.
                if has(flowtrail::decode::tcp_flags::SYN) && x.isn.is_none_or(|i| i == t.seq) {
                    (x.isn, x.syn) = (Some(t.seq), Some(x.syn.map_or(at, |s: i64| s.min(at))));
                }
                if let Some(isn) = x.isn
                    && t.payload_len > 0
                {
                    let off = u64::from(t.seq.wrapping_sub(isn.wrapping_add(1)));
                    x.segs.push((at, off, off + u64::from(t.payload_len)));
                }
                if has(flowtrail::decode::tcp_flags::FIN | flowtrail::decode::tcp_flags::RST) {
                    x.end = Some(x.end.map_or(at, |e: i64| e.min(at)));
                }
            }
        }
        Halves(h)
    }

    fn get(&self, from: SocketAddr, to: SocketAddr) -> Option<&Half> {
        self.0.get(&(from, to))
    }
}

/// Whether the forwarder could have carried upstream leg `up` (client -> forwarder) on
/// downstream leg `down` (forwarder -> server), by every byte and every end: it connects
/// after the client did; it writes no byte before it read it, either way; and each close
/// it sends comes after the end it passes on (the client's FIN becomes its FIN towards the
/// server, the server's its FIN back to the client), or after an end on the same leg with
/// its other close at the same moment (both closed at once). The rules the joiner applies
/// to the few segments it keeps, here over all of them.
fn fits(h: &Halves, up: (SocketAddr, SocketAddr), down: (SocketAddr, SocketAddr)) -> bool {
    let (Some(uc), Some(us), Some(dc), Some(ds)) =
        (h.get(up.0, up.1), h.get(up.1, up.0), h.get(down.0, down.1), h.get(down.1, down.0))
    else {
        return true; // not seen at the forwarder: nothing to judge
    };
    if let (Some(a), Some(b)) = (uc.syn, dc.syn)
        && a - b > DOUBT_NS
    {
        return false;
    }
    // Every byte `writer` carries, read from `reader` no later (the same stream offset).
    let causal = |reader: &Half, writer: &Half| {
        writer.segs.iter().all(|&(t, _, end)| {
            let read = reader.segs.iter().filter(|s| s.1 < end && end <= s.2).map(|s| s.0).min();
            read.is_none_or(|r| r - t <= DOUBT_NS)
        })
    };
    if !causal(uc, dc) || !causal(ds, us) {
        return false;
    }
    let (client_end, server_end) = (uc.end, ds.end);
    if client_end.is_none() && server_end.is_none() {
        return true;
    }
    // (the forwarder's close, the end on its leg, the end on the other leg, its other close)
    [(dc.end, server_end, client_end, us.end), (us.end, client_end, server_end, dc.end)]
        .into_iter()
        .all(|(close, same, other, other_close)| {
            close.is_none_or(|t| {
                other.is_some_and(|e| e <= t + DOUBT_NS)
                    || (same.is_some_and(|e| e <= t + SLACK_NS)
                        && other_close.is_none_or(|o| (o - t).abs() <= DOUBT_NS))
            })
        })
}

/// The legs `out` left ambiguous whose partner the packets at the forwarder decide: taking
/// every upstream leg left ambiguous with every downstream one (the forwarder hands each to
/// exactly one; legs already joined are out of the game, and no other leg is left unjoined:
/// `unflagged_splits`), the ways to pair them all that [`fits`] allows all give the leg the
/// same partner. Empty when every such leg has two partners or more among those pairings
/// (or no pairing fits at all: a forwarder closing on its own), which nothing in the packets
/// can tell apart. Also how many pairings fit (when judged).
fn decided_by_the_packets(out: &[u8], h: &Halves) -> (Vec<String>, Option<usize>) {
    // Each leg's tuple by (path, leg); the legs on each side of the ambiguity notes.
    let mut tuple: HashMap<(u64, u64), (SocketAddr, SocketAddr)> = HashMap::new();
    let (mut ups, mut downs): (Vec<(u64, u64)>, Vec<(u64, u64)>) = (Vec::new(), Vec::new());
    for line in String::from_utf8_lossy(out).lines() {
        let Ok(p) = serde_json::from_str::<Value>(line) else { continue };
        let id = p["id"].as_u64().unwrap_or(0);
        for (l, leg) in p["legs"].as_array().into_iter().flatten().enumerate() {
            let o = &leg["observations"][0];
            if let (Some(s), Some(d)) = (o["src"].as_str(), o["dst"].as_str()) {
                tuple.insert((id, l as u64), (sock(s), sock(d)));
            }
        }
        for a in p["ambiguous"].as_array().into_iter().flatten() {
            let me = (id, a["leg"].as_u64().unwrap_or(0));
            let (mine, theirs) = if a["side"] == "downstream" { (&mut ups, &mut downs) } else { (&mut downs, &mut ups) };
            mine.push(me);
            for c in a["candidates"].as_array().into_iter().flatten() {
                theirs.push((c["path"].as_u64().unwrap_or(0), c["leg"].as_u64().unwrap_or(0)));
            }
        }
    }
    for v in [&mut ups, &mut downs] {
        v.sort_unstable();
        v.dedup();
    }
    if ups.is_empty() || ups.len() != downs.len() || ups.len() > 8 {
        return (Vec::new(), None); // not one-to-one (or too many to enumerate): not judged
    }
    let (Some(u), Some(d)) = (
        ups.iter().map(|k| tuple.get(k).copied()).collect::<Option<Vec<_>>>(),
        downs.iter().map(|k| tuple.get(k).copied()).collect::<Option<Vec<_>>>(),
    ) else {
        return (Vec::new(), None);
    };
    let fit: Vec<Vec<bool>> = u.iter().map(|&a| d.iter().map(|&b| fits(h, a, b)).collect()).collect();
    // Every pairing that fits (permutations of the downstream legs, at most 8! = 40320):
    // the partners each upstream leg gets in them.
    let mut partners: Vec<Vec<usize>> = vec![Vec::new(); u.len()];
    let mut fitting = 0;
    let mut perm: Vec<usize> = (0..d.len()).collect();
    loop {
        if (0..u.len()).all(|i| fit[i][perm[i]]) {
            fitting += 1;
            for (i, &k) in perm.iter().enumerate() {
                if !partners[i].contains(&k) {
                    partners[i].push(k);
                }
            }
        }
        // Next permutation (lexicographic).
        let Some(i) = (1..perm.len()).rev().find(|&i| perm[i - 1] < perm[i]) else { break };
        let j = (i..perm.len()).rev().find(|&j| perm[j] > perm[i - 1]).unwrap();
        perm.swap(i - 1, j);
        perm[i..].reverse();
    }
    let decided = (0..u.len())
        .filter(|&i| partners[i].len() == 1)
        .map(|i| format!("upstream leg {:?} can only go to {:?} (path, leg)", ups[i], downs[partners[i][0]]))
        .collect();
    (decided, Some(fitting))
}

// ---------------------------------------------------------------------------------------
// The scenarios.

const SIZES: &str = "100,5000,30000,30,70000,700";
const MODES: &str = "halfclose,close,reset";

#[test]
fn seed_path_live_and_offline() {
    let Some(lab) = Lab::up("truth") else { return };
    if common::require_tool("tcpdump").is_none() {
        return;
    }
    let log = lab.dir.join("client.jsonl");
    let entry = lab.var("FT_ENTRY").to_string();
    let client = client_cmd(
        lab.ns("host"),
        &[
            "--connect",
            &entry,
            "-n",
            "48",
            "--parallel",
            "8",
            "--size",
            SIZES,
            "--mode",
            MODES,
            "--timeout",
            "10",
            "--deadline",
            "60",
        ],
        &log,
    );
    run_case(Case {
        name: "seed path",
        dir: &lab.dir,
        points: lab.points(),
        ct_ns: vec![lab.ns("vm").to_string()],
        clients: vec![client],
        fwd_logs: Vec::new(),
        payload_truth: true,
        undecidable_hops: None,
    });
}

/// A client, a router with `nat` rules, a server: `(chain, client args)` ready to run.
fn three(tag: &str, v6: bool) -> Option<Chain> {
    Chain::new(tag, 2, v6)
}

#[test]
fn snat_masquerade() {
    let Some(c) = three("snat", false) else { return };
    c.nat(1, false, "-A POSTROUTING -o r1 -j MASQUERADE");
    let _server = c.echo_server(2, "--tcp", "10.77.2.2:8443");
    c.run_nat_case(
        "snat",
        &[1],
        &["--connect", "10.77.2.2:8443", "-n", "40", "--parallel", "8", "--size", SIZES, "--mode", MODES],
    );
}

#[test]
fn two_dnats_in_two_namespaces() {
    let Some(c) = Chain::new("dnat2", 3, false) else { return };
    c.nat(1, false, "-A PREROUTING -p tcp -d 10.77.1.2 --dport 80 -j DNAT --to-destination 10.77.2.2:81");
    c.nat(2, false, "-A PREROUTING -p tcp -d 10.77.2.2 --dport 81 -j DNAT --to-destination 10.77.3.2:8443");
    let _server = c.echo_server(3, "--tcp", "10.77.3.2:8443");
    c.run_nat_case(
        "two dnats",
        &[1, 2],
        &["--connect", "10.77.1.2:80", "-n", "40", "--parallel", "8", "--size", SIZES, "--mode", MODES],
    );
}

#[test]
fn udp_through_dnat() {
    let Some(c) = three("udp", false) else { return };
    c.nat(1, false, "-A PREROUTING -p udp -d 10.77.1.2 --dport 5353 -j DNAT --to-destination 10.77.2.2:41000");
    let _server = c.echo_server(2, "--udp", "10.77.2.2:41000");
    c.run_nat_case(
        "udp dnat",
        &[1],
        &[
            "--udp",
            "--connect",
            "10.77.1.2:5353",
            "-n",
            "30",
            "--parallel",
            "6",
            "--datagrams",
            "3",
            "--size",
            "200,1200,40",
        ],
    );
}

#[test]
fn ipv6_dnat() {
    let Some(c) = three("v6", true) else { return };
    c.nat(1, true, "-A PREROUTING -p tcp -d fd77:1::2 --dport 80 -j DNAT --to-destination [fd77:2::2]:8443");
    let _server = c.echo_server(2, "--tcp", "[fd77:2::2]:8443");
    c.run_nat_case(
        "ipv6 dnat",
        &[1],
        &["--connect", "[fd77:1::2]:80", "-n", "40", "--parallel", "8", "--size", SIZES, "--mode", MODES],
    );
}

/// The server in the chain's last namespace and a forwarder in the middle one
/// (lab/forwarder.py, one process per connection): the forwarder's child waits `delay`
/// seconds before connecting on, its parent `fork_delay` seconds after each `accept` before
/// forking.
fn forwarder(c: &Chain, delay: &str, fork_delay: &str) -> (Background, Background, PathBuf) {
    let server = c.daemon(
        2,
        "server",
        &[
            "python3",
            common::root().join("lab/server.py").to_str().unwrap(),
            "--tcp",
            "10.77.2.2:8443",
            "--lifetime",
            "120",
        ],
    );
    let flog = c.dir.join("forwarder.jsonl");
    let fwd = c.daemon(
        1,
        "forwarder",
        &[
            "python3",
            common::root().join("lab/forwarder.py").to_str().unwrap(),
            "--listen",
            "10.77.1.2:9000",
            "--connect",
            "10.77.2.2:8443",
            "--delay",
            delay,
            "--fork-delay",
            fork_delay,
            "--log",
            flog.to_str().unwrap(),
            "--lifetime",
            "120",
        ],
    );
    (server, fwd, flog)
}

#[test]
fn forwarder_connecting_after_a_delay() {
    let Some(c) = three("delay", false) else { return };
    // The parent also forks only 60 ms after each `accept`, holding the accepted socket
    // alone meanwhile (a busy host's fork can take that long): the process named for the
    // hop must still be the child that serves the connection.
    let (_server, _fwd, flog) = forwarder(&c, "0.3", "0.06");
    let log = c.dir.join("client.jsonl");
    let client = client_cmd(
        c.ns(0),
        &["--connect", "10.77.1.2:9000", "-n", "30", "--parallel", "6", "--size", SIZES, "--mode", MODES],
        &log,
    );
    run_case(Case {
        name: "delayed forwarder",
        dir: &c.dir,
        points: c.points(),
        ct_ns: Vec::new(),
        clients: vec![client],
        fwd_logs: vec![flog.clone()],
        payload_truth: true,
        undecidable_hops: None,
    });
    let live = std::fs::read(c.dir.join("live.json")).expect("live.json");
    let wrong = accepted_by_another_process(&live, &flog);
    assert!(wrong.is_empty(), "delayed forwarder live: accepted sockets not named by the child serving them:\n{}", wrong.join("\n"));
}

/// Upstream legs through lab/forwarder.py (its `--log`) whose accepted socket, in `out`, is
/// named for another process than the child that served the connection (the parent holds
/// it alone until it forks). An unattributed socket is not counted (attribution races
/// short connections on a busy host).
fn accepted_by_another_process(out: &[u8], fwd_log: &Path) -> Vec<String> {
    let mut child: HashMap<String, u64> = HashMap::new();
    for line in std::fs::read_to_string(fwd_log).unwrap_or_default().lines() {
        let Ok(r) = serde_json::from_str::<Value>(line) else { continue };
        if let (Some(peer), Some(pid)) = (r["peer"].as_str(), r["pid"].as_u64()) {
            child.insert(peer.to_string(), pid);
        }
    }
    assert!(!child.is_empty(), "no connection in {}", fwd_log.display());
    let mut wrong = Vec::new();
    let mut checked = 0;
    for line in String::from_utf8_lossy(out).lines() {
        let Ok(p) = serde_json::from_str::<Value>(line) else { continue };
        for leg in p["legs"].as_array().into_iter().flatten() {
            let Some(src) = leg["observations"][0]["src"].as_str() else { continue };
            let (Some(&want), Some(got)) = (child.get(src), leg["process"]["server"]["pid"].as_u64()) else { continue };
            checked += 1;
            if got != want {
                wrong.push(format!("{src}: named {got}, served by {want}"));
            }
        }
    }
    assert!(checked > 0, "no accepted socket attributed at all");
    wrong
}

#[test]
fn two_clients_identical_payloads_at_once() {
    let Some(c) = three("same", false) else { return };
    let (_server, _fwd, flog) = forwarder(&c, "0", "0");
    let at = format!(
        "{:.3}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64() + 1.0
    );
    let args = [
        "--connect",
        "10.77.1.2:9000",
        "-n",
        "12",
        "--parallel",
        "2",
        "--size",
        "3000,100,20000",
        "--mode",
        MODES,
        "--start-at",
        &at,
    ];
    let clients = vec![
        client_cmd(c.ns(0), &args, &c.dir.join("client-a.jsonl")),
        client_cmd(c.ns(0), &args, &c.dir.join("client-b.jsonl")),
    ];
    run_case(Case {
        name: "identical payloads",
        dir: &c.dir,
        points: c.points(),
        ct_ns: Vec::new(),
        clients,
        fwd_logs: vec![flog],
        payload_truth: false,
        undecidable_hops: Some(c.ns(1).to_string()),
    });
}
