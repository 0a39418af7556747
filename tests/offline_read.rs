//! Reading pcap/pcapng inputs through the binary: formats, stdin, merge order, labels, filters.

mod offline_support;
use offline_support::*;

fn lines(o: &std::process::Output) -> usize {
    stdout(o).lines().count()
}

#[test]
fn pcap_both_byte_orders_and_precisions() {
    let d = tempdir("orders");
    for be in [false, true] {
        for nano in [false, true] {
            let f = Pcap::new(be, nano, 0, 1).record(1, 5, &arp(), 42).record(2, 6, &arp(), 42);
            let p = write(&d, &format!("o{be}{nano}.pcap"), &f.bytes);
            let o = run(&["-r", &p], None);
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            assert_eq!(lines(&o), 2);
            assert_eq!(
                stderr(&o),
                format!("reading from file {p}, link-type EN10MB (Ethernet), snapshot length 262144\n")
            );
            let rows = frames_of(&p).unwrap();
            assert_eq!((rows[0].1, rows[0].2), (1, if nano { 5 } else { 5000 }));
        }
    }
}

/// Two sections (little then big endian), interfaces of different link types.
fn two_sections() -> Vec<u8> {
    Pcapng::new()
        .shb(false)
        .idb(1, 0, Some("eth0"), None)
        .idb(101, 65535, Some("tun0"), Some(9))
        .epb(0, 1_000_000, &arp(), 42, Some(1))
        .epb(1, 2_000_000_000, &raw_udp(), 28, Some(2))
        .block(0x0BAD, vec![1, 2, 3, 4])
        .shb(true)
        .idb(1, 0, Some("eth0"), None)
        .epb(0, 3_000_000, &arp(), 42, None)
        .spb(&arp(), 42)
        .pb(0, 5_000_000, &arp())
        .bytes
}

