//! Scratch arrays: the side effects a reverse loop may safely run again.
//!
//! Rerolling makes them (gmm: each iteration of the outer loop fills an
//! array by a nested loop, then nested loops read it). A reverse loop that
//! recomputes an iteration refills such an array before re-reading it, so
//! the re-reads see the iteration's own values and the refill disturbs
//! nothing: no other instruction reads the array. That holds when the array
//! is touched by the body of one root loop only (not by its own reads or
//! writes, nor by the root, nor output), and in every iteration each
//! element is first overwritten (a `store`), then read, and never written
//! after a read.

use crate::ir::{Buffer, Loop, Op, Output, Tape, WriteMode};

/// Most body instructions and accesses [`arrays`] walks; past it, a loop's
/// arrays are not scratch (and the tape is refused if they matter).
const MAX_STEPS: u64 = 1 << 26;

/// Which arrays of `tape` are scratch of a root loop's iterations.
pub(super) fn arrays(tape: &Tape) -> Vec<bool> {
    const NONE: usize = usize::MAX;
    let n = tape.arrays().len();
    let (mut owner, mut excluded) = (vec![NONE; n], vec![false; n]);
    for out in tape.outputs() {
        if let Output::Slice { array, .. } = *out {
            excluded[array as usize] = true;
        }
    }
    for (i, inst) in tape.insts().iter().enumerate() {
        match inst.op {
            Op::Store | Op::Elem => excluded[inst.args[0] as usize] = true,
            Op::Loop => {
                let lp = tape.loop_of(inst);
                let own = lp.reads.iter().chain(lp.writes.iter().map(|w| &w.access));
                for access in own {
                    if let Buffer::Array(a) = access.buffer {
                        excluded[a as usize] = true;
                    }
                }
                let mut touched = Vec::new();
                body_arrays(&lp.body, &mut touched);
                for a in touched {
                    if owner[a] != NONE && owner[a] != i {
                        excluded[a] = true;
                    }
                    owner[a] = i;
                }
            }
            _ => {}
        }
    }
    let mut scratch: Vec<bool> = (0..n).map(|a| owner[a] != NONE && !excluded[a]).collect();
    for (i, inst) in tape.insts().iter().enumerate() {
        if inst.op == Op::Loop && (0..n).any(|a| scratch[a] && owner[a] == i) {
            let lp = tape.loop_of(inst);
            let mut walk = Walk {
                scratch: scratch.clone(),
                state: tape
                    .arrays()
                    .iter()
                    .map(|&len| vec![(0, 0); len as usize])
                    .collect(),
                iteration: 0,
                steps: 0,
            };
            let mut index = vec![0];
            for k in 0..lp.trips {
                index[0] = k;
                walk.iteration = k + 1;
                if !walk.body(&lp.body, &mut index) {
                    // Too large to check: nothing of this loop is scratch.
                    walk.scratch.iter_mut().for_each(|s| *s = false);
                    break;
                }
            }
            for a in 0..n {
                if owner[a] == i {
                    scratch[a] = walk.scratch[a];
                }
            }
        }
    }
    scratch
}

/// The arrays `body` touches, nested loops included.
fn body_arrays(body: &Tape, touched: &mut Vec<usize>) {
    for inst in body.insts() {
        match inst.op {
            Op::Store | Op::Elem => touched.push(inst.args[0] as usize),
            Op::Loop => {
                let lp = body.loop_of(inst);
                for access in lp.reads.iter().chain(lp.writes.iter().map(|w| &w.access)) {
                    if let Buffer::Array(a) = access.buffer {
                        touched.push(a as usize);
                    }
                }
                body_arrays(&lp.body, touched);
            }
            _ => {}
        }
    }
}

/// The accesses of one iteration of a root loop to candidate arrays, in
/// program order, ruling out the arrays an iteration reads before
/// overwriting or writes after reading.
struct Walk {
    /// Candidates still standing.
    scratch: Vec<bool>,
    /// Per element: the iteration (plus one) of its last access, and
    /// whether that access read (`2`) or wrote (`1`) it.
    state: Vec<Vec<(u32, u8)>>,
    iteration: u32,
    steps: u64,
}

impl Walk {
    /// Walks `body` at loop indices `index`; false once past [`MAX_STEPS`].
    fn body(&mut self, body: &Tape, index: &mut Vec<u32>) -> bool {
        self.steps += body.len() as u64;
        if self.steps > MAX_STEPS {
            return false;
        }
        for inst in body.insts() {
            match inst.op {
                Op::Elem => self.read(inst.args[0] as usize, i64::from(inst.args[1])),
                Op::Store => {
                    let e = i64::from(inst.args[1]);
                    self.write(inst.args[0] as usize, e, WriteMode::Store)
                }
                Op::Loop => {
                    let lp = body.loop_of(inst);
                    if !self.nested(lp, index) {
                        return false;
                    }
                }
                _ => {}
            }
        }
        true
    }

    fn nested(&mut self, lp: &Loop, index: &mut Vec<u32>) -> bool {
        for k in 0..lp.trips {
            index.push(k);
            for r in &lp.reads {
                if let Buffer::Array(a) = r.buffer {
                    self.read(a as usize, r.element(index));
                }
            }
            let ok = self.body(&lp.body, index);
            for w in &lp.writes {
                if let Buffer::Array(a) = w.access.buffer {
                    self.write(a as usize, w.access.element(index), w.mode);
                }
            }
            index.pop();
            if !ok {
                return false;
            }
        }
        true
    }

    fn read(&mut self, a: usize, e: i64) {
        if !self.scratch[a] {
            return;
        }
        let slot = &mut self.state[a][e as usize];
        // Read before this iteration overwrote it: it depends on the past.
        if slot.0 != self.iteration {
            self.scratch[a] = false;
        }
        *slot = (self.iteration, 2);
    }

    fn write(&mut self, a: usize, e: i64, mode: WriteMode) {
        if !self.scratch[a] {
            return;
        }
        let slot = &mut self.state[a][e as usize];
        let first = slot.0 != self.iteration;
        if (first && mode == WriteMode::Add) || (!first && slot.1 == 2) {
            self.scratch[a] = false;
        }
        *slot = (self.iteration, 1);
    }
}

/// Where loop `lp`, nested in a body, would get the adjoint of a write it
/// overwrites in the same iteration wrong (its reverse reads all its own
/// writes' adjoints at once): a `store` write over an earlier write of the
/// same array, or over one its body makes. Conservative: any such pair of
/// the same array counts.
pub(super) fn overwrites_own_writes(lp: &Loop, path: &str) -> Option<String> {
    let mut in_body = Vec::new();
    body_arrays(&lp.body, &mut in_body);
    for (q, later) in lp.writes.iter().enumerate() {
        let Buffer::Array(a) = later.access.buffer else {
            continue;
        };
        if later.mode != WriteMode::Store {
            continue;
        }
        let earlier = lp.writes[..q]
            .iter()
            .any(|w| w.access.buffer == later.access.buffer);
        if earlier || in_body.contains(&(a as usize)) {
            return Some(format!(
                "loop {path}, nested in a body, stores into a{a} by its write {q}, which may \
                 overwrite what the same iteration wrote there, and its reverse loop would give \
                 the overwritten value the element's adjoint instead of zero"
            ));
        }
    }
    None
}
