//! [`JitFunction`]: compiled code, and the checked entry into it.

use super::fpmode::FpMode;
use crate::error::{check_len, Error, Result};
use cranelift_jit::JITModule;
use std::ops::Range;

/// The status [`JitFunction::call`] returns for a buffer of the wrong length.
pub const LENGTH_MISMATCH: u32 = u32::MAX;

/// Native entry of one chunk: input head and tail, params, output head and
/// tail, scratch.
pub(super) type ChunkFn =
    unsafe extern "C" fn(*const f64, *const f64, *const f64, *mut f64, *mut f64, *mut f64) -> i32;

/// Elements of an array copied to the outputs after the code ran (an array
/// slice output, or the part of one on one side of the output split).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SliceCopy {
    /// Scratch index of the first element.
    pub from: usize,
    /// Index of the first output in its buffer.
    pub to: usize,
    /// Number of elements.
    pub len: usize,
    /// Whether the outputs are in the tail buffer.
    pub tail: bool,
}

/// A tape compiled to native code.
///
/// Owns its machine code and frees it when dropped. Evaluations only read
/// the code, so it is `Send + Sync`.
pub struct JitFunction {
    pub(super) module: Option<JITModule>,
    pub(super) chunks: Vec<ChunkFn>,
    pub(super) n_inputs: usize,
    pub(super) n_params: usize,
    pub(super) n_outputs: usize,
    pub(super) input_split: usize,
    pub(super) output_split: usize,
    /// Scratch `f64`s: slots of values crossing chunks, the arrays, the
    /// regions of checkpointed loops.
    pub(super) scratch_len: usize,
    /// Scratch ranges set to `-0.0` before each call (array elements whose
    /// initial value may be read).
    pub(super) resets: Vec<Range<usize>>,
    /// Array slices copied to the outputs after each call.
    pub(super) slices: Vec<SliceCopy>,
    /// The error of each guard: status `k + 1` is the failure of guard `k`.
    pub(super) guards: Vec<Error>,
    pub(super) code_bytes: usize,
    /// Compiled with `flush_subnormals`: calls run in the flushing mode.
    pub(super) flush: bool,
    /// No resets, no slices, no flushing: a call only runs the chunks.
    /// Decided once here so that the call path of small straight-line
    /// tapes stays short enough to inline.
    pub(super) plain: bool,
}

// SAFETY: after `finalize_definitions` the module is never mutated again
// (only dropped), and the chunk pointers refer to immutable machine code that
// touches nothing but the buffers passed to each call. Sharing or sending
// the handle across threads therefore cannot race.
unsafe impl Send for JitFunction {}
// SAFETY: see `Send`; `run` takes `&self` and mutates only caller buffers.
unsafe impl Sync for JitFunction {}

impl std::fmt::Debug for JitFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitFunction")
            .field("chunks", &self.chunks.len())
            .field("scratch_len", &self.scratch_len)
            .field("code_bytes", &self.code_bytes)
            .finish()
    }
}

impl Drop for JitFunction {
    fn drop(&mut self) {
        if let Some(module) = self.module.take() {
            // SAFETY: the chunk pointers die with `self`; no call can be in
            // flight because `run` borrows `self`.
            unsafe { module.free_memory() };
        }
    }
}

impl JitFunction {
    /// Number of active inputs the compiled tape reads.
    pub fn n_inputs(&self) -> usize {
        self.n_inputs
    }

    /// Number of outputs.
    pub fn n_outputs(&self) -> usize {
        self.n_outputs
    }

    /// Whether calls run with subnormals flushed (`JitOptions::flush_subnormals`).
    pub fn flushes_subnormals(&self) -> bool {
        self.flush
    }

    /// Bytes of machine code.
    pub fn code_bytes(&self) -> usize {
        self.code_bytes
    }

    /// Number of Cranelift functions the tape was split into.
    pub fn n_chunks(&self) -> usize {
        self.chunks.len()
    }

    /// `f64`s of scratch memory one evaluation needs (values crossing
    /// chunks, the tape's arrays, and for each checkpointed loop its
    /// snapshots and schedule: `O(snapshots)`, whatever the trip count).
    pub fn scratch_len(&self) -> usize {
        self.scratch_len
    }

    /// Scratch `f64`s reset to `-0.0` before each evaluation: the array
    /// elements whose initial value the tape may read (the others are
    /// stored before any read).
    pub fn reset_len(&self) -> usize {
        self.resets.iter().map(|r| r.len()).sum()
    }

    /// Evaluates on `inputs` and `params` into `out`; `scratch` is resized as
    /// needed and can be reused across calls. On a failed guard, returns the
    /// same [`Error::GuardFailed`] as the interpreter (`out` is then unspecified).
    pub fn run(
        &self,
        inputs: &[f64],
        params: &[f64],
        out: &mut [f64],
        scratch: &mut Vec<f64>,
    ) -> Result<()> {
        let status = self.call(inputs, params, out, scratch);
        self.result(status, inputs.len(), params.len(), out.len())
    }

