//! Per-call time of small compiled evaluations through the public API
//! (`WithParams::eval`, `gradient`, `vjp`, `jacobian`), next to the native
//! `f64` primal, each in a tight loop of its own. Written to find per-call
//! overhead (length checks, lazily built tapes, the thread-local workspace,
//! the JIT's call path): at these sizes it is a large part of a call.
//!
//! `cargo run --release --example call_overhead -- [CASE [WHAT [CALLS]]]`:
//! CASE a suite case (default `rosenbrock:10`; `broyden:10` has vector
//! outputs), WHAT one of `native`, `eval`, `grad`, `vjp`, `jac` (default:
//! all that apply), CALLS per measurement (default 10^7). Prints the best
//! of five batches, in ns per call.

use std::hint::black_box;
use std::time::Instant;
use tapejit::suite::Case;
use tapejit::Engine;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let case: Case = args
        .get(1)
        .map_or("rosenbrock:10", String::as_str)
        .parse()
        .expect("a suite case, e.g. rosenbrock:10");
    let calls: u64 = args
        .get(3)
        .map_or(10_000_000, |s| s.parse().expect("CALLS"));
    let (n, m) = (case.n_inputs(), case.n_outputs());
    let whats: Vec<&str> = match args.get(2) {
        Some(w) => vec![w.as_str()],
        None if m == 1 => vec!["native", "eval", "grad"],
        None => vec!["native", "eval", "vjp", "jac"],
    };
    let f = case.function().expect("traces");
    let (p, x, w) = (case.params(), case.default_input(), case.vjp_weights());
    let b = f.with_params(&p).expect("params").engine(Engine::Jit);
    let (mut out, mut g, mut jac) = (vec![0.0; m], vec![0.0; n], vec![0.0; n * m]);
    let mut scratch = vec![0.0; case.scratch_len()];
    for what in whats {
        let mut call = || match what {
            "native" => case.eval_with_scratch(black_box(&x), &p, &mut out, &mut scratch),
            "eval" => b.eval(black_box(&x), &mut out).expect("eval"),
            "grad" => {
                black_box(b.gradient(black_box(&x), &mut g).expect("gradient"));
            }
            "vjp" => b.vjp(black_box(&x), &w, &mut g).expect("vjp"),
            "jac" => b.jacobian(black_box(&x), &mut jac).expect("jacobian"),
            _ => panic!("WHAT is one of native, eval, grad, vjp, jac"),
        };
        // Warm up: compiles the tape and fills the caches.
        for _ in 0..calls / 10 {
            call();
        }
        let best = (0..5)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..calls {
                    call();
                }
                start.elapsed().as_secs_f64() * 1e9 / calls as f64
            })
            .fold(f64::INFINITY, f64::min);
        black_box((&out, &g, &jac));
        println!(
            "{case} {what}: {best:.2} ns/call",
            case = args.get(1).map_or("rosenbrock:10", String::as_str)
        );
    }
}
