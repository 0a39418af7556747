//! Classic pcap files, read record by record the way libpcap 1.10's `sf-pcap.c` does.
//!
//! Accepted: magic `a1b2c3d4` (microseconds), `a1b23c4d` (nanoseconds), Kuznetzov's
//! `a1b2cd34` (24-byte record headers), each in either byte order; versions 2.0-2.4 and
//! DG/UX 543.0 (with libpcap's caplen/len swap for versions before 2.3 and its heuristic
//! for 2.3). The link-type field's upper 6 bits (FCS length etc.) are kept as the point's
//! `linktype_ext`.
//!
//! Invariants: a frame's `data.len()` never exceeds the file's adjusted snapshot length; a
//! record whose caplen exceeds libpcap's maximum for the link type is an error, one that
//! exceeds only the file's snaplen is cut to it (the rest is skipped), as libpcap does.

use super::{linktype, CaptureError, Direction, FileInfo, Frame, Input, InputSpec, Point, Points, Timestamp};

const TCPDUMP_MAGIC: u32 = 0xa1b2_c3d4;
const KUZNETZOV_MAGIC: u32 = 0xa1b2_cd34;
const NSEC_MAGIC: u32 = 0xa1b2_3c4d;

/// Length of a classic pcap file header.
pub const FILE_HEADER_LEN: usize = 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LengthsSwapped {
    No,
    Yes,
    Maybe,
}

/// Streaming reader of one classic pcap file.
pub struct PcapReader {
    input: Input,
    info: FileInfo,
    point: usize,
    linktype: u32,
    swapped: bool,
    nano: bool,
    hdrsize: usize,
    lengths_swapped: LengthsSwapped,
    snapshot: u32,
    max_caplen: u32,
    done: bool,
}

impl PcapReader {
    /// Checks the magic number; if it is a classic pcap file, reads the rest of the file header
    /// and registers the file's point. Returns the input back when the file is not pcap.
    pub(crate) fn open(
        spec: &InputSpec,
        magic: [u8; 4],
        mut input: Input,
        points: &mut Points,
    ) -> Result<Result<PcapReader, Input>, CaptureError> {
        let native = u32::from_le_bytes(magic);
        let known = |m: u32| m == TCPDUMP_MAGIC || m == KUZNETZOV_MAGIC || m == NSEC_MAGIC;
        let (magic, swapped) = if known(native) {
            (native, false)
        } else if known(native.swap_bytes()) {
            (native.swap_bytes(), true)
        } else {
            return Ok(Err(input));
        };
        let mut hdr = [0u8; FILE_HEADER_LEN - 4];
        let n = input.read_full(&mut hdr)?;
        if n < hdr.len() {
            return Err(CaptureError::Format {
                path: spec.path.clone(),
                offset: None,
                msg: format!(
                    "truncated dump file; tried to read {FILE_HEADER_LEN} file header bytes, only got {n}"
                ),
            });
        }
        let u16_at = |o: usize| {
            let v = u16::from_le_bytes([hdr[o], hdr[o + 1]]);
            if swapped { v.swap_bytes() } else { v }
        };
        let u32_at = |o: usize| {
            let v = u32::from_le_bytes([hdr[o], hdr[o + 1], hdr[o + 2], hdr[o + 3]]);
            if swapped { v.swap_bytes() } else { v }
        };
        let (major, minor) = (u16_at(0), u16_at(2));
        let (snaplen, raw_linktype) = (u32_at(12), u32_at(16));
        let fail = |msg: String| CaptureError::Format { path: spec.path.clone(), offset: None, msg };
        if major < 2 {
            return Err(fail("archaic pcap savefile format".into()));
        }
        if !((major == 2 && minor <= 4) || (major == 543 && minor == 0)) {
            return Err(fail(format!("unsupported pcap savefile version {major}.{minor}")));
        }
        let lt = linktype::canonical(raw_linktype & 0x03ff_ffff);
        let ext = raw_linktype & 0xfc00_0000;
        let mut snapshot = linktype::adjust_snapshot(lt, snaplen);
        let lengths_swapped = match (major, minor) {
            (2, m) if m < 3 => LengthsSwapped::Yes,
            (2, 3) => LengthsSwapped::Maybe,
            (543, _) => LengthsSwapped::Yes,
            _ => LengthsSwapped::No,
        };
        let hdrsize = if magic == KUZNETZOV_MAGIC {
            if lt == 1 {
                snapshot = snapshot.saturating_add(14).min(i32::MAX as u32);
            }
            24
        } else {
            16
        };
        let nano = magic == NSEC_MAGIC;
        let label = spec.label.clone().unwrap_or_else(|| spec.stem());
        let point = points.add_with_ext(Point { label, linktype: lt, snaplen: snapshot, nano }, ext);
        Ok(Ok(PcapReader {
            info: FileInfo { path: spec.path.clone(), linktype: lt, snaplen: snapshot },
            input,
            point,
            linktype: lt,
            swapped,
            nano,
            hdrsize,
            lengths_swapped,
            snapshot,
            max_caplen: linktype::max_snaplen(lt),
            done: false,
        }))
    }

