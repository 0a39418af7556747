//! Node information queries and replies (RFC 4620) and router renumbering (RFC 2894), as
//! tcpdump 4.99.3 prints them (`icmp6_nodeinfo_print`, `icmp6_rrenum_print`).
//!
//! Both look at the *captured* size of the message, not its length on the wire, the way
//! 4.99.3 does; a missing fixed part prints ` [|icmp6]` and lets the caller go on (the
//! `, length N` suffix without `-v` still follows).

use super::super::{Ctx, PResult, get_be16, get_be32, get_u8};
use super::nd::print_char;
use crate::pr;

const NI_HDR: usize = 16;

/// A node information query (139) or reply (140); `bp` is the whole message.
pub(super) fn nodeinfo(ctx: &mut Ctx<'_>, bp: &[u8], icmp6len: u32) -> PResult {
    let siz = bp.len();
    let v = ctx.opts.verbose > 0;
    match get_u8(bp, 0)? {
        super::ty::NI_QUERY => {
            if siz == 12 {
                // KAME who-are-you
                ctx.put(" who-are-you request");
                return Ok(());
            }
            ctx.put(" node information query");
            if siz < NI_HDR {
                ctx.print_trunc();
                return Ok(());
            }
            ctx.put(" (");
            let qtype = get_be16(bp, 4)?;
            let flags = get_be16(bp, 6)?;
            match qtype {
                0 => ctx.put("noop"),
                1 => {
                    ctx.put("supported qtypes");
                    if flags != 0 {
                        pr!(ctx, " [{}]", if flags & 1 != 0 { "C" } else { "" });
                    }
                }
                2 => ctx.put("DNS name"),
                3 => {
                    ctx.put("node addresses");
                    if flags != 0 {
                        ctx.put(" [");
                        node_addr_flags(ctx, flags, false);
                        ctx.put("]");
                    }
                }
                _ => ctx.put("unknown"),
            }
            if qtype == 0 || qtype == 1 {
                if siz != NI_HDR && v {
                    ctx.put(", invalid len");
                }
                ctx.put(")");
                return Ok(());
            }
            if siz == NI_HDR {
                ctx.put(", 03 draft)");
                return Ok(());
            }
            let cp = NI_HDR;
            match get_u8(bp, 1)? {
                0 => {
                    if siz >= NI_HDR + 16 {
                        if siz != NI_HDR + 16 {
                            if v {
                                ctx.put(", invalid subject len");
                            }
                        } else {
                            super::put_addr(ctx, ", subject=", bp, cp)?;
                        }
                    }
                }
                1 => {
                    ctx.put(", subject=DNS name");
                    name(ctx, bp, cp)?;
                }
                2 => {
                    if siz >= NI_HDR + 4 {
                        if siz != NI_HDR + 4 {
                            if v {
                                ctx.put(", invalid subject len");
                            }
                        } else {
                            let a = super::super::get_bytes(bp, cp, 4)?;
                            ctx.put(", subject=");
                            ctx.put_ip4([a[0], a[1], a[2], a[3]]);
                        }
                    }
                }
                _ => ctx.put(", unknown subject"),
            }
            ctx.put(")");
        }
        super::ty::NI_REPLY => {
            if usize::try_from(icmp6len).map_or(true, |l| l > siz) || siz < NI_HDR {
                ctx.print_trunc();
                return Ok(());
            }
            ctx.put(" node information reply (");
            let code = get_u8(bp, 1)?;
            let mut comma = false;
            match code {
                0 if v => {
                    ctx.put("success");
                    comma = true;
                }
                1 | 2 => {
                    ctx.put(if code == 1 { "refused" } else { "unknown" });
                    comma = true;
                    if siz != NI_HDR && v {
                        ctx.put(", invalid length");
                    }
                }
                _ => {}
            }
            if code != 0 {
                ctx.put(")");
                return Ok(());
            }
            let sep = if comma { ", " } else { "" };
            let qtype = get_be16(bp, 4)?;
            let flags = get_be16(bp, 6)?;
            match qtype {
                0 => {
                    pr!(ctx, "{sep}noop");
                    if siz != NI_HDR && v {
                        ctx.put(", invalid length");
                    }
                }
                1 => {
                    pr!(ctx, "{sep}supported qtypes");
                    if flags != 0 {
                        pr!(ctx, " [{}]", if flags & 1 != 0 { "C" } else { "" });
                    }
                }
                2 => {
                    pr!(ctx, "{sep}DNS name");
                    name(ctx, bp, NI_HDR + 4)?;
                    if flags & 1 != 0 {
                        pr!(ctx, " [TTL={}]", get_be32(bp, NI_HDR)?);
                    }
                }
                3 => {
                    pr!(ctx, "{sep}node addresses");
                    let mut i = NI_HDR;
                    while i + 20 <= siz {
                        let a = super::super::ip6::get_addr(bp, i + 4)?;
                        let ttl = get_be32(bp, i)?;
                        ctx.put(" ");
                        ctx.put_ip6(a);
                        pr!(ctx, "({ttl})");
                        i += 20;
                    }
                    if flags != 0 {
                        ctx.put(" [");
                        node_addr_flags(ctx, flags, true);
                        ctx.put("]");
                    }
                }
                _ => pr!(ctx, "{sep}unknown"),
            }
            ctx.put(")");
        }
        _ => {}
    }
    Ok(())
}

