//! Segment checkpointing of straight-line gradients: under a byte budget
//! smaller than its residuals, a tape's reverse sweep runs segment by
//! segment, each recomputed from the values crossing its boundary. The
//! gradient must stay bitwise the plain one (interpreter and JIT,
//! optimized or not), the compiled gradient must actually store less, and
//! a budget no segmentation fits must be a clear error.

use proptest::prelude::*;
use tapejit::ad::{self, Seed};
use tapejit::ir::random::{random_points, smooth_tape, SmoothConfig};
use tapejit::ir::{Inst, Op, Tape};
use tapejit::jit::{self, JitOptions};
use tapejit::rng::SplitMix64;
use tapejit::{opt, trace_scalar, Engine, Error, Function, MemoryBudget, Options};

mod support;
use support::chain::chain;
use support::*;

/// A random smooth expression of `len` instructions whose output is the
/// sum of all its values, so that the whole tape is live and active.
fn summed_tape(seed: u64, len: usize, guard_every: usize) -> Tape {
    let config = SmoothConfig {
        len,
        n_inputs: 4,
        n_params: 1,
        n_outputs: 1,
        guard_every,
    };
    let random = smooth_tape(&mut SplitMix64::new(seed), &config).tape;
    let mut tape = Tape::new(random.n_inputs(), random.n_params());
    let mut sum = None;
    let mut new_value = Vec::with_capacity(random.len());
    for inst in random.insts() {
        let mut inst = *inst;
        let n_operands = inst.operands().len();
        for arg in &mut inst.args[..n_operands] {
            *arg = new_value[*arg as usize];
        }
        let v = tape.push(inst);
        new_value.push(v);
        if !inst.op.has_no_value() && !inst.op.is_compare() {
            sum = Some(match sum {
                None => v,
                Some(s) => tape.push(Inst::binary(Op::Add, s, v)),
            });
        }
    }
    tape.push_output(sum.expect("a value"));
    tape
}

fn segments_of(tape: &Tape) -> usize {
    tape.insts().iter().filter(|i| i.op == Op::Loop).count()
}

/// Checks the segmented gradient of `tape` against the plain one at a few
/// points: interpreter, optimized, compiled. Returns whether `tape` was
/// long enough to cut.
fn check_segmented(tape: &Tape, seed: u64) -> bool {
    let Some(segmented) = segmented_gradient(tape) else {
        return false;
    };
    let segmented = segmented.unwrap_or_else(|e| panic!("segmented gradient: {e}\n{tape}"));
    assert!(segments_of(&segmented) > 1, "not cut:\n{segmented}");
    let n = tape.n_inputs();
    let plain = ad::reverse(tape, 0..n, Seed::One).unwrap();
    let optimized = opt::optimize(&segmented).unwrap();
    let options = JitOptions {
        chunk_len: 40,
        ..JitOptions::default()
    };
    let code = jit::compile_with(&optimized, options).unwrap();
    for (x, p) in random_points(seed, tape, 3) {
        let expected = interpret(&plain, &x, &p);
        let point = (&x[..], &p[..]);
        let got = interpret(&segmented, &x, &p);
        assert_same("segmented", &expected, &got, Errors::Identical, tape, point);
        // The optimizer may drop a guard an earlier one implies.
        let got = interpret(&optimized, &x, &p);
        assert_same("optimized", &expected, &got, Errors::BothGuard, tape, point);
        let got = run_plain(&code, (n, 1), &x, &p);
        assert_same("compiled", &expected, &got, Errors::BothGuard, tape, point);
    }
    true
}

#[test]
fn segmented_gradients_are_bitwise_the_plain_ones_on_random_tapes() {
    let mut cut = 0;
    for seed in 0..240u64 {
        let len = [30, 200, 1_500][seed as usize % 3];
        let tape = summed_tape(seed, len, [0, 24][seed as usize % 2]);
        cut += check_segmented(&tape, seed ^ 0x5e6) as usize;
    }
    assert!(cut > 200, "only {cut} tapes were cut into segments");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn segmented_gradients_agree(seed in any::<u64>(), len in 8usize..600) {
        check_segmented(&summed_tape(seed, len, 16), seed);
    }

    /// Any cut points, not only those a budget picks: the VJP (weights as
    /// inputs, some inputs not differentiated) is bitwise the plain one.
    #[test]
    fn any_cut_gives_the_plain_vjp(
        seed in any::<u64>(),
        len in 2usize..300,
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 1..12),
        skip_first_input in any::<bool>(),
    ) {
        let tape = summed_tape(seed, len, 8);
        let mut starts: Vec<usize> = cuts.iter().map(|c| c.index(tape.len())).collect();
        starts.push(0);
        starts.sort_unstable();
        starts.dedup();
        let wrt = skip_first_input as usize..tape.n_inputs();
        let plain = ad::reverse(&tape, wrt.clone(), Seed::Inputs).unwrap();
        let cut = ad::reverse_with_segments(&tape, wrt, Seed::Inputs, &starts).unwrap();
        for (x, p) in random_points(seed, &plain, 2) {
            let expected = interpret(&plain, &x, &p);
            let got = interpret(&cut, &x, &p);
            assert_same("cut", &expected, &got, Errors::Identical, &tape, (&x, &p));
        }
    }
}

