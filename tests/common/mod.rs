//! Shared helpers of the integration tests: bitwise comparison, finite
//! differences, a bound for comparing derivatives of two different tapes, a
//! deterministic proptest runner, and a random expression generator ([`Expr`]).
//!
//! Each test crate uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use tapejit::ir::{Inst, Op, Tape};
use tapejit::Real;

/// DESIGN.md's "bitwise": equal bits, or both NaN.
pub fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Asserts [`same`] elementwise, naming `what` and the first differing index.
#[track_caller]
pub fn assert_same(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            same(*g, *w),
            "{what}[{i}]: got {g:?} ({:#018x}), want {w:?} ({:#018x})",
            g.to_bits(),
            w.to_bits()
        );
    }
}

/// An `f64` as any `Real` (`T::from` alone is ambiguous with `NumCast`).
pub fn c<T: Real>(v: f64) -> T {
    <T as From<f64>>::from(v)
}

/// A proptest runner with a fixed seed (reproducible runs) unless
/// `PROPTEST_RNG_SEED` is set, and no failure-persistence files.
/// `PROPTEST_CASES` overrides `cases`.
pub fn runner(cases: u32) -> TestRunner {
    let mut config = Config::with_cases(cases);
    if std::env::var("PROPTEST_CASES").is_ok() {
        config.cases = Config::default().cases;
    }
    config.failure_persistence = None;
    if std::env::var("PROPTEST_RNG_SEED").is_err() {
        config.rng_seed = RngSeed::Fixed(0x7a9e_1e57);
    }
    TestRunner::new(config)
}

