//! Differentiating loops and arrays.
//!
//! A loop's reverse is a loop running the iterations backwards. Its body is
//! the vector-Jacobian product of the forward body (which recomputes the
//! iteration from its inputs), so nested loops are handled by the same
//! transform one level down. What an iteration needs from the forward run,
//! its carried values, is stored per iteration by the forward loop into
//! residual arrays; a body whose adjoint does not read a carried value (a
//! sum, a map) stores nothing for it and recomputes the rest.
//!
//! Arrays get adjoint arrays (zero, i.e. `-0.0`, at the start like every
//! array). A strided read's adjoint is accumulated (`Add`) into the adjoint
//! of the buffer it reads; a store's adjoint is read from the element's
//! adjoint, which is then reset, since the element's earlier value was
//! overwritten.

use super::budget::MemoryBudget;
use super::emit::Emitter;
use super::reverse::{read_is_active, sweep, Seed};
use super::rules;
use crate::ir::{
    Access, ArrayId, Buffer, Checkpoint, Inst, Loop, Op, Tape, Value, Write, WriteMode,
};

/// The arrays of the adjoint tape under construction: the primal's, their
/// adjoints (made on first use), the adjoint of the root's inputs, and the
/// residual arrays loops store; plus the trip counts of the loops enclosing
/// the tape being transformed.
pub(super) struct ArrayAdjoints {
    arrays: Vec<u32>,
    adjoint_of: Vec<Option<ArrayId>>,
    input_adjoint: Option<ArrayId>,
    n_root_inputs: u32,
    pub(super) trips: Vec<u32>,
    /// Decides, per loop of the root, between stored states and checkpointing.
    pub(super) budget: MemoryBudget,
}

impl ArrayAdjoints {
    pub(super) fn new(root: &Tape, budget: MemoryBudget) -> ArrayAdjoints {
        ArrayAdjoints {
            budget,
            arrays: root.arrays().to_vec(),
            adjoint_of: vec![None; root.arrays().len()],
            input_adjoint: None,
            n_root_inputs: root.n_inputs() as u32,
            trips: Vec::new(),
        }
    }

    pub(super) fn is_root(&self) -> bool {
        self.trips.is_empty()
    }

    pub(super) fn into_arrays(self) -> Vec<u32> {
        self.arrays
    }

    fn add(&mut self, len: u32) -> ArrayId {
        self.arrays.push(len);
        self.arrays.len() as ArrayId - 1
    }

    /// The adjoint array of primal array `a`, made if needed.
    pub(super) fn adjoint(&mut self, a: ArrayId) -> ArrayId {
        if let Some(adj) = self.adjoint_of[a as usize] {
            return adj;
        }
        let adj = self.add(self.arrays[a as usize]);
        self.adjoint_of[a as usize] = Some(adj);
        adj
    }

    /// The adjoint array of primal array `a`, if anything contributed to it.
    pub(super) fn existing(&self, a: ArrayId) -> Option<ArrayId> {
        self.adjoint_of[a as usize]
    }

    pub(super) fn existing_input_adjoint(&self) -> Option<ArrayId> {
        self.input_adjoint
    }

    /// The array accumulating the adjoint of what a read of `buffer` reads.
    fn read_adjoint(&mut self, buffer: Buffer) -> Option<ArrayId> {
        match buffer {
            Buffer::Param => None,
            Buffer::Array(a) => Some(self.adjoint(a)),
            Buffer::Input => Some(*self.input_adjoint.get_or_insert_with(|| {
                self.arrays.push(self.n_root_inputs);
                self.arrays.len() as ArrayId - 1
            })),
        }
    }

    /// A residual array with one element per iteration of the loop nest
    /// `trips` (the enclosing loops', then the loop's own), and the access
    /// writing iteration `(i_0, .., i_D)` at its row-major position.
    fn residual(&mut self, trips: &[u32]) -> Access {
        let len: u64 = trips.iter().map(|&n| n as u64).product();
        let array = self.add(len.min(u32::MAX as u64) as u32);
        let mut strides = vec![0i64; trips.len()];
        let mut stride = 1i64;
        for (s, &n) in strides.iter_mut().zip(trips).rev() {
            *s = stride;
            stride *= n as i64;
        }
        Access {
            buffer: Buffer::Array(array),
            offset: 0,
            strides,
        }
    }
}

