//! Rerolling is exact and finds the loops: random tapes made of repeated
//! random bodies (carried values, invariants, strided reads, nested
//! repeats, a prefix and a tail) roll into loops and stay bitwise equal
//! under the interpreter; tapes that only look periodic are not rolled
//! wrongly; every suite case rolls to a much shorter tape; rosenbrock's
//! rolled size does not grow with n.

use proptest::prelude::*;
use std::collections::HashMap;
use std::time::Instant;
use tapejit::ir::random::random_points;
use tapejit::ir::{semantics::same, Inst, Op, Tape, Value};
use tapejit::rng::SplitMix64;
use tapejit::suite::Case;
use tapejit::{interp, opt, Error};
use Op::*;

fn run(tape: &Tape, x: &[f64], p: &[f64]) -> Result<Vec<f64>, Error> {
    let mut out = vec![0.0; tape.n_outputs()];
    interp::eval(tape, x, p, &mut Vec::new(), &mut out).map(|()| out)
}

/// Same bits on every output (NaN payloads aside), or the same guard failure.
fn assert_exact(original: &Tape, rolled: &Tape, points: &[(Vec<f64>, Vec<f64>)]) {
    for (x, p) in points {
        match (run(original, x, p), run(rolled, x, p)) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.len(), b.len());
                for (k, (a, b)) in a.iter().zip(&b).enumerate() {
                    assert!(
                        same(*a, *b),
                        "output {k}: {a:?} became {b:?} at x={x:?} p={p:?}"
                    );
                }
            }
            (Err(Error::GuardFailed { .. }), Err(Error::GuardFailed { .. })) => {}
            (a, b) => panic!("{a:?} became {b:?} at x={x:?}"),
        }
    }
}

const N_INPUTS: usize = 64;
const N_PARAMS: usize = 48;
const UNARY: [Op; 9] = [Neg, Sqrt, Exp, Sin, Abs, Floor, Tanh, Recip, SignBit];
const BINARY: [Op; 10] = [Add, Sub, Mul, Div, Min, Max, Hypot, Copysign, Lt, Atan2];

/// Where a template operand comes from.
#[derive(Clone, Copy, Debug)]
enum Src {
    /// An earlier value of the same (inner or outer) iteration.
    Intra(usize),
    /// Value `j` of the previous iteration; in the first, `init` (an outer
    /// value index for inner blocks, a prefix value for outer ones).
    Carried(usize, usize),
    /// An outer value (inner blocks only): invariant in the inner loop.
    Outer(usize),
    /// Value `j` of the same iteration of the first repeated segment (in
    /// the second one).
    Prev(usize),
    /// A value of the prefix.
    Prefix(usize),
    Const(f64),
    /// `(param, base, stride, inner)`: `input[base + stride k + inner i]`
    /// (a `param` if `param`).
    Leaf(bool, i64, i64, i64),
}

#[derive(Clone, Debug)]
struct TOp {
    op: Op,
    srcs: Vec<Src>,
}

#[derive(Clone, Debug)]
enum Item {
    Inst(TOp),
    /// A block repeated `trips` times inside each outer iteration; its
    /// last iteration's values become outer values.
    Inner {
        trips: usize,
        body: Vec<TOp>,
    },
}

/// How a tape is made to only look periodic in one iteration.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Break {
    None,
    Const,
    Stride,
    Elsewhere,
}

/// The unique constant a `Break::Const` tape uses once.
const ODD: f64 = 12345.678;

struct Gen {
    rng: SplitMix64,
    tape: Tape,
    leaves: HashMap<(Op, u64), Value>,
}

impl Gen {
    fn below(&mut self, n: usize) -> usize {
        (self.rng.next_u64() % n.max(1) as u64) as usize
    }

    fn leaf(&mut self, inst: Inst) -> Value {
        let key = (inst.op, inst.args[0] as u64 | (inst.args[1] as u64) << 32);
        if self.below(5) == 0 {
            return self.tape.push(inst); // a duplicate leaf now and then
        }
        if let Some(&v) = self.leaves.get(&key) {
            return v;
        }
        let v = self.tape.push(inst);
        self.leaves.insert(key, v);
        v
    }

