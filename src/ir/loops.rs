//! Structured loops and arrays.
//!
//! A [`Loop`] is a body (itself a [`Tape`]) run a known number of times.
//! The body's inputs are, in order, the loop-carried values, the
//! loop-invariant captures and the strided reads of this iteration; its
//! outputs are the next carried values followed by the values it writes.
//! A body reads parameters directly (`param i` means the root tape's
//! parameter `i`) and may contain loops itself.
//!
//! Reads and writes address whole buffers with affine indices: element
//! `offset + Σ strides[d] * i_d`, where `i_0` is the iteration number of
//! the outermost enclosing loop and the last stride belongs to the loop
//! doing the access. Arrays belong to the root tape; each evaluation starts
//! with every element at `-0.0` (the additive identity, so that adjoints
//! can be accumulated into them bit for bit).

use super::{Tape, Value};

/// The number of an array of the root tape.
pub type ArrayId = u32;

/// What a strided access reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Buffer {
    /// The active inputs of the root tape.
    Input,
    /// The passive parameters of the root tape.
    Param,
    /// An array of the root tape.
    Array(ArrayId),
}

/// An affine access `buffer[offset + Σ strides[d] * i_d]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Access {
    /// The buffer addressed.
    pub buffer: Buffer,
    /// Element at iteration zero of every enclosing loop.
    pub offset: i64,
    /// One stride per enclosing loop, outermost first; the last is the
    /// accessing loop's own.
    pub strides: Vec<i64>,
}

impl Access {
    /// The element addressed at loop indices `index` (outermost first).
    pub fn element(&self, index: &[u32]) -> i64 {
        self.offset
            + self
                .strides
                .iter()
                .zip(index)
                .map(|(&s, &i)| s * i as i64)
                .sum::<i64>()
    }

    /// The smallest and largest element addressed when loop `d` runs
    /// `trips[d]` iterations (every trip count at least one).
    pub fn range(&self, trips: &[u32]) -> (i64, i64) {
        let (mut lo, mut hi) = (self.offset, self.offset);
        for (&s, &n) in self.strides.iter().zip(trips) {
            let span = s * (n as i64 - 1);
            if span < 0 {
                lo += span;
            } else {
                hi += span;
            }
        }
        (lo, hi)
    }
}

/// How a loop's write combines with the array element it addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WriteMode {
    /// `array[k] = value`
    Store,
    /// `array[k] = array[k] + value` (accumulating adjoints)
    Add,
}

/// One value a loop body writes per iteration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Write {
    /// Where (the buffer is always an array).
    pub access: Access,
    /// Store or accumulate.
    pub mode: WriteMode,
}

/// A counted loop: see the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loop {
    /// Number of iterations (at least one).
    pub trips: u32,
    /// The body: inputs `carried ++ invariants ++ reads`, outputs
    /// `next carried ++ writes`.
    pub body: Tape,
    /// Initial carried values (values of the enclosing tape).
    pub init: Vec<Value>,
    /// Values of the enclosing tape the body reads unchanged.
    pub invariants: Vec<Value>,
    /// Per-iteration strided reads.
    pub reads: Vec<Access>,
    /// Per-iteration strided writes.
    pub writes: Vec<Write>,
}

impl Loop {
    /// Number of carried values.
    pub fn n_carried(&self) -> usize {
        self.init.len()
    }

    /// Instructions of the body, nested bodies included, times the trips:
    /// the work of one run, in instructions.
    pub fn work(&self) -> u64 {
        self.trips as u64 * self.body.work()
    }
}

/// One entry of a tape's output list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// A scalar value.
    Value(Value),
    /// Elements `start..start + len` of an array, in order.
    Slice {
        /// The array.
        array: ArrayId,
        /// First element.
        start: u32,
        /// Number of elements.
        len: u32,
    },
}

impl Output {
    /// Number of output numbers this entry stands for.
    pub fn len(&self) -> usize {
        match *self {
            Output::Value(_) => 1,
            Output::Slice { len, .. } => len as usize,
        }
    }

    /// Whether the entry stands for no number (an empty slice).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The scalar value, if this entry is one.
    pub fn value(&self) -> Option<Value> {
        match *self {
            Output::Value(v) => Some(v),
            Output::Slice { .. } => None,
        }
    }
}

impl From<Value> for Output {
    fn from(v: Value) -> Output {
        Output::Value(v)
    }
}

/// A reverse loop's bounded-memory schedule: instead of reading the forward
/// loop's carried values from arrays stored by the forward sweep, it keeps
/// `snapshots` copies of the forward state and recomputes the state each
/// iteration needs with `step` (binomial checkpointing, see
/// [`crate::ad::checkpoint`]). The values are the same as with stored
/// states, bit for bit; only memory and time differ.
///
/// The reverse loop's body then has `states.len()` more inputs, after its
/// reads: input `k` of those is carried value `states[k]` of the forward
/// state at the forward iteration the reverse iteration undoes (iteration
/// `trips - 1 - i` at reverse iteration `i`). Only loops of the root tape
/// are checkpointed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Stored forward states, the initial one included (at least 1).
    pub snapshots: u32,
    /// One forward iteration: inputs `carried ++ invariants ++ reads`,
    /// outputs the next carried values.
    pub step: Tape,
    /// The forward state before the first iteration (values of the tape).
    pub init: Vec<Value>,
    /// Values of the tape `step` reads unchanged.
    pub invariants: Vec<Value>,
    /// The strided reads of `step`, indexed by the forward iteration.
    pub reads: Vec<Access>,
    /// Which carried values of the forward state the reverse body reads.
    pub states: Vec<u32>,
}

impl Checkpoint {
    /// Number of carried values of the forward state.
    pub fn n_carried(&self) -> usize {
        self.init.len()
    }
}