    pub fn info(&self) -> &FileInfo {
        &self.info
    }

    /// Next record, or `Ok(None)` at a clean end of file.
    pub fn next_frame(&mut self, _points: &mut Points, spare: Vec<u8>) -> Result<Option<Frame>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        let r = self.read_record(spare);
        if !matches!(r, Ok(Some(_))) {
            self.done = true;
        }
        r
    }

    fn read_record(&mut self, mut data: Vec<u8>) -> Result<Option<Frame>, CaptureError> {
        let at = self.input.offset;
        let mut hdr = [0u8; 24];
        let hdr = &mut hdr[..self.hdrsize];
        let n = self.input.read_full(hdr)?;
        if n == 0 {
            return Ok(None);
        }
        if n < hdr.len() {
            return Err(self.input.format_error(
                at,
                format!("truncated dump file; tried to read {} header bytes, only got {n}", hdr.len()),
            ));
        }
        let u32_at = |o: usize| {
            let v = u32::from_le_bytes([hdr[o], hdr[o + 1], hdr[o + 2], hdr[o + 3]]);
            if self.swapped { v.swap_bytes() } else { v }
        };
        // libpcap's struct pcap_timeval has signed 32-bit fields.
        let sec = u32_at(0) as i32;
        let frac = u32_at(4) as i32;
        let (mut caplen, mut len) = (u32_at(8), u32_at(12));
        match self.lengths_swapped {
            LengthsSwapped::No => {}
            LengthsSwapped::Maybe if caplen <= len => {}
            LengthsSwapped::Maybe | LengthsSwapped::Yes => std::mem::swap(&mut caplen, &mut len),
        }
        if caplen > self.max_caplen {
            let msg = if caplen > self.snapshot {
                format!("invalid packet capture length {caplen}, bigger than snaplen of {}", self.snapshot)
            } else {
                format!("invalid packet capture length {caplen}, bigger than maximum of {}", self.max_caplen)
            };
            return Err(self.input.format_error(at, msg));
        }
        data.clear();
        if caplen > self.snapshot {
            // Read the first snapshot bytes, discard the rest (libpcap does the same).
            let got = self.input.read_into(&mut data, self.snapshot as usize)?;
            if got < self.snapshot as usize {
                return Err(self.input.format_error(
                    at,
                    format!("truncated dump file; tried to read {} captured bytes, only got {got}", self.snapshot),
                ));
            }
            let rest = u64::from(caplen - self.snapshot);
            let skipped = self.input.skip(rest)?;
            if skipped < rest {
                return Err(self.input.format_error(
                    at,
                    format!(
                        "truncated dump file; tried to read {caplen} captured bytes, only got {}",
                        got as u64 + skipped
                    ),
                ));
            }
        } else {
            let got = self.input.read_into(&mut data, caplen as usize)?;
            if got < caplen as usize {
                return Err(self.input.format_error(
                    at,
                    format!("truncated dump file; tried to read {caplen} captured bytes, only got {got}"),
                ));
            }
        }
        Ok(Some(Frame {
            point: self.point,
            ts: timestamp(sec, frac, self.nano),
            linktype: self.linktype,
            origlen: len,
            data,
            direction: Direction::Unknown,
        }))
    }
}

