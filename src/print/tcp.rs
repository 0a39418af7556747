//! TCP: flags, relative/absolute sequence numbers, options, checksum, RST payload.
//!
//! Follows tcpdump 4.99.3's `tcp_print`, including which checks end the line with a local
//! ` [|tcp]` (tcpdump's `goto trunc`) and which unwind to the top level (its longjmp), and
//! the per-connection relative sequence numbers of its `tcp_seq_hash` tables ([`SeqTable`]).

use super::{Ctx, IpHdr, PResult, Trunc, app, get_be16, get_be32, get_bytes, get_u8, pseudo_cksum};
use crate::pr;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::net::IpAddr;

const TH_FIN: u8 = 0x01;
const TH_SYN: u8 = 0x02;
const TH_RST: u8 = 0x04;
const TH_PUSH: u8 = 0x08;
const TH_ACK: u8 = 0x10;
const TH_URG: u8 = 0x20;
const TH_ECNECHO: u8 = 0x40;
const TH_CWR: u8 = 0x80;

/// RST payload shown with `-v` is cut to this many bytes (marked with `+`).
const MAX_RST_DATA_LEN: u32 = 30;

/// One direction-independent IPv6 conversation key (tcpdump's `struct tha6`): addresses
/// and ports in a canonical order, so both directions find the same entry.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key6 {
    src: [u8; 16],
    dst: [u8; 16],
    /// `port_a << 16 | port_b`
    ports: u32,
}

impl Hash for Key6 {
    /// Five word-sized writes (the derived hash feeds the arrays byte-slice-wise).
    fn hash<H: Hasher>(&self, h: &mut H) {
        let [a, b] = words(&self.src);
        let [c, d] = words(&self.dst);
        h.write_u64(a);
        h.write_u64(b);
        h.write_u64(c);
        h.write_u64(d);
        h.write_u64(u64::from(self.ports));
    }
}

fn words(a: &[u8; 16]) -> [u64; 2] {
    let (lo, hi) = a.split_at(8);
    let w = |s: &[u8]| u64::from_le_bytes(s.try_into().unwrap_or([0; 8]));
    [w(lo), w(hi)]
}

/// The IPv4 key (tcpdump's `struct tha`), half the size of [`Key6`] so the table of a
/// large capture stays in cache: `src << 32 | dst`, and the ports as in [`Key6`].
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key4 {
    addrs: u64,
    ports: u32,
}

impl Hash for Key4 {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.addrs ^ u64::from(self.ports).rotate_left(17));
    }
}

/// The initial sequence numbers recorded for a conversation (tcpdump's `th->seq`/`th->ack`).
#[derive(Clone, Copy)]
struct Isn {
    seq: u32,
    ack: u32,
}

/// FxHash-style hasher: the key is fixed-size and not attacker-chosen in a way that matters
/// for a bounded table, and SipHash would dominate the per-packet cost.
#[derive(Default)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    /// The multiply leaves the low bits depending only on the input's low bits, and the
    /// table indexes by the low bits: rotate the well-mixed high bits down (as rustc-hash
    /// 2 does).
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

/// Per-connection first sequence numbers, for relative sequence numbers (tcpdump's
/// `tcp_seq_hash`).
///
/// Semantics match tcpdump: an entry is (re)recorded on the first ACK-bearing segment of a
/// conversation or on any SYN; later segments print `seq - isn`. tcpdump's table grows
/// without bound; ours holds at most [`SeqTable::MAX_ENTRIES`] conversations and is cleared
/// when a new one would exceed that, after which conversations restart from their next
/// segment (only captures with more than a million concurrent conversations differ).
#[derive(Default)]
pub struct SeqTable {
    v4: HashMap<Key4, Isn, BuildHasherDefault<FastHasher>>,
    v6: HashMap<Key6, Isn, BuildHasherDefault<FastHasher>>,
}

impl SeqTable {
    pub const MAX_ENTRIES: usize = 1 << 20;

