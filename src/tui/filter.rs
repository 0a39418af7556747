//! The `/` view filter: which paths the table shows (the capture goes on unfiltered).
//!
//! ```text
//! expr    := or
//! or      := and ( "or" and )*
//! and     := unary ( ["and"] unary )*          (juxtaposition means and)
//! unary   := ( "not" | "!" ) unary | "(" expr ")" | term
//! term    := "host" ADDR | "port" N | "net" ADDR/BITS | "point" LABEL
//!          | "proto" (tcp|udp|icmp|N) | "tcp" | "udp" | "icmp"
//! ```
//!
//! `&&`/`||` are accepted for `and`/`or`. A term matches a path when it matches any hop of
//! it (any observation's client or server, any capture point the path was seen at), so
//! `host 192.168.49.2` finds the path whose client only ever talked to 127.0.0.1. `point L`
//! matches a point labelled `L` or ending in `/L` (`point br0` matches `vm/br0`).
//!
//! Errors name the character column (0-based) where the problem starts, for the inline
//! marker under the input line.

use super::model::{Endpoint, PathRow, Proto, Snapshot};
use std::fmt;
use std::net::IpAddr;

/// A parse error and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    /// Character column in the input where the problem starts.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column + 1, self.message)
    }
}

/// A parsed filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathFilter {
    Host(IpAddr),
    Port(u16),
    Net { addr: IpAddr, bits: u8 },
    Point(String),
    Proto(Proto),
    Not(Box<PathFilter>),
    And(Box<PathFilter>, Box<PathFilter>),
    Or(Box<PathFilter>, Box<PathFilter>),
}

#[derive(Clone, Debug)]
struct Token<'a> {
    text: &'a str,
    column: usize,
}

