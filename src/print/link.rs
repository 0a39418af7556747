//! Link-layer printers: EN10MB (with VLAN/QinQ), LINUX_SLL, LINUX_SLL2, NULL, LOOP, RAW,
//! IPV4, IPV6; and the ethertype dispatch shared by them.
//!
//! Each printer returns the link header length tcpdump records in `ndo_ll_hdr_len` (where
//! `-x`/`-X`/`-A` start); [`print()`] turns a truncation (`Err(Trunc)`) into the ` [|proto]`
//! marker and a header length of 0, as tcpdump's `pretty_print_packet` does.

use super::{Ctx, PResult, get_be16, get_be32, get_bytes, get_u8, ip};
use crate::pr;

/// DLT/LINKTYPE values we print.
pub const LINKTYPE_NULL: u32 = 0;
pub const LINKTYPE_ETHERNET: u32 = 1;
pub const DLT_RAW: u32 = 12;
pub const LINKTYPE_RAW: u32 = 101;
pub const LINKTYPE_LOOP: u32 = 108;
pub const LINKTYPE_LINUX_SLL: u32 = 113;
pub const LINKTYPE_IPV4: u32 = 228;
pub const LINKTYPE_IPV6: u32 = 229;
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

pub const ETHERTYPE_IP: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_REVARP: u16 = 0x8035;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const ETHERTYPE_TRAIL: u16 = 0x1000;
const ETHERTYPE_8021Q: u16 = 0x8100;
const ETHERTYPE_8021Q9100: u16 = 0x9100;
const ETHERTYPE_8021Q9200: u16 = 0x9200;
const ETHERTYPE_8021QINQ: u16 = 0x88a8;
const ETHERTYPE_PPP: u16 = 0x880b;
/// Type/length values up to this are 802.3 lengths.
const MAX_ETHERNET_LENGTH_VAL: u16 = 1500;

/// tcpdump's `ethertype_values`.
pub fn ethertype_name(t: u16) -> Option<&'static str> {
    Some(match t {
        0x0800 => "IPv4",
        0x8847 => "MPLS unicast",
        0x8848 => "MPLS multicast",
        0x86dd => "IPv6",
        0x8100 => "802.1Q",
        0x9100 => "802.1Q-9100",
        0x88a8 => "802.1Q-QinQ",
        0x9200 => "802.1Q-9200",
        0x88e5 => "802.1AE MACsec",
        0x8181 => "VMAN",
        0x0200 => "PUP",
        0x0806 => "ARP",
        0x8035 => "Reverse ARP",
        0x0600 => "NS",
        0x0500 => "Sprite",
        0x1000 => "Trail",
        0x6001 => "MOP DL",
        0x6002 => "MOP RC",
        0x6003 => "DN",
        0x6004 => "LAT",
        0x6007 => "SCA",
        0x6558 => "TEB",
        0x8038 => "Lanbridge",
        0x803c => "DEC DNS",
        0x803e => "DEC DTS",
        0x805b => "VEXP",
        0x805c => "VPROD",
        0x809b => "Appletalk",
        0x80f3 => "Appletalk ARP",
        0x8137 => "IPX",
        0x880b => "PPP",
        0x8808 => "MPCP",
        0x8809 => "Slow Protocols",
        0x8863 => "PPPoE D",
        0x8864 => "PPPoE S",
        0x888e => "EAPOL",
        0x8899 => "Realtek protocols",
        0x886f => "MS NLB heartbeat",
        0x8870 => "Jumbo",
        0x894f => "NSH",
        0x9000 => "Loopback",
        0xfefe => "OSI",
        0x00fe => "GRE-OSI",
        0xabcd => "CFM (old)",
        0x8902 => "CFM",
        0x893a => "IEEE1905.1",
        0x88cc => "LLDP",
        0x88ca => "TIPC",
        0x0707 => "GeoNet (old)",
        0x8947 => "GeoNet",
        0x1111 => "CALM FAST",
        0x88a2 => "AoE",
        0x88f7 => "PTP",
        0xd28b => "Arista Vendor Specific Protocol",
        _ => return None,
    })
}

