//! Every operation a generic function can use on `Var`, traced through
//! `Function`: values bitwise equal to native `f64` (ordinary points, domain
//! edges, NaN, infinities, signed zeros), derivatives equal to closed forms
//! (reverse, forward and second order), and the kink semantics of DESIGN.md.
//! Every evaluation runs on both engines (interpreter and JIT), which must
//! agree bitwise.

mod common;

use common::{c, same, SPECIALS};
use tapejit::{Engine, Float, Function, Real, Result, Tape, Var, WithParams};

/// A traced function whose every evaluation runs on the interpreter and on
/// the JIT: both must give the same bits (or the same error); the
/// interpreter's result is returned. Same method names as `Function`.
struct Both(Function);

impl Both {
    fn scalar(x: &[f64], f: impl for<'t> FnOnce(&[Var<'t>]) -> Var<'t>) -> Result<Both> {
        Function::scalar(x, f).map(Both)
    }

    fn vector(x: &[f64], f: impl for<'t> FnOnce(&[Var<'t>]) -> Vec<Var<'t>>) -> Result<Both> {
        Function::vector(x, f).map(Both)
    }

    fn tape(&self) -> &Tape {
        self.0.tape()
    }

    /// Runs `f` on both engines with an output buffer of `len`; compares.
    fn run(
        &self,
        what: &str,
        len: usize,
        f: impl Fn(WithParams<'_>, &mut [f64]) -> Result<f64>,
    ) -> Result<(f64, Vec<f64>)> {
        let mut results = Vec::new();
        for engine in [Engine::Interpreter, Engine::Jit] {
            let mut buf = vec![0.0; len];
            let r = f(self.0.with_params(&[])?.engine(engine), &mut buf);
            results.push(r.map(|y| (y, buf)));
        }
        let jit = results.pop().unwrap();
        let interp = results.pop().unwrap();
        match (&interp, &jit) {
            (Ok((a, u)), Ok((b, v))) => {
                common::assert_same(&format!("{what}: JIT vs interpreter"), v, u);
                assert!(same(*a, *b), "{what}: JIT {b:?} vs interpreter {a:?}");
            }
            (Err(a), Err(b)) => assert_eq!(a, b, "{what}: JIT and interpreter errors"),
            (a, b) => panic!("{what}: interpreter {a:?}, JIT {b:?}"),
        }
        interp
    }

    fn value(&self, x: &[f64]) -> Result<f64> {
        Ok(self.run("value", 0, |w, _| w.value(x))?.0)
    }
    fn eval(&self, x: &[f64], out: &mut [f64]) -> Result<()> {
        let (_, b) = self.run("eval", out.len(), |w, b| w.eval(x, b).map(|()| 0.0))?;
        out.copy_from_slice(&b);
        Ok(())
    }
    fn gradient(&self, x: &[f64], g: &mut [f64]) -> Result<f64> {
        let (y, b) = self.run("gradient", g.len(), |w, b| w.gradient(x, b))?;
        g.copy_from_slice(&b);
        Ok(y)
    }
    fn jvp(&self, x: &[f64], v: &[f64], jv: &mut [f64]) -> Result<()> {
        let (_, b) = self.run("jvp", jv.len(), |w, b| w.jvp(x, v, b).map(|()| 0.0))?;
        jv.copy_from_slice(&b);
        Ok(())
    }
    fn jacobian(&self, x: &[f64], jac: &mut [f64]) -> Result<()> {
        let (_, b) = self.run("jacobian", jac.len(), |w, b| w.jacobian(x, b).map(|()| 0.0))?;
        jac.copy_from_slice(&b);
        Ok(())
    }
    fn hvp(&self, x: &[f64], v: &[f64], hv: &mut [f64]) -> Result<()> {
        let (_, b) = self.run("hvp", hv.len(), |w, b| w.hvp(x, v, b).map(|()| 0.0))?;
        hv.copy_from_slice(&b);
        Ok(())
    }
    fn hessian(&self, x: &[f64], h: &mut [f64]) -> Result<()> {
        let (_, b) = self.run("hessian", h.len(), |w, b| w.hessian(x, b).map(|()| 0.0))?;
        h.copy_from_slice(&b);
        Ok(())
    }
}

/// Closed-form derivatives are compared to this relative accuracy: they are
/// computed by a different formula than the derivative rule (a few ulps
/// apart), while a wrong rule is off by far more.
const REL: f64 = 1e-12;

