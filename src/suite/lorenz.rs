//! The Lorenz system integrated with classic RK4.

use crate::{fold, Real};

/// Time step of [`lorenz_rk4`].
pub const LORENZ_DT: f64 = 0.001;

/// Default input `[x0, y0, z0, sigma, rho, beta] = [1, 1, 1, 10, 10, 8/3]`.
///
/// `rho = 10` (not the chaotic 28) so the orbit settles on a fixed point and
/// gradients stay finite and comparable at every horizon.
pub const LORENZ_DEFAULT_INPUT: [f64; 6] = [1.0, 1.0, 1.0, 10.0, 10.0, 8.0 / 3.0];

/// The Lorenz vector field `(sigma (y - x), x (rho - z) - y, x y - beta z)`.
fn field<T: Real>(s: [T; 3], sigma: T, rho: T, beta: T) -> [T; 3] {
    let [x, y, z] = s;
    [sigma * (y - x), x * (rho - z) - y, x * y - beta * z]
}

/// `s + k * h`, componentwise.
fn offset<T: Real>(s: [T; 3], k: [T; 3], h: f64) -> [T; 3] {
    [s[0] + k[0] * h, s[1] + k[1] * h, s[2] + k[2] * h]
}

/// One classic RK4 step of length [`LORENZ_DT`] of the Lorenz system:
///
/// `k1 = f(s)`, `k2 = f(s + dt/2 k1)`, `k3 = f(s + dt/2 k2)`, `k4 = f(s + dt k3)`,
/// `s' = s + (k1 + 2 k2 + 2 k3 + k4) dt/6`,
///
/// each line evaluated left to right, componentwise, with `dt/2` and `dt/6`
/// folded to `f64` constants. Public so that a caller can trace one step as a
/// loop body (e.g. with an explicit fold) instead of unrolling
/// [`lorenz_rk4`]; the result is bitwise the same.
pub fn lorenz_step<T: Real>(s: [T; 3], sigma: T, rho: T, beta: T) -> [T; 3] {
    const HALF: f64 = 0.5 * LORENZ_DT;
    const SIXTH: f64 = LORENZ_DT / 6.0;
    let k1 = field(s, sigma, rho, beta);
    let k2 = field(offset(s, k1, HALF), sigma, rho, beta);
    let k3 = field(offset(s, k2, HALF), sigma, rho, beta);
    let k4 = field(offset(s, k3, LORENZ_DT), sigma, rho, beta);
    let mut next = s;
    for i in 0..3 {
        next[i] = s[i] + (k1[i] + k2[i] * 2.0 + k3[i] * 2.0 + k4[i]) * SIXTH;
    }
    next
}

/// Integrates the Lorenz system
///
/// `x' = sigma (y - x)`, `y' = x (rho - z) - y`, `z' = x y - beta z`
///
/// from `(x0, y0, z0)` with `steps` classic RK4 steps of `dt = 0.001`
/// ([`lorenz_step`]) and returns `x^2 + y^2 + z^2` of the final state.
///
/// Input layout: `x = [x0, y0, z0, sigma, rho, beta]`; the suite's default is
/// [`LORENZ_DEFAULT_INPUT`]. With `steps = 0` it returns the squared norm of
/// the initial state.
///
/// # Panics
/// If `x.len() != 6`.
///
/// ```
/// use tapejit::suite::{lorenz_rk4, LORENZ_DEFAULT_INPUT};
/// let f = lorenz_rk4(&LORENZ_DEFAULT_INPUT, 1000);
/// assert!(f.is_finite());
/// ```
pub fn lorenz_rk4<T: Real>(x: &[T], steps: usize) -> T {
    assert_eq!(
        x.len(),
        6,
        "lorenz_rk4: inputs are [x0, y0, z0, sigma, rho, beta]"
    );
    let (sigma, rho, beta) = (x[3], x[4], x[5]);
    let mut s = [x[0], x[1], x[2]];
    for _ in 0..steps {
        s = lorenz_step(s, sigma, rho, beta);
    }
    s[0] * s[0] + s[1] * s[1] + s[2] * s[2]
}

