//! What the reading host knows about names: the one seam between the printers and the
//! system's name databases.
//!
//! tcpdump resolves names on the host that reads the capture, through libc: host names by
//! `gethostbyaddr` (nsswitch `hosts:`, usually `/etc/hosts` then DNS), service names from
//! `getservent` (`/etc/services`), MAC names from `ether_ntohost` (`/etc/ethers`) and
//! LINUX_SLL2 interface names from `if_indextoname`. This module reads those sources; the
//! pipeline hands the results to [`print::State`](crate::print::State), so printing itself
//! does no I/O. Every reader here fails soft: a missing file means no names, never an error.

use crate::print::names::HostLookup;
use std::net::{IpAddr, SocketAddr};

/// Host names from the system resolver: glibc's `getnameinfo(NI_NAMEREQD)`, which asks
/// `gethostbyaddr` just as tcpdump does, so `/etc/hosts`, DNS and any other nsswitch source
/// answer the same way for both. A lookup blocks for as long as the resolver takes (no
/// timeout of our own, like tcpdump); callers cache the answers.
pub struct SystemHosts;

impl HostLookup for SystemHosts {
    fn lookup(&mut self, addr: IpAddr) -> Option<String> {
        dns_lookup::getnameinfo(&SocketAddr::new(addr, 0), libc::NI_NAMEREQD).ok().map(|(host, _)| host)
    }
}

/// The text of `/etc/services`, or empty when it cannot be read.
pub fn services_text() -> String {
    std::fs::read_to_string("/etc/services").unwrap_or_default()
}

/// The text of `/etc/ethers`, or empty when it cannot be read (it usually does not exist).
pub fn ethers_text() -> String {
    std::fs::read_to_string("/etc/ethers").unwrap_or_default()
}

/// Interface index -> name for this host's network namespace, from `/sys/class/net`
/// (what `if_indextoname` answers), sorted by index.
pub fn interface_names() -> Vec<(u32, String)> {
    let mut v = Vec::new();
    let Ok(dir) = std::fs::read_dir("/sys/class/net") else { return v };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Ok(idx) = std::fs::read_to_string(entry.path().join("ifindex"))
            && let Ok(idx) = idx.trim().parse::<u32>()
        {
            v.push((idx, name));
        }
    }
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_known_here() {
        // Every Linux network namespace has lo, with index 1.
        let names = interface_names();
        if std::path::Path::new("/sys/class/net/lo").exists() {
            assert!(names.iter().any(|(i, n)| *i == 1 && n == "lo"), "{names:?}");
        }
    }

    #[test]
    fn unspecified_address_has_no_name() {
        // glibc answers "not found" for :: without asking any source.
        assert_eq!(SystemHosts.lookup("::".parse().unwrap()), None);
    }
}
