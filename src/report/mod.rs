//! Flow outputs: `--flows` (text table or JSON lines), `--follow ID`, `--streams DIR`.
//!
//! [`FlowReport`] owns the [`FlowTable`] and the selected outputs; the pipeline hands it every
//! frame that passed the filter ([`FlowReport::frame`]) and calls [`FlowReport::finish`] when
//! input ends. When any of these options is given, packet printing is off unless `--print`.
//!
//! - `--flows[=text|json]`: one record per observation, printed when input ends, ordered by
//!   id ([`table`], [`json`]). Finished records wait in memory up to
//!   [`ReportOptions::max_held_records`] records or [`ReportOptions::max_held_bytes`] bytes
//!   ([`FlowRecord::heap_bytes`], gap lists included); beyond that the waiting ones are
//!   printed early, in id order within the batch (counted: `records_flushed_early`), so
//!   memory stays bounded. Joined (`--flows` without `--no-join`), batches close at two
//!   fifths of those bounds (a batch holds its newest paths back for the next one, see
//!   [`paths::join_batch`]) and are joined and written on a join thread (`JoinWorker`)
//!   while frames keep coming; the batch out counts against the bounds until its output is
//!   written, and at most one is out, so held plus joining stay within them. The held
//!   records' joiner features are copied, as their flows end, into one block per batch
//!   ([`paths::BatchFeatures`], sized once for a batch's bound and counted as
//!   [`paths::BatchFeatures::ENTRY_BYTES`] per record), which travels with the batch and
//!   comes back cleared for a later one: no record costs an allocation or a free for its
//!   features, on either thread. The output (batch order, path ids) is the one an inline
//!   join of the same batches writes (with `--follow`, which shares standard output,
//!   batches are joined inline, and so they are when the process may run on one CPU only:
//!   see [`ReportOptions::join_thread`]). Each batch is joined with the report's evidence
//!   ([`ReportOptions::evidence`], then what [`FlowReport::add_evidence`] adds: live, the
//!   final evidence, added when capture ends) and, live, when it is joined before that,
//!   with the evidence gathered so far that bears on its records
//!   ([`FlowReport::set_early_evidence`], [`paths::EarlyEvidence`]; see
//!   [`crate::evidence`]), taken on this thread when the batch is handed over. A run that
//!   never flushes early writes what it wrote without it.
//!   Global counters (`FlowTableStats`, plus the process's peak RSS) go to stderr at the end:
//!   one line of text, or with `=json` one JSON object `{"stats":{...}}`.
//! - `--follow ID`: the flow's conversation on stdout as it is reassembled ([`follow`]).
//! - `--streams DIR`: stream files and `index.json` ([`streams`]).
//!
//! Output errors do not panic and do not lose the run's state: the first one is kept and
//! returned by [`FlowReport::take_error`]; a closed stdout is [`ReportError::BrokenPipe`].

pub mod follow;
pub mod json;
pub mod paths;
pub mod streams;
pub mod table;

use crate::capture::{Frame, Points};
use crate::flow::{FlowConfig, FlowInfo, FlowObserver, FlowRecord, FlowTable, FlowTableStats, Nanos, Proto};
use crate::join::ObservationFeatures;
use crate::limits::Limits;
use crate::reassembly::{Direction, Event};
use follow::{Follow, FollowFormat};
use paths::JoinEvidence;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use streams::{StreamFiles, StreamsError};

/// `--flows` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowsFormat {
    Text,
    Json,
}

/// What to produce.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub flows: Option<FlowsFormat>,
    pub follow: Option<u64>,
    pub follow_format: FollowFormat,
    pub streams: Option<PathBuf>,
    pub flow: FlowConfig,
    /// Finished records kept for the end-of-input table before a batch is printed early.
    pub max_held_records: usize,
    /// The same bound in bytes ([`FlowRecord::heap_bytes`] summed).
    pub max_held_bytes: usize,
    /// The memory plan the caps came from (reported with the statistics).
    pub limits: Limits,
    /// Flush standard output after every frame (`-l`, `-U`; always for a terminal), so a
    /// live `--follow` shows data as it comes.
    pub eager: bool,
    /// `--flows` joins observations into legs and paths (not `--no-join`).
    pub join: bool,
    /// Offline evidence for the joiner (`--conntrack`).
    pub evidence: JoinEvidence,
    /// Join held batches on a second thread while frames keep coming (see
    /// `Outputs::print_held`); off with `--follow`, whose output shares standard output,
    /// and when the process may run on one CPU only (`taskset`, a cgroup quota, a one-core
    /// VM): there the two threads would only take turns on it, each evicting the other's
    /// data from the caches (the flow benchmark's capture pinned to one core, LTO build,
    /// best of 5: joining added 31% with the thread, 27% inline; an older build measured
    /// 19% and 14%). The output is the same either way.
    pub join_thread: bool,
}

impl ReportOptions {
    pub const DEFAULT_MAX_HELD_RECORDS: usize = 1 << 16;

