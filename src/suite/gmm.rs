//! Gaussian-mixture log-likelihood with a Wishart prior (ADBench GMM).

use crate::rng::SplitMix64;
use crate::Real;

/// Seed of the GMM data points ([`gmm_points`]).
pub const SEED_GMM_POINTS: u64 = 1;
/// Seed of the GMM parameters ([`gmm_default_params`]).
pub const SEED_GMM_PARAMS: u64 = 2;

/// Number of GMM parameters (active inputs) for dimension `d` and `k`
/// components: `k + 2 k d + k d (d - 1) / 2` (alpha, mu, q, l).
pub fn gmm_param_len(d: usize, k: usize) -> usize {
    k + 2 * k * d + k * (d * d.saturating_sub(1) / 2)
}

/// Length of the scratch slice [`gmm_objective_with_scratch`] needs:
/// `k d + 2 k + d` (the `exp(q)` diagonals, one per-component constant, the
/// per-point terms of the logsumexp, and one centered point).
pub fn gmm_scratch_len(d: usize, k: usize) -> usize {
    k * d + 2 * k + d
}

/// The GMM objective of ADBench with `gamma = 1`, `m = 0` and the constant
/// terms dropped.
///
/// Allocates its scratch once per call and runs
/// [`gmm_objective_with_scratch`], which documents the formula and layouts;
/// use that one where no heap allocation is allowed (the native baseline).
///
/// ```
/// use tapejit::suite::{gmm_default_params, gmm_objective, gmm_points};
/// let (d, k, n) = (2, 5, 1000);
/// let f = gmm_objective(&gmm_default_params(d, k), &gmm_points(d, n), d, k);
/// assert!(f.is_finite());
/// ```
pub fn gmm_objective<T: Real>(params: &[T], points: &[T], d: usize, k: usize) -> T {
    let mut scratch = vec![T::zero(); gmm_scratch_len(d, k)];
    gmm_objective_with_scratch(params, points, d, k, &mut scratch)
}

/// The GMM objective (ADBench, `gamma = 1`, `m = 0`, constants dropped),
/// computed without allocating:
///
/// `f = sum_i logsumexp_j( alpha_j + sum(q_j) - 0.5 ||Q_j (x_i - mu_j)||^2 )
///      - n logsumexp(alpha) + 0.5 sum_j( ||exp(q_j)||^2 + ||l_j||^2 )`
///
/// where `Q_j` is lower triangular with diagonal `exp(q_j)` and strict lower
/// part `l_j` filled column by column: `l_j[0..d-1]` is column 0 (rows
/// `1..d`), the next `d - 2` values are column 1 (rows `2..d`), and so on, so
/// `Q_j[r][c] = l_j[c (2d - c - 1) / 2 + r - c - 1]` for `c < r`. `sum(q_j)`
/// is `log det Q_j`. `logsumexp(v) = m + ln(sum exp(v - m))` with
/// `m = max(v)` taken with `max`, so it never branches on a value.
///
/// Layouts:
/// - `params` (active, length [`gmm_param_len`]):
///   `[alpha (k), mu (k x d), q (k x d), l (k x d(d-1)/2)]`, each block
///   row-major by component (`mu_j = mu[j d .. (j + 1) d]`). Unlike ADBench's
///   `icf`, which interleaves `q_j` and `l_j` per component, q and l are two
///   separate blocks.
/// - `points` (passive data, length `n d`): `x_i = points[i d .. (i + 1) d]`.
/// - `scratch`: at least [`gmm_scratch_len`]`(d, k)` values, overwritten.
///
/// The arithmetic follows ADBench's `Qtimesx` order: row `r` of `Q_j c` is
/// `exp(q_jr) c_r` plus `Q_j[r][c] c_c` for columns `c = 0..r` in order. The
/// `exp(q_j)` and `alpha_j + sum(q_j)` are computed once per call, not per
/// point, as any sensible native implementation would.
///
/// # Panics
/// If `d` or `k` is zero or a slice has the wrong length.
pub fn gmm_objective_with_scratch<T: Real>(
    params: &[T],
    points: &[T],
    d: usize,
    k: usize,
    scratch: &mut [T],
) -> T {
    assert!(d >= 1 && k >= 1, "gmm: d and k must be at least 1");
    assert_eq!(params.len(), gmm_param_len(d, k), "gmm: params length");
    assert_eq!(points.len() % d, 0, "gmm: points length must be n * d");
    assert!(
        scratch.len() >= gmm_scratch_len(d, k),
        "gmm: scratch too short"
    );
    let n = points.len() / d;
    let tri = d * (d - 1) / 2;

    let (alpha, rest) = params.split_at(k);
    let (mu, rest) = rest.split_at(k * d);
    let (q, l) = rest.split_at(k * d);
    let (qdiag, rest) = scratch.split_at_mut(k * d);
    let (base, rest) = rest.split_at_mut(k);
    let (terms, rest) = rest.split_at_mut(k);
    let centered = &mut rest[..d];

    // Per component: exp(q_j), alpha_j + sum(q_j), and the prior's Frobenius norm.
    let mut prior = T::zero();
    for j in 0..k {
        let qj = &q[j * d..(j + 1) * d];
        let ej = &mut qdiag[j * d..(j + 1) * d];
        let mut sum_q = qj[0];
        for &v in &qj[1..] {
            sum_q += v;
        }
        for (e, &v) in ej.iter_mut().zip(qj) {
            *e = v.exp();
        }
        base[j] = alpha[j] + sum_q;
        let mut frob = sqnorm(ej);
        if tri > 0 {
            frob += sqnorm(&l[j * tri..(j + 1) * tri]);
        }
        prior = if j == 0 { frob } else { prior + frob };
    }

    let mut slse = T::zero();
    for (i, xi) in points.chunks_exact(d).enumerate() {
        for j in 0..k {
            let muj = &mu[j * d..(j + 1) * d];
            for ((c, &x), &m) in centered.iter_mut().zip(xi).zip(muj) {
                *c = x - m;
            }
            let sq = sq_q_times(
                &qdiag[j * d..(j + 1) * d],
                &l[j * tri..(j + 1) * tri],
                centered,
            );
            terms[j] = base[j] - sq * 0.5;
        }
        let lse = logsumexp(terms);
        slse = if i == 0 { lse } else { slse + lse };
    }

    slse - logsumexp(alpha) * n as f64 + prior * 0.5
}

