//! Live capture: one thread per capture point (or two, see below), each inside its point's
//! network namespace, feeding batches of owned [`Frame`]s into one bounded channel.
//!
//! ## Contract
//!
//! * [`LiveCapture::start`] opens every handle before it returns: a missing interface, a
//!   missing namespace, a filter that does not compile for a point's link type or a
//!   permission problem fails the whole start (nothing is printed or written), with an error
//!   naming the point. Namespaces are checked before any thread starts.
//! * Each capture thread joins its point's namespace with `setns(2)` (only that thread moves),
//!   opens libpcap there, applies snaplen, buffer size, promiscuous mode, `-Q` direction,
//!   immediate mode and the filter compiled for the handle's link type (a thread that feeds
//!   socket attribution asks for [`crate::evidence::ATTRIBUTION_NICE`], and the first
//!   thread of each point opens a second, small immediate-mode handle for connection starts
//!   only, polled beside the first: [`TRIGGER_FILTER`]). The handle is then
//!   switched to non-blocking mode and the thread loops: `pcap_dispatch` (every frame of the
//!   ready ring block in one call, so the block goes back to the kernel at once; one batch
//!   on the channel) and, when nothing is ready, `poll(2)` on the
//!   handle's descriptor for at most [`POLL_MS`] ms, so it notices [`StopFlag`] promptly even
//!   when no packet ever arrives (a blocking TPACKET_V3 read would wait forever there).
//! * Stopping ([`StopFlag::stop`], e.g. SIGINT/SIGTERM): every thread keeps reading until its
//!   ring has nothing left that was captured before the stop. Without immediate mode the
//!   kernel hands over a partly filled TPACKET_V3 block only when the block timeout
//!   ([`block_timeout_ms`]: [`POLL_MS`], or tcpdump's 1 s for rings of few blocks) retires
//!   it, so a thread drains for up to two block timeouts (plus a margin) after the stop,
//!   unless the kernel's count shows that nothing is pending (then at once); in immediate
//!   mode (TPACKET_V2) until the ring is empty. Then it
//!   reads libpcap's statistics and ends; when every thread has ended the channel closes and
//!   the pipeline sees the end of input. No frame captured before the stop is lost.
//! * [`LiveCapture::finish`] (the pipeline is done: `-c` reached, output closed) ends the
//!   threads at once without draining.
//! * Direction: libpcap gives no per-packet direction on ordinary interfaces. When frames
//!   need one (several points, so lines carry `LABEL In`/`LABEL Out` like `tcpdump -i any`),
//!   a point gets two handles whose kernel filters add `inbound` / `outbound` (the Linux
//!   `SKF_AD_PKTTYPE` load, evaluated in the kernel), so each frame's direction is exact and
//!   no packet is copied twice. On `lo` every frame is `In`: libpcap drops the outgoing copy
//!   of a loopback packet, as `tcpdump -i any` does. `any` points use one handle and leave
//!   [`Frame::direction`] unknown: their LINUX_SLL2 header carries the interface index and
//!   the direction, which the link-layer printer shows after the label (`NS/any lo In IP
//!   ...`, as `tcpdump -i any` prints `lo In IP ...`), and which `-w` keeps in the frame.
//! * The channel is bounded ([`CHANNEL_BATCHES`] batches of at most one ring block's
//!   frames), and so are the bytes of every frame captured but not yet handed to the
//!   pipeline (in the channel or the reorder window: [`LiveOptions::max_queued_bytes`], the
//!   live share of `--max-memory`): when the pipeline falls behind, the threads block or
//!   pause, the kernel ring fills and the kernel counts drops, which [`PointStats`] reports;
//!   pauses are counted too ([`LiveCapture::pauses`]). Nothing is lost silently.
//! * Frame buffers come back from the pipeline (the [`FrameSource`] `spare` argument) through
//!   a shared [`BufferPool`], so steady-state capture allocates no per-frame memory.
//! * [`Reorder`] restores time order across handles: a frame goes out once every handle has
//!   a later one waiting, or at the latest after [`REORDER_WINDOW`] (longer than the longest
//!   a frame waits in a ring before its thread sees it: two block timeouts). Each handle's
//!   own frames keep their ring order.

use crate::capture::{CaptureError, Direction, Frame, FrameSource, Points, Timestamp};
use crate::netns::{self, Netns, PointSpec};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// LINKTYPE_LINUX_SLL2, what libpcap gives for `any`.
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

/// libpcap's largest snapshot length (`MAXIMUM_SNAPLEN`).
pub const MAXIMUM_SNAPLEN: u32 = 262_144;

/// The read timeout given to libpcap (TPACKET_V3's block retire timeout) and the longest a
/// capture thread sleeps in `poll(2)` before it looks at the stop flag again.
pub const POLL_MS: u16 = 100;

/// The block timeout for rings of fewer than [`MIN_FAST_BLOCKS`] blocks (tcpdump's).
pub const SLOW_BLOCK_MS: u16 = 1000;

/// Fewest ring blocks for the short [`POLL_MS`] block timeout. Every retire hands the
/// block to userland, and while userland holds it the kernel has that much less room: in a
/// ring of one or two blocks (a small `-B` with the default snapshot length, whose blocks
/// are 512 KiB) frequent retires cost drops, so such rings get tcpdump's 1 s timeout.
pub const MIN_FAST_BLOCKS: u64 = 4;

/// The TPACKET_V3 block timeout libpcap is given for these options, in ms.
pub fn block_timeout_ms(opts: &LiveOptions) -> u16 {
    if opts.immediate {
        return POLL_MS;
    }
    // libpcap: a block holds at least one frame of the snapshot length (plus headers),
    // in a power of two of pages; the buffer is -B or 2 MiB.
    let block = (u64::from(effective_snaplen(opts.snaplen)) + 256).next_power_of_two().max(4096);
    let buffer = opts.buffer_kib.map_or(2 << 20, |k| u64::from(k) * 1024);
    if buffer / block < MIN_FAST_BLOCKS { SLOW_BLOCK_MS } else { POLL_MS }
}

/// How many spare frame buffers a capture thread takes from the pool at once (and the
/// pipeline gives back at once).
pub const BATCH_FRAMES: usize = 512;

/// How often an idle capture thread checks whether it can send a watermark (and so how
/// long an idle handle can hold back frames of busy ones, at most).
pub const WATERMARK_EVERY: Duration = Duration::from_millis(10);

/// Capacity of the channel between capture threads and the pipeline, in batches.
pub const CHANNEL_BATCHES: usize = 1024;

/// Most recycled frame buffers kept in the [`BufferPool`].
pub const POOL_BUFFERS: usize = 8192;

/// Buffers larger than this are not recycled (a GSO frame's 64 KiB buffer would otherwise
/// be kept for a 60-byte ACK).
pub const POOL_MAX_CAPACITY: usize = 4096;

/// libpcap's snapshot length for a live handle given `-s` (0 or too large: the maximum).
pub fn effective_snaplen(s: u32) -> u32 {
    if s == 0 || s > MAXIMUM_SNAPLEN { MAXIMUM_SNAPLEN } else { s }
}

