//! PHASE-1 MODEL SOURCE: builds [`Snapshot`]s straight from frames with [`crate::decode`].
//!
//! This adapter stands in for the flow table (`src/flow/`) and the joiner (`src/join/`) until
//! they are wired into the TUI; it is deliberately small and will be replaced by an adapter
//! from their model to the types of [`super::model`]. What it does:
//!
//! * a *path* is one TCP/UDP/ICMP 5-tuple (client and server decided like the flow table:
//!   the SYN's sender, else the lower well-known/non-ephemeral port is the server's, else the
//!   first sender is the client) with one *leg*; every capture point that saw the tuple is one
//!   observation of that leg (join kind `same-tuple`). No NAT joining, no forwarders.
//! * state and history are a small approximation of Zeek's (`S0 S1 SF S2 S3 REJ RSTO RSTR
//!   RSTOS0 OTH`, history letters `ShADFR` once per direction);
//! * the stream is the captured payload in sequence order per direction at one observation,
//!   with gaps where sequence numbers jump or the capture cut a payload, and overlapping
//!   retransmissions dropped (no buffering of out-of-order data: a segment that arrives early
//!   shows a gap, then its data);
//! * frames are kept in memory up to [`FrameTable::MAX_KEPT_BYTES`]; past that, packets are
//!   counted but their bytes are not kept (`caps.packet_bytes`).
//!
//! Threads: [`FrameModel::spawn`] reads the inputs on a data thread, ingests frames in
//! batches under the table's lock and publishes a snapshot every [`PUBLISH_PERIOD`] when
//! something changed; the UI thread only takes the lock for the lazy per-path queries.

use super::model::*;
use crate::capture::{Frame, FrameSource, Merger, OfflineReader, Points, Timestamp};
use crate::decode::{self, tcp_flags, Transport};
use crate::filter::Filter;
use crate::print::{Options, Printer, TsFormat};
use crate::savefile::{Format, SaveWriter};
use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the data thread publishes a snapshot (when something changed).
pub const PUBLISH_PERIOD: Duration = Duration::from_millis(200);
/// Frames read before the table's lock is taken to ingest them.
const BATCH: usize = 1024;
/// Most packets one packet list holds.
const MAX_PACKET_LINES: usize = 100_000;
/// Most payload bytes one stream view holds.
const MAX_STREAM_BYTES: usize = 8 << 20;

/// Canonical key of a tuple: protocol and the two endpoints in sorted order.
type TupleKey = (Proto, Endpoint, Endpoint);

/// TCP flags seen per direction, for the approximate state.
#[derive(Clone, Copy, Debug, Default)]
struct TcpSeen {
    syn: [bool; 2],
    synack: [bool; 2],
    fin: [bool; 2],
    rst: [bool; 2],
    data: [bool; 2],
}

/// One observation: a path's tuple at one point.
#[derive(Debug)]
struct Observation {
    point: u32,
    packets: [u64; 2],
    bytes: [u64; 2],
    first: Timestamp,
    last: Timestamp,
    seen: TcpSeen,
    history: String,
    state: Arc<str>,
    history_shared: Arc<str>,
    /// Indices into `FrameTable::frames` (kept frames only), in arrival order.
    frames: Vec<u32>,
}

/// A path (one tuple, one leg) and its observations.
#[derive(Debug)]
struct PathEntry {
    row: PathRow,
    observations: Vec<Observation>,
}

/// A kept frame and what it belongs to.
struct Kept {
    frame: Frame,
    side: Side,
}

/// Everything the data thread knows. Lives behind [`FrameModel`]'s lock.
pub struct FrameTable {
    points: Points,
    point_packets: Vec<u64>,
    paths: Vec<PathEntry>,
    by_key: HashMap<TupleKey, u32>,
    frames: Vec<Kept>,
    kept_bytes: usize,
    caps: CapCounters,
    clock: Option<Timestamp>,
    frames_seen: u64,
    print: Options,
    dirty: bool,
}

impl FrameTable {
    /// Frame bytes kept in memory before later packets are only counted.
    pub const MAX_KEPT_BYTES: usize = 512 << 20;
    /// Most paths tracked.
    pub const MAX_PATHS: usize = 1_000_000;

