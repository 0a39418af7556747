//! Link-layer header types: LINKTYPE_ (file) vs DLT_ (libpcap API) values, their names, and
//! libpcap's per-type snapshot limits.
//!
//! Files store LINKTYPE_ values; libpcap's API (and so `pcap_compile`, and the names tcpdump
//! prints) uses DLT_ values. They differ for a handful of old types; the maps below are
//! libpcap 1.10's `linktype_to_dlt`/`dlt_to_linktype` on Linux. Names and descriptions come
//! from libpcap itself (`pcap_datalink_val_to_name`/`_description`, through the pcap crate).

/// LINKTYPE_/DLT_ pairs whose numbers differ on Linux (libpcap `pcap-common.c`).
const DIFFERING: &[(u32, u32)] = &[
    (100, 11),  // ATM_RFC1483
    (101, 12),  // RAW
    (102, 15),  // SLIP_BSDOS
    (103, 16),  // PPP_BSDOS
    (106, 19),  // ATM_CLIP
];

/// libpcap's `linktype_to_dlt` (values without a mapping pass through).
pub fn to_dlt(linktype: u32) -> u32 {
    DIFFERING.iter().find(|(l, _)| *l == linktype).map(|(_, d)| *d).unwrap_or(linktype)
}

/// libpcap's `dlt_to_linktype` where it is defined; other values pass through.
pub fn from_dlt(dlt: u32) -> u32 {
    DIFFERING.iter().find(|(_, d)| *d == dlt).map(|(l, _)| *l).unwrap_or(dlt)
}

/// The LINKTYPE_ value libpcap would write back for a file's LINKTYPE_ value (e.g. a file that
/// claims 12, DLT_RAW, is written back as LINKTYPE_RAW 101).
pub fn canonical(linktype: u32) -> u32 {
    from_dlt(to_dlt(linktype))
}

const DLT_USBPCAP: u32 = 249;
const DLT_DBUS: u32 = 231;
const DLT_EBHSCR: u32 = 279;

/// libpcap's `max_snaplen_for_dlt`.
pub fn max_snaplen(linktype: u32) -> u32 {
    match to_dlt(linktype) {
        DLT_DBUS => 128 * 1024 * 1024,
        DLT_EBHSCR => 8 * 1024 * 1024,
        DLT_USBPCAP => 1024 * 1024,
        _ => 262_144,
    }
}

/// libpcap 1.10.3's `pcap_adjust_snapshot`: a snapshot length that is 0 or negative as a C
/// `int` means the maximum for the link type; any other value is kept, even above the maximum
/// (tcpdump then prints e.g. `snapshot length 524288`; records above the maximum are still
/// rejected by the readers).
pub fn adjust_snapshot(linktype: u32, snaplen: u32) -> u32 {
    if snaplen == 0 || snaplen > i32::MAX as u32 { max_snaplen(linktype) } else { snaplen }
}

/// libpcap's name (`EN10MB`) of a LINKTYPE_ value, if it has one.
pub fn name(linktype: u32) -> Option<String> {
    let dlt = i32::try_from(to_dlt(linktype)).ok()?;
    ::pcap::Linktype(dlt).get_name().ok()
}

/// libpcap's description (`Ethernet`) of a LINKTYPE_ value, if it has one.
pub fn description(linktype: u32) -> Option<String> {
    let dlt = i32::try_from(to_dlt(linktype)).ok()?;
    ::pcap::Linktype(dlt).get_description().ok()
}

/// What tcpdump prints after `link-type `: `EN10MB (Ethernet)`, or the DLT number when libpcap
/// has no name for it.
pub fn describe(linktype: u32) -> String {
    match name(linktype) {
        Some(n) => format!("{n} ({})", description(linktype).unwrap_or_default()),
        None => to_dlt(linktype).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_libpcap_prints_them() {
        assert_eq!(describe(1), "EN10MB (Ethernet)");
        assert_eq!(describe(113), "LINUX_SLL (Linux cooked v1)");
        assert_eq!(describe(276), "LINUX_SLL2 (Linux cooked v2)");
        assert_eq!(describe(0), "NULL (BSD loopback)");
        assert_eq!(describe(108), "LOOP (OpenBSD loopback)");
        assert_eq!(describe(101), "RAW (Raw IP)");
        assert_eq!(describe(12), "RAW (Raw IP)");
        assert_eq!(describe(228), "IPV4 (Raw IPv4)");
        assert_eq!(describe(229), "IPV6 (Raw IPv6)");
        assert_eq!(describe(147), "147");
        assert_eq!(describe(4000), "4000");
    }

    #[test]
    fn snapshot_rules() {
        assert_eq!(adjust_snapshot(1, 0), 262_144);
        assert_eq!(adjust_snapshot(1, 65_535), 65_535);
        assert_eq!(adjust_snapshot(1, u32::MAX), 262_144);
        assert_eq!(adjust_snapshot(1, 0x8000_0000), 262_144);
        assert_eq!(adjust_snapshot(1, 524_288), 524_288);
        assert_eq!(canonical(12), 101);
        assert_eq!(canonical(1), 1);
    }
}
