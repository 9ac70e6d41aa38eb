//! Precise matching of a candidate segment: given its start `a`, period
//! `d` and at most `max` iterations, decide for every instruction of the
//! first iteration what it becomes in a loop body, and for each of its
//! operands whether it is an intra-iteration value, a loop-carried value,
//! an invariant, a constant or a strided read; then check the following
//! iterations against that, stopping at the first one that differs. Also
//! plans how values of the segment used after it are recovered, and
//! weighs the loop against the unrolled segment.

use super::level::{is_leaf, same_strides, FastMap, Level, Shared};
use super::nest::{self, AccessPair};
use crate::ir::{Access, ArrayId, Buffer, Op, Value};

/// What one operand of a body instruction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Arg {
    /// The value of body position `j` of the same iteration.
    Intra(u32),
    /// Carried slot `c` (the previous iteration's value, or its initial value).
    Carried(u32),
    /// Invariant slot `c`.
    Invariant(u32),
    /// A constant (the value of the level tape, emitted in the body).
    Const(Value),
    /// Read slot `c`.
    Read(u32),
}

/// What one instruction of the first iteration becomes in the body.
#[derive(Clone, Debug)]
pub(super) enum Unit {
    /// The same instruction with mapped operands.
    Inst,
    /// An `elem` whose index is affine in the iteration: read slot `c`.
    Read(u32),
    /// An `elem` of an array written earlier in the same iteration (the
    /// first iteration's array stands for all: scratch).
    Elem,
    /// A loop: per access of its nest, the stride of the new loop level,
    /// and whether the access is to a per-iteration (scratch) array.
    Loop {
        /// New-level stride per access.
        strides: Vec<i64>,
        /// Scratch flag per access.
        scratch: Vec<bool>,
    },
}

/// How a value of the segment used after it is recovered.
#[derive(Clone, Copy, Debug)]
pub(super) enum Mat {
    /// `loopout` of carried slot `c` (the last iteration's value).
    Out(u32),
    /// `elem` of the array of write `w`, at the iteration number.
    Write(u32),
    /// A new `elem` of this array element (an absorbed read).
    Fresh(ArrayId, u32),
}

/// A segment that rolls into a loop, and how.
#[derive(Debug)]
pub(super) struct Template {
    /// First instruction.
    pub a: usize,
    /// Period (instructions per iteration).
    pub d: usize,
    /// Iterations.
    pub trips: usize,
    /// Per body position.
    pub units: Vec<Unit>,
    /// Operand classes, per unit from `arg_start[j]`.
    pub args: Vec<Arg>,
    /// Start of each unit's operands in `args` (one more entry at the end).
    pub arg_start: Vec<u32>,
    /// Carried slots: source body position and initial value.
    pub carried: Vec<(u32, Value)>,
    /// Invariant slots: values of the level tape.
    pub invariants: Vec<Value>,
    /// Read slots: accesses at the new loop's depth.
    pub reads: Vec<Access>,
    /// Body positions written to an array every iteration.
    pub writes: Vec<u32>,
    /// Values used after the segment: body position, iteration, how.
    pub plan: Vec<(u32, u32, Mat)>,
    /// Static instructions saved (values recovered after it not counted).
    pub saving: usize,
}

impl Template {
    /// One past the last instruction.
    pub fn end(&self) -> usize {
        self.a + self.trips * self.d
    }

    /// Operand classes of body position `j`.
    pub fn args_of(&self, j: usize) -> &[Arg] {
        &self.args[self.arg_start[j] as usize..self.arg_start[j + 1] as usize]
    }
}

/// The outcome of [`classify`]: how many iterations matched, and the
/// template if they make a worthwhile loop.
pub(super) struct Attempt {
    /// Iterations that matched the first (at least 1).
    pub trips: usize,
    /// The loop, if it has enough trips and saves instructions.
    pub template: Option<Template>,
}

