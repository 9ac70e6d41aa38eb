//! The tape IR: one flat SSA list of scalar `f64` instructions.
//!
//! A value is the index of the instruction that made it, so an operand always
//! names an earlier instruction. Inputs, parameters and constants are
//! instructions too; guards are instructions whose result is never used.
//! Each instruction is 16 bytes (an op byte and three `u32` slots; a constant
//! keeps its 64 bits in two slots), so a tape costs 16 bytes per scalar op,
//! constants included.
//!
//! Structured loops enter as one more op ([`Op::Loop`]) whose slot indexes
//! the tape's loop table; each [`Loop`] holds its body as a tape of its own
//! (see [`loops`] for carried values, invariants, strided reads and writes,
//! and the arrays they address).

pub mod flush;
pub mod loops;
mod op;
pub mod random;
pub mod semantics;
pub mod text;
mod verify;

pub use loops::{Access, ArrayId, Buffer, Checkpoint, Loop, Output, Write, WriteMode};
pub use op::{Op, Shape, ALL_OPS, STRUCTURE_OPS};

/// Index of the instruction that produced a value.
pub type Value = u32;

/// One instruction: an op and three argument slots whose meaning the op's
/// [`Shape`] gives. Unused slots are zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Inst {
    /// What it computes.
    pub op: Op,
    /// Operands or immediates, see [`Op::shape`].
    pub args: [u32; 3],
}

impl Inst {
    /// Active input number `index`.
    pub fn input(index: u32) -> Inst {
        Inst {
            op: Op::Input,
            args: [index, 0, 0],
        }
    }
    /// Passive parameter number `index`.
    pub fn param(index: u32) -> Inst {
        Inst {
            op: Op::Param,
            args: [index, 0, 0],
        }
    }
    /// A constant. A NaN keeps its sign (observable through `copysign` and
    /// `signbit`) but not its payload (not part of the semantics), so that
    /// the text form (`NaN` or `-NaN`) parses back to an equal tape.
    pub fn constant(c: f64) -> Inst {
        let c = if c.is_nan() { f64::NAN.copysign(c) } else { c };
        let bits = c.to_bits();
        Inst {
            op: Op::Const,
            args: [bits as u32, (bits >> 32) as u32, 0],
        }
    }
    /// A one-operand op.
    pub fn unary(op: Op, a: Value) -> Inst {
        debug_assert_eq!(op.shape(), Shape::Values(1));
        Inst {
            op,
            args: [a, 0, 0],
        }
    }
    /// A two-operand op.
    pub fn binary(op: Op, a: Value, b: Value) -> Inst {
        debug_assert_eq!(op.shape(), Shape::Values(2));
        Inst {
            op,
            args: [a, b, 0],
        }
    }
    /// A three-operand op.
    pub fn ternary(op: Op, a: Value, b: Value, c: Value) -> Inst {
        debug_assert_eq!(op.shape(), Shape::Values(3));
        Inst {
            op,
            args: [a, b, c],
        }
    }
    /// `a.powi(n)`.
    pub fn powi(a: Value, n: i32) -> Inst {
        Inst {
            op: Op::PowI,
            args: [a, n as u32, 0],
        }
    }
    /// Runs loop `index` of the tape's loop table.
    pub fn run_loop(index: u32) -> Inst {
        Inst {
            op: Op::Loop,
            args: [index, 0, 0],
        }
    }
    /// The final value of carried value `k` of loop instruction `lp`.
    pub fn loop_out(lp: Value, k: u32) -> Inst {
        Inst {
            op: Op::LoopOut,
            args: [lp, k, 0],
        }
    }
    /// Element `index` of array `array`.
    pub fn elem(array: ArrayId, index: u32) -> Inst {
        Inst {
            op: Op::Elem,
            args: [array, index, 0],
        }
    }
    /// `array[index] = v`.
    pub fn store(array: ArrayId, index: u32, v: Value) -> Inst {
        Inst {
            op: Op::Store,
            args: [array, index, v],
        }
    }
    /// A guard that condition `cond` is true (`expect`) or false.
    pub fn guard(cond: Value, expect: bool) -> Inst {
        Inst {
            op: Op::Guard,
            args: [cond, expect as u32, 0],
        }
    }

