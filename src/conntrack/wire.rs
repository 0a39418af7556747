//! ctnetlink wire format: netlink datagrams -> [`CtMessage`]s. Pure and total: any byte
//! string gives messages or [`WireError`]s, never a panic (a fuzz target).
//!
//! Layout (all from `linux/netlink.h`, `linux/netfilter/nfnetlink.h`,
//! `linux/netfilter/nfnetlink_conntrack.h`):
//!
//! ```text
//! nlmsghdr   u32 len | u16 type | u16 flags | u32 seq | u32 pid      (host byte order)
//!            type = NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_{NEW,GET,DELETE}
//! nfgenmsg   u8 family | u8 version | be16 res_id
//! attributes nlattr { u16 len, u16 type (NESTED 0x8000, NET_BYTEORDER 0x4000) } + value,
//!            each padded to 4 bytes; values in network byte order
//! ```
//!
//! A datagram holds one or more messages back to back. A message whose header is broken
//! ends the datagram (the framing cannot be trusted past it); a message whose body is broken
//! gives one error and parsing goes on with the next message.
//!
//! Event kinds: `IPCTNL_MSG_CT_NEW` with `NLM_F_CREATE|NLM_F_EXCL` is NEW, without them
//! UPDATE; `IPCTNL_MSG_CT_DELETE` is DESTROY. Dump replies are `IPCTNL_MSG_CT_NEW` with
//! `NLM_F_MULTI`, ended by `NLMSG_DONE`.

use super::{CtCounters, CtEntry, CtEventKind, CtProto, CtStatus, CtTuple, IcmpKey, TcpCtState};
use crate::netns::Netns;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const NLMSG_HDRLEN: usize = 16;
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_MULTI: u16 = 0x2;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;

pub const NFNL_SUBSYS_CTNETLINK: u8 = 1;
pub const IPCTNL_MSG_CT_NEW: u8 = 0;
pub const IPCTNL_MSG_CT_GET: u8 = 1;
pub const IPCTNL_MSG_CT_DELETE: u8 = 2;

/// Multicast groups (`enum nfnetlink_groups`).
pub const NFNLGRP_CONNTRACK_NEW: u32 = 1;
pub const NFNLGRP_CONNTRACK_UPDATE: u32 = 2;
pub const NFNLGRP_CONNTRACK_DESTROY: u32 = 3;

const NLA_TYPE_MASK: u16 = 0x3fff;

// enum ctattr_type
pub const CTA_TUPLE_ORIG: u16 = 1;
pub const CTA_TUPLE_REPLY: u16 = 2;
pub const CTA_STATUS: u16 = 3;
pub const CTA_PROTOINFO: u16 = 4;
pub const CTA_TIMEOUT: u16 = 7;
pub const CTA_MARK: u16 = 8;
pub const CTA_COUNTERS_ORIG: u16 = 9;
pub const CTA_COUNTERS_REPLY: u16 = 10;
pub const CTA_USE: u16 = 11;
pub const CTA_ID: u16 = 12;
pub const CTA_ZONE: u16 = 18;
pub const CTA_TIMESTAMP: u16 = 20;
// enum ctattr_tuple
pub const CTA_TUPLE_IP: u16 = 1;
pub const CTA_TUPLE_PROTO: u16 = 2;
// enum ctattr_ip
pub const CTA_IP_V4_SRC: u16 = 1;
pub const CTA_IP_V4_DST: u16 = 2;
pub const CTA_IP_V6_SRC: u16 = 3;
pub const CTA_IP_V6_DST: u16 = 4;
// enum ctattr_l4proto
pub const CTA_PROTO_NUM: u16 = 1;
pub const CTA_PROTO_SRC_PORT: u16 = 2;
pub const CTA_PROTO_DST_PORT: u16 = 3;
pub const CTA_PROTO_ICMP_ID: u16 = 4;
pub const CTA_PROTO_ICMP_TYPE: u16 = 5;
pub const CTA_PROTO_ICMP_CODE: u16 = 6;
pub const CTA_PROTO_ICMPV6_ID: u16 = 7;
pub const CTA_PROTO_ICMPV6_TYPE: u16 = 8;
pub const CTA_PROTO_ICMPV6_CODE: u16 = 9;
// enum ctattr_protoinfo / ctattr_protoinfo_tcp
pub const CTA_PROTOINFO_TCP: u16 = 1;
pub const CTA_PROTOINFO_TCP_STATE: u16 = 1;
// enum ctattr_counters
pub const CTA_COUNTERS_PACKETS: u16 = 1;
pub const CTA_COUNTERS_BYTES: u16 = 2;
pub const CTA_COUNTERS32_PACKETS: u16 = 3;
pub const CTA_COUNTERS32_BYTES: u16 = 4;
// enum ctattr_tstamp
pub const CTA_TIMESTAMP_START: u16 = 1;
pub const CTA_TIMESTAMP_STOP: u16 = 2;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("offset {offset}: {have} bytes left, too short for a netlink header")]
    ShortHeader { offset: usize, have: usize },
    #[error("offset {offset}: netlink message claims {len} bytes, {have} left")]
    BadLength { offset: usize, len: u32, have: usize },
    #[error("offset {offset}: ctnetlink message (type {nlmsg_type:#06x}): {what}")]
    Entry { offset: usize, nlmsg_type: u16, what: EntryError },
}

