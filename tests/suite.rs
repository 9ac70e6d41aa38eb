//! The benchmark suite at its quick sizes: the traced tape computes the
//! native `f64` value bit for bit, and derivatives pass DESIGN.md's
//! `max_rel_err_fd` check (3 seeded directions, central differences).

mod common;

use common::{assert_same, dot, norm};
use tapejit::suite::{Case, SplitMix64};
use tapejit::{Engine, Function, Var};

/// Seed of the directions `v` of the finite-difference check.
const SEED_DIRECTIONS: u64 = 17;

/// The bound on `max_rel_err_fd` this suite holds to at the default input.
const MAX_REL_ERR_FD: f64 = 1e-6;

/// Traces a case, evaluated by the reference interpreter (compiling the
/// large cases' derived tapes with an unoptimised debug build of Cranelift
/// would take most of this file's time budget; JIT agreement is checked on
/// the small cases below).
fn trace(case: &Case) -> Function {
    let (x, p) = (case.default_input(), case.params());
    let mut f = Function::vector_with_params(&x, &p, |x, p| {
        let mut out = vec![Var::from(0.0); case.n_outputs()];
        case.eval(x, p, &mut out);
        out
    })
    .unwrap_or_else(|e| panic!("{case}: tracing failed: {e}"));
    f.set_engine(Engine::Interpreter);
    f
}

fn native(case: &Case, x: &[f64], p: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; case.n_outputs()];
    case.eval(x, p, &mut out);
    out
}

