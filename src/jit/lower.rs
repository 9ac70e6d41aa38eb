//! Lowering one chunk of a tape to one Cranelift function.
//!
//! Every tape instruction becomes a few inline machine instructions; only
//! math without a machine instruction (exp, sin, powf, ...) is a call.
//! Values defined in the chunk live in SSA registers; values from earlier
//! chunks come from the scratch buffer (computed values) or are
//! rematerialized (inputs, parameters, constants). Loops (see `loops`)
//! are lowered inline with their bodies, each body as a [`Frame`] of its
//! own; array elements live in the scratch buffer after the slots.

use super::layout::Layout;
use super::math;
use crate::error::Error;
use crate::ir::flush;
use crate::ir::{Inst, Op, Tape};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    types, AbiParam, Block, BlockArg, FuncRef, InstBuilder, MemFlagsData, Signature, Type, Value,
};
use cranelift_frontend::FunctionBuilder;
use cranelift_jit::JITModule;
use cranelift_module::{FuncId, Module};
use std::collections::HashMap;
use std::ops::Range;

/// Functions declared in the module: the math wrappers and the checkpoint
/// driver by symbol name, and the checkpointed loops' parts.
pub(super) struct MathDecls {
    ids: HashMap<&'static str, FuncId>,
    /// Per checkpoint, its advance and reverse functions (see `checkpoint`).
    pub checkpoint_parts: Vec<(FuncId, FuncId)>,
}

impl MathDecls {
    pub fn declare(module: &mut JITModule) -> Result<MathDecls, String> {
        let mut ids = HashMap::new();
        for (name, _, arity) in math::all() {
            let mut sig = module.make_signature();
            for k in 0..arity {
                let powi = name == math::POWI.0 || name == math::POWI_FLUSH.0;
                let ty = if powi && k == 1 {
                    types::I32
                } else {
                    types::F64
                };
                sig.params.push(AbiParam::new(ty));
            }
            sig.returns.push(AbiParam::new(types::F64));
            let id = module
                .declare_function(name, cranelift_module::Linkage::Import, &sig)
                .map_err(|e| e.to_string())?;
            ids.insert(name, id);
        }
        // The checkpoint driver (`schedule::tapejit_checkpoint_drive`): 15
        // pointer-sized arguments, a status back.
        let ptr = module.target_config().pointer_type();
        let mut sig = module.make_signature();
        for _ in 0..15 {
            sig.params.push(AbiParam::new(ptr));
        }
        sig.returns.push(AbiParam::new(types::I32));
        let id = module
            .declare_function(
                super::schedule::DRIVE,
                cranelift_module::Linkage::Import,
                &sig,
            )
            .map_err(|e| e.to_string())?;
        ids.insert(super::schedule::DRIVE, id);
        Ok(MathDecls {
            ids,
            checkpoint_parts: Vec::new(),
        })
    }
}

/// The chunk function's signature:
/// `(inputs_head, inputs_tail, params, outputs_head, outputs_tail, scratch) -> status`.
pub(super) fn chunk_signature(module: &JITModule) -> Signature {
    let ptr = module.target_config().pointer_type();
    let mut sig = module.make_signature();
    for _ in 0..6 {
        sig.params.push(AbiParam::new(ptr));
    }
    sig.returns.push(AbiParam::new(types::I32));
    sig
}

/// The signature of a checkpointed loop's parts (see `checkpoint`): the
/// chunk signature and two more pointer-sized arguments.
pub(super) fn part_signature(module: &JITModule) -> Signature {
    let mut sig = chunk_signature(module);
    let ptr = module.target_config().pointer_type();
    sig.params.push(AbiParam::new(ptr));
    sig.params.push(AbiParam::new(ptr));
    sig
}

/// Lowers one chunk; the builder's function already has the chunk signature.
pub(super) struct ChunkLowering<'a, 'b> {
    pub b: FunctionBuilder<'b>,
    pub module: &'a mut JITModule,
    pub math: &'a MathDecls,
    pub tape: &'a Tape,
    pub layout: &'a Layout,
    /// Inputs below this index come from the head buffer, the rest from the tail.
    pub input_split: usize,
    /// Outputs below this index go to the head buffer, the rest to the tail.
    pub output_split: usize,
    /// The error of every guard lowered so far, in all chunks: a failing
    /// guard returns the status `index + 1`.
    pub guards: &'a mut Vec<Error>,
    /// Guards of the root tape before this chunk (for their ordinals).
    pub guards_before: usize,
    /// Compile for flushed subnormals (see [`Lower::flush`]).
    pub flush: bool,
}

