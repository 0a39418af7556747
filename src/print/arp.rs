//! ARP and RARP.

use super::{Ctx, PResult};

/// Prints an ARP/RARP packet. `bp` starts at the ARP header.
pub fn print(ctx: &mut Ctx<'_>, bp: &[u8], length: u32) -> PResult {
    let _ = (ctx, bp, length);
    Ok(())
}
