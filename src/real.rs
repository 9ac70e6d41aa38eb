//! The scalar trait user code is generic over.

use num_traits::{Float, FromPrimitive};
use std::fmt::Debug;
use std::iter::{Product, Sum};
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, RemAssign, Sub, SubAssign};

/// A real scalar: `f64` for plain evaluation, [`crate::Var`] while tracing.
///
/// Write a numeric function once against `T: Real` (or just `num_traits::Float`)
/// and it runs natively at `T = f64` and records a tape at `T = Var`.
///
/// Besides `Float`, `Real` offers branch-free conditionals: `cond_*` return a
/// condition as a scalar (`1` true, `0` false) and [`Real::select`] picks one
/// of two values by it. While tracing, these record a compare and a select
/// instead of deciding at trace time, so code written with them (ReLU, clamps,
/// piecewise formulas) never needs a guard and never retraces.
///
/// ```
/// use tapejit::Real;
/// fn relu<T: Real>(x: T) -> T {
///     T::select(x.cond_gt(T::zero()), x, T::zero())
/// }
/// assert_eq!(relu(-2.0), 0.0);
/// assert_eq!(relu(3.0), 3.0);
/// ```
pub trait Real:
    Float
    + FromPrimitive
    + Sum
    + Product
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + RemAssign
    + Add<f64, Output = Self>
    + Sub<f64, Output = Self>
    + Mul<f64, Output = Self>
    + Div<f64, Output = Self>
    + From<f64>
    + Debug
{
    /// `1` if `self < other`, else `0` (no guard while tracing).
    fn cond_lt(self, other: Self) -> Self;
    /// `1` if `self <= other`, else `0` (no guard while tracing).
    fn cond_le(self, other: Self) -> Self;
    /// `1` if `self > other`, else `0` (no guard while tracing).
    fn cond_gt(self, other: Self) -> Self {
        other.cond_lt(self)
    }
    /// `1` if `self >= other`, else `0` (no guard while tracing).
    fn cond_ge(self, other: Self) -> Self {
        other.cond_le(self)
    }
    /// `1` if `self == other`, else `0` (no guard while tracing).
    fn cond_eq(self, other: Self) -> Self;
    /// `1` if `self != other` (or either is NaN), else `0` (no guard while tracing).
    fn cond_ne(self, other: Self) -> Self;
    /// `a` where `cond` is non-zero (NaN counts as non-zero), else `b`.
    ///
    /// Derivatives flow only into the chosen branch.
    fn select(cond: Self, a: Self, b: Self) -> Self;
}

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

impl Real for f64 {
    fn cond_lt(self, other: Self) -> Self {
        flag(self < other)
    }
    fn cond_le(self, other: Self) -> Self {
        flag(self <= other)
    }
    fn cond_eq(self, other: Self) -> Self {
        flag(self == other)
    }
    fn cond_ne(self, other: Self) -> Self {
        flag(self != other)
    }
    fn select(cond: Self, a: Self, b: Self) -> Self {
        if cond != 0.0 {
            a
        } else {
            b
        }
    }
}
