//! The deterministic differential suite: a few thousand seeded cases of the
//! checks the fuzz targets run (`tests/support`, shared with `fuzz/`), drawn
//! from the same generators (`tapejit::ir::random`):
//!
//! - the JIT against the interpreter, bitwise, on primal and derived tapes
//!   (gradient, VJP, JVP, Jacobian, HVP), with random chunking, register
//!   allocator and buffer splits, guard failures included;
//! - the optimizer (and each pass alone) bitwise exact on primal and derived
//!   tapes;
//! - reverse gradients, VJPs, forward JVPs and HVPs against finite
//!   differences on well-conditioned random expressions;
//! - the text format: round trips, and mutated text never panics the parser
//!   and runs alike in both backends when it parses;
//! - regression tests for what the fuzzers found.
//!
//! Each case is seeded by its number; a failure names the case, so it can be
//! rerun alone with `DIFFERENTIAL_CASE=name:number cargo test --test differential`.

mod support;

use support::*;
use tapejit::ir::random::loops::arbitrary_loop_tape;
use tapejit::ir::random::{
    arbitrary_tape, random_tape, random_tape_with, smooth_tape, Choices, RandomTapeConfig,
    SmoothConfig,
};
use tapejit::ir::semantics::same;
use tapejit::ir::Tape;
use tapejit::rng::SplitMix64;

#[test]
fn jit_agrees_with_the_interpreter_on_arbitrary_tapes() {
    cases("jit", 700, |rng, _| {
        let tape = arbitrary_tape(rng, 160);
        let derived = tape.len() <= 48;
        check_jit(rng, &tape, 3, derived, run_plain);
    });
}

#[test]
fn jit_agrees_with_the_interpreter_on_long_tapes() {
    // 10^3 and 10^4 instructions: many chunks, many cross-chunk slots.
    cases("jit-long", 3, |rng, k| {
        let len = [1_000, 3_000, 10_000][k as usize];
        let config = RandomTapeConfig {
            len,
            n_inputs: 4,
            n_params: 2,
            n_outputs: 8,
            guard_every: 200,
        };
        let tape = random_tape(rng.next_u64(), &config);
        assert!(tape.len() >= len);
        check_jit(rng, &tape, 4, false, run_plain);
    });
}

#[test]
fn optimizer_is_exact_on_primal_and_derived_tapes() {
    cases("opt", 900, |rng, _| {
        let tape = arbitrary_tape(rng, 160);
        let derived = tape.len() <= 64;
        check_opt(rng, &tape, 4, derived);
    });
}

#[test]
fn derivatives_match_finite_differences() {
    let mut total = FdStats::default();
    cases("fd", 800, |rng, k| {
        let config = SmoothConfig {
            len: 1 + rng.below(40),
            n_inputs: 1 + rng.below(4),
            n_params: rng.below(3),
            n_outputs: 1 + rng.below(3),
            guard_every: [0, 4, 12][rng.below(3)],
        };
        let s = smooth_tape(rng, &config);
        total += check_fd(rng, &s, k % 2 == 1);
    });
    // The differences must decide most comparisons, or the test says little.
    let decided = total.checked as f64 / (total.checked + total.skipped).max(1) as f64;
    assert!(decided > 0.9, "{total:?}");
    eprintln!("finite differences: {total:?}");
}

#[test]
fn text_round_trips_primal_derived_and_optimized_tapes() {
    cases("text", 400, |rng, _| {
        let tape = arbitrary_tape(rng, 120);
        check_round_trip(&tape);
        let optimized = tapejit::opt::optimize(&tape).unwrap();
        check_round_trip(&optimized);
        for (_, d) in derived_tapes(&tape) {
            check_round_trip(&d);
            check_round_trip(&tapejit::opt::optimize(&d).unwrap());
        }
    });
}

