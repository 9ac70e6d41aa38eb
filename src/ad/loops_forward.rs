//! The forward transform of loops and arrays.
//!
//! A loop's tangent loop carries each carried value's tangent next to it,
//! reads the tangents of its invariants and of the buffers it reads, and
//! writes tangents next to its writes; its body is the forward transform of
//! the body. Arrays get tangent arrays; the tangents of the root's inputs
//! that loops read are copied into one array first.

use super::emit::Emitter;
use super::forward::forward_body;
use super::loops::{overwrites, reads_buffers, renumber_inputs, seed_slice, written_arrays};
use crate::ir::{ArrayId, Buffer, Inst, Loop, Output, Tape, Value, Write};
use std::ops::Range;

/// The arrays of the tangent tape under construction: the primal's, their
/// tangents (made when first written), and the tangents of the root's inputs.
pub(super) struct TangentArrays {
    arrays: Vec<u32>,
    tangent_of: Vec<Option<ArrayId>>,
    input_tangent: Option<ArrayId>,
}

impl TangentArrays {
    pub(super) fn new(root: &Tape) -> TangentArrays {
        TangentArrays {
            arrays: root.arrays().to_vec(),
            tangent_of: vec![None; root.arrays().len()],
            input_tangent: None,
        }
    }

    pub(super) fn into_arrays(self) -> Vec<u32> {
        self.arrays
    }

    /// The tangent array of primal array `a`, made if needed.
    pub(super) fn tangent(&mut self, a: ArrayId) -> ArrayId {
        if let Some(t) = self.tangent_of[a as usize] {
            return t;
        }
        self.arrays.push(self.arrays[a as usize]);
        let t = self.arrays.len() as ArrayId - 1;
        self.tangent_of[a as usize] = Some(t);
        t
    }

    /// The tangent array of primal array `a`, if anything wrote one.
    pub(super) fn existing(&self, a: ArrayId) -> Option<ArrayId> {
        self.tangent_of[a as usize]
    }

    /// The buffer holding the tangents of what a read of `buffer` reads.
    fn read_tangent(&self, buffer: Buffer) -> Option<ArrayId> {
        match buffer {
            Buffer::Param => None,
            Buffer::Input => self.input_tangent,
            Buffer::Array(a) => self.existing(a),
        }
    }

    /// If a loop of `tape` reads the inputs, copies the tangent inputs
    /// (inputs `n_inputs..`, one per input in `wrt`) into an array.
    pub(super) fn seed_input_tangents(&mut self, e: &mut Emitter, tape: &Tape, wrt: &Range<usize>) {
        if !reads_inputs(tape) || wrt.is_empty() {
            return;
        }
        self.arrays.push(tape.n_inputs() as u32);
        let t = self.arrays.len() as ArrayId - 1;
        self.input_tangent = Some(t);
        seed_slice(
            e,
            tape.n_params(),
            t,
            wrt.start as u32,
            wrt.len() as u32,
            Some(tape.n_inputs() as u32),
        );
    }
}

/// Whether a loop of `tape` (nested ones included) reads the root's inputs.
fn reads_inputs(tape: &Tape) -> bool {
    tape.loops()
        .iter()
        .any(|lp| lp.reads.iter().any(|r| r.buffer == Buffer::Input) || reads_inputs(&lp.body))
}

