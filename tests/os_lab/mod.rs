//! The seed-path lab (`lab/seedpath.sh`) for the conntrack and process tests: root only;
//! in CI (`CI=true`) a missing prerequisite fails the test, elsewhere it skips with a message.
#![allow(dead_code)]

use flowtrail::netns::Netns;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub fn root_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Fails in CI, skips (returns false) elsewhere.
pub fn prerequisite(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    assert!(!in_ci(), "{what} (CI=true: the lab tests must run)");
    eprintln!("SKIP: {what}");
    false
}

pub fn have_tool(tool: &str) -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .map(PathBuf::from)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|d| d.join(tool).is_file())
}

/// A running lab, torn down on drop (also when the test panics).
pub struct Lab {
    pub id: String,
    pub env: HashMap<String, String>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Lab {
    /// Builds a lab, or `None` when the test must skip (not root, tools missing; outside CI).
    pub fn up(tag: &str) -> Option<Lab> {
        if !prerequisite(nix::unistd::geteuid().is_root(), "the lab needs root (network namespaces, iptables)") {
            return None;
        }
        for t in ["ip", "socat", "python3", "conntrack", "timeout"] {
            if !prerequisite(have_tool(t), &format!("{t} is not installed (scripts/install-deps.sh installs it)")) {
                return None;
            }
        }
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let id = format!("ftos{tag}{}x{n}", std::process::id());
        let out = Command::new(root_dir().join("lab/seedpath.sh"))
            .arg("up")
            .env("FT_LAB_ID", &id)
            .env("FT_LAB_TTL", "600")
            .stdin(Stdio::null())
            .output()
            .expect("run lab/seedpath.sh");
        // From here on the guard cleans up whatever `up` left.
        let mut lab = Lab { id, env: HashMap::new() };
        assert!(out.status.success(), "lab up failed: {}", String::from_utf8_lossy(&out.stderr));
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((k, v)) = l.split_once('=') {
                lab.env.insert(k.to_string(), v.to_string());
            }
        }
        Some(lab)
    }

    pub fn var(&self, k: &str) -> &str {
        self.env.get(k).map(String::as_str).unwrap_or_else(|| panic!("lab variable {k} missing"))
    }

    /// `host`, `vm` or `node`.
    pub fn ns(&self, role: &str) -> Netns {
        Netns::Named(format!("{}_{role}", self.id))
    }

    /// `ip netns exec` in a role's namespace.
    pub fn exec(&self, role: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &format!("{}_{role}", self.id)])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("ip netns exec")
    }

    /// Runs the bounded lab client in HOST; returns its JSON lines.
    pub fn traffic(&self, args: &[&str]) -> Vec<String> {
        let out = Command::new(root_dir().join("lab/seedpath.sh"))
            .args(["traffic", &self.id, "--"])
            .args(args)
            .env("FT_CLIENT_TIMEOUT", "60")
            .stdin(Stdio::null())
            .output()
            .expect("lab traffic");
        assert!(out.status.success(), "lab traffic failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(root_dir().join("lab/seedpath.sh"))
            .args(["down", &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
