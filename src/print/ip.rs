//! IPv4 (options, fragments) and the IP protocol dispatch.

use super::{Ctx, PResult};

/// Prints an IPv4 datagram; `bp` starts at the IPv4 header, `length` is the length the
/// link layer reports for it.
pub fn print(ctx: &mut Ctx<'_>, bp: &[u8], length: u32) -> PResult {
    let _ = (ctx, bp, length);
    Ok(())
}
