//! Explicit loops (`fold`) and the derivatives of loops: the traced loop
//! against the same Rust loop unrolled, and gradients against finite
//! differences.

use tapejit::suite::{lorenz_rk4, lorenz_rk4_fold, LORENZ_DEFAULT_INPUT};
use tapejit::{fold, trace_scalar, Engine, Function, Real, Strided, Tape};

/// Rosenbrock written with `fold` over the strided views x[i], x[i+1].
fn rosenbrock_fold<T: Real>(x: &[T]) -> T {
    let n = x.len() - 1;
    let reads = [Strided::new(x, 0, 1), Strided::new(x, 1, 1)];
    fold(n, &[T::neg_zero()], &reads, |s, r| {
        let (a, b) = (r[0], r[1]);
        let t = b - a * a;
        let u = T::one() - a;
        vec![s[0] + t * t * 100.0 + u * u]
    })[0]
}

fn rosenbrock_plain<T: Real>(x: &[T]) -> T {
    let mut s = T::neg_zero();
    for i in 0..x.len() - 1 {
        let (a, b) = (x[i], x[i + 1]);
        let t = b - a * a;
        let u = T::one() - a;
        s = s + t * t * 100.0 + u * u;
    }
    s
}

fn interp(tape: Tape) -> Function {
    Function::from_tape(tape).unwrap()
}

fn gradient(f: &Function, x: &[f64]) -> (f64, Vec<f64>) {
    let mut g = vec![0.0; x.len()];
    let v = f
        .with_params(&[])
        .unwrap()
        .engine(Engine::Interpreter)
        .gradient(x, &mut g)
        .unwrap();
    (v, g)
}

/// |a - b| <= 8 eps * scale, DESIGN.md's bound for two tapes' derivatives.
fn close(a: f64, b: f64, scale: f64) -> bool {
    (a - b).abs() <= 8.0 * f64::EPSILON * scale.abs().max(a.abs()).max(1e-300) * 4.0
}

