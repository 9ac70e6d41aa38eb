//! The Cranelift backend: any verified tape becomes native code.
//!
//! A tape is split into chunks (see `layout`), each lowered inline to one
//! Cranelift function (`lower`, and `loops` for structured loops, each a
//! machine loop kept whole in one chunk); a small Rust loop calls them in
//! order. The native entry of a chunk is `(inputs, params, outputs,
//! scratch) -> status` with raw `f64` buffers; [`JitFunction::run`] checks
//! every length before entering native code. Status 0 is success, `k + 1`
//! the failure of the `k`-th guard compiled (root or loop body). Arrays live
//! in the scratch buffer after the values crossing chunks; the elements
//! whose initial `-0.0` may be read are reset before each call (`arrays`),
//! and array slices are copied to the outputs after it. Math without a
//! machine instruction calls the wrappers in `math`, the same `f64` code the
//! interpreter runs. A checkpointed loop (binomial checkpointing) calls a
//! Rust driver that runs its schedule (`schedule`, state in scratch),
//! calling the loop's forward step and reverse body compiled as two more
//! functions (`checkpoint`).
//!
//! With [`JitOptions::flush_subnormals`] a call runs with the hardware
//! flushing subnormals (`fpmode`), and the code flushes what it reads from
//! the caller's buffers and its constants (see `Lower::flush`).

mod arrays;
mod carry;
mod checkpoint;
mod fpmode;
mod function;
mod layout;
mod loops;
mod lower;
mod math;
mod schedule;

use crate::error::{Error, Result};
use crate::ir::{Op, Output, Tape};
use cranelift_codegen::ir::UserFuncName;
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};
use function::{ChunkFn, SliceCopy};
pub use function::{JitFunction, LENGTH_MISMATCH};
use layout::Layout;
use lower::{chunk_signature, ChunkLowering, MathDecls};
use std::sync::OnceLock;

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
    /// Run with subnormals flushed to zero (FTZ) and read as zero (DAZ):
    /// every call sets the thread's floating-point control register for its
    /// duration and restores the caller's value after (see
    /// `Options::flush_subnormals` for the semantics). x86-64 and aarch64
    /// only; elsewhere compiling with it is [`Error::Unsupported`].
    pub flush_subnormals: bool,
}

