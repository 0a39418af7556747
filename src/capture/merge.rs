//! k-way merge of frame sources by timestamp.
//!
//! Contract:
//! * Each source keeps its own order (a pcapng's packets are never reordered among
//!   themselves); across sources the frame with the smallest timestamp goes first, ties go to
//!   the source added first.
//! * One frame of lookahead per source, refilled lazily: the source whose frame was handed out
//!   is read again only when the next frame is asked for, so a single source (e.g. `-r -` on a
//!   pipe) is passed through without delay.
//! * [`Merger::prime`] reads the first frame of every source before anything is handed out;
//!   for pcapng this declares every interface that precedes the first packet, which is what
//!   the decision "several capture points, print labels" is based on.
//! * A source that fails ends; its error is kept (see [`Merger::take_errors`]) and the other
//!   sources go on, so everything that was readable is printed and written.
//! * Buffers of frames given back through [`Merger::recycle`] are reused for later frames.

use super::{CaptureError, Frame, FrameSource, Points};

struct Slot {
    source: Box<dyn FrameSource>,
    head: Option<Frame>,
    live: bool,
}

/// Merges frames of several sources by timestamp.
#[derive(Default)]
pub struct Merger {
    slots: Vec<Slot>,
    /// Slot whose head was handed out and must be refilled before the next pick.
    consumed: Option<usize>,
    pool: Vec<Vec<u8>>,
    errors: Vec<CaptureError>,
}

/// Most spare buffers kept for reuse.
const POOL_MAX: usize = 64;

impl Merger {
    pub fn new() -> Merger {
        Merger::default()
    }

    /// Adds a source; sources added earlier win timestamp ties.
    pub fn add(&mut self, source: Box<dyn FrameSource>) {
        self.slots.push(Slot { source, head: None, live: true });
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Reads one frame of lookahead from every source that has none.
    pub fn prime(&mut self, points: &mut Points) {
        for i in 0..self.slots.len() {
            if self.slots[i].head.is_none() {
                self.refill(i, points);
            }
        }
        self.consumed = None;
    }

    fn refill(&mut self, i: usize, points: &mut Points) {
        let spare = self.pool.pop().unwrap_or_default();
        let Some(slot) = self.slots.get_mut(i) else { return };
        if !slot.live {
            return;
        }
        match slot.source.next_frame(points, spare) {
            Ok(Some(f)) => slot.head = Some(f),
            Ok(None) => slot.live = false,
            Err(e) => {
                slot.live = false;
                self.errors.push(e);
            }
        }
    }

    /// The next frame in timestamp order, `None` when every source has ended.
    pub fn next(&mut self, points: &mut Points) -> Option<Frame> {
        if let Some(i) = self.consumed.take() {
            self.refill(i, points);
        }
        let mut best: Option<usize> = None;
        for (i, s) in self.slots.iter().enumerate() {
            let Some(f) = &s.head else { continue };
            match best {
                Some(b) if self.slots[b].head.as_ref().is_some_and(|g| g.ts <= f.ts) => {}
                _ => best = Some(i),
            }
        }
        let i = best?;
        self.consumed = Some(i);
        self.slots[i].head.take()
    }

    /// Gives a handed-out frame back so its buffer can be reused.
    pub fn recycle(&mut self, frame: Frame) {
        if self.pool.len() < POOL_MAX {
            let mut data = frame.data;
            data.clear();
            self.pool.push(data);
        }
    }

    /// Errors of sources that failed so far, in the order they happened.
    pub fn take_errors(&mut self) -> Vec<CaptureError> {
        std::mem::take(&mut self.errors)
    }

    /// True when some source failed.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{Direction, Timestamp};

    struct Fixed(Vec<(usize, i64)>);
    impl FrameSource for Fixed {
        fn next_frame(&mut self, _p: &mut Points, data: Vec<u8>) -> Result<Option<Frame>, CaptureError> {
            if self.0.is_empty() {
                return Ok(None);
            }
            let (point, sec) = self.0.remove(0);
            Ok(Some(Frame {
                point,
                ts: Timestamp { sec, nsec: 0 },
                linktype: 1,
                origlen: 0,
                data,
                direction: Direction::Unknown,
            }))
        }
    }

    #[test]
    fn merges_by_time_ties_by_input_order_keeps_source_order() {
        let mut m = Merger::new();
        m.add(Box::new(Fixed(vec![(0, 1), (0, 3), (0, 3), (0, 2)])));
        m.add(Box::new(Fixed(vec![(1, 0), (1, 3), (1, 4)])));
        let mut p = Points::default();
        m.prime(&mut p);
        let mut out = vec![];
        while let Some(f) = m.next(&mut p) {
            out.push((f.point, f.ts.sec));
            m.recycle(f);
        }
        assert_eq!(out, vec![(1, 0), (0, 1), (0, 3), (0, 3), (0, 2), (1, 3), (1, 4)]);
    }
}
