//! Which sizes a case accepts: the minimums and an overflow guard.

use super::case::Case;
use super::parse::{CaseError, FORMS};

/// Largest buffer (inputs, data or outputs) a case may need, in values, and
/// largest size number: beyond it a size is surely a typo, and refusing it
/// early keeps the length arithmetic from overflowing.
pub const MAX_CASE_LEN: usize = 1 << 31;

impl Case {
    /// Checks the size: the minimums of [`Case`]'s `FromStr` and
    /// [`MAX_CASE_LEN`]. Cases built directly (not parsed) can call this.
    pub fn validate(&self) -> Result<(), CaseError> {
        let minimum = match *self {
            Case::Rosenbrock { n } => (n < 2).then_some("rosenbrock needs n >= 2"),
            Case::Gmm { d, k, n } => {
                (d < 1 || k < 1 || n < 1).then_some("gmm needs d, k and n >= 1")
            }
            Case::LorenzRk4 { steps } => (steps < 1).then_some("lorenz_rk4 needs steps >= 1"),
            Case::LorenzFold { steps } => (steps < 1).then_some("lorenz_fold needs steps >= 1"),
            Case::Mlp => None,
            Case::Broyden { n } => (n < 1).then_some("broyden needs n >= 1"),
        };
        if let Some(rule) = minimum {
            return Err(CaseError::new(format!(
                "`{self}`: {rule} (got {}); {FORMS}",
                self.size()
            )));
        }
        let sizes: &[usize] = match self {
            Case::Rosenbrock { n } | Case::Broyden { n } => &[*n],
            Case::Gmm { d, k, n } => &[*d, *k, *n],
            Case::LorenzRk4 { steps } | Case::LorenzFold { steps } => &[*steps],
            Case::Mlp => &[],
        };
        let lens = match *self {
            Case::Gmm { d, k, n } => {
                // gmm_param_len without overflow: k (1 + 2d + d(d-1)/2), and d n.
                let tri = d.checked_mul(d - 1).map(|v| v / 2);
                let per = tri.and_then(|t| t.checked_add(1)?.checked_add(d.checked_mul(2)?));
                [per.and_then(|v| v.checked_mul(k)), d.checked_mul(n)]
            }
            _ => [Some(0), Some(0)],
        };
        let fits = |v: Option<usize>| v.is_some_and(|v| v <= MAX_CASE_LEN);
        if !sizes.iter().all(|&s| s <= MAX_CASE_LEN) || !lens.into_iter().all(fits) {
            return Err(CaseError::new(format!(
                "`{self}` is too large: a size or buffer would exceed 2^31 values"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> CaseError {
        s.parse::<Case>().expect_err(s)
    }

    #[test]
    fn sizes_below_the_minimum() {
        assert!(err("rosenbrock:1")
            .message()
            .contains("rosenbrock needs n >= 2 (got n=1)"));
        assert!(err("rosenbrock:0").message().contains("n >= 2"));
        for s in ["gmm:0,5,10", "gmm:2,0,10", "gmm:2,5,0"] {
            assert!(
                err(s).message().contains("gmm needs d, k and n >= 1"),
                "{s}"
            );
        }
        assert!(err("lorenz_rk4:0").message().contains("steps >= 1"));
        assert!(err("broyden:0").message().contains("broyden needs n >= 1"));
    }

    #[test]
    fn absurd_sizes() {
        for s in [
            "rosenbrock:4294967296",
            "gmm:100000,100000,1",
            "gmm:2,5,4294967296",
            "gmm:4294967296,4294967296,4294967296",
            "lorenz_rk4:18446744073709551615",
            "broyden:3000000000",
        ] {
            assert!(err(s).message().contains("too large"), "{s}: {}", err(s));
        }
        assert!(Case::Gmm {
            d: usize::MAX,
            k: 2,
            n: 1
        }
        .validate()
        .is_err());
        assert!(Case::Rosenbrock { n: 1 }.validate().is_err());
    }
}
