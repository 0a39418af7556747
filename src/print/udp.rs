//! UDP.

use super::{Ctx, IpHdr, PResult};

/// Prints a UDP datagram. `bp` starts at the UDP header, `length` is the length from the
/// IP layer.
pub fn print(ctx: &mut Ctx<'_>, bp: &[u8], length: u32, ip: &IpHdr<'_>) -> PResult {
    let _ = (ctx, bp, length, ip);
    Ok(())
}
