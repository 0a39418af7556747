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
pub mod app;
pub mod arp;
pub mod dns;
pub mod icmp;
pub mod icmp6;
pub mod ip;
pub mod ip6;
pub mod link;
pub mod names;
pub mod tcp;
pub mod ts;
pub mod udp;

use crate::capture::{Direction, Frame, Point};
use std::collections::HashMap;
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

impl Options {
    /// tcpdump's `ndo_suppress_default_print`: `-q`, `-x` and `-X` turn off the hex dump
    /// of payloads no dissector understood.
    pub fn suppress_default_print(&self) -> bool {
        self.quick || self.hex > 0 || self.hex_ascii > 0
    }
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
        self.out.push_str(" [|");
        self.out.push_str(self.protocol);
        self.out.push(']');
    }
    /// tcpdump's `nd_print_invalid`: ` (invalid)`.
    pub fn print_invalid(&mut self) {
        self.out.push_str(" (invalid)");
    }
    /// Appends `v` in decimal (a fast `%u`).
    #[inline]
    pub fn put_u32(&mut self, v: u32) {
        push_u32(self.out, v);
    }
    /// Appends an IPv4 address from 4 bytes at `off` of `bp` (tcpdump's `GET_IPADDR_STRING`:
    /// the host name without `-n`).
    #[inline]
    pub fn put_ip4_at(&mut self, bp: &[u8], off: usize) -> PResult {
        let b = get_bytes(bp, off, 4)?;
        self.put_ip4([b[0], b[1], b[2], b[3]]);
        Ok(())
    }
    /// Appends an IPv4 or IPv6 address, as a host name without `-n` (tcpdump's
    /// `ipaddr_string` / `ip6addr_string`). Places where tcpdump always prints numbers use
    /// [`addr::push_ip4`] / [`addr::push_ip6`] instead.
    #[inline]
    pub fn put_ip(&mut self, a: IpAddr) {
        match &mut self.state.hosts {
            None => match a {
                IpAddr::V4(a) => addr::push_ip4(self.out, a.octets()),
                IpAddr::V6(a) => addr::push_ip6(self.out, a.octets()),
            },
            Some(h) => self.out.push_str(h.get(a)),
        }
    }
    /// [`Ctx::put_ip`] for IPv4 address bytes (tcpdump's `ipaddr_string`).
    #[inline]
    pub fn put_ip4(&mut self, a: [u8; 4]) {
        match &mut self.state.hosts {
            None => addr::push_ip4(self.out, a),
            Some(h) => self.out.push_str(h.get(IpAddr::from(a))),
        }
    }
    /// [`Ctx::put_ip`] for IPv6 address bytes (tcpdump's `ip6addr_string`).
    #[inline]
    pub fn put_ip6(&mut self, a: [u8; 16]) {
        match &mut self.state.hosts {
            None => addr::push_ip6(self.out, a),
            Some(h) => self.out.push_str(h.get(IpAddr::from(a))),
        }
    }
    /// `if (!ndo_suppress_default_print) ND_DEFAULTPRINT(...)`: hex and ASCII dump of a
    /// payload nobody decoded, unless `-q`/`-x`/`-X` suppress it.
    pub fn default_print(&mut self, bp: &[u8]) {
        if !self.opts.suppress_default_print() {
            self.raw_print(bp);
        }
    }
    /// tcpdump's bare `ND_DEFAULTPRINT` (some dissectors call it regardless of `-q`/`-x`).
    pub fn raw_print(&mut self, bp: &[u8]) {
        crate::hexdump::hex_and_ascii(self.out, "\n\t", bp);
    }
    /// `-e` given.
    #[inline]
    pub fn eflag(&self) -> bool {
        self.opts.link_header
    }
    #[inline]
    pub fn vflag(&self) -> u8 {
        self.opts.verbose
    }
}

/// Appends `v` in decimal.
///
/// Numbers below 10000 (most lengths, windows, relative sequence numbers) go out digit by
/// digit: `b'0' + x % 10` is provably ASCII, so each push is a plain byte store. Longer
/// ones use `itoa`, whose one copy beats five or more pushes.
#[inline]
pub fn push_u32(out: &mut String, v: u32) {
    if v < 10_000 {
        push_small(out, v as u16);
    } else {
        out.push_str(itoa::Buffer::new().format(v));
    }
}

/// Appends `v` in decimal.
#[inline]
pub fn push_u64(out: &mut String, v: u64) {
    if v < 10_000 {
        push_small(out, v as u16);
    } else {
        out.push_str(itoa::Buffer::new().format(v));
    }
}

