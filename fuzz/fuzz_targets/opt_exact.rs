//! The optimizer is exact.
//!
//! On an arbitrary tape (`tapejit::ir::random::arbitrary_tape`, up to 300
//! instructions; half of the time with every value exposed as an output so
//! that no wrong rewrite hides in dead code), `tapejit::opt::optimize` and
//! each pass of the pipeline alone keep every output bitwise equal (or
//! both NaN) at arbitrary points, and fail a guard exactly where the
//! original does; the same for the optimized gradient, VJP, JVP, Jacobian
//! and HVP tapes of tapes of up to 80 instructions.
//!
//! IEEE 754 leaves the sign of a NaN produced by arithmetic unspecified
//! (x86 returns the first NaN operand, so `a * b` and `b * a` may differ),
//! so outputs that depend on such a sign through `copysign` or `signbit`
//! are not compared (see `oracle::check_equivalent`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapejit::ir::random::arbitrary_tape;
use tapejit_fuzz::{oracle, FuzzChoices};

fuzz_target!(|data: &[u8]| {
    let mut c = FuzzChoices::new(data);
    let tape = arbitrary_tape(&mut c, 300);
    let derived = tape.len() <= 80;
    oracle::check_opt(&mut c, &tape, 4, derived);
});
