//! Neighbor discovery options (tcpdump 4.99.3's `icmp6_opt_print`), printed with `-v`, one a
//! line: `\n\t  NAME option (TYPE), length BYTES (UNITS): VALUE`, and with `-vv` each
//! followed by a hex dump of its body. Known: source/target link-layer address, prefix
//! information, redirected header, MTU, RDNSS, DNSSL, advertisement interval, home agent
//! information, route information. 4.99.3 knows no nonce (14) or PREF64 (38): they print as
//! `unknown option` with a hex dump, which at `-v` also ends the walk.

use super::super::{Ctx, PResult, get_be16, get_be32, get_u8};
use super::{PI_FLAGS, bit_names, lifetime, print_unknown_data, rtpref};
use crate::pr;

fn option_name(t: u8) -> &'static str {
    match t {
        1 => "source link-address",
        2 => "destination link-address",
        3 => "prefix info",
        4 => "redirected header",
        5 => "mtu",
        7 => "advertisement interval",
        8 => "homeagent information",
        24 => "route info",
        25 => "rdnss",
        31 => "dnssl",
        _ => "unknown",
    }
}

/// Walks the options of the ICMPv6 message `msg` from offset `start`; `resid` is the
/// message length left after the fixed part (may be negative). `Ok(false)` when an option
/// is malformed or cut: the caller prints the truncation marker.
pub(super) fn options(
    ctx: &mut Ctx<'_>,
    msg: &[u8],
    start: usize,
    mut resid: i64,
) -> PResult<bool> {
    let ep = msg.len();
    let mut cp = start;
    while cp < ep {
        if cp + 1 >= ep {
            return Ok(false);
        }
        if resid <= 0 {
            return Ok(true);
        }
        let t = msg[cp];
        let units = msg[cp + 1];
        let olen = usize::from(units) << 3;
        if units == 0 || cp + olen > ep {
            return Ok(false);
        }
        pr!(
            ctx,
            "\n\t  {} option ({t}), length {olen} ({units}): ",
            option_name(t)
        );
        let body = olen - 2;
        match t {
            1 | 2 => {
                for (i, b) in msg[cp + 2..cp + olen].iter().enumerate() {
                    if i > 0 {
                        ctx.put(":");
                    }
                    pr!(ctx, "{b:02x}");
                }
            }
            3 => {
                let prefix = super::super::ip6::get_addr(msg, cp + 16)?;
                let plen = get_u8(msg, cp + 2)?;
                let flags = get_u8(msg, cp + 3)?;
                let valid = get_be32(msg, cp + 4)?;
                ctx.put_ip6(prefix);
                pr!(
                    ctx,
                    "/{plen}{}, Flags [",
                    if units != 4 { "badlen" } else { "" }
                );
                bit_names(ctx, u32::from(flags), &PI_FLAGS, ", ", "none");
                ctx.put("], valid time ");
                lifetime(ctx, valid);
                let pref = get_be32(msg, cp + 8)?;
                ctx.put(", pref. time ");
                lifetime(ctx, pref);
            }
            4 => {
                // tcpdump dumps from the start of the option list here, not of this option.
                print_unknown_data(ctx, &msg[start..], "\n\t    ", u32::from(units) << 3);
            }
            5 => {
                let mtu = get_be32(msg, cp + 4)?;
                pr!(
                    ctx,
                    " {mtu}{}",
                    if units != 1 { "bad option length" } else { "" }
                );
            }
            25 => {
                pr!(ctx, " lifetime {}s,", get_be32(msg, cp + 4)?);
                for i in 0..usize::from((units - 1) / 2) {
                    super::put_addr(ctx, " addr: ", msg, cp + 8 + 16 * i)?;
                }
            }
            31 => {
                pr!(ctx, " lifetime {}s, domain(s):", get_be32(msg, cp + 4)?);
                let mut dom = cp + 8;
                while dom < cp + olen && get_u8(msg, dom)? != 0 {
                    ctx.put(" ");
                    match fqdn(ctx, msg, dom, start)? {
                        Some(next) => dom = next,
                        None => return Ok(false),
                    }
                }
            }
            7 => pr!(ctx, " {}ms", get_be32(msg, cp + 4)?),
            8 => {
                let (pref, life) = (get_be16(msg, cp + 4)?, get_be16(msg, cp + 6)?);
                pr!(ctx, " preference {pref}, lifetime {life}");
            }
            24 => {
                if msg.len() < cp + 8 {
                    return Ok(false);
                }
                let mut prefix = [0u8; 16];
                let n = match units {
                    1 => 0,
                    2 => 8,
                    3 => 16,
                    _ => return Ok(false),
                };
                prefix[..n].copy_from_slice(super::super::get_bytes(msg, cp + 8, n)?);
                ctx.put(" ");
                ctx.put_ip6(prefix);
                pr!(ctx, "/{}", msg[cp + 2]);
                pr!(ctx, ", pref={}", rtpref(msg[cp + 3]));
                ctx.put(", lifetime=");
                let l = get_be32(msg, cp + 4)?;
                lifetime(ctx, l);
            }
            _ => {
                if ctx.opts.verbose <= 1 {
                    print_unknown_data(ctx, &msg[cp + 2..], "\n\t  ", body as u32);
                    return Ok(true);
                }
            }
        }
        if ctx.opts.verbose > 1 {
            print_unknown_data(ctx, &msg[cp + 2..], "\n\t    ", body as u32);
        }
        cp += olen;
        resid -= olen as i64;
    }
    Ok(true)
}

