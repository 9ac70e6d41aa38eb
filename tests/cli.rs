//! The `tapejit` binary on tiny sizes: structure and finiteness of what it
//! prints and writes, never timings.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn tapejit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tapejit"))
        .args(args)
        .output()
        .expect("the tapejit binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn assert_ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A fresh path in the integration tests' scratch directory.
fn temp(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// Every key DESIGN.md requires of a case ("`tapejit bench`").
const DESIGN_KEYS: [&str; 21] = [
    "name",
    "size",
    "inputs",
    "outputs",
    "native_primal_s",
    "interp_primal_s",
    "interp_grad_s",
    "jit_primal_s",
    "jit_grad_s",
    "grad_ratio",
    "jit_jacobian_s",
    "grad_instrs_executed",
    "trace_s",
    "optimize_s",
    "compile_s",
    "tape_len",
    "tape_len_opt",
    "grad_tape_len_opt",
    "peak_grad_bytes",
    "max_rel_err_fd",
    "rustflags",
];

/// Figures that are never null in this build (loops and checkpointing are
/// not built yet, but nothing here depends on them).
const PRODUCED: [&str; 16] = [
    "native_primal_s",
    "interp_primal_s",
    "interp_grad_s",
    "jit_primal_s",
    "jit_grad_s",
    "grad_ratio",
    "grad_instrs_executed",
    "trace_s",
    "optimize_s",
    "compile_s",
    "tape_len",
    "tape_len_opt",
    "grad_tape_len_opt",
    "peak_grad_bytes",
    "inputs",
    "outputs",
];

#[test]
fn bench_writes_every_design_key_for_every_case() {
    let json = temp("bench.json");
    let cases = [
        "rosenbrock:10",
        "gmm:2,2,10",
        "lorenz_rk4:20",
        "broyden:5",
        "mlp",
    ];
    let mut args = vec![
        "bench",
        "--seconds",
        "0.02",
        "--json",
        json.to_str().unwrap(),
    ];
    for c in &cases {
        args.extend(["--case", c]);
    }
    let out = tapejit(&args);
    assert_ok(&out, "bench");
    let text = stdout(&out);
    for name in ["rosenbrock", "gmm", "lorenz_rk4", "broyden", "mlp"] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "no table row for {name}:\n{text}"
        );
    }

    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["tapejit"], env!("CARGO_PKG_VERSION"));
    let machine = &doc["machine"];
    for key in ["cpu", "cores", "rustc"] {
        assert!(!machine[key].is_null(), "machine.{key} missing");
    }
    assert_eq!(machine["crates"]["tapejit"], env!("CARGO_PKG_VERSION"));
    assert!(machine["crates"]["cranelift"].is_string());

    let reported = doc["cases"].as_array().unwrap();
    assert_eq!(reported.len(), cases.len());
    for (case, spec) in reported.iter().zip(cases) {
        let obj = case.as_object().unwrap();
        for key in DESIGN_KEYS {
            assert!(obj.contains_key(key), "{spec}: key {key} missing");
        }
        for (key, value) in obj {
            if let Some(x) = value.as_f64() {
                assert!(x.is_finite(), "{spec}: {key} = {x}");
                if key == "max_rel_err_fd" || key == "params" {
                    assert!(x >= 0.0, "{spec}: {key} = {x}");
                } else if key.ends_with("_s") || key.ends_with("_ratio") || key.ends_with("_len") {
                    assert!(x > 0.0, "{spec}: {key} = {x}");
                }
            }
        }
        for key in PRODUCED {
            let x = obj[key].as_f64();
            assert!(x.is_some_and(|x| x > 0.0), "{spec}: {key} = {:?}", obj[key]);
        }
        assert!(obj["max_rel_err_fd"].as_f64().unwrap() < 1e-6, "{spec}");
        assert_eq!(obj["jit_matches_interp"], true, "{spec}");
        assert!(obj["rustflags"].is_string());
        assert!(obj["spread"].as_array().is_some_and(|s| s.len() == 7));
        let vector = obj["outputs"].as_u64().unwrap() > 1;
        assert_eq!(!obj["jit_jacobian_s"].is_null(), vector, "{spec}");
    }
    assert_eq!(reported[0]["name"], "rosenbrock");
    assert_eq!(reported[0]["size"], "n=10");
}

