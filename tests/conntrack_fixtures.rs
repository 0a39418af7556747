//! The conntrack parsers on input recorded from the seed-path lab (`tests/fixtures/os/`,
//! written by `conntrack_lab::record_conntrack_fixtures`): raw ctnetlink datagrams of a dump
//! and of the events, and what `conntrack -L`, `conntrack -E` and /proc/net/nf_conntrack
//! said at the same moments. No root needed.

use flowtrail::conntrack::wire::{self, CtMessage};
use flowtrail::conntrack::{CtEntry, CtEventKind, CtProto, TcpCtState, text};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/os").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn fixture_text(name: &str) -> String {
    String::from_utf8(fixture(name)).unwrap()
}

/// Messages of a recording, all of which must parse.
fn netlink(name: &str) -> Vec<CtMessage> {
    let raw = fixture(name);
    wire::messages(&raw).map(|m| m.unwrap_or_else(|e| panic!("{name}: {e}"))).collect()
}

/// What every source reports alike (timeouts tick, `use` differs between readers).
fn essence(e: &CtEntry) -> String {
    format!(
        "{} {:?} {} | {} seen_reply={} assured={} {:?}",
        e.proto,
        e.tcp_state,
        e.orig,
        e.reply,
        e.status.seen_reply(),
        e.status.assured(),
        e.counters
    )
}

const DNAT_FROM: &str = "127.0.0.1:55001";
const DNAT_TO: &str = "192.168.49.2:8443";

fn is_seed_dnat(e: &CtEntry) -> bool {
    e.rewrite().dnat == Some((DNAT_FROM.parse().unwrap(), DNAT_TO.parse().unwrap()))
}

#[test]
fn netlink_dump_equals_conntrack_l_and_proc() {
    let msgs = netlink("ct-dump-vm.bin");
    assert!(matches!(msgs.last(), Some(CtMessage::Done { .. })), "a complete dump ends with DONE");
    let nl: Vec<CtEntry> = msgs
        .into_iter()
        .filter_map(|m| match m {
            CtMessage::Entry { kind, flags, entry, .. } => {
                assert_eq!((kind, flags & wire::NLM_F_MULTI), (CtEventKind::Update, wire::NLM_F_MULTI));
                Some(entry)
            }
            _ => None,
        })
        .collect();
    let (cli, bad) = text::parse_entries(&fixture_text("ct-dump-vm.txt"));
    assert!(bad.is_empty(), "{bad:?}");
    let (procfs, bad) = text::parse_entries(&fixture_text("ct-proc-vm.txt"));
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(nl.len(), 10);
    let set = |v: &[CtEntry]| v.iter().map(essence).collect::<BTreeSet<_>>();
    assert_eq!(set(&nl), set(&cli));
    assert_eq!(set(&nl), set(&procfs));
    // conntrack -L and netlink also agree on ids and marks; netlink has start times.
    let ids = |v: &[CtEntry]| v.iter().map(|e| (e.id, e.mark, essence(e))).collect::<BTreeSet<_>>();
    assert_eq!(ids(&nl), ids(&cli));
    assert!(nl.iter().all(|e| e.start_ns.is_some() && e.stop_ns.is_none() && e.counters.is_some()));
    assert!(procfs.iter().all(|e| e.id.is_none()));

    // What the recording holds: 3 IPv4 + 1 IPv6 client connections, each with its HOST->VM
    // leg and its DNAT'ed VM->NODE leg (the IPv6 forwarder connects over IPv4), plus UDP.
    let dnat: Vec<&CtEntry> = nl.iter().filter(|e| is_seed_dnat(e)).collect();
    assert_eq!(dnat.len(), 4);
    for e in &dnat {
        assert_eq!(e.tcp_state, Some(TcpCtState::TimeWait));
        let snat = e.rewrite().snat.unwrap();
        assert_eq!((snat.0.ip().to_string(), snat.1.ip().to_string()), ("127.0.0.1".into(), "192.168.49.1".into()));
        assert_eq!(snat.0.port(), snat.1.port(), "MASQUERADE kept the port");
        assert_eq!(e.wire_orig().to_string(), format!("192.168.49.1:{} -> {DNAT_TO}", snat.1.port()));
    }
    let legs: Vec<&CtEntry> = nl.iter().filter(|e| e.orig.dport == 49700).collect();
    assert_eq!(legs.len(), 4);
    assert_eq!(legs.iter().filter(|e| e.orig.src.is_ipv6()).count(), 1);
    assert!(legs.iter().all(|e| e.rewrite().is_none()));
    let udp: Vec<&CtEntry> = nl.iter().filter(|e| e.proto == CtProto::Udp).collect();
    assert_eq!(udp.len(), 2);
    assert!(udp.iter().all(|e| e.orig.dport == 41000 && e.tcp_state.is_none()));
}

