//! pcapng files, read block by block with libpcap 1.10's (`sf-pcapng.c`) checks and messages,
//! extended where flowtrail does more than libpcap:
//!
//! * every Interface Description Block is its own capture point, whatever its link type or
//!   snapshot length (libpcap rejects an IDB that differs from the first one);
//! * each section may have either byte order (libpcap rejects a change of byte order); the
//!   byte order of a Section Header Block is learnt from its own byte-order magic;
//! * EPB / obsolete PB flags give [`Direction`]; `if_name` gives the label.
//!
//! Blocks: SHB, IDB, EPB, SPB, PB are understood, every other block type is skipped. A block
//! longer than libpcap's maximum (16 MiB, more for link types with bigger snapshots) is an
//! error; the block body is read incrementally so a lying length costs no memory.
//!
//! An IDB of a later section that repeats an earlier one of the same file (same `if_name`,
//! link type, snapshot length and resolution) maps to the same point, so a file made by
//! concatenating captures of one interface stays one capture point.

use super::{linktype, CaptureError, Direction, FileInfo, Frame, Input, InputSpec, Point, Points, Timestamp};

pub const BT_SHB: u32 = 0x0A0D_0D0A;
pub const BT_IDB: u32 = 1;
pub const BT_PB: u32 = 2;
pub const BT_SPB: u32 = 3;
pub const BT_EPB: u32 = 6;
pub const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

const SHB_INSANE_MAX: u32 = 1024 * 1024;
const INITIAL_MAX_BLOCKSIZE: u32 = 16 * 1024 * 1024;

/// libpcap's MAX_BLOCKSIZE_FOR_SNAPLEN: an EPB with a maximal packet and 128 KiB of options.
fn max_blocksize_for(linktype: u32) -> u32 {
    8 + 20 + linktype::max_snaplen(linktype) + 131_072 + 4
}

/// One interface of the current section.
#[derive(Clone, Debug)]
struct Iface {
    point: usize,
    linktype: u32,
    snapshot: u32,
    /// Units per second.
    tsresol: u64,
    tsoffset: i64,
}

/// One interface of the whole file (for labels and for reusing points across sections).
#[derive(Clone, Debug)]
struct FileIface {
    point: usize,
    name: Option<String>,
    linktype: u32,
    snapshot: u32,
    nano: bool,
    index: usize,
}

/// Streaming reader of one pcapng file.
pub struct PcapngReader {
    input: Input,
    spec: InputSpec,
    info: FileInfo,
    /// Byte order of the current section differs from little-endian.
    swapped: bool,
    ifaces: Vec<Iface>,
    file_ifaces: Vec<FileIface>,
    /// A frame was handed out: labels are frozen from now on.
    emitted: bool,
    /// Body of the current block (after type and length, trailer included).
    block: Vec<u8>,
    max_blocksize: u32,
    done: bool,
}

/// Reads the fields of one block body, libpcap's `block_cursor`.
struct Cursor<'a> {
    data: &'a [u8],
    swapped: bool,
    block_type: u32,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.data.len() < n {
            return Err(format!("block of type {} in pcapng dump file is too short", self.block_type));
        }
        let (a, b) = self.data.split_at(n);
        self.data = b;
        Ok(a)
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        let v = u16::from_le_bytes([b[0], b[1]]);
        Ok(if self.swapped { v.swap_bytes() } else { v })
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        Ok(if self.swapped { v.swap_bytes() } else { v })
    }
}

/// Options of an IDB that matter here.
struct IdbOptions {
    name: Option<String>,
    tsresol: u64,
    tsoffset: i64,
}

