//! The derivative of every op, written once for both transforms.
//!
//! [`partials`] emits, into the derived tape, what each operand's partial
//! derivative needs; [`apply`] combines a partial with an incoming
//! derivative (a tangent in forward mode, an adjoint in reverse mode).
//! Kinks follow DESIGN.md: `max` sends the derivative to `a` when `a >= b`
//! or `b` is NaN (min mirrored), `abs'(0) = 0`, rounding ops have derivative 0.

use super::emit::Emitter;
use crate::ir::{Inst, Op, Value};
use std::f64::consts::{LN_10, LN_2};

/// A partial derivative `∂result/∂operand`, in the form cheapest to apply.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Partial {
    /// Zero: contributes nothing.
    Zero,
    /// `d`
    One,
    /// `-d`
    MinusOne,
    /// `d * v`
    Times(Value),
    /// `-(d * v)`
    NegTimes(Value),
    /// `d / v`
    Over(Value),
    /// `-(d / v)`
    NegOver(Value),
    /// `select(cond, d, 0)` when `true`, `select(cond, 0, d)` when `false`:
    /// the untaken side gets an exact zero even when `d` is infinite.
    Pick(Value, bool),
    /// `d` times the sign of `a`, `0` at `a = 0`.
    AbsSign(Value),
}

/// Whether `op`'s result can carry a derivative at all (piecewise-constant
/// ops, compares and guards cannot).
pub(crate) fn differentiable(op: Op) -> bool {
    use Op::*;
    !matches!(
        op,
        Input
            | Param
            | Const
            | Signum
            | Floor
            | Ceil
            | Round
            | Trunc
            | SignBit
            | Classify
            | Lt
            | Le
            | Eq
            | Ne
            | Same
            | Guard
    )
}

/// Emits the partials of `inst` (whose operands and result are `args` and
/// `w` in the emitter's tape) for the operands flagged in `need`.
pub(crate) fn partials(
    e: &mut Emitter,
    inst: &Inst,
    args: [Value; 3],
    w: Value,
    need: [bool; 3],
) -> [Partial; 3] {
    use Op::*;
    use Partial::*;
    let [a, b, _] = args;
    let mut p = [Zero; 3];
    if !differentiable(inst.op) {
        return p;
    }
    let first = match inst.op {
        Neg => MinusOne,
        Recip => NegTimes(square(e, w)),
        Sqrt => Over(e.binary(Add, w, w)),
        Cbrt => {
            let w2 = square(e, w);
            Over(e.scale(w2, 3.0))
        }
        Exp => Times(w),
        Exp2 => Times(e.scale(w, LN_2)),
        ExpM1 => Times(e.offset(w, 1.0)),
        Ln => Over(a),
        Log2 => Over(e.scale(a, LN_2)),
        Log10 => Over(e.scale(a, LN_10)),
        Ln1p => Over(e.offset(a, 1.0)),
        Sin => Times(e.unary(Cos, a)),
        Cos => NegTimes(e.unary(Sin, a)),
        Tan => {
            let w2 = square(e, w);
            Times(e.offset(w2, 1.0))
        }
        Asin | Acos => {
            let a2 = square(e, a);
            let d = e.constant_minus(1.0, a2);
            let root = e.unary(Sqrt, d);
            if inst.op == Asin {
                Over(root)
            } else {
                NegOver(root)
            }
        }
        Atan => {
            let a2 = square(e, a);
            Over(e.offset(a2, 1.0))
        }
        Sinh => Times(e.unary(Cosh, a)),
        Cosh => Times(e.unary(Sinh, a)),
        Tanh => {
            let w2 = square(e, w);
            Times(e.constant_minus(1.0, w2))
        }
        Asinh | Acosh => {
            let a2 = square(e, a);
            let d = e.offset(a2, if inst.op == Asinh { 1.0 } else { -1.0 });
            Over(e.unary(Sqrt, d))
        }
        Atanh => {
            let a2 = square(e, a);
            Over(e.constant_minus(1.0, a2))
        }
        Abs => AbsSign(a),
        PowI => match inst.powi_exponent() {
            0 => Zero,
            1 => One,
            n => {
                let lower = match n.checked_sub(1) {
                    Some(1) => a,
                    Some(m) => e.push(Inst::powi(a, m)),
                    // i32::MIN: a^(n-1) is not a powi; a^n / a is.
                    None => e.binary(Div, w, a),
                };
                Times(e.scale(lower, n as f64))
            }
        },
        Add | Sub | Mul | MulAdd => One, // first operand; the rest below
        Div => Over(b),
        Rem => One,
        PowF => {
            if need[0] {
                // b a^(b-1), exactly 0 for b = 0 (a^0 = 1 for every a; at
                // a = 0 the product would be 0 * inf = NaN).
                let bm1 = e.offset(b, -1.0);
                let pw = e.binary(PowF, a, bm1);
                let d = e.binary(Mul, b, pw);
                let zero = e.constant(0.0);
                let b_zero = e.binary(Eq, b, zero);
                Times(e.select(b_zero, zero, d))
            } else {
                Zero
            }
        }
        Atan2 | Hypot | Min | Max | Copysign | Select => Zero, // both below
        _ => unreachable!("{:?} has no derivative rule", inst.op),
    };
    p[0] = first;
    match inst.op {
        Add => p[1] = One,
        Sub => p[1] = MinusOne,
        Mul => p = [Times(b), Times(a), Zero],
        MulAdd => p = [Times(b), Times(a), One],
        Div if need[1] => p[1] = NegTimes(e.binary(Div, w, b)),
        Rem if need[1] => {
            let q = e.binary(Div, a, b);
            p[1] = NegTimes(e.unary(Trunc, q));
        }
        PowF if need[1] => {
            // a^b ln(a), exactly 0 where a^b = 0 (0^b = 0 for every b > 0;
            // the product would be 0 * -inf = NaN).
            let ln_a = e.unary(Ln, a);
            let d = e.binary(Mul, w, ln_a);
            let zero = e.constant(0.0);
            let w_zero = e.binary(Eq, w, zero);
            p[1] = Times(e.select(w_zero, zero, d));
        }
        Atan2 => {
            let a2 = square(e, a);
            let b2 = square(e, b);
            let d = e.binary(Add, a2, b2);
            if need[0] {
                p[0] = Times(e.binary(Div, b, d));
            }
            if need[1] {
                p[1] = NegTimes(e.binary(Div, a, d));
            }
        }
        Hypot => {
            if need[0] {
                p[0] = Times(e.binary(Div, a, w));
            }
            if need[1] {
                p[1] = Times(e.binary(Div, b, w));
            }
        }
        Min | Max => {
            let (lo, hi) = if inst.op == Max { (b, a) } else { (a, b) };
            let ordered = e.binary(Le, lo, hi);
            let b_nan = e.binary(Ne, b, b);
            let one = e.constant(1.0);
            let to_a = e.select(ordered, one, b_nan);
            p[0] = Pick(to_a, true);
            p[1] = Pick(to_a, false);
        }
        Copysign => {
            let one = e.constant(1.0);
            let sa = e.binary(Copysign, one, a);
            let sb = e.binary(Copysign, one, b);
            p[0] = Times(e.binary(Mul, sa, sb));
        }
        Select => {
            p[1] = Pick(a, true);
            p[2] = Pick(a, false);
        }
        _ => {}
    }
    for (slot, needed) in p.iter_mut().zip(need) {
        if !needed {
            *slot = Zero;
        }
    }
    p
}

