//! tapejit's JIT gradient side by side with Rust peers, on the same suite
//! functions (the same generic source) and the same inputs and data:
//!
//! - `tapejit_jit`: one compiled fused gradient (a VJP for broyden).
//! - `echidna_bytecode`: echidna 0.15's bytecode tape (`bytecode` feature
//!   only), recorded once and optimized with its own `optimize()` (CSE +
//!   DCE), then `gradient_with_buf` (`vjp_multi` for broyden) per call.
//!   Passive data are recorded as constants (echidna has no parameters).
//! - `num_dual_forward`: forward mode with num-dual's `Dual64` through
//!   `tapejit::cli::Fwd`: one sweep per input.
//!
//! Each peer's gradient is checked against tapejit's before timing.
//! `cargo bench --bench peers`; README "Peers" gives the ratios.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use echidna::{BReverse, BytecodeTape};
use num_traits::{Float, FromPrimitive, Num, NumCast, One, ToPrimitive, Zero};
use std::cmp::Ordering;
use std::hint::black_box;
use std::iter::{Product, Sum};
use std::num::FpCategory;
use std::ops::{
    Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Rem, RemAssign, Sub, SubAssign,
};
use tapejit::cli::Fwd;
use tapejit::suite::Case;
use tapejit::{Engine, Real};

type B = BReverse<f64>;

/// echidna's bytecode-tape scalar as a [`Real`]: every method forwards to
/// echidna's own `num_traits::Float` implementation (the orphan rule needs
/// the newtype; it is `Copy` and `#[inline]`, so it costs nothing).
#[derive(Clone, Copy, Debug)]
struct E(B);

impl PartialEq for E {
    #[inline]
    fn eq(&self, o: &E) -> bool {
        self.0 == o.0
    }
}
impl PartialOrd for E {
    #[inline]
    fn partial_cmp(&self, o: &E) -> Option<Ordering> {
        self.0.partial_cmp(&o.0)
    }
}
impl From<f64> for E {
    #[inline]
    fn from(v: f64) -> E {
        E(B::constant(v))
    }
}

macro_rules! binop {
    ($tr:ident, $f:ident, $atr:ident, $af:ident, $op:tt) => {
        impl $tr for E {
            type Output = E;
            #[inline]
            fn $f(self, o: E) -> E {
                E(self.0 $op o.0)
            }
        }
        impl $tr<f64> for E {
            type Output = E;
            #[inline]
            fn $f(self, o: f64) -> E {
                E(self.0 $op o)
            }
        }
        impl $atr for E {
            #[inline]
            fn $af(&mut self, o: E) {
                *self = *self $op o;
            }
        }
    };
}
binop!(Add, add, AddAssign, add_assign, +);
binop!(Sub, sub, SubAssign, sub_assign, -);
binop!(Mul, mul, MulAssign, mul_assign, *);
binop!(Div, div, DivAssign, div_assign, /);
binop!(Rem, rem, RemAssign, rem_assign, %);

impl Neg for E {
    type Output = E;
    #[inline]
    fn neg(self) -> E {
        E(-self.0)
    }
}
impl Sum for E {
    fn sum<I: Iterator<Item = E>>(iter: I) -> E {
        iter.fold(E::zero(), |a, b| a + b)
    }
}
impl Product for E {
    fn product<I: Iterator<Item = E>>(iter: I) -> E {
        iter.fold(E::one(), |a, b| a * b)
    }
}
impl Zero for E {
    fn zero() -> E {
        E(B::zero())
    }
    fn is_zero(&self) -> bool {
        self.0.is_zero()
    }
}
impl One for E {
    fn one() -> E {
        E(B::one())
    }
}
impl Num for E {
    type FromStrRadixErr = <B as Num>::FromStrRadixErr;
    fn from_str_radix(s: &str, radix: u32) -> Result<E, Self::FromStrRadixErr> {
        B::from_str_radix(s, radix).map(E)
    }
}
impl ToPrimitive for E {
    fn to_i64(&self) -> Option<i64> {
        self.0.to_i64()
    }
    fn to_u64(&self) -> Option<u64> {
        self.0.to_u64()
    }
    fn to_f64(&self) -> Option<f64> {
        self.0.to_f64()
    }
}
impl NumCast for E {
    fn from<N: ToPrimitive>(n: N) -> Option<E> {
        <B as NumCast>::from(n).map(E)
    }
}
impl FromPrimitive for E {
    fn from_i64(n: i64) -> Option<E> {
        B::from_i64(n).map(E)
    }
    fn from_u64(n: u64) -> Option<E> {
        B::from_u64(n).map(E)
    }
    fn from_f64(n: f64) -> Option<E> {
        B::from_f64(n).map(E)
    }
}

macro_rules! forward {
    (unary: $($f:ident),*) => {$(
        #[inline]
        fn $f(self) -> E { E(Float::$f(self.0)) }
    )*};
    (binary: $($f:ident),*) => {$(
        #[inline]
        fn $f(self, o: E) -> E { E(Float::$f(self.0, o.0)) }
    )*};
    (constant: $($f:ident),*) => {$(
        #[inline]
        fn $f() -> E { E(<B as Float>::$f()) }
    )*};
    (predicate: $($f:ident),*) => {$(
        #[inline]
        fn $f(self) -> bool { Float::$f(self.0) }
    )*};
}