/// A random edit or two of `text`, mostly at the level of tokens (so that
/// many results still parse): a token replaced by another one of the text
/// or of the format's vocabulary, removed, or duplicated; a character
/// replaced, inserted or deleted; a line duplicated or dropped.
fn mutate(rng: &mut SplitMix64, text: &str) -> String {
    const WORDS: [&str; 20] = [
        "%0",
        "%1",
        "%4294967295",
        "-1",
        "0",
        "1",
        "2147483648",
        "NaN",
        "-NaN",
        "inf",
        "-0.0",
        "1e999",
        "true",
        "false",
        "guard",
        "powi",
        "select",
        "input",
        "param",
        "outputs",
    ];
    let mut lines: Vec<Vec<String>> = text
        .lines()
        .map(|l| l.split(' ').map(String::from).collect())
        .collect();
    for _ in 0..1 + rng.below(2) {
        let l = rng.below(lines.len());
        let t = rng.below(lines[l].len());
        match rng.below(12) {
            0 | 1 => {
                let other = &lines[rng.below(lines.len())];
                lines[l][t] = other[rng.below(other.len())].clone();
            }
            2 | 3 => lines[l][t] = WORDS[rng.below(WORDS.len())].to_string(),
            4 => {
                let token = lines[l][t].clone();
                lines[l].insert(t, token);
            }
            5 => {
                lines[l].remove(t);
            }
            6 => {
                let mut chars: Vec<char> = lines[l][t].chars().collect();
                let at = rng.below(chars.len() + 1);
                let ch = char::from(b' ' + rng.below(95) as u8);
                match rng.below(3) {
                    0 if at < chars.len() => chars[at] = ch,
                    1 if at < chars.len() => {
                        chars.remove(at);
                    }
                    _ => chars.insert(at, ch),
                }
                lines[l][t] = chars.into_iter().collect();
            }
            7 => {
                if rng.one_in(2) {
                    let line = lines[l].clone();
                    lines.insert(rng.below(lines.len() + 1), line);
                } else if lines.len() > 1 {
                    lines.remove(l);
                }
            }
            // Same kind of token: another value, number or op name.
            _ => {
                let token = &lines[l][t];
                lines[l][t] = if token.starts_with('%') {
                    format!("%{}", rng.below(lines.len() + 1))
                } else if token.parse::<f64>().is_ok() {
                    let v = tapejit::ir::random::random_value(rng);
                    if rng.one_in(2) {
                        format!("{v:?}")
                    } else {
                        format!("{}", rng.below(6) as i64 - 2)
                    }
                } else if let Some(op) = tapejit::ir::Op::from_name(token) {
                    let ops: Vec<_> = tapejit::ir::ALL_OPS
                        .iter()
                        .filter(|o| o.arity() == op.arity())
                        .collect();
                    ops[rng.below(ops.len())].name().to_string()
                } else {
                    token.clone()
                };
            }
        }
        if lines.iter().all(|l| l.is_empty()) {
            break;
        }
        lines.retain(|l| !l.is_empty());
    }
    lines.iter().map(|l| l.join(" ") + "\n").collect()
}

#[test]
fn parser_survives_mutated_text_and_what_parses_runs_alike() {
    let mut parsed = 0;
    cases("parse", 700, |rng, _| {
        let tape = arbitrary_tape(rng, 24);
        let text = mutate(rng, &tape.to_string());
        if text.parse::<Tape>().is_ok() {
            parsed += 1;
        }
        check_text(rng, &text, run_plain);
    });
    assert!(parsed > 100, "only {parsed} mutated texts parsed");
    eprintln!("{parsed} of 700 mutated texts parsed");
}

// Loops and arrays: the same checks on loop tapes (`arbitrary_loop_tape`,
// `smooth_loop_tape`), straight-line tapes that repeat (for rerolling), and
// checkpointed gradients.

#[test]
fn jit_agrees_with_the_interpreter_on_loop_tapes() {
    let mut derived = 0;
    cases("jit-loops", 300, |rng, _| {
        let tape = arbitrary_loop_tape(rng, 10_000);
        let small = tape.static_len() <= 150;
        derived += usize::from(small);
        check_jit(rng, &tape, 3, small, run_plain);
    });
    assert!(derived > 100, "{derived}");
}

#[test]
fn optimizer_is_exact_on_loop_tapes_and_their_derivatives() {
    cases("opt-loops", 200, |rng, _| {
        let tape = arbitrary_loop_tape(rng, 3_000);
        let derived = tape.static_len() <= 150;
        check_opt(rng, &tape, 3, derived);
    });
}

#[test]
fn optimizer_is_exact_on_repeated_and_long_tapes() {
    let (mut rolled, mut total) = (0, 0);
    cases("opt-repeated", 250, |rng, _| {
        let tape = repeated_tape(rng, 1_500);
        total += 1;
        // The default pipeline rerolls only tapes of opt::REROLL_MIN_LEN+
        // instructions; the pass itself rolls these.
        rolled += usize::from(tapejit::opt::reroll(&tape).unwrap().n_loops() > 0);
        check_opt(rng, &tape, 3, tape.len() <= 60);
    });
    // Most repeated tapes roll (spoiled and tiny ones may not).
    assert!(rolled * 2 > total, "{rolled} of {total} rolled");
    cases("opt-long", 3, |rng, _| {
        let config = long_tape_config(rng);
        let tape = random_tape_with(rng, &config);
        check_opt(rng, &tape, 2, false);
    });
}