/// `got` matches `want`: the same bits, both NaN, or within [`REL`].
fn close(got: f64, want: f64) -> bool {
    same(got, want)
        || (got.is_finite() && want.is_finite() && (got - want).abs() <= REL * want.abs())
}

#[track_caller]
fn assert_close(what: &str, got: f64, want: f64) {
    assert!(close(got, want), "{what}: got {got:?}, want {want:?}");
}

/// A traced one-input function and its native twin.
struct Unary {
    name: String,
    native: Box<dyn Fn(f64) -> f64>,
    f: Both,
}

impl Unary {
    /// The traced value equals the native one bitwise.
    #[track_caller]
    fn check_value(&self, x: f64) {
        let want = (self.native)(x);
        let got = self.f.value(&[x]).unwrap();
        assert!(
            same(got, want),
            "{}({x:?}): traced {got:?}, native {want:?}",
            self.name
        );
        // The gradient's fused sweep computes the same value.
        let mut g = [0.0];
        let got = self.f.gradient(&[x], &mut g).unwrap();
        assert!(
            same(got, want),
            "{}({x:?}) from gradient: {got:?}",
            self.name
        );
    }

    /// The gradient, the JVP (seed 1) and the closed form agree.
    #[track_caller]
    fn check_derivative(&self, x: f64, want: f64) {
        let mut g = [0.0];
        self.f.gradient(&[x], &mut g).unwrap();
        assert_close(&format!("{}'({x:?}) by reverse", self.name), g[0], want);
        let mut jv = [0.0];
        self.f.jvp(&[x], &[1.0], &mut jv).unwrap();
        assert!(
            same(jv[0], g[0]),
            "{}'({x:?}): forward {:?} != reverse {:?} (same partial, unit seed)",
            self.name,
            jv[0],
            g[0]
        );
    }

    #[track_caller]
    fn check_second(&self, x: f64, want: f64) {
        let mut hv = [0.0];
        self.f.hvp(&[x], &[1.0], &mut hv).unwrap();
        assert_close(&format!("{}''({x:?})", self.name), hv[0], want);
        let mut h = [0.0];
        self.f.hessian(&[x], &mut h).unwrap();
        assert!(same(h[0], hv[0]));
    }
}

/// Traces `|x| body` (generic over `Real`) at `x = 0.5` and checks it:
/// values at `points`, `outside` and every special value; the derivative
/// `d` at `points`; optionally the second derivative `d2` at `points`.
macro_rules! unary {
    ($name:expr, |$x:ident| $body:expr, d = |$dx:ident| $d:expr, at = $points:expr
     $(, outside = $outside:expr)? $(, d2 = |$ddx:ident| $dd:expr, at = $points2:expr)?) => {{
        fn op<T: Real>($x: T) -> T {
            $body
        }
        let u = Unary {
            name: $name.to_string(),
            native: Box::new(op::<f64>),
            f: Both::scalar(&[0.5], |x| op(x[0])).unwrap(),
        };
        assert_eq!(u.f.tape().n_guards(), 0, "{} must not guard", $name);
        let d = |$dx: f64| -> f64 { $d };
        for &x in $points.iter() {
            u.check_value(x);
            u.check_derivative(x, d(x));
        }
        $(for &x in $outside.iter() {
            u.check_value(x);
            assert!((u.native)(x).is_nan(), "{}({x}) is outside the domain", $name);
        })?
        for &x in SPECIALS.iter() {
            u.check_value(x);
        }
        $({
            let d2 = |$ddx: f64| -> f64 { $dd };
            for &x in $points2.iter() {
                u.check_second(x, d2(x));
            }
        })?
        u
    }};
}

const GENERAL: [f64; 7] = [-2.75, -1.0, -0.3, 0.0, 0.4, 1.0, 3.5];