    /// An empty table; `print` are the options of the packet summaries (labels are turned on
    /// by the table when there is more than one point).
    pub fn new(print: Options) -> FrameTable {
        FrameTable {
            points: Points::default(),
            point_packets: Vec::new(),
            paths: Vec::new(),
            by_key: HashMap::new(),
            frames: Vec::new(),
            kept_bytes: 0,
            caps: CapCounters::default(),
            clock: None,
            frames_seen: 0,
            print,
            dirty: true,
        }
    }

    /// Takes in the current point registry (points only ever get added).
    pub fn set_points(&mut self, points: &Points) {
        if points.len() != self.points.len() {
            self.points = points.clone();
            self.point_packets.resize(points.len(), 0);
            self.dirty = true;
        }
    }

    /// Adds one frame (its point must be known, see [`FrameTable::set_points`]).
    pub fn ingest(&mut self, frame: Frame) {
        self.dirty = true;
        self.frames_seen += 1;
        if let Some(n) = self.point_packets.get_mut(frame.point) {
            *n += 1;
        }
        if self.clock.is_none_or(|c| frame.ts > c) {
            self.clock = Some(frame.ts);
        }
        let d = decode::decode(frame.linktype, &frame.data);
        let Some(ip) = d.ip else { return };
        let (proto, sport, dport, payload_len, flags) = match d.transport {
            Transport::Tcp(t) => (Proto::Tcp, t.sport, t.dport, t.payload_len, Some(t.flags)),
            Transport::Udp(u) => (Proto::Udp, u.sport, u.dport, u.payload_len, None),
            Transport::Icmp { .. } => (Proto::Icmp, 0, 0, 0, None),
            Transport::Other { proto } => (Proto::Other(proto), 0, 0, 0, None),
            Transport::None => return,
        };
        let src = Endpoint { ip: ip.src, port: sport };
        let dst = Endpoint { ip: ip.dst, port: dport };
        let key = if src <= dst { (proto, src, dst) } else { (proto, dst, src) };
        let point = frame.point as u32;
        let idx = match self.by_key.get(&key) {
            Some(&i) => i as usize,
            None => {
                if self.paths.len() >= Self::MAX_PATHS {
                    self.caps.paths += 1;
                    return;
                }
                let (client, server) = roles(src, dst, flags);
                let i = self.paths.len();
                self.by_key.insert(key, i as u32);
                self.paths.push(PathEntry {
                    row: PathRow {
                        id: i as u64 + 1,
                        proto,
                        client,
                        server,
                        legs: 1,
                        hops: Arc::from(Vec::new()),
                        packets: [0; 2],
                        bytes: [0; 2],
                        state: Arc::from(""),
                        history: Arc::from(""),
                        first: frame.ts,
                        last: frame.ts,
                        process: None,
                    },
                    observations: Vec::new(),
                });
                i
            }
        };
        let keep = self.kept_bytes + frame.data.len() <= Self::MAX_KEPT_BYTES && self.frames.len() < u32::MAX as usize;
        let frame_index = self.frames.len() as u32;
        let entry = &mut self.paths[idx];
        let side = if src == entry.row.client && dst == entry.row.server { Side::Client } else { Side::Server };
        let s = side.index();
        let oi = match entry.observations.iter().position(|o| o.point == point) {
            Some(oi) => oi,
            None => {
                entry.observations.push(Observation {
                    point,
                    packets: [0; 2],
                    bytes: [0; 2],
                    first: frame.ts,
                    last: frame.ts,
                    seen: TcpSeen::default(),
                    history: String::new(),
                    state: Arc::from(""),
                    history_shared: Arc::from(""),
                    frames: Vec::new(),
                });
                let hops: Vec<Hop> = entry
                    .observations
                    .iter()
                    .map(|o| Hop { point: o.point, client: entry.row.client, server: entry.row.server })
                    .collect();
                entry.row.hops = Arc::from(hops);
                entry.observations.len() - 1
            }
        };
        let obs = &mut entry.observations[oi];
        obs.packets[s] += 1;
        obs.bytes[s] += u64::from(payload_len);
        obs.first = obs.first.min(frame.ts);
        obs.last = obs.last.max(frame.ts);
        if let Some(f) = flags {
            let history_before = obs.history.len();
            tcp_packet(&mut obs.seen, &mut obs.history, s, f, payload_len);
            let state = tcp_state(&obs.seen);
            if *obs.state != *state {
                obs.state = Arc::from(state);
            }
            if obs.history.len() != history_before {
                obs.history_shared = Arc::from(obs.history.as_str());
            }
        } else {
            let letter = if s == 0 { 'D' } else { 'd' };
            if !obs.history.contains(letter) {
                obs.history.push(letter);
                obs.history_shared = Arc::from(obs.history.as_str());
            }
            let state = match (obs.packets[0] > 0, obs.packets[1] > 0) {
                (true, true) => "SF",
                (true, false) => "S0",
                _ => "SHR",
            };
            if *obs.state != *state {
                obs.state = Arc::from(state);
            }
        }
        if keep {
            obs.frames.push(frame_index);
        }
        // The row shows the first observation (what the client side saw).
        let first = &entry.observations[0];
        entry.row.packets = first.packets;
        entry.row.bytes = first.bytes;
        entry.row.state = first.state.clone();
        entry.row.history = first.history_shared.clone();
        entry.row.first = entry.row.first.min(frame.ts);
        entry.row.last = entry.row.last.max(frame.ts);
        if keep {
            self.kept_bytes += frame.data.len();
            self.frames.push(Kept { frame, side });
        } else {
            self.caps.packet_bytes += 1;
        }
    }

