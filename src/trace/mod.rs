//! Tracing: [`Var`] records every operation it takes part in.
//!
//! A `Var` carries its primal value, so comparisons and conversions are
//! decided at trace time; each such escape records a guard that later
//! evaluations check. A `Var<'t>` is branded with the lifetime of its trace:
//! values of two traces cannot be combined (a compile error), and a runtime
//! trace id catches the one case the brand cannot see (a nested trace using
//! its parent's values), which the trace call reports as an error.

mod float;
mod fold;
mod ops;

use crate::error::{Error, Result};
use crate::ir::{semantics, Inst, Loop, Op, Tape, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering};

/// Marks a `Var` that is a constant not yet written to any tape.
const UNRECORDED: u32 = u32::MAX;

/// The tracing scalar: a primal value plus the tape instruction that made it.
///
/// `Var` implements [`crate::Real`] and `num_traits::Float`, so generic
/// numeric code runs on it unchanged. Get `Var`s from [`trace_scalar`] or
/// [`trace_vector`] (or [`crate::Function`]); constants made with
/// `Var::from(2.0)`, `T::zero()` and the like join the tape when first used.
#[derive(Clone, Copy)]
pub struct Var<'t> {
    value: f64,
    index: u32,
    trace: u32,
    /// Invariant in `'t` (values of two traces never unify) and `!Send`
    /// (the recorder is thread-local).
    brand: Brand<'t>,
}

/// Invariant in `'t` and `!Send`.
type Brand<'t> = PhantomData<(fn(&'t ()) -> &'t (), *const ())>;

impl<'t> Var<'t> {
    fn constant(value: f64) -> Var<'t> {
        Var {
            value,
            index: UNRECORDED,
            trace: 0,
            brand: PhantomData,
        }
    }

    /// The value this `Var` had at trace time.
    ///
    /// Reading it does not record a guard, so a result computed from it is
    /// baked into the tape: use it for logging, not for computing.
    pub fn trace_value(&self) -> f64 {
        self.value
    }

    /// Whether this is a constant (not computed from inputs or parameters).
    pub fn is_constant(&self) -> bool {
        self.index == UNRECORDED
    }

    /// Records `op` on one operand.
    pub(crate) fn unary(self, op: Op) -> Var<'t> {
        record([self], semantics::unary(op, self.value), |[a]| {
            Inst::unary(op, a)
        })
    }

    /// Records `op` on two operands.
    pub(crate) fn binary(self, op: Op, other: Var<'t>) -> Var<'t> {
        record(
            [self, other],
            semantics::binary(op, self.value, other.value),
            |[a, b]| Inst::binary(op, a, b),
        )
    }

    /// Records `op` on three operands.
    pub(crate) fn ternary(self, op: Op, b: Var<'t>, c: Var<'t>) -> Var<'t> {
        record(
            [self, b, c],
            semantics::ternary(op, self.value, b.value, c.value),
            |[a, b, c]| Inst::ternary(op, a, b, c),
        )
    }

    /// Records `self.powi(n)`.
    pub(crate) fn powi_var(self, n: i32) -> Var<'t> {
        record([self], semantics::powi(self.value, n), |[a]| {
            Inst::powi(a, n)
        })
    }

    /// Decides a condition (a compare op, or any 0/1-valued op on `self`) at
    /// trace time and records a guard that it keeps its trace-time outcome.
    pub(crate) fn decide(cond: Var<'t>) -> bool {
        let outcome = semantics::truthy(cond.value);
        if !cond.is_constant() {
            record([cond], 0.0, |[c]| Inst::guard(c, outcome));
        }
        outcome
    }

    /// Records `op(self, other)` as a compare and guards its outcome.
    pub(crate) fn compare_guarded(self, op: Op, other: Var<'t>) -> bool {
        Var::decide(self.binary(op, other))
    }

    /// Guards that `self` keeps exactly its trace-time value (bitwise, or NaN
    /// for NaN), and returns that value: the escape hatch of `to_f64` and friends.
    pub(crate) fn pinned(self) -> f64 {
        Var::decide(self.binary(Op::Same, Var::constant(self.value)));
        self.value
    }
}

impl std::fmt::Debug for Var<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_constant() {
            write!(f, "Var({:?}, const)", self.value)
        } else {
            write!(f, "Var({:?}, %{})", self.value, self.index)
        }
    }
}

impl std::fmt::Display for Var<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.value, f)
    }
}

