//! Multicast listener discovery (tcpdump 4.99.3's `mld6_print`, `mldv2_query_print`,
//! `mldv2_report_print`). `bp` is the whole ICMPv6 message, `len` its length.
//!
//! v1: `max resp delay: N addr: ADDR` (nothing when the 24 bytes are not captured).
//! v2 query: `[max resp delay=N] [gaddr ADDR sflag robustness=N qqi=N { SRC... }]`
//! (delay, flags and sources by verbosity). v2 report: `, N group record(s)` and with `-v`
//! each record `[gaddr ADDR TYPE, N source(s)]` or with `-vv` `[gaddr ADDR TYPE { SRC... }]`.

use super::super::{Ctx, PResult, get_be16, get_u8};
use crate::pr;

pub(super) const MLD_MINLEN: u32 = 24;
pub(super) const MLDV2_MINLEN: u32 = 28;

/// MLDv1 query, report and done.
pub(super) fn v1(ctx: &mut Ctx<'_>, bp: &[u8]) -> PResult {
    if bp.len() < MLD_MINLEN as usize {
        return Ok(());
    }
    pr!(ctx, "max resp delay: {} ", get_be16(bp, 4)?);
    super::put_addr(ctx, "addr: ", bp, 8)
}

/// An MLDv2 exponential code (max response code, QQIC) as a value.
fn mant_exp(code: u32, threshold: u32, mant_mask: u32, exp_mask: u32, exp_shift: u32) -> u32 {
    if code < threshold {
        code
    } else {
        ((code & mant_mask) | (mant_mask + 1)) << (((code & exp_mask) >> exp_shift) + 3)
    }
}

/// MLDv2 query (RFC 3810 5.1).
pub(super) fn v2_query(ctx: &mut Ctx<'_>, bp: &[u8], len: u32) -> PResult {
    if len < MLDV2_MINLEN {
        pr!(ctx, " [invalid len {len}]");
        return Ok(());
    }
    let v = ctx.opts.verbose;
    let mrc = u32::from(get_be16(bp, 4)?);
    if v > 0 {
        pr!(
            ctx,
            " [max resp delay={}]",
            mant_exp(mrc, 32768, 0x0fff, 0x7000, 12)
        );
    }
    super::put_addr(ctx, " [gaddr ", bp, 8)?;
    if v > 0 {
        let f = get_u8(bp, 24)?;
        if f & 0x08 != 0 {
            ctx.put(" sflag");
        }
        if f & 0x07 != 0 {
            pr!(ctx, " robustness={}", f & 0x07);
        }
        let qqic = u32::from(get_u8(bp, 25)?);
        pr!(ctx, " qqi={}", mant_exp(qqic, 128, 0x0f, 0x70, 4));
    }
    let nsrcs = u32::from(get_be16(bp, 26)?);
    if nsrcs > 0 {
        if u64::from(len) < 28 + u64::from(nsrcs) * 16 {
            ctx.put(" [invalid number of sources]");
        } else if v > 1 {
            ctx.put(" {");
            for i in 0..nsrcs as usize {
                super::put_addr(ctx, " ", bp, 28 + 16 * i)?;
            }
            ctx.put(" }");
        } else {
            pr!(ctx, ", {nsrcs} source(s)");
        }
    }
    ctx.put("]");
    Ok(())
}

/// MLDv2 report (RFC 3810 5.2).
pub(super) fn v2_report(ctx: &mut Ctx<'_>, bp: &[u8], len: u32) -> PResult {
    if len < 8 {
        pr!(ctx, " [invalid len {len}]");
        return Ok(());
    }
    let v = ctx.opts.verbose;
    let ngroups = get_be16(bp, 6)?;
    pr!(ctx, ", {ngroups} group record(s)");
    if v == 0 {
        return Ok(());
    }
    let len = u64::from(len);
    let mut group = 8usize;
    for _ in 0..ngroups {
        if len < group as u64 + 20 {
            ctx.put(" [invalid number of groups]");
            return Ok(());
        }
        super::put_addr(ctx, " [gaddr ", bp, group + 4)?;
        let rtype = get_u8(bp, group)?;
        match rtype {
            1..=6 => {
                let n = ["is_in", "is_ex", "to_in", "to_ex", "allow", "block"];
                pr!(ctx, " {}", n[usize::from(rtype - 1)]);
            }
            _ => pr!(ctx, "  [v2-report-#{rtype}]"),
        }
        let nsrcs = usize::from(get_be16(bp, group + 2)?);
        if len < (group + 20 + nsrcs * 16) as u64 {
            pr!(ctx, " [invalid number of sources {nsrcs}]");
            return Ok(());
        }
        if v == 1 {
            pr!(ctx, ", {nsrcs} source(s)");
        } else {
            ctx.put(" {");
            for j in 0..nsrcs {
                super::put_addr(ctx, " ", bp, group + 20 + 16 * j)?;
            }
            ctx.put(" }");
        }
        group += 20 + nsrcs * 16;
        ctx.put("]");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::super::ip6::tests::hex;
    use super::super::tests::icmp;

    #[test]
    fn query_and_report() {
        let q = hex("8200 0000 2710 0000 0000 0000 0000 0000 0000 0000 0000 0000 023c 0000");
        assert_eq!(
            icmp(2, &q).split("ICMP6").nth(1).unwrap(),
            ", multicast listener query v2 [max resp delay=10000] [gaddr :: robustness=2 qqi=60]"
        );
        let r = hex("8f00 0000 0000 0001 0400 0000 ff02 0000 0000 0000 0000 0db8 1122 3344");
        assert_eq!(
            icmp(2, &r).split("ICMP6").nth(1).unwrap(),
            ", multicast listener report v2, 1 group record(s) [gaddr ff02::db8:1122:3344 to_ex { }]"
        );
        assert_eq!(
            icmp(1, &r).split("ICMP6").nth(1).unwrap(),
            ", multicast listener report v2, 1 group record(s) [gaddr ff02::db8:1122:3344 to_ex, 0 source(s)]"
        );
        assert_eq!(
            icmp(0, &r),
            "ICMP6, multicast listener report v2, 1 group record(s), length 28"
        );
    }
}
