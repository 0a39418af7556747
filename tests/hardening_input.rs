//! Strangers' capture files: real samples cut at every byte offset, and crafted files whose
//! length fields claim gigabytes. Each run prints exactly the packets before the fault, then
//! one clear error naming the file and the offset of the record or block at fault, exits 1
//! (0 when the cut falls between records), never panics, and never allocates what the file
//! only claims (peak RSS of the child, measured from outside, stays under 64 MiB, and it runs
//! within a 512 MiB address space).

mod common;
mod offline_support;

use offline_support::*;
use std::process::Output;

/// Byte ranges `[start, end)` of the records (pcap, after the 24-byte header) or blocks
/// (pcapng) of a little-endian file, and whether each holds a packet.
fn units(bytes: &[u8], pcapng: bool) -> Vec<(usize, usize, bool)> {
    let u32_at = |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize;
    let mut v = Vec::new();
    let mut at = if pcapng { 0 } else { 24 };
    while at + 16 <= bytes.len() {
        let (len, packet) = if pcapng {
            let ty = u32_at(at);
            (u32_at(at + 4), matches!(ty, 2 | 3 | 6))
        } else {
            (16 + u32_at(at + 8), true)
        };
        if at + len > bytes.len() {
            break;
        }
        v.push((at, at + len, packet));
        at += len;
    }
    v
}

/// The first whole blocks of a pcapng file, up to about `max` bytes.
fn pcapng_prefix(bytes: &[u8], max: usize) -> Vec<u8> {
    let end = units(bytes, true).into_iter().map(|(_, e, _)| e).take_while(|&e| e <= max).last().unwrap_or(0);
    bytes[..end].to_vec()
}

fn sweep(name: &str, full: &[u8], pcapng: bool) {
    let d = tempdir(&format!("cut-{name}"));
    let full_path = write(&d, name, full);
    let units = units(full, pcapng);
    let header_end = if pcapng { units[0].1 } else { 24 };
    let packets = units.iter().filter(|u| u.2).count();
    assert!(packets >= 5, "{name}: {packets} packets");
    // What flowtrail prints for the first K packets of the whole file.
    let expected: Vec<String> = (0..=packets)
        .map(|k| {
            let o = run(&["-n", "-c", &k.to_string(), "-r", &full_path], None);
            assert_eq!(o.status.code(), Some(0), "{name} -c {k}: {}", stderr(&o));
            stdout(&o)
        })
        .collect();
    assert_eq!(expected[packets], stdout(&run(&["-n", "-r", &full_path], None)));
    let offsets: Vec<usize> = (0..=full.len()).collect();
    let threads = 4;
    std::thread::scope(|s| {
        for t in 0..threads {
            let (d, units, expected, offsets) = (&d, &units, &expected, &offsets);
            s.spawn(move || {
                for &n in offsets.iter().skip(t).step_by(threads) {
                    let p = write(d, &format!("{t}-{name}"), &full[..n]);
                    let o = run(&["-n", "-r", &p], None);
                    check_cut(name, n, &p, &o, units, header_end, expected);
                }
            });
        }
    });
}

fn check_cut(
    name: &str,
    n: usize,
    path: &str,
    o: &Output,
    units: &[(usize, usize, bool)],
    header_end: usize,
    expected: &[String],
) {
    let err = stderr(o);
    let code = o.status.code();
    assert!(!err.contains("panicked"), "{name} cut at {n}: {err}");
    assert!(code == Some(0) || code == Some(1), "{name} cut at {n}: {code:?} {err}");
    let whole: Vec<&(usize, usize, bool)> = units.iter().filter(|u| u.1 <= n).collect();
    let k = whole.iter().filter(|u| u.2).count();
    assert_eq!(stdout(o), expected[k], "{name} cut at {n}: the {k} packets before the cut");
    let at_boundary = n == header_end || units.iter().any(|u| u.1 == n);
    let last = err.lines().last().unwrap_or("");
    if n > header_end && at_boundary {
        assert_eq!(code, Some(0), "{name} cut at {n}, between records: {err}");
        return;
    }
    if n == header_end && code == Some(0) {
        return; // a file header and nothing else (pcap) is a valid, empty file
    }
    assert_eq!(code, Some(1), "{name} cut at {n}: {err}");
    assert!(last.starts_with(&format!("flowtrail: {path}: ")), "{name} cut at {n}: {err}");
    if n > header_end {
        // Inside a record or block after the header: its start offset is named.
        let start = units.iter().find(|u| u.0 <= n && n < u.1).map_or(whole.last().map_or(header_end, |u| u.1), |u| u.0);
        assert!(last.ends_with(&format!("(at byte offset {start})")), "{name} cut at {n}: {last}");
        assert!(last.contains("truncated"), "{name} cut at {n}: {last}");
    }
}

