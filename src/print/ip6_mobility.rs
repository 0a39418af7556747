//! IPv6 mobility header (RFC 6275), as tcpdump 4.99.3's `mobility_print` shows it:
//! `mobility: TYPE` with the type's fields (cookies and tokens only with `-v`), then with
//! `-v` the mobility options. It always ends the extension-header chain.
//!
//! A 4.99.3 quirk kept on purpose: the option walk demands one captured byte *after* each
//! option, so an option list that ends at the end of the capture prints ` [|mobility]`.

use super::super::{Ctx, PResult, get_be16, get_be32, get_u8};
use crate::pr;

const MINLEN: usize = 8;

/// Message names and the minimum header length of each type (`ip6m_str`, `ip6m_hdrlen`).
const TYPES: [(&str, usize); 8] = [
    ("BRR", MINLEN),
    ("HoTI", MINLEN + 8),
    ("CoTI", MINLEN + 8),
    ("HoT", MINLEN + 16),
    ("CoT", MINLEN + 16),
    ("BU", MINLEN + 4),
    ("BA", MINLEN + 4),
    ("BE", MINLEN + 16),
];

/// Prints the mobility header at the start of `bp`.
pub(super) fn print(ctx: &mut Ctx<'_>, bp: &[u8]) -> PResult {
    ctx.protocol = "mobility";
    let Some(&len_byte) = bp.get(1) else {
        ctx.print_trunc();
        return Ok(());
    };
    let mhlen = (usize::from(len_byte) + 1) << 3;
    let typ = get_u8(bp, 2)?;
    let known = TYPES.get(usize::from(typ));
    if known.is_some_and(|&(_, min)| mhlen < min) {
        pr!(ctx, "(header length {mhlen} is too small for type {typ})");
        ctx.print_trunc();
        return Ok(());
    }
    ctx.put("mobility: ");
    match known {
        Some((name, _)) => ctx.put(name),
        None => pr!(ctx, "type-#{typ}"),
    }
    let v = ctx.opts.verbose > 0;
    let which = |home: bool| if home { "Home" } else { "Care-of" };
    let hlen = match typ {
        0 => MINLEN,
        1 | 2 => {
            if v {
                let (a, b) = (get_be32(bp, 8)?, get_be32(bp, 12)?);
                pr!(ctx, " {} Init Cookie={a:08x}:{b:08x}", which(typ == 1));
            }
            MINLEN + 8
        }
        3 | 4 => {
            pr!(ctx, " nonce id=0x{:x}", get_be16(bp, 6)?);
            if v {
                let (a, b) = (get_be32(bp, 8)?, get_be32(bp, 12)?);
                pr!(ctx, " {} Init Cookie={a:08x}:{b:08x}", which(typ == 3));
                let (a, b) = (get_be32(bp, 16)?, get_be32(bp, 20)?);
                pr!(ctx, " {} Keygen Token={a:08x}:{b:08x}", which(typ == 3));
            }
            MINLEN + 16
        }
        5 => {
            pr!(ctx, " seq#={}", get_be16(bp, 6)?);
            if bp.len() < MINLEN + 2 {
                ctx.print_trunc();
                return Ok(());
            }
            let bits = bp[MINLEN] >> 4;
            if bits != 0 {
                ctx.put(" ");
                for (bit, name) in [(8, "A"), (4, "H"), (2, "L"), (1, "K")] {
                    if bits & bit != 0 {
                        ctx.put(name);
                    }
                }
            }
            pr!(
                ctx,
                " lifetime={}",
                u32::from(get_be16(bp, MINLEN + 2)?) << 2
            );
            MINLEN + 4
        }
        6 => {
            pr!(ctx, " status={}", get_u8(bp, 6)?);
            if get_u8(bp, 7)? & 0x80 != 0 {
                ctx.put(" K");
            }
            pr!(ctx, " seq#={}", get_be16(bp, MINLEN)?);
            pr!(
                ctx,
                " lifetime={}",
                u32::from(get_be16(bp, MINLEN + 2)?) << 2
            );
            MINLEN + 4
        }
        7 => {
            pr!(ctx, " status={}", get_u8(bp, 6)?);
            let a = super::get_addr(bp, MINLEN)?;
            ctx.put(" homeaddr ");
            ctx.put_ip6(a);
            MINLEN + 16
        }
        _ => {
            pr!(ctx, " len={len_byte}");
            return Ok(());
        }
    };
    if v && !options(ctx, bp.get(hlen..).unwrap_or(&[]), mhlen - hlen)? {
        ctx.print_trunc();
    }
    Ok(())
}

