//! Fuzz the flow table (decode -> flows -> reassembly) with arbitrary frames: raw bytes, and
//! TCP/UDP/ICMP frames built from arbitrary fields (so sequence numbers land near each other
//! and the interesting paths are reached), at a few capture points, with tiny caps so that
//! eviction, idle expiry, port reuse and every memory cap are exercised.
//!
//! Asserts: no panic; per flow and direction, stream Data/Gap events tile the stream from
//! offset 0 and nothing follows Closed; every flow ends exactly once, with a unique id, and
//! no live flow is left after `finish`; live flows never exceed the cap; every byte of
//! reassembly and side-table memory is returned at the end.
#![no_main]

use arbitrary::Arbitrary;
use etherparse::PacketBuilder;
use flowtrail::capture::{Frame, Point, Points, Timestamp};
use flowtrail::flow::{FlowConfig, FlowInfo, FlowObserver, FlowRecord, FlowTable, Nanos};
use flowtrail::join::ObservationFeatures;
use flowtrail::reassembly::{Config, Direction, Event};
use libfuzzer_sys::fuzz_target;
use std::collections::{HashMap, HashSet};

#[derive(Arbitrary, Debug)]
struct Input {
    max_flows: u8,
    stream_buffer: u16,
    reassembly_memory: u16,
    aux_memory: u16,
    frames: Vec<FrameSpec>,
}

#[derive(Arbitrary, Debug)]
struct FrameSpec {
    /// Milliseconds after the previous frame (large values expire flows).
    delay_ms: u16,
    point: u8,
    kind: Kind,
}

#[derive(Arbitrary, Debug)]
enum Kind {
    Raw(Vec<u8>),
    Tcp { host: u8, reverse: bool, seq: i16, ack: Option<i16>, flags: u8, window: u16, payload: Vec<u8>, cut: u8 },
    Udp { host: u8, reverse: bool, payload: Vec<u8> },
    Icmp { host: u8, kind: u8, code: u8 },
}

/// Checks the observer contract.
#[derive(Default)]
struct Checker {
    next: HashMap<(u64, usize), u64>,
    closed: HashSet<(u64, usize)>,
    ended: HashSet<u64>,
}

impl FlowObserver for Checker {
    fn wants_payload(&mut self, _flow: &FlowInfo) -> bool {
        true
    }

    fn stream_event(&mut self, flow: &FlowInfo, direction: Direction, event: &Event<'_>) {
        assert!(!self.ended.contains(&flow.id), "event after the flow ended");
        let key = (flow.id, usize::from(direction == Direction::ServerToClient));
        assert!(!self.closed.contains(&key), "event after Closed");
        let next = self.next.entry(key).or_insert(0);
        match event {
            Event::Data { offset, bytes } => {
                assert_eq!(*offset, *next);
                *next += bytes.len() as u64;
            }
            Event::Gap { offset, len } => {
                assert_eq!(*offset, *next);
                *next += len;
            }
            Event::Overlap { .. } => {}
            Event::Closed { .. } => {
                self.closed.insert(key);
            }
        }
    }

    fn flow_ended(&mut self, record: FlowRecord, _features: Option<&ObservationFeatures>) {
        assert!(self.ended.insert(record.info.id), "flow {} ended twice", record.info.id);
        if let Some(tcp) = &record.tcp {
            for d in 0..2 {
                let c = &tcp.stream[d];
                // Delivered and gap bytes are exactly what the observer saw.
                let seen = self.next.get(&(record.info.id, d)).copied().unwrap_or(0);
                assert_eq!(c.delivered_bytes + c.gap_bytes, seen);
            }
        }
    }
}

fn frame(spec: &FrameSpec, t_ms: i64) -> Frame {
    let mut data = Vec::new();
    let hosts = |h: u8| ([10, 0, 0, 1 + h % 3], [10, 0, 1, 1], 40000 + u16::from(h % 2), 80u16);
    match &spec.kind {
        Kind::Raw(bytes) => data.extend_from_slice(bytes),
        Kind::Tcp { host, reverse, seq, ack, flags, window, payload, cut } => {
            let (a, b, pa, pb) = hosts(*host);
            let (src, dst, sp, dp) = if *reverse { (b, a, pb, pa) } else { (a, b, pa, pb) };
            let base: u32 = if *reverse { 900_000 } else { 1000 };
            let mut builder = PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(src, dst, 64).tcp(
                sp,
                dp,
                base.wrapping_add(*seq as i32 as u32),
                *window,
            );
            if flags & 0x02 != 0 {
                builder = builder.syn();
            }
            if flags & 0x01 != 0 {
                builder = builder.fin();
            }
            if flags & 0x04 != 0 {
                builder = builder.rst();
            }
            if let Some(a) = ack {
                let other: u32 = if *reverse { 1000 } else { 900_000 };
                builder = builder.ack(other.wrapping_add(*a as i32 as u32));
            }
            let _ = builder.write(&mut data, payload);
            // Sometimes the capture cut the frame (snap length).
            if *cut > 200 {
                let keep = data.len().saturating_sub(usize::from(*cut - 200));
                data.truncate(keep.max(14));
            }
        }
        Kind::Udp { host, reverse, payload } => {
            let (a, b, pa, _) = hosts(*host);
            let (src, dst, sp, dp) = if *reverse { (b, a, 53, pa) } else { (a, b, pa, 53) };
            let _ = PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(src, dst, 64).udp(sp, dp).write(&mut data, payload);
        }
        Kind::Icmp { host, kind, code } => {
            let (a, b, _, _) = hosts(*host);
            let _ = PacketBuilder::ethernet2([2; 6], [4; 6])
                .ipv4(a, b, 64)
                .icmpv4_raw(*kind, *code, [0; 4])
                .write(&mut data, &[]);
        }
    }
    Frame {
        point: usize::from(spec.point % 3),
        ts: Timestamp { sec: t_ms.div_euclid(1000), nsec: (t_ms.rem_euclid(1000) * 1_000_000) as u64 },
        linktype: 1,
        origlen: data.len() as u32,
        data,
        direction: Default::default(),
    }
}

fuzz_target!(|input: Input| {
    let config = FlowConfig {
        max_flows: usize::from(input.max_flows % 16) + 1,
        tcp_timeout: Nanos::from_secs(60),
        reassembly: Config { max_buffered: usize::from(input.stream_buffer), ..Config::default() },
        reassembly_memory: usize::from(input.reassembly_memory),
        aux_memory: usize::from(input.aux_memory),
        ..FlowConfig::default()
    };
    let max_flows = config.max_flows;
    let mut table = FlowTable::new(config);
    let mut points = Points::default();
    for label in ["a", "b", "c"] {
        points.add(Point { label: label.into(), linktype: 1, snaplen: 262144, nano: false });
    }
    let mut checker = Checker::default();
    let mut t = 1_700_000_000_000i64;
    for spec in &input.frames {
        t += i64::from(spec.delay_ms) * 37;
        table.frame(&frame(spec, t), &points, &mut checker);
        assert!(table.len() <= max_flows);
    }
    table.finish(&mut checker);
    assert!(table.is_empty());
    let stats = table.stats();
    assert_eq!(stats.flows_created, checker.ended.len() as u64);
    assert_eq!(stats.frames, input.frames.len() as u64);
    assert_eq!(table.memory_in_use(), (0, 0));
    assert!(stats.reassembly_memory_peak <= stats.reassembly_memory_limit);
    assert!(stats.aux_memory_peak <= stats.aux_memory_limit);
});
