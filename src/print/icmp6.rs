//! ICMPv6 as tcpdump 4.99.3 prints it (`icmp6_print`): errors (unreachable, packet too big,
//! time exceeded, parameter problem), echo, MLD v1/v2, neighbor discovery with its options
//! (`icmp6_nd.rs`), router renumbering and node information (`icmp6_ni.rs`), home agent discovery, mobile
//! prefix, RPL (`icmp6_rpl.rs`). Types 4.99.3 does not know (RFC 8335 extended echo among them)
//! print as `unknown icmp6 type (N), length N` and a hex dump.
//!
//! Contract (see `print/mod.rs`): `bp` is the captured ICMPv6 message (cut at the IPv6
//! payload end), `length` its length from the IP layer. With `-v` and an unfragmented,
//! fully captured message the checksum is verified first: `[icmp6 sum ok] ` or
//! `[bad icmp6 cksum 0xOLD -> 0xNEW!] `, using [`IpHdr::cksum_dst`] in the pseudo-header.
//! Without `-v` most messages end in `, length N`.
//!
//! Truncation inside a sub-printer (ND options, node information, router renumbering) prints
//! ` [|icmp6]` where it happens and, like tcpdump, lets the caller finish its line; a read
//! past the captured bytes elsewhere unwinds with [`super::Trunc`] to the top level.

use super::{Ctx, IpHdr, PResult, get_be16, get_be32, get_u8, pseudo_cksum};
use crate::pr;

#[path = "icmp6_mld.rs"]
mod mld;
#[path = "icmp6_nd.rs"]
mod nd;
#[path = "icmp6_ni.rs"]
mod ni;
#[path = "icmp6_rpl.rs"]
mod rpl;

const IPPROTO_ICMPV6: u8 = 58;

/// Message types, named as in tcpdump's `icmp6_type_values`.
pub mod ty {
    pub const DST_UNREACH: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const PARAM_PROB: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const MLD_QUERY: u8 = 130;
    pub const MLD_REPORT: u8 = 131;
    pub const MLD_DONE: u8 = 132;
    pub const ROUTER_SOLICIT: u8 = 133;
    pub const ROUTER_ADVERT: u8 = 134;
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
    pub const REDIRECT: u8 = 137;
    pub const ROUTER_RENUMBERING: u8 = 138;
    pub const NI_QUERY: u8 = 139;
    pub const NI_REPLY: u8 = 140;
    pub const IND_SOLICIT: u8 = 141;
    pub const IND_ADVERT: u8 = 142;
    pub const MLDV2_REPORT: u8 = 143;
    pub const HADISCOV_REQUEST: u8 = 144;
    pub const HADISCOV_REPLY: u8 = 145;
    pub const MOBILEPREFIX_SOLICIT: u8 = 146;
    pub const MOBILEPREFIX_ADVERT: u8 = 147;
    pub const RPL: u8 = 155;
    pub const MTRACE_RESP: u8 = 200;
    pub const MTRACE: u8 = 201;
}

/// tcpdump 4.99.3's name of an ICMPv6 type.
pub fn type_name(t: u8) -> Option<&'static str> {
    Some(match t {
        ty::DST_UNREACH => "destination unreachable",
        ty::PACKET_TOO_BIG => "packet too big",
        ty::TIME_EXCEEDED => "time exceeded in-transit",
        ty::PARAM_PROB => "parameter problem",
        ty::ECHO_REQUEST => "echo request",
        ty::ECHO_REPLY => "echo reply",
        ty::MLD_QUERY => "multicast listener query",
        ty::MLD_REPORT => "multicast listener report",
        ty::MLD_DONE => "multicast listener done",
        ty::ROUTER_SOLICIT => "router solicitation",
        ty::ROUTER_ADVERT => "router advertisement",
        ty::NEIGHBOR_SOLICIT => "neighbor solicitation",
        ty::NEIGHBOR_ADVERT => "neighbor advertisement",
        ty::REDIRECT => "redirect",
        ty::ROUTER_RENUMBERING => "router renumbering",
        ty::IND_SOLICIT => "inverse neighbor solicitation",
        ty::IND_ADVERT => "inverse neighbor advertisement",
        ty::MLDV2_REPORT => "multicast listener report v2",
        ty::HADISCOV_REQUEST => "ha discovery request",
        ty::HADISCOV_REPLY => "ha discovery reply",
        ty::MOBILEPREFIX_SOLICIT => "mobile router solicitation",
        ty::MOBILEPREFIX_ADVERT => "mobile router advertisement",
        ty::NI_QUERY => "who-are-you request",
        ty::NI_REPLY => "who-are-you reply",
        ty::MTRACE => "mtrace message",
        ty::MTRACE_RESP => "mtrace response",
        ty::RPL => "RPL",
        _ => return None,
    })
}

