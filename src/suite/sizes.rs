//! The sizes DESIGN.md lists for each case (quick and full modes).

use super::case::Case;

/// The case names, in suite order.
pub const CASE_NAMES: [&str; 6] = [
    "rosenbrock",
    "gmm",
    "lorenz_rk4",
    "lorenz_fold",
    "mlp",
    "broyden",
];

impl Case {
    /// The case names, in suite order.
    pub fn names() -> &'static [&'static str] {
        &CASE_NAMES
    }

    /// The quick sizes of one case (the default of `tapejit bench`): rosenbrock
    /// 10, 100, 1000; gmm (2,5,1000); lorenz_rk4 1000; lorenz_fold 10^5; mlp; broyden 10.
    /// `None` for an unknown name.
    pub fn quick_sizes(name: &str) -> Option<Vec<Case>> {
        Some(match name {
            "rosenbrock" => vec![10, 100, 1000]
                .into_iter()
                .map(|n| Case::Rosenbrock { n })
                .collect(),
            "gmm" => vec![Case::Gmm {
                d: 2,
                k: 5,
                n: 1000,
            }],
            "lorenz_rk4" => vec![Case::LorenzRk4 { steps: 1000 }],
            "lorenz_fold" => vec![Case::LorenzFold { steps: 100_000 }],
            "mlp" => vec![Case::Mlp],
            "broyden" => vec![Case::Broyden { n: 10 }],
            _ => return None,
        })
    }

    /// Every size of one case listed in DESIGN.md (`--full`): rosenbrock 10,
    /// 100, 1000, 10^4, 10^6; gmm (2,5,1000), (10,25,1000), (20,50,1000);
    /// lorenz_rk4 and lorenz_fold 10^3, 10^5, 10^7; mlp; broyden 10, 1000. `None` for an
    /// unknown name.
    pub fn full_sizes(name: &str) -> Option<Vec<Case>> {
        Some(match name {
            "rosenbrock" => vec![10, 100, 1000, 10_000, 1_000_000]
                .into_iter()
                .map(|n| Case::Rosenbrock { n })
                .collect(),
            "gmm" => vec![
                Case::Gmm {
                    d: 2,
                    k: 5,
                    n: 1000,
                },
                Case::Gmm {
                    d: 10,
                    k: 25,
                    n: 1000,
                },
                Case::Gmm {
                    d: 20,
                    k: 50,
                    n: 1000,
                },
            ],
            "lorenz_rk4" => vec![1000, 100_000, 10_000_000]
                .into_iter()
                .map(|steps| Case::LorenzRk4 { steps })
                .collect(),
            "lorenz_fold" => vec![1000, 100_000, 10_000_000]
                .into_iter()
                .map(|steps| Case::LorenzFold { steps })
                .collect(),
            "mlp" => vec![Case::Mlp],
            "broyden" => vec![Case::Broyden { n: 10 }, Case::Broyden { n: 1000 }],
            _ => return None,
        })
    }

    /// Same as [`Case::full_sizes`]: every size DESIGN.md lists for `name`.
    pub fn all_sizes(name: &str) -> Option<Vec<Case>> {
        Case::full_sizes(name)
    }

    /// Every case at its quick sizes, in suite order.
    pub fn quick() -> Vec<Case> {
        CASE_NAMES
            .iter()
            .flat_map(|name| Case::quick_sizes(name).unwrap_or_default())
            .collect()
    }

    /// Every case at every listed size, in suite order.
    pub fn full() -> Vec<Case> {
        CASE_NAMES
            .iter()
            .flat_map(|name| Case::full_sizes(name).unwrap_or_default())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_is_the_documented_list() {
        assert_eq!(
            Case::quick(),
            vec![
                Case::Rosenbrock { n: 10 },
                Case::Rosenbrock { n: 100 },
                Case::Rosenbrock { n: 1000 },
                Case::Gmm {
                    d: 2,
                    k: 5,
                    n: 1000
                },
                Case::LorenzRk4 { steps: 1000 },
                Case::LorenzFold { steps: 100_000 },
                Case::Mlp,
                Case::Broyden { n: 10 },
            ]
        );
    }

    #[test]
    fn full_has_every_design_size() {
        let full = Case::full();
        assert_eq!(full.len(), 5 + 3 + 3 + 3 + 1 + 2);
        for case in Case::quick() {
            assert!(full.contains(&case), "{case} missing from full");
        }
        for want in [
            Case::Rosenbrock { n: 1_000_000 },
            Case::Gmm {
                d: 20,
                k: 50,
                n: 1000,
            },
            Case::LorenzRk4 { steps: 10_000_000 },
            Case::Broyden { n: 1000 },
        ] {
            assert!(full.contains(&want), "{want}");
        }
    }

    #[test]
    fn per_name_lists() {
        for name in Case::names() {
            let quick = Case::quick_sizes(name).unwrap();
            let full = Case::full_sizes(name).unwrap();
            assert_eq!(Case::all_sizes(name), Some(full.clone()));
            assert!(quick.iter().all(|c| c.name() == *name && full.contains(c)));
        }
        assert_eq!(Case::quick_sizes("nope"), None);
        assert_eq!(Case::full_sizes("lorenz"), None);
    }

    #[test]
    fn lengths_are_consistent() {
        for case in Case::full() {
            if matches!(case, Case::Rosenbrock { n: 1_000_000 }) {
                continue; // same code path as the smaller sizes, just slow in debug
            }
            assert_eq!(case.default_input().len(), case.n_inputs(), "{case}");
            assert_eq!(case.params().len(), case.n_params(), "{case}");
            assert_eq!(case.vjp_weights().len(), case.n_outputs(), "{case}");
        }
        assert_eq!(
            Case::Gmm {
                d: 2,
                k: 5,
                n: 1000
            }
            .n_inputs(),
            30
        );
        assert_eq!(
            Case::Gmm {
                d: 10,
                k: 25,
                n: 1000
            }
            .n_inputs(),
            1650
        );
        assert_eq!(
            Case::Gmm {
                d: 20,
                k: 50,
                n: 1000
            }
            .n_inputs(),
            11550
        );
        assert_eq!(
            Case::Gmm {
                d: 2,
                k: 5,
                n: 1000
            }
            .n_params(),
            2000
        );
        assert_eq!(Case::Mlp.n_inputs(), 2177);
        assert_eq!(Case::Mlp.n_params(), 528);
        assert_eq!(Case::LorenzRk4 { steps: 5 }.n_inputs(), 6);
        assert_eq!(Case::Broyden { n: 10 }.n_outputs(), 10);
    }

    #[test]
    fn names_and_sizes() {
        let got: Vec<(&str, String)> = Case::quick().iter().map(|c| (c.name(), c.size())).collect();
        let want = [
            ("rosenbrock", "n=10"),
            ("rosenbrock", "n=100"),
            ("rosenbrock", "n=1000"),
            ("gmm", "d=2,k=5,n=1000"),
            ("lorenz_rk4", "steps=1000"),
            ("lorenz_fold", "steps=100000"),
            ("mlp", "batch=16,hidden=64"),
            ("broyden", "n=10"),
        ];
        assert_eq!(got.len(), want.len());
        for ((gn, gs), (wn, ws)) in got.iter().zip(want) {
            assert_eq!((*gn, gs.as_str()), (wn, ws));
        }
    }
}
