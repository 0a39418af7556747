//! `-w`: classic pcap for one capture point, pcapng (one interface block per point, named
//! by its label) for several or when the file name ends in `.pcapng`.
//!
//! Contract:
//! * Classic pcap is written the way libpcap's `pcap_dump` writes it: native (little-endian
//!   here) byte order, version 2.4, the point's link type (with its `linktype_ext` bits), its
//!   adjusted snapshot length, nanosecond magic when the point has nanosecond timestamps;
//!   seconds are truncated to 32 bits as libpcap does.
//! * pcapng: one little-endian section; an IDB per point with `if_name` = the label, its link
//!   type and snapshot length, and `if_tsresol` = 9 for nanosecond points (default µs
//!   otherwise); EPBs carry the interface id and, when known, the direction in `epb_flags`.
//!   Points known when the file is created get IDBs up front, in point order (so reading the
//!   file back yields the same points in the same order); a point that appears later gets its
//!   IDB just before its first packet.
//! * Output is buffered; with `-U` ([`SaveWriter::set_packet_buffered`]) every packet is
//!   flushed as it is written. `-` writes to standard output.

use crate::capture::{Direction, Frame, Points};
use std::io::{self, BufWriter, Write};

/// Writing the savefile failed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {}", crate::capture::os_message(source))]
pub struct SavefileError {
    pub path: String,
    pub source: io::Error,
}

/// Which format `-w` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Pcap,
    Pcapng,
}

impl Format {
    /// pcapng for several points or a name ending in `.pcapng`, else classic pcap.
    pub fn choose(path: &str, points: usize) -> Format {
        if points > 1 || path.to_ascii_lowercase().ends_with(".pcapng") { Format::Pcapng } else { Format::Pcap }
    }
}

/// An open `-w` output.
pub struct SaveWriter {
    path: String,
    out: BufWriter<Box<dyn Write + Send>>,
    format: Format,
    /// pcapng: interface id of each point (`None`: no IDB written yet).
    iface_of: Vec<Option<u32>>,
    next_iface: u32,
    /// pcap: the one point's timestamps are written in ns.
    nano: bool,
    /// `--nano` / `--micro`: write this precision whatever the points have.
    precision: Option<bool>,
    packet_buffered: bool,
    scratch: Vec<u8>,
    /// pcap: the link type of the file header.
    pcap_linktype: u32,
    /// pcap: frames not written because their link type differs from the header's (a pcapng
    /// interface that appeared after the file was created).
    skipped: u64,
}

const WRITE_BUFFER: usize = 1 << 18;

impl SaveWriter {
    /// Creates `path` (`-`: standard output) and writes the file header (and, for pcapng, the
    /// IDBs of every point known now).
    ///
    /// `precision`: `Some(true)` writes nanoseconds, `Some(false)` microseconds (tcpdump's
    /// `--nano`/`--micro`); `None` keeps each point's own precision.
    pub fn create(path: &str, format: Format, points: &Points, precision: Option<bool>) -> Result<SaveWriter, SavefileError> {
        let sink: Box<dyn Write + Send> = if path == "-" {
            Box::new(io::stdout())
        } else {
            Box::new(
                std::fs::File::create(path)
                    .map_err(|e| SavefileError { path: path.to_string(), source: e })?,
            )
        };
        Self::from_writer(path, sink, format, points, precision)
    }

    /// Like [`SaveWriter::create`] over any writer.
    pub fn from_writer(
        path: &str,
        sink: Box<dyn Write + Send>,
        format: Format,
        points: &Points,
        precision: Option<bool>,
    ) -> Result<SaveWriter, SavefileError> {
        let mut w = SaveWriter {
            precision,
            path: path.to_string(),
            out: BufWriter::with_capacity(WRITE_BUFFER, sink),
            format,
            iface_of: Vec::new(),
            next_iface: 0,
            nano: false,
            packet_buffered: false,
            scratch: Vec::with_capacity(256),
            pcap_linktype: 0,
            skipped: 0,
        };
        match format {
            Format::Pcap => {
                let (linktype, snaplen, nano) = points.get(0).map(|p| (p.linktype, p.snaplen, p.nano)).unwrap_or((1, 262_144, false));
                let nano = precision.unwrap_or(nano);
                w.nano = nano;
                w.pcap_linktype = linktype;
                let mut h = Vec::with_capacity(24);
                h.extend((if nano { 0xa1b2_3c4du32 } else { 0xa1b2_c3d4 }).to_le_bytes());
                h.extend(2u16.to_le_bytes());
                h.extend(4u16.to_le_bytes());
                h.extend(0i32.to_le_bytes());
                h.extend(0u32.to_le_bytes());
                h.extend(snaplen.to_le_bytes());
                h.extend((linktype | points.linktype_ext(0)).to_le_bytes());
                w.put(&h)?;
            }
            Format::Pcapng => {
                let mut shb = Vec::with_capacity(28);
                shb.extend(0x1A2B_3C4Du32.to_le_bytes());
                shb.extend(1u16.to_le_bytes());
                shb.extend(0u16.to_le_bytes());
                shb.extend((-1i64).to_le_bytes());
                w.block(0x0A0D_0D0A, &shb)?;
                for i in 0..points.len() {
                    w.declare(i, points)?;
                }
            }
        }
        Ok(w)
    }

