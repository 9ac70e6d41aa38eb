//! Lowering checkpointed loops: the binomial schedule driven by compiled
//! code.
//!
//! A loop with a [`Checkpoint`] is the reverse loop whose body reads each
//! forward state, recomputed from snapshots by the forward step (see
//! `interp::run_checkpointed`, the reference). Its code is one dispatch
//! loop over the schedule's actions, which the generator of `schedule`
//! writes in batches into the loop's scratch region; the forward state
//! travels as block parameters, the reverse loop's carried values and
//! invariants wait in the region (out of the registers the advance loop
//! needs; measured no slower than block parameters):
//!
//! ```text
//!     store carried init, invariants
//!     call start(region, trips, snapshots, table)
//!     jump refill(init...)
//! refill(state...):
//!     n = call fill(region, trips, snapshots, table)  ; up to BATCH actions
//!     brif n != 0, dispatch(0, n, state...), exit
//! dispatch(j, n, state...):
//!     brif j == n, refill(state...), decode
//! decode:                                            ; action j of the buffer
//!     br_table kind, [advance, snapshot, restore], reverse
//! advance:     a machine loop of the step over iterations from..to, then dispatch(j + 1, ...)
//! snapshot:    store the state into snapshot slot a, then dispatch(j + 1, ...)
//! restore:     load the state from snapshot slot a, then dispatch(j + 1, ...)
//! reverse:     one iteration (trips - 1 - a) of the reverse body, on the
//!              carried values and invariants loaded, the state's `states`;
//!              store the next carried values, then dispatch(j + 1, ...)
//! exit:        load the final carried values (`loopout` reads these)
//! ```
//!
//! The loop's scratch region holds the snapshots (`min(snapshots, trips)`
//! states), the carried values and invariants, and the generator's state,
//! action buffer and binomial table (`schedule::Region`):
//! nothing is allocated per call, and the memory is `O(snapshots)`.

use super::lower::{Frame, Lower, SCRATCH};
use super::schedule::{self, Region, ENCODED_A, ENCODED_B, ENCODED_BYTES};
use crate::ir::{Checkpoint, Loop};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, BlockArg, InstBuilder, JumpTableData, MemFlagsData, Value};

/// Scratch `f64`s the snapshots of `cp` (of a loop of `trips` iterations) take.
fn snapshot_slots(cp: &Checkpoint, trips: u32) -> usize {
    cp.snapshots.min(trips) as usize * cp.n_carried()
}

/// Scratch `f64`s the reverse loop `lp` with checkpoint `cp` needs: its
/// snapshots, its carried values and invariants, then the schedule's region.
pub(super) fn region_len(lp: &Loop, cp: &Checkpoint) -> usize {
    snapshot_slots(cp, lp.trips)
        + lp.n_carried()
        + lp.invariants.len()
        + Region::new(lp.trips, cp.snapshots).len()
}

fn args(values: impl IntoIterator<Item = Value>) -> Vec<BlockArg> {
    values.into_iter().map(BlockArg::Value).collect()
}

