//! Tracing [`crate::fold`]: the body is recorded once, as a loop.
//!
//! The body runs on a recorder of its own whose inputs are the carried
//! state and this iteration's reads; values of enclosing traces it touches
//! are captured as loop invariants (parameters are read directly). The
//! loop's results get their trace-time values by running the recorded loop
//! once in the interpreter, which also checks that every iteration takes
//! the branches iteration 0 took.

use super::{Recorder, Var, NEXT_TRACE_ID, RECORDERS};
use crate::ir::{Access, Buffer, Inst, Loop, Op, Output, Tape, Value};
use crate::real::{plain_fold, FoldBody, Strided};
use std::marker::PhantomData;
use std::sync::atomic::Ordering;

/// Captured values are numbered from here while the body is recorded (so
/// they cannot clash with the carried values and reads), then renumbered.
pub(super) const CAPTURE_BASE: u32 = 1 << 30;

/// Pops the body's recorder even if the body panics.
struct PopBody;

impl Drop for PopBody {
    fn drop(&mut self) {
        RECORDERS.with_borrow_mut(|stack| stack.pop());
    }
}

/// [`crate::Real::fold_loop`] for [`Var`].
pub(crate) fn fold<'t>(
    n: usize,
    init: &[Var<'t>],
    reads: &[Strided<'_, Var<'t>>],
    body: &mut FoldBody<'_, Var<'t>>,
) -> Vec<Var<'t>> {
    let Some(plan) = plan(n, reads) else {
        return plain_fold(n, init, reads, body);
    };
    let (m, r) = (init.len(), reads.len());
    let id = NEXT_TRACE_ID.fetch_add(1, Ordering::Relaxed);
    RECORDERS.with_borrow_mut(|stack| {
        let enclosing = stack.iter().map(|rec| rec.id).collect();
        let mut rec = Recorder::new(id, (0..(m + r) as u32).map(Inst::input).collect());
        rec.enclosing = enclosing;
        stack.push(rec);
    });
    let pop = PopBody;
    let var = |value: f64, index: usize| Var {
        value,
        index: index as u32,
        trace: id,
        brand: PhantomData,
    };
    let state: Vec<Var<'t>> = init
        .iter()
        .enumerate()
        .map(|(j, v)| var(v.value, j))
        .collect();
    let row: Vec<Var<'t>> = reads
        .iter()
        .enumerate()
        .map(|(j, rd)| var(rd.get(0).value, m + j))
        .collect();
    let next = body(&state, &row);
    let recorded = RECORDERS.with_borrow_mut(|stack| {
        let rec = stack
            .last_mut()
            .expect("the body's recorder is on the stack");
        let outputs: Vec<Value> = next.iter().map(|v| rec.operand(v)).collect();
        (
            std::mem::take(&mut rec.insts),
            outputs,
            std::mem::take(&mut rec.loops),
            std::mem::take(&mut rec.captures),
            rec.error.take(),
        )
    });
    drop(pop);
    let (insts, outputs, loops, captures, error) = recorded;
    RECORDERS.with_borrow_mut(|stack| {
        let depth = stack.len() - 1;
        let (root, parent_and_rest) = stack.split_at_mut(1);
        let root = &mut root[0];
        let parent_is_root = parent_and_rest.is_empty();
        let (root_id, n_params) = (root.id, root.root_values.1.len());
        let root_op =
            |c: &super::Capture| (c.trace == root_id).then(|| root.insts[c.index as usize]);
        // Captured root parameters are read directly; other captures are invariants.
        let mut invariants = Vec::new();
        let mut capture_input = Vec::new();
        for (c, _) in &captures {
            match root_op(c).filter(|i| i.op == Op::Param) {
                Some(param) => capture_input.push(Err(param.args[0])),
                None => {
                    capture_input.push(Ok((m + invariants.len()) as u32));
                    invariants.push(*c);
                }
            }
        }
        let nv = invariants.len();
        let renumber = |j: u32| -> Inst {
            if j >= CAPTURE_BASE {
                match capture_input[(j - CAPTURE_BASE) as usize] {
                    Ok(k) => Inst::input(k),
                    Err(p) => Inst::param(p),
                }
            } else if (j as usize) < m {
                Inst::input(j)
            } else {
                Inst::input(j + nv as u32)
            }
        };
        let insts: Vec<Inst> = insts
            .into_iter()
            .map(|i| {
                if i.op == Op::Input {
                    renumber(i.args[0])
                } else {
                    i
                }
            })
            .collect();
        let body = Tape::from_structured(
            insts,
            outputs.into_iter().map(Output::Value).collect(),
            m + nv + r,
            n_params,
            loops,
            Vec::new(),
        );
        let root_values = root.root_values.clone();
        let parent: &mut Recorder = if parent_is_root {
            root
        } else {
            parent_and_rest.last_mut().expect("not the root")
        };
        if let Some(e) = error {
            parent.error.get_or_insert(e);
        }
        if next.len() != m {
            parent.fail(format!(
                "fold: the body returned {} values for a state of {m}",
                next.len()
            ));
            return init.to_vec();
        }
        let lp = Loop {
            trips: n as u32,
            body,
            init: init.iter().map(|v| parent.operand(v)).collect(),
            invariants: invariants
                .iter()
                .map(|c| {
                    parent.operand(&Var {
                        value: c.value,
                        index: c.index,
                        trace: c.trace,
                        brand: PhantomData,
                    })
                })
                .collect(),
            reads: plan
                .iter()
                .map(|&(buffer, offset, stride)| {
                    let mut strides = vec![0; depth];
                    strides.push(stride);
                    Access {
                        buffer,
                        offset,
                        strides,
                    }
                })
                .collect(),
            writes: Vec::new(),
        };
        let values = match evaluate(&lp, init, &invariants, depth, &root_values) {
            Ok(values) => values,
            Err(message) => {
                parent.fail(message);
                vec![f64::NAN; m]
            }
        };
        parent.loops.push(lp);
        parent
            .insts
            .push(Inst::run_loop(parent.loops.len() as u32 - 1));
        let lp_value = parent.insts.len() as u32 - 1;
        let trace = parent.id;
        (0..m)
            .map(|j| {
                parent.insts.push(Inst::loop_out(lp_value, j as u32));
                Var {
                    value: values[j],
                    index: parent.insts.len() as u32 - 1,
                    trace,
                    brand: PhantomData,
                }
            })
            .collect()
    })
}