/// The mobility options (`mobility_opt_print`) in `len` bytes from the start of `bp`.
/// `Ok(false)` when one is malformed or not followed by a captured byte.
fn options(ctx: &mut Ctx<'_>, bp: &[u8], len: usize) -> PResult<bool> {
    let mut i = 0;
    while i < len {
        let t = get_u8(bp, i)?;
        let optlen = if t == 0 {
            1
        } else if i + 1 < len {
            usize::from(get_u8(bp, i + 1)?) + 2
        } else {
            return Ok(false);
        };
        if i + optlen > len || bp.len() <= i + optlen {
            return Ok(false);
        }
        let rem = len - i;
        let short = |ctx: &mut Ctx<'_>, min: usize, what: &str| {
            let s = rem < min;
            if s {
                pr!(ctx, "({what}: trunc)");
            }
            s
        };
        match t {
            0 => ctx.put("(pad1)"),
            1 => {
                if short(ctx, 2, "padn") {
                    return Ok(false);
                }
                ctx.put("(padn)");
            }
            2 => {
                if short(ctx, 4, "refresh") {
                    return Ok(false);
                }
                pr!(ctx, "(refresh: {})", u32::from(get_be16(bp, i + 2)?) << 2);
            }
            3 => {
                if short(ctx, 18, "altcoa") {
                    return Ok(false);
                }
                let a = super::get_addr(bp, i + 2)?;
                ctx.put("(alt-CoA: ");
                ctx.put_ip6(a);
                ctx.put(")");
            }
            4 => {
                if short(ctx, 6, "ni") {
                    return Ok(false);
                }
                let (ho, co) = (get_be16(bp, i + 2)?, get_be16(bp, i + 4)?);
                pr!(ctx, "(ni: ho=0x{ho:04x} co=0x{co:04x})");
            }
            5 => {
                if short(ctx, 12, "auth") {
                    return Ok(false);
                }
                ctx.put("(auth)");
            }
            _ => {
                if rem < 2 {
                    pr!(ctx, "(sopt_type {t}: trunc)");
                    return Ok(false);
                }
                pr!(ctx, "(type-0x{t:02x}: len={})", get_u8(bp, i + 1)?);
            }
        }
        i += optlen;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{hex, opts, run};
    use super::*;

    fn mh(v: u8, h: &[u8]) -> String {
        run(&opts(v), |c| print(c, h))
    }

    #[test]
    fn binding_update_and_ack() {
        // BU, options pad to the end of the capture: 4.99.3 reports truncation.
        let h = hex("3b01 0500 0000 03e8 8000 0e10 0102 0000");
        assert_eq!(
            mh(1, &h),
            "mobility: BU seq#=1000 A lifetime=14400 [|mobility]"
        );
        assert_eq!(mh(0, &h), "mobility: BU seq#=1000 A lifetime=14400");
        let h = hex("3b01 0600 0000 0000 03e8 0e10 0202 0708 00");
        assert_eq!(
            mh(1, &h),
            "mobility: BA status=0 seq#=1000 lifetime=14400(refresh: 7200)"
        );
        assert_eq!(
            mh(1, &h[..16]),
            "mobility: BA status=0 seq#=1000 lifetime=14400 [|mobility]"
        );
    }

    #[test]
    fn odd_types() {
        assert_eq!(mh(0, &hex("3b00 0000 0000 0000")), "mobility: BRR");
        assert_eq!(
            mh(0, &hex("3b00 0100 0000 0000")),
            "(header length 8 is too small for type 1) [|mobility]"
        );
        assert_eq!(
            mh(0, &hex("3b00 0900 0000 0000")),
            "mobility: type-#9 len=0"
        );
        assert_eq!(mh(0, &hex("3b")), " [|mobility]");
        assert_eq!(mh(0, &hex("3b00")), " [|mobility]");
    }
}