#[test]
fn pcapng_two_sections_two_linktypes() {
    let d = tempdir("ng2");
    let p = write(&d, "two.pcapng", &two_sections());
    let o = run(&["-r", &p], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(lines(&o), 5);
    assert_eq!(
        stderr(&o),
        format!("reading from file {p}, link-type EN10MB (Ethernet), snapshot length 262144\n")
    );
    let rows = frames_of(&p).unwrap();
    let labels: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    // eth0 of section 2 repeats eth0 of section 1: same point.
    assert_eq!(labels, vec!["eth0", "tun0", "eth0", "eth0", "eth0"]);
    assert_eq!((rows[1].1, rows[1].2), (2, 0));
    assert_eq!(rows[0].5, flowtrail::capture::Direction::In);
    assert_eq!(rows[1].5, flowtrail::capture::Direction::Out);
    assert_eq!(rows[3].1, 0, "SPB has no timestamp");
    assert_eq!(rows[4].1, 5);
}

#[test]
fn pcapng_labels_with_label_prefix() {
    use flowtrail::capture::{OfflineReader, Points};
    let d = tempdir("nglabels");
    let p = write(&d, "two.pcapng", &two_sections());
    let mut points = Points::default();
    let mut m = flowtrail::capture::Merger::new();
    m.add(Box::new(OfflineReader::open(&format!("vm={p}"), &mut points).unwrap()));
    m.prime(&mut points);
    let labels: Vec<&str> = points.points.iter().map(|p| p.label.as_str()).collect();
    assert_eq!(labels, vec!["vm/eth0", "vm/tun0"]);
    // One interface: the label alone; unnamed interface: the file stem.
    let one = Pcapng::new().shb(false).idb(1, 0, None, None).epb(0, 1, &arp(), 42, None).bytes;
    let p1 = write(&d, "one.pcapng", &one);
    assert_eq!(frames_of(&p1).unwrap()[0].0, "one");
    assert_eq!(frames_of(&format!("x={p1}")).unwrap()[0].0, "x");
}

#[test]
fn stdin_input() {
    let f = Pcap::new(false, false, 0, 1).record(1, 0, &arp(), 42).record(2, 0, &arp(), 42);
    let o = run(&["-r", "-"], Some(&f.bytes));
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(lines(&o), 2);
    assert_eq!(stderr(&o), "reading from file -, link-type EN10MB (Ethernet), snapshot length 262144\n");
    let ng = two_sections();
    let o = run(&["-r", "-"], Some(&ng));
    assert_eq!(lines(&o), 5);
}

#[test]
fn merge_order_of_two_files_and_labels() {
    let d = tempdir("merge");
    let a = Pcap::new(false, false, 0, 1).record(1, 0, &arp(), 42).record(3, 0, &arp(), 42).record(3, 0, &arp(), 43);
    let b = Pcapng::new().shb(true).idb(101, 0, Some("tun0"), None).epb(0, 0, &raw_udp(), 28, None).epb(0, 3_000_000, &raw_udp(), 29, None).epb(0, 4_000_000, &raw_udp(), 30, None);
    let pa = write(&d, "a.pcap", &a.bytes);
    let pb = write(&d, "b.pcapng", &b.bytes);
    let out = d.join("m.pcapng").to_string_lossy().into_owned();
    let o = run(&["-r", &format!("left={pa}"), "-r", &pb, "-w", &out], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(lines(&o), 0, "-w without --print prints nothing");
    assert_eq!(stderr(&o).lines().count(), 2);
    let rows = frames_of(&out).unwrap();
    let got: Vec<(&str, i64, u32)> = rows.iter().map(|r| (r.0.as_str(), r.1, r.4)).collect();
    assert_eq!(
        got,
        vec![("tun0", 0, 28), ("left", 1, 42), ("left", 3, 42), ("left", 3, 43), ("tun0", 3, 29), ("tun0", 4, 30)]
    );
}

#[test]
fn filter_on_off_and_count() {
    let d = tempdir("filter");
    let f = Pcapng::new()
        .shb(false)
        .idb(1, 0, Some("eth0"), None)
        .idb(101, 0, Some("tun0"), None)
        .epb(0, 1, &arp(), 42, None)
        .epb(1, 2, &raw_udp(), 28, None)
        .epb(0, 3, &arp(), 42, None);
    let p = write(&d, "f.pcapng", &f.bytes);
    assert_eq!(lines(&run(&["-r", &p], None)), 3);
    assert_eq!(lines(&run(&["-r", &p, "arp"], None)), 2);
    assert_eq!(lines(&run(&["-r", &p, "udp", "port", "5678"], None)), 1);
    assert_eq!(lines(&run(&["-r", &p, "tcp"], None)), 0);
    assert_eq!(lines(&run(&["-r", &p, "-c", "2"], None)), 2);
    assert_eq!(lines(&run(&["-r", &p, "-c", "1", "udp"], None)), 1);
    let ff = write(&d, "expr", b"# comment\narp # trailing\n");
    assert_eq!(lines(&run(&["-r", &p, "-F", &ff], None)), 2);
}

#[test]
fn len_filters_use_wire_length_like_tcpdump() {
    let d = tempdir("len");
    // Snapped frames: 20 bytes captured of 200 on the wire, and a full 42-byte one.
    let f = Pcap::new(false, false, 20, 1).record(1, 0, &arp()[..20], 200).record(2, 0, &arp()[..20], 42);
    let p = write(&d, "len.pcap", &f.bytes);
    assert_eq!(lines(&run(&["-r", &p, "greater", "100"], None)), 1);
    assert_eq!(lines(&run(&["-r", &p, "less", "50"], None)), 1);
    if have_tcpdump() {
        for expr in ["greater 100", "less 50", "len > 30"] {
            let t = tcpdump(&["-r", &p, expr]);
            let ours = run(&["-r", &p, expr], None);
            assert_eq!(String::from_utf8_lossy(&t.stdout).lines().count(), lines(&ours), "{expr}");
        }
    }
}

#[test]
fn bad_filter_exits_1_with_libpcap_message() {
    let d = tempdir("badfilter");
    let p = write(&d, "g.pcap", &Pcap::new(false, false, 0, 1).record(1, 0, &arp(), 42).bytes);
    let o = run(&["-r", &p, "tcp", "port"], None);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(lines(&o), 0);
    assert!(stderr(&o).ends_with("\nflowtrail: can't parse filter expression: syntax error\n"), "{}", stderr(&o));
    let o = run(&["-r", &p, "port 99999"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).ends_with("flowtrail: illegal port number 99999 > 65535\n"));
    let raw = write(&d, "r.pcap", &Pcap::new(false, false, 0, 101).bytes);
    let o = run(&["-r", &raw, "ether host 1:2:3:4:5:6"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("flowtrail: ethernet addresses supported only on"));
}

#[test]
fn linktype_names_like_tcpdump() {
    let d = tempdir("names");
    for (lt, text) in [
        (1, "EN10MB (Ethernet)"),
        (113, "LINUX_SLL (Linux cooked v1)"),
        (276, "LINUX_SLL2 (Linux cooked v2)"),
        (0, "NULL (BSD loopback)"),
        (108, "LOOP (OpenBSD loopback)"),
        (101, "RAW (Raw IP)"),
        (228, "IPV4 (Raw IPv4)"),
        (229, "IPV6 (Raw IPv6)"),
        (147, "147"),
    ] {
        let p = write(&d, &format!("lt{lt}.pcap"), &Pcap::new(false, false, 65535, lt).bytes);
        let o = run(&["-r", &p], None);
        assert_eq!(o.status.code(), Some(0));
        let first = stderr(&o).lines().next().unwrap().to_string();
        assert_eq!(first, format!("reading from file {p}, link-type {text}, snapshot length 65535"));
        if have_tcpdump() {
            let t = tcpdump(&["-r", &p]);
            assert_eq!(String::from_utf8_lossy(&t.stderr), stderr(&o), "link type {lt}");
        }
    }
}

#[test]
fn corpus_files_read_like_tcpdump() {
    let dir = std::path::Path::new("/work/shared/corpus/tcpdump");
    if !dir.exists() {
        return;
    }
    for name in ["empty.pcap", "empty.pcapng", "time_2106_overflow.pcapng", "time_2106.pcap"] {
        let p = dir.join(name).to_string_lossy().into_owned();
        let o = run(&["-r", &p], None);
        assert_eq!(o.status.code(), Some(0), "{name}");
        assert_eq!(
            stderr(&o),
            format!("reading from file {p}, link-type EN10MB (Ethernet), snapshot length 262144\n")
        );
    }
    let rows = frames_of(&dir.join("time_2106_overflow.pcapng").to_string_lossy()).unwrap();
    assert_eq!(rows[0].1, 4_294_967_296);
    let rows = frames_of(&dir.join("time_2106_max.pcap").to_string_lossy()).unwrap();
    assert_eq!(rows[0].1, -1, "libpcap 1.10 reads pcap seconds as signed 32-bit");
}

#[test]
fn broken_pipe_ends_quietly() {
    use std::io::Read;
    let d = tempdir("pipe");
    let mut f = Pcap::new(false, false, 0, 1);
    for i in 0..200_000 {
        f = f.record(i, 0, &arp(), 42);
    }
    let p = write(&d, "big.pcap", &f.bytes);
    let mut child = bin()
        .args(["-r", &p])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 10];
    let _ = out.read(&mut buf).unwrap();
    drop(out);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}
