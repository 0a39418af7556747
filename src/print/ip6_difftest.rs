//! Test-only driver for differential runs against tcpdump: reads the classic pcap named by
//! `IP6_DIFF_PCAP`, prints every IPv6 frame (Ethernet 0x86dd, raw, LINKTYPE_IPV6) with
//! [`super::print`] the way `tcpdump -# -t -n` numbers them, and writes the text to
//! `IP6_DIFF_OUT`. `IP6_DIFF_FLAGS` holds the printing flags (`v`, `vv`, `e`).
//! Run: `cargo test --lib ip6_diff -- --ignored`.

use crate::print::{Ctx, Options, State};
use std::fmt::Write as _;

fn frames(d: &[u8]) -> (u32, Vec<(&[u8], u32)>) {
    let rd = |o: usize, le: bool| -> u32 {
        let b = [d[o], d[o + 1], d[o + 2], d[o + 3]];
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let le = rd(0, true) == 0xa1b2_c3d4 || rd(0, true) == 0xa1b2_3c4d;
    let lt = rd(20, le) & 0xffff;
    // libpcap cuts records at the file's snapshot length
    let snap = match rd(16, le) as usize {
        0 => usize::MAX,
        s => s,
    };
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= d.len() {
        let cl = rd(off + 8, le) as usize;
        let ol = rd(off + 12, le);
        off += 16;
        let end = (off + cl).min(d.len());
        out.push((&d[off..end.min(off + snap)], ol));
        off = end;
    }
    (lt, out)
}

#[test]
#[ignore]
fn ip6_diff() {
    let Ok(path) = std::env::var("IP6_DIFF_PCAP") else {
        return;
    };
    let flags = std::env::var("IP6_DIFF_FLAGS").unwrap_or_default();
    let d = std::fs::read(path).unwrap();
    let opts = Options {
        verbose: flags.matches('v').count() as u8,
        link_header: flags.contains('e'),
        numeric: 1,
        ..Options::default()
    };
    let (lt, fr) = frames(&d);
    let mut out = String::new();
    let mut state = State::default();
    for (n, (data, orig)) in fr.iter().enumerate() {
        let _ = write!(out, "{:5}  ", n + 1);
        let (bp, len) = match lt {
            1 if data.len() >= 14 && data[12..14] == [0x86, 0xdd] => {
                (&data[14..], orig.saturating_sub(14))
            }
            101 | 229 if data.first().is_some_and(|b| b >> 4 == 6) => (&data[..], *orig),
            113 if data.len() >= 16 && data[14..16] == [0x86, 0xdd] => {
                (&data[16..], orig.saturating_sub(16))
            }
            0 if data.len() >= 4 && [10, 24, 28, 30].contains(&data[0].max(data[3])) => {
                (&data[4..], orig.saturating_sub(4))
            }
            _ => {
                out.push_str("SKIP\n");
                continue;
            }
        };
        let mut ctx = Ctx {
            opts: &opts,
            out: &mut out,
            protocol: "",
            state: &mut state,
        };
        if super::print(&mut ctx, bp, len).is_err() {
            ctx.print_trunc();
        }
        out.push('\n');
    }
    std::fs::write(std::env::var("IP6_DIFF_OUT").unwrap(), out).unwrap();
}
