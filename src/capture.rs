//! Capture points and the frames they produce.
//!
//! A *capture point* is one interface in one network namespace, or one interface of one input
//! file (DESIGN.md, "capture point label"). Every frame carries the index of its point in the
//! [`Points`] registry, so the rest of the pipeline never needs to know where bytes came from.
//!
//! Offline input: classic pcap (micro/nano, both byte orders) and pcapng (several sections and
//! interfaces) read by [`OfflineReader`]; several readers are merged by timestamp in
//! [`Merger`]. Live capture arrives in a later issue behind the same [`Frame`] type.

use std::fmt;

/// A timestamp with nanosecond resolution (seconds may be negative or beyond 2038/2106).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub sec: i64,
    /// 0..1_000_000_000
    pub nsec: u32,
}

/// Which way a frame crossed its interface, when the source knows (pcapng EPB flags,
/// Linux cooked headers, live capture).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Direction {
    #[default]
    Unknown,
    In,
    Out,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Unknown => "",
            Direction::In => "In",
            Direction::Out => "Out",
        })
    }
}

/// One captured frame, owned, as it travels from a capture thread or reader to the pipeline.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Index into [`Points`].
    pub point: usize,
    pub ts: Timestamp,
    /// LINKTYPE_* value of the point (copied here so printers need no lookup).
    pub linktype: u32,
    /// Length on the wire; `data.len()` is the captured length.
    pub origlen: u32,
    pub data: Vec<u8>,
    pub direction: Direction,
}

impl Frame {
    pub fn caplen(&self) -> u32 {
        self.data.len() as u32
    }
}

/// A capture point: where frames were seen.
#[derive(Clone, Debug)]
pub struct Point {
    /// Label per DESIGN.md: `IFACE`, `NETNS/IFACE`, `pid:PID/IFACE`, or for files
    /// `LABEL` from `-r LABEL=FILE`, else the pcapng interface name, else the file stem.
    pub label: String,
    pub linktype: u32,
    pub snaplen: u32,
    /// True when timestamps of this point's source have nanosecond resolution.
    pub nano: bool,
}

/// Registry of every capture point seen so far; frames refer to points by index.
#[derive(Clone, Debug, Default)]
pub struct Points {
    pub points: Vec<Point>,
}

impl Points {
    pub fn add(&mut self, p: Point) -> usize {
        self.points.push(p);
        self.points.len() - 1
    }
    pub fn get(&self, i: usize) -> Option<&Point> {
        self.points.get(i)
    }
    pub fn len(&self) -> usize {
        self.points.len()
    }
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// Errors reading capture input. Messages follow libpcap's wording (tcpdump prints them
/// after `flowtrail: `), and always name the file.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {msg}")]
    Format { path: String, msg: String },
}

/// Reads one capture file (classic pcap or pcapng) frame by frame.
///
/// TEMPORARY minimal implementation (classic pcap only, whole file in memory); the capture
/// work replaces it with streaming pcap/pcapng readers with libpcap-style errors.
pub struct OfflineReader {
    path: String,
    data: Vec<u8>,
    off: usize,
    swapped: bool,
    nano: bool,
    point: usize,
    linktype: u32,
}

impl OfflineReader {
    /// Opens `spec` (`[LABEL=]FILE`) and registers its capture point(s) in `points`.
    pub fn open(spec: &str, points: &mut Points) -> Result<OfflineReader, CaptureError> {
        let (label, path) = match spec.split_once('=') {
            Some((l, p)) if !l.is_empty() && !l.contains('/') => (Some(l.to_string()), p.to_string()),
            _ => (None, spec.to_string()),
        };
        let data = std::fs::read(&path).map_err(|e| CaptureError::Io { path: path.clone(), source: e })?;
        let fmt_err = |m: &str| CaptureError::Format { path: path.clone(), msg: m.to_string() };
        if data.len() < 24 {
            return Err(fmt_err("truncated dump file"));
        }
        let magic = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
        let (swapped, nano) = match magic {
            0xa1b2c3d4 => (false, false),
            0xa1b23c4d => (false, true),
            0xd4c3b2a1 => (true, false),
            0x4d3cb2a1 => (true, true),
            _ => return Err(fmt_err("unknown file format")),
        };
        let rd = |o: usize| {
            let b = [data[o], data[o + 1], data[o + 2], data[o + 3]];
            if swapped { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
        };
        let snaplen = rd(16);
        let linktype = rd(20) & 0x03ff_ffff;
        let stem = std::path::Path::new(&path)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.clone());
        let point = points.add(Point { label: label.unwrap_or(stem), linktype, snaplen, nano });
        Ok(OfflineReader { path, data, off: 24, swapped, nano, point, linktype })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Next frame, or `None` at the end of input.
    pub fn next_frame(&mut self, _points: &mut Points) -> Option<Result<Frame, CaptureError>> {
        if self.off >= self.data.len() {
            return None;
        }
        let d = &self.data;
        if d.len() - self.off < 16 {
            self.off = d.len();
            return Some(Err(CaptureError::Format { path: self.path.clone(), msg: "truncated dump file".into() }));
        }
        let rd = |o: usize| {
            let b = [d[o], d[o + 1], d[o + 2], d[o + 3]];
            if self.swapped { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
        };
        let o = self.off;
        let (sec, frac, caplen, origlen) = (rd(o), rd(o + 4), rd(o + 8) as usize, rd(o + 12));
        if d.len() - o - 16 < caplen {
            self.off = d.len();
            return Some(Err(CaptureError::Format { path: self.path.clone(), msg: "truncated dump file".into() }));
        }
        let data = d[o + 16..o + 16 + caplen].to_vec();
        self.off = o + 16 + caplen;
        let nsec = if self.nano { frac } else { frac.saturating_mul(1000) };
        Some(Ok(Frame {
            point: self.point,
            ts: Timestamp { sec: i64::from(sec), nsec },
            linktype: self.linktype,
            origlen,
            data,
            direction: Direction::Unknown,
        }))
    }
}
