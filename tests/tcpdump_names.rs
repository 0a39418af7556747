//! Names without `-n`: flowtrail and Debian's tcpdump 4.99.3 agree byte for byte when both
//! ask this host's name service (host names by reverse lookup, `/etc/services` ports, IP
//! protocol names, OUI vendors and `Broadcast`, LINUX_SLL2 interface names).
//!
//! * `loopback_capture_*`: a capture crafted here with 127.0.0.1 and ::1 in every place the
//!   printers put an address or port (TCP/UDP endpoints on 22, 53, 80, 443, DNS answers,
//!   ICMP/ICMPv6 port unreachables, ARP, IP fragments), compared under the flag sets below,
//!   `-n`/`-nn` included. Whatever this host's `/etc/hosts` says, both tools read the same.
//! * `samples_without_n_*`: every single-point capture in `samples/` (private addresses
//!   without names: each lookup fails, through DNS, for both tools alike; a query the
//!   resolver never answers blocks both for glibc's 5 s timeout and still fails alike).
//! * `hosts_file_*` (root): in a private mount namespace `/etc/hosts` is replaced by a file
//!   that names every address the tcpdump corpus and `samples/` print, so each place an
//!   address is printed shows whether tcpdump resolves it there or prints it numerically;
//!   every core corpus case and sample is compared, also with `-N`.

mod common;
mod offline_support;

use offline_support::{Pcap, tempdir, write};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Output};

const FLAG_SETS: &[&[&str]] = &[
    &[],
    &["-e"],
    &["-v"],
    &["-vv"],
    &["-q"],
    &["-N"],
    &["-x"],
    &["-n"],
    &["-nn"],
    &["-n", "-e"],
    &["-nn", "-v"],
];

fn run_tool(mut cmd: Command, args: &[&str], dir: Option<&Path>) -> Output {
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    cmd.args(args).env("TZ", "GMT0").output().expect("run")
}

/// Compares one run; returns a description of the first difference.
fn differ(label: &str, args: &[&str], want: &Output, got: &Output) -> Option<String> {
    if want.stdout == got.stdout && want.status.code() == got.status.code() {
        return None;
    }
    let (w, g) = (String::from_utf8_lossy(&want.stdout), String::from_utf8_lossy(&got.stdout));
    let (wl, gl): (Vec<&str>, Vec<&str>) = (w.lines().collect(), g.lines().collect());
    let i = (0..wl.len().max(gl.len())).find(|&i| wl.get(i) != gl.get(i)).unwrap_or(0);
    Some(format!(
        "{label} [{}] exit {:?}/{:?} line {}\n    tcpdump:   {}\n    flowtrail: {}",
        args.join(" "),
        want.status.code(),
        got.status.code(),
        i + 1,
        wl.get(i).unwrap_or(&"<end>"),
        gl.get(i).unwrap_or(&"<end>")
    ))
}

fn report(what: &str, runs: usize, failures: &[String]) {
    for f in failures {
        println!("DIFF {f}");
    }
    println!("{what}: {}/{runs} runs identical to tcpdump", runs - failures.len());
    assert!(failures.is_empty(), "{} of {runs} runs differ from tcpdump", failures.len());
}

// ---- packet builders ----

fn csum(data: &[u8]) -> u16 {
    let mut s: u32 = data.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))).sum();
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

const LO4: [u8; 4] = [127, 0, 0, 1];
const LO6: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

