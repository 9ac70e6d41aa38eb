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
//!   against central finite differences on well-conditioned expressions;
//! - [`check_checkpoints`] that checkpointed gradients equal the stored-state
//!   ones under the interpreter.
//!
//! Every check takes straight-line tapes and tapes with loops and arrays
//! alike: the reference is [`reference_of`] (the interpreter, with the
//! NaN-sign rules followed through loop bodies for a structured tape), and
//! [`repeated_tape`] builds straight-line tapes that repeat, for rerolling.
//!
//! "Bitwise" follows IEEE 754: equal bits or both NaN, on every output
//! except those that read the sign of a NaN produced by arithmetic (through
//! `copysign` or `signbit`), which IEEE 754 and Rust leave unspecified and
//! both the optimizer and Cranelift change (see [`reference`]). Every check
//! panics with the tape and the point when it fails.

#![allow(dead_code)] // each includer uses its own subset

pub mod chain;

use tapejit::ir::flush;
use tapejit::ir::random::{random_inputs, Choices, SmoothTape};
use tapejit::ir::semantics::same;
use tapejit::ir::{Inst, Op, Output, Tape};
use tapejit::jit::{self, JitFunction, JitOptions};
use tapejit::rng::SplitMix64;
use tapejit::{ad, interp, opt, Error};

/// The library's detector of the tapes the reverse transforms refuse: the
/// checks comparing reverse-mode derivatives with a reference skip them.
pub use tapejit::ad::reverse_hazard;

/// What an evaluation gave: every output, or the error.
pub type Outcome = Result<Vec<f64>, Error>;

/// Evaluates compiled code at `(x, p)`; the code was compiled with its
/// inputs and outputs split at `splits` (see [`splits_of`]). Tests pass
/// [`run_plain`]; the fuzz targets pass one that puts every buffer against
/// guard pages.
pub type Runner = fn(&JitFunction, (usize, usize), &[f64], &[f64]) -> Outcome;

/// Where code compiled from `tape` with `options` splits its inputs and
/// outputs.
pub fn splits_of(tape: &Tape, options: &JitOptions) -> (usize, usize) {
    (
        options.input_split.unwrap_or(tape.n_inputs()),
        options.output_split.unwrap_or(tape.n_outputs()),
    )
}

/// The interpreter's outcome.
pub fn interpret(tape: &Tape, x: &[f64], p: &[f64]) -> Outcome {
    interpret_with(tape, x, p, false)
}

/// The interpreter's outcome, subnormals flushed if `flush`.
pub fn interpret_with(tape: &Tape, x: &[f64], p: &[f64], flush: bool) -> Outcome {
    let mut out = vec![0.0; tape.n_outputs()];
    interp::eval_with(tape, x, p, &mut Vec::new(), &mut out, flush).map(|()| out)
}

/// What scratch memory holds before a call: garbage, so that an array
/// element read before the compiled code resets it shows in the outputs.
pub const SCRATCH_GARBAGE: f64 = f64::from_bits(0x4141_4141_4141_4141);

/// Runs compiled code on ordinary vectors (scratch full of
/// [`SCRATCH_GARBAGE`]).
pub fn run_plain(code: &JitFunction, _splits: (usize, usize), x: &[f64], p: &[f64]) -> Outcome {
    let mut out = vec![0.0; code.n_outputs()];
    let mut scratch = vec![SCRATCH_GARBAGE; code.scratch_len()];
    code.run(x, p, &mut out, &mut scratch).map(|()| out)
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
    reference_with(tape, x, p, false)
}

/// [`reference`], subnormals flushed if `flush`.
pub fn reference_with(tape: &Tape, x: &[f64], p: &[f64], flush: bool) -> Reference {
    let mut values = Vec::new();
    let mut out = vec![0.0; tape.n_outputs()];
    let outcome = interp::eval_with(tape, x, p, &mut values, &mut out, flush).map(|()| out);
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

/// The derived tapes of `tape` with respect to all its inputs: JVP,
/// Jacobian (straight-line tapes only: the forward vector mode does not go
/// through loops), VJP, HVP and gradient of the sum of the outputs; the
/// reverse-mode ones only where the transform does not refuse the tape
/// ([`reverse_hazard`], checked to be refused).
pub fn derived_tapes(tape: &Tape) -> Vec<(&'static str, Tape)> {
    derived_tapes_with(tape, false)
}

/// [`derived_tapes`], each optimized (`opt::optimize`, rerolling included)
/// if `optimize`.
pub fn derived_tapes_with(tape: &Tape, optimize: bool) -> Vec<(&'static str, Tape)> {
    let n = tape.n_inputs();
    let derive = |what: &str, t: tapejit::Result<Tape>| -> Tape {
        let t = t.unwrap_or_else(|e| panic!("{what}: {e}\n{tape}"));
        if optimize {
            opt::optimize(&t).unwrap_or_else(|e| panic!("optimizing the {what} tape: {e}\n{t}"))
        } else {
            t
        }
    };
    let gradient = ad::reverse(tape, 0..n, ad::Seed::One);
    let vjp = ad::reverse(tape, 0..n, ad::Seed::Inputs);
    let mut derived = vec![("jvp", derive("jvp", ad::forward(tape, 0..n)))];
    if !tape.has_structure() {
        derived.push((
            "jacobian",
            derive("jacobian", ad::jacobian_forward(tape, 0..n)),
        ));
    }
    if reverse_hazard(tape).is_some() {
        assert_refused("gradient", gradient, tape);
        assert_refused("vjp", vjp, tape);
        return derived;
    }
    let hvp = gradient
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|g| ad::forward(g, 0..n));
    derived.push(("vjp", derive("vjp", vjp)));
    derived.push(("hvp", derive("hvp", hvp)));
    derived.push(("gradient", derive("gradient", gradient)));
    if let Some(segmented) = segmented_gradient(tape) {
        derived.push((
            "segmented gradient",
            derive("segmented gradient", segmented),
        ));
    }
    derived
}

