//! Packet timestamps, formatted like tcpdump 4.99.3's `ts_print` for every `-t` variant.
//!
//! Contract:
//! * The fraction is microseconds, or nanoseconds with `--nano`; it is printed with `%06u` /
//!   `%09u` semantics, so an out-of-range fraction from a broken file prints all its digits.
//! * Like 4.99.3, a time whose low 32 bits of seconds have the top bit set prints
//!   `[Error converting time]` (the conversion itself uses all 64 bits, so 2106+ dates
//!   from pcapng work again); `-tt` prints the seconds truncated to 32 bits.
//! * Local time (default and `-tttt`) follows the process's time zone (`TZ`, else
//!   `/etc/localtime`) through chrono; `-ttt`/`-ttttt` deltas are UTC `HH:MM:SS.frac`
//!   preceded by a sign column (`' '` or `'-'`).
//! * Performance: the `YYYY-MM-DD HH:MM:SS` / `HH:MM:SS` part is cached per second, so the
//!   time-zone conversion runs once per distinct second, not once per packet.

use super::{TsFormat, push_u32, push_u64_padded};
use crate::capture::Timestamp;
use chrono::{Datelike, Local, TimeZone, Timelike};

/// What tcpdump prints for a time it cannot convert.
const ERROR: &str = "[Error converting time]";

/// Formats timestamps; keeps the per-second cache and the `-ttt`/`-ttttt` reference time.
pub struct TsPrinter {
    format: TsFormat,
    nano: bool,
    /// Second whose text is in `cached`, if any.
    cached_sec: Option<i64>,
    /// Date and/or time of day for `cached_sec`, or [`ERROR`].
    cached: String,
    /// tcpdump's static `tv_ref` for deltas: (seconds, fraction); (0, 0) means unset.
    reference: (i64, i64),
}

impl TsPrinter {
    pub fn new(format: TsFormat, nano: bool) -> TsPrinter {
        TsPrinter { format, nano, cached_sec: None, cached: String::with_capacity(32), reference: (0, 0) }
    }

    /// The fraction in the printing precision (tcpdump's `tv_usec`).
    fn frac(&self, ts: Timestamp) -> i64 {
        (if self.nano { ts.nsec } else { ts.nsec / 1000 }) as i64
    }

    fn push_frac(&self, out: &mut String, frac: i64) {
        out.push('.');
        // tcpdump casts to unsigned for %06u / %09u.
        push_u64_padded(out, u64::from(frac as u32), if self.nano { 9 } else { 6 });
    }

    /// Appends the timestamp and its trailing space (nothing for `-t`).
    pub fn print(&mut self, out: &mut String, ts: Timestamp) {
        match self.format {
            TsFormat::None => {}
            TsFormat::Default | TsFormat::Date => {
                let frac = self.frac(ts);
                if self.cached_sec != Some(ts.sec) {
                    self.cached.clear();
                    local_text(&mut self.cached, ts.sec, self.format == TsFormat::Date);
                    self.cached_sec = Some(ts.sec);
                }
                out.push_str(&self.cached);
                if self.cached != ERROR {
                    self.push_frac(out, frac);
                }
                out.push(' ');
            }
            TsFormat::Unix => {
                if (ts.sec as u32) & 0x8000_0000 != 0 {
                    out.push_str(ERROR);
                } else {
                    push_u32(out, ts.sec as u32);
                    self.push_frac(out, self.frac(ts));
                }
                out.push(' ');
            }
            TsFormat::DeltaPrev | TsFormat::DeltaFirst => {
                let now = (ts.sec, self.frac(ts));
                if self.reference == (0, 0) {
                    self.reference = now;
                }
                let negative = now < self.reference;
                let (a, b) = if negative { (self.reference, now) } else { (now, self.reference) };
                let mut sec = a.0.wrapping_sub(b.0);
                let mut frac = a.1 - b.1;
                if frac < 0 {
                    sec = sec.wrapping_sub(1);
                    frac += if self.nano { 1_000_000_000 } else { 1_000_000 };
                }
                out.push(if negative { '-' } else { ' ' });
                if (sec as u32) & 0x8000_0000 != 0 {
                    out.push_str(ERROR);
                } else {
                    push_hms(out, sec.rem_euclid(86_400));
                    self.push_frac(out, frac);
                }
                out.push(' ');
                if self.format == TsFormat::DeltaPrev {
                    self.reference = now;
                }
            }
        }
    }
}