impl Float for E {
    forward!(constant: nan, infinity, neg_infinity, neg_zero, min_value, min_positive_value,
        max_value, epsilon);
    forward!(predicate: is_nan, is_infinite, is_finite, is_normal, is_sign_positive,
        is_sign_negative);
    forward!(unary: floor, ceil, round, trunc, fract, abs, signum, recip, sqrt, exp, exp2, ln,
        log2, log10, cbrt, sin, cos, tan, asin, acos, atan, exp_m1, ln_1p, sinh, cosh, tanh,
        asinh, acosh, atanh, to_degrees, to_radians);
    forward!(binary: powf, log, max, min, hypot, atan2);
    #[allow(deprecated)]
    fn abs_sub(self, o: E) -> E {
        E(Float::abs_sub(self.0, o.0))
    }
    fn classify(self) -> FpCategory {
        Float::classify(self.0)
    }
    fn integer_decode(self) -> (u64, i16, i8) {
        Float::integer_decode(self.0)
    }
    #[inline]
    fn mul_add(self, a: E, b: E) -> E {
        E(Float::mul_add(self.0, a.0, b.0))
    }
    #[inline]
    fn powi(self, n: i32) -> E {
        E(Float::powi(self.0, n))
    }
    #[inline]
    fn sin_cos(self) -> (E, E) {
        let (s, c) = Float::sin_cos(self.0);
        (E(s), E(c))
    }
}

fn flag(b: bool) -> E {
    E(B::constant(if b { 1.0 } else { 0.0 }))
}

/// Conditions are decided at recording time (echidna's tape has no select):
/// the suite functions use none of these.
impl Real for E {
    fn cond_lt(self, o: E) -> E {
        flag(self < o)
    }
    fn cond_le(self, o: E) -> E {
        flag(self <= o)
    }
    fn cond_eq(self, o: E) -> E {
        flag(self == o)
    }
    fn cond_ne(self, o: E) -> E {
        flag(self != o)
    }
    fn select(c: E, a: E, b: E) -> E {
        if c.0.to_f64() != Some(0.0) {
            a
        } else {
            b
        }
    }
}

/// Records a case on echidna's bytecode tape at its default input.
fn echidna_tape(case: &Case) -> BytecodeTape<f64> {
    let p: Vec<E> = case
        .params()
        .into_iter()
        .map(|v| E(B::constant(v)))
        .collect();
    let m = case.n_outputs();
    let eval = |x: &[B]| -> Vec<B> {
        let xe: Vec<E> = x.iter().map(|&v| E(v)).collect();
        let mut out = vec![E::zero(); m];
        case.eval(&xe, &p, &mut out);
        out.into_iter().map(|e| e.0).collect()
    };
    let mut tape = if m == 1 {
        echidna::record(|x| eval(x)[0], &case.default_input()).0
    } else {
        echidna::record_multi(eval, &case.default_input()).0
    };
    tape.optimize();
    tape
}

fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    let scale = want.iter().fold(1e-300f64, |m, v| m.max(v.abs()));
    for (a, b) in got.iter().zip(want) {
        assert!((a - b).abs() <= 1e-9 * scale, "{what}: {a} vs {b}");
    }
}

fn peers(c: &mut Criterion) {
    for case in Case::quick() {
        let mut group = c.benchmark_group(format!("peers/{case}"));
        let x = case.default_input();
        let p = case.params();
        let w = case.vjp_weights();
        let (n, m) = (case.n_inputs(), case.n_outputs());

        // tapejit: trace once, compile the gradient (or VJP) once.
        let f = case.function().expect("suite cases trace");
        let jit = f.with_params(&p).unwrap().engine(Engine::Jit);
        let mut g = vec![0.0; n];
        let grad = |g: &mut [f64]| {
            if m == 1 {
                jit.gradient(black_box(&x), g).map(drop)
            } else {
                jit.vjp(black_box(&x), &w, g)
            }
        };
        grad(&mut g).unwrap();
        let want = g.clone();
        group.bench_function(BenchmarkId::new("tapejit_jit", ""), |b| {
            b.iter(|| grad(&mut g).unwrap())
        });

        // echidna: record once, gradient many times.
        let mut tape = echidna_tape(&case);
        let mut buf = Vec::new();
        let mut echidna_grad = |tape: &mut BytecodeTape<f64>| {
            if m == 1 {
                tape.gradient_with_buf(black_box(&x), &mut buf)
            } else {
                tape.vjp_multi(black_box(&x), &w)
            }
        };
        assert_close(&format!("echidna {case}"), &echidna_grad(&mut tape), &want);
        group.bench_function(BenchmarkId::new("echidna_bytecode", ""), |b| {
            b.iter(|| black_box(echidna_grad(&mut tape)))
        });

        // num-dual: one forward sweep per input.
        let pd: Vec<Fwd> = p.iter().map(|&v| Fwd::constant(v)).collect();
        let wd: Vec<f64> = w.clone();
        let mut xd: Vec<Fwd> = x.iter().map(|&v| Fwd::constant(v)).collect();
        let mut out = vec![Fwd::zero(); m];
        let mut scratch = vec![Fwd::zero(); case.scratch_len()];
        let mut g_dual = vec![0.0; n];
        let mut dual_grad = |g: &mut [f64]| {
            for j in 0..n {
                xd[j].0.eps = 1.0;
                case.eval_with_scratch(black_box(&xd), &pd, &mut out, &mut scratch);
                xd[j].0.eps = 0.0;
                g[j] = out.iter().zip(&wd).map(|(o, w)| o.derivative() * w).sum();
            }
        };
        dual_grad(&mut g_dual);
        assert_close(&format!("num-dual {case}"), &g_dual, &want);
        group.bench_function(BenchmarkId::new("num_dual_forward", ""), |b| {
            b.iter(|| dual_grad(&mut g_dual))
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = peers
}
criterion_main!(benches);
