//! Compiled code is freed when its function drops. A file of its own, so
//! that no other test allocates in this process while memory is measured.

use tapejit::ir::random::{random_tape, RandomTapeConfig};
use tapejit::jit;

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

#[test]
fn compiling_and_dropping_many_functions_frees_their_code() {
    let tape = random_tape(
        7,
        &RandomTapeConfig {
            len: 40,
            ..RandomTapeConfig::default()
        },
    );
    for _ in 0..500 {
        drop(jit::compile(&tape).unwrap());
    }
    let before = resident_bytes();
    for _ in 0..10_000 {
        drop(jit::compile(&tape).unwrap());
    }
    let grown = resident_bytes().saturating_sub(before);
    // Each function maps at least a page of code; leaking them would grow by
    // tens of MiB. Allow allocator noise.
    assert!(grown < 8 << 20, "resident memory grew by {grown} bytes");
}
