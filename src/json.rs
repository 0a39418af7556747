//! JSON text that every JSON output shares: one line per value through one writer
//! ([`line()`]), and the few values written as strings by hand rather than through serde's
//! `Display` path ([`addr`], [`addr_opt`], [`display`]). The record shapes live with their
//! outputs (`report::json` for `--no-join` records, `join::model` for joined paths); the
//! flow table's endpoints ([`crate::flow::Endpoint`]) serialize through [`addr`] as well, so
//! an address reads the same in every output.

use serde::{Serialize, Serializer};
use std::fmt::Display;
use std::net::SocketAddr;

/// Appends `value` as one JSON line (with the newline) to `out`: every `--flows=json` line
/// (a record, a joined path). serde_json writes each comma, colon and quote on its own; into
/// a `Vec<u8>` each of those was a `memcpy` call (`Bytes` pushes them).
pub fn line<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> std::io::Result<()> {
    serde_json::to_writer(Bytes(out), value).map_err(std::io::Error::other)?;
    out.push(b'\n');
    Ok(())
}

/// A `Vec<u8>` writer that pushes single bytes instead of copying them.
struct Bytes<'a>(&'a mut Vec<u8>);

impl std::io::Write for Bytes<'_> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match buf {
            [b] => self.0.push(*b),
            _ => self.0.extend_from_slice(buf),
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Up to 96 bytes of text on the stack.
struct StackStr {
    buf: [u8; 96],
    len: usize,
}

impl std::fmt::Write for StackStr {
    fn write_str(&mut self, x: &str) -> std::fmt::Result {
        let end = self.len + x.len();
        let Some(dst) = self.buf.get_mut(self.len..end) else {
            return Err(std::fmt::Error);
        };
        dst.copy_from_slice(x.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Serializes through `Display` (addresses: `IP:PORT`, `[IPv6]:PORT`; tuples), formatted on
/// the stack and handed over as one string (serde_json's `collect_str` escapes every
/// fragment separately, which costs more than the formatting).
pub fn display<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    use std::fmt::Write;
    let mut b = StackStr {
        buf: [0; 96],
        len: 0,
    };
    match write!(b, "{v}") {
        Ok(()) => s.serialize_str(std::str::from_utf8(&b.buf[..b.len]).unwrap_or_default()),
        Err(_) => s.collect_str(v),
    }
}

/// A socket address as `Display` writes it (`IP:PORT`, `[IPv6]:PORT`), for the joiner's model
/// and every flow record's endpoints ([`crate::flow::Endpoint`]). IPv4 is written digit by
/// digit: through `fmt` an address costs as much as the rest of an observation's fields,
/// and there are four per line.
pub fn addr<S: Serializer>(a: &SocketAddr, s: S) -> Result<S::Ok, S::Error> {
    let SocketAddr::V4(v4) = a else {
        return display(a, s);
    };
    // "255.255.255.255:65535"
    let mut b = [0u8; 21];
    let mut n = 0;
    // Octets straight from their digits (a copy of itoa's text was a memcpy call each).
    for (i, o) in v4.ip().octets().into_iter().enumerate() {
        if i > 0 {
            b[n] = b'.';
            n += 1;
        }
        if o >= 100 {
            b[n] = b'0' + o / 100;
            n += 1;
        }
        if o >= 10 {
            b[n] = b'0' + o / 10 % 10;
            n += 1;
        }
        b[n] = b'0' + o % 10;
        n += 1;
    }
    b[n] = b':';
    n += 1;
    let mut digits = itoa::Buffer::new();
    let port = digits.format(v4.port()).as_bytes();
    b[n..n + port.len()].copy_from_slice(port);
    n += port.len();
    s.serialize_str(std::str::from_utf8(&b[..n]).unwrap_or_default())
}

pub fn addr_opt<S: Serializer>(v: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => addr(v, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON text of an address is `Display`'s, for every octet width and port width.
    #[test]
    fn addresses_as_display_writes_them() {
        struct A(SocketAddr);
        impl Serialize for A {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                addr(&self.0, s)
            }
        }
        let mut n = 0;
        for octet in [0u8, 7, 9, 10, 42, 99, 100, 199, 200, 255] {
            for port in [0u16, 5, 10, 99, 100, 999, 1000, 9999, 10000, 65535] {
                for a in [
                    SocketAddr::from(([octet, 255 - octet, 1, octet / 3], port)),
                    SocketAddr::from(([0xfd00, 0, 0, 0, 0, 0, u16::from(octet), 1], port)),
                ] {
                    assert_eq!(serde_json::to_string(&A(a)).unwrap(), format!("\"{a}\""));
                    n += 1;
                }
            }
        }
        assert_eq!(n, 200);
    }
}
