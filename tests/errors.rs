//! Bad input never panics: wrong lengths, unsupported requests, invalid
//! tapes and IR text, misuse while tracing. Each is an `Error` whose message
//! says what was wrong.

mod common;

use tapejit::ir::{Inst, Op};
use tapejit::{grad, interp, trace_scalar, trace_vector, Error, Float, Function, Tape, Var};

#[track_caller]
fn assert_wrong_length<T: std::fmt::Debug>(
    r: tapejit::Result<T>,
    what: &str,
    expected: usize,
    got: usize,
) {
    match r {
        Err(e @ Error::WrongLength { .. }) => {
            let Error::WrongLength {
                what: w,
                expected: e_,
                got: g,
            } = e.clone()
            else {
                unreachable!()
            };
            assert_eq!((w, e_, g), (what, expected, got), "{e}");
            let msg = e.to_string();
            assert!(msg.contains(what), "{msg:?} should name {what:?}");
            assert!(
                msg.contains(&format!("length {got}"))
                    && msg.contains(&format!("needs {expected}")),
                "{msg:?}"
            );
        }
        other => panic!("expected WrongLength for {what}, got {other:?}"),
    }
}

#[test]
fn wrong_lengths_on_a_scalar_function() {
    // 3 inputs, 1 output.
    let f = Function::scalar(&[1.0, 2.0, 3.0], |x| x[0] * x[1] + x[2].sin()).unwrap();
    let x = [1.0, 2.0, 3.0];
    let (short, long) = ([1.0, 2.0], [1.0, 2.0, 3.0, 4.0]);
    let mut one = [0.0];
    let mut two = [0.0; 2];
    let mut three = [0.0; 3];
    let mut nine = [0.0; 9];
    let mut eight = [0.0; 8];

    assert_wrong_length(f.eval(&short, &mut one), "x", 3, 2);
    assert_wrong_length(f.eval(&x, &mut two), "outputs", 1, 2);
    assert_wrong_length(f.value(&long), "x", 3, 4);
    assert_wrong_length(f.gradient(&short, &mut three), "x", 3, 2);
    assert_wrong_length(f.gradient(&x, &mut two), "gradient", 3, 2);
    assert_wrong_length(f.jvp(&short, &x, &mut one), "x", 3, 2);
    assert_wrong_length(f.jvp(&x, &short, &mut one), "v", 3, 2);
    assert_wrong_length(f.jvp(&x, &x, &mut two), "jvp output", 1, 2);
    assert_wrong_length(f.vjp(&long, &[1.0], &mut three), "x", 3, 4);
    assert_wrong_length(f.vjp(&x, &[1.0, 1.0], &mut three), "w", 1, 2);
    assert_wrong_length(f.vjp(&x, &[1.0], &mut two), "vjp output", 3, 2);
    assert_wrong_length(f.jacobian(&short, &mut three), "x", 3, 2);
    assert_wrong_length(f.jacobian(&x, &mut two), "jacobian", 3, 2);
    assert_wrong_length(f.hvp(&short, &x, &mut three), "x", 3, 2);
    assert_wrong_length(f.hvp(&x, &long, &mut three), "v", 3, 4);
    assert_wrong_length(f.hvp(&x, &x, &mut two), "hvp output", 3, 2);
    assert_wrong_length(f.hessian(&long, &mut nine), "x", 3, 4);
    assert_wrong_length(f.hessian(&x, &mut eight), "hessian", 9, 8);
    assert_wrong_length(f.with_params(&[1.0]).map(|_| ()), "params", 0, 1);

    // Empty buffers too.
    assert_wrong_length(f.eval(&[], &mut one), "x", 3, 0);
    assert_wrong_length(f.gradient(&x, &mut []), "gradient", 3, 0);
    // And all is well with the right lengths after the errors.
    assert_eq!(f.gradient(&x, &mut three).unwrap(), 2.0 + 3f64.sin());
}

