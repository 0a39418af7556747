//! Capture points and the frames they produce.
//!
//! A *capture point* is one interface in one network namespace, or one interface of one input
//! file (DESIGN.md, "capture point label"). Every frame carries the index of its point in the
//! [`Points`] registry, so the rest of the pipeline never needs to know where bytes came from.
//!
//! ## Sources
//!
//! Anything that yields frames implements [`FrameSource`]: the offline readers here
//! ([`OfflineReader`]: classic pcap in [`pcap`], pcapng in [`pcapng`]) and, in a later issue,
//! live capture threads feeding a bounded channel. [`merge::Merger`] merges any set of sources
//! by timestamp.
//!
//! ## Offline input contract
//!
//! * Streaming: a reader holds one buffered file handle and at most one block in memory.
//!   No length read from a file is trusted for an allocation: packet bodies are read
//!   incrementally, so memory grows only with bytes that really exist, and every length is
//!   capped first by libpcap's own limits (max snaplen per link type, 262144 for most;
//!   16 MiB pcapng blocks).
//! * Errors carry libpcap's wording (so tcpdump users recognise them), the path, and the byte
//!   offset of the record or block at fault. A reader that failed stays failed: it returns
//!   `Ok(None)` afterwards.
//! * Timestamps are converted the way libpcap converts them (classic pcap seconds are signed
//!   32-bit, pcapng seconds are `ts / if_tsresol + if_tsoffset` in unsigned 64-bit) and carried
//!   with nanosecond resolution; printing at microsecond resolution then truncates exactly as
//!   libpcap's scaling does.
//! * Link types are canonical LINKTYPE_ values (a file that says DLT_RAW 12 yields
//!   LINKTYPE_RAW 101, as libpcap's `linktype_to_dlt`/`dlt_to_linktype` round trip does).
//!
//! ## Labels
//!
//! Label of a file's point: `LABEL` from `-r LABEL=FILE`, else the pcapng interface name
//! (`if_name`), else the file stem (`stdin` for `-`). When a pcapng file declares several
//! interfaces, each is its own point labelled `LABEL/IFNAME` (with `LABEL=`), else `IFNAME`,
//! else `STEM/N` (N = the interface's index in the file). A file "has several interfaces" when
//! its second Interface Description Block arrives before its first packet; an IDB that appears
//! after the first packet (rare) becomes a new point labelled as part of a multi-interface file,
//! while the earlier points keep their labels (labels never change once a frame was seen).

pub mod linktype;
pub mod merge;
pub mod pcap;
pub mod pcapng;

use std::fmt;
use std::io::{self, Read};

pub use merge::Merger;

/// A timestamp with nanosecond resolution (seconds may be negative or beyond 2038/2106).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub sec: i64,
    /// 0..1_000_000_000 for every well-formed source. A corrupt classic pcap record can carry a
    /// fraction of a second or more (up to 2^32-1 µs); libpcap passes it through and tcpdump
    /// prints it, so the readers keep it unchanged.
    pub nsec: u64,
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
///
/// Besides the public [`Point`]s it keeps, per point, the upper link-type bits of a classic
/// pcap header (libpcap's `linktype_ext`, e.g. the FCS length) so `-w` can write them back.
#[derive(Clone, Debug, Default)]
pub struct Points {
    pub points: Vec<Point>,
    linktype_ext: Vec<u32>,
}

