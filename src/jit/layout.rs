//! Splitting a tape into chunks, each compiled as its own function, and
//! placing what lives in the scratch buffer: the values that cross chunk
//! boundaries, then the arrays, then the regions of checkpointed loops.
//!
//! Bounding the size of each Cranelift function keeps register allocation
//! (superlinear in function size) linear in tape length overall. A loop is
//! lowered inline with its whole body (nested loops included), so it
//! counts [`Tape::static_len`] of its body toward its chunk's budget and is
//! never split; a loop larger than the budget gets a chunk of its own.

use crate::ir::{Op, Tape};
use std::collections::HashMap;
use std::ops::Range;

const NO_SLOT: u32 = u32::MAX;

/// Chunks and scratch slots of one tape.
#[derive(Debug)]
pub(super) struct Layout {
    /// Root instructions of each chunk, in order, covering the tape.
    pub chunks: Vec<Range<usize>>,
    /// The chunk of each root instruction.
    chunk_of: Vec<u32>,
    /// Scratch slot of each root value used outside its chunk.
    slots: Vec<u32>,
    /// Scratch slots of carried values read by a `loopout` in another chunk
    /// than the loop's: loop instruction -> (carried value, slot).
    loop_slots: HashMap<u32, Vec<(u32, u32)>>,
    /// Scratch index of element 0 of each array.
    pub array_base: Vec<usize>,
    /// Scratch index of the region of each checkpoint (snapshots and
    /// schedule, see `checkpoint`), after the arrays.
    pub checkpoint_base: Vec<usize>,
    /// Scratch `f64`s one evaluation needs: slots, arrays, checkpoints.
    pub scratch_len: usize,
    /// Root loops' `add` writes lowered as stores (see `arrays::fresh_writes`).
    pub fresh: HashMap<u32, Vec<bool>>,
}

/// Instructions a root instruction costs in its chunk: one, plus a loop's
/// body and nested bodies (a checkpointed loop's bodies are functions of
/// their own, see `checkpoint`: its chunk only calls the driver).
fn weight(tape: &Tape, i: usize) -> usize {
    let inst = &tape.insts()[i];
    if inst.op == Op::Loop && tape.checkpoint_of(inst).is_none() {
        1 + tape.loop_of(inst).body.static_len()
    } else {
        1
    }
}

impl Layout {
    /// Greedy chunks of at most `chunk_len` instructions (loop bodies
    /// included; a loop larger than that is a chunk alone). Any boundary
    /// is fine otherwise: all state crossing one goes through scratch.
    pub fn plan(tape: &Tape, chunk_len: usize) -> Layout {
        let n = tape.len();
        let chunk_len = chunk_len.max(1);
        let mut chunks = Vec::new();
        let mut chunk_of = Vec::with_capacity(n);
        let (mut start, mut size) = (0, 0);
        for i in 0..n {
            let w = weight(tape, i);
            if size > 0 && size + w > chunk_len {
                chunks.push(start..i);
                (start, size) = (i, 0);
            }
            size += w;
            chunk_of.push(chunks.len() as u32);
        }
        if n > 0 {
            chunks.push(start..n);
        }

        let mut slots = vec![NO_SLOT; n];
        let mut loop_slots: HashMap<u32, Vec<(u32, u32)>> = HashMap::new();
        let mut n_slots = 0u32;
        for (i, inst) in tape.insts().iter().enumerate() {
            if inst.op == Op::LoopOut {
                let (lp, k) = (inst.args[0], inst.args[1]);
                if chunk_of[lp as usize] != chunk_of[i] {
                    let entry = loop_slots.entry(lp).or_default();
                    if !entry.iter().any(|&(c, _)| c == k) {
                        entry.push((k, n_slots));
                        n_slots += 1;
                    }
                }
                continue;
            }
            for v in tape.uses(i) {
                let v = v as usize;
                let def = tape.insts()[v].op;
                // Leaves are rematerialized where used; only computed values need memory.
                let leaf = matches!(def, Op::Const | Op::Input | Op::Param);
                if !leaf && chunk_of[v] != chunk_of[i] && slots[v] == NO_SLOT {
                    slots[v] = n_slots;
                    n_slots += 1;
                }
            }
        }
        let mut scratch_len = n_slots as usize;
        let array_base = tape
            .arrays()
            .iter()
            .map(|&len| {
                scratch_len += len as usize;
                scratch_len - len as usize
            })
            .collect();
        let mut checkpoint_base = Vec::new();
        for inst in tape.insts().iter().filter(|i| i.op == Op::Loop) {
            if let Some(cp) = tape.checkpoint_of(inst) {
                checkpoint_base.push(scratch_len);
                scratch_len += super::checkpoint::region_len(tape.loop_of(inst), cp);
            }
        }
        Layout {
            chunks,
            chunk_of,
            slots,
            loop_slots,
            array_base,
            checkpoint_base,
            scratch_len,
            fresh: super::arrays::fresh_writes(tape),
        }
    }

