//! `--flows=json`: one JSON object per flow, one line each, in DESIGN.md's shape:
//!
//! ```text
//! {"id":N,"proto":"tcp","legs":[{"observations":[{"point":LABEL,"src":"IP:PORT",
//!  "dst":"IP:PORT","packets":[c2s,s2c],"bytes":[c2s,s2c],"first":UNIX_S,"last":UNIX_S,
//!  ...added fields...}],"join":{"kind":"same-tuple","evidence":[]},"process":null}],"via":[]}
//! ```
//!
//! One leg with one observation per flow (joins across points come later). `src` is the
//! client, `dst` the server. Added observation fields (never renamed): `duration`,
//! `conn_state`, `history`, `end` (why the observation ended: `eof`, `idle`, `evicted`,
//! `reused`), and for TCP `tcp_state` (each endpoint's final state as Zeek tracks it:
//! `inactive`, `syn_sent`, `syn_ack_sent`, `partial`, `established`, `closed`, `reset`),
//! `isn` (`[client, server]`, null if no SYN seen), `stream`
//! (reassembly per direction: `delivered` bytes, `gaps` as `[[offset, len], ...]` in stream
//! offsets, `gaps_unlisted`, `gap_bytes`, overlaps and the other reassembly counters),
//! `analysis` (Wireshark's TCP analysis counters per direction) and `rtt` (seconds; null
//! when not measured). ICMP flows use Zeek's ports: `src` carries the ICMP type (of the
//! request, for request/reply pairs), `dst` the code.

use crate::flow::{AnalysisCounters, ConnState, EndReason, Endpoint, EndpointState, FlowRecord, Proto, RttStats};
use serde::Serialize;

#[derive(Serialize)]
struct PathJson<'a> {
    id: u64,
    proto: Proto,
    legs: [LegJson<'a>; 1],
    via: [u8; 0],
}

#[derive(Serialize)]
struct LegJson<'a> {
    observations: [ObservationJson<'a>; 1],
    join: JoinJson,
    process: Option<()>,
}

#[derive(Serialize)]
struct JoinJson {
    kind: &'static str,
    evidence: [u8; 0],
}

#[derive(Serialize)]
struct ObservationJson<'a> {
    point: &'a str,
    src: Endpoint,
    dst: Endpoint,
    packets: [u64; 2],
    bytes: [u64; 2],
    first: f64,
    last: f64,
    #[serde(flatten)]
    details: Details<'a>,
}

