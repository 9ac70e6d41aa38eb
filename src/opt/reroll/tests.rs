//! Unit tests of rerolling on small hand-made tapes.

use super::*;
use crate::error::Error;
use crate::interp;
use crate::ir::random::random_points;
use crate::ir::{semantics::same, Access, Buffer, Inst, Loop, Op, Output, Write, WriteMode};

fn eval(t: &Tape, x: &[f64]) -> crate::Result<Vec<f64>> {
    let mut out = vec![0.0; t.n_outputs()];
    interp::eval(t, x, &[], &mut Vec::new(), &mut out).map(|()| out)
}

/// Same bits on every output at every point, or both fail a guard.
fn exact(t: &Tape, r: &Tape, points: &[(Vec<f64>, Vec<f64>)]) {
    for (x, _) in points {
        match (eval(t, x), eval(r, x)) {
            (Ok(a), Ok(b)) => assert!(a.iter().zip(&b).all(|(a, b)| same(*a, *b)), "{a:?} {b:?}"),
            (Err(Error::GuardFailed { .. }), Err(Error::GuardFailed { .. })) => {}
            (a, b) => panic!("{a:?} became {b:?}"),
        }
    }
}

fn run(t: &Tape, x: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; t.n_outputs()];
    interp::eval(t, x, &[], &mut Vec::new(), &mut out).unwrap();
    out
}

/// `s = x0; s = s * x[i] + c` for i in 1..n, every partial sum an output.
fn chain(n: u32, expose: bool) -> Tape {
    let mut t = Tape::new(n as usize, 0);
    let mut s = t.push(Inst::input(0));
    let mut partial = Vec::new();
    for i in 1..n {
        let x = t.push(Inst::input(i));
        let c = t.push(Inst::constant(0.5));
        let m = t.push(Inst::binary(Op::Mul, s, x));
        s = t.push(Inst::binary(Op::Add, m, c));
        partial.push(s);
    }
    if expose {
        for p in partial {
            t.push_output(p);
        }
    }
    t.push_output(s);
    t
}

#[test]
fn rolls_a_carried_chain_exactly() {
    for expose in [false, true] {
        let t = chain(40, expose);
        let (r, stats) = reroll_with_stats(&t).unwrap();
        r.verify().unwrap();
        assert_eq!(r.loops().len(), 1, "{r:?}");
        assert!(stats.after * 3 < stats.before, "{stats:?}");
        let x: Vec<f64> = (0..40).map(|i| 1.0 - i as f64 * 0.03).collect();
        let (a, b) = (run(&t, &x), run(&r, &x));
        assert!(a.iter().zip(&b).all(|(a, b)| same(*a, *b)), "{a:?} {b:?}");
    }
}

#[test]
fn short_repeats_stay_unrolled() {
    let t = chain(4, false);
    let r = reroll(&t).unwrap();
    assert!(r.loops().is_empty());
}

