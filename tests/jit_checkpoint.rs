//! The JIT on checkpointed loops (a reverse loop whose forward states are
//! recomputed by the binomial schedule): bitwise equal to the interpreter,
//! which runs the same schedule, and to the gradient that stores every
//! state; the same error when a guard fails, in the forward loop, the
//! forward step or the reverse body; under tiny and default chunks, both
//! register allocators and inputs and outputs split anywhere, with the
//! scratch buffer reused dirty across calls (as in `tests/jit_loops.rs`).

use tapejit::ad::checkpoint::optimal_advances;
use tapejit::ad::{self, Seed};
use tapejit::ir::random::{random_value, Choices};
use tapejit::ir::semantics::same;
use tapejit::ir::{Access, Buffer, Checkpoint, Inst, Loop, Op, Output, Tape, Write, WriteMode};
use tapejit::jit::{self, JitFunction, JitOptions};
use tapejit::suite::{lorenz_rk4_fold, SplitMix64, LORENZ_DEFAULT_INPUT};
use tapejit::{interp, trace_scalar, Engine, Error, Function, MemoryBudget, Options};

type Point = (Vec<f64>, Vec<f64>);

fn interpret(tape: &Tape, x: &[f64], p: &[f64]) -> Result<Vec<f64>, Error> {
    let mut out = vec![0.0; tape.n_outputs()];
    interp::eval(tape, x, p, &mut Vec::new(), &mut out).map(|()| out)
}

/// Runs `code` with `scratch` as left by earlier calls, the inputs and
/// outputs each in two separate allocations split as compiled.
fn run_split(
    code: &JitFunction,
    (input_split, output_split): (usize, usize),
    x: &[f64],
    p: &[f64],
    scratch: &mut Vec<f64>,
) -> Result<Vec<f64>, Error> {
    let garbage = f64::from_bits(0x7ff0_dead_0000_0001);
    let (head, tail) = (x[..input_split].to_vec(), x[input_split..].to_vec());
    let mut out_head = vec![garbage; output_split];
    let mut out_tail = vec![garbage; code.n_outputs() - output_split];
    let status = code.call_parts(&head, &tail, p, &mut out_head, &mut out_tail, scratch);
    code.result(status, x.len(), p.len(), code.n_outputs())?;
    out_head.extend(out_tail);
    Ok(out_head)
}

/// Compiles `tape` with each of `options` and checks the JIT against the
/// interpreter at every point: equal bits (or both NaN) on every output, or
/// the same error. Returns how many points failed a guard.
fn check_with(tape: &Tape, options: &[JitOptions], points: &[Point]) -> usize {
    tape.verify()
        .unwrap_or_else(|e| panic!("test tape does not verify: {e}\n{tape}"));
    let expected: Vec<_> = points.iter().map(|(x, p)| interpret(tape, x, p)).collect();
    for &o in options {
        let code = jit::compile_with(tape, o)
            .unwrap_or_else(|e| panic!("{o:?}: a verified tape must compile: {e}\n{tape}"));
        let mut scratch = vec![f64::from_bits(0x4141_4141_4141_4141); code.scratch_len()];
        let splits = (
            o.input_split.unwrap_or(tape.n_inputs()),
            o.output_split.unwrap_or(tape.n_outputs()),
        );
        for ((x, p), want) in points.iter().zip(&expected) {
            let got = run_split(&code, splits, x, p, &mut scratch);
            match (want, &got) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.len(), b.len());
                    for (k, (a, b)) in a.iter().zip(b).enumerate() {
                        assert!(
                            same(*a, *b),
                            "{o:?}: output {k} is {b:?}, the interpreter says {a:?} \
                             (bits {:#x} vs {:#x}) at x={x:?} p={p:?}\n{tape}",
                            b.to_bits(),
                            a.to_bits()
                        );
                    }
                }
                (Err(a), Err(b)) => assert_eq!(a, b, "{o:?} at x={x:?} p={p:?}\n{tape}"),
                _ => panic!("{o:?}: interpreter {want:?}, JIT {got:?} at x={x:?} p={p:?}\n{tape}"),
            }
        }
    }
    expected.iter().filter(|e| e.is_err()).count()
}

