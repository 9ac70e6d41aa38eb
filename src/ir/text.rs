//! The text format: `Display` prints a tape, `FromStr` parses it back exactly.
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
//! Constants print with Rust's shortest round-trip form (`{:?}`), so they
//! parse back bit for bit (`inf`, `-0.0` included); a NaN prints as `NaN` or
//! `-NaN` (its sign is kept, its payload is not: see [`Inst::constant`]).
//! `;` starts a comment.

use super::{Inst, Op, Output, Shape, Tape, Value};
use crate::error::{Error, Result};
use std::fmt::{self, Write as _};
use std::str::FromStr;

/// The right-hand side of an instruction, e.g. `mul %0 %1`.
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
        Shape::ValueImm => write!(s, " %{} {}", inst.args[0], inst.powi_exponent()),
        Shape::Loop => write!(s, " {}", inst.args[0]),
        Shape::ArrayElem => write!(s, " a{}[{}]", inst.args[0], inst.args[1]),
        Shape::ArrayStore => write!(s, " a{}[{}] %{}", inst.args[0], inst.args[1], inst.args[2]),
    }
    .expect("writing to a String cannot fail");
    s
}

impl fmt::Display for Tape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "tape inputs={} params={}",
            self.n_inputs(),
            self.n_params()
        )?;
        for (i, inst) in self.insts().iter().enumerate() {
            writeln!(f, "%{i} = {}", inst_expr(inst))?;
        }
        write!(f, "outputs")?;
        for o in self.outputs() {
            match *o {
                Output::Value(v) => write!(f, " %{v}")?,
                Output::Slice { array, start, len } => {
                    write!(f, " a{array}[{start}..{}]", start as u64 + len as u64)?
                }
            }
        }
        writeln!(f)
    }
}

/// A whitespace-separated token and its 1-based column.
struct Token<'a> {
    text: &'a str,
    column: usize,
}

struct Line<'a> {
    number: usize,
    tokens: Vec<Token<'a>>,
    end_column: usize,
}

impl<'a> Line<'a> {
    fn split(number: usize, raw: &'a str) -> Line<'a> {
        let code = raw.split(';').next().unwrap_or("");
        let mut tokens = Vec::new();
        let mut start = None;
        for (i, ch) in code
            .char_indices()
            .chain(std::iter::once((code.len(), ' ')))
        {
            match (ch.is_whitespace(), start) {
                (true, Some(s)) => {
                    tokens.push(Token {
                        text: &code[s..i],
                        column: code[..s].chars().count() + 1,
                    });
                    start = None;
                }
                (false, None) => start = Some(i),
                _ => {}
            }
        }
        Line {
            number,
            tokens,
            end_column: code.trim_end().chars().count() + 1,
        }
    }

    fn error(&self, column: usize, message: impl Into<String>) -> Error {
        Error::Parse {
            line: self.number,
            column,
            message: message.into(),
        }
    }

    /// Token `k`, or an error at the end of the line saying what was expected.
    fn token(&self, k: usize, expected: &str) -> Result<&Token<'a>> {
        self.tokens
            .get(k)
            .ok_or_else(|| self.error(self.end_column, format!("expected {expected}")))
    }

    fn no_more(&self, k: usize) -> Result<()> {
        match self.tokens.get(k) {
            Some(t) => Err(self.error(t.column, format!("unexpected `{}`", t.text))),
            None => Ok(()),
        }
    }

    fn number<T: FromStr>(&self, k: usize, what: &str) -> Result<T> {
        let t = self.token(k, what)?;
        t.text
            .parse()
            .map_err(|_| self.error(t.column, format!("expected {what}, found `{}`", t.text)))
    }

    fn value(&self, k: usize) -> Result<Value> {
        let t = self.token(k, "a value like %3")?;
        t.text
            .strip_prefix('%')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                self.error(
                    t.column,
                    format!("expected a value like %3, found `{}`", t.text),
                )
            })
    }

    fn key_count(&self, k: usize, key: &str) -> Result<usize> {
        let t = self.token(k, &format!("{key}=N"))?;
        t.text
            .strip_prefix(key)
            .and_then(|r| r.strip_prefix('='))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| self.error(t.column, format!("expected {key}=N, found `{}`", t.text)))
    }
}

impl FromStr for Tape {
    type Err = Error;