fn idb_options(c: &mut Cursor<'_>) -> Result<IdbOptions, String> {
    let mut o = IdbOptions { name: None, tsresol: 1_000_000, tsoffset: 0 };
    let (mut saw_tsresol, mut saw_tsoffset) = (false, false);
    while !c.data.is_empty() {
        let code = c.u16()?;
        let len = c.u16()?;
        let padded = usize::from(len).div_ceil(4) * 4;
        let value = c.take(padded)?;
        let value = &value[..usize::from(len)];
        match code {
            0 => {
                if len != 0 {
                    return Err(format!(
                        "Interface Description Block has opt_endofopt option with length {len} != 0"
                    ));
                }
                break;
            }
            2 => {
                let s = String::from_utf8_lossy(value);
                let s = s.trim_end_matches('\0');
                if !s.is_empty() {
                    o.name = Some(s.to_string());
                }
            }
            9 => {
                if len != 1 {
                    return Err(format!(
                        "Interface Description Block has if_tsresol option with length {len} != 1"
                    ));
                }
                if saw_tsresol {
                    return Err("Interface Description Block has more than one if_tsresol option".into());
                }
                saw_tsresol = true;
                let r = value[0];
                if r & 0x80 != 0 {
                    let shift = r & 0x7f;
                    if shift > 63 {
                        return Err(format!(
                            "Interface Description Block if_tsresol option resolution 2^-{shift} is too high"
                        ));
                    }
                    o.tsresol = 1u64 << shift;
                } else {
                    if r > 19 {
                        return Err(format!(
                            "Interface Description Block if_tsresol option resolution 10^-{r} is too high"
                        ));
                    }
                    o.tsresol = 10u64.pow(u32::from(r));
                }
            }
            14 => {
                if len != 8 {
                    return Err(format!(
                        "Interface Description Block has if_tsoffset option with length {len} != 8"
                    ));
                }
                if saw_tsoffset {
                    return Err("Interface Description Block has more than one if_tsoffset option".into());
                }
                saw_tsoffset = true;
                let mut b = [0u8; 8];
                b.copy_from_slice(value);
                let v = i64::from_le_bytes(b);
                o.tsoffset = if c.swapped { v.swap_bytes() } else { v };
            }
            _ => {}
        }
    }
    Ok(o)
}

/// The `epb_flags`/`pack_flags` direction bits, if the options carry them. Options of packet
/// blocks are read leniently (libpcap ignores them altogether).
fn packet_direction(mut opts: &[u8], swapped: bool) -> Direction {
    while opts.len() >= 4 {
        let rd16 = |b: &[u8]| {
            let v = u16::from_le_bytes([b[0], b[1]]);
            if swapped { v.swap_bytes() } else { v }
        };
        let (code, len) = (rd16(&opts[0..2]), usize::from(rd16(&opts[2..4])));
        let padded = len.div_ceil(4) * 4;
        let Some(value) = opts.get(4..4 + len) else { break };
        match code {
            0 => break,
            2 if len == 4 => {
                let v = u32::from_le_bytes([value[0], value[1], value[2], value[3]]);
                let v = if swapped { v.swap_bytes() } else { v };
                return match v & 3 {
                    1 => Direction::In,
                    2 => Direction::Out,
                    _ => Direction::Unknown,
                };
            }
            _ => {}
        }
        opts = opts.get(4 + padded..).unwrap_or(&[]);
    }
    Direction::Unknown
}

