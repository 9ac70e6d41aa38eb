//! Finding candidate segments in near-linear time.
//!
//! 1. Each instruction has a shape key (op, immediates, operand kinds: a
//!    constant's bits, an addressable leaf's buffer, "a value"), see
//!    [`super::level`]. For window lengths 2, 8 and 32, a rolling hash over
//!    the keys and a map from window hash to its last position give, for
//!    every position `p`, the distance `d` to the nearest earlier equal
//!    window: a candidate period. Short windows find short bodies (a body
//!    of one instruction repeated four times), long ones find bodies whose
//!    short windows all recur inside the body.
//! 2. A position whose window also recurred `d` earlier (three equal
//!    windows spaced `d` apart) starts a scan: the maximal run of
//!    positions `q` where instruction `q` matches `q - d` locally (same
//!    op and immediates; each operand shifted by `d`, the same value, or
//!    both addressable in the same buffer with the same strides). Each
//!    position is scanned at most once per period.
//! 3. The loop boundary inside the run is the phase with the fewest values
//!    live across it (a difference array over one period), so carried
//!    state is minimal; the iteration before is tried too (its carried
//!    operands may be initial values that did not match locally).
//! 4. [`super::classify`] matches iterations precisely, stopping at the
//!    first that differs; the rest of the run is tried again after it.

use super::classify::{classify, Template};
use super::level::{same_strides, FastMap, Level, Shared};
use crate::ir::{Buffer, Op};
use std::collections::{BTreeMap, BTreeSet};

/// Window lengths of the candidate search.
const WINDOWS: [usize; 3] = [2, 8, 32];

/// Multiplier of the rolling hash (odd).
const BASE: u64 = 0x9e37_79b9_7f4a_7c15;

/// Every candidate loop found at this level (possibly overlapping).
pub(super) fn candidates(level: &Level<'_>, shared: &Shared) -> Vec<Template> {
    let n = level.tape.len();
    let lead = level.lead;
    let mut out = Vec::new();
    if n <= lead {
        return out;
    }
    let mut near: Vec<Vec<u32>> = WINDOWS.iter().map(|_| vec![0; n]).collect();
    let mut last: Vec<FastMap<u64, u32>> = WINDOWS.iter().map(|_| FastMap::default()).collect();
    let mut hash = [0u64; WINDOWS.len()];
    let mut top = [1u64; WINDOWS.len()];
    for (wi, &w) in WINDOWS.iter().enumerate() {
        for i in 0..w.min(n - lead) {
            hash[wi] = hash[wi]
                .wrapping_mul(BASE)
                .wrapping_add(level.key[lead + i]);
            if i > 0 {
                top[wi] = top[wi].wrapping_mul(BASE);
            }
        }
    }
    let mut scanned: FastMap<u32, usize> = FastMap::default();
    for p in lead..n {
        for (wi, &w) in WINDOWS.iter().enumerate() {
            if p + w > n {
                continue;
            }
            let h = hash[wi];
            if let Some(q) = last[wi].insert(h, p as u32) {
                near[wi][p] = p as u32 - q;
            }
            if p + w < n {
                hash[wi] = h
                    .wrapping_sub(level.key[p].wrapping_mul(top[wi]))
                    .wrapping_mul(BASE)
                    .wrapping_add(level.key[p + w]);
            }
        }
        for nw in &near {
            let d = nw[p] as usize;
            if d == 0 || p < lead + d || nw[p - d] as usize != d {
                continue;
            }
            if scanned.get(&(d as u32)).is_some_and(|&e| p < e) {
                continue;
            }
            let Some((r0, r1)) = local_run(level, p, d) else {
                continue;
            };
            scanned.insert(d as u32, r1);
            run_candidates(level, shared, r0, r1, d, &mut out);
        }
    }
    out
}

/// The maximal run around `p` of positions matching the one `d` before,
/// as the covered range `[first - d, last + 1)`.
fn local_run(level: &Level<'_>, p: usize, d: usize) -> Option<(usize, usize)> {
    if !local_match(level, p, d) {
        return None;
    }
    let mut qs = p;
    while qs > level.lead + d && local_match(level, qs - 1, d) {
        qs -= 1;
    }
    let mut qe = p + 1;
    while qe < level.tape.len() && local_match(level, qe, d) {
        qe += 1;
    }
    Some((qs - d, qe))
}

/// Whether instruction `q` looks like instruction `q - d` shifted by `d`.
fn local_match(level: &Level<'_>, q: usize, d: usize) -> bool {
    let s = q - d;
    if level.key[q] != level.key[s] || level.barrier[q] || level.barrier[s] {
        return false;
    }
    let tape = level.tape;
    let (iq, is) = (&tape.insts()[q], &tape.insts()[s]);
    if iq.op != is.op {
        return false;
    }
    tape.uses(q).zip(tape.uses(s)).all(|(u, v)| {
        let (u, v) = (u as usize, v as usize);
        u == v
            || u == v + d
            || match (level.addr(u), level.addr(v)) {
                (Some(x), Some(y)) => x.buffer == y.buffer && same_strides(&x.strides, &y.strides),
                _ => false,
            }
    })
}

