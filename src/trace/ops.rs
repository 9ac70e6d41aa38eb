//! Operator traits for `Var`: arithmetic with `Var` or `f64` on either side,
//! assign forms, `Sum`/`Product`, and comparisons decided at trace time.

use super::Var;
use crate::ir::Op;
use std::cmp::Ordering;
use std::iter::{Product, Sum};
use std::ops::{
    Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Rem, RemAssign, Sub, SubAssign,
};

impl<'t> Var<'t> {
    /// Whether this is the constant `c` exactly (same bits).
    fn is_exactly(&self, c: f64) -> bool {
        self.is_constant() && self.trace_value().to_bits() == c.to_bits()
    }

    /// `a + b`, dropping an exact identity (`x + -0.0 == x` for every x;
    /// `x + 0.0` is not an identity: it turns `-0.0` into `0.0`).
    fn add_var(self, other: Var<'t>) -> Var<'t> {
        if self.is_exactly(-0.0) {
            other
        } else if other.is_exactly(-0.0) {
            self
        } else {
            self.binary(Op::Add, other)
        }
    }

    /// `a - b`, dropping `x - 0.0 == x`.
    fn sub_var(self, other: Var<'t>) -> Var<'t> {
        if other.is_exactly(0.0) {
            self
        } else {
            self.binary(Op::Sub, other)
        }
    }

    /// `a * b`, dropping `x * 1 == x`.
    fn mul_var(self, other: Var<'t>) -> Var<'t> {
        if self.is_exactly(1.0) {
            other
        } else if other.is_exactly(1.0) {
            self
        } else {
            self.binary(Op::Mul, other)
        }
    }

    /// `a / b`, dropping `x / 1 == x`.
    fn div_var(self, other: Var<'t>) -> Var<'t> {
        if other.is_exactly(1.0) {
            self
        } else {
            self.binary(Op::Div, other)
        }
    }

    fn rem_var(self, other: Var<'t>) -> Var<'t> {
        self.binary(Op::Rem, other)
    }
}

impl From<f64> for Var<'_> {
    fn from(c: f64) -> Self {
        Var::constant(c)
    }
}

macro_rules! binary_ops {
    ($($trait:ident $method:ident $assign_trait:ident $assign:ident $imp:ident;)*) => {$(
        impl<'t> $trait for Var<'t> {
            type Output = Var<'t>;
            fn $method(self, rhs: Var<'t>) -> Var<'t> {
                self.$imp(rhs)
            }
        }
        impl<'t> $trait<f64> for Var<'t> {
            type Output = Var<'t>;
            fn $method(self, rhs: f64) -> Var<'t> {
                self.$imp(Var::constant(rhs))
            }
        }
        impl<'t> $trait<Var<'t>> for f64 {
            type Output = Var<'t>;
            fn $method(self, rhs: Var<'t>) -> Var<'t> {
                Var::constant(self).$imp(rhs)
            }
        }
        impl<'t> $assign_trait for Var<'t> {
            fn $assign(&mut self, rhs: Var<'t>) {
                *self = self.$imp(rhs);
            }
        }
        impl $assign_trait<f64> for Var<'_> {
            fn $assign(&mut self, rhs: f64) {
                *self = self.$imp(Var::constant(rhs));
            }
        }
    )*};
}

binary_ops! {
    Add add AddAssign add_assign add_var;
    Sub sub SubAssign sub_assign sub_var;
    Mul mul MulAssign mul_assign mul_var;
    Div div DivAssign div_assign div_var;
    Rem rem RemAssign rem_assign rem_var;
}

impl<'t> Neg for Var<'t> {
    type Output = Var<'t>;
    fn neg(self) -> Var<'t> {
        self.unary(Op::Neg)
    }
}

/// Sums like `f64`'s `Sum`: a fold from `-0.0`, the exact additive identity.
impl<'t> Sum for Var<'t> {
    fn sum<I: Iterator<Item = Var<'t>>>(iter: I) -> Var<'t> {
        iter.fold(Var::constant(-0.0), Var::add_var)
    }
}

impl<'a, 't> Sum<&'a Var<'t>> for Var<'t> {
    fn sum<I: Iterator<Item = &'a Var<'t>>>(iter: I) -> Var<'t> {
        iter.copied().sum()
    }
}

/// Multiplies like `f64`'s `Product`: a fold from `1.0`.
impl<'t> Product for Var<'t> {
    fn product<I: Iterator<Item = Var<'t>>>(iter: I) -> Var<'t> {
        iter.fold(Var::constant(1.0), Var::mul_var)
    }
}

impl<'a, 't> Product<&'a Var<'t>> for Var<'t> {
    fn product<I: Iterator<Item = &'a Var<'t>>>(iter: I) -> Var<'t> {
        iter.copied().product()
    }
}

/// `==` is decided at trace time and recorded as a guard.
impl PartialEq for Var<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.compare_guarded(Op::Eq, *other)
    }
}

impl PartialEq<f64> for Var<'_> {
    fn eq(&self, other: &f64) -> bool {
        self.compare_guarded(Op::Eq, Var::constant(*other))
    }
}

/// Orderings are decided at trace time and recorded as guards; code that
/// must not retrace on the other side uses [`crate::Real::select`].
impl PartialOrd for Var<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        if self.compare_guarded(Op::Lt, *other) {
            Some(Ordering::Less)
        } else if self.compare_guarded(Op::Eq, *other) {
            Some(Ordering::Equal)
        } else if other.compare_guarded(Op::Lt, *self) {
            Some(Ordering::Greater)
        } else {
            None
        }
    }
    fn lt(&self, other: &Self) -> bool {
        self.compare_guarded(Op::Lt, *other)
    }
    fn le(&self, other: &Self) -> bool {
        self.compare_guarded(Op::Le, *other)
    }
    fn gt(&self, other: &Self) -> bool {
        other.compare_guarded(Op::Lt, *self)
    }
    fn ge(&self, other: &Self) -> bool {
        other.compare_guarded(Op::Le, *self)
    }
}

impl PartialOrd<f64> for Var<'_> {
    fn partial_cmp(&self, other: &f64) -> Option<Ordering> {
        self.partial_cmp(&Var::constant(*other))
    }
    fn lt(&self, other: &f64) -> bool {
        *self < Var::constant(*other)
    }
    fn le(&self, other: &f64) -> bool {
        *self <= Var::constant(*other)
    }
    fn gt(&self, other: &f64) -> bool {
        *self > Var::constant(*other)
    }
    fn ge(&self, other: &f64) -> bool {
        *self >= Var::constant(*other)
    }
}
