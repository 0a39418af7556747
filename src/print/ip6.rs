//! IPv6 and its extension-header chain, as tcpdump 4.99.3 prints them (`ip6_print`).
//!
//! Contract (see `print/mod.rs` for the one shared by all dissectors):
//!
//! * [`print()`] gets the captured bytes from the first byte of the IPv6 header and the length
//!   the link layer reports. It prints `IP6 ` (not with `-e`), the `-v` header
//!   `(class 0x.., flowlabel 0x....., hlim N, next-header NAME (N) payload length: N) `,
//!   the addresses, then walks hop-by-hop options (`ip6_opts.rs`), destination options, routing
//!   headers incl. SRH (`ip6_rt.rs`), fragment headers and the mobility header (`ip6_mobility.rs`),
//!   and hands the first upper-layer header to [`super::ip::demux`].
//! * The captured bytes are cut at the end the payload length (or a jumbo payload option)
//!   claims, like tcpdump's `nd_push_snaplen`/`nd_change_snaplen`; the upper layer sees only
//!   those.
//! * [`IpHdr::cksum_dst`] is the final destination of a type 0/2 routing header or an SRH's
//!   segment 0 (tcpdump's `ip6_finddst`), else the header's destination.
//! * Diagnostics use 4.99.3's wording: `truncated-ip6 N`, `truncated-ip6 - N bytes missing!`,
//!   `version error: N != 6`, ` [|ip6]` (and ` [|hbhopt]`, ` [|dstopt]`, ` [|rt6]`,
//!   ` [|frag6]`, ` [|mobility]` from the extension printers), ` (invalid)`.
//!
//! Every walk advances by at least 8 bytes per header and stops at the end of the captured
//! bytes, so a packet of N bytes costs O(N); nothing allocates.

use super::{Ctx, IpHdr, PResult, Trunc, get_be16, get_be32, get_bytes, get_u8};
use crate::pr;
use std::net::{IpAddr, Ipv6Addr};

#[cfg(test)]
#[path = "ip6_difftest.rs"]
mod difftest;
#[path = "ip6_mobility.rs"]
mod mobility;
#[path = "ip6_opts.rs"]
mod opts;
#[path = "ip6_rt.rs"]
mod rt;

/// Length of the fixed IPv6 header.
pub const HDR_LEN: usize = 40;

/// IPv6 next-header / IP protocol numbers used here.
pub mod nh {
    pub const HOPOPTS: u8 = 0;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const DCCP: u8 = 33;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const ICMPV6: u8 = 58;
    pub const DSTOPTS: u8 = 60;
    pub const MOBILITY_OLD: u8 = 62;
    pub const SCTP: u8 = 132;
    pub const MOBILITY: u8 = 135;
}

/// Reads a 16-byte IPv6 address at `off`.
#[inline]
pub fn get_addr(bp: &[u8], off: usize) -> PResult<[u8; 16]> {
    let b = get_bytes(bp, off, 16)?;
    let mut a = [0u8; 16];
    a.copy_from_slice(b);
    Ok(a)
}

/// Appends an IPv6 address read at `off` (tcpdump's `GET_IP6ADDR_STRING`); nothing is
/// printed when it is not all captured.
#[inline]
pub fn put_addr(ctx: &mut Ctx<'_>, bp: &[u8], off: usize) -> PResult {
    let a = get_addr(bp, off)?;
    ctx.put_ip6(a);
    Ok(())
}

/// State of the extension-header walk that outlives one header.
struct Walk {
    /// The IPv6 payload length, replaced by a valid jumbo payload length.
    payload_len: u32,
    found_ext: bool,
    found_jumbo: bool,
    found_hbh: bool,
    fragmented: bool,
}

