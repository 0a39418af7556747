//! Candidate search: entries keyed by a 64-bit hash of one piece of evidence (an ISN, a
//! TSval, a tuple, a sequence block, a payload digest), grouped by key, and within a key
//! paired only with entries that overlap in time. Grouping is a sort join without per-key
//! allocations: the entries that may share a key (a bitset over the keys leaves out those
//! alone) are sorted by key and time, so each key's entries are one run. The pairs emitted
//! per entry are capped, so no bucket (a popular ISN, a flood of identical requests) can
//! make the search quadratic.

use super::features::Nanos;

#[derive(Clone, Copy, Debug)]
struct Entry {
    key: u64,
    from: Nanos,
    until: Nanos,
    item: u32,
    /// Pairs need at least one entry marked so ([`Grouper::push_level`]).
    top: bool,
}

/// Collects `(key, time range, item)` entries and emits candidate pairs.
#[derive(Debug, Default)]
pub(crate) struct Grouper {
    entries: Vec<Entry>,
}

/// Mixes a tag and a value into a key.
pub(crate) fn key(tag: u8, value: u64) -> u64 {
    let mut h = value ^ (u64::from(tag) << 56) ^ 0x243F_6A88_85A3_08D3;
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (h ^ (h >> 31)) ^ u64::from(tag)
}

impl Grouper {
    pub fn with_capacity(n: usize) -> Grouper {
        Grouper {
            entries: Vec::with_capacity(n),
        }
    }

    /// `item` has `key` and is live over `[from, until]`.
    pub fn push(&mut self, key: u64, from: Nanos, until: Nanos, item: u32) {
        self.push_level(key, from, until, item, true);
    }

    /// Like [`Grouper::push`], for multi-level keys: an item pushes its key at every level
    /// it reached, `top` only at the longest; two items pair under a key only if it is the
    /// longest of at least one of them. So items sharing a long key pair once (there), and
    /// an item is still found by one that reached only a shorter level, while items that
    /// share short keys but differ further on never pair.
    pub fn push_level(&mut self, key: u64, from: Nanos, until: Nanos, item: u32, top: bool) {
        self.entries.push(Entry {
            key,
            from,
            until: until.max(from),
            item,
            top,
        });
    }

    /// Pairs `(a, b)` with `a != b`, the same key, and `b.from <= a.until + slack` where `a`
    /// starts first (ties by item). At most `cap` pairs per entry and key; `capped` counts
    /// entries that hit the cap. Pairs are ordered `(earlier, later)`, possibly repeated,
    /// in no particular order.
    pub fn pairs(self, slack: Nanos, cap: usize, out: &mut Vec<(u32, u32)>, capped: &mut u64) {
        // The entries whose key may be shared, sorted by key in place: each key's entries
        // are then one run, read in order (a hash map of chains through the entries read
        // them in random order, and took 2.5 times as long on 750k entries).
        let mut es = self.entries;
        // First, two bitsets over the keys' low bits (a slot seen once, seen twice): an
        // entry alone in its slot is alone under its key, and is left out of the sort.
        let bits = (es.len().max(16) * 4).next_power_of_two();
        let slot = |k: u64| (k as usize) & (bits - 1);
        let mut once = vec![0u64; bits / 64];
        let mut twice = vec![0u64; bits / 64];
        for e in &es {
            let (w, b) = (slot(e.key) / 64, 1u64 << (slot(e.key) % 64));
            twice[w] |= once[w] & b;
            once[w] |= b;
        }
        let shared = |k: u64| twice[slot(k) / 64] & (1u64 << (slot(k) % 64)) != 0;
        es.retain(|e| shared(e.key));
        // By key alone (one comparison), then each run (a few entries) by time.
        es.sort_unstable_by_key(|e| e.key);
        let mut tops: Vec<usize> = Vec::new();
        for run in es.chunk_by_mut(|a, b| a.key == b.key) {
            if run.len() < 2 {
                continue;
            }
            run.sort_unstable_by_key(|e| (e.from, e.item));
            let run = &*run;
            // The positions of the entries at their top level: an entry that is not pairs
            // only with those, and is matched against them alone (a popular short key, a
            // common request line, is not scanned through entry by entry).
            tops.clear();
            tops.extend(run.iter().enumerate().filter(|(_, e)| e.top).map(|(k, _)| k));
            for (k, a) in run.iter().enumerate() {
                let limit = a.until.saturating_add(slack);
                let mut n = 0;
                let mut emit = |b: &Entry| {
                    if b.from > limit {
                        return false;
                    }
                    if b.item != a.item {
                        out.push((a.item, b.item));
                        n += 1;
                        if n >= cap {
                            *capped += 1;
                            return false;
                        }
                    }
                    true
                };
                if a.top {
                    for b in &run[k + 1..] {
                        if !emit(b) {
                            break;
                        }
                    }
                } else {
                    let after = tops.partition_point(|&t| t <= k);
                    for &t in &tops[after..] {
                        if !emit(&run[t]) {
                            break;
                        }
                    }
                }
            }
        }
    }
}