/// Emits, for an array slice output, its adjoint seed: `1` for every element
/// ([`Seed::One`]) or the weights read from inputs `weights..` (a loop adding
/// them into `target[start..start + len]`).
pub(super) fn seed_slice(
    e: &mut Emitter,
    n_params: usize,
    target: ArrayId,
    start: u32,
    len: u32,
    weights: Option<u32>,
) {
    if len == 0 {
        return;
    }
    let mut body = Tape::new(weights.is_some() as usize, n_params);
    let w = match weights {
        Some(_) => body.push(Inst::input(0)),
        None => body.push(Inst::constant(1.0)),
    };
    body.push_output(w);
    let reads = weights
        .map(|k| Access {
            buffer: Buffer::Input,
            offset: k as i64,
            strides: vec![1],
        })
        .into_iter()
        .collect();
    e.push_loop(Loop {
        trips: len,
        body,
        init: Vec::new(),
        invariants: Vec::new(),
        reads,
        writes: vec![Write {
            access: Access {
                buffer: Buffer::Array(target),
                offset: start as i64,
                strides: vec![1],
            },
            mode: WriteMode::Add,
        }],
    });
}

/// `access` with loop `depth` (of `trips` iterations) running backwards.
fn backwards(access: &Access, depth: usize, trips: u32) -> Access {
    let mut a = access.clone();
    let s = a.strides[depth];
    a.offset += s * (trips as i64 - 1);
    a.strides[depth] = -s;
    a
}

/// Rewrites every access of the loops in `tape` (nested ones included) for
/// the enclosing loop at `depth` running backwards.
fn run_backwards(tape: &mut Tape, depth: usize, trips: u32) {
    let (n_inputs, n_params) = (tape.n_inputs(), tape.n_params());
    let (insts, outputs, mut loops, arrays) = std::mem::take(tape).into_parts();
    for lp in &mut loops {
        for r in &mut lp.reads {
            *r = backwards(r, depth, trips);
        }
        for w in &mut lp.writes {
            w.access = backwards(&w.access, depth, trips);
        }
        run_backwards(&mut lp.body, depth, trips);
    }
    *tape = Tape::from_structured(insts, outputs, n_inputs, n_params, loops, arrays);
}

