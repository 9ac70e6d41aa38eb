//! A small dense network's training loss.

use crate::rng::SplitMix64;
use crate::Real;

/// Inputs per sample of [`mlp`].
pub const MLP_INPUTS: usize = 32;
/// Hidden (tanh) units of [`mlp`].
pub const MLP_HIDDEN: usize = 64;
/// Samples in the fixed batch of [`mlp`].
pub const MLP_BATCH: usize = 16;
/// Number of weights and biases (active inputs) of [`mlp`]:
/// `64 * 32 + 64 + 64 + 1 = 2177`.
pub const MLP_N_WEIGHTS: usize = MLP_HIDDEN * MLP_INPUTS + MLP_HIDDEN + MLP_HIDDEN + 1;
/// Length of the passive data of [`mlp`]: `16 * 32` inputs then `16` targets.
pub const MLP_N_DATA: usize = MLP_BATCH * MLP_INPUTS + MLP_BATCH;
/// Seed of the weights ([`mlp_default_weights`]).
pub const SEED_MLP_WEIGHTS: u64 = 3;
/// Seed of the batch and targets ([`mlp_data`]).
pub const SEED_MLP_DATA: u64 = 4;

/// Mean squared error of a 32 -> 64 (tanh) -> 1 dense network on a batch of
/// 16 samples:
///
/// `h_sj = tanh(b1_j + sum_i W1_ji x_si)`, `y_s = b2 + sum_j w2_j h_sj`,
/// `f = (1/16) sum_s (y_s - t_s)^2`,
///
/// each sum accumulated left to right onto its bias (`b1_j`, `b2`). Each
/// hidden unit is folded into `y_s` as soon as it is computed, so no hidden
/// vector is stored and nothing is allocated.
///
/// Layouts:
/// - `weights` (active, [`MLP_N_WEIGHTS`] = 2177):
///   `[W1 (64 x 32, row-major: W1_ji at j*32 + i), b1 (64), w2 (64), b2 (1)]`.
/// - `data` (passive, [`MLP_N_DATA`] = 528): the inputs `x` (16 x 32,
///   row-major: `x_si` at `s*32 + i`), then the 16 targets `t`.
///
/// # Panics
/// If a slice has the wrong length.
///
/// ```
/// use tapejit::suite::{mlp, mlp_data, mlp_default_weights};
/// let f = mlp(&mlp_default_weights(), &mlp_data());
/// assert!(f > 0.0);
/// ```
pub fn mlp<T: Real>(weights: &[T], data: &[T]) -> T {
    assert_eq!(weights.len(), MLP_N_WEIGHTS, "mlp: weights length");
    assert_eq!(data.len(), MLP_N_DATA, "mlp: data length");
    network(weights, data, MLP_INPUTS, MLP_HIDDEN, MLP_BATCH)
}

/// The network of [`mlp`] at any size: `inputs -> hidden (tanh) -> 1` on a
/// batch of `batch` samples, mean squared error, the same layouts (slices
/// of the lengths these imply; [`mlp`] checks them).
pub fn network<T: Real>(
    weights: &[T],
    data: &[T],
    inputs: usize,
    hidden: usize,
    batch: usize,
) -> T {
    let (w1, rest) = weights.split_at(hidden * inputs);
    let (b1, rest) = rest.split_at(hidden);
    let (w2, b2) = rest.split_at(hidden);
    let b2 = b2[0];
    let (xs, targets) = data.split_at(batch * inputs);

    let mut loss = T::zero();
    for (s, (x, &t)) in xs.chunks_exact(inputs).zip(targets).enumerate() {
        let mut y = b2;
        for ((row, &bj), &w2j) in w1.chunks_exact(inputs).zip(b1).zip(w2) {
            let mut z = bj;
            for (&w, &xi) in row.iter().zip(x) {
                z += w * xi;
            }
            y += w2j * z.tanh();
        }
        let e = y - t;
        loss = if s == 0 { e * e } else { loss + e * e };
    }
    loss / batch as f64
}

