//! `-x`/`-xx`, `-X`/`-XX` and `-A` dumps, formatted exactly like tcpdump's
//! `hex_and_ascii_print` / `hex_print` / `ascii_print`. Pure formatting into a `String`;
//! ASCII columns print only graphic ASCII (everything else as `.`), so payload bytes can
//! never reach a terminal raw. (`-A` keeps tab, space and newline, as tcpdump does, and
//! drops a CR that ends a line.)
//!
//! Callers pass exactly the bytes to dump (already bounded by the captured length); the
//! functions write hex through a lookup table, one line at a time, without allocating.

const HEX: &[u8; 16] = b"0123456789abcdef";
/// Hex part of a `-X` line: 8 groups of " xxxx", left-aligned in 40 columns.
const HEX_COLUMNS: usize = 40;

#[inline]
fn graphic(c: u8) -> u8 {
    if c > 0x20 && c <= 0x7e { c } else { b'.' }
}

/// Appends `ident` and the `0x%04x: ` line offset.
fn push_offset(out: &mut String, ident: &str, off: usize) {
    out.push_str(ident);
    out.push_str("0x");
    let mut digits = [0u8; 16];
    let mut n = 0;
    let mut v = off;
    loop {
        digits[n] = HEX[v & 0xf];
        n += 1;
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    for _ in n..4 {
        out.push('0');
    }
    for &d in digits[..n].iter().rev() {
        out.push(char::from(d));
    }
    out.push_str(": ");
}

/// Pushes bytes that are ASCII by construction.
#[inline]
fn push_line(out: &mut String, line: &[u8]) {
    crate::print::push_ascii(out, line);
}

/// tcpdump's `hex_and_ascii_print` (`-X`, and the default dump of undecoded payloads):
/// `IDENT0xOOOO:  xxxx xxxx ...  ascii` lines of 16 bytes.
pub fn hex_and_ascii(out: &mut String, ident: &str, data: &[u8]) {
    for (i, chunk) in data.chunks(16).enumerate() {
        push_offset(out, ident, i * 16);
        // " xxxx" per pair (" xx" for a trailing odd byte), padded to 40, two spaces, ascii.
        let mut line = [b' '; HEX_COLUMNS + 2 + 16];
        let mut p = 0;
        for pair in chunk.chunks(2) {
            p += 1; // leading space
            for &b in pair {
                line[p] = HEX[usize::from(b >> 4)];
                line[p + 1] = HEX[usize::from(b & 0xf)];
                p += 2;
            }
        }
        let mut q = HEX_COLUMNS + 2;
        for &b in chunk {
            line[q] = graphic(b);
            q += 1;
        }
        push_line(out, &line[..q]);
    }
}

/// tcpdump's `hex_print` (`-x`): `IDENT0xOOOO:  xxxx xxxx ...` lines of 16 bytes.
pub fn hex(out: &mut String, ident: &str, data: &[u8]) {
    for (i, chunk) in data.chunks(16).enumerate() {
        push_offset(out, ident, i * 16);
        let mut line = [b' '; 40];
        let mut p = 0;
        for pair in chunk.chunks(2) {
            p += 1;
            for &b in pair {
                line[p] = HEX[usize::from(b >> 4)];
                line[p + 1] = HEX[usize::from(b & 0xf)];
                p += 2;
            }
        }
        push_line(out, &line[..p]);
    }
}

/// tcpdump's `ascii_print` (`-A`): a newline, then the bytes with non-printables as `.`;
/// tab, space and newline stay, and a CR is dropped when a LF follows it or when it is one
/// of the last two bytes (tcpdump's exact rule).
pub fn ascii(out: &mut String, data: &[u8]) {
    out.push('\n');
    let mut buf = [0u8; 256];
    let mut n = 0;
    for (i, &c) in data.iter().enumerate() {
        let remaining = data.len() - i - 1;
        let emit = if c == b'\r' {
            if remaining > 1 && data.get(i + 1) != Some(&b'\n') { Some(b'.') } else { None }
        } else if c > 0x20 && c <= 0x7e || c == b'\t' || c == b' ' || c == b'\n' {
            Some(c)
        } else {
            Some(b'.')
        };
        if let Some(e) = emit {
            buf[n] = e;
            n += 1;
            if n == buf.len() {
                push_line(out, &buf);
                n = 0;
            }
        }
    }
    push_line(out, &buf[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"Hello, World!\n";

    #[test]
    fn hex_and_ascii_layout() {
        let mut s = String::new();
        hex_and_ascii(&mut s, "\n\t", MSG);
        assert_eq!(s, "\n\t0x0000:  4865 6c6c 6f2c 2057 6f72 6c64 210a       Hello,.World!.");
        let mut s = String::new();
        hex_and_ascii(&mut s, "\n\t", &[0u8; 17]);
        assert_eq!(
            s,
            "\n\t0x0000:  0000 0000 0000 0000 0000 0000 0000 0000  ................\
             \n\t0x0010:  00                                       ."
        );
    }

    #[test]
    fn hex_layout() {
        let mut s = String::new();
        hex(&mut s, "\n\t", MSG);
        assert_eq!(s, "\n\t0x0000:  4865 6c6c 6f2c 2057 6f72 6c64 210a");
        let mut s = String::new();
        hex(&mut s, "\n\t", &[1, 2, 3]);
        assert_eq!(s, "\n\t0x0000:  0102 03");
    }

    #[test]
    fn ascii_rules() {
        let mut s = String::new();
        ascii(&mut s, b"GET /\r\nx\x01\ty\rz\x1b[0m\r\n");
        assert_eq!(s, "\nGET /\nx.\ty.z.[0m\n");
    }

    #[test]
    fn big_offsets() {
        let mut s = String::new();
        push_offset(&mut s, "", 0x12345);
        assert_eq!(s, "0x12345: ");
    }
}
