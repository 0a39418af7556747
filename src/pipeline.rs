//! The pipeline: open inputs, merge frames by timestamp, filter, print and write.
//!
//! [`run`] is the one place that wires sources -> [`Merger`] -> [`Filter`] -> printer and/or
//! [`SaveWriter`]. The order of events, and what reaches stderr, follows tcpdump:
//!
//! 1. every `-r` input is opened in command-line order; each prints tcpdump's
//!    `reading from file ...` line to stderr (an input that cannot be opened: its message,
//!    exit 1);
//! 2. the merger reads one frame of lookahead from every input, which declares every pcapng
//!    interface that precedes the first packet; then the capture points are counted: more
//!    than one means every printed line starts with the point's label and direction;
//! 3. the filter is compiled for every point's link type (a bad expression: libpcap's message,
//!    exit 1 before any packet), and `-w` is created;
//! 4. frames flow in timestamp order; those that pass the filter are counted (`-c`), given to
//!    the flow table if `--flows`, `--follow` or `--streams` asked for it (then packets are
//!    printed only with `--print`; see `report`), written and/or printed. Text goes through one reused `String` and a large buffer to stdout
//!    (`-l`: flushed per line, `-U`: per packet). A closed stdout (`| head`) ends the run
//!    quietly with status 0;
//! 5. at the end, outputs are flushed, then each input that failed reports libpcap's message
//!    (naming the file and byte offset) and the status is 1, as tcpdump's after a read error.

use crate::capture::{FrameSource, Merger, OfflineReader, Points};
use crate::cli::Args;
use crate::filter::Filter;
use crate::print::{Options, Printer, TsFormat};
use crate::savefile::{Format, SaveWriter};
use std::io::{self, Write};

/// Print options from the command line.
pub fn print_options(args: &Args) -> Options {
    Options {
        verbose: args.verbose,
        link_header: args.link_header,
        numeric: args.numeric,
        quick: args.quick,
        absolute_seq: args.absolute_seq,
        hex: args.hex,
        hex_ascii: args.hex_ascii,
        ascii: args.ascii,
        ts_format: TsFormat::from_count(args.timestamp),
        nano: args.want_nano(),
        number: args.number,
        labels: false,
    }
}

/// Text is handed to stdout in chunks of about this size.
const TEXT_CHUNK: usize = 1 << 16;

/// Why the packet loop stopped early.
enum Stop {
    /// stdout is gone (`| head`): end quietly.
    BrokenPipe,
    /// An error to report; exit 1.
    Fail(String),
}

/// Standard output for packet text.
struct TextOut {
    out: io::Stdout,
    text: String,
    /// Flush after every packet (`-l`, `-U`).
    eager: bool,
}

impl TextOut {
    fn flush_text(&mut self, force: bool) -> Result<(), Stop> {
        if self.text.is_empty() && !force {
            return Ok(());
        }
        let mut lock = self.out.lock();
        let r = lock.write_all(self.text.as_bytes()).and_then(|_| if force { lock.flush() } else { Ok(()) });
        self.text.clear();
        r.map_err(|e| io_stop(e, "standard output"))
    }

    fn after_packet(&mut self) -> Result<(), Stop> {
        if self.eager {
            self.flush_text(true)
        } else if self.text.len() >= TEXT_CHUNK {
            self.flush_text(false)
        } else {
            Ok(())
        }
    }
}

fn io_stop(e: io::Error, what: &str) -> Stop {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Stop::BrokenPipe
    } else {
        Stop::Fail(format!("{what}: {}", crate::capture::os_message(&e)))
    }
}

/// Runs flowtrail with parsed arguments; returns the process exit status.
pub fn run(args: Args) -> i32 {
    if args.list_interfaces {
        return match crate::live::list_interfaces() {
            Ok(text) => {
                print!("{text}");
                0
            }
            Err(e) => {
                eprintln!("flowtrail: {e}");
                1
            }
        };
    }
    if args.read.is_empty() {
        return run_live(&args);
    }
    let expr = match args.filter_expression() {
        Some(e) => e,
        None => return 1,
    };

    // 1. Open inputs.
    let mut filter = Filter::new(expr.as_deref());
    let mut points = Points::default();
    let mut merger = Merger::new();
    for spec in &args.read {
        match OfflineReader::open(spec, &mut points) {
            Ok(r) => {
                eprintln!("{}", r.info().reading_line());
                if r.info().linktype == 276 {
                    eprintln!("Warning: interface names might be incorrect");
                }
                // tcpdump compiles its filter (even an empty one) right after opening: a link
                // type libpcap has no code generator for fails here, naming the file. (With
                // several inputs, the filter is checked once all points are known.)
                if args.read.len() == 1
                    && let Err(e) = filter.prepare(r.info().linktype)
                {
                    if e.msg.starts_with("unknown data link type") {
                        eprintln!("flowtrail: {}: {}", crate::escape::text(r.path()), e.msg);
                    } else {
                        eprintln!("flowtrail: {}", e.msg);
                    }
                    return 1;
                }
                merger.add(Box::new(r) as Box<dyn FrameSource>);
            }
            Err(e) => {
                eprintln!("flowtrail: {e}");
                return 1;
            }
        }
    }
    process(&args, filter, merger, points).status
}