    /// Number of conversations tracked.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Looks up (or records) the conversation of a segment with the ACK flag and returns
    /// `(seq, ack, thseq, thack, rev)` as tcpdump computes them.
    fn relative(&mut self, seg: &Segment, syn: bool) -> (u32, u32, u32, u32, bool) {
        let full = self.len() >= Self::MAX_ENTRIES;
        let ports = |rev: bool| {
            if rev {
                u32::from(seg.dport) << 16 | u32::from(seg.sport)
            } else {
                u32::from(seg.sport) << 16 | u32::from(seg.dport)
            }
        };
        match (seg.src, seg.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let (s, d) = (u32::from(s), u32::from(d));
                let rev = seg.sport > seg.dport || (seg.sport == seg.dport && s > d);
                let (a, b) = if rev { (d, s) } else { (s, d) };
                let key = Key4 { addrs: u64::from(a) << 32 | u64::from(b), ports: ports(rev) };
                let (seq, ack, isn, cleared) = lookup(&mut self.v4, key, seg, syn, rev, full);
                if cleared {
                    self.v6.clear();
                }
                (seq, ack, isn.seq, isn.ack, rev)
            }
            (s, d) => {
                let (s, d) = (to16(s), to16(d));
                let rev = seg.sport > seg.dport || (seg.sport == seg.dport && s > d);
                let key = if rev { Key6 { src: d, dst: s, ports: ports(rev) } } else { Key6 { src: s, dst: d, ports: ports(rev) } };
                let (seq, ack, isn, cleared) = lookup(&mut self.v6, key, seg, syn, rev, full);
                if cleared {
                    self.v4.clear();
                }
                (seq, ack, isn.seq, isn.ack, rev)
            }
        }
    }
}

/// The lookup-or-record step of [`SeqTable::relative`] for one table; `full`: the tables
/// hold [`SeqTable::MAX_ENTRIES`], so a new conversation clears this one first and says so
/// (the caller then clears the other).
fn lookup<K: Hash + Eq>(
    map: &mut HashMap<K, Isn, BuildHasherDefault<FastHasher>>,
    key: K,
    seg: &Segment,
    syn: bool,
    rev: bool,
    full: bool,
) -> (u32, u32, Isn, bool) {
    let (mut seq, mut ack) = (seg.seq, seg.ack);
    if !syn && let Some(&isn) = map.get(&key) {
        if rev {
            seq = seq.wrapping_sub(isn.ack);
            ack = ack.wrapping_sub(isn.seq);
        } else {
            seq = seq.wrapping_sub(isn.seq);
            ack = ack.wrapping_sub(isn.ack);
        }
        return (seq, ack, isn, false);
    }
    let isn = if rev { Isn { ack: seq, seq: ack.wrapping_sub(1) } } else { Isn { seq, ack: ack.wrapping_sub(1) } };
    let cleared = full && !map.contains_key(&key);
    if cleared {
        map.clear();
    }
    map.insert(key, isn);
    (seq, ack, isn, cleared)
}

fn pad16(a: &[u8; 4]) -> [u8; 16] {
    let mut o = [0u8; 16];
    o[..4].copy_from_slice(a);
    o
}

fn to16(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(a) => pad16(&a.octets()),
        IpAddr::V6(a) => a.octets(),
    }
}

struct Segment {
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
}

/// Whether the IP header's own next-protocol field is `proto` (tcpdump prints addresses
/// with the ports only then; after IPv6 extension headers the IPv6 printer already did).
pub fn ip_next_is(ip: &IpHdr<'_>, proto: u8) -> bool {
    let off = if ip.src.is_ipv6() { 6 } else { 9 };
    ip.hdr.get(off) == Some(&proto)
}

/// tcpdump's `tcpport_string`/`udpport_string`: the service name without `-n` when the
/// caller loaded `/etc/services`, else the number.
pub fn put_port(ctx: &mut Ctx<'_>, proto: u8, port: u16) {
    if ctx.opts.numeric == 0 {
        let table = if proto == 6 { &ctx.state.tcp_services } else { &ctx.state.udp_services };
        if let Some(name) = table.get(&port) {
            ctx.out.push_str(name);
            return;
        }
    }
    ctx.put_u32(u32::from(port));
}

