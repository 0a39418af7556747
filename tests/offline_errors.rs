//! Bad input, tcpdump-style: what was readable is printed, then libpcap's message naming the
//! file, with tcpdump's exit status. Plus a truncation sweep over every byte offset.

mod offline_support;
use offline_support::*;

/// (file bytes, expected packet lines, exit code, expected message after `flowtrail: FILE: `)
fn cases() -> Vec<(&'static str, Vec<u8>, usize, i32, &'static str)> {
    let good = Pcap::new(false, false, 0, 1).record(1, 0, &arp(), 42).record(2, 0, &arp(), 42).bytes;
    let mut trunc_hdr = good.clone();
    trunc_hdr.extend([1, 2, 3]);
    let mut trunc_data = good.clone();
    let rec = Pcap::new(false, false, 0, 1).record(3, 0, &arp(), 42).bytes;
    trunc_data.extend(&rec[24..rec.len() - 5]);
    let mut huge = good.clone();
    huge.extend(&Pcap::new(false, false, 0, 1).record(3, 0, &[], 42).bytes[24..]);
    let n = huge.len();
    huge[n - 8..n - 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let ng = Pcapng::new().shb(false).idb(1, 0, Some("eth0"), None).epb(0, 1_000_000, &arp(), 42, None).epb(0, 2_000_000, &arp(), 42, None).bytes;
    let with = |extra: &[u8]| [ng.clone(), extra.to_vec()].concat();
    let le = |a: u32, b: u32| [a.to_le_bytes(), b.to_le_bytes()].concat();
    let mut v1 = Pcap::new(false, false, 0, 1).bytes;
    v1[4] = 1;
    let mut v3 = Pcap::new(false, false, 0, 1).bytes;
    v3[4] = 3;
    vec![
        ("empty.pcap", vec![], 0, 1, "truncated dump file; tried to read 4 file header bytes, only got 0"),
        ("short.pcap", good[..10].to_vec(), 0, 1, "truncated dump file; tried to read 24 file header bytes, only got 6"),
        ("garbage.pcap", b"this is not a capture file\n".to_vec(), 0, 1, "unknown file format"),
        ("archaic.pcap", v1, 0, 1, "archaic pcap savefile format"),
        ("v3.pcap", v3, 0, 1, "unsupported pcap savefile version 3.4"),
        ("trunc_hdr.pcap", trunc_hdr, 2, 1, "truncated dump file; tried to read 16 header bytes, only got 3 (at byte offset 140)"),
        ("trunc_data.pcap", trunc_data, 2, 1, "truncated dump file; tried to read 42 captured bytes, only got 37 (at byte offset 140)"),
        ("huge.pcap", huge, 2, 1, "invalid packet capture length 4294967295, bigger than snaplen of 262144 (at byte offset 140)"),
        ("unknown_lt.pcap", Pcap::new(false, false, 0, 4000).record(1, 0, &arp(), 42).bytes, 0, 1, "unknown data link type 4000 (min 104, max 289)"),
        ("ng_trunc.pcapng", ng[..ng.len() - 7].to_vec(), 1, 1, "truncated pcapng dump file; tried to read 68 bytes, only got 61 (at byte offset 136)"),
        ("ng_short_len.pcapng", with(&le(6, 10)), 2, 1, "block in pcapng dump file has a length of 10 < 12 (at byte offset 212)"),
        ("ng_odd_len.pcapng", with(&le(6, 14)), 2, 1, "block in pcapng dump file has a length of 14 that is not a multiple of 4 (at byte offset 212)"),
        ("ng_big.pcapng", with(&le(6, 0x7fff_fff0)), 2, 1, "pcapng block size 2147483632 > maximum 16777216 (at byte offset 212)"),
        ("ng_trailer.pcapng", with(&[le(0x99, 12), 16u32.to_le_bytes().to_vec()].concat()), 2, 1, "block total length in header and trailer don't match (at byte offset 212)"),
        ("ng_noidb.pcapng", Pcapng::new().shb(false).bytes, 0, 1, "the capture file has no Interface Description Blocks"),
        ("ng_pktfirst.pcapng", Pcapng::new().shb(false).epb(0, 1, &arp(), 42, None).bytes, 0, 1, "the capture file has a packet block before any Interface Description Blocks"),
        ("ng_badif.pcapng", [ng.clone(), Pcapng::new().epb(5, 1, &arp(), 42, None).bytes].concat(), 2, 1, "a packet arrived on interface 5, but there's no Interface Description Block for that interface (at byte offset 212)"),
        ("ng_caplen.pcapng", Pcapng::new().shb(false).idb(1, 20, None, None).epb(0, 1, &arp(), 42, None).bytes, 0, 1, "invalid packet capture length 42, bigger than snaplen of 20 (at byte offset 52)"),
        ("ng_shortepb.pcapng", Pcapng::new().shb(false).idb(1, 0, None, None).block(6, vec![1, 2, 3, 4]).bytes, 0, 1, "block of type 6 in pcapng dump file is too short (at byte offset 52)"),
    ]
}

#[test]
fn bad_inputs_messages_and_exit_codes() {
    let d = tempdir("bad");
    for (name, bytes, packets, code, msg) in cases() {
        let p = write(&d, name, &bytes);
        let o = run(&["-r", &p], None);
        assert_eq!(o.status.code(), Some(code), "{name}: {}", stderr(&o));
        assert_eq!(stdout(&o).lines().count(), packets, "{name}");
        let last = stderr(&o).lines().last().unwrap_or("").to_string();
        assert_eq!(last, format!("flowtrail: {p}: {msg}"), "{name}");
        if have_tcpdump() {
            // Same libpcap wording and status as the oracle (tcpdump prints no file or offset).
            let t = tcpdump(&["-r", &p]);
            assert_eq!(t.status.code(), Some(code), "{name}");
            let tmsg = String::from_utf8_lossy(&t.stderr).lines().last().unwrap_or("").to_string();
            let core = msg.split(" (at byte offset").next().unwrap();
            assert!(tmsg.ends_with(core), "{name}: tcpdump said {tmsg:?}");
            assert_eq!(String::from_utf8_lossy(&t.stdout).lines().count(), packets, "{name}");
        }
    }
}

#[test]
fn missing_file_and_directory() {
    let o = run(&["-r", "/nonexistent/x.pcap"], None);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "flowtrail: /nonexistent/x.pcap: No such file or directory\n");
    let d = tempdir("dir");
    let p = d.to_string_lossy().into_owned();
    let o = run(&["-r", &p], None);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), format!("flowtrail: {p}: error reading dump file: Is a directory\n"));
}

