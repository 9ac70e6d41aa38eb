//! Checkpointed loops: the binomial schedule driven from Rust, the forward
//! step and the reverse body compiled as functions of their own.
//!
//! A loop with a [`Checkpoint`] is the reverse loop whose body reads each
//! forward state, recomputed from snapshots by the forward step (see
//! `interp::run_checkpointed`, the reference). Each such loop gets two
//! Cranelift functions besides the chunks:
//!
//! - *advance* `(buffers..., from, to)`: the forward state from the loop's
//!   region, the step as a machine loop over iterations `from..to`, the
//!   state back;
//! - *reverse* `(buffers..., step, 0)`: the carried values, invariants and
//!   current state from the region, one iteration (`trips - 1 - step`) of
//!   the reverse body reading the state's `states`, the next carried values
//!   back.
//!
//! Where the loop runs, its chunk stores the initial state, carried values
//! and invariants into the region and calls `schedule`'s driver, which
//! generates the actions one at a time and calls the parts or copies the
//! state to or from a snapshot slot; a failed guard's status comes back
//! through both calls. The chunk then loads the final carried values.
//!
//! The alternative, measured first, was a dispatch loop in the chunk itself
//! (actions from an `extern "C"` generator in batches, then a jump table to
//! inline advance, snapshot, restore and reverse blocks). On
//! `lorenz_rk4_fold` gradients (10^5 and 10^6 steps; 3, 8, 64 and 1000
//! snapshots; best of 4 to 6 alternated runs) this design was 1–7% faster
//! than the batched dispatch loop and 1–3% faster than the same loop
//! fetching one action per call: the indirect branch of a dispatch loop
//! mispredicts unless the generator's own branches come just before it,
//! and here the generator's decision *is* the dispatch. Function calls per
//! action (a few ns) cost less than that.
//!
//! The region holds the snapshots (`min(snapshots, trips)` states), the
//! reverse loop's carried values and invariants, the current forward state,
//! the step's invariants, and the generator's frames and binomial table
//! (`schedule::Region`): nothing is allocated per call, and the memory is
//! `O(snapshots)`.

use super::layout::Layout;
use super::loops::{Hoisted, NO_CARRY};
use super::lower::{part_signature, ChunkLowering, Frame, Lower, MathDecls, SCRATCH};
use super::schedule::{self, Region};
use crate::error::Error;
use crate::ir::{Checkpoint, Loop, Op, Tape};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, BlockArg, InstBuilder, MemFlagsData, UserFuncName, Value};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::JITModule;
use cranelift_module::{FuncId, Module};

/// The step of `cp` as a loop (no writes) of the reverse loop `lp`'s trips:
/// the loop whose body [`Lower::lower_body`] lowers and whose accesses the
/// array analysis reads.
pub(super) fn step_loop(lp: &Loop, cp: &Checkpoint) -> Loop {
    Loop {
        trips: lp.trips,
        body: cp.step.clone(),
        init: cp.init.clone(),
        invariants: cp.invariants.clone(),
        reads: cp.reads.clone(),
        writes: Vec::new(),
    }
}

/// Scratch slots (from the start of scratch) of the parts of the region of
/// a checkpointed loop.
struct Slots {
    /// Snapshot slot `k` is the `m` values from `snaps + k * m`.
    snaps: i64,
    /// The reverse loop's carried values, then its invariants.
    kept: i64,
    /// The current forward state (`m` values).
    current: i64,
    /// The step's invariants.
    step_invariants: i64,
    /// The generator's region.
    schedule: i64,
    /// The region's end.
    end: i64,
}

impl Slots {
    fn new(base: usize, lp: &Loop, cp: &Checkpoint) -> Slots {
        let snaps = base as i64;
        let kept = snaps + (cp.snapshots.min(lp.trips) as usize * cp.n_carried()) as i64;
        let current = kept + (lp.n_carried() + lp.invariants.len()) as i64;
        let step_invariants = current + cp.n_carried() as i64;
        let schedule = step_invariants + cp.invariants.len() as i64;
        let end = schedule + Region::new(lp.trips, cp.snapshots).len() as i64;
        Slots {
            snaps,
            kept,
            current,
            step_invariants,
            schedule,
            end,
        }
    }
}

/// Scratch `f64`s the reverse loop `lp` with checkpoint `cp` needs.
pub(super) fn region_len(lp: &Loop, cp: &Checkpoint) -> usize {
    Slots::new(0, lp, cp).end as usize
}

fn args(values: impl IntoIterator<Item = Value>) -> Vec<BlockArg> {
    values.into_iter().map(BlockArg::Value).collect()
}

impl Lower<'_, '_> {
    /// `values` into consecutive scratch slots from `slot`.
    fn store_slots(&mut self, values: &[Value], slot: i64) {
        for (q, &v) in values.iter().enumerate() {
            let (addr, off) = self.address(self.ptrs[SCRATCH], (slot + q as i64) * 8);
            self.b.ins().store(MemFlagsData::trusted(), v, addr, off);
        }
    }

