//! Property tests over random expressions ([`common::Expr`]): the
//! interpreter agrees with native `f64` bit for bit, derivatives agree with
//! finite differences and with each other, and tapes survive a text round trip.
//!
//! The runner's seed is fixed (set `PROPTEST_RNG_SEED` to explore others,
//! `PROPTEST_CASES` to change the number of cases).

mod common;

use common::*;
use proptest::prelude::*;
use std::cell::Cell;
use tapejit::ad::{self, Seed};
use tapejit::{trace_scalar, Engine, Error, Function, Tape};

fn trace(e: &Expr, x: &[f64], p: &[f64]) -> Tape {
    trace_scalar(x, p, |x, p| e.eval(x, p)).expect("tracing an expression succeeds")
}

fn function(e: &Expr, x: &[f64], p: &[f64]) -> Function {
    Function::scalar_with_params(x, p, |x, p| e.eval(x, p)).expect("tracing succeeds")
}

fn point() -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
    (
        proptest::collection::vec(any_value(), NX),
        proptest::collection::vec(any_value(), NP),
    )
}

fn fails(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

/// (a) The traced tape, run by the interpreter, computes exactly what the
/// native `f64` function computes: at the trace point, and at any other point
/// where no guard fails. A guard-free expression never fails a guard. The
/// derived tapes (gradient, tangent, HVP) compute the same value too; so does
/// `Function` (optimized tape) on both engines, which agree exactly.
#[test]
fn interpreter_matches_native_bitwise() {
    let elsewhere = Cell::new(0u32);
    let guarded_elsewhere = Cell::new(0u32);
    runner(400)
        .run(
            &(any_expr(), point(), point()),
            |(e, (x0, p0), (x1, p1))| {
                let tape = trace(&e, &x0, &p0);
                prop_assert!(tape.verify().is_ok());
                let native = e.eval::<f64>(&x0, &p0);
                let got =
                    run(&tape, &x0, &p0).map_err(|err| fails(format!("at trace point: {err}")))?;
                prop_assert!(
                    same(got[0], native),
                    "at the trace point: tape {:?}, native {native:?}\n{tape}",
                    got[0]
                );
                for (what, derived) in [
                    ("gradient", ad::reverse(&tape, 0..NX, Seed::One).unwrap()),
                    ("tangent", ad::forward(&tape, 0..NX).unwrap()),
                    (
                        "hvp",
                        ad::forward(&ad::reverse(&tape, 0..NX, Seed::One).unwrap(), 0..NX).unwrap(),
                    ),
                ] {
                    prop_assert!(derived.verify().is_ok(), "{what} tape verifies");
                    let inputs: Vec<f64> = x0.iter().chain(&x0).copied().collect();
                    let out = run(&derived, &inputs[..derived.n_inputs()], &p0)
                        .map_err(|err| fails(format!("{what} tape at trace point: {err}")))?;
                    prop_assert!(
                        same(out[0], native),
                        "{what} tape value {:?}, native {native:?}",
                        out[0]
                    );
                }
                // Function (optimized tape, JIT): the same bits as the traced
                // tape, and the same guard outcome; its JIT and interpreter
                // agree exactly, guard failures included.
                let f = Function::from_tape(tape.clone()).unwrap();
                for (x, p) in [(&x0, &p0), (&x1, &p1)] {
                    let eval = |engine| {
                        let mut out = [0.0];
                        let fp = f.with_params(p).unwrap().engine(engine);
                        fp.eval(x, &mut out).map(|()| out[0])
                    };
                    let (interp, jit) = (eval(Engine::Interpreter), eval(Engine::Jit));
                    match (&interp, &jit) {
                        (Ok(a), Ok(b)) => {
                            prop_assert!(same(*a, *b), "JIT {b:?}, interpreter {a:?}")
                        }
                        (a, b) => prop_assert_eq!(a, b),
                    }
                    match (run(&tape, x, p), jit) {
                        (Ok(a), Ok(b)) => {
                            prop_assert!(
                                same(a[0], b),
                                "optimized {b:?}, traced {:?}\n{tape}",
                                a[0]
                            )
                        }
                        (Err(Error::GuardFailed { .. }), Err(Error::GuardFailed { .. })) => {}
                        (a, b) => {
                            return Err(fails(format!("traced {a:?}, optimized {b:?}\n{tape}")))
                        }
                    }
                }
                let native = e.eval::<f64>(&x1, &p1);
                match run(&tape, &x1, &p1) {
                    Ok(out) => {
                        elsewhere.set(elsewhere.get() + 1);
                        if tape.n_guards() > 0 {
                            guarded_elsewhere.set(guarded_elsewhere.get() + 1);
                        }
                        prop_assert!(
                            same(out[0], native),
                            "away from the trace point: tape {:?}, native {native:?}\n{tape}",
                            out[0]
                        );
                    }
                    Err(Error::GuardFailed { .. }) => {
                        prop_assert!(
                            e.has_guards(),
                            "a guard-free expression failed a guard\n{tape}"
                        )
                    }
                    Err(err) => return Err(fails(format!("unexpected error {err}"))),
                }
                Ok(())
            },
        )
        .unwrap();
    assert!(
        elsewhere.get() >= 150,
        "only {} points away from the trace point were compared",
        elsewhere.get()
    );
    assert!(
        guarded_elsewhere.get() >= 10,
        "only {} guarded tapes were evaluated elsewhere",
        guarded_elsewhere.get()
    );
}

/// (e) Printing a tape and parsing it back gives an equal tape that evaluates
/// identically; for traced, gradient and HVP tapes.
#[test]
fn text_round_trip() {
    runner(200)
        .run(
            &(any_expr(), point(), point()),
            |(e, (x0, p0), (x1, p1))| {
                let tape = trace(&e, &x0, &p0);
                let gradient = ad::reverse(&tape, 0..NX, Seed::One).unwrap();
                let hvp = ad::forward(&gradient, 0..NX).unwrap();
                for t in [&tape, &gradient, &hvp] {
                    let text = t.to_string();
                    let back: Tape = text
                        .parse()
                        .map_err(|err| fails(format!("{err}\n{text}")))?;
                    prop_assert_eq!(&back, t);
                    prop_assert_eq!(back.to_string(), text);
                    for (x, p) in [(&x0, &p0), (&x1, &p1)] {
                        let inputs: Vec<f64> = x.iter().chain(x.iter()).copied().collect();
                        let inputs = &inputs[..t.n_inputs()];
                        match (run(t, inputs, p), run(&back, inputs, p)) {
                            (Ok(a), Ok(b)) => {
                                for (u, v) in a.iter().zip(&b) {
                                    prop_assert!(same(*u, *v));
                                }
                            }
                            (Err(a), Err(b)) => prop_assert_eq!(a, b),
                            (a, b) => return Err(fails(format!("{a:?} vs {b:?}"))),
                        }
                    }
                }
                Ok(())
            },
        )
        .unwrap();
}

/// Counts outcomes of derivative checks and insists that enough were compared.
#[derive(Default)]
struct Tally {
    agrees: Cell<u32>,
    skipped: Cell<u32>,
    nonfinite: Cell<u32>,
}

impl Tally {
    fn record(&self, c: FdCheck) -> Result<(), TestCaseError> {
        match c {
            FdCheck::Agrees => self.agrees.set(self.agrees.get() + 1),
            FdCheck::Skipped => self.skipped.set(self.skipped.get() + 1),
            FdCheck::Disagrees(msg) => return Err(fails(msg)),
        }
        Ok(())
    }
    fn nonfinite(&self) {
        self.nonfinite.set(self.nonfinite.get() + 1);
    }
    fn assert_enough(&self, what: &str, cases: u32) {
        let (a, s, n) = (self.agrees.get(), self.skipped.get(), self.nonfinite.get());
        println!(
            "{what}: {a} compared, {s} skipped (not smooth at FD scale), {n} non-finite derivative"
        );
        assert!(
            a * 10 >= cases * 6,
            "{what}: only {a} of {cases} cases compared ({s} skipped, {n} non-finite)"
        );
        assert!(
            n * 20 <= cases,
            "{what}: {n} of {cases} derivatives were not finite"
        );
    }
}

/// Step for central differences of smooth expressions on `[-2, 2]`.
const H: f64 = 1e-4;

/// (b) The reverse gradient agrees with central differences along random
/// directions, wherever finite differences show the function is smooth.
#[test]
fn gradient_matches_finite_differences() {
    let tally = Tally::default();
    let cases = 300;
    runner(cases)
        .run(
            &(smooth_expr(), smooth_point(), direction()),
            |(e, (x, p), v)| {
                let f = function(&e, &x, &p);
                let fp = f.with_params(&p).unwrap();
                let mut g = vec![0.0; NX];
                let y = fp
                    .gradient(&x, &mut g)
                    .map_err(|err| fails(err.to_string()))?;
                prop_assert!(same(y, e.eval::<f64>(&x, &p)));
                // The default engine (JIT for small tapes) and the interpreter agree bitwise.
                let mut gi = vec![0.0; NX];
                let yi = fp
                    .engine(Engine::Interpreter)
                    .gradient(&x, &mut gi)
                    .unwrap();
                assert_same("gradient, JIT vs interpreter", &g, &gi);
                assert_same("value, JIT vs interpreter", &[y], &[yi]);
                if !g.iter().all(|d| d.is_finite()) {
                    tally.nonfinite();
                    return Ok(());
                }
                let mut value =
                    |y: &[f64]| fp.value(y).ok().filter(|v| v.is_finite()).map(|v| vec![v]);
                // Scale: the terms the gradient sums (cancellation leaves a
                // rounding error relative to them, not to g.v).
                let scale = jvp_magnitude(f.tape(), &x, &p, &v);
                let c = check_fd(&mut value, &x, &v, H, &[dot(&g, &v)], &scale, 1e-6);
                tally.record(c)
            },
        )
        .unwrap();
    tally.assert_enough("gradient vs FD", cases);
}

/// (c) The forward JVP equals the reverse gradient dotted with `v`, up to the
/// rounding of two different accumulation orders: DESIGN.md's bound for
/// derivatives of two different tapes, `|jvp - g.v| <= 8 eps A`, where `A`
/// is the tangent tape evaluated on absolute values at `|v|`. Both tapes use
/// the same partials (bitwise: the same rules on the same primal values), so
/// they differ only in the order of the products and sums of the chain rule.
#[test]
fn jvp_matches_gradient_dot_direction() {
    let compared = Cell::new(0u32);
    let worst = Cell::new(0.0f64);
    let cases = 300;
    runner(cases)
        .run(
            &(smooth_expr(), smooth_point(), direction()),
            |(e, (x, p), v)| {
                let f = function(&e, &x, &p);
                let fp = f.with_params(&p).unwrap();
                let mut g = vec![0.0; NX];
                fp.gradient(&x, &mut g).unwrap();
                let mut jv = [0.0];
                fp.jvp(&x, &v, &mut jv).unwrap();
                let gv = dot(&g, &v);
                let a = jvp_magnitude(f.tape(), &x, &p, &v)[0];
                if !(jv[0].is_finite() && gv.is_finite() && a.is_finite()) {
                    return Ok(());
                }
                compared.set(compared.get() + 1);
                let bound = 8.0 * f64::EPSILON * a;
                worst.set(worst.get().max((jv[0] - gv).abs() / (f64::EPSILON * a)));
                prop_assert!(
                    (jv[0] - gv).abs() <= bound,
                    "jvp {:e} vs g.v {gv:e}: difference {:e} > bound {bound:e} (A = {a:e})",
                    jv[0],
                    (jv[0] - gv).abs()
                );
                Ok(())
            },
        )
        .unwrap();
    println!("jvp vs g.v: worst |difference| / (eps A) = {}", worst.get());
    assert!(
        compared.get() * 10 >= cases * 8,
        "only {} compared",
        compared.get()
    );
}

/// (d) The Hessian-vector product agrees with central differences of the gradient.
#[test]
fn hvp_matches_finite_differences_of_the_gradient() {
    let tally = Tally::default();
    let cases = 250;
    runner(cases)
        .run(
            &(smooth_expr(), smooth_point(), direction()),
            |(e, (x, p), v)| {
                let f = function(&e, &x, &p);
                let fp = f.with_params(&p).unwrap();
                let mut hv = vec![0.0; NX];
                fp.hvp(&x, &v, &mut hv)
                    .map_err(|err| fails(err.to_string()))?;
                if !hv.iter().all(|d| d.is_finite()) {
                    tally.nonfinite();
                    return Ok(());
                }
                let mut gradient = |y: &[f64]| {
                    let mut g = vec![0.0; NX];
                    fp.gradient(y, &mut g).ok()?;
                    g.iter().all(|d| d.is_finite()).then_some(g)
                };
                let scale = hvp_magnitude(f.tape(), &x, &p, &v);
                let c = check_fd(&mut gradient, &x, &v, H, &hv, &scale, 1e-5);
                tally.record(c)
            },
        )
        .unwrap();
    tally.assert_enough("HVP vs FD of the gradient", cases);
}

/// (f) Second order by composing transforms both ways: forward over reverse
/// (`Function::hvp`) and reverse over forward (the gradient of `g(x).v`,
/// read from the tangent tape through `Seed::Inputs` weights `[0, 1]`) give
/// the same HVP; and the Hessian is symmetric.
#[test]
fn second_order_both_ways_and_symmetric_hessian() {
    let compared = Cell::new(0u32);
    let cases = 250;
    runner(cases)
        .run(&(smooth_expr(), smooth_point(), direction()), |(e, (x, p), v)| {
            let f = function(&e, &x, &p);
            let fp = f.with_params(&p).unwrap();
            let tape = f.tape();
            // Forward over reverse, built by hand: identical to Function::hvp.
            let for_rev = ad::forward(&ad::reverse(tape, 0..NX, Seed::One).unwrap(), 0..NX).unwrap();
            let xv: Vec<f64> = x.iter().chain(&v).copied().collect();
            let out = run(&for_rev, &xv, &p).unwrap();
            let hv1 = &out[NX + 2..];
            let mut hv = vec![0.0; NX];
            fp.hvp(&x, &v, &mut hv).unwrap();
            assert_same("Function::hvp vs forward(reverse)", &hv, hv1);
            // Reverse over forward.
            let rev_for = ad::reverse(&ad::forward(tape, 0..NX).unwrap(), 0..NX, Seed::Inputs).unwrap();
            let inputs: Vec<f64> = xv.iter().copied().chain([0.0, 1.0]).collect();
            let out = run(&rev_for, &inputs, &p).unwrap();
            let hv2 = &out[2..];
            let a = &hvp_magnitude(tape, &x, &p, &v);
            if !(hv1.iter().chain(hv2).chain(a).all(|d| d.is_finite())) {
                return Ok(());
            }
            compared.set(compared.get() + 1);
            for k in 0..NX {
                let tol = 1e-9 * (a[k] + hv1[k].abs());
                prop_assert!(
                    (hv1[k] - hv2[k]).abs() <= tol,
                    "component {k}: forward-over-reverse {:e}, reverse-over-forward {:e}, tolerance {tol:e}",
                    hv1[k],
                    hv2[k]
                );
            }
            // Symmetry of the Hessian, relative to the size of its entries.
            let mut h = vec![0.0; NX * NX];
            fp.hessian(&x, &mut h).unwrap();
            let big = h.iter().fold(0.0f64, |m, d| m.max(d.abs()));
            for i in 0..NX {
                for j in 0..i {
                    let (hij, hji) = (h[i * NX + j], h[j * NX + i]);
                    prop_assert!(
                        (hij - hji).abs() <= 1e-9 * big,
                        "H[{i}][{j}] = {hij:e}, H[{j}][{i}] = {hji:e}"
                    );
                }
            }
            Ok(())
        })
        .unwrap();
    assert!(
        compared.get() * 10 >= cases * 8,
        "only {} compared",
        compared.get()
    );
}

/// The sign of a NaN constant is observable (`copysign`), so the text form
/// keeps it: x86's default NaN (`0.0 / 0.0`, `(-1.0).sqrt()`) is negative.
#[test]
fn nan_constants_keep_their_sign_through_text() {
    use tapejit::{Float, Var};
    let tape = trace_scalar(&[1.0], &[], |x, _| {
        x[0].copysign(Var::from(-f64::NAN)) * 10.0 + x[0].copysign(Var::from(f64::NAN))
    })
    .unwrap();
    let text = tape.to_string();
    assert!(
        text.contains("const -NaN") && text.contains("const NaN"),
        "{text}"
    );
    let back: Tape = text.parse().unwrap();
    assert_eq!(back, tape);
    assert_eq!(run(&back, &[2.0], &[]).unwrap(), [-18.0]);
}

/// Derivatives with respect to a subrange of the inputs: the reverse
/// transform over `1..NX` gives exactly the full gradient's entries (the
/// same adjoint terms in the same order), the forward transform over `1..NX`
/// the full JVP with a zero first tangent (within the two-tape bound).
#[test]
fn derivatives_with_respect_to_some_inputs() {
    runner(200)
        .run(
            &(smooth_expr(), smooth_point(), direction()),
            |(e, (x, p), v)| {
                let tape = trace(&e, &x, &p);
                let full = run(&ad::reverse(&tape, 0..NX, Seed::One).unwrap(), &x, &p).unwrap();
                let part = run(&ad::reverse(&tape, 1..NX, Seed::One).unwrap(), &x, &p).unwrap();
                assert_same("reverse over 1..NX", &part[1..], &full[2..]);

                let mut v0 = v.clone();
                v0[0] = 0.0;
                let xv: Vec<f64> = x.iter().chain(&v0).copied().collect();
                let full = run(&ad::forward(&tape, 0..NX).unwrap(), &xv, &p).unwrap()[1];
                let xv: Vec<f64> = x.iter().chain(&v0[1..]).copied().collect();
                let part = run(&ad::forward(&tape, 1..NX).unwrap(), &xv, &p).unwrap()[1];
                let a = jvp_magnitude(&tape, &x, &p, &v0)[0];
                if full.is_finite() && part.is_finite() && a.is_finite() {
                    prop_assert!(
                        (full - part).abs() <= 8.0 * f64::EPSILON * a,
                        "{full:e} vs {part:e}"
                    );
                }
                Ok(())
            },
        )
        .unwrap();
}

/// A vector function of 2 to 4 random expressions: its Jacobian (by VJP
/// sweeps for 2 outputs, fewer than the 3 inputs; by the forward vector-mode
/// Jacobian tape for 3 or 4) has the scalar functions' gradients as rows, and
/// agrees with JVPs and with a VJP.
#[test]
fn vector_functions_jacobian_vjp_jvp_agree() {
    let compared = Cell::new(0u32);
    let cases = 150;
    let strategy = (
        proptest::collection::vec(smooth_expr(), 2..=4),
        smooth_point(),
        direction(),
        proptest::collection::vec(-2.0..2.0f64, 4),
    );
    runner(cases)
        .run(&strategy, |(es, (x, p), v, w)| {
            let m = es.len();
            let w = &w[..m];
            let f = Function::vector_with_params(&x, &p, |x, p| {
                es.iter().map(|e| e.eval(x, p)).collect()
            })
            .unwrap();
            let fp = f.with_params(&p).unwrap();
            let mut out = vec![0.0; m];
            fp.eval(&x, &mut out).unwrap();
            let native: Vec<f64> = es.iter().map(|e| e.eval(&x, &p)).collect();
            assert_same("vector value", &out, &native);
            let mut jac = vec![0.0; m * NX];
            fp.jacobian(&x, &mut jac).unwrap();
            // mag[j][i]: the size of the terms summed by J[i][j].
            let mag: Vec<Vec<f64>> = (0..NX)
                .map(|j| {
                    let mut ej = vec![0.0; NX];
                    ej[j] = 1.0;
                    jvp_magnitude(f.tape(), &x, &p, &ej)
                })
                .collect();
            let mut rows_ok = true;
            for (i, e) in es.iter().enumerate() {
                let fi = function(e, &x, &p);
                let mut g = vec![0.0; NX];
                let fi = fi.with_params(&p).unwrap().engine(Engine::Interpreter);
                fi.gradient(&x, &mut g).unwrap();
                for j in 0..NX {
                    let a = mag[j][i];
                    let (d, want) = (jac[i * NX + j], g[j]);
                    if !(d.is_finite() && want.is_finite() && a.is_finite()) {
                        rows_ok = false;
                        continue;
                    }
                    prop_assert!(
                        (d - want).abs() <= 8.0 * f64::EPSILON * a,
                        "m = {m}: J[{i}][{j}] = {d:e}, gradient {want:e}"
                    );
                }
            }
            // J v against the JVP, w^T J against the VJP.
            let mut jv = vec![0.0; m];
            fp.jvp(&x, &v, &mut jv).unwrap();
            let mut wj = vec![0.0; NX];
            fp.vjp(&x, w, &mut wj).unwrap();
            let a = jvp_magnitude(f.tape(), &x, &p, &v);
            let all: Vec<f64> = jac
                .iter()
                .chain(&jv)
                .chain(&wj)
                .chain(&a)
                .chain(mag.iter().flatten())
                .copied()
                .collect();
            if !rows_ok || !all.iter().all(|d| d.is_finite()) {
                return Ok(());
            }
            compared.set(compared.get() + 1);
            for i in 0..m {
                let want = dot(&jac[i * NX..(i + 1) * NX], &v);
                prop_assert!(
                    (jv[i] - want).abs() <= 16.0 * f64::EPSILON * a[i],
                    "m = {m}: (Jv)[{i}]: {:e} vs {want:e}",
                    jv[i]
                );
            }
            for j in 0..NX {
                let want: f64 = (0..m).map(|i| w[i] * jac[i * NX + j]).sum();
                let size: f64 = (0..m).map(|i| w[i].abs() * mag[j][i]).sum();
                let bound = 8.0 * (m as f64) * f64::EPSILON * size;
                prop_assert!(
                    (wj[j] - want).abs() <= bound,
                    "m = {m}: (w^T J)[{j}]: {:e} vs {want:e}",
                    wj[j]
                );
            }
            Ok(())
        })
        .unwrap();
    assert!(
        compared.get() * 10 >= cases * 7,
        "only {} compared",
        compared.get()
    );
}
