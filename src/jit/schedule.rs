//! The binomial checkpointing schedule of [`crate::ad::checkpoint`], and the
//! driver that runs a checkpointed loop's compiled parts by it.
//!
//! [`tapejit_checkpoint_drive`] is called by compiled code where a
//! checkpointed loop runs: it generates the schedule's actions one at a
//! time and runs each at once, calling the loop's compiled *advance*
//! function (the forward step as a machine loop over a range of
//! iterations) or *reverse* function (one iteration of the reverse body),
//! or copying the current state into or out of a snapshot slot (see
//! `checkpoint` for the layout and the measurements behind this design).
//!
//! [`Schedule::actions`](crate::ad::checkpoint::Schedule::actions) keeps its
//! stack of stored states in a `Vec`, allocated anew for every run. A
//! compiled function runs its checkpointed loops on every call and must not
//! allocate, so this generator (the same algorithm, action for action,
//! tested against it) keeps that stack, one frame per snapshot slot, and a
//! table of binomials in a region of the scratch buffer: memory
//! `O(snapshots)`.
//!
//! The original computes the binomials `β(s, r) = C(s + r, s)` of each split
//! from the frame's own by exact `u128` multiplications and divisions: three
//! or more divisions per advance, which cost about as much as a short
//! forward step. Here `β(s', r')` is a closed form where `min(s', r') <= 2`
//! and otherwise an entry of a table built by Pascal's rule (additions only)
//! when the loop starts, so a split is a few lookups. The table covers
//! `3 <= s' <= s`, `3 <= r' <= r` (`s` snapshots, `r` the repetition
//! number): since `β(s, r - 1) < steps <= 2^32`, it has at most `max(s,
//! 2950)` entries. A frame is then 8 bytes (its state and repetition
//! number; its snapshot count is `s - depth`), so the generator adds 8
//! bytes per snapshot slot plus the table. Frames are never copied whole (a
//! wide load of narrow stores stalls store forwarding). 10^7 steps with 64
//! snapshots generate in 80 ms instead of 250 ms.

use crate::ad::checkpoint::{repetitions, Action};

/// No current state.
const NONE: u32 = u32::MAX;

/// A stored state and the repetition number `r` bounding the range from it
/// still to reverse; the frame at depth `d` has `s - d` snapshots (its own
/// included).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct Frame {
    state: u32,
    r: u32,
}

const SLOT: usize = std::mem::size_of::<f64>();
const FRAME_SLOTS: usize = std::mem::size_of::<Frame>() / SLOT;

/// Entries of the binomial table of a schedule of `s` snapshots and
/// repetition number `r`: `β(s', r')` for `3 <= s' <= s`, `3 <= r' <= r`.
fn table_len(s: u32, r: u32) -> usize {
    s.saturating_sub(2) as usize * r.saturating_sub(2) as usize
}

/// The shape of a schedule and of the region where its generator keeps its
/// state (in `f64` slots from the start: the frames, then the table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Region {
    /// Steps.
    pub steps: u32,
    /// Snapshots used (at most `steps`).
    pub s: u32,
    /// The repetition number.
    pub r: u32,
}

impl Region {
    /// The schedule of `steps >= 1` steps with `snapshots >= 1` snapshots.
    pub fn new(steps: u32, snapshots: u32) -> Region {
        let s = snapshots.min(steps);
        Region {
            steps,
            s,
            r: repetitions(steps, s),
        }
    }

    /// One frame per slot, and the frame the next snapshot pushes.
    fn frames(&self) -> usize {
        self.s as usize + 1
    }

    fn first_entry(&self) -> usize {
        FRAME_SLOTS * self.frames()
    }

    /// Slots of the whole region.
    pub fn len(&self) -> usize {
        self.first_entry() + table_len(self.s, self.r)
    }
}

/// `β(s, r) = C(s + r, s)`: closed forms where `min(s, r) <= 2`, otherwise
/// `table`, whose rows are `s = 3..` and columns `r = 3..3 + stride`.
#[derive(Clone, Copy)]
struct Binomials<'a> {
    table: &'a [u64],
    stride: usize,
}

