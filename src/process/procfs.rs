//! Pure parsers for the /proc formats process attribution reads. Total: any input gives a
//! value or `None`/a count of bad lines, never a panic.
//!
//! ```text
//! /proc/net/tcp, tcp6, udp, udp6 (one header line, then one line per socket):
//!   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ...
//!    0: 0100007F:C209 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 123456 ...
//! /proc/PID/fd/N -> "socket:[123456]"       /proc/PID/ns/net -> "net:[4026531840]"
//! /proc/PID/cmdline: arguments separated (and usually ended) by NUL
//! ```
//!
//! Addresses are the kernel's `%08X` of each 32-bit word of the address as stored in
//! memory, i.e. in the byte order of the machine that wrote the file: they are decoded with
//! the native byte order (`127.0.0.1` reads `0100007F` on little-endian machines). Ports are
//! plain hexadecimal.

use super::{SockProto, SockState, SocketRow};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Parses a whole `/proc/net/{tcp,tcp6,udp,udp6}` text. Returns the rows and the number of
/// lines (other than the header) that did not parse.
pub fn parse_net_table(text: &str, proto: SockProto) -> (Vec<SocketRow>, usize) {
    let mut rows = Vec::new();
    let mut bad = 0;
    for line in text.lines() {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with("sl ") {
            continue;
        }
        match parse_net_line(t, proto) {
            Some(r) => rows.push(r),
            None => bad += 1,
        }
    }
    (rows, bad)
}

/// Parses one socket line.
pub fn parse_net_line(line: &str, proto: SockProto) -> Option<SocketRow> {
    let f: Vec<&str> = line.split_whitespace().take(10).collect();
    if f.len() < 10 || !f[0].ends_with(':') {
        return None;
    }
    let local = parse_endpoint(f[1])?;
    let remote = parse_endpoint(f[2])?;
    if local.is_ipv4() != remote.is_ipv4() {
        return None;
    }
    let state = u8::from_str_radix(f[3], 16).ok()?;
    let uid = f[7].parse().ok()?;
    let inode = f[9].parse().ok()?;
    Some(SocketRow { proto, local, remote, state: SockState::from_number(state), uid, inode })
}

