//! The differential oracle: checks of every transformation against an
//! independent reference, shared by `tests/differential.rs` (seeded) and the
//! fuzz targets in `fuzz/` (which include this file by path), so that a
//! fuzz finding and its regression test run the very same check.
//!
//! - [`check_jit`] checks that the JIT agrees bitwise with the interpreter
//!   (same error on a failing guard) on a tape and on its derived tapes;
//! - [`check_opt`] that the optimizer, and each pass alone, keep every
//!   output bitwise, guard failures alike, on a tape and its derived tapes;
//! - [`check_text`] that printed tapes parse back equal, and that whatever
//!   parses compiles and runs like the interpreter;
//! - [`check_fd`] derivatives (reverse gradient and VJP, forward JVP, HVP)
//!   against central finite differences on well-conditioned expressions.
//!
//! "Bitwise" follows IEEE 754: equal bits or both NaN, on every output
//! except those that read the sign of a NaN produced by arithmetic (through
//! `copysign` or `signbit`), which IEEE 754 and Rust leave unspecified and
//! both the optimizer and Cranelift change (see [`reference`]). Every check
//! panics with the tape and the point when it fails.

#![allow(dead_code)] // each includer uses its own subset

use tapejit::ir::random::{random_inputs, Choices, SmoothTape};
use tapejit::ir::semantics::same;
use tapejit::ir::{Inst, Op, Output, Tape};
use tapejit::jit::{self, JitFunction, JitOptions};
use tapejit::{ad, interp, opt, Error};

/// What an evaluation gave: every output, or the error.
pub type Outcome = Result<Vec<f64>, Error>;

/// Evaluates compiled code at `(x, p)`. Tests pass [`run_plain`]; the fuzz
/// targets pass one that puts every buffer against guard pages.
pub type Runner = fn(&JitFunction, &[f64], &[f64]) -> Outcome;

/// The interpreter's outcome.
pub fn interpret(tape: &Tape, x: &[f64], p: &[f64]) -> Outcome {
    let mut out = vec![0.0; tape.n_outputs()];
    interp::eval(tape, x, p, &mut Vec::new(), &mut out).map(|()| out)
}

/// Runs compiled code on ordinary vectors.
pub fn run_plain(code: &JitFunction, x: &[f64], p: &[f64]) -> Outcome {
    let mut out = vec![0.0; code.n_outputs()];
    code.run(x, p, &mut out, &mut Vec::new()).map(|()| out)
}

/// How two outcomes must match on a failing guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Errors {
    /// The same error (same guard, same message): two backends, one tape.
    Identical,
    /// Both fail some guard: two equivalent tapes (a pass may drop a guard
    /// that an earlier one implies, so another guard reports the failure).
    BothGuard,
}

/// Panics unless `got` matches `expected`: the same bits on every output
/// (NaN payloads aside), or failures alike.
pub fn assert_same(
    what: &str,
    expected: &Outcome,
    got: &Outcome,
    errors: Errors,
    tape: &Tape,
    point: (&[f64], &[f64]),
) {
    let (x, p) = (show(point.0), show(point.1));
    match (expected, got) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.len(), b.len(), "{what}: output count\n{tape}");
            for (k, (a, b)) in a.iter().zip(b).enumerate() {
                assert!(
                    same(*a, *b),
                    "{what}: output {k} is {b:?}, expected {a:?} (bits {:#x} vs {:#x}) \
                     at x={x} p={p}\n{tape}",
                    b.to_bits(),
                    a.to_bits()
                );
            }
        }
        (Err(a), Err(b)) if errors == Errors::Identical => {
            assert_eq!(a, b, "{what}: different errors at x={x} p={p}\n{tape}")
        }
        (Err(Error::GuardFailed { .. }), Err(Error::GuardFailed { .. })) => {}
        _ => panic!("{what}: expected {expected:?}, got {got:?} at x={x} p={p}\n{tape}"),
    }
}

