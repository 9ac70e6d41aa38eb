//! [`Fwd`]: num-dual's first-order dual number as a [`Real`], so the suite
//! functions run in forward mode on a well-kept peer crate unchanged.
//!
//! `num_dual::Dual64` implements its own `DualNum` trait rather than
//! `num_traits::Float`, so this thin newtype forwards every method to the
//! num-dual operation of the same meaning (arithmetic, `exp`, `tanh`, `powi`,
//! ...: num-dual's own derivative rules). The few operations num-dual lacks
//! are spelled out here with tapejit's conventions (DESIGN.md "Semantics"):
//! `max`/`min` keep the first operand when it wins or the other is NaN,
//! `abs'(0) = 0`, rounding functions have derivative 0. Everything is
//! `#[inline]` and `Copy`, so the newtype costs nothing at run time.
//!
//! ```
//! use tapejit::cli::Fwd;
//! use tapejit::suite::rosenbrock;
//! let x: Vec<Fwd> = [-1.2, 1.0].iter().enumerate()
//!     .map(|(i, &v)| Fwd::seeded(v, if i == 0 { 1.0 } else { 0.0 }))
//!     .collect();
//! let f = rosenbrock(&x);
//! assert!((f.value() - 24.2).abs() < 1e-12);
//! // df/dx0 = -400 x0 (x1 - x0^2) - 2 (1 - x0) = -215.6
//! assert!((f.derivative() + 215.6).abs() < 1e-9);
//! ```

use crate::Real;
use num_dual::{Dual64, DualNum};
use num_traits::{Float, FromPrimitive, Num, NumCast, One, ToPrimitive, Zero};
use std::cmp::Ordering;
use std::iter::{Product, Sum};
use std::num::FpCategory;
use std::ops::{
    Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Rem, RemAssign, Sub, SubAssign,
};

/// A forward-mode scalar: `num_dual::Dual64` (value and one directional
/// derivative) implementing [`Real`].
#[derive(Clone, Copy, Debug)]
pub struct Fwd(pub Dual64);

impl Fwd {
    /// A value with derivative `eps` (1 for the input being differentiated).
    #[inline]
    pub fn seeded(value: f64, eps: f64) -> Fwd {
        Fwd(Dual64::new(value, eps))
    }

    /// A constant (derivative 0).
    #[inline]
    pub fn constant(value: f64) -> Fwd {
        Fwd(Dual64::new(value, 0.0))
    }

    /// The value.
    #[inline]
    pub fn value(self) -> f64 {
        self.0.re
    }

    /// The directional derivative.
    #[inline]
    pub fn derivative(self) -> f64 {
        self.0.eps
    }

    #[inline]
    fn map_re(self, f: impl FnOnce(f64) -> f64) -> Fwd {
        Fwd::constant(f(self.0.re))
    }
}

impl PartialEq for Fwd {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.0.re == other.0.re
    }
}

impl PartialOrd for Fwd {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.0.re.partial_cmp(&other.0.re)
    }
}

impl From<f64> for Fwd {
    #[inline]
    fn from(v: f64) -> Fwd {
        Fwd::constant(v)
    }
}

macro_rules! binop {
    ($tr:ident, $f:ident, $atr:ident, $af:ident, $op:tt) => {
        impl $tr for Fwd {
            type Output = Fwd;
            #[inline]
            fn $f(self, o: Fwd) -> Fwd {
                Fwd(self.0 $op o.0)
            }
        }
        impl $tr<f64> for Fwd {
            type Output = Fwd;
            #[inline]
            fn $f(self, o: f64) -> Fwd {
                Fwd(self.0 $op o)
            }
        }
        impl $atr for Fwd {
            #[inline]
            fn $af(&mut self, o: Fwd) {
                *self = *self $op o;
            }
        }
    };
}
binop!(Add, add, AddAssign, add_assign, +);
binop!(Sub, sub, SubAssign, sub_assign, -);
binop!(Mul, mul, MulAssign, mul_assign, *);
binop!(Div, div, DivAssign, div_assign, /);

/// `a % b = a - b trunc(a / b)`: derivative `a' - b' trunc(a / b)` (num-dual
/// leaves `%` unimplemented).
impl Rem for Fwd {
    type Output = Fwd;
    #[inline]
    fn rem(self, o: Fwd) -> Fwd {
        let q = (self.0.re / o.0.re).trunc();
        Fwd(Dual64::new(self.0.re % o.0.re, self.0.eps - o.0.eps * q))
    }
}

impl RemAssign for Fwd {
    #[inline]
    fn rem_assign(&mut self, o: Fwd) {
        *self = *self % o;
    }
}