/// Emits the tangent loop of loop instruction `inst` of `tape` (values of
/// `tape` map to `new_value`, their tangents are `tangent`); returns the
/// new loop instruction and whether it carries tangents (then `loopout`
/// `m + j` is the tangent of carried value `j`).
pub(super) fn tangent_loop(
    e: &mut Emitter,
    tape: &Tape,
    inst: &Inst,
    new_value: &[Value],
    tangent: &[Option<Value>],
    arrays: &mut TangentArrays,
) -> (Value, bool) {
    let lp = tape.loop_of(inst);
    let (m, nv, nr, nw) = (
        lp.n_carried(),
        lp.invariants.len(),
        lp.reads.len(),
        lp.writes.len(),
    );
    let map = |vs: &[Value]| -> Vec<Value> { vs.iter().map(|&v| new_value[v as usize]).collect() };
    let init_t: Vec<Option<Value>> = lp.init.iter().map(|&v| tangent[v as usize]).collect();
    let inv_t: Vec<Option<Value>> = lp.invariants.iter().map(|&v| tangent[v as usize]).collect();
    // A loop overwriting elements of arrays with tangents must write their
    // (zero) tangents, even if nothing it computes is varied.
    let varied = init_t.iter().chain(&inv_t).any(Option::is_some)
        || reads_buffers(lp)
        || overwrites(lp, &|a| arrays.existing(a).is_some());
    if !varied {
        let copy = Loop {
            init: map(&lp.init),
            invariants: map(&lp.invariants),
            ..lp.clone()
        };
        return (e.push_loop(copy), false);
    }
    // Every array the loop writes gets its tangent array before the body is
    // transformed: a read in the body may see what an earlier iteration
    // wrote, and a store of a value without a tangent must reset the
    // element's tangent that an earlier write (of this iteration or an
    // earlier one) set.
    for a in written_arrays(lp) {
        arrays.tangent(a);
    }
    let read_t: Vec<Option<ArrayId>> = lp
        .reads
        .iter()
        .map(|r| arrays.read_tangent(r.buffer))
        .collect();

    let n_in = lp.body.n_inputs();
    let mut be = Emitter::starting_with(&[]);
    let outs = forward_body(&mut be, &lp.body, arrays);
    let vals: Vec<Output> = outs;
    let mut outputs = Vec::with_capacity(vals.len());
    outputs.extend_from_slice(&vals[..m]);
    outputs.extend_from_slice(&vals[m + nw..m + nw + m]);
    outputs.extend_from_slice(&vals[m..m + nw]);
    outputs.extend_from_slice(&vals[2 * m + nw..]);
    let tb = be.finish_structured(outputs, 2 * n_in, tape.n_params(), Vec::new());

    // Inputs in the tangent loop's order: c, ċ, v, v̇ (those with tangents),
    // r, ṙ (those with tangent buffers).
    let mut new_index = vec![u32::MAX; 2 * n_in];
    let mut next = 0u32;
    let mut take = |old: usize, new_index: &mut Vec<u32>| {
        new_index[old] = next;
        next += 1;
    };
    for j in 0..m {
        take(j, &mut new_index);
    }
    for j in 0..m {
        take(n_in + j, &mut new_index);
    }
    for a in 0..nv {
        take(m + a, &mut new_index);
    }
    for a in (0..nv).filter(|&a| inv_t[a].is_some()) {
        take(n_in + m + a, &mut new_index);
    }
    for b in 0..nr {
        take(m + nv + b, &mut new_index);
    }
    for b in (0..nr).filter(|&b| read_t[b].is_some()) {
        take(n_in + m + nv + b, &mut new_index);
    }
    let body = renumber_inputs(&tb, &new_index, next as usize);
    let body = crate::opt::optimize_body(&body);

    let zero = e.constant(0.0);
    let mut init = map(&lp.init);
    init.extend(init_t.iter().map(|t| t.unwrap_or(zero)));
    let mut invariants = map(&lp.invariants);
    invariants.extend(inv_t.iter().flatten());
    let mut reads = lp.reads.clone();
    for (r, t) in lp.reads.iter().zip(&read_t) {
        if let Some(t) = t {
            let mut a = r.clone();
            a.buffer = Buffer::Array(*t);
            reads.push(a);
        }
    }
    let mut writes = lp.writes.clone();
    for w in &lp.writes {
        let Buffer::Array(a) = w.access.buffer else {
            unreachable!("verified: loops write arrays")
        };
        let mut access = w.access.clone();
        access.buffer = Buffer::Array(arrays.tangent(a));
        writes.push(Write {
            access,
            mode: w.mode,
        });
    }
    let w = e.push_loop(Loop {
        trips: lp.trips,
        body,
        init,
        invariants,
        reads,
        writes,
    });
    (w, true)
}
