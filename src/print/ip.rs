//! IPv4 (options, fragments) and the IP protocol dispatch.
//!
//! Follows tcpdump 4.99.3's `ip_print`/`ip_demux_print`: the datagram is cut at its total
//! length (tcpdump's `nd_push_snaplen`) before the upper layer sees it, option and header
//! problems print tcpdump's exact diagnostics, and a non-first fragment prints only the
//! addresses and the protocol.

use super::{Ctx, IpHdr, PResult, get_be16, get_be32, get_bytes, get_u8};
use crate::pr;
use std::net::{IpAddr, Ipv4Addr};

/// tcpdump's `ipproto_values` (the `-v` header's protocol names).
pub fn ipproto_name(p: u8) -> Option<&'static str> {
    Some(match p {
        0 => "Options",
        1 => "ICMP",
        2 => "IGMP",
        4 => "IPIP",
        6 => "TCP",
        8 => "EGP",
        9 => "IGRP",
        17 => "UDP",
        33 => "DCCP",
        41 => "IPv6",
        43 => "Routing",
        44 => "Fragment",
        46 => "RSVP",
        47 => "GRE",
        50 => "ESP",
        51 => "AH",
        55 => "Mobile IP",
        58 => "ICMPv6",
        62 => "Mobile IP (old)",
        88 => "EIGRP",
        89 => "OSPF",
        103 => "PIM",
        108 => "Compressed IP",
        112 => "VRRP",
        113 => "PGM",
        132 => "SCTP",
        135 => "Mobility",
        143 => "Ethernet",
        _ => return None,
    })
}

/// tcpdump's `netdb_protoname` (names from /etc/protocols, compiled in), used without `-n`.
pub fn netdb_protoname(p: u8) -> Option<&'static str> {
    NETDB_PROTOCOL_NAMES[usize::from(p)]
}

static NETDB_PROTOCOL_NAMES: [Option<&str>; 256] = [
    Some("hopopt"),
    Some("icmp"),
    Some("igmp"),
    Some("ggp"),
    Some("ipencap"),
    Some("st"),
    Some("tcp"),
    Some("cbt"),
    Some("egp"),
    Some("igp"),
    Some("bbn-rcc-mon"),
    Some("nvp-ii"),
    Some("pup"),
    Some("argus"),
    Some("emcon"),
    Some("xnet"),
    Some("chaos"),
    Some("udp"),
    Some("mux"),
    Some("dcn-meas"),
    Some("hmp"),
    Some("prm"),
    Some("xns-idp"),
    Some("trunk-1"),
    Some("trunk-2"),
    Some("leaf-1"),
    Some("leaf-2"),
    Some("rdp"),
    Some("irtp"),
    Some("iso-tp4"),
    Some("netblt"),
    Some("mfe-nsp"),
    Some("merit-inp"),
    Some("dccp"),
    Some("3pc"),
    Some("idpr"),
    Some("xtp"),
    Some("ddp"),
    Some("idpr-cmtp"),
    Some("tp++"),
    Some("il"),
    Some("ipv6"),
    Some("sdrp"),
    Some("ipv6-route"),
    Some("ipv6-frag"),
    Some("idrp"),
    Some("rsvp"),
    Some("gre"),
    Some("dsr"),
    Some("bna"),
    Some("esp"),
    Some("ah"),
    Some("i-nlsp"),
    Some("swipe"),
    Some("narp"),
    Some("mobile"),
    Some("tlsp"),
    Some("skip"),
    Some("ipv6-icmp"),
    Some("ipv6-nonxt"),
    Some("ipv6-opts"),
    None,
    Some("cftp"),
    None,
    Some("sat-expak"),
    Some("kryptolan"),
    Some("rvd"),
    Some("ippc"),
    None,
    Some("sat-mon"),
    Some("visa"),
    Some("ipcv"),
    Some("cpnx"),
    Some("rspf"),
    Some("wsn"),
    Some("pvp"),
    Some("br-sat-mon"),
    Some("sun-nd"),
    Some("wb-mon"),
    Some("wb-expak"),
    Some("iso-ip"),
    Some("vmtp"),
    Some("secure-vmtp"),
    Some("vines"),
    Some("ttp"),
    Some("nsfnet-igp"),
    Some("dgp"),
    Some("tcf"),
    Some("eigrp"),
    Some("ospf"),
    Some("sprite-rpc"),
    Some("larp"),
    Some("mtp"),
    Some("ax.25"),
    Some("ipip"),
    Some("micp"),
    Some("scc-sp"),
    Some("etherip"),
    Some("encap"),
    None,
    Some("gmtp"),
    Some("ifmp"),
    Some("pnni"),
    Some("pim"),
    Some("aris"),
    Some("scps"),
    Some("qnx"),
    Some("a/n"),
    Some("ipcomp"),
    Some("snp"),
    Some("compaq-peer"),
    Some("ipx-in-ip"),
    Some("vrrp"),
    Some("pgm"),
    None,
    Some("l2tp"),
    Some("ddx"),
    Some("iatp"),
    Some("stp"),
    Some("srp"),
    Some("uti"),
    Some("smp"),
    Some("sm"),
    Some("ptp"),
    Some("isis"),
    Some("fire"),
    Some("crtp"),
    Some("crudp"),
    Some("sscopmce"),
    Some("iplt"),
    Some("sps"),
    Some("pipe"),
    Some("sctp"),
    Some("fc"),
    Some("rsvp-e2e-ignore"),
    Some("mobility-header"),
    Some("udplite"),
    Some("mpls-in-ip"),
    Some("manet"),
    Some("hip"),
    Some("shim6"),
    Some("wesp"),
    Some("rohc"),
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    None,
    Some("exptest-253"),
    Some("exptest-254"),
    Some("reserved"),
];