    /// The snapshot of the table as it is now.
    pub fn snapshot(&self, generation: u64) -> Snapshot {
        Snapshot {
            generation,
            clock: self.clock,
            paths: self.paths.iter().map(|p| p.row.clone()).collect(),
            points: self
                .points
                .points
                .iter()
                .zip(&self.point_packets)
                .map(|(p, &n)| PointStatus { label: Arc::from(p.label.as_str()), packets: n, dropped: None })
                .collect(),
            caps: self.caps,
            ..Snapshot::default()
        }
    }

    fn entry(&self, id: PathId) -> Option<&PathEntry> {
        let i = usize::try_from(id.checked_sub(1)?).ok()?;
        self.paths.get(i)
    }

    fn observation(&self, id: PathId, at: Option<ObservationRef>) -> Option<&Observation> {
        let e = self.entry(id)?;
        match at {
            Some(r) if r.leg == 0 => e.observations.get(r.observation),
            Some(_) => None,
            None => e.observations.first(),
        }
    }

    /// Legs and observations of one path.
    pub fn detail(&self, id: PathId) -> Option<PathDetail> {
        let e = self.entry(id)?;
        let observations = e
            .observations
            .iter()
            .map(|o| ObservationDetail {
                point: Arc::from(self.points.get(o.point as usize).map_or("?", |p| p.label.as_str())),
                client: e.row.client,
                server: e.row.server,
                packets: o.packets,
                bytes: o.bytes,
                first: o.first,
                last: o.last,
                state: o.state.clone(),
                history: o.history_shared.clone(),
            })
            .collect::<Vec<_>>();
        let join = (observations.len() > 1).then(|| JoinInfo {
            kind: "same-tuple".into(),
            evidence: vec![format!("identical tuple at {} points", observations.len())],
        });
        Some(PathDetail {
            id,
            proto: e.row.proto,
            legs: vec![LegDetail { observations, process: e.row.process.clone(), join, link: None }],
        })
    }

    /// The conversation at one observation (see the module doc for what "reassembly" means
    /// here).
    pub fn stream(&self, id: PathId, at: Option<ObservationRef>) -> StreamView {
        let Some(obs) = self.observation(id, at) else { return StreamView::default() };
        let mut view = StreamView::default();
        let mut dirs = [StreamDir::default(); 2];
        let mut total = 0usize;
        for &fi in &obs.frames {
            let Some(k) = self.frames.get(fi as usize) else { continue };
            let s = k.side.index();
            let d = decode::decode(k.frame.linktype, &k.frame.data);
            let dir = &mut dirs[s];
            let before = view.chunks.len();
            match d.transport {
                Transport::Tcp(t) => dir.tcp(&t, k.side, &mut view.chunks),
                Transport::Udp(u) if u.payload_len > 0 => dir.datagram(u.payload, u.payload_len, k.side, &mut view.chunks),
                _ => {}
            }
            for c in &view.chunks[before..] {
                if let StreamChunk::Data { bytes, .. } = c {
                    total += bytes.len();
                }
            }
            if total > MAX_STREAM_BYTES {
                view.truncated = true;
                break;
            }
        }
        view
    }

