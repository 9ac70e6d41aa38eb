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
//! optimizer). Here: the harness, the check that loops stay machine loops,
//! and an ignored timing (`cargo test --release --test jit_loops --
//! --ignored --nocapture`).

use tapejit::ir::random::{random_value, Choices};
use tapejit::ir::semantics::same;
use tapejit::ir::{Access, Buffer, Inst, Loop, Op, Output, Tape, Write, WriteMode};
use tapejit::jit::{self, JitFunction, JitOptions};
use tapejit::suite::SplitMix64;
use tapejit::{interp, Error};

#[path = "jit_loops/arrays.rs"]
mod arrays;
#[path = "jit_loops/control.rs"]
mod control;
#[path = "jit_loops/nests.rs"]
mod nests;
#[path = "jit_loops/random.rs"]
mod random;

type Point = (Vec<f64>, Vec<f64>);

fn interpret(tape: &Tape, x: &[f64], p: &[f64]) -> Result<Vec<f64>, Error> {
    let mut out = vec![0.0; tape.n_outputs()];
    interp::eval(tape, x, p, &mut Vec::new(), &mut out).map(|()| out)
}

/// Runs `code` with `scratch` as left by earlier calls, the inputs and
/// outputs each in two separate allocations split as compiled (so that
/// reading one buffer for the other cannot go unnoticed).
fn run_split(
    code: &JitFunction,
    (input_split, output_split): (usize, usize),
    x: &[f64],
    p: &[f64],
    scratch: &mut Vec<f64>,
) -> Result<Vec<f64>, Error> {
    let garbage = f64::from_bits(0x7ff0_dead_0000_0001);
    let (head, tail) = (x[..input_split].to_vec(), x[input_split..].to_vec());
    let mut out_head = vec![garbage; output_split];
    let mut out_tail = vec![garbage; code.n_outputs() - output_split];
    let status = code.call_parts(&head, &tail, p, &mut out_head, &mut out_tail, scratch);
    code.result(status, x.len(), p.len(), code.n_outputs())?;
    out_head.extend(out_tail);
    Ok(out_head)
}

/// [`run_split`] with the default splits (everything in the head buffers).
fn run(
    code: &JitFunction,
    x: &[f64],
    p: &[f64],
    scratch: &mut Vec<f64>,
) -> Result<Vec<f64>, Error> {
    run_split(code, (x.len(), code.n_outputs()), x, p, scratch)
}

/// Compiles `tape` with each of `options` and checks the JIT against the
/// interpreter at every point: equal bits (or both NaN) on every output, or
/// the same error. Returns how many points failed a guard.
fn check_with(tape: &Tape, options: &[JitOptions], points: &[Point]) -> usize {
    tape.verify()
        .unwrap_or_else(|e| panic!("test tape does not verify: {e}\n{tape}"));
    let expected: Vec<_> = points.iter().map(|(x, p)| interpret(tape, x, p)).collect();
    for &o in options {
        let code = jit::compile_with(tape, o)
            .unwrap_or_else(|e| panic!("{o:?}: a verified tape must compile: {e}\n{tape}"));
        // Garbage where arrays live: an element that should be -0.0 but was
        // not reset shows at once.
        let mut scratch = vec![f64::from_bits(0x4141_4141_4141_4141); code.scratch_len()];
        let splits = (
            o.input_split.unwrap_or(tape.n_inputs()),
            o.output_split.unwrap_or(tape.n_outputs()),
        );
        for ((x, p), want) in points.iter().zip(&expected) {
            let got = run_split(&code, splits, x, p, &mut scratch);
            match (want, &got) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.len(), b.len());
                    for (k, (a, b)) in a.iter().zip(b).enumerate() {
                        assert!(
                            same(*a, *b),
                            "{o:?}: output {k} is {b:?}, the interpreter says {a:?} \
                             (bits {:#x} vs {:#x}) at x={x:?} p={p:?}\n{tape}",
                            b.to_bits(),
                            a.to_bits()
                        );
                    }
                }
                (Err(a), Err(b)) => assert_eq!(a, b, "{o:?} at x={x:?} p={p:?}\n{tape}"),
                _ => panic!("{o:?}: interpreter {want:?}, JIT {got:?} at x={x:?} p={p:?}\n{tape}"),
            }
        }
    }
    expected.iter().filter(|e| e.is_err()).count()
}

