//! Derivatives as tape transformations.
//!
//! [`reverse`] turns a tape into its adjoint tape (value and gradient in one
//! fused sweep), [`forward`] into its tangent tape (value and JVP). Both
//! results are ordinary tapes, so they are evaluated, optimized, compiled and
//! differentiated again like any other: the HVP tape is
//! `forward(reverse(f))`.

mod emit;
mod forward;
mod reverse;
mod rules;

pub use forward::{forward, jacobian_forward};
pub use reverse::{reverse, Seed};

use crate::ir::{Op, Tape};
use std::ops::Range;

/// Which instructions depend on the inputs in `wrt` through differentiable
/// ops (activity analysis, forward half).
pub(crate) fn varied(tape: &Tape, wrt: &Range<usize>) -> Vec<bool> {
    let mut varied = vec![false; tape.len()];
    for (i, inst) in tape.insts().iter().enumerate() {
        varied[i] = match inst.op {
            Op::Input => wrt.contains(&(inst.args[0] as usize)),
            op if rules::differentiable(op) => inst.operands().iter().any(|&v| varied[v as usize]),
            _ => false,
        };
    }
    varied
}
