//! Prefix digests of a byte stream, and digests of single datagrams.
//!
//! A [`StreamDigest`] hashes the first [`HEAD`] bytes of one direction of a TCP connection,
//! *in stream order*, as the reassembler delivers them (`Data { offset, bytes }`, offset 0
//! is the byte after the SYN, so retransmissions and reordering never disturb it). It keeps
//! the hash of the first 16, 64, 256 and 1024 bytes ([`MARKS`]) once that many bytes have
//! arrived, and can always give the hash of everything hashed so far (the *head*). Two
//! streams are compared at the longest prefix both can speak for ([`StreamDigest::compare`]):
//! a mark both reached, or the head when both heads have the same length.
//!
//! The digest is only *anchored* when offset 0 is the real first byte of the stream (the
//! direction's SYN was seen). On a midstream pickup the reassembler's offset 0 is wherever
//! capture started, which differs between capture points, so such a digest says nothing and
//! [`StreamDigest::compare`] answers [`DigestCmp::Unknown`]. A gap stops the digest where it
//! is: the head stays a valid digest of the bytes before the gap, nothing later is hashed.
//!
//! The hash is a 64-bit multiply-fold mix over 16-byte blocks of two little-endian words:
//! each block's words, keyed (the first also by the accumulator), meet in one 128-bit
//! multiply whose halves are folded (not cryptographic: an adversary able to choose payloads
//! could forge a collision and make two legs look alike; every join also needs timing and,
//! for legs, sequence-space agreement). It is split-invariant: hashing `a` then `b` equals
//! hashing `a ++ b`. Even and odd blocks go to two accumulators, each a serial chain of one
//! multiply per block, and the CPU runs the two chains side by side: a kilobyte costs well
//! under 0.1 us, 13 instructions per 16 bytes (hashing was the largest part of the
//! per-packet cost of joining). Digests are not stable across versions (only compared
//! within a run).

/// Bytes hashed per direction at most. A kilobyte of equal bytes in stream order already
/// tells connections apart; hashing more would cost every analysis run time for no gain.
pub const HEAD: u32 = 1024;
/// Prefix lengths whose digests are kept.
pub const MARKS: [u32; 4] = [16, 64, 256, 1024];

const P1: u64 = 0x9E37_79B9_7F4A_7C15;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const SEED: u64 = 0x5851_F42D_4C95_7F2D;

/// Bytes absorbed per step: two little-endian words.
const BLOCK: usize = 16;

/// One 16-byte block into the accumulator: a 64x64->128 multiply of the block's keyed words,
/// the first also keyed by the accumulator (so block order matters), folded, plus both
/// factors again, so that a zero factor (a word that cancels its key) still leaves the other
/// factor in the result rather than zero. The multiply is the only serial step worth
/// speaking of; [`Lanes`] runs two such chains side by side.
fn absorb(acc: u64, w0: u64, w1: u64) -> u64 {
    let (a, b) = (w0 ^ acc ^ P2, w1 ^ P3);
    let m = u128::from(a).wrapping_mul(u128::from(b));
    (m as u64) ^ ((m >> 64) as u64) ^ a ^ b.rotate_left(32)
}

fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 33)
}

fn words(b: &[u8]) -> (u64, u64) {
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(&b[..8]);
    hi.copy_from_slice(&b[8..BLOCK]);
    (u64::from_le_bytes(lo), u64::from_le_bytes(hi))
}

/// The state of the hash without its length: two accumulators (even blocks into the first,
/// odd ones into the second, so that two serial chains run side by side) and the bytes of
/// an unfinished block. Its owner keeps the length (how many bytes were written).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Lanes {
    acc: [u64; 2],
    pending: [u8; BLOCK],
}

