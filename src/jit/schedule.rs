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
//! forward step. Here a table of `β(s', r')` for `s' <= s`, `r' <= r` (the
//! schedule's snapshots and repetition number; Pascal's rule, additions
//! only) is built when the loop starts, and a split is a few lookups. The
//! table is used when it has at most `max(16 (s + 1), 4096)` entries, so the
//! memory stays `O(snapshots)`; otherwise (few snapshots and very many
//! repetitions, where advances dominate anyway) the frames carry their
//! binomial and split by the original arithmetic, in `u64` whenever every
//! product fits. With frames never copied whole (a wide load of narrow
//! stores stalls store forwarding), 10^7 steps with 64 snapshots generate
//! in 80 ms instead of 250 ms.

use crate::ad::checkpoint::{repetitions, Action};

/// No current state.
const NONE: u32 = u32::MAX;

/// A stored state and the range from it still to reverse, with `s`
/// snapshots (its own included) and repetition number at most `r`; without
/// a table, also `beta = β(s, r) >= end - state` (two `u64` halves, low
/// first).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct Frame {
    state: u32,
    s: u32,
    r: u32,
    pad: u32,
    beta: [u64; 2],
}

const SLOT: usize = std::mem::size_of::<f64>();
const FRAME_SLOTS: usize = std::mem::size_of::<Frame>() / SLOT;

/// The binomial table of a schedule of `steps` steps with `snapshots`
/// snapshots: its row length (`r + 1`) and rows (`s + 1`), if it is used.
fn table_shape(steps: u32, snapshots: u32) -> Option<(usize, usize)> {
    let s = snapshots.min(steps);
    let rows = s as usize + 1;
    if s >= 1 << 24 {
        return None; // every binomial of a used table is below 2^32 (s + r) <= 2^57
    }
    let stride = repetitions(steps, s) as usize + 1;
    (stride * rows <= (16 * rows).max(4096)).then_some((stride, rows))
}

/// Where the generator of a loop of `steps` steps with `snapshots`
/// snapshots keeps its state, in `f64` slots from the start of its region:
/// the frames, then the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Region {
    frames: usize,
    table: usize,
}

impl Region {
    pub fn new(steps: u32, snapshots: u32) -> Region {
        let table = table_shape(steps, snapshots).map_or(0, |(stride, rows)| stride * rows);
        Region::with_table(steps, snapshots, table)
    }

    /// The region of `Region::new(steps, snapshots)`, given its table
    /// length (cheap: no binomials).
    fn with_table(steps: u32, snapshots: u32, table: usize) -> Region {
        Region {
            // One per slot, and the frame the next snapshot pushes.
            frames: steps.min(snapshots) as usize + 1,
            table,
        }
    }

    /// Entries of the binomial table (0 without one).
    pub fn table(&self) -> usize {
        self.table
    }

    fn first_entry(&self) -> usize {
        FRAME_SLOTS * self.frames
    }

