//! tcpdump-compatible packet printing (target: tcpdump 4.99.3, byte for byte).
//!
//! Formatting is pure: a [`Printer`] turns one [`Frame`] into text appended to a `String`;
//! no I/O happens here. The printers walk the raw bytes themselves (rather than going through
//! `decode.rs`) because tcpdump's output on malformed packets depends on exactly which byte
//! each of its dissectors reads before it gives up, and we reproduce that.
//!
//! ## Contract shared by every dissector in this module
//!
//! * A dissector gets `bp`, the captured bytes from the start of its header (already cut at
//!   the captured length and at any length an outer header claims, like tcpdump's snapend),
//!   and `length`, the length the outer layer says this part has on the wire.
//! * Reads go through [`get_u8`], [`get_be16`], [`get_be32`], [`get_bytes`]; each returns
//!   `Err(Trunc)` past the end of `bp`. `?` then unwinds to the top level, which prints
//!   ` [|proto]` with the current [`Ctx::protocol`], like tcpdump's `nd_trunc_longjmp`.
//! * A dissector sets `ctx.protocol` on entry (tcpdump's `ndo->ndo_protocol`).
//! * Nothing here panics on any input: no indexing without a bound check, no unchecked
//!   arithmetic on lengths taken from packets.

pub mod addr;
pub mod arp;
pub mod icmp;
pub mod icmp6;
pub mod ip;
pub mod ip6;
pub mod link;
pub mod tcp;
pub mod udp;

use crate::capture::{Frame, Point};
use std::fmt::Write as _;
use std::net::IpAddr;

/// How timestamps are printed (`-t` repeated N times gives `TsFormat::from_count(N)`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TsFormat {
    /// `HH:MM:SS.ffffff` local time (no `-t`)
    #[default]
    Default,
    /// `-t`: no timestamp
    None,
    /// `-tt`: seconds since the epoch
    Unix,
    /// `-ttt`: delta since the previous packet
    DeltaPrev,
    /// `-tttt`: `YYYY-MM-DD HH:MM:SS.ffffff` local time
    Date,
    /// `-ttttt`: delta since the first packet
    DeltaFirst,
}

impl TsFormat {
    pub fn from_count(n: u8) -> TsFormat {
        match n {
            0 => TsFormat::Default,
            1 => TsFormat::None,
            2 => TsFormat::Unix,
            3 => TsFormat::DeltaPrev,
            4 => TsFormat::Date,
            _ => TsFormat::DeltaFirst,
        }
    }
}

/// Printing options, named after tcpdump's flags.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `-v` count
    pub verbose: u8,
    /// `-e`: print the link-level header
    pub link_header: bool,
    /// `-n` count (1: no host names, 2: no port/protocol names either)
    pub numeric: u8,
    /// `-q`: quick (less protocol detail)
    pub quick: bool,
    /// `-S`: absolute TCP sequence numbers
    pub absolute_seq: bool,
    /// `-x` count: hex dump (1: from the network header, 2: from the link header)
    pub hex: u8,
    /// `-X` count: hex and ASCII dump (1/2 like `-x`)
    pub hex_ascii: u8,
    /// `-A` count: ASCII dump
    pub ascii: u8,
    pub ts_format: TsFormat,
    /// Print timestamps with nanosecond precision (`--nano`, `--time-stamp-precision=nano`).
    pub nano: bool,
    /// `-#`: number packets
    pub number: bool,
    /// More than one capture point: start each line with the point's label and direction,
    /// the way `tcpdump -i any` prints `lo In`.
    pub labels: bool,
}

/// Truncation: the captured bytes ended before a dissector was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trunc;

/// Result of a dissector step.
pub type PResult<T = ()> = Result<T, Trunc>;

#[inline]
pub fn get_u8(bp: &[u8], off: usize) -> PResult<u8> {
    bp.get(off).copied().ok_or(Trunc)
}

#[inline]
pub fn get_be16(bp: &[u8], off: usize) -> PResult<u16> {
    match bp.get(off..off.wrapping_add(2)) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(Trunc),
    }
}

#[inline]
pub fn get_be32(bp: &[u8], off: usize) -> PResult<u32> {
    match bp.get(off..off.wrapping_add(4)) {
        Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(Trunc),
    }
}

#[inline]
pub fn get_bytes(bp: &[u8], off: usize, len: usize) -> PResult<&[u8]> {
    bp.get(off..off.checked_add(len).ok_or(Trunc)?).ok_or(Trunc)
}