/// A point for messages: NaNs with their bits (`{:?}` prints every NaN as
/// `NaN`, but the sign of a NaN input can matter).
pub fn show(values: &[f64]) -> String {
    let parts: Vec<String> = values
        .iter()
        .map(|v| {
            if v.is_nan() {
                format!("f64::from_bits({:#x})", v.to_bits())
            } else {
                format!("{v:?}")
            }
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// The interpreter's outcome at a point, with what IEEE 754 specifies of it.
pub struct Reference {
    /// The interpreter's outcome.
    pub outcome: Outcome,
    /// Per output: whether its bits are specified (see [`specified`]).
    specified: Vec<bool>,
    /// Whether every guard evaluated has a specified condition.
    guards_specified: bool,
}

/// Evaluates `tape` with the interpreter and tells which outputs and guard
/// outcomes depend on the sign of a NaN produced by arithmetic, which
/// IEEE 754 leaves unspecified (see [`Known`]).
pub fn reference(tape: &Tape, x: &[f64], p: &[f64]) -> Reference {
    let mut values = Vec::new();
    let mut out = vec![0.0; tape.n_outputs()];
    let outcome = interp::eval(tape, x, p, &mut values, &mut out).map(|()| out);
    let stop = match &outcome {
        Err(Error::GuardFailed { instr, .. }) => *instr as usize + 1,
        Err(_) => 0,
        Ok(_) => tape.len(),
    };
    let known = specified(&tape.insts()[..stop], &values);
    let guards_specified = tape.insts()[..stop]
        .iter()
        .all(|g| g.op != Op::Guard || known[g.args[0] as usize] != Known::No);
    let specified = if outcome.is_ok() {
        tape.outputs()
            .iter()
            .flat_map(|o| match *o {
                Output::Value(v) => vec![known[v as usize] != Known::No],
                // Array elements come out of loops; their NaN signs are compared.
                Output::Slice { len, .. } => vec![true; len as usize],
            })
            .collect()
    } else {
        Vec::new()
    };
    Reference {
        outcome,
        specified,
        guards_specified,
    }
}

/// Panics unless `got` matches the reference on everything IEEE 754
/// specifies: the same bits on every output except those that depend on
/// the sign of an arithmetic NaN, and failures alike unless a guard
/// condition depends on such a sign.
pub fn assert_matches(
    what: &str,
    reference: &Reference,
    got: &Outcome,
    errors: Errors,
    tape: &Tape,
    point: (&[f64], &[f64]),
) {
    if !reference.guards_specified && reference.outcome.is_ok() != got.is_ok() {
        return;
    }
    let errors = if reference.guards_specified {
        errors
    } else {
        Errors::BothGuard
    };
    let mut expected = reference.outcome.clone();
    if let (Ok(e), Ok(g)) = (&mut expected, got) {
        for ((e, g), &known) in e.iter_mut().zip(g).zip(&reference.specified) {
            if !known {
                *e = *g;
            }
        }
    }
    assert_same(what, &expected, got, errors, tape, point);
}

/// The derived tapes of `tape` with respect to all its inputs: gradient of
/// the sum of the outputs, VJP, JVP, Jacobian and HVP.
pub fn derived_tapes(tape: &Tape) -> Vec<(&'static str, Tape)> {
    let n = tape.n_inputs();
    let gradient = ad::reverse(tape, 0..n, ad::Seed::One).unwrap();
    let hvp = ad::forward(&gradient, 0..n).unwrap();
    vec![
        ("vjp", ad::reverse(tape, 0..n, ad::Seed::Inputs).unwrap()),
        ("jvp", ad::forward(tape, 0..n).unwrap()),
        ("jacobian", ad::jacobian_forward(tape, 0..n).unwrap()),
        ("hvp", hvp),
        ("gradient", gradient),
    ]
}

/// The tape with every value an output too, so that a wrong rewrite cannot
/// hide in dead code.
pub fn expose_all(tape: &Tape) -> Tape {
    let mut t = tape.clone();
    for (i, inst) in tape.insts().iter().enumerate() {
        if inst.op != Op::Guard {
            t.push_output(i as u32);
        }
    }
    t
}

/// Compile options drawn from `c`: tiny to whole-tape chunks, either
/// register allocator, inputs and outputs split anywhere or not at all.
pub fn draw_options<C: Choices + ?Sized>(c: &mut C, tape: &Tape) -> JitOptions {
    let chunk_len = match c.below(4) {
        0 => 1 + c.below(4),
        1 => 1 + c.below(64),
        2 => tape.len().max(1),
        _ => JitOptions::default().chunk_len,
    };
    let mut split = |n: usize| (!c.one_in(3)).then(|| c.below(n + 1));
    let input_split = split(tape.n_inputs());
    let output_split = split(tape.n_outputs());
    JitOptions {
        chunk_len,
        single_pass_regalloc: c.one_in(2),
        input_split,
        output_split,
    }
}

/// The JIT agrees with the interpreter on `tape` at `points` random points
/// (drawn by [`random_inputs`]), compiled with options drawn from `c`: the
/// same bits on every output and the same error on a failing guard, except
/// where IEEE 754 leaves the result unspecified (see [`assert_matches`]).
pub fn check_jit_once<C: Choices + ?Sized>(
    c: &mut C,
    what: &str,
    tape: &Tape,
    points: usize,
    run: Runner,
) {
    let options = draw_options(c, tape);
    let code = jit::compile_with(tape, options).unwrap_or_else(|e| {
        panic!("{what}: a verified tape must compile ({options:?}): {e}\n{tape}")
    });
    for _ in 0..points {
        let (x, p) = random_inputs(c, tape);
        let expected = reference(tape, &x, &p);
        let got = run(&code, &x, &p);
        let what = format!("{what} (JIT {options:?} vs interpreter)");
        assert_matches(&what, &expected, &got, Errors::Identical, tape, (&x, &p));
    }
}

/// [`check_jit_once`] on `tape` and, if `derived`, on each of its
/// [`derived_tapes`] (each with its own options).
pub fn check_jit<C: Choices + ?Sized>(
    c: &mut C,
    tape: &Tape,
    points: usize,
    derived: bool,
    run: Runner,
) {
    check_jit_once(c, "primal", tape, points, run);
    if derived {
        for (what, d) in derived_tapes(tape) {
            check_jit_once(c, what, &d, points, run);
        }
    }
}

/// What is known of a value's bits across equivalent evaluations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    /// Fully determined (a NaN's payload aside).
    Yes,
    /// A NaN whose sign is unspecified: IEEE 754 does not interpret the
    /// sign of a NaN produced by arithmetic, and Rust leaves it unspecified.
    /// x86 returns the first NaN operand, so `a * b` and `b * a`, or
    /// `a + -b` and `a - b`, may give NaNs of different signs; the optimizer
    /// makes such rewrites, and so does Cranelift (it commutes `fadd`,
    /// `fmul` and `fma` to merge a load, and folds `fneg` into them).
    NanSign,
    /// Depends on the sign of such a NaN (read by `copysign` or `signbit`).
    No,
}

/// Which values of an evaluation (`values`, the interpreter's workspace)
/// are specified, following IEEE 754's rules on NaN signs: arithmetic NaNs
/// have an unspecified sign, `neg`, `abs` and `copysign` are sign-bit
/// operations, `select`, `min` and `max` pass an operand through.
fn specified(insts: &[Inst], values: &[f64]) -> Vec<Known> {
    let mut known = Vec::with_capacity(insts.len());
    for (i, inst) in insts.iter().enumerate() {
        let arg = |k: usize| known[inst.args[k] as usize];
        let operands: Vec<Known> = inst.operands().iter().map(|&v| known[v as usize]).collect();
        let nan = values[i].is_nan();
        let k = if operands.contains(&Known::No) {
            Known::No
        } else {
            match inst.op {
                Op::Input | Op::Param | Op::Const | Op::Guard => Known::Yes,
                Op::SignBit if arg(0) == Known::NanSign => Known::No,
                Op::Copysign if arg(1) == Known::NanSign => {
                    if nan {
                        Known::NanSign
                    } else {
                        Known::No
                    }
                }
                Op::Copysign | Op::Abs | Op::SignBit => Known::Yes,
                Op::Neg => arg(0),
                Op::Select => {
                    if tapejit::ir::semantics::truthy(values[inst.args[0] as usize]) {
                        arg(1)
                    } else {
                        arg(2)
                    }
                }
                Op::Min | Op::Max if nan && operands.contains(&Known::NanSign) => Known::NanSign,
                Op::Min | Op::Max => Known::Yes,
                // Every other op: a NaN result comes from arithmetic.
                _ if nan => Known::NanSign,
                _ => Known::Yes,
            }
        };
        known.push(k);
    }
    known
}

/// `optimized` gives the same outcome as `tape` at `points` random points:
/// the same bits on every output that IEEE 754 specifies (see [`Known`]),
/// and a guard failure exactly where `tape` fails one, unless a guard
/// condition before it depends on the sign of a NaN.
pub fn check_equivalent<C: Choices + ?Sized>(
    c: &mut C,
    what: &str,
    tape: &Tape,
    optimized: &Tape,
    points: usize,
) {
    optimized
        .verify()
        .unwrap_or_else(|e| panic!("{what}: optimized tape does not verify: {e}\n{optimized}"));
    assert!(
        optimized.n_outputs() == tape.n_outputs() && optimized.n_inputs() == tape.n_inputs(),
        "{what}: the optimizer changed the interface\n{tape}\n{optimized}"
    );
    for _ in 0..points {
        let (x, p) = random_inputs(c, tape);
        let expected = reference(tape, &x, &p);
        let got = interpret(optimized, &x, &p);
        let what = format!("{what} (optimized vs original)\n{optimized}\noriginal:");
        assert_matches(&what, &expected, &got, Errors::BothGuard, tape, (&x, &p));
    }
}

/// The optimizer is exact on `tape` (every value exposed as an output half
/// of the time) and, if `derived`, on its derived tapes; each pass alone is
/// exact too.
pub fn check_opt<C: Choices + ?Sized>(c: &mut C, tape: &Tape, points: usize, derived: bool) {
    let primal = if c.one_in(2) {
        expose_all(tape)
    } else {
        tape.clone()
    };
    check_equivalent(
        c,
        "primal",
        &primal,
        &opt::optimize(&primal).unwrap(),
        points,
    );
    for name in opt::pass_names() {
        let pass = opt::run_pass(name, &primal).expect("generated tapes verify");
        check_equivalent(c, name, &primal, &pass, points);
    }
    if derived {
        for (what, d) in derived_tapes(tape) {
            check_equivalent(c, what, &d, &opt::optimize(&d).unwrap(), points);
        }
    }
}

/// The text form of `tape` parses back to an equal tape.
pub fn check_round_trip(tape: &Tape) {
    let text = tape.to_string();
    let back: Tape = text
        .parse()
        .unwrap_or_else(|e| panic!("printed tape does not parse: {e}\n{text}"));
    assert!(
        back == *tape,
        "round trip changed the tape\n{text}\nbecame\n{back}"
    );
}

/// Most inputs plus parameters a parsed tape may read for [`check_text`]
/// to evaluate it (the text `inputs=4000000000` is a valid header).
pub const MAX_PARSED_INPUTS: usize = 1 << 16;

/// Whatever `text` is: parsing does not panic; if it parses, the tape
/// prints and parses back equal, compiles, and the compiled code agrees
/// with the interpreter at a few points (drawn from `c`).
pub fn check_text<C: Choices + ?Sized>(c: &mut C, text: &str, run: Runner) {
    let Ok(tape) = text.parse::<Tape>() else {
        return;
    };
    check_round_trip(&tape);
    if tape.n_inputs() + tape.n_params() > MAX_PARSED_INPUTS {
        jit::compile(&tape).expect("a parsed tape compiles");
        return;
    }
    check_jit_once(c, "parsed", &tape, 3, run);
}

/// How many finite-difference comparisons [`check_fd`] made, and how many
/// it skipped because the differences had not converged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdStats {
    /// Derivatives compared with finite differences.
    pub checked: usize,
    /// Derivatives skipped: the differences at two step sizes disagreed.
    pub skipped: usize,
}

impl std::ops::AddAssign for FdStats {
    fn add_assign(&mut self, o: FdStats) {
        self.checked += o.checked;
        self.skipped += o.skipped;
    }
}

/// Unit roundoff of `f64`.
const U: f64 = f64::EPSILON / 2.0;

/// The two step sizes of the central differences: powers of two, so that
/// with inputs on a 2^-20 grid and directions on a 2^-10 grid every stencil
/// point `x ± h v` is exact.
const H1: f64 = 1.0 / 4096.0;
const H2: f64 = H1 / 2.0;

/// A function of the step `t` along a direction: its value and the
/// magnitude `A` of its evaluation (the sum of the absolute values of every
/// instruction), or `None` if it cannot be evaluated there.
type Probe<'a> = dyn Fn(f64) -> Option<(f64, f64)> + 'a;

/// Compares a derivative `ad` of `phi` at `t = 0` with central differences.
///
/// The rule (documented in `fuzz/fuzz_targets/grad_vs_fd.rs` too):
/// - `D(h) = (phi(h) - phi(-h)) / 2h` at `h1 = 2^-12` and `h2 = 2^-13`;
///   `D(h) = phi' + c h^2 + O(h^4)`, so `T = |D(h1) - D(h2)|` measures the
///   truncation error and the Richardson value `R = (4 D(h2) - D(h1)) / 3`
///   is accurate to `O(h^4)`, well below `T` for a smooth `phi`.
/// - Rounding: an evaluation of `phi` is off by about `u` times the sum `A`
///   of the magnitudes of its intermediate values (each rounding, carried to
///   the result with a sensitivity of order one: the expressions are built
///   with bounded values and local derivatives), so `D(h2)` is off by about
///   `E = u A / h2`.
/// - Skip when `T > 1e-4 (1 + |R|)`: at this scale the differences have
///   not converged (the expression curves too fast, which bounded local
///   derivatives still allow after many compositions), so they decide
///   nothing.
/// - Otherwise require `|ad - R| <= 4 T + 64 E + 8 u scale`, where `scale`
///   bounds the roundings of the AD side's own final sum (`sum |g_j v_j|`).
///
/// Returns whether the comparison was made (`false`: skipped).
pub fn fd_agrees(what: &str, context: &str, ad: f64, scale: f64, phi: &Probe<'_>) -> bool {
    let diff = |h: f64| -> Option<(f64, f64)> {
        let (plus, a_plus) = phi(h)?;
        let (minus, a_minus) = phi(-h)?;
        let d = (plus - minus) / (2.0 * h);
        d.is_finite().then_some((d, a_plus.max(a_minus)))
    };
    let (Some((d1, a1)), Some((d2, a2))) = (diff(H1), diff(H2)) else {
        return false;
    };
    let t = (d1 - d2).abs();
    let r = (4.0 * d2 - d1) / 3.0;
    if t > 1e-4 * (1.0 + r.abs()) {
        return false;
    }
    let e = U * a1.max(a2) / H2;
    let tolerance = 4.0 * t + 64.0 * e + 8.0 * U * scale;
    assert!(
        (ad - r).abs() <= tolerance,
        "{what}: AD gives {ad:e}, finite differences {r:e} (D(h1) = {d1:e}, D(h2) = {d2:e}, \
         tolerance {tolerance:e}) {context}"
    );
    true
}

/// A point on the 2^-20 grid inside `[-0.75, 0.75]^n` and a direction on
/// the 2^-10 grid in `[-1, 1]^n`: `x ± h v` stays in the box and is exact.
pub fn fd_point<C: Choices + ?Sized>(c: &mut C, n: usize) -> (Vec<f64>, Vec<f64>) {
    let grid = |v: f64, bits: i32| (v * 2f64.powi(bits)).round() / 2f64.powi(bits);
    let x = (0..n).map(|_| grid(c.uniform(-0.75, 0.75), 20)).collect();
    let v = (0..n).map(|_| grid(c.uniform(-1.0, 1.0), 10)).collect();
    (x, v)
}

/// Derivatives of a smooth expression against finite differences at one
/// point (see [`fd_agrees`] for the tolerance): each JVP component of the
/// forward tape, the reverse gradient (of the sum of the outputs) and the
/// VJP (random weights) along the direction, and each HVP component
/// against differences of the gradient. With `optimize`, the derived tapes
/// are optimized first, as `Function` does.
pub fn check_fd<C: Choices + ?Sized>(c: &mut C, s: &SmoothTape, optimize: bool) -> FdStats {
    let tape = &s.tape;
    let p = &s.params[..];
    let (n, m) = (tape.n_inputs(), tape.n_outputs());
    let prepare = |t: Tape| {
        if optimize {
            opt::optimize(&t).unwrap()
        } else {
            t
        }
    };
    let gradient_tape = ad::reverse(tape, 0..n, ad::Seed::One).unwrap();
    let hvp = prepare(ad::forward(&gradient_tape, 0..n).unwrap());
    let gradient_tape = prepare(gradient_tape);
    let vjp = prepare(ad::reverse(tape, 0..n, ad::Seed::Inputs).unwrap());
    let jvp = prepare(ad::forward(tape, 0..n).unwrap());

    let (x, v) = fd_point(c, n);
    let w: Vec<f64> = (0..m).map(|_| c.uniform(-1.0, 1.0)).collect();
    let context = format!("at x={x:?} v={v:?} w={w:?} p={p:?} (optimized: {optimize})\n{tape}");
    let eval = |t: &Tape, inputs: &[f64]| {
        interpret(t, inputs, p).unwrap_or_else(|e| panic!("{e} on the smooth box {context}"))
    };
    let cat = |a: &[f64], b: &[f64]| [a, b].concat();
    let tangent = eval(&jvp, &cat(&x, &v));
    let gradient = eval(&gradient_tape, &x);
    let weighted = eval(&vjp, &cat(&x, &w));
    let second = eval(&hvp, &cat(&x, &v));
    let dot = |a: &[f64]| a.iter().zip(&v).map(|(a, b)| a * b).sum::<f64>();
    let dot_scale = |a: &[f64]| a.iter().zip(&v).map(|(a, b)| (a * b).abs()).sum::<f64>();

    // The outputs of `t` at x + step v, and the magnitude of that evaluation.
    let at = |t: &Tape, step: f64| -> Option<(Vec<f64>, f64)> {
        let point: Vec<f64> = x.iter().zip(&v).map(|(x, v)| x + step * v).collect();
        let mut values = Vec::new();
        let mut out = vec![0.0; t.n_outputs()];
        interp::eval(t, &point, p, &mut values, &mut out).ok()?;
        let magnitude: f64 = values[..t.len()].iter().map(|v| v.abs()).sum();
        Some((out, magnitude))
    };
    let mut stats = FdStats::default();
    let mut count = |made: bool| {
        if made {
            stats.checked += 1
        } else {
            stats.skipped += 1
        }
    };
    for k in 0..m {
        let phi = |h| at(tape, h).map(|(out, a)| (out[k], a));
        let what = format!("JVP component {k}");
        count(fd_agrees(&what, &context, tangent[m + k], 0.0, &phi));
    }
    let phi = |h| at(tape, h).map(|(out, a)| (out.iter().sum(), a));
    let (g, scale) = (dot(&gradient[m..]), dot_scale(&gradient[m..]));
    count(fd_agrees("gradient . v", &context, g, scale, &phi));
    let phi = |h| at(tape, h).map(|(out, a)| (out.iter().zip(&w).map(|(f, w)| f * w).sum(), a));
    let (g, scale) = (dot(&weighted[m..]), dot_scale(&weighted[m..]));
    count(fd_agrees("VJP . v", &context, g, scale, &phi));
    for j in 0..n {
        let phi = |h| at(&gradient_tape, h).map(|(out, a)| (out[m + j], a));
        let what = format!("HVP component {j}");
        count(fd_agrees(&what, &context, second[2 * m + n + j], 0.0, &phi));
    }
    stats
}

// Loops and arrays. The checks above follow the NaN-sign rules through the
// root tape only: a loop's results come out of its body, and array elements
// out of its writes. `loop_reference` follows them through bodies, carried
// values, reads, writes and `elem`/`store` with a second evaluator (which
// must also agree with the interpreter bit for bit: an independent check of
// the interpreter's loop semantics).

/// A value of the shadow evaluation and what IEEE 754 specifies of it.
type Shadow = (f64, Known);

/// What every level of the shadow evaluation shares.
struct ShadowEnv<'a> {
    x: &'a [f64],
    p: &'a [f64],
    arrays: Vec<Vec<Shadow>>,
    index: Vec<u32>,
    guards_specified: bool,
}

