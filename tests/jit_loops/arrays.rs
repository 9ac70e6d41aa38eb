//! Writes of both modes, arrays read by later loops, `elem`/`store`, slices.

use super::*;

#[test]
fn overlapping_add_and_store_writes_apply_in_order() {
    // Per iteration: z[i] += x, z[i+1] += 2x, z[i+1] = x (wins), z[0] += x
    // (a sum in memory), and a read of z[i] at the start of the iteration.
    let n = 9u32;
    let mut body = Tape::new(2, 0);
    let [x, zi] = body_inputs(&mut body)[..] else {
        unreachable!()
    };
    let two = bin(&mut body, Op::Add, x, x);
    let y = bin(&mut body, Op::Mul, zi, x);
    for v in [x, two, y, x] {
        body.push_output(v);
    }
    let mut t = Tape::new(n as usize, 0);
    let z = t.add_array(n + 1);
    t.push_loop(Loop {
        trips: n,
        body,
        init: vec![],
        invariants: vec![],
        reads: vec![
            access(Buffer::Input, 0, &[1]),
            access(Buffer::Array(z), 0, &[1]),
        ],
        writes: vec![
            write(z, 0, &[1], WriteMode::Add),
            write(z, 1, &[1], WriteMode::Add),
            write(z, 1, &[1], WriteMode::Store),
            write(z, 0, &[0], WriteMode::Add),
        ],
    });
    slice(&mut t, z, 0, n + 1);
    check(&t, &points(400, &t, 40));
    let code = jit::compile(&t).unwrap();
    assert_eq!(
        code.reset_len(),
        n as usize + 1,
        "every element is read first"
    );
}

#[test]
fn arrays_stored_by_one_loop_are_read_by_later_ones() {
    // Loop 1 stores prefix products of x into a[1..=n] (a[0] never stored:
    // it must read -0.0); loop 2 reads a backwards, loop 3 every other one.
    let n = 10u32;
    let mut body = Tape::new(2, 0);
    let [s, x] = body_inputs(&mut body)[..] else {
        unreachable!()
    };
    let next = bin(&mut body, Op::Mul, s, x);
    body.push_output(next);
    body.push_output(next);
    let mut t = Tape::new(n as usize, 0);
    let a = t.add_array(n + 1);
    let one = t.push(Inst::constant(1.0));
    t.push_loop(Loop {
        trips: n,
        body,
        init: vec![one],
        invariants: vec![],
        reads: vec![access(Buffer::Input, 0, &[1])],
        writes: vec![write(a, 1, &[1], WriteMode::Store)],
    });
    let sum_body = || {
        let mut b = Tape::new(2, 0);
        let [s, x] = body_inputs(&mut b)[..] else {
            unreachable!()
        };
        let q = un(&mut b, Op::Sqrt, x);
        let next = bin(&mut b, Op::Add, s, q);
        b.push_output(next);
        b
    };
    let zero = t.push(Inst::constant(0.0));
    for (read, trips) in [
        (access(Buffer::Array(a), n as i64, &[-1]), n + 1),
        (access(Buffer::Array(a), 0, &[2]), n / 2 + 1),
    ] {
        let lp = t.push_loop(Loop {
            trips,
            body: sum_body(),
            init: vec![zero],
            invariants: vec![],
            reads: vec![read],
            writes: vec![],
        });
        let r = t.push(Inst::loop_out(lp, 0));
        t.push_output(r);
    }
    let first = t.push(Inst::elem(a, 0));
    t.push_output(first);
    check(&t, &points(500, &t, 40));
    let code = jit::compile(&t).unwrap();
    assert_eq!(code.reset_len(), 1, "only a[0] is read before it is stored");
    let out = run(&code, &[2.0; 10], &[], &mut vec![7.0; code.scratch_len()]).unwrap();
    assert_eq!(out[2].to_bits(), (-0.0f64).to_bits());
}

#[test]
fn elem_and_store_in_bodies_and_at_the_root() {
    // a[2] = x0 at the root; each iteration: a[2] = a[2] * x[i] + a[5]
    // (a[5] is never stored: -0.0), b[0] = i-th value; elem at the root
    // before and after the loop.
    let n = 6u32;
    let mut body = Tape::new(2, 0);
    let [c, x] = body_inputs(&mut body)[..] else {
        unreachable!()
    };
    let e = body.push(Inst::elem(0, 2));
    let f = body.push(Inst::elem(0, 5));
    let m = bin(&mut body, Op::Mul, e, x);
    let s = bin(&mut body, Op::Add, m, f);
    body.push(Inst::store(0, 2, s));
    let g = body.push(Inst::elem(0, 2));
    let h = bin(&mut body, Op::Add, g, c);
    body.push(Inst::store(1, 0, h));
    body.push_output(h);
    let mut t = Tape::new(n as usize + 1, 0);
    let a = t.add_array(6);
    let b = t.add_array(1);
    let before = t.push(Inst::elem(a, 2));
    let x0 = t.push(Inst::input(0));
    t.push(Inst::store(a, 2, x0));
    let lp = t.push_loop(Loop {
        trips: n,
        body,
        init: vec![before],
        invariants: vec![],
        reads: vec![access(Buffer::Input, 1, &[1])],
        writes: vec![],
    });
    let after = t.push(Inst::elem(a, 2));
    let last = t.push(Inst::elem(b, 0));
    let c = t.push(Inst::loop_out(lp, 0));
    for v in [before, after, last, c] {
        t.push_output(v);
    }
    slice(&mut t, a, 1, 5);
    check(&t, &points(600, &t, 40));
}