/// Emits the reverse of loop instruction `i` of `tape` into `e` (whose
/// first instructions are `tape`'s), accumulating the adjoints of its
/// initial values and invariants into `adjoint` and those of its reads into
/// adjoint arrays.
pub(super) fn reverse_loop(
    e: &mut Emitter,
    tape: &Tape,
    i: usize,
    varied: &[bool],
    adjoint: &mut [Option<Value>],
    arrays: &mut ArrayAdjoints,
) {
    let inst = tape.insts()[i];
    let lp = tape.loop_of(&inst);
    // A loop that overwrites array elements with adjoints must reset them,
    // even if nothing it computes is varied.
    let has_adjoint = |a: ArrayId| arrays.existing(a).is_some();
    if !loop_is_varied(tape, &inst, varied) && !overwrites(lp, &has_adjoint) {
        return;
    }
    // Adjoints flow backwards through an array the loop both writes and
    // reads (a later iteration reads what an earlier one wrote): its
    // adjoint array must exist before the writes are seeded.
    for a in recurrent_arrays(lp) {
        arrays.adjoint(a);
    }
    let (m, nv, nr, nw) = (
        lp.n_carried(),
        lp.invariants.len(),
        lp.reads.len(),
        lp.writes.len(),
    );
    // Seeds: the adjoints of the loop's results and of the arrays it wrote.
    let mut carried_seed: Vec<Option<Value>> = vec![None; m];
    for (j, out) in tape.insts().iter().enumerate().skip(i + 1) {
        if out.op == Op::LoopOut && out.args[0] == i as u32 {
            if let Some(d) = adjoint[j] {
                let slot = &mut carried_seed[out.args[1] as usize];
                *slot = Some(rules::accumulate(e, *slot, (d, false)));
            }
        }
    }
    let write_seed: Vec<Option<ArrayId>> = lp
        .writes
        .iter()
        .map(|w| match w.access.buffer {
            Buffer::Array(a) => arrays.existing(a),
            _ => None,
        })
        .collect();
    if carried_seed.iter().all(Option::is_none)
        && write_seed.iter().all(Option::is_none)
        && !stores_into(&lp.body, &|a| arrays.existing(a).is_some())
    {
        return;
    }

    // The body's VJP: inputs c, v, r, then weights for c', w; outputs
    // c', w, then the adjoints of c, v, r.
    let depth = arrays.trips.len();
    arrays.trips.push(lp.trips);
    let (be, bouts) = sweep(&lp.body, 0..lp.body.n_inputs(), Seed::Inputs, arrays);
    arrays.trips.pop();
    let n_in = lp.body.n_inputs() as u32;
    let mut bar = be.finish_structured(bouts, n_in as usize + m + nw, tape.n_params(), Vec::new());
    let adj_out =
        |k: usize| -> Value { bar.output_values().expect("body outputs are values")[m + nw + k] };
    let carried_adj: Vec<Value> = (0..m).map(adj_out).collect();
    let active_inv: Vec<usize> = (0..nv)
        .filter(|&a| varied[lp.invariants[a] as usize])
        .collect();
    let inv_adj: Vec<Value> = active_inv.iter().map(|&a| adj_out(m + a)).collect();
    let active_reads: Vec<usize> = (0..nr)
        .filter(|&r| read_is_active(lp.reads[r].buffer))
        .collect();
    let read_adj: Vec<Value> = active_reads.iter().map(|&r| adj_out(m + nv + r)).collect();

    // Reverse body, before renumbering: bar's inputs keep their numbers,
    // the invariant adjoint accumulators come after them.
    let acc_base = n_in + (m + nw) as u32;
    let mut outputs: Vec<Value> = carried_adj.clone();
    {
        let mut body_e = Emitter::starting_with_tape(&bar);
        for (a, &g) in inv_adj.iter().enumerate() {
            let acc = body_e.push(Inst::input(acc_base + a as u32));
            outputs.push(body_e.binary(Op::Add, acc, g));
        }
        let zero = body_e.constant(-0.0);
        for (w, seed) in write_seed.iter().enumerate() {
            if seed.is_some() && lp.writes[w].mode == WriteMode::Store {
                outputs.push(zero);
            }
        }
        outputs.extend(&read_adj);
        bar = body_e.finish(outputs, acc_base as usize + inv_adj.len(), tape.n_params());
    }
    // Unless this loop may be checkpointed (then everything is recomputed),
    // the forward loop also does what the body's recomputation in the
    // reverse body would be for: its nested loops store their residuals
    // (hoisted out of the reverse body), and it stores its nested loops'
    // results, which the reverse body reads instead of rerunning them.
    let may_checkpoint = depth == 0
        && (lp.trips as u64) * (m as u64) * 8 > arrays.budget.bytes(m)
        && recomputable(lp);
    let lo_base = acc_base as usize + inv_adj.len();
    let mut loop_results: Vec<Value> = Vec::new();
    if !may_checkpoint {
        loop_results = store_residuals(e, &mut bar, lp, inst.args[0] as usize, lo_base);
    }
    bar = crate::opt::optimize_body(&bar);
    run_backwards(&mut bar, depth, lp.trips);

    // Which bar inputs the reverse body still reads, in the reverse loop's
    // order: carried (c' weights, accumulators), invariants, reads (stored
    // carried values, the forward reads, the written arrays' adjoints).
    let mut used = vec![false; lo_base + loop_results.len()];
    for inst in bar.insts() {
        if inst.op == Op::Input {
            used[inst.args[0] as usize] = true;
        }
    }
    let weight = |j: usize| n_in as usize + j;
    let mut order: Vec<usize> = (0..m).map(weight).collect();
    order.extend((0..inv_adj.len()).map(|a| acc_base as usize + a));
    order.extend((0..nv).map(|a| m + a));
    let fwd_reads: Vec<usize> = (0..nr).filter(|&r| used[m + nv + r]).collect();
    order.extend(fwd_reads.iter().map(|&r| m + nv + r));
    let seeded_writes: Vec<usize> = (0..nw)
        .filter(|&w| write_seed[w].is_some() && used[weight(m + w)])
        .collect();
    order.extend(seeded_writes.iter().map(|&w| weight(m + w)));
    let results_read: Vec<usize> = (0..loop_results.len())
        .filter(|&k| used[lo_base + k])
        .collect();
    order.extend(results_read.iter().map(|&k| lo_base + k));
    // The forward states the reverse body reads come last: stored reads, or
    // a checkpoint's recomputed states.
    let stored: Vec<usize> = (0..m).filter(|&j| used[j]).collect();
    order.extend(&stored);

    let mut new_index = vec![u32::MAX; used.len()];
    for (k, &old) in order.iter().enumerate() {
        new_index[old] = k as u32;
    }
    // Unseeded write weights are zero.
    let body = renumber_inputs(&bar, &new_index, order.len());

    let mut reads: Vec<Access> = fwd_reads
        .iter()
        .map(|&r| backwards(&lp.reads[r], depth, lp.trips))
        .collect();
    for &w in &seeded_writes {
        let mut access = backwards(&lp.writes[w].access, depth, lp.trips);
        access.buffer = Buffer::Array(write_seed[w].expect("seeded"));
        reads.push(access);
    }
    let mut trips_here = arrays.trips.clone();
    trips_here.push(lp.trips);
    for &k in &results_read {
        let access = arrays.residual(&trips_here);
        let fwd = &mut e.loops[inst.args[0] as usize];
        fwd.body.push_output(loop_results[k]);
        fwd.writes.push(Write {
            access: access.clone(),
            mode: WriteMode::Store,
        });
        reads.push(backwards(&access, depth, lp.trips));
    }
    // Residuals: the forward loop (the copy in `e`) stores the carried
    // values the reverse body reads, unless they would exceed the memory
    // budget: then a checkpoint recomputes them from snapshots.
    let mut trips = arrays.trips.clone();
    trips.push(lp.trips);
    let stored_bytes = trips.iter().map(|&n| n as u64).product::<u64>() * stored.len() as u64 * 8;
    let budget = arrays.budget;
    let checkpoint = match may_checkpoint && stored_bytes > budget.bytes(m) {
        true => Some(Checkpoint {
            snapshots: budget.snapshots(m, lp.trips),
            step: step_of(lp, tape.n_params()),
            init: lp.init.clone(),
            invariants: lp.invariants.clone(),
            reads: lp.reads.clone(),
            states: stored.iter().map(|&j| j as u32).collect(),
        }),
        false => None,
    };
    if checkpoint.is_none() {
        let loop_index = inst.args[0] as usize;
        for &j in &stored {
            let access = arrays.residual(&trips);
            let fwd = &mut e.loops[loop_index];
            let v = fwd.body.push(Inst::input(j as u32));
            fwd.body.push_output(v);
            fwd.writes.push(Write {
                access: access.clone(),
                mode: WriteMode::Store,
            });
            reads.push(backwards(&access, depth, lp.trips));
        }
    }
    let mut writes = Vec::new();
    for (w, seed) in write_seed.iter().enumerate() {
        if let (Some(adj), WriteMode::Store) = (seed, lp.writes[w].mode) {
            let mut access = backwards(&lp.writes[w].access, depth, lp.trips);
            access.buffer = Buffer::Array(*adj);
            writes.push(Write {
                access,
                mode: WriteMode::Store,
            });
        }
    }
    for &r in &active_reads {
        let target = arrays
            .read_adjoint(lp.reads[r].buffer)
            .expect("active reads have an adjoint buffer");
        let mut access = backwards(&lp.reads[r], depth, lp.trips);
        access.buffer = Buffer::Array(target);
        writes.push(Write {
            access,
            mode: WriteMode::Add,
        });
    }
    let zero = e.constant(0.0);
    let minus_zero = e.constant(-0.0);
    let mut init: Vec<Value> = carried_seed.iter().map(|s| s.unwrap_or(zero)).collect();
    init.extend(inv_adj.iter().map(|_| minus_zero));
    let rev = Loop {
        trips: lp.trips,
        body,
        init,
        invariants: lp.invariants.clone(),
        reads,
        writes,
    };
    let rev = match checkpoint {
        Some(cp) => e.push_checkpointed_loop(rev, cp),
        None => e.push_loop(rev),
    };
    for j in 0..m {
        let v = lp.init[j] as usize;
        if varied[v] {
            let d = e.push(Inst::loop_out(rev, j as u32));
            adjoint[v] = Some(rules::accumulate(e, adjoint[v], (d, false)));
        }
    }
    for (a, &k) in active_inv.iter().enumerate() {
        let v = lp.invariants[k] as usize;
        let d = e.push(Inst::loop_out(rev, (m + a) as u32));
        adjoint[v] = Some(rules::accumulate(e, adjoint[v], (d, false)));
    }
}