impl ShadowEnv<'_> {
    fn read(&self, a: &tapejit::ir::Access) -> Shadow {
        let k = a.element(&self.index) as usize;
        match a.buffer {
            tapejit::ir::Buffer::Input => (self.x[k], Known::Yes),
            tapejit::ir::Buffer::Param => (self.p[k], Known::Yes),
            tapejit::ir::Buffer::Array(id) => self.arrays[id as usize][k],
        }
    }
}

/// What is specified of the result of `inst` (not a leaf, loop or array op)
/// with operands `operands` and value `value`: [`specified`]'s rules.
fn known_of(inst: &Inst, operands: &[Shadow], value: f64) -> Known {
    let known: Vec<Known> = operands.iter().map(|o| o.1).collect();
    let nan = value.is_nan();
    if known.contains(&Known::No) {
        return Known::No;
    }
    match inst.op {
        Op::SignBit if known[0] == Known::NanSign => Known::No,
        Op::Copysign if known[1] == Known::NanSign => {
            if nan {
                Known::NanSign
            } else {
                Known::No
            }
        }
        Op::Copysign | Op::Abs | Op::SignBit => Known::Yes,
        Op::Neg => known[0],
        Op::Select => {
            if tapejit::ir::semantics::truthy(operands[0].0) {
                known[1]
            } else {
                known[2]
            }
        }
        Op::Min | Op::Max if nan && known.contains(&Known::NanSign) => Known::NanSign,
        Op::Min | Op::Max => Known::Yes,
        _ if nan => Known::NanSign,
        _ => Known::Yes,
    }
}