    /// Slots of the whole region.
    pub fn len(&self) -> usize {
        self.first_entry() + self.table
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
    /// Row length of the binomial table (`r + 1`), 0 without one.
    stride: u32,
    frames: &'a mut [Frame],
    /// `table[s' * stride + r'] = β(s', r')`, or unused.
    table: &'a mut [u64],
}

fn beta_of(f: &Frame) -> u128 {
    u128::from(f.beta[0]) | u128::from(f.beta[1]) << 64
}

fn halves(beta: u128) -> [u64; 2] {
    [beta as u64, (beta >> 64) as u64]
}

/// `min(C(s + r, s), cap)` (see `ad::checkpoint`).
fn beta_capped(s: u32, r: u32, cap: u128) -> u128 {
    let (n, k) = (u128::from(s.max(r)), u128::from(s.min(r)));
    let mut acc = 1;
    for i in 1..=k {
        acc = acc * (n + i) / i;
        if acc >= cap {
            return cap;
        }
    }
    acc
}

/// `β(s, r)` for `r >= 1` the repetition number of some `l <= 2^32`.
fn beta_above(s: u32, r: u32) -> u128 {
    let below = beta_capped(s, r - 1, 1 << 33);
    below * (u128::from(s) + u128::from(r)) / u128::from(r)
}

/// The split of `ad::checkpoint` in the integer type `T`, which must hold
/// `beta * (s + r)`: returns `m`, and the frame's new `r` and `beta` and
/// the rest's `beta`.
macro_rules! split_in {
    ($t:ty, $l:expr, $s:expr, $r:expr, $beta:expr) => {{
        let (l, s, mut r, mut beta) = ($l as $t, $s as $t, $r, $beta as $t);
        // β(s, r - 1), lowering r to the repetition number of l first.
        let b1 = loop {
            let below = beta * r as $t / (s + r as $t);
            if below < l {
                break below;
            }
            beta = below;
            r -= 1;
        };
        let rr = r as $t; // >= 1 since l >= 2
        let b2 = b1 * (rr - 1) / (s + rr - 1); // β(s, r - 2)
        let c0 = beta - b1; // β(s - 1, r), by Pascal's rule
        let rest = if l > c0 { l - c0 } else { 0 };
        let m = b2.max(rest).max(1);
        (m as u32, r, beta as u128, c0 as u128)
    }};
}

impl Frame {
    /// `ad::checkpoint`'s `Frame::split`: the first advance reversing the
    /// `l >= 2` steps from this state, with the frame of the rest written to
    /// `rest`, by the frame's own binomial.
    fn split_by_arithmetic(&mut self, l: u32, rest: &mut Frame) -> u32 {
        let beta = beta_of(self);
        let width = self.s as u64 + self.r as u64;
        let fits =
            beta >> 64 == 0 && (128 - beta.leading_zeros()) + (64 - width.leading_zeros()) <= 64;
        let (m, r, beta, c0) = if fits {
            split_in!(u64, l, self.s, self.r, beta)
        } else {
            split_in!(u128, l, self.s, self.r, beta)
        };
        self.r = r;
        self.beta = halves(beta);
        rest.state = self.state + m;
        rest.s = self.s - 1;
        rest.r = r;
        rest.beta = halves(c0);
        m
    }

    /// The same split by table lookups (`table[s' * stride + r'] = β(s', r')`).
    #[inline(always)]
    fn split_by_table(&mut self, l: u32, table: &[u64], stride: usize, rest: &mut Frame) -> u32 {
        let l = u64::from(l);
        let row = self.s as usize * stride;
        let mut r = self.r as usize;
        while table[row + r - 1] >= l {
            r -= 1;
        }
        let b1 = table[row + r - 1]; // β(s, r - 1) < l, so r >= 1
        let b2 = if r >= 2 { table[row + r - 2] } else { 0 }; // β(s, r - 2)
        let c0 = table[row - stride + r]; // β(s - 1, r)
        debug_assert!(b2 <= b1);
        let m = b2.max(l.saturating_sub(c0)).max(1) as u32;
        self.r = r as u32;
        rest.state = self.state + m;
        rest.s = self.s - 1;
        rest.r = r as u32;
        m
    }
}

impl<'a> Generator<'a> {
    /// The generator in the region at `mem`, laid out as `region`.
    ///
    /// # Safety
    ///
    /// `mem` points to `region.len()` slots of `f64` (8-byte aligned),
    /// valid and not otherwise accessed for `'a`.
    unsafe fn at(mem: *mut f64, region: Region, steps: u32, snapshots: u32) -> Generator<'a> {
        // SAFETY: (the caller's contract) the frames and the table are
        // disjoint parts of the region; `Frame` and `u64` are `repr(C)`
        // integers without implicit padding and with alignment at most 8,
        // so any bits are valid values of them.
        let (frames, table) = unsafe {
            (
                std::slice::from_raw_parts_mut(mem as *mut Frame, region.frames),
                std::slice::from_raw_parts_mut(
                    mem.add(region.first_entry()) as *mut u64,
                    region.table,
                ),
            )
        };
        Generator::new(frames, table, steps, snapshots)
    }

