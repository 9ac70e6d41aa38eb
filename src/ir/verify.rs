//! The verifier: the invariants every backend and transform relies on.

use super::{Access, Buffer, Checkpoint, Loop, Op, Output, Shape, Tape};
use crate::error::{Error, Result};

/// What a body's accesses are checked against: the root tape's buffers and
/// the trip counts of the enclosing loops.
struct Scope<'a> {
    n_inputs: usize,
    n_params: usize,
    arrays: &'a [u32],
    trips: Vec<u32>,
}

impl Tape {
    /// Checks the tape's invariants:
    /// - every operand names an earlier instruction (SSA order) that has a
    ///   value (not a guard, loop or store);
    /// - input and parameter indices are below the tape's counts;
    /// - guard expectations are `0` or `1`, unused argument slots are zero;
    /// - loops: each table entry is run by exactly one `loop` instruction, in
    ///   table order; trip counts are positive; a body's inputs and outputs
    ///   match its carried values, invariants, reads and writes; every
    ///   strided access stays inside its buffer for every iteration; bodies
    ///   are verified recursively;
    /// - `loopout` names a loop and one of its carried values; `elem` and
    ///   `store` name an existing array element;
    /// - every output names an existing instruction with a value, or a slice
    ///   inside an array.
    pub fn verify(&self) -> Result<()> {
        let scope = Scope {
            n_inputs: self.n_inputs(),
            n_params: self.n_params(),
            arrays: self.arrays(),
            trips: Vec::new(),
        };
        self.verify_in(&scope)
    }