/// Dot product.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Euclidean norm.
pub fn norm(a: &[f64]) -> f64 {
    a.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// `x + t v`.
pub fn along(x: &[f64], v: &[f64], t: f64) -> Vec<f64> {
    x.iter().zip(v).map(|(a, b)| a + t * b).collect()
}

/// Central difference of `f` along `v` at `x` with step `h`:
/// `(f(x + h v) - f(x - h v)) / 2h`, componentwise for vector `f`.
pub fn central_diff(
    f: &mut dyn FnMut(&[f64]) -> Option<Vec<f64>>,
    x: &[f64],
    v: &[f64],
    h: f64,
) -> Option<Vec<f64>> {
    let plus = f(&along(x, v, h))?;
    let minus = f(&along(x, v, -h))?;
    Some(
        plus.iter()
            .zip(&minus)
            .map(|(p, m)| (p - m) / (2.0 * h))
            .collect(),
    )
}

/// The outcome of comparing a derivative against finite differences.
#[derive(Debug, Clone, PartialEq)]
pub enum FdCheck {
    /// Compared, within tolerance.
    Agrees,
    /// Not compared: finite differences did not converge (a kink, a jump, a
    /// guard boundary or bad conditioning near the point) or were not finite.
    Skipped,
    /// Compared, outside tolerance: a message with the numbers.
    Disagrees(String),
}

/// Compares directional derivatives `dv` (one per output; derivative times
/// `v`) with central differences of `f` along `v`.
///
/// Two steps `h` and `h/2` are used. Their difference estimates the
/// truncation error; `eps |f| / h` the rounding error. Where the two do not
/// agree to `1e-3` relative (plus rounding), the function is not smooth
/// enough near `x` at this scale and the point is skipped. Otherwise
/// `|dv - FD| <= rel (|dv| + |FD| + scale) + 8 |FD_h - FD_h/2| + rounding`,
/// where `scale` (e.g. `|g| |v|`) keeps a sum of large terms that cancels
/// from being held to a relative bound it cannot meet.
pub fn check_fd(
    f: &mut dyn FnMut(&[f64]) -> Option<Vec<f64>>,
    x: &[f64],
    v: &[f64],
    h: f64,
    dv: &[f64],
    scale: &[f64],
    rel: f64,
) -> FdCheck {
    if !scale.iter().all(|s| s.is_finite()) {
        // An infinite partial on some path (e.g. cbrt at 0 times a zero tangent).
        return FdCheck::Skipped;
    }
    let Some(f0) = f(x) else {
        return FdCheck::Skipped;
    };
    let (Some(d1), Some(d2)) = (central_diff(f, x, v, h), central_diff(f, x, v, h / 2.0)) else {
        return FdCheck::Skipped;
    };
    let magnitude = {
        let mut m = f0.iter().map(|y| y.abs()).collect::<Vec<_>>();
        for y in [along(x, v, h), along(x, v, -h)] {
            if let Some(fy) = f(&y) {
                for (mk, yk) in m.iter_mut().zip(fy) {
                    *mk = mk.max(yk.abs());
                }
            }
        }
        m
    };
    for k in 0..dv.len() {
        let (a, b) = (d1[k], d2[k]);
        if !(a.is_finite() && b.is_finite() && magnitude[k].is_finite()) {
            return FdCheck::Skipped;
        }
        let rounding = 64.0 * f64::EPSILON * (magnitude[k] + 1e-300) / h;
        if (a - b).abs() > 1e-3 * b.abs() + rounding {
            return FdCheck::Skipped;
        }
    }
    for k in 0..dv.len() {
        let (a, b) = (d1[k], d2[k]);
        let rounding = 64.0 * f64::EPSILON * magnitude[k] / h;
        let tol = rel * (dv[k].abs() + b.abs() + scale[k]) + 8.0 * (a - b).abs() + rounding;
        // Written so that a NaN derivative fails too.
        let within = (dv[k] - b).abs() <= tol;
        if !within {
            return FdCheck::Disagrees(format!(
                "output {k}: derivative {:e}, central differences {b:e} (step {:e}) and {a:e} \
                 (step {h:e}); tolerance {tol:e}",
                dv[k],
                h / 2.0
            ));
        }
    }
    FdCheck::Agrees
}

/// A copy of a derived tape whose part that is linear in the inputs
/// `linear` (tangents of a forward tape, output weights of a `Seed::Inputs`
/// reverse tape, or both) sums absolute values: every product `t * p` becomes
/// `|t| |p|`, `t / p` becomes `|t| / |p|`, negations vanish and subtractions
/// become additions. Evaluated with non-negative `linear` inputs (`|v|`, `|w|`),
/// each output of that part is the sum over all chain-rule paths of
/// `|product of partials| |v|`: DESIGN.md's "the same tape evaluated on
/// absolute values", the size of the terms whose rounding two differently
/// ordered evaluations of the same derivative can disagree by.
pub fn abs_linear_tape(tape: &Tape, linear: std::ops::Range<usize>) -> Tape {
    let insts = tape.insts();
    let mut dep = vec![false; insts.len()];
    let mut new: Vec<u32> = Vec::with_capacity(insts.len());
    let mut out = Tape::new(tape.n_inputs(), tape.n_params());
    for (i, inst) in insts.iter().enumerate() {
        let ops = inst.operands();
        dep[i] = match inst.op {
            Op::Input => linear.contains(&(inst.args[0] as usize)),
            Op::Guard => false,
            _ => ops.iter().any(|&v| dep[v as usize]),
        };
        let mapped = |k: usize| new[ops[k] as usize];
        if !dep[i] || inst.op == Op::Input {
            let mut m = *inst;
            for (k, slot) in m.args.iter_mut().take(ops.len()).enumerate() {
                *slot = mapped(k);
            }
            new.push(out.push(m));
            continue;
        }
        // Operand k, made non-negative when it is not a (non-negative) linear value.
        let abs_operand = |k: usize, out: &mut Tape| {
            if dep[ops[k] as usize] {
                mapped(k)
            } else {
                out.push(Inst::unary(Op::Abs, mapped(k)))
            }
        };
        let v = match inst.op {
            Op::Neg => mapped(0),
            Op::Add | Op::Sub | Op::Mul => {
                let a = abs_operand(0, &mut out);
                let b = abs_operand(1, &mut out);
                let op = if inst.op == Op::Mul { Op::Mul } else { Op::Add };
                out.push(Inst::binary(op, a, b))
            }
            Op::Div => {
                assert!(
                    !dep[ops[1] as usize],
                    "a linear value as a divisor: {inst:?}"
                );
                let a = abs_operand(0, &mut out);
                let b = abs_operand(1, &mut out);
                out.push(Inst::binary(Op::Div, a, b))
            }
            Op::Select => {
                assert!(
                    !dep[ops[0] as usize],
                    "a linear value as a condition: {inst:?}"
                );
                let b = abs_operand(1, &mut out);
                let c = abs_operand(2, &mut out);
                out.push(Inst::ternary(Op::Select, mapped(0), b, c))
            }
            op => panic!("unexpected op {op:?} in the linear part of a derived tape"),
        };
        new.push(v);
    }
    for o in tape.output_values().expect("straight-line tape") {
        out.push_output(new[o as usize]);
    }
    out.verify().expect("the absolute-value tape verifies");
    out
}

/// The size of the terms summed by a JVP of `tape` at `x` along `v`:
/// the forward tape on absolute values at `|v|`, one per output.
pub fn jvp_magnitude(tape: &Tape, x: &[f64], p: &[f64], v: &[f64]) -> Vec<f64> {
    let n = tape.n_inputs();
    let abs = abs_linear_tape(&tapejit::ad::forward(tape, 0..n).unwrap(), n..2 * n);
    let inputs: Vec<f64> = x.iter().copied().chain(v.iter().map(|a| a.abs())).collect();
    let out = run(&abs, &inputs, p).expect("guards hold");
    out[tape.n_outputs()..].to_vec()
}

/// The size of the terms summed by the HVP of scalar `tape` at `x` along
/// `v`, first-order adjoint sums included: forward over a reverse tape with
/// its output weight as an input, on absolute values, at `w = 1` and `|v|`.
pub fn hvp_magnitude(tape: &Tape, x: &[f64], p: &[f64], v: &[f64]) -> Vec<f64> {
    use tapejit::ad::{forward, reverse, Seed};
    let n = tape.n_inputs();
    let hvp = forward(&reverse(tape, 0..n, Seed::Inputs).unwrap(), 0..n).unwrap();
    // Inputs: x (n), the output weight (1), tangents of x (n).
    let abs = abs_linear_tape(&hvp, n..2 * n + 1);
    let inputs: Vec<f64> = x
        .iter()
        .copied()
        .chain([1.0])
        .chain(v.iter().map(|a| a.abs()))
        .collect();
    let out = run(&abs, &inputs, p).expect("guards hold");
    // Outputs: value, gradient (n), their tangents.
    out[n + 2..].to_vec()
}

/// Evaluates a tape with the reference interpreter.
pub fn run(tape: &Tape, x: &[f64], p: &[f64]) -> tapejit::Result<Vec<f64>> {
    let mut out = vec![0.0; tape.n_outputs()];
    tapejit::interp::eval(tape, x, p, &mut Vec::new(), &mut out)?;
    Ok(out)
}

// ---------------------------------------------------------------------------
// Random expressions.

/// Number of active inputs of generated expressions.
pub const NX: usize = 3;
/// Number of passive parameters of generated expressions.
pub const NP: usize = 2;

/// One-operand operations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum U {
    Neg,
    Recip,
    Sqrt,
    Cbrt,
    Exp,
    Exp2,
    ExpM1,
    Ln,
    Log2,
    Log10,
    Ln1p,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Asinh,
    Acosh,
    Atanh,
    Abs,
    Signum,
    Floor,
    Ceil,
    Round,
    Trunc,
    Fract,
    ToDegrees,
    ToRadians,
    PowI(i32),
    /// `e + c` with an `f64` on the right (`Add<f64>`).
    AddC(f64),
    /// `e - c`.
    SubC(f64),
    /// `e * c`.
    MulC(f64),
    /// `e / c`.
    DivC(f64),
}