/// Why one conntrack message's body did not give an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("shorter than nfgenmsg")]
    NoNfgenmsg,
    #[error("attribute at body offset {0} is truncated")]
    TruncatedAttr(usize),
    #[error("no original tuple")]
    NoOrigTuple,
    #[error("no reply tuple")]
    NoReplyTuple,
    #[error("tuple without source or destination address")]
    NoAddress,
    #[error("tuple without protocol number")]
    NoProtocol,
    #[error("error message shorter than its errno")]
    ShortError,
}

/// One parsed netlink message.
// Messages are transient (parsed, matched, the entry moved on): no box for the big variant.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CtMessage {
    /// A conntrack entry: a dump reply (`multi`) or an event.
    Entry { kind: CtEventKind, flags: u16, seq: u32, entry: CtEntry },
    /// End of a dump.
    Done { seq: u32 },
    /// `NLMSG_ERROR`: `errno` is positive (0 is an ACK).
    Error { errno: i32, seq: u32 },
    /// `NLMSG_OVERRUN`: data was lost.
    Overrun,
    /// Anything else (NOOP, other subsystems, conntrack GET/expectation messages).
    Other { nlmsg_type: u16 },
}

/// Iterator over the messages of one datagram (see the module docs for error handling).
pub struct Messages<'a> {
    buf: &'a [u8],
    pos: usize,
    done: bool,
}

/// Parses the messages of one datagram (or several datagrams concatenated: netlink
/// messages are self-delimiting).
pub fn messages(buf: &[u8]) -> Messages<'_> {
    Messages { buf, pos: 0, done: false }
}

impl Iterator for Messages<'_> {
    type Item = Result<CtMessage, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.buf.len() {
            return None;
        }
        let offset = self.pos;
        let rest = self.buf.get(offset..).unwrap_or_default();
        let (Some(len), Some(nlmsg_type), Some(flags), Some(seq)) =
            (ne_u32(rest, 0), ne_u16(rest, 4), ne_u16(rest, 6), ne_u32(rest, 8))
        else {
            self.done = true;
            return Some(Err(WireError::ShortHeader { offset, have: rest.len() }));
        };
        let len_us = len as usize;
        if len_us < NLMSG_HDRLEN || len_us > rest.len() {
            self.done = true;
            return Some(Err(WireError::BadLength { offset, len, have: rest.len() }));
        }
        let body = rest.get(NLMSG_HDRLEN..len_us).unwrap_or_default();
        self.pos = offset.saturating_add(align4(len_us));
        Some(parse_message(offset, nlmsg_type, flags, seq, body))
    }
}