/// Prints an ICMPv6 message. `bp` starts at the ICMPv6 header.
pub fn print(ctx: &mut Ctx<'_>, bp: &[u8], length: u32, ip: &IpHdr<'_>) -> PResult {
    ctx.protocol = "icmp6";
    if length == 0 {
        ctx.put("ICMP6, length 0 (invalid)");
        return Ok(());
    }
    let v = ctx.opts.verbose;
    // The checksum covers the whole message: only when it is all captured.
    let whole = usize::try_from(length).ok().and_then(|l| bp.get(..l));
    if let (true, Some(msg)) = (v > 0 && !ip.fragmented, whole) {
        let wire = get_be16(msg, 2)?;
        let sum = pseudo_cksum(ip, IPPROTO_ICMPV6, msg);
        if sum != 0 {
            pr!(
                ctx,
                "[bad icmp6 cksum 0x{wire:04x} -> 0x{:04x}!] ",
                cksum_shouldbe(wire, sum)
            );
        } else {
            ctx.put("[icmp6 sum ok] ");
        }
    }
    let t = get_u8(bp, 0)?;
    ctx.put("ICMP6, ");
    match type_name(t) {
        Some(n) => ctx.put(n),
        None => pr!(ctx, "unknown icmp6 type ({t})"),
    }
    if v > 0
        && matches!(
            t,
            ty::ROUTER_SOLICIT
                | ty::ROUTER_ADVERT
                | ty::NEIGHBOR_ADVERT
                | ty::NEIGHBOR_SOLICIT
                | ty::REDIRECT
                | ty::HADISCOV_REPLY
                | ty::MOBILEPREFIX_ADVERT
        )
    {
        pr!(ctx, ", length {length}");
    }
    let code = get_u8(bp, 1)?;
    // The quoted packet of error messages starts after the 8-byte header.
    const OIP: usize = 8;
    match t {
        ty::DST_UNREACH => {
            ctx.put(", ");
            match code {
                0 => ctx.put("unreachable route"),
                1 => ctx.put(" unreachable prohibited"),
                2 => ctx.put("beyond scope"),
                3 => ctx.put("unreachable address"),
                4 => ctx.put("unreachable port"),
                _ => pr!(ctx, "unknown unreach code ({code})"),
            }
            match code {
                0 | 1 | 3 => put_addr(ctx, " ", bp, OIP + 24)?,
                2 => {
                    let dst = super::ip6::get_addr(bp, OIP + 24)?;
                    let src = super::ip6::get_addr(bp, OIP + 8)?;
                    ctx.put(" ");
                    ctx.put_ip6(dst);
                    ctx.put(", source address ");
                    ctx.put_ip6(src);
                }
                4 => {
                    let Some((off, prot)) = upper_layer(bp.get(OIP..).unwrap_or(&[])) else {
                        ctx.print_trunc();
                        return Ok(());
                    };
                    let dport = get_be16(bp, OIP + off + 2)?;
                    let dst = super::ip6::get_addr(bp, OIP + 24)?;
                    ctx.put(", ");
                    ctx.put_ip6(dst);
                    match prot {
                        6 | 17 => {
                            ctx.put(if prot == 6 { " tcp port " } else { " udp port " });
                            super::tcp::put_port(ctx, prot, dport);
                        }
                        _ => pr!(ctx, " protocol {prot} port {dport} unreachable"),
                    }
                }
                _ => {
                    if v <= 1 {
                        print_unknown_data(ctx, bp, "\n\t", length);
                        return Ok(());
                    }
                }
            }
        }
        ty::PACKET_TOO_BIG => pr!(ctx, ", mtu {}", get_be32(bp, 4)?),
        ty::TIME_EXCEEDED => match code {
            0 => put_addr(ctx, " for ", bp, OIP + 24)?,
            1 => ctx.put(" (reassembly)"),
            _ => pr!(ctx, ", unknown code ({code})"),
        },
        ty::PARAM_PROB => {
            if bp.len() < OIP + 40 {
                ctx.print_trunc();
                return Ok(());
            }
            let what = match code {
                0 => "erroneous",
                1 => "next header",
                2 => "option",
                3 => "incomplete header chain",
                _ => "",
            };
            if what.is_empty() {
                pr!(ctx, ", code-#{code}");
            } else {
                pr!(ctx, ", {what} - octet {}", get_be32(bp, 4)?);
            }
        }
        ty::ECHO_REQUEST | ty::ECHO_REPLY => {
            let (id, seq) = (get_be16(bp, 4)?, get_be16(bp, 6)?);
            pr!(ctx, ", id {id}, seq {seq}");
        }
        ty::MLD_QUERY => {
            if length == mld::MLD_MINLEN {
                mld::v1(ctx, bp)?;
            } else if length >= mld::MLDV2_MINLEN {
                ctx.put(" v2");
                mld::v2_query(ctx, bp, length)?;
            } else {
                pr!(ctx, " unknown-version (len {length}) ");
            }
        }
        ty::MLD_REPORT | ty::MLD_DONE => mld::v1(ctx, bp)?,
        ty::ROUTER_SOLICIT => {
            if v > 0 && !nd::options(ctx, bp, 8, resid(length, 8))? {
                ctx.print_trunc();
                return Ok(());
            }
        }
        ty::ROUTER_ADVERT => {
            if v > 0 {
                let hop = get_u8(bp, 4)?;
                let flags = get_u8(bp, 5)?;
                let life = get_be16(bp, 6)?;
                let reach = get_be32(bp, 8)?;
                let retrans = get_be32(bp, 12)?;
                pr!(ctx, "\n\thop limit {hop}, Flags [");
                bit_names(ctx, u32::from(flags), &RA_FLAGS, ", ", "none");
                pr!(
                    ctx,
                    "], pref {}, router lifetime {life}s, reachable time {reach}ms, \
                          retrans timer {retrans}ms",
                    rtpref(flags)
                );
                if !nd::options(ctx, bp, 16, resid(length, 16))? {
                    ctx.print_trunc();
                    return Ok(());
                }
            }
        }
        ty::NEIGHBOR_SOLICIT => {
            put_addr(ctx, ", who has ", bp, 8)?;
            if v > 0 && !nd::options(ctx, bp, 24, resid(length, 24))? {
                ctx.print_trunc();
                return Ok(());
            }
        }
        ty::NEIGHBOR_ADVERT => {
            put_addr(ctx, ", tgt is ", bp, 8)?;
            if v > 0 {
                let flags = get_be32(bp, 4)?;
                ctx.put(", Flags [");
                bit_names(ctx, flags, &NA_FLAGS, ", ", "none");
                ctx.put("]");
                if !nd::options(ctx, bp, 24, resid(length, 24))? {
                    ctx.print_trunc();
                    return Ok(());
                }
            }
        }
        ty::REDIRECT => {
            put_addr(ctx, ", ", bp, 24)?;
            put_addr(ctx, " to ", bp, 8)?;
            if v > 0 && !nd::options(ctx, bp, 40, resid(length, 40))? {
                ctx.print_trunc();
                return Ok(());
            }
        }
        ty::ROUTER_RENUMBERING => ni::rrenum(ctx, bp)?,
        ty::NI_QUERY | ty::NI_REPLY => ni::nodeinfo(ctx, bp, length)?,
        ty::IND_SOLICIT | ty::IND_ADVERT => {}
        ty::MLDV2_REPORT => mld::v2_report(ctx, bp, length)?,
        ty::MOBILEPREFIX_SOLICIT | ty::HADISCOV_REQUEST => {
            pr!(ctx, ", id 0x{:04x}", get_be16(bp, 4)?);
        }
        ty::HADISCOV_REPLY => {
            if v > 0 {
                pr!(ctx, ", id 0x{:04x}", get_be16(bp, 4)?);
                let end = usize::try_from(length).map_or(bp.len(), |l| l.min(bp.len()));
                let mut p = 8;
                while p < end {
                    put_addr(ctx, ", ", bp, p)?;
                    p += 16;
                }
            }
        }
        ty::MOBILEPREFIX_ADVERT => {
            if v > 0 {
                pr!(ctx, ", id 0x{:04x}", get_be16(bp, 4)?);
                let flags = get_be16(bp, 6)?;
                if flags & 0xc000 != 0 {
                    ctx.put(" ");
                }
                if flags & 0x8000 != 0 {
                    ctx.put("M");
                }
                if flags & 0x4000 != 0 {
                    ctx.put("O");
                }
                if !nd::options(ctx, bp, 8, resid(length, 8))? {
                    ctx.print_trunc();
                    return Ok(());
                }
            }
        }
        ty::RPL => rpl::print(
            ctx,
            code,
            bp.get(4..).unwrap_or(&[]),
            length.wrapping_sub(4),
        )?,
        _ => {
            pr!(ctx, ", length {length}");
            if v <= 1 {
                print_unknown_data(ctx, bp, "\n\t", length);
            }
            return Ok(());
        }
    }
    if v == 0 {
        pr!(ctx, ", length {length}");
    }
    Ok(())
}

