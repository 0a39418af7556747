//! flowtrail: packet capture and flow reconstruction.
//!
//! The library holds the whole pipeline described in `DESIGN.md` (kept in sync with
//! `../shared/DESIGN.md`); the `flowtrail` binary is a thin shell around [`pipeline::run`].
//!
//! ```text
//! capture/ (offline readers: pcap, pcapng)      live.rs (one thread per capture point,
//!    |                                            inside its namespace: netns.rs)
//!    | owned frames {point, ts, linktype, caplen, origlen, bytes, direction}
//!    v
//! pipeline: merge by timestamp -> filter (libpcap BPF per link type)
//!    -> print/ (tcpdump-compatible text, hexdump.rs) and/or savefile.rs (-w pcap/pcapng)
//!    -> decode.rs -> flow/ (observations per point, Zeek state, Wireshark analysis,
//!       reassembly/ of every TCP stream, seq.rs arithmetic) -> report/ (--flows, --follow,
//!       --streams)
//!    -> join (legs across points: conntrack/, ISN/IP-ID/TS/payload evidence;
//!             paths across forwarders: byte streams + owning process: process/)
//!    -> model snapshots -> tui/ (`--tui`, ratatui)
//! (json.rs: the JSON text every JSON output shares: one line writer, addresses)
//! ```
#![forbid(unsafe_code)]

pub mod capture;
pub mod cli;
pub mod conntrack;
pub mod decode;
pub mod escape;
pub mod evidence;
pub mod filter;
pub mod flow;
pub mod hexdump;
pub mod hostinfo;
pub mod join;
pub mod json;
pub mod limits;
pub mod live;
pub mod netns;
pub mod pipeline;
pub mod print;
pub mod priority;
pub mod process;
pub mod reassembly;
pub mod report;
pub mod savefile;
pub mod seq;
pub mod tui;
