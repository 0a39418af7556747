//! Capture without root (root needed to set the test up; CI runs it, elsewhere it skips): a
//! copy of the binary with file capabilities `cap_net_raw,cap_net_admin+eip`, run as user
//! `nobody` (`setpriv --reuid=65534 --regid=65534 --clear-groups`), captures bounded
//! loopback traffic on `lo`; without capabilities the error says how to fix it (the setcap
//! line); entering another network namespace needs CAP_SYS_ADMIN, and the error says that
//! too (then, with `cap_sys_admin` added as the message suggests, capture in that namespace
//! works as `nobody`). `-Z USER` is tested in `live_options.rs`.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn skip_or_fail(msg: &str) -> Option<()> {
    assert!(!common::in_ci(), "{msg}");
    eprintln!("SKIP: {msg}");
    None
}

fn prerequisites() -> Option<()> {
    if !nix::unistd::geteuid().is_root() {
        return skip_or_fail("needs root to set file capabilities and switch users; CI runs as root");
    }
    for t in ["setcap", "setpriv", "ip", "bash", "timeout"] {
        common::require_tool(t)?;
    }
    Some(())
}

/// A scratch directory `nobody` can enter, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("flowtrail-caps-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        set_mode(&d, 0o755);
        Scratch(d)
    }

    /// A copy of the flowtrail binary named `name`, with file capabilities `caps` if given.
    fn binary(&self, name: &str, caps: Option<&str>) -> PathBuf {
        let p = self.0.join(name);
        std::fs::copy(env!("CARGO_BIN_EXE_flowtrail"), &p).unwrap();
        set_mode(&p, 0o755);
        if let Some(caps) = caps {
            let o = Command::new("setcap").arg(format!("{caps}+eip")).arg(&p).output().unwrap();
            assert!(o.status.success(), "setcap {caps}+eip {}: {}", p.display(), String::from_utf8_lossy(&o.stderr));
        }
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `bin args...` as user nobody, without supplementary groups.
fn as_nobody(bin: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(bin).args(args);
    c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// A network namespace of this test, deleted on drop.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("ftcap{tag}{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let o = Command::new("ip").args(["netns", "add", &name]).output().unwrap();
        assert!(o.status.success(), "ip netns add {name}: {}", String::from_utf8_lossy(&o.stderr));
        let ns = Netns(name);
        let o = ns.exec(&["ip", "link", "set", "lo", "up"]);
        assert!(o.status.success());
        ns
    }

    fn exec(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip").args(["netns", "exec", &self.0]).args(args).stdin(Stdio::null()).output().unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// Waits until the child has printed `listening on` to stderr (it is then capturing),
/// returning what it printed so far; panics after 10 s or if it exits first.
fn wait_listening(child: &mut Child) -> String {
    let mut err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut all = Vec::new();
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            let _ = tx.send(String::from_utf8_lossy(&all).into_owned());
        }
    });
    let t0 = Instant::now();
    let mut text = String::new();
    while t0.elapsed() < Duration::from_secs(10) {
        if let Ok(t) = rx.recv_timeout(Duration::from_millis(50)) {
            text = t;
        }
        if text.contains("listening on") {
            // The rest of stderr keeps flowing to the reader thread; collect it at the end.
            let rest = std::thread::spawn(move || {
                let mut last = String::new();
                while let Ok(t) = rx.recv() {
                    last = t;
                }
                last
            });
            STDERR_TAIL.with(|c| *c.borrow_mut() = Some(rest));
            return text;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("exited ({st}) before listening: {text}");
        }
    }
    let _ = child.kill();
    panic!("not listening within 10 s: {text}");
}

thread_local! {
    static STDERR_TAIL: std::cell::RefCell<Option<std::thread::JoinHandle<String>>> = const { std::cell::RefCell::new(None) };
}

