//! Live parity with tcpdump: flowtrail and tcpdump capture the same interface at the same
//! time with the same flags while bounded traffic flows; stdout must be byte-identical and
//! stderr the same lines (modulo the program name and the namespace prefix of the label).
//!
//! Needs the printers (merged from the `print` branch): while `flowtrail -n -r
//! samples/host-lo.pcap` prints empty lines (stub printers) the test skips with a message.
//! Needs root and tcpdump (CI: both present, else it fails).
//!
//! Two captures of one interface get their own kernel timestamps (a packet socket stamps
//! each copy when the skb carries none, as on lo and veth), a few microseconds apart. So
//! flag sets with `-t` are compared byte for byte as they are, and the others after the
//! timestamp at the start of each packet line is replaced by a placeholder, once it was
//! checked to be within 10 ms of tcpdump's.
//!
//! Concurrent packets (sent on two CPUs, or on two interfaces under `any`) can reach the
//! two sockets' rings in different orders; when the outputs differ only by the order of
//! whole packets (each packet's lines as one block), that is reported as a note, not a
//! failure.
//!
//! Every flag set includes `-n`: without it tcpdump would send reverse DNS queries for the
//! lab's addresses to the machine's resolver. Every pair but the `-c` one runs with
//! `--immediate-mode`: without it tcpdump loses the packets of a ring block that is not yet
//! retired when SIGINT arrives (lab/README.md), while flowtrail drains them, so the outputs
//! would differ by tcpdump's loss.

mod common;
mod lab;

use lab::{Background, Lab};
use std::time::Duration;

/// True when the printers are real (not the stubs that print empty lines).
fn printers_ready() -> bool {
    let out = common::flowtrail()
        .args(["-n", "-r"])
        .arg(common::root().join("samples/host-lo.pcap"))
        .env("TZ", "UTC")
        .output()
        .expect("flowtrail -r");
    String::from_utf8_lossy(&out.stdout).lines().any(|l| !l.trim().is_empty())
}

struct Pair {
    what: String,
    ft: Background,
    td: Background,
    /// The label prefix flowtrail shows and tcpdump (run inside the namespace) does not.
    prefix: String,
    by_count: bool,
    /// Index in the test's flag sets.
    case: usize,
}

#[test]
fn one_point_output_is_tcpdumps() {
    let Some(tcpdump) = common::require_tool("tcpdump") else { return };
    if !printers_ready() {
        eprintln!("SKIP: printers are stubs on this branch (flowtrail -n -r samples/host-lo.pcap prints empty lines); this test runs once they merge");
        return;
    }
    let Some(lab) = Lab::up("parity") else { return };
    let tcpdump = tcpdump.to_str().unwrap().to_string();
    // (role, interface, flags)
    let im = "--immediate-mode";
    let cases: Vec<(&str, &str, Vec<&str>)> = vec![
        ("host", "lo", vec!["-n", im]),
        ("host", "lo", vec!["-t", "-n", im]),
        ("host", "lo", vec!["-t", "-nn", "-e", "-v", im]),
        ("host", "lo", vec!["-t", "-n", "-X", im]),
        ("host", "lo", vec!["-nn", "-vv", "-S", "-tttt", im]),
        ("host", "lo", vec!["-n", "-x", "-q", "-#", im]),
        ("host", "lo", vec!["-t", "-n", "-c", "25"]),
        ("vm", "br0", vec!["-n", "-t", im]),
        ("vm", "br0", vec!["-t", "-nn", "-e", "-v", "-XX", im]),
        // `any` in immediate mode uses TPACKET_V2 with one 64 KiB+ slot per packet: the
        // default 2 MiB ring overflows on 30 kB GSO bursts (both tools drop), hence -B.
        ("vm", "any", vec!["-n", "-B", "32768", im]),
        ("vm", "any", vec!["-t", "-nn", "-e", "-v", "-B", "32768", im]),
    ];
    // A pair where either tool's ring overflowed (a 30 kB GSO burst while its reader was not
    // scheduled: the machine is busy) compares different packets: those flag sets run again
    // with fresh traffic, at most twice, and with rings of 32 MiB (`-B 32768` for both: it
    // changes no output); kernel drops in every round are a failure.
    let mut todo: Vec<usize> = (0..cases.len()).collect();
    let mut failures = Vec::new();
    for round in 0..3 {
        let (f, dropped) = round_of(&lab, &tcpdump, &cases, &todo, round);
        failures.extend(f);
        todo = dropped;
        if todo.is_empty() {
            break;
        }
        eprintln!("NOTE round {round}: kernel drops with {:?}; running them again", todo.iter().map(|&k| cases[k].2.join(" ")).collect::<Vec<_>>());
    }
    for k in todo {
        failures.push(format!("{} {} {}: kernel drops in every round", cases[k].0, cases[k].1, cases[k].2.join(" ")));
    }
    assert!(failures.is_empty(), "{} differences:\n{}", failures.len(), failures.join("\n"));
}