#[test]
fn arithmetic_and_powers() {
    unary!(
        "neg",
        |x| -x,
        d = |_x| -1.0,
        at = GENERAL,
        d2 = |_x| 0.0,
        at = GENERAL
    );
    unary!(
        "recip",
        |x| x.recip(),
        d = |x| -1.0 / (x * x),
        at = [-3.0, -0.5, 0.0, -0.0, 0.25, 7.0, 1e-200],
        d2 = |x| 2.0 / (x * x * x),
        at = [-3.0, -0.5, 0.25, 7.0]
    );
    unary!("x + 2.5", |x| x + 2.5, d = |_x| 1.0, at = GENERAL);
    unary!("x - 2.5", |x| x - 2.5, d = |_x| 1.0, at = GENERAL);
    unary!("x * -3", |x| x * -3.0, d = |_x| -3.0, at = GENERAL);
    unary!("x / 4", |x| x / 4.0, d = |_x| 0.25, at = GENERAL);
    unary!(
        "x * x",
        |x| x * x,
        d = |x| 2.0 * x,
        at = GENERAL,
        d2 = |_x| 2.0,
        at = GENERAL
    );
    unary!("x / x", |x| x / x, d = |_x| 0.0, at = [-2.0, 0.5, 3.0]);
    for n in [-3, -2, -1, 0, 1, 2, 3, 7] {
        // A runtime exponent: trace a closure over `n`.
        let u = Unary {
            name: format!("powi({n})"),
            native: Box::new(move |x| x.powi(n)),
            f: Both::scalar(&[0.5], |x| x[0].powi(n)).unwrap(),
        };
        for &x in GENERAL.iter().chain(&SPECIALS) {
            u.check_value(x);
        }
        for x in [-2.75, -1.0, -0.3, 0.4, 1.0, 3.5] {
            let nf = n as f64;
            let d = if n == 0 { 0.0 } else { nf * x.powi(n - 1) };
            u.check_derivative(x, d);
            let d2 = if (0..2).contains(&n) {
                0.0
            } else {
                nf * (nf - 1.0) * x.powi(n - 2)
            };
            u.check_second(x, d2);
        }
        // At zero: x^n for n >= 1 has derivative n 0^(n-1), x^0 has 0, negative powers blow up.
        let d0 = match n {
            0 => 0.0,
            1 => 1.0,
            n if n > 1 => 0.0,
            _ => f64::NEG_INFINITY,
        };
        u.check_derivative(0.0, d0);
    }
}

#[test]
fn powi_extreme_exponents() {
    for n in [i32::MIN, i32::MIN + 1, i32::MAX] {
        let f = Both::scalar(&[0.5], |x| x[0].powi(n)).unwrap();
        for x in [1.0, -1.0, 1.0 + 1e-12, 0.5, 2.0, 0.0, f64::NAN] {
            assert!(same(f.value(&[x]).unwrap(), x.powi(n)), "powi({x}, {n})");
            let mut g = [0.0];
            f.gradient(&[x], &mut g).unwrap();
            let mut hv = [0.0];
            f.hvp(&[x], &[1.0], &mut hv).unwrap();
            if x.abs() == 1.0 {
                // d/dx x^n = n x^(n-1): at ±1 exactly n (x^(n-1)) = ±n.
                let sign = if x < 0.0 && (n as i64 - 1) % 2 != 0 {
                    -1.0
                } else {
                    1.0
                };
                assert_eq!(g[0], sign * n as f64, "powi'({x}, {n})");
            }
        }
    }
}

#[test]
fn roots_exponentials_and_logarithms() {
    unary!(
        "sqrt",
        |x| x.sqrt(),
        d = |x| 0.5 / x.sqrt(),
        at = [0.0, -0.0, 1e-300, 0.25, 2.0, 1e300],
        outside = [-1.0, -1e-300],
        d2 = |x| -0.25 / (x * x.sqrt()),
        at = [1e-100, 0.25, 2.0, 1e100]
    );
    unary!(
        "cbrt",
        |x| x.cbrt(),
        d = |x| 1.0 / (3.0 * x.cbrt() * x.cbrt()),
        at = [-8.0, -0.5, 0.0, 0.001, 27.0]
    );
    unary!(
        "exp",
        |x| x.exp(),
        d = |x| x.exp(),
        at = [-800.0, -2.0, 0.0, 1.5, 709.0, 710.0],
        d2 = |x| x.exp(),
        at = [-800.0, -2.0, 0.0, 1.5, 710.0]
    );
    unary!(
        "exp2",
        |x| x.exp2(),
        d = |x| x.exp2() * std::f64::consts::LN_2,
        at = [-1100.0, -2.0, 0.0, 1.5, 10.0]
    );
    unary!(
        "exp_m1",
        |x| x.exp_m1(),
        d = |x| x.exp(),
        at = [-1.0, -1e-10, 0.0, 1e-10, 2.0]
    );
    unary!(
        "ln",
        |x| x.ln(),
        d = |x| 1.0 / x,
        at = [0.0, 1e-300, 0.5, 1.0, 10.0, 1e300],
        outside = [-0.5, -2.0, -1e-300],
        d2 = |x| -1.0 / (x * x),
        at = [1e-100, 0.5, 10.0]
    );
    unary!(
        "log2",
        |x| x.log2(),
        d = |x| 1.0 / (x * std::f64::consts::LN_2),
        at = [0.0, 0.5, 1.0, 1024.0],
        outside = [-1.0]
    );
    unary!(
        "log10",
        |x| x.log10(),
        d = |x| 1.0 / (x * std::f64::consts::LN_10),
        at = [0.0, 0.5, 1.0, 1000.0],
        outside = [-1.0]
    );
    unary!(
        "ln_1p",
        |x| x.ln_1p(),
        d = |x| 1.0 / (1.0 + x),
        at = [-1.0, -0.5, -1e-12, 0.0, 3.0],
        outside = [-1.5]
    );
    // log with a base: ln(x) / ln(base), both traced.
    let f = Both::scalar(&[2.0, 3.0], |x| x[0].log(x[1])).unwrap();
    for (x, b) in [(2.0, 3.0), (0.5, 10.0), (8.0, 2.0), (5.0, 0.5)] {
        assert!(same(f.value(&[x, b]).unwrap(), x.log(b)));
        let mut g = [0.0; 2];
        f.gradient(&[x, b], &mut g).unwrap();
        assert_close("log d/dx", g[0], 1.0 / (x * b.ln()));
        assert_close("log d/dbase", g[1], -x.ln() / (b * b.ln() * b.ln()));
    }
    for &x in &SPECIALS {
        for &b in &SPECIALS {
            assert!(same(f.value(&[x, b]).unwrap(), x.log(b)), "log({x}, {b})");
        }
    }
}