#[test]
fn wrong_lengths_with_params_and_in_closures_and_interpreter() {
    let f = Function::scalar_with_params(&[1.0], &[2.0, 3.0], |x, p| x[0] * p[0] - p[1]).unwrap();
    assert_wrong_length(f.with_params(&[2.0]).map(|_| ()), "params", 2, 1);
    let fp = f.with_params(&[2.0, 3.0]).unwrap();
    assert_wrong_length(fp.gradient(&[1.0, 2.0], &mut [0.0]), "x", 1, 2);
    assert_wrong_length(fp.hessian(&[1.0], &mut [0.0; 2]), "hessian", 1, 2);

    let mut df = grad(|x| x[0] * x[1]);
    let mut g = [0.0; 2];
    df.call(&[1.0, 2.0], &mut g).unwrap();
    assert_wrong_length(df.call(&[1.0, 2.0], &mut [0.0; 3]), "gradient", 2, 3);
    assert_wrong_length(df.call(&[1.0, 2.0, 3.0], &mut g), "x", 2, 3);
    assert_eq!(df.traces(), 1);

    let tape = f.tape();
    let mut ws = Vec::new();
    assert_wrong_length(
        interp::eval(tape, &[], &[2.0, 3.0], &mut ws, &mut [0.0]),
        "inputs",
        1,
        0,
    );
    assert_wrong_length(
        interp::eval(tape, &[1.0], &[2.0], &mut ws, &mut [0.0]),
        "params",
        2,
        1,
    );
    assert_wrong_length(
        interp::eval(tape, &[1.0], &[2.0, 3.0], &mut ws, &mut []),
        "outputs",
        1,
        0,
    );
}

#[test]
fn scalar_only_requests_on_a_vector_function_are_unsupported() {
    let f = Function::vector(&[1.0, 2.0], |x| vec![x[0] * x[1], x[0] + x[1], x[1].exp()]).unwrap();
    let x = [1.0, 2.0];
    let mut g = [0.0; 2];
    let mut h = [0.0; 4];
    let errors = [
        f.gradient(&x, &mut g).unwrap_err(),
        f.value(&x).unwrap_err(),
        f.hvp(&x, &x, &mut g).unwrap_err(),
        f.hessian(&x, &mut h).unwrap_err(),
        f.gradient_tape().unwrap_err(),
        f.hvp_tape().unwrap_err(),
    ];
    for e in errors {
        assert!(matches!(e, Error::Unsupported(_)), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("scalar") && msg.contains("3 outputs"), "{msg}");
    }
    let msg = f.gradient(&x, &mut g).unwrap_err().to_string();
    assert!(
        msg.contains("vjp") && msg.contains("jacobian"),
        "should point to the alternatives: {msg}"
    );
    // What vector functions do support works.
    let mut jac = [0.0; 6];
    f.jacobian(&x, &mut jac).unwrap();
    assert_eq!(jac, [2.0, 1.0, 1.0, 1.0, 0.0, 2f64.exp()]);
}

#[test]
fn invalid_tapes_are_rejected_by_from_tape() {
    fn build(n_inputs: usize, insts: &[Inst], outputs: &[u32]) -> Tape {
        let mut t = Tape::new(n_inputs, 0);
        for &i in insts {
            t.push(i);
        }
        for &o in outputs {
            t.push_output(o);
        }
        t
    }
    let cases: Vec<(Tape, u32, &str)> = vec![
        (
            build(1, &[Inst::input(0), Inst::binary(Op::Add, 0, 1)], &[1]),
            1,
            "not defined before",
        ),
        (
            build(1, &[Inst::input(0), Inst::unary(Op::Sin, 5)], &[1]),
            1,
            "%5",
        ),
        (build(1, &[Inst::input(3)], &[0]), 0, "input 3 out of range"),
        (build(1, &[Inst::param(0)], &[0]), 0, "param 0 out of range"),
        (
            build(
                1,
                &[
                    Inst::input(0),
                    Inst::guard(0, true),
                    Inst::unary(Op::Exp, 1),
                ],
                &[2],
            ),
            2,
            "guard",
        ),
        (build(1, &[Inst::input(0)], &[7]), 1, "output 0 names %7"),
        (
            build(1, &[Inst::input(0), Inst::guard(0, false)], &[1]),
            2,
            "names guard",
        ),
        (
            build(
                1,
                &[
                    Inst::input(0),
                    Inst {
                        op: Op::Guard,
                        args: [0, 9, 0],
                    },
                ],
                &[0],
            ),
            1,
            "expectation",
        ),
        (
            build(
                1,
                &[
                    Inst::input(0),
                    Inst {
                        op: Op::Neg,
                        args: [0, 0, 4],
                    },
                ],
                &[1],
            ),
            1,
            "must be 0",
        ),
    ];
    for (tape, instr, needle) in cases {
        let err = Function::from_tape(tape.clone()).unwrap_err();
        match &err {
            Error::InvalidTape { instr: at, message } => {
                assert_eq!(*at, instr, "{err}");
                assert!(
                    message.contains(needle),
                    "{message:?} should mention {needle:?}"
                );
            }
            other => panic!("expected InvalidTape, got {other:?}"),
        }
        assert!(
            err.to_string().contains(&format!("instruction %{instr}")),
            "{err}"
        );
        assert_eq!(tape.verify().unwrap_err(), err);
    }
    // A valid tape without outputs verifies, but is not a function.
    let err = Function::from_tape(build(1, &[Inst::input(0)], &[])).unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported(m) if m.contains("at least one output")),
        "{err:?}"
    );
}