impl Lanes {
    /// Writes `bytes` after the `len` bytes written before.
    fn write(&mut self, len: u32, mut bytes: &[u8]) {
        let have = len as usize % BLOCK;
        // Index of the next block (modulo 2^28, whose parity is all that matters).
        let mut block = len as usize / BLOCK;
        // Complete the pending block first.
        if have > 0 {
            let take = bytes.len().min(BLOCK - have);
            self.pending[have..have + take].copy_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if have + take < BLOCK {
                return;
            }
            let (w0, w1) = words(&self.pending);
            self.acc[block & 1] = absorb(self.acc[block & 1], w0, w1);
            block += 1;
        }
        // An odd block first, then pairs of blocks, one into each lane.
        if block & 1 == 1 && bytes.len() >= BLOCK {
            let (w0, w1) = words(bytes);
            self.acc[1] = absorb(self.acc[1], w0, w1);
            bytes = &bytes[BLOCK..];
        }
        let [mut a, mut b] = self.acc;
        let mut pairs = bytes.chunks_exact(2 * BLOCK);
        for p in &mut pairs {
            let (w0, w1) = words(&p[..BLOCK]);
            let (w2, w3) = words(&p[BLOCK..]);
            a = absorb(a, w0, w1);
            b = absorb(b, w2, w3);
        }
        self.acc = [a, b];
        let mut rest = pairs.remainder();
        if rest.len() >= BLOCK {
            let (w0, w1) = words(rest);
            self.acc[0] = absorb(self.acc[0], w0, w1);
            rest = &rest[BLOCK..];
        }
        self.pending[..rest.len()].copy_from_slice(rest);
    }

    /// The hash of the `len` bytes written.
    fn finish(&self, len: u32) -> u64 {
        let have = len as usize % BLOCK;
        let mut acc = self.acc;
        if have > 0 {
            let mut last = [0u8; BLOCK];
            last[..have].copy_from_slice(&self.pending[..have]);
            let (w0, w1) = words(&last);
            let lane = (len as usize / BLOCK) & 1;
            acc[lane] = absorb(acc[lane], w0, w1);
        }
        fmix(absorb(acc[0], acc[1], u64::from(len) ^ SEED))
    }
}

/// Streaming 64-bit hash over bytes (split-invariant: blocks sit at fixed stream offsets,
/// the bytes of an unfinished block wait).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamHash {
    lanes: Lanes,
    /// Bytes hashed, modulo 2^32 (as many as one digest or datagram ever hashes).
    len: u32,
}

impl StreamHash {
    pub fn new() -> StreamHash {
        StreamHash::default()
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        u64::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn write(&mut self, bytes: &[u8]) {
        self.lanes.write(self.len, bytes);
        self.len = self.len.wrapping_add(bytes.len() as u32);
    }

    /// The hash of everything written so far (does not consume the state).
    pub fn finish(&self) -> u64 {
        self.lanes.finish(self.len)
    }

    /// Hash of one byte string.
    pub fn oneshot(bytes: &[u8]) -> u64 {
        let mut h = StreamHash::new();
        h.write(bytes);
        h.finish()
    }
}

/// Whether a [`StreamDigest`]'s offset 0 is the stream's real first byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Anchor {
    /// Nothing delivered yet.
    #[default]
    Pending,
    /// Offset 0 is the byte after the SYN: comparable with other anchored digests.
    Syn,
    /// Midstream pickup: offset 0 is arbitrary, the digest is not comparable.
    Midstream,
}

/// Digest of the first [`HEAD`] bytes of one stream direction (see the module docs).
///
/// Prefix digests are 32 bits ([`StreamDigest::prefix`]): two different prefixes compare
/// equal with probability 2^-32, and only candidate pairs already close in time and tuple
/// are compared; 56 bytes in all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamDigest {
    /// The hash of the first `hashed` bytes (a [`StreamHash`] whose length is `hashed`,
    /// kept in 16 bits: at most [`HEAD`]).
    lanes: Lanes,
    /// In-order bytes delivered in total (also beyond HEAD, up to the first gap).
    delivered: u64,
    /// Digests at the marks below [`HEAD`] (the one at `HEAD` is the head's: hashing stops
    /// there).
    marks: [u32; 3],
    hashed: u16,
    anchor: Anchor,
    /// A gap (or a non-contiguous delivery) stopped hashing at `hash.len()`.
    broken: bool,
}

/// A 64-bit hash folded to the 32 bits a digest keeps.
fn fold(h: u64) -> u32 {
    (h ^ (h >> 32)) as u32
}

/// Result of comparing two stream digests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DigestCmp {
    /// The first `n` bytes are equal.
    Match(u32),
    /// The first `n` bytes differ.
    Mismatch(u32),
    /// No common prefix to compare (unanchored, empty, or no common length).
    Unknown,
}