/// Evaluates `tape` whose inputs are `inputs`: every instruction's value,
/// or `None` once a guard fails.
fn shadow_run(tape: &Tape, inputs: &[Shadow], env: &mut ShadowEnv<'_>) -> Option<Vec<Shadow>> {
    use tapejit::ir::semantics;
    let mut vals: Vec<Shadow> = Vec::with_capacity(tape.len());
    let mut results: Vec<Vec<Shadow>> = Vec::new();
    for inst in tape.insts() {
        let [a, b, c] = inst.args.map(|x| x as usize);
        let r = match inst.op {
            Op::Input => inputs[a],
            Op::Param => (env.p[a], Known::Yes),
            Op::Const => (inst.const_value(), Known::Yes),
            Op::Guard => {
                let (cond, known) = vals[a];
                env.guards_specified &= known != Known::No;
                if semantics::truthy(cond) != inst.guard_expect() {
                    return None;
                }
                (0.0, Known::Yes)
            }
            Op::Elem => env.arrays[a][b],
            Op::Store => {
                env.arrays[a][b] = vals[c];
                (0.0, Known::Yes)
            }
            Op::LoopOut => results[vals[a].0 as usize][b],
            Op::Loop => {
                let lp = tape.loop_of(inst);
                let carried = lp.n_carried();
                let mut slots: Vec<Shadow> = lp
                    .init
                    .iter()
                    .chain(&lp.invariants)
                    .map(|&v| vals[v as usize])
                    .collect();
                let first_read = slots.len();
                slots.resize(first_read + lp.reads.len(), (0.0, Known::Yes));
                env.index.push(0);
                for k in 0..lp.trips {
                    *env.index.last_mut().unwrap() = k;
                    for (j, r) in lp.reads.iter().enumerate() {
                        slots[first_read + j] = env.read(r);
                    }
                    let body = shadow_run(&lp.body, &slots, env)?;
                    let out: Vec<Shadow> = lp
                        .body
                        .outputs()
                        .iter()
                        .map(|o| body[o.value().expect("bodies output values") as usize])
                        .collect();
                    slots[..carried].copy_from_slice(&out[..carried]);
                    for (w, &(x, known)) in lp.writes.iter().zip(&out[carried..]) {
                        let tapejit::ir::Buffer::Array(id) = w.access.buffer else {
                            unreachable!("verified: loops write arrays")
                        };
                        let at = w.access.element(&env.index) as usize;
                        let cell = &mut env.arrays[id as usize][at];
                        *cell = match w.mode {
                            tapejit::ir::WriteMode::Store => (x, known),
                            tapejit::ir::WriteMode::Add => {
                                let sum = cell.0 + x;
                                let k = if cell.1 == Known::No || known == Known::No {
                                    Known::No
                                } else if sum.is_nan() {
                                    Known::NanSign
                                } else {
                                    Known::Yes
                                };
                                (sum, k)
                            }
                        };
                    }
                }
                env.index.pop();
                results.push(slots[..carried].to_vec());
                // The loop's slot: its number among this tape's loops.
                ((results.len() - 1) as f64, Known::Yes)
            }
            op => {
                let operands: Vec<Shadow> =
                    inst.operands().iter().map(|&v| vals[v as usize]).collect();
                let value = match (op, operands.len()) {
                    (Op::PowI, _) => semantics::powi(operands[0].0, inst.powi_exponent()),
                    (_, 1) => semantics::unary(op, operands[0].0),
                    (_, 2) => semantics::binary(op, operands[0].0, operands[1].0),
                    _ => semantics::ternary(op, operands[0].0, operands[1].0, operands[2].0),
                };
                (value, known_of(inst, &operands, value))
            }
        };
        vals.push(r);
    }
    Some(vals)
}

