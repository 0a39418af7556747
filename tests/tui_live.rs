//! Live end to end: the real binary in tmux (`--tui -i` on all seven points of the netns
//! seed-path lab, lab/seedpath.sh), bounded client traffic, and the joined path shown live:
//! one row from the client's socket on HOST lo to the echo server behind the VM's DNAT, with
//! its observations from HOST lo to NODE eth0 in the detail pane, with the live evidence
//! the joiner got: the client's process (the lab's client is python3, the forwarders socat)
//! in the table and on leg 1, the forwarders on the legs after it, and the VM's conntrack
//! entry as the observation of the pre-DNAT leg no interface shows (`VMNS/conntrack`).
//!
//! Needs root, the lab's tools and tmux: skipped with a message outside CI, a failure in CI
//! (`CI=true`). The lab (its own namespaces, bounded traffic) is torn down on every exit.

mod common;
mod lab;
mod tmux_support;

use lab::Lab;
use tmux_support::Tmux;

#[test]
fn live_tui_on_the_lab_shows_the_joined_path() {
    let Some(tmux) = common::require_tool("tmux") else { return };
    let Some(lab) = Lab::up("tui") else { return };
    let points = lab.points();
    assert_eq!(points.len(), 7);
    let bin = env!("CARGO_BIN_EXE_flowtrail");
    let args: Vec<String> = points.iter().map(|p| format!("-i '{p}'")).collect();
    let script = format!(
        "cd '{}' && TZ=UTC timeout --foreground 120 '{bin}' --tui {}; echo \"flowtrail-exit=$?\"; sleep 60",
        lab.dir.display(),
        args.join(" ")
    );
    let t = Tmux::new(&tmux, "live");
    t.start_sized(&script, 180, 100);
    let s = t.wait_for("live capture", |s| s.contains(" LIVE ") && s.contains(&format!("{} 0", points[0])));
    eprintln!("--- before traffic ---\n{s}");
    let truth = lab.traffic(&["-n", "2", "--size", "3000", "--timeout", "10", "--deadline", "30"]);
    assert_eq!(truth.len(), 2);
    assert!(truth.iter().all(|c| c.echo_ok && c.error.is_none()), "client: {truth:?}");
    let first = &truth[0];
    // The joiner runs every second: the client's connection becomes one row with 3 legs.
    let s = t.wait_for("the joined path", |s| {
        s.lines().any(|l| l.contains(&first.local) && l.contains("192.168.49.2:8443") && l.contains(" 3 "))
    });
    eprintln!("--- joined live ---\n{s}");
    // The process column: the client's socket belongs to the lab's python3 client (live
    // attribution; the joiner may need one more round after the lookup, so wait for it).
    let s = t.wait_for("the client's process in the table", |s| {
        s.lines().any(|l| l.contains(&first.local) && l.contains("192.168.49.2:8443") && l.contains("python3["))
    });
    eprintln!("--- process column ---\n{s}");
    // Only that path, then open it.
    t.keys(&["/"]);
    t.keys(&["-l", &format!("port {}", first.local_port)]);
    t.keys(&["Enter"]);
    t.wait_for("the filtered table", |s| s.contains("paths 1 of "));
    t.keys(&["Enter"]);
    let vm_ct = format!("{}/conntrack", lab.ns("vm"));
    let s = t.wait_for("the hop diagram with live evidence", |s| {
        s.contains("3 legs") && s.contains("next leg: forwarder socat[") && s.contains(&vm_ct)
    });
    eprintln!("--- live path ---\n{s}");
    let pos = |p: &str| s.find(p).unwrap_or_else(|| panic!("{p} in the detail pane:\n{s}"));
    assert!(pos(&points[0]) < pos(&points[6]), "host lo first, node eth0 last:\n{s}");
    // Leg 1: the client (python3) connects to the host forwarder (socat); the VM's
    // conntrack observation (the forwarder's connect to 127.0.0.1:55001 before the DNAT)
    // comes before the bridge's, on the last leg.
    assert!(s.contains("leg 1  process python3["), "leg 1's process:\n{s}");
    assert!(pos(&points[1]) < pos(&vm_ct) && pos(&vm_ct) < pos(&points[6]), "conntrack leg in order:\n{s}");
    assert!(s.contains("127.0.0.1:55001"), "the pre-DNAT tuple:\n{s}");
    for p in &points[1..6] {
        if p.ends_with("/lo") {
            continue; // the VM's lo sees none of the path (the DNAT happens before it)
        }
        assert!(s.contains(p.as_str()), "{p} on the path:\n{s}");
    }
    t.keys(&["q"]);
    let s = t.wait_for("flowtrail to exit", |s| s.contains("flowtrail-exit="));
    assert!(s.contains("flowtrail-exit=0"), "{s}");
}