    /// The chunk of root instruction `i`.
    pub fn chunk_of(&self, i: usize) -> usize {
        self.chunk_of[i] as usize
    }

    /// The scratch slot of value `i`, if it is used outside its chunk.
    pub fn slot(&self, i: usize) -> Option<u32> {
        match self.slots[i] {
            NO_SLOT => None,
            s => Some(s),
        }
    }

    /// The carried values of root loop instruction `lp` read in other
    /// chunks, with their slots.
    pub fn loop_slots(&self, lp: usize) -> &[(u32, u32)] {
        self.loop_slots.get(&(lp as u32)).map_or(&[], Vec::as_slice)
    }

    /// The slot of carried value `k` of root loop instruction `lp`, for a
    /// `loopout` in another chunk.
    pub fn loop_slot(&self, lp: u32, k: u32) -> Option<u32> {
        self.loop_slots
            .get(&lp)?
            .iter()
            .find(|&&(c, _)| c == k)
            .map(|&(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Inst, Loop};

    /// `n` straight instructions, a loop whose body has `body` instructions,
    /// then a `loopout` of it and `n` more.
    fn tape_with_loop(n: usize, body_len: usize) -> Tape {
        let mut body = Tape::new(1, 0);
        let mut v = body.push(Inst::input(0));
        for _ in 1..body_len {
            v = body.push(Inst::unary(Op::Sin, v));
        }
        body.push_output(v);
        let mut t = Tape::new(1, 0);
        let mut v = t.push(Inst::input(0));
        for _ in 1..n {
            v = t.push(Inst::unary(Op::Cos, v));
        }
        let lp = t.push_loop(Loop {
            trips: 3,
            body,
            init: vec![v],
            invariants: vec![],
            reads: vec![],
            writes: vec![],
        });
        let mut v = t.push(Inst::loop_out(lp, 0));
        for _ in 0..n {
            v = t.push(Inst::unary(Op::Exp, v));
        }
        t.push_output(v);
        t.verify().unwrap();
        t
    }

    #[test]
    fn a_loop_counts_its_body_and_is_never_split() {
        let t = tape_with_loop(4, 5);
        let l = Layout::plan(&t, 8);
        // 4 straight, then the loop (weight 6) cannot join them; its
        // `loopout` can.
        assert_eq!(l.chunks[0], 0..4);
        assert_eq!(l.chunks[1].start, 4);
        assert_eq!(l.chunk_of(5), 1);
        assert!(l.loop_slots(4).is_empty());
        // A body larger than the budget: the loop is a chunk alone.
        let t = tape_with_loop(4, 50);
        let l = Layout::plan(&t, 8);
        assert_eq!(l.chunks[1], 4..5);
        assert_eq!(l.chunk_of(5), 2);
        // The init value (%3) crosses into the loop's chunk, the carried
        // value to the `loopout` in the next one.
        assert_eq!(l.slot(3), Some(0));
        assert_eq!(l.loop_slots(4), &[(0, 1)]);
        assert_eq!(l.loop_slot(4, 0), Some(1));
        assert_eq!(l.scratch_len, 2);
    }

    #[test]
    fn arrays_follow_the_slots() {
        let mut t = tape_with_loop(2, 2);
        let a = t.add_array(5);
        let b = t.add_array(3);
        let l = Layout::plan(&t, 1000);
        assert_eq!(l.chunks, vec![0..t.len()]);
        assert_eq!(l.array_base, vec![0, 5]);
        assert_eq!(l.scratch_len, 8);
        assert_eq!((a, b), (0, 1));
    }
}
