//! ICMP (tcpdump 4.99.3's `icmp_print`), including the quoted IP header of error messages
//! with `-v` and RFC 4884 multi-part extensions (MPLS label stack objects).
//!
//! 4.99.3 does not decode RFC 8335 extended echo (types 42/43): they print as `type-#42`.
//! tcpdump builds the summary in a buffer and prints it only once every field it needs
//! was read; we write directly and roll back to the line's previous end on truncation.

use super::{Ctx, IpHdr, PResult, get_be16, get_be32, get_u8, in_cksum, ip};
use crate::pr;

/// Bytes before the RFC 4884 extension structure (tcpdump's `ICMP_EXTD_MINLEN`).
const ICMP_EXTD_MINLEN: u32 = 156 - 20;

/// How the summary part ended.
enum Summary {
    Done,
    /// tcpdump's local `goto trunc`: the summary is dropped, ` [|icmp]` printed.
    Trunc,
}

/// Appends the IPv4 address at `off`.
fn addr(ctx: &mut Ctx<'_>, bp: &[u8], off: usize) -> PResult {
    ctx.put_ip4_at(bp, off)
}

/// tcpdump's `icmp_tstamp_print`: milliseconds since midnight UTC.
fn tstamp(ctx: &mut Ctx<'_>, t: u32) {
    let msec = t % 1000;
    let sec = t / 1000;
    let min = sec / 60;
    let sec = sec - min * 60;
    let hrs = min / 60;
    let min = min - hrs * 60;
    pr!(ctx, "{:02}:{:02}:{:02}.{:03}", hrs, min, sec, msec);
}

