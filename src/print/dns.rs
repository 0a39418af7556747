//! DNS (tcpdump 4.99.3's `domain_print`), for UDP/TCP port 53 and mDNS on 5353.
//!
//! Queries print `ID[op][+][%] TYPE? name. (len)`, responses `ID[op][rcode][*][-][|][$]
//! q/n/a answers... (len)`, with `-vv` adding the question and the authority/additional
//! sections. Record data is decoded for A, AAAA, NS, CNAME, PTR, DNAME, SOA, MX, TXT, SRV,
//! URI, UNSPECA, OPT (EDNS options), A6 and TSIG, as tcpdump does; other types print only
//! their name. Names follow `fqdn_print`: compression pointers must point backwards
//! (`<BAD PTR>`), names are cut at 255 characters.
//!
//! Cursor positions are indices into `msg` (the message from its header on, cut at the
//! captured data); `None` is tcpdump's NULL return (the caller prints ` [|domain]`).

use super::{Ctx, PResult, get_be16, get_be32, get_u8};
use crate::pr;

const T_A: u16 = 1;
const T_NS: u16 = 2;
const T_CNAME: u16 = 5;
const T_SOA: u16 = 6;
const T_PTR: u16 = 12;
const T_MX: u16 = 15;
const T_TXT: u16 = 16;
const T_AAAA: u16 = 28;
const T_SRV: u16 = 33;
const T_A6: u16 = 38;
const T_DNAME: u16 = 39;
const T_OPT: u16 = 41;
const T_UNSPECA: u16 = 104;
const T_TSIG: u16 = 250;
const T_URI: u16 = 256;
const MAXCDNAME: u32 = 255;

fn type_name(t: u16) -> Option<&'static str> {
    Some(match t {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAP_PTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        31 => "EID",
        32 => "NIMLOC",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        40 => "SINK",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        99 => "SPF",
        100 => "UINFO",
        101 => "UID",
        102 => "GID",
        103 => "UNSPEC",
        104 => "UNSPECA",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "ANY",
        256 => "URI",
        _ => return None,
    })
}

fn put_type(ctx: &mut Ctx<'_>, t: u16) {
    match type_name(t) {
        Some(n) => pr!(ctx, " {}", n),
        None => pr!(ctx, " Type{}", t),
    }
}

fn put_class(ctx: &mut Ctx<'_>, c: u16) {
    match c {
        1 => ctx.put(" IN"),
        3 => ctx.put(" CHAOS"),
        4 => ctx.put(" HS"),
        255 => ctx.put(" ANY"),
        _ => pr!(ctx, " (Class {})", c),
    }
}

const NS_OPS: [&str; 16] = [
    "",
    " inv_q",
    " stat",
    " op3",
    " notify",
    " update",
    " op6",
    " op7",
    " op8",
    " updateA",
    " updateD",
    " updateDA",
    " updateM",
    " updateMA",
    " zoneInit",
    " zoneRef",
];

const NS_RESP: [&str; 24] = [
    "",
    " FormErr",
    " ServFail",
    " NXDomain",
    " NotImp",
    " Refused",
    " YXDomain",
    " YXRRSet",
    " NXRRSet",
    " NotAuth",
    " NotZone",
    " Resp11",
    " Resp12",
    " Resp13",
    " Resp14",
    " NoChange",
    " BadVers",
    "Resp17",
    " Resp18",
    " Resp19",
    " Resp20",
    "Resp21",
    " Resp22",
    " BadCookie",
];

/// tcpdump's `nd_printn`: escaped characters, stopping at the captured end; `false` when
/// the data ran out first.
fn printn(ctx: &mut Ctx<'_>, msg: &[u8], cp: usize, n: usize) -> bool {
    let avail = msg.get(cp..).unwrap_or(&[]);
    for &c in avail.iter().take(n) {
        super::push_escaped_char(ctx.out, c);
    }
    avail.len() >= n
}

/// `ns_nskip`: the position after a name (a pointer ends it).
fn nskip(msg: &[u8], mut cp: usize) -> Option<usize> {
    let mut i = *msg.get(cp)?;
    cp += 1;
    while i != 0 {
        match i & 0xc0 {
            0xc0 => return Some(cp + 1),
            0x40 => {
                if i & 0x3f != 1 {
                    return None;
                }
                let b = *msg.get(cp)?;
                let bitlen = if b == 0 { 256 } else { usize::from(b) };
                cp += 1 + bitlen.div_ceil(8);
            }
            0x80 => return None,
            _ => cp += usize::from(i),
        }
        i = *msg.get(cp)?;
        cp += 1;
    }
    Some(cp)
}

