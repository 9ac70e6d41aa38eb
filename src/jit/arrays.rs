//! Which array elements a compiled function resets before each call.
//!
//! Every evaluation starts with every array element at `-0.0`, but the
//! arrays live in a scratch buffer that other calls (of this function or of
//! another one sharing the workspace) leave dirty. Resetting everything
//! costs a pass over memory per call, as much as a cheap loop over the
//! same array; most arrays of a forward sweep, though, are stored before
//! they are read, and their initial value is never seen.
//!
//! So the reset is limited to the elements whose initial value may be
//! observed: a pass over the root tape in order tracks the elements
//! certainly stored so far (a `store`, or a loop's `Store`-mode write at
//! every index it takes), and every possible observation (`elem`, a strided
//! read, an `Add`-mode write, a slice output) of an element not certainly
//! stored yet marks it for reset. Within one loop, observations are judged
//! against what was stored before the loop started (conservative: an
//! element written by an earlier iteration and then read is still reset).
//! A guard failing in between ends the evaluation, so it cannot expose an
//! element this reasoning skipped. Two things the lowering does count:
//! an `add` write that is the first access of its elements is a store
//! ([`fresh_writes`]), and one that takes its old value in a register
//! from the previous iteration (`carry`) reads memory in the first
//! iteration only. Reset ranges are the runs of elements to reset, so an
//! array stored in its middle is reset at its ends only. A checkpointed loop's forward step
//! counts with its loop: its observations, not its stores (it may not run).

use crate::ir::{Access, Buffer, Loop, Op, Tape, WriteMode};
use std::collections::HashMap;
use std::ops::Range;

/// Most iterations a `Store` write is enumerated over to learn the elements
/// it stores, unless its array is larger (twice its length is allowed: the
/// work then stays proportional to the memory the function uses anyway).
/// Beyond that the write is assumed to store nothing: still correct.
const ENUMERATION_LIMIT: u64 = 1 << 22;

/// What a loop nest does to the arrays.
#[derive(Default)]
struct Effects {
    /// `(array, lo, hi)`: elements `lo..=hi` may be read.
    observed: Vec<(u32, i64, i64)>,
    /// Elements certainly stored: a single element, or a write at every
    /// iteration of the nest with these trip counts.
    stored: Vec<(u32, Stored)>,
}

enum Stored {
    Element(u32),
    Strided(Access, Vec<u32>),
}

/// Per array: the elements certainly stored so far, and the ranges that
/// must be reset (inclusive, in no order, possibly overlapping).
struct Coverage {
    lens: Vec<u32>,
    stored: Vec<Vec<bool>>,
    reset: Vec<Vec<(i64, i64)>>,
}

/// Reset ranges of one array closer than this many elements are reset as
/// one: a few more stores cost less than one more range.
const RESET_GAP: i64 = 8;

impl Coverage {
    fn observe(&mut self, array: u32, lo: i64, hi: i64) {
        let a = array as usize;
        let stored = &self.stored[a];
        if stored.is_empty() {
            self.reset[a].push((lo, hi));
            return;
        }
        // Each run of elements not stored yet (`position` scans fast).
        let mut e = lo as usize;
        let end = hi as usize + 1;
        while let Some(f) = stored[e..end].iter().position(|&s| !s) {
            let first = e + f;
            let len = stored[first..end].iter().position(|&s| s);
            let last = len.map_or(end, |l| first + l);
            self.reset[a].push((first as i64, last as i64 - 1));
            e = last;
        }
    }

    fn store(&mut self, array: u32, element: i64) {
        let a = array as usize;
        if self.stored[a].is_empty() {
            self.stored[a] = vec![false; self.lens[a] as usize];
        }
        self.stored[a][element as usize] = true;
    }