/// `src.sport > dst.dport: ` (or `sport > dport: `), tcpdump's TCP/UDP address prefix.
pub fn print_endpoints(ctx: &mut Ctx<'_>, ip: &IpHdr<'_>, proto: u8, sport: u16, dport: u16) {
    if ip_next_is(ip, proto) {
        ctx.put_ip(ip.src);
        ctx.put(".");
        put_port(ctx, proto, sport);
        ctx.put(" > ");
        ctx.put_ip(ip.dst);
        ctx.put(".");
        put_port(ctx, proto, dport);
        ctx.put(": ");
    } else {
        put_port(ctx, proto, sport);
        ctx.put(" > ");
        put_port(ctx, proto, dport);
        ctx.put(": ");
    }
}

/// Prints a TCP segment. `bp` starts at the TCP header, `length` is the TCP length from the
/// IP layer.
pub fn print(ctx: &mut Ctx<'_>, bp: &[u8], length: u32, ip: &IpHdr<'_>) -> PResult {
    ctx.protocol = "tcp";
    if bp.len() < 4 {
        ctx.put_ip(ip.src);
        ctx.put(" > ");
        ctx.put_ip(ip.dst);
        ctx.put(":");
        ctx.print_trunc();
        return Ok(());
    }
    let sport = get_be16(bp, 0)?;
    let dport = get_be16(bp, 2)?;
    print_endpoints(ctx, ip, 6, sport, dport);
    if bp.len() < 20 {
        ctx.print_trunc();
        return Ok(());
    }
    let mut hlen = u32::from(get_u8(bp, 12)? >> 4) * 4;
    if hlen < 20 {
        pr!(ctx, " tcp {} [bad hdr length {} - too short, < 20]", length.wrapping_sub(hlen), hlen);
        return Ok(());
    }
    let seq = get_be32(bp, 4)?;
    let ack = get_be32(bp, 8)?;
    let win = get_be16(bp, 14)?;
    let urp = get_be16(bp, 18)?;
    if ctx.opts.quick {
        ctx.put("tcp ");
        ctx.put_u32(length.wrapping_sub(hlen));
        if hlen > length {
            pr!(ctx, " [bad hdr length {} - too long, > {}]", hlen, length);
        }
        return Ok(());
    }
    let flags = get_u8(bp, 13)?;
    ctx.put("Flags [");
    if flags == 0 {
        ctx.put("none");
    } else {
        for (bit, c) in [
            (TH_FIN, 'F'),
            (TH_SYN, 'S'),
            (TH_RST, 'R'),
            (TH_PUSH, 'P'),
            (TH_ACK, '.'),
            (TH_URG, 'U'),
            (TH_ECNECHO, 'E'),
            (TH_CWR, 'W'),
        ] {
            if flags & bit != 0 {
                ctx.out.push(c);
            }
        }
    }
    ctx.put("]");

    let (mut seq, mut ack, mut thseq, mut thack, mut rev) = (seq, ack, 0u32, 0u32, false);
    if !ctx.opts.absolute_seq && flags & TH_ACK != 0 {
        let seg = Segment { src: ip.src, dst: ip.dst, sport, dport, seq, ack };
        (seq, ack, thseq, thack, rev) = ctx.state.tcp.relative(&seg, flags & TH_SYN != 0);
    }
    if hlen > length {
        pr!(ctx, " [bad hdr length {} - too long, > {}]", hlen, length);
        return Ok(());
    }
    if ctx.vflag() > 0
        && !ip.fragmented
        && let Some(seg) = bp.get(..length as usize)
    {
        let sum = pseudo_cksum(ip, 6, seg);
        let tcp_sum = get_be16(bp, 16)?;
        pr!(ctx, ", cksum 0x{:04x}", tcp_sum);
        if sum != 0 {
            pr!(ctx, " (incorrect -> 0x{:04x})", super::in_cksum_shouldbe(tcp_sum, sum));
        } else {
            ctx.put(" (correct)");
        }
    }
    let length = length - hlen;
    if ctx.vflag() > 1 || length > 0 || flags & (TH_SYN | TH_FIN | TH_RST) != 0 {
        ctx.put(", seq ");
        ctx.put_u32(seq);
        if length > 0 {
            ctx.put(":");
            ctx.put_u32(seq.wrapping_add(length));
        }
    }
    if flags & TH_ACK != 0 {
        ctx.put(", ack ");
        ctx.put_u32(ack);
    }
    ctx.put(", win ");
    ctx.put_u32(u32::from(win));
    if flags & TH_URG != 0 {
        pr!(ctx, ", urg {}", urp);
    }
    if hlen > 20 {
        hlen -= 20;
        ctx.put(", options [");
        let sack_base = if rev { thseq } else { thack };
        match options(ctx, bp, hlen, length, sack_base, flags)? {
            OptEnd::Done => ctx.put("]"),
            OptEnd::Bad { ch } => {
                ctx.put("[bad opt]");
                if ch {
                    ctx.put("]");
                }
                return Ok(());
            }
            OptEnd::Trunc { ch } => {
                ctx.print_trunc();
                if ch {
                    ctx.put(">");
                }
                return Ok(());
            }
        }
    }
    ctx.put(", length ");
    ctx.put_u32(length);
    if length == 0 {
        return Ok(());
    }
    let header_len = usize::from(get_u8(bp, 12)? >> 4) * 4;
    let Some(payload) = bp.get(header_len..) else {
        pr!(ctx, " [remaining caplen({}) < header length({})]", bp.len(), header_len);
        return Err(Trunc);
    };
    if flags & TH_RST != 0 && ctx.vflag() > 0 {
        rst_data(ctx, payload, length);
        return Ok(());
    }
    app::tcp_payload(ctx, payload, length, sport, dport)
}