/// The usual option sets: default, one instruction per chunk, tiny chunks
/// with the single-pass allocator, and both buffers split in the middle,
/// at the start and at the end.
fn options_for(tape: &Tape) -> Vec<JitOptions> {
    let (n, m) = (tape.n_inputs(), tape.n_outputs());
    let d = JitOptions::default();
    let split = |i, o| JitOptions {
        input_split: Some(i),
        output_split: Some(o),
        chunk_len: 5,
        ..d
    };
    vec![
        d,
        JitOptions { chunk_len: 1, ..d },
        JitOptions {
            chunk_len: 3,
            single_pass_regalloc: true,
            ..d
        },
        split(n / 2, m / 2),
        split(0, 0),
        split(n, m),
        split(n / 3, m - m / 3),
    ]
}

fn check(tape: &Tape, points: &[Point]) -> usize {
    check_with(tape, &options_for(tape), points)
}

/// `count` points for `tape`: ordinary numbers in [-2, 2), with special
/// values (NaN of either sign, ±inf, ±0, subnormals, raw bits) mixed in at
/// a rate that varies from none to everywhere.
fn points(seed: u64, tape: &Tape, count: usize) -> Vec<Point> {
    let mut rng = SplitMix64::new(seed);
    (0..count)
        .map(|k| {
            let rate = [0, 64, 8, 1][k % 4];
            let mut draw = |n: usize| -> Vec<f64> {
                (0..n)
                    .map(|_| {
                        if rate > 0 && rng.one_in(rate) {
                            random_value(&mut rng)
                        } else {
                            rng.uniform(-2.0, 2.0)
                        }
                    })
                    .collect()
            };
            (draw(tape.n_inputs()), draw(tape.n_params()))
        })
        .collect()
}

fn access(buffer: Buffer, offset: i64, strides: &[i64]) -> Access {
    Access {
        buffer,
        offset,
        strides: strides.to_vec(),
    }
}

fn write(array: u32, offset: i64, strides: &[i64], mode: WriteMode) -> Write {
    Write {
        access: access(Buffer::Array(array), offset, strides),
        mode,
    }
}

fn body_inputs(body: &mut Tape) -> Vec<u32> {
    (0..body.n_inputs() as u32)
        .map(|k| body.push(Inst::input(k)))
        .collect()
}

fn bin(t: &mut Tape, op: Op, a: u32, b: u32) -> u32 {
    t.push(Inst::binary(op, a, b))
}

fn un(t: &mut Tape, op: Op, a: u32) -> u32 {
    t.push(Inst::unary(op, a))
}

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
    let mut body = Tape::new(3, 0);
    let [s, a, b] = body_inputs(&mut body)[..] else {
        unreachable!()
    };
    let p = bin(&mut body, Op::Mul, a, b);
    let next = bin(&mut body, Op::Add, s, p);
    body.push_output(next);
    let mut t = Tape::new(n as usize + 1, 0);
    let zero = t.push(Inst::constant(-0.0));
    let lp = t.push_loop(Loop {
        trips: n,
        body,
        init: vec![zero],
        invariants: vec![],
        reads: vec![
            access(Buffer::Input, 0, &[1]),
            access(Buffer::Input, 1, &[1]),
        ],
        writes: vec![],
    });
    let total = t.push(Inst::loop_out(lp, 0));
    t.push_output(total);
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
        let t2 = nests::shifted_dot_writing(n, mode);
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
