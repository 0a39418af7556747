//! A tmux server of the test's own for end-to-end TUI tests (tests/tui_tmux.rs on files,
//! tests/tui_live.rs on the netns lab): start a script in a sized session, send keys, read
//! the screen, wait for what it should show.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of our own (its own socket), killed when dropped.
pub struct Tmux {
    tmux: std::path::PathBuf,
    socket: String,
}

impl Tmux {
    pub fn new(tmux: &Path, tag: &str) -> Tmux {
        Tmux { tmux: tmux.to_path_buf(), socket: format!("flowtrail-tui-{tag}-{}", std::process::id()) }
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new(&self.tmux).arg("-L").arg(&self.socket).args(args).output().expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `script` (sh) in a detached 160x48 session.
    pub fn start(&self, script: &str) {
        self.start_sized(script, 160, 48);
    }

    /// Starts `script` (sh) in a detached session of `w`x`h`.
    pub fn start_sized(&self, script: &str, w: u16, h: u16) {
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

    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut a = vec!["send-keys", "-t", "t"];
        a.extend_from_slice(keys);
        self.run(&a);
    }

    /// Waits until the screen satisfies `pred`; panics with the screen after 30 s.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
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

    pub fn pane_pid(&self) -> u32 {
        self.run(&["display-message", "-p", "-t", "t", "#{pane_pid}"]).trim().parse().expect("pane pid")
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

