//! `--follow ID`: one flow's conversation, written as it is reassembled (bounded memory),
//! in the layout of `tshark -q -z follow,tcp,ascii|hex,N`:
//!
//! ```text
//!
//! ===================================================================
//! Follow: tcp,ascii
//! Filter: flow eq 3
//! Point: host-lo
//! Node 0: 127.0.0.1:40001
//! Node 1: 127.0.0.1:49673
//! 64
//! ft s1 c0000 o0000000000 ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm
//!
//! \t64
//! ft s1 c0000 o0000000000 ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm
//!
//! ===================================================================
//! ```
//!
//! Node 0 is the client, node 1 the server. Each chunk of delivered data (one reassembler
//! `Data` event, normally one segment) is its byte count on a line (server chunks indented by
//! a tab), then the bytes, then a newline, as tshark prints them. Differences from tshark,
//! on purpose:
//!
//! - `Filter:` names flowtrail's flow id, and a `Point:` line names the capture point;
//! - **ascii** keeps printable ASCII, `\n` and `\t`; every other byte (including `\r` and
//!   escape sequences, which could rewrite a terminal) becomes `.`;
//! - **gaps** are a marker line where a count line would be, `[N bytes missing in capture
//!   file]` (tab-indented for the server), not text inserted into the data; in hex the
//!   offsets are stream offsets, so the data after a gap starts at the right offset;
//! - **raw** writes the bytes of both directions, in delivery order, without any framing
//!   (refused when stdout is a terminal); gaps are reported on stderr. (tshark's `raw` is
//!   hex text.)
//!
//! UDP flows follow the same way (`Follow: udp,...`), one chunk per datagram.

use crate::flow::{FlowInfo, Proto};
use crate::reassembly::Direction;
use std::io::{self, Write};

const RULE: &str = "===================================================================";

/// The `--follow-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FollowFormat {
    #[default]
    Ascii,
    Hex,
    Raw,
}

impl FollowFormat {
    pub fn parse(s: &str) -> Option<FollowFormat> {
        match s {
            "" | "ascii" => Some(FollowFormat::Ascii),
            "hex" => Some(FollowFormat::Hex),
            "raw" => Some(FollowFormat::Raw),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            FollowFormat::Ascii => "ascii",
            FollowFormat::Hex => "hex",
            FollowFormat::Raw => "raw",
        }
    }
}

/// Follows one flow. Call [`Follow::data`]/[`Follow::gap`]/[`Follow::datagram`] as events
/// come, [`Follow::end`] when the flow ends.
#[derive(Debug)]
pub struct Follow {
    pub id: u64,
    format: FollowFormat,
    started: bool,
    ended: bool,
    /// Gap notes written to stderr in raw mode (capped).
    raw_gap_notes: u32,
    /// Reused output line.
    line: Vec<u8>,
    /// Bytes of datagrams so far per direction (their hex offsets).
    datagram_offsets: [u64; 2],
}

/// Gap notes on stderr in raw mode, at most.
const MAX_RAW_GAP_NOTES: u32 = 100;

impl Follow {
    pub fn new(id: u64, format: FollowFormat) -> Follow {
        Follow {
            id,
            format,
            started: false,
            ended: false,
            raw_gap_notes: 0,
            line: Vec::with_capacity(128),
            datagram_offsets: [0; 2],
        }
    }

    /// Whether the flow was seen at all.
    pub fn found(&self) -> bool {
        self.started
    }

