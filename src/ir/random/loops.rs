//! Random tapes with loops and arrays, drawn through [`Choices`] like the
//! straight-line ones (so the fuzz crate can drive them too).
//!
//! A tape starts with a straight-line prefix, then alternates loops with
//! scalar segments, `elem`, `store` and `loopout` instructions, and ends
//! with scalar outputs and array slices. A loop has 1 to [`MAX_TRIPS`]
//! trips, 0 to 3 carried values, a few invariants, strided reads of the
//! inputs, the parameters or the arrays (positive, zero and negative
//! strides, always in bounds) and `store` or `add` writes to arrays (new
//! ones, or ones written or read before). Its body is built the same way,
//! one level deeper, so loops nest up to [`MAX_DEPTH`] levels; bodies read
//! parameters with `param i` and contain `elem`/`store` and, sometimes,
//! guards. The scalar code between the structure comes from the
//! straight-line generator of the parent module (every op, special
//! constants, repeated subexpressions, guards on compares), spliced in with
//! its inputs bound to values of the tape being built. The work of one
//! evaluation ([`Tape::work`]) stays within [`LoopTapeConfig::max_work`].
//!
//! - [`random_loop_tape`] / [`random_loop_tape_with`]: a tape of a given shape;
//! - [`arbitrary_loop_tape`]: the shape drawn too, from a handful of
//!   instructions to about 10^4 instructions of work;
//! - [`smooth_loop_tape`]: only smooth, well-conditioned operations on the
//!   input box, for derivative tests (see its docs).

use super::{
    generate, smooth_image, Choices, Interval, Knobs, RandomTapeConfig, SmoothTape, SMOOTH_BOUND,
    SMOOTH_BOX,
};
use crate::ir::{
    Access, ArrayId, Buffer, Inst, Loop, Op, Output, Tape, Value, Write, WriteMode, ALL_OPS,
};
use crate::rng::SplitMix64;
use std::collections::HashSet;

/// Most trips of a generated loop.
pub const MAX_TRIPS: u32 = 50;

/// Deepest nesting of generated loops.
pub const MAX_DEPTH: usize = 3;

/// Longest array the generator declares.
const MAX_ARRAY: i64 = 4096;

/// Shape of a random loop tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoopTapeConfig {
    /// Active inputs (strided reads address them too).
    pub n_inputs: usize,
    /// Passive parameters.
    pub n_params: usize,
    /// Bound on the work of one evaluation ([`Tape::work`]: instructions,
    /// loop bodies counted once per iteration).
    pub max_work: u64,
    /// Deepest loop nesting (at most [`MAX_DEPTH`]; 0: no loops).
    pub max_depth: usize,
    /// Scalar instructions of the straight-line prefix.
    pub prefix_len: usize,
    /// Loops at the top level (fewer if the work runs out).
    pub loops: usize,
    /// One guard in this many scalar instructions on average, at the top
    /// level and in one body of three (0: none).
    pub guard_every: usize,
    /// Scalar outputs (array slices come on top).
    pub n_outputs: usize,
}

impl Default for LoopTapeConfig {
    fn default() -> Self {
        LoopTapeConfig {
            n_inputs: 8,
            n_params: 3,
            max_work: 2_000,
            max_depth: MAX_DEPTH,
            prefix_len: 8,
            loops: 3,
            guard_every: 24,
            n_outputs: 3,
        }
    }
}

/// A random verified loop tape: the seeded form of [`random_loop_tape_with`].
pub fn random_loop_tape(seed: u64, config: &LoopTapeConfig) -> Tape {
    random_loop_tape_with(&mut SplitMix64::new(seed), config)
}

/// A random verified tape with loops and arrays of the given shape, every
/// decision drawn from `choices` (see the module docs).
pub fn random_loop_tape_with<C: Choices + ?Sized>(
    choices: &mut C,
    config: &LoopTapeConfig,
) -> Tape {
    Gen::new(choices, config, None).run(config)
}