fn ipv4(proto: u8, frag: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend(((20 + payload.len()) as u16).to_be_bytes());
    h.extend([0, 1]);
    h.extend(frag.to_be_bytes());
    h.extend([64, proto, 0, 0]);
    h.extend(LO4);
    h.extend(LO4);
    let c = csum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn ipv6(nh: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend((payload.len() as u16).to_be_bytes());
    h.extend([nh, 64]);
    h.extend(LO6);
    h.extend(LO6);
    h.extend_from_slice(payload);
    h
}

/// A TCP segment without payload (SYN, SYN-ACK, ...): no application printer runs.
fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(sport.to_be_bytes());
    t.extend(dport.to_be_bytes());
    t.extend(1000u32.to_be_bytes());
    t.extend((if flags & 0x10 != 0 { 2000u32 } else { 0 }).to_be_bytes());
    t.extend([0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend(sport.to_be_bytes());
    u.extend(dport.to_be_bytes());
    u.extend(((8 + payload.len()) as u16).to_be_bytes());
    u.extend([0, 0]);
    u.extend_from_slice(payload);
    u
}

fn ether(dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut e = dst.to_vec();
    e.extend([0x00, 0x00, 0x0c, 0x12, 0x34, 0x56]); // a Cisco OUI
    e.extend(ethertype.to_be_bytes());
    e.extend_from_slice(payload);
    e
}

const BCAST: [u8; 6] = [0xff; 6];
const HOST: [u8; 6] = [0x02, 0x42, 0xac, 0x11, 0x00, 0x02];

/// Loopback packets that put addresses, ports and protocol numbers everywhere the printers
/// print them.
fn loopback_frames() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for port in [22u16, 53, 80, 443, 8443, 6000] {
        v.push(ether(HOST, 0x0800, &ipv4(6, 0x4000, &tcp(40000, port, 0x02))));
        v.push(ether(HOST, 0x0800, &ipv4(6, 0x4000, &tcp(port, 40000, 0x12))));
        v.push(ether(HOST, 0x86dd, &ipv6(6, &tcp(40001, port, 0x02))));
    }
    // A DNS response from port 53 with A and AAAA answers (tcpdump prints those numerically).
    let mut dns = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
    dns.extend(b"\x09localhost\x00\x00\x01\x00\x01");
    dns.extend([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
    dns.extend(LO4);
    dns.extend([0xc0, 0x0c, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16]);
    dns.extend(LO6);
    v.push(ether(HOST, 0x0800, &ipv4(17, 0x4000, &udp(53, 40000, &dns))));
    v.push(ether(HOST, 0x86dd, &ipv6(17, &udp(53, 40000, &dns))));
    // ICMP port unreachable quoting UDP to 53 and TCP to 22; ICMPv6 the same.
    for (proto, inner) in [(17u8, udp(40000, 53, &[])), (6, tcp(40000, 22, 0x02))] {
        let quoted = ipv4(proto, 0x4000, &inner);
        let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&quoted[..28]);
        v.push(ether(HOST, 0x0800, &ipv4(1, 0x4000, &icmp)));
        let mut icmp6 = vec![1, 4, 0, 0, 0, 0, 0, 0];
        icmp6.extend(ipv6(proto, &inner));
        v.push(ether(HOST, 0x86dd, &ipv6(58, &icmp6)));
    }
    // Fragments past the first: tcpdump names the protocol (tcp, udp, gre, sctp).
    for proto in [6u8, 17, 47, 132, 253] {
        v.push(ether(HOST, 0x0800, &ipv4(proto, 0x0010, &[0x55; 16])));
    }
    // ARP who-has 127.0.0.1, broadcast.
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1, 0x00, 0x00, 0x0c, 0x12, 0x34, 0x56];
    arp.extend(LO4);
    arp.extend([0; 6]);
    arp.extend(LO4);
    v.push(ether(BCAST, 0x0806, &arp));
    v
}

/// LINUX_SLL2 frames on interface indexes 1 (lo on every Linux host) and one that no host
/// has (tcpdump prints `?`).
fn sll2_frames() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for (ifindex, pkttype) in [(1u32, 0u8), (1, 4), (4_000_000, 0)] {
        let ip = ipv4(6, 0x4000, &tcp(40000, 80, 0x02));
        let mut f = vec![0x08, 0x00, 0, 0];
        f.extend(ifindex.to_be_bytes());
        f.extend([0, 1, pkttype, 6]); // ARPHRD_ETHER, packet type, address length
        f.extend([0x00, 0x00, 0x0c, 0x12, 0x34, 0x56, 0, 0]);
        f.extend(ip);
        v.push(f);
    }
    v
}

fn pcap_of(linktype: u32, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut p = Pcap::new(false, false, 65535, linktype);
    for (i, f) in frames.iter().enumerate() {
        p = p.record(1_700_000_000 + i as u32, 250_000, f, f.len() as u32);
    }
    p.bytes
}

fn compare_on(file: &str, flag_sets: &[&[&str]], tcpdump: &Path, failures: &mut Vec<String>) -> usize {
    for flags in flag_sets {
        let mut args: Vec<&str> = flags.to_vec();
        args.extend(["-r", file]);
        let want = run_tool(Command::new(tcpdump), &args, None);
        let got = run_tool(common::flowtrail(), &args, None);
        let name = Path::new(file).file_name().unwrap().to_string_lossy().into_owned();
        failures.extend(differ(&name, &args, &want, &got));
    }
    flag_sets.len()
}

