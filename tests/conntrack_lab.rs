//! Conntrack on the seed-path lab (root; see tests/os_lab).

mod os_lab;

use flowtrail::conntrack::{self, Backend};
use os_lab::Lab;

#[test]
fn scratch_dump() {
    let Some(lab) = Lab::up("s") else { return };
    lab.traffic(&["-n", "2"]);
    let d = conntrack::dump_with(&lab.ns("vm"), Backend::Netlink).unwrap();
    for e in &d.entries { eprintln!("{e} {e:?}"); }
    let p = conntrack::dump_with(&lab.ns("vm"), Backend::Proc).unwrap();
    for e in &p.entries { eprintln!("P {e}"); }
    let h = conntrack::dump_with(&lab.ns("host"), Backend::Netlink).unwrap();
    eprintln!("host {}", h.entries.len());
}
