//! The binomial checkpointing schedule of [`crate::ad::checkpoint`],
//! generated lazily into memory that compiled code owns.
//!
//! [`Schedule::actions`](crate::ad::checkpoint::Schedule::actions) keeps its
//! stack of stored states in a `Vec`, allocated anew for every run. Compiled
//! code runs a checkpointed loop on every call and must not allocate, so
//! this generator keeps the same state (the same algorithm, action for
//! action, tested against it) in a region of the scratch buffer: a header,
//! a buffer of encoded actions that [`tapejit_checkpoint_fill`] refills in
//! batches of up to [`BATCH`] (the code calls out once per batch, not once
//! per action), one frame per snapshot slot, and a table of binomials.
//!
//! The original computes the binomials `β(s, r) = C(s + r, s)` of each split
//! from the frame's own by exact `u128` multiplications and divisions: three
//! or more divisions per advance, which cost more than a short forward
//! step. Here a table of `β(s', r')` for `s' <= s`, `r' <= r` (the schedule's
//! snapshots and repetition number; Pascal's rule, additions only) is built
//! when the loop starts, and a split is a few lookups. The table is used
//! when it has at most `max(16 (s + 1), 4096)` entries, so the memory stays
//! `O(snapshots)`; otherwise (few snapshots and very many repetitions, where
//! advances dominate anyway) the frames carry their binomial and split by
//! the original arithmetic, in `u64` whenever every product fits.

use crate::ad::checkpoint::{repetitions, Action};

/// Actions generated per call of [`tapejit_checkpoint_fill`].
pub(super) const BATCH: usize = 256;

/// Encoded action kinds (see [`Encoded`]).
pub(super) const ADVANCE: u32 = 0;
pub(super) const SNAPSHOT: u32 = 1;
pub(super) const RESTORE: u32 = 2;
pub(super) const REVERSE: u32 = 3;

/// No current state.
const NONE: u32 = u32::MAX;

/// One action as the compiled code reads it: `kind` ([`ADVANCE`]...), then
/// `Advance { from: a, to: b }`, `Snapshot { slot: a }`, `Restore { slot: a }`
/// or `Reverse { step: a }`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Encoded {
    pub kind: u32,
    pub a: u32,
    pub b: u32,
    pad: u32,
}

/// Byte offsets of the fields of [`Encoded`], and its size.
pub(super) const ENCODED_A: i32 = 4;
pub(super) const ENCODED_B: i32 = 8;
pub(super) const ENCODED_BYTES: i64 = 16;

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

/// The generator's scalar state.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct Head {
    /// Steps `end..` are reversed.
    end: u32,
    /// The current state, or [`NONE`].
    current: u32,
    /// Frames in use (slots holding a state).
    depth: u32,
    /// Row length of the binomial table (`r + 1`), 0 without one.
    stride: u32,
}

const SLOT: usize = std::mem::size_of::<f64>();
const HEAD_SLOTS: usize = std::mem::size_of::<Head>() / SLOT;
const FRAME_SLOTS: usize = std::mem::size_of::<Frame>() / SLOT;
const ENCODED_SLOTS: usize = std::mem::size_of::<Encoded>() / SLOT;

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
/// the header, the action buffer, the frames, the table.
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

    /// Slot of the first encoded action.
    pub fn buffer(&self) -> usize {
        HEAD_SLOTS
    }

    fn first_frame(&self) -> usize {
        self.buffer() + ENCODED_SLOTS * BATCH
    }

    fn first_entry(&self) -> usize {
        self.first_frame() + FRAME_SLOTS * self.frames
    }

    /// Slots of the whole region.
    pub fn len(&self) -> usize {
        self.first_entry() + self.table
    }
}

