//! The parser of the text format (the syntax is in the parent module's docs).
//!
//! Lines are read in order; a `loop` line opens a body block, parsed
//! recursively up to its `}` line. Within a line a [`Cursor`] reads the
//! pieces one by one, so every error names the column where the malformed
//! piece starts (or the end of the line, when something is missing). The
//! parsed tape is verified at the end, and a verification error is placed
//! at its line through the [`LineMap`] recorded while parsing.

use super::cursor::{Cursor, Line, Pos};
use crate::error::{Error, Result};
use crate::ir::{Access, Checkpoint, Inst, Loop, Op, Output, Shape, Tape};

/// Deepest nesting of loop bodies the parser accepts (a guard against
/// exhausting the stack on hostile input; the verifier, the interpreter
/// and the printer recurse too).
pub const MAX_NESTING: usize = 64;

/// Where each piece of one tape (the root or a body) was written, to place
/// a verification error.
#[derive(Default)]
struct LineMap {
    /// The header (the root) or the `loop` line (a body).
    header: Pos,
    /// Each instruction's line.
    insts: Vec<Pos>,
    /// The `outputs` line.
    outputs: Pos,
    /// The maps of the loop bodies, in loop-table order.
    loops: Vec<LineMap>,
    /// Whether this is a loop body.
    body: bool,
}

impl LineMap {
    /// Where the verifier's error `message` about instruction `instr` of
    /// this tape belongs. Errors in a loop body come as "in the body of loop
    /// K (its instruction %J): ..." (see `verify.rs`); they are followed down.
    fn locate(&self, instr: u32, message: &str) -> Pos {
        if let Some((k, j, inner)) = body_error(message) {
            if let Some(body) = self.loops.get(k) {
                return body.locate(j, inner);
            }
        }
        match self.insts.get(instr as usize) {
            Some(&pos) => pos,
            // Past the instructions: the outputs, or a loop's own fields.
            None if self.body
                && !message.starts_with("output ")
                && !message.starts_with("the body must output") =>
            {
                self.header
            }
            None => self.outputs,
        }
    }
}

/// Splits "in the body of loop K (its instruction %J): rest".
fn body_error(message: &str) -> Option<(usize, u32, &str)> {
    let rest = message.strip_prefix("in the body of loop ")?;
    let (k, rest) = rest.split_once(" (its instruction %")?;
    let (j, rest) = rest.split_once("): ")?;
    Some((k.parse().ok()?, j.parse().ok()?, rest))
}

/// The whole text, line by line.
struct Parser<'a> {
    lines: Vec<Line<'a>>,
    next: usize,
    /// The line number reported for "the text ended too early".
    last_line: usize,
    n_params: usize,
    /// Trip counts of the loops whose bodies are open, outermost first.
    trips: Vec<u32>,
    /// The fields of a `} checkpoint ... {` line closing a body: the loop
    /// being parsed is checkpointed, its step block comes next.
    after_body: Option<Checkpoint>,
}

/// Farthest element an access may address: the verifier's bound (it
/// refuses `|offset|` or `|stride × trips|` above it).
const ADDRESS_LIMIT: u64 = 1 << 40;

/// Parses the text form and verifies the result.
pub(super) fn parse(s: &str) -> Result<Tape> {
    let lines: Vec<Line<'_>> = s
        .lines()
        .enumerate()
        .map(|(i, raw)| Line {
            number: i + 1,
            code: raw.split(';').next().unwrap_or("").trim_end(),
        })
        .filter(|l| !l.code.trim().is_empty())
        .collect();
    let Some(&first) = lines.first() else {
        return Err(Error::Parse {
            line: 1,
            column: 1,
            message: "empty text: expected `tape inputs=N params=M`".into(),
        });
    };
    let mut c = Cursor::new(first);
    let header = c.pos();
    if c.word() != "tape" {
        return Err(c.error(header.1, "expected `tape inputs=N params=M`"));
    }
    let n_inputs = c.key_count("inputs")?;
    let n_params = c.key_count("params")?;
    let mut arrays = Vec::new();
    if c.peek().is_some() {
        c.skip_blanks();
        let start = c.at;
        if !(c.word() == "arrays" && c.eat("=")) {
            c.at = start;
            let column = c.column();
            let found = c.next_text();
            return Err(c.error(
                column,
                format!("unexpected `{found}` (the header may end with `arrays=[...]`)"),
            ));
        }
        arrays = c.list(|c| c.integer("an array length"))?;
    }
    c.end()?;
    let mut parser = Parser {
        lines,
        next: 1,
        last_line: s.lines().count().max(1),
        n_params,
        trips: Vec::new(),
        after_body: None,
    };
    let (insts, outputs, loops, checkpoints, mut map) = parser.block(None)?;
    map.header = header;
    let tape = Tape::from_structured(insts, outputs, n_inputs, n_params, loops, arrays)
        .with_checkpoints(checkpoints);
    tape.verify().map_err(|e| match e {
        Error::InvalidTape { instr, message } => {
            let (line, column) = map.locate(instr, &message);
            Error::Parse {
                line,
                column,
                message,
            }
        }
        other => other,
    })?;
    Ok(tape)
}