/// `labellen`: the length of the label at `cp` (`None` after printing an error).
fn labellen(ctx: &mut Ctx<'_>, msg: &[u8], cp: usize) -> Option<usize> {
    let i = *msg.get(cp)?;
    match i & 0xc0 {
        0x40 => {
            let elt = i & 0x3f;
            if elt != 1 {
                pr!(ctx, "<ELT {}>", elt);
                return None;
            }
            let b = *msg.get(cp + 1)?;
            let bitlen = if b == 0 { 256 } else { usize::from(b) };
            Some(bitlen.div_ceil(8) + 1)
        }
        0xc0 | 0x00 => Some(usize::from(i)),
        _ => {
            ctx.put("<BAD LABEL TYPE>");
            None
        }
    }
}

/// `blabel_print`: an EDNS0 bit-string label `\[x...\/bits]`.
fn blabel(ctx: &mut Ctx<'_>, msg: &[u8], cp: usize) -> Option<usize> {
    let b = *msg.get(cp)?;
    let bitlen = if b == 0 { 256u32 } else { u32::from(b) };
    let slen = bitlen.div_ceil(4) as usize;
    let lim = cp + 1 + slen;
    ctx.put("\\[x");
    let mut bitp = cp + 1;
    let mut bits = bitlen;
    while bitp < lim && bits > 7 {
        pr!(ctx, "{:02x}", msg.get(bitp)?);
        bits -= 8;
        bitp += 1;
    }
    if bits > 4 {
        let tc = *msg.get(bitp)?;
        pr!(ctx, "{:02x}", tc & (0xffu8 << (8 - bits)));
    } else if bits > 0 {
        let tc = *msg.get(bitp)?;
        pr!(ctx, "{:1x}", ((tc >> 4) & 0x0f) & (0x0fu8 << (4 - bits)));
    }
    pr!(ctx, "/{}]", bitlen);
    Some(lim)
}

/// `fqdn_print`: prints the name at `cp` (offsets relative to `msg[0]`) and returns the
/// position after it in the record.
fn fqdn(ctx: &mut Ctx<'_>, msg: &[u8], cp: usize) -> Option<usize> {
    fqdn_based(ctx, msg, cp, 0)
}

/// `fqdn_print` with compression offsets counted from `base` (tcpdump passes the message
/// start, or for the EDNS CHAIN option the end of the option data, which makes every
/// pointer "backwards").
fn fqdn_based(ctx: &mut Ctx<'_>, msg: &[u8], mut cp: usize, base: usize) -> Option<usize> {
    let mut l = labellen(ctx, msg, cp)?;
    let mut i = *msg.get(cp)?;
    let mut max_offset = (cp.wrapping_sub(base)) as u32 as usize;
    cp += 1;
    let mut rp: Option<usize> = None;
    let mut compress = false;
    if i & 0xc0 != 0xc0 {
        rp = Some(cp + l);
    }
    if i == 0 {
        ctx.put(".");
        return rp;
    }
    let mut name_chars: u32 = 0;
    while i != 0 && cp < msg.len() {
        match i & 0xc0 {
            0xc0 => {
                if !compress {
                    rp = Some(cp + 1);
                    compress = true;
                }
                let lo = *msg.get(cp)?;
                let offset = ((usize::from(i) << 8) | usize::from(lo)) & 0x3fff;
                if offset >= max_offset {
                    ctx.put("<BAD PTR>");
                    return None;
                }
                max_offset = offset;
                cp = base.wrapping_add(offset);
                i = *msg.get(cp)?;
                l = labellen(ctx, msg, cp)?;
                cp += 1;
                continue;
            }
            0x40 => {
                let elt = i & 0x3f;
                if elt == 1 {
                    blabel(ctx, msg, cp)?;
                } else {
                    pr!(ctx, "<ELT {}>", elt);
                    return None;
                }
            }
            0x80 => {
                ctx.put("<BAD LABEL TYPE>");
                return None;
            }
            _ => {
                if name_chars + l as u32 <= MAXCDNAME {
                    if !printn(ctx, msg, cp, l) {
                        return None;
                    }
                } else if name_chars < MAXCDNAME && !printn(ctx, msg, cp, (MAXCDNAME - name_chars) as usize) {
                    return None;
                }
                name_chars += l as u32;
            }
        }
        cp += l;
        if name_chars <= MAXCDNAME {
            ctx.put(".");
        }
        name_chars += 1;
        i = *msg.get(cp)?;
        l = labellen(ctx, msg, cp)?;
        cp += 1;
        if !compress {
            rp = rp.map(|r| r + l + 1);
        }
    }
    if name_chars > MAXCDNAME {
        ctx.put("<DOMAIN NAME TOO LONG>");
    }
    rp
}

