//! Network namespaces: capture point specs, and running code inside a namespace.
//!
//! This is the one seam between flowtrail and the kernel's namespace API. A capture point is
//! written `IFACE` (the current namespace), `NETNS/IFACE` (a name under `/var/run/netns`, as
//! `ip netns` makes them) or `pid:PID/IFACE` (the namespace of process PID). Neither interface
//! nor namespace names may contain `/`, so the split is unambiguous.
//!
//! [`run_in`] runs a closure on a fresh thread that has joined the namespace (`setns(2)` only
//! changes the calling thread), so the rest of the process never changes namespace. Sockets
//! opened there (libpcap handles, netlink, /proc reads through the thread's view) stay bound
//! to that namespace for their lifetime.

use std::fs::File;
use std::path::PathBuf;

/// Where a namespace is found.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Netns {
    /// The namespace flowtrail runs in.
    Current,
    /// A name under `/var/run/netns`.
    Named(String),
    /// The network namespace of a process.
    Pid(u32),
}

impl Netns {
    /// The file whose descriptor `setns` takes, or `None` for the current namespace.
    pub fn path(&self) -> Option<PathBuf> {
        match self {
            Netns::Current => None,
            Netns::Named(n) => Some(PathBuf::from(NETNS_DIR).join(n)),
            Netns::Pid(p) => Some(PathBuf::from(format!("/proc/{p}/ns/net"))),
        }
    }

    /// Label prefix: "" for the current namespace, `NAME/` or `pid:PID/`.
    pub fn label_prefix(&self) -> String {
        match self {
            Netns::Current => String::new(),
            Netns::Named(n) => format!("{n}/"),
            Netns::Pid(p) => format!("pid:{p}/"),
        }
    }
}

impl std::fmt::Display for Netns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Netns::Current => f.write_str("the current network namespace"),
            Netns::Named(n) => write!(f, "network namespace {n}"),
            Netns::Pid(p) => write!(f, "the network namespace of pid {p}"),
        }
    }
}

pub const NETNS_DIR: &str = "/var/run/netns";

/// A live capture point as written on the command line.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PointSpec {
    pub netns: Netns,
    pub iface: String,
}

impl PointSpec {
    /// The capture point label (DESIGN.md): `IFACE`, `NETNS/IFACE` or `pid:PID/IFACE`.
    pub fn label(&self) -> String {
        format!("{}{}", self.netns.label_prefix(), self.iface)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("bad capture point '{0}': expected IFACE, NETNS/IFACE or pid:PID/IFACE")]
    BadSpec(String),
    #[error("{ns}: no such network namespace ({path}: {source})")]
    Missing { ns: Netns, path: String, source: std::io::Error },
    #[error("cannot enter {ns}: {source} (entering a namespace needs root or CAP_SYS_ADMIN)")]
    Enter { ns: Netns, source: nix::Error },
    #[error("thread for {ns} failed: {msg}")]
    Thread { ns: Netns, msg: String },
}

/// Parses `IFACE`, `NETNS/IFACE` or `pid:PID/IFACE`.
pub fn parse_point(s: &str) -> Result<PointSpec, NetnsError> {
    let bad = || NetnsError::BadSpec(s.to_string());
    let (netns, iface) = match s.split_once('/') {
        None => (Netns::Current, s),
        Some((ns, iface)) => {
            let netns = match ns.strip_prefix("pid:") {
                Some(p) => Netns::Pid(p.parse().map_err(|_| bad())?),
                None if !ns.is_empty() && ns != "." && ns != ".." => Netns::Named(ns.to_string()),
                None => return Err(bad()),
            };
            (netns, iface)
        }
    };
    if iface.is_empty() || iface.contains('/') || iface.len() > 15 && iface != "any" {
        return Err(bad());
    }
    Ok(PointSpec { netns, iface: iface.to_string() })
}

/// Names under `/var/run/netns`, sorted (empty when the directory doesn't exist).
pub fn named_namespaces() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(NETNS_DIR)
        .map(|rd| rd.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Opens the namespace's file (checks it exists) without entering it.
pub fn open(ns: &Netns) -> Result<Option<File>, NetnsError> {
    let Some(path) = ns.path() else { return Ok(None) };
    File::open(&path).map(Some).map_err(|source| NetnsError::Missing {
        ns: ns.clone(),
        path: path.display().to_string(),
        source,
    })
}

/// Moves the calling thread into `ns`. Only for threads flowtrail owns for that purpose
/// (capture threads); prefer [`run_in`].
pub fn enter(ns: &Netns) -> Result<(), NetnsError> {
    if let Some(f) = open(ns)? {
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|source| NetnsError::Enter { ns: ns.clone(), source })?;
    }
    Ok(())
}

/// Runs `f` on a new thread inside `ns` and returns its result.
pub fn run_in<T: Send + 'static>(
    ns: &Netns,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, NetnsError> {
    if *ns == Netns::Current {
        return Ok(f());
    }
    let file = open(ns)?;
    let ns2 = ns.clone();
    std::thread::Builder::new()
        .name(format!("netns-{}", ns.label_prefix().trim_end_matches('/')))
        .spawn(move || -> Result<T, NetnsError> {
            if let Some(file) = file {
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|source| NetnsError::Enter { ns: ns2.clone(), source })?;
            }
            Ok(f())
        })
        .map_err(|e| NetnsError::Thread { ns: ns.clone(), msg: e.to_string() })?
        .join()
        .map_err(|_| NetnsError::Thread { ns: ns.clone(), msg: "panicked".into() })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_point_specs() {
        assert_eq!(parse_point("lo").unwrap(), PointSpec { netns: Netns::Current, iface: "lo".into() });
        let p = parse_point("sd_vm/br0").unwrap();
        assert_eq!(p.netns, Netns::Named("sd_vm".into()));
        assert_eq!(p.label(), "sd_vm/br0");
        let p = parse_point("pid:42/eth0").unwrap();
        assert_eq!(p.netns, Netns::Pid(42));
        assert_eq!(p.label(), "pid:42/eth0");
        assert_eq!(parse_point("ns/any").unwrap().iface, "any");
        for bad in ["", "/lo", "ns/", "pid:x/lo", "a/b/c", "../lo", "waytoolonginterfacename0"] {
            assert!(parse_point(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn missing_namespace_is_named_in_the_error() {
        let e = open(&Netns::Named("flowtrail-no-such-ns".into())).unwrap_err();
        assert!(e.to_string().contains("flowtrail-no-such-ns"), "{e}");
    }
}
