//! Rebuilding a level with its chosen segments rolled into loops.

use super::classify::{Arg, Mat, Template, Unit};
use super::level::{remap, remap_loop, remap_outputs, Ctx, FastMap, Level};
use super::nest;
use crate::ir::{Access, Buffer, Inst, Loop, Op, Tape, Value, Write, WriteMode};
use crate::opt::{dce, rewrite};

/// The level tape with every template (in tape order, disjoint) rolled.
pub(super) fn build(level: &Level<'_>, chosen: &[Template], ctx: &mut Ctx<'_>) -> Tape {
    let old = level.tape;
    let mut b = Builder {
        insts: Vec::with_capacity(old.len()),
        loops: Vec::new(),
        map: vec![Value::MAX; old.len()],
    };
    let mut pos = 0;
    for t in chosen {
        for p in pos..t.a {
            b.copy(old, p);
        }
        b.roll(level, t, ctx);
        pos = t.end();
    }
    for p in pos..old.len() {
        b.copy(old, p);
    }
    let outputs = remap_outputs(old.outputs(), &b.map);
    let arrays = if ctx.depth == 0 {
        ctx.shared.arrays.clone()
    } else {
        Vec::new()
    };
    Tape::from_structured(
        b.insts,
        outputs,
        old.n_inputs(),
        old.n_params(),
        b.loops,
        arrays,
    )
}

struct Builder {
    insts: Vec<Inst>,
    loops: Vec<Loop>,
    map: Vec<Value>,
}

impl Builder {
    fn push(&mut self, inst: Inst) -> Value {
        self.insts.push(inst);
        self.insts.len() as Value - 1
    }

    fn push_loop(&mut self, lp: Loop) -> Value {
        self.loops.push(lp);
        self.push(Inst::run_loop(self.loops.len() as u32 - 1))
    }

    /// Copies instruction `p` of `old`.
    fn copy(&mut self, old: &Tape, p: usize) {
        let inst = &old.insts()[p];
        self.map[p] = if inst.op == Op::Loop {
            self.push_loop(remap_loop(old.loop_of(inst), &self.map))
        } else {
            self.push(remap(inst, &self.map))
        };
    }

    /// Emits the loop of template `t` and recovers the values used after it.
    fn roll(&mut self, level: &Level<'_>, t: &Template, ctx: &mut Ctx<'_>) {
        let depth = ctx.depth;
        let mut writes = Vec::new();
        for _ in &t.writes {
            let array = ctx.shared.new_array(t.trips as u32);
            let mut strides = vec![0; depth];
            strides.push(1);
            writes.push(Write {
                access: Access {
                    buffer: Buffer::Array(array),
                    offset: 0,
                    strides,
                },
                mode: WriteMode::Store,
            });
        }
        let body = body(level, t, depth);
        // What the body's slots hold, for rerolling inside it.
        let mut slot_addr: Vec<Option<Access>> = vec![None; t.carried.len()];
        for &v in &t.invariants {
            let new = &self.insts[self.map[v as usize] as usize];
            // An array element is final only after its writer.
            let written_after = |a: &Access| match a.buffer {
                Buffer::Array(x) => level.writer.get(&x).is_some_and(|&w| w >= v),
                _ => false,
            };
            slot_addr.push(ctx.addr_of(new).filter(|a| !written_after(a)).map(|mut a| {
                a.strides.push(0);
                a
            }));
        }
        slot_addr.extend(t.reads.iter().cloned().map(Some));
        let body = {
            let mut inner = Ctx {
                depth: depth + 1,
                slot_addr,
                shared: &mut *ctx.shared,
            };
            super::reroll_level(&body, &mut inner)
        };
        // Inner loops may read directly what a slot held: drop unused slots.
        let (body, keep) = prune_slots(&rewrite::deep(dce::dce, &body), t.carried.len());
        let n_carried = t.carried.len();
        let kept = |k: usize| keep[n_carried + k];
        let lp = Loop {
            trips: t.trips as u32,
            body,
            init: t
                .carried
                .iter()
                .map(|&(_, v)| self.map[v as usize])
                .collect(),
            invariants: (t.invariants.iter().enumerate())
                .filter(|&(k, _)| kept(k))
                .map(|(_, &v)| self.map[v as usize])
                .collect(),
            reads: (t.reads.iter().enumerate())
                .filter(|&(k, _)| kept(t.invariants.len() + k))
                .map(|(_, r)| r.clone())
                .collect(),
            writes: writes.clone(),
        };
        let l = self.push_loop(lp);
        for &(j, k, how) in &t.plan {
            let inst = match how {
                Mat::Out(c) => Inst::loop_out(l, c),
                Mat::Write(w) => {
                    let Buffer::Array(x) = writes[w as usize].access.buffer else {
                        unreachable!("writes go to arrays")
                    };
                    Inst::elem(x, k)
                }
                Mat::Fresh(x, e) => Inst::elem(x, e),
            };
            let v = self.push(inst);
            self.map[t.a + k as usize * t.d + j as usize] = v;
        }
    }
}

