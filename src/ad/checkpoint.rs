//! Binomial checkpointing (Griewank and Walther's *revolve*): in which order
//! to run, store, restore and reverse the steps of a long loop when memory
//! holds only a few of its states.
//!
//! # The problem
//!
//! A loop of `l` steps takes state `0` to state `1`, ..., state `l - 1` to
//! state `l`. Its reverse sweep runs the reverse steps `l - 1`, `l - 2`, ...,
//! `0`, and reverse step `k` needs state `k`: it runs forward step `k` again
//! recording its intermediates, then takes the adjoint of state `k + 1` to
//! the adjoint of state `k`. Keeping every state costs `l` states of memory.
//! With room for only `s` states (*snapshots*, the initial state included),
//! the others are recomputed from a snapshot before them; a [`Schedule`] says
//! how, with the fewest forward steps, as a lazily generated sequence of
//! [`Action`]s.
//!
//! # Counting convention
//!
//! An *advance* is one forward step outside a reverse step: an
//! [`Action::Advance`] from state `a` to state `b` costs `b - a`, the one from
//! state 0 to the first snapshot included. The forward part of every reverse
//! step is not counted (there are always exactly `l` of them). So storing
//! everything costs `l - 1` advances (states `0..l - 1` are reached once; the
//! last one is reversed at once, without a snapshot), and one snapshot costs
//! `l (l - 1) / 2`.
//!
//! # The binomial split
//!
//! Let `T(l, s)` be the fewest advances that reverse `l` steps starting from a
//! stored state with `s` snapshots (that one included): `T(1, s) = 0`, and
//! otherwise the first advance goes some `m` steps, state `m` is stored in a
//! second snapshot (unless `m = l - 1`: then it is reversed at once), steps
//! `m..l` are reversed with the other `s - 1` snapshots, state 0 is restored
//! and steps `0..m` are reversed with all `s`:
//!
//! ```text
//! T(l, s) = min over 0 < m < l of  m + T(l - m, s - 1) + T(m, s)
//! ```
//!
//! Griewank (1992, "Achieving logarithmic growth of temporal and spatial
//! complexity in reverse automatic differentiation") showed that this nested
//! form loses nothing and that the minimum has a closed form (revolve is
//! Griewank and Walther's implementation, ACM TOMS Algorithm 799, 2000). With
//! `β(s, r) = C(s + r, s)`, let the *repetition number* `r` be the least with
//! `β(s, r) >= l`; then
//!
//! ```text
//! T(l, s) = r l - β(s + 1, r - 1) = r l - C(s + r, s + 1)      (see optimal_advances)
//! ```
//!
//! `β(s, r)` is the most steps that `s` snapshots reverse when no step is
//! advanced more than `r` times (Pascal's rule `β(s, r) = β(s, r - 1) +
//! β(s - 1, r)` is the recursion above: the steps before the second snapshot
//! are advanced once more than the others). In the closed form `T(·, s)` is
//! convex and piecewise linear, with slope `r` on `β(s, r - 1) < l <= β(s, r)`:
//! one more step costs `r` more advances. The recursion is then an infimal
//! convolution of `m -> m + T(m, s)` (slope `r + 1` where `T(·, s)` has slope
//! `r`) with `T(·, s - 1)`, which merges the segments of the two in order of
//! slope. A split is optimal exactly when it uses every segment of slope less
//! than `r` of both and none steeper than `r`:
//!
//! ```text
//! max(β(s, r - 2), l - β(s - 1, r))  <=  m  <=  min(β(s, r - 1), l - β(s - 1, r - 1))
//! ```
//!
//! (with `β(s, -1) = 0`). This schedule takes the smallest such `m` (with
//! the same advances, it writes a few percent fewer snapshots than the
//! largest). The tests check it against the closed form, and the closed form
//! against the recursion, exhaustively for `l <= 300`, `s <= 16`.
//!
//! # Driving a loop
//!
//! A driver holds the current state, `s` snapshot buffers and the adjoint of
//! the latest reversed state (initially the seed of state `l`), and runs the
//! actions as they come: memory `O(s)` and `O(1)` amortized work per action,
//! whatever `l` is. Here for `x -> sin x + x / 2` iterated `l` times, whose
//! derivative is the product of `cos x_k + 1/2` over the states:
//!
//! ```
//! use tapejit::ad::checkpoint::{Action, Schedule};
//!
//! let (l, x0) = (20u32, 0.3f64);
//! let step = |x: f64| x.sin() + 0.5 * x;
//! let schedule = Schedule::binomial(l, 3)?;
//! let (mut x, mut snaps, mut adjoint) = (x0, [f64::NAN; 3], 1.0);
//! for action in &schedule {
//!     match action {
//!         Action::Advance { from, to } => (from..to).for_each(|_| x = step(x)),
//!         Action::Snapshot { slot, .. } => snaps[slot as usize] = x,
//!         Action::Restore { slot, .. } => x = snaps[slot as usize],
//!         // The forward part of the step would record its intermediates here.
//!         Action::Reverse { .. } => adjoint *= x.cos() + 0.5,
//!     }
//! }
//! let mut states = vec![x0];
//! (1..l).for_each(|_| states.push(step(states[states.len() - 1])));
//! let expected: f64 = states.iter().rev().fold(1.0, |a, x| a * (x.cos() + 0.5));
//! assert_eq!(adjoint, expected); // same multiplications in the same order
//! assert_eq!(schedule.advances(), 45); // instead of 19 storing all 20 states
//!
//! // Four steps with two snapshots:
//! use Action::*;
//! let actions: Vec<Action> = Schedule::binomial(4, 2)?.actions().collect();
//! assert_eq!(actions, [
//!     Snapshot { slot: 0, state: 0 }, Advance { from: 0, to: 1 },
//!     Snapshot { slot: 1, state: 1 }, Advance { from: 1, to: 3 },
//!     Reverse { step: 3 }, Restore { slot: 1, state: 1 }, Advance { from: 1, to: 2 },
//!     Reverse { step: 2 }, Restore { slot: 1, state: 1 }, Reverse { step: 1 },
//!     Restore { slot: 0, state: 0 }, Reverse { step: 0 },
//! ]);
//! # Ok::<(), tapejit::Error>(())
//! ```