const MAXCDNAME: usize = 255;

/// One label's length as tcpdump's `labellen` sees it (`None`: unusable, a diagnostic may
/// have been printed).
fn label_len(ctx: &mut Ctx<'_>, msg: &[u8], at: usize) -> Option<usize> {
    let i = *msg.get(at)?;
    match i & 0xc0 {
        0x40 => {
            let elt = i & 0x3f;
            if elt != 0x01 {
                pr!(ctx, "<ELT {elt}>");
                return None;
            }
            let bitlen = match *msg.get(at + 1)? {
                0 => 256,
                b => usize::from(b),
            };
            Some(bitlen.div_ceil(8) + 1)
        }
        0x80 => {
            ctx.put("<BAD LABEL TYPE>");
            None
        }
        _ => Some(usize::from(i)),
    }
}

/// A DNS name at `cp` of `msg` (tcpdump's `fqdn_print`): labels with a `.` after each,
/// compression pointers relative to `base` that must point backwards, `<BAD PTR>` etc. on
/// errors. Returns the offset after the name in place, `None` on error or truncation.
fn fqdn(ctx: &mut Ctx<'_>, msg: &[u8], cp: usize, base: usize) -> PResult<Option<usize>> {
    let Some(mut l) = label_len(ctx, msg, cp) else {
        return Ok(None);
    };
    let mut max_offset = cp - base;
    let mut i = msg[cp];
    let mut cp = cp + 1;
    let mut compress = false;
    let mut rp = if i & 0xc0 != 0xc0 { Some(cp + l) } else { None };
    let mut name_chars = 0usize;
    if i == 0 {
        ctx.put(".");
        return Ok(rp);
    }
    while i != 0 && cp < msg.len() {
        match i & 0xc0 {
            0xc0 => {
                if !compress {
                    rp = Some(cp + 1);
                    compress = true;
                }
                let Some(&lo) = msg.get(cp) else {
                    return Ok(None);
                };
                let offset = ((usize::from(i) << 8) | usize::from(lo)) & 0x3fff;
                if offset >= max_offset {
                    ctx.put("<BAD PTR>");
                    return Ok(None);
                }
                max_offset = offset;
                cp = base + offset;
                let Some(&b) = msg.get(cp) else {
                    return Ok(None);
                };
                i = b;
                let Some(ll) = label_len(ctx, msg, cp) else {
                    return Ok(None);
                };
                l = ll;
                cp += 1;
                continue;
            }
            0x40 => {
                // bit-string label (RFC 2673)
                if blabel(ctx, msg, cp)?.is_none() {
                    return Ok(None);
                }
            }
            0x80 => {
                ctx.put("<BAD LABEL TYPE>");
                return Ok(None);
            }
            _ => {
                let room = if name_chars + l <= MAXCDNAME {
                    l
                } else {
                    MAXCDNAME.saturating_sub(name_chars)
                };
                if !print_n(ctx, msg, cp, room) {
                    return Ok(None);
                }
                name_chars += l;
            }
        }
        cp += l;
        if name_chars <= MAXCDNAME {
            ctx.put(".");
        }
        name_chars += 1;
        let Some(&b) = msg.get(cp) else {
            return Ok(None);
        };
        i = b;
        let Some(ll) = label_len(ctx, msg, cp) else {
            return Ok(None);
        };
        l = ll;
        cp += 1;
        if !compress {
            rp = rp.map(|r| r + l + 1);
        }
    }
    if name_chars > MAXCDNAME {
        ctx.put("<DOMAIN NAME TOO LONG>");
    }
    Ok(rp)
}

