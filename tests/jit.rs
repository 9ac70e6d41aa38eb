//! The JIT against the interpreter: bitwise on every output, derivatives
//! and guard outcomes included, for every op, random tapes, derived tapes and
//! the suite.

use proptest::prelude::*;
use tapejit::ir::random::{random_points, random_tape, RandomTapeConfig};
use tapejit::ir::{semantics::same, Inst, Op, Shape, Tape, ALL_OPS};
use tapejit::jit::{self, JitOptions};
use tapejit::{ad, interp, Engine, Error, Float, Function};

fn interp_run(tape: &Tape, x: &[f64], p: &[f64]) -> Result<Vec<f64>, Error> {
    let mut out = vec![0.0; tape.n_outputs()];
    interp::eval(tape, x, p, &mut Vec::new(), &mut out).map(|()| out)
}

/// Compiles `tape` with `options` and checks it against the interpreter at
/// each point: equal bits (or both NaN) on every output, or the same error.
fn assert_agree(tape: &Tape, options: JitOptions, points: &[(Vec<f64>, Vec<f64>)]) {
    let code = jit::compile_with(tape, options).expect("verified tapes compile");
    let mut scratch = Vec::new();
    for (x, p) in points {
        let expected = interp_run(tape, x, p);
        let mut out = vec![0.0; tape.n_outputs()];
        let got = code.run(x, p, &mut out, &mut scratch).map(|()| out);
        match (&expected, &got) {
            (Ok(a), Ok(b)) => {
                for (k, (a, b)) in a.iter().zip(b).enumerate() {
                    assert!(
                        same(*a, *b),
                        "output {k}: interpreter {a:?}, JIT {b:?} at x={x:?} p={p:?}\n{tape}"
                    );
                }
            }
            (Err(a), Err(b)) => assert_eq!(a, b, "at x={x:?}\n{tape}"),
            _ => panic!("interpreter {expected:?} but JIT {got:?} at x={x:?}\n{tape}"),
        }
    }
}

const GRID: [f64; 20] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    -0.5,
    1.5,
    2.5,
    -2.5,
    0.49999999999999994,
    3.7,
    -3.7,
    1e-310,
    -1e-310,
    1e300,
    -1e300,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    -f64::NAN,
];

#[test]
fn every_op_agrees_on_special_values() {
    for op in ALL_OPS {
        let insts: Vec<(Inst, usize)> = match op.shape() {
            Shape::Leaf | Shape::Const | Shape::Loop | Shape::ArrayElem | Shape::ArrayStore => {
                continue
            }
            Shape::ValueImm if op == Op::Guard => continue,
            Shape::ValueImm => [0, 1, 2, 3, -1, -2, 7, 64, -63, i32::MAX, i32::MIN]
                .iter()
                .map(|&n| (Inst::powi(0, n), 1))
                .collect(),
            Shape::Values(n) => vec![(
                Inst {
                    op,
                    args: [0, 1, 2],
                }
                .with_arity(n),
                n,
            )],
        };
        for (inst, arity) in insts {
            let mut tape = Tape::new(arity, 0);
            for i in 0..arity {
                tape.push(Inst::input(i as u32));
            }
            let v = tape.push(inst);
            tape.push_output(v);
            let mut points = Vec::new();
            for &a in &GRID {
                for &b in if arity > 1 { &GRID[..] } else { &GRID[..1] } {
                    for &c in if arity > 2 { &GRID[..] } else { &GRID[..1] } {
                        points.push(([a, b, c][..arity].to_vec(), vec![]));
                    }
                }
            }
            assert_agree(&tape, JitOptions::default(), &points);
        }
    }
}

/// Test-only helper: zero the unused slots of a hand-made instruction.
trait WithArity {
    fn with_arity(self, n: usize) -> Inst;
}

impl WithArity for Inst {
    fn with_arity(mut self, n: usize) -> Inst {
        for slot in self.args.iter_mut().skip(n) {
            *slot = 0;
        }
        self
    }
}

#[test]
fn guards_fail_alike_in_both_backends() {
    let tape: Tape = "tape inputs=1 params=0
%0 = input 0
%1 = const 1.0
%2 = lt %0 %1
%3 = guard %2 true
%4 = same %0 %0
%5 = guard %4 true
%6 = sin %0
outputs %6
"
    .parse()
    .unwrap();
    let points: Vec<_> = [0.5, 2.0, f64::NAN, -1.0]
        .iter()
        .map(|&x| (vec![x], vec![]))
        .collect();
    assert_agree(&tape, JitOptions::default(), &points);
    let code = jit::compile(&tape).unwrap();
    let err = code
        .run(&[2.0], &[], &mut [0.0], &mut Vec::new())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::GuardFailed {
                guard: 0,
                instr: 3,
                ..
            }
        ),
        "{err}"
    );
}

