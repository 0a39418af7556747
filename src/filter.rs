//! pcap-filter expressions compiled by libpcap for a link type and applied to frames.
//!
//! libpcap compiles (`pcap_compile` on a dead handle of the point's link type, optimised,
//! netmask unknown, as tcpdump does for `-r`), so the accepted language and every error
//! message are libpcap's own. The compiled BPF program is then run by [`Program::run`], a
//! safe re-implementation of libpcap's `bpf_filter` (the classic BPF interpreter). Running it
//! here, instead of through the pcap crate's `BpfProgram::filter`, matters for correctness: the
//! crate passes the captured length as the wire length, which would make `len`-based filters
//! (`greater N`, `less N`, `len >= N`) judge a snapped packet by its captured size; tcpdump
//! passes the real wire length (the frame's `origlen`), and so do we.
//!
//! Programs are cached per link type. Like tcpdump, an empty expression is compiled too (a link
//! type libpcap cannot generate code for is an error even without a filter), but never run.

use crate::capture::{linktype, Frame};
use std::collections::HashMap;

/// A filter could not be compiled for some link type; the message is libpcap's.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct FilterError {
    pub linktype: u32,
    pub msg: String,
}

/// One classic BPF instruction (`struct bpf_insn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// A compiled BPF program.
#[derive(Clone, Debug, Default)]
pub struct Program {
    pub insns: Vec<Insn>,
}

// Instruction classes and fields (bpf.h).
const BPF_LD: u16 = 0x00;
const BPF_LDX: u16 = 0x01;
const BPF_ST: u16 = 0x02;
const BPF_STX: u16 = 0x03;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_MISC: u16 = 0x07;
const BPF_W: u16 = 0x00;
const BPF_H: u16 = 0x08;
const BPF_B: u16 = 0x10;
const BPF_IMM: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_IND: u16 = 0x40;
const BPF_MEM: u16 = 0x60;
const BPF_LEN: u16 = 0x80;
const BPF_MSH: u16 = 0xa0;
const BPF_K: u16 = 0x00;
const BPF_X: u16 = 0x08;
const BPF_A: u16 = 0x10;
const BPF_MEMWORDS: usize = 16;

impl Program {
    /// Parses the pcap crate's textual form of an instruction (`"code jt jf k"`).
    fn parse_insn(s: &str) -> Option<Insn> {
        let mut it = s.split_whitespace();
        let insn = Insn {
            code: it.next()?.parse().ok()?,
            jt: it.next()?.parse().ok()?,
            jf: it.next()?.parse().ok()?,
            k: it.next()?.parse().ok()?,
        };
        it.next().is_none().then_some(insn)
    }

    /// Compiles `expr` with libpcap for LINKTYPE_ `linktype`.
    pub fn compile(expr: &str, linktype: u32) -> Result<Program, FilterError> {
        let fail = |msg: String| FilterError { linktype, msg };
        let dlt = i32::try_from(linktype::to_dlt(linktype)).map_err(|_| fail(format!("unknown data link type {linktype}")))?;
        let cap = ::pcap::Capture::dead(::pcap::Linktype(dlt)).map_err(|e| fail(pcap_message(e)))?;
        let bpf = cap.compile(expr, true).map_err(|e| fail(pcap_message(e)))?;
        let mut insns = Vec::with_capacity(bpf.get_instructions().len());
        for i in bpf.get_instructions() {
            let insn = Self::parse_insn(&i.to_string()).ok_or_else(|| fail(format!("unreadable BPF instruction {i}")))?;
            insns.push(insn);
        }
        Ok(Program { insns })
    }