#[test]
fn fold_traces_one_body_and_matches_the_unrolled_loop() {
    for n in [2usize, 3, 10, 257] {
        let x: Vec<f64> = (0..n).map(|i| 0.3 + 0.1 * (i % 7) as f64).collect();
        let rolled = trace_scalar(&x, &[], |x, _| rosenbrock_fold(x)).unwrap();
        let unrolled = trace_scalar(&x, &[], |x, _| rosenbrock_plain(x)).unwrap();
        assert_eq!(rolled.n_loops(), 1);
        assert!(rolled.static_len() - n < 40, "{rolled}");
        let (f_r, f_u) = (interp(rolled), interp(unrolled));
        for shift in [0.0, 0.5, -1.25] {
            let y: Vec<f64> = x.iter().map(|v| v + shift).collect();
            let (vr, gr) = gradient(&f_r, &y);
            let (vu, gu) = gradient(&f_u, &y);
            assert_eq!(vr.to_bits(), vu.to_bits());
            assert_eq!(vr.to_bits(), rosenbrock_plain(&y).to_bits());
            for (a, b) in gr.iter().zip(&gu) {
                assert!(close(*a, *b, *b), "n={n}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn lorenz_fold_is_short_exact_and_differentiable() {
    let x = LORENZ_DEFAULT_INPUT;
    let rolled = trace_scalar(&x, &[], |x, _| lorenz_rk4_fold(x, 1000)).unwrap();
    assert!(rolled.static_len() < 1000, "{}", rolled.static_len());
    let unrolled = trace_scalar(&x, &[], |x, _| lorenz_rk4(x, 1000)).unwrap();
    let (f_r, f_u) = (interp(rolled), interp(unrolled));
    let (vr, gr) = gradient(&f_r, &x);
    let (vu, gu) = gradient(&f_u, &x);
    assert_eq!(vr.to_bits(), vu.to_bits());
    for (a, b) in gr.iter().zip(&gu) {
        assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
    }
    // Central differences on sigma.
    let h = 1e-6;
    let mut xp = x;
    xp[3] += h;
    let mut xm = x;
    xm[3] -= h;
    let fd = (lorenz_rk4(&xp, 1000) - lorenz_rk4(&xm, 1000)) / (2.0 * h);
    assert!(
        (fd - gr[3]).abs() <= 1e-5 * fd.abs().max(1.0),
        "{fd} vs {}",
        gr[3]
    );
}

#[test]
fn nested_folds_capture_outer_values() {
    // Σ_i Σ_j (x[j] * s_i) with s carried by the outer loop: an inner loop
    // reading the inputs and capturing the outer state.
    fn f<T: Real>(x: &[T]) -> T {
        let reads = [Strided::new(x, 0, 1)];
        fold(4, &[T::one()], &[], |s, _| {
            let scale = s[0];
            let inner = fold(x.len(), &[T::neg_zero()], &reads, |acc, r| {
                vec![acc[0] + (r[0] * scale).sin()]
            });
            vec![scale * 0.5 + inner[0]]
        })[0]
    }
    let x = [0.1, -0.7, 2.0];
    let rolled = trace_scalar(&x, &[], |x, _| f(x)).unwrap();
    assert_eq!(rolled.n_loops(), 2, "{rolled}");
    let plain = f(&x);
    let func = interp(rolled);
    let (v, g) = gradient(&func, &x);
    assert_eq!(v.to_bits(), plain.to_bits());
    for i in 0..3 {
        let h = 1e-6;
        let (mut xp, mut xm) = (x, x);
        xp[i] += h;
        xm[i] -= h;
        let fd = (f(&xp) - f(&xm)) / (2.0 * h);
        assert!(
            (fd - g[i]).abs() <= 1e-6 * fd.abs().max(1.0),
            "{i}: {fd} vs {}",
            g[i]
        );
    }
}

#[test]
fn a_fold_body_that_branches_differently_later_is_an_error() {
    let x = [1.0];
    let err = trace_scalar(&x, &[], |x, _| {
        fold(10, &[x[0]], &[], |s, _| {
            // Taken at iteration 0 (s = 1), not once s exceeds 3.
            if s[0] < tapejit::Var::from(3.0) {
                vec![s[0] + 1.0]
            } else {
                vec![s[0]]
            }
        })[0]
    })
    .unwrap_err();
    assert!(err.to_string().contains("same branches"), "{err}");
}

#[test]
fn forward_mode_and_hessians_go_through_loops() {
    let x = [0.4, -0.3, 1.1, 0.9, 0.2];
    let rolled = interp(trace_scalar(&x, &[], |x, _| rosenbrock_fold(x)).unwrap());
    let unrolled = interp(trace_scalar(&x, &[], |x, _| rosenbrock_plain(x)).unwrap());
    assert!(rolled.tape().n_loops() > 0);
    let v = [0.3, 1.0, -0.5, 0.25, 2.0];
    let run = |f: &Function| {
        let w = f.with_params(&[]).unwrap().engine(Engine::Interpreter);
        let mut jv = [0.0];
        w.jvp(&x, &v, &mut jv).unwrap();
        let mut hv = [0.0; 5];
        w.hvp(&x, &v, &mut hv).unwrap();
        let mut h = [0.0; 25];
        w.hessian(&x, &mut h).unwrap();
        (jv, hv, h)
    };
    let (jr, hvr, hr) = run(&rolled);
    let (ju, hvu, hu) = run(&unrolled);
    assert!(close(jr[0], ju[0], ju[0]), "{jr:?} {ju:?}");
    for (a, b) in hvr.iter().zip(&hvu).chain(hr.iter().zip(&hu)) {
        assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn checkpointed_gradients_equal_stored_states_bit_for_bit() {
    use tapejit::MemoryBudget;
    let x = LORENZ_DEFAULT_INPUT;
    for steps in [1usize, 2, 7, 1000] {
        let tape = trace_scalar(&x, &[], |x, _| lorenz_rk4_fold(x, steps)).unwrap();
        let with = |budget| {
            let options = tapejit::Options {
                memory_budget: budget,
                engine: Engine::Interpreter,
                ..tapejit::Options::default()
            };
            Function::from_tape_with(tape.clone(), options).unwrap()
        };
        let all = with(MemoryBudget::Unlimited);
        assert!(all.gradient_tape().unwrap().checkpoints().is_empty());
        let (v0, g0) = gradient(&all, &x);
        for budget in [
            MemoryBudget::Snapshots(1),
            MemoryBudget::Snapshots(3),
            MemoryBudget::Bytes(24 * 10),
        ] {
            let f = with(budget);
            let g = f.gradient_tape().unwrap();
            assert_eq!(
                &g.to_string().parse::<Tape>().unwrap(),
                g,
                "text round trip"
            );
            let cps = g.checkpoints().len();
            if steps == 1000 {
                assert_eq!(cps, 1, "{budget:?}: 1000 steps exceed the budget");
            }
            let (v, g) = gradient(&f, &x);
            assert_eq!(v.to_bits(), v0.to_bits());
            for (a, b) in g.iter().zip(&g0) {
                assert_eq!(a.to_bits(), b.to_bits(), "{budget:?}, {steps} steps");
            }
        }
    }
    let err = match Function::from_tape_with(
        trace_scalar(&x, &[], |x, _| lorenz_rk4_fold(x, 10)).unwrap(),
        tapejit::Options {
            memory_budget: MemoryBudget::Bytes(16),
            ..tapejit::Options::default()
        },
    ) {
        Ok(_) => panic!("a budget below one snapshot is an error"),
        Err(e) => e,
    };
    assert!(
        err.to_string().contains("smaller than one snapshot"),
        "{err}"
    );
}
