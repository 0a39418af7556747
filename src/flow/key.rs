//! Flow keys: which packets belong to one observation, and who is client and server.
//!
//! A [`FlowKey`] is bidirectional: both directions of a conversation map to the same key
//! (the two endpoints are stored in a canonical order, `lo <= hi`). It includes the capture
//! point, so the same packet seen at two points yields two keys, two observations.

use std::fmt;
use std::net::IpAddr;

/// The transport protocol of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    /// ICMP (IPv4). Ports are Zeek's: the originator's "port" is the ICMP type, the
    /// responder's the code (see [`icmp_ports`]).
    Icmp,
    /// ICMPv6, ports as for [`Proto::Icmp`].
    Icmp6,
}

impl Proto {
    pub const fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
            Proto::Icmp6 => "icmp6",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Proto {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// One side of a flow: address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub addr: IpAddr,
    pub port: u16,
}

impl Endpoint {
    pub const fn new(addr: IpAddr, port: u16) -> Endpoint {
        Endpoint { addr, port }
    }
}

/// `IP:PORT`, IPv6 as `[addr]:port` (DESIGN.md).
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

/// As `Display` writes it, through [`crate::json::addr`] like every address in JSON (the
/// same text, at a fraction of `collect_str`'s cost).
impl serde::Serialize for Endpoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::json::addr(&std::net::SocketAddr::new(self.addr, self.port), s)
    }
}

/// Which of the key's two endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Lo,
    Hi,
}

/// The bidirectional key of one observation: point, protocol, and the two endpoints in
/// canonical order (`lo <= hi`).
///
/// `Hash` writes the key as one 48-byte block (see `FlowKey::packed`): the flow table
/// hashes a key for every packet with std's keyed SipHash (hostile traffic cannot aim at
/// one bucket; foldhash, faster, says itself it is not for long-running programs whose
/// input an attacker crafts, which a live capture is). The derived `Hash`, ten small
/// writes, took 13% of a flow analysis' instructions; one write of the same fields costs
/// half as much.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowKey {
    pub point: u32,
    pub proto: Proto,
    pub lo: Endpoint,
    pub hi: Endpoint,
}

impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write(&self.packed());
    }
}

impl FlowKey {
    /// The key of a packet from `src` to `dst`, and which side of it the sender is.
    pub fn of_packet(point: u32, proto: Proto, src: Endpoint, dst: Endpoint) -> (FlowKey, Side) {
        if src <= dst {
            (FlowKey { point, proto, lo: src, hi: dst }, Side::Lo)
        } else {
            (FlowKey { point, proto, lo: dst, hi: src }, Side::Hi)
        }
    }

    /// Every field in 48 bytes: point, protocol, each endpoint's family and port, then
    /// each address (IPv4 in the first 4 of its 16 bytes). Equal keys pack equally, and
    /// the family bytes keep an IPv4 address apart from an IPv6 one with the same bytes.
    fn packed(&self) -> [u8; 48] {
        let mut b = [0u8; 48];
        b[..4].copy_from_slice(&self.point.to_le_bytes());
        b[4] = self.proto as u8;
        for (i, e) in [self.lo, self.hi].into_iter().enumerate() {
            let at = 8 + 16 * i;
            let (family, bytes): (u8, [u8; 16]) = match e.addr {
                IpAddr::V4(a) => {
                    let mut v = [0u8; 16];
                    v[..4].copy_from_slice(&a.octets());
                    (4, v)
                }
                IpAddr::V6(a) => (6, a.octets()),
            };
            b[5 + i] = family;
            b[at..at + 16].copy_from_slice(&bytes);
            b[40 + 2 * i..42 + 2 * i].copy_from_slice(&e.port.to_le_bytes());
        }
        b
    }

    pub const fn endpoint(&self, side: Side) -> Endpoint {
        match side {
            Side::Lo => self.lo,
            Side::Hi => self.hi,
        }
    }
}

/// Ports below this are "well known": a server's.
const WELL_KNOWN: u16 = 1024;
/// Linux's default ephemeral range starts here (IANA's at 49152): ports at or above it are
/// a client's when the other port is below it.
const EPHEMERAL: u16 = 32768;

/// Midstream role heuristic: is the packet's *destination* the server? A well-known port
/// (< 1024) against a non-well-known one is the server's; else a port below the ephemeral
/// range against one inside it is the server's; otherwise the first packet's sender is taken
/// as the client (its destination is the server).
pub fn destination_is_server(src_port: u16, dst_port: u16) -> bool {
    let class = |p: u16| {
        if p < WELL_KNOWN {
            0
        } else if p < EPHEMERAL {
            1
        } else {
            2
        }
    };
    class(dst_port) <= class(src_port)
}