/// A random verified loop tape whose shape is drawn from `choices` too: 0
/// to 16 inputs, 0 to 4 parameters, nesting depth 0 to 3, 0 to 4 top-level
/// loops, guards or none, 0 to 5 scalar outputs, and a work bound drawn up
/// to `max_work` (tiny tapes of a handful of instructions included).
pub fn arbitrary_loop_tape<C: Choices + ?Sized>(choices: &mut C, max_work: u64) -> Tape {
    let config = arbitrary_config(choices, max_work);
    random_loop_tape_with(choices, &config)
}

/// The shape [`arbitrary_loop_tape`] draws.
fn arbitrary_config<C: Choices + ?Sized>(c: &mut C, max_work: u64) -> LoopTapeConfig {
    let n_inputs = match c.below(4) {
        0 => c.below(3),
        _ => c.below(17),
    };
    let max_work = match c.below(4) {
        0 => max_work.min(8 + c.below(40) as u64),
        1 => max_work.min(200 + c.below(1_000) as u64),
        _ => max_work,
    };
    LoopTapeConfig {
        n_inputs,
        n_params: c.below(5),
        max_work,
        max_depth: [1, 2, 3, 3, 0][c.below(5)],
        prefix_len: c.below(17),
        loops: c.below(5),
        guard_every: [0, 0, 6, 16, 48][c.below(5)],
        n_outputs: c.below(6),
    }
}

/// A random loop tape that is smooth, with bounded values, on the input box
/// `[-SMOOTH_BOX, SMOOTH_BOX]^n`, and the parameter values it was built for
/// (drawn in the box too).
///
/// Every value carries an interval enclosing it over the box and over every
/// iteration; scalar ops are admitted as in [`super::smooth_tape`] (smooth
/// with a margin from every singularity and kink, results within
/// [`SMOOTH_BOUND`]), and guards only on compares decided on the whole box,
/// so they always hold. Loops keep their carried values in `[-1, 1]`: a
/// carried value `c` starts there (a `tanh` is put in front of an initial
/// value that is not) and moves by the damped step `c + h (tanh(e) - c)`
/// with `h = 1 / trips`, whose derivative in `c` stays near `1 - h`. An
/// array's interval holds all it was ever written (and its initial zero);
/// an `add` write is bounded by its number of iterations, and a loop nest
/// never reads an array it writes, so every read is enclosed. Strided
/// reads of inputs see the box, of parameters their hull.
pub fn smooth_loop_tape<C: Choices + ?Sized>(c: &mut C, config: &LoopTapeConfig) -> SmoothTape {
    let params: Vec<f64> = (0..config.n_params)
        .map(|_| c.uniform(-SMOOTH_BOX, SMOOTH_BOX))
        .collect();
    let tape = Gen::new(c, config, Some(params.clone())).run(config);
    SmoothTape { tape, params }
}

/// What is known of an array while generating.
struct ArrayState {
    len: u32,
    written: bool,
    /// Encloses every value it holds (smooth tapes).
    range: Interval,
}

/// One tape under construction: the root or a loop body.
struct Scope {
    tape: Tape,
    /// Values usable as operands, with their intervals (unbounded unless smooth).
    values: Vec<(Value, Interval)>,
    /// Compares whose outcome is known on the whole box (smooth guards).
    conditions: Vec<(Value, bool)>,
    /// Trip counts of the enclosing loops, outermost first.
    trips: Vec<u32>,
    /// Executions of each instruction per evaluation (product of `trips`).
    mult: u64,
    /// Loop instructions of this tape and the intervals of their carried values.
    loops: Vec<(Value, Vec<Interval>)>,
    /// One guard in this many scalar instructions (0: none).
    guard_every: usize,
}

impl Scope {
    fn depth(&self) -> usize {
        self.trips.len()
    }
}

/// The whole real line: a value of a non-smooth tape.
const ANY: Interval = Interval {
    lo: f64::NEG_INFINITY,
    hi: f64::INFINITY,
};

/// Where the carried values of a smooth loop live.
fn carried_range() -> Interval {
    Interval::hull(&[-1.0, 1.0])
}

