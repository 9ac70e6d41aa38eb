//! Splitting a tape into chunks, each compiled as its own function, and
//! giving scratch slots to the values that cross chunk boundaries.
//!
//! Bounding the size of each Cranelift function keeps register allocation
//! (superlinear in function size) linear in tape length overall.

use crate::ir::{Op, Tape};
use std::ops::Range;

const NO_SLOT: u32 = u32::MAX;

/// Chunks and scratch slots of one tape.
#[derive(Debug)]
pub(super) struct Layout {
    pub chunks: Vec<Range<usize>>,
    slots: Vec<u32>,
    pub n_slots: usize,
}

impl Layout {
    /// Chunks of at most `chunk_len` instructions (guards never split from
    /// nothing: any boundary is fine since all state crosses via slots).
    pub fn plan(tape: &Tape, chunk_len: usize) -> Layout {
        let n = tape.len();
        let chunk_len = chunk_len.max(1);
        let chunks: Vec<Range<usize>> = (0..n)
            .step_by(chunk_len)
            .map(|s| s..(s + chunk_len).min(n))
            .collect();
        let chunk_of = |i: usize| i / chunk_len;
        let mut slots = vec![NO_SLOT; n];
        let mut n_slots = 0;
        for (i, inst) in tape.insts().iter().enumerate() {
            for &v in inst.operands() {
                let v = v as usize;
                let def = tape.insts()[v].op;
                // Leaves are rematerialized where used; only computed values need memory.
                let leaf = matches!(def, Op::Const | Op::Input | Op::Param);
                if !leaf && chunk_of(v) != chunk_of(i) && slots[v] == NO_SLOT {
                    slots[v] = n_slots;
                    n_slots += 1;
                }
            }
        }
        Layout {
            chunks,
            slots,
            n_slots: n_slots as usize,
        }
    }

    /// The scratch slot of value `i`, if it is used outside its chunk.
    pub fn slot(&self, i: usize) -> Option<u32> {
        match self.slots[i] {
            NO_SLOT => None,
            s => Some(s),
        }
    }
}
