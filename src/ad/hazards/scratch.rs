//! Scratch arrays: the side effects a reverse loop may safely run again.
//!
//! Rerolling makes them (gmm: each iteration of the outer loop fills an
//! array by a nested loop, then nested loops read it). A reverse loop that
//! recomputes an iteration refills such an array before re-reading it, so
//! the re-reads see the iteration's own values and the refill disturbs
//! nothing: no other instruction reads the array. That holds when every
//! access to the array is made inside the body of one loop, its owner (the
//! innermost such loop; not the root, and the array is not an output), and
//! in every iteration of the owner each element is first overwritten (a
//! `store`), then read, and never written after a read. (gmm at larger
//! sizes fills an array anew in each iteration of a loop nested in the
//! root loop, so the owner must be allowed below the root.)

use crate::ir::{Buffer, Loop, Op, Output, Tape, WriteMode};

/// Most body instructions and accesses [`arrays`] walks; past it, a loop's
/// arrays are not scratch (and the tape is refused if they matter).
const MAX_STEPS: u64 = 1 << 26;

/// Which arrays of `tape` are scratch of the iterations of their owner: the
/// innermost loop whose body (nested loops included) holds every access.
pub(super) fn arrays(tape: &Tape) -> Vec<bool> {
    let n = tape.arrays().len();
    // The loop path (loop instructions from the root in) of the body making
    // an access; a loop's own reads and writes are made by the body holding it.
    let mut owner: Vec<Option<Vec<u32>>> = vec![None; n];
    let mut excluded = vec![false; n];
    for out in tape.outputs() {
        if let Output::Slice { array, .. } = *out {
            excluded[array as usize] = true;
        }
    }
    accesses(tape, &mut Vec::new(), &mut |a, path| {
        let common = match &owner[a] {
            None => path.len(),
            Some(o) => o.iter().zip(path).take_while(|(x, y)| x == y).count(),
        };
        let mut o = owner[a].take().unwrap_or_else(|| path.to_vec());
        o.truncate(common);
        // Touched by the root itself: nothing runs it again.
        excluded[a] |= o.is_empty();
        owner[a] = Some(o);
    });
    let mut scratch: Vec<bool> = (0..n).map(|a| owner[a].is_some() && !excluded[a]).collect();
    let mut owners: Vec<Vec<u32>> = Vec::new();
    let owner_id: Vec<usize> = (0..n)
        .map(|a| match (&owner[a], scratch[a]) {
            (Some(o), true) => owners.iter().position(|x| x == o).unwrap_or_else(|| {
                owners.push(o.clone());
                owners.len() - 1
            }),
            _ => usize::MAX,
        })
        .collect();
    for (i, inst) in tape.insts().iter().enumerate() {
        if inst.op != Op::Loop || !owners.iter().any(|o| o[0] == i as u32) {
            continue;
        }
        let lp = tape.loop_of(inst);
        let mut walk = Walk {
            scratch: scratch.clone(),
            state: tape
                .arrays()
                .iter()
                .map(|&len| vec![(0, 0); len as usize])
                .collect(),
            owner_id: owner_id.clone(),
            owners: owners.clone(),
            entered: vec![0; owners.len()],
            path: vec![i as u32],
            steps: 0,
        };
        let mut index = vec![0];
        for k in 0..lp.trips {
            index[0] = k;
            walk.enter();
            if !walk.body(&lp.body, &mut index) {
                // Too large to check: nothing this loop owns is scratch.
                walk.scratch.iter_mut().for_each(|s| *s = false);
                break;
            }
        }
        for a in 0..n {
            if owner[a]
                .as_ref()
                .is_some_and(|o| o.first() == Some(&(i as u32)))
            {
                scratch[a] = walk.scratch[a];
            }
        }
    }
    scratch
}

/// Calls `visit(array, path)` for every array access in `tape` and its
/// bodies, `path` being the loops (by instruction, from the root) whose
/// body makes the access.
fn accesses(tape: &Tape, path: &mut Vec<u32>, visit: &mut impl FnMut(usize, &[u32])) {
    for (j, inst) in tape.insts().iter().enumerate() {
        match inst.op {
            Op::Store | Op::Elem => visit(inst.args[0] as usize, path),
            Op::Loop => {
                let lp = tape.loop_of(inst);
                for access in lp.reads.iter().chain(lp.writes.iter().map(|w| &w.access)) {
                    if let Buffer::Array(a) = access.buffer {
                        visit(a as usize, path);
                    }
                }
                path.push(j as u32);
                accesses(&lp.body, path, visit);
                path.pop();
            }
            _ => {}
        }
    }
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

/// The accesses of a root loop to candidate arrays, in program order,
/// ruling out the arrays an iteration of their owner reads before
/// overwriting or writes after reading.
struct Walk {
    /// Candidates still standing.
    scratch: Vec<bool>,
    /// Per element: the owner iteration (numbered from one) of its last
    /// access, and whether that access read (`2`) or wrote (`1`) it.
    state: Vec<Vec<(u32, u8)>>,
    /// Each array's owner, an index into `owners`.
    owner_id: Vec<usize>,
    /// The owner loops, by path.
    owners: Vec<Vec<u32>>,
    /// Iterations of each owner entered so far.
    entered: Vec<u32>,
    /// The loop path of the body being walked.
    path: Vec<u32>,
    steps: u64,
}

impl Walk {
    /// Starts an iteration of the loop at `self.path`.
    fn enter(&mut self) {
        if let Some(o) = self.owners.iter().position(|o| *o == self.path) {
            self.entered[o] += 1;
        }
    }

    /// The current iteration of array `a`'s owner.
    fn iteration(&self, a: usize) -> u32 {
        self.entered[self.owner_id[a]]
    }

    /// Walks `body` at loop indices `index`; false once past [`MAX_STEPS`].
    fn body(&mut self, body: &Tape, index: &mut Vec<u32>) -> bool {
        self.steps += body.len() as u64;
        if self.steps > MAX_STEPS {
            return false;
        }
        for (j, inst) in body.insts().iter().enumerate() {
            match inst.op {
                Op::Elem => self.read(inst.args[0] as usize, i64::from(inst.args[1])),
                Op::Store => {
                    let e = i64::from(inst.args[1]);
                    self.write(inst.args[0] as usize, e, WriteMode::Store)
                }
                Op::Loop => {
                    let lp = body.loop_of(inst);
                    self.path.push(j as u32);
                    let ok = self.nested(lp, index);
                    self.path.pop();
                    if !ok {
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
            self.enter();
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
        let iteration = self.iteration(a);
        let slot = &mut self.state[a][e as usize];
        // Read before this iteration overwrote it: it depends on the past.
        if slot.0 != iteration {
            self.scratch[a] = false;
        }
        *slot = (iteration, 2);
    }

    fn write(&mut self, a: usize, e: i64, mode: WriteMode) {
        if !self.scratch[a] {
            return;
        }
        let iteration = self.iteration(a);
        let slot = &mut self.state[a][e as usize];
        let first = slot.0 != iteration;
        if (first && mode == WriteMode::Add) || (!first && slot.1 == 2) {
            self.scratch[a] = false;
        }
        *slot = (iteration, 1);
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
