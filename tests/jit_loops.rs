//! The JIT against the interpreter on structured loops and arrays: bitwise
//! on every output (NaN payloads aside), the same error on a failing guard,
//! under tiny and default chunks, both register allocators, and inputs and
//! outputs split anywhere (inside strided ranges and slices too). The
//! scratch buffer is reused dirty across calls, so that an array element
//! left unreset shows; inputs and outputs live in separate allocations per
//! side of the split, so that reading the wrong buffer shows too.
//!
//! `jit_loops/`: `nests` (reductions, recurrences, nests two and three
//! deep), `arrays` (writes of both modes, `elem`/`store`, slices), `control`
//! (guards in bodies, one-trip loops, bodies beyond a chunk, input splits
//! inside strided ranges), `random` (random loop tapes, before and after the
//! optimizer). The harness, the builders and the random generator are in
//! `loops_common/`, shared with `tests/jit_checkpoint.rs`. Here: the check
//! that loops stay machine loops, and an ignored timing (`cargo test
//! --release --test jit_loops -- --ignored --nocapture`).

use tapejit::ir::{Buffer, Inst, Loop, Op, Tape, WriteMode};
use tapejit::jit::{self, JitOptions};
use tapejit::{interp, Error};

mod loops_common;
use loops_common::*;

#[path = "jit_loops/arrays.rs"]
mod arrays;
#[path = "jit_loops/control.rs"]
mod control;
#[path = "jit_loops/nests.rs"]
mod nests;
#[path = "jit_loops/random.rs"]
mod random;

/// A loop is a machine loop: its code does not grow with the trip count
/// (only the immediate of the trip count may take a longer encoding).
#[test]
fn loops_are_machine_loops_not_unrolled() {
    let sizes: Vec<usize> = [10, 1000, 100_000]
        .iter()
        .map(|&n| jit::compile(&nests::shifted_dot(n)).unwrap().code_bytes())
        .collect();
    assert!(sizes.iter().all(|&s| s < 200), "{sizes:?}");
    assert!(sizes[2] - sizes[0] <= 8, "{sizes:?}");
}

/// A sanity figure, not a benchmark: `cargo test --release --test jit_loops
/// -- --ignored --nocapture` prints the time of a 10^6-trip
/// `Σ x[i] * x[i+1]` in native Rust, the JIT and the interpreter.
#[test]
#[ignore]
fn timing_of_a_million_trip_reduction() {
    use std::hint::black_box;
    use std::time::Instant;
    let n = 1_000_000u32;
    // Without the running-sum array: the reduction alone.
    let t = nests::shifted_dot_with(n, None);
    let x: Vec<f64> = (0..=n).map(|i| (i as f64 * 1e-3).sin()).collect();
    let best = |f: &mut dyn FnMut() -> f64| {
        let mut best = f64::INFINITY;
        let mut r = 0.0;
        for _ in 0..20 {
            let t0 = Instant::now();
            r = f();
            best = best.min(t0.elapsed().as_secs_f64());
        }
        (best, r)
    };
    let (native, rn) = best(&mut || {
        let x = black_box(&x);
        let mut s = -0.0;
        for i in 0..n as usize {
            s += x[i] * x[i + 1];
        }
        black_box(s)
    });
    let code = jit::compile(&t).unwrap();
    let mut scratch = Vec::new();
    let mut out = [0.0];
    let (jit_s, rj) = best(&mut || {
        code.run(black_box(&x), &[], &mut out, &mut scratch)
            .unwrap();
        out[0]
    });
    let mut values = Vec::new();
    let (interp_s, ri) = best(&mut || {
        interp::eval(&t, black_box(&x), &[], &mut values, &mut out).unwrap();
        out[0]
    });
    assert_eq!(rn.to_bits(), rj.to_bits());
    assert_eq!(rn.to_bits(), ri.to_bits());
    // With the running sums written to an array and returned as a slice:
    // stored (nothing to reset), or added (every element reset first).
    let mut lines = Vec::new();
    for mode in [WriteMode::Store, WriteMode::Add] {
        let t2 = nests::shifted_dot_with(n, Some(mode));
        let code2 = jit::compile(&t2).unwrap();
        let mut out2 = vec![0.0; n as usize + 1];
        let (jit2, _) = best(&mut || {
            code2
                .run(black_box(&x), &[], &mut out2, &mut scratch)
                .unwrap();
            out2[0]
        });
        let (interp2, _) = best(&mut || {
            interp::eval(&t2, black_box(&x), &[], &mut values, &mut out2).unwrap();
            out2[0]
        });
        lines.push(format!(
            "  running sums written ({mode:?}) and returned: JIT {:.3} ms, interpreter {:.3} ms \
             (elements reset per call: {})",
            jit2 * 1e3,
            interp2 * 1e3,
            code2.reset_len()
        ));
    }
    let mut fill = vec![0.0; n as usize];
    let (reset, _) = best(&mut || {
        black_box(&mut fill).fill(-0.0);
        fill[0]
    });
    println!(
        "10^6-trip sum x[i]*x[i+1] (best of 20): native {:.3} ms, JIT {:.3} ms, interpreter {:.3} ms",
        native * 1e3,
        jit_s * 1e3,
        interp_s * 1e3
    );
    for l in lines {
        println!("{l}");
    }
    println!("  resetting 10^6 elements alone: {:.3} ms", reset * 1e3);
}