/// A hasher for keys that are already well-mixed 64-bit hashes ([`key`], tuple keys).
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }
}

/// A map keyed by pre-hashed `u64`s.
pub(crate) type KeyMap<V> =
    std::collections::HashMap<u64, V, std::hash::BuildHasherDefault<KeyHasher>>;

/// Sorts and deduplicates unordered pairs (each as `(min, max)`).
pub(crate) fn dedup_unordered(pairs: &mut Vec<(u32, u32)>) {
    let mut packed: Vec<u64> = pairs
        .iter()
        .map(|&(a, b)| (u64::from(a.min(b)) << 32) | u64::from(a.max(b)))
        .collect();
    packed.sort_unstable();
    packed.dedup();
    pairs.clear();
    pairs.extend(packed.into_iter().map(|p| ((p >> 32) as u32, p as u32)));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Levels: pairs only where one of the two is at its top level, the same pairs in the
    /// same order as a scan of every later entry.
    #[test]
    fn pairs_need_a_top_entry() {
        let mut g = Grouper::default();
        let mut all = Vec::new();
        for i in 0..40u32 {
            let (from, top) = (i64::from(i % 7) * 3, i % 3 == 0);
            g.push_level(key(10, 1), from, from + 5, i, top);
            all.push((from, i, top));
        }
        let mut out = Vec::new();
        let mut capped = 0;
        g.pairs(0, 4, &mut out, &mut capped);
        all.sort_unstable_by_key(|&(from, item, _)| (from, item));
        let (mut want, mut want_capped) = (Vec::new(), 0);
        for (k, &(af, ai, at)) in all.iter().enumerate() {
            let mut n = 0;
            for &(bf, bi, bt) in &all[k + 1..] {
                if bf > af + 5 {
                    break;
                }
                if ai != bi && (at || bt) {
                    want.push((ai, bi));
                    n += 1;
                    if n >= 4 {
                        want_capped += 1;
                        break;
                    }
                }
            }
        }
        assert_eq!(out, want);
        assert_eq!(capped, want_capped);
    }

    #[test]
    fn pairs_share_a_key_and_overlap() {
        let mut g = Grouper::default();
        g.push(key(1, 5), 0, 10, 0);
        g.push(key(1, 5), 5, 20, 1);
        g.push(key(1, 5), 100, 200, 2);
        g.push(key(2, 5), 0, 10, 3);
        let mut out = Vec::new();
        let mut capped = 0;
        g.pairs(0, 10, &mut out, &mut capped);
        assert_eq!(out, vec![(0, 1)]);
        assert_eq!(capped, 0);
        let mut g = Grouper::default();
        for i in 0..100 {
            g.push(7, 0, 10, i);
        }
        let mut out = Vec::new();
        g.pairs(0, 3, &mut out, &mut capped);
        assert!(out.len() <= 300);
        assert!(capped > 0);
    }
}
