//! The memory budget of a reverse sweep, and how it picks a loop's schedule.

/// How much memory the reverse transform may spend on a loop's stored
/// forward states before it switches that loop to binomial checkpointing
/// ([`crate::ad::checkpoint`]): the same gradient, bit for bit, computed
/// with `snapshots` stored states and recomputation instead of one stored
/// state per iteration.
///
/// Applied per loop of the root tape (nested loops store their states
/// inside their enclosing loop's iteration). A straight-line tape (no
/// loops) whose reverse sweep would read back more forward values than a
/// [`MemoryBudget::Bytes`] budget holds is cut into segments instead, each
/// recomputed once from the values crossing its boundary (see
/// [`crate::ad::segment_plan`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryBudget {
    /// Store every iteration's state (fastest, memory grows with the trip count).
    Unlimited,
    /// At most this many bytes of stored states per loop.
    Bytes(u64),
    /// At most this many stored states per loop (the initial one included).
    Snapshots(u32),
}

impl Default for MemoryBudget {
    /// 256 MiB.
    fn default() -> MemoryBudget {
        MemoryBudget::Bytes(DEFAULT_BUDGET_BYTES)
    }
}

/// The default budget: 256 MiB of stored states per loop.
pub const DEFAULT_BUDGET_BYTES: u64 = 256 << 20;

impl MemoryBudget {
    /// The bytes of stored states allowed for a loop whose state has `m` values.
    pub fn bytes(self, m: usize) -> u64 {
        match self {
            MemoryBudget::Unlimited => u64::MAX,
            MemoryBudget::Bytes(b) => b,
            MemoryBudget::Snapshots(s) => s as u64 * m as u64 * 8,
        }
    }

    /// The snapshots a checkpointed loop of `trips` iterations with `m`
    /// state values gets (at least 1, at most `trips`).
    pub fn snapshots(self, m: usize, trips: u32) -> u32 {
        let s = match self {
            MemoryBudget::Unlimited => trips as u64,
            MemoryBudget::Bytes(b) => b / (m.max(1) as u64 * 8),
            MemoryBudget::Snapshots(s) => s as u64,
        };
        s.clamp(1, trips.max(1) as u64) as u32
    }

    /// Checks that one snapshot of a state of `m` values fits.
    pub fn check(self, m: usize) -> crate::Result<()> {
        let need = m as u64 * 8;
        match self {
            MemoryBudget::Bytes(b) if b < need => Err(crate::Error::Unsupported(format!(
                "a memory budget of {b} bytes is smaller than one snapshot of a loop's state \
                 ({m} values, {need} bytes)"
            ))),
            MemoryBudget::Snapshots(0) => Err(crate::Error::Unsupported(
                "a memory budget of 0 snapshots cannot hold even the initial state".into(),
            )),
            _ => Ok(()),
        }
    }
}
