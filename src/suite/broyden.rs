//! The Broyden tridiagonal function (vector output).

use super::c;
use crate::Real;

/// The Broyden tridiagonal function, `n` inputs to `n` outputs (written into
/// `out`): with 1-based indices and `x_0 = x_{n+1} = 0`,
///
/// `F_i(x) = (3 - 2 x_i) x_i - x_{i-1} - 2 x_{i+1} + 1`.
///
/// It is the suite's vector-output case: its Jacobian is tridiagonal, so it
/// exercises Jacobian assembly and VJPs. The boundary terms are left out
/// instead of subtracting a zero, so the tape has no dead `- 0` operations.
///
/// # Panics
/// If `out.len() != x.len()`.
///
/// ```
/// use tapejit::suite::broyden;
/// let mut f = [0.0; 3];
/// broyden(&[-1.0; 3], &mut f);
/// assert_eq!(f, [-2.0, -1.0, -3.0]);
/// ```
pub fn broyden<T: Real>(x: &[T], out: &mut [T]) {
    assert_eq!(
        out.len(),
        x.len(),
        "broyden: out must have one entry per input"
    );
    let n = x.len();
    for i in 0..n {
        let xi = x[i];
        let mut f = (c::<T>(3.0) - xi * 2.0) * xi;
        if i > 0 {
            f -= x[i - 1];
        }
        if i + 1 < n {
            f -= x[i + 1] * 2.0;
        }
        out[i] = f + 1.0;
    }
}

/// The standard starting point: every `x_i = -1`.
pub fn broyden_default_input(n: usize) -> Vec<f64> {
    vec![-1.0; n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residual_elementwise() {
        // Arbitrary non-symmetric point so that a swapped neighbour shows.
        let x: Vec<f64> = (0..7).map(|i| 0.3 * i as f64 - 0.8).collect();
        let mut f = vec![0.0; x.len()];
        broyden(&x, &mut f);
        let n = x.len();
        for i in 0..n {
            let prev = if i == 0 { 0.0 } else { x[i - 1] };
            let next = if i + 1 == n { 0.0 } else { x[i + 1] };
            let want = (3.0 - 2.0 * x[i]) * x[i] - prev - 2.0 * next + 1.0;
            assert!((f[i] - want).abs() < 1e-14, "i={i}: {} vs {want}", f[i]);
        }
    }

    #[test]
    fn default_input_values() {
        let mut f = vec![0.0; 10];
        broyden(&broyden_default_input(10), &mut f);
        let mut want = vec![-1.0; 10];
        want[0] = -2.0;
        want[9] = -3.0;
        assert_eq!(f, want);
        let mut one = [0.0];
        broyden(&[-1.0], &mut one);
        assert_eq!(one, [-4.0]);
    }

    #[test]
    #[should_panic(expected = "one entry per input")]
    fn wrong_out_len_panics() {
        broyden(&[1.0, 2.0], &mut [0.0]);
    }
}
