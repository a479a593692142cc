//! The compiled train and eval steps on a device, with the training state resident there.
//!
//! A [`Trainer`] holds the two executables and one device buffer per state input of the train
//! program (parameters, optimizer state, BN running statistics, the step counter). Everything is
//! found by following [`nn::Program::inputs`] / [`nn::Program::outputs`] slot by slot; no position
//! is hard-coded. One [`Trainer::step`] donates every state buffer, keeps the batch and the learning
//! rate, and takes the aliased outputs as the new state: the state never leaves the device, and only
//! the two scalars (loss, correct) are read back. [`Trainer::state`] copies the state to the host
//! (for checkpoints only).

use std::time::{Duration, Instant};

use nn::{ElemType, Program, Slot, SlotKind};
use pjrt::{Arg, Buffer, Client, Executable};

use crate::checkpoint::TensorData;
use crate::{Error, Result};

/// A state tensor on the host, named as in checkpoints.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub name: String,
    pub dims: Vec<usize>,
    pub data: TensorData,
}

/// The checkpoint name of a state slot (ARCHITECTURE.md, "Checkpoints"): parameters and BN buffers
/// by their `spec` name, optimizer state `opt.m.<name>` / `opt.v.<name>`, the counter `step`.
/// `None` for slots that are not state (batch, learning rate, metrics).
pub fn state_name(kind: &SlotKind) -> Option<&str> {
    match kind {
        SlotKind::Param(n) | SlotKind::OptState(n) | SlotKind::Buffer(n) => Some(n),
        SlotKind::Step => Some("step"),
        SlotKind::Images
        | SlotKind::Labels
        | SlotKind::LearningRate
        | SlotKind::Loss
        | SlotKind::Correct
        | SlotKind::Logits
        | SlotKind::Grad(_) => None,
    }
}

/// What one train step returns to the host.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepOut {
    /// Mean loss of the batch.
    pub loss: f32,
    /// Correct top-1 predictions in the batch (before the update).
    pub correct: i32,
}

/// The result of an evaluation pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvalOut {
    /// Sum of per-sample losses over the real (non-padding) samples.
    pub loss_sum: f64,
    pub correct: u64,
    pub total: u64,
}

impl EvalOut {
    pub fn accuracy(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }
    pub fn mean_loss(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.loss_sum / self.total as f64
        }
    }
}

/// Where the batch inputs and the metric outputs of a program are.
#[derive(Clone, Debug)]
struct Io {
    x: usize,
    y: usize,
    lr: Option<usize>,
    loss: usize,
    correct: usize,
}

fn find(slots: &[Slot], want: &SlotKind, what: &str, side: &str) -> Result<usize> {
    let mut hits = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| &s.kind == want)
        .map(|(i, _)| i);
    match (hits.next(), hits.next()) {
        (Some(i), None) => Ok(i),
        (None, _) => Err(Error::Invalid(format!(
            "{what} program: no {want:?} {side}"
        ))),
        (Some(_), Some(_)) => Err(Error::Invalid(format!(
            "{what} program: more than one {want:?} {side}"
        ))),
    }
}

fn io(p: &Program, what: &str, with_lr: bool) -> Result<Io> {
    Ok(Io {
        x: find(&p.inputs, &SlotKind::Images, what, "input")?,
        y: find(&p.inputs, &SlotKind::Labels, what, "input")?,
        lr: if with_lr {
            Some(find(&p.inputs, &SlotKind::LearningRate, what, "input")?)
        } else {
            None
        },
        loss: find(&p.outputs, &SlotKind::Loss, what, "output")?,
        correct: find(&p.outputs, &SlotKind::Correct, what, "output")?,
    })
}

fn dims_i64(d: &[usize]) -> Vec<i64> {
    d.iter().map(|&v| v as i64).collect()
}

/// A program compiled for a client.
pub struct Compiled {
    pub program: Program,
    pub exe: Executable,
    pub compile_time: Duration,
}

impl Compiled {
    pub fn new(client: &Client, program: Program, what: &str) -> Result<Compiled> {
        let t0 = Instant::now();
        let exe = client
            .compile(&program.mlir)
            .map_err(|e| Error::device(format!("compiling the {what} program"), e))?;
        Ok(Compiled {
            program,
            exe,
            compile_time: t0.elapsed(),
        })
    }
}

/// The train and eval executables and the device-resident training state.
pub struct Trainer {
    client: Client,
    train: Compiled,
    eval: Compiled,
    train_io: Io,
    eval_io: Io,
    /// One entry per train-program input: the state buffer for state inputs (`None` while it is
    /// lent to a running step or after a failed one), always `None` for the batch and the rate.
    state: Vec<Option<Buffer>>,
    /// For each state input, the output that becomes its next value.
    next: Vec<Option<usize>>,
    /// For each eval input, the train input whose state buffer it reads (`None` for x, y).
    eval_src: Vec<Option<usize>>,
    /// Set when a step failed after donating the state: the state is gone.
    poisoned: bool,
}

