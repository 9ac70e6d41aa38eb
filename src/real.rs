//! The scalar trait user code is generic over.

use num_traits::{Float, FromPrimitive};
use std::fmt::Debug;
use std::iter::{Product, Sum};
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, RemAssign, Sub, SubAssign};

/// A real scalar: `f64` for plain evaluation, [`crate::Var`] while tracing.
///
/// Write a numeric function once against `T: Real` (or just `num_traits::Float`)
/// and it runs natively at `T = f64` and records a tape at `T = Var`.
///
/// Besides `Float`, `Real` offers branch-free conditionals: `cond_*` return a
/// condition as a scalar (`1` true, `0` false) and [`Real::select`] picks one
/// of two values by it. While tracing, these record a compare and a select
/// instead of deciding at trace time, so code written with them (ReLU, clamps,
/// piecewise formulas) never needs a guard and never retraces.
///
/// ```
/// use tapejit::Real;
/// fn relu<T: Real>(x: T) -> T {
///     T::select(x.cond_gt(T::zero()), x, T::zero())
/// }
/// assert_eq!(relu(-2.0), 0.0);
/// assert_eq!(relu(3.0), 3.0);
/// ```
pub trait Real:
    Float
    + FromPrimitive
    + Sum
    + Product
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + RemAssign
    + Add<f64, Output = Self>
    + Sub<f64, Output = Self>
    + Mul<f64, Output = Self>
    + Div<f64, Output = Self>
    + From<f64>
    + Debug
{
    /// `1` if `self < other`, else `0` (no guard while tracing).
    fn cond_lt(self, other: Self) -> Self;
    /// `1` if `self <= other`, else `0` (no guard while tracing).
    fn cond_le(self, other: Self) -> Self;
    /// `1` if `self > other`, else `0` (no guard while tracing).
    fn cond_gt(self, other: Self) -> Self {
        other.cond_lt(self)
    }
    /// `1` if `self >= other`, else `0` (no guard while tracing).
    fn cond_ge(self, other: Self) -> Self {
        other.cond_le(self)
    }
    /// `1` if `self == other`, else `0` (no guard while tracing).
    fn cond_eq(self, other: Self) -> Self;
    /// `1` if `self != other` (or either is NaN), else `0` (no guard while tracing).
    fn cond_ne(self, other: Self) -> Self;
    /// `a` where `cond` is non-zero (NaN counts as non-zero), else `b`.
    ///
    /// Derivatives flow only into the chosen branch.
    fn select(cond: Self, a: Self, b: Self) -> Self;

    /// Runs `body` `n` times on a carried state starting at `init`, feeding
    /// iteration `k` the elements `k` of the strided views `reads`; returns
    /// the final state. Call it through [`crate::fold`].
    ///
    /// The default runs the loop; the tracing type records the body once as
    /// a structured loop instead of unrolling it.
    fn fold_loop(
        n: usize,
        init: &[Self],
        reads: &[Strided<'_, Self>],
        body: &mut FoldBody<'_, Self>,
    ) -> Vec<Self> {
        plain_fold(n, init, reads, body)
    }
}

/// A [`fold`] body: `(state, row) -> next state`.
pub type FoldBody<'a, T> = dyn FnMut(&[T], &[T]) -> Vec<T> + 'a;

/// The loop [`Real::fold_loop`] stands for, run as written.
pub(crate) fn plain_fold<T: Real>(
    n: usize,
    init: &[T],
    reads: &[Strided<'_, T>],
    body: &mut FoldBody<'_, T>,
) -> Vec<T> {
    {
        let mut state = init.to_vec();
        let mut row = Vec::with_capacity(reads.len());
        for k in 0..n {
            row.clear();
            row.extend(reads.iter().map(|r| r.get(k)));
            state = body(&state, &row);
            assert_eq!(
                state.len(),
                init.len(),
                "fold: the body must return as many values as the initial state has"
            );
        }
        state
    }
}

/// A strided view of a slice: iteration `k` of a [`fold`] sees
/// `data[offset + k * stride]`.
#[derive(Clone, Copy, Debug)]
pub struct Strided<'a, T> {
    /// The viewed slice.
    pub data: &'a [T],
    /// Element seen by iteration 0.
    pub offset: usize,
    /// Distance between the elements of consecutive iterations.
    pub stride: usize,
}

impl<'a, T: Copy> Strided<'a, T> {
    /// The view `data[offset + k * stride]`.
    pub fn new(data: &'a [T], offset: usize, stride: usize) -> Strided<'a, T> {
        Strided {
            data,
            offset,
            stride,
        }
    }

    /// Element of iteration `k`.
    ///
    /// # Panics
    /// If it is outside `data`.
    pub fn get(&self, k: usize) -> T {
        self.data[self.offset + k * self.stride]
    }

    /// Whether iterations `0..n` stay inside `data`.
    pub fn fits(&self, n: usize) -> bool {
        n == 0
            || (n - 1)
                .checked_mul(self.stride)
                .and_then(|x| x.checked_add(self.offset))
                .is_some_and(|last| last < self.data.len())
    }
}

/// A loop the tracer records once instead of unrolling: runs `body(state,
/// row)` `n` times from `init`, where `row[j]` is element `k` of `reads[j]`
/// in iteration `k`, and returns the final state.
///
/// With `f64` (and any non-tracing [`Real`]) this is the plain loop. While
/// tracing, the body is traced once into a loop of the tape, so trace time,
/// tape size and compile time do not grow with `n`; values the body
/// captures from outside become loop invariants, and the strided reads must
/// view the traced function's inputs or parameters with a constant stride
/// (otherwise the loop is unrolled as usual). The body must take the same
/// branches in every iteration (use `select`/`cond_*` for data-dependent
/// choices): a guard recorded in the body that fails at a later iteration
/// makes the trace call return an error.
///
/// ```
/// use tapejit::{fold, Real, Strided};
/// // Σ x[i] * x[i + 1], generic over the scalar.
/// fn f<T: Real>(x: &[T]) -> T {
///     let n = x.len() - 1;
///     let reads = [Strided::new(x, 0, 1), Strided::new(x, 1, 1)];
///     fold(n, &[T::neg_zero()], &reads, |s, row| vec![s[0] + row[0] * row[1]])[0]
/// }
/// let x = [1.0, 2.0, 3.0, 4.0];
/// let tape = tapejit::trace_scalar(&x, &[], |x, _| f(x)).unwrap();
/// assert_eq!(tape.n_loops(), 1);
/// let value = tapejit::Function::from_tape(tape).unwrap().value(&x).unwrap();
/// assert_eq!(value, f(&x));
/// assert_eq!(value, 20.0);
/// ```
///
/// # Panics
/// If a read does not fit `n` iterations, or the body returns a state of
/// another length (also while tracing).
pub fn fold<T: Real>(
    n: usize,
    init: &[T],
    reads: &[Strided<'_, T>],
    mut body: impl FnMut(&[T], &[T]) -> Vec<T>,
) -> Vec<T> {
    for (j, r) in reads.iter().enumerate() {
        assert!(
            r.fits(n),
            "fold: read {j} (offset {}, stride {}) leaves its slice of {} within {n} iterations",
            r.offset,
            r.stride,
            r.data.len()
        );
    }
    T::fold_loop(n, init, reads, &mut body)
}

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

impl Real for f64 {
    fn cond_lt(self, other: Self) -> Self {
        flag(self < other)
    }
    fn cond_le(self, other: Self) -> Self {
        flag(self <= other)
    }
    fn cond_eq(self, other: Self) -> Self {
        flag(self == other)
    }
    fn cond_ne(self, other: Self) -> Self {
        flag(self != other)
    }
    fn select(cond: Self, a: Self, b: Self) -> Self {
        if cond != 0.0 {
            a
        } else {
            b
        }
    }
}
