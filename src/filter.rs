//! pcap-filter expressions compiled by libpcap for a link type and applied to frames.
