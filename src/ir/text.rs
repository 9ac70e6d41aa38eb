//! The text format: `Display` prints a tape, `FromStr` parses it back
//! exactly (`tape.to_string().parse::<Tape>() == Ok(tape)` for every
//! verified tape).
//!
//! # Straight-line tapes
//!
//! ```text
//! tape inputs=2 params=0
//! %0 = input 0
//! %1 = input 1
//! %2 = const 100.0
//! %3 = mul %0 %1
//! %4 = lt %3 %2
//! %5 = guard %4 true
//! %6 = powi %3 -2
//! outputs %6
//! ```
//!
//! One instruction per line, numbered in order: `%N = op operands...`,
//! operands are values `%k`, immediates are plain numbers (`input 0`,
//! `powi %3 -2`, `guard %4 true`). Constants print with Rust's shortest
//! round-trip form (`{:?}`), so they parse back bit for bit (`inf`, `-0.0`
//! included); a NaN prints as `NaN` or `-NaN` (its sign is kept, its payload
//! is not: see [`Inst::constant`]). The last line lists the outputs.
//! `;` starts a comment; blank lines and indentation are ignored.
//!
//! # Loops and arrays
//!
//! ```
//! use tapejit::{interp, Tape};
//!
//! // Running sums of p * x[i] stored backwards into array a0; the total
//! // comes out of the loop as its carried value.
//! let text = "\
//! tape inputs=3 params=1 arrays=[3]
//! %0 = param 0
//! %1 = const -0.0
//! %2 = loop trips=3 init=[%1] invariants=[%0] reads=[input[0 + 1*i0]] writes=[store a0[2 + -1*i0]] {
//!     %0 = input 0
//!     %1 = input 1
//!     %2 = input 2
//!     %3 = mul %1 %2
//!     %4 = add %0 %3
//!     outputs %4 %4
//! }
//! %3 = loopout %2 0
//! %4 = elem a0[2]
//! %5 = store a0[1] %4
//! outputs %3 a0[0..3]
//! ";
//! let tape: Tape = text.parse()?;
//! assert_eq!(tape.to_string(), text); // the printed form is this one
//! let mut out = [0.0; 4];
//! interp::eval(&tape, &[1.0, 2.0, 3.0], &[10.0], &mut Vec::new(), &mut out)?;
//! assert_eq!(out, [60.0, 60.0, 10.0, 10.0]);
//! # Ok::<(), tapejit::Error>(())
//! ```
//!
//! - **Arrays** are declared in the root header, `arrays=[10, 3]` (lengths of
//!   `a0`, `a1`; the header of a tape without arrays has no `arrays=`).
//! - **`%N = loop trips=T init=[...] invariants=[...] reads=[...] writes=[...] {`**
//!   runs the body block that follows `T` times. The fields may come in any
//!   order, each at most once; `trips` is required, an empty list may be
//!   left out (and is, when printed). `init` lists the initial carried
//!   values and `invariants` the captured values, both values of the
//!   enclosing tape.
//! - **Accesses** `input[OFFSET + S0*i0 + S1*i1 ...]`, `param[...]` or
//!   `aK[...]` address element `OFFSET + Σ Sd*id`, where `i0` is the
//!   iteration number of the outermost enclosing loop and the last term
//!   belongs to the loop the access is on: one term per enclosing loop, in
//!   that order. A negative stride prints as `+ -1*i1` (`- 1*i1` parses too).
//!   A write is `store ACCESS` or `add ACCESS` (accumulates).
//! - **The body** follows on the next lines (printed indented by four spaces
//!   per level) and ends with its own `outputs` line (next carried values,
//!   then the written values, in the order of `writes`) and a line holding
//!   `}`. Its instructions are numbered from `%0` again; its inputs are its
//!   slots, `input k` for `k` in carried ++ invariants ++ reads; `param i`
//!   is the root's parameter `i`. Bodies nest, up to [`MAX_NESTING`] levels.
//! - **A checkpointed loop** (root tapes only, see
//!   [`Checkpoint`](crate::ir::Checkpoint)) closes its body with
//!   `} checkpoint snapshots=S init=[...] invariants=[...] reads=[...] states=[j, ...] {`
//!   instead of `}`, followed by the forward step's block and `}`; the
//!   body then has one more input per entry of `states`, after its reads.
//! - `loopout %L k` is the final value of carried value `k` of loop `%L`;
//!   `elem aK[j]` reads an element, `store aK[j] %v` writes one; an output
//!   `aK[s..e]` lists elements `s` to `e - 1` of an array.
//!
//! # Errors
//!
//! Every syntax error is an [`Error::Parse`](crate::Error::Parse) with the
//! line and column of the malformed piece. The parsed tape is then verified
//! ([`Tape::verify`]); a verification error becomes a parse error at the line
//! of the offending instruction, inside loop bodies too (an error of a
//! loop's fields or accesses points at its `loop` line, one of its body's
//! outputs at the body's `outputs` line). An access reaching beyond element
//! 2^40 (`|offset|` or `|stride * trips|` above it, which the verifier
//! refuses too) is refused at its column before verification.

mod cursor;
mod parse;
#[cfg(test)]
mod tests;

pub use parse::MAX_NESTING;

use super::{Access, Buffer, Inst, Op, Output, Shape, Tape, WriteMode};
use crate::error::{Error, Result};
use std::fmt::{self, Write as _};
use std::str::FromStr;

