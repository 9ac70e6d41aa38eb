//! Bench results: the `--json` schema of DESIGN.md and the terminal table.

use serde::Serialize;
use std::collections::BTreeMap;

/// One suite case's figures. Keys and meanings are a contract with outside
/// scripts (DESIGN.md "tapejit bench"): extend, never rename. Seconds are
/// medians per call; a figure this build cannot produce is `None` (`null`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct CaseReport {
    /// Suite case name.
    pub name: String,
    /// Size parameters, e.g. `"n=1000"`.
    pub size: String,
    /// Number of active inputs.
    pub inputs: usize,
    /// Number of outputs.
    pub outputs: usize,
    /// Number of passive parameters (extension).
    pub params: usize,
    /// rustc-compiled f64 primal.
    pub native_primal_s: Option<f64>,
    /// Interpreted primal.
    pub interp_primal_s: Option<f64>,
    /// Interpreted gradient (one VJP with the case's weights for vector outputs).
    pub interp_grad_s: Option<f64>,
    /// Compiled primal.
    pub jit_primal_s: Option<f64>,
    /// Compiled gradient.
    pub jit_grad_s: Option<f64>,
    /// `jit_grad_s / native_primal_s`.
    pub grad_ratio: Option<f64>,
    /// `jit_primal_s / native_primal_s` (extension).
    pub jit_primal_ratio: Option<f64>,
    /// `interp_grad_s / jit_grad_s` (extension).
    pub interp_over_jit_grad: Option<f64>,
    /// `jit_jacobian_s / native_primal_s`, measured interleaved (extension).
    pub jit_jacobian_ratio: Option<f64>,
    /// JIT gradient with the optimizer switched off (extension).
    pub jit_grad_unoptimized_s: Option<f64>,
    /// `grad_tape_len_opt / tape_len_opt` (extension).
    pub grad_over_primal_opt: Option<f64>,
    /// Compiling the primal tape (extension; `compile_s` is the gradient tape's).
    pub compile_primal_s: Option<f64>,
    /// `compile_s` per gradient-tape instruction, µs (extension).
    pub compile_us_per_instr: Option<f64>,
    /// Machine code of the compiled primal and gradient, bytes (extension).
    pub jit_code_bytes: Option<u64>,
    /// Whether the JIT's primal and gradient equal the interpreter's bitwise (extension).
    pub jit_matches_interp: Option<bool>,
    /// `interp_grad_s / native_primal_s` (extension).
    pub interp_grad_ratio: Option<f64>,
    /// Interpreted gradient time per executed tape instruction, ns (extension).
    pub interp_grad_ns_per_instr: Option<f64>,
    /// Compiled full Jacobian (vector-output cases).
    pub jit_jacobian_s: Option<f64>,
    /// Interpreted full Jacobian (vector-output cases; extension).
    pub interp_jacobian_s: Option<f64>,
    /// Tape instructions executed by one gradient (loops count every trip).
    pub grad_instrs_executed: Option<u64>,
    /// Tracing once.
    pub trace_s: Option<f64>,
    /// Building the gradient tape by the reverse transform (extension).
    pub derive_s: Option<f64>,
    /// Optimizing.
    pub optimize_s: Option<f64>,
    /// Compiling to native code.
    pub compile_s: Option<f64>,
    /// Primal tape length as traced (loop bodies counted once, as in every
    /// length below).
    pub tape_len: Option<usize>,
    /// Primal tape length after optimization.
    pub tape_len_opt: Option<usize>,
    /// Gradient tape length as derived (extension).
    pub grad_tape_len: Option<usize>,
    /// Gradient tape length after optimization.
    pub grad_tape_len_opt: Option<usize>,
    /// Loops in the optimized primal tape, nested ones included (extension).
    pub loops: Option<usize>,
    /// Loops in the optimized gradient tape (extension).
    pub grad_loops: Option<usize>,
    /// Snapshots of the gradient's checkpointed loop, if the memory budget
    /// made it checkpoint one (extension).
    pub checkpoint_snapshots: Option<u64>,
    /// Forward steps that loop's schedule advances (extension).
    pub checkpoint_advances: Option<u64>,
    /// Reverse steps of that schedule: the loop's trip count (extension).
    pub checkpoint_reverse_steps: Option<u64>,
    /// Segments the reverse sweep of a straight-line gradient is cut into
    /// under the memory budget (`null`: not cut; extension).
    pub grad_segments: Option<u64>,
    /// Forward values that cut gradient stores (boundary values plus one
    /// segment's residuals), against `grad_residuals` without segments
    /// (extension).
    pub grad_stored_values: Option<u64>,
    /// Forward values the reverse sweep reads back when not cut (extension).
    pub grad_residuals: Option<u64>,
    /// Peak resident set size of the process after the case (Linux; a
    /// figure for one case when the process ran only that case; extension).
    pub peak_rss_bytes: Option<u64>,
    /// Optimized gradient tape length without rerolling (extension).
    pub grad_tape_len_unrolled: Option<usize>,
    /// Compiling that tape (extension; absent above 400,000 instructions).
    pub compile_unrolled_s: Option<f64>,
    /// JIT gradient of that tape (extension).
    pub jit_grad_unrolled_s: Option<f64>,
    /// Bytes per primal tape instruction, constants included (extension).
    pub tape_bytes_per_op: Option<f64>,
    /// Memory the gradient evaluation needs beyond inputs and outputs.
    pub peak_grad_bytes: Option<u64>,
    /// Max over 3 seeded directions of `|g·v - FD_v| / (|g| |v|)`.
    pub max_rel_err_fd: Option<f64>,
    /// Whether the interpreted primal equals the native one bitwise (extension).
    pub interp_matches_native: Option<bool>,
    /// Relative interquartile spread (IQR / median) of each timing, in this
    /// order: native primal, interp primal, interp grad, JIT primal, JIT
    /// grad, JIT grad unoptimized, JIT grad without rerolling (extension).
    pub spread: Vec<f64>,
    /// RUSTFLAGS of the build (empty if none).
    pub rustflags: String,
    /// Whether the case's functions flushed subnormals to zero
    /// (`tapejit bench --flush-subnormals`, `Options::flush_subnormals`;
    /// the native primal never does; extension).
    pub flush_subnormals: bool,
}

