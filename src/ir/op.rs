//! The instruction set: every op, its arity and its text name.

/// What an instruction computes. Every instruction yields one `f64`
/// (a guard yields nothing usable and may not be an operand).
///
/// Conditions are ordinary values: compares yield `1.0` (true) or `0.0`
/// (false), and [`Op::Select`] treats any non-zero (NaN included) as true.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Op {
    /// Active input `args[0]` (differentiated).
    Input,
    /// Passive parameter `args[0]` (runtime data, not differentiated).
    Param,
    /// The constant whose bits are `args[0] | args[1] << 32`.
    Const,
    /// `-a`
    Neg,
    /// `1 / a`
    Recip,
    /// `a.sqrt()`
    Sqrt,
    /// `a.cbrt()`
    Cbrt,
    /// `a.exp()`
    Exp,
    /// `a.exp2()`
    Exp2,
    /// `a.exp_m1()`
    ExpM1,
    /// `a.ln()`
    Ln,
    /// `a.log2()`
    Log2,
    /// `a.log10()`
    Log10,
    /// `a.ln_1p()`
    Ln1p,
    /// `a.sin()`
    Sin,
    /// `a.cos()`
    Cos,
    /// `a.tan()`
    Tan,
    /// `a.asin()`
    Asin,
    /// `a.acos()`
    Acos,
    /// `a.atan()`
    Atan,
    /// `a.sinh()`
    Sinh,
    /// `a.cosh()`
    Cosh,
    /// `a.tanh()`
    Tanh,
    /// `a.asinh()`
    Asinh,
    /// `a.acosh()`
    Acosh,
    /// `a.atanh()`
    Atanh,
    /// `a.abs()`
    Abs,
    /// `a.signum()` (`±1`, NaN for NaN)
    Signum,
    /// `a.floor()`
    Floor,
    /// `a.ceil()`
    Ceil,
    /// `a.round()` (ties away from zero)
    Round,
    /// `a.trunc()`
    Trunc,
    /// `1` if the sign bit of `a` is set (also for `-0.0` and negative NaN), else `0`.
    SignBit,
    /// The IEEE class of `a` as a number: NaN 0, infinite 1, zero 2, subnormal 3, normal 4.
    Classify,
    /// `a.powi(n)` with the exponent `n = args[1] as i32`.
    PowI,
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `a % b` (Rust's remainder, sign of `a`)
    Rem,
    /// `a.powf(b)`
    PowF,
    /// `a.atan2(b)` (`a` is y, `b` is x)
    Atan2,
    /// `a.hypot(b)`
    Hypot,
    /// `a.min(b)` (a NaN operand is ignored)
    Min,
    /// `a.max(b)` (a NaN operand is ignored)
    Max,
    /// `a.copysign(b)`
    Copysign,
    /// `a < b`
    Lt,
    /// `a <= b`
    Le,
    /// `a == b`
    Eq,
    /// `a != b` (true when either is NaN)
    Ne,
    /// `a` and `b` have the same bits, or both are NaN: the tape's "bitwise equal".
    Same,
    /// `a.mul_add(b, c)`: `a * b + c` with one rounding.
    MulAdd,
    /// `if a != 0 { b } else { c }` (NaN counts as true).
    Select,
    /// Check that condition `args[0]` is `args[1] != 0`; failing stops the evaluation.
    Guard,
    /// Runs loop number `args[0]` of the tape's loop table (see [`crate::ir::Loop`]).
    /// Yields no usable value; its results are read through [`Op::LoopOut`]
    /// and the arrays it writes.
    Loop,
    /// The final value of carried value `args[1]` of the loop instruction `args[0]`.
    LoopOut,
    /// Element `args[1]` of array `args[0]`.
    Elem,
    /// Stores value `args[2]` into element `args[1]` of array `args[0]`. Yields no usable value.
    Store,
}

/// How the three argument slots of an instruction are used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `args[0]` is an input or parameter index.
    Leaf,
    /// `args[0..2]` are the bits of a constant.
    Const,
    /// `args[..n]` are value operands.
    Values(usize),
    /// `args[0]` is a value, `args[1]` an integer immediate (powi exponent,
    /// guard expectation, loop result number).
    ValueImm,
    /// `args[0]` indexes the tape's loop table.
    Loop,
    /// `args[0]` is an array, `args[1]` an element index.
    ArrayElem,
    /// `args[0]` is an array, `args[1]` an element index, `args[2]` a value.
    ArrayStore,
}

/// The structural ops: loops and array access, whose meaning involves the
/// tape's loop table and arrays rather than scalar arithmetic alone.
pub const STRUCTURE_OPS: [Op; 4] = [Op::Loop, Op::LoopOut, Op::Elem, Op::Store];