/// What [`process`] reports back.
pub struct Outcome {
    /// Exit status.
    pub status: i32,
    /// Frames that passed the filter, per point (tcpdump's "packets captured").
    pub per_point: Vec<u64>,
    /// Stopped because stdout went away (then nothing more is printed).
    pub broken_pipe: bool,
}

/// Live capture: every `-i` point (or the default interface), one timeline.
///
/// Order of events, as tcpdump's for one point:
/// 1. every `-i` spec is parsed and the filter text read (bad spec: message, exit 1);
/// 2. SIGINT/SIGTERM handlers are installed (a first signal asks the capture to stop and
///    drain; a second one while shutting down exits at once with 130);
/// 3. every handle is opened in its namespace ([`crate::live::LiveCapture::start`]); a
///    missing interface or namespace, a permission problem or a filter that does not
///    compile: one message, exit 1, nothing captured;
/// 4. `-Z USER` drops privileges (every handle is open by now);
/// 5. tcpdump's stderr preamble: `verbose output suppressed ...` when printing without
///    `-v` (and without `-w`), then one `listening on LABEL, link-type ..., snapshot length N
///    bytes` per point (prefixed `flowtrail: ` unless the suppressed line was printed);
/// 6. [`process`] prints/writes frames in time order until `-c`, a closed stdout, or the end
///    of capture (every thread drained after a signal);
/// 7. the threads end; after a signal, when printing to stdout without `-w`, one extra
///    newline goes to stdout (tcpdump's); then the statistics ([`crate::live::stats_report`])
///    go to stderr. Exit 0, or 1 when writing failed or a handle's read failed.
fn run_live(args: &Args) -> i32 {
    use crate::live::{LiveCapture, LiveOptions, StopFlag};
    let specs: Vec<crate::netns::PointSpec> = if args.interface.is_empty() {
        match pcap::Device::lookup() {
            Ok(Some(d)) => vec![crate::netns::PointSpec { netns: crate::netns::Netns::Current, iface: d.name }],
            _ => {
                eprintln!("flowtrail: no suitable device found; name one with -i");
                return 1;
            }
        }
    } else {
        let mut v = Vec::new();
        for i in &args.interface {
            match crate::netns::parse_point(i) {
                Ok(p) => v.push(p),
                Err(e) => {
                    eprintln!("flowtrail: {e}");
                    return 1;
                }
            }
        }
        v
    };
    let expr = match args.filter_expression() {
        Some(e) => e,
        None => return 1,
    };
    let direction = match args.direction.as_deref() {
        None | Some("inout") => None,
        Some("in") => Some(crate::capture::Direction::In),
        Some("out") => Some(crate::capture::Direction::Out),
        Some(d) => {
            eprintln!("flowtrail: {d}: invalid direction specified with -Q");
            return 1;
        }
    };
    // tcpdump decides on WFileName alone: `-w F --print` behaves like `-w F` on stderr.
    // The flow outputs (--flows, --follow, --streams) replace packet printing like -w does.
    let to_stdout = args.write.is_none() && !args.flow_outputs();
    let printing = to_stdout || args.print;
    let to_terminal = std::io::IsTerminal::is_terminal(&io::stdout());
    let several = specs.len() > 1;
    // Joined --flows: conntrack of every namespace captured in, and socket owners. Connection
    // starts come at once (each point's own immediate-mode handle for them, see
    // `live::TRIGGER_FILTER`), so they are attributed while they last.
    let joining = args.flows.is_some() && !args.no_join;
    let evidence = joining.then(|| {
        let pts: Vec<(u32, crate::netns::Netns)> =
            specs.iter().enumerate().map(|(i, s)| (i as u32, s.netns.clone())).collect();
        crate::evidence::LiveEvidence::with_memory(&pts, crate::limits::Limits::from_args(args).evidence_memory)
    });
    let opts = LiveOptions {
        snaplen: args.snaplen.unwrap_or(crate::live::MAXIMUM_SNAPLEN),
        buffer_kib: args.buffer_size,
        promisc: !args.no_promisc,
        direction,
        // Not forced for several points: the reorder window covers the ring's block timeout.
        immediate: args.immediate || args.line_buffered || (printing && to_terminal),
        nano: args.want_nano(),
        filter: expr,
        directions: several,
        max_queued_bytes: crate::limits::Limits::from_args(args).live_frames,
        tap: evidence.as_ref().and_then(|e| e.tap()),
    };
    let stop = StopFlag::new();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while shutting down ends the process at once.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, stop.arc());
        let _ = signal_hook::flag::register(sig, stop.arc());
    }
    let mut live = match LiveCapture::start(&specs, &opts, 0, stop.clone()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("flowtrail: {e}");
            return 1;
        }
    };
    let points = live.capture_points(opts.nano);
    if let Some(user) = &args.user
        && let Err(e) = crate::live::drop_privileges(user)
    {
        eprintln!("flowtrail: {e}");
        live.finish();
        return 1;
    }
    for p in live.points.iter().filter(|p| p.spec.iface == "any") {
        // tcpdump's note after it selected LINUX_SLL2 for `any`.
        let name = crate::capture::linktype::describe(p.linktype);
        let name = name.split(' ').next().unwrap_or("");
        if several {
            eprintln!("flowtrail: {}: data link type {name}", crate::escape::text(&p.label));
        } else {
            eprintln!("flowtrail: data link type {name}");
        }
    }
    let suppressed = to_stdout && args.verbose == 0;
    if suppressed {
        eprintln!("flowtrail: verbose output suppressed, use -v[v]... for full protocol decode");
    }
    for p in &live.points {
        eprintln!(
            "{}listening on {}, link-type {}, snapshot length {} bytes",
            if suppressed { "" } else { "flowtrail: " },
            crate::escape::text(&p.label),
            crate::capture::linktype::describe(p.linktype),
            p.snaplen
        );
    }
    let mut merger = Merger::new();
    merger.add(Box::new(live.source()));
    let if_names = crate::live::sll2_interface_names(&live.points);
    let outcome = process_live(args, Filter::new(None), merger, points, if_names, evidence);
    let interrupted = stop.is_stopped();
    let stats = live.finish();
    let errors = live.take_errors();
    if outcome.broken_pipe {
        return 0;
    }
    if to_stdout && interrupted {
        let mut o = io::stdout();
        let _ = o.write_all(b"\n").and_then(|_| o.flush());
    }
    for e in &errors {
        eprintln!("flowtrail: {e}");
    }
    let labels: Vec<String> = live.points.iter().map(|p| p.label.clone()).collect();
    eprint!("{}", crate::live::stats_report(&labels, &stats, &outcome.per_point));
    if live.reordered_early() > 0 {
        eprintln!(
            "flowtrail: {} frames left the reorder window early ({} held): their order across points may be off",
            live.reordered_early(),
            crate::live::REORDER_MAX_FRAMES
        );
    }
    if live.pauses() > 0 {
        eprintln!(
            "flowtrail: capture paused {} times: frames waiting for processing reached {} MiB \
             (the live share of --max-memory); the kernel counted what it dropped meanwhile",
            live.pauses(),
            opts.max_queued_bytes >> 20
        );
    }
    if errors.is_empty() { outcome.status } else { 1 }
}