/// [`lorenz_rk4`] written with the explicit loop API ([`crate::fold`]):
/// the same operations in the same order, so the same value bit for bit,
/// but a trace records one step as a loop body instead of `steps` copies.
///
/// ```
/// use tapejit::suite::{lorenz_rk4, lorenz_rk4_fold, LORENZ_DEFAULT_INPUT};
/// let x = LORENZ_DEFAULT_INPUT;
/// assert_eq!(lorenz_rk4_fold(&x, 1000), lorenz_rk4(&x, 1000));
/// let tape = tapejit::trace_scalar(&x, &[], |x, _| lorenz_rk4_fold(x, 100_000)).unwrap();
/// assert!(tape.static_len() < 1000);
/// ```
///
/// # Panics
/// If `x.len() != 6`.
pub fn lorenz_rk4_fold<T: Real>(x: &[T], steps: usize) -> T {
    assert_eq!(
        x.len(),
        6,
        "lorenz_rk4_fold: inputs are [x0, y0, z0, sigma, rho, beta]"
    );
    let (sigma, rho, beta) = (x[3], x[4], x[5]);
    let s = fold(steps, &x[..3], &[], |s, _| {
        lorenz_step([s[0], s[1], s[2]], sigma, rho, beta).to_vec()
    });
    s[0] * s[0] + s[1] * s[1] + s[2] * s[2]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One RK4 step written out by hand, independently of `field`/`offset`.
    fn hand_step(x: f64, y: f64, z: f64, sg: f64, r: f64, b: f64) -> (f64, f64, f64) {
        let h = 0.001;
        let k1x = sg * (y - x);
        let k1y = x * (r - z) - y;
        let k1z = x * y - b * z;
        let (x2, y2, z2) = (x + h / 2.0 * k1x, y + h / 2.0 * k1y, z + h / 2.0 * k1z);
        let k2x = sg * (y2 - x2);
        let k2y = x2 * (r - z2) - y2;
        let k2z = x2 * y2 - b * z2;
        let (x3, y3, z3) = (x + h / 2.0 * k2x, y + h / 2.0 * k2y, z + h / 2.0 * k2z);
        let k3x = sg * (y3 - x3);
        let k3y = x3 * (r - z3) - y3;
        let k3z = x3 * y3 - b * z3;
        let (x4, y4, z4) = (x + h * k3x, y + h * k3y, z + h * k3z);
        let k4x = sg * (y4 - x4);
        let k4y = x4 * (r - z4) - y4;
        let k4z = x4 * y4 - b * z4;
        (
            x + h / 6.0 * (k1x + 2.0 * k2x + 2.0 * k3x + k4x),
            y + h / 6.0 * (k1y + 2.0 * k2y + 2.0 * k3y + k4y),
            z + h / 6.0 * (k1z + 2.0 * k2z + 2.0 * k3z + k4z),
        )
    }

    #[test]
    fn one_step_matches_hand_expansion() {
        for inp in [
            LORENZ_DEFAULT_INPUT,
            [0.3, -1.7, 2.5, 10.0, 28.0, 8.0 / 3.0],
            [-2.0, 0.5, 0.1, 3.0, 1.5, 0.7],
        ] {
            let (x, y, z) = hand_step(inp[0], inp[1], inp[2], inp[3], inp[4], inp[5]);
            let want = x * x + y * y + z * z;
            let got = lorenz_rk4(&inp, 1);
            assert!(
                (got - want).abs() <= 4.0 * f64::EPSILON * want,
                "{got} vs {want}"
            );
        }
    }

    #[test]
    fn zero_steps_is_initial_norm() {
        assert_eq!(lorenz_rk4(&LORENZ_DEFAULT_INPUT, 0), 3.0);
    }

    #[test]
    fn long_run_is_finite_and_near_fixed_point() {
        let f = lorenz_rk4(&LORENZ_DEFAULT_INPUT, 1000);
        assert!(f.is_finite());
        // rho = 10, beta = 8/3: fixed points (+-sqrt(beta (rho - 1)), same, rho - 1),
        // squared norm 2 * 24 + 81 = 129; by t = 100 the orbit is on it.
        let g = lorenz_rk4(&LORENZ_DEFAULT_INPUT, 100_000);
        assert!((g - 129.0).abs() < 1e-6, "{g}");
    }
}
