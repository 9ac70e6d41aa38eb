//! Reading one line of the text format piece by piece, with the column of
//! every piece for error messages.

use crate::error::{Error, Result};
use crate::ir::{Access, ArrayId, Buffer, Write, WriteMode};
use std::str::FromStr;

/// A line and a column, both 1-based.
pub(super) type Pos = (usize, usize);

/// One non-blank line: its number and its code (comment and trailing
/// blanks removed).
#[derive(Clone, Copy)]
pub(super) struct Line<'a> {
    pub(super) number: usize,
    pub(super) code: &'a str,
}

/// Reads the pieces of one line from left to right.
#[derive(Clone)]
pub(super) struct Cursor<'a> {
    number: usize,
    code: &'a str,
    /// Byte offset of the next piece (callers may rewind to a saved one).
    pub(super) at: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(line: Line<'a>) -> Cursor<'a> {
        Cursor {
            number: line.number,
            code: line.code,
            at: 0,
        }
    }

    pub(super) fn rest(&self) -> &'a str {
        &self.code[self.at..]
    }

    pub(super) fn skip_blanks(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start().len();
    }

    /// Column of the next piece (after blanks).
    pub(super) fn column(&mut self) -> usize {
        self.skip_blanks();
        self.code[..self.at].chars().count() + 1
    }

    pub(super) fn pos(&mut self) -> Pos {
        (self.number, self.column())
    }

    pub(super) fn error(&self, column: usize, message: impl Into<String>) -> Error {
        Error::Parse {
            line: self.number,
            column,
            message: message.into(),
        }
    }

    /// The next blank-delimited text, for messages.
    pub(super) fn next_text(&mut self) -> &'a str {
        self.skip_blanks();
        let rest = self.rest();
        &rest[..rest.find(char::is_whitespace).unwrap_or(rest.len())]
    }

    /// "expected `what`, found ..." at the next piece, or at the end of the line.
    pub(super) fn expected(&mut self, what: &str) -> Error {
        let column = self.column();
        match self.next_text() {
            "" => self.error(column, format!("expected {what}")),
            found => self.error(column, format!("expected {what}, found `{found}`")),
        }
    }

    pub(super) fn peek(&mut self) -> Option<char> {
        self.skip_blanks();
        self.rest().chars().next()
    }

    /// Consumes `s` if it comes next.
    pub(super) fn eat(&mut self, s: &str) -> bool {
        self.skip_blanks();
        let found = self.rest().starts_with(s);
        if found {
            self.at += s.len();
        }
        found
    }

    pub(super) fn expect(&mut self, s: &str) -> Result<()> {
        if self.eat(s) {
            Ok(())
        } else {
            Err(self.expected(&format!("`{s}`")))
        }
    }

    /// The longest run of characters satisfying `keep` (perhaps empty),
    /// after blanks.
    pub(super) fn take(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        self.skip_blanks();
        self.take_here(keep)
    }

    /// [`Cursor::take`] without skipping blanks first.
    pub(super) fn take_here(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let n = rest.find(|c| !keep(c)).unwrap_or(rest.len());
        self.at += n;
        &rest[..n]
    }

    /// A word: letters, digits and `_`.
    pub(super) fn word(&mut self) -> &'a str {
        self.take(|c| c.is_alphanumeric() || c == '_')
    }

    /// An integer: an optional sign and a word (so that `3x` is read, and
    /// refused, as one piece).
    pub(super) fn integer<T: FromStr>(&mut self, what: &str) -> Result<T> {
        self.skip_blanks();
        let start = self.at;
        if self.rest().starts_with(['-', '+']) {
            self.at += 1;
        }
        let digits = self.take_here(|c| c.is_alphanumeric() || c == '_');
        let text = &self.code[start..self.at];
        // `2.5` is refused whole; `2..7` (a slice) is an integer and `..`.
        let fraction = self.rest().starts_with('.') && !self.rest().starts_with("..");
        match (digits.is_empty() || fraction, text.parse()) {
            (false, Ok(n)) => Ok(n),
            _ => {
                self.at = start;
                Err(self.expected(what))
            }
        }
    }

    /// A value, `%3`.
    pub(super) fn value(&mut self) -> Result<u32> {
        self.skip_blanks();
        let start = self.at;
        if self.eat("%") {
            let digits = self.take_here(|c| c.is_alphanumeric() || c == '_');
            if let Ok(v) = digits.parse() {
                return Ok(v);
            }
        }
        self.at = start;
        Err(self.expected("a value like %3"))
    }

    /// An array name, `a0`.
    pub(super) fn array(&mut self, what: &str) -> Result<ArrayId> {
        self.skip_blanks();
        let start = self.at;
        match array_id(self.word()) {
            Some(k) => Ok(k),
            None => {
                self.at = start;
                Err(self.expected(what))
            }
        }
    }

    /// `key=N` where `N` is a count, refused as a whole (`inputs=x`).
    pub(super) fn key_count(&mut self, key: &str) -> Result<usize> {
        self.skip_blanks();
        let start = self.at;
        if self.word() == key && self.eat("=") {
            if let Ok(n) = self.integer(key) {
                return Ok(n);
            }
        }
        self.at = start;
        Err(self.expected(&format!("{key}=N")))
    }

    /// `[item, item, ...]`.
    pub(super) fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.expect("[")?;
        let mut items = Vec::new();
        if self.eat("]") {
            return Ok(items);
        }
        loop {
            items.push(item(self)?);
            if self.eat("]") {
                return Ok(items);
            }
            if !self.eat(",") {
                return Err(self.expected("`,` or `]`"));
            }
        }
    }

    /// `input[0 + 1*i0]`, `param[...]` or `a2[0 + 3*i0 + -1*i1]`.
    pub(super) fn access(&mut self) -> Result<Access> {
        self.skip_blanks();
        let start = self.at;
        let buffer = match self.word() {
            "input" => Buffer::Input,
            "param" => Buffer::Param,
            w => match array_id(w) {
                Some(k) => Buffer::Array(k),
                None => {
                    self.at = start;
                    return Err(self.expected("`input`, `param` or an array like `a0`"));
                }
            },
        };
        self.expect("[")?;
        let offset = self.integer("an offset")?;
        let mut strides = Vec::new();
        while !self.eat("]") {
            let negative = if self.eat("+") {
                false
            } else if self.eat("-") {
                true
            } else {
                return Err(self.expected("`+ STRIDE*iN` or `]`"));
            };
            let column = self.column();
            let stride: i64 = self.integer("a stride")?;
            let stride = match negative {
                false => stride,
                true => stride
                    .checked_neg()
                    .ok_or_else(|| self.error(column, "the stride is out of range"))?,
            };
            self.expect("*")?;
            let index = format!("i{}", strides.len());
            self.skip_blanks();
            let start = self.at;
            if self.word() != index {
                self.at = start;
                return Err(self.expected(&format!(
                    "`{index}` (one term per enclosing loop, outermost first)"
                )));
            }
            strides.push(stride);
        }
        Ok(Access {
            buffer,
            offset,
            strides,
        })
    }

    /// `store ACCESS` or `add ACCESS`.
    pub(super) fn write(&mut self) -> Result<Write> {
        self.skip_blanks();
        let start = self.at;
        let mode = match self.word() {
            "store" => WriteMode::Store,
            "add" => WriteMode::Add,
            _ => {
                self.at = start;
                return Err(self.expected("`store` or `add`"));
            }
        };
        let access = self.access()?;
        Ok(Write { access, mode })
    }

    /// `aK[j]`: an array and an element index.
    pub(super) fn element(&mut self) -> Result<(ArrayId, u32)> {
        let array = self.array("an array element like `a0[3]`")?;
        self.expect("[")?;
        let index = self.integer("an element index")?;
        self.expect("]")?;
        Ok((array, index))
    }

    /// Nothing may follow.
    pub(super) fn end(&mut self) -> Result<()> {
        if self.peek().is_none() {
            return Ok(());
        }
        let column = self.column();
        let found = self.next_text();
        Err(self.error(column, format!("unexpected `{found}`")))
    }
}

/// The number of an array named `aK`.
pub(super) fn array_id(word: &str) -> Option<ArrayId> {
    let digits = word.strip_prefix('a')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}
