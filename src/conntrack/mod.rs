//! Conntrack: the kernel's connection tracking table of one network namespace, as a dump and
//! as a stream of events, so the joiner can learn which tuple rewrite (DNAT, SNAT,
//! MASQUERADE) turned one leg's addresses into another's.
//!
//! ## Contract
//!
//! * [`CtEntry`] is plain data: protocol, the original-direction tuple ([`CtEntry::orig`],
//!   as the first packet had it before any NAT) and the reply-direction tuple
//!   ([`CtEntry::reply`], as the answer is expected *on the wire*, i.e. after NAT), plus
//!   whatever else the source reported (TCP state, status bits, id, mark, zone, counters,
//!   start/stop timestamps). Fields the source does not give are `None`; nothing is guessed.
//! * [`CtEntry::rewrite`] says which rewrite happened: DNAT when the reply's source differs
//!   from the original destination, SNAT (or MASQUERADE) when the reply's destination
//!   differs from the original source. [`CtEntry::wire_orig`] is the original direction's
//!   tuple after NAT, as it appears on interfaces past the rewrite.
//! * [`dump`] reads the whole table once; [`ConntrackWatcher`] subscribes to NEW, UPDATE and
//!   DESTROY events on a background thread (after an optional initial dump, with the
//!   subscription opened *before* the dump so nothing falls between the two) and hands
//!   [`CtUpdate`]s to a bounded channel, so connections shorter than any polling interval
//!   are still seen.
//!
//! ## Sources and the seam
//!
//! Two back ends, chosen by [`Backend`]:
//!
//! * **ctnetlink** (`NETLINK_NETFILTER`, subsystem `NFNL_SUBSYS_CTNETLINK`): dumps with
//!   `IPCTNL_MSG_CT_GET` + `NLM_F_DUMP` (family `AF_UNSPEC`: IPv4 and IPv6), events from the
//!   multicast groups `NFNLGRP_CONNTRACK_{NEW,UPDATE,DESTROY}`. All bytes go through the
//!   pure parser in [`wire`]; the socket itself lives in `source` (the only code here that
//!   talks to the kernel), so tests run on recorded datagrams (`tests/fixtures/os/`).
//! * **procfs** (`/proc/net/nf_conntrack`), the fallback when netlink is unusable: a dump is
//!   one read of the file, parsed by [`text`]; the watcher polls it and synthesizes events by
//!   diffing successive reads (marked [`EventOrigin::ProcPoll`]), so it misses connections
//!   shorter than the poll interval and has no conntrack ids. The same text parser reads
//!   `conntrack -L` / `conntrack -E -o timestamp,id` output (the recorded `samples/`).
//!
//! [`Backend::Auto`] tries netlink and falls back to procfs; the reason is kept
//! ([`Dump::fallback`], [`ConntrackWatcher::fallback_reason`]).
//!
//! ## Namespaces
//!
//! Both the netlink socket and the procfs file are opened on a thread that has joined the
//! namespace ([`crate::netns::run_in`]); a socket or open file stays bound to the namespace
//! it was opened in, so after that they are used from any thread and the process itself
//! never changes namespace. The procfs file is opened as `/proc/thread-self/net/nf_conntrack`:
//! `/proc/net` is a link to `/proc/self/net`, the namespace of the *process's main thread*,
//! not of the thread that reads it. Every entry carries the [`Netns`] it came from. An open
//! socket or file holds a reference to its namespace: a watcher keeps a deleted namespace
//! alive until it is stopped.
//!
//! ## Failure modes
//!
//! Nothing here panics on any input; errors are typed ([`ConntrackError`]) and name the
//! namespace. Not root / no `CAP_NET_ADMIN`: the kernel answers `EPERM` to the dump request
//! and to the event subscription ([`ConntrackError::Kernel`] / [`ConntrackError::Socket`]),
//! and `/proc/net/nf_conntrack` is readable by root only. Conntrack not in the kernel:
//! creating the socket or the dump answers `EPROTONOSUPPORT`/`EOPNOTSUPP`, the procfs file
//! does not exist. Like `conntrack(8)`, a dump request may make the kernel autoload
//! `nf_conntrack_netlink` where it is a module. A namespace without conntrack hooks (no NAT
//! or conntrack rule in it) simply has an empty table. Event overflow (the kernel drops
//! events when the socket buffer is full, `ENOBUFS`) is counted and reported as
//! [`CtUpdate::Lost`]; malformed messages are counted and skipped; a full channel is
//! counted ([`WatchStats::channel_full`]), never blocks the watcher.

