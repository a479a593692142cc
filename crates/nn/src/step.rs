//! The step programs: the fused train step, eval, predict, the train-mode forward and the gradient
//! program for the JAX oracle. Each is one graph printed as one StableHLO module with a public `@main`
//! whose signature is listed slot by slot in [`Program::inputs`] / [`Program::outputs`].
//!
//! **Devices.** The train, eval and predict programs can be emitted for N devices
//! ([`train_step_on`], [`eval_step_on`], [`predict_on`]): the body is the same graph; only the
//! module's `mhlo.num_partitions = N` and each argument's `mhlo.sharding` change: the images and
//! labels are split along the batch (`{devices=[N,1,1,1]<=[N]}`, `{devices=[N]<=[N]}`), every
//! other argument (parameters, optimizer state, BN statistics, step, learning rate) is
//! `{replicated}`. XLA's SPMD partitioner then runs the global-batch program on N devices: it cuts
//! every batch-sized intermediate, inserts the all-reduces of the gradients, the loss and the
//! correct count, and reduces training-mode batch norm's statistics over the whole global batch
//! (synchronized BN). Results are replicated: every device ends the step with the same state.

use graph::{DType, Graph, TensorType, Value};
use spec::{NetSpec, Op, ParamSpec};

use crate::error::{Context, Error, Result};
use crate::lower::{self, Inputs, Mode};
use crate::{ops, ElemType, Program, Slot, SlotKind};
use spec::{Optimizer, Precision, RunConfig};

/// BN running-statistics momentum: `running ← (1 − m)·running + m·batch`.
pub const BN_MOMENTUM: f64 = 0.1;

/// Signature under construction: the graph, its parameters and the slot list.
struct Builder {
    g: Graph,
    inputs: Vec<Slot>,
    /// Devices the program is partitioned over (1: none).
    devices: usize,
}

impl Builder {
    fn new(spec: &NetSpec, program: &str, devices: usize) -> Builder {
        Builder {
            g: Graph::new(&module_name(spec, program)),
            inputs: Vec::new(),
            devices,
        }
    }

    fn input(&mut self, kind: SlotKind, elem: ElemType, dims: &[usize]) -> Value {
        let dt = match elem {
            ElemType::F32 => DType::F32,
            ElemType::I32 => DType::I32,
        };
        self.inputs.push(Slot {
            kind,
            elem,
            dims: dims.to_vec(),
        });
        self.g.parameter(TensorType::new(dt, dims))
    }

    fn params(&mut self, ps: &[ParamSpec]) -> Vec<Value> {
        ps.iter()
            .map(|p| self.input(SlotKind::Param(p.name.clone()), ElemType::F32, &p.shape))
            .collect()
    }

    fn buffers(&mut self, bs: &[ParamSpec]) -> Vec<Value> {
        bs.iter()
            .map(|b| self.input(SlotKind::Buffer(b.name.clone()), ElemType::F32, &b.shape))
            .collect()
    }

    fn images(&mut self, spec: &NetSpec, batch: usize) -> Value {
        let [c, h, w] = spec.input;
        self.input(SlotKind::Images, ElemType::F32, &[batch, c, h, w])
    }

    fn labels(&mut self, batch: usize) -> Value {
        self.input(SlotKind::Labels, ElemType::I32, &[batch])
    }

    /// Sets the outputs and prints the module.
    fn finish(
        mut self,
        outputs: &[(Value, SlotKind)],
        aliases: Vec<Option<usize>>,
        what: &str,
    ) -> Result<Program> {
        let vals: Vec<Value> = outputs.iter().map(|(v, _)| *v).collect();
        self.g
            .set_outputs(&vals)
            .ctx(|| format!("{what}: outputs"))?;
        let params = self.g.parameters().to_vec();
        for (i, a) in aliases.iter().enumerate() {
            if let Some(o) = a {
                self.g
                    .set_aliasing_output(params[i], *o)
                    .ctx(|| format!("{what}: aliasing"))?;
            }
        }
        if self.devices > 1 {
            for (slot, &p) in self.inputs.iter().zip(&params) {
                let s = sharding(&slot.kind, slot.dims.len(), self.devices);
                self.g
                    .set_sharding(p, &s)
                    .ctx(|| format!("{what}: sharding"))?;
            }
            let n = u32::try_from(self.devices)
                .map_err(|_| Error::Config(format!("{} devices are too many", self.devices)))?;
            self.g.set_partitions(n, 1);
        }
        let outputs = outputs
            .iter()
            .map(|(v, kind)| {
                let t = self.g.ty(*v);
                let elem = match t.dtype {
                    DType::I32 => ElemType::I32,
                    _ => ElemType::F32,
                };
                Slot {
                    kind: kind.clone(),
                    elem,
                    dims: t.dims.clone(),
                }
            })
            .collect();
        let mlir = graph::print_module(&self.g).ctx(|| format!("{what}: printing"))?;
        let flops = self.g.flops();
        Ok(Program {
            mlir,
            inputs: self.inputs,
            outputs,
            aliases,
            flops,
            partitions: self.devices,
            graph: self.g,
        })
    }
}