/// The machine a run happened on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// CPU model name.
    pub cpu: String,
    /// Logical cores available.
    pub cores: usize,
    /// rustc that built this binary.
    pub rustc: String,
    /// Operating system and architecture.
    pub os: String,
    /// Build profile of this binary (extension).
    pub profile: String,
    /// Versions of the crates that produce the figures (extension): `tapejit`
    /// itself and `cranelift` (all cranelift crates share one version).
    pub crates: BTreeMap<String, String>,
}

impl Machine {
    /// Describes this machine and build.
    pub fn current() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            rustc: env!("TAPEJIT_RUSTC_VERSION").to_string(),
            os: target_lexicon::HOST.to_string(),
            profile: if cfg!(debug_assertions) {
                "debug".into()
            } else {
                "release".into()
            },
            crates: [
                ("tapejit", env!("CARGO_PKG_VERSION")),
                ("cranelift", cranelift_jit::VERSION),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        }
    }
}

/// RUSTFLAGS the binary was built with.
pub fn rustflags() -> String {
    env!("TAPEJIT_RUSTFLAGS").to_string()
}

/// The whole `--json` document.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    /// Crate version.
    pub tapejit: String,
    /// Where it ran.
    pub machine: Machine,
    /// One entry per case.
    pub cases: Vec<CaseReport>,
}

/// Seconds in a readable unit.
pub fn human_time(s: Option<f64>) -> String {
    match s {
        None => "-".into(),
        Some(s) if s < 1e-6 => format!("{:.1} ns", s * 1e9),
        Some(s) if s < 1e-3 => format!("{:.2} µs", s * 1e6),
        Some(s) if s < 1.0 => format!("{:.2} ms", s * 1e3),
        Some(s) => format!("{s:.2} s"),
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// Columns of the terminal table: title, width, cell.
type Column = (&'static str, usize, fn(&CaseReport) -> String);

fn ratio(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| format!("{x:.2}x"))
}

const COLUMNS: &[Column] = &[
    ("case", 11, |r| r.name.clone()),
    ("size", 18, |r| r.size.clone()),
    ("tape", 8, |r| opt(r.tape_len)),
    ("opt", 8, |r| opt(r.tape_len_opt)),
    ("∇ tape", 8, |r| opt(r.grad_tape_len)),
    ("∇ opt", 8, |r| opt(r.grad_tape_len_opt)),
    ("native f", 10, |r| human_time(r.native_primal_s)),
    ("jit f", 10, |r| human_time(r.jit_primal_s)),
    ("jit ∇", 10, |r| human_time(r.jit_grad_s)),
    ("∇/f", 7, |r| ratio(r.grad_ratio)),
    ("no-opt ∇", 10, |r| human_time(r.jit_grad_unoptimized_s)),
    ("interp ∇", 10, |r| human_time(r.interp_grad_s)),
    ("int/jit", 8, |r| ratio(r.interp_over_jit_grad)),
    ("ns/ins", 7, |r| {
        r.interp_grad_ns_per_instr
            .map_or("-".into(), |x| format!("{x:.2}"))
    }),
    ("trace", 10, |r| human_time(r.trace_s)),
    ("compile", 10, |r| human_time(r.compile_s)),
    ("fd err", 8, |r| {
        r.max_rel_err_fd.map_or("-".into(), |x| format!("{x:.1e}"))
    }),
];

fn row(cells: impl Iterator<Item = (String, usize)>) -> String {
    let mut line = String::new();
    for (k, (cell, width)) in cells.enumerate() {
        if k < 2 {
            line += &format!("{cell:<width$} ");
        } else {
            line += &format!("{cell:>width$} ");
        }
    }
    line.trim_end().to_string()
}

/// The terminal table's header.
pub fn table_header() -> String {
    row(COLUMNS.iter().map(|(t, w, _)| (t.to_string(), *w)))
}

/// One row of the terminal table.
pub fn table_row(r: &CaseReport) -> String {
    row(COLUMNS.iter().map(|(_, w, cell)| (cell(r), *w)))
}

/// What the columns mean, printed under the table.
pub const TABLE_LEGEND: &str =
    "∇/f = JIT gradient / native f64 primal (the cheap-gradient bound is ~4); \
int/jit = interpreted / JIT gradient; ns/ins = interpreted gradient ns per tape instruction; \
compile = JIT compile of the gradient tape; opt = after the optimizer; \
no-opt ∇ = JIT gradient with the optimizer off; vector cases: ∇ is one VJP";