/// Prints an IPv6 datagram; `bp` starts at the IPv6 header, `length` is the length the
/// link layer reports for it.
pub fn print(ctx: &mut Ctx<'_>, bp: &[u8], length: u32) -> PResult {
    ctx.protocol = "ip6";
    let hdr = get_bytes(bp, 0, HDR_LEN)?;
    if length < HDR_LEN as u32 {
        pr!(ctx, "truncated-ip6 {length}");
        return Ok(());
    }
    if !ctx.opts.link_header {
        ctx.put("IP6 ");
    }
    let version = hdr[0] >> 4;
    if version != 6 {
        pr!(ctx, "version error: {version} != 6");
        return Ok(());
    }
    let mut w = Walk {
        payload_len: u32::from(u16::from_be_bytes([hdr[4], hdr[5]])),
        found_ext: false,
        found_jumbo: false,
        found_hbh: false,
        fragmented: false,
    };
    // With a zero payload length the chain is walked over everything captured, looking for
    // a jumbo payload option (tcpdump adds the header length once more here).
    let mut len: u32 = if w.payload_len != 0 {
        let l = w.payload_len + HDR_LEN as u32;
        if length < l {
            pr!(ctx, "truncated-ip6 - {} bytes missing!", l - length);
        }
        l
    } else {
        length.wrapping_add(HDR_LEN as u32)
    };
    let mut nh = hdr[6];
    if ctx.opts.verbose > 0 {
        let flow = u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
        ctx.put("(");
        if flow & 0x0ff0_0000 != 0 {
            pr!(ctx, "class 0x{:02x}, ", (flow & 0x0ff0_0000) >> 20);
        }
        if flow & 0x000f_ffff != 0 {
            pr!(ctx, "flowlabel 0x{:05x}, ", flow & 0x000f_ffff);
        }
        pr!(
            ctx,
            "hlim {}, next-header {} ({nh}) payload length: {}) ",
            hdr[7],
            super::ip::ipproto_name(nh).unwrap_or("unknown"),
            w.payload_len
        );
    }
    // nd_push_snaplen: nothing past the end the IPv6 header claims.
    let mut data = cut(bp, len);

    let mut off = 0usize;
    let mut advance = HDR_LEN;
    let mut total_advance: u32 = 0;
    let mut ph: u8 = 255;
    while off < data.len() {
        if (len as usize) < advance {
            ctx.print_trunc();
            return Ok(());
        }
        off += advance;
        len -= advance as u32;
        total_advance = total_advance.wrapping_add(advance as u32);

        if off == HDR_LEN && !matches!(nh, nh::TCP | nh::UDP | nh::DCCP | nh::SCTP) {
            put_addr(ctx, hdr, 8)?;
            ctx.put(" > ");
            put_addr(ctx, hdr, 24)?;
            ctx.put(": ");
        }
        let cp = data.get(off..).unwrap_or(&[]);
        match nh {
            nh::HOPOPTS => {
                if w.found_hbh {
                    ctx.put("[The Hop-by-Hop Options header was already found]");
                    ctx.print_invalid();
                    return Ok(());
                }
                if ph != 255 {
                    ctx.put("[The Hop-by-Hop Options header don't follow the IPv6 header]");
                    ctx.print_invalid();
                    return Ok(());
                }
                let r = opts::hbh(ctx, cp, &mut w.found_jumbo, &mut w.payload_len)?;
                if w.payload_len == 0 && !w.found_jumbo {
                    ctx.put("[No valid Jumbo Payload Hop-by-Hop option found]");
                    ctx.print_invalid();
                    return Ok(());
                }
                let Some(a) = r else { return Ok(()) };
                advance = a;
                w.found_ext = true;
                w.found_hbh = true;
                nh = get_u8(cp, 0)?;
            }
            nh::DSTOPTS => {
                let Some(a) = opts::dstopt(ctx, cp)? else {
                    return Ok(());
                };
                advance = a;
                w.found_ext = true;
                nh = get_u8(cp, 0)?;
            }
            nh::FRAGMENT => {
                let Some(a) = frag(ctx, cp, hdr, off)? else {
                    return Ok(());
                };
                if data.len() <= off + a {
                    return Ok(());
                }
                advance = a;
                w.found_ext = true;
                nh = get_u8(cp, 0)?;
                w.fragmented = true;
            }
            nh::MOBILITY_OLD | nh::MOBILITY => {
                // The mobility header ends the chain (RFC 6275 payloads are not decoded).
                return mobility::print(ctx, cp);
            }
            nh::ROUTING => {
                if cp.is_empty() {
                    ctx.print_trunc();
                    return Ok(());
                }
                let Some(a) = rt::print(ctx, cp)? else {
                    return Ok(());
                };
                advance = a;
                w.found_ext = true;
                nh = get_u8(cp, 0)?;
            }
            _ => {
                // Not an extension header: hand off to the IP protocol demultiplexer.
                if w.found_jumbo {
                    len = w.payload_len.wrapping_add(HDR_LEN as u32);
                    if len < total_advance {
                        ctx.print_trunc();
                        return Ok(());
                    }
                    if length < len {
                        pr!(ctx, "truncated-ip6 - {} bytes missing!", len - length);
                    }
                    data = cut(bp, len);
                    len -= total_advance;
                } else if w.payload_len == 0 {
                    // No payload to hold an extension header.
                    if w.found_ext {
                        ctx.print_trunc();
                        return Ok(());
                    }
                    len = HDR_LEN as u32;
                    data = cut(bp, len);
                    len -= total_advance;
                }
                let payload = data.get(off..).unwrap_or(&[]);
                let ip = header(hdr, data, w.fragmented);
                return super::ip::demux(ctx, payload, len, 6, nh, &ip);
            }
        }
        ph = nh;
        ctx.protocol = "ip6";
    }
    Ok(())
}

