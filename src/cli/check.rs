//! Derivatives against finite differences (`max_rel_err_fd`) and the
//! `tapejit check` subcommand.

use crate::error::Result;
use crate::suite::SplitMix64;
use crate::Function;

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
    /// Worst `max_rel_err_fd` over the points checked.
    pub max_rel_err_fd: f64,
    /// Whether the interpreter agreed bitwise with the reference evaluation
    /// (the native f64 run for suite cases; the same tape for tape files).
    pub matches_reference: bool,
    /// Points checked.
    pub points: usize,
}

/// Checks a function's scalarized gradient (`wᵀJ`) against finite
/// differences of `reference` at `points`, and its values against `reference`.
pub fn check_function(
    f: &Function,
    p: &[f64],
    w: &[f64],
    points: &[Vec<f64>],
    reference: &mut dyn FnMut(&[f64], &mut [f64]),
) -> Result<CheckReport> {
    let bound = f.with_params(p)?;
    let m = f.n_outputs();
    let mut report = CheckReport {
        max_rel_err_fd: 0.0,
        matches_reference: true,
        points: points.len(),
    };
    let mut out = vec![0.0; m];
    let mut expected = vec![0.0; m];
    let mut g = vec![0.0; f.n_inputs()];
    for x in points {
        bound.eval(x, &mut out)?;
        reference(x, &mut expected);
        report.matches_reference &= out
            .iter()
            .zip(&expected)
            .all(|(a, b)| crate::ir::semantics::same(*a, *b));
        bound.vjp(x, w, &mut g)?;
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
    fn exact_gradient_has_tiny_error_and_wrong_one_does_not() {
        let mut phi = |x: &[f64]| Ok(x[0] * x[0] + 3.0 * x[1]);
        let x = [0.7, -0.2];
        let good = max_rel_err_fd(&mut phi, &x, &[1.4, 3.0]).unwrap();
        assert!(good < 1e-9, "{good}");
        let bad = max_rel_err_fd(&mut phi, &x, &[1.4, -3.0]).unwrap();
        assert!(bad > 0.1, "{bad}");
    }
}
