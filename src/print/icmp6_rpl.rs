//! RPL control messages (RFC 6550, ICMPv6 type 155) as tcpdump 4.99.3 prints them:
//! `, (CLR)` or `, (SEC) [worktodo]`, the message name, and with `-v` the DIO / DAO /
//! DAO-ACK fields, with `-vv` the option list. `bp` starts at the message base (ICMPv6
//! offset 4), `length` is what the ICMPv6 length leaves from there.

use super::super::{Ctx, PResult, get_be16, get_u8};
use crate::pr;

const DAGID_LEN: usize = 16;
const DIO_LEN: u32 = 24;

pub(super) fn print(ctx: &mut Ctx<'_>, code: u8, bp: &[u8], length: u32) -> PResult {
    if code & 0x80 != 0 {
        ctx.put(", (SEC) [worktodo]");
        return Ok(());
    }
    ctx.put(", (CLR)");
    let v = ctx.opts.verbose > 0;
    match code & 0x7f {
        0 => ctx.put("DODAG Information Solicitation"),
        1 => {
            ctx.put("DODAG Information Object");
            if v {
                dio(ctx, bp, length)?;
            }
        }
        2 => {
            ctx.put("Destination Advertisement Object");
            if v {
                dao(ctx, bp, length)?;
            }
        }
        3 => {
            ctx.put("Destination Advertisement Object Ack");
            if v {
                daoack(ctx, bp, length)?;
            }
        }
        _ => pr!(ctx, "RPL message, unknown code {code}"),
    }
    Ok(())
}

fn dio(ctx: &mut Ctx<'_>, bp: &[u8], length: u32) -> PResult {
    if length < DIO_LEN {
        pr!(ctx, " [length {length} < {DIO_LEN}] (invalid)");
        return Ok(());
    }
    let dagid = super::super::ip6::get_addr(bp, 8)?;
    let dtsn = get_u8(bp, 5)?;
    let instance = get_u8(bp, 0)?;
    let rank = get_be16(bp, 2)?;
    let mopprf = get_u8(bp, 4)?;
    ctx.put(" [dagid:");
    ctx.put_ip6(dagid);
    pr!(
        ctx,
        ",seq:{dtsn},instance:{instance},rank:{rank},{}mop:",
        if mopprf & 0x80 != 0 { "grounded," } else { "" }
    );
    match (mopprf >> 3) & 7 {
        0 => ctx.put("nonstoring"),
        1 => ctx.put("storing"),
        2 => ctx.put("nonstoring-multicast"),
        3 => ctx.put("storing-multicast"),
        m => pr!(ctx, "mop{m}"),
    }
    pr!(ctx, ",prf:{}]", mopprf & 7);
    if ctx.opts.verbose > 1 {
        options(
            ctx,
            bp.get(DIO_LEN as usize..).unwrap_or(&[]),
            length.wrapping_sub(DIO_LEN),
        )?;
    }
    Ok(())
}

fn dao(ctx: &mut Ctx<'_>, bp: &[u8], length: u32) -> PResult {
    if bp.len() < 4 + DAGID_LEN {
        ctx.print_trunc();
        return Ok(());
    }
    if length < 4 {
        ctx.put(" [|length too short]");
        return Ok(());
    }
    let mut off = 4;
    let mut length = length - 4;
    let flags = bp[1];
    let mut dagid = None;
    if flags & 0x40 != 0 {
        if length < DAGID_LEN as u32 {
            ctx.put(" [|length too short]");
            return Ok(());
        }
        dagid = Some(super::super::ip6::get_addr(bp, 4)?);
        off += DAGID_LEN;
        length -= DAGID_LEN as u32;
    }
    ctx.put(" [dagid:");
    match dagid {
        Some(a) => ctx.put_ip6(a),
        None => ctx.put("<elided>"),
    }
    pr!(
        ctx,
        ",seq:{},instance:{}{}{},{flags:02x}]",
        bp[3],
        bp[0],
        if flags & 0x80 != 0 { ",acK" } else { "" },
        if flags & 0x40 != 0 { ",Dagid" } else { "" }
    );
    if ctx.opts.verbose > 1 {
        options(ctx, bp.get(off..).unwrap_or(&[]), length)?;
    }
    Ok(())
}

fn daoack(ctx: &mut Ctx<'_>, bp: &[u8], length: u32) -> PResult {
    if bp.len() < 4 {
        ctx.print_trunc();
        return Ok(());
    }
    if length < 4 {
        ctx.put(" [|dao-length too short]");
        return Ok(());
    }
    let mut off = 4;
    let mut length = length - 4;
    let mut dagid = None;
    if bp[1] & 0x80 != 0 {
        if bp.len() < 4 + DAGID_LEN {
            ctx.print_trunc();
            return Ok(());
        }
        if length < DAGID_LEN as u32 {
            ctx.put(" [|dao-length too short]");
            return Ok(());
        }
        dagid = Some(super::super::ip6::get_addr(bp, 4)?);
        off += DAGID_LEN;
        length -= DAGID_LEN as u32;
    }
    ctx.put(" [dagid:");
    match dagid {
        Some(a) => ctx.put_ip6(a),
        None => ctx.put("<elided>"),
    }
    pr!(ctx, ",seq:{},instance:{},status:{}]", bp[2], bp[0], bp[3]);
    if ctx.opts.verbose > 1 {
        options(ctx, bp.get(off..).unwrap_or(&[]), length)?;
    }
    Ok(())
}

fn options(ctx: &mut Ctx<'_>, bp: &[u8], mut length: u32) -> PResult {
    let mut off = 0usize;
    while length != 0 {
        let t = get_u8(bp, off)?;
        let optlen = if t == 0 {
            ctx.put(" opt:pad1");
            1
        } else {
            if length < 2 {
                ctx.print_trunc();
                return Ok(());
            }
            let optlen = u32::from(get_u8(bp, off + 1)?) + 2;
            ctx.put(" opt:");
            match t {
                1 => ctx.put("padN"),
                2 => ctx.put("metrics"),
                3 => ctx.put("routinginfo"),
                4 => ctx.put("config"),
                5 => ctx.put("rpltarget"),
                6 => ctx.put("transitinfo"),
                8 => ctx.put("destprefix"),
                9 => ctx.put("rpltargetdesc"),
                _ => pr!(ctx, "subopt:{t}"),
            }
            pr!(ctx, " len:{optlen} ");
            if bp.len() < off + optlen as usize || length < optlen {
                ctx.print_trunc();
                return Ok(());
            }
            optlen
        };
        off += optlen as usize;
        length -= optlen;
    }
    Ok(())
}