    /// Marks every element `access` takes over loops of `trips`, unless
    /// that is too many iterations to enumerate.
    fn store_strided(&mut self, array: u32, access: &Access, trips: &[u32]) {
        // Loops with stride 0 or one trip do not move the element.
        let dims: Vec<(i64, u32)> = access
            .strides
            .iter()
            .zip(trips)
            .filter(|&(&s, &n)| s != 0 && n > 1)
            .map(|(&s, &n)| (s, n))
            .collect();
        let total: u64 = dims.iter().map(|&(_, n)| n as u64).product();
        if total > ENUMERATION_LIMIT.max(2 * self.lens[array as usize] as u64) {
            return;
        }
        if let [(s @ (1 | -1), n)] = dims[..] {
            // A contiguous run, forwards or backwards.
            if self.stored[array as usize].is_empty() {
                self.stored[array as usize] = vec![false; self.lens[array as usize] as usize];
            }
            let last = access.offset + s * (n as i64 - 1);
            let (lo, hi) = (access.offset.min(last), access.offset.max(last));
            self.stored[array as usize][lo as usize..=hi as usize].fill(true);
            return;
        }
        let mut index = vec![0u32; dims.len()];
        loop {
            let e = access.offset
                + dims
                    .iter()
                    .zip(&index)
                    .map(|(&(s, _), &i)| s * i as i64)
                    .sum::<i64>();
            self.store(array, e);
            // Odometer, innermost fastest.
            let mut d = dims.len();
            loop {
                if d == 0 {
                    return;
                }
                d -= 1;
                index[d] += 1;
                if index[d] < dims[d].1 {
                    break;
                }
                index[d] = 0;
            }
        }
    }
}

/// Marks every array loop `lp` (nested loops included) names.
fn mark_touched(lp: &Loop, touched: &mut [bool]) {
    let accesses = lp.reads.iter().chain(lp.writes.iter().map(|w| &w.access));
    for a in accesses {
        if let Buffer::Array(k) = a.buffer {
            touched[k as usize] = true;
        }
    }
    for i in lp.body.insts() {
        match i.op {
            Op::Elem | Op::Store => touched[i.args[0] as usize] = true,
            Op::Loop => mark_touched(lp.body.loop_of(i), touched),
            _ => {}
        }
    }
}

/// The `add` writes of root loops that are the first access of every
/// element they write in an evaluation: by root loop instruction, a flag
/// per write. Such a write adds to the initial `-0.0`, and `-0.0 + x` is
/// `x` bit for bit (NaN included), so the JIT lowers it as a store and the
/// element needs no reset (a reverse loop's adjoint accumulation starts
/// so, e.g. rosenbrock's `a[998 - i] += ...`).
///
/// Judged for a loop that is not checkpointed and has no nested loop, on an
/// array no earlier root instruction names and the loop touches through its
/// writes alone (no read, no `elem`/`store` in the body), all with the same
/// strides and distinct offsets: then write `w` is first at each element
/// unless another write reaches it `d >= 1` iterations earlier, i.e. has
/// offset `offset_w + d * stride` for some `d` in `1..trips`.
pub(super) fn fresh_writes(tape: &Tape) -> HashMap<u32, Vec<bool>> {
    let mut touched = vec![false; tape.arrays().len()];
    let mut out = HashMap::new();
    for (at, inst) in tape.insts().iter().enumerate() {
        match inst.op {
            Op::Elem | Op::Store => touched[inst.args[0] as usize] = true,
            Op::Loop => {
                let lp = tape.loop_of(inst);
                let plain = tape.checkpoint_of(inst).is_none()
                    && !lp.body.insts().iter().any(|i| i.op == Op::Loop);
                if plain {
                    let fresh = fresh_in(lp, &touched);
                    if fresh.contains(&true) {
                        out.insert(at as u32, fresh);
                    }
                }
                mark_touched(lp, &mut touched);
                if let Some(cp) = tape.checkpoint_of(inst) {
                    let step = super::checkpoint::step_loop(lp, cp);
                    mark_touched(&step, &mut touched);
                }
            }
            _ => {}
        }
    }
    out
}

/// [`fresh_writes`] for one loop, given the arrays touched before it.
fn fresh_in(lp: &Loop, touched: &[bool]) -> Vec<bool> {
    let mut fresh = vec![false; lp.writes.len()];
    for (k, w) in lp.writes.iter().enumerate() {
        let Buffer::Array(a) = w.access.buffer else {
            continue;
        };
        if w.mode != WriteMode::Add
            || touched[a as usize]
            || lp.reads.iter().any(|r| r.buffer == Buffer::Array(a))
            || lp
                .body
                .insts()
                .iter()
                .any(|i| matches!(i.op, Op::Elem | Op::Store) && i.args[0] == a)
        {
            continue;
        }
        let others: Vec<&Access> = lp
            .writes
            .iter()
            .enumerate()
            .filter(|&(j, o)| j != k && o.access.buffer == Buffer::Array(a))
            .map(|(_, o)| &o.access)
            .collect();
        if others
            .iter()
            .any(|o| o.strides != w.access.strides || o.offset == w.access.offset)
        {
            continue;
        }
        let s = *w
            .access
            .strides
            .last()
            .expect("verified: one stride per loop");
        if s == 0 && lp.trips > 1 {
            continue; // the same element in every iteration
        }
        let earlier = |o: &&Access| {
            let diff = o.offset - w.access.offset;
            s != 0 && diff % s == 0 && (1..lp.trips as i64).contains(&(diff / s))
        };
        fresh[k] = !others.iter().any(earlier);
    }
    fresh
}

