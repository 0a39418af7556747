//! Terminal-safe text for names that come from outside: capture point labels (a pcapng
//! `if_name`, a file name, a namespace or interface name) and interface names printed for
//! LINUX_SLL2 headers.
//!
//! Invariant: [`text`] returns a string without C0/C1 control characters, DEL, zero-width or
//! bidirectional formatting characters, line/paragraph separators or private-use/special
//! code points; each of those becomes a visible `\xNN` (below U+0100) or `\u{NNNN}` escape.
//! Everything else (printable ASCII, printable non-ASCII) is kept, so ordinary labels are
//! unchanged and [`text`] borrows. Backslashes are not escaped: the result is for people to
//! read, not to be parsed back. Applying [`text`] to its own output changes nothing.
//!
//! Labels are cleaned once, when a point is registered ([`crate::capture::Points::add`]), so
//! every output that prints a label (packet lines, `--flows`, `--follow`, statistics, the
//! TUI, `-w` interface names) gets the clean form; printers apply [`text`] again where they
//! print names handed to them directly (cheap: a scan that borrows). JSON output escapes on
//! its own as well.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `s` with every unsafe character escaped (see the module docs). Borrows when nothing
/// needed escaping.
pub fn text(s: &str) -> Cow<'_, str> {
    if s.chars().all(safe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if safe_char(c) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

/// Appends `s`, escaped, to `out`.
pub fn push_text(out: &mut String, s: &str) {
    match text(s) {
        Cow::Borrowed(s) => out.push_str(s),
        Cow::Owned(s) => out.push_str(&s),
    }
}

/// True for characters that are safe to show on a terminal as they are.
pub fn safe_char(c: char) -> bool {
    match c {
        ' '..='~' => true,
        // C0, DEL, C1.
        '\0'..='\x1f' | '\x7f'..='\u{9f}' => false,
        // Zero-width and bidirectional formatting (can hide or reorder what is shown).
        '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}' => false,
        // Line/paragraph separators, private use, specials.
        '\u{2028}' | '\u{2029}' | '\u{e000}'..='\u{f8ff}' | '\u{fff0}'..='\u{ffff}' => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_could_talk_to_a_terminal() {
        assert!(matches!(text("sd_vm/br0"), Cow::Borrowed("sd_vm/br0")));
        assert_eq!(text("eth0\x1b]0;pwned\x07"), "eth0\\x1b]0;pwned\\x07");
        assert_eq!(text("a\nb\tc\r"), "a\\x0ab\\x09c\\x0d");
        assert_eq!(text("x\u{202e}y\u{9b}"), "x\\u{202e}y\\x9b");
        assert_eq!(text("café"), "café");
        let once = text("\x1b[2J\u{200b}").into_owned();
        assert_eq!(text(&once), once, "idempotent");
        assert!(once.chars().all(safe_char));
    }
}