#[track_caller]
fn parse_error(text: &str) -> (usize, usize, String) {
    match text.parse::<Tape>() {
        Err(e @ Error::Parse { .. }) => {
            let Error::Parse {
                line,
                column,
                message,
            } = e.clone()
            else {
                unreachable!()
            };
            let shown = e.to_string();
            assert!(
                shown.contains(&format!("line {line}, column {column}"))
                    && shown.contains(&message),
                "{shown}"
            );
            (line, column, message)
        }
        other => panic!("expected a parse error for {text:?}, got {other:?}"),
    }
}

#[test]
fn invalid_text_reports_line_and_column() {
    let ok = "tape inputs=1 params=0\n%0 = input 0\n%1 = sin %0\noutputs %1\n";
    assert!(ok.parse::<Tape>().is_ok());
    let cases: Vec<(&str, (usize, usize), &str)> = vec![
        ("", (1, 1), "empty"),
        ("   \n; only a comment\n", (1, 1), "empty"),
        ("tapes inputs=1 params=0\n", (1, 1), "tape inputs=N"),
        (
            "tape inputs=1\n%0 = input 0\noutputs %0\n",
            (1, 14),
            "params=N",
        ),
        ("tape inputs=one params=0\n", (1, 6), "inputs=N"),
        (
            "tape inputs=1 params=0 extra\n",
            (1, 24),
            "unexpected `extra`",
        ),
        (
            "tape inputs=1 params=0\n%0 = input 0\n%1 = frob %0\noutputs %1\n",
            (3, 6),
            "unknown op `frob`",
        ),
        (
            "tape inputs=1 params=0\n%0 = input 0\n%1 = add %0\noutputs %1\n",
            (3, 12),
            "expected a value",
        ),
        (
            "tape inputs=1 params=0\n%0 = input 0\n%1 = add %0 0\noutputs %1\n",
            (3, 13),
            "found `0`",
        ),
        (
            "tape inputs=1 params=0\n%0 = input 0\n%2 = sin %0\noutputs %2\n",
            (3, 1),
            "expected %1",
        ),
        (
            "tape inputs=1 params=0\n%0 input 0\noutputs %0\n",
            (2, 4),
            "expected `=`",
        ),
        (
            "tape inputs=1 params=0\n%0 = input 0\n%1 = sin %0 %0\noutputs %1\n",
            (3, 13),
            "unexpected",
        ),
        (
            "tape inputs=1 params=0\n%0 = const 1.5e\noutputs %0\n",
            (2, 12),
            "float",
        ),
        (
            "tape inputs=1 params=0\n%0 = input 0\n%1 = powi %0 2.5\noutputs %1\n",
            (3, 14),
            "i32",
        ),
        (
            "tape inputs=1 params=0\n%0 = input 0\n%1 = guard %0 yes\noutputs %0\n",
            (3, 15),
            "true or false",
        ),
        ("tape inputs=1 params=0\n%0 = input 0\n", (2, 1), "outputs"),
        (
            "tape inputs=1 params=0\n%0 = input 0\noutputs %0\n%1 = sin %0\n",
            (4, 1),
            "nothing may follow",
        ),
        (
            "tape inputs=1 params=0\n%0 = input 0\noutputs %x\n",
            (3, 9),
            "expected a value",
        ),
        // Verification errors point at the offending line.
        (
            "tape inputs=1 params=0\n%0 = input 0\n%1 = sin %4\noutputs %1\n",
            (3, 1),
            "not defined before",
        ),
        (
            "tape inputs=1 params=0\n\n%0 = input 2\noutputs %0\n",
            (3, 1),
            "input 2 out of range",
        ),
        (
            "tape inputs=1 params=0\n%0 = input 0\n%1 = guard %0 true\noutputs %1\n",
            (4, 1),
            "names guard",
        ),
    ];
    for (text, at, needle) in cases {
        let (line, column, message) = parse_error(text);
        assert_eq!((line, column), at, "{text:?}: {message}");
        assert!(
            message.contains(needle),
            "{text:?}: {message:?} should mention {needle:?}"
        );
    }
}

