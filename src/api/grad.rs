//! Gradient closures that trace on first use and retrace when a guard fails.

use super::Function;
use crate::error::{Error, Result};
use crate::trace::Var;
use std::collections::VecDeque;

/// How many specializations (one per set of branch outcomes) a closure keeps.
pub const MAX_SPECIALIZATIONS: usize = 8;

/// Traced tapes of one function, most recently used first.
#[derive(Debug, Default)]
struct Specializations {
    functions: VecDeque<Function>,
    traces: usize,
}

impl Specializations {
    /// The gradient from the first cached tape whose guards hold at `(x, p)`,
    /// tracing a new one (and evicting the least recently used) if none does.
    fn gradient(
        &mut self,
        x: &[f64],
        p: &[f64],
        g: &mut [f64],
        trace: impl FnOnce() -> Result<Function>,
    ) -> Result<f64> {
        for k in 0..self.functions.len() {
            match self.functions[k].with_params(p)?.gradient(x, g) {
                Err(Error::GuardFailed { .. }) => continue,
                result => {
                    let f = self.functions.remove(k).expect("index in range");
                    self.functions.push_front(f);
                    return result;
                }
            }
        }
        let f = trace()?;
        self.traces += 1;
        let result = f.with_params(p)?.gradient(x, g);
        self.functions.push_front(f);
        self.functions.truncate(MAX_SPECIALIZATIONS);
        result
    }
}

/// A gradient closure over `f(x)`; see [`grad`].
pub struct Grad<F> {
    f: F,
    cache: Specializations,
}

/// Makes a gradient closure: `grad(f).call(x, g)` returns `f(x)` and writes
/// the gradient to `g`, tracing `f` at its first call and reusing the tape
/// after. When `f` branches differently at a new `x` (a guard fails), it
/// traces again there and keeps up to [`MAX_SPECIALIZATIONS`] tapes.
///
/// ```
/// use tapejit::Real;
/// fn f<T: Real>(x: &[T]) -> T {
///     if x[0] > T::zero() { x[0] * x[0] } else { -x[0] }
/// }
/// let mut df = tapejit::grad(|x| f(x));
/// let mut g = [0.0];
/// assert_eq!(df.call(&[3.0], &mut g).unwrap(), 9.0);
/// assert_eq!(g, [6.0]);
/// assert_eq!(df.call(&[-2.0], &mut g).unwrap(), 2.0); // retraced
/// assert_eq!(g, [-1.0]);
/// ```
pub fn grad<F>(f: F) -> Grad<F>
where
    F: for<'t> Fn(&[Var<'t>]) -> Var<'t>,
{
    Grad {
        f,
        cache: Specializations::default(),
    }
}

impl<F> Grad<F>
where
    F: for<'t> Fn(&[Var<'t>]) -> Var<'t>,
{
    /// `f(x)`, with the gradient written to `g`.
    pub fn call(&mut self, x: &[f64], g: &mut [f64]) -> Result<f64> {
        let f = &self.f;
        self.cache
            .gradient(x, &[], g, || Function::scalar(x, |x| f(x)))
    }

    /// How many times `f` has been traced.
    pub fn traces(&self) -> usize {
        self.cache.traces
    }
}

/// A gradient closure over `f(x, p)` with passive parameters; see [`grad_with_params`].
pub struct GradWithParams<F> {
    f: F,
    cache: Specializations,
}

/// Like [`grad`], for a function of active inputs `x` and passive parameters
/// `p`: `call(x, p, g)`. Changing `p` does not retrace (unless a branch
/// depends on it).
pub fn grad_with_params<F>(f: F) -> GradWithParams<F>
where
    F: for<'t> Fn(&[Var<'t>], &[Var<'t>]) -> Var<'t>,
{
    GradWithParams {
        f,
        cache: Specializations::default(),
    }
}

impl<F> GradWithParams<F>
where
    F: for<'t> Fn(&[Var<'t>], &[Var<'t>]) -> Var<'t>,
{
    /// `f(x, p)`, with the gradient with respect to `x` written to `g`.
    pub fn call(&mut self, x: &[f64], p: &[f64], g: &mut [f64]) -> Result<f64> {
        let f = &self.f;
        self.cache.gradient(x, p, g, || {
            Function::scalar_with_params(x, p, |x, p| f(x, p))
        })
    }

    /// How many times `f` has been traced.
    pub fn traces(&self) -> usize {
        self.cache.traces
    }
}