/// Zeek's ICMP "ports": for request/reply pairs, both directions map to one flow whose
/// originator is the requester, with the request type as its port and the code as the
/// responder's; any other message is its own flow from the sender, `type -> code`.
///
/// Returns `(src_port, dst_port, sender_is_originator)`.
pub fn icmp_ports(v6: bool, kind: u8, code: u8) -> (u16, u16, bool) {
    // (request, reply) pairs as Zeek's ICMP analyzer pairs them: echo, router solicitation
    // and advertisement, timestamp, information, address mask; v6: echo, MLD query and
    // report, router and neighbor solicitation and advertisement, node information.
    let pairs: &[(u8, u8)] = if v6 {
        &[(128, 129), (130, 131), (133, 134), (135, 136), (139, 140)]
    } else {
        &[(8, 0), (10, 9), (13, 14), (15, 16), (17, 18)]
    };
    for &(request, reply) in pairs {
        if kind == request {
            return (u16::from(request), u16::from(code), true);
        }
        if kind == reply {
            return (u16::from(code), u16::from(request), false);
        }
    }
    (u16::from(kind), u16::from(code), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str, port: u16) -> Endpoint {
        Endpoint::new(s.parse().unwrap(), port)
    }

    #[test]
    fn both_directions_share_a_key() {
        let a = ep("10.0.0.2", 40000);
        let b = ep("10.0.0.1", 80);
        let (k1, s1) = FlowKey::of_packet(3, Proto::Tcp, a, b);
        let (k2, s2) = FlowKey::of_packet(3, Proto::Tcp, b, a);
        assert_eq!(k1, k2);
        assert_ne!(s1, s2);
        assert_eq!(k1.endpoint(s1), a);
        let (k3, _) = FlowKey::of_packet(4, Proto::Tcp, a, b);
        assert_ne!(k1, k3, "another point is another observation");
    }

    #[test]
    fn packed_keys_tell_every_field_apart() {
        let base = FlowKey::of_packet(1, Proto::Tcp, ep("10.0.0.1", 80), ep("10.0.0.2", 40000)).0;
        let variants = [
            FlowKey { point: 2, ..base },
            FlowKey { proto: Proto::Udp, ..base },
            FlowKey { lo: ep("10.0.0.3", 80), ..base },
            FlowKey { lo: ep("10.0.0.1", 81), ..base },
            FlowKey { hi: ep("10.0.0.2", 40001), ..base },
            // The same 4 bytes as IPv6 (`a00:1::`), and IPv4-mapped: other keys.
            FlowKey { lo: ep("a00:1::", 80), ..base },
            FlowKey { lo: ep("::ffff:10.0.0.1", 80), ..base },
            // Ports swapped between the endpoints.
            FlowKey { lo: ep("10.0.0.1", 40000), hi: ep("10.0.0.2", 80), ..base },
        ];
        let mut seen = vec![base.packed()];
        for v in variants {
            assert_ne!(v, base);
            assert!(!seen.contains(&v.packed()), "{v:?} packs like an earlier key");
            seen.push(v.packed());
        }
        // Both directions: one key, one hash.
        let rs = std::hash::RandomState::new();
        let again = FlowKey::of_packet(1, Proto::Tcp, ep("10.0.0.2", 40000), ep("10.0.0.1", 80)).0;
        assert_eq!(std::hash::BuildHasher::hash_one(&rs, base), std::hash::BuildHasher::hash_one(&rs, again));
    }

    #[test]
    fn endpoint_text() {
        assert_eq!(ep("10.0.0.1", 80).to_string(), "10.0.0.1:80");
        assert_eq!(ep("fd00:65::1", 443).to_string(), "[fd00:65::1]:443");
    }

    #[test]
    fn role_heuristic() {
        assert!(destination_is_server(40000, 80));
        assert!(!destination_is_server(80, 40000));
        assert!(destination_is_server(50000, 8443));
        assert!(!destination_is_server(8443, 50000));
        // Both ephemeral (the lab's 40001 -> 49673): the first sender is the client.
        assert!(destination_is_server(49673, 40001));
        assert!(destination_is_server(40001, 49673));
    }

    #[test]
    fn icmp_echo_pairs() {
        assert_eq!(icmp_ports(false, 8, 0), (8, 0, true));
        assert_eq!(icmp_ports(false, 0, 0), (0, 8, false));
        assert_eq!(icmp_ports(true, 129, 0), (0, 128, false));
        assert_eq!(icmp_ports(false, 3, 1), (3, 1, true));
    }
}
