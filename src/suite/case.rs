//! Suite cases: a function at one size, with its inputs, data and evaluation.

use super::broyden::{broyden, broyden_default_input};
use super::gmm::{
    gmm_default_params, gmm_objective_with_scratch, gmm_param_len, gmm_points, gmm_scratch_len,
};
use super::lorenz::{lorenz_rk4, lorenz_rk4_fold, LORENZ_DEFAULT_INPUT};
use super::mlp::{
    mlp, mlp_data, mlp_default_weights, MLP_BATCH, MLP_HIDDEN, MLP_N_DATA, MLP_N_WEIGHTS,
};
use super::rosenbrock::{rosenbrock, rosenbrock_default_input};
use crate::rng::SplitMix64;
use crate::Real;

/// Seed of the VJP weight vector of vector-output cases ([`Case::vjp_weights`]).
pub const SEED_VJP_WEIGHTS: u64 = 5;

/// One suite case at one size.
///
/// Parses from and displays as `name:size` (`"rosenbrock:1000"`,
/// `"gmm:10,25,1000"`, `"lorenz_rk4:1000"`, `"mlp"`, `"broyden:10"`).
///
/// ```
/// use tapejit::suite::Case;
/// let case: Case = "gmm:2,5,1000".parse().unwrap();
/// assert_eq!(case, Case::Gmm { d: 2, k: 5, n: 1000 });
/// assert_eq!(case.n_inputs(), 30);
/// let mut out = [0.0];
/// case.eval(&case.default_input(), &case.params(), &mut out);
/// assert!(out[0].is_finite());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Case {
    /// [`rosenbrock`] with `n` inputs.
    Rosenbrock {
        /// Number of inputs (at least 2).
        n: usize,
    },
    /// [`gmm_objective`](super::gmm_objective) in dimension `d` with `k`
    /// components and `n` data points.
    Gmm {
        /// Dimension of the data.
        d: usize,
        /// Number of mixture components.
        k: usize,
        /// Number of data points.
        n: usize,
    },
    /// [`lorenz_rk4`] over `steps` RK4 steps.
    LorenzRk4 {
        /// Number of RK4 steps of length 0.001.
        steps: usize,
    },
    /// [`lorenz_rk4_fold`]: the same integration written with the explicit
    /// loop API, so a trace records one step as a loop body.
    LorenzFold {
        /// Number of RK4 steps of length 0.001.
        steps: usize,
    },
    /// [`mlp`] (fixed size: batch 16, hidden 64).
    Mlp,
    /// [`broyden`] with `n` inputs and outputs.
    Broyden {
        /// Number of inputs and outputs.
        n: usize,
    },
}

