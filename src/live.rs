//! Live capture: one thread per capture point (or two, see below), each inside its point's
//! network namespace, feeding owned [`Frame`]s into one bounded channel.
//!
//! ## Contract
//!
//! * [`LiveCapture::start`] opens every handle before it returns: a missing interface, a
//!   missing namespace or a permission problem fails the whole start (nothing is captured),
//!   with an error naming the point.
//! * Each capture thread joins its point's namespace with `setns(2)` (only that thread moves),
//!   opens libpcap there, applies snaplen, buffer size, promiscuous mode, `-Q` direction,
//!   immediate mode and the filter compiled for the handle's link type, and then loops on
//!   `pcap_next_ex` with a short timeout so it notices [`StopFlag`] promptly.
//! * Direction: libpcap gives no per-packet direction on ordinary interfaces. When frames
//!   need one (several points, so lines carry `LABEL In`/`LABEL Out` like `tcpdump -i any`),
//!   a point gets two handles whose kernel filters add `inbound` / `outbound` (the Linux
//!   `SKF_AD_PKTTYPE` load, evaluated in the kernel), so each frame's direction is exact and
//!   no packet is copied twice. `any` points carry the direction in their LINUX_SLL2 header
//!   and use one handle.
//! * The channel is bounded: when the pipeline falls behind, the threads block, the kernel
//!   ring fills and the kernel counts drops, which [`PointStats`] reports. Nothing is lost
//!   silently.
//! * [`Reorder`] restores time order across points with a small window.

use crate::capture::{CaptureError, Direction, Frame, FrameSource, Points, Timestamp};
use crate::netns::{self, Netns, PointSpec};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// LINKTYPE_LINUX_SLL2, what libpcap gives for `any`.
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

/// How long a capture thread waits in libpcap before it looks at the stop flag again.
const POLL_MS: i32 = 100;

/// Capacity of the frame channel between capture threads and the pipeline.
pub const CHANNEL_FRAMES: usize = 16 * 1024;

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
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            snaplen: 262_144,
            buffer_kib: None,
            promisc: true,
            direction: None,
            immediate: false,
            nano: false,
            filter: None,
            directions: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
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
    pub snaplen: u32,
    /// Index of this point in the pipeline's `Points` registry.
    pub index: usize,
}

struct HandleThread {
    point: usize,
    join: JoinHandle<PointStats>,
}

/// Every live point's threads and the receiving end of their frame channel.
pub struct LiveCapture {
    pub points: Vec<LivePoint>,
    /// The receiving end, until [`LiveCapture::source`] takes it.
    pub frames: Option<Receiver<Frame>>,
    threads: Vec<HandleThread>,
    stop: StopFlag,
}

/// What a handle thread reports once it has opened (or failed to open) its handle.
type Ready = Result<(u32, u32), LiveError>;

impl LiveCapture {
    /// Opens every point. `first_index` is the `Points` index the first spec gets (the
    /// caller registers points in the same order). On error every thread already started is
    /// stopped before returning.
    pub fn start(
        specs: &[PointSpec],
        opts: &LiveOptions,
        first_index: usize,
        stop: StopFlag,
    ) -> Result<LiveCapture, LiveError> {
        // Fail early and clearly on a missing namespace, before any thread starts.
        for s in specs {
            netns::open(&s.netns)?;
        }
        let (tx, rx) = std::sync::mpsc::sync_channel::<Frame>(CHANNEL_FRAMES);
        let mut threads = Vec::new();
        let mut points = Vec::new();
        let mut failure = None;
        'points: for (i, spec) in specs.iter().enumerate() {
            let index = first_index + i;
            let label = spec.label();
            let dirs: Vec<Option<Direction>> = match (opts.direction, opts.directions && spec.iface != "any") {
                (Some(d), _) => vec![Some(d)],
                (None, true) => vec![Some(Direction::In), Some(Direction::Out)],
                (None, false) => vec![None],
            };
            let mut opened: Option<(u32, u32)> = None;
            for dir in dirs {
                let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Ready>(1);
                let h = HandleSetup {
                    spec: spec.clone(),
                    label: label.clone(),
                    opts: opts.clone(),
                    dir,
                    stamp_direction: opts.directions && spec.iface != "any",
                    point: index,
                };
                let (tx2, stop2) = (tx.clone(), stop.clone());
                let join = std::thread::Builder::new()
                    .name(format!("cap {label}"))
                    .spawn(move || h.run(ready_tx, tx2, stop2));
                let join = match join {
                    Ok(j) => j,
                    Err(e) => {
                        failure = Some(LiveError::Thread { label: label.clone(), msg: e.to_string() });
                        break 'points;
                    }
                };
                threads.push(HandleThread { point: index, join });
                match ready_rx.recv() {
                    Ok(Ok(lt)) => opened = Some(lt),
                    Ok(Err(e)) => {
                        failure = Some(e);
                        break 'points;
                    }
                    Err(_) => {
                        failure = Some(LiveError::Thread { label: label.clone(), msg: "exited".into() });
                        break 'points;
                    }
                }
            }
            let (linktype, snaplen) = opened.unwrap_or((0, opts.snaplen));
            points.push(LivePoint { spec: spec.clone(), label, linktype, snaplen, index });
        }
        drop(tx);
        let cap = LiveCapture { points, frames: Some(rx), threads, stop };
        if let Some(e) = failure {
            cap.stop.stop();
            let _ = cap.finish();
            return Err(e);
        }
        Ok(cap)
    }

    /// Stops the threads (if not already stopped) and returns each point's statistics, in
    /// the order of `points`. Frames still in the channel should be drained before calling.
    pub fn finish(self) -> Vec<PointStats> {
        self.stop.stop();
        // Unblock senders stuck on a full channel.
        let LiveCapture { points, frames, threads, .. } = self;
        let drain = std::thread::spawn(move || {
            if let Some(frames) = frames {
                while frames.recv().is_ok() {}
            }
        });
        let mut stats = vec![PointStats::default(); points.len()];
        for t in threads {
            if let Ok(s) = t.join.join() {
                if let Some(slot) = points.iter().position(|p| p.index == t.point) {
                    stats[slot] += s;
                }
            }
        }
        let _ = drain.join();
        stats
    }
}