    /// Packet summaries of a path (every point) or of one observation.
    pub fn packets(&self, id: PathId, at: Option<ObservationRef>) -> PacketList {
        let Some(e) = self.entry(id) else { return PacketList::default() };
        let mut indices: Vec<u32> = match at {
            Some(_) => match self.observation(id, at) {
                Some(o) => o.frames.clone(),
                None => return PacketList::default(),
            },
            None => e.observations.iter().flat_map(|o| o.frames.iter().copied()).collect(),
        };
        // Frames are kept in arrival (merged time) order: index order is time order.
        indices.sort_unstable();
        let mut list = PacketList { lines: Vec::new(), truncated: self.caps.packet_bytes > 0 };
        if indices.len() > MAX_PACKET_LINES {
            indices.truncate(MAX_PACKET_LINES);
            list.truncated = true;
        }
        let mut opts = self.print.clone();
        opts.labels = self.points.len() > 1;
        opts.hex = 0;
        opts.hex_ascii = 0;
        opts.ascii = 0;
        opts.number = false;
        let mut printer = Printer::new(opts);
        let mut text = String::new();
        for fi in indices {
            let Some(k) = self.frames.get(fi as usize) else { continue };
            let Some(point) = self.points.get(k.frame.point) else { continue };
            text.clear();
            printer.print_frame(&k.frame, point, &mut text);
            let summary = text.lines().next().unwrap_or("").to_string();
            list.lines.push(PacketLine { packet: PacketRef(u64::from(fi)), side: k.side, summary });
        }
        list
    }

    /// `-X` dump lines of one kept frame.
    pub fn packet_dump(&self, packet: PacketRef) -> Option<Vec<String>> {
        let k = self.frames.get(usize::try_from(packet.0).ok()?)?;
        let point = self.points.get(k.frame.point)?;
        let opts = Options { hex_ascii: 1, ts_format: TsFormat::None, numeric: 2, ..Options::default() };
        let mut text = String::new();
        Printer::new(opts).print_frame(&k.frame, point, &mut text);
        Some(text.lines().skip(1).map(|l| l.trim_start_matches('\t').to_string()).collect())
    }

    /// Writes every kept frame of a path to a pcapng file (one interface per point it was
    /// seen at).
    pub fn save(&self, id: PathId, file: &std::path::Path) -> Result<Saved, String> {
        let e = self.entry(id).ok_or_else(|| format!("path {id} is gone"))?;
        let mut used: Vec<u32> = e.observations.iter().map(|o| o.point).collect();
        used.sort_unstable();
        let mut points = Points::default();
        let mut remap = HashMap::new();
        for p in &used {
            if let Some(pt) = self.points.get(*p as usize) {
                remap.insert(*p as usize, points.add(pt.clone()));
            }
        }
        let name = file.to_string_lossy().into_owned();
        let mut w = SaveWriter::create(&name, Format::Pcapng, &points, None).map_err(|e| e.to_string())?;
        let mut indices: Vec<u32> = e.observations.iter().flat_map(|o| o.frames.iter().copied()).collect();
        indices.sort_unstable();
        let mut n = 0u64;
        for fi in indices {
            let Some(k) = self.frames.get(fi as usize) else { continue };
            let Some(&p) = remap.get(&k.frame.point) else { continue };
            let mut f = k.frame.clone();
            f.point = p;
            w.write(&f, &points).map_err(|e| e.to_string())?;
            n += 1;
        }
        w.flush().map_err(|e| e.to_string())?;
        Ok(Saved { path: name, packets: n })
    }
}

/// Client and server of a new tuple, from its first packet.
fn roles(src: Endpoint, dst: Endpoint, flags: Option<u16>) -> (Endpoint, Endpoint) {
    if let Some(f) = flags {
        let syn = f & tcp_flags::SYN != 0;
        let ack = f & tcp_flags::ACK != 0;
        if syn && !ack {
            return (src, dst);
        }
        if syn && ack {
            return (dst, src);
        }
    }
    let rank = |p: u16| match p {
        0 => 3,
        1..=1023 => 0,
        1024..=32767 => 1,
        _ => 2,
    };
    if rank(src.port) < rank(dst.port) { (dst, src) } else { (src, dst) }
}