/// `HEXADDR:HEXPORT` with 8 (IPv4) or 32 (IPv6) address digits.
pub fn parse_endpoint(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    if port.is_empty() || port.len() > 4 || !port.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let h = addr.get(i * 8..i * 8 + 8)?;
        if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        Some(u32::from_str_radix(h, 16).ok()?.to_ne_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// `socket:[INODE]` -> INODE (other link targets -> `None`).
pub fn parse_socket_link(target: &str) -> Option<u64> {
    target.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// The lowest descriptor number not in `fds` (the one the kernel hands out next).
pub fn lowest_free(mut fds: Vec<u32>) -> u32 {
    fds.sort_unstable();
    fds.dedup();
    fds.iter().zip(0u32..).find(|&(&fd, i)| fd != i).map_or(fds.len() as u32, |(_, i)| i)
}

/// `net:[INODE]` -> INODE.
pub fn parse_netns_link(target: &str) -> Option<u64> {
    target.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

/// NUL-separated arguments (lossy UTF-8); a trailing NUL does not make an empty argument.
pub fn parse_cmdline(raw: &[u8]) -> Vec<String> {
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

/// `/proc/PID/comm` without its newline.
pub fn parse_comm(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw.strip_suffix(b"\n").unwrap_or(raw)).into_owned()
}

/// Encodes an endpoint the way the kernel writes it (for fixtures and tests).
pub fn format_endpoint(a: SocketAddr) -> String {
    let words: Vec<[u8; 4]> = match a.ip() {
        IpAddr::V4(v) => vec![v.octets()],
        IpAddr::V6(v) => v.octets().chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]).collect(),
    };
    let hex: String = words.iter().map(|w| format!("{:08X}", u32::from_ne_bytes(*w))).collect();
    format!("{hex}:{:04X}", a.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:C209 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 40965 1 0000000000000000 100 0 0 10 0
   1: 0100007F:C209 0100007F:9A2C 01 00000000:00000000 00:00000000 00000000     0        0 41001 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:9A2E 0100007F:C209 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
";

    #[test]
    fn tcp_lines() {
        let (rows, bad) = parse_net_table(TCP, SockProto::Tcp);
        assert_eq!(bad, 0);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].local, "127.0.0.1:49673".parse().unwrap());
        assert_eq!(rows[0].remote, "0.0.0.0:0".parse().unwrap());
        assert_eq!(rows[0].state, SockState::Listen);
        assert_eq!((rows[0].uid, rows[0].inode), (0, 40965));
        assert_eq!(rows[1].remote, "127.0.0.1:39468".parse().unwrap());
        assert_eq!(rows[1].state, SockState::Established);
        assert_eq!((rows[2].state, rows[2].inode), (SockState::TimeWait, 0));
    }

    #[test]
    fn tcp6_and_mapped_addresses() {
        let line = "   0: 0000000000000000FFFF00000100007F:C209 0000000000000000FFFF00000100007F:9A2C 01 00000000:00000000 00:00000000 00000000  1000        0 777 1";
        let r = parse_net_line(line.trim_start(), SockProto::Tcp).unwrap();
        assert_eq!(r.local, "[::ffff:127.0.0.1]:49673".parse().unwrap());
        assert_eq!(r.uid, 1000);
        let fd = "fd00:65::2".parse::<Ipv6Addr>().unwrap();
        let a = SocketAddr::new(IpAddr::V6(fd), 49700);
        assert_eq!(parse_endpoint(&format_endpoint(a)), Some(a));
        let v4: SocketAddr = "192.168.65.1:38892".parse().unwrap();
        assert_eq!(parse_endpoint(&format_endpoint(v4)), Some(v4));
    }

    #[test]
    fn links_cmdline_comm() {
        assert_eq!(parse_socket_link("socket:[40965]"), Some(40965));
        for bad in ["socket:[]", "socket:[x]", "pipe:[1]", "/dev/null", "socket:[1", "anon_inode:[eventpoll]"] {
            assert_eq!(parse_socket_link(bad), None, "{bad}");
        }
        assert_eq!(parse_netns_link("net:[4026531840]"), Some(4026531840));
        assert_eq!(parse_netns_link("mnt:[4026531840]"), None);
        assert_eq!(lowest_free(vec![]), 0);
        assert_eq!(lowest_free(vec![2, 0, 1, 1]), 3);
        assert_eq!(lowest_free(vec![0, 1, 2, 4, 5]), 3);
        assert_eq!(lowest_free(vec![3, 4]), 0);
        assert_eq!(parse_cmdline(b"socat\0-d\0TCP4-LISTEN:1\0"), ["socat", "-d", "TCP4-LISTEN:1"]);
        assert_eq!(parse_cmdline(b"nginx: worker process"), ["nginx: worker process"]);
        assert!(parse_cmdline(b"").is_empty() && parse_cmdline(b"\0").is_empty());
        assert_eq!(parse_cmdline(b"a\0\0b\0"), ["a", "", "b"]);
        assert_eq!(parse_comm(b"socat\n"), "socat");
        assert_eq!(parse_comm(b"\xffx"), "\u{fffd}x");
    }

    #[test]
    fn bad_lines_are_counted() {
        let text = "  sl  local\n junk\n 0: 0100007F:C209 00000000:0000 0A x\n 0: 0100007G:C209 00000000:0000 0A 0:0 0:0 0 0 0 1\n 0: 0100007F:C209 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 1\n 0: 0100007F:12345 00000000:0000 0A 0:0 0:0 0 0 0 1\n 0: 0100007F:C209 00000000:0000 0A 0:0 0:0 0 0 0 1\n";
        let (rows, bad) = parse_net_table(text, SockProto::Udp);
        assert_eq!((rows.len(), bad), (1, 5));
        assert_eq!(rows[0].proto, SockProto::Udp);
        for e in ["", ":", "0100007F:", "0100007F", "ÿÿÿÿÿÿÿÿ:0000", "0100007F:+1", "+100007F:0001"] {
            assert_eq!(parse_endpoint(e), None, "{e}");
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,300}") {
            let _ = parse_net_table(&s, SockProto::Tcp);
            let _ = parse_socket_link(&s);
            let _ = parse_netns_link(&s);
            let _ = parse_cmdline(s.as_bytes());
        }
        #[test]
        fn tableish_text_never_panics(s in "([ 0-9A-F:]{0,40}\n){0,8}") {
            let _ = parse_net_table(&s, SockProto::Udp);
        }
    }
}
