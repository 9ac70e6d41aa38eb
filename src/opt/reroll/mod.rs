//! Automatic rerolling: segments of a tape that repeat with the same shape
//! become loops.
//!
//! Tracing unrolls every Rust loop, so `rosenbrock(n)` is a tape of about
//! `8n` instructions. [`reroll`] finds segments that repeat with the same
//! instruction shape, whose operands in every iteration are
//!
//! - values of the same iteration (the same offset into it),
//! - loop-carried values (the previous iteration's value at a fixed
//!   offset; in the first iteration, any value before the segment: the
//!   initial value),
//! - invariants (the same value before the segment in every iteration;
//!   constants are emitted in the body),
//! - strided reads: an `input`, `param` or array element whose index is
//!   affine in the iteration number (an array element being a value of an
//!   earlier rolled loop, which writes it to an array),
//!
//! and rolls them into [`Loop`](crate::ir::Loop)s. The rolled tape runs the
//! same operations in the same order, so every output is bitwise equal to
//! the unrolled tape's for every input (NaN, infinities and `-0.0`
//! included), and it fails on the same inputs (guards are never rolled).
//!
//! Values of a rolled segment used after it are recovered from the last
//! iteration's carried values (`loopout`), or written to a new array each
//! iteration and read back with `elem` (or by a later loop's strided read);
//! root outputs that are consecutive elements of such an array become an
//! array slice.
//!
//! Loops nest: a new loop's body is rerolled itself (an inner repeated
//! structure becomes an inner loop whose reads are affine in both
//! indices), and every level is rerolled in rounds until nothing changes,
//! so loops made in one round can be the repeated units of the next: two
//! loop instructions match when their nests are equal up to access offsets
//! affine in the iteration and up to per-iteration scratch arrays (arrays
//! written and read within one iteration, which then share the first
//! iteration's array).
//!
//! # Algorithm and complexity
//!
//! Per level and round, with `n` instructions (leaves first: `input`,
//! `param` and `const` are pure and are hoisted to the front, so constants
//! written at first use do not break periods):
//!
//! 1. keys and rolling hashes of windows of 2, 8 and 32 keys: candidate
//!    periods from the nearest earlier equal window, O(n) expected;
//! 2. for a position whose window recurs at the same distance twice, the
//!    maximal run of locally matching positions for that period: each
//!    position is scanned at most once per period;
//! 3. the loop boundary with the fewest live values, precise matching of
//!    the iterations (O(run length)), the plan for values used after, and a
//!    cost check: the loop (one instruction, its body's slots, constants
//!    and instructions) must be shorter than the segment and have at least
//!    [`RerollConfig::min_trips`] iterations (the `elem`s recovering values
//!    used after it are not counted: output slices and later loops absorb
//!    them);
//! 4. largest coverage first among overlapping candidates (outer loops
//!    before the inner ones they contain, which the body's own rerolling
//!    finds; a candidate reading an array written in another's segment
//!    conflicts with it too, as rolling that one makes the array scratch),
//!    O(c log c) for c candidates, then one O(n) rebuild.
//!
//! So a round is O(n · p) where p is the number of distinct candidate
//! periods scanned at a position (3 window lengths; in practice a few);
//! bodies are rerolled recursively (their total size is at most the tape's
//! divided by the trips), and a level takes at most
//! [`RerollConfig::max_rounds`] rounds (in practice the nesting depth plus
//! one). Dead code is removed at the end, unused arrays are dropped, and if
//! the result were longer than the input the input is returned unchanged.
//! Rerolling `rosenbrock(n)` takes time linear in `n`: about 100 ns per
//! instruction in a release build (n = 10^3 in 0.9 ms, 10^6 with 9 million
//! instructions in 1.0 s, verification of the input included).
//!
//! # What is not rolled
//!
//! - Guards and `store` instructions (a failing guard inside a body would
//!   be reported by its body's numbering), and anything touching an array
//!   written by a `store`, by an accumulating write or by more than one loop.
//! - A segment whose loop instruction is used after it (a `loopout` after
//!   the segment), or whose loop units write arrays read after it (only
//!   per-iteration scratch arrays are shared; arrays of the input tape never).
//! - An iteration that differs (a constant, a stride, an operand): the
//!   segment ends before it and a new one may start after it; in the same
//!   way a first iteration written differently (`if i == 0 { t } else
//!   { s + t }`) stays before the loop.
//! - The boundary of an iteration is a heuristic (fewest live values); when
//!   it is badly placed the loop still is exact but may have a trip fewer.

mod build;
mod classify;
mod detect;
mod level;
mod nest;
mod tidy;

