//! Shared by the flow tests: capture files built in the test (classic pcap, Ethernet), a TCP
//! connection builder that tracks sequence numbers, running the binary, reading its JSON.
#![allow(dead_code)]

use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The binary, printing times in UTC whatever this machine's zone (snapshots hold them).
pub fn flowtrail() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_flowtrail"));
    c.env("TZ", "UTC");
    c
}

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory under the target dir, removed first if it exists.
pub fn tempdir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("flow-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs flowtrail with `args`; stdout to `stdout` if given (else captured).
pub fn run(args: &[&str]) -> Output {
    flowtrail().args(args).output().expect("run flowtrail")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The JSON objects of a `--flows=json` run's stdout.
pub fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    text(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

/// The `{"stats":...}` object a `--flows=json` run wrote to stderr.
pub fn stats(o: &Output) -> serde_json::Value {
    text(&o.stderr)
        .lines()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok().and_then(|v| v.get("stats").cloned()))
        .unwrap_or_else(|| panic!("no stats in stderr: {}", text(&o.stderr)))
}

/// The (only) observation of a flow JSON object.
pub fn obs(v: &serde_json::Value) -> &serde_json::Value {
    &v["legs"][0]["observations"][0]
}

/// Every observation of a path JSON object, legs in order.
pub fn all_obs(v: &serde_json::Value) -> Vec<&serde_json::Value> {
    v["legs"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["observations"].as_array().into_iter().flatten())
        .collect()
}

/// A classic pcap file (microseconds, Ethernet) written record by record.
pub struct Pcap {
    pub w: std::io::BufWriter<std::fs::File>,
    pub count: u64,
}

impl Pcap {
    pub fn create(path: &Path) -> Pcap {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
        w.write_all(&0xa1b2c3d4u32.to_le_bytes()).unwrap();
        w.write_all(&2u16.to_le_bytes()).unwrap();
        w.write_all(&4u16.to_le_bytes()).unwrap();
        w.write_all(&[0; 8]).unwrap();
        w.write_all(&262144u32.to_le_bytes()).unwrap();
        w.write_all(&1u32.to_le_bytes()).unwrap();
        Pcap { w, count: 0 }
    }

    /// One frame at `us` microseconds since the epoch.
    pub fn frame(&mut self, us: u64, data: &[u8]) {
        let sec = (us / 1_000_000) as u32;
        let frac = (us % 1_000_000) as u32;
        for v in [sec, frac, data.len() as u32, data.len() as u32] {
            self.w.write_all(&v.to_le_bytes()).unwrap();
        }
        self.w.write_all(data).unwrap();
        self.count += 1;
    }

    pub fn finish(mut self) {
        self.w.flush().unwrap();
    }
}

/// One pcap record: its 16-byte header and the frame.
pub type Record = ([u8; 16], Vec<u8>);

/// Reads a classic pcap (either precision, little endian as written above or by tcpdump on
/// x86): the header and `(record header, data)` pairs.
pub fn read_pcap(path: &Path) -> (Vec<u8>, Vec<Record>) {
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.len() >= 24, "short pcap");
    let header = bytes[..24].to_vec();
    let mut records = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let mut h = [0u8; 16];
        h.copy_from_slice(&bytes[at..at + 16]);
        let caplen = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
        let data = bytes[at + 16..at + 16 + caplen].to_vec();
        records.push((h, data));
        at += 16 + caplen;
    }
    (header, records)
}

pub fn write_pcap(path: &Path, header: &[u8], records: &[Record]) {
    let mut out = header.to_vec();
    for (h, d) in records {
        out.extend_from_slice(h);
        out.extend_from_slice(d);
    }
    std::fs::write(path, out).unwrap();
}

/// TCP facts of a frame: (src, sport, dst, dport, seq, flags, payload length).
pub type TcpFacts = (String, u16, String, u16, u32, u8, u32);

/// The [`TcpFacts`] of an Ethernet, Linux-cooked or raw IP frame.
pub fn tcp_facts(linktype: u32, data: &[u8]) -> Option<TcpFacts> {
    let sliced = match linktype {
        1 => SlicedPacket::from_ethernet(data).ok()?,
        113 => SlicedPacket::from_linux_sll(data).ok()?,
        _ => SlicedPacket::from_ip(data).ok()?,
    };
    let (src, dst) = match sliced.net? {
        etherparse::NetSlice::Ipv4(v4) => {
            (v4.header().source_addr().to_string(), v4.header().destination_addr().to_string())
        }
        etherparse::NetSlice::Ipv6(v6) => {
            (v6.header().source_addr().to_string(), v6.header().destination_addr().to_string())
        }
        _ => return None,
    };
    match sliced.transport? {
        TransportSlice::Tcp(t) => Some((
            src,
            t.source_port(),
            dst,
            t.destination_port(),
            t.sequence_number(),
            t.slice()[13],
            t.payload().len() as u32,
        )),
        _ => None,
    }
}

/// Builds the frames of TCP connections with correct sequence numbers.
pub struct Conn {
    pub client: ([u8; 4], u16),
    pub server: ([u8; 4], u16),
    pub cseq: u32,
    pub sseq: u32,
    pub window: u16,
    pub ttl: u8,
}

pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const PSH: u8 = 0x08;
pub const FIN: u8 = 0x01;
pub const RST: u8 = 0x04;

