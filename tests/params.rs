//! Passive parameters: runtime data read by the tape, never baked into it,
//! changeable between calls without retracing, and never differentiated.

mod common;

use common::{assert_same, same};
use tapejit::ir::Op;
use tapejit::{grad_with_params, Error, Float, Function, Real};

/// A least-squares fit of `y = a + b t` plus a smooth regulariser: data
/// `p = [t_0..t_m, y_0..y_m]`, inputs `x = [a, b]`.
fn loss<T: Real>(x: &[T], p: &[T]) -> T {
    let m = p.len() / 2;
    let (t, y) = p.split_at(m);
    let mut s = T::zero();
    for j in 0..m {
        let r = x[0] + x[1] * t[j] - y[j];
        s += r * r;
    }
    s / <T as From<f64>>::from(m as f64) + (x[0] * x[1]).tanh()
}

/// The closed-form gradient of [`loss`].
fn loss_gradient(x: &[f64], p: &[f64]) -> [f64; 2] {
    let m = p.len() / 2;
    let (t, y) = p.split_at(m);
    let (mut ga, mut gb) = (0.0, 0.0);
    for j in 0..m {
        let r = x[0] + x[1] * t[j] - y[j];
        ga += 2.0 * r / m as f64;
        gb += 2.0 * r * t[j] / m as f64;
    }
    let s = 1.0 - (x[0] * x[1]).tanh().powi(2);
    [ga + s * x[1], gb + s * x[0]]
}

fn data(seed: u64, m: usize) -> Vec<f64> {
    let mut rng = tapejit::suite::SplitMix64::new(seed);
    (0..2 * m).map(|_| rng.uniform(-2.0, 2.0)).collect()
}

#[track_caller]
fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-12 * (1.0 + w.abs()),
            "{what}[{k}]: {g} vs {w}"
        );
    }
}

#[test]
fn changing_params_changes_the_result_without_retracing() {
    let x = [0.3, -0.7];
    let mut df = grad_with_params(|x, p| loss(x, p));
    let mut g = [0.0; 2];
    let mut previous = None;
    for seed in 0..6 {
        let p = data(seed, 8);
        let y = df.call(&x, &p, &mut g).unwrap();
        // Bitwise the native f64 run on the new data.
        assert!(
            same(y, loss(&x, &p)),
            "seed {seed}: {y} vs {}",
            loss(&x, &p)
        );
        // The gradient with respect to x uses the new data.
        assert_close(
            &format!("gradient, data seed {seed}"),
            &g,
            &loss_gradient(&x, &p),
        );
        assert_ne!(previous, Some(y), "new data, new value");
        previous = Some(y);
    }
    assert_eq!(df.traces(), 1, "parameters must not cause retracing");
}

#[test]
fn function_with_params_evaluates_every_entry_point_on_the_bound_data() {
    let p0 = data(10, 5);
    let f = Function::scalar_with_params(&[0.1, 0.2], &p0, |x, p| loss(x, p)).unwrap();
    assert_eq!((f.n_inputs(), f.n_params()), (2, 10));
    // The data are read through Param instructions or strided parameter reads
    // of loops (the optimizer rolls the repeated terms), not baked in as
    // constants.
    fn params_read(t: &tapejit::Tape, read: &mut [bool]) {
        for i in t.insts().iter().filter(|i| i.op == Op::Param) {
            read[i.args[0] as usize] = true;
        }
        for lp in t.loops() {
            for a in lp
                .reads
                .iter()
                .filter(|a| a.buffer == tapejit::ir::Buffer::Param)
            {
                let (lo, hi) = a.range(&[lp.trips]);
                if a.strides.len() == 1 && a.strides[0].abs() <= 1 {
                    (lo..=hi).for_each(|k| read[k as usize] = true);
                }
            }
            params_read(&lp.body, read);
        }
    }
    let mut read = [false; 10];
    params_read(f.tape(), &mut read);
    assert!(read.iter().all(|&r| r), "{read:?}\n{}", f.tape());
    for inst in f.tape().insts().iter().filter(|i| i.op == Op::Const) {
        assert!(
            !p0.contains(&inst.const_value()),
            "datum {} baked into the tape as a constant",
            inst.const_value()
        );
    }
    let x = [0.4, -1.1];
    for seed in [11, 12, 13] {
        let p = data(seed, 5);
        let fp = f.with_params(&p).unwrap();
        let y = fp.value(&x).unwrap();
        assert!(same(y, loss(&x, &p)));
        let mut out = [0.0];
        fp.eval(&x, &mut out).unwrap();
        assert_same("eval", &out, &[loss(&x, &p)]);
        let mut g = [0.0; 2];
        assert!(same(fp.gradient(&x, &mut g).unwrap(), y));
        assert_close("gradient", &g, &loss_gradient(&x, &p));
        let v = [0.5, -2.0];
        let mut jv = [0.0];
        fp.jvp(&x, &v, &mut jv).unwrap();
        assert_close("jvp", &jv, &[g[0] * v[0] + g[1] * v[1]]);
        let mut wj = [0.0; 2];
        fp.vjp(&x, &[2.0], &mut wj).unwrap();
        assert_close("vjp", &wj, &[2.0 * g[0], 2.0 * g[1]]);
        let mut jac = [0.0; 2];
        fp.jacobian(&x, &mut jac).unwrap();
        assert_close("jacobian", &jac, &g);
        // Hessian: the quadratic part depends on the data (2/m sum [1 t; t t^2]).
        let mut h = [0.0; 4];
        fp.hessian(&x, &mut h).unwrap();
        let (t, _) = p.split_at(5);
        let s1: f64 = t.iter().sum::<f64>() * 2.0 / 5.0;
        let s2: f64 = t.iter().map(|t| t * t).sum::<f64>() * 2.0 / 5.0;
        let (a, b) = (x[0], x[1]);
        let th = (a * b).tanh();
        let sech2 = 1.0 - th * th;
        // d2/dadb tanh(ab) = sech2 - 2 a b th sech2, d2/da2 = -2 b^2 th sech2.
        let want = [
            2.0 - 2.0 * b * b * th * sech2,
            s1 + sech2 - 2.0 * a * b * th * sech2,
            s1 + sech2 - 2.0 * a * b * th * sech2,
            s2 - 2.0 * a * a * th * sech2,
        ];
        assert_close("hessian", &h, &want);
        let mut hv = [0.0; 2];
        fp.hvp(&x, &[1.0, 0.0], &mut hv).unwrap();
        assert_same("hvp column", &hv, &h[..2]);
    }
}

