//! `Function`: one traced tape and its derived tapes, built lazily.

use super::prepared::{Engine, Prepared};
use super::WithParams;
use crate::ad::{self, MemoryBudget, Seed};
use crate::error::{check_len, Error, Result};
use crate::ir::Tape;
use crate::jit::JitFunction;
use crate::opt;
use crate::trace::{trace_vector, Var};
use std::sync::OnceLock;

/// Largest `inputs × tape length` for which the Jacobian is built as one
/// forward vector-mode tape rather than computed by repeated sweeps.
pub const JACOBIAN_TAPE_MAX_WORK: usize = 1 << 22;

/// A traced function, ready to evaluate and differentiate many times.
///
/// Derived tapes (gradient, tangent, VJP, HVP, Jacobian) are built on first
/// use and kept, and so is their compiled code ([`Engine::Auto`] by default).
/// Evaluations do not allocate once warmed up. A function with passive
/// parameters is evaluated through [`Function::with_params`]; one without,
/// directly.
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
    traced: Tape,
    options: Options,
    pub(super) primal: Prepared,
    gradient: OnceLock<Prepared>,
    tangent: OnceLock<Prepared>,
    vjp: OnceLock<Prepared>,
    hvp: OnceLock<Prepared>,
    jacobian: OnceLock<Option<Prepared>>,
    /// Whether the reverse transform handles the primal tape; checked on
    /// first use, since a function only evaluated never needs it.
    reverse_ok: OnceLock<Result<()>>,
    engine: Engine,
}

