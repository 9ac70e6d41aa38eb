//! The `tapejit` command line: `bench` (with `--scaling` and
//! `--compile-study`), `show` and `check`.

mod bench;
mod check;
mod dual;
mod plot;
mod progress;
mod report;
mod scaling;
mod study;
mod timing;

pub use bench::run_case;
pub use check::{check_function, max_rel_err_fd, CheckReport, FD_DIRECTION_SEED};
pub use dual::{forward_gradient, Fwd};
pub use plot::plot_scaling;
pub use report::{BenchReport, CaseReport, Machine};
pub use scaling::{
    dense, dense_data, dense_default_weights, dense_len, loglog_slope, measure_point, Family,
    MethodPoint, ScalingPoint, ScalingReport, Slope, DENSE_BATCH, DENSE_INPUTS, FAMILIES, METHODS,
    SCALING_SIZES,
};
pub use study::{compile_study, StudyRow};
pub use timing::{interleaved, interleaved_with, Sample};

use crate::suite::{Case, SplitMix64};
use crate::{Function, Tape};
use clap::{Parser, Subcommand};
use progress::Progress;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// tapejit: trace generic Rust once, get fast gradients.
#[derive(Debug, Parser)]
#[command(name = "tapejit", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Time the benchmark suite: native f64 vs interpreted and JIT-compiled primal and gradient.
    Bench {
        /// Every size listed in DESIGN.md instead of the quick sizes.
        #[arg(long)]
        full: bool,
        /// NAME (all sizes of the mode) or NAME:SIZE, e.g. rosenbrock:1000, gmm:10,25,1000. Repeatable.
        #[arg(long = "case", value_name = "NAME[:SIZE]")]
        cases: Vec<String>,
        /// Write machine-readable results here.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Seconds of timed runs per case (default 1.5), or per point with --scaling (default 0.5).
        #[arg(long, value_name = "SECS")]
        seconds: Option<f64>,
        /// Memory for each loop's stored states in gradients: bytes (`256MiB`,
        /// `64KiB`, `1000000`), snapshots (`64s`), or `unlimited`; a loop
        /// needing more is checkpointed. Default 256MiB.
        #[arg(long, value_name = "BUDGET", default_value = "256MiB", value_parser = parse_memory_budget)]
        memory_budget: crate::MemoryBudget,
        /// Evaluate with subnormal numbers flushed to zero (FTZ/DAZ; see
        /// `Options::flush_subnormals`): results differ from IEEE wherever a
        /// subnormal appears. The native primal is unchanged.
        #[arg(long)]
        flush_subnormals: bool,
        /// Instead of the suite: optimizer and JIT compile time per instruction
        /// for tapes of 10^3 to 10^6 instructions (takes about a minute).
        #[arg(long, conflicts_with_all = ["full", "cases", "scaling"])]
        compile_study: bool,
        /// Instead of the suite: gradient cost / primal cost for m = 10 ... 10^4
        /// variables (rosenbrock and an mlp family), by finite differences,
        /// num-dual forward mode, tapejit forward mode, and tapejit reverse mode
        /// interpreted and compiled, with each line's log-log slope (a few minutes).
        #[arg(long, conflicts_with_all = ["full", "cases"])]
        scaling: bool,
        /// With --scaling: draw the study as an SVG (log-log, one line per method, the 4x bound).
        #[arg(long, value_name = "FILE.svg", requires = "scaling")]
        plot: Option<PathBuf>,
        /// With --scaling: the largest m to run (for tests and quick looks).
        #[arg(long, value_name = "M", requires = "scaling", hide = true)]
        scaling_max: Option<usize>,
        /// With --scaling: skip a method at a size (and above) once one of its
        /// gradients takes longer than this many seconds.
        #[arg(long, value_name = "SECS", requires = "scaling", default_value_t = 3.0)]
        scaling_cap: f64,
    },
    /// Print what a suite case's tape went through: the traced tape, what each
    /// optimizer pass did, the derived tape and its Cranelift IR.
    Show {
        /// NAME[:SIZE]
        case: String,
        /// Print every instruction, not only the first and last ones.
        #[arg(long)]
        all: bool,
        /// The gradient's memory budget, as for `bench`.
        #[arg(long, value_name = "BUDGET", default_value = "256MiB", value_parser = parse_memory_budget)]
        memory_budget: crate::MemoryBudget,
    },
    /// Check a suite case or a tape file: gradients vs finite differences,
    /// interpreter vs reference, JIT vs interpreter.
    Check {
        /// NAME[:SIZE] or FILE.tape
        target: String,
    },
}