/// Default options, one instruction per chunk, tiny chunks with the
/// single-pass allocator, and both buffers split in the middle, at the
/// start and at the end.
fn options_for(tape: &Tape) -> Vec<JitOptions> {
    let (n, m) = (tape.n_inputs(), tape.n_outputs());
    let d = JitOptions::default();
    let split = |i, o| JitOptions {
        input_split: Some(i),
        output_split: Some(o),
        chunk_len: 5,
        ..d
    };
    vec![
        d,
        JitOptions { chunk_len: 1, ..d },
        JitOptions {
            chunk_len: 3,
            single_pass_regalloc: true,
            ..d
        },
        split(n / 2, m / 2),
        split(0, 0),
        split(n, m),
        split(n / 3, m - m / 3),
    ]
}

/// `count` points: numbers in [-2, 2), with special values (NaN, ±inf,
/// ±0, subnormals, raw bits) mixed in at a rate from none to everywhere.
fn points(seed: u64, tape: &Tape, count: usize) -> Vec<Point> {
    let mut rng = SplitMix64::new(seed);
    (0..count)
        .map(|k| {
            let rate = [0, 64, 8, 1][k % 4];
            let mut draw = |n: usize| -> Vec<f64> {
                (0..n)
                    .map(|_| {
                        if rate > 0 && rng.one_in(rate) {
                            random_value(&mut rng)
                        } else {
                            rng.uniform(-2.0, 2.0)
                        }
                    })
                    .collect()
            };
            (draw(tape.n_inputs()), draw(tape.n_params()))
        })
        .collect()
}

fn access(buffer: Buffer, offset: i64, strides: &[i64]) -> Access {
    Access {
        buffer,
        offset,
        strides: strides.to_vec(),
    }
}

fn body_inputs(body: &mut Tape) -> Vec<u32> {
    (0..body.n_inputs() as u32)
        .map(|k| body.push(Inst::input(k)))
        .collect()
}

fn bin(t: &mut Tape, op: Op, a: u32, b: u32) -> u32 {
    t.push(Inst::binary(op, a, b))
}

fn un(t: &mut Tape, op: Op, a: u32) -> u32 {
    t.push(Inst::unary(op, a))
}

// ---------------------------------------------------------------------------
// lorenz_rk4_fold through the public API

fn lorenz(steps: usize, budget: MemoryBudget) -> Function {
    let x = LORENZ_DEFAULT_INPUT;
    let tape = trace_scalar(&x, &[], |x, _| lorenz_rk4_fold(x, steps)).unwrap();
    let options = Options {
        memory_budget: budget,
        engine: Engine::Jit,
        ..Options::default()
    };
    Function::from_tape_with(tape, options).unwrap()
}

/// The value and gradient at `x` with `engine`, as bits.
fn gradient_bits(f: &Function, engine: Engine, x: &[f64]) -> Vec<u64> {
    let mut g = vec![0.0; x.len()];
    let w = f.with_params(&[]).unwrap().engine(engine);
    let v = w.gradient(x, &mut g).unwrap();
    // Twice: the second call reuses the workspace the first left dirty.
    let again = w.gradient(x, &mut g).unwrap();
    assert_eq!(v.to_bits(), again.to_bits());
    std::iter::once(v).chain(g).map(f64::to_bits).collect()
}

fn checkpoints(f: &Function) -> Vec<Checkpoint> {
    f.gradient_tape().unwrap().checkpoints().to_vec()
}

