//! End to end: the real binary in a real terminal (tmux, 160x48) on the samples. Checks the
//! paths table shows the flows, Enter opens the path view, `q` quits, SIGTERM quits, and the
//! terminal is restored afterwards (the shell's `stty -a` shows canonical mode and echo
//! again, and the main screen is back). Without a terminal `--tui` fails with a message.
//!
//! Needs tmux: skipped with a message when it is missing, a failure in CI (`CI=true`).

mod common;
mod tmux_support;

use std::time::{Duration, Instant};
use tmux_support::Tmux;

/// The shell script: run flowtrail, then show its status and the terminal modes.
fn script(args: &str) -> String {
    let bin = env!("CARGO_BIN_EXE_flowtrail");
    format!("cd '{}' && TZ=UTC '{bin}' {args}; echo \"flowtrail-exit=$?\"; stty -a | tr ' ' '\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '; echo stty-done; sleep 60", common::root().display())
}

fn assert_restored(s: &str) {
    assert!(s.contains("icanon echo"), "canonical mode and echo are back:\n{s}");
    assert!(!s.contains("-icanon") && !s.contains("-echo"), "raw mode left on:\n{s}");
    assert!(!s.contains("PROTO") && !s.contains("DONE"), "the alternate screen was left:\n{s}");
}

#[test]
fn paths_table_enter_detail_q_quits_and_terminal_restored() {
    let Some(tmux) = common::require_tool("tmux") else { return };
    let t = Tmux::new(&tmux, "q");
    t.start(&script("--tui -r samples/vm-all.pcapng -r host=samples/host-lo.pcap"));
    let s = t.wait_for("the paths table, fully loaded", |s| s.contains("DONE") && s.contains("PROTO"));
    for flow in ["127.0.0.1:40001", "192.168.49.2:8443", "RSTO"] {
        assert!(s.contains(flow), "{flow} in the table:\n{s}");
    }
    assert!(s.contains("paths 6 "), "6 joined paths:\n{s}");
    assert!(s.contains("veth-host 60") && s.contains("host 50"), "per point counters:\n{s}");
    eprintln!("--- paths view ---\n{s}");
    t.keys(&["j", "Enter"]);
    let s = t.wait_for("the path view", |s| s.contains("detail") && s.contains("stream") && s.contains("packets"));
    assert!(s.contains("path 2 tcp"), "{s}");
    assert!(s.contains("ft s1 c0000 o0000000000"), "the conversation:\n{s}");
    assert!(s.contains("Flags [S]"), "tcpdump lines:\n{s}");
    assert!(s.contains("0x0000:  4500"), "-X dump:\n{s}");
    eprintln!("--- path view ---\n{s}");
    t.keys(&["Escape"]);
    t.wait_for("the table again", |s| s.contains("PROTO"));
    t.keys(&["q"]);
    let s = t.wait_for("flowtrail to exit", |s| s.contains("stty-done"));
    assert!(s.contains("flowtrail-exit=0"), "{s}");
    assert_restored(&s);
}

/// What scripts/demo.sh reads, with the VM's conntrack table.
const SEED: &str = "-r samples/host-lo.pcap -r samples/host-veth.pcap -r samples/vm-veth.pcap -r samples/vm-lo.pcap \
     -r samples/vm-br0.pcap -r samples/vm-brport.pcap -r samples/node-eth0.pcap --conntrack vm=samples/vm-conntrack.txt";