impl Points {
    pub fn add(&mut self, p: Point) -> usize {
        self.add_with_ext(p, 0)
    }
    /// Adds a point whose classic pcap header had `ext` in its upper 6 link-type bits.
    pub fn add_with_ext(&mut self, p: Point, ext: u32) -> usize {
        let i = self.points.len();
        self.points.push(p);
        self.linktype_ext.resize(i, 0);
        self.linktype_ext.push(ext);
        i
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
    /// libpcap's `linktype_ext` of point `i` (0 when none).
    pub fn linktype_ext(&self, i: usize) -> u32 {
        self.linktype_ext.get(i).copied().unwrap_or(0)
    }
    fn relabel(&mut self, i: usize, label: String) {
        if let Some(p) = self.points.get_mut(i) {
            p.label = label;
        }
    }
}

/// Errors reading capture input. Messages follow libpcap's wording (tcpdump prints them
/// after `tcpdump: `), always name the file and, for faults inside a file, the byte offset of
/// the record or block at fault.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened (missing, permission denied, ...).
    #[error("{path}: {}", os_message(source))]
    Open { path: String, source: io::Error },
    /// The operating system failed a read.
    #[error("{path}: error reading dump file: {}", os_message(source))]
    Read { path: String, offset: u64, source: io::Error },
    /// The file's contents are not a capture libpcap would accept.
    #[error("{path}: {msg}{}", at(*offset))]
    Format { path: String, offset: Option<u64>, msg: String },
}

impl CaptureError {
    /// libpcap's message alone, without the path and offset (what tcpdump prints).
    pub fn libpcap_message(&self) -> String {
        match self {
            CaptureError::Open { path, source } => format!("{path}: {}", os_message(source)),
            CaptureError::Read { source, .. } => format!("error reading dump file: {}", os_message(source)),
            CaptureError::Format { msg, .. } => msg.clone(),
        }
    }
}

fn at(offset: Option<u64>) -> String {
    match offset {
        Some(o) => format!(" (at byte offset {o})"),
        None => String::new(),
    }
}

/// An I/O error as `strerror` prints it (without Rust's ` (os error N)` suffix).
pub fn os_message(e: &io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Anything that produces frames: an offline reader, later a live capture channel.
///
/// `spare` is an empty buffer whose capacity the source may reuse for the frame's bytes
/// (the pipeline recycles printed frames' buffers, so steady-state reading allocates nothing).
/// After the source returned `Ok(None)` or an error it is finished.
pub trait FrameSource {
    fn next_frame(&mut self, points: &mut Points, spare: Vec<u8>) -> Result<Option<Frame>, CaptureError>;
}

/// What `-r [LABEL=]FILE` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputSpec {
    pub label: Option<String>,
    pub path: String,
}

impl InputSpec {
    /// Parses `[LABEL=]FILE`. A `LABEL` must be non-empty and contain no `/`; otherwise the
    /// whole argument is the path (so `./a=b.pcap` still names a file).
    pub fn parse(spec: &str) -> InputSpec {
        match spec.split_once('=') {
            Some((l, p)) if !l.is_empty() && !l.contains('/') && !p.is_empty() => {
                InputSpec { label: Some(l.to_string()), path: p.to_string() }
            }
            _ => InputSpec { label: None, path: spec.to_string() },
        }
    }

    /// The file stem used as a fallback label (`stdin` for `-`).
    pub fn stem(&self) -> String {
        if self.path == "-" {
            return "stdin".to_string();
        }
        std::path::Path::new(&self.path)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| self.path.clone())
    }
}

/// Size of the read buffer of an offline reader.
const READ_BUFFER: usize = 1 << 18;

/// A buffered input with a running byte offset (for error messages).
pub(crate) struct Input {
    pub path: String,
    inner: io::BufReader<Box<dyn Read + Send>>,
    /// Bytes consumed so far.
    pub offset: u64,
}

impl Input {
    fn open(path: &str) -> Result<Input, CaptureError> {
        let inner: Box<dyn Read + Send> = if path == "-" {
            Box::new(io::stdin())
        } else {
            let f = std::fs::File::open(path)
                .map_err(|e| CaptureError::Open { path: path.to_string(), source: e })?;
            Box::new(f)
        };
        Ok(Input::from_reader(path, inner))
    }