#[test]
fn text_parsing_never_panics_on_garbage() {
    let base = "tape inputs=2 params=1\n%0 = input 0\n%1 = input 1\n%2 = param 0\n%3 = mul %0 %2\n%4 = powi %3 -3\n%5 = lt %4 %1\n%6 = guard %5 true\n%7 = const -0.0\noutputs %4 %7\n";
    assert!(base.parse::<Tape>().is_ok());
    // Every truncation and every single-byte corruption: an error or a valid tape, never a panic.
    for cut in 0..base.len() {
        let _ = base[..cut].parse::<Tape>();
    }
    let bytes = base.as_bytes();
    for i in 0..bytes.len() {
        for replacement in [b' ', b'%', b'9', b'x', b'\n', b'-', b'='] {
            let mut b = bytes.to_vec();
            b[i] = replacement;
            if let Ok(text) = String::from_utf8(b) {
                if let Ok(tape) = text.parse::<Tape>() {
                    // Whatever parses also verifies and evaluates without panicking.
                    tape.verify().unwrap();
                    if let Ok(f) = Function::from_tape(tape) {
                        let x = vec![0.5; f.n_inputs()];
                        let p = vec![2.0; f.n_params()];
                        let mut out = vec![0.0; f.n_outputs()];
                        let _ = f.with_params(&p).and_then(|fp| fp.eval(&x, &mut out));
                    }
                }
            }
        }
    }
    // Huge numbers are errors, not overflows.
    for text in [
        "tape inputs=1 params=0\n%0 = input 99999999999\noutputs %0\n",
        "tape inputs=1 params=0\n%0 = input 0\n%1 = powi %0 9999999999\noutputs %1\n",
        "tape inputs=1 params=0\n%0 = input 0\noutputs %99999999999\n",
        "tape inputs=99999999999999999999999 params=0\n",
    ] {
        assert!(text.parse::<Tape>().is_err(), "{text}");
    }
}

#[test]
fn tracing_zero_outputs_is_an_error() {
    let err = trace_vector(&[1.0], &[], |_, _| Vec::new()).unwrap_err();
    assert!(
        matches!(&err, Error::Trace(m) if m.contains("no outputs")),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("while tracing"), "{err}");
    let err = Function::vector(&[1.0], |_| Vec::new()).unwrap_err();
    assert!(matches!(err, Error::Trace(_)), "{err:?}");
}

#[test]
fn clamp_with_min_above_max_is_a_trace_error() {
    let err = trace_scalar(&[0.5], &[], |x, _| {
        x[0].clamp(Var::from(2.0), Var::from(1.0))
    })
    .unwrap_err();
    match &err {
        Error::Trace(m) => assert!(
            m.contains("clamp") && m.contains("min 2") && m.contains("max 1"),
            "{m}"
        ),
        other => panic!("expected Error::Trace, got {other:?}"),
    }
    let err = trace_scalar(&[0.5], &[], |x, _| {
        x[0].clamp(Var::from(f64::NAN), Var::from(1.0))
    })
    .unwrap_err();
    assert!(
        matches!(&err, Error::Trace(m) if m.contains("NaN")),
        "{err:?}"
    );
    // With traced bounds the check uses their trace-time values.
    let err = Function::scalar(&[0.5, 3.0, -3.0], |x| x[0].clamp(x[1], x[2])).unwrap_err();
    assert!(matches!(err, Error::Trace(_)), "{err:?}");
    // The first error is reported; the tracer stays usable afterwards.
    let f = Function::scalar(&[0.5], |x| x[0].clamp(Var::from(-1.0), Var::from(1.0))).unwrap();
    assert_eq!(f.value(&[3.0]).unwrap(), 1.0);
}