/// The right-hand side of an instruction, e.g. `mul %0 %1` (a loop prints
/// only its table index here; [`Tape`]'s `Display` prints it whole).
pub(super) fn inst_expr(inst: &Inst) -> String {
    let mut s = inst.op.name().to_string();
    match inst.op.shape() {
        Shape::Leaf => write!(s, " {}", inst.args[0]),
        // `{:?}` prints every NaN as `NaN`; the sign of a NaN is observable.
        Shape::Const if inst.const_value().is_nan() && inst.const_value().is_sign_negative() => {
            write!(s, " -NaN")
        }
        Shape::Const => write!(s, " {:?}", inst.const_value()),
        Shape::Values(n) => inst.args[..n].iter().try_for_each(|v| write!(s, " %{v}")),
        Shape::ValueImm if inst.op == Op::Guard => {
            write!(s, " %{} {}", inst.args[0], inst.guard_expect())
        }
        Shape::ValueImm if inst.op == Op::LoopOut => {
            write!(s, " %{} {}", inst.args[0], inst.args[1])
        }
        Shape::ValueImm => write!(s, " %{} {}", inst.args[0], inst.powi_exponent()),
        Shape::Loop => write!(s, " {}", inst.args[0]),
        Shape::ArrayElem => write!(s, " a{}[{}]", inst.args[0], inst.args[1]),
        Shape::ArrayStore => write!(s, " a{}[{}] %{}", inst.args[0], inst.args[1], inst.args[2]),
    }
    .expect("writing to a String cannot fail");
    s
}

/// An access, e.g. `a2[0 + 3*i0 + -1*i1]`.
fn access(a: &Access) -> String {
    let mut s = match a.buffer {
        Buffer::Input => "input".to_string(),
        Buffer::Param => "param".to_string(),
        Buffer::Array(k) => format!("a{k}"),
    };
    write!(s, "[{}", a.offset).expect("writing to a String cannot fail");
    for (d, stride) in a.strides.iter().enumerate() {
        write!(s, " + {stride}*i{d}").expect("writing to a String cannot fail");
    }
    s.push(']');
    s
}

/// `name=[a, b, c]`, or nothing for an empty list.
fn field(f: &mut fmt::Formatter<'_>, name: &str, items: &[String]) -> fmt::Result {
    if items.is_empty() {
        return Ok(());
    }
    write!(f, " {name}=[{}]", items.join(", "))
}

/// Prints the instructions and the outputs line of `tape`, nested bodies
/// indented one more level.
fn write_block(f: &mut fmt::Formatter<'_>, tape: &Tape, depth: usize) -> fmt::Result {
    let pad = "    ".repeat(depth);
    for (i, inst) in tape.insts().iter().enumerate() {
        let entry = (inst.op == Op::Loop)
            .then(|| tape.loops().get(inst.args[0] as usize))
            .flatten();
        let Some(lp) = entry else {
            writeln!(f, "{pad}%{i} = {}", inst_expr(inst))?;
            continue;
        };
        write!(f, "{pad}%{i} = loop trips={}", lp.trips)?;
        let values = |vs: &[u32]| vs.iter().map(|v| format!("%{v}")).collect::<Vec<_>>();
        field(f, "init", &values(&lp.init))?;
        field(f, "invariants", &values(&lp.invariants))?;
        field(f, "reads", &lp.reads.iter().map(access).collect::<Vec<_>>())?;
        let writes: Vec<String> = lp
            .writes
            .iter()
            .map(|w| {
                let mode = match w.mode {
                    WriteMode::Store => "store",
                    WriteMode::Add => "add",
                };
                format!("{mode} {}", access(&w.access))
            })
            .collect();
        field(f, "writes", &writes)?;
        writeln!(f, " {{")?;
        write_block(f, &lp.body, depth + 1)?;
        match tape.checkpoint_of(inst) {
            None => writeln!(f, "{pad}}}")?,
            Some(cp) => {
                write!(f, "{pad}}} checkpoint snapshots={}", cp.snapshots)?;
                field(f, "init", &values(&cp.init))?;
                field(f, "invariants", &values(&cp.invariants))?;
                field(f, "reads", &cp.reads.iter().map(access).collect::<Vec<_>>())?;
                let states: Vec<String> = cp.states.iter().map(u32::to_string).collect();
                field(f, "states", &states)?;
                writeln!(f, " {{")?;
                write_block(f, &cp.step, depth + 1)?;
                writeln!(f, "{pad}}}")?;
            }
        }
    }
    write!(f, "{pad}outputs")?;
    for o in tape.outputs() {
        match *o {
            Output::Value(v) => write!(f, " %{v}")?,
            Output::Slice { array, start, len } => {
                write!(f, " a{array}[{start}..{}]", start as u64 + len as u64)?
            }
        }
    }
    writeln!(f)
}

impl fmt::Display for Tape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tape inputs={} params={}",
            self.n_inputs(),
            self.n_params()
        )?;
        if !self.arrays().is_empty() {
            let lens: Vec<String> = self.arrays().iter().map(u32::to_string).collect();
            write!(f, " arrays=[{}]", lens.join(", "))?;
        }
        writeln!(f)?;
        write_block(f, self, 0)
    }
}

impl FromStr for Tape {
    type Err = Error;

    /// Parses the text form and verifies the result; errors carry line and column.
    fn from_str(s: &str) -> Result<Tape> {
        parse::parse(s)
    }
}