impl Default for JitOptions {
    fn default() -> Self {
        JitOptions {
            chunk_len: 2000,
            single_pass_regalloc: false,
            input_split: None,
            output_split: None,
            flush_subnormals: false,
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
    for (name, ptr) in schedule::symbols() {
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
    if options.flush_subnormals && !fpmode::SUPPORTED {
        return Err(Error::Unsupported(format!(
            "flushing subnormals needs an x86-64 or aarch64 host, not {}",
            std::env::consts::ARCH
        )));
    }
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
    let defined = match result {
        Ok(r) => r,
        Err(e) => {
            // SAFETY: nothing compiled in this module has been handed out.
            unsafe { module.free_memory() };
            return Err(e);
        }
    };
    let chunks = defined
        .ids
        .into_iter()
        .map(|id| {
            let ptr = module.get_finalized_function(id);
            // SAFETY: `id` was defined with `chunk_signature`, which is
            // `(ptr × 6) -> i32` in the host's C calling convention.
            unsafe { std::mem::transmute::<*const u8, ChunkFn>(ptr) }
        })
        .collect();
    let layout = defined.layout;
    let resets = arrays::resets(tape, &layout.array_base);
    let slices = slice_copies(tape, &layout, splits.1);
    let plain = resets.is_empty() && slices.is_empty() && !options.flush_subnormals;
    Ok(JitFunction {
        module: Some(module),
        chunks,
        n_inputs: tape.n_inputs(),
        n_params: tape.n_params(),
        n_outputs: tape.n_outputs(),
        input_split: splits.0,
        output_split: splits.1,
        scratch_len: layout.scratch_len,
        resets,
        slices,
        guards: defined.guards,
        code_bytes: defined.code_bytes,
        flush: options.flush_subnormals,
        plain,
    })
}

/// The array slices among the outputs of `tape`, as copies from scratch to
/// the output buffers split at `output_split`.
fn slice_copies(tape: &Tape, layout: &Layout, output_split: usize) -> Vec<SliceCopy> {
    let mut copies = Vec::new();
    let mut k = 0;
    for out in tape.outputs() {
        if let Output::Slice { array, start, len } = *out {
            let from = layout.array_base[array as usize] + start as usize;
            let len = len as usize;
            let head = output_split.saturating_sub(k).min(len);
            if head > 0 {
                copies.push(SliceCopy {
                    from,
                    to: k,
                    len: head,
                    tail: false,
                });
            }
            if head < len {
                copies.push(SliceCopy {
                    from: from + head,
                    to: k + head - output_split,
                    len: len - head,
                    tail: true,
                });
            }
        }
        k += out.len();
    }
    copies
}

/// What [`define_chunks`] made: the chunks' functions (finalized), and what
/// the [`JitFunction`] needs to run them.
struct Defined {
    layout: Layout,
    ids: Vec<cranelift_module::FuncId>,
    code_bytes: usize,
    guards: Vec<Error>,
}

/// Lowers and defines every chunk, then finalizes the module.
fn define_chunks(
    module: &mut JITModule,
    tape: &Tape,
    options: JitOptions,
    (input_split, output_split): (usize, usize),
    mut listing: Option<&mut String>,
) -> Result<Defined> {
    let layout = Layout::plan(tape, options.chunk_len);
    let mut math = MathDecls::declare(module).map_err(|e| jit_error("declaring math", e))?;
    math.checkpoint_parts =
        checkpoint::declare_parts(module, tape).map_err(|e| jit_error("declaring", e))?;
    let mut outputs_by_chunk: Vec<Vec<(u32, u32)>> = vec![Vec::new(); layout.chunks.len().max(1)];
    let mut k = 0;
    for out in tape.outputs() {
        if let Output::Value(v) = *out {
            outputs_by_chunk[layout.chunk_of(v as usize)].push((v, k as u32));
        }
        k += out.len();
    }
    let sig = chunk_signature(module);
    let mut ctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    let mut ids = Vec::new();
    let mut code_bytes = 0;
    let mut guards = Vec::new();
    let mut root_guards = 0;
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
        let guards_before = root_guards;
        root_guards += tape.insts()[range.clone()]
            .iter()
            .filter(|i| i.op == Op::Guard)
            .count();
        ChunkLowering {
            b: FunctionBuilder::new(&mut ctx.func, &mut fctx),
            module,
            math: &math,
            tape,
            layout: &layout,
            input_split,
            output_split,
            guards: &mut guards,
            guards_before,
            flush: options.flush_subnormals,
        }
        .lower(range, &outputs_by_chunk[c]);
        if let Some(text) = listing.as_deref_mut() {
            text.push_str(&ctx.func.display().to_string());
            text.push('\n');
        }
        let dump = std::env::var("TAPEJIT_DISASM").is_ok();
        ctx.set_disasm(dump);
        module
            .define_function(id, &mut ctx)
            .map_err(|e| jit_error("compiling", format!("{e:?}")))?;
        if dump {
            eprintln!(
                "{}",
                ctx.compiled_code()
                    .and_then(|c| c.vcode.clone())
                    .unwrap_or_default()
            );
        }
        code_bytes += ctx.compiled_code().map_or(0, |c| c.code_buffer().len());
        module.clear_context(&mut ctx);
        ids.push(id);
    }
    code_bytes += checkpoint::define_parts(checkpoint::Parts {
        module,
        ctx: &mut ctx,
        fctx: &mut fctx,
        math: &math,
        tape,
        layout: &layout,
        input_split,
        output_split,
        guards: &mut guards,
        listing,
        flush: options.flush_subnormals,
    })
    .map_err(|e| jit_error("compiling", e))?;
    module
        .finalize_definitions()
        .map_err(|e| jit_error("linking", e))?;
    Ok(Defined {
        layout,
        ids,
        code_bytes,
        guards,
    })
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

#[cfg(test)]
mod slice_tests {
    use super::*;
    use crate::ir::Inst;

    #[test]
    fn slices_are_copied_across_the_output_split() {
        let mut t = Tape::new(1, 0);
        let a = t.add_array(4);
        let b = t.add_array(3);
        let x = t.push(Inst::input(0));
        t.push_output(x);
        t.push_output_entry(Output::Slice {
            array: a,
            start: 1,
            len: 3,
        });
        t.push_output_entry(Output::Slice {
            array: b,
            start: 0,
            len: 2,
        });
        let layout = Layout::plan(&t, 10);
        let copy = |from, to, len, tail| SliceCopy {
            from,
            to,
            len,
            tail,
        };
        // Outputs: x, a[1..4] (1..4), b[0..2] (4..6); b starts at scratch 4.
        assert_eq!(
            slice_copies(&t, &layout, 6),
            vec![copy(1, 1, 3, false), copy(4, 4, 2, false)]
        );
        assert_eq!(
            slice_copies(&t, &layout, 2),
            vec![
                copy(1, 1, 1, false),
                copy(2, 0, 2, true),
                copy(4, 2, 2, true)
            ]
        );
        assert_eq!(
            slice_copies(&t, &layout, 0),
            vec![copy(1, 1, 3, true), copy(4, 4, 2, true)]
        );
    }
}
