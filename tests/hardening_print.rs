//! Packet contents never reach the terminal raw (property tests, no root needed).
//!
//! - Any bytes as a packet of any supported link type (or a real packet from `samples/` and
//!   tcpdump's corpus with random bytes changed, cut or appended, so deep dissectors run), under
//!   any flags (`-n`/`-nn`, `-e`, `-v`.., `-x`/`-X`/`-A` counts, `-q`, `-S`, `-#`, every `-t`
//!   form, labels with a hostile label and direction, hostile SLL2 interface names): printing
//!   never panics and the text holds only newlines, tabs and characters that are safe on a
//!   terminal ([`flowtrail::escape::safe_char`]: no C0/C1 control, no DEL, no bidirectional
//!   or zero-width formatting).
//! - `--follow` (ascii and hex) of arbitrary payloads and gaps, under a hostile point label.
//! - `--flows` text rows of records with hostile labels.
//! - End to end through the binary: a pcapng file whose interface names carry escape
//!   sequences, with hostile payloads: packet lines (labels), `--flows`, `--flows=json`,
//!   `--follow`, and stderr are all clean; JSON carries the label escaped.

mod common;
mod tui_support;

use flowtrail::capture::{Direction, Frame, FrameSource, OfflineReader, Point, Points, Timestamp};
use flowtrail::escape::safe_char;
use flowtrail::flow::{ConnState, EndReason, Endpoint, FlowInfo, FlowRecord, Nanos, Proto};
use flowtrail::print::{Options, Printer, TsFormat};
use flowtrail::report::follow::{Follow, FollowFormat};
use proptest::prelude::*;
use std::sync::{Arc, OnceLock};

/// Link types the printers support, plus one they do not (hex dump path).
const LINKTYPES: [u32; 11] = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147];

/// Every character is a newline, a tab, or safe on a terminal.
fn clean(s: &str) -> Result<(), String> {
    match s.chars().find(|&c| c != '\n' && c != '\t' && !safe_char(c)) {
        None => Ok(()),
        Some(c) => Err(format!("unsafe character {c:?} in {s:?}")),
    }
}

/// (linktype, bytes) of every packet in `samples/` and tcpdump's corpus.
fn real_packets() -> &'static [(u32, Vec<u8>)] {
    static PACKETS: OnceLock<Vec<(u32, Vec<u8>)>> = OnceLock::new();
    PACKETS.get_or_init(|| {
        let mut files = common::sample_files();
        if let Ok(rd) = std::fs::read_dir(common::root().join("tests/corpus/tcpdump")) {
            let mut more: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            more.retain(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"));
            more.sort();
            files.extend(more);
        }
        let mut v = Vec::new();
        for f in files {
            let mut points = Points::default();
            let Ok(mut r) = OfflineReader::open(f.to_str().unwrap(), &mut points) else { continue };
            // A few packets per file keep the set varied and small.
            for _ in 0..40 {
                match r.next_frame(&mut points, Vec::new()) {
                    Ok(Some(fr)) => v.push((fr.linktype, fr.data)),
                    _ => break,
                }
            }
        }
        assert!(v.len() > 500, "{} real packets", v.len());
        v
    })
}