/// All scalar ops, in declaration order (used by tests, random tapes and the text parser).
pub const ALL_OPS: [Op; 54] = {
    use Op::*;
    [
        Input, Param, Const, Neg, Recip, Sqrt, Cbrt, Exp, Exp2, ExpM1, Ln, Log2, Log10, Ln1p, Sin,
        Cos, Tan, Asin, Acos, Atan, Sinh, Cosh, Tanh, Asinh, Acosh, Atanh, Abs, Signum, Floor,
        Ceil, Round, Trunc, SignBit, Classify, PowI, Add, Sub, Mul, Div, Rem, PowF, Atan2, Hypot,
        Min, Max, Copysign, Lt, Le, Eq, Ne, Same, MulAdd, Select, Guard,
    ]
};

impl Op {
    /// How this op uses its argument slots.
    pub fn shape(self) -> Shape {
        use Op::*;
        match self {
            Input | Param => Shape::Leaf,
            Const => Shape::Const,
            PowI | Guard | LoopOut => Shape::ValueImm,
            Loop => Shape::Loop,
            Elem => Shape::ArrayElem,
            Store => Shape::ArrayStore,
            Add | Sub | Mul | Div | Rem | PowF | Atan2 | Hypot | Min | Max | Copysign | Lt | Le
            | Eq | Ne | Same => Shape::Values(2),
            MulAdd | Select => Shape::Values(3),
            _ => Shape::Values(1),
        }
    }

    /// Number of value operands.
    pub fn arity(self) -> usize {
        match self.shape() {
            Shape::Leaf | Shape::Const | Shape::Loop | Shape::ArrayElem => 0,
            Shape::Values(n) => n,
            Shape::ValueImm => 1,
            Shape::ArrayStore => 1,
        }
    }

    /// Whether the op is a math-library function (tens of nanoseconds, a
    /// call in compiled code) rather than a machine instruction: worth
    /// storing rather than recomputing in a reverse sweep.
    pub fn is_transcendental(self) -> bool {
        use Op::*;
        matches!(
            self,
            Cbrt | Exp
                | Exp2
                | ExpM1
                | Ln
                | Log2
                | Log10
                | Ln1p
                | Sin
                | Cos
                | Tan
                | Asin
                | Acos
                | Atan
                | Sinh
                | Cosh
                | Tanh
                | Asinh
                | Acosh
                | Atanh
                | PowF
                | Atan2
                | Hypot
        )
    }

    /// Whether the instruction yields no usable value (guards, loops, stores).
    pub fn has_no_value(self) -> bool {
        matches!(self, Op::Guard | Op::Loop | Op::Store)
    }

    /// Whether the instruction has an effect beyond its value (so it is
    /// never removed or merged): guards, loops and array stores.
    pub fn has_effect(self) -> bool {
        self.has_no_value()
    }

    /// Whether the result is a condition (`0` or `1`) rather than a real number.
    pub fn is_compare(self) -> bool {
        matches!(self, Op::Lt | Op::Le | Op::Eq | Op::Ne | Op::Same)
    }

    /// The op's name in the text format.
    pub fn name(self) -> &'static str {
        use Op::*;
        match self {
            Input => "input",
            Param => "param",
            Const => "const",
            Neg => "neg",
            Recip => "recip",
            Sqrt => "sqrt",
            Cbrt => "cbrt",
            Exp => "exp",
            Exp2 => "exp2",
            ExpM1 => "exp_m1",
            Ln => "ln",
            Log2 => "log2",
            Log10 => "log10",
            Ln1p => "ln_1p",
            Sin => "sin",
            Cos => "cos",
            Tan => "tan",
            Asin => "asin",
            Acos => "acos",
            Atan => "atan",
            Sinh => "sinh",
            Cosh => "cosh",
            Tanh => "tanh",
            Asinh => "asinh",
            Acosh => "acosh",
            Atanh => "atanh",
            Abs => "abs",
            Signum => "signum",
            Floor => "floor",
            Ceil => "ceil",
            Round => "round",
            Trunc => "trunc",
            SignBit => "signbit",
            Classify => "classify",
            PowI => "powi",
            Add => "add",
            Sub => "sub",
            Mul => "mul",
            Div => "div",
            Rem => "rem",
            PowF => "powf",
            Atan2 => "atan2",
            Hypot => "hypot",
            Min => "min",
            Max => "max",
            Copysign => "copysign",
            Lt => "lt",
            Le => "le",
            Eq => "eq",
            Ne => "ne",
            Same => "same",
            MulAdd => "mul_add",
            Select => "select",
            Guard => "guard",
            Loop => "loop",
            LoopOut => "loopout",
            Elem => "elem",
            Store => "store",
        }
    }

    /// The op with this text name.
    pub fn from_name(name: &str) -> Option<Op> {
        ALL_OPS
            .iter()
            .chain(&STRUCTURE_OPS)
            .copied()
            .find(|op| op.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for op in ALL_OPS {
            assert_eq!(Op::from_name(op.name()), Some(op));
        }
        let mut names: Vec<_> = ALL_OPS.iter().map(|o| o.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL_OPS.len());
        assert_eq!(ALL_OPS.last(), Some(&Op::Guard));
    }
}
