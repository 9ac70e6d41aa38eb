//! The evaluation methods, on a function with its parameters bound.

use super::prepared::Engine;
use super::Function;
use crate::error::{check_len, Result};

/// A [`Function`] with its passive parameters bound (and a backend chosen):
/// the evaluation methods. Cheap to make and to copy.
#[derive(Clone, Copy, Debug)]
pub struct WithParams<'a> {
    f: &'a Function,
    p: &'a [f64],
    engine: Engine,
}

impl<'a> WithParams<'a> {
    pub(super) fn new(f: &'a Function, p: &'a [f64], engine: Engine) -> Self {
        WithParams { f, p, engine }
    }

    /// The same view evaluating with another backend (e.g. to compare them).
    pub fn engine(self, engine: Engine) -> Self {
        WithParams { engine, ..self }
    }

    /// Evaluates the outputs at `x` into `out`.
    pub fn eval(&self, x: &[f64], out: &mut [f64]) -> Result<()> {
        check_len("x", x.len(), self.f.n_inputs())?;
        check_len("outputs", out.len(), self.f.n_outputs())?;
        self.f
            .primal
            .run(self.engine, (x, &[]), self.p, out, |_| ())
    }

    /// The value of a scalar function at `x`.
    pub fn value(&self, x: &[f64]) -> Result<f64> {
        self.f.require_scalar("value")?;
        let mut out = [0.0];
        self.eval(x, &mut out)?;
        Ok(out[0])
    }

    /// The value at `x`, and the gradient into `g` (one fused sweep).
    pub fn gradient(&self, x: &[f64], g: &mut [f64]) -> Result<f64> {
        let n = self.f.n_inputs();
        check_len("x", x.len(), n)?;
        check_len("gradient", g.len(), n)?;
        let tape = self.f.gradient_prepared()?;
        tape.run(self.engine, (x, &[]), self.p, g, |value| value[0])
    }

    /// The Jacobian-vector product `J(x) v` into `jv` (one per output).
    pub fn jvp(&self, x: &[f64], v: &[f64], jv: &mut [f64]) -> Result<()> {
        let (n, m) = (self.f.n_inputs(), self.f.n_outputs());
        check_len("x", x.len(), n)?;
        check_len("v", v.len(), n)?;
        check_len("jvp output", jv.len(), m)?;
        let tape = self.f.tangent_prepared();
        tape.run(self.engine, (x, v), self.p, jv, |_| ())
    }

    /// The vector-Jacobian product `wᵀ J(x)` into `wj` (one per input).
    pub fn vjp(&self, x: &[f64], w: &[f64], wj: &mut [f64]) -> Result<()> {
        let (n, m) = (self.f.n_inputs(), self.f.n_outputs());
        check_len("x", x.len(), n)?;
        check_len("w", w.len(), m)?;
        check_len("vjp output", wj.len(), n)?;
        let tape = self.f.vjp_prepared()?;
        tape.run(self.engine, (x, w), self.p, wj, |_| ())
    }

    /// The Jacobian at `x`, row-major (outputs × inputs), into `jac`. With no
    /// more inputs than outputs: one evaluation of the forward vector-mode
    /// Jacobian tape (or `n` JVP sweeps when that tape would be too big);
    /// otherwise `m` VJP sweeps.
    pub fn jacobian(&self, x: &[f64], jac: &mut [f64]) -> Result<()> {
        let (n, m) = (self.f.n_inputs(), self.f.n_outputs());
        check_len("x", x.len(), n)?;
        check_len("jacobian", jac.len(), n * m)?;
        if n <= m {
            if let Some(tape) = self.f.jacobian_prepared() {
                return tape.run(self.engine, (x, &[]), self.p, jac, |_| ());
            }
            let mut v = vec![0.0; n];
            let mut column = vec![0.0; m];
            for j in 0..n {
                v[j] = 1.0;
                self.jvp(x, &v, &mut column)?;
                v[j] = 0.0;
                for (i, c) in column.iter().enumerate() {
                    jac[i * n + j] = *c;
                }
            }
        } else {
            let mut w = vec![0.0; m];
            for i in 0..m {
                w[i] = 1.0;
                self.vjp(x, &w, &mut jac[i * n..(i + 1) * n])?;
                w[i] = 0.0;
            }
        }
        Ok(())
    }

    /// The Hessian-vector product `H(x) v` into `hv` (forward over reverse).
    pub fn hvp(&self, x: &[f64], v: &[f64], hv: &mut [f64]) -> Result<()> {
        let n = self.f.n_inputs();
        check_len("x", x.len(), n)?;
        check_len("v", v.len(), n)?;
        check_len("hvp output", hv.len(), n)?;
        let tape = self.f.hvp_prepared()?;
        tape.run(self.engine, (x, v), self.p, hv, |_| ())
    }

    /// The Hessian at `x`, row-major, into `h` (`n` HVPs).
    pub fn hessian(&self, x: &[f64], h: &mut [f64]) -> Result<()> {
        let n = self.f.n_inputs();
        check_len("x", x.len(), n)?;
        check_len("hessian", h.len(), n * n)?;
        let mut v = vec![0.0; n];
        for j in 0..n {
            v[j] = 1.0;
            self.hvp(x, &v, &mut h[j * n..(j + 1) * n])?;
            v[j] = 0.0;
        }
        Ok(())
    }
}
