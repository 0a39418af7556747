//! The seed-path lab (`lab/seedpath.sh`, see `lab/README.md`) as a guard for integration
//! tests: [`Lab::up`] builds a fresh lab with a unique id and [`Drop`] always tears it down,
//! also when the test fails or panics.
//!
//! Use it from a test file that also declares the shared helpers:
//!
//! ```ignore
//! mod common;
//! mod lab;
//!
//! #[test]
//! fn something_on_a_real_network() {
//!     let Some(lab) = lab::Lab::up("mytest") else { return }; // skipped (not root, not CI)
//!     let points = lab.points();                               // the seven NETNS/IFACE labels
//!     let truth = lab.traffic(&["-n", "3", "--size", "2000"]); // bounded client, parsed log
//!     assert!(truth.iter().all(|c| c.echo_ok));
//! }   // lab down here
//! ```
//!
//! Contract:
//! * Needs root and iproute2, iptables, socat, conntrack, python3. Outside CI a missing
//!   prerequisite prints `SKIP: ...` and `up` returns `None`; in CI (`CI=true`) it panics, so
//!   a misconfigured CI fails loudly instead of passing vacuously.
//! * Ids are `ftt<tag><pid>x<n>` (unique per process and call), so labs of tests running in
//!   parallel never collide; the lab's own TTL watchdog (600 s here, `FT_LAB_TTL` to change it) ends it even if this
//!   process is killed before `Drop` runs.
//! * All traffic goes through `lab/seedpath.sh traffic` (the bounded client in the HOST
//!   namespace, under `timeout`) or [`Lab::exec`] inside the lab's namespaces; nothing is
//!   sent to any address outside them.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Tools the lab script needs.
const TOOLS: &[&str] = &["ip", "iptables", "socat", "conntrack", "python3", "timeout"];

/// Skips (outside CI) or fails (in CI) with `msg`; returns `None` for `?`-style use.
pub fn skip_or_fail<T>(msg: &str) -> Option<T> {
    if common::in_ci() {
        panic!("{msg}");
    }
    eprintln!("SKIP: {msg}");
    None
}

/// True when running as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A running lab; torn down on drop.
pub struct Lab {
    pub id: String,
    vars: HashMap<String, String>,
    script: PathBuf,
    /// A scratch directory for this lab's files (client logs, captures); removed on drop.
    pub dir: PathBuf,
}

impl Lab {
    /// Builds a lab; `tag` (letters/digits, short) names the test in the lab id.
    /// `None` (with a `SKIP:` line) when not root or a tool is missing outside CI.
    pub fn up(tag: &str) -> Option<Lab> {
        Self::up_with(tag, &[])
    }

    /// Like [`Lab::up`] with extra environment for `seedpath.sh up` (e.g. `FT_LAB_BRNF=1`).
    pub fn up_with(tag: &str, env: &[(&str, &str)]) -> Option<Lab> {
        if !is_root() {
            return skip_or_fail("needs root (network namespaces, iptables); CI runs as root");
        }
        for t in TOOLS {
            common::require_tool(t)?;
        }
        let tag: String = tag.chars().filter(|c| c.is_ascii_alphanumeric()).take(12).collect();
        let id = format!("ftt{tag}{}x{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        let script = common::root().join("lab/seedpath.sh");
        let dir = std::env::temp_dir().join(format!("flowtrail-{id}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        // The guard exists before `up` runs, so even a half-built lab is torn down.
        let mut lab = Lab { id: id.clone(), vars: HashMap::new(), script, dir };
        let mut cmd = Command::new(&lab.script);
        cmd.arg("up").env("FT_LAB_ID", &id).env("FT_LAB_TTL", std::env::var("FT_LAB_TTL").unwrap_or_else(|_| "600".into())).stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run lab/seedpath.sh up");
        assert!(
            out.status.success(),
            "lab/seedpath.sh up failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((k, v)) = line.split_once('=') {
                lab.vars.insert(k.to_string(), v.to_string());
            }
        }
        assert_eq!(lab.var("FT_LAB_ID"), id, "lab variables: {:?}", lab.vars);
        Some(lab)
    }

    /// A variable printed by `up` (FT_*); panics when missing (the lab README lists them).
    pub fn var(&self, key: &str) -> &str {
        self.vars.get(key).map(String::as_str).unwrap_or_else(|| panic!("lab variable {key} missing"))
    }

    /// The seven capture points in path order, as `NETNS/IFACE` labels (`FT_POINTS`).
    pub fn points(&self) -> Vec<String> {
        self.var("FT_POINTS").split(',').map(str::to_string).collect()
    }

    /// Short names matching [`Lab::points`] (`host-lo`, `host-veth`, ... `node-eth0`).
    pub fn point_names(&self) -> Vec<String> {
        self.var("FT_POINT_NAMES").split(',').map(str::to_string).collect()
    }

    /// The namespace of `role` (`host`, `vm` or `node`).
    pub fn ns(&self, role: &str) -> &str {
        match role {
            "host" => self.var("FT_HOST_NS"),
            "vm" => self.var("FT_VM_NS"),
            "node" => self.var("FT_NODE_NS"),
            r => panic!("no lab role {r}"),
        }
    }

    /// `seedpath.sh exec ROLE ARGS...`: runs a command inside one of the lab's namespaces.
    pub fn exec(&self, role: &str, args: &[&str]) -> Output {
        Command::new(&self.script)
            .arg("exec")
            .arg(role)
            .args(args)
            .env("FT_LAB_ID", &self.id)
            .stdin(Stdio::null())
            .output()
            .expect("run lab/seedpath.sh exec")
    }

    /// A command that runs `program` inside the namespace of `role` (`ip netns exec`), to be
    /// spawned by the caller (e.g. a tcpdump that must be signalled).
    pub fn command_in(&self, role: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.ns(role), program]);
        c
    }

