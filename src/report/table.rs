//! `--flows` (text): a conn.log-like table, one line per flow, columns aligned per batch.
//!
//! ```text
//! ID  POINT    PROTO  CLIENT -> SERVER                    STATE  HISTORY  PKTS >/<  BYTES >/<  DURATION  ANALYSIS
//! 1   host-lo  tcp    127.0.0.1:40001 -> 127.0.0.1:49673  SF     ShADadFf 6/4       64/64      0.014835  -
//! ```
//!
//! `PKTS` and `BYTES` are client-to-server / server-to-client (bytes: payload). `ANALYSIS`
//! lists what is not zero, each as `name:c2s/s2c`: Wireshark's analysis flags (`retx`,
//! `fast-retx`, `spurious-retx`, `ooo`, `dup-ack`, `zero-win`, `zwp`, `zwp-ack`, `win-full`,
//! `win-update`, `keep-alive`, `keep-alive-ack`, `lost` for "previous segment not captured",
//! `ack-unseen`), then reassembly: `gaps` (with their bytes), `overlaps`, `conflicts` (bytes
//! that differed between copies; the first copy won), `cut` (memory cap skips), and
//! `end:REASON` unless the flow lasted until the end of input. `-` when there is nothing.
//! Formatting is pure: rows are built into a `String`.

use crate::flow::{EndReason, FlowRecord};
use std::fmt::Write;

const HEADER: [&str; 10] =
    ["ID", "POINT", "PROTO", "CLIENT -> SERVER", "STATE", "HISTORY", "PKTS >/<", "BYTES >/<", "DURATION", "ANALYSIS"];

/// The analysis column of one record.
pub fn analysis_text(r: &FlowRecord) -> String {
    let mut s = String::new();
    let item = |s: &mut String, name: &str, pair: [u64; 2]| {
        if pair != [0, 0] {
            if !s.is_empty() {
                s.push(' ');
            }
            let _ = write!(s, "{name}:{}/{}", pair[0], pair[1]);
        }
    };
    if let Some(tcp) = &r.tcp {
        for (name, pair) in tcp.analysis.entries() {
            item(&mut s, name, [u64::from(pair[0]), u64::from(pair[1])]);
        }
        let [a, b] = &tcp.stream;
        item(&mut s, "gaps", [a.gaps, b.gaps]);
        if a.gap_bytes + b.gap_bytes > 0 {
            let _ = write!(s, "({}/{}B)", a.gap_bytes, b.gap_bytes);
        }
        item(&mut s, "overlaps", [a.overlaps, b.overlaps]);
        item(&mut s, "conflicts", [a.conflicting_bytes, b.conflicting_bytes]);
        item(&mut s, "cut", [a.cap_skips + a.budget_skips, b.cap_skips + b.budget_skips]);
    }
    if r.end != EndReason::Eof {
        if !s.is_empty() {
            s.push(' ');
        }
        let _ = write!(s, "end:{}", r.end.name());
    }
    if s.is_empty() {
        s.push('-');
    }
    s
}

fn row(r: &FlowRecord) -> [String; 10] {
    let duration = r.last.0.saturating_sub(r.first.0) as f64 / 1e9;
    [
        r.info.id.to_string(),
        r.info.point.to_string(),
        r.info.proto.name().to_string(),
        format!("{} -> {}", r.info.client, r.info.server),
        r.conn_state.name().to_string(),
        if r.history.is_empty() { "-".to_string() } else { r.history.clone() },
        format!("{}/{}", r.packets[0], r.packets[1]),
        format!("{}/{}", r.bytes[0], r.bytes[1]),
        format!("{duration:.6}"),
        analysis_text(r),
    ]
}

/// Appends the rows of `records` (and the header first if `header`) to `out`, columns padded
/// to the widest cell of this batch.
pub fn write_rows(out: &mut String, records: &[FlowRecord], header: bool) {
    let rows: Vec<[String; 10]> = records.iter().map(row).collect();
    let mut width = [0usize; 10];
    for (i, h) in HEADER.iter().enumerate() {
        width[i] = h.len();
    }
    for r in &rows {
        for (i, cell) in r.iter().enumerate() {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        for (i, cell) in cells.enumerate() {
            if i + 1 == HEADER.len() {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<w$}  ", w = width[i]);
            }
        }
        out.push('\n');
    };
    if header {
        line(&mut HEADER.iter().copied());
    }
    for r in &rows {
        line(&mut r.iter().map(String::as_str));
    }
}
