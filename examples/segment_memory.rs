//! Segment checkpointing of a long straight-line gradient: stored values,
//! compiled scratch and time of the plain and the cut reverse sweep, side
//! by side in one run.
//!
//! `cargo run --release --example segment_memory -- [STEPS]` (default
//! 10,000 steps of a chain of different ops, about 30,000 instructions;
//! rerolling does not apply to traced tapes given straight to `ad`).

use std::time::Instant;
use tapejit::ad::{self, Seed};
use tapejit::jit::{self, JitFunction};
use tapejit::{opt, trace_scalar, MemoryBudget};

#[path = "../tests/support/chain.rs"]
mod chain;
use chain::chain;

/// Median seconds per call over `runs` batches, and the outputs.
fn time(code: &JitFunction, x: &[f64], runs: usize) -> (f64, Vec<f64>) {
    let mut out = vec![0.0; code.n_outputs()];
    let mut scratch = vec![0.0; code.scratch_len()];
    let mut samples: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..100 {
                code.run(x, &[], &mut out, &mut scratch).expect("no guards");
            }
            start.elapsed().as_secs_f64() / 100.0
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    (samples[runs / 2], out)
}

fn main() -> tapejit::Result<()> {
    let steps: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("STEPS is a number"))
        .unwrap_or(10_000);
    let x = [0.3, -1.2, 0.7];
    let tape = trace_scalar(&x, &[], |x, _| chain(x, steps))?;
    let n = tape.n_inputs();
    let plain = opt::optimize(&ad::reverse(&tape, 0..n, Seed::One)?)?;
    let budget = MemoryBudget::Bytes(8 * tape.len() as u64 / 16);
    let plan = ad::segment_plan(&tape, budget)?.expect("over budget");
    let cut = opt::optimize(&ad::reverse_with_budget(&tape, 0..n, Seed::One, budget)?)?;
    let (plain_code, cut_code) = (jit::compile(&plain)?, jit::compile(&cut)?);
    // Interleaved, so that both see the same machine.
    let (mut tp, mut tc) = (Vec::new(), Vec::new());
    let (mut gp, mut gc) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let (t, g) = time(&plain_code, &x, 5);
        tp.push(t);
        gp = g;
        let (t, g) = time(&cut_code, &x, 5);
        tc.push(t);
        gc = g;
    }
    tp.sort_by(f64::total_cmp);
    tc.sort_by(f64::total_cmp);
    let same = gp.iter().zip(&gc).all(|(a, b)| a.to_bits() == b.to_bits());
    println!(
        "primal tape: {} instructions, budget {budget:?}",
        tape.len()
    );
    println!(
        "plain gradient: {} residuals stored, compiled scratch {} values, {:.1} µs",
        plan.residuals,
        plain_code.scratch_len(),
        tp[2] * 1e6
    );
    println!(
        "cut gradient:   {} segments, {} values stored, compiled scratch {} values, {:.1} µs ({:.2}x)",
        plan.starts.len(),
        plan.stored,
        cut_code.scratch_len(),
        tc[2] * 1e6,
        tc[2] / tp[2]
    );
    println!("gradients bitwise equal: {same}");
    Ok(())
}