impl StreamDigest {
    /// Starts the digest: `anchored` says whether offset 0 is the real start of the stream
    /// (the SYN of this direction was seen). Called once, before the first data; later calls
    /// are ignored.
    pub fn anchor(&mut self, anchored: bool) {
        if self.anchor == Anchor::Pending {
            self.anchor = if anchored {
                Anchor::Syn
            } else {
                Anchor::Midstream
            };
        }
    }

    pub fn anchor_state(&self) -> Anchor {
        self.anchor
    }

    /// In-order bytes at `offset` (a reassembler `Data` event). Bytes before the hashed
    /// prefix are skipped (already hashed); a hole stops the digest.
    pub fn data(&mut self, offset: u64, bytes: &[u8]) {
        if self.broken {
            return;
        }
        let end = offset.saturating_add(bytes.len() as u64);
        if offset > self.delivered {
            self.broken = true;
            return;
        }
        if end <= self.delivered {
            return;
        }
        let skip = usize::try_from(self.delivered - offset).unwrap_or(usize::MAX);
        let Some(mut rest) = bytes.get(skip..) else {
            return;
        };
        self.delivered = end;
        // Hash up to HEAD, stopping at each mark to record it.
        while !rest.is_empty() {
            let hashed = self.hashed();
            if hashed >= HEAD {
                break;
            }
            let next_mark = MARKS.iter().copied().find(|&m| m > hashed).unwrap_or(HEAD);
            let take = rest.len().min((next_mark - hashed) as usize);
            self.lanes.write(hashed, &rest[..take]);
            rest = &rest[take..];
            let now = hashed + take as u32;
            self.hashed = now as u16;
            if let Some(i) = MARKS[..3].iter().position(|&m| m == now) {
                self.marks[i] = fold(self.lanes.finish(now));
            }
        }
    }

    /// A gap at `offset`: nothing after it can be hashed.
    pub fn gap(&mut self, offset: u64) {
        if offset <= self.delivered {
            self.broken = true;
        }
    }

    /// Bytes hashed (at most [`HEAD`]).
    pub fn hashed(&self) -> u32 {
        u32::from(self.hashed)
    }

    /// In-order bytes delivered before any gap.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Digest of the first `n` bytes, if known (`n` a mark, or the head length): 32 bits,
    /// the same whether it comes from a mark or the head.
    pub fn prefix(&self, n: u32) -> Option<u64> {
        if self.anchor != Anchor::Syn || n == 0 {
            return None;
        }
        if n == self.hashed() {
            return Some(u64::from(fold(self.lanes.finish(n))));
        }
        let i = MARKS[..3].iter().position(|&m| m == n)?;
        (self.hashed() >= n).then_some(u64::from(self.marks[i]))
    }

    /// The key under which the stream is indexed for candidate search: the 16-byte mark,
    /// or, for a shorter stream, the head (with its length mixed in). `None` when empty
    /// or unanchored.
    pub fn index_key(&self) -> Option<u64> {
        let n = self.hashed().min(MARKS[0]);
        self.prefix(n).map(|h| h ^ u64::from(n).wrapping_mul(P1))
    }

    /// Compares at the longest prefix both digests know.
    pub fn compare(&self, other: &StreamDigest) -> DigestCmp {
        if self.anchor != Anchor::Syn || other.anchor != Anchor::Syn {
            return DigestCmp::Unknown;
        }
        let (a, b) = (self.hashed(), other.hashed());
        let mut n = 0;
        if a == b {
            n = a;
        } else {
            for m in MARKS {
                if a >= m && b >= m {
                    n = m;
                }
            }
        }
        if n == 0 {
            return DigestCmp::Unknown;
        }
        match (self.prefix(n), other.prefix(n)) {
            (Some(x), Some(y)) if x == y => DigestCmp::Match(n),
            (Some(_), Some(_)) => DigestCmp::Mismatch(n),
            _ => DigestCmp::Unknown,
        }
    }
}

/// Digest of one datagram: its length and the hash of its first [`DATAGRAM_HASHED`] bytes.
/// `None` when the capture holds fewer of those bytes (snap length, or a fragment smaller
/// than that), since another point may have captured more.
pub fn datagram_digest(len: u32, captured: &[u8]) -> Option<u64> {
    let want = (len as usize).min(DATAGRAM_HASHED);
    let bytes = captured.get(..want)?;
    Some(StreamHash::oneshot(bytes) ^ u64::from(len).wrapping_mul(P2))
}