    /// The value operands held in the argument slots (empty for leaves and
    /// constants; a loop's operands are in its [`Loop`] entry, see
    /// [`Tape::uses`]).
    pub fn operands(&self) -> &[Value] {
        match self.op.shape() {
            Shape::ArrayStore => &self.args[2..3],
            _ => &self.args[..self.op.arity()],
        }
    }

    /// The constant of a [`Op::Const`].
    pub fn const_value(&self) -> f64 {
        f64::from_bits(self.args[0] as u64 | (self.args[1] as u64) << 32)
    }

    /// The exponent of a [`Op::PowI`].
    pub fn powi_exponent(&self) -> i32 {
        self.args[1] as i32
    }

    /// The expectation of a [`Op::Guard`].
    pub fn guard_expect(&self) -> bool {
        self.args[1] != 0
    }
}

/// A traced function as data: instructions, outputs and the counts of inputs
/// and parameters it reads.
///
/// Build one by tracing ([`crate::trace_scalar`]), by parsing its text form
/// (`"...".parse::<Tape>()`), or instruction by instruction with
/// [`Tape::push`]; check it with [`Tape::verify`] before evaluating it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tape {
    insts: Vec<Inst>,
    outputs: Vec<Output>,
    /// Output numbers (`outputs`' lengths summed), kept with `outputs` so
    /// that [`Tape::n_outputs`] is O(1): evaluations ask for it on every
    /// call, and summing 110 Jacobian outputs cost half a small call.
    n_output_numbers: usize,
    n_inputs: usize,
    n_params: usize,
    loops: Vec<Loop>,
    arrays: Vec<u32>,
    checkpoints: Vec<Checkpoint>,
}

impl Tape {
    /// An empty tape reading `n_inputs` inputs and `n_params` parameters.
    pub fn new(n_inputs: usize, n_params: usize) -> Tape {
        Tape {
            insts: Vec::new(),
            outputs: Vec::new(),
            n_output_numbers: 0,
            n_inputs,
            n_params,
            loops: Vec::new(),
            arrays: Vec::new(),
            checkpoints: Vec::new(),
        }
    }

    /// Appends an instruction and returns its value.
    pub fn push(&mut self, inst: Inst) -> Value {
        let v = self.insts.len() as Value;
        self.insts.push(inst);
        v
    }

    /// Marks `v` as the next output.
    pub fn push_output(&mut self, v: Value) {
        self.push_output_entry(Output::Value(v));
    }

    /// Appends an output entry (a value or an array slice).
    pub fn push_output_entry(&mut self, o: Output) {
        self.n_output_numbers += o.len();
        self.outputs.push(o);
    }

    /// Adds `lp` to the loop table and appends the instruction running it.
    pub fn push_loop(&mut self, lp: Loop) -> Value {
        self.loops.push(lp);
        self.push(Inst::run_loop(self.loops.len() as u32 - 1))
    }

    /// Adds an array of `len` elements (root tapes only) and returns its number.
    pub fn add_array(&mut self, len: u32) -> ArrayId {
        self.arrays.push(len);
        self.arrays.len() as ArrayId - 1
    }

    /// The loop table.
    pub fn loops(&self) -> &[Loop] {
        &self.loops
    }

    /// The loop an [`Op::Loop`] instruction runs.
    pub fn loop_of(&self, inst: &Inst) -> &Loop {
        debug_assert_eq!(inst.op, Op::Loop);
        &self.loops[inst.args[0] as usize]
    }

    /// The lengths of the arrays.
    pub fn arrays(&self) -> &[u32] {
        &self.arrays
    }

