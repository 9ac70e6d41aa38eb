//! Random loop tapes: root loops with random trip counts, carried values,
//! invariants, strided reads of inputs, params and arrays, writes of both
//! modes, `elem`/`store`, loops nested in bodies, guards (failing on NaN or
//! large values) and calls. What varies from one test crate to the other
//! (and so what each seed draws) is a [`Profile`].

use super::{access, bin, body_inputs, push_loop_with_outs, slice, un};
use tapejit::ir::random::Choices;
use tapejit::ir::{Access, Buffer, Inst, Loop, Op, Tape, Write, WriteMode};
use tapejit::suite::SplitMix64;

/// The shape of the tapes a [`Gen`] draws. A count `n` here is drawn as
/// `below(n)`, a pair `(lo, n)` as `lo + below(n)`.
pub struct Profile {
    /// Inputs: `1 + below(inputs)`.
    pub inputs: usize,
    pub params: usize,
    pub arrays: usize,
    /// Ops of [`UNARY`] and [`BINARY`] never drawn.
    pub left_out: &'static [Op],
    /// The strides of random accesses, one drawn per enclosing loop.
    pub strides: &'static [i64],
    /// Trip counts of root loops and of nested ones; a loop's trips times
    /// those of the loops around it stay within `max_work` where they can.
    pub root_trips: &'static [u32],
    pub nested_trips: &'static [u32],
    pub max_work: u32,
    pub carried: (usize, usize),
    pub reads: usize,
    /// Random instructions in a body: `2 + below(body_len)`.
    pub body_len: usize,
    /// Whether a body's carried values are mostly a function of the same
    /// value (so that states flow from one iteration to the next) rather
    /// than any value of the body.
    pub mix_carried: bool,
    /// Whether the number of writes is drawn before the body (else after
    /// its carried values).
    pub writes_drawn_first: bool,
    /// Of 20 draws for an instruction: how many make a binary op (3 make a
    /// unary op, then one each a param, a constant, a select, an `elem`, a
    /// `store` and a guard), and how many a nested loop (while the depth is
    /// below `max_depth`); the rest make an `add`.
    pub binary_slots: usize,
    pub nest_slots: usize,
    pub max_depth: usize,
}

const UNARY: [Op; 8] = [
    Op::Neg,
    Op::Abs,
    Op::Sqrt,
    Op::Exp,
    Op::Sin,
    Op::Round,
    Op::Floor,
    Op::Tanh,
];
const BINARY: [Op; 9] = [
    Op::Add,
    Op::Sub,
    Op::Mul,
    Op::Div,
    Op::Min,
    Op::Max,
    Op::Lt,
    Op::Hypot,
    Op::Same,
];

pub struct Gen {
    pub rng: SplitMix64,
    pub n_inputs: usize,
    pub n_params: usize,
    pub arrays: Vec<u32>,
    profile: &'static Profile,
    unary: Vec<Op>,
    binary: Vec<Op>,
}

impl Gen {
    pub fn new(seed: u64, profile: &'static Profile) -> Gen {
        let mut rng = SplitMix64::new(seed);
        let n_inputs = 1 + rng.below(profile.inputs);
        let n_params = rng.below(profile.params);
        let n_arrays = rng.below(profile.arrays);
        let arrays = (0..n_arrays).map(|_| 1 + rng.below(16) as u32).collect();
        let drawn = |ops: &[Op]| -> Vec<Op> {
            ops.iter()
                .copied()
                .filter(|op| !profile.left_out.contains(op))
                .collect()
        };
        Gen {
            rng,
            n_inputs,
            n_params,
            arrays,
            profile,
            unary: drawn(&UNARY),
            binary: drawn(&BINARY),
        }
    }

    pub fn pick(&mut self, values: &[u32]) -> u32 {
        values[self.rng.below(values.len())]
    }

    /// An empty root tape with the arrays, and the values of its first
    /// (up to four) inputs.
    pub fn root(&self) -> (Tape, Vec<u32>) {
        let mut t = Tape::new(self.n_inputs, self.n_params);
        for &len in &self.arrays {
            t.add_array(len);
        }
        let vals = (0..self.n_inputs.min(4))
            .map(|i| t.push(Inst::input(i as u32)))
            .collect();
        (t, vals)
    }