/// The state of one chunk function while it is lowered.
pub(super) struct Lower<'a, 'b> {
    pub b: FunctionBuilder<'b>,
    pub module: &'a mut JITModule,
    pub math: &'a MathDecls,
    pub layout: &'a Layout,
    pub input_split: usize,
    guards: &'a mut Vec<Error>,
    funcs: HashMap<&'static str, FuncRef>,
    /// The function's parameters, see the `INPUTS_HEAD`... constants.
    pub ptrs: [Value; 6],
    /// Returns its parameter as the status.
    pub fail: Block,
    /// The pointer type, also the type of loop counters.
    pub ptr: Type,
    /// Code for `flush_subnormals`, run with the hardware flushing (see
    /// `fpmode`): values read from the inputs and parameters are flushed
    /// (multiplied by one), constants are flushed at compile time and kept
    /// opaque to Cranelift's constant folding (which rounds like IEEE), and
    /// math calls go to the `_flush` wrappers. Every value the code holds is
    /// then flushed, as in the interpreter's emulation.
    pub flush: bool,
}

/// One tape being lowered: the chunk's part of the root tape, or a whole
/// loop body (whose values all live in this function).
pub(super) struct Frame<'t> {
    pub tape: &'t Tape,
    /// First instruction lowered here (`values` starts there).
    start: usize,
    values: Vec<Option<Value>>,
    /// Conditions of compares as machine booleans, to branch on directly.
    bools: Vec<Option<Value>>,
    /// A body's inputs (carried, invariants, reads); `None` at the root.
    pub inputs: Option<Vec<Value>>,
    /// Root only: values of earlier chunks loaded or rematerialized here.
    imported: HashMap<u32, Value>,
    /// The final carried values of the loops run so far, by instruction.
    pub exits: HashMap<u32, Vec<Value>>,
    /// Iteration numbers (pointer-sized) of the enclosing loops, outermost first.
    pub index: Vec<Value>,
    /// Trip counts of the enclosing loops.
    pub trips: Vec<u32>,
    /// Guards of this tape lowered before the next one (its ordinal).
    guards_seen: usize,
    /// Which body this is, for guard errors: empty at the root, else
    /// `in the body of loop %i: ` for each enclosing loop, outermost first.
    pub context: String,
}

impl<'t> Frame<'t> {
    /// A loop body with these inputs, inside loops with iteration numbers
    /// `index` and trip counts `trips`, described by `context` (see the field).
    pub fn body(
        tape: &'t Tape,
        inputs: Vec<Value>,
        index: Vec<Value>,
        trips: Vec<u32>,
        context: String,
    ) -> Self {
        Frame {
            tape,
            start: 0,
            values: vec![None; tape.len()],
            bools: vec![None; tape.len()],
            inputs: Some(inputs),
            imported: HashMap::new(),
            exits: HashMap::new(),
            index,
            trips,
            guards_seen: 0,
            context,
        }
    }

    fn is_root(&self) -> bool {
        self.inputs.is_none()
    }

    /// Gives instruction `j` of this body the machine value `v` before the
    /// body is lowered: `lower_inst` then leaves it (a loop's hoisted
    /// constants, see `loops`).
    pub fn preset(&mut self, j: usize, v: Value) {
        self.values[j - self.start] = Some(v);
    }

    /// Whether instruction `j` already has its machine value.
    pub fn is_set(&self, j: usize) -> bool {
        self.values[j - self.start].is_some()
    }
}

pub(super) const INPUTS_HEAD: usize = 0;
pub(super) const INPUTS_TAIL: usize = 1;
pub(super) const PARAMS: usize = 2;
const OUTPUTS_HEAD: usize = 3;
const OUTPUTS_TAIL: usize = 4;
pub(super) const SCRATCH: usize = 5;

