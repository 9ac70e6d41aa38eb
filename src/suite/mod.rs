//! The project's benchmark suite: five functions written once, generic over
//! [`Real`], and the [`Case`]s that run them at fixed sizes.
//!
//! Every function is plain generic code that never branches on a value and
//! never converts one to `f64`, so the same source runs natively at
//! `T = f64` (the timed baseline) and records a complete tape while tracing.
//! Data (gmm's points, mlp's batch and targets) are passive parameters,
//! never constants, so they can change without retracing.
//!
//! | function | inputs (default) | data |
//! | --- | --- | --- |
//! | [`rosenbrock`] | `(-1.2, 1, -1.2, 1, ...)` | none |
//! | [`gmm_objective`] | alpha, mu in `[-1, 1)`, q, l in `[-0.5, 0.5)`, seed 2 | points in `[-1, 1)^d`, seed 1 |
//! | [`lorenz_rk4`] | `[1, 1, 1, 10, 10, 8/3]` | none |
//! | [`mlp`] | weights and biases in `±1/sqrt(fan_in)`, seed 3 | inputs and targets in `[-1, 1)`, seed 4 |
//! | [`broyden`] | `x_i = -1` | none |
//!
//! Every seeded value comes from [`SplitMix64`] with the seed shown, drawn
//! in layout order. The VJP weights of broyden are uniform in `[-1, 1)` from
//! seed 5 ([`Case::vjp_weights`]).
//!
//! Only gmm needs scratch memory; [`Case::eval_with_scratch`] and
//! [`gmm_objective_with_scratch`] take it from the caller so that the native
//! baseline does not allocate inside the timed call.
//!
//! ```
//! use tapejit::suite::Case;
//! for case in Case::quick() {
//!     let value = case.default_value();
//!     assert!(value.iter().all(|v| v.is_finite()), "{case}");
//! }
//! ```

mod broyden;
mod case;
mod gmm;
mod limits;
mod lorenz;
mod mlp;
mod parse;

mod rosenbrock;
mod sizes;
mod traced;

pub use crate::rng::SplitMix64;
pub use broyden::{broyden, broyden_default_input};
pub use case::{Case, SEED_VJP_WEIGHTS};
pub use gmm::{
    gmm_default_params, gmm_objective, gmm_objective_with_scratch, gmm_param_len, gmm_points,
    gmm_scratch_len, SEED_GMM_PARAMS, SEED_GMM_POINTS,
};
pub use limits::MAX_CASE_LEN;
pub use lorenz::{lorenz_rk4, lorenz_rk4_fold, lorenz_step, LORENZ_DEFAULT_INPUT, LORENZ_DT};
pub use mlp::{
    mlp, mlp_data, mlp_default_weights, network, MLP_BATCH, MLP_HIDDEN, MLP_INPUTS, MLP_N_DATA,
    MLP_N_WEIGHTS, SEED_MLP_DATA, SEED_MLP_WEIGHTS,
};
pub use parse::CaseError;
pub use rosenbrock::{rosenbrock, rosenbrock_default_input};
pub use sizes::CASE_NAMES;

use crate::Real;

/// An `f64` constant as a `T`.
///
/// `T::from(v)` is ambiguous for a `Real` (both `From<f64>` and
/// `num_traits::NumCast` offer a `from`), and `NumCast` would return an
/// `Option`; this names the infallible one.
pub(crate) fn c<T: Real>(v: f64) -> T {
    <T as From<f64>>::from(v)
}
