//! Dead-code elimination.

use super::rewrite::{rewrite, Action};
use crate::ir::{Buffer, Loop, Op, Output, Tape};

/// Removes every instruction that no output and no guard needs. Guards are
/// effects (they can stop evaluation) and always stay. A loop stays when
/// one of its results is used, it writes an array that is read later (by an
/// `elem`, a live loop or an output slice), or its body holds a guard; a
/// store stays when its array is read later. Loop reads and invariants
/// that the (already cleaned) body no longer uses are dropped first.
pub fn dce(tape: &Tape) -> Tape {
    let pruned = prune_loop_slots(tape);
    let tape = pruned.as_ref().unwrap_or(tape);
    let insts = tape.insts();
    let mut live = vec![false; insts.len()];
    let mut array_read = vec![false; tape.arrays().len()];
    for o in tape.outputs() {
        match *o {
            Output::Value(v) => live[v as usize] = true,
            Output::Slice { array, .. } => array_read[array as usize] = true,
        }
    }
    for (i, inst) in insts.iter().enumerate().rev() {
        match inst.op {
            Op::Guard => live[i] = true,
            // In a loop body the arrays are the root's: keep its stores.
            Op::Store => live[i] |= *array_read.get(inst.args[0] as usize).unwrap_or(&true),
            Op::Elem if live[i] => {
                if let Some(r) = array_read.get_mut(inst.args[0] as usize) {
                    *r = true;
                }
            }
            Op::Loop => {
                let lp = tape.loop_of(inst);
                live[i] |= writes_read_array(lp, &array_read) || has_guard(&lp.body);
                if live[i] {
                    mark_reads(lp, &mut array_read);
                }
            }
            _ => {}
        }
        if live[i] {
            for v in tape.uses(i) {
                live[v as usize] = true;
            }
        }
    }
    let mut i = 0;
    rewrite(tape, |_, inst| {
        let keep = live[i];
        i += 1;
        if keep {
            Action::Keep(inst)
        } else {
            Action::Drop
        }
    })
}

/// Whether `body` or a loop nested in it holds a guard.
fn has_guard(body: &Tape) -> bool {
    body.insts().iter().any(|i| i.op == Op::Guard)
        || body.loops().iter().any(|l| has_guard(&l.body))
}

/// `tape` with the reads and invariants its loops' bodies no longer use
/// removed (`None` if there are none).
fn prune_loop_slots(tape: &Tape) -> Option<Tape> {
    let mut changed = false;
    let mut loops = tape.loops().to_vec();
    for (lp, inst) in loops
        .iter_mut()
        .zip(tape.insts().iter().filter(|i| i.op == Op::Loop))
    {
        let n_states = tape.checkpoint_of(inst).map_or(0, |cp| cp.states.len());
        let mut used = vec![false; lp.body.n_inputs()];
        for i in lp.body.insts() {
            if i.op == Op::Input {
                used[i.args[0] as usize] = true;
            }
        }
        let m = lp.n_carried();
        let (nv, nr) = (lp.invariants.len(), lp.reads.len());
        let keep_inv: Vec<bool> = (0..nv).map(|a| used[m + a]).collect();
        let keep_read: Vec<bool> = (0..nr).map(|r| used[m + nv + r]).collect();
        if keep_inv.iter().chain(&keep_read).all(|&k| k) {
            continue;
        }
        changed = true;
        let mut keep = vec![true; m];
        keep.extend(&keep_inv);
        keep.extend(&keep_read);
        keep.extend(std::iter::repeat_n(true, n_states));
        let mut new_index = vec![u32::MAX; keep.len()];
        let mut next = 0;
        for (j, &k) in keep.iter().enumerate() {
            if k {
                new_index[j] = next;
                next += 1;
            }
        }
        let mut insts = lp.body.insts().to_vec();
        for i in &mut insts {
            if i.op == Op::Input {
                i.args[0] = new_index[i.args[0] as usize];
            }
        }
        lp.body = Tape::from_structured(
            insts,
            lp.body.outputs().to_vec(),
            next as usize,
            lp.body.n_params(),
            lp.body.loops().to_vec(),
            Vec::new(),
        )
        .with_checkpoints(lp.body.checkpoints().to_vec());
        let mut k = keep_inv.iter();
        lp.invariants
            .retain(|_| *k.next().expect("one flag per invariant"));
        let mut k = keep_read.iter();
        lp.reads.retain(|_| *k.next().expect("one flag per read"));
    }
    changed.then(|| {
        Tape::from_structured(
            tape.insts().to_vec(),
            tape.outputs().to_vec(),
            tape.n_inputs(),
            tape.n_params(),
            loops,
            tape.arrays().to_vec(),
        )
        .with_checkpoints(tape.checkpoints().to_vec())
    })
}

/// Whether `lp` (or a loop or store nested in it) writes an array read
/// later (any array, inside a body, where the root's arrays are unknown).
fn writes_read_array(lp: &Loop, array_read: &[bool]) -> bool {
    let read = |a: u32| *array_read.get(a as usize).unwrap_or(&true);
    lp.writes.iter().any(|w| match w.access.buffer {
        Buffer::Array(a) => read(a),
        _ => false,
    }) || lp
        .body
        .insts()
        .iter()
        .any(|i| i.op == Op::Store && read(i.args[0]))
        || lp
            .body
            .loops()
            .iter()
            .any(|l| writes_read_array(l, array_read))
}

/// Marks the arrays `lp` (or a loop nested in it, or an `elem` in its body) reads.
fn mark_reads(lp: &Loop, array_read: &mut [bool]) {
    for r in &lp.reads {
        if let Buffer::Array(a) = r.buffer {
            if let Some(r) = array_read.get_mut(a as usize) {
                *r = true;
            }
        }
    }
    for inst in lp.body.insts() {
        if inst.op == Op::Elem {
            if let Some(r) = array_read.get_mut(inst.args[0] as usize) {
                *r = true;
            }
        }
    }
    for inner in lp.body.loops() {
        mark_reads(inner, array_read);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_outputs_guards_and_their_operands() {
        let t: Tape = "tape inputs=2 params=0
%0 = input 0
%1 = input 1
%2 = sin %0
%3 = cos %1
%4 = lt %0 %1
%5 = guard %4 true
%6 = exp %3
outputs %2
"
        .parse()
        .unwrap();
        let d = dce(&t);
        let ops: Vec<&str> = d.insts().iter().map(|i| i.op.name()).collect();
        assert_eq!(ops, ["input", "input", "sin", "lt", "guard"], "{d}");
        d.verify().unwrap();
    }
}