/// The suite's starting weights, in the layout of [`mlp`], from
/// [`SplitMix64`] seed [`SEED_MLP_WEIGHTS`] (= 3), drawn in layout order:
/// each layer's weights and bias uniform in `[-1/sqrt(fan_in), 1/sqrt(fan_in))`
/// (the usual default initialisation), i.e. W1 and b1 in `±1/sqrt(32)`,
/// w2 and b2 in `±1/8`.
pub fn mlp_default_weights() -> Vec<f64> {
    let mut rng = SplitMix64::new(SEED_MLP_WEIGHTS);
    let mut v = Vec::with_capacity(MLP_N_WEIGHTS);
    let a1 = 1.0 / (MLP_INPUTS as f64).sqrt();
    let a2 = 1.0 / (MLP_HIDDEN as f64).sqrt();
    rng.fill_uniform(&mut v, MLP_HIDDEN * MLP_INPUTS + MLP_HIDDEN, -a1, a1);
    rng.fill_uniform(&mut v, MLP_HIDDEN + 1, -a2, a2);
    v
}

/// The suite's fixed batch, in the data layout of [`mlp`], from
/// [`SplitMix64`] seed [`SEED_MLP_DATA`] (= 4): the 16 x 32 inputs uniform in
/// `[-1, 1)`, then the 16 targets uniform in `[-1, 1)`, drawn in that order.
pub fn mlp_data() -> Vec<f64> {
    let mut rng = SplitMix64::new(SEED_MLP_DATA);
    let mut v = Vec::with_capacity(MLP_N_DATA);
    rng.fill_uniform(&mut v, MLP_N_DATA, -1.0, 1.0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same network written as matrices: hidden vector, then output.
    fn reference(w: &[f64], data: &[f64]) -> f64 {
        let (ni, nh, nb) = (MLP_INPUTS, MLP_HIDDEN, MLP_BATCH);
        let w1 = |j: usize, i: usize| w[j * ni + i];
        let b1 = &w[nh * ni..nh * ni + nh];
        let w2 = &w[nh * ni + nh..nh * ni + 2 * nh];
        let b2 = w[nh * ni + 2 * nh];
        let mut total = 0.0;
        for s in 0..nb {
            let x = &data[s * ni..(s + 1) * ni];
            let h: Vec<f64> = (0..nh)
                .map(|j| (b1[j] + (0..ni).map(|i| w1(j, i) * x[i]).sum::<f64>()).tanh())
                .collect();
            let y = b2 + (0..nh).map(|j| w2[j] * h[j]).sum::<f64>();
            total += (y - data[nb * ni + s]).powi(2);
        }
        total / nb as f64
    }

    #[test]
    fn sizes_match_design() {
        assert_eq!(MLP_N_WEIGHTS, 2177);
        assert_eq!(MLP_N_DATA, 528);
        assert_eq!(mlp_default_weights().len(), MLP_N_WEIGHTS);
        assert_eq!(mlp_data().len(), MLP_N_DATA);
    }

    #[test]
    fn matches_reference() {
        let (w, data) = (mlp_default_weights(), mlp_data());
        let (got, want) = (mlp(&w, &data), reference(&w, &data));
        assert!((got - want).abs() <= 1e-13 * want, "{got} vs {want}");
    }

    #[test]
    fn perfect_fit_gives_zero() {
        // All weights zero except b2 = t: zero loss only if every target is t.
        let mut w = vec![0.0; MLP_N_WEIGHTS];
        w[MLP_N_WEIGHTS - 1] = 0.25;
        let mut data = mlp_data();
        for t in &mut data[MLP_BATCH * MLP_INPUTS..] {
            *t = 0.25;
        }
        assert_eq!(mlp(&w, &data), 0.0);
    }

    #[test]
    fn weights_respect_fan_in_bounds() {
        let w = mlp_default_weights();
        let split = MLP_HIDDEN * MLP_INPUTS + MLP_HIDDEN;
        let a1 = 1.0 / 32f64.sqrt();
        assert!(w[..split].iter().all(|v| v.abs() <= a1));
        assert!(w[split..].iter().all(|v| v.abs() <= 0.125));
    }
}