    fn op(&mut self) -> (Op, usize) {
        match self.below(10) {
            0..=2 => (UNARY[self.below(UNARY.len())], 1),
            3..=8 => (BINARY[self.below(BINARY.len())], 2),
            _ => ([Op::MulAdd, Op::Select][self.below(2)], 3),
        }
    }

    /// An affine leaf whose index stays in range for `trips` x `inner_trips`.
    fn leaf_src(&mut self, trips: usize, inner_trips: usize) -> Src {
        let param = self.below(3) == 0;
        let n = if param { N_PARAMS } else { N_INPUTS } as i64;
        let stride = [-1, 0, 1, 1, 2][self.below(5)];
        let inner = if inner_trips > 1 {
            [-1, 0, 1, 3][self.below(4)]
        } else {
            0
        };
        let span = |s: i64, t: usize| (s * (t as i64 - 1)).min(0)..=(s * (t as i64 - 1)).max(0);
        let (a, b) = (span(stride, trips), span(inner, inner_trips));
        let lo = -(a.start() + b.start());
        let hi = n - 1 - (a.end() + b.end());
        if hi < lo {
            return Src::Const(0.5);
        }
        let base = lo + self.below((hi - lo + 1) as usize) as i64;
        Src::Leaf(param, base, stride, inner)
    }

    fn template_op(
        &mut self,
        j: usize,
        n_prefix: usize,
        trips: usize,
        inner: Option<(usize, usize)>,
    ) -> TOp {
        let (op, arity) = self.op();
        let srcs = (0..arity)
            .map(|_| match self.below(10) {
                0..=3 if j > 0 => Src::Intra(self.below(j)),
                4 => Src::Carried(self.below(j + 1), self.below(n_prefix)),
                5 => Src::Prefix(self.below(n_prefix)),
                6 => Src::Const([0.5, -2.0, 3.0][self.below(3)]),
                7 if inner.is_some_and(|(outer_len, _)| outer_len > 0) => {
                    Src::Outer(self.below(inner.unwrap().0))
                }
                _ => self.leaf_src(trips, inner.map_or(1, |(_, t)| t)),
            })
            .collect();
        TOp { op, srcs }
    }
}

