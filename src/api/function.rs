//! `Function`: one traced tape, its derived tapes built lazily, and the
//! evaluation methods.

use crate::ad::{self, Seed};
use crate::error::{check_len, Error, Result};
use crate::interp;
use crate::ir::Tape;
use crate::jit::{self, JitFunction};
use crate::trace::{trace_vector, Var};
use std::sync::{Mutex, OnceLock};

/// Which backend evaluates a tape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Engine {
    /// The reference interpreter: no compile time, slower per call.
    Interpreter,
    /// Native code from Cranelift, compiled on first use of each tape.
    Jit,
    /// The JIT for tapes up to [`AUTO_JIT_MAX_LEN`] instructions, the
    /// interpreter above (where compile time would dominate until loops are rolled).
    #[default]
    Auto,
}

/// Largest `inputs × tape length` for which the Jacobian is built as one
/// forward vector-mode tape rather than computed by repeated sweeps.
pub const JACOBIAN_TAPE_MAX_WORK: usize = 1 << 22;

/// Longest tape [`Engine::Auto`] compiles.
pub const AUTO_JIT_MAX_LEN: usize = 200_000;

/// A tape and, once needed, its compiled form.
#[derive(Debug)]
pub(crate) struct Prepared {
    tape: Tape,
    compiled: OnceLock<std::result::Result<JitFunction, Error>>,
}

impl Prepared {
    fn new(tape: Tape) -> Prepared {
        Prepared {
            tape,
            compiled: OnceLock::new(),
        }
    }