    /// The options from the command line; `None` when no flow output is asked for.
    pub fn from_args(args: &crate::cli::Args) -> Result<Option<ReportOptions>, ReportError> {
        if !args.flow_outputs() {
            return Ok(None);
        }
        let flows = match args.flows.as_deref() {
            None => None,
            Some("" | "text") => Some(FlowsFormat::Text),
            Some("json") => Some(FlowsFormat::Json),
            Some(other) => {
                return Err(ReportError::Usage(format!("--flows={other}: use --flows or --flows=json")));
            }
        };
        let follow_format = match FollowFormat::parse(args.follow_format.as_deref().unwrap_or("ascii")) {
            Some(f) => f,
            None => {
                return Err(ReportError::Usage("--follow-format: use ascii, hex or raw".into()));
            }
        };
        let limits = Limits::from_args(args);
        let mut flow = FlowConfig {
            max_flows: limits.max_flows,
            reassembly_memory: limits.reassembly_memory,
            aux_memory: limits.aux_memory,
            // Room for the flows the memory plan allows, reserved once (an explicit larger
            // --max-flows grows on demand beyond it).
            reserve_flows: limits.max_flows.min(Limits::for_flows(limits.max_memory, flows.is_some() && !args.no_join).max_flows),
            ..FlowConfig::default()
        };
        flow.reassembly.max_buffered = limits.stream_buffer;
        if let Some(secs) = args.flow_timeout {
            let t = Nanos::from_secs(i64::try_from(secs).unwrap_or(i64::MAX));
            flow.tcp_timeout = t;
            flow.udp_timeout = flow.udp_timeout.min(t);
            flow.icmp_timeout = flow.icmp_timeout.min(t);
            flow.tcp_attempt_timeout = flow.tcp_attempt_timeout.min(t);
            flow.tcp_closed_timeout = flow.tcp_closed_timeout.min(t);
        }
        let join = flows.is_some() && !args.no_join;
        flow.features = join;
        let mut evidence = JoinEvidence::default();
        for spec in &args.conntrack {
            let (scope, file) = conntrack_spec(spec);
            // A stranger's file: any bytes (not UTF-8: those lines fail to parse), a name
            // printed escaped.
            let name = crate::escape::text(file);
            let bytes = std::fs::read(file)
                .map_err(|e| ReportError::Usage(format!("--conntrack {name}: {}", crate::capture::os_message(&e))))?;
            let (entries, errors) = crate::conntrack::text::parse_entries(&String::from_utf8_lossy(&bytes));
            if entries.is_empty() && !errors.is_empty() {
                return Err(ReportError::Usage(format!("--conntrack {name}: no conntrack entries ({})", errors[0])));
            }
            if let Some(first) = errors.first() {
                eprintln!(
                    "flowtrail: --conntrack {name}: {} line{} not understood, skipped ({first})",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" }
                );
            }
            let scope: std::sync::Arc<str> = std::sync::Arc::from(scope);
            evidence.conntrack.extend(entries.into_iter().map(|e| (e, Some(scope.clone()))));
        }
        Ok(Some(ReportOptions {
            flows,
            follow: args.follow,
            follow_format,
            streams: args.streams.as_ref().map(PathBuf::from),
            flow,
            max_held_records: ReportOptions::DEFAULT_MAX_HELD_RECORDS,
            max_held_bytes: limits.held_records,
            limits,
            eager: args.line_buffered || args.packet_buffered,
            join,
            evidence,
            join_thread: args.follow.is_none() && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1),
        }))
    }
}

/// `NETNS=FILE` or `FILE` (scope: the file's stem).
pub(crate) fn conntrack_spec(spec: &str) -> (&str, &str) {
    match spec.split_once('=') {
        Some((scope, file)) if !scope.is_empty() && !scope.contains('/') => (scope, file),
        _ => {
            let stem = std::path::Path::new(spec).file_stem().and_then(|s| s.to_str()).unwrap_or("conntrack");
            (stem, spec)
        }
    }
}

/// Why flow output failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0}")]
    Usage(String),
    #[error("--follow-format raw writes binary data: redirect standard output to a file or a pipe")]
    RawToTerminal,
    #[error(transparent)]
    Streams(#[from] StreamsError),
    /// Standard output went away (`| head`): end quietly.
    #[error("standard output closed")]
    BrokenPipe,
    #[error("standard output: {}", crate::capture::os_message(.0))]
    Output(io::Error),
}

impl ReportError {
    fn output(e: io::Error) -> ReportError {
        if e.kind() == io::ErrorKind::BrokenPipe { ReportError::BrokenPipe } else { ReportError::Output(e) }
    }
}

/// The flow table and its outputs.
pub struct FlowReport {
    table: FlowTable,
    outputs: Outputs,
    eager: bool,
}

/// The observer side: everything the table's events go to.
struct Outputs {
    out: Box<dyn Write>,
    flows: Option<FlowsFormat>,
    held: Vec<FlowRecord>,
    /// The joiner features of the held records (joined output only).
    held_features: paths::BatchFeatures,
    /// A block for the next batch's features, and a vector for its records: those of the
    /// last batch joined, emptied (the join thread hands them back), so that batch after
    /// batch neither grows a vector again nor touches fresh pages (two of each at most).
    spare_features: Option<paths::BatchFeatures>,
    spare_held: Option<Vec<FlowRecord>>,
    /// Records the last joined batch held back ([`paths::join_batch`]), with their bytes
    /// (as held records count them): they join the next batch when it is handed over, so
    /// that batches are the same whether joined inline or on the join thread.
    carried: paths::Carried,
    carried_bytes: usize,
    max_held: usize,
    /// Bytes the held records hold, their bound, and the most held at once.
    held_bytes: usize,
    max_held_bytes: usize,
    held_bytes_peak: usize,
    limits: Limits,
    header_written: bool,
    flushed_early: u64,
    follow: Option<Follow>,
    streams: Option<StreamFiles>,
    error: Option<ReportError>,
    /// Joined output (see [`paths`]).
    join: bool,
    /// Shared with the batch being joined on the join thread (copied on write).
    evidence: Arc<JoinEvidence>,
    /// Live evidence gathered so far, asked for each batch joined before
    /// [`FlowReport::add_evidence`] brings the final evidence (which ends it).
    early_evidence: Option<Box<dyn paths::EarlyEvidence>>,
    /// Next path id of an inline join (the join thread keeps its own).
    next_path: u64,
    join_stats: crate::join::JoinStats,
    /// The join thread, when joined batches are joined off the packet path.
    worker: Option<JoinWorker>,
    /// Bytes of the batch handed to the join thread and not yet written ([`FlowRecord::heap_bytes`]
    /// of its records), counted against [`Outputs::max_held_bytes`] until its output is
    /// written; `None` when no batch is out.
    in_flight: Option<usize>,
    /// Told of every new flow (live process attribution); must not block.
    on_new_flow: Option<Box<dyn FnMut(&FlowInfo)>>,
    evidence_stats: Option<crate::evidence::EvidenceStats>,
}

