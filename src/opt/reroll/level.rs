//! What rerolling knows about one tape level (the root tape or a loop
//! body): leaves hoisted to the front, a shape key per instruction, where
//! each value is last used, the address of every value that is a buffer
//! element, and which instruction writes or reads each array.

use super::nest;
use crate::ir::{Access, ArrayId, Buffer, Inst, Loop, Op, Output, Shape, Tape, Value, WriteMode};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A fast hasher (Fx-style) for keys that are small integers or hashes.
#[derive(Default, Clone, Copy)]
pub(super) struct Mix(u64);

impl Mix {
    /// Mixes in one word.
    pub(super) fn add(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for Mix {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, x: u8) {
        self.add(x as u64)
    }
    fn write_u32(&mut self, x: u32) {
        self.add(x as u64)
    }
    fn write_u64(&mut self, x: u64) {
        self.add(x)
    }
    fn write_usize(&mut self, x: usize) {
        self.add(x as u64)
    }
    fn write_i64(&mut self, x: i64) {
        self.add(x as u64)
    }
}

/// A hash map with [`Mix`].
pub(super) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Mix>>;

/// State shared by every level of one run: the root's arrays and what
/// may be done with them.
pub(super) struct Shared {
    /// Lengths of the root tape's arrays (grows as loops get writes).
    pub arrays: Vec<u32>,
    /// Arrays that must keep their identity: those of the input tape.
    pub pinned: Vec<bool>,
    /// Arrays written by a `store` instruction, by an accumulating write or
    /// by more than one loop: anything touching them is left alone.
    pub unsafe_arrays: Vec<bool>,
    /// Fewest trips worth a loop.
    pub min_trips: usize,
    /// Rounds per level at most.
    pub max_rounds: usize,
}

impl Shared {
    /// The shared state for rerolling root tape `tape`.
    pub fn new(tape: &Tape, min_trips: usize, max_rounds: usize) -> Shared {
        let n = tape.arrays().len();
        let mut writes = vec![0u32; n];
        let mut bad = vec![false; n];
        count_writes(tape, &mut writes, &mut bad);
        Shared {
            arrays: tape.arrays().to_vec(),
            pinned: vec![true; n],
            unsafe_arrays: (0..n).map(|a| bad[a] || writes[a] > 1).collect(),
            min_trips,
            max_rounds,
        }
    }

    /// A new array of `len` elements, written by one loop.
    pub fn new_array(&mut self, len: u32) -> ArrayId {
        self.arrays.push(len);
        self.pinned.push(false);
        self.unsafe_arrays.push(false);
        self.arrays.len() as ArrayId - 1
    }

    /// Whether array `a` may not be touched.
    pub fn is_unsafe(&self, a: ArrayId) -> bool {
        self.unsafe_arrays.get(a as usize).copied().unwrap_or(true)
    }
}

fn count_writes(tape: &Tape, writes: &mut [u32], bad: &mut [bool]) {
    for inst in tape.insts() {
        if inst.op == Op::Store {
            if let Some(b) = bad.get_mut(inst.args[0] as usize) {
                *b = true;
            }
        }
    }
    for lp in tape.loops() {
        for w in &lp.writes {
            if let Buffer::Array(a) = w.access.buffer {
                if let Some(c) = writes.get_mut(a as usize) {
                    *c += 1;
                }
                if w.mode == WriteMode::Add {
                    if let Some(b) = bad.get_mut(a as usize) {
                        *b = true;
                    }
                }
            }
        }
        count_writes(&lp.body, writes, bad);
    }
}

/// The level being rerolled: its depth in the loop nest and what its
/// input slots hold.
pub(super) struct Ctx<'s> {
    /// Number of enclosing loops (0 for the root tape).
    pub depth: usize,
    /// For each `input` slot of this level: the buffer element it holds
    /// (strides one per enclosing loop), if it is one.
    pub slot_addr: Vec<Option<Access>>,
    /// State of the whole run.
    pub shared: &'s mut Shared,
}

impl Ctx<'_> {
    /// The address of the value `inst` yields at this level, if it is a
    /// buffer element: an addressable input slot, a parameter, or an
    /// element of a safe array.
    pub fn addr_of(&self, inst: &Inst) -> Option<Access> {
        let zeros = || vec![0; self.depth];
        match inst.op {
            Op::Input => self.slot_addr.get(inst.args[0] as usize).cloned().flatten(),
            Op::Param => Some(Access {
                buffer: Buffer::Param,
                offset: inst.args[0] as i64,
                strides: zeros(),
            }),
            Op::Elem if !self.shared.is_unsafe(inst.args[0]) => Some(Access {
                buffer: Buffer::Array(inst.args[0]),
                offset: inst.args[1] as i64,
                strides: zeros(),
            }),
            _ => None,
        }
    }
}

