//! Guards in bodies, one-trip loops, bodies beyond a chunk, split inputs.

use super::*;

/// `Σ x[i]` with a guard `x[i] < p0` in the body, a nested loop over
/// `x[i..i+2]` whose body guards `x != 3.5`, and a root guard on the sum.
fn guarded() -> Tape {
    let n = 8u32;
    let mut inner = Tape::new(1, 1);
    let [x] = body_inputs(&mut inner)[..] else {
        unreachable!()
    };
    let c = inner.push(Inst::constant(3.5));
    let eq = bin(&mut inner, Op::Eq, x, c);
    inner.push(Inst::guard(eq, false));
    inner.push_output(x);

    let mut body = Tape::new(2, 1);
    let [s, x] = body_inputs(&mut body)[..] else {
        unreachable!()
    };
    let p = body.push(Inst::param(0));
    let lt = bin(&mut body, Op::Lt, x, p);
    body.push(Inst::guard(lt, true));
    body.push_loop(Loop {
        trips: 2,
        body: inner,
        init: vec![],
        invariants: vec![],
        reads: vec![access(Buffer::Input, 0, &[1, 1])],
        writes: vec![write(0, 0, &[1, 1], WriteMode::Add)],
    });
    let next = bin(&mut body, Op::Add, s, x);
    body.push_output(next);

    let mut t = Tape::new(n as usize + 1, 1);
    let a = t.add_array(n + 1);
    let zero = t.push(Inst::constant(0.0));
    let lp = t.push_loop(Loop {
        trips: n,
        body,
        init: vec![zero],
        invariants: vec![],
        reads: vec![access(Buffer::Input, 0, &[1])],
        writes: vec![],
    });
    let s = t.push(Inst::loop_out(lp, 0));
    let big = t.push(Inst::constant(20.0));
    let ok = bin(&mut t, Op::Lt, s, big);
    t.push(Inst::guard(ok, true));
    t.push_output(s);
    slice(&mut t, a, 0, n + 1);
    t
}

#[test]
fn guards_in_bodies_fail_at_some_iteration_like_the_interpreter() {
    let t = guarded();
    // x = 0, 1, 2, ...: the body guard fails at iteration p0 (rounded up),
    // the nested one where x = 3.5 is reached, the root one on large sums.
    let mut pts = Vec::new();
    for p0 in [0.5, 3.0, 5.5, 8.5, 100.0] {
        for shift in [0.0, 0.5, -4.0] {
            let x: Vec<f64> = (0..9).map(|i| i as f64 + shift).collect();
            pts.push((x, vec![p0]));
        }
    }
    pts.extend(points(800, &t, 40));
    let failures = check(&t, &pts);
    assert!(
        failures > 10 && failures < pts.len(),
        "{failures} of {}",
        pts.len()
    );

    // The errors name the guard of the body they fail in, and the loops
    // around it, as the interpreter does.
    let code = jit::compile(&t).unwrap();
    let mut scratch = Vec::new();
    let failure = |x: &[f64], p0: f64, scratch: &mut Vec<f64>| -> (usize, u32, String) {
        match run(&code, x, &[p0], scratch) {
            Err(Error::GuardFailed {
                guard,
                instr,
                detail,
            }) => (guard, instr, detail),
            other => panic!("expected a guard failure, got {other:?}"),
        }
    };
    let x: Vec<f64> = (0..9).map(|i| i as f64).collect();
    let shifted: Vec<f64> = x.iter().map(|v| v + 0.5).collect();
    let body = "in the body of loop %1: %3 = lt %1 %2 was true at trace time";
    let nested =
        "in the body of loop %1: in the body of loop %5: %2 = eq %0 %1 was false at trace time";
    let root = "%4 = lt %2 %3 was true at trace time";
    assert_eq!(failure(&x, 4.5, &mut scratch), (0, 4, body.to_string()));
    assert_eq!(
        failure(&shifted, 100.0, &mut scratch),
        (0, 3, nested.to_string())
    );
    assert_eq!(failure(&x, 100.0, &mut scratch), (0, 5, root.to_string()));
    // After failures, a passing call sees freshly reset arrays.
    let small: Vec<f64> = (0..9).map(|i| i as f64 * 0.25).collect();
    let got = run(&code, &small, &[100.0], &mut scratch).unwrap();
    assert_eq!(got, interpret(&t, &small, &[100.0]).unwrap());
}

#[test]
fn loops_of_one_trip() {
    // A one-trip loop at the root, and one nested in a four-trip loop, both
    // with carried values and writes.
    let mut inner = Tape::new(2, 0);
    let [c, x] = body_inputs(&mut inner)[..] else {
        unreachable!()
    };
    let y = bin(&mut inner, Op::Hypot, c, x);
    inner.push_output(y);
    inner.push_output(y);
    let mut outer = Tape::new(2, 0);
    let [c, x] = body_inputs(&mut outer)[..] else {
        unreachable!()
    };
    let lp = outer.push_loop(Loop {
        trips: 1,
        body: inner,
        init: vec![c],
        invariants: vec![],
        reads: vec![access(Buffer::Input, 1, &[1, 5])],
        writes: vec![write(0, 0, &[1, 3], WriteMode::Store)],
    });
    let h = outer.push(Inst::loop_out(lp, 0));
    let next = bin(&mut outer, Op::Sub, h, x);
    outer.push_output(next);
    outer.push_output(next);

    let mut single = Tape::new(1, 0);
    let [x] = body_inputs(&mut single)[..] else {
        unreachable!()
    };
    let e = un(&mut single, Op::Exp, x);
    single.push_output(e);

    let mut t = Tape::new(6, 0);
    let a = t.add_array(4);
    let b = t.add_array(2);
    let x0 = t.push(Inst::input(0));
    let lp = t.push_loop(Loop {
        trips: 4,
        body: outer,
        init: vec![x0],
        invariants: vec![],
        reads: vec![access(Buffer::Input, 0, &[1])],
        writes: vec![write(b, 1, &[0], WriteMode::Add)],
    });
    let r = t.push(Inst::loop_out(lp, 0));
    t.push_loop(Loop {
        trips: 1,
        body: single,
        init: vec![],
        invariants: vec![],
        reads: vec![access(Buffer::Input, 5, &[7])],
        writes: vec![write(b, 0, &[3], WriteMode::Store)],
    });
    t.push_output(r);
    slice(&mut t, a, 0, 4);
    slice(&mut t, b, 0, 2);
    check(&t, &points(900, &t, 40));
}