/// The `mhlo.sharding` of an argument of a program partitioned over `n` devices (module doc,
/// "Devices"): images and labels tiled along their first (batch) dimension, the rest replicated.
fn sharding(kind: &SlotKind, rank: usize, n: usize) -> String {
    match kind {
        SlotKind::Images | SlotKind::Labels => {
            let mut tiles = vec![n.to_string()];
            tiles.extend(std::iter::repeat_n("1".to_string(), rank.saturating_sub(1)));
            format!("{{devices=[{}]<=[{n}]}}", tiles.join(","))
        }
        SlotKind::Param(_)
        | SlotKind::OptState(_)
        | SlotKind::Buffer(_)
        | SlotKind::Step
        | SlotKind::LearningRate
        | SlotKind::Loss
        | SlotKind::Correct
        | SlotKind::Logits
        | SlotKind::Grad(_) => "{replicated}".into(),
    }
}

/// A batch of `batch` rows split over `devices`: at least one device, and every device the same
/// number of rows.
fn check_devices(batch: usize, devices: usize) -> Result<()> {
    if devices == 0 {
        return Err(Error::Config(
            "the number of devices (--devices) must be at least 1".into(),
        ));
    }
    if !batch.is_multiple_of(devices) {
        return Err(Error::Config(format!(
            "a batch of {batch} cannot be split evenly over {devices} devices: the (global) batch \
             must be a multiple of the device count"
        )));
    }
    Ok(())
}

/// An MLIR module name from the spec name (`resnet-18.v2` → `resnet_18_v2_train_step`).
fn module_name(spec: &NetSpec, program: &str) -> String {
    let mut s: String = spec
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        s.insert(0, '_');
    }
    format!("{s}_{program}")
}

fn check_batch(batch: usize) -> Result<()> {
    if batch == 0 {
        return Err(Error::Config("the batch size must be at least 1".into()));
    }
    Ok(())
}

fn check_ls(ls: f32) -> Result<()> {
    if !(ls.is_finite() && (0.0..1.0).contains(&ls)) {
        return Err(Error::Config(format!(
            "label smoothing must be in [0, 1), got {ls}"
        )));
    }
    Ok(())
}

fn check_config(cfg: &RunConfig) -> Result<()> {
    cfg.check_step().map_err(Error::Config)
}

/// Whether the spec has a dropout or stochastic depth that is active in training.
fn has_dropout(spec: &NetSpec) -> Result<bool> {
    let mut any = false;
    for l in spec::analyze(spec)? {
        l.node.visit(&mut |n| {
            if let Op::Layer { layer, .. } = &n.op {
                any |= layer.is_random();
            }
        });
    }
    Ok(any)
}

/// Names of the optimizer state tensors per moment (`m`, then `v`).
fn moments(opt: Optimizer) -> &'static [&'static str] {
    match opt {
        Optimizer::Sgd => &[],
        Optimizer::Momentum { .. } => &["m"],
        Optimizer::Adam { .. } | Optimizer::AdamW { .. } => &["m", "v"],
    }
}

/// The type a step's activations and matrix/convolution operands have under `p`.
pub fn compute_dtype(p: Precision) -> DType {
    match p {
        Precision::F32 => DType::F32,
        Precision::Bf16 => DType::BF16,
    }
}

