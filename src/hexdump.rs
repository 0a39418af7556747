//! `-x`/`-xx`, `-X`/`-XX` and `-A` dumps, formatted exactly like tcpdump's
//! `hex_and_ascii_print` / `hex_print` / `ascii_print`. Pure formatting into a `String`;
//! ASCII columns print only graphic ASCII (everything else as `.`), so payload bytes can
//! never reach a terminal raw. (`-A` keeps tab, space and newline, as tcpdump does, and
//! drops a CR that ends a line.)
//!
//! Callers pass exactly the bytes to dump (already bounded by the captured length); the
//! functions write hex through a lookup table into one scratch buffer per dump, which
//! reaches the text with a single UTF-8 check.

const HEX: &[u8; 16] = b"0123456789abcdef";
/// The two hex digits of every byte value.
const HEX_PAIRS: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    t
};
/// Hex part of a `-X` line: 8 groups of " xxxx", left-aligned in 40 columns.
const HEX_COLUMNS: usize = 40;

#[inline]
fn graphic(c: u8) -> u8 {
    if c > 0x20 && c <= 0x7e { c } else { b'.' }
}

/// `0xOOOO: ` (at least four hex digits) for a line at byte offset `off`.
#[inline]
fn offset_text(off: usize) -> ([u8; 20], usize) {
    let mut t = [b' '; 20];
    t[0] = b'0';
    t[1] = b'x';
    let digits = ((usize::BITS - (off | 1).leading_zeros()).div_ceil(4) as usize).clamp(4, 16);
    for i in 0..digits {
        t[2 + i] = HEX[(off >> (4 * (digits - 1 - i))) & 0xf];
    }
    t[2 + digits] = b':';
    (t, 4 + digits)
}

/// The ` xxxx xxxx ...` groups of up to 16 bytes, left-aligned in [`HEX_COLUMNS`] blank
/// columns; returns them and the end of the last hex digit.
#[inline]
fn hex_columns(chunk: &[u8]) -> ([u8; HEX_COLUMNS], usize) {
    let mut h = [b' '; HEX_COLUMNS];
    if let Ok(c) = <&[u8; 16]>::try_from(chunk) {
        // A full line: fixed positions.
        for g in 0..8 {
            let [a1, a2] = HEX_PAIRS[usize::from(c[2 * g])];
            let [b1, b2] = HEX_PAIRS[usize::from(c[2 * g + 1])];
            h[5 * g + 1..5 * g + 5].copy_from_slice(&[a1, a2, b1, b2]);
        }
        return (h, HEX_COLUMNS);
    }
    let mut end = 0;
    for (k, &b) in chunk.iter().enumerate().take(16) {
        let p = 1 + (k / 2) * 5 + (k % 2) * 2;
        h[p..p + 2].copy_from_slice(&HEX_PAIRS[usize::from(b)]);
        end = p + 2;
    }
    (h, end)
}

/// Lines go to a scratch buffer first and reach the text with one UTF-8 check per dump
/// (checking each line was the biggest cost of `-X`).
fn dump_lines(out: &mut String, ident: &str, data: &[u8], ascii: bool) {
    let lines = data.len().div_ceil(16);
    let mut buf: Vec<u8> = Vec::with_capacity(lines * (ident.len() + 8 + HEX_COLUMNS + 2 + 16));
    for (i, chunk) in data.chunks(16).enumerate() {
        buf.extend_from_slice(ident.as_bytes());
        let (o, n) = offset_text(i * 16);
        buf.extend_from_slice(&o[..n]);
        let (h, end) = hex_columns(chunk);
        if ascii {
            // Hex padded to 40 columns, two spaces, then one graphic-or-dot per byte.
            let mut a = [b' '; 2 + 16];
            for (k, &b) in chunk.iter().enumerate().take(16) {
                a[2 + k] = graphic(b);
            }
            buf.extend_from_slice(&h);
            buf.extend_from_slice(&a[..2 + chunk.len().min(16)]);
        } else {
            buf.extend_from_slice(&h[..end]);
        }
    }
    crate::print::push_ascii(out, &buf);
}

/// tcpdump's `hex_and_ascii_print` (`-X`, and the default dump of undecoded payloads):
/// `IDENT0xOOOO:  xxxx xxxx ...  ascii` lines of 16 bytes.
pub fn hex_and_ascii(out: &mut String, ident: &str, data: &[u8]) {
    dump_lines(out, ident, data, true);
}

/// tcpdump's `hex_print` (`-x`): `IDENT0xOOOO:  xxxx xxxx ...` lines of 16 bytes.
pub fn hex(out: &mut String, ident: &str, data: &[u8]) {
    dump_lines(out, ident, data, false);
}

/// Pushes bytes that are ASCII by construction.
#[inline]
fn push_line(out: &mut String, line: &[u8]) {
    crate::print::push_ascii(out, line);
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
    fn big_offsets_and_blocks() {
        // More lines than one block holds; offsets past 0xffff widen.
        let data: Vec<u8> = (0..0x12345u32).map(|i| i as u8).collect();
        let mut s = String::new();
        hex_and_ascii(&mut s, "\n\t", &data);
        let lines: Vec<&str> = s.split('\n').skip(1).collect();
        assert_eq!(lines.len(), 0x1235);
        assert_eq!(lines[1], "\t0x0010:  1011 1213 1415 1617 1819 1a1b 1c1d 1e1f  ................");
        assert_eq!(lines[0x1000], "\t0x10000:  0001 0203 0405 0607 0809 0a0b 0c0d 0e0f  ................");
        assert_eq!(lines[0x1234], format!("\t0x12340:  4041 4243 44{}@ABCD", " ".repeat(29)));
        let mut x = String::new();
        hex(&mut x, "\n\t", &data);
        assert!(x.ends_with("\n\t0x12340:  4041 4243 44"));
        // Any ident, UTF-8 included, comes out whole.
        let mut y = String::new();
        hex(&mut y, "\n\t\u{e9}", &[1, 2, 3]);
        assert_eq!(y, "\n\t\u{e9}0x0000:  0102 03");
    }
}
