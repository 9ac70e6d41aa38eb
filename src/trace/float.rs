//! `num_traits::Float` and friends for `Var`, and `Real`.
//!
//! Every method is defined here (none falls back to a default that branches
//! internally): math becomes an IR op, and every way a value escapes as a
//! non-traced one (`bool`, integer, `f64`, `FpCategory`) records a guard.

use super::{trace_error, Var};
use crate::ir::{semantics, Op};
use crate::Real;
use num_traits::{Float, FromPrimitive, Num, NumCast, One, ToPrimitive, Zero};
use std::num::FpCategory;

impl<'t> Var<'t> {
    /// Guards that `trunc(self)` keeps its trace-time value and returns it:
    /// every float-to-integer conversion depends on nothing else.
    fn pinned_trunc(self) -> f64 {
        self.unary(Op::Trunc).pinned()
    }
}

impl Zero for Var<'_> {
    fn zero() -> Self {
        Var::constant(0.0)
    }
    /// Decided at trace time (guarded).
    fn is_zero(&self) -> bool {
        *self == 0.0
    }
}

impl One for Var<'_> {
    fn one() -> Self {
        Var::constant(1.0)
    }
    /// Decided at trace time (guarded).
    fn is_one(&self) -> bool {
        *self == 1.0
    }
}

impl Num for Var<'_> {
    type FromStrRadixErr = <f64 as Num>::FromStrRadixErr;
    fn from_str_radix(s: &str, radix: u32) -> Result<Self, Self::FromStrRadixErr> {
        <f64 as Num>::from_str_radix(s, radix).map(Var::constant)
    }
}

macro_rules! to_int {
    ($($method:ident -> $t:ty;)*) => {$(
        /// Guarded: the tape stays valid while `trunc(self)` keeps its trace-time value.
        fn $method(&self) -> Option<$t> {
            self.pinned_trunc().$method()
        }
    )*};
}

impl ToPrimitive for Var<'_> {
    to_int! {
        to_isize -> isize; to_i8 -> i8; to_i16 -> i16; to_i32 -> i32; to_i64 -> i64;
        to_i128 -> i128; to_usize -> usize; to_u8 -> u8; to_u16 -> u16; to_u32 -> u32;
        to_u64 -> u64; to_u128 -> u128;
    }
    /// Guarded: the tape stays valid while `self` keeps its trace-time value.
    fn to_f32(&self) -> Option<f32> {
        Some(self.pinned() as f32)
    }
    /// Guarded: the tape stays valid while `self` keeps its trace-time value.
    fn to_f64(&self) -> Option<f64> {
        Some(self.pinned())
    }
}

impl NumCast for Var<'_> {
    fn from<N: ToPrimitive>(n: N) -> Option<Self> {
        n.to_f64().map(Var::constant)
    }
}

impl FromPrimitive for Var<'_> {
    fn from_i64(n: i64) -> Option<Self> {
        Some(Var::constant(n as f64))
    }
    fn from_u64(n: u64) -> Option<Self> {
        Some(Var::constant(n as f64))
    }
    fn from_f64(n: f64) -> Option<Self> {
        Some(Var::constant(n))
    }
}

macro_rules! unary_methods {
    ($($method:ident => $op:ident,)*) => {$(
        fn $method(self) -> Self {
            self.unary(Op::$op)
        }
    )*};
}

macro_rules! constants {
    ($($method:ident => $value:expr,)*) => {$(
        fn $method() -> Self {
            Var::constant($value)
        }
    )*};
}