/// Prints `n` bytes from `at` with tcpdump's `fn_print_char` escaping; `false` when the
/// capture ends first.
fn print_n(ctx: &mut Ctx<'_>, msg: &[u8], at: usize, n: usize) -> bool {
    let avail = msg.get(at..).unwrap_or(&[]);
    for &c in avail.iter().take(n) {
        print_char(ctx, c);
    }
    avail.len() >= n
}

/// tcpdump's `fn_print_char`: `M-` for the high bit, `^X` for control characters.
pub(super) fn print_char(ctx: &mut Ctx<'_>, c: u8) {
    let mut c = c;
    if c >= 0x80 {
        c &= 0x7f;
        ctx.put("M-");
    }
    if !(0x20..=0x7e).contains(&c) {
        c ^= 0x40;
        ctx.put("^");
    }
    ctx.out.push(char::from(c));
}

/// A bit-string label (`blabel_print`): `\[xHEX/BITS]`.
fn blabel(ctx: &mut Ctx<'_>, msg: &[u8], cp: usize) -> PResult<Option<usize>> {
    let Some(&b) = msg.get(cp) else {
        return Ok(None);
    };
    let bitlen = if b == 0 { 256 } else { usize::from(b) };
    let slen = bitlen.div_ceil(4);
    let lim = cp + 1 + slen;
    ctx.put("\\[x");
    let mut bitp = cp + 1;
    let mut rem = bitlen;
    while bitp < lim && rem > 7 {
        pr!(ctx, "{:02x}", get_u8(msg, bitp)?);
        rem -= 8;
        bitp += 1;
    }
    if rem > 4 {
        let tc = get_u8(msg, bitp)?;
        pr!(ctx, "{:02x}", tc & (0xffu8 << (8 - rem)));
    } else if rem > 0 {
        let tc = get_u8(msg, bitp)?;
        pr!(ctx, "{:1x}", ((tc >> 4) & 0x0f) & (0x0fu8 << (4 - rem)));
    }
    pr!(ctx, "/{bitlen}]");
    Ok(Some(lim))
}

#[cfg(test)]
mod tests {
    use super::super::super::ip6::tests::hex;
    use super::super::tests::icmp;

    #[test]
    fn router_advertisement_options() {
        let ra = hex(
            "8600 0000 40c0 0000 0000 0000 0000 0000
             0101 b099 28c8 d66c
             0304 48c0 0027 8d00 0009 3a80 0000 0000 2222 3333 4444 5555 6600 0000 0000 0000
             1905 0000 0000 0005 abcd 0000 0000 0000 0000 0000 0000 efef 1234 5678 0000 0000 0000 0000 0000 0001
             1f07 0000 0000 0005 0765 7861 6d70 6c65 0363 6f6d 0007 6578 616d 706c 6503 6f72 6700 0464 6f6d 3104 646f 6d32 0374 6c64 0000 0000 0000 0000
             0501 0000 0000 0064
             0701 0000 0000 1388
             0801 0000 c351 000f
             1802 3008 0000 1c20 fd8d 4fb3 5b2e 0000
             0e01 6069 604c 0aaa",
        );
        let s = icmp(1, &ra);
        let want = "ICMP6, router advertisement, length 200\n\thop limit 64, Flags [managed, other stateful], pref medium, router lifetime 0s, reachable time 0ms, retrans timer 0ms\
\n\t  source link-address option (1), length 8 (1): b0:99:28:c8:d6:6c\
\n\t  prefix info option (3), length 32 (4): 2222:3333:4444:5555:6600::/72, Flags [onlink, auto], valid time 2592000s, pref. time 604800s\
\n\t  rdnss option (25), length 40 (5):  lifetime 5s, addr: abcd::efef addr: 1234:5678::1\
\n\t  dnssl option (31), length 56 (7):  lifetime 5s, domain(s): example.com. example.org. dom1.dom2.tld.\
\n\t  mtu option (5), length 8 (1):  100\
\n\t  advertisement interval option (7), length 8 (1):  5000ms\
\n\t  homeagent information option (8), length 8 (1):  preference 50001, lifetime 15\
\n\t  route info option (24), length 16 (2):  fd8d:4fb3:5b2e::/48, pref=high, lifetime=7200s\
\n\t  unknown option (14), length 8 (1): \n\t  0x0000:  6069 604c 0aaa";
        let got = s
            .split_once("ICMP6")
            .map(|(_, r)| format!("ICMP6{r}"))
            .unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn zero_length_option_is_truncation() {
        let ns =
            hex("8700 0000 0000 0000 fe80 0000 0000 0000 546f f7ff fee1 000f 0e00 6069 604c 0aaa");
        let s = icmp(1, &ns);
        assert!(
            s.ends_with("who has fe80::546f:f7ff:fee1:f [|icmp6]"),
            "{s}"
        );
    }
}