fn tokens<'a>(input: &'a str) -> Vec<Token<'a>> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    // Byte index -> character column.
    let mut col_of = vec![0usize; input.len() + 1];
    let mut chars = 0;
    for (col, (i, c)) in input.char_indices().enumerate() {
        col_of[i..i + c.len_utf8()].fill(col);
        chars = col + 1;
    }
    col_of[input.len()] = chars;
    let push = |out: &mut Vec<Token<'a>>, s: usize, e: usize| {
        if s < e {
            out.push(Token { text: &input[s..e], column: col_of[s] });
        }
    };
    for (i, c) in input.char_indices() {
        if c.is_whitespace() || c == '(' || c == ')' || c == '!' {
            if let Some(s) = start.take() {
                push(&mut out, s, i);
            }
            if !c.is_whitespace() {
                push(&mut out, i, i + c.len_utf8());
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        push(&mut out, s, input.len());
    }
    out
}

struct Parser<'a> {
    toks: Vec<Token<'a>>,
    pos: usize,
    end: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&Token<'a>> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Token<'a>> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn err<T>(&self, column: usize, message: impl Into<String>) -> Result<T, FilterError> {
        Err(FilterError { column, message: message.into() })
    }

    fn or(&mut self) -> Result<PathFilter, FilterError> {
        let mut left = self.and()?;
        while let Some(t) = self.peek() {
            if t.text == "or" || t.text == "||" {
                self.pos += 1;
                let right = self.and()?;
                left = PathFilter::Or(Box::new(left), Box::new(right));
            } else {
                break;
            }
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<PathFilter, FilterError> {
        let mut left = self.unary()?;
        while let Some(t) = self.peek() {
            match t.text {
                "and" | "&&" => {
                    self.pos += 1;
                }
                "or" | "||" | ")" => break,
                _ => {}
            }
            let right = self.unary()?;
            left = PathFilter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<PathFilter, FilterError> {
        let Some(t) = self.next() else {
            return self.err(self.end, "expected a term: host, port, net, point, proto, tcp, udp, icmp");
        };
        match t.text {
            "not" | "!" => Ok(PathFilter::Not(Box::new(self.unary()?))),
            "(" => {
                let e = self.or()?;
                match self.next() {
                    Some(c) if c.text == ")" => Ok(e),
                    Some(c) => self.err(c.column, format!("expected ')', found '{}'", c.text)),
                    None => self.err(self.end, "missing ')'"),
                }
            }
            "host" => {
                let v = self.value(&t, "an address")?;
                match v.text.parse::<IpAddr>() {
                    Ok(a) => Ok(PathFilter::Host(a)),
                    Err(_) => self.err(v.column, format!("'{}' is not an IP address", v.text)),
                }
            }
            "port" => {
                let v = self.value(&t, "a port number")?;
                match v.text.parse::<u16>() {
                    Ok(p) => Ok(PathFilter::Port(p)),
                    Err(_) => self.err(v.column, format!("'{}' is not a port (0-65535)", v.text)),
                }
            }
            "net" => {
                let v = self.value(&t, "ADDR/BITS")?;
                let (a, b) = v.text.split_once('/').unwrap_or((v.text, ""));
                let Ok(addr) = a.parse::<IpAddr>() else {
                    return self.err(v.column, format!("'{a}' is not an IP address"));
                };
                let max = if addr.is_ipv4() { 32 } else { 128 };
                let bits = if b.is_empty() {
                    max
                } else {
                    match b.parse::<u8>() {
                        Ok(n) if n <= max => n,
                        _ => return self.err(v.column + a.chars().count() + 1, format!("prefix length must be 0-{max}")),
                    }
                };
                Ok(PathFilter::Net { addr, bits })
            }
            "point" => {
                let v = self.value(&t, "a capture point label")?;
                Ok(PathFilter::Point(v.text.to_string()))
            }
            "proto" => {
                let v = self.value(&t, "tcp, udp, icmp or a number")?;
                match proto_name(v.text) {
                    Some(p) => Ok(PathFilter::Proto(p)),
                    None => self.err(v.column, format!("unknown protocol '{}'", v.text)),
                }
            }
            "tcp" | "udp" | "icmp" | "icmp6" => Ok(PathFilter::Proto(proto_name(t.text).unwrap_or(Proto::Tcp))),
            ")" => self.err(t.column, "unbalanced ')'"),
            "and" | "or" | "&&" | "||" => self.err(t.column, format!("'{}' needs a term before it", t.text)),
            other => self.err(
                t.column,
                format!("unknown term '{other}' (use host, port, net, point, proto, tcp, udp, icmp)"),
            ),
        }
    }

    /// The word after a keyword.
    fn value(&mut self, keyword: &Token<'a>, what: &str) -> Result<Token<'a>, FilterError> {
        match self.next() {
            Some(v) if !matches!(v.text, "(" | ")" | "!" | "and" | "or" | "not") => Ok(v),
            Some(v) => self.err(v.column, format!("'{}' needs {what}", keyword.text)),
            None => self.err(self.end, format!("'{}' needs {what}", keyword.text)),
        }
    }
}

fn proto_name(s: &str) -> Option<Proto> {
    match s {
        "tcp" | "6" => Some(Proto::Tcp),
        "udp" | "17" => Some(Proto::Udp),
        "icmp" | "icmp6" | "1" | "58" => Some(Proto::Icmp),
        n => n.parse::<u8>().ok().map(Proto::Other),
    }
}

impl PathFilter {
    /// Parses filter text; empty text (only spaces) is `Ok(None)`: no filter.
    pub fn parse(input: &str) -> Result<Option<PathFilter>, FilterError> {
        let toks = tokens(input);
        if toks.is_empty() {
            return Ok(None);
        }
        let mut p = Parser { toks, pos: 0, end: input.chars().count() };
        let e = p.or()?;
        if let Some(t) = p.peek() {
            return p.err(t.column, format!("unexpected '{}'", t.text));
        }
        Ok(Some(e))
    }

    /// Does the path match? (`snapshot` gives point labels.)
    pub fn matches(&self, row: &PathRow, snapshot: &Snapshot) -> bool {
        let any_end = |f: &dyn Fn(&Endpoint) -> bool| {
            f(&row.client) || f(&row.server) || row.hops.iter().any(|h| f(&h.client) || f(&h.server))
        };
        match self {
            PathFilter::Host(a) => any_end(&|e| e.ip == *a),
            PathFilter::Port(p) => any_end(&|e| e.port == *p) && matches!(row.proto, Proto::Tcp | Proto::Udp),
            PathFilter::Net { addr, bits } => any_end(&|e| in_net(e.ip, *addr, *bits)),
            PathFilter::Point(l) => row.hops.iter().any(|h| {
                let label = snapshot.point_label(h.point);
                label == l || label.strip_suffix(l.as_str()).is_some_and(|p| p.ends_with('/'))
            }),
            PathFilter::Proto(p) => row.proto == *p,
            PathFilter::Not(e) => !e.matches(row, snapshot),
            PathFilter::And(a, b) => a.matches(row, snapshot) && b.matches(row, snapshot),
            PathFilter::Or(a, b) => a.matches(row, snapshot) || b.matches(row, snapshot),
        }
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - u32::from(bits.min(32))) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits.min(128))) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Timestamp;
    use crate::tui::model::{Hop, PointStatus};
    use std::sync::Arc;

    fn ep(s: &str) -> Endpoint {
        let (ip, port) = s.rsplit_once(':').unwrap();
        Endpoint { ip: ip.trim_matches(['[', ']']).parse().unwrap(), port: port.parse().unwrap() }
    }

    fn row(client: &str, server: &str, proto: Proto, hops: &[(u32, &str, &str)]) -> PathRow {
        PathRow {
            id: 1,
            proto,
            client: ep(client),
            server: ep(server),
            legs: 1,
            hops: hops.iter().map(|&(p, c, s)| Hop { point: p, client: ep(c), server: ep(s) }).collect(),
            packets: [1, 1],
            bytes: [0, 0],
            state: Arc::from("SF"),
            history: Arc::from("ShADadFf"),
            first: Timestamp::default(),
            last: Timestamp::default(),
            process: None,
        }
    }

    fn snap() -> Snapshot {
        Snapshot {
            points: ["lo", "vm/br0"]
                .iter()
                .map(|l| PointStatus { label: Arc::from(*l), packets: 0, dropped: None })
                .collect(),
            ..Snapshot::default()
        }
    }

    fn m(f: &str, r: &PathRow) -> bool {
        PathFilter::parse(f).unwrap().unwrap().matches(r, &snap())
    }

    #[test]
    fn terms_match_any_hop() {
        let r = row(
            "127.0.0.1:40001",
            "192.168.49.2:8443",
            Proto::Tcp,
            &[(0, "127.0.0.1:40001", "127.0.0.1:49673"), (1, "192.168.49.1:39658", "192.168.49.2:8443")],
        );
        assert!(m("host 127.0.0.1", &r));
        assert!(m("host 192.168.49.1", &r));
        assert!(!m("host 10.0.0.1", &r));
        assert!(m("port 49673", &r));
        assert!(m("net 192.168.49.0/24", &r));
        assert!(!m("net 10.0.0.0/8", &r));
        assert!(m("point br0", &r));
        assert!(m("point vm/br0", &r));
        assert!(!m("point r0", &r));
        assert!(m("tcp and port 8443", &r));
        assert!(m("tcp port 8443", &r));
        assert!(!m("udp or icmp", &r));
        assert!(m("not udp", &r));
        assert!(m("!(udp || port 1)", &r));
        assert!(m("proto 6 && (host 10.9.9.9 or point lo)", &r));
        let v6 = row("[fd00:65::1]:40020", "[fd00:65::2]:49700", Proto::Tcp, &[]);
        assert!(m("net fd00:65::/64", &v6));
        assert!(m("host fd00:65::2", &v6));
        assert!(m("net 0.0.0.0/0", &r));
        assert!(!m("net 0.0.0.0/0", &v6));
    }

    #[test]
    fn empty_is_no_filter() {
        assert_eq!(PathFilter::parse("   "), Ok(None));
    }

    #[test]
    fn errors_point_at_the_problem() {
        let e = |s: &str| PathFilter::parse(s).unwrap_err();
        assert_eq!(e("host"), FilterError { column: 4, message: "'host' needs an address".into() });
        assert_eq!(e("host 1.2.3.x").column, 5);
        assert_eq!(e("port 70000").message, "'70000' is not a port (0-65535)");
        assert_eq!(e("net 10.0.0.0/33"), FilterError { column: 13, message: "prefix length must be 0-32".into() });
        assert_eq!(e("tcp and").column, 7);
        assert_eq!(e("(tcp").message, "missing ')'");
        assert_eq!(e("tcp)").column, 3);
        assert_eq!(e("bogus").column, 0);
        assert_eq!(e("or tcp").column, 0);
        assert_eq!(e("proto sctp").message, "unknown protocol 'sctp'");
        assert_eq!(e("hóst 1").column, 0);
        assert_eq!(e("tcp and hóst").column, 8);
        assert!(e("port and").message.contains("needs a port"));
    }

    #[test]
    fn any_input_parses_or_errors_without_panicking() {
        let alphabet = ["host", "port", "net", "(", ")", "!", "and", "or", "not", "1.2.3.4", "80", "x/", "/", "é", " ", "tcp"];
        let mut x: u32 = 7;
        for _ in 0..5000 {
            let mut s = String::new();
            for _ in 0..(x % 7) {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                s.push_str(alphabet[(x >> 16) as usize % alphabet.len()]);
                s.push(' ');
            }
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let _ = PathFilter::parse(&s);
        }
    }
}