/// Mixed precision lives here, in the code generator, not in the layers: the images and every
/// parameter are converted to the compute type where the step reads them (one `convert` each, so
/// each parameter's gradient comes back through `convert`'s VJP in f32), and the layers are lowered
/// on those values. The primitives' own rule ([`DType::accumulation`]) makes bf16 products,
/// convolutions and sums accumulate in f32; `nn::ops` keeps normalisation statistics and softmax in
/// f32; [`logits_f32`] widens the logits before the loss. A no-op for f32.
fn cast_inputs(
    g: &mut Graph,
    p: Precision,
    x: Value,
    pv: &[Value],
) -> graph::Result<(Value, Vec<Value>)> {
    let dt = compute_dtype(p);
    let x = g.convert(x, dt)?;
    let pv = pv
        .iter()
        .map(|&v| g.convert(v, dt))
        .collect::<graph::Result<Vec<_>>>()?;
    Ok((x, pv))
}

/// The logits in f32 (the loss, softmax and argmax are computed in f32 at every precision).
fn logits_f32(g: &mut Graph, logits: Value) -> graph::Result<Value> {
    g.convert(logits, DType::F32)
}

/// Mean loss (label-smoothed CE) and correct count of a train-mode forward.
fn loss_and_correct(
    g: &mut Graph,
    logits: Value,
    y: Value,
    ls: f32,
) -> graph::Result<(Value, Value)> {
    let k = g.dims(logits)[1];
    let onehot = ops::one_hot(g, y, k)?;
    let t = ops::smooth_targets(g, onehot, ls as f64)?;
    let loss = ops::softmax_xent_mean(g, logits, t)?;
    let correct = ops::correct(g, logits, y)?;
    Ok((loss, correct))
}

/// `s` (a scalar) broadcast to the shape of `like`.
fn bcast(g: &mut Graph, s: Value, like: Value) -> graph::Result<Value> {
    let d = g.dims(like).to_vec();
    g.broadcast_in_dim(s, &d, &[])
}

/// The fused train step (ARCHITECTURE.md, "Train-step ABI"):
/// `(params…, opt_state…, bn_running…, step, x, y, lr) -> (params'…, opt_state'…, bn_running'…, step',
/// loss, correct)`, every state input aliased to the output at the same index.
///
/// Optimizer math as documented on [`spec::Optimizer`], with `t = step + 1` for Adam's bias correction and
/// weight decay on `decay` parameters (kernels) only. BN running statistics are updated in-graph with
/// momentum 0.1 from the biased batch statistics. Dropout masks derive from the step counter
/// ([`lower::rng_key`]).
pub fn train_step(spec: &NetSpec, cfg: &RunConfig) -> Result<Program> {
    train_step_on(spec, cfg, 1)
}

