use super::*;
use crate::interp;

/// What a set of tapes contains, for coverage checks.
#[derive(Default, Debug)]
struct Seen {
    depth: usize,
    carried: [bool; 4],
    strides: [bool; 3],
    reads: [bool; 3],
    array_reads_of_written: bool,
    modes: [bool; 2],
    trips_one: bool,
    trips_max: bool,
    guards_in_bodies: bool,
    elem_store_in_bodies: [bool; 2],
    elem_store_at_root: [bool; 2],
    params_in_bodies: bool,
    loopouts: bool,
    slices: bool,
    invariants: bool,
}

impl Seen {
    fn tape(&mut self, t: &Tape, depth: usize, written: &mut HashSet<ArrayId>) {
        for inst in t.insts() {
            let at = if depth == 0 {
                &mut self.elem_store_at_root
            } else {
                &mut self.elem_store_in_bodies
            };
            match inst.op {
                Op::Elem => at[0] = true,
                Op::Store => {
                    at[1] = true;
                    written.insert(inst.args[0]);
                }
                Op::Guard if depth > 0 => self.guards_in_bodies = true,
                Op::Param if depth > 0 => self.params_in_bodies = true,
                Op::LoopOut => self.loopouts = true,
                Op::Loop => {
                    let lp = t.loop_of(inst);
                    self.depth = self.depth.max(depth + 1);
                    self.carried[lp.n_carried()] = true;
                    self.invariants |= !lp.invariants.is_empty();
                    self.trips_one |= lp.trips == 1;
                    self.trips_max |= lp.trips == MAX_TRIPS;
                    for r in &lp.reads {
                        let k = match r.buffer {
                            Buffer::Input => 0,
                            Buffer::Param => 1,
                            Buffer::Array(a) => {
                                self.array_reads_of_written |= written.contains(&a);
                                2
                            }
                        };
                        self.reads[k] = true;
                    }
                    for a in lp.reads.iter().chain(lp.writes.iter().map(|w| &w.access)) {
                        for &s in &a.strides {
                            self.strides[(s.signum() + 1) as usize] = true;
                        }
                    }
                    for w in &lp.writes {
                        self.modes[(w.mode == WriteMode::Add) as usize] = true;
                        if let Buffer::Array(a) = w.access.buffer {
                            written.insert(a);
                        }
                    }
                    self.tape(&lp.body, depth + 1, written);
                }
                _ => {}
            }
        }
        if depth == 0 {
            self.slices |= t.outputs().iter().any(|o| o.value().is_none());
        }
    }

    fn assert_complete(&self) {
        let all = |b: &[bool]| b.iter().all(|&x| x);
        assert_eq!(self.depth, MAX_DEPTH, "{self:?}");
        assert!(all(&self.carried), "{self:?}");
        assert!(all(&self.strides), "{self:?}");
        assert!(all(&self.reads), "{self:?}");
        assert!(all(&self.modes), "{self:?}");
        assert!(all(&self.elem_store_in_bodies), "{self:?}");
        assert!(all(&self.elem_store_at_root), "{self:?}");
        assert!(
            self.array_reads_of_written
                && self.trips_one
                && self.trips_max
                && self.guards_in_bodies
                && self.params_in_bodies
                && self.loopouts
                && self.slices
                && self.invariants,
            "{self:?}"
        );
    }
}

fn seen(tapes: impl IntoIterator<Item = Tape>) -> Seen {
    let mut seen = Seen::default();
    for t in tapes {
        seen.tape(&t, 0, &mut HashSet::new());
    }
    seen
}

#[test]
fn random_loop_tapes_verify_stay_within_their_work_and_cover_every_feature() {
    let config = LoopTapeConfig::default();
    let tapes: Vec<Tape> = (0..2_000)
        .map(|seed| {
            let t = random_loop_tape(seed, &config);
            t.verify()
                .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{t}"));
            assert!(t.work() <= config.max_work, "seed {seed}: {}", t.work());
            t
        })
        .collect();
    assert!(tapes.iter().filter(|t| t.n_loops() > 0).count() > 1_800);
    seen(tapes).assert_complete();
}

#[test]
fn arbitrary_loop_tapes_verify_and_span_a_handful_to_ten_thousand() {
    let mut rng = SplitMix64::new(7);
    let (mut smallest, mut largest) = (u64::MAX, 0);
    let mut tapes = Vec::new();
    for k in 0..3_000 {
        let t = arbitrary_loop_tape(&mut rng, 10_000);
        t.verify().unwrap_or_else(|e| panic!("tape {k}: {e}\n{t}"));
        assert!(t.work() <= 10_000, "tape {k}: {}", t.work());
        smallest = smallest.min(t.work());
        largest = largest.max(t.work());
        tapes.push(t);
    }
    assert!(smallest <= 3, "{smallest}");
    assert!(largest >= 8_000, "{largest}");
    seen(tapes).assert_complete();
}

#[test]
fn seeded_loop_tapes_are_reproducible() {
    let config = LoopTapeConfig::default();
    assert_eq!(random_loop_tape(11, &config), random_loop_tape(11, &config));
    let a = random_loop_tape_with(&mut SplitMix64::new(11), &config);
    assert_eq!(a, random_loop_tape(11, &config));
    assert_ne!(random_loop_tape(12, &config), a);
}

