//! Time and peak memory of the JIT gradient of `lorenz_rk4_fold(steps)`
//! under a memory budget, against the native `f64` primal.
//!
//! ```text
//! cargo run --release --example checkpoint_memory -- [STEPS] [BUDGET] [REPS] [--flush-subnormals]
//! ```
//!
//! `BUDGET` is `default` (256 MiB of stored states per loop), `unlimited`,
//! or `snapshots:S`; the defaults are `10000000 snapshots:64 3`. Run one
//! budget per process: the peak resident set (`VmHWM` of
//! `/proc/self/status`) covers the whole process. `--flush-subnormals`
//! (anywhere) makes the function with `Options::flush_subnormals`; the
//! native primal stays IEEE.
//!
//! At 10^7 steps the default budget still stores every state (3 values of
//! 8 bytes per step: 240 MB < 256 MiB), and beyond about 1.2 * 10^6 steps
//! the adjoints of the initial state decay into subnormal numbers and stay
//! there (a subnormal times a factor near 1 rounds back to itself), so
//! every reverse step pays the processor's subnormal penalty: that, not
//! the schedule, is most of the gradient's time at 10^7 steps (with
//! `--flush-subnormals` those adjoints become exact zeros instead).

use std::hint::black_box;
use std::time::Instant;
use tapejit::suite::{lorenz_rk4, lorenz_rk4_fold, LORENZ_DEFAULT_INPUT};
use tapejit::{trace_scalar, Engine, Function, MemoryBudget, Options};

/// `VmHWM` (peak resident set) of this process, in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> tapejit::Result<()> {
    let flag = "--flush-subnormals";
    let flush_subnormals = std::env::args().any(|a| a == flag);
    let mut args = std::env::args().skip(1).filter(|a| a != flag);
    let steps: usize = args
        .next()
        .map_or(10_000_000, |s| s.parse().expect("STEPS"));
    let budget_arg = args.next().unwrap_or_else(|| "snapshots:64".into());
    let reps: usize = args.next().map_or(3, |s| s.parse().expect("REPS"));
    let budget = match budget_arg.as_str() {
        "default" => MemoryBudget::default(),
        "unlimited" => MemoryBudget::Unlimited,
        other => MemoryBudget::Snapshots(
            other
                .strip_prefix("snapshots:")
                .and_then(|s| s.parse().ok())
                .expect("BUDGET: default, unlimited or snapshots:S"),
        ),
    };
    let x = LORENZ_DEFAULT_INPUT;

    let mut native = f64::INFINITY;
    let mut value = 0.0;
    for _ in 0..reps {
        let t = Instant::now();
        value = black_box(lorenz_rk4(black_box(&x), steps));
        native = native.min(t.elapsed().as_secs_f64());
    }
    let rss_before = peak_rss_kib();

    let t = Instant::now();
    let tape = trace_scalar(&x, &[], |x, _| lorenz_rk4_fold(x, steps))?;
    let options = Options {
        memory_budget: budget,
        engine: Engine::Jit,
        flush_subnormals,
        ..Options::default()
    };
    let f = Function::from_tape_with(tape, options)?;
    let checkpoints = f.gradient_tape()?.checkpoints().to_vec();
    let w = f.with_params(&[])?;
    let mut g = [0.0; 6];
    let v = w.gradient(&x, &mut g)?; // compiles
    let setup = t.elapsed().as_secs_f64();
    assert_eq!(
        v.to_bits(),
        value.to_bits(),
        "the gradient's value is the primal's"
    );
    let mut grad = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        black_box(w.gradient(black_box(&x), &mut g)?);
        grad = grad.min(t.elapsed().as_secs_f64());
    }
    let mut primal = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        black_box(w.value(black_box(&x))?);
        primal = primal.min(t.elapsed().as_secs_f64());
    }
    let schedule = match checkpoints.first() {
        Some(cp) => format!("checkpointed, {} snapshots", cp.snapshots),
        None => "every state stored".into(),
    };
    let mode = if flush_subnormals {
        ", subnormals flushed"
    } else {
        ""
    };
    println!("lorenz_rk4_fold({steps}), budget {budget_arg}: {schedule}{mode}");
    println!(
        "  native primal {:.4} s, JIT gradient {:.4} s: ratio {:.2} (best of {reps}; setup {:.2} s)",
        native,
        grad,
        grad / native,
        setup
    );
    println!("  JIT primal {:.4} s: ratio {:.2}", primal, primal / native);
    let kib = |k: Option<u64>| k.map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    println!(
        "  peak RSS {} (before tracing: {})",
        kib(peak_rss_kib()),
        kib(rss_before)
    );
    println!("  gradient {g:?}");
    Ok(())
}
