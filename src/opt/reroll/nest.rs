//! Loop instructions as units of a repeated segment: their arrays and
//! accesses, a structural hash that ignores access offsets and array
//! numbers, and matching of two loops up to those.

use super::level::Mix;
use crate::ir::{Access, ArrayId, Buffer, Loop, Op, Tape};

/// Calls `f(array, is_write)` for every array access in `lp`'s nest:
/// strided reads and writes, and `elem`/`store` in its bodies.
pub(super) fn for_each_array(lp: &Loop, f: &mut impl FnMut(ArrayId, bool)) {
    for r in &lp.reads {
        if let Buffer::Array(a) = r.buffer {
            f(a, false);
        }
    }
    for w in &lp.writes {
        if let Buffer::Array(a) = w.access.buffer {
            f(a, true);
        }
    }
    for inst in lp.body.insts() {
        match inst.op {
            Op::Elem => f(inst.args[0], false),
            Op::Store => f(inst.args[0], true),
            _ => {}
        }
    }
    for inner in lp.body.loops() {
        for_each_array(inner, f);
    }
}

/// Calls `f` on every strided access of `lp`'s nest in a fixed order:
/// reads, writes, then the nested loops in table order.
pub(super) fn for_each_access_mut(lp: &mut Loop, f: &mut impl FnMut(&mut Access)) {
    for r in &mut lp.reads {
        f(r);
    }
    for w in &mut lp.writes {
        f(&mut w.access);
    }
    let body = std::mem::take(&mut lp.body);
    let (n_inputs, n_params) = (body.n_inputs(), body.n_params());
    let (insts, outputs, mut loops, arrays) = body.into_parts();
    for inner in &mut loops {
        for_each_access_mut(inner, f);
    }
    lp.body = Tape::from_structured(insts, outputs, n_inputs, n_params, loops, arrays);
}

/// Mixes `lp`'s structure into `h`: everything but access offsets, array
/// numbers and (at the top) the values of initial values and invariants.
pub(super) fn hash(lp: &Loop, h: &mut Mix) {
    h.add(lp.trips as u64);
    h.add(lp.init.len() as u64);
    h.add(lp.invariants.len() as u64);
    hash_accesses(lp, h);
    hash_tape(&lp.body, h);
}

fn hash_accesses(lp: &Loop, h: &mut Mix) {
    let mut one = |a: &Access| {
        h.add(kind(a.buffer) as u64);
        for &s in &a.strides {
            h.add(s as u64);
        }
    };
    for r in &lp.reads {
        one(r);
    }
    for w in &lp.writes {
        one(&w.access);
    }
}

fn hash_tape(t: &Tape, h: &mut Mix) {
    h.add(t.len() as u64);
    for inst in t.insts() {
        h.add(inst.op as u64);
        let skip = matches!(inst.op, Op::Elem | Op::Store) as usize;
        for &a in &inst.args[skip..] {
            h.add(a as u64);
        }
    }
    for inner in t.loops() {
        h.add(inner.trips as u64);
        for &v in inner.init.iter().chain(&inner.invariants) {
            h.add(v as u64);
        }
        hash_accesses(inner, h);
        hash_tape(&inner.body, h);
    }
}

fn kind(b: Buffer) -> u8 {
    match b {
        Buffer::Input => 0,
        Buffer::Param => 1,
        Buffer::Array(_) => 2,
    }
}

/// One pair of corresponding accesses of two matched nests: buffer and
/// offset in each (strides are equal).
pub(super) type AccessPair = (Buffer, i64, Buffer, i64);

/// Whether loops `l0` and `l1` have the same structure up to access
/// offsets and array numbers (initial values and invariants of the top
/// loops are not compared: they are operands). Collects the pairs of
/// corresponding accesses and of arrays named by `elem`/`store` in bodies.
pub(super) fn matches(
    l0: &Loop,
    l1: &Loop,
    accesses: &mut Vec<AccessPair>,
    arrays: &mut Vec<(ArrayId, ArrayId)>,
) -> bool {
    l0.trips == l1.trips
        && l0.init.len() == l1.init.len()
        && l0.invariants.len() == l1.invariants.len()
        && access_pairs(l0, l1, accesses)
        && tapes_match(&l0.body, &l1.body, accesses, arrays)
}

fn access_pairs(l0: &Loop, l1: &Loop, out: &mut Vec<AccessPair>) -> bool {
    if l0.reads.len() != l1.reads.len() || l0.writes.len() != l1.writes.len() {
        return false;
    }
    let pairs = l0.reads.iter().zip(&l1.reads).chain(
        l0.writes
            .iter()
            .zip(&l1.writes)
            .map(|(a, b)| (&a.access, &b.access)),
    );
    for (a, b) in pairs {
        if kind(a.buffer) != kind(b.buffer) || a.strides != b.strides {
            return false;
        }
        out.push((a.buffer, a.offset, b.buffer, b.offset));
    }
    l0.writes
        .iter()
        .zip(&l1.writes)
        .all(|(a, b)| a.mode == b.mode)
}

fn tapes_match(
    t0: &Tape,
    t1: &Tape,
    accesses: &mut Vec<AccessPair>,
    arrays: &mut Vec<(ArrayId, ArrayId)>,
) -> bool {
    if t0.len() != t1.len()
        || t0.n_inputs() != t1.n_inputs()
        || t0.outputs() != t1.outputs()
        || t0.loops().len() != t1.loops().len()
    {
        return false;
    }
    for (a, b) in t0.insts().iter().zip(t1.insts()) {
        if matches!(a.op, Op::Elem | Op::Store) && a.op == b.op {
            if a.args[1..] != b.args[1..] {
                return false;
            }
            arrays.push((a.args[0], b.args[0]));
        } else if a != b {
            return false;
        }
    }
    t0.loops().iter().zip(t1.loops()).all(|(a, b)| {
        a.trips == b.trips
            && a.init == b.init
            && a.invariants == b.invariants
            && access_pairs(a, b, accesses)
            && tapes_match(&a.body, &b.body, accesses, arrays)
    })
}
