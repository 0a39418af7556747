//! Hostile input through the joined `--flows` (the default) and `--flows=json` (no root
//! needed): point labels, conntrack scopes and namespaces, process names chosen by
//! strangers come out escaped (the text and the JSON hold nothing a terminal would act on);
//! `--conntrack [NETNS=]FILE` with garbage (any bytes, not UTF-8, only garbage, missing)
//! gives either the joined output plus a note naming the file, or a clear error naming it,
//! never a panic. A proptest runs the binary on random conntrack files and labels.

mod flow_support;

use flow_support::*;
use flowtrail::capture::Timestamp;
use flowtrail::conntrack::text as ct_text;
use flowtrail::decode::{Ip, Tcp};
use flowtrail::join::{JoinConfig, Joiner, ObservationFeatures, ObservationId, Owner, Proto, Side};
use flowtrail::netns::Netns;
use flowtrail::reassembly::Direction;
use proptest::prelude::*;
use std::path::{Path, PathBuf};

const T0: u64 = 1_700_000_000_000_000;

/// Nothing a terminal would act on: no control character (but the newlines between lines)
/// and nothing `escape::text` would change.
fn assert_terminal_safe(what: &str, s: &str) {
    for line in s.lines() {
        assert!(
            matches!(flowtrail::escape::text(line), std::borrow::Cow::Borrowed(_)) && !line.chars().any(char::is_control),
            "{what}: not terminal-safe: {line:?}"
        );
    }
}

const HOSTILE: [&str; 4] = ["\x1b]0;owned\x07", "\x1b[2J\u{9b}31m", "a\u{202e}b\r", "\u{200b}\u{85}x"];

/// One connection client 10.0.0.1:1000 -> 10.0.0.2:80 seen at one point, its ISN 7.
fn observation(point: u32) -> ObservationFeatures {
    let (c, s) = ("10.0.0.1:1000".parse().unwrap(), "10.0.0.2:80".parse().unwrap());
    let mut f = ObservationFeatures::new(point, Proto::Tcp, c, s);
    let ip = Ip { src: c.ip(), dst: s.ip(), ttl: 64, ip_id: Some(1), fragmented: false };
    for (i, (dir, seq, flags, payload)) in [
        (Direction::ClientToServer, 7u32, 0x02u16, &b""[..]),
        (Direction::ServerToClient, 100, 0x12, b""),
        (Direction::ClientToServer, 8, 0x18, b"hello, joiner"),
    ]
    .into_iter()
    .enumerate()
    {
        let tcp = Tcp { seq, ack: 8, flags, payload, payload_len: payload.len() as u32, ..Tcp::default() };
        f.on_tcp(dir, Timestamp { sec: 1_700_000_000, nsec: i as u64 * 1000 }, &ip, &tcp);
        if !payload.is_empty() {
            f.on_stream_data(dir, 0, payload);
        }
    }
    f
}

/// Regression (the join fuzz target's terminal-safety check): labels given to the joiner
/// directly (live namespaces), conntrack scopes and namespace names, and process names
/// reached the text tree and the JSON raw.
#[test]
fn hostile_names_reach_joined_output_escaped() {
    for h in HOSTILE {
        let mut a = observation(0);
        a.set_owner(Side::Client, Owner { pid: 1, comm: h.to_string() });
        let b = observation(1);
        let (entries, _) = ct_text::parse_entries(
            "tcp      6 431999 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1000 dport=80 \
             src=172.16.0.9 dst=10.0.0.1 sport=8080 dport=1000 [ASSURED] mark=0 use=1 id=5",
        );
        assert_eq!(entries.len(), 1);
        let mut named = entries[0].clone();
        named.netns = Netns::Named(h.to_string());
        let mut j = Joiner::new(JoinConfig::default());
        j.set_point(0, h, Some(Netns::Named(h.to_string())));
        j.set_point(1, format!("{h}/veth"), None);
        j.add_observation(ObservationId(1), &a);
        j.add_observation(ObservationId(2), &b);
        j.add_conntrack_in(&entries[0], h);
        j.add_conntrack(&named);
        j.add_socket_owner(
            None,
            Proto::Tcp,
            "10.0.0.2:80".parse().unwrap(),
            "10.0.0.1:1000".parse().unwrap(),
            Owner { pid: 2, comm: h.to_string() },
        );
        let m = j.join();
        let text = m.to_string();
        let mut json = Vec::new();
        m.write_json_lines(&mut json).unwrap();
        let json = String::from_utf8(json).unwrap();
        assert_terminal_safe("text", &text);
        assert_terminal_safe("JSON", &json);
        // The names are there, escaped (and the process shown).
        let esc = flowtrail::escape::text(h).into_owned();
        assert!(text.contains(&format!("{esc}/conntrack")), "{text}");
        assert!(text.contains(&format!("{esc}[1]")), "{text}");
        for l in json.lines() {
            serde_json::from_str::<serde_json::Value>(l).unwrap();
        }
    }
}