/// Appends `v < 10000` in decimal.
#[inline]
fn push_small(out: &mut String, v: u16) {
    if v >= 1000 {
        out.push(char::from(b'0' + (v / 1000 % 10) as u8));
    }
    if v >= 100 {
        out.push(char::from(b'0' + (v / 100 % 10) as u8));
    }
    if v >= 10 {
        out.push(char::from(b'0' + (v / 10 % 10) as u8));
    }
    out.push(char::from(b'0' + (v % 10) as u8));
}

/// Appends `v` in decimal, zero-padded to at least `width` digits (`%0*u`).
pub fn push_u64_padded(out: &mut String, v: u64, width: usize) {
    if width == 6 && v < 1_000_000 {
        // Microseconds, once per packet: six digits by arithmetic.
        let v = v as u32;
        for div in [100_000, 10_000, 1_000, 100, 10, 1] {
            out.push(char::from(b'0' + (v / div % 10) as u8));
        }
        return;
    }
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(v);
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(digits);
}

/// Appends a byte value in decimal (an IPv4 address octet).
#[inline]
pub fn push_u8(out: &mut String, v: u8) {
    // `b'0' + x % 10` is provably ASCII, so each push is a plain byte store.
    if v >= 100 {
        out.push(char::from(b'0' + v / 100));
    }
    if v >= 10 {
        out.push(char::from(b'0' + v / 10 % 10));
    }
    out.push(char::from(b'0' + v % 10));
}

/// Appends `v` in lowercase hex without leading zeros (`%x`).
#[inline]
pub fn push_hex(out: &mut String, v: u32) {
    let digits = (32 - (v | 1).leading_zeros()).div_ceil(4);
    for i in (0..digits).rev() {
        let d = (v >> (i * 4)) as u8 & 0xf;
        out.push(char::from(if d < 10 { b'0' + d } else { b'a' - 10 + d }));
    }
}

/// Appends bytes known to be ASCII (anything else is dropped, so this can never put
/// invalid UTF-8 or raw non-ASCII into the output).
#[inline]
pub fn push_ascii(out: &mut String, b: &[u8]) {
    match std::str::from_utf8(b) {
        Ok(s) => out.push_str(s),
        Err(_) => out.extend(b.iter().filter(|c| c.is_ascii()).map(|&c| char::from(c))),
    }
}

/// tcpdump's `fn_print_char`: printable ASCII as is, other bytes as `M-` (high bit) and
/// `^X` (control) escapes, so packet bytes never reach the terminal raw.
pub fn push_escaped_char(out: &mut String, mut c: u8) {
    if c & 0x80 != 0 {
        c &= 0x7f;
        out.push_str("M-");
    }
    if !(0x20..=0x7e).contains(&c) {
        c ^= 0x40;
        out.push('^');
    }
    out.push(char::from(c));
}

/// tcpdump's `in_cksum_shouldbe`: the value the checksum field should have held, given
/// the field's value and the computed (non-zero) checksum.
pub fn in_cksum_shouldbe(sum: u16, computed: u16) -> u16 {
    let mut s = u32::from(sum) + u32::from(computed);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
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
    /// Interface index -> name on this host, for LINUX_SLL2 headers (tcpdump prints
    /// `if_indextoname()` of the header's index, `?` when unknown). Filled by the caller
    /// (printing itself does no I/O); empty means every index prints as `?`.
    pub if_names: Vec<(u32, String)>,
    /// TCP/UDP port names from `/etc/services` (tcpdump's `getservent` tables), used only
    /// without `-n`. Empty (numeric ports) until [`State::load_services`] is given the
    /// file's text by the caller.
    pub tcp_services: HashMap<u16, Box<str>>,
    pub udp_services: HashMap<u16, Box<str>>,
    /// Host names for addresses, used only without `-n`; `None` prints every address as
    /// numbers (and costs nothing). Set by the caller with its resolver.
    pub hosts: Option<names::HostNames>,
    /// MAC address -> name from `/etc/ethers` (tcpdump's `ether_ntohost`), used only
    /// without `-n`; filled by the caller.
    pub ethers: HashMap<[u8; 6], Box<str>>,
}

impl State {
    /// Parses `/etc/services` text (`name port/proto [aliases] [# comment]`); like
    /// tcpdump's `init_servarray`, the first name listed for a port wins.
    pub fn load_services(&mut self, text: &str) {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let (Some(name), Some(port_proto)) = (words.next(), words.next()) else { continue };
            let Some((port, proto)) = port_proto.split_once('/') else { continue };
            let Ok(port) = port.parse::<u16>() else { continue };
            let table = match proto {
                "tcp" => &mut self.tcp_services,
                "udp" => &mut self.udp_services,
                _ => continue,
            };
            table.entry(port).or_insert_with(|| name.into());
        }
    }
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

/// Largest caplen/len tcpdump accepts in a packet header (`MAXIMUM_SNAPLEN`).
const MAXIMUM_SNAPLEN: u32 = 262_144;

