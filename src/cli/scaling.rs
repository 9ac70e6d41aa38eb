//! `tapejit bench --scaling`: what a gradient costs, relative to one native
//! evaluation, as the number of variables `m` grows, for five methods:
//!
//! | key | method | cost model |
//! | --- | --- | --- |
//! | `fd` | central finite differences: `2m` native f64 evaluations | `~2m` |
//! | `num_dual` | forward mode on num-dual's `Dual64` ([`Fwd`]): `m` sweeps of the same generic source | `~c m` |
//! | `jit_forward` | tapejit forward mode: `m` compiled JVP sweeps | `~c m` |
//! | `interp_reverse` | tapejit reverse mode, interpreted | constant |
//! | `jit_reverse` | tapejit reverse mode, compiled | constant (the cheap-gradient bound: about 4) |
//!
//! Two families: [`rosenbrock`] with `m` inputs, and [`dense`], a dense
//! `8 -> H (tanh) -> 1` network on a fixed batch whose parameter count
//! `m = 10 H + 1` grows with its hidden width. Every method of one point is
//! timed interleaved with the native primal, so each ratio compares two
//! times measured under the same machine conditions. A method whose single
//! gradient takes longer than the cap is skipped at that size and above
//! (reported, never silently).

use super::dual::{forward_gradient, Fwd};
use super::report::Machine;
use super::timing::interleaved_with;
use crate::error::Result;
use crate::rng::SplitMix64;
use crate::suite::{rosenbrock, rosenbrock_default_input, SEED_MLP_DATA, SEED_MLP_WEIGHTS};
use crate::{Engine, Function, Real};
use serde::Serialize;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The sizes `m` of the study (the dense family rounds to `10 H + 1`).
pub const SCALING_SIZES: [usize; 7] = [10, 30, 100, 300, 1_000, 3_000, 10_000];

/// Inputs per sample of [`dense`].
pub const DENSE_INPUTS: usize = 8;
/// Samples in the batch of [`dense`].
pub const DENSE_BATCH: usize = 4;

/// A gradient method of the study.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Method {
    /// Key in the JSON (`fd`, `num_dual`, `jit_forward`, `interp_reverse`, `jit_reverse`).
    pub key: &'static str,
    /// Human-readable name for tables and the plot.
    pub label: &'static str,
}

/// The methods, in the order of tables and JSON.
pub const METHODS: [Method; 5] = [
    Method {
        key: "fd",
        label: "central finite differences",
    },
    Method {
        key: "num_dual",
        label: "forward, num-dual Dual64",
    },
    Method {
        key: "jit_forward",
        label: "tapejit forward (m JIT JVPs)",
    },
    Method {
        key: "interp_reverse",
        label: "tapejit reverse, interpreted",
    },
    Method {
        key: "jit_reverse",
        label: "tapejit reverse, JIT",
    },
];

/// A family of functions whose number of variables scales.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// [`rosenbrock`] with `m` inputs.
    Rosenbrock,
    /// [`dense`] with `m = 10 H + 1` parameters.
    Dense,
}

/// Both families, in report order.
pub const FAMILIES: [Family; 2] = [Family::Rosenbrock, Family::Dense];

impl Family {
    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Family::Rosenbrock => "rosenbrock",
            Family::Dense => "mlp",
        }
    }

    /// One-line description for tables and the plot.
    pub fn describe(self) -> String {
        match self {
            Family::Rosenbrock => "rosenbrock(m)".into(),
            Family::Dense => format!(
                "mlp: {DENSE_INPUTS} -> H (tanh) -> 1, batch {DENSE_BATCH}, m = {} H + 1",
                DENSE_INPUTS + 2
            ),
        }
    }

    /// The size parameter for a requested `m`: `n` for rosenbrock, the
    /// hidden width `H` (at least 1) for the network.
    pub fn size_param(self, m: usize) -> usize {
        match self {
            Family::Rosenbrock => m.max(2),
            Family::Dense => {
                ((m.saturating_sub(1) as f64 / (DENSE_INPUTS + 2) as f64).round() as usize).max(1)
            }
        }
    }

    /// The default input (length `m` actual) and data for size parameter `k`.
    pub fn inputs(self, k: usize) -> (Vec<f64>, Vec<f64>) {
        match self {
            Family::Rosenbrock => (rosenbrock_default_input(k), Vec::new()),
            Family::Dense => (dense_default_weights(k), dense_data()),
        }
    }

    /// Evaluates the family member of size parameter `k`.
    #[inline]
    pub fn eval<T: Real>(self, k: usize, x: &[T], p: &[T]) -> T {
        match self {
            Family::Rosenbrock => rosenbrock(x),
            Family::Dense => dense(x, p, k),
        }
    }
}