/// A capture of two connections 10.0.0.1:1000 -> 10.0.0.2:80 and 10.0.0.3:2000 -> 10.0.0.4:443.
fn capture(dir: &Path) -> PathBuf {
    let path = dir.join("two.pcap");
    let mut p = Pcap::create(&path);
    let mut t = T0;
    for (c, s, isn) in [(([10, 0, 0, 1], 1000), ([10, 0, 0, 2], 80), 1000), (([10, 0, 0, 3], 2000), ([10, 0, 0, 4], 443), 90_000)] {
        let mut conn = Conn::new(c, s, isn, isn + 4000);
        let mut frames = conn.handshake();
        frames.push(conn.data(true, format!("GET /{isn} HTTP/1.0\r\n\r\n").as_bytes()));
        frames.push(conn.data(false, b"HTTP/1.0 200 OK\r\n\r\n\x1b]0;payload\x07"));
        frames.extend(conn.close());
        for f in frames {
            t += 100;
            p.frame(t, &f);
        }
    }
    p.finish();
    path
}

const CT_LINE: &str = "tcp      6 431999 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1000 dport=80 \
                       src=172.16.0.9 dst=10.0.0.1 sport=8080 dport=1000 [ASSURED] mark=0 use=1 id=77";

/// Runs the binary; returns (success, stdout, stderr), after checking both are terminal-safe.
fn run_flows(args: &[String]) -> (bool, String, String) {
    let o = flowtrail().args(args).output().unwrap();
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    assert!(o.status.code().is_some(), "{args:?}: killed by a signal");
    assert_terminal_safe("stdout", &out);
    assert_terminal_safe("stderr", &err);
    (o.status.success(), out, err)
}

#[test]
fn conntrack_files_with_garbage_and_hostile_labels() {
    let dir = tempdir("hardening-join");
    let pcap = capture(&dir);
    let label = "\x1b[31mhost\u{202e}";
    let r = format!("{label}={}", pcap.display());
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_string_lossy().into_owned()
    };
    let mixed = write("mixed.txt", format!("garbage\n\x1b[2J\u{9b}\n{CT_LINE}\nsrc=1.2.3.4\n").as_bytes());
    let mut not_utf8 = b"\xff\xfe\x00\x1b[2J binary\n".to_vec();
    not_utf8.extend_from_slice(CT_LINE.as_bytes());
    let not_utf8 = write("binary.txt", &not_utf8);
    let only_garbage = write("garbage.txt", b"\x00\x01\x02\n\x1b]0;x\x07 src= dst=\ntcp 6\n");
    let hostile_name = write("\x1b[2Jct.txt", b"nonsense\n");
    for format in ["--flows", "--flows=json"] {
        for file in [&mixed, &not_utf8] {
            let spec = format!("\x1b]0;ns\x07={file}");
            let (ok, out, err) = run_flows(&["-r".into(), r.clone(), format.into(), "--conntrack".into(), spec]);
            assert!(ok, "{err}");
            // The conntrack entry joined the first connection: a synthetic observation
            // labelled by the escaped scope, and the capture's label escaped.
            // (JSON escapes the backslashes of the escapes once more.)
            let shown = if format == "--flows" { out.clone() } else { out.replace("\\\\", "\\") };
            assert!(shown.contains("\\x1b]0;ns\\x07/conntrack"), "{out}");
            assert!(shown.contains("\\x1b[31mhost\\u{202e}"), "{out}");
            assert!(err.contains("not understood, skipped (line 1: "), "{err}");
            assert!(err.contains(&flowtrail::escape::text(file).into_owned()), "{err}");
            if format == "--flows=json" {
                let paths: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
                assert_eq!(paths.len(), 2, "{out}");
            }
        }
        // A scope starting with '-' (found by the proptest below, which passed it as a
        // separate argument that clap took for a flag): given as `--conntrack=-=FILE`.
        let (ok, out, err) = run_flows(&["-r".into(), r.clone(), format.into(), format!("--conntrack=-={mixed}")]);
        assert!(ok, "{err}");
        assert!(out.contains("-/conntrack"), "{out}");
        // Nothing usable: an error naming the file (escaped), exit status 1 or 2, no output.
        for file in [&only_garbage, &hostile_name, &dir.join("missing.txt").to_string_lossy().into_owned()] {
            let (ok, out, err) = run_flows(&["-r".into(), r.clone(), format.into(), "--conntrack".into(), file.clone()]);
            assert!(!ok, "{file:?}: {out}");
            assert!(err.contains(&format!("--conntrack {}", flowtrail::escape::text(file))), "{err}");
            assert!(out.is_empty(), "{out}");
        }
    }
}

