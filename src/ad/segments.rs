//! Segment checkpointing of long straight-line tapes.
//!
//! The reverse sweep of a tape without loops reads back the forward values
//! its partials need: the residuals. When they would not fit the memory
//! budget, the tape is cut into segments. The forward sweep then keeps only
//! the values that cross a segment boundary, and the reverse sweep handles
//! the segments last to first, each as a one-trip loop whose body
//! recomputes its segment from those values and then runs the segment's
//! reverse sweep. Every instruction is recomputed once (about one more
//! forward sweep), and the values stored drop from all residuals to the
//! boundary values plus one segment's residuals.
//!
//! The adjoints are formed by the same operations in the same order as
//! without segments (a segment's body receives the running sums and hands
//! them back), so the gradient is bitwise the same. A loop body is a tape
//! of its own, so no optimizer pass merges a recomputed value with the
//! forward one; the JIT lowers a one-trip loop inline.

use super::budget::MemoryBudget;
use super::emit::Emitter;
use super::loops::ArrayAdjoints;
use super::reverse::{input_adjoints, scalar_step, seed_outputs, useful, Seed};
use super::{rules, varied};
use crate::ir::{Access, Buffer, Inst, Loop, Op, Output, Tape, Value};
use std::collections::HashMap;
use std::ops::Range;

/// How the reverse sweep of a straight-line tape is cut into segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentPlan {
    /// The first instruction of each segment, increasing, from 0.
    pub starts: Vec<usize>,
    /// Values the reverse sweep without segments stores (its residuals).
    pub residuals: usize,
    /// Values stored with segments: the boundary values plus the residuals
    /// of the largest segment.
    pub stored: usize,
}

impl SegmentPlan {
    /// The instructions of each segment, in order.
    pub fn segments(&self, len: usize) -> impl DoubleEndedIterator<Item = Range<usize>> + '_ {
        let starts = &self.starts;
        (0..starts.len()).map(move |k| starts[k]..starts.get(k + 1).copied().unwrap_or(len))
    }
}

/// Whether `tape` is a candidate for segments under `budget`: straight-line,
/// a byte budget, and more instructions than the budget holds values (the
/// residuals never outnumber the instructions).
pub(super) fn may_need_segments(tape: &Tape, budget: MemoryBudget) -> bool {
    match budget {
        MemoryBudget::Bytes(b) => !tape.has_structure() && tape.len() as u64 * 8 > b,
        _ => false,
    }
}

/// Values that cost nothing to store: recomputed or reloaded anywhere.
fn is_leaf(op: Op) -> bool {
    matches!(op, Op::Input | Op::Param | Op::Const)
}

/// Which of `tape`'s values the reverse sweep `adjoint` (which starts with
/// `tape`'s own instructions) reads back from the forward sweep.
fn residuals(tape: &Tape, adjoint: &[Inst]) -> Vec<bool> {
    let n = tape.len();
    let mut residual = vec![false; n];
    for inst in &adjoint[n..] {
        for &v in inst.operands() {
            if (v as usize) < n && !is_leaf(tape.insts()[v as usize].op) {
                residual[v as usize] = true;
            }
        }
    }
    residual
}

/// The segments of `tape` whose stored values fit `budget_values`, or the
/// plan storing the fewest values if none fits (`Err`). `None` when the
/// residuals fit without segments. `adjoint` is the tape's plain reverse
/// sweep (its instructions).
fn plan(
    tape: &Tape,
    adjoint: &[Inst],
    budget_values: u64,
) -> Option<Result<SegmentPlan, SegmentPlan>> {
    let residual = residuals(tape, adjoint);
    let total = residual.iter().filter(|&&r| r).count();
    if total as u64 <= budget_values {
        return None;
    }
    // Candidate caps on one segment's residuals, halving from the whole
    // budget: fewer, longer segments store less at the boundaries until
    // the longest segment dominates; keep the plan storing least.
    let mut best: Option<SegmentPlan> = None;
    let mut cap = budget_values.min(total as u64).max(1);
    loop {
        let candidate = cut(tape, &residual, cap as usize, total);
        if best.as_ref().is_none_or(|b| candidate.stored < b.stored) {
            best = Some(candidate);
        }
        if cap == 1 {
            break;
        }
        cap /= 2;
    }
    let best = best.expect("at least one candidate");
    Some(if best.stored as u64 <= budget_values {
        Ok(best)
    } else {
        Err(best)
    })
}

