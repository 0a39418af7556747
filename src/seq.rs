//! TCP sequence-number arithmetic: the one place in the crate where it lives.
//!
//! TCP sequence numbers are 32-bit and wrap (RFC 9293 §3.4): `a < b` means "`b` is less
//! than 2^31 ahead of `a`", which is not an ordering (it is not transitive over the whole
//! space). Everything in flowtrail that compares, subtracts or advances sequence numbers goes
//! through [`SeqNum`]; nothing else does `u32` arithmetic on them.
//!
//! Streams are addressed by 64-bit *offsets* instead (byte 0 is the first byte after the
//! SYN, or the first byte seen on a midstream pickup). [`SeqNum::offset_from`] maps a
//! sequence number to the offset nearest a reference point, which makes streams longer than
//! 4 GiB (the sequence space wraps many times) work: the answer is exact as long as the
//! sequence number lies within 2^31 bytes of the reference, the same limit TCP itself has.

use std::fmt;

/// A TCP sequence (or acknowledgement) number, compared modulo 2^32.
///
/// Deliberately not `Ord`: wrapping comparison is not a total order. Use [`SeqNum::lt`],
/// [`SeqNum::le`] and friends, or [`SeqNum::diff`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// The raw 32-bit value.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// `self + n` modulo 2^32.
    #[must_use]
    pub const fn add(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(n))
    }

    /// `self + n` modulo 2^32, for any `n` (only `n mod 2^32` matters).
    #[must_use]
    pub const fn add_u64(self, n: u64) -> SeqNum {
        // Truncation is the point: sequence space is modulo 2^32.
        SeqNum(self.0.wrapping_add(n as u32))
    }

    /// `self - n` modulo 2^32.
    #[must_use]
    pub const fn sub(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_sub(n))
    }

    /// Signed distance `self - other` in the range `[-2^31, 2^31)`: positive when `self` is
    /// ahead of `other`.
    pub const fn diff(self, other: SeqNum) -> i32 {
        // Reinterpreting the wrapped u32 difference as i32 is RFC 1982 serial arithmetic.
        self.0.wrapping_sub(other.0) as i32
    }

    /// [`SeqNum::diff`] widened to `i64`, convenient for offset arithmetic.
    pub const fn diff64(self, other: SeqNum) -> i64 {
        self.diff(other) as i64
    }

    /// `self` is before `other` (wrapping).
    pub const fn lt(self, other: SeqNum) -> bool {
        self.diff(other) < 0
    }

    /// `self` is before or equal to `other` (wrapping).
    pub const fn le(self, other: SeqNum) -> bool {
        self.diff(other) <= 0
    }

    /// `self` is after `other` (wrapping).
    pub const fn gt(self, other: SeqNum) -> bool {
        self.diff(other) > 0
    }

    /// `self` is after or equal to `other` (wrapping).
    pub const fn ge(self, other: SeqNum) -> bool {
        self.diff(other) >= 0
    }

    /// The sequence number of stream offset `offset`, where offset 0 is `base`.
    #[must_use]
    pub const fn at_offset(base: SeqNum, offset: u64) -> SeqNum {
        base.add_u64(offset)
    }

    /// Unwrap `self` to a signed 64-bit stream offset, where offset 0 has sequence number
    /// `base`, choosing the offset nearest `reference` (a known offset, typically the next
    /// expected byte).
    ///
    /// The result is in `[reference - 2^31, reference + 2^31)`; it is negative for sequence
    /// numbers before `base` (for example the SYN itself, at offset -1). Saturates instead of
    /// overflowing for absurd references (offsets near 2^63 are never reached by real streams).
    pub fn offset_from(self, base: SeqNum, reference: u64) -> i64 {
        let reference_seq = SeqNum::at_offset(base, reference);
        let reference = i64::try_from(reference).unwrap_or(i64::MAX);
        reference.saturating_add(self.diff64(reference_seq))
    }
}

impl fmt::Debug for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeqNum({})", self.0)
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<u32> for SeqNum {
    fn from(value: u32) -> Self {
        SeqNum(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn comparison_wraps() {
        let a = SeqNum(u32::MAX - 5);
        let b = SeqNum(10);
        assert!(a.lt(b));
        assert!(a.le(b));
        assert!(b.gt(a));
        assert!(b.ge(a));
        assert!(!b.lt(a));
        assert_eq!(b.diff(a), 16);
        assert_eq!(a.diff(b), -16);
        assert!(a.le(a) && a.ge(a) && !a.lt(a));
    }

    #[test]
    fn add_and_sub_wrap() {
        assert_eq!(SeqNum(u32::MAX).add(1), SeqNum(0));
        assert_eq!(SeqNum(0).sub(1), SeqNum(u32::MAX));
        assert_eq!(SeqNum(5).add_u64(1 << 32), SeqNum(5));
        assert_eq!(SeqNum(5).add_u64((1 << 33) + 3), SeqNum(8));
    }

    #[test]
    fn offset_unwraps_across_wrap() {
        let base = SeqNum(u32::MAX - 9); // offset 0
        assert_eq!(SeqNum(u32::MAX - 9).offset_from(base, 0), 0);
        assert_eq!(SeqNum(0).offset_from(base, 0), 10);
        assert_eq!(SeqNum(0).offset_from(base, 5), 10);
        // Before base: negative.
        assert_eq!(SeqNum(u32::MAX - 10).offset_from(base, 0), -1);
        // Several GiB into the stream, the same sequence number maps near the reference.
        let four_gib = 1u64 << 32;
        assert_eq!(
            SeqNum(0).offset_from(base, four_gib),
            (four_gib + 10) as i64
        );
        assert_eq!(
            SeqNum(0).offset_from(base, 3 * four_gib + 100),
            (3 * four_gib + 10) as i64
        );
    }

    #[test]
    fn offset_saturates_on_absurd_reference() {
        let v = SeqNum(3).offset_from(SeqNum(0), u64::MAX);
        assert!(v > 0);
    }

    proptest! {
        #[test]
        fn offset_round_trips(base: u32, offset in 0u64..(1 << 40), delta in -(1i64 << 31)..(1i64 << 31)) {
            let base = SeqNum(base);
            let target = offset as i64 + delta;
            let seq = SeqNum::at_offset(base, target as u64);
            // Offsets within 2^31 of the reference are recovered exactly (negatives wrap back).
            if target >= 0 {
                prop_assert_eq!(seq.offset_from(base, offset), target);
            }
        }

        #[test]
        fn diff_is_antisymmetric(a: u32, b: u32) {
            let (a, b) = (SeqNum(a), SeqNum(b));
            if a.diff(b) != i32::MIN {
                prop_assert_eq!(a.diff(b), -b.diff(a));
                prop_assert_eq!(a.lt(b), b.gt(a));
            }
            // b + (a - b) == a, whatever the sign.
            prop_assert_eq!(b.add(a.diff(b) as u32), a);
        }
    }
}