use crate::error::{Error, Result};
use std::collections::HashMap;

/// One instruction of a [`Schedule`] to its driver. The driver has a
/// *current* state (initially state 0, the loop's input) which each action
/// requires and leaves as documented.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Run forward steps `from..to` without recording anything. Requires
    /// state `from` to be current (`from < to`); leaves state `to` current.
    Advance {
        /// The current state before.
        from: u32,
        /// The current state after.
        to: u32,
    },
    /// Copy the current state, which is state `state`, into snapshot `slot`
    /// (overwriting whatever that slot held). The current state is unchanged.
    Snapshot {
        /// Slot index, less than the schedule's snapshots.
        slot: u32,
        /// The state stored.
        state: u32,
    },
    /// Copy snapshot `slot`, which holds state `state`, into the current
    /// state. The slot keeps its copy; state `state` is current after.
    Restore {
        /// Slot index.
        slot: u32,
        /// The state restored.
        state: u32,
    },
    /// The reverse step of iteration `step`: run forward step `step`
    /// recording its intermediates, then propagate the adjoint of state
    /// `step + 1` to state `step`. Requires state `step` to be current;
    /// afterwards no state is current (the driver may have reused the
    /// buffer) until the next [`Action::Restore`].
    Reverse {
        /// The iteration reversed: `l - 1`, then `l - 2`, ..., then 0.
        step: u32,
    },
}

/// A checkpointing schedule for a loop of `steps` steps with at most
/// `snapshots` stored states; see the [module docs](self). Small and `Copy`:
/// [`Schedule::actions`] generates the actions on the fly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    steps: u32,
    snapshots: u32,
}

impl Schedule {
    /// The optimal (binomial, *revolve*) schedule reversing `steps` steps
    /// with at most `snapshots` stored states, the initial one included. It
    /// needs [`optimal_advances`]`(steps, snapshots)` advances.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] if `steps` or `snapshots` is 0.
    pub fn binomial(steps: u32, snapshots: u32) -> Result<Self> {
        if steps == 0 || snapshots == 0 {
            return Err(Error::Unsupported(format!(
                "a checkpointing schedule needs at least 1 step and 1 snapshot (the initial \
                 state counts as one), not {steps} steps and {snapshots} snapshots"
            )));
        }
        Ok(Self { steps, snapshots })
    }