/// Matches the segment of period `d` starting at `a` for up to `max` iterations.
pub(super) fn classify(
    level: &Level<'_>,
    shared: &Shared,
    a: usize,
    d: usize,
    max: usize,
) -> Attempt {
    let mut c = Classifier {
        level,
        shared,
        a,
        d,
        end_max: a + max * d,
        t: Template {
            a,
            d,
            trips: 1,
            units: Vec::with_capacity(d),
            args: Vec::new(),
            arg_start: Vec::with_capacity(d + 1),
            carried: Vec::new(),
            invariants: Vec::new(),
            reads: Vec::new(),
            writes: Vec::new(),
            plan: Vec::new(),
            saving: 0,
        },
        carried_ix: FastMap::default(),
        inv_ix: FastMap::default(),
        read_ix: FastMap::default(),
        pairs: FastMap::default(),
        back: FastMap::default(),
        acc: Vec::new(),
        arr: Vec::new(),
        elem_operands: Vec::new(),
    };
    let mut trips = 1;
    'iterations: for k in 1..max {
        c.pairs.clear();
        c.back.clear();
        for j in 0..d {
            if !c.unit(j, k) {
                break 'iterations;
            }
        }
        if k == 1 {
            c.t.arg_start.push(c.t.args.len() as u32);
        }
        trips = k + 1;
    }
    let template = if trips >= 2 { c.finish(trips) } else { None };
    Attempt { trips, template }
}

struct Classifier<'c, 't> {
    level: &'c Level<'t>,
    shared: &'c Shared,
    a: usize,
    d: usize,
    end_max: usize,
    t: Template,
    carried_ix: FastMap<(u32, Value), u32>,
    inv_ix: FastMap<Value, u32>,
    read_ix: FastMap<Access, u32>,
    /// This iteration's array correspondence (first iteration -> this one)
    /// with whether it is a scratch pair, and its inverse.
    pairs: FastMap<ArrayId, (ArrayId, bool)>,
    back: FastMap<ArrayId, ArrayId>,
    acc: Vec<AccessPair>,
    arr: Vec<(ArrayId, ArrayId)>,
    elem_operands: Vec<u32>,
}

impl Classifier<'_, '_> {
    /// Checks body position `j` in iteration `k` (and, for `k == 1`, decides its classes).
    fn unit(&mut self, j: usize, k: usize) -> bool {
        let (a, d) = (self.a, self.d);
        let (t, q) = (a + j, a + k * d + j);
        let tape = self.level.tape;
        let (it, iq) = (&tape.insts()[t], &tape.insts()[q]);
        if self.level.barrier[t] || self.level.barrier[q] || it.op != iq.op || is_leaf(it.op) {
            return false;
        }
        if k == 1 {
            self.t.arg_start.push(self.t.args.len() as u32);
        }
        match it.op {
            Op::Elem => {
                return self.elem_unit(j, k, (it.args[0], it.args[1]), (iq.args[0], iq.args[1]))
            }
            Op::PowI | Op::LoopOut if it.args[1] != iq.args[1] => return false,
            Op::Loop if !self.loop_unit(j, k, t, q) => return false,
            Op::Loop => {}
            _ if k == 1 => self.t.units.push(Unit::Inst),
            _ => {}
        }
        let start = if k == 1 {
            0
        } else {
            self.t.arg_start[j] as usize
        };
        for (o, (u0, uk)) in tape.uses(t).zip(tape.uses(q)).enumerate() {
            let (u0, uk) = (u0 as usize, uk as usize);
            if k == 1 {
                let Some(arg) = self.first_arg(u0, uk) else {
                    return false;
                };
                if it.op == Op::LoopOut && !matches!(arg, Arg::Intra(_)) {
                    return false;
                }
                self.t.args.push(arg);
            } else if !self.check_arg(self.t.args[start + o], uk, k) {
                return false;
            }
        }
        true
    }