struct Gen<'c, C: ?Sized> {
    c: &'c mut C,
    n_inputs: usize,
    n_params: usize,
    /// The parameter values, for a smooth tape (`None`: any tape).
    params: Option<Vec<f64>>,
    arrays: Vec<ArrayState>,
    work_left: u64,
    max_depth: usize,
    guard_every: usize,
    /// Arrays read and written inside the open top-level loop (a smooth
    /// tape never does both to one array there).
    nest_reads: HashSet<ArrayId>,
    nest_writes: HashSet<ArrayId>,
    /// The elements last stored to and read: `elem` reads the one and
    /// `store` writes the other now and then (loads around stores, for CSE
    /// and DCE to get wrong).
    last_store: Option<(ArrayId, u32)>,
    last_elem: Option<(ArrayId, u32)>,
    ops: Vec<Op>,
}

impl<'c, C: Choices + ?Sized> Gen<'c, C> {
    fn new(c: &'c mut C, config: &LoopTapeConfig, params: Option<Vec<f64>>) -> Self {
        Gen {
            c,
            n_inputs: config.n_inputs,
            n_params: config.n_params,
            params,
            arrays: Vec::new(),
            work_left: config.max_work,
            max_depth: config.max_depth.min(MAX_DEPTH),
            guard_every: config.guard_every,
            nest_reads: HashSet::new(),
            nest_writes: HashSet::new(),
            last_store: None,
            last_elem: None,
            ops: ALL_OPS
                .iter()
                .copied()
                .filter(|op| !matches!(op, Op::Input | Op::Param | Op::Guard))
                .collect(),
        }
    }

    fn smooth(&self) -> bool {
        self.params.is_some()
    }

    fn run(mut self, config: &LoopTapeConfig) -> Tape {
        let mut root = Scope {
            tape: Tape::new(self.n_inputs, self.n_params),
            values: Vec::new(),
            conditions: Vec::new(),
            trips: Vec::new(),
            mult: 1,
            loops: Vec::new(),
            guard_every: self.guard_every,
        };
        // A few inputs and parameters as instructions (strided reads reach the rest).
        for _ in 0..self.n_inputs.min(4) {
            if self.afford(&root, 1) {
                let i = self.c.below(self.n_inputs) as u32;
                let box_ = Interval::hull(&[-SMOOTH_BOX, SMOOTH_BOX]);
                let range = if self.smooth() { box_ } else { ANY };
                self.push(&mut root, Inst::input(i), range);
            }
        }
        for _ in 0..self.n_params.min(2) {
            self.param(&mut root);
        }
        self.ensure_value(&mut root);
        self.segment(&mut root, config.prefix_len, false);
        for _ in 0..config.loops {
            if self.c.exhausted() {
                break;
            }
            self.make_loop(&mut root);
            let count = 1 + self.c.below(3);
            self.actions(&mut root, count);
        }
        let Scope { mut tape, .. } = self.outputs(root, config.n_outputs);
        for a in &self.arrays {
            tape.add_array(a.len);
        }
        debug_assert!(tape.verify().is_ok(), "{tape}");
        debug_assert!(tape.work() <= config.max_work.max(1), "{tape}");
        tape
    }

    /// Whether `n` more instructions fit in the work budget of `s`.
    fn afford(&self, s: &Scope, n: u64) -> bool {
        n.saturating_mul(s.mult) <= self.work_left
    }

    /// Appends `inst` (charging its work); a value joins the operands.
    fn push(&mut self, s: &mut Scope, inst: Inst, range: Interval) -> Value {
        self.work_left = self.work_left.saturating_sub(s.mult);
        let v = s.tape.push(inst);
        if !inst.op.has_no_value() {
            s.values.push((v, range));
        }
        v
    }

    /// A tape needs a value to build on: a constant if it has none.
    fn ensure_value(&mut self, s: &mut Scope) {
        if s.values.is_empty() {
            let k = if self.smooth() {
                0.5
            } else {
                super::constant(self.c)
            };
            // Always pushed, budget or not: a tape of one constant is the smallest.
            self.push(s, Inst::constant(k), Interval::point(k));
        }
    }