impl Binomials<'_> {
    #[inline(always)]
    fn beta(&self, s: u32, r: u32) -> u64 {
        let (small, big) = (u64::from(s.min(r)), u64::from(s.max(r)));
        match small {
            0 => 1,
            1 => big + 1,
            // (big + 1)(big + 2) / 2 halving the even factor: fits for every u32 `big`.
            2 => {
                let (a, b) = (big + 1, big + 2);
                if a % 2 == 0 {
                    a / 2 * b
                } else {
                    a * (b / 2)
                }
            }
            _ => self.table[(s as usize - 3) * self.stride + r as usize - 3],
        }
    }
}

/// The schedule's actions, generated on the fly in borrowed memory.
pub(super) struct Generator<'a> {
    /// Steps `end..` are reversed.
    end: u32,
    /// The current state, or [`NONE`].
    current: u32,
    /// Frames in use (slots holding a state).
    depth: u32,
    /// Snapshots of the frame at depth 0.
    s: u32,
    frames: &'a mut [Frame],
    binomials: Binomials<'a>,
}

impl Frame {
    /// `ad::checkpoint`'s `Frame::split` for this frame with `s >= 1`
    /// snapshots: the first advance `m` reversing the `l >= 2` steps from
    /// its state; writes the frame of the rest (state `state + m`, `s - 1`
    /// snapshots) to `rest`. Lowers `r` to the repetition number of `l`
    /// first.
    #[inline(always)]
    fn split(&mut self, l: u32, s: u32, b: Binomials<'_>, rest: &mut Frame) -> u32 {
        let l = u64::from(l);
        let mut r = self.r;
        while b.beta(s, r - 1) >= l {
            r -= 1;
        }
        // β(s, r - 1) < l, so r >= 1 (β(s, -1) = 0 below).
        let b2 = if r >= 2 { b.beta(s, r - 2) } else { 0 };
        let c0 = b.beta(s - 1, r);
        let m = b2.max(l.saturating_sub(c0)).max(1) as u32;
        self.r = r;
        rest.state = self.state + m;
        rest.r = r;
        m
    }
}

impl<'a> Generator<'a> {
    /// The generator of `region`'s schedule, in the region at `mem`.
    ///
    /// # Safety
    ///
    /// `mem` points to `region.len()` slots of `f64` (8-byte aligned),
    /// valid and not otherwise accessed for `'a`.
    unsafe fn at(mem: *mut f64, region: Region) -> Generator<'a> {
        // SAFETY: (the caller's contract) the frames and the table are
        // disjoint parts of the region; `Frame` and `u64` are integers
        // (`repr(C)`, no padding) with alignment at most 8, so any bits
        // are valid values of them.
        let (frames, table) = unsafe {
            (
                std::slice::from_raw_parts_mut(mem as *mut Frame, region.frames()),
                std::slice::from_raw_parts_mut(
                    mem.add(region.first_entry()) as *mut u64,
                    table_len(region.s, region.r),
                ),
            )
        };
        Generator::new(frames, table, region)
    }

    /// The first action of `region`'s schedule comes next. `frames` and
    /// `table` have at least the lengths of the region's.
    fn new(frames: &'a mut [Frame], table: &'a mut [u64], region: Region) -> Self {
        let Region { steps, s, r } = region;
        let stride = r.saturating_sub(2) as usize;
        let table = &mut table[..table_len(s, r)];
        for sp in (3..=s).take_while(|_| r >= 3) {
            for rp in 3..=r {
                let b = Binomials {
                    table: &table[..],
                    stride,
                };
                let entry = b.beta(sp - 1, rp) + b.beta(sp, rp - 1);
                table[(sp as usize - 3) * stride + rp as usize - 3] = entry;
            }
        }
        frames[0] = Frame { state: 0, r };
        Generator {
            end: steps,
            current: 0,
            depth: 0,
            s,
            frames,
            binomials: Binomials { table, stride },
        }
    }
}