#[test]
fn checkpointed_gradients_equal_stored_states() {
    let mut checkpointed = 0;
    cases("checkpoint", 150, |rng, _| {
        let tape = checkpoint_tape(rng);
        checkpointed += usize::from(check_checkpoints(rng, &tape, 3));
    });
    eprintln!("{checkpointed} of 150 checkpointed and compared");
    assert!(
        checkpointed > 40,
        "only {checkpointed} checkpointed and compared"
    );
    // Any loop tape: transformed, and compared where the reverse transform
    // is known to be right.
    cases("checkpoint-any", 150, |rng, _| {
        let tape = arbitrary_loop_tape(rng, 2_000);
        check_checkpoints(rng, &tape, 2);
    });
}

#[test]
fn derivatives_of_loop_tapes_match_finite_differences() {
    let mut total = FdStats::default();
    cases("fd-loops", 200, |rng, k| {
        let s = fd_loop_tape(rng);
        total += check_fd(rng, &s, k % 2 == 1);
    });
    let decided = total.checked as f64 / (total.checked + total.skipped).max(1) as f64;
    assert!(decided > 0.9, "{total:?}");
    eprintln!("finite differences on loop tapes: {total:?}");
    assert!(total.reverse_skipped < 40, "{total:?}");
}

#[test]
fn loop_text_round_trips_and_mutated_loop_text_runs_alike() {
    let mut parsed = 0;
    cases("text-loops", 200, |rng, _| {
        let tape = arbitrary_loop_tape(rng, 500);
        check_round_trip(&tape);
        check_round_trip(&tapejit::opt::optimize(&tape).unwrap());
        for (_, d) in derived_tapes_with(&tape, rng.one_in(2)) {
            check_round_trip(&d);
        }
        let text = mutate(rng, &tape.to_string());
        parsed += usize::from(text.parse::<Tape>().is_ok());
        check_text(rng, &text, run_plain);
    });
    assert!(parsed > 20, "only {parsed} mutated loop texts parsed");
}

// Regression tests: what the differential checks and the fuzzers found.

/// Found by `jit:491` (and by the other test suites): the JIT's `signum`
/// returned a NaN operand with its sign, `f64::signum` a positive NaN;
/// `copysign` shows the difference.
#[test]
fn regression_jit_signum_of_negative_nan() {
    let tape: Tape = "tape inputs=1 params=0
%0 = input 0
%1 = signum %0
%2 = const 0.0
%3 = copysign %2 %1
%4 = signbit %1
outputs %3 %4
"
    .parse()
    .unwrap();
    let code = tapejit::jit::compile(&tape).unwrap();
    for x in [-f64::NAN, f64::NAN, -1.0, -0.0] {
        let expected = interpret(&tape, &[x], &[]);
        let got = run_plain(&code, (1, 2), &[x], &[]);
        assert_same(
            "signum",
            &expected,
            &got,
            Errors::Identical,
            &tape,
            (&[x], &[]),
        );
    }
}

/// Found by `opt:411`: `a + -b -> a - b` gives `+NaN` where the original
/// gives `-NaN` (x86 returns the NaN operand), which `signbit` turns into 0
/// against 1. IEEE 754 leaves the sign of an arithmetic NaN unspecified, so
/// the optimizer is right; the optimizer checks skip exactly the outputs
/// that read such a sign, and still catch any other difference.
#[test]
fn optimizer_checks_ignore_only_the_signs_of_arithmetic_nans() {
    let tape: Tape = "tape inputs=2 params=0
%0 = input 0
%1 = input 1
%2 = neg %1
%3 = add %0 %2
%4 = signbit %3
%5 = signbit %2
%6 = copysign %0 %3
outputs %4 %3 %5 %6
"
    .parse()
    .unwrap();
    let optimized = tapejit::opt::optimize(&tape).unwrap();
    let at = [0.5, f64::NAN];
    let (a, b) = (interpret(&tape, &at, &[]), interpret(&optimized, &at, &[]));
    assert_ne!(
        a.unwrap()[0],
        b.unwrap()[0],
        "the example no longer shows it"
    );
    let mut rng = SplitMix64::new(1);
    check_equivalent(&mut rng, "nan signs", &tape, &optimized, 200);
    // Any other difference is caught: an extra output `a + -b` against `a`.
    let mut wrong = tape.clone();
    wrong.push_output(3);
    let mut broken = optimized.clone();
    broken.push_output(0);
    let caught = std::panic::catch_unwind(|| {
        check_equivalent(&mut SplitMix64::new(2), "wrong", &wrong, &broken, 50)
    });
    assert!(caught.is_err(), "a real difference went unnoticed");
}