    /// One to three root loops made by `make` (given the values so far),
    /// each after `fill_len` random instructions; returns the loop
    /// instructions.
    pub fn root_loops(
        &mut self,
        t: &mut Tape,
        vals: &mut Vec<u32>,
        fill_len: usize,
        mut make: impl FnMut(&mut Gen, &[u32]) -> Loop,
    ) -> Vec<u32> {
        let mut loops = Vec::new();
        for _ in 0..1 + self.rng.below(3) {
            self.fill(t, vals, &[], 0, fill_len);
            let lp = make(self, vals);
            loops.push(push_loop_with_outs(t, lp, vals));
        }
        loops
    }

    /// One to three random values as outputs, then random slices of about
    /// half the arrays.
    pub fn outputs(&mut self, t: &mut Tape, vals: &[u32]) {
        for _ in 0..1 + self.rng.below(3) {
            let v = self.pick(vals);
            t.push_output(v);
        }
        for (k, &len) in self.arrays.clone().iter().enumerate() {
            if self.rng.one_in(2) {
                let start = self.rng.below(len as usize) as u32;
                let n = self.rng.below((len - start) as usize + 1) as u32;
                slice(t, k as u32, start, n);
            }
        }
    }

    /// An access of a random buffer (arrays only if `array_only`) inside
    /// loops of `trips`, in bounds.
    pub fn access(&mut self, trips: &[u32], array_only: bool) -> Option<Access> {
        let mut buffers = Vec::new();
        if !array_only {
            buffers.push((Buffer::Input, self.n_inputs as i64));
            if self.n_params > 0 {
                buffers.push((Buffer::Param, self.n_params as i64));
            }
        }
        for (k, &len) in self.arrays.iter().enumerate() {
            buffers.push((Buffer::Array(k as u32), len as i64));
        }
        if buffers.is_empty() {
            return None;
        }
        let (buffer, len) = buffers[self.rng.below(buffers.len())];
        let choices = self.profile.strides;
        for attempt in 0..6 {
            let strides: Vec<i64> = trips
                .iter()
                .map(|_| {
                    if attempt == 5 {
                        0
                    } else {
                        choices[self.rng.below(choices.len())]
                    }
                })
                .collect();
            let (lo, hi) = access(buffer, 0, &strides).range(trips);
            if hi - lo < len {
                let offset = -lo + self.rng.below((len - (hi - lo)) as usize) as i64;
                return Some(access(buffer, offset, &strides));
            }
        }
        unreachable!("zero strides always fit")
    }

    /// A loop inside loops of `outer` trips, whose enclosing tape has `values`.
    pub fn random_loop(&mut self, outer: &[u32], values: &[u32], depth: usize) -> Loop {
        let p = self.profile;
        let choices = if outer.is_empty() {
            p.root_trips
        } else {
            p.nested_trips
        };
        let work: u32 = outer.iter().product();
        let trips = choices[self.rng.below(choices.len())].min((p.max_work / work).max(1));
        self.random_loop_with(outer, values, depth, trips, 0)
    }