    /// An operand: mostly a recent value, sometimes any.
    fn pick(&mut self, s: &Scope) -> (Value, Interval) {
        let n = s.values.len();
        if self.c.one_in(4) {
            s.values[self.c.below(n)]
        } else {
            s.values[n - 1 - self.c.below(n.min(8))]
        }
    }

    fn param(&mut self, s: &mut Scope) {
        if self.n_params == 0 || !self.afford(s, 1) {
            return;
        }
        let i = self.c.below(self.n_params);
        let range = match &self.params {
            Some(p) => Interval::point(p[i]),
            None => ANY,
        };
        self.push(s, Inst::param(i as u32), range);
    }

    /// A few of: scalar segments, loops, `elem`, `store`, `loopout`, `param`.
    fn actions(&mut self, s: &mut Scope, count: usize) {
        for _ in 0..count {
            if self.c.exhausted() {
                break;
            }
            match self.c.below(12) {
                0..=3 => {
                    let len = 1 + self.c.below(if s.depth() == 0 { 12 } else { 6 });
                    self.segment(s, len, false);
                }
                4..=6 => self.make_loop(s),
                7 | 8 => self.elem(s),
                9 | 10 => self.store(s),
                _ if !s.loops.is_empty() && self.c.one_in(2) => {
                    let (lp, ranges) = s.loops[self.c.below(s.loops.len())].clone();
                    if !ranges.is_empty() && self.afford(s, 1) {
                        let k = self.c.below(ranges.len());
                        self.push(s, Inst::loop_out(lp, k as u32), ranges[k]);
                    }
                }
                _ => self.param(s),
            }
        }
    }

    /// About `len` scalar instructions; with `recent`, the straight-line
    /// generator's inputs are the latest values (a body's slots), otherwise
    /// values picked from all.
    fn segment(&mut self, s: &mut Scope, len: usize, recent: bool) {
        let room = (self.work_left / s.mult) as usize;
        if self.smooth() {
            for _ in 0..len.min(room) {
                self.smooth_step(s);
            }
            return;
        }
        let seeds = self.c.below(3);
        if room <= seeds {
            return;
        }
        // The straight-line generator, its inputs bound to values of `s`.
        let bound: Vec<Value> = if recent {
            let n = s.values.len();
            s.values[n - n.min(6)..].iter().map(|&(v, _)| v).collect()
        } else {
            let k = 1 + self.c.below(s.values.len().min(6));
            (0..k).map(|_| self.pick(s).0).collect()
        };
        let config = RandomTapeConfig {
            len: len.min(room - seeds),
            n_inputs: bound.len(),
            n_params: 0,
            n_outputs: 0,
            guard_every: s.guard_every,
        };
        let knobs = Knobs {
            seed_constants: seeds,
            guard_any_value: false,
        };
        let piece = generate(self.c, &config, knobs);
        let mut map: Vec<Value> = Vec::with_capacity(piece.len());
        for inst in piece.insts() {
            if inst.op == Op::Input {
                map.push(bound[inst.args[0] as usize]);
                continue;
            }
            let mut inst = *inst;
            for slot in &mut inst.args[..inst.op.arity()] {
                *slot = map[*slot as usize];
            }
            map.push(self.push(s, inst, ANY));
        }
    }