/// tcpdump passes `length - header` to the option walker as a C `int`: a message shorter
/// than its fixed part gives a negative remainder, which ends the walk at once.
#[inline]
fn resid(length: u32, fixed: u32) -> i64 {
    i64::from(length) - i64::from(fixed)
}

/// The checksum the sender should have used (tcpdump's `in_cksum_shouldbe`), from the
/// checksum in the packet and the verification result.
fn cksum_shouldbe(wire: u16, computed: u16) -> u16 {
    let mut s = u32::from(wire) + u32::from(computed);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// Appends `prefix` and the IPv6 address at `off` of `bp`; nothing when the address is
/// not all captured (tcpdump reads its arguments before it prints).
#[inline]
fn put_addr(ctx: &mut Ctx<'_>, prefix: &str, bp: &[u8], off: usize) -> PResult {
    let a = super::ip6::get_addr(bp, off)?;
    ctx.put(prefix);
    ctx.put_ip6(a);
    Ok(())
}

/// Router advertisement flags (`icmp6_opt_ra_flag_values`).
const RA_FLAGS: [(u32, &str); 4] = [
    (0x80, "managed"),
    (0x40, "other stateful"),
    (0x20, "home agent"),
    (0x02, "ipv6 only"),
];
/// Neighbor advertisement flags.
const NA_FLAGS: [(u32, &str); 3] = [
    (0x8000_0000, "router"),
    (0x4000_0000, "solicited"),
    (0x2000_0000, "override"),
];
/// Prefix information flags.
const PI_FLAGS: [(u32, &str); 3] = [(0x80, "onlink"), (0x40, "auto"), (0x20, "router")];

/// tcpdump's `bittok2str` for one-bit tokens: the names of the set bits joined by `sep`,
/// or `none` when no listed bit is set.
fn bit_names(ctx: &mut Ctx<'_>, v: u32, table: &[(u32, &str)], sep: &str, none: &str) {
    let mut first = true;
    for &(bit, name) in table {
        if v & bit != 0 {
            if !first {
                ctx.put(sep);
            }
            ctx.put(name);
            first = false;
        }
    }
    if first {
        ctx.put(none);
    }
}

/// Router preference (`get_rtpref`) from RA / route information flags.
fn rtpref(flags: u8) -> &'static str {
    ["medium", "high", "rsv", "low"][usize::from((flags & 0x18) >> 3)]
}