/// Sends up to 100 UDP datagrams to 127.0.0.1:`port` (20 ms apart, in namespace `ns` if
/// given) until `child` exits; then waits for it (at most 15 s). Returns (status, stdout,
/// stderr).
fn feed_until_exit(child: &mut Child, port: u16, ns: Option<&Netns>) -> (std::process::ExitStatus, String, String) {
    let t0 = Instant::now();
    let mut sent = 0;
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st;
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "capture did not end within 15 s");
        if sent < 100 {
            sent += 1;
            match ns {
                None => {
                    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                    let _ = s.send_to(b"flowtrail-caps", ("127.0.0.1", port));
                }
                Some(ns) => {
                    let cmd = format!("echo flowtrail-caps > /dev/udp/127.0.0.1/{port}");
                    let _ = ns.exec(&["timeout", "2", "bash", "-c", &cmd]);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let err = STDERR_TAIL.with(|c| c.borrow_mut().take()).map(|h| h.join().unwrap()).unwrap_or_default();
    (status, out, err)
}

/// The test's UDP port (distinct per process, away from the ephemeral range).
fn port() -> u16 {
    20000 + (std::process::id() % 10000) as u16
}

/// `cap_net_raw,cap_net_admin+eip` on a copy of the binary: `nobody` captures on `lo`.
#[test]
fn capabilities_instead_of_root() {
    if prerequisites().is_none() {
        return;
    }
    let dir = Scratch::new("lo");
    let bin = dir.binary("flowtrail", Some("cap_net_raw,cap_net_admin"));
    let port = port();
    let filter = format!("udp port {port}");
    let mut child = as_nobody(&bin, &["-i", "lo", "-c", "3", "-nn", &filter]).spawn().unwrap();
    let head = wait_listening(&mut child);
    // While it runs: really user nobody, with exactly the two capabilities in effect.
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let field = |k: &str| status.lines().find(|l| l.starts_with(k)).unwrap_or("").to_string();
    let (feed_status, out, tail) = feed_until_exit(&mut child, port, None);
    let err = format!("{head}{tail}");
    assert!(field("Uid:").split_whitespace().skip(1).all(|u| u == "65534"), "{}", field("Uid:"));
    // CAP_NET_ADMIN is bit 12, CAP_NET_RAW bit 13.
    let eff = u64::from_str_radix(field("CapEff:").split_whitespace().nth(1).unwrap_or("0"), 16).unwrap();
    assert_eq!(eff, 0x3000, "effective capabilities of the capture: {}", field("CapEff:"));
    assert!(feed_status.success(), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}\n{err}");
    assert!(lines.iter().all(|l| l.contains(&format!("> 127.0.0.1.{port}: UDP, length 14"))), "{out}");
    assert!(err.contains("3 packets captured"), "{err}");
    eprintln!("as nobody with cap_net_raw,cap_net_admin: {} packets captured on lo", lines.len());
}

/// Without capabilities, `nobody` gets libpcap's error and the setcap line that fixes it.
#[test]
fn without_capabilities_the_error_says_how_to_fix_it() {
    if prerequisites().is_none() {
        return;
    }
    let dir = Scratch::new("none");
    let bin = dir.binary("flowtrail", None);
    let o = as_nobody(&bin, &["-i", "lo", "-c", "1", "-nn"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("lo: "), "{err}");
    assert!(err.contains("Operation not permitted"), "{err}");
    assert!(err.contains(&format!("run as root, or give the binary the capabilities: setcap cap_net_raw,cap_net_admin+eip {}", bin.display())), "{err}");
    assert!(o.stdout.is_empty());
}

/// Another namespace needs CAP_SYS_ADMIN: the error says so, with the setcap line; with
/// `cap_sys_admin` added, `nobody` captures inside the namespace. A process's namespace
/// of another user also needs CAP_SYS_PTRACE to open, and that error says so.
#[test]
fn entering_a_namespace_needs_cap_sys_admin() {
    if prerequisites().is_none() {
        return;
    }
    let dir = Scratch::new("ns");
    let ns = Netns::new("n");
    let point = format!("{}/lo", ns.0);
    let bin = dir.binary("flowtrail", Some("cap_net_raw,cap_net_admin"));
    let o = as_nobody(&bin, &["-i", &point, "-c", "1", "-nn"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("{point}: cannot enter network namespace {}", ns.0)), "{err}");
    assert!(err.contains("entering a namespace needs CAP_SYS_ADMIN"), "{err}");
    let fix = format!("setcap cap_net_raw,cap_net_admin,cap_sys_admin+eip {}", bin.display());
    assert!(err.contains(&fix), "{err}");

    let o = as_nobody(&bin, &["-i", "pid:1/lo", "-c", "1", "-nn"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot open the network namespace of pid 1 (/proc/1/ns/net: Permission denied)"), "{err}");
    assert!(err.contains("cap_sys_admin,cap_sys_ptrace+eip"), "{err}");

    // As the message says: add cap_sys_admin.
    let bin = dir.binary("flowtrail-admin", Some("cap_net_raw,cap_net_admin,cap_sys_admin"));
    let port = port() + 1;
    let filter = format!("udp port {port}");
    let mut child = as_nobody(&bin, &["-i", &point, "-c", "2", "-nn", &filter]).spawn().unwrap();
    let head = wait_listening(&mut child);
    let (status, out, tail) = feed_until_exit(&mut child, port, Some(&ns));
    assert!(status.success(), "{head}{tail}");
    assert_eq!(out.lines().count(), 2, "{out}\n{head}{tail}");
    assert!(out.lines().all(|l| l.contains(&format!("> 127.0.0.1.{port}: UDP"))), "{out}");
}
