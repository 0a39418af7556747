//! Names for numbers, the way tcpdump 4.99.3 prints them without `-n` (its `addrtoname.c`).
//!
//! Printing stays pure: the host's name service is reached only through a [`HostLookup`]
//! that the caller hands in (the pipeline gives the system resolver, tests give a table).
//! [`HostNames`] keeps one answer per address for the whole run, found or not, as
//! tcpdump's `hnametable`/`h6nametable` do, so each address is asked about at most once.
//!
//! tcpdump's rules, which this follows:
//! * `-n` (any count) turns every name off: hosts, ports, `/etc/ethers`, `Broadcast`, IP
//!   protocol names (its `init_addrtoname` returns early). With `-n`, [`State`] holds no
//!   [`HostNames`] at all, so the numeric path costs one branch.
//! * Every address it prints through `ipaddr_string`/`ip6addr_string` is looked up; there is
//!   no exception for broadcast, multicast or unspecified addresses (the resolver itself
//!   answers nothing for those). Places that print with `addrtostr`/`inet_ntop` (DNS AAAA
//!   records, for one) stay numeric whatever the flags.
//! * The name is the resolver's canonical name (`h_name`) as is; `-N` cuts it at the first
//!   dot. tcpdump 4.99.3 strips no local domain by itself.
//!
//! [`State`]: super::State

use std::collections::HashMap;
use std::net::IpAddr;

/// Where host names come from: tcpdump's `gethostbyaddr(addr)->h_name`.
pub trait HostLookup {
    /// The name of `addr`, or `None` when the name service has none.
    fn lookup(&mut self, addr: IpAddr) -> Option<String>;
}

/// A fixed table, for tests and for callers that know their names up front.
impl HostLookup for HashMap<IpAddr, String> {
    fn lookup(&mut self, addr: IpAddr) -> Option<String> {
        self.get(&addr).cloned()
    }
}

/// Printed forms of host addresses, one per address for the run.
pub struct HostNames {
    lookup: Box<dyn HostLookup>,
    /// Address -> what is printed for it (the name, or the numeric form when none).
    cache: HashMap<IpAddr, Box<str>>,
    /// `-N`: print names without their domain (up to the first dot).
    strip_domain: bool,
}

impl HostNames {
    pub fn new(lookup: Box<dyn HostLookup>, strip_domain: bool) -> HostNames {
        HostNames { lookup, cache: HashMap::new(), strip_domain }
    }

    /// What tcpdump prints for `addr` (`ipaddr_string` / `ip6addr_string`).
    pub fn get(&mut self, addr: IpAddr) -> &str {
        let HostNames { lookup, cache, strip_domain } = self;
        cache.entry(addr).or_insert_with(|| match lookup.lookup(addr) {
            Some(mut name) => {
                if *strip_domain && let Some(dot) = name.find('.') {
                    name.truncate(dot);
                }
                name.into_boxed_str()
            }
            None => numeric(addr).into_boxed_str(),
        })
    }
}

fn numeric(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => super::addr::ip4_string(a.octets()),
        IpAddr::V6(a) => super::addr::ip6_string(a.octets()),
    }
}

/// Parses `/etc/ethers` text (`xx:xx:xx:xx:xx:xx name`, `#` comments), the file glibc's
/// `ether_ntohost` reads for tcpdump. Lines that don't parse are skipped; the first line
/// for an address wins.
pub fn parse_ethers(text: &str) -> HashMap<[u8; 6], Box<str>> {
    let mut map = HashMap::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let (Some(mac), Some(name)) = (words.next(), words.next()) else { continue };
        let mut a = [0u8; 6];
        let mut parts = mac.split(':');
        let ok = a.iter_mut().all(|b| {
            parts.next().filter(|p| (1..=2).contains(&p.len())).and_then(|p| u8::from_str_radix(p, 16).ok()).map(|v| *b = v).is_some()
        }) && parts.next().is_none();
        if ok {
            map.entry(a).or_insert_with(|| name.into());
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// Counts the questions it is asked.
    struct Counting(Rc<Cell<u32>>, HashMap<IpAddr, String>);
    impl HostLookup for Counting {
        fn lookup(&mut self, addr: IpAddr) -> Option<String> {
            self.0.set(self.0.get() + 1);
            self.1.get(&addr).cloned()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_question_per_address_found_or_not() {
        let asked = Rc::new(Cell::new(0));
        let table = HashMap::from([(ip("10.0.0.1"), "db.example.net".to_string())]);
        let mut h = HostNames::new(Box::new(Counting(asked.clone(), table)), false);
        for _ in 0..3 {
            assert_eq!(h.get(ip("10.0.0.1")), "db.example.net");
            assert_eq!(h.get(ip("10.0.0.2")), "10.0.0.2");
            assert_eq!(h.get(ip("2001:db8::1")), "2001:db8::1");
        }
        assert_eq!(asked.get(), 3);
    }

    #[test]
    fn dash_n_cap_keeps_the_first_label() {
        let table = HashMap::from([(ip("::1"), "ip6-localhost".to_string()), (ip("10.0.0.1"), "db.example.net".into())]);
        let mut h = HostNames::new(Box::new(table), true);
        assert_eq!(h.get(ip("10.0.0.1")), "db");
        assert_eq!(h.get(ip("::1")), "ip6-localhost");
    }

    #[test]
    fn ethers_lines() {
        let m = parse_ethers("# c\n8:0:20:1:2:3 sun # old\n08:00:20:01:02:03 dup\nzz:0:0:0:0:0 bad\n0:1:2:3:4 short\n");
        assert_eq!(m.len(), 1);
        assert_eq!(m.get(&[8, 0, 0x20, 1, 2, 3]).map(|s| &**s), Some("sun"));
    }
}
