//! Lowering one chunk of a tape to one Cranelift function.
//!
//! Every tape instruction becomes a few inline machine instructions; only
//! math without a machine instruction (exp, sin, powf, ...) is a call.
//! Values defined in the chunk live in SSA registers; values from earlier
//! chunks come from the scratch buffer (computed values) or are
//! rematerialized (inputs, parameters, constants).

use super::layout::Layout;
use super::math;
use crate::ir::{Inst, Op, Tape};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    types, AbiParam, BlockArg, FuncRef, InstBuilder, MemFlagsData, Signature, Value,
};
use cranelift_frontend::FunctionBuilder;
use cranelift_jit::JITModule;
use cranelift_module::{FuncId, Module};
use std::collections::HashMap;
use std::ops::Range;

/// Math functions declared in the module, by symbol name.
pub(super) struct MathDecls {
    ids: HashMap<&'static str, FuncId>,
}

impl MathDecls {
    pub fn declare(module: &mut JITModule) -> Result<MathDecls, String> {
        let mut ids = HashMap::new();
        for (name, _, arity) in math::all() {
            let mut sig = module.make_signature();
            for k in 0..arity {
                let ty = if name == math::POWI.0 && k == 1 {
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
        Ok(MathDecls { ids })
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
}

struct State {
    range: Range<usize>,
    values: Vec<Option<Value>>,
    /// Conditions of compares in this chunk as machine booleans, to branch on directly.
    bools: Vec<Option<Value>>,
    imported: HashMap<u32, Value>,
    funcs: HashMap<&'static str, FuncRef>,
    ptrs: [Value; 6],
    fail: cranelift_codegen::ir::Block,
}

const INPUTS_HEAD: usize = 0;
const INPUTS_TAIL: usize = 1;
const PARAMS: usize = 2;
const OUTPUTS_HEAD: usize = 3;
const OUTPUTS_TAIL: usize = 4;
const SCRATCH: usize = 5;

impl<'b> ChunkLowering<'_, 'b> {
    /// Emits the body for instructions `range`, storing outputs in `outputs` (value, index).
    pub fn lower(mut self, range: Range<usize>, outputs: &[(u32, u32)]) {
        let entry = self.b.create_block();
        self.b.append_block_params_for_function_params(entry);
        self.b.switch_to_block(entry);
        let params = self.b.block_params(entry);
        let ptrs = [
            params[0], params[1], params[2], params[3], params[4], params[5],
        ];
        let fail = self.b.create_block();
        self.b.append_block_param(fail, types::I32);
        let mut st = State {
            values: vec![None; range.len()],
            bools: vec![None; range.len()],
            range: range.clone(),
            imported: HashMap::new(),
            funcs: HashMap::new(),
            ptrs,
            fail,
        };
        for i in range {
            let inst = self.tape.insts()[i];
            if inst.op == Op::Guard {
                self.guard(&mut st, i, &inst);
                continue;
            }
            let v = self.inst(&mut st, i, &inst);
            st.values[i - st.range.start] = Some(v);
            if let Some(slot) = self.layout.slot(i) {
                self.store(st.ptrs[SCRATCH], slot as usize, v);
            }
        }
        for &(v, k) in outputs {
            let val = self.operand(&mut st, v);
            let k = k as usize;
            let (base, index) = if k < self.output_split {
                (st.ptrs[OUTPUTS_HEAD], k)
            } else {
                (st.ptrs[OUTPUTS_TAIL], k - self.output_split)
            };
            self.store(base, index, val);
        }
        let ok = self.b.ins().iconst(types::I32, 0);
        self.b.ins().return_(&[ok]);
        self.b.switch_to_block(fail);
        let status = self.b.block_params(fail)[0];
        self.b.ins().return_(&[status]);
        self.b.seal_all_blocks();
        let config = self.module.target_config();
        self.b.finalize(config);
    }

    fn address(&mut self, base: Value, index: usize) -> (Value, i32) {
        let offset = index * 8;
        match i32::try_from(offset) {
            Ok(off) => (base, off),
            Err(_) => {
                let ptr = self.module.target_config().pointer_type();
                let off = self.b.ins().iconst(ptr, offset as i64);
                (self.b.ins().iadd(base, off), 0)
            }
        }
    }

    fn load(&mut self, base: Value, index: usize) -> Value {
        let (addr, off) = self.address(base, index);
        self.b
            .ins()
            .load(types::F64, MemFlagsData::trusted(), addr, off)
    }

    /// Input `i`, from the head or the tail buffer.
    fn input(&mut self, st: &State, i: usize) -> Value {
        if i < self.input_split {
            self.load(st.ptrs[INPUTS_HEAD], i)
        } else {
            self.load(st.ptrs[INPUTS_TAIL], i - self.input_split)
        }
    }

    fn store(&mut self, base: Value, index: usize, v: Value) {
        let (addr, off) = self.address(base, index);
        self.b.ins().store(MemFlagsData::trusted(), v, addr, off);
    }

    /// The machine value of tape value `v` in this chunk.
    fn operand(&mut self, st: &mut State, v: u32) -> Value {
        let i = v as usize;
        if st.range.contains(&i) {
            return st.values[i - st.range.start].expect("operands precede their uses");
        }
        if let Some(&val) = st.imported.get(&v) {
            return val;
        }
        let inst = self.tape.insts()[i];
        let val = match inst.op {
            Op::Const => self.b.ins().f64const(inst.const_value()),
            Op::Input => self.input(st, inst.args[0] as usize),
            Op::Param => self.load(st.ptrs[PARAMS], inst.args[0] as usize),
            _ => {
                let slot = self
                    .layout
                    .slot(i)
                    .expect("values used across chunks have a slot");
                self.load(st.ptrs[SCRATCH], slot as usize)
            }
        };
        st.imported.insert(v, val);
        val
    }

    /// The machine boolean "`v` is true" (non-zero, NaN included).
    fn truthy(&mut self, st: &mut State, v: u32) -> Value {
        let i = v as usize;
        if st.range.contains(&i) {
            if let Some(b) = st.bools[i - st.range.start] {
                return b;
            }
        }
        let val = self.operand(st, v);
        let zero = self.b.ins().f64const(0.0);
        self.b.ins().fcmp(FloatCC::NotEqual, val, zero)
    }

    fn call(&mut self, st: &mut State, name: &'static str, args: &[Value]) -> Value {
        let func = match st.funcs.get(name) {
            Some(&f) => f,
            None => {
                let id = self.math.ids[name];
                let f = self.module.declare_func_in_func(id, self.b.func);
                st.funcs.insert(name, f);
                f
            }
        };
        let call = self.b.ins().call(func, args);
        self.b.inst_results(call)[0]
    }

    fn guard(&mut self, st: &mut State, i: usize, inst: &Inst) {
        let cond = self.truthy(st, inst.args[0]);
        let cont = self.b.create_block();
        let status = self.b.ins().iconst(types::I32, i as i64 + 1);
        let fail = [BlockArg::Value(status)];
        if inst.guard_expect() {
            self.b.ins().brif(cond, cont, &[], st.fail, &fail);
        } else {
            self.b.ins().brif(cond, st.fail, &fail, cont, &[]);
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

    fn inst(&mut self, st: &mut State, i: usize, inst: &Inst) -> Value {
        let op = inst.op;
        match op {
            Op::Const => return self.b.ins().f64const(inst.const_value()),
            Op::Input => return self.input(st, inst.args[0] as usize),
            Op::Param => return self.load(st.ptrs[PARAMS], inst.args[0] as usize),
            Op::Select => {
                let c = self.truthy(st, inst.args[0]);
                let a = self.operand(st, inst.args[1]);
                let b = self.operand(st, inst.args[2]);
                return self.b.ins().select(c, a, b);
            }
            _ => {}
        }
        let mut args = [Value::from_u32(0); 3];
        for (k, &v) in inst.operands().iter().enumerate() {
            args[k] = self.operand(st, v);
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
                st.bools[i - st.range.start] = Some(cond);
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
                st.bools[i - st.range.start] = Some(cond);
                self.flag(cond)
            }
            // Always the interpreter's own `f64::mul_add` (the C library's
            // `fma`): the fma instruction rounds the same, but can return a
            // NaN of another sign, which `signbit`/`copysign` would expose.
            Op::MulAdd => self.call(st, math::MUL_ADD.0, &[a, b, c]),
            _ => {
                if let Some((name, _)) = math::unary(op) {
                    self.call(st, name, &[a])
                } else if let Some((name, _)) = math::binary(op) {
                    self.call(st, name, &[a, b])
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
