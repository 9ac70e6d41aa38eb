//! What each op computes on `f64`: the single definition that the tracer
//! (for trace-time values), the interpreter and the JIT's math calls share,
//! so that every backend agrees bitwise with native Rust.

use super::Op;
use std::num::FpCategory;

/// `1.0` for true, `0.0` for false.
#[inline(always)]
pub fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// Whether a condition value counts as true (`select`, guards): non-zero, NaN included.
#[inline(always)]
pub fn truthy(c: f64) -> bool {
    c != 0.0
}

/// The code [`Op::Classify`] yields for an IEEE class.
pub fn class_code(c: FpCategory) -> f64 {
    match c {
        FpCategory::Nan => 0.0,
        FpCategory::Infinite => 1.0,
        FpCategory::Zero => 2.0,
        FpCategory::Subnormal => 3.0,
        FpCategory::Normal => 4.0,
    }
}

/// The tape's notion of equality: same bits, or both NaN.
#[inline(always)]
pub fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Value of a one-operand op (`PowI` takes its exponent separately, see [`powi`]).
#[inline]
pub fn unary(op: Op, a: f64) -> f64 {
    use Op::*;
    match op {
        Neg => -a,
        Recip => a.recip(),
        Sqrt => a.sqrt(),
        Cbrt => a.cbrt(),
        Exp => a.exp(),
        Exp2 => a.exp2(),
        ExpM1 => a.exp_m1(),
        Ln => a.ln(),
        Log2 => a.log2(),
        Log10 => a.log10(),
        Ln1p => a.ln_1p(),
        Sin => a.sin(),
        Cos => a.cos(),
        Tan => a.tan(),
        Asin => a.asin(),
        Acos => a.acos(),
        Atan => a.atan(),
        Sinh => a.sinh(),
        Cosh => a.cosh(),
        Tanh => a.tanh(),
        Asinh => a.asinh(),
        Acosh => a.acosh(),
        Atanh => a.atanh(),
        Abs => a.abs(),
        Signum => a.signum(),
        Floor => a.floor(),
        Ceil => a.ceil(),
        Round => a.round(),
        Trunc => a.trunc(),
        SignBit => flag(a.is_sign_negative()),
        Classify => class_code(a.classify()),
        _ => unreachable!("{op:?} is not a unary op"),
    }
}

/// `a.powi(n)`.
#[inline]
pub fn powi(a: f64, n: i32) -> f64 {
    a.powi(n)
}

/// `f64::max` as rustc compiles it on x86-64 (a NaN operand is ignored; of
/// two equal operands, such as `-0.0` and `0.0`, the first is returned),
/// spelled out so that every backend can reproduce it exactly.
#[inline(always)]
pub fn max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b > a {
        b
    } else {
        a
    }
}

/// `f64::min` as rustc compiles it on x86-64; see [`max`].
#[inline(always)]
pub fn min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b < a {
        b
    } else {
        a
    }
}

/// Value of a two-operand op.
#[inline]
pub fn binary(op: Op, a: f64, b: f64) -> f64 {
    use Op::*;
    match op {
        Add => a + b,
        Sub => a - b,
        Mul => a * b,
        Div => a / b,
        Rem => a % b,
        PowF => a.powf(b),
        Atan2 => a.atan2(b),
        Hypot => a.hypot(b),
        Min => min(a, b),
        Max => max(a, b),
        Copysign => a.copysign(b),
        Lt => flag(a < b),
        Le => flag(a <= b),
        Eq => flag(a == b),
        Ne => flag(a != b),
        Same => flag(same(a, b)),
        _ => unreachable!("{op:?} is not a binary op"),
    }
}

/// Value of a three-operand op.
#[inline]
pub fn ternary(op: Op, a: f64, b: f64, c: f64) -> f64 {
    match op {
        Op::MulAdd => a.mul_add(b, c),
        Op::Select => {
            if truthy(a) {
                b
            } else {
                c
            }
        }
        _ => unreachable!("{op:?} is not a ternary op"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hint::black_box;

    #[test]
    fn min_and_max_agree_with_std_bitwise() {
        let v = [
            0.0,
            -0.0,
            f64::NAN,
            1.0,
            -1.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e-310,
        ];
        for a in v {
            for b in v {
                let (a, b) = (black_box(a), black_box(b));
                assert!(same(max(a, b), a.max(b)), "max({a:?}, {b:?})");
                assert!(same(min(a, b), a.min(b)), "min({a:?}, {b:?})");
            }
        }
    }
}