/// Prints the link-layer part of a frame and everything above it. Returns the link header
/// length (the offset where `-x`/`-X` start); 0 after a truncation, so the dump then
/// covers the whole frame, like tcpdump.
pub fn print(ctx: &mut Ctx<'_>, linktype: u32, bp: &[u8], origlen: u32) -> usize {
    ctx.protocol = "";
    let r = match linktype {
        LINKTYPE_ETHERNET => ether_if(ctx, bp, origlen),
        LINKTYPE_LINUX_SLL => sll_if(ctx, bp, origlen),
        LINKTYPE_LINUX_SLL2 => sll2_if(ctx, bp, origlen),
        LINKTYPE_NULL | LINKTYPE_LOOP => null_if(ctx, bp, origlen),
        DLT_RAW | LINKTYPE_RAW | LINKTYPE_IPV4 | LINKTYPE_IPV6 => raw_if(ctx, bp, origlen),
        _ => {
            ctx.protocol = "unsupported";
            ctx.put("UNSUPPORTED");
            crate::hexdump::hex_and_ascii(ctx.out, "\n\t", bp);
            Ok(0)
        }
    };
    match r {
        Ok(n) => n,
        Err(_) => {
            ctx.print_trunc();
            0
        }
    }
}

/// Appends a MAC address `xx:xx:xx:xx:xx:xx` (tcpdump's `etheraddr_string` with `-n`).
pub fn push_mac(out: &mut String, a: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, &b) in a.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

/// tcpdump's `etheraddr_string`: the MAC address; without `-n` its `/etc/ethers` name if it
/// has one, else `Broadcast` for ff:ff:ff:ff:ff:ff, else the address and the vendor from
/// the OUI (` (oui Ethernet)`).
pub fn put_mac(ctx: &mut Ctx<'_>, a: &[u8]) {
    if ctx.opts.numeric == 0
        && let Ok(mac) = <[u8; 6]>::try_from(a)
    {
        if let Some(name) = ctx.state.ethers.get(&mac) {
            ctx.out.push_str(name);
            return;
        }
        if mac == [0xff; 6] {
            ctx.put("Broadcast");
            return;
        }
    }
    push_mac(ctx.out, a);
    if ctx.opts.numeric == 0 && a.len() == 6 {
        let oui = u32::from_be_bytes([0, a[0], a[1], a[2]]);
        ctx.put(" (oui ");
        ctx.put(oui_name(oui).unwrap_or("Unknown"));
        ctx.put(")");
    }
}

/// tcpdump's `ether_type_print`.
fn ether_type_print(ctx: &mut Ctx<'_>, t: u16) {
    if !ctx.opts.quick {
        pr!(ctx, "ethertype {} (0x{:04x})", ethertype_name(t).unwrap_or("Unknown"), t);
    } else {
        match ethertype_name(t) {
            Some(n) => ctx.put(n),
            None => pr!(ctx, "Unknown Ethertype (0x{:04x})", t),
        }
    }
}

fn ether_addresses_print(ctx: &mut Ctx<'_>, bp: &[u8]) {
    // Only called with at least 12 captured bytes.
    if let (Some(dst), Some(src)) = (bp.get(0..6), bp.get(6..12)) {
        put_mac(ctx, src);
        ctx.put(" > ");
        put_mac(ctx, dst);
        ctx.put(", ");
    }
}

fn ether_if(ctx: &mut Ctx<'_>, bp: &[u8], length: u32) -> PResult<usize> {
    ctx.protocol = "ether";
    ether(ctx, bp, length)
}