/// Moves the residual stores of the loops nested in `lp`'s body from the
/// reverse body `bar` (whose first instructions and loops are a copy of the
/// body, the loops with those stores added) into the forward loop
/// `e.loops[forward]`, and makes `bar` read the nested loops' results and
/// the results of math-library calls from new inputs numbered from
/// `first_input` instead of recomputing them (cheap arithmetic is
/// recomputed). Returns the body values those inputs stand for (in
/// `lp.body`'s numbering), for the forward loop to store where `bar` still
/// reads them.
fn store_residuals(
    e: &mut Emitter,
    bar: &mut Tape,
    lp: &Loop,
    forward: usize,
    first_input: usize,
) -> Vec<Value> {
    let body = &lp.body;
    let n_nested = body.loops().len();
    // The forward loop's body: the body, its loops storing residuals.
    let mut with_stores: Vec<Loop> = bar.loops()[..n_nested].to_vec();
    let fwd_body = Tape::from_structured(
        e.loops[forward].body.insts().to_vec(),
        e.loops[forward].body.outputs().to_vec(),
        e.loops[forward].body.n_inputs(),
        e.loops[forward].body.n_params(),
        std::mem::take(&mut with_stores),
        Vec::new(),
    );
    e.loops[forward].body = fwd_body;
    // The reverse body: the nested loops as they were, their results read.
    let mut results = Vec::new();
    let mut insts = bar.insts().to_vec();
    for (q, inst) in insts.iter_mut().enumerate().take(body.len()) {
        if inst.op == Op::LoopOut || inst.op.is_transcendental() {
            *inst = Inst::input((first_input + results.len()) as u32);
            results.push(q as Value);
        }
    }
    let mut loops = bar.loops().to_vec();
    loops[..n_nested].clone_from_slice(body.loops());
    *bar = Tape::from_structured(
        insts,
        bar.outputs().to_vec(),
        first_input + results.len(),
        bar.n_params(),
        loops,
        Vec::new(),
    );
    results
}