/// `||Q c||^2` for `Q` lower triangular with diagonal `diag` and strict lower
/// part `ltri` (column by column), row by row so no output vector is needed.
fn sq_q_times<T: Real>(diag: &[T], ltri: &[T], c: &[T]) -> T {
    let d = c.len();
    let row = |r: usize| {
        let mut v = diag[r] * c[r];
        // Q[r][0] sits at r - 1; each later column starts d - col - 1 further
        // on and its row r is one closer to the top, hence the step.
        let mut idx = r.saturating_sub(1);
        for (col, &cc) in c[..r].iter().enumerate() {
            v += ltri[idx] * cc;
            idx += d - col - 2;
        }
        v
    };
    let first = row(0);
    let mut total = first * first;
    for r in 1..d {
        let v = row(r);
        total += v * v;
    }
    total
}

/// Sum of squares, accumulated from the first square (not from zero).
fn sqnorm<T: Real>(v: &[T]) -> T {
    let mut s = v[0] * v[0];
    for &x in &v[1..] {
        s += x * x;
    }
    s
}

/// `max(v) + ln(sum exp(v - max(v)))`, branch-free; `v` must be non-empty.
fn logsumexp<T: Real>(v: &[T]) -> T {
    let mut m = v[0];
    for &x in &v[1..] {
        m = m.max(x);
    }
    let mut s = (v[0] - m).exp();
    for &x in &v[1..] {
        s += (x - m).exp();
    }
    m + s.ln()
}

/// The suite's GMM data: `n` points in `R^d`, every coordinate uniform in
/// `[-1, 1)` from [`SplitMix64`] seed [`SEED_GMM_POINTS`] (= 1), drawn in
/// layout order (point by point), so the first points do not depend on `n`.
pub fn gmm_points(d: usize, n: usize) -> Vec<f64> {
    let mut rng = SplitMix64::new(SEED_GMM_POINTS);
    let mut v = Vec::with_capacity(n * d);
    rng.fill_uniform(&mut v, n * d, -1.0, 1.0);
    v
}

