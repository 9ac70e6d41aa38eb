//! The extended Rosenbrock function.

use crate::Real;

/// The extended (chained) Rosenbrock function
///
/// `f(x) = sum_{i=0}^{n-2} 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2`.
///
/// Its minimum is `0` at `x = (1, ..., 1)`. The suite starts from
/// [`rosenbrock_default_input`], the classic `(-1.2, 1, -1.2, 1, ...)`.
/// With fewer than two inputs the sum is empty and the result is `0`.
///
/// Each term is accumulated onto the previous one starting from the first
/// term (not from a zero), so the traced tape holds no `0 + t` that an exact
/// optimizer could not fold (`-0 + 0` is `+0`).
///
/// ```
/// use tapejit::suite::rosenbrock;
/// assert_eq!(rosenbrock(&[1.0, 1.0, 1.0]), 0.0);
/// assert!((rosenbrock(&[-1.2, 1.0]) - 24.2).abs() < 1e-12);
/// ```
pub fn rosenbrock<T: Real>(x: &[T]) -> T {
    let term = |a: T, b: T| {
        let t = b - a * a;
        let u = T::one() - a;
        t * t * 100.0 + u * u
    };
    let mut pairs = x.windows(2);
    let Some(first) = pairs.next() else {
        return T::zero();
    };
    let mut f = term(first[0], first[1]);
    for w in pairs {
        f += term(w[0], w[1]);
    }
    f
}

/// The classic starting point `(-1.2, 1, -1.2, 1, ...)` of length `n`:
/// even indices `-1.2`, odd indices `1`.
pub fn rosenbrock_default_input(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| if i % 2 == 0 { -1.2 } else { 1.0 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(x: &[f64]) -> f64 {
        let mut s = 0.0;
        for i in 0..x.len().saturating_sub(1) {
            s += 100.0 * (x[i + 1] - x[i] * x[i]).powi(2) + (1.0 - x[i]).powi(2);
        }
        s
    }

    #[test]
    fn known_values() {
        assert_eq!(rosenbrock(&[1.0; 1000]), 0.0);
        assert!((rosenbrock(&rosenbrock_default_input(2)) - 24.2).abs() < 1e-12);
        // Every pair of the classic start contributes 24.2 when going from
        // -1.2 to 1, and 100 (-1.2 - 1)^2 + 0 = 484 when going from 1 to -1.2.
        let x = rosenbrock_default_input(4);
        assert!((rosenbrock(&x) - (24.2 + 484.0 + 24.2)).abs() < 1e-10);
        assert_eq!(rosenbrock::<f64>(&[]), 0.0);
        assert_eq!(rosenbrock(&[3.0]), 0.0);
    }

    #[test]
    fn matches_reference() {
        for n in [2, 3, 10, 100, 1000] {
            let x = rosenbrock_default_input(n);
            let (a, b) = (rosenbrock(&x), reference(&x));
            assert!((a - b).abs() <= 1e-12 * b.abs(), "n={n}: {a} vs {b}");
        }
    }

    #[test]
    fn default_input_alternates() {
        assert_eq!(
            rosenbrock_default_input(5),
            vec![-1.2, 1.0, -1.2, 1.0, -1.2]
        );
    }
}