/// tcpdump's `ether_print`: an Ethernet frame starting at `bp` (captured bytes), `length`
/// bytes long on the wire. Returns the header length consumed. Also used for Ethernet
/// inside IPv6 (protocol 143).
pub fn ether(ctx: &mut Ctx<'_>, bp: &[u8], length: u32) -> PResult<usize> {
    ctx.protocol = "ether";
    let caplen = bp.len() as u32;
    if length < caplen {
        pr!(ctx, "[length {} < caplen {}]", length, caplen);
        ctx.print_invalid();
        return Ok(length as usize);
    }
    if caplen < 14 {
        ctx.print_trunc();
        return Ok(caplen as usize);
    }
    let orig_length = length;
    let mut length = length - 12;
    let mut caplen = caplen - 12;
    let mut off = 12usize;
    if ctx.eflag() {
        ether_addresses_print(ctx, bp);
    }
    let mut length_type = get_be16(bp, off)?;
    length = length.saturating_sub(2);
    caplen = caplen.saturating_sub(2);
    off += 2;
    let mut printed_length = false;
    // The captured bytes still in play (MACsec cuts its trailing ICV off).
    let mut bp = bp;
    if length_type == ETHERTYPE_MACSEC {
        if ctx.eflag() {
            ether_type_print(ctx, length_type);
            pr!(ctx, ", length {}: ", orig_length);
            printed_length = true;
        }
        match macsec(ctx, bp, off, &mut length, &mut caplen)? {
            Macsec::Encrypted(hdr) => {
                ctx.default_print(bp.get(off + hdr..).unwrap_or(&[]));
                return Ok(off + hdr);
            }
            Macsec::Done(n) => return Ok(n),
            Macsec::Clear { hdr, end } => {
                off += hdr;
                bp = bp.get(..end).unwrap_or(bp);
                length_type = get_be16(bp, off)?;
                if caplen < 2 {
                    return Ok(off);
                }
                length -= 2;
                caplen -= 2;
                off += 2;
            }
        }
    }
    while matches!(length_type, ETHERTYPE_8021Q | ETHERTYPE_8021Q9100 | ETHERTYPE_8021Q9200 | ETHERTYPE_8021QINQ) {
        if caplen < 4 {
            ctx.protocol = "vlan";
            ctx.print_trunc();
            return Ok(off + caplen as usize);
        }
        if length < 4 {
            ctx.protocol = "vlan";
            ctx.print_trunc();
            return Ok(off + length as usize);
        }
        if ctx.eflag() {
            let tag = get_be16(bp, off)?;
            ether_type_print(ctx, length_type);
            if !printed_length {
                pr!(ctx, ", length {}: ", orig_length);
                printed_length = true;
            } else {
                ctx.put(", ");
            }
            pr!(ctx, "vlan {}, p {}{}, ", tag & 0xfff, tag >> 13, if tag & 0x1000 != 0 { ", DEI" } else { "" });
        }
        length_type = get_be16(bp, off + 2)?;
        off += 4;
        length -= 4;
        caplen -= 4;
    }
    let payload = bp.get(off..).unwrap_or(&[]);
    if length_type <= MAX_ETHERNET_LENGTH_VAL {
        // 802.3 length field; LLC follows.
        if u32::from(length_type) < length {
            length = u32::from(length_type);
        }
        let payload = payload.get(..length as usize).unwrap_or(payload);
        if ctx.eflag() {
            ctx.put("802.3");
            if !printed_length {
                pr!(ctx, ", length {}: ", length);
            }
        }
        let llc_len = llc(ctx, payload, length, Some(bp))?;
        return Ok(off + llc_len);
    }
    if ctx.eflag() {
        ether_type_print(ctx, length_type);
        if !printed_length {
            pr!(ctx, ", length {}: ", orig_length);
        } else {
            ctx.put(", ");
        }
    }
    if !ethertype_print(ctx, length_type, payload, length)? {
        if !ctx.eflag() {
            ether_addresses_print(ctx, bp);
            ether_type_print(ctx, length_type);
            pr!(ctx, ", length {}: ", orig_length);
        }
        ctx.default_print(payload);
    }
    Ok(off)
}

const ETHERTYPE_MACSEC: u16 = 0x88e5;
/// MACsec integrity check value length at the end of the frame.
const MACSEC_ICV_LEN: u32 = 16;

/// What `macsec` found.
enum Macsec {
    /// Payload encrypted: dump it raw after a SecTAG of this length.
    Encrypted(usize),
    /// Printing stops; the link header length to report.
    Done(usize),
    /// Clear payload: skip `hdr` SecTAG bytes; the captured data ends at `end` (the ICV is
    /// cut off).
    Clear { hdr: usize, end: usize },
}

/// The SecTAG summary, flags in tcpdump's `bittok2str_nosep` order.
fn macsec_header(ctx: &mut Ctx<'_>, tag: &[u8], short_length: u8) -> PResult {
    let tci = get_u8(tag, 0)?;
    pr!(ctx, "an {}, pn {}, flags ", tci & 3, get_be32(tag, 2)?);
    let mut any = false;
    for (bit, c) in [(0x08u8, 'E'), (0x04, 'C'), (0x40, 'S'), (0x10, 'B'), (0x20, 'I')] {
        if tci & bit != 0 {
            ctx.out.push(c);
            any = true;
        }
    }
    if !any {
        ctx.put("none");
    }
    if short_length != 0 {
        pr!(ctx, ", sl {}", short_length);
    }
    if tci & 0x20 != 0 {
        let sci = get_bytes(tag, 6, 8)?;
        let v = u64::from_be_bytes([sci[0], sci[1], sci[2], sci[3], sci[4], sci[5], sci[6], sci[7]]);
        pr!(ctx, ", sci {:016x}", v);
    }
    ctx.put(", ");
    Ok(())
}

