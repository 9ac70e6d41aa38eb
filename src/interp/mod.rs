//! The reference interpreter: the oracle every other backend and pass is
//! checked against, and the "interpreted" column of the benchmarks.

use crate::ad::checkpoint::{Action, Schedule};
use crate::error::{check_len, Error, Result};
use crate::ir::{flush, semantics, Access, Buffer, Checkpoint, Loop, Op, Output, Tape, WriteMode};

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
    eval_verified(tape, inputs, params, values, out, false)
}

/// [`eval`], with subnormals flushed if `flush_subnormals` (the semantics
/// of `Options::flush_subnormals`, emulated as [`crate::ir::flush`] defines
/// it: every value the tape computes or reads from its inputs, parameters
/// and constants is flushed where it is written, products and quotients by
/// the host's tininess rule, so that the result is the JIT's bit for bit).
pub fn eval_with(
    tape: &Tape,
    inputs: &[f64],
    params: &[f64],
    values: &mut Vec<f64>,
    out: &mut [f64],
    flush_subnormals: bool,
) -> Result<()> {
    tape.verify()?;
    eval_verified(tape, inputs, params, values, out, flush_subnormals)
}

/// [`eval_with`] for a tape known to verify.
pub(crate) fn eval_verified(
    tape: &Tape,
    inputs: &[f64],
    params: &[f64],
    values: &mut Vec<f64>,
    out: &mut [f64],
    flush_subnormals: bool,
) -> Result<()> {
    check_len("inputs", inputs.len(), tape.n_inputs())?;
    check_len("params", params.len(), tape.n_params())?;
    check_len("outputs", out.len(), tape.n_outputs())?;
    // Every slot is written before it is read (SSA order), so stale values
    // from an earlier tape need no clearing; arrays start at -0.0.
    let frame = frame_len(tape);
    let mut array_base = Vec::new();
    let mut total = frame;
    if !tape.arrays().is_empty() {
        array_base = tape
            .arrays()
            .iter()
            .map(|&len| {
                total += len as usize;
                total - len as usize - frame
            })
            .collect();
    }
    if values.len() < total {
        values.resize(total, 0.0);
    }
    let (frame, arrays) = values[..total].split_at_mut(frame);
    arrays.fill(-0.0);
    let mut env = Env {
        inputs,
        params,
        arrays,
        array_base: &array_base,
        index: Vec::new(),
        flush: flush_subnormals,
    };
    run(tape, inputs, &mut env, frame)?;
    let mut k = 0;
    for o in tape.outputs() {
        match *o {
            Output::Value(v) => {
                out[k] = frame[v as usize];
                k += 1;
            }
            Output::Slice { array, start, len } => {
                let at = array_base[array as usize] + start as usize;
                out[k..k + len as usize].copy_from_slice(&env.arrays[at..at + len as usize]);
                k += len as usize;
            }
        }
    }
    Ok(())
}

/// Workspace slots one evaluation of `tape` needs besides its arrays: one
/// per instruction, and per loop its body's input slots and frame.
fn frame_len(tape: &Tape) -> usize {
    tape.len()
        + tape
            .loops()
            .iter()
            .map(|l| l.body.n_inputs() + frame_len(&l.body))
            .sum::<usize>()
        + tape.checkpoints().iter().map(checkpoint_len).sum::<usize>()
}

/// Workspace slots a checkpointed loop needs beyond its body's: the step's
/// inputs (the current forward state first) and frame, and the snapshots.
fn checkpoint_len(cp: &Checkpoint) -> usize {
    cp.step.n_inputs() + frame_len(&cp.step) + cp.snapshots as usize * cp.n_carried()
}

/// What every level of a loop nest shares: the root's buffers and the
/// iteration numbers of the enclosing loops.
struct Env<'a> {
    inputs: &'a [f64],
    params: &'a [f64],
    arrays: &'a mut [f64],
    array_base: &'a [usize],
    index: Vec<u32>,
    /// Subnormals flushed (see [`eval_with`]).
    flush: bool,
}

impl Env<'_> {
    fn slot(&self, a: &Access) -> usize {
        let k = a.element(&self.index) as usize;
        match a.buffer {
            Buffer::Array(id) => self.array_base[id as usize] + k,
            _ => k,
        }
    }

    fn read(&self, a: &Access) -> f64 {
        let k = self.slot(a);
        match a.buffer {
            Buffer::Input if self.flush => flush::flush(self.inputs[k]),
            Buffer::Param if self.flush => flush::flush(self.params[k]),
            Buffer::Input => self.inputs[k],
            Buffer::Param => self.params[k],
            // Arrays hold values already written by this evaluation.
            Buffer::Array(_) => self.arrays[k],
        }
    }
}

