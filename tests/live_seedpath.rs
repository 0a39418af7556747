//! Live capture on all seven interfaces of the seed-path lab at once, in one flowtrail
//! process, checked against the client's log (ground truth) and the VM's conntrack table.
//!
//! Needs root (CI runs as root; elsewhere it skips with a message). See lab/README.md for
//! the topology: client -> HOST lo -> socat -> HOST veth-vm == VM veth-host -> socat ->
//! DNAT/MASQUERADE -> VM br0 -> bridge port veth-node == NODE eth0 -> echo server.

mod common;
mod lab;

use flowtrail::capture::{Direction, FrameSource, OfflineReader, Points};
use flowtrail::decode::{decode, Transport};
use lab::{Background, Lab};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

/// One TCP segment seen at one point.
#[derive(Clone, Debug)]
struct Seg {
    point: usize,
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    payload: Vec<u8>,
    direction: Direction,
}

/// Reads a capture file with flowtrail's reader: labels, link types, frames per point,
/// TCP segments, and whether timestamps never go back.
struct Capture {
    labels: Vec<String>,
    linktypes: Vec<u32>,
    frames: Vec<usize>,
    segs: Vec<Seg>,
    ordered: bool,
}

fn read_capture(path: &std::path::Path) -> Capture {
    let mut points = Points::default();
    let mut r = OfflineReader::open(path.to_str().unwrap(), &mut points).expect("open capture");
    let mut frames = Vec::new();
    let mut segs = Vec::new();
    let mut last = None;
    let mut ordered = true;
    while let Some(f) = r.next_frame(&mut points, Vec::new()).expect("read frame") {
        if frames.len() <= f.point {
            frames.resize(f.point + 1, 0);
        }
        frames[f.point] += 1;
        if last.is_some_and(|t| f.ts < t) {
            ordered = false;
        }
        last = Some(f.ts);
        let d = decode(f.linktype, &f.data);
        if let (Some(ip), Transport::Tcp(t)) = (d.ip, d.transport) {
            segs.push(Seg {
                point: f.point,
                src: SocketAddr::new(ip.src, t.sport),
                dst: SocketAddr::new(ip.dst, t.dport),
                seq: t.seq,
                payload: t.payload.to_vec(),
                direction: f.direction,
            });
        }
    }
    frames.resize(points.len(), 0);
    Capture {
        labels: points.points.iter().map(|p| p.label.clone()).collect(),
        linktypes: points.points.iter().map(|p| p.linktype).collect(),
        frames,
        segs,
        ordered,
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Payload bytes of distinct (seq, len) segments: retransmissions count once.
fn bytes(segs: &[&Seg]) -> u64 {
    let set: BTreeSet<(u32, usize)> = segs.iter().filter(|s| !s.payload.is_empty()).map(|s| (s.seq, s.payload.len())).collect();
    set.iter().map(|(_, l)| *l as u64).sum()
}

/// conntrack -L lines as (original tuple, reply tuple), each (src, dst, sport, dport).
type Tuple = (String, String, u16, u16);
fn conntrack_entries(text: &str) -> Vec<(Tuple, Tuple)> {
    let mut v = Vec::new();
    for line in text.lines() {
        let kv: Vec<(&str, &str)> = line.split_whitespace().filter_map(|w| w.split_once('=')).collect();
        let get = |k: &str, n: usize| kv.iter().filter(|(x, _)| *x == k).nth(n).map(|(_, v)| v.to_string());
        let tuple = |n: usize| -> Option<Tuple> {
            Some((get("src", n)?, get("dst", n)?, get("sport", n)?.parse().ok()?, get("dport", n)?.parse().ok()?))
        };
        if let (Some(o), Some(r)) = (tuple(0), tuple(1)) {
            v.push((o, r));
        }
    }
    v
}

#[test]
fn seven_points_in_three_namespaces_one_process() {
    let Some(lab) = Lab::up("seed") else { return };
    let tshark = common::require_tool("tshark");
    let points = lab.points();
    let names = lab.point_names();
    assert_eq!(points.len(), 7);
    let out = lab.dir.join("all.pcapng");

    // 1. Capture every point, one process, labels = NETNS/IFACE.
    let mut cmd = common::flowtrail();
    for p in &points {
        cmd.arg("-i").arg(p);
    }
    cmd.arg("-w").arg(&out);
    let mut ft = Background::spawn(cmd, &lab.dir, "flowtrail");
    ft.wait_for("listening on", 7, Duration::from_secs(20));

    // 2. Bounded traffic: the client's log is the ground truth. Plus one control connection
    // to the VM's own lo service, so "VM lo sees none of the path" is not vacuous.
    let truth = lab.traffic(&[
        "-n", "6", "--size", "3000,20000,100000", "--mode", "halfclose,close,reset", "--timeout", "10", "--deadline", "60",
    ]);
    assert_eq!(truth.len(), 6);
    assert!(truth.iter().all(|c| c.echo_ok && c.error.is_none()), "client: {truth:?}");
    let service = lab.var("FT_VM_LO_SERVICE").to_string();
    let client = common::root().join("lab/client.py");
    let ctl = lab.exec(
        "vm",
        &["timeout", "30", "python3", client.to_str().unwrap(), "--connect", &service, "-n", "1", "--size", "500", "--seed", "7"],
    );
    assert!(ctl.status.success(), "VM lo control connection: {}", String::from_utf8_lossy(&ctl.stderr));
    let conntrack = lab.vm_conntrack();
    // Let the forwarders finish closing their legs (FINs after the client's RST).
    std::thread::sleep(Duration::from_millis(700));

    // 3. SIGINT: clean stop, exit 0, statistics per point and in total.
    let done = ft.interrupt();
    eprintln!("flowtrail stopped {:?} after SIGINT\n{}", done.stop_time, done.stderr);
    assert!(done.status.success(), "exit status {:?}\n{}", done.status, done.stderr);
    assert!(done.stop_time < Duration::from_secs(3), "SIGINT took {:?}", done.stop_time);
    assert!(done.stdout.is_empty(), "-w without --print prints nothing");
    let mut captured_by_label: HashMap<String, u64> = HashMap::new();
    for p in &points {
        let line = done
            .stderr
            .lines()
            .find(|l| l.starts_with(&format!("{p}: ")))
            .unwrap_or_else(|| panic!("no statistics line for {p}:\n{}", done.stderr));
        assert!(line.ends_with(", 0 dropped by kernel"), "kernel drops: {line}");
        let n: u64 = line[p.len() + 2..].split(' ').next().unwrap().parse().unwrap();
        captured_by_label.insert(p.clone(), n);
        assert!(done.stderr.contains(&format!("flowtrail: listening on {p}, link-type EN10MB (Ethernet), snapshot length 262144 bytes")));
    }
    let total: u64 = captured_by_label.values().sum();
    assert!(done.stderr.contains(&format!("\n{total} packets captured\n")), "{}", done.stderr);
    assert!(done.stderr.contains("packets received by filter\n0 packets dropped by kernel\n"), "{}", done.stderr);

    // 4. The file: one IDB per point named by its label, Ethernet, frames in time order.
    let cap = read_capture(&out);
    assert_eq!(cap.labels, points, "pcapng interface names = labels, in -i order");
    assert!(cap.linktypes.iter().all(|&l| l == 1), "{:?}", cap.linktypes);
    assert!(cap.ordered, "frames are written in timestamp order across points");
    for (i, p) in points.iter().enumerate() {
        assert_eq!(cap.frames[i] as u64, captured_by_label[p], "{p}: frames in file vs 'captured'");
    }

    // 5. Each connection on every point it crosses, with the tuple expected there.
    let pt = |name: &str| names.iter().position(|n| n == name).unwrap();
    let (h_lo, h_veth, v_veth, v_lo, v_br, v_port, n_eth) =
        (pt("host-lo"), pt("host-veth"), pt("vm-veth"), pt("vm-lo"), pt("vm-br0"), pt("vm-brport"), pt("node-eth0"));
    let entry: SocketAddr = lab.var("FT_ENTRY").parse().unwrap();
    let vm_port: u16 = lab.var("FT_VM_PORT").parse().unwrap();
    let node: SocketAddr = lab.var("FT_NODE").parse().unwrap();
    let host_addr: std::net::IpAddr = lab.var("FT_HOST_ADDR").parse().unwrap();
    let vm_addr: std::net::IpAddr = lab.var("FT_VM_ADDR").parse().unwrap();
    let br_addr: std::net::IpAddr = lab.var("FT_BR_ADDR").parse().unwrap();
    let vm_local_port: u16 = lab.var("FT_VM_LOCAL_PORT").parse().unwrap();
    let ct = conntrack_entries(&conntrack);
    for c in &truth {
        let marker = format!("ft s1 c{:04} ", c.i);
        let of = |point: usize| -> Vec<&Seg> {
            cap.segs.iter().filter(|s| s.point == point && contains(&s.payload, marker.as_bytes())).collect()
        };
        // The client -> server tuple at `point` (the direction towards `server_port`).
        let c2s = |point: usize, server_port: u16| -> BTreeSet<(SocketAddr, SocketAddr)> {
            of(point).iter().filter(|s| s.dst.port() == server_port).map(|s| (s.src, s.dst)).collect()
        };
        let one = |set: BTreeSet<(SocketAddr, SocketAddr)>, what: &str| -> (SocketAddr, SocketAddr) {
            assert_eq!(set.len(), 1, "connection {}: {what}: tuples {set:?}", c.i);
            *set.iter().next().unwrap()
        };
        // Leg 1, HOST lo: the client's own socket.
        let leg1 = one(c2s(h_lo, entry.port()), "host lo");
        assert_eq!(leg1, (SocketAddr::new(entry.ip(), c.local_port), entry), "connection {}", c.i);
        // Leg 2, the host-VM link, same tuple on both ends.
        let leg2 = one(c2s(h_veth, vm_port), "host veth");
        assert_eq!(leg2.0.ip(), host_addr);
        assert_eq!(leg2.1, SocketAddr::new(vm_addr, vm_port));
        assert_eq!(one(c2s(v_veth, vm_port), "vm veth"), leg2, "connection {}", c.i);
        // Leg 3, after DNAT + MASQUERADE: br0, the bridge port and the node's eth0.
        let leg3 = one(c2s(v_br, node.port()), "vm br0");
        assert_eq!(leg3.0.ip(), br_addr);
        assert_eq!(leg3.1, node);
        assert_eq!(one(c2s(v_port, node.port()), "vm bridge port"), leg3, "connection {}", c.i);
        assert_eq!(one(c2s(n_eth, node.port()), "node eth0"), leg3, "connection {}", c.i);
        // conntrack knows what the DNAT rewrote: 127.0.0.1:Q -> 127.0.0.1:55001 became
        // 192.168.49.1:Q -> 192.168.49.2:8443 (reply 8443 -> Q).
        let q = leg3.0.port();
        assert!(
            ct.iter().any(|(o, r)| o == &("127.0.0.1".into(), "127.0.0.1".into(), q, vm_local_port)
                && r == &(node.ip().to_string(), br_addr.to_string(), node.port(), q)),
            "connection {}: no conntrack entry for the DNAT of port {q}:\n{conntrack}",
            c.i
        );
        assert!(
            ct.iter().any(|(o, _)| o == &(host_addr.to_string(), vm_addr.to_string(), leg2.0.port(), vm_port)),
            "connection {}: no conntrack entry for leg 2:\n{conntrack}",
            c.i
        );
        // Every byte both ways at every point of its path, and in the right direction.
        for (point, server_port, towards_server) in [
            (h_lo, entry.port(), Direction::In),
            (h_veth, vm_port, Direction::Out),
            (v_veth, vm_port, Direction::In),
            (v_br, node.port(), Direction::Out),
            (v_port, node.port(), Direction::Out),
            (n_eth, node.port(), Direction::In),
        ] {
            let all = of(point);
            let up: Vec<&Seg> = all.iter().copied().filter(|s| s.dst.port() == server_port).collect();
            let down: Vec<&Seg> = all.iter().copied().filter(|s| s.src.port() == server_port).collect();
            let label = &points[point];
            assert_eq!(bytes(&up), c.sent, "connection {} at {label}: bytes to the server", c.i);
            assert_eq!(bytes(&down), c.received, "connection {} at {label}: echo bytes", c.i);
            let back = if point == h_lo { Direction::In } else if towards_server == Direction::In { Direction::Out } else { Direction::In };
            assert!(up.iter().all(|s| s.direction == towards_server), "connection {} at {label}: direction", c.i);
            assert!(down.iter().all(|s| s.direction == back), "connection {} at {label}: echo direction", c.i);
        }
        // VM lo: none of it (the DNAT happens before lo).
        assert!(of(v_lo).is_empty(), "connection {} seen on VM lo", c.i);
    }
    let vm_lo_ports: BTreeSet<u16> = cap.segs.iter().filter(|s| s.point == v_lo).flat_map(|s| [s.src.port(), s.dst.port()]).collect();
    let svc_port: u16 = service.rsplit(':').next().unwrap().parse().unwrap();
    assert!(vm_lo_ports.contains(&svc_port), "the control connection shows on VM lo: {vm_lo_ports:?}");
    for p in [vm_local_port, node.port(), vm_port, entry.port()] {
        assert!(!vm_lo_ports.contains(&p), "VM lo carries port {p}: {vm_lo_ports:?}");
    }

    // 6. Round trips: flowtrail -r prints every frame with its label and direction, in the
    // file's order; tshark sees the same frames per interface name.
    let text = common::flowtrail().args(["-nn", "-r"]).arg(&out).env("TZ", "UTC").output().expect("flowtrail -r");
    assert!(text.status.success(), "{}", String::from_utf8_lossy(&text.stderr));
    let text = String::from_utf8_lossy(&text.stdout);
    let mut per_label: BTreeMap<String, usize> = BTreeMap::new();
    let mut lines = 0;
    for line in text.lines().filter(|l| !l.starts_with('\t') && !l.starts_with(' ')) {
        lines += 1;
        let mut w = line.split(' ');
        let (_ts, label, dir) = (w.next(), w.next().unwrap_or(""), w.next().unwrap_or(""));
        assert!(dir == "In" || dir == "Out", "line without direction: {line}");
        *per_label.entry(label.to_string()).or_default() += 1;
    }
    if lines > 0 {
        // (Empty while the printers are stubs; then only the frame counts above are checked.)
        assert_eq!(lines, cap.frames.iter().sum::<usize>(), "one line per frame");
        for (i, p) in points.iter().enumerate() {
            assert_eq!(per_label.get(p).copied().unwrap_or(0), cap.frames[i], "{p}: lines in flowtrail -r");
        }
    }
    if let Some(tshark) = tshark {
        let t = Command::new(tshark)
            .args(["-r"])
            .arg(&out)
            .args(["-T", "fields", "-e", "frame.interface_name"])
            .output()
            .expect("tshark");
        assert!(t.status.success(), "tshark: {}", String::from_utf8_lossy(&t.stderr));
        let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
        for l in String::from_utf8_lossy(&t.stdout).lines() {
            *by_name.entry(l.to_string()).or_default() += 1;
        }
        for (i, p) in points.iter().enumerate() {
            if cap.frames[i] > 0 {
                assert_eq!(by_name.get(p).copied().unwrap_or(0), cap.frames[i], "{p}: tshark frames");
            }
        }
    }
}

/// A missing namespace or interface fails before anything is captured: one clear message,
/// exit 1, no output file.
#[test]
fn missing_point_fails_before_capture() {
    let Some(lab) = Lab::up("miss") else { return };
    let out = lab.dir.join("never.pcapng");
    let host = lab.ns("host").to_string();
    for (bad, needle) in [
        (format!("{host}/nosuch0"), format!("{host}/nosuch0: No such device exists")),
        ("ftnosuchns/lo".to_string(), "ftnosuchns/lo: no such network namespace ftnosuchns".to_string()),
    ] {
        let t0 = std::time::Instant::now();
        let r = common::flowtrail()
            .args(["-i", &format!("{host}/lo"), "-i", &bad, "-w"])
            .arg(&out)
            .output()
            .expect("flowtrail");
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{err}");
        assert!(err.contains(&needle), "{err}");
        assert!(!err.contains("listening on"), "nothing starts: {err}");
        assert!(!out.exists(), "no output file");
        assert!(t0.elapsed() < Duration::from_secs(5));
    }
}