    /// `-U`: flush after every packet.
    pub fn set_packet_buffered(&mut self, on: bool) {
        self.packet_buffered = on;
    }

    fn err(&self, e: io::Error) -> SavefileError {
        SavefileError { path: self.path.clone(), source: e }
    }

    fn put(&mut self, b: &[u8]) -> Result<(), SavefileError> {
        self.out.write_all(b).map_err(|e| SavefileError { path: self.path.clone(), source: e })
    }

    /// Writes one pcapng block with `body` (padded to 4 bytes).
    fn block(&mut self, ty: u32, body: &[u8]) -> Result<(), SavefileError> {
        let pad = (4 - body.len() % 4) % 4;
        let total = (12 + body.len() + pad) as u32;
        self.put(&ty.to_le_bytes())?;
        self.put(&total.to_le_bytes())?;
        self.put(body)?;
        self.put(&[0u8; 3][..pad])?;
        self.put(&total.to_le_bytes())
    }

    /// Writes the IDB of point `i` if not written yet.
    fn declare(&mut self, i: usize, points: &Points) -> Result<u32, SavefileError> {
        if let Some(Some(id)) = self.iface_of.get(i) {
            return Ok(*id);
        }
        let Some(p) = points.get(i) else {
            return Err(self.err(io::Error::new(io::ErrorKind::InvalidInput, format!("no capture point {i}"))));
        };
        let mut b = Vec::with_capacity(64);
        b.extend((p.linktype as u16).to_le_bytes());
        b.extend(0u16.to_le_bytes());
        b.extend(p.snaplen.to_le_bytes());
        let mut opt = |code: u16, v: &[u8]| {
            b.extend(code.to_le_bytes());
            b.extend((v.len() as u16).to_le_bytes());
            b.extend_from_slice(v);
            b.extend(&[0u8; 3][..(4 - v.len() % 4) % 4]);
        };
        let name = p.label.as_bytes();
        opt(2, &name[..name.len().min(0xfff0)]);
        if self.precision.unwrap_or(p.nano) {
            opt(9, &[9]);
        }
        opt(0, &[]);
        self.block(1, &b)?;
        let id = self.next_iface;
        self.next_iface += 1;
        if self.iface_of.len() <= i {
            self.iface_of.resize(i + 1, None);
        }
        self.iface_of[i] = Some(id);
        Ok(id)
    }