    /// Runs the bounded client (`seedpath.sh traffic -- ARGS --log FILE`) and returns its
    /// log, one record per connection. Panics if the client fails (exit status non-zero)
    /// unless `--allow-errors` is among `args`.
    pub fn traffic(&self, args: &[&str]) -> Vec<Connection> {
        let log = self.dir.join(format!("client-{}.jsonl", NEXT.fetch_add(1, Ordering::SeqCst)));
        let out = Command::new(&self.script)
            .args(["traffic", &self.id, "--"])
            .args(args)
            .arg("--log")
            .arg(&log)
            .env("FT_CLIENT_TIMEOUT", "120")
            .stdin(Stdio::null())
            .output()
            .expect("run lab/seedpath.sh traffic");
        assert!(
            out.status.success() || args.contains(&"--allow-errors"),
            "client failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&log).expect("client log");
        text.lines().filter(|l| !l.trim().is_empty()).map(Connection::parse).collect()
    }

    /// `conntrack -L` in the VM namespace (where the DNAT and MASQUERADE happen).
    pub fn vm_conntrack(&self) -> String {
        let out = self.exec("vm", &["conntrack", "-L", "-p", "tcp"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(&self.script)
            .args(["down", &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if std::env::var_os("FT_KEEP_LAB_FILES").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A capture process (flowtrail or tcpdump) running in the background with its stdout and
/// stderr going to files: wait until it is listening, stop it with SIGINT like a user, and
/// read what it wrote. Killed on drop if still running, so a failing test leaves nothing.
pub struct Background {
    child: Option<std::process::Child>,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    what: String,
}

/// What a [`Background`] process left behind.
pub struct Finished {
    pub status: std::process::ExitStatus,
    /// From SIGINT to exit.
    pub stop_time: std::time::Duration,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Background {
    /// Spawns `cmd` with stdout/stderr in `dir/<name>.out|.err`.
    pub fn spawn(mut cmd: Command, dir: &std::path::Path, name: &str) -> Background {
        let stdout = dir.join(format!("{name}.out"));
        let stderr = dir.join(format!("{name}.err"));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Background { child: Some(child), stdout, stderr, what: name.to_string() }
    }

    /// Waits (at most `timeout`) until stderr holds `n` lines containing `needle` (e.g.
    /// `listening on`). Panics with the stderr text on timeout or if the process exits.
    pub fn wait_for(&mut self, needle: &str, n: usize, timeout: std::time::Duration) {
        let t0 = std::time::Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
            if text.lines().filter(|l| l.contains(needle)).count() >= n {
                return;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!("{} exited ({st}) before '{needle}' x{n}:\n{text}", self.what);
            }
            assert!(t0.elapsed() < timeout, "{}: no '{needle}' x{n} within {timeout:?}:\n{text}", self.what);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The process id (0 once it was reaped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Sends SIGINT (unless it already exited) and waits (at most 20 s, then SIGKILL and
    /// panic) for the exit.
    pub fn interrupt(mut self) -> Finished {
        let running = self.is_running();
        let mut child = self.child.take().expect("spawned");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let t0 = std::time::Instant::now();
        if running {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        }
        let status = loop {
            if let Ok(Some(st)) = child.try_wait() {
                break st;
            }
            if t0.elapsed() > std::time::Duration::from_secs(20) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{} did not end within 20 s of SIGINT", self.what);
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        };
        let stop_time = t0.elapsed();
        Finished {
            status,
            stop_time,
            stdout: std::fs::read(&self.stdout).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.stderr).unwrap_or_default(),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One line of the client's log (lab/README.md, "client.py"): the ground truth.
#[derive(Clone, Debug, Default)]
pub struct Connection {
    pub i: u64,
    pub proto: String,
    pub mode: String,
    /// `IP:PORT` the client's socket had.
    pub local: String,
    pub local_port: u16,
    /// `IP:PORT` it connected to.
    pub remote: String,
    pub size: u64,
    pub sent: u64,
    pub received: u64,
    pub sha256_sent: String,
    pub sha256_received: String,
    pub echo_ok: bool,
    pub error: Option<String>,
    /// Every field as raw JSON text, for fields added later.
    pub fields: HashMap<String, String>,
}

impl Connection {
    /// Parses one flat JSON object (the client writes no nesting).
    pub fn parse(line: &str) -> Connection {
        let fields = parse_flat_json(line).unwrap_or_else(|| panic!("bad client log line: {line}"));
        let s = |k: &str| fields.get(k).map(|v| unquote(v)).unwrap_or_default();
        let n = |k: &str| fields.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) as u64;
        Connection {
            i: n("i"),
            proto: s("proto"),
            mode: s("mode"),
            local: s("local"),
            local_port: n("local_port") as u16,
            remote: s("remote"),
            size: n("size"),
            sent: n("sent"),
            received: n("received"),
            sha256_sent: s("sha256_sent"),
            sha256_received: s("sha256_received"),
            echo_ok: fields.get("echo_ok").map(String::as_str) == Some("true"),
            error: fields.get("error").filter(|v| v.as_str() != "null").map(|v| unquote(v)),
            fields,
        }
    }
}

/// Splits `{"k": v, ...}` into raw value texts (strings keep their quotes).
fn parse_flat_json(line: &str) -> Option<HashMap<String, String>> {
    let body = line.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut out = HashMap::new();
    let mut chars = body.char_indices().peekable();
    loop {
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let Some(&(start, c)) = chars.peek() else { break };
        if c != '"' {
            return None;
        }
        let key_end = string_end(body, start)?;
        let key = unquote(&body[start..key_end]);
        while chars.peek().is_some_and(|(i, _)| *i < key_end) {
            chars.next();
        }
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace() || *c == ':') {
            chars.next();
        }
        let &(vstart, vc) = chars.peek()?;
        let vend = if vc == '"' {
            string_end(body, vstart)?
        } else {
            body[vstart..].find(',').map_or(body.len(), |k| vstart + k)
        };
        out.insert(key, body[vstart..vend].trim().to_string());
        while chars.peek().is_some_and(|(i, _)| *i < vend) {
            chars.next();
        }
    }
    Some(out)
}

/// Index just past the closing quote of the string starting at `start`.
fn string_end(s: &str, start: usize) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => v.to_string(),
    }
}

#[test]
fn client_log_lines_parse() {
    let c = Connection::parse(
        r#"{"i": 3, "proto": "tcp", "mode": "reset", "local": "127.0.0.1:40003", "local_port": 40003, "remote": "127.0.0.1:49673", "size": 20000, "sent": 20000, "received": 20000, "sha256_sent": "ab", "sha256_received": "ab", "echo_ok": true, "start": 1.5, "error": null}"#,
    );
    assert_eq!((c.i, c.local_port, c.size, c.echo_ok), (3, 40003, 20000, true));
    assert_eq!(c.remote, "127.0.0.1:49673");
    assert_eq!(c.error, None);
}
