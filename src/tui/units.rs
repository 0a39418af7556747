//! How the panes write quantities: durations, ages, byte and packet counts, times of day.
//! Pure functions of their arguments (no clock), so snapshot tests are stable.

use crate::capture::Timestamp;
use chrono::{Local, TimeZone, Utc};

/// A duration in nanoseconds, short: `830ns`, `12.3µs`, `4.56ms`, `1.234s`, `12m05s`, `3h04m`.
pub fn duration(ns: i64) -> String {
    let (sign, ns) = if ns < 0 { ("-", ns.unsigned_abs()) } else { ("", ns as u64) };
    let s = if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        format!("{:.1}µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2}ms", ns as f64 / 1e6)
    } else if ns < 60_000_000_000 {
        format!("{:.3}s", ns as f64 / 1e9)
    } else if ns < 3_600_000_000_000 {
        let s = ns / 1_000_000_000;
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        let m = ns / 60_000_000_000;
        format!("{}h{:02}m", m / 60, m % 60)
    };
    format!("{sign}{s}")
}

/// A count, exact below a million, then `1.23M`, `4.56G` (decimal units).
pub fn count(n: u64) -> String {
    if n < 1_000_000 {
        n.to_string()
    } else if n < 1_000_000_000 {
        format!("{:.2}M", n as f64 / 1e6)
    } else {
        format!("{:.2}G", n as f64 / 1e9)
    }
}

/// Bytes, exact below 100 000, then `123.4k`, `12.3M`, `1.2G` (decimal units).
pub fn bytes(n: u64) -> String {
    if n < 100_000 {
        n.to_string()
    } else if n < 10_000_000 {
        format!("{:.1}k", n as f64 / 1e3)
    } else if n < 10_000_000_000 {
        format!("{:.1}M", n as f64 / 1e6)
    } else {
        format!("{:.1}G", n as f64 / 1e9)
    }
}

/// `HH:MM:SS.mmm` of a packet time, in UTC or the local time zone.
pub fn time_of_day(ts: Timestamp, utc: bool) -> String {
    let ms = (ts.nsec / 1_000_000).min(999);
    let t = if utc {
        Utc.timestamp_opt(ts.sec, 0).single().map(|t| t.format("%H:%M:%S").to_string())
    } else {
        Local.timestamp_opt(ts.sec, 0).earliest().map(|t| t.format("%H:%M:%S").to_string())
    };
    match t {
        Some(t) => format!("{t}.{ms:03}"),
        None => "??:??:??".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(830), "830ns");
        assert_eq!(duration(12_345), "12.3µs");
        assert_eq!(duration(4_560_000), "4.56ms");
        assert_eq!(duration(1_234_000_000), "1.234s");
        assert_eq!(duration(725_000_000_000), "12m05s");
        assert_eq!(duration(11_040_000_000_000), "3h04m");
        assert_eq!(duration(-1500), "-1.5µs");
        assert_eq!(duration(i64::MIN), "-2562047h47m");
    }

    #[test]
    fn counts_and_bytes() {
        assert_eq!(count(999_999), "999999");
        assert_eq!(count(1_234_567), "1.23M");
        assert_eq!(bytes(47_332), "47332");
        assert_eq!(bytes(123_456), "123.5k");
        assert_eq!(bytes(u64::MAX), "18446744073.7G");
    }

    #[test]
    fn times() {
        assert_eq!(time_of_day(Timestamp { sec: 3_723, nsec: 456_789_000 }, true), "01:02:03.456");
        assert_eq!(time_of_day(Timestamp { sec: i64::MAX, nsec: 0 }, true), "??:??:??");
    }
}