/// Steps 2-5 over any set of sources (offline readers or live capture).
pub fn process(args: &Args, filter: Filter, merger: Merger, points: Points) -> Outcome {
    process_with(args, filter, merger, points, Vec::new())
}

/// [`process`] with the interface index -> name table the LINUX_SLL2 printer uses for
/// `any` captures (live capture fills it from the capturing namespace; empty prints `?`).
pub fn process_with(
    args: &Args,
    filter: Filter,
    merger: Merger,
    points: Points,
    if_names: Vec<(u32, String)>,
) -> Outcome {
    process_live(args, filter, merger, points, if_names, None)
}

/// [`process_with`] plus live evidence for the joiner (conntrack watchers, process
/// attribution), handed to the flow report before it joins.
pub fn process_live(
    args: &Args,
    mut filter: Filter,
    mut merger: Merger,
    mut points: Points,
    if_names: Vec<(u32, String)>,
    mut evidence: Option<crate::evidence::LiveEvidence>,
) -> Outcome {
    let fail = || Outcome { status: 1, per_point: Vec::new(), broken_pipe: false };
    // 2. Lookahead, then count points.
    merger.prime(&mut points);
    let labels = points.len() > 1;

    // 3. Filter for every point known now (several points: it must compile for at least one
    // of them, the others match nothing); -w.
    filter.set_lenient(labels);
    let mut first_error = None;
    let mut compiled = 0usize;
    for p in &points.points {
        match filter.prepare(p.linktype) {
            Ok(()) => compiled += 1,
            Err(e) => {
                if !labels {
                    report_filter_error(&e.msg, &p.label, false);
                    return fail();
                }
                first_error.get_or_insert((e, p.label.clone()));
            }
        }
    }
    if compiled == 0
        && let Some((e, label)) = first_error
    {
        report_filter_error(&e.msg, &label, labels);
        return fail();
    }
    let mut writer = match &args.write {
        Some(path) => match SaveWriter::create(path, Format::choose(path, points.len()), &points, write_precision(args)) {
            Ok(mut w) => {
                w.set_packet_buffered(args.packet_buffered);
                Some(w)
            }
            Err(e) => {
                eprintln!("flowtrail: {e}");
                return fail();
            }
        },
        None => None,
    };
    // --flows, --follow and --streams print their own output: packets only with --print.
    let print = (args.write.is_none() && !args.flow_outputs()) || args.print;
    let mut flows = match start_flows(args) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("flowtrail: {e}");
            return fail();
        }
    };
    if let (Some(f), Some(ev)) = (flows.as_mut(), evidence.as_ref())
        && f.joins()
    {
        f.on_new_flow(ev.hook());
        f.set_early_evidence(Box::new(ev.so_far()));
    }
    let mut opts = print_options(args);
    opts.labels = labels;
    let mut printer = Printer::new(opts);
    printer.state.tcp = crate::print::tcp::SeqTable::with_max_entries(crate::limits::Limits::from_args(args).print_seq_entries);
    if print {
        setup_names(args, &points, &mut printer.state);
    }
    // Live `any` points: interface names read inside each point's own namespace.
    if !if_names.is_empty() {
        printer.state.if_names = if_names;
    }
    let mut out = TextOut {
        out: io::stdout(),
        text: String::with_capacity(TEXT_CHUNK * 2),
        // A terminal gets each packet as it comes, as stdio's line buffering gives tcpdump.
        eager: args.line_buffered || args.packet_buffered || std::io::IsTerminal::is_terminal(&io::stdout()),
    };

    // 4. Packets.
    let mut count = 0u64;
    let mut per_point = vec![0u64; points.len()];
    let mut stop: Option<Stop> = None;
    if args.count != Some(0) {
        while let Some(frame) = merger.next(&mut points) {
            match filter.matches(&frame) {
                Ok(true) => {}
                Ok(false) => {
                    merger.recycle(frame);
                    continue;
                }
                Err(e) => {
                    let label = points.get(frame.point).map(|p| p.label.clone()).unwrap_or_default();
                    let _ = out.flush_text(true);
                    if let Some(w) = writer.as_mut() {
                        let _ = w.flush();
                    }
                    report_filter_error(&e.msg, &label, labels);
                    return fail();
                }
            }
            count += 1;
            if let Some(n) = per_point.get_mut(frame.point) {
                *n += 1;
            } else {
                per_point.resize(frame.point + 1, 0);
                per_point[frame.point] = 1;
            }
            if let Some(f) = flows.as_mut() {
                f.frame(&frame, &points);
                if let Some(e) = f.take_error() {
                    stop = Some(report_stop(e));
                    break;
                }
            }
            if let Some(w) = writer.as_mut()
                && let Err(e) = w.write(&frame, &points)
            {
                stop = Some(if e.source.kind() == io::ErrorKind::BrokenPipe {
                    Stop::BrokenPipe
                } else {
                    Stop::Fail(e.to_string())
                });
                break;
            }
            if print && let Some(point) = points.get(frame.point) {
                printer.print_frame(&frame, point, &mut out.text);
                if let Err(s) = out.after_packet() {
                    stop = Some(s);
                    break;
                }
            }
            merger.recycle(frame);
            if args.count.is_some_and(|c| count >= c) {
                break;
            }
        }
    }

    // 5. Flush, then report.
    if stop.is_none()
        && let Err(s) = out.flush_text(true)
    {
        stop = Some(s);
    }
    if stop.is_none()
        && let Some(w) = writer.as_mut()
        && let Err(e) = w.flush()
    {
        stop = Some(if e.source.kind() == io::ErrorKind::BrokenPipe {
            Stop::BrokenPipe
        } else {
            Stop::Fail(e.to_string())
        });
    }
    if let Some(w) = &writer
        && w.skipped() > 0
    {
        eprintln!(
            "flowtrail: {}: {} packets of another link type not written (a pcap file holds one; name it .pcapng)",
            w.path(),
            w.skipped()
        );
    }
    drop(writer);
    report_printer_caps(&printer);
    let mut flow_status = 0;
    if let (Some(f), Some(ev)) = (flows.as_mut(), evidence.take()) {
        let (e, stats) = ev.finish();
        f.add_evidence(e);
        f.set_evidence_stats(stats);
    }
    if stop.is_none()
        && let Some(f) = flows.take()
    {
        match f.finish() {
            Ok(status) => flow_status = status,
            Err(e) => stop = Some(report_stop(e)),
        }
    }
    match stop {
        Some(Stop::BrokenPipe) => return Outcome { status: 0, per_point, broken_pipe: true },
        Some(Stop::Fail(msg)) => {
            eprintln!("flowtrail: {msg}");
            return Outcome { status: 1, per_point, broken_pipe: false };
        }
        None => {}
    }
    let errors = merger.take_errors();
    for e in &errors {
        eprintln!("flowtrail: {e}");
    }
    Outcome { status: if errors.is_empty() && flow_status == 0 { 0 } else { 1 }, per_point, broken_pipe: false }
}