/// A random tape: prefix, `trips` copies of a random body (perhaps with a
/// nested repeated block), a tail; `brk` spoils one iteration.
fn periodic_tape(seed: u64, trips: usize, brk: Break, expose: bool) -> Tape {
    let mut g = Gen {
        rng: SplitMix64::new(seed),
        tape: Tape::new(N_INPUTS, N_PARAMS),
        leaves: HashMap::new(),
    };
    // Prefix.
    let mut prefix = Vec::new();
    for i in 0..3 + g.below(3) {
        let a = if i == 0 {
            g.leaf(Inst::input(0))
        } else {
            prefix[g.below(prefix.len())]
        };
        let pi = g.below(N_PARAMS) as u32;
        let b = g.leaf(Inst::param(pi));
        let op = BINARY[g.below(BINARY.len())];
        prefix.push(g.tape.push(Inst::binary(op, a, b)));
    }
    let np = prefix.len();
    // Template.
    let mut items = Vec::new();
    let mut n_vals = 0;
    let body_len = 2 + g.below(5);
    for _ in 0..body_len {
        if n_vals > 0 && g.below(4) == 0 {
            let inner_trips = 4 + g.below(4);
            let mut body = Vec::new();
            for j in 0..2 + g.below(3) {
                let mut t = g.template_op(j, np, trips, Some((n_vals, inner_trips)));
                for s in &mut t.srcs {
                    if let Src::Carried(_, init) = s {
                        *init = g.below(n_vals); // an outer value
                    }
                }
                body.push(t);
            }
            n_vals += body.len();
            items.push(Item::Inner {
                trips: inner_trips,
                body,
            });
        } else {
            items.push(Item::Inst(g.template_op(n_vals, np, trips, None)));
            n_vals += 1;
        }
    }
    // The spoiled operand (if any), then an accumulator so it reaches an output.
    let probe = match brk {
        Break::None => None,
        Break::Const => Some(Src::Const(0.75)),
        Break::Stride => Some(Src::Leaf(false, 0, 1, 0)),
        Break::Elsewhere => Some(Src::Intra(0)),
    };
    if let Some(src) = probe {
        items.push(Item::Inst(TOp {
            op: Op::Rem, // used nowhere else
            srcs: vec![Src::Intra(n_vals - 1), src],
        }));
        n_vals += 1;
    }
    items.push(Item::Inst(TOp {
        op: Op::Add,
        srcs: vec![Src::Carried(n_vals, 0), Src::Intra(n_vals - 1)],
    }));
    n_vals += 1;
    let odd = 1 + g.below(trips - 2);
    // Instances.
    let mut all: Vec<Vec<Value>> = Vec::new();
    for k in 0..trips {
        let mut vals: Vec<Value> = Vec::new();
        for (idx, item) in items.iter().enumerate() {
            match item {
                Item::Inst(t) => {
                    let spoil = k == odd && probe.is_some() && idx == items.len() - 2;
                    let ops: Vec<Value> = (t.srcs.iter().enumerate())
                        .map(|(o, &s)| {
                            let s = match (spoil && o == 1, s) {
                                (true, Src::Const(_)) => Src::Const(ODD),
                                (true, Src::Leaf(..)) => Src::Leaf(false, k as i64 + 2, 0, 0),
                                (true, Src::Intra(_)) => Src::Prefix(0),
                                _ => s,
                            };
                            resolve(&mut g, s, k, 0, &vals, &vals, &all, &prefix, None)
                        })
                        .collect();
                    vals.push(emit(&mut g.tape, t.op, &ops));
                }
                Item::Inner { trips: ti, body } => {
                    let mut prev: Vec<Value> = Vec::new();
                    for i in 0..*ti {
                        let mut iv: Vec<Value> = Vec::new();
                        for t in body {
                            let ops: Vec<Value> = (t.srcs.iter())
                                .map(|&s| {
                                    resolve(&mut g, s, k, i, &iv, &vals, &all, &prefix, Some(&prev))
                                })
                                .collect();
                            iv.push(emit(&mut g.tape, t.op, &ops));
                        }
                        prev = iv;
                    }
                    vals.extend(prev);
                }
            }
        }
        all.push(vals);
    }
    let acc = *all[trips - 1].last().unwrap();
    // Sometimes a second segment reading the first one's values of the
    // same iteration (which become array elements).
    if g.below(2) == 0 {
        let second: Vec<TOp> = (0..1 + g.below(3))
            .map(|j| {
                let mut t = g.template_op(j, np, trips, None);
                for s in &mut t.srcs {
                    if g.below(2) == 0 {
                        *s = Src::Prev(g.below(n_vals));
                    }
                }
                t
            })
            .collect();
        let mut prev: Vec<Value> = Vec::new();
        for k in 0..trips {
            let mut vals: Vec<Value> = Vec::new();
            for t in &second {
                let ops: Vec<Value> = (t.srcs.iter())
                    .map(|&s| match s {
                        Src::Prev(j) => all[k][j],
                        Src::Carried(j, _) if k > 0 => prev[j.min(prev.len() - 1)],
                        Src::Carried(_, init) => prefix[init],
                        s => resolve(&mut g, s, k, 0, &vals, &vals, &all, &prefix, None),
                    })
                    .collect();
                vals.push(emit(&mut g.tape, t.op, &ops));
            }
            all[k].extend(vals.iter().copied());
            prev = vals;
        }
    }
    let n_vals = all[0].len();
    // Tail and outputs.
    let last = all.last().unwrap().clone();
    let mut outs = vec![acc, *last.last().unwrap()];
    for _ in 0..2 + g.below(3) {
        let (k, j) = (g.below(trips), g.below(n_vals));
        let a = all[k][j];
        let b = if g.below(2) == 0 {
            prefix[g.below(np)]
        } else {
            last[g.below(n_vals)]
        };
        let op = BINARY[g.below(BINARY.len())];
        outs.push(g.tape.push(Inst::binary(op, a, b)));
    }
    outs.push(last[g.below(n_vals)]);
    if expose {
        outs.extend(all.iter().flatten().copied());
    }
    for o in outs {
        g.tape.push_output(o);
    }
    g.tape.verify().unwrap();
    g.tape
}