/// `bp` cut to at most `len` bytes.
#[inline]
fn cut(bp: &[u8], len: u32) -> &[u8] {
    let end = usize::try_from(len).map_or(bp.len(), |l| l.min(bp.len()));
    &bp[..end]
}

/// The [`IpHdr`] handed to upper layers. `data` is the IPv6 packet as far as captured and
/// claimed by its length.
fn header<'a>(hdr: &'a [u8], data: &[u8], fragmented: bool) -> IpHdr<'a> {
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&hdr[8..24]);
    dst.copy_from_slice(&hdr[24..40]);
    let cksum_dst = match hdr[6] {
        nh::HOPOPTS
        | nh::DSTOPTS
        | nh::MOBILITY_OLD
        | nh::MOBILITY
        | nh::FRAGMENT
        | nh::ROUTING => final_dst(data).unwrap_or(dst),
        _ => dst,
    };
    IpHdr {
        src: IpAddr::V6(Ipv6Addr::from(src)),
        dst: IpAddr::V6(Ipv6Addr::from(dst)),
        cksum_dst: IpAddr::V6(Ipv6Addr::from(cksum_dst)),
        hdr: &hdr[..HDR_LEN],
        fragmented,
    }
}

/// The destination for upper-layer checksums (tcpdump's `ip6_finddst`): the last address of
/// the first type 0 or type 2 routing header, or segment 0 of an SRH; else the header's
/// destination. `data` starts at the IPv6 header. `Err` when the header itself is cut.
pub fn final_dst(data: &[u8]) -> PResult<[u8; 16]> {
    let mut dst = get_addr(data, 24)?;
    let mut nh = get_u8(data, 6)?;
    let mut off = 0usize;
    let mut advance = HDR_LEN;
    while off < data.len() {
        off += advance;
        match nh {
            nh::HOPOPTS | nh::DSTOPTS | nh::MOBILITY_OLD | nh::MOBILITY => {
                advance = (usize::from(get_u8(data, off + 1)?) + 1) << 3;
                nh = get_u8(data, off)?;
            }
            nh::FRAGMENT => {
                advance = 8;
                nh = get_u8(data, off)?;
            }
            nh::ROUTING => {
                let Ok(rh) = get_bytes(data, off, 4) else {
                    break;
                };
                let len = usize::from(rh[1]);
                match rh[2] {
                    0 | 2 if len % 2 == 0 => {
                        for i in 0..len / 2 {
                            match get_addr(data, off + 8 + 16 * i) {
                                Ok(a) => dst = a,
                                Err(Trunc) => break,
                            }
                        }
                    }
                    4 if len % 2 == 0 => {
                        if let Ok(a) = get_addr(data, off + 8) {
                            dst = a;
                        }
                    }
                    _ => {}
                }
                break;
            }
            _ => break,
        }
    }
    Ok(dst)
}

