//! Reductions, carried recurrences and nests two and three deep.

use super::*;

/// `s = Σ_{i<n} x[i] * x[i+1]` (a carried sum), the running sums stored in
/// an array output as a slice, and `s` itself.
pub(crate) fn shifted_dot(n: u32) -> Tape {
    shifted_dot_with(n, Some(WriteMode::Store))
}

/// `s = Σ_{i<n} x[i] * x[i+1]` as the first output; with `mode`, the
/// running sums written in that mode to an array output as a slice after it.
pub(crate) fn shifted_dot_with(n: u32, mode: Option<WriteMode>) -> Tape {
    let mut body = Tape::new(3, 0);
    let [s, a, b] = body_inputs(&mut body)[..] else {
        unreachable!()
    };
    let p = bin(&mut body, Op::Mul, a, b);
    let next = bin(&mut body, Op::Add, s, p);
    body.push_output(next);
    let mut t = Tape::new(n as usize + 1, 0);
    let y = mode.map(|mode| (t.add_array(n), mode));
    if y.is_some() {
        body.push_output(next); // the running sum, written
    }
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
        writes: y
            .map(|(y, mode)| write(y, 0, &[1], mode))
            .into_iter()
            .collect(),
    });
    let total = t.push(Inst::loop_out(lp, 0));
    t.push_output(total);
    if let Some((y, _)) = y {
        slice(&mut t, y, 0, n);
    }
    t
}

/// The interpreter alone on [`shifted_dot`]: the carried sum and the
/// running sums written.
#[test]
fn the_interpreter_runs_bodies_with_carried_values_reads_and_writes() {
    let n = 5;
    let t = shifted_dot(n);
    t.verify().unwrap();
    let x: Vec<f64> = (0..=n).map(|i| 1.0 + i as f64 * 0.5).collect();
    let mut out = vec![0.0; 1 + n as usize];
    interp::eval(&t, &x, &[], &mut Vec::new(), &mut out).unwrap();
    let mut s = -0.0;
    for i in 0..n as usize {
        s += x[i] * x[i + 1];
        assert_eq!(out[1 + i], s);
    }
    assert_eq!(out[0], s);
}

#[test]
fn the_verifier_rejects_accesses_outside_their_buffer() {
    let mut t = shifted_dot(5);
    assert!(t.verify().is_ok());
    t = Tape::from_structured(
        t.insts().to_vec(),
        t.outputs().to_vec(),
        5, // one input short: x[i + 1] reads past the end
        0,
        t.loops().to_vec(),
        t.arrays().to_vec(),
    );
    let err = t.verify().unwrap_err().to_string();
    assert!(err.contains("leaves the buffer"), "{err}");
}

#[test]
fn a_reduction_of_shifted_products() {
    for n in [1, 2, 3, 7, 64, 1000] {
        let t = shifted_dot(n);
        check(&t, &points(n as u64, &t, 24));
        // Native Rust, same order of operations: the same bits.
        let x: Vec<f64> = (0..=n).map(|i| (i as f64 * 0.37).sin()).collect();
        let code = jit::compile(&t).unwrap();
        let out = run(&code, &x, &[], &mut Vec::new()).unwrap();
        let mut s = -0.0;
        for i in 0..n as usize {
            s += x[i] * x[i + 1];
            assert_eq!(out[1 + i].to_bits(), s.to_bits());
        }
        assert_eq!(out[0].to_bits(), s.to_bits());
    }
}