#[test]
fn mixing_values_of_an_outer_trace_into_a_nested_one_is_an_error() {
    // An outer trace's value used inside a nested trace.
    let mut inner = None;
    let outer = trace_scalar(&[1.0], &[], |x, _| {
        inner = Some(trace_scalar(&[2.0], &[], |y, _| {
            let _ = x[0] * x[0];
            y[0]
        }));
        x[0] * 2.0
    });
    let err = inner.unwrap().unwrap_err();
    assert!(
        matches!(&err, Error::Trace(m) if m.contains("another trace")),
        "{err:?}"
    );
    // The outer trace is unaffected.
    assert_eq!(common::run(&outer.unwrap(), &[4.0], &[]).unwrap(), [8.0]);

    // A value computed inside the nested trace from outer values, leaked back
    // out and used in the outer trace: the outer trace reports it.
    let outer = trace_scalar(&[1.0], &[], |x, _| {
        let mut leaked = None;
        let _ = trace_scalar(&[2.0], &[], |y, _| {
            leaked = Some(x[0].sin());
            y[0]
        });
        leaked.unwrap() + x[0]
    });
    let err = outer.unwrap_err();
    assert!(
        matches!(&err, Error::Trace(m) if m.contains("another trace")),
        "{err:?}"
    );

    // Nested traces that do not mix are fine.
    let outer = trace_scalar(&[1.0], &[], |x, _| {
        let inner = trace_scalar(&[2.0], &[], |y, _| y[0] * 3.0).unwrap();
        let k = common::run(&inner, &[2.0], &[]).unwrap()[0];
        x[0] * k
    })
    .unwrap();
    assert_eq!(common::run(&outer, &[1.5], &[]).unwrap(), [9.0]);
}

#[test]
fn a_panic_in_traced_code_leaves_tracing_usable() {
    let r = std::panic::catch_unwind(|| {
        trace_scalar(&[1.0], &[], |x, _| {
            if x[0].trace_value() > 0.0 {
                panic!("user code panicked");
            }
            x[0]
        })
    });
    assert!(r.is_err());
    let tape = trace_scalar(&[1.0], &[], |x, _| x[0] + 1.0).unwrap();
    assert_eq!(common::run(&tape, &[1.0], &[]).unwrap(), [2.0]);
}

#[test]
fn evaluating_at_special_values_never_panics() {
    let f = Function::scalar(&[1.0, 2.0], |x| {
        (x[0].ln() * x[1].sqrt()).powf(x[0]) + x[0].powi(-3) / x[1].atanh() + x[0].max(x[1])
    })
    .unwrap();
    let mut g = [0.0; 2];
    let mut h = [0.0; 4];
    for &a in &common::SPECIALS {
        for &b in &common::SPECIALS {
            let x = [a, b];
            f.value(&x).unwrap();
            f.gradient(&x, &mut g).unwrap();
            f.hessian(&x, &mut h).unwrap();
        }
    }
}

#[test]
fn unverified_tapes_are_errors_at_every_public_entry() {
    // A hand-built tape whose operand comes after its use.
    let mut bad = Tape::new(1, 0);
    bad.push(Inst::unary(Op::Sin, 3));
    bad.push(Inst::input(0));
    bad.push_output(0);
    let invalid = |r: Result<(), Error>| matches!(r, Err(Error::InvalidTape { .. }));
    assert!(invalid(
        interp::eval(&bad, &[1.0], &[], &mut Vec::new(), &mut [0.0]).map(drop)
    ));
    assert!(invalid(
        tapejit::ad::reverse(&bad, 0..1, tapejit::ad::Seed::One).map(drop)
    ));
    assert!(invalid(tapejit::ad::forward(&bad, 0..1).map(drop)));
    assert!(invalid(tapejit::ad::jacobian_forward(&bad, 0..1).map(drop)));
    assert!(invalid(tapejit::opt::optimize(&bad).map(drop)));
    for name in tapejit::opt::pass_names() {
        assert!(invalid(tapejit::opt::run_pass(name, &bad).map(drop)));
    }
    assert!(invalid(tapejit::jit::compile(&bad).map(drop)));
    assert!(invalid(Function::from_tape(bad.clone()).map(drop)));
    // A good tape, but differentiated with respect to inputs it lacks.
    let good: Tape = "tape inputs=1 params=0\n%0 = input 0\noutputs %0\n"
        .parse()
        .unwrap();
    let err = tapejit::ad::reverse(&good, 0..3, tapejit::ad::Seed::One).unwrap_err();
    assert!(err.to_string().contains("inputs 0..3"), "{err}");
    assert!(good.describe_guard(7).contains("not a guard"));
    assert_eq!(good.guard_ordinal(99), 0);
}
