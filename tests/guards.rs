//! Guards: every way a traced value escapes (a comparison, an integer, an
//! `f64`, a class) is recorded and checked on later evaluations; branch-free
//! code (`select`, `cond_*`, `clamp`, `max`, `min`) never guards; `grad`
//! closures retrace when a guard fails.

mod common;

use common::same;
use num_traits::ToPrimitive;
use tapejit::{grad, trace_scalar, Error, Float, Function, Real, Tape};

fn run(tape: &Tape, x: &[f64]) -> tapejit::Result<f64> {
    Ok(common::run(tape, x, &[])?[0])
}

#[track_caller]
fn assert_guard_failed(r: tapejit::Result<impl std::fmt::Debug>, needles: &[&str]) -> String {
    match r {
        Err(e @ Error::GuardFailed { .. }) => {
            let msg = e.to_string();
            for n in needles {
                assert!(msg.contains(n), "{msg:?} should mention {n:?}");
            }
            msg
        }
        other => panic!("expected a guard failure, got {other:?}"),
    }
}

fn branchy<T: Real>(x: &[T]) -> T {
    if x[0] > T::zero() {
        x[0] * x[0]
    } else {
        -x[0] * 3.0
    }
}

#[test]
fn a_branch_traced_on_one_side_fails_on_the_other() {
    let f = Function::scalar(&[2.0], |x| branchy(x)).unwrap();
    assert_eq!(f.tape().n_guards(), 1);
    // Same side: fine, value and gradient correct.
    let mut g = [0.0];
    assert_eq!(f.gradient(&[5.0], &mut g).unwrap(), 25.0);
    assert_eq!(g, [10.0]);
    // Other side: every entry point reports the guard, naming it and its condition.
    let msg = assert_guard_failed(
        f.value(&[-1.0]),
        &["guard #0", "lt", "was true at trace time"],
    );
    assert!(
        msg.contains("retrace") || msg.contains("trace it again"),
        "{msg}"
    );
    assert_guard_failed(f.gradient(&[-1.0], &mut g), &["guard #0"]);
    assert_guard_failed(f.jvp(&[-1.0], &[1.0], &mut g), &["guard #0"]);
    assert_guard_failed(f.vjp(&[-1.0], &[1.0], &mut g), &["guard #0"]);
    assert_guard_failed(f.hvp(&[-1.0], &[1.0], &mut g), &["guard #0"]);
    assert_guard_failed(f.hessian(&[-1.0], &mut g), &["guard #0"]);
    // The boundary belongs to the else side (0 > 0 is false).
    assert_guard_failed(f.value(&[0.0]), &["guard #0"]);
    // NaN compares false: also the else side.
    assert_guard_failed(f.value(&[f64::NAN]), &["guard #0"]);

    // Traced on the else side: the guard expects false.
    let f = Function::scalar(&[-2.0], |x| branchy(x)).unwrap();
    assert_eq!(f.value(&[0.0]).unwrap(), -0.0);
    assert!(same(f.value(&[f64::NAN]).unwrap(), f64::NAN));
    assert_guard_failed(f.value(&[1.0]), &["was false at trace time"]);
    match f.value(&[1.0]) {
        Err(Error::GuardFailed { guard, instr, .. }) => {
            assert_eq!(guard, 0);
            assert_eq!(f.tape().insts()[instr as usize].op, tapejit::ir::Op::Guard);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_failing_guard_is_the_first_one_that_does_not_hold() {
    fn two<T: Real>(x: &[T]) -> T {
        let a = if x[0] < T::one() { x[0] } else { -x[0] };
        if x[1] < T::one() {
            a * x[1]
        } else {
            a + x[1]
        }
    }
    let f = Function::scalar(&[0.0, 0.0], |x| two(x)).unwrap();
    assert_eq!(f.tape().n_guards(), 2);
    assert!(matches!(
        f.value(&[0.5, 2.0]),
        Err(Error::GuardFailed { guard: 1, .. })
    ));
    assert!(matches!(
        f.value(&[2.0, 0.5]),
        Err(Error::GuardFailed { guard: 0, .. })
    ));
    assert!(matches!(
        f.value(&[2.0, 2.0]),
        Err(Error::GuardFailed { guard: 0, .. })
    ));
}

#[test]
fn grad_retraces_on_guard_failure_and_caches_both_sides() {
    let mut df = grad(|x| branchy(x));
    let mut g = [0.0];
    assert_eq!(df.call(&[3.0], &mut g).unwrap(), 9.0);
    assert_eq!((g, df.traces()), ([6.0], 1));
    assert_eq!(df.call(&[4.0], &mut g).unwrap(), 16.0);
    assert_eq!((g, df.traces()), ([8.0], 1));
    assert_eq!(df.call(&[-2.0], &mut g).unwrap(), 6.0);
    assert_eq!((g, df.traces()), ([-3.0], 2));
    // Both specializations are kept: going back and forth does not retrace.
    for (x, y, d) in [
        (5.0, 25.0, 10.0),
        (-1.0, 3.0, -3.0),
        (0.5, 0.25, 1.0),
        (0.0, -0.0, -3.0),
    ] {
        let got = df.call(&[x], &mut g).unwrap();
        assert!(same(got, branchy(&[x])), "value at {x}: {got}");
        assert_eq!((got, g[0]), (y, d), "at {x}");
    }
    assert_eq!(df.traces(), 2);
}

#[test]
fn grad_is_correct_across_many_branches() {
    // A piecewise function with one branch per integer: each new interval retraces once.
    fn steps<T: Real>(x: &[T]) -> T {
        let k = x[0].floor().to_i32().unwrap();
        x[0] * x[0] * c_of::<T>(k as f64) + x[1]
    }
    fn c_of<T: Real>(v: f64) -> T {
        <T as From<f64>>::from(v)
    }
    let mut df = grad(|x| steps(x));
    let mut g = [0.0; 2];
    let mut traces = 0;
    for k in -5..5 {
        for frac in [0.25, 0.75] {
            let x = [k as f64 + frac, 1.5];
            let y = df.call(&x, &mut g).unwrap();
            assert!(same(y, steps(&x)));
            assert_eq!(g, [2.0 * x[0] * k as f64, 1.0], "at {x:?}");
        }
        traces += 1;
        assert_eq!(df.traces(), traces, "one trace per interval");
    }
}

#[test]
fn indexing_by_an_escaped_integer_guards_the_index() {
    const TABLE: [f64; 4] = [10.0, 20.0, 30.0, 40.0];
    fn lookup<T: Real>(x: &[T]) -> T {
        let i = x[0].floor().to_usize().unwrap_or(0).min(3);
        x[1] * TABLE[i]
    }
    let tape = trace_scalar(&[1.5, 2.0], &[], |x, _| lookup(x)).unwrap();
    assert!(tape.n_guards() >= 1);
    // Same index: no failure, values bitwise native.
    for x in [[1.0, 2.0], [1.999, -3.0], [1.5, 0.25]] {
        assert_eq!(run(&tape, &x).unwrap(), lookup(&x));
    }
    // Another index: the guard fails.
    for x in [[2.0, 2.0], [0.999, 2.0], [-1.0, 2.0], [f64::NAN, 2.0]] {
        assert_guard_failed(run(&tape, &x), &["guard"]);
    }
    // Traced where to_usize is None (negative): stays valid while the integer part does.
    let tape = trace_scalar(&[-0.5, 2.0], &[], |x, _| lookup(x)).unwrap();
    assert_eq!(run(&tape, &[-0.75, 2.0]).unwrap(), lookup(&[-0.75, 2.0]));
    assert_guard_failed(run(&tape, &[-1.5, 2.0]), &["guard"]);
    assert_guard_failed(run(&tape, &[0.5, 2.0]), &["guard"]);
    // The grad closure retraces per index and gives the right table entry.
    let mut df = grad(|x| lookup(x));
    let mut g = [0.0; 2];
    for (x0, want) in [
        (0.5, 10.0),
        (2.5, 30.0),
        (0.25, 10.0),
        (3.5, 40.0),
        (9.0, 40.0),
    ] {
        df.call(&[x0, 1.0], &mut g).unwrap();
        assert_eq!(g, [0.0, want], "at {x0}");
    }
}

#[test]
fn branch_free_code_never_guards() {
    fn smooth<T: Real>(x: &[T]) -> T {
        let relu = T::select(x[0].cond_gt(T::zero()), x[0], T::zero());
        let leaky = T::select(x[1].cond_lt(T::zero()), x[1] * 0.01, x[1]);
        let flags =
            x[0].cond_le(x[1]) + x[0].cond_ge(x[1]) + x[0].cond_eq(x[1]) + x[0].cond_ne(x[1]);
        let clamped = x[0].clamp(<T as From<f64>>::from(-1.0), <T as From<f64>>::from(1.0));
        relu + leaky + flags + clamped + x[0].max(x[1]) + x[0].min(x[1]) + x[0].abs()
    }
    let f = Function::scalar(&[0.5, -0.5], |x| smooth(x)).unwrap();
    assert_eq!(f.tape().n_guards(), 0, "{}", f.tape());
    let mut g = [0.0; 2];
    for x in [
        [0.5, -0.5],
        [-0.5, 0.5],
        [2.0, 2.0],
        [-3.0, -4.0],
        [0.0, 0.0],
        [f64::NAN, 1.0],
        [f64::INFINITY, f64::NEG_INFINITY],
    ] {
        let y = f.gradient(&x, &mut g).unwrap();
        assert!(same(y, smooth(&x)), "at {x:?}: {y} vs {}", smooth(&x));
    }
    // Gradient on both sides of every kink, without retracing.
    let mut df = grad(|x| smooth(x));
    df.call(&[0.5, -0.5], &mut g).unwrap();
    // relu 1, clamp 1, max -> x0, abs 1; leaky on x1: 0.01, min -> x1.
    assert_eq!(g, [4.0, 1.01]);
    df.call(&[-2.0, 0.5], &mut g).unwrap();
    // relu 0, clamp 0, min -> x0, abs -1; leaky 1, max -> x1.
    assert_eq!(g, [0.0, 2.0]);
    assert_eq!(df.traces(), 1);
}

#[test]
fn escapes_record_guards() {
    // Each of these turns a traced value into a plain Rust value; each must
    // guard, so that evaluating where the answer differs fails.
    fn check(name: &str, tape: tapejit::Result<Tape>, same_side: &[f64], other_side: &[f64]) {
        let tape = tape.unwrap();
        assert!(tape.n_guards() >= 1, "{name} recorded no guard:\n{tape}");
        for &x in same_side {
            assert!(run(&tape, &[x]).is_ok(), "{name} at {x}");
        }
        for &x in other_side {
            assert!(
                matches!(run(&tape, &[x]), Err(Error::GuardFailed { .. })),
                "{name} at {x} should fail a guard"
            );
        }
    }
    let t = |f: for<'t> fn(&[tapejit::Var<'t>]) -> tapejit::Var<'t>, at: f64| {
        trace_scalar(&[at], &[], |x, _| f(x))
    };
    check(
        "is_nan",
        t(|x| if x[0].is_nan() { x[0] } else { x[0] * 2.0 }, 1.0),
        &[2.0, f64::INFINITY],
        &[f64::NAN],
    );
    check(
        "is_finite",
        t(|x| if x[0].is_finite() { x[0] } else { x[0] * 2.0 }, 1.0),
        &[-3.0],
        &[f64::INFINITY, f64::NAN],
    );
    check(
        "is_infinite",
        t(|x| if x[0].is_infinite() { x[0] } else { x[0] * 2.0 }, 1.0),
        &[-3.0, f64::NAN],
        &[f64::NEG_INFINITY],
    );
    check(
        "classify",
        t(
            |x| match x[0].classify() {
                std::num::FpCategory::Normal => x[0],
                _ => x[0] * 2.0,
            },
            1.0,
        ),
        &[-5.0, 1e300],
        &[0.0, 1e-310, f64::INFINITY, f64::NAN],
    );
    check(
        "is_normal",
        t(|x| if x[0].is_normal() { x[0] } else { -x[0] }, 1.0),
        &[2.0],
        &[0.0],
    );
    check(
        "is_sign_negative",
        t(|x| if x[0].is_sign_negative() { x[0] } else { -x[0] }, 1.0),
        &[0.0, 3.0],
        &[-0.0, -1.0],
    );
    check(
        "to_f64",
        t(|x| x[0] * x[0].to_f64().unwrap(), 2.0),
        &[2.0],
        &[2.0000000000000004, 3.0, f64::NAN],
    );
    check(
        "to_i64",
        t(|x| x[0] * (x[0].to_i64().unwrap() as f64), 2.5),
        &[2.0, 2.9],
        &[3.0, 1.9],
    );
    check(
        "integer_decode",
        t(|x| x[0] * (x[0].integer_decode().1 as f64), 2.5),
        &[2.5],
        &[3.0],
    );
    check(
        "partial_cmp",
        t(
            |x| match x[0].partial_cmp(&tapejit::Var::from(1.0)) {
                Some(std::cmp::Ordering::Less) => x[0],
                _ => x[0] * 2.0,
            },
            0.0,
        ),
        &[0.5, -7.0],
        &[1.0, 2.0, f64::NAN],
    );
    check(
        "partial_cmp equal",
        t(
            |x| match x[0].partial_cmp(&tapejit::Var::from(1.0)) {
                Some(std::cmp::Ordering::Equal) => x[0],
                _ => x[0] * 2.0,
            },
            1.0,
        ),
        &[1.0],
        &[0.5, 2.0, f64::NAN],
    );
    check(
        "==",
        t(
            |x| {
                if x[0] == tapejit::Var::from(1.0) {
                    x[0]
                } else {
                    -x[0]
                }
            },
            1.0,
        ),
        &[1.0],
        &[1.5, f64::NAN],
    );
    check(
        "== f64",
        t(|x| if x[0] == 3.0 { x[0] } else { -x[0] }, 1.0),
        &[1.0, 2.0],
        &[3.0],
    );
    check(
        "is_zero",
        t(
            |x| {
                if num_traits_is_zero(x[0]) {
                    x[0]
                } else {
                    -x[0]
                }
            },
            1.0,
        ),
        &[1.0],
        &[0.0, -0.0],
    );
    check(
        "max over f64 bounds",
        t(|x| if x[0] >= 2.0 { x[0] } else { -x[0] }, 1.0),
        &[1.0],
        &[2.0],
    );
}

fn num_traits_is_zero<T: Real>(x: T) -> bool {
    x.is_zero()
}

#[test]
fn guards_on_parameters() {
    // A branch on a passive parameter guards too: changing p across it fails.
    fn f<T: Real>(x: &[T], p: &[T]) -> T {
        if p[0] > T::zero() {
            x[0] * p[0]
        } else {
            x[0] - p[0]
        }
    }
    let func = Function::scalar_with_params(&[1.0], &[2.0], |x, p| f(x, p)).unwrap();
    assert_eq!(
        func.with_params(&[3.0]).unwrap().value(&[2.0]).unwrap(),
        6.0
    );
    let r = func.with_params(&[-3.0]).unwrap().value(&[2.0]);
    assert_guard_failed(r, &["guard #0"]);
    let mut df = tapejit::grad_with_params(|x, p| f(x, p));
    let mut g = [0.0];
    assert_eq!(df.call(&[2.0], &[3.0], &mut g).unwrap(), 6.0);
    assert_eq!(g, [3.0]);
    assert_eq!(df.call(&[2.0], &[-3.0], &mut g).unwrap(), 5.0);
    assert_eq!(g, [1.0]);
    assert_eq!(df.traces(), 2);
}
