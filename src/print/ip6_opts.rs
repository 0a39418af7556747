//! IPv6 hop-by-hop and destination options headers (tcpdump 4.99.3's `hbhopt_process`,
//! `dstopt_process`, `ip6_opt_process`).
//!
//! `HBH ` is always printed; the options only with `-v` for destination options, while for
//! hop-by-hop the walk always runs (it finds the jumbo payload length) and prints with `-v`:
//! `(pad1)`, `(padn)`, `(rtalert: 0xNNNN) `, `(jumbo: N) ` (or `- already seen`,
//! `- payload len != 0`, `- < 65536`, `- not a hop-by-hop option`), `(homeaddr: ADDR...)`,
//! `(opt_type 0xNN: len=N)`, then one space. A malformed option list prints the
//! truncation marker of the header (` [|hbhopt]`, ` [|dstopt]`) and ends the chain.

use super::super::{Ctx, PResult, get_bytes, get_u8};
use crate::pr;

const PAD1: u8 = 0x00;
const PADN: u8 = 0x01;
const ROUTER_ALERT: u8 = 0x05;
const JUMBO: u8 = 0xc2;
const HOME_ADDRESS: u8 = 0xc9;
const MINLEN: usize = 2;
const RTALERT_LEN: usize = 4;
const JUMBO_LEN: usize = 6;
const HOMEADDR_MINLEN: usize = 18;

/// The hop-by-hop options header at the start of `bp`. Returns its length, or `None` when
/// it ended the chain (the marker is printed). A valid jumbo payload option (IPv6 payload
/// length 0, value >= 65536) sets `found_jumbo` and replaces `payload_len`.
pub(super) fn hbh(
    ctx: &mut Ctx<'_>,
    bp: &[u8],
    found_jumbo: &mut bool,
    payload_len: &mut u32,
) -> PResult<Option<usize>> {
    ctx.protocol = "hbhopt";
    let hlen = (usize::from(get_u8(bp, 1)?) + 1) << 3;
    let Ok(h) = get_bytes(bp, 0, hlen) else {
        ctx.print_trunc();
        return Ok(None);
    };
    ctx.put("HBH ");
    if !options(ctx, &h[2..], Some((found_jumbo, payload_len))) {
        ctx.print_trunc();
        return Ok(None);
    }
    Ok(Some(hlen))
}

/// The destination options header at the start of `bp`; like [`hbh`], options only with
/// `-v`, and a jumbo payload option here is never valid.
pub(super) fn dstopt(ctx: &mut Ctx<'_>, bp: &[u8]) -> PResult<Option<usize>> {
    ctx.protocol = "dstopt";
    let hlen = (usize::from(get_u8(bp, 1)?) + 1) << 3;
    let Ok(h) = get_bytes(bp, 0, hlen) else {
        ctx.print_trunc();
        return Ok(None);
    };
    ctx.put("DSTOPT ");
    if ctx.opts.verbose > 0 && !options(ctx, &h[2..], None) {
        ctx.print_trunc();
        return Ok(None);
    }
    Ok(Some(hlen))
}

/// The length of the option at `i` (type byte included), if its header fits in `b`.
#[inline]
fn opt_len(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        &PAD1 => Some(1),
        _ => b.get(i + 1).map(|&l| usize::from(l) + 2),
    }
}

/// Walks the options in `b` (the header after its first two bytes). `false` when an option
/// is malformed or runs past the header (tcpdump's `goto trunc`).
fn options(ctx: &mut Ctx<'_>, b: &[u8], mut hbh: Option<(&mut bool, &mut u32)>) -> bool {
    let v = ctx.opts.verbose > 0;
    let len = b.len();
    let mut seen_jumbo = false;
    let mut i = 0;
    while i < len {
        let Some(optlen) = opt_len(b, i) else {
            return false;
        };
        if i + optlen > len {
            return false;
        }
        let o = &b[i..i + optlen];
        let rem = len - i;
        match o[0] {
            PAD1 => {
                if v {
                    ctx.put("(pad1)");
                }
            }
            PADN => {
                if v {
                    ctx.put("(padn)");
                }
            }
            ROUTER_ALERT => {
                if rem < RTALERT_LEN {
                    ctx.put("(rtalert: trunc)");
                    return false;
                }
                if usize::from(o[1]) != RTALERT_LEN - 2 {
                    pr!(ctx, "(rtalert: invalid len {})", o[1]);
                    return false;
                }
                if v {
                    pr!(
                        ctx,
                        "(rtalert: 0x{:04x}) ",
                        u16::from_be_bytes([o[2], o[3]])
                    );
                }
            }
            JUMBO => {
                if rem < JUMBO_LEN {
                    ctx.put("(jumbo: trunc)");
                    return false;
                }
                if usize::from(o[1]) != JUMBO_LEN - 2 {
                    pr!(ctx, "(jumbo: invalid len {})", o[1]);
                    return false;
                }
                let jumbo = u32::from_be_bytes([o[2], o[3], o[4], o[5]]);
                if seen_jumbo {
                    if v {
                        pr!(ctx, "(jumbo: {jumbo} - already seen) ");
                    }
                } else {
                    seen_jumbo = true;
                    let note = match hbh.as_mut() {
                        None => " - not a hop-by-hop option",
                        Some((_, plen)) if **plen != 0 => " - payload len != 0",
                        Some(_) if jumbo < 65536 => " - < 65536",
                        Some((found, plen)) => {
                            **found = true;
                            **plen = jumbo;
                            ""
                        }
                    };
                    if v {
                        pr!(ctx, "(jumbo: {jumbo}{note}) ");
                    }
                }
            }
            HOME_ADDRESS => {
                if rem < HOMEADDR_MINLEN {
                    ctx.put("(homeaddr: trunc)");
                    return false;
                }
                if usize::from(o[1]) < HOMEADDR_MINLEN - 2 {
                    pr!(ctx, "(homeaddr: invalid len {})", o[1]);
                    return false;
                }
                if v {
                    ctx.put("(homeaddr: ");
                    let _ = super::put_addr(ctx, o, 2);
                    if optlen > HOMEADDR_MINLEN && !sub_options(ctx, &o[HOMEADDR_MINLEN..]) {
                        return false;
                    }
                    ctx.put(")");
                }
            }
            t => {
                if rem < MINLEN {
                    pr!(ctx, "(type {t}: trunc)");
                    return false;
                }
                if v {
                    pr!(ctx, "(opt_type 0x{t:02x}: len={})", o[1]);
                }
            }
        }
        i += optlen;
    }
    if v {
        ctx.put(" ");
    }
    true
}