/// Three seeded directions, uniform in `[-1, 1)^n`.
fn directions(n: usize) -> Vec<Vec<f64>> {
    let mut rng = SplitMix64::new(SEED_DIRECTIONS);
    (0..3)
        .map(|_| (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect())
        .collect()
}

/// Step of the central differences along `v`: relative to the size of `x`.
fn step(x: &[f64]) -> f64 {
    let scale = x.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    1e-6 * scale
}

/// DESIGN.md's metric for a function `phi` (scalar: the case, or `w . F` for
/// vector cases) with gradient `g` at `x`: max over three seeded `v` of
/// `|g.v - FD_v| / (|g| |v|)`, `FD_v = (phi(x + h v) - phi(x - h v)) / 2h`.
fn max_rel_err_fd(phi: impl Fn(&[f64]) -> f64, x: &[f64], g: &[f64]) -> f64 {
    let h = step(x);
    directions(x.len())
        .iter()
        .map(|v| {
            let plus: Vec<f64> = x.iter().zip(v).map(|(a, b)| a + h * b).collect();
            let minus: Vec<f64> = x.iter().zip(v).map(|(a, b)| a - h * b).collect();
            let fd = (phi(&plus) - phi(&minus)) / (2.0 * h);
            (dot(g, v) - fd).abs() / (norm(g) * norm(v))
        })
        .fold(0.0, f64::max)
}

#[test]
fn interpreter_value_is_the_native_value_bitwise() {
    for case in Case::quick() {
        let f = trace(&case);
        let (x, p) = (case.default_input(), case.params());
        assert_eq!(f.n_inputs(), case.n_inputs(), "{case}");
        assert_eq!(f.n_params(), case.n_params(), "{case}");
        assert_eq!(
            f.tape().n_guards(),
            0,
            "{case}: suite functions never branch on values"
        );
        let want = native(&case, &x, &p);
        let mut out = vec![0.0; case.n_outputs()];
        f.with_params(&p).unwrap().eval(&x, &mut out).unwrap();
        assert_same(&format!("{case} value"), &out, &want);
        assert_same(
            &format!("{case} default_value"),
            &out,
            &case.default_value(),
        );
        // Away from the default input (the tape is not specialised to it).
        let x2: Vec<f64> = x.iter().map(|v| v * 0.75 + 0.125).collect();
        f.with_params(&p).unwrap().eval(&x2, &mut out).unwrap();
        assert_same(
            &format!("{case} value elsewhere"),
            &out,
            &native(&case, &x2, &p),
        );
    }
}

#[test]
fn scalar_case_gradients_match_finite_differences() {
    for case in Case::quick().into_iter().filter(|c| c.n_outputs() == 1) {
        let f = trace(&case);
        let (x, p) = (case.default_input(), case.params());
        let mut g = vec![0.0; x.len()];
        let y = f.with_params(&p).unwrap().gradient(&x, &mut g).unwrap();
        assert_same(
            &format!("{case} gradient value"),
            &[y],
            &native(&case, &x, &p),
        );
        assert!(
            g.iter().all(|d| d.is_finite()),
            "{case}: non-finite gradient"
        );
        assert!(norm(&g) > 0.0, "{case}: zero gradient");
        let err = max_rel_err_fd(|y| native(&case, y, &p)[0], &x, &g);
        println!("{case}: max_rel_err_fd = {err:e}");
        assert!(err <= MAX_REL_ERR_FD, "{case}: max_rel_err_fd = {err:e}");
    }
}

/// Past the quick size, gmm rolls into a loop nest whose inner loop
/// refills an array in each of its own iterations (scratch owned by a loop
/// below the root loop): the reverse transform must accept that (it once
/// refused it as a hazard) and get the gradient right.
#[test]
fn gmm_with_arrays_refilled_by_a_nested_loop_has_a_right_gradient() {
    let case: Case = "gmm:5,10,200".parse().unwrap();
    let f = trace(&case);
    assert!(f.tape().n_loops() > 1, "{case} was not rolled into a nest");
    let (x, p) = (case.default_input(), case.params());
    let mut g = vec![0.0; x.len()];
    f.with_params(&p).unwrap().gradient(&x, &mut g).unwrap();
    let err = max_rel_err_fd(|y| native(&case, y, &p)[0], &x, &g);
    assert!(err <= MAX_REL_ERR_FD, "{case}: max_rel_err_fd = {err:e}");
}

#[test]
fn broyden_vjp_and_jacobian_match_finite_differences() {
    for case in Case::quick().into_iter().filter(|c| c.n_outputs() > 1) {
        let f = trace(&case);
        let (x, p) = (case.default_input(), case.params());
        let (n, m) = (case.n_inputs(), case.n_outputs());
        let fp = f.with_params(&p).unwrap();
        // VJP with the case's seeded weights: the gradient of w . F.
        let w = case.vjp_weights();
        let mut wj = vec![0.0; n];
        fp.vjp(&x, &w, &mut wj).unwrap();
        let err = max_rel_err_fd(|y| dot(&w, &native(&case, y, &p)), &x, &wj);
        println!("{case}: VJP max_rel_err_fd = {err:e}");
        assert!(
            err <= MAX_REL_ERR_FD,
            "{case}: VJP max_rel_err_fd = {err:e}"
        );
        // Full Jacobian: each column against central differences along e_j.
        let mut jac = vec![0.0; m * n];
        fp.jacobian(&x, &mut jac).unwrap();
        let h = step(&x);
        for j in 0..n {
            let mut plus = x.clone();
            let mut minus = x.clone();
            plus[j] += h;
            minus[j] -= h;
            let (fp_, fm) = (native(&case, &plus, &p), native(&case, &minus, &p));
            for i in 0..m {
                let fd = (fp_[i] - fm[i]) / (2.0 * h);
                let d = jac[i * n + j];
                assert!(
                    (d - fd).abs() <= 1e-7 * (1.0 + d.abs()),
                    "{case}: J[{i}][{j}] = {d}, FD {fd}"
                );
            }
        }
        // Rows of the Jacobian are VJPs with unit weights; w^T J is the VJP.
        let wj_from_jac: Vec<f64> = (0..n)
            .map(|j| (0..m).map(|i| w[i] * jac[i * n + j]).sum())
            .collect();
        for (a, b) in wj.iter().zip(&wj_from_jac) {
            assert!(
                (a - b).abs() <= 1e-14 * (1.0 + b.abs()),
                "{case}: {a} vs {b}"
            );
        }
        // JVPs agree with the Jacobian's columns.
        for v in directions(n) {
            let mut jv = vec![0.0; m];
            fp.jvp(&x, &v, &mut jv).unwrap();
            for i in 0..m {
                let want = dot(&jac[i * n..(i + 1) * n], &v);
                assert!(
                    (jv[i] - want).abs() <= 1e-13 * (1.0 + want.abs()),
                    "{case}: jvp[{i}]"
                );
            }
        }
        // Broyden's Jacobian is tridiagonal: 3 - 4 x_i on the diagonal, -1 below, -2 above.
        for i in 0..m {
            for j in 0..n {
                let want = match j as isize - i as isize {
                    0 => 3.0 - 4.0 * x[i],
                    -1 => -1.0,
                    1 => -2.0,
                    _ => 0.0,
                };
                assert_eq!(jac[i * n + j], want, "{case}: J[{i}][{j}]");
            }
        }
    }
}

#[test]
fn jit_agrees_with_the_interpreter_on_small_cases() {
    for case in Case::quick() {
        let f = trace(&case);
        if f.tape().static_len() > 2000 {
            continue;
        }
        let (x, p) = (case.default_input(), case.params());
        let (n, m) = (case.n_inputs(), case.n_outputs());
        let interp = f.with_params(&p).unwrap().engine(Engine::Interpreter);
        let jit = f.with_params(&p).unwrap().engine(Engine::Jit);
        let (mut a, mut b) = (vec![0.0; m], vec![0.0; m]);
        interp.eval(&x, &mut a).unwrap();
        jit.eval(&x, &mut b).unwrap();
        assert_same(&format!("{case} JIT value"), &b, &a);
        let w = case.vjp_weights();
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        interp.vjp(&x, &w, &mut a).unwrap();
        jit.vjp(&x, &w, &mut b).unwrap();
        assert_same(&format!("{case} JIT VJP"), &b, &a);
        if m == 1 {
            let ya = interp.gradient(&x, &mut a).unwrap();
            let yb = jit.gradient(&x, &mut b).unwrap();
            assert_same(&format!("{case} JIT gradient"), &b, &a);
            assert_same(&format!("{case} JIT gradient value"), &[yb], &[ya]);
        }
    }
}