    /// Writes one frame.
    pub fn write(&mut self, frame: &Frame, points: &Points) -> Result<(), SavefileError> {
        match self.format {
            Format::Pcap if frame.linktype != self.pcap_linktype => {
                self.skipped += 1;
                return Ok(());
            }
            Format::Pcap => {
                let frac = (if self.nano { frame.ts.nsec } else { frame.ts.nsec / 1000 }) as u32;
                let mut h = [0u8; 16];
                h[0..4].copy_from_slice(&(frame.ts.sec as i32).to_le_bytes());
                h[4..8].copy_from_slice(&frac.to_le_bytes());
                h[8..12].copy_from_slice(&frame.caplen().to_le_bytes());
                h[12..16].copy_from_slice(&frame.origlen.to_le_bytes());
                self.put(&h)?;
                self.put(&frame.data)?;
            }
            Format::Pcapng => {
                let id = self.declare(frame.point, points)?;
                let nano = self.precision.unwrap_or(points.get(frame.point).is_some_and(|p| p.nano));
                let units = if nano {
                    (frame.ts.sec as u64).wrapping_mul(1_000_000_000).wrapping_add(frame.ts.nsec)
                } else {
                    (frame.ts.sec as u64).wrapping_mul(1_000_000).wrapping_add(frame.ts.nsec / 1000)
                };
                let mut b = std::mem::take(&mut self.scratch);
                b.clear();
                b.extend(id.to_le_bytes());
                b.extend(((units >> 32) as u32).to_le_bytes());
                b.extend((units as u32).to_le_bytes());
                b.extend(frame.caplen().to_le_bytes());
                b.extend(frame.origlen.to_le_bytes());
                b.extend_from_slice(&frame.data);
                b.extend(&[0u8; 3][..(4 - frame.data.len() % 4) % 4]);
                let flags = match frame.direction {
                    Direction::In => Some(1u32),
                    Direction::Out => Some(2),
                    Direction::Unknown => None,
                };
                if let Some(f) = flags {
                    b.extend(2u16.to_le_bytes());
                    b.extend(4u16.to_le_bytes());
                    b.extend(f.to_le_bytes());
                    b.extend([0u8; 4]);
                }
                let r = self.block(6, &b);
                self.scratch = b;
                r?;
            }
        }
        if self.packet_buffered {
            self.flush()?;
        }
        Ok(())
    }

    /// Frames left out of a classic pcap file because their link type differs from the file's.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Flushes buffered bytes to the file.
    pub fn flush(&mut self) -> Result<(), SavefileError> {
        self.out.flush().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{FrameSource, InputSpec, OfflineReader, Point, Timestamp};
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().map_err(|_| io::Error::other("poisoned"))?.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn points(n: usize, nano: bool) -> Points {
        let mut p = Points::default();
        for i in 0..n {
            p.add(Point { label: format!("p{i}"), linktype: 1 + i as u32 * 100, snaplen: 1000, nano });
        }
        p
    }

    fn frame(point: usize, sec: i64, nsec: u32, direction: Direction) -> Frame {
        Frame {
            point,
            ts: Timestamp { sec, nsec: u64::from(nsec) },
            linktype: 1 + point as u32 * 100,
            origlen: 99,
            data: vec![point as u8; 5 + point],
            direction,
        }
    }

    fn round_trip(format: Format, pts: &Points, frames: &[Frame]) -> (Vec<Frame>, Points) {
        let buf = Shared::default();
        let mut w = SaveWriter::from_writer("x", Box::new(buf.clone()), format, pts, None).unwrap();
        for f in frames {
            w.write(f, pts).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        let bytes = buf.0.lock().unwrap().clone();
        let mut back = Points::default();
        let mut r = OfflineReader::from_reader(InputSpec::parse("y"), Box::new(io::Cursor::new(bytes)), &mut back).unwrap();
        let mut out = vec![];
        while let Some(f) = r.next_frame(&mut back, Vec::new()).unwrap() {
            out.push(f);
        }
        (out, back)
    }

    #[test]
    fn pcap_round_trip_nano() {
        let pts = points(1, true);
        let frames = [frame(0, 5, 123_456_789, Direction::Unknown), frame(0, 6, 1, Direction::Unknown)];
        let (back, bp) = round_trip(Format::Pcap, &pts, &frames);
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].ts, frames[0].ts);
        assert_eq!(back[1].data, frames[1].data);
        assert_eq!(back[0].origlen, 99);
        assert!(bp.points[0].nano);
        assert_eq!(bp.points[0].snaplen, 1000);
    }

    #[test]
    fn pcapng_round_trip_points_labels_directions() {
        let pts = points(2, false);
        let frames = [frame(0, 5, 123_456_000, Direction::In), frame(1, 6, 0, Direction::Out), frame(0, 7, 0, Direction::Unknown)];
        let (back, bp) = round_trip(Format::Pcapng, &pts, &frames);
        assert_eq!(back.len(), 3);
        assert_eq!(bp.points.iter().map(|p| p.label.as_str()).collect::<Vec<_>>(), vec!["p0", "p1"]);
        assert_eq!(bp.points[1].linktype, 101);
        for (a, b) in back.iter().zip(&frames) {
            assert_eq!((a.point, a.ts, &a.data, a.direction, a.origlen), (b.point, b.ts, &b.data, b.direction, b.origlen));
        }
    }
}
