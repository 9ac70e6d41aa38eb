//! The reverse transform: tape -> adjoint tape.

use super::budget::MemoryBudget;
use super::emit::Emitter;
use super::loops::{reverse_loop, ArrayAdjoints};
use super::segments;
use super::{rules, varied};
use crate::ir::{Buffer, Inst, Op, Output, Tape, Value};
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
/// Its instructions start with `tape`'s own (the forward sweep, unchanged
/// but for loops also storing what their reverse needs), followed by the
/// reverse sweep. Inputs: `tape`'s inputs, then (for [`Seed::Inputs`]) one
/// weight per output number. Outputs: `tape`'s outputs, then the adjoint of
/// each input in `wrt` (an array slice when loops read the inputs).
/// Adjoints are formed only for values that depend on `wrt` and reach an
/// output (activity analysis). A loop becomes a reverse loop running its
/// iterations backwards (see [`super::loops`]).
pub fn reverse(tape: &Tape, wrt: Range<usize>, seed: Seed) -> Tape {
    reverse_with_budget(tape, wrt, seed, MemoryBudget::Unlimited)
}

/// [`reverse`], with loops of the root whose stored states would exceed
/// `budget` checkpointed instead (see [`MemoryBudget`]).
pub fn reverse_with_budget(
    tape: &Tape,
    wrt: Range<usize>,
    seed: Seed,
    budget: MemoryBudget,
) -> Tape {
    let mut arrays = ArrayAdjoints::new(tape, budget);
    let (e, outputs) = sweep(tape, wrt.clone(), seed, &mut arrays);
    if let Some(plan) = segments::plan_for(tape, e.insts(), budget) {
        // Over budget even at best (callers check first): store the least.
        let plan = plan.unwrap_or_else(|best| best);
        return segments::reverse_segmented(tape, wrt, seed, &plan);
    }
    let n_inputs = seed.n_inputs(tape);
    e.finish_structured(outputs, n_inputs, tape.n_params(), arrays.into_arrays())
}

impl Seed {
    /// The inputs of the adjoint tape of `tape`: its own, then for
    /// [`Seed::Inputs`] one weight per output number.
    pub(super) fn n_inputs(self, tape: &Tape) -> usize {
        match self {
            Seed::One => tape.n_inputs(),
            Seed::Inputs => tape.n_inputs() + tape.n_outputs(),
        }
    }
}

/// The reverse transform of `tape`, which is the root tape or a loop body
/// (then `arrays` carries the enclosing loops' trip counts). Returns the
/// emitter holding the adjoint tape and its outputs.
pub(super) fn sweep(
    tape: &Tape,
    wrt: Range<usize>,
    seed: Seed,
    arrays: &mut ArrayAdjoints,
) -> (Emitter, Vec<Output>) {
    let varied = varied(tape, &wrt);
    let useful = useful(tape, &varied);
    let mut e = Emitter::starting_with_tape(tape);
    let mut adjoint: Vec<Option<Value>> = vec![None; tape.len()];
    seed_outputs(&mut e, tape, seed, &varied, &mut adjoint, arrays);

    for (i, inst) in tape.insts().iter().enumerate().rev() {
        match inst.op {
            Op::Loop => {
                reverse_loop(&mut e, tape, i, &varied, &mut adjoint, arrays);
                continue;
            }
            Op::Store => {
                if let Some(target) = arrays.existing(inst.args[0]) {
                    // The stored value's adjoint is the element's; the element
                    // before the store gets none.
                    let d = e.push(Inst::elem(target, inst.args[1]));
                    let zero = e.constant(-0.0);
                    e.push(Inst::store(target, inst.args[1], zero));
                    let v = inst.args[2] as usize;
                    if varied[v] {
                        adjoint[v] = Some(rules::accumulate(&mut e, adjoint[v], (d, false)));
                    }
                }
                continue;
            }
            _ => {}
        }
        let Some(d) = adjoint[i] else { continue };
        if !useful[i] || matches!(inst.op, Op::Input | Op::LoopOut) {
            // A loop's results are gathered when the reverse sweep reaches the loop.
            continue;
        }
        if inst.op == Op::Elem {
            let target = arrays.adjoint(inst.args[0]);
            let old = e.push(Inst::elem(target, inst.args[1]));
            let new = e.binary(Op::Add, old, d);
            e.push(Inst::store(target, inst.args[1], new));
            continue;
        }
        scalar_step(
            &mut e,
            inst,
            inst.args,
            i as Value,
            d,
            &varied,
            |e, target, term| {
                adjoint[target] = Some(rules::accumulate(e, adjoint[target], term));
            },
        );
    }

    let mut outputs = tape.outputs().to_vec();
    let input_adjoint = input_adjoints(&mut e, tape, &wrt, &adjoint);
    match arrays.existing_input_adjoint().filter(|_| arrays.is_root()) {
        // Loops accumulated into the input adjoint array: add the scalar
        // adjoints of the root's own `input` instructions and output a slice.
        Some(target) => {
            // Elements no reverse loop adds to are the adjoints of inputs
            // nothing depends on: 0.0, as without loops (not the array's -0.0).
            let covered = super::loops::elements_added(&e, target, tape.n_inputs());
            for (j, d) in input_adjoint.into_iter().enumerate() {
                let at = (wrt.start + j) as u32;
                match d {
                    Some(d) => {
                        let old = e.push(Inst::elem(target, at));
                        let new = e.binary(Op::Add, old, d);
                        e.push(Inst::store(target, at, new));
                    }
                    None if !covered[at as usize] => {
                        let zero = e.constant(0.0);
                        e.push(Inst::store(target, at, zero));
                    }
                    None => {}
                }
            }
            outputs.push(Output::Slice {
                array: target,
                start: wrt.start as u32,
                len: wrt.len() as u32,
            });
        }
        None => {
            for d in input_adjoint {
                outputs.push(Output::Value(d.unwrap_or_else(|| e.constant(0.0))));
            }
        }
    }
    (e, outputs)
}