pub mod text;
pub mod wire;

mod source;
mod watcher;

pub use source::{CtSocket, ProcTable, Recv, dump, dump_with};
pub use watcher::{ConntrackWatcher, CtUpdate, WatchOptions, WatchStats};

use crate::netns::{Netns, NetnsError};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::SystemTime;

/// Transport protocol of a conntrack entry (`CTA_PROTO_NUM`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CtProto {
    Tcp,
    Udp,
    UdpLite,
    Icmp,
    Icmpv6,
    Sctp,
    Dccp,
    Gre,
    Other(u8),
}

impl CtProto {
    pub fn from_number(n: u8) -> CtProto {
        match n {
            6 => CtProto::Tcp,
            17 => CtProto::Udp,
            136 => CtProto::UdpLite,
            1 => CtProto::Icmp,
            58 => CtProto::Icmpv6,
            132 => CtProto::Sctp,
            33 => CtProto::Dccp,
            47 => CtProto::Gre,
            n => CtProto::Other(n),
        }
    }

    pub fn number(self) -> u8 {
        match self {
            CtProto::Tcp => 6,
            CtProto::Udp => 17,
            CtProto::UdpLite => 136,
            CtProto::Icmp => 1,
            CtProto::Icmpv6 => 58,
            CtProto::Sctp => 132,
            CtProto::Dccp => 33,
            CtProto::Gre => 47,
            CtProto::Other(n) => n,
        }
    }

    /// The name conntrack(8) and /proc print (`unknown` for others).
    pub fn name(self) -> &'static str {
        match self {
            CtProto::Tcp => "tcp",
            CtProto::Udp => "udp",
            CtProto::UdpLite => "udplite",
            CtProto::Icmp => "icmp",
            CtProto::Icmpv6 => "icmpv6",
            CtProto::Sctp => "sctp",
            CtProto::Dccp => "dccp",
            CtProto::Gre => "gre",
            CtProto::Other(_) => "unknown",
        }
    }

    /// Whether the tuple's `sport`/`dport` are real ports.
    pub fn has_ports(self) -> bool {
        matches!(self, CtProto::Tcp | CtProto::Udp | CtProto::UdpLite | CtProto::Sctp | CtProto::Dccp)
    }
}

impl fmt::Display for CtProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CtProto::Other(n) => write!(f, "proto-{n}"),
            p => f.write_str(p.name()),
        }
    }
}

/// ICMP/ICMPv6 tuple fields (echo id, type, code), in place of ports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct IcmpKey {
    pub id: u16,
    pub kind: u8,
    pub code: u8,
}

/// One direction's tuple. `sport`/`dport` are 0 for protocols without ports (ICMP carries
/// [`IcmpKey`] instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CtTuple {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub icmp: Option<IcmpKey>,
}

impl CtTuple {
    /// The tuple from `src` to `dst` (ports: TCP, UDP and other protocols with ports).
    pub fn between(src: SocketAddr, dst: SocketAddr) -> CtTuple {
        CtTuple { src: src.ip(), dst: dst.ip(), sport: src.port(), dport: dst.port(), icmp: None }
    }
    pub fn src_addr(&self) -> SocketAddr {
        SocketAddr::new(self.src, self.sport)
    }
    pub fn dst_addr(&self) -> SocketAddr {
        SocketAddr::new(self.dst, self.dport)
    }
    /// The same tuple seen from the other end.
    pub fn reversed(&self) -> CtTuple {
        CtTuple { src: self.dst, dst: self.src, sport: self.dport, dport: self.sport, icmp: self.icmp }
    }
}