    /// The values instruction `i` reads: its operands, and for a loop its
    /// initial carried values and invariants (its checkpoint's too).
    pub fn uses(&self, i: usize) -> impl Iterator<Item = Value> + '_ {
        let inst = &self.insts[i];
        let none: (&[Value], &[Value]) = (&[], &[]);
        let (init, inv) = if inst.op == Op::Loop {
            let lp = self.loop_of(inst);
            (&lp.init[..], &lp.invariants[..])
        } else {
            none
        };
        let (cp_init, cp_inv) = match (inst.op == Op::Loop).then(|| self.checkpoint_of(inst)) {
            Some(Some(cp)) => (&cp.init[..], &cp.invariants[..]),
            _ => none,
        };
        inst.operands()
            .iter()
            .chain(init)
            .chain(inv)
            .chain(cp_init)
            .chain(cp_inv)
            .copied()
    }

    /// Whether the tape (or a nested body) contains a loop or an array access.
    pub fn has_structure(&self) -> bool {
        !self.loops.is_empty()
            || !self.arrays.is_empty()
            || self
                .insts
                .iter()
                .any(|i| matches!(i.op, Op::Elem | Op::Store))
    }

    /// Instructions executed by one evaluation, loop bodies counted once per
    /// iteration.
    pub fn work(&self) -> u64 {
        self.insts.len() as u64 + self.loops.iter().map(Loop::work).sum::<u64>()
    }

    /// Instructions in the tape and in every loop body, each counted once:
    /// what tracing, optimizing and compiling cost grows with.
    pub fn static_len(&self) -> usize {
        self.insts.len()
            + self
                .loops
                .iter()
                .map(|l| l.body.static_len())
                .sum::<usize>()
    }

    /// Number of loops, nested ones included.
    pub fn n_loops(&self) -> usize {
        self.loops.len() + self.loops.iter().map(|l| l.body.n_loops()).sum::<usize>()
    }

    /// The instructions, in evaluation order.
    pub fn insts(&self) -> &[Inst] {
        &self.insts
    }

    /// The output entries, in order.
    pub fn outputs(&self) -> &[Output] {
        &self.outputs
    }

    /// The output values when every output is a scalar value (`None` if one is
    /// an array slice).
    pub fn output_values(&self) -> Option<Vec<Value>> {
        self.outputs.iter().map(Output::value).collect()
    }

    /// Number of active inputs.
    pub fn n_inputs(&self) -> usize {
        self.n_inputs
    }

    /// Number of passive parameters.
    pub fn n_params(&self) -> usize {
        self.n_params
    }

    /// Number of output numbers (an array slice counts its elements).
    #[inline]
    pub fn n_outputs(&self) -> usize {
        debug_assert_eq!(
            self.n_output_numbers,
            self.outputs.iter().map(Output::len).sum::<usize>()
        );
        self.n_output_numbers
    }

    /// Number of instructions.
    pub fn len(&self) -> usize {
        self.insts.len()
    }

    /// Whether there are no instructions.
    pub fn is_empty(&self) -> bool {
        self.insts.is_empty()
    }

    /// Number of guards.
    pub fn n_guards(&self) -> usize {
        self.insts.iter().filter(|i| i.op == Op::Guard).count()
    }

    /// Bytes the tape holds (instructions, outputs, loop bodies), for memory reports.
    pub fn heap_bytes(&self) -> usize {
        self.insts.capacity() * std::mem::size_of::<Inst>()
            + self.outputs.capacity() * std::mem::size_of::<Output>()
            + self
                .loops
                .iter()
                .map(|l| l.body.heap_bytes() + std::mem::size_of::<Loop>())
                .sum::<usize>()
    }

    /// Assembles a tape with loops and arrays from its parts (unverified).
    pub fn from_structured(
        insts: Vec<Inst>,
        outputs: Vec<Output>,
        n_inputs: usize,
        n_params: usize,
        loops: Vec<Loop>,
        arrays: Vec<u32>,
    ) -> Tape {
        Tape {
            n_output_numbers: outputs.iter().map(Output::len).sum(),
            insts,
            outputs,
            n_inputs,
            n_params,
            loops,
            arrays,
            checkpoints: Vec::new(),
        }
    }

    /// The tape with `checkpoints` as its checkpoint table (see
    /// [`Tape::checkpoint_of`]).
    pub fn with_checkpoints(mut self, checkpoints: Vec<Checkpoint>) -> Tape {
        self.checkpoints = checkpoints;
        self
    }

    /// The checkpoint table: the schedules of checkpointed loops, each named
    /// by one `loop` instruction (`args[1]` is its number plus one; zero for
    /// a loop without).
    pub fn checkpoints(&self) -> &[Checkpoint] {
        &self.checkpoints
    }

    /// The checkpoint of an [`Op::Loop`] instruction, if it has one.
    pub fn checkpoint_of(&self, inst: &Inst) -> Option<&Checkpoint> {
        debug_assert_eq!(inst.op, Op::Loop);
        inst.args[1]
            .checked_sub(1)
            .and_then(|k| self.checkpoints.get(k as usize))
    }

    /// Takes the checkpoint table out (to rebuild the tape around it).
    pub(crate) fn take_checkpoints(&mut self) -> Vec<Checkpoint> {
        std::mem::take(&mut self.checkpoints)
    }

    /// Takes the tape apart: instructions, outputs, loops and arrays.
    pub(crate) fn into_parts(self) -> (Vec<Inst>, Vec<Output>, Vec<Loop>, Vec<u32>) {
        (self.insts, self.outputs, self.loops, self.arrays)
    }

    /// Describes the condition guard instruction `instr` checks, in words, for error messages.
    pub fn describe_guard(&self, instr: Value) -> String {
        let Some(&g) = self.insts.get(instr as usize).filter(|g| g.op == Op::Guard) else {
            return format!("%{instr} is not a guard of this tape");
        };
        let Some(cond) = self.insts.get(g.args[0] as usize) else {
            return format!("guard %{instr} names a missing condition");
        };
        let expr = text::inst_expr(cond);
        format!(
            "%{} = {} was {} at trace time",
            g.args[0],
            expr,
            g.guard_expect()
        )
    }

    /// Ordinal of guard instruction `instr` among all guards.
    pub fn guard_ordinal(&self, instr: Value) -> usize {
        self.insts[..(instr as usize).min(self.insts.len())]
            .iter()
            .filter(|i| i.op == Op::Guard)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inst_is_16_bytes() {
        assert_eq!(std::mem::size_of::<Inst>(), 16);
    }

    #[test]
    fn constants_keep_every_bit() {
        for c in [
            0.0,
            -0.0,
            1.5,
            f64::MIN_POSITIVE / 4.0,
            f64::INFINITY,
            -1e308,
        ] {
            assert_eq!(Inst::constant(c).const_value().to_bits(), c.to_bits());
        }
        assert!(Inst::constant(f64::NAN).const_value().is_nan());
        assert_eq!(Inst::powi(3, -7).powi_exponent(), -7);
    }

    /// `n_outputs` is kept, not summed: every way of making outputs counts.
    #[test]
    fn n_outputs_counts_slices_on_every_path() {
        let slice = Output::Slice {
            array: 0,
            start: 1,
            len: 3,
        };
        let mut t = Tape::new(1, 0);
        let x = t.push(Inst::input(0));
        t.add_array(4);
        assert_eq!(t.n_outputs(), 0);
        t.push_output(x);
        t.push_output_entry(slice);
        t.push_output_entry(Output::Value(x));
        assert_eq!(t.n_outputs(), 5);
        let (insts, outputs, loops, arrays) = t.clone().into_parts();
        let rebuilt = Tape::from_structured(insts, outputs, 1, 0, loops, arrays);
        assert_eq!(rebuilt.n_outputs(), 5);
        assert_eq!(rebuilt, t);
        let parsed: Tape = t.to_string().parse().unwrap();
        assert_eq!(parsed.n_outputs(), 5);
        assert_eq!(Tape::default().n_outputs(), 0);
    }
}