/// Flags of loads from the inputs and parameters: nothing writes them
/// during a call (Rust's borrows keep them apart from the outputs and
/// scratch), so such loads are pure and Cranelift may merge them and hoist
/// them out of loops.
pub(super) fn readonly() -> MemFlagsData {
    MemFlagsData::trusted().with_readonly().with_can_move()
}

impl ChunkLowering<'_, '_> {
    /// Emits the body for root instructions `range`, storing outputs in
    /// `outputs` (value, output index).
    pub fn lower(self, range: Range<usize>, outputs: &[(u32, u32)]) {
        let ChunkLowering {
            mut b,
            module,
            math,
            tape,
            layout,
            input_split,
            output_split,
            guards,
            guards_before,
            flush,
        } = self;
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let params = b.block_params(entry);
        let ptrs = [
            params[0], params[1], params[2], params[3], params[4], params[5],
        ];
        let fail = b.create_block();
        b.append_block_param(fail, types::I32);
        b.set_cold_block(fail);
        let ptr = module.target_config().pointer_type();
        let mut low = Lower {
            b,
            module,
            math,
            layout,
            input_split,
            guards,
            funcs: HashMap::new(),
            ptrs,
            fail,
            ptr,
            flush,
        };
        let mut root = Frame {
            tape,
            start: range.start,
            values: vec![None; range.len()],
            bools: vec![None; range.len()],
            inputs: None,
            imported: HashMap::new(),
            exits: HashMap::new(),
            index: Vec::new(),
            trips: Vec::new(),
            guards_seen: guards_before,
            context: String::new(),
        };
        for i in range {
            if let Some(v) = low.lower_inst(&mut root, i) {
                if let Some(slot) = layout.slot(i) {
                    low.store(ptrs[SCRATCH], slot as i64, v);
                }
            }
        }
        for &(v, k) in outputs {
            let val = low.operand(&mut root, v);
            let k = k as usize;
            let (base, index) = if k < output_split {
                (ptrs[OUTPUTS_HEAD], k)
            } else {
                (ptrs[OUTPUTS_TAIL], k - output_split)
            };
            low.store(base, index as i64, val);
        }
        let ok = low.b.ins().iconst(types::I32, 0);
        low.b.ins().return_(&[ok]);
        low.b.switch_to_block(fail);
        let status = low.b.block_params(fail)[0];
        low.b.ins().return_(&[status]);
        low.b.seal_all_blocks();
        let config = low.module.target_config();
        low.b.finalize(config);
    }
}

impl ChunkLowering<'_, '_> {
    /// A function of the [`part_signature`] whose body `build` lowers from
    /// its two extra arguments; it returns 0 after (or a failed guard's
    /// status).
    pub fn lower_part(self, build: impl FnOnce(&mut Lower<'_, '_>, Value, Value)) {
        let ChunkLowering {
            mut b,
            module,
            math,
            layout,
            input_split,
            guards,
            flush,
            ..
        } = self;
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let params = b.block_params(entry).to_vec();
        let ptrs = [
            params[0], params[1], params[2], params[3], params[4], params[5],
        ];
        let fail = b.create_block();
        b.append_block_param(fail, types::I32);
        b.set_cold_block(fail);
        let ptr = module.target_config().pointer_type();
        let mut low = Lower {
            b,
            module,
            math,
            layout,
            input_split,
            guards,
            funcs: HashMap::new(),
            ptrs,
            fail,
            ptr,
            flush,
        };
        build(&mut low, params[6], params[7]);
        let ok = low.b.ins().iconst(types::I32, 0);
        low.b.ins().return_(&[ok]);
        low.b.switch_to_block(fail);
        let status = low.b.block_params(fail)[0];
        low.b.ins().return_(&[status]);
        low.b.seal_all_blocks();
        let config = low.module.target_config();
        low.b.finalize(config);
    }
}

