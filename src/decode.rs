//! Lax decoding of frames into the fields the flow table, reassembler and joiner need.
//!
//! Built on etherparse's lax slicing: whatever parsed is returned, and truncation is data
//! (a snaplen-cut TCP segment still yields its header, the captured part of its payload and
//! the payload length the IP header claims, so the reassembler can account for the missing
//! bytes as a gap). [`decode`] never panics and never allocates.
//!
//! The printers in `print/` do not use this module: tcpdump's output on malformed packets
//! depends on exactly which bytes each of its dissectors reads, which they reproduce.

use etherparse::{
    EtherType, Ethernet2Slice, Icmpv4Slice, Icmpv6Slice, LaxIpSlice, LaxIpv4Slice, LaxIpv6Slice, LaxNetSlice,
    LaxSlicedPacket, TcpOptionElement, TcpSlice, TransportSlice, UdpSlice, ip_number,
};
use std::net::IpAddr;

/// Link types we take apart (LINKTYPE_* values).
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const EN10MB: u32 = 1;
    pub const RAW: u32 = 101;
    /// DLT_RAW as some systems number it.
    pub const RAW_12: u32 = 12;
    pub const RAW_14: u32 = 14;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
}

/// TCP flag bits as in the header's 13th byte (plus NS as 0x100).
pub mod tcp_flags {
    pub const FIN: u16 = 0x01;
    pub const SYN: u16 = 0x02;
    pub const RST: u16 = 0x04;
    pub const PSH: u16 = 0x08;
    pub const ACK: u16 = 0x10;
    pub const URG: u16 = 0x20;
    pub const ECE: u16 = 0x40;
    pub const CWR: u16 = 0x80;
}

/// The network layer of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ip {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: u8,
    /// IPv4 identification (None for IPv6).
    pub ip_id: Option<u16>,
    /// Part of a fragmented datagram (no transport header unless it is the first fragment).
    pub fragmented: bool,
}

/// A TCP segment's header fields and payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tcp<'a> {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    /// See [`tcp_flags`].
    pub flags: u16,
    pub window: u16,
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_permitted: bool,
    /// Timestamp option (value, echo reply).
    pub ts: Option<(u32, u32)>,
    /// Up to four SACK blocks (left, right), count in `sack_count`.
    pub sack: [(u32, u32); 4],
    pub sack_count: u8,
    /// Captured payload bytes (may be shorter than `payload_len` when the capture cut it).
    pub payload: &'a [u8],
    /// Payload length on the wire, from the IP header's length.
    pub payload_len: u32,
}

impl Tcp<'_> {
    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }
}

/// A UDP datagram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Udp<'a> {
    pub sport: u16,
    pub dport: u16,
    pub payload: &'a [u8],
    pub payload_len: u32,
}

/// The transport layer of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport<'a> {
    Tcp(Tcp<'a>),
    Udp(Udp<'a>),
    /// ICMP or ICMPv6 (type, code).
    Icmp { v6: bool, kind: u8, code: u8 },
    /// Another IP protocol, or a transport header cut short by the capture.
    Other { proto: u8 },
    None,
}

/// What [`decode`] found in a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    pub ip: Option<Ip>,
    pub transport: Transport<'a>,
}

impl Decoded<'_> {
    const EMPTY: Decoded<'static> = Decoded { ip: None, transport: Transport::None };
}

/// Decodes a frame of the given link type. Unknown link types and non-IP frames give
/// `ip: None`.
///
/// An IP packet right after the link header (the common case) is sliced layer by layer
/// (`LaxIpSlice`, then the transport slice), exactly as etherparse's `LaxSlicedPacket` slices
/// it but without carrying that large struct through every layer (moving it cost more than
/// the parsing); anything else (VLAN tags, MACsec, ARP, other ether types) goes through
/// `LaxSlicedPacket` ([`decode_sliced`]). The two give the same answer on every frame
/// (`tests/decode_paths.rs` on the bundled captures, the tcpdump corpus and cut and corrupted
/// frames; the `decode` fuzz target asserts it too).
pub fn decode(linktype: u32, data: &[u8]) -> Decoded<'_> {
    let Some(l) = link(linktype, data) else { return Decoded::EMPTY };
    let is_ip = |et: EtherType| matches!(et, EtherType::IPV4 | EtherType::IPV6);
    let ip = match l {
        Link::Ethernet(frame) => match Ethernet2Slice::from_slice_without_fcs(frame) {
            Ok(e) if is_ip(e.ether_type()) => Some(e.payload_slice()),
            _ => None,
        },
        Link::EtherType(et, payload) => is_ip(et).then_some(payload),
        Link::Ip(packet) => Some(packet),
    };
    match ip {
        Some(packet) => from_ip(packet),
        None => sliced(l),
    }
}

/// [`decode`] through etherparse's `LaxSlicedPacket` for every frame: the reference the
/// direct path is checked against, and the path for frames it does not take.
pub fn decode_sliced(linktype: u32, data: &[u8]) -> Decoded<'_> {
    link(linktype, data).map_or(Decoded::EMPTY, sliced)
}