    /// The compiled tape, compiling it on first use.
    pub(crate) fn compiled(&self) -> Result<&JitFunction> {
        self.compiled
            .get_or_init(|| jit::compile(&self.tape))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn uses_jit(&self, engine: Engine) -> bool {
        match engine {
            Engine::Interpreter => false,
            Engine::Jit => true,
            Engine::Auto => self.tape.len() <= AUTO_JIT_MAX_LEN,
        }
    }
}

/// A traced function, ready to evaluate and differentiate many times.
///
/// Derived tapes (gradient, tangent, VJP, HVP) are built on first use and
/// kept. Evaluations reuse an internal workspace, so they do not allocate
/// once warmed up. A function with passive parameters is evaluated through
/// [`Function::with_params`]; one without, directly.
///
/// ```
/// use tapejit::{Function, Real};
/// fn f<T: Real>(x: &[T]) -> T { x[0] * x[1].sin() }
/// let f = Function::scalar(&[1.0, 2.0], |x| f(x)).unwrap();
/// let mut g = [0.0; 2];
/// let y = f.gradient(&[3.0, 0.5], &mut g).unwrap();
/// assert_eq!(y, 3.0 * 0.5f64.sin());
/// assert_eq!(g, [0.5f64.sin(), 3.0 * 0.5f64.cos()]);
/// ```
#[derive(Debug)]
pub struct Function {
    primal: Prepared,
    gradient: OnceLock<Prepared>,
    tangent: OnceLock<Prepared>,
    vjp: OnceLock<Prepared>,
    hvp: OnceLock<Prepared>,
    jacobian: OnceLock<Option<Prepared>>,
    engine: Engine,
    workspace: Mutex<Workspace>,
}

/// Buffers reused across evaluations.
#[derive(Debug, Default)]
struct Workspace {
    values: Vec<f64>,
    scratch: Vec<f64>,
    inputs: Vec<f64>,
    outputs: Vec<f64>,
}

impl Function {
    /// Traces a scalar function of active inputs `x` (no parameters) at `x`.
    pub fn scalar<F>(x: &[f64], f: F) -> Result<Function>
    where
        F: for<'t> FnOnce(&[Var<'t>]) -> Var<'t>,
    {
        Function::from_tape(trace_vector(x, &[], |x, _| vec![f(x)])?)
    }

    /// Traces a scalar function of active inputs `x` and passive parameters `p`.
    pub fn scalar_with_params<F>(x: &[f64], p: &[f64], f: F) -> Result<Function>
    where
        F: for<'t> FnOnce(&[Var<'t>], &[Var<'t>]) -> Var<'t>,
    {
        Function::from_tape(trace_vector(x, p, |x, p| vec![f(x, p)])?)
    }

    /// Traces a vector function of active inputs `x` (no parameters) at `x`.
    pub fn vector<F>(x: &[f64], f: F) -> Result<Function>
    where
        F: for<'t> FnOnce(&[Var<'t>]) -> Vec<Var<'t>>,
    {
        Function::from_tape(trace_vector(x, &[], |x, _| f(x))?)
    }

    /// Traces a vector function of active inputs `x` and passive parameters `p`.
    pub fn vector_with_params<F>(x: &[f64], p: &[f64], f: F) -> Result<Function>
    where
        F: for<'t> FnOnce(&[Var<'t>], &[Var<'t>]) -> Vec<Var<'t>>,
    {
        Function::from_tape(trace_vector(x, p, f)?)
    }

    /// Wraps a tape (parsed, built by hand or transformed) after verifying it.
    pub fn from_tape(tape: Tape) -> Result<Function> {
        tape.verify()?;
        if tape.n_outputs() == 0 {
            return Err(Error::Unsupported(
                "a function needs at least one output".into(),
            ));
        }
        Ok(Function {
            primal: Prepared::new(tape),
            gradient: OnceLock::new(),
            tangent: OnceLock::new(),
            vjp: OnceLock::new(),
            hvp: OnceLock::new(),
            jacobian: OnceLock::new(),
            engine: Engine::default(),
            workspace: Mutex::new(Workspace::default()),
        })
    }

    /// The backend this function's evaluation methods use (default [`Engine::Auto`]).
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Chooses the backend for this function's evaluation methods.
    pub fn set_engine(&mut self, engine: Engine) {
        self.engine = engine;
    }

    /// The traced tape.
    pub fn tape(&self) -> &Tape {
        &self.primal.tape
    }

    fn gradient_prepared(&self) -> Result<&Prepared> {
        self.require_scalar("a gradient")?;
        Ok(self
            .gradient
            .get_or_init(|| Prepared::new(ad::reverse(self.tape(), 0..self.n_inputs(), Seed::One))))
    }

    fn tangent_prepared(&self) -> &Prepared {
        self.tangent
            .get_or_init(|| Prepared::new(ad::forward(self.tape(), 0..self.n_inputs())))
    }

    fn vjp_prepared(&self) -> &Prepared {
        self.vjp.get_or_init(|| {
            Prepared::new(ad::reverse(self.tape(), 0..self.n_inputs(), Seed::Inputs))
        })
    }

    fn hvp_prepared(&self) -> Result<&Prepared> {
        let gradient = &self.gradient_prepared()?.tape;
        Ok(self
            .hvp
            .get_or_init(|| Prepared::new(ad::forward(gradient, 0..self.n_inputs()))))
    }

    /// The forward vector-mode Jacobian tape, when it is small enough to
    /// build (inputs × tape length up to [`JACOBIAN_TAPE_MAX_WORK`]).
    fn jacobian_prepared(&self) -> Option<&Prepared> {
        self.jacobian
            .get_or_init(|| {
                let work = self.n_inputs().saturating_mul(self.tape().len());
                (work <= JACOBIAN_TAPE_MAX_WORK)
                    .then(|| Prepared::new(ad::jacobian_forward(self.tape(), 0..self.n_inputs())))
            })
            .as_ref()
    }

    /// The Jacobian tape (forward vector mode, unit seeds as constants), if
    /// small enough to build; see [`WithParams::jacobian`].
    pub fn jacobian_tape(&self) -> Option<&Tape> {
        self.jacobian_prepared().map(|p| &p.tape)
    }

    /// The adjoint tape computing value and gradient in one sweep (scalar functions).
    pub fn gradient_tape(&self) -> Result<&Tape> {
        Ok(&self.gradient_prepared()?.tape)
    }

    /// The tangent tape computing values and one JVP.
    pub fn tangent_tape(&self) -> &Tape {
        &self.tangent_prepared().tape
    }

    /// The adjoint tape with output weights as extra inputs (VJP).
    pub fn vjp_tape(&self) -> &Tape {
        &self.vjp_prepared().tape
    }

    /// The forward-over-reverse tape computing value, gradient and one HVP.
    pub fn hvp_tape(&self) -> Result<&Tape> {
        Ok(&self.hvp_prepared()?.tape)
    }

    /// The compiled primal tape (compiling it now if needed).
    pub fn compiled_primal(&self) -> Result<&JitFunction> {
        self.primal.compiled()
    }

    /// The compiled gradient tape (scalar functions; compiling it now if needed).
    pub fn compiled_gradient(&self) -> Result<&JitFunction> {
        self.gradient_prepared()?.compiled()
    }

    /// The compiled VJP tape (compiling it now if needed).
    pub fn compiled_vjp(&self) -> Result<&JitFunction> {
        self.vjp_prepared().compiled()
    }

    /// Number of active inputs.
    pub fn n_inputs(&self) -> usize {
        self.tape().n_inputs()
    }

    /// Number of passive parameters.
    pub fn n_params(&self) -> usize {
        self.tape().n_params()
    }

    /// Number of outputs.
    pub fn n_outputs(&self) -> usize {
        self.tape().n_outputs()
    }

    fn require_scalar(&self, what: &str) -> Result<()> {
        if self.n_outputs() == 1 {
            Ok(())
        } else {
            Err(Error::Unsupported(format!(
                "{what} needs a scalar function, but this one has {} outputs: use vjp or jacobian",
                self.n_outputs()
            )))
        }
    }

    /// Binds passive parameters `p` for the evaluations of the returned view.
    pub fn with_params<'a>(&'a self, p: &'a [f64]) -> Result<WithParams<'a>> {
        check_len("params", p.len(), self.n_params())?;
        Ok(WithParams {
            f: self,
            p,
            engine: self.engine,
        })
    }

    fn without_params(&self) -> Result<WithParams<'_>> {
        if self.n_params() > 0 {
            return Err(Error::Unsupported(format!(
                "this function reads {} passive parameters: evaluate it through \
                 with_params(&p)",
                self.n_params()
            )));
        }
        Ok(WithParams {
            f: self,
            p: &[],
            engine: self.engine,
        })
    }

    /// Runs `tape` on `inputs` (the parts concatenated), writing all its outputs to `out`.
    fn run(
        &self,
        engine: Engine,
        tape: &Prepared,
        inputs: &[&[f64]],
        p: &[f64],
        out: &mut [f64],
    ) -> Result<()> {
        let compiled = if tape.uses_jit(engine) {
            Some(tape.compiled()?)
        } else {
            None
        };
        let mut fresh;
        let mut guard;
        let ws: &mut Workspace = match self.workspace.try_lock() {
            Ok(g) => {
                guard = g;
                &mut guard
            }
            Err(std::sync::TryLockError::Poisoned(p)) => {
                guard = p.into_inner();
                &mut guard
            }
            Err(std::sync::TryLockError::WouldBlock) => {
                fresh = Workspace::default();
                &mut fresh
            }
        };
        ws.inputs.clear();
        for part in inputs {
            ws.inputs.extend_from_slice(part);
        }
        match compiled {
            Some(code) => code.run(&ws.inputs, p, out, &mut ws.scratch),
            None => interp::eval(&tape.tape, &ws.inputs, p, &mut ws.values, out),
        }
    }

    /// Runs `tape` and hands its outputs to `read` (without allocating once warm).
    fn run_with<R>(
        &self,
        engine: Engine,
        tape: &Prepared,
        inputs: &[&[f64]],
        p: &[f64],
        read: impl FnOnce(&[f64]) -> R,
    ) -> Result<R> {
        let mut outputs = match self.workspace.try_lock() {
            Ok(mut ws) => std::mem::take(&mut ws.outputs),
            Err(_) => Vec::new(),
        };
        outputs.clear();
        outputs.resize(tape.tape.n_outputs(), 0.0);
        let result = self
            .run(engine, tape, inputs, p, &mut outputs)
            .map(|()| read(&outputs));
        if let Ok(mut ws) = self.workspace.try_lock() {
            ws.outputs = outputs;
        }
        result
    }
}