/// What the printer's caps cut (README, "Limits"); nothing when they were not reached.
fn report_printer_caps(printer: &Printer) {
    let seq = printer.state.tcp.clears();
    if seq > 0 {
        eprintln!(
            "flowtrail: the TCP relative sequence table was full {seq} times (the printer's share of --max-memory): \
             conversations then restarted from their next segment"
        );
    }
    if let Some(h) = &printer.state.hosts
        && h.clears() > 0
    {
        eprintln!(
            "flowtrail: the host name cache was full {} times ({} addresses): names were looked up again",
            h.clears(),
            crate::print::names::HostNames::MAX_CACHED
        );
    }
}

/// The flow table and its outputs, if `--flows`, `--follow` or `--streams` asked for them.
fn start_flows(args: &Args) -> Result<Option<crate::report::FlowReport>, crate::report::ReportError> {
    let Some(opts) = crate::report::ReportOptions::from_args(args)? else { return Ok(None) };
    let (out, terminal) = crate::report::FlowReport::stdout();
    crate::report::FlowReport::new(opts, out, terminal).map(Some)
}

fn report_stop(e: crate::report::ReportError) -> Stop {
    match e {
        crate::report::ReportError::BrokenPipe => Stop::BrokenPipe,
        e => Stop::Fail(e.to_string()),
    }
}