    /// The first action of the schedule of `steps >= 1` steps with
    /// `snapshots >= 1` snapshots comes next. `frames` has room for
    /// `min(steps, snapshots) + 1`; the binomial table is built in `table`
    /// if the schedule uses one and it fits (as in its [`Region`]; without
    /// room, the frames carry their binomials).
    fn new(frames: &'a mut [Frame], table: &'a mut [u64], steps: u32, snapshots: u32) -> Self {
        let s = snapshots.min(steps);
        let r = repetitions(steps, s);
        let shape = table_shape(steps, snapshots).filter(|(w, h)| w * h <= table.len());
        let stride = match shape {
            Some((stride, rows)) => {
                let table = &mut table[..stride * rows];
                for sp in 0..rows {
                    for rp in 0..stride {
                        table[sp * stride + rp] = if sp == 0 || rp == 0 {
                            1
                        } else {
                            table[(sp - 1) * stride + rp] + table[sp * stride + rp - 1]
                        };
                    }
                }
                stride as u32
            }
            None => 0,
        };
        frames[0] = Frame {
            state: 0,
            s,
            r,
            pad: 0,
            beta: halves(match (stride, r) {
                (0, 0) => 1,
                (0, _) => beta_above(s, r),
                _ => 0,
            }),
        };
        Generator {
            end: steps,
            current: 0,
            depth: 0,
            stride,
            frames,
            table,
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
            let l = self.end - c;
            let m = match self.stride {
                0 => top.split_by_arithmetic(l, rest),
                stride => top.split_by_table(l, self.table, stride as usize, rest),
            };
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

/// Runs a checkpointed loop by its binomial schedule of `steps` steps and
/// `snapshots` snapshots: `advance` and `reverse` are its compiled parts,
/// called with the buffers compiled code was called with (`inputs_head` to
/// `scratch`); the current forward state is the `m` values at `current`,
/// the snapshots `m` values each from `snaps`, and the generator's frames
/// and binomial table (`table` entries) are at `region`. Returns 0, or the
/// status of the first guard that failed. Called by compiled code.
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
    snapshots: usize,
    table: usize,
) -> i32 {
    let (steps, snapshots) = (steps as u32, snapshots as u32);
    let layout = Region::with_table(steps, snapshots, table);
    // SAFETY: compiled code passes the loop's schedule region of
    // `layout.len()` slots (the layout reserved them), which nothing else
    // touches while the loop runs: the parts write only the outputs and
    // other slots of scratch (the current state, carried values, arrays).
    let generator = unsafe { Generator::at(region, layout, steps, snapshots) };
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
    fn same_as_the_reference_in(region: Region, steps: u32, snapshots: u32) -> usize {
        let mut mem = vec![f64::from_bits(0xdead_beef_dead_beef); region.len()];
        // SAFETY: `mem` has the region's length and is not borrowed elsewhere.
        let generator = unsafe { Generator::at(mem.as_mut_ptr(), region, steps, snapshots) };
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

    /// With the binomial table and without (the frames' own arithmetic).
    fn same_as_the_reference(steps: u32, snapshots: u32) -> usize {
        let with_table = same_as_the_reference_in(Region::new(steps, snapshots), steps, snapshots);
        let without = Region::with_table(steps, snapshots, 0);
        assert_eq!(
            same_as_the_reference_in(without, steps, snapshots),
            with_table
        );
        with_table
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
    fn the_wide_arithmetic_agrees_where_binomials_exceed_64_bits() {
        // `beta * (s + r)` beyond 2^64 needs billions of snapshots: checked
        // on a prefix of the schedule, with frames for that prefix only.
        for (l, s) in [(u32::MAX, u32::MAX), (u32::MAX, 1 << 31), (u32::MAX, 40)] {
            let mut frames = vec![Frame::default(); 30_000];
            let generator = Generator::new(&mut frames, &mut [], l, s);
            let reference = Schedule::binomial(l, s).unwrap().actions();
            for (k, (got, want)) in generator.zip(reference).take(20_000).enumerate() {
                assert_eq!(got, want, "l = {l}, s = {s}, #{k}");
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
            let ours = unsafe { Generator::at(mem.as_mut_ptr(), region, l, s) }.count();
            let t_ours = t.elapsed();
            assert_eq!(ours, reference);
            println!("l = {l}, s = {s}: {ours} actions, reference {t_ref:.2?}, ours {t_ours:.2?}");
        }
    }
}