    /// [`JitFunction::run`] returning a raw status (`0` success,
    /// [`LENGTH_MISMATCH`], or `k + 1` for the failure of the compiled
    /// code's guard number `k`): a register-sized result keeps the call path
    /// of tiny functions short. Turn it into a `Result` with
    /// [`JitFunction::result`].
    #[inline]
    pub fn call(
        &self,
        inputs: &[f64],
        params: &[f64],
        out: &mut [f64],
        scratch: &mut Vec<f64>,
    ) -> u32 {
        if inputs.len() != self.n_inputs || out.len() != self.n_outputs {
            return LENGTH_MISMATCH;
        }
        let (in_head, in_tail) = inputs.split_at(self.input_split);
        let (out_head, out_tail) = out.split_at_mut(self.output_split);
        self.call_parts(in_head, in_tail, params, out_head, out_tail, scratch)
    }

    /// [`JitFunction::call`] with the inputs and outputs each in two buffers,
    /// split where [`super::JitOptions`] said: no copying to join them.
    ///
    /// Always inlined: left to itself LLVM kept it out of line, and the
    /// call with its register saves cost 1.5-2 ns of a 10 ns evaluation.
    #[inline(always)]
    pub fn call_parts(
        &self,
        inputs_head: &[f64],
        inputs_tail: &[f64],
        params: &[f64],
        outputs_head: &mut [f64],
        outputs_tail: &mut [f64],
        scratch: &mut Vec<f64>,
    ) -> u32 {
        if inputs_head.len() != self.input_split
            || inputs_tail.len() != self.n_inputs - self.input_split
            || params.len() != self.n_params
            || outputs_head.len() != self.output_split
            || outputs_tail.len() != self.n_outputs - self.output_split
        {
            return LENGTH_MISMATCH;
        }
        if scratch.len() < self.scratch_len {
            scratch.resize(self.scratch_len, 0.0);
        }
        let mut buffers = Buffers {
            inputs_head,
            inputs_tail,
            params,
            outputs_head,
            outputs_tail,
            scratch,
        };
        if self.plain {
            // SAFETY: the lengths were checked above and `scratch` holds
            // `scratch_len` values (see `run_chunks`).
            unsafe { self.run_chunks(&mut buffers) }
        } else {
            self.call_with_extras(&mut buffers)
        }
    }

    /// [`JitFunction::call_parts`] past the length checks for code with
    /// array resets, slice copies or flushing: kept out of line, since such
    /// tapes run loops and one call outlasts this work by far.
    #[inline(never)]
    fn call_with_extras(&self, b: &mut Buffers<'_>) -> u32 {
        for r in &self.resets {
            b.scratch[r.clone()].fill(-0.0);
        }
        // The caller's mode comes back when `_mode` drops, whichever way
        // this function returns.
        let _mode = self.flush.then(FpMode::flush);
        // SAFETY: the caller checked the lengths and sized `scratch` (see
        // `run_chunks`).
        let status = unsafe { self.run_chunks(b) };
        if status != 0 {
            return status;
        }
        for s in &self.slices {
            let to = if s.tail {
                &mut b.outputs_tail[s.to..s.to + s.len]
            } else {
                &mut b.outputs_head[s.to..s.to + s.len]
            };
            to.copy_from_slice(&b.scratch[s.from..s.from + s.len]);
        }
        0
    }

    /// Runs the chunks in order; stops at the first non-zero status.
    ///
    /// # Safety
    /// The buffers have the lengths `call_parts` checks (`input_split`,
    /// `n_inputs - input_split`, `n_params`, `output_split`,
    /// `n_outputs - output_split`) and `scratch.len() >= scratch_len`.
    #[inline(always)]
    unsafe fn run_chunks(&self, b: &mut Buffers<'_>) -> u32 {
        for chunk in &self.chunks {
            // SAFETY: by the caller's contract, every length the code
            // indexes holds: the tape verified, so its input, param and
            // output indices, and every strided access of a loop at every
            // iteration, are below the lengths of the buffers they address
            // (inputs split across two as compiled); scratch slots and array
            // elements are below `scratch_len <= scratch.len()`. The code
            // writes only the output buffers and `scratch` (checkpointed
            // loops through the checkpoint driver and the loops' compiled
            // parts, called with these same buffers).
            let status = unsafe {
                chunk(
                    b.inputs_head.as_ptr(),
                    b.inputs_tail.as_ptr(),
                    b.params.as_ptr(),
                    b.outputs_head.as_mut_ptr(),
                    b.outputs_tail.as_mut_ptr(),
                    b.scratch.as_mut_ptr(),
                )
            };
            if status != 0 {
                return status as u32;
            }
        }
        0
    }

    /// The `Result` of a [`JitFunction::call`] status, given the lengths passed.
    /// `inputs`, `params` and `outputs` are the total lengths passed.
    pub fn result(&self, status: u32, inputs: usize, params: usize, outputs: usize) -> Result<()> {
        match status {
            0 => Ok(()),
            LENGTH_MISMATCH => {
                check_len("inputs", inputs, self.n_inputs)?;
                check_len("params", params, self.n_params)?;
                check_len("outputs", outputs, self.n_outputs)?;
                Err(Error::Unsupported(
                    "inputs or outputs split differently from how the function was compiled".into(),
                ))
            }
            guard => Err(self
                .guards
                .get(guard as usize - 1)
                .cloned()
                .unwrap_or_else(|| {
                    Error::Unsupported(format!("unknown status {guard} from compiled code"))
                })),
        }
    }
}

/// The buffers of one call, as [`JitFunction::call_parts`] checked them.
struct Buffers<'a> {
    inputs_head: &'a [f64],
    inputs_tail: &'a [f64],
    params: &'a [f64],
    outputs_head: &'a mut [f64],
    outputs_tail: &'a mut [f64],
    scratch: &'a mut [f64],
}
