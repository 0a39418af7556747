//! Terminal-safe text: everything drawn that came from packets passes through here.
//!
//! Invariant: the strings these functions return contain only printable ASCII (0x20..=0x7e)
//! plus, for [`text`], printable non-ASCII Unicode that is not a control, format or
//! bidirectional-override character. No ESC, no C0/C1 control, no DEL can reach the terminal,
//! so a payload cannot move the cursor, change colours, set the window title or talk to the
//! terminal in any other way.

/// Payload bytes for the stream's ASCII view: printable ASCII as is, everything else `.`
/// (as Wireshark's "Follow TCP stream" and tcpdump's `-X` columns show them).
pub fn payload_ascii(bytes: &[u8], out: &mut String) {
    out.extend(bytes.iter().map(|&b| if (0x20..=0x7e).contains(&b) { char::from(b) } else { '.' }));
}

/// A string that may hold anything (packet summaries, labels, process names): control and
/// invisible-formatting characters become `\xNN` / `\u{NNNN}` escapes; the rest is kept.
/// Borrows when nothing needed escaping (the common case). The crate's one escaping rule,
/// [`crate::escape::text`].
pub use crate::escape::text;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_never_carries_control_bytes() {
        let all: Vec<u8> = (0..=255).collect();
        let mut s = String::new();
        payload_ascii(&all, &mut s);
        assert_eq!(s.len(), 256);
        assert!(s.bytes().all(|b| (0x20..=0x7e).contains(&b)));
        assert!(s.contains("ABC"));
    }

    #[test]
    fn text_escapes_controls_and_keeps_the_rest() {
        assert!(matches!(text("IP 10.0.0.1.80 > x: Flags [S]"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(text("a\x1b[2Jb\r\n\x7f\u{9b}"), "a\\x1b[2Jb\\x0d\\x0a\\x7f\\x9b");
        assert_eq!(text("x\u{202e}y\u{200b}"), "x\\u{202e}y\\u{200b}");
        assert_eq!(text("caf\u{e9}"), "caf\u{e9}");
        for c in (0u32..0x3000).filter_map(char::from_u32) {
            let s = c.to_string();
            let e = text(&s);
            assert!(!e.chars().any(|c| c.is_control()), "{c:?} -> {e:?}");
        }
    }
}