/// The loops found in run `[r0, r1)` of period `d`.
fn run_candidates(
    level: &Level<'_>,
    shared: &Shared,
    r0: usize,
    r1: usize,
    d: usize,
    out: &mut Vec<Template>,
) {
    let min = shared.min_trips.max(2);
    if (r1 - r0) / d + 1 < min {
        return;
    }
    let phase = best_start(level, r0, r1, d);
    let found = out.len();
    phase_candidates(level, shared, phase, r1, d, out);
    if out.len() == found && phase != r0 {
        // The boundary heuristic may split what no iteration accepts (say
        // a unit from an operand it must see in the same iteration): try
        // the run's own start.
        phase_candidates(level, shared, r0, r1, d, out);
    }
}

/// The loops found from start `phase` (or one iteration earlier) to `r1`.
fn phase_candidates(
    level: &Level<'_>,
    shared: &Shared,
    phase: usize,
    r1: usize,
    d: usize,
    out: &mut Vec<Template>,
) {
    let min = shared.min_trips.max(2);
    let mut a = if phase >= level.lead + d {
        phase - d
    } else {
        phase
    };
    while a + min * d <= r1 {
        let attempt = classify(level, shared, a, d, (r1 - a) / d);
        match attempt.template {
            Some(t) => {
                a = t.end();
                out.push(t);
            }
            None if attempt.trips >= min => a += attempt.trips * d,
            None => a += d,
        }
    }
}

/// The start in `[r0, r0 + d)` whose iteration boundary has the fewest
/// values live across it (ties: the most iterations, then the earliest);
/// a boundary between a loop and its `loopout` is never chosen when
/// another exists.
fn best_start(level: &Level<'_>, r0: usize, r1: usize, d: usize) -> usize {
    if r1 - r0 < 3 * d {
        return r0;
    }
    let tape = level.tape;
    let m = r0 + d;
    let lo = m - d;
    let mut max_use = vec![0usize; 2 * d];
    for q in m..(m + 2 * d).min(r1) {
        for u in tape.uses(q) {
            let u = u as usize;
            if u >= lo && u < m + d && q - u < 2 * d {
                let slot = &mut max_use[u - lo];
                *slot = (*slot).max(q);
            }
        }
    }
    let mut diff = vec![0i64; d + 1];
    for (i, &last) in max_use.iter().enumerate() {
        let v = lo + i;
        if last == 0 {
            continue;
        }
        let (from, to) = ((v + 1).max(m), last.min(m + d - 1));
        // A loop and its `loopout` must stay in one iteration.
        let weight = if tape.insts()[v].op == Op::Loop {
            1 << 20
        } else {
            1
        };
        if from <= to {
            diff[from - m] += weight;
            diff[to - m + 1] -= weight;
        }
    }
    // Among the boundaries with fewest live values, the one leaving room
    // for the most iterations (counting the one tried before the run).
    let reach = |a: usize| {
        let first = if a >= level.lead + d { a - d } else { a };
        (r1 - first) / d
    };
    let (mut live, mut best, mut best_key) = (0i64, r0, (i64::MAX, 0));
    for (b, delta) in diff[..d].iter().enumerate() {
        live += delta;
        let a = m + b - d;
        let key = (live, usize::MAX - reach(a));
        if key < best_key {
            best_key = key;
            best = a;
        }
    }
    best
}

/// A largest-coverage-first choice of non-overlapping candidates, in tape order.
///
/// Two candidates also conflict when one reads an array (a strided read
/// absorbed from `elem`s before its segment, addressed by position in the
/// level as it is) whose writer is in the other's segment: rolling the
/// other shares that array between its iterations (scratch, overwritten
/// by each) or stops writing it, so the read would see another iteration's
/// values. The next round rolls it with the values recovered after the loop.
pub(super) fn select(level: &Level<'_>, mut cands: Vec<Template>) -> Vec<Template> {
    cands.sort_by(|x, y| (y.trips * y.d).cmp(&(x.trips * x.d)).then(x.a.cmp(&y.a)));
    // Writers of the arrays a candidate reads.
    let read_writers = |c: &Template| -> Vec<usize> {
        c.reads
            .iter()
            .filter_map(|r| match r.buffer {
                Buffer::Array(x) => level.writer.get(&x).map(|&w| w as usize),
                _ => None,
            })
            .collect()
    };
    let mut taken: BTreeMap<usize, usize> = BTreeMap::new();
    // Writers of the arrays the chosen candidates read.
    let mut read_from: BTreeSet<usize> = BTreeSet::new();
    let mut chosen = Vec::new();
    for c in cands {
        let (s, e) = (c.a, c.end());
        let overlaps = |lo: usize, hi: usize| {
            taken
                .range(..hi)
                .next_back()
                .is_some_and(|(_, &end)| end > lo)
        };
        if overlaps(s, e) || read_from.range(s..e).next().is_some() {
            continue;
        }
        let writers = read_writers(&c);
        if writers.iter().any(|&w| overlaps(w, w + 1)) {
            continue;
        }
        read_from.extend(writers);
        taken.insert(s, e);
        chosen.push(c);
    }
    chosen.sort_by_key(|c| c.a);
    chosen
}