/// Each read as (buffer, offset, stride) into the root's inputs or
/// parameters, or `None` when a read views anything else (the fold is then
/// unrolled) or no trace is running.
fn plan(n: usize, reads: &[Strided<'_, Var<'_>>]) -> Option<Vec<(Buffer, i64, i64)>> {
    if n == 0 || n > u32::MAX as usize {
        return None;
    }
    RECORDERS.with_borrow(|stack| {
        let root = stack.first()?;
        reads
            .iter()
            .map(|rd| {
                let leaf = |k: usize| -> Option<(Op, i64)> {
                    let v = rd.get(k);
                    if v.trace != root.id || v.is_constant() {
                        return None;
                    }
                    let inst = root.insts[v.index as usize];
                    matches!(inst.op, Op::Input | Op::Param)
                        .then_some((inst.op, inst.args[0] as i64))
                };
                let (op, first) = leaf(0)?;
                let stride = if n > 1 { leaf(1)?.1 - first } else { 0 };
                for k in 2..n {
                    if leaf(k)? != (op, first + stride * k as i64) {
                        return None;
                    }
                }
                let buffer = if op == Op::Input {
                    Buffer::Input
                } else {
                    Buffer::Param
                };
                Some((buffer, first, stride))
            })
            .collect()
    })
}

/// The final carried values of `lp` at trace time: the loop run by the
/// interpreter on the trace-time values (enclosing loops at iteration 0).
fn evaluate(
    lp: &Loop,
    init: &[Var<'_>],
    invariants: &[super::Capture],
    depth: usize,
    (x, p): &(Vec<f64>, Vec<f64>),
) -> Result<Vec<f64>, String> {
    let mut lp = lp.clone();
    outermost(&mut lp, depth);
    let mut tape = Tape::new(x.len(), p.len());
    lp.init = init
        .iter()
        .map(|v| tape.push(Inst::constant(v.value)))
        .collect();
    lp.invariants = invariants
        .iter()
        .map(|c| tape.push(Inst::constant(c.value)))
        .collect();
    let m = lp.init.len();
    let at = tape.push_loop(lp);
    for j in 0..m {
        let v = tape.push(Inst::loop_out(at, j as u32));
        tape.push_output(v);
    }
    let mut out = vec![0.0; m];
    crate::interp::eval(&tape, x, p, &mut Vec::new(), &mut out).map_err(|e| {
        format!(
            "fold: running the traced body for every iteration failed ({e}); a fold body must \
             take the same branches in every iteration (use select/cond_* instead of if)"
        )
    })?;
    Ok(out)
}

/// Drops the strides of the `depth` enclosing loops from every access of
/// `lp` and its nested loops (they are at iteration 0 at trace time).
fn outermost(lp: &mut Loop, depth: usize) {
    for a in lp
        .reads
        .iter_mut()
        .chain(lp.writes.iter_mut().map(|w| &mut w.access))
    {
        a.strides.drain(..depth);
    }
    let (n_inputs, n_params) = (lp.body.n_inputs(), lp.body.n_params());
    let (insts, outputs, mut loops, arrays) = std::mem::take(&mut lp.body).into_parts();
    for inner in &mut loops {
        outermost(inner, depth);
    }
    lp.body = Tape::from_structured(insts, outputs, n_inputs, n_params, loops, arrays);
}