/// Short and medium horizons, several snapshot counts: the JIT equals the
/// interpreter on the same checkpointed tape, and the JIT storing every state.
#[test]
fn lorenz_gradients_equal_the_interpreter_and_stored_states() {
    let x = LORENZ_DEFAULT_INPUT;
    let inputs = [x, [0.9, 1.2, 0.7, 9.0, 12.0, 2.5]];
    for steps in [1usize, 2, 3, 10, 1000] {
        let all = lorenz(steps, MemoryBudget::Unlimited);
        assert!(checkpoints(&all).is_empty());
        for s in [1u32, 2, 3, 7, 64] {
            let f = lorenz(steps, MemoryBudget::Snapshots(s));
            let cps = checkpoints(&f);
            // Three stored states per step: checkpointed beyond s steps.
            assert_eq!(
                cps.len(),
                usize::from(steps > s as usize),
                "{steps} steps, s = {s}"
            );
            if let Some(cp) = cps.first() {
                assert_eq!(cp.snapshots, s);
            }
            for x in &inputs {
                let jit = gradient_bits(&f, Engine::Jit, x);
                let auto = gradient_bits(&f, Engine::Auto, x);
                let interp = gradient_bits(&f, Engine::Interpreter, x);
                let stored = gradient_bits(&all, Engine::Jit, x);
                assert_eq!(jit, interp, "{steps} steps, s = {s}: JIT vs interpreter");
                assert_eq!(jit, stored, "{steps} steps, s = {s}: vs every state stored");
                assert_eq!(jit, auto, "{steps} steps, s = {s}: Auto");
            }
        }
    }
}

/// 10^5 steps: the JIT against storing every state for a few budgets, and
/// against the interpreter for one.
#[test]
fn lorenz_long_horizon_gradients_are_bitwise_equal() {
    let x = LORENZ_DEFAULT_INPUT;
    let steps = 100_000;
    let stored = gradient_bits(&lorenz(steps, MemoryBudget::Unlimited), Engine::Jit, &x);
    for s in [3u32, 64, 1000] {
        let f = lorenz(steps, MemoryBudget::Snapshots(s));
        assert_eq!(checkpoints(&f).len(), 1);
        assert_eq!(gradient_bits(&f, Engine::Jit, &x), stored, "s = {s}");
        if s == 64 {
            assert_eq!(gradient_bits(&f, Engine::Interpreter, &x), stored);
        }
    }
    // The default budget stores these 2.4 MB.
    let f = lorenz(steps, MemoryBudget::default());
    assert!(checkpoints(&f).is_empty());
}

/// The compiled checkpointed gradient needs `O(snapshots)` scratch memory,
/// whatever the trip count.
#[test]
fn scratch_memory_grows_with_the_snapshots_not_the_steps() {
    let scratch = |steps: usize, s: u32| {
        let f = lorenz(steps, MemoryBudget::Snapshots(s));
        assert_eq!(checkpoints(&f).len(), 1);
        jit::compile(f.gradient_tape().unwrap())
            .unwrap()
            .scratch_len()
    };
    // Per snapshot: 3 values and a generator frame (1 slot); and a table of
    // binomials β(s', r') for 3 <= s' <= s, 3 <= r' <= r, r the repetition
    // number: 2 (no table) at 1000 steps, 4 at 200 000.
    let (short, long) = (scratch(1000, 64), scratch(200_000, 64));
    assert_eq!(long - short, 62 * 2, "{short} {long}");
    assert!(long < 600, "{long}");
    assert_eq!(scratch(1000, 128) - short, 64 * (3 + 1), "{short}");
    let stored = jit::compile(
        lorenz(200_000, MemoryBudget::Unlimited)
            .gradient_tape()
            .unwrap(),
    )
    .unwrap()
    .scratch_len();
    assert!(stored >= 600_000, "{stored}");
}

// ---------------------------------------------------------------------------
// A schedule driven wrongly shows

