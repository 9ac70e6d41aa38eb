//! `tapejit bench --compile-study`: one-time costs per tape instruction
//! (optimizer, JIT compile) as tapes grow, to show they stay linear.

use super::timing::once;
use crate::ad::{self, Seed};
use crate::error::Result;
use crate::ir::random::{random_tape, RandomTapeConfig};
use crate::ir::Tape;
use crate::suite::Case;
use crate::{jit, opt};
use serde::Serialize;

/// Costs measured on one tape.
#[derive(Clone, Debug, Serialize)]
pub struct StudyRow {
    /// Which family of tapes.
    pub tape: String,
    /// Instructions of the tape optimized and compiled.
    pub instructions: usize,
    /// Optimizer microseconds per instruction.
    pub optimize_us_per_instr: f64,
    /// JIT compile microseconds per instruction (of the optimized tape).
    pub compile_us_per_instr: f64,
    /// Machine code bytes per instruction.
    pub code_bytes_per_instr: f64,
}

fn measure(name: String, tape: &Tape) -> Result<StudyRow> {
    let (opt_s, optimized) = once(1, || opt::optimize(tape));
    let optimized = optimized?;
    let (compile_s, code) = once(1, || jit::compile(&optimized));
    let code = code?;
    let n = optimized.len().max(1) as f64;
    Ok(StudyRow {
        tape: name,
        instructions: optimized.len(),
        optimize_us_per_instr: opt_s * 1e6 / tape.len().max(1) as f64,
        compile_us_per_instr: compile_s * 1e6 / n,
        code_bytes_per_instr: code.code_bytes() as f64 / n,
    })
}

/// Rosenbrock gradient tapes and random tapes of about `sizes` instructions.
pub fn compile_study(sizes: &[usize], mut report: impl FnMut(&StudyRow)) -> Result<Vec<StudyRow>> {
    let mut rows = Vec::new();
    for &size in sizes {
        // The rosenbrock gradient tape has about 17 instructions per term.
        let case = Case::Rosenbrock {
            n: (size / 17).max(2),
        };
        let primal = opt::optimize(&case.trace()?)?;
        let gradient = ad::reverse(&primal, 0..primal.n_inputs(), Seed::One)?;
        let row = measure(format!("rosenbrock gradient ({case})"), &gradient)?;
        report(&row);
        rows.push(row);
        let config = RandomTapeConfig {
            len: size,
            n_inputs: 16,
            n_params: 4,
            n_outputs: 16,
            guard_every: 64,
        };
        let row = measure("random".into(), &random_tape(size as u64, &config))?;
        report(&row);
        rows.push(row);
    }
    Ok(rows)
}