    fn verify_in(&self, scope: &Scope<'_>) -> Result<()> {
        let insts = self.insts();
        let mut next_loop = 0usize;
        let mut next_checkpoint = 0usize;
        for (i, inst) in insts.iter().enumerate() {
            let bad = |message: String| Error::InvalidTape {
                instr: i as u32,
                message,
            };
            let check_operand = |v: u32| -> Result<()> {
                if v as usize >= i {
                    return Err(bad(format!(
                        "operand %{v} is not defined before its use (operands must name earlier instructions)"
                    )));
                }
                let op = insts[v as usize].op;
                if op.has_no_value() {
                    return Err(bad(format!(
                        "operand %{v} is a {}, which has no value",
                        op.name()
                    )));
                }
                Ok(())
            };
            let unused_zero = |from: usize| -> Result<()> {
                if inst.args[from..].iter().any(|&a| a != 0) {
                    return Err(bad(format!(
                        "{} uses only {from} argument slot(s), the others must be 0",
                        inst.op.name()
                    )));
                }
                Ok(())
            };
            let check_element = |array: u32, index: u32| -> Result<()> {
                match scope.arrays.get(array as usize) {
                    None => Err(bad(format!(
                        "array {array} does not exist: the tape has {} arrays",
                        scope.arrays.len()
                    ))),
                    Some(&len) if index >= len => Err(bad(format!(
                        "element {index} is outside array {array} of length {len}"
                    ))),
                    _ => Ok(()),
                }
            };
            match inst.op.shape() {
                Shape::Leaf => {
                    let (limit, what) = match inst.op {
                        Op::Input => (self.n_inputs(), "input"),
                        _ => (self.n_params(), "param"),
                    };
                    if inst.args[0] as usize >= limit {
                        return Err(bad(format!(
                            "{what} {} out of range: the tape has {limit} {what}s",
                            inst.args[0]
                        )));
                    }
                    unused_zero(1)?;
                }
                Shape::Const => unused_zero(2)?,
                Shape::Values(n) => {
                    for &v in &inst.args[..n] {
                        check_operand(v)?;
                    }
                    unused_zero(n)?;
                }
                Shape::ValueImm if inst.op == Op::LoopOut => {
                    let lp = inst.args[0];
                    if lp as usize >= i || insts[lp as usize].op != Op::Loop {
                        return Err(bad(format!(
                            "loopout must name an earlier loop instruction, %{lp} is not one"
                        )));
                    }
                    let carried = self.loop_of(&insts[lp as usize]).n_carried();
                    if inst.args[1] as usize >= carried {
                        return Err(bad(format!(
                            "loop %{lp} has {carried} carried values, there is no number {}",
                            inst.args[1]
                        )));
                    }
                    unused_zero(2)?;
                }
                Shape::ValueImm => {
                    check_operand(inst.args[0])?;
                    if inst.op == Op::Guard && inst.args[1] > 1 {
                        return Err(bad("a guard's expectation must be 0 or 1".into()));
                    }
                    unused_zero(2)?;
                }
                Shape::ArrayElem => {
                    check_element(inst.args[0], inst.args[1])?;
                    unused_zero(2)?;
                }
                Shape::ArrayStore => {
                    check_element(inst.args[0], inst.args[1])?;
                    check_operand(inst.args[2])?;
                }
                Shape::Loop => {
                    if inst.args[0] as usize != next_loop || next_loop >= self.loops().len() {
                        return Err(bad(format!(
                            "loop instructions must run the loop table's entries in order: expected loop {next_loop} of {}",
                            self.loops().len()
                        )));
                    }
                    next_loop += 1;
                    unused_zero(2)?;
                    let lp = self.loop_of(inst);
                    for &v in lp.init.iter().chain(&lp.invariants) {
                        check_operand(v)?;
                    }
                    let mut states = 0;
                    if inst.args[1] != 0 {
                        let k = inst.args[1] - 1;
                        if !scope.trips.is_empty() || k as usize != next_checkpoint {
                            return Err(bad(format!(
                                "checkpoint {k}: only loops of the root tape are checkpointed, each \
                                 checkpoint by one loop in table order (expected {next_checkpoint})"
                            )));
                        }
                        let Some(cp) = self.checkpoints().get(k as usize) else {
                            return Err(bad(format!("checkpoint {k} does not exist")));
                        };
                        next_checkpoint += 1;
                        for &v in cp.init.iter().chain(&cp.invariants) {
                            check_operand(v)?;
                        }
                        verify_checkpoint(cp, lp.trips, scope).map_err(|e| match e {
                            Error::InvalidTape { instr, message } => bad(format!(
                                "in the checkpoint step of loop {} (its instruction %{instr}): {message}",
                                inst.args[0]
                            )),
                            other => other,
                        })?;
                        states = cp.states.len();
                    }
                    verify_loop(lp, scope, states).map_err(|e| match e {
                        Error::InvalidTape { instr, message } => bad(format!(
                            "in the body of loop {} (its instruction %{instr}): {message}",
                            inst.args[0]
                        )),
                        other => other,
                    })?;
                }
            }
        }
        if next_checkpoint != self.checkpoints().len() {
            return Err(Error::InvalidTape {
                instr: insts.len() as u32,
                message: format!(
                    "the checkpoint table has {} entries but only {next_checkpoint} loops use one",
                    self.checkpoints().len()
                ),
            });
        }
        if next_loop != self.loops().len() {
            return Err(Error::InvalidTape {
                instr: insts.len() as u32,
                message: format!(
                    "the loop table has {} entries but only {next_loop} loop instructions",
                    self.loops().len()
                ),
            });
        }
        for (k, out) in self.outputs().iter().enumerate() {
            let bad = |message: String| Error::InvalidTape {
                instr: insts.len() as u32,
                message,
            };
            match *out {
                Output::Value(v) => match insts.get(v as usize) {
                    None => {
                        return Err(bad(format!(
                            "output {k} names %{v}, but the tape has {} instructions",
                            insts.len()
                        )))
                    }
                    Some(inst) if inst.op.has_no_value() => {
                        return Err(bad(format!(
                            "output {k} names {} %{v}, which has no value",
                            inst.op.name()
                        )))
                    }
                    _ => {}
                },
                Output::Slice { array, start, len } => {
                    let size = scope.arrays.get(array as usize).copied();
                    if size.is_none_or(|size| start as u64 + len as u64 > size as u64) {
                        return Err(bad(format!(
                            "output {k} is the slice {start}..{} of array {array}, which is outside it",
                            start as u64 + len as u64
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Checks one loop entry against its scope, then its body one level deeper.
/// Checks a checkpoint of a loop of `trips` iterations: its step is a loop
/// body over the forward state (no writes), its states name carried values.
fn verify_checkpoint(cp: &Checkpoint, trips: u32, scope: &Scope<'_>) -> Result<()> {
    let bad = |message: String| Error::InvalidTape {
        instr: cp.step.len() as u32,
        message,
    };
    if cp.snapshots == 0 {
        return Err(bad("a checkpoint needs at least one snapshot".into()));
    }
    if let Some(&j) = cp.states.iter().find(|&&j| j as usize >= cp.init.len()) {
        return Err(bad(format!(
            "state {j} does not exist: the forward state has {} values",
            cp.init.len()
        )));
    }
    let step = Loop {
        trips,
        body: cp.step.clone(),
        init: cp.init.clone(),
        invariants: cp.invariants.clone(),
        reads: cp.reads.clone(),
        writes: Vec::new(),
    };
    verify_loop(&step, scope, 0)
}

/// Checks a loop entry against its scope, then its body one level deeper;
/// `extra_inputs` are body inputs beyond carried, invariants and reads
/// (a checkpoint's states).
fn verify_loop(lp: &Loop, scope: &Scope<'_>, extra_inputs: usize) -> Result<()> {
    let body = &lp.body;
    let bad = |message: String| Error::InvalidTape {
        instr: body.len() as u32,
        message,
    };
    if lp.trips == 0 {
        return Err(bad("a loop must run at least one iteration".into()));
    }
    let expected_inputs = lp.init.len() + lp.invariants.len() + lp.reads.len() + extra_inputs;
    if body.n_inputs() != expected_inputs {
        return Err(bad(format!(
            "the body has {} inputs, expected {expected_inputs} (carried + invariants + reads + checkpoint states)",
            body.n_inputs()
        )));
    }
    if body.n_params() != scope.n_params {
        return Err(bad(format!(
            "the body reads {} params, the root tape has {}",
            body.n_params(),
            scope.n_params
        )));
    }
    if !body.arrays().is_empty() {
        return Err(bad(
            "a loop body cannot own arrays (they belong to the root tape)".into(),
        ));
    }
    let expected_outputs = lp.init.len() + lp.writes.len();
    if body.outputs().len() != expected_outputs || body.output_values().is_none() {
        return Err(bad(format!(
            "the body must output {expected_outputs} values (next carried + writes), it has {} entries",
            body.outputs().len()
        )));
    }
    let mut trips = scope.trips.clone();
    trips.push(lp.trips);
    let check_access = |a: &Access, what: &str| -> Result<()> {
        if a.strides.len() != trips.len() {
            return Err(bad(format!(
                "a {what} at loop depth {} needs {} strides, it has {}",
                trips.len(),
                trips.len(),
                a.strides.len()
            )));
        }
        let len = match a.buffer {
            Buffer::Input => scope.n_inputs as i64,
            Buffer::Param => scope.n_params as i64,
            Buffer::Array(k) => match scope.arrays.get(k as usize) {
                Some(&len) => len as i64,
                None => {
                    return Err(bad(format!(
                        "a {what} names array {k}, which does not exist"
                    )))
                }
            },
        };
        // In i128, so that no offset or stride can overflow the check;
        // within bounds, the i64 arithmetic of the backends cannot overflow.
        let (mut lo, mut hi) = (a.offset as i128, a.offset as i128);
        for (&s, &n) in a.strides.iter().zip(&trips) {
            let span = s as i128 * (n as i128 - 1);
            if span < 0 {
                lo += span;
            } else {
                hi += span;
            }
        }
        let stride_too_large = a.strides.iter().any(|&s| (s as i128).abs() > 1 << 40);
        if stride_too_large || lo < 0 || hi >= len as i128 {
            return Err(bad(format!(
                "a {what} of {:?} at {} with strides {:?} leaves the buffer of length {len}",
                a.buffer, a.offset, a.strides
            )));
        }
        Ok(())
    };
    for r in &lp.reads {
        check_access(r, "read")?;
    }
    for w in &lp.writes {
        if !matches!(w.access.buffer, Buffer::Array(_)) {
            return Err(bad("loops write only to arrays".into()));
        }
        check_access(&w.access, "write")?;
    }
    // Strided reads address the root's inputs; the body's own `input` ops are its slots.
    body.verify_in(&Scope {
        n_inputs: scope.n_inputs,
        n_params: scope.n_params,
        arrays: scope.arrays,
        trips,
    })
}

#[cfg(test)]
mod tests {
    use crate::ir::{Inst, Op, Tape};

    fn tape(insts: Vec<Inst>, outputs: Vec<u32>) -> Tape {
        let outputs = outputs.into_iter().map(crate::ir::Output::Value).collect();
        Tape::from_structured(insts, outputs, 1, 0, Vec::new(), Vec::new())
    }

    #[test]
    fn accepts_a_well_formed_tape() {
        let t = tape(
            vec![
                Inst::input(0),
                Inst::unary(Op::Sin, 0),
                Inst::binary(Op::Lt, 0, 1),
                Inst::guard(2, true),
            ],
            vec![1],
        );
        t.verify().unwrap();
    }

    #[test]
    fn rejects_each_broken_invariant() {
        let cases = vec![
            (vec![Inst::unary(Op::Sin, 0)], vec![], "not defined before"),
            (vec![Inst::input(1)], vec![], "input 1 out of range"),
            (vec![Inst::param(0)], vec![], "param 0 out of range"),
            (
                vec![
                    Inst::input(0),
                    Inst::guard(0, true),
                    Inst::unary(Op::Exp, 1),
                ],
                vec![],
                "is a guard",
            ),
            (vec![Inst::input(0)], vec![3], "output 0 names %3"),
            (
                vec![Inst::input(0), Inst::guard(0, true)],
                vec![1],
                "names guard",
            ),
            (
                vec![Inst {
                    op: Op::Sin,
                    args: [0, 5, 0],
                }],
                vec![],
                "not defined before",
            ),
            (
                vec![
                    Inst::input(0),
                    Inst {
                        op: Op::Sin,
                        args: [0, 5, 0],
                    },
                ],
                vec![],
                "must be 0",
            ),
            (
                vec![
                    Inst::input(0),
                    Inst {
                        op: Op::Guard,
                        args: [0, 2, 0],
                    },
                ],
                vec![],
                "expectation",
            ),
        ];
        for (insts, outputs, needle) in cases {
            let err = tape(insts, outputs).verify().unwrap_err().to_string();
            assert!(err.contains(needle), "{err:?} should mention {needle:?}");
        }
    }
}
