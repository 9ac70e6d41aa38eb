//! The public face: [`Function`] (a traced tape and its derived tapes),
//! [`WithParams`] (its evaluation methods), [`Engine`] (interpreter or JIT),
//! and [`grad`], a gradient closure that traces on first use and retraces
//! when a guard fails.

mod function;
mod grad;
mod prepared;
mod with_params;

pub use function::{Function, Options, JACOBIAN_TAPE_MAX_WORK};
pub use grad::{grad, grad_with_params, Grad, GradWithParams};
pub use prepared::{Engine, AUTO_JIT_MAX_LEN};
pub use with_params::WithParams;
