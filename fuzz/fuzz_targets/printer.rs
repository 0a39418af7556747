//! Any bytes as a packet of any link type, printed under any combination of flags: the
//! printers must never panic, and the text must hold no control characters other than
//! newline and tab (payload bytes never reach a terminal raw).
#![no_main]

use arbitrary::Arbitrary;
use flowtrail::capture::{Direction, Frame, Point, Timestamp};
use flowtrail::print::{Options, Printer, TsFormat};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    linktype: u8,
    verbose: u8,
    link_header: bool,
    quick: bool,
    absolute_seq: bool,
    hex: u8,
    hex_ascii: u8,
    ascii: u8,
    ts: u8,
    nano: bool,
    labels: bool,
    origlen_extra: u16,
    sec: i64,
    nsec: u64,
    packets: Vec<&'a [u8]>,
}

const LINKTYPES: [u32; 10] = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276];

fuzz_target!(|inp: Input<'_>| {
    let opts = Options {
        verbose: inp.verbose % 4,
        link_header: inp.link_header,
        numeric: 2,
        quick: inp.quick,
        absolute_seq: inp.absolute_seq,
        hex: inp.hex % 3,
        hex_ascii: inp.hex_ascii % 3,
        ascii: inp.ascii % 3,
        ts_format: TsFormat::from_count(inp.ts % 6),
        nano: inp.nano,
        number: true,
        labels: inp.labels,
    };
    let linktype = LINKTYPES[usize::from(inp.linktype) % LINKTYPES.len()];
    let point = Point { label: "fuzz".into(), linktype, snaplen: 262_144, nano: inp.nano };
    let mut printer = Printer::new(opts);
    let mut out = String::new();
    for (i, p) in inp.packets.iter().take(16).enumerate() {
        let frame = Frame {
            point: 0,
            ts: Timestamp { sec: inp.sec.wrapping_add(i as i64), nsec: inp.nsec },
            linktype,
            origlen: (p.len() as u32).saturating_add(u32::from(inp.origlen_extra)),
            data: p.to_vec(),
            direction: if i % 2 == 0 { Direction::In } else { Direction::Unknown },
        };
        out.clear();
        printer.print_frame(&frame, &point, &mut out);
        assert!(
            !out.chars().any(|c| c.is_control() && c != '\n' && c != '\t'),
            "control character in output: {out:?}"
        );
    }
});
