//! Command line: tcpdump's flags with tcpdump's meaning, plus flowtrail's own long options.
//!
//! The contract lives in DESIGN.md ("Command-line contract"): other tools and the tests
//! depend on it. Parsing is clap's; [`Args`] is the parsed form, turned into print
//! [`Options`](crate::print::Options) and input/output settings by the pipeline.

use clap::{ArgAction, Parser};

/// flowtrail: capture on many interfaces at once, print like tcpdump, reassemble and join
/// flows across NAT and forwarders.
#[derive(Parser, Debug, Clone, Default)]
#[command(name = "flowtrail", version, disable_help_flag = true, disable_version_flag = true, args_override_self = true)]
pub struct Args {
    /// Print help.
    #[arg(short = 'h', long = "help", action = ArgAction::Help)]
    pub help: Option<bool>,

    /// Print the version.
    #[arg(long = "version", action = ArgAction::Version)]
    pub version: Option<bool>,

    /// Read packets from FILE (pcap or pcapng; `-` is stdin). Repeatable: inputs merge by
    /// timestamp. `LABEL=FILE` names the capture point.
    #[arg(short = 'r', value_name = "[LABEL=]FILE")]
    pub read: Vec<String>,

    /// Write packets to FILE (`.pcapng`, or several capture points: pcapng; else pcap).
    #[arg(short = 'w', value_name = "FILE")]
    pub write: Option<String>,

    /// Exit after COUNT packets.
    #[arg(short = 'c', value_name = "COUNT")]
    pub count: Option<u64>,

    /// Capture point (interface) to listen on. Repeatable.
    #[arg(short = 'i', value_name = "POINT")]
    pub interface: Vec<String>,

    /// Don't convert addresses to names (`-nn`: ports and protocols neither).
    #[arg(short = 'n', action = ArgAction::Count)]
    pub numeric: u8,

    /// Print host names without their domain.
    #[arg(short = 'N')]
    pub no_domain: bool,

    /// Print the link-level header.
    #[arg(short = 'e')]
    pub link_header: bool,

    /// Verbose output; repeat for more.
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,

    /// Hex dump from the network header (`-xx`: from the link header).
    #[arg(short = 'x', action = ArgAction::Count)]
    pub hex: u8,

    /// Hex and ASCII dump from the network header (`-XX`: from the link header).
    #[arg(short = 'X', action = ArgAction::Count)]
    pub hex_ascii: u8,

    /// ASCII dump of each packet (minus the link header).
    #[arg(short = 'A', action = ArgAction::Count)]
    pub ascii: u8,

    /// Timestamp format: -t none, -tt epoch, -ttt delta, -tttt date, -ttttt since first.
    #[arg(short = 't', action = ArgAction::Count)]
    pub timestamp: u8,

    /// Quick output: less protocol information.
    #[arg(short = 'q')]
    pub quick: bool,

    /// Absolute TCP sequence numbers.
    #[arg(short = 'S', long = "absolute-tcp-sequence-numbers")]
    pub absolute_seq: bool,

    /// Number each packet line.
    #[arg(short = '#', long = "number")]
    pub number: bool,

    /// Snapshot length in bytes.
    #[arg(short = 's', long = "snapshot-length", value_name = "SNAPLEN")]
    pub snaplen: Option<u32>,

    /// Line-buffered output.
    #[arg(short = 'l')]
    pub line_buffered: bool,

    /// Packet-buffered output (and `-w` writes packet by packet).
    #[arg(short = 'U', long = "packet-buffered")]
    pub packet_buffered: bool,

    /// Don't put the interface into promiscuous mode.
    #[arg(short = 'p', long = "no-promiscuous-mode")]
    pub no_promisc: bool,

    /// Direction to capture: in, out or inout.
    #[arg(short = 'Q', long = "direction", value_name = "DIRECTION")]
    pub direction: Option<String>,

    /// List interfaces (of this namespace and every named one) and exit.
    #[arg(short = 'D', long = "list-interfaces")]
    pub list_interfaces: bool,

    /// Drop privileges to USER once capture handles are open.
    #[arg(short = 'Z', long = "relinquish-privileges", value_name = "USER")]
    pub user: Option<String>,

    /// Capture buffer size in KiB.
    #[arg(short = 'B', long = "buffer-size", value_name = "KIB")]
    pub buffer_size: Option<u32>,

    /// Read the filter expression from FILE.
    #[arg(short = 'F', value_name = "FILE")]
    pub filter_file: Option<String>,

    /// Deliver packets as they arrive (no kernel batching).
    #[arg(long = "immediate-mode")]
    pub immediate: bool,

    /// Timestamp precision: micro or nano.
    #[arg(long = "time-stamp-precision", value_name = "PRECISION")]
    pub ts_precision: Option<String>,