use super::{dce, rewrite};
use crate::error::Result;
use crate::ir::{Access, Buffer, Tape};
use level::{Ctx, Shared};
use std::time::Instant;

/// Settings of [`reroll_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RerollConfig {
    /// Fewest iterations a loop must have (default 4). Smaller repeats stay
    /// unrolled; a loop must also save static instructions.
    pub min_trips: usize,
    /// Rounds per level at most (default 16).
    pub max_rounds: usize,
}

impl Default for RerollConfig {
    fn default() -> Self {
        RerollConfig {
            min_trips: 4,
            max_rounds: 16,
        }
    }
}

/// One loop of a rerolled tape, for reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoopReport {
    /// Nesting depth (1 for a loop of the root tape).
    pub depth: usize,
    /// Iterations.
    pub trips: u32,
    /// Static instructions of its body (nested bodies included).
    pub body_len: usize,
}

/// What [`reroll_with_stats`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RerollStats {
    /// Static instructions before ([`Tape::static_len`]).
    pub before: usize,
    /// Static instructions after.
    pub after: usize,
    /// Every loop of the result, outer before inner, in tape order.
    pub loops: Vec<LoopReport>,
    /// Seconds it took.
    pub seconds: f64,
}

impl RerollStats {
    /// Deepest loop nesting of the result (0 without loops).
    pub fn max_depth(&self) -> usize {
        self.loops.iter().map(|l| l.depth).max().unwrap_or(0)
    }
}

/// Rolls repeated segments of `tape` into loops (see the module
/// documentation), verifying the tape first. The result is bitwise
/// equal to `tape` on every output for every input.
pub fn reroll(tape: &Tape) -> Result<Tape> {
    tape.verify()?;
    Ok(reroll_verified(tape))
}

/// [`reroll`], with what it did.
pub fn reroll_with_stats(tape: &Tape) -> Result<(Tape, RerollStats)> {
    reroll_with(tape, &RerollConfig::default())
}

/// [`reroll`] with settings, and what it did.
pub fn reroll_with(tape: &Tape, config: &RerollConfig) -> Result<(Tape, RerollStats)> {
    tape.verify()?;
    let t0 = Instant::now();
    let out = run(tape, config);
    let mut stats = RerollStats {
        before: tape.static_len(),
        after: out.static_len(),
        loops: Vec::new(),
        seconds: t0.elapsed().as_secs_f64(),
    };
    report(&out, 1, &mut stats.loops);
    Ok((out, stats))
}

/// [`reroll`] for a tape known to verify.
pub(crate) fn reroll_verified(tape: &Tape) -> Tape {
    run(tape, &RerollConfig::default())
}

fn run(tape: &Tape, config: &RerollConfig) -> Tape {
    // A checkpointed tape is a derived one whose loops are already rolled.
    if !tape.checkpoints().is_empty() {
        return tape.clone();
    }
    let mut shared = Shared::new(tape, config.min_trips.max(2), config.max_rounds);
    let slot_addr = (0..tape.n_inputs())
        .map(|i| {
            Some(Access {
                buffer: Buffer::Input,
                offset: i as i64,
                strides: Vec::new(),
            })
        })
        .collect();
    let mut ctx = Ctx {
        depth: 0,
        slot_addr,
        shared: &mut shared,
    };
    let rolled = reroll_level(tape, &mut ctx);
    let sliced = tidy::slice_outputs(&rolled, &shared);
    let out = tidy::compact_arrays(rewrite::deep(dce::dce, &sliced));
    debug_assert!(out.verify().is_ok(), "{:?}", out.verify());
    // Loops whose per-iteration values no later loop absorbed may not pay.
    // (`>=`: a loop that saves nothing is not worth having.)
    if out.static_len() >= tape.static_len() {
        return tape.clone();
    }
    out
}

/// Rerolls one level (a root tape or a new loop body) in rounds, until a
/// round finds nothing.
fn reroll_level(tape: &Tape, ctx: &mut Ctx<'_>) -> Tape {
    let mut current = level::hoist(tape);
    for _ in 0..ctx.shared.max_rounds {
        let next = {
            let level = level::Level::new(&current, ctx);
            let chosen = detect::select(&level, detect::candidates(&level, ctx.shared));
            if chosen.is_empty() {
                break;
            }
            build::build(&level, &chosen, ctx)
        };
        current = next;
    }
    current
}

fn report(tape: &Tape, depth: usize, out: &mut Vec<LoopReport>) {
    for lp in tape.loops() {
        out.push(LoopReport {
            depth,
            trips: lp.trips,
            body_len: lp.body.static_len(),
        });
        report(&lp.body, depth + 1, out);
    }
}

#[cfg(test)]
mod tests;
