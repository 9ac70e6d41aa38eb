//! Random tapes for differential tests, fuzzing and compile-time studies.
//!
//! Every generator draws its decisions from a [`Choices`] source, so the same
//! code serves seeded tests ([`SplitMix64`], see [`random_tape`]) and
//! coverage-guided fuzzing (the `fuzz/` crate implements [`Choices`] over
//! `arbitrary::Unstructured`, so that libFuzzer's byte mutations become
//! small changes of the tape).
//!
//! - [`random_tape`] / [`random_tape_with`]: every op, guards, special
//!   constants (NaN, ±inf, ±0, subnormals), operands drawn mostly from recent
//!   values so that tapes are deep as well as wide, and repeated instructions
//!   (common subexpressions and near misses of them).
//! - [`arbitrary_tape`]: the same, with the shape drawn too (0 to 4 inputs
//!   and parameters, 0 to 5 outputs, guards on any value, tapes of a single
//!   instruction up to a given length).
//! - [`random_value`] / [`random_inputs`]: evaluation points, mixing
//!   ordinary numbers with the IEEE special values of either sign and
//!   arbitrary bit patterns.
//! - [`smooth_tape`]: well-conditioned expressions for checking derivatives
//!   against finite differences: every op is admitted only where it is smooth
//!   on the whole input box, by interval arithmetic.

use super::{Inst, Op, Shape, Tape, Value, ALL_OPS};
use crate::rng::SplitMix64;

pub mod loops;

/// A source of random decisions for the generators.
///
/// Implemented for [`SplitMix64`] (seeded tests); the fuzz crate implements
/// it for `arbitrary::Unstructured`. A source that runs dry keeps answering
/// (`0`, `lo`, ...) and reports [`Choices::exhausted`], at which point the
/// generators stop adding instructions.
pub trait Choices {
    /// A number in `0..n` (`0` when `n` is 0 or 1).
    fn below(&mut self, n: usize) -> usize;
    /// A number in `[lo, hi)` (`lo` when `lo == hi`).
    fn uniform(&mut self, lo: f64, hi: f64) -> f64;
    /// 64 arbitrary bits.
    fn bits(&mut self) -> u64;
    /// Whether the source has run dry (a fuzz input fully consumed).
    fn exhausted(&self) -> bool {
        false
    }
    /// True with probability `1 / n` (always for `n <= 1`).
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

impl Choices for SplitMix64 {
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        SplitMix64::uniform(self, lo, hi)
    }
    fn bits(&mut self) -> u64 {
        self.next_u64()
    }
}

/// Shape of a random tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RandomTapeConfig {
    /// Instructions after the inputs, parameters and seed constants.
    pub len: usize,
    /// Active inputs.
    pub n_inputs: usize,
    /// Passive parameters.
    pub n_params: usize,
    /// Outputs (the last values, then random ones).
    pub n_outputs: usize,
    /// One guard in this many instructions on average (0: none).
    pub guard_every: usize,
}

impl Default for RandomTapeConfig {
    fn default() -> Self {
        RandomTapeConfig {
            len: 64,
            n_inputs: 3,
            n_params: 1,
            n_outputs: 2,
            guard_every: 16,
        }
    }
}

/// Constants worth meeting: the IEEE special values and some ordinary ones.
pub const SPECIAL_VALUES: [f64; 14] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    -2.5,
    2.0,
    1e-310,
    1e300,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    f64::MIN_POSITIVE,
    3.7,
];

/// A random verified tape: the seeded form of [`random_tape_with`].
pub fn random_tape(seed: u64, config: &RandomTapeConfig) -> Tape {
    random_tape_with(&mut SplitMix64::new(seed), config)
}

/// A random verified tape of the given shape, with every decision drawn
/// from `choices`: the inputs and parameters, three seed constants, then
/// `config.len` instructions (fewer if `choices` runs dry).
pub fn random_tape_with<C: Choices + ?Sized>(choices: &mut C, config: &RandomTapeConfig) -> Tape {
    generate(
        choices,
        config,
        Knobs {
            seed_constants: 3,
            guard_any_value: false,
        },
    )
}