/// Rebuilds `tape` with its leaves (`input`, `param`, `const`) first,
/// each once, in order of first appearance; the other instructions keep
/// their order. Leaves are pure, so this is exact.
pub(super) fn hoist(tape: &Tape) -> Tape {
    let insts = tape.insts();
    let mut map = vec![Value::MAX; insts.len()];
    let mut seen: FastMap<Inst, Value> = FastMap::default();
    let mut out: Vec<Inst> = Vec::with_capacity(insts.len());
    for (i, inst) in insts.iter().enumerate() {
        if is_leaf(inst.op) {
            map[i] = *seen.entry(*inst).or_insert_with(|| {
                out.push(*inst);
                out.len() as Value - 1
            });
        }
    }
    let mut loops = Vec::new();
    for (i, inst) in insts.iter().enumerate() {
        if !is_leaf(inst.op) {
            let mut new = remap(inst, &map);
            if inst.op == Op::Loop {
                loops.push(remap_loop(tape.loop_of(inst), &map));
                new.args[0] = loops.len() as u32 - 1;
            }
            map[i] = out.len() as Value;
            out.push(new);
        }
    }
    let outputs = remap_outputs(tape.outputs(), &map);
    Tape::from_structured(
        out,
        outputs,
        tape.n_inputs(),
        tape.n_params(),
        loops,
        tape.arrays().to_vec(),
    )
}

/// Whether `op` is a leaf: no operands, no effect.
pub(super) fn is_leaf(op: Op) -> bool {
    matches!(op, Op::Input | Op::Param | Op::Const)
}

/// `inst` with its value operands mapped through `map`.
pub(super) fn remap(inst: &Inst, map: &[Value]) -> Inst {
    let mut new = *inst;
    match inst.op.shape() {
        Shape::Values(n) => {
            for a in &mut new.args[..n] {
                *a = map[*a as usize];
            }
        }
        Shape::ValueImm => new.args[0] = map[inst.args[0] as usize],
        Shape::ArrayStore => new.args[2] = map[inst.args[2] as usize],
        _ => {}
    }
    new
}

/// A copy of `lp` with its initial values and invariants mapped.
pub(super) fn remap_loop(lp: &Loop, map: &[Value]) -> Loop {
    let mut lp = lp.clone();
    for v in lp.init.iter_mut().chain(&mut lp.invariants) {
        *v = map[*v as usize];
    }
    lp
}

/// Output entries with their values mapped.
pub(super) fn remap_outputs(outputs: &[Output], map: &[Value]) -> Vec<Output> {
    outputs
        .iter()
        .map(|o| match *o {
            Output::Value(v) => Output::Value(map[v as usize]),
            slice => slice,
        })
        .collect()
}

/// Per-instruction facts of one level (a hoisted tape).
pub(super) struct Level<'t> {
    /// The tape, leaves first.
    pub tape: &'t Tape,
    /// Number of leading leaves: segments start at or after it.
    pub lead: usize,
    /// Shape key of each instruction (op, immediates, operand kinds).
    pub key: Vec<u64>,
    /// Instructions that are never part of a loop body (guards, stores,
    /// anything touching an unsafe array).
    pub barrier: Vec<bool>,
    /// Last instruction reading each value (`u32::MAX`: an output).
    pub last_use: Vec<u32>,
    /// Addresses of the leaves (by position).
    pub leaf_addr: Vec<Option<Access>>,
    /// Addresses of the `elem` instructions (by position).
    pub elem_addr: FastMap<u32, Access>,
    /// For each array written at this level, the loop instruction whose nest writes it.
    pub writer: FastMap<ArrayId, u32>,
    /// For each array, the instructions of this level reading it (`elem`s
    /// and loops whose nest reads it).
    pub readers: FastMap<ArrayId, Vec<u32>>,
    /// Nesting depth of the level.
    pub depth: usize,
}