/// The generator over its memory.
pub(super) struct Generator<'a> {
    head: &'a mut Head,
    frames: &'a mut [Frame],
    /// `table[s' * stride + r'] = β(s', r')`, or empty.
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
    /// The generator whose memory is `mem`, laid out as `region`, and its
    /// action buffer.
    ///
    /// # Safety
    ///
    /// `mem` points to `region.len()` slots of `f64` (8-byte aligned),
    /// valid and not otherwise accessed for `'a`.
    unsafe fn at(mem: *mut f64, region: Region) -> (Generator<'a>, &'a mut [Encoded]) {
        // SAFETY: (the caller's contract) the pieces are disjoint parts of
        // the region; `Head`, `Frame`, `Encoded` and `u64` are `repr(C)`
        // integers without implicit padding and with alignment at most 8,
        // so any bits are valid values of them.
        unsafe {
            let head = &mut *(mem as *mut Head);
            let buffer =
                std::slice::from_raw_parts_mut(mem.add(region.buffer()) as *mut Encoded, BATCH);
            let frames = std::slice::from_raw_parts_mut(
                mem.add(region.first_frame()) as *mut Frame,
                region.frames,
            );
            let table = std::slice::from_raw_parts_mut(
                mem.add(region.first_entry()) as *mut u64,
                region.table,
            );
            (
                Generator {
                    head,
                    frames,
                    table,
                },
                buffer,
            )
        }
    }

    /// Restarts at the first action of the schedule of `steps >= 1` steps
    /// with `snapshots >= 1` snapshots, building the binomial table if the
    /// schedule uses one and it fits in `self.table` (as in its region;
    /// without room, the frames carry their binomials).
    fn start(&mut self, steps: u32, snapshots: u32) {
        let s = snapshots.min(steps);
        let r = repetitions(steps, s);
        let shape = table_shape(steps, snapshots).filter(|(w, h)| w * h <= self.table.len());
        let stride = match shape {
            Some((stride, rows)) => {
                let table = &mut self.table[..stride * rows];
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
        *self.head = Head {
            end: steps,
            current: 0,
            depth: 0,
            stride,
        };
        self.frames[0] = Frame {
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
    }

    /// The next action, as `ad::checkpoint::Actions::next`.
    #[cfg(test)]
    fn next_action(&mut self) -> Option<Action> {
        next_action(self.head, self.frames, self.table)
    }

    /// Writes the next actions to `out`, as many as fit; returns how many
    /// (0 once the schedule is done).
    fn fill(&mut self, out: &mut [Encoded]) -> usize {
        // A local copy of the head stays in registers.
        let mut head = *self.head;
        let mut n = out.len();
        for (k, slot) in out.iter_mut().enumerate() {
            let Some(action) = next_action(&mut head, self.frames, self.table) else {
                n = k;
                break;
            };
            *slot = match action {
                Action::Advance { from, to } => encode(ADVANCE, from, to),
                Action::Snapshot { slot, .. } => encode(SNAPSHOT, slot, 0),
                Action::Restore { slot, .. } => encode(RESTORE, slot, 0),
                Action::Reverse { step } => encode(REVERSE, step, 0),
            };
        }
        *self.head = head;
        n
    }
}

/// The next action of the generator with this head, frames and table, as
/// `ad::checkpoint::Actions::next`. The frame `Actions` keeps aside for the
/// next snapshot is `frames[depth]` here, written by the split before it (or
/// by `start`): every snapshot but the first follows an advance. Frames are
/// never copied whole (a wide load of narrow stores stalls store forwarding).
#[inline(always)]
fn next_action(head: &mut Head, frames: &mut [Frame], table: &[u64]) -> Option<Action> {
    if head.end == 0 {
        return None;
    }
    let c = head.current;
    if c == NONE {
        let slot = head.depth - 1; // the frame of state 0 stays until the end
        let state = frames[slot as usize].state;
        head.current = state;
        return Some(Action::Restore { slot, state });
    }
    if c + 1 == head.end {
        head.end = c;
        head.current = NONE;
        if head.depth > 0 && frames[head.depth as usize - 1].state == c {
            head.depth -= 1;
        }
        return Some(Action::Reverse { step: c });
    }
    let depth = head.depth as usize;
    if depth > 0 && frames[depth - 1].state == c {
        let (stored, free) = frames.split_at_mut(depth);
        let (top, rest) = (&mut stored[depth - 1], &mut free[0]);
        let l = head.end - c;
        let m = match head.stride {
            0 => top.split_by_arithmetic(l, rest),
            stride => top.split_by_table(l, table, stride as usize, rest),
        };
        head.current = c + m;
        return Some(Action::Advance { from: c, to: c + m });
    }
    head.depth += 1;
    Some(Action::Snapshot {
        slot: depth as u32,
        state: c,
    })
}

fn encode(kind: u32, a: u32, b: u32) -> Encoded {
    Encoded { kind, a, b, pad: 0 }
}

/// Starts the schedule of `steps` steps and `snapshots` snapshots in the
/// region at `mem`, `Region::new(steps, snapshots)` whose table has `table`
/// entries. Called by compiled code.
pub(super) extern "C" fn tapejit_checkpoint_start(
    mem: *mut f64,
    steps: u32,
    snapshots: u32,
    table: u32,
) {
    let region = Region::with_table(steps, snapshots, table as usize);
    // SAFETY: compiled code passes its scratch region for this loop, of
    // `region.len()` slots (the layout reserved them), which nothing else
    // touches during the call.
    let (mut generator, _) = unsafe { Generator::at(mem, region) };
    generator.start(steps, snapshots);
}

/// Writes the next batch of actions to the buffer of the region at `mem`
/// (as in [`tapejit_checkpoint_start`], which must have started it) and
/// returns how many (0: done). Called by compiled code.
pub(super) extern "C" fn tapejit_checkpoint_fill(
    mem: *mut f64,
    steps: u32,
    snapshots: u32,
    table: u32,
) -> u32 {
    let region = Region::with_table(steps, snapshots, table as usize);
    // SAFETY: as in `tapejit_checkpoint_start`.
    let (mut generator, buffer) = unsafe { Generator::at(mem, region) };
    generator.fill(buffer) as u32
}

/// The runtime functions compiled code calls, as (symbol, address).
pub(super) const START: &str = "tapejit_checkpoint_start";
pub(super) const FILL: &str = "tapejit_checkpoint_fill";

pub(super) fn symbols() -> [(&'static str, *const u8); 2] {
    [
        (START, tapejit_checkpoint_start as *const u8),
        (FILL, tapejit_checkpoint_fill as *const u8),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ad::checkpoint::Schedule;
    use crate::ir::random::Choices;
    use crate::rng::SplitMix64;

    /// Runs the generator in a buffer of garbage, batch by batch, and
    /// compares every action with `Schedule::actions`.
    fn same_as_the_reference(steps: u32, snapshots: u32) -> usize {
        let with_table = same_as_the_reference_in(Region::new(steps, snapshots), steps, snapshots);
        let without = Region::with_table(steps, snapshots, 0);
        assert_eq!(
            same_as_the_reference_in(without, steps, snapshots),
            with_table
        );
        with_table
    }

    fn same_as_the_reference_in(region: Region, steps: u32, snapshots: u32) -> usize {
        let mut mem = vec![f64::from_bits(0xdead_beef_dead_beef); region.len()];
        let mut reference = Schedule::binomial(steps, snapshots).unwrap().actions();
        tapejit_checkpoint_start(mem.as_mut_ptr(), steps, snapshots, region.table() as u32);
        let mut count = 0;
        loop {
            let n =
                tapejit_checkpoint_fill(mem.as_mut_ptr(), steps, snapshots, region.table() as u32)
                    as usize;
            // SAFETY: `mem` has the region's length and is not borrowed elsewhere.
            let (_, buffer) = unsafe { Generator::at(mem.as_mut_ptr(), region) };
            for e in &buffer[..n] {
                let want = reference.next().expect("the reference goes on");
                let (kind, a, b) = match want {
                    Action::Advance { from, to } => (ADVANCE, from, to),
                    Action::Snapshot { slot, .. } => (SNAPSHOT, slot, 0),
                    Action::Restore { slot, .. } => (RESTORE, slot, 0),
                    Action::Reverse { step } => (REVERSE, step, 0),
                };
                assert_eq!(
                    (e.kind, e.a, e.b),
                    (kind, a, b),
                    "l = {steps}, s = {snapshots}, action #{count}"
                );
                count += 1;
            }
            if n < BATCH {
                break;
            }
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
    fn the_wide_arithmetic_agrees_where_binomials_exceed_64_bits() {
        // `beta * (s + r)` beyond 2^64 needs billions of snapshots: checked
        // on a prefix of the schedule, with frames for that prefix only.
        for (l, s) in [(u32::MAX, u32::MAX), (u32::MAX, 1 << 31), (u32::MAX, 40)] {
            let mut head = Head::default();
            let mut frames = vec![Frame::default(); 30_000];
            let mut generator = Generator {
                head: &mut head,
                frames: &mut frames,
                table: &mut [],
            };
            generator.start(l, s);
            let reference = Schedule::binomial(l, s).unwrap().actions();
            for (k, want) in reference.take(20_000).enumerate() {
                assert_eq!(
                    generator.next_action(),
                    Some(want),
                    "l = {l}, s = {s}, #{k}"
                );
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
            tapejit_checkpoint_start(mem.as_mut_ptr(), l, s, region.table() as u32);
            let mut ours = 0;
            loop {
                let n =
                    tapejit_checkpoint_fill(mem.as_mut_ptr(), l, s, region.table() as u32) as usize;
                ours += n;
                if n == 0 {
                    break;
                }
            }
            let t_ours = t.elapsed();
            assert_eq!(ours, reference);
            println!(
                "l = {l}, s = {s}: {ours} actions, reference {t_ref:.2?}, batched {t_ours:.2?}"
            );
        }
    }
}