/// The parts of one parsed tape.
type Block = (Vec<Inst>, Vec<Output>, Vec<Loop>, Vec<Checkpoint>, LineMap);

impl<'a> Parser<'a> {
    /// Parses instructions up to and including the `outputs` line, and for
    /// a body (`opened` names its `loop` line) the closing `}`.
    fn block(&mut self, opened: Option<Pos>) -> Result<Block> {
        let mut insts = Vec::new();
        let mut loops = Vec::new();
        let mut checkpoints = Vec::new();
        let mut map = LineMap {
            body: opened.is_some(),
            header: opened.unwrap_or_default(),
            ..LineMap::default()
        };
        let outputs = loop {
            let Some(&line) = self.lines.get(self.next) else {
                return Err(Error::Parse {
                    line: self.last_line,
                    column: 1,
                    message: match opened {
                        None => "missing the final `outputs %a %b ...` line".into(),
                        Some((l, _)) => format!(
                            "the body of the loop at line {l} is not closed: expected its `outputs` line and `}}`"
                        ),
                    },
                });
            };
            self.next += 1;
            let mut c = Cursor::new(line);
            let pos = c.pos();
            match c.peek() {
                Some('%') => {}
                Some('}') => {
                    return Err(c.error(
                        pos.1,
                        match opened {
                            Some(_) => "a loop body needs its `outputs` line before `}`",
                            None => "unexpected `}`: no loop body is open",
                        },
                    ))
                }
                _ => {
                    let start = c.at;
                    if c.word() == "outputs" {
                        map.outputs = pos;
                        break outputs(&mut c)?;
                    }
                    c.at = start;
                    return Err(c.expected("an instruction `%N = ...` or the `outputs` line"));
                }
            }
            let index = c.value()?;
            if index as usize != insts.len() {
                return Err(c.error(
                    pos.1,
                    format!(
                        "expected %{} (instructions are numbered in order)",
                        insts.len()
                    ),
                ));
            }
            c.expect("=")?;
            let column = c.column();
            let name = c.word();
            let op = match Op::from_name(name) {
                Some(op) => op,
                None if name.is_empty() => return Err(c.expected("an op name")),
                None => return Err(c.error(column, format!("unknown op `{name}`"))),
            };
            let inst = match op.shape() {
                Shape::Leaf => {
                    let index = c.integer("an index")?;
                    if op == Op::Input {
                        Inst::input(index)
                    } else {
                        Inst::param(index)
                    }
                }
                Shape::Const => {
                    let column = c.column();
                    let text = c.take(|ch| !ch.is_whitespace());
                    let k = text.parse().map_err(|_| {
                        c.error(column, format!("expected a float, found `{text}`"))
                    })?;
                    Inst::constant(k)
                }
                Shape::Values(n) => {
                    let mut args = [0; 3];
                    for slot in args.iter_mut().take(n) {
                        *slot = c.value()?;
                    }
                    Inst { op, args }
                }
                Shape::ValueImm => {
                    let v = c.value()?;
                    match op {
                        Op::Guard => {
                            let start = c.at;
                            let expect = match c.word() {
                                "true" => true,
                                "false" => false,
                                _ => {
                                    c.at = start;
                                    return Err(c.expected("true or false"));
                                }
                            };
                            Inst::guard(v, expect)
                        }
                        Op::LoopOut => Inst::loop_out(v, c.integer("a carried value number")?),
                        _ => Inst::powi(v, c.integer("an i32")?),
                    }
                }
                Shape::ArrayElem => {
                    let (array, index) = c.element()?;
                    Inst::elem(array, index)
                }
                Shape::ArrayStore => {
                    let (array, index) = c.element()?;
                    Inst::store(array, index, c.value()?)
                }
                Shape::Loop => {
                    let (lp, body_map) = self.loop_entry(&mut c, pos, column)?;
                    loops.push(lp);
                    map.loops.push(body_map);
                    let mut inst = Inst::run_loop(loops.len() as u32 - 1);
                    if let Some(mut cp) = self.after_body.take() {
                        let (insts, outputs, loops, _, _) = self.block(Some(pos))?;
                        let n_inputs = cp.init.len() + cp.invariants.len() + cp.reads.len();
                        cp.step = Tape::from_structured(
                            insts,
                            outputs,
                            n_inputs,
                            self.n_params,
                            loops,
                            Vec::new(),
                        );
                        checkpoints.push(cp);
                        inst.args[1] = checkpoints.len() as u32;
                    }
                    inst
                }
            };
            if op != Op::Loop {
                c.end()?;
            }
            insts.push(inst);
            map.insts.push(pos);
        };
        match opened {
            None => {
                if let Some(&line) = self.lines.get(self.next) {
                    let mut c = Cursor::new(line);
                    let column = c.column();
                    return Err(c.error(column, "nothing may follow the `outputs` line"));
                }
            }
            Some((l, _)) => {
                let Some(&line) = self.lines.get(self.next) else {
                    return Err(Error::Parse {
                        line: self.last_line,
                        column: 1,
                        message: format!(
                            "the body of the loop at line {l} is not closed: expected `}}`"
                        ),
                    });
                };
                self.next += 1;
                let mut c = Cursor::new(line);
                if !c.eat("}") {
                    return Err(c.expected(&format!(
                        "`}}` closing the body of the loop at line {l} (the body's `outputs` line is its last)"
                    )));
                }
                let start = c.at;
                if c.word() == "checkpoint" {
                    self.after_body = Some(checkpoint_fields(&mut c)?);
                } else {
                    c.at = start;
                    c.end()?;
                }
            }
        }
        Ok((insts, outputs, loops, checkpoints, map))
    }