impl<'t> Level<'t> {
    /// Facts about `tape` (hoisted) as a level of context `ctx`.
    pub fn new(tape: &'t Tape, ctx: &Ctx<'_>) -> Level<'t> {
        let insts = tape.insts();
        let n = insts.len();
        let lead = insts.iter().take_while(|i| is_leaf(i.op)).count();
        let leaf_addr = insts[..lead].iter().map(|i| ctx.addr_of(i)).collect();
        let mut level = Level {
            tape,
            lead,
            key: vec![0; n],
            barrier: vec![false; n],
            last_use: vec![0; n],
            leaf_addr,
            elem_addr: FastMap::default(),
            writer: FastMap::default(),
            readers: FastMap::default(),
            depth: ctx.depth,
        };
        let shared = &*ctx.shared;
        for (p, inst) in insts.iter().enumerate() {
            for u in tape.uses(p) {
                level.last_use[u as usize] = p as u32;
            }
            match inst.op {
                Op::Elem => {
                    level
                        .readers
                        .entry(inst.args[0])
                        .or_default()
                        .push(p as u32);
                    match ctx.addr_of(inst) {
                        Some(a) => {
                            level.elem_addr.insert(p as u32, a);
                        }
                        None => level.barrier[p] = true,
                    }
                }
                Op::Loop => {
                    let mut touches_unsafe = false;
                    nest::for_each_array(tape.loop_of(inst), &mut |a, write| {
                        touches_unsafe |= shared.is_unsafe(a);
                        if write {
                            level.writer.insert(a, p as u32);
                        } else {
                            level.readers.entry(a).or_default().push(p as u32);
                        }
                    });
                    level.barrier[p] = touches_unsafe;
                }
                Op::Guard | Op::Store => level.barrier[p] = true,
                _ => {}
            }
        }
        for o in tape.outputs() {
            if let Output::Value(v) = *o {
                level.last_use[v as usize] = u32::MAX;
            }
        }
        for p in lead..n {
            level.key[p] = level.compute_key(p);
        }
        level
    }

    fn compute_key(&self, p: usize) -> u64 {
        let inst = &self.tape.insts()[p];
        let mut h = Mix::default();
        if self.barrier[p] {
            // Never equal to another key (in practice): a unique salt.
            h.add(0xba44_1e40 ^ ((p as u64) << 20));
            h.add(p as u64);
            return h.finish() | 1;
        }
        h.add(inst.op as u64);
        match inst.op {
            Op::PowI | Op::LoopOut => h.add(inst.args[1] as u64),
            Op::Loop => nest::hash(self.tape.loop_of(inst), &mut h),
            _ => {}
        }
        for u in self.tape.uses(p) {
            h.add(self.tag(u as usize));
        }
        h.finish()
    }

    /// The kind of operand `u` for shape keys: a constant by its bits, an
    /// addressable leaf by its buffer, another leaf by itself, any other
    /// value alike.
    fn tag(&self, u: usize) -> u64 {
        if u >= self.lead {
            return 6;
        }
        let inst = &self.tape.insts()[u];
        let mut h = Mix::default();
        match (&self.leaf_addr[u], inst.op) {
            (_, Op::Const) => {
                h.add(1);
                h.add(inst.const_value().to_bits());
            }
            (Some(a), _) => {
                h.add(2);
                h.add(buffer_tag(a.buffer));
            }
            (None, op) => {
                h.add(3 + op as u64);
                h.add(inst.args[0] as u64);
            }
        }
        h.finish()
    }

    /// The address of value `v`, if it is a buffer element.
    pub fn addr(&self, v: usize) -> Option<&Access> {
        if v < self.lead {
            self.leaf_addr[v].as_ref()
        } else {
            self.elem_addr.get(&(v as u32))
        }
    }

    /// Static size of instruction `p`: one, plus a loop's nested bodies.
    pub fn weight(&self, p: usize) -> usize {
        let inst = &self.tape.insts()[p];
        if inst.op == Op::Loop {
            1 + self.tape.loop_of(inst).body.static_len()
        } else {
            1
        }
    }
}

/// A number telling buffers apart.
pub(super) fn buffer_tag(b: Buffer) -> u64 {
    match b {
        Buffer::Input => 0,
        Buffer::Param => 1,
        Buffer::Array(a) => 2 + a as u64,
    }
}

/// Whether two stride lists are equal (without a `memcmp` call for the
/// short lists of every operand: they are mostly empty or one long).
#[inline]
pub(super) fn same_strides(a: &[i64], b: &[i64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}