impl fmt::Display for CtTuple {
    /// `SRC:SPORT -> DST:DPORT` (IPv6 in brackets).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}", self.src_addr(), self.dst_addr())
    }
}

/// Conntrack's TCP state (`CTA_PROTOINFO_TCP_STATE`, `enum tcp_conntrack`), not the socket's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcpCtState {
    None,
    SynSent,
    SynRecv,
    Established,
    FinWait,
    CloseWait,
    LastAck,
    TimeWait,
    Close,
    SynSent2,
    Other(u8),
}

impl TcpCtState {
    pub fn from_number(n: u8) -> TcpCtState {
        use TcpCtState::*;
        match n {
            0 => None,
            1 => SynSent,
            2 => SynRecv,
            3 => Established,
            4 => FinWait,
            5 => CloseWait,
            6 => LastAck,
            7 => TimeWait,
            8 => Close,
            9 => SynSent2,
            n => Other(n),
        }
    }

    /// Parses the names conntrack(8) and /proc print (`SYN_SENT`, `TIME_WAIT`, ...).
    pub fn from_name(s: &str) -> Option<TcpCtState> {
        use TcpCtState::*;
        Some(match s {
            "NONE" => None,
            "SYN_SENT" => SynSent,
            "SYN_RECV" => SynRecv,
            "ESTABLISHED" => Established,
            "FIN_WAIT" => FinWait,
            "CLOSE_WAIT" => CloseWait,
            "LAST_ACK" => LastAck,
            "TIME_WAIT" => TimeWait,
            "CLOSE" => Close,
            "SYN_SENT2" | "LISTEN" => SynSent2,
            _ => return Option::None,
        })
    }

    pub fn name(self) -> &'static str {
        use TcpCtState::*;
        match self {
            None => "NONE",
            SynSent => "SYN_SENT",
            SynRecv => "SYN_RECV",
            Established => "ESTABLISHED",
            FinWait => "FIN_WAIT",
            CloseWait => "CLOSE_WAIT",
            LastAck => "LAST_ACK",
            TimeWait => "TIME_WAIT",
            Close => "CLOSE",
            SynSent2 => "SYN_SENT2",
            Other(_) => "UNKNOWN",
        }
    }
}

/// Conntrack status bits (`CTA_STATUS`, `enum ip_conntrack_status`). From the text formats
/// only `SEEN_REPLY` (absence of `[UNREPLIED]`), `ASSURED`, `OFFLOAD` and `HW_OFFLOAD` are
/// known; the other bits read as 0 there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CtStatus(pub u32);

impl CtStatus {
    pub const EXPECTED: u32 = 1 << 0;
    pub const SEEN_REPLY: u32 = 1 << 1;
    pub const ASSURED: u32 = 1 << 2;
    pub const CONFIRMED: u32 = 1 << 3;
    pub const SRC_NAT: u32 = 1 << 4;
    pub const DST_NAT: u32 = 1 << 5;
    pub const SRC_NAT_DONE: u32 = 1 << 7;
    pub const DST_NAT_DONE: u32 = 1 << 8;
    pub const DYING: u32 = 1 << 9;
    pub const OFFLOAD: u32 = 1 << 14;
    pub const HW_OFFLOAD: u32 = 1 << 15;

    pub fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }
    pub fn seen_reply(self) -> bool {
        self.has(Self::SEEN_REPLY)
    }
    pub fn assured(self) -> bool {
        self.has(Self::ASSURED)
    }
}

/// Packet and byte counters of one direction (`CTA_COUNTERS_*`, only with
/// `net.netfilter.nf_conntrack_acct=1` in that namespace).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CtCounters {
    pub packets: u64,
    pub bytes: u64,
}