/// Collects the array effects of `lp` (nested loops included), run inside
/// loops of `outer` trip counts.
/// `fresh`: per write of `lp`, whether it is an `add` lowered as a store
/// (see [`fresh_writes`]); `first_only`: whether it is an `add` that reads
/// memory in the first iteration only (its old value comes in a register
/// afterwards, see `carry`). Both empty for none; root loops only.
fn collect(lp: &Loop, outer: &[u32], (fresh, first_only): (&[bool], &[bool]), fx: &mut Effects) {
    let mut trips = outer.to_vec();
    trips.push(lp.trips);
    for r in &lp.reads {
        if let Buffer::Array(a) = r.buffer {
            let (lo, hi) = r.range(&trips);
            fx.observed.push((a, lo, hi));
        }
    }
    for inst in lp.body.insts() {
        match inst.op {
            Op::Elem => fx
                .observed
                .push((inst.args[0], inst.args[1] as i64, inst.args[1] as i64)),
            Op::Store => fx
                .stored
                .push((inst.args[0], Stored::Element(inst.args[1]))),
            Op::Loop => collect(lp.body.loop_of(inst), &trips, (&[], &[]), fx),
            _ => {}
        }
    }
    for (k, w) in lp.writes.iter().enumerate() {
        let Buffer::Array(a) = w.access.buffer else {
            continue; // verified: writes go to arrays
        };
        let stores = w.mode == WriteMode::Store || fresh.get(k) == Some(&true);
        match w.mode {
            WriteMode::Add if !stores && first_only.get(k) == Some(&true) => {
                // A root loop: one stride, element `offset` at iteration 0.
                fx.observed.push((a, w.access.offset, w.access.offset));
            }
            WriteMode::Add if !stores => {
                let (lo, hi) = w.access.range(&trips);
                fx.observed.push((a, lo, hi));
            }
            _ => fx
                .stored
                .push((a, Stored::Strided(w.access.clone(), trips.clone()))),
        }
    }
}