    /// The schedule storing every state: `binomial(steps, steps)`, which
    /// stores states `0..steps - 1` once each and advances `steps - 1` times.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] if `steps` is 0.
    pub fn store_all(steps: u32) -> Result<Self> {
        Self::binomial(steps, steps)
    }

    /// The number of steps reversed.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// The snapshots allowed (an upper bound on the slots used).
    pub fn snapshots(&self) -> u32 {
        self.snapshots
    }

    /// The actions, generated lazily: `O(snapshots)` memory and `O(1)`
    /// amortized time per action.
    pub fn actions(&self) -> Actions {
        let s = self.snapshots.min(self.steps);
        let r = repetitions(self.steps, s);
        let next = Frame {
            state: 0,
            s,
            r,
            beta: if r == 0 { 1 } else { beta_above(s, r) },
        };
        Actions {
            end: self.steps,
            current: Some(0),
            frames: Vec::new(),
            next,
        }
    }

    /// The advances (forward steps outside reverse steps) of
    /// [`Self::actions`]: [`optimal_advances`]`(steps, snapshots)`.
    pub fn advances(&self) -> u64 {
        optimal_advances(self.steps, self.snapshots)
    }

    /// The reverse steps: `steps`.
    pub fn reverse_steps(&self) -> u32 {
        self.steps
    }

    /// The snapshot slots the actions use, `0..snapshots_used()`, which is
    /// also the most states stored at once: `min(snapshots, steps - 1)`.
    /// Every optimal schedule uses that many, since [`optimal_advances`]
    /// strictly decreases with more snapshots up to `steps - 1`.
    pub fn snapshots_used(&self) -> u32 {
        self.snapshots.min(self.steps - 1)
    }

    /// The repetition number `r` of [`repetitions`]: no step is advanced
    /// more than `r` times (some step exactly `r` times), so the whole
    /// reverse sweep costs at most `(r + 1) steps` forward steps.
    pub fn repetitions(&self) -> u32 {
        repetitions(self.steps, self.snapshots)
    }
}

impl IntoIterator for &Schedule {
    type Item = Action;
    type IntoIter = Actions;
    fn into_iter(self) -> Actions {
        self.actions()
    }
}

/// The actions of a [`Schedule`], generated on the fly.
#[derive(Clone, Debug)]
pub struct Actions {
    /// Steps `end..` are reversed; the next reverse step is `end - 1`.
    end: u32,
    /// The current state, if any.
    current: Option<u32>,
    /// `frames[i]` describes the state in slot `i`; the top one is the range
    /// `state..end` being reversed.
    frames: Vec<Frame>,
    /// The frame the next [`Action::Snapshot`] pushes.
    next: Frame,
}

/// A stored state and the range from it still to reverse, with `s`
/// snapshots (its own included), repetition number at most `r` and
/// `beta = β(s, r) >= end - state`.
#[derive(Clone, Copy, Debug)]
struct Frame {
    state: u32,
    s: u32,
    r: u32,
    beta: u128,
}

impl Frame {
    /// The optimal first advance `m` reversing the `l >= 2` steps from this
    /// state, and the frame of the rest, `state + m..state + l`. Lowers `r`
    /// to the repetition number of `l` first: `O(1)` amortized, since a
    /// frame's range shrinks to its split point at each visit and the
    /// repetition number drops by at most 2 with it.
    fn split(&mut self, l: u32) -> (u32, Frame) {
        let (l, s) = (u128::from(l), u128::from(self.s));
        let below = |beta: u128, r: u32| beta * u128::from(r) / (s + u128::from(r)); // β(s, r - 1)
        while below(self.beta, self.r) >= l {
            self.beta = below(self.beta, self.r);
            self.r -= 1;
        }
        let r = u128::from(self.r); // >= 1 since l >= 2
        let b1 = below(self.beta, self.r); // β(s, r - 1) < l
        let b2 = b1 * (r - 1) / (s + r - 1); // β(s, r - 2), 0 for r = 1
        let c0 = self.beta * s / (s + r); // β(s - 1, r)
        let m = b2.max(l.saturating_sub(c0)).max(1);
        debug_assert!(m <= b1.min(l - b1 * s / (s + r - 1))); // β(s - 1, r - 1)
        let m = m as u32; // m < l
        let rest = Frame {
            state: self.state + m,
            s: self.s - 1,
            r: self.r,
            beta: c0,
        };
        (m, rest)
    }
}