#[test]
fn trigonometric_and_hyperbolic() {
    use std::f64::consts::FRAC_PI_2;
    unary!(
        "sin",
        |x| x.sin(),
        d = |x| x.cos(),
        at = GENERAL,
        d2 = |x| -x.sin(),
        at = GENERAL
    );
    unary!(
        "cos",
        |x| x.cos(),
        d = |x| -x.sin(),
        at = GENERAL,
        d2 = |x| -x.cos(),
        at = GENERAL
    );
    unary!(
        "tan",
        |x| x.tan(),
        d = |x| 1.0 + x.tan() * x.tan(),
        at = [-1.2, 0.0, 0.7, FRAC_PI_2]
    );
    unary!(
        "asin",
        |x| x.asin(),
        d = |x| 1.0 / (1.0 - x * x).sqrt(),
        at = [-1.0, -0.5, 0.0, 0.9, 1.0],
        outside = [1.0 + 1e-15, -2.0]
    );
    unary!(
        "acos",
        |x| x.acos(),
        d = |x| -1.0 / (1.0 - x * x).sqrt(),
        at = [-1.0, -0.5, 0.0, 0.9, 1.0],
        outside = [1.5, -1.0 - 1e-15]
    );
    unary!(
        "atan",
        |x| x.atan(),
        d = |x| 1.0 / (1.0 + x * x),
        at = GENERAL,
        d2 = |x| -2.0 * x / ((1.0 + x * x) * (1.0 + x * x)),
        at = GENERAL
    );
    unary!("sinh", |x| x.sinh(), d = |x| x.cosh(), at = GENERAL);
    unary!("cosh", |x| x.cosh(), d = |x| x.sinh(), at = GENERAL);
    unary!(
        "tanh",
        |x| x.tanh(),
        d = |x| 1.0 - x.tanh() * x.tanh(),
        at = GENERAL,
        d2 = |x| -2.0 * x.tanh() * (1.0 - x.tanh() * x.tanh()),
        at = GENERAL
    );
    unary!(
        "asinh",
        |x| x.asinh(),
        d = |x| 1.0 / (x * x + 1.0).sqrt(),
        at = GENERAL
    );
    unary!(
        "acosh",
        |x| x.acosh(),
        d = |x| 1.0 / (x * x - 1.0).sqrt(),
        at = [1.0, 1.5, 10.0],
        outside = [0.5, -2.0]
    );
    unary!(
        "atanh",
        |x| x.atanh(),
        d = |x| 1.0 / (1.0 - x * x),
        at = [-1.0, -0.5, 0.0, 0.75, 1.0],
        outside = [1.5, -1.5]
    );
    unary!(
        "to_degrees",
        |x| x.to_degrees(),
        d = |_x| 180.0 / std::f64::consts::PI,
        at = GENERAL
    );
    unary!(
        "to_radians",
        |x| x.to_radians(),
        d = |_x| std::f64::consts::PI / 180.0,
        at = GENERAL
    );
}