/// The dispatch loop, compiled twice: as IEEE arithmetic, and with
/// subnormals flushed (`FLUSH`).
fn run(tape: &Tape, inputs: &[f64], env: &mut Env<'_>, frame: &mut [f64]) -> Result<()> {
    if env.flush {
        run_as::<true>(tape, inputs, env, frame)
    } else {
        run_as::<false>(tape, inputs, env, frame)
    }
}

/// Hot arithmetic is spelled out here; everything else goes through
/// [`semantics`], the definition shared with the tracer. `inputs` are the
/// tape's own inputs (a loop body's slots); `frame` holds its values
/// followed by the frames of its loops. With `FLUSH`, every value is
/// flushed where it is written (so operands are flushed already), and the
/// ops whose hardware result is not "the IEEE result, flushed" are
/// computed by [`flush`].
#[inline(always)]
fn run_as<const FLUSH: bool>(
    tape: &Tape,
    inputs: &[f64],
    env: &mut Env<'_>,
    frame: &mut [f64],
) -> Result<()> {
    let (v, loop_frames) = frame.split_at_mut(tape.len());
    let mut next_frame = 0usize;
    for (i, inst) in tape.insts().iter().enumerate() {
        let [a, b, c] = inst.args;
        let (a, b, c) = (a as usize, b as usize, c as usize);
        let r = match inst.op {
            Op::Input => inputs[a],
            Op::Param => env.params[a],
            Op::Const => inst.const_value(),
            Op::Add => v[a] + v[b],
            Op::Sub => v[a] - v[b],
            Op::Mul if FLUSH => flush::mul(v[a], v[b]),
            Op::Div | Op::Recip if FLUSH => {
                let (num, den) = if inst.op == Op::Div {
                    (v[a], v[b])
                } else {
                    (1.0, v[a])
                };
                flush::div(num, den)
            }
            Op::PowI if FLUSH => flush::powi(v[a], inst.powi_exponent()),
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
            Op::Elem => env.arrays[env.array_base[a] + b],
            Op::Store => {
                env.arrays[env.array_base[a] + b] = v[c];
                0.0
            }
            Op::Loop => {
                let lp = tape.loop_of(inst);
                let cp = tape.checkpoint_of(inst);
                let size = lp.body.n_inputs() + frame_len(&lp.body) + cp.map_or(0, checkpoint_len);
                let start = next_frame;
                next_frame += size;
                run_loop(lp, cp, v, env, &mut loop_frames[start..start + size])
                    .map_err(|e| in_body(e, i))?;
                // The loop's own slot remembers where its frame starts, for
                // `loopout` (bits that must not be flushed).
                v[i] = f64::from_bits(start as u64);
                continue;
            }
            Op::LoopOut => {
                let start = v[a].to_bits() as usize;
                loop_frames[start + b]
            }
            op => match op.arity() {
                1 => semantics::unary(op, v[a]),
                2 => semantics::binary(op, v[a], v[b]),
                _ => semantics::ternary(op, v[a], v[b], v[c]),
            },
        };
        v[i] = if FLUSH { flush::flush(r) } else { r };
    }
    Ok(())
}

/// Runs `lp` whose enclosing tape's values are `outer`. `frame` holds the
/// body's input slots (carried values first, so they hold the final carried
/// values afterwards) followed by the body's own frame.
fn run_loop(
    lp: &Loop,
    checkpoint: Option<&Checkpoint>,
    outer: &[f64],
    env: &mut Env<'_>,
    frame: &mut [f64],
) -> Result<()> {
    let (slots, rest) = frame.split_at_mut(lp.body.n_inputs());
    let (body_frame, checkpoint_frame) = rest.split_at_mut(frame_len(&lp.body));
    for (slot, &v) in slots.iter_mut().zip(lp.init.iter().chain(&lp.invariants)) {
        *slot = outer[v as usize];
    }
    env.index.push(0);
    let result = match checkpoint {
        None => (0..lp.trips).try_for_each(|k| iterate(lp, k, slots, body_frame, env)),
        Some(cp) => run_checkpointed(lp, cp, outer, slots, body_frame, checkpoint_frame, env),
    };
    env.index.pop();
    result
}