/// The loop body of template `t` (at nesting depth `depth + 1`).
fn body(level: &Level<'_>, t: &Template, depth: usize) -> Tape {
    let old = level.tape;
    let n_carried = t.carried.len() as u32;
    let n_inv = t.invariants.len() as u32;
    let slots = t.carried.len() + t.invariants.len() + t.reads.len();
    let mut body = Tape::new(slots, old.n_params());
    for s in 0..slots {
        body.push(Inst::input(s as u32));
    }
    let mut consts: FastMap<Value, Value> = FastMap::default();
    for arg in &t.args {
        if let Arg::Const(v) = *arg {
            consts
                .entry(v)
                .or_insert_with(|| body.push(old.insts()[v as usize]));
        }
    }
    let mut bv: Vec<Value> = Vec::with_capacity(t.d);
    let value = |bv: &[Value], arg: Arg| match arg {
        Arg::Intra(j) => bv[j as usize],
        Arg::Carried(c) => c,
        Arg::Invariant(c) => n_carried + c,
        Arg::Read(c) => n_carried + n_inv + c,
        Arg::Const(v) => consts[&v],
    };
    for j in 0..t.d {
        let inst = &old.insts()[t.a + j];
        let args = t.args_of(j);
        let v = match &t.units[j] {
            Unit::Read(c) => n_carried + n_inv + c,
            Unit::Elem => body.push(*inst),
            Unit::Loop { strides, .. } => {
                let mut lp = old.loop_of(inst).clone();
                let n_init = lp.init.len();
                for (k, v) in lp.init.iter_mut().chain(&mut lp.invariants).enumerate() {
                    *v = value(&bv, args[k]);
                }
                debug_assert_eq!(args.len(), n_init + lp.invariants.len());
                let mut m = 0;
                nest::for_each_access_mut(&mut lp, &mut |a: &mut Access| {
                    a.strides.insert(depth, strides[m]);
                    m += 1;
                });
                body.push_loop(lp)
            }
            Unit::Inst => {
                let mut new = *inst;
                match inst.op {
                    Op::Store => unreachable!("stores are barriers"),
                    _ => {
                        for (slot, &arg) in new.args.iter_mut().zip(args) {
                            *slot = value(&bv, arg);
                        }
                    }
                }
                body.push(new)
            }
        };
        bv.push(v);
    }
    for &(j, _) in &t.carried {
        body.push_output(bv[j as usize]);
    }
    for &j in &t.writes {
        body.push_output(bv[j as usize]);
    }
    body
}

/// Removes the invariant and read slots (those after the first
/// `n_carried`) that no `input` instruction of `body` reads; returns the
/// new body and which slots were kept.
fn prune_slots(body: &Tape, n_carried: usize) -> (Tape, Vec<bool>) {
    let n = body.n_inputs();
    let mut keep = vec![false; n];
    keep[..n_carried].fill(true);
    for inst in body.insts() {
        if inst.op == Op::Input {
            keep[inst.args[0] as usize] = true;
        }
    }
    let mut new_slot = vec![0u32; n];
    let mut next = 0;
    for s in 0..n {
        new_slot[s] = next;
        next += keep[s] as u32;
    }
    let (mut insts, outputs, loops, arrays) = body.clone().into_parts();
    for inst in &mut insts {
        if inst.op == Op::Input {
            inst.args[0] = new_slot[inst.args[0] as usize];
        }
    }
    let pruned = Tape::from_structured(
        insts,
        outputs,
        next as usize,
        body.n_params(),
        loops,
        arrays,
    );
    (pruned, keep)
}
