//! The JIT agrees bitwise with the interpreter.
//!
//! The input drives the generators of `tapejit::ir::random`, the compile
//! options (chunk length from 1 to the whole tape, either register
//! allocator, input and output buffers split anywhere) and the evaluation
//! points (NaN, ±inf, ±0, subnormals, raw bit patterns). Its first byte
//! picks the tape:
//!
//! - half of the time a loop tape (`loops::arbitrary_loop_tape`: loops
//!   nested up to 3 deep with carried values, invariants, strided reads of
//!   inputs, parameters and arrays, writes of both modes, `elem`/`store`,
//!   guards in bodies, every scalar op; up to 10^4 instructions of work);
//! - one time in sixteen a long straight-line tape (400 to 10^4
//!   instructions; once the input is used up, the rest of the tape comes
//!   from a generator seeded by its hash);
//! - otherwise an arbitrary straight-line tape (`arbitrary_tape`: every op,
//!   guards on compares and on any value, special constants, 1 to 400
//!   instructions).
//!
//! Every output must have the same bits (or both be NaN, see the README)
//! and a failing guard must give the same error, on the tape and, for
//! small tapes, on its gradient, VJP, JVP, HVP (and Jacobian, straight-line
//! tapes) tapes, optimized or not. All buffers touch guard pages, so native
//! code reading or writing outside them faults; scratch memory starts full
//! of garbage, so an array element read before it is reset shows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapejit::ir::random::loops::arbitrary_loop_tape;
use tapejit::ir::random::{arbitrary_tape, random_tape_with, Choices};
use tapejit_fuzz::{oracle, run_guarded, FuzzChoices};

fuzz_target!(|data: &[u8]| {
    let mut c = FuzzChoices::new(data);
    match c.below(16) {
        0..=7 => {
            let tape = arbitrary_loop_tape(&mut c, 10_000);
            let derived = tape.static_len() <= 150;
            oracle::check_jit(&mut c, &tape, 3, derived, run_guarded);
        }
        8 => {
            c.unbounded();
            let config = oracle::long_tape_config(&mut c);
            let tape = random_tape_with(&mut c, &config);
            oracle::check_jit(&mut c, &tape, 2, false, run_guarded);
        }
        _ => {
            let tape = arbitrary_tape(&mut c, 400);
            let derived = tape.len() <= 64;
            oracle::check_jit(&mut c, &tape, 3, derived, run_guarded);
        }
    }
});