impl FlowReport {
    /// Opens the outputs (`--streams` creates its directory). `out` is standard output;
    /// `out_is_terminal` refuses raw follow output to a terminal.
    pub fn new(opts: ReportOptions, out: Box<dyn Write>, out_is_terminal: bool) -> Result<FlowReport, ReportError> {
        if opts.follow.is_some() && opts.follow_format == FollowFormat::Raw && out_is_terminal {
            return Err(ReportError::RawToTerminal);
        }
        let streams = match &opts.streams {
            Some(dir) => Some(StreamFiles::create(dir)?),
            None => None,
        };
        Ok(FlowReport {
            eager: opts.eager || out_is_terminal,
            table: FlowTable::new(opts.flow.clone()),
            outputs: Outputs {
                out,
                flows: opts.flows,
                held: Vec::new(),
                held_features: paths::BatchFeatures::default(),
                spare_features: None,
                spare_held: None,
                carried: Vec::new(),
                carried_bytes: 0,
                max_held: opts.max_held_records.max(1),
                held_bytes: 0,
                max_held_bytes: opts.max_held_bytes,
                held_bytes_peak: 0,
                limits: opts.limits,
                header_written: false,
                flushed_early: 0,
                follow: opts.follow.map(|id| Follow::new(id, opts.follow_format)),
                streams,
                error: None,
                join: opts.join,
                evidence: Arc::new(opts.evidence),
                early_evidence: None,
                next_path: 1,
                join_stats: crate::join::JoinStats::default(),
                worker: match opts.flows {
                    Some(f) if opts.join && opts.join_thread => JoinWorker::spawn(f == FlowsFormat::Json),
                    _ => None,
                },
                in_flight: None,
                on_new_flow: None,
                evidence_stats: None,
            },
        })
    }

    /// More evidence for the joiner (live conntrack, socket owners, point namespaces); used
    /// when the held records are joined (at the end, or when the hold cap is reached). Live,
    /// this is the final evidence: batches joined from now on get it, and no longer ask the
    /// early evidence (which would give them the same entries again).
    pub fn add_evidence(&mut self, e: JoinEvidence) {
        self.outputs.early_evidence = None;
        let ev = Arc::make_mut(&mut self.outputs.evidence);
        ev.conntrack.extend(e.conntrack);
        ev.owners.extend(e.owners);
        ev.point_netns.extend(e.point_netns);
    }

    /// Live evidence gathered so far, for batches joined before [`FlowReport::add_evidence`]:
    /// each gets, besides the report's evidence, what `early` gives for its records.
    pub fn set_early_evidence(&mut self, early: Box<dyn paths::EarlyEvidence>) {
        self.outputs.early_evidence = Some(early);
    }

    /// Calls `hook` with every new flow, on the packet path: it must only queue work.
    pub fn on_new_flow(&mut self, hook: Box<dyn FnMut(&FlowInfo)>) {
        self.outputs.on_new_flow = Some(hook);
    }

    /// Counters of the live evidence, reported with the flow counters.
    pub fn set_evidence_stats(&mut self, stats: crate::evidence::EvidenceStats) {
        self.outputs.evidence_stats = Some(stats);
    }

    /// Whether `--flows` joins (features are kept).
    pub fn joins(&self) -> bool {
        self.outputs.join
    }

    /// Standard output, buffered, for [`FlowReport::new`].
    pub fn stdout() -> (Box<dyn Write>, bool) {
        let out = io::stdout();
        let terminal = std::io::IsTerminal::is_terminal(&out);
        (Box::new(io::BufWriter::with_capacity(1 << 16, out)), terminal)
    }

    /// One frame that passed the filter.
    pub fn frame(&mut self, frame: &Frame, points: &Points) {
        self.table.frame(frame, points, &mut self.outputs);
        if self.eager
            && self.outputs.error.is_none()
            && let Err(e) = self.outputs.out.flush()
        {
            self.outputs.fail(ReportError::output(e));
        }
    }

    /// The first output error, if one happened (then stop feeding frames).
    pub fn take_error(&mut self) -> Option<ReportError> {
        self.outputs.error.take()
    }

    /// Counters so far.
    pub fn stats(&self) -> FlowTableStats {
        self.table.stats()
    }

    /// End of input: ends every flow, prints what is left, closes files, writes the counters
    /// to stderr. Returns the exit status contribution (1 if `--follow` named no flow).
    pub fn finish(mut self) -> Result<i32, ReportError> {
        self.table.finish(&mut self.outputs);
        if let Some(e) = self.outputs.error.take() {
            return Err(e);
        }
        let o = &mut self.outputs;
        o.print_held(true)?;
        o.collect(true)?;
        o.out.flush().map_err(ReportError::output)?;
        if let Some(s) = o.streams.as_mut() {
            s.finish()?;
        }
        let stats = self.table.stats();
        if let Some(format) = o.flows {
            let join = o.join.then_some(&o.join_stats);
            report_stats(format, &stats, o, o.streams.as_ref(), join, o.evidence_stats.as_ref());
        }
        if let Some(f) = &o.follow
            && !f.found()
        {
            eprintln!("flowtrail: --follow {}: no such flow ({} flows)", f.id, stats.flows_created);
            return Ok(1);
        }
        Ok(0)
    }
}

impl Outputs {
    fn fail(&mut self, e: ReportError) {
        self.error.get_or_insert(e);
    }

    fn is_followed(&self, info: &FlowInfo) -> bool {
        self.follow.as_ref().is_some_and(|f| f.id == info.id)
    }