/// tcpdump's `ipN_print`: IPv4 or IPv6 by the version nibble (raw IP link types).
pub fn ip_n(ctx: &mut Ctx<'_>, bp: &[u8], length: u32) -> PResult {
    ctx.protocol = "ipn";
    if length < 1 {
        pr!(ctx, "truncated-ip {}", length);
        return Ok(());
    }
    match get_u8(bp, 0)? & 0xf0 {
        0x40 => print(ctx, bp, length),
        0x60 => super::ip6::print(ctx, bp, length),
        v => {
            pr!(ctx, "unknown ip {}", v >> 4);
            Ok(())
        }
    }
}

const IP_MF: u16 = 0x2000;
const IP_DF: u16 = 0x4000;
const IP_RES: u16 = 0x8000;
const IP_OFFMASK: u16 = 0x1fff;

/// Prints an IPv4 datagram; `bp` starts at the IPv4 header, `length` is the length the
/// link layer reports for it.
pub fn print(ctx: &mut Ctx<'_>, bp: &[u8], length: u32) -> PResult {
    ctx.protocol = "ip";
    let vhl = get_u8(bp, 0)?;
    let ver = vhl >> 4;
    if ver != 4 {
        if ver == 6 {
            ctx.put("IP6, wrong link-layer encapsulation");
        } else {
            pr!(ctx, "IP{}", ver);
        }
        ctx.print_invalid();
        return Ok(());
    }
    if !ctx.eflag() {
        ctx.put("IP ");
    }
    if bp.len() < 20 {
        // ND_TCHECK_SIZE: local truncation, not a longjmp
        ctx.print_trunc();
        return Ok(());
    }
    if length < 20 {
        pr!(ctx, "truncated-ip {}", length);
        return Ok(());
    }
    let hlen = u32::from(vhl & 0x0f) * 4;
    if hlen < 20 {
        pr!(ctx, "bad-hlen {}", hlen);
        return Ok(());
    }
    let total = u32::from(get_be16(bp, 2)?);
    if length < total {
        pr!(ctx, "truncated-ip - {} bytes missing! ", total - length);
    }
    if total < hlen {
        pr!(ctx, "bad-len {}", total);
        return Ok(());
    }
    // nd_push_snaplen: the datagram ends at its total length.
    let bp = bp.get(..total as usize).unwrap_or(bp);
    let len = total - hlen;
    let off = get_be16(bp, 6)?;
    let proto = get_u8(bp, 9)?;
    let src = get_bytes(bp, 12, 4)?;
    let dst = get_bytes(bp, 16, 4)?;

    if ctx.vflag() > 0 {
        let tos = get_u8(bp, 1)?;
        pr!(ctx, "(tos 0x{:x}", tos);
        match tos & 3 {
            1 => ctx.put(",ECT(1)"),
            2 => ctx.put(",ECT(0)"),
            3 => ctx.put(",CE"),
            _ => {}
        }
        let ttl = get_u8(bp, 8)?;
        if ttl >= 1 {
            pr!(ctx, ", ttl {}", ttl);
        }
        pr!(ctx, ", id {}, offset {}, flags [", get_be16(bp, 4)?, u32::from(off & IP_OFFMASK) * 8);
        let mut any = false;
        for (bit, name) in [(IP_MF, "+"), (IP_DF, "DF"), (IP_RES, "rsvd")] {
            if off & bit != 0 {
                if any {
                    ctx.put(", ");
                }
                ctx.put(name);
                any = true;
            }
        }
        if !any {
            ctx.put("none");
        }
        pr!(ctx, "], proto {} ({})", ipproto_name(proto).unwrap_or("unknown"), proto);
        pr!(ctx, ", length {}", total);
        let mut truncated = false;
        if hlen > 20 {
            ctx.put(", options (");
            if !options_print(ctx, bp, 20, hlen - 20)? {
                ctx.put(" [truncated-option]");
                truncated = true;
            }
            ctx.put(")");
        }
        if let Some(h) = bp.get(..hlen as usize) {
            let sum = super::in_cksum(&[h]);
            if sum != 0 {
                let ip_sum = get_be16(bp, 10)?;
                pr!(ctx, ", bad cksum {:x} (->{:x})!", ip_sum, super::in_cksum_shouldbe(ip_sum, sum));
            }
        }
        ctx.put(")\n    ");
        if truncated {
            put_addr(ctx, src);
            ctx.put(" > ");
            put_addr(ctx, dst);
            ctx.put(": ");
            ctx.print_trunc();
            return Ok(());
        }
    }

    let src4 = Ipv4Addr::new(src[0], src[1], src[2], src[3]);
    let dst4 = Ipv4Addr::new(dst[0], dst[1], dst[2], dst[3]);
    if off & IP_OFFMASK == 0 {
        if proto != 6 && proto != 17 {
            put_addr(ctx, src);
            ctx.put(" > ");
            put_addr(ctx, dst);
            ctx.put(": ");
        }
        let Some(hdr) = bp.get(..hlen as usize) else {
            pr!(ctx, " [remaining caplen({}) < header length({})]", bp.len(), hlen);
            return Err(super::Trunc);
        };
        let cksum_dst = if hlen == 20 { dst4 } else { final_dst(hdr).unwrap_or(dst4) };
        let iph = IpHdr {
            src: IpAddr::V4(src4),
            dst: IpAddr::V4(dst4),
            cksum_dst: IpAddr::V4(cksum_dst),
            hdr,
            fragmented: off & IP_MF != 0,
        };
        let upper = bp.get(hlen as usize..).unwrap_or(&[]);
        demux(ctx, upper, len, 4, proto, &iph)
    } else {
        put_addr(ctx, src);
        ctx.put(" > ");
        put_addr(ctx, dst);
        ctx.put(":");
        match netdb_protoname(proto) {
            Some(name) if ctx.opts.numeric == 0 => pr!(ctx, " {}", name),
            _ => pr!(ctx, " ip-proto-{}", proto),
        }
        Ok(())
    }
}