#[test]
fn kinks_and_rounding() {
    let sign = |x: f64| {
        if x > 0.0 {
            1.0
        } else if x < 0.0 {
            -1.0
        } else {
            0.0
        }
    };
    // abs'(0) = 0 (both zeros), sign elsewhere.
    unary!(
        "abs",
        |x| x.abs(),
        d = |x| sign(x),
        at = [-2.0, -0.0, 0.0, 1e-300, 3.0]
    );
    // signum, floor, ceil, round, trunc: derivative 0 everywhere, integers and ties included.
    let steps = [
        -2.5, -1.0, -0.5, -0.4, -0.0, 0.0, 0.3, 0.5, 1.5, 2.0, 2.5, 1e300,
    ];
    unary!("signum", |x| x.signum(), d = |_x| 0.0, at = steps);
    unary!("floor", |x| x.floor(), d = |_x| 0.0, at = steps);
    unary!("ceil", |x| x.ceil(), d = |_x| 0.0, at = steps);
    unary!("round", |x| x.round(), d = |_x| 0.0, at = steps);
    unary!("trunc", |x| x.trunc(), d = |_x| 0.0, at = steps);
    unary!("fract", |x| x.fract(), d = |_x| 1.0, at = steps);

    // round: ties away from zero, signed zero kept (bitwise).
    let f = Both::scalar(&[0.0], |x| x[0].round()).unwrap();
    for (x, want) in [
        (0.5, 1.0),
        (-0.5, -1.0),
        (1.5, 2.0),
        (2.5, 3.0),
        (-2.5, -3.0),
        (-0.4, -0.0),
        (0.49999999999999994, 0.0),
    ] {
        let got = f.value(&[x]).unwrap();
        assert_eq!(got.to_bits(), f64::to_bits(want), "round({x}) = {got:?}");
    }
}

/// A traced function of two inputs and its native twin.
struct Binary {
    name: &'static str,
    native: fn(f64, f64) -> f64,
    f: Both,
}

impl Binary {
    #[track_caller]
    fn check(&self, a: f64, b: f64, want: [f64; 2]) {
        self.check_value(a, b);
        let mut g = [0.0; 2];
        self.f.gradient(&[a, b], &mut g).unwrap();
        let n = self.name;
        assert_close(&format!("d{n}/da at ({a:?}, {b:?})"), g[0], want[0]);
        assert_close(&format!("d{n}/db at ({a:?}, {b:?})"), g[1], want[1]);
        if g.iter().all(|v| v.is_finite()) {
            for (k, v) in [[1.0, 0.0], [0.0, 1.0]].iter().enumerate() {
                let mut jv = [0.0];
                self.f.jvp(&[a, b], v, &mut jv).unwrap();
                assert_close(&format!("forward d{n}/d{k} at ({a:?}, {b:?})"), jv[0], g[k]);
            }
        }
    }

    #[track_caller]
    fn check_value(&self, a: f64, b: f64) {
        let want = (self.native)(a, b);
        let got = self.f.value(&[a, b]).unwrap();
        assert!(
            same(got, want),
            "{}({a:?}, {b:?}): traced {got:?}, native {want:?}",
            self.name
        );
    }

    fn check_specials(&self) {
        for &a in SPECIALS.iter().chain(&[2.0, -3.0]) {
            for &b in SPECIALS.iter().chain(&[2.0, -3.0]) {
                self.check_value(a, b);
                let mut g = [0.0; 2];
                let y = self.f.gradient(&[a, b], &mut g).unwrap();
                assert!(same(y, (self.native)(a, b)));
            }
        }
    }
}

macro_rules! binary {
    ($name:expr, |$a:ident, $b:ident| $body:expr) => {{
        fn op<T: Real>($a: T, $b: T) -> T {
            $body
        }
        let f = Binary {
            name: $name,
            native: op::<f64>,
            f: Both::scalar(&[0.5, 0.25], |x| op(x[0], x[1])).unwrap(),
        };
        assert_eq!(f.f.tape().n_guards(), 0, "{} must not guard", $name);
        f.check_specials();
        f
    }};
}

