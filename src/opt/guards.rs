//! Removing guards that an earlier guard already ensures.
//!
//! Guards run in tape order and the first failing one stops evaluation, so
//! every later instruction may assume all earlier guards held. A guard whose
//! condition is then already known (the same check again, or implied, e.g.
//! `a <= b` after `a < b`) can never be the first to fail, and goes.

use super::rewrite::{rewrite, Action};
use crate::ir::{Inst, Op, Tape, Value};
use std::collections::HashSet;

/// A known outcome: `op(a, b)` is `expect` (for a non-compare condition,
/// `op` is `Guard` and `a` the condition value).
type Fact = (Op, Value, Value, bool);

/// What a guard's condition tells, itself included.
fn consequences(insts: &[Inst], cond: Value, expect: bool) -> Vec<Fact> {
    use Op::*;
    let def = insts[cond as usize];
    if !def.op.is_compare() {
        return vec![(Guard, cond, 0, expect)];
    }
    let [a, b, _] = def.args;
    let mut facts = vec![(def.op, a, b, expect)];
    let mut add = |list: &[Fact]| facts.extend_from_slice(list);
    match (def.op, expect) {
        (Lt, true) => add(&[
            (Le, a, b, true),
            (Ne, a, b, true),
            (Ne, b, a, true),
            (Eq, a, b, false),
            (Eq, b, a, false),
            (Same, a, b, false),
            (Same, b, a, false),
            (Lt, b, a, false),
            (Le, b, a, false),
        ]),
        (Le, true) => add(&[(Lt, b, a, false)]),
        (Le, false) => add(&[
            (Lt, a, b, false),
            (Eq, a, b, false),
            (Eq, b, a, false),
            (Ne, a, b, true),
            (Ne, b, a, true),
        ]),
        (Eq, true) | (Ne, false) => add(&[
            (Eq, a, b, true),
            (Eq, b, a, true),
            (Ne, a, b, false),
            (Ne, b, a, false),
            (Le, a, b, true),
            (Le, b, a, true),
            (Lt, a, b, false),
            (Lt, b, a, false),
        ]),
        (Eq, false) | (Ne, true) => add(&[
            (Eq, a, b, false),
            (Eq, b, a, false),
            (Ne, a, b, true),
            (Ne, b, a, true),
        ]),
        (Same, _) => add(&[(Same, b, a, expect)]),
        _ => {}
    }
    facts
}

/// Drops guards that repeat or are implied by earlier ones.
pub fn guards(tape: &Tape) -> Tape {
    let mut known: HashSet<Fact> = HashSet::new();
    rewrite(tape, |insts, inst| {
        if inst.op != Op::Guard {
            return Action::Keep(inst);
        }
        let facts = consequences(insts, inst.args[0], inst.guard_expect());
        if known.contains(&facts[0]) {
            return Action::Drop;
        }
        known.extend(facts);
        Action::Keep(inst)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_repeated_and_implied_guards_only() {
        let t: Tape = "tape inputs=2 params=0
%0 = input 0
%1 = input 1
%2 = lt %0 %1
%3 = guard %2 true
%4 = guard %2 true
%5 = le %0 %1
%6 = guard %5 true
%7 = lt %1 %0
%8 = guard %7 false
%9 = eq %0 %1
%10 = guard %9 false
%11 = le %1 %0
%12 = guard %11 true
%13 = guard %2 false
outputs %0
"
        .parse()
        .unwrap();
        let g = guards(&t);
        let kept: Vec<u32> = g
            .insts()
            .iter()
            .filter(|i| i.op == Op::Guard)
            .map(|i| i.args[0])
            .collect();
        // The repeat, `a <= b`, `!(b < a)` and `a != b` follow from `a < b`
        // and go. `b <= a` contradicts it: it stays, to fail. Once it has
        // held, `!(a < b)` is known, and the last guard goes too.
        assert_eq!(kept, [2, 7], "{g}");
    }
}