/// The gradient of a straight-line `tape` with its reverse sweep cut into
/// a few segments (at points drawn from its length), or `None` for tapes
/// with loops or too short to cut.
pub fn segmented_gradient(tape: &Tape) -> Option<tapejit::Result<Tape>> {
    let len = tape.len();
    if tape.has_structure() || len < 4 {
        return None;
    }
    let parts = 2 + len % 4;
    let mut starts: Vec<usize> = (0..parts).map(|k| k * len / parts + k % 2).collect();
    starts.dedup();
    let n = tape.n_inputs();
    Some(ad::reverse_with_segments(
        tape,
        0..n,
        ad::Seed::One,
        &starts,
    ))
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
        flush_subnormals: false,
    }
}

/// The interpreter's outcome at a point with what IEEE 754 specifies of it,
/// for any tape: [`reference`] for a straight-line tape, [`loop_reference`]
/// (which follows the NaN-sign rules through loop bodies and arrays) for
/// one with loops or arrays.
pub fn reference_of(tape: &Tape, x: &[f64], p: &[f64]) -> Reference {
    reference_of_with(tape, x, p, false)
}

/// [`reference_of`], subnormals flushed if `flush`.
pub fn reference_of_with(tape: &Tape, x: &[f64], p: &[f64], flush: bool) -> Reference {
    if tape.has_structure() {
        loop_reference_with(tape, x, p, flush)
    } else {
        reference_with(tape, x, p, flush)
    }
}

