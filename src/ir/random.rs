//! Random tapes for differential tests, fuzzing and compile-time studies:
//! every op, guards, special constants (NaN, ±inf, ±0, subnormals), with
//! operands drawn mostly from recent values so that tapes are deep as well
//! as wide.

use super::{Inst, Op, Shape, Tape, Value, ALL_OPS};
use crate::rng::SplitMix64;

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

/// A random verified tape.
pub fn random_tape(seed: u64, config: &RandomTapeConfig) -> Tape {
    let mut rng = SplitMix64::new(seed);
    let below = |n: usize, rng: &mut SplitMix64| (rng.next_u64() % n.max(1) as u64) as usize;
    let mut tape = Tape::new(config.n_inputs, config.n_params);
    let mut values: Vec<Value> = Vec::new();
    for i in 0..config.n_inputs {
        values.push(tape.push(Inst::input(i as u32)));
    }
    for i in 0..config.n_params {
        values.push(tape.push(Inst::param(i as u32)));
    }
    for _ in 0..3 {
        let c = if rng.next_u64() % 2 == 0 {
            SPECIAL_VALUES[below(SPECIAL_VALUES.len(), &mut rng)]
        } else {
            rng.uniform(-4.0, 4.0)
        };
        values.push(tape.push(Inst::constant(c)));
    }
    let ops: Vec<Op> = ALL_OPS
        .iter()
        .copied()
        .filter(|op| !matches!(op, Op::Input | Op::Param | Op::Guard))
        .collect();
    let mut compares: Vec<Value> = Vec::new();
    for _ in 0..config.len {
        if config.guard_every > 0
            && !compares.is_empty()
            && below(config.guard_every, &mut rng) == 0
        {
            let c = compares[below(compares.len(), &mut rng)];
            tape.push(Inst::guard(c, rng.next_u64() % 4 != 0));
            continue;
        }
        // Mostly recent operands (deep chains), sometimes any earlier one.
        let pick = |rng: &mut SplitMix64| {
            let n = values.len();
            if rng.next_u64() % 4 == 0 {
                values[below(n, rng)]
            } else {
                values[n - 1 - below(n.min(8), rng)]
            }
        };
        // Sometimes repeat an earlier instruction, as is or with its first two
        // operands swapped: common subexpressions, and near misses of them.
        let earlier = values[below(values.len(), &mut rng)];
        let again = tape.insts()[earlier as usize];
        if again.op.arity() >= 2 && rng.next_u64() % 8 == 0 {
            let mut inst = again;
            if rng.next_u64() % 2 == 0 {
                inst.args.swap(0, 1);
            }
            values.push(tape.push(inst));
            continue;
        }
        let op = ops[below(ops.len(), &mut rng)];
        let inst = match op.shape() {
            Shape::Const => {
                let c = if rng.next_u64() % 2 == 0 {
                    SPECIAL_VALUES[below(SPECIAL_VALUES.len(), &mut rng)]
                } else {
                    rng.uniform(-4.0, 4.0)
                };
                Inst::constant(c)
            }
            Shape::ValueImm => {
                let n = match rng.next_u64() % 8 {
                    0 => i32::MIN,
                    1 => i32::MAX,
                    _ => below(13, &mut rng) as i32 - 6,
                };
                Inst::powi(pick(&mut rng), n)
            }
            Shape::Values(1) => Inst::unary(op, pick(&mut rng)),
            Shape::Values(2) => Inst::binary(op, pick(&mut rng), pick(&mut rng)),
            Shape::Values(_) => Inst::ternary(op, pick(&mut rng), pick(&mut rng), pick(&mut rng)),
            Shape::Leaf => unreachable!("leaves are not drawn"),
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
            values[below(values.len(), &mut rng)]
        };
        tape.push_output(v);
    }
    debug_assert!(tape.verify().is_ok());
    tape
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_tapes_verify_and_cover_every_op() {
        let mut seen = std::collections::HashSet::new();
        for seed in 0..50 {
            let t = random_tape(seed, &RandomTapeConfig::default());
            t.verify().unwrap();
            seen.extend(t.insts().iter().map(|i| i.op));
        }
        assert_eq!(
            seen.len(),
            ALL_OPS.len(),
            "missing: {:?}",
            ALL_OPS
                .iter()
                .filter(|o| !seen.contains(o))
                .collect::<Vec<_>>()
        );
    }
}