/// The tape being recorded on this thread.
struct Recorder {
    id: u32,
    insts: Vec<Inst>,
    constants: HashMap<u64, Value>,
    error: Option<Error>,
    /// The loop table of the tape being recorded.
    loops: Vec<Loop>,
    /// For a loop body: the traces whose values it may capture (the
    /// enclosing ones), and what it captured, as (trace, index) -> input.
    enclosing: Vec<u32>,
    captures: Vec<(Capture, Value)>,
    /// For the root: the values of the inputs and parameters (trace-time
    /// evaluation of loops reads them).
    root_values: (Vec<f64>, Vec<f64>),
}

/// A value of an enclosing trace used inside a loop body.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Capture {
    value: f64,
    index: u32,
    trace: u32,
}

impl Recorder {
    fn new(id: u32, insts: Vec<Inst>) -> Recorder {
        Recorder {
            id,
            insts,
            constants: HashMap::new(),
            error: None,
            loops: Vec::new(),
            enclosing: Vec::new(),
            captures: Vec::new(),
            root_values: (Vec::new(), Vec::new()),
        }
    }

    /// The tape value of `v`, writing a constant on first use.
    fn operand(&mut self, v: &Var<'_>) -> Value {
        if v.index == UNRECORDED {
            let insts = &mut self.insts;
            return *self.constants.entry(v.value.to_bits()).or_insert_with(|| {
                insts.push(Inst::constant(v.value));
                insts.len() as Value - 1
            });
        }
        if v.trace != self.id && self.enclosing.contains(&v.trace) {
            return self.capture(v);
        }
        if v.trace != self.id && self.error.is_none() {
            self.error = Some(Error::Trace(
                "a value from another trace was used inside this one (for example an outer \
                 trace's value inside a nested trace call); pass values between traces as f64"
                    .into(),
            ));
        }
        v.index
    }

    /// The body input standing for a captured value of an enclosing trace.
    fn capture(&mut self, v: &Var<'_>) -> Value {
        let key = Capture {
            value: v.value,
            index: v.index,
            trace: v.trace,
        };
        if let Some(&(_, slot)) = self
            .captures
            .iter()
            .find(|(c, _)| c.index == key.index && c.trace == key.trace)
        {
            return slot;
        }
        // Numbered after the body's carried values and reads; `fold` renumbers.
        let input = fold::CAPTURE_BASE + self.captures.len() as u32;
        self.insts.push(Inst::input(input));
        let slot = self.insts.len() as Value - 1;
        self.captures.push((key, slot));
        slot
    }

    fn fail(&mut self, message: String) {
        if self.error.is_none() {
            self.error = Some(Error::Trace(message));
        }
    }
}

thread_local! {
    /// Traces in progress on this thread, innermost last.
    static RECORDERS: RefCell<Vec<Recorder>> = const { RefCell::new(Vec::new()) };
}

static NEXT_TRACE_ID: AtomicU32 = AtomicU32::new(1);

/// Records one instruction over `vars`, or folds it when all are constants.
#[inline]
fn record<'t, const N: usize>(
    vars: [Var<'t>; N],
    value: f64,
    make: impl FnOnce([Value; N]) -> Inst,
) -> Var<'t> {
    if vars.iter().all(Var::is_constant) {
        return Var::constant(value);
    }
    RECORDERS.with_borrow_mut(|stack| {
        // A recorded Var cannot outlive its trace (the brand), so a recorder exists.
        let Some(rec) = stack.last_mut() else {
            return Var::constant(f64::NAN);
        };
        let operands = vars.map(|v| rec.operand(&v));
        rec.insts.push(make(operands));
        Var {
            value,
            index: rec.insts.len() as u32 - 1,
            trace: rec.id,
            brand: PhantomData,
        }
    })
}

/// Reports misuse found while tracing (e.g. `clamp` with `min > max`); the
/// trace call then returns this as [`Error::Trace`].
pub(crate) fn trace_error(message: String) {
    RECORDERS.with_borrow_mut(|stack| {
        if let Some(rec) = stack.last_mut() {
            rec.fail(message);
        }
    });
}

/// Pops the recorder even if the traced function panics.
struct PopOnDrop;

impl Drop for PopOnDrop {
    fn drop(&mut self) {
        RECORDERS.with_borrow_mut(|stack| stack.pop());
    }
}