impl Neg for Fwd {
    type Output = Fwd;
    #[inline]
    fn neg(self) -> Fwd {
        Fwd(-self.0)
    }
}

impl Sum for Fwd {
    #[inline]
    fn sum<I: Iterator<Item = Fwd>>(iter: I) -> Fwd {
        iter.fold(Fwd::zero(), |a, b| a + b)
    }
}

impl Product for Fwd {
    #[inline]
    fn product<I: Iterator<Item = Fwd>>(iter: I) -> Fwd {
        iter.fold(Fwd::one(), |a, b| a * b)
    }
}

impl Zero for Fwd {
    #[inline]
    fn zero() -> Fwd {
        Fwd::constant(0.0)
    }
    #[inline]
    fn is_zero(&self) -> bool {
        self.0.re == 0.0
    }
}

impl One for Fwd {
    #[inline]
    fn one() -> Fwd {
        Fwd::constant(1.0)
    }
}

impl Num for Fwd {
    type FromStrRadixErr = <f64 as Num>::FromStrRadixErr;
    fn from_str_radix(s: &str, radix: u32) -> Result<Fwd, Self::FromStrRadixErr> {
        f64::from_str_radix(s, radix).map(Fwd::constant)
    }
}

impl ToPrimitive for Fwd {
    fn to_i64(&self) -> Option<i64> {
        self.0.re.to_i64()
    }
    fn to_u64(&self) -> Option<u64> {
        self.0.re.to_u64()
    }
    fn to_f64(&self) -> Option<f64> {
        Some(self.0.re)
    }
}

impl NumCast for Fwd {
    fn from<N: ToPrimitive>(n: N) -> Option<Fwd> {
        n.to_f64().map(Fwd::constant)
    }
}

impl FromPrimitive for Fwd {
    fn from_i64(n: i64) -> Option<Fwd> {
        Some(Fwd::constant(n as f64))
    }
    fn from_u64(n: u64) -> Option<Fwd> {
        Some(Fwd::constant(n as f64))
    }
    fn from_f64(n: f64) -> Option<Fwd> {
        Some(Fwd::constant(n))
    }
}

macro_rules! unary {
    ($($f:ident),*) => {$(
        #[inline]
        fn $f(self) -> Fwd {
            Fwd(DualNum::$f(&self.0))
        }
    )*};
}

macro_rules! piecewise_constant {
    ($($f:ident),*) => {$(
        #[inline]
        fn $f(self) -> Fwd {
            self.map_re(f64::$f)
        }
    )*};
}

macro_rules! constant {
    ($($f:ident),*) => {$(
        #[inline]
        fn $f() -> Fwd {
            Fwd::constant(f64::$f())
        }
    )*};
}

macro_rules! predicate {
    ($($f:ident),*) => {$(
        #[inline]
        fn $f(self) -> bool {
            self.0.re.$f()
        }
    )*};
}

impl Float for Fwd {
    constant!(
        nan,
        infinity,
        neg_infinity,
        neg_zero,
        min_value,
        min_positive_value,
        max_value,
        epsilon
    );
    predicate!(
        is_nan,
        is_infinite,
        is_finite,
        is_normal,
        is_sign_positive,
        is_sign_negative
    );
    piecewise_constant!(floor, ceil, round, trunc, signum);
    unary!(
        recip, sqrt, exp, exp2, ln, log2, log10, cbrt, sin, cos, tan, asin, acos, atan, exp_m1,
        ln_1p, sinh, cosh, tanh, asinh, acosh, atanh
    );

