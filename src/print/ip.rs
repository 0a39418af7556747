//! IPv4 (options, fragments) and the IP protocol dispatch.

use super::{Ctx, IpHdr, PResult};

/// Prints an IPv4 datagram; `bp` starts at the IPv4 header, `length` is the length the
/// link layer reports for it.
pub fn print(ctx: &mut Ctx<'_>, bp: &[u8], length: u32) -> PResult {
    let _ = (ctx, bp, length);
    Ok(())
}

/// tcpdump's `ip_demux_print`: dispatch on the next-protocol number, shared by IPv4 and
/// IPv6 (and the IPv6 extension-header chain once it reaches an upper layer).
/// `bp` starts at the upper-layer header, `length` is its length from the IP layer,
/// `ver` is 4 or 6, `nh` the protocol number.
pub fn demux(ctx: &mut Ctx<'_>, bp: &[u8], length: u32, ver: u8, nh: u8, ip: &IpHdr<'_>) -> PResult {
    let _ = ver;
    match nh {
        1 => super::icmp::print(ctx, bp, length, ip),
        6 => super::tcp::print(ctx, bp, length, ip),
        17 => super::udp::print(ctx, bp, length, ip),
        58 => super::icmp6::print(ctx, bp, length, ip),
        _ => {
            crate::pr!(ctx, " ip-proto-{nh} {length}");
            Ok(())
        }
    }
}
