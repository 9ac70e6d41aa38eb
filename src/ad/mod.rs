//! Derivatives as tape transformations.
//!
//! [`reverse`] turns a tape into its adjoint tape (value and gradient in one
//! fused sweep), [`forward`] into its tangent tape (value and JVP). Both
//! results are ordinary tapes, so they are evaluated, optimized, compiled and
//! differentiated again like any other: the HVP tape is
//! `forward(reverse(f))`.

mod budget;
pub mod checkpoint;
mod emit;
pub mod forward;
mod hazards;
mod loops;
mod loops_forward;
// Private: the public entry points below refuse the tapes it gets wrong.
mod reverse;
mod rules;
mod segments;

pub use budget::{MemoryBudget, DEFAULT_BUDGET_BYTES};
pub(crate) use hazards::refuse_hazards;
pub use hazards::reverse_hazard;
pub use reverse::Seed;
pub use segments::SegmentPlan;

use crate::error::{Error, Result};
use crate::ir::{Op, Tape};
use std::ops::Range;

/// Checks what every transform assumes: a verified tape, and `wrt` a range
/// of its inputs.
fn check(tape: &Tape, wrt: &Range<usize>) -> Result<()> {
    tape.verify()?;
    if !tape.checkpoints().is_empty() {
        return Err(Error::Unsupported(
            "the transforms do not go through checkpointed loops: differentiate the tape \
             derived with an unlimited memory budget instead"
                .into(),
        ));
    }
    if wrt.start > wrt.end || wrt.end > tape.n_inputs() {
        return Err(Error::Unsupported(format!(
            "cannot differentiate with respect to inputs {wrt:?}: the tape has {} inputs",
            tape.n_inputs()
        )));
    }
    Ok(())
}

/// [`check`], for the transforms that do not handle loops and arrays yet.
fn check_straight(tape: &Tape, wrt: &Range<usize>) -> Result<()> {
    check(tape, wrt)?;
    if tape.has_structure() {
        return Err(Error::Unsupported(
            "forward mode does not handle loops or arrays yet".into(),
        ));
    }
    Ok(())
}

/// The adjoint tape of `tape` with respect to the inputs in `wrt`.
///
/// Its instructions start with `tape`'s own (the forward sweep, unchanged
/// but for loops also storing what their reverse needs), followed by the
/// reverse sweep. Inputs: `tape`'s inputs, then (for [`Seed::Inputs`]) one
/// weight per output number. Outputs: `tape`'s outputs, then the adjoint of
/// each input in `wrt` (an array slice when loops read the inputs).
///
/// Verifies `tape` first, and refuses (`Error::Unsupported`) a tape it
/// would differentiate wrongly ([`reverse_hazard`]).
pub fn reverse(tape: &Tape, wrt: Range<usize>, seed: Seed) -> Result<Tape> {
    check(tape, &wrt)?;
    refuse_hazards(tape)?;
    Ok(reverse::reverse(tape, wrt, seed))
}

/// [`reverse`] under a memory budget: a loop of the root whose stored
/// states would exceed it is checkpointed (same gradient, bit for bit, with
/// bounded memory and recomputation). A budget smaller than one snapshot of
/// some loop's state is an error, and so is a tape [`reverse`] refuses.
pub fn reverse_with_budget(
    tape: &Tape,
    wrt: Range<usize>,
    seed: Seed,
    budget: MemoryBudget,
) -> Result<Tape> {
    check(tape, &wrt)?;
    refuse_hazards(tape)?;
    check_budget(tape, budget)?;
    Ok(reverse::reverse_with_budget(tape, wrt, seed, budget))
}