/// A random verified tape whose shape is drawn from `choices` too: 0 to 4
/// inputs and parameters, 0 to 3 seed constants, up to `max_len` further
/// instructions (but at least one instruction in all), 0 to 5 outputs,
/// guards on compares and, now and then, on any value.
///
/// With `max_len >= 1` every size from a single instruction up is possible.
pub fn arbitrary_tape<C: Choices + ?Sized>(choices: &mut C, max_len: usize) -> Tape {
    let n_inputs = choices.below(5);
    let n_params = choices.below(5);
    let seed_constants = choices.below(4);
    let guard_every = [0, 2, 8, 16, 64][choices.below(5)];
    let n_outputs = choices.below(6);
    // Short tapes most of the time, tiny and long ones sometimes.
    let len = match choices.below(4) {
        0 => choices.below(max_len.saturating_add(1)),
        1 => choices.below(max_len.min(3).saturating_add(1)),
        _ => choices.below(max_len.min(48).saturating_add(1)),
    };
    let config = RandomTapeConfig {
        len,
        n_inputs,
        n_params,
        n_outputs,
        guard_every,
    };
    generate(
        choices,
        &config,
        Knobs {
            seed_constants,
            guard_any_value: true,
        },
    )
}

/// What [`random_tape_with`] keeps fixed and [`arbitrary_tape`] varies.
struct Knobs {
    seed_constants: usize,
    guard_any_value: bool,
}

/// A constant: one of [`SPECIAL_VALUES`] or an ordinary number.
fn constant<C: Choices + ?Sized>(c: &mut C) -> f64 {
    if c.below(2) == 0 {
        SPECIAL_VALUES[c.below(SPECIAL_VALUES.len())]
    } else {
        c.uniform(-4.0, 4.0)
    }
}

fn generate<C: Choices + ?Sized>(c: &mut C, config: &RandomTapeConfig, knobs: Knobs) -> Tape {
    let mut tape = Tape::new(config.n_inputs, config.n_params);
    let mut values: Vec<Value> = Vec::new();
    for i in 0..config.n_inputs {
        values.push(tape.push(Inst::input(i as u32)));
    }
    for i in 0..config.n_params {
        values.push(tape.push(Inst::param(i as u32)));
    }
    for _ in 0..knobs.seed_constants {
        let k = constant(c);
        values.push(tape.push(Inst::constant(k)));
    }
    if values.is_empty() {
        let k = constant(c);
        values.push(tape.push(Inst::constant(k)));
    }
    let ops: Vec<Op> = ALL_OPS
        .iter()
        .copied()
        .filter(|op| !matches!(op, Op::Input | Op::Param | Op::Guard))
        .collect();
    let mut compares: Vec<Value> = Vec::new();
    for _ in 0..config.len {
        if c.exhausted() {
            break;
        }
        if config.guard_every > 0 && !compares.is_empty() && c.below(config.guard_every) == 0 {
            let cond = if knobs.guard_any_value && c.one_in(4) {
                values[c.below(values.len())]
            } else {
                compares[c.below(compares.len())]
            };
            tape.push(Inst::guard(cond, c.below(4) != 0));
            continue;
        }
        // Mostly recent operands (deep chains), sometimes any earlier one.
        let pick = |c: &mut C| {
            let n = values.len();
            if c.below(4) == 0 {
                values[c.below(n)]
            } else {
                values[n - 1 - c.below(n.min(8))]
            }
        };
        // Sometimes repeat an earlier instruction, as is or with its first two
        // operands swapped: common subexpressions, and near misses of them.
        let earlier = values[c.below(values.len())];
        let again = tape.insts()[earlier as usize];
        if again.op.arity() >= 2 && c.below(8) == 0 {
            let mut inst = again;
            if c.below(2) == 0 {
                inst.args.swap(0, 1);
            }
            values.push(tape.push(inst));
            continue;
        }
        let op = ops[c.below(ops.len())];
        let inst = match op.shape() {
            Shape::Const => Inst::constant(constant(c)),
            Shape::ValueImm => {
                let n = match c.below(8) {
                    0 => i32::MIN,
                    1 => i32::MAX,
                    _ => c.below(13) as i32 - 6,
                };
                Inst::powi(pick(c), n)
            }
            Shape::Values(1) => Inst::unary(op, pick(c)),
            Shape::Values(2) => Inst::binary(op, pick(c), pick(c)),
            Shape::Values(_) => Inst::ternary(op, pick(c), pick(c), pick(c)),
            Shape::Leaf | Shape::Loop | Shape::ArrayElem | Shape::ArrayStore => {
                unreachable!("leaves and structural ops are not drawn")
            }
        };
        let v = tape.push(inst);
        values.push(v);
        if op.is_compare() {
            compares.push(v);
        }
    }
    for k in 0..config.n_outputs {
        let v = if k < values.len() && k % 2 == 0 {
            values[values.len() - 1 - k]
        } else {
            values[c.below(values.len())]
        };
        tape.push_output(v);
    }
    debug_assert!(tape.verify().is_ok());
    tape
}

