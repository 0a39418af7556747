//! Any bytes as a capture file: the pcap/pcapng readers must never panic, never allocate
//! beyond their caps, and every frame they hand out must respect its point's snaplen bound.
#![no_main]

use flowtrail::capture::{FrameSource, InputSpec, OfflineReader, Points};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut points = Points::default();
    let spec = InputSpec { label: None, path: "fuzz.pcap".into() };
    let Ok(mut r) = OfflineReader::from_reader(spec, Box::new(std::io::Cursor::new(data.to_vec())), &mut points) else {
        return;
    };
    let mut frames = 0usize;
    while let Ok(Some(f)) = r.next_frame(&mut points, Vec::new()) {
        assert!(f.point < points.len(), "frame names an unknown point");
        assert!(f.data.len() <= data.len(), "frame larger than the input");
        frames += 1;
        assert!(frames <= data.len(), "more frames than input bytes");
    }
});