    fn elem_unit(
        &mut self,
        j: usize,
        k: usize,
        (a0, e0): (u32, u32),
        (ak, ek): (u32, u32),
    ) -> bool {
        let (e0, ek) = (e0 as i64, ek as i64);
        if k == 1 {
            if a0 == ak {
                if !self.read_ok(a0, self.a + j) {
                    return false;
                }
                let mut strides = vec![0; self.level.depth];
                strides.push(ek - e0);
                let slot = self.read_slot(Access {
                    buffer: Buffer::Array(a0),
                    offset: e0,
                    strides,
                });
                self.t.units.push(Unit::Read(slot));
                return true;
            }
            if e0 != ek || self.pair(a0, ak, k) != Some(true) {
                return false;
            }
            self.t.units.push(Unit::Elem);
            return true;
        }
        match self.t.units[j] {
            Unit::Read(slot) => {
                let r = &self.t.reads[slot as usize];
                r.buffer == Buffer::Array(ak)
                    && ek == r.offset + k as i64 * r.strides[self.level.depth]
            }
            Unit::Elem => e0 == ek && self.pair(a0, ak, k) == Some(true),
            _ => false,
        }
    }

    fn loop_unit(&mut self, j: usize, k: usize, t: usize, q: usize) -> bool {
        let tape = self.level.tape;
        let (l0, lk) = (
            tape.loop_of(&tape.insts()[t]),
            tape.loop_of(&tape.insts()[q]),
        );
        let (mut acc, mut arr) = (std::mem::take(&mut self.acc), std::mem::take(&mut self.arr));
        acc.clear();
        arr.clear();
        let ok = nest::matches(l0, lk, &mut acc, &mut arr) && self.loop_pairs(j, k, &acc, &arr);
        self.acc = acc;
        self.arr = arr;
        ok
    }

    fn loop_pairs(
        &mut self,
        j: usize,
        k: usize,
        acc: &[AccessPair],
        arr: &[(ArrayId, ArrayId)],
    ) -> bool {
        let (mut strides, mut scratch) = (Vec::new(), Vec::new());
        for (m, &(b0, o0, bk, ok)) in acc.iter().enumerate() {
            let is_scratch = match (b0, bk) {
                (Buffer::Array(x0), Buffer::Array(xk)) => match self.pair(x0, xk, k) {
                    Some(s) => s,
                    None => return false,
                },
                (x, y) if x == y => false,
                _ => return false,
            };
            if k == 1 {
                if is_scratch && o0 != ok {
                    return false;
                }
                strides.push(if is_scratch { 0 } else { ok - o0 });
                scratch.push(is_scratch);
            } else {
                let Unit::Loop { strides, scratch } = &self.t.units[j] else {
                    return false;
                };
                if scratch[m] != is_scratch || ok != o0 + k as i64 * strides[m] {
                    return false;
                }
            }
        }
        for &(x0, xk) in arr {
            // Elements named in bodies: the same array, or a scratch pair
            // (the body keeps the first iteration's number).
            if self.pair(x0, xk, k).is_none() {
                return false;
            }
        }
        if k == 1 {
            self.t.units.push(Unit::Loop { strides, scratch });
        }
        true
    }

    /// Whether array `x0` of the first iteration corresponds to `xk` of
    /// iteration `k`: `Some(false)` for the same array, read only in the
    /// segment; `Some(true)` for arrays written by the same unit of each
    /// iteration and read only within it (scratch); `None` otherwise.
    fn pair(&mut self, x0: ArrayId, xk: ArrayId, k: usize) -> Option<bool> {
        if let Some(&(y, s)) = self.pairs.get(&x0) {
            return (y == xk).then_some(s);
        }
        if self.back.get(&xk).is_some_and(|&y| y != x0) {
            return None;
        }
        let result = self.pair_uncached(x0, xk, k)?;
        self.pairs.insert(x0, (xk, result));
        self.back.insert(xk, x0);
        Some(result)
    }