/// The fields an observation's JSON adds to DESIGN.md's (see the module docs), from its
/// record: the same in the joined output (`--flows=json`) and without joining (`--no-join`).
#[derive(Serialize)]
pub struct Details<'a> {
    duration: f64,
    conn_state: ConnState,
    history: &'a str,
    end: EndReason,
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_state: Option<[EndpointState; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    isn: Option<[Option<u32>; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<StreamJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    analysis: Option<&'a AnalysisCounters>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtt: Option<RttJson>,
}

#[derive(Serialize)]
struct StreamJson<'a> {
    delivered: [u64; 2],
    gaps: [&'a [(u64, u64)]; 2],
    gaps_unlisted: [u32; 2],
    gap_bytes: [u64; 2],
    overlaps: [u64; 2],
    conflicting_overlaps: [u64; 2],
    conflicting_bytes: [u64; 2],
    retransmitted_bytes: [u64; 2],
    out_of_order_bytes: [u64; 2],
    keep_alives: [u64; 2],
    cap_skips: [u64; 2],
    budget_skips: [u64; 2],
    before_start_bytes: [u64; 2],
    after_close_bytes: [u64; 2],
    out_of_window_bytes: [u64; 2],
    peak_buffered: [usize; 2],
}

#[derive(Serialize)]
struct RttJson {
    handshake: Option<f64>,
    syn_synack: Option<f64>,
    synack_ack: Option<f64>,
    ack_min: [Option<f64>; 2],
    ack_avg: [Option<f64>; 2],
    ack_max: [Option<f64>; 2],
    ack_samples: [u32; 2],
}

fn secs(nanos: i64) -> f64 {
    nanos as f64 / 1e9
}

fn rtt_pair(stats: &[RttStats; 2], f: impl Fn(&RttStats) -> Option<i64>) -> [Option<f64>; 2] {
    [f(&stats[0]).map(secs), f(&stats[1]).map(secs)]
}

/// The added fields of `record`'s observation.
pub fn details(record: &FlowRecord) -> Details<'_> {
    let tcp = record.tcp.as_ref();
    let pair = |f: fn(&crate::reassembly::Counters) -> u64| -> [u64; 2] {
        tcp.map_or([0; 2], |t| [f(&t.stream[0]), f(&t.stream[1])])
    };
    let stream = tcp.map(|t| StreamJson {
        delivered: pair(|c| c.delivered_bytes),
        gaps: [&t.gaps[0].listed, &t.gaps[1].listed],
        gaps_unlisted: [t.gaps[0].unlisted, t.gaps[1].unlisted],
        gap_bytes: pair(|c| c.gap_bytes),
        overlaps: pair(|c| c.overlaps),
        conflicting_overlaps: pair(|c| c.conflicting_overlaps),
        conflicting_bytes: pair(|c| c.conflicting_bytes),
        retransmitted_bytes: pair(|c| c.retransmitted_bytes),
        out_of_order_bytes: pair(|c| c.out_of_order_bytes),
        keep_alives: pair(|c| c.keep_alives),
        cap_skips: pair(|c| c.cap_skips),
        budget_skips: pair(|c| c.budget_skips),
        before_start_bytes: pair(|c| c.before_start_bytes),
        after_close_bytes: pair(|c| c.after_close_bytes),
        out_of_window_bytes: pair(|c| c.out_of_window_bytes),
        peak_buffered: [t.stream[0].peak_buffered, t.stream[1].peak_buffered],
    });
    let rtt = tcp.map(|t| RttJson {
        handshake: t.rtt.handshake.map(secs),
        syn_synack: t.rtt.syn_synack.map(secs),
        synack_ack: t.rtt.synack_ack.map(secs),
        ack_min: rtt_pair(&t.rtt.ack, |s| (s.samples > 0).then_some(s.min)),
        ack_avg: rtt_pair(&t.rtt.ack, RttStats::avg),
        ack_max: rtt_pair(&t.rtt.ack, |s| (s.samples > 0).then_some(s.max)),
        ack_samples: [t.rtt.ack[0].samples, t.rtt.ack[1].samples],
    });
    Details {
        duration: secs(record.last.0.saturating_sub(record.first.0)),
        conn_state: record.conn_state,
        history: &record.history,
        end: record.end,
        tcp_state: tcp.map(|t| t.state),
        isn: tcp.map(|t| t.isn),
        stream,
        analysis: tcp.map(|t| &t.analysis),
        rtt,
    }
}

/// Appends `record` as one JSON line (with the newline) to `out`, as a path of one leg of
/// one observation (`--no-join`). (Serializing into memory and writing whole buffers is
/// several times faster than serde_json's many small writes to a `dyn Write`.)
pub fn write_record(out: &mut Vec<u8>, record: &FlowRecord) -> std::io::Result<()> {
    let info = &record.info;
    let path = PathJson {
        id: info.id,
        proto: info.proto,
        legs: [LegJson {
            observations: [ObservationJson {
                point: &info.point,
                src: info.client,
                dst: info.server,
                packets: record.packets,
                bytes: record.bytes,
                first: record.first.as_secs_f64(),
                last: record.last.as_secs_f64(),
                details: details(record),
            }],
            join: JoinJson { kind: "same-tuple", evidence: [] },
            process: None,
        }],
        via: [],
    };
    crate::json::line(out, &path)
}