/// Number of parameters of [`dense`] with `hidden` units: `hidden (8 + 2) + 1`.
pub fn dense_len(hidden: usize) -> usize {
    hidden * (DENSE_INPUTS + 2) + 1
}

/// Mean squared error of a dense `8 -> hidden (tanh) -> 1` network on a
/// batch of 4 samples: the suite's [`mlp`](crate::suite::mlp) with its
/// width as a parameter. Layouts as there: `weights` = `[W1 (hidden x 8,
/// row-major), b1 (hidden), w2 (hidden), b2]`, `data` = the 4 x 8 inputs then
/// the 4 targets.
///
/// # Panics
/// If a slice has the wrong length.
pub fn dense<T: Real>(weights: &[T], data: &[T], hidden: usize) -> T {
    assert_eq!(weights.len(), dense_len(hidden), "dense: weights length");
    assert_eq!(
        data.len(),
        DENSE_BATCH * (DENSE_INPUTS + 1),
        "dense: data length"
    );
    crate::suite::network(weights, data, DENSE_INPUTS, hidden, DENSE_BATCH)
}

/// Weights of [`dense`]: seed 3 (as the suite's mlp), W1 and b1 uniform in
/// `±1/sqrt(8)`, w2 and b2 in `±1/sqrt(hidden)`, drawn in layout order.
pub fn dense_default_weights(hidden: usize) -> Vec<f64> {
    let mut rng = SplitMix64::new(SEED_MLP_WEIGHTS);
    let mut v = Vec::with_capacity(dense_len(hidden));
    let a1 = 1.0 / (DENSE_INPUTS as f64).sqrt();
    let a2 = 1.0 / (hidden as f64).sqrt();
    rng.fill_uniform(&mut v, hidden * (DENSE_INPUTS + 1), -a1, a1);
    rng.fill_uniform(&mut v, hidden + 1, -a2, a2);
    v
}

/// Batch and targets of [`dense`]: seed 4, uniform in `[-1, 1)`.
pub fn dense_data() -> Vec<f64> {
    let mut rng = SplitMix64::new(SEED_MLP_DATA);
    let mut v = Vec::new();
    rng.fill_uniform(&mut v, DENSE_BATCH * (DENSE_INPUTS + 1), -1.0, 1.0);
    v
}

/// One method at one point.
#[derive(Clone, Debug, Serialize)]
pub struct MethodPoint {
    /// [`Method::key`].
    pub method: &'static str,
    /// Median seconds of one whole gradient (null if skipped).
    pub grad_s: Option<f64>,
    /// `grad_s / native_primal_s`, measured interleaved.
    pub ratio: Option<f64>,
    /// Relative interquartile spread of `grad_s`.
    pub spread: Option<f64>,
    /// `|g - g_ref|∞ / |g_ref|∞` against the JIT reverse gradient: every
    /// method computes the same gradient (finite differences to ~1e-8).
    pub max_rel_diff: Option<f64>,
    /// Why the method was not timed here, if it was not.
    pub skipped: Option<String>,
}

/// One size of one family.
#[derive(Clone, Debug, Serialize)]
pub struct ScalingPoint {
    /// Family name (`rosenbrock`, `mlp`).
    pub family: &'static str,
    /// Number of variables (active inputs).
    pub m: usize,
    /// Size parameters, e.g. `"n=1000"`, `"hidden=100"`.
    pub size: String,
    /// Native f64 primal, median seconds.
    pub native_primal_s: f64,
    /// Primal tape length after optimization.
    pub tape_len_opt: usize,
    /// Gradient tape length after optimization.
    pub grad_tape_len_opt: usize,
    /// Trace, optimize, derive and compile (gradient and tangent tapes), seconds.
    pub setup_s: f64,
    /// One entry per method, in [`METHODS`] order.
    pub methods: Vec<MethodPoint>,
}

/// The fitted log-log slope of one line.
#[derive(Clone, Debug, Serialize)]
pub struct Slope {
    /// Family name.
    pub family: &'static str,
    /// [`Method::key`].
    pub method: &'static str,
    /// Least-squares slope of `ln(ratio)` on `ln(m)` (null with fewer than 2 points).
    pub slope: Option<f64>,
    /// Points fitted.
    pub points: usize,
}