    /// The rest of a `loop` line (fields and `{`), then the body block.
    /// `at` is where the line starts, `op` the column of `loop`.
    fn loop_entry(&mut self, c: &mut Cursor<'a>, at: Pos, op: usize) -> Result<(Loop, LineMap)> {
        let mut trips = None;
        let mut init = None;
        let mut invariants = None;
        let mut reads = None;
        let mut writes = None;
        while !c.eat("{") {
            let column = c.column();
            let start = c.at;
            let name = c.word();
            let duplicate = match name {
                "trips" => trips.is_some(),
                "init" => init.is_some(),
                "invariants" => invariants.is_some(),
                "reads" => reads.is_some(),
                "writes" => writes.is_some(),
                _ => {
                    c.at = start;
                    return Err(c.expected(
                        "a loop field (trips=, init=, invariants=, reads=, writes=) or `{`",
                    ));
                }
            };
            if duplicate {
                return Err(c.error(column, format!("`{name}=` is given twice")));
            }
            c.expect("=")?;
            match name {
                "trips" => trips = Some(c.integer("a trip count")?),
                "init" => init = Some(c.list(Cursor::value)?),
                "invariants" => invariants = Some(c.list(Cursor::value)?),
                // Each with its column, for the check below.
                "reads" => reads = Some(c.list(|c| Ok((c.column(), c.access()?)))?),
                _ => writes = Some(c.list(|c| Ok((c.column(), c.write()?)))?),
            }
        }
        c.end()?;
        let trips = trips.ok_or_else(|| c.error(op, "a loop needs `trips=N`"))?;
        let (init, invariants) = (init.unwrap_or_default(), invariants.unwrap_or_default());
        let (reads, writes) = (reads.unwrap_or_default(), writes.unwrap_or_default());
        if self.trips.len() >= MAX_NESTING {
            return Err(c.error(op, format!("loops nest deeper than {MAX_NESTING} levels")));
        }
        self.trips.push(trips);
        // Far beyond any buffer: refused here, as the verifier would, before
        // its arithmetic on them can overflow.
        let accesses = (reads.iter().map(|(at, a)| (*at, a)))
            .chain(writes.iter().map(|(at, w)| (*at, &w.access)));
        for (column, a) in accesses {
            let far = a.offset.unsigned_abs() > ADDRESS_LIMIT
                || (a.strides.iter().zip(&self.trips))
                    .any(|(s, &n)| s.unsigned_abs().saturating_mul(n as u64) > ADDRESS_LIMIT);
            if far {
                return Err(c.error(
                    column,
                    "the access reaches beyond element 2^40 (|offset| and |stride * trips| must stay within it)",
                ));
            }
        }
        let reads: Vec<_> = reads.into_iter().map(|(_, a)| a).collect();
        let writes: Vec<_> = writes.into_iter().map(|(_, w)| w).collect();
        let (insts, outputs, loops, checkpoints, map) = self.block(Some(at))?;
        self.trips.pop();
        // A checkpoint's states are body inputs after the reads.
        let states = self.after_body.as_ref().map_or(0, |cp| cp.states.len());
        let n_inputs = init.len() + invariants.len() + reads.len() + states;
        let body =
            Tape::from_structured(insts, outputs, n_inputs, self.n_params, loops, Vec::new())
                .with_checkpoints(checkpoints);
        let lp = Loop {
            trips,
            body,
            init,
            invariants,
            reads,
            writes,
        };
        Ok((lp, map))
    }
}