/// A lifetime in seconds, `infinity` for all ones (`get_lifetime`).
fn lifetime(ctx: &mut Ctx<'_>, v: u32) {
    if v == u32::MAX {
        ctx.put("infinity");
    } else {
        pr!(ctx, "{v}s");
    }
}

/// The offset (from the quoted IPv6 header) and protocol of a quoted TCP or UDP header whose
/// destination port is captured (`get_upperlayer`); `None` otherwise.
fn upper_layer(oip: &[u8]) -> Option<(usize, u8)> {
    let mut nh = *oip.get(6)?;
    let mut off = 0usize;
    let mut hlen = 40usize;
    while off < oip.len() {
        off += hlen;
        match nh {
            6 | 17 => return (oip.len() >= off + 4).then_some((off, nh)),
            0 | 60 | 43 => {
                let l = *oip.get(off + 1)?;
                nh = oip[off];
                hlen = (usize::from(l) + 1) << 3;
            }
            44 => {
                let offlg = u16::from_be_bytes([*oip.get(off + 2)?, *oip.get(off + 3)?]);
                if offlg & 0xfff8 != 0 {
                    return None;
                }
                nh = oip[off];
                hlen = 8;
            }
            51 => {
                let l = *oip.get(off + 1)?;
                nh = oip[off];
                hlen = (usize::from(l) + 2) << 2;
            }
            _ => return None,
        }
    }
    None
}