    /// Same as --time-stamp-precision=nano.
    #[arg(long = "nano")]
    pub nano: bool,

    /// Same as --time-stamp-precision=micro.
    #[arg(long = "micro")]
    pub micro: bool,

    /// Print packets even when writing with -w.
    #[arg(long = "print")]
    pub print: bool,

    /// Open the terminal UI on the input (`-r FILE`) instead of printing packets.
    #[arg(long = "tui")]
    pub tui: bool,

    /// Print the joined flows when input ends: `--flows` (a tree: path -> legs ->
    /// observations) or `--flows=json` (one JSON object per path, one line each). Packet
    /// printing is off with it unless `--print`.
    #[arg(
        long = "flows",
        value_name = "FORMAT",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "text",
        value_parser = ["text", "json"]
    )]
    pub flows: Option<String>,

    /// Print the conversation of observation ID as it is reassembled (`--flows` lists
    /// observation ids as `#ID`, JSON as `ids`; path ids are numbered separately).
    #[arg(long = "follow", value_name = "ID")]
    pub follow: Option<u64>,

    /// Format of `--follow`: ascii (default), hex, or raw (bytes; not to a terminal).
    #[arg(long = "follow-format", value_name = "FORMAT", value_parser = ["ascii", "hex", "raw"])]
    pub follow_format: Option<String>,

    /// Write every TCP stream direction to a file in DIR (tcpflow's names), and DIR/index.json.
    #[arg(long = "streams", value_name = "DIR")]
    pub streams: Option<String>,

    /// Memory for everything traffic can make flowtrail hold (default 512M; K/M/G suffixes,
    /// at least 16M): it sets the flow cap, the reassembly memory, the per-stream buffer, the
    /// side tables, the records waiting for --flows, the live capture queue and the printer's
    /// TCP sequence table (README, "Limits"). The options below override their part.
    #[arg(long = "max-memory", value_name = "BYTES", value_parser = parse_max_memory)]
    pub max_memory: Option<usize>,

    /// Most flows tracked at once (default: what 30% of --max-memory holds, about 100000
    /// at 512M); beyond it the least active is evicted.
    #[arg(long = "max-flows", value_name = "N")]
    pub max_flows: Option<usize>,

    /// Idle timeout of an established TCP flow in seconds (default 300; UDP and ICMP use
    /// at most 60).
    #[arg(long = "flow-timeout", value_name = "SECS")]
    pub flow_timeout: Option<u64>,

    /// Memory for out-of-order data of all streams together (default 30% of --max-memory;
    /// K/M/G suffixes).
    #[arg(long = "reassembly-memory", value_name = "BYTES", value_parser = parse_size)]
    pub reassembly_memory: Option<usize>,

    /// Memory for out-of-order data of one stream direction (default 1M, or 1/32 of the
    /// reassembly memory when that is less).
    #[arg(long = "stream-buffer", value_name = "BYTES", value_parser = parse_size)]
    pub stream_buffer: Option<usize>,

    /// Conntrack table text for the joiner (`conntrack -L [-o extended,id]` or
    /// `/proc/net/nf_conntrack`), as `NETNS=FILE` (synthetic observations are labelled
    /// `NETNS/conntrack`) or `FILE` (labelled by the file's stem). Repeatable.
    #[arg(long = "conntrack", value_name = "[NETNS=]FILE")]
    pub conntrack: Vec<String>,

    /// `--flows` without joining: one path per observation (no legs or paths across capture
    /// points). For measurements and for tools that want plain per-point flows.
    #[arg(long = "no-join")]
    pub no_join: bool,

    /// Filter expression (pcap-filter syntax).
    #[arg(value_name = "EXPRESSION", trailing_var_arg = false)]
    pub expression: Vec<String>,
}

impl Args {
    /// Parses `std::env::args`, exiting with clap's message and status 1 on a usage error
    /// (tcpdump exits 1 on bad usage).
    pub fn parse_from_env() -> Args {
        match Args::try_parse() {
            Ok(a) => a,
            Err(e) => {
                let code = match e.kind() {
                    clap::error::ErrorKind::DisplayHelp
                    | clap::error::ErrorKind::DisplayVersion => 0,
                    _ => 1,
                };
                let _ = e.print();
                std::process::exit(code);
            }
        }
    }

    /// The filter expression: `-F FILE`'s contents, else the trailing words joined by spaces.
    /// [`Args::filter_text`], or `None` after printing tcpdump's message for an unreadable
    /// `-F` file (the caller exits 1).
    pub fn filter_expression(&self) -> Option<Option<String>> {
        match self.filter_text() {
            Ok(e) => Some(e),
            Err(e) => {
                let f = self.filter_file.as_deref().unwrap_or("");
                eprintln!("flowtrail: {}: {}", crate::escape::text(f), crate::capture::os_message(&e));
                None
            }
        }
    }