/// [`train_step`] partitioned over `devices` devices (module doc, "Devices"): `cfg.batch_size` is
/// the global batch, which `devices` must divide; batch norm's statistics are those of the global
/// batch. `devices = 1` is [`train_step`].
pub fn train_step_on(spec: &NetSpec, cfg: &RunConfig, devices: usize) -> Result<Program> {
    check_config(cfg)?;
    check_devices(cfg.batch_size, devices)?;
    let ps = spec::params(spec)?;
    let bs = spec::buffers(spec)?;
    let mut b = Builder::new(spec, "train_step", devices);
    let pv = b.params(&ps);
    let mut state: Vec<Vec<Value>> = Vec::new();
    for m in moments(cfg.optimizer) {
        let vals = ps
            .iter()
            .map(|p| {
                b.input(
                    SlotKind::OptState(format!("opt.{m}.{}", p.name)),
                    ElemType::F32,
                    &p.shape,
                )
            })
            .collect();
        state.push(vals);
    }
    let bv = b.buffers(&bs);
    let step = b.input(SlotKind::Step, ElemType::I32, &[]);
    let x = b.images(spec, cfg.batch_size);
    let y = b.labels(cfg.batch_size);
    let lr = b.input(SlotKind::LearningRate, ElemType::F32, &[]);
    let n_state = b.inputs.len() - 3;

    let g = &mut b.g;
    let rng = if has_dropout(spec)? {
        Some(lower::rng_key(g, step).ctx(|| "train step: dropout key".into())?)
    } else {
        None
    };
    let what = || "train step".to_string();
    let (xc, pc) = cast_inputs(g, cfg.precision, x, &pv).ctx(what)?;
    let fwd = lower::lower(
        g,
        spec,
        Mode::Train,
        xc,
        Inputs {
            params: &pc,
            buffers: &bv,
            rng,
        },
    )?;
    let logits = logits_f32(g, fwd.logits).ctx(what)?;
    let (loss, correct) = loss_and_correct(g, logits, y, cfg.label_smoothing).ctx(what)?;
    let grads = graph::grad(g, loss, &pv).ctx(|| "train step: backward pass".into())?;
    let grads = reads_before_updates(g, &pv, &grads).ctx(what)?;
    let (new_p, new_state) = update(g, cfg, &ps, &pv, &grads, &state, step, lr)
        .ctx(|| "train step: optimizer".into())?;
    let mut new_b = Vec::new();
    for (&r, &s) in bv.iter().zip(&fwd.batch_stats) {
        let a = g.scale(r, 1.0 - BN_MOMENTUM).ctx(what)?;
        let c = g.scale(s, BN_MOMENTUM).ctx(what)?;
        new_b.push(g.add(a, c).ctx(what)?);
    }
    let one = g.scalar(1.0, DType::I32).ctx(what)?;
    let step1 = g.add(step, one).ctx(what)?;

    let mut outs: Vec<(Value, SlotKind)> = Vec::new();
    for (p, v) in ps.iter().zip(&new_p) {
        outs.push((*v, SlotKind::Param(p.name.clone())));
    }
    for (m, vals) in moments(cfg.optimizer).iter().zip(&new_state) {
        for (p, v) in ps.iter().zip(vals) {
            outs.push((*v, SlotKind::OptState(format!("opt.{m}.{}", p.name))));
        }
    }
    for (bf, v) in bs.iter().zip(&new_b) {
        outs.push((*v, SlotKind::Buffer(bf.name.clone())));
    }
    outs.push((step1, SlotKind::Step));
    outs.push((loss, SlotKind::Loss));
    outs.push((correct, SlotKind::Correct));
    let mut aliases: Vec<Option<usize>> = (0..n_state).map(Some).collect();
    aliases.extend([None, None, None]);
    b.finish(&outs, aliases, "train step")
}

/// Each parameter's gradient, passed through an optimization barrier with the parameter's late reads
/// (where it has any), so that those reads come before the parameter's update.
///
/// A parameter's buffer is donated and its update written in place. A read of its old value that
/// the gradient does not depend on (the input cotangent `δ·Wᵀ` of a dense or convolution layer)
/// could, as far as XLA's dependency order knows, come after the update, so XLA copies every such
/// parameter at the start of the step (resnet18-32: 63 copies, 22 MB per step). The barrier makes the
/// update depend on those reads, and the copies go (BENCHMARKS.md "Session 8").
fn reads_before_updates(
    g: &mut Graph,
    params: &[Value],
    grads: &[Value],
) -> graph::Result<Vec<Value>> {
    let nodes = g.nodes();
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); params.len()];
    for (i, n) in nodes.iter().enumerate() {
        for v in &n.inputs {
            if let Some(k) = params.iter().position(|p| p == v) {
                if readers[k].last() != Some(&i) {
                    readers[k].push(i);
                }
            }
        }
    }
    // The nodes some values depend on (node order is a topological order: inputs come first).
    let feeding = |roots: &[Value]| {
        let mut feeds = vec![false; nodes.len()];
        for r in roots {
            feeds[r.node()] = true;
        }
        for i in (0..nodes.len()).rev() {
            if feeds[i] {
                for v in &nodes[i].inputs {
                    feeds[v.node()] = true;
                }
            }
        }
        feeds
    };
    // Only reads that some gradient needs: a node nothing uses is not brought to life.
    let needed = feeding(grads);
    let mut late_reads = Vec::with_capacity(params.len());
    for (k, &gk) in grads.iter().enumerate() {
        let feeds = feeding(&[gk]);
        let late: Vec<usize> = readers[k]
            .iter()
            .copied()
            .filter(|&i| needed[i] && !feeds[i])
            .collect();
        late_reads.push(late);
    }
    let mut out = Vec::with_capacity(grads.len());
    for (&gk, late) in grads.iter().zip(late_reads) {
        if late.is_empty() {
            out.push(gk);
            continue;
        }
        let mut xs = vec![gk];
        for i in late {
            if let Some(v) = g.value(i, 0) {
                xs.push(v);
            }
        }
        out.push(g.barrier(&xs)?[0]);
    }
    Ok(out)
}