/// Rows already rolled into loops that write per-row arrays (as a first
/// round leaves them), each followed by code reading two elements: the
/// second round nests them, sharing the first row's array (scratch).
#[test]
fn loops_writing_per_iteration_arrays_nest_with_scratch_arrays() {
    let rows = 6u32;
    let mut t = Tape::new(8 * rows as usize, 0);
    let mut acc = t.push(Inst::constant(1.0));
    for r in 0..rows {
        let mut body = Tape::new(1, 0);
        let x = body.push(Inst::input(0));
        let sq = body.push(Inst::binary(Op::Mul, x, x));
        body.push_output(sq);
        let array = t.add_array(5);
        t.push_loop(Loop {
            trips: 5,
            body,
            init: vec![],
            invariants: vec![],
            reads: vec![Access {
                buffer: Buffer::Input,
                offset: 8 * r as i64,
                strides: vec![1],
            }],
            writes: vec![Write {
                access: Access {
                    buffer: Buffer::Array(array),
                    offset: 0,
                    strides: vec![1],
                },
                mode: WriteMode::Store,
            }],
        });
        let (e0, e4) = (t.push(Inst::elem(array, 0)), t.push(Inst::elem(array, 4)));
        let m = t.push(Inst::binary(Op::Sub, e0, e4));
        acc = t.push(Inst::binary(Op::Mul, acc, m));
    }
    t.push_output(acc);
    t.verify().unwrap();
    // As if the arrays had been made by rerolling (input arrays are pinned).
    let mut shared = Shared::new(&t, 4, 16);
    shared.pinned.fill(false);
    let slot_addr = (0..t.n_inputs())
        .map(|i| {
            Some(Access {
                buffer: Buffer::Input,
                offset: i as i64,
                strides: vec![],
            })
        })
        .collect();
    let mut ctx = Ctx {
        depth: 0,
        slot_addr,
        shared: &mut shared,
    };
    let rolled = reroll_level(&t, &mut ctx);
    let rolled = tidy::compact_arrays(rewrite::deep(dce::dce, &rolled));
    rolled.verify().unwrap();
    assert_eq!(rolled.loops().len(), 1, "{rolled:?}");
    assert_eq!(rolled.arrays(), &[5]);
    let outer = &rolled.loops()[0];
    assert_eq!(outer.trips, rows);
    assert_eq!(outer.body.loops()[0].reads[0].strides, vec![8, 1]);
    assert_eq!(outer.body.loops()[0].writes[0].access.strides, vec![0, 1]);
    for seed in 0..20u64 {
        let x: Vec<f64> = (0..t.n_inputs())
            .map(|i| ((seed * 31 + i as u64) % 17) as f64 * 0.25 - 2.0)
            .collect();
        let (a, b) = (run(&t, &x), run(&rolled, &x));
        assert!(same(a[0], b[0]), "{a:?} {b:?}");
    }
}

/// The same tape with its arrays pinned (they came with the input): no
/// scratch sharing, so no nesting, and still exact.
#[test]
fn input_arrays_are_never_shared() {
    let t = chain(10, true);
    let r = reroll(&t).unwrap();
    let again = reroll(&r).unwrap();
    again.verify().unwrap();
    let x: Vec<f64> = (0..10).map(|i| 0.5 + i as f64 * 0.1).collect();
    let (a, b) = (run(&t, &x), run(&again, &x));
    assert!(a.iter().zip(&b).all(|(a, b)| same(*a, *b)));
}

#[test]
fn min_trips_is_respected() {
    let t = chain(40, false);
    let config = |min_trips| RerollConfig {
        min_trips,
        ..RerollConfig::default()
    };
    let (r, stats) = reroll_with(&t, &config(40)).unwrap();
    assert!(r.loops().is_empty(), "{stats:?}");
    let (r, _) = reroll_with(&t, &config(39)).unwrap();
    assert_eq!(r.loops()[0].trips, 39);
}

/// Guards are never rolled: a failing one is reported by the root tape.
#[test]
fn segments_with_guards_stay_unrolled() {
    let mut t = Tape::new(20, 0);
    let mut s = t.push(Inst::input(0));
    let limit = t.push(Inst::constant(2.0));
    for i in 1..20 {
        let x = t.push(Inst::input(i));
        let m = t.push(Inst::binary(Op::Mul, s, x));
        let c = t.push(Inst::binary(Op::Lt, m, limit));
        t.push(Inst::guard(c, true));
        s = t.push(Inst::binary(Op::Add, m, x));
    }
    t.push_output(s);
    let rolled = reroll(&t).unwrap();
    rolled.verify().unwrap();
    fn guards_in_bodies(t: &Tape) -> usize {
        t.loops()
            .iter()
            .map(|l| l.body.n_guards() + guards_in_bodies(&l.body))
            .sum()
    }
    assert_eq!(guards_in_bodies(&rolled), 0);
    assert_eq!(rolled.n_guards(), t.n_guards());
    let points = random_points(6, &t, 30);
    exact(&t, &rolled, &points);
    let small = vec![0.1; 20];
    assert!(eval(&rolled, &small).is_ok());
    let big = vec![3.0; 20];
    assert!(matches!(
        eval(&rolled, &big),
        Err(Error::GuardFailed { .. })
    ));
}