/// Settings applied to every live handle (tcpdump's flags of the same names).
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// `-s`: bytes to capture per packet (0 means libpcap's maximum, 262144).
    pub snaplen: u32,
    /// `-B`: kernel buffer in KiB.
    pub buffer_kib: Option<u32>,
    /// Not `-p`.
    pub promisc: bool,
    /// `-Q`: capture only this direction.
    pub direction: Option<Direction>,
    /// `--immediate-mode`, `-l`, or printing to a terminal.
    pub immediate: bool,
    /// Nanosecond timestamps.
    pub nano: bool,
    /// The pcap-filter expression, if any.
    pub filter: Option<String>,
    /// Give every frame its direction (two handles per non-`any` point).
    pub directions: bool,
    /// Most bytes of frames captured but not yet taken by the pipeline ([`FRAME_COST`] plus
    /// the captured bytes each); a capture thread pauses while the queue is above it.
    pub max_queued_bytes: usize,
    /// Connection starts to the process attribution of a joined `--flows` (see
    /// [`crate::evidence`]); the capture threads call it on every frame they read.
    pub tap: Option<crate::evidence::SocketTap>,
}

/// What one queued frame costs besides its bytes (the `Frame` and the buffer's allocator
/// header).
pub const FRAME_COST: usize = std::mem::size_of::<Frame>() + 16;

fn frame_cost(f: &Frame) -> usize {
    f.data.len() + FRAME_COST
}

/// Bytes of frames between the capture threads and the pipeline, shared by both sides.
#[derive(Debug, Default)]
struct Queued {
    bytes: std::sync::atomic::AtomicUsize,
    limit: usize,
    /// Times a capture thread found the queue full and paused.
    pauses: std::sync::atomic::AtomicU64,
    /// Frames the reorder window let out early ([`Reorder::released_early`]).
    reorder_early: std::sync::atomic::AtomicU64,
    /// Kernel drops per handle (by source index), sampled every [`DROPS_EVERY`] while
    /// capturing ([`LiveCapture::kernel_drops`]).
    drops: Mutex<Vec<(usize, u64)>>,
}

/// How often a capture thread samples libpcap's drop counter for [`LiveCapture::kernel_drops`].
pub const DROPS_EVERY: Duration = Duration::from_millis(500);

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            snaplen: MAXIMUM_SNAPLEN,
            buffer_kib: None,
            promisc: true,
            direction: None,
            immediate: false,
            nano: false,
            filter: None,
            directions: false,
            max_queued_bytes: crate::limits::Limits::default().live_frames,
            tap: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("{label}: {}", netns_message(source))]
    Netns { label: String, source: netns::NetnsError },
    #[error("{label}: {msg}")]
    Open { label: String, msg: String },
    #[error("{label}: {msg}")]
    Filter { label: String, msg: String },
    #[error("cannot start capture thread for {label}: {msg}")]
    Thread { label: String, msg: String },
}

/// Set to stop every capture thread (SIGINT/SIGTERM, `-c` reached, input closed).
#[derive(Clone, Debug, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn new() -> StopFlag {
        StopFlag::default()
    }
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    /// The flag itself, for signal handlers (`signal_hook::flag::register`).
    pub fn arc(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }
}

/// libpcap's counters for one point (summed over its handles), as tcpdump prints them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PointStats {
    /// Frames handed to the pipeline ("packets captured").
    pub captured: u64,
    /// `ps_recv`: "packets received by filter".
    pub received: u64,
    /// `ps_drop`: "packets dropped by kernel".
    pub dropped: u64,
    /// `ps_ifdrop`: dropped by the interface or driver.
    pub if_dropped: u64,
}

impl std::ops::AddAssign for PointStats {
    fn add_assign(&mut self, o: PointStats) {
        self.captured += o.captured;
        self.received += o.received;
        self.dropped += o.dropped;
        self.if_dropped += o.if_dropped;
    }
}

/// One opened live point.
#[derive(Clone, Debug)]
pub struct LivePoint {
    pub spec: PointSpec,
    pub label: String,
    pub linktype: u32,
    /// The snapshot length libpcap uses (what tcpdump's `listening on` line shows).
    pub snaplen: u32,
    /// Index of this point in the pipeline's `Points` registry.
    pub index: usize,
}

/// What a capture thread sends: frames of one handle in ring order, and/or a watermark.
pub struct Delivery {
    /// The handle's index (0.. number of handles).
    pub source: usize,
    pub frames: Vec<Frame>,
    /// The handle will deliver no frame stamped before this (its ring was found empty and
    /// every packet its kernel filter accepted had been read).
    pub watermark: Option<Timestamp>,
}

/// Frame buffers and batch vectors on their way back from the pipeline to the capture
/// threads.
#[derive(Debug, Default)]
pub struct BufferPool {
    buffers: Mutex<Vec<Vec<u8>>>,
    batches: Mutex<Vec<Vec<Frame>>>,
    /// Most spare buffers kept (at most [`POOL_BUFFERS`]; less for a small live share of
    /// `--max-memory`, see [`BufferPool::for_queue`]).
    max_buffers: usize,
}

/// Most spare batch vectors kept.
const POOL_BATCHES: usize = 64;

impl BufferPool {
    /// An empty batch vector, recycled when one is there.
    fn batch(&self) -> Vec<Frame> {
        self.batches.lock().ok().and_then(|mut v| v.pop()).unwrap_or_else(|| Vec::with_capacity(64))
    }

    /// Gives an emptied batch vector back.
    fn give_batch(&self, mut b: Vec<Frame>) {
        b.clear();
        if let Ok(mut v) = self.batches.lock()
            && v.len() < POOL_BATCHES
        {
            v.push(b);
        }
    }

    /// Moves up to `n` buffers into `into`.
    fn take(&self, into: &mut Vec<Vec<u8>>, n: usize) {
        if let Ok(mut v) = self.buffers.lock() {
            let k = v.len().saturating_sub(n);
            into.extend(v.drain(k..));
        }
    }

    /// A pool whose spare buffers (each at most [`POOL_MAX_CAPACITY`] bytes) hold no more
    /// than half of `queue_bytes`, the live share of `--max-memory` (and at most
    /// [`POOL_BUFFERS`], at least [`BATCH_FRAMES`]).
    pub fn for_queue(queue_bytes: usize) -> BufferPool {
        BufferPool {
            max_buffers: (queue_bytes / 2 / POOL_MAX_CAPACITY).clamp(BATCH_FRAMES, POOL_BUFFERS),
            ..BufferPool::default()
        }
    }

    /// Returns buffers (cleared) to the pool, keeping at most `max_buffers`.
    fn give(&self, from: &mut Vec<Vec<u8>>) {
        if let Ok(mut v) = self.buffers.lock() {
            let room = self.max_buffers.saturating_sub(v.len());
            let k = from.len().min(room);
            v.extend(from.drain(..k));
        }
        from.clear();
    }
}

struct HandleThread {
    point: usize,
    join: JoinHandle<(PointStats, Option<String>)>,
}

/// Every live point's threads and the receiving end of their frame channel.
pub struct LiveCapture {
    pub points: Vec<LivePoint>,
    /// The receiving end, until [`LiveCapture::source`] takes it.
    frames: Option<Receiver<Delivery>>,
    threads: Vec<HandleThread>,
    stop: StopFlag,
    /// Set by [`LiveCapture::finish`]: end without draining.
    abort: Arc<AtomicBool>,
    pool: Arc<BufferPool>,
    /// Read errors of handles that ended on their own, `LABEL: message`.
    errors: Vec<String>,
    /// The reorder window: [`REORDER_WINDOW`], or longer for slow block timeouts.
    window: Duration,
    queued: Arc<Queued>,
}

/// What a handle thread reports once it has opened (or failed to open) its handle.
type Ready = Result<u32, LiveError>;