/// `ns_qprint`: ` TYPE[ CLASS][ (QU|QM)]? name`.
fn qprint(ctx: &mut Ctx<'_>, msg: &[u8], np: usize, mdns: bool) -> Option<usize> {
    let cp = nskip(msg, np)?;
    msg.get(cp..cp + 4)?;
    let t = get_be16(msg, cp).ok()?;
    put_type(ctx, t);
    let i = get_be16(msg, cp + 2).ok()?;
    let class = if mdns { i & 0x7fff } else { i };
    if class != 1 {
        put_class(ctx, class);
    }
    if mdns {
        ctx.put(if i & 0x8000 != 0 { " (QU)" } else { " (QM)" });
    }
    ctx.put("? ");
    fqdn(ctx, msg, np).map(|p| p + 4)
}

/// tcpdump's `unsigned_relts_print`: `1y2w3d4h5m6s`.
fn relts(ctx: &mut Ctx<'_>, mut secs: u32) {
    if secs == 0 {
        ctx.put("0s");
        return;
    }
    for (unit, name) in [(31_536_000u32, "y"), (604_800, "w"), (86_400, "d"), (3600, "h"), (60, "m"), (1, "s")] {
        if secs >= unit {
            pr!(ctx, "{}{}", secs / unit, name);
            secs %= unit;
        }
    }
}

