//! Building derived tapes: an instruction sink with shared constants.

use crate::ir::{Checkpoint, Inst, Loop, Op, Output, Tape, Value};
use std::collections::HashMap;

/// Appends instructions to a tape under construction, reusing constants.
pub(crate) struct Emitter {
    insts: Vec<Inst>,
    constants: HashMap<u64, Value>,
    /// The loop table of the tape under construction.
    pub loops: Vec<Loop>,
    /// Its checkpoint table.
    checkpoints: Vec<Checkpoint>,
}

impl Emitter {
    /// An emitter whose first instructions are `prefix` (its constants are reused).
    pub fn starting_with(prefix: &[Inst]) -> Emitter {
        let mut constants = HashMap::new();
        for (i, inst) in prefix.iter().enumerate() {
            if inst.op == Op::Const {
                constants
                    .entry(inst.const_value().to_bits())
                    .or_insert(i as Value);
            }
        }
        Emitter {
            insts: prefix.to_vec(),
            constants,
            loops: Vec::new(),
            checkpoints: Vec::new(),
        }
    }

    /// An emitter whose first instructions and loops are `tape`'s.
    pub fn starting_with_tape(tape: &Tape) -> Emitter {
        let mut e = Emitter::starting_with(tape.insts());
        e.loops = tape.loops().to_vec();
        e.checkpoints = tape.checkpoints().to_vec();
        e
    }

    /// Emits `lp`, run by the binomial schedule of `cp`.
    pub fn push_checkpointed_loop(&mut self, lp: Loop, cp: Checkpoint) -> Value {
        let v = self.push_loop(lp);
        self.checkpoints.push(cp);
        self.insts[v as usize].args[1] = self.checkpoints.len() as u32;
        v
    }

    /// Adds `lp` to the loop table and emits the instruction running it.
    pub fn push_loop(&mut self, lp: Loop) -> Value {
        self.loops.push(lp);
        self.insts.push(Inst::run_loop(self.loops.len() as u32 - 1));
        self.insts.len() as Value - 1
    }

    pub fn push(&mut self, inst: Inst) -> Value {
        if inst.op == Op::Const {
            return self.constant(inst.const_value());
        }
        self.insts.push(inst);
        self.insts.len() as Value - 1
    }

    /// Renumbers the `input` instruction `v` to read input `index` (for
    /// bodies whose input order is known only once they are built).
    pub fn renumber_input(&mut self, v: Value, index: u32) {
        debug_assert_eq!(self.insts[v as usize].op, Op::Input);
        self.insts[v as usize].args[0] = index;
    }

    /// The instructions emitted so far.
    pub fn insts(&self) -> &[Inst] {
        &self.insts
    }

    pub fn constant(&mut self, c: f64) -> Value {
        let insts = &mut self.insts;
        *self.constants.entry(c.to_bits()).or_insert_with(|| {
            insts.push(Inst::constant(c));
            insts.len() as Value - 1
        })
    }

    pub fn unary(&mut self, op: Op, a: Value) -> Value {
        self.push(Inst::unary(op, a))
    }

    /// `op(a, b)`, dropping exact identities (`x * 1`, `x + -0.0`, `x - 0.0`,
    /// `x / 1`), which seeds and unit partials produce often.
    pub fn binary(&mut self, op: Op, a: Value, b: Value) -> Value {
        let is = |v: Value, c: f64| {
            let inst = self.insts[v as usize];
            inst.op == Op::Const && inst.const_value().to_bits() == c.to_bits()
        };
        match op {
            Op::Mul if is(a, 1.0) => b,
            Op::Mul | Op::Div if is(b, 1.0) => a,
            Op::Add if is(a, -0.0) => b,
            Op::Add if is(b, -0.0) => a,
            Op::Sub if is(b, 0.0) => a,
            _ => self.push(Inst::binary(op, a, b)),
        }
    }

    pub fn select(&mut self, cond: Value, a: Value, b: Value) -> Value {
        self.push(Inst::ternary(Op::Select, cond, a, b))
    }

    /// `a * c` for a constant `c`.
    pub fn scale(&mut self, a: Value, c: f64) -> Value {
        let c = self.constant(c);
        self.binary(Op::Mul, a, c)
    }

    /// `a + c` for a constant `c`.
    pub fn offset(&mut self, a: Value, c: f64) -> Value {
        let c = self.constant(c);
        self.binary(Op::Add, a, c)
    }

    /// `c - a` for a constant `c`.
    pub fn constant_minus(&mut self, c: f64, a: Value) -> Value {
        let c = self.constant(c);
        self.binary(Op::Sub, c, a)
    }

    pub fn finish(self, outputs: Vec<Value>, n_inputs: usize, n_params: usize) -> Tape {
        let outputs = outputs.into_iter().map(Output::Value).collect();
        self.finish_structured(outputs, n_inputs, n_params, Vec::new())
    }

    /// The tape built, with its loop table and the given outputs and arrays.
    pub fn finish_structured(
        self,
        outputs: Vec<Output>,
        n_inputs: usize,
        n_params: usize,
        arrays: Vec<u32>,
    ) -> Tape {
        Tape::from_structured(self.insts, outputs, n_inputs, n_params, self.loops, arrays)
            .with_checkpoints(self.checkpoints)
    }
}
