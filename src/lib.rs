//! flowtrail: packet capture and flow reconstruction.
//!
//! The library holds the whole pipeline described in `DESIGN.md` (kept in sync with
//! `../shared/DESIGN.md`); the `flowtrail` binary is a thin shell around [`pipeline::run`].
//!
//! ```text
//! capture (offline readers: pcap, pcapng; live capture in a later issue)
//!    | owned frames {point, ts, linktype, caplen, origlen, bytes}
//!    v
//! pipeline: merge by timestamp -> filter (libpcap BPF per link type)
//!    -> print (tcpdump-compatible text, hexdump) and/or write (-w pcap/pcapng)
//! ```
#![forbid(unsafe_code)]

pub mod capture;
pub mod cli;
pub mod conntrack;
pub mod decode;
pub mod filter;
pub mod hexdump;
pub mod join;
pub mod live;
pub mod netns;
pub mod pipeline;
pub mod print;
pub mod process;
pub mod reassembly;
pub mod savefile;
pub mod seq;