fn put_addr(ctx: &mut Ctx<'_>, a: &[u8]) {
    if let [a, b, c, d] = *a {
        ctx.put_ip4([a, b, c, d]);
    }
}

/// tcpdump's `ip_finddst`: the last hop of a valid loose/strict source route, which the
/// TCP/UDP pseudo-header uses as destination. `hdr` is the whole IPv4 header.
fn final_dst(hdr: &[u8]) -> Option<Ipv4Addr> {
    let mut cp = 20usize;
    let mut length = hdr.len().checked_sub(20)?;
    while length != 0 {
        let tt = *hdr.get(cp)?;
        let len = match tt {
            0 => break,
            1 => 1,
            _ => {
                let l = usize::from(*hdr.get(cp + 1)?);
                if l < 2 {
                    break;
                }
                l
            }
        };
        if length < len {
            return None;
        }
        let opt = hdr.get(cp..cp + len)?;
        if (tt == 131 || tt == 137) && len >= 7 {
            let a = opt.get(len - 4..len)?;
            return Some(Ipv4Addr::new(a[0], a[1], a[2], a[3]));
        }
        cp += len;
        length -= len;
    }
    None
}

/// tcpdump's `ip_optprint` over `length` option bytes at `bp[off..]`. `Ok(false)` means an
/// option ran past the captured data (tcpdump prints ` [truncated-option]`); `Err` is a
/// truncation inside an option's fixed part (tcpdump's longjmp).
fn options_print(ctx: &mut Ctx<'_>, bp: &[u8], mut off: usize, mut length: u32) -> PResult<bool> {
    let mut sep = "";
    while length > 0 {
        ctx.put(sep);
        sep = ",";
        let code = get_u8(bp, off)?;
        match code {
            0 => ctx.put("EOL"),
            1 => ctx.put("NOP"),
            68 => ctx.put("timestamp"),
            130 => ctx.put("security"),
            7 => ctx.put("RR"),
            137 => ctx.put("SSRR"),
            131 => ctx.put("LSRR"),
            148 => ctx.put("RA"),
            82 => ctx.put("traceroute"),
            _ => pr!(ctx, "unknown {}", code),
        }
        let option_len = if code == 0 || code == 1 {
            1
        } else {
            let l = u32::from(get_u8(bp, off + 1)?);
            if l < 2 {
                pr!(ctx, " [bad length {}]", l);
                return Ok(true);
            }
            l
        };
        if option_len > length {
            pr!(ctx, " [bad length {}]", option_len);
            return Ok(true);
        }
        let Some(opt) = bp.get(off..off + option_len as usize) else {
            return Ok(false);
        };
        match code {
            0 => return Ok(true),
            68 => {
                let complete = timestamp_print(ctx, opt, option_len);
                if !complete {
                    return Ok(false);
                }
            }
            7 | 137 | 131 => {
                let complete = route_print(ctx, opt, option_len)?;
                if !complete {
                    return Ok(false);
                }
            }
            148 => {
                if option_len < 4 {
                    pr!(ctx, " [bad length {}]", option_len);
                } else {
                    let v = get_be16(opt, 2)?;
                    if v != 0 {
                        pr!(ctx, " value {}", v);
                    }
                }
            }
            _ => {}
        }
        off += option_len as usize;
        length -= option_len;
    }
    Ok(true)
}

