//! Array elements passed between iterations in registers instead of memory.
//!
//! A reverse loop accumulates adjoints with `add` writes whose elements
//! overlap from one iteration to the next: rosenbrock's reverse body adds
//! to `a[998 - i]` and `a[999 - i]`, so iteration `i + 1` loads back the
//! element iteration `i` has just stored. Through memory, that is a load, a
//! store and a store-to-load forwarding on the loop's critical path per
//! iteration. Instead, write `wa` at iteration `i` and write `wb` at
//! iteration `i + 1` that address the same element (same array and strides,
//! `offset_b = offset_a - stride`, the stride of the loop being lowered)
//! pass the element's value in a register: `wa` does not store it ("deferred",
//! `wb` overwrites it in the next iteration), and `wb`, if it adds, takes
//! the old value from that register instead of loading it. Before the loop
//! the register holds `wb`'s element of iteration 0 (loaded), after it each
//! deferred write stores its value of the last iteration.
//!
//! This is exact only if nothing else in the loop reads or writes the array
//! between the two writes: so an array is forwarded only when the loop
//! touches it through its writes alone (no read of the loop, no `elem` or
//! `store` in the body), all of them with the same strides and distinct
//! offsets (distinct elements within one iteration), and the body has no
//! nested loop. A failing guard ends the evaluation, and the arrays with it.

use crate::ir::{Buffer, Loop, Op};

/// Which writes of a loop pass their elements in registers (see the module docs).
#[derive(Debug, Default, PartialEq)]
pub(super) struct Carry {
    /// The deferred writes (indices into the loop's writes), in order; each
    /// has one register, an extra carried value of the machine loop.
    pub deferred: Vec<usize>,
    /// Per deferred write, the write that addresses its element in the next
    /// iteration.
    pub next: Vec<usize>,
    /// Per write: the register (index into `deferred`) holding its old value,
    /// if it adds and is the `next` of a deferred write.
    pub old: Vec<Option<usize>>,
    /// Per write (or empty): an `add` that is the first access of its
    /// elements, lowered as a store (see `arrays::fresh_writes`).
    pub fresh: Vec<bool>,
}

impl Carry {
    /// Nothing passed in registers.
    pub const EMPTY: Carry = Carry {
        deferred: Vec::new(),
        next: Vec::new(),
        old: Vec::new(),
        fresh: Vec::new(),
    };

    /// The plan for `lp`, lowered as a machine loop of `lp.trips > 1`
    /// iterations; empty when nothing qualifies.
    pub fn plan(lp: &Loop) -> Carry {
        let mut c = Carry {
            old: vec![None; lp.writes.len()],
            ..Carry::default()
        };
        if lp.trips < 2 || lp.body.insts().iter().any(|i| i.op == Op::Loop) {
            return c;
        }
        let mut arrays: Vec<u32> = lp
            .writes
            .iter()
            .filter_map(|w| match w.access.buffer {
                Buffer::Array(a) => Some(a),
                _ => None,
            })
            .collect();
        arrays.sort_unstable();
        arrays.dedup();
        for a in arrays {
            let touched_otherwise = lp.reads.iter().any(|r| r.buffer == Buffer::Array(a))
                || lp
                    .body
                    .insts()
                    .iter()
                    .any(|i| matches!(i.op, Op::Elem | Op::Store) && i.args[0] == a);
            if touched_otherwise {
                continue;
            }
            let ws: Vec<usize> = (0..lp.writes.len())
                .filter(|&k| lp.writes[k].access.buffer == Buffer::Array(a))
                .collect();
            let first = &lp.writes[ws[0]].access;
            let stride = *first.strides.last().expect("verified: one stride per loop");
            let same_strides = ws
                .iter()
                .all(|&k| lp.writes[k].access.strides == first.strides);
            let mut offsets: Vec<i64> = ws.iter().map(|&k| lp.writes[k].access.offset).collect();
            offsets.sort_unstable();
            offsets.dedup();
            if stride == 0 || !same_strides || offsets.len() != ws.len() {
                continue;
            }
            for &wa in &ws {
                let target = lp.writes[wa].access.offset - stride;
                let Some(&wb) = ws.iter().find(|&&k| lp.writes[k].access.offset == target) else {
                    continue;
                };
                if lp.writes[wb].mode == crate::ir::WriteMode::Add {
                    c.old[wb] = Some(c.deferred.len());
                }
                c.deferred.push(wa);
                c.next.push(wb);
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Access, Inst, Tape, Write, WriteMode};

    fn write(array: u32, offset: i64, stride: i64, mode: WriteMode) -> Write {
        Write {
            access: Access {
                buffer: Buffer::Array(array),
                offset,
                strides: vec![stride],
            },
            mode,
        }
    }

    fn lp(trips: u32, writes: Vec<Write>, reads: Vec<Access>) -> Loop {
        let mut body = Tape::new(1 + reads.len(), 0);
        let x = body.push(Inst::input(0));
        for _ in &writes {
            body.push_output(x);
        }
        Loop {
            trips,
            body,
            init: vec![],
            invariants: vec![],
            reads,
            writes,
        }
    }

    #[test]
    fn overlapping_writes_pass_their_elements_on() {
        use WriteMode::{Add, Store};
        // Rosenbrock's reverse loop: a[998 - i] passes to a[999 - i] next time.
        let c = Carry::plan(&lp(
            9,
            vec![write(0, 998, -1, Add), write(0, 999, -1, Add)],
            vec![],
        ));
        assert_eq!(
            (c.deferred, c.next, c.old),
            (vec![0], vec![1], vec![None, Some(0)])
        );
        // A chain of three, forwards; a store takes no old value.
        let ws = vec![
            write(0, 2, 1, Add),
            write(0, 1, 1, Store),
            write(0, 0, 1, Add),
        ];
        let c = Carry::plan(&lp(9, ws, vec![]));
        assert_eq!((c.deferred, c.next), (vec![0, 1], vec![1, 2]));
        assert_eq!(c.old, vec![None, None, Some(1)]);
        // Not: one trip, other strides, a repeated element, a read of the array.
        let pair = || vec![write(0, 998, -1, Add), write(0, 999, -1, Add)];
        assert!(Carry::plan(&lp(1, pair(), vec![])).deferred.is_empty());
        let c = Carry::plan(&lp(
            9,
            vec![write(0, 0, 2, Add), write(0, 1, 1, Add)],
            vec![],
        ));
        assert!(c.deferred.is_empty());
        let c = Carry::plan(&lp(
            9,
            vec![write(0, 3, -1, Add), write(0, 3, -1, Add)],
            vec![],
        ));
        assert!(c.deferred.is_empty());
        let read = Access {
            buffer: Buffer::Array(0),
            offset: 0,
            strides: vec![1],
        };
        assert!(Carry::plan(&lp(9, pair(), vec![read])).deferred.is_empty());
        // Nor with an `elem` or a `store` of the array in the body, or a nested loop.
        for inst in [Inst::elem(0, 3), Inst::store(0, 3, 0)] {
            let mut l = lp(9, pair(), vec![]);
            l.body.push(inst);
            assert!(Carry::plan(&l).deferred.is_empty());
        }
        let mut l = lp(9, pair(), vec![]);
        l.body.push_loop(lp(2, vec![], vec![]));
        assert!(Carry::plan(&l).deferred.is_empty());
    }
}