impl Iterator for Actions {
    type Item = Action;

    fn next(&mut self) -> Option<Action> {
        if self.end == 0 {
            return None;
        }
        let Some(c) = self.current else {
            let slot = self.frames.len() - 1; // the frame of state 0 stays until the end
            let state = self.frames[slot].state;
            self.current = Some(state);
            return Some(Action::Restore {
                slot: slot as u32,
                state,
            });
        };
        if c + 1 == self.end {
            self.end = c;
            self.current = None;
            if self.frames.last().is_some_and(|f| f.state == c) {
                self.frames.pop();
            }
            return Some(Action::Reverse { step: c });
        }
        match self.frames.last_mut() {
            Some(top) if top.state == c => {
                let (m, rest) = top.split(self.end - c);
                self.next = rest;
                self.current = Some(c + m);
                Some(Action::Advance { from: c, to: c + m })
            }
            _ => {
                self.frames.push(self.next);
                Some(Action::Snapshot {
                    slot: self.frames.len() as u32 - 1,
                    state: c,
                })
            }
        }
    }
}

/// `min(C(s + r, s), cap)` for `cap <= 2^64`, as the running product
/// `C(n + i, i)`, `i = 1..=min(s, r)`, `n = max(s, r)`: exact at every stage
/// and increasing, so it stops once past `cap` (after at most ~64 factors).
fn beta_capped(s: u32, r: u32, cap: u128) -> u128 {
    let (n, k) = (u128::from(s.max(r)), u128::from(s.min(r)));
    let mut acc = 1;
    for i in 1..=k {
        acc = acc * (n + i) / i;
        if acc >= cap {
            return cap;
        }
    }
    acc
}

/// `β(s, r)` for `r >= 1` the repetition number of some `l <= 2^32`, from
/// `β(s, r - 1) < l` (so both are exact and below `2^66`).
fn beta_above(s: u32, r: u32) -> u128 {
    let below = beta_capped(s, r - 1, 1 << 33);
    below * (u128::from(s) + u128::from(r)) / u128::from(r)
}

