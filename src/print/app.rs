//! Application-layer summaries that tcpdump prints on the TCP/UDP line: the text-protocol
//! one-liners (`HTTP: GET / HTTP/1.1`, `SMTP: ...`, `FTP: ...`, `RTSP: ...`, `WHOIS: ...`,
//! tcpdump's `txtproto_print`) and the SSH banner (`SSH: SSH-2.0-...`).
//!
//! The port dispatch keeps tcpdump 4.99.3's precedence (telnet, smtp, whois, bgp, pptp,
//! redis, ssh, beep, openflow, ftp, http, rtsp, dns, ...), so a segment whose ports name
//! a protocol we do not decode (BGP, DNS over TCP, ...) prints nothing after `length N`,
//! rather than being claimed by a later entry.

use super::{Ctx, PResult, Trunc, get_u8};

/// HTTP request methods tcpdump recognises (WebDAV included).
const HTTP_CMDS: &[&str] = &[
    "GET",
    "PUT",
    "COPY",
    "HEAD",
    "LOCK",
    "MOVE",
    "POLL",
    "POST",
    "BCOPY",
    "BMOVE",
    "MKCOL",
    "TRACE",
    "LABEL",
    "MERGE",
    "DELETE",
    "SEARCH",
    "UNLOCK",
    "REPORT",
    "UPDATE",
    "NOTIFY",
    "BDELETE",
    "CONNECT",
    "OPTIONS",
    "CHECKIN",
    "PROPFIND",
    "CHECKOUT",
    "CCM_POST",
    "SUBSCRIBE",
    "PROPPATCH",
    "BPROPFIND",
    "BPROPPATCH",
    "UNCHECKOUT",
    "MKACTIVITY",
    "MKWORKSPACE",
    "UNSUBSCRIBE",
    "RPC_CONNECT",
    "VERSION-CONTROL",
    "BASELINE-CONTROL",
];

const RTSP_CMDS: &[&str] = &[
    "DESCRIBE",
    "ANNOUNCE",
    "GET_PARAMETER",
    "OPTIONS",
    "PAUSE",
    "PLAY",
    "RECORD",
    "REDIRECT",
    "SETUP",
    "SET_PARAMETER",
    "TEARDOWN",
];

/// The TCP payload after `length N` (tcpdump's port dispatch at the end of `tcp_print`).
/// `bp` holds the captured payload bytes, `length` the payload length on the wire.
pub fn tcp_payload(ctx: &mut Ctx<'_>, bp: &[u8], length: u32, sport: u16, dport: u16) -> PResult {
    let port = |p: u16| sport == p || dport == p;
    if port(23) {
        // telnet: prints only IAC option negotiation, which we don't decode; tcpdump reads
        // the first byte, so an uncaptured payload is a truncation.
        ctx.protocol = "telnet";
        get_u8(bp, 0)?;
    } else if port(25) {
        ctx.put(": ");
        txtproto(ctx, "smtp", bp, length, None)?;
    } else if port(43) {
        ctx.put(": ");
        txtproto(ctx, "whois", bp, length, None)?;
    } else if port(179) || port(1723) || port(6379) {
        // BGP, PPTP, RESP: not decoded
    } else if port(22) {
        ssh(ctx, bp, length)?;
    } else if port(10288) || port(6633) || port(6653) {
        // BEEP, OpenFlow: not decoded
    } else if port(21) {
        ctx.put(": ");
        txtproto(ctx, "ftp", bp, length, None)?;
    } else if port(80) || port(8080) {
        ctx.put(": ");
        txtproto(ctx, "http", bp, length, Some(HTTP_CMDS))?;
    } else if port(554) || port(8554) {
        ctx.put(": ");
        txtproto(ctx, "rtsp", bp, length, Some(RTSP_CMDS))?;
    } else if port(53) {
        super::dns::print(ctx, bp, length, true, false)?;
    }
    // MSDP, RPKI-RTR, LDP, NFS: not decoded.
    Ok(())
}

#[inline]
fn printable(c: u8) -> bool {
    (0x20..=0x7e).contains(&c)
}

/// tcpdump's `fetch_token`: the token starting at `idx` (into `tok`), and the index after
/// it and the blanks that follow it; `None` when there is no usable token.
fn fetch_token(bp: &[u8], mut idx: usize, len: usize, tok: &mut [u8; 129]) -> Option<(usize, usize)> {
    let mut toklen = 0usize;
    while idx < len {
        let c = *bp.get(idx)?;
        if c & 0x80 != 0 {
            return None;
        }
        if matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
            break;
        }
        if !printable(c) {
            return None;
        }
        if toklen + 2 > tok.len() {
            return None;
        }
        tok[toklen] = c;
        toklen += 1;
        idx += 1;
    }
    if toklen == 0 {
        return None;
    }
    while idx < len {
        let Some(&c) = bp.get(idx) else { break };
        if c == b'\r' || c == b'\n' || !printable(c) || (c != b' ' && c != b'\t') {
            break;
        }
        idx += 1;
    }
    Some((idx, toklen))
}