/// A tape that already has a loop and an array: the array's elements
/// are read by the repeated code, which rolls into a loop reading it.
#[test]
fn reads_of_an_existing_array_become_strided_reads() {
    let n = 12u32;
    let mut body = Tape::new(2, 0);
    let (s, x) = (body.push(Inst::input(0)), body.push(Inst::input(1)));
    let next = body.push(Inst::binary(Op::Add, s, x));
    body.push_output(next);
    body.push_output(next);
    let mut t = Tape::new(n as usize, 0);
    let y = t.add_array(n);
    let zero = t.push(Inst::constant(-0.0));
    t.push_loop(Loop {
        trips: n,
        body,
        init: vec![zero],
        invariants: vec![],
        reads: vec![Access {
            buffer: Buffer::Input,
            offset: 0,
            strides: vec![1],
        }],
        writes: vec![Write {
            access: Access {
                buffer: Buffer::Array(y),
                offset: 0,
                strides: vec![1],
            },
            mode: WriteMode::Store,
        }],
    });
    let mut acc = t.push(Inst::elem(y, 0));
    let mut elems = Vec::new();
    for i in 1..n {
        let e = t.push(Inst::elem(y, i));
        let x = t.push(Inst::input(i));
        let m = t.push(Inst::binary(Op::Mul, acc, e));
        acc = t.push(Inst::binary(Op::Sub, m, x));
        elems.push(e);
    }
    t.push_output(acc);
    // Elements read inside the segment and used after it are read again.
    t.push_output(elems[3]);
    t.push_output(elems[7]);
    t.push_output_entry(Output::Slice {
        array: y,
        start: 2,
        len: 5,
    });
    t.verify().unwrap();
    let (rolled, stats) = reroll_with_stats(&t).unwrap();
    rolled.verify().unwrap();
    assert_eq!(rolled.loops().len(), 2, "{stats:?}");
    assert!(stats.after * 2 < stats.before, "{stats:?}");
    exact(&t, &rolled, &random_points(7, &t, 20));
}

/// A dense layer's backward pass, shrunk from a gradient tape that rerolling
/// once changed (`tests/fixtures/reroll_dense_gradient.tape`): per unit
/// `h = 0.25 s (1 - t^2)` and eight products `h w_j`, then sums of the first
/// unit's products. The first round rolls each unit's products into a loop
/// writing an array; the second finds both the loop over the units (their
/// product arrays become one scratch array, overwritten by each unit) and
/// the loop of sums (reading the first unit's array by position). Chosen
/// together, the sums read the last unit's products.
#[test]
fn a_read_of_an_array_another_loop_makes_scratch_is_not_rolled_with_it() {
    let t: Tape = include_str!("../../../tests/fixtures/reroll_scratch_read.tape")
        .parse()
        .unwrap();
    let r = reroll(&t).unwrap();
    r.verify().unwrap();
    assert!(r.static_len() < t.static_len(), "{r}");
    let mut points = random_points(11, &t, 8);
    let mut rng = crate::rng::SplitMix64::new(3);
    let x = (0..t.n_inputs()).map(|_| rng.uniform(-0.3, 0.3)).collect();
    let p = (0..t.n_params()).map(|_| rng.uniform(-1.0, 1.0)).collect();
    points.push((x, p));
    for (x, p) in &points {
        let (mut a, mut b) = (vec![0.0; t.n_outputs()], vec![0.0; t.n_outputs()]);
        interp::eval(&t, x, p, &mut Vec::new(), &mut a).unwrap();
        interp::eval(&r, x, p, &mut Vec::new(), &mut b).unwrap();
        for (k, (a, b)) in a.iter().zip(&b).enumerate() {
            assert!(same(*a, *b), "output {k}: {a:?} became {b:?}\n{r}");
        }
    }
}
