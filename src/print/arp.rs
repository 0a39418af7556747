//! ARP and RARP (tcpdump 4.99.3's `arp_print`).
//!
//! Hardware addresses print as tcpdump's `linkaddr_string`: 6-byte addresses as MACs,
//! other lengths as colon-separated hex, empty ones as `<empty>`. ATM ARP (hardware type
//! 19) and Frame Relay DLCI formatting are not reproduced (their addresses print as hex).

use super::{Ctx, PResult, get_be16, get_bytes, get_u8, link};
use crate::pr;

fn hrd_name(h: u16) -> Option<&'static str> {
    Some(match h {
        1 => "Ethernet",
        6 => "TokenRing",
        7 => "ArcNet",
        15 => "FrameRelay",
        23 => "Strip",
        24 => "IEEE 1394",
        19 => "ATM",
        32 => "InfiniBand",
        _ => return None,
    })
}

fn op_name(op: u16) -> Option<&'static str> {
    Some(match op {
        1 => "Request",
        2 => "Reply",
        3 => "Reverse Request",
        4 => "Reverse Reply",
        8 => "Inverse Request",
        9 => "Inverse Reply",
        10 => "NACK Reply",
        _ => return None,
    })
}

/// Field offsets of one ARP packet.
struct Layout {
    hln: usize,
    pln: usize,
    pro: u16,
}

impl Layout {
    fn sha(&self) -> usize {
        8
    }
    fn spa(&self) -> usize {
        8 + self.hln
    }
    fn tha(&self) -> usize {
        8 + self.hln + self.pln
    }
    fn tpa(&self) -> usize {
        8 + 2 * self.hln + self.pln
    }
    fn ip_ok(&self) -> bool {
        self.pro == link::ETHERTYPE_IP || self.pro == link::ETHERTYPE_TRAIL
    }
}

/// tcpdump's `linkaddr_string` (Ethernet-style addresses).
fn linkaddr(ctx: &mut Ctx<'_>, bp: &[u8], off: usize, len: usize) -> PResult {
    let a = get_bytes(bp, off, len)?;
    if a.is_empty() {
        ctx.put("<empty>");
    } else {
        link::put_mac(ctx, a);
    }
    Ok(())
}

/// tcpdump's `spaddr_print_ip` / `tpaddr_print_ip`.
fn paddr(ctx: &mut Ctx<'_>, bp: &[u8], l: &Layout, off: usize) -> PResult {
    if !l.ip_ok() {
        ctx.put("<wrong proto type>");
    } else if l.pln != 4 {
        ctx.put("<wrong len>");
    } else {
        ctx.put_ip4_at(bp, off)?;
    }
    Ok(())
}

/// Prints an ARP/RARP packet. `bp` starts at the ARP header.
pub fn print(ctx: &mut Ctx<'_>, bp: &[u8], length: u32) -> PResult {
    ctx.protocol = "arp";
    get_bytes(bp, 0, 8)?;
    let hrd = get_be16(bp, 0)?;
    let pro = get_be16(bp, 2)?;
    let op = get_be16(bp, 6)?;
    let l = Layout { hln: usize::from(get_u8(bp, 4)?), pln: usize::from(get_u8(bp, 5)?), pro };
    get_bytes(bp, l.tpa(), l.pln)?;
    if !ctx.eflag() {
        ctx.put("ARP, ");
    }
    let v = ctx.vflag() > 0;
    if !l.ip_ok() || l.pln != 4 || l.hln == 0 || v {
        match hrd_name(hrd) {
            Some(n) => ctx.put(n),
            None => pr!(ctx, "Unknown Hardware ({})", hrd),
        }
        pr!(ctx, " (len {}), ", l.hln);
        match link::ethertype_name(pro) {
            Some(n) => ctx.put(n),
            None => pr!(ctx, "Unknown Protocol (0x{:04x})", pro),
        }
        pr!(ctx, " (len {})", l.pln);
        if !v {
            pr!(ctx, ", length {}", length);
            return Ok(());
        }
    }
    if v {
        ctx.put(", ");
    }
    match op_name(op) {
        Some(n) => ctx.put(n),
        None => pr!(ctx, "Unknown ({})", op),
    }
    ctx.put(" ");
    match op {
        1 => {
            ctx.put("who-has ");
            paddr(ctx, bp, &l, l.tpa())?;
            let tha = get_bytes(bp, l.tha(), l.hln)?;
            if tha.iter().any(|&b| b != 0) {
                ctx.put(" (");
                linkaddr(ctx, bp, l.tha(), l.hln)?;
                ctx.put(")");
            }
            ctx.put(" tell ");
            paddr(ctx, bp, &l, l.spa())?;
        }
        2 => {
            paddr(ctx, bp, &l, l.spa())?;
            ctx.put(" is-at ");
            linkaddr(ctx, bp, l.sha(), l.hln)?;
        }
        3 | 8 => {
            ctx.put("who-is ");
            linkaddr(ctx, bp, l.tha(), l.hln)?;
            ctx.put(" tell ");
            linkaddr(ctx, bp, l.sha(), l.hln)?;
        }
        4 => {
            linkaddr(ctx, bp, l.tha(), l.hln)?;
            ctx.put(" at ");
            paddr(ctx, bp, &l, l.tpa())?;
        }
        9 => {
            linkaddr(ctx, bp, l.sha(), l.hln)?;
            ctx.put(" at ");
            paddr(ctx, bp, &l, l.spa())?;
        }
        _ => {
            ctx.raw_print(bp);
            return Ok(());
        }
    }
    pr!(ctx, ", length {}", length);
    Ok(())
}