#[test]
fn permission_denied() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempdir("perm");
    let p = write(&d, "secret.pcap", &Pcap::new(false, false, 0, 1).bytes);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::File::open(&p).is_ok() {
        return; // running as root: permissions do not apply
    }
    let o = run(&["-r", &p], None);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), format!("flowtrail: {p}: Permission denied\n"));
}

#[test]
fn failed_input_does_not_stop_the_others() {
    let d = tempdir("partial");
    let good = Pcap::new(false, false, 0, 1).record(1, 0, &arp(), 42).record(5, 0, &arp(), 42).bytes;
    let mut bad = Pcap::new(false, false, 0, 1).record(2, 0, &arp(), 42).bytes;
    bad.extend([0, 0, 0]);
    let pg = write(&d, "good.pcap", &good);
    let pb = write(&d, "bad.pcap", &bad);
    let out = d.join("o.pcapng").to_string_lossy().into_owned();
    let o = run(&["-r", &pg, "-r", &pb, "-w", &out], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).ends_with(&format!("flowtrail: {pb}: truncated dump file; tried to read 16 header bytes, only got 3 (at byte offset 82)\n")));
    assert_eq!(frames_of(&out).unwrap().iter().map(|r| r.1).collect::<Vec<_>>(), vec![1, 2, 5]);
}

/// Cut a small pcap and a small pcapng at every byte offset: never a panic, always either a
/// clean read or a message naming the file.
#[test]
fn truncation_sweep() {
    let d = tempdir("sweep");
    let pcap = Pcap::new(true, true, 0, 1).record(1, 0, &arp(), 42).record(2, 0, &arp()[..30], 42).bytes;
    let ng = Pcapng::new()
        .shb(false)
        .idb(1, 0, Some("eth0"), Some(9))
        .idb(101, 0, Some("tun0"), None)
        .epb(0, 1, &arp(), 42, Some(1))
        .epb(1, 2, &raw_udp(), 28, None)
        .shb(true)
        .idb(1, 0, Some("eth0"), None)
        .spb(&arp(), 42)
        .bytes;
    for (name, full) in [("cut.pcap", pcap), ("cut.pcapng", ng)] {
        for n in 0..=full.len() {
            let p = write(&d, name, &full[..n]);
            let o = run(&["-n", "-r", &p], None);
            let code = o.status.code();
            assert!(code == Some(0) || code == Some(1), "{name} at {n}: {code:?}");
            let err = stderr(&o);
            assert!(!err.contains("panicked"), "{name} at {n}: {err}");
            if code == Some(1) {
                assert!(err.lines().last().unwrap().starts_with(&format!("flowtrail: {p}: ")), "{name} at {n}: {err}");
            }
            if n == full.len() {
                assert_eq!(code, Some(0), "{name} complete");
            }
        }
    }
}
