//! Link-layer printers: EN10MB (with VLAN/QinQ), LINUX_SLL, LINUX_SLL2, NULL, LOOP, RAW,
//! IPV4, IPV6; and the ethertype dispatch shared by them.

use super::Ctx;

/// Prints the link-layer part of a frame and everything above it. Returns the link header
/// length (the offset where `-x`/`-X` start).
pub fn print(ctx: &mut Ctx<'_>, linktype: u32, bp: &[u8], origlen: u32) -> usize {
    let _ = (ctx, linktype, bp, origlen);
    0
}
