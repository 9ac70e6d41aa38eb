//! The floating-point control register of the calling thread, set for the
//! duration of a compiled call with `flush_subnormals` ([`FpMode::flush`])
//! and back to IEEE inside the math wrappers ([`FpMode::ieee`]); the
//! caller's value is restored when the guard drops (also on error paths).
//!
//! x86-64: MXCSR bits FTZ (15) and DAZ (6), through `stmxcsr`/`ldmxcsr`.
//! aarch64: FPCR.FZ (bit 24), which flushes both operands and results,
//! through `mrs`/`msr`. Other targets have no flushing
//! ([`SUPPORTED`] is false and `Function` refuses the option).

/// Whether the host can run compiled code with subnormals flushed.
pub const SUPPORTED: bool = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

#[cfg(target_arch = "x86_64")]
mod reg {
    /// MXCSR.FTZ (bit 15) and MXCSR.DAZ (bit 6).
    pub const FLUSH: u64 = (1 << 15) | (1 << 6);

    #[inline(always)]
    pub fn read() -> u64 {
        let mut csr: u32 = 0;
        // SAFETY: `stmxcsr` stores the 4-byte MXCSR to `csr`, a live local
        // we own; it changes no register or flag.
        unsafe {
            core::arch::asm!(
                "stmxcsr [{}]",
                in(reg) &mut csr,
                options(nostack, preserves_flags)
            );
        }
        u64::from(csr)
    }

    #[inline(always)]
    pub fn write(value: u64) {
        let csr = value as u32;
        // SAFETY: `ldmxcsr` loads MXCSR from `csr`, a live local. Only the
        // FTZ/DAZ bits ever differ from a value `read` returned, so no
        // exception gets unmasked and the rounding mode never changes. Rust
        // code does no float arithmetic while they are set (see
        // `FpMode::flush`), so nothing compiled by rustc sees the mode.
        unsafe {
            core::arch::asm!(
                "ldmxcsr [{}]",
                in(reg) &csr,
                options(nostack, preserves_flags)
            );
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod reg {
    /// FPCR.FZ (bit 24).
    pub const FLUSH: u64 = 1 << 24;

    #[inline(always)]
    pub fn read() -> u64 {
        let fpcr: u64;
        // SAFETY: reading FPCR has no side effect.
        unsafe {
            core::arch::asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack, preserves_flags));
        }
        fpcr
    }

    #[inline(always)]
    pub fn write(value: u64) {
        // SAFETY: only FPCR.FZ ever differs from a value `read` returned
        // (no trap gets enabled, the rounding mode never changes); Rust code
        // does no float arithmetic while it is set (see `FpMode::flush`).
        unsafe {
            core::arch::asm!("msr fpcr, {}", in(reg) value, options(nomem, nostack, preserves_flags));
        }
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod reg {
    pub const FLUSH: u64 = 0;

    #[inline(always)]
    pub fn read() -> u64 {
        0
    }

    #[inline(always)]
    pub fn write(_: u64) {}
}

/// The caller's floating-point control register, restored on drop.
#[derive(Debug)]
#[must_use = "the mode is restored when the guard drops"]
pub(crate) struct FpMode {
    saved: u64,
}

impl FpMode {
    /// Sets flush-to-zero and denormals-are-zero until the guard drops.
    ///
    /// Only compiled tape code runs in this mode. Rust functions it calls
    /// run in it too: the math wrappers switch back with [`FpMode::ieee`]
    /// before any arithmetic, and the checkpoint driver only moves values
    /// (a load or store never flushes).
    #[inline(always)]
    pub fn flush() -> FpMode {
        let saved = reg::read();
        reg::write(saved | reg::FLUSH);
        FpMode { saved }
    }

    /// Clears flush-to-zero and denormals-are-zero until the guard drops.
    #[inline(always)]
    pub fn ieee() -> FpMode {
        let saved = reg::read();
        reg::write(saved & !reg::FLUSH);
        FpMode { saved }
    }
}

impl Drop for FpMode {
    #[inline(always)]
    fn drop(&mut self) {
        reg::write(self.saved);
    }
}

#[cfg(all(test, any(target_arch = "x86_64", target_arch = "aarch64")))]
mod tests {
    use super::*;
    use crate::ir::flush;
    use crate::rng::SplitMix64;
    use std::hint::black_box;

    /// Operand pairs whose product or quotient lands near `MIN_POSITIVE`,
    /// on both sides, with every rounding, plus subnormal operands.
    fn operands(rng: &mut SplitMix64) -> (f64, f64) {
        let a = f64::from_bits(0x3ff0_0000_0000_0000 | (rng.next_u64() >> 12));
        let b = f64::MIN_POSITIVE / a;
        let nudge = (rng.next_u64() % 9) as i64 - 4;
        let b = f64::from_bits((b.to_bits() as i64 + nudge) as u64);
        let sign = if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
        match rng.next_u64() % 8 {
            0 => (f64::from_bits(rng.next_u64() >> 12) * sign, b),
            1 => (a, f64::from_bits(rng.next_u64() >> 12)),
            _ => (a * sign, b),
        }
    }

    #[test]
    fn the_emulation_matches_the_hardware() {
        let mut rng = SplitMix64::new(7);
        let mut sliver = 0;
        for _ in 0..200_000 {
            let (a, b) = operands(&mut rng);
            let q = 1.0 / b;
            let (hw_mul, hw_div, hw_add) = {
                let _mode = FpMode::flush();
                (
                    black_box(black_box(a) * black_box(b)),
                    black_box(black_box(a) / black_box(q)),
                    black_box(black_box(a) - black_box(b)),
                )
            };
            if hw_mul == 0.0 && a * b != 0.0 && !(a * b).is_subnormal() {
                sliver += 1;
            }
            assert_eq!(
                hw_mul.to_bits(),
                flush::mul(a, b).to_bits(),
                "{a:e} * {b:e}"
            );
            assert_eq!(
                hw_div.to_bits(),
                flush::div(a, q).to_bits(),
                "{a:e} / {q:e}"
            );
            let sub = flush::flush(flush::flush(a) - flush::flush(b));
            assert_eq!(hw_add.to_bits(), sub.to_bits(), "{a:e} - {b:e}");
        }
        if !flush::TINY_BEFORE_ROUNDING {
            assert!(sliver > 0, "no product was rounded up to MIN_POSITIVE");
        }
    }

    #[test]
    fn the_guard_restores_the_callers_mode() {
        let before = reg::read();
        {
            let _flush = FpMode::flush();
            assert_eq!(reg::read(), before | reg::FLUSH);
            {
                let _ieee = FpMode::ieee();
                assert_eq!(reg::read() & reg::FLUSH, 0);
            }
            assert_eq!(reg::read(), before | reg::FLUSH);
        }
        assert_eq!(reg::read(), before);
    }
}