/// The whole `--scaling --json` document.
#[derive(Clone, Debug, Serialize)]
pub struct ScalingReport {
    /// Crate version.
    pub tapejit: String,
    /// Where it ran.
    pub machine: Machine,
    /// Requested sizes.
    pub sizes: Vec<usize>,
    /// Seconds of interleaved timing per point.
    pub budget_s: f64,
    /// A method whose one gradient takes longer than this is skipped (seconds).
    pub cap_s: f64,
    /// Every point measured.
    pub points: Vec<ScalingPoint>,
    /// Fitted slopes per family and method.
    pub slopes: Vec<Slope>,
}

/// Least-squares slope of `ln y` on `ln x`.
pub fn loglog_slope(points: &[(f64, f64)]) -> Option<f64> {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0)
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    if pts.len() < 2 {
        return None;
    }
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// Fits every family and method's line.
pub fn slopes(points: &[ScalingPoint]) -> Vec<Slope> {
    let mut out = Vec::new();
    for family in FAMILIES {
        for (k, method) in METHODS.iter().enumerate() {
            let pts: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.family == family.name())
                .filter_map(|p| p.methods[k].ratio.map(|r| (p.m as f64, r)))
                .collect();
            if points.iter().all(|p| p.family != family.name()) {
                continue;
            }
            out.push(Slope {
                family: family.name(),
                method: method.key,
                slope: loglog_slope(&pts),
                points: pts.len(),
            });
        }
    }
    out
}

/// A method's gradient at `x` into `g`.
type Runner<'a> = Box<dyn FnMut(&mut [f64]) + 'a>;

fn rel_diff(g: &[f64], reference: &[f64]) -> f64 {
    let scale = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let diff = g
        .iter()
        .zip(reference)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    if scale > 0.0 {
        diff / scale
    } else {
        diff
    }
}

