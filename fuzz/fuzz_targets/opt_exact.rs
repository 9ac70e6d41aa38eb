//! The optimizer is exact, and so is checkpointing.
//!
//! The input's first byte picks the tape, the rest drives the generators
//! of `tapejit::ir::random` and the evaluation points:
//!
//! - 7 in 16: a loop tape (`loops::arbitrary_loop_tape`, up to 3,000
//!   instructions of work; every value and array exposed as an output half
//!   of the time, so that no wrong rewrite hides in dead code):
//!   `opt::optimize` (rerolling included) and each pass alone (`simplify`,
//!   `cse`, `guards`, `dce`, `reroll`) keep every output bitwise equal (or
//!   both NaN) at arbitrary points and fail a guard exactly where the
//!   original does; for small tapes the optimized gradient, VJP, JVP and
//!   HVP tapes too, and their primal outputs equal the tape's;
//! - 2 in 16: checkpointing: a loop tape's gradient or VJP with 1 to 4
//!   snapshots (`ad::reverse_with_budget`) equals, bitwise under the
//!   interpreter, the one with every state stored (optimized too), on a
//!   tape whose root loop it checkpoints (drawn until one is found);
//! - 2 in 16: a straight-line tape made of a repeated random body
//!   (`oracle::repeated_tape`: carried values, fixed values, strided input
//!   and parameter leaves, nested repeats, spoiled look-alike iterations),
//!   the same checks, so that rerolling rolls real loops;
//! - 1 in 16: a long straight-line tape (400 to 10^4 instructions; the
//!   input's hash draws what the input does not);
//! - 4 in 16: an arbitrary straight-line tape (`arbitrary_tape`, up to 300
//!   instructions), with the gradient, VJP, JVP, Jacobian and HVP tapes of
//!   those of up to 80 instructions.
//!
//! IEEE 754 leaves the sign of a NaN produced by arithmetic unspecified
//! (x86 returns the first NaN operand, so `a * b` and `b * a` may differ),
//! so outputs that depend on such a sign through `copysign` or `signbit`
//! are not compared (see `oracle::check_equivalent`). Reverse-mode tapes
//! are not built where the reverse transform refuses the tape
//! (`tapejit::ad::reverse_hazard`); the refusal is checked instead.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapejit::ir::random::loops::arbitrary_loop_tape;
use tapejit::ir::random::{arbitrary_tape, random_tape_with, Choices};
use tapejit_fuzz::{oracle, FuzzChoices};

fuzz_target!(|data: &[u8]| {
    let mut c = FuzzChoices::new(data);
    match c.below(16) {
        0..=6 => {
            let tape = arbitrary_loop_tape(&mut c, 3_000);
            let derived = tape.static_len() <= 150;
            oracle::check_opt(&mut c, &tape, 3, derived);
        }
        7 | 8 => {
            let tape = oracle::checkpoint_tape(&mut c);
            oracle::check_checkpoints(&mut c, &tape, 3);
        }
        9 | 10 => {
            let tape = oracle::repeated_tape(&mut c, 2_000);
            let derived = tape.len() <= 80;
            oracle::check_opt(&mut c, &tape, 3, derived);
        }
        11 => {
            c.unbounded();
            let config = oracle::long_tape_config(&mut c);
            let tape = random_tape_with(&mut c, &config);
            oracle::check_opt(&mut c, &tape, 2, false);
        }
        _ => {
            let tape = arbitrary_tape(&mut c, 300);
            let derived = tape.len() <= 80;
            oracle::check_opt(&mut c, &tape, 4, derived);
        }
    }
});
