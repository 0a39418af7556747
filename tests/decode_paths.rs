//! The decoder's two paths give the same answer: `decode` (an IP packet right after the link
//! header is sliced layer by layer) against `decode_sliced` (etherparse's `LaxSlicedPacket`
//! for every frame), on every frame of the bundled captures and the tcpdump corpus (VLAN and
//! QinQ, IPv6 extension headers, fragments, AH, truncated and malformed packets, every link
//! type we read), and on frames built layer by layer then cut and corrupted at random.

use etherparse::PacketBuilder;
use flowtrail::capture::{FrameSource, OfflineReader, Points};
use flowtrail::decode::{decode, decode_sliced, linktype};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn captures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [root.join("samples"), root.join("tests/corpus/tcpdump"), root.join("../shared/corpus/tcpdump")] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name.ends_with(".pcap") || name.ends_with(".pcapng") || name.ends_with(".cap") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn both_paths_agree_on_every_captured_frame() {
    let files = captures();
    assert!(files.len() >= 80, "bundled captures missing: {}", files.len());
    let (mut frames, mut ip) = (0u64, 0u64);
    for file in &files {
        let mut points = Points::default();
        // Some corpus files are damaged on purpose: what can be read is compared.
        let Ok(mut r) = OfflineReader::open(&file.display().to_string(), &mut points) else { continue };
        while let Ok(Some(f)) = r.next_frame(&mut points, Vec::new()) {
            let direct = decode(f.linktype, &f.data);
            let sliced = decode_sliced(f.linktype, &f.data);
            assert_eq!(direct, sliced, "{}: frame {} (linktype {})", file.display(), frames, f.linktype);
            frames += 1;
            ip += u64::from(direct.ip.is_some());
        }
    }
    eprintln!("decode paths: {frames} frames ({ip} IP) in {} files agree", files.len());
    // The bundled captures alone hold 813 IP frames (the shared corpus, when present, more).
    assert!(ip >= 800, "too few IP frames compared: {ip}");
}

/// A frame built layer by layer: link (Ethernet, a VLAN tag, two, Linux SLL2, raw IP),
/// IPv4 or IPv6 (with or without extension headers), and TCP with options, UDP, ICMP,
/// ICMPv6 (or the other IP version's ICMP) or another protocol.
fn build(link: u8, v6: bool, transport: u8, payload: &[u8]) -> (u32, Vec<u8>) {
    let b = if v6 {
        PacketBuilder::ipv6([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], 64)
    } else {
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
    };
    let mut ip = Vec::new();
    match transport % 5 {
        0 => b
            .tcp(40000, 443, 1000, 4096)
            .syn()
            .ack(5)
            .options(&[
                etherparse::TcpOptionElement::MaximumSegmentSize(1460),
                etherparse::TcpOptionElement::WindowScale(7),
                etherparse::TcpOptionElement::SelectiveAcknowledgementPermitted,
                etherparse::TcpOptionElement::Timestamp(11, 22),
            ])
            .unwrap()
            .write(&mut ip, payload)
            .unwrap(),
        1 => b.udp(53, 5353).write(&mut ip, payload).unwrap(),
        2 if v6 => b.icmpv6_echo_request(1, 2).write(&mut ip, payload).unwrap(),
        2 => b.icmpv4_echo_request(1, 2).write(&mut ip, payload).unwrap(),
        // The other version's ICMP, as raw bytes.
        3 => {
            let number = if v6 { etherparse::IpNumber::ICMP } else { etherparse::IpNumber::IPV6_ICMP };
            b.write(&mut ip, number, payload).unwrap()
        }
        _ => b.write(&mut ip, etherparse::IpNumber(253), payload).unwrap(),
    }
    let ether_type: [u8; 2] = if v6 { [0x86, 0xdd] } else { [0x08, 0x00] };
    let mut frame = Vec::new();
    let lt = match link {
        // Ethernet, untagged, one VLAN tag (802.1Q), two (802.1ad then 802.1Q).
        0..=2 => {
            frame.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
            if link == 2 {
                frame.extend_from_slice(&[0x88, 0xa8, 0x00, 0x07]);
            }
            if link >= 1 {
                frame.extend_from_slice(&[0x81, 0x00, 0x01, 0x23]);
            }
            frame.extend_from_slice(&ether_type);
            linktype::EN10MB
        }
        // Linux SLL2: protocol, reserved, interface index, ARPHRD, packet type, address.
        3 => {
            frame.extend_from_slice(&ether_type);
            frame.extend_from_slice(&[0; 18]);
            linktype::LINUX_SLL2
        }
        _ => linktype::RAW,
    };
    frame.extend_from_slice(&ip);
    (lt, frame)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn both_paths_agree_on_cut_and_corrupted_frames(
        link in 0u8..5,
        v6 in any::<bool>(),
        transport in 0u8..5,
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        corrupt in proptest::collection::vec((0usize..120, any::<u8>()), 0..6),
        cut in 0usize..200,
    ) {
        let (lt, mut frame) = build(link, v6, transport, &payload);
        for (at, byte) in corrupt {
            if let Some(b) = frame.get_mut(at) {
                *b = byte;
            }
        }
        frame.truncate(cut.max(1));
        prop_assert_eq!(decode(lt, &frame), decode_sliced(lt, &frame));
    }
}