/// Two-operand operations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum B {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    PowF,
    Atan2,
    Hypot,
    Min,
    Max,
    Copysign,
    AbsSub,
    Log,
}

/// Comparisons, for `select` (branch-free) and `if` (guarded).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// A random expression over inputs `x` (length [`NX`]) and parameters `p`
/// (length [`NP`]).
#[derive(Clone, Debug)]
pub enum Expr {
    X(usize),
    P(usize),
    C(f64),
    U(U, Box<Expr>),
    B(B, Box<Expr>, Box<Expr>),
    MulAdd(Box<[Expr; 3]>),
    /// `select(a.cond_*(b), c, d)`: branch-free, never guards.
    Select(Cmp, Box<[Expr; 4]>),
    /// `e.clamp(lo, hi)` with constant bounds `lo <= hi`.
    Clamp(Box<Expr>, f64, f64),
    /// `terms.iter().sum()` (`Sum`, which starts from `-0.0` like `f64`'s).
    Sum(Vec<Expr>),
    /// `if a <cmp> b { c } else { d }`: decided while tracing, guarded.
    If(Cmp, Box<[Expr; 4]>),
    /// `TABLE[e.to_usize() % 4] * f` (or `TABLE[0]` when `to_usize` is
    /// `None`): an integer escaping, guarded.
    Index(Box<[Expr; 2]>),
    /// `if a.is_nan() { b } else if a.is_finite() { c } else { -c }`.
    IfNan(Box<[Expr; 3]>),
}