/// `HH:MM:SS` of a second of the day.
fn push_hms(out: &mut String, secs_of_day: i64) {
    let h = secs_of_day / 3600;
    let m = secs_of_day / 60 % 60;
    let s = secs_of_day % 60;
    push2(out, h as u32);
    out.push(':');
    push2(out, m as u32);
    out.push(':');
    push2(out, s as u32);
}

fn push2(out: &mut String, v: u32) {
    out.push(char::from(b'0' + (v / 10 % 10) as u8));
    out.push(char::from(b'0' + (v % 10) as u8));
}

/// Local `YYYY-MM-DD HH:MM:SS` (with `date`) or `HH:MM:SS`, or [`ERROR`].
fn local_text(out: &mut String, sec: i64, date: bool) {
    if (sec as u32) & 0x8000_0000 != 0 {
        out.push_str(ERROR);
        return;
    }
    let Some(t) = Local.timestamp_opt(sec, 0).earliest() else {
        out.push_str(ERROR);
        return;
    };
    if date {
        let y = t.year();
        if (0..10_000).contains(&y) {
            push_u64_padded(out, y as u64, 4);
        } else {
            // strftime's %Y: the year in decimal, with a sign when negative.
            let _ = std::fmt::Write::write_fmt(out, format_args!("{y}"));
        }
        out.push('-');
        push2(out, t.month());
        out.push('-');
        push2(out, t.day());
        out.push(' ');
    }
    push2(out, t.hour());
    out.push(':');
    push2(out, t.minute());
    out.push(':');
    push2(out, t.second());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(sec: i64, nsec: u32) -> Timestamp {
        Timestamp { sec, nsec: u64::from(nsec) }
    }

    fn run(format: TsFormat, nano: bool, times: &[Timestamp]) -> Vec<String> {
        let mut p = TsPrinter::new(format, nano);
        times
            .iter()
            .map(|&t| {
                let mut s = String::new();
                p.print(&mut s, t);
                s
            })
            .collect()
    }

    #[test]
    fn unix_and_errors() {
        let v = run(TsFormat::Unix, false, &[ts(1_000, 500_000_000), ts(1 << 32, 0), ts(2_147_483_648, 0)]);
        assert_eq!(v, ["1000.500000 ", "0.000000 ", "[Error converting time] "]);
        let v = run(TsFormat::Unix, true, &[ts(7, 5)]);
        assert_eq!(v, ["7.000000005 "]);
    }

    #[test]
    fn deltas() {
        let t = [ts(100, 900_000_000), ts(101, 27_522_000), ts(101, 27_610_000), ts(100, 0)];
        let v = run(TsFormat::DeltaPrev, false, &t);
        assert_eq!(v, [" 00:00:00.000000 ", " 00:00:00.127522 ", " 00:00:00.000088 ", "-00:00:01.027610 "]);
        let v = run(TsFormat::DeltaFirst, false, &t);
        assert_eq!(v[2], " 00:00:00.127610 ");
        assert_eq!(v[3], "-00:00:00.900000 ");
    }

    #[test]
    fn fraction_out_of_range_prints_all_digits() {
        let mut p = TsPrinter::new(TsFormat::None, false);
        let mut s = String::new();
        p.push_frac(&mut s, 1_000_000);
        assert_eq!(s, ".1000000");
        p.print(&mut s, ts(0, 0));
        assert_eq!(s, ".1000000");
    }
}