impl LiveCapture {
    /// The capture points as the rest of the pipeline numbers them (label, link type,
    /// snaplen, precision), in `points` order.
    pub fn capture_points(&self, nano: bool) -> Points {
        let mut points = Points::default();
        for p in &self.points {
            points.add(crate::capture::Point { label: p.label.clone(), linktype: p.linktype, snaplen: p.snaplen, nano });
        }
        points
    }

    /// Opens every point. `first_index` is the `Points` index the first spec gets (the
    /// caller registers points in the same order). On error every thread already started is
    /// ended before returning.
    pub fn start(
        specs: &[PointSpec],
        opts: &LiveOptions,
        first_index: usize,
        stop: StopFlag,
    ) -> Result<LiveCapture, LiveError> {
        // Fail early and clearly on a missing namespace, before any thread starts.
        for s in specs {
            netns::open(&s.netns).map_err(|source| LiveError::Netns { label: s.label(), source })?;
        }
        let (tx, rx) = std::sync::mpsc::sync_channel::<Delivery>(CHANNEL_BATCHES);
        let abort = Arc::new(AtomicBool::new(false));
        let pool = Arc::new(BufferPool::for_queue(opts.max_queued_bytes));
        let mut cap =
            LiveCapture {
            points: Vec::new(),
            frames: Some(rx),
            threads: Vec::new(),
            stop,
            abort,
            pool,
            errors: Vec::new(),
            window: REORDER_WINDOW.max(Duration::from_millis(2 * u64::from(block_timeout_ms(opts)) + 100)),
            queued: Arc::new(Queued { limit: opts.max_queued_bytes.max(1), ..Queued::default() }),
        };
        let snaplen = effective_snaplen(opts.snaplen);
        for (i, spec) in specs.iter().enumerate() {
            let index = first_index + i;
            let label = spec.label();
            let stamp = opts.directions && spec.iface != "any";
            let dirs: Vec<Option<Direction>> = match (opts.direction, stamp) {
                (Some(d), _) => vec![Some(d)],
                // libpcap drops every outgoing frame on `lo` (it sees each packet again
                // incoming), so an outbound handle there would only ever be empty.
                (None, true) if spec.iface == "lo" => vec![Some(Direction::In)],
                (None, true) => vec![Some(Direction::In), Some(Direction::Out)],
                (None, false) => vec![None],
            };
            let mut linktype = 0;
            for (k, dir) in dirs.into_iter().enumerate() {
                let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Ready>(1);
                let h = HandleSetup {
                    spec: spec.clone(),
                    label: label.clone(),
                    opts: opts.clone(),
                    dir,
                    stamp_direction: stamp,
                    point: index,
                    source: cap.threads.len(),
                    watermarks: specs.len() > 1,
                    trigger: k == 0,
                };
                let ctl = Control {
                    stop: cap.stop.clone(),
                    abort: cap.abort.clone(),
                    pool: cap.pool.clone(),
                    queued: cap.queued.clone(),
                };
                let tx2 = tx.clone();
                let join = std::thread::Builder::new()
                    .name(format!("cap {label}"))
                    .spawn(move || h.run(ready_tx, tx2, ctl));
                let join = match join {
                    Ok(j) => j,
                    Err(e) => {
                        cap.finish();
                        return Err(LiveError::Thread { label, msg: e.to_string() });
                    }
                };
                cap.threads.push(HandleThread { point: index, join });
                match ready_rx.recv() {
                    Ok(Ok(lt)) => linktype = lt,
                    Ok(Err(e)) => {
                        cap.finish();
                        return Err(e);
                    }
                    Err(_) => {
                        cap.finish();
                        return Err(LiveError::Thread { label, msg: "exited".into() });
                    }
                }
            }
            cap.points.push(LivePoint { spec: spec.clone(), label, linktype, snaplen, index });
        }
        Ok(cap)
    }

    /// Ends the threads at once (no draining) and returns each point's statistics, in the
    /// order of `points`. Call it once the pipeline is done with the frames.
    pub fn finish(&mut self) -> Vec<PointStats> {
        self.abort.store(true, Ordering::Relaxed);
        self.stop.stop();
        // Senders blocked on a full channel fail once the receiver is gone.
        self.frames = None;
        let mut stats = vec![PointStats::default(); self.points.len()];
        for t in self.threads.drain(..) {
            let Ok((s, error)) = t.join.join() else { continue };
            let slot = self.points.iter().position(|p| p.index == t.point);
            if let Some(slot) = slot {
                stats[slot] += s;
            }
            if let Some(e) = error {
                let label = slot.and_then(|i| self.points.get(i)).map_or("?", |p| p.label.as_str());
                self.errors.push(format!("{label}: {e}"));
            }
        }
        stats
    }

    /// How often a capture thread paused because the frames waiting for the pipeline had
    /// reached [`LiveOptions::max_queued_bytes`] (the kernel counts what it dropped then).
    pub fn pauses(&self) -> u64 {
        self.queued.pauses.load(Ordering::Relaxed)
    }

    /// Frames let out of the reorder window before their time because it held
    /// [`REORDER_MAX_FRAMES`] (their order across points may be off).
    pub fn reordered_early(&self) -> u64 {
        self.queued.reorder_early.load(Ordering::Relaxed)
    }

    /// Kernel drops per point so far (in the order of `points`), as last sampled by the
    /// capture threads (every [`DROPS_EVERY`]); summed over a point's handles.
    pub fn kernel_drops(&self) -> Vec<u64> {
        let mut out = vec![0u64; self.points.len()];
        let d = self.queued.drops.lock().unwrap_or_else(|p| p.into_inner());
        for &(source, n) in d.iter() {
            let point = self.threads.get(source).map(|t| t.point);
            if let Some(slot) = point.and_then(|pt| self.points.iter().position(|p| p.index == pt)) {
                out[slot] += n;
            }
        }
        out
    }

    /// Errors of handles whose reads failed (an interface that disappeared), as
    /// `LABEL: libpcap's message`; known after [`LiveCapture::finish`].
    pub fn take_errors(&mut self) -> Vec<String> {
        std::mem::take(&mut self.errors)
    }

    /// The frames of every point as one [`FrameSource`] in time order (a reorder window
    /// when frames come from several handles). It ends once every capture thread has ended.
    pub fn source(&mut self) -> LiveSource {
        let several = self.threads.len() > 1;
        LiveSource {
            rx: self.frames.take(),
            batch: VecDeque::new(),
            reorder: Reorder::new(self.window, REORDER_MAX_FRAMES, self.threads.len()),
            several,
            ended: false,
            pool: self.pool.clone(),
            returned: Vec::new(),
            queued: self.queued.clone(),
        }
    }
}

impl Drop for LiveCapture {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.finish();
        }
    }
}

/// How long frames wait for earlier frames of other handles. Must exceed the longest a
/// frame can sit in a kernel ring before its thread reads it (two block timeouts).
pub const REORDER_WINDOW: Duration = Duration::from_millis(300);
/// Most frames held for reordering; beyond it the oldest goes out early.
pub const REORDER_MAX_FRAMES: usize = 64 * 1024;

/// Live frames for the pipeline's merger.
pub struct LiveSource {
    rx: Option<Receiver<Delivery>>,
    /// One handle: the batch being handed out.
    batch: VecDeque<Frame>,
    reorder: Reorder,
    several: bool,
    ended: bool,
    pool: Arc<BufferPool>,
    /// Spare buffers collected from the pipeline, returned to the pool in groups.
    returned: Vec<Vec<u8>>,
    queued: Arc<Queued>,
}

