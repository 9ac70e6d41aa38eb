//! `Options::flush_subnormals`: the JIT (run with the hardware flushing)
//! against the interpreter (emulating it), bitwise, through the differential
//! oracle of `tests/support` on random tapes, loops and checkpointed
//! gradients, with tiny inputs; what flushing changes; lorenz_fold.

mod support;

use std::hint::black_box;
use support::*;
use tapejit::ir::random::loops::arbitrary_loop_tape;
use tapejit::ir::random::{arbitrary_tape, random_tape, Choices, RandomTapeConfig};
use tapejit::jit::{self, JitOptions};
use tapejit::suite::{lorenz_rk4_fold, LORENZ_DEFAULT_INPUT};
use tapejit::{ad, trace_scalar, trace_vector, Engine, Function, MemoryBudget, Options, Real};

/// The default options, flushing.
fn flushing() -> Options {
    Options {
        flush_subnormals: true,
        ..Options::default()
    }
}

#[test]
fn flushing_jit_agrees_with_the_interpreter_on_arbitrary_tapes() {
    cases("flush", 600, |rng, _| {
        let tape = arbitrary_tape(rng, 160);
        let derived = tape.len() <= 48;
        check_jit_flushed(rng, &tape, 3, derived, run_plain);
    });
}

#[test]
fn flushing_jit_agrees_with_the_interpreter_on_long_tapes() {
    cases("flush-long", 2, |rng, k| {
        let config = RandomTapeConfig {
            len: [1_000, 5_000][k as usize],
            n_inputs: 4,
            n_params: 2,
            n_outputs: 8,
            guard_every: 200,
        };
        let tape = random_tape(rng.next_u64(), &config);
        check_jit_flushed(rng, &tape, 4, false, run_plain);
    });
}

#[test]
fn flushing_jit_agrees_with_the_interpreter_on_loop_tapes() {
    cases("flush-loops", 250, |rng, _| {
        let tape = arbitrary_loop_tape(rng, 10_000);
        let small = tape.static_len() <= 150;
        check_jit_flushed(rng, &tape, 3, small, run_plain);
    });
}

#[test]
fn flushing_checkpointed_gradients_agree_and_equal_stored_states() {
    let mut compared = 0;
    cases("flush-checkpoint", 120, |rng, _| {
        let tape = checkpoint_tape(rng);
        if reverse_hazard(&tape).is_some() {
            return;
        }
        let n = tape.n_inputs();
        let budget = MemoryBudget::Snapshots(1 + rng.below(4) as u32);
        let seed = ad::Seed::One;
        let stored = ad::reverse_with_budget(&tape, 0..n, seed, MemoryBudget::Unlimited).unwrap();
        let checkpointed = ad::reverse_with_budget(&tape, 0..n, seed, budget).unwrap();
        // The shadow evaluation of `reference_of` does not run checkpoint
        // schedules: the JIT is compared with the interpreter directly.
        let options = JitOptions {
            flush_subnormals: true,
            ..draw_options(rng, &checkpointed)
        };
        let code = jit::compile_with(&checkpointed, options).unwrap();
        for _ in 0..3 {
            let (mut x, mut p) = tapejit::ir::random::random_inputs(rng, &stored);
            for v in x.iter_mut().chain(p.iter_mut()) {
                *v = tiny_or(rng, *v);
            }
            let got = interpret_with(&checkpointed, &x, &p, true);
            let jit = run_plain(&code, splits_of(&checkpointed, &options), &x, &p);
            let what = format!("flushing JIT {options:?} vs interpreter:\n{tape}");
            assert_same(
                &what,
                &got,
                &jit,
                Errors::Identical,
                &checkpointed,
                (&x, &p),
            );
            let expected = loop_reference_with(&stored, &x, &p, true);
            let what = format!("flushing, {budget:?} against stored states:\n{tape}");
            assert_matches(
                &what,
                &expected,
                &got,
                Errors::BothGuard,
                &checkpointed,
                (&x, &p),
            );
        }
        compared += usize::from(!checkpointed.checkpoints().is_empty());
    });
    assert!(compared > 30, "only {compared} checkpointed");
}