impl Iterator for Generator<'_> {
    type Item = Action;

    /// The next action, as `ad::checkpoint::Actions::next`. The frame
    /// `Actions` keeps aside for the next snapshot is `frames[depth]` here,
    /// written by the split before it (or by `new`): every snapshot but
    /// the first follows an advance. Frames are never copied whole.
    #[inline(always)]
    fn next(&mut self) -> Option<Action> {
        if self.end == 0 {
            return None;
        }
        let c = self.current;
        if c == NONE {
            let slot = self.depth - 1; // the frame of state 0 stays until the end
            let state = self.frames[slot as usize].state;
            self.current = state;
            return Some(Action::Restore { slot, state });
        }
        if c + 1 == self.end {
            self.end = c;
            self.current = NONE;
            if self.depth > 0 && self.frames[self.depth as usize - 1].state == c {
                self.depth -= 1;
            }
            return Some(Action::Reverse { step: c });
        }
        let depth = self.depth as usize;
        if depth > 0 && self.frames[depth - 1].state == c {
            let (stored, free) = self.frames.split_at_mut(depth);
            let (top, rest) = (&mut stored[depth - 1], &mut free[0]);
            let s = self.s - (depth as u32 - 1);
            let m = top.split(self.end - c, s, self.binomials, rest);
            self.current = c + m;
            return Some(Action::Advance { from: c, to: c + m });
        }
        self.depth += 1;
        Some(Action::Snapshot {
            slot: depth as u32,
            state: c,
        })
    }
}

/// A checkpointed loop's compiled advance function (`(inputs_head,
/// inputs_tail, params, outputs_head, outputs_tail, scratch, from, to)`:
/// the forward step over iterations `from..to`) or reverse function (the
/// same with `(step, 0)`: reverse iteration `trips - 1 - step`). Each
/// returns 0, or the status of the guard that failed.
pub(super) type PartFn = unsafe extern "C" fn(
    *const f64,
    *const f64,
    *const f64,
    *mut f64,
    *mut f64,
    *mut f64,
    usize,
    usize,
) -> i32;

/// Runs a checkpointed loop by its binomial schedule of `steps` steps, `s`
/// snapshots (at most `steps`) and repetition number `r`: `advance` and
/// `reverse` are its compiled parts, called with the buffers compiled code
/// was called with (`inputs_head` to `scratch`); the current forward state
/// is the `m` values at `current`, the snapshots `m` values each from
/// `snaps`, and the generator's frames and binomial table are at `region`.
/// Returns 0, or the status of the first guard that failed. Called by
/// compiled code.
#[allow(clippy::too_many_arguments)]
pub(super) extern "C" fn tapejit_checkpoint_drive(
    advance: PartFn,
    reverse: PartFn,
    inputs_head: *const f64,
    inputs_tail: *const f64,
    params: *const f64,
    outputs_head: *mut f64,
    outputs_tail: *mut f64,
    scratch: *mut f64,
    region: *mut f64,
    snaps: *mut f64,
    current: *mut f64,
    m: usize,
    steps: usize,
    s: usize,
    r: usize,
) -> i32 {
    let shape = Region {
        steps: steps as u32,
        s: s as u32,
        r: r as u32,
    };
    // SAFETY: compiled code passes the loop's schedule region of
    // `shape.len()` slots (the layout reserved them, for this shape), which
    // nothing else touches while the loop runs: the parts write only the
    // outputs and other slots of scratch (the current state, carried
    // values, arrays).
    let generator = unsafe { Generator::at(region, shape) };
    for action in generator {
        // SAFETY: the buffers and parts are those of the compiled function
        // calling us, with the lengths its caller checked; `current` and
        // the snapshot slots (below `min(snapshots, steps)`, of `m` values)
        // lie in the loop's scratch region, apart from each other.
        let status = unsafe {
            match action {
                Action::Advance { from, to } => advance(
                    inputs_head,
                    inputs_tail,
                    params,
                    outputs_head,
                    outputs_tail,
                    scratch,
                    from as usize,
                    to as usize,
                ),
                Action::Snapshot { slot, .. } => {
                    std::ptr::copy_nonoverlapping(current, snaps.add(slot as usize * m), m);
                    0
                }
                Action::Restore { slot, .. } => {
                    std::ptr::copy_nonoverlapping(snaps.add(slot as usize * m), current, m);
                    0
                }
                Action::Reverse { step } => reverse(
                    inputs_head,
                    inputs_tail,
                    params,
                    outputs_head,
                    outputs_tail,
                    scratch,
                    step as usize,
                    0,
                ),
            }
        };
        if status != 0 {
            return status;
        }
    }
    0
}