#[test]
fn loopback_capture_matches_tcpdump_without_n() {
    let Some(tcpdump) = common::require_tool("tcpdump") else { return };
    let d = tempdir("names-lo");
    let eth = write(&d, "lo-names.pcap", &pcap_of(1, &loopback_frames()));
    let sll2 = write(&d, "sll2-names.pcap", &pcap_of(276, &sll2_frames()));
    let mut failures = Vec::new();
    let mut runs = compare_on(&eth, FLAG_SETS, &tcpdump, &mut failures);
    runs += compare_on(&sll2, &[&[], &["-e"], &["-n"], &["-nn", "-e"]], &tcpdump, &mut failures);
    report("loopback names", runs, &failures);
    // The capture does exercise names: ports by name at least (from /etc/services).
    let out = run_tool(common::flowtrail(), &["-r", &eth], None);
    let text = String::from_utf8_lossy(&out.stdout);
    if Path::new("/etc/services").exists() {
        assert!(text.contains(".ssh:") || text.contains(".ssh "), "{text}");
    }
}

/// Single-point captures in samples/ (several points add labels; the differential test
/// covers those).
fn single_point_samples() -> Vec<String> {
    use flowtrail::capture::{FrameSource, OfflineReader, Points};
    let mut v = Vec::new();
    for f in common::sample_files() {
        let path = f.to_string_lossy().into_owned();
        let mut points = Points::default();
        let Ok(mut r) = OfflineReader::open(&path, &mut points) else { continue };
        let mut seen = BTreeSet::new();
        while let Ok(Some(fr)) = r.next_frame(&mut points, Vec::new()) {
            seen.insert(fr.point);
        }
        if seen.len() <= 1 {
            v.push(path);
        }
    }
    v
}

#[test]
fn samples_without_n_match_tcpdump() {
    let Some(tcpdump) = common::require_tool("tcpdump") else { return };
    let files = single_point_samples();
    assert!(!files.is_empty(), "samples/ holds no single-point captures");
    let mut failures = Vec::new();
    let mut runs = 0;
    for f in &files {
        // Few flag sets: every run asks the resolver about each address again (a new
        // process), and a query the resolver drops costs glibc's 5 s timeout.
        runs += compare_on(f, &[&[], &["-e", "-v"]], &tcpdump, &mut failures);
    }
    report("samples without -n", runs, &failures);
}

// ---- a private /etc/hosts (root) ----

/// Every IPv4/IPv6 address written in `text` (ports glued on with a dot are cut off).
fn addresses_in(text: &str, out: &mut BTreeSet<IpAddr>) {
    let seps = |c: char| c.is_whitespace() || ",()[]{}=\"'<>/|;@".contains(c);
    for tok in text.split(seps) {
        // "10.0.0.1.80:", "fe80::1.546", "::1:", "fec0::" -- as is, without one trailing
        // colon, then without a ".port".
        let tok = tok.trim_end_matches('.');
        let bare = tok.strip_suffix(':').unwrap_or(tok);
        let found = [tok, bare]
            .into_iter()
            .chain(bare.rsplit_once('.').map(|(head, _)| head))
            .find_map(|t| t.parse::<IpAddr>().ok());
        out.extend(found);
    }
}

/// A hosts file naming each address `h4-...`/`h6-...` under example.net (so `-N` has a
/// domain to cut).
fn hosts_file(addrs: &BTreeSet<IpAddr>) -> String {
    let mut s = String::from("127.0.0.1 localhost\n");
    for (i, a) in addrs.iter().enumerate() {
        if a.to_string() == "127.0.0.1" {
            continue;
        }
        let tag = a.to_string().replace([':', '.'], "-");
        let fam = if a.is_ipv4() { 4 } else { 6 };
        s.push_str(&format!("{a} h{fam}-{tag}-{i}.example.net h{i}\n"));
    }
    s
}

/// Runs `tool args` with `hosts` mounted over /etc/hosts in a private mount namespace.
fn with_hosts(hosts: &str, tool: &Path, args: &[String], dir: &Path) -> Output {
    Command::new("unshare")
        .args(["-m", "sh", "-c", "mount --bind \"$0\" /etc/hosts && exec \"$@\"", hosts])
        .arg(tool)
        .args(args)
        .current_dir(dir)
        .env("TZ", "GMT0")
        .output()
        .expect("unshare")
}

struct Case {
    label: String,
    args: Vec<String>,
}

