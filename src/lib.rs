//! tapejit
mod error;
pub mod ad;
pub mod cli;
mod api;
pub mod interp;
pub mod ir;
pub mod suite;
mod real;
mod trace;

pub use api::{grad, grad_with_params, Function, Grad, GradWithParams, WithParams};
pub use error::{Error, Result};
pub use ir::Tape;
pub use num_traits::Float;
pub use real::Real;
pub use trace::{trace_scalar, trace_vector, Var};