/// Turns frames into tcpdump's text, one packet at a time.
pub struct Printer {
    pub opts: Options,
    pub state: State,
    /// Packets printed so far (for `-#`).
    count: u32,
    ts: ts::TsPrinter,
}

impl Printer {
    pub fn new(opts: Options) -> Printer {
        let ts = ts::TsPrinter::new(opts.ts_format, opts.nano);
        Printer { opts, state: State::default(), count: 0, ts }
    }

    /// Appends the full text for one frame (summary line, then any hex/ASCII dump) to `out`
    /// (tcpdump's `pretty_print_packet`).
    pub fn print_frame(&mut self, frame: &Frame, point: &Point, out: &mut String) {
        self.count = self.count.wrapping_add(1);
        if self.opts.number {
            let _ = write!(out, "{:5}  ", self.count);
        }
        let caplen = frame.caplen();
        let len = frame.origlen;
        if let Some(why) = invalid_header(caplen, len) {
            out.push_str(&why);
            out.push('\n');
            return;
        }
        self.ts.print(out, frame.ts);
        if self.opts.labels {
            out.push_str(&point.label);
            out.push(' ');
            match frame.direction {
                Direction::In => out.push_str("In "),
                Direction::Out => out.push_str("Out "),
                Direction::Unknown => {}
            }
        }
        let mut ctx = Ctx { opts: &self.opts, out, protocol: "", state: &mut self.state };
        let hdrlen = link::print(&mut ctx, frame.linktype, &frame.data, frame.origlen);
        let data = &frame.data[..];
        let past_link = data.get(hdrlen..).filter(|d| !d.is_empty());
        let o = &self.opts;
        if o.hex_ascii > 0 {
            if o.hex_ascii > 1 {
                crate::hexdump::hex_and_ascii(out, "\n\t", data);
            } else if let Some(d) = past_link {
                crate::hexdump::hex_and_ascii(out, "\n\t", d);
            }
        } else if o.hex > 0 {
            if o.hex > 1 {
                crate::hexdump::hex(out, "\n\t", data);
            } else if let Some(d) = past_link {
                crate::hexdump::hex(out, "\n\t", d);
            }
        } else if o.ascii > 0 {
            if o.ascii > 1 {
                crate::hexdump::ascii(out, data);
            } else if let Some(d) = past_link {
                crate::hexdump::ascii(out, d);
            }
        }
        out.push('\n');
    }
}

