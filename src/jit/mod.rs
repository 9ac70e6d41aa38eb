//! The Cranelift backend: any verified tape becomes native code.
//!
//! A tape is split into chunks (see `layout`), each lowered inline to one
//! Cranelift function (`lower`); a small Rust loop calls them in order. The
//! native entry of a chunk is `(inputs, params, outputs, scratch) -> status`
//! with raw `f64` buffers; [`JitFunction::run`] checks every length before
//! entering native code. Status 0 is success, `k + 1` the failure of the guard
//! at instruction `k`. Math without a machine instruction calls the wrappers
//! in `math`, the same `f64` code the interpreter runs.

mod layout;
mod lower;
mod math;

use crate::error::{check_len, Error, Result};
use crate::ir::{Op, Tape};
use cranelift_codegen::ir::UserFuncName;
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};
use layout::Layout;
use lower::{chunk_signature, ChunkLowering, MathDecls};
use std::sync::OnceLock;

/// The status [`JitFunction::call`] returns for a buffer of the wrong length.
pub const LENGTH_MISMATCH: u32 = u32::MAX;

/// Native entry of one chunk: input head and tail, params, output head and
/// tail, scratch.
type ChunkFn =
    unsafe extern "C" fn(*const f64, *const f64, *const f64, *mut f64, *mut f64, *mut f64) -> i32;

/// How to compile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JitOptions {
    /// Most tape instructions per Cranelift function. Register allocation is
    /// superlinear in function size, so bounding it keeps compile time linear.
    pub chunk_len: usize,
    /// Use Cranelift's single-pass register allocator (faster to compile,
    /// more spills) instead of the backtracking one.
    pub single_pass_regalloc: bool,
    /// Inputs `..input_split` are read from one buffer and the rest from
    /// another (see [`JitFunction::call_parts`]), so that e.g. `x` and `v` of a
    /// JVP need not be copied together. `None`: all inputs in the first.
    pub input_split: Option<usize>,
    /// Outputs `..output_split` go to one buffer and the rest to another,
    /// e.g. a gradient tape's value and gradient. `None`: all in the first.
    pub output_split: Option<usize>,
}

impl Default for JitOptions {
    fn default() -> Self {
        JitOptions {
            chunk_len: 2000,
            single_pass_regalloc: false,
            input_split: None,
            output_split: None,
        }
    }
}

