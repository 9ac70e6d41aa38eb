//! Math the JIT calls instead of inlining: `extern "C"` wrappers around the
//! same `f64` methods the interpreter uses (`ir::semantics`), so both
//! backends agree bitwise.
//!
//! Each has a `_flush` twin for code compiled with `flush_subnormals`: it
//! runs in IEEE mode ([`FpMode::ieee`]) on the flushed operands and flushes
//! the result, exactly as the interpreter emulates it (`ir::flush`).

use super::fpmode::FpMode;
use crate::ir::{flush, semantics, Op};
use std::hint::black_box;

/// `f` evaluated in IEEE mode (the caller runs with subnormals flushed), its
/// result flushed. `black_box` pins the operands' read after the mode
/// switch and the result's computation before the switch back.
#[inline(always)]
fn ieee<A>(args: A, f: impl FnOnce(A) -> f64) -> f64 {
    let mode = FpMode::ieee();
    let r = black_box(f(black_box(args)));
    drop(mode);
    flush::flush(r)
}

macro_rules! unary_wrappers {
    ($($name:ident, $flushed:ident => $op:ident,)*) => {
        $(
            extern "C" fn $name(a: f64) -> f64 {
                semantics::unary(Op::$op, a)
            }
            extern "C" fn $flushed(a: f64) -> f64 {
                ieee(a, |a| semantics::unary(Op::$op, flush::flush(a)))
            }
        )*
        /// The wrapper for a one-operand op that is lowered as a call (its
        /// `_flush` twin with `flush`).
        pub(super) fn unary(op: Op, flush: bool) -> Option<(&'static str, *const u8)> {
            match (op, flush) {
                $(
                    (Op::$op, false) => Some((stringify!($name), $name as *const u8)),
                    (Op::$op, true) => Some((stringify!($flushed), $flushed as *const u8)),
                )*
                _ => None,
            }
        }
    };
}

unary_wrappers! {
    tapejit_cbrt, tapejit_cbrt_flush => Cbrt,
    tapejit_exp, tapejit_exp_flush => Exp,
    tapejit_exp2, tapejit_exp2_flush => Exp2,
    tapejit_exp_m1, tapejit_exp_m1_flush => ExpM1,
    tapejit_ln, tapejit_ln_flush => Ln,
    tapejit_log2, tapejit_log2_flush => Log2,
    tapejit_log10, tapejit_log10_flush => Log10,
    tapejit_ln_1p, tapejit_ln_1p_flush => Ln1p,
    tapejit_sin, tapejit_sin_flush => Sin,
    tapejit_cos, tapejit_cos_flush => Cos,
    tapejit_tan, tapejit_tan_flush => Tan,
    tapejit_asin, tapejit_asin_flush => Asin,
    tapejit_acos, tapejit_acos_flush => Acos,
    tapejit_atan, tapejit_atan_flush => Atan,
    tapejit_sinh, tapejit_sinh_flush => Sinh,
    tapejit_cosh, tapejit_cosh_flush => Cosh,
    tapejit_tanh, tapejit_tanh_flush => Tanh,
    tapejit_asinh, tapejit_asinh_flush => Asinh,
    tapejit_acosh, tapejit_acosh_flush => Acosh,
    tapejit_atanh, tapejit_atanh_flush => Atanh,
    tapejit_classify, tapejit_classify_flush => Classify,
}

macro_rules! binary_wrappers {
    ($($name:ident, $flushed:ident => $op:ident,)*) => {
        $(
            extern "C" fn $name(a: f64, b: f64) -> f64 {
                semantics::binary(Op::$op, a, b)
            }
            extern "C" fn $flushed(a: f64, b: f64) -> f64 {
                ieee((a, b), |(a, b)| {
                    semantics::binary(Op::$op, flush::flush(a), flush::flush(b))
                })
            }
        )*
        /// The wrapper for a two-operand op that is lowered as a call (its
        /// `_flush` twin with `flush`).
        pub(super) fn binary(op: Op, flush: bool) -> Option<(&'static str, *const u8)> {
            match (op, flush) {
                $(
                    (Op::$op, false) => Some((stringify!($name), $name as *const u8)),
                    (Op::$op, true) => Some((stringify!($flushed), $flushed as *const u8)),
                )*
                _ => None,
            }
        }
    };
}

binary_wrappers! {
    tapejit_rem, tapejit_rem_flush => Rem,
    tapejit_powf, tapejit_powf_flush => PowF,
    tapejit_atan2, tapejit_atan2_flush => Atan2,
    tapejit_hypot, tapejit_hypot_flush => Hypot,
}

extern "C" fn tapejit_powi(a: f64, n: i32) -> f64 {
    semantics::powi(a, n)
}

extern "C" fn tapejit_powi_flush(a: f64, n: i32) -> f64 {
    ieee(a, |a| flush::powi(a, n))
}

extern "C" fn tapejit_mul_add(a: f64, b: f64, c: f64) -> f64 {
    a.mul_add(b, c)
}

extern "C" fn tapejit_mul_add_flush(a: f64, b: f64, c: f64) -> f64 {
    ieee((a, b, c), |(a, b, c)| {
        flush::flush(a).mul_add(flush::flush(b), flush::flush(c))
    })
}

/// `powi` for exponents too large to unroll.
pub(super) const POWI: (&str, *const u8) = ("tapejit_powi", tapejit_powi as *const u8);

/// [`POWI`] with subnormals flushed at every step (`ir::flush::powi`).
pub(super) const POWI_FLUSH: (&str, *const u8) =
    ("tapejit_powi_flush", tapejit_powi_flush as *const u8);

/// `mul_add`, called rather than inlined so that NaN signs match the interpreter.
pub(super) const MUL_ADD: (&str, *const u8) = ("tapejit_mul_add", tapejit_mul_add as *const u8);

/// [`MUL_ADD`] on flushed operands, its result flushed.
pub(super) const MUL_ADD_FLUSH: (&str, *const u8) =
    ("tapejit_mul_add_flush", tapejit_mul_add_flush as *const u8);

/// Every wrapper with its number of arguments, for the JIT's symbol table.
pub(super) fn all() -> Vec<(&'static str, *const u8, usize)> {
    let ops = crate::ir::ALL_OPS.iter();
    let mut all = Vec::new();
    for flush in [false, true] {
        all.extend(
            ops.clone()
                .filter_map(|&op| unary(op, flush).map(|(n, p)| (n, p, 1))),
        );
        all.extend(
            ops.clone()
                .filter_map(|&op| binary(op, flush).map(|(n, p)| (n, p, 2))),
        );
    }
    all.extend([
        (POWI.0, POWI.1, 2),
        (POWI_FLUSH.0, POWI_FLUSH.1, 2),
        (MUL_ADD.0, MUL_ADD.1, 3),
        (MUL_ADD_FLUSH.0, MUL_ADD_FLUSH.1, 3),
    ]);
    all
}