impl PcapngReader {
    /// Checks for a Section Header Block; if this is pcapng, reads up to and including the first
    /// Interface Description Block (libpcap's `pcap_ng_check_header`). `Ok(None)`: not pcapng.
    pub(crate) fn open(
        spec: InputSpec,
        magic: [u8; 4],
        mut input: Input,
        points: &mut Points,
    ) -> Result<Option<PcapngReader>, CaptureError> {
        if u32::from_le_bytes(magic) != BT_SHB {
            return Ok(None);
        }
        let mut b = [0u8; 8];
        if input.read_full(&mut b)? < 8 {
            return Ok(None);
        }
        let mut total = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let bom = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        let swapped = if bom == BYTE_ORDER_MAGIC {
            false
        } else if bom.swap_bytes() == BYTE_ORDER_MAGIC {
            total = total.swap_bytes();
            true
        } else {
            return Ok(None);
        };
        let path = spec.path.clone();
        let fail = |msg: String| CaptureError::Format { path: path.clone(), offset: None, msg };
        if !(28..=SHB_INSANE_MAX).contains(&total) {
            return Err(fail(format!(
                "Section Header Block in pcapng dump file has invalid length 28 < _{total}_ < {SHB_INSANE_MAX} (BT_SHB_INSANE_MAX)"
            )));
        }
        let mut rest = Vec::new();
        let want = (total - 12) as usize;
        let got = input.read_into(&mut rest, want)?;
        if got < want {
            return Err(fail(format!("truncated pcapng dump file; tried to read {want} bytes, only got {got}")));
        }
        let rd16 = |o: usize| {
            let v = u16::from_le_bytes([rest[o], rest[o + 1]]);
            if swapped { v.swap_bytes() } else { v }
        };
        let (major, minor) = (rd16(0), rd16(2));
        if !(major == 1 && (minor == 0 || minor == 2)) {
            return Err(fail(format!("unsupported pcapng savefile version {major}.{minor}")));
        }
        let mut r = PcapngReader {
            info: FileInfo { path: spec.path.clone(), linktype: 0, snaplen: 0 },
            input,
            spec,
            swapped,
            ifaces: Vec::new(),
            file_ifaces: Vec::new(),
            emitted: false,
            block: Vec::with_capacity(4096),
            max_blocksize: INITIAL_MAX_BLOCKSIZE,
            done: false,
        };
        loop {
            let Some((ty, at)) = r.read_block()? else {
                return Err(fail("the capture file has no Interface Description Blocks".into()));
            };
            match ty {
                BT_IDB => {
                    r.add_interface(at, points)?;
                    break;
                }
                BT_EPB | BT_SPB | BT_PB => {
                    return Err(fail(
                        "the capture file has a packet block before any Interface Description Blocks".into(),
                    ));
                }
                BT_SHB => r.section(at)?,
                _ => {}
            }
        }
        if let Some(i) = r.ifaces.first() {
            r.info.linktype = i.linktype;
            r.info.snaplen = i.snapshot;
        }
        Ok(Some(r))
    }

    pub fn info(&self) -> &FileInfo {
        &self.info
    }