/// Iteration `k` of `lp`: reads, the body, the next carried values, writes.
fn iterate(
    lp: &Loop,
    k: u32,
    slots: &mut [f64],
    body_frame: &mut [f64],
    env: &mut Env<'_>,
) -> Result<()> {
    *env.index.last_mut().expect("the loop's index is pushed") = k;
    let carried = lp.n_carried();
    let first_read = carried + lp.invariants.len();
    for (slot, r) in slots[first_read..].iter_mut().zip(&lp.reads) {
        *slot = env.read(r);
    }
    run(&lp.body, slots, env, body_frame)?;
    let outputs = lp.body.outputs();
    for (slot, o) in slots[..carried].iter_mut().zip(outputs) {
        *slot = body_frame[body_value(o)];
    }
    for (w, o) in lp.writes.iter().zip(&outputs[carried..]) {
        let x = body_frame[body_value(o)];
        let at = env.slot(&w.access);
        match w.mode {
            WriteMode::Store => env.arrays[at] = x,
            WriteMode::Add if env.flush => env.arrays[at] = flush::flush(env.arrays[at] + x),
            WriteMode::Add => env.arrays[at] += x,
        }
    }
    Ok(())
}

/// Runs the reverse loop `lp` by the binomial schedule of `cp`: the forward
/// state each reverse iteration needs is recomputed by `cp.step` from the
/// nearest snapshot. `frame` holds the step's inputs (the current state
/// first), the step's frame, then the snapshots.
fn run_checkpointed(
    lp: &Loop,
    cp: &Checkpoint,
    outer: &[f64],
    slots: &mut [f64],
    body_frame: &mut [f64],
    frame: &mut [f64],
    env: &mut Env<'_>,
) -> Result<()> {
    let m = cp.n_carried();
    let (step_slots, rest) = frame.split_at_mut(cp.step.n_inputs());
    let (step_frame, snapshots) = rest.split_at_mut(frame_len(&cp.step));
    for (slot, &v) in step_slots
        .iter_mut()
        .zip(cp.init.iter().chain(&cp.invariants))
    {
        *slot = outer[v as usize];
    }
    let first_read = m + cp.invariants.len();
    let first_state = lp.body.n_inputs() - cp.states.len();
    let schedule = Schedule::binomial(lp.trips, cp.snapshots)?;
    for action in schedule.actions() {
        match action {
            Action::Advance { from, to } => {
                for k in from..to {
                    *env.index.last_mut().expect("the loop's index is pushed") = k;
                    for (slot, r) in step_slots[first_read..].iter_mut().zip(&cp.reads) {
                        *slot = env.read(r);
                    }
                    run(&cp.step, step_slots, env, step_frame)?;
                    for (slot, o) in step_slots[..m].iter_mut().zip(cp.step.outputs()) {
                        *slot = step_frame[body_value(o)];
                    }
                }
            }
            Action::Snapshot { slot, .. } => {
                let at = slot as usize * m;
                snapshots[at..at + m].copy_from_slice(&step_slots[..m]);
            }
            Action::Restore { slot, .. } => {
                let at = slot as usize * m;
                step_slots[..m].copy_from_slice(&snapshots[at..at + m]);
            }
            Action::Reverse { step } => {
                for (slot, &j) in slots[first_state..].iter_mut().zip(&cp.states) {
                    *slot = step_slots[j as usize];
                }
                iterate(lp, lp.trips - 1 - step, slots, body_frame, env)?;
            }
        }
    }
    Ok(())
}

/// A body's output (always a value: the verifier checks it).
fn body_value(o: &Output) -> usize {
    match *o {
        Output::Value(v) => v as usize,
        Output::Slice { .. } => unreachable!("verified: loop bodies output values only"),
    }
}

/// A guard failure inside the body of loop instruction `lp`: the guard's
/// ordinal and instruction are the body's, its detail says which body
/// (outermost loop first when nested).
pub(crate) fn in_body(e: Error, lp: usize) -> Error {
    match e {
        Error::GuardFailed {
            guard,
            instr,
            detail,
        } => Error::GuardFailed {
            guard,
            instr,
            detail: format!("in the body of loop %{lp}: {detail}"),
        },
        other => other,
    }
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