/// What an upper-layer printer (TCP, UDP, ICMP, ICMPv6) needs to know about the IP header
/// in front of it.
#[derive(Clone, Copy, Debug)]
pub struct IpHdr<'a> {
    pub src: IpAddr,
    /// Destination as printed (the header's destination).
    pub dst: IpAddr,
    /// Destination used in the pseudo-header checksum (IPv6: the final destination of a
    /// routing header, tcpdump's `ip6_finddst`).
    pub cksum_dst: IpAddr,
    /// The raw IP header (v4 or v6 fixed header) as captured.
    pub hdr: &'a [u8],
    /// Part of a fragmented datagram (checksums are not verified then).
    pub fragmented: bool,
}

/// Per-packet printing context handed down the dissectors.
pub struct Ctx<'a> {
    pub opts: &'a Options,
    pub out: &'a mut String,
    /// Name used in the truncation marker ` [|name]`.
    pub protocol: &'static str,
    /// State that lives across packets (TCP relative sequence numbers).
    pub state: &'a mut State,
}

impl Ctx<'_> {
    #[inline]
    pub fn put(&mut self, s: &str) {
        self.out.push_str(s);
    }
    #[inline]
    pub fn fmt(&mut self, args: std::fmt::Arguments<'_>) {
        let _ = self.out.write_fmt(args);
    }
    /// tcpdump's `nd_print_trunc`: ` [|proto]`.
    pub fn print_trunc(&mut self) {
        let p = self.protocol;
        self.fmt(format_args!(" [|{p}]"));
    }
}

/// `pr!(ctx, "fmt", args...)`: append formatted text to the packet's output.
#[macro_export]
macro_rules! pr {
    ($ctx:expr, $($arg:tt)*) => { $ctx.fmt(format_args!($($arg)*)) };
}

/// State kept across packets.
#[derive(Default)]
pub struct State {
    pub tcp: tcp::SeqTable,
}

/// Internet checksum (RFC 1071) over the concatenation of `parts`; returns the folded,
/// complemented sum (0 means the data including its checksum field verifies).
pub fn in_cksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        let mut p: &[u8] = part;
        if let Some(hi) = odd.take() {
            if let Some((&lo, rest)) = p.split_first() {
                sum += u64::from(u16::from_be_bytes([hi, lo]));
                p = rest;
            } else {
                odd = Some(hi);
                continue;
            }
        }
        let mut chunks = p.chunks_exact(2);
        for c in &mut chunks {
            sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
        }
        if let [last] = chunks.remainder() {
            odd = Some(*last);
        }
    }
    if let Some(hi) = odd {
        sum += u64::from(u16::from_be_bytes([hi, 0]));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Checksum of an upper-layer payload with the IPv4 or IPv6 pseudo-header
/// (tcpdump's `nextproto4_cksum` / `nextproto6_cksum`). `data` is the whole segment.
pub fn pseudo_cksum(ip: &IpHdr<'_>, proto: u8, data: &[u8]) -> u16 {
    let len = data.len() as u32;
    match (ip.src, ip.cksum_dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut ph = [0u8; 12];
            ph[0..4].copy_from_slice(&s.octets());
            ph[4..8].copy_from_slice(&d.octets());
            ph[9] = proto;
            ph[10..12].copy_from_slice(&(len as u16).to_be_bytes());
            in_cksum(&[&ph, data])
        }
        (s, d) => {
            let to6 = |a: IpAddr| match a {
                IpAddr::V6(a) => a.octets(),
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            };
            let mut ph = [0u8; 40];
            ph[0..16].copy_from_slice(&to6(s));
            ph[16..32].copy_from_slice(&to6(d));
            ph[32..36].copy_from_slice(&len.to_be_bytes());
            ph[39] = proto;
            in_cksum(&[&ph, data])
        }
    }
}

/// Turns frames into tcpdump's text, one packet at a time.
pub struct Printer {
    pub opts: Options,
    pub state: State,
    /// Packets printed so far (for `-#`).
    count: u64,
    first_ts: Option<crate::capture::Timestamp>,
    prev_ts: Option<crate::capture::Timestamp>,
}

impl Printer {
    pub fn new(opts: Options) -> Printer {
        Printer { opts, state: State::default(), count: 0, first_ts: None, prev_ts: None }
    }

    /// Appends the full text for one frame (summary line, then any hex/ASCII dump) to `out`.
    pub fn print_frame(&mut self, frame: &Frame, point: &Point, out: &mut String) {
        self.count += 1;
        if self.opts.number {
            let _ = write!(out, "{:5}  ", self.count);
        }
        let _ = (&self.first_ts, &self.prev_ts, point);
        // TODO(print helper): timestamps, labels, link layer dispatch, hex dumps.
        let mut ctx = Ctx { opts: &self.opts, out, protocol: "", state: &mut self.state };
        let _hdrlen = link::print(&mut ctx, frame.linktype, &frame.data, frame.origlen);
        out.push('\n');
    }
}
