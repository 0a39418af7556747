//! ICMP (including RFC 4884 extensions and RFC 8335 extended echo).

use super::{Ctx, IpHdr, PResult};

/// Prints an ICMP message. `bp` starts at the ICMP header.
pub fn print(ctx: &mut Ctx<'_>, bp: &[u8], length: u32, ip: &IpHdr<'_>) -> PResult {
    let _ = (ctx, bp, length, ip);
    Ok(())
}
