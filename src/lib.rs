//! tapejit traces a numeric function written once, generically, in plain
//! Rust into a flat tape IR, and differentiates it by transforming that tape:
//! the reverse transform gives an adjoint tape (value and gradient in one
//! sweep), the forward transform a tangent tape (JVP), and the two compose
//! (HVP = forward of reverse). Every tape runs on the reference interpreter;
//! later stages optimize and compile them.
//!
//! # Quickstart
//!
//! ```
//! use tapejit::{Function, Real};
//!
//! // Written once, generic: runs on f64 and traces on tapejit::Var.
//! fn rosenbrock<T: Real>(x: &[T]) -> T {
//!     x.windows(2)
//!         .map(|w| (w[1] - w[0] * w[0]).powi(2) * 100.0 + (T::one() - w[0]).powi(2))
//!         .sum()
//! }
//!
//! let x = [-1.2, 1.0, -1.2, 1.0];
//! let f = Function::scalar(&x, |x| rosenbrock(x))?; // trace once
//! let mut g = [0.0; 4];
//! let value = f.gradient(&x, &mut g)?; // then as many gradients as you like
//! assert_eq!(value, rosenbrock(&x)); // bitwise the native f64 result
//! assert!((g[0] - -215.6).abs() < 1e-9);
//!
//! let mut hv = [0.0; 4];
//! f.hvp(&x, &[1.0, 0.0, 0.0, 0.0], &mut hv)?; // Hessian-vector product
//! # Ok::<(), tapejit::Error>(())
//! ```
//!
//! # What to know
//!
//! - **Branches become guards.** A comparison of traced values is decided at
//!   trace time and recorded as a guard; evaluating at a point where it goes
//!   the other way returns [`Error::GuardFailed`]. [`grad`] retraces
//!   automatically; [`Real::select`] and the `cond_*` methods express
//!   branch-free choices that never retrace.
//! - **Passive parameters** (data) are traced as parameters, not constants:
//!   [`Function::scalar_with_params`], then `f.with_params(&data)?.gradient(..)`.
//! - **Errors, not panics:** wrong lengths, failed guards, invalid tapes and
//!   IR syntax errors are [`Error`]s.
//!
//! Start reading at `ARCHITECTURE.md`; the pipeline is
//! [`trace`](trace_scalar) → [`ir`] → [`ad`] → [`interp`], wrapped by [`Function`].

pub mod ad;
mod api;
#[cfg(feature = "cli")]
pub mod cli;
mod error;
pub mod interp;
pub mod ir;
pub mod jit;
pub mod opt;
mod real;
pub mod rng;
pub mod suite;
mod trace;

pub use ad::MemoryBudget;
pub use api::{
    grad, grad_with_params, Engine, Function, Grad, GradWithParams, Options, WithParams,
    AUTO_JIT_MAX_LEN, JACOBIAN_TAPE_MAX_WORK,
};
pub use error::{Error, Result};
pub use ir::Tape;
pub use num_traits::Float;
pub use real::{fold, FoldBody, Real, Strided};
pub use trace::{trace_scalar, trace_vector, Var};