/// Sub-options of the home address option (`ip6_sopt_print`).
fn sub_options(ctx: &mut Ctx<'_>, b: &[u8]) -> bool {
    let len = b.len();
    let mut i = 0;
    while i < len {
        let Some(optlen) = opt_len(b, i) else {
            return false;
        };
        if i + optlen > len {
            return false;
        }
        match b[i] {
            PAD1 => ctx.put(", pad1"),
            PADN => ctx.put(", padn"),
            t => pr!(ctx, ", sopt_type 0x{t:02x}: len={}", b[i + 1]),
        }
        i += optlen;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::super::tests::{hex, ip6, opts, run};
    use super::*;

    fn hbh_v(v: u8, h: &[u8], plen: u32) -> (String, Option<usize>, bool, u32) {
        let mut found = false;
        let mut pl = plen;
        let mut r = None;
        let s = run(&opts(v), |c| {
            r = hbh(c, h, &mut found, &mut pl)?;
            Ok(())
        });
        (s, r, found, pl)
    }

    #[test]
    fn router_alert_and_padn() {
        let h = hex("3a00 0502 0000 0100");
        assert_eq!(
            hbh_v(1, &h, 36),
            ("HBH (rtalert: 0x0000) (padn) ".into(), Some(8), false, 36)
        );
        assert_eq!(hbh_v(0, &h, 36).0, "HBH ");
    }

    #[test]
    fn jumbo_rules() {
        let h = hex("3a00 c204 0001 0000");
        assert_eq!(
            hbh_v(1, &h, 0),
            ("HBH (jumbo: 65536)  ".into(), Some(8), true, 65536)
        );
        assert_eq!(hbh_v(1, &h, 8).0, "HBH (jumbo: 65536 - payload len != 0)  ");
        let h = hex("3a00 c204 0000 ffff");
        assert_eq!(
            hbh_v(1, &h, 0),
            ("HBH (jumbo: 65535 - < 65536)  ".into(), Some(8), false, 0)
        );
        let h = hex("3a01 c204 0001 0000 c204 0000 00f8 0000");
        assert_eq!(
            hbh_v(1, &h, 0).0,
            "HBH (jumbo: 65536) (jumbo: 248 - already seen) (pad1)(pad1) "
        );
    }

    #[test]
    fn malformed_options_end_the_chain() {
        // option length runs past the header
        let h = hex("3a00 3030 3030 3030");
        assert_eq!(hbh_v(0, &h, 8), ("HBH  [|hbhopt]".into(), None, false, 8));
        // router alert with the wrong length
        let h = hex("3a00 0503 0000 0000");
        assert_eq!(hbh_v(1, &h, 8).0, "HBH (rtalert: invalid len 3) [|hbhopt]");
        // header cut
        assert_eq!(hbh_v(0, &hex("3a01 0000"), 8).0, " [|hbhopt]");
        assert_eq!(hbh_v(0, &hex("3a"), 8).0, " [|hbhopt]");
    }

    #[test]
    fn unknown_and_homeaddr() {
        let mut h = hex("3b02 c910");
        h.extend_from_slice(&hex("20010db8000000000000000000000005"));
        h.extend_from_slice(&hex("1a00 0000"));
        let s = run(&opts(1), |c| dstopt(c, &h).map(|_| ()));
        assert_eq!(
            s,
            "DSTOPT (homeaddr: 2001:db8::5)(opt_type 0x1a: len=0)(pad1)(pad1) "
        );
        assert_eq!(run(&opts(0), |c| dstopt(c, &h).map(|_| ())), "DSTOPT ");
    }

    #[test]
    fn hbh_in_ip6() {
        let p = ip6(0, 16, &hex("3a00 0502 0000 0100 8000 0000 0000 0000"));
        let s = run(&opts(0), |c| super::super::print(c, &p, p.len() as u32));
        assert!(s.starts_with("IP6 2001:db8::1 > 2001:db8::2: HBH "), "{s}");
    }
}