/// Seeds the adjoints of `tape`'s outputs (see [`Seed`]): scalar outputs
/// into `adjoint`, array slices into their adjoint arrays.
pub(super) fn seed_outputs(
    e: &mut Emitter,
    tape: &Tape,
    seed: Seed,
    varied: &[bool],
    adjoint: &mut [Option<Value>],
    arrays: &mut ArrayAdjoints,
) {
    let mut k = tape.n_inputs() as u32;
    for out in tape.outputs() {
        match *out {
            Output::Value(v) => {
                let d = match seed {
                    Seed::One => e.constant(1.0),
                    Seed::Inputs => e.push(Inst::input(k)),
                };
                k += 1;
                if varied[v as usize] {
                    let slot = &mut adjoint[v as usize];
                    *slot = Some(rules::accumulate(e, *slot, (d, false)));
                }
            }
            Output::Slice { array, start, len } => {
                let target = arrays.adjoint(array);
                let weights = match seed {
                    Seed::One => None,
                    Seed::Inputs => Some(k),
                };
                super::loops::seed_slice(e, tape.n_params(), target, start, len, weights);
                k += len;
            }
        }
    }
}

/// Emits the adjoint contributions of the scalar instruction `inst`, whose
/// operands and result are `args` and `result` in `e` and whose adjoint is
/// `d`: `add(e, operand, term)` for each operand (by its value in the
/// differentiated tape) that gets a nonzero term, operands in order.
pub(super) fn scalar_step(
    e: &mut Emitter,
    inst: &Inst,
    args: [Value; 3],
    result: Value,
    d: Value,
    varied: &[bool],
    mut add: impl FnMut(&mut Emitter, usize, (Value, bool)),
) {
    let mut need = [false; 3];
    for (slot, &v) in need.iter_mut().zip(inst.operands()) {
        *slot = varied[v as usize];
    }
    let partials = rules::partials(e, inst, args, result, need);
    for (k, partial) in partials.into_iter().enumerate() {
        if let Some(term) = rules::apply(e, partial, d) {
            add(e, inst.args[k] as usize, term);
        }
    }
}

/// The adjoint of each input in `wrt`: the sum over the `input`
/// instructions reading it (`None` where none has an adjoint).
pub(super) fn input_adjoints(
    e: &mut Emitter,
    tape: &Tape,
    wrt: &Range<usize>,
    adjoint: &[Option<Value>],
) -> Vec<Option<Value>> {
    let mut input_adjoint: Vec<Option<Value>> = vec![None; wrt.len()];
    for (i, inst) in tape.insts().iter().enumerate() {
        if inst.op == Op::Input && wrt.contains(&(inst.args[0] as usize)) {
            if let Some(d) = adjoint[i] {
                let slot = &mut input_adjoint[inst.args[0] as usize - wrt.start];
                *slot = Some(rules::accumulate(e, *slot, (d, false)));
            }
        }
    }
    input_adjoint
}

/// Which varied instructions lead to an output (activity analysis, backward
/// half). Loops and stores count as leading to an output (their arrays may).
pub(super) fn useful(tape: &Tape, varied: &[bool]) -> Vec<bool> {
    let mut useful = vec![false; tape.len()];
    for out in tape.outputs() {
        if let Output::Value(v) = *out {
            useful[v as usize] = varied[v as usize];
        }
    }
    for (i, inst) in tape.insts().iter().enumerate().rev() {
        if matches!(inst.op, Op::Loop | Op::Store) {
            useful[i] = true;
        }
        if useful[i] {
            for v in tape.uses(i) {
                if varied[v as usize] {
                    useful[v as usize] = true;
                }
            }
        }
    }
    useful
}

/// Whether a strided read of `buffer` carries a derivative.
pub(super) fn read_is_active(buffer: Buffer) -> bool {
    !matches!(buffer, Buffer::Param)
}
