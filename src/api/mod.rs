//! The public face: [`Function`] (a traced tape and its derived tapes) and
//! [`grad`], a gradient closure that traces on first use and retraces when a
//! guard fails.

mod function;
mod grad;

pub use function::{Engine, Function, WithParams, AUTO_JIT_MAX_LEN, JACOBIAN_TAPE_MAX_WORK};
pub use grad::{grad, grad_with_params, Grad, GradWithParams};