/// Node address flags `aGSLCA` (and `T` in replies).
fn node_addr_flags(ctx: &mut Ctx<'_>, f: u16, with_truncate: bool) {
    for (bit, c) in [
        (0x40, "a"),
        (0x20, "G"),
        (0x10, "S"),
        (0x08, "L"),
        (0x04, "C"),
        (0x02, "A"),
    ] {
        if f & bit != 0 {
            ctx.put(c);
        }
    }
    if with_truncate && f & 0x01 != 0 {
        ctx.put("T");
    }
}

/// A subject or reply name at `cp`: a Pascal string when its first byte is the length of
/// the rest (draft 03), else DNS labels without compression (`dnsname_print`).
fn name(ctx: &mut Ctx<'_>, bp: &[u8], cp: usize) -> PResult {
    let ep = bp.len();
    let first = get_u8(bp, cp)?;
    if cp < ep && usize::from(first) == ep - cp - 1 {
        if ctx.opts.verbose > 0 {
            ctx.put(", 03 draft");
        }
        ctx.put(", \"");
        for &c in &bp[cp + 1..] {
            print_char(ctx, c);
        }
        ctx.put("\"");
        return Ok(());
    }
    ctx.put(", \"");
    let mut cp = cp;
    while cp < ep {
        let i = usize::from(bp[cp]);
        cp += 1;
        if i != 0 {
            if i > ep - cp {
                ctx.put("???");
                break;
            }
            for &c in &bp[cp..cp + i] {
                print_char(ctx, c);
            }
            cp += i;
            if cp + 1 < ep && bp[cp] != 0 {
                ctx.put(".");
            }
        } else {
            if cp == ep {
                ctx.put(".");
            } else if !(cp + 1 == ep && bp[cp] == 0) {
                ctx.put("???");
            }
            break;
        }
    }
    ctx.put("\"");
    Ok(())
}

