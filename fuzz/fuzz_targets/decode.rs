//! Fuzz the lax frame decoder (`flowtrail::decode::decode`) with arbitrary bytes under every
//! link type it knows. Asserts: no panic; what it returns is consistent with the input (the
//! captured payload is part of the frame and no longer than the length on the wire); the
//! direct path gives what etherparse's `LaxSlicedPacket` path gives (`decode_sliced`).
#![no_main]

use flowtrail::decode::{Transport, decode, decode_sliced, linktype};
use libfuzzer_sys::fuzz_target;

const LINKTYPES: [u32; 11] = [
    linktype::NULL,
    linktype::EN10MB,
    linktype::RAW,
    linktype::RAW_12,
    linktype::RAW_14,
    linktype::LOOP,
    linktype::LINUX_SLL,
    linktype::IPV4,
    linktype::IPV6,
    linktype::LINUX_SLL2,
    9999,
];

fuzz_target!(|data: &[u8]| {
    let Some((&which, frame)) = data.split_first() else { return };
    let lt = LINKTYPES[usize::from(which) % LINKTYPES.len()];
    let d = decode(lt, frame);
    assert_eq!(d, decode_sliced(lt, frame));
    match d.transport {
        Transport::Tcp(t) => {
            assert!(d.ip.is_some());
            assert!(t.payload.len() <= frame.len());
            assert!(t.payload_len as usize >= t.payload.len());
            assert!(usize::from(t.sack_count) <= t.sack.len());
        }
        Transport::Udp(u) => {
            assert!(d.ip.is_some());
            assert!(u.payload.len() <= frame.len());
            assert!(u.payload_len as usize >= u.payload.len());
        }
        Transport::Icmp { .. } | Transport::Other { .. } => assert!(d.ip.is_some()),
        Transport::None => {}
    }
});
