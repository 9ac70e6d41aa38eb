//! Shared by `tests/jit_loops.rs` and `tests/jit_checkpoint.rs`: the harness
//! that checks the JIT against the interpreter (option sets, points with
//! special values, bitwise comparison), builders of loop tapes, and the
//! random loop generator ([`Gen`], one [`Profile`] per test crate).
//!
//! Each test crate uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

mod gen;

pub use gen::{Gen, Profile};

use tapejit::ir::random::{random_value, Choices};
use tapejit::ir::semantics::same;
use tapejit::ir::{Access, ArrayId, Buffer, Inst, Loop, Op, Output, Tape, Write, WriteMode};
use tapejit::jit::{self, JitFunction, JitOptions};
use tapejit::suite::SplitMix64;
use tapejit::{interp, Error};

/// The inputs and the parameters of one call.
pub type Point = (Vec<f64>, Vec<f64>);

pub fn interpret(tape: &Tape, x: &[f64], p: &[f64]) -> Result<Vec<f64>, Error> {
    let mut out = vec![0.0; tape.n_outputs()];
    interp::eval(tape, x, p, &mut Vec::new(), &mut out).map(|()| out)
}

/// Runs `code` with `scratch` as left by earlier calls, the inputs and
/// outputs each in two separate allocations split as compiled (so that
/// reading one buffer for the other cannot go unnoticed).
pub fn run_split(
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
pub fn run(
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
pub fn check_with(tape: &Tape, options: &[JitOptions], points: &[Point]) -> usize {
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
pub fn options_for(tape: &Tape) -> Vec<JitOptions> {
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

/// [`options_for`] with each chunk length drawn from `1..=max_chunk` by a
/// generator seeded with `rng_seed` (for random tapes, which run one set).
pub fn options_with_random_chunks(tape: &Tape, rng_seed: u64, max_chunk: usize) -> Vec<JitOptions> {
    let mut rng = SplitMix64::new(rng_seed);
    let mut options = options_for(tape);
    for o in options.iter_mut() {
        o.chunk_len = 1 + rng.below(max_chunk);
    }
    options
}

/// [`check_with`] under [`options_for`].
pub fn check(tape: &Tape, points: &[Point]) -> usize {
    check_with(tape, &options_for(tape), points)
}

/// `count` points for `tape`: ordinary numbers in [-2, 2), with special
/// values (NaN of either sign, ±inf, ±0, subnormals, raw bits) mixed in at
/// a rate that varies from none to everywhere.
pub fn points(seed: u64, tape: &Tape, count: usize) -> Vec<Point> {
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

// ---------------------------------------------------------------------------
// Builders

pub fn access(buffer: Buffer, offset: i64, strides: &[i64]) -> Access {
    Access {
        buffer,
        offset,
        strides: strides.to_vec(),
    }
}

pub fn write(array: ArrayId, offset: i64, strides: &[i64], mode: WriteMode) -> Write {
    Write {
        access: access(Buffer::Array(array), offset, strides),
        mode,
    }
}

/// Appends the output slice `array[start..start + len]`.
pub fn slice(t: &mut Tape, array: ArrayId, start: u32, len: u32) {
    t.push_output_entry(Output::Slice { array, start, len });
}

/// Pushes an `input k` for each input of `body`, in order.
pub fn body_inputs(body: &mut Tape) -> Vec<u32> {
    (0..body.n_inputs() as u32)
        .map(|k| body.push(Inst::input(k)))
        .collect()
}

pub fn bin(t: &mut Tape, op: Op, a: u32, b: u32) -> u32 {
    t.push(Inst::binary(op, a, b))
}

pub fn un(t: &mut Tape, op: Op, a: u32) -> u32 {
    t.push(Inst::unary(op, a))
}

/// Pushes `lp` and a `loopout` of each of its carried values (appended to
/// `vals`); returns the loop instruction.
pub fn push_loop_with_outs(t: &mut Tape, lp: Loop, vals: &mut Vec<u32>) -> u32 {
    let n = lp.n_carried() as u32;
    let l = t.push_loop(lp);
    for k in 0..n {
        vals.push(t.push(Inst::loop_out(l, k)));
    }
    l
}