    /// `n` values from consecutive scratch slots from `slot`.
    fn load_slots(&mut self, n: usize, slot: i64) -> Vec<Value> {
        (0..n)
            .map(|q| {
                let (addr, off) = self.address(self.ptrs[SCRATCH], (slot + q as i64) * 8);
                self.b
                    .ins()
                    .load(types::F64, MemFlagsData::trusted(), addr, off)
            })
            .collect()
    }

    /// Lowers root loop instruction `i`, the reverse loop `lp` with
    /// checkpoint `cp`: the call of the driver. Returns the final carried
    /// values.
    pub fn lower_checkpointed(
        &mut self,
        frame: &mut Frame<'_>,
        i: usize,
        lp: &Loop,
        cp: &Checkpoint,
    ) -> Vec<Value> {
        let k = frame.tape.insts()[i].args[1] as usize - 1;
        let at = Slots::new(self.layout.checkpoint_base[k], lp, cp);
        for (values, slot) in [
            (&lp.init, at.kept),
            (&lp.invariants, at.kept + lp.n_carried() as i64),
            (&cp.init, at.current),
            (&cp.invariants, at.step_invariants),
        ] {
            let values: Vec<Value> = values.iter().map(|&v| self.operand(frame, v)).collect();
            self.store_slots(&values, slot);
        }
        let (advance, reverse) = self.math.checkpoint_parts[k];
        let mut call_args = Vec::with_capacity(15);
        for id in [advance, reverse] {
            let f = self.module.declare_func_in_func(id, self.b.func);
            call_args.push(self.b.ins().func_addr(self.ptr, f));
        }
        call_args.extend(self.ptrs);
        for slot in [at.schedule, at.snaps, at.current] {
            let p = self.b.ins().iadd_imm_s(self.ptrs[SCRATCH], slot * 8);
            call_args.push(p);
        }
        let region = Region::new(lp.trips, cp.snapshots);
        for n in [
            cp.n_carried(),
            lp.trips as usize,
            region.s as usize,
            region.r as usize,
        ] {
            call_args.push(self.b.ins().iconst(self.ptr, n as i64));
        }
        let status = self.call_all(schedule::DRIVE, &call_args)[0];
        let ok = self.b.create_block();
        let fail = self.fail;
        self.b
            .ins()
            .brif(status, fail, &[BlockArg::Value(status)], ok, &[]);
        self.b.switch_to_block(ok);
        self.load_slots(lp.n_carried(), at.kept)
    }

    /// The body of the advance function of `lp` (instruction `i`) with
    /// checkpoint `cp`, whose region is `at`: iterations `from..to`.
    fn lower_advance(
        &mut self,
        i: usize,
        lp: &Loop,
        cp: &Checkpoint,
        at: &Slots,
        from: Value,
        to: Value,
    ) {
        let m = cp.n_carried();
        let step = step_loop(lp, cp);
        let state = self.load_slots(m, at.current);
        let invariants = self.load_slots(cp.invariants.len(), at.step_invariants);
        let header = self.b.create_block();
        let done = self.b.create_block();
        self.b.append_block_param(header, self.ptr);
        for _ in 0..m {
            self.b.append_block_param(header, types::F64);
            self.b.append_block_param(done, types::F64);
        }
        self.b
            .ins()
            .jump(header, &args(std::iter::once(from).chain(state)));
        self.b.switch_to_block(header);
        let params = self.b.block_params(header).to_vec();
        let inputs = params[1..].iter().chain(&invariants).copied().collect();
        let context = format!("in the body of loop %{i}: ");
        let body = Frame::body(&cp.step, inputs, vec![params[0]], vec![lp.trips], context);
        let next = self.lower_body(&step, body, &[], &Hoisted::default(), NO_CARRY);
        let counter = self.b.ins().iadd_imm_s(params[0], 1);
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, counter, to);
        let back = args(std::iter::once(counter).chain(next.iter().copied()));
        self.b
            .ins()
            .brif(more, header, &back, done, &args(next.iter().copied()));
        self.b.switch_to_block(done);
        let state = self.b.block_params(done).to_vec();
        self.store_slots(&state, at.current);
    }

    /// The body of the reverse function of `lp` (instruction `i`) with
    /// checkpoint `cp`, whose region is `at`: the reverse iteration of
    /// forward step `step`.
    fn lower_reverse(&mut self, i: usize, lp: &Loop, cp: &Checkpoint, at: &Slots, step: Value) {
        let inputs = self.load_slots(lp.n_carried() + lp.invariants.len(), at.kept);
        let state = self.load_slots(cp.n_carried(), at.current);
        let states: Vec<Value> = cp.states.iter().map(|&q| state[q as usize]).collect();
        let last = self.b.ins().iconst(self.ptr, i64::from(lp.trips) - 1);
        let index = self.b.ins().isub(last, step);
        let context = format!("in the body of loop %{i}: ");
        let body = Frame::body(&lp.body, inputs, vec![index], vec![lp.trips], context);
        let next = self.lower_body(lp, body, &states, &Hoisted::default(), NO_CARRY);
        self.store_slots(&next, at.kept);
    }
}

