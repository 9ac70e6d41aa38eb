//! The `tapejit` command line: `bench`, `show` and `check`.

mod bench;
mod check;
mod report;
mod study;
mod timing;

pub use bench::{run_case, trace_case, trace_tape};
pub use check::{check_function, max_rel_err_fd, CheckReport, FD_DIRECTION_SEED};
pub use report::{BenchReport, CaseReport, Machine};
pub use study::{compile_study, StudyRow};
pub use timing::{interleaved, Sample};

use crate::suite::{Case, SplitMix64};
use crate::{Function, Tape};
use clap::{Parser, Subcommand};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
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
    /// Time the benchmark suite: native f64 vs interpreted primal and gradient.
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
        /// Seconds of timed runs per case.
        #[arg(long, default_value_t = 1.5, value_name = "SECS")]
        seconds: f64,
        /// Instead of the suite: optimizer and JIT compile time per instruction
        /// for tapes of 10^3 to 10^6 instructions (takes about a minute).
        #[arg(long, conflicts_with_all = ["full", "cases"])]
        compile_study: bool,
    },
    /// Print what a suite case's tape went through: the traced tape and its derived tapes.
    Show {
        /// NAME[:SIZE]
        case: String,
        /// Print every instruction, not only the first and last ones.
        #[arg(long)]
        all: bool,
    },
    /// Check a suite case or a tape file: gradients vs finite differences, interpreter vs reference.
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
            full,
            cases,
            json,
            seconds,
            ..
        } => bench(full, &cases, json, seconds),
        Command::Show { case, all } => show(&case, all),
        Command::Check { target } => check(&target),
    }
}

fn bench(full: bool, specs: &[String], json: Option<PathBuf>, seconds: f64) -> Result<(), String> {
    if !(seconds > 0.0 && seconds < 3600.0) {
        return Err(format!("--seconds must be in (0, 3600), got {seconds}"));
    }
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
    println!(
        "tapejit {} bench on {} ({} cores), {}, {} build",
        env!("CARGO_PKG_VERSION"),
        machine.cpu,
        machine.cores,
        machine.rustc,
        machine.profile
    );
    if cfg!(debug_assertions) {
        println!("warning: this is a debug build; timings mean little (use cargo run --release)");
    }
    println!("{}", report::table_header());
    let mut reports = Vec::new();
    for case in &cases {
        if std::io::stderr().is_terminal() {
            eprint!("running {case} ...\r");
            let _ = std::io::stderr().flush();
        }
        let r =
            run_case(case, Duration::from_secs_f64(seconds)).map_err(|e| format!("{case}: {e}"))?;
        println!("{}", report::table_row(&r));
        if r.interp_matches_native == Some(false) {
            println!("  warning: {case}: interpreted value differs from native f64");
        }
        if r.jit_matches_interp == Some(false) {
            println!("  warning: {case}: JIT result differs from the interpreter");
        }
        if let (Some(j), Some(ratio)) = (r.jit_jacobian_s, r.jit_jacobian_ratio) {
            println!(
                "  {case}: full Jacobian, JIT {} = {ratio:.2}x native primal",
                report::human_time(Some(j))
            );
        }
        reports.push(r);
    }
    println!("{}", report::TABLE_LEGEND);
    if let Some(path) = json {
        let doc = BenchReport {
            tapejit: env!("CARGO_PKG_VERSION").into(),
            machine,
            cases: reports,
        };
        let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        std::fs::write(&path, text + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
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
        let text = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
        std::fs::write(&path, text + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

fn one_case(spec: &str) -> Result<Case, String> {
    spec.parse::<Case>().map_err(|e| e.to_string())
}

/// Prints a tape: all of it, or its head and tail when long.
fn print_tape(title: &str, tape: &Tape, all: bool) {
    println!(
        "== {title}: {} instructions, {} inputs, {} params, {} outputs, {} guards",
        tape.len(),
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

fn show(spec: &str, all: bool) -> Result<(), String> {
    let case = one_case(spec)?;
    let f = trace_case(&case).map_err(|e| e.to_string())?;
    print_tape("traced tape", f.tape(), all);
    let derived = if case.n_outputs() == 1 {
        (
            "gradient tape (reverse transform)",
            f.gradient_tape().map_err(|e| e.to_string())?,
        )
    } else {
        ("VJP tape (reverse transform)", f.vjp_tape())
    };
    print_tape(derived.0, derived.1, all);
    let ir = crate::jit::cranelift_ir(derived.1, crate::jit::JitOptions::default())
        .map_err(|e| e.to_string())?;
    let lines: Vec<&str> = ir.lines().collect();
    println!(
        "== Cranelift IR of the {}: {} lines",
        derived.0,
        lines.len()
    );
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

fn check(target: &str) -> Result<(), String> {
    let (report, label) = if target.ends_with(".tape") {
        let text =
            std::fs::read_to_string(target).map_err(|e| format!("cannot read {target}: {e}"))?;
        let tape: Tape = text.parse().map_err(|e| format!("{target}: {e}"))?;
        check_tape(tape)?
    } else {
        let case = one_case(target)?;
        let f = trace_case(&case).map_err(|e| e.to_string())?;
        let p = case.params();
        let reference = |x: &[f64], out: &mut [f64]| case.eval(x, &p, out);
        let r = check_function(&f, &p, &case.vjp_weights(), &[case.default_input()], &mut {
            reference
        })
        .map_err(|e| e.to_string())?;
        (r, "native f64")
    };
    println!(
        "checked {} point(s): max_rel_err_fd = {:.2e}, interpreter {} {label}",
        report.points,
        report.max_rel_err_fd,
        if report.matches_reference {
            "matches"
        } else {
            "DIFFERS FROM"
        }
    );
    if report.max_rel_err_fd > 1e-5 || !report.matches_reference {
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
