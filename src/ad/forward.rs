//! The forward transform: tape -> tangent tape.

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
    let varied = varied(tape, &wrt);
    let mut e = Emitter::starting_with(&[]);
    let mut new_value: Vec<Value> = Vec::with_capacity(tape.len());
    let mut tangent: Vec<Option<Value>> = vec![None; tape.len()];

    for (i, inst) in tape.insts().iter().enumerate() {
        let mut mapped = *inst;
        if let Shape::Values(_) | Shape::ValueImm = inst.op.shape() {
            mapped.args[0] = new_value[inst.args[0] as usize];
            for k in 1..inst.op.arity() {
                mapped.args[k] = new_value[inst.args[k] as usize];
            }
        }
        let w = e.push(mapped);
        new_value.push(w);
        if !varied[i] {
            continue;
        }
        if inst.op == Op::Input {
            let slot = tape.n_inputs() + inst.args[0] as usize - wrt.start;
            tangent[i] = Some(e.push(Inst::input(slot as u32)));
            continue;
        }
        let mut need = [false; 3];
        for (slot, &v) in need.iter_mut().zip(inst.operands()) {
            *slot = tangent[v as usize].is_some();
        }
        let partials = rules::partials(&mut e, inst, mapped.args, w, need);
        let mut sum = None;
        for (k, partial) in partials.into_iter().enumerate() {
            let Some(t) = tangent.get(inst.args[k] as usize).copied().flatten() else {
                continue;
            };
            if let Some(term) = rules::apply(&mut e, partial, t) {
                sum = Some(rules::accumulate(&mut e, sum, term));
            }
        }
        tangent[i] = sum;
    }

    let mut outputs: Vec<Value> = tape
        .outputs()
        .iter()
        .map(|&v| new_value[v as usize])
        .collect();
    for &v in tape.outputs() {
        let t = tangent[v as usize].unwrap_or_else(|| e.constant(0.0));
        outputs.push(t);
    }
    e.finish(outputs, tape.n_inputs() + wrt.len(), tape.n_params())
}