/// One conntrack entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtEntry {
    /// Namespace the entry was read in ([`Netns::Current`] from the pure parsers).
    pub netns: Netns,
    /// Conntrack id (`CTA_ID`; `id=` with `conntrack -o id`); not in /proc.
    pub id: Option<u32>,
    pub proto: CtProto,
    /// Original direction, as the first packet was before any rewrite.
    pub orig: CtTuple,
    /// Reply direction as expected on the wire (after NAT): its source is where the
    /// original packets really went, its destination where they really came from.
    pub reply: CtTuple,
    /// TCP only.
    pub tcp_state: Option<TcpCtState>,
    pub status: CtStatus,
    /// Seconds until the entry expires (absent in DESTROY events).
    pub timeout_s: Option<u32>,
    pub mark: Option<u32>,
    /// Conntrack zone (`CTA_ZONE`, `zone=`), `None` for the default zone 0.
    pub zone: Option<u16>,
    /// Reference count (`use=`).
    pub use_count: Option<u32>,
    /// Counters per direction (orig, reply) when accounting is on
    /// (`net.netfilter.nf_conntrack_acct=1`); the kernel sends them in dumps and DESTROY
    /// events, not in NEW/UPDATE events.
    pub counters: Option<(CtCounters, CtCounters)>,
    /// Start in nanoseconds since the UNIX epoch (`CTA_TIMESTAMP`, only with
    /// `net.netfilter.nf_conntrack_timestamp=1` in that namespace); in dumps and DESTROY
    /// events, not in NEW/UPDATE events.
    pub start_ns: Option<u64>,
    /// Stop (same clock), in DESTROY events only.
    pub stop_ns: Option<u64>,
}

/// What conntrack rewrote: each `Some((before, after))` names an endpoint of the original
/// direction and what it became on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rewrite {
    /// Destination NAT: original destination -> real destination (reply source).
    pub dnat: Option<(SocketAddr, SocketAddr)>,
    /// Source NAT / MASQUERADE: original source -> source on the wire (reply destination).
    pub snat: Option<(SocketAddr, SocketAddr)>,
}

impl Rewrite {
    pub fn is_none(&self) -> bool {
        self.dnat.is_none() && self.snat.is_none()
    }
}

impl fmt::Display for Rewrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some((a, b)) = self.dnat {
            write!(f, "dnat {a} -> {b}")?;
            sep = ", ";
        }
        if let Some((a, b)) = self.snat {
            write!(f, "{sep}snat {a} -> {b}")?;
        } else if sep.is_empty() {
            f.write_str("none")?;
        }
        Ok(())
    }
}

impl CtEntry {
    /// An entry of the current namespace that knows only its tuples: no id, state, status,
    /// timeout, counters or times.
    pub fn new(proto: CtProto, orig: CtTuple, reply: CtTuple) -> CtEntry {
        CtEntry {
            netns: Netns::Current,
            id: None,
            proto,
            orig,
            reply,
            tcp_state: None,
            status: CtStatus::default(),
            timeout_s: None,
            mark: None,
            zone: None,
            use_count: None,
            counters: None,
            start_ns: None,
            stop_ns: None,
        }
    }

    /// Which tuple rewrite happened (see [`Rewrite`]). Ports count too: a DNAT that keeps
    /// the address but changes the port is a DNAT.
    pub fn rewrite(&self) -> Rewrite {
        let (o, r) = (&self.orig, &self.reply);
        let orig_dst = o.dst_addr();
        let real_dst = r.src_addr();
        let orig_src = o.src_addr();
        let wire_src = r.dst_addr();
        Rewrite {
            dnat: (canon(orig_dst) != canon(real_dst)).then_some((orig_dst, real_dst)),
            snat: (canon(orig_src) != canon(wire_src)).then_some((orig_src, wire_src)),
        }
    }

