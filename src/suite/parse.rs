//! The `name:size` spelling of cases: parsing, display and size checks.

use super::case::Case;
use super::sizes::CASE_NAMES;
use std::fmt;
use std::str::FromStr;

/// The accepted spellings, quoted by every parse error.
pub(super) const FORMS: &str = "valid cases: rosenbrock:N (N >= 2), gmm:D,K,N (each >= 1), \
                     lorenz_rk4:STEPS (>= 1), lorenz_fold:STEPS (>= 1), mlp, broyden:N (N >= 1)";

impl fmt::Display for Case {
    /// The `FromStr` spelling, so a displayed case parses back to itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Case::Rosenbrock { n } => write!(f, "rosenbrock:{n}"),
            Case::Gmm { d, k, n } => write!(f, "gmm:{d},{k},{n}"),
            Case::LorenzRk4 { steps } => write!(f, "lorenz_rk4:{steps}"),
            Case::LorenzFold { steps } => write!(f, "lorenz_fold:{steps}"),
            Case::Mlp => write!(f, "mlp"),
            Case::Broyden { n } => write!(f, "broyden:{n}"),
        }
    }
}

/// Why a case string (or a directly built [`Case`]) was refused; the message
/// says what was wrong and lists the valid forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseError {
    message: String,
    missing_size: Option<&'static str>,
}

impl CaseError {
    pub(super) fn new(message: String) -> Self {
        Self {
            message,
            missing_size: None,
        }
    }

    /// The full message (same as `Display`).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// `Some(name)` when the string was a bare case name that needs a size:
    /// a CLI can then pick that case's sizes with [`Case::quick_sizes`] or
    /// [`Case::full_sizes`] instead of failing.
    pub fn missing_size(&self) -> Option<&'static str> {
        self.missing_size
    }
}

impl fmt::Display for CaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CaseError {}

/// Parses the comma-separated sizes after `name:` into exactly `N` integers.
fn sizes<const N: usize>(name: &str, text: &str, form: &str) -> Result<[usize; N], CaseError> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    if parts.len() != N {
        return Err(CaseError::new(format!(
            "`{name}:{text}`: {name} takes {N} size number(s), written {form}; {FORMS}"
        )));
    }
    let mut out = [0; N];
    for (slot, part) in out.iter_mut().zip(&parts) {
        *slot = part.parse().map_err(|_| {
            CaseError::new(format!(
                "`{name}:{text}`: `{part}` is not a whole number (form {form}); {FORMS}"
            ))
        })?;
    }
    Ok(out)
}

impl FromStr for Case {
    type Err = CaseError;

    /// Parses `rosenbrock:N`, `gmm:D,K,N`, `lorenz_rk4:STEPS`, `mlp` or
    /// `broyden:N` (spaces around the parts are ignored) and checks the size
    /// with [`Case::validate`]. A bare name other than `mlp` is an error whose
    /// [`CaseError::missing_size`] is set.
    fn from_str(s: &str) -> Result<Case, CaseError> {
        let s = s.trim();
        let (name, size) = match s.split_once(':') {
            Some((name, size)) => (name.trim(), Some(size.trim())),
            None => (s, None),
        };
        let case = match (name, size) {
            ("rosenbrock", Some(t)) => Case::Rosenbrock {
                n: sizes::<1>(name, t, "rosenbrock:N")?[0],
            },
            ("gmm", Some(t)) => {
                let [d, k, n] = sizes::<3>(name, t, "gmm:D,K,N")?;
                Case::Gmm { d, k, n }
            }
            ("lorenz_rk4", Some(t)) => Case::LorenzRk4 {
                steps: sizes::<1>(name, t, "lorenz_rk4:STEPS")?[0],
            },
            ("lorenz_fold", Some(t)) => Case::LorenzFold {
                steps: sizes::<1>(name, t, "lorenz_fold:STEPS")?[0],
            },
            ("broyden", Some(t)) => Case::Broyden {
                n: sizes::<1>(name, t, "broyden:N")?[0],
            },
            ("mlp", None) => Case::Mlp,
            ("mlp", Some(_)) => {
                return Err(CaseError::new(format!(
                    "`{s}`: mlp has one fixed size (batch=16, hidden=64), write just `mlp`; {FORMS}"
                )))
            }
            ("", _) => return Err(CaseError::new(format!("empty case name; {FORMS}"))),
            (_, None) => {
                let Some(&known) = CASE_NAMES.iter().find(|&&known| known == name) else {
                    return Err(CaseError::new(format!("unknown case `{name}`; {FORMS}")));
                };
                let example = Case::quick_sizes(known)
                    .and_then(|v| v.last().map(ToString::to_string))
                    .unwrap_or_default();
                return Err(CaseError {
                    message: format!(
                        "`{known}` needs a size, e.g. `{example}`; for all listed sizes of one \
                         case use Case::quick_sizes / Case::full_sizes; {FORMS}"
                    ),
                    missing_size: Some(known),
                });
            }
            (_, Some(_)) => return Err(CaseError::new(format!("unknown case `{name}`; {FORMS}"))),
        };
        case.validate()?;
        Ok(case)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> CaseError {
        s.parse::<Case>().expect_err(s)
    }

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!("rosenbrock:1000".parse(), Ok(Case::Rosenbrock { n: 1000 }));
        assert_eq!(
            "gmm:10,25,1000".parse(),
            Ok(Case::Gmm {
                d: 10,
                k: 25,
                n: 1000
            })
        );
        assert_eq!(
            "lorenz_rk4:10000000".parse(),
            Ok(Case::LorenzRk4 { steps: 10_000_000 })
        );
        assert_eq!("mlp".parse(), Ok(Case::Mlp));
        assert_eq!("broyden:10".parse(), Ok(Case::Broyden { n: 10 }));
        assert_eq!(
            " gmm : 2, 5 ,1000 ".parse(),
            Ok(Case::Gmm {
                d: 2,
                k: 5,
                n: 1000
            })
        );
        assert_eq!("rosenbrock:2".parse(), Ok(Case::Rosenbrock { n: 2 }));
        assert_eq!("gmm:1,1,1".parse(), Ok(Case::Gmm { d: 1, k: 1, n: 1 }));
    }

