//! Text formats of the conntrack table: `/proc/net/nf_conntrack` and the output of
//! `conntrack -L` / `conntrack -E` (`-o id`, `-o timestamp`, `-o extended`). Pure and total.
//!
//! ```text
//! /proc:       ipv4     2 tcp      6 117 TIME_WAIT src=.. dst=.. sport=.. dport=.. [packets=.. bytes=..]
//!              [UNREPLIED] src=.. dst=.. sport=.. dport=.. [packets=.. bytes=..] [ASSURED] mark=0
//!              [zone=N] [delta-time=S] use=2
//! conntrack:   tcp      6 119 TIME_WAIT src=.. ... [ASSURED] mark=0 use=1 id=1429889356
//! events:      [1795928336.049628]\t [UPDATE] tcp      6 60 CLOSE_WAIT src=.. ... id=850974663
//! icmp:        icmp     1 29 src=.. dst=.. type=8 code=0 id=7 src=.. dst=.. type=0 code=0 id=7 ...
//! ```
//!
//! The first `src=` opens the original tuple, the second the reply tuple. `id=` right after
//! an ICMP tuple's `code=` is the ICMP id; any other `id=` is the conntrack id. `packets=` /
//! `bytes=` belong to the tuple before them. Unknown `key=value` words and flags are ignored.

use super::{CtCounters, CtEntry, CtEvent, CtEventKind, CtProto, CtStatus, CtTuple, EventOrigin, IcmpKey, TcpCtState};
use crate::netns::Netns;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why one line did not give an entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("line {line}: {what}")]
    Line { line: usize, what: &'static str },
}

/// One parsed line: an entry, and the event tag and timestamp when the line had them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextRecord {
    pub entry: CtEntry,
    pub event: Option<CtEventKind>,
    pub at: Option<SystemTime>,
}

impl TextRecord {
    /// The line as an event (kind `Update` and time `UNIX_EPOCH` when the line had none).
    pub fn into_event(self) -> CtEvent {
        CtEvent {
            kind: self.event.unwrap_or(CtEventKind::Update),
            entry: self.entry,
            at: self.at.unwrap_or(UNIX_EPOCH),
            origin: EventOrigin::Text,
        }
    }
}

/// Parses every non-empty line; returns the records and the lines that failed.
pub fn parse(text: &str) -> (Vec<TextRecord>, Vec<TextError>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        match parse_line(l) {
            Ok(r) => ok.push(r),
            Err(what) => bad.push(TextError::Line { line: i + 1, what }),
        }
    }
    (ok, bad)
}

/// Parses only the entries (a table read).
pub fn parse_entries(text: &str) -> (Vec<CtEntry>, Vec<TextError>) {
    let (recs, bad) = parse(text);
    (recs.into_iter().map(|r| r.entry).collect(), bad)
}

#[derive(Default, Clone, Copy)]
struct TupleAcc {
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    sport: Option<u16>,
    dport: Option<u16>,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
    icmp_id: Option<u16>,
    packets: Option<u64>,
    bytes: Option<u64>,
}

impl TupleAcc {
    fn finish(&self) -> Result<CtTuple, &'static str> {
        let (Some(src), Some(dst)) = (self.src, self.dst) else { return Err("tuple without src= or dst=") };
        let icmp = (self.icmp_type.is_some() || self.icmp_code.is_some() || self.icmp_id.is_some()).then(|| IcmpKey {
            id: self.icmp_id.unwrap_or(0),
            kind: self.icmp_type.unwrap_or(0),
            code: self.icmp_code.unwrap_or(0),
        });
        Ok(CtTuple { src, dst, sport: self.sport.unwrap_or(0), dport: self.dport.unwrap_or(0), icmp })
    }
    fn counters(&self) -> Option<CtCounters> {
        (self.packets.is_some() || self.bytes.is_some())
            .then(|| CtCounters { packets: self.packets.unwrap_or(0), bytes: self.bytes.unwrap_or(0) })
    }
}

