use super::*;
use crate::rng::SplitMix64;

/// Simulates the schedule and checks its counts against the closed form and
/// the schedule's own claims; returns the simulated counts.
fn check(steps: u32, snapshots: u32) -> Counts {
    let schedule = Schedule::binomial(steps, snapshots).unwrap();
    let counts = simulate(&schedule, steps, snapshots)
        .unwrap_or_else(|e| panic!("l = {steps}, s = {snapshots}: {e}"));
    let at = format!("l = {steps}, s = {snapshots}");
    assert_eq!(counts.reverse_steps, u64::from(steps), "{at}");
    assert_eq!(counts.advances, optimal_advances(steps, snapshots), "{at}");
    assert_eq!(counts.advances, schedule.advances(), "{at}");
    assert_eq!(counts.slots, schedule.snapshots_used(), "{at}");
    assert!(counts.slots <= snapshots, "{at}");
    counts
}

/// `T(l, s)` for `l <= max_l`, `s <= max_s` by the recursion of the module
/// docs (`u64::MAX` where no schedule exists), independent of the closed form.
fn recursion_table(max_l: usize, max_s: usize) -> Vec<Vec<u64>> {
    let mut t = vec![vec![u64::MAX; max_s + 1]; max_l + 1];
    for row in t.iter_mut().take(2) {
        row.fill(0);
    }
    for l in 2..=max_l {
        for s in 1..=max_s {
            t[l][s] = (1..l)
                .map(|m| {
                    (m as u64)
                        .saturating_add(t[l - m][s - 1])
                        .saturating_add(t[m][s])
                })
                .min()
                .unwrap();
        }
    }
    t
}

/// The most times one forward step is advanced.
fn most_advances_of_a_step(schedule: &Schedule) -> u32 {
    let mut diff = vec![0i64; schedule.steps() as usize + 1];
    for action in schedule {
        if let Action::Advance { from, to } = action {
            diff[from as usize] += 1;
            diff[to as usize] -= 1;
        }
    }
    let running = diff.iter().scan(0, |sum, d| {
        *sum += d;
        Some(*sum)
    });
    running.max().unwrap() as u32
}

#[test]
fn every_small_schedule_is_valid_and_optimal() {
    let table = recursion_table(300, 16);
    for l in 1..=300u32 {
        for s in 1..=16u32 {
            let counts = check(l, s);
            assert_eq!(
                counts.advances, table[l as usize][s as usize],
                "l = {l}, s = {s}"
            );
            let schedule = Schedule::binomial(l, s).unwrap();
            assert_eq!(
                most_advances_of_a_step(&schedule),
                schedule.repetitions(),
                "l = {l}, s = {s}"
            );
        }
    }
}

#[test]
fn seeded_larger_schedules_are_valid_and_optimal() {
    // Seed 0x5eed_c0de; l uniform in 1..=10^4, s uniform in 1..=64.
    let mut rng = SplitMix64::new(0x5eed_c0de);
    for _ in 0..1000 {
        let l = 1 + (rng.next_u64() % 10_000) as u32;
        let s = 1 + (rng.next_u64() % 64) as u32;
        check(l, s);
        let schedule = Schedule::binomial(l, s).unwrap();
        assert_eq!(
            most_advances_of_a_step(&schedule),
            schedule.repetitions(),
            "l = {l}, s = {s}"
        );
    }
}

#[test]
fn closed_form_at_the_boundaries() {
    for l in 1..=200u32 {
        let l64 = u64::from(l);
        assert_eq!(optimal_advances(l, 1), l64 * (l64 - 1) / 2, "l = {l}");
        // Enough snapshots for states 0..l - 1: the last one needs none.
        for s in (l.max(2) - 1)..=(l + 3) {
            assert_eq!(optimal_advances(l, s), l64 - 1, "l = {l}, s = {s}");
        }
        if l >= 3 {
            // One snapshot short of that costs one more advance.
            assert_eq!(optimal_advances(l, l - 2), l64, "l = {l}");
        }
    }
    assert_eq!(optimal_advances(0, 0), 0);
    assert_eq!(optimal_advances(1, 0), 0);
    assert_eq!(repetitions(1, 5), 0);
    // β(3, 3) = C(6, 3) = 20, so r = 3 and t = 3 * 20 - C(6, 4) = 45.
    assert_eq!((repetitions(20, 3), optimal_advances(20, 3)), (3, 45));
    assert_eq!(repetitions(21, 3), 4);
    // No overflow at the extremes.
    let max = u64::from(u32::MAX);
    assert_eq!(optimal_advances(u32::MAX, 1), max * (max - 1) / 2);
    assert_eq!(optimal_advances(u32::MAX, u32::MAX), max - 1);
    assert_eq!(optimal_advances(u32::MAX, u32::MAX - 1), max - 1);
    assert_eq!(optimal_advances(u32::MAX, u32::MAX - 2), max);
    assert_eq!(repetitions(u32::MAX, 1), u32::MAX - 1);
    let schedule = Schedule::binomial(u32::MAX, 64).unwrap();
    assert!(schedule.actions().take(1000).count() == 1000);
    assert!(schedule.snapshots_used() <= 64);
}

#[test]
fn more_snapshots_never_cost_more() {
    // Strictly fewer advances up to s = l - 1 (so an optimal schedule uses
    // every slot), then l - 1 whatever s; one more step always costs more.
    let strictly_fewer = |l: u32, s: u32| {
        let (t, more) = (optimal_advances(l, s), optimal_advances(l, s + 1));
        more < t || (more == t && s + 1 >= l)
    };
    for l in 1..=300u32 {
        for s in 1..=40u32 {
            assert!(strictly_fewer(l, s), "l = {l}, s = {s}");
            assert!(
                optimal_advances(l + 1, s) > optimal_advances(l, s),
                "l = {l}, s = {s}"
            );
        }
    }
    let mut rng = SplitMix64::new(7);
    for _ in 0..1000 {
        let l = 1 + (rng.next_u64() % 10_000_000) as u32;
        let s = 1 + (rng.next_u64() % 1000) as u32;
        assert!(strictly_fewer(l, s), "l = {l}, s = {s}");
    }
}