macro_rules! delegate_without_params {
    ($($(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        impl Function {$(
            $(#[$doc])*
            ///
            /// For a function without passive parameters; otherwise use [`Function::with_params`].
            pub fn $name(&self $(, $arg: $ty)*) -> $ret {
                self.without_params()?.$name($($arg),*)
            }
        )*}
    };
}

delegate_without_params! {
    /// Evaluates the outputs at `x` into `out`.
    fn eval(&self, x: &[f64], out: &mut [f64]) -> Result<()>;
    /// The value of a scalar function at `x`.
    fn value(&self, x: &[f64]) -> Result<f64>;
    /// The value at `x`, and the gradient into `g`.
    fn gradient(&self, x: &[f64], g: &mut [f64]) -> Result<f64>;
    /// The Jacobian-vector product `J(x) v` into `jv`.
    fn jvp(&self, x: &[f64], v: &[f64], jv: &mut [f64]) -> Result<()>;
    /// The vector-Jacobian product `wᵀ J(x)` into `wj`.
    fn vjp(&self, x: &[f64], w: &[f64], wj: &mut [f64]) -> Result<()>;
    /// The Jacobian at `x`, row-major (outputs × inputs), into `jac`.
    fn jacobian(&self, x: &[f64], jac: &mut [f64]) -> Result<()>;
    /// The Hessian-vector product `H(x) v` into `hv` (scalar functions).
    fn hvp(&self, x: &[f64], v: &[f64], hv: &mut [f64]) -> Result<()>;
    /// The Hessian at `x`, row-major, into `h` (scalar functions).
    fn hessian(&self, x: &[f64], h: &mut [f64]) -> Result<()>;
}

/// A [`Function`] with its passive parameters bound: the same evaluation
/// methods, reading `p`.
#[derive(Clone, Copy, Debug)]
pub struct WithParams<'a> {
    f: &'a Function,
    p: &'a [f64],
    engine: Engine,
}

impl WithParams<'_> {
    /// The same view evaluating with another backend (e.g. to compare them).
    pub fn engine(self, engine: Engine) -> Self {
        WithParams { engine, ..self }
    }

    /// Evaluates the outputs at `x` into `out`.
    pub fn eval(&self, x: &[f64], out: &mut [f64]) -> Result<()> {
        check_len("x", x.len(), self.f.n_inputs())?;
        self.f.run(self.engine, &self.f.primal, &[x], self.p, out)
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
        self.f.run_with(self.engine, tape, &[x], self.p, |out| {
            g.copy_from_slice(&out[1..]);
            out[0]
        })
    }

    /// The Jacobian-vector product `J(x) v` into `jv` (one per output).
    pub fn jvp(&self, x: &[f64], v: &[f64], jv: &mut [f64]) -> Result<()> {
        let (n, m) = (self.f.n_inputs(), self.f.n_outputs());
        check_len("x", x.len(), n)?;
        check_len("v", v.len(), n)?;
        check_len("jvp output", jv.len(), m)?;
        let tape = self.f.tangent_prepared();
        self.f.run_with(self.engine, tape, &[x, v], self.p, |out| {
            jv.copy_from_slice(&out[m..])
        })
    }

    /// The vector-Jacobian product `wᵀ J(x)` into `wj` (one per input).
    pub fn vjp(&self, x: &[f64], w: &[f64], wj: &mut [f64]) -> Result<()> {
        let (n, m) = (self.f.n_inputs(), self.f.n_outputs());
        check_len("x", x.len(), n)?;
        check_len("w", w.len(), m)?;
        check_len("vjp output", wj.len(), n)?;
        let tape = self.f.vjp_prepared();
        self.f.run_with(self.engine, tape, &[x, w], self.p, |out| {
            wj.copy_from_slice(&out[m..])
        })
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
                return self.f.run_with(self.engine, tape, &[x], self.p, |out| {
                    jac.copy_from_slice(&out[m..])
                });
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
        // Outputs: value, gradient (n), value tangent, gradient tangent (n).
        self.f.run_with(self.engine, tape, &[x, v], self.p, |out| {
            hv.copy_from_slice(&out[n + 2..])
        })
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