/// The table [`Expr::Index`] reads.
pub const TABLE: [f64; 4] = [0.5, -1.25, 2.0, 3.5];

fn cmp<T: Real>(op: Cmp, a: T, b: T) -> bool {
    match op {
        Cmp::Lt => a < b,
        Cmp::Le => a <= b,
        Cmp::Gt => a > b,
        Cmp::Ge => a >= b,
        Cmp::Eq => a == b,
        Cmp::Ne => a != b,
    }
}

fn cond<T: Real>(op: Cmp, a: T, b: T) -> T {
    match op {
        Cmp::Lt => a.cond_lt(b),
        Cmp::Le => a.cond_le(b),
        Cmp::Gt => a.cond_gt(b),
        Cmp::Ge => a.cond_ge(b),
        Cmp::Eq => a.cond_eq(b),
        Cmp::Ne => a.cond_ne(b),
    }
}

impl Expr {
    /// Evaluates the expression: natively at `T = f64`, recording at `T = Var`.
    pub fn eval<T: Real>(&self, x: &[T], p: &[T]) -> T {
        match self {
            Expr::X(i) => x[*i],
            Expr::P(i) => p[*i],
            Expr::C(v) => c(*v),
            Expr::U(op, e) => {
                let a = e.eval(x, p);
                match *op {
                    U::Neg => -a,
                    U::Recip => a.recip(),
                    U::Sqrt => a.sqrt(),
                    U::Cbrt => a.cbrt(),
                    U::Exp => a.exp(),
                    U::Exp2 => a.exp2(),
                    U::ExpM1 => a.exp_m1(),
                    U::Ln => a.ln(),
                    U::Log2 => a.log2(),
                    U::Log10 => a.log10(),
                    U::Ln1p => a.ln_1p(),
                    U::Sin => a.sin(),
                    U::Cos => a.cos(),
                    U::Tan => a.tan(),
                    U::Asin => a.asin(),
                    U::Acos => a.acos(),
                    U::Atan => a.atan(),
                    U::Sinh => a.sinh(),
                    U::Cosh => a.cosh(),
                    U::Tanh => a.tanh(),
                    U::Asinh => a.asinh(),
                    U::Acosh => a.acosh(),
                    U::Atanh => a.atanh(),
                    U::Abs => a.abs(),
                    U::Signum => a.signum(),
                    U::Floor => a.floor(),
                    U::Ceil => a.ceil(),
                    U::Round => a.round(),
                    U::Trunc => a.trunc(),
                    U::Fract => a.fract(),
                    U::ToDegrees => a.to_degrees(),
                    U::ToRadians => a.to_radians(),
                    U::PowI(n) => a.powi(n),
                    U::AddC(k) => a + k,
                    U::SubC(k) => a - k,
                    U::MulC(k) => a * k,
                    U::DivC(k) => a / k,
                }
            }
            Expr::B(op, l, r) => {
                let (a, b) = (l.eval(x, p), r.eval(x, p));
                match op {
                    B::Add => a + b,
                    B::Sub => a - b,
                    B::Mul => a * b,
                    B::Div => a / b,
                    B::Rem => a % b,
                    B::PowF => a.powf(b),
                    B::Atan2 => a.atan2(b),
                    B::Hypot => a.hypot(b),
                    B::Min => a.min(b),
                    B::Max => a.max(b),
                    // The sign of a NaN computed by arithmetic is unspecified
                    // (IEEE 754 6.3, Rust RFC 3514; x86 returns the first
                    // operand's NaN, so the optimizer's commuting of `a * b`
                    // may flip it): copysign never reads a NaN's sign here.
                    B::Copysign => T::select(b.cond_ne(b), a, a.copysign(b)),
                    #[allow(deprecated)]
                    B::AbsSub => a.abs_sub(b),
                    B::Log => a.log(b),
                }
            }
            Expr::MulAdd(e) => e[0].eval(x, p).mul_add(e[1].eval(x, p), e[2].eval(x, p)),
            Expr::Select(op, e) => {
                let k = cond(*op, e[0].eval(x, p), e[1].eval(x, p));
                T::select(k, e[2].eval(x, p), e[3].eval(x, p))
            }
            Expr::Clamp(e, lo, hi) => e.eval(x, p).clamp(c(*lo), c(*hi)),
            Expr::Sum(terms) => terms.iter().map(|t| t.eval(x, p)).sum(),
            Expr::If(op, e) => {
                if cmp(*op, e[0].eval(x, p), e[1].eval(x, p)) {
                    e[2].eval(x, p)
                } else {
                    e[3].eval(x, p)
                }
            }
            Expr::Index(e) => {
                let k = e[0].eval(x, p).to_usize().map_or(0, |k| k % TABLE.len());
                e[1].eval(x, p) * TABLE[k]
            }
            Expr::IfNan(e) => {
                let a = e[0].eval(x, p);
                if a.is_nan() {
                    e[1].eval(x, p)
                } else if a.is_finite() {
                    e[2].eval(x, p)
                } else {
                    -e[2].eval(x, p)
                }
            }
        }
    }