/// The fragment header (`frag6_print`): `frag (OFFSET|LEN)` or with `-v`
/// `frag (0xIDENT:OFFSET|LEN)`, where LEN is what the payload length leaves after this
/// header (printed as tcpdump's 64-bit unsigned arithmetic gives it). Non-first fragments
/// end the chain (`None`).
fn frag(ctx: &mut Ctx<'_>, bp: &[u8], ip6: &[u8], off: usize) -> PResult<Option<usize>> {
    ctx.protocol = "frag6";
    let plen = u64::from(get_be16(ip6, 4)?);
    let rest = (HDR_LEN as u64 + plen)
        .wrapping_sub(off as u64)
        .wrapping_sub(8);
    let offset = if ctx.opts.verbose > 0 {
        let ident = get_be32(bp, 4)?;
        let offset = get_be16(bp, 2)? & 0xfff8;
        pr!(ctx, "frag (0x{ident:08x}:{offset}|{rest})");
        offset
    } else {
        let offset = get_be16(bp, 2)? & 0xfff8;
        pr!(ctx, "frag ({offset}|{rest})");
        offset
    };
    if offset != 0 {
        return Ok(None);
    }
    ctx.put(" ");
    Ok(Some(8))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::print::{Options, State};

    /// Runs `f` over a fresh context and returns what it printed (plus the truncation
    /// marker, the way the top level prints it).
    pub fn run(opts: &Options, f: impl FnOnce(&mut Ctx<'_>) -> PResult) -> String {
        let mut out = String::new();
        let mut state = State::default();
        let mut ctx = Ctx {
            opts,
            out: &mut out,
            protocol: "",
            state: &mut state,
        };
        if f(&mut ctx).is_err() {
            ctx.print_trunc();
        }
        out
    }

    /// The [`IpHdr`] an upper layer gets for the IPv6 packet `p`.
    pub fn header_of(p: &[u8]) -> IpHdr<'_> {
        super::header(&p[..HDR_LEN], p, false)
    }

    pub fn opts(verbose: u8) -> Options {
        Options {
            verbose,
            numeric: 1,
            ..Options::default()
        }
    }

    pub fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    /// An IPv6 header from 2001:db8::1 to 2001:db8::2 followed by `payload`.
    pub fn ip6(nh: u8, plen: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = hex("60000000");
        p.extend_from_slice(&plen.to_be_bytes());
        p.push(nh);
        p.push(64);
        p.extend_from_slice(&hex("20010db8000000000000000000000001"));
        p.extend_from_slice(&hex("20010db8000000000000000000000002"));
        p.extend_from_slice(payload);
        p
    }

    fn pr6(v: u8, p: &[u8]) -> String {
        let len = p.len() as u32;
        run(&opts(v), |c| print(c, p, len))
    }

    #[test]
    fn short_header_is_truncation() {
        let p = ip6(59, 0, &[]);
        assert_eq!(pr6(0, &p[..39]), " [|ip6]");
        assert_eq!(run(&opts(0), |c| print(c, &p, 39)), "truncated-ip6 39");
    }

    #[test]
    fn version_error() {
        let mut p = ip6(59, 0, &[]);
        p[0] = 0x00;
        assert_eq!(pr6(0, &p), "IP6 version error: 0 != 6");
    }

    #[test]
    fn verbose_header_4_99_3_form() {
        let mut p = ip6(59, 0, &[]);
        p[0..4].copy_from_slice(&hex("6789abcd"));
        assert!(pr6(1, &p).starts_with(
            "IP6 (class 0x78, flowlabel 0x9abcd, hlim 64, next-header unknown (59) \
             payload length: 0) 2001:db8::1 > 2001:db8::2: "
        ));
    }

    #[test]
    fn missing_extension_headers() {
        assert_eq!(
            pr6(0, &ip6(0, 0, &[])),
            "IP6 2001:db8::1 > 2001:db8::2:  [|hbhopt]"
        );
        assert_eq!(
            pr6(0, &ip6(43, 0, &[])),
            "IP6 2001:db8::1 > 2001:db8::2:  [|ip6]"
        );
        assert_eq!(
            pr6(0, &ip6(44, 0, &[])),
            "IP6 2001:db8::1 > 2001:db8::2:  [|frag6]"
        );
        assert_eq!(
            pr6(0, &ip6(60, 0, &[])),
            "IP6 2001:db8::1 > 2001:db8::2:  [|dstopt]"
        );
        assert_eq!(
            pr6(0, &ip6(135, 0, &[])),
            "IP6 2001:db8::1 > 2001:db8::2:  [|mobility]"
        );
    }

    #[test]
    fn fragment_lengths() {
        // First fragment, then no next header.
        let p = ip6(44, 8, &hex("3b000001 12345678"));
        assert!(pr6(0, &p).starts_with("IP6 2001:db8::1 > 2001:db8::2: frag (0|0) "));
        // Non-first fragment stops the chain; the length wraps like tcpdump's size_t.
        let p = ip6(44, 0, &hex("3b000501 80000074"));
        assert_eq!(
            pr6(1, &p),
            "IP6 (hlim 64, next-header Fragment (44) payload length: 0) 2001:db8::1 > \
             2001:db8::2: frag (0x80000074:1280|18446744073709551608)"
        );
    }

    mod never_panics {
        use super::*;
        use proptest::prelude::*;

        fn all_ways(p: &[u8], claimed: u32) {
            for v in 0..3 {
                for e in [false, true] {
                    let o = Options {
                        verbose: v,
                        link_header: e,
                        numeric: 1,
                        ..Options::default()
                    };
                    let _ = run(&o, |c| print(c, p, claimed));
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4000))]
            #[test]
            fn random_bytes(p in proptest::collection::vec(any::<u8>(), 0..200), extra in 0u32..100) {
                all_ways(&p, p.len() as u32 + extra);
            }

            #[test]
            fn random_chains(
                nh in prop::sample::select(vec![0u8, 43, 44, 58, 59, 60, 62, 135, 41]),
                plen in prop::sample::select(vec![0u16, 8, 16, 24, 40, 64, 0xffff]),
                body in proptest::collection::vec(
                    prop::sample::select(vec![0u8, 1, 2, 3, 4, 5, 8, 16, 24, 25, 31, 43, 44, 58,
                        59, 60, 128, 130, 134, 135, 136, 138, 139, 140, 143, 155, 0xc0, 0xc2,
                        0xc9, 0xff]),
                    0..160),
                extra in 0u32..70000,
            ) {
                let p = ip6(nh, plen, &body);
                all_ways(&p, p.len() as u32 + extra);
            }
        }
    }

    /// IPv6 in IPv6 behind jumbo hop-by-hop headers nests about 5,400 deep in a 256 KiB
    /// frame; tcpdump recurses just as deep. This needs about 6 MiB of stack in a debug build
    /// and 2 MiB optimized: the thread running the printers must have that much.
    #[test]
    fn deep_nesting_fits_the_stack() {
        const LEVELS: usize = 5400;
        let mut p = Vec::with_capacity(LEVELS * 48);
        for i in 0..LEVELS {
            let rem = (LEVELS * 48 - i * 48 - 40).max(65536) as u32;
            p.extend_from_slice(&ip6(0, 0, &[])[..40]);
            p.extend_from_slice(&[if i + 1 < LEVELS { 41 } else { 59 }, 0, 0xc2, 4]);
            p.extend_from_slice(&rem.to_be_bytes());
        }
        let t = std::thread::Builder::new()
            .stack_size(16 << 20)
            .spawn(move || {
                let s = run(&opts(1), |c| print(c, &p, p.len() as u32));
                s.matches("HBH (jumbo: ").count()
            });
        assert_eq!(t.unwrap().join().unwrap(), LEVELS);
    }

    #[test]
    fn final_dst_follows_routing_headers() {
        let a = hex("20010db8000000000000000000000009");
        let b = hex("20010db800000000000000000000000a");
        // type 0 with two addresses: the last one
        let mut rh = hex("3b040001 00000000");
        rh.extend_from_slice(&a);
        rh.extend_from_slice(&b);
        let p = ip6(43, rh.len() as u16, &rh);
        assert_eq!(final_dst(&p).unwrap().as_slice(), b.as_slice());
        // SRH: segment 0
        let mut rh = hex("3b040401 01000000");
        rh.extend_from_slice(&a);
        rh.extend_from_slice(&b);
        let p = ip6(43, rh.len() as u16, &rh);
        assert_eq!(final_dst(&p).unwrap().as_slice(), a.as_slice());
        // behind a hop-by-hop header, odd length: unchanged
        let mut ext = hex("2b000000 00000000 3b010001 00000000");
        ext.extend_from_slice(&a);
        let p = ip6(0, ext.len() as u16, &ext);
        assert_eq!(final_dst(&p).unwrap().as_slice(), &p[24..40]);
    }
}