/// Bytes of each datagram that go into its digest: enough to tell datagrams apart, and
/// fewer than any first fragment carries, so fragmentation does not change the digest.
pub const DATAGRAM_HASHED: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_size() {
        assert_eq!(std::mem::size_of::<StreamDigest>(), 56);
    }

    #[test]
    fn hash_is_split_invariant() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let whole = StreamHash::oneshot(&data);
        for cut in [0, 1, 7, 8, 9, 63, 500, 999, 1000] {
            let mut h = StreamHash::new();
            h.write(&data[..cut]);
            h.write(&data[cut..]);
            assert_eq!(h.finish(), whole, "cut {cut}");
        }
        let mut h = StreamHash::new();
        for b in &data {
            h.write(std::slice::from_ref(b));
        }
        assert_eq!(h.finish(), whole);
        assert_ne!(StreamHash::oneshot(b"abc"), StreamHash::oneshot(b"abc\0"));
        assert_ne!(StreamHash::oneshot(b""), StreamHash::oneshot(b"\0"));
    }

    fn digest(data: &[u8], chunks: &[usize]) -> StreamDigest {
        let mut d = StreamDigest::default();
        d.anchor(true);
        let mut off = 0usize;
        for &c in chunks.iter().chain(std::iter::repeat(&usize::MAX)) {
            if off >= data.len() {
                break;
            }
            let end = off.saturating_add(c).min(data.len());
            d.data(off as u64, &data[off..end]);
            off = end;
        }
        d
    }

    #[test]
    fn marks_do_not_depend_on_segmentation() {
        let data: Vec<u8> = (0..6000u32).map(|i| (i % 251) as u8).collect();
        let a = digest(&data, &[1000]);
        let b = digest(&data, &[3, 13, 100, 7240]);
        assert_eq!(a.compare(&b), DigestCmp::Match(1024));
        assert_eq!(a.delivered(), 6000);
        for m in MARKS {
            assert_eq!(a.prefix(m), b.prefix(m));
        }
        // A retransmission (offset before the end) changes nothing.
        let mut c = b;
        c.data(10, &data[10..100]);
        assert_eq!(c, b);
    }

    #[test]
    fn compare_at_the_longest_common_prefix() {
        let data: Vec<u8> = (0..600u32).map(|i| (i % 13) as u8).collect();
        let short = digest(&data[..100], &[100]);
        let long = digest(&data, &[600]);
        assert_eq!(short.compare(&long), DigestCmp::Match(64));
        let same = digest(&data[..100], &[50]);
        assert_eq!(short.compare(&same), DigestCmp::Match(100));
        let mut other = data.clone();
        other[20] ^= 1;
        let o = digest(&other, &[600]);
        assert_eq!(o.compare(&long), DigestCmp::Mismatch(600));
        assert_eq!(
            o.compare(&digest(&data[..300], &[700])),
            DigestCmp::Mismatch(256)
        );
        assert_eq!(short.compare(&o), DigestCmp::Mismatch(64));
        let tiny = digest(&data[..10], &[10]);
        assert_eq!(tiny.compare(&long), DigestCmp::Unknown);
        assert_eq!(
            tiny.compare(&digest(&data[..10], &[2])),
            DigestCmp::Match(10)
        );
    }

    #[test]
    fn midstream_and_gaps() {
        let mut m = StreamDigest::default();
        m.anchor(false);
        m.data(0, b"0123456789abcdefghij");
        assert_eq!(m.compare(&m), DigestCmp::Unknown);
        assert_eq!(m.index_key(), None);
        let mut g = StreamDigest::default();
        g.anchor(true);
        g.data(0, b"0123456789");
        g.data(20, b"xxxxxxxxxxxxxxxxxxxxxxxx");
        assert!(g.is_broken());
        assert_eq!(g.hashed(), 10);
        assert_eq!(
            g.compare(&digest(b"0123456789", &[4])),
            DigestCmp::Match(10)
        );
    }

    #[test]
    fn datagram_digest_needs_the_hashed_bytes() {
        assert!(datagram_digest(100, &[0; 100]).is_some());
        assert!(datagram_digest(2000, &[0; 1472]).is_some());
        assert!(datagram_digest(2000, &[0; 100]).is_none());
        assert_ne!(
            datagram_digest(2000, &[0; 1472]),
            datagram_digest(1999, &[0; 1472])
        );
    }
}
