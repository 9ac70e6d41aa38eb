//! The one error type of the crate.

/// Everything that can go wrong when tracing, building or evaluating a tape.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A guard recorded at trace time does not hold for these inputs.
    #[error(
        "guard #{guard} (instruction %{instr}) failed: {detail}. The function takes a different \
         branch here than where it was traced; trace it again at this input, or use \
         tapejit::grad, which retraces automatically, or write the branch with Real::select"
    )]
    GuardFailed {
        /// Ordinal of the guard among the tape's guards (0-based).
        guard: usize,
        /// Index of the guard instruction.
        instr: u32,
        /// The condition that was decided at trace time, in words.
        detail: String,
    },
    /// A buffer passed to an evaluation has the wrong length.
    #[error("{what} has length {got}, but this function needs {expected}")]
    WrongLength {
        /// Which argument.
        what: &'static str,
        /// Length the function needs.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// The operation needs something this function does not have (e.g. a gradient of a vector output).
    #[error("{0}")]
    Unsupported(String),
    /// A tape failed verification.
    #[error("invalid tape at instruction %{instr}: {message}")]
    InvalidTape {
        /// Index of the offending instruction (or the tape length for output errors).
        instr: u32,
        /// What is wrong.
        message: String,
    },
    /// IR text could not be parsed.
    #[error("tape text, line {line}, column {column}: {message}")]
    Parse {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What was expected.
        message: String,
    },
    /// The traced function misused the tracer (mixed traces, invalid arguments).
    #[error("while tracing: {0}")]
    Trace(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Checks that a buffer has the length a function needs.
pub(crate) fn check_len(what: &'static str, got: usize, expected: usize) -> Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(Error::WrongLength {
            what,
            expected,
            got,
        })
    }
}
