//! The pipeline: open inputs, merge frames by timestamp, filter, print and write.

use crate::capture::{OfflineReader, Points};
use crate::cli::Args;
use crate::print::{Options, Printer, TsFormat};
use std::io::Write;

/// Print options from the command line.
pub fn print_options(args: &Args) -> Options {
    Options {
        verbose: args.verbose,
        link_header: args.link_header,
        numeric: args.numeric,
        quick: args.quick,
        absolute_seq: args.absolute_seq,
        hex: args.hex,
        hex_ascii: args.hex_ascii,
        ascii: args.ascii,
        ts_format: TsFormat::from_count(args.timestamp),
        nano: args.want_nano(),
        number: args.number,
        labels: false,
    }
}

/// Runs flowtrail with parsed arguments; returns the process exit status.
/// TEMPORARY: one offline input, no filter, no -w; replaced by the full pipeline.
pub fn run(args: Args) -> i32 {
    let mut points = Points::default();
    let Some(spec) = args.read.first() else {
        eprintln!("flowtrail: live capture is not implemented yet; use -r FILE");
        return 1;
    };
    let mut reader = match OfflineReader::open(spec, &mut points) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("flowtrail: {e}");
            return 1;
        }
    };
    let mut printer = Printer::new(print_options(&args));
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    let mut text = String::with_capacity(1 << 16);
    let mut n = 0u64;
    while let Some(item) = reader.next_frame(&mut points) {
        match item {
            Ok(frame) => {
                let point = &points.points[frame.point];
                printer.print_frame(&frame, point, &mut text);
                if text.len() > 1 << 15 {
                    let _ = lock.write_all(text.as_bytes());
                    text.clear();
                }
                n += 1;
                if args.count.is_some_and(|c| n >= c) {
                    break;
                }
            }
            Err(e) => {
                let _ = lock.write_all(text.as_bytes());
                let _ = lock.flush();
                eprintln!("flowtrail: {e}");
                return 1;
            }
        }
    }
    let _ = lock.write_all(text.as_bytes());
    let _ = lock.flush();
    0
}