    /// Prints the waiting records, sorted by id.
    fn print_held(&mut self, last: bool) -> Result<(), ReportError> {
        if let (true, Some(format)) = (self.join, self.flows) {
            // One batch out at a time: the previous one is written first (output in batch
            // order, as inline), which brings its emptied blocks back, and the records it
            // held back (into this batch); then this one is handed over and counted until
            // written.
            self.collect(true)?;
            for (r, f) in std::mem::take(&mut self.carried) {
                self.held_bytes += r.heap_bytes();
                self.hold_features(r.info.id, &f);
                self.held.push(r);
            }
            self.carried_bytes = 0;
            if self.held.is_empty() {
                return Ok(());
            }
            // A batch joined before the end of a live capture: the evidence gathered so far
            // for its records, taken now (the final evidence, later, has all of it).
            let early = self.early_evidence.as_ref().map(|e| e.for_batch(&self.held));
            // Held back for the next batch: a quarter of a batch's bytes at most.
            let hold = (!last).then(|| self.batch_bounds().1 / 4);
            if let Some(w) = &self.worker {
                let records = std::mem::replace(&mut self.held, self.spare_held.take().unwrap_or_default());
                let features = std::mem::replace(&mut self.held_features, self.spare_features.take().unwrap_or_default());
                let bytes = std::mem::replace(&mut self.held_bytes, 0);
                // A send fails only when the thread is gone, and [`Outputs::collect`] has
                // said so already.
                let job = JoinJob { records, features, evidence: self.evidence.clone(), early, hold };
                w.tx.send(job).map_err(|_| join_thread_failed())?;
                self.in_flight = Some(bytes);
                return Ok(());
            }
            let (r, stats, carried) = paths::join_batch(
                &mut self.held,
                &mut self.held_features,
                &evidence_parts(&self.evidence, early.as_ref()),
                &mut self.next_path,
                format == FlowsFormat::Json,
                hold,
                &mut paths::Direct(&mut self.out),
            );
            self.held.clear();
            self.held_bytes = 0;
            add_join_stats(&mut self.join_stats, &stats);
            self.hold_again(carried);
            return r.map_err(ReportError::output);
        }
        if self.held.is_empty() {
            return Ok(());
        }
        // Records end roughly in id order: sorting is cheap, and moves only small records.
        self.held.sort_unstable_by_key(|r| r.info.id);
        match self.flows {
            Some(FlowsFormat::Json) => {
                let mut buf = Vec::with_capacity(1 << 17);
                for r in &self.held {
                    json::write_record(&mut buf, r).map_err(ReportError::output)?;
                    if buf.len() >= 1 << 16 {
                        self.out.write_all(&buf).map_err(ReportError::output)?;
                        buf.clear();
                    }
                }
                self.out.write_all(&buf).map_err(ReportError::output)?;
            }
            Some(FlowsFormat::Text) => {
                let mut text = String::new();
                table::write_rows(&mut text, &self.held, !self.header_written);
                self.header_written = true;
                self.out.write_all(text.as_bytes()).map_err(ReportError::output)?;
            }
            None => {}
        }
        self.held.clear();
        self.held_bytes = 0;
        Ok(())
    }
    /// Writes what the join thread has written of the batch out so far (with `wait`: all
    /// of it, once it is done). Its records stop counting against the held share when its
    /// last chunk is written.
    fn collect(&mut self, wait: bool) -> Result<(), ReportError> {
        while self.in_flight.is_some() {
            let Some(w) = &self.worker else {
                return Ok(());
            };
            let piece = if wait {
                w.rx.recv().map_err(|_| join_thread_failed())?
            } else {
                match w.rx.try_recv() {
                    Ok(d) => d,
                    Err(mpsc::TryRecvError::Empty) => return Ok(()),
                    Err(mpsc::TryRecvError::Disconnected) => return Err(join_thread_failed()),
                }
            };
            match piece {
                Joined::Chunk(mut out) => {
                    self.out.write_all(&out).map_err(ReportError::output)?;
                    // The buffer back to the join thread, for a later chunk (a send fails
                    // only when the thread is gone; the buffer is dropped then).
                    if out.capacity() <= 2 * paths::CHUNK_ROOM {
                        out.clear();
                        let _ = w.spare.send(out);
                    }
                }
                Joined::Done(r, stats, features, mut records, carried) => {
                    // The batch's records are freed here, on the thread that allocated them
                    // (cheaper for the allocator than freeing them on the join thread).
                    records.clear();
                    self.in_flight = None;
                    self.spare_features = Some(features);
                    self.spare_held = Some(records);
                    self.hold_again(carried);
                    add_join_stats(&mut self.join_stats, &stats);
                    r.map_err(ReportError::output)?;
                }
            }
        }
        Ok(())
    }
}

impl Outputs {
    /// Records and bytes at which a batch closes. Joined: two fifths of the bounds, so
    /// that one batch being joined (counted until written, with the records the batch
    /// before it held back: about a tenth), the next one filling and the records held
    /// back for it stay within them together.
    fn batch_bounds(&self) -> (usize, usize) {
        if self.join {
            ((self.max_held * 2 / 5).max(1), self.max_held_bytes * 2 / 5)
        } else {
            (self.max_held, self.max_held_bytes)
        }
    }

    /// Keeps a held record's joiner features in the batch's block.
    fn hold_features(&mut self, id: u64, f: &crate::join::ObservationFeatures) {
        if self.held_features.capacity() == 0 {
            // Room for a whole batch at once (it never grows by copying): a batch closes at
            // `records` records, or once the bytes reach `bytes`, each record with features
            // counted as ENTRY_BYTES. Pages are touched only as entries are written.
            let (records, bytes) = self.batch_bounds();
            let most = records.min(bytes / paths::BatchFeatures::ENTRY_BYTES + 1);
            self.held_features = paths::BatchFeatures::with_capacity(most);
        }
        self.held_features.push(id, f);
        self.held_bytes += paths::BatchFeatures::ENTRY_BYTES;
    }