/// An evaluation input: an ordinary number in `[-3, 3)` most of the time,
/// otherwise one of [`SPECIAL_VALUES`] with either sign (so `-NaN`, `-1e-310`
/// too) or an arbitrary bit pattern (NaN payloads, huge and tiny numbers).
pub fn random_value<C: Choices + ?Sized>(c: &mut C) -> f64 {
    match c.below(8) {
        0 | 1 => {
            let v = SPECIAL_VALUES[c.below(SPECIAL_VALUES.len())];
            if c.one_in(3) {
                -v
            } else {
                v
            }
        }
        2 => f64::from_bits(c.bits()),
        _ => c.uniform(-3.0, 3.0),
    }
}

/// Inputs and parameters for `tape`, each drawn by [`random_value`].
pub fn random_inputs<C: Choices + ?Sized>(c: &mut C, tape: &Tape) -> (Vec<f64>, Vec<f64>) {
    let x = (0..tape.n_inputs()).map(|_| random_value(c)).collect();
    let p = (0..tape.n_params()).map(|_| random_value(c)).collect();
    (x, p)
}

/// `count` seeded evaluation points (inputs, parameters) for `tape`, drawn
/// with [`random_inputs`].
pub fn random_points(seed: u64, tape: &Tape, count: usize) -> Vec<(Vec<f64>, Vec<f64>)> {
    let mut rng = SplitMix64::new(seed);
    (0..count).map(|_| random_inputs(&mut rng, tape)).collect()
}

/// Shape of a [`smooth_tape`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmoothConfig {
    /// Instructions after the inputs and parameters (fewer if the choices run dry).
    pub len: usize,
    /// Active inputs, each ranging over [`SMOOTH_BOX`].
    pub n_inputs: usize,
    /// Passive parameters (fixed values drawn with the tape).
    pub n_params: usize,
    /// Outputs (the last value, then random ones).
    pub n_outputs: usize,
    /// One guard in this many instructions on average (0: none). Guards
    /// hold on the whole box.
    pub guard_every: usize,
}

impl Default for SmoothConfig {
    fn default() -> Self {
        SmoothConfig {
            len: 24,
            n_inputs: 3,
            n_params: 1,
            n_outputs: 2,
            guard_every: 12,
        }
    }
}

/// Every input of a [`smooth_tape`] may range over `[-SMOOTH_BOX, SMOOTH_BOX]`.
pub const SMOOTH_BOX: f64 = 1.0;

/// Bound on the magnitude of every value of a [`smooth_tape`] over the box.
pub const SMOOTH_BOUND: f64 = 16.0;

/// Distance from every singularity and kink that [`smooth_tape`] keeps
/// (zero for `recip`, `ln`, `abs`, ..., `±1` for `asin`, ...): it bounds the
/// local derivatives, so the expressions are well conditioned.
pub const SMOOTH_MARGIN: f64 = 0.25;