#[test]
fn the_seed_path_is_one_path_with_its_legs_from_host_lo_to_node() {
    let Some(tmux) = common::require_tool("tmux") else { return };
    let t = Tmux::new(&tmux, "seed");
    // Tall enough for the whole hop diagram in the detail pane.
    t.start_sized(&script(&format!("--tui {SEED}")), 160, 100);
    // Waits for the whole table (a capture can catch a frame half drawn).
    let s = t.wait_for("the joined paths, fully loaded", |s| {
        s.contains("DONE") && s.contains("PROTO") && s.contains("paths 6 ") && s.contains("127.0.0.1:40005")
    });
    // One row per seed connection: client on host lo -> final server behind the VM's DNAT.
    let rows: Vec<&str> = s.lines().filter(|l| l.contains("127.0.0.1:40001")).collect();
    assert_eq!(rows.len(), 1, "the first seed connection is one path:\n{s}");
    assert!(rows[0].contains("192.168.49.2:8443") && rows[0].contains(" 3 "), "client -> final server, 3 legs:\n{s}");
    assert!(!s.contains("192.168.65.1:38892"), "the middle leg is not a path of its own:\n{s}");
    assert!(s.contains("paths 6 "), "6 paths:\n{s}");
    eprintln!("--- seed paths ---\n{s}");
    t.keys(&["j", "Enter"]);
    let order = ["> host-lo", "o host-veth", "o vm-veth", "o vm/conntrack", "o vm-br0", "o vm-brport", "o node-eth0"];
    // Waits for the whole diagram (not a frame half drawn); the order is checked below.
    let s = t.wait_for("the seed path's hop diagram", |s| {
        s.contains("detail") && s.contains("path 2 tcp  3 legs, 7 observations") && order.iter().all(|n| s.contains(n))
    });
    let at = |needle: &str| s.find(needle).unwrap_or_else(|| panic!("{needle} in the detail pane:\n{s}"));
    let pos: Vec<usize> = order.iter().map(|n| at(n)).collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "legs in path order host lo -> node:\n{s}");
    for why in ["next leg: forwarder", "joined: same-tuple score", "joined: nat score", "conntrack id=2727558185", "changed: src 127.0.0.1:39658 -> 192.168.49.1:39658"] {
        assert!(s.contains(why), "{why}:\n{s}");
    }
    eprintln!("--- seed path ---\n{s}");
    t.keys(&["q"]);
    let s = t.wait_for("flowtrail to exit", |s| s.contains("stty-done"));
    assert!(s.contains("flowtrail-exit=0"), "{s}");
    assert_restored(&s);
}

#[test]
fn sigterm_quits_cleanly_and_restores_the_terminal() {
    let Some(tmux) = common::require_tool("tmux") else { return };
    let t = Tmux::new(&tmux, "term");
    t.start(&script("--tui -r samples/host-lo.pcap"));
    t.wait_for("the paths table", |s| s.contains("DONE") && s.contains("PROTO"));
    let sh = t.pane_pid();
    let children = std::fs::read_to_string(format!("/proc/{sh}/task/{sh}/children")).unwrap_or_default();
    let pid: i32 = children.split_whitespace().next().and_then(|p| p.parse().ok()).expect("flowtrail's pid");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM).unwrap();
    let s = t.wait_for("flowtrail to exit", |s| s.contains("stty-done"));
    assert!(s.contains("flowtrail-exit=0"), "{s}");
    assert_restored(&s);
}

#[test]
fn a_terminal_that_goes_away_ends_the_ui() {
    // Regression: after tmux died, crossterm retried end-of-file reads forever at full CPU.
    let Some(tmux) = common::require_tool("tmux") else { return };
    let t = Tmux::new(&tmux, "hup");
    t.start(&script("--tui -r samples/host-lo.pcap"));
    t.wait_for("the paths table", |s| s.contains("DONE") && s.contains("PROTO"));
    let sh = t.pane_pid();
    let children = std::fs::read_to_string(format!("/proc/{sh}/task/{sh}/children")).unwrap_or_default();
    let pid: u32 = children.split_whitespace().next().and_then(|p| p.parse().ok()).expect("flowtrail's pid");
    t.run(&["kill-server"]);
    let start = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        // A zombie (reaped by init later) no longer runs: accept state Z.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.split_whitespace().nth(2) == Some("Z") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "flowtrail still runs after its terminal went away");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn without_a_terminal_it_fails_with_a_message() {
    let out = common::flowtrail()
        .args(["--tui", "-r", "samples/host-lo.pcap"])
        .current_dir(common::root())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "flowtrail: --tui needs a terminal: standard input and output must be a tty\n"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_missing_file_fails_before_the_terminal_is_touched() {
    let Some(tmux) = common::require_tool("tmux") else { return };
    let t = Tmux::new(&tmux, "missing");
    t.start(&script("--tui -r samples/no-such-file.pcap"));
    let s = t.wait_for("flowtrail to exit", |s| s.contains("stty-done"));
    assert!(s.contains("flowtrail: samples/no-such-file.pcap: No such file or directory"), "{s}");
    assert!(s.contains("flowtrail-exit=1"), "{s}");
    assert_restored(&s);
}