    fn start(&mut self, out: &mut dyn Write, info: &FlowInfo) -> io::Result<()> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        if self.format == FollowFormat::Raw {
            return Ok(());
        }
        let proto = if info.proto == Proto::Udp { "udp" } else { "tcp" };
        write!(
            out,
            "\n{RULE}\nFollow: {proto},{}\nFilter: flow eq {}\nPoint: {}\nNode 0: {}\nNode 1: {}\n",
            self.format.name(),
            info.id,
            info.point,
            info.client,
            info.server
        )
    }

    /// Delivered bytes at stream `offset`.
    pub fn data(
        &mut self,
        out: &mut dyn Write,
        info: &FlowInfo,
        dir: Direction,
        offset: u64,
        bytes: &[u8],
    ) -> io::Result<()> {
        self.start(out, info)?;
        if bytes.is_empty() || self.ended {
            return Ok(());
        }
        let indent = dir == Direction::ServerToClient;
        match self.format {
            FollowFormat::Raw => out.write_all(bytes),
            FollowFormat::Ascii => {
                self.line.clear();
                if indent {
                    self.line.push(b'\t');
                }
                let _ = writeln!(self.line, "{}", bytes.len());
                self.line.extend(bytes.iter().map(|&b| match b {
                    b'\n' | b'\t' | 0x20..=0x7e => b,
                    _ => b'.',
                }));
                self.line.push(b'\n');
                out.write_all(&self.line)
            }
            FollowFormat::Hex => {
                for (i, chunk) in bytes.chunks(16).enumerate() {
                    self.hex_line(indent, offset + 16 * i as u64, chunk);
                    out.write_all(&self.line)?;
                }
                Ok(())
            }
        }
    }

    /// One line of tshark's hex layout: offset, 16 bytes in two groups of 8, ASCII.
    fn hex_line(&mut self, indent: bool, offset: u64, chunk: &[u8]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let l = &mut self.line;
        l.clear();
        if indent {
            l.push(b'\t');
        }
        let _ = write!(l, "{offset:08X}  ");
        for i in 0..16 {
            match chunk.get(i) {
                Some(&b) => l.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)], b' ']),
                None => l.extend_from_slice(b"   "),
            }
            if i == 7 {
                l.push(b' ');
            }
        }
        l.push(b' ');
        for (i, &b) in chunk.iter().enumerate() {
            l.push(if (0x20..0x7f).contains(&b) { b } else { b'.' });
            if i == 7 && chunk.len() > 8 {
                l.push(b' ');
            }
        }
        // tshark trims trailing spaces (an ASCII column ending in a space byte too).
        while l.last() == Some(&b' ') {
            l.pop();
        }
        l.push(b'\n');
    }

    /// `len` bytes at `offset` that the capture does not have.
    pub fn gap(
        &mut self,
        out: &mut dyn Write,
        info: &FlowInfo,
        dir: Direction,
        offset: u64,
        len: u64,
    ) -> io::Result<()> {
        self.start(out, info)?;
        if self.ended {
            return Ok(());
        }
        let indent = if dir == Direction::ServerToClient { "\t" } else { "" };
        match self.format {
            FollowFormat::Raw => {
                if self.raw_gap_notes < MAX_RAW_GAP_NOTES {
                    let side = if indent.is_empty() { "client->server" } else { "server->client" };
                    eprintln!(
                        "flowtrail: follow {}: {side}: {len} bytes missing in capture at offset {offset}",
                        self.id
                    );
                }
                self.raw_gap_notes += 1;
                Ok(())
            }
            _ => writeln!(out, "{indent}[{len} bytes missing in capture file]"),
        }
    }

    /// One datagram (UDP); hex offsets count each direction's datagram bytes.
    pub fn datagram(&mut self, out: &mut dyn Write, info: &FlowInfo, dir: Direction, payload: &[u8]) -> io::Result<()> {
        let d = usize::from(dir == Direction::ServerToClient);
        let offset = self.datagram_offsets[d];
        self.datagram_offsets[d] += payload.len() as u64;
        self.data(out, info, dir, offset, payload)
    }

    /// The flow ended: the closing rule.
    pub fn end(&mut self, out: &mut dyn Write, info: &FlowInfo) -> io::Result<()> {
        self.start(out, info)?;
        if self.ended {
            return Ok(());
        }
        self.ended = true;
        if self.raw_gap_notes > MAX_RAW_GAP_NOTES {
            eprintln!("flowtrail: follow {}: {} more gaps not listed", self.id, self.raw_gap_notes - MAX_RAW_GAP_NOTES);
        }
        match self.format {
            FollowFormat::Raw => Ok(()),
            _ => writeln!(out, "{RULE}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Endpoint;
    use std::sync::Arc;

    fn info() -> FlowInfo {
        FlowInfo {
            id: 3,
            point_index: 0,
            point: Arc::from("lo"),
            proto: Proto::Tcp,
            client: Endpoint::new("127.0.0.1".parse().unwrap(), 40001),
            server: Endpoint::new("127.0.0.1".parse().unwrap(), 49673),
        }
    }

    #[test]
    fn ascii_layout_like_tshark_with_gap_markers() {
        let mut f = Follow::new(3, FollowFormat::Ascii);
        let mut out = Vec::new();
        let i = info();
        f.data(&mut out, &i, Direction::ClientToServer, 0, b"GET /\r\n\x1b[2J").unwrap();
        f.gap(&mut out, &i, Direction::ServerToClient, 0, 1448).unwrap();
        f.data(&mut out, &i, Direction::ServerToClient, 1448, b"ok\n").unwrap();
        f.end(&mut out, &i).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            format!(
                "\n{RULE}\nFollow: tcp,ascii\nFilter: flow eq 3\nPoint: lo\nNode 0: 127.0.0.1:40001\nNode 1: 127.0.0.1:49673\n\
                 11\nGET /.\n.[2J\n\t[1448 bytes missing in capture file]\n\t3\nok\n\n{RULE}\n"
            )
        );
    }

    #[test]
    fn hex_layout_like_tshark() {
        let mut f = Follow::new(3, FollowFormat::Hex);
        let mut out = Vec::new();
        let i = info();
        f.data(&mut out, &i, Direction::ServerToClient, 0x5c0, b"ft s1 c0001 o0000001472 ABCD").unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().skip(7).collect();
        assert_eq!(lines[0], "\t000005C0  66 74 20 73 31 20 63 30  30 30 31 20 6f 30 30 30  ft s1 c0 001 o000");
        assert_eq!(lines[1], "\t000005D0  30 30 30 31 34 37 32 20  41 42 43 44              0001472  ABCD");
    }
}