    /// The original direction's tuple as it appears on the wire after NAT: the reply tuple
    /// reversed. Equal to [`CtEntry::orig`] when nothing was rewritten.
    pub fn wire_orig(&self) -> CtTuple {
        self.reply.reversed()
    }

    /// The capture-point label prefix of its namespace ("" for the current one).
    pub fn netns_label(&self) -> String {
        self.netns.label_prefix().trim_end_matches('/').to_string()
    }
}

fn canon(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

impl fmt::Display for CtEntry {
    /// One line in conntrack(8)'s spirit: `tcp ESTABLISHED 1.2.3.4:5 -> ... | reply ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.proto)?;
        if let Some(s) = self.tcp_state {
            write!(f, " {}", s.name())?;
        }
        write!(f, " {} reply {}", self.orig, self.reply)?;
        let rw = self.rewrite();
        if !rw.is_none() {
            write!(f, " ({rw})")?;
        }
        if let Some(id) = self.id {
            write!(f, " id={id}")?;
        }
        Ok(())
    }
}

/// Kind of a conntrack event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CtEventKind {
    New,
    Update,
    Destroy,
}

impl CtEventKind {
    pub fn name(self) -> &'static str {
        match self {
            CtEventKind::New => "NEW",
            CtEventKind::Update => "UPDATE",
            CtEventKind::Destroy => "DESTROY",
        }
    }
}

/// Where an event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventOrigin {
    /// A ctnetlink event message (exact, in kernel order).
    Netlink,
    /// Synthesized by diffing two procfs reads (coarse: poll interval).
    ProcPoll,
    /// Read from recorded `conntrack -E` text.
    Text,
}

/// One conntrack event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtEvent {
    pub kind: CtEventKind,
    pub entry: CtEntry,
    /// When flowtrail received it (the kernel does not timestamp events; `conntrack -E -o
    /// timestamp` does the same), or the recorded timestamp for text.
    pub at: SystemTime,
    pub origin: EventOrigin,
}

/// Which source to read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Backend {
    /// ctnetlink, else procfs.
    #[default]
    Auto,
    Netlink,
    Proc,
}

/// The result of one table read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dump {
    pub entries: Vec<CtEntry>,
    /// [`Backend::Netlink`] or [`Backend::Proc`]: what was actually read.
    pub backend: Backend,
    /// Messages or lines that could not be parsed (skipped).
    pub malformed: usize,
    /// Why netlink was not used, when [`Backend::Auto`] fell back to procfs.
    pub fallback: Option<String>,
}

/// The procfs file, relative to the reading thread's namespace.
pub const PROC_CONNTRACK: &str = "/proc/thread-self/net/nf_conntrack";

