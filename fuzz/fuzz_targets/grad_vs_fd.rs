//! Derivatives agree with finite differences.
//!
//! Half of the inputs drive `tapejit::ir::random::smooth_tape`: a random
//! expression of 1 to 4 inputs over the box `[-1, 1]^n` (1 to 48
//! instructions, up to 2 passive parameters, 1 to 3 outputs, guards that
//! hold on the box), in which an op is admitted only where interval
//! arithmetic shows it smooth on the whole box, at least `0.25` from any
//! singularity or kink (so local derivatives are bounded), with every value
//! within `±16`. Every op can appear (`floor`, `rem`, compares and `select`
//! where they are constant or smooth on the box). The other half drive
//! `loops::smooth_loop_tape` (`oracle::fd_loop_tape`): the same ops in
//! loops nested up to 3 deep (damped carried values, strided reads of
//! inputs, parameters and arrays, writes of both modes, `elem`/`store`),
//! 1 to 8 inputs, up to 2,000 instructions of work; where the reverse
//! transform refuses the tape (`tapejit::ad::reverse_hazard`, re-exported
//! by the oracle; see `tests/differential.rs`) it is drawn again, and only
//! the JVP is compared (and the refusal checked) if the hazard stays. At one point `x` (on a
//! 2^-20 grid in
//! `[-0.75, 0.75]^n`) and one direction `v` (on a 2^-10 grid in `[-1, 1]^n`),
//! so that every stencil point `x ± h v` is exact, with the derived tapes
//! optimized or not (drawn):
//!
//! - each component of the forward JVP `J v`,
//! - the reverse gradient of the sum of the outputs, dotted with `v`,
//! - the VJP `w^T J` for random weights `w`, dotted with `v`,
//! - each component of the HVP (forward of the reverse tape) `H v`,
//!   against differences of reverse gradients,
//!
//! are compared with central differences `D(h) = (phi(h) - phi(-h)) / 2h`
//! of the matching function `phi(t)` (an output, the sum of the outputs,
//! `w . F`, a gradient component at `x + t v`), with a tolerance derived
//! from the expression's conditioning (`oracle::fd_agrees`):
//!
//! - truncation: `T = |D(h1) - D(h2)|` with `h1 = 2^-12`, `h2 = 2^-13`
//!   (`D(h) = phi' + c h^2 + ...`); the Richardson value
//!   `R = (4 D(h2) - D(h1)) / 3` is the reference;
//! - rounding: `E = u A / h2`, `u = 2^-53`, `A` the largest (over the
//!   stencil) sum of the magnitudes of all the values of the evaluation:
//!   each rounding, carried to the result with a sensitivity of order one;
//! - the point is skipped when `T > 1e-4 (1 + |R|)` (differences not
//!   converged: the expression curves too fast at this scale);
//! - otherwise `|AD - R| <= 4 T + 64 E + 8 u sum_j |g_j v_j|` is required.
//!
//! A failure names the derivative, both values, the point and the tape.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapejit::ir::random::{smooth_tape, Choices, SmoothConfig};
use tapejit_fuzz::{oracle, FuzzChoices};

fuzz_target!(|data: &[u8]| {
    let mut c = FuzzChoices::new(data);
    if c.one_in(2) {
        let optimize = c.one_in(2);
        let s = oracle::fd_loop_tape(&mut c);
        oracle::check_fd(&mut c, &s, optimize);
        return;
    }
    let optimize = c.one_in(2);
    let config = SmoothConfig {
        len: 1 + c.below(48),
        n_inputs: 1 + c.below(4),
        n_params: c.below(3),
        n_outputs: 1 + c.below(3),
        guard_every: [0, 4, 12][c.below(3)],
    };
    let s = smooth_tape(&mut c, &config);
    oracle::check_fd(&mut c, &s, optimize);
});