/// Records one TCP segment's flags: history letters once per direction (`S h A D F R`,
/// upper case from the client), and the flags seen.
fn tcp_packet(seen: &mut TcpSeen, history: &mut String, s: usize, flags: u16, payload_len: u32) {
    let syn = flags & tcp_flags::SYN != 0;
    let ack = flags & tcp_flags::ACK != 0;
    let letter = |history: &mut String, c: char, seen_before: bool| {
        let c = if s == 0 { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() };
        if !seen_before && history.len() < 32 {
            history.push(c);
        }
    };
    if syn && ack {
        letter(history, 'h', seen.synack[s]);
        seen.synack[s] = true;
    } else if syn {
        letter(history, 's', seen.syn[s]);
        seen.syn[s] = true;
    }
    if payload_len > 0 {
        letter(history, 'd', seen.data[s]);
        seen.data[s] = true;
    } else if ack && !syn && flags & (tcp_flags::FIN | tcp_flags::RST) == 0 {
        let a = if s == 0 { 'A' } else { 'a' };
        let had = history.contains(a);
        letter(history, 'a', had);
    }
    if flags & tcp_flags::FIN != 0 {
        letter(history, 'f', seen.fin[s]);
        seen.fin[s] = true;
    }
    if flags & tcp_flags::RST != 0 {
        letter(history, 'r', seen.rst[s]);
        seen.rst[s] = true;
    }
}

/// An approximation of Zeek's `conn_state` from the flags seen.
fn tcp_state(seen: &TcpSeen) -> &'static str {
    let established = seen.synack[1] || (seen.data[0] && seen.data[1]);
    if seen.rst[0] {
        if established { "RSTO" } else { "RSTOS0" }
    } else if seen.rst[1] {
        if seen.synack[1] { "RSTR" } else { "REJ" }
    } else if seen.fin[0] && seen.fin[1] {
        "SF"
    } else if seen.fin[0] {
        "S2"
    } else if seen.fin[1] {
        "S3"
    } else if seen.syn[0] && !seen.synack[1] {
        "S0"
    } else if established {
        "S1"
    } else {
        "OTH"
    }
}

/// In-order stream position of one direction.
#[derive(Clone, Copy, Debug, Default)]
struct StreamDir {
    /// Next expected sequence number (None before the first SYN or data).
    next: Option<u32>,
    /// Stream offset of `next`.
    offset: u64,
}

impl StreamDir {
    fn tcp(&mut self, t: &decode::Tcp<'_>, side: Side, out: &mut Vec<StreamChunk>) {
        if t.has(tcp_flags::SYN) {
            if self.next.is_none() {
                self.next = Some(t.seq.wrapping_add(1));
            }
            if t.payload_len == 0 {
                return;
            }
        }
        if t.payload_len == 0 {
            // A FIN past the expected sequence number: the bytes before it were not captured.
            if t.has(tcp_flags::FIN)
                && let Some(next) = self.next
            {
                let delta = t.seq.wrapping_sub(next) as i32;
                if delta > 0 {
                    out.push(StreamChunk::Gap { side, offset: self.offset, len: delta as u64 });
                    self.offset += delta as u64;
                    self.next = Some(t.seq);
                }
            }
            return;
        }
        let seq = if t.has(tcp_flags::SYN) { t.seq.wrapping_add(1) } else { t.seq };
        let next = *self.next.get_or_insert(seq);
        let delta = seq.wrapping_sub(next) as i32;
        let mut skip = 0u32;
        if delta > 0 {
            out.push(StreamChunk::Gap { side, offset: self.offset, len: delta as u64 });
            self.offset += delta as u64;
        } else if delta < 0 {
            skip = delta.unsigned_abs();
            if skip >= t.payload_len {
                return; // a retransmission of what we have
            }
        }
        let captured = t.payload.len().min(t.payload_len as usize);
        let from = (skip as usize).min(captured);
        if from < captured {
            out.push(StreamChunk::Data { side, offset: self.offset, bytes: t.payload[from..captured].to_vec() });
        }
        let missing = u64::from(t.payload_len - skip) - (captured - from) as u64;
        if missing > 0 {
            out.push(StreamChunk::Gap { side, offset: self.offset + (captured - from) as u64, len: missing });
        }
        let advance = t.payload_len - skip;
        self.offset += u64::from(advance);
        self.next = Some(seq.wrapping_add(t.payload_len));
    }