/// How the options loop ended.
enum OptEnd {
    Done,
    /// `[bad opt]`; `ch`: an option was already printed (tcpdump then closes the bracket).
    Bad {
        ch: bool,
    },
    /// Local truncation (` [|tcp]`, then `>` when an option was already printed).
    Trunc {
        ch: bool,
    },
}

/// The options loop of `tcp_print`; `hlen` is the option bytes' length.
fn options(
    ctx: &mut Ctx<'_>,
    bp: &[u8],
    mut hlen: u32,
    datalen_payload: u32,
    sack_base: u32,
    flags: u8,
) -> PResult<OptEnd> {
    let _ = flags;
    let mut cp = 20usize;
    let mut ch = false;
    while hlen > 0 {
        if ch {
            ctx.put(",");
        }
        let opt = get_u8(bp, cp)?;
        cp += 1;
        let len: u32 = if opt == 0 || opt == 1 {
            1
        } else {
            let l = u32::from(get_u8(bp, cp)?);
            cp += 1;
            if l < 2 || l > hlen {
                return Ok(OptEnd::Bad { ch });
            }
            hlen -= 1;
            l
        };
        hlen -= 1;
        let mut datalen: u32 = 0;
        match opt {
            0 => ctx.put("eol"),
            1 => ctx.put("nop"),
            2 => ctx.put("mss"),
            3 => ctx.put("wscale"),
            4 => ctx.put("sackOK"),
            5 => ctx.put("sack"),
            6 => ctx.put("echo"),
            7 => ctx.put("echoreply"),
            8 => ctx.put("TS"),
            11 => ctx.put("cc"),
            12 => ctx.put("ccnew"),
            13 => {}
            19 => ctx.put("md5"),
            20 => ctx.put("scps"),
            28 => ctx.put("uto"),
            29 => ctx.put("tcp-ao"),
            30 => ctx.put("mptcp"),
            34 => ctx.put("tfo"),
            254 => ctx.put("exp"),
            _ => pr!(ctx, "unknown-{}", opt),
        }
        // LENCHECK: the option's data must fit in the header and in the capture.
        macro_rules! lencheck {
            ($l:expr) => {{
                let l: u32 = $l;
                if l > hlen {
                    return Ok(OptEnd::Bad { ch });
                }
                if bp.len() < cp + l as usize {
                    return Ok(OptEnd::Trunc { ch });
                }
            }};
        }
        match opt {
            2 => {
                datalen = 2;
                lencheck!(datalen);
                ctx.put(" ");
                ctx.put_u32(u32::from(get_be16(bp, cp)?));
            }
            3 => {
                datalen = 1;
                lencheck!(datalen);
                ctx.put(" ");
                ctx.put_u32(u32::from(get_u8(bp, cp)?));
            }
            5 => {
                datalen = len - 2;
                if !datalen.is_multiple_of(8) {
                    ctx.put(" invalid sack");
                } else {
                    ctx.put(" ");
                    ctx.put_u32(datalen / 8);
                    ctx.put(" ");
                    let mut i = 0;
                    while i < datalen {
                        lencheck!(i + 4);
                        let s = get_be32(bp, cp + i as usize)?;
                        lencheck!(i + 8);
                        let e = get_be32(bp, cp + i as usize + 4)?;
                        ctx.put("{");
                        ctx.put_u32(s.wrapping_sub(sack_base));
                        ctx.put(":");
                        ctx.put_u32(e.wrapping_sub(sack_base));
                        ctx.put("}");
                        i += 8;
                    }
                }
            }
            11 | 12 | 13 | 6 | 7 => {
                datalen = 4;
                lencheck!(datalen);
                pr!(ctx, " {}", get_be32(bp, cp)?);
            }
            8 => {
                datalen = 8;
                lencheck!(datalen);
                ctx.put(" val ");
                ctx.put_u32(get_be32(bp, cp)?);
                ctx.put(" ecr ");
                ctx.put_u32(get_be32(bp, cp + 4)?);
            }
            19 => {
                datalen = 16;
                lencheck!(datalen);
                ctx.put(" ");
                // tcpdump (built with libcrypto) tries to verify the signature; without a
                // secret (-M) it cannot.
                let hdr_len = usize::from(get_u8(bp, 12)? >> 4) * 4;
                if bp.len() < hdr_len.saturating_add(datalen_payload as usize) {
                    ctx.put("snaplen too short, ");
                } else {
                    ctx.put("shared secret not supplied with -M, ");
                }
                ctx.put("can't check - ");
                for b in get_bytes(bp, cp, 16)? {
                    pr!(ctx, "{:02x}", b);
                }
            }
            20 => {
                datalen = 2;
                lencheck!(datalen);
                pr!(ctx, " cap {:02x} id {}", get_u8(bp, cp)?, get_u8(bp, cp + 1)?);
            }
            29 => {
                datalen = len - 2;
                if datalen < 2 {
                    ctx.print_invalid();
                } else {
                    lencheck!(1);
                    pr!(ctx, " keyid {}", get_u8(bp, cp)?);
                    lencheck!(2);
                    pr!(ctx, " rnextkeyid {}", get_u8(bp, cp + 1)?);
                    if datalen > 2 {
                        ctx.put(" mac 0x");
                        for i in 2..datalen {
                            lencheck!(i + 1);
                            pr!(ctx, "{:02x}", get_u8(bp, cp + i as usize)?);
                        }
                    }
                }
            }
            0 | 1 | 4 => {}
            28 => {
                datalen = 2;
                lencheck!(datalen);
                let v = u32::from(get_be16(bp, cp)?);
                pr!(ctx, " 0x{:x}", v);
                let secs = if v & 1 != 0 { (v >> 1) * 60 } else { v >> 1 };
                pr!(ctx, " {}", secs);
            }
            30 => {
                // MPTCP: only the option's name (tcpdump's mptcp_print details are not
                // reproduced).
                datalen = len - 2;
                lencheck!(datalen);
            }
            34 => {
                datalen = len - 2;
                lencheck!(datalen);
                ctx.put(" ");
                fastopen(ctx, get_bytes(bp, cp, datalen as usize)?, false);
            }
            254 => {
                datalen = len - 2;
                lencheck!(datalen);
                if datalen < 2 {
                    return Ok(OptEnd::Bad { ch });
                }
                let magic = get_be16(bp, cp)?;
                ctx.put("-");
                if magic == 0xf989 {
                    fastopen(ctx, get_bytes(bp, cp + 2, datalen as usize - 2)?, true);
                } else {
                    pr!(ctx, "{:04x}", magic);
                }
            }
            _ => {
                datalen = len - 2;
                if datalen != 0 {
                    ctx.put(" 0x");
                }
                for i in 0..datalen {
                    lencheck!(i + 1);
                    pr!(ctx, "{:02x}", get_u8(bp, cp + i as usize)?);
                }
            }
        }
        cp += datalen as usize;
        hlen = hlen.saturating_sub(datalen);
        let mut seen = datalen + 1;
        if opt != 0 && opt != 1 {
            seen += 1;
        }
        if seen != len {
            pr!(ctx, "[len {}]", len);
        }
        ch = true;
        if opt == 0 {
            break;
        }
    }
    Ok(OptEnd::Done)
}

