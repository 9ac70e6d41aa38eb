//! The reverse transform: tape -> adjoint tape.

use super::emit::Emitter;
use super::{rules, straight_outputs, varied};
use crate::ir::{Inst, Op, Tape, Value};
use std::ops::Range;

/// Where the adjoints of the outputs come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seed {
    /// Each output's adjoint is `1` (the gradient of a scalar function, or of
    /// the sum of the outputs).
    One,
    /// The output adjoints are extra inputs appended after the tape's own
    /// (a vector-Jacobian product with runtime weights).
    Inputs,
}

/// The adjoint tape of `tape` with respect to the inputs in `wrt`.
///
/// Its instructions start with `tape`'s own (the forward sweep, unchanged),
/// followed by the reverse sweep. Inputs: `tape`'s inputs, then (for
/// [`Seed::Inputs`]) one weight per output. Outputs: `tape`'s outputs, then
/// the adjoint of each input in `wrt`. Adjoints are formed only for values
/// that depend on `wrt` and reach an output (activity analysis).
pub fn reverse(tape: &Tape, wrt: Range<usize>, seed: Seed) -> Tape {
    let varied = varied(tape, &wrt);
    let useful = useful(tape, &varied);
    let mut e = Emitter::starting_with(tape.insts());
    let mut adjoint: Vec<Option<Value>> = vec![None; tape.len()];

    let mut outputs = straight_outputs(tape);
    for (k, &out) in outputs.iter().enumerate() {
        let d = match seed {
            Seed::One => e.constant(1.0),
            Seed::Inputs => e.push(Inst::input((tape.n_inputs() + k) as u32)),
        };
        if varied[out as usize] {
            let slot = &mut adjoint[out as usize];
            *slot = Some(rules::accumulate(&mut e, *slot, (d, false)));
        }
    }

    for (i, inst) in tape.insts().iter().enumerate().rev() {
        let Some(d) = adjoint[i] else { continue };
        if !useful[i] || inst.op == Op::Input {
            continue;
        }
        let mut need = [false; 3];
        for (slot, &v) in need.iter_mut().zip(inst.operands()) {
            *slot = varied[v as usize];
        }
        let partials = rules::partials(&mut e, inst, inst.args, i as Value, need);
        for (k, partial) in partials.into_iter().enumerate() {
            if let Some(term) = rules::apply(&mut e, partial, d) {
                let target = inst.args[k] as usize;
                adjoint[target] = Some(rules::accumulate(&mut e, adjoint[target], term));
            }
        }
    }

    let mut input_adjoint: Vec<Option<Value>> = vec![None; wrt.len()];
    for (i, inst) in tape.insts().iter().enumerate() {
        if inst.op == Op::Input && wrt.contains(&(inst.args[0] as usize)) {
            if let Some(d) = adjoint[i] {
                let slot = &mut input_adjoint[inst.args[0] as usize - wrt.start];
                *slot = Some(rules::accumulate(&mut e, *slot, (d, false)));
            }
        }
    }
    for d in input_adjoint {
        outputs.push(d.unwrap_or_else(|| e.constant(0.0)));
    }
    let n_inputs = match seed {
        Seed::One => tape.n_inputs(),
        Seed::Inputs => tape.n_inputs() + tape.n_outputs(),
    };
    e.finish(outputs, n_inputs, tape.n_params())
}

/// Which varied instructions lead to an output (activity analysis, backward half).
fn useful(tape: &Tape, varied: &[bool]) -> Vec<bool> {
    let mut useful = vec![false; tape.len()];
    for out in straight_outputs(tape) {
        useful[out as usize] = varied[out as usize];
    }
    for (i, inst) in tape.insts().iter().enumerate().rev() {
        if useful[i] {
            for &v in inst.operands() {
                if varied[v as usize] {
                    useful[v as usize] = true;
                }
            }
        }
    }
    useful
}
