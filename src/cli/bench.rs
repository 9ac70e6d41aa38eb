//! `tapejit bench`: every figure of one suite case, measured side by side.

use super::check::max_rel_err_fd;
use super::report::{rustflags, CaseReport};
use super::timing::{interleaved, once};
use crate::error::Result;
use crate::ir::semantics::same;
use crate::suite::Case;
use crate::{Function, Var};
use std::hint::black_box;
use std::time::Duration;

/// Traces a suite case at its default input and data.
pub fn trace_case(case: &Case) -> Result<Function> {
    let x = case.default_input();
    let p = case.params();
    let m = case.n_outputs();
    Function::vector_with_params(&x, &p, |x, p| {
        let mut out = vec![Var::from(0.0); m];
        case.eval(x, p, &mut out);
        out
    })
}

/// Measures one case for about `budget` of timed runs.
pub fn run_case(case: &Case, budget: Duration) -> Result<CaseReport> {
    let x = case.default_input();
    let p = case.params();
    let w = case.vjp_weights();
    let (n, m) = (case.n_inputs(), case.n_outputs());

    let (mut trace_s, mut f) = once(1, || trace_case(case));
    if trace_s < 0.05 {
        (trace_s, f) = once(5, || trace_case(case));
    }
    let f = f?;
    let (derive_s, grad_len) = once(1, || {
        let t = Function::from_tape(f.tape().clone()).expect("a traced tape verifies");
        if m == 1 {
            t.gradient_tape().map(|t| t.len()).unwrap_or(0)
        } else {
            t.vjp_tape().len()
        }
    });
    let bound = f.with_params(&p)?;

    let mut native_out = vec![0.0; m];
    let mut scratch = vec![0.0; case.scratch_len()];
    let mut interp_out = vec![0.0; m];
    let mut g = vec![0.0; n];
    case.eval_with_scratch(&x, &p, &mut native_out, &mut scratch);
    bound.eval(&x, &mut interp_out)?;
    let matches = native_out
        .iter()
        .zip(&interp_out)
        .all(|(a, b)| same(*a, *b));
    let gradient = |x: &[f64], g: &mut [f64]| -> Result<()> {
        if m == 1 {
            bound.gradient(x, g).map(drop)
        } else {
            bound.vjp(x, &w, g)
        }
    };
    gradient(&x, &mut g)?;

    let mut phi = |y: &[f64]| -> Result<f64> {
        let mut o = vec![0.0; m];
        case.eval(y, &p, &mut o);
        Ok(o.iter().zip(&w).map(|(a, b)| a * b).sum())
    };
    let fd_err = max_rel_err_fd(&mut phi, &x, &g)?;

    let samples = {
        let mut native = || {
            case.eval_with_scratch(black_box(&x), black_box(&p), &mut native_out, &mut scratch);
            black_box(&native_out);
        };
        let mut interp_primal = || {
            let _ = black_box(bound.eval(black_box(&x), &mut interp_out));
        };
        let mut interp_grad = || {
            let _ = black_box(gradient(black_box(&x), &mut g));
        };
        interleaved(
            &mut [&mut native, &mut interp_primal, &mut interp_grad],
            budget,
        )
    };
    let interp_jacobian_s = if m > 1 {
        let mut jac = vec![0.0; n * m];
        bound.jacobian(&x, &mut jac)?;
        let mut jacobian = || {
            let _ = black_box(bound.jacobian(black_box(&x), &mut jac));
        };
        Some(interleaved(&mut [&mut jacobian], budget / 4)[0].median)
    } else {
        None
    };

    let tape = f.tape();
    let (native_s, primal_s, grad_s) = (samples[0].median, samples[1].median, samples[2].median);
    Ok(CaseReport {
        name: case.name().into(),
        size: case.size(),
        inputs: n,
        outputs: m,
        params: case.n_params(),
        native_primal_s: Some(native_s),
        interp_primal_s: Some(primal_s),
        interp_grad_s: Some(grad_s),
        interp_grad_ratio: Some(grad_s / native_s),
        interp_grad_ns_per_instr: Some(grad_s * 1e9 / grad_len as f64),
        interp_jacobian_s,
        grad_instrs_executed: Some(grad_len as u64),
        trace_s: Some(trace_s),
        derive_s: Some(derive_s),
        tape_len: Some(tape.len()),
        grad_tape_len: Some(grad_len),
        tape_bytes_per_op: Some(tape.heap_bytes() as f64 / tape.len() as f64),
        peak_grad_bytes: Some((grad_len * std::mem::size_of::<f64>() + n * 8) as u64),
        max_rel_err_fd: Some(fd_err),
        interp_matches_native: Some(matches),
        spread: samples.iter().map(|s| s.spread).collect(),
        rustflags: rustflags(),
        ..CaseReport::default()
    })
}
