//! The JIT agrees bitwise with the interpreter.
//!
//! The input drives `tapejit::ir::random::arbitrary_tape` (every op, guards
//! on compares and on any value, special constants, 1 to 400 instructions),
//! the compile options (chunk length from 1 to the whole tape, either
//! register allocator, input and output buffers split anywhere) and the
//! evaluation points (NaN, ±inf, ±0, subnormals, raw bit patterns). Every
//! output must have the same bits (or both be NaN) and a failing guard
//! must give the same error, on the tape and, for tapes of up to 64
//! instructions, on its gradient, VJP, JVP, Jacobian and HVP tapes. All
//! buffers touch guard pages, so native code reading or writing outside
//! them faults.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapejit::ir::random::arbitrary_tape;
use tapejit_fuzz::{oracle, run_guarded, FuzzChoices};

fuzz_target!(|data: &[u8]| {
    let mut c = FuzzChoices::new(data);
    let tape = arbitrary_tape(&mut c, 400);
    let derived = tape.len() <= 64;
    oracle::check_jit(&mut c, &tape, 3, derived, run_guarded);
});
