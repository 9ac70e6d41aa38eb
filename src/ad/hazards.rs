//! Tapes the reverse transform would differentiate wrongly, found before it
//! runs so that it refuses them: a wrong gradient that looks right is the
//! worst thing an AD library can return.
//!
//! A reverse loop recomputes each iteration of its forward loop after the
//! whole forward sweep, reading the arrays again and running the body
//! again. Three patterns of arrays break that (found by the differential
//! suite; the `reverse_*` tests of `tests/differential.rs` show each):
//!
//! - an array element read inside a loop (a strided read, or an `elem` in a
//!   body) is written afterwards, later in the tape or by a later iteration:
//!   the recomputation sees the later value;
//! - a loop's `store` write hits an element an earlier write of the same
//!   loop wrote in the same iteration: the earlier value's adjoint must be
//!   zero, but the reverse body reads every write's adjoint before it resets
//!   any;
//! - a loop body stores into an array (a `store`, or a nested loop's
//!   writes): the recomputation runs those side effects again, backwards.
//!
//! Except for scratch arrays (see [`scratch`]): an array touched only
//! inside one loop's body (its owner, at any depth below the root), each
//! element overwritten in every iteration of the owner before it is read. Rerolling makes those (gmm), and running their stores again
//! is what makes the re-reads right. `fold` makes no arrays; parsed and
//! hand-built tapes can have all three patterns. Accesses do not depend on
//! values, so walking the accesses once finds every such element.

use crate::error::{Error, Result};
use crate::ir::{Access, Buffer, Loop, Op, Tape, WriteMode};

mod scratch;

/// Most array accesses [`reverse_hazard`] enumerates to rule out a re-read
/// overwritten element; past it, such a tape is refused unchecked (rerolled
/// tapes stay far below: their loops do the work of the tape they replace).
const MAX_ACCESSES: u64 = 1 << 26;

/// Why the reverse transform would get `tape` wrong, naming the loop, the
/// array element and the instruction, or `None` if it handles the tape.
/// Loops are named by their instruction, `%3/%1` for the loop at body
/// instruction `%1` of loop `%3`. See the module documentation.
pub fn reverse_hazard(tape: &Tape) -> Option<String> {
    let scratch = scratch::arrays(tape);
    side_effects(tape, "", &scratch)
        .or_else(|| overwritten_writes(tape))
        .or_else(|| rereads(tape, &scratch))
}

/// [`reverse_hazard`] as the error the reverse transforms return.
pub(crate) fn refuse_hazards(tape: &Tape) -> Result<()> {
    match reverse_hazard(tape) {
        None => Ok(()),
        Some(why) => Err(Error::Unsupported(format!(
            "reverse mode does not handle this tape (it would compute a wrong gradient): {why}; \
             forward mode (jvp) is not affected"
        ))),
    }
}

/// A store in a loop body of `tape`, or a loop nested in a body that
/// writes, into an array that is not scratch (see [`scratch`]); `path`
/// names the loop whose body `tape` is (empty at the root).
fn side_effects(tape: &Tape, path: &str, scratch: &[bool]) -> Option<String> {
    for (j, inst) in tape.insts().iter().enumerate() {
        match inst.op {
            Op::Store if !path.is_empty() && !scratch[inst.args[0] as usize] => {
                return Some(format!(
                    "loop {path} stores into a{}[{}] in its body (body instruction %{j}), and its \
                     reverse loop would run that store again when it recomputes the iteration",
                    inst.args[0], inst.args[1]
                ))
            }
            Op::Loop => {
                let lp = tape.loop_of(inst);
                let inner = format!("{path}{}%{j}", if path.is_empty() { "" } else { "/" });
                let outside = lp
                    .writes
                    .iter()
                    .find(|w| !matches!(w.access.buffer, Buffer::Array(a) if scratch[a as usize]));
                if let (false, Some(w)) = (path.is_empty(), outside) {
                    return Some(format!(
                        "loop {inner}, nested in the body of loop {path}, writes {}, and the \
                         reverse loop of {path} would run those writes again when it recomputes \
                         the iteration",
                        buffer_name(w.access.buffer)
                    ));
                }
                if !path.is_empty() {
                    if let Some(why) = scratch::overwrites_own_writes(lp, &inner) {
                        return Some(why);
                    }
                }
                if let Some(why) = side_effects(&lp.body, &inner, scratch) {
                    return Some(why);
                }
            }
            _ => {}
        }
    }
    None
}