/// Parses one line (see the module docs for the formats).
pub fn parse_line(line: &str) -> Result<TextRecord, &'static str> {
    let mut words = line.split_whitespace().peekable();
    let mut at = None;
    let mut event = None;
    // Optional "[seconds.micros]" then "[NEW]" / "[UPDATE]" / "[DESTROY]".
    while let Some(w) = words.peek() {
        let Some(inner) = w.strip_prefix('[').and_then(|w| w.strip_suffix(']')) else { break };
        match inner {
            "NEW" => event = Some(CtEventKind::New),
            "UPDATE" => event = Some(CtEventKind::Update),
            "DESTROY" => event = Some(CtEventKind::Destroy),
            ts => at = Some(parse_time(ts).ok_or("bad timestamp")?),
        }
        words.next();
    }
    // Optional l3 prefix ("ipv4 2", "ipv6 10") of /proc and `-o extended`.
    if matches!(words.peek(), Some(&("ipv4" | "ipv6"))) {
        words.next();
        words.next();
    }
    let _name = words.next().ok_or("empty line")?;
    let proto = CtProto::from_number(words.next().and_then(|n| n.parse().ok()).ok_or("no protocol number")?);
    let mut timeout_s = None;
    let mut tcp_state = None;
    while let Some(w) = words.peek() {
        if w.contains('=') || w.starts_with('[') {
            break;
        }
        if let Ok(n) = w.parse::<u32>() {
            timeout_s = Some(n);
        } else if let Some(s) = TcpCtState::from_name(w) {
            tcp_state = Some(s);
        } // other protocols' states (SCTP, DCCP) are skipped
        words.next();
    }

    let mut tuples = [TupleAcc::default(); 2];
    let mut n_tuples = 0usize; // tuples opened so far
    let mut in_tuple = false; // the last word belonged to the open tuple
    let mut status = CtStatus(CtStatus::SEEN_REPLY);
    let (mut id, mut mark, mut zone, mut use_count) = (None, None, None, None);
    for w in words {
        if let Some(flag) = w.strip_prefix('[').and_then(|w| w.strip_suffix(']')) {
            match flag {
                "UNREPLIED" => status.0 &= !CtStatus::SEEN_REPLY,
                "ASSURED" => status.0 |= CtStatus::ASSURED,
                "OFFLOAD" => status.0 |= CtStatus::OFFLOAD,
                "HW_OFFLOAD" => status.0 |= CtStatus::HW_OFFLOAD,
                _ => {}
            }
            in_tuple = false;
            continue;
        }
        let Some((k, v)) = w.split_once('=') else {
            in_tuple = false;
            continue;
        };
        if k == "src" {
            if n_tuples == 2 {
                return Err("more than two tuples");
            }
            n_tuples += 1;
            in_tuple = true;
        }
        let cur = n_tuples.checked_sub(1).and_then(|i| tuples.get_mut(i));
        match (k, cur) {
            ("src", Some(t)) => t.src = Some(v.parse().map_err(|_| "bad src address")?),
            ("dst", Some(t)) if in_tuple => t.dst = Some(v.parse().map_err(|_| "bad dst address")?),
            ("sport", Some(t)) if in_tuple => t.sport = Some(v.parse().map_err(|_| "bad sport")?),
            ("dport", Some(t)) if in_tuple => t.dport = Some(v.parse().map_err(|_| "bad dport")?),
            ("type", Some(t)) if in_tuple => t.icmp_type = v.parse().ok(),
            ("code", Some(t)) if in_tuple => t.icmp_code = v.parse().ok(),
            ("id", Some(t)) if in_tuple && t.icmp_code.is_some() && t.icmp_id.is_none() => t.icmp_id = v.parse().ok(),
            ("packets", Some(t)) => t.packets = v.parse().ok(),
            ("bytes", Some(t)) => t.bytes = v.parse().ok(),
            (k, _) => {
                in_tuple = false;
                match k {
                    "id" => id = v.parse().ok(),
                    "mark" => mark = v.parse().ok(),
                    // /proc prints the default zone 0; netlink leaves it out.
                    "zone" => zone = v.parse().ok().filter(|&z: &u16| z != 0),
                    "use" => use_count = v.parse().ok(),
                    _ => {}
                }
            }
        }
    }
    if n_tuples < 2 {
        return Err("fewer than two tuples");
    }
    let [o, r] = tuples;
    let counters = match (o.counters(), r.counters()) {
        (None, None) => None,
        (a, b) => Some((a.unwrap_or_default(), b.unwrap_or_default())),
    };
    let entry = CtEntry {
        netns: Netns::Current,
        id,
        proto,
        orig: o.finish()?,
        reply: r.finish()?,
        tcp_state: if proto == CtProto::Tcp { tcp_state } else { None },
        status,
        timeout_s,
        mark,
        zone,
        use_count,
        counters,
        start_ns: None,
        stop_ns: None,
    };
    Ok(TextRecord { entry, event, at })
}