/// The rest of a `} checkpoint snapshots=S init=[..] invariants=[..]
/// reads=[..] states=[..] {` line (the step, parsed next, is left empty).
fn checkpoint_fields(c: &mut Cursor<'_>) -> Result<Checkpoint> {
    let (mut snapshots, mut init, mut invariants, mut reads, mut states) =
        (None, None, None, None, None);
    while !c.eat("{") {
        let column = c.column();
        let start = c.at;
        let name = c.word();
        let duplicate = match name {
            "snapshots" => snapshots.is_some(),
            "init" => init.is_some(),
            "invariants" => invariants.is_some(),
            "reads" => reads.is_some(),
            "states" => states.is_some(),
            _ => {
                c.at = start;
                return Err(c.expected(
                    "a checkpoint field (snapshots=, init=, invariants=, reads=, states=) or `{`",
                ));
            }
        };
        if duplicate {
            return Err(c.error(column, format!("`{name}=` is given twice")));
        }
        c.expect("=")?;
        match name {
            "snapshots" => snapshots = Some(c.integer("a number of snapshots")?),
            "init" => init = Some(c.list(Cursor::value)?),
            "invariants" => invariants = Some(c.list(Cursor::value)?),
            "reads" => reads = Some(c.list(|c| c.access())?),
            _ => states = Some(c.list(|c| c.integer("a carried value number"))?),
        }
    }
    c.end()?;
    let snapshots = snapshots.ok_or_else(|| c.error(1, "a checkpoint needs `snapshots=S`"))?;
    let (init, invariants): (Vec<u32>, Vec<u32>) =
        (init.unwrap_or_default(), invariants.unwrap_or_default());
    let reads: Vec<Access> = reads.unwrap_or_default();
    if reads.iter().any(|a| {
        a.offset.unsigned_abs() > ADDRESS_LIMIT
            || a.strides.iter().any(|s| s.unsigned_abs() > ADDRESS_LIMIT)
    }) {
        return Err(c.error(1, "a checkpoint read reaches beyond element 2^40"));
    }
    Ok(Checkpoint {
        snapshots,
        step: Tape::default(),
        init,
        invariants,
        reads,
        states: states.unwrap_or_default(),
    })
}

/// The items of an `outputs` line: values `%3` and array slices `a0[2..7]`.
fn outputs(c: &mut Cursor<'_>) -> Result<Vec<Output>> {
    let mut outputs = Vec::new();
    while let Some(ch) = c.peek() {
        if ch == '%' {
            outputs.push(Output::Value(c.value()?));
            continue;
        }
        let array = c.array("an output: a value like %3 or an array slice like a0[2..7]")?;
        c.expect("[")?;
        let start: u32 = c.integer("the first element of the slice")?;
        c.expect("..")?;
        let column = c.column();
        let end: u32 = c.integer("the end of the slice")?;
        if end < start {
            return Err(c.error(
                column,
                format!("the slice ends at {end}, before its start {start}"),
            ));
        }
        c.expect("]")?;
        outputs.push(Output::Slice {
            array,
            start,
            len: end - start,
        });
    }
    Ok(outputs)
}