/// A root loop's `store` write hitting an element an earlier write of the
/// loop wrote in the same iteration (writes are root loops' only, once
/// [`side_effects`] found none in bodies).
fn overwritten_writes(tape: &Tape) -> Option<String> {
    for (i, inst) in tape.insts().iter().enumerate() {
        if inst.op != Op::Loop {
            continue;
        }
        let lp = tape.loop_of(inst);
        for (q, later) in lp.writes.iter().enumerate() {
            if later.mode != WriteMode::Store {
                continue;
            }
            for (p, earlier) in lp.writes[..q].iter().enumerate() {
                if earlier.access.buffer != later.access.buffer {
                    continue;
                }
                let (o, s) = (earlier.access.offset, earlier.access.strides[0]);
                let (o2, s2) = (later.access.offset, later.access.strides[0]);
                // o + s k = o2 + s2 k for some iteration k?
                let k = match s == s2 {
                    true => (o == o2).then_some(0),
                    false => ((o2 - o) % (s - s2) == 0).then(|| (o2 - o) / (s - s2)),
                };
                if let Some(k) = k.filter(|&k| (0..i64::from(lp.trips)).contains(&k)) {
                    return Some(format!(
                        "loop %{i} stores into {}[{}] by its write {q} in iteration {k}, over \
                         what its write {p} wrote in the same iteration, and its reverse loop \
                         would give the overwritten value the element's adjoint instead of zero",
                        buffer_name(later.access.buffer),
                        o + s * k
                    ));
                }
            }
        }
    }
    None
}