/// `SECONDS[.FRACTION]` since the UNIX epoch.
fn parse_time(s: &str) -> Option<SystemTime> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: u64 = secs.parse().ok()?;
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = if frac.is_empty() { 0 } else { format!("{frac:0<9}").parse().ok()? };
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_format_with_counters_zone_and_unreplied() {
        let l = "ipv4     2 tcp      6 431999 ESTABLISHED src=127.0.0.1 dst=127.0.0.1 sport=39658 dport=55001 packets=3 bytes=180 [UNREPLIED] src=192.168.49.2 dst=192.168.49.1 sport=8443 dport=39658 packets=0 bytes=0 mark=0 zone=3 delta-time=1 use=2";
        let r = parse_line(l).unwrap();
        let e = &r.entry;
        assert_eq!((r.event, r.at), (None, None));
        assert_eq!(e.proto, CtProto::Tcp);
        assert_eq!(e.tcp_state, Some(TcpCtState::Established));
        assert_eq!(e.timeout_s, Some(431999));
        assert_eq!(e.orig.to_string(), "127.0.0.1:39658 -> 127.0.0.1:55001");
        assert_eq!(e.reply.to_string(), "192.168.49.2:8443 -> 192.168.49.1:39658");
        assert!(!e.status.seen_reply());
        assert_eq!(e.counters, Some((CtCounters { packets: 3, bytes: 180 }, CtCounters::default())));
        assert_eq!((e.mark, e.zone, e.use_count, e.id), (Some(0), Some(3), Some(2), None));
    }

    #[test]
    fn conntrack_tool_and_event_lines() {
        let l = "[1795928336.049628]\t [UPDATE] tcp      6 60 CLOSE_WAIT src=192.168.65.1 dst=192.168.65.2 sport=38892 dport=49700 src=192.168.65.2 dst=192.168.65.1 sport=49700 dport=38892 [ASSURED] id=850974663";
        let r = parse_line(l).unwrap();
        assert_eq!(r.event, Some(CtEventKind::Update));
        assert_eq!(r.at, Some(UNIX_EPOCH + Duration::new(1795928336, 49_628_000)));
        assert_eq!(r.entry.id, Some(850974663));
        assert!(r.entry.status.assured() && r.entry.status.seen_reply());
        let d = parse_line("[DESTROY] udp      17 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=53 src=10.0.0.2 dst=10.0.0.1 sport=53 dport=1 id=9").unwrap();
        assert_eq!((d.event, d.entry.timeout_s, d.entry.tcp_state, d.entry.id), (Some(CtEventKind::Destroy), None, None, Some(9)));
    }

    #[test]
    fn icmp_ids_and_ipv6() {
        let l = "ipv6     10 icmpv6   58 29 src=fd00:0065:0000:0000:0000:0000:0000:0001 dst=fd00:65::2 type=128 code=0 id=4242 src=fd00:65::2 dst=fd00:65::1 type=129 code=0 id=4242 mark=0 use=1 id=77";
        let e = parse_line(l).unwrap().entry;
        assert_eq!(e.proto, CtProto::Icmpv6);
        assert_eq!(e.orig.icmp, Some(IcmpKey { id: 4242, kind: 128, code: 0 }));
        assert_eq!(e.reply.icmp, Some(IcmpKey { id: 4242, kind: 129, code: 0 }));
        assert_eq!(e.orig.src, "fd00:65::1".parse::<IpAddr>().unwrap());
        assert_eq!(e.id, Some(77));
        assert!(e.rewrite().is_none());
    }

    #[test]
    fn the_recorded_samples_parse_completely() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let table = std::fs::read_to_string(root.join("samples/vm-conntrack.txt")).unwrap();
        let (entries, bad) = parse_entries(&table);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(entries.len(), table.lines().count());
        let dnat: Vec<_> = entries.iter().filter(|e| e.rewrite().dnat.is_some()).collect();
        assert_eq!(dnat.len(), 5);
        for e in &dnat {
            assert_eq!(e.rewrite().dnat.unwrap().1.to_string(), "192.168.49.2:8443");
            assert_eq!(e.rewrite().snat.unwrap().1.ip().to_string(), "192.168.49.1");
        }
        let events = std::fs::read_to_string(root.join("samples/vm-conntrack-events.txt")).unwrap();
        let (recs, bad) = parse(&events);
        assert!(bad.is_empty(), "{bad:?}");
        let new_dnat = recs.iter().filter(|r| r.event == Some(CtEventKind::New) && r.entry.rewrite().dnat.is_some()).count();
        assert_eq!(new_dnat, 5);
        assert!(recs.iter().all(|r| r.at.is_some() && r.entry.id.is_some()));
    }

    #[test]
    fn bad_lines_are_errors_not_panics() {
        for l in ["", "tcp", "tcp x", "tcp 6 1 src=1.2.3.4", "tcp 6 1 src=1.2.3.4 dst=1.1.1.1 src=", "[zz] tcp 6",
            "tcp 6 1 src=1.1.1.1 dst=2.2.2.2 src=1.1.1.1 dst=2.2.2.2 src=3.3.3.3", "[1.1234567891] tcp 6",
            "ipv4", "ipv4 2", "tcp 6 src=1.1.1.1 dst=2.2.2.2 sport=99999 src=2.2.2.2 dst=1.1.1.1"] {
            assert!(parse_line(l).is_err(), "{l}");
        }
        let (ok, bad) = parse("tcp 6 1 src=1.1.1.1 dst=2.2.2.2 src=2.2.2.2 dst=1.1.1.1\n\nnonsense\n");
        assert_eq!((ok.len(), bad.len()), (1, 1));
        assert_eq!(bad[0], TextError::Line { line: 3, what: "no protocol number" });
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
            let _ = parse(&s);
        }
        #[test]
        fn conntrackish_text_never_panics(s in "(\\[[0-9.A-Z]{0,12}\\] |ipv[46] |tcp |6 |[0-9]{1,6} |src=|dst=|sport=|dport=|id=|code=|type=|packets=|bytes=|1\\.2\\.3\\.4 |::1 |\\[ASSURED\\] ){0,40}") {
            let _ = parse(&s);
        }
    }
}