/// One optimizer update of every parameter: returns the new parameters and the new state
/// (per moment, per parameter).
#[allow(clippy::too_many_arguments)]
fn update(
    g: &mut Graph,
    cfg: &RunConfig,
    ps: &[ParamSpec],
    pv: &[Value],
    grads: &[Value],
    state: &[Vec<Value>],
    step: Value,
    lr: Value,
) -> graph::Result<(Vec<Value>, Vec<Vec<Value>>)> {
    let wd = cfg.weight_decay as f64;
    // g + wd·p on decay params (coupled / L2 weight decay).
    let coupled = |g: &mut Graph, i: usize| -> graph::Result<Value> {
        if ps[i].decay && wd != 0.0 {
            let d = g.scale(pv[i], wd)?;
            g.add(grads[i], d)
        } else {
            Ok(grads[i])
        }
    };
    // p − lr·u
    let descend = |g: &mut Graph, p: Value, u: Value| -> graph::Result<Value> {
        let l = bcast(g, lr, p)?;
        let s = g.mul(l, u)?;
        g.sub(p, s)
    };
    let mut new_p = Vec::new();
    let mut new_state: Vec<Vec<Value>> = state.iter().map(|_| Vec::new()).collect();
    match cfg.optimizer {
        Optimizer::Sgd => {
            for (i, &p) in pv.iter().enumerate() {
                let ge = coupled(g, i)?;
                new_p.push(descend(g, p, ge)?);
            }
        }
        Optimizer::Momentum { mu } => {
            for i in 0..pv.len() {
                let ge = coupled(g, i)?;
                let m = g.scale(state[0][i], mu as f64)?;
                let m = g.add(m, ge)?;
                new_state[0].push(m);
                new_p.push(descend(g, pv[i], m)?);
            }
        }
        Optimizer::Adam { beta1, beta2, eps } | Optimizer::AdamW { beta1, beta2, eps } => {
            let decoupled = matches!(cfg.optimizer, Optimizer::AdamW { .. });
            // Bias corrections 1 − βᵗ with t = step + 1, computed in-graph.
            let one_i = g.scalar(1.0, DType::I32)?;
            let t = g.add(step, one_i)?;
            let t = g.convert(t, DType::F32)?;
            let mut correction = |b: f32| -> graph::Result<Value> {
                let bc = g.scalar(b as f64, DType::F32)?;
                let p = g.pow(bc, t)?;
                let one = g.scalar(1.0, DType::F32)?;
                g.sub(one, p)
            };
            let bc1 = correction(beta1)?;
            let bc2 = correction(beta2)?;
            // Their reciprocals, once: each element of the update then costs one division.
            let one = g.scalar(1.0, DType::F32)?;
            let bc1 = g.div(one, bc1)?;
            let bc2 = g.div(one, bc2)?;
            let uses = use_counts(g);
            for i in 0..pv.len() {
                let ge = if decoupled { grads[i] } else { coupled(g, i)? };
                let mut call = graph::AdamCall {
                    beta1,
                    beta2,
                    eps,
                    decay: if decoupled && ps[i].decay { wd } else { 0.0 },
                    product: None,
                };
                let mut ins = vec![pv[i], state[0][i], state[1][i], ge, lr, bc1, bc2];
                // One in-place kernel pass where the runtime has the handler, else its expansion.
                let [p, m, v] = if ops::calls().kernels && g.dtype(pv[i]) == DType::F32 {
                    if let Some((product, a, b)) = product_gradient(g, ge, &uses)? {
                        call.product = Some(product);
                        ins.splice(3..4, [a, b]);
                    }
                    g.adam_call(call, &ins)?
                } else {
                    call.expand(g, &ins)?
                };
                new_state[0].push(m);
                new_state[1].push(v);
                new_p.push(p);
            }
        }
    }
    Ok((new_p, new_state))
}

/// How many times each value of `g` is used so far (as an operand or an output).
fn use_counts(g: &Graph) -> std::collections::HashMap<Value, usize> {
    let mut uses = std::collections::HashMap::new();
    for v in g.nodes().iter().flat_map(|n| &n.inputs).chain(g.outputs()) {
        *uses.entry(*v).or_insert(0) += 1;
    }
    uses
}

