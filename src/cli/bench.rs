//! `tapejit bench`: every figure of one suite case, measured side by side.

use super::check::max_rel_err_fd;
use super::report::{rustflags, CaseReport};
use super::timing::{interleaved, once};
use crate::ad::checkpoint::Schedule;
use crate::ad::{self, MemoryBudget, Seed};
use crate::error::Result;
use crate::ir::semantics::same;
use crate::ir::Tape;
use crate::suite::Case;
use crate::{opt, Engine, Function, Options, WithParams};
use std::hint::black_box;
use std::time::Duration;

/// Longest gradient tape without the optimizer or without rerolling that
/// the bench compiles for comparison (compiling takes about 6 µs per
/// instruction).
const UNROLLED_COMPILE_MAX: usize = 400_000;

/// The binomial schedule of `tape`'s first checkpointed loop.
pub(super) fn checkpoint_schedule(tape: &Tape) -> Option<Schedule> {
    let inst = tape
        .insts()
        .iter()
        .find(|i| i.op == crate::ir::Op::Loop && tape.checkpoint_of(i).is_some())?;
    let cp = tape.checkpoint_of(inst)?;
    Schedule::binomial(tape.loop_of(inst).trips, cp.snapshots).ok()
}

/// The process's peak resident set size so far (Linux: `VmHWM` of
/// `/proc/self/status`); `None` elsewhere.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The tape a case's "gradient" runs: the gradient, or a VJP for vector outputs.
fn gradient_tape(f: &Function) -> Result<&Tape> {
    if f.n_outputs() == 1 {
        f.gradient_tape()
    } else {
        f.vjp_tape()
    }
}