impl Lower<'_, '_> {
    /// Lowers root loop instruction `i`, the reverse loop `lp` with
    /// checkpoint `cp`; returns its final carried values.
    pub fn lower_checkpointed(
        &mut self,
        frame: &mut Frame<'_>,
        i: usize,
        lp: &Loop,
        cp: &Checkpoint,
    ) -> Vec<Value> {
        let k = frame.tape.insts()[i].args[1] as usize - 1;
        let mut operands = |this: &mut Self, vs: &[u32]| -> Vec<Value> {
            vs.iter().map(|&v| this.operand(frame, v)).collect()
        };
        let carried_init = operands(self, &lp.init);
        let invariants_init = operands(self, &lp.invariants);
        let state_init = operands(self, &cp.init);
        let step_invariants = operands(self, &cp.invariants);
        let step = Loop {
            trips: lp.trips,
            body: cp.step.clone(),
            init: cp.init.clone(),
            invariants: cp.invariants.clone(),
            reads: cp.reads.clone(),
            writes: Vec::new(),
        };
        let (m, c) = (cp.n_carried(), lp.n_carried());
        let context = format!("{}in the body of loop %{i}: ", frame.context);
        let trips = vec![lp.trips];
        let flags = MemFlagsData::trusted();

        // The region: snapshots, carried values, invariants, then the
        // generator and its action buffer. The reverse loop's carried values
        // and invariants wait in memory, out of the registers the advance
        // loop needs.
        let base = self.layout.checkpoint_base[k] as i64;
        let carried_at = base + snapshot_slots(cp, lp.trips) as i64;
        let invariants_at = carried_at + c as i64;
        let schedule_at = invariants_at + lp.invariants.len() as i64;
        let region = Region::new(lp.trips, cp.snapshots);
        let scratch = self.ptrs[SCRATCH];
        let snaps = self.b.ins().iadd_imm_s(scratch, base * 8);
        let kept = self.b.ins().iadd_imm_s(scratch, carried_at * 8);
        let mem = self.b.ins().iadd_imm_s(scratch, schedule_at * 8);
        let buffer = self.b.ins().iadd_imm_s(mem, region.buffer() as i64 * 8);
        for (q, &v) in carried_init.iter().chain(&invariants_init).enumerate() {
            self.b.ins().store(flags, v, kept, q as i32 * 8);
        }
        let steps = self.b.ins().iconst(types::I32, i64::from(lp.trips));
        let snapshots = self.b.ins().iconst(types::I32, i64::from(cp.snapshots));
        let table = self.b.ins().iconst(types::I32, region.table() as i64);
        let runtime = [mem, steps, snapshots, table];
        self.call_all(schedule::START, &runtime);

        let refill = self.b.create_block();
        let dispatch = self.b.create_block();
        let decode = self.b.create_block();
        let advance = self.b.create_block();
        let advance_loop = self.b.create_block();
        let snapshot = self.b.create_block();
        let restore = self.b.create_block();
        let reverse = self.b.create_block();
        let exit = self.b.create_block();
        self.b.append_block_param(dispatch, self.ptr);
        self.b.append_block_param(dispatch, self.ptr);
        self.b.append_block_param(advance_loop, self.ptr);
        for _ in 0..m {
            self.b.append_block_param(refill, types::F64);
            self.b.append_block_param(dispatch, types::F64);
            self.b.append_block_param(advance_loop, types::F64);
        }
        self.b.ins().jump(refill, &args(state_init));

        // refill(state): the next batch, or the end.
        self.b.switch_to_block(refill);
        let params = self.b.block_params(refill).to_vec();
        let n = self.call_all(schedule::FILL, &runtime)[0];
        let zero = self.b.ins().iconst(self.ptr, 0);
        let n_wide = self.b.ins().uextend(self.ptr, n);
        let go = args([zero, n_wide].into_iter().chain(params));
        self.b.ins().brif(n, dispatch, &go, exit, &[]);

        // dispatch(j, n, state): action j, or a refill after the last.
        self.b.switch_to_block(dispatch);
        let params = self.b.block_params(dispatch).to_vec();
        let (j, n) = (params[0], params[1]);
        let state = params[2..].to_vec();
        let done = self.b.ins().icmp(IntCC::Equal, j, n);
        self.b
            .ins()
            .brif(done, refill, &args(state.iter().copied()), decode, &[]);

        self.b.switch_to_block(decode);
        let at = self.b.ins().imul_imm_s(j, ENCODED_BYTES);
        let at = self.b.ins().iadd(buffer, at);
        let kind = self.b.ins().load(types::I32, flags, at, 0);
        let a = self.b.ins().uload32(flags, at, ENCODED_A);
        let b = self.b.ins().uload32(flags, at, ENCODED_B);
        let next_j = self.b.ins().iadd_imm_s(j, 1);
        let table: Vec<_> = [advance, snapshot, restore]
            .into_iter()
            .map(|block| self.b.func.dfg.block_call(block, &[]))
            .collect();
        let default = self.b.func.dfg.block_call(reverse, &[]);
        let jt = self
            .b
            .create_jump_table(JumpTableData::new(default, &table));
        self.b.ins().br_table(kind, jt);
        // Back to the dispatcher with this state.
        let again = |state: &[Value]| args([next_j, n].into_iter().chain(state.iter().copied()));

        // Advance { from: a, to: b }: the step from iteration a while below b.
        self.b.switch_to_block(advance);
        let first = args(std::iter::once(a).chain(state.iter().copied()));
        self.b.ins().jump(advance_loop, &first);
        self.b.switch_to_block(advance_loop);
        let params = self.b.block_params(advance_loop).to_vec();
        let inputs = params[1..].iter().chain(&step_invariants).copied();
        let body = Frame::body(
            &cp.step,
            inputs.collect(),
            vec![params[0]],
            trips.clone(),
            context.clone(),
        );
        let next = self.lower_body(&step, body, &[]);
        let counter = self.b.ins().iadd_imm_s(params[0], 1);
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, counter, b);
        let back = args(std::iter::once(counter).chain(next.iter().copied()));
        self.b
            .ins()
            .brif(more, advance_loop, &back, dispatch, &again(&next));

        // Snapshot { slot: a } and Restore { slot: a }: state copies.
        let slot_bytes = m as i64 * 8;
        self.b.switch_to_block(snapshot);
        let offset = self.b.ins().imul_imm_s(a, slot_bytes);
        let addr = self.b.ins().iadd(snaps, offset);
        for (q, &v) in state.iter().enumerate() {
            self.b.ins().store(flags, v, addr, q as i32 * 8);
        }
        self.b.ins().jump(dispatch, &again(&state));
        self.b.switch_to_block(restore);
        let offset = self.b.ins().imul_imm_s(a, slot_bytes);
        let addr = self.b.ins().iadd(snaps, offset);
        let restored: Vec<Value> = (0..m)
            .map(|q| self.b.ins().load(types::F64, flags, addr, q as i32 * 8))
            .collect();
        self.b.ins().jump(dispatch, &again(&restored));

        // Reverse { step: a }: reverse iteration trips - 1 - a.
        self.b.switch_to_block(reverse);
        let last = self.b.ins().iconst(self.ptr, i64::from(lp.trips) - 1);
        let index = self.b.ins().isub(last, a);
        let inputs: Vec<Value> = (0..c + lp.invariants.len())
            .map(|q| self.b.ins().load(types::F64, flags, kept, q as i32 * 8))
            .collect();
        let states: Vec<Value> = cp.states.iter().map(|&q| state[q as usize]).collect();
        let body = Frame::body(&lp.body, inputs, vec![index], trips, context);
        let next = self.lower_body(lp, body, &states);
        for (q, &v) in next.iter().enumerate() {
            self.b.ins().store(flags, v, kept, q as i32 * 8);
        }
        self.b.ins().jump(dispatch, &again(&state));

        self.b.switch_to_block(exit);
        (0..c)
            .map(|q| self.b.ins().load(types::F64, flags, kept, q as i32 * 8))
            .collect()
    }
}
