//! Final touches on the root tape: outputs that are elements of arrays
//! written by rolled loops become array slices, and arrays nothing
//! refers to any more are dropped.

use super::level::Shared;
use super::nest;
use crate::ir::{ArrayId, Buffer, Op, Output, Tape};

/// Replaces runs of outputs `elem x[e], elem x[e + 1], ...` by slices of
/// `x`, for arrays created by rerolling whose only writer comes before the
/// `elem` (so the element is final from there on).
pub(super) fn slice_outputs(tape: &Tape, shared: &Shared) -> Tape {
    let insts = tape.insts();
    let mut writer = vec![usize::MAX; shared.arrays.len()];
    for (p, inst) in insts.iter().enumerate() {
        if inst.op == Op::Loop {
            nest::for_each_array(tape.loop_of(inst), &mut |a, write| {
                if write {
                    writer[a as usize] = p;
                }
            });
        }
    }
    let final_elem = |o: &Output| -> Option<(ArrayId, u32)> {
        let v = o.value()? as usize;
        let inst = &insts[v];
        let a = inst.args[0];
        (inst.op == Op::Elem
            && !shared.pinned[a as usize]
            && !shared.is_unsafe(a)
            && writer[a as usize] < v)
            .then_some((a, inst.args[1]))
    };
    let mut outputs: Vec<Output> = Vec::with_capacity(tape.outputs().len());
    for o in tape.outputs() {
        let Some((a, e)) = final_elem(o) else {
            outputs.push(*o);
            continue;
        };
        if let Some(Output::Slice { array, start, len }) = outputs.last_mut() {
            if *array == a && *start + *len == e {
                *len += 1;
                continue;
            }
        }
        outputs.push(Output::Slice {
            array: a,
            start: e,
            len: 1,
        });
    }
    let (insts, _, loops, arrays) = tape.clone().into_parts();
    Tape::from_structured(
        insts,
        outputs,
        tape.n_inputs(),
        tape.n_params(),
        loops,
        arrays,
    )
}

/// Drops the arrays nothing refers to and renumbers the others.
pub(super) fn compact_arrays(tape: Tape) -> Tape {
    let n = tape.arrays().len();
    let mut used = vec![false; n];
    mark(&tape, &mut used);
    for o in tape.outputs() {
        if let Output::Slice { array, .. } = *o {
            used[array as usize] = true;
        }
    }
    if used.iter().all(|&u| u) {
        return tape;
    }
    let mut new_id = vec![u32::MAX; n];
    let mut lens = Vec::new();
    for a in 0..n {
        if used[a] {
            new_id[a] = lens.len() as u32;
            lens.push(tape.arrays()[a]);
        }
    }
    let (n_inputs, n_params) = (tape.n_inputs(), tape.n_params());
    let (insts, outputs, loops, _) = tape.into_parts();
    let outputs = outputs
        .into_iter()
        .map(|o| match o {
            Output::Slice { array, start, len } => Output::Slice {
                array: new_id[array as usize],
                start,
                len,
            },
            v => v,
        })
        .collect();
    let t = Tape::from_structured(insts, outputs, n_inputs, n_params, loops, Vec::new());
    let t = renumber(t, &new_id);
    let (insts, outputs, loops, _) = t.into_parts();
    Tape::from_structured(insts, outputs, n_inputs, n_params, loops, lens)
}

fn mark(tape: &Tape, used: &mut [bool]) {
    for inst in tape.insts() {
        if matches!(inst.op, Op::Elem | Op::Store) {
            used[inst.args[0] as usize] = true;
        }
    }
    for lp in tape.loops() {
        nest::for_each_array(lp, &mut |a, _| used[a as usize] = true);
    }
}

/// `tape` with every array number `a` replaced by `new_id[a]` (bodies included).
fn renumber(tape: Tape, new_id: &[u32]) -> Tape {
    let (n_inputs, n_params) = (tape.n_inputs(), tape.n_params());
    let (mut insts, outputs, mut loops, arrays) = tape.into_parts();
    for inst in &mut insts {
        if matches!(inst.op, Op::Elem | Op::Store) {
            inst.args[0] = new_id[inst.args[0] as usize];
        }
    }
    for lp in &mut loops {
        for a in lp
            .reads
            .iter_mut()
            .chain(lp.writes.iter_mut().map(|w| &mut w.access))
        {
            if let Buffer::Array(x) = &mut a.buffer {
                *x = new_id[*x as usize];
            }
        }
        lp.body = renumber(std::mem::take(&mut lp.body), new_id);
    }
    Tape::from_structured(insts, outputs, n_inputs, n_params, loops, arrays)
}