/// tcpdump's `macsec_print` (802.1AE SecTAG at `bp[off..]`); updates `length`/`caplen`.
fn macsec(ctx: &mut Ctx<'_>, bp: &[u8], off: usize, length: &mut u32, caplen: &mut u32) -> PResult<Macsec> {
    let save = ctx.protocol;
    ctx.protocol = "macsec";
    let trunc = |ctx: &mut Ctx<'_>, caplen: u32| {
        ctx.print_trunc();
        ctx.protocol = save;
        Ok(Macsec::Done(off + caplen as usize))
    };
    if *caplen < 6 || *length < 6 {
        return trunc(ctx, *caplen);
    }
    let tag = bp.get(off..).unwrap_or(&[]);
    let tci = get_u8(tag, 0)?;
    let tag_len: u32 = if tci & 0x20 != 0 { 14 } else { 6 };
    if *caplen < tag_len || *length < tag_len {
        return trunc(ctx, *caplen);
    }
    let sl = get_u8(tag, 1)?;
    if sl & !0x3f != 0 || tci & 0x80 != 0 {
        ctx.print_invalid();
        ctx.protocol = save;
        return Ok(Macsec::Done(off + *caplen as usize));
    }
    let short_length = sl & 0x3f;
    if ctx.eflag() {
        macsec_header(ctx, tag, short_length)?;
    }
    let orig_caplen = *caplen;
    *length -= tag_len;
    *caplen -= tag_len;
    if tci & 0x0c != 0 {
        if !ctx.eflag() {
            put_mac(ctx, bp.get(6..12).unwrap_or(&[]));
            ctx.put(" > ");
            put_mac(ctx, bp.get(0..6).unwrap_or(&[]));
            ctx.put(" 802.1AE MACsec, ");
            macsec_header(ctx, tag, short_length)?;
        }
        ctx.protocol = save;
        return Ok(Macsec::Encrypted(tag_len as usize));
    }
    if *length < MACSEC_ICV_LEN || *caplen < MACSEC_ICV_LEN {
        return trunc(ctx, orig_caplen);
    }
    *length -= MACSEC_ICV_LEN;
    *caplen -= MACSEC_ICV_LEN;
    let end = bp.len().saturating_sub(MACSEC_ICV_LEN as usize);
    if short_length != 0 {
        let sl = u32::from(short_length);
        if sl > *length || sl > *caplen {
            return trunc(ctx, orig_caplen);
        }
        *length = (*length).min(sl);
        // tcpdump shortens only its caplen variable here, not the snapshot end.
        *caplen = (*caplen).min(sl);
    }
    ctx.protocol = save;
    Ok(Macsec::Clear { hdr: tag_len as usize, end })
}

