//! The global memory budget shared by many streams.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A byte budget shared by every stream of a flow table, so a million flows stay bounded.
///
/// Cloning gives another handle to the same budget. Each [`super::HalfStream`] keeps a handle,
/// reserves before storing out-of-order data, releases as it delivers, and releases what it
/// still holds when dropped, so evicting a flow can never leak budget.
///
/// Invariant: `used() <= limit()` at all times (reservations are compare-and-swap, exact even
/// if handles are used from several threads).
#[derive(Clone)]
pub struct Budget {
    shared: Arc<Shared>,
}

struct Shared {
    limit: usize,
    used: AtomicUsize,
    refusals: AtomicU64,
}

impl Budget {
    /// Default limit: 256 MiB.
    pub const DEFAULT_LIMIT: usize = 256 << 20;

    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Budget {
        Budget {
            shared: Arc::new(Shared {
                limit,
                used: AtomicUsize::new(0),
                refusals: AtomicU64::new(0),
            }),
        }
    }

    /// A budget that never refuses (per-stream caps still apply).
    pub fn unlimited() -> Budget {
        Budget::new(usize::MAX)
    }

    pub fn limit(&self) -> usize {
        self.shared.limit
    }

    /// Bytes currently held by all streams sharing this budget.
    pub fn used(&self) -> usize {
        self.shared.used.load(Ordering::Relaxed)
    }

    /// Reservations refused so far (each one made a stream skip ahead).
    pub fn refusals(&self) -> u64 {
        self.shared.refusals.load(Ordering::Relaxed)
    }

    /// Take `bytes` from the budget if they fit.
    pub(crate) fn try_reserve(&self, bytes: usize) -> bool {
        let limit = self.shared.limit;
        let reserved = self
            .shared
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|&total| total <= limit)
            })
            .is_ok();
        if !reserved {
            self.shared.refusals.fetch_add(1, Ordering::Relaxed);
        }
        reserved
    }

    /// Give back `bytes` previously reserved.
    pub(crate) fn release(&self, bytes: usize) {
        // Saturating: a release never underflows even if a caller's accounting were off.
        let _ = self
            .shared
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                Some(used.saturating_sub(bytes))
            });
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new(Budget::DEFAULT_LIMIT)
    }
}

impl fmt::Debug for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Budget")
            .field("limit", &self.limit())
            .field("used", &self.used())
            .field("refusals", &self.refusals())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_and_release_are_exact() {
        let budget = Budget::new(100);
        let other = budget.clone();
        assert!(budget.try_reserve(60));
        assert!(!other.try_reserve(41));
        assert_eq!(other.refusals(), 1);
        assert!(other.try_reserve(40));
        assert_eq!(budget.used(), 100);
        budget.release(60);
        assert_eq!(other.used(), 40);
        other.release(1000);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn unlimited_never_overflows() {
        let budget = Budget::unlimited();
        assert!(budget.try_reserve(usize::MAX));
        assert!(!budget.try_reserve(1));
    }
}