type Case<'a> = (&'a str, &'a str, Vec<&'a str>);

/// Runs the flag sets `which` of `cases` side by side under one round of traffic: the
/// differences found, and the flag sets where a tool reported kernel drops (not compared).
fn round_of(lab: &Lab, tcpdump: &str, cases: &[Case<'_>], which: &[usize], round: usize) -> (Vec<String>, Vec<usize>) {
    let mut pairs = Vec::new();
    for &k in which {
        let (role, iface, flags) = &cases[k];
        let mut flags = flags.clone();
        if round > 0 && !flags.contains(&"-B") {
            flags.extend(["-B", "32768"]);
        }
        let flags = &flags;
        let ns = lab.ns(role).to_string();
        let mut ft = common::flowtrail();
        ft.arg("-i").arg(format!("{ns}/{iface}")).args(flags).env("TZ", "UTC");
        let mut td = lab.command_in(role, tcpdump);
        td.arg("-i").arg(iface).args(flags).env("TZ", "UTC");
        pairs.push(Pair {
            what: format!("{role} {iface} {}", flags.join(" ")),
            ft: Background::spawn(ft, &lab.dir, &format!("ft{round}_{k}")),
            td: Background::spawn(td, &lab.dir, &format!("td{round}_{k}")),
            prefix: format!("{ns}/"),
            by_count: flags.contains(&"-c"),
            case: k,
        });
    }
    for p in &mut pairs {
        p.ft.wait_for("listening on", 1, Duration::from_secs(20));
        p.td.wait_for("listening on", 1, Duration::from_secs(20));
    }
    let truth = lab.traffic(&["-n", "4", "--size", "2000,30000", "--mode", "halfclose,reset", "--timeout", "10", "--deadline", "60"]);
    assert!(truth.iter().all(|c| c.echo_ok), "{truth:?}");
    std::thread::sleep(Duration::from_millis(500));

    let mut failures = Vec::new();
    let mut dropped = Vec::new();
    // "N packets dropped by kernel", and "1 packet dropped by kernel" (tcpdump's singular).
    let drops = |stderr: &str| {
        stderr.lines().any(|l| {
            (l.ends_with(" packets dropped by kernel") || l.ends_with(" packet dropped by kernel"))
                && !l.trim_start().starts_with("0 ")
                && !l.contains(": 0 packets")
        })
    };
    for p in pairs {
        let (ft, td) = if p.by_count {
            // Both end by themselves after -c packets.
            (wait_exit(p.ft), wait_exit(p.td))
        } else {
            (p.ft.interrupt(), p.td.interrupt())
        };
        assert!(ft.status.success(), "{}: flowtrail {:?}\n{}", p.what, ft.status, ft.stderr);
        assert!(td.status.success(), "{}: tcpdump {:?}\n{}", p.what, td.status, td.stderr);
        let who: Vec<&str> = [("tcpdump", &td.stderr), ("flowtrail", &ft.stderr)]
            .into_iter()
            .filter(|(_, e)| drops(e))
            .map(|(w, _)| w)
            .collect();
        if !p.by_count && !who.is_empty() {
            eprintln!("NOTE {}: kernel drops for {}", p.what, who.join(" and "));
            dropped.push(p.case);
            continue;
        }
        let (out_ft, out_td) = if p.what.contains("-t ") {
            (String::from_utf8_lossy(&ft.stdout).into_owned(), String::from_utf8_lossy(&td.stdout).into_owned())
        } else {
            let (a, ta) = strip_times(&String::from_utf8_lossy(&ft.stdout));
            let (b, tb) = strip_times(&String::from_utf8_lossy(&td.stdout));
            if let Some(far) = ta.iter().zip(&tb).find(|(x, y)| (*x - *y).abs() > 0.010) {
                failures.push(format!("{}: timestamps {far:?} more than 10 ms apart", p.what));
            }
            (a, b)
        };
        assert!(out_td.lines().count() > 10, "{}: tcpdump saw too little:\n{out_td}", p.what);
        if out_ft != out_td && same_packets(&out_ft, &out_td) {
            // Concurrent packets (two CPUs, or two interfaces under `any`) reach each packet
            // socket's ring in an order of their own; same lines, different order.
            eprintln!("NOTE {}: same packets, kernel delivered them in another order", p.what);
        } else if out_ft != out_td {
            let (a, b): (Vec<&str>, Vec<&str>) = (out_td.lines().collect(), out_ft.lines().collect());
            let i = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)).unwrap_or(0);
            failures.push(format!(
                "{}: stdout line {}\n    tcpdump:   {:?}\n    flowtrail: {:?}",
                p.what,
                i + 1,
                a.get(i).unwrap_or(&"<end>"),
                b.get(i).unwrap_or(&"<end>")
            ));
        }
        // A `-c` run reads the kernel's counters when it reaches its count, which is not
        // the same instant for both while traffic goes on: those two numbers may differ.
        let counters = |l: String| -> String {
            if p.by_count && (l.ends_with(" received by filter") || l.ends_with(" dropped by kernel")) {
                l.split_once(' ').map_or(l.clone(), |(_, r)| format!("N {r}"))
            } else {
                l
            }
        };
        let norm_td: Vec<String> = td
            .stderr
            .lines()
            .filter(|l| !l.contains("Running as user"))
            .map(|l| counters(l.replacen("tcpdump: ", "flowtrail: ", 1)))
            .collect();
        let norm_ft: Vec<String> = ft.stderr.lines().map(|l| counters(l.replacen(&p.prefix, "", 1))).collect();
        if norm_td != norm_ft {
            failures.push(format!("{}: stderr\n    tcpdump:   {norm_td:?}\n    flowtrail: {norm_ft:?}", p.what));
        }
    }
    (failures, dropped)
}