/// Measures one family at one requested size. `skip[k]` is set for a method
/// that exceeded `cap` (and is honoured for the larger sizes that follow).
pub fn measure_point(
    family: Family,
    requested_m: usize,
    budget: Duration,
    cap: Duration,
    skip: &mut [Option<String>; 5],
) -> Result<ScalingPoint> {
    let k = family.size_param(requested_m);
    let (x, p) = family.inputs(k);
    let m = x.len();
    let t0 = Instant::now();
    let f = Function::scalar_with_params(&x, &p, |x, p| family.eval(k, x, p))?;
    let bound = f.with_params(&p)?;
    let (interp, jit) = (bound.engine(Engine::Interpreter), bound.engine(Engine::Jit));
    let mut g_ref = vec![0.0; m];
    jit.gradient(&x, &mut g_ref)?;
    if skip[2].is_none() {
        // Compiles the tangent tape now, so that setup is not timed below.
        jit.jvp(&x, &vec![0.0; m], &mut [0.0])?;
    }
    let setup_s = t0.elapsed().as_secs_f64();

    let pd: Vec<Fwd> = p.iter().map(|&v| Fwd::constant(v)).collect();
    let mut runners: Vec<Runner> = Vec::new();
    // fd: 2m native evaluations.
    {
        let mut xf = x.clone();
        let p = &p;
        runners.push(Box::new(move |g: &mut [f64]| {
            for j in 0..xf.len() {
                let xj = xf[j];
                let h = f64::EPSILON.cbrt() * xj.abs().max(1.0);
                xf[j] = xj + h;
                let up = family.eval(k, black_box(&xf), p);
                xf[j] = xj - h;
                let down = family.eval(k, black_box(&xf), p);
                xf[j] = xj;
                g[j] = (up - down) / ((xj + h) - (xj - h));
            }
        }));
    }
    // num_dual: m forward sweeps.
    {
        let mut xd = vec![Fwd::constant(0.0); m];
        let (x, pd) = (&x, &pd);
        runners.push(Box::new(move |g: &mut [f64]| {
            forward_gradient(black_box(x), &mut xd, g, |xs| family.eval(k, xs, pd));
        }));
    }
    // jit_forward: m compiled JVP sweeps.
    {
        let mut v = vec![0.0; m];
        let x = &x;
        runners.push(Box::new(move |g: &mut [f64]| {
            let mut jv = [0.0];
            for j in 0..v.len() {
                v[j] = 1.0;
                let _ = jit.jvp(black_box(x), &v, &mut jv);
                v[j] = 0.0;
                g[j] = jv[0];
            }
        }));
    }
    let x = &x;
    runners.push(Box::new(move |g: &mut [f64]| {
        let _ = black_box(interp.gradient(black_box(x), g));
    }));
    runners.push(Box::new(move |g: &mut [f64]| {
        let _ = black_box(jit.gradient(black_box(x), g));
    }));

    // One untimed-for-the-result call each: checks the gradient, and skips a
    // method whose one call exceeds the cap (here and at larger sizes).
    let mut grads = vec![vec![0.0; m]; METHODS.len()];
    let mut diffs = [None; 5];
    for (idx, (run, g)) in runners.iter_mut().zip(&mut grads).enumerate() {
        if skip[idx].is_some() {
            continue;
        }
        let t = Instant::now();
        run(g);
        let dt = t.elapsed();
        diffs[idx] = Some(rel_diff(g, &g_ref));
        if dt > cap {
            skip[idx] = Some(format!(
                "one gradient took {:.1} s at m={m}, over the {:.1} s cap: not timed at m >= {m}",
                dt.as_secs_f64(),
                cap.as_secs_f64()
            ));
        }
    }

    let mut native = || {
        black_box(family.eval(k, black_box(x), black_box(&p)));
    };
    let included: Vec<usize> = (0..METHODS.len()).filter(|&i| skip[i].is_none()).collect();
    let samples = {
        let mut timed: Vec<Box<dyn FnMut() + '_>> = Vec::new();
        for (idx, (run, g)) in runners.iter_mut().zip(&mut grads).enumerate() {
            if skip[idx].is_none() {
                timed.push(Box::new(move || run(g)));
            }
        }
        let mut fns: Vec<&mut dyn FnMut()> = vec![&mut native];
        fns.extend(timed.iter_mut().map(|b| b.as_mut() as &mut dyn FnMut()));
        interleaved_with(&mut fns, budget, 3)
    };
    let native_s = samples[0].median;
    let methods = METHODS
        .iter()
        .enumerate()
        .map(|(idx, method)| {
            let sample = included
                .iter()
                .position(|&i| i == idx)
                .map(|pos| samples[pos + 1]);
            MethodPoint {
                method: method.key,
                grad_s: sample.map(|s| s.median),
                ratio: sample.map(|s| s.median / native_s),
                spread: sample.map(|s| s.spread),
                max_rel_diff: diffs[idx],
                skipped: if sample.is_none() {
                    skip[idx].clone()
                } else {
                    None
                },
            }
        })
        .collect();
    Ok(ScalingPoint {
        family: family.name(),
        m,
        size: match family {
            Family::Rosenbrock => format!("n={k}"),
            Family::Dense => format!("hidden={k}"),
        },
        native_primal_s: native_s,
        tape_len_opt: f.tape().len(),
        grad_tape_len_opt: f.gradient_tape()?.len(),
        setup_s,
        methods,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_a_power_law() {
        let pts: Vec<(f64, f64)> = [10.0, 100.0, 1000.0]
            .iter()
            .map(|&m: &f64| (m, 3.0 * m.powf(0.9)))
            .collect();
        assert!((loglog_slope(&pts).unwrap() - 0.9).abs() < 1e-12);
        assert_eq!(loglog_slope(&pts[..1]), None);
    }

    #[test]
    fn dense_sizes_round_to_the_requested_m() {
        for (m, h) in [(10, 1), (30, 3), (1000, 100), (10_000, 1000)] {
            assert_eq!(Family::Dense.size_param(m), h);
            assert_eq!(dense_len(h), m + 1);
            assert_eq!(dense_default_weights(h).len(), dense_len(h));
        }
        let f = dense(&dense_default_weights(3), &dense_data(), 3);
        assert!(f.is_finite() && f > 0.0);
    }

    #[test]
    fn every_method_computes_the_gradient() {
        let mut skip = Default::default();
        for family in FAMILIES {
            let point = measure_point(
                family,
                30,
                Duration::from_millis(20),
                Duration::from_secs(60),
                &mut skip,
            )
            .unwrap();
            for mp in &point.methods {
                let tol = if mp.method == "fd" { 1e-5 } else { 1e-12 };
                let d = mp.max_rel_diff.unwrap();
                assert!(d <= tol, "{} {}: {d}", point.family, mp.method);
                assert!(mp.ratio.unwrap() > 0.0);
            }
        }
    }
}