    fn pair_uncached(&self, x0: ArrayId, xk: ArrayId, k: usize) -> Option<bool> {
        let sh = self.shared;
        if sh.is_unsafe(x0) || sh.is_unsafe(xk) {
            return None;
        }
        let writer = |x: ArrayId| self.level.writer.get(&x).map(|&w| w as usize);
        if x0 == xk {
            return match writer(x0) {
                Some(w) if (self.a..self.end_max).contains(&w) => None,
                _ => Some(false),
            };
        }
        if sh.pinned[x0 as usize] || sh.pinned[xk as usize] {
            return None;
        }
        let (w0, wk) = (writer(x0)?, writer(xk)?);
        if !(self.a..self.a + self.d).contains(&w0) || wk != w0 + k * self.d {
            return None;
        }
        let within = |x: ArrayId, lo: usize, hi: usize| {
            self.level
                .readers
                .get(&x)
                .is_none_or(|rs| rs.iter().all(|&r| (lo..hi).contains(&(r as usize))))
        };
        let next = |w: usize| self.a + ((w - self.a) / self.d + 1) * self.d;
        (within(xk, wk, next(wk)) && within(x0, w0, next(w0))).then_some(true)
    }

    /// Whether moving a read of array `x` from position `at` to the start
    /// of an iteration of the segment reads the same value: no write to
    /// it in between.
    fn read_ok(&self, x: ArrayId, at: usize) -> bool {
        if self.shared.is_unsafe(x) {
            return false;
        }
        match self.level.writer.get(&x) {
            None => true,
            Some(&w) => (w as usize) < at.min(self.a) || w as usize >= self.end_max,
        }
    }

    fn read_slot(&mut self, access: Access) -> u32 {
        let n = self.t.reads.len() as u32;
        *self.read_ix.entry(access.clone()).or_insert_with(|| {
            self.t.reads.push(access);
            n
        })
    }

    /// Decides the class of an operand from its first two iterations.
    fn first_arg(&mut self, u0: usize, u1: usize) -> Option<Arg> {
        let (a, d) = (self.a, self.d);
        if u1 >= a + d {
            let j = u1 - a - d;
            return (u0 == a + j).then_some(Arg::Intra(j as u32));
        }
        if u0 >= a {
            return None;
        }
        if u1 >= a {
            let key = ((u1 - a) as u32, u0 as Value);
            let n = self.t.carried.len() as u32;
            let slot = *self.carried_ix.entry(key).or_insert_with(|| {
                self.t.carried.push(key);
                n
            });
            return Some(Arg::Carried(slot));
        }
        if u0 == u1 {
            if self.level.tape.insts()[u0].op == Op::Const {
                return Some(Arg::Const(u0 as Value));
            }
            let n = self.t.invariants.len() as u32;
            let slot = *self.inv_ix.entry(u0 as Value).or_insert_with(|| {
                self.t.invariants.push(u0 as Value);
                n
            });
            return Some(Arg::Invariant(slot));
        }
        let (x0, x1) = (self.level.addr(u0)?, self.level.addr(u1)?);
        if x0.buffer != x1.buffer || !same_strides(&x0.strides, &x1.strides) {
            return None;
        }
        if let Buffer::Array(x) = x0.buffer {
            if !self.read_ok(x, u0) || !self.read_ok(x, u1) {
                return None;
            }
        }
        let mut access = x0.clone();
        access.strides.push(x1.offset - x0.offset);
        self.note_elem(u0);
        self.note_elem(u1);
        Some(Arg::Read(self.read_slot(access)))
    }

    fn note_elem(&mut self, u: usize) {
        if u >= self.level.lead {
            self.elem_operands.push(u as u32);
        }
    }