/// The scratch ranges to fill with `-0.0` before each call of `tape`,
/// whose arrays start at `array_base` in scratch: every element whose
/// initial value the evaluation may observe (see the module docs).
pub(super) fn resets(tape: &Tape, array_base: &[usize]) -> Vec<Range<usize>> {
    let n = tape.arrays().len();
    let mut cov = Coverage {
        lens: tape.arrays().to_vec(),
        stored: vec![Vec::new(); n],
        reset: vec![Vec::new(); n],
    };
    let fresh = fresh_writes(tape);
    for (at, inst) in tape.insts().iter().enumerate() {
        match inst.op {
            Op::Elem => cov.observe(inst.args[0], inst.args[1] as i64, inst.args[1] as i64),
            Op::Store => cov.store(inst.args[0], inst.args[1] as i64),
            Op::Loop => {
                let mut fx = Effects::default();
                let lp = tape.loop_of(inst);
                let flags = fresh.get(&(at as u32)).map_or(&[][..], |f| &f[..]);
                // What `loops` lowers: the writes passing values in registers.
                let first_only: Vec<bool> = if tape.checkpoint_of(inst).is_none() {
                    let carry = super::carry::Carry::plan(lp);
                    carry.old.iter().map(Option::is_some).collect()
                } else {
                    Vec::new()
                };
                collect(lp, &[], (flags, &first_only), &mut fx);
                if let Some(cp) = tape.checkpoint_of(inst) {
                    // The forward step of a checkpoint may read arrays; it
                    // may also run no iteration at all (one trip), so what
                    // it stores is not counted.
                    let step = super::checkpoint::step_loop(lp, cp);
                    let mut step_fx = Effects::default();
                    collect(&step, &[], (&[], &[]), &mut step_fx);
                    fx.observed.extend(step_fx.observed);
                }
                for (a, lo, hi) in fx.observed {
                    cov.observe(a, lo, hi);
                }
                for (a, s) in fx.stored {
                    match s {
                        Stored::Element(e) => cov.store(a, e as i64),
                        Stored::Strided(access, trips) => cov.store_strided(a, &access, &trips),
                    }
                }
            }
            _ => {}
        }
    }
    for out in tape.outputs() {
        if let crate::ir::Output::Slice { array, start, len } = *out {
            if len > 0 {
                cov.observe(array, start as i64, start as i64 + len as i64 - 1);
            }
        }
    }
    let mut ranges: Vec<Range<usize>> = Vec::new();
    for (a, r) in cov.reset.iter_mut().enumerate() {
        r.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::new();
        for &(lo, hi) in r.iter() {
            match merged.last_mut() {
                Some(last) if lo <= last.1 + RESET_GAP => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        for (lo, hi) in merged {
            let range = array_base[a] + lo as usize..array_base[a] + hi as usize + 1;
            match ranges.last_mut() {
                Some(last) if last.end == range.start => last.end = range.end,
                _ => ranges.push(range),
            }
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Inst, Output, Write};

    fn access(buffer: Buffer, offset: i64, strides: Vec<i64>) -> Access {
        Access {
            buffer,
            offset,
            strides,
        }
    }

    /// A loop of `trips` iterations writing `write` (mode `mode`) from input
    /// `i`, and a second reading `read`.
    fn two_loops(trips: u32, write: Access, mode: WriteMode, read: Option<Access>) -> Tape {
        let mut t = Tape::new(trips as usize, 0);
        let a = t.add_array(10);
        assert_eq!(a, 0);
        let mut body = Tape::new(1, 0);
        let x = body.push(Inst::input(0));
        body.push_output(x);
        t.push_loop(Loop {
            trips,
            body,
            init: vec![],
            invariants: vec![],
            reads: vec![access(Buffer::Input, 0, vec![1])],
            writes: vec![Write {
                access: write,
                mode,
            }],
        });
        if let Some(read) = read {
            let mut body = Tape::new(2, 0);
            let s = body.push(Inst::input(0));
            let x = body.push(Inst::input(1));
            let y = body.push(Inst::binary(Op::Add, s, x));
            body.push_output(y);
            let z = t.push(Inst::constant(0.0));
            t.push_loop(Loop {
                trips,
                body,
                init: vec![z],
                invariants: vec![],
                reads: vec![read],
                writes: vec![],
            });
        }
        t.verify().unwrap();
        t
    }

    #[test]
    fn stored_elements_are_not_reset() {
        let arr = |offset, stride| access(Buffer::Array(0), offset, vec![stride]);
        // Stored at 0..8, read at 0..8: nothing to reset.
        let t = two_loops(8, arr(0, 1), WriteMode::Store, Some(arr(0, 1)));
        assert!(resets(&t, &[3]).is_empty());
        // Read one further than stored: only that element.
        let t = two_loops(8, arr(0, 1), WriteMode::Store, Some(arr(1, 1)));
        assert_eq!(resets(&t, &[3]), vec![11..12]);
        // Stored backwards at 9, 8, ..., 2, read at 2..10: nothing.
        let t = two_loops(8, arr(9, -1), WriteMode::Store, Some(arr(2, 1)));
        assert!(resets(&t, &[0]).is_empty());
        // Accumulated into one element: read before written (but for the
        // first iteration's, see `fresh_writes`).
        let t = two_loops(8, arr(0, 0), WriteMode::Add, None);
        assert_eq!(resets(&t, &[0]), vec![0..1]);
        // Accumulated into distinct elements of an untouched array: stored.
        let t = two_loops(8, arr(0, 1), WriteMode::Add, None);
        assert!(resets(&t, &[0]).is_empty());
        // Stored at even elements 0..6, read at 0..3: the gaps 1 and 3.
        let t = two_loops(4, arr(0, 2), WriteMode::Store, Some(arr(0, 1)));
        assert_eq!(resets(&t, &[0]), vec![1..4]);
    }

    #[test]
    fn slices_elems_and_stores_count() {
        let mut t = two_loops(
            4,
            access(Buffer::Array(0), 2, vec![1]),
            WriteMode::Store,
            None,
        );
        let b = t.add_array(4);
        let z = t.push(Inst::constant(1.0));
        t.push(Inst::store(b, 1, z));
        t.push(Inst::elem(b, 1));
        t.push(Inst::elem(b, 2));
        t.push_output_entry(Output::Slice {
            array: 0,
            start: 1,
            len: 6,
        });
        t.verify().unwrap();
        // Array 0: 1 and 6 of 1..=6 were never stored; array 1: element 2.
        assert_eq!(resets(&t, &[0, 10]), vec![1..7, 12..13]);
    }
}