/// tcpdump's `llc_print` for the SAPs that carry what we decode (IP, SNAP-encapsulated
/// ethertypes); every other SAP gets tcpdump's generic LLC summary and a raw dump (tcpdump
/// has dedicated printers for STP, IPX, OSI, NetBEUI; those are not reproduced here).
/// `macs` is the Ethernet header (for the addresses tcpdump prints without `-e`).
/// Returns the LLC header length consumed.
fn llc(ctx: &mut Ctx<'_>, bp: &[u8], length: u32, macs: Option<&[u8]>) -> PResult<usize> {
    ctx.protocol = "llc";
    let caplen = bp.len() as u32;
    let short = |ctx: &mut Ctx<'_>, ret: u32| {
        ctx.print_trunc();
        ctx.raw_print(bp);
        Ok(ret as usize)
    };
    if caplen < 3 {
        return short(ctx, caplen);
    }
    if length < 3 {
        return short(ctx, length);
    }
    let dsap_field = get_u8(bp, 0)?;
    let ssap_field = get_u8(bp, 1)?;
    let mut control = u16::from(get_u8(bp, 2)?);
    let is_u = control & 3 == 3;
    let hdrlen: u32 = if is_u { 3 } else { 4 };
    if !is_u {
        if caplen < 4 {
            return short(ctx, caplen);
        }
        if length < 4 {
            return short(ctx, length);
        }
        control = get_be16(bp, 2)?.swap_bytes();
    }
    let dsap = dsap_field & !1;
    let ssap = ssap_field & !1;
    if ctx.eflag() {
        pr!(
            ctx,
            "LLC, dsap {} (0x{:02x}) {}, ssap {} (0x{:02x}) {}",
            sap_name(dsap).unwrap_or("Unknown"),
            dsap,
            if dsap_field & 1 != 0 { "Group" } else { "Individual" },
            sap_name(ssap).unwrap_or("Unknown"),
            ssap,
            if ssap_field & 1 != 0 { "Response" } else { "Command" }
        );
        if is_u {
            pr!(ctx, ", ctrl 0x{:02x}: ", control);
        } else {
            pr!(ctx, ", ctrl 0x{:04x}: ", control);
        }
    }
    let p = bp.get(hdrlen as usize..).unwrap_or(&[]);
    let length = length - hdrlen;
    if ssap == 0xaa && dsap == 0xaa && control == 3 {
        // SNAP
        ctx.protocol = "snap";
        if p.len() < 5 || length < 5 {
            ctx.print_trunc();
            return Ok(hdrlen as usize + 5);
        }
        let oui = u32::from_be_bytes([0, p[0], p[1], p[2]]);
        let et = u16::from_be_bytes([p[3], p[4]]);
        let oui_name = oui_name(oui).unwrap_or("Unknown");
        let pid_name = if oui == 0 { ethertype_name(et).unwrap_or("Unknown") } else { "Unknown" };
        if ctx.eflag() {
            pr!(
                ctx,
                "oui {} (0x{:06x}), {} {} (0x{:04x}), length {}: ",
                oui_name,
                oui,
                if oui == 0 { "ethertype" } else { "pid" },
                pid_name,
                et,
                length - 5
            );
        }
        let inner = p.get(5..).unwrap_or(&[]);
        if (oui == 0 || oui == 0xf8) && ethertype_print(ctx, et, inner, length - 5)? {
            return Ok(hdrlen as usize + 5);
        }
        if !ctx.eflag() {
            if let Some(m) = macs {
                put_mac(ctx, m.get(6..12).unwrap_or(&[]));
                ctx.put(" > ");
                put_mac(ctx, m.get(0..6).unwrap_or(&[]));
                ctx.put(" ");
            }
            if oui == 0 {
                pr!(ctx, "SNAP, ethertype {} (0x{:04x}), length {}: ", pid_name, et, length - 5);
            } else {
                pr!(
                    ctx,
                    "SNAP, oui {} (0x{:06x}), pid {} (0x{:04x}), length {}: ",
                    oui_name,
                    oui,
                    pid_name,
                    et,
                    length - 5
                );
            }
        }
        ctx.default_print(bp);
        return Ok(hdrlen as usize + 5);
    }
    if ssap == 0x06 && dsap == 0x06 && control == 3 {
        ip::print(ctx, p, length)?;
        return Ok(hdrlen as usize);
    }
    if !ctx.eflag() {
        let macs = macs.and_then(|m| Some((m.get(6..12)?, m.get(0..6)?)));
        let dname = |v: u8| sap_name(v).map(str::to_string).unwrap_or_else(|| format!("Unknown DSAP 0x{v:02x}"));
        let sname = |v: u8| sap_name(v).map(str::to_string).unwrap_or_else(|| format!("Unknown SSAP 0x{v:02x}"));
        match macs {
            None if ssap == dsap => pr!(ctx, "{} ", dname(dsap)),
            None => pr!(ctx, "{} > {} ", sname(ssap), dname(dsap)),
            Some((src, dst)) => {
                put_mac(ctx, src);
                if ssap != dsap {
                    pr!(ctx, " {}", sname(ssap));
                }
                ctx.put(" > ");
                put_mac(ctx, dst);
                pr!(ctx, " {} ", dname(dsap));
            }
        }
    }
    let flag = |f: u16| match f {
        0 => "Command",
        1 => "Response",
        0x10 | 0x100 => "Poll",
        0x11 | 0x101 => "Final",
        _ => "?",
    };
    if is_u {
        let cmd = control & 0xef;
        let cmd_name = match cmd {
            0x03 => "ui".to_string(),
            0xe3 => "test".to_string(),
            0xaf => "xid".to_string(),
            0x63 => "ua".to_string(),
            0x43 => "disc".to_string(),
            0x0f => "dm".to_string(),
            0x6f => "sabme".to_string(),
            0x87 => "frmr".to_string(),
            _ => format!("{cmd:02x}"),
        };
        pr!(
            ctx,
            "Unnumbered, {}, Flags [{}], length {}",
            cmd_name,
            flag(u16::from(ssap_field & 1) | (control & 0x10)),
            length + hdrlen
        );
        if control & !0x10 == 0xaf {
            if length == 0 {
                return Ok(hdrlen as usize);
            }
            if p.is_empty() {
                ctx.print_trunc();
                return Ok(hdrlen as usize);
            }
            if p[0] == 0x81 {
                if p.len() < 3 || length < 3 {
                    ctx.print_trunc();
                    ctx.raw_print(p);
                } else {
                    pr!(ctx, ": {:02x} {:02x}", p[1], p[2]);
                }
                return Ok(hdrlen as usize);
            }
        }
    } else if control & 1 == 1 {
        let s = match (control >> 2) & 3 {
            0 => "Receiver Ready",
            1 => "Receiver not Ready",
            2 => "Reject",
            _ => "?",
        };
        pr!(
            ctx,
            "Supervisory, {}, rcv seq {}, Flags [{}], length {}",
            s,
            (control >> 9) & 0x7f,
            flag(u16::from(ssap_field & 1) | (control & 0x100)),
            length + hdrlen
        );
        return Ok(hdrlen as usize);
    } else {
        pr!(
            ctx,
            "Information, send seq {}, rcv seq {}, Flags [{}], length {}",
            (control >> 1) & 0x7f,
            (control >> 9) & 0x7f,
            flag(u16::from(ssap_field & 1) | (control & 0x100)),
            length + hdrlen
        );
    }
    // Unknown LLC payload: tcpdump's caller dumps from the LLC header on.
    ctx.default_print(bp);
    Ok(hdrlen as usize)
}

