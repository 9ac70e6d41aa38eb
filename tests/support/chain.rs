//! A long straight-line function: `steps` links of different ops on a
//! running value (rerolling, when on, rolls it by its period of three).
//! Shared by `tests/segments.rs` and `examples/segment_memory.rs`.

use tapejit::{Float, Var};

/// The running value after `steps` links, reading the inputs in turn.
pub fn chain<'t>(x: &[Var<'t>], steps: usize) -> Var<'t> {
    let mut acc = x[0];
    for i in 0..steps {
        let v = x[i % x.len()];
        acc = match i % 3 {
            0 => acc * v + (i as f64).sqrt(),
            1 => (acc * 1e-3).sin() + v,
            _ => acc / (v * v + 1.0),
        };
    }
    acc
}