    /// One smooth instruction (see [`smooth_loop_tape`]): a constant, an op
    /// smooth on its operands' intervals, or a guard on a decided compare.
    fn smooth_step(&mut self, s: &mut Scope) {
        if s.guard_every > 0 && !s.conditions.is_empty() && self.c.one_in(s.guard_every) {
            let (cond, truth) = s.conditions[self.c.below(s.conditions.len())];
            self.push(s, Inst::guard(cond, truth), ANY);
            return;
        }
        for _ in 0..6 {
            let op = self.ops[self.c.below(self.ops.len())];
            if op == Op::Const {
                let k = match self.c.below(3) {
                    0 => [0.5, 2.0, -1.0, 3.0, 0.0, -0.0, 1.0][self.c.below(7)],
                    _ => self.c.uniform(-2.0, 2.0),
                };
                self.push(s, Inst::constant(k), Interval::point(k));
                return;
            }
            let operands: Vec<(Value, Interval)> = (0..op.arity()).map(|_| self.pick(s)).collect();
            let ranges: Vec<Interval> = operands.iter().map(|o| o.1).collect();
            let n = self.c.below(8) as i32 - 3;
            let Some(image) = smooth_image(op, &ranges, n) else {
                continue;
            };
            let mut args = [0; 3];
            for (slot, o) in args.iter_mut().zip(&operands) {
                *slot = o.0;
            }
            let inst = match op {
                Op::PowI => Inst::powi(args[0], n),
                _ => Inst { op, args },
            };
            let v = self.push(s, inst, image);
            if let Some(truth) = image.truth().filter(|_| op.is_compare()) {
                s.conditions.push((v, truth));
            }
            return;
        }
        let (v, range) = self.pick(s);
        self.push(s, Inst::unary(Op::Tanh, v), range.monotone(f64::tanh));
    }

    /// A stride: zero, small of either sign, or now and then large.
    fn stride(&mut self) -> i64 {
        let magnitude = match self.c.below(8) {
            0 | 1 => 0,
            2..=4 => 1,
            5 | 6 => 2 + self.c.below(2) as i64,
            _ => 4 + self.c.below(14) as i64,
        };
        if self.c.one_in(2) {
            -magnitude
        } else {
            magnitude
        }
    }

    /// Strides for a loop nest with these trip counts whose span is below
    /// `room` elements (zeroing strides until it is), and the span's
    /// smallest element at offset zero.
    fn strides(&mut self, trips: &[u32], room: i64) -> (Vec<i64>, i64, i64) {
        let mut strides: Vec<i64> = trips.iter().map(|_| self.stride()).collect();
        loop {
            let (lo, hi) = Access {
                buffer: Buffer::Input,
                offset: 0,
                strides: strides.clone(),
            }
            .range(trips);
            if hi - lo < room {
                return (strides, lo, hi);
            }
            let nonzero: Vec<usize> = (0..strides.len()).filter(|&d| strides[d] != 0).collect();
            strides[nonzero[self.c.below(nonzero.len())]] = 0;
        }
    }

    /// An access inside a buffer of `len` elements, or `None` if it is empty.
    fn access(&mut self, buffer: Buffer, len: u64, trips: &[u32]) -> Option<Access> {
        if len == 0 {
            return None;
        }
        let (strides, lo, hi) = self.strides(trips, len as i64);
        let slack = len as i64 - (hi - lo);
        Some(Access {
            buffer,
            offset: -lo + self.c.below(slack as usize) as i64,
            strides,
        })
    }

    /// Arrays a read may address (a smooth nest never reads what it writes).
    fn readable(&self) -> Vec<ArrayId> {
        (0..self.arrays.len() as ArrayId)
            .filter(|k| !self.smooth() || !self.nest_writes.contains(k))
            .collect()
    }

    /// A strided read for a loop nest with these trips, and its interval.
    fn read(&mut self, trips: &[u32]) -> Option<(Access, Interval)> {
        let arrays = self.readable();
        for _ in 0..3 {
            let (buffer, len) = match self.c.below(3) {
                0 => (Buffer::Input, self.n_inputs as u64),
                1 => (Buffer::Param, self.n_params as u64),
                _ if arrays.is_empty() => continue,
                _ => {
                    // Mostly arrays written before.
                    let written: Vec<ArrayId> = arrays
                        .iter()
                        .copied()
                        .filter(|&k| self.arrays[k as usize].written)
                        .collect();
                    let from = if written.is_empty() || self.c.one_in(4) {
                        &arrays
                    } else {
                        &written
                    };
                    let k = from[self.c.below(from.len())];
                    (Buffer::Array(k), self.arrays[k as usize].len as u64)
                }
            };
            let Some(access) = self.access(buffer, len, trips) else {
                continue;
            };
            let range = match (buffer, &self.params) {
                (_, None) => ANY,
                (Buffer::Input, _) => Interval::hull(&[-SMOOTH_BOX, SMOOTH_BOX]),
                (Buffer::Param, Some(p)) => Interval::hull(p),
                (Buffer::Array(k), _) => self.arrays[k as usize].range,
            };
            if let Buffer::Array(k) = buffer {
                self.nest_reads.insert(k);
            }
            return Some((access, range));
        }
        None
    }