    /// Checks an operand of iteration `k >= 2` against its class.
    fn check_arg(&mut self, arg: Arg, uk: usize, k: usize) -> bool {
        let (a, d) = (self.a, self.d);
        match arg {
            Arg::Intra(j) => uk == a + k * d + j as usize,
            Arg::Carried(c) => uk == a + (k - 1) * d + self.t.carried[c as usize].0 as usize,
            Arg::Invariant(c) => uk == self.t.invariants[c as usize] as usize,
            Arg::Const(v) => uk == v as usize,
            Arg::Read(c) => {
                let depth = self.level.depth;
                let r = &self.t.reads[c as usize];
                let ok = uk < a
                    && self.level.addr(uk).is_some_and(|x| {
                        x.buffer == r.buffer
                            && same_strides(&x.strides, &r.strides[..depth])
                            && x.offset == r.offset + k as i64 * r.strides[depth]
                    });
                let array_ok = match r.buffer {
                    Buffer::Array(x) => self.read_ok(x, uk),
                    _ => true,
                };
                if ok && array_ok {
                    self.note_elem(uk);
                }
                ok && array_ok
            }
        }
    }

    /// Plans the values used after the segment and weighs the loop.
    fn finish(mut self, trips: usize) -> Option<Template> {
        let (a, d, level) = (self.a, self.d, self.level);
        let end = a + trips * d;
        self.t.trips = trips;
        let mut write_ix: FastMap<u32, u32> = FastMap::default();
        let mut carried_src: FastMap<u32, u32> = FastMap::default();
        for (c, &(j, _)) in self.t.carried.iter().enumerate() {
            carried_src.entry(j).or_insert(c as u32);
        }
        for k in 0..trips {
            for j in 0..d {
                let v = a + k * d + j;
                if (level.last_use[v] as usize) < end {
                    continue;
                }
                if level.tape.insts()[v].op == Op::Loop {
                    return None; // a loopout after the segment: not handled
                }
                let how = match self.t.units[j] {
                    Unit::Read(c) => {
                        let r = &self.t.reads[c as usize];
                        let Buffer::Array(x) = r.buffer else {
                            return None;
                        };
                        Mat::Fresh(x, (r.offset + k as i64 * r.strides[level.depth]) as u32)
                    }
                    _ => match carried_src.get(&(j as u32)) {
                        Some(&c) if k == trips - 1 => Mat::Out(c),
                        _ => {
                            let n = self.t.writes.len() as u32;
                            let w = *write_ix.entry(j as u32).or_insert_with(|| {
                                self.t.writes.push(j as u32);
                                n
                            });
                            Mat::Write(w)
                        }
                    },
                };
                self.t.plan.push((j as u32, k as u32, how));
            }
        }
        let per_iter: usize = (0..d).map(|j| level.weight(a + j)).sum();
        let body_units: usize = (0..d)
            .filter(|&j| !matches!(self.t.units[j], Unit::Read(_)))
            .map(|j| level.weight(a + j))
            .sum();
        let mut consts: Vec<Value> = self
            .t
            .args
            .iter()
            .filter_map(|x| match x {
                Arg::Const(v) => Some(*v),
                _ => None,
            })
            .collect();
        consts.sort_unstable();
        consts.dedup();
        self.elem_operands.sort_unstable();
        self.elem_operands.dedup();
        let freed = self
            .elem_operands
            .iter()
            .filter(|&&u| (level.last_use[u as usize] as usize) < end)
            .count();
        let slots = self.t.carried.len() + self.t.invariants.len() + self.t.reads.len();
        // Values recovered after the loop are not counted: root outputs
        // read them as array slices, and a later loop reading them absorbs
        // them in the next round (the run checks the total at the end).
        let before = trips * per_iter + freed;
        let after = 1 + slots + consts.len() + body_units;
        if trips < self.shared.min_trips || body_units == 0 || after >= before {
            return None;
        }
        self.t.saving = before - after;
        Some(self.t)
    }
}