/// A packet: arbitrary bytes under any link type, or a real one mutated.
fn packet() -> impl Strategy<Value = (u32, Vec<u8>)> {
    let arbitrary = (prop::sample::select(&LINKTYPES[..]), prop::collection::vec(any::<u8>(), 0..400));
    let mutated = (
        any::<prop::sample::Index>(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        prop::option::of(any::<prop::sample::Index>()),
        prop::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(which, flips, cut, tail)| {
            let (lt, mut data) = real_packets()[which.index(real_packets().len())].clone();
            for (at, b) in flips {
                if !data.is_empty() {
                    let i = at.index(data.len());
                    data[i] = b;
                }
            }
            if let Some(c) = cut {
                data.truncate(c.index(data.len() + 1));
            }
            data.extend(tail);
            (lt, data)
        });
    prop_oneof![1 => arbitrary, 3 => mutated]
}

#[derive(Debug, Clone)]
struct Flags {
    opts: Options,
    label: String,
    if_name: String,
    origlen_delta: i32,
}

fn flags() -> impl Strategy<Value = Flags> {
    (
        (0u8..6, any::<bool>(), 1u8..=2, any::<bool>(), any::<bool>(), 0u8..3, 0u8..3, 0u8..3),
        (0u8..6, any::<bool>(), any::<bool>(), any::<bool>()),
        any::<String>(),
        any::<String>(),
        -100i32..2000,
    )
        .prop_map(|((v, e, n, q, s, x, xx, a), (t, nano, number, labels), label, if_name, origlen_delta)| Flags {
            opts: Options {
                verbose: v,
                link_header: e,
                // -n or -nn: no resolver is asked in tests.
                numeric: n,
                quick: q,
                absolute_seq: s,
                hex: x,
                hex_ascii: xx,
                ascii: a,
                ts_format: TsFormat::from_count(t),
                nano,
                number,
                labels,
            },
            label,
            if_name,
            origlen_delta,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// Any packet, any flags: no panic, nothing unsafe for a terminal.
    #[test]
    fn printing_any_packet_is_terminal_safe(packets in prop::collection::vec(packet(), 1..4), f in flags(), sec in any::<i64>(), nsec in 0u64..2_000_000_000) {
        let mut printer = Printer::new(f.opts.clone());
        printer.state.if_names = vec![(1, f.if_name.clone()), (2, "lo".into())];
        let mut out = String::new();
        for (i, (linktype, data)) in packets.into_iter().enumerate() {
            let point = Point { label: f.label.clone(), linktype, snaplen: 262_144, nano: f.opts.nano };
            let caplen = data.len() as i64;
            let frame = Frame {
                point: 0,
                ts: Timestamp { sec: sec.wrapping_add(i as i64), nsec },
                linktype,
                origlen: (caplen + i64::from(f.origlen_delta)).clamp(0, u32::MAX as i64) as u32,
                data,
                direction: [Direction::In, Direction::Out, Direction::Unknown][i % 3],
            };
            printer.print_frame(&frame, &point, &mut out);
        }
        prop_assert!(out.ends_with('\n'));
        if let Err(e) = clean(&out) {
            prop_assert!(false, "{}", e);
        }
    }

    /// `--follow` of any bytes, gaps and datagrams under any label: clean text.
    #[test]
    fn follow_output_is_terminal_safe(
        chunks in prop::collection::vec((any::<bool>(), prop::collection::vec(any::<u8>(), 0..300), 0u64..5), 1..12),
        label in any::<String>(),
        hex in any::<bool>(),
        udp in any::<bool>(),
    ) {
        let info = info(&label, if udp { Proto::Udp } else { Proto::Tcp });
        let mut f = Follow::new(1, if hex { FollowFormat::Hex } else { FollowFormat::Ascii });
        let mut out: Vec<u8> = Vec::new();
        let mut offsets = [0u64; 2];
        for (server, bytes, gap) in chunks {
            let dir = if server { flowtrail::reassembly::Direction::ServerToClient } else { flowtrail::reassembly::Direction::ClientToServer };
            let d = usize::from(server);
            if udp {
                f.datagram(&mut out, &info, dir, &bytes).unwrap();
            } else {
                if gap > 0 {
                    f.gap(&mut out, &info, dir, offsets[d], gap).unwrap();
                    offsets[d] += gap;
                }
                f.data(&mut out, &info, dir, offsets[d], &bytes).unwrap();
                offsets[d] += bytes.len() as u64;
            }
        }
        f.end(&mut out, &info).unwrap();
        let text = String::from_utf8(out).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if let Err(e) = clean(&text) {
            prop_assert!(false, "{}", e);
        }
    }

    /// `--flows` rows of records under hostile labels: clean text.
    #[test]
    fn flows_table_is_terminal_safe(labels in prop::collection::vec(any::<String>(), 1..6)) {
        let records: Vec<FlowRecord> = labels.iter().map(|l| FlowRecord {
            info: info(l, Proto::Tcp),
            packets: [1, 2],
            bytes: [3, 4],
            first: Nanos(0),
            last: Nanos(5),
            conn_state: ConnState::OTH,
            history: l.clone(),
            end: EndReason::Evicted,
            tcp: None,
        }).collect();
        let mut out = String::new();
        flowtrail::report::table::write_rows(&mut out, &records, true);
        if let Err(e) = clean(&out) {
            prop_assert!(false, "{}", e);
        }
    }
}

fn info(label: &str, proto: Proto) -> FlowInfo {
    FlowInfo {
        id: 1,
        point_index: 0,
        point: Arc::from(label),
        proto,
        client: Endpoint { addr: [10, 0, 0, 1].into(), port: 40000 },
        server: Endpoint { addr: [10, 0, 0, 2].into(), port: 80 },
    }
}

/// A pcapng file whose interface names are terminal escape sequences (set the title, clear
/// the screen, a bidirectional override), carrying a TCP connection whose payload is escape
/// sequences too. Every output is clean; JSON holds the label escaped.
fn hostile_names_file() -> std::path::PathBuf {
    let names = ["eth0\x1b]0;owned\x07", "\x1b[2J\x1b[31mred\u{202e}lo"];
    let mut c = Conn { seq: [100, 900] };
    let payload = b"GET /\x1b[2J\x1b]0;title\x07\r\n\x9b31m\xff\x00";
    let frames = [
        c.frame(true, 0x02, b""),
        c.frame(false, 0x12, b""),
        c.frame(true, 0x10, b""),
        c.frame(true, 0x18, payload),
        c.frame(false, 0x18, payload),
        c.frame(true, 0x11, b""),
        c.frame(false, 0x11, b""),
    ];
    let mut file = shb();
    for n in names {
        file.extend(idb(n));
    }
    for (i, f) in frames.iter().enumerate() {
        file.extend(epb((i % 2) as u32, i as u64, f));
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile-names");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("names.pcapng");
    std::fs::write(&path, &file).unwrap();
    path
}

#[test]
fn hostile_interface_names_are_escaped_everywhere() {
    let path = hostile_names_file();
    let p = path.to_str().unwrap();
    let runs: [&[&str]; 7] = [
        &["-n", "-r", p],
        &["-nn", "-e", "-vvv", "-X", "-r", p],
        &["-nn", "-A", "-r", p],
        &["-n", "-r", p, "--flows"],
        &["-n", "-r", p, "--flows=json"],
        &["-n", "-r", p, "--follow", "1"],
        &["-n", "-r", p, "--follow", "1", "--follow-format", "hex"],
    ];
    for args in runs {
        let o = common::flowtrail().args(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        for (what, bytes) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
            let text = String::from_utf8(bytes.clone()).unwrap_or_else(|e| panic!("{args:?} {what}: {e}"));
            if let Err(e) = clean(&text) {
                panic!("{args:?} {what}: {e}");
            }
        }
        let out = String::from_utf8_lossy(&o.stdout);
        if args.contains(&"--flows=json") {
            let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
            let point = v["legs"][0]["observations"][0]["point"].as_str().unwrap().to_string();
            assert!(point == "eth0\\x1b]0;owned\\x07" || point.starts_with("\\x1b[2J"), "{point}");
        } else if args.len() == 3 {
            assert!(out.contains("eth0\\x1b]0;owned\\x07 IP 10.0.0.1.40000 > 10.0.0.2.80"), "{out}");
            assert!(out.contains("\\x1b[2J\\x1b[31mred\\u{202e}lo"), "{out}");
        }
    }
}

/// TCP frames of one connection (Ethernet, IPv4), sequence numbers tracked.
struct Conn {
    seq: [u32; 2],
}

impl Conn {
    fn frame(&mut self, client: bool, flags: u8, payload: &[u8]) -> Vec<u8> {
        let (s, d) = if client { (([10, 0, 0, 1], 40000), ([10, 0, 0, 2], 80)) } else { (([10, 0, 0, 2], 80), ([10, 0, 0, 1], 40000)) };
        let (me, peer) = if client { (0, 1) } else { (1, 0) };
        let mut b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(s.0, d.0, 64)
            .tcp(s.1, d.1, self.seq[me], 65000);
        if flags & 0x02 != 0 {
            b = b.syn();
        }
        if flags & 0x01 != 0 {
            b = b.fin();
        }
        if flags & 0x08 != 0 {
            b = b.psh();
        }
        if flags & 0x10 != 0 {
            b = b.ack(self.seq[peer]);
        }
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        self.seq[me] = self.seq[me].wrapping_add(payload.len() as u32 + u32::from(flags & 0x03 != 0));
        out
    }
}

fn block(ty: u32, body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    body.resize(body.len().div_ceil(4) * 4, 0);
    let total = (12 + body.len()) as u32;
    [ty.to_le_bytes().to_vec(), total.to_le_bytes().to_vec(), body, total.to_le_bytes().to_vec()].concat()
}

fn shb() -> Vec<u8> {
    block(0x0a0d_0d0a, &[0x1a2b_3c4du32.to_le_bytes().to_vec(), vec![1, 0, 0, 0], vec![0xff; 8]].concat())
}

fn idb(name: &str) -> Vec<u8> {
    let mut opt = [2u16.to_le_bytes().to_vec(), (name.len() as u16).to_le_bytes().to_vec(), name.as_bytes().to_vec()].concat();
    opt.resize(opt.len().div_ceil(4) * 4, 0);
    block(1, &[vec![1, 0, 0, 0], 262_144u32.to_le_bytes().to_vec(), opt, vec![0; 4]].concat())
}

fn epb(iface: u32, i: u64, data: &[u8]) -> Vec<u8> {
    let ts = 1_700_000_000_000_000u64 + i * 1000;
    let len = (data.len() as u32).to_le_bytes().to_vec();
    block(
        6,
        &[
            iface.to_le_bytes().to_vec(),
            ((ts >> 32) as u32).to_le_bytes().to_vec(),
            (ts as u32).to_le_bytes().to_vec(),
            len.clone(),
            len,
            data.to_vec(),
        ]
        .concat(),
    )
}

/// The TUI's paths table and path view over the same file: every drawn cell is clean.
#[test]
fn tui_draws_hostile_interface_names_escaped() {
    use crossterm::event::KeyCode;
    let path = hostile_names_file();
    let inputs = flowtrail::tui::source::Inputs::open(&[path.to_str().unwrap().to_string()], None).expect("open");
    let print = Options { numeric: 2, ts_format: TsFormat::Unix, ..Options::default() };
    let model = flowtrail::tui::source::FrameModel::load(inputs, print);
    let mut app = tui_support::app(&model, tui_support::WIDTH, tui_support::HEIGHT);
    let mut screens = vec![tui_support::screen(&app)];
    tui_support::press(&mut app, &model, [tui_support::code(KeyCode::Enter)]);
    screens.push(tui_support::screen(&app));
    let all = screens.concat().join("\n");
    if let Err(e) = clean(&all) {
        panic!("{e}");
    }
    assert!(all.contains("eth0\\x1b]0;owned\\x07") || all.contains("\\x1b[2J"), "{all}");
}

/// A capture whose file name carries escape sequences (a directory of strangers' captures
/// read with `-r *.pcap`): the `reading from file` line, the label and an error naming the
/// file are all clean.
#[test]
fn hostile_file_names_are_escaped() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile-file-names");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sample = std::fs::read(common::root().join("samples/icmp.pcap")).unwrap();
    let good = dir.join("a\x1b]0;owned\x07.pcap");
    let cut = dir.join("b\x1b[2J.pcap");
    std::fs::write(&good, &sample).unwrap();
    std::fs::write(&cut, &sample[..sample.len() - 5]).unwrap();
    let o = common::flowtrail()
        .args(["-n", "-r"])
        .arg(&good)
        .arg("-r")
        .arg(&cut)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    for (what, bytes) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
        if let Err(e) = clean(&String::from_utf8_lossy(bytes)) {
            panic!("{what}: {e}");
        }
    }
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("reading from file") && err.contains("a\\x1b]0;owned\\x07.pcap"), "{err}");
    assert!(err.contains("b\\x1b[2J.pcap: truncated dump file"), "{err}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("a\\x1b]0;owned\\x07 "), "labels are the escaped stems");
}