/// Traces a function with one output.
///
/// `x` are the active inputs (differentiated), `p` the passive parameters
/// (data read by the tape, changeable later without retracing). Branches
/// are taken as they go at `x` and `p` and recorded as guards.
///
/// ```
/// use tapejit::Float;
/// let tape = tapejit::trace_scalar(&[1.0, 2.0], &[], |x, _p| x[0] * x[1].sin()).unwrap();
/// assert_eq!(tape.n_inputs(), 2);
/// ```
pub fn trace_scalar<F>(x: &[f64], p: &[f64], f: F) -> Result<Tape>
where
    F: for<'t> FnOnce(&[Var<'t>], &[Var<'t>]) -> Var<'t>,
{
    trace_vector(x, p, |x, p| vec![f(x, p)])
}

/// Traces a function with a vector of outputs; see [`trace_scalar`].
pub fn trace_vector<F>(x: &[f64], p: &[f64], f: F) -> Result<Tape>
where
    F: for<'t> FnOnce(&[Var<'t>], &[Var<'t>]) -> Vec<Var<'t>>,
{
    let too_many = |what: &str, n: usize| {
        Error::Trace(format!(
            "{n} {what} is more than a tape can index ({})",
            u32::MAX - 1
        ))
    };
    let n_x = u32::try_from(x.len()).map_err(|_| too_many("inputs", x.len()))?;
    let n_p = u32::try_from(p.len()).map_err(|_| too_many("params", p.len()))?;
    let id = NEXT_TRACE_ID.fetch_add(1, Ordering::Relaxed);
    let mut insts = Vec::with_capacity(x.len() + p.len() + 1024);
    insts.extend((0..n_x).map(Inst::input));
    insts.extend((0..n_p).map(Inst::param));
    RECORDERS.with_borrow_mut(|stack| {
        let mut rec = Recorder::new(id, insts);
        rec.root_values = (x.to_vec(), p.to_vec());
        stack.push(rec)
    });
    let pop = PopOnDrop;
    let var = |value: f64, index: u32| Var {
        value,
        index,
        trace: id,
        brand: PhantomData,
    };
    let xs: Vec<Var> = (0..n_x).map(|i| var(x[i as usize], i)).collect();
    let ps: Vec<Var> = (0..n_p).map(|i| var(p[i as usize], n_x + i)).collect();
    let outs = f(&xs, &ps);
    let (insts, outputs, loops, error) = RECORDERS.with_borrow_mut(|stack| {
        let rec = stack
            .last_mut()
            .expect("this trace's recorder is on the stack");
        let outputs: Vec<Value> = outs.iter().map(|v| rec.operand(v)).collect();
        (
            std::mem::take(&mut rec.insts),
            outputs,
            std::mem::take(&mut rec.loops),
            rec.error.take(),
        )
    });
    drop(pop);
    if let Some(e) = error {
        return Err(e);
    }
    if outputs.is_empty() {
        return Err(Error::Trace(
            "the traced function returned no outputs".into(),
        ));
    }
    if insts.len() >= u32::MAX as usize {
        return Err(too_many("instructions", insts.len()));
    }
    let outputs = outputs.into_iter().map(crate::ir::Output::Value).collect();
    let tape = Tape::from_structured(insts, outputs, x.len(), p.len(), loops, Vec::new());
    debug_assert!(tape.verify().is_ok(), "{:?}", tape.verify());
    Ok(tape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp;

    fn run(tape: &Tape, x: &[f64], p: &[f64]) -> Result<Vec<f64>> {
        let mut out = vec![0.0; tape.n_outputs()];
        interp::eval(tape, x, p, &mut Vec::new(), &mut out)?;
        Ok(out)
    }

    #[test]
    fn records_and_replays() {
        let tape = trace_scalar(&[3.0], &[2.0], |x, p| x[0] * p[0] + 1.0).unwrap();
        assert_eq!(run(&tape, &[3.0], &[2.0]).unwrap(), [7.0]);
        assert_eq!(run(&tape, &[5.0], &[10.0]).unwrap(), [51.0]);
    }

    #[test]
    fn constants_fold_and_are_shared() {
        let tape = trace_scalar(&[1.0], &[], |x, _| {
            let two = Var::from(1.0) + Var::from(1.0);
            x[0] * two + two
        })
        .unwrap();
        // input, const 2, mul, add
        assert_eq!(tape.len(), 4, "{tape}");
    }

    #[test]
    fn nested_trace_using_outer_values_is_an_error() {
        let mut inner = None;
        let outer = trace_scalar(&[1.0], &[], |x, _| {
            inner = Some(trace_scalar(&[2.0], &[], |y, _| {
                let _ = x[0] * x[0];
                y[0]
            }));
            x[0]
        });
        assert!(outer.is_ok());
        let err = inner.unwrap().unwrap_err();
        assert!(err.to_string().contains("another trace"), "{err}");
    }

    #[test]
    fn recorder_is_popped_after_a_panic() {
        let r = std::panic::catch_unwind(|| {
            trace_scalar(&[1.0], &[], |_, _| panic!("user code panicked"))
        });
        assert!(r.is_err());
        RECORDERS.with_borrow(|s| assert!(s.is_empty()));
        assert!(trace_scalar(&[1.0], &[], |x, _| x[0]).is_ok());
    }
}