/// A record's time as libpcap hands it on: signed seconds, fraction in µs or ns. A fraction of
/// a second or more (corrupt files) is passed on as is, like libpcap does (tcpdump prints it
/// with `%06u`, e.g. `10.1000000`).
fn timestamp(sec: i32, frac: i32, nano: bool) -> Timestamp {
    let frac = u64::from(frac as u32);
    let nsec = if nano { frac } else { frac * 1000 };
    Timestamp { sec: i64::from(sec), nsec }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{FrameSource, OfflineReader};

    fn file(magic: u32, be: bool, snaplen: u32, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let w32 = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let w16 = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut f = Vec::new();
        f.extend(w32(magic));
        f.extend(w16(2));
        f.extend(w16(4));
        f.extend(w32(0));
        f.extend(w32(0));
        f.extend(w32(snaplen));
        f.extend(w32(1));
        for (s, frac, d) in records {
            f.extend(w32(*s));
            f.extend(w32(*frac));
            f.extend(w32(d.len() as u32));
            f.extend(w32(d.len() as u32 + 4));
            f.extend_from_slice(d);
        }
        f
    }

    fn read_all(bytes: Vec<u8>) -> (Vec<Frame>, Option<CaptureError>, Points) {
        let mut points = Points::default();
        let spec = InputSpec::parse("t.pcap");
        let mut r = match OfflineReader::from_reader(spec, Box::new(std::io::Cursor::new(bytes)), &mut points) {
            Ok(r) => r,
            Err(e) => return (vec![], Some(e), points),
        };
        let mut v = vec![];
        loop {
            match r.next_frame(&mut points, Vec::new()) {
                Ok(Some(f)) => v.push(f),
                Ok(None) => return (v, None, points),
                Err(e) => return (v, Some(e), points),
            }
        }
    }

    #[test]
    fn both_byte_orders_and_precisions() {
        for be in [false, true] {
            for (magic, nano) in [(TCPDUMP_MAGIC, false), (NSEC_MAGIC, true)] {
                let f = file(magic, be, 0, &[(5, 7, b"abc"), (6, 8, b"")]);
                let (frames, err, points) = read_all(f);
                assert!(err.is_none(), "{err:?}");
                assert_eq!(frames.len(), 2);
                assert_eq!(frames[0].ts.sec, 5);
                assert_eq!(frames[0].ts.nsec, if nano { 7 } else { 7000 });
                assert_eq!(frames[0].data, b"abc");
                assert_eq!(frames[0].origlen, 7);
                assert_eq!(points.points[0].snaplen, 262_144);
                assert_eq!(points.points[0].nano, nano);
                assert_eq!(points.points[0].label, "t");
            }
        }
    }

    #[test]
    fn record_cut_short() {
        let mut f = file(TCPDUMP_MAGIC, false, 0, &[(5, 7, b"abcdef")]);
        f.truncate(f.len() - 2);
        let (frames, err, _) = read_all(f);
        assert!(frames.is_empty());
        assert_eq!(
            err.unwrap().to_string(),
            "t.pcap: truncated dump file; tried to read 6 captured bytes, only got 4 (at byte offset 24)"
        );
    }

    #[test]
    fn caplen_over_snaplen_is_cut() {
        let f = file(TCPDUMP_MAGIC, false, 2, &[(5, 7, b"abcdef"), (6, 0, b"x")]);
        let (frames, err, _) = read_all(f);
        assert!(err.is_none());
        assert_eq!(frames[0].data, b"ab");
        assert_eq!(frames[1].data, b"x");
    }

    #[test]
    fn signed_seconds_like_libpcap() {
        let f = file(TCPDUMP_MAGIC, false, 0, &[(0xffff_ffff, 0, b"")]);
        let (frames, _, _) = read_all(f);
        assert_eq!(frames[0].ts.sec, -1);
    }
}