/// A well-conditioned random expression and the parameter values it was
/// built for.
#[derive(Clone, Debug, PartialEq)]
pub struct SmoothTape {
    /// The tape.
    pub tape: Tape,
    /// Its parameters (passive, so fixed).
    pub params: Vec<f64>,
}

/// A closed interval enclosing a value over the whole input box.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Interval {
    lo: f64,
    hi: f64,
}

impl Interval {
    fn point(v: f64) -> Interval {
        Interval { lo: v, hi: v }
    }
    /// `[min, max]` of the given values, widened outwards to absorb the
    /// rounding of the functions that produced them (libm's are within an
    /// ulp or two).
    fn hull(values: &[f64]) -> Interval {
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let widen = |v: f64| 1e-12 * (1.0 + v.abs());
        Interval {
            lo: lo - widen(lo),
            hi: hi + widen(hi),
        }
    }
    /// Image under a function monotone on the interval.
    fn monotone(self, f: impl Fn(f64) -> f64) -> Interval {
        Interval::hull(&[f(self.lo), f(self.hi)])
    }
    fn is_point(self) -> bool {
        self.lo == self.hi
    }
    fn mag(self) -> f64 {
        self.lo.abs().max(self.hi.abs())
    }
    /// Whether the interval keeps [`SMOOTH_MARGIN`] away from zero.
    fn away_from_zero(self) -> bool {
        self.lo >= SMOOTH_MARGIN || self.hi <= -SMOOTH_MARGIN
    }
    fn within(self, lo: f64, hi: f64) -> bool {
        lo <= self.lo && self.hi <= hi
    }
    /// The truth value of a condition if it is the same on the whole interval.
    fn truth(self) -> Option<bool> {
        if self.lo > 0.0 || self.hi < 0.0 {
            Some(true)
        } else if self.lo == 0.0 && self.hi == 0.0 {
            Some(false)
        } else {
            None
        }
    }
    fn add(self, o: Interval) -> Interval {
        Interval::hull(&[self.lo + o.lo, self.hi + o.hi])
    }
    fn mul(self, o: Interval) -> Interval {
        Interval::hull(&[
            self.lo * o.lo,
            self.lo * o.hi,
            self.hi * o.lo,
            self.hi * o.hi,
        ])
    }
    fn neg(self) -> Interval {
        Interval {
            lo: -self.hi,
            hi: -self.lo,
        }
    }
    /// `a < b` for every `a` here and `b` in `o`, with a margin.
    fn below(self, o: Interval) -> bool {
        self.hi + SMOOTH_MARGIN <= o.lo
    }
    /// Whether a non-decreasing step function is constant on the interval,
    /// bit for bit: `trunc` is `-0.0` left of zero and `0.0` right of it,
    /// which `same`, `copysign` and division tell apart.
    fn flat_under(self, f: impl Fn(f64) -> f64) -> bool {
        f(self.lo).to_bits() == f(self.hi).to_bits()
    }
}

