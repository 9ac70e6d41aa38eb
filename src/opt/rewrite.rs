//! The one mechanism every pass uses: rebuild a tape instruction by
//! instruction, each kept (perhaps changed), replaced by an earlier value, or
//! dropped.

use crate::ir::{Inst, Op, Shape, Tape, Value};

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
/// operands mapped into the new tape, and the new tape built so far.
pub(super) fn rewrite(tape: &Tape, mut decide: impl FnMut(&[Inst], Inst) -> Action) -> Tape {
    let mut insts: Vec<Inst> = Vec::with_capacity(tape.len());
    let mut map: Vec<Value> = Vec::with_capacity(tape.len());
    for inst in tape.insts() {
        let mut mapped = *inst;
        if let Shape::Values(_) | Shape::ValueImm = inst.op.shape() {
            for k in 0..inst.op.arity() {
                mapped.args[k] = map[inst.args[k] as usize];
            }
        }
        let v = match decide(&insts, mapped) {
            Action::Keep(new) => {
                insts.push(new);
                insts.len() as Value - 1
            }
            Action::Alias(v) => v,
            Action::Drop => Value::MAX,
        };
        map.push(v);
    }
    let outputs = tape.outputs().iter().map(|&v| map[v as usize]).collect();
    Tape::from_parts(insts, outputs, tape.n_inputs(), tape.n_params())
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