/// [`reverse`] of a straight-line tape with its reverse sweep run segment
/// by segment, the segments starting at the instructions `starts` (0 first,
/// increasing): the same gradient, bit for bit, storing only the values that
/// cross a boundary plus one segment's residuals (see [`segment_plan`] for
/// the segments a memory budget picks).
pub fn reverse_with_segments(
    tape: &Tape,
    wrt: Range<usize>,
    seed: Seed,
    starts: &[usize],
) -> Result<Tape> {
    check(tape, &wrt)?;
    if tape.has_structure() {
        return Err(Error::Unsupported(
            "segments are for straight-line tapes: loops are checkpointed by their own schedule"
                .into(),
        ));
    }
    let valid = starts.first() == Some(&0)
        && starts.windows(2).all(|w| w[0] < w[1])
        && starts.last().is_some_and(|&s| s < tape.len().max(1));
    if !valid {
        return Err(Error::Unsupported(format!(
            "segment starts {starts:?} must begin at 0 and increase below the tape length {}",
            tape.len()
        )));
    }
    let plan = SegmentPlan {
        starts: starts.to_vec(),
        residuals: 0,
        stored: 0,
    };
    Ok(segments::reverse_segmented(tape, wrt, seed, &plan))
}

/// Checks that `budget` holds one snapshot of every root loop's state, and
/// the values a straight-line tape's gradient stores with segments
/// ([`segment_plan`]).
pub(crate) fn check_budget(tape: &Tape, budget: MemoryBudget) -> Result<()> {
    tape.loops()
        .iter()
        .try_for_each(|lp| budget.check(lp.n_carried()))?;
    segment_plan(tape, budget).map(|_| ())
}

/// How the gradient of the straight-line `tape` runs its reverse sweep
/// under `budget`: `None` when its residuals fit the budget (or the tape
/// has loops, or the budget is not in bytes), else the segments it is cut
/// into (see [`MemoryBudget`]). An error when no segmentation fits.
pub fn segment_plan(tape: &Tape, budget: MemoryBudget) -> Result<Option<SegmentPlan>> {
    if !segments::may_need_segments(tape, budget) {
        return Ok(None);
    }
    tape.verify()?;
    let plain = reverse::reverse(tape, 0..tape.n_inputs(), Seed::One);
    match segments::plan_for(tape, plain.insts(), budget) {
        None => Ok(None),
        Some(Ok(plan)) => Ok(Some(plan)),
        Some(Err(best)) => Err(Error::Unsupported(format!(
            "a memory budget of {} bytes is too small for this tape's gradient: its reverse \
             sweep stores {} values, and cut into {} segments still {} ({} bytes)",
            budget.bytes(1),
            best.residuals,
            best.starts.len(),
            best.stored,
            best.stored as u64 * 8
        ))),
    }
}

/// The tangent (JVP) tape of `tape` with respect to the inputs in `wrt`;
/// see [`forward::forward`]. Verifies `tape` first.
pub fn forward(tape: &Tape, wrt: Range<usize>) -> Result<Tape> {
    check(tape, &wrt)?;
    Ok(forward::forward(tape, wrt))
}

/// The forward vector-mode Jacobian tape; see [`forward::jacobian_forward`].
/// Verifies `tape` first.
pub fn jacobian_forward(tape: &Tape, wrt: Range<usize>) -> Result<Tape> {
    check_straight(tape, &wrt)?;
    Ok(forward::jacobian_forward(tape, wrt))
}

/// The transforms on tapes known to verify (the crate's own derived tapes).
pub(crate) mod verified {
    pub(crate) use super::forward::{forward, jacobian_forward};
    pub(crate) use super::reverse::{reverse, reverse_with_budget};
}

/// Which instructions depend on the inputs in `wrt` through differentiable
/// ops (activity analysis, forward half).
pub(crate) fn varied(tape: &Tape, wrt: &Range<usize>) -> Vec<bool> {
    let mut varied = vec![false; tape.len()];
    for (i, inst) in tape.insts().iter().enumerate() {
        varied[i] = match inst.op {
            Op::Input => wrt.contains(&(inst.args[0] as usize)),
            Op::Loop => loops::loop_is_varied(tape, inst, &varied),
            Op::LoopOut => varied[inst.args[0] as usize],
            // Arrays are written by loops and stores; assume they carry derivatives.
            Op::Elem => true,
            Op::Store => false,
            op if rules::differentiable(op) => inst.operands().iter().any(|&v| varied[v as usize]),
            _ => false,
        };
    }
    varied
}
