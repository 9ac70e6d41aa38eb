//! Random loop tapes against the interpreter.

use super::*;

/// Random loop tapes: loops nested up to three deep with random trip
/// counts (about 300 iterations of a nest at most), carried values,
/// invariants, strided reads of inputs, params and arrays, writes of both
/// modes, `elem`/`store`, guards and calls.
static LOOPS: Profile = Profile {
    inputs: 12,
    params: 5,
    arrays: 4,
    left_out: &[],
    strides: &[-2, -1, 0, 0, 1, 1, 1, 3],
    root_trips: &[1, 1, 2, 3, 5, 8, 17],
    nested_trips: &[1, 1, 2, 3, 5, 8, 17],
    max_work: 300,
    carried: (0, 4),
    reads: 4,
    body_len: 10,
    mix_carried: false,
    writes_drawn_first: true,
    binary_slots: 6,
    nest_slots: 2,
    max_depth: 3,
};

fn random_loop_tape(seed: u64) -> Tape {
    let mut g = Gen::new(seed, &LOOPS);
    let (mut t, mut vals) = g.root();
    g.root_loops(&mut t, &mut vals, 3, |g, vals| g.random_loop(&[], vals, 1));
    g.fill(&mut t, &mut vals, &[], 0, 3);
    g.outputs(&mut t, &vals);
    t
}

#[test]
fn random_loop_tapes_agree() {
    let (mut loops, mut nested, mut failures, mut work) = (0, 0, 0, 0);
    for seed in 0..500u64 {
        let t = random_loop_tape(seed);
        t.verify().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        loops += t.loops().len();
        nested += t.n_loops() - t.loops().len();
        let options = options_with_random_chunks(&t, seed ^ 0x5eed, 40);
        work += t.work();
        failures += check_with(
            &t,
            &options[seed as usize % 7..][..1],
            &points(seed, &t, 12),
        );
    }
    // Guards fail at some points only, and the nests do run.
    let summary = format!("{loops} loops, {nested} nested, {failures} of 6000 points failed a guard, {work} instructions");
    assert!(loops > 500 && nested > 200, "{summary}");
    assert!(failures > 500 && failures < 3000, "{summary}");
}

/// What the optimizer makes of loop tapes (bodies simplified, dead loops,
/// writes and arrays dropped) compiles and agrees too.
#[test]
fn optimized_random_loop_tapes_agree() {
    let mut shrunk = 0;
    for seed in 1000..1300u64 {
        let t = random_loop_tape(seed);
        let o = tapejit::opt::optimize(&t).unwrap();
        shrunk += usize::from(o.static_len() < t.static_len());
        let options = options_for(&o);
        check_with(&o, &options[seed as usize % 7..][..1], &points(seed, &o, 8));
    }
    assert!(shrunk > 100, "{shrunk}");
}
