//! The JIT on checkpointed loops (a reverse loop whose forward states are
//! recomputed by the binomial schedule): bitwise equal to the interpreter,
//! which runs the same schedule, and to the gradient that stores every
//! state; the same error when a guard fails, in the forward loop, the
//! forward step or the reverse body; under tiny and default chunks, both
//! register allocators and inputs and outputs split anywhere, with the
//! scratch buffer reused dirty across calls (the harness of
//! `tests/jit_loops.rs`, in `loops_common/`).

use tapejit::ad::checkpoint::optimal_advances;
use tapejit::ad::{self, Seed};
use tapejit::ir::random::Choices;
use tapejit::ir::semantics::same;
use tapejit::ir::{Checkpoint, Inst, Loop, Op, Tape, Write, WriteMode};
use tapejit::jit::{self, JitOptions};
use tapejit::suite::{lorenz_rk4_fold, LORENZ_DEFAULT_INPUT};
use tapejit::{trace_scalar, Engine, Error, Function, MemoryBudget, Options};

mod loops_common;
use loops_common::*;

// ---------------------------------------------------------------------------
// Building checkpointed tapes

/// `t` with loop instruction `loops[k]` checkpointed by `checkpoints[k]`.
fn checkpointed(t: Tape, loops: &[u32], checkpoints: Vec<Checkpoint>) -> Tape {
    let mut insts = t.insts().to_vec();
    for (k, &l) in loops.iter().enumerate() {
        insts[l as usize].args[1] = k as u32 + 1;
    }
    Tape::from_structured(
        insts,
        t.outputs().to_vec(),
        t.n_inputs(),
        t.n_params(),
        t.loops().to_vec(),
        t.arrays().to_vec(),
    )
    .with_checkpoints(checkpoints)
}

/// On `t` (one input, no parameter, arrays only): `x0 = input 0`, and a
/// reverse loop of `trips` trips over `body` (inputs: the adjoint, from 1,
/// and the state) with `writes`, checkpointed with `snapshots` snapshots
/// of the forward `step` from `x0`; outputs the final adjoint.
fn scalar_checkpointed(
    mut t: Tape,
    trips: u32,
    snapshots: u32,
    step: Tape,
    body: Tape,
    writes: Vec<Write>,
) -> Tape {
    let x0 = t.push(Inst::input(0));
    let one = t.push(Inst::constant(1.0));
    let lp = t.push_loop(Loop {
        trips,
        body,
        init: vec![one],
        invariants: vec![],
        reads: vec![],
        writes,
    });
    let adjoint = t.push(Inst::loop_out(lp, 0));
    t.push_output(adjoint);
    let checkpoint = Checkpoint {
        snapshots,
        step,
        init: vec![x0],
        invariants: vec![],
        reads: vec![],
        states: vec![0],
    };
    checkpointed(t, &[lp], vec![checkpoint])
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

    let writes = vec![write(seen, trips as i64 - 1, &[-1], WriteMode::Store)];
    let mut t = scalar_checkpointed(t, trips, snapshots, step, body, writes);
    slice(&mut t, count, 0, 1);
    slice(&mut t, seen, 0, trips);
    t
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
        check(&tape, &[(vec![x0], vec![])]);
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
/// snapshot budgets), carried values that mostly feed themselves,
/// invariants, strided reads of inputs, params and arrays, writes of both
/// modes, `elem`/`store`, loops nested in bodies, guards (failing on NaN or
/// large values) and calls.
static CHECKPOINT: Profile = Profile {
    inputs: 8,
    params: 3,
    arrays: 3,
    left_out: &[Op::Round, Op::Same],
    strides: &[-1, 0, 0, 1, 1],
    root_trips: &[1, 2, 3, 5, 8, 17, 40, 100],
    nested_trips: &[1, 2, 3, 4],
    max_work: u32::MAX,
    carried: (1, 3),
    reads: 3,
    body_len: 8,
    mix_carried: true,
    writes_drawn_first: false,
    binary_slots: 7,
    nest_slots: 1,
    max_depth: 2,
};

/// A random tape of one to three root loops, with straight code around them.
fn random_loop_tape(seed: u64) -> Tape {
    let mut g = Gen::new(seed, &CHECKPOINT);
    let (mut t, mut vals) = g.root();
    g.root_loops(&mut t, &mut vals, 2, |g, vals| g.random_loop(&[], vals, 0));
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
    let mut refused = 0;
    for seed in 0..400u64 {
        let t = random_loop_tape(seed);
        t.verify()
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{t}"));
        let s = [1, 2, 3, 5][seed as usize % 4];
        let n = t.n_inputs();
        let g = ad::reverse_with_budget(&t, 0..n, Seed::One, MemoryBudget::Snapshots(s));
        // Tapes the reverse transform would get wrong are refused.
        if ad::reverse_hazard(&t).is_some() {
            refused += 1;
            assert!(
                matches!(g, Err(tapejit::Error::Unsupported(_))),
                "seed {seed}\n{t}"
            );
            continue;
        }
        let g = g.unwrap_or_else(|e| panic!("seed {seed}: {e}\n{t}"));
        let stored = ad::reverse(&t, 0..n, Seed::One).unwrap();
        checkpointed += g.checkpoints().len();
        let pts = points(seed, &g, 8);
        points_run += pts.len();
        let options = options_with_random_chunks(&g, seed ^ 0x5eed, 60);
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
         {compared} tapes compared with stored states, {refused} tapes refused"
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
    let mut g = Gen::new(seed, &CHECKPOINT);
    let (mut t, mut vals) = g.root();
    // Per root loop: its checkpoint, if it has one.
    let mut schedules = Vec::new();
    let loops = g.root_loops(&mut t, &mut vals, 2, |g, vals| {
        if g.rng.one_in(3) {
            schedules.push(None);
            return g.random_loop(&[], vals, 0);
        }
        let fwd = g.random_loop(&[], vals, 0);
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
        let rev = g.random_loop_with(&[], vals, 0, fwd.trips, states.len());
        schedules.push(Some(Checkpoint {
            snapshots: 1 + g.rng.below(5) as u32,
            step,
            init: fwd.init,
            invariants: fwd.invariants,
            reads: fwd.reads,
            states,
        }));
        rev
    });
    g.fill(&mut t, &mut vals, &[], 0, 2);
    g.outputs(&mut t, &vals);
    let (loops, checkpoints): (Vec<u32>, Vec<Checkpoint>) = loops
        .into_iter()
        .zip(schedules)
        .filter_map(|(l, c)| Some((l, c?)))
        .unzip();
    checkpointed(t, &loops, checkpoints)
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
        let options = options_with_random_chunks(&t, seed ^ 0xc0de, 60);
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
    // Guards `x < limit`, then outputs `1.5 v`.
    fn guarded_times(t: &mut Tape, x: u32, limit: f64, v: u32) {
        let limit = t.push(Inst::constant(limit));
        let ok = bin(t, Op::Lt, x, limit);
        t.push(Inst::guard(ok, true));
        let k = t.push(Inst::constant(1.5));
        let next = bin(t, Op::Mul, v, k);
        t.push_output(next);
    }
    let mut step = Tape::new(1, 0);
    let x = step.push(Inst::input(0));
    guarded_times(&mut step, x, step_limit, x);
    let mut body = Tape::new(2, 0);
    let [a, x] = body_inputs(&mut body)[..] else {
        unreachable!()
    };
    guarded_times(&mut body, x, body_limit, a);
    scalar_checkpointed(Tape::new(1, 0), trips, s, step, body, vec![])
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
            let failures = check(&tape, &[(vec![x0], vec![])]);
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