#[test]
fn bad_cut_points_are_errors() {
    let tape = summed_tape(1, 50, 0);
    let n = tape.n_inputs();
    for starts in [&[][..], &[1, 5], &[0, 5, 5], &[0, 9, 3], &[0, tape.len()]] {
        let err = ad::reverse_with_segments(&tape, 0..n, Seed::One, starts).unwrap_err();
        assert!(
            err.to_string().contains("segment starts"),
            "{starts:?}: {err}"
        );
    }
}

#[test]
fn segments_bound_the_compiled_gradients_stored_values() {
    let x = [0.3, -1.2, 0.7];
    let tape = trace_scalar(&x, &[], |x, _| chain(x, 10_000)).unwrap();
    let n = tape.n_inputs();
    let plain = opt::optimize(&ad::reverse(&tape, 0..n, Seed::One).unwrap()).unwrap();
    let too_small = ad::segment_plan(&tape, MemoryBudget::Bytes(8)).unwrap_err();
    let Error::Unsupported(message) = too_small else {
        panic!("{too_small:?}")
    };
    assert!(message.contains("too small"), "{message}");

    let budget = MemoryBudget::Bytes(8 * tape.len() as u64 / 16);
    let plan = ad::segment_plan(&tape, budget).unwrap().expect("a plan");
    assert!(plan.stored * 16 <= tape.len(), "{plan:?}");
    assert!(plan.residuals > 4 * plan.stored, "{plan:?}");
    let segmented =
        opt::optimize(&ad::reverse_with_budget(&tape, 0..n, Seed::One, budget).unwrap()).unwrap();
    assert_eq!(segments_of(&segmented), plan.starts.len());

    let plain_code = jit::compile(&plain).unwrap();
    let segmented_code = jit::compile(&segmented).unwrap();
    assert!(
        segmented_code.scratch_len() * 4 < plain_code.scratch_len(),
        "scratch: {} values segmented, {} plain ({} segments, {} stored, {} residuals)",
        segmented_code.scratch_len(),
        plain_code.scratch_len(),
        plan.starts.len(),
        plan.stored,
        plan.residuals
    );
    let expected = run_plain(&plain_code, (n, 1), &x, &[]);
    let got = run_plain(&segmented_code, (n, 1), &x, &[]);
    assert_same(
        "segmented",
        &expected,
        &got,
        Errors::Identical,
        &tape,
        (&x, &[]),
    );
}

#[test]
fn functions_cut_their_gradient_under_a_byte_budget() {
    let x = [0.3, -1.2, 0.7];
    let straight = |budget| Options {
        reroll: false,
        memory_budget: budget,
        ..Options::default()
    };
    let traced = trace_scalar(&x, &[], |x, _| chain(x, 3_000)).unwrap();
    let function = |budget| Function::from_tape_with(traced.clone(), straight(budget));
    let mut plain = function(MemoryBudget::Unlimited).unwrap();
    let mut cut = function(MemoryBudget::Bytes(8 * 600)).unwrap();
    assert!(segments_of(cut.gradient_tape().unwrap()) > 1);
    assert_eq!(segments_of(plain.gradient_tape().unwrap()), 0);
    for engine in [Engine::Interpreter, Engine::Jit] {
        plain.set_engine(engine);
        cut.set_engine(engine);
        let (mut a, mut b) = ([0.0; 3], [0.0; 3]);
        let fa = plain.gradient(&x, &mut a).unwrap();
        let fb = cut.gradient(&x, &mut b).unwrap();
        assert_eq!(fa.to_bits(), fb.to_bits());
        assert_eq!(a.map(f64::to_bits), b.map(f64::to_bits), "{engine:?}");
        // Forward over the cut reverse sweep: the same Hessian-vector product.
        let v = [0.5, -1.0, 2.0];
        plain.hvp(&x, &v, &mut a).unwrap();
        cut.hvp(&x, &v, &mut b).unwrap();
        assert_eq!(a.map(f64::to_bits), b.map(f64::to_bits), "HVP, {engine:?}");
    }
    let too_small = function(MemoryBudget::Bytes(64));
    match too_small {
        Err(Error::Unsupported(m)) => assert!(m.contains("too small"), "{m}"),
        other => panic!("expected a budget error, got {:?}", other.map(|_| ())),
    }
}