    /// Next packet, or `Ok(None)` at a clean end of file.
    pub fn next_frame(&mut self, points: &mut Points, spare: Vec<u8>) -> Result<Option<Frame>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        let r = self.read_packet(points, spare);
        match &r {
            Ok(Some(_)) => self.emitted = true,
            _ => self.done = true,
        }
        r
    }

    fn err(&self, at: u64, msg: String) -> CaptureError {
        self.input.format_error(at, msg)
    }

    /// Reads one block into `self.block`; returns its type and file offset, `None` at EOF.
    fn read_block(&mut self) -> Result<Option<(u32, u64)>, CaptureError> {
        let at = self.input.offset;
        let mut hdr = [0u8; 8];
        let n = self.input.read_full(&mut hdr)?;
        if n == 0 {
            return Ok(None);
        }
        if n < 8 {
            return Err(self.err(at, format!("truncated pcapng dump file; tried to read 8 bytes, only got {n}")));
        }
        self.block.clear();
        let raw_type = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
        let mut swapped = self.swapped;
        if raw_type == BT_SHB {
            // A new section may change the byte order: its byte-order magic tells.
            self.input.read_into(&mut self.block, 4)?;
            if self.block.len() == 4 {
                let bom = u32::from_le_bytes([self.block[0], self.block[1], self.block[2], self.block[3]]);
                if bom == BYTE_ORDER_MAGIC {
                    swapped = false;
                } else if bom.swap_bytes() == BYTE_ORDER_MAGIC {
                    swapped = true;
                }
            }
        }
        let rd = |b: &[u8]| {
            let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            if swapped { v.swap_bytes() } else { v }
        };
        let ty = rd(&hdr[0..4]);
        let total = rd(&hdr[4..8]);
        if total < 12 {
            return Err(self.err(at, format!("block in pcapng dump file has a length of {total} < 12")));
        }
        if total % 4 != 0 {
            return Err(self.err(
                at,
                format!("block in pcapng dump file has a length of {total} that is not a multiple of 4"),
            ));
        }
        if total > self.max_blocksize {
            return Err(self.err(at, format!("pcapng block size {total} > maximum {}", self.max_blocksize)));
        }
        let want = (total - 8) as usize;
        let already = self.block.len();
        let got = already + self.input.read_into(&mut self.block, want - already.min(want))?;
        if got < want {
            return Err(self.err(at, format!("truncated pcapng dump file; tried to read {want} bytes, only got {got}")));
        }
        let trailer = rd(&self.block[want - 4..want]);
        if trailer != total {
            return Err(self.err(at, "block total length in header and trailer don't match".into()));
        }
        self.block.truncate(want - 4);
        Ok(Some((ty, at)))
    }

    /// A Section Header Block after the first: new byte order, new set of interfaces.
    fn section(&mut self, at: u64) -> Result<(), CaptureError> {
        let b = &self.block;
        if b.len() < 16 {
            return Err(self.err(at, format!("block of type {BT_SHB} in pcapng dump file is too short")));
        }
        let bom = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let swapped = if bom == BYTE_ORDER_MAGIC {
            false
        } else if bom.swap_bytes() == BYTE_ORDER_MAGIC {
            true
        } else {
            return Err(self.err(at, "the file has a section with a bad byte order magic field".into()));
        };
        let major = u16::from_le_bytes([b[4], b[5]]);
        let major = if swapped { major.swap_bytes() } else { major };
        if major != 1 {
            return Err(self.err(at, format!("unknown pcapng savefile major version number {major}")));
        }
        self.swapped = swapped;
        self.ifaces.clear();
        Ok(())
    }

    fn add_interface(&mut self, at: u64, points: &mut Points) -> Result<(), CaptureError> {
        let mut c = Cursor { data: &self.block, swapped: self.swapped, block_type: BT_IDB };
        let parsed = (|| {
            let lt = c.u16()?;
            let _reserved = c.u16()?;
            let snaplen = c.u32()?;
            let opts = idb_options(&mut c)?;
            Ok::<_, String>((lt, snaplen, opts))
        })();
        let (lt, snaplen, opts) = parsed.map_err(|m| self.err(at, m))?;
        let lt = linktype::canonical(u32::from(lt));
        let snapshot = linktype::adjust_snapshot(lt, snaplen);
        let nano = opts.tsresol > 1_000_000;
        self.max_blocksize = self.max_blocksize.max(max_blocksize_for(lt));

        let in_section: Vec<usize> = self.ifaces.iter().map(|i| i.point).collect();
        let reuse = self.file_ifaces.iter().find(|f| {
            f.name == opts.name
                && f.linktype == lt
                && f.snapshot == snapshot
                && f.nano == nano
                && !in_section.contains(&f.point)
        });
        let point = match reuse {
            Some(f) => f.point,
            None => {
                let index = self.file_ifaces.len();
                let multi = index > 0;
                if index == 1 && !self.emitted {
                    // The file turned out to have several interfaces before its first packet:
                    // the first one gets a multi-interface label too.
                    if let Some(first) = self.file_ifaces.first() {
                        let l = self.label(first.name.as_deref(), first.index, true);
                        points.relabel(first.point, l);
                    }
                }
                let label = self.label(opts.name.as_deref(), index, multi);
                let point = points.add(Point { label, linktype: lt, snaplen: snapshot, nano });
                self.file_ifaces.push(FileIface { point, name: opts.name, linktype: lt, snapshot, nano, index });
                point
            }
        };
        self.ifaces.push(Iface { point, linktype: lt, snapshot, tsresol: opts.tsresol, tsoffset: opts.tsoffset });
        Ok(())
    }

    /// Label of interface `index` (named `name`) of this file; see the module doc of `capture`.
    fn label(&self, name: Option<&str>, index: usize, multi: bool) -> String {
        match (&self.spec.label, name, multi) {
            (Some(l), _, false) => l.clone(),
            (Some(l), Some(n), true) => format!("{l}/{n}"),
            (Some(l), None, true) => format!("{l}/{index}"),
            (None, Some(n), _) => n.to_string(),
            (None, None, false) => self.spec.stem(),
            (None, None, true) => format!("{}/{index}", self.spec.stem()),
        }
    }

    fn read_packet(&mut self, points: &mut Points, data: Vec<u8>) -> Result<Option<Frame>, CaptureError> {
        loop {
            let Some((ty, at)) = self.read_block()? else { return Ok(None) };
            match ty {
                BT_EPB | BT_PB | BT_SPB => return self.packet(ty, at, data).map(Some),
                BT_IDB => self.add_interface(at, points)?,
                BT_SHB => self.section(at)?,
                _ => {}
            }
        }
    }

    fn packet(&self, ty: u32, at: u64, mut data: Vec<u8>) -> Result<Frame, CaptureError> {
        let mut c = Cursor { data: &self.block, swapped: self.swapped, block_type: ty };
        let fields = (|| {
            Ok::<_, String>(match ty {
                BT_EPB => {
                    let iface = c.u32()?;
                    let t = (u64::from(c.u32()?) << 32) | u64::from(c.u32()?);
                    (iface, t, Some(c.u32()?), c.u32()?)
                }
                BT_PB => {
                    let iface = u32::from(c.u16()?);
                    let _drops = c.u16()?;
                    let t = (u64::from(c.u32()?) << 32) | u64::from(c.u32()?);
                    (iface, t, Some(c.u32()?), c.u32()?)
                }
                _ => (0, 0, None, c.u32()?),
            })
        })();
        let (iface_id, t, caplen, len) = fields.map_err(|m| self.err(at, m))?;
        let Some(iface) = self.ifaces.get(iface_id as usize) else {
            return Err(self.err(
                at,
                format!(
                    "a packet arrived on interface {iface_id}, but there's no Interface Description Block for that interface"
                ),
            ));
        };
        // SPB: the captured length is the packet length cut at the snapshot length.
        let caplen = caplen.unwrap_or(len.min(iface.snapshot));
        if caplen > iface.snapshot {
            return Err(self.err(
                at,
                format!("invalid packet capture length {caplen}, bigger than snaplen of {}", iface.snapshot),
            ));
        }
        let bytes = c.take(caplen as usize).map_err(|m| self.err(at, m))?;
        data.clear();
        data.extend_from_slice(bytes);
        let direction = if ty == BT_SPB {
            Direction::Unknown
        } else {
            let pad = (4 - caplen as usize % 4) % 4;
            packet_direction(c.data.get(pad..).unwrap_or(&[]), self.swapped)
        };
        Ok(Frame {
            point: iface.point,
            ts: timestamp(t, iface.tsresol, iface.tsoffset),
            linktype: iface.linktype,
            origlen: len,
            data,
            direction,
        })
    }
}