impl Float for Var<'_> {
    constants! {
        nan => f64::NAN,
        infinity => f64::INFINITY,
        neg_infinity => f64::NEG_INFINITY,
        neg_zero => -0.0,
        min_value => f64::MIN,
        min_positive_value => f64::MIN_POSITIVE,
        epsilon => f64::EPSILON,
        max_value => f64::MAX,
    }

    unary_methods! {
        floor => Floor, ceil => Ceil, round => Round, trunc => Trunc, abs => Abs,
        signum => Signum, recip => Recip, sqrt => Sqrt, exp => Exp, exp2 => Exp2, ln => Ln,
        log2 => Log2, log10 => Log10, cbrt => Cbrt, sin => Sin, cos => Cos, tan => Tan,
        asin => Asin, acos => Acos, atan => Atan, exp_m1 => ExpM1, ln_1p => Ln1p,
        sinh => Sinh, cosh => Cosh, tanh => Tanh, asinh => Asinh, acosh => Acosh,
        atanh => Atanh,
    }

    /// Guarded.
    fn is_nan(self) -> bool {
        Var::decide(self.binary(Op::Ne, self))
    }
    /// Guarded.
    fn is_infinite(self) -> bool {
        Var::decide(self.abs().binary(Op::Eq, Var::constant(f64::INFINITY)))
    }
    /// Guarded.
    fn is_finite(self) -> bool {
        Var::decide(self.abs().binary(Op::Lt, Var::constant(f64::INFINITY)))
    }
    /// Guarded.
    fn is_normal(self) -> bool {
        self.classify() == FpCategory::Normal
    }
    /// Guarded.
    fn is_subnormal(self) -> bool {
        self.classify() == FpCategory::Subnormal
    }
    /// Guarded: the tape stays valid while the class stays the same.
    fn classify(self) -> FpCategory {
        let code = self.unary(Op::Classify).pinned();
        [
            FpCategory::Nan,
            FpCategory::Infinite,
            FpCategory::Zero,
            FpCategory::Subnormal,
            FpCategory::Normal,
        ]
        .into_iter()
        .find(|&c| semantics::class_code(c) == code)
        .unwrap_or(FpCategory::Nan)
    }
    /// `self - self.trunc()`, as `f64::fract`.
    fn fract(self) -> Self {
        self - self.trunc()
    }
    /// Guarded.
    fn is_sign_positive(self) -> bool {
        !self.is_sign_negative()
    }
    /// Guarded.
    fn is_sign_negative(self) -> bool {
        Var::decide(self.unary(Op::SignBit))
    }
    fn mul_add(self, a: Self, b: Self) -> Self {
        self.ternary(Op::MulAdd, a, b)
    }
    fn powi(self, n: i32) -> Self {
        self.powi_var(n)
    }
    fn powf(self, n: Self) -> Self {
        self.binary(Op::PowF, n)
    }
    /// `self.ln() / base.ln()`, as `f64::log`.
    fn log(self, base: Self) -> Self {
        self.ln() / base.ln()
    }
    /// As `f64::to_degrees`: a multiplication by the correctly rounded 180/π.
    fn to_degrees(self) -> Self {
        self * 57.295_779_513_082_32_f64
    }
    /// As `f64::to_radians`: a multiplication by π/180.
    fn to_radians(self) -> Self {
        self * (std::f64::consts::PI / 180.0)
    }
    fn max(self, other: Self) -> Self {
        self.binary(Op::Max, other)
    }
    fn min(self, other: Self) -> Self {
        self.binary(Op::Min, other)
    }
    /// As `f64::clamp`, branch-free (NaN stays NaN). `min <= max` is checked at
    /// trace time (and guarded); `f64::clamp` would panic, the trace call returns an error.
    fn clamp(self, min: Self, max: Self) -> Self {
        let ordered = min <= max;
        if !ordered {
            trace_error(format!(
                "clamp called with min {} > max {} (or a NaN bound)",
                min.value, max.value
            ));
        }
        let below = self.binary(Op::Lt, min);
        let above = max.binary(Op::Lt, self);
        Var::select(below, min, Var::select(above, max, self))
    }
    /// `0` if `self <= other`, else `self - other` (NaN if either is NaN), branch-free.
    fn abs_sub(self, other: Self) -> Self {
        let le = self.binary(Op::Le, other);
        Var::select(le, Var::constant(0.0), self - other)
    }
    fn hypot(self, other: Self) -> Self {
        self.binary(Op::Hypot, other)
    }
    fn atan2(self, other: Self) -> Self {
        self.binary(Op::Atan2, other)
    }
    fn sin_cos(self) -> (Self, Self) {
        (self.sin(), self.cos())
    }
    /// Guarded: the tape stays valid while `self` keeps its trace-time value.
    fn integer_decode(self) -> (u64, i16, i8) {
        Float::integer_decode(self.pinned())
    }
    fn copysign(self, sign: Self) -> Self {
        self.binary(Op::Copysign, sign)
    }
}

impl Real for Var<'_> {
    fn cond_lt(self, other: Self) -> Self {
        self.binary(Op::Lt, other)
    }
    fn cond_le(self, other: Self) -> Self {
        self.binary(Op::Le, other)
    }
    fn cond_eq(self, other: Self) -> Self {
        self.binary(Op::Eq, other)
    }
    fn cond_ne(self, other: Self) -> Self {
        self.binary(Op::Ne, other)
    }
    fn select(cond: Self, a: Self, b: Self) -> Self {
        cond.ternary(Op::Select, a, b)
    }
    fn fold_loop(
        n: usize,
        init: &[Self],
        reads: &[crate::Strided<'_, Self>],
        body: &mut crate::real::FoldBody<'_, Self>,
    ) -> Vec<Self> {
        super::fold::fold(n, init, reads, body)
    }
}