/// The repetition number: the least `r` with `C(snapshots + r, snapshots) >=
/// steps` (0 for `steps <= 1`). No step of [`Schedule::binomial`] is
/// advanced more than `r` times. `O(log steps)` binomials of at most ~33
/// factors each.
///
/// # Panics
///
/// If `snapshots` is 0 and `steps > 1` (no schedule exists).
pub fn repetitions(steps: u32, snapshots: u32) -> u32 {
    if steps <= 1 {
        return 0;
    }
    assert!(
        snapshots > 0,
        "{steps} steps cannot be reversed with 0 snapshots"
    );
    let (l, s) = (u128::from(steps), snapshots.min(steps));
    // β(s, steps - 1) >= C(steps, 1) = steps: the answer is in 1..steps.
    let (mut lo, mut hi) = (1, steps - 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if beta_capped(s, mid, l) >= l {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// The fewest advances that reverse `steps` steps with `snapshots` stored
/// states (the initial one included), counted as in the [module
/// docs](self): `t(l, s) = r l - C(s + r, s + 1)` with `r` the
/// [`repetitions`] number. At the boundaries: `t(1, s) = 0` (`r = 0`, the
/// single reverse step starts from the input), `t(l, 1) = l (l - 1) / 2`,
/// and `t(l, s) = l - 1` for every `s >= l - 1` (the last state is reversed
/// as soon as it is reached, so it needs no snapshot). `steps = 0` gives 0.
/// Every `t(l, s) < 2^63`.
///
/// # Panics
///
/// If `snapshots` is 0 and `steps > 1` (no schedule exists).
pub fn optimal_advances(steps: u32, snapshots: u32) -> u64 {
    let r = repetitions(steps, snapshots);
    if r == 0 {
        return 0;
    }
    let s = snapshots.min(steps);
    // C(s + r, s + 1) = C(s + r - 1, s) (s + r) / (s + 1), and C(s + r - 1, s) < steps.
    let big =
        beta_capped(s, r - 1, 1 << 33) * (u128::from(s) + u128::from(r)) / (u128::from(s) + 1);
    (u128::from(r) * u128::from(steps) - big) as u64
}

/// The fewest snapshots whose optimal schedule reverses `steps` steps in at
/// most `max_advances` advances, or `None` if even storing every state needs
/// more (`max_advances < steps - 1`). At least 1.
pub fn snapshots_for(steps: u32, max_advances: u64) -> Option<u32> {
    if optimal_advances(steps, steps.max(1)) > max_advances {
        return None;
    }
    // optimal_advances is non-increasing in the snapshots: bisect.
    let (mut lo, mut hi) = (1, steps.max(1));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if optimal_advances(steps, mid) <= max_advances {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(lo)
}

/// What a valid schedule did, as counted by [`simulate`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Forward steps advanced (the sum of `to - from`).
    pub advances: u64,
    /// Reverse steps (equal to the steps for a valid schedule).
    pub reverse_steps: u64,
    /// Distinct snapshot slots written.
    pub slots: u32,
    /// [`Action::Snapshot`]s (state copies into a slot).
    pub snapshot_writes: u64,
    /// [`Action::Restore`]s.
    pub restores: u64,
}

/// Runs `actions` on a state machine without arithmetic and checks that
/// they reverse `steps` steps with at most `snapshots` slots: every action's
/// requirement on the current state ([`Action`]) holds, no advance passes
/// the next reverse step, reverse steps come exactly in the order
/// `steps - 1, ..., 0`, restores read a slot holding the state they name,
/// slots are below `snapshots`, and nothing follows the last reverse step.
///
/// # Errors
///
/// [`Error::Unsupported`] naming the first invalid action (or a missing
/// reverse step).
pub fn simulate(
    actions: impl IntoIterator<Item = Action>,
    steps: u32,
    snapshots: u32,
) -> Result<Counts> {
    let mut counts = Counts::default();
    let mut slots: HashMap<u32, u32> = HashMap::new();
    let (mut end, mut current) = (steps, Some(0));
    for (i, action) in actions.into_iter().enumerate() {
        let fail = |why: String| {
            Err(Error::Unsupported(format!(
                "invalid checkpoint schedule at action #{i} ({action:?}): {why}"
            )))
        };
        let holds = |state: u32| current == Some(state);
        if end == 0 {
            return fail("every step is already reversed".into());
        }
        match action {
            Action::Advance { from, to } => {
                if !holds(from) {
                    return fail(format!("the current state is {current:?}"));
                }
                if to <= from || to >= end {
                    return fail(format!("must advance to a state in {}..{end}", from + 1));
                }
                counts.advances += u64::from(to - from);
                current = Some(to);
            }
            Action::Snapshot { slot, state } => {
                if !holds(state) {
                    return fail(format!("the current state is {current:?}"));
                }
                if slot >= snapshots {
                    return fail(format!("only {snapshots} snapshot slots"));
                }
                counts.snapshot_writes += 1;
                slots.insert(slot, state);
            }
            Action::Restore { slot, state } => {
                if slots.get(&slot) != Some(&state) {
                    return fail(format!("slot {slot} holds {:?}", slots.get(&slot)));
                }
                counts.restores += 1;
                current = Some(state);
            }
            Action::Reverse { step } => {
                if step + 1 != end || !holds(step) {
                    let next = end - 1;
                    return fail(format!("next is step {next}, current state {current:?}"));
                }
                counts.reverse_steps += 1;
                end = step;
                current = None;
            }
        }
    }
    if end > 0 {
        return Err(Error::Unsupported(format!(
            "invalid checkpoint schedule: it ends before reverse step {}",
            end - 1
        )));
    }
    counts.slots = slots.len() as u32;
    Ok(counts)
}

#[cfg(test)]
mod tests;