/// The enclosure of `op` applied to operands enclosed by `args`, or `None`
/// where the op is not smooth with bounded derivatives on all of them, or
/// could leave [`SMOOTH_BOUND`].
fn smooth_image(op: Op, args: &[Interval], n: i32) -> Option<Interval> {
    use Op::*;
    let a = args[0];
    let m = SMOOTH_MARGIN;
    let r = match op {
        Neg => a.neg(),
        Recip if a.away_from_zero() => a.monotone(f64::recip),
        Sqrt if a.lo >= m => a.monotone(f64::sqrt),
        Cbrt if a.away_from_zero() => a.monotone(f64::cbrt),
        Exp if a.hi <= 2.5 => a.monotone(f64::exp),
        Exp2 if a.hi <= 3.5 => a.monotone(f64::exp2),
        ExpM1 if a.hi <= 2.5 => a.monotone(f64::exp_m1),
        Ln if a.lo >= m => a.monotone(f64::ln),
        Log2 if a.lo >= m => a.monotone(f64::log2),
        Log10 if a.lo >= m => a.monotone(f64::log10),
        Ln1p if a.lo >= m - 1.0 => a.monotone(f64::ln_1p),
        Sin | Cos => Interval::hull(&[-1.0, 1.0]),
        Tan if a.within(-1.2, 1.2) => a.monotone(f64::tan),
        Asin if a.within(-0.75, 0.75) => a.monotone(f64::asin),
        Acos if a.within(-0.75, 0.75) => a.monotone(f64::acos),
        Atanh if a.within(-0.75, 0.75) => a.monotone(f64::atanh),
        Atan => a.monotone(f64::atan),
        Sinh if a.within(-2.5, 2.5) => a.monotone(f64::sinh),
        Cosh if a.within(-2.5, 2.5) => Interval::hull(&[1.0, a.mag().cosh()]),
        Tanh => a.monotone(f64::tanh),
        Asinh => a.monotone(f64::asinh),
        Acosh if a.lo >= 1.0 + m => a.monotone(f64::acosh),
        Abs if a.away_from_zero() => a.monotone(f64::abs),
        Signum | SignBit | Classify if a.away_from_zero() => {
            Interval::point(crate::ir::semantics::unary(op, a.lo))
        }
        Floor if a.flat_under(f64::floor) => Interval::point(a.lo.floor()),
        Ceil if a.flat_under(f64::ceil) => Interval::point(a.hi.ceil()),
        Round if a.flat_under(f64::round) => Interval::point(a.lo.round()),
        Trunc if a.flat_under(f64::trunc) => Interval::point(a.lo.trunc()),
        PowI if n >= 0 || a.away_from_zero() => {
            let big = if n >= 0 {
                a.mag()
            } else {
                1.0 / a.lo.abs().min(a.hi.abs())
            };
            let bound = big.powi(n.abs());
            if n >= 0 && n % 2 == 0 {
                Interval::hull(&[0.0, bound])
            } else {
                Interval::hull(&[-bound, bound])
            }
        }
        Add => a.add(args[1]),
        Sub => a.add(args[1].neg()),
        Mul => a.mul(args[1]),
        Div if args[1].away_from_zero() => a.mul(args[1].monotone(f64::recip)),
        Rem if args[1].away_from_zero() => {
            // a % b = a - trunc(a / b) * b: smooth while trunc(a / b) is constant.
            let q = a.mul(args[1].monotone(f64::recip));
            if q.lo.trunc() != q.hi.trunc() {
                return None;
            }
            a.add(args[1].mul(Interval::point(q.lo.trunc())).neg())
        }
        PowF if a.lo >= m && args[1].within(-3.0, 3.0) => {
            let e = args[1].mul(a.monotone(f64::ln));
            if e.hi > 2.5 {
                return None;
            }
            e.monotone(f64::exp)
        }
        // Away from the origin, and off the branch cut (y = 0, x < 0).
        Atan2 if a.away_from_zero() || args[1].lo >= m => Interval::hull(&[-3.2, 3.2]),
        Hypot if a.away_from_zero() || args[1].away_from_zero() => {
            Interval::hull(&[0.0, a.mag().hypot(args[1].mag())])
        }
        Min | Max if a.below(args[1]) || args[1].below(a) => {
            let a_smaller = a.below(args[1]);
            if (op == Min) == a_smaller {
                a
            } else {
                args[1]
            }
        }
        Copysign if a.away_from_zero() && args[1].away_from_zero() => {
            if args[1].lo > 0.0 {
                a.monotone(f64::abs)
            } else {
                a.monotone(f64::abs).neg()
            }
        }
        Lt | Le | Eq | Ne | Same if a.below(args[1]) || args[1].below(a) => {
            let truth = match op {
                Lt | Le => a.below(args[1]),
                Ne => true,
                _ => false,
            };
            Interval::point(crate::ir::semantics::flag(truth))
        }
        Lt | Le | Eq | Ne | Same if a.is_point() && args[1].is_point() => {
            Interval::point(crate::ir::semantics::binary(op, a.lo, args[1].lo))
        }
        MulAdd => a.mul(args[1]).add(args[2]),
        Select => match a.truth() {
            Some(true) => args[1],
            Some(false) => args[2],
            None => return None,
        },
        _ => return None,
    };
    (r.lo.is_finite() && r.hi.is_finite() && r.mag() <= SMOOTH_BOUND).then_some(r)
}