/// tcpdump's `oui_values`.
pub fn oui_name(oui: u32) -> Option<&'static str> {
    Some(match oui {
        0x000000 => "Ethernet",
        0x00000c => "Cisco",
        0x00005E => "IANA",
        0x000081 => "Nortel Networks SONMP",
        0x0000f8 => "Cisco bridged",
        0x0080c2 => "Ethernet bridged",
        0x00A03E => "ATM Forum",
        0x00E02F => "DOCSIS Spanning Tree",
        0x080007 => "Appletalk",
        0x009069 => "Juniper",
        0x080009 => "Hewlett-Packard",
        0x00120f => "IEEE 802.3 Private",
        0x0012bb => "ANSI/TIA",
        0x001B21 => "DCBX",
        0x002320 => "Nicira Networks",
        0x5c16c7 => "Big Switch Networks",
        0xb0d2f5 => "Vello Systems",
        0x002481 => "HP",
        0x0004ea => "HP-Labs",
        0x748771 => "Infoblox Inc",
        0xa42305 => "Open Networking Lab",
        0x00049f => "Freescale",
        0x0015ad => "Netronome",
        0x001018 => "Broadcom",
        0x00e004 => "PMC-Sierra",
        0xd0f0db => "Ericsson",
        _ => return None,
    })
}

fn sap_name(sap: u8) -> Option<&'static str> {
    Some(match sap {
        0x00 => "Null",
        0xff => "Global",
        0x02 => "802.1B I",
        0x03 => "802.1B G",
        0x06 => "IP",
        0x04 => "SNA",
        0x0e => "ProWay NM",
        0x42 => "STP",
        0x4e => "RS511",
        0x7e => "ISO8208",
        0x8e => "ProWay",
        0xaa => "SNAP",
        0xe0 => "IPX",
        0xf0 => "NetBeui",
        0xfe => "OSI",
        _ => return None,
    })
}