/// Found by `parse_ir` (a mutated seed): `mul_add(-NaN, NaN, -inf)` then
/// `copysign(-0.0, _)` gave 0.0 interpreted and -0.0 compiled with one
/// instruction per chunk. Cranelift commutes `fadd`, `fmul` and `fma` to
/// merge a load into the instruction, and x86 returns the first NaN
/// operand, so the sign of a NaN sum or product can differ from the
/// interpreter's (it also rewrites `(-a) * (-b)` to `a * b`). So does
/// rustc: `opt_exact`, run with strict NaN signs, found the optimizer's
/// constant folding (release build) returning `+NaN` for a `-NaN * NaN`
/// that the interpreter returns as `-NaN`, the same multiplication compiled
/// with its operands swapped. IEEE 754 leaves the sign of an arithmetic NaN
/// unspecified, so the checks accept exactly the outputs that read it, and
/// still compare everything else.
#[test]
fn jit_may_change_only_the_signs_of_arithmetic_nans() {
    // Cranelift rewrites the product of two negations: at x = [NaN, -NaN]
    // output 0 is 0.0 compiled and 1.0 interpreted. (The load-merging swap
    // of `fadd`/`fmul` operands depends on the surrounding code.)
    let cases = [(
        "tape inputs=2 params=0
%0 = input 0
%1 = input 1
%2 = neg %0
%3 = neg %1
%4 = mul %2 %3
%5 = signbit %4
%6 = sin %0
outputs %5 %4 %6
",
        2000,
    )];
    let n = f64::NAN;
    for (text, chunk_len) in cases {
        let tape: Tape = text.parse().unwrap();
        let options = tapejit::jit::JitOptions {
            chunk_len,
            ..Default::default()
        };
        let code = tapejit::jit::compile_with(&tape, options).unwrap();
        for x in [[n, -n], [-n, n], [n, 1.0], [1.0, -2.0]] {
            let expected = reference(&tape, &x, &[]);
            let got = run_plain(&code, (2, 3), &x, &[]);
            assert_matches(
                "nan signs",
                &expected,
                &got,
                Errors::Identical,
                &tape,
                (&x, &[]),
            );
            // The result is NaN in both where it is NaN, the rest bitwise equal.
            let (a, b) = (expected.outcome.unwrap(), got.unwrap());
            assert!(a[1..].iter().zip(&b[1..]).all(|(a, b)| same(*a, *b)));
            if !x.iter().any(|v| v.is_nan()) {
                assert_eq!(a, b);
            }
        }
    }
}

/// The JVP (tangent outputs) and gradient (adjoint of the sum of the
/// outputs) of the tape `text` at `x` (direction all ones), with central
/// differences of the sum of the outputs to compare.
fn derivatives_at(text: &str, x: &[f64]) -> (Vec<f64>, tapejit::Result<Vec<f64>>) {
    let tape: Tape = text.parse().unwrap();
    let (n, m) = (tape.n_inputs(), tape.n_outputs());
    let jvp = tapejit::ad::forward(&tape, 0..n).unwrap();
    let ones = vec![1.0; n];
    let tangents = interpret(&jvp, &[x, &ones[..]].concat(), &[]).unwrap()[m..].to_vec();
    let gradient = gradient_at(text, x).map(|g| g[m..].to_vec());
    (tangents, gradient)
}

/// Found by `fd-loops` (JVP of a smooth loop tape off by a stale tangent):
/// a loop that computes nothing varied but overwrites array elements (a
/// `store` in its body, or a `store` write) was copied unchanged by the
/// forward transform, and skipped by the reverse one, so the derivative of
/// the value it overwrote survived: here f = 2 whatever x, yet the JVP and
/// the gradient were 1. Both transforms now treat such a loop as active.
#[test]
fn regression_passive_loops_overwriting_arrays() {
    let body_store = "tape inputs=1 params=0 arrays=[1]
%0 = input 0
%1 = store a0[0] %0
%2 = const 2.0
%3 = loop trips=2 init=[%2] {
    %0 = input 0
    %1 = store a0[0] %0
    outputs %0
}
outputs a0[0..1]
";
    let store_write = "tape inputs=1 params=0 arrays=[1]
%0 = input 0
%1 = store a0[0] %0
%2 = const 2.0
%3 = loop trips=2 invariants=[%2] writes=[store a0[0 + 0*i0]] {
    %0 = input 0
    outputs %0
}
outputs a0[0..1]
";
    // The reverse transform refuses the body's store (it would run it
    // again when recomputing the iteration; see the refusals below).
    let (jvp, gradient) = derivatives_at(body_store, &[0.5]);
    assert_eq!(jvp, [0.0]);
    assert_refused(
        "gradient",
        gradient.map(|_| Tape::default()),
        &body_store.parse().unwrap(),
    );
    let (jvp, gradient) = derivatives_at(store_write, &[0.5]);
    assert_eq!((jvp, gradient), (vec![0.0], Ok(vec![0.0])));
    // Found by `grad_vs_fd` (a JVP of 0.01 for a constant output): the same
    // in a loop that does write a tangent, after the store of the value
    // without one: the tangent array was made for the loop's write, after
    // the body's store had been transformed without a tangent store. Here
    // a0 = [2, x]: iteration 0 adds x into a0[0], iteration 1 stores 2 over
    // it.
    let store_after_write = "tape inputs=1 params=0 arrays=[2]
%0 = input 0
%1 = loop trips=2 invariants=[%0] writes=[add a0[0 + 1*i0]] {
    %0 = input 0
    %1 = const 2.0
    %2 = store a0[0] %1
    outputs %0
}
outputs a0[0..2]
";
    let tape: Tape = store_after_write.parse().unwrap();
    let jvp = tapejit::ad::forward(&tape, 0..1).unwrap();
    assert_eq!(
        interpret(&jvp, &[0.5, 1.0], &[]).unwrap(),
        [2.0, 0.5, 0.0, 1.0]
    );
}