    pub fn filter_text(&self) -> std::io::Result<Option<String>> {
        if let Some(f) = &self.filter_file {
            let text = std::fs::read_to_string(f)?;
            // tcpdump strips '#' comments from -F files.
            let cleaned: Vec<&str> = text.lines().map(|l| l.split('#').next().unwrap_or("")).collect();
            let joined = cleaned.join(" ");
            let t = joined.trim();
            return Ok(if t.is_empty() { None } else { Some(t.to_string()) });
        }
        if self.expression.is_empty() {
            Ok(None)
        } else {
            Ok(Some(self.expression.join(" ")))
        }
    }

    /// Any of `--flows`, `--follow`, `--streams`: the flow table runs, and packets are not
    /// printed unless `--print`.
    pub fn flow_outputs(&self) -> bool {
        self.flows.is_some() || self.follow.is_some() || self.streams.is_some()
    }

    /// Nanosecond timestamps requested?
    pub fn want_nano(&self) -> bool {
        self.nano || self.ts_precision.as_deref() == Some("nano")
    }
}

/// `--max-memory`: a byte count of at least [`crate::limits::Limits::MIN_MAX_MEMORY`].
fn parse_max_memory(s: &str) -> Result<usize, String> {
    let n = parse_size(s)?;
    if n < crate::limits::Limits::MIN_MAX_MEMORY {
        return Err(format!("{s}: at least {}M", crate::limits::Limits::MIN_MAX_MEMORY >> 20));
    }
    Ok(n)
}

/// A byte count with an optional K, M or G suffix (powers of 1024).
fn parse_size(s: &str) -> Result<usize, String> {
    let (digits, shift) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 10),
        Some((i, 'm' | 'M')) => (&s[..i], 20),
        Some((i, 'g' | 'G')) => (&s[..i], 30),
        _ => (s, 0),
    };
    let n: usize = digits.parse().map_err(|_| format!("{s}: not a byte count (e.g. 64M)"))?;
    n.checked_mul(1usize << shift).ok_or_else(|| format!("{s}: too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Args {
        let mut a = vec!["flowtrail"];
        a.extend_from_slice(v);
        Args::try_parse_from(a).unwrap()
    }

    #[test]
    fn tcpdump_style_grouped_flags() {
        let a = p(&["-#", "-n", "-r", "x.pcap", "-tttt", "-vv", "-XX", "-ev"]);
        assert!(a.number);
        assert_eq!(a.numeric, 1);
        assert_eq!(a.timestamp, 4);
        assert_eq!(a.verbose, 3);
        assert_eq!(a.hex_ascii, 2);
        assert!(a.link_header);
        assert_eq!(a.read, vec!["x.pcap"]);
    }

    #[test]
    fn flow_options() {
        let a = p(&["-r", "x.pcap", "--flows", "tcp"]);
        assert_eq!(a.flows.as_deref(), Some("text"));
        assert_eq!(a.filter_text().unwrap().as_deref(), Some("tcp"), "--flows takes no separate value");
        let a = p(&["-r", "x.pcap", "--flows=json", "--follow", "3", "--follow-format", "hex", "--stream-buffer", "64K"]);
        assert_eq!(a.flows.as_deref(), Some("json"));
        assert_eq!(a.follow, Some(3));
        assert_eq!(a.stream_buffer, Some(65536));
        assert!(a.flow_outputs());
        assert!(!p(&["-r", "x.pcap"]).flow_outputs());
        assert!(Args::try_parse_from(["flowtrail", "--flows=xml"]).is_err());
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(p(&["--max-memory", "128M"]).max_memory, Some(128 << 20));
        assert!(Args::try_parse_from(["flowtrail", "--max-memory", "1M"]).is_err());
        assert!(parse_size("x").is_err());
    }

    #[test]
    fn trailing_expression_and_repeats() {
        let a = p(&["-r", "a=x.pcap", "-r", "y.pcapng", "-nn", "tcp", "and", "port", "80"]);
        assert_eq!(a.read.len(), 2);
        assert_eq!(a.numeric, 2);
        assert_eq!(a.filter_text().unwrap().as_deref(), Some("tcp and port 80"));
    }

    #[test]
    fn repeated_flags_are_accepted_like_tcpdump() {
        let a = p(&["-e", "-e", "-N", "-N", "-q", "-q", "-v", "-v", "-r", "a", "-r", "b", "-c", "1", "-c", "2"]);
        assert!(a.link_header && a.no_domain && a.quick);
        assert_eq!(a.verbose, 2);
        assert_eq!(a.read, vec!["a", "b"]);
        assert_eq!(a.count, Some(2));
    }
}