#[allow(clippy::too_many_arguments)]
fn resolve(
    g: &mut Gen,
    s: Src,
    k: usize,
    i: usize,
    here: &[Value],
    outer: &[Value],
    all: &[Vec<Value>],
    prefix: &[Value],
    inner_prev: Option<&Vec<Value>>,
) -> Value {
    match s {
        Src::Intra(j) => here[j.min(here.len().saturating_sub(1))],
        Src::Carried(j, init) => match inner_prev {
            Some(prev) if i > 0 => prev[j.min(prev.len() - 1)],
            Some(_) => outer[init.min(outer.len() - 1)],
            None if k > 0 => all[k - 1][j.min(all[k - 1].len() - 1)],
            None => prefix[init],
        },
        Src::Outer(j) => outer[j.min(outer.len() - 1)],
        Src::Prev(_) => unreachable!("resolved by the second segment"),
        Src::Prefix(j) => prefix[j],
        Src::Const(c) => g.leaf(Inst::constant(c)),
        Src::Leaf(param, base, stride, inner) => {
            let idx = (base + stride * k as i64 + inner * i as i64) as u32;
            g.leaf(if param {
                Inst::param(idx)
            } else {
                Inst::input(idx)
            })
        }
    }
}

fn emit(t: &mut Tape, op: Op, ops: &[Value]) -> Value {
    t.push(match ops.len() {
        1 => Inst::unary(op, ops[0]),
        2 => Inst::binary(op, ops[0], ops[1]),
        _ => Inst::ternary(op, ops[0], ops[1], ops[2]),
    })
}

/// Whether `tape` or a loop body in it has the constant `c`, and where.
fn const_depths(tape: &Tape, c: f64, depth: usize, out: &mut Vec<usize>) {
    for inst in tape.insts() {
        if inst.op == Op::Const && inst.const_value().to_bits() == c.to_bits() {
            out.push(depth);
        }
    }
    for lp in tape.loops() {
        const_depths(&lp.body, c, depth + 1, out);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 160,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x7a9e_4e11),
        ..ProptestConfig::default()
    })]

    #[test]
    fn repeated_bodies_roll_and_stay_bitwise_equal(seed in any::<u64>(), trips in 8usize..14) {
        let built = periodic_tape(seed, trips, Break::None, false);
        let (rolled, stats) = opt::reroll_with_stats(&built).unwrap();
        rolled.verify().unwrap();
        assert_exact(&built, &rolled, &random_points(seed ^ 1, &built, 10));
        prop_assert!(!stats.loops.is_empty(), "no loop found in\n{}", built);
        prop_assert!(stats.after < stats.before, "{stats:?}");
    }

    #[test]
    fn every_value_used_after_stays_exact(seed in any::<u64>(), trips in 4usize..10) {
        let built = periodic_tape(seed, trips, Break::None, true);
        let rolled = opt::reroll(&built).unwrap();
        rolled.verify().unwrap();
        assert_exact(&built, &rolled, &random_points(seed ^ 2, &built, 8));
    }

    #[test]
    fn look_alike_iterations_are_not_rolled_wrongly(seed in any::<u64>(), trips in 8usize..14, which in 0usize..3) {
        let brk = [Break::Const, Break::Stride, Break::Elsewhere][which];
        let built = periodic_tape(seed, trips, brk, seed % 3 == 0);
        let rolled = opt::reroll(&built).unwrap();
        rolled.verify().unwrap();
        assert_exact(&built, &rolled, &random_points(seed ^ 3, &built, 10));
        // The odd iteration stays out of the loops: its `rem` (and for a
        // changed constant, the constant) is an instruction of the root.
        prop_assert!(rolled.insts().iter().any(|i| i.op == Op::Rem), "{rolled:?}");
        if brk == Break::Const {
            let mut depths = Vec::new();
            const_depths(&rolled, ODD, 0, &mut depths);
            prop_assert_eq!(depths, vec![0]);
        }
    }
}

