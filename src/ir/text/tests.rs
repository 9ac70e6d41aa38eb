use super::*;
use crate::ir::{Loop, Write};

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

/// Every structural piece: arrays, a loop with every field (negative,
/// zero and positive strides, reads of inputs, params and arrays, store and
/// add writes), a nested loop, guards, `elem` and `store` in a body and at
/// the root, `loopout`, slices among the outputs.
const LOOPS: &str = "tape inputs=4 params=2 arrays=[6, 5]
%0 = input 0
%1 = param 1
%2 = const 0.5
%3 = loop trips=3 init=[%0, %2] invariants=[%1] reads=[input[1 + 1*i0], param[0 + 0*i0]] writes=[store a0[4 + -2*i0], add a1[0 + 0*i0]] {
    %0 = input 0
    %1 = input 1
    %2 = input 2
    %3 = input 3
    %4 = input 4
    %5 = mul %0 %3
    %6 = add %5 %4
    %7 = lt %6 %2
    %8 = guard %7 true
    %9 = loop trips=2 init=[%6] reads=[a0[0 + 0*i0 + 1*i1]] writes=[store a1[1 + 1*i0 + 1*i1]] {
        %0 = input 0
        %1 = input 1
        %2 = sin %1
        %3 = add %0 %2
        outputs %3 %2
    }
    %10 = loopout %9 0
    %11 = elem a1[3]
    %12 = store a0[5] %11
    %13 = param 0
    outputs %10 %1 %6 %13
}
%4 = loopout %3 1
%5 = elem a0[0]
%6 = store a1[3] %5
%7 = loop trips=1 {
    outputs
}
outputs %4 a0[0..6] %5 a1[1..3] a1[2..2]
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
fn loops_and_arrays_round_trip_exactly() {
    let tape: Tape = LOOPS.parse().unwrap();
    assert_eq!(tape.to_string(), LOOPS);
    assert_eq!(tape.to_string().parse::<Tape>().unwrap(), tape);
    assert_eq!(tape.arrays(), [6, 5]);
    assert_eq!(tape.n_loops(), 3);
    let lp = &tape.loops()[0];
    assert_eq!(
        (lp.trips, lp.body.n_inputs(), lp.body.n_params()),
        (3, 5, 2)
    );
    assert_eq!(lp.init, [0, 2]);
    assert_eq!(lp.invariants, [1]);
    assert_eq!(
        lp.writes[0],
        Write {
            access: Access {
                buffer: Buffer::Array(0),
                offset: 4,
                strides: vec![-2],
            },
            mode: WriteMode::Store,
        }
    );
    assert_eq!(lp.writes[1].mode, WriteMode::Add);
    let inner: &Loop = &lp.body.loops()[0];
    assert_eq!(inner.reads[0].strides, [0, 1]);
    assert_eq!(inner.body.n_inputs(), 2);
    assert_eq!(
        tape.outputs()[3],
        Output::Slice {
            array: 1,
            start: 1,
            len: 2
        }
    );
    assert!(tape.outputs()[4].is_empty());
}

#[test]
fn loop_fields_parse_in_any_order_and_print_canonically() {
    let text = "tape inputs=3 params=0 arrays=[]
%0 = input 0
%1 = loop writes=[] reads=[input[2 - 1*i0]] init=[] invariants=[%0] trips=3 {
  %0 = input 1
  %1 = input 0
  %2 = mul %0 %1
  outputs
}
outputs %0
";
    let tape: Tape = text.parse().unwrap();
    let canonical = "tape inputs=3 params=0
%0 = input 0
%1 = loop trips=3 invariants=[%0] reads=[input[2 + -1*i0]] {
    %0 = input 1
    %1 = input 0
    %2 = mul %0 %1
    outputs
}
outputs %0
";
    assert_eq!(tape.to_string(), canonical);
    assert_eq!(canonical.parse::<Tape>().unwrap(), tape);
}