/// An array element read inside a loop and written afterwards (by a root
/// `store` or a root loop's write, the only writes once [`side_effects`]
/// found none in bodies).
fn rereads(tape: &Tape, scratch: &[bool]) -> Option<String> {
    const NONE: u32 = u32::MAX;
    let n_arrays = tape.arrays().len();
    // Only arrays read in a loop at or before a write can be re-read
    // overwritten; only their elements are enumerated.
    let (mut first_read, mut last_write) = (vec![NONE; n_arrays], vec![None; n_arrays]);
    for (i, inst) in tape.insts().iter().enumerate() {
        match inst.op {
            Op::Store => last_write[inst.args[0] as usize] = Some(i as u32),
            Op::Loop => {
                let lp = tape.loop_of(inst);
                for a in arrays_read(lp) {
                    first_read[a] = first_read[a].min(i as u32);
                }
                for w in &lp.writes {
                    if let Buffer::Array(a) = w.access.buffer {
                        last_write[a as usize] = Some(i as u32);
                    }
                }
            }
            _ => {}
        }
    }
    let suspect: Vec<bool> = (0..n_arrays)
        .map(|a| !scratch[a] && last_write[a].is_some_and(|w| first_read[a] <= w))
        .collect();
    if !suspect.contains(&true) {
        return None;
    }
    // Which root loop read each element of a suspect array, if one did.
    let mut read_by: Vec<Vec<u32>> = (0..n_arrays)
        .map(|a| match suspect[a] {
            true => vec![NONE; tape.arrays()[a] as usize],
            false => Vec::new(),
        })
        .collect();
    let overwritten = |read_by: &[Vec<u32>], a: u32, e: i64, by: &str| {
        let r = *read_by[a as usize].get(e as usize)?;
        (r != NONE).then(|| {
            format!(
                "a{a}[{e}] is read inside loop %{r}, then overwritten by {by}, and the reverse \
                 loop of %{r} would read the later value when it recomputes the iteration"
            )
        })
    };
    let mut accesses = 0u64;
    for (i, inst) in tape.insts().iter().enumerate() {
        match inst.op {
            Op::Store => {
                let by = format!("the store %{i}");
                let (array, e) = (inst.args[0], i64::from(inst.args[1]));
                if let Some(why) = overwritten(&read_by, array, e, &by) {
                    return Some(why);
                }
            }
            Op::Loop => {
                let lp = tape.loop_of(inst);
                let mut elems = Vec::new();
                let reads = nest_reads(lp, &suspect, &mut elems);
                let writes_suspect = lp
                    .writes
                    .iter()
                    .any(|w| matches!(w.access.buffer, Buffer::Array(a) if suspect[a as usize]));
                let reads_suspect =
                    !(elems.is_empty() && reads.own.is_empty() && reads.inner.is_empty());
                if !reads_suspect && !writes_suspect {
                    continue;
                }
                // An `elem` reads the same element in every iteration, the
                // first before the loop's first writes.
                for (a, e) in elems {
                    mark(&mut read_by, a, e, i as u32);
                }
                for k in 0..lp.trips {
                    if !reads.iteration(&mut vec![k], &mut read_by, i as u32, &mut accesses) {
                        return Some(format!(
                            "loop %{i} reads elements of arrays that are written after a read \
                             inside a loop, and it makes more than {MAX_ACCESSES} accesses to \
                             check element by element that none it reads is overwritten"
                        ));
                    }
                    // An iteration's reads come before its writes.
                    for (q, w) in lp.writes.iter().enumerate() {
                        if let Buffer::Array(array) = w.access.buffer {
                            let by = format!("write {q} of loop %{i} in iteration {k}");
                            let e = w.access.element(&[k]);
                            if let Some(why) = overwritten(&read_by, array, e, &by) {
                                return Some(why);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// The strided reads of suspect arrays in a loop nest, per loop.
struct NestReads {
    trips: u32,
    /// The loop's own reads: array and access.
    own: Vec<(usize, Access)>,
    /// Nested loops that read suspect arrays.
    inner: Vec<NestReads>,
}

impl NestReads {
    /// Marks as read by root loop `by` what iteration `index` of this loop
    /// reads (nested loops included); false once `accesses` passes
    /// [`MAX_ACCESSES`].
    fn iteration(
        &self,
        index: &mut Vec<u32>,
        read_by: &mut [Vec<u32>],
        by: u32,
        accesses: &mut u64,
    ) -> bool {
        for (a, access) in &self.own {
            mark(read_by, *a, access.element(index), by);
        }
        *accesses += self.own.len() as u64 + 1;
        if *accesses > MAX_ACCESSES {
            return false;
        }
        for inner in &self.inner {
            for k in 0..inner.trips {
                index.push(k);
                let ok = inner.iteration(index, read_by, by, accesses);
                index.pop();
                if !ok {
                    return false;
                }
            }
        }
        true
    }
}

/// The reads of suspect arrays in `lp`'s nest: strided ones in the result,
/// `elem`s (array, element) into `elems`.
fn nest_reads(lp: &Loop, suspect: &[bool], elems: &mut Vec<(usize, i64)>) -> NestReads {
    let own = lp
        .reads
        .iter()
        .filter_map(|r| match r.buffer {
            Buffer::Array(a) if suspect[a as usize] => Some((a as usize, r.clone())),
            _ => None,
        })
        .collect();
    let mut inner = Vec::new();
    for inst in lp.body.insts() {
        match inst.op {
            Op::Elem if suspect[inst.args[0] as usize] => {
                elems.push((inst.args[0] as usize, i64::from(inst.args[1])))
            }
            Op::Loop => {
                let nested = nest_reads(lp.body.loop_of(inst), suspect, elems);
                if !nested.own.is_empty() || !nested.inner.is_empty() {
                    inner.push(nested);
                }
            }
            _ => {}
        }
    }
    NestReads {
        trips: lp.trips,
        own,
        inner,
    }
}

fn mark(read_by: &mut [Vec<u32>], a: usize, e: i64, by: u32) {
    if let Some(slot) = read_by[a].get_mut(e as usize) {
        *slot = by;
    }
}

/// The arrays `lp` reads: its strided reads, `elem`s in its body, nested
/// loops' reads.
fn arrays_read(lp: &Loop) -> Vec<usize> {
    let mut read: Vec<usize> = lp
        .reads
        .iter()
        .filter_map(|r| match r.buffer {
            Buffer::Array(a) => Some(a as usize),
            _ => None,
        })
        .collect();
    for inst in lp.body.insts() {
        match inst.op {
            Op::Elem => read.push(inst.args[0] as usize),
            Op::Loop => read.extend(arrays_read(lp.body.loop_of(inst))),
            _ => {}
        }
    }
    read
}

fn buffer_name(buffer: Buffer) -> String {
    match buffer {
        Buffer::Array(a) => format!("a{a}"),
        other => format!("{other:?}"),
    }
}