/// Found by `grad_vs_fd` (an HVP off by 3%: the forward transform of a
/// reverse loop whose body reads and updates an adjoint element) and then
/// by hand for the reverse transform: when a loop reads an array that the
/// same loop writes (a later iteration reads what an earlier one wrote),
/// the derivative array was made only when the transform met the write, so
/// the reads transformed before it saw no derivative: here a0 = [x, 2x],
/// the sum of what the loop reads is 7x, yet the JVP of the first tape was
/// 1 (not 2) and the gradient of the second 1 (not 7). The transforms now
/// make those arrays' derivative arrays before transforming the loop.
#[test]
fn regression_derivatives_through_arrays_a_loop_reads_and_writes() {
    let elem_then_store = "tape inputs=1 params=0 arrays=[1]
%0 = input 0
%1 = loop trips=2 init=[%0] {
    %0 = input 0
    %1 = elem a0[0]
    %2 = add %1 %0
    %3 = store a0[0] %2
    outputs %0
}
outputs a0[0..1]
";
    let (jvp, _) = derivatives_at(elem_then_store, &[0.5]);
    assert_eq!(jvp, [2.0]);
    let read_then_write = "tape inputs=1 params=0 arrays=[1]
%0 = input 0
%1 = loop trips=2 init=[%0] reads=[a0[0 + 0*i0]] writes=[store a0[0 + 0*i0]] {
    %0 = input 0
    %1 = input 1
    %2 = add %1 %0
    outputs %0 %2
}
outputs a0[0..1]
";
    let (jvp, _) = derivatives_at(read_then_write, &[0.5]);
    assert_eq!(jvp, [2.0]);
    let recurrence = "tape inputs=1 params=0 arrays=[4]
%0 = input 0
%1 = store a0[0] %0
%2 = const 0.0
%3 = loop trips=3 init=[%2] reads=[a0[0 + 1*i0]] writes=[store a0[1 + 1*i0]] {
    %0 = input 0
    %1 = input 1
    %2 = add %0 %1
    %3 = add %1 %1
    outputs %2 %3
}
%4 = loopout %3 0
outputs %4
";
    let tape: Tape = recurrence.parse().unwrap();
    assert_eq!(reverse_hazard(&tape), None);
    assert_eq!(
        derivatives_at(recurrence, &[0.5]),
        (vec![7.0], Ok(vec![7.0]))
    );
}

// Tapes the reverse transform would get wrong through arrays (found by
// `fd-loops:20` and `checkpoint:103` when the suite first drew loop tapes):
// `ad::reverse` and every API path to a gradient, VJP or HVP refuse them
// with `Error::Unsupported` naming the hazard (`ad::reverse_hazard`); the
// checks comparing reverse-mode derivatives with a reference skip them.
// These tests show each hazard on its smallest tape, with the correct
// values a fix would have to give.

/// The value and gradient the gradient tape of `text` computes at `x`, or
/// the transform's refusal.
fn gradient_at(text: &str, x: &[f64]) -> tapejit::Result<Vec<f64>> {
    let tape: Tape = text.parse().unwrap();
    let n = tape.n_inputs();
    let gradient = tapejit::ad::reverse(&tape, 0..n, tapejit::ad::Seed::One)?;
    Ok(interpret(&gradient, x, &[]).unwrap())
}