#[test]
fn slice_outputs_with_the_output_split_anywhere() {
    let t = super::nests::matrix_vector(5, 3);
    let d = JitOptions::default();
    let options: Vec<JitOptions> = (0..=t.n_outputs())
        .flat_map(|o| {
            [0, 1, 3].map(|i| JitOptions {
                input_split: Some(i),
                output_split: Some(o),
                chunk_len: 1 + o % 4,
                ..d
            })
        })
        .collect();
    check_with(&t, &options, &points(700, &t, 8));
}

/// A loop of `n` trips whose writes `k = 0..modes.len()` go to array `z` at
/// `offset0 - k * s + s * i` (plus `outer` times an outer iteration number),
/// so write `k` addresses in iteration `i + 1` the element write `k - 1`
/// wrote in iteration `i`: the JIT passes those in registers (`jit::carry`).
fn chained_writes(z: u32, n: u32, s: i64, modes: &[WriteMode], outer: Option<i64>) -> Loop {
    let m = modes.len() as i64;
    let offset0 = if s > 0 {
        (m - 1) * s
    } else {
        -s * (n as i64 - 1)
    } + 1;
    let mut body = Tape::new(1, 0);
    let [x] = body_inputs(&mut body)[..] else {
        unreachable!()
    };
    let mut writes = Vec::new();
    for (k, &mode) in modes.iter().enumerate() {
        let c = body.push(Inst::constant(k as f64 + 0.5));
        let v = bin(&mut body, Op::Mul, x, c);
        body.push_output(v);
        let offset = offset0 - k as i64 * s;
        let strides = match outer {
            Some(o) => vec![o, s],
            None => vec![s],
        };
        writes.push(write(z, offset, &strides, mode));
    }
    let read_strides: &[i64] = if outer.is_some() { &[0, 1] } else { &[1] };
    Loop {
        trips: n,
        body,
        init: vec![],
        invariants: vec![],
        reads: vec![access(Buffer::Input, 0, read_strides)],
        writes,
    }
}

#[test]
fn elements_passed_between_iterations_in_registers_end_up_in_memory() {
    use WriteMode::{Add, Store};
    let chains: [&[WriteMode]; 5] = [
        &[Add, Add],
        &[Add, Add, Add],
        &[Store, Add],
        &[Add, Store, Add],
        &[Add, Add, Store],
    ];
    for s in [1i64, -1, 2, -3] {
        for (c, modes) in chains.iter().enumerate() {
            let n = 7u32;
            let len = (n + modes.len() as u32 + 1) * s.unsigned_abs() as u32 + 2;
            // One loop, twice over the same array (the second adds to what
            // the first left), then nested in an outer loop of 3 trips.
            let mut t = Tape::new(n as usize, 0);
            let z = t.add_array(len);
            t.push_loop(chained_writes(z, n, s, modes, None));
            t.push_loop(chained_writes(z, n, s, modes, None));
            slice(&mut t, z, 0, len);
            let seed = 900 + c as u64 + 10 * s.unsigned_abs();
            check(&t, &points(seed, &t, 8));

            let mut t = Tape::new(n as usize, 0);
            let z = t.add_array(3 * len);
            let mut outer = Tape::new(1, 0);
            let [carried] = body_inputs(&mut outer)[..] else {
                unreachable!()
            };
            outer.push_loop(chained_writes(z, n, s, modes, Some(len as i64)));
            outer.push_output(carried);
            let zero = t.push(Inst::constant(0.0));
            let l = t.push_loop(Loop {
                trips: 3,
                body: outer,
                init: vec![zero],
                invariants: vec![],
                reads: vec![],
                writes: vec![],
            });
            let out = t.push(Inst::loop_out(l, 0));
            t.push_output(out);
            slice(&mut t, z, 0, 3 * len);
            check(&t, &points(seed + 1, &t, 8));
        }
    }
}

#[test]
fn look_alike_chains_are_not_passed_in_registers() {
    // Writes that would chain but for a different stride, or an array read
    // of the loop (of the element deferred in the previous iteration).
    let n = 6u32;
    for variant in 0..2 {
        let mut t = Tape::new(n as usize, 0);
        let z = t.add_array(2 * n + 4);
        let mut lp = chained_writes(z, n, 1, &[WriteMode::Add, WriteMode::Add], None);
        match variant {
            0 => lp.writes[1].access.strides = vec![2],
            _ => {
                lp.reads.push(access(Buffer::Array(z), 1, &[1]));
                lp.body = {
                    let mut body = Tape::new(2, 0);
                    let [x, y] = body_inputs(&mut body)[..] else {
                        unreachable!()
                    };
                    let v = bin(&mut body, Op::Mul, x, y);
                    body.push_output(v);
                    body.push_output(x);
                    body
                };
            }
        }
        t.push_loop(lp);
        slice(&mut t, z, 0, 2 * n + 4);
        t.verify().unwrap();
        check(&t, &points(950 + variant, &t, 8));
    }
}

#[test]
fn first_adds_to_untouched_elements_need_no_reset() {
    // A reverse loop's accumulation: z[10 - i] += x/2 (the first access of
    // each element: a store), z[11 - i] += 3x/2 (the element of the other
    // write one iteration before: in a register). Only z[11], read in the
    // first iteration, and z[0], never written, are reset; a second loop
    // adds to what the first stored.
    use WriteMode::Add;
    let n = 10u32;
    for twice in [false, true] {
        let mut t = Tape::new(n as usize, 0);
        let z = t.add_array(n + 2);
        t.push_loop(chained_writes(z, n, -1, &[Add, Add], None));
        if twice {
            t.push_loop(chained_writes(z, n, -1, &[Add, Add], None));
        }
        slice(&mut t, z, 0, n + 2);
        check(&t, &points(970, &t, 12));
        let code = jit::compile(&t).unwrap();
        assert_eq!(code.reset_len(), 2);
    }
}
