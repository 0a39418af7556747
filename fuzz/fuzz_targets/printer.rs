//! Any bytes as a packet of any link type, printed under any combination of flags: the
//! printers must never panic, and the text must hold no control characters other than
//! newline and tab (payload bytes never reach a terminal raw).
//!
//! Flags covered: `-n`/`-nn` (never 0: no name lookups while fuzzing, so `State::hosts` stays
//! `None`), `-e`, `-v` to `-vvvvv`, `-x`/`-xx`(/3), `-X`/`-XX`(/3), `-A`/`-AA`(/3), `-q`, `-S`,
//! `-#`, every `-t` form with micro or nano precision, and labels (several capture points)
//! with an arbitrary label and direction. For LINUX_SLL2 the interface-name table holds an
//! arbitrary (possibly hostile) name, as a namespace could hand it to us. Up to 16 packets
//! share one printer, so cross-packet state (TCP relative sequence numbers, `-ttt` deltas)
//! is exercised too.
#![no_main]

use arbitrary::Arbitrary;
use flowtrail::capture::{Direction, Frame, Point, Timestamp};
use flowtrail::print::{Options, Printer, TsFormat};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    linktype: u8,
    flags: u32,
    origlen_extra: u16,
    /// Make some origlen smaller than caplen (tcpdump's invalid-header line).
    origlen_short: bool,
    sec: i64,
    nsec: u64,
    label: &'a str,
    if_name: &'a str,
    snaplen: u32,
    packets: Vec<&'a [u8]>,
}

const LINKTYPES: [u32; 11] = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147];

/// Bits `lo..lo+n` of `v`.
fn bits(v: u32, lo: u32, n: u32) -> u8 {
    ((v >> lo) & ((1 << n) - 1)) as u8
}

fuzz_target!(|inp: Input<'_>| {
    let f = inp.flags;
    let opts = Options {
        verbose: bits(f, 0, 3) % 6,
        link_header: bits(f, 3, 1) == 1,
        // 1 (-n) or 2 (-nn): never 0, so no resolver is asked.
        numeric: 1 + bits(f, 4, 1),
        quick: bits(f, 5, 1) == 1,
        absolute_seq: bits(f, 6, 1) == 1,
        hex: bits(f, 7, 2),
        hex_ascii: bits(f, 9, 2),
        ascii: bits(f, 11, 2),
        ts_format: TsFormat::from_count(bits(f, 13, 3)),
        nano: bits(f, 16, 1) == 1,
        number: bits(f, 17, 1) == 1,
        labels: bits(f, 18, 1) == 1,
    };
    let linktype = LINKTYPES[usize::from(inp.linktype) % LINKTYPES.len()];
    let point = Point { label: inp.label.to_string(), linktype, snaplen: inp.snaplen, nano: opts.nano };
    let mut printer = Printer::new(opts);
    printer.state.if_names = vec![(1, inp.if_name.to_string()), (2, "lo".into())];
    let mut out = String::new();
    for (i, p) in inp.packets.iter().take(16).enumerate() {
        let caplen = p.len() as u32;
        let origlen = if inp.origlen_short && i % 3 == 2 {
            caplen.saturating_sub(u32::from(inp.origlen_extra))
        } else {
            caplen.saturating_add(u32::from(inp.origlen_extra))
        };
        let frame = Frame {
            point: 0,
            ts: Timestamp { sec: inp.sec.wrapping_add(i as i64), nsec: inp.nsec },
            linktype,
            origlen,
            data: p.to_vec(),
            direction: match i % 3 {
                0 => Direction::In,
                1 => Direction::Out,
                _ => Direction::Unknown,
            },
        };
        out.clear();
        printer.print_frame(&frame, &point, &mut out);
        assert!(
            !out.chars().any(|c| c.is_control() && c != '\n' && c != '\t'),
            "control character in output: {out:?}"
        );
        assert!(out.ends_with('\n'), "a packet's text ends with a newline: {out:?}");
    }
});