/// Panics unless the reverse transforms, and a `Function` of `text`
/// (gradient, VJP, HVP, their tapes), refuse it with a message naming
/// each of `names`; the primal and the JVP still evaluate.
#[track_caller]
fn assert_reverse_refused(text: &str, names: &[&str]) {
    let tape: Tape = text.parse().unwrap();
    let n = tape.n_inputs();
    let why = reverse_hazard(&tape).unwrap_or_else(|| panic!("no hazard found\n{tape}"));
    for name in names {
        assert!(why.contains(name), "{name:?} not in {why:?}");
    }
    let budget = tapejit::MemoryBudget::Snapshots(1);
    for seed in [tapejit::ad::Seed::One, tapejit::ad::Seed::Inputs] {
        assert_refused("reverse", tapejit::ad::reverse(&tape, 0..n, seed), &tape);
        let checkpointed = tapejit::ad::reverse_with_budget(&tape, 0..n, seed, budget);
        assert_refused("reverse_with_budget", checkpointed, &tape);
    }
    let options = tapejit::Options {
        optimize: false,
        ..Default::default()
    };
    let f = tapejit::Function::from_tape_with(tape.clone(), options).unwrap();
    let (x, m) = (vec![0.5; n], tape.n_outputs());
    let (mut g, mut out) = (vec![0.0; n], vec![0.0; m]);
    let refused = |r: tapejit::Result<()>| {
        assert_refused("Function", r.map(|()| Tape::default()), &tape);
    };
    if m == 1 {
        refused(f.gradient(&x, &mut g).map(drop));
        refused(f.hvp(&x, &x, &mut g));
        refused(f.gradient_tape().map(drop));
        refused(f.hvp_tape().map(drop));
    }
    refused(f.vjp(&x, &vec![1.0; m], &mut g));
    refused(f.vjp_tape().map(drop));
    refused(f.compiled_vjp().map(drop));
    f.eval(&x, &mut out).unwrap();
    f.jvp(&x, &x, &mut out).unwrap();
}

/// f(x) = x^2 read back from an array by a loop; the array element is
/// overwritten (with 3) after the loop.
const REREAD_AFTER_STORE: &str = "tape inputs=1 params=0 arrays=[1]
%0 = input 0
%1 = store a0[0] %0
%2 = const 0.0
%3 = loop trips=1 init=[%2] reads=[a0[0 + 0*i0]] {
    %0 = input 0
    %1 = input 1
    %2 = mul %1 %1
    outputs %2
}
%4 = loopout %3 0
%5 = const 3.0
%6 = store a0[0] %5
outputs %4
";

/// a0[0] = x; three times: s += a0[0]^2, a0[0] = 2 a0[0]. So
/// f = x^2 + 4x^2 + 16x^2 = 21 x^2.
const REREAD_WITHIN_LOOP: &str = "tape inputs=1 params=0 arrays=[1]
%0 = input 0
%1 = store a0[0] %0
%2 = const 0.0
%3 = loop trips=3 init=[%2] reads=[a0[0 + 0*i0]] writes=[store a0[0 + 0*i0]] {
    %0 = input 0
    %1 = input 1
    %2 = mul %1 %1
    %3 = add %0 %2
    %4 = add %1 %1
    outputs %3 %4
}
%4 = loopout %3 0
outputs %4
";

/// One iteration adds x into a0[0], then stores 1 over it: f = 1.
const STORE_OVER_ADD: &str = "tape inputs=1 params=0 arrays=[1]
%0 = input 0
%1 = const 1.0
%2 = loop trips=1 invariants=[%0, %1] writes=[add a0[0 + 0*i0], store a0[0 + 0*i0]] {
    %0 = input 0
    %1 = input 1
    outputs %0 %1
}
outputs a0[0..1]
";

/// Refused: a reverse loop recomputes its iteration by reading the arrays
/// the forward loop read again, after the whole forward sweep, so it would
/// see values written after the read (by a later `store`, or by the loop's
/// own later iterations): d(x^2)/dx at 0.5 came out as 6 (2 * 3, the value
/// stored after the loop), and d(21 x^2)/dx as 24 instead of 21. Fixing it
/// needs the forward sweep to keep what such reads saw; the gradients
/// (value, then derivative) would then be `[0.25, 1.0]` and `[5.25, 21.0]`.
#[test]
fn reverse_rereads_arrays_overwritten_later() {
    let names = ["a0[0]", "loop %3", "the store %6"];
    assert_reverse_refused(REREAD_AFTER_STORE, &names);
    let names = ["a0[0]", "loop %3", "write 0 of loop %3 in iteration 0"];
    assert_reverse_refused(REREAD_WITHIN_LOOP, &names);
}

/// Refused: when a loop's `store` write overwrites an element written
/// earlier in the same iteration, the earlier value's adjoint should be
/// zero, but the reverse body reads every write's adjoint before resetting
/// any: the gradient came out as 1, not 0 (correct: `[1.0, 0.0]`).
#[test]
fn reverse_ignores_a_store_overwriting_an_earlier_write_of_the_iteration() {
    let names = ["loop %2", "a0[0]", "write 1", "write 0", "iteration 0"];
    assert_reverse_refused(STORE_OVER_ADD, &names);
}