    /// A write's access: into an array written or read before, or a new one.
    fn write_access(&mut self, trips: &[u32]) -> Access {
        let candidates: Vec<ArrayId> = (0..self.arrays.len() as ArrayId)
            .filter(|k| !self.smooth() || !self.nest_reads.contains(k))
            .collect();
        if !candidates.is_empty() && self.c.one_in(2) {
            let k = candidates[self.c.below(candidates.len())];
            let len = self.arrays[k as usize].len as u64;
            if let Some(a) = self.access(Buffer::Array(k), len, trips) {
                return a;
            }
        }
        let (strides, lo, hi) = self.strides(trips, MAX_ARRAY);
        let len = (hi - lo + 1) as u32 + self.c.below(6) as u32;
        let k = self.new_array(len);
        Access {
            buffer: Buffer::Array(k),
            offset: -lo + self.c.below((len as i64 - (hi - lo)) as usize) as i64,
            strides,
        }
    }

    fn new_array(&mut self, len: u32) -> ArrayId {
        self.arrays.push(ArrayState {
            len,
            written: false,
            range: Interval::point(-0.0),
        });
        self.arrays.len() as ArrayId - 1
    }

    /// `elem aK[j]`.
    fn elem(&mut self, s: &mut Scope) {
        let arrays = self.readable();
        if arrays.is_empty() || !self.afford(s, 1) {
            return;
        }
        let again = match self.c.below(3) {
            0 => self.last_store,
            1 => self.last_elem,
            _ => None,
        };
        let (k, index) = match again {
            Some((k, index)) if arrays.contains(&k) => (k, index),
            _ => {
                let k = arrays[self.c.below(arrays.len())];
                (k, self.c.below(self.arrays[k as usize].len as usize) as u32)
            }
        };
        let range = self.arrays[k as usize].range;
        self.last_elem = Some((k, index));
        let range = if self.smooth() { range } else { ANY };
        self.nest_reads.insert(k);
        self.push(s, Inst::elem(k, index), range);
    }

    /// `store aK[j] %v`, into an existing array or a new small one.
    fn store(&mut self, s: &mut Scope) {
        if !self.afford(s, 1) {
            return;
        }
        let open = s.depth() > 0;
        let candidates: Vec<ArrayId> = (0..self.arrays.len() as ArrayId)
            .filter(|k| !self.smooth() || !open || !self.nest_reads.contains(k))
            .collect();
        let (k, index) = match self.last_elem {
            Some((k, index)) if candidates.contains(&k) && self.c.one_in(2) => (k, index),
            _ => {
                let k = if !candidates.is_empty() && !self.c.one_in(3) {
                    candidates[self.c.below(candidates.len())]
                } else {
                    let len = 1 + self.c.below(16) as u32;
                    self.new_array(len)
                };
                (k, self.c.below(self.arrays[k as usize].len as usize) as u32)
            }
        };
        let (v, range) = self.pick(s);
        self.last_store = Some((k, index));
        let a = &mut self.arrays[k as usize];
        a.written = true;
        a.range = Interval::hull(&[a.range.lo, a.range.hi, range.lo, range.hi]);
        if open {
            self.nest_writes.insert(k);
        }
        self.push(s, Inst::store(k, index, v), ANY);
    }

