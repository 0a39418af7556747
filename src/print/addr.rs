//! Numeric address formatting exactly as tcpdump prints it (its `intoa`/`addrtostr6`, the
//! same text as glibc's `inet_ntop`).
//!
//! These are what `-n` prints, and what tcpdump prints in the places that never show names
//! (DNS A/AAAA records, router renumbering prefixes). Host names without `-n` go through
//! [`Ctx::put_ip`](super::Ctx::put_ip) and [`names`](super::names).

/// Appends an IPv4 address in dotted quad form.
pub fn push_ip4(out: &mut String, a: [u8; 4]) {
    for (i, &o) in a.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        super::push_u8(out, o);
    }
}

/// Appends an IPv6 address the way glibc's `inet_ntop(AF_INET6, ...)` writes it:
/// the longest run (first on ties) of two or more zero groups becomes `::`, and
/// `::a.b.c.d` / `::ffff:a.b.c.d` forms keep an embedded dotted quad.
pub fn push_ip6(out: &mut String, a: [u8; 16]) {
    let mut w = [0u16; 8];
    for (i, g) in w.iter_mut().enumerate() {
        *g = u16::from_be_bytes([a[2 * i], a[2 * i + 1]]);
    }
    // Longest run of zero groups; glibc takes the first of equal runs and ignores runs of 1.
    let (mut best_base, mut best_len) = (usize::MAX, 0usize);
    let mut i = 0;
    while i < 8 {
        if w[i] == 0 {
            let start = i;
            while i < 8 && w[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                best_base = start;
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    if best_len < 2 {
        best_base = usize::MAX;
    }
    let in_best = |i: usize| best_base != usize::MAX && i >= best_base && i < best_base + best_len;
    for i in 0..8 {
        if in_best(i) {
            if i == best_base {
                out.push(':');
            }
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        // Embedded IPv4: ::a.b.c.d (but not ::1 / ::) or ::ffff:a.b.c.d
        if i == 6 && best_base == 0 && (best_len == 6 || (best_len == 5 && w[5] == 0xffff)) {
            push_ip4(out, [a[12], a[13], a[14], a[15]]);
            return;
        }
        super::push_hex(out, u32::from(w[i]));
    }
    if best_base != usize::MAX && best_base + best_len == 8 {
        out.push(':');
    }
}

pub fn ip4_string(a: [u8; 4]) -> String {
    let mut s = String::with_capacity(15);
    push_ip4(&mut s, a);
    s
}

pub fn ip6_string(a: [u8; 16]) -> String {
    let mut s = String::with_capacity(39);
    push_ip6(&mut s, a);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn s(a: &str) -> String {
        ip6_string(a.parse::<Ipv6Addr>().unwrap().octets())
    }

    #[test]
    fn ip6_forms_match_glibc() {
        assert_eq!(s("::"), "::");
        assert_eq!(s("::1"), "::1");
        assert_eq!(s("fe80::1"), "fe80::1");
        assert_eq!(s("2001:db8:0:1:0:0:0:1"), "2001:db8:0:1::1");
        assert_eq!(s("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
        assert_eq!(s("2001:db8:1:0:1:1:1:1"), "2001:db8:1:0:1:1:1:1");
        assert_eq!(s("::ffff:1.2.3.4"), "::ffff:1.2.3.4");
        assert_eq!(s("::1.2.3.4"), "::1.2.3.4");
        assert_eq!(s("1::"), "1::");
        assert_eq!(s("ff02::1:ff00:1"), "ff02::1:ff00:1");
    }
}
