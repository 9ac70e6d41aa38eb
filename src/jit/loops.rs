//! Lowering structured loops: a real machine loop per [`Loop`], its body
//! lowered inline once.
//!
//! ```text
//!     jump header(init..., 0)
//! header(carried..., i):           ; the body, then the back edge
//!     reads at i                   ; strided loads
//!     body instructions            ; guards branch to the failure block
//!     writes at i                  ; strided stores / load-add-stores
//!     brif i + 1 < trips, header(next..., i + 1), exit(next...)
//! exit(final...):                  ; `loopout` reads these
//! ```
//!
//! A loop of one trip is lowered straight, with iteration number 0. A loop
//! with a checkpoint runs its binomial schedule instead (`checkpoint`).
//! Strided accesses address `(base + Σ_outer stride_d * i_d * 8) + stride *
//! i * 8 + offset * 8`: the outer part is hoisted by Cranelift, the constant
//! part folded into the memory instruction's offset, and the inner term into
//! its index (see `access`). Reads of the
//! inputs pick the head or tail buffer at compile time when the whole range
//! of the access lies on one side of the split, per iteration otherwise.

use super::carry::Carry;
use super::lower::{readonly, Frame, Lower, INPUTS_HEAD, INPUTS_TAIL, PARAMS, SCRATCH};
use crate::ir::{flush, Access, Buffer, Loop, Op, Tape, WriteMode};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, BlockArg, InstBuilder, MemFlagsData, Value};

/// No write passes its element in a register.
pub(super) const NO_CARRY: (&Carry, &[Value]) = (&Carry::EMPTY, &[]);

/// What a loop of more than one trip builds before the loop, because
/// Cranelift would rematerialize it in every iteration: the body's constants
/// (as `(instruction, value)`; an `f64const` costs two instructions, `movabs`
/// and `movq`, wherever it cannot be a memory operand) and the masks of
/// `neg` and `abs`. Built as bitcasts of their bits, they are ordinary
/// values computed once and kept in registers (or spilled and reloaded as
/// memory operands).
#[derive(Default)]
pub(super) struct Hoisted {
    constants: Vec<(usize, Value)>,
    /// `-0.0`: `neg` is a xor with it.
    sign: Option<Value>,
    /// All bits but the sign: `abs` is an and with it.
    magnitude: Option<Value>,
}

impl Lower<'_, '_> {
    /// Lowers loop instruction `i` of `frame`: runs it, records its final
    /// carried values for `loopout`, and (at the root) stores those read by
    /// later chunks.
    pub fn lower_loop(&mut self, frame: &mut Frame<'_>, i: usize) {
        let tape = frame.tape;
        let inst = &tape.insts()[i];
        let lp = tape.loop_of(inst);
        // Only root loops have checkpoints (verified).
        let exits = match tape.checkpoint_of(inst) {
            Some(cp) => self.lower_checkpointed(frame, i, lp, cp),
            None => self.lower_plain_loop(frame, i, lp),
        };
        if frame.inputs.is_none() {
            for &(k, slot) in self.layout.loop_slots(i) {
                let (addr, off) = self.address(self.ptrs[SCRATCH], slot as i64 * 8);
                let v = exits[k as usize];
                self.b.ins().store(MemFlagsData::trusted(), v, addr, off);
            }
        }
        frame.exits.insert(i as u32, exits);
    }