/// `ns_rprint`: one resource record. `Some(msg.len())` mirrors tcpdump returning its
/// snapend (which ends the section loops).
fn rprint(ctx: &mut Ctx<'_>, msg: &[u8], cp: usize, mdns: bool) -> Option<usize> {
    let cp = if ctx.vflag() > 0 {
        ctx.put(" ");
        fqdn(ctx, msg, cp)?
    } else {
        match nskip(msg, cp) {
            Some(p) => p,
            None => return Some(msg.len()),
        }
    };
    if msg.get(cp..cp + 10).is_none() {
        return Some(msg.len());
    }
    let typ = get_be16(msg, cp).ok()?;
    let i = get_be16(msg, cp + 2).ok()?;
    let class = if mdns { i & 0x7fff } else { i };
    if class != 1 && typ != T_OPT {
        put_class(ctx, class);
    }
    if mdns && i & 0x8000 != 0 {
        ctx.put(" (Cache flush)");
    }
    let mut opt_flags = 0u16;
    if typ == T_OPT {
        opt_flags = get_be16(msg, cp + 6).ok()?;
    } else if ctx.vflag() > 2 {
        ctx.put(" [");
        relts(ctx, get_be32(msg, cp + 4).ok()?);
        ctx.put("]");
    }
    let len = usize::from(get_be16(msg, cp + 8).ok()?);
    let mut cp = cp + 10;
    let rp = cp + len;
    put_type(ctx, typ);
    if rp > msg.len() {
        return None;
    }
    match typ {
        T_A => {
            let a = msg.get(cp..cp + 4)?;
            ctx.put(" ");
            super::addr::push_ip4(ctx.out, [a[0], a[1], a[2], a[3]]);
        }
        T_NS | T_CNAME | T_PTR | T_DNAME => {
            ctx.put(" ");
            fqdn(ctx, msg, cp)?;
        }
        T_SOA => {
            if ctx.vflag() == 0 {
                return Some(rp);
            }
            ctx.put(" ");
            cp = fqdn(ctx, msg, cp)?;
            ctx.put(" ");
            cp = fqdn(ctx, msg, cp)?;
            msg.get(cp..cp + 20)?;
            for k in 0..5 {
                pr!(ctx, " {}", get_be32(msg, cp + 4 * k).ok()?);
            }
        }
        T_MX => {
            ctx.put(" ");
            msg.get(cp..cp + 2)?;
            fqdn(ctx, msg, cp + 2)?;
            pr!(ctx, " {}", get_be16(msg, cp).ok()?);
        }
        T_TXT => {
            while cp < rp {
                ctx.put(" \"");
                let n = usize::from(*msg.get(cp)?);
                if !printn(ctx, msg, cp + 1, n) {
                    return None;
                }
                cp += 1 + n;
                ctx.put("\"");
            }
        }
        T_SRV => {
            ctx.put(" ");
            msg.get(cp..cp + 6)?;
            fqdn(ctx, msg, cp + 6)?;
            pr!(ctx, ":{} {} {}", get_be16(msg, cp + 4).ok()?, get_be16(msg, cp).ok()?, get_be16(msg, cp + 2).ok()?);
        }
        T_AAAA => {
            let a = msg.get(cp..cp + 16)?;
            let mut o = [0u8; 16];
            o.copy_from_slice(a);
            ctx.put(" ");
            super::addr::push_ip6(ctx.out, o);
        }
        T_A6 => {
            let pbit = *msg.get(cp)?;
            let pbyte = usize::from(pbit & !7) / 8;
            if pbit > 128 {
                pr!(ctx, " {}(bad plen)", pbit);
                return Some(rp);
            } else if pbit < 128 {
                let mut a = [0u8; 16];
                let src = msg.get(cp + 1..cp + 1 + 16 - pbyte)?;
                a[pbyte..].copy_from_slice(src);
                pr!(ctx, " {} ", pbit);
                super::addr::push_ip6(ctx.out, a);
            }
            if pbit > 0 {
                ctx.put(" ");
                fqdn(ctx, msg, cp + 1 + 16 - pbyte)?;
            }
        }
        T_URI => {
            msg.get(cp..cp + len)?;
            pr!(ctx, " {} {} ", get_be16(msg, cp).ok()?, get_be16(msg, cp + 2).ok()?);
            if !printn(ctx, msg, cp + 4, len.wrapping_sub(4)) {
                return None;
            }
        }
        T_OPT => {
            pr!(ctx, " UDPsize={}", class);
            if opt_flags & 0x8000 != 0 {
                ctx.put(" DO");
            }
            if cp < rp {
                ctx.put(" [");
                while cp < rp {
                    cp = eopt(ctx, msg, cp)?;
                    if cp < rp {
                        ctx.put(",");
                    }
                }
                ctx.put("]");
            }
        }
        T_UNSPECA => {
            msg.get(cp..cp + len)?;
            if !printn(ctx, msg, cp, len) {
                return None;
            }
        }
        T_TSIG => {
            if ctx.vflag() == 0 {
                return Some(rp);
            }
            ctx.put(" ");
            cp = fqdn(ctx, msg, cp)? + 6;
            pr!(ctx, " fudge={}", get_be16(msg, cp).ok()?);
            cp += 2;
            let maclen = get_be16(msg, cp).ok()?;
            pr!(ctx, " maclen={}", maclen);
            cp += 2 + usize::from(maclen);
            pr!(ctx, " origid={}", get_be16(msg, cp).ok()?);
            cp += 2;
            pr!(ctx, " error={}", get_be16(msg, cp).ok()?);
            cp += 2;
            pr!(ctx, " otherlen={}", get_be16(msg, cp).ok()?);
        }
        _ => {}
    }
    Some(rp)
}

fn alg_name(kind: u16, v: u8) -> Option<&'static str> {
    Some(match (kind, v) {
        (5, 0) => "DELETE",
        (5, 1) => "RSAMD5",
        (5, 2) => "DH",
        (5, 3) => "DS",
        (5, 5) => "RSASHA1",
        (5, 6) => "DSA-NSEC3-SHA1",
        (5, 7) => "RSASHA1-NSEC3-SHA1",
        (5, 8) => "RSASHA256",
        (5, 10) => "RSASHA512",
        (5, 12) => "ECC-GOST",
        (5, 13) => "ECDSAP256SHA256",
        (5, 14) => "ECDSAP384SHA384",
        (5, 15) => "ED25519",
        (5, 16) => "ED448",
        (5, 252) => "INDIRECT",
        (5, 253) => "PRIVATEDNS",
        (5, 254) => "PRIVATEOID",
        (6, 1) => "SHA-1",
        (6, 2) => "SHA-256",
        (6, 3) => "GOST_R_34.11-94",
        (6, 4) => "SHA-384",
        (7, 1) => "SHA-1",
        _ => return None,
    })
}

