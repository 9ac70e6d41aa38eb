//! The timing harness: warm-up, calibrated batches, interleaved rounds, medians.
//!
//! Functions measured together run round-robin, one batch each per round, so
//! that machine noise (frequency changes, the other core's load) hits all of
//! them alike and their ratio stays meaningful.

use std::time::{Duration, Instant};

/// Per-call time of one function: median and spread over rounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Median seconds per call.
    pub median: f64,
    /// Interquartile range divided by the median (0.02 = ±1% around the middle half).
    pub spread: f64,
    /// Calls per batch.
    pub batch: u64,
    /// Rounds measured.
    pub rounds: usize,
}

/// Shortest batch worth timing: well above timer resolution and call overhead.
const MIN_BATCH: Duration = Duration::from_millis(2);
const MIN_ROUNDS: usize = 7;
const MAX_ROUNDS: usize = 1000;

/// Measures each function (one call per invocation) for about `budget` in
/// total, interleaved. Each is warmed up and calibrated first.
pub fn interleaved(fns: &mut [&mut dyn FnMut()], budget: Duration) -> Vec<Sample> {
    interleaved_with(fns, budget, MIN_ROUNDS)
}

/// [`interleaved`] with at least `min_rounds` rounds (at least 1) instead of
/// 7: for functions whose one call takes a large part of the budget, such
/// as a forward-mode gradient of 10^4 sweeps.
pub fn interleaved_with(
    fns: &mut [&mut dyn FnMut()],
    budget: Duration,
    min_rounds: usize,
) -> Vec<Sample> {
    let min_rounds = min_rounds.max(1);
    let batch_target = MIN_BATCH.max(budget / (40 * fns.len().max(1) as u32));
    let batches: Vec<u64> = fns.iter_mut().map(|f| calibrate(f, batch_target)).collect();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); fns.len()];
    let start = Instant::now();
    let mut rounds = 0;
    while rounds < min_rounds || (start.elapsed() < budget && rounds < MAX_ROUNDS) {
        for ((f, &n), t) in fns.iter_mut().zip(&batches).zip(&mut times) {
            let t0 = Instant::now();
            for _ in 0..n {
                f();
            }
            t.push(t0.elapsed().as_secs_f64() / n as f64);
        }
        rounds += 1;
    }
    times
        .into_iter()
        .zip(batches)
        .map(|(mut t, batch)| {
            t.sort_by(f64::total_cmp);
            let q = |p: f64| t[((t.len() - 1) as f64 * p).round() as usize];
            let median = q(0.5);
            Sample {
                median,
                spread: if median > 0.0 {
                    (q(0.75) - q(0.25)) / median
                } else {
                    0.0
                },
                batch,
                rounds,
            }
        })
        .collect()
}

/// Calls per batch so that one batch lasts at least `target` (after a warm-up
/// call; a warm-up call that lasts `target` already gives a batch of 1).
fn calibrate(f: &mut dyn FnMut(), target: Duration) -> u64 {
    let t0 = Instant::now();
    f();
    if t0.elapsed() >= target {
        return 1;
    }
    let mut n: u64 = 1;
    loop {
        let t0 = Instant::now();
        for _ in 0..n {
            f();
        }
        let dt = t0.elapsed();
        if dt >= target || n >= 1 << 30 {
            return n;
        }
        let scale = if dt.is_zero() {
            16.0
        } else {
            (target.as_secs_f64() / dt.as_secs_f64() * 1.2).clamp(1.5, 16.0)
        };
        n = (n as f64 * scale).ceil() as u64;
    }
}

/// Median seconds of `runs` calls of a one-off operation (tracing, building tapes).
pub fn once<R>(runs: usize, mut f: impl FnMut() -> R) -> (f64, R) {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs.max(1) {
        let t0 = Instant::now();
        let r = f();
        times.push(t0.elapsed().as_secs_f64());
        last = Some(r);
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], last.expect("ran at least once"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_every_function_with_a_positive_median() {
        let mut a = 0u64;
        let mut b = 0u64;
        let mut fa = || a = std::hint::black_box(a + 1);
        let mut fb = || {
            for _ in 0..100 {
                b = std::hint::black_box(b + 1);
            }
        };
        let s = interleaved(&mut [&mut fa, &mut fb], Duration::from_millis(50));
        assert_eq!(s.len(), 2);
        assert!(s.iter().all(|s| s.median > 0.0 && s.rounds >= MIN_ROUNDS));
        assert!(s[1].median > s[0].median);
    }
}
