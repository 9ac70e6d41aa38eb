//! Derivatives against finite differences (`max_rel_err_fd`) and the
//! `tapejit check` subcommand.

use crate::error::Result;
use crate::suite::SplitMix64;
use crate::{Engine, Function};

/// Seed of the random directions of [`max_rel_err_fd`].
pub const FD_DIRECTION_SEED: u64 = 7;

/// Max over 3 seeded directions `v` of `|g·v - FD_v| / (|g| |v|)`, where
/// `FD_v` is the central difference of `phi` along `v` at `x`.
///
/// The step is `cbrt(eps) · max(1, |x|∞)`, balancing truncation and rounding
/// error for central differences. With `g = 0` the denominator is `|v|`.
pub fn max_rel_err_fd(
    phi: &mut dyn FnMut(&[f64]) -> Result<f64>,
    x: &[f64],
    g: &[f64],
) -> Result<f64> {
    let mut rng = SplitMix64::new(FD_DIRECTION_SEED);
    let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
    let scale = x.iter().fold(1.0f64, |m, a| m.max(a.abs()));
    let h = f64::EPSILON.cbrt() * scale;
    let mut worst = 0.0f64;
    let mut probe = vec![0.0; x.len()];
    for _ in 0..3 {
        let v: Vec<f64> = (0..x.len()).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let vnorm = norm(&v);
        let step = h / v
            .iter()
            .fold(0.0f64, |m, a| m.max(a.abs()))
            .max(f64::MIN_POSITIVE);
        let mut at = |sign: f64| {
            for ((p, a), d) in probe.iter_mut().zip(x).zip(&v) {
                *p = a + sign * step * d;
            }
            phi(&probe)
        };
        let fd = (at(1.0)? - at(-1.0)?) / (2.0 * step);
        let gv: f64 = g.iter().zip(&v).map(|(a, b)| a * b).sum();
        let gnorm = norm(g);
        let denom = if gnorm > 0.0 { gnorm * vnorm } else { vnorm };
        worst = worst.max((gv - fd).abs() / denom);
    }
    Ok(worst)
}

/// What `tapejit check` found for one function.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    /// Worst `max_rel_err_fd` over the points checked (of the interpreted
    /// scalarized gradient `wᵀJ`).
    pub max_rel_err_fd: f64,
    /// Whether the interpreter agreed bitwise with the reference evaluation
    /// (the native f64 run for suite cases; the same tape for tape files).
    pub matches_reference: bool,
    /// Points checked.
    pub points: usize,
    /// Max `|interpreter - JIT|` over the outputs at every point (0 when
    /// both are NaN, infinite when only one is).
    pub jit_max_abs_diff_value: f64,
    /// Max `|interpreter - JIT|` over the scalarized gradient `wᵀJ`.
    pub jit_max_abs_diff_grad: f64,
    /// Whether the JIT agreed with the interpreter bitwise on every value
    /// and gradient entry (DESIGN.md "Semantics": both NaN counts as equal).
    pub jit_bitwise: bool,
}

/// `|a - b|`, with two NaNs equal and one NaN infinitely far.
fn abs_diff(a: f64, b: f64) -> f64 {
    if crate::ir::semantics::same(a, b) {
        0.0
    } else if a.is_nan() || b.is_nan() {
        f64::INFINITY
    } else {
        (a - b).abs()
    }
}

/// Compares two engines' outputs: (max abs difference, bitwise equal).
fn compare(a: &[f64], b: &[f64]) -> (f64, bool) {
    a.iter().zip(b).fold((0.0f64, true), |(m, eq), (x, y)| {
        (
            m.max(abs_diff(*x, *y)),
            eq && crate::ir::semantics::same(*x, *y),
        )
    })
}

/// Checks a function's scalarized gradient (`wᵀJ`) against finite
/// differences of `reference` at `points`, its interpreted values against
/// `reference`, and the JIT against the interpreter (values and `wᵀJ`).
pub fn check_function(
    f: &Function,
    p: &[f64],
    w: &[f64],
    points: &[Vec<f64>],
    reference: &mut dyn FnMut(&[f64], &mut [f64]),
) -> Result<CheckReport> {
    let bound = f.with_params(p)?;
    let (interp, jit) = (bound.engine(Engine::Interpreter), bound.engine(Engine::Jit));
    let m = f.n_outputs();
    let mut report = CheckReport {
        max_rel_err_fd: 0.0,
        matches_reference: true,
        points: points.len(),
        jit_max_abs_diff_value: 0.0,
        jit_max_abs_diff_grad: 0.0,
        jit_bitwise: true,
    };
    let mut out = vec![0.0; m];
    let mut jit_out = vec![0.0; m];
    let mut expected = vec![0.0; m];
    let mut g = vec![0.0; f.n_inputs()];
    let mut jit_g = vec![0.0; f.n_inputs()];
    for x in points {
        interp.eval(x, &mut out)?;
        reference(x, &mut expected);
        report.matches_reference &= compare(&out, &expected).1;
        interp.vjp(x, w, &mut g)?;
        jit.eval(x, &mut jit_out)?;
        jit.vjp(x, w, &mut jit_g)?;
        let (dv, same_v) = compare(&out, &jit_out);
        let (dg, same_g) = compare(&g, &jit_g);
        report.jit_max_abs_diff_value = report.jit_max_abs_diff_value.max(dv);
        report.jit_max_abs_diff_grad = report.jit_max_abs_diff_grad.max(dg);
        report.jit_bitwise &= same_v && same_g;
        let mut phi = |y: &[f64]| -> Result<f64> {
            let mut o = vec![0.0; m];
            reference(y, &mut o);
            Ok(o.iter().zip(w).map(|(a, b)| a * b).sum())
        };
        let err = max_rel_err_fd(&mut phi, x, &g)?;
        report.max_rel_err_fd = report.max_rel_err_fd.max(err);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_agree_on_a_suite_case() {
        let case = crate::suite::Case::Broyden { n: 6 };
        let f = case.function().unwrap();
        let p = case.params();
        let mut reference = |x: &[f64], out: &mut [f64]| case.eval(x, &p, out);
        let r = check_function(
            &f,
            &p,
            &case.vjp_weights(),
            &[case.default_input()],
            &mut reference,
        )
        .unwrap();
        assert!(r.jit_bitwise && r.matches_reference, "{r:?}");
        assert_eq!(
            (r.jit_max_abs_diff_value, r.jit_max_abs_diff_grad),
            (0.0, 0.0)
        );
        assert!(r.max_rel_err_fd < 1e-8, "{r:?}");
    }

    #[test]
    fn nan_differences() {
        assert_eq!(abs_diff(f64::NAN, -f64::NAN), 0.0);
        assert_eq!(abs_diff(f64::NAN, 1.0), f64::INFINITY);
        assert_eq!(compare(&[1.0, 2.0], &[1.0, 2.5]), (0.5, false));
    }

    #[test]
    fn exact_gradient_has_tiny_error_and_wrong_one_does_not() {
        let mut phi = |x: &[f64]| Ok(x[0] * x[0] + 3.0 * x[1]);
        let x = [0.7, -0.2];
        let good = max_rel_err_fd(&mut phi, &x, &[1.4, 3.0]).unwrap();
        assert!(good < 1e-9, "{good}");
        let bad = max_rel_err_fd(&mut phi, &x, &[1.4, -3.0]).unwrap();
        assert!(bad > 0.1, "{bad}");
    }
}