/// [`reference`] for tapes with loops and arrays: the interpreter's
/// outcome, with the NaN-sign rules followed through loop bodies, carried
/// values and arrays. Panics if the shadow evaluation that tracks them
/// disagrees with the interpreter on any output or on failing.
pub fn loop_reference(tape: &Tape, x: &[f64], p: &[f64]) -> Reference {
    let outcome = interpret(tape, x, p);
    let mut env = ShadowEnv {
        x,
        p,
        arrays: tape
            .arrays()
            .iter()
            .map(|&len| vec![(-0.0, Known::Yes); len as usize])
            .collect(),
        index: Vec::new(),
        guards_specified: true,
    };
    let inputs: Vec<Shadow> = x.iter().map(|&v| (v, Known::Yes)).collect();
    let shadow = shadow_run(tape, &inputs, &mut env).map(|vals| {
        let mut out = Vec::new();
        for o in tape.outputs() {
            match *o {
                Output::Value(v) => out.push(vals[v as usize]),
                Output::Slice { array, start, len } => out.extend_from_slice(
                    &env.arrays[array as usize][start as usize..(start + len) as usize],
                ),
            }
        }
        out
    });
    let (x, p) = (show(x), show(p));
    let specified =
        match (&outcome, &shadow) {
            (Ok(values), Some(shadow)) => {
                for (k, (v, s)) in values.iter().zip(shadow).enumerate() {
                    assert!(
                        same(*v, s.0),
                        "the interpreter gives {v:?} for output {k}, the shadow evaluation {:?} \
                     at x={x} p={p}\n{tape}",
                        s.0
                    );
                }
                shadow.iter().map(|s| s.1 != Known::No).collect()
            }
            (Err(Error::GuardFailed { .. }), None) => Vec::new(),
            _ => panic!(
            "the interpreter gives {outcome:?}, the shadow evaluation {} at x={x} p={p}\n{tape}",
            if shadow.is_some() { "values" } else { "a failing guard" }
        ),
        };
    Reference {
        outcome,
        specified,
        guards_specified: env.guards_specified,
    }
}