#[test]
fn comments_and_blank_lines_are_ignored() {
    let text = "; a comment\n\ntape inputs=1 params=0 ; header\n%0 = input 0 ; x\noutputs %0\n";
    let tape: Tape = text.parse().unwrap();
    assert_eq!(tape.len(), 1);
    let text = "tape inputs=1 params=0 arrays=[2] ; two\n%0 = input 0\n\
                %1 = loop trips=2 init=[%0] { ; the body\n\n  ; nothing\n  %0 = input 0\n  outputs %0 ; next\n} ; done\n\
                outputs %0 a0[0..2]\n";
    let tape: Tape = text.parse().unwrap();
    assert_eq!(tape.loops()[0].body.len(), 1);
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

/// Each case: the text, where the error is, and what its message says.
fn assert_errors(cases: &[(String, (usize, usize), &str)]) {
    for (text, at, needle) in cases {
        let (line, column, message) = error_at(text);
        assert_eq!(
            (line, column),
            *at,
            "error {message:?} is at the wrong place in\n{text}"
        );
        assert!(
            message.contains(needle),
            "{message:?} should mention {needle:?}\n{text}"
        );
    }
}

#[test]
fn errors_carry_line_and_column() {
    let (l, c, m) = error_at("tape inputs=1 params=0\n%0 = input 0\n%1 = frob %0\noutputs %1\n");
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

    let (l, c, m) = error_at("tape inputs=1 params=0\n%0 = input 0\n%1 = guard %0 yes\noutputs\n");
    assert_eq!((l, c), (3, 15));
    assert!(m.contains("true or false"));

    let (l, c, m) = error_at("tape inputs=1 params=0\n%0 = input 0\noutputs %0\n%1 = sin %0\n");
    assert_eq!((l, c), (4, 1));
    assert!(m.contains("nothing may follow"));
}

#[test]
fn malformed_headers_arrays_elements_and_slices_are_located() {
    let tape = |header: &str, rest: &str| format!("{header}\n%0 = input 0\n{rest}");
    let ok_header = "tape inputs=2 params=1 arrays=[4]";
    let cases = [
        (
            tape("tape inputs=2 params=1 arrays=[4, x]", "outputs\n"),
            (1, 35),
            "an array length",
        ),
        (
            tape("tape inputs=2 params=1 arrays=4", "outputs\n"),
            (1, 31),
            "`[`",
        ),
        (
            tape("tape inputs=2 params=1 array=[4]", "outputs\n"),
            (1, 24),
            "unexpected `array=[4]` (the header may end with `arrays=[...]`)",
        ),
        (
            tape("tape inputs=2 params=1 arrays=[4 5]", "outputs\n"),
            (1, 34),
            "`,` or `]`",
        ),
        (
            tape("tape inputs=2 params=1 arrays=[4] x", "outputs\n"),
            (1, 35),
            "unexpected `x`",
        ),
        (
            tape(ok_header, "%1 = elem b0[1]\noutputs\n"),
            (3, 11),
            "an array element",
        ),
        (
            tape(ok_header, "%1 = elem a0[x]\noutputs\n"),
            (3, 14),
            "an element index",
        ),
        (tape(ok_header, "%1 = elem a0[1\noutputs\n"), (3, 15), "`]`"),
        (
            tape(ok_header, "%1 = elem a0 [1]] \noutputs\n"),
            (3, 17),
            "unexpected `]`",
        ),
        (
            tape(ok_header, "%1 = store a0[1]\noutputs\n"),
            (3, 17),
            "a value like %3",
        ),
        (
            tape(ok_header, "%1 = store a0[1] 0\noutputs\n"),
            (3, 18),
            "a value like %3, found `0`",
        ),
        (
            tape(ok_header, "%1 = loopout %0\noutputs\n"),
            (3, 16),
            "a carried value number",
        ),
        (
            tape(ok_header, "outputs %0 a0[3..1]\n"),
            (3, 18),
            "before its start",
        ),
        (tape(ok_header, "outputs a0[1]\n"), (3, 13), "`..`"),
        (
            tape(ok_header, "outputs a0[1..x]\n"),
            (3, 15),
            "the end of the slice",
        ),
        (
            tape(ok_header, "outputs b0[1..2]\n"),
            (3, 9),
            "an array slice like a0[2..7]",
        ),
        (
            tape(ok_header, "%1 = sin % 0\noutputs\n"),
            (3, 10),
            "a value like %3",
        ),
        (tape(ok_header, "%1 =\noutputs\n"), (3, 5), "an op name"),
        (
            tape(ok_header, "x = sin %0\noutputs\n"),
            (3, 1),
            "an instruction `%N = ...`",
        ),
    ];
    assert_errors(&cases);
}

#[test]
fn malformed_loops_are_located() {
    let tape = |lines: &str| format!("tape inputs=2 params=1 arrays=[4]\n%0 = input 0\n{lines}");
    let body = "\n  %0 = input 0\n  outputs %0\n}\noutputs\n";
    let with = |head: &str| tape(&format!("{head}{body}"));
    let cases = [
        (with("%1 = loop init=[%0] {"), (3, 6), "trips=N"),
        (
            with("%1 = loop trips=2 steps=3 init=[%0] {"),
            (3, 19),
            "a loop field",
        ),
        (
            with("%1 = loop trips=2 trips=3 init=[%0] {"),
            (3, 19),
            "`trips=` is given twice",
        ),
        (
            with("%1 = loop trips=x init=[%0] {"),
            (3, 17),
            "a trip count",
        ),
        (with("%1 = loop trips=2 init [%0] {"), (3, 24), "`=`"),
        (
            with("%1 = loop trips=2 init=[%0 %0] {"),
            (3, 28),
            "`,` or `]`",
        ),
        (
            with("%1 = loop trips=2 init=[%0, x] {"),
            (3, 29),
            "a value like %3",
        ),
        (
            with("%1 = loop trips=2 init=[%0] reads=[inpt[0 + 1*i0]] {"),
            (3, 36),
            "`input`, `param` or an array",
        ),
        (
            with("%1 = loop trips=2 init=[%0] reads=[input[0 + 1*j0]] {"),
            (3, 48),
            "`i0`",
        ),
        (
            with("%1 = loop trips=2 init=[%0] reads=[input[0 1*i0]] {"),
            (3, 44),
            "`+ STRIDE*iN` or `]`",
        ),
        (
            with("%1 = loop trips=2 init=[%0] reads=[input[0 + 1 i0]] {"),
            (3, 48),
            "`*`",
        ),
        (
            with("%1 = loop trips=2 init=[%0] reads=[input[0 + x*i0]] {"),
            (3, 46),
            "a stride",
        ),
        (
            with("%1 = loop trips=2 init=[%0] reads=[input[x + 1*i0]] {"),
            (3, 42),
            "an offset",
        ),
        (
            with("%1 = loop trips=2 init=[%0] reads=[input[0 - -9223372036854775808*i0]] {"),
            (3, 46),
            "out of range",
        ),
        (
            with("%1 = loop trips=2 init=[%0] writes=[put a0[0 + 1*i0]] {"),
            (3, 37),
            "`store` or `add`",
        ),
        (with("%1 = loop trips=2 init=[%0]"), (3, 28), "or `{`"),
        (
            with("%1 = loop trips=2 init=[%0] { %0"),
            (3, 31),
            "unexpected `%0`",
        ),
        (
            tape("%1 = loop trips=2 init=[%0] {\n  %0 = input 0\n  outputs %0\n"),
            (5, 1),
            "the body of the loop at line 3 is not closed",
        ),
        (
            tape("%1 = loop trips=2 init=[%0] {\n  %0 = input 0\n"),
            (4, 1),
            "not closed",
        ),
        (
            tape("%1 = loop trips=2 init=[%0] {\n  %0 = input 0\n  }\noutputs\n"),
            (5, 3),
            "needs its `outputs` line",
        ),
        (
            tape("%1 = loop trips=2 init=[%0] {\n  outputs %0\n  %0 = input 0\n}\noutputs\n"),
            (5, 3),
            "`}` closing the body of the loop at line 3",
        ),
        (
            tape("%1 = loop trips=2 init=[%0] {\n  outputs %0\n} x\noutputs\n"),
            (5, 3),
            "unexpected `x`",
        ),
        (tape("}\noutputs\n"), (3, 1), "no loop body is open"),
    ];
    assert_errors(&cases);
}

#[test]
fn verification_errors_point_at_their_line_inside_bodies() {
    let tape = |lines: &str| format!("tape inputs=2 params=1 arrays=[4]\n%0 = input 0\n{lines}");
    let cases = [
        // An operand of a body instruction.
        (
            tape("%1 = loop trips=2 init=[%0] {\n    %0 = input 0\n    %1 = sin %5\n    outputs %1\n}\noutputs\n"),
            (5, 5),
            "in the body of loop 0 (its instruction %1): operand %5 is not defined",
        ),
        // A body input beyond its slots.
        (
            tape("%1 = loop trips=2 init=[%0] {\n    %0 = input 1\n    outputs %0\n}\noutputs\n"),
            (4, 5),
            "input 1 out of range",
        ),
        // An access leaving its buffer: the loop line.
        (
            tape("%1 = loop trips=3 reads=[input[0 + 1*i0]] {\n    outputs\n}\noutputs\n"),
            (3, 1),
            "leaves the buffer",
        ),
        (
            tape("%1 = loop trips=0 {\n    outputs\n}\noutputs\n"),
            (3, 1),
            "at least one iteration",
        ),
        (
            tape("%1 = loop trips=2 init=[%7] {\n    %0 = input 0\n    outputs %0\n}\noutputs\n"),
            (3, 1),
            "operand %7",
        ),
        (
            tape("%1 = loop trips=2 writes=[store input[0 + 0*i0]] {\n    %0 = param 0\n    outputs %0\n}\noutputs\n"),
            (3, 1),
            "loops write only to arrays",
        ),
        // The body's outputs: its `outputs` line.
        (
            tape("%1 = loop trips=2 init=[%0] {\n    %0 = input 0\n    outputs %0 %0\n}\noutputs\n"),
            (5, 5),
            "the body must output 1 values",
        ),
        (
            tape("%1 = loop trips=2 init=[%0] {\n    %0 = input 0\n    outputs %9\n}\noutputs\n"),
            (5, 5),
            "output 0 names %9",
        ),
        (
            tape("%1 = loop trips=2 init=[%0] {\n    %0 = input 0\n    outputs a0[0..1]\n}\noutputs\n"),
            (5, 5),
            "the body must output 1 values",
        ),
        // Two levels down, and a stride missing at depth two.
        (
            tape("%1 = loop trips=2 {\n    %0 = loop trips=2 {\n        %0 = param 0\n        %1 = exp %3\n        outputs\n    }\n    outputs\n}\noutputs\n"),
            (6, 9),
            "in the body of loop 0 (its instruction %0): in the body of loop 0 (its instruction %1): operand %3",
        ),
        (
            tape("%1 = loop trips=2 {\n    %0 = param 0\n    %1 = loop trips=2 reads=[input[0 + 1*i0]] {\n        outputs\n    }\n    outputs\n}\noutputs\n"),
            (5, 5),
            "needs 2 strides, it has 1",
        ),
        // Root instructions and outputs.
        (
            tape("%1 = elem a3[0]\noutputs %1\n"),
            (3, 1),
            "array 3 does not exist",
        ),
        (
            tape("%1 = store a0[4] %0\noutputs\n"),
            (3, 1),
            "element 4 is outside array 0",
        ),
        (
            tape("%1 = loopout %0 0\noutputs %1\n"),
            (3, 1),
            "loopout must name an earlier loop",
        ),
        (
            tape("%1 = loop trips=1 {\n    outputs\n}\n%2 = loopout %1 0\noutputs %2\n"),
            (6, 1),
            "has 0 carried values",
        ),
        (tape("outputs %0 a0[2..5]\n"), (3, 1), "outside it"),
        (
            tape("%1 = loop trips=1 {\n    outputs\n}\noutputs %1\n"),
            (6, 1),
            "names loop %1, which has no value",
        ),
    ];
    assert_errors(&cases);
}

/// `levels` loops nested in each other, each running once.
fn nested(levels: usize) -> String {
    let mut s = String::from("tape inputs=0 params=0\n");
    for d in 0..levels {
        s += &format!("{}%0 = loop trips=1 {{\n", "    ".repeat(d));
    }
    for d in (0..=levels).rev() {
        s += &format!("{}outputs\n", "    ".repeat(d));
        if d > 0 {
            s += &format!("{}}}\n", "    ".repeat(d - 1));
        }
    }
    s
}

#[test]
fn nesting_is_bounded() {
    // Recursion through the parser, the verifier, the printer and `Drop`
    // stays within a test thread's stack (2 MiB) at the deepest nesting.
    let deepest = nested(MAX_NESTING);
    let tape: Tape = deepest.parse().unwrap();
    assert_eq!(tape.n_loops(), MAX_NESTING);
    assert_eq!(tape.to_string(), deepest);
    let (line, column, message) = error_at(&nested(MAX_NESTING + 1));
    assert_eq!((line, column), (MAX_NESTING + 2, 4 * MAX_NESTING + 6));
    assert!(message.contains("nest deeper"), "{message}");
}

#[test]
fn truncated_or_corrupted_loop_text_never_panics() {
    // Every truncation and many single-character corruptions of LOOPS: an
    // error or a tape that prints and parses back equal, never a panic.
    for (cut, _) in LOOPS.char_indices() {
        if let Ok(t) = LOOPS[..cut].parse::<Tape>() {
            assert_eq!(t.to_string().parse::<Tape>().unwrap(), t);
        }
    }
    let replacements = [
        '{', '}', '[', ']', ',', '*', '+', '-', '%', '.', ' ', '\n', '9', 'a', 'é',
    ];
    for (k, (at, ch)) in LOOPS.char_indices().enumerate() {
        let with = replacements[k % replacements.len()];
        let text = format!("{}{with}{}", &LOOPS[..at], &LOOPS[at + ch.len_utf8()..]);
        if let Ok(t) = text.parse::<Tape>() {
            assert_eq!(t.to_string().parse::<Tape>().unwrap(), t, "{text}");
        }
    }
}

#[test]
fn accesses_far_beyond_any_buffer_are_refused_without_overflow() {
    // The verifier's arithmetic on these would overflow; the parser refuses
    // them first (the verifier refuses them too: beyond 2^40).
    let tape = |head: &str| {
        format!("tape inputs=1 params=0 arrays=[2]\n{head}\n    outputs\n}}\noutputs\n")
    };
    let far = "the access reaches beyond element 2^40";
    let cases = [
        (
            tape("%0 = loop trips=1 reads=[input[0 + -9223372036854775808*i0]] {"),
            (2, 26),
            far,
        ),
        (
            tape("%0 = loop trips=1 reads=[input[-9223372036854775808 + 0*i0]] {"),
            (2, 26),
            far,
        ),
        (
            tape("%0 = loop trips=4294967295 reads=[input[0 + 9223372036854775807*i0]] {"),
            (2, 35),
            far,
        ),
        (
            tape("%0 = loop trips=3 reads=[input[0 + 0*i0]] writes=[store a0[0 + 549755813888*i0]] {"),
            (2, 51),
            far,
        ),
        // Nested: the outer loop's trips count.
        (
            "tape inputs=1 params=0\n%0 = loop trips=4096 {\n    %0 = loop trips=1 reads=[input[0 + 268435457*i0 + 0*i1]] {\n        outputs\n    }\n    outputs\n}\noutputs\n".to_string(),
            (3, 30),
            far,
        ),
        // At the bound itself: the verifier's own error.
        (
            tape("%0 = loop trips=2 reads=[input[0 + 549755813888*i0]] {"),
            (2, 1),
            "leaves the buffer",
        ),
    ];
    assert_errors(&cases);
}