    /// Whether an input leaf appears (else every derivative is trivially 0).
    pub fn reads_inputs(&self) -> bool {
        match self {
            Expr::X(_) => true,
            Expr::P(_) | Expr::C(_) => false,
            Expr::U(_, e) | Expr::Clamp(e, ..) => e.reads_inputs(),
            Expr::B(_, a, b) => a.reads_inputs() || b.reads_inputs(),
            Expr::MulAdd(e) => e.iter().any(Expr::reads_inputs),
            Expr::Select(_, e) | Expr::If(_, e) => e.iter().any(Expr::reads_inputs),
            Expr::Index(e) => e.iter().any(Expr::reads_inputs),
            Expr::IfNan(e) => e.iter().any(Expr::reads_inputs),
            Expr::Sum(e) => e.iter().any(Expr::reads_inputs),
        }
    }

    /// Whether the expression contains a guarded construct.
    pub fn has_guards(&self) -> bool {
        match self {
            Expr::X(_) | Expr::P(_) | Expr::C(_) => false,
            Expr::If(..) | Expr::Index(_) | Expr::IfNan(_) => true,
            Expr::U(_, e) | Expr::Clamp(e, ..) => e.has_guards(),
            Expr::B(_, a, b) => a.has_guards() || b.has_guards(),
            Expr::MulAdd(e) => e.iter().any(Expr::has_guards),
            Expr::Select(_, e) => e.iter().any(Expr::has_guards),
            Expr::Sum(e) => e.iter().any(Expr::has_guards),
        }
    }
}

fn boxed<const N: usize>(v: Vec<Expr>) -> Box<[Expr; N]> {
    Box::new(v.try_into().expect("strategy made the right number"))
}

fn un(op: U, e: Expr) -> Expr {
    Expr::U(op, Box::new(e))
}

fn bin(op: B, a: Expr, b: Expr) -> Expr {
    Expr::B(op, Box::new(a), Box::new(b))
}

fn any_cmp() -> impl Strategy<Value = Cmp> {
    prop_oneof![
        Just(Cmp::Lt),
        Just(Cmp::Le),
        Just(Cmp::Gt),
        Just(Cmp::Ge),
        Just(Cmp::Eq),
        Just(Cmp::Ne),
    ]
}

const ALL_UNARY: [U; 32] = [
    U::Neg,
    U::Recip,
    U::Sqrt,
    U::Cbrt,
    U::Exp,
    U::Exp2,
    U::ExpM1,
    U::Ln,
    U::Log2,
    U::Log10,
    U::Ln1p,
    U::Sin,
    U::Cos,
    U::Tan,
    U::Asin,
    U::Acos,
    U::Atan,
    U::Sinh,
    U::Cosh,
    U::Tanh,
    U::Asinh,
    U::Acosh,
    U::Atanh,
    U::Abs,
    U::Signum,
    U::Floor,
    U::Ceil,
    U::Round,
    U::Trunc,
    U::Fract,
    U::ToDegrees,
    U::ToRadians,
];