/// A nested loop adds x into a0[0] once; the outer loop's carried value
/// is squared: outputs x^2 and a0[0] = x.
const NESTED_ADD: &str = "tape inputs=1 params=0 arrays=[1]
%0 = input 0
%1 = loop trips=1 init=[%0] {
    %0 = input 0
    %1 = loop trips=1 invariants=[%0] writes=[add a0[0 + 0*i0 + 0*i1]] {
        %0 = input 0
        outputs %0
    }
    %2 = mul %0 %0
    outputs %2
}
%2 = loopout %1 0
outputs %2 a0[0..1]
";

/// Two iterations store the carried value into a0[0] and square it:
/// outputs x^4 and a0[0] = x^2.
const BODY_STORE: &str = "tape inputs=1 params=0 arrays=[1]
%0 = input 0
%1 = loop trips=2 init=[%0] {
    %0 = input 0
    %1 = store a0[0] %0
    %2 = mul %0 %0
    outputs %2
}
%2 = loopout %1 0
outputs %2 a0[0..1]
";

/// Refused (found by `checkpoint:103`, the gradient tape's own primal
/// outputs differing from the primal's): a reverse loop recomputes each
/// iteration with its side effects, `store`s in the body and the writes of
/// nested loops, and would run them again backwards after the forward
/// sweep: an `add` applied twice (a0[0] = 2x at x = 0.5 gave 1, not 0.5)
/// and the last store standing the first iteration's (a0[0] = x, not x^2);
/// a checkpoint's step runs them once more. Fixing it needs the
/// recomputation to leave the arrays alone; the gradients of the sums of
/// the outputs, d(x^2 + x)/dx = 2x + 1 and d(x^4 + x^2)/dx = 4x^3 + 2x,
/// would then be `[0.25, 0.5, 2.0]` and `[0.0625, 0.25, 1.5]`.
#[test]
fn reverse_reruns_the_side_effects_of_loop_bodies() {
    assert_reverse_refused(NESTED_ADD, &["loop %1/%1", "loop %1", "a0"]);
    let names = ["loop %1", "a0[0]", "body instruction %1"];
    assert_reverse_refused(BODY_STORE, &names);
}

/// `reverse_hazard` does not flag the same tapes without the overwrite,
/// and their gradients are right.
#[test]
fn reverse_hazard_passes_the_tapes_without_the_overwrite() {
    let fine = [
        REREAD_AFTER_STORE.replace("%6 = store a0[0] %5\n", ""),
        STORE_OVER_ADD.replace("store a0[0 + 0*i0]", "add a0[0 + 0*i0]"),
    ];
    for text in &fine {
        let tape: Tape = text.parse().unwrap();
        assert_eq!(reverse_hazard(&tape), None, "{tape}");
    }
    assert_eq!(gradient_at(&fine[0], &[0.5]), Ok(vec![0.25, 1.0]));
    assert_eq!(gradient_at(&fine[1], &[0.5]), Ok(vec![1.5, 1.0]));
}

