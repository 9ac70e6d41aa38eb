//! A tape ready to run on either backend, and the per-thread workspace that
//! runs it without allocating.

use crate::error::{check_len, Error, Result};
use crate::interp;
use crate::ir::Tape;
use crate::jit::{self, JitFunction, JitOptions};
use std::cell::RefCell;
use std::sync::OnceLock;

/// Which backend evaluates a tape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Engine {
    /// The reference interpreter: no compile time, slower per call.
    Interpreter,
    /// Native code from Cranelift, compiled on first use of each tape.
    Jit,
    /// The JIT for tapes up to [`AUTO_JIT_MAX_LEN`] instructions, the
    /// interpreter above (where compile time would dominate until loops are rolled).
    #[default]
    Auto,
}

/// Longest tape [`Engine::Auto`] compiles.
pub const AUTO_JIT_MAX_LEN: usize = 200_000;

/// Most leading outputs [`Prepared::run`] takes on the stack instead of in
/// the thread's workspace.
const STACK_HEAD: usize = 16;

/// A tape and, once needed, its compiled form.
///
/// Its inputs come in two parts (`..input_split` and the rest, e.g. `x` and
/// `v` of a JVP) and its outputs go to two places (`..output_split`, e.g. a
/// gradient tape's value, and the rest, e.g. the gradient itself), so that
/// compiled code reads and writes the caller's buffers directly.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub tape: Tape,
    input_split: usize,
    output_split: usize,
    /// Evaluate with subnormals flushed (`Options::flush_subnormals`).
    flush: bool,
    /// Whether [`Engine::Auto`] compiles this tape (decided once: the
    /// tape's length counts every loop body).
    auto_jit: bool,
    compiled: OnceLock<std::result::Result<JitFunction, Error>>,
}

/// Evaluation buffers, one set per thread (see `WORKSPACE`).
#[derive(Debug, Default)]
struct Workspace {
    values: Vec<f64>,
    scratch: Vec<f64>,
    inputs: Vec<f64>,
    outputs: Vec<f64>,
}

thread_local! {
    /// Shared by every function evaluated on this thread: a thread-local needs
    /// no atomic operations, unlike a lock, which shows when a whole gradient
    /// takes tens of nanoseconds.
    static WORKSPACE: RefCell<Workspace> = const {
        RefCell::new(Workspace {
            values: Vec::new(),
            scratch: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
        })
    };
}

impl Prepared {
    pub fn new(tape: Tape, input_split: usize, output_split: usize, flush: bool) -> Prepared {
        Prepared {
            auto_jit: tape.static_len() <= AUTO_JIT_MAX_LEN,
            tape,
            input_split,
            output_split,
            flush,
            compiled: OnceLock::new(),
        }
    }

    /// The compiled tape, compiling it on first use.
    pub fn compiled(&self) -> Result<&JitFunction> {
        self.compiled
            .get_or_init(|| {
                let options = JitOptions {
                    input_split: Some(self.input_split),
                    output_split: Some(self.output_split),
                    flush_subnormals: self.flush,
                    ..JitOptions::default()
                };
                jit::compile_with(&self.tape, options)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn uses_jit(&self, engine: Engine) -> bool {
        match engine {
            Engine::Interpreter => false,
            Engine::Jit => true,
            Engine::Auto => self.auto_jit,
        }
    }

    /// Runs the tape on inputs `head ++ tail` and parameters `p`: outputs
    /// from `output_split` on land in `out_tail`, the first ones are handed to
    /// `read`. Lengths must match the splits (callers check them, with their
    /// own names for the buffers). No allocation once this thread is warm.
    ///
    /// Inlined, with `run_in`, so that the large `Result` never crosses a call:
    /// returned through memory it costs store-forwarding stalls that show on
    /// gradients taking tens of nanoseconds.
    #[inline(always)]
    pub fn run<R>(
        &self,
        engine: Engine,
        (head, tail): (&[f64], &[f64]),
        p: &[f64],
        out_tail: &mut [f64],
        read: impl FnOnce(&[f64]) -> R,
    ) -> Result<R> {
        let n_tail_out = self.tape.n_outputs() - self.output_split;
        if head.len() != self.input_split || head.len() + tail.len() != self.tape.n_inputs() {
            check_len("inputs", head.len() + tail.len(), self.tape.n_inputs())?;
            check_len("leading inputs", head.len(), self.input_split)?;
        }
        check_len("outputs", out_tail.len(), n_tail_out)?;
        let code = if self.uses_jit(engine) {
            // Matching on a reference, not a `Result` this large, keeps tiny calls short.
            match self.compiled.get() {
                Some(Ok(code)) => Some(code),
                _ => Some(self.compiled()?),
            }
        } else {
            None
        };
        if let Some(code) = code {
            if self.output_split <= STACK_HEAD && code.scratch_len() == 0 {
                // No scratch, and the leading outputs (a gradient's value,
                // a VJP's values) fit on the stack: skip the thread-local,
                // a third of a 20 ns gradient.
                let mut buffer = [0.0; STACK_HEAD];
                let out_head = &mut buffer[..self.output_split];
                let status = code.call_parts(head, tail, p, out_head, out_tail, &mut Vec::new());
                if status != 0 {
                    let total_out = self.output_split + out_tail.len();
                    code.result(status, head.len() + tail.len(), p.len(), total_out)?;
                }
                return Ok(read(out_head));
            }
        }
        WORKSPACE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut ws) => self.run_in(&mut ws, code, (head, tail), p, out_tail, read),
            Err(_) => self.run_in(
                &mut Workspace::default(),
                code,
                (head, tail),
                p,
                out_tail,
                read,
            ),
        })
    }

    #[inline(always)]
    fn run_in<R>(
        &self,
        ws: &mut Workspace,
        code: Option<&JitFunction>,
        (head, tail): (&[f64], &[f64]),
        p: &[f64],
        out_tail: &mut [f64],
        read: impl FnOnce(&[f64]) -> R,
    ) -> Result<R> {
        let Workspace {
            values,
            scratch,
            inputs,
            outputs,
        } = ws;
        let split = self.output_split;
        match code {
            Some(code) => {
                outputs.resize(split, 0.0);
                let status = code.call_parts(head, tail, p, outputs, out_tail, scratch);
                if status != 0 {
                    let total_out = split + out_tail.len();
                    code.result(status, head.len() + tail.len(), p.len(), total_out)?;
                }
                Ok(read(outputs))
            }
            None => {
                inputs.clear();
                inputs.extend_from_slice(head);
                inputs.extend_from_slice(tail);
                outputs.resize(self.tape.n_outputs(), 0.0);
                interp::eval_verified(&self.tape, inputs, p, values, outputs, self.flush)?;
                out_tail.copy_from_slice(&outputs[split..]);
                Ok(read(&outputs[..split]))
            }
        }
    }
}