const ALL_BINARY: [B; 13] = [
    B::Add,
    B::Sub,
    B::Mul,
    B::Div,
    B::Rem,
    B::PowF,
    B::Atan2,
    B::Hypot,
    B::Min,
    B::Max,
    B::Copysign,
    B::AbsSub,
    B::Log,
];

/// Special values that every op must treat exactly like `f64`.
pub const SPECIALS: [f64; 13] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    -2.5,
    f64::NAN,
    -f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    1e300,
    -1e-310,
    f64::MIN_POSITIVE,
];

/// A point coordinate for the bitwise property: mostly ordinary values, some specials.
pub fn any_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => -4.0..4.0f64,
        1 => proptest::sample::select(SPECIALS.to_vec()),
        1 => (-3i32..=3).prop_map(|k| k as f64 * 0.5),
    ]
}

/// Any expression over every op, constants including NaN and infinities:
/// for the bitwise properties.
pub fn any_expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        3 => (0..NX).prop_map(Expr::X),
        1 => (0..NP).prop_map(Expr::P),
        1 => any_value().prop_map(Expr::C),
    ];
    leaf.prop_recursive(8, 128, 2, |inner| {
        let unary = prop_oneof![
            proptest::sample::select(ALL_UNARY.to_vec()),
            (-4i32..=4).prop_map(U::PowI),
            any_value().prop_map(U::AddC),
            any_value().prop_map(U::SubC),
            any_value().prop_map(U::MulC),
            any_value().prop_map(U::DivC),
        ];
        prop_oneof![
            6 => (unary, inner.clone()).prop_map(|(op, e)| un(op, e)),
            6 => (proptest::sample::select(ALL_BINARY.to_vec()), inner.clone(), inner.clone())
                .prop_map(|(op, a, b)| bin(op, a, b)),
            1 => proptest::collection::vec(inner.clone(), 3)
                .prop_map(|v| Expr::MulAdd(boxed(v))),
            2 => (any_cmp(), proptest::collection::vec(inner.clone(), 4))
                .prop_map(|(op, v)| Expr::Select(op, boxed(v))),
            1 => (inner.clone(), -2.0..2.0f64, 0.0..2.0f64)
                .prop_map(|(e, lo, w)| Expr::Clamp(Box::new(e), lo, lo + w)),
            1 => proptest::collection::vec(inner.clone(), 0..4).prop_map(Expr::Sum),
            2 => (any_cmp(), proptest::collection::vec(inner.clone(), 4))
                .prop_map(|(op, v)| Expr::If(op, boxed(v))),
            1 => proptest::collection::vec(inner.clone(), 2).prop_map(|v| Expr::Index(boxed(v))),
            1 => proptest::collection::vec(inner, 3).prop_map(|v| Expr::IfNan(boxed(v))),
        ]
    })
}

/// `hypot(e, 0.75) >= 0.75`: keeps logs, roots and divisors away from their
/// singularities without making the expression less of a composition.
fn positive(e: Expr) -> Expr {
    bin(B::Hypot, e, Expr::C(0.75))
}

/// `k sin(e)`, in `[-k, k]`. A bounded argument keeps functions like exp,
/// tan and tanh out of their saturated ranges, where their derivatives (e.g.
/// tanh' = 1 - tanh^2 with tanh within a few ulps of 1) are inherently only
/// accurate to a few digits and no finite-difference comparison is meaningful.
fn bounded(e: Expr, k: f64) -> Expr {
    un(U::MulC(k), un(U::Sin, e))
}

/// `0.9 sin(e)`, inside (-1, 1).
fn unit(e: Expr) -> Expr {
    bounded(e, 0.9)
}

