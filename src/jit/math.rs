//! Math the JIT calls instead of inlining: `extern "C"` wrappers around the
//! same `f64` methods the interpreter uses (`ir::semantics`), so both
//! backends agree bitwise.

use crate::ir::{semantics, Op};

macro_rules! unary_wrappers {
    ($($name:ident => $op:ident,)*) => {
        $(
            extern "C" fn $name(a: f64) -> f64 {
                semantics::unary(Op::$op, a)
            }
        )*
        /// The wrapper for a one-operand op that is lowered as a call.
        pub(super) fn unary(op: Op) -> Option<(&'static str, *const u8)> {
            match op {
                $(Op::$op => Some((stringify!($name), $name as *const u8)),)*
                _ => None,
            }
        }
    };
}

unary_wrappers! {
    tapejit_cbrt => Cbrt,
    tapejit_exp => Exp,
    tapejit_exp2 => Exp2,
    tapejit_exp_m1 => ExpM1,
    tapejit_ln => Ln,
    tapejit_log2 => Log2,
    tapejit_log10 => Log10,
    tapejit_ln_1p => Ln1p,
    tapejit_sin => Sin,
    tapejit_cos => Cos,
    tapejit_tan => Tan,
    tapejit_asin => Asin,
    tapejit_acos => Acos,
    tapejit_atan => Atan,
    tapejit_sinh => Sinh,
    tapejit_cosh => Cosh,
    tapejit_tanh => Tanh,
    tapejit_asinh => Asinh,
    tapejit_acosh => Acosh,
    tapejit_atanh => Atanh,
    tapejit_classify => Classify,
}

macro_rules! binary_wrappers {
    ($($name:ident => $op:ident,)*) => {
        $(
            extern "C" fn $name(a: f64, b: f64) -> f64 {
                semantics::binary(Op::$op, a, b)
            }
        )*
        /// The wrapper for a two-operand op that is lowered as a call.
        pub(super) fn binary(op: Op) -> Option<(&'static str, *const u8)> {
            match op {
                $(Op::$op => Some((stringify!($name), $name as *const u8)),)*
                _ => None,
            }
        }
    };
}

binary_wrappers! {
    tapejit_rem => Rem,
    tapejit_powf => PowF,
    tapejit_atan2 => Atan2,
    tapejit_hypot => Hypot,
}

extern "C" fn tapejit_powi(a: f64, n: i32) -> f64 {
    semantics::powi(a, n)
}

extern "C" fn tapejit_mul_add(a: f64, b: f64, c: f64) -> f64 {
    a.mul_add(b, c)
}

/// `powi` for exponents too large to unroll.
pub(super) const POWI: (&str, *const u8) = ("tapejit_powi", tapejit_powi as *const u8);

/// `mul_add`, called rather than inlined so that NaN signs match the interpreter.
pub(super) const MUL_ADD: (&str, *const u8) = ("tapejit_mul_add", tapejit_mul_add as *const u8);

/// Every wrapper with its number of arguments, for the JIT's symbol table.
pub(super) fn all() -> Vec<(&'static str, *const u8, usize)> {
    let ops = crate::ir::ALL_OPS.iter();
    ops.clone()
        .filter_map(|&op| unary(op).map(|(n, p)| (n, p, 1)))
        .chain(ops.filter_map(|&op| binary(op).map(|(n, p)| (n, p, 2))))
        .chain([(POWI.0, POWI.1, 2), (MUL_ADD.0, MUL_ADD.1, 3)])
        .collect()
}