    /// Runs loop `lp`, instruction `i` of `frame`, as a machine loop; returns
    /// its final carried values.
    fn lower_plain_loop(&mut self, frame: &mut Frame<'_>, i: usize, lp: &Loop) -> Vec<Value> {
        let looping = lp.trips > 1;
        let init: Vec<Value> = lp
            .init
            .iter()
            .map(|&v| self.loop_operand(frame, v, looping))
            .collect();
        let hoisted = if looping {
            self.hoisted(&lp.body)
        } else {
            Hoisted::default()
        };
        let invariants: Vec<Value> = lp
            .invariants
            .iter()
            .map(|&v| self.loop_operand(frame, v, looping))
            .collect();
        let mut trips = frame.trips.clone();
        trips.push(lp.trips);
        let context = format!("{}in the body of loop %{i}: ", frame.context);
        // The body's frame at iteration number `at`, with these carried values.
        let body = |at: Value, carried: Vec<Value>| {
            let mut index = frame.index.clone();
            index.push(at);
            let inputs = carried.into_iter().chain(invariants.iter().copied());
            let mut frame = Frame::body(
                &lp.body,
                inputs.collect(),
                index,
                trips.clone(),
                context.clone(),
            );
            for &(j, v) in &hoisted.constants {
                frame.preset(j, v);
            }
            frame
        };
        // Root loops only: `add` writes known to add to the initial -0.0.
        let fresh = match frame.inputs {
            None => self.layout.fresh.get(&(i as u32)).cloned(),
            Some(_) => None,
        };
        let fresh = fresh.unwrap_or_default();
        if lp.trips == 1 {
            let zero = self.b.ins().iconst(self.ptr, 0);
            let carry = Carry {
                fresh,
                ..Carry::EMPTY
            };
            self.lower_body(lp, body(zero, init), &[], &hoisted, (&carry, &[]))
        } else {
            let carry = Carry {
                fresh,
                ..Carry::plan(lp)
            };
            let header = self.b.create_block();
            let exit = self.b.create_block();
            // Carried values, then the registers of `carry`, then the counter.
            for _ in 0..init.len() + carry.deferred.len() {
                self.b.append_block_param(header, types::F64);
                self.b.append_block_param(exit, types::F64);
            }
            self.b.append_block_param(header, self.ptr);
            let zero = self.b.ins().iconst(self.ptr, 0);
            // Each register starts with its next write's element of iteration 0.
            let mut at_zero = frame.index.clone();
            at_zero.push(zero);
            let mut args: Vec<BlockArg> = init.into_iter().map(BlockArg::Value).collect();
            for &wb in &carry.next {
                let (addr, off, flags) = self.access(&lp.writes[wb].access, &at_zero, &trips);
                let v = self.b.ins().load(types::F64, flags, addr, off);
                args.push(BlockArg::Value(v));
            }
            args.push(BlockArg::Value(zero));
            self.b.ins().jump(header, &args);
            self.b.switch_to_block(header);
            let mut params = self.b.block_params(header).to_vec();
            let counter = params.pop().expect("the counter");
            let registers = params.split_off(lp.n_carried());
            let next = self.lower_body(
                lp,
                body(counter, params),
                &[],
                &hoisted,
                (&carry, &registers),
            );
            let counter = self.b.ins().iadd_imm_s(counter, 1);
            let more = self
                .b
                .ins()
                .icmp_imm_s(IntCC::UnsignedLessThan, counter, lp.trips as i64);
            let out: Vec<BlockArg> = next.iter().copied().map(BlockArg::Value).collect();
            let back: Vec<BlockArg> = out
                .iter()
                .copied()
                .chain(std::iter::once(BlockArg::Value(counter)))
                .collect();
            self.b.ins().brif(more, header, &back, exit, &out);
            self.b.switch_to_block(exit);
            let mut exits = self.b.block_params(exit).to_vec();
            let last = exits.split_off(lp.n_carried());
            // The deferred writes' values of the last iteration.
            let end = self.b.ins().iconst(self.ptr, lp.trips as i64 - 1);
            let mut at_end = frame.index.clone();
            at_end.push(end);
            for (&wa, &v) in carry.deferred.iter().zip(&last) {
                let (addr, off, flags) = self.access(&lp.writes[wa].access, &at_end, &trips);
                self.b.ins().store(flags, v, addr, off);
            }
            exits
        }
    }

    /// Value `v` of `frame` as an initial carried value or invariant of a
    /// loop (`looping`: of more than one trip). A tape constant is built as
    /// an opaque bitcast (see [`Hoisted`]): an `f64const` carried unchanged
    /// would become a constant again (Cranelift removes constant block
    /// parameters) and be rematerialized in every iteration.
    fn loop_operand(&mut self, frame: &mut Frame<'_>, v: u32, looping: bool) -> Value {
        let inst = frame.tape.insts()[v as usize];
        if looping && inst.op == Op::Const {
            self.opaque_constant(inst.const_value())
        } else {
            self.operand(frame, v)
        }
    }