/// Router renumbering (138); `bp` is the whole message.
pub(super) fn rrenum(ctx: &mut Ctx<'_>, bp: &[u8]) -> PResult {
    if bp.len() < 16 {
        ctx.print_trunc();
        return Ok(());
    }
    let v = ctx.opts.verbose;
    let code = bp[1];
    match code {
        0 => ctx.put(", command"),
        1 => ctx.put(", result"),
        255 => ctx.put(", sequence number reset"),
        _ => pr!(ctx, ", code-#{code}"),
    }
    pr!(ctx, ", seq={}", get_be32(bp, 4)?);
    if v > 0 {
        let flags = bp[9];
        ctx.put("[");
        if flags != 0 {
            for (bit, c) in [
                (0x80, "T"),
                (0x40, "R"),
                (0x20, "A"),
                (0x10, "S"),
                (0x08, "P"),
            ] {
                if flags & bit != 0 {
                    ctx.put(c);
                }
            }
            ctx.put(",");
        }
        pr!(ctx, "seg={},", bp[8]);
        pr!(ctx, "maxdelay={}", get_be16(bp, 10)?);
        let rsvd = get_be32(bp, 12)?;
        if rsvd != 0 {
            pr!(ctx, "rsvd=0x{rsvd:x}");
        }
        ctx.put("]");
    }
    if code != 0 {
        return Ok(());
    }
    // match-prefix part
    let m = 16;
    if bp.len() < m + 24 {
        ctx.print_trunc();
        return Ok(());
    }
    ctx.put(if v > 1 { "\n\t" } else { " " });
    ctx.put("match(");
    match bp[m] {
        1 => ctx.put("add"),
        2 => ctx.put("change"),
        3 => ctx.put("setglobal"),
        c => pr!(ctx, "#{c}"),
    }
    if v > 0 {
        pr!(
            ctx,
            ",ord={},min={},max={}",
            bp[m + 2],
            bp[m + 4],
            bp[m + 5]
        );
    }
    ctx.put(",");
    super::super::addr::push_ip6(ctx.out, super::super::ip6::get_addr(bp, m + 8)?);
    pr!(ctx, "/{})", bp[m + 3]);
    let Some(n) = usize::from(bp[m + 1]).checked_sub(3).filter(|n| n % 4 == 0) else {
        ctx.print_trunc();
        return Ok(());
    };
    let mut cp = m + 24;
    for _ in 0..n / 4 {
        if bp.len() < cp + 32 {
            ctx.print_trunc();
            return Ok(());
        }
        let u = &bp[cp..cp + 32];
        ctx.put(if v > 1 { "\n\t" } else { " " });
        ctx.put("use(");
        if u[12] != 0 {
            pr!(
                ctx,
                "{}{},",
                if u[12] & 0x80 != 0 { "V" } else { "" },
                if u[12] & 0x40 != 0 { "P" } else { "" }
            );
        }
        if v > 0 {
            pr!(ctx, "mask=0x{:x},raflags=0x{:x},", u[2], u[3]);
            for (name, at) in [("vltime", 4), ("pltime", 8)] {
                let t = u32::from_be_bytes([u[at], u[at + 1], u[at + 2], u[at + 3]]);
                if t == u32::MAX {
                    pr!(ctx, "{name}=infty,");
                } else {
                    pr!(ctx, "{name}={t},");
                }
            }
        }
        super::super::addr::push_ip6(ctx.out, super::super::ip6::get_addr(u, 16)?);
        pr!(ctx, "/{}/{})", u[0], u[1]);
        cp += 32;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::super::ip6::tests::hex;
    use super::super::tests::icmp;

    fn tail(s: String) -> String {
        s.split_once("ICMP6")
            .map(|(_, r)| format!("ICMP6{r}"))
            .unwrap()
    }

    #[test]
    fn node_information() {
        let q =
            hex("8b00 0000 0003 0002 0102 0304 0506 0708 2001 0db8 0000 0000 0000 0000 0000 0001");
        assert_eq!(
            tail(icmp(1, &q)),
            "ICMP6, who-are-you request node information query (node addresses [A], subject=2001:db8::1)"
        );
        let mut r = hex("8c00 0000 0003 0002 0102 0304 0506 0708");
        r.extend(hex("0000 0000 0000 0000 0000 0000 0000 0000 0000 0001"));
        r.extend(hex("0000 0000 2001 0db8 0000 0000 0000 0000 0000 0001"));
        assert_eq!(
            tail(icmp(1, &r)),
            "ICMP6, who-are-you reply node information reply (success, node addresses ::1(0) 2001:db8::1(0) [A])"
        );
        let q4 = hex("8b02 0000 0004 0000 0102 0304 0506 0708 c000 0201");
        assert_eq!(
            tail(icmp(1, &q4)),
            "ICMP6, who-are-you request node information query (unknown, subject=192.0.2.1)"
        );
        assert_eq!(
            tail(icmp(0, &q4[..8])),
            "ICMP6, who-are-you request node information query [|icmp6], length 8"
        );
    }

    #[test]
    fn router_renumbering() {
        let m = hex("8a00 0000 0000 0000 0010 0000 0000 0000
                     0107 0030 0080 0000 fec0 0000 0000 0000 0000 0000 0000 0000
                     3010 0000 0027 8d00 0009 3a80 0000 0000 3ffe 0501 fffe 0000 0000 0000 0000 0000");
        assert_eq!(
            tail(icmp(0, &m)),
            "ICMP6, router renumbering, command, seq=0 match(add,fec0::/48) use(3ffe:501:fffe::/48/16), length 72"
        );
        assert_eq!(
            tail(icmp(1, &m)),
            "ICMP6, router renumbering, command, seq=0[S,seg=0,maxdelay=0] match(add,ord=0,min=0,max=128,fec0::/48) use(mask=0x0,raflags=0x0,vltime=2592000,pltime=604800,3ffe:501:fffe::/48/16)"
        );
    }
}