/// Gives the printers what this host knows about names (tcpdump's `init_addrtoname` and
/// `if_indextoname`): interface names when a point is LINUX_SLL2 (tcpdump names those even
/// with `-n`); without `-n`, the system resolver, `/etc/services` and `/etc/ethers`. With
/// `-n` nothing is read or asked.
fn setup_names(args: &Args, points: &Points, state: &mut crate::print::State) {
    use crate::hostinfo;
    // 276: LINUX_SLL2
    if points.points.iter().any(|p| p.linktype == 276) {
        state.if_names = hostinfo::interface_names();
    }
    if args.numeric == 0 {
        state.load_services(&hostinfo::services_text());
        state.ethers = crate::print::names::parse_ethers(&hostinfo::ethers_text());
        state.hosts = Some(crate::print::names::HostNames::new(Box::new(hostinfo::SystemHosts), args.no_domain));
    }
}

/// `-w` precision: `--nano`/`--time-stamp-precision=nano` or `--micro`/`=micro` force one;
/// otherwise each point keeps its own (a nanosecond input is written with nanoseconds).
fn write_precision(args: &Args) -> Option<bool> {
    if args.want_nano() {
        Some(true)
    } else if args.micro || args.ts_precision.as_deref() == Some("micro") {
        Some(false)
    } else {
        None
    }
}

/// tcpdump prints libpcap's compile error alone; with several points we name the point whose
/// link type the expression failed for.
fn report_filter_error(msg: &str, label: &str, labels: bool) {
    if labels {
        eprintln!("flowtrail: {label}: {msg}");
    } else {
        eprintln!("flowtrail: {msg}");
    }
}
