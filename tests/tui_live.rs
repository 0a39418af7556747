//! Live end to end: the real binary in tmux (`--tui -i` on all seven points of the netns
//! seed-path lab, lab/seedpath.sh), bounded client traffic, and the joined path shown live:
//! one row from the client's socket on HOST lo to the echo server behind the VM's DNAT, with
//! its observations from HOST lo to NODE eth0 in the detail pane.
//!
//! Needs root, the lab's tools and tmux: skipped with a message outside CI, a failure in CI
//! (`CI=true`). The lab (its own namespaces, bounded traffic) is torn down on every exit.

mod common;
mod lab;

use lab::Lab;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[allow(dead_code)]
/// A tmux server of our own (its own socket), killed when dropped.
struct Tmux {
    tmux: std::path::PathBuf,
    socket: String,
}

impl Tmux {
    fn new(tmux: &Path, tag: &str) -> Tmux {
        Tmux { tmux: tmux.to_path_buf(), socket: format!("flowtrail-tui-{tag}-{}", std::process::id()) }
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new(&self.tmux).arg("-L").arg(&self.socket).args(args).output().expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `script` (sh) in a detached 160x48 session.
    fn start(&self, script: &str) {
        self.start_sized(script, 160, 48);
    }

    /// Starts `script` (sh) in a detached session of `w`x`h`.
    fn start_sized(&self, script: &str, w: u16, h: u16) {
        let (w, h) = (w.to_string(), h.to_string());
        let out = Command::new(&self.tmux)
            .arg("-L")
            .arg(&self.socket)
            .args(["-f", "/dev/null", "new-session", "-d", "-x", &w, "-y", &h, "-s", "t", "sh", "-c", script])
            .env("TERM", "xterm-256color")
            .output()
            .expect("tmux starts");
        assert!(out.status.success(), "tmux: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }

    fn keys(&self, keys: &[&str]) {
        let mut a = vec!["send-keys", "-t", "t"];
        a.extend_from_slice(keys);
        self.run(&a);
    }

    /// Waits until the screen satisfies `pred`; panics with the screen after 15 s.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if start.elapsed() > Duration::from_secs(30) {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pane_pid(&self) -> u32 {
        self.run(&["display-message", "-p", "-t", "t", "#{pane_pid}"]).trim().parse().expect("pane pid")
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

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
    // Only that path, then open it.
    t.keys(&["/"]);
    t.keys(&["-l", &format!("port {}", first.local_port)]);
    t.keys(&["Enter"]);
    t.wait_for("the filtered table", |s| s.contains("paths 1 of "));
    t.keys(&["Enter"]);
    let s = t.wait_for("the hop diagram", |s| s.contains("3 legs") && s.contains("next leg: forwarder"));
    eprintln!("--- live path ---\n{s}");
    let pos = |p: &str| s.find(p).unwrap_or_else(|| panic!("{p} in the detail pane:\n{s}"));
    assert!(pos(&points[0]) < pos(&points[6]), "host lo first, node eth0 last:\n{s}");
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
