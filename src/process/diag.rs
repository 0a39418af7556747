//! sock_diag (`NETLINK_SOCK_DIAG`, the interface `ss` uses): one socket looked up by its
//! addresses in the kernel's hash tables, in microseconds, instead of reading a whole
//! `/proc/net/tcp`. Pure request builder and reply parser here; the socket is in `source`.
//!
//! ```text
//! request: nlmsghdr (type SOCK_DIAG_BY_FAMILY = 20, NLM_F_REQUEST)
//!          inet_diag_req_v2 { u8 family, u8 protocol, u8 ext, u8 pad, u32 states,
//!                             inet_diag_sockid id }                               56 bytes
//! sockid:  be16 sport, be16 dport, be32 src[4], be32 dst[4], u32 if, u32 cookie[2]  48 bytes
//! reply:   nlmsghdr + inet_diag_msg { u8 family, u8 state, u8 timer, u8 retrans, sockid id,
//!                             u32 expires, rqueue, wqueue, uid, inode }           72 bytes
//!          or NLMSG_ERROR (ENOENT: no such socket)
//! ```
//!
//! Kernel lookup semantics (net/ipv4/inet_diag.c, udp_diag.c): TCP finds the established
//! socket (also TIME_WAIT and request sockets, inode 0) and otherwise the listener on the
//! local address; UDP finds the best-matching socket, connected or only bound. For UDP the
//! kernel reads the request's `src`/`sport` as the *remote* end ("swapped for historical
//! reasons"); replies always give the socket's own local end as `src`.

use super::{SockProto, SockState, SocketKey, SocketRow};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const REQ_LEN: usize = 16 + 56;
const MSG_LEN: usize = 72;

/// The request for one socket. IPv4 (or IPv4-mapped) keys are asked as AF_INET, which also
/// finds dual-stack sockets holding IPv4 connections.
pub fn request(seq: u32, key: &SocketKey) -> [u8; REQ_LEN] {
    let local = SocketAddr::new(key.local.ip().to_canonical(), key.local.port());
    let remote = SocketAddr::new(key.remote.ip().to_canonical(), key.remote.port());
    let v4 = local.is_ipv4() && (remote.is_ipv4() || remote.ip().is_unspecified());
    let mut b = [0u8; REQ_LEN];
    b[0..4].copy_from_slice(&(REQ_LEN as u32).to_ne_bytes());
    b[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    b[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    b[8..12].copy_from_slice(&seq.to_ne_bytes());
    let r = &mut b[16..];
    r[0] = if v4 { AF_INET } else { AF_INET6 };
    r[1] = match key.proto {
        SockProto::Tcp => 6,
        SockProto::Udp => 17,
    };
    r[4..8].copy_from_slice(&u32::MAX.to_ne_bytes()); // every state
    let (src, dst) = match key.proto {
        SockProto::Tcp => (local, remote),
        SockProto::Udp => (remote, local),
    };
    let id = &mut r[8..56];
    id[0..2].copy_from_slice(&src.port().to_be_bytes());
    id[2..4].copy_from_slice(&dst.port().to_be_bytes());
    id[4..20].copy_from_slice(&addr_bytes(src.ip(), v4));
    id[20..36].copy_from_slice(&addr_bytes(dst.ip(), v4));
    id[40..48].copy_from_slice(&[0xff; 8]); // INET_DIAG_NOCOOKIE
    b
}

fn addr_bytes(ip: IpAddr, v4: bool) -> [u8; 16] {
    let mut out = [0u8; 16];
    match ip {
        IpAddr::V4(a) if v4 => out[..4].copy_from_slice(&a.octets()),
        IpAddr::V4(a) => out = a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) if v4 && a.is_unspecified() => {}
        IpAddr::V6(a) => out = a.octets(),
    }
    out
}

/// What one reply datagram says about the request `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Found(SocketRow),
    /// `ENOENT`: no socket matches.
    NotFound,
    /// Another error (`errno`, positive).
    Error(i32),
    /// Nothing for this request in the datagram (stale replies, other types): keep reading.
    Nothing,
}

/// Parses a reply datagram for request `seq`. Total: malformed data gives `Nothing`.
pub fn parse_reply(buf: &[u8], seq: u32, proto: SockProto) -> Reply {
    let mut pos = 0usize;
    while let Some(rest) = buf.get(pos..).filter(|r| r.len() >= 16) {
        let len = ne_u32(rest, 0).unwrap_or(0) as usize;
        let (Some(kind), Some(s)) = (ne_u16(rest, 4), ne_u32(rest, 8)) else { break };
        if len < 16 || len > rest.len() {
            break;
        }
        let body = rest.get(16..len).unwrap_or_default();
        if s == seq {
            match kind {
                NLMSG_ERROR => {
                    let e = ne_u32(body, 0).map(|e| (e as i32).checked_neg().unwrap_or(i32::MAX));
                    return match e {
                        Some(0) | None => Reply::Nothing,
                        Some(libc::ENOENT) => Reply::NotFound,
                        Some(e) => Reply::Error(e),
                    };
                }
                SOCK_DIAG_BY_FAMILY => {
                    if let Some(row) = parse_msg(body, proto) {
                        return Reply::Found(row);
                    }
                }
                _ => {}
            }
        }
        pos = pos.saturating_add((len + 3) & !3);
    }
    Reply::Nothing
}