/// tcpdump's `ethertype_print`: the payload of a known ethertype. `Ok(false)` for types we
/// (or tcpdump) don't decode, so the caller prints the raw payload.
pub fn ethertype_print(ctx: &mut Ctx<'_>, t: u16, bp: &[u8], length: u32) -> PResult<bool> {
    match t {
        ETHERTYPE_IP => ip::print(ctx, bp, length)?,
        ETHERTYPE_IPV6 => super::ip6::print(ctx, bp, length)?,
        ETHERTYPE_ARP | ETHERTYPE_REVARP => super::arp::print(ctx, bp, length)?,
        ETHERTYPE_PPP => {
            if length != 0 {
                ctx.put(": ");
                ctx.default_print(bp);
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Linux cooked capture packet types.
fn sll_pkttype(t: u32) -> &'static str {
    match t {
        0 => "In",
        1 => "B",
        2 => "M",
        3 => "P",
        4 => "Out",
        _ => "?",
    }
}

/// Protocol part shared by `sll_print`/`sll2_print` (`-e`).
fn sll_proto_print(ctx: &mut Ctx<'_>, ether_type: u16, length: u32) {
    if ctx.opts.quick {
        return;
    }
    if ether_type <= MAX_ETHERNET_LENGTH_VAL {
        match ether_type {
            1 => ctx.put("802.3"),
            4 => ctx.put("802.2"),
            _ => pr!(ctx, "ethertype Unknown (0x{:04x})", ether_type),
        }
    } else {
        pr!(ctx, "ethertype {} (0x{:04x})", ethertype_name(ether_type).unwrap_or("Unknown"), ether_type);
    }
    pr!(ctx, ", length {}: ", length);
}

fn sll_print(ctx: &mut Ctx<'_>, hdr: &[u8], length: u32) -> PResult {
    ctx.protocol = "sll";
    pr!(ctx, "{:>3} ", sll_pkttype(u32::from(get_be16(hdr, 0)?)));
    if get_be16(hdr, 4)? == 6 {
        put_mac(ctx, get_bytes(hdr, 6, 6)?);
        ctx.put(" ");
    }
    let et = get_be16(hdr, 14)?;
    sll_proto_print(ctx, et, length);
    Ok(())
}

fn sll2_print(ctx: &mut Ctx<'_>, hdr: &[u8], length: u32) -> PResult {
    ctx.protocol = "sll2";
    pr!(ctx, "ifindex {} ", get_be32(hdr, 4)?);
    if get_u8(hdr, 11)? == 6 {
        put_mac(ctx, get_bytes(hdr, 12, 6)?);
        ctx.put(" ");
    }
    let et = get_be16(hdr, 0)?;
    sll_proto_print(ctx, et, length);
    Ok(())
}

/// What follows a cooked header: `ether_type` at `bp[off..]`; shared by SLL and SLL2.
/// `reprint` re-prints the cooked header when the payload type is unknown and `-e` was
/// not given.
fn sll_payload(
    ctx: &mut Ctx<'_>,
    bp: &[u8],
    mut off: usize,
    mut length: u32,
    mut ether_type: u16,
    reprint: &dyn Fn(&mut Ctx<'_>, u32) -> PResult,
    hdr_total: u32,
) -> PResult<usize> {
    loop {
        let payload = bp.get(off..).unwrap_or(&[]);
        if ether_type <= MAX_ETHERNET_LENGTH_VAL {
            match ether_type {
                4 => {
                    let n = llc(ctx, payload, length, None)?;
                    off += n;
                }
                _ => ctx.default_print(payload),
            }
            return Ok(off);
        } else if ether_type == ETHERTYPE_8021Q {
            if payload.len() < 4 {
                ctx.protocol = "vlan";
                ctx.print_trunc();
                return Ok(off + payload.len());
            }
            if ctx.eflag() {
                let tag = get_be16(payload, 0)?;
                pr!(ctx, "vlan {}, p {}{}, ", tag & 0xfff, tag >> 13, if tag & 0x1000 != 0 { ", DEI" } else { "" });
            }
            ether_type = get_be16(payload, 2)?;
            if ether_type <= MAX_ETHERNET_LENGTH_VAL {
                ether_type = 4;
            }
            if !ctx.opts.quick {
                pr!(ctx, "ethertype {}, ", ethertype_name(ether_type).unwrap_or("Unknown"));
            }
            off += 4;
            length = length.wrapping_sub(4);
        } else {
            if !ethertype_print(ctx, ether_type, payload, length)? {
                if !ctx.eflag() {
                    reprint(ctx, length.wrapping_add(hdr_total))?;
                }
                ctx.default_print(payload);
            }
            return Ok(off);
        }
    }
}

fn sll_if(ctx: &mut Ctx<'_>, bp: &[u8], length: u32) -> PResult<usize> {
    ctx.protocol = "sll";
    let hdr = get_bytes(bp, 0, 16)?;
    if ctx.eflag() {
        sll_print(ctx, hdr, length)?;
    }
    let length = length.wrapping_sub(16);
    let hatype = get_be16(hdr, 2)?;
    if hatype == 803 {
        // radiotap inside a cooked header: not decoded here.
        ctx.default_print(bp.get(16..).unwrap_or(&[]));
        return Ok(16);
    }
    let et = get_be16(hdr, 14)?;
    sll_payload(ctx, bp, 16, length, et, &|c, l| sll_print(c, hdr, l), 16)
}

fn sll2_if(ctx: &mut Ctx<'_>, bp: &[u8], length: u32) -> PResult<usize> {
    ctx.protocol = "sll2";
    let hdr = get_bytes(bp, 0, 20)?;
    let ifindex = get_be32(hdr, 4)?;
    let name = ctx.state.if_names.iter().find(|(i, _)| *i == ifindex).map(|(_, n)| n.as_str()).unwrap_or("?");
    // An interface name is the namespace owner's choice: never raw to the terminal.
    let name = crate::escape::text(name);
    let _ = std::fmt::Write::write_fmt(ctx.out, format_args!("{:<5} ", name));
    pr!(ctx, "{:<3} ", sll_pkttype(u32::from(get_u8(hdr, 10)?)));
    if ctx.eflag() {
        sll2_print(ctx, hdr, length)?;
    }
    let length = length.wrapping_sub(20);
    let hatype = get_be16(hdr, 8)?;
    if hatype == 803 {
        ctx.default_print(bp.get(20..).unwrap_or(&[]));
        return Ok(20);
    }
    let et = get_be16(hdr, 0)?;
    sll_payload(ctx, bp, 20, length, et, &|c, l| sll2_print(c, hdr, l), 20)
}

/// BSD address families in DLT_NULL/DLT_LOOP headers (tcpdump's `bsd_af_values`).
fn bsd_af_name(af: u32) -> Option<&'static str> {
    Some(match af {
        2 => "IPv4",
        7 => "OSI",
        16 => "Appletalk",
        23 => "IPX",
        24 | 28 | 30 => "IPv6",
        _ => return None,
    })
}

fn null_hdr_print(ctx: &mut Ctx<'_>, family: u32, length: u32) {
    if !ctx.opts.quick {
        pr!(ctx, "AF {} ({})", bsd_af_name(family).unwrap_or("Unknown"), family);
    } else {
        match bsd_af_name(family) {
            Some(n) => ctx.put(n),
            None => pr!(ctx, "Unknown AF {}", family),
        }
    }
    pr!(ctx, ", length {}: ", length);
}

fn null_if(ctx: &mut Ctx<'_>, bp: &[u8], length: u32) -> PResult<usize> {
    ctx.protocol = "null";
    let h = get_bytes(bp, 0, 4)?;
    // Host byte order of the capturing machine; byte-swap when the upper half is set.
    let mut family = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    if family & 0xffff_0000 != 0 {
        family = family.swap_bytes();
    }
    if ctx.eflag() {
        null_hdr_print(ctx, family, length);
    }
    let length = length.wrapping_sub(4);
    let p = bp.get(4..).unwrap_or(&[]);
    match family {
        2 => ip::print(ctx, p, length)?,
        24 | 28 | 30 => super::ip6::print(ctx, p, length)?,
        _ => {
            if !ctx.eflag() {
                null_hdr_print(ctx, family, length.wrapping_add(4));
            }
            ctx.default_print(p);
        }
    }
    Ok(4)
}

fn raw_if(ctx: &mut Ctx<'_>, bp: &[u8], length: u32) -> PResult<usize> {
    ctx.protocol = "raw";
    if ctx.eflag() {
        ctx.put("ip: ");
    }
    ip::ip_n(ctx, bp, length)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        let mut s = String::new();
        push_mac(&mut s, &[0, 0x20, 0xd2, 0x5a, 0xfb, 0x3f]);
        assert_eq!(s, "00:20:d2:5a:fb:3f");
    }
}