/// Regenerates the fuzz targets' seed corpus (`fuzz/seeds/<target>/`) and
/// the IR dictionary (`fuzz/ir.dict`), all from fixed seeds:
/// `cargo test --test differential -- --ignored write_fuzz_seeds`.
#[test]
#[ignore = "writes fuzz/seeds and fuzz/ir.dict"]
fn write_fuzz_seeds() {
    use std::fmt::Write as _;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let write = |target: &str, name: String, bytes: &[u8]| {
        let dir = root.join("seeds").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    // The structured targets read their decisions from bytes: random bytes
    // of growing length give tapes of growing size.
    let mut rng = SplitMix64::new(0x5eed);
    for target in ["jit_vs_interp", "opt_exact", "grad_vs_fd"] {
        for len in [4usize, 16, 48, 96, 160, 256, 400, 640, 1024, 2048] {
            let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            write(target, format!("random-{len:04}"), &bytes);
        }
    }
    // The loop paths and the others, chosen by the first byte (see each
    // target's `match`): loop tapes, long tapes, checkpoints, repeated tapes
    // (from a generator of their own, so the seeds above stay as they were).
    let mut rng2 = SplitMix64::new(0x100b_5eed);
    let paths: [(&str, &[(u8, &str)]); 3] = [
        (
            "jit_vs_interp",
            &[(0, "loops"), (8, "long"), (9, "straight")],
        ),
        (
            "opt_exact",
            &[
                (0, "loops"),
                (7, "checkpoint"),
                (9, "repeated"),
                (11, "long"),
                (12, "straight"),
            ],
        ),
        ("grad_vs_fd", &[(0, "loops"), (1, "straight")]),
    ];
    for (target, selectors) in paths {
        for &(selector, name) in selectors {
            for len in [16usize, 64, 256, 1024, 3000] {
                let mut bytes: Vec<u8> = (0..len).map(|_| rng2.next_u64() as u8).collect();
                bytes[0] = selector;
                write(target, format!("{name}-{len:04}"), &bytes);
            }
        }
    }
    // parse_ir: printed tapes of every kind, and hand-written corner cases.
    for k in 0..16 {
        let tape = arbitrary_tape(&mut rng, 40);
        write(
            "parse_ir",
            format!("arbitrary-{k:02}.tape"),
            tape.to_string().as_bytes(),
        );
    }
    for k in 0..4 {
        let s = smooth_tape(&mut rng, &SmoothConfig::default());
        let (name, derived) = derived_tapes(&s.tape).swap_remove(k);
        write(
            "parse_ir",
            format!("{name}.tape"),
            derived.to_string().as_bytes(),
        );
    }
    // Loop tapes: printed, optimized, derived, checkpointed, rerolled.
    for k in 0..12 {
        let tape = arbitrary_loop_tape(&mut rng2, [40, 200, 1_000][k % 3]);
        write(
            "parse_ir",
            format!("loops-{k:02}.tape"),
            tape.to_string().as_bytes(),
        );
    }
    for k in 0..4 {
        let tape = checkpoint_tape(&mut rng2);
        let n = tape.n_inputs();
        let derived = [
            tapejit::ad::reverse(&tape, 0..n, tapejit::ad::Seed::One).unwrap(),
            tapejit::ad::forward(&tape, 0..n).unwrap(),
            tapejit::opt::optimize(&tape).unwrap(),
            tapejit::ad::reverse_with_budget(
                &tape,
                0..n,
                tapejit::ad::Seed::Inputs,
                tapejit::MemoryBudget::Snapshots(2),
            )
            .unwrap(),
        ];
        let names = ["gradient", "jvp", "optimized", "checkpointed"];
        write(
            "parse_ir",
            format!("loops-{}.tape", names[k]),
            derived[k].to_string().as_bytes(),
        );
    }
    for k in 0..3 {
        let tape = tapejit::opt::optimize(&repeated_tape(&mut rng2, 300)).unwrap();
        write(
            "parse_ir",
            format!("rerolled-{k}.tape"),
            tape.to_string().as_bytes(),
        );
    }
    let corner_cases = [
        "tape inputs=1 params=0\n%0 = input 0\noutputs %0\n",
        "tape inputs=0 params=0\noutputs\n",
        "; comment\n\ntape inputs=2 params=1 ; header\n%0 = input 0\n%1 = input 1\n%2 = param 0\n\
         %3 = const -NaN\n%4 = const 5e-324\n%5 = const -inf\n%6 = const -0.0\n%7 = powi %0 -2147483648\n\
         %8 = powi %1 2147483647\n%9 = lt %0 %1\n%10 = guard %9 false\n%11 = select %9 %3 %4\n\
         %12 = mul_add %11 %2 %5\n%13 = copysign %6 %12\n%14 = signbit %3\noutputs %13 %14 %7 %8 %13\n",
        "tape inputs=4000000000 params=0\noutputs\n",
    ];
    for (k, text) in corner_cases.iter().enumerate() {
        text.parse::<Tape>().unwrap();
        write("parse_ir", format!("corner-{k}.tape"), text.as_bytes());
    }
    let mut dict =
        String::from("# Tokens of the tape text format, for parse_ir (-dict=fuzz/ir.dict).\n");
    let tokens = [
        "tape",
        "inputs=",
        "params=",
        "outputs",
        "%",
        " = ",
        "true",
        "false",
        "NaN",
        "-NaN",
        "inf",
        "-inf",
        "-0.0",
        "5e-324",
        "1e308",
        "2147483647",
        "-2147483648",
        "4294967295",
        ";",
        "\n",
        "arrays=[",
        " = loop trips=",
        " init=[",
        " invariants=[",
        " reads=[",
        " writes=[",
        "store ",
        "add ",
        "input[",
        "param[",
        "a0[",
        "a1[",
        " + 1*i0",
        " + -1*i1",
        " + 0*i2",
        " {\n",
        "}\n",
        "} checkpoint snapshots=",
        " states=[",
        "..",
        "]",
        ", ",
        "    ",
    ];
    for token in tokens {
        // libFuzzer's dictionaries escape bytes as \xNN.
        let escaped: String = token
            .bytes()
            .map(|b| match b {
                b' '..=b'~' if b != b'"' && b != b'\\' => char::from(b).to_string(),
                _ => format!("\\x{b:02X}"),
            })
            .collect();
        writeln!(dict, "\"{escaped}\"").unwrap();
    }
    for op in tapejit::ir::ALL_OPS
        .iter()
        .chain(&tapejit::ir::STRUCTURE_OPS)
    {
        writeln!(dict, "\"{}\"", op.name()).unwrap();
    }
    std::fs::write(root.join("ir.dict"), dict).unwrap();
}