/// The driver's symbol.
pub(super) const DRIVE: &str = "tapejit_checkpoint_drive";

/// The runtime functions compiled code calls, as (symbol, address).
pub(super) fn symbols() -> [(&'static str, *const u8); 1] {
    [(DRIVE, tapejit_checkpoint_drive as *const u8)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ad::checkpoint::Schedule;
    use crate::ir::random::Choices;
    use crate::rng::SplitMix64;

    /// Runs the generator in a region of garbage and compares every action
    /// with `Schedule::actions`; returns how many.
    fn same_as_the_reference(steps: u32, snapshots: u32) -> usize {
        let region = Region::new(steps, snapshots);
        let mut mem = vec![f64::from_bits(0xdead_beef_dead_beef); region.len()];
        // SAFETY: `mem` has the region's length and is not borrowed elsewhere.
        let generator = unsafe { Generator::at(mem.as_mut_ptr(), region) };
        let mut reference = Schedule::binomial(steps, snapshots).unwrap().actions();
        let mut count = 0;
        for action in generator {
            let want = reference.next();
            assert_eq!(
                Some(action),
                want,
                "l = {steps}, s = {snapshots}, action #{count}"
            );
            count += 1;
        }
        assert_eq!(reference.next(), None, "l = {steps}, s = {snapshots}");
        count
    }

    #[test]
    fn every_small_schedule_is_the_reference() {
        for l in 1..=120 {
            for s in 1..=12 {
                same_as_the_reference(l, s);
            }
            same_as_the_reference(l, l);
            same_as_the_reference(l, l + 5);
        }
    }

    #[test]
    fn seeded_larger_schedules_are_the_reference() {
        let mut rng = SplitMix64::new(7);
        for _ in 0..40 {
            let l = 1 + rng.below(20_000) as u32;
            let s = 1 + rng.below(80) as u32;
            same_as_the_reference(l, s);
        }
        same_as_the_reference(100_000, 64);
        same_as_the_reference(3000, 1);
    }

    #[test]
    fn binomials_are_exact_and_the_table_small() {
        // Closed forms and table against ad::checkpoint's own count of
        // advances, which uses them: huge schedules, checked on a prefix,
        // with frames for that prefix only.
        for (l, s) in [
            (u32::MAX, u32::MAX),
            (u32::MAX, 1 << 31),
            (u32::MAX, 40),
            (u32::MAX, 3),
        ] {
            let region = Region::new(l, s);
            let mut frames = vec![Frame::default(); 30_000];
            let mut table = vec![0; table_len(region.s, region.r)];
            let generator = Generator::new(&mut frames, &mut table, region);
            let reference = Schedule::binomial(l, s).unwrap().actions();
            for (k, (got, want)) in generator.zip(reference).take(20_000).enumerate() {
                assert_eq!(got, want, "l = {l}, s = {s}, #{k}");
            }
        }
        // The table: at most max(s, 2950) entries for any schedule.
        for s in (1..100).chain([1000, 92_000, 92_681, 100_000, 1 << 20]) {
            for l in [u32::MAX, 1 << 30, 1 << 20, 1000] {
                let region = Region::new(l, s);
                let len = table_len(region.s, region.r);
                assert!(len <= (s as usize).max(2950), "l = {l}, s = {s}: {len}");
            }
        }
    }

    /// Generation speed against the reference (`cargo test --release --lib
    /// jit::schedule -- --ignored --nocapture`).
    #[test]
    #[ignore = "a timing"]
    fn generation_speed() {
        for (l, s) in [(10_000_000, 64), (10_000_000, 1000), (1_000_000, 10)] {
            let t = std::time::Instant::now();
            let reference = Schedule::binomial(l, s).unwrap().actions().count();
            let t_ref = t.elapsed();
            let region = Region::new(l, s);
            let mut mem = vec![0.0; region.len()];
            let t = std::time::Instant::now();
            // SAFETY: `mem` has the region's length and is not borrowed elsewhere.
            let ours = unsafe { Generator::at(mem.as_mut_ptr(), region) }.count();
            let t_ours = t.elapsed();
            assert_eq!(ours, reference);
            println!("l = {l}, s = {s}: {ours} actions, reference {t_ref:.2?}, ours {t_ours:.2?}");
        }
    }
}