/// tcpdump's sanity checks on the packet header; `Some(text)` when the packet is not
/// printed at all (no timestamp either).
fn invalid_header(caplen: u32, len: u32) -> Option<String> {
    let mut problems: Vec<String> = Vec::new();
    if caplen == 0 {
        problems.push(" caplen==0".into());
    }
    if len == 0 {
        problems.push(" len==0".into());
    } else if len < caplen {
        problems.push(format!(" len({len}) < caplen({caplen})"));
    }
    if caplen > MAXIMUM_SNAPLEN {
        problems.push(format!(" caplen({caplen}) > {MAXIMUM_SNAPLEN}"));
    }
    if len > MAXIMUM_SNAPLEN {
        problems.push(format!(" len({len}) > {MAXIMUM_SNAPLEN}"));
    }
    if problems.is_empty() {
        return None;
    }
    // tcpdump: "[Invalid header: caplen==0, len==0]" -- the first problem follows the
    // colon directly, the others are joined with ",".
    let mut s = String::from("[Invalid header:");
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(p);
    }
    s.push(']');
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_and_padding() {
        let mut s = String::new();
        push_u64(&mut s, 0);
        s.push(' ');
        push_u64(&mut s, 4294967295);
        s.push(' ');
        push_u64_padded(&mut s, 42, 6);
        s.push(' ');
        push_u64_padded(&mut s, 2147483648, 6);
        s.push(' ');
        push_u64(&mut s, u64::MAX);
        s.push(' ');
        push_u64_padded(&mut s, 0, 9);
        for v in [0u8, 7, 10, 99, 100, 255] {
            s.push(' ');
            push_u8(&mut s, v);
        }
        assert_eq!(s, "0 4294967295 000042 2147483648 18446744073709551615 000000000 0 7 10 99 100 255");
        for v in (0..70_000u32).chain([0xabcdef, u32::MAX]) {
            let mut t = String::new();
            push_hex(&mut t, v);
            assert_eq!(t, format!("{v:x}"));
        }
        for v in (0..100_000u32).chain([999_999, 1_000_000, 4_294_967_295]) {
            let mut t = String::new();
            push_u32(&mut t, v);
            assert_eq!(t, v.to_string());
            t.clear();
            push_u64(&mut t, u64::from(v));
            assert_eq!(t, v.to_string());
        }
        for (v, w) in [(0u64, 6), (7, 6), (999_999, 6), (1_000_000, 6), (5, 9), (123_456_789, 9), (42, 0)] {
            let mut t = String::new();
            push_u64_padded(&mut t, v, w);
            assert_eq!(t, format!("{v:0w$}"));
        }
    }

    #[test]
    fn escaped_chars_like_fn_print_char() {
        let mut s = String::new();
        for c in [b'3', 0xaa, 0, 1, 0x7f, 0xff] {
            push_escaped_char(&mut s, c);
        }
        assert_eq!(s, "3M-*^@^A^?M-^?");
    }

    fn udp_frame(direction: Direction) -> Frame {
        // Ethernet + IPv4 + UDP 10.0.0.1:1234 -> 10.0.0.2:5678, 2 bytes of payload
        let mut d = vec![1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 14, 15, 8, 0];
        d.extend_from_slice(&[0x45, 0, 0, 30, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        d.extend_from_slice(&[0x04, 0xd2, 0x16, 0x2e, 0, 10, 0, 0, b'h', b'i']);
        let origlen = d.len() as u32;
        Frame {
            point: 0,
            ts: crate::capture::Timestamp { sec: 3_600, nsec: 5_000 },
            linktype: 1,
            origlen,
            data: d,
            direction,
        }
    }

    #[test]
    fn frame_line_with_number_labels_and_direction() {
        let point = Point { label: "sd_vm/br0".into(), linktype: 1, snaplen: 65535, nano: false };
        let opts = Options { number: true, labels: true, ts_format: TsFormat::Unix, ..Options::default() };
        let mut p = Printer::new(opts);
        let mut out = String::new();
        p.print_frame(&udp_frame(Direction::Out), &point, &mut out);
        p.print_frame(&udp_frame(Direction::Unknown), &point, &mut out);
        assert_eq!(
            out,
            concat!(
                "    1  3600.000005 sd_vm/br0 Out IP 10.0.0.1.1234 > 10.0.0.2.5678: UDP, length 2\n",
                "    2  3600.000005 sd_vm/br0 IP 10.0.0.1.1234 > 10.0.0.2.5678: UDP, length 2\n"
            )
        );
    }

    #[test]
    fn truncated_frame_dumps_from_link_header() {
        let point = Point { label: "x".into(), linktype: 1, snaplen: 65535, nano: false };
        let opts = Options { hex: 1, ts_format: TsFormat::None, ..Options::default() };
        let mut p = Printer::new(opts);
        // ARP truncated inside its fixed header: tcpdump's longjmp, so the marker and a dump
        // from the link header on (as /usr/bin/tcpdump prints it).
        let mut f = udp_frame(Direction::Unknown);
        f.data.truncate(18);
        f.data[12] = 8;
        f.data[13] = 6;
        f.data[14..18].copy_from_slice(&[0, 1, 8, 0]);
        let mut out = String::new();
        p.print_frame(&f, &point, &mut out);
        assert_eq!(out, " [|arp]\n\t0x0000:  0102 0304 0506 0a0b 0c0d 0e0f 0806 0001\n\t0x0010:  0800\n");
        // IPv4 cut inside its header is a local truncation: the dump starts at the IP header.
        let mut f = udp_frame(Direction::Unknown);
        f.data.truncate(16);
        let mut out = String::new();
        p.print_frame(&f, &point, &mut out);
        assert_eq!(out, "IP  [|ip]\n\t0x0000:  4500\n");
    }

    #[test]
    fn services_first_name_wins() {
        let mut st = State::default();
        st.load_services("# c\nhttp\t80/tcp www # WorldWideWeb\nhttp 80/udp\nwww-alt 80/tcp\nbad\n\ndomain 53/udp\n");
        assert_eq!(st.tcp_services.get(&80).map(|s| &**s), Some("http"));
        assert_eq!(st.udp_services.get(&53).map(|s| &**s), Some("domain"));
        assert!(!st.tcp_services.contains_key(&53));
    }

    #[test]
    fn invalid_headers() {
        assert_eq!(invalid_header(10, 10), None);
        assert_eq!(invalid_header(0, 0).unwrap(), "[Invalid header: caplen==0, len==0]");
        assert_eq!(invalid_header(20, 10).unwrap(), "[Invalid header: len(10) < caplen(20)]");
    }

    #[test]
    fn cksum_shouldbe() {
        // RFC 1071-style example header with checksum b861; zero the field and ask what it
        // should have been.
        let mut hdr = [
            0x45u8, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0,
            0xa8, 0x00, 0xc7,
        ];
        assert_eq!(in_cksum(&[&hdr]), 0);
        hdr[10] = 0x12;
        hdr[11] = 0x34;
        let c = in_cksum(&[&hdr]);
        assert_ne!(c, 0);
        assert_eq!(in_cksum_shouldbe(0x1234, c), 0xb861);
    }
}
