//! UDP: addresses and ports, length checks, `-v`/`-vv` checksum, `UDP, length N`.
//!
//! Follows tcpdump 4.99.3's `udp_print`. DNS (53) and mDNS (5353) are decoded; other
//! application protocols on well-known ports (NTP, DHCP, ...) are not: such datagrams print
//! the plain `UDP, length N` form.

use super::{Ctx, IpHdr, PResult, get_be16, pseudo_cksum, tcp};
use crate::pr;

/// tcpdump's `udpipaddr_print`; `ports: None` is its `sport == -1` case.
fn addr_print(ctx: &mut Ctx<'_>, ip: &IpHdr<'_>, ports: Option<(u16, u16)>) {
    match ports {
        Some((s, d)) => tcp::print_endpoints(ctx, ip, 17, s, d),
        None => {
            if tcp::ip_next_is(ip, 17) {
                ctx.put_ip(ip.src);
                ctx.put(" > ");
                ctx.put_ip(ip.dst);
                ctx.put(": ");
            }
        }
    }
}

/// Prints a UDP datagram. `bp` starts at the UDP header, `length` is the length from the
/// IP layer.
pub fn print(ctx: &mut Ctx<'_>, bp: &[u8], length: u32, ip: &IpHdr<'_>) -> PResult {
    ctx.protocol = "udp";
    if bp.len() < 4 {
        addr_print(ctx, ip, None);
        ctx.print_trunc();
        return Ok(());
    }
    let sport = get_be16(bp, 0)?;
    let dport = get_be16(bp, 2)?;
    if length < 8 {
        addr_print(ctx, ip, Some((sport, dport)));
        pr!(ctx, "truncated-udp {}", length);
        return Ok(());
    }
    if bp.len() < 6 {
        addr_print(ctx, ip, Some((sport, dport)));
        ctx.print_trunc();
        return Ok(());
    }
    let mut ulen = u32::from(get_be16(bp, 4)?);
    if ulen == 0 && length > 65535 {
        ulen = length;
    }
    if ulen < 8 {
        addr_print(ctx, ip, Some((sport, dport)));
        pr!(ctx, "truncated-udplength {}", ulen);
        return Ok(());
    }
    ulen -= 8;
    let mut length = length - 8;
    if ulen < length {
        length = ulen;
    }
    if bp.len() < 8 {
        addr_print(ctx, ip, Some((sport, dport)));
        ctx.print_trunc();
        return Ok(());
    }
    addr_print(ctx, ip, Some((sport, dport)));

    if ctx.vflag() > 0 && !ip.fragmented {
        let v6 = ip.src.is_ipv6();
        let dgram = bp.get(..length as usize + 8);
        if !v6 && ctx.vflag() > 1 {
            let udp_sum = get_be16(bp, 6)?;
            if udp_sum == 0 {
                ctx.put("[no cksum] ");
            } else if let Some(d) = dgram {
                cksum_verdict(ctx, udp_sum, pseudo_cksum(ip, 17, d));
            }
        } else if v6 && let Some(d) = dgram {
            let udp_sum = get_be16(bp, 6)?;
            cksum_verdict(ctx, udp_sum, pseudo_cksum(ip, 17, d));
        }
    }

    if !ctx.opts.quick {
        let payload = bp.get(8..).unwrap_or(&[]);
        if sport == 53 || dport == 53 {
            return super::dns::print(ctx, payload, length, false, false);
        }
        if sport == 5353 || dport == 5353 {
            return super::dns::print(ctx, payload, length, false, true);
        }
    }
    if ulen > length && !ip.fragmented {
        pr!(ctx, "UDP, bad length {} > {}", ulen, length);
    } else {
        ctx.put("UDP, length ");
        ctx.put_u32(ulen);
    }
    Ok(())
}

fn cksum_verdict(ctx: &mut Ctx<'_>, udp_sum: u16, sum: u16) {
    if sum != 0 {
        pr!(ctx, "[bad udp cksum 0x{:04x} -> 0x{:04x}!] ", udp_sum, super::in_cksum_shouldbe(udp_sum, sum));
    } else {
        ctx.put("[udp sum ok] ");
    }
}