    #[test]
    fn display_round_trips() {
        let extra = [
            Case::Rosenbrock { n: 7 },
            Case::Gmm { d: 3, k: 1, n: 2 },
            Case::LorenzRk4 { steps: 1 },
            Case::Broyden { n: 1 },
        ];
        for case in Case::full().into_iter().chain(extra) {
            let text = case.to_string();
            assert_eq!(text.parse::<Case>(), Ok(case.clone()), "{text}");
            assert!(case.validate().is_ok(), "{text}");
        }
    }

    #[test]
    fn bare_names_ask_for_a_size() {
        for name in ["rosenbrock", "gmm", "lorenz_rk4", "broyden"] {
            let e = err(name);
            assert_eq!(e.missing_size(), Some(name));
            assert!(e.message().contains("needs a size"), "{e}");
            assert!(e.message().contains("quick_sizes"), "{e}");
            assert!(e.message().contains("full_sizes"), "{e}");
        }
        assert!(err("gmm").to_string().contains("e.g. `gmm:2,5,1000`"));
        assert_eq!(err("rosenbrock:0").missing_size(), None);
    }

    #[test]
    fn unknown_and_malformed_names() {
        let e = err("rosenbrok:10");
        assert!(e.message().contains("unknown case `rosenbrok`"), "{e}");
        for valid in [
            "rosenbrock:N",
            "gmm:D,K,N",
            "lorenz_rk4:STEPS",
            "mlp",
            "broyden:N",
        ] {
            assert!(e.message().contains(valid), "{e} lacks {valid}");
        }
        assert!(err("foo").message().contains("unknown case `foo`"));
        assert!(err("").message().contains("empty case name"));
        assert!(err(":10").message().contains("empty case name"));
        assert!(err("mlp:16").message().contains("write just `mlp`"));
    }

    #[test]
    fn bad_numbers() {
        assert!(err("rosenbrock:abc")
            .message()
            .contains("`abc` is not a whole number"));
        assert!(err("rosenbrock:-3")
            .message()
            .contains("`-3` is not a whole number"));
        assert!(err("rosenbrock:")
            .message()
            .contains("`` is not a whole number"));
        assert!(err("rosenbrock:1.5")
            .message()
            .contains("not a whole number"));
        assert!(err("rosenbrock:99999999999999999999999")
            .message()
            .contains("not a whole"));
        assert!(err("gmm:2,5")
            .message()
            .contains("gmm takes 3 size number(s)"));
        assert!(err("gmm:2,5,10,1").message().contains("written gmm:D,K,N"));
        assert!(err("broyden:1,2")
            .message()
            .contains("broyden takes 1 size"));
    }

    #[test]
    fn error_is_a_std_error() {
        let e: Box<dyn std::error::Error> = Box::new(err("nope"));
        assert!(e.to_string().starts_with("unknown case `nope`"));
    }
}