/// tcpdump's `print_txt_line`: prints the line at `idx` after `prefix` and returns the
/// index after its line ending; `Ok(None)` stops (binary data, a lone CR, or no line end,
/// in which case the partial line is printed with a truncation marker).
fn txt_line(ctx: &mut Ctx<'_>, prefix: &str, bp: &[u8], mut idx: usize, len: usize) -> PResult<Option<usize>> {
    let start = idx;
    while idx < len {
        let c = get_u8(bp, idx)?;
        if c == b'\n' {
            put_line(ctx, prefix, &bp[start..idx]);
            return Ok(Some(idx + 1));
        } else if c == b'\r' {
            if idx + 1 >= len {
                return Ok(None);
            }
            if get_u8(bp, idx + 1)? == b'\n' {
                put_line(ctx, prefix, &bp[start..idx]);
                return Ok(Some(idx + 2));
            }
            return Ok(None);
        } else if !printable(c) && c != b'\t' {
            return Ok(None);
        }
        idx += 1;
    }
    put_line(ctx, prefix, bp.get(start..idx).unwrap_or(&[]));
    ctx.print_trunc();
    Ok(None)
}

/// The line's bytes are printable ASCII or tab (checked by the caller).
fn put_line(ctx: &mut Ctx<'_>, prefix: &str, line: &[u8]) {
    ctx.put(prefix);
    super::push_ascii(ctx.out, line);
}

/// tcpdump's `txtproto_print` for protocol `proto` (printed in capitals). With a command
/// list, only request lines (a known command) and response lines (a 3-digit code as second
/// token) are shown; without one, the first line always is. `-v` prints every text line.
pub fn txtproto(ctx: &mut Ctx<'_>, proto: &'static str, bp: &[u8], length: u32, cmds: Option<&[&str]>) -> PResult {
    ctx.protocol = proto;
    let len = length as usize;
    let print_this = match cmds {
        None => true,
        Some(cmds) => {
            let mut tok = [0u8; 129];
            let mut yes = false;
            if let Some((idx, n)) = fetch_token(bp, 0, len, &mut tok) {
                if cmds.iter().any(|c| c.as_bytes().eq_ignore_ascii_case(&tok[..n])) {
                    yes = true;
                }
                // RESP_CODE_SECOND_TOKEN: the response code is the next token.
                if let Some((_, n2)) = fetch_token(bp, idx, len, &mut tok)
                    && n2 == 3
                    && tok[..3].iter().all(u8::is_ascii_digit)
                {
                    yes = true;
                }
            }
            yes
        }
    };
    for c in proto.bytes() {
        ctx.out.push(char::from(c.to_ascii_uppercase()));
    }
    if !print_this {
        return Ok(());
    }
    if ctx.vflag() > 0 {
        ctx.put(", length: ");
        ctx.put_u32(length);
        let mut idx = 0;
        while idx < len {
            match txt_line(ctx, "\n\t", bp, idx, len)? {
                Some(next) => idx = next,
                None => break,
            }
        }
    } else {
        txt_line(ctx, ": ", bp, 0, len)?;
    }
    Ok(())
}

/// tcpdump's `ssh_print`: the version banner (`SSH-...` up to its line end).
fn ssh(ctx: &mut Ctx<'_>, bp: &[u8], length: u32) -> PResult {
    ctx.protocol = "ssh";
    for (i, &want) in b"SSH-".iter().enumerate() {
        if get_u8(bp, i)? != want {
            return Ok(());
        }
    }
    let len = length as usize;
    let mut idx = 4usize;
    while idx < len {
        let c = get_u8(bp, idx)?;
        if c == b'\n' {
            break;
        } else if c == b'\r' {
            if idx + 1 >= len {
                return Ok(());
            }
            if get_u8(bp, idx + 1)? == b'\n' {
                break;
            }
            return Ok(());
        } else if !printable(c) {
            return Ok(());
        }
        idx += 1;
    }
    if idx >= len {
        // no line end in this segment
        return Ok(());
    }
    ctx.put(": SSH: ");
    super::push_ascii(ctx.out, bp.get(..idx).ok_or(Trunc)?);
    Ok(())
}
