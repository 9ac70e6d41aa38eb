//! The one mechanism every pass uses: rebuild a tape instruction by
//! instruction, each kept (perhaps changed), replaced by an earlier value, or
//! dropped.

use crate::ir::{Inst, Op, Output, Shape, Tape, Value};

/// What happens to one instruction.
pub(super) enum Action {
    /// Emit this instruction (operands already refer to the new tape).
    Keep(Inst),
    /// Use this earlier value of the new tape instead.
    Alias(Value),
    /// Emit nothing (only for instructions nothing refers to, e.g. guards).
    Drop,
}

/// Rebuilds `tape`: `decide(new_insts, inst)` sees each instruction with its
/// operands mapped into the new tape, and the new tape built so far. A kept
/// loop instruction keeps its loop entry (initial values and invariants
/// mapped, body unchanged: [`deep`] applies a pass to bodies).
pub(super) fn rewrite(tape: &Tape, mut decide: impl FnMut(&[Inst], Inst) -> Action) -> Tape {
    let mut insts: Vec<Inst> = Vec::with_capacity(tape.len());
    let mut map: Vec<Value> = Vec::with_capacity(tape.len());
    let mut loops = Vec::new();
    let mut checkpoints = Vec::new();
    for inst in tape.insts() {
        let mut mapped = *inst;
        match inst.op.shape() {
            Shape::Values(_) | Shape::ValueImm => {
                for k in 0..inst.op.arity() {
                    mapped.args[k] = map[inst.args[k] as usize];
                }
            }
            Shape::ArrayStore => mapped.args[2] = map[inst.args[2] as usize],
            _ => {}
        }
        let v = match decide(&insts, mapped) {
            Action::Keep(new) => {
                let mut new = new;
                if new.op == Op::Loop {
                    let mut lp = tape.loop_of(inst).clone();
                    for v in lp.init.iter_mut().chain(&mut lp.invariants) {
                        *v = map[*v as usize];
                    }
                    loops.push(lp);
                    new.args[0] = loops.len() as u32 - 1;
                    if let Some(cp) = tape.checkpoint_of(inst) {
                        let mut cp = cp.clone();
                        for v in cp.init.iter_mut().chain(&mut cp.invariants) {
                            *v = map[*v as usize];
                        }
                        checkpoints.push(cp);
                        new.args[1] = checkpoints.len() as u32;
                    }
                }
                insts.push(new);
                insts.len() as Value - 1
            }
            Action::Alias(v) => v,
            Action::Drop => Value::MAX,
        };
        map.push(v);
    }
    let outputs = tape
        .outputs()
        .iter()
        .map(|o| match *o {
            Output::Value(v) => Output::Value(map[v as usize]),
            slice => slice,
        })
        .collect();
    Tape::from_structured(
        insts,
        outputs,
        tape.n_inputs(),
        tape.n_params(),
        loops,
        tape.arrays().to_vec(),
    )
    .with_checkpoints(checkpoints)
}

/// Applies `pass` to every loop body (recursively, innermost first) and
/// then to `tape`, so that a pass deciding about a loop sees its body
/// already transformed.
pub(super) fn deep(pass: fn(&Tape) -> Tape, tape: &Tape) -> Tape {
    if tape.loops().is_empty() {
        return pass(tape);
    }
    let mut inner = tape.clone();
    let mut checkpoints = inner.take_checkpoints();
    for cp in &mut checkpoints {
        cp.step = deep(pass, &cp.step);
    }
    let (n_inputs, n_params) = (tape.n_inputs(), tape.n_params());
    let (insts, outputs, mut loops, arrays) = inner.into_parts();
    for lp in &mut loops {
        lp.body = deep(pass, &lp.body);
    }
    let inner = Tape::from_structured(insts, outputs, n_inputs, n_params, loops, arrays)
        .with_checkpoints(checkpoints);
    pass(&inner)
}

/// The constant value `v` has, if it is a constant.
pub(super) fn constant(insts: &[Inst], v: Value) -> Option<f64> {
    let inst = insts[v as usize];
    (inst.op == Op::Const).then(|| inst.const_value())
}

/// Whether `v` is the constant `c` exactly (same bits).
pub(super) fn is_constant(insts: &[Inst], v: Value, c: f64) -> bool {
    constant(insts, v).is_some_and(|x| x.to_bits() == c.to_bits())
}