/// What follows a frame's link header, by link type (the one place that knows them).
#[derive(Clone, Copy)]
enum Link<'a> {
    /// An Ethernet frame (EN10MB), its header included.
    Ethernet(&'a [u8]),
    /// A payload whose ether type the link header gave (Linux SLL and SLL2).
    EtherType(EtherType, &'a [u8]),
    /// An IP packet (raw IP; NULL and LOOP with an IP address family).
    Ip(&'a [u8]),
}

fn link(linktype: u32, data: &[u8]) -> Option<Link<'_>> {
    // Linux SLL and SLL2: the ether type at `at`, the payload from `hdr`.
    let ether_type_at = |at: usize, hdr: usize| {
        let et = data.get(at..at + 2)?;
        Some(Link::EtherType(EtherType(u16::from_be_bytes([et[0], et[1]])), data.get(hdr..)?))
    };
    match linktype {
        linktype::EN10MB => Some(Link::Ethernet(data)),
        linktype::RAW | linktype::RAW_12 | linktype::RAW_14 | linktype::IPV4 | linktype::IPV6 => {
            Some(Link::Ip(data))
        }
        linktype::LINUX_SLL => ether_type_at(14, 16),
        linktype::LINUX_SLL2 => ether_type_at(0, 20),
        linktype::NULL | linktype::LOOP => match null_family(data) {
            Some(2 | 24 | 28 | 30) => Some(Link::Ip(&data[4..])),
            _ => None,
        },
        _ => None,
    }
}

/// The address family in a NULL or LOOP header: host byte order of the capturing machine
/// (NULL) or network order (LOOP); both are accepted.
fn null_family(data: &[u8]) -> Option<u32> {
    let fam = data.get(..4)?;
    let fam = [fam[0], fam[1], fam[2], fam[3]];
    Some(match (u32::from_le_bytes(fam), u32::from_be_bytes(fam)) {
        (f, _) if f < 0x100 => f,
        (_, f) => f,
    })
}

/// Everything after the link header through `LaxSlicedPacket`.
fn sliced(l: Link<'_>) -> Decoded<'_> {
    let s = match l {
        Link::Ethernet(frame) => LaxSlicedPacket::from_ethernet(frame).ok(),
        Link::EtherType(et, payload) => Some(LaxSlicedPacket::from_ether_type(et, payload)),
        Link::Ip(packet) => LaxSlicedPacket::from_ip(packet).ok(),
    };
    s.map_or(Decoded::EMPTY, |s| from_sliced(&s))
}

/// An IP packet and what it carries, sliced as `LaxSlicedPacket` slices it: no transport
/// when the payload is a fragment or the IPv6 extension headers stopped the slicing.
fn from_ip(data: &[u8]) -> Decoded<'_> {
    let Ok((ip, stop)) = LaxIpSlice::from_slice(data) else { return Decoded::EMPTY };
    let payload = ip.payload();
    let transport = if payload.fragmented || stop.is_some() {
        None
    } else {
        let p = payload.payload;
        match payload.ip_number {
            ip_number::TCP => TcpSlice::from_slice(p).ok().map(TransportSlice::Tcp),
            ip_number::UDP => UdpSlice::from_slice_lax(p).ok().map(TransportSlice::Udp),
            ip_number::ICMP => Icmpv4Slice::from_slice(p).ok().map(TransportSlice::Icmpv4),
            ip_number::IPV6_ICMP => Icmpv6Slice::from_slice(p).ok().map(TransportSlice::Icmpv6),
            _ => None,
        }
    };
    match &ip {
        LaxIpSlice::Ipv4(v4) => from_layers(Net::V4(v4), transport.as_ref()),
        LaxIpSlice::Ipv6(v6) => from_layers(Net::V6(v6), transport.as_ref()),
    }
}

fn from_sliced<'a>(s: &LaxSlicedPacket<'a>) -> Decoded<'a> {
    match &s.net {
        Some(LaxNetSlice::Ipv4(v4)) => from_layers(Net::V4(v4), s.transport.as_ref()),
        Some(LaxNetSlice::Ipv6(v6)) => from_layers(Net::V6(v6), s.transport.as_ref()),
        _ => Decoded::EMPTY,
    }
}

/// The network layer as both slicing paths hold it.
enum Net<'s, 'a> {
    V4(&'s LaxIpv4Slice<'a>),
    V6(&'s LaxIpv6Slice<'a>),
}