/// The text after `ICMP ` (before `, length N`).
fn summary(ctx: &mut Ctx<'_>, bp: &[u8], icmp_type: u8, code: u8) -> PResult<Summary> {
    const IDST: usize = 8 + 16; // quoted IP header's destination
    match icmp_type {
        0 | 8 => {
            pr!(
                ctx,
                "echo {}, id {}, seq {}",
                if icmp_type == 8 { "request" } else { "reply" },
                get_be16(bp, 4)?,
                get_be16(bp, 6)?
            );
        }
        3 => match code {
            3 => {
                if bp.len() < 8 + 10 {
                    return Ok(Summary::Trunc);
                }
                let hlen = usize::from(get_u8(bp, 8)? & 0x0f) * 4;
                let dport = get_be16(bp, 8 + hlen + 2)?;
                let proto = get_u8(bp, 8 + 9)?;
                addr(ctx, bp, IDST)?;
                match proto {
                    6 | 17 => {
                        ctx.put(if proto == 6 { " tcp port " } else { " udp port " });
                        super::tcp::put_port(ctx, proto, dport);
                        ctx.put(" unreachable");
                    }
                    _ => pr!(ctx, " protocol {} port {} unreachable", proto, dport),
                }
            }
            4 => {
                let mtu = get_be16(bp, 6)?;
                addr(ctx, bp, IDST)?;
                if mtu != 0 {
                    pr!(ctx, " unreachable - need to frag (mtu {})", mtu);
                } else {
                    ctx.put(" unreachable - need to frag");
                }
            }
            2 => {
                get_bytes_check(bp, IDST, 4)?;
                let p = get_u8(bp, 8 + 9)?;
                addr(ctx, bp, IDST)?;
                pr!(ctx, " protocol {} unreachable", p);
            }
            _ => {
                let (pre, post) = match code {
                    0 => ("net ", " unreachable"),
                    1 => ("host ", " unreachable"),
                    5 => ("", " unreachable - source route failed"),
                    6 => ("net ", " unreachable - unknown"),
                    7 => ("host ", " unreachable - unknown"),
                    8 => ("", " unreachable - source host isolated"),
                    9 => ("net ", " unreachable - admin prohibited"),
                    10 => ("host ", " unreachable - admin prohibited"),
                    11 => ("net ", " unreachable - tos prohibited"),
                    12 => ("host ", " unreachable - tos prohibited"),
                    13 => ("host ", " unreachable - admin prohibited filter"),
                    14 => ("host ", " unreachable - host precedence violation"),
                    15 => ("host ", " unreachable - precedence cutoff"),
                    _ => ("", ""),
                };
                ctx.put(pre);
                addr(ctx, bp, IDST)?;
                if code <= 15 {
                    ctx.put(post);
                } else {
                    pr!(ctx, " unreachable - #{}", code);
                }
            }
        },
        5 => {
            get_bytes_check(bp, IDST, 4)?;
            get_bytes_check(bp, 4, 4)?;
            match code {
                0..=3 => {
                    ctx.put(if code < 2 { "redirect " } else { "redirect-tos " });
                    addr(ctx, bp, IDST)?;
                    ctx.put(if code.is_multiple_of(2) { " to net " } else { " to host " });
                    addr(ctx, bp, 4)?;
                }
                _ => {
                    pr!(ctx, "redirect-#{} ", code);
                    addr(ctx, bp, IDST)?;
                    ctx.put(" to ");
                    addr(ctx, bp, 4)?;
                }
            }
        }
        9 => {
            if bp.len() < 8 {
                return Ok(Summary::Trunc);
            }
            ctx.put("router advertisement lifetime ");
            let lifetime = u32::from(get_be16(bp, 6)?);
            if lifetime < 60 {
                pr!(ctx, "{}", lifetime);
            } else if lifetime < 3600 {
                pr!(ctx, "{}:{:02}", lifetime / 60, lifetime % 60);
            } else {
                pr!(ctx, "{}:{:02}:{:02}", lifetime / 3600, (lifetime % 3600) / 60, lifetime % 60);
            }
            let num = get_u8(bp, 4)?;
            pr!(ctx, " {}:", num);
            let size = get_u8(bp, 5)?;
            if size != 2 {
                pr!(ctx, " [size {}]", size);
            } else {
                let mut off = 8usize;
                for _ in 0..num {
                    if bp.len() < off + 8 {
                        return Ok(Summary::Trunc);
                    }
                    ctx.put(" {");
                    addr(ctx, bp, off)?;
                    pr!(ctx, " {}}}", get_be32(bp, off + 4)?);
                    off += 8;
                }
            }
        }
        11 => {
            if bp.len() < IDST + 4 {
                return Ok(Summary::Trunc);
            }
            match code {
                0 => ctx.put("time exceeded in-transit"),
                1 => ctx.put("ip reassembly time exceeded"),
                _ => pr!(ctx, "time exceeded-#{}", code),
            }
        }
        12 => {
            if code != 0 {
                pr!(ctx, "parameter problem - code {}", code);
            } else {
                pr!(ctx, "parameter problem - octet {}", get_u8(bp, 4)?);
            }
        }
        18 => pr!(ctx, "address mask is 0x{:08x}", get_be32(bp, 8)?),
        13 => pr!(ctx, "time stamp query id {} seq {}", get_be16(bp, 4)?, get_be16(bp, 6)?),
        14 => {
            if bp.len() < 20 {
                return Ok(Summary::Trunc);
            }
            pr!(ctx, "time stamp reply id {} seq {}: org ", get_be16(bp, 4)?, get_be16(bp, 6)?);
            tstamp(ctx, get_be32(bp, 8)?);
            ctx.put(", recv ");
            tstamp(ctx, get_be32(bp, 12)?);
            ctx.put(", xmit ");
            tstamp(ctx, get_be32(bp, 16)?);
        }
        4 => ctx.put("source quench"),
        10 => ctx.put("router solicitation"),
        15 => ctx.put("information request"),
        16 => ctx.put("information reply"),
        17 => ctx.put("address mask request"),
        _ => pr!(ctx, "type-#{}", icmp_type),
    }
    Ok(Summary::Done)
}

fn get_bytes_check(bp: &[u8], off: usize, len: usize) -> PResult {
    super::get_bytes(bp, off, len).map(|_| ())
}

