//! Quick timing of one suite case's compiled primal and gradient against
//! its native primal, for working on loop code generation.
//!
//! ```text
//! cargo run --release --example loopbench -- CASE[:SIZE] [ROUNDS]
//! ```
//!
//! Prints two sets of medians over `ROUNDS` rounds (default 31): `tight`
//! (each function called back to back, caches warm with its own data) and
//! `mixed` (one call of each per round, in turn, as `tapejit bench` does).

use std::hint::black_box;
use std::time::Instant;
use tapejit::suite::Case;
use tapejit::Engine;

fn median(mut t: Vec<f64>) -> f64 {
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() -> tapejit::Result<()> {
    let mut args = std::env::args().skip(1);
    let case: Case = args
        .next()
        .unwrap_or_else(|| "rosenbrock:1000000".into())
        .parse()
        .expect("CASE");
    let rounds: usize = args.next().map_or(31, |s| s.parse().expect("ROUNDS"));
    let (n, m) = (case.n_inputs(), case.n_outputs());
    let x = case.default_input();
    let p = case.params();
    let w = case.vjp_weights();
    let f = case.function()?;
    let jit = f.with_params(&p)?.engine(Engine::Jit);
    let mut out = vec![0.0; m];
    let mut nat = vec![0.0; m];
    let mut scratch = vec![0.0; case.scratch_len()];
    let mut g = vec![0.0; n];
    let mut fs: [Box<dyn FnMut()>; 3] = [
        Box::new(|| {
            case.eval_with_scratch(black_box(&x), &p, &mut nat, &mut scratch);
            black_box(&nat);
        }),
        Box::new(|| {
            jit.eval(black_box(&x), &mut out).unwrap();
            black_box(&out);
        }),
        Box::new(|| {
            if m == 1 {
                jit.gradient(black_box(&x), &mut g).unwrap();
            } else {
                jit.vjp(black_box(&x), &w, &mut g).unwrap();
            }
            black_box(&g);
        }),
    ];
    // Calls per timing so that one lasts about a millisecond.
    let reps: Vec<u32> = fs
        .iter_mut()
        .map(|f| {
            let t = Instant::now();
            f();
            (1e-3 / t.elapsed().as_secs_f64()).clamp(1.0, 1e5) as u32
        })
        .collect();
    let time = |f: &mut Box<dyn FnMut()>, r: u32| {
        let t = Instant::now();
        for _ in 0..r {
            f();
        }
        t.elapsed().as_secs_f64() / r as f64
    };
    let mut tight = vec![Vec::new(); 3];
    for (k, f) in fs.iter_mut().enumerate() {
        for _ in 0..rounds {
            tight[k].push(time(f, reps[k]));
        }
    }
    // As `tapejit bench` interleaves them: the interpreter's gradient runs
    // between (and evicts the caches).
    let interp = f.with_params(&p)?.engine(Engine::Interpreter);
    let mut gi = vec![0.0; n];
    let mut mixed = vec![Vec::new(); 3];
    for _ in 0..rounds {
        for (k, f) in fs.iter_mut().enumerate() {
            if m == 1 {
                interp.gradient(black_box(&x), &mut gi)?;
            }
            mixed[k].push(time(f, 5));
        }
    }
    for (name, t) in [("tight", tight), ("mixed", mixed)] {
        let [nf, jf, jg] = [0, 1, 2].map(|k| median(t[k].clone()));
        println!(
            "{case} {name}: native f {:9.3} us  jit f {:9.3} us ({:.2}x)  jit grad {:9.3} us ({:.2}x)",
            nf * 1e6,
            jf * 1e6,
            jf / nf,
            jg * 1e6,
            jg / nf
        );
    }
    Ok(())
}
