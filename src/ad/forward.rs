//! The forward transform: tape -> tangent tape, one direction (JVP) or one
//! direction per input (the whole Jacobian in one tape).

use super::emit::Emitter;
use super::loops_forward::{tangent_loop, TangentArrays};
use super::{rules, varied};
use crate::ir::{Inst, Op, Output, Shape, Tape, Value};
use std::ops::Range;

/// The tangent tape of `tape` with respect to the inputs in `wrt`.
///
/// Inputs: `tape`'s inputs, then one tangent per input in `wrt`. Outputs:
/// `tape`'s outputs, then their tangents (the JVP). Each tangent is computed
/// right after its primal value; values that do not depend on `wrt` get none.
///
/// Loops become loops carrying their tangents next to their values; arrays
/// get tangent arrays, and an array slice output's tangent is a slice too.
pub fn forward(tape: &Tape, wrt: Range<usize>) -> Tape {
    let n_inputs = tape.n_inputs();
    let start = wrt.start;
    let mut arrays = TangentArrays::new(tape);
    let mut e = Emitter::starting_with(&[]);
    arrays.seed_input_tangents(&mut e, tape, &wrt);
    let outputs = transform(&mut e, tape, wrt.clone(), 1, &mut arrays, |e, input| {
        vec![Some(e.push(Inst::input((n_inputs + input - start) as u32)))]
    });
    e.finish_structured(
        outputs,
        n_inputs + wrt.len(),
        tape.n_params(),
        arrays.into_arrays(),
    )
}

/// The tangent tape of a loop body (all its inputs varied, their tangents
/// appended as inputs), into `e`; returns its outputs: values, then tangents.
pub(super) fn forward_body(
    e: &mut Emitter,
    body: &Tape,
    arrays: &mut TangentArrays,
) -> Vec<Output> {
    let n = body.n_inputs();
    transform(e, body, 0..n, 1, arrays, |e, input| {
        vec![Some(e.push(Inst::input((n + input) as u32)))]
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
    let mut arrays = TangentArrays::new(tape);
    let mut e = Emitter::starting_with(&[]);
    let outputs = transform(&mut e, tape, wrt, dirs, &mut arrays, |e, input| {
        let one = e.constant(1.0);
        (0..dirs)
            .map(|d| (d == input - start).then_some(one))
            .collect()
    });
    e.finish_structured(outputs, tape.n_inputs(), tape.n_params(), Vec::new())
}

/// The shared forward sweep with `dirs` tangent directions; `seed` gives an
/// input's tangents (one per direction) when first met. Loops and arrays
/// need `dirs == 1` (the callers check). Returns the outputs: values, then
/// tangents.
fn transform(
    e: &mut Emitter,
    tape: &Tape,
    wrt: Range<usize>,
    dirs: usize,
    arrays: &mut TangentArrays,
    mut seed: impl FnMut(&mut Emitter, usize) -> Vec<Option<Value>>,
) -> Vec<Output> {
    let varied = varied(tape, &wrt);
    let e = &mut *e;
    let mut new_value: Vec<Value> = Vec::with_capacity(tape.len());
    // Tangent of instruction i in direction d at i * dirs + d.
    let mut tangent: Vec<Option<Value>> = vec![None; tape.len() * dirs];

    for (i, inst) in tape.insts().iter().enumerate() {
        let mut mapped = *inst;
        match inst.op.shape() {
            Shape::Values(_) | Shape::ValueImm => {
                for k in 0..inst.op.arity() {
                    mapped.args[k] = new_value[inst.args[k] as usize];
                }
            }
            Shape::ArrayStore => mapped.args[2] = new_value[inst.args[2] as usize],
            _ => {}
        }
        match inst.op {
            Op::Loop => {
                let (w, has_tangents) = tangent_loop(e, tape, inst, &new_value, &tangent, arrays);
                new_value.push(w);
                // The loop's own slot marks whether its results have tangents.
                tangent[i] = has_tangents.then_some(w);
                continue;
            }
            Op::LoopOut => {
                let lp = inst.args[0] as usize;
                let w = e.push(mapped);
                new_value.push(w);
                if tangent[lp].is_some() {
                    let m = tape.loop_of(&tape.insts()[lp]).n_carried() as u32;
                    let t = e.push(Inst::loop_out(mapped.args[0], m + inst.args[1]));
                    tangent[i] = Some(t);
                }
                continue;
            }
            Op::Elem => {
                new_value.push(e.push(mapped));
                tangent[i] = arrays
                    .existing(inst.args[0])
                    .map(|t| e.push(Inst::elem(t, inst.args[1])));
                continue;
            }
            Op::Store => {
                new_value.push(e.push(mapped));
                let v = inst.args[2] as usize;
                let t = match tangent[v] {
                    Some(t) => Some((arrays.tangent(inst.args[0]), t)),
                    None => arrays.existing(inst.args[0]).map(|a| (a, e.constant(0.0))),
                };
                if let Some((a, t)) = t {
                    e.push(Inst::store(a, inst.args[1], t));
                }
                continue;
            }
            _ => {}
        }
        let w = e.push(mapped);
        new_value.push(w);
        if !varied[i] {
            continue;
        }
        if inst.op == Op::Input {
            let seeds = seed(e, inst.args[0] as usize);
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
        let partials = rules::partials(e, inst, mapped.args, w, need);
        let mut row = Vec::with_capacity(dirs);
        for d in 0..dirs {
            let mut sum = None;
            for (k, &partial) in partials.iter().enumerate() {
                let Some(t) = operand_tangent(k, d) else {
                    continue;
                };
                if let Some(term) = rules::apply(e, partial, t) {
                    sum = Some(rules::accumulate(e, sum, term));
                }
            }
            row.push(sum);
        }
        tangent[i * dirs..(i + 1) * dirs].copy_from_slice(&row);
    }

    let mut outputs: Vec<Output> = tape
        .outputs()
        .iter()
        .map(|o| match *o {
            Output::Value(v) => Output::Value(new_value[v as usize]),
            slice => slice,
        })
        .collect();
    for o in tape.outputs() {
        match *o {
            Output::Value(v) => {
                for d in 0..dirs {
                    let t = tangent[v as usize * dirs + d].unwrap_or_else(|| e.constant(0.0));
                    outputs.push(Output::Value(t));
                }
            }
            Output::Slice { array, start, len } => match arrays.existing(array) {
                Some(t) => outputs.push(Output::Slice {
                    array: t,
                    start,
                    len,
                }),
                None => {
                    let zero = e.constant(0.0);
                    outputs.extend((0..len).map(|_| Output::Value(zero)));
                }
            },
        }
    }
    outputs
}
