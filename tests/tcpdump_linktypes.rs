//! Link types libpcap cannot compile a filter for (14, an unassigned value, among them) are
//! refused the way tcpdump 4.99.3 refuses them: nothing on stdout, libpcap's
//! `unknown data link type N (min 104, max 289)` on stderr, exit status 1. flowtrail's
//! message also names the file (as every input error does); the rest is tcpdump's text.
//! Link types libpcap knows but tcpdump has no printer for print `UNSUPPORTED` and a dump.

mod common;
mod offline_support;

use offline_support::{Pcap, tempdir, write};
use std::process::Command;

#[test]
fn unknown_and_unsupported_link_types_like_tcpdump() {
    let d = tempdir("linktypes");
    let tcpdump = common::require_tool("tcpdump");
    // An IPv4 datagram as payload: what a raw-IP link type 14 would carry.
    let ip = offline_support::raw_udp();
    for (linktype, refused) in [(14u32, true), (5, true), (13, true), (300, true), (147, false)] {
        let file = write(&d, &format!("lt{linktype}.pcap"), &Pcap::new(false, false, 65535, linktype).record(1, 0, &ip, 28).bytes);
        for filter in [None, Some("udp")] {
            let mut args = vec!["-r", file.as_str()];
            args.extend(filter);
            let got = common::flowtrail().args(&args).env("TZ", "UTC").output().unwrap();
            let msg = String::from_utf8_lossy(&got.stderr).lines().last().unwrap_or("").to_string();
            if refused {
                assert_eq!(got.status.code(), Some(1), "link type {linktype}");
                assert!(got.stdout.is_empty(), "link type {linktype}");
                let want = format!("flowtrail: {file}: unknown data link type {linktype} (min 104, max 289)");
                assert_eq!(msg, want);
            } else if filter.is_none() {
                assert_eq!(got.status.code(), Some(0), "link type {linktype}: {msg}");
                assert!(String::from_utf8_lossy(&got.stdout).contains(" UNSUPPORTED\n"));
            }
            if let Some(t) = &tcpdump {
                let want = Command::new(t).args(&args).env("TZ", "UTC").output().unwrap();
                assert_eq!(got.stdout, want.stdout, "link type {linktype} {filter:?}");
                assert_eq!(got.status.code(), want.status.code(), "link type {linktype} {filter:?}");
                let tmsg = String::from_utf8_lossy(&want.stderr).lines().last().unwrap_or("").to_string();
                let core = tmsg.strip_prefix("tcpdump: ").unwrap_or(&tmsg);
                if refused {
                    assert!(msg.ends_with(core), "link type {linktype}: tcpdump said {tmsg:?}, we said {msg:?}");
                }
            }
        }
    }
}