impl<'b> Lower<'_, 'b> {
    /// Lowers instruction `i` of `frame`, returning its value (`None` for
    /// guards, stores and loops).
    pub fn lower_inst(&mut self, frame: &mut Frame<'_>, i: usize) -> Option<Value> {
        let inst = frame.tape.insts()[i];
        match inst.op {
            Op::Guard => self.guard(frame, i, &inst),
            Op::Loop => self.lower_loop(frame, i),
            Op::Store => {
                let v = self.operand(frame, inst.args[2]);
                let at = self.element(inst.args[0], inst.args[1] as i64);
                self.store(self.ptrs[SCRATCH], at, v);
            }
            _ => {
                let v = self.inst(frame, i, &inst);
                frame.values[i - frame.start] = Some(v);
                return Some(v);
            }
        }
        None
    }

    /// Scratch index of element `e` of array `array`.
    pub fn element(&self, array: u32, e: i64) -> i64 {
        self.layout.array_base[array as usize] as i64 + e
    }

    /// `base + bytes` as an address and an immediate offset.
    pub fn address(&mut self, base: Value, bytes: i64) -> (Value, i32) {
        match i32::try_from(bytes) {
            Ok(off) => (base, off),
            Err(_) => (self.b.ins().iadd_imm_s(base, bytes), 0),
        }
    }

    fn load(&mut self, flags: MemFlagsData, base: Value, index: i64) -> Value {
        let (addr, off) = self.address(base, index * 8);
        self.b.ins().load(types::F64, flags, addr, off)
    }

    /// `v` read as the hardware's flushing mode reads operands: a subnormal
    /// becomes a zero of its sign (`v * 1`, which Cranelift does not fold).
    /// For values from the caller's buffers; the identity without `flush`.
    pub fn daz(&mut self, v: Value) -> Value {
        if !self.flush {
            return v;
        }
        let one = self.b.ins().f64const(1.0);
        self.b.ins().fmul(v, one)
    }

    /// The tape constant `c`. With `flush`, flushed and built from its bits,
    /// so that Cranelift cannot fold arithmetic on it the IEEE way.
    fn constant(&mut self, c: f64) -> Value {
        if !self.flush {
            return self.b.ins().f64const(c);
        }
        let bits = flush::flush(c).to_bits();
        let int = self.b.ins().iconst(types::I64, bits as i64);
        self.b.ins().bitcast(types::F64, MemFlagsData::new(), int)
    }

    /// Parameter `i`.
    fn param(&mut self, i: usize) -> Value {
        let v = self.load(readonly(), self.ptrs[PARAMS], i as i64);
        self.daz(v)
    }

    /// Input `i` of the root tape, from the head or the tail buffer.
    fn input(&mut self, i: usize) -> Value {
        let (buffer, index) = if i < self.input_split {
            (INPUTS_HEAD, i)
        } else {
            (INPUTS_TAIL, i - self.input_split)
        };
        let v = self.load(readonly(), self.ptrs[buffer], index as i64);
        self.daz(v)
    }

    fn store(&mut self, base: Value, index: i64, v: Value) {
        let (addr, off) = self.address(base, index * 8);
        self.b.ins().store(MemFlagsData::trusted(), v, addr, off);
    }

    /// The machine value of value `v` of `frame`'s tape.
    pub fn operand(&mut self, frame: &mut Frame<'_>, v: u32) -> Value {
        let i = v as usize;
        if i >= frame.start {
            if let Some(val) = frame.values[i - frame.start] {
                return val;
            }
        }
        debug_assert!(frame.is_root(), "a body's operands precede their uses");
        if let Some(&val) = frame.imported.get(&v) {
            return val;
        }
        let inst = frame.tape.insts()[i];
        let val = match inst.op {
            Op::Const => self.constant(inst.const_value()),
            Op::Input => self.input(inst.args[0] as usize),
            Op::Param => self.param(inst.args[0] as usize),
            _ => {
                let slot = self
                    .layout
                    .slot(i)
                    .expect("values used across chunks have a slot");
                self.load(MemFlagsData::trusted(), self.ptrs[SCRATCH], slot as i64)
            }
        };
        frame.imported.insert(v, val);
        val
    }

    /// The machine boolean "`v` is true" (non-zero, NaN included).
    fn truthy(&mut self, frame: &mut Frame<'_>, v: u32) -> Value {
        let i = v as usize;
        if i >= frame.start {
            if let Some(b) = frame.bools[i - frame.start] {
                return b;
            }
        }
        let val = self.operand(frame, v);
        let zero = self.b.ins().f64const(0.0);
        self.b.ins().fcmp(FloatCC::NotEqual, val, zero)
    }

    fn call(&mut self, name: &'static str, args: &[Value]) -> Value {
        self.call_all(name, args)[0]
    }

    /// Calls a declared function (math or runtime), returning its results.
    pub(super) fn call_all(&mut self, name: &'static str, args: &[Value]) -> Vec<Value> {
        let func = match self.funcs.get(name) {
            Some(&f) => f,
            None => {
                let id = self.math.ids[name];
                let f = self.module.declare_func_in_func(id, self.b.func);
                self.funcs.insert(name, f);
                f
            }
        };
        let call = self.b.ins().call(func, args);
        self.b.inst_results(call).to_vec()
    }

    /// Branches to the failure block, with this guard's status, unless
    /// guard instruction `i` of `frame` holds.
    fn guard(&mut self, frame: &mut Frame<'_>, i: usize, inst: &Inst) {
        self.guards.push(Error::GuardFailed {
            guard: frame.guards_seen,
            instr: i as u32,
            detail: format!("{}{}", frame.context, frame.tape.describe_guard(i as u32)),
        });
        frame.guards_seen += 1;
        let cond = self.truthy(frame, inst.args[0]);
        let cont = self.b.create_block();
        let status = self.b.ins().iconst(types::I32, self.guards.len() as i64);
        let fail = [BlockArg::Value(status)];
        if inst.guard_expect() {
            self.b.ins().brif(cond, cont, &[], self.fail, &fail);
        } else {
            self.b.ins().brif(cond, self.fail, &fail, cont, &[]);
        }
        self.b.switch_to_block(cont);
    }

    fn ins(&mut self) -> cranelift_frontend::FuncInstBuilder<'_, 'b> {
        self.b.ins()
    }

    fn flag(&mut self, cond: Value) -> Value {
        let one = self.b.ins().f64const(1.0);
        let zero = self.b.ins().f64const(0.0);
        self.b.ins().select(cond, one, zero)
    }

    /// The value of instruction `i` of `frame` (not a guard, store or loop).
    fn inst(&mut self, frame: &mut Frame<'_>, i: usize, inst: &Inst) -> Value {
        let op = inst.op;
        let [x, y, z] = inst.args;
        match op {
            Op::Const => return self.constant(inst.const_value()),
            Op::Input => {
                return match &frame.inputs {
                    Some(inputs) => inputs[x as usize],
                    None => self.input(x as usize),
                }
            }
            Op::Param => return self.param(x as usize),
            Op::Elem => {
                let at = self.element(x, y as i64);
                return self.load(MemFlagsData::trusted(), self.ptrs[SCRATCH], at);
            }
            Op::LoopOut => {
                if let Some(exits) = frame.exits.get(&x) {
                    return exits[y as usize];
                }
                let slot = self
                    .layout
                    .loop_slot(x, y)
                    .expect("carried values read in another chunk have a slot");
                return self.load(MemFlagsData::trusted(), self.ptrs[SCRATCH], slot as i64);
            }
            Op::Select => {
                let c = self.truthy(frame, x);
                let a = self.operand(frame, y);
                let b = self.operand(frame, z);
                return self.b.ins().select(c, a, b);
            }
            _ => {}
        }
        let mut args = [Value::from_u32(0); 3];
        for (k, &v) in inst.operands().iter().enumerate() {
            args[k] = self.operand(frame, v);
        }
        let [a, b, c] = args;
        match op {
            Op::Add => self.ins().fadd(a, b),
            Op::Sub => self.ins().fsub(a, b),
            Op::Mul => self.ins().fmul(a, b),
            Op::Div => self.ins().fdiv(a, b),
            Op::Neg => self.ins().fneg(a),
            Op::Abs => self.ins().fabs(a),
            Op::Sqrt => self.ins().sqrt(a),
            Op::Floor => self.ins().floor(a),
            Op::Ceil => self.ins().ceil(a),
            Op::Trunc => self.ins().trunc(a),
            Op::Copysign => self.ins().fcopysign(a, b),
            Op::Recip => {
                let one = self.ins().f64const(1.0);
                self.ins().fdiv(one, a)
            }
            Op::Round => {
                // Ties away from zero: trunc, then step by one where |fraction| >= 1/2.
                // `a - trunc(a)` is exact, so this is f64::round bit for bit.
                let t = self.ins().trunc(a);
                let frac = self.ins().fsub(a, t);
                let mag = self.ins().fabs(frac);
                let half = self.ins().f64const(0.5);
                let up = self.ins().fcmp(FloatCC::GreaterThanOrEqual, mag, half);
                let one = self.ins().f64const(1.0);
                let step = self.ins().fcopysign(one, a);
                let stepped = self.ins().fadd(t, step);
                self.ins().select(up, stepped, t)
            }
            Op::Signum => {
                let one = self.ins().f64const(1.0);
                let s = self.ins().fcopysign(one, a);
                let nan = self.ins().fcmp(FloatCC::Unordered, a, a);
                // f64::signum returns f64::NAN (positive) for every NaN; its
                // sign shows through copysign and signbit.
                let canonical = self.ins().f64const(f64::NAN);
                self.ins().select(nan, canonical, s)
            }
            Op::SignBit => {
                let bits = self.ins().bitcast(types::I64, MemFlagsData::new(), a);
                let neg = self.ins().icmp_imm_s(IntCC::SignedLessThan, bits, 0);
                self.flag(neg)
            }
            Op::PowI => self.powi(a, inst.powi_exponent()),
            Op::Min | Op::Max => {
                // semantics::max: b if a is NaN or b > a, else a (min mirrored).
                let cc = if op == Op::Max {
                    FloatCC::GreaterThan
                } else {
                    FloatCC::LessThan
                };
                let nan = self.ins().fcmp(FloatCC::Unordered, a, a);
                let better = self.ins().fcmp(cc, b, a);
                let take_b = self.ins().bor(nan, better);
                self.ins().select(take_b, b, a)
            }
            Op::Lt | Op::Le | Op::Eq | Op::Ne => {
                let cc = match op {
                    Op::Lt => FloatCC::LessThan,
                    Op::Le => FloatCC::LessThanOrEqual,
                    Op::Eq => FloatCC::Equal,
                    _ => FloatCC::NotEqual,
                };
                let cond = self.ins().fcmp(cc, a, b);
                frame.bools[i - frame.start] = Some(cond);
                self.flag(cond)
            }
            Op::Same => {
                let ia = self.ins().bitcast(types::I64, MemFlagsData::new(), a);
                let ib = self.ins().bitcast(types::I64, MemFlagsData::new(), b);
                let bits = self.ins().icmp(IntCC::Equal, ia, ib);
                let na = self.ins().fcmp(FloatCC::Unordered, a, a);
                let nb = self.ins().fcmp(FloatCC::Unordered, b, b);
                let nans = self.ins().band(na, nb);
                let cond = self.ins().bor(bits, nans);
                frame.bools[i - frame.start] = Some(cond);
                self.flag(cond)
            }
            // Always the interpreter's own `f64::mul_add` (the C library's
            // `fma`): the fma instruction rounds the same, but can return a
            // NaN of another sign, which `signbit`/`copysign` would expose.
            Op::MulAdd if self.flush => self.call(math::MUL_ADD_FLUSH.0, &[a, b, c]),
            Op::MulAdd => self.call(math::MUL_ADD.0, &[a, b, c]),
            _ => {
                if let Some((name, _)) = math::unary(op, self.flush) {
                    self.call(name, &[a])
                } else if let Some((name, _)) = math::binary(op, self.flush) {
                    self.call(name, &[a, b])
                } else {
                    unreachable!("{op:?} has no lowering")
                }
            }
        }
    }

    /// `a.powi(n)` unrolled as compiler-rt's `__powidf2` computes it (binary
    /// exponentiation, then one division for negative `n`), so bitwise equal.
    fn powi(&mut self, a: Value, n: i32) -> Value {
        let mut result: Option<Value> = None;
        let mut square = a;
        let mut k = n.unsigned_abs();
        loop {
            if k & 1 == 1 {
                result = Some(match result {
                    None => square,
                    Some(r) => self.b.ins().fmul(r, square),
                });
            }
            k >>= 1;
            if k == 0 {
                break;
            }
            square = self.b.ins().fmul(square, square);
        }
        let one = self.b.ins().f64const(1.0);
        let r = result.unwrap_or(one);
        if n < 0 {
            self.b.ins().fdiv(one, r)
        } else {
            r
        }
    }
}