/// A partial applied to an incoming derivative `d`: the term's value and
/// whether it enters negated. `None` for a zero partial.
pub(crate) fn apply(e: &mut Emitter, partial: Partial, d: Value) -> Option<(Value, bool)> {
    use Partial::*;
    Some(match partial {
        Zero => return None,
        One => (d, false),
        MinusOne => (d, true),
        Times(v) => (e.binary(Op::Mul, d, v), false),
        NegTimes(v) => (e.binary(Op::Mul, d, v), true),
        Over(v) => (e.binary(Op::Div, d, v), false),
        NegOver(v) => (e.binary(Op::Div, d, v), true),
        Pick(cond, taken) => {
            let zero = e.constant(0.0);
            let v = if taken {
                e.select(cond, d, zero)
            } else {
                e.select(cond, zero, d)
            };
            (v, false)
        }
        AbsSign(a) => {
            let zero = e.constant(0.0);
            let positive = e.binary(Op::Lt, zero, a);
            let negative = e.binary(Op::Lt, a, zero);
            let minus_d = e.unary(Op::Neg, d);
            let inner = e.select(negative, minus_d, zero);
            (e.select(positive, d, inner), false)
        }
    })
}

/// Adds a term to an optional running sum: `None` starts it.
pub(crate) fn accumulate(
    e: &mut Emitter,
    sum: Option<Value>,
    (term, negate): (Value, bool),
) -> Value {
    match (sum, negate) {
        (None, false) => term,
        (None, true) => e.unary(Op::Neg, term),
        (Some(s), false) => e.binary(Op::Add, s, term),
        (Some(s), true) => e.binary(Op::Sub, s, term),
    }
}

fn square(e: &mut Emitter, x: Value) -> Value {
    e.binary(Op::Mul, x, x)
}
