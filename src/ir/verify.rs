//! The verifier: the invariants every backend and transform relies on.

use super::{Op, Shape, Tape};
use crate::error::{Error, Result};

impl Tape {
    /// Checks the tape's invariants:
    /// - every operand names an earlier instruction (SSA order) that is not a guard;
    /// - input and parameter indices are below the tape's counts;
    /// - guard expectations are `0` or `1`, unused argument slots are zero;
    /// - every output names an existing, non-guard instruction.
    pub fn verify(&self) -> Result<()> {
        let insts = self.insts();
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
                if insts[v as usize].op == Op::Guard {
                    return Err(bad(format!("operand %{v} is a guard, which has no value")));
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
                Shape::ValueImm => {
                    check_operand(inst.args[0])?;
                    if inst.op == Op::Guard && inst.args[1] > 1 {
                        return Err(bad("a guard's expectation must be 0 or 1".into()));
                    }
                    unused_zero(2)?;
                }
            }
        }
        for (k, &v) in self.outputs().iter().enumerate() {
            let bad = |message: String| Error::InvalidTape {
                instr: insts.len() as u32,
                message,
            };
            match insts.get(v as usize) {
                None => {
                    return Err(bad(format!(
                        "output {k} names %{v}, but the tape has {} instructions",
                        insts.len()
                    )))
                }
                Some(inst) if inst.op == Op::Guard => {
                    return Err(bad(format!(
                        "output {k} names guard %{v}, which has no value"
                    )))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::ir::{Inst, Op, Tape};

    fn tape(insts: Vec<Inst>, outputs: Vec<u32>) -> Tape {
        Tape::from_parts(insts, outputs, 1, 0)
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