/// When the gradient `ge` is a weight-gradient product `op(a)·op(b)` (a [`graph::MatMulCall`], perhaps
/// behind [`reads_before_updates`]' barrier) that nothing else uses, its flags and operands, for an
/// Adam call that computes it tile by tile and never stores it (`graph::AdamCall::product`). The
/// barrier, if any, is rebuilt over the operands, so that the update still follows the parameter's
/// late reads.
fn product_gradient(
    g: &mut Graph,
    ge: Value,
    uses: &std::collections::HashMap<Value, usize>,
) -> graph::Result<Option<(graph::MatMulCall, Value, Value)>> {
    let used = |v: Value| uses.get(&v).copied().unwrap_or(0);
    if used(ge) != 0 {
        return Ok(None);
    }
    let node = g.node_of(ge);
    let (product, late) = match node.prim {
        graph::Prim::Barrier if ge.result() == 0 && used(node.inputs[0]) == 1 => {
            (node.inputs[0], node.inputs[1..].to_vec())
        }
        graph::Prim::Barrier => return Ok(None),
        _ => (ge, Vec::new()),
    };
    let node = g.node_of(product);
    let graph::Prim::MatMulCall(call) = node.prim else {
        return Ok(None);
    };
    let (a, b) = (node.inputs[0], node.inputs[1]);
    if late.is_empty() {
        return Ok(Some((call, a, b)));
    }
    let mut xs = vec![a, b];
    xs.extend(late);
    let r = g.barrier(&xs)?;
    Ok(Some((call, r[0], r[1])))
}

/// Evaluation with running BN statistics and no dropout:
/// `(params…, bn_running…, x, y) -> (loss_sum, correct)`. The loss is the plain (unsmoothed)
/// cross-entropy summed over the examples whose label is ≥ 0; labels −1 mark padding rows, which count
/// for nothing (so a partial last batch can be padded).
pub fn eval_step(spec: &NetSpec, batch: usize) -> Result<Program> {
    eval_step_on(spec, batch, 1)
}

/// [`eval_step`] partitioned over `devices` devices (module doc, "Devices"); `batch` is the
/// global batch, which `devices` must divide.
pub fn eval_step_on(spec: &NetSpec, batch: usize, devices: usize) -> Result<Program> {
    eval_step_with(spec, batch, devices, Precision::F32)
}

/// [`eval_step`] at a precision (the run's `RunConfig::precision`), on one device.
pub fn eval_step_in(spec: &NetSpec, batch: usize, precision: Precision) -> Result<Program> {
    eval_step_with(spec, batch, 1, precision)
}

/// [`eval_step`] on `devices` devices at a precision.
pub fn eval_step_with(
    spec: &NetSpec,
    batch: usize,
    devices: usize,
    precision: Precision,
) -> Result<Program> {
    check_batch(batch)?;
    check_devices(batch, devices)?;
    let ps = spec::params(spec)?;
    let bs = spec::buffers(spec)?;
    let mut b = Builder::new(spec, "eval_step", devices);
    let pv = b.params(&ps);
    let bv = b.buffers(&bs);
    let x = b.images(spec, batch);
    let y = b.labels(batch);
    let g = &mut b.g;
    let what = || "eval step".to_string();
    let (xc, pc) = cast_inputs(g, precision, x, &pv).ctx(what)?;
    let fwd = lower::lower(
        g,
        spec,
        Mode::Eval,
        xc,
        Inputs {
            params: &pc,
            buffers: &bv,
            rng: None,
        },
    )?;
    let logits = logits_f32(g, fwd.logits).ctx(what)?;
    let (loss_sum, correct) = eval_metrics(g, logits, y).ctx(what)?;
    let n = b.inputs.len();
    b.finish(
        &[(loss_sum, SlotKind::Loss), (correct, SlotKind::Correct)],
        vec![None; n],
        "eval step",
    )
}

fn eval_metrics(g: &mut Graph, logits: Value, y: Value) -> graph::Result<(Value, Value)> {
    let k = g.dims(logits)[1];
    let (logp, _) = ops::log_softmax(g, logits)?;
    let onehot = ops::one_hot(g, y, k)?;
    let tl = g.mul(onehot, logp)?;
    let per = g.sum(tl, &[1])?;
    let per = g.neg(per)?;
    let zero_i = g.full_like(0.0, y)?;
    let valid = g.compare(y, zero_i, graph::CmpDir::Ge)?;
    let zero = g.zeros_like(per)?;
    let per = g.select(valid, per, zero)?;
    let loss_sum = g.sum(per, &[0])?;
    let correct = ops::correct(g, logits, y)?;
    Ok((loss_sum, correct))
}

