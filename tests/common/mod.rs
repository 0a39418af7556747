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

/// tcpdump writing every packet of `iface` in namespace `ns` to `file`, for a test's oracle or
/// offline input: `ip netns exec NS timeout -s INT 300 tcpdump ...`, so a SIGINT to the
/// child's pid reaches tcpdump and a forgotten one ends after 300 s. Stop it with SIGINT no
/// sooner than [`TCPDUMP_SETTLE`] after the last packet, then check its statistics with
/// [`tcpdump_wrote_all`].
///
/// No `--immediate-mode`: that makes libpcap use TPACKET_V2, whose frames are 64 KiB each on
/// interfaces that do segmentation offload (veth, lo), so a 32 MiB ring holds only 512
/// packets, and a tcpdump starved of CPU on a loaded machine dropped packets (CI, ipv6_dnat:
/// 63 of 578). TPACKET_V3 packs packets into its blocks, so the 64 MiB ring holds the whole
/// traffic of any lab test even if tcpdump reads nothing until the end.
pub fn tcpdump_writer(ns: &str, iface: &str, file: &Path) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, "timeout", "-s", "INT", "300", "tcpdump", "-n", "-Z", "root", "-U"])
        .args(["-B", "65536", "-s", "262144", "-i", iface, "-w"])
        .arg(file);
    c
}

/// How long a [`tcpdump_writer`] must be left running after the last packet. Without
/// immediate mode the kernel hands a partly filled TPACKET_V3 block to tcpdump only when the
/// block timeout (tcpdump's 1 s) retires it, up to two timeouts after the packet, and tcpdump
/// does not drain its ring on SIGINT ("0 packets captured, 10 received by filter").
pub const TCPDUMP_SETTLE: std::time::Duration = std::time::Duration::from_millis(2500);

/// Checks the closing statistics (its stderr) of a [`tcpdump_writer`] on `iface`: nothing
/// dropped by the kernel and every packet the filter received written. On `lo` the socket
/// receives each packet twice (the outgoing and the incoming copy) and libpcap keeps only
/// the incoming one, so there the kernel's count is twice the written one. Returns the
/// packet count, or what went wrong.
pub fn tcpdump_wrote_all(iface: &str, stderr: &str) -> Result<u64, String> {
    let copies = if iface == "lo" { 2 } else { 1 };
    let count = |what: &str| {
        stderr.lines().find_map(|l| {
            let (n, rest) = l.trim().split_once(' ')?;
            (rest == format!("packets {what}") || rest == format!("packet {what}")).then(|| n.parse::<u64>().ok())?
        })
    };
    match (count("captured"), count("received by filter"), count("dropped by kernel")) {
        (Some(c), Some(r), Some(0)) if c * copies == r => Ok(c),
        _ => Err(format!("tcpdump did not write every packet (a capture with gaps is no oracle):\n{stderr}")),
    }
}