/// A hand-made checkpointed loop that makes the schedule observable: its
/// forward step `x -> sin x + x / 2` counts its own runs in `count[0]`, and
/// the reverse body stores the state it is given into `seen[k]` (`k` the
/// forward iteration) and multiplies the carried adjoint by the step's
/// derivative `cos x + 1/2`. Outputs: the adjoint, `count[0]`, `seen`.
fn observable_schedule(trips: u32, snapshots: u32) -> Tape {
    let mut t = Tape::new(1, 0);
    let count = t.add_array(1);
    let seen = t.add_array(trips);
    let x0 = t.push(Inst::input(0));
    let one = t.push(Inst::constant(1.0));

    // The step: inputs [x]; output [sin x + x / 2], counting runs.
    let mut step = Tape::new(1, 0);
    let x = step.push(Inst::input(0));
    let c = step.push(Inst::elem(count, 0));
    let c1 = step.push(Inst::constant(1.0));
    let c2 = bin(&mut step, Op::Add, c, c1);
    step.push(Inst::store(count, 0, c2));
    let s = un(&mut step, Op::Sin, x);
    let half = step.push(Inst::constant(0.5));
    let h = bin(&mut step, Op::Mul, x, half);
    let next = bin(&mut step, Op::Add, s, h);
    step.push_output(next);

    // The reverse body: inputs [adjoint, state]; outputs [adjoint', state (written)].
    let mut body = Tape::new(2, 0);
    let [a, x] = body_inputs(&mut body)[..] else {
        unreachable!()
    };
    let cx = un(&mut body, Op::Cos, x);
    let half = body.push(Inst::constant(0.5));
    let d = bin(&mut body, Op::Add, cx, half);
    let next = bin(&mut body, Op::Mul, a, d);
    body.push_output(next);
    body.push_output(x);

    let lp = t.push_loop(Loop {
        trips,
        body,
        init: vec![one],
        invariants: vec![],
        reads: vec![],
        writes: vec![Write {
            access: access(Buffer::Array(seen), trips as i64 - 1, &[-1]),
            mode: WriteMode::Store,
        }],
    });
    let adjoint = t.push(Inst::loop_out(lp, 0));
    t.push_output(adjoint);
    t.push_output_entry(Output::Slice {
        array: count,
        start: 0,
        len: 1,
    });
    t.push_output_entry(Output::Slice {
        array: seen,
        start: 0,
        len: trips,
    });
    let mut insts = t.insts().to_vec();
    insts[lp as usize].args[1] = 1; // checkpoint 0
    Tape::from_structured(
        insts,
        t.outputs().to_vec(),
        1,
        0,
        t.loops().to_vec(),
        t.arrays().to_vec(),
    )
    .with_checkpoints(vec![Checkpoint {
        snapshots,
        step,
        init: vec![x0],
        invariants: vec![],
        reads: vec![],
        states: vec![0],
    }])
}