/// The advance and reverse functions of every checkpoint of `tape`, in
/// table order.
pub(super) fn declare_parts(
    module: &mut JITModule,
    tape: &Tape,
) -> Result<Vec<(FuncId, FuncId)>, String> {
    let sig = part_signature(module);
    (0..tape.checkpoints().len())
        .map(|k| {
            let mut declare = |what: &str| {
                module
                    .declare_function(
                        &format!("checkpoint{k}_{what}"),
                        cranelift_module::Linkage::Local,
                        &sig,
                    )
                    .map_err(|e| e.to_string())
            };
            Ok((declare("advance")?, declare("reverse")?))
        })
        .collect()
}

/// What [`define_parts`] needs of the compilation.
pub(super) struct Parts<'a> {
    pub module: &'a mut JITModule,
    pub ctx: &'a mut Context,
    pub fctx: &'a mut FunctionBuilderContext,
    pub math: &'a MathDecls,
    pub tape: &'a Tape,
    pub layout: &'a Layout,
    pub input_split: usize,
    pub output_split: usize,
    pub guards: &'a mut Vec<Error>,
    pub listing: Option<&'a mut String>,
    /// Compile for flushed subnormals (see `Lower::flush`).
    pub flush: bool,
}

/// Defines the advance and reverse functions of every checkpointed loop;
/// returns their bytes of machine code.
pub(super) fn define_parts(p: Parts<'_>) -> Result<usize, String> {
    let Parts {
        module,
        ctx,
        fctx,
        math,
        tape,
        layout,
        input_split,
        output_split,
        guards,
        mut listing,
        flush,
    } = p;
    let sig = part_signature(module);
    let mut bytes = 0;
    for (i, inst) in tape.insts().iter().enumerate() {
        if inst.op != Op::Loop {
            continue;
        }
        let Some(cp) = tape.checkpoint_of(inst) else {
            continue;
        };
        let lp = tape.loop_of(inst);
        let k = inst.args[1] as usize - 1;
        let at = Slots::new(layout.checkpoint_base[k], lp, cp);
        let (advance, reverse) = math.checkpoint_parts[k];
        for (id, is_advance) in [(advance, true), (reverse, false)] {
            ctx.func.signature = sig.clone();
            ctx.func.name = UserFuncName::user(0, id.as_u32());
            ChunkLowering {
                b: FunctionBuilder::new(&mut ctx.func, fctx),
                module,
                math,
                tape,
                layout,
                input_split,
                output_split,
                guards,
                guards_before: 0,
                flush,
            }
            .lower_part(|low, a, b| match is_advance {
                true => low.lower_advance(i, lp, cp, &at, a, b),
                false => low.lower_reverse(i, lp, cp, &at, a),
            });
            if let Some(text) = listing.as_deref_mut() {
                text.push_str(&ctx.func.display().to_string());
                text.push('\n');
            }
            module
                .define_function(id, ctx)
                .map_err(|e| format!("{e:?}"))?;
            bytes += ctx.compiled_code().map_or(0, |c| c.code_buffer().len());
            module.clear_context(ctx);
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use crate::suite::{lorenz_rk4_fold, LORENZ_DEFAULT_INPUT};
    use crate::{trace_scalar, Engine, Function, MemoryBudget, Options};
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    /// Counts each thread's allocations, so that a test can check its own
    /// while other tests run.
    struct Counting;

    thread_local! {
        static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    }

    // SAFETY: forwards to the system allocator; the counter is a
    // const-initialized thread-local `Cell` (no allocation, no destructor).
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
            // SAFETY: the caller's contract, passed on.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: the caller's contract, passed on.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    fn allocations() -> usize {
        ALLOCATIONS.with(Cell::get)
    }

    /// Once its scratch buffer has grown, a compiled checkpointed gradient
    /// allocates nothing per call (the schedule's state lives in scratch),
    /// and neither does `Function`'s gradient with the JIT once warm.
    #[test]
    fn warm_calls_do_not_allocate() {
        let x = LORENZ_DEFAULT_INPUT;
        let tape = trace_scalar(&x, &[], |x, _| lorenz_rk4_fold(x, 5000)).unwrap();
        let options = Options {
            memory_budget: MemoryBudget::Snapshots(16),
            engine: Engine::Jit,
            ..Options::default()
        };
        let f = Function::from_tape_with(tape, options).unwrap();
        assert_eq!(f.gradient_tape().unwrap().checkpoints().len(), 1);
        let start = allocations();
        let code = super::super::compile(f.gradient_tape().unwrap()).unwrap();
        assert!(allocations() > start, "the counter counts");
        let (mut out, mut scratch) = (vec![0.0; 7], Vec::new());
        code.run(&x, &[], &mut out, &mut scratch).unwrap();
        let before = allocations();
        for _ in 0..3 {
            code.run(&x, &[], &mut out, &mut scratch).unwrap();
        }
        assert_eq!(allocations(), before, "compiled code");
        let w = f.with_params(&[]).unwrap().engine(Engine::Jit);
        let mut g = [0.0; 6];
        w.gradient(&x, &mut g).unwrap();
        let before = allocations();
        for _ in 0..3 {
            w.gradient(&x, &mut g).unwrap();
        }
        assert_eq!(allocations(), before, "Function::gradient");
    }
}
