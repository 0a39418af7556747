//! `-w`: classic pcap for one point (byte-identical to `tcpdump -w` where precision agrees),
//! pcapng for several points or `.pcapng`; reading the result back gives the same frames and
//! labels.

mod offline_support;
use offline_support::*;

fn corpus(name: &str) -> Option<String> {
    let p = std::path::Path::new("/work/shared/corpus/tcpdump").join(name);
    p.exists().then(|| p.to_string_lossy().into_owned())
}

#[test]
fn pcap_round_trip_keeps_bytes_and_precision() {
    let d = tempdir("w-pcap");
    for (be, nano) in [(false, false), (false, true), (true, false), (true, true)] {
        let input = Pcap::new(be, nano, 1500, 1).record(1, 999, &arp(), 60).record(2, 7, &arp()[..30], 42);
        let p = write(&d, "in.pcap", &input.bytes);
        let out = d.join("out.pcap").to_string_lossy().into_owned();
        let o = run(&["-r", &p, "-w", &out], None);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(stdout(&o).is_empty());
        let written = std::fs::read(&out).unwrap();
        // Little-endian input: the output is the input, byte for byte.
        if !be {
            assert_eq!(written, input.bytes);
        }
        let magic = u32::from_le_bytes([written[0], written[1], written[2], written[3]]);
        assert_eq!(magic, if nano { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
        let strip = |v: Vec<Row>| v.into_iter().map(|r| (r.1, r.2, r.3, r.4)).collect::<Vec<_>>();
        assert_eq!(strip(frames_of(&out).unwrap()), strip(frames_of(&p).unwrap()));
    }
}

#[test]
fn pcap_output_matches_tcpdump() {
    if !have_tcpdump() {
        return;
    }
    let d = tempdir("w-tcpdump");
    for (name, extra) in [("tcp-handshake-micro.pcap", None), ("tcp-handshake-nano.pcap", Some("--nano")), ("icmp-length-zero.pcapng", Some("--micro"))] {
        let Some(p) = corpus(name) else { continue };
        let ours = d.join("ours.pcap").to_string_lossy().into_owned();
        let theirs = d.join("theirs.pcap").to_string_lossy().into_owned();
        let mut a = vec!["-r", p.as_str(), "-w", ours.as_str()];
        let mut b = vec!["-r", p.as_str(), "-w", theirs.as_str()];
        if let Some(x) = extra {
            a.push(x);
            if x == "--nano" {
                b.push(x);
            }
        }
        assert_eq!(run(&a, None).status.code(), Some(0));
        assert_eq!(tcpdump(&b).status.code(), Some(0));
        assert_eq!(std::fs::read(&ours).unwrap(), std::fs::read(&theirs).unwrap(), "{name}");
        // With a filter and -c, too.
        let mut a = a.clone();
        let mut b = b.clone();
        for v in [&mut a, &mut b] {
            v.extend(["-c", "2", "tcp[tcpflags] & tcp-ack != 0"]);
        }
        assert_eq!(run(&a, None).status.code(), Some(0));
        tcpdump(&b);
        assert_eq!(std::fs::read(&ours).unwrap(), std::fs::read(&theirs).unwrap(), "{name} filtered");
    }
}

#[test]
fn pcapng_when_several_points_or_named_so() {
    let d = tempdir("w-ng");
    let a = Pcap::new(false, true, 0, 1).record(1, 5, &arp(), 42).record(3, 0, &arp(), 42);
    let b = Pcapng::new()
        .shb(false)
        .idb(101, 0, Some("tun0"), None)
        .idb(1, 0, Some("eth1"), None)
        .epb(0, 2_000_000, &raw_udp(), 28, Some(1))
        .epb(1, 2_500_000, &arp(), 42, Some(2));
    let pa = write(&d, "a.pcap", &a.bytes);
    let pb = write(&d, "b.pcapng", &b.bytes);
    let out = d.join("all.pcap").to_string_lossy().into_owned();
    let o = run(&["-r", &format!("host={pa}"), "-r", &format!("vm={pb}"), "-w", &out, "-U"], None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(&bytes[0..4], &[0x0a, 0x0d, 0x0d, 0x0a], "several points: pcapng even for .pcap");
    let rows = frames_of(&out).unwrap();
    let got: Vec<(&str, i64, u64)> = rows.iter().map(|r| (r.0.as_str(), r.1, r.2)).collect();
    assert_eq!(got, vec![("host", 1, 5), ("vm/tun0", 2, 0), ("vm/eth1", 2, 500_000_000), ("host", 3, 0)]);
    assert_eq!(rows[1].5, flowtrail::capture::Direction::In);
    assert_eq!(rows[2].5, flowtrail::capture::Direction::Out);

    // Re-reading the written file (labels now come from if_name) and writing it again gives
    // the same frames and labels.
    let again = d.join("again.pcapng").to_string_lossy().into_owned();
    assert_eq!(run(&["-r", &out, "-w", &again], None).status.code(), Some(0));
    assert_eq!(frames_of(&again).unwrap(), rows);

    // One point, but named .pcapng.
    let one = d.join("one.pcapng").to_string_lossy().into_owned();
    assert_eq!(run(&["-r", &format!("x={pa}"), "-w", &one], None).status.code(), Some(0));
    let rows = frames_of(&one).unwrap();
    assert_eq!(rows.iter().map(|r| (r.0.as_str(), r.2)).collect::<Vec<_>>(), vec![("x", 5), ("x", 0)]);
}

#[test]
fn write_to_stdout_and_print() {
    let d = tempdir("w-stdout");
    let a = Pcap::new(false, false, 65535, 1).record(1, 0, &arp(), 42).record(2, 0, &arp(), 42).record(3, 0, &arp(), 42);
    let p = write(&d, "a.pcap", &a.bytes);
    let o = run(&["-r", &p, "-w", "-"], None);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(o.stdout, a.bytes);
    let o = run(&["-r", &p, "-w", "-", "-c", "1"], None);
    assert_eq!(o.stdout.len(), 24 + 16 + 42);
    // -w from stdin to stdout: a pipe through.
    let o = run(&["-r", "-", "-w", "-"], Some(&a.bytes));
    assert_eq!(o.stdout, a.bytes);
    // --print with -w prints too.
    let out = d.join("o.pcap").to_string_lossy().into_owned();
    let o = run(&["-r", &p, "-w", &out, "--print"], None);
    assert_eq!(stdout(&o).lines().count(), 3);
}

#[test]
fn write_error_names_the_file() {
    let d = tempdir("w-err");
    let p = write(&d, "a.pcap", &Pcap::new(false, false, 0, 1).record(1, 0, &arp(), 42).bytes);
    let o = run(&["-r", &p, "-w", "/nonexistent/dir/x.pcap"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).ends_with("flowtrail: /nonexistent/dir/x.pcap: No such file or directory\n"), "{}", stderr(&o));
}
