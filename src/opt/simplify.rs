//! Constant folding and exact algebraic simplification.
//!
//! Folding evaluates with `ir::semantics`, the same code the backends run,
//! so a folded constant is bit for bit what evaluation would have produced.
//! Each identity below holds for every input, NaN, infinities and `-0.0`
//! included; the tests list the tempting ones that do not (`x * 0`, `x - x`,
//! `x + 0.0`, `0.0 - x`, `x == x`, ...).

use super::rewrite::{constant, is_constant, rewrite, Action};
use crate::ir::{semantics, Inst, Op, Shape, Tape};

/// Folds constants and applies exact identities.
pub fn simplify(tape: &Tape) -> Tape {
    rewrite(tape, simplify_inst)
}

/// Simplifies until no rule applies, so a rewritten instruction (say
/// `x * -1` become `-x`) meets the rules again (`-(-y)` -> `y`): one pass is
/// then idempotent.
/// Every rule strips a negation or a constant, so this ends; the bound is a
/// guard against a future rule that does not.
fn simplify_inst(insts: &[Inst], mut inst: Inst) -> Action {
    for _ in 0..16 {
        match step(insts, inst) {
            Action::Keep(next) if next != inst => inst = next,
            done => return done,
        }
    }
    Action::Keep(inst)
}

fn step(insts: &[Inst], inst: Inst) -> Action {
    use Action::{Alias, Drop, Keep};
    use Op::*;
    if let Some(folded) = fold(insts, &inst) {
        return folded;
    }
    let [a, b, c] = inst.args;
    let def = |v: u32| insts[v as usize];
    let is = |v: u32, k: f64| is_constant(insts, v, k);
    match inst.op {
        Mul if is(b, 1.0) => Alias(a),
        Mul if is(a, 1.0) => Alias(b),
        Mul if is(b, -1.0) => Keep(Inst::unary(Neg, a)),
        Mul if is(a, -1.0) => Keep(Inst::unary(Neg, b)),
        Mul if def(a).op == Neg && def(b).op == Neg => {
            Keep(Inst::binary(Mul, def(a).args[0], def(b).args[0]))
        }
        Div if is(b, 1.0) => Alias(a),
        Div if is(b, -1.0) => Keep(Inst::unary(Neg, a)),
        // -0.0 is the additive identity: x + -0.0 == x for every x.
        Add if is(b, -0.0) => Alias(a),
        Add if is(a, -0.0) => Alias(b),
        Add if def(b).op == Neg => Keep(Inst::binary(Sub, a, def(b).args[0])),
        Add if def(a).op == Neg => Keep(Inst::binary(Sub, b, def(a).args[0])),
        Sub if is(b, 0.0) => Alias(a),
        Sub if is(a, -0.0) => Keep(Inst::unary(Neg, b)),
        Sub if def(b).op == Neg => Keep(Inst::binary(Add, a, def(b).args[0])),
        Neg if def(a).op == Neg => Alias(def(a).args[0]),
        Abs if matches!(def(a).op, Neg | Abs) => Keep(Inst::unary(Abs, def(a).args[0])),
        Floor | Ceil | Round | Trunc if matches!(def(a).op, Floor | Ceil | Round | Trunc) => {
            // Already an integer (or NaN/inf): any rounding leaves it alone.
            Alias(a)
        }
        PowI => match inst.powi_exponent() {
            0 => Keep(Inst::constant(1.0)),
            1 => Alias(a),
            // compiler-rt's powi computes exactly these.
            2 => Keep(Inst::binary(Mul, a, a)),
            -1 => Keep(Inst::unary(Recip, a)),
            _ => Keep(inst),
        },
        Min | Max if a == b => Alias(a),
        Lt if a == b => Keep(Inst::constant(0.0)),
        Same if a == b => Keep(Inst::constant(1.0)),
        Select if b == c => Alias(b),
        Select => match constant(insts, a) {
            Some(cond) => Alias(if semantics::truthy(cond) { b } else { c }),
            None => Keep(inst),
        },
        Guard => match constant(insts, a) {
            Some(cond) if semantics::truthy(cond) == inst.guard_expect() => Drop,
            _ => Keep(inst),
        },
        _ => Keep(inst),
    }
}

