//! Differential test: flowtrail and Debian's tcpdump 4.99.3 agree byte for byte on every
//! capture in `samples/` under the flag sets users reach for most.
//!
//! A file with several capture points (a pcapng with several interfaces) is where flowtrail
//! deliberately differs: each packet line carries the point's label (and direction) after
//! the timestamp, like `tcpdump -i any`. For those files the test checks that every packet
//! line carries one of the file's labels there, removes it, and then requires the rest to be
//! byte-identical to tcpdump.

mod common;

use std::process::Command;

const FLAG_SETS: &[&[&str]] = &[
    &["-n"],
    &["-nn", "-e"],
    &["-n", "-v"],
    &["-n", "-vv"],
    &["-n", "-x"],
    &["-n", "-xx"],
    &["-n", "-X"],
    &["-n", "-XX"],
    &["-n", "-A"],
    &["-n", "-q"],
    &["-n", "-S"],
    &["-n", "-tttt"],
    &["-n", "-ttttt"],
];

#[test]
fn samples_match_tcpdump() {
    let Some(tcpdump) = common::require_tool("tcpdump") else { return };
    let files = common::sample_files();
    assert!(!files.is_empty(), "samples/ holds no captures");
    let mut failures = Vec::new();
    let mut runs = 0;
    for file in &files {
        let (labels, frames) = point_labels(file);
        for flags in FLAG_SETS {
            runs += 1;
            let run = |mut cmd: Command| {
                cmd.args(*flags).arg("-r").arg(file).env("TZ", "UTC").output().expect("run")
            };
            let want = run(Command::new(&tcpdump));
            let mut got = run(common::flowtrail());
            if labels.len() > 1 {
                let (stripped, n) = strip_labels(&got.stdout, &labels);
                if n != frames {
                    failures.push(format!(
                        "{} {}: {n} packet lines carry a label, {frames} packets",
                        file.display(),
                        flags.join(" ")
                    ));
                    continue;
                }
                got.stdout = stripped;
            }
            if want.stdout != got.stdout || want.status.code() != got.status.code() {
                let (w, g) = (String::from_utf8_lossy(&want.stdout), String::from_utf8_lossy(&got.stdout));
                let (wl, gl): (Vec<&str>, Vec<&str>) = (w.lines().collect(), g.lines().collect());
                let i = (0..wl.len().max(gl.len())).find(|&i| wl.get(i) != gl.get(i)).unwrap_or(0);
                failures.push(format!(
                    "{} {}: line {}\n    tcpdump:   {}\n    flowtrail: {}",
                    file.file_name().unwrap().to_string_lossy(),
                    flags.join(" "),
                    i + 1,
                    wl.get(i).unwrap_or(&"<end>"),
                    gl.get(i).unwrap_or(&"<end>")
                ));
            }
        }
    }
    for f in &failures {
        println!("DIFF {f}");
    }
    println!("differential: {}/{runs} file×flag runs identical to tcpdump", runs - failures.len());
    assert!(failures.is_empty(), "{} runs differ from tcpdump", failures.len());
}

/// Labels of the capture points that hold packets in `file`, and the number of packets.
fn point_labels(file: &std::path::Path) -> (Vec<String>, usize) {
    use flowtrail::capture::{FrameSource, OfflineReader, Points};
    let mut points = Points::default();
    let mut r = OfflineReader::open(file.to_str().unwrap(), &mut points).expect("open sample");
    let mut seen = std::collections::BTreeSet::new();
    let mut frames = 0;
    while let Ok(Some(f)) = r.next_frame(&mut points, Vec::new()) {
        seen.insert(f.point);
        frames += 1;
    }
    (seen.into_iter().map(|i| points.get(i).unwrap().label.clone()).collect(), frames)
}

/// Removes `LABEL[ In| Out] ` after the timestamp of each packet line (lines that don't start
/// with a tab or space); returns the text and how many lines had a label.
fn strip_labels(out: &[u8], labels: &[String]) -> (Vec<u8>, usize) {
    let text = String::from_utf8_lossy(out);
    let mut labels: Vec<&String> = labels.iter().collect();
    labels.sort_by_key(|l| std::cmp::Reverse(l.len()));
    let mut res = String::new();
    let mut n = 0;
    for line in text.split_inclusive('\n') {
        if line.starts_with('\t') || line.starts_with(' ') && !line.trim_start().starts_with(|c: char| c.is_ascii_digit()) {
            res.push_str(line);
            continue;
        }
        // The timestamp: up to two space-separated words made of digits, '-', ':' and '.'.
        let mut cut = 0;
        for _ in 0..2 {
            let rest = &line[cut..];
            let lead = rest.len() - rest.trim_start().len();
            let word = rest.trim_start().split(' ').next().unwrap_or("");
            if !word.is_empty() && word.chars().all(|c| c.is_ascii_digit() || "-:.".contains(c)) {
                cut += lead + word.len() + 1;
            } else {
                break;
            }
        }
        let cut = cut.min(line.len());
        let rest = &line[cut..];
        let Some(label) = labels.iter().find(|l| rest.starts_with(&format!("{l} "))) else {
            // -A prints payload lines that belong to the previous packet.
            res.push_str(line);
            continue;
        };
        let mut after = &rest[label.len() + 1..];
        for dir in ["In ", "Out "] {
            if let Some(a) = after.strip_prefix(dir) {
                after = a;
            }
        }
        res.push_str(&line[..cut]);
        res.push_str(after);
        n += 1;
    }
    (res.into_bytes(), n)
}