/// A tape compiled to native code.
///
/// Owns its machine code and frees it when dropped. Evaluations only read
/// the code, so it is `Send + Sync`.
pub struct JitFunction {
    module: Option<JITModule>,
    chunks: Vec<ChunkFn>,
    n_inputs: usize,
    n_params: usize,
    n_outputs: usize,
    input_split: usize,
    output_split: usize,
    n_slots: usize,
    /// Guard instruction index, ordinal and description, for errors.
    guards: Vec<(u32, String)>,
    code_bytes: usize,
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
            .field("n_slots", &self.n_slots)
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

fn jit_error(stage: &str, e: impl std::fmt::Display) -> Error {
    Error::Unsupported(format!("JIT compilation failed while {stage}: {e}"))
}

/// The host ISA with our settings, built once per process (per allocator choice).
fn host_isa(single_pass_regalloc: bool) -> Result<OwnedTargetIsa> {
    static ISAS: [OnceLock<std::result::Result<OwnedTargetIsa, String>>; 2] =
        [OnceLock::new(), OnceLock::new()];
    ISAS[usize::from(single_pass_regalloc)]
        .get_or_init(|| {
            let mut flags = settings::builder();
            let regalloc = if single_pass_regalloc {
                "single_pass"
            } else {
                "backtracking"
            };
            // `speed`: the egraph optimizer pays for itself on code run thousands
            // of times. The verifier runs in debug builds only.
            let verifier = if cfg!(debug_assertions) {
                "true"
            } else {
                "false"
            };
            for (k, v) in [
                ("opt_level", "speed"),
                ("is_pic", "false"),
                ("enable_verifier", verifier),
                ("regalloc_algorithm", regalloc),
            ] {
                flags.set(k, v).map_err(|e| format!("setting {k}: {e}"))?;
            }
            cranelift_native::builder()
                .map_err(|e| format!("detecting the host: {e}"))?
                .finish(settings::Flags::new(flags))
                .map_err(|e| format!("building the ISA: {e}"))
        })
        .clone()
        .map_err(|e| jit_error("configuring", e))
}

/// A fresh module for the host, with our math wrappers linked in.
fn new_module(options: JitOptions) -> Result<JITModule> {
    let isa = host_isa(options.single_pass_regalloc)?;
    let mut builder = JITBuilder::with_isa(isa, default_libcall_names());
    for (name, ptr, _) in math::all() {
        builder.symbol(name, ptr);
    }
    Ok(JITModule::new(builder))
}

/// Compiles a tape (verified first) with the default options.
pub fn compile(tape: &Tape) -> Result<JitFunction> {
    compile_with(tape, JitOptions::default())
}

/// Compiles a tape (verified first).
pub fn compile_with(tape: &Tape, options: JitOptions) -> Result<JitFunction> {
    tape.verify()?;
    let splits = (
        options.input_split.unwrap_or(tape.n_inputs()),
        options.output_split.unwrap_or(tape.n_outputs()),
    );
    if splits.0 > tape.n_inputs() || splits.1 > tape.n_outputs() {
        return Err(Error::Unsupported(format!(
            "JIT input/output split {splits:?} beyond the tape's {} inputs and {} outputs",
            tape.n_inputs(),
            tape.n_outputs()
        )));
    }
    let mut module = new_module(options)?;
    let result = define_chunks(&mut module, tape, options, splits, None);
    let (layout, ids, code_bytes) = match result {
        Ok(r) => r,
        Err(e) => {
            // SAFETY: nothing compiled in this module has been handed out.
            unsafe { module.free_memory() };
            return Err(e);
        }
    };
    let chunks = ids
        .into_iter()
        .map(|id| {
            let ptr = module.get_finalized_function(id);
            // SAFETY: `id` was defined with `chunk_signature`, which is
            // `(ptr × 6) -> i32` in the host's C calling convention.
            unsafe { std::mem::transmute::<*const u8, ChunkFn>(ptr) }
        })
        .collect();
    let guards = tape
        .insts()
        .iter()
        .enumerate()
        .filter(|(_, inst)| inst.op == Op::Guard)
        .map(|(i, _)| (i as u32, tape.describe_guard(i as u32)))
        .collect();
    Ok(JitFunction {
        module: Some(module),
        chunks,
        n_inputs: tape.n_inputs(),
        n_params: tape.n_params(),
        n_outputs: tape.n_outputs(),
        input_split: splits.0,
        output_split: splits.1,
        n_slots: layout.n_slots,
        guards,
        code_bytes,
    })
}

/// Lowers and defines every chunk, then finalizes the module.
fn define_chunks(
    module: &mut JITModule,
    tape: &Tape,
    options: JitOptions,
    (input_split, output_split): (usize, usize),
    mut listing: Option<&mut String>,
) -> Result<(Layout, Vec<cranelift_module::FuncId>, usize)> {
    let layout = Layout::plan(tape, options.chunk_len);
    let math = MathDecls::declare(module).map_err(|e| jit_error("declaring math", e))?;
    let mut outputs_by_chunk: Vec<Vec<(u32, u32)>> = vec![Vec::new(); layout.chunks.len().max(1)];
    let values = tape
        .output_values()
        .filter(|_| !tape.has_structure())
        .ok_or_else(|| Error::Unsupported("the JIT does not compile loops or arrays yet".into()))?;
    for (k, &v) in values.iter().enumerate() {
        outputs_by_chunk[v as usize / options.chunk_len.max(1)].push((v, k as u32));
    }
    let sig = chunk_signature(module);
    let mut ctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    let mut ids = Vec::new();
    let mut code_bytes = 0;
    let ranges = if layout.chunks.is_empty() {
        std::iter::once(0..0).collect()
    } else {
        layout.chunks.clone()
    };
    for (c, range) in ranges.into_iter().enumerate() {
        let id = module
            .declare_function(&format!("chunk{c}"), Linkage::Local, &sig)
            .map_err(|e| jit_error("declaring", e))?;
        ctx.func.signature = sig.clone();
        ctx.func.name = UserFuncName::user(0, id.as_u32());
        ChunkLowering {
            b: FunctionBuilder::new(&mut ctx.func, &mut fctx),
            module,
            math: &math,
            tape,
            layout: &layout,
            input_split,
            output_split,
        }
        .lower(range, &outputs_by_chunk[c]);
        if let Some(text) = listing.as_deref_mut() {
            text.push_str(&ctx.func.display().to_string());
            text.push('\n');
        }
        module
            .define_function(id, &mut ctx)
            .map_err(|e| jit_error("compiling", format!("{e:?}")))?;
        code_bytes += ctx.compiled_code().map_or(0, |c| c.code_buffer().len());
        module.clear_context(&mut ctx);
        ids.push(id);
    }
    module
        .finalize_definitions()
        .map_err(|e| jit_error("linking", e))?;
    Ok((layout, ids, code_bytes))
}

/// The Cranelift IR a tape lowers to (before Cranelift's own optimizations),
/// one function per chunk, for `tapejit show`.
pub fn cranelift_ir(tape: &Tape, options: JitOptions) -> Result<String> {
    tape.verify()?;
    let mut module = new_module(options)?;
    let splits = (tape.n_inputs(), tape.n_outputs());
    let mut text = String::new();
    let result = define_chunks(&mut module, tape, options, splits, Some(&mut text));
    // SAFETY: no pointer into this module's code was handed out.
    unsafe { module.free_memory() };
    result.map(|_| text)
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

    /// Bytes of machine code.
    pub fn code_bytes(&self) -> usize {
        self.code_bytes
    }

    /// Number of Cranelift functions the tape was split into.
    pub fn n_chunks(&self) -> usize {
        self.chunks.len()
    }

    /// `f64`s of scratch memory one evaluation needs.
    pub fn scratch_len(&self) -> usize {
        self.n_slots
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
    /// [`LENGTH_MISMATCH`], or `k + 1` for the guard at instruction `k`): a
    /// register-sized result keeps the call path of tiny functions short.
    /// Turn it into a `Result` with [`JitFunction::result`].
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
    /// split where [`JitOptions`] said: no copying to join them.
    #[inline]
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
        if scratch.len() < self.n_slots {
            scratch.resize(self.n_slots, 0.0);
        }
        for chunk in &self.chunks {
            // SAFETY: every length the code indexes was checked above: the
            // tape verified, so its input, param and output indices are below
            // the checked lengths of the buffers they are split across, and
            // scratch slots are below `n_slots <= scratch.len()`. The code
            // writes only the output buffers and `scratch`.
            let status = unsafe {
                chunk(
                    inputs_head.as_ptr(),
                    inputs_tail.as_ptr(),
                    params.as_ptr(),
                    outputs_head.as_mut_ptr(),
                    outputs_tail.as_mut_ptr(),
                    scratch.as_mut_ptr(),
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
            guard => Err(self.guard_error(guard - 1)),
        }
    }

    fn guard_error(&self, instr: u32) -> Error {
        let ordinal = self.guards.partition_point(|(i, _)| *i < instr);
        let detail = self
            .guards
            .get(ordinal)
            .map_or_else(String::new, |(_, d)| d.clone());
        Error::GuardFailed {
            guard: ordinal,
            instr,
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interp;

    fn both(tape: &Tape, x: &[f64], p: &[f64]) -> (Result<Vec<f64>>, Result<Vec<f64>>) {
        let mut a = vec![0.0; tape.n_outputs()];
        let mut b = vec![0.0; tape.n_outputs()];
        let ia = interp::eval(tape, x, p, &mut Vec::new(), &mut a).map(|()| a);
        let f = compile_with(
            tape,
            JitOptions {
                chunk_len: 3,
                ..JitOptions::default()
            },
        )
        .unwrap();
        let jb = f.run(x, p, &mut b, &mut Vec::new()).map(|()| b);
        (ia, jb)
    }

    #[test]
    fn agrees_with_the_interpreter_across_chunks_and_guards() {
        let tape: Tape = "tape inputs=2 params=1
%0 = input 0
%1 = input 1
%2 = param 0
%3 = mul %0 %1
%4 = lt %3 %2
%5 = guard %4 true
%6 = powi %3 -3
%7 = sin %6
%8 = max %7 %0
%9 = round %8
%10 = select %4 %9 %1
outputs %10 %8 %0 %3
"
        .parse()
        .unwrap();
        let (a, b) = both(&tape, &[0.5, 0.7], &[1.0]);
        assert_eq!(a.unwrap(), b.unwrap());
        let (a, b) = both(&tape, &[2.0, 0.7], &[1.0]);
        assert_eq!(a.unwrap_err(), b.unwrap_err());
    }

    #[test]
    fn checks_lengths_before_running() {
        let tape: Tape = "tape inputs=1 params=0\n%0 = input 0\noutputs %0\n"
            .parse()
            .unwrap();
        let f = compile(&tape).unwrap();
        let mut s = Vec::new();
        assert!(f.run(&[], &[], &mut [0.0], &mut s).is_err());
        assert!(f.run(&[1.0], &[], &mut [], &mut s).is_err());
        assert!(f.run(&[1.0], &[1.0], &mut [0.0], &mut s).is_err());
        let mut out = [0.0];
        f.run(&[3.0], &[], &mut out, &mut s).unwrap();
        assert_eq!(out, [3.0]);
    }
}