/// An instruction whose operands are all constants, evaluated.
fn fold(insts: &[Inst], inst: &Inst) -> Option<Action> {
    let operands = inst.operands();
    if operands.is_empty() || matches!(inst.op, Op::Guard | Op::Store | Op::LoopOut) {
        return None;
    }
    let mut k = [0.0; 3];
    for (slot, &v) in k.iter_mut().zip(operands) {
        *slot = constant(insts, v)?;
    }
    let value = match inst.op.shape() {
        Shape::ValueImm => semantics::powi(k[0], inst.powi_exponent()),
        Shape::Values(1) => semantics::unary(inst.op, k[0]),
        Shape::Values(2) => semantics::binary(inst.op, k[0], k[1]),
        _ => semantics::ternary(inst.op, k[0], k[1], k[2]),
    };
    Some(Action::Keep(Inst::constant(value)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp;

    fn simplified(body: &str) -> Tape {
        let text = format!("tape inputs=2 params=0\n%0 = input 0\n%1 = input 1\n{body}");
        simplify(&text.parse::<Tape>().unwrap())
    }

    fn ops(t: &Tape) -> Vec<&'static str> {
        t.insts()[2..].iter().map(|i| i.op.name()).collect()
    }

    #[test]
    fn exact_identities_fire() {
        let cases = [
            ("%2 = const 1.0\n%3 = mul %0 %2\noutputs %3\n", 0),
            ("%2 = const -0.0\n%3 = add %2 %0\noutputs %3\n", 0),
            ("%2 = const 0.0\n%3 = sub %0 %2\noutputs %3\n", 0),
            ("%2 = const 1.0\n%3 = div %0 %2\noutputs %3\n", 0),
            ("%2 = neg %0\n%3 = neg %2\noutputs %3\n", 0),
            ("%2 = powi %0 1\noutputs %2\n", 0),
            ("%2 = max %0 %0\noutputs %2\n", 0),
            ("%2 = select %1 %0 %0\noutputs %2\n", 0),
            ("%2 = floor %0\n%3 = round %2\noutputs %3\n", 2),
        ];
        for (body, out) in cases {
            let t = simplified(body);
            assert_eq!(t.output_values().unwrap()[0], out, "{body} became\n{t}");
        }
        let t = simplified("%2 = powi %0 2\noutputs %2\n");
        assert_eq!(
            t.insts()[t.output_values().unwrap()[0] as usize],
            Inst::binary(Op::Mul, 0, 0)
        );
        let t =
            simplified("%2 = const 2.0\n%3 = const 3.0\n%4 = mul %2 %3\n%5 = sin %4\noutputs %5\n");
        assert_eq!(
            t.insts()[t.output_values().unwrap()[0] as usize].const_value(),
            6.0f64.sin()
        );
        let t = simplified("%2 = const 1.0\n%3 = select %2 %0 %1\noutputs %3\n");
        assert_eq!(t.output_values().unwrap()[0], 0);
        let t = simplified("%2 = const 1.0\n%3 = guard %2 true\noutputs %0\n");
        assert!(!ops(&t).contains(&"guard"), "{t}");
    }

    #[test]
    fn inexact_rewrites_do_not_fire() {
        // x*0 is NaN for inf/NaN and -0 for negative x; x-x is NaN for inf;
        // x+0.0 turns -0.0 into 0.0; 0.0-x is +0.0 for x = 0.0, not -0.0;
        // x==x and x<=x are false for NaN; a failing constant guard must stay.
        let bodies = [
            "%2 = const 0.0\n%3 = mul %0 %2\noutputs %3\n",
            "%2 = sub %0 %0\noutputs %2\n",
            "%2 = const 0.0\n%3 = add %0 %2\noutputs %3\n",
            "%2 = const 0.0\n%3 = sub %2 %0\noutputs %3\n",
            "%2 = eq %0 %0\noutputs %2\n",
            "%2 = le %0 %0\noutputs %2\n",
            "%2 = div %0 %0\noutputs %2\n",
            "%2 = const 0.0\n%3 = guard %2 true\noutputs %0\n",
        ];
        for body in bodies {
            let t = simplified(body);
            let original: Tape =
                format!("tape inputs=2 params=0\n%0 = input 0\n%1 = input 1\n{body}")
                    .parse()
                    .unwrap();
            assert_eq!(t, original, "{body} must not change");
        }
    }

    #[test]
    fn identities_hold_on_special_values() {
        let body = "%2 = const 1.0\n%3 = mul %0 %2\n%4 = const -0.0\n%5 = add %3 %4\n\
                    %6 = neg %1\n%7 = sub %5 %6\n%8 = powi %7 2\n%9 = const -1.0\n%10 = mul %8 %9\n\
                    %11 = neg %10\n%12 = neg %11\n%13 = add %12 %6\noutputs %13 %8\n";
        let original: Tape = format!("tape inputs=2 params=0\n%0 = input 0\n%1 = input 1\n{body}")
            .parse()
            .unwrap();
        let t = simplify(&original);
        assert!(t.len() < original.len());
        let special = [
            0.0,
            -0.0,
            1.5,
            -2.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            1e-310,
        ];
        for a in special {
            for b in special {
                let mut x = [0.0; 2];
                let mut y = [0.0; 2];
                interp::eval(&original, &[a, b], &[], &mut Vec::new(), &mut x).unwrap();
                interp::eval(&t, &[a, b], &[], &mut Vec::new(), &mut y).unwrap();
                for (p, q) in x.iter().zip(&y) {
                    assert!(semantics::same(*p, *q), "{a} {b}: {p} vs {q}");
                }
            }
        }
    }
}