/// Parses `NAME[:SIZE]` into cases: a bare name gives its quick (or full) sizes.
pub fn select_cases(spec: &str, full: bool) -> Result<Vec<Case>, String> {
    match spec.parse::<Case>() {
        Ok(case) => Ok(vec![case]),
        Err(e) => match e.missing_size() {
            Some(name) => Ok(if full {
                Case::full_sizes(name)
            } else {
                Case::quick_sizes(name)
            }
            .unwrap_or_default()),
            None => Err(e.to_string()),
        },
    }
}

/// Runs the command line; errors come back as messages for the user.
pub fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Bench {
            compile_study: true,
            json,
            ..
        } => run_compile_study(json),
        Command::Bench {
            scaling: true,
            json,
            seconds,
            plot,
            scaling_max,
            scaling_cap,
            ..
        } => run_scaling(json, plot, seconds.unwrap_or(0.5), scaling_max, scaling_cap),
        Command::Bench {
            full,
            cases,
            json,
            seconds,
            memory_budget,
            flush_subnormals,
            ..
        } => bench(
            full,
            &cases,
            json,
            seconds.unwrap_or(1.5),
            memory_budget,
            flush_subnormals,
        ),
        Command::Show {
            case,
            all,
            memory_budget,
        } => show(&case, all, memory_budget),
        Command::Check { target } => check(&target),
    }
}

