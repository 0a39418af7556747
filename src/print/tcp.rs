//! TCP: flags, relative/absolute sequence numbers, options, checksum, RST payload.

use super::{Ctx, IpHdr, PResult};

/// Per-connection first sequence numbers, for relative sequence numbers (tcpdump's
/// `tcp_seq_hash`).
#[derive(Default)]
pub struct SeqTable {}

/// Prints a TCP segment. `bp` starts at the TCP header, `length` is the TCP length from the
/// IP layer.
pub fn print(ctx: &mut Ctx<'_>, bp: &[u8], length: u32, ip: &IpHdr<'_>) -> PResult {
    let _ = (ctx, bp, length, ip);
    Ok(())
}