    /// The records a joined batch held back ([`paths::join_batch`]): kept for the next
    /// batch, and counted until then.
    fn hold_again(&mut self, carried: paths::Carried) {
        self.carried_bytes += carried.iter().map(|(r, _)| r.heap_bytes() + paths::BatchFeatures::ENTRY_BYTES).sum::<usize>();
        self.carried.extend(carried);
        self.note_held_peak();
    }

    /// Keeps the most bytes held at once: waiting, out on the join thread, and carried.
    fn note_held_peak(&mut self) {
        let now = self.held_bytes + self.in_flight.unwrap_or(0) + self.carried_bytes;
        self.held_bytes_peak = self.held_bytes_peak.max(now);
    }
}

fn join_thread_failed() -> ReportError {
    ReportError::Output(io::Error::other("the join thread failed"))
}

/// One batch for the join thread.
struct JoinJob {
    records: Vec<FlowRecord>,
    features: paths::BatchFeatures,
    /// The report's evidence.
    evidence: Arc<JoinEvidence>,
    /// The evidence gathered for this batch when it closed (a live capture's early batches).
    early: Option<JoinEvidence>,
    /// Bytes of it that may be held back for the next batch (none: the last batch).
    hold: Option<usize>,
}

/// The report's evidence, then a batch's early evidence.
fn evidence_parts<'a>(evidence: &'a JoinEvidence, early: Option<&'a JoinEvidence>) -> Vec<&'a JoinEvidence> {
    std::iter::once(evidence).chain(early).collect()
}

/// What the join thread sends back: output in order, then the end of a batch (with its
/// features' block, emptied, and its records' vector, emptied once back, for a later batch).
enum Joined {
    Chunk(Vec<u8>),
    Done(io::Result<()>, crate::join::JoinStats, paths::BatchFeatures, Vec<FlowRecord>, paths::Carried),
}

/// The join thread: joins held batches ([`paths::join_batch`]) one at a time, in the order
/// they are sent, numbering paths across batches as an inline join does; the report thread
/// writes each batch's output (in order) and keeps at most one batch out. Output comes
/// back in chunks of about 256 KiB ([`paths::CHUNK`]) through a channel of
/// [`JoinWorker::CHUNKS`]: the thread waits for the report thread rather than hold a batch's
/// whole output (about a MiB of it out at once; large chunks, so that the two threads wake
/// each other seldom). The chunks' buffers go back to the thread once written (`spare`), so the
/// output is neither copied nor allocated again chunk by chunk.
struct JoinWorker {
    tx: mpsc::Sender<JoinJob>,
    rx: mpsc::Receiver<Joined>,
    spare: mpsc::Sender<Vec<u8>>,
}

impl JoinWorker {
    const CHUNKS: usize = 4;

    /// `None` when no thread can be started (then batches are joined inline).
    fn spawn(json: bool) -> Option<JoinWorker> {
        let (tx, jobs) = mpsc::channel::<JoinJob>();
        let (done, rx) = mpsc::sync_channel::<Joined>(JoinWorker::CHUNKS);
        let (spare, spares) = mpsc::channel::<Vec<u8>>();
        std::thread::Builder::new()
            .name("flowtrail-join".into())
            .spawn(move || {
                let mut next_path = 1;
                for JoinJob { mut records, mut features, evidence, early, hold } in jobs {
                    let mut out = ChunkOut { to: &done, spares: &spares };
                    let parts = evidence_parts(&evidence, early.as_ref());
                    let stats = paths::join_batch(&mut records, &mut features, &parts, &mut next_path, json, hold, &mut out);
                    drop(parts);
                    drop(early);
                    drop(evidence);
                    if done.send(Joined::Done(stats.0, stats.1, features, records, stats.2)).is_err() {
                        break;
                    }
                }
            })
            .ok()?;
        Some(JoinWorker { tx, rx, spare })
    }
}

/// The join thread's output: each chunk sent whole, its buffer replaced by one the report
/// thread gave back (or a new one).
struct ChunkOut<'a> {
    to: &'a mpsc::SyncSender<Joined>,
    spares: &'a mpsc::Receiver<Vec<u8>>,
}

