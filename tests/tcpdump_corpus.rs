//! tcpdump 4.99.3 compatibility: every `core` case of the tcpdump corpus, byte for byte.
//!
//! Prints `tcpdump corpus: P/118 core cases identical` and fails when P drops below
//! [`CORE_FLOOR`] (raise it as cases start passing, so the count only goes up). `app` cases
//! (other dissectors) run as a report that never fails, when the shared corpus is present.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The number of core cases known to pass; the test fails below it.
const CORE_FLOOR: usize = 118;

struct Case {
    name: String,
    pcap: String,
    expected: String,
    flags: Vec<String>,
    category: String,
}

fn corpus_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared/corpus/tcpdump");
    if shared.join("cases.tsv").exists() { shared } else { root.join("tests/corpus/tcpdump") }
}

fn load_cases(dir: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(dir.join("cases.tsv")).expect("cases.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (n, p, e, f, c) =
        (col("name"), col("pcap"), col("expected_out_4.99.3"), col("flags"), col("category"));
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: Vec<&str> = l.split('\t').collect();
            Case {
                name: v[n].to_string(),
                pcap: v[p].to_string(),
                expected: v[e].to_string(),
                flags: v[f].split_whitespace().map(String::from).collect(),
                category: v[c].to_string(),
            }
        })
        .collect()
}

/// Runs one case the way tcpdump's harness does; returns None when identical, else a
/// one-line description of the first difference.
fn run_case(dir: &Path, case: &Case) -> Option<String> {
    let mut args: Vec<String> = vec!["-#".into(), "-n".into(), "-r".into(), case.pcap.clone()];
    if case.flags.iter().any(|f| f == "SPECIAL_t") {
        args.extend(case.flags.iter().filter(|f| *f != "SPECIAL_t").cloned());
    } else {
        args.push("-tttt".into());
        args.extend(case.flags.iter().cloned());
    }
    let want = std::fs::read(dir.join(&case.expected)).expect("expected output");
    let out = Command::new(env!("CARGO_BIN_EXE_flowtrail"))
        .args(&args)
        .current_dir(dir)
        .env("TZ", "GMT0")
        .output()
        .expect("run flowtrail");
    if out.stdout == want && out.status.success() {
        return None;
    }
    let (got, want) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&want));
    let (gl, wl): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
    let i = (0..gl.len().max(wl.len())).find(|&i| gl.get(i) != wl.get(i)).unwrap_or(0);
    Some(format!(
        "{} (flowtrail {}; exit {:?})\n    want: {}\n    got:  {}",
        case.name,
        args.join(" "),
        out.status.code(),
        wl.get(i).unwrap_or(&"<end>"),
        gl.get(i).unwrap_or(&"<end>")
    ))
}

fn run_category(dir: &Path, cases: &[&Case]) -> (usize, Vec<String>) {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(8);
    let chunks: Vec<Vec<&Case>> = (0..threads)
        .map(|t| cases.iter().skip(t).step_by(threads).copied().collect())
        .collect();
    let mut failures: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = chunks
            .iter()
            .map(|chunk| s.spawn(move || chunk.iter().filter_map(|c| run_case(dir, c)).collect::<Vec<_>>()))
            .collect();
        hs.into_iter().flat_map(|h| h.join().expect("case thread")).collect()
    });
    failures.sort();
    (cases.len() - failures.len(), failures)
}

#[test]
fn tcpdump_corpus_core() {
    let dir = corpus_dir();
    let cases = load_cases(&dir);
    let core: Vec<&Case> = cases.iter().filter(|c| c.category == "core").collect();
    let (pass, failures) = run_category(&dir, &core);
    for f in &failures {
        println!("FAIL {f}");
    }
    println!("tcpdump corpus: {pass}/{} core cases identical", core.len());
    assert!(pass >= CORE_FLOOR, "core cases identical fell to {pass}, below the floor {CORE_FLOOR}");
}

#[test]
fn tcpdump_corpus_app_report() {
    let dir = corpus_dir();
    let cases = load_cases(&dir);
    let app: Vec<&Case> = cases.iter().filter(|c| c.category == "app").collect();
    if app.is_empty() {
        println!("tcpdump corpus: app cases not available (../shared/corpus/tcpdump missing)");
        return;
    }
    let (pass, _) = run_category(&dir, &app);
    println!("tcpdump corpus: {pass}/{} app cases identical (report only)", app.len());
}