proptest! {
    // A fixed seed: CI runs the same cases every time (PROPTEST_RNG_SEED
    // cannot override it; change the seed here to explore).
    #![proptest_config(ProptestConfig {
        cases: 96,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x7a9e_0001),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_tapes_agree(seed in any::<u64>(), len in 1usize..200, chunk_len in 1usize..64, single_pass in any::<bool>()) {
        let config = RandomTapeConfig { len, n_outputs: 3, ..RandomTapeConfig::default() };
        let tape = random_tape(seed, &config);
        let options = JitOptions { chunk_len, single_pass_regalloc: single_pass, ..JitOptions::default() };
        assert_agree(&tape, options, &random_points(seed ^ 1, &tape, 8));
    }

    #[test]
    fn derived_tapes_agree(seed in any::<u64>(), len in 1usize..80) {
        let config = RandomTapeConfig { len, guard_every: 0, ..RandomTapeConfig::default() };
        let tape = random_tape(seed, &config);
        let n = tape.n_inputs();
        let gradient = ad::reverse(&tape, 0..n, ad::Seed::Inputs).unwrap();
        let tangent = ad::forward(&tape, 0..n).unwrap();
        let jacobian = ad::jacobian_forward(&tape, 0..n).unwrap();
        let second = ad::forward(&ad::reverse(&tape, 0..n, ad::Seed::One).unwrap(), 0..n).unwrap();
        for derived in [gradient, tangent, jacobian, second] {
            let points = random_points(seed ^ 2, &derived, 4);
            assert_agree(&derived, JitOptions { chunk_len: 17, ..JitOptions::default() }, &points);
        }
    }
}

#[test]
fn suite_cases_agree_on_values_and_derivatives() {
    for case in tapejit::suite::Case::quick() {
        let f = case.function().unwrap();
        let x = case.default_input();
        let p = case.params();
        let w = case.vjp_weights();
        let b = f.with_params(&p).unwrap();
        let (n, m) = (case.n_inputs(), case.n_outputs());
        let (mut yi, mut yj) = (vec![0.0; m], vec![0.0; m]);
        let (mut gi, mut gj) = (vec![0.0; n], vec![0.0; n]);
        b.engine(Engine::Interpreter).eval(&x, &mut yi).unwrap();
        b.engine(Engine::Jit).eval(&x, &mut yj).unwrap();
        b.engine(Engine::Interpreter).vjp(&x, &w, &mut gi).unwrap();
        b.engine(Engine::Jit).vjp(&x, &w, &mut gj).unwrap();
        let bits = |v: &[f64]| v.iter().map(|a| a.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&yi), bits(&yj), "{case} values");
        assert_eq!(bits(&gi), bits(&gj), "{case} VJP");
        if m == 1 {
            let y = b.engine(Engine::Jit).gradient(&x, &mut gj).unwrap();
            assert_eq!(y.to_bits(), yi[0].to_bits(), "{case}");
            assert_eq!(bits(&gi), bits(&gj), "{case} gradient");
        }
    }
}

#[test]
fn every_method_agrees_between_engines() {
    fn f<T: tapejit::Real>(x: &[T]) -> Vec<T> {
        vec![
            x[0] * x[1].sin() + x[2].exp(),
            (x[0] - x[2]).powi(3) / (x[1] * x[1] + 1.0),
        ]
    }
    let x = [0.3, -1.2, 0.7];
    let mut func = Function::vector(&x, |x| f(x)).unwrap();
    let run = |func: &Function| {
        let mut jac = vec![0.0; 6];
        func.jacobian(&x, &mut jac).unwrap();
        let mut jv = vec![0.0; 2];
        func.jvp(&x, &[1.0, 2.0, -1.0], &mut jv).unwrap();
        let mut wj = vec![0.0; 3];
        func.vjp(&x, &[0.5, -2.0], &mut wj).unwrap();
        [jac, jv, wj].concat()
    };
    func.set_engine(Engine::Interpreter);
    let a = run(&func);
    func.set_engine(Engine::Jit);
    let b = run(&func);
    assert_eq!(a, b);

    let mut s = Function::scalar(&x, |x| x[0] * x[1].cos() * x[2].tanh()).unwrap();
    let run = |s: &Function| {
        let mut h = vec![0.0; 9];
        s.hessian(&x, &mut h).unwrap();
        let mut g = vec![0.0; 3];
        let y = s.gradient(&x, &mut g).unwrap();
        [h, g, vec![y]].concat()
    };
    s.set_engine(Engine::Interpreter);
    let a = run(&s);
    s.set_engine(Engine::Jit);
    assert_eq!(a, run(&s));
}

#[test]
fn wrong_lengths_are_errors_and_bad_tapes_are_refused() {
    let tape: Tape =
        "tape inputs=2 params=1\n%0 = input 0\n%1 = param 0\n%2 = mul %0 %1\noutputs %2 %0\n"
            .parse()
            .unwrap();
    let code = jit::compile(&tape).unwrap();
    let mut s = Vec::new();
    let mut out = [0.0; 2];
    for (x, p, o) in [(1usize, 1usize, 2usize), (2, 0, 2), (2, 1, 1), (3, 1, 2)] {
        let err = code
            .run(&vec![1.0; x], &vec![1.0; p], &mut out[..o.min(2)], &mut s)
            .unwrap_err();
        assert!(matches!(err, Error::WrongLength { .. }), "{err}");
    }
    code.run(&[2.0, 5.0], &[3.0], &mut out, &mut s).unwrap();
    assert_eq!(out, [6.0, 2.0]);

    let mut bad = Tape::new(1, 0);
    bad.push(Inst::unary(Op::Sin, 5));
    assert!(matches!(jit::compile(&bad), Err(Error::InvalidTape { .. })));
}

#[test]
fn compiled_functions_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<jit::JitFunction>();
    assert_send_sync::<Function>();
}