/// Lines of a conntrack file: valid entries (some matching the capture), near misses and
/// arbitrary text.
fn ct_lines() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(CT_LINE.to_string()),
        (0u8..5, 0u8..5, any::<u16>(), any::<u16>(), any::<bool>()).prop_map(|(a, b, p, q, udp)| format!(
            "{} src=10.0.0.{a} dst=10.0.0.{b} sport={p} dport={q} src=10.0.0.{b} dst=10.0.0.{a} sport={q} dport={p}",
            if udp { "udp      17 30" } else { "tcp      6 300 ESTABLISHED" }
        )),
        "\\PC{0,60}",
        any::<String>(),
        "(src|dst|sport|dport|id|zone|mark)=[0-9a-f:.]{0,20}( |\\[ASSURED\\])*".prop_map(|s| format!("tcp 6 {s}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]
    /// Random conntrack files, random scopes and labels, text and JSON: never a panic,
    /// always terminal-safe, and either output or an error naming the file.
    #[test]
    fn random_conntrack_files_never_panic(
        lines in proptest::collection::vec(ct_lines(), 0..12),
        scope in "\\PC{0,12}",
        label in any::<String>(),
        json in any::<bool>(),
    ) {
        let dir = tempdir("hardening-join-prop");
        let pcap = dir.join("two.pcap");
        if !pcap.exists() {
            capture(&dir);
        }
        let file = dir.join(format!("ct-{}.txt", std::process::id()));
        std::fs::write(&file, lines.join("\n")).unwrap();
        let label = label.replace(['=', '\0', '/'], "_").trim_start_matches('-').to_string();
        let r = if label.is_empty() { pcap.display().to_string() } else { format!("{label}={}", pcap.display()) };
        let spec = if scope.is_empty() || scope.contains(['/', '=', '\0']) { file.display().to_string() } else { format!("{scope}={}", file.display()) };
        let fmt = if json { "--flows=json" } else { "--flows" };
        // One argument: a scope may start with '-' ("-=FILE" on its own is an unknown flag
        // to clap, as it would be to the user).
        let (ok, out, err) = run_flows(&["-r".into(), r, fmt.into(), format!("--conntrack={spec}")]);
        if ok {
            prop_assert!(!out.is_empty());
        } else {
            prop_assert!(err.contains("--conntrack "), "{}", err);
        }
    }
}

/// Regression: joined `--flows` holds finished records in batches bounded in bytes (the
/// joiner's features counted); once a batch was printed its byte count was not reset, so
/// every later record was joined and printed alone (a batch per record, joins across
/// records lost). 4000 connections under --max-memory 16M (a 1.3 MiB batch bound).
#[test]
fn joined_batches_are_bounded_and_refill() {
    let dir = tempdir("hardening-join-batches");
    let path = dir.join("many.pcap");
    let mut p = Pcap::create(&path);
    let mut t = T0;
    for i in 0..4000u32 {
        let mut conn = Conn::new(([10, 1, (i >> 8) as u8, i as u8], 1000), ([10, 2, 0, 1], 80), i * 7919, i * 104_729);
        let mut frames = conn.handshake();
        frames.push(conn.data(true, format!("request {i}").as_bytes()));
        frames.extend(conn.close());
        for f in frames {
            t += 10;
            p.frame(t, &f);
        }
    }
    p.finish();
    let o = flowtrail()
        .args(["-r", path.to_str().unwrap(), "--flows=json", "--max-memory", "16M"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let s = stats(&o);
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} in {s}"));
    let (limit, peak, early) = (n("records_held_limit_bytes"), n("records_held_peak_bytes"), n("records_flushed_early"));
    eprintln!("4000 joined records: held peak {peak} of {limit} bytes, {early} batches printed early");
    assert_eq!(json_lines(&o).len(), 4000);
    assert!(peak <= limit + 8192, "held {peak} bytes, bound {limit}");
    // Each record with its features is about 1.3 KiB, and joined batches close at half the
    // 1.3 MiB bound (one is joined on the join thread while the next fills): 4000 records
    // make about ten batches, never one per record.
    assert!((1..=16).contains(&early), "{early} batches printed early");
}
