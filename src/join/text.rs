//! The readable tree (`--flows`): path -> legs -> observations, with rewrites, processes,
//! hop changes and latencies. Pure formatting (`Display`).
//!
//! ```text
//! path 1 tcp 127.0.0.1:40001 -> 192.168.49.2:8443  3 legs  2026-11-29 04:58:56.034943 +15.23ms
//!   leg 1  127.0.0.1:40001 -> 127.0.0.1:49673
//!     host-lo     127.0.0.1:40001 -> 127.0.0.1:49673  pkts 6/4  bytes 64/64
//!   via socat[812]  score 92: payload c2s 64B, payload s2c 64B, timing connect 6.91ms ...
//!   leg 2  same-tuple  score 180: isn c2s, isn s2c, tsval c2s, ...
//!     host-veth   192.168.65.1:38892 -> 192.168.65.2:49700  pkts 7/5  bytes 64/64
//!     vm-veth     +3us c2s +2us s2c
//!   leg 3  nat  src 127.0.0.1:39658 -> 192.168.49.1:39658, dst 127.0.0.1:55001 -> 192.168.49.2:8443
//!     vm/conntrack  127.0.0.1:39658 -> 127.0.0.1:55001  [conntrack id=2727558185]
//!     vm-br0      192.168.49.1:39658 -> 192.168.49.2:8443  pkts 6/4  bytes 64/64
//!                 src 127.0.0.1:39658 -> 192.168.49.1:39658, dst 127.0.0.1:55001 -> 192.168.49.2:8443
//! ```

use super::evidence::fmt_us;
use super::model::{Leg, Model, Path, Source};
use std::fmt;

/// A path's start in local time (`TZ`, else `/etc/localtime`), as packet lines print it.
fn when(ns: i64) -> String {
    use chrono::TimeZone;
    chrono::Local
        .timestamp_opt(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000) as u32)
        .earliest()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
        .unwrap_or_else(|| ns.to_string())
}

fn leg(f: &mut fmt::Formatter<'_>, i: usize, l: &Leg) -> fmt::Result {
    write!(f, "  leg {}", i + 1)?;
    if l.join.kind != super::JoinKind::None {
        write!(f, "  {}", l.join.kind.name())?;
    }
    if let Some(r) = &l.rewrite {
        let mut parts = Vec::new();
        if let Some([a, b]) = &r.src {
            parts.push(format!("src {a} -> {b}"));
        }
        if let Some([a, b]) = &r.dst {
            parts.push(format!("dst {a} -> {b}"));
        }
        write!(f, "  {}", parts.join(", "))?;
    }
    if !l.join.links.is_empty() {
        write!(
            f,
            "  score {}: {}",
            l.join.score,
            l.join.summary().join(", ")
        )?;
    }
    if let Some(p) = &l.process {
        let show = |o: &Option<super::Owner>| o.as_ref().map_or("?".to_string(), |o| o.to_string());
        write!(f, "  process {} -> {}", show(&p.client), show(&p.server))?;
    }
    writeln!(f)?;
    let width = l
        .observations
        .iter()
        .map(|o| o.point.len())
        .max()
        .unwrap_or(0);
    for (k, o) in l.observations.iter().enumerate() {
        write!(f, "    {:width$}  {} -> {}", o.point, o.src, o.dst)?;
        if let Some(r) = &o.reply {
            write!(f, " (replies {} -> {})", r.src, r.dst)?;
        }
        match (&o.source, &o.conntrack) {
            (Source::Conntrack, Some(c)) => match c.id {
                Some(id) => write!(f, "  [conntrack id={id}]")?,
                None => write!(f, "  [conntrack]")?,
            },
            _ => write!(
                f,
                "  pkts {}/{}  bytes {}/{}",
                o.packets[0], o.packets[1], o.bytes[0], o.bytes[1]
            )?,
        }
        // The flow table's ids (what --follow and --streams take).
        for (k, id) in o.ids.iter().enumerate() {
            write!(f, "{}#{id}", if k == 0 { "  " } else { "," })?;
        }
        if let Some(n) = &o.note {
            write!(f, "  {}", crate::escape::text(n))?;
        }
        if k > 0
            && let Some(h) = l.hops.get(k - 1)
        {
            let mut bits = Vec::new();
            if let Some(c) = h.latency.c2s_us {
                bits.push(format!("+{} c2s", fmt_us(c)));
            }
            if let Some(s) = h.latency.s2c_us {
                bits.push(format!("+{} s2c", fmt_us(s)));
            }
            for c in &h.changes {
                match c.dir {
                    Some(d) => bits.push(format!("{} {d} {} -> {}", c.field, c.from, c.to)),
                    None => bits.push(format!("{} {} -> {}", c.field, c.from, c.to)),
                }
            }
            if !bits.is_empty() {
                write!(f, "\n    {:width$}  {}", "", bits.join(", "))?;
            }
        }
        writeln!(f)?;
    }
    Ok(())
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "path {} {} {} -> {}  {} leg{}  {} +{}",
            self.id,
            self.proto,
            self.client.map_or("?".into(), |a| a.to_string()),
            self.server.map_or("?".into(), |a| a.to_string()),
            self.legs.len(),
            if self.legs.len() == 1 { "" } else { "s" },
            when(self.first_ns),
            fmt_us(self.last_ns.saturating_sub(self.first_ns) as f64 / 1000.0)
        )?;
        for (i, l) in self.legs.iter().enumerate() {
            if i > 0
                && let Some(v) = self.via.iter().find(|v| v.between[1] == i)
            {
                let who = v
                    .process
                    .as_ref()
                    .map_or("forwarder".to_string(), |p| p.to_string());
                writeln!(
                    f,
                    "  via {who}  score {}: {}",
                    v.score,
                    v.summary().join(", ")
                )?;
            }
            leg(f, i, l)?;
        }
        for a in &self.ambiguous {
            let c: Vec<String> = a
                .candidates
                .iter()
                .map(|c| format!("path {} leg {} ({})", c.path, c.leg + 1, c.score))
                .collect();
            write!(f, "  ambiguous {} of leg {}: {}", a.side, a.leg + 1, c.join(", "))?;
            match a.undecidable_note() {
                Some(why) => writeln!(f, "; {why}")?,
                None => writeln!(f)?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.paths {
            write!(f, "{p}")?;
        }
        Ok(())
    }
}