#[test]
fn tiny_schedules() {
    use Action::*;
    let one: Vec<Action> = Schedule::binomial(1, 1).unwrap().actions().collect();
    assert_eq!(one, [Reverse { step: 0 }]);
    assert_eq!(Schedule::binomial(1, 3).unwrap().snapshots_used(), 0);
    let all: Vec<Action> = Schedule::store_all(3).unwrap().actions().collect();
    assert_eq!(
        all,
        [
            Snapshot { slot: 0, state: 0 },
            Advance { from: 0, to: 1 },
            Snapshot { slot: 1, state: 1 },
            Advance { from: 1, to: 2 },
            Reverse { step: 2 },
            Restore { slot: 1, state: 1 },
            Reverse { step: 1 },
            Restore { slot: 0, state: 0 },
            Reverse { step: 0 },
        ]
    );
    let store_all = Schedule::store_all(1000).unwrap();
    let counts = simulate(&store_all, 1000, 1000).unwrap();
    assert_eq!(
        (counts.advances, counts.slots, counts.restores),
        (999, 999, 999)
    );
    assert_eq!(store_all.repetitions(), 1);
}

#[test]
fn bad_arguments_are_errors() {
    for (l, s) in [(0, 1), (1, 0), (0, 0), (10, 0)] {
        let err = Schedule::binomial(l, s).unwrap_err();
        assert!(
            matches!(&err, Error::Unsupported(m) if m.contains("at least 1 step and 1 snapshot")),
            "{err}"
        );
    }
    assert!(Schedule::store_all(0).is_err());
}

#[test]
fn simulator_rejects_invalid_schedules() {
    use Action::*;
    let bad: [(&[Action], &str); 8] = [
        (&[Reverse { step: 0 }], "next is step 1"),
        (&[Advance { from: 1, to: 2 }], "current state is Some(0)"),
        (
            &[Advance { from: 0, to: 2 }],
            "must advance to a state in 1..2",
        ),
        (&[Restore { slot: 0, state: 0 }], "slot 0 holds None"),
        (&[Snapshot { slot: 2, state: 0 }], "only 2 snapshot slots"),
        (
            &[
                Advance { from: 0, to: 1 },
                Reverse { step: 1 },
                Reverse { step: 0 },
            ],
            "current state None",
        ),
        (&[Advance { from: 0, to: 1 }], "ends before reverse step 1"),
        (
            &[
                Snapshot { slot: 0, state: 0 },
                Advance { from: 0, to: 1 },
                Reverse { step: 1 },
                Restore { slot: 0, state: 0 },
                Reverse { step: 0 },
                Restore { slot: 0, state: 0 },
            ],
            "already reversed",
        ),
    ];
    for (actions, expected) in bad {
        let err = simulate(actions.iter().copied(), 2, 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{actions:?}: {err}");
    }
}

#[test]
fn snapshots_for_is_the_least_sufficient() {
    for l in 1..=120u32 {
        let l64 = u64::from(l);
        assert_eq!(
            snapshots_for(l, l64.saturating_sub(2)),
            (l <= 1).then_some(1)
        );
        for budget in [l64 - 1, l64, 2 * l64, 3 * l64, l64 * l64 / 2] {
            let s = snapshots_for(l, budget).unwrap();
            assert!(optimal_advances(l, s) <= budget);
            assert!(
                s == 1 || optimal_advances(l, s - 1) > budget,
                "l = {l}, budget = {budget}"
            );
        }
    }
    let l = 10_000_000;
    let s = snapshots_for(l, 5 * u64::from(l)).unwrap();
    assert!(optimal_advances(l, s) <= 5 * u64::from(l));
    assert!(optimal_advances(l, s - 1) > 5 * u64::from(l));
}

/// Prints the figures of the report; `cargo test --release --lib
/// checkpoint::tests::figures -- --ignored --nocapture`.
#[test]
#[ignore = "long: simulates ten-million-step schedules"]
fn figures() {
    let report = |l: u32, s: u32| {
        let start = std::time::Instant::now();
        let counts = check(l, s);
        println!(
            "l = {l:>8}, s = {s:>4}: r = {}, advances/l = {:.4}, slots {}, {} restores, {:.2?}",
            repetitions(l, s),
            counts.advances as f64 / f64::from(l),
            counts.slots,
            counts.restores,
            start.elapsed()
        );
    };
    report(100_000, 100);
    report(100_000, 1000);
    for s in (40..=64).step_by(4) {
        report(10_000_000, s);
    }
}

#[test]
#[ignore = "several seconds in debug builds"]
fn ten_million_steps_lazily() {
    let (l, s) = (10_000_000, 64);
    let start = std::time::Instant::now();
    let schedule = Schedule::binomial(l, s).unwrap();
    let (actions, advances) =
        schedule
            .actions()
            .fold((0u64, 0u64), |(n, a), action| match action {
                Action::Advance { from, to } => (n + 1, a + u64::from(to - from)),
                _ => (n + 1, a),
            });
    let generation = start.elapsed();
    assert_eq!(advances, optimal_advances(l, s));
    assert!(actions < 4 * u64::from(l));
    check(l, s);
    println!(
        "l = 10^7, s = 64: advances/l = {}, {actions} actions generated in {generation:.2?}",
        advances as f64 / f64::from(l)
    );
}