/// A chain of `len` mixed ops over the body's inputs (calls included, so
/// values live across calls).
fn long_chain(body: &mut Tape, inputs: &[u32], len: usize) -> u32 {
    let ops = [Op::Add, Op::Mul, Op::Sub, Op::Max, Op::Div];
    let mut v = inputs[0];
    for k in 0..len {
        let other = inputs[k % inputs.len()];
        v = if k % 13 == 5 {
            un(body, Op::Sin, v)
        } else {
            bin(body, ops[k % ops.len()], v, other)
        };
    }
    v
}

#[test]
fn bodies_larger_than_a_chunk_stay_whole() {
    let mut inner = Tape::new(3, 1);
    let ins = body_inputs(&mut inner);
    let v = long_chain(&mut inner, &ins, 120);
    inner.push_output(v);
    let mut body = Tape::new(3, 1);
    let ins = body_inputs(&mut body);
    let v = long_chain(&mut body, &ins, 150);
    let p = body.push(Inst::param(0));
    let lp = body.push_loop(Loop {
        trips: 3,
        body: inner,
        init: vec![v],
        invariants: vec![p],
        reads: vec![access(Buffer::Input, 0, &[0, 1])],
        writes: vec![],
    });
    let w = body.push(Inst::loop_out(lp, 0));
    let next = bin(&mut body, Op::Min, w, ins[0]);
    body.push_output(next);
    body.push_output(w);

    let mut t = Tape::new(6, 1);
    let arr = t.add_array(5);
    let x: Vec<u32> = (0..6).map(|i| t.push(Inst::input(i))).collect();
    let before = long_chain(&mut t, &x, 40);
    let lp = t.push_loop(Loop {
        trips: 5,
        body,
        init: vec![before],
        invariants: vec![x[1]],
        reads: vec![access(Buffer::Input, 1, &[1])],
        writes: vec![write(arr, 4, &[-1], WriteMode::Store)],
    });
    let out = t.push(Inst::loop_out(lp, 0));
    let after = long_chain(&mut t, &[out, before], 40);
    t.push_output(after);
    t.push_output(out);
    t.push_output(before);
    slice(&mut t, arr, 0, 5);
    assert!(t.static_len() > 300);
    for chunk_len in [1, 7, 50, 200] {
        let o = JitOptions {
            chunk_len,
            ..JitOptions::default()
        };
        let code = jit::compile_with(&t, o).unwrap();
        assert!(
            code.n_chunks() >= 3,
            "{chunk_len}: {} chunks",
            code.n_chunks()
        );
        check_with(
            &t,
            &[
                o,
                JitOptions {
                    input_split: Some(3),
                    output_split: Some(2),
                    ..o
                },
            ],
            &points(1000 + chunk_len as u64, &t, 12),
        );
    }
}

#[test]
fn the_input_split_may_fall_inside_strided_ranges() {
    // Reads x[i], x[11 - i], x[2i] and, nested, x[3i + j]; every split.
    let n = 12usize;
    let mut inner = Tape::new(2, 0);
    let [s, x] = body_inputs(&mut inner)[..] else {
        unreachable!()
    };
    let next = bin(&mut inner, Op::Sub, x, s);
    inner.push_output(next);
    let mut body = Tape::new(1 + 3, 0);
    let [s, a, b, c] = body_inputs(&mut body)[..] else {
        unreachable!()
    };
    let lp = body.push_loop(Loop {
        trips: 3,
        body: inner,
        init: vec![a],
        invariants: vec![],
        reads: vec![access(Buffer::Input, 0, &[3, 1])],
        writes: vec![],
    });
    let w = body.push(Inst::loop_out(lp, 0));
    let ab = bin(&mut body, Op::Mul, b, w);
    let abc = bin(&mut body, Op::Add, ab, c);
    let next = bin(&mut body, Op::Add, s, abc);
    body.push_output(next);
    body.push_output(abc);
    let mut t = Tape::new(n, 0);
    let arr = t.add_array(6);
    let zero = t.push(Inst::constant(0.0));
    let lp = t.push_loop(Loop {
        trips: 4,
        body,
        init: vec![zero],
        invariants: vec![],
        reads: vec![
            access(Buffer::Input, 0, &[1]),
            access(Buffer::Input, 11, &[-1]),
            access(Buffer::Input, 0, &[2]),
        ],
        writes: vec![write(arr, 1, &[1], WriteMode::Store)],
    });
    let s = t.push(Inst::loop_out(lp, 0));
    t.push_output(s);
    slice(&mut t, arr, 0, 6);
    let options: Vec<JitOptions> = (0..=n)
        .map(|i| JitOptions {
            input_split: Some(i),
            output_split: Some((i * 7) % (t.n_outputs() + 1)),
            ..JitOptions::default()
        })
        .collect();
    check_with(&t, &options, &points(1100, &t, 16));
}