/// Prints an ICMP message. `bp` starts at the ICMP header.
pub fn print(ctx: &mut Ctx<'_>, bp: &[u8], plen: u32, iph: &IpHdr<'_>) -> PResult {
    ctx.protocol = "icmp";
    let icmp_type = get_u8(bp, 0)?;
    let code = get_u8(bp, 1)?;
    let mark = ctx.out.len();
    ctx.put("ICMP ");
    match summary(ctx, bp, icmp_type, code) {
        Ok(Summary::Done) => {}
        Ok(Summary::Trunc) => {
            ctx.out.truncate(mark);
            ctx.print_trunc();
            return Ok(());
        }
        Err(e) => {
            ctx.out.truncate(mark);
            return Err(e);
        }
    }
    pr!(ctx, ", length {}", plen);
    let v = ctx.vflag() > 0;
    if v && !iph.fragmented
        && let Some(msg) = bp.get(..plen as usize)
    {
        let sum = in_cksum(&[msg]);
        if sum != 0 {
            let icmp_sum = get_be16(bp, 2)?;
            pr!(ctx, " (wrong icmp cksum {:x} (->{:x})!)", icmp_sum, super::in_cksum_shouldbe(icmp_sum, sum));
        }
    }
    // The quoted datagram of an error message.
    if v && matches!(icmp_type, 3 | 4 | 5 | 11 | 12) {
        ctx.put("\n\t");
        let inner_len = get_be16(bp, 8 + 2)?;
        let inner = bp.get(8..).unwrap_or(&[]);
        let inner = inner.get(..usize::from(inner_len)).unwrap_or(inner);
        ip::print(ctx, inner, u32::from(inner_len))?;
    }
    ctx.protocol = "icmp";
    if v && plen > ICMP_EXTD_MINLEN && matches!(icmp_type, 3 | 11 | 12) {
        return extensions(ctx, bp, plen);
    }
    Ok(())
}

/// RFC 4884 multi-part extensions after the 128-byte original datagram field.
fn extensions(ctx: &mut Ctx<'_>, bp: &[u8], plen: u32) -> PResult {
    const EXT: usize = ICMP_EXTD_MINLEN as usize; // version/reserved byte
    if bp.len() < EXT + 5 {
        ctx.print_trunc();
        return Ok(());
    }
    let ext_len = (plen - ICMP_EXTD_MINLEN) as usize;
    if get_u8(bp, 5)? == 0
        && let Some(ext) = bp.get(EXT..EXT + ext_len)
        && in_cksum(&[ext]) != 0
    {
        return Ok(());
    }
    let version = get_u8(bp, EXT)? >> 4;
    pr!(ctx, "\n\tICMP Multi-Part extension v{}", version);
    if version != 2 {
        ctx.put(" packet not supported");
        return Ok(());
    }
    let mut hlen = plen - ICMP_EXTD_MINLEN;
    if let Some(ext) = bp.get(EXT..EXT + hlen as usize) {
        pr!(
            ctx,
            ", checksum 0x{:04x} ({}correct), length {}",
            get_be16(bp, EXT + 2)?,
            if in_cksum(&[ext]) != 0 { "in" } else { "" },
            hlen
        );
    }
    hlen = hlen.wrapping_sub(4);
    let mut obj = EXT + 4;
    while hlen > 4 {
        if bp.len() < obj + 4 {
            ctx.print_trunc();
            return Ok(());
        }
        let mut obj_tlen = u32::from(get_be16(bp, obj)?);
        let class = get_u8(bp, obj + 2)?;
        let ctype = get_u8(bp, obj + 3)?;
        obj += 4;
        let name = match class {
            1 => "MPLS Stack Entry",
            2 => "Interface Identification",
            _ => "unknown",
        };
        pr!(ctx, "\n\t  {} Object ({}), Class-Type: {}, length {}", name, class, ctype, obj_tlen);
        hlen -= 4;
        if class == 0 || obj_tlen < 4 {
            return Ok(());
        }
        obj_tlen -= 4;
        if class == 1 && ctype == 1 {
            let raw = get_be32(bp, obj)?;
            pr!(ctx, "\n\t    label {}, tc {}", (raw >> 12) & 0xfffff, (raw >> 9) & 7);
            if (raw >> 8) & 1 != 0 {
                ctx.put(", [S]");
            }
            pr!(ctx, ", ttl {}", raw & 0xff);
        } else {
            unknown_data(ctx, bp, obj, obj_tlen as usize);
        }
        if hlen < obj_tlen {
            break;
        }
        hlen -= obj_tlen;
        obj += obj_tlen as usize;
    }
    Ok(())
}

/// tcpdump's `print_unknown_data`: hex dump of what was captured of `len` bytes at `off`.
fn unknown_data(ctx: &mut Ctx<'_>, bp: &[u8], off: usize, len: usize) {
    const IDENT: &str = "\n\t    ";
    match bp.get(off..) {
        None => {
            ctx.put(IDENT);
            ctx.put("Dissector error: print_unknown_data called with pointer past end of packet");
        }
        Some(rest) => crate::hexdump::hex(ctx.out, IDENT, rest.get(..len).unwrap_or(rest)),
    }
}
