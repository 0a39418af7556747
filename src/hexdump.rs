//! `-x`/`-xx`, `-X`/`-XX` and `-A` dumps, formatted exactly like tcpdump's
//! `hex_and_ascii_print` / `hex_print` / `ascii_print`. Pure formatting into a `String`;
//! ASCII columns print only graphic ASCII (everything else as `.`), so payload bytes can
//! never reach a terminal raw.
