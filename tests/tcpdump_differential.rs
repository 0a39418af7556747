//! Differential test: flowtrail and Debian's tcpdump 4.99.3 agree byte for byte on every
//! capture in `samples/` under the flag sets users reach for most.

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
        for flags in FLAG_SETS {
            runs += 1;
            let run = |mut cmd: Command| {
                cmd.args(*flags).arg("-r").arg(file).env("TZ", "UTC").output().expect("run")
            };
            let want = run(Command::new(&tcpdump));
            let got = run(common::flowtrail());
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