#[test]
fn netlink_events_equal_conntrack_e() {
    let nl: Vec<(CtEventKind, CtEntry)> = netlink("ct-events-vm.bin")
        .into_iter()
        .filter_map(|m| match m {
            CtMessage::Entry { kind, entry, .. } => Some((kind, entry)),
            _ => None,
        })
        .collect();
    let (recs, bad) = text::parse(&fixture_text("ct-events-vm.txt"));
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(nl.len(), recs.len());
    for ((kind, e), r) in nl.iter().zip(&recs) {
        assert_eq!(Some(*kind), r.event);
        assert_eq!((e.id, e.proto, e.orig, e.reply, e.tcp_state), (r.entry.id, r.entry.proto, r.entry.orig, r.entry.reply, r.entry.tcp_state));
        assert!(r.at.is_some());
    }
    // Every connection: one NEW, updates, one DESTROY (the recorder flushed the table).
    let mut by_id: BTreeMap<u32, Vec<CtEventKind>> = BTreeMap::new();
    for (kind, e) in &nl {
        by_id.entry(e.id.unwrap()).or_default().push(*kind);
    }
    assert_eq!(by_id.len(), 10);
    for (id, kinds) in &by_id {
        assert_eq!(kinds.first(), Some(&CtEventKind::New), "{id}: {kinds:?}");
        assert_eq!(kinds.last(), Some(&CtEventKind::Destroy), "{id}: {kinds:?}");
        assert_eq!(kinds.iter().filter(|k| **k != CtEventKind::Update).count(), 2, "{id}: {kinds:?}");
    }
    let new_dnat: Vec<&CtEntry> = nl.iter().filter(|(k, e)| *k == CtEventKind::New && is_seed_dnat(e)).map(|(_, e)| e).collect();
    assert_eq!(new_dnat.len(), 4);
    assert!(new_dnat.iter().all(|e| e.tcp_state == Some(TcpCtState::SynSent) && !e.status.seen_reply()));
    for (k, e) in &nl {
        if *k == CtEventKind::Destroy {
            assert!(e.start_ns.is_some() && e.stop_ns >= e.start_ns && e.counters.is_some(), "{e:?}");
        } else {
            assert!(e.start_ns.is_none() && e.counters.is_none(), "{e:?}");
        }
    }
}

#[test]
fn every_truncation_of_the_recordings_is_total() {
    for name in ["ct-dump-vm.bin", "ct-events-vm.bin"] {
        let raw = fixture(name);
        let full = wire::messages(&raw).filter(|m| m.is_ok()).count();
        let mut last = 0;
        for n in 0..=raw.len() {
            let ok = wire::messages(&raw[..n]).filter(|m| m.is_ok()).count();
            assert!(ok >= last && ok <= full, "{name}[..{n}]");
            last = ok;
        }
    }
    let t = fixture_text("ct-events-vm.txt");
    for n in (0..=t.len()).filter(|&n| t.is_char_boundary(n)).step_by(7) {
        let _ = text::parse(&t[..n]);
    }
}