/// `eopt_print`: one EDNS option.
fn eopt(ctx: &mut Ctx<'_>, msg: &[u8], cp: usize) -> Option<usize> {
    let opt = get_be16(msg, cp).ok()?;
    match opt {
        1 => ctx.put("LLQ"),
        2 => ctx.put("UL"),
        3 => ctx.put("NSID"),
        5 => ctx.put("DAU"),
        6 => ctx.put("DHU"),
        7 => ctx.put("N3U"),
        8 => ctx.put("ECS"),
        9 => ctx.put("EXPIRE"),
        10 => ctx.put("COOKIE"),
        11 => ctx.put("KEEPALIVE"),
        12 => ctx.put("PADDING"),
        13 => ctx.put("CHAIN"),
        14 => ctx.put("KEY-TAG"),
        16 => ctx.put("CLIENT-TAG"),
        17 => ctx.put("SERVER-TAG"),
        _ => pr!(ctx, "Opt{}", opt),
    }
    let data_len = usize::from(get_be16(msg, cp + 2).ok()?);
    let cp = cp + 4;
    let data = msg.get(cp..cp + data_len)?;
    if data_len > 0 {
        ctx.put(" ");
        match opt {
            8 => ecs(ctx, data),
            13 => {
                let _ = fqdn_based(ctx, msg, cp, cp + data_len);
            }
            10 => {
                if data_len < 8 || (data_len > 8 && data_len < 16) || data_len > 40 {
                    ctx.print_invalid();
                } else {
                    for (i, b) in data.iter().enumerate() {
                        if i == 8 {
                            ctx.put(" ");
                        }
                        pr!(ctx, "{:02x}", b);
                    }
                }
            }
            11 => {
                if data_len != 2 {
                    ctx.print_invalid();
                } else {
                    pr!(ctx, "{:.1} sec", f64::from(u16::from_be_bytes([data[0], data[1]])) / 10.0);
                }
            }
            9 => {
                if data_len != 4 {
                    ctx.print_invalid();
                } else {
                    pr!(ctx, "{} sec", u32::from_be_bytes([data[0], data[1], data[2], data[3]]));
                }
            }
            12 => pr!(ctx, "({})", data_len),
            14 => {
                if data_len % 2 != 0 {
                    ctx.print_invalid();
                } else {
                    for (i, c) in data.chunks(2).enumerate() {
                        if i > 0 {
                            ctx.put(" ");
                        }
                        pr!(ctx, "{}", u16::from_be_bytes([c[0], c[1]]));
                    }
                }
            }
            5..=7 => {
                for (i, &b) in data.iter().enumerate() {
                    if i > 0 {
                        ctx.put(" ");
                    }
                    match alg_name(opt, b) {
                        Some(n) => ctx.put(n),
                        None => pr!(ctx, "Alg_{}", b),
                    }
                }
            }
            _ => {
                for b in data {
                    pr!(ctx, "{:02x}", b);
                }
            }
        }
    }
    Some(cp + data_len)
}

/// `print_eopt_ecs`: EDNS client subnet `addr/source/scope`.
fn ecs(ctx: &mut Ctx<'_>, data: &[u8]) {
    if data.len() < 4 {
        ctx.print_invalid();
        return;
    }
    let family = u16::from_be_bytes([data[0], data[1]]);
    let src_len = u32::from(data[2]);
    let scope_len = u32::from(data[3]);
    let addr_bits = match family {
        1 => 32,
        2 => 128,
        _ => {
            ctx.print_invalid();
            return;
        }
    };
    let alen = data.len() - 4;
    if alen > addr_bits / 8
        || src_len > addr_bits as u32
        || scope_len > addr_bits as u32
        || src_len.div_ceil(8) as usize != alen
    {
        ctx.print_invalid();
        return;
    }
    let mut padded = [0u8; 16];
    padded[..alen].copy_from_slice(&data[4..]);
    if family == 1 {
        super::addr::push_ip4(ctx.out, [padded[0], padded[1], padded[2], padded[3]]);
    } else {
        super::addr::push_ip6(ctx.out, padded);
    }
    pr!(ctx, "/{}/{}", src_len, scope_len);
}