impl Trainer {
    /// Checks that the two programs fit together (every eval state input is a train state input
    /// with the same type; every train state input is aliased to an output of the same kind), then
    /// holds them. The state must be set with [`Trainer::set_state`] before the first step.
    pub fn new(client: Client, train: Compiled, eval: Compiled) -> Result<Trainer> {
        let tp = &train.program;
        let train_io = io(tp, "train", true)?;
        let eval_io = io(&eval.program, "eval", false)?;
        if tp.aliases.len() != tp.inputs.len() {
            return Err(Error::Invalid(format!(
                "train program: {} alias entries for {} inputs",
                tp.aliases.len(),
                tp.inputs.len()
            )));
        }
        let mut next = vec![None; tp.inputs.len()];
        for (i, slot) in tp.inputs.iter().enumerate() {
            let Some(name) = state_name(&slot.kind) else {
                continue;
            };
            let o = tp.aliases[i].ok_or_else(|| {
                Error::Invalid(format!(
                    "train program: state input {i} ({name}) is not donated"
                ))
            })?;
            let out = tp.outputs.get(o).ok_or_else(|| {
                Error::Invalid(format!(
                    "train program: input {i} ({name}) is aliased to missing output {o}"
                ))
            })?;
            if out.kind != slot.kind || out.dims != slot.dims || out.elem != slot.elem {
                return Err(Error::Invalid(format!(
                    "train program: input {i} ({name}) is aliased to output {o} of another kind or shape ({:?})",
                    out.kind
                )));
            }
            next[i] = Some(o);
        }
        let mut eval_src = Vec::with_capacity(eval.program.inputs.len());
        for (j, slot) in eval.program.inputs.iter().enumerate() {
            let src = match state_name(&slot.kind) {
                None => None,
                Some(name) => {
                    let i = tp
                        .inputs
                        .iter()
                        .position(|s| s.kind == slot.kind)
                        .ok_or_else(|| {
                            Error::Invalid(format!(
                                "eval program input {j} ({name}) is not in the train state"
                            ))
                        })?;
                    if tp.inputs[i].dims != slot.dims || tp.inputs[i].elem != slot.elem {
                        return Err(Error::Invalid(format!(
                            "eval program input {j} ({name}) has shape {:?}, the train state {:?}",
                            slot.dims, tp.inputs[i].dims
                        )));
                    }
                    Some(i)
                }
            };
            eval_src.push(src);
        }
        let state = (0..tp.inputs.len()).map(|_| None).collect();
        Ok(Trainer {
            client,
            train,
            eval,
            train_io,
            eval_io,
            state,
            next,
            eval_src,
            poisoned: false,
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn train_program(&self) -> &Program {
        &self.train.program
    }

    pub fn eval_program(&self) -> &Program {
        &self.eval.program
    }

    pub fn compile_times(&self) -> (Duration, Duration) {
        (self.train.compile_time, self.eval.compile_time)
    }

    /// `[B, C, H, W]` of the train program's images.
    pub fn train_x_dims(&self) -> &[usize] {
        &self.train.program.inputs[self.train_io.x].dims
    }

    /// `[B, C, H, W]` of the eval program's images.
    pub fn eval_x_dims(&self) -> &[usize] {
        &self.eval.program.inputs[self.eval_io.x].dims
    }

    /// The state slots in ABI order: `(checkpoint name, slot)`.
    pub fn state_slots(&self) -> Vec<(&str, &Slot)> {
        self.train
            .program
            .inputs
            .iter()
            .filter_map(|s| state_name(&s.kind).map(|n| (n, s)))
            .collect()
    }

    /// Uploads the whole state: `source(name, slot)` gives each state tensor's values, which must
    /// match the slot's element type and element count.
    pub fn set_state(
        &mut self,
        mut source: impl FnMut(&str, &Slot) -> Result<TensorData>,
    ) -> Result<()> {
        for (i, slot) in self.train.program.inputs.iter().enumerate() {
            let Some(name) = state_name(&slot.kind) else {
                continue;
            };
            let data = source(name, slot)?;
            let count: usize = slot.dims.iter().product();
            let dims = dims_i64(&slot.dims);
            let what = || format!("uploading {name}");
            let buf = match (&data, slot.elem) {
                (TensorData::F32(v), ElemType::F32) if v.len() == count => self
                    .client
                    .buffer(v, &dims)
                    .map_err(|e| Error::device(what(), e))?,
                (TensorData::I32(v), ElemType::I32) if v.len() == count => self
                    .client
                    .buffer(v, &dims)
                    .map_err(|e| Error::device(what(), e))?,
                _ => {
                    let (ty, n) = match &data {
                        TensorData::F32(v) => ("F32", v.len()),
                        TensorData::I32(v) => ("I32", v.len()),
                    };
                    return Err(Error::Invalid(format!(
                        "state tensor {name}: got {n} {ty} values, the program needs {:?} {:?} ({count} values)",
                        slot.elem, slot.dims
                    )));
                }
            };
            self.state[i] = Some(buf);
        }
        self.poisoned = false;
        Ok(())
    }

    /// Copies the whole state to the host, in ABI order (for checkpoints).
    pub fn state(&self) -> Result<Vec<HostTensor>> {
        let mut out = Vec::new();
        for (i, slot) in self.train.program.inputs.iter().enumerate() {
            let Some(name) = state_name(&slot.kind) else {
                continue;
            };
            let buf = self.state_buffer(i)?;
            let what = || format!("downloading {name}");
            let data = match slot.elem {
                ElemType::F32 => {
                    TensorData::F32(buf.to_vec::<f32>().map_err(|e| Error::device(what(), e))?)
                }
                ElemType::I32 => {
                    TensorData::I32(buf.to_vec::<i32>().map_err(|e| Error::device(what(), e))?)
                }
            };
            out.push(HostTensor {
                name: name.to_string(),
                dims: slot.dims.clone(),
                data,
            });
        }
        Ok(out)
    }

    fn state_buffer(&self, i: usize) -> Result<&Buffer> {
        self.state[i].as_ref().ok_or_else(|| {
            Error::Invalid(if self.poisoned {
                "the training state was lost when a step failed".into()
            } else {
                "the training state was not uploaded".into()
            })
        })
    }

    /// Uploads a batch for the train program (`x` `[B,C,H,W]` f32, `y` `[B]` i32) and a rate.
    /// Safe to call from any thread (the batch producers do).
    pub fn upload_batch(
        client: &Client,
        x_dims: &[usize],
        x: &[f32],
        y: &[i32],
    ) -> Result<(Buffer, Buffer)> {
        let bx = client
            .buffer(x, &dims_i64(x_dims))
            .map_err(|e| Error::device("uploading a batch", e))?;
        let by = client
            .buffer(y, &[y.len() as i64])
            .map_err(|e| Error::device("uploading labels", e))?;
        Ok((bx, by))
    }

    /// One train step: donates the state, keeps `x`, `y`, `lr`; the aliased outputs become the state.
    pub fn step(&mut self, x: &Buffer, y: &Buffer, lr: &Buffer) -> Result<StepOut> {
        let n = self.train.program.inputs.len();
        let mut args = Vec::with_capacity(n);
        for i in 0..n {
            let arg = if i == self.train_io.x {
                Arg::Keep(x)
            } else if i == self.train_io.y {
                Arg::Keep(y)
            } else if Some(i) == self.train_io.lr {
                Arg::Keep(lr)
            } else {
                self.state_buffer(i)?;
                Arg::Donate(self.state[i].take().expect("checked above"))
            };
            args.push(arg);
        }
        // From here the state is lent to the step; if it fails, it is gone.
        self.poisoned = true;
        let outs = self
            .train
            .exe
            .execute(args)
            .map_err(|e| Error::device("running a train step", e))?;
        let loss = outs[self.train_io.loss]
            .scalar::<f32>()
            .map_err(|e| Error::device("reading the loss", e))?;
        let correct = outs[self.train_io.correct]
            .scalar::<i32>()
            .map_err(|e| Error::device("reading the correct count", e))?;
        let mut outs: Vec<Option<Buffer>> = outs.into_iter().map(Some).collect();
        for i in 0..n {
            if let Some(o) = self.next[i] {
                self.state[i] = outs[o].take();
            }
        }
        self.poisoned = false;
        Ok(StepOut { loss, correct })
    }

    /// Runs the eval program over batches (uploaded `x`, `y`; padding rows labelled −1 are not
    /// counted by the program). `rows` of each item is its count of real samples.
    pub fn evaluate(
        &self,
        batches: impl Iterator<Item = Result<crate::batch::Ready<(Buffer, Buffer)>>>,
    ) -> Result<EvalOut> {
        let mut acc = EvalOut {
            loss_sum: 0.0,
            correct: 0,
            total: 0,
        };
        for item in batches {
            let ready = item?;
            let (x, y) = &ready.value;
            let mut args = Vec::with_capacity(self.eval_src.len());
            for (j, src) in self.eval_src.iter().enumerate() {
                let arg = match src {
                    Some(i) => Arg::Keep(self.state_buffer(*i)?),
                    None if j == self.eval_io.x => Arg::Keep(x),
                    None if j == self.eval_io.y => Arg::Keep(y),
                    None => {
                        return Err(Error::Invalid(format!(
                            "eval program input {j} ({:?}) is neither state nor batch",
                            self.eval.program.inputs[j].kind
                        )))
                    }
                };
                args.push(arg);
            }
            let outs = self
                .eval
                .exe
                .execute(args)
                .map_err(|e| Error::device("running an eval step", e))?;
            let loss = outs[self.eval_io.loss]
                .scalar::<f32>()
                .map_err(|e| Error::device("reading the eval loss", e))?;
            let correct = outs[self.eval_io.correct]
                .scalar::<i32>()
                .map_err(|e| Error::device("reading the eval correct count", e))?;
            acc.loss_sum += loss as f64;
            acc.correct += correct.max(0) as u64;
            acc.total += ready.rows as u64;
        }
        Ok(acc)
    }
}
