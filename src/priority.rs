//! Thread priorities of live capture's helper threads.
//!
//! [`raise_priority`] asks for a nice value (the capture threads); [`Urgent`] runs a thread
//! that sleeps between short jobs real-time where allowed, guarded so that it never takes a
//! core for long (the live evidence threads, [`crate::evidence`]). Both need
//! `CAP_SYS_NICE` (root has it); without it the thread stays as it was and nothing else
//! changes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Runs the calling thread at `nice` where allowed (CAP_SYS_NICE); else leaves it as it is.
pub fn raise_priority(nice: i32) {
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice);
}

/// Threads run real-time ([`Urgent`]), and times one went back to its nice value for a
/// while because it used more than half a core.
#[derive(Debug, Default)]
pub struct RealtimeCounts {
    threads: AtomicU64,
    rests: AtomicU64,
}

impl RealtimeCounts {
    /// Threads that ran real-time.
    pub fn threads(&self) -> u64 {
        self.threads.load(Ordering::Relaxed)
    }

    /// Times one gave it up for [`URGENT_REST`].
    pub fn rests(&self) -> u64 {
        self.rests.load(Ordering::Relaxed)
    }
}

/// How often an [`Urgent`] thread checks the CPU time it used, and for how long it gives up
/// real-time scheduling when that was more than half of the window.
pub const URGENT_WINDOW: Duration = Duration::from_millis(100);
pub const URGENT_REST: Duration = Duration::from_secs(1);

/// Scheduling of a thread that sleeps between jobs of microseconds and must start each one
/// at once: the live evidence threads ([`crate::evidence`]: socket attribution, whose
/// lookups race forked children that hold their sockets for a millisecond or two, the fork
/// watch, the conntrack watchers and their collector). Measured on the seed lab (2 cores,
/// seven capture points, seven tcpdumps beside): at nice -15 alone the lookup thread still
/// waited a median 2-6 ms for a core behind the capture threads, and the forwarder's process
/// was named on 94.6% of the hops; real-time, 98.3%.
///
/// Where allowed (CAP_SYS_NICE) the thread runs `SCHED_FIFO` at the lowest real-time
/// priority, ahead of every ordinary thread, else at `nice` alone. Guarded: once per
/// [`URGENT_WINDOW`] (when the thread's loop turns) it compares the CPU time it used with
/// the time passed; above half (a storm of connections or forks), it goes back to `nice`
/// for [`URGENT_REST`] and counts it, so it never takes a core from the capture threads
/// for long.
pub struct Urgent {
    /// The nice value it rests at (the one in effect when it started).
    nice: i32,
    counts: Arc<RealtimeCounts>,
    /// Real-time was granted at the start (so it may be asked for again after a rest).
    allowed: bool,
    window: Instant,
    cpu_at: Duration,
    resting_until: Option<Instant>,
}

fn set_realtime(on: bool) -> bool {
    use thread_priority::{
        NormalThreadSchedulePolicy, RealtimeThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let policy = if on {
        ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo)
    } else {
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other)
    };
    set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, policy).is_ok()
}

/// CPU time the calling thread used.
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(u64::try_from(t.tv_sec).unwrap_or(0), u32::try_from(t.tv_nsec).unwrap_or(0))
}

impl Urgent {
    /// Raises the calling thread (see the type's docs): to `nice` first if given, and rests
    /// at the nice value then in effect (`None`: a caller that set it already, or that
    /// leaves it as it is).
    pub fn start(nice: Option<i32>, counts: Arc<RealtimeCounts>) -> Urgent {
        if let Some(n) = nice {
            raise_priority(n);
        }
        let nice = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap_or(0);
        let allowed = set_realtime(true);
        if allowed {
            counts.threads.fetch_add(1, Ordering::Relaxed);
        }
        Urgent { nice, counts, allowed, window: Instant::now(), cpu_at: thread_cpu(), resting_until: None }
    }

    /// Once per turn of the thread's loop: the guard (a clock read, and a CPU time read
    /// once per window).
    pub fn tick(&mut self) {
        if !self.allowed {
            return;
        }
        let now = Instant::now();
        if let Some(until) = self.resting_until {
            if now >= until {
                self.resting_until = None;
                set_realtime(true);
                (self.window, self.cpu_at) = (now, thread_cpu());
            }
            return;
        }
        let passed = now.saturating_duration_since(self.window);
        if passed < URGENT_WINDOW {
            return;
        }
        let cpu = thread_cpu();
        if cpu.saturating_sub(self.cpu_at) * 2 > passed {
            // Back to an ordinary thread; the library sets a nice value along with the
            // policy (the highest, where allowed): ours again.
            set_realtime(false);
            raise_priority(self.nice);
            self.resting_until = Some(now + URGENT_REST);
            self.counts.rests.fetch_add(1, Ordering::Relaxed);
        }
        (self.window, self.cpu_at) = (now, cpu);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_realtime_thread_that_uses_over_half_a_core_rests_at_its_nice_value_then_resumes() {
        use thread_priority::{RealtimeThreadSchedulePolicy as Rt, ThreadSchedulePolicy as Policy, thread_schedule_policy};
        let counts = Arc::new(RealtimeCounts::default());
        let c = counts.clone();
        let seen = std::thread::spawn(move || {
            let mut u = Urgent::start(Some(-5), c.clone());
            if c.threads.load(Ordering::Relaxed) == 0 {
                return None;
            }
            let during = thread_schedule_policy().ok();
            // All CPU until the guard steps in (one window), at most 2 s.
            let t0 = Instant::now();
            while c.rests.load(Ordering::Relaxed) == 0 && t0.elapsed() < Duration::from_secs(2) {
                u.tick();
            }
            let spun = t0.elapsed();
            let resting = thread_schedule_policy().ok();
            let nice = rustix::process::getpriority_process(Some(rustix::thread::gettid())).ok();
            // Idle through the rest: real-time again at the next turn after it.
            std::thread::sleep(URGENT_REST + Duration::from_millis(20));
            u.tick();
            Some((during, spun, resting, nice, thread_schedule_policy().ok()))
        })
        .join()
        .unwrap();
        let Some((during, spun, resting, nice, resumed)) = seen else {
            let msg = "real-time scheduling refused (needs CAP_SYS_NICE: root)";
            assert!(std::env::var("CI").is_err(), "{msg}");
            eprintln!("SKIP: {msg}");
            return;
        };
        assert_eq!(during, Some(Policy::Realtime(Rt::Fifo)));
        assert_eq!(counts.rests.load(Ordering::Relaxed), 1, "spun {spun:?}");
        assert!(spun >= URGENT_WINDOW && spun < URGENT_WINDOW * 5, "{spun:?}");
        assert!(matches!(resting, Some(Policy::Normal(_))), "{resting:?}");
        assert_eq!(nice, Some(-5));
        assert_eq!(resumed, Some(Policy::Realtime(Rt::Fifo)));
    }
}