/// tcpdump's `ip_printroute` (RR, LSRR, SSRR). `Ok(false)`: an address was not captured.
fn route_print(ctx: &mut Ctx<'_>, cp: &[u8], length: u32) -> PResult<bool> {
    if length < 3 {
        pr!(ctx, " [bad length {}]", length);
        return Ok(true);
    }
    if (length + 1) & 3 != 0 {
        pr!(ctx, " [bad length {}]", length);
    }
    let raw_ptr = get_u8(cp, 2)?;
    let ptr = u32::from(raw_ptr).wrapping_sub(1);
    if ptr < 3 || (ptr.wrapping_add(1)) & 3 != 0 || ptr > length + 1 {
        pr!(ctx, " [bad ptr {}]", raw_ptr);
    }
    let mut len = 3u32;
    while len < length {
        let Ok(a) = get_bytes(cp, len as usize, 4) else {
            return Ok(false);
        };
        ctx.put(" ");
        put_addr(ctx, a);
        if ptr > len {
            ctx.put(",");
        }
        len += 4;
    }
    Ok(true)
}

/// tcpdump's `ip_printts`. `false`: an entry was not captured.
fn timestamp_print(ctx: &mut Ctx<'_>, cp: &[u8], length: u32) -> bool {
    if length < 4 {
        pr!(ctx, "[bad length {}]", length);
        return true;
    }
    ctx.put(" TS{");
    let (Some(&b2), Some(&b3)) = (cp.get(2), cp.get(3)) else {
        return false;
    };
    let hoplen: u32 = if b3 & 0xf != 0 { 8 } else { 4 };
    if (length - 4) & (hoplen - 1) != 0 {
        pr!(ctx, "[bad length {}]", length);
    }
    let ptr = u32::from(b2).wrapping_sub(1);
    let mut len = 0u32;
    if ptr < 4 || (ptr.wrapping_sub(4)) & (hoplen - 1) != 0 || ptr > length + 1 {
        pr!(ctx, "[bad ptr {}]", b2);
    }
    let known = match b3 & 0xf {
        0 => {
            ctx.put("TSONLY");
            true
        }
        1 => {
            ctx.put("TS+ADDR");
            true
        }
        3 => {
            ctx.put("PRESPEC");
            true
        }
        t => {
            pr!(ctx, "[bad ts type {}]", t);
            false
        }
    };
    if known {
        let mut kind = " ";
        len = 4;
        while len < length {
            if ptr == len {
                kind = " ^ ";
            }
            let Some(hop) = cp.get(len as usize..(len + hoplen) as usize) else {
                return false;
            };
            let t = get_be32(hop, hoplen as usize - 4).unwrap_or(0);
            ctx.put(kind);
            super::push_u32(ctx.out, t);
            ctx.put("@");
            if hoplen == 8 {
                put_addr(ctx, &hop[..4]);
            }
            kind = " ";
            len += hoplen;
        }
    }
    if ptr == len {
        ctx.put(" ^ ");
    }
    if b3 >> 4 != 0 {
        pr!(ctx, " [{} hops not recorded]}} ", b3 >> 4);
    } else {
        ctx.put("}");
    }
    true
}