#[test]
fn binary_arithmetic() {
    let f = binary!("add", |a, b| a + b);
    f.check(1.5, -2.0, [1.0, 1.0]);
    let f = binary!("sub", |a, b| a - b);
    f.check(1.5, -2.0, [1.0, -1.0]);
    let f = binary!("mul", |a, b| a * b);
    f.check(1.5, -2.0, [-2.0, 1.5]);
    f.check(0.0, f64::INFINITY, [f64::INFINITY, 0.0]);
    let f = binary!("div", |a, b| a / b);
    for (a, b) in [(1.5, -2.0), (-3.0, 0.25), (0.0, 5.0)] {
        f.check(a, b, [1.0 / b, -a / (b * b)]);
    }
    f.check(1.0, 0.0, [f64::INFINITY, f64::NEG_INFINITY]);
    let f = binary!("rem", |a, b| a % b);
    for (a, b) in [
        (5.5, 2.0),
        (-5.5, 2.0),
        (5.5, -2.0),
        (1.0, 3.0),
        (7.25, 0.5),
    ] {
        f.check(a, b, [1.0, -(a / b).trunc()]);
    }
    // f64 - Var and friends (constants on the left).
    fn left<T: Real>(a: T, b: T) -> T {
        c::<T>(2.0) - a / b + c::<T>(3.0) * b
    }
    let f = Binary {
        name: "2 - a/b + 3b",
        native: left::<f64>,
        f: Both::scalar(&[0.5, 0.25], |x| left(x[0], x[1])).unwrap(),
    };
    f.check(1.0, 2.0, [-0.5, 0.25 + 3.0]);
    f.check_specials();
}

#[test]
fn powf() {
    let f = binary!("powf", |a, b| a.powf(b));
    for (a, b) in [(2.0, 3.0), (0.5, -1.5), (3.0, 0.5), (1.0, 7.0)] {
        f.check(a, b, [b * a.powf(b - 1.0), a.powf(b) * a.ln()]);
    }
    // Negative base with an integer exponent: defined, and so is d/da;
    // d/db involves ln(a), NaN as in f64.
    f.check(-2.0, 3.0, [12.0, f64::NAN]);
    f.check(-2.0, 2.0, [-4.0, f64::NAN]);
    // Negative base with a fractional exponent: NaN like f64, derivatives NaN.
    f.check(-2.0, 0.5, [f64::NAN, f64::NAN]);
    // Base 0 with a positive exponent: 0^b = 0 for every b > 0, so d/db = 0.
    f.check(0.0, 2.0, [0.0, 0.0]);
    f.check(0.0, 1.0, [1.0, 0.0]);
    f.check(0.0, 0.5, [f64::INFINITY, 0.0]);
    // Exponent 0: a^0 = 1 for every a, so d/da = 0 (also at a = 0).
    f.check(3.0, 0.0, [0.0, 3f64.ln()]);
    f.check(0.0, 0.0, [0.0, f64::NEG_INFINITY]);
}

#[test]
fn two_argument_functions() {
    let f = binary!("atan2", |a, b| a.atan2(b));
    for (y, x) in [(1.0, 2.0), (-1.0, -0.5), (3.0, 0.0), (0.0, -2.0)] {
        let r2 = x * x + y * y;
        f.check(y, x, [x / r2, -y / r2]);
    }
    let f = binary!("hypot", |a, b| a.hypot(b));
    for (a, b) in [(3.0f64, 4.0), (-1.0, 0.5), (0.0, 2.0)] {
        let h = a.hypot(b);
        f.check(a, b, [a / h, b / h]);
    }
    let f = binary!("copysign", |a, b| a.copysign(b));
    for (a, b) in [
        (2.0f64, 1.0),
        (2.0, -1.0),
        (-2.0, 1.0),
        (-2.0, -3.0),
        (1.5, -0.0),
    ] {
        let s = a.signum() * b.signum();
        f.check(a, b, [s, 0.0]);
    }
    #[allow(deprecated)]
    let f = binary!("abs_sub", |a, b| a.abs_sub(b));
    f.check(3.0, 1.0, [1.0, -1.0]);
    f.check(1.0, 3.0, [0.0, 0.0]);
    f.check(2.0, 2.0, [0.0, 0.0]);
    let f = binary!("log", |a, b| a.log(b));
    f.check(
        8.0,
        2.0,
        [
            1.0 / (8.0 * 2f64.ln()),
            -(8f64.ln()) / (2.0 * 2f64.ln().powi(2)),
        ],
    );
}