/// A unary op applied so that the result is finite and (mostly)
/// differentiable for every argument.
fn smooth_unary(op: U, e: Expr) -> Expr {
    match op {
        U::Recip | U::Sqrt | U::Ln | U::Log2 | U::Log10 | U::Ln1p => un(op, positive(e)),
        U::Exp | U::Exp2 | U::ExpM1 | U::Sinh | U::Cosh | U::Tanh => un(op, bounded(e, 2.0)),
        U::Tan => un(op, bounded(e, 1.2)),
        U::Asin | U::Acos | U::Atanh => un(op, unit(e)),
        U::Acosh => un(op, un(U::AddC(1.0), positive(e))),
        U::PowI(n) if n < 0 => un(op, positive(e)),
        U::DivC(0.0) => un(U::DivC(3.0), e),
        _ => un(op, e),
    }
}

/// A binary op applied so that the result is finite for every argument.
fn smooth_binary(op: B, a: Expr, b: Expr) -> Expr {
    match op {
        B::Div | B::Rem => bin(op, a, positive(b)),
        B::PowF => bin(op, positive(a), bounded(b, 2.0)),
        B::Log => bin(op, positive(a), un(U::AddC(1.0), positive(b))),
        _ => bin(op, a, b),
    }
}

/// Finite constants for smooth expressions.
fn smooth_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -2.0..2.0f64,
        1 => proptest::sample::select(vec![0.0, -0.0, 1.0, -1.0, 0.5, 2.0]),
    ]
}

/// Expressions that are finite everywhere and smooth almost everywhere
/// (kinks, jumps and guards still appear: the derivative checks skip the
/// points where finite differences show them): for derivative properties.
pub fn smooth_expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        4 => (0..NX).prop_map(Expr::X),
        1 => (0..NP).prop_map(Expr::P),
        1 => smooth_value().prop_map(Expr::C),
    ];
    leaf.prop_recursive(7, 96, 2, |inner| {
        // Every unary op, split at the kinks (piecewise-constant or
        // non-differentiable somewhere).
        let (kinky_ops, smooth_ops): (Vec<U>, Vec<U>) = ALL_UNARY.iter().partition(|u| {
            matches!(
                u,
                U::Abs | U::Signum | U::Floor | U::Ceil | U::Round | U::Trunc | U::Fract
            )
        });
        let unary = prop_oneof![
            8 => proptest::sample::select(smooth_ops),
            2 => proptest::sample::select(kinky_ops),
            2 => (-3i32..=4).prop_map(U::PowI),
            1 => smooth_value().prop_map(U::AddC),
            1 => smooth_value().prop_map(U::SubC),
            1 => smooth_value().prop_map(U::MulC),
            1 => smooth_value().prop_map(U::DivC),
        ];
        prop_oneof![
            6 => (unary, inner.clone()).prop_map(|(op, e)| smooth_unary(op, e)),
            6 => (proptest::sample::select(ALL_BINARY.to_vec()), inner.clone(), inner.clone())
                .prop_map(|(op, a, b)| smooth_binary(op, a, b)),
            1 => proptest::collection::vec(inner.clone(), 3)
                .prop_map(|v| Expr::MulAdd(boxed(v))),
            1 => (any_cmp(), proptest::collection::vec(inner.clone(), 4))
                .prop_map(|(op, v)| Expr::Select(op, boxed(v))),
            1 => (inner.clone(), -2.0..2.0f64, 0.0..2.0f64)
                .prop_map(|(e, lo, w)| Expr::Clamp(Box::new(e), lo, lo + w)),
            1 => proptest::collection::vec(inner.clone(), 1..4).prop_map(Expr::Sum),
            1 => (any_cmp(), proptest::collection::vec(inner, 4))
                .prop_map(|(op, v)| Expr::If(op, boxed(v))),
        ]
    })
    .prop_filter("depends on an input", Expr::reads_inputs)
}

/// A point for smooth expressions: `NX` inputs and `NP` parameters in `[-2, 2]`.
pub fn smooth_point() -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
    (
        proptest::collection::vec(-2.0..2.0f64, NX),
        proptest::collection::vec(-2.0..2.0f64, NP),
    )
}

/// A direction: `NX` components in `[-1, 1]`, not all tiny.
pub fn direction() -> impl Strategy<Value = Vec<f64>> {
    proptest::collection::vec(-1.0..1.0f64, NX).prop_filter("non-zero direction", |v| {
        v.iter().map(|a| a.abs()).sum::<f64>() > 0.1
    })
}