    /// Constant `c` (flushed with `flush`, as `Lower::constant` does) as a
    /// bitcast of its bits, which Cranelift neither folds nor rematerializes.
    fn opaque_constant(&mut self, c: f64) -> Value {
        let c = if self.flush { flush::flush(c) } else { c };
        let int = self.b.ins().iconst(types::I64, c.to_bits() as i64);
        self.b.ins().bitcast(types::F64, MemFlagsData::new(), int)
    }

    /// What a loop `body` needs built before the loop (see [`Hoisted`]).
    fn hoisted(&mut self, body: &Tape) -> Hoisted {
        let mut h = Hoisted::default();
        for (j, inst) in body.insts().iter().enumerate() {
            match inst.op {
                Op::Const => {
                    let v = self.opaque_constant(inst.const_value());
                    h.constants.push((j, v));
                }
                Op::Neg if h.sign.is_none() => h.sign = Some(self.opaque_constant(-0.0)),
                Op::Abs if h.magnitude.is_none() => {
                    let bits = (!(-0.0f64).to_bits()) as i64;
                    let int = self.b.ins().iconst(types::I64, bits);
                    let m = self.b.ins().bitcast(types::F64, MemFlagsData::new(), int);
                    h.magnitude = Some(m);
                }
                _ => {}
            }
        }
        h
    }

    /// One iteration of `lp` in the body's `frame` (whose inputs so far are
    /// the carried values and invariants): reads, then `extra` inputs (a
    /// checkpoint's states), the body, writes. Returns the next carried
    /// values.
    pub(super) fn lower_body(
        &mut self,
        lp: &Loop,
        mut body: Frame<'_>,
        extra: &[Value],
        hoisted: &Hoisted,
        (carry, registers): (&Carry, &[Value]),
    ) -> Vec<Value> {
        let n_carried = lp.n_carried();
        // Reads of an innermost loop are pinned to the top of the body (see below);
        // an outer loop's are left movable, so that Cranelift can sink them past
        // the nested loops and calls (where they would be spilled).
        let innermost = !lp.body.insts().iter().any(|i| i.op == Op::Loop);
        for r in &lp.reads {
            let (addr, off, flags) = self.access(r, &body.index, &body.trips);
            // Not `can_move` in an innermost loop: the load then stays where
            // it is, at the top of the body, instead of being placed where its
            // value is first needed; the counter's last use is then its
            // increment at the back edge, which reuses its register (else a
            // register move on the back edge costs one more jump per iteration).
            let flags = match r.buffer {
                Buffer::Input | Buffer::Param if innermost => {
                    MemFlagsData::trusted().with_readonly()
                }
                _ => flags,
            };
            let v = self.b.ins().load(types::F64, flags, addr, off);
            // Arrays hold computed (already flushed) values.
            let v = match r.buffer {
                Buffer::Array(_) => v,
                Buffer::Input | Buffer::Param => self.daz(v),
            };
            body.inputs.get_or_insert_with(Vec::new).push(v);
        }
        body.inputs
            .get_or_insert_with(Vec::new)
            .extend_from_slice(extra);
        for j in 0..lp.body.len() {
            if body.is_set(j) {
                continue; // a hoisted constant
            }
            let inst = lp.body.insts()[j];
            // `fneg`/`fabs` are a xor/and with a sign mask, which Cranelift
            // would rebuild in every iteration: use the hoisted one (same bits).
            match (inst.op, hoisted.sign, hoisted.magnitude) {
                (Op::Neg, Some(mask), _) => {
                    let a = self.operand(&mut body, inst.args[0]);
                    let v = self.b.ins().bxor(a, mask);
                    body.preset(j, v);
                }
                (Op::Abs, _, Some(mask)) => {
                    let a = self.operand(&mut body, inst.args[0]);
                    let v = self.b.ins().band(a, mask);
                    body.preset(j, v);
                }
                _ => {
                    self.lower_inst(&mut body, j);
                }
            }
        }
        let mut outs: Vec<Value> = lp
            .body
            .outputs()
            .iter()
            .map(|o| {
                let v = o.value().expect("verified: bodies output values");
                self.operand(&mut body, v)
            })
            .collect();
        // With `carry`, the new values of the deferred writes follow the
        // next carried values (see `carry`).
        let mut new = vec![None; lp.writes.len()];
        for (k, (w, &x)) in lp.writes.iter().zip(&outs[n_carried..]).enumerate() {
            let (addr, off, flags) = self.access(&w.access, &body.index, &body.trips);
            let x = match (w.mode, carry.old.get(k).copied().flatten()) {
                (WriteMode::Store, _) => x,
                (WriteMode::Add, Some(r)) => self.b.ins().fadd(registers[r], x),
                // `-0.0 + x` is `x`.
                (WriteMode::Add, None) if carry.fresh.get(k) == Some(&true) => x,
                (WriteMode::Add, None) => {
                    let old = self.b.ins().load(types::F64, flags, addr, off);
                    self.b.ins().fadd(old, x)
                }
            };
            if carry.deferred.contains(&k) {
                new[k] = Some(x);
            } else {
                self.b.ins().store(flags, x, addr, off);
            }
        }
        outs.truncate(n_carried);
        outs.extend(
            carry
                .deferred
                .iter()
                .map(|&k| new[k].expect("written above")),
        );
        outs
    }

