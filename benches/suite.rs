//! Criterion benches of the suite's quick cases: native f64 primal, and the
//! primal and gradient interpreted and JIT-compiled, per case. (For vector
//! cases the "gradient" is one VJP with the case's seeded weights, as in
//! `tapejit bench`.)

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;
use tapejit::suite::Case;
use tapejit::Engine;

fn suite(c: &mut Criterion) {
    for case in Case::quick() {
        let mut group = c.benchmark_group(case.to_string());
        let x = case.default_input();
        let p = case.params();
        let w = case.vjp_weights();
        let (n, m) = (case.n_inputs(), case.n_outputs());
        let f = case.function().expect("suite cases trace");
        let bound = f.with_params(&p).expect("params have the case's length");
        let mut out = vec![0.0; m];
        let mut scratch = vec![0.0; case.scratch_len()];
        let mut g = vec![0.0; n];

        group.bench_function(BenchmarkId::new("native_primal", ""), |b| {
            b.iter(|| {
                case.eval_with_scratch(black_box(&x), black_box(&p), &mut out, &mut scratch);
                black_box(&out);
            })
        });
        for (engine, name) in [(Engine::Interpreter, "interp"), (Engine::Jit, "jit")] {
            let e = bound.engine(engine);
            // Compile (or build) outside the timed loop.
            e.eval(&x, &mut out).unwrap();
            group.bench_function(BenchmarkId::new(format!("{name}_primal"), ""), |b| {
                b.iter(|| e.eval(black_box(&x), &mut out).unwrap())
            });
            group.bench_function(BenchmarkId::new(format!("{name}_grad"), ""), |b| {
                b.iter(|| {
                    if m == 1 {
                        e.gradient(black_box(&x), &mut g).unwrap();
                    } else {
                        e.vjp(black_box(&x), &w, &mut g).unwrap();
                    }
                })
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(300));
    targets = suite
}
criterion_main!(benches);