/// tcpdump's `print_tcp_fastopen_option`.
fn fastopen(ctx: &mut Ctx<'_>, data: &[u8], exp: bool) {
    if exp {
        ctx.put("tfo");
    }
    if data.is_empty() {
        ctx.put(" cookiereq");
    } else if !data.len().is_multiple_of(2) || data.len() < 4 || data.len() > 16 {
        ctx.print_invalid();
    } else {
        ctx.put(" cookie ");
        for b in data {
            pr!(ctx, "{:02x}", b);
        }
    }
}

/// tcpdump's `print_tcp_rst_data` (`-v`): up to 30 payload bytes, escaped.
fn rst_data(ctx: &mut Ctx<'_>, payload: &[u8], length: u32) {
    ctx.put(if payload.len() >= length as usize { " [RST" } else { " [!RST" });
    let mut n = length;
    if n > MAX_RST_DATA_LEN {
        n = MAX_RST_DATA_LEN;
        ctx.put("+");
    }
    ctx.put(" ");
    for &c in payload.iter().take(n as usize) {
        super::push_escaped_char(ctx.out, c);
    }
    ctx.put("]");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn seg(s: [u8; 4], sp: u16, d: [u8; 4], dp: u16, seq: u32, ack: u32) -> Segment {
        Segment {
            src: IpAddr::V4(Ipv4Addr::from(s)),
            dst: IpAddr::V4(Ipv4Addr::from(d)),
            sport: sp,
            dport: dp,
            seq,
            ack,
        }
    }

    #[test]
    fn relative_sequence_numbers_both_directions() {
        let mut t = SeqTable::default();
        let a = [10, 0, 0, 1];
        let b = [10, 0, 0, 2];
        // SYN-ACK from server (port 80) records the conversation: absolute numbers shown.
        let r = t.relative(&seg(b, 80, a, 40000, 1000, 5001), true);
        assert_eq!((r.0, r.1), (1000, 5001));
        // client's ACK: relative 1/1
        let r = t.relative(&seg(a, 40000, b, 80, 5001, 1001), false);
        assert_eq!((r.0, r.1), (1, 1));
        // server data
        let r = t.relative(&seg(b, 80, a, 40000, 1001, 5001), false);
        assert_eq!((r.0, r.1), (1, 1));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn table_is_bounded() {
        let mut t = SeqTable::default();
        for i in 0..(SeqTable::MAX_ENTRIES as u32 + 10) {
            let a = i.to_be_bytes();
            t.relative(&seg(a, 1, [1, 1, 1, 1], 2, 0, 0), false);
        }
        assert!(t.len() <= SeqTable::MAX_ENTRIES);
    }
}