/// Carried `(a, b, c)`, invariants from the root (one from a parameter),
/// strided reads of inputs and parameters, and `param 0` read in the body.
fn vector_recurrence(n: u32) -> Tape {
    let mut body = Tape::new(3 + 2 + 2, 2 + n as usize);
    let [a, b, c, w, q, x, p] = body_inputs(&mut body)[..] else {
        unreachable!()
    };
    let p0 = body.push(Inst::param(0));
    let t1 = bin(&mut body, Op::Mul, a, w);
    let t2 = bin(&mut body, Op::Mul, b, x);
    let na = bin(&mut body, Op::Add, t1, t2);
    let t3 = un(&mut body, Op::Sin, na);
    let t4 = bin(&mut body, Op::Mul, p0, t3);
    let nb = bin(&mut body, Op::Sub, c, t4);
    let t5 = bin(&mut body, Op::Max, na, nb);
    let t6 = bin(&mut body, Op::Div, t5, q);
    let lt = bin(&mut body, Op::Lt, t6, p);
    let r = un(&mut body, Op::Round, t6);
    let sel = body.push(Inst::ternary(Op::Select, lt, r, p));
    let nc = body.push(Inst::powi(sel, 3));
    let nc = un(&mut body, Op::Tanh, nc);
    for v in [na, nb, nc] {
        body.push_output(v);
    }
    let mut t = Tape::new(n as usize + 3, 2 + n as usize);
    let x: Vec<u32> = (0..3).map(|i| t.push(Inst::input(i))).collect();
    let p1 = t.push(Inst::param(1));
    let w = un(&mut t, Op::Cos, x[0]);
    let q = bin(&mut t, Op::Add, p1, x[1]);
    let lp = t.push_loop(Loop {
        trips: n,
        body,
        init: vec![x[0], x[1], x[2]],
        invariants: vec![w, q],
        reads: vec![
            access(Buffer::Input, 3, &[1]),
            access(Buffer::Param, 2, &[1]),
        ],
        writes: vec![],
    });
    let outs: Vec<u32> = (0..3).map(|k| t.push(Inst::loop_out(lp, k))).collect();
    let s = bin(&mut t, Op::Add, outs[0], outs[2]);
    for v in [outs[0], outs[1], outs[2], s, w] {
        t.push_output(v);
    }
    t
}

#[test]
fn a_carried_three_vector_recurrence_with_invariants_and_params() {
    for n in [1, 2, 10, 33] {
        let t = vector_recurrence(n);
        check(&t, &points(100 + n as u64, &t, 40));
    }
}

/// `y[i] = Σ_j A[i][j] * x[n-1-j]`, `A` row-major in the params, `z` the
/// same backwards (`z[m-1-i]`), and the total carried by the outer loop.
pub(crate) fn matrix_vector(m: u32, n: u32) -> Tape {
    let mut inner = Tape::new(1 + 1 + 2, m as usize * n as usize + 1);
    let [s, scale, a, x] = body_inputs(&mut inner)[..] else {
        unreachable!()
    };
    let ax = bin(&mut inner, Op::Mul, a, x);
    let t = bin(&mut inner, Op::Mul, ax, scale);
    let next = bin(&mut inner, Op::Add, s, t);
    inner.push_output(next);

    let mut outer = Tape::new(2, m as usize * n as usize + 1);
    let [total, scale] = body_inputs(&mut outer)[..] else {
        unreachable!()
    };
    let zero = outer.push(Inst::constant(0.0));
    let lp = outer.push_loop(Loop {
        trips: n,
        body: inner,
        init: vec![zero],
        invariants: vec![scale],
        reads: vec![
            access(Buffer::Param, 0, &[n as i64, 1]),
            access(Buffer::Input, n as i64 - 1, &[0, -1]),
        ],
        writes: vec![],
    });
    let y = outer.push(Inst::loop_out(lp, 0));
    let next = bin(&mut outer, Op::Add, total, y);
    outer.push_output(next);
    outer.push_output(y);
    outer.push_output(y);

    let mut t = Tape::new(n as usize, m as usize * n as usize + 1);
    let ya = t.add_array(m);
    let za = t.add_array(m);
    let zero = t.push(Inst::constant(0.0));
    let scale = t.push(Inst::param(m * n));
    let lp = t.push_loop(Loop {
        trips: m,
        body: outer,
        init: vec![zero],
        invariants: vec![scale],
        reads: vec![],
        writes: vec![
            write(ya, 0, &[1], WriteMode::Store),
            write(za, m as i64 - 1, &[-1], WriteMode::Store),
        ],
    });
    let total = t.push(Inst::loop_out(lp, 0));
    t.push_output(total);
    slice(&mut t, ya, 0, m);
    slice(&mut t, za, 0, m);
    t
}

#[test]
fn nested_loops_two_deep_with_negative_and_zero_strides() {
    for (m, n) in [(1, 1), (1, 5), (4, 1), (3, 7), (16, 9)] {
        let t = matrix_vector(m, n);
        check(&t, &points(200 + m as u64 * n as u64, &t, 24));
        // The values themselves: y is A x reversed.
        let x: Vec<f64> = (0..n).map(|j| j as f64 + 1.0).collect();
        let p: Vec<f64> = (0..m * n).map(|k| (k % 5) as f64).chain([1.0]).collect();
        let out = run(&jit::compile(&t).unwrap(), &x, &p, &mut Vec::new()).unwrap();
        for i in 0..m as usize {
            let y: f64 = (0..n as usize)
                .map(|j| p[i * n as usize + j] * x[n as usize - 1 - j])
                .fold(0.0, |s, t| s + t);
            assert_eq!(out[1 + i], y);
            assert_eq!(out[1 + 2 * m as usize - 1 - i], y);
        }
    }
}