/// Inference: `(params…, bn_running…, x) -> logits` (running statistics, no dropout).
pub fn predict(spec: &NetSpec, batch: usize) -> Result<Program> {
    predict_on(spec, batch, 1)
}

/// [`predict`] partitioned over `devices` devices (module doc, "Devices"); `batch` is the global
/// batch, which `devices` must divide. The logits come back whole on every device.
pub fn predict_on(spec: &NetSpec, batch: usize, devices: usize) -> Result<Program> {
    predict_with(spec, batch, devices, Precision::F32)
}

/// [`predict`] at a precision, on one device; the logits are f32 at every precision.
pub fn predict_in(spec: &NetSpec, batch: usize, precision: Precision) -> Result<Program> {
    predict_with(spec, batch, 1, precision)
}

/// [`predict`] on `devices` devices at a precision.
pub fn predict_with(
    spec: &NetSpec,
    batch: usize,
    devices: usize,
    precision: Precision,
) -> Result<Program> {
    let (b, logits) = predict_builder(spec, batch, devices, precision)?;
    let n = b.inputs.len();
    b.finish(&[(logits, SlotKind::Logits)], vec![None; n], "predict")
}

/// The training-mode batch statistics of every BN: `(params…, x) -> (statistic per BN buffer…)`,
/// in `spec::buffers` order, each output slot `Buffer(name)`: the batch mean for `…mean`, the biased
/// batch variance for `…var`, as a train step computes them (dropout with the key of step 0). Used
/// to calibrate running statistics (the weights of the ONNX and parity checks). A spec without BN
/// has no outputs.
pub fn batch_stats(spec: &NetSpec, batch: usize) -> Result<Program> {
    check_batch(batch)?;
    let ps = spec::params(spec)?;
    let bs = spec::buffers(spec)?;
    let mut b = Builder::new(spec, "batch_stats", 1);
    let pv = b.params(&ps);
    let x = b.images(spec, batch);
    let rng = step0_key(&mut b.g, spec)?;
    let fwd = lower::lower(
        &mut b.g,
        spec,
        Mode::Train,
        x,
        Inputs {
            params: &pv,
            buffers: &[],
            rng,
        },
    )?;
    let outs: Vec<(Value, SlotKind)> = fwd
        .batch_stats
        .iter()
        .zip(&bs)
        .map(|(&v, p)| (v, SlotKind::Buffer(p.name.clone())))
        .collect();
    let n = b.inputs.len();
    b.finish(&outs, vec![None; n], "batch_stats")
}

/// The training-mode forward pass as a graph, `(params…, x) -> logits` as [`forward`] prints it
/// (for analyses of the values a train step computes, e.g. the activation-memory estimate of
/// `netspec summary`).
pub fn forward_graph(spec: &NetSpec, batch: usize) -> Result<Graph> {
    check_batch(batch)?;
    let ps = spec::params(spec)?;
    let mut b = Builder::new(spec, "forward", 1);
    let pv = b.params(&ps);
    let x = b.images(spec, batch);
    let rng = step0_key(&mut b.g, spec)?;
    let fwd = lower::lower(
        &mut b.g,
        spec,
        Mode::Train,
        x,
        Inputs {
            params: &pv,
            buffers: &[],
            rng,
        },
    )?;
    b.g.set_outputs(&[fwd.logits])
        .ctx(|| "forward: outputs".to_string())?;
    Ok(b.g)
}

/// The predict program as a graph (for exporters that translate primitives, e.g. ONNX): the same
/// graph [`predict`] prints, with its input slots (`params…, bn_running…, x`) and the logits as its
/// one output.
pub fn predict_graph(spec: &NetSpec, batch: usize) -> Result<(Graph, Vec<Slot>)> {
    let (mut b, logits) = predict_builder(spec, batch, 1, Precision::F32)?;
    b.g.set_outputs(&[logits])
        .ctx(|| "predict: outputs".to_string())?;
    Ok((b.g, b.inputs))
}

