//! Random loop tapes against the interpreter.

use super::*;

/// Random loop tapes: loops nested up to three deep with random trip
/// counts, carried values, invariants, strided reads of inputs, params and
/// arrays, writes of both modes, `elem`/`store`, guards and calls.
struct Gen {
    rng: SplitMix64,
    n_inputs: usize,
    n_params: usize,
    arrays: Vec<u32>,
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

impl Gen {
    fn pick(&mut self, values: &[u32]) -> u32 {
        values[self.rng.below(values.len())]
    }

    /// An access of a random buffer (arrays only if `array_only`) inside
    /// loops of `trips`, in bounds.
    fn access(&mut self, trips: &[u32], array_only: bool) -> Option<Access> {
        let mut buffers = Vec::new();
        if !array_only {
            if self.n_inputs > 0 {
                buffers.push((Buffer::Input, self.n_inputs as i64));
            }
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
        for attempt in 0..6 {
            let strides: Vec<i64> = trips
                .iter()
                .map(|_| {
                    if attempt == 5 {
                        0
                    } else {
                        [-2, -1, 0, 0, 1, 1, 1, 3][self.rng.below(8)]
                    }
                })
                .collect();
            let probe = access(buffer, 0, &strides);
            let (lo, hi) = probe.range(trips);
            if hi - lo < len {
                let offset = -lo + self.rng.below((len - (hi - lo)) as usize) as i64;
                return Some(access(buffer, offset, &strides));
            }
        }
        unreachable!("zero strides always fit")
    }

    /// A loop inside loops of `outer` trips whose enclosing tape has `values`.
    fn random_loop(&mut self, outer: &[u32], values: &[u32], depth: usize) -> Loop {
        let work: u32 = outer.iter().product();
        let trips = [1, 1, 2, 3, 5, 8, 17][self.rng.below(7)].min((300 / work).max(1));
        let mut trips_all = outer.to_vec();
        trips_all.push(trips);
        let n_carried = self.rng.below(4);
        let n_inv = self.rng.below(3);
        let n_reads = self.rng.below(4);
        let init = (0..n_carried).map(|_| self.pick(values)).collect();
        let invariants = (0..n_inv).map(|_| self.pick(values)).collect();
        let reads: Vec<Access> = (0..n_reads)
            .filter_map(|_| self.access(&trips_all, false))
            .collect();
        let mut body = Tape::new(n_carried + n_inv + reads.len(), self.n_params);
        let mut vals = body_inputs(&mut body);
        if vals.is_empty() {
            vals.push(body.push(Inst::constant(0.5)));
        }
        let n_writes = if self.arrays.is_empty() {
            0
        } else {
            self.rng.below(3)
        };
        let count = 2 + self.rng.below(10);
        self.fill(&mut body, &mut vals, &trips_all, depth, count);
        for _ in 0..n_carried {
            let v = self.pick(&vals);
            body.push_output(v);
        }
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

    /// Appends `count` random instructions to `t` (a body inside loops of
    /// `trips`, or the root if empty), adding the new values to `vals`.
    fn fill(
        &mut self,
        t: &mut Tape,
        vals: &mut Vec<u32>,
        trips: &[u32],
        depth: usize,
        count: usize,
    ) {
        for _ in 0..count {
            let choice = self.rng.below(20);
            let v = match choice {
                0..=5 => {
                    let op = BINARY[self.rng.below(BINARY.len())];
                    let (a, b) = (self.pick(vals), self.pick(vals));
                    bin(t, op, a, b)
                }
                6..=8 => {
                    let op = UNARY[self.rng.below(UNARY.len())];
                    let a = self.pick(vals);
                    un(t, op, a)
                }
                9 if self.n_params > 0 => t.push(Inst::param(self.rng.below(self.n_params) as u32)),
                10 => t.push(Inst::constant(self.rng.uniform(-2.0, 2.0))),
                11 => {
                    let (c, a, b) = (self.pick(vals), self.pick(vals), self.pick(vals));
                    t.push(Inst::ternary(Op::Select, c, a, b))
                }
                12 | 13 if !self.arrays.is_empty() => {
                    let k = self.rng.below(self.arrays.len());
                    let e = self.rng.below(self.arrays[k] as usize) as u32;
                    if choice == 12 {
                        t.push(Inst::elem(k as u32, e))
                    } else {
                        let v = self.pick(vals);
                        t.push(Inst::store(k as u32, e, v));
                        continue;
                    }
                }
                14 => {
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
                15 | 16 if depth < 3 => {
                    let lp = self.random_loop(trips, vals, depth + 1);
                    let n = lp.n_carried() as u32;
                    let l = t.push_loop(lp);
                    for k in 0..n {
                        vals.push(t.push(Inst::loop_out(l, k)));
                    }
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

fn random_loop_tape(seed: u64) -> Tape {
    let mut g = Gen {
        rng: SplitMix64::new(seed),
        n_inputs: 0,
        n_params: 0,
        arrays: Vec::new(),
    };
    g.n_inputs = 1 + g.rng.below(12);
    g.n_params = g.rng.below(5);
    let n_arrays = g.rng.below(4);
    g.arrays = (0..n_arrays).map(|_| 1 + g.rng.below(16) as u32).collect();
    let mut t = Tape::new(g.n_inputs, g.n_params);
    for &len in &g.arrays.clone() {
        t.add_array(len);
    }
    let mut vals: Vec<u32> = (0..g.n_inputs.min(4))
        .map(|i| t.push(Inst::input(i as u32)))
        .collect();
    for _ in 0..1 + g.rng.below(3) {
        g.fill(&mut t, &mut vals, &[], 0, 3);
        let lp = g.random_loop(&[], &vals, 1);
        let n = lp.n_carried() as u32;
        let l = t.push_loop(lp);
        for k in 0..n {
            vals.push(t.push(Inst::loop_out(l, k)));
        }
    }
    g.fill(&mut t, &mut vals, &[], 0, 3);
    for _ in 0..1 + g.rng.below(3) {
        let v = g.pick(&vals);
        t.push_output(v);
    }
    for (k, &len) in g.arrays.clone().iter().enumerate() {
        if g.rng.one_in(2) {
            let start = g.rng.below(len as usize) as u32;
            let n = g.rng.below((len - start) as usize + 1) as u32;
            t.push_output_entry(Output::Slice {
                array: k as u32,
                start,
                len: n,
            });
        }
    }
    t
}

#[test]
fn random_loop_tapes_agree() {
    let (mut loops, mut nested, mut failures, mut work) = (0, 0, 0, 0);
    for seed in 0..500u64 {
        let t = random_loop_tape(seed);
        t.verify().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        loops += t.loops().len();
        nested += t.n_loops() - t.loops().len();
        let mut rng = SplitMix64::new(seed ^ 0x5eed);
        let mut options = options_for(&t);
        for o in options.iter_mut() {
            o.chunk_len = 1 + rng.below(40);
        }
        work += t.work();
        failures += check_with(
            &t,
            &options[seed as usize % 7..][..1],
            &points(seed, &t, 12),
        );
    }
    // Guards fail at some points only, and the nests do run.
    let summary = format!("{loops} loops, {nested} nested, {failures} of 6000 points failed a guard, {work} instructions");
    assert!(loops > 500 && nested > 200, "{summary}");
    assert!(failures > 500 && failures < 3000, "{summary}");
}

/// What the optimizer makes of loop tapes (bodies simplified, dead loops,
/// writes and arrays dropped) compiles and agrees too.
#[test]
fn optimized_random_loop_tapes_agree() {
    let mut shrunk = 0;
    for seed in 1000..1300u64 {
        let t = random_loop_tape(seed);
        let o = tapejit::opt::optimize(&t).unwrap();
        shrunk += usize::from(o.static_len() < t.static_len());
        let options = options_for(&o);
        check_with(&o, &options[seed as usize % 7..][..1], &points(seed, &o, 8));
    }
    assert!(shrunk > 100, "{shrunk}");
}