fn wait_exit(mut b: Background) -> lab::Finished {
    let t0 = std::time::Instant::now();
    loop {
        // `-c` runs end by themselves; give them 10 s, then interrupt (and fail on status).
        if t0.elapsed() > Duration::from_secs(10) {
            return b.interrupt();
        }
        if !b.is_running() {
            return b.interrupt();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Replaces the timestamp that starts each packet line (after a `-#` number) with `TS`;
/// returns the text and the seconds-of-day of each timestamp.
fn strip_times(text: &str) -> (String, Vec<f64>) {
    let mut out = String::with_capacity(text.len());
    let mut times = Vec::new();
    for line in text.split_inclusive('\n') {
        let lead = line.len() - line.trim_start_matches(' ').len();
        let (num, rest) = match line[lead..].find("  ") {
            Some(i) if lead < line.len() && line[lead..lead + i].parse::<u64>().is_ok() => line.split_at(lead + i + 2),
            _ => ("", line),
        };
        // `HH:MM:SS.ffffff` or, with -tttt, `YYYY-MM-DD HH:MM:SS.ffffff`.
        let (date, rest2) = match rest.split_once(' ') {
            Some((d, r)) if d.len() == 10 && d.as_bytes()[4] == b'-' => (true, r),
            _ => (false, rest),
        };
        let tok = rest2.split(' ').next().unwrap_or("");
        let b = tok.as_bytes();
        if tok.len() == 15 && b[2] == b':' && b[5] == b':' && b[8] == b'.' {
            let f = |r: std::ops::Range<usize>| tok[r].parse::<f64>().unwrap_or(0.0);
            times.push(f(0..2) * 3600.0 + f(3..5) * 60.0 + f(6..15));
            out.push_str(num);
            out.push_str(if date { "DATE TS" } else { "TS" });
            out.push_str(&rest2[15..]);
        } else {
            out.push_str(line);
        }
    }
    (out, times)
}

/// True when both texts hold the same packets (a packet = its line and the continuation
/// and dump lines below it) in any order.
fn same_packets(a: &str, b: &str) -> bool {
    fn blocks(t: &str) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for line in t.lines() {
            let trimmed = line.trim_start_matches(' ');
            let numbered = line.starts_with(' ')
                && trimmed.split_once("  ").is_some_and(|(n, _)| n.parse::<u64>().is_ok());
            let starts = numbered || !(line.starts_with(' ') || line.starts_with('\t'));
            match v.last_mut() {
                Some(last) if !starts => {
                    last.push('\n');
                    last.push_str(line);
                }
                _ => v.push(line.to_string()),
            }
        }
        v.sort();
        v
    }
    blocks(a) == blocks(b)
}