fn predict_builder(
    spec: &NetSpec,
    batch: usize,
    devices: usize,
    precision: Precision,
) -> Result<(Builder, Value)> {
    check_batch(batch)?;
    check_devices(batch, devices)?;
    let ps = spec::params(spec)?;
    let bs = spec::buffers(spec)?;
    let mut b = Builder::new(spec, "predict", devices);
    let pv = b.params(&ps);
    let bv = b.buffers(&bs);
    let x = b.images(spec, batch);
    let what = || "predict".to_string();
    let (xc, pc) = cast_inputs(&mut b.g, precision, x, &pv).ctx(what)?;
    let fwd = lower::lower(
        &mut b.g,
        spec,
        Mode::Eval,
        xc,
        Inputs {
            params: &pc,
            buffers: &bv,
            rng: None,
        },
    )?;
    let logits = logits_f32(&mut b.g, fwd.logits).ctx(what)?;
    Ok((b, logits))
}

/// The training-mode forward pass: `(params…, x) -> logits` with batch statistics and dropout active
/// (the dropout key of step 0). For `netspec emit` and inspection.
pub fn forward(spec: &NetSpec, batch: usize) -> Result<Program> {
    check_batch(batch)?;
    let ps = spec::params(spec)?;
    let mut b = Builder::new(spec, "forward", 1);
    let pv = b.params(&ps);
    let x = b.images(spec, batch);
    let rng = step0_key(&mut b.g, spec)?;
    let fwd = lower::lower(
        &mut b.g,
        spec,
        Mode::Train,
        x,
        Inputs {
            params: &pv,
            buffers: &[],
            rng,
        },
    )?;
    let n = b.inputs.len();
    b.finish(&[(fwd.logits, SlotKind::Logits)], vec![None; n], "forward")
}

fn step0_key(g: &mut Graph, spec: &NetSpec) -> Result<Option<Value>> {
    if !has_dropout(spec)? {
        return Ok(None);
    }
    let what = || "dropout key".to_string();
    let zero = g.scalar(0.0, DType::I32).ctx(what)?;
    Ok(Some(lower::rng_key(g, zero).ctx(what)?))
}

/// Loss and gradients in training mode (batch statistics):
/// `(params…, x, y) -> (loss, grad(param)…)`, the loss being the mean label-smoothed cross-entropy
/// exactly as in [`train_step`]. The JAX oracle compares these with `jax.value_and_grad`. Dropout uses
/// the key of step 0, whose masks JAX cannot reproduce: compare dropout-free specs (or rate 0).
pub fn grads(spec: &NetSpec, batch: usize, label_smoothing: f32) -> Result<Program> {
    grads_in(spec, batch, label_smoothing, Precision::F32)
}

/// [`grads`] at a precision: the loss and the gradients are f32 at every precision (the gradients
/// of the f32 parameters, through their conversion to the compute type).
pub fn grads_in(
    spec: &NetSpec,
    batch: usize,
    label_smoothing: f32,
    precision: Precision,
) -> Result<Program> {
    check_batch(batch)?;
    check_ls(label_smoothing)?;
    let ps = spec::params(spec)?;
    let mut b = Builder::new(spec, "grads", 1);
    let pv = b.params(&ps);
    let x = b.images(spec, batch);
    let y = b.labels(batch);
    let rng = step0_key(&mut b.g, spec)?;
    let g = &mut b.g;
    let (xc, pc) = cast_inputs(g, precision, x, &pv).ctx(|| "grads".into())?;
    let fwd = lower::lower(
        g,
        spec,
        Mode::Train,
        xc,
        Inputs {
            params: &pc,
            buffers: &[],
            rng,
        },
    )?;
    let logits = logits_f32(g, fwd.logits).ctx(|| "grads".into())?;
    let (loss, _) = loss_and_correct(g, logits, y, label_smoothing).ctx(|| "grads".into())?;
    let gs = graph::grad(g, loss, &pv).ctx(|| "grads: backward pass".into())?;
    let mut outs = vec![(loss, SlotKind::Loss)];
    for (p, v) in ps.iter().zip(gs) {
        outs.push((v, SlotKind::Grad(p.name.clone())));
    }
    let n = b.inputs.len();
    b.finish(&outs, vec![None; n], "grads")
}
