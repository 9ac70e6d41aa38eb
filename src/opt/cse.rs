//! Common-subexpression elimination by value numbering.

use super::rewrite::{rewrite, Action};
use crate::ir::{Inst, Op, Tape, Value};
use std::collections::HashMap;

/// Whether swapping the two operands leaves the result bit for bit the
/// same. Only the compares qualify: `a + b` and `b + a` differ in the sign
/// of the NaN they return when both are NaN (x86 returns the first), which
/// `signbit` or `copysign` can observe; `min`/`max` differ on equal zeros.
fn commutative(op: Op) -> bool {
    matches!(op, Op::Eq | Op::Ne | Op::Same)
}

/// Replaces every instruction equal to an earlier one (same op, same
/// operands, same immediates, constants by bits) with that one. Guards are
/// left to [`super::guards`].
pub fn cse(tape: &Tape) -> Tape {
    let mut seen: HashMap<Inst, Value> = HashMap::with_capacity(tape.len());
    rewrite(tape, |insts, mut inst| {
        // Effects stay; an array element may change between two reads.
        if inst.op.has_effect() || inst.op == Op::Elem {
            return Action::Keep(inst);
        }
        if commutative(inst.op) && inst.args[0] > inst.args[1] {
            inst.args.swap(0, 1);
        }
        match seen.get(&inst) {
            Some(&v) => Action::Alias(v),
            None => {
                seen.insert(inst, insts.len() as Value);
                Action::Keep(inst)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_repeats_and_commuted_operands_only_where_exact() {
        let t: Tape = "tape inputs=2 params=0
%0 = input 0
%1 = input 1
%2 = mul %0 %1
%3 = mul %1 %0
%4 = add %2 %3
%5 = max %0 %1
%6 = max %1 %0
%7 = const 2.0
%8 = const 2.0
%9 = input 0
%10 = sub %9 %1
%11 = sub %1 %0
outputs %4 %5 %6 %7 %8 %10 %11
"
        .parse()
        .unwrap();
        let c = cse(&t);
        let out = c.output_values().unwrap();
        assert_ne!(
            c.insts()[out[0] as usize].args[0],
            c.insts()[out[0] as usize].args[1],
            "a * b and b * a differ in the sign of a NaN result: {c}"
        );
        assert_ne!(out[1], out[2], "max is not commutative bitwise");
        assert_eq!(out[3], out[4]);
        assert_ne!(out[5], out[6], "sub is not commutative");
        // The repeated constant and input went.
        assert_eq!(c.len(), t.len() - 2, "{c}");
    }
}