impl LiveCapture {
    /// The frames of every point as one [`FrameSource`] in time order (a reorder window
    /// when there are several points). It ends once every capture thread has stopped.
    pub fn source(&mut self) -> LiveSource {
        let several = self.points.len() > 1;
        LiveSource {
            rx: self.frames.take(),
            reorder: Reorder::new(if several { REORDER_WINDOW } else { Duration::ZERO }, REORDER_MAX_FRAMES),
            several,
            ended: false,
        }
    }
}

/// How long frames wait for earlier frames of other points.
pub const REORDER_WINDOW: Duration = Duration::from_millis(250);
/// Most frames held for reordering; beyond it the oldest goes out early.
pub const REORDER_MAX_FRAMES: usize = 64 * 1024;

/// Live frames for the pipeline's merger.
pub struct LiveSource {
    rx: Option<Receiver<Frame>>,
    reorder: Reorder,
    several: bool,
    ended: bool,
}

impl FrameSource for LiveSource {
    fn next_frame(&mut self, _points: &mut Points, _spare: Vec<u8>) -> Result<Option<Frame>, CaptureError> {
        loop {
            if let Some(f) = self.reorder.pop_ready() {
                return Ok(Some(f));
            }
            let Some(rx) = self.rx.as_ref().filter(|_| !self.ended) else {
                return Ok(self.reorder.pop_any());
            };
            match rx.recv_timeout(Duration::from_millis(POLL_MS as u64)) {
                Ok(f) if !self.several => return Ok(Some(f)),
                Ok(f) => {
                    self.reorder.push(f);
                    while let Ok(f) = rx.try_recv() {
                        self.reorder.push(f);
                    }
                }
                Err(RecvTimeoutError::Timeout) => self.reorder.advance(now()),
                Err(RecvTimeoutError::Disconnected) => self.ended = true,
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
                labels.get(i).map_or("?", |l| l.as_str()),
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
}

impl HandleSetup {
    fn run(self, ready: SyncSender<Ready>, tx: SyncSender<Frame>, stop: StopFlag) -> PointStats {
        let mut cap = match self.open() {
            Ok(c) => c,
            Err(e) => {
                let _ = ready.send(Err(e));
                return PointStats::default();
            }
        };
        let linktype = cap.get_datalink().0 as u32;
        let _ = ready.send(Ok((linktype, self.opts.snaplen)));
        let direction = if self.stamp_direction { self.dir.unwrap_or_default() } else { Direction::Unknown };
        let mut captured = 0u64;
        let nano = self.opts.nano;
        while !stop.is_stopped() {
            match cap.next_packet() {
                Ok(p) => {
                    let frac = p.header.ts.tv_usec as i64;
                    let nsec = if nano { frac } else { frac * 1000 };
                    let frame = Frame {
                        point: self.point,
                        ts: Timestamp { sec: p.header.ts.tv_sec as i64, nsec: nsec.clamp(0, 999_999_999) as u64 },
                        linktype,
                        origlen: p.header.len,
                        data: p.data.to_vec(),
                        direction,
                    };
                    captured += 1;
                    if tx.send(frame).is_err() {
                        break;
                    }
                }
                Err(pcap::Error::TimeoutExpired) => {}
                Err(_) => break,
            }
        }
        let s = cap.stats().unwrap_or(pcap::Stat { received: 0, dropped: 0, if_dropped: 0 });
        PointStats {
            captured,
            received: u64::from(s.received),
            dropped: u64::from(s.dropped),
            if_dropped: u64::from(s.if_dropped),
        }
    }

    /// Joins the namespace and opens the handle (called on the capture thread).
    fn open(&self) -> Result<pcap::Capture<pcap::Active>, LiveError> {
        netns::enter(&self.spec.netns)?;
        let err = |e: pcap::Error| LiveError::Open { label: self.label.clone(), msg: open_message(&self.spec, e) };
        let o = &self.opts;
        let mut inactive = pcap::Capture::from_device(self.spec.iface.as_str())
            .map_err(err)?
            .snaplen(if o.snaplen == 0 { 262_144 } else { o.snaplen.min(262_144) } as i32)
            .promisc(o.promisc)
            .immediate_mode(o.immediate)
            .timeout(POLL_MS)
            .precision(if o.nano { pcap::Precision::Nano } else { pcap::Precision::Micro });
        if let Some(kib) = o.buffer_kib {
            inactive = inactive.buffer_size(kib.saturating_mul(1024).min(i32::MAX as u32) as i32);
        }
        let mut cap = inactive.open().map_err(err)?;
        let expr = match (&o.filter, self.stamp_direction.then_some(self.dir).flatten()) {
            (f, Some(d)) => {
                let dir = if d == Direction::In { "inbound" } else { "outbound" };
                Some(match f {
                    Some(f) => format!("({f}) and {dir}"),
                    None => dir.to_string(),
                })
            }
            (f, None) => {
                if let Some(d) = self.dir {
                    let pd = if d == Direction::In { pcap::Direction::In } else { pcap::Direction::Out };
                    cap.direction(pd).map_err(err)?;
                }
                f.clone()
            }
        };
        if let Some(expr) = expr {
            cap.filter(&expr, true).map_err(|e| LiveError::Filter {
                label: self.label.clone(),
                msg: match e {
                    pcap::Error::PcapError(m) => m,
                    e => e.to_string(),
                },
            })?;
        }
        Ok(cap)
    }
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
            "{m}{where_}: run as root, or give the binary the capabilities: \
             setcap cap_net_raw,cap_net_admin+eip $(command -v flowtrail)"
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
        let devices = netns::run_in(&ns, pcap::Device::list)?.map_err(|e| LiveError::Open {
            label: ns.to_string(),
            msg: e.to_string(),
        })?;
        for d in devices {
            n += 1;
            let _ = write!(out, "{n}.{}{}", ns.label_prefix(), d.name);
            if let Some(desc) = &d.desc {
                let _ = write!(out, " ({desc})");
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

/// Restores time order across points: frames wait up to `window` (measured in capture
/// time against the newest frame seen) before they are released in timestamp order.
/// Ties keep arrival order.
pub struct Reorder {
    heap: BinaryHeap<Reverse<(Timestamp, u64, FrameSlot)>>,
    window: Duration,
    newest: Timestamp,
    seq: u64,
    /// Bound on frames held; beyond it the oldest is released early.
    cap: usize,
}

/// A frame in the reorder heap, ordered only by the key next to it.
struct FrameSlot(Frame);

impl PartialEq for FrameSlot {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for FrameSlot {}
impl PartialOrd for FrameSlot {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for FrameSlot {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl Reorder {
    pub fn new(window: Duration, cap: usize) -> Reorder {
        Reorder { heap: BinaryHeap::new(), window, newest: Timestamp::default(), seq: 0, cap: cap.max(1) }
    }

    pub fn push(&mut self, f: Frame) {
        if f.ts > self.newest {
            self.newest = f.ts;
        }
        self.seq += 1;
        self.heap.push(Reverse((f.ts, self.seq, FrameSlot(f))));
    }

    /// Next frame that is old enough (or forced out by the cap), if any.
    pub fn pop_ready(&mut self) -> Option<Frame> {
        let Reverse((ts, _, _)) = self.heap.peek()?;
        let w = self.window;
        let limit = sub(self.newest, w);
        if *ts <= limit || self.heap.len() > self.cap {
            return self.heap.pop().map(|Reverse((_, _, FrameSlot(f)))| f);
        }
        None
    }

    /// Releases the oldest frame regardless of the window (input ended or idle).
    pub fn pop_any(&mut self) -> Option<Frame> {
        self.heap.pop().map(|Reverse((_, _, FrameSlot(f)))| f)
    }

    /// Treats capture time as having advanced to `now` (no frames for a while): frames older
    /// than `now - window` become ready.
    pub fn advance(&mut self, now: Timestamp) {
        if now > self.newest {
            self.newest = now;
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
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
        let mut r = Reorder::new(Duration::from_millis(100), 1000);
        r.push(frame(0, 10, 50_000_000));
        r.push(frame(1, 10, 10_000_000));
        assert!(r.pop_ready().is_none(), "both still inside the window");
        r.push(frame(0, 10, 200_000_000));
        let a = r.pop_ready().unwrap();
        let b = r.pop_ready().unwrap();
        assert_eq!((a.point, b.point), (1, 0));
        assert!(r.pop_ready().is_none());
        r.advance(Timestamp { sec: 11, nsec: 0 });
        assert_eq!(r.pop_ready().unwrap().ts, Timestamp { sec: 10, nsec: 200_000_000 });
    }

    #[test]
    fn reorder_cap_forces_release() {
        let mut r = Reorder::new(Duration::from_secs(10), 2);
        for i in 0..3 {
            r.push(frame(0, 5, i));
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
