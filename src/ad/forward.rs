//! The forward transform: tape -> tangent tape, one direction (JVP) or one
//! direction per input (the whole Jacobian in one tape).

use super::emit::Emitter;
use super::{rules, varied};
use crate::ir::{Inst, Op, Shape, Tape, Value};
use std::ops::Range;

/// The tangent tape of `tape` with respect to the inputs in `wrt`.
///
/// Inputs: `tape`'s inputs, then one tangent per input in `wrt`. Outputs:
/// `tape`'s outputs, then their tangents (the JVP). Each tangent is computed
/// right after its primal value; values that do not depend on `wrt` get none.
pub fn forward(tape: &Tape, wrt: Range<usize>) -> Tape {
    let n_inputs = tape.n_inputs();
    let start = wrt.start;
    transform(tape, wrt.clone(), 1, wrt.len(), |e, input| {
        vec![Some(e.push(Inst::input((n_inputs + input - start) as u32)))]
    })
}

/// The Jacobian tape of `tape` with respect to the inputs in `wrt`, by
/// forward vector mode: one tangent direction per input, seeded with the
/// constant 1, so a tangent exists only where an output depends on that input.
///
/// Inputs: `tape`'s inputs. Outputs: `tape`'s outputs, then the Jacobian
/// row-major (outputs × `wrt`).
pub fn jacobian_forward(tape: &Tape, wrt: Range<usize>) -> Tape {
    let dirs = wrt.len();
    let start = wrt.start;
    transform(tape, wrt, dirs, 0, |e, input| {
        let one = e.constant(1.0);
        (0..dirs)
            .map(|d| (d == input - start).then_some(one))
            .collect()
    })
}

/// The shared forward sweep with `dirs` tangent directions; `seed` gives an
/// input's tangents (one per direction) when first met, and the result reads
/// `extra_inputs` inputs beyond `tape`'s.
fn transform(
    tape: &Tape,
    wrt: Range<usize>,
    dirs: usize,
    extra_inputs: usize,
    mut seed: impl FnMut(&mut Emitter, usize) -> Vec<Option<Value>>,
) -> Tape {
    let varied = varied(tape, &wrt);
    let mut e = Emitter::starting_with(&[]);
    let mut new_value: Vec<Value> = Vec::with_capacity(tape.len());
    // Tangent of instruction i in direction d at i * dirs + d.
    let mut tangent: Vec<Option<Value>> = vec![None; tape.len() * dirs];

    for (i, inst) in tape.insts().iter().enumerate() {
        let mut mapped = *inst;
        if let Shape::Values(_) | Shape::ValueImm = inst.op.shape() {
            for k in 0..inst.op.arity() {
                mapped.args[k] = new_value[inst.args[k] as usize];
            }
        }
        let w = e.push(mapped);
        new_value.push(w);
        if !varied[i] {
            continue;
        }
        if inst.op == Op::Input {
            let seeds = seed(&mut e, inst.args[0] as usize);
            tangent[i * dirs..(i + 1) * dirs].copy_from_slice(&seeds);
            continue;
        }
        let operand_tangent = |k: usize, d: usize| -> Option<Value> {
            let v = *inst.operands().get(k)? as usize;
            tangent[v * dirs + d]
        };
        let mut need = [false; 3];
        for (k, slot) in need.iter_mut().enumerate() {
            *slot = (0..dirs).any(|d| operand_tangent(k, d).is_some());
        }
        let partials = rules::partials(&mut e, inst, mapped.args, w, need);
        let mut row = Vec::with_capacity(dirs);
        for d in 0..dirs {
            let mut sum = None;
            for (k, &partial) in partials.iter().enumerate() {
                let Some(t) = operand_tangent(k, d) else {
                    continue;
                };
                if let Some(term) = rules::apply(&mut e, partial, t) {
                    sum = Some(rules::accumulate(&mut e, sum, term));
                }
            }
            row.push(sum);
        }
        tangent[i * dirs..(i + 1) * dirs].copy_from_slice(&row);
    }

    let primal_outputs = super::straight_outputs(tape);
    let mut outputs: Vec<Value> = primal_outputs
        .iter()
        .map(|&v| new_value[v as usize])
        .collect();
    for &v in &primal_outputs {
        for d in 0..dirs {
            let t = tangent[v as usize * dirs + d].unwrap_or_else(|| e.constant(0.0));
            outputs.push(t);
        }
    }
    e.finish(outputs, tape.n_inputs() + extra_inputs, tape.n_params())
}
