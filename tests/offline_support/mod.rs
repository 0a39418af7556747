//! Builders for capture files written byte by byte, and helpers to run the binary.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// An Ethernet ARP request (42 bytes).
pub const ARP: &str = "ffffffffffff00112233445508060001080006040001001122334455c0a80101000000000000c0a80102";

pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

pub fn arp() -> Vec<u8> {
    hex(ARP)
}

/// A raw IPv4 UDP packet (28 bytes), for LINKTYPE_RAW interfaces.
pub fn raw_udp() -> Vec<u8> {
    hex("4500001c00010000401100000a0000010a00000204d2162e00080000")
}

#[derive(Clone, Copy)]
pub struct Endian(pub bool);
impl Endian {
    pub fn u16(self, v: u16) -> [u8; 2] {
        if self.0 { v.to_be_bytes() } else { v.to_le_bytes() }
    }
    pub fn u32(self, v: u32) -> [u8; 4] {
        if self.0 { v.to_be_bytes() } else { v.to_le_bytes() }
    }
    pub fn u64(self, v: u64) -> [u8; 8] {
        if self.0 { v.to_be_bytes() } else { v.to_le_bytes() }
    }
}

/// Classic pcap file builder.
pub struct Pcap {
    pub bytes: Vec<u8>,
    e: Endian,
}

impl Pcap {
    pub fn new(big_endian: bool, nano: bool, snaplen: u32, linktype: u32) -> Pcap {
        let e = Endian(big_endian);
        let mut b = Vec::new();
        b.extend(e.u32(if nano { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
        b.extend(e.u16(2));
        b.extend(e.u16(4));
        b.extend(e.u32(0));
        b.extend(e.u32(0));
        b.extend(e.u32(snaplen));
        b.extend(e.u32(linktype));
        Pcap { bytes: b, e }
    }
    pub fn record(mut self, sec: u32, frac: u32, data: &[u8], origlen: u32) -> Pcap {
        let e = self.e;
        self.bytes.extend(e.u32(sec));
        self.bytes.extend(e.u32(frac));
        self.bytes.extend(e.u32(data.len() as u32));
        self.bytes.extend(e.u32(origlen));
        self.bytes.extend_from_slice(data);
        self
    }
}

/// pcapng file builder (each section may have its own byte order).
pub struct Pcapng {
    pub bytes: Vec<u8>,
    e: Endian,
}

fn pad4(b: &mut Vec<u8>) {
    while !b.len().is_multiple_of(4) {
        b.push(0);
    }
}

impl Pcapng {
    pub fn new() -> Pcapng {
        Pcapng { bytes: Vec::new(), e: Endian(false) }
    }
    pub fn block(mut self, ty: u32, mut body: Vec<u8>) -> Pcapng {
        pad4(&mut body);
        let total = 12 + body.len() as u32;
        let e = self.e;
        self.bytes.extend(e.u32(ty));
        self.bytes.extend(e.u32(total));
        self.bytes.extend(body);
        self.bytes.extend(e.u32(total));
        self
    }
    pub fn option(&self, code: u16, value: &[u8]) -> Vec<u8> {
        let mut o = Vec::new();
        o.extend(self.e.u16(code));
        o.extend(self.e.u16(value.len() as u16));
        o.extend_from_slice(value);
        pad4(&mut o);
        o
    }
    pub fn shb(mut self, big_endian: bool) -> Pcapng {
        self.e = Endian(big_endian);
        let e = self.e;
        let mut b = Vec::new();
        b.extend(e.u32(0x1A2B_3C4D));
        b.extend(e.u16(1));
        b.extend(e.u16(0));
        b.extend(e.u64(u64::MAX));
        self.block(0x0A0D_0D0A, b)
    }
    /// IDB with optional if_name and if_tsresol.
    pub fn idb(self, linktype: u16, snaplen: u32, name: Option<&str>, tsresol: Option<u8>) -> Pcapng {
        let e = self.e;
        let mut b = Vec::new();
        b.extend(e.u16(linktype));
        b.extend(e.u16(0));
        b.extend(e.u32(snaplen));
        if let Some(n) = name {
            b.extend(self.option(2, n.as_bytes()));
        }
        if let Some(r) = tsresol {
            b.extend(self.option(9, &[r]));
        }
        b.extend(self.option(0, &[]));
        self.block(1, b)
    }
    /// EPB; `flags`: epb_flags value.
    pub fn epb(self, iface: u32, ts: u64, data: &[u8], origlen: u32, flags: Option<u32>) -> Pcapng {
        let e = self.e;
        let mut b = Vec::new();
        b.extend(e.u32(iface));
        b.extend(e.u32((ts >> 32) as u32));
        b.extend(e.u32(ts as u32));
        b.extend(e.u32(data.len() as u32));
        b.extend(e.u32(origlen));
        b.extend_from_slice(data);
        pad4(&mut b);
        if let Some(f) = flags {
            b.extend(self.option(2, &e.u32(f)));
            b.extend(self.option(0, &[]));
        }
        self.block(6, b)
    }
    pub fn spb(self, data: &[u8], origlen: u32) -> Pcapng {
        let e = self.e;
        let mut b = Vec::new();
        b.extend(e.u32(origlen));
        b.extend_from_slice(data);
        self.block(3, b)
    }
    pub fn pb(self, iface: u16, ts: u64, data: &[u8]) -> Pcapng {
        let e = self.e;
        let mut b = Vec::new();
        b.extend(e.u16(iface));
        b.extend(e.u16(0));
        b.extend(e.u32((ts >> 32) as u32));
        b.extend(e.u32(ts as u32));
        b.extend(e.u32(data.len() as u32));
        b.extend(e.u32(data.len() as u32));
        b.extend_from_slice(data);
        self.block(2, b)
    }
}

/// A fresh directory for one test's files.
pub fn tempdir(name: &str) -> PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("flowtrail-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_string_lossy().into_owned()
}

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flowtrail"))
}

/// Runs flowtrail with `args` (and `stdin` bytes, if any).
pub fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut c = bin();
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    c.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = c.spawn().unwrap();
    if let Some(b) = stdin {
        let mut s = child.stdin.take().unwrap();
        let b = b.to_vec();
        std::thread::spawn(move || {
            let _ = s.write_all(&b);
        });
    }
    child.wait_with_output().unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Frames of a file, read through the library: (point label, sec, nsec, data, origlen, direction).
pub type Row = (String, i64, u64, Vec<u8>, u32, flowtrail::capture::Direction);

pub fn frames_of(path: &str) -> Result<Vec<Row>, String> {
    use flowtrail::capture::{FrameSource, OfflineReader, Points};
    let mut points = Points::default();
    let mut r = OfflineReader::open(path, &mut points).map_err(|e| e.to_string())?;
    let mut v = Vec::new();
    while let Some(f) = r.next_frame(&mut points, Vec::new()).map_err(|e| e.to_string())? {
        let label = points.get(f.point).unwrap().label.clone();
        v.push((label, f.ts.sec, f.ts.nsec, f.data, f.origlen, f.direction));
    }
    Ok(v)
}

/// Is tcpdump (the oracle) installed?
pub fn have_tcpdump() -> bool {
    Path::new("/usr/bin/tcpdump").exists()
}

pub fn tcpdump(args: &[&str]) -> Output {
    Command::new("/usr/bin/tcpdump").args(args).output().unwrap()
}