/// Greedy segments of at most `cap` residuals each (a single instruction
/// may exceed it), and what they store.
fn cut(tape: &Tape, residual: &[bool], cap: usize, total: usize) -> SegmentPlan {
    let insts = tape.insts();
    let mut starts = vec![0];
    let mut segment_of = Vec::with_capacity(insts.len());
    let (mut count, mut largest) = (0, 0);
    for (i, &r) in residual.iter().enumerate() {
        if r && count == cap {
            starts.push(i);
            count = 0;
        }
        count += r as usize;
        largest = largest.max(count);
        segment_of.push(starts.len() - 1);
    }
    let mut boundary = vec![false; insts.len()];
    for (i, inst) in insts.iter().enumerate() {
        for &v in inst.operands() {
            let v = v as usize;
            if segment_of[v] != segment_of[i] && !is_leaf(insts[v].op) {
                boundary[v] = true;
            }
        }
    }
    let boundary = boundary.iter().filter(|&&b| b).count();
    SegmentPlan {
        starts,
        residuals: total,
        stored: boundary + largest,
    }
}

/// The plan for `tape` under `budget`, from its plain reverse sweep.
pub(super) fn plan_for(
    tape: &Tape,
    adjoint: &[Inst],
    budget: MemoryBudget,
) -> Option<Result<SegmentPlan, SegmentPlan>> {
    if !may_need_segments(tape, budget) {
        return None;
    }
    plan(tape, adjoint, budget.bytes(1) / 8)
}

/// The adjoint tape of the straight-line `tape` (as [`super::reverse::reverse`]
/// lays it out), with its reverse sweep run segment by segment as `plan` says.
pub(super) fn reverse_segmented(
    tape: &Tape,
    wrt: Range<usize>,
    seed: Seed,
    plan: &SegmentPlan,
) -> Tape {
    let varied = varied(tape, &wrt);
    let useful = useful(tape, &varied);
    let mut e = Emitter::starting_with_tape(tape);
    let mut adjoint: Vec<Option<Value>> = vec![None; tape.len()];
    let mut no_arrays = ArrayAdjoints::new(tape, MemoryBudget::Unlimited);
    seed_outputs(&mut e, tape, seed, &varied, &mut adjoint, &mut no_arrays);
    for segment in plan.segments(tape.len()).rev() {
        let body = SegmentBody::build(tape, segment, &varied, &useful, &adjoint);
        for (v, d) in body.emit(&mut e) {
            adjoint[v] = Some(d);
        }
    }
    let mut outputs = tape.outputs().to_vec();
    for d in input_adjoints(&mut e, tape, &wrt, &adjoint) {
        outputs.push(Output::Value(d.unwrap_or_else(|| e.constant(0.0))));
    }
    e.finish_structured(outputs, seed.n_inputs(tape), tape.n_params(), Vec::new())
}

/// Where a body input comes from.
#[derive(Clone, Copy)]
enum Source {
    /// A running adjoint sum of the enclosing tape, handed back updated.
    Carried,
    /// A value of the enclosing tape.
    Invariant,
    /// An element of the input buffer.
    Read,
}

/// One segment's reverse sweep as the body of a one-trip loop.
struct SegmentBody<'a> {
    tape: &'a Tape,
    segment: Range<usize>,
    /// The enclosing tape's adjoints before this segment.
    outer_adjoint: &'a [Option<Value>],
    e: Emitter,
    /// The body value of each tape value read or recomputed.
    value: HashMap<usize, Value>,
    /// The body's running adjoint sum of each tape value it touched.
    adjoint: HashMap<usize, Option<Value>>,
    /// Body `input` instructions and their sources, in order of creation.
    inputs: Vec<(Value, Source)>,
    /// The enclosing tape's value behind each carried and invariant input.
    carried: Vec<(usize, Option<Value>)>,
    invariants: Vec<Value>,
    reads: Vec<Access>,
}