#[test]
fn max_and_min_send_the_adjoint_as_designed() {
    let nan = f64::NAN;
    let max = binary!("max", |a, b| a.max(b));
    // a >= b or b is NaN: to a; otherwise to b. Ties go to a.
    max.check(2.0, 1.0, [1.0, 0.0]);
    max.check(1.0, 2.0, [0.0, 1.0]);
    max.check(1.5, 1.5, [1.0, 0.0]);
    max.check(0.0, -0.0, [1.0, 0.0]);
    max.check(-0.0, 0.0, [1.0, 0.0]);
    max.check(1.0, nan, [1.0, 0.0]);
    max.check(nan, 1.0, [0.0, 1.0]);
    max.check(nan, nan, [1.0, 0.0]);
    max.check(f64::INFINITY, f64::INFINITY, [1.0, 0.0]);

    let min = binary!("min", |a, b| a.min(b));
    // Mirrored: a <= b or b is NaN: to a; otherwise to b.
    min.check(1.0, 2.0, [1.0, 0.0]);
    min.check(2.0, 1.0, [0.0, 1.0]);
    min.check(1.5, 1.5, [1.0, 0.0]);
    min.check(1.0, nan, [1.0, 0.0]);
    min.check(nan, 1.0, [0.0, 1.0]);
    min.check(nan, nan, [1.0, 0.0]);

    // The untaken side gets an exact zero even when the incoming adjoint is infinite.
    let f = Both::scalar(&[1.0, 2.0], |x| x[0].max(x[1]).sqrt()).unwrap();
    let mut g = [0.0; 2];
    f.gradient(&[0.0, -1.0], &mut g).unwrap();
    assert_eq!(g, [f64::INFINITY, 0.0]);
}

