//! Support for tapejit's fuzz targets: a [`Choices`] source over the fuzz
//! input, and a runner that puts every buffer of a JIT call against
//! inaccessible guard pages.
//!
//! The checks themselves are the ones `tests/differential.rs` runs (the
//! file `tests/support/mod.rs` is included below as [`oracle`]), so a
//! finding here reproduces as a seeded test there.

#[path = "../../tests/support/mod.rs"]
pub mod oracle;

use arbitrary::Unstructured;
use oracle::Outcome;
use tapejit::ir::random::Choices;
use tapejit::jit::JitFunction;
use tapejit::rng::SplitMix64;

/// The generators' decisions, read from the fuzz input through
/// `arbitrary::Unstructured`; once the input is used up, from a
/// [`SplitMix64`] seeded with a hash of the whole input (so that
/// evaluation points stay varied and everything stays a function of the
/// input). [`Choices::exhausted`] then turns true, which ends the tape being
/// generated, unless [`FuzzChoices::unbounded`] was called.
pub struct FuzzChoices<'a> {
    bytes: Unstructured<'a>,
    fallback: SplitMix64,
    bounded: bool,
}

impl<'a> FuzzChoices<'a> {
    /// Choices read from `data`.
    pub fn new(data: &'a [u8]) -> Self {
        FuzzChoices {
            bytes: Unstructured::new(data),
            fallback: SplitMix64::new(hash(data)),
            bounded: true,
        }
    }

    /// From now on never report [`Choices::exhausted`]: the generators go on
    /// with the seeded fallback once the input is used up, so that a short
    /// input can stand for a long tape (its start drawn from the input, the
    /// rest from the input's hash).
    pub fn unbounded(&mut self) {
        self.bounded = false;
    }

    /// Choices that do not read `data` but come from a generator seeded
    /// with its hash (for a target whose input is used otherwise).
    pub fn seeded_by(data: &[u8]) -> FuzzChoices<'static> {
        FuzzChoices {
            bytes: Unstructured::new(&[]),
            fallback: SplitMix64::new(hash(data)),
            bounded: true,
        }
    }
}

/// FNV-1a.
fn hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

impl Choices for FuzzChoices<'_> {
    fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            0
        } else if self.bytes.is_empty() {
            self.fallback.below(n)
        } else {
            self.bytes.int_in_range(0..=n - 1).unwrap_or(0)
        }
    }

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        if self.bytes.len() < 4 {
            return Choices::uniform(&mut self.fallback, lo, hi);
        }
        let u: u32 = self.bytes.arbitrary().unwrap_or(0);
        lo + (hi - lo) * (f64::from(u) / 4_294_967_296.0)
    }

    fn bits(&mut self) -> u64 {
        if self.bytes.len() < 8 {
            return self.fallback.next_u64();
        }
        self.bytes.arbitrary().unwrap_or(0)
    }

    fn exhausted(&self) -> bool {
        self.bounded && self.bytes.is_empty()
    }
}

/// An `f64` buffer of exactly the requested length whose first or last
/// element touches an inaccessible page, so that native code reading or
/// writing one element beyond it (or before it) faults at once instead of
/// silently touching other memory. Fuzzing instruments only Rust code, not
/// the JIT's machine code; this is how its accesses are checked.
pub struct Guarded {
    base: *mut libc::c_void,
    total: usize,
    data: *mut f64,
    len: usize,
}

impl Guarded {
    /// A copy of `values`, flush against the guard page after it
    /// (`at_end`) or before it.
    pub fn new(values: &[f64], at_end: bool) -> Guarded {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let bytes = std::mem::size_of_val(values);
        let pages = bytes.div_ceil(page).max(1);
        let total = (pages + 2) * page;
        // SAFETY: an anonymous private mapping of `total` bytes; checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(base != libc::MAP_FAILED, "mmap failed");
        let first = base.cast::<u8>();
        // SAFETY: both ranges lie inside the mapping just made; the data
        // range (pages 1..=pages) stays readable and writable, and is
        // 8-aligned (page-aligned ends, whole f64s).
        let data = unsafe {
            let ok = libc::mprotect(first.cast(), page, libc::PROT_NONE) == 0
                && libc::mprotect(first.add((pages + 1) * page).cast(), page, libc::PROT_NONE) == 0;
            assert!(ok, "mprotect failed");
            let start = if at_end {
                first.add((pages + 1) * page - bytes)
            } else {
                first.add(page)
            };
            let data = start.cast::<f64>();
            std::ptr::copy_nonoverlapping(values.as_ptr(), data, values.len());
            data
        };
        Guarded {
            base,
            total,
            data,
            len: values.len(),
        }
    }

    /// The buffer.
    pub fn slice(&self) -> &[f64] {
        // SAFETY: `data..data + len` is inside the readable part of the
        // mapping, initialized in `new`, and lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }

    /// The buffer, mutably.
    pub fn slice_mut(&mut self) -> &mut [f64] {
        // SAFETY: as in `slice`, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.data, self.len) }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; no slice of it
        // outlives `self`.
        unsafe { libc::munmap(self.base, self.total) };
    }
}

/// An [`oracle::Runner`] that runs compiled code twice, with inputs,
/// parameters and outputs against the guard page after them, then before
/// them; both runs must agree. Inputs and outputs split by the compile
/// options live in separate guarded buffers (so that reading one part for
/// the other faults or shows), and the scratch memory (arrays, values
/// crossing chunks) starts full of [`oracle::SCRATCH_GARBAGE`], so that an
/// array element read before it is reset shows.
pub fn run_guarded(code: &JitFunction, splits: (usize, usize), x: &[f64], p: &[f64]) -> Outcome {
    let (input_split, output_split) = splits;
    let mut outcomes = [true, false].map(|at_end| {
        let head = Guarded::new(&x[..input_split.min(x.len())], at_end);
        let tail = Guarded::new(&x[input_split.min(x.len())..], at_end);
        let ps = Guarded::new(p, at_end);
        let n = code.n_outputs();
        let mut out_head = Guarded::new(&vec![0.0; output_split.min(n)], at_end);
        let mut out_tail = Guarded::new(&vec![0.0; n - output_split.min(n)], at_end);
        let mut scratch = vec![oracle::SCRATCH_GARBAGE; code.scratch_len()];
        let status = code.call_parts(
            head.slice(),
            tail.slice(),
            ps.slice(),
            out_head.slice_mut(),
            out_tail.slice_mut(),
            &mut scratch,
        );
        code.result(status, x.len(), p.len(), n)
            .map(|()| [out_head.slice(), out_tail.slice()].concat())
    });
    let [first, second] = &mut outcomes;
    let bits = |o: &Outcome| {
        o.clone()
            .map(|v| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>())
    };
    assert_eq!(bits(first), bits(second), "the same call gave two results");
    std::mem::replace(first, Ok(Vec::new()))
}