#[test]
fn params_are_not_differentiated() {
    // f = x * p: the gradient has one entry (x), whatever p is.
    let f = Function::scalar_with_params(&[2.0], &[3.0], |x, p| x[0] * p[0] * p[0]).unwrap();
    let mut g = [0.0];
    let y = f
        .with_params(&[5.0])
        .unwrap()
        .gradient(&[2.0], &mut g)
        .unwrap();
    assert_eq!((y, g), (50.0, [25.0]));
    // A function of the params alone has a zero gradient, and a value that follows them.
    let f = Function::scalar_with_params(&[1.0], &[3.0], |_, p| p[0].sin()).unwrap();
    let y = f
        .with_params(&[0.5])
        .unwrap()
        .gradient(&[1.0], &mut g)
        .unwrap();
    assert_eq!((y, g), (0.5f64.sin(), [0.0]));
}

#[test]
fn vector_functions_with_params() {
    fn residuals<T: Real>(x: &[T], p: &[T]) -> Vec<T> {
        p.iter().map(|&t| x[0] * t.exp() - x[1]).collect()
    }
    let f = Function::vector_with_params(&[1.0, 2.0], &[0.0, 1.0, 2.0], |x, p| residuals(x, p))
        .unwrap();
    let p = [0.5, -1.0, 3.0];
    let x = [2.0, -1.0];
    let fp = f.with_params(&p).unwrap();
    let mut out = [0.0; 3];
    fp.eval(&x, &mut out).unwrap();
    assert_same("residuals", &out, &residuals(&x, &p));
    let mut jac = [0.0; 6];
    fp.jacobian(&x, &mut jac).unwrap();
    let want: Vec<f64> = p.iter().flat_map(|t: &f64| [t.exp(), -1.0]).collect();
    assert_eq!(jac.to_vec(), want);
}

#[test]
fn wrong_param_length_is_an_error() {
    let f = Function::scalar_with_params(&[1.0], &[1.0, 2.0], |x, p| x[0] * p[0] + p[1]).unwrap();
    for bad in [&[][..], &[1.0][..], &[1.0, 2.0, 3.0][..]] {
        let err = f.with_params(bad).unwrap_err();
        assert_eq!(
            err,
            Error::WrongLength {
                what: "params",
                expected: 2,
                got: bad.len()
            }
        );
        let msg = err.to_string();
        assert!(msg.contains("params") && msg.contains('2'), "{msg}");
    }
    // A function without params takes an empty slice, and nothing else.
    let f = Function::scalar(&[1.0], |x| x[0]).unwrap();
    assert!(f.with_params(&[]).is_ok());
    assert!(matches!(
        f.with_params(&[1.0]),
        Err(Error::WrongLength {
            what: "params",
            expected: 0,
            got: 1
        })
    ));
    // grad_with_params: a later call with the wrong length is an error, not a panic or a retrace.
    let mut df = grad_with_params(|x, p| x[0] * p[0] + p[1]);
    let mut g = [0.0];
    df.call(&[1.0], &[2.0, 3.0], &mut g).unwrap();
    let err = df.call(&[1.0], &[2.0], &mut g).unwrap_err();
    assert!(
        matches!(err, Error::WrongLength { what: "params", .. }),
        "{err}"
    );
    assert_eq!(df.traces(), 1);
}

#[test]
fn calling_a_params_function_directly_is_a_clear_error() {
    let f = Function::scalar_with_params(&[1.0], &[2.0], |x, p| x[0] * p[0]).unwrap();
    let mut buf = [0.0];
    let errors = [
        f.eval(&[1.0], &mut buf).unwrap_err(),
        f.value(&[1.0]).unwrap_err(),
        f.gradient(&[1.0], &mut buf).unwrap_err(),
        f.jvp(&[1.0], &[1.0], &mut buf).unwrap_err(),
        f.vjp(&[1.0], &[1.0], &mut buf).unwrap_err(),
        f.jacobian(&[1.0], &mut buf).unwrap_err(),
        f.hvp(&[1.0], &[1.0], &mut buf).unwrap_err(),
        f.hessian(&[1.0], &mut buf).unwrap_err(),
    ];
    for err in errors {
        assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("with_params") && msg.contains("1 passive parameter"),
            "{msg}"
        );
    }
}
