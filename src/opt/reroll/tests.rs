//! Unit tests of rerolling on small hand-made tapes.

use super::*;
use crate::interp;
use crate::ir::{semantics::same, Inst, Op};

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