    fn datagram(&mut self, payload: &[u8], len: u32, side: Side, out: &mut Vec<StreamChunk>) {
        let captured = payload.len().min(len as usize);
        out.push(StreamChunk::Data { side, offset: self.offset, bytes: payload[..captured].to_vec() });
        if (captured as u64) < u64::from(len) {
            out.push(StreamChunk::Gap { side, offset: self.offset + captured as u64, len: u64::from(len) - captured as u64 });
        }
        self.offset += u64::from(len);
    }
}

/// The shared model: the table (data thread writes, UI reads lazily) and the newest snapshot.
pub struct FrameModel {
    table: Mutex<FrameTable>,
    published: Mutex<Arc<Snapshot>>,
    /// Offline progress counters, one per input.
    read: Vec<Arc<AtomicU64>>,
    total: Option<u64>,
    filter: Option<String>,
    stop: AtomicBool,
    errors: Mutex<Vec<String>>,
}

/// Counts the bytes read from an input for the progress indicator.
struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opened inputs, ready to be read on a data thread.
pub struct Inputs {
    readers: Vec<OfflineReader>,
    points: Points,
    filter: Filter,
    read: Vec<Arc<AtomicU64>>,
    total: Option<u64>,
    expr: Option<String>,
}

impl Inputs {
    /// Opens every `-r` spec (`[LABEL=]FILE`) and checks the capture filter compiles for
    /// each input's link type. Errors are the messages the text pipeline prints.
    pub fn open(specs: &[String], expr: Option<&str>) -> Result<Inputs, String> {
        let mut points = Points::default();
        let mut readers = Vec::new();
        let mut read = Vec::new();
        let mut total = Some(0u64);
        let mut filter = Filter::new(expr);
        filter.set_lenient(specs.len() > 1);
        let mut compiled = 0;
        let mut first_error = None;
        for spec in specs {
            let is = crate::capture::InputSpec::parse(spec);
            let count = Arc::new(AtomicU64::new(0));
            let r: Box<dyn Read + Send> = if is.path == "-" {
                total = None;
                Box::new(CountingReader { inner: std::io::stdin(), count: count.clone() })
            } else {
                let f = std::fs::File::open(&is.path)
                    .map_err(|e| format!("{}: {}", is.path, crate::capture::os_message(&e)))?;
                match (total, f.metadata()) {
                    (Some(t), Ok(m)) => total = Some(t + m.len()),
                    _ => total = None,
                }
                Box::new(CountingReader { inner: f, count: count.clone() })
            };
            let reader = OfflineReader::from_reader(is, r, &mut points).map_err(|e| e.to_string())?;
            match filter.prepare(reader.info().linktype) {
                Ok(()) => compiled += 1,
                Err(e) => {
                    first_error.get_or_insert(e.msg);
                }
            }
            readers.push(reader);
            read.push(count);
        }
        if let Some(e) = first_error
            && (specs.len() == 1 || compiled == 0)
        {
            return Err(e);
        }
        Ok(Inputs { readers, points, filter, read, total, expr: expr.map(str::to_string) })
    }
}

impl FrameModel {
    fn new(inputs: &Inputs, print: Options) -> FrameModel {
        let mut table = FrameTable::new(print);
        table.set_points(&inputs.points);
        FrameModel {
            table: Mutex::new(table),
            published: Mutex::new(Arc::new(Snapshot::default())),
            read: inputs.read.clone(),
            total: inputs.total,
            filter: inputs.expr.clone(),
            stop: AtomicBool::new(false),
            errors: Mutex::new(Vec::new()),
        }
    }

    /// Reads every input to the end on this thread and publishes the final snapshot (tests,
    /// benchmarks, small files).
    pub fn load(inputs: Inputs, print: Options) -> FrameModel {
        let model = FrameModel::new(&inputs, print);
        let mut generation = 0;
        let mut pump = Pump::new(inputs);
        while pump.step(&model) {}
        model.finish_errors(&mut pump);
        model.publish(&mut generation, true, None);
        model
    }