impl paths::Sink for ChunkOut<'_> {
    fn put(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        let next = self.spares.try_recv().unwrap_or_else(|_| Vec::with_capacity(paths::CHUNK_ROOM));
        let full = std::mem::replace(buf, next);
        self.to.send(Joined::Chunk(full)).map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

impl FlowObserver for Outputs {
    fn wants_payload(&mut self, flow: &FlowInfo) -> bool {
        if let Some(hook) = self.on_new_flow.as_mut() {
            hook(flow);
        }
        self.is_followed(flow) || (self.streams.is_some() && flow.proto == Proto::Tcp)
    }

    fn stream_event(&mut self, flow: &FlowInfo, direction: Direction, event: &Event<'_>) {
        if self.error.is_some() {
            return;
        }
        if self.is_followed(flow)
            && let Some(f) = self.follow.as_mut()
        {
            let r = match event {
                Event::Data { offset, bytes } => f.data(&mut self.out, flow, direction, *offset, bytes),
                Event::Gap { offset, len } => f.gap(&mut self.out, flow, direction, *offset, *len),
                _ => Ok(()),
            };
            if let Err(e) = r {
                self.fail(ReportError::output(e));
                return;
            }
        }
        if let (Some(s), Event::Data { bytes, .. }) = (self.streams.as_mut(), event)
            && let Err(e) = s.data(flow, direction, bytes)
        {
            self.fail(e.into());
        }
    }

    fn datagram(&mut self, flow: &FlowInfo, direction: Direction, payload: &[u8]) {
        if self.error.is_none()
            && self.is_followed(flow)
            && let Some(f) = self.follow.as_mut()
            && let Err(e) = f.datagram(&mut self.out, flow, direction, payload)
        {
            self.fail(ReportError::output(e));
        }
    }

    fn flow_ended(&mut self, record: FlowRecord, features: Option<&ObservationFeatures>) {
        if self.error.is_some() {
            return;
        }
        if self.is_followed(&record.info)
            && let Some(f) = self.follow.as_mut()
            && let Err(e) = f.end(&mut self.out, &record.info)
        {
            self.fail(ReportError::output(e));
            return;
        }
        if let Some(s) = self.streams.as_mut()
            && let Err(e) = s.flow_ended(&record)
        {
            self.fail(e.into());
            return;
        }
        if self.flows.is_some() {
            // The join thread's finished chunks, looked for every 64 records (the channel
            // bounds what waits; polling it at every record costs more than it gains).
            if self.held.len().is_multiple_of(64)
                && let Err(e) = self.collect(false)
            {
                self.fail(e);
                return;
            }
            let (records, bytes) = self.batch_bounds();
            self.held_bytes += record.heap_bytes();
            if let (true, Some(f)) = (self.join, features) {
                self.hold_features(record.info.id, f);
            }
            self.note_held_peak();
            self.held.push(record);
            if self.held.len() >= records || self.held_bytes >= bytes {
                self.flushed_early += 1;
                if let Err(e) = self.print_held(false) {
                    self.fail(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ReportOptions {
        ReportOptions {
            flows: None,
            follow: Some(1),
            follow_format: FollowFormat::Raw,
            streams: None,
            flow: FlowConfig::default(),
            max_held_records: 4,
            max_held_bytes: 1 << 20,
            limits: Limits::default(),
            eager: false,
            join: false,
            evidence: JoinEvidence::default(),
            join_thread: false,
        }
    }

    #[test]
    fn raw_follow_is_refused_on_a_terminal() {
        assert!(matches!(FlowReport::new(opts(), Box::new(Vec::new()), true), Err(ReportError::RawToTerminal)));
        assert!(FlowReport::new(opts(), Box::new(Vec::new()), false).is_ok());
        let ascii = ReportOptions { follow_format: FollowFormat::Ascii, ..opts() };
        assert!(FlowReport::new(ascii, Box::new(Vec::new()), true).is_ok());
    }

    /// A writer that fails like a closed pipe.
    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
    }

    /// Standard output of a test run, shared with the report.
    #[derive(Clone, Default)]
    struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// The seed captures (one file, several points) through a joined report.
    fn joined(format: FlowsFormat, thread: bool, max_held: usize) -> Vec<u8> {
        use crate::capture::{FrameSource, OfflineReader};
        let o = ReportOptions {
            flows: Some(format),
            follow: None,
            join: true,
            join_thread: thread,
            max_held_records: max_held,
            flow: FlowConfig { features: true, ..FlowConfig::default() },
            ..opts()
        };
        let out = Shared::default();
        let mut report = FlowReport::new(o, Box::new(out.clone()), false).unwrap();
        assert_eq!(report.outputs.worker.is_some(), thread);
        let mut points = Points::default();
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/vm-all.pcapng");
        let mut r = OfflineReader::open(file, &mut points).unwrap();
        let mut spare = Vec::new();
        while let Some(f) = r.next_frame(&mut points, spare).unwrap() {
            report.frame(&f, &points);
            spare = f.data;
        }
        assert_eq!(report.finish().unwrap(), 0);
        out.0.borrow().clone()
    }

    #[test]
    fn the_join_thread_writes_what_an_inline_join_writes() {
        for format in [FlowsFormat::Json, FlowsFormat::Text] {
            // One batch, and batches of two records (the flows of this capture end at its
            // end: the table's last sweep hands over one batch while filling the next).
            for max_held in [1 << 16, 4] {
                let inline = joined(format, false, max_held);
                let threaded = joined(format, true, max_held);
                assert!(!inline.is_empty());
                assert_eq!(String::from_utf8_lossy(&threaded), String::from_utf8_lossy(&inline), "{format:?} {max_held}");
            }
        }
    }

    /// The seed captures through a joined report as a live capture goes: flows end as
    /// frames come (closed ones 1 ms after their last packet, so batches of `max_held / 2`
    /// are joined while frames keep coming) with the report's evidence `base`, `early` asked
    /// for each batch joined before the end, and `last` added as the final evidence after
    /// the last frame (as `pipeline::process_live` does with `LiveEvidence::finish`'s).
    fn joined_live(
        thread: bool,
        max_held: usize,
        base: JoinEvidence,
        early: Option<crate::evidence::EvidenceSoFar>,
        last: Option<JoinEvidence>,
    ) -> String {
        use crate::capture::{FrameSource, OfflineReader};
        let mut flow = FlowConfig { features: true, ..FlowConfig::default() };
        flow.tcp_closed_timeout = Nanos(1_000_000);
        let o = ReportOptions {
            flows: Some(FlowsFormat::Json),
            follow: None,
            join: true,
            join_thread: thread,
            max_held_records: max_held,
            flow,
            evidence: base,
            ..opts()
        };
        let out = Shared::default();
        let mut report = FlowReport::new(o, Box::new(out.clone()), false).unwrap();
        if let Some(e) = early {
            report.set_early_evidence(Box::new(e));
        }
        let mut points = Points::default();
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/vm-all.pcapng");
        let mut r = OfflineReader::open(file, &mut points).unwrap();
        let mut spare = Vec::new();
        while let Some(f) = r.next_frame(&mut points, spare).unwrap() {
            report.frame(&f, &points);
            spare = f.data;
        }
        if let Some(e) = last {
            report.add_evidence(e);
        }
        assert_eq!(report.finish().unwrap(), 0);
        String::from_utf8(out.0.borrow().clone()).unwrap()
    }

    /// Live evidence of the seed capture: its conntrack entries (as the watcher gives them:
    /// no scope), an owner of the socket behind each rewritten entry's original tuple (the
    /// leg no interface shows) and of each client socket of the forwarders' front legs,
    /// plus owners and entries of connections the capture does not have; every point in
    /// the current namespace.
    fn seed_evidence() -> (Vec<crate::conntrack::CtEntry>, Vec<paths::SocketOwner>, std::collections::HashMap<u32, crate::netns::Netns>) {
        use crate::join::{Owner, Proto};
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/samples/vm-conntrack.txt")).unwrap();
        let (mut entries, errors) = crate::conntrack::text::parse_entries(&text);
        assert!(errors.is_empty() && !entries.is_empty());
        let owner = |local: std::net::SocketAddr, remote, comm: &str| paths::SocketOwner {
            netns: crate::netns::Netns::Current,
            proto: Proto::Tcp,
            local,
            remote,
            owner: Owner { pid: 4242, comm: comm.into() },
        };
        let mut owners: Vec<paths::SocketOwner> = entries
            .iter()
            .filter(|e| !e.rewrite().is_none())
            .map(|e| owner(e.orig.src_addr(), e.orig.dst_addr(), "forwarder"))
            .collect();
        for e in entries.iter().filter(|e| e.orig.dport == 49700) {
            owners.push(owner(e.orig.src_addr(), e.orig.dst_addr(), "client"));
        }
        // Not in the capture.
        let mut stranger = entries[0].clone();
        stranger.orig.sport = 1;
        stranger.reply.dport = 1;
        stranger.id = Some(7);
        owners.push(owner(stranger.orig.src_addr(), stranger.orig.dst_addr(), "stranger"));
        entries.push(stranger);
        let netns = (0..16).map(|p| (p, crate::netns::Netns::Current)).collect();
        (entries, owners, netns)
    }

    #[test]
    fn batches_joined_early_get_the_live_evidence_gathered_so_far() {
        let (entries, owners, netns) = seed_evidence();
        let all = || JoinEvidence {
            conntrack: entries.iter().map(|e| (e.clone(), None)).collect(),
            owners: owners.clone(),
            point_netns: netns.clone(),
        };
        let so_far = || Some(crate::evidence::EvidenceSoFar::holding(entries.clone(), owners.clone(), netns.clone()));
        let none = JoinEvidence::default;
        // The oracle: every batch joined with all of the evidence from the start.
        let known = |max_held| joined_live(false, max_held, all(), None, None);
        // Never flushed early: the evidence gathered so far is not asked, the output is the
        // one a live capture without it writes, and the one with all the evidence known.
        let whole = joined_live(false, 1 << 16, none(), so_far(), Some(all()));
        assert!(whole.contains("conntrack id=") && whole.contains(r#""comm":"forwarder""#) && whole.contains(r#""comm":"client""#));
        assert!(!whole.contains("stranger"));
        assert_eq!(whole, joined_live(false, 1 << 16, none(), None, Some(all())));
        assert_eq!(whole, known(1 << 16));
        // Batches of two records, joined while frames come: the final evidence comes after
        // the early ones, which got none of it (before the evidence gathered so far).
        let oracle = known(4);
        assert_ne!(joined_live(false, 4, none(), None, Some(all())), oracle);
        // With the evidence gathered so far (only what bears on each batch), every batch is
        // joined as with all of it (nothing missing, nothing twice), inline and on the join
        // thread alike.
        for thread in [false, true] {
            assert_eq!(joined_live(thread, 4, none(), so_far(), Some(all())), oracle, "thread {thread}");
        }
    }

    /// The observation ids of each path written (sorted, each path's sorted), numbering and
    /// order aside.
    fn path_members(out: &str) -> Vec<Vec<u64>> {
        let mut paths: Vec<Vec<u64>> = out
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let mut ids: Vec<u64> = v["legs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|g| g["observations"].as_array().unwrap().iter())
                    .flat_map(|o| o["ids"].as_array().cloned().unwrap_or_default())
                    .map(|x| x.as_u64().unwrap())
                    .collect();
                ids.sort_unstable();
                ids
            })
            .collect();
        paths.sort();
        paths
    }

    #[test]
    fn paths_ending_across_a_batch_boundary_are_joined_whole() {
        // Flows end as frames come (1 ms after they close); one batch of all of them is
        // the oracle: five paths of three observations or more (the seed's, and its
        // forwarders' other connections).
        let whole = path_members(&joined_live(false, 1 << 16, JoinEvidence::default(), None, None));
        assert_eq!(whole.iter().filter(|p| p.len() >= 3).count(), 5, "{whole:?}");
        // Batches of three records and more: the paths a batch's last records may still
        // join are held back for the next one, so none is cut at a boundary, inline and on
        // the join thread alike.
        for max_held in [8, 12, 32] {
            let inline = joined_live(false, max_held, JoinEvidence::default(), None, None);
            assert_eq!(path_members(&inline), whole, "{max_held}");
            assert_eq!(joined_live(true, max_held, JoinEvidence::default(), None, None), inline, "{max_held}");
        }
        // Batches of one or two records hold back too few to keep every path whole, but
        // every observation is still written exactly once.
        let mut all: Vec<u64> = whole.concat();
        all.sort_unstable();
        for max_held in [1, 2, 4, 6] {
            let mut written: Vec<u64> = path_members(&joined_live(false, max_held, JoinEvidence::default(), None, None)).concat();
            written.sort_unstable();
            assert_eq!(written, all, "{max_held}");
        }
    }

    #[test]
    fn a_closed_stdout_is_a_quiet_stop() {
        let o = ReportOptions { flows: Some(FlowsFormat::Json), follow: None, ..opts() };
        let report = FlowReport::new(o, Box::new(Closed), false).unwrap();
        assert!(matches!(report.finish(), Ok(0) | Err(ReportError::BrokenPipe)));
    }
}

/// The process's peak resident set size in KiB (Linux: `VmHWM` of /proc/self/status).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[derive(serde::Serialize)]
struct StatsJson<'a> {
    #[serde(flatten)]
    table: &'a FlowTableStats,
    records_flushed_early: u64,
    /// Most bytes of finished records held at once, and the bound.
    records_held_peak_bytes: u64,
    records_held_limit_bytes: u64,
    stream_files: u64,
    stream_file_reopens: u64,
    /// `--max-memory` and the flow cap in force (derived from it unless given).
    max_memory: u64,
    max_flows: u64,
    peak_rss_kib: Option<u64>,
    /// The joiner's counters (absent with `--no-join`).
    #[serde(skip_serializing_if = "Option::is_none")]
    join: Option<&'a crate::join::JoinStats>,
    /// Live conntrack and process attribution counters (live joined captures only).
    #[serde(skip_serializing_if = "Option::is_none")]
    evidence: Option<&'a crate::evidence::EvidenceStats>,
}

/// Sums the counters of joined batches.
fn add_join_stats(total: &mut crate::join::JoinStats, s: &crate::join::JoinStats) {
    let t = total;
    t.observations += s.observations;
    t.synthetic += s.synthetic;
    t.legs += s.legs;
    t.paths += s.paths;
    t.leg_pairs_scored += s.leg_pairs_scored;
    t.leg_links += s.leg_links;
    t.leg_conflicts += s.leg_conflicts;
    t.path_pairs_scored += s.path_pairs_scored;
    t.path_pairs_same_server += s.path_pairs_same_server;
    t.path_edges += s.path_edges;
    t.path_links += s.path_links;
    t.ambiguous_hops += s.ambiguous_hops;
    t.undecidable_hops += s.undecidable_hops;
    t.capped_candidates += s.capped_candidates;
    t.path_groups_exact += s.path_groups_exact;
    t.path_groups_greedy += s.path_groups_greedy;
    t.path_loops_cut += s.path_loops_cut;
    t.path_eliminated += s.path_eliminated;
    t.path_reversed += s.path_reversed;
    t.batch_cut_paths += s.batch_cut_paths;
}

fn report_stats(
    format: FlowsFormat,
    s: &FlowTableStats,
    o: &Outputs,
    streams: Option<&StreamFiles>,
    join: Option<&crate::join::JoinStats>,
    evidence: Option<&crate::evidence::EvidenceStats>,
) {
    let rss = peak_rss_kib();
    let flushed_early = o.flushed_early;
    match format {
        FlowsFormat::Json => {
            let stats = StatsJson {
                table: s,
                records_flushed_early: flushed_early,
                records_held_peak_bytes: o.held_bytes_peak as u64,
                records_held_limit_bytes: o.max_held_bytes as u64,
                stream_files: streams.map_or(0, |s| s.files),
                stream_file_reopens: streams.map_or(0, |s| s.reopens),
                max_memory: o.limits.max_memory as u64,
                max_flows: o.limits.max_flows as u64,
                peak_rss_kib: rss,
                join,
                evidence,
            };
            if let Ok(text) = serde_json::to_string(&serde_json::json!({ "stats": stats })) {
                eprintln!("{text}");
            }
        }
        FlowsFormat::Text => {
            eprintln!(
                "flowtrail: {} flows ({} evicted at the cap of {}, {} reused, {} idle), {} frames not in a flow; \
                 streams: {} bytes delivered, {} gaps ({} bytes), {} overlaps ({} conflicting bytes), \
                 {} cap skips, {} budget skips; {} side-table refusals, {} record batches printed early; \
                 peak memory: reassembly {} KiB, side tables {} KiB, process {} KiB (--max-memory {} MiB)",
                s.flows_created,
                s.flows_evicted,
                o.limits.max_flows,
                s.flows_reused,
                s.flows_idle,
                s.not_ip + s.fragments + s.other_proto,
                s.stream_delivered_bytes,
                s.stream_gaps,
                s.stream_gap_bytes,
                s.stream_overlaps,
                s.stream_conflicting_bytes,
                s.stream_cap_skips,
                s.stream_budget_skips,
                s.aux_refusals,
                flushed_early,
                s.reassembly_memory_peak / 1024,
                s.aux_memory_peak / 1024,
                rss.map_or_else(|| "?".to_string(), |r| r.to_string()),
                o.limits.max_memory >> 20,
            );
            if let Some(j) = join {
                let undecidable = if j.ambiguous_hops > 0 {
                    format!(" ({} of them undecidable from the packets)", j.undecidable_hops)
                } else {
                    String::new()
                };
                eprintln!(
                    "flowtrail: joined {} observations (+{} from conntrack) into {} legs and {} paths; \
                     {} forwarder hops joined, {} left ambiguous{undecidable}",
                    j.observations, j.synthetic, j.legs, j.paths, j.path_links, j.ambiguous_hops
                );
            }
            if let Some(e) = evidence {
                let forks = if e.fork_events {
                    format!(", {} forked children watched ({} sockets)", e.forks_watched, e.fork_sockets)
                } else {
                    String::new()
                };
                let starts = if e.connection_starts_dropped > 0 {
                    format!(", {} connection starts dropped by kernel", e.connection_starts_dropped)
                } else {
                    String::new()
                };
                // Any evidence thread (attribution, fork watch, conntrack) counts its rests.
                let rests = if e.realtime_rests > 0 {
                    format!(", evidence threads left real-time {} times (over half a core)", e.realtime_rests)
                } else {
                    String::new()
                };
                eprintln!(
                    "flowtrail: evidence: conntrack of {} namespaces ({} entries{}), {} sockets attributed, {} unknown, {} requests dropped{starts}{rests}{forks}",
                    e.conntrack_watched,
                    e.conntrack_entries,
                    e.conntrack_unavailable.iter().map(|u| format!("; unavailable: {u}")).collect::<String>(),
                    e.sockets_attributed,
                    e.sockets_unknown,
                    e.attribution_dropped
                );
            }
        }
    }
}