    /// [`Gen::random_loop`] of `trips` trips whose body has `extra` more
    /// inputs after its reads (a checkpoint's states).
    pub fn random_loop_with(
        &mut self,
        outer: &[u32],
        values: &[u32],
        depth: usize,
        trips: u32,
        extra: usize,
    ) -> Loop {
        let p = self.profile;
        let mut trips_all = outer.to_vec();
        trips_all.push(trips);
        let n_carried = p.carried.0 + self.rng.below(p.carried.1);
        let n_inv = self.rng.below(3);
        let n_reads = self.rng.below(p.reads);
        let init = (0..n_carried).map(|_| self.pick(values)).collect();
        let invariants = (0..n_inv).map(|_| self.pick(values)).collect();
        let reads: Vec<Access> = (0..n_reads)
            .filter_map(|_| self.access(&trips_all, false))
            .collect();
        let mut body = Tape::new(n_carried + n_inv + reads.len() + extra, self.n_params);
        let mut vals = body_inputs(&mut body);
        if vals.is_empty() {
            vals.push(body.push(Inst::constant(0.5)));
        }
        let n_writes = p.writes_drawn_first.then(|| self.n_writes());
        let count = 2 + self.rng.below(p.body_len);
        self.fill(&mut body, &mut vals, &trips_all, depth, count);
        for k in 0..n_carried {
            let v = if !p.mix_carried || self.rng.one_in(3) {
                self.pick(&vals)
            } else {
                let a = self.pick(&vals);
                let t = bin(&mut body, Op::Mul, a, vals[k]);
                let half = body.push(Inst::constant(0.5));
                let t = bin(&mut body, Op::Mul, t, half);
                bin(&mut body, Op::Add, vals[k], t)
            };
            body.push_output(v);
        }
        let n_writes = n_writes.unwrap_or_else(|| self.n_writes());
        let writes: Vec<Write> = (0..n_writes)
            .filter_map(|_| {
                let a = self.access(&trips_all, true)?;
                let mode = if self.rng.one_in(2) {
                    WriteMode::Add
                } else {
                    WriteMode::Store
                };
                Some(Write { access: a, mode })
            })
            .collect();
        for _ in &writes {
            let v = self.pick(&vals);
            body.push_output(v);
        }
        Loop {
            trips,
            body,
            init,
            invariants,
            reads,
            writes,
        }
    }

    fn n_writes(&mut self) -> usize {
        if self.arrays.is_empty() {
            0
        } else {
            self.rng.below(3)
        }
    }

    /// Appends `count` random instructions to `t` (a body inside loops of
    /// `trips`, or the root if empty), adding the new values to `vals`.
    pub fn fill(
        &mut self,
        t: &mut Tape,
        vals: &mut Vec<u32>,
        trips: &[u32],
        depth: usize,
        count: usize,
    ) {
        let p = self.profile;
        let b = p.binary_slots;
        for _ in 0..count {
            let choice = self.rng.below(20);
            let v = match choice {
                c if c < b => {
                    let op = self.binary[self.rng.below(self.binary.len())];
                    let (a, b) = (self.pick(vals), self.pick(vals));
                    bin(t, op, a, b)
                }
                c if c < b + 3 => {
                    let op = self.unary[self.rng.below(self.unary.len())];
                    let a = self.pick(vals);
                    un(t, op, a)
                }
                c if c == b + 3 && self.n_params > 0 => {
                    t.push(Inst::param(self.rng.below(self.n_params) as u32))
                }
                c if c == b + 4 => t.push(Inst::constant(self.rng.uniform(-2.0, 2.0))),
                c if c == b + 5 => {
                    let (c, a, b) = (self.pick(vals), self.pick(vals), self.pick(vals));
                    t.push(Inst::ternary(Op::Select, c, a, b))
                }
                c if (c == b + 6 || c == b + 7) && !self.arrays.is_empty() => {
                    let k = self.rng.below(self.arrays.len());
                    let e = self.rng.below(self.arrays[k] as usize) as u32;
                    if c == b + 6 {
                        t.push(Inst::elem(k as u32, e))
                    } else {
                        let v = self.pick(vals);
                        t.push(Inst::store(k as u32, e, v));
                        continue;
                    }
                }
                c if c == b + 8 => {
                    // Fails where the value is NaN, or where it is large.
                    let a = self.pick(vals);
                    let cond = if self.rng.one_in(2) {
                        bin(t, Op::Eq, a, a)
                    } else {
                        let big = t.push(Inst::constant(50.0));
                        let abs = un(t, Op::Abs, a);
                        bin(t, Op::Lt, abs, big)
                    };
                    t.push(Inst::guard(cond, true));
                    continue;
                }
                c if (b + 9..b + 9 + p.nest_slots).contains(&c) && depth < p.max_depth => {
                    let lp = self.random_loop(trips, vals, depth + 1);
                    push_loop_with_outs(t, lp, vals);
                    continue;
                }
                _ => {
                    let (a, b) = (self.pick(vals), self.pick(vals));
                    bin(t, Op::Add, a, b)
                }
            };
            vals.push(v);
        }
    }
}