/// `v`, or with probability 1/3 a number near or below `f64::MIN_POSITIVE`
/// (a subnormal, one whose square or product underflows, `MIN_POSITIVE`
/// give or take a few ulps), either sign: points where flushing matters.
pub fn tiny_or<C: Choices + ?Sized>(c: &mut C, v: f64) -> f64 {
    if !c.one_in(3) {
        return v;
    }
    let t = match c.below(4) {
        0 => f64::from_bits(1 + c.bits() % ((1 << 52) - 1)),
        1 => [1e-160, 3e-155, 1e-300, 2.5e-308][c.below(4)],
        2 => f64::from_bits(f64::MIN_POSITIVE.to_bits() - 3 + c.below(7) as u64),
        _ => f64::MIN_POSITIVE * c.uniform(0.5, 4.0),
    };
    if c.one_in(2) {
        -t
    } else {
        t
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
    check_jit_once_with(c, what, tape, points, run, false);
}

/// [`check_jit_once`], with subnormals flushed (`flush_subnormals`) in both
/// backends if `flush`, at points where about a third of the inputs and
/// parameters are then tiny ([`tiny_or`]).
pub fn check_jit_once_with<C: Choices + ?Sized>(
    c: &mut C,
    what: &str,
    tape: &Tape,
    points: usize,
    run: Runner,
    flush: bool,
) {
    let options = JitOptions {
        flush_subnormals: flush,
        ..draw_options(c, tape)
    };
    let code = jit::compile_with(tape, options).unwrap_or_else(|e| {
        panic!("{what}: a verified tape must compile ({options:?}): {e}\n{tape}")
    });
    let backends = if flush {
        "flushing JIT vs flushing interpreter"
    } else {
        "JIT vs interpreter"
    };
    for _ in 0..points {
        let (mut x, mut p) = random_inputs(c, tape);
        if flush {
            for v in x.iter_mut().chain(p.iter_mut()) {
                *v = tiny_or(c, *v);
            }
        }
        let expected = reference_of_with(tape, &x, &p, flush);
        let got = run(&code, splits_of(tape, &options), &x, &p);
        let what = format!("{what} ({backends}, {options:?})");
        assert_matches(&what, &expected, &got, Errors::Identical, tape, (&x, &p));
    }
}

/// [`check_jit_once`] on `tape` and, if `derived`, on each of its
/// [`derived_tapes_with`] (each with its own options; the derived tapes
/// optimized or not, drawn from `c`).
pub fn check_jit<C: Choices + ?Sized>(
    c: &mut C,
    tape: &Tape,
    points: usize,
    derived: bool,
    run: Runner,
) {
    check_jit_with(c, tape, points, derived, run, false);
}

/// [`check_jit`] with subnormals flushed in both backends.
pub fn check_jit_flushed<C: Choices + ?Sized>(
    c: &mut C,
    tape: &Tape,
    points: usize,
    derived: bool,
    run: Runner,
) {
    check_jit_with(c, tape, points, derived, run, true);
}

fn check_jit_with<C: Choices + ?Sized>(
    c: &mut C,
    tape: &Tape,
    points: usize,
    derived: bool,
    run: Runner,
    flush: bool,
) {
    check_jit_once_with(c, "primal", tape, points, run, flush);
    if derived {
        let optimize = c.one_in(2);
        for (what, d) in derived_tapes_with(tape, optimize) {
            let what = if optimize {
                format!("optimized {what}")
            } else {
                what.to_string()
            };
            check_jit_once_with(c, &what, &d, points, run, flush);
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
/// the same bits on every output that IEEE 754 specifies (see [`Known`],
/// followed through loops by [`reference_of`]), and a guard failure exactly
/// where `tape` fails one, unless a guard condition before it depends on
/// the sign of a NaN.
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
        let expected = reference_of(tape, &x, &p);
        let got = interpret(optimized, &x, &p);
        let what = format!("{what} (optimized vs original)\n{optimized}\noriginal:");
        assert_matches(&what, &expected, &got, Errors::BothGuard, tape, (&x, &p));
    }
}

/// Every rewrite [`check_opt`] checks, by name: the default pipeline
/// (`"optimize"`, rerolling included), each of its exact passes alone, and
/// rerolling alone (`"reroll"`).
pub fn all_passes() -> Vec<&'static str> {
    let mut all = vec!["optimize"];
    all.extend(opt::pass_names());
    all.push("reroll");
    all
}

/// The rewrite named `name` (see [`all_passes`]) applied to `tape`.
pub fn apply_pass(name: &str, tape: &Tape) -> Tape {
    let t = match name {
        "optimize" => opt::optimize(tape),
        _ => opt::run_pass(name, tape),
    };
    t.unwrap_or_else(|e| panic!("{name} refuses a verified tape: {e}\n{tape}"))
}

/// The optimizer is exact on `tape`: the pipeline and each pass alone
/// (rerolling too), every value exposed as an output half of the time (see
/// [`check_opt_loops`] for a tape with loops); if `derived`, the pipeline on
/// its derived tapes too.
pub fn check_opt<C: Choices + ?Sized>(c: &mut C, tape: &Tape, points: usize, derived: bool) {
    if tape.has_structure() {
        check_opt_loops(c, tape, points);
    } else {
        let primal = if c.one_in(2) {
            expose_all(tape)
        } else {
            tape.clone()
        };
        for name in all_passes() {
            let rewritten = apply_pass(name, &primal);
            check_equivalent(c, name, &primal, &rewritten, points);
        }
    }
    if derived {
        for (what, d) in derived_tapes(tape) {
            check_equivalent(c, what, &d, &apply_pass("optimize", &d), points);
        }
        check_derived_values(c, tape, points);
    }
}

/// The derived tapes of `tape` ([`derived_tapes`]) compute its outputs
/// first, exactly as it does (their forward sweep is its instructions), at
/// `points` random points (random weights and tangents too). A tape the
/// reverse transform refuses ([`reverse_hazard`]) is checked on its
/// forward-mode tapes only.
pub fn check_derived_values<C: Choices + ?Sized>(c: &mut C, tape: &Tape, points: usize) {
    let m = tape.n_outputs();
    for (what, d) in derived_tapes(tape) {
        for _ in 0..points {
            let (x, p) = random_inputs(c, tape);
            let extra: Vec<f64> = (tape.n_inputs()..d.n_inputs())
                .map(|_| tapejit::ir::random::random_value(c))
                .collect();
            let expected = reference_of(tape, &x, &p);
            let got = interpret(&d, &[&x[..], &extra].concat(), &p).map(|o| o[..m].to_vec());
            let what =
                format!("the {what} tape's primal outputs against the primal's\n{d}\nprimal:");
            assert_matches(&what, &expected, &got, Errors::BothGuard, tape, (&x, &p));
        }
    }
}

/// A checkpointed gradient (or VJP) of `tape` (`ad::reverse_with_budget`
/// with 1 to 4 snapshots, drawn) computes exactly what the gradient with
/// every state stored computes, under the interpreter, at `points` random
/// points; the same after `opt::optimize`, and the checkpointed tape's text
/// round-trips. Returns whether a loop was checkpointed and the gradients
/// compared: a tape the reverse transform refuses ([`reverse_hazard`]) is
/// checked to be refused.
pub fn check_checkpoints<C: Choices + ?Sized>(c: &mut C, tape: &Tape, points: usize) -> bool {
    let n = tape.n_inputs();
    let seed = if c.one_in(2) {
        ad::Seed::One
    } else {
        ad::Seed::Inputs
    };
    let snapshots = 1 + c.below(4) as u32;
    let budget = tapejit::MemoryBudget::Snapshots(snapshots);
    if reverse_hazard(tape).is_some() {
        let refused = ad::reverse_with_budget(tape, 0..n, seed, budget);
        assert_refused("checkpointed reverse", refused, tape);
        return false;
    }
    let stored = ad::reverse_with_budget(tape, 0..n, seed, tapejit::MemoryBudget::Unlimited)
        .unwrap_or_else(|e| panic!("reverse ({seed:?}): {e}\n{tape}"));
    let checkpointed = ad::reverse_with_budget(tape, 0..n, seed, budget)
        .unwrap_or_else(|e| panic!("reverse ({seed:?}, {budget:?}): {e}\n{tape}"));
    checkpointed
        .verify()
        .unwrap_or_else(|e| panic!("{budget:?}: does not verify: {e}\n{checkpointed}"));
    check_round_trip(&checkpointed);
    let optimized = apply_pass("optimize", &checkpointed);
    for _ in 0..points {
        let (x, p) = random_inputs(c, &stored);
        let expected = loop_reference(&stored, &x, &p);
        for (how, t) in [("checkpointed", &checkpointed), ("optimized", &optimized)] {
            let got = interpret(t, &x, &p);
            let what =
                format!("{seed:?} with {budget:?} against stored states, primal:\n{tape}\n{how}:");
            assert_matches(&what, &expected, &got, Errors::BothGuard, t, (&x, &p));
        }
    }
    !checkpointed.checkpoints().is_empty() && points > 0
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
/// to evaluate it (the text `inputs=4000000000` is a valid header); the
/// same bound applies to its outputs and to its arrays' total length.
pub const MAX_PARSED_INPUTS: usize = 1 << 16;

/// Most instructions one evaluation of a parsed tape may execute for
/// [`check_text`] to evaluate it (`loop trips=4000000000` parses).
pub const MAX_PARSED_WORK: u64 = 1 << 20;

/// Instructions one evaluation of `tape` executes, loop bodies once per
/// iteration and checkpointed loops' steps once per forward iteration
/// (saturating: a parsed tape's trip counts can be anything).
pub fn work_bound(tape: &Tape) -> u64 {
    let mut work = tape.len() as u64;
    for lp in tape.loops() {
        work = work.saturating_add(u64::from(lp.trips).saturating_mul(work_bound(&lp.body)));
    }
    for cp in tape.checkpoints() {
        work = work.saturating_add(cp.step.len() as u64);
    }
    work
}

/// Whatever `text` is: parsing does not panic; if it parses, the tape
/// prints and parses back equal, compiles, and the compiled code agrees
/// with the interpreter at a few points (drawn from `c`). Tapes too large
/// to run quickly (see [`MAX_PARSED_INPUTS`], [`MAX_PARSED_WORK`]) are
/// compiled only.
pub fn check_text<C: Choices + ?Sized>(c: &mut C, text: &str, run: Runner) {
    let Ok(tape) = text.parse::<Tape>() else {
        return;
    };
    check_round_trip(&tape);
    let arrays: u64 = tape.arrays().iter().map(|&len| u64::from(len)).sum();
    let checkpointed = !tape.checkpoints().is_empty();
    if tape.n_inputs() + tape.n_params() > MAX_PARSED_INPUTS
        || tape.n_outputs() > MAX_PARSED_INPUTS
        || arrays > MAX_PARSED_INPUTS as u64
        || work_bound(&tape) > MAX_PARSED_WORK
    {
        // The JIT does not compile checkpointed loops yet: an error then.
        let compiled = jit::compile(&tape);
        assert!(
            compiled.is_ok() || checkpointed,
            "a parsed tape compiles: {:?}\n{tape}",
            compiled.err()
        );
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
    /// Tapes whose reverse-mode derivatives were not compared: the reverse
    /// transform refuses them ([`reverse_hazard`]).
    pub reverse_skipped: usize,
}

impl std::ops::AddAssign for FdStats {
    fn add_assign(&mut self, o: FdStats) {
        self.checked += o.checked;
        self.skipped += o.skipped;
        self.reverse_skipped += o.reverse_skipped;
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
/// are optimized first, as `Function` does. Only the JVP is compared on a
/// tape the reverse transform refuses ([`reverse_hazard`], checked to be
/// refused).
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
    let hazard = reverse_hazard(tape).is_some();
    let gradient_tape = ad::reverse(tape, 0..n, ad::Seed::One);
    let vjp = ad::reverse(tape, 0..n, ad::Seed::Inputs);
    let reverse = if hazard {
        assert_refused("gradient", gradient_tape, tape);
        assert_refused("vjp", vjp, tape);
        None
    } else {
        let gradient_tape = gradient_tape.unwrap();
        let hvp = prepare(ad::forward(&gradient_tape, 0..n).unwrap());
        Some((prepare(gradient_tape), prepare(vjp.unwrap()), hvp))
    };
    let jvp = prepare(ad::forward(tape, 0..n).unwrap());

    let (x, v) = fd_point(c, n);
    let w: Vec<f64> = (0..m).map(|_| c.uniform(-1.0, 1.0)).collect();
    let context = format!("at x={x:?} v={v:?} w={w:?} p={p:?} (optimized: {optimize})\n{tape}");
    let eval = |t: &Tape, inputs: &[f64]| {
        interpret(t, inputs, p).unwrap_or_else(|e| panic!("{e} on the smooth box {context}"))
    };
    let cat = |a: &[f64], b: &[f64]| [a, b].concat();
    let tangent = eval(&jvp, &cat(&x, &v));
    let dot = |a: &[f64]| a.iter().zip(&v).map(|(a, b)| a * b).sum::<f64>();
    let dot_scale = |a: &[f64]| a.iter().zip(&v).map(|(a, b)| (a * b).abs()).sum::<f64>();

    // The outputs of `t` at x + step v, and the magnitude of that evaluation.
    let at = |t: &Tape, step: f64| -> Option<(Vec<f64>, f64)> {
        let point: Vec<f64> = x.iter().zip(&v).map(|(x, v)| x + step * v).collect();
        magnitude(t, &point, p)
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
    if let Some((gradient_tape, vjp, hvp)) = &reverse {
        let gradient = eval(gradient_tape, &x);
        let weighted = eval(vjp, &cat(&x, &w));
        let second = eval(hvp, &cat(&x, &v));
        let phi = |h| at(tape, h).map(|(out, a)| (out.iter().sum(), a));
        let (g, scale) = (dot(&gradient[m..]), dot_scale(&gradient[m..]));
        count(fd_agrees("gradient . v", &context, g, scale, &phi));
        let phi = |h| at(tape, h).map(|(out, a)| (out.iter().zip(&w).map(|(f, w)| f * w).sum(), a));
        let (g, scale) = (dot(&weighted[m..]), dot_scale(&weighted[m..]));
        count(fd_agrees("VJP . v", &context, g, scale, &phi));
        for j in 0..n {
            let phi = |h| at(gradient_tape, h).map(|(out, a)| (out[m + j], a));
            let what = format!("HVP component {j}");
            count(fd_agrees(&what, &context, second[2 * m + n + j], 0.0, &phi));
        }
    }
    stats.reverse_skipped += usize::from(hazard);
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
    /// The sum of the magnitudes of every value computed (for [`magnitude`]).
    magnitude: f64,
    /// Subnormals flushed (`tapejit::ir::flush`).
    flush: bool,
}

impl<'a> ShadowEnv<'a> {
    /// The environment of a run of `tape` at `x`, `p`: arrays at their
    /// initial `-0.0`, no magnitude summed yet.
    fn new(tape: &Tape, x: &'a [f64], p: &'a [f64], flush: bool) -> ShadowEnv<'a> {
        ShadowEnv {
            x,
            p,
            arrays: tape
                .arrays()
                .iter()
                .map(|&len| vec![(-0.0, Known::Yes); len as usize])
                .collect(),
            index: Vec::new(),
            guards_specified: true,
            magnitude: 0.0,
            flush,
        }
    }

    fn read(&self, a: &tapejit::ir::Access) -> Shadow {
        let k = a.element(&self.index) as usize;
        let f = |v: f64| if self.flush { flush::flush(v) } else { v };
        match a.buffer {
            tapejit::ir::Buffer::Input => (f(self.x[k]), Known::Yes),
            tapejit::ir::Buffer::Param => (f(self.p[k]), Known::Yes),
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
                                let sum = if env.flush {
                                    flush::flush(cell.0 + x)
                                } else {
                                    cell.0 + x
                                };
                                env.magnitude += sum.abs();
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
                    (Op::PowI, _) if env.flush => flush::powi(operands[0].0, inst.powi_exponent()),
                    (Op::Mul, _) if env.flush => flush::mul(operands[0].0, operands[1].0),
                    (Op::Div, _) if env.flush => flush::div(operands[0].0, operands[1].0),
                    (Op::Recip, _) if env.flush => flush::div(1.0, operands[0].0),
                    (Op::PowI, _) => semantics::powi(operands[0].0, inst.powi_exponent()),
                    (_, 1) => semantics::unary(op, operands[0].0),
                    (_, 2) => semantics::binary(op, operands[0].0, operands[1].0),
                    _ => semantics::ternary(op, operands[0].0, operands[1].0, operands[2].0),
                };
                (value, known_of(inst, &operands, value))
            }
        };
        if !inst.op.has_no_value() && inst.op != Op::Loop {
            env.magnitude += r.0.abs();
        }
        let r = if env.flush && inst.op != Op::Loop {
            (flush::flush(r.0), r.1)
        } else {
            r
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
    loop_reference_with(tape, x, p, false)
}

/// [`loop_reference`], subnormals flushed if `flush`.
pub fn loop_reference_with(tape: &Tape, x: &[f64], p: &[f64], flush: bool) -> Reference {
    let outcome = interpret_with(tape, x, p, flush);
    let mut env = ShadowEnv::new(tape, x, p, flush);
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

/// The outputs of `tape` at `(x, p)` (the interpreter's) and the sum of the
/// magnitudes of all the values of the evaluation, loop bodies counted in
/// every iteration (by the shadow evaluation of [`loop_reference`]), or
/// `None` if a guard fails.
pub fn magnitude(tape: &Tape, x: &[f64], p: &[f64]) -> Option<(Vec<f64>, f64)> {
    let mut values = Vec::new();
    let mut out = vec![0.0; tape.n_outputs()];
    interp::eval(tape, x, p, &mut values, &mut out).ok()?;
    if !tape.has_structure() {
        return Some((out, values[..tape.len()].iter().map(|v| v.abs()).sum()));
    }
    let mut env = ShadowEnv::new(tape, x, p, false);
    let inputs: Vec<Shadow> = x.iter().map(|&v| (v, Known::Yes)).collect();
    shadow_run(tape, &inputs, &mut env)?;
    Some((out, env.magnitude))
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

/// The optimizer, and each of its passes alone (rerolling too), keep `tape` (a tape with
/// loops and arrays, every value and array exposed half of the time) exact
/// at `points` random points, by the rules of [`loop_reference`]: every
/// specified output bit for bit, failing guards alike.
pub fn check_opt_loops<C: Choices + ?Sized>(c: &mut C, tape: &Tape, points: usize) {
    check_opt_loops_with(c, tape, points, &all_passes());
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
        .map(|&name| (name, apply_pass(name, &primal)))
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

// Straight-line tapes that repeat: what rerolling looks for, and near misses.

/// Where an input of a repeated template comes from in instance `k`.
#[derive(Clone, Copy, Debug)]
enum Slot {
    /// Output `j` of the previous instance; this value in the first.
    Carried(usize, tapejit::ir::Value),
    /// The same value in every instance.
    Fixed(tapejit::ir::Value),
    /// Leaf `base + stride * k` of the enclosing tape (inputs, parameters if
    /// `param`; a template's own inputs inside a template).
    Strided { param: bool, base: i64, stride: i64 },
}

/// Copies `template` (a straight-line tape whose inputs are its slots) into
/// `dst`, its input `q` bound to `inputs[q]`; with `spoil = Some(j)`,
/// template instruction `j` comes out slightly changed (another constant,
/// op, exponent, or its operands swapped), so that this instance only looks
/// like the others. Returns the values of the template's outputs.
fn instantiate(
    dst: &mut Tape,
    template: &Tape,
    inputs: &[tapejit::ir::Value],
    spoil: Option<usize>,
) -> Vec<tapejit::ir::Value> {
    use tapejit::ir::Shape;
    let mut map = Vec::with_capacity(template.len());
    for (j, inst) in template.insts().iter().enumerate() {
        if inst.op == Op::Input {
            map.push(inputs[inst.args[0] as usize]);
            continue;
        }
        let mut inst = *inst;
        match inst.op.shape() {
            Shape::Values(n) => {
                for a in &mut inst.args[..n] {
                    *a = map[*a as usize];
                }
            }
            Shape::ValueImm => inst.args[0] = map[inst.args[0] as usize],
            _ => {}
        }
        if spoil == Some(j) {
            inst = match inst.op.shape() {
                Shape::Const => Inst::constant(inst.const_value() + 0.75),
                Shape::ValueImm if inst.op == Op::PowI => {
                    Inst::powi(inst.args[0], inst.powi_exponent().wrapping_add(1))
                }
                Shape::Values(n) if n >= 2 && inst.args[0] != inst.args[1] => {
                    inst.args.swap(0, 1);
                    inst
                }
                Shape::Values(n) => {
                    let ops: Vec<Op> = tapejit::ir::ALL_OPS
                        .iter()
                        .copied()
                        .filter(|o| o.shape() == Shape::Values(n) && *o != inst.op)
                        .collect();
                    Inst {
                        op: ops[(inst.args[0] as usize + j) % ops.len()],
                        ..inst
                    }
                }
                _ => inst,
            };
        }
        map.push(dst.push(inst));
    }
    template
        .outputs()
        .iter()
        .map(|o| map[o.value().expect("templates output values") as usize])
        .collect()
}

/// Slots for `n_slots` template inputs, the first `n_carried` carried (from
/// `values`), the others fixed values or strided leaves of a buffer of
/// `buffer` elements (and of the parameters, `params` of them, if `params`
/// is not 0) that stay in range for `trips` instances. Strided slots come
/// in runs with consecutive bases and one stride, so that a template that
/// repeats inside reads affinely in both loops.
fn draw_slots<C: Choices + ?Sized>(
    c: &mut C,
    n_slots: usize,
    n_carried: usize,
    values: &[tapejit::ir::Value],
    (buffer, params): (usize, usize),
    trips: usize,
) -> Vec<Slot> {
    let mut slots = Vec::with_capacity(n_slots);
    let mut run: Option<(bool, i64, i64)> = None;
    for q in 0..n_slots {
        let pick = |c: &mut C| values[values.len() - 1 - c.below(values.len().min(6))];
        if q < n_carried {
            slots.push(Slot::Carried(q, pick(c)));
            continue;
        }
        // Continue a run of strided slots, or start one, or a fixed value.
        let next = match run {
            Some((param, base, stride)) if !c.one_in(4) => Some((param, base + 1, stride)),
            _ if c.one_in(4) => None,
            _ => {
                let param = params > 0 && c.one_in(3);
                let len = if param { params } else { buffer } as i64;
                // Mostly a stride that fits the buffer.
                let fitting: Vec<i64> = [-1, 1, 1, 1, 2, 3]
                    .into_iter()
                    .filter(|s| s * (trips as i64 - 1) < len)
                    .collect();
                let stride = match fitting.len() {
                    0 => 0,
                    n if !c.one_in(8) => fitting[c.below(n)],
                    _ => [-1, 0, 1, 2][c.below(4)],
                };
                let span = stride * (trips as i64 - 1);
                let (lo, hi) = (-span.min(0), len - 1 - span.max(0));
                (hi >= lo).then(|| (param, lo + c.below((hi - lo + 1) as usize) as i64, stride))
            }
        };
        let fits = |&(param, base, stride): &(bool, i64, i64)| {
            let len = if param { params } else { buffer } as i64;
            let last = base + stride * (trips as i64 - 1);
            (0..len).contains(&base) && (0..len).contains(&last)
        };
        run = next.filter(fits);
        slots.push(match run {
            Some((param, base, stride)) => Slot::Strided {
                param,
                base,
                stride,
            },
            None => Slot::Fixed(pick(c)),
        });
    }
    slots
}

/// Runs `template` `trips` times in `dst` with `slots`; `leaf(param, i)`
/// gives the value of a strided slot's leaf `i`. Returns every instance's
/// output values.
fn repeat(
    dst: &mut Tape,
    template: &Tape,
    slots: &[Slot],
    trips: usize,
    spoil: Option<(usize, usize)>,
    leaf: &mut dyn FnMut(&mut Tape, bool, u32) -> tapejit::ir::Value,
) -> Vec<Vec<tapejit::ir::Value>> {
    let mut all: Vec<Vec<tapejit::ir::Value>> = Vec::with_capacity(trips);
    for k in 0..trips {
        let inputs: Vec<tapejit::ir::Value> = slots
            .iter()
            .map(|s| match *s {
                Slot::Carried(j, init) => all.last().map_or(init, |prev| prev[j]),
                Slot::Fixed(v) => v,
                Slot::Strided {
                    param,
                    base,
                    stride,
                } => leaf(dst, param, (base + stride * k as i64) as u32),
            })
            .collect();
        let spoiled = spoil.filter(|&(odd, _)| odd == k).map(|(_, j)| j);
        all.push(instantiate(dst, template, &inputs, spoiled));
    }
    all
}

/// A straight-line template with `n_slots` inputs and `n_outputs` outputs,
/// about `len` instructions: random scalar code (every op, special
/// constants, guards on compares, operands mostly the slots and recent
/// values, so that little of it folds to constants), or (if `depth > 0`,
/// now and then) itself made of a template repeated a few times.
fn template<C: Choices + ?Sized>(
    c: &mut C,
    n_slots: usize,
    n_outputs: usize,
    len: usize,
    depth: usize,
) -> Tape {
    if depth == 0 || !c.one_in(3) || len < 8 {
        return scalar_template(c, n_slots, n_outputs, len);
    }
    let mut t = Tape::new(n_slots, 0);
    let mut values: Vec<tapejit::ir::Value> = (0..n_slots)
        .map(|q| t.push(Inst::input(q as u32)))
        .collect();
    let inner_carried = c.below(3);
    let inner_slots = inner_carried + 1 + c.below(4);
    let inner_len = 1 + c.below(len / 2);
    let inner = template(c, inner_slots, inner_carried + 1, inner_len, depth - 1);
    let trips = 2 + c.below(6);
    let slots = draw_slots(c, inner_slots, inner_carried, &values, (n_slots, 0), trips);
    let all = repeat(&mut t, &inner, &slots, trips, None, &mut |_, _, i| i);
    values.extend(all.iter().flatten().copied());
    for k in 0..n_outputs {
        let v = match k {
            0 => *values.last().unwrap(),
            _ => values[c.below(values.len())],
        };
        t.push_output(v);
    }
    t
}

/// Random scalar code over `n_slots` inputs: `len` instructions of every
/// scalar op, operands drawn from the inputs half of the time and from the
/// latest values otherwise, constants one time in twelve, guards on
/// compares one time in twelve (in half of the templates).
fn scalar_template<C: Choices + ?Sized>(
    c: &mut C,
    n_slots: usize,
    n_outputs: usize,
    len: usize,
) -> Tape {
    use tapejit::ir::Shape;
    let mut t = Tape::new(n_slots, 0);
    let mut values: Vec<tapejit::ir::Value> = (0..n_slots)
        .map(|q| t.push(Inst::input(q as u32)))
        .collect();
    let mut compares = Vec::new();
    let guards = c.one_in(2);
    let ops: Vec<Op> = tapejit::ir::ALL_OPS
        .iter()
        .copied()
        .filter(|op| !matches!(op, Op::Input | Op::Param | Op::Guard | Op::Const))
        .collect();
    for _ in 0..len {
        if guards && !compares.is_empty() && c.one_in(12) {
            let cond = compares[c.below(compares.len())];
            t.push(Inst::guard(cond, c.below(4) != 0));
            continue;
        }
        if c.one_in(12) {
            let k = tapejit::ir::random::random_value(c);
            values.push(t.push(Inst::constant(k)));
            continue;
        }
        let op = ops[c.below(ops.len())];
        let pick = |c: &mut C| {
            if c.one_in(2) {
                c.below(n_slots) as tapejit::ir::Value
            } else {
                values[values.len() - 1 - c.below(values.len().min(4))]
            }
        };
        let inst = match op.shape() {
            Shape::ValueImm => Inst::powi(pick(c), c.below(9) as i32 - 4),
            Shape::Values(1) => Inst::unary(op, pick(c)),
            Shape::Values(2) => Inst::binary(op, pick(c), pick(c)),
            _ => Inst::ternary(op, pick(c), pick(c), pick(c)),
        };
        let v = t.push(inst);
        values.push(v);
        if op.is_compare() {
            compares.push(v);
        }
    }
    for k in 0..n_outputs {
        let v = if k == 0 {
            *values.last().unwrap()
        } else {
            values[c.below(values.len())]
        };
        t.push_output(v);
    }
    t
}

/// A straight-line tape made of repeated segments, as traced code with a
/// Rust loop gives, for rerolling to find: a prefix, then a random template
/// (straight-line code with every op, special constants and guards,
/// sometimes itself repeating) instantiated 2 to 64 times with carried
/// values, fixed values and strided input or parameter leaves as its
/// inputs, then a tail; about `max_len` instructions at most. One instance
/// in four tapes is spoiled (one of its instructions changed), and
/// sometimes every instance's values are outputs.
pub fn repeated_tape<C: Choices + ?Sized>(c: &mut C, max_len: usize) -> Tape {
    use std::collections::HashMap;
    let n_carried = [0, 1, 1, 2, 2, 3][c.below(6)];
    let n_slots = n_carried + 1 + c.below(6);
    let (n_out, body_len, depth) = (n_carried + 1 + c.below(2), 1 + c.below(16), 1 + c.below(2));
    let body = template(c, n_slots, n_out, body_len, depth);
    let most = (max_len / body.len().max(1)).clamp(2, 64);
    let trips = match c.below(4) {
        0 => most,
        _ => 2 + c.below(most - 1),
    };
    // Mostly enough inputs for strided reads across all the instances.
    let n_inputs = match c.below(4) {
        0 => 1 + c.below(8),
        _ => trips * (1 + c.below(3)) + c.below(8),
    };
    let n_params = c.below(6);
    let mut tape = Tape::new(n_inputs, n_params);
    // Leaves are made once, where first used (a duplicate now and then).
    let mut leaves: HashMap<(bool, u32), tapejit::ir::Value> = HashMap::new();
    let mut duplicate = c.below(4);
    let mut leaf = move |t: &mut Tape, param: bool, i: u32| {
        duplicate = (duplicate + 1) % 7;
        let inst = if param {
            Inst::param(i)
        } else {
            Inst::input(i)
        };
        if duplicate == 0 {
            return t.push(inst);
        }
        *leaves.entry((param, i)).or_insert_with(|| t.push(inst))
    };
    let mut values = vec![leaf(&mut tape, false, 0)];
    for _ in 0..c.below(4) {
        let param = n_params > 0 && c.one_in(2);
        let i = c.below(if param { n_params } else { n_inputs }) as u32;
        values.push(leaf(&mut tape, param, i));
    }
    let (n_out, len) = (1 + c.below(3), c.below(6));
    let prefix = template(c, values.len(), n_out, len, 0);
    let made = instantiate(&mut tape, &prefix, &values, None);
    values.extend(made);
    let slots = draw_slots(c, n_slots, n_carried, &values, (n_inputs, n_params), trips);
    let spoil = (body.len() > n_slots && c.one_in(4))
        .then(|| (c.below(trips), n_slots + c.below(body.len() - n_slots)));
    let mut all = repeat(&mut tape, &body, &slots, trips, spoil, &mut leaf);
    let last = all.last().unwrap().clone();
    let mut outputs = last.clone();
    // Mostly, an accumulator over the instances (as a traced sum is), so
    // that every instance reaches an output.
    if !c.one_in(4) {
        let op = [Op::Add, Op::Add, Op::Mul, Op::Max, Op::Hypot][c.below(5)];
        let j = c.below(last.len());
        let mut acc = values[c.below(values.len())];
        for instance in &mut all {
            acc = tape.push(Inst::binary(op, acc, instance[j]));
            instance.push(acc);
        }
        outputs.push(acc);
    }
    for _ in 0..c.below(4) {
        let a = all[c.below(trips)][c.below(last.len())];
        let b = values[c.below(values.len())];
        let op = [Op::Add, Op::Mul, Op::Sub, Op::Max][c.below(4)];
        outputs.push(tape.push(Inst::binary(op, a, b)));
    }
    if c.one_in(4) {
        outputs.extend(all.iter().flatten().copied());
    }
    for v in outputs {
        tape.push_output(v);
    }
    tape.verify()
        .unwrap_or_else(|e| panic!("repeated_tape made a tape that does not verify: {e}\n{tape}"));
    tape
}

/// The shape of a long straight-line tape (400 to 10^4 instructions, drawn
/// log-uniformly), for the generators' long end.
pub fn long_tape_config<C: Choices + ?Sized>(c: &mut C) -> tapejit::ir::random::RandomTapeConfig {
    let len = (400.0 * 25f64.powf(c.uniform(0.0, 1.0))) as usize;
    tapejit::ir::random::RandomTapeConfig {
        len: len.min(10_000),
        n_inputs: c.below(5),
        n_params: c.below(5),
        n_outputs: 1 + c.below(8),
        guard_every: [0, 16, 64, 256][c.below(4)],
    }
}

/// A smooth loop tape for [`check_fd`] ([`smooth_loop_config`]), drawn
/// again up to 3 times while the reverse transform refuses it
/// ([`reverse_hazard`]: only its JVP could be checked).
pub fn fd_loop_tape<C: Choices + ?Sized>(c: &mut C) -> SmoothTape {
    let draw = |c: &mut C| {
        let config = smooth_loop_config(c);
        tapejit::ir::random::loops::smooth_loop_tape(c, &config)
    };
    let mut s = draw(c);
    for _ in 0..3 {
        if reverse_hazard(&s.tape).is_none() {
            break;
        }
        s = draw(c);
    }
    s
}

/// A loop tape for [`check_checkpoints`]: 1 to 16 inputs, 1 to 4 root
/// loops nested up to 3 deep, 200 to 3,200 instructions of work, drawn
/// again up to 7 times until the reverse transform handles it (no
/// [`reverse_hazard`]) and checkpoints one of its loops with one snapshot.
pub fn checkpoint_tape<C: Choices + ?Sized>(c: &mut C) -> Tape {
    let draw = |c: &mut C| {
        let config = tapejit::ir::random::loops::LoopTapeConfig {
            n_inputs: 1 + c.below(16),
            n_params: c.below(4),
            max_work: 200 + c.below(3_000) as u64,
            max_depth: 1 + c.below(3),
            prefix_len: c.below(12),
            loops: 1 + c.below(4),
            guard_every: [0, 0, 6, 16, 48][c.below(5)],
            n_outputs: c.below(6),
        };
        tapejit::ir::random::loops::random_loop_tape_with(c, &config)
    };
    let checkpoints = |t: &Tape| {
        let one = tapejit::MemoryBudget::Snapshots(1);
        ad::reverse_with_budget(t, 0..t.n_inputs(), ad::Seed::One, one)
            .is_ok_and(|g| !g.checkpoints().is_empty())
    };
    let mut tape = draw(c);
    for _ in 0..7 {
        if reverse_hazard(&tape).is_none() && checkpoints(&tape) {
            break;
        }
        tape = draw(c);
    }
    tape
}

/// The shape of a smooth loop tape for [`check_fd`]: 1 to 8 inputs, up to
/// 3 parameters, 1 to 3 scalar outputs (array slices come on top), nesting
/// up to 3 deep, up to 2,000 instructions of work.
pub fn smooth_loop_config<C: Choices + ?Sized>(
    c: &mut C,
) -> tapejit::ir::random::loops::LoopTapeConfig {
    tapejit::ir::random::loops::LoopTapeConfig {
        n_inputs: 1 + c.below(8),
        n_params: c.below(4),
        max_work: [100, 500, 2_000][c.below(3)],
        max_depth: 1 + c.below(3),
        prefix_len: c.below(8),
        loops: 1 + c.below(3),
        guard_every: [0, 6, 24][c.below(3)],
        n_outputs: 1 + c.below(3),
    }
}

/// The refusal the reverse transforms give `tape` where they would be
/// wrong ([`reverse_hazard`]): an `Error::Unsupported` naming the hazard.
pub fn assert_refused(what: &str, got: tapejit::Result<Tape>, tape: &Tape) {
    match got {
        Err(Error::Unsupported(msg)) if msg.contains("reverse mode does not handle") => {}
        Err(e) => panic!("{what}: refused with an unexpected error: {e}\n{tape}"),
        Ok(t) => panic!("{what}: not refused\n{tape}\n{what}:\n{t}"),
    }
}

/// Runs `case(rng, number)` for `count` seeded cases, naming the case that
/// fails (rerun one alone with `DIFFERENTIAL_CASE=name:number`).
pub fn cases(name: &str, count: u64, mut case: impl FnMut(&mut SplitMix64, u64)) {
    let only = std::env::var("DIFFERENTIAL_CASE").ok();
    for k in 0..count {
        let label = format!("{name}:{k}");
        if only.as_deref().is_some_and(|o| o != label) {
            continue;
        }
        // One stream per case, independent of the others.
        let seed = SplitMix64::new(k ^ hash(name)).next_u64();
        let mut rng = SplitMix64::new(seed);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(&mut rng, k)));
        if let Err(e) = result {
            eprintln!("seeded case {label} failed (rerun: DIFFERENTIAL_CASE={label})");
            std::panic::resume_unwind(e);
        }
    }
}

/// FNV-1a of `name`: each family of cases draws its own seeds.
fn hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}
