//! Suite cases as tapes and functions.

use super::Case;
use crate::error::Result;
use crate::ir::Tape;
use crate::{trace_vector, Function, Var};

impl Case {
    /// Traces the case at its default input and data (one output per
    /// component; data as passive parameters).
    pub fn trace(&self) -> Result<Tape> {
        let x = self.default_input();
        let p = self.params();
        let m = self.n_outputs();
        trace_vector(&x, &p, |x, p| {
            let mut out = vec![Var::from(0.0); m];
            self.eval(x, p, &mut out);
            out
        })
    }

    /// The case as a [`Function`] with default options.
    pub fn function(&self) -> Result<Function> {
        Function::from_tape(self.trace()?)
    }
}