/// Which elements of array `target` (of `len`) the loops emitted so far
/// add to (every element, when a loop nest is too large to enumerate).
pub(super) fn elements_added(e: &Emitter, target: ArrayId, len: usize) -> Vec<bool> {
    fn visit(lp: &Loop, trips: &mut Vec<u32>, target: ArrayId, covered: &mut [bool]) -> bool {
        trips.push(lp.trips);
        let mut ok = true;
        for w in lp
            .writes
            .iter()
            .filter(|w| w.access.buffer == Buffer::Array(target))
        {
            let total: u64 = trips.iter().map(|&n| n as u64).product();
            if total > 1 << 24 {
                ok = false;
                break;
            }
            let mut index = vec![0u32; trips.len()];
            for _ in 0..total {
                covered[w.access.element(&index) as usize] = true;
                for d in (0..index.len()).rev() {
                    index[d] += 1;
                    if index[d] < trips[d] {
                        break;
                    }
                    index[d] = 0;
                }
            }
        }
        ok = ok
            && lp
                .body
                .loops()
                .iter()
                .all(|inner| visit(inner, trips, target, covered));
        trips.pop();
        ok
    }
    let mut covered = vec![false; len];
    let mut trips = Vec::new();
    if !e
        .loops
        .iter()
        .all(|lp| visit(lp, &mut trips, target, &mut covered))
    {
        covered.fill(true);
    }
    covered
}

/// Whether `lp`'s iterations can be recomputed at any time from its state
/// alone: it (and every loop in it) reads no array, and nothing in its body
/// writes one (the step drops the loop's own writes), since arrays may hold
/// other values by the time a checkpointed reverse sweep recomputes an
/// iteration.
fn recomputable(lp: &Loop) -> bool {
    fn pure(lp: &Loop) -> bool {
        lp.writes.is_empty() && recomputable(lp)
    }
    lp.reads
        .iter()
        .all(|r| !matches!(r.buffer, Buffer::Array(_)))
        && lp
            .body
            .insts()
            .iter()
            .all(|i| !matches!(i.op, Op::Elem | Op::Store))
        && lp.body.loops().iter().all(pure)
}