    /// libpcap's `bpf_filter`: runs the program over `pkt` (the captured bytes) with `wirelen`
    /// as the packet's length on the wire; returns the program's return value (0 = reject).
    /// Out-of-bounds loads reject, as in libpcap; nothing here can panic.
    pub fn run(&self, pkt: &[u8], wirelen: u32) -> u32 {
        let mut a: u32 = 0;
        let mut x: u32 = 0;
        let mut mem = [0u32; BPF_MEMWORDS];
        let mut pc = 0usize;
        let load = |k: u32, size: usize| -> Option<u32> {
            let k = k as usize;
            let b = pkt.get(k..k.checked_add(size)?)?;
            Some(match size {
                4 => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                2 => u32::from(u16::from_be_bytes([b[0], b[1]])),
                _ => u32::from(b[0]),
            })
        };
        loop {
            let Some(&ins) = self.insns.get(pc) else { return 0 };
            pc += 1;
            let k = ins.k;
            match ins.code {
                c if c == BPF_RET | BPF_K => return k,
                c if c == BPF_RET | BPF_A => return a,
                c if c == BPF_LD | BPF_W | BPF_ABS => match load(k, 4) {
                    Some(v) => a = v,
                    None => return 0,
                },
                c if c == BPF_LD | BPF_H | BPF_ABS => match load(k, 2) {
                    Some(v) => a = v,
                    None => return 0,
                },
                c if c == BPF_LD | BPF_B | BPF_ABS => match load(k, 1) {
                    Some(v) => a = v,
                    None => return 0,
                },
                c if c == BPF_LD | BPF_W | BPF_LEN => a = wirelen,
                c if c == BPF_LDX | BPF_W | BPF_LEN => x = wirelen,
                c if c & 0xe7 == BPF_LD | BPF_IND => {
                    let size = match c & 0x18 {
                        BPF_W => 4,
                        BPF_H => 2,
                        BPF_B => 1,
                        _ => return 0,
                    };
                    let Some(off) = x.checked_add(k) else { return 0 };
                    match load(off, size) {
                        Some(v) => a = v,
                        None => return 0,
                    }
                }
                c if c == BPF_LDX | BPF_MSH | BPF_B => match load(k, 1) {
                    Some(v) => x = (v & 0xf) << 2,
                    None => return 0,
                },
                c if c == BPF_LD | BPF_IMM => a = k,
                c if c == BPF_LDX | BPF_IMM => x = k,
                c if c == BPF_LD | BPF_MEM => a = mem.get(k as usize).copied().unwrap_or(0),
                c if c == BPF_LDX | BPF_MEM => x = mem.get(k as usize).copied().unwrap_or(0),
                BPF_ST => {
                    if let Some(m) = mem.get_mut(k as usize) {
                        *m = a;
                    }
                }
                BPF_STX => {
                    if let Some(m) = mem.get_mut(k as usize) {
                        *m = x;
                    }
                }
                c if c & 0x07 == BPF_JMP => {
                    let op = c & 0xf0;
                    if op == 0x00 {
                        // BPF_JA
                        pc = pc.saturating_add(k as usize);
                        continue;
                    }
                    let src = if c & BPF_X != 0 { x } else { k };
                    let cond = match op {
                        0x10 => a == src, // JEQ
                        0x20 => a > src,  // JGT
                        0x30 => a >= src, // JGE
                        0x40 => a & src != 0, // JSET
                        _ => return 0,
                    };
                    pc += usize::from(if cond { ins.jt } else { ins.jf });
                }
                c if c & 0x07 == BPF_ALU => {
                    let op = c & 0xf0;
                    if op == 0x80 {
                        // BPF_NEG
                        a = a.wrapping_neg();
                        continue;
                    }
                    let src = if c & BPF_X != 0 { x } else { k };
                    a = match op {
                        0x00 => a.wrapping_add(src),
                        0x10 => a.wrapping_sub(src),
                        0x20 => a.wrapping_mul(src),
                        0x30 => match a.checked_div(src) {
                            Some(v) => v,
                            None => return 0,
                        },
                        0x90 => match a.checked_rem(src) {
                            Some(v) => v,
                            None => return 0,
                        },
                        0x40 => a | src,
                        0x50 => a & src,
                        0x60 => a.checked_shl(src).unwrap_or(0),
                        0x70 => a.checked_shr(src).unwrap_or(0),
                        0xa0 => a ^ src,
                        _ => return 0,
                    };
                }
                c if c == BPF_MISC => x = a,        // TAX
                c if c == BPF_MISC | 0x80 => a = x, // TXA
                _ => return 0,
            }
        }
    }
}

/// libpcap's message out of a pcap crate error (without the crate's `libpcap error: `).
fn pcap_message(e: ::pcap::Error) -> String {
    match e {
        ::pcap::Error::PcapError(s) => s,
        other => other.to_string(),
    }
}

/// The filter of one run: the expression and its program per link type.
///
/// Strict mode (one capture point, like tcpdump): an expression that libpcap cannot compile
/// for the point's link type is an error. Lenient mode (several points): such a link type
/// just matches nothing (e.g. `arp` on a raw-IP point, `ether host ...` on a cooked one); the
/// pipeline still fails when the expression compiles for none of its points. An empty
/// expression in lenient mode passes everything without compiling.
#[derive(Debug, Default)]
pub struct Filter {
    expr: String,
    lenient: bool,
    /// Compiled programs by LINKTYPE_ value (`None`: lenient mode, does not compile there).
    programs: HashMap<u32, Option<Program>>,
    /// Link type each point was last checked for (`None`: not yet).
    by_point: Vec<Option<u32>>,
}