    fn classify(self) -> FpCategory {
        self.0.re.classify()
    }
    fn integer_decode(self) -> (u64, i16, i8) {
        self.0.re.integer_decode()
    }
    #[inline]
    fn fract(self) -> Fwd {
        Fwd(Dual64::new(self.0.re.fract(), self.0.eps))
    }
    /// `abs'(0) = 0`.
    #[inline]
    fn abs(self) -> Fwd {
        let s = if self.0.re > 0.0 {
            1.0
        } else if self.0.re < 0.0 {
            -1.0
        } else {
            0.0
        };
        Fwd(Dual64::new(self.0.re.abs(), self.0.eps * s))
    }
    #[inline]
    fn mul_add(self, a: Fwd, b: Fwd) -> Fwd {
        Fwd(Dual64::new(
            self.0.re.mul_add(a.0.re, b.0.re),
            self.0.eps * a.0.re + self.0.re * a.0.eps + b.0.eps,
        ))
    }
    #[inline]
    fn powi(self, n: i32) -> Fwd {
        Fwd(DualNum::powi(&self.0, n))
    }
    #[inline]
    fn powf(self, n: Fwd) -> Fwd {
        if n.0.eps == 0.0 {
            Fwd(DualNum::powf(&self.0, n.0.re))
        } else {
            Fwd(DualNum::powd(&self.0, n.0))
        }
    }
    #[inline]
    fn log(self, base: Fwd) -> Fwd {
        self.ln() / base.ln()
    }
    /// `self` when `self >= other` or `other` is NaN, else `other`.
    #[inline]
    fn max(self, other: Fwd) -> Fwd {
        if self.0.re >= other.0.re || other.0.re.is_nan() {
            self
        } else {
            other
        }
    }
    /// `self` when `self <= other` or `other` is NaN, else `other`.
    #[inline]
    fn min(self, other: Fwd) -> Fwd {
        if self.0.re <= other.0.re || other.0.re.is_nan() {
            self
        } else {
            other
        }
    }
    fn abs_sub(self, other: Fwd) -> Fwd {
        (self - other).max(Fwd::zero())
    }
    #[inline]
    fn hypot(self, other: Fwd) -> Fwd {
        (self * self + other * other).sqrt()
    }
    #[inline]
    fn atan2(self, other: Fwd) -> Fwd {
        Fwd(DualNum::atan2(&self.0, other.0))
    }
    #[inline]
    fn sin_cos(self) -> (Fwd, Fwd) {
        let (s, c) = DualNum::sin_cos(&self.0);
        (Fwd(s), Fwd(c))
    }
}

fn flag(b: bool) -> Fwd {
    Fwd::constant(if b { 1.0 } else { 0.0 })
}

impl Real for Fwd {
    #[inline]
    fn cond_lt(self, other: Fwd) -> Fwd {
        flag(self.0.re < other.0.re)
    }
    #[inline]
    fn cond_le(self, other: Fwd) -> Fwd {
        flag(self.0.re <= other.0.re)
    }
    #[inline]
    fn cond_eq(self, other: Fwd) -> Fwd {
        flag(self.0.re == other.0.re)
    }
    #[inline]
    fn cond_ne(self, other: Fwd) -> Fwd {
        flag(self.0.re != other.0.re)
    }
    #[inline]
    fn select(cond: Fwd, a: Fwd, b: Fwd) -> Fwd {
        if cond.0.re != 0.0 {
            a
        } else {
            b
        }
    }
}

/// The gradient of `f` at `x` by forward mode: one sweep of `f` at
/// [`Fwd`] per input (`x` is copied into `xd`, a caller buffer of the same
/// length, so that the sweeps allocate nothing). Returns `f(x)`.
pub fn forward_gradient(
    x: &[f64],
    xd: &mut [Fwd],
    g: &mut [f64],
    mut f: impl FnMut(&[Fwd]) -> Fwd,
) -> f64 {
    for (d, &v) in xd.iter_mut().zip(x) {
        *d = Fwd::constant(v);
    }
    let mut value = f64::NAN;
    for j in 0..x.len() {
        xd[j].0.eps = 1.0;
        let y = f(xd);
        xd[j].0.eps = 0.0;
        g[j] = y.derivative();
        value = y.value();
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::Case;

    #[test]
    fn forward_gradients_match_the_suite_gradients() {
        for case in Case::quick() {
            if case.n_outputs() != 1 || case.n_inputs() > 100 {
                continue;
            }
            let x = case.default_input();
            let p: Vec<Fwd> = case.params().into_iter().map(Fwd::constant).collect();
            let mut xd = vec![Fwd::zero(); x.len()];
            let mut g = vec![0.0; x.len()];
            let mut out = [Fwd::zero()];
            let v = forward_gradient(&x, &mut xd, &mut g, |x| {
                case.eval(x, &p, &mut out);
                out[0]
            });
            assert_eq!(v, case.default_value()[0], "{case}");
            let f = case.function().unwrap();
            let mut want = vec![0.0; x.len()];
            f.with_params(&case.params())
                .unwrap()
                .gradient(&x, &mut want)
                .unwrap();
            let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for (a, b) in g.iter().zip(&want) {
                assert!((a - b).abs() <= 1e-9 * scale, "{case}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn kinks_follow_tapejit_conventions() {
        let a = Fwd::seeded(0.0, 1.0);
        assert_eq!(a.abs().derivative(), 0.0);
        let b = Fwd::seeded(2.0, 5.0);
        assert_eq!(b.max(Fwd::constant(f64::NAN)).derivative(), 5.0);
        assert_eq!(b.floor().derivative(), 0.0);
        let r = Fwd::seeded(7.5, 1.0) % Fwd::seeded(2.0, 1.0);
        assert_eq!((r.value(), r.derivative()), (1.5, 1.0 - 3.0));
    }
}
