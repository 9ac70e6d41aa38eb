//! tapejit
mod error;
pub mod interp;
pub mod ir;
mod real;
mod trace;

pub use error::{Error, Result};
pub use ir::Tape;
pub use real::Real;
pub use trace::{trace_scalar, trace_vector, Var};