/// The tape with every root value an output too, and (if `arrays`) every
/// array whole, so that a wrong rewrite cannot hide in dead code. Loops and
/// stores have no value; a loop's results are its `loopout`s and arrays.
pub fn expose_values(tape: &Tape, arrays: bool) -> Tape {
    let mut t = tape.clone();
    for (i, inst) in tape.insts().iter().enumerate() {
        if !inst.op.has_no_value() {
            t.push_output(i as u32);
        }
    }
    if arrays {
        for (k, &len) in tape.arrays().iter().enumerate() {
            t.push_output_entry(Output::Slice {
                array: k as u32,
                start: 0,
                len,
            });
        }
    }
    t
}

/// The optimizer, and each of its passes alone, keep `tape` (a tape with
/// loops and arrays, every value and array exposed half of the time) exact
/// at `points` random points, by the rules of [`loop_reference`]: every
/// specified output bit for bit, failing guards alike.
pub fn check_opt_loops<C: Choices + ?Sized>(c: &mut C, tape: &Tape, points: usize) {
    let mut all = vec!["optimize"];
    all.extend(opt::pass_names());
    check_opt_loops_with(c, tape, points, &all);
}

/// [`check_opt_loops`] for some of the passes only (`"optimize"` names the
/// whole pipeline).
pub fn check_opt_loops_with<C: Choices + ?Sized>(
    c: &mut C,
    tape: &Tape,
    points: usize,
    passes: &[&str],
) {
    let primal = if c.one_in(2) {
        expose_values(tape, c.one_in(2))
    } else {
        tape.clone()
    };
    let variants: Vec<(&str, Tape)> = passes
        .iter()
        .map(|&name| {
            let t = match name {
                "optimize" => opt::optimize(&primal),
                _ => opt::run_pass(name, &primal),
            };
            (name, t.unwrap())
        })
        .collect();
    for (what, t) in &variants {
        t.verify().unwrap_or_else(|e| {
            panic!("{what}: the result does not verify: {e}\n{t}\noriginal:\n{primal}")
        });
        assert!(
            t.n_outputs() == primal.n_outputs() && t.n_inputs() == primal.n_inputs(),
            "{what} changed the interface\n{primal}\n{t}"
        );
    }
    for _ in 0..points {
        let (x, p) = random_inputs(c, &primal);
        let expected = loop_reference(&primal, &x, &p);
        for (what, t) in &variants {
            let got = interpret(t, &x, &p);
            let what = format!("{what} (optimized vs original)\n{t}\noriginal:");
            assert_matches(&what, &expected, &got, Errors::BothGuard, &primal, (&x, &p));
        }
    }
}