/// One forward iteration of `lp` as a checkpoint step: its body with only
/// the next carried values as outputs.
fn step_of(lp: &Loop, n_params: usize) -> Tape {
    let outputs = lp.body.outputs()[..lp.n_carried()].to_vec();
    let step = Tape::from_structured(
        lp.body.insts().to_vec(),
        outputs,
        lp.body.n_inputs(),
        n_params,
        lp.body.loops().to_vec(),
        Vec::new(),
    );
    crate::opt::optimize_body(&step)
}

/// `tape` reading input `new_index[j]` where it read input `j`; an input
/// with no new index (an unseeded weight) reads zero.
pub(super) fn renumber_inputs(tape: &Tape, new_index: &[u32], n_inputs: usize) -> Tape {
    let mut insts = tape.insts().to_vec();
    for inst in &mut insts {
        if inst.op == Op::Input {
            *inst = match new_index[inst.args[0] as usize] {
                u32::MAX => Inst::constant(0.0),
                k => Inst::input(k),
            };
        }
    }
    Tape::from_structured(
        insts,
        tape.outputs().to_vec(),
        n_inputs,
        tape.n_params(),
        tape.loops().to_vec(),
        Vec::new(),
    )
}

/// Whether a loop instruction's results can depend on the differentiated
/// inputs: through its initial values, invariants, or reads of inputs and
/// arrays (its own or a nested loop's, or an `elem` in its body).
pub(super) fn loop_is_varied(tape: &Tape, inst: &Inst, varied: &[bool]) -> bool {
    let lp = tape.loop_of(inst);
    lp.init
        .iter()
        .chain(&lp.invariants)
        .any(|&v| varied[v as usize])
        || reads_buffers(lp)
}

/// The arrays `lp` (its body and nested loops included) writes.
pub(super) fn written_arrays(lp: &Loop) -> Vec<ArrayId> {
    let (mut reads, mut writes) = (Vec::new(), Vec::new());
    touched(lp, &mut reads, &mut writes);
    writes.sort_unstable();
    writes.dedup();
    writes
}

/// The arrays `lp` (its body and nested loops included) reads and writes.
fn touched(lp: &Loop, reads: &mut Vec<ArrayId>, writes: &mut Vec<ArrayId>) {
    reads.extend(lp.reads.iter().filter_map(|r| match r.buffer {
        Buffer::Array(a) => Some(a),
        _ => None,
    }));
    writes.extend(lp.writes.iter().filter_map(|w| match w.access.buffer {
        Buffer::Array(a) => Some(a),
        _ => None,
    }));
    for inst in lp.body.insts() {
        match inst.op {
            Op::Elem => reads.push(inst.args[0]),
            Op::Store => writes.push(inst.args[0]),
            _ => {}
        }
    }
    for inner in lp.body.loops() {
        touched(inner, reads, writes);
    }
}

/// The arrays `lp` (its body and nested loops included) both writes and
/// reads: values flow through them from one iteration to a later one, so
/// the transforms make their derivative arrays before transforming the loop.
pub(super) fn recurrent_arrays(lp: &Loop) -> Vec<ArrayId> {
    let (mut reads, mut writes) = (Vec::new(), Vec::new());
    touched(lp, &mut reads, &mut writes);
    writes.sort_unstable();
    writes.dedup();
    writes.retain(|a| reads.contains(a));
    writes
}

/// Whether `lp` writes, or its body (nested loops included) stores into,
/// an array for which `has` holds.
pub(super) fn overwrites(lp: &Loop, has: &dyn Fn(ArrayId) -> bool) -> bool {
    lp.writes
        .iter()
        .any(|w| matches!(w.access.buffer, Buffer::Array(a) if has(a)))
        || stores_into(&lp.body, has)
}

/// Whether `body` (nested loops included) stores into or writes an array
/// for which `has` holds.
fn stores_into(body: &Tape, has: &dyn Fn(ArrayId) -> bool) -> bool {
    body.insts()
        .iter()
        .any(|i| i.op == Op::Store && has(i.args[0]))
        || body.loops().iter().any(|lp| overwrites(lp, has))
}

pub(super) fn reads_buffers(lp: &Loop) -> bool {
    lp.reads.iter().any(|r| read_is_active(r.buffer))
        || lp.body.insts().iter().any(|i| i.op == Op::Elem)
        || lp.body.loops().iter().any(reads_buffers)
}