fn from_layers<'a>(net: Net<'_, 'a>, transport: Option<&TransportSlice<'a>>) -> Decoded<'a> {
    let (ip, ip_payload_len, ip_number) = match net {
        Net::V4(v4) => {
            let h = v4.header();
            let p = v4.payload();
            let claimed = u32::from(h.total_len()).saturating_sub(u32::from(h.ihl()) * 4);
            (
                Ip {
                    src: IpAddr::V4(h.source_addr()),
                    dst: IpAddr::V4(h.destination_addr()),
                    ttl: h.ttl(),
                    ip_id: Some(h.identification()),
                    fragmented: p.fragmented,
                },
                // Segmentation offload captures show total_len 0: fall back to what we have.
                if claimed == 0 { p.payload.len() as u32 } else { claimed.saturating_sub(v4_exts_len(v4)) },
                p.ip_number,
            )
        }
        Net::V6(v6) => {
            let h = v6.header();
            let p = v6.payload();
            let claimed = u32::from(h.payload_length());
            let exts = v6.extensions().slice().len() as u32;
            (
                Ip {
                    src: IpAddr::V6(h.source_addr()),
                    dst: IpAddr::V6(h.destination_addr()),
                    ttl: h.hop_limit(),
                    ip_id: None,
                    fragmented: p.fragmented,
                },
                // Jumbograms and offload captures show 0: fall back to what we have.
                if claimed == 0 { p.payload.len() as u32 } else { claimed.saturating_sub(exts) },
                p.ip_number,
            )
        }
    };
    let transport = match transport {
        Some(TransportSlice::Tcp(t)) => {
            let hl = u32::from(t.data_offset()) * 4;
            let mut tcp = Tcp {
                sport: t.source_port(),
                dport: t.destination_port(),
                seq: t.sequence_number(),
                ack: t.acknowledgment_number(),
                flags: u16::from(t.slice()[13]) | if t.ns() { 0x100 } else { 0 },
                window: t.window_size(),
                payload: t.payload(),
                payload_len: ip_payload_len.saturating_sub(hl).max(t.payload().len() as u32),
                ..Tcp::default()
            };
            for opt in t.options_iterator() {
                match opt {
                    Ok(TcpOptionElement::MaximumSegmentSize(m)) => tcp.mss = Some(m),
                    Ok(TcpOptionElement::WindowScale(w)) => tcp.wscale = Some(w),
                    Ok(TcpOptionElement::SelectiveAcknowledgementPermitted) => tcp.sack_permitted = true,
                    Ok(TcpOptionElement::Timestamp(v, e)) => tcp.ts = Some((v, e)),
                    Ok(TcpOptionElement::SelectiveAcknowledgement(first, rest)) => {
                        tcp.sack[0] = first;
                        tcp.sack_count = 1;
                        for (i, b) in rest.iter().flatten().enumerate().take(3) {
                            tcp.sack[i + 1] = *b;
                            tcp.sack_count += 1;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            Transport::Tcp(tcp)
        }
        Some(TransportSlice::Udp(u)) => Transport::Udp(Udp {
            sport: u.source_port(),
            dport: u.destination_port(),
            payload: u.payload(),
            payload_len: u32::from(u.length()).saturating_sub(8).max(u.payload().len() as u32),
        }),
        Some(TransportSlice::Icmpv4(i)) => Transport::Icmp { v6: false, kind: i.type_u8(), code: i.code_u8() },
        Some(TransportSlice::Icmpv6(i)) => Transport::Icmp { v6: true, kind: i.type_u8(), code: i.code_u8() },
        _ => Transport::Other { proto: ip_number.0 },
    };
    Decoded { ip: Some(ip), transport }
}

/// Length of IPv4 extension headers (IPsec AH) etherparse consumed before the payload.
fn v4_exts_len(v4: &etherparse::LaxIpv4Slice<'_>) -> u32 {
    v4.extensions().auth.map_or(0, |a| a.slice().len() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp_frame(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 8443, 1000, 4096)
            .ack(77)
            .psh();
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    #[test]
    fn tcp_over_ethernet() {
        let f = tcp_frame(b"hello");
        let d = decode(linktype::EN10MB, &f);
        let ip = d.ip.unwrap();
        assert_eq!(ip.src, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(ip.ttl, 64);
        let Transport::Tcp(t) = d.transport else { panic!("{d:?}") };
        assert_eq!((t.sport, t.dport, t.seq, t.ack), (40000, 8443, 1000, 77));
        assert!(t.has(tcp_flags::ACK) && t.has(tcp_flags::PSH) && !t.has(tcp_flags::SYN));
        assert_eq!(t.payload, b"hello");
        assert_eq!(t.payload_len, 5);
    }

    #[test]
    fn snaplen_cut_payload_keeps_the_wire_length() {
        let f = tcp_frame(&[7u8; 100]);
        let cut = &f[..14 + 20 + 20 + 10];
        let Transport::Tcp(t) = decode(linktype::EN10MB, cut).transport else { panic!() };
        assert_eq!(t.payload.len(), 10);
        assert_eq!(t.payload_len, 100);
    }

    #[test]
    fn cooked_and_raw_link_types() {
        let f = tcp_frame(b"x");
        let ip = &f[14..];
        assert!(matches!(decode(linktype::RAW, ip).transport, Transport::Tcp(_)));
        let mut sll2 = vec![0x08, 0x00, 0, 0];
        sll2.extend_from_slice(&[0; 16]);
        sll2.extend_from_slice(ip);
        assert!(matches!(decode(linktype::LINUX_SLL2, &sll2).transport, Transport::Tcp(_)));
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend_from_slice(ip);
        assert!(matches!(decode(linktype::NULL, &null).transport, Transport::Tcp(_)));
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u32 = 12345;
        for len in 0..200usize {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            for lt in [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 9999] {
                let _ = decode(lt, &bytes);
            }
        }
    }
}