/// Prints a section's records (`first` already printed) while data remains; `false` means
/// truncated.
fn section(ctx: &mut Ctx<'_>, msg: &[u8], cp: &mut usize, count: &mut u32, mdns: bool) -> bool {
    if *count == 0 {
        return true;
    }
    match rprint(ctx, msg, *cp, mdns) {
        Some(p) => *cp = p,
        None => return false,
    }
    *count -= 1;
    while *cp < msg.len() && *count > 0 {
        ctx.put(",");
        match rprint(ctx, msg, *cp, mdns) {
            Some(p) => *cp = p,
            None => return false,
        }
        *count -= 1;
    }
    *count == 0
}

/// tcpdump's `domain_print`. `bp` starts at the DNS message (or its 2-byte TCP length
/// prefix with `over_tcp`), `length` is the payload length.
pub fn print(ctx: &mut Ctx<'_>, bp: &[u8], length: u32, over_tcp: bool, mdns: bool) -> PResult {
    ctx.protocol = "domain";
    let mut msg = bp;
    let mut length = length;
    if over_tcp {
        if length < 2 {
            pr!(ctx, " [DNS over TCP: length {} < 2]", length);
            ctx.print_invalid();
            return Ok(());
        }
        length -= 2;
        let prefix = u32::from(get_be16(bp, 0)?);
        if prefix != length {
            pr!(ctx, " [prefix length({}) != length({})]", prefix, length);
            ctx.print_invalid();
            return Ok(());
        }
        msg = bp.get(2..).unwrap_or(&[]);
        ctx.put(" ");
    }
    if length < 12 {
        pr!(ctx, "domain [length {} < 12]", length);
        ctx.print_invalid();
        return Ok(());
    }
    if msg.len() < 12 {
        ctx.print_trunc();
        return Ok(());
    }
    let id = get_be16(msg, 0)?;
    let flags = get_be16(msg, 2)?;
    let mut qdcount = u32::from(get_be16(msg, 4)?);
    let mut ancount = u32::from(get_be16(msg, 6)?);
    let mut nscount = u32::from(get_be16(msg, 8)?);
    let mut arcount = u32::from(get_be16(msg, 10)?);
    let rcode = extended_rcode(msg, flags, qdcount, ancount + nscount, arcount);
    let opcode = usize::from((flags >> 11) & 0xf);
    let v2 = ctx.vflag() > 1;
    let mut cp = 12usize;
    let ok = if flags & 0x8000 != 0 {
        ctx.put_u32(u32::from(id));
        ctx.put(NS_OPS[opcode]);
        match NS_RESP.get(usize::from(rcode)) {
            Some(s) => ctx.put(s),
            None => pr!(ctx, " Resp{}", rcode & 0xfff),
        }
        if flags & 0x0400 != 0 {
            ctx.put("*");
        }
        if flags & 0x0080 == 0 {
            ctx.put("-");
        }
        if flags & 0x0200 != 0 {
            ctx.put("|");
        }
        if flags & 0x0020 != 0 {
            ctx.put("$");
        }
        if qdcount != 1 {
            pr!(ctx, " [{}q]", qdcount);
        }
        let mut ok = true;
        for i in 0..qdcount {
            if i != 0 {
                ctx.put(",");
            }
            let next = if v2 {
                ctx.put(" q:");
                qprint(ctx, msg, cp, mdns)
            } else {
                nskip(msg, cp).map(|p| p + 4)
            };
            match next {
                Some(p) => cp = p,
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            pr!(ctx, " {}/{}/{}", ancount, nscount, arcount);
            ok = section(ctx, msg, &mut cp, &mut ancount, mdns);
        }
        if ok && v2 {
            ok = sections_ns_ar(ctx, msg, &mut cp, &mut nscount, &mut arcount, mdns);
        }
        ok
    } else {
        ctx.put_u32(u32::from(id));
        ctx.put(NS_OPS[opcode]);
        if flags & 0x0100 != 0 {
            ctx.put("+");
        }
        if flags & 0x0010 != 0 {
            ctx.put("%");
        }
        if flags & 0x6cf != 0 {
            pr!(ctx, " [b2&3=0x{:x}]", flags);
        }
        if opcode == 1 {
            if qdcount != 0 {
                pr!(ctx, " [{}q]", qdcount);
            }
            if ancount != 1 {
                pr!(ctx, " [{}a]", ancount);
            }
        } else {
            if ancount != 0 {
                pr!(ctx, " [{}a]", ancount);
            }
            if qdcount != 1 {
                pr!(ctx, " [{}q]", qdcount);
            }
        }
        if nscount != 0 {
            pr!(ctx, " [{}n]", nscount);
        }
        if arcount != 0 {
            pr!(ctx, " [{}au]", arcount);
        }
        let mut ok = true;
        if qdcount != 0 {
            match qprint(ctx, msg, cp, mdns) {
                Some(p) => {
                    cp = p;
                    qdcount -= 1;
                    while cp < msg.len() && qdcount > 0 {
                        match qprint(ctx, msg, cp, mdns) {
                            Some(p) => cp = p,
                            None => {
                                ok = false;
                                break;
                            }
                        }
                        qdcount -= 1;
                    }
                }
                None => ok = false,
            }
        }
        if ok && qdcount != 0 {
            ok = false;
        }
        if ok && v2 {
            ok = section(ctx, msg, &mut cp, &mut ancount, mdns)
                && sections_ns_ar(ctx, msg, &mut cp, &mut nscount, &mut arcount, mdns);
        }
        ok
    };
    if ok {
        pr!(ctx, " ({})", length);
    } else {
        ctx.print_trunc();
    }
    Ok(())
}

/// The `-vv` authority (` ns:`) and additional (` ar:`) sections.
fn sections_ns_ar(ctx: &mut Ctx<'_>, msg: &[u8], cp: &mut usize, ns: &mut u32, ar: &mut u32, mdns: bool) -> bool {
    if *cp < msg.len() && *ns > 0 {
        ctx.put(" ns:");
        if !section(ctx, msg, cp, ns, mdns) {
            return false;
        }
    }
    if *ns > 0 {
        return false;
    }
    if *cp < msg.len() && *ar > 0 {
        ctx.put(" ar:");
        if !section(ctx, msg, cp, ar, mdns) {
            return false;
        }
    }
    *ar == 0
}

/// The response code including the EDNS extended bits from an OPT record, found by
/// skipping the earlier sections the way tcpdump does.
fn extended_rcode(msg: &[u8], flags: u16, qd: u32, an_ns: u32, ar: u32) -> u16 {
    let mut rcode = flags & 0xf;
    let len = msg.len();
    let mut cp = 12usize;
    for _ in 0..qd {
        let Some(p) = nskip(msg, cp) else { return rcode };
        cp = p + 4;
        if cp >= len {
            return rcode;
        }
    }
    for _ in 0..an_ns {
        let Some(p) = nskip(msg, cp) else { return rcode };
        cp = p + 8;
        if cp + 2 > len {
            return rcode;
        }
        let Ok(rdlen) = get_be16(msg, cp) else { return rcode };
        cp += 2 + usize::from(rdlen);
        if cp >= len {
            return rcode;
        }
    }
    for _ in 0..ar {
        let Some(p) = nskip(msg, cp) else { return rcode };
        cp = p;
        if cp + 2 > len {
            return rcode;
        }
        let Ok(t) = get_be16(msg, cp) else { return rcode };
        cp += 4;
        if cp + 1 > len {
            return rcode;
        }
        if t == T_OPT {
            if let Ok(ext) = get_u8(msg, cp) {
                rcode |= u16::from(ext) << 4;
            }
            return rcode;
        }
        cp += 4;
        if cp + 2 > len {
            return rcode;
        }
        let Ok(rdlen) = get_be16(msg, cp) else { return rcode };
        cp += 2 + usize::from(rdlen);
        if cp >= len {
            return rcode;
        }
    }
    rcode
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::print::{Options, State};

    fn run(msg: &[u8], v: u8) -> String {
        let opts = Options { verbose: v, ..Options::default() };
        let mut state = State::default();
        let mut out = String::new();
        let mut ctx = Ctx { opts: &opts, out: &mut out, protocol: "", state: &mut state };
        print(&mut ctx, msg, msg.len() as u32, false, false).unwrap();
        out
    }

    #[test]
    fn query_and_response() {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
        assert_eq!(run(&q, 0), "4660+ A? example.com. (29)");
        let mut r = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        r.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 93, 184, 216, 34]);
        assert_eq!(run(&r, 0), "4660 1/0/0 A 93.184.216.34 (45)");
        assert_eq!(run(&r, 2), "4660 q: A? example.com. 1/0/0 example.com. A 93.184.216.34 (45)");
    }

    #[test]
    fn forward_pointer_is_bad() {
        let mut r = vec![0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        r.extend_from_slice(&[0xc0, 40, 0, 1, 0, 1]);
        let s = run(&r, 2);
        assert!(s.contains("<BAD PTR>"), "{s}");
    }
}