fn parse_message(offset: usize, nlmsg_type: u16, flags: u16, seq: u32, body: &[u8]) -> Result<CtMessage, WireError> {
    let err = |what| WireError::Entry { offset, nlmsg_type, what };
    match nlmsg_type {
        NLMSG_DONE => return Ok(CtMessage::Done { seq }),
        NLMSG_OVERRUN => return Ok(CtMessage::Overrun),
        NLMSG_ERROR => {
            let e = ne_i32(body, 0).ok_or(err(EntryError::ShortError))?;
            return Ok(CtMessage::Error { errno: e.checked_neg().unwrap_or(i32::MAX), seq });
        }
        _ => {}
    }
    let [subsys, msg] = nlmsg_type.to_be_bytes();
    let kind = match (subsys, msg) {
        (NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_NEW) if flags & (NLM_F_CREATE | NLM_F_EXCL) != 0 => CtEventKind::New,
        (NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_NEW) => CtEventKind::Update,
        (NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_DELETE) => CtEventKind::Destroy,
        _ => return Ok(CtMessage::Other { nlmsg_type }),
    };
    let entry = parse_entry(body).map_err(err)?;
    Ok(CtMessage::Entry { kind, flags, seq, entry })
}

/// Parses one conntrack message body (nfgenmsg + attributes) into an entry.
pub fn parse_entry(body: &[u8]) -> Result<CtEntry, EntryError> {
    let attrs = body.get(4..).ok_or(EntryError::NoNfgenmsg)?;
    let mut orig = None;
    let mut reply = None;
    let mut e = PartialEntry::default();
    for a in Attrs::new(attrs) {
        let a = a?;
        match a.kind {
            CTA_TUPLE_ORIG => orig = Some(parse_tuple(a.value)?),
            CTA_TUPLE_REPLY => reply = Some(parse_tuple(a.value)?),
            CTA_STATUS => e.status = be_u32(a.value).map(CtStatus),
            CTA_PROTOINFO => e.tcp_state = parse_protoinfo(a.value)?,
            CTA_TIMEOUT => e.timeout_s = be_u32(a.value),
            CTA_MARK => e.mark = be_u32(a.value),
            CTA_COUNTERS_ORIG => e.counters_orig = parse_counters(a.value)?,
            CTA_COUNTERS_REPLY => e.counters_reply = parse_counters(a.value)?,
            CTA_USE => e.use_count = be_u32(a.value),
            CTA_ID => e.id = be_u32(a.value),
            CTA_ZONE => e.zone = be_u16(a.value).filter(|&z| z != 0),
            CTA_TIMESTAMP => {
                for t in Attrs::new(a.value) {
                    let t = t?;
                    match t.kind {
                        CTA_TIMESTAMP_START => e.start_ns = be_u64(t.value),
                        CTA_TIMESTAMP_STOP => e.stop_ns = be_u64(t.value),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let (proto, orig) = orig.ok_or(EntryError::NoOrigTuple)?;
    let (_, reply) = reply.ok_or(EntryError::NoReplyTuple)?;
    let counters = match (e.counters_orig, e.counters_reply) {
        (None, None) => None,
        (o, r) => Some((o.unwrap_or_default(), r.unwrap_or_default())),
    };
    Ok(CtEntry {
        netns: Netns::Current,
        id: e.id,
        proto,
        orig,
        reply,
        tcp_state: if proto == CtProto::Tcp { e.tcp_state } else { None },
        status: e.status.unwrap_or_default(),
        timeout_s: e.timeout_s,
        mark: e.mark,
        zone: e.zone,
        use_count: e.use_count,
        counters,
        start_ns: e.start_ns,
        stop_ns: e.stop_ns,
    })
}

#[derive(Default)]
struct PartialEntry {
    id: Option<u32>,
    status: Option<CtStatus>,
    tcp_state: Option<TcpCtState>,
    timeout_s: Option<u32>,
    mark: Option<u32>,
    zone: Option<u16>,
    use_count: Option<u32>,
    counters_orig: Option<CtCounters>,
    counters_reply: Option<CtCounters>,
    start_ns: Option<u64>,
    stop_ns: Option<u64>,
}

fn parse_tuple(buf: &[u8]) -> Result<(CtProto, CtTuple), EntryError> {
    let (mut src, mut dst) = (None, None);
    let mut proto = None;
    let (mut sport, mut dport) = (0u16, 0u16);
    let mut icmp: Option<IcmpKey> = None;
    for a in Attrs::new(buf) {
        let a = a?;
        match a.kind {
            CTA_TUPLE_IP => {
                for ip in Attrs::new(a.value) {
                    let ip = ip?;
                    match ip.kind {
                        CTA_IP_V4_SRC => src = v4(ip.value).or(src),
                        CTA_IP_V4_DST => dst = v4(ip.value).or(dst),
                        CTA_IP_V6_SRC => src = v6(ip.value).or(src),
                        CTA_IP_V6_DST => dst = v6(ip.value).or(dst),
                        _ => {}
                    }
                }
            }
            CTA_TUPLE_PROTO => {
                for p in Attrs::new(a.value) {
                    let p = p?;
                    match p.kind {
                        CTA_PROTO_NUM => proto = p.value.first().copied().or(proto),
                        CTA_PROTO_SRC_PORT => sport = be_u16(p.value).unwrap_or(sport),
                        CTA_PROTO_DST_PORT => dport = be_u16(p.value).unwrap_or(dport),
                        CTA_PROTO_ICMP_ID | CTA_PROTO_ICMPV6_ID => {
                            let k = icmp.get_or_insert_with(IcmpKey::default);
                            k.id = be_u16(p.value).unwrap_or(k.id);
                        }
                        CTA_PROTO_ICMP_TYPE | CTA_PROTO_ICMPV6_TYPE => {
                            let k = icmp.get_or_insert_with(IcmpKey::default);
                            k.kind = p.value.first().copied().unwrap_or(k.kind);
                        }
                        CTA_PROTO_ICMP_CODE | CTA_PROTO_ICMPV6_CODE => {
                            let k = icmp.get_or_insert_with(IcmpKey::default);
                            k.code = p.value.first().copied().unwrap_or(k.code);
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let (Some(src), Some(dst)) = (src, dst) else { return Err(EntryError::NoAddress) };
    let proto = CtProto::from_number(proto.ok_or(EntryError::NoProtocol)?);
    Ok((proto, CtTuple { src, dst, sport, dport, icmp }))
}

fn parse_protoinfo(buf: &[u8]) -> Result<Option<TcpCtState>, EntryError> {
    for a in Attrs::new(buf) {
        let a = a?;
        if a.kind == CTA_PROTOINFO_TCP {
            for t in Attrs::new(a.value) {
                let t = t?;
                if t.kind == CTA_PROTOINFO_TCP_STATE {
                    return Ok(t.value.first().map(|&s| TcpCtState::from_number(s)));
                }
            }
        }
    }
    Ok(None)
}

fn parse_counters(buf: &[u8]) -> Result<Option<CtCounters>, EntryError> {
    let mut c = None::<CtCounters>;
    for a in Attrs::new(buf) {
        let a = a?;
        let v = match a.kind {
            CTA_COUNTERS_PACKETS | CTA_COUNTERS_BYTES => be_u64(a.value),
            CTA_COUNTERS32_PACKETS | CTA_COUNTERS32_BYTES => be_u32(a.value).map(u64::from),
            _ => None,
        };
        if let Some(v) = v {
            let k = c.get_or_insert_with(CtCounters::default);
            if matches!(a.kind, CTA_COUNTERS_PACKETS | CTA_COUNTERS32_PACKETS) {
                k.packets = v;
            } else {
                k.bytes = v;
            }
        }
    }
    Ok(c)
}

/// One attribute: type without the NESTED/NET_BYTEORDER flags, and its value.
struct Attr<'a> {
    kind: u16,
    value: &'a [u8],
}

/// Iterator over a run of attributes; a truncated attribute ends it with an error.
struct Attrs<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Attrs<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Attrs { buf, pos: 0 }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, EntryError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.buf.get(self.pos..)?;
        if rest.is_empty() {
            return None;
        }
        let at = self.pos;
        let (Some(len), Some(kind)) = (ne_u16(rest, 0), ne_u16(rest, 2)) else {
            self.pos = self.buf.len();
            return Some(Err(EntryError::TruncatedAttr(at)));
        };
        let len = len as usize;
        let Some(value) = rest.get(4..len).filter(|_| len >= 4) else {
            self.pos = self.buf.len();
            return Some(Err(EntryError::TruncatedAttr(at)));
        };
        self.pos = at.saturating_add(align4(len));
        Some(Ok(Attr { kind: kind & NLA_TYPE_MASK, value }))
    }
}

/// The request for a full table dump (IPv4 and IPv6).
pub fn dump_request(seq: u32) -> [u8; 20] {
    let mut b = [0u8; 20];
    b[0..4].copy_from_slice(&20u32.to_ne_bytes());
    let t = u16::from_be_bytes([NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET]);
    b[4..6].copy_from_slice(&t.to_ne_bytes());
    b[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    b[8..12].copy_from_slice(&seq.to_ne_bytes());
    // pid 0 (the kernel); nfgenmsg: AF_UNSPEC, NFNETLINK_V0, res_id 0.
    b
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

fn arr<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}
fn ne_u16(b: &[u8], at: usize) -> Option<u16> {
    arr(b, at).map(u16::from_ne_bytes)
}
fn ne_u32(b: &[u8], at: usize) -> Option<u32> {
    arr(b, at).map(u32::from_ne_bytes)
}
fn ne_i32(b: &[u8], at: usize) -> Option<i32> {
    arr(b, at).map(i32::from_ne_bytes)
}
fn be_u16(b: &[u8]) -> Option<u16> {
    arr(b, 0).map(u16::from_be_bytes)
}
fn be_u32(b: &[u8]) -> Option<u32> {
    arr(b, 0).map(u32::from_be_bytes)
}
fn be_u64(b: &[u8]) -> Option<u64> {
    arr(b, 0).map(u64::from_be_bytes)
}
fn v4(b: &[u8]) -> Option<IpAddr> {
    arr::<4>(b, 0).map(|a| IpAddr::V4(Ipv4Addr::from(a)))
}
fn v6(b: &[u8]) -> Option<IpAddr> {
    arr::<16>(b, 0).map(|a| IpAddr::V6(Ipv6Addr::from(a)))
}

/// Builds messages in the kernel's layout, for tests (and fuzz seeds).
#[doc(hidden)]
pub mod build {
    use super::*;

    pub fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let len = 4 + value.len();
        let mut v = Vec::with_capacity(align4(len));
        v.extend_from_slice(&(len as u16).to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(value);
        v.resize(align4(len), 0);
        v
    }

    pub fn nested(kind: u16, parts: &[Vec<u8>]) -> Vec<u8> {
        attr(kind | 0x8000, &parts.concat())
    }

    pub fn tuple(kind: u16, src: IpAddr, dst: IpAddr, proto: u8, sport: u16, dport: u16) -> Vec<u8> {
        let ip = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                vec![attr(CTA_IP_V4_SRC, &s.octets()), attr(CTA_IP_V4_DST, &d.octets())]
            }
            (s, d) => {
                let six = |a: IpAddr| match a {
                    IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
                    IpAddr::V6(a) => a.octets(),
                };
                vec![attr(CTA_IP_V6_SRC, &six(s)), attr(CTA_IP_V6_DST, &six(d))]
            }
        };
        let l4 = vec![
            attr(CTA_PROTO_NUM, &[proto]),
            attr(CTA_PROTO_SRC_PORT, &sport.to_be_bytes()),
            attr(CTA_PROTO_DST_PORT, &dport.to_be_bytes()),
        ];
        nested(kind, &[nested(CTA_TUPLE_IP, &ip), nested(CTA_TUPLE_PROTO, &l4)])
    }

    pub fn message(msg: u8, flags: u16, seq: u32, attrs: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = [vec![0u8, 0, 0, 0]].iter().chain(attrs).flatten().copied().collect();
        let len = NLMSG_HDRLEN + body.len();
        let mut v = Vec::with_capacity(len);
        v.extend_from_slice(&(len as u32).to_ne_bytes());
        v.extend_from_slice(&u16::from_be_bytes([NFNL_SUBSYS_CTNETLINK, msg]).to_ne_bytes());
        v.extend_from_slice(&flags.to_ne_bytes());
        v.extend_from_slice(&seq.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v.extend_from_slice(&body);
        v
    }

    pub fn done(seq: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&20u32.to_ne_bytes());
        v.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        v.extend_from_slice(&NLM_F_MULTI.to_ne_bytes());
        v.extend_from_slice(&seq.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v.extend_from_slice(&0i32.to_ne_bytes());
        v
    }

    pub fn error(seq: u32, errno: i32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&36u32.to_ne_bytes());
        v.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        v.extend_from_slice(&0u16.to_ne_bytes());
        v.extend_from_slice(&seq.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v.extend_from_slice(&(-errno).to_ne_bytes());
        v.extend_from_slice(&[0u8; 16]);
        v
    }

    pub use super::{CTA_ID, CTA_MARK, CTA_PROTOINFO, CTA_STATUS, CTA_TIMEOUT, CTA_TIMESTAMP, CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_ZONE};

    pub fn tcp_state(state: u8) -> Vec<u8> {
        nested(CTA_PROTOINFO, &[nested(CTA_PROTOINFO_TCP, &[attr(CTA_PROTOINFO_TCP_STATE, &[state])])])
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn seed_entry_msg(msg: u8, flags: u16) -> Vec<u8> {
        message(
            msg,
            flags,
            7,
            &[
                tuple(CTA_TUPLE_ORIG, ip("127.0.0.1"), ip("127.0.0.1"), 6, 39658, 55001),
                tuple(CTA_TUPLE_REPLY, ip("192.168.49.2"), ip("192.168.49.1"), 6, 8443, 39658),
                attr(CTA_STATUS, &(CtStatus::SEEN_REPLY | CtStatus::ASSURED | CtStatus::DST_NAT).to_be_bytes()),
                tcp_state(3),
                attr(CTA_TIMEOUT, &432000u32.to_be_bytes()),
                attr(CTA_MARK, &0u32.to_be_bytes()),
                attr(CTA_ID, &2727558185u32.to_be_bytes()),
                attr(CTA_ZONE, &5u16.to_be_bytes()),
                nested(CTA_TIMESTAMP, &[attr(1, &1_795_928_335_000_000_000u64.to_be_bytes())]),
            ],
        )
    }

    #[test]
    fn parses_a_built_entry() {
        let m = seed_entry_msg(IPCTNL_MSG_CT_NEW, NLM_F_CREATE | NLM_F_EXCL);
        let got: Vec<_> = messages(&m).collect();
        assert_eq!(got.len(), 1);
        let CtMessage::Entry { kind, seq, entry, .. } = got[0].clone().unwrap() else { panic!("{got:?}") };
        assert_eq!((kind, seq), (CtEventKind::New, 7));
        assert_eq!(entry.proto, CtProto::Tcp);
        assert_eq!(entry.orig.to_string(), "127.0.0.1:39658 -> 127.0.0.1:55001");
        assert_eq!(entry.reply.to_string(), "192.168.49.2:8443 -> 192.168.49.1:39658");
        assert_eq!(entry.tcp_state, Some(TcpCtState::Established));
        assert!(entry.status.assured() && entry.status.has(CtStatus::DST_NAT));
        assert_eq!((entry.timeout_s, entry.mark, entry.id, entry.zone), (Some(432000), Some(0), Some(2727558185), Some(5)));
        assert_eq!(entry.start_ns, Some(1_795_928_335_000_000_000));
        assert_eq!(entry.stop_ns, None);
    }

    #[test]
    fn event_kinds_from_type_and_flags() {
        let kind = |m: Vec<u8>| match messages(&m).next() {
            Some(Ok(CtMessage::Entry { kind, .. })) => kind,
            other => panic!("{other:?}"),
        };
        assert_eq!(kind(seed_entry_msg(IPCTNL_MSG_CT_NEW, NLM_F_CREATE | NLM_F_EXCL)), CtEventKind::New);
        assert_eq!(kind(seed_entry_msg(IPCTNL_MSG_CT_NEW, 0)), CtEventKind::Update);
        assert_eq!(kind(seed_entry_msg(IPCTNL_MSG_CT_NEW, NLM_F_MULTI)), CtEventKind::Update);
        assert_eq!(kind(seed_entry_msg(IPCTNL_MSG_CT_DELETE, 0)), CtEventKind::Destroy);
    }

    #[test]
    fn datagram_with_several_messages_done_and_error() {
        let mut d = seed_entry_msg(IPCTNL_MSG_CT_NEW, NLM_F_MULTI);
        d.extend(seed_entry_msg(IPCTNL_MSG_CT_NEW, NLM_F_MULTI));
        d.extend(done(7));
        d.extend(error(8, libc::EPERM));
        let got: Vec<_> = messages(&d).map(Result::unwrap).collect();
        assert_eq!(got.len(), 4);
        assert_eq!(got[2], CtMessage::Done { seq: 7 });
        assert_eq!(got[3], CtMessage::Error { errno: libc::EPERM, seq: 8 });
    }

    #[test]
    fn ipv6_tuples() {
        let m = message(
            IPCTNL_MSG_CT_NEW,
            0,
            1,
            &[
                tuple(CTA_TUPLE_ORIG, ip("fd00:65::1"), ip("fd00:65::2"), 17, 5000, 41000),
                tuple(CTA_TUPLE_REPLY, ip("fd00:65::2"), ip("fd00:65::1"), 17, 41000, 5000),
            ],
        );
        let Some(Ok(CtMessage::Entry { entry, .. })) = messages(&m).next() else { panic!() };
        assert_eq!(entry.proto, CtProto::Udp);
        assert_eq!(entry.orig.to_string(), "[fd00:65::1]:5000 -> [fd00:65::2]:41000");
        assert!(entry.rewrite().is_none());
        assert_eq!(entry.tcp_state, None);
    }

    #[test]
    fn broken_bodies_are_errors_and_parsing_goes_on() {
        // Missing reply tuple.
        let mut d = message(IPCTNL_MSG_CT_NEW, 0, 1, &[tuple(CTA_TUPLE_ORIG, ip("1.1.1.1"), ip("2.2.2.2"), 6, 1, 2)]);
        d.extend(seed_entry_msg(IPCTNL_MSG_CT_NEW, 0));
        let got: Vec<_> = messages(&d).collect();
        assert!(matches!(got[0], Err(WireError::Entry { what: EntryError::NoReplyTuple, .. })), "{got:?}");
        assert!(got[1].is_ok());
        // A truncated attribute inside.
        let mut m = seed_entry_msg(IPCTNL_MSG_CT_NEW, 0);
        let n = m.len();
        m[n - 12..n - 10].copy_from_slice(&200u16.to_ne_bytes());
        assert!(matches!(messages(&m).next(), Some(Err(WireError::Entry { what: EntryError::TruncatedAttr(_), .. }))));
    }

    #[test]
    fn broken_framing_ends_the_datagram() {
        let mut d = seed_entry_msg(IPCTNL_MSG_CT_NEW, 0);
        let good = d.len();
        d.extend(seed_entry_msg(IPCTNL_MSG_CT_NEW, 0));
        d.truncate(good + 30);
        let got: Vec<_> = messages(&d).collect();
        assert_eq!(got.len(), 2);
        assert!(matches!(got[1], Err(WireError::BadLength { .. })));
        let got: Vec<_> = messages(&[1, 2, 3]).collect();
        assert!(matches!(got[..], [Err(WireError::ShortHeader { have: 3, .. })]));
        // Length smaller than a header.
        let mut z = seed_entry_msg(IPCTNL_MSG_CT_NEW, 0);
        z[0..4].copy_from_slice(&4u32.to_ne_bytes());
        assert!(matches!(messages(&z).next(), Some(Err(WireError::BadLength { len: 4, .. }))));
    }

    #[test]
    fn every_prefix_and_every_byte_flip_is_total() {
        let mut d = seed_entry_msg(IPCTNL_MSG_CT_NEW, NLM_F_MULTI);
        d.extend(done(1));
        for n in 0..=d.len() {
            let _ = messages(&d[..n]).count();
        }
        for i in 0..d.len() {
            for v in [0u8, 1, 3, 4, 0x7f, 0x80, 0xff] {
                let mut x = d.clone();
                x[i] = v;
                for m in messages(&x).flatten() {
                    if let CtMessage::Entry { entry, .. } = m {
                        let _ = (entry.rewrite(), entry.to_string());
                    }
                }
            }
        }
    }

    #[test]
    fn dump_request_layout() {
        let r = dump_request(42);
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().unwrap()), 20);
        assert_eq!(u16::from_ne_bytes(r[4..6].try_into().unwrap()), 0x0101);
        assert_eq!(u16::from_ne_bytes(r[6..8].try_into().unwrap()), NLM_F_REQUEST | NLM_F_DUMP);
        assert_eq!(u32::from_ne_bytes(r[8..12].try_into().unwrap()), 42);
        assert_eq!(&r[16..], &[0, 0, 0, 0]);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            for m in messages(&bytes).flatten() {
                if let CtMessage::Entry { entry, .. } = m {
                    let _ = (entry.rewrite(), entry.to_string());
                }
            }
        }
    }
}