#[test]
fn nested_repeats_become_nested_loops() {
    let mut depths = [0usize; 4];
    for seed in 0..100u64 {
        let built = periodic_tape(seed.wrapping_mul(0x9e37_79b9), 10, Break::None, false);
        let (_, stats) = opt::reroll_with_stats(&built).unwrap();
        depths[stats.max_depth().min(3)] += 1;
    }
    // About a quarter of the bodies have a repeated block in them.
    assert!(depths[2] >= 20, "{depths:?}");
    assert_eq!(depths[0], 0, "{depths:?}");
}

/// `s = x[0] + x[1] + ...` over a 6 x 8 block of a matrix with rows of 10:
/// one long chain whose reads jump at each row. The rows roll in the first
/// round; the second round rolls the row loops (their reads affine in the
/// row) into an outer loop.
#[test]
fn loops_of_one_round_are_the_units_of_the_next() {
    let mut t = Tape::new(60, 0);
    let mut s = t.push(Inst::input(0));
    for r in 0..6u32 {
        for c in 0..8u32 {
            if r + c > 0 {
                let x = t.push(Inst::input(r * 10 + c));
                s = t.push(Inst::binary(Op::Add, s, x));
            }
        }
    }
    t.push_output(s);
    let (rolled, stats) = opt::reroll_with_stats(&t).unwrap();
    rolled.verify().unwrap();
    assert_eq!(stats.max_depth(), 2, "{stats:?}");
    assert!(stats.after * 3 < stats.before, "{stats:?}");
    assert_exact(&t, &rolled, &random_points(5, &t, 20));
}

#[test]
fn run_pass_knows_reroll() {
    let built = periodic_tape(42, 10, Break::None, false);
    let a = opt::run_pass("reroll", &built).unwrap();
    assert_eq!(a, opt::reroll(&built).unwrap());
    assert!(a.n_loops() > 0);
}

/// Every suite case, optimized, rolls to a much shorter tape with the same
/// bits on every output (`cargo test --test reroll -- --nocapture` prints
/// the table).
#[test]
fn suite_cases_roll_exactly() {
    println!(
        "{:<22} {:>8} {:>6} {:>5} {:>5} {:>9}  loops (depth, trips, body)",
        "case", "before", "after", "loops", "depth", "seconds"
    );
    // The traced tapes (the default optimizer rerolls too), except the one
    // written with explicit loops.
    for case in Case::quick() {
        let tape = case.trace().unwrap();
        if tape.n_loops() > 0 {
            continue;
        }
        let (rolled, stats) = opt::reroll_with_stats(&tape).unwrap();
        rolled.verify().unwrap();
        let loops: Vec<_> = stats
            .loops
            .iter()
            .map(|l| (l.depth, l.trips, l.body_len))
            .collect();
        println!(
            "{:<22} {:>8} {:>6} {:>5} {:>5} {:>9.4}  {loops:?}",
            case.to_string(),
            stats.before,
            stats.after,
            stats.loops.len(),
            stats.max_depth(),
            stats.seconds
        );
        assert!(stats.after * 2 < stats.before, "{case}: {stats:?}");
        let mut points = vec![(case.default_input(), case.params())];
        points.extend(random_points(11, &tape, 4));
        assert_exact(&tape, &rolled, &points);
    }
}

/// Rosenbrock traced as a plain Rust loop: the rolled tape's static size
/// does not grow with n, and rerolling time grows about linearly (printed,
/// not asserted).
#[test]
fn rosenbrock_rolls_to_the_same_size_at_every_n() {
    rosenbrock_scaling(&[1_000, 10_000, 100_000]);
}