/// `samples/icmp.pcap` cut at every byte offset.
#[test]
fn real_pcap_cut_at_every_offset() {
    let full = std::fs::read(common::root().join("samples/icmp.pcap")).unwrap();
    sweep("icmp.pcap", &full, false);
}

/// The first 3.5 KB of `samples/vm-all.pcapng` (its section header, four interfaces, 25
/// packets) cut at every byte offset.
#[test]
fn real_pcapng_cut_at_every_offset() {
    let full = std::fs::read(common::root().join("samples/vm-all.pcapng")).unwrap();
    sweep("vm-all.pcapng", &pcapng_prefix(&full, 3500), true);
}

/// Files whose length fields claim gigabytes (or are simply wrong): one error naming the file
/// (and the offset), and the child's peak RSS stays small: nothing is allocated for bytes
/// the file only claims.
#[test]
fn absurd_lengths_never_allocate() {
    let d = tempdir("absurd");
    let le = |v: u32| v.to_le_bytes().to_vec();
    let pcap_header = |snaplen: u32, linktype: u32| {
        [le(0xa1b2_c3d4), vec![2, 0, 4, 0], le(0), le(0), le(snaplen), le(linktype)].concat()
    };
    let record = |caplen: u32, len: u32| [le(1), le(0), le(caplen), le(len)].concat();
    let shb = Pcapng::new().shb(false).bytes;
    let block = |ty: u32, total: u32, body: &[u8]| [le(ty), le(total), body.to_vec()].concat();
    // An IDB of LINKTYPE_DBUS (231): libpcap allows 128 MiB packets (and blocks) there.
    let dbus = Pcapng::new().shb(false).idb(231, 0, None, None).bytes;
    let mut noise = Vec::new();
    let mut x = 7u32;
    for _ in 0..4096 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        noise.push(x as u8);
    }
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "caplen-4g.pcap",
            [pcap_header(262_144, 1), record(0xffff_fff0, 0xffff_fff0), vec![0; 64]].concat(),
            "invalid packet capture length 4294967280, bigger than snaplen of 262144 (at byte offset 24)",
        ),
        (
            // 120 MiB claimed where 128 MiB is allowed, 1000 bytes there.
            "dbus-120m.pcap",
            [pcap_header(0x7fff_ffff, 231), record(120 << 20, 120 << 20), vec![0x55; 1000]].concat(),
            "truncated dump file; tried to read 125829120 captured bytes, only got 1000 (at byte offset 24)",
        ),
        (
            "block-4g.pcapng",
            [shb.clone(), block(6, 0xffff_fffc, &[0; 64])].concat(),
            "pcapng block size 4294967292 > maximum 16777216 (at byte offset 28)",
        ),
        (
            "shb-4g.pcapng",
            [le(0x0a0d_0d0a), le(0xffff_fff0), le(0x1a2b_3c4d), vec![1, 0, 0, 0], vec![0xff; 8]].concat(),
            "Section Header Block in pcapng dump file has invalid length",
        ),
        (
            "dbus-block-120m.pcapng",
            [dbus.clone(), block(6, 120 << 20, &[0x55; 4000])].concat(),
            "truncated pcapng dump file; tried to read 125829112 bytes, only got 4000 (at byte offset 52)",
        ),
        (
            "epb-caplen-4g.pcapng",
            [
                Pcapng::new().shb(false).idb(1, 0, None, None).bytes,
                block(6, 44, &[le(0), le(0), le(1), le(0xffff_fff0), le(60), vec![0; 12], le(44)].concat()),
            ]
            .concat(),
            "invalid packet capture length 4294967280, bigger than snaplen of 262144 (at byte offset 52)",
        ),
        ("noise.pcap", noise, "unknown file format"),
    ];
    for (name, bytes, msg) in cases {
        let p = write(&d, name, &bytes);
        // Under a 512 MiB address-space limit too, so even an allocation that would never be
        // touched (and so never show in RSS) fails the run.
        let Some(prlimit) = common::require_tool("prlimit") else { return };
        let mut cmd = std::process::Command::new(prlimit);
        cmd.arg("--as=536870912").arg(env!("CARGO_BIN_EXE_flowtrail")).args(["-n", "-r", &p]);
        let Some((o, kib)) = common::peak_rss(&cmd) else { return };
        let err = stderr(&o);
        eprintln!("{name}: peak RSS {kib} KiB: {}", err.lines().last().unwrap_or(""));
        assert!(!err.contains("panicked"), "{name}: {err}");
        assert_eq!(o.status.code(), Some(1), "{name}: {err}");
        let last = err.lines().last().unwrap_or("");
        assert!(last.starts_with(&format!("flowtrail: {p}: ")), "{name}: {last}");
        assert!(last.contains(msg), "{name}: {last}");
        assert!(kib < 64 * 1024, "{name}: peak RSS {kib} KiB");
    }
}