/// libpcap's conversion: seconds = ts / resolution + offset (unsigned 64-bit), the fraction
/// scaled to nanoseconds (truncating; printing in µs truncates again, giving libpcap's value).
fn timestamp(t: u64, tsresol: u64, tsoffset: i64) -> Timestamp {
    let tsresol = tsresol.max(1);
    let sec = (t / tsresol).wrapping_add(tsoffset as u64);
    let frac = t % tsresol;
    let nsec = (u128::from(frac) * 1_000_000_000 / u128::from(tsresol)) as u32;
    Timestamp { sec: sec as i64, nsec: u64::from(nsec) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_resolutions() {
        assert_eq!(timestamp(1_500_000_001, 1_000_000_000, 100), Timestamp { sec: 101, nsec: 500_000_001 });
        assert_eq!(timestamp(3_000_001, 1_000_000, 0), Timestamp { sec: 3, nsec: 1000 });
        assert_eq!(timestamp(3 << 20 | 1 << 19, 1 << 20, 0), Timestamp { sec: 3, nsec: 500_000_000 });
        assert_eq!(timestamp(1_000_000 << 32, 1_000_000, 0).sec, 4_294_967_296);
    }

    #[test]
    fn direction_flags() {
        let opt = |code: u16, v: u32| {
            let mut o = Vec::new();
            o.extend(code.to_le_bytes());
            o.extend(4u16.to_le_bytes());
            o.extend(v.to_le_bytes());
            o
        };
        assert_eq!(packet_direction(&opt(2, 1), false), Direction::In);
        assert_eq!(packet_direction(&opt(2, 2), false), Direction::Out);
        assert_eq!(packet_direction(&[opt(1, 7), opt(2, 2)].concat(), false), Direction::Out);
        assert_eq!(packet_direction(&[1, 2, 3], false), Direction::Unknown);
    }
}
