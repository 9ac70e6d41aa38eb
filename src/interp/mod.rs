//! The reference interpreter: the oracle every other backend and pass is
//! checked against, and the "interpreted" column of the benchmarks.

use crate::error::{check_len, Error, Result};
use crate::ir::{semantics, Op, Tape};

/// Evaluates `tape` on `inputs` and `params`, writing its outputs to `out`.
///
/// `values` is the workspace holding one `f64` per instruction; pass the same
/// vector again to evaluate without allocating. The tape is verified first
/// (a linear scan; [`crate::Function`] verifies once and skips it), lengths
/// are checked, and a guard that does not hold returns [`Error::GuardFailed`].
pub fn eval(
    tape: &Tape,
    inputs: &[f64],
    params: &[f64],
    values: &mut Vec<f64>,
    out: &mut [f64],
) -> Result<()> {
    tape.verify()?;
    eval_verified(tape, inputs, params, values, out)
}

/// [`eval`] for a tape known to verify.
pub(crate) fn eval_verified(
    tape: &Tape,
    inputs: &[f64],
    params: &[f64],
    values: &mut Vec<f64>,
    out: &mut [f64],
) -> Result<()> {
    check_len("inputs", inputs.len(), tape.n_inputs())?;
    check_len("params", params.len(), tape.n_params())?;
    check_len("outputs", out.len(), tape.n_outputs())?;
    // Every slot is written before it is read (SSA order), so stale values
    // from an earlier tape need no clearing.
    if values.len() < tape.len() {
        values.resize(tape.len(), 0.0);
    }
    run(tape, inputs, params, &mut values[..tape.len()])?;
    for (o, &v) in out.iter_mut().zip(tape.outputs()) {
        *o = values[v as usize];
    }
    Ok(())
}

/// The dispatch loop. Hot arithmetic is spelled out here; everything else
/// goes through [`semantics`], the definition shared with the tracer.
fn run(tape: &Tape, inputs: &[f64], params: &[f64], v: &mut [f64]) -> Result<()> {
    for (i, inst) in tape.insts().iter().enumerate() {
        let [a, b, c] = inst.args;
        let (a, b, c) = (a as usize, b as usize, c as usize);
        let r = match inst.op {
            Op::Input => inputs[a],
            Op::Param => params[a],
            Op::Const => inst.const_value(),
            Op::Add => v[a] + v[b],
            Op::Sub => v[a] - v[b],
            Op::Mul => v[a] * v[b],
            Op::Div => v[a] / v[b],
            Op::Neg => -v[a],
            Op::MulAdd => v[a].mul_add(v[b], v[c]),
            Op::Select => {
                if semantics::truthy(v[a]) {
                    v[b]
                } else {
                    v[c]
                }
            }
            Op::PowI => semantics::powi(v[a], inst.powi_exponent()),
            Op::Guard => {
                if semantics::truthy(v[a]) != inst.guard_expect() {
                    return Err(guard_failure(tape, i as u32));
                }
                0.0
            }
            op => match op.arity() {
                1 => semantics::unary(op, v[a]),
                2 => semantics::binary(op, v[a], v[b]),
                _ => semantics::ternary(op, v[a], v[b], v[c]),
            },
        };
        v[i] = r;
    }
    Ok(())
}

/// The error for guard instruction `instr`, naming it and its condition.
pub(crate) fn guard_failure(tape: &Tape, instr: u32) -> Error {
    Error::GuardFailed {
        guard: tape.guard_ordinal(instr),
        instr,
        detail: tape.describe_guard(instr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_and_checks_guards_and_lengths() {
        let tape: Tape = "tape inputs=1 params=1
%0 = input 0
%1 = param 0
%2 = lt %0 %1
%3 = guard %2 true
%4 = mul %0 %1
outputs %4
"
        .parse()
        .unwrap();
        let mut ws = Vec::new();
        let mut out = [0.0];
        eval(&tape, &[2.0], &[3.0], &mut ws, &mut out).unwrap();
        assert_eq!(out, [6.0]);
        let err = eval(&tape, &[4.0], &[3.0], &mut ws, &mut out).unwrap_err();
        assert!(
            matches!(
                err,
                Error::GuardFailed {
                    guard: 0,
                    instr: 3,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("lt %0 %1 was true"), "{err}");
        let err = eval(&tape, &[1.0, 2.0], &[3.0], &mut ws, &mut out).unwrap_err();
        assert_eq!(
            err,
            Error::WrongLength {
                what: "inputs",
                expected: 1,
                got: 2
            }
        );
        assert!(eval(&tape, &[1.0], &[], &mut ws, &mut out).is_err());
        assert!(eval(&tape, &[1.0], &[3.0], &mut ws, &mut []).is_err());
    }
}