/// Every reverse iteration sees the right state, the adjoint is the product
/// in the right order, and the step runs exactly the optimal number of
/// advances: a schedule driven wrongly (a restore skipped, a snapshot in
/// the wrong slot, an advance one short or long, reverse steps out of
/// order) changes some output. The JIT is checked against both the
/// interpreter and these closed-form expectations.
#[test]
fn a_schedule_driven_wrongly_shows() {
    for (trips, s) in [
        (1u32, 1u32),
        (2, 1),
        (5, 2),
        (20, 3),
        (64, 4),
        (300, 7),
        (1000, 30),
    ] {
        let tape = observable_schedule(trips, s);
        tape.verify().unwrap();
        let x0 = 0.3f64;
        let mut states = vec![x0];
        for _ in 1..trips {
            let x = *states.last().unwrap();
            states.push(x.sin() + x * 0.5);
        }
        let adjoint = states.iter().rev().fold(1.0, |a, x| a * (x.cos() + 0.5));
        // The counter starts at -0.0, like every array element.
        let advances = match optimal_advances(trips, s) {
            0 => -0.0,
            n => n as f64,
        };
        let mut want = vec![adjoint, advances];
        want.extend(&states);
        let want: Vec<u64> = want.iter().map(|v| v.to_bits()).collect();
        let got = interpret(&tape, &[x0], &[]).unwrap();
        assert_eq!(
            got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            want,
            "interpreter, l = {trips}, s = {s}"
        );
        let options = options_for(&tape);
        check_with(&tape, &options, &[(vec![x0], vec![])]);
        let code = jit::compile(&tape).unwrap();
        // One chunk, and the loop's advance and reverse functions.
        assert_eq!(code.n_chunks(), 1);
        let listing = jit::cranelift_ir(&tape, JitOptions::default()).unwrap();
        assert_eq!(listing.matches("function ").count(), 3, "{listing}");
        let mut scratch = vec![f64::NAN; code.scratch_len()];
        for _ in 0..2 {
            let got = run_split(&code, (1, code.n_outputs()), &[x0], &[], &mut scratch).unwrap();
            assert_eq!(
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want,
                "JIT, l = {trips}, s = {s}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Random loop tapes, reversed under a snapshot budget

/// Random loop tapes: root loops with random trip counts (some beyond the
/// snapshot budgets), carried values, invariants, strided reads of inputs,
/// params and arrays, writes of both modes, `elem`/`store`, loops nested in
/// bodies, guards (failing on NaN or large values) and calls.
struct Gen {
    rng: SplitMix64,
    n_inputs: usize,
    n_params: usize,
    arrays: Vec<u32>,
}

const UNARY: [Op; 7] = [
    Op::Neg,
    Op::Abs,
    Op::Sqrt,
    Op::Exp,
    Op::Sin,
    Op::Floor,
    Op::Tanh,
];
const BINARY: [Op; 8] = [
    Op::Add,
    Op::Sub,
    Op::Mul,
    Op::Div,
    Op::Min,
    Op::Max,
    Op::Lt,
    Op::Hypot,
];

impl Gen {
    fn new(seed: u64) -> Gen {
        let mut rng = SplitMix64::new(seed);
        let n_inputs = 1 + rng.below(8);
        let n_params = rng.below(3);
        let n_arrays = rng.below(3);
        let arrays = (0..n_arrays).map(|_| 1 + rng.below(16) as u32).collect();
        Gen {
            rng,
            n_inputs,
            n_params,
            arrays,
        }
    }

    fn pick(&mut self, values: &[u32]) -> u32 {
        values[self.rng.below(values.len())]
    }

    /// An access of a random buffer (arrays only if `array_only`) inside
    /// loops of `trips`, in bounds.
    fn access(&mut self, trips: &[u32], array_only: bool) -> Option<Access> {
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
        for attempt in 0..6 {
            let strides: Vec<i64> = trips
                .iter()
                .map(|_| {
                    if attempt == 5 {
                        0
                    } else {
                        [-1, 0, 0, 1, 1][self.rng.below(5)]
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
    fn random_loop(&mut self, outer: &[u32], values: &[u32], depth: usize) -> Loop {
        let trips = if outer.is_empty() {
            [1, 2, 3, 5, 8, 17, 40, 100][self.rng.below(8)]
        } else {
            [1, 2, 3, 4][self.rng.below(4)]
        };
        self.random_loop_with(outer, values, depth, trips, 0)
    }

    /// [`Gen::random_loop`] of `trips` trips whose body has `extra` more
    /// inputs after its reads (a checkpoint's states).
    fn random_loop_with(
        &mut self,
        outer: &[u32],
        values: &[u32],
        depth: usize,
        trips: u32,
        extra: usize,
    ) -> Loop {
        let mut trips_all = outer.to_vec();
        trips_all.push(trips);
        let n_carried = 1 + self.rng.below(3);
        let n_inv = self.rng.below(3);
        let n_reads = self.rng.below(3);
        let init = (0..n_carried).map(|_| self.pick(values)).collect();
        let invariants = (0..n_inv).map(|_| self.pick(values)).collect();
        let reads: Vec<Access> = (0..n_reads)
            .filter_map(|_| self.access(&trips_all, false))
            .collect();
        let mut body = Tape::new(n_carried + n_inv + reads.len() + extra, self.n_params);
        let mut vals = body_inputs(&mut body);
        let count = 2 + self.rng.below(8);
        self.fill(&mut body, &mut vals, &trips_all, depth, count);
        for k in 0..n_carried {
            // Mostly a function of the same carried value, so that states
            // flow from one iteration to the next.
            let v = if self.rng.one_in(3) {
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
        let n_writes = if self.arrays.is_empty() {
            0
        } else {
            self.rng.below(3)
        };
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
                0..=6 => {
                    let op = BINARY[self.rng.below(BINARY.len())];
                    let (a, b) = (self.pick(vals), self.pick(vals));
                    bin(t, op, a, b)
                }
                7..=9 => {
                    let op = UNARY[self.rng.below(UNARY.len())];
                    let a = self.pick(vals);
                    un(t, op, a)
                }
                10 if self.n_params > 0 => {
                    t.push(Inst::param(self.rng.below(self.n_params) as u32))
                }
                11 => t.push(Inst::constant(self.rng.uniform(-2.0, 2.0))),
                12 => {
                    let (c, a, b) = (self.pick(vals), self.pick(vals), self.pick(vals));
                    t.push(Inst::ternary(Op::Select, c, a, b))
                }
                13 | 14 if !self.arrays.is_empty() => {
                    let k = self.rng.below(self.arrays.len());
                    let e = self.rng.below(self.arrays[k] as usize) as u32;
                    if choice == 13 {
                        t.push(Inst::elem(k as u32, e))
                    } else {
                        let v = self.pick(vals);
                        t.push(Inst::store(k as u32, e, v));
                        continue;
                    }
                }
                15 => {
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
                16 if depth < 2 => {
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

/// A random tape of one to three root loops, with straight code around them.
fn random_loop_tape(seed: u64) -> Tape {
    let mut g = Gen::new(seed);
    let mut t = Tape::new(g.n_inputs, g.n_params);
    for &len in &g.arrays.clone() {
        t.add_array(len);
    }
    let mut vals: Vec<u32> = (0..g.n_inputs.min(4))
        .map(|i| t.push(Inst::input(i as u32)))
        .collect();
    for _ in 0..1 + g.rng.below(3) {
        g.fill(&mut t, &mut vals, &[], 0, 2);
        let lp = g.random_loop(&[], &vals, 0);
        let n = lp.n_carried() as u32;
        let l = t.push_loop(lp);
        for k in 0..n {
            vals.push(t.push(Inst::loop_out(l, k)));
        }
    }
    g.fill(&mut t, &mut vals, &[], 0, 2);
    let last = *vals.last().unwrap();
    t.push_output(last);
    if g.rng.one_in(2) {
        let v = g.pick(&vals);
        t.push_output(v);
    }
    t
}

/// Random loop tapes reversed with 1 to 5 snapshots: the checkpointed
/// gradient tape (raw and optimized) compiled and run against the
/// interpreter, guard failures included, and its values against the
/// gradient storing every state where no guard fails.
#[test]
fn random_checkpointed_gradients_agree() {
    let (mut checkpointed, mut failures, mut points_run, mut compared) = (0, 0, 0, 0);
    for seed in 0..400u64 {
        let t = random_loop_tape(seed);
        t.verify()
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{t}"));
        let s = [1, 2, 3, 5][seed as usize % 4];
        let n = t.n_inputs();
        let g = ad::reverse_with_budget(&t, 0..n, Seed::One, MemoryBudget::Snapshots(s))
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{t}"));
        let stored = ad::reverse(&t, 0..n, Seed::One).unwrap();
        checkpointed += g.checkpoints().len();
        let pts = points(seed, &g, 8);
        points_run += pts.len();
        let mut rng = SplitMix64::new(seed ^ 0x5eed);
        let mut options = options_for(&g);
        for o in options.iter_mut() {
            o.chunk_len = 1 + rng.below(60);
        }
        failures += check_with(&g, &options[seed as usize % 7..][..1], &pts);
        let o = tapejit::opt::optimize(&g).unwrap();
        check_with(&o, &options_for(&o)[(seed as usize + 3) % 7..][..1], &pts);
        // Checkpointing changes memory, not values (a loop reading or
        // storing arrays is not checkpointed: recomputing it later could
        // see other values in them).
        if g.checkpoints().is_empty() {
            continue;
        }
        compared += 1;
        for (x, p) in &pts {
            if let (Ok(a), Ok(b)) = (interpret(&g, x, p), interpret(&stored, x, p)) {
                for (a, b) in a.iter().zip(&b) {
                    assert!(same(*a, *b), "seed {seed}: {a} vs {b} stored\n{t}");
                }
            }
        }
    }
    let summary = format!(
        "{checkpointed} checkpointed loops, {failures} of {points_run} points failed a guard, \
         {compared} tapes compared with stored states"
    );
    println!("{summary}");
    assert!(checkpointed > 100 && compared > 50, "{summary}");
    assert!(failures > 100 && failures < points_run / 2, "{summary}");
}

// ---------------------------------------------------------------------------
// Random checkpointed loops built directly

/// A random tape with one or two checkpointed root loops built directly
/// (a random forward step and a random reverse body reading random
/// states), so that guards fail inside the step and the reverse body too,
/// next to plain loops and straight code.
fn random_checkpointed_tape(seed: u64) -> Tape {
    let mut g = Gen::new(seed);
    let mut t = Tape::new(g.n_inputs, g.n_params);
    for &len in &g.arrays.clone() {
        t.add_array(len);
    }
    let mut vals: Vec<u32> = (0..g.n_inputs.min(4))
        .map(|i| t.push(Inst::input(i as u32)))
        .collect();
    let mut checkpoints = Vec::new();
    let mut checkpointed = Vec::new();
    for _ in 0..1 + g.rng.below(3) {
        g.fill(&mut t, &mut vals, &[], 0, 2);
        let plain = g.rng.one_in(3);
        let lp = if plain {
            g.random_loop(&[], &vals, 0)
        } else {
            let fwd = g.random_loop(&[], &vals, 0);
            let m = fwd.n_carried();
            let step = Tape::from_structured(
                fwd.body.insts().to_vec(),
                fwd.body.outputs()[..m].to_vec(),
                fwd.body.n_inputs(),
                g.n_params,
                fwd.body.loops().to_vec(),
                Vec::new(),
            );
            let states: Vec<u32> = (0..g.rng.below(4)).map(|_| g.rng.below(m) as u32).collect();
            let rev = g.random_loop_with(&[], &vals, 0, fwd.trips, states.len());
            checkpoints.push(Checkpoint {
                snapshots: 1 + g.rng.below(5) as u32,
                step,
                init: fwd.init,
                invariants: fwd.invariants,
                reads: fwd.reads,
                states,
            });
            rev
        };
        let n = lp.n_carried() as u32;
        let l = t.push_loop(lp);
        if !plain {
            checkpointed.push(l);
        }
        for k in 0..n {
            vals.push(t.push(Inst::loop_out(l, k)));
        }
    }
    g.fill(&mut t, &mut vals, &[], 0, 2);
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
    let mut insts = t.insts().to_vec();
    for (k, &l) in checkpointed.iter().enumerate() {
        insts[l as usize].args[1] = k as u32 + 1;
    }
    Tape::from_structured(
        insts,
        t.outputs().to_vec(),
        g.n_inputs,
        g.n_params,
        t.loops().to_vec(),
        t.arrays().to_vec(),
    )
    .with_checkpoints(checkpoints)
}

/// Guards fail in forward steps and reverse bodies alike: the JIT reports
/// the same first failure as the interpreter, which runs the same schedule.
#[test]
fn random_checkpointed_loops_agree_guards_included() {
    let (mut checkpointed, mut failures, mut points_run) = (0, 0, 0);
    for seed in 0..400u64 {
        let t = random_checkpointed_tape(seed);
        t.verify()
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{t}"));
        checkpointed += t.checkpoints().len();
        let pts = points(seed, &t, 8);
        points_run += pts.len();
        let mut rng = SplitMix64::new(seed ^ 0xc0de);
        let mut options = options_for(&t);
        for o in options.iter_mut() {
            o.chunk_len = 1 + rng.below(60);
        }
        failures += check_with(&t, &options[seed as usize % 7..][..1], &pts);
    }
    let summary = format!(
        "{checkpointed} checkpointed loops, {failures} of {points_run} points failed a guard"
    );
    println!("{summary}");
    assert!(checkpointed > 400, "{summary}");
    assert!(failures > 100 && failures < points_run / 2, "{summary}");
}

/// `x -> 1.5 x` checkpointed over `trips` steps with `s` snapshots, a guard
/// `x < step_limit` in the step and `x < body_limit` in the reverse body
/// (on the state it reads): output the final adjoint `1.5^trips`.
fn guarded_schedule(trips: u32, s: u32, step_limit: f64, body_limit: f64) -> Tape {
    let mut t = Tape::new(1, 0);
    let x0 = t.push(Inst::input(0));
    let one = t.push(Inst::constant(1.0));
    let mut step = Tape::new(1, 0);
    let x = step.push(Inst::input(0));
    let limit = step.push(Inst::constant(step_limit));
    let ok = bin(&mut step, Op::Lt, x, limit);
    step.push(Inst::guard(ok, true));
    let k = step.push(Inst::constant(1.5));
    let next = bin(&mut step, Op::Mul, x, k);
    step.push_output(next);
    let mut body = Tape::new(2, 0);
    let [a, x] = body_inputs(&mut body)[..] else {
        unreachable!()
    };
    let limit = body.push(Inst::constant(body_limit));
    let ok = bin(&mut body, Op::Lt, x, limit);
    body.push(Inst::guard(ok, true));
    let k = body.push(Inst::constant(1.5));
    let next = bin(&mut body, Op::Mul, a, k);
    body.push_output(next);
    let lp = t.push_loop(Loop {
        trips,
        body,
        init: vec![one],
        invariants: vec![],
        reads: vec![],
        writes: vec![],
    });
    let adjoint = t.push(Inst::loop_out(lp, 0));
    t.push_output(adjoint);
    let mut insts = t.insts().to_vec();
    insts[lp as usize].args[1] = 1;
    Tape::from_structured(
        insts,
        t.outputs().to_vec(),
        1,
        0,
        t.loops().to_vec(),
        Vec::new(),
    )
    .with_checkpoints(vec![Checkpoint {
        snapshots: s,
        step,
        init: vec![x0],
        invariants: vec![],
        reads: vec![],
        states: vec![0],
    }])
}

/// A guard failing in the forward step (instruction 3 of the step) or in
/// the reverse body (instruction 4 of the body): the JIT returns the
/// interpreter's error.
#[test]
fn guards_fail_in_the_step_and_in_the_reverse_body() {
    let x0 = 1.0;
    // States 1.5^k, k < 40; the step runs iterations up to 38.
    for (step_limit, body_limit, instr) in [
        (1e300, 1e300, None),
        (1.5f64.powi(30), 1e300, Some(3)), // the step at iteration 30
        (1e300, 1.5f64.powi(39), Some(4)), // the first reverse iteration
        (1.5f64.powi(38), 1e300, Some(3)), // the last iteration ever advanced
        (1.5f64.powi(39), 1e300, None),    // never advanced to
    ] {
        for s in [1, 2, 5, 40] {
            let tape = guarded_schedule(40, s, step_limit, body_limit);
            let failures = check_with(&tape, &options_for(&tape), &[(vec![x0], vec![])]);
            let got = interpret(&tape, &[x0], &[]);
            match instr {
                None => {
                    assert_eq!(failures, 0);
                    assert_eq!(got.unwrap(), [1.5f64.powi(40)]);
                }
                Some(i) => match got {
                    Err(Error::GuardFailed { instr, detail, .. }) => {
                        assert_eq!(instr, i, "{detail}");
                        assert!(detail.contains("in the body of loop %2"), "{detail}");
                    }
                    other => panic!("{other:?}"),
                },
            }
        }
    }
}