/// How a [`Function`] prepares its tapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Run the exact optimizer ([`crate::opt::optimize`]) on the traced tape
    /// and on every derived tape (default `true`).
    pub optimize: bool,
    /// Let the optimizer roll repeated code of the traced tape into loops
    /// (default `true`; only with `optimize`, see [`crate::opt::optimize`]);
    /// derived tapes inherit the loops.
    pub reroll: bool,
    /// The backend of the evaluation methods (default [`Engine::Auto`]).
    pub engine: Engine,
    /// Memory for the stored states of each loop in gradients and VJPs
    /// (default 256 MiB); a loop needing more is checkpointed
    /// ([`MemoryBudget`]). Hessian-vector products store every state.
    pub memory_budget: MemoryBudget,
    /// Flush subnormal numbers to zero (default `false`: IEEE 754).
    ///
    /// When on, every evaluation (primal and derivatives alike, on either
    /// engine) reads a subnormal operand as a zero of the same sign (DAZ)
    /// and turns a result that would be subnormal into a zero of the same
    /// sign (FTZ), as x86-64 does with MXCSR.FTZ and DAZ set and aarch64
    /// with FPCR.FZ (XLA's CPU default). Inputs, parameters and constants
    /// are read that way too. Results then differ from IEEE wherever a
    /// subnormal appears, e.g. long reverse sweeps whose adjoints decay
    /// below `f64::MIN_POSITIVE` get exact zeros, which avoids the CPU's
    /// slow path for subnormals. The JIT and the interpreter agree bit for
    /// bit.
    ///
    /// - JIT: each call sets the thread's floating-point control register
    ///   for its duration and restores the caller's value afterwards (also
    ///   when a guard fails). Rust code the compiled code calls runs in that
    ///   mode: the math functions (`exp`, `sin`, `mul_add`, ...) switch back
    ///   to IEEE arithmetic on their flushed operands and flush their result;
    ///   the checkpoint schedule driver only moves values.
    /// - Interpreter: the same semantics, emulated ([`crate::ir::flush`]).
    /// - A "tiny" result is decided as the host does: after rounding on
    ///   x86-64, before rounding on aarch64 (they differ only for products
    ///   and quotients rounding to exactly `±f64::MIN_POSITIVE`).
    /// - Values computed while tracing, and constant-only operations the
    ///   tracer or the optimizer folds, use IEEE arithmetic; flushing
    ///   applies to the evaluation of the resulting tapes.
    ///
    /// Supported on x86-64 and aarch64 hosts; elsewhere making a
    /// [`Function`] with it returns [`Error::Unsupported`].
    pub flush_subnormals: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            optimize: true,
            reroll: true,
            engine: Engine::Auto,
            memory_budget: MemoryBudget::default(),
            flush_subnormals: false,
        }
    }
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

    /// Wraps a tape (parsed, built by hand or transformed) after verifying it,
    /// with the default [`Options`].
    pub fn from_tape(tape: Tape) -> Result<Function> {
        Function::from_tape_with(tape, Options::default())
    }

    /// Wraps a tape after verifying it.
    pub fn from_tape_with(tape: Tape, options: Options) -> Result<Function> {
        tape.verify()?;
        if tape.n_outputs() == 0 {
            return Err(Error::Unsupported(
                "a function needs at least one output".into(),
            ));
        }
        let n = tape.n_inputs();
        let primal = if options.optimize {
            opt::optimize_verified_with(&tape, options.reroll)
        } else {
            tape.clone()
        };
        ad::check_budget(&primal, options.memory_budget)?;
        if options.flush_subnormals && !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
            return Err(Error::Unsupported(format!(
                "flush_subnormals needs an x86-64 or aarch64 host (the JIT sets its \
                 floating-point control register), not {}",
                std::env::consts::ARCH
            )));
        }
        Ok(Function {
            traced: tape,
            options,
            // All outputs to the caller's buffer.
            primal: Prepared::new(primal, n, 0, options.flush_subnormals),
            gradient: OnceLock::new(),
            tangent: OnceLock::new(),
            vjp: OnceLock::new(),
            hvp: OnceLock::new(),
            jacobian: OnceLock::new(),
            reverse_ok: OnceLock::new(),
            engine: options.engine,
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

    /// The tape as traced (or given).
    pub fn traced_tape(&self) -> &Tape {
        &self.traced
    }

    /// The primal tape evaluated: the traced one, optimized unless switched off.
    pub fn tape(&self) -> &Tape {
        &self.primal.tape
    }

    /// The options this function was made with.
    pub fn options(&self) -> Options {
        self.options
    }

    /// A derived tape, optimized if this function optimizes.
    fn derived(&self, tape: Tape, input_split: usize, output_split: usize) -> Prepared {
        // Derived tapes are not rerolled: a rolled primal gives rolled
        // derivatives already, and the derivatives of a primal too short to
        // roll are faster straight.
        let tape = if self.options.optimize {
            opt::optimize_verified_with(&tape, false)
        } else {
            tape
        };
        Prepared::new(
            tape,
            input_split,
            output_split,
            self.options.flush_subnormals,
        )
    }

    pub(super) fn require_scalar(&self, what: &str) -> Result<()> {
        if self.n_outputs() == 1 {
            Ok(())
        } else {
            Err(Error::Unsupported(format!(
                "{what} needs a scalar function, but this one has {} outputs: use vjp or jacobian",
                self.n_outputs()
            )))
        }
    }

    /// The reverse transform's refusal of the primal tape, if it refuses it
    /// ([`ad::reverse_hazard`]): the derived tapes below are built with the
    /// unchecked transforms, inside `OnceLock`s that cannot fail.
    fn check_reverse(&self) -> Result<()> {
        self.reverse_ok
            .get_or_init(|| ad::refuse_hazards(self.tape()))
            .clone()
    }

    /// Outputs: value, then gradient.
    #[inline]
    pub(super) fn gradient_prepared(&self) -> Result<&Prepared> {
        // Built only after the checks below passed: once it exists they
        // hold, and a gradient of tens of nanoseconds skips them.
        match self.gradient.get() {
            Some(prepared) => Ok(prepared),
            None => self.build_gradient(),
        }
    }

    #[cold]
    fn build_gradient(&self) -> Result<&Prepared> {
        self.require_scalar("a gradient")?;
        self.check_reverse()?;
        let n = self.n_inputs();
        Ok(self.gradient.get_or_init(|| {
            let budget = self.options.memory_budget;
            let tape = ad::verified::reverse_with_budget(self.tape(), 0..n, Seed::One, budget);
            self.derived(tape, n, 1)
        }))
    }

    /// Inputs: x, v. Outputs: values, then the JVP.
    pub(super) fn tangent_prepared(&self) -> &Prepared {
        let (n, m) = (self.n_inputs(), self.n_outputs());
        self.tangent
            .get_or_init(|| self.derived(ad::verified::forward(self.tape(), 0..n), n, m))
    }

    /// Inputs: x, w. Outputs: values, then the VJP.
    #[inline]
    pub(super) fn vjp_prepared(&self) -> Result<&Prepared> {
        // As `gradient_prepared`: it exists only once the check passed.
        match self.vjp.get() {
            Some(prepared) => Ok(prepared),
            None => self.build_vjp(),
        }
    }

    #[cold]
    fn build_vjp(&self) -> Result<&Prepared> {
        self.check_reverse()?;
        let (n, m) = (self.n_inputs(), self.n_outputs());
        Ok(self.vjp.get_or_init(|| {
            let budget = self.options.memory_budget;
            let tape = ad::verified::reverse_with_budget(self.tape(), 0..n, Seed::Inputs, budget);
            self.derived(tape, n, m)
        }))
    }

    /// Inputs: x, v. Outputs: value, gradient, their tangents: the last n are Hv.
    /// Built from a gradient tape that stores every loop state (the forward
    /// transform does not go through checkpointed loops).
    #[inline]
    pub(super) fn hvp_prepared(&self) -> Result<&Prepared> {
        // Built only after the gradient was: the checks are behind it.
        match self.hvp.get() {
            Some(prepared) => Ok(prepared),
            None => self.build_hvp(),
        }
    }

    #[cold]
    fn build_hvp(&self) -> Result<&Prepared> {
        let gradient = &self.gradient_prepared()?.tape;
        let n = self.n_inputs();
        Ok(self.hvp.get_or_init(|| {
            let stored;
            let gradient = if gradient.checkpoints().is_empty() {
                gradient
            } else {
                stored =
                    opt::optimize_verified(&ad::verified::reverse(self.tape(), 0..n, Seed::One));
                &stored
            };
            self.derived(ad::verified::forward(gradient, 0..n), n, n + 2)
        }))
    }

    /// The forward vector-mode Jacobian tape, when it is small enough to
    /// build (inputs × tape length up to [`JACOBIAN_TAPE_MAX_WORK`]) and has
    /// no loops (vector mode through loops is not built; sweeps are used).
    /// Outputs: values, then the Jacobian row-major.
    pub(super) fn jacobian_prepared(&self) -> Option<&Prepared> {
        let (n, m) = (self.n_inputs(), self.n_outputs());
        self.jacobian
            .get_or_init(|| {
                let work = n.saturating_mul(self.tape().len());
                (work <= JACOBIAN_TAPE_MAX_WORK && !self.tape().has_structure())
                    .then(|| self.derived(ad::verified::jacobian_forward(self.tape(), 0..n), n, m))
            })
            .as_ref()
    }

    /// The adjoint tape computing value and gradient in one sweep (scalar functions).
    pub fn gradient_tape(&self) -> Result<&Tape> {
        Ok(&self.gradient_prepared()?.tape)
    }

    /// The tangent tape computing values and one JVP.
    pub fn tangent_tape(&self) -> &Tape {
        &self.tangent_prepared().tape
    }

    /// The adjoint tape with output weights as extra inputs (VJP); an error
    /// where the reverse transform refuses the tape ([`ad::reverse_hazard`]).
    pub fn vjp_tape(&self) -> Result<&Tape> {
        Ok(&self.vjp_prepared()?.tape)
    }

    /// The forward-over-reverse tape computing value, gradient and one HVP.
    pub fn hvp_tape(&self) -> Result<&Tape> {
        Ok(&self.hvp_prepared()?.tape)
    }

    /// The Jacobian tape (forward vector mode, unit seeds as constants), if
    /// small enough to build; see [`WithParams::jacobian`].
    pub fn jacobian_tape(&self) -> Option<&Tape> {
        self.jacobian_prepared().map(|p| &p.tape)
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
        self.vjp_prepared()?.compiled()
    }

    /// Binds passive parameters `p` for the evaluations of the returned view.
    pub fn with_params<'a>(&'a self, p: &'a [f64]) -> Result<WithParams<'a>> {
        check_len("params", p.len(), self.n_params())?;
        Ok(WithParams::new(self, p, self.engine))
    }

    fn without_params(&self) -> Result<WithParams<'_>> {
        if self.n_params() > 0 {
            return Err(Error::Unsupported(format!(
                "this function reads {} passive parameters: evaluate it through \
                 with_params(&p)",
                self.n_params()
            )));
        }
        Ok(WithParams::new(self, &[], self.engine))
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