#[derive(Debug, thiserror::Error)]
pub enum ConntrackError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("{ns}: cannot {what} the ctnetlink socket: {source}{}", hint(source.raw_os_error()))]
    Socket { ns: Netns, what: &'static str, source: std::io::Error },
    #[error("{ns}: the kernel refused the conntrack {what}: {}{}", std::io::Error::from_raw_os_error(*errno), hint(Some(*errno)))]
    Kernel { ns: Netns, what: &'static str, errno: i32 },
    #[error("{ns}: conntrack {what} timed out after {ms} ms")]
    Timeout { ns: Netns, what: &'static str, ms: u64 },
    #[error("{ns}: malformed ctnetlink data in the {what}: {source}")]
    Wire { ns: Netns, what: &'static str, source: wire::WireError },
    #[error("{ns}: cannot read {path}: {source}{}", proc_hint(source))]
    Proc { ns: Netns, path: &'static str, source: std::io::Error },
    #[error("{ns}: conntrack is unavailable: netlink: {netlink}; procfs: {proc}")]
    Unavailable { ns: Netns, netlink: String, proc: String },
    #[error("cannot start the conntrack watcher thread for {ns}: {msg}")]
    Thread { ns: Netns, msg: String },
}

fn hint(errno: Option<i32>) -> &'static str {
    match errno {
        Some(libc::EPERM) | Some(libc::EACCES) => " (conntrack needs root or CAP_NET_ADMIN)",
        Some(libc::EPROTONOSUPPORT) | Some(libc::EOPNOTSUPP) | Some(libc::ENOENT) => {
            " (no ctnetlink in this kernel: nf_conntrack_netlink not built or not loaded)"
        }
        _ => "",
    }
}

fn proc_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::NotFound => " (conntrack not loaded, or built without procfs support)",
        std::io::ErrorKind::PermissionDenied => " (readable by root only)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str, d: &str) -> CtTuple {
        CtTuple::between(s.parse().unwrap(), d.parse().unwrap())
    }

    fn entry(orig: CtTuple, reply: CtTuple) -> CtEntry {
        CtEntry::new(CtProto::Tcp, orig, reply)
    }

    #[test]
    fn rewrite_of_the_seed_path_dnat_plus_masquerade() {
        let e = entry(t("127.0.0.1:39658", "127.0.0.1:55001"), t("192.168.49.2:8443", "192.168.49.1:39658"));
        let rw = e.rewrite();
        assert_eq!(rw.dnat, Some(("127.0.0.1:55001".parse().unwrap(), "192.168.49.2:8443".parse().unwrap())));
        assert_eq!(rw.snat, Some(("127.0.0.1:39658".parse().unwrap(), "192.168.49.1:39658".parse().unwrap())));
        assert_eq!(e.wire_orig(), t("192.168.49.1:39658", "192.168.49.2:8443"));
        assert_eq!(rw.to_string(), "dnat 127.0.0.1:55001 -> 192.168.49.2:8443, snat 127.0.0.1:39658 -> 192.168.49.1:39658");
    }

    #[test]
    fn rewrite_none_dnat_only_snat_only_and_port_only() {
        let plain = entry(t("192.168.65.1:38892", "192.168.65.2:49700"), t("192.168.65.2:49700", "192.168.65.1:38892"));
        assert!(plain.rewrite().is_none());
        assert_eq!(plain.rewrite().to_string(), "none");
        assert_eq!(plain.wire_orig(), plain.orig);
        let dnat = entry(t("10.0.0.1:1000", "10.0.0.2:80"), t("10.0.0.3:8080", "10.0.0.1:1000"));
        assert!(dnat.rewrite().dnat.is_some() && dnat.rewrite().snat.is_none());
        let snat = entry(t("10.0.0.1:1000", "8.8.8.8:53"), t("8.8.8.8:53", "10.9.9.9:1000"));
        assert!(snat.rewrite().snat.is_some() && snat.rewrite().dnat.is_none());
        let port = entry(t("10.0.0.1:1000", "10.0.0.2:80"), t("10.0.0.2:8080", "10.0.0.1:1000"));
        assert_eq!(port.rewrite().dnat.unwrap().1.port(), 8080);
        // A v4-mapped address is the same endpoint.
        let mapped = entry(t("[::ffff:10.0.0.1]:1", "10.0.0.2:2"), t("10.0.0.2:2", "10.0.0.1:1"));
        assert!(mapped.rewrite().is_none());
    }

    #[test]
    fn names_round_trip() {
        for n in 0..=12u8 {
            let s = TcpCtState::from_number(n);
            if !matches!(s, TcpCtState::Other(_)) {
                assert_eq!(TcpCtState::from_name(s.name()), Some(s));
            }
        }
        for n in [1u8, 6, 17, 33, 47, 58, 132, 136, 200] {
            assert_eq!(CtProto::from_number(n).number(), n);
        }
        assert_eq!(CtProto::Other(200).to_string(), "proto-200");
    }

    #[test]
    fn errors_carry_context_and_hints() {
        let e = ConntrackError::Kernel { ns: Netns::Named("x_vm".into()), what: "dump", errno: libc::EPERM };
        let s = e.to_string();
        assert!(s.contains("x_vm") && s.contains("CAP_NET_ADMIN"), "{s}");
    }
}