impl LiveSource {
    fn keep_spare(&mut self, spare: Vec<u8>) {
        let c = spare.capacity();
        if c > 0 && c <= POOL_MAX_CAPACITY {
            self.returned.push(spare);
            if self.returned.len() >= BATCH_FRAMES / 2 {
                self.pool.give(&mut self.returned);
            }
        }
    }

    /// A frame leaves the queue for the pipeline.
    fn out(&self, f: Frame) -> Frame {
        let cost = frame_cost(&f);
        let _ = self.queued.bytes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| Some(b.saturating_sub(cost)));
        f
    }

    fn take(&mut self, d: Delivery) {
        let Delivery { source, mut frames, watermark } = d;
        if self.several {
            for f in frames.drain(..) {
                self.reorder.push(source, f);
            }
            if let Some(m) = watermark {
                self.reorder.mark(source, m);
            }
            self.pool.give_batch(frames);
        } else {
            let old = std::mem::replace(&mut self.batch, VecDeque::from(frames));
            self.pool.give_batch(Vec::from(old));
        }
    }
}

impl FrameSource for LiveSource {
    fn next_frame(&mut self, _points: &mut Points, spare: Vec<u8>) -> Result<Option<Frame>, CaptureError> {
        self.keep_spare(spare);
        loop {
            if self.several {
                if let Some(f) = self.reorder.pop_ready() {
                    self.queued.reorder_early.store(self.reorder.released_early(), Ordering::Relaxed);
                    return Ok(Some(self.out(f)));
                }
            } else if let Some(f) = self.batch.pop_front() {
                return Ok(Some(self.out(f)));
            }
            let Some(rx) = self.rx.as_ref().filter(|_| !self.ended) else {
                return Ok(self.reorder.pop_any().map(|f| self.out(f)));
            };
            match rx.recv_timeout(Duration::from_millis(u64::from(POLL_MS))) {
                Ok(d) => {
                    self.take(d);
                    if self.several {
                        while let Some(d) = self.rx.as_ref().and_then(|rx| rx.try_recv().ok()) {
                            self.take(d);
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => self.reorder.advance(now()),
                Err(RecvTimeoutError::Disconnected) => {
                    self.ended = true;
                    self.rx = None;
                }
            }
        }
    }
}

/// tcpdump's end-of-capture statistics. One point: exactly tcpdump's three lines (plus the
/// interface-drop line when nonzero). Several: one line per point, then the totals in
/// tcpdump's form.
pub fn stats_report(labels: &[String], stats: &[PointStats], captured: &[u64]) -> String {
    use std::fmt::Write;
    let plural = |n: u64| if n == 1 { "" } else { "s" };
    let mut out = String::new();
    let mut total = PointStats::default();
    for (i, s) in stats.iter().enumerate() {
        let mut s = *s;
        s.captured = captured.get(i).copied().unwrap_or(0);
        if stats.len() > 1 {
            let _ = writeln!(
                out,
                "{}: {} packet{} captured, {} received by filter, {} dropped by kernel{}",
                crate::escape::text(labels.get(i).map_or("?", |l| l.as_str())),
                s.captured,
                plural(s.captured),
                s.received,
                s.dropped,
                if s.if_dropped > 0 { format!(", {} dropped by interface", s.if_dropped) } else { String::new() }
            );
        }
        total += s;
    }
    let _ = writeln!(out, "{} packet{} captured", total.captured, plural(total.captured));
    let _ = writeln!(out, "{} packet{} received by filter", total.received, plural(total.received));
    let _ = writeln!(out, "{} packet{} dropped by kernel", total.dropped, plural(total.dropped));
    if total.if_dropped > 0 {
        let _ = writeln!(out, "{} packet{} dropped by interface", total.if_dropped, plural(total.if_dropped));
    }
    out
}

/// `-Z USER`: drop root once every handle is open (supplementary groups, gid, then uid;
/// glibc applies them to every thread).
pub fn drop_privileges(user: &str) -> Result<(), String> {
    use nix::unistd::{setgid, setgroups, setuid, User};
    let u = User::from_name(user)
        .map_err(|e| format!("couldn't look up user {user}: {e}"))?
        .ok_or_else(|| format!("couldn't find user '{user}'"))?;
    setgroups(&[u.gid]).map_err(|e| format!("-Z {user}: setgroups: {e}"))?;
    setgid(u.gid).map_err(|e| format!("-Z {user}: setgid: {e}"))?;
    setuid(u.uid).map_err(|e| format!("-Z {user}: setuid: {e}"))?;
    Ok(())
}

struct HandleSetup {
    spec: PointSpec,
    label: String,
    opts: LiveOptions,
    /// Capture only this direction (and stamp it on frames when `stamp_direction`).
    dir: Option<Direction>,
    stamp_direction: bool,
    point: usize,
    /// Index of this handle among all handles ([`Delivery::source`]).
    source: usize,
    /// Several handles feed the reorderer: send watermarks when idle.
    watermarks: bool,
    /// The point's first handle: it opens the connection-starts handle when there is a
    /// tap (one per point).
    trigger: bool,
}

/// What a capture thread shares with the others.
struct Control {
    stop: StopFlag,
    abort: Arc<AtomicBool>,
    pool: Arc<BufferPool>,
    queued: Arc<Queued>,
}

impl HandleSetup {
    fn run(self, ready: SyncSender<Ready>, tx: SyncSender<Delivery>, ctl: Control) -> (PointStats, Option<String>) {
        let (mut cap, discard_before) = match self.open() {
            Ok(c) => c,
            Err(e) => {
                let _ = ready.send(Err(e));
                return (PointStats::default(), None);
            }
        };
        let mut error = None;
        let linktype = cap.get_datalink().0 as u32;
        // The tap reads connection starts from their own handle when there is one, else
        // from this handle's frames (late by up to a block timeout without immediate mode).
        // Opened before the start is reported: `-Z` drops privileges then, and traffic may
        // begin.
        let mut trigger = None;
        if let (true, Some(tp)) = (self.trigger, &self.opts.tap) {
            match self.open_trigger() {
                Ok(t) => {
                    tp.start_handle_opened();
                    trigger = Some(t);
                }
                Err(e) => eprintln!("flowtrail: {e}; process attribution sees connection starts late"),
            }
        }
        let _ = ready.send(Ok(linktype));
        drop(ready);
        let direction = if self.stamp_direction { self.dir.unwrap_or_default() } else { Direction::Unknown };
        let (point, nano) = (self.point, self.opts.nano);
        // After a stop, how long to keep reading an empty ring: until a partly filled
        // TPACKET_V3 block has certainly been retired (see the module docs).
        let drain = if self.opts.immediate {
            Duration::from_millis(5)
        } else {
            Duration::from_millis(2 * u64::from(block_timeout_ms(&self.opts)) + 30)
        };
        let mut stopped_at: Option<Instant> = None;
        let mut captured = 0u64;
        // Frames libpcap handed over (also those dropped as older than the filter), to
        // compare with the kernel's count for watermarks; and when the last one was sent.
        let mut seen = 0u64;
        let mut last_mark = Instant::now();
        let source = self.source;
        let mut spares: Vec<Vec<u8>> = Vec::with_capacity(BATCH_FRAMES);
        let mut paused = false;
        let tap = self.opts.tap.clone();
        if tap.is_some() {
            crate::priority::raise_priority(crate::evidence::ATTRIBUTION_NICE);
        }
        let mut tap_frames = if trigger.is_some() { None } else { tap.clone() };
        let mut udp_seen = std::collections::HashSet::new();
        let mut drops_at = Instant::now();
        loop {
            if ctl.abort.load(Ordering::Relaxed) {
                break;
            }
            if drops_at.elapsed() >= DROPS_EVERY {
                drops_at = Instant::now();
                if let Ok(st) = cap.stats() {
                    let mut d = ctl.queued.drops.lock().unwrap_or_else(|p| p.into_inner());
                    match d.iter_mut().find(|(s, _)| *s == source) {
                        Some(e) => e.1 = u64::from(st.dropped),
                        None => d.push((source, u64::from(st.dropped))),
                    }
                }
            }
            if stopped_at.is_none() && ctl.stop.is_stopped() {
                stopped_at = Some(Instant::now());
            }
            if let (Some(tr), Some(t)) = (&mut trigger, &tap) {
                // Every connection start waiting; a failing handle is given up for the
                // data frames.
                if tr.dispatch(None, |p| t.frame(&self.spec.netns, linktype, p.data, &mut udp_seen)).is_err() {
                    trigger = None;
                    tap_frames = tap.clone();
                }
            }
            if spares.len() < BATCH_FRAMES / 4 {
                ctl.pool.take(&mut spares, BATCH_FRAMES);
            }
            // The pipeline is behind by the whole memory share: leave the frames in the
            // kernel ring (it drops and counts what does not fit) until it catches up.
            if ctl.queued.bytes.load(Ordering::Relaxed) >= ctl.queued.limit {
                if !paused {
                    paused = true;
                    ctl.queued.pauses.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            paused = false;
            let mut batch: Vec<Frame> = ctl.pool.batch();
            let mut batch_bytes = 0usize;
            let r = cap.dispatch(None, |p| {
                seen += 1;
                let frac = p.header.ts.tv_usec;
                let nsec = if nano { frac } else { frac * 1000 };
                let ts = Timestamp { sec: p.header.ts.tv_sec, nsec: nsec.clamp(0, 999_999_999) as u64 };
                if discard_before.is_some_and(|t| ts < t) {
                    return;
                }
                if let Some(t) = &tap_frames {
                    t.frame(&self.spec.netns, linktype, p.data, &mut udp_seen);
                }
                let mut data = spares.pop().unwrap_or_default();
                data.clear();
                data.extend_from_slice(p.data);
                let frame = Frame { point, ts, linktype, origlen: p.header.len, data, direction };
                batch_bytes += frame_cost(&frame);
                batch.push(frame);
            });
            match r {
                Ok(n) if n > 0 => {
                    if batch.is_empty() {
                        ctl.pool.give_batch(batch);
                        continue;
                    }
                    captured += batch.len() as u64;
                    ctl.queued.bytes.fetch_add(batch_bytes, Ordering::Relaxed);
                    if tx.send(Delivery { source, frames: batch, watermark: None }).is_err() {
                        break;
                    }
                }
                Ok(_) => {
                    ctl.pool.give_batch(batch);
                    if self.watermarks && stopped_at.is_none() && last_mark.elapsed() >= WATERMARK_EVERY {
                        // Nothing ready in the ring. If the kernel accepted no more packets
                        // than libpcap handed over, none is waiting in a block not yet
                        // retired either: nothing stamped before now can still come.
                        let t = now();
                        let received = cap.stats().map(|s| s.received).ok();
                        if received == Some(seen as u32) {
                            let mark = sub(t, Duration::from_millis(1));
                            if tx.send(Delivery { source, frames: Vec::new(), watermark: Some(mark) }).is_err() {
                                break;
                            }
                        }
                        last_mark = Instant::now();
                    }
                    // Draining after a stop: done once the ring's time is up, or at once when
                    // the kernel accepted no more packets than were read (nothing pending).
                    if stopped_at.is_some() && cap.stats().map(|s| s.received).ok() == Some(seen as u32) {
                        break;
                    }
                    let wait = match stopped_at {
                        Some(t) if t.elapsed() >= drain => break,
                        Some(_) => 5u16,
                        None if self.watermarks => WATERMARK_EVERY.as_millis() as u16,
                        None => POLL_MS,
                    };
                    let fd = std::os::fd::AsFd::as_fd(&cap);
                    let tr = trigger.as_ref().map_or(fd, std::os::fd::AsFd::as_fd);
                    let mut fds = [fd, tr].map(|f| nix::poll::PollFd::new(f, nix::poll::PollFlags::POLLIN));
                    let n = if trigger.is_some() { 2 } else { 1 };
                    let _ = nix::poll::poll(&mut fds[..n], wait);
                }
                Err(e) => {
                    if !ctl.abort.load(Ordering::Relaxed) {
                        error = Some(match e {
                            pcap::Error::PcapError(m) => m,
                            e => e.to_string(),
                        });
                    }
                    break;
                }
            }
        }
        if let (Some(tr), Some(t)) = (&mut trigger, &tap)
            && let Ok(st) = tr.stats()
        {
            t.starts_dropped(u64::from(st.dropped));
        }
        let s = cap.stats().unwrap_or(pcap::Stat { received: 0, dropped: 0, if_dropped: 0 });
        let stats = PointStats {
            captured,
            received: u64::from(s.received),
            dropped: u64::from(s.dropped),
            if_dropped: u64::from(s.if_dropped),
        };
        (stats, error)
    }

    /// Joins the namespace and opens the handle (called on the capture thread).
    /// Returns the handle (non-blocking) and, when the filter was attached directly, the
    /// time before which frames in the ring predate it.
    fn open(&self) -> Result<(pcap::Capture<pcap::Active>, Option<Timestamp>), LiveError> {
        netns::enter(&self.spec.netns).map_err(|source| LiveError::Netns { label: self.label.clone(), source })?;
        let err = |e: pcap::Error| LiveError::Open { label: self.label.clone(), msg: open_message(&self.spec, e) };
        let o = &self.opts;
        let mut inactive = pcap::Capture::from_device(self.spec.iface.as_str())
            .map_err(err)?
            .snaplen(effective_snaplen(o.snaplen) as i32)
            .promisc(o.promisc)
            .immediate_mode(o.immediate)
            .timeout(i32::from(block_timeout_ms(o)))
            .precision(if o.nano { pcap::Precision::Nano } else { pcap::Precision::Micro });
        if let Some(kib) = o.buffer_kib {
            inactive = inactive.buffer_size(kib.saturating_mul(1024).min(i32::MAX as u32) as i32);
        }
        let mut cap = inactive.open().map_err(err)?;
        // tcpdump asks for LINUX_SLL2 on `any` (libpcap's default there is LINUX_SLL), so
        // the cooked header carries the interface index; before the filter is compiled.
        if self.spec.iface == "any" {
            cap.set_datalink(pcap::Linktype(LINKTYPE_LINUX_SLL2 as i32)).map_err(err)?;
        }
        let filter_error = |e: pcap::Error| LiveError::Filter {
            label: self.label.clone(),
            msg: match e {
                pcap::Error::PcapError(m) => m,
                e => e.to_string(),
            },
        };
        let mut discard_before = None;
        match self.stamp_direction.then_some(self.dir).flatten() {
            Some(d) => {
                // The direction test (`inbound`/`outbound`) is a Linux special load that only
                // the kernel can evaluate. pcap_setfilter would also run the new program in
                // userland over the first ring block after installing it, where the load
                // fails and the block's packets are rejected: the first packets would be
                // lost. So the program is attached to the socket directly, libpcap keeps no
                // userland filter, and frames that were in the ring before (unfiltered,
                // stamped before the attach returned) are dropped by timestamp.
                let dir = if d == Direction::In { "inbound" } else { "outbound" };
                let expr = match &o.filter {
                    Some(f) => format!("({f}) and {dir}"),
                    None => dir.to_string(),
                };
                let prog = cap.compile(&expr, true).map_err(filter_error)?;
                let code = kernel_program(&prog).ok_or_else(|| LiveError::Filter {
                    label: self.label.clone(),
                    msg: "cannot translate the compiled filter for the kernel".into(),
                })?;
                socket2::SockRef::from(&cap).attach_filter(&code).map_err(|e| LiveError::Filter {
                    label: self.label.clone(),
                    msg: format!("can't attach the filter: {}", crate::capture::os_message(&e)),
                })?;
                discard_before = Some(now());
            }
            None => {
                if let Some(d) = self.dir {
                    let pd = if d == Direction::In { pcap::Direction::In } else { pcap::Direction::Out };
                    cap.direction(pd).map_err(err)?;
                }
                if let Some(f) = &o.filter {
                    cap.filter(f, true).map_err(filter_error)?;
                }
            }
        }
        let cap = cap.setnonblock().map_err(err)?;
        Ok((cap, discard_before))
    }

    /// The point's connection-starts handle for process attribution (called on the capture
    /// thread, already in the point's namespace): TCP SYNs without ACK and UDP datagrams
    /// (the tap keeps the first of each tuple), the user's filter and `-Q` applied, in
    /// immediate mode so that each arrives within microseconds, and cut to
    /// [`TRIGGER_SNAPLEN`] bytes so that libpcap's ring of fixed-size frames holds thousands
    /// of them. The data handle then needs no immediate mode, whose ring would hold only 8
    /// to 32 frames of the snapshot length: a thread that waited a few milliseconds for a
    /// core lost frames under a storm of short connections.
    fn open_trigger(&self) -> Result<pcap::Capture<pcap::Active>, LiveError> {
        let label = format!("{} (connection starts)", self.label);
        let err = |e: pcap::Error| LiveError::Open { label: label.clone(), msg: open_message(&self.spec, e) };
        let o = &self.opts;
        let mut cap = pcap::Capture::from_device(self.spec.iface.as_str())
            .map_err(err)?
            .snaplen(TRIGGER_SNAPLEN as i32)
            .promisc(o.promisc)
            .immediate_mode(true)
            .timeout(i32::from(POLL_MS))
            .open()
            .map_err(err)?;
        if self.spec.iface == "any" {
            cap.set_datalink(pcap::Linktype(LINKTYPE_LINUX_SLL2 as i32)).map_err(err)?;
        }
        if let Some(d) = o.direction {
            cap.direction(if d == Direction::In { pcap::Direction::In } else { pcap::Direction::Out }).map_err(err)?;
        }
        let expr = match &o.filter {
            Some(f) => format!("({f}) and ({TRIGGER_FILTER})"),
            None => TRIGGER_FILTER.to_string(),
        };
        cap.filter(&expr, true).map_err(|e| LiveError::Filter { label: label.clone(), msg: e.to_string() })?;
        cap.setnonblock().map_err(err)
    }
}

/// What the connection-starts handle captures: TCP SYNs without ACK (IPv4; IPv6 with TCP
/// right after the fixed header) and UDP.
pub const TRIGGER_FILTER: &str =
    "(tcp[tcpflags] & (tcp-syn|tcp-ack)) == tcp-syn or (ip6 and ip6[6] == 6 and (ip6[53] & 0x12) == 0x02) or udp";

/// Bytes the connection-starts handle keeps of each frame: the link, IP and TCP or UDP
/// headers with options are all the tap decodes.
pub const TRIGGER_SNAPLEN: u32 = 256;

/// A libpcap program as the kernel takes it (SO_ATTACH_FILTER), with libpcap's own fix for
/// memory-mapped capture: a constant non-zero return becomes [`MAXIMUM_SNAPLEN`] so the
/// kernel never truncates (the ring's snapshot length does).
fn kernel_program(prog: &pcap::BpfProgram) -> Option<Vec<socket2::SockFilter>> {
    const BPF_RET_K: u16 = 0x06;
    prog.get_instructions()
        .iter()
        .map(|i| {
            // BpfInstruction's fields are private; its Display is "code jt jf k".
            let text = i.to_string();
            let mut it = text.split_whitespace();
            let code: u16 = it.next()?.parse().ok()?;
            let jt: u8 = it.next()?.parse().ok()?;
            let jf: u8 = it.next()?.parse().ok()?;
            let mut k: u32 = it.next()?.parse().ok()?;
            if code == BPF_RET_K && k != 0 {
                k = MAXIMUM_SNAPLEN;
            }
            Some(socket2::SockFilter::new(code, jt, jf, k))
        })
        .collect()
}

/// Interface index -> name in the namespaces of the `any` points, for the LINUX_SLL2
/// printer (tcpdump prints `if_indextoname()` of the header's index). Read once at start
/// in each namespace (glibc's `if_nameindex` asks the thread's own namespace over netlink).
/// An index that names different interfaces in two namespaces is left out (printed `?`):
/// a wrong name would be worse than none.
pub fn sll2_interface_names(points: &[LivePoint]) -> Vec<(u32, String)> {
    let mut seen: Vec<&Netns> = Vec::new();
    let mut names: Vec<(u32, String)> = Vec::new();
    let mut conflicts: Vec<u32> = Vec::new();
    for p in points.iter().filter(|p| p.linktype == LINKTYPE_LINUX_SLL2) {
        if seen.contains(&&p.spec.netns) {
            continue;
        }
        seen.push(&p.spec.netns);
        let list = netns::run_in(&p.spec.netns, || {
            nix::net::if_::if_nameindex()
                .map(|l| l.iter().map(|i| (i.index(), i.name().to_string_lossy().into_owned())).collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .unwrap_or_default();
        for (i, n) in list {
            match names.iter().find(|(j, _)| *j == i) {
                Some((_, m)) if *m != n => conflicts.push(i),
                Some(_) => {}
                None => names.push((i, n)),
            }
        }
    }
    names.retain(|(i, _)| !conflicts.contains(i));
    names
}

/// A namespace error without the noise (`(os error N)`, the namespace named twice).
fn netns_message(e: &netns::NetnsError) -> String {
    match e {
        netns::NetnsError::Missing { ns, path, source } if source.kind() == std::io::ErrorKind::PermissionDenied => {
            // The namespace exists; this user may not open it (another user's process).
            let caps = match ns {
                Netns::Pid(_) => "cap_net_raw,cap_net_admin,cap_sys_admin,cap_sys_ptrace",
                _ => "cap_net_raw,cap_net_admin,cap_sys_admin",
            };
            format!(
                "cannot open {ns} ({path}: {}): run as root, or give the binary the capabilities: {}",
                crate::capture::os_message(source),
                setcap_line(caps)
            )
        }
        netns::NetnsError::Enter { ns, source } => format!(
            "cannot enter {ns}: {} (entering a namespace needs CAP_SYS_ADMIN): run as root, or give the \
             binary the capabilities: {}",
            source.desc(),
            setcap_line("cap_net_raw,cap_net_admin,cap_sys_admin")
        ),
        netns::NetnsError::Missing { ns, path, source } => {
            let what = match ns {
                Netns::Named(n) => format!("no such network namespace {n}"),
                Netns::Pid(p) => format!("no such process {p}"),
                Netns::Current => "no network namespace".to_string(),
            };
            format!("{what} ({path}: {})", crate::capture::os_message(source))
        }
        e => e.to_string(),
    }
}

/// The command that gives this binary `caps` (file capabilities; then no root is needed):
/// `setcap CAPS+eip PATH`, PATH being this executable when it can be named.
pub fn setcap_line(caps: &str) -> String {
    let path = std::env::current_exe()
        .ok()
        .map(|p| p.display().to_string())
        .filter(|p| !p.is_empty() && !p.contains(char::is_whitespace))
        .unwrap_or_else(|| "$(command -v flowtrail)".to_string());
    format!("setcap {caps}+eip {}", crate::escape::text(&path))
}

/// libpcap's message, with a hint where the fix is known.
fn open_message(spec: &PointSpec, e: pcap::Error) -> String {
    let m = match e {
        pcap::Error::PcapError(m) => m,
        e => e.to_string(),
    };
    let where_ = match &spec.netns {
        Netns::Current => String::new(),
        ns => format!(" (in {ns})"),
    };
    if m.contains("Operation not permitted") || m.contains("permission") {
        format!(
            "{m}{where_}: run as root, or give the binary the capabilities: {}",
            setcap_line("cap_net_raw,cap_net_admin")
        )
    } else {
        format!("{m}{where_}")
    }
}

/// tcpdump's `-D` list for the current namespace and every named one: `N.LABEL
/// (description) [flags]`, numbered across namespaces; interfaces of named namespaces are
/// labelled `NETNS/IFACE`. With no named namespaces the output equals tcpdump's.
pub fn list_interfaces() -> Result<String, LiveError> {
    use std::fmt::Write;
    let mut namespaces = vec![Netns::Current];
    namespaces.extend(netns::named_namespaces().into_iter().map(Netns::Named));
    let mut out = String::new();
    let mut n = 0;
    for ns in namespaces {
        let devices = match netns::run_in(&ns, pcap::Device::list) {
            Ok(d) => d,
            // A namespace deleted between listing and entering: skip it.
            Err(netns::NetnsError::Missing { .. }) => continue,
            Err(source) => return Err(LiveError::Netns { label: ns.label_prefix(), source }),
        };
        let devices = devices.map_err(|e| LiveError::Open {
            label: ns.to_string(),
            msg: e.to_string(),
        })?;
        for d in devices {
            n += 1;
            // Interface names inside a namespace are its owner's choice (a container can
            // name one with escape sequences): never raw to the terminal.
            let label = format!("{}{}", ns.label_prefix(), d.name);
            let _ = write!(out, "{n}.{}", crate::escape::text(&label));
            if let Some(desc) = &d.desc {
                let _ = write!(out, " ({})", crate::escape::text(desc));
            }
            let f = &d.flags;
            let status = &f.connection_status;
            if !f.if_flags.is_empty() || *status != pcap::ConnectionStatus::Unknown {
                let names: Vec<&str> = [
                    (pcap::IfFlags::UP, "Up"),
                    (pcap::IfFlags::RUNNING, "Running"),
                    (pcap::IfFlags::LOOPBACK, "Loopback"),
                    (pcap::IfFlags::WIRELESS, "Wireless"),
                ]
                .iter()
                .filter(|(b, _)| f.if_flags.contains(*b))
                .map(|(_, s)| *s)
                .collect();
                out.push_str(" [");
                out.push_str(if names.is_empty() { "none" } else { "" });
                out.push_str(&names.join(", "));
                let wireless = f.if_flags.contains(pcap::IfFlags::WIRELESS);
                out.push_str(match (status, wireless) {
                    (pcap::ConnectionStatus::Unknown, true) => ", Association status unknown",
                    (pcap::ConnectionStatus::Connected, true) => ", Associated",
                    (pcap::ConnectionStatus::Disconnected, true) => ", Not associated",
                    (pcap::ConnectionStatus::Unknown, false) => ", Connection status unknown",
                    (pcap::ConnectionStatus::Connected, false) => ", Connected",
                    (pcap::ConnectionStatus::Disconnected, false) => ", Disconnected",
                    (pcap::ConnectionStatus::NotApplicable, _) => "",
                });
                out.push(']');
            }
            out.push('\n');
        }
    }
    Ok(out)
}

/// Restores time order across capture handles ("sources"). Each source's frames stay in
/// the order its ring gave them (as tcpdump prints one interface); across sources the
/// frame with the earliest timestamp goes first. That frame is released when
/// * every other source either has a frame waiting (each source's order being its ring's,
///   nothing earlier can come from it) or has promised, by a watermark
///   ([`Reorder::mark`]), that nothing stamped earlier will come, or
/// * it is older than `window` before the newest timestamp seen (or the clock, when idle:
///   [`Reorder::advance`]), so a silent source holds the others back for `window` at most,
/// * or more than `cap` frames are held (the oldest goes out early).
///
/// Per-source FIFO queues make push O(1) and release O(sources); frames are never moved
/// around a heap.
pub struct Reorder {
    sources: Vec<SourceQueue>,
    window: Duration,
    newest: Timestamp,
    /// Bound on frames held; beyond it the oldest is released early.
    cap: usize,
    held: usize,
    /// Frames released only because more than `cap` were held (their order across sources
    /// may be off).
    early: u64,
}

#[derive(Default)]
struct SourceQueue {
    frames: VecDeque<Frame>,
    /// Nothing stamped before this will come from the source.
    mark: Timestamp,
}

impl Reorder {
    /// `sources`: how many sources feed it (more appear on demand).
    pub fn new(window: Duration, cap: usize, sources: usize) -> Reorder {
        Reorder {
            sources: (0..sources).map(|_| SourceQueue::default()).collect(),
            window,
            newest: Timestamp::default(),
            cap: cap.max(1),
            held: 0,
            early: 0,
        }
    }

    fn source(&mut self, i: usize) -> &mut SourceQueue {
        if self.sources.len() <= i {
            self.sources.resize_with(i + 1, SourceQueue::default);
        }
        &mut self.sources[i]
    }

    pub fn push(&mut self, source: usize, f: Frame) {
        if f.ts > self.newest {
            self.newest = f.ts;
        }
        self.source(source).frames.push_back(f);
        self.held += 1;
    }

    /// Source `source` will send nothing stamped before `ts`.
    pub fn mark(&mut self, source: usize, ts: Timestamp) {
        let q = self.source(source);
        if ts > q.mark {
            q.mark = ts;
        }
    }

    /// The source whose head is earliest (ties: the lower index), with its timestamp, and
    /// the earliest watermark among sources with nothing waiting.
    fn earliest(&self) -> (Option<(usize, Timestamp)>, Option<Timestamp>) {
        let mut best: Option<(usize, Timestamp)> = None;
        let mut idle_mark: Option<Timestamp> = None;
        for (i, q) in self.sources.iter().enumerate() {
            match q.frames.front() {
                Some(f) => {
                    if best.is_none_or(|(_, t)| f.ts < t) {
                        best = Some((i, f.ts));
                    }
                }
                None => {
                    if idle_mark.is_none_or(|m| q.mark < m) {
                        idle_mark = Some(q.mark);
                    }
                }
            }
        }
        (best, idle_mark)
    }

    fn take(&mut self, i: usize) -> Option<Frame> {
        let f = self.sources.get_mut(i)?.frames.pop_front()?;
        self.held -= 1;
        Some(f)
    }

    /// Next frame that may go out (see the type's rules), if any.
    pub fn pop_ready(&mut self) -> Option<Frame> {
        let (best, idle_mark) = self.earliest();
        let (i, ts) = best?;
        if idle_mark.is_none_or(|m| ts <= m) || ts <= sub(self.newest, self.window) {
            return self.take(i);
        }
        if self.held > self.cap {
            self.early += 1;
            return self.take(i);
        }
        None
    }

    /// Frames released early because the cap was reached.
    pub fn released_early(&self) -> u64 {
        self.early
    }

    /// Releases the earliest frame regardless of the rules (input ended).
    pub fn pop_any(&mut self) -> Option<Frame> {
        let (best, _) = self.earliest();
        self.take(best?.0)
    }

    /// Treats capture time as having advanced to `now` (no frames for a while): frames older
    /// than `now - window` become ready.
    pub fn advance(&mut self, now: Timestamp) {
        if now > self.newest {
            self.newest = now;
        }
    }

    pub fn len(&self) -> usize {
        self.held
    }

    pub fn is_empty(&self) -> bool {
        self.held == 0
    }
}

fn sub(t: Timestamp, d: Duration) -> Timestamp {
    let total = i128::from(t.sec) * 1_000_000_000 + i128::from(t.nsec) - d.as_nanos() as i128;
    Timestamp { sec: total.div_euclid(1_000_000_000) as i64, nsec: total.rem_euclid(1_000_000_000) as u64 }
}

/// Wall-clock now as a capture timestamp.
pub fn now() -> Timestamp {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp { sec: d.as_secs() as i64, nsec: u64::from(d.subsec_nanos()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The connection-start filter, run by libpcap over the bundled samples (IPv4 and IPv6
    /// TCP, UDP), passes every SYN without ACK and every UDP datagram, cut to
    /// [`TRIGGER_SNAPLEN`] bytes that still decode, and nothing else but later fragments of
    /// UDP datagrams (which the tap skips).
    #[test]
    fn trigger_filter_passes_connection_starts_and_udp_only() {
        use crate::decode::{decode, tcp_flags, Transport};
        let start = |linktype: u32, data: &[u8]| match decode(linktype, data).transport {
            Transport::Tcp(t) => t.has(tcp_flags::SYN) && !t.has(tcp_flags::ACK),
            Transport::Udp(_) => true,
            _ => false,
        };
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
        let mut syns = 0;
        for name in ["host-lo.pcap", "tcp6.pcap", "udp.pcap", "udp6.pcap"] {
            let path = dir.join(name);
            let mut all = pcap::Capture::from_file(&path).unwrap();
            let linktype = all.get_datalink().0 as u32;
            let mut want = 0;
            while let Ok(p) = all.next_packet() {
                want += usize::from(start(linktype, p.data));
            }
            let mut cut = pcap::Capture::from_file(&path).unwrap();
            cut.filter(TRIGGER_FILTER, true).unwrap();
            let mut got = 0;
            while let Ok(p) = cut.next_packet() {
                let data = &p.data[..p.data.len().min(TRIGGER_SNAPLEN as usize)];
                if start(linktype, data) {
                    got += 1;
                } else {
                    let t = decode(linktype, data).transport;
                    assert!(matches!(t, Transport::Other { proto: 17 }), "{name}: a frame that starts nothing passed");
                }
            }
            assert_eq!(got, want, "{name}");
            assert!(want > 0, "{name}: no connection starts to test with");
            if name.starts_with("host") || name.starts_with("tcp") {
                syns += want;
            }
        }
        assert!(syns >= 2, "both IPv4 and IPv6 SYNs");
    }

    fn frame(point: usize, sec: i64, nsec: u32) -> Frame {
        Frame {
            point,
            ts: Timestamp { sec, nsec: u64::from(nsec) },
            linktype: 1,
            origlen: 0,
            data: vec![],
            direction: Direction::Unknown,
        }
    }

    #[test]
    fn reorder_releases_in_time_order_after_the_window() {
        let mut r = Reorder::new(Duration::from_millis(100), 1000, 3);
        r.push(0, frame(0, 10, 50_000_000));
        r.push(1, frame(1, 10, 10_000_000));
        assert!(r.pop_ready().is_none(), "both still inside the window, source 2 silent");
        r.push(0, frame(0, 10, 200_000_000));
        let a = r.pop_ready().unwrap();
        let b = r.pop_ready().unwrap();
        assert_eq!((a.point, b.point), (1, 0));
        assert!(r.pop_ready().is_none());
        r.advance(Timestamp { sec: 11, nsec: 0 });
        assert_eq!(r.pop_ready().unwrap().ts, Timestamp { sec: 10, nsec: 200_000_000 });
    }

    #[test]
    fn reorder_releases_at_once_when_every_source_has_a_frame_or_a_watermark() {
        let mut r = Reorder::new(Duration::from_secs(10), 1000, 3);
        r.push(0, frame(0, 10, 50));
        r.mark(2, Timestamp { sec: 10, nsec: 60 });
        assert!(r.pop_ready().is_none(), "source 1 may still send something earlier");
        r.push(1, frame(1, 10, 20));
        r.push(1, frame(1, 10, 90));
        assert_eq!(r.pop_ready().unwrap().ts.nsec, 20);
        assert_eq!(r.pop_ready().unwrap().ts.nsec, 50);
        assert!(r.pop_ready().is_none(), "source 0 is empty again, without a watermark");
        r.mark(0, Timestamp { sec: 10, nsec: 100 });
        assert!(r.pop_ready().is_none(), "source 2's watermark (60) is before 90");
        r.mark(2, Timestamp { sec: 10, nsec: 95 });
        assert_eq!(r.pop_ready().unwrap().ts.nsec, 90);
        assert!(r.is_empty());
    }

    #[test]
    fn reorder_keeps_each_sources_own_order() {
        let mut r = Reorder::new(Duration::ZERO, 1000, 2);
        r.push(0, frame(0, 10, 30));
        r.push(0, frame(0, 10, 20)); // a ring's small inversion stays as the ring gave it
        r.push(1, frame(1, 10, 25));
        let order: Vec<u64> = std::iter::from_fn(|| r.pop_ready()).map(|f| f.ts.nsec).collect();
        assert_eq!(order, vec![25, 30, 20]);
    }

    #[test]
    fn reorder_cap_forces_release() {
        let mut r = Reorder::new(Duration::from_secs(10), 2, 2);
        for i in 0..3 {
            r.push(0, frame(0, 5, i));
        }
        assert_eq!(r.pop_ready().unwrap().ts.nsec, 0);
        assert!(r.pop_ready().is_none());
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn timestamp_subtraction_borrows() {
        assert_eq!(sub(Timestamp { sec: 10, nsec: 50 }, Duration::from_nanos(100)), Timestamp { sec: 9, nsec: 999_999_950 });
    }

    #[test]
    fn interface_list_matches_tcpdump_in_this_namespace() {
        // Only comparable when no named namespaces exist and tcpdump is installed.
        if !netns::named_namespaces().is_empty() {
            return;
        }
        let Ok(out) = std::process::Command::new("tcpdump").arg("-D").output() else { return };
        if !out.status.success() {
            return;
        }
        assert_eq!(list_interfaces().unwrap(), String::from_utf8_lossy(&out.stdout));
    }

    #[test]
    fn missing_interface_fails_before_capture() {
        let spec = netns::parse_point("ftnosuch0").unwrap();
        let r = LiveCapture::start(&[spec], &LiveOptions::default(), 0, StopFlag::new());
        let e = r.err().expect("must fail");
        assert!(e.to_string().contains("ftnosuch0"), "{e}");
    }
}
