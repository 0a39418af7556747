//! IPv6 routing header (tcpdump 4.99.3's `rt6_print`): type 0 (deprecated) and type 2 with
//! their addresses, type 4 (segment routing header) with its segments. 4.99.3 prints no SRH
//! TLVs; an odd length is `(invalid length N) (invalid)`.
//!
//! `RT6 (len=N, type=N[ [Deprecated]], segleft=N[, rsv=0xN], [0]ADDR, [1]ADDR) `
//! `RT6 (len=N, type=4, segleft=N, last-entry=N[, flags=0xN], tag=N, [0]ADDR...) `
//! (`rsv`/`flags` only when non-zero or with `-v`; `tag` in hex).

use super::super::{Ctx, PResult, get_be16, get_be32, get_u8};
use crate::pr;

/// Prints the routing header at the start of `bp`; returns its length, or `None` when it
/// ends the chain (unknown type, odd length).
pub(super) fn print(ctx: &mut Ctx<'_>, bp: &[u8]) -> PResult<Option<usize>> {
    ctx.protocol = "rt6";
    ctx.put("RT6");
    let len = get_u8(bp, 1)?;
    pr!(ctx, " (len={len}");
    let typ = get_u8(bp, 2)?;
    pr!(ctx, ", type={typ}");
    if typ == 0 {
        ctx.put(" [Deprecated]");
    }
    pr!(ctx, ", segleft={}", get_u8(bp, 3)?);
    let v = ctx.opts.verbose > 0;
    match typ {
        0 | 2 => {
            let rsv = get_be32(bp, 4)?;
            if rsv != 0 || v {
                pr!(ctx, ", rsv=0x{rsv:x}");
            }
        }
        4 => {
            pr!(ctx, ", last-entry={}", get_u8(bp, 4)?);
            let flags = get_u8(bp, 5)?;
            if flags != 0 || v {
                pr!(ctx, ", flags=0x{flags:x}");
            }
            pr!(ctx, ", tag={:x}", get_be16(bp, 6)?);
        }
        _ => {
            ctx.put(" (unknown type) (invalid)");
            return Ok(None);
        }
    }
    if len % 2 == 1 {
        pr!(ctx, " (invalid length {len}) (invalid)");
        return Ok(None);
    }
    for i in 0..usize::from(len / 2) {
        let a = super::get_addr(bp, 8 + 16 * i)?;
        pr!(ctx, ", [{i}]");
        ctx.put_ip6(a);
    }
    ctx.put(") ");
    Ok(Some((usize::from(len) + 1) << 3))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{hex, opts, run};
    use super::*;

    fn rt(v: u8, h: &[u8]) -> String {
        run(&opts(v), |c| print(c, h).map(|_| ()))
    }

    #[test]
    fn type0_and_srh() {
        let mut h = hex("3a02 0001 0000 0000");
        h.extend_from_slice(&hex("22000000000000000210000200000004"));
        assert_eq!(
            rt(1, &h),
            "RT6 (len=2, type=0 [Deprecated], segleft=1, rsv=0x0, [0]2200::210:2:0:4) "
        );
        assert_eq!(
            rt(0, &h),
            "RT6 (len=2, type=0 [Deprecated], segleft=1, [0]2200::210:2:0:4) "
        );
        let mut h = hex("3a02 0401 0000 00ab");
        h.extend_from_slice(&hex("000c0000000000000000000000000002"));
        assert_eq!(
            rt(1, &h),
            "RT6 (len=2, type=4, segleft=1, last-entry=0, flags=0x0, tag=ab, [0]c::2) "
        );
    }

    #[test]
    fn invalid_and_cut() {
        assert_eq!(
            rt(0, &hex("3b05 0400 0000 0000")),
            "RT6 (len=5, type=4, segleft=0, last-entry=0, tag=0 (invalid length 5) (invalid)"
        );
        assert_eq!(
            rt(0, &hex("3b00 0700 0000 0000")),
            "RT6 (len=0, type=7, segleft=0 (unknown type) (invalid)"
        );
        assert_eq!(
            rt(0, &hex("3030 3030 3030")),
            "RT6 (len=48, type=48, segleft=48 (unknown type) (invalid)"
        );
        assert_eq!(rt(0, &hex("30")), "RT6 [|rt6]");
        assert_eq!(
            rt(0, &hex("3002 0000 0000 0000 2001")),
            "RT6 (len=2, type=0 [Deprecated], segleft=0 [|rt6]"
        );
    }
}