impl Conn {
    pub fn new(client: ([u8; 4], u16), server: ([u8; 4], u16), cisn: u32, sisn: u32) -> Conn {
        Conn { client, server, cseq: cisn, sseq: sisn, window: 65000, ttl: 64 }
    }

    /// A raw segment from the client (`from_client`) or the server, any seq/ack/flags.
    pub fn raw(&self, from_client: bool, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        self.raw_window(from_client, seq, ack, flags, payload, self.window)
    }

    pub fn raw_window(&self, from_client: bool, seq: u32, ack: u32, flags: u8, payload: &[u8], window: u16) -> Vec<u8> {
        let (s, d) = if from_client { (self.client, self.server) } else { (self.server, self.client) };
        let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(s.0, d.0, self.ttl)
            .tcp(s.1, d.1, seq, window);
        if flags & SYN != 0 {
            b = b.syn();
        }
        if flags & FIN != 0 {
            b = b.fin();
        }
        if flags & RST != 0 {
            b = b.rst();
        }
        if flags & PSH != 0 {
            b = b.psh();
        }
        if flags & ACK != 0 {
            b = b.ack(ack);
        }
        let mut out = Vec::with_capacity(64 + payload.len());
        b.write(&mut out, payload).unwrap();
        out
    }

    /// SYN, SYN/ACK, ACK; sequence numbers advance past the SYNs.
    pub fn handshake(&mut self) -> Vec<Vec<u8>> {
        let v = vec![
            self.raw(true, self.cseq, 0, SYN, b""),
            self.raw(false, self.sseq, self.cseq.wrapping_add(1), SYN | ACK, b""),
            self.raw(true, self.cseq.wrapping_add(1), self.sseq.wrapping_add(1), ACK, b""),
        ];
        self.cseq = self.cseq.wrapping_add(1);
        self.sseq = self.sseq.wrapping_add(1);
        v
    }

    /// Data from one side (in order), advancing that side's sequence number.
    pub fn data(&mut self, from_client: bool, payload: &[u8]) -> Vec<u8> {
        let (seq, ack) = if from_client { (self.cseq, self.sseq) } else { (self.sseq, self.cseq) };
        let f = self.raw(from_client, seq, ack, ACK | PSH, payload);
        if from_client {
            self.cseq = self.cseq.wrapping_add(payload.len() as u32);
        } else {
            self.sseq = self.sseq.wrapping_add(payload.len() as u32);
        }
        f
    }

    /// A pure ACK of everything the other side sent.
    pub fn ack(&self, from_client: bool) -> Vec<u8> {
        let (seq, ack) = if from_client { (self.cseq, self.sseq) } else { (self.sseq, self.cseq) };
        self.raw(from_client, seq, ack, ACK, b"")
    }

    /// FIN from both sides and the last ACK.
    pub fn close(&mut self) -> Vec<Vec<u8>> {
        let v = vec![
            self.raw(true, self.cseq, self.sseq, FIN | ACK, b""),
            self.raw(false, self.sseq, self.cseq.wrapping_add(1), FIN | ACK, b""),
            self.raw(true, self.cseq.wrapping_add(1), self.sseq.wrapping_add(1), ACK, b""),
        ];
        self.cseq = self.cseq.wrapping_add(1);
        self.sseq = self.sseq.wrapping_add(1);
        v
    }
}

/// sha256 of a file, hex (coreutils' sha256sum).
pub fn sha256_file(path: &Path) -> String {
    let o = Command::new("sha256sum").arg(path).stderr(Stdio::inherit()).output().expect("sha256sum");
    assert!(o.status.success(), "sha256sum {}", path.display());
    text(&o.stdout).split_whitespace().next().unwrap_or_default().to_string()
}

/// sha256 of bytes, hex.
pub fn sha256(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("sha256sum");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let o = child.wait_with_output().unwrap();
    text(&o.stdout).split_whitespace().next().unwrap_or_default().to_string()
}

/// The deterministic payload of lab/client.py (64-byte lines naming their offset).
pub fn lab_payload(seed: u32, conn: u32, size: usize) -> Vec<u8> {
    const FILL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = Vec::with_capacity(size + 64);
    let mut off = 0;
    while off < size {
        let head = format!("ft s{seed} c{conn:04} o{off:010} ");
        let mut line = head.into_bytes();
        let fill = 64 - 1 - line.len();
        line.extend_from_slice(&FILL[..fill]);
        line.push(b'\n');
        out.extend_from_slice(&line);
        off += 64;
    }
    out.truncate(size);
    out
}

/// flowtrail's `analysis` counters and the tshark field that counts the same thing.
pub const ANALYSIS_FIELDS: [(&str, &str); 12] = [
    ("retransmission", "tcp.analysis.retransmission"),
    ("fast_retransmission", "tcp.analysis.fast_retransmission"),
    ("spurious_retransmission", "tcp.analysis.spurious_retransmission"),
    ("out_of_order", "tcp.analysis.out_of_order"),
    ("dup_ack", "tcp.analysis.duplicate_ack"),
    ("zero_window", "tcp.analysis.zero_window"),
    ("window_full", "tcp.analysis.window_full"),
    ("window_update", "tcp.analysis.window_update"),
    ("keep_alive", "tcp.analysis.keep_alive"),
    ("keep_alive_ack", "tcp.analysis.keep_alive_ack"),
    ("lost_segment", "tcp.analysis.lost_segment"),
    ("ack_unseen_segment", "tcp.analysis.ack_lost_segment"),
];