    /// Starts a data thread that reads the inputs, publishing snapshots every
    /// [`PUBLISH_PERIOD`]. The thread ends at the end of input or after [`FrameModel::stop`].
    pub fn spawn(inputs: Inputs, print: Options) -> (Arc<FrameModel>, JoinHandle<()>) {
        let model = Arc::new(FrameModel::new(&inputs, print));
        let m = model.clone();
        let handle = std::thread::Builder::new()
            .name("flowtrail-model".into())
            .spawn(move || {
                let mut generation = 0;
                let mut pump = Pump::new(inputs);
                let mut last = Instant::now();
                let mut frames_at_last = 0u64;
                m.publish(&mut generation, false, None);
                loop {
                    if m.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let more = pump.step(&m);
                    if !more {
                        break;
                    }
                    let elapsed = last.elapsed();
                    if elapsed >= PUBLISH_PERIOD {
                        let seen = m.lock().frames_seen;
                        let pps = (seen - frames_at_last) as f64 / elapsed.as_secs_f64();
                        frames_at_last = seen;
                        last = Instant::now();
                        m.publish(&mut generation, false, Some(pps));
                    }
                }
                m.finish_errors(&mut pump);
                m.publish(&mut generation, true, None);
            })
            .expect("spawning a thread");
        (model, handle)
    }

    /// Asks the data thread to stop.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn lock(&self) -> MutexGuard<'_, FrameTable> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finish_errors(&self, pump: &mut Pump) {
        let errs: Vec<String> = pump.merger.take_errors().iter().map(|e| e.to_string()).collect();
        self.errors.lock().unwrap_or_else(|p| p.into_inner()).extend(errs);
    }

    fn publish(&self, generation: &mut u64, finished: bool, pps: Option<f64>) {
        let mut t = self.lock();
        if !t.dirty && !finished {
            return;
        }
        t.dirty = false;
        *generation += 1;
        let mut s = t.snapshot(*generation);
        drop(t);
        s.finished = finished;
        s.filter = self.filter.clone();
        s.packets_per_second = pps;
        s.errors = self.errors.lock().unwrap_or_else(|p| p.into_inner()).clone();
        s.progress = Some(Progress {
            bytes_read: self.read.iter().map(|c| c.load(Ordering::Relaxed)).sum(),
            bytes_total: self.total,
        });
        *self.published.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(s);
    }
}

/// Moves frames from the inputs into the table, a batch at a time.
struct Pump {
    merger: Merger,
    points: Points,
    filter: Filter,
    batch: Vec<Frame>,
    primed: bool,
}

impl Pump {
    fn new(inputs: Inputs) -> Pump {
        let mut merger = Merger::new();
        for r in inputs.readers {
            merger.add(Box::new(r) as Box<dyn FrameSource>);
        }
        Pump { merger, points: inputs.points, filter: inputs.filter, batch: Vec::with_capacity(BATCH), primed: false }
    }

    /// Reads and ingests up to one batch; false at the end of input.
    fn step(&mut self, model: &FrameModel) -> bool {
        if !self.primed {
            self.merger.prime(&mut self.points);
            self.primed = true;
        }
        let mut more = true;
        while self.batch.len() < BATCH {
            match self.merger.next(&mut self.points) {
                Some(f) => {
                    if matches!(self.filter.matches(&f), Ok(true)) {
                        self.batch.push(f);
                    } else {
                        self.merger.recycle(f);
                    }
                }
                None => {
                    more = false;
                    break;
                }
            }
        }
        let mut t = model.lock();
        t.set_points(&self.points);
        for f in self.batch.drain(..) {
            t.ingest(f);
        }
        more
    }
}