    /// Parses the text form and verifies the result; errors carry line and column.
    fn from_str(s: &str) -> Result<Tape> {
        let mut lines = s
            .lines()
            .enumerate()
            .map(|(i, raw)| Line::split(i + 1, raw))
            .filter(|l| !l.tokens.is_empty());
        let header = lines.next().ok_or(Error::Parse {
            line: 1,
            column: 1,
            message: "empty text: expected `tape inputs=N params=M`".into(),
        })?;
        let first = header.token(0, "`tape`")?;
        if first.text != "tape" {
            return Err(header.error(first.column, "expected `tape inputs=N params=M`"));
        }
        let n_inputs = header.key_count(1, "inputs")?;
        let n_params = header.key_count(2, "params")?;
        header.no_more(3)?;

        let mut insts = Vec::new();
        let mut inst_lines = Vec::new();
        let mut outputs = None;
        for line in lines {
            let head = &line.tokens[0];
            if outputs.is_some() {
                return Err(line.error(head.column, "nothing may follow the `outputs` line"));
            }
            if head.text == "outputs" {
                let outs = (1..line.tokens.len())
                    .map(|k| line.value(k))
                    .collect::<Result<Vec<_>>>()?;
                outputs = Some(outs);
                continue;
            }
            let index = line.value(0)?;
            if index as usize != insts.len() {
                return Err(line.error(
                    head.column,
                    format!(
                        "expected %{} (instructions are numbered in order)",
                        insts.len()
                    ),
                ));
            }
            let eq = line.token(1, "`=`")?;
            if eq.text != "=" {
                return Err(line.error(eq.column, format!("expected `=`, found `{}`", eq.text)));
            }
            let name = line.token(2, "an op name")?;
            let op = Op::from_name(name.text)
                .ok_or_else(|| line.error(name.column, format!("unknown op `{}`", name.text)))?;
            let (inst, used) = match op.shape() {
                Shape::Leaf => {
                    let index = line.number(3, "an index")?;
                    let inst = if op == Op::Input {
                        Inst::input(index)
                    } else {
                        Inst::param(index)
                    };
                    (inst, 4)
                }
                Shape::Const => (Inst::constant(line.number(3, "a float")?), 4),
                Shape::Values(n) => {
                    let mut args = [0; 3];
                    for (k, slot) in args.iter_mut().take(n).enumerate() {
                        *slot = line.value(3 + k)?;
                    }
                    (Inst { op, args }, 3 + n)
                }
                Shape::ValueImm if op == Op::Guard => (
                    Inst::guard(line.value(3)?, line.number(4, "true or false")?),
                    5,
                ),
                Shape::ValueImm => (Inst::powi(line.value(3)?, line.number(4, "an i32")?), 5),
                Shape::Loop | Shape::ArrayElem | Shape::ArrayStore => {
                    return Err(line.error(
                        name.column,
                        "loops and arrays are not supported by the text parser yet",
                    ))
                }
            };
            line.no_more(used)?;
            insts.push(inst);
            inst_lines.push(line.number);
        }
        let outputs = outputs.ok_or(Error::Parse {
            line: s.lines().count().max(1),
            column: 1,
            message: "missing the final `outputs %a %b ...` line".into(),
        })?;
        let tape = Tape::from_parts(insts, outputs, n_inputs, n_params);
        tape.verify().map_err(|e| match e {
            Error::InvalidTape { instr, message } => Error::Parse {
                line: inst_lines
                    .get(instr as usize)
                    .copied()
                    .unwrap_or_else(|| s.lines().count()),
                column: 1,
                message,
            },
            other => other,
        })?;
        Ok(tape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "tape inputs=2 params=1
%0 = input 0
%1 = input 1
%2 = param 0
%3 = const 100.0
%4 = mul %0 %1
%5 = lt %4 %3
%6 = guard %5 true
%7 = powi %4 -2
%8 = mul_add %7 %2 %3
%9 = const -0.0
%10 = const NaN
%11 = const inf
%12 = const 5e-324
outputs %8 %4
";

    #[test]
    fn round_trips_exactly() {
        let tape: Tape = SAMPLE.parse().unwrap();
        assert_eq!(tape.to_string(), SAMPLE);
        assert_eq!(tape.to_string().parse::<Tape>().unwrap(), tape);
        assert_eq!(tape.insts()[9].const_value().to_bits(), (-0.0f64).to_bits());
        assert_eq!(tape.insts()[12].const_value(), 5e-324);
    }

    #[test]
    fn comments_and_blank_lines_are_ignored() {
        let text = "; a comment\n\ntape inputs=1 params=0 ; header\n%0 = input 0 ; x\noutputs %0\n";
        let tape: Tape = text.parse().unwrap();
        assert_eq!(tape.len(), 1);
    }

    fn error_at(text: &str) -> (usize, usize, String) {
        match text.parse::<Tape>() {
            Err(Error::Parse {
                line,
                column,
                message,
            }) => (line, column, message),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn errors_carry_line_and_column() {
        let (l, c, m) =
            error_at("tape inputs=1 params=0\n%0 = input 0\n%1 = frob %0\noutputs %1\n");
        assert_eq!((l, c), (3, 6));
        assert!(m.contains("unknown op `frob`"));

        let (l, c, m) = error_at("tape inputs=1 params=0\n%0 = input 0\n%1 = add %0\noutputs %1\n");
        assert_eq!((l, c), (3, 12));
        assert!(m.contains("expected a value"));

        let (l, c, _) = error_at("tape inputs=1 params=0\n%0 = input 0\n%2 = sin %0\n");
        assert_eq!((l, c), (3, 1));

        let (l, c, m) = error_at("tape inputs=x params=0\n");
        assert_eq!((l, c), (1, 6));
        assert!(m.contains("inputs=N"));

        let (l, _, m) = error_at("tape inputs=1 params=0\n%0 = input 0\n%1 = sin %3\noutputs %1\n");
        assert_eq!(l, 3);
        assert!(m.contains("not defined before"));

        let (_, _, m) = error_at("tape inputs=1 params=0\n%0 = input 0\n");
        assert!(m.contains("outputs"));

        let (l, c, _) = error_at("tape inputs=1 params=0\n%0 = const 1.0x\noutputs %0\n");
        assert_eq!((l, c), (2, 12));
    }
}