#[test]
fn small_budgets_and_shapes_still_verify() {
    let mut rng = SplitMix64::new(3);
    for max_work in 0..64 {
        for _ in 0..20 {
            let config = LoopTapeConfig {
                n_inputs: rng.below(3),
                n_params: rng.below(2),
                max_work,
                prefix_len: rng.below(4),
                ..LoopTapeConfig::default()
            };
            let t = random_loop_tape_with(&mut rng, &config);
            t.verify().unwrap_or_else(|e| panic!("{e}\n{t}"));
            assert!(t.work() <= max_work.max(1), "{}\n{t}", t.work());
            let s = smooth_loop_tape(&mut rng, &config);
            s.tape
                .verify()
                .unwrap_or_else(|e| panic!("{e}\n{}", s.tape));
        }
    }
}

/// A choices source that runs dry after `n` answers, like a fuzz input.
struct Dry {
    rng: SplitMix64,
    left: usize,
}

impl Choices for Dry {
    fn below(&mut self, n: usize) -> usize {
        if self.left == 0 {
            return 0;
        }
        self.left -= 1;
        self.rng.below(n)
    }
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        if self.left == 0 {
            return lo;
        }
        self.left -= 1;
        Choices::uniform(&mut self.rng, lo, hi)
    }
    fn bits(&mut self) -> u64 {
        self.rng.next_u64()
    }
    fn exhausted(&self) -> bool {
        self.left == 0
    }
}

#[test]
fn a_source_that_runs_dry_still_gives_verified_tapes() {
    for left in 0..400 {
        let mut c = Dry {
            rng: SplitMix64::new(left as u64),
            left,
        };
        let t = arbitrary_loop_tape(&mut c, 10_000);
        t.verify().unwrap_or_else(|e| panic!("{e}\n{t}"));
    }
}

#[test]
fn smooth_loop_tapes_verify_cover_loops_and_stay_bounded_on_the_box() {
    let mut rng = SplitMix64::new(5);
    let mut tapes = Vec::new();
    let mut ws = Vec::new();
    for k in 0..600 {
        let config = LoopTapeConfig {
            guard_every: 8,
            ..arbitrary_config(&mut rng, 4_000)
        };
        let s = smooth_loop_tape(&mut rng, &config);
        s.tape
            .verify()
            .unwrap_or_else(|e| panic!("{e}\n{}", s.tape));
        let mut out = vec![0.0; s.tape.n_outputs()];
        for _ in 0..4 {
            let x: Vec<f64> = (0..s.tape.n_inputs())
                .map(|_| rng.uniform(-SMOOTH_BOX, SMOOTH_BOX))
                .collect();
            interp::eval(&s.tape, &x, &s.params, &mut ws, &mut out)
                .unwrap_or_else(|e| panic!("tape {k}: {e} at {x:?}\n{}", s.tape));
            // Every value, in every body frame and array: finite and bounded.
            for v in &ws {
                assert!(
                    v.abs() <= SMOOTH_BOUND * 1.01,
                    "tape {k}: {v} at {x:?}\n{}",
                    s.tape
                );
            }
        }
        tapes.push(s.tape);
    }
    let seen = seen(tapes);
    assert_eq!(seen.depth, MAX_DEPTH, "{seen:?}");
    assert!(seen.carried.iter().all(|&c| c) && seen.modes.iter().all(|&m| m));
    assert!(
        seen.reads.iter().all(|&r| r) && seen.guards_in_bodies,
        "{seen:?}"
    );
}

/// Central differences of the outputs along a random direction at two
/// step sizes: how many of them agree (the function is smooth there with
/// moderate curvature) out of how many.
fn converged_differences(s: &SmoothTape, rng: &mut SplitMix64) -> (usize, usize) {
    let n = s.tape.n_inputs();
    let x: Vec<f64> = (0..n).map(|_| rng.uniform(-0.75, 0.75)).collect();
    let v: Vec<f64> = (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect();
    let at = |h: f64| {
        let p: Vec<f64> = x.iter().zip(&v).map(|(x, v)| x + h * v).collect();
        let mut out = vec![0.0; s.tape.n_outputs()];
        interp::eval(&s.tape, &p, &s.params, &mut Vec::new(), &mut out).unwrap();
        out
    };
    let d = |h: f64| -> Vec<f64> {
        let (plus, minus) = (at(h), at(-h));
        plus.iter()
            .zip(&minus)
            .map(|(a, b)| (a - b) / (2.0 * h))
            .collect()
    };
    let (d1, d2) = (d(1.0 / 4096.0), d(1.0 / 8192.0));
    let agree = d1
        .iter()
        .zip(&d2)
        .filter(|(a, b)| (*a - *b).abs() <= 1e-4 * (1.0 + b.abs()))
        .count();
    (agree, d1.len())
}

#[test]
fn smooth_loop_tapes_are_smooth() {
    let mut rng = SplitMix64::new(13);
    let (mut agree, mut total) = (0, 0);
    for _ in 0..300 {
        let config = arbitrary_config(&mut rng, 3_000);
        let s = smooth_loop_tape(&mut rng, &config);
        let (a, t) = converged_differences(&s, &mut rng);
        agree += a;
        total += t;
    }
    assert!(total > 300, "{total}");
    // A kink or a jump would show as differences that do not converge.
    assert!(agree as f64 >= 0.97 * total as f64, "{agree} of {total}");
}
