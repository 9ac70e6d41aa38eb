//! What ops compute when subnormals are flushed (`Options::flush_subnormals`):
//! the interpreter's emulation of the hardware mode the JIT runs in
//! (x86-64: MXCSR.FTZ and DAZ; aarch64: FPCR.FZ).
//!
//! The rules, for primal and derivative tapes alike:
//! - **DAZ**: a subnormal operand is read as a zero of the same sign.
//! - **FTZ**: a result that is *tiny* becomes a zero of the same sign. On
//!   x86-64 a result is tiny when, rounded to 53 bits with an unbounded
//!   exponent, it lies below `f64::MIN_POSITIVE` (tininess after rounding);
//!   on aarch64 when its exact value does (before rounding). The two differ
//!   from "the IEEE result is subnormal" only for products and quotients
//!   whose IEEE result is exactly `±f64::MIN_POSITIVE`: [`mul`] and [`div`]
//!   decide those exactly.
//!
//! Every value a tape holds is flushed, so the interpreter reads operands
//! unchanged and applies [`flush`] where it writes a value; only
//! multiplication, division (`recip` too) and `powi` (a chain of them, as
//! compiler-rt's `__powidf2` computes it) need more. Sums and differences
//! of normal numbers are multiples of the smallest subnormal, so their IEEE
//! result is exact below `MIN_POSITIVE`. Math-library ops (`exp`, `mul_add`,
//! ...) are evaluated with IEEE arithmetic on flushed operands and their
//! result flushed, in both backends.

/// `2^128`: scales the operands of a product or quotient near
/// `MIN_POSITIVE` into a range where nothing underflows.
const SCALE: f64 = f64::from_bits((1023 + 128) << 52);

/// Whether tininess is detected before rounding (aarch64) rather than after
/// (x86-64): the rule of the host, whose hardware the JIT uses.
pub(crate) const TINY_BEFORE_ROUNDING: bool = cfg!(target_arch = "aarch64");

/// `x`, or a zero of its sign if `x` is subnormal. Integer operations only,
/// so the result does not depend on the floating-point mode it runs in.
#[inline(always)]
pub fn flush(x: f64) -> f64 {
    const EXPONENT: u64 = 0x7ff0_0000_0000_0000;
    const SIGN: u64 = 1 << 63;
    let bits = x.to_bits();
    if bits & EXPONENT == 0 {
        f64::from_bits(bits & SIGN)
    } else {
        x
    }
}

/// `a * b` with flushing; operands need not be flushed yet.
#[inline]
pub fn mul(a: f64, b: f64) -> f64 {
    let (a, b) = (flush(a), flush(b));
    let r = a * b;
    if r.abs() == f64::MIN_POSITIVE {
        // |a b| is near 2^-1022 and both are normal, so the smaller one is
        // at most 1 and scaling it by 2^128 is exact and cannot overflow.
        let (s, t) = if a.abs() <= 1.0 { (a, b) } else { (b, a) };
        let (s, t) = (s.abs() * SCALE, t.abs());
        let threshold = f64::MIN_POSITIVE * SCALE;
        let tiny = if TINY_BEFORE_ROUNDING {
            // The sign of the fused difference is the sign of the exact one.
            s.mul_add(t, -threshold) < 0.0
        } else {
            s * t < threshold
        };
        if tiny {
            return 0.0f64.copysign(r);
        }
        return r;
    }
    flush(r)
}

/// `a / b` with flushing; operands need not be flushed yet.
#[inline]
pub fn div(a: f64, b: f64) -> f64 {
    let (a, b) = (flush(a), flush(b));
    let r = a / b;
    if r.abs() == f64::MIN_POSITIVE {
        // |a / b| is near 2^-1022 with a, b normal: |a| <= 4 and |b| >= 1/2,
        // so both scalings below are exact and stay finite.
        let (a, b) = (a.abs() * SCALE, b.abs());
        let threshold = f64::MIN_POSITIVE * SCALE;
        let tiny = if TINY_BEFORE_ROUNDING {
            a < threshold * b
        } else {
            a / b < threshold
        };
        if tiny {
            return 0.0f64.copysign(r);
        }
        return r;
    }
    flush(r)
}

/// `a.powi(n)` with flushing: compiler-rt's `__powidf2` (binary
/// exponentiation, then one division for negative `n`), each step flushed.
pub fn powi(a: f64, n: i32) -> f64 {
    let mut square = flush(a);
    let mut r = 1.0;
    let mut k = n;
    loop {
        if k & 1 != 0 {
            r = mul(r, square);
        }
        k /= 2;
        if k == 0 {
            break;
        }
        square = mul(square, square);
    }
    if n < 0 {
        div(1.0, r)
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_subnormals_keeping_the_sign() {
        let sub = f64::from_bits(1);
        assert_eq!(flush(sub).to_bits(), 0.0f64.to_bits());
        assert_eq!(flush(-sub).to_bits(), (-0.0f64).to_bits());
        assert_eq!(flush(f64::MIN_POSITIVE), f64::MIN_POSITIVE);
        assert!(flush(f64::NAN).is_nan());
        assert_eq!(mul(sub, 1e300), 0.0);
        assert_eq!(mul(1e-200, -1e-200).to_bits(), (-0.0f64).to_bits());
        assert_eq!(div(1e-300, 1e100), 0.0);
        assert_eq!(powi(1e-160, -2), f64::INFINITY);
        assert_eq!(powi(3.0, 5), 243.0);
    }

    #[test]
    fn exact_min_positive_is_kept() {
        assert_eq!(mul(f64::MIN_POSITIVE, 1.0), f64::MIN_POSITIVE);
        assert_eq!(div(f64::MIN_POSITIVE, -1.0), -f64::MIN_POSITIVE);
        // The hardware's rule near MIN_POSITIVE is checked against the
        // hardware itself in `jit::fpmode`.
    }
}