/// A random expression that is smooth, with bounded values and bounded
/// local derivatives, wherever every input lies in `[-SMOOTH_BOX,
/// SMOOTH_BOX]`; guards on compares that are decided on the whole box (so
/// they always hold there).
///
/// Each value carries an interval enclosing it over the box; an op is
/// admitted only if it is smooth on its operands' intervals, keeping
/// [`SMOOTH_MARGIN`] from singularities and kinks (`ln` needs `>= 0.25`,
/// `asin` `|a| <= 0.75`, `min`/`max` operands apart by `0.25`, rounding ops
/// only where they are constant, ...) and if its result stays within
/// [`SMOOTH_BOUND`]. Every op of the instruction set can appear.
pub fn smooth_tape<C: Choices + ?Sized>(c: &mut C, config: &SmoothConfig) -> SmoothTape {
    let mut tape = Tape::new(config.n_inputs, config.n_params);
    let mut values: Vec<(Value, Interval)> = Vec::new();
    for i in 0..config.n_inputs {
        let v = tape.push(Inst::input(i as u32));
        values.push((v, Interval::hull(&[-SMOOTH_BOX, SMOOTH_BOX])));
    }
    let mut params = Vec::new();
    for i in 0..config.n_params {
        let p = c.uniform(-SMOOTH_BOX, SMOOTH_BOX);
        params.push(p);
        values.push((tape.push(Inst::param(i as u32)), Interval::point(p)));
    }
    let constant = |c: &mut C| match c.below(3) {
        0 => [0.5, 2.0, -1.0, 3.0, 0.0, -0.0, 1.0][c.below(7)],
        _ => c.uniform(-2.0, 2.0),
    };
    if values.is_empty() {
        let k = constant(c);
        values.push((tape.push(Inst::constant(k)), Interval::point(k)));
    }
    let ops: Vec<Op> = ALL_OPS
        .iter()
        .copied()
        .filter(|op| !matches!(op, Op::Input | Op::Param | Op::Guard))
        .collect();
    let mut conditions: Vec<(Value, bool)> = Vec::new();
    for _ in 0..config.len {
        if c.exhausted() {
            break;
        }
        if config.guard_every > 0 && !conditions.is_empty() && c.one_in(config.guard_every) {
            let (cond, truth) = conditions[c.below(conditions.len())];
            tape.push(Inst::guard(cond, truth));
            continue;
        }
        let pick = |c: &mut C| {
            let n = values.len();
            if c.one_in(4) {
                values[c.below(n)]
            } else {
                values[n - 1 - c.below(n.min(6))]
            }
        };
        // A few tries to find an op that is smooth on the operands drawn;
        // `tanh` (smooth, bounded, everywhere) is the fallback.
        let mut made = None;
        for _ in 0..6 {
            let op = ops[c.below(ops.len())];
            if op == Op::Const {
                let k = constant(c);
                made = Some((Inst::constant(k), Interval::point(k)));
                break;
            }
            let operands: Vec<(Value, Interval)> = (0..op.arity()).map(|_| pick(c)).collect();
            let intervals: Vec<Interval> = operands.iter().map(|o| o.1).collect();
            let n = c.below(8) as i32 - 3;
            if let Some(image) = smooth_image(op, &intervals, n) {
                let mut args = [0; 3];
                for (slot, o) in args.iter_mut().zip(&operands) {
                    *slot = o.0;
                }
                let inst = match op {
                    Op::PowI => Inst::powi(args[0], n),
                    _ => Inst { op, args },
                };
                made = Some((inst, image));
                break;
            }
        }
        let (inst, image) = made.unwrap_or_else(|| {
            let (v, a) = pick(c);
            (Inst::unary(Op::Tanh, v), a.monotone(f64::tanh))
        });
        let v = tape.push(inst);
        values.push((v, image));
        if let Some(truth) = image.truth().filter(|_| inst.op.is_compare()) {
            conditions.push((v, truth));
        }
    }
    for k in 0..config.n_outputs {
        let v = if k == 0 {
            values[values.len() - 1].0
        } else {
            values[c.below(values.len())].0
        };
        tape.push_output(v);
    }
    debug_assert!(tape.verify().is_ok());
    SmoothTape { tape, params }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn missing(seen: &std::collections::HashSet<Op>) -> Vec<Op> {
        ALL_OPS
            .iter()
            .copied()
            .filter(|o| !seen.contains(o))
            .collect()
    }

    #[test]
    fn random_tapes_verify_and_cover_every_op() {
        let mut seen = std::collections::HashSet::new();
        for seed in 0..50 {
            let t = random_tape(seed, &RandomTapeConfig::default());
            t.verify().unwrap();
            seen.extend(t.insts().iter().map(|i| i.op));
        }
        assert!(missing(&seen).is_empty(), "missing: {:?}", missing(&seen));
    }

    #[test]
    fn seeded_tapes_are_reproducible() {
        let config = RandomTapeConfig::default();
        assert_eq!(random_tape(9, &config), random_tape(9, &config));
        let a = random_tape_with(&mut SplitMix64::new(9), &config);
        assert_eq!(a, random_tape(9, &config));
    }

    #[test]
    fn arbitrary_tapes_span_one_instruction_to_the_maximum() {
        let mut rng = SplitMix64::new(1);
        let (mut shortest, mut longest) = (usize::MAX, 0);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..400 {
            let t = arbitrary_tape(&mut rng, 300);
            t.verify().unwrap();
            shortest = shortest.min(t.len());
            longest = longest.max(t.len());
            seen.extend(t.insts().iter().map(|i| i.op));
        }
        assert_eq!(shortest, 1);
        assert!(longest > 250, "{longest}");
        assert!(missing(&seen).is_empty(), "missing: {:?}", missing(&seen));
    }

    #[test]
    fn smooth_tapes_cover_every_op() {
        let mut rng = SplitMix64::new(3);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..400 {
            let config = SmoothConfig {
                len: 40,
                ..SmoothConfig::default()
            };
            let s = smooth_tape(&mut rng, &config);
            s.tape.verify().unwrap();
            seen.extend(s.tape.insts().iter().map(|i| i.op));
        }
        assert!(missing(&seen).is_empty(), "missing: {:?}", missing(&seen));
    }

    #[test]
    fn rounding_across_zero_is_not_constant() {
        // Found by grad_vs_fd: trunc on [-0.76, 0.76] is -0.0 then 0.0, and
        // `same` of it against -0.0 decided a guard that did not hold.
        let a = Interval::hull(&[-0.76, 0.76]);
        for op in [Op::Trunc, Op::Round, Op::Ceil] {
            assert_eq!(smooth_image(op, &[a], 0), None, "{op:?}");
        }
        let b = Interval::hull(&[0.1, 0.4]);
        assert_eq!(smooth_image(Op::Trunc, &[b], 0), Some(Interval::point(0.0)));
    }

    #[test]
    fn smooth_tapes_hold_their_guards_and_bounds_on_the_box() {
        let mut rng = SplitMix64::new(5);
        for _ in 0..200 {
            let s = smooth_tape(&mut rng, &SmoothConfig::default());
            let mut out = vec![0.0; s.tape.n_outputs()];
            let mut ws = Vec::new();
            for _ in 0..10 {
                let x: Vec<f64> = (0..s.tape.n_inputs())
                    .map(|_| rng.uniform(-SMOOTH_BOX, SMOOTH_BOX))
                    .collect();
                crate::interp::eval(&s.tape, &x, &s.params, &mut ws, &mut out)
                    .unwrap_or_else(|e| panic!("{e}\n{}", s.tape));
                for v in &ws[..s.tape.len()] {
                    assert!(v.abs() <= SMOOTH_BOUND * 1.01, "{v}\n{}", s.tape);
                }
            }
        }
    }
}