/// Core cases of the tcpdump corpus, as its harness runs them but without `-n`.
fn corpus_cases(dir: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(dir.join("cases.tsv")).expect("cases.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let (n, p, f, c) = (col("name"), col("pcap"), col("flags"), col("category"));
    let mut v = Vec::new();
    for l in lines.filter(|l| !l.is_empty()) {
        let f_: Vec<&str> = l.split('\t').collect();
        if f_[c] != "core" {
            continue;
        }
        let flags: Vec<String> = f_[f].split_whitespace().map(String::from).collect();
        let mut args = vec!["-#".to_string(), "-r".into(), f_[p].to_string()];
        if flags.iter().any(|x| x == "SPECIAL_t") {
            args.extend(flags.into_iter().filter(|x| x != "SPECIAL_t"));
        } else {
            args.push("-tttt".into());
            args.extend(flags);
        }
        v.push(Case { label: f_[n].to_string(), args });
    }
    v
}

#[test]
fn hosts_file_names_match_tcpdump_everywhere() {
    let Some(tcpdump) = common::require_tool("tcpdump") else { return };
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIP: needs root (a private mount namespace to replace /etc/hosts)");
        return;
    }
    let corpus = common::root().join("tests/corpus/tcpdump");
    let d = tempdir("names-hosts");
    let lo = write(&d, "lo-names.pcap", &pcap_of(1, &loopback_frames()));
    let mut cases = corpus_cases(&corpus);
    for f in single_point_samples().into_iter().chain([lo]) {
        for flags in [&[][..], &["-e"], &["-v"]] {
            let mut args: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
            args.extend(["-r".to_string(), f.clone()]);
            cases.push(Case { label: Path::new(&f).file_name().unwrap().to_string_lossy().into(), args });
        }
    }
    // Name every address the numeric outputs show.
    let mut addrs = BTreeSet::new();
    for c in &cases {
        let mut args = vec!["-n".to_string()];
        args.extend(c.args.iter().cloned());
        let out = run_tool(common::flowtrail(), &args.iter().map(String::as_str).collect::<Vec<_>>(), Some(&corpus));
        addresses_in(&String::from_utf8_lossy(&out.stdout), &mut addrs);
    }
    assert!(addrs.len() > 50, "only {} addresses found", addrs.len());
    let hosts = write(&d, "hosts", hosts_file(&addrs).as_bytes());
    // Is a private mount namespace to be had here?
    let probe = with_hosts(&hosts, Path::new("getent"), &["hosts".into(), "127.0.0.1".into()], &corpus);
    if !probe.status.success() {
        let msg = format!("cannot mount a private /etc/hosts: {}", String::from_utf8_lossy(&probe.stderr));
        if common::in_ci() {
            panic!("{msg}");
        }
        eprintln!("SKIP: {msg}");
        return;
    }
    let ft = Path::new(env!("CARGO_BIN_EXE_flowtrail"));
    let mut failures = Vec::new();
    let mut runs = 0;
    let mut named = 0;
    for c in &cases {
        for strip in [false, true] {
            let mut args = c.args.clone();
            if strip {
                args.insert(0, "-N".into());
            }
            let want = with_hosts(&hosts, &tcpdump, &args, &corpus);
            let got = with_hosts(&hosts, ft, &args, &corpus);
            runs += 1;
            named += usize::from(String::from_utf8_lossy(&want.stdout).contains(".example.net"));
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            failures.extend(differ(&c.label, &a, &want, &got));
        }
    }
    println!("{named} runs print names from the private hosts file ({} addresses)", addrs.len());
    assert!(named > 50, "the private hosts file was not used ({named} runs with names)");
    report("private /etc/hosts", runs, &failures);
}

#[test]
fn address_scan_finds_ports_glued_on() {
    let mut s = BTreeSet::new();
    addresses_in(
        "IP 10.0.0.1.80 > 10.0.0.2.domain: x, IP6 fe80::1.546 > ff02::1:2.547: [gaddr 2001:db8::1/64] 12:00:01.5 \
         match(add,fec0::/48) ::1 > ::2: ::ffff:1.2.3.4.80 > 2.3.4.5:",
        &mut s,
    );
    let want: BTreeSet<IpAddr> = [
        "10.0.0.1", "10.0.0.2", "fe80::1", "ff02::1:2", "2001:db8::1", "fec0::", "::1", "::2", "::ffff:1.2.3.4", "2.3.4.5",
    ]
    .iter()
    .map(|a| a.parse().unwrap())
    .collect();
    assert_eq!(s, want);
}