impl<'a> SegmentBody<'a> {
    fn build(
        tape: &'a Tape,
        segment: Range<usize>,
        varied: &[bool],
        useful: &[bool],
        outer_adjoint: &'a [Option<Value>],
    ) -> SegmentBody<'a> {
        let mut body = SegmentBody {
            tape,
            segment: segment.clone(),
            outer_adjoint,
            e: Emitter::starting_with(&[]),
            value: HashMap::new(),
            adjoint: HashMap::new(),
            inputs: Vec::new(),
            carried: Vec::new(),
            invariants: Vec::new(),
            reads: Vec::new(),
        };
        let mut e = Emitter::starting_with(&[]);
        for i in segment.clone() {
            let inst = tape.insts()[i];
            if inst.op != Op::Guard {
                let v = body.recompute(&mut e, inst);
                body.value.insert(i, v);
            }
        }
        for i in segment.rev() {
            let inst = tape.insts()[i];
            if !useful[i] || inst.op == Op::Input {
                continue;
            }
            let Some(d) = body.current_adjoint(&mut e, i) else {
                continue;
            };
            let mut args = inst.args;
            for (k, &v) in inst.operands().iter().enumerate() {
                args[k] = body.operand(&mut e, v as usize);
            }
            let result = body.value[&i];
            scalar_step(&mut e, &inst, args, result, d, varied, |e, target, term| {
                let sum = body.current_adjoint(e, target);
                let sum = rules::accumulate(e, sum, term);
                body.adjoint.insert(target, Some(sum));
            });
        }
        body.e = e;
        body
    }

    /// A copy of `inst` reading the body's values.
    fn recompute(&mut self, e: &mut Emitter, inst: Inst) -> Value {
        if inst.op == Op::Input {
            return self.read(e, inst.args[0]);
        }
        let mut copy = inst;
        for (k, &v) in inst.operands().iter().enumerate() {
            copy.args[k] = self.operand(e, v as usize);
        }
        e.push(copy)
    }

    /// The body value of tape value `v`: recomputed when it is in the
    /// segment, else a leaf copied or reread, or an invariant.
    fn operand(&mut self, e: &mut Emitter, v: usize) -> Value {
        if let Some(&x) = self.value.get(&v) {
            return x;
        }
        let inst = self.tape.insts()[v];
        let x = match inst.op {
            Op::Const | Op::Param => e.push(inst),
            Op::Input => self.read(e, inst.args[0]),
            _ => {
                self.invariants.push(v as Value);
                self.input(e, Source::Invariant)
            }
        };
        self.value.insert(v, x);
        x
    }

    fn read(&mut self, e: &mut Emitter, input: u32) -> Value {
        self.reads.push(Access {
            buffer: Buffer::Input,
            offset: input as i64,
            strides: vec![0],
        });
        self.input(e, Source::Read)
    }

    /// A new body input; numbered once all are known ([`Self::emit`]).
    fn input(&mut self, e: &mut Emitter, source: Source) -> Value {
        let v = e.push(Inst::input(0));
        self.inputs.push((v, source));
        v
    }

    /// The running adjoint sum of tape value `v` in the body: the one the
    /// enclosing tape has so far (an invariant for the segment's own
    /// values, whose sums end here; carried for earlier values and inputs,
    /// whose sums go on) until the body adds to it.
    fn current_adjoint(&mut self, e: &mut Emitter, v: usize) -> Option<Value> {
        if let Some(&d) = self.adjoint.get(&v) {
            return d;
        }
        let outer = self.outer_adjoint[v];
        let own = self.segment.contains(&v) && self.tape.insts()[v].op != Op::Input;
        let d = if own {
            outer.map(|d| {
                self.invariants.push(d);
                self.input(e, Source::Invariant)
            })
        } else {
            self.carried.push((v, outer));
            let x = self.input(e, Source::Carried);
            outer.map(|_| x)
        };
        self.adjoint.insert(v, d);
        d
    }

    /// Emits the one-trip loop into `e`; returns the adjoint sums it hands
    /// back, by tape value.
    fn emit(mut self, e: &mut Emitter) -> Vec<(usize, Value)> {
        if self.carried.is_empty() {
            return Vec::new();
        }
        let n_carried = self.carried.len() as u32;
        let n_invariants = self.invariants.len() as u32;
        let mut next = [0, n_carried, n_carried + n_invariants];
        for &(v, source) in &self.inputs {
            let k = source as usize;
            self.e.renumber_input(v, next[k]);
            next[k] += 1;
        }
        let outputs = self
            .carried
            .iter()
            .map(|&(v, _)| self.adjoint[&v].expect("a carried sum is added to"))
            .collect();
        let n_inputs = (next[2]) as usize;
        let body = self.e.finish(outputs, n_inputs, self.tape.n_params());
        let init = self
            .carried
            .iter()
            .map(|&(_, outer)| outer.unwrap_or_else(|| e.constant(-0.0)))
            .collect();
        let lp = e.push_loop(Loop {
            trips: 1,
            body,
            init,
            invariants: self.invariants,
            reads: self.reads,
            writes: Vec::new(),
        });
        let carried = self.carried.iter().enumerate();
        carried
            .map(|(k, &(v, _))| (v, e.push(Inst::loop_out(lp, k as u32))))
            .collect()
    }
}