    pub(crate) fn from_reader(path: &str, r: Box<dyn Read + Send>) -> Input {
        Input { path: path.to_string(), inner: io::BufReader::with_capacity(READ_BUFFER, r), offset: 0 }
    }

    /// Reads until `buf` is full or the input ends; returns how many bytes were read
    /// (libpcap's `fread` semantics, needed for its "only got N" messages).
    pub fn read_full(&mut self, buf: &mut [u8]) -> Result<usize, CaptureError> {
        let mut n = 0;
        while n < buf.len() {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.read_error(e)),
            }
        }
        self.offset += n as u64;
        Ok(n)
    }

    /// Appends up to `len` bytes to `out`, growing it only as bytes arrive (so a lying length
    /// field cannot make us allocate memory the file does not back). Returns bytes read.
    pub fn read_into(&mut self, out: &mut Vec<u8>, len: usize) -> Result<usize, CaptureError> {
        let start = out.len();
        // Fast path: lengths within a normal packet size are allocated up front.
        if len <= 1 << 18 {
            out.resize(start + len, 0);
            let n = self.read_full(&mut out[start..])?;
            out.truncate(start + n);
            return Ok(n);
        }
        let mut done = 0usize;
        while done < len {
            let chunk = (len - done).min(1 << 18);
            let at = out.len();
            out.resize(at + chunk, 0);
            let n = self.read_full(&mut out[at..])?;
            out.truncate(at + n);
            done += n;
            if n < chunk {
                break;
            }
        }
        Ok(done)
    }

    /// Reads and drops up to `len` bytes; returns how many were there.
    pub fn skip(&mut self, len: u64) -> Result<u64, CaptureError> {
        let mut sink = [0u8; 4096];
        let mut done = 0u64;
        while done < len {
            let chunk = (len - done).min(sink.len() as u64) as usize;
            let n = self.read_full(&mut sink[..chunk])?;
            done += n as u64;
            if n < chunk {
                break;
            }
        }
        Ok(done)
    }

    fn read_error(&self, e: io::Error) -> CaptureError {
        CaptureError::Read { path: self.path.clone(), offset: self.offset, source: e }
    }

    pub fn format_error(&self, offset: u64, msg: String) -> CaptureError {
        CaptureError::Format { path: self.path.clone(), offset: Some(offset), msg }
    }
}

/// What the first lines of a file said (for tcpdump's `reading from file` line).
#[derive(Clone, Debug)]
pub struct FileInfo {
    /// The path as given (`-` for stdin).
    pub path: String,
    /// LINKTYPE_ of the file (pcapng: of its first interface).
    pub linktype: u32,
    /// Snapshot length as libpcap adjusts it.
    pub snaplen: u32,
}

impl FileInfo {
    /// tcpdump's line: `reading from file F, link-type EN10MB (Ethernet), snapshot length N`.
    pub fn reading_line(&self) -> String {
        format!(
            "reading from file {}, link-type {}, snapshot length {}",
            self.path,
            linktype::describe(self.linktype),
            self.snaplen
        )
    }
}

/// One input file, either format.
pub enum OfflineReader {
    Pcap(pcap::PcapReader),
    Pcapng(pcapng::PcapngReader),
}

impl OfflineReader {
    /// Opens `spec` (`[LABEL=]FILE`, `-` is stdin) and registers its capture point(s).
    pub fn open(spec: &str, points: &mut Points) -> Result<OfflineReader, CaptureError> {
        let spec = InputSpec::parse(spec);
        let input = Input::open(&spec.path)?;
        Self::from_input(spec, input, points)
    }

    /// Like [`OfflineReader::open`] over any byte stream (tests, pipes); `name` stands for the
    /// path in messages and labels.
    pub fn from_reader(
        spec: InputSpec,
        r: Box<dyn Read + Send>,
        points: &mut Points,
    ) -> Result<OfflineReader, CaptureError> {
        let input = Input::from_reader(&spec.path, r);
        Self::from_input(spec, input, points)
    }

