//! The tape optimizer: exact tape -> tape passes.
//!
//! Every pass preserves the primal bitwise for all inputs (NaN, infinities
//! and `-0.0` included; NaN payloads are not compared), so it may run on any
//! tape, primal or derived, before any backend. The default pipeline:
//!
//! 1. `simplify`: constant folding and algebraic
//!    identities that hold bit for bit (`x * 1`, `x + -0.0`, `--x`,
//!    `powi(x, 2) -> x * x`, constant conditions of `select` and guards, ...),
//!    and never the ones that do not (`x * 0`, `x - x`, `x + 0.0`).
//! 2. `cse`: value numbering (commutative operands normalized
//!    only where IEEE makes the op commutative bit for bit).
//! 3. `guards`: drops guards that repeat or are implied by
//!    an earlier one.
//! 4. `dce`: removes what no output or guard needs.
//!
//! 5. `reroll` ([`reroll()`]), once the passes above have converged, on
//!    tapes of at least [`REROLL_MIN_LEN`] instructions: rolls repeated
//!    segments into loops (exact too: the same operations in the same
//!    order), after which the passes run again on the loop bodies.
//!
//! Activity analysis is split between constant folding here (values that
//! depend on no input or parameter become constants) and the AD transforms,
//! which form derivatives only for values that depend on the differentiated
//! inputs and lead to an output.

mod cse;
mod dce;
mod guards;
mod reroll;
mod rewrite;
mod simplify;

use crate::error::{Error, Result};
use crate::ir::Tape;
use std::time::Instant;

pub use reroll::{reroll, reroll_with, reroll_with_stats, LoopReport, RerollConfig, RerollStats};

/// One pass's effect, for reports.
#[derive(Clone, Debug, PartialEq)]
pub struct PassStats {
    /// Pass name.
    pub pass: &'static str,
    /// Instructions before.
    pub before: usize,
    /// Instructions after.
    pub after: usize,
    /// Seconds it took.
    pub seconds: f64,
}

/// What the pipeline did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptStats {
    /// Each pass run, in order.
    pub passes: Vec<PassStats>,
}

impl OptStats {
    /// Instructions before the first pass.
    pub fn before(&self) -> Option<usize> {
        self.passes.first().map(|p| p.before)
    }

    /// Instructions after the last pass.
    pub fn after(&self) -> Option<usize> {
        self.passes.last().map(|p| p.after)
    }

    /// Total seconds.
    pub fn seconds(&self) -> f64 {
        self.passes.iter().map(|p| p.seconds).sum()
    }
}

/// A pass: a name and a tape -> tape function (for verified tapes).
type Pass = (&'static str, fn(&Tape) -> Tape);

/// The passes of the default pipeline, in order.
const PIPELINE: [Pass; 4] = [
    ("simplify", simplify::simplify),
    ("cse", cse::cse),
    ("guards", guards::guards),
    ("dce", dce::dce),
];

/// Names of the passes of the default pipeline, in order.
pub fn pass_names() -> impl Iterator<Item = &'static str> {
    PIPELINE.iter().map(|(name, _)| *name)
}

/// Runs one pass by name (verifying the tape first): a pass of the
/// pipeline, or `"reroll"` ([`reroll()`]).
pub fn run_pass(name: &str, tape: &Tape) -> Result<Tape> {
    tape.verify()?;
    if name == "reroll" {
        return Ok(reroll::reroll_verified(tape));
    }
    let (_, pass) = PIPELINE
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| Error::Unsupported(format!("no optimizer pass named {name:?}")))?;
    Ok(rewrite::deep(*pass, tape))
}

/// Runs the default pipeline (verifying the tape first): the exact passes
/// until a round changes nothing (at most 4 rounds), then rerolling, then
/// the exact passes again if loops were made.
pub fn optimize(tape: &Tape) -> Result<Tape> {
    Ok(optimize_with_stats(tape)?.0)
}

/// [`optimize`] for a tape known to verify.
pub(crate) fn optimize_verified(tape: &Tape) -> Tape {
    optimize_verified_with(tape, true)
}

/// [`optimize_verified`], rerolling or not.
pub(crate) fn optimize_verified_with(tape: &Tape, reroll: bool) -> Tape {
    let out = if reroll {
        pipeline(tape).0
    } else {
        exact_passes(tape.clone(), OptStats::default()).0
    };
    debug_assert!(out.verify().is_ok());
    out
}

/// The exact passes for a loop body under construction (which cannot be
/// verified on its own: its accesses name the root tape's arrays).
pub(crate) fn optimize_body(body: &Tape) -> Tape {
    exact_passes(body.clone(), OptStats::default()).0
}

/// [`optimize`], with what each pass did.
pub fn optimize_with_stats(tape: &Tape) -> Result<(Tape, OptStats)> {
    tape.verify()?;
    let out = pipeline(tape);
    debug_assert!(out.0.verify().is_ok());
    Ok(out)
}

/// Tapes shorter than this (after the exact passes) are not rerolled:
/// straight-line code this short mostly fits the instruction caches (13-18
/// bytes of machine code per instruction) and runs faster than a loop
/// (measured: rosenbrock with 100 inputs, gradient tape of 1,981
/// instructions, 2.0x native primal unrolled, 4.5x rolled; with 1000
/// inputs, 19,981 instructions, 6.4x unrolled, 3.0x rolled).
pub const REROLL_MIN_LEN: usize = 4000;

fn pipeline(tape: &Tape) -> (Tape, OptStats) {
    let (mut current, mut stats) = exact_passes(tape.clone(), OptStats::default());
    if current.static_len() < REROLL_MIN_LEN {
        return (current, stats);
    }
    let t0 = Instant::now();
    let rolled = reroll::reroll_verified(&current);
    stats.passes.push(PassStats {
        pass: "reroll",
        before: current.static_len(),
        after: rolled.static_len(),
        seconds: t0.elapsed().as_secs_f64(),
    });
    if rolled != current {
        current = rolled;
        (current, stats) = exact_passes(current, stats);
    }
    (current, stats)
}

/// The exact passes, in rounds until a round changes nothing (at most 4).
fn exact_passes(tape: Tape, mut stats: OptStats) -> (Tape, OptStats) {
    let mut current = tape;
    for _ in 0..4 {
        let round_start = current.clone();
        for (name, pass) in PIPELINE {
            let t0 = Instant::now();
            let next = rewrite::deep(pass, &current);
            stats.passes.push(PassStats {
                pass: name,
                before: current.static_len(),
                after: next.static_len(),
                seconds: t0.elapsed().as_secs_f64(),
            });
            current = next;
        }
        if current == round_start {
            break;
        }
    }
    (current, stats)
}