    /// A loop in `s`, if the depth and the work budget allow one.
    fn make_loop(&mut self, s: &mut Scope) {
        if s.depth() >= self.max_depth {
            return;
        }
        let smooth = self.smooth();
        let n_carried = self.c.below(4);
        let n_invariants = self.c.below(3);
        let n_reads = self.c.below(4);
        let n_writes = self.c.below(3);
        let slots = n_carried + n_invariants + n_reads;
        // The body's least work per trip: its slots, a value, the carried updates.
        let update = if smooth { 4 * n_carried + 1 } else { 0 };
        let min_body = (slots + 1 + update) as u64;
        // Here: the loop, loopouts, and (smooth) a tanh per initial value.
        let here = 1 + 2 * n_carried as u64;
        // Half of what is left, sometimes, so that later loops get some.
        let room = self.work_left / s.mult / if self.c.one_in(2) { 2 } else { 1 };
        if room < here + min_body {
            return;
        }
        // Room for a body of some size besides its slots, if possible.
        let want = min_body + self.c.below(24) as u64;
        let per_trip = if room - here >= want { want } else { min_body };
        let most = (MAX_TRIPS as u64).min((room - here) / per_trip) as u32;
        let trips = match self.c.below(4) {
            0 => 1,
            1 => most,
            _ => 1 + self.c.below(most as usize) as u32,
        };
        let top = s.depth() == 0;
        if top {
            self.nest_reads.clear();
            self.nest_writes.clear();
        }
        let mut slot_ranges = Vec::with_capacity(slots);
        let mut init = Vec::with_capacity(n_carried);
        for _ in 0..n_carried {
            let (mut v, range) = self.pick(s);
            if smooth && !range.within(carried_range().lo, carried_range().hi) {
                v = self.push(s, Inst::unary(Op::Tanh, v), range.monotone(f64::tanh));
            }
            init.push(v);
            slot_ranges.push(if smooth { carried_range() } else { ANY });
        }
        let mut invariants = Vec::with_capacity(n_invariants);
        for _ in 0..n_invariants {
            let (v, range) = self.pick(s);
            invariants.push(v);
            slot_ranges.push(range);
        }
        let mut trips_in = s.trips.clone();
        trips_in.push(trips);
        let mut reads = Vec::with_capacity(n_reads);
        for _ in 0..n_reads {
            if let Some((access, range)) = self.read(&trips_in) {
                reads.push(access);
                slot_ranges.push(range);
            }
        }
        let accesses: Vec<Access> = (0..n_writes)
            .map(|_| self.write_access(&trips_in))
            .collect();
        for a in &accesses {
            if let Buffer::Array(k) = a.buffer {
                self.arrays[k as usize].written = true;
                self.nest_writes.insert(k);
            }
        }

        // The body, with the work of the loop's own instructions here and
        // of the carried updates set aside.
        // Set aside while the body is made: the loop, its loopouts and the
        // carried updates (what is left still pays for the body's slots).
        let reserve = (1 + n_carried as u64) * s.mult + update as u64 * s.mult * trips as u64;
        debug_assert!(reserve <= self.work_left);
        self.work_left -= reserve;
        let mut body = Scope {
            tape: Tape::new(slot_ranges.len(), self.n_params),
            values: Vec::new(),
            conditions: Vec::new(),
            trips: trips_in,
            mult: s.mult * trips as u64,
            loops: Vec::new(),
            guard_every: if self.c.one_in(3) {
                self.guard_every
            } else {
                0
            },
        };
        for (k, &range) in slot_ranges.iter().enumerate() {
            self.push(&mut body, Inst::input(k as u32), range);
        }
        if self.c.one_in(3) {
            self.param(&mut body);
        }
        self.ensure_value(&mut body);
        let len = 1 + self.c.below(8);
        self.segment(&mut body, len, true);
        let count = self.c.below(3);
        self.actions(&mut body, count);
        self.work_left += reserve;

        // Outputs: the next carried values, then the written values.
        let mut next = Vec::with_capacity(n_carried);
        if smooth && n_carried > 0 {
            let h = 1.0 / trips as f64;
            let step = self.push(&mut body, Inst::constant(h), Interval::point(h));
            for k in 0..n_carried {
                // c + h (tanh(e) - c): a convex combination, so in [-1, 1].
                let (e, range) = self.pick(&body);
                let t_range = range.monotone(f64::tanh);
                let d_range = t_range.add(carried_range().neg());
                let m_range = d_range.mul(Interval::point(h));
                let t = self.push(&mut body, Inst::unary(Op::Tanh, e), t_range);
                let d = self.push(&mut body, Inst::binary(Op::Sub, t, k as u32), d_range);
                let m = self.push(&mut body, Inst::binary(Op::Mul, d, step), m_range);
                let v = self.push(
                    &mut body,
                    Inst::binary(Op::Add, k as u32, m),
                    carried_range(),
                );
                next.push(v);
            }
        } else {
            for k in 0..n_carried {
                let v = match self.c.below(6) {
                    0 => k as Value,
                    1 => body.values[self.c.below(body.values.len())].0,
                    _ => self.pick(&body).0,
                };
                next.push(v);
            }
        }
        let mut writes = Vec::with_capacity(accesses.len());
        let mut outputs: Vec<Output> = next.iter().map(|&v| Output::Value(v)).collect();
        for access in accesses {
            let (v, range) = self.pick(&body);
            let mut mode = if self.c.one_in(2) {
                WriteMode::Store
            } else {
                WriteMode::Add
            };
            if let Buffer::Array(k) = access.buffer {
                let a = &mut self.arrays[k as usize];
                let old = a.range;
                // Every iteration of the nest may hit one element.
                let hits = body.mult as f64;
                let added = Interval {
                    lo: old.lo + (hits * range.lo).min(0.0),
                    hi: old.hi + (hits * range.hi).max(0.0),
                };
                if smooth && added.mag() > SMOOTH_BOUND {
                    mode = WriteMode::Store;
                }
                a.range = match mode {
                    WriteMode::Add => added,
                    WriteMode::Store => Interval::hull(&[old.lo, old.hi, range.lo, range.hi]),
                };
            }
            writes.push(Write { access, mode });
            outputs.push(Output::Value(v));
        }
        let (n_slots, n_params) = (body.tape.n_inputs(), body.tape.n_params());
        let (insts, _, loops, _) = body.tape.into_parts();
        let body = Tape::from_structured(insts, outputs, n_slots, n_params, loops, Vec::new());
        let lp = s.tape.push_loop(Loop {
            trips,
            body,
            init,
            invariants,
            reads,
            writes,
        });
        self.work_left = self.work_left.saturating_sub(s.mult);
        let ranges = vec![if smooth { carried_range() } else { ANY }; n_carried];
        for (k, &range) in ranges.iter().enumerate() {
            if self.c.below(3) != 0 {
                self.push(s, Inst::loop_out(lp, k as u32), range);
            }
        }
        s.loops.push((lp, ranges));
        if top {
            self.nest_reads.clear();
            self.nest_writes.clear();
        }
    }

    /// Ends the root: `n` scalar outputs (mostly loop results and recent
    /// values) and slices of some arrays.
    fn outputs(&mut self, mut root: Scope, n: usize) -> Scope {
        let loop_outs: Vec<Value> = root
            .values
            .iter()
            .map(|&(v, _)| v)
            .filter(|&v| matches!(root.tape.insts()[v as usize].op, Op::LoopOut | Op::Elem))
            .collect();
        for k in 0..n {
            let v = match self.c.below(3) {
                0 if !loop_outs.is_empty() => loop_outs[self.c.below(loop_outs.len())],
                _ if k == 0 => root.values[root.values.len() - 1].0,
                _ => self.pick(&root).0,
            };
            root.tape.push_output(v);
        }
        for k in 0..self.arrays.len() {
            let len = self.arrays[k].len;
            if self.c.below(3) == 0 {
                continue;
            }
            let start = self.c.below(len as usize + 1) as u32;
            let take = match self.c.below(4) {
                0 => len - start,
                _ => self.c.below((len - start) as usize + 1) as u32,
            };
            root.tape.push_output_entry(Output::Slice {
                array: k as ArrayId,
                start,
                len: take,
            });
        }
        root
    }
}

#[cfg(test)]
mod tests;