/// The suite's GMM starting parameters, in the layout of
/// [`gmm_objective_with_scratch`], from [`SplitMix64`] seed
/// [`SEED_GMM_PARAMS`] (= 2), drawn in layout order: alpha and mu uniform in
/// `[-1, 1)`, q and l uniform in `[-0.5, 0.5)`.
pub fn gmm_default_params(d: usize, k: usize) -> Vec<f64> {
    let mut rng = SplitMix64::new(SEED_GMM_PARAMS);
    let mut v = Vec::with_capacity(gmm_param_len(d, k));
    rng.fill_uniform(&mut v, k, -1.0, 1.0);
    rng.fill_uniform(&mut v, k * d, -1.0, 1.0);
    rng.fill_uniform(&mut v, k * d, -0.5, 0.5);
    rng.fill_uniform(&mut v, k * (d * d.saturating_sub(1) / 2), -0.5, 0.5);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ADBench's objective written plainly with an explicit dense `Q_j`,
    /// including the log-determinant terms, for (gamma = 1, m = 0, no constants).
    // Indexed loops on purpose: the reference mirrors the formula's subscripts.
    #[allow(clippy::needless_range_loop)]
    fn reference(params: &[f64], x: &[f64], d: usize, k: usize) -> f64 {
        let n = x.len() / d;
        let tri = d * (d - 1) / 2;
        let alpha = &params[..k];
        let mu = &params[k..k + k * d];
        let q = &params[k + k * d..k + 2 * k * d];
        let l = &params[k + 2 * k * d..];
        let lse = |v: &[f64]| {
            let m = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            m + v.iter().map(|t| (t - m).exp()).sum::<f64>().ln()
        };
        // Dense Q_j, filling the strict lower part column by column.
        let qmats: Vec<Vec<Vec<f64>>> = (0..k)
            .map(|j| {
                let mut m = vec![vec![0.0; d]; d];
                let mut idx = 0;
                for col in 0..d {
                    m[col][col] = q[j * d + col].exp();
                    for row in col + 1..d {
                        m[row][col] = l[j * tri + idx];
                        idx += 1;
                    }
                }
                m
            })
            .collect();
        let mut total = 0.0;
        for i in 0..n {
            let mut main = vec![0.0; k];
            for j in 0..k {
                let logdet: f64 = (0..d).map(|r| q[j * d + r]).sum();
                let mut sq = 0.0;
                for r in 0..d {
                    let mut acc = 0.0;
                    for col in 0..d {
                        acc += qmats[j][r][col] * (x[i * d + col] - mu[j * d + col]);
                    }
                    sq += acc * acc;
                }
                main[j] = alpha[j] + logdet - 0.5 * sq;
            }
            total += lse(&main);
        }
        total -= n as f64 * lse(alpha);
        for j in 0..k {
            let mut frob = 0.0;
            for r in 0..d {
                for col in 0..d {
                    frob += qmats[j][r][col].powi(2);
                }
            }
            total += 0.5 * frob;
        }
        total
    }

    #[test]
    fn matches_dense_reference() {
        for (d, k, n) in [(1, 1, 1), (1, 3, 7), (2, 5, 1000), (3, 2, 10), (10, 25, 50)] {
            let p = gmm_default_params(d, k);
            let x = gmm_points(d, n);
            assert_eq!(p.len(), gmm_param_len(d, k));
            let got = gmm_objective(&p, &x, d, k);
            let want = reference(&p, &x, d, k);
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                "(d,k,n)=({d},{k},{n}): {got} vs {want}"
            );
        }
    }

    #[test]
    fn lower_triangle_is_column_major() {
        // d = 3, one component, q = 0 (unit diagonal), l = [a, b, c] means
        // Q = [[1,0,0],[a,1,0],[b,c,1]]; put mu = 0, alpha = 0 and x = e_0, so
        // Q x = (1, a, b) and the point term is -0.5 (1 + a^2 + b^2).
        let (a, b, c) = (0.5, -0.25, 2.0);
        let mut p = vec![0.0; gmm_param_len(3, 1)];
        p[7..10].copy_from_slice(&[a, b, c]);
        let f = gmm_objective(&p, &[1.0, 0.0, 0.0], 3, 1);
        let prior = 0.5 * (3.0 + a * a + b * b + c * c);
        let want = -0.5 * (1.0 + a * a + b * b) + prior;
        assert!((f - want).abs() < 1e-15, "{f} vs {want}");
    }

    #[test]
    fn logsumexp_is_stable() {
        let v = [1000.0, 1000.0];
        assert!((logsumexp(&v) - (1000.0 + 2f64.ln())).abs() < 1e-12);
        let v = [-1000.0, 0.0];
        assert!((logsumexp(&v) - 0.0).abs() < 1e-12);
    }

    #[test]
    fn scratch_version_reuses_buffer() {
        let (d, k) = (2, 5);
        let p = gmm_default_params(d, k);
        let x = gmm_points(d, 100);
        let mut s = vec![f64::NAN; gmm_scratch_len(d, k)];
        let a = gmm_objective_with_scratch(&p, &x, d, k, &mut s);
        let b = gmm_objective_with_scratch(&p, &x, d, k, &mut s);
        assert_eq!(a.to_bits(), b.to_bits());
        assert_eq!(a.to_bits(), gmm_objective(&p, &x, d, k).to_bits());
    }

    #[test]
    fn seeded_data_is_prefix_stable_and_in_range() {
        let small = gmm_points(2, 10);
        let big = gmm_points(2, 1000);
        assert_eq!(small[..], big[..20]);
        assert!(big.iter().all(|v| (-1.0..1.0).contains(v)));
        let p = gmm_default_params(2, 5);
        assert!(p[..15].iter().all(|v| (-1.0..1.0).contains(v)));
        assert!(p[15..].iter().all(|v| (-0.5..0.5).contains(v)));
    }
}