/// Value and gradient of `f` at `x` on `engine`, flushing or not.
fn gradient(f: &Function, engine: Engine, x: &[f64]) -> (f64, Vec<f64>) {
    let mut g = vec![0.0; x.len()];
    let w = f.with_params(&[]).unwrap().engine(engine);
    let v = w.gradient(x, &mut g).unwrap();
    (v, g)
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn subnormal_results_and_operands_become_signed_zeros() {
    // x0 * x1 underflows; x2 * 2^60 reads a subnormal x2.
    fn f<T: Real>(x: &[T]) -> Vec<T> {
        vec![x[0] * x[1], x[2] * 2f64.powi(60)]
    }
    let x = [1e-300, -1e-10, -1e-310];
    let make = |options| {
        Function::from_tape_with(trace_vector(&x, &[], |x, _| f(x)).unwrap(), options).unwrap()
    };
    let ieee = make(Options::default());
    let flush = make(flushing());
    assert!(flush.options().flush_subnormals);
    let native = f(&x);
    assert!(native.iter().all(|v| v.is_subnormal() || v.abs() < 1e-290));
    // d/dx0 (x0 x1) = x1, d/dx1 = x0: a subnormal x0 gives a zero.
    let product = |options| {
        let tape = trace_scalar(&x, &[], |x, _| x[0] * x[1]).unwrap();
        Function::from_tape_with(tape, options).unwrap()
    };
    let (ieee_product, flushing_product) = (product(Options::default()), product(flushing()));
    let at = [-1e-310, 2.0, 1.0];
    for engine in [Engine::Jit, Engine::Interpreter] {
        let mut out = [0.0; 2];
        ieee.with_params(&[])
            .unwrap()
            .engine(engine)
            .eval(&x, &mut out)
            .unwrap();
        assert_eq!(bits(&out), bits(&native), "{engine:?}");
        flush
            .with_params(&[])
            .unwrap()
            .engine(engine)
            .eval(&x, &mut out)
            .unwrap();
        assert_eq!(bits(&out), bits(&[-0.0, -0.0]), "{engine:?}: {out:?}");

        let (v, g) = gradient(&ieee_product, engine, &at);
        assert!(
            v.is_subnormal() && g[1].is_subnormal(),
            "{engine:?}: {v:e} {g:?}"
        );
        assert_eq!(g[0], 2.0);
        let (v, g) = gradient(&flushing_product, engine, &at);
        assert_eq!(v.to_bits(), (-0.0f64).to_bits(), "{engine:?}: {v:e}");
        assert_eq!(bits(&g), bits(&[2.0, -0.0, 0.0]), "{engine:?}: {g:?}");
    }
    // The caller's mode is back after the call: Rust arithmetic is IEEE.
    let under: f64 = black_box(1e-300) * black_box(1e-10);
    assert!(under.is_subnormal(), "{under:e}");
}

#[test]
fn the_callers_mode_is_restored_after_a_failing_guard() {
    let f = Function::from_tape_with(
        trace_scalar(
            &[1.0],
            &[],
            |x, _| {
                if x[0] > 0.0 {
                    x[0] * 1e-300
                } else {
                    -x[0]
                }
            },
        )
        .unwrap(),
        flushing(),
    )
    .unwrap();
    assert_eq!(f.value(&[1e-10]).unwrap(), 0.0);
    assert!(f.value(&[-1.0]).is_err(), "the guard fails");
    let under: f64 = black_box(1e-300) * black_box(1e-10);
    assert!(under.is_subnormal(), "{under:e}");
}

#[test]
fn lorenz_fold_gradient_is_bitwise_equal_in_both_engines_when_flushing() {
    let steps = 100_000;
    let x = LORENZ_DEFAULT_INPUT;
    let tape = trace_scalar(&x, &[], |x, _| lorenz_rk4_fold(x, steps)).unwrap();
    for budget in [MemoryBudget::default(), MemoryBudget::Snapshots(16)] {
        let options = Options {
            memory_budget: budget,
            ..flushing()
        };
        let f = Function::from_tape_with(tape.clone(), options).unwrap();
        let checkpointed = !f.gradient_tape().unwrap().checkpoints().is_empty();
        assert_eq!(checkpointed, budget != MemoryBudget::default());
        let (jv, jg) = gradient(&f, Engine::Jit, &x);
        let (iv, ig) = gradient(&f, Engine::Interpreter, &x);
        assert_eq!(jv.to_bits(), iv.to_bits(), "{budget:?}");
        assert_eq!(bits(&jg), bits(&ig), "{budget:?}: {jg:?} vs {ig:?}");
        assert!(jg.iter().all(|g| g.is_finite()), "{jg:?}");
    }
}
