//! Dead-code elimination.

use super::rewrite::{rewrite, Action};
use crate::ir::{Op, Tape};

/// Removes every instruction that no output and no guard needs. Guards are
/// effects (they can stop evaluation) and always stay.
pub fn dce(tape: &Tape) -> Tape {
    let insts = tape.insts();
    let mut live = vec![false; insts.len()];
    for &v in tape.outputs() {
        live[v as usize] = true;
    }
    for (i, inst) in insts.iter().enumerate().rev() {
        if inst.op == Op::Guard {
            live[i] = true;
        }
        if live[i] {
            for &v in inst.operands() {
                live[v as usize] = true;
            }
        }
    }
    let mut i = 0;
    rewrite(tape, |_, inst| {
        let keep = live[i];
        i += 1;
        if keep {
            Action::Keep(inst)
        } else {
            Action::Drop
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_outputs_guards_and_their_operands() {
        let t: Tape = "tape inputs=2 params=0
%0 = input 0
%1 = input 1
%2 = sin %0
%3 = cos %1
%4 = lt %0 %1
%5 = guard %4 true
%6 = exp %3
outputs %2
"
        .parse()
        .unwrap();
        let d = dce(&t);
        let ops: Vec<&str> = d.insts().iter().map(|i| i.op.name()).collect();
        assert_eq!(ops, ["input", "input", "sin", "lt", "guard"], "{d}");
        d.verify().unwrap();
    }
}