/// Parses one `inet_diag_msg`.
pub fn parse_msg(b: &[u8], proto: SockProto) -> Option<SocketRow> {
    if b.len() < MSG_LEN {
        return None;
    }
    let family = *b.first()?;
    let state = *b.get(1)?;
    let id = b.get(4..52)?;
    let sport = u16::from_be_bytes(id.get(0..2)?.try_into().ok()?);
    let dport = u16::from_be_bytes(id.get(2..4)?.try_into().ok()?);
    let ip = |raw: &[u8]| -> Option<IpAddr> {
        match family {
            AF_INET => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(raw.get(0..4)?).ok()?))),
            AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(raw.get(0..16)?).ok()?))),
            _ => None,
        }
    };
    let src = ip(id.get(4..20)?)?;
    let dst = ip(id.get(20..36)?)?;
    let uid = ne_u32(b, 64)?;
    let inode = ne_u32(b, 68)?;
    Some(SocketRow {
        proto,
        local: SocketAddr::new(src, sport),
        remote: SocketAddr::new(dst, dport),
        state: SockState::from_number(state),
        uid,
        inode: u64::from(inode),
    })
}

fn ne_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}
fn ne_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply_msg(seq: u32, row: &SocketRow) -> Vec<u8> {
        let mut m = vec![0u8; 16 + MSG_LEN];
        m[0..4].copy_from_slice(&((16 + MSG_LEN) as u32).to_ne_bytes());
        m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        m[8..12].copy_from_slice(&seq.to_ne_bytes());
        let b = &mut m[16..];
        let v4 = row.local.is_ipv4();
        b[0] = if v4 { AF_INET } else { AF_INET6 };
        b[1] = 1;
        b[4..6].copy_from_slice(&row.local.port().to_be_bytes());
        b[6..8].copy_from_slice(&row.remote.port().to_be_bytes());
        b[8..24].copy_from_slice(&addr_bytes(row.local.ip(), v4));
        b[24..40].copy_from_slice(&addr_bytes(row.remote.ip(), v4));
        b[64..68].copy_from_slice(&row.uid.to_ne_bytes());
        b[68..72].copy_from_slice(&(row.inode as u32).to_ne_bytes());
        m
    }

    fn row(l: &str, r: &str) -> SocketRow {
        SocketRow {
            proto: SockProto::Tcp,
            local: l.parse().unwrap(),
            remote: r.parse().unwrap(),
            state: SockState::Established,
            uid: 7,
            inode: 4242,
        }
    }

    #[test]
    fn request_layout_tcp_and_udp() {
        let k = SocketKey::tcp("127.0.0.1:49673".parse().unwrap(), "127.0.0.1:40000".parse().unwrap());
        let r = request(9, &k);
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().unwrap()), 72);
        assert_eq!((r[16], r[17]), (AF_INET, 6));
        assert_eq!(&r[24..26], &49673u16.to_be_bytes());
        assert_eq!(&r[26..28], &40000u16.to_be_bytes());
        assert_eq!(&r[28..32], &[127, 0, 0, 1]);
        assert_eq!(&r[64..72], &[0xff; 8]);
        // UDP: the kernel reads src as the remote end.
        let u = request(1, &SocketKey::udp("192.168.65.2:41000".parse().unwrap(), "192.168.65.1:5000".parse().unwrap()));
        assert_eq!((u[16], u[17]), (AF_INET, 17));
        assert_eq!(&u[24..26], &5000u16.to_be_bytes());
        assert_eq!(&u[28..32], &[192, 168, 65, 1]);
        // IPv6, and mapped addresses asked as IPv4.
        let six = request(1, &SocketKey::tcp("[fd00:65::2]:49700".parse().unwrap(), "[fd00:65::1]:5".parse().unwrap()));
        assert_eq!(six[16], AF_INET6);
        let mapped = request(1, &SocketKey::tcp("[::ffff:127.0.0.1]:1".parse().unwrap(), "0.0.0.0:0".parse().unwrap()));
        assert_eq!(mapped[16], AF_INET);
    }

    #[test]
    fn replies() {
        let r = row("127.0.0.1:49673", "127.0.0.1:40000");
        let m = reply_msg(5, &r);
        assert_eq!(parse_reply(&m, 5, SockProto::Tcp), Reply::Found(r));
        assert_eq!(parse_reply(&m, 6, SockProto::Tcp), Reply::Nothing);
        let six = row("[fd00:65::2]:49700", "[fd00:65::1]:5");
        assert_eq!(parse_reply(&reply_msg(1, &six), 1, SockProto::Tcp), Reply::Found(six));
        let mut e = vec![0u8; 36];
        e[0..4].copy_from_slice(&36u32.to_ne_bytes());
        e[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        e[8..12].copy_from_slice(&3u32.to_ne_bytes());
        e[16..20].copy_from_slice(&(-libc::ENOENT).to_ne_bytes());
        assert_eq!(parse_reply(&e, 3, SockProto::Tcp), Reply::NotFound);
        e[16..20].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        assert_eq!(parse_reply(&e, 3, SockProto::Tcp), Reply::Error(libc::EPERM));
        for n in 0..m.len() {
            assert_eq!(parse_reply(&m[..n], 5, SockProto::Tcp), Reply::Nothing);
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200), seq in 0u32..4) {
            let _ = parse_reply(&bytes, seq, SockProto::Udp);
            let _ = parse_msg(&bytes, SockProto::Tcp);
        }
    }
}