impl Filter {
    /// A filter for `expr` (`None` or empty: accept everything).
    pub fn new(expr: Option<&str>) -> Filter {
        Filter { expr: expr.unwrap_or("").trim().to_string(), ..Filter::default() }
    }

    /// True when there is no expression: every frame passes.
    pub fn is_empty(&self) -> bool {
        self.expr.is_empty()
    }

    /// Switches to lenient mode (several capture points).
    pub fn set_lenient(&mut self, on: bool) {
        self.lenient = on;
    }

    /// Compiles the expression for `linktype` unless done already (an empty expression is
    /// compiled too, as tcpdump does, so unsupported link types fail the same way). In
    /// lenient mode a failure is remembered (the link type matches nothing) and still returned.
    pub fn prepare(&mut self, linktype: u32) -> Result<(), FilterError> {
        match self.programs.get(&linktype) {
            Some(Some(_)) => return Ok(()),
            Some(None) if self.lenient => return Ok(()),
            _ => {}
        }
        if self.lenient && self.expr.is_empty() {
            return Ok(());
        }
        match Program::compile(&self.expr, linktype) {
            Ok(p) => {
                self.programs.insert(linktype, Some(p));
                Ok(())
            }
            Err(e) => {
                if self.lenient {
                    self.programs.insert(linktype, None);
                }
                Err(e)
            }
        }
    }

    /// Does `frame` pass? Compiles for the frame's link type on first use.
    pub fn matches(&mut self, frame: &Frame) -> Result<bool, FilterError> {
        let point = frame.point;
        if self.by_point.get(point).copied().flatten() != Some(frame.linktype) {
            if let Err(e) = self.prepare(frame.linktype)
                && !self.lenient
            {
                return Err(e);
            }
            if self.by_point.len() <= point {
                self.by_point.resize(point + 1, None);
            }
            self.by_point[point] = Some(frame.linktype);
        }
        if self.expr.is_empty() {
            return Ok(true);
        }
        Ok(matches!(self.programs.get(&frame.linktype), Some(Some(p)) if p.run(&frame.data, frame.origlen) != 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{Direction, Timestamp};

    fn frame(data: &[u8], origlen: u32) -> Frame {
        Frame {
            point: 0,
            ts: Timestamp::default(),
            linktype: 1,
            origlen,
            data: data.to_vec(),
            direction: Direction::Unknown,
        }
    }

    const ARP: &str = "ffffffffffff00112233445508060001080006040001001122334455c0a80101000000000000c0a80102";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn compiles_and_runs() {
        let arp = hex(ARP);
        let mut f = Filter::new(Some("arp"));
        assert!(f.matches(&frame(&arp, 42)).unwrap());
        let mut f = Filter::new(Some("tcp"));
        assert!(!f.matches(&frame(&arp, 42)).unwrap());
        let mut f = Filter::new(Some("arp host 192.168.1.2"));
        assert!(f.matches(&frame(&arp, 42)).unwrap());
    }

    #[test]
    fn len_uses_wire_length() {
        let arp = hex(ARP);
        let mut f = Filter::new(Some("greater 100"));
        assert!(f.matches(&frame(&arp[..20], 200)).unwrap());
        assert!(!f.matches(&frame(&arp, 42)).unwrap());
        let mut f = Filter::new(Some("less 50"));
        assert!(!f.matches(&frame(&arp[..20], 200)).unwrap());
    }

    #[test]
    fn libpcap_messages() {
        let e = Program::compile("tcp port", 1).unwrap_err();
        assert_eq!(e.msg, "can't parse filter expression: syntax error");
        let e = Program::compile("port 99999", 1).unwrap_err();
        assert_eq!(e.msg, "illegal port number 99999 > 65535");
        let e = Program::compile("", 4000).unwrap_err();
        assert_eq!(e.msg, "unknown data link type 4000 (min 104, max 289)");
    }

    #[test]
    fn lenient_mode_rejects_where_it_cannot_compile() {
        let arp = hex(ARP);
        let mut f = Filter::new(Some("arp"));
        f.set_lenient(true);
        assert!(f.prepare(101).is_err());
        let mut raw = frame(&arp, 42);
        raw.linktype = 101;
        assert!(!f.matches(&raw).unwrap());
        assert!(f.matches(&frame(&arp, 42)).unwrap());
    }

    #[test]
    fn truncated_packets_reject_without_panic() {
        let mut f = Filter::new(Some("tcp port 80 and ip[2:2] > 10"));
        for n in 0..60 {
            let _ = f.matches(&frame(&vec![0x45; n], 100)).unwrap();
        }
    }
}