/// tcpdump's `print_unknown_data`: a hex dump of up to `len` bytes of `bp` (as far as
/// captured), every line starting with `indent`.
pub(crate) fn print_unknown_data(ctx: &mut Ctx<'_>, bp: &[u8], indent: &str, len: u32) {
    let n = usize::try_from(len).map_or(bp.len(), |l| l.min(bp.len()));
    crate::hexdump::hex(ctx.out, indent, &bp[..n]);
}

#[cfg(test)]
mod tests {
    use super::super::ip6::tests::{hex, ip6, opts, run};
    use super::*;

    /// Prints `icmp` inside an IPv6 header from 2001:db8::1 to 2001:db8::2, starting at
    /// "ICMP6" (the IPv6 part is checked elsewhere).
    pub fn icmp(v: u8, msg: &[u8]) -> String {
        let p = ip6(58, msg.len() as u16, msg);
        let hdr = super::super::ip6::tests::header_of(&p);
        run(&opts(v), |c| print(c, &p[40..], msg.len() as u32, &hdr))
    }

    #[test]
    fn echo_and_checksum() {
        // ping6 ::1 style request, checksum fixed up below
        let mut m = hex("8000 0000 1234 0001 6162");
        let p = ip6(58, m.len() as u16, &m);
        let hdr = super::super::ip6::tests::header_of(&p);
        let sum = pseudo_cksum(&hdr, 58, &m);
        m[2..4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(
            icmp(1, &m),
            "[icmp6 sum ok] ICMP6, echo request, id 4660, seq 1"
        );
        assert_eq!(
            icmp(0, &m),
            "ICMP6, echo request, id 4660, seq 1, length 10"
        );
        m[2] ^= 1;
        assert!(
            icmp(1, &m).starts_with("[bad icmp6 cksum 0x"),
            "{}",
            icmp(1, &m)
        );
    }

    #[test]
    fn unknown_type_hexdump() {
        let m = hex("a000 9844 fb61 0001 2000 dcf4 0008 0302 0000 0001 000b ad1e 7fc0 ffee");
        assert_eq!(
            icmp(0, &m),
            "ICMP6, unknown icmp6 type (160), length 28\n\t0x0000:  a000 9844 fb61 0001 \
             2000 dcf4 0008 0302\n\t0x0010:  0000 0001 000b ad1e 7fc0 ffee"
        );
        assert_eq!(
            icmp(0, &hex("a0")),
            "ICMP6, unknown icmp6 type (160) [|icmp6]"
        );
    }

    #[test]
    fn errors_quote_the_packet() {
        let mut m = hex("0104 0000 0000 0000");
        let mut inner = ip6(17, 8, &hex("1234 0035 0008 0000"));
        m.append(&mut inner);
        assert_eq!(
            icmp(0, &m),
            "ICMP6, destination unreachable, unreachable port, 2001:db8::2 udp port 53, length 56"
        );
        m[1] = 0;
        assert_eq!(
            icmp(0, &m),
            "ICMP6, destination unreachable, unreachable route 2001:db8::2, length 56"
        );
        m[0] = 3;
        assert_eq!(
            icmp(0, &m),
            "ICMP6, time exceeded in-transit for 2001:db8::2, length 56"
        );
        m[0] = 4;
        m[1] = 3;
        m[7] = 48;
        assert_eq!(
            icmp(0, &m),
            "ICMP6, parameter problem, incomplete header chain - octet 48, length 56"
        );
        assert_eq!(icmp(0, &m[..20]), "ICMP6, parameter problem [|icmp6]");
    }

    #[test]
    fn hex_print_odd_lengths() {
        let s = run(&opts(0), |c| {
            print_unknown_data(
                c,
                &hex("0102 0304 0506 0708 090a 0b0c 0d0e 0f10 11"),
                "\n\t",
                99,
            );
            Ok(())
        });
        assert_eq!(
            s,
            "\n\t0x0000:  0102 0304 0506 0708 090a 0b0c 0d0e 0f10\n\t0x0010:  11"
        );
    }

    #[test]
    fn upper_layer_walks_extension_headers() {
        let mut inner = ip6(0, 16, &hex("1100 0000 0000 0000 1234 0035 0008 0000"));
        assert_eq!(upper_layer(&inner), Some((48, 17)));
        inner.truncate(50);
        assert_eq!(upper_layer(&inner), None);
        let frag = ip6(44, 16, &hex("0600 0008 0000 0001 1234 0035"));
        assert_eq!(upper_layer(&frag), None);
    }
}