impl ModelSource for FrameModel {
    fn snapshot(&self) -> Arc<Snapshot> {
        self.published.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    fn detail(&self, id: PathId) -> Option<PathDetail> {
        self.lock().detail(id)
    }
    fn stream(&self, id: PathId, at: Option<ObservationRef>) -> StreamView {
        self.lock().stream(id, at)
    }
    fn packets(&self, id: PathId, at: Option<ObservationRef>) -> PacketList {
        self.lock().packets(id, at)
    }
    fn packet_dump(&self, packet: PacketRef) -> Option<Vec<String>> {
        self.lock().packet_dump(packet)
    }
    fn save(&self, id: PathId, file: &std::path::Path) -> Result<Saved, String> {
        self.lock().save(id, file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str) -> Endpoint {
        let (ip, port) = s.rsplit_once(':').unwrap();
        Endpoint { ip: ip.parse().unwrap(), port: port.parse().unwrap() }
    }

    #[test]
    fn roles_follow_syn_then_ports() {
        let (a, b) = (ep("10.0.0.1:40000"), ep("10.0.0.2:8443"));
        assert_eq!(roles(a, b, Some(tcp_flags::SYN)), (a, b));
        assert_eq!(roles(b, a, Some(tcp_flags::SYN | tcp_flags::ACK)), (a, b));
        assert_eq!(roles(b, a, Some(tcp_flags::ACK)), (a, b));
        assert_eq!(roles(ep("10.0.0.2:53"), ep("10.0.0.1:5353"), None), (ep("10.0.0.1:5353"), ep("10.0.0.2:53")));
    }

    #[test]
    fn states_from_flags() {
        let mut s = TcpSeen::default();
        let mut h = String::new();
        tcp_packet(&mut s, &mut h, 0, tcp_flags::SYN, 0);
        assert_eq!(tcp_state(&s), "S0");
        tcp_packet(&mut s, &mut h, 1, tcp_flags::SYN | tcp_flags::ACK, 0);
        tcp_packet(&mut s, &mut h, 0, tcp_flags::ACK, 0);
        assert_eq!(tcp_state(&s), "S1");
        tcp_packet(&mut s, &mut h, 0, tcp_flags::ACK | tcp_flags::PSH, 10);
        tcp_packet(&mut s, &mut h, 0, tcp_flags::ACK | tcp_flags::FIN, 0);
        tcp_packet(&mut s, &mut h, 1, tcp_flags::ACK | tcp_flags::FIN, 0);
        assert_eq!(tcp_state(&s), "SF");
        assert_eq!(h, "ShADFf");
        tcp_packet(&mut s, &mut h, 0, tcp_flags::RST, 0);
        assert_eq!(tcp_state(&s), "RSTO");
    }

    #[test]
    fn stream_positions_gaps_and_retransmissions() {
        let mut d = StreamDir::default();
        let mut out = Vec::new();
        let seg = |seq, payload: &'static [u8], len| decode::Tcp {
            seq,
            flags: tcp_flags::ACK,
            payload,
            payload_len: len,
            ..decode::Tcp::default()
        };
        d.tcp(&decode::Tcp { seq: 99, flags: tcp_flags::SYN, ..decode::Tcp::default() }, Side::Client, &mut out);
        d.tcp(&seg(100, b"abcd", 4), Side::Client, &mut out);
        d.tcp(&seg(102, b"cdef", 4), Side::Client, &mut out); // overlap: "ef" is new
        d.tcp(&seg(110, b"xy", 4), Side::Client, &mut out); // a gap of 4, then cut by the capture
        d.tcp(&seg(100, b"abcd", 4), Side::Client, &mut out); // old retransmission
        let fin = decode::Tcp { seq: 120, flags: tcp_flags::FIN | tcp_flags::ACK, ..decode::Tcp::default() };
        d.tcp(&fin, Side::Client, &mut out); // 6 bytes before the FIN are missing
        d.tcp(&fin, Side::Client, &mut out); // a retransmitted FIN adds nothing
        assert_eq!(
            out,
            vec![
                StreamChunk::Data { side: Side::Client, offset: 0, bytes: b"abcd".to_vec() },
                StreamChunk::Data { side: Side::Client, offset: 4, bytes: b"ef".to_vec() },
                StreamChunk::Gap { side: Side::Client, offset: 6, len: 4 },
                StreamChunk::Data { side: Side::Client, offset: 10, bytes: b"xy".to_vec() },
                StreamChunk::Gap { side: Side::Client, offset: 12, len: 2 },
                StreamChunk::Gap { side: Side::Client, offset: 14, len: 6 },
            ]
        );
    }
}
