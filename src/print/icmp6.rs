//! ICMPv6 (ND, MLD, router advertisement options, node information, RFC 8335, router
//! renumbering).

use super::{Ctx, IpHdr, PResult};

/// Prints an ICMPv6 message. `bp` starts at the ICMPv6 header.
pub fn print(ctx: &mut Ctx<'_>, bp: &[u8], length: u32, ip: &IpHdr<'_>) -> PResult {
    let _ = (ctx, bp, length, ip);
    Ok(())
}
