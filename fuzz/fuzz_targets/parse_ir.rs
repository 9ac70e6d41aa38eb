//! The IR text parser never panics, and whatever it accepts is safe to run.
//!
//! Any bytes (invalid UTF-8 replaced) go to `str::parse::<tapejit::Tape>()`.
//! If they parse (parsing verifies), the tape must print and parse back to
//! an equal tape, compile with the JIT, and run at a few points exactly as
//! the interpreter does (loops, arrays and slices included; NaN signs by
//! the rules of `oracle::loop_reference`), with every buffer against guard
//! pages so that native code touching memory outside its buffers faults.
//! Tapes reading more than 2^16 inputs and parameters, with more outputs
//! or array elements, or executing more than 2^20 instructions (`loop
//! trips=4000000000` parses) are compiled but not run; checkpointed tapes
//! (which the JIT does not compile yet) are run by the interpreter only.
//!
//! Start from the seeds (printed random tapes, loop tapes, derived and
//! checkpointed tapes) and the dictionary of the format's tokens: see the
//! Fuzzing section of the README.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapejit_fuzz::{oracle, run_guarded, FuzzChoices};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Evaluation points from a generator seeded by the input.
    let mut points = FuzzChoices::seeded_by(data);
    oracle::check_text(&mut points, &text, run_guarded);
});