#[test]
fn scaling_writes_points_slopes_and_a_plot() {
    let (json, svg) = (temp("scaling.json"), temp("scaling.svg"));
    let out = tapejit(&[
        "bench",
        "--scaling",
        "--scaling-max",
        "30",
        "--seconds",
        "0.02",
        "--json",
        json.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert_ok(&out, "bench --scaling");
    let text = stdout(&out);
    assert!(text.contains("fitted log-log slope"), "{text}");

    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let points = doc["points"].as_array().unwrap();
    assert_eq!(points.len(), 4, "two sizes of two families");
    for point in points {
        assert!(point["native_primal_s"].as_f64().unwrap() > 0.0);
        let methods = point["methods"].as_array().unwrap();
        let keys: Vec<&str> = methods
            .iter()
            .map(|m| m["method"].as_str().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "fd",
                "num_dual",
                "jit_forward",
                "interp_reverse",
                "jit_reverse"
            ]
        );
        for m in methods {
            let ratio = m["ratio"].as_f64().unwrap();
            assert!(ratio.is_finite() && ratio > 0.0, "{m}");
            let diff = m["max_rel_diff"].as_f64().unwrap();
            assert!(diff < 1e-5, "{m}");
        }
    }
    let slopes = doc["slopes"].as_array().unwrap();
    assert_eq!(slopes.len(), 10);
    assert!(slopes
        .iter()
        .all(|s| s["slope"].as_f64().unwrap().is_finite()));

    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.starts_with("<svg"));
    assert!(picture.contains("4x cheap-gradient bound"));
    assert!(picture.contains("tapejit reverse, JIT"));
}

#[test]
fn show_prints_tapes_optimizer_passes_and_cranelift_ir() {
    let out = tapejit(&["show", "rosenbrock:4"]);
    assert_ok(&out, "show");
    let text = stdout(&out);
    for part in [
        "== traced tape",
        "== optimizer on the traced tape",
        "round 1 simplify",
        "round 1 cse",
        "round 1 dce",
        "== optimizer on the gradient tape",
        "== optimized gradient tape",
        "== Cranelift IR",
    ] {
        assert!(text.contains(part), "no {part:?} in:\n{text}");
    }
}

#[test]
fn check_compares_fd_interpreter_and_jit() {
    for target in ["rosenbrock:6", "broyden:4"] {
        let out = tapejit(&["check", target]);
        assert_ok(&out, target);
        let text = stdout(&out);
        assert!(text.contains("max_rel_err_fd"), "{text}");
        assert!(text.contains("JIT vs interpreter"), "{text}");
        assert!(text.contains("bitwise equal"), "{text}");
        assert!(text.contains("checked 3 point(s)"), "{text}");
    }
}

#[test]
fn check_reads_a_tape_file() {
    let path = temp("small.tape");
    std::fs::write(
        &path,
        "tape inputs=2 params=1\n%0 = input 0\n%1 = input 1\n%2 = param 0\n\
         %3 = mul %0 %1\n%4 = sin %3\n%5 = mul %4 %2\n%6 = exp %0\noutputs %5 %6\n",
    )
    .unwrap();
    let out = tapejit(&["check", path.to_str().unwrap()]);
    assert_ok(&out, "check FILE.tape");
    let text = stdout(&out);
    assert!(text.contains("JIT vs interpreter"), "{text}");
    assert!(text.contains("the tape itself"), "{text}");

    let bad = temp("bad.tape");
    std::fs::write(
        &bad,
        "tape inputs=1 params=0\n%0 = input 0\n%1 = frobnicate %0\n",
    )
    .unwrap();
    let out = tapejit(&["check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3"), "{err}");
}

#[test]
fn bad_arguments_are_usage_errors_with_exit_code_2() {
    for args in [
        &["bench", "--no-such-flag"][..],
        &["frobnicate"],
        &["bench", "--seconds", "fast"],
        &["bench", "--plot", "x.svg"],
        &["bench", "--scaling", "--full"],
        &["show"],
    ] {
        let out = tapejit(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error:"), "{args:?}: {err}");
        assert!(
            err.contains("Usage") || err.contains("--help"),
            "{args:?}: {err}"
        );
    }
    // Well-formed but wrong values: a message, exit code 1.
    let out = tapejit(&["bench", "--case", "nosuchcase:3"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!out.stderr.is_empty());
}