/// The same up to n = 10^6 (about 9 million instructions).
#[test]
#[ignore = "large: cargo test --release --test reroll -- --ignored --nocapture"]
fn rosenbrock_rolls_to_the_same_size_up_to_a_million() {
    rosenbrock_scaling(&[1_000, 10_000, 100_000, 1_000_000]);
}

fn rosenbrock_scaling(sizes: &[usize]) {
    let mut lens = Vec::new();
    for &n in sizes {
        let case = Case::Rosenbrock { n };
        let t0 = Instant::now();
        let tape = case.trace().unwrap();
        let trace_s = t0.elapsed().as_secs_f64();
        let (rolled, stats) = opt::reroll_with_stats(&tape).unwrap();
        println!(
            "rosenbrock n={n}: static {} -> {} in {:.4} s ({:.0} ns per instruction; tracing {trace_s:.3} s), loops {:?}",
            stats.before,
            stats.after,
            stats.seconds,
            stats.seconds * 1e9 / stats.before as f64,
            stats.loops
        );
        assert_exact(&tape, &rolled, &[(case.default_input(), vec![])]);
        lens.push(rolled.static_len());
    }
    let (lo, hi) = (lens.iter().min().unwrap(), lens.iter().max().unwrap());
    assert!(hi <= &(2 * lo), "{lens:?}");
}

/// The gradient (all outputs' adjoints 1) of `tape` at `x`, or `None` where
/// evaluation fails a guard.
fn gradient(tape: &Tape, x: &[f64], p: &[f64]) -> Option<Vec<f64>> {
    let g = tapejit::ad::reverse(tape, 0..tape.n_inputs(), tapejit::ad::Seed::One).unwrap();
    run(&g, x, p).ok()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 120,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x9a2d_0c71),
        ..ProptestConfig::default()
    })]

    /// The reverse transform of the rolled tape (reverse loops) gives the
    /// unrolled tape's gradient up to rounding: the same partials, but an
    /// input's adjoint sums them in another order (per loop, into an array
    /// starting at -0.0), so a few ulps (and the sign of a zero) may differ,
    /// as DESIGN.md allows for the derivatives of two different tapes.
    /// Where either is not finite they are not compared: a loop's adjoint
    /// can be a zero times an infinite or NaN partial (NaN) where the
    /// unrolled sweep, knowing that iteration's value unused, forms none.
    #[test]
    fn rolled_tapes_have_the_unrolled_gradient(seed in any::<u64>(), trips in 4usize..12) {
        let built = periodic_tape(seed, trips, Break::None, seed % 2 == 0);
        let rolled = opt::reroll(&built).unwrap();
        for (x, p) in random_points(seed ^ 5, &built, 6) {
            let (Some(a), Some(b)) = (gradient(&built, &x, &p), gradient(&rolled, &x, &p)) else {
                continue;
            };
            for (k, (a, b)) in a.iter().zip(&b).enumerate() {
                if !(a.is_finite() && b.is_finite()) {
                    continue;
                }
                let close = (a - b).abs() <= 1e-10 * a.abs().max(b.abs());
                prop_assert!(same(*a, *b) || a == b || close, "output {k}: {a:?} vs {b:?}\n{built}\n{rolled}");
            }
        }
    }
}

/// A gradient tape (reverse transform of a small dense network, 5,103
/// instructions after the exact passes) that rerolling once changed: found
/// by `tapejit bench --scaling` (mlp family, m = 301).
#[test]
fn the_dense_network_gradient_rolls_exactly() {
    let text = include_str!("fixtures/reroll_dense_gradient.tape");
    let tape: Tape = text.parse().unwrap();
    let rolled = opt::reroll(&tape).unwrap();
    // The point it was found at: the network's weights and data.
    let mut rng = tapejit::rng::SplitMix64::new(3);
    let w: Vec<f64> = (0..tape.n_inputs())
        .map(|_| rng.uniform(-0.3, 0.3))
        .collect();
    let p: Vec<f64> = (0..tape.n_params())
        .map(|_| rng.uniform(-1.0, 1.0))
        .collect();
    let mut points = random_points(17, &tape, 8);
    points.push((w, p));
    assert_exact(&tape, &rolled, &points);
}
