//! Process attribution on a /proc snapshot recorded from the seed-path lab with one
//! connection open (`tests/fixtures/os/proc-seedpath/`, written by
//! `process_lab::record_proc_fixture`). No root needed.

mod os_lab;

use flowtrail::netns::Netns;
use flowtrail::process::{ProcessIndex, RecordedProc, UnknownReason};
use os_lab::{check_seed_owners, seed_sockets};
use std::net::SocketAddr;

fn recorded() -> (RecordedProc, SocketAddr) {
    let dir = os_lab::root_dir().join("tests/fixtures/os/proc-seedpath");
    let rec = RecordedProc::load(&dir).unwrap();
    let client = std::fs::read_to_string(dir.join("client")).unwrap().trim().parse().unwrap();
    (rec, client)
}

fn ns(alias: &str) -> Netns {
    Netns::Named(alias.into())
}

#[test]
fn recorded_seed_path_sockets_belong_to_the_forwarders_and_the_server() {
    let (rec, client) = recorded();
    let mut ix = ProcessIndex::with_source(rec);
    let (host, vm, node) = (ns("host"), ns("vm"), ns("node"));
    let socks = seed_sockets(&mut ix, &host, &vm, &node, client);
    let [client_pid, ..] = check_seed_owners(&mut ix, &host, &vm, &node, &socks);
    // The recording test itself held the client socket (comm is cut to 15 bytes).
    let c = ix.lookup(&host, &socks.host_client);
    assert_eq!(c.owner().unwrap().pid, client_pid);
    assert!(c.owner().unwrap().comm.starts_with("process_lab"), "{c:?}");
}

#[test]
fn every_socket_with_an_inode_in_the_lab_has_an_owner() {
    let (rec, _) = recorded();
    let mut ix = ProcessIndex::with_source(rec);
    for alias in ["host", "vm", "node"] {
        let all = ix.attribute_all(&ns(alias)).unwrap();
        assert!(!all.is_empty());
        for (row, a) in &all {
            if row.inode == 0 {
                assert_eq!(a, &flowtrail::process::Attribution::Unknown(UnknownReason::NoInode));
            } else {
                assert!(a.is_known(), "{alias}: {row:?} {a:?}");
            }
        }
    }
    assert_eq!(ix.stats().malformed, 0);
}