impl Case {
    /// The case's name: `"rosenbrock"`, `"gmm"`, `"lorenz_rk4"`, `"mlp"` or `"broyden"`.
    pub fn name(&self) -> &'static str {
        match self {
            Case::Rosenbrock { .. } => "rosenbrock",
            Case::Gmm { .. } => "gmm",
            Case::LorenzRk4 { .. } => "lorenz_rk4",
            Case::LorenzFold { .. } => "lorenz_fold",
            Case::Mlp => "mlp",
            Case::Broyden { .. } => "broyden",
        }
    }

    /// The size parameters as reported in results, e.g. `"n=1000"`,
    /// `"d=2,k=5,n=1000"`, `"steps=1000"`, `"batch=16,hidden=64"`.
    pub fn size(&self) -> String {
        match self {
            Case::Rosenbrock { n } | Case::Broyden { n } => format!("n={n}"),
            Case::Gmm { d, k, n } => format!("d={d},k={k},n={n}"),
            Case::LorenzRk4 { steps } | Case::LorenzFold { steps } => format!("steps={steps}"),
            Case::Mlp => format!("batch={MLP_BATCH},hidden={MLP_HIDDEN}"),
        }
    }

    /// Number of active (differentiated) inputs.
    pub fn n_inputs(&self) -> usize {
        match *self {
            Case::Rosenbrock { n } | Case::Broyden { n } => n,
            Case::Gmm { d, k, .. } => gmm_param_len(d, k),
            Case::LorenzRk4 { .. } | Case::LorenzFold { .. } => LORENZ_DEFAULT_INPUT.len(),
            Case::Mlp => MLP_N_WEIGHTS,
        }
    }

    /// Number of passive parameters (data read but not differentiated);
    /// 0 for cases without data.
    pub fn n_params(&self) -> usize {
        match *self {
            Case::Gmm { d, n, .. } => d * n,
            Case::Mlp => MLP_N_DATA,
            _ => 0,
        }
    }

    /// Number of outputs: 1, except `n` for broyden.
    pub fn n_outputs(&self) -> usize {
        match *self {
            Case::Broyden { n } => n,
            _ => 1,
        }
    }

    /// Length of the scratch slice [`Case::eval_with_scratch`] needs (0 for
    /// every case but gmm).
    pub fn scratch_len(&self) -> usize {
        match *self {
            Case::Gmm { d, k, .. } => gmm_scratch_len(d, k),
            _ => 0,
        }
    }

    /// The documented starting point (length [`Case::n_inputs`]): see each
    /// function's `*_default_*` helper for the values and seeds.
    pub fn default_input(&self) -> Vec<f64> {
        match *self {
            Case::Rosenbrock { n } => rosenbrock_default_input(n),
            Case::Gmm { d, k, .. } => gmm_default_params(d, k),
            Case::LorenzRk4 { .. } | Case::LorenzFold { .. } => LORENZ_DEFAULT_INPUT.to_vec(),
            Case::Mlp => mlp_default_weights(),
            Case::Broyden { n } => broyden_default_input(n),
        }
    }

    /// The seeded passive data (length [`Case::n_params`]): gmm's points,
    /// mlp's batch inputs then targets; empty for the other cases.
    pub fn params(&self) -> Vec<f64> {
        match *self {
            Case::Gmm { d, n, .. } => gmm_points(d, n),
            Case::Mlp => mlp_data(),
            _ => Vec::new(),
        }
    }

    /// The output weights of the benchmarked VJP (length [`Case::n_outputs`]):
    /// uniform in `[-1, 1)` from [`SplitMix64`] seed [`SEED_VJP_WEIGHTS`]
    /// (= 5) for broyden, so that no output is favoured; `[1.0]` for
    /// scalar cases, whose VJP is then the plain gradient.
    pub fn vjp_weights(&self) -> Vec<f64> {
        match *self {
            Case::Broyden { n } => {
                let mut rng = SplitMix64::new(SEED_VJP_WEIGHTS);
                (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect()
            }
            _ => vec![1.0],
        }
    }

    /// Evaluates the case into `out`, allocating gmm's scratch once per call.
    ///
    /// Use [`Case::eval_with_scratch`] where no allocation is allowed.
    ///
    /// # Panics
    /// If `x`, `p` or `out` has the wrong length.
    pub fn eval<T: Real>(&self, x: &[T], p: &[T], out: &mut [T]) {
        // A zero-length Vec does not allocate, so only gmm pays for this.
        let mut scratch = vec![T::zero(); self.scratch_len()];
        self.eval_with_scratch(x, p, out, &mut scratch);
    }

    /// Evaluates the case into `out` without allocating: `x` has
    /// [`Case::n_inputs`] values, `p` [`Case::n_params`], `out`
    /// [`Case::n_outputs`], `scratch` at least [`Case::scratch_len`]
    /// (its contents are overwritten).
    ///
    /// # Panics
    /// If a slice has the wrong length.
    pub fn eval_with_scratch<T: Real>(&self, x: &[T], p: &[T], out: &mut [T], scratch: &mut [T]) {
        assert_eq!(x.len(), self.n_inputs(), "{self}: wrong number of inputs");
        assert_eq!(
            p.len(),
            self.n_params(),
            "{self}: wrong number of parameters"
        );
        assert_eq!(
            out.len(),
            self.n_outputs(),
            "{self}: wrong number of outputs"
        );
        match *self {
            Case::Rosenbrock { .. } => out[0] = rosenbrock(x),
            Case::Gmm { d, k, .. } => out[0] = gmm_objective_with_scratch(x, p, d, k, scratch),
            Case::LorenzRk4 { steps } => out[0] = lorenz_rk4(x, steps),
            Case::LorenzFold { steps } => out[0] = lorenz_rk4_fold(x, steps),
            Case::Mlp => out[0] = mlp(x, p),
            Case::Broyden { .. } => broyden(x, out),
        }
    }

    /// The value at the documented input and data, in f64: the figure to
    /// cross-check any other evaluation of the case against.
    pub fn default_value(&self) -> Vec<f64> {
        let mut out = vec![0.0; self.n_outputs()];
        self.eval(&self.default_input(), &self.params(), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::{gmm_objective, lorenz_step};

    #[test]
    fn eval_dispatches_to_the_functions() {
        let gmm = Case::Gmm { d: 3, k: 4, n: 20 };
        let want = gmm_objective(&gmm.default_input(), &gmm.params(), 3, 4);
        assert_eq!(gmm.default_value(), vec![want]);

        let mut s = [1.0, 1.0, 1.0];
        for _ in 0..7 {
            s = lorenz_step(s, 10.0, 10.0, 8.0 / 3.0);
        }
        let norm = s[0] * s[0] + s[1] * s[1] + s[2] * s[2];
        assert_eq!(Case::LorenzRk4 { steps: 7 }.default_value(), vec![norm]);

        assert!((Case::Rosenbrock { n: 2 }.default_value()[0] - 24.2).abs() < 1e-12);
        let mut f = vec![-1.0; 4];
        f[0] = -2.0;
        f[3] = -3.0;
        assert_eq!(Case::Broyden { n: 4 }.default_value(), f);
        assert_eq!(
            Case::Mlp.default_value(),
            vec![mlp(&mlp_default_weights(), &mlp_data())]
        );
    }

    #[test]
    fn scratch_is_only_for_gmm() {
        for case in Case::quick() {
            let want = if matches!(case, Case::Gmm { .. }) {
                2 * 5 + 2 * 5 + 2
            } else {
                0
            };
            assert_eq!(case.scratch_len(), want, "{case}");
        }
    }

    #[test]
    fn vjp_weights_are_seeded() {
        assert_eq!(Case::Mlp.vjp_weights(), vec![1.0]);
        let w = Case::Broyden { n: 10 }.vjp_weights();
        assert_eq!(w, Case::Broyden { n: 10 }.vjp_weights());
        assert!(w.iter().all(|v| (-1.0..1.0).contains(v)));
        let mut rng = SplitMix64::new(SEED_VJP_WEIGHTS);
        assert_eq!(w[0], rng.uniform(-1.0, 1.0));
    }

    #[test]
    #[should_panic(expected = "wrong number of inputs")]
    fn wrong_input_length_panics() {
        Case::Rosenbrock { n: 3 }.eval(&[1.0, 2.0], &[], &mut [0.0]);
    }

    /// Prints the cross-check values (`cargo test -- --nocapture`).
    #[test]
    fn quick_default_values_are_finite() {
        for case in Case::quick() {
            let v = case.default_value();
            assert!(v.iter().all(|x| x.is_finite()), "{case}: {v:?}");
            println!("{case}: {v:?}");
        }
    }
}