    /// The address (value and immediate offset) of `a` at iteration numbers
    /// `index` of loops with `trips`, and the flags to access it with.
    ///
    /// The address is built as `(base + outer terms) + inner term`: the outer
    /// loops' terms are invariant in the innermost loop, so Cranelift hoists
    /// that sum out of it, and the inner term `i * 8` folds into the memory
    /// operand (`[p + i*8 + disp]` on x86-64): no address arithmetic per
    /// iteration for unit strides.
    fn access(&mut self, a: &Access, index: &[Value], trips: &[u32]) -> (Value, i32, MemFlagsData) {
        // The loops that move the element, outermost first: (stride, iteration number).
        let terms: Vec<(i64, Value)> = a
            .strides
            .iter()
            .zip(trips)
            .zip(index)
            .filter(|&((&s, &n), _)| s != 0 && n != 1)
            .map(|((&s, _), &i)| (s, i))
            .collect();
        let (base, first, flags) = match a.buffer {
            Buffer::Param => (self.ptrs[PARAMS], a.offset, readonly()),
            Buffer::Array(k) => (
                self.ptrs[SCRATCH],
                self.element(k, a.offset),
                MemFlagsData::trusted(),
            ),
            Buffer::Input => {
                let split = self.input_split as i64;
                let (lo, hi) = a.range(trips);
                if hi < split {
                    (self.ptrs[INPUTS_HEAD], a.offset, readonly())
                } else if lo >= split {
                    (self.ptrs[INPUTS_TAIL], a.offset - split, readonly())
                } else {
                    // The range straddles the split, so some loop moves the element.
                    let mut sum: Option<Value> = None;
                    for &(s, i) in &terms {
                        let term = if s == 1 {
                            i
                        } else {
                            self.b.ins().imul_imm_s(i, s)
                        };
                        sum = Some(match sum {
                            None => term,
                            Some(sum) => self.b.ins().iadd(sum, term),
                        });
                    }
                    let sum = sum.expect("a range of two or more elements");
                    let e = self.b.ins().iadd_imm_s(sum, a.offset);
                    let in_head = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, e, split);
                    // `tail - split * 8`: element `e >= split` is at `e * 8` from it.
                    let tail = self.b.ins().iadd_imm_s(self.ptrs[INPUTS_TAIL], -split * 8);
                    let base = self.b.ins().select(in_head, self.ptrs[INPUTS_HEAD], tail);
                    (base, a.offset, readonly())
                }
            }
        };
        let mut addr = base;
        for &(s, i) in &terms {
            let bytes = match s {
                1 => self.b.ins().ishl_imm_u(i, 3),
                -1 => {
                    let neg = self.b.ins().ineg(i);
                    self.b.ins().ishl_imm_u(neg, 3)
                }
                _ => self.b.ins().imul_imm_s(i, s * 8),
            };
            addr = self.b.ins().iadd(addr, bytes);
        }
        let (addr, off) = self.address(addr, first * 8);
        (addr, off, flags)
    }
}