/// Three levels: the innermost accumulates into `acc[i + j]` (overlapping
/// across iterations) and reads the inputs with strides `[0, 2, -1]`; every
/// level carries a value; an invariant goes from the outermost body down to
/// the innermost. A later loop reads `acc` backwards.
fn three_deep() -> Tape {
    let (t0, t1, t2) = (3u32, 4u32, 5u32);
    let n_inputs = 2 * (t1 as usize - 1) + t2 as usize; // x[2j + (t2-1) - k]
    let mut inner = Tape::new(1 + 1 + 2, 1);
    let [s, u, x, a] = body_inputs(&mut inner)[..] else {
        unreachable!()
    };
    let p0 = inner.push(Inst::param(0));
    let xu = bin(&mut inner, Op::Mul, x, u);
    let y = bin(&mut inner, Op::Add, xu, a);
    let y = bin(&mut inner, Op::Min, y, p0);
    let next = bin(&mut inner, Op::Sub, s, y);
    inner.push_output(next);
    inner.push_output(y);

    let mut middle = Tape::new(1 + 1 + 1, 1);
    let [c, u, x0] = body_inputs(&mut middle)[..] else {
        unreachable!()
    };
    let lp = middle.push_loop(Loop {
        trips: t2,
        body: inner,
        init: vec![x0],
        invariants: vec![u],
        reads: vec![
            access(Buffer::Input, t2 as i64 - 1, &[0, 2, -1]),
            access(Buffer::Param, 0, &[0, 0, 0]),
        ],
        writes: vec![write(0, 0, &[1, 1, 0], WriteMode::Add)],
    });
    let s = middle.push(Inst::loop_out(lp, 0));
    let next = bin(&mut middle, Op::Mul, c, s);
    middle.push_output(next);
    middle.push_output(s);

    let mut outer = Tape::new(1 + 1, 1);
    let [d, x] = body_inputs(&mut outer)[..] else {
        unreachable!()
    };
    let u = un(&mut outer, Op::Exp, x);
    let one = outer.push(Inst::constant(1.0));
    let lp = outer.push_loop(Loop {
        trips: t1,
        body: middle,
        init: vec![one],
        invariants: vec![u],
        reads: vec![access(Buffer::Input, 0, &[1, 0])],
        writes: vec![write(1, 0, &[t1 as i64, 1], WriteMode::Store)],
    });
    let c = outer.push(Inst::loop_out(lp, 0));
    let next = bin(&mut outer, Op::Add, d, c);
    outer.push_output(next);

    let mut t = Tape::new(n_inputs, 1);
    let acc = t.add_array(t0 + t1 - 1);
    let each = t.add_array(t0 * t1);
    assert_eq!((acc, each), (0, 1));
    let zero = t.push(Inst::constant(0.0));
    let lp = t.push_loop(Loop {
        trips: t0,
        body: outer,
        init: vec![zero],
        invariants: vec![],
        reads: vec![access(Buffer::Input, 1, &[1])],
        writes: vec![],
    });
    let d = t.push(Inst::loop_out(lp, 0));
    // A later loop: alternating sum of acc read backwards.
    let mut rev = Tape::new(2, 1);
    let [s, a] = body_inputs(&mut rev)[..] else {
        unreachable!()
    };
    let na = un(&mut rev, Op::Neg, s);
    let next = bin(&mut rev, Op::Add, na, a);
    rev.push_output(next);
    let lp = t.push_loop(Loop {
        trips: t0 + t1 - 1,
        body: rev,
        init: vec![d],
        invariants: vec![],
        reads: vec![access(Buffer::Array(acc), (t0 + t1 - 2) as i64, &[-1])],
        writes: vec![],
    });
    let r = t.push(Inst::loop_out(lp, 0));
    t.push_output(r);
    slice(&mut t, acc, 0, t0 + t1 - 1);
    slice(&mut t, each, 0, t0 * t1);
    t
}

#[test]
fn nested_loops_three_deep_accumulating_into_overlapping_elements() {
    let t = three_deep();
    check(&t, &points(300, &t, 60));
}
