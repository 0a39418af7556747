//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn flowtrail() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flowtrail"))
}

/// True when running in CI (`CI=true`): missing prerequisites must fail the test there.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Returns the path of `tool` on PATH (also /usr/sbin, /sbin), or skips the test with a
/// message outside CI and panics in CI.
pub fn require_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path.split(':').map(PathBuf::from).chain(["/usr/sbin".into(), "/sbin".into()]);
    for d in dirs {
        let p = d.join(tool);
        if p.is_file() {
            return Some(p);
        }
    }
    let msg = format!("{tool} is not installed (the README's test command installs it)");
    if in_ci() {
        panic!("{msg}");
    }
    eprintln!("SKIP: {msg}");
    None
}

/// Every capture file under samples/, sorted.
pub fn sample_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("samples"))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("pcap" | "pcapng")));
    v.sort();
    v
}

/// Runs `cmd` under GNU time (`/usr/bin/time -f %M`, `wait4`'s `ru_maxrss`) and returns its
/// output and its peak resident set size in KiB, measured from outside the child. `None`
/// (with a `SKIP:` line) when GNU time is missing outside CI; in CI a missing tool fails.
pub fn peak_rss(cmd: &Command) -> Option<(std::process::Output, u64)> {
    let time = require_tool("time")?;
    let out = std::env::temp_dir().join(format!(
        "flowtrail-rss-{}-{}",
        std::process::id(),
        RSS_FILES.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    let mut c = Command::new(time);
    c.arg("-f").arg("%M").arg("-o").arg(&out).arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let o = c.stdin(std::process::Stdio::null()).output().expect("run GNU time");
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    // GNU time writes "Command exited with non-zero status N" before the figure.
    let kib = text.lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or_else(|| panic!("GNU time wrote {text:?}"));
    Some((o, kib))
}

static RSS_FILES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