#[test]
fn mul_add_and_clamp() {
    fn fma<T: Real>(x: &[T]) -> T {
        x[0].mul_add(x[1], x[2])
    }
    let f = Both::scalar(&[1.0, 2.0, 3.0], |x| fma(x)).unwrap();
    // Single rounding: 0.1 * 10 - 1 is not 0 with a fused multiply-add.
    for x in [
        [0.1, 10.0, -1.0],
        [2.0, -3.0, 0.5],
        [1e308, 10.0, -f64::INFINITY],
        [f64::NAN, 0.0, 1.0],
    ] {
        assert!(same(f.value(&x).unwrap(), fma(&x)), "mul_add {x:?}");
    }
    let mut g = [0.0; 3];
    f.gradient(&[2.0, -3.0, 0.5], &mut g).unwrap();
    assert_eq!(g, [-3.0, 2.0, 1.0]);
    let mut h = [0.0; 9];
    f.hessian(&[2.0, -3.0, 0.5], &mut h).unwrap();
    assert_eq!(h, [0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);

    // clamp with constant bounds: derivative 1 inside (bounds included), 0 outside.
    let u = unary!(
        "clamp(x, -1, 2)",
        |x| x.clamp(c(-1.0), c(2.0)),
        d = |x| {
            if (-1.0..=2.0).contains(&x) {
                1.0
            } else {
                0.0
            }
        },
        at = [-3.0, -1.0, -0.0, 0.5, 2.0, 7.0]
    );
    assert!(same(u.f.value(&[f64::NAN]).unwrap(), f64::NAN));
    // clamp with traced bounds: the adjoint goes to whichever value is returned.
    fn clamp3<T: Real>(x: &[T]) -> T {
        x[0].clamp(x[1], x[2])
    }
    let f = Both::scalar(&[0.5, 0.0, 1.0], |x| clamp3(x)).unwrap();
    for (x, want) in [
        ([0.5, 0.0, 1.0], [1.0, 0.0, 0.0]),
        ([-0.5, 0.0, 1.0], [0.0, 1.0, 0.0]),
        ([1.5, 0.0, 1.0], [0.0, 0.0, 1.0]),
        ([0.0, 0.0, 1.0], [1.0, 0.0, 0.0]),
    ] {
        assert!(same(f.value(&x).unwrap(), clamp3(&x)));
        let mut g = [0.0; 3];
        f.gradient(&x, &mut g).unwrap();
        assert_eq!(g, want, "clamp gradient at {x:?}");
    }
}

#[test]
fn select_and_conditions() {
    fn relu<T: Real>(x: &[T]) -> T {
        T::select(x[0].cond_gt(T::zero()), x[0], T::zero())
    }
    let f = Both::scalar(&[1.0], |x| relu(x)).unwrap();
    assert_eq!(f.tape().n_guards(), 0);
    for (x, d) in [(2.0, 1.0), (-2.0, 0.0), (0.0, 0.0)] {
        let mut g = [0.0];
        assert!(same(f.gradient(&[x], &mut g).unwrap(), relu(&[x])));
        assert_eq!(g[0], d, "relu'({x})");
    }
    for &x in &SPECIALS {
        assert!(same(f.value(&[x]).unwrap(), relu(&[x])), "relu({x})");
    }
    // Every cond_* is a 0/1 value, bitwise equal to f64's.
    fn conds<T: Real>(x: &[T]) -> Vec<T> {
        let (a, b) = (x[0], x[1]);
        vec![
            a.cond_lt(b),
            a.cond_le(b),
            a.cond_gt(b),
            a.cond_ge(b),
            a.cond_eq(b),
            a.cond_ne(b),
            T::select(a.cond_lt(b), a * b, a - b),
        ]
    }
    let f = Both::vector(&[0.0, 1.0], |x| conds(x)).unwrap();
    assert_eq!(f.tape().n_guards(), 0);
    for &a in &SPECIALS {
        for &b in &SPECIALS {
            let mut out = [0.0; 7];
            f.eval(&[a, b], &mut out).unwrap();
            common::assert_same(&format!("conds({a}, {b})"), &out, &conds(&[a, b]));
        }
    }
    // select sends the derivative only into the chosen branch, with an
    // exact zero for the other even when its partial is infinite.
    fn pick<T: Real>(x: &[T]) -> T {
        T::select(x[0].cond_lt(T::zero()), x[0] * x[0] * 0.5, x[0] * 3.0)
    }
    let f = Both::scalar(&[1.0], |x| pick(x)).unwrap();
    for (x, d) in [(0.0, 3.0), (2.0, 3.0), (-2.0, -2.0)] {
        let mut g = [0.0];
        f.gradient(&[x], &mut g).unwrap();
        assert_eq!(g, [d], "select derivative at {x}");
    }
}

#[test]
fn sum_and_product_match_f64() {
    fn sums<T: Real>(x: &[T]) -> Vec<T> {
        vec![
            x.iter().copied().sum::<T>(),
            x[..1].iter().copied().sum::<T>(),
            x[..0].iter().copied().sum::<T>() + x[0],
            x.iter().copied().product::<T>(),
        ]
    }
    let f = Both::vector(&[1.0, 2.0, 3.0], |x| sums(x)).unwrap();
    for x in [
        [1.0, 2.0, 3.0],
        [-0.0, -0.0, -0.0],
        [-0.0, 0.0, -0.0],
        [f64::NAN, 1.0, 2.0],
        [f64::INFINITY, f64::NEG_INFINITY, 0.0],
    ] {
        let mut out = [0.0; 4];
        f.eval(&x, &mut out).unwrap();
        common::assert_same(&format!("sums at {x:?}"), &out, &sums(&x));
    }
    let mut jac = [0.0; 12];
    f.jacobian(&[1.0, 2.0, 3.0], &mut jac).unwrap();
    assert_eq!(
        jac,
        [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 6.0, 3.0, 2.0]
    );
}

/// The sign of a NaN is observable (`copysign`, `signbit`), so where Rust
/// defines it (`signum` returns `f64::NAN`; `abs`, `neg`, `copysign` are
/// bit operations) both engines must agree on it: every op, applied to
/// operands including NaNs of both signs, then `copysign(1, result)`.
#[test]
fn nan_signs_agree_between_engines() {
    use tapejit::ir::{Inst, Op, Shape, ALL_OPS};
    use tapejit::{interp, Options};
    let values = [
        f64::NAN,
        -f64::NAN,
        1.0,
        -1.0,
        0.0,
        -0.0,
        f64::INFINITY,
        2.5,
    ];
    for op in ALL_OPS {
        let arity = match op.shape() {
            Shape::Values(n) => n,
            _ => continue,
        };
        let mut t = Tape::new(arity, 0);
        for i in 0..arity {
            t.push(Inst::input(i as u32));
        }
        let r = t.push(Inst {
            op,
            args: std::array::from_fn(|k| if k < arity { k as u32 } else { 0 }),
        });
        let one = t.push(Inst::constant(1.0));
        let sign = t.push(Inst::binary(Op::Copysign, one, r));
        t.push_output(sign);
        let options = Options {
            optimize: false,
            engine: Engine::Jit,
            ..Options::default()
        };
        let f = Function::from_tape_with(t.clone(), options).unwrap();
        let mut points: Vec<Vec<f64>> = vec![vec![]];
        for _ in 0..arity {
            points = points
                .into_iter()
                .flat_map(|p| {
                    values.iter().map(move |&v| {
                        let mut p = p.clone();
                        p.push(v);
                        p
                    })
                })
                .collect();
        }
        for x in points {
            let (mut a, mut b) = ([0.0], [0.0]);
            interp::eval(&t, &x, &[], &mut Vec::new(), &mut a).unwrap();
            f.eval(&x, &mut b).unwrap();
            assert_eq!(
                a[0].to_bits(),
                b[0].to_bits(),
                "sign of {op:?} at {x:?}: interpreter {}, JIT {}",
                a[0],
                b[0]
            );
        }
    }
}