/// Measures one case for about `budget` of timed runs, its functions made
/// with `memory` and `flush_subnormals` (see [`Options`]).
pub fn run_case(
    case: &Case,
    budget: Duration,
    memory: MemoryBudget,
    flush_subnormals: bool,
) -> Result<CaseReport> {
    let x = case.default_input();
    let p = case.params();
    let w = case.vjp_weights();
    let (n, m) = (case.n_inputs(), case.n_outputs());

    let (mut trace_s, mut traced) = once(1, || case.trace());
    if trace_s < 0.05 {
        (trace_s, traced) = once(5, || case.trace());
    }
    let traced = traced?;
    let (optimize_primal_s, optimized) = once(1, || opt::optimize(&traced));
    let optimized = optimized?;
    let seed = if m == 1 { Seed::One } else { Seed::Inputs };
    let (derive_s, derived) = once(1, || ad::reverse(&optimized, 0..n, seed));
    let derived = derived?;
    let (optimize_grad_s, _) = once(1, || opt::optimize(&derived));

    let f = Function::from_tape_with(
        traced.clone(),
        Options {
            memory_budget: memory,
            flush_subnormals,
            ..Options::default()
        },
    )?;
    let unoptimized = Options {
        optimize: false,
        memory_budget: memory,
        flush_subnormals,
        ..Options::default()
    };
    let raw = Function::from_tape_with(traced.clone(), unoptimized)?;
    // Lengths count every loop body once (what tracing, optimizing and
    // compiling grow with); `grad_work` counts executed instructions.
    let grad_len = gradient_tape(&raw)?.static_len();
    let grad_tape = gradient_tape(&f)?;
    let (grad_len_opt, grad_work) = (grad_tape.static_len(), grad_tape.work());
    let grad_array_elems: u64 = grad_tape.arrays().iter().map(|&l| l as u64).sum::<u64>()
        + grad_tape
            .checkpoints()
            .iter()
            .map(|cp| cp.snapshots as u64 * cp.n_carried() as u64)
            .sum::<u64>();
    // The schedule of the gradient's (first) checkpointed loop, if any.
    let schedule = checkpoint_schedule(grad_tape);
    let segments = ad::segment_plan(f.tape(), memory)?;
    let compiled_gradient = |f: &Function| {
        if m == 1 {
            f.compiled_gradient().map(|c| c.code_bytes())
        } else {
            f.compiled_vjp().map(|c| c.code_bytes())
        }
    };
    let raw_compiled = grad_len <= UNROLLED_COMPILE_MAX;
    if raw_compiled {
        compiled_gradient(&raw)?;
    }
    let raw_jit = raw.with_params(&p)?.engine(Engine::Jit);
    // The same pipeline without rerolling, where compiling it is affordable.
    let no_reroll = Options {
        reroll: false,
        memory_budget: memory,
        flush_subnormals,
        ..Options::default()
    };
    let unrolled = Function::from_tape_with(traced.clone(), no_reroll)?;
    let unrolled_len = gradient_tape(&unrolled)?.static_len();
    let compile_unrolled = if unrolled_len <= UNROLLED_COMPILE_MAX {
        let (s, code) = once(1, || compiled_gradient(&unrolled));
        code?;
        Some(s)
    } else {
        None
    };
    let unrolled_jit = unrolled.with_params(&p)?.engine(Engine::Jit);

    let bound = f.with_params(&p)?;
    let interp = bound.engine(Engine::Interpreter);
    let jit = bound.engine(Engine::Jit);
    let (compile_primal_s, primal_code) = once(1, || f.compiled_primal().map(|c| c.code_bytes()));
    let (compile_s, grad_code) = once(1, || compiled_gradient(&f));
    let (primal_code, grad_code) = (primal_code?, grad_code?);

    let mut native_out = vec![0.0; m];
    let mut scratch = vec![0.0; case.scratch_len()];
    let mut interp_out = vec![0.0; m];
    let mut jit_out = vec![0.0; m];
    let mut g = vec![0.0; n];
    let mut jit_g = vec![0.0; n];
    case.eval_with_scratch(&x, &p, &mut native_out, &mut scratch);
    interp.eval(&x, &mut interp_out)?;
    jit.eval(&x, &mut jit_out)?;
    let gradient = |b: WithParams, x: &[f64], g: &mut [f64]| -> Result<()> {
        if m == 1 {
            b.gradient(x, g).map(drop)
        } else {
            b.vjp(x, &w, g)
        }
    };
    gradient(interp, &x, &mut g)?;
    gradient(jit, &x, &mut jit_g)?;
    let all_same = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(a, b)| same(*a, *b));
    let matches = all_same(&native_out, &interp_out);
    let jit_matches = all_same(&jit_out, &interp_out) && all_same(&jit_g, &g);

    let mut phi = |y: &[f64]| -> Result<f64> {
        let mut o = vec![0.0; m];
        case.eval(y, &p, &mut o);
        Ok(o.iter().zip(&w).map(|(a, b)| a * b).sum())
    };
    let fd_err = max_rel_err_fd(&mut phi, &x, &g)?;

    let mut native = || {
        case.eval_with_scratch(black_box(&x), black_box(&p), &mut native_out, &mut scratch);
        black_box(&native_out);
    };
    let samples = {
        let mut interp_primal = || {
            let _ = black_box(interp.eval(black_box(&x), &mut interp_out));
        };
        let mut interp_grad = || {
            let _ = black_box(gradient(interp, black_box(&x), &mut g));
        };
        let mut jit_primal = || {
            let _ = black_box(jit.eval(black_box(&x), &mut jit_out));
        };
        let mut jit_grad = || {
            let _ = black_box(gradient(jit, black_box(&x), &mut jit_g));
        };
        let mut raw_g = vec![0.0; n];
        let mut jit_grad_unoptimized = || {
            if raw_compiled {
                let _ = black_box(gradient(raw_jit, black_box(&x), &mut raw_g));
            }
        };
        let mut unrolled_g = vec![0.0; n];
        let mut jit_grad_unrolled = || {
            if compile_unrolled.is_some() {
                let _ = black_box(gradient(unrolled_jit, black_box(&x), &mut unrolled_g));
            }
        };
        interleaved(
            &mut [
                &mut native,
                &mut interp_primal,
                &mut interp_grad,
                &mut jit_primal,
                &mut jit_grad,
                &mut jit_grad_unoptimized,
                &mut jit_grad_unrolled,
            ],
            budget,
        )
    };
    // Vector outputs: the full Jacobian, interleaved with its own native run.
    let jacobian = if m > 1 {
        let mut jac_i = vec![0.0; n * m];
        let mut jac_j = vec![0.0; n * m];
        interp.jacobian(&x, &mut jac_i)?;
        jit.jacobian(&x, &mut jac_j)?;
        let mut interp_jacobian = || {
            let _ = black_box(interp.jacobian(black_box(&x), &mut jac_i));
        };
        let mut jit_jacobian = || {
            let _ = black_box(jit.jacobian(black_box(&x), &mut jac_j));
        };
        let s = interleaved(
            &mut [&mut native, &mut interp_jacobian, &mut jit_jacobian],
            budget / 2,
        );
        Some((s[1].median, s[2].median, s[2].median / s[0].median))
    } else {
        None
    };

    let tape = f.tape();
    let [native_s, primal_s, grad_s, jit_primal_s, jit_grad_s, jit_grad_raw_s, unrolled_s] =
        [0, 1, 2, 3, 4, 5, 6].map(|k| samples[k].median);
    Ok(CaseReport {
        name: case.name().into(),
        size: case.size(),
        inputs: n,
        outputs: m,
        params: case.n_params(),
        native_primal_s: Some(native_s),
        interp_primal_s: Some(primal_s),
        interp_grad_s: Some(grad_s),
        jit_primal_s: Some(jit_primal_s),
        jit_grad_s: Some(jit_grad_s),
        grad_ratio: Some(jit_grad_s / native_s),
        jit_primal_ratio: Some(jit_primal_s / native_s),
        interp_over_jit_grad: Some(grad_s / jit_grad_s),
        jit_jacobian_s: jacobian.map(|j| j.1),
        jit_jacobian_ratio: jacobian.map(|j| j.2),
        compile_s: Some(compile_s),
        optimize_s: Some(optimize_primal_s + optimize_grad_s),
        jit_grad_unoptimized_s: raw_compiled.then_some(jit_grad_raw_s),
        tape_len_opt: Some(tape.static_len()),
        grad_tape_len_opt: Some(grad_len_opt),
        grad_over_primal_opt: Some(grad_work as f64 / tape.work() as f64),
        compile_primal_s: Some(compile_primal_s),
        compile_us_per_instr: Some(compile_s * 1e6 / grad_len_opt as f64),
        jit_code_bytes: Some((primal_code + grad_code) as u64),
        jit_matches_interp: Some(jit_matches),
        interp_grad_ratio: Some(grad_s / native_s),
        interp_grad_ns_per_instr: Some(grad_s * 1e9 / grad_work as f64),
        interp_jacobian_s: jacobian.map(|j| j.0),
        grad_instrs_executed: Some(grad_work),
        trace_s: Some(trace_s),
        derive_s: Some(derive_s),
        tape_len: Some(traced.static_len()),
        grad_tape_len: Some(grad_len),
        tape_bytes_per_op: Some(tape.heap_bytes() as f64 / tape.static_len() as f64),
        peak_grad_bytes: Some(
            (grad_len_opt as u64 + grad_array_elems) * std::mem::size_of::<f64>() as u64
                + n as u64 * 8,
        ),
        loops: Some(tape.n_loops()),
        grad_loops: Some(grad_tape.n_loops()),
        checkpoint_snapshots: schedule.map(|s| s.snapshots() as u64),
        checkpoint_advances: schedule.map(|s| s.advances()),
        checkpoint_reverse_steps: schedule.map(|s| s.reverse_steps() as u64),
        grad_segments: segments.as_ref().map(|s| s.starts.len() as u64),
        grad_stored_values: segments.as_ref().map(|s| s.stored as u64),
        grad_residuals: segments.as_ref().map(|s| s.residuals as u64),
        peak_rss_bytes: peak_rss_bytes(),
        grad_tape_len_unrolled: Some(unrolled_len),
        compile_unrolled_s: compile_unrolled,
        jit_grad_unrolled_s: compile_unrolled.map(|_| unrolled_s),
        max_rel_err_fd: Some(fd_err),
        interp_matches_native: Some(matches),
        flush_subnormals,
        spread: samples.iter().map(|s| s.spread).collect(),
        rustflags: rustflags(),
    })
}