    fn from_input(spec: InputSpec, mut input: Input, points: &mut Points) -> Result<OfflineReader, CaptureError> {
        let mut magic = [0u8; 4];
        let n = input.read_full(&mut magic)?;
        if n < 4 {
            return Err(CaptureError::Format {
                path: spec.path.clone(),
                offset: None,
                msg: format!("truncated dump file; tried to read 4 file header bytes, only got {n}"),
            });
        }
        let input = match pcap::PcapReader::open(&spec, magic, input, points)? {
            Ok(r) => return Ok(OfflineReader::Pcap(r)),
            Err(input) => input,
        };
        if let Some(r) = pcapng::PcapngReader::open(spec.clone(), magic, input, points)? {
            return Ok(OfflineReader::Pcapng(r));
        }
        Err(CaptureError::Format { path: spec.path, offset: None, msg: "unknown file format".into() })
    }

    pub fn info(&self) -> &FileInfo {
        match self {
            OfflineReader::Pcap(r) => r.info(),
            OfflineReader::Pcapng(r) => r.info(),
        }
    }

    pub fn path(&self) -> &str {
        &self.info().path
    }
}

impl FrameSource for OfflineReader {
    fn next_frame(&mut self, points: &mut Points, spare: Vec<u8>) -> Result<Option<Frame>, CaptureError> {
        match self {
            OfflineReader::Pcap(r) => r.next_frame(points, spare),
            OfflineReader::Pcapng(r) => r.next_frame(points, spare),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_spec_labels() {
        assert_eq!(InputSpec::parse("a=x.pcap").label.as_deref(), Some("a"));
        assert_eq!(InputSpec::parse("./a=x.pcap").label, None);
        assert_eq!(InputSpec::parse("x.pcap").stem(), "x");
        assert_eq!(InputSpec::parse("/tmp/dir/cap.pcapng").stem(), "cap");
        assert_eq!(InputSpec::parse("-").stem(), "stdin");
        assert_eq!(InputSpec::parse("=x").label, None);
    }

    fn drain(bytes: Vec<u8>) {
        let mut points = Points::default();
        let spec = InputSpec::parse("fuzz");
        if let Ok(mut r) = OfflineReader::from_reader(spec, Box::new(io::Cursor::new(bytes)), &mut points) {
            let mut n = 0;
            while let Ok(Some(f)) = r.next_frame(&mut points, Vec::new()) {
                assert!(f.point < points.len());
                assert!(f.data.len() <= linktype::max_snaplen(f.linktype) as usize);
                n += 1;
                assert!(n < 100_000);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn garbage_after_a_pcap_header_never_panics(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..400), be in proptest::bool::ANY) {
            let mut f = if be { vec![0xa1, 0xb2, 0xc3, 0xd4, 0, 2, 0, 4] } else { vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0] };
            f.extend([0u8; 8]);
            f.extend(if be { [0, 0, 0, 100, 0, 0, 0, 1] } else { [100, 0, 0, 0, 1, 0, 0, 0] });
            f.extend(tail);
            drain(f);
        }

        #[test]
        fn garbage_pcapng_blocks_never_panic(blocks in proptest::collection::vec((0u32..8, proptest::collection::vec(proptest::num::u8::ANY, 0..64)), 0..12)) {
            let mut f = vec![0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0];
            f.extend([0xff; 8]);
            f.extend([28, 0, 0, 0]);
            for (ty, mut body) in blocks {
                body.resize(body.len().div_ceil(4) * 4, 0);
                let total = 12 + body.len() as u32;
                f.extend(ty.to_le_bytes());
                f.extend(total.to_le_bytes());
                f.extend(body);
                f.extend(total.to_le_bytes());
            }
            drain(f);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            drain(bytes);
        }
    }

    #[test]
    fn os_message_strips_code() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(os_message(&e), "No such file or directory");
    }
}