fn check_seconds(seconds: f64) -> Result<Duration, String> {
    if !(seconds > 0.0 && seconds < 3600.0) {
        return Err(format!("--seconds must be in (0, 3600), got {seconds}"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn print_machine(machine: &Machine, what: &str) {
    println!(
        "tapejit {} {what} on {} ({} cores), {}, cranelift {}, {} build",
        env!("CARGO_PKG_VERSION"),
        machine.cpu,
        machine.cores,
        machine.rustc,
        cranelift_jit::VERSION,
        machine.profile
    );
    if cfg!(debug_assertions) {
        println!("warning: this is a debug build; timings mean little (use cargo run --release)");
    }
}

/// Parses `--memory-budget`: `unlimited`, `Ns` (snapshots), or bytes with
/// an optional `KiB`/`MiB`/`GiB` suffix.
fn parse_memory_budget(s: &str) -> Result<crate::MemoryBudget, String> {
    use crate::MemoryBudget;
    let s = s.trim();
    if s.eq_ignore_ascii_case("unlimited") {
        return Ok(MemoryBudget::Unlimited);
    }
    let bad =
        || format!("`{s}`: expected bytes (256MiB, 64KiB, 1000000), snapshots (64s) or unlimited");
    if let Some(n) = s.strip_suffix('s') {
        return n.parse().map(MemoryBudget::Snapshots).map_err(|_| bad());
    }
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(k) => s.split_at(k),
        None => (s, ""),
    };
    let unit = match unit.trim() {
        "" | "B" => 1u64,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(bad()),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(unit).map(MemoryBudget::Bytes).ok_or_else(bad)
}

fn bench(
    full: bool,
    specs: &[String],
    json: Option<PathBuf>,
    seconds: f64,
    memory: crate::MemoryBudget,
    flush_subnormals: bool,
) -> Result<(), String> {
    let budget = check_seconds(seconds)?;
    let cases = if specs.is_empty() {
        if full {
            Case::full()
        } else {
            Case::quick()
        }
    } else {
        let mut all = Vec::new();
        for s in specs {
            all.extend(select_cases(s, full)?);
        }
        all
    };
    let machine = Machine::current();
    print_machine(&machine, "bench");
    if flush_subnormals {
        println!(
            "subnormals flushed to zero (--flush-subnormals): results may differ from IEEE \
             and from the native primal"
        );
    }
    println!("{}", report::table_header());
    // Each case times for `budget` (and vector cases half as long again).
    let progress = Progress::new(cases.len(), budget.mul_f64(1.3 * cases.len() as f64));
    let mut reports = Vec::new();
    for case in &cases {
        progress.start(format!("{case}"));
        let r =
            run_case(case, budget, memory, flush_subnormals).map_err(|e| format!("{case}: {e}"))?;
        progress.println(report::table_row(&r));
        if r.interp_matches_native == Some(false) {
            progress.println(format!(
                "  warning: {case}: interpreted value differs from native f64"
            ));
        }
        if r.jit_matches_interp == Some(false) {
            progress.println(format!(
                "  warning: {case}: JIT result differs from the interpreter"
            ));
        }
        if r.loops.unwrap_or(0) > 0 {
            let unrolled = match (r.compile_unrolled_s, r.jit_grad_unrolled_s) {
                (Some(c), Some(g)) => format!(
                    "compile {}, JIT ∇ {}",
                    report::human_time(Some(c)),
                    report::human_time(Some(g))
                ),
                _ => "not compiled (too long)".into(),
            };
            progress.println(format!(
                "  {case}: rolled: {} loops, ∇ tape {} instr; without rerolling: ∇ tape {} instr, {unrolled}",
                r.grad_loops.unwrap_or(0),
                r.grad_tape_len_opt.unwrap_or(0),
                r.grad_tape_len_unrolled.unwrap_or(0),
            ));
        }
        if let (Some(s), Some(t), Some(l)) = (
            r.checkpoint_snapshots,
            r.checkpoint_advances,
            r.checkpoint_reverse_steps,
        ) {
            progress.println(format!(
                "  {case}: checkpointed: {s} snapshots, {t} advances for {l} reverse steps ({:.2} per step); \
                 gradient memory ~{:.1} MiB, peak RSS {:.1} MiB",
                t as f64 / l as f64,
                r.peak_grad_bytes.unwrap_or(0) as f64 / (1 << 20) as f64,
                r.peak_rss_bytes.unwrap_or(0) as f64 / (1 << 20) as f64,
            ));
        }
        if let (Some(k), Some(stored), Some(residuals)) =
            (r.grad_segments, r.grad_stored_values, r.grad_residuals)
        {
            progress.println(format!(
                "  {case}: reverse sweep cut into {k} segments: stores {stored} forward values \
                 instead of {residuals}"
            ));
        }
        if let (Some(j), Some(ratio)) = (r.jit_jacobian_s, r.jit_jacobian_ratio) {
            progress.println(format!(
                "  {case}: full Jacobian, JIT {} = {ratio:.2}x native primal",
                report::human_time(Some(j))
            ));
        }
        progress.done();
        reports.push(r);
    }
    progress.finish();
    println!("{}", report::TABLE_LEGEND);
    if let Some(path) = json {
        let doc = BenchReport {
            tapejit: env!("CARGO_PKG_VERSION").into(),
            machine,
            cases: reports,
        };
        write_json(&path, &doc)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn run_scaling(
    json: Option<PathBuf>,
    plot: Option<PathBuf>,
    seconds: f64,
    max: Option<usize>,
    cap: f64,
) -> Result<(), String> {
    let budget = check_seconds(seconds)?;
    let cap_d =
        check_seconds(cap).map_err(|_| format!("--scaling-cap must be in (0, 3600), got {cap}"))?;
    let sizes: Vec<usize> = SCALING_SIZES
        .iter()
        .copied()
        .filter(|&m| max.is_none_or(|max| m <= max))
        .collect();
    if sizes.is_empty() {
        return Err(format!(
            "--scaling-max {} is below the smallest size, {}",
            max.unwrap_or(0),
            SCALING_SIZES[0]
        ));
    }
    let machine = Machine::current();
    print_machine(&machine, "bench --scaling");
    println!(
        "gradient time / native f64 primal time, medians of interleaved runs ({seconds} s per point; \
a method whose one gradient exceeds {cap} s is skipped from there on)"
    );
    let n_points = sizes.len() * FAMILIES.len();
    // Roughly: the budget per point, plus the O(m) methods' few calls at the largest sizes.
    let expected = budget.mul_f64(n_points as f64) + Duration::from_secs(sizes.len() as u64);
    let progress = Progress::new(n_points, expected);
    let mut points = Vec::new();
    for family in FAMILIES {
        progress.println(format!("\n{}", family.describe()));
        let mut header = format!("{:>6} {:>10}", "m", "native f");
        for method in METHODS {
            header += &format!(" {:>14}", method.key);
        }
        progress.println(header);
        let mut skip: [Option<String>; 5] = Default::default();
        let mut notes: Vec<(&str, String)> = Vec::new();
        for &m in &sizes {
            progress.start(format!("{} m={m}", family.name()));
            let point = measure_point(family, m, budget, cap_d, &mut skip)
                .map_err(|e| format!("{} m={m}: {e}", family.name()))?;
            let mut line = format!(
                "{:>6} {:>10}",
                point.m,
                report::human_time(Some(point.native_primal_s))
            );
            for mp in &point.methods {
                line += &format!(
                    " {:>14}",
                    mp.ratio.map_or("skipped".into(), |r| format!("{r:.2}x"))
                );
                if let Some(why) = &mp.skipped {
                    if notes.iter().all(|(_, w)| w != why) {
                        notes.push((mp.method, why.clone()));
                    }
                }
                if let Some(d) = mp.max_rel_diff {
                    let tol = if mp.method == "fd" { 1e-5 } else { 1e-10 };
                    if d > tol {
                        progress.println(format!(
                            "  warning: {} m={}: {} gradient differs from the JIT reverse one by {d:.1e}",
                            family.name(),
                            point.m,
                            mp.method
                        ));
                    }
                }
            }
            progress.println(line);
            progress.done();
            points.push(point);
        }
        for (method, why) in notes {
            progress.println(format!("  {method}: {why}"));
        }
    }
    progress.finish();
    let slopes = scaling::slopes(&points);
    println!(
        "\nfitted log-log slope of gradient cost / primal cost against m (1 = linear, 0 = flat):"
    );
    for family in FAMILIES {
        let mut line = format!("  {:<11}", family.name());
        for s in slopes.iter().filter(|s| s.family == family.name()) {
            line += &format!(
                " {}={}",
                s.method,
                s.slope.map_or("-".into(), |v| format!("{v:.2}"))
            );
        }
        println!("{line}");
    }
    let doc = ScalingReport {
        tapejit: env!("CARGO_PKG_VERSION").into(),
        machine,
        sizes,
        budget_s: seconds,
        cap_s: cap,
        points,
        slopes,
    };
    if let Some(path) = plot {
        plot_scaling(&doc, &path).map_err(|e| format!("cannot draw {}: {e}", path.display()))?;
        println!("drew {}", path.display());
    }
    if let Some(path) = json {
        write_json(&path, &doc)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn run_compile_study(json: Option<PathBuf>) -> Result<(), String> {
    println!(
        "{:<44} {:>12} {:>14} {:>14} {:>12}",
        "tape", "instructions", "optimize µs/i", "compile µs/i", "code B/i"
    );
    let rows = study::compile_study(&[1_000, 10_000, 100_000, 1_000_000], |r| {
        println!(
            "{:<44} {:>12} {:>14.3} {:>14.2} {:>12.1}",
            r.tape,
            r.instructions,
            r.optimize_us_per_instr,
            r.compile_us_per_instr,
            r.code_bytes_per_instr
        )
    })
    .map_err(|e| e.to_string())?;
    if let Some(path) = json {
        write_json(&path, &rows)?;
    }
    Ok(())
}

fn one_case(spec: &str) -> Result<Case, String> {
    spec.parse::<Case>().map_err(|e| e.to_string())
}

/// Prints a tape: all of it, or its head and tail when long.
fn print_tape(title: &str, tape: &Tape, all: bool) {
    println!(
        "== {title}: {} instructions ({} executed), {} loops, {} arrays, {} inputs, {} params, \
         {} outputs, {} guards",
        tape.static_len(),
        tape.work(),
        tape.n_loops(),
        tape.arrays().len(),
        tape.n_inputs(),
        tape.n_params(),
        tape.n_outputs(),
        tape.n_guards()
    );
    let text = tape.to_string();
    let lines: Vec<&str> = text.lines().collect();
    if all || lines.len() <= 60 {
        println!("{text}");
    } else {
        lines[..30].iter().for_each(|l| println!("{l}"));
        println!(
            "... {} lines omitted (--all prints them) ...",
            lines.len() - 50
        );
        lines[lines.len() - 20..]
            .iter()
            .for_each(|l| println!("{l}"));
    }
}

/// Prints how the reverse sweep of each root loop of a derived tape gets the
/// forward states it needs: stored, or recomputed by a binomial schedule.
fn print_schedules(tape: &Tape) {
    for inst in tape.insts().iter().filter(|i| i.op == crate::ir::Op::Loop) {
        let lp = tape.loop_of(inst);
        match tape.checkpoint_of(inst) {
            Some(cp) => {
                let advances = crate::ad::checkpoint::Schedule::binomial(lp.trips, cp.snapshots)
                    .map(|s| s.advances())
                    .unwrap_or(0);
                println!(
                    "   loop {}: {} trips, checkpointed: {} snapshots of {} values, {advances} advances ({:.2} per trip)",
                    inst.args[0],
                    lp.trips,
                    cp.snapshots,
                    cp.n_carried(),
                    advances as f64 / lp.trips as f64
                );
            }
            None if lp.trips > 1 => println!(
                "   loop {}: {} trips, states stored per iteration where read",
                inst.args[0], lp.trips
            ),
            None => {}
        }
    }
}

/// Prints what each optimizer pass did to `tape`.
fn print_opt_stats(title: &str, tape: &Tape) -> Result<(), String> {
    let (_, stats) = crate::opt::optimize_with_stats(tape).map_err(|e| e.to_string())?;
    println!(
        "== optimizer on the {title}: {} -> {} instructions in {}",
        stats.before().unwrap_or(tape.static_len()),
        stats.after().unwrap_or(tape.static_len()),
        report::human_time(Some(stats.seconds()))
    );
    let passes = crate::opt::pass_names().count().max(1);
    for (i, pass) in stats.passes.iter().enumerate() {
        let removed = pass.before as i64 - pass.after as i64;
        println!(
            "   round {} {:<9} {:>9} -> {:>9} ({:>+8}) {:>10}",
            i / passes + 1,
            pass.pass,
            pass.before,
            pass.after,
            -removed,
            report::human_time(Some(pass.seconds))
        );
    }
    Ok(())
}

fn show(spec: &str, all: bool, memory_budget: crate::MemoryBudget) -> Result<(), String> {
    let case = one_case(spec)?;
    let options = crate::Options {
        memory_budget,
        ..crate::Options::default()
    };
    let traced = case.trace().map_err(|e| e.to_string())?;
    let f = crate::Function::from_tape_with(traced, options).map_err(|e| e.to_string())?;
    print_tape("traced tape", f.traced_tape(), all);
    print_opt_stats("traced tape", f.traced_tape())?;
    print_tape("optimized primal tape", f.tape(), all);
    let n = case.n_inputs();
    let (name, seed) = if case.n_outputs() == 1 {
        ("gradient tape (reverse transform)", crate::ad::Seed::One)
    } else {
        ("VJP tape (reverse transform)", crate::ad::Seed::Inputs)
    };
    let raw = crate::ad::reverse(f.tape(), 0..n, seed).map_err(|e| e.to_string())?;
    print_opt_stats(name, &raw)?;
    let derived = if case.n_outputs() == 1 {
        f.gradient_tape().map_err(|e| e.to_string())?
    } else {
        f.vjp_tape().map_err(|e| e.to_string())?
    };
    print_tape(&format!("optimized {name}"), derived, all);
    print_schedules(derived);
    if let Some(plan) =
        crate::ad::segment_plan(f.tape(), memory_budget).map_err(|e| e.to_string())?
    {
        println!(
            "   reverse sweep cut into {} segments (each recomputed once): stores {} forward \
             values instead of {}",
            plan.starts.len(),
            plan.stored,
            plan.residuals
        );
    }
    let ir = crate::jit::cranelift_ir(derived, crate::jit::JitOptions::default())
        .map_err(|e| e.to_string())?;
    let lines: Vec<&str> = ir.lines().collect();
    println!("== Cranelift IR of the {name}: {} lines", lines.len());
    if all || lines.len() <= 120 {
        println!("{ir}");
    } else {
        lines[..100].iter().for_each(|l| println!("{l}"));
        println!(
            "... {} lines omitted (--all prints them) ...",
            lines.len() - 100
        );
    }
    Ok(())
}

/// The default input and two seeded perturbations of it (each entry moved
/// by up to 5% of its magnitude, at least 0.005), where a suite case is checked.
fn case_points(case: &Case) -> Vec<Vec<f64>> {
    let x = case.default_input();
    let mut rng = SplitMix64::new(FD_DIRECTION_SEED + 2);
    let mut points = vec![x.clone()];
    for _ in 0..2 {
        points.push(
            x.iter()
                .map(|&v| v + 0.05 * v.abs().max(0.1) * rng.uniform(-1.0, 1.0))
                .collect(),
        );
    }
    points
}

fn check(target: &str) -> Result<(), String> {
    let (report, label) = if target.ends_with(".tape") {
        let text =
            std::fs::read_to_string(target).map_err(|e| format!("cannot read {target}: {e}"))?;
        let tape: Tape = text.parse().map_err(|e| format!("{target}: {e}"))?;
        println!(
            "{target}: {} instructions, {} inputs, {} params, {} outputs; \
3 seeded points in [-1, 1)",
            tape.len(),
            tape.n_inputs(),
            tape.n_params(),
            tape.n_outputs()
        );
        check_tape(tape)?
    } else {
        let case = one_case(target)?;
        println!("{case}: the default input and 2 seeded perturbations of it");
        let f = case.function().map_err(|e| e.to_string())?;
        let p = case.params();
        let reference = |x: &[f64], out: &mut [f64]| case.eval(x, &p, out);
        let r = check_function(&f, &p, &case.vjp_weights(), &case_points(&case), &mut {
            reference
        })
        .map_err(|e| e.to_string())?;
        (r, "native f64")
    };
    let verdict = |ok: bool| if ok { "ok" } else { "FAILED" };
    let fd_ok = report.max_rel_err_fd <= 1e-5;
    println!(
        "  gradient vs central differences (3 directions per point): max_rel_err_fd = {:.2e}  {}",
        report.max_rel_err_fd,
        verdict(fd_ok)
    );
    println!(
        "  interpreter values vs {label}: {}  {}",
        if report.matches_reference {
            "bitwise equal"
        } else {
            "DIFFER"
        },
        verdict(report.matches_reference)
    );
    println!(
        "  JIT vs interpreter: values max |diff| = {:.2e}, gradient max |diff| = {:.2e}, {}  {}",
        report.jit_max_abs_diff_value,
        report.jit_max_abs_diff_grad,
        if report.jit_bitwise {
            "bitwise equal"
        } else {
            "NOT bitwise equal"
        },
        verdict(report.jit_bitwise)
    );
    println!("checked {} point(s)", report.points);
    if !fd_ok || !report.matches_reference || !report.jit_bitwise {
        return Err("check failed".into());
    }
    Ok(())
}

/// Checks a tape file at seeded random points in `[-1, 1)` (parameters too).
fn check_tape(tape: Tape) -> Result<(CheckReport, &'static str), String> {
    let mut rng = SplitMix64::new(FD_DIRECTION_SEED + 1);
    let p: Vec<f64> = (0..tape.n_params())
        .map(|_| rng.uniform(-1.0, 1.0))
        .collect();
    let w: Vec<f64> = (0..tape.n_outputs())
        .map(|_| rng.uniform(-1.0, 1.0))
        .collect();
    let points: Vec<Vec<f64>> = (0..3)
        .map(|_| {
            (0..tape.n_inputs())
                .map(|_| rng.uniform(-1.0, 1.0))
                .collect()
        })
        .collect();
    let f = Function::from_tape(tape.clone()).map_err(|e| e.to_string())?;
    let mut ws = Vec::new();
    let mut reference = |x: &[f64], out: &mut [f64]| {
        if crate::interp::eval(&tape, x, &p, &mut ws, out).is_err() {
            out.fill(f64::NAN);
        }
    };
    let r = check_function(&f, &p, &w, &points, &mut reference).map_err(|e| e.to_string())?;
    Ok((r, "the tape itself"))
}