/// tcpdump's `ip_demux_print`: dispatch on the next-protocol number, shared by IPv4 and
/// IPv6 (and the IPv6 extension-header chain once it reaches an upper layer).
/// `bp` starts at the upper-layer header, `length` is its length from the IP layer,
/// `ver` is 4 or 6, `nh` the protocol number.
pub fn demux(ctx: &mut Ctx<'_>, bp: &[u8], length: u32, ver: u8, nh: u8, ip: &IpHdr<'_>) -> PResult {
    let requires = |ctx: &mut Ctx<'_>, v: u8| {
        pr!(ctx, "[{} requires IPv{}]", ipproto_name(nh).unwrap_or("unknown"), v);
        ctx.print_invalid();
    };
    match nh {
        6 => super::tcp::print(ctx, bp, length, ip),
        17 => super::udp::print(ctx, bp, length, ip),
        1 if ver == 4 => super::icmp::print(ctx, bp, length, ip),
        1 => {
            requires(ctx, 4);
            Ok(())
        }
        58 if ver == 6 => super::icmp6::print(ctx, bp, length, ip),
        58 => {
            requires(ctx, 6);
            Ok(())
        }
        2 if ver != 4 => {
            requires(ctx, 4);
            Ok(())
        }
        4 => print(ctx, bp, length),
        41 => super::ip6::print(ctx, bp, length),
        77 => {
            pr!(ctx, " nd {}", length);
            Ok(())
        }
        143 if ver == 6 => super::link::ether(ctx, bp, length).map(|_| ()),
        143 => {
            requires(ctx, 6);
            Ok(())
        }
        59 => {
            ctx.put("no next header");
            Ok(())
        }
        _ => {
            match netdb_protoname(nh) {
                Some(name) if ctx.opts.numeric == 0 => pr!(ctx, " {}", name),
                _ => pr!(ctx, " ip-proto-{}", nh),
            }
            pr!(ctx, " {}", length);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finddst_uses_last_lsrr_hop() {
        let mut h = vec![0x47u8, 0, 0, 0, 0, 0, 0, 0, 64, 6, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2];
        h.extend_from_slice(&[1, 131, 7, 4, 9, 9, 9, 9]);
        assert_eq!(final_dst(&h), Some(Ipv4Addr::new(9, 9, 9, 9)));
        h[21] = 7; // RR: not a source route
        assert_eq!(final_dst(&h), None);
    }

    #[test]
    fn protocol_names() {
        assert_eq!(netdb_protoname(6), Some("tcp"));
        assert_eq!(ipproto_name(17), Some("UDP"));
        assert_eq!(netdb_protoname(255), Some("reserved"));
        assert_eq!(netdb_protoname(200), None);
    }
}
