"""Train-step speed of netspec against JAX and PyTorch on the same model, batch and optimizer.

    python bench/compare.py [--models mnist-mlp,mnist-cnn,cifar-cnn-bn,bench/resnet18-32.ns]
                            [--batch-size 128] [--steps 30] [--warmup 5] [--rounds 3]
                            [--frameworks netspec,jax,torch,torch-compile] [--netspec PATH]
                            [--json-out FILE] [--matmul-n 4096] [--netspec-b PATH] [--max-isa avx2]

Run it with the bench venv (scripts/setup/bench.sh). Each model is read from its spec file (zoo/NAME.ns or
a path) by a small parser for the layers used here, and built three times from that one description:
netspec (the `netspec bench` subprocess, which compiles the spec itself), JAX (jit + donate_argnums, NCHW
as netspec, data already on the device) and PyTorch (eager, and torch.compile of the model). All use AdamW
(β 0.9/0.999, ε 1e-8, lr 1e-3, decoupled weight decay 1e-4 on kernels only), softmax cross-entropy without
label smoothing, BN in training mode with running statistics updated, and report the loss and correct
count (JAX and netspec return them; PyTorch computes them, as a training loop would).

Method: every framework compiles/warms up once per model (netspec: once per round, in its own process);
then `--rounds` rounds run in alternated order (the order rotates each round), each round timing `--steps`
steps per framework after `--warmup` steps. Each step is timed to completion. Per round the median ms/step
is taken; the ratios netspec/X are formed within a round (so both sides saw the same machine load), and the
median of the per-round ratios is reported. The machine's matmul limit (bench/matmul_peak.py) is measured in
the same run, first and last; GFLOP/s use netspec's FLOP count from the graph (XLA's own cost analysis of the
JAX step is reported beside it as a cross-check).
"""
import argparse
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time

# libgomp's threads (PyTorch's CPU parallelism) spin-wait between parallel regions by default. On a
# loaded machine with 2 cores that spinning starves the other thread: measured here at load ~15, a
# mnist-mlp batch-32 step took 540 ms with 2 threads (ACTIVE), 20 ms with 1 thread and 21 ms with 2
# threads and OMP_WAIT_POLICY=PASSIVE. It must be set before torch loads libgomp; an explicit value in
# the environment wins, and the value used is recorded in the results.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# ---------------------------------------------------------------- spec files (the subset used here)


def parse_spec(path):
    """Returns {"name", "input": [C, H, W], "classes", "layers": [(kind, args-dict)]}."""
    spec = {"layers": []}
    with open(path) as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            words = line.split()
            head, pos, kw = words[0], [], {}
            for w in words[1:]:
                if "=" in w:
                    k, v = w.split("=", 1)
                    kw[k] = v
                else:
                    pos.append(w)
            if head == "name":
                spec["name"] = pos[0]
            elif head == "input":
                spec["input"] = [int(v) for v in pos]
            elif head == "classes":
                spec["classes"] = int(pos[0])
            elif head in ("convBn", "conv2d", "maxPool", "flatten", "dense", "residual", "globalAvgPool"):
                spec["layers"].append((head, pos, kw))
            else:
                raise SystemExit(f"{path}:{lineno}: layer '{head}' is not supported by compare.py")
    return spec


def resolve_model(name):
    if os.path.exists(name):
        return name
    p = os.path.join(ROOT, "zoo", name + ".ns")
    if os.path.exists(p):
        return p
    raise SystemExit(f"model {name}: neither a file nor zoo/{name}.ns")


def conv_pad(kernel, kw):
    return int(kw["pad"]) if "pad" in kw else (kernel - 1) // 2


# Every layer's description as plain tuples, shared by both builders:
#   ("conv", out, k, stride, pad, bias, bn, relu)   ("maxpool", size, stride, pad)
#   ("flatten",)  ("dense", out, relu)  ("gap",)   ("block", out, stride, project)  (ResNet BasicBlock)
def expand_layers(spec):
    out = []
    c = spec["input"][0]
    for head, pos, kw in spec["layers"]:
        act = kw.get("act", "relu" if head == "convBn" else "identity")
        if act not in ("relu", "identity"):
            raise SystemExit(f"act={act} is not supported by compare.py")
        if head in ("convBn", "conv2d"):
            k = int(kw.get("kernel", 3))
            o = int(pos[0])
            out.append(("conv", c, o, k, int(kw.get("stride", 1)), conv_pad(k, kw), head == "conv2d",
                        head == "convBn", act == "relu"))
            c = o
        elif head == "maxPool":
            size = int(pos[0])
            out.append(("maxpool", size, int(kw.get("stride", size)), int(kw.get("pad", 0))))
        elif head == "flatten":
            out.append(("flatten",))
        elif head == "globalAvgPool":
            out.append(("gap",))
        elif head == "dense":
            out.append(("dense", int(pos[0]), act == "relu"))
        elif head == "residual":
            o, blocks, s = int(pos[0]), int(kw.get("blocks", 1)), int(kw.get("stride", 1))
            for j in range(blocks):
                stride = s if j == 0 else 1
                out.append(("block", c, o, stride, stride != 1 or c != o))
                c = o
    return out


# ---------------------------------------------------------------- JAX


def jax_model(spec, batch, seed=0):
    """Returns (init_state, step_fn) with step(params, m, v, bn, step, x, y, lr) -> (..., loss, correct)."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    layers = expand_layers(spec)
    key = jax.random.PRNGKey(seed)
    params, bn, decay = {}, {}, {}

    def he(shape, fan_in):
        nonlocal key
        key, sub = jax.random.split(key)
        return jax.random.normal(sub, shape, jnp.float32) * math.sqrt(2.0 / fan_in)

    def add_conv(name, c, o, k, bias, use_bn):
        params[name + ".w"] = he((o, c, k, k), c * k * k)
        decay[name + ".w"] = True
        if bias:
            params[name + ".b"] = jnp.zeros((o,), jnp.float32)
            decay[name + ".b"] = False
        if use_bn:
            params[name + ".gamma"] = jnp.ones((o,), jnp.float32)
            params[name + ".beta"] = jnp.zeros((o,), jnp.float32)
            decay[name + ".gamma"] = decay[name + ".beta"] = False
            bn[name + ".mean"] = jnp.zeros((o,), jnp.float32)
            bn[name + ".var"] = jnp.ones((o,), jnp.float32)

    # Shapes: walk once to create parameters (flatten/dense need the running feature count).
    c, h, w = spec["input"]
    feat = None
    for i, l in enumerate(layers):
        n = f"l{i}"
        if l[0] == "conv":
            _, ci, o, k, s, p, bias, use_bn, _ = l
            add_conv(n, ci, o, k, bias, use_bn)
            c, h, w = o, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        elif l[0] == "maxpool":
            _, k, s, p = l
            h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        elif l[0] == "flatten":
            feat = c * h * w
        elif l[0] == "gap":
            feat = c
        elif l[0] == "dense":
            params[n + ".w"] = he((feat, l[1]), feat)
            params[n + ".b"] = jnp.zeros((l[1],), jnp.float32)
            decay[n + ".w"], decay[n + ".b"] = True, False
            feat = l[1]
        elif l[0] == "block":
            _, ci, o, s, proj = l
            add_conv(n + ".conv1", ci, o, 3, False, True)
            add_conv(n + ".conv2", o, o, 3, False, True)
            if proj:
                add_conv(n + ".down", ci, o, 1, False, True)
            c, h, w = o, (h + 2 - 3) // s + 1, (w + 2 - 3) // s + 1

    def conv(x, wt, s, p):
        return lax.conv_general_dilated(x, wt, (s, s), [(p, p), (p, p)],
                                        dimension_numbers=("NCHW", "OIHW", "NCHW"))

    def batchnorm(pr, name, x, new_bn):
        mean = jnp.mean(x, axis=(0, 2, 3))
        var = jnp.mean(jnp.square(x - mean[None, :, None, None]), axis=(0, 2, 3))
        new_bn[name + ".mean"] = 0.9 * bn_in[name + ".mean"] + 0.1 * mean
        new_bn[name + ".var"] = 0.9 * bn_in[name + ".var"] + 0.1 * var
        y = (x - mean[None, :, None, None]) * lax.rsqrt(var + 1e-5)[None, :, None, None]
        return y * pr[name + ".gamma"][None, :, None, None] + pr[name + ".beta"][None, :, None, None]

    bn_in = None

    def forward(pr, bn_state, x):
        nonlocal bn_in
        bn_in = bn_state
        new_bn = {}
        for i, l in enumerate(layers):
            n = f"l{i}"
            if l[0] == "conv":
                _, ci, o, k, s, p, bias, use_bn, relu = l
                x = conv(x, pr[n + ".w"], s, p)
                if bias:
                    x = x + pr[n + ".b"][None, :, None, None]
                if use_bn:
                    x = batchnorm(pr, n, x, new_bn)
                if relu:
                    x = jax.nn.relu(x)
            elif l[0] == "maxpool":
                _, k, s, p = l
                x = lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, k, k), (1, 1, s, s),
                                      ((0, 0), (0, 0), (p, p), (p, p)))
            elif l[0] == "flatten":
                x = x.reshape(x.shape[0], -1)
            elif l[0] == "gap":
                x = jnp.mean(x, axis=(2, 3))
            elif l[0] == "dense":
                x = x @ pr[n + ".w"] + pr[n + ".b"]
                if l[2]:
                    x = jax.nn.relu(x)
            elif l[0] == "block":
                _, ci, o, s, proj = l
                hdn = jax.nn.relu(batchnorm(pr, n + ".conv1", conv(x, pr[n + ".conv1.w"], s, 1), new_bn))
                hdn = batchnorm(pr, n + ".conv2", conv(hdn, pr[n + ".conv2.w"], 1, 1), new_bn)
                sc = batchnorm(pr, n + ".down", conv(x, pr[n + ".down.w"], s, 0), new_bn) if proj else x
                x = jax.nn.relu(hdn + sc)
        return x, new_bn

    def loss_fn(pr, bn_state, x, y):
        logits, new_bn = forward(pr, bn_state, x)
        logp = jax.nn.log_softmax(logits)
        loss = -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))
        correct = jnp.sum((jnp.argmax(logits, axis=1) == y).astype(jnp.int32))
        return loss, (new_bn, correct)

    b1, b2, eps, wd = 0.9, 0.999, 1e-8, 1e-4

    def step(pr, m, v, bn_state, t, x, y, lr):
        (loss, (new_bn, correct)), g = jax.value_and_grad(loss_fn, has_aux=True)(pr, bn_state, x, y)
        tt = (t + 1).astype(jnp.float32)
        c1, c2 = 1 - b1 ** tt, 1 - b2 ** tt
        new_p, new_m, new_v = {}, {}, {}
        for k in pr:
            new_m[k] = b1 * m[k] + (1 - b1) * g[k]
            new_v[k] = b2 * v[k] + (1 - b2) * g[k] * g[k]
            upd = (new_m[k] / c1) / (jnp.sqrt(new_v[k] / c2) + eps)
            if decay[k]:
                upd = upd + wd * pr[k]
            new_p[k] = pr[k] - lr * upd
        return new_p, new_m, new_v, new_bn, t + 1, loss, correct

    zeros = {k: jnp.zeros_like(p) for k, p in params.items()}
    state = (params, zeros, {k: jnp.zeros_like(p) for k, p in params.items()}, bn, jnp.int32(0))
    return state, jax.jit(step, donate_argnums=(0, 1, 2, 3, 4))


class JaxRunner:
    name = "jax"

    def __init__(self, spec, batch, x, y):
        import jax
        import jax.numpy as jnp
        self.jax = jax
        state, self.step = jax_model(spec, batch)
        self.x, self.y = jax.device_put(x), jax.device_put(y)
        self.lr = jnp.float32(1e-3)
        t = time.perf_counter()
        lowered = self.step.lower(*state, self.x, self.y, self.lr)
        compiled = lowered.compile()
        self.compile_s = time.perf_counter() - t
        try:
            ca = compiled.cost_analysis()
            ca = ca[0] if isinstance(ca, list) else ca
            self.xla_flops = float(ca.get("flops", float("nan")))
        except Exception:  # cost analysis is best effort
            self.xla_flops = float("nan")
        self.state = state

    def run(self, n):
        times = []
        for _ in range(n):
            t = time.perf_counter()
            *self.state, loss, correct = self.step(*self.state, self.x, self.y, self.lr)
            loss.block_until_ready()
            times.append(time.perf_counter() - t)
        self.last_loss = float(loss)
        return times


# ---------------------------------------------------------------- PyTorch


def torch_model(spec):
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, c, o, s, proj):
            super().__init__()
            self.conv1 = nn.Conv2d(c, o, 3, s, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(o, eps=1e-5, momentum=0.1)
            self.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(o, eps=1e-5, momentum=0.1)
            self.down = nn.Sequential(nn.Conv2d(c, o, 1, s, 0, bias=False), nn.BatchNorm2d(o)) if proj else None

        def forward(self, x):
            h = torch.relu(self.bn1(self.conv1(x)))
            h = self.bn2(self.conv2(h))
            return torch.relu(h + (self.down(x) if self.down is not None else x))

    mods = []
    c, h, w = spec["input"]
    feat = None
    for l in expand_layers(spec):
        if l[0] == "conv":
            _, ci, o, k, s, p, bias, use_bn, relu = l
            mods.append(nn.Conv2d(ci, o, k, s, p, bias=bias))
            if use_bn:
                mods.append(nn.BatchNorm2d(o, eps=1e-5, momentum=0.1))
            if relu:
                mods.append(nn.ReLU())
            c = o
        elif l[0] == "maxpool":
            mods.append(nn.MaxPool2d(l[1], l[2], l[3]))
        elif l[0] == "flatten":
            mods.append(nn.Flatten())
            feat = None  # LazyLinear-free: computed below with a dry run
        elif l[0] == "gap":
            mods.append(nn.AdaptiveAvgPool2d(1))
            mods.append(nn.Flatten())
        elif l[0] == "dense":
            mods.append(("dense", l[1], l[2]))
        elif l[0] == "block":
            mods.append(Block(l[1], l[2], l[3], l[4]))
    # Resolve dense input widths with a dry run of the layers before each dense.
    built = []
    x = torch.zeros(2, *spec["input"])
    with torch.no_grad():
        for m in mods:
            if isinstance(m, tuple):
                lin = nn.Linear(x.shape[1], m[1])
                built.append(lin)
                x = lin(x)
                if m[2]:
                    built.append(nn.ReLU())
                    x = torch.relu(x)
            else:
                built.append(m)
                x = m.eval()(x)
    model = nn.Sequential(*built)
    for mod in model.modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
            if mod.bias is not None:
                nn.init.zeros_(mod.bias)
    return model.train()


class TorchRunner:
    def __init__(self, spec, batch, x, y, compiled):
        import torch
        self.torch = torch
        self.name = "torch-compile" if compiled else "torch"
        model = torch_model(spec)
        kernels = [p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() >= 2]
        others = [p for n, p in model.named_parameters() if not (n.endswith("weight") and p.dim() >= 2)]
        self.opt = torch.optim.AdamW([{"params": kernels, "weight_decay": 1e-4},
                                      {"params": others, "weight_decay": 0.0}],
                                     lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
        self.model = torch.compile(model) if compiled else model
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y).long()
        t = time.perf_counter()
        self._step()  # for torch.compile the first call compiles forward and backward
        self.compile_s = time.perf_counter() - t
        self.xla_flops = float("nan")

    def _step(self):
        torch = self.torch
        self.opt.zero_grad(set_to_none=True)
        logits = self.model(self.x)
        loss = torch.nn.functional.cross_entropy(logits, self.y)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            correct = (logits.argmax(1) == self.y).sum()
        return loss, correct

    def run(self, n):
        times = []
        for _ in range(n):
            t = time.perf_counter()
            loss, correct = self._step()
            loss = float(loss.detach())  # what a training loop reads back; also a sync point
            times.append(time.perf_counter() - t)
        self.last_loss = loss
        return times


# ---------------------------------------------------------------- netspec (subprocess)


class NetspecRunner:
    name = "netspec"

    def __init__(self, exe, model_path, batch, steps, warmup, extra):
        self.cmd = [exe, "bench", model_path, "--batch-size", str(batch), "--steps", str(steps),
                    "--warmup", str(warmup), "--optimizer", "adamw", "--device", "cpu"] + extra
        self.compile_s = None
        self.flops = None
        self.last = None

    def round(self):
        p = subprocess.run(self.cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(self.cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
        line = [l for l in p.stdout.splitlines() if l.startswith("{")][-1]
        r = json.loads(line)
        self.last = r
        self.compile_s = r["compile_s"]
        self.flops = r["flops_per_step"]
        return r


# ---------------------------------------------------------------- driver


def pct(xs, q):
    xs = sorted(xs)
    i = min(len(xs) - 1, max(0, int(round(q * (len(xs) - 1)))))
    return xs[i]


def fmt_ratio(r):
    return "n/a" if r is None or not math.isfinite(r) else f"{r:.2f}"


def bench_model(model, args, fws, log):
    import numpy as np
    path = resolve_model(model)
    spec = parse_spec(path)
    B = args.batch_size
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, *spec["input"]), dtype=np.float32)
    y = rng.integers(0, spec["classes"], size=B).astype(np.int32)
    runners = {}
    for fw in fws:
        t = time.perf_counter()
        try:
            if fw == "netspec":
                runners[fw] = NetspecRunner(args.netspec, path, B, args.steps, args.warmup, [])
            elif fw == "netspec-b":
                runners[fw] = NetspecRunner(args.netspec_b, path, B, args.steps, args.warmup, [])
            elif fw == "jax":
                runners[fw] = JaxRunner(spec, B, x, y)
            elif fw == "torch":
                runners[fw] = TorchRunner(spec, B, x, y, compiled=False)
            elif fw == "torch-compile":
                runners[fw] = TorchRunner(spec, B, x, y, compiled=True)
            log(f"  {fw}: ready in {time.perf_counter() - t:.1f} s")
        except Exception as e:  # report and go on: one framework failing must not hide the others
            log(f"  {fw}: FAILED to set up: {type(e).__name__}: {str(e)[:400]}")
    per_round = []
    for r in range(args.rounds):
        order = list(runners)
        order = order[r % len(order):] + order[:r % len(order)]
        res = {}
        for fw in order:
            try:
                if fw in ("netspec", "netspec-b"):
                    out = runners[fw].round()
                    res[fw] = {"median_ms": out["ms_per_step_median"], "p10_ms": out.get("ms_per_step_p10"),
                               "p90_ms": out.get("ms_per_step_p90"), "min_ms": out["ms_per_step_min"],
                               "cpu_ms": out.get("cpu_ms_per_step")}
                else:
                    runners[fw].run(args.warmup)
                    c0 = time.process_time()
                    ts = [t * 1e3 for t in runners[fw].run(args.steps)]
                    cpu = (time.process_time() - c0) * 1e3 / args.steps
                    res[fw] = {"median_ms": statistics.median(ts), "p10_ms": pct(ts, 0.1), "p90_ms": pct(ts, 0.9),
                               "min_ms": min(ts), "cpu_ms": cpu}
            except Exception as e:
                log(f"  round {r + 1} {fw}: FAILED: {type(e).__name__}: {str(e)[:400]}")
        log(f"  round {r + 1} ({', '.join(order)}): " +
            ", ".join(f"{fw} {v['median_ms']:.2f} ms (min {v['min_ms']:.2f}, CPU {v.get('cpu_ms') or float('nan'):.1f})"
                      for fw, v in res.items()))
        per_round.append(res)
    flops = runners["netspec"].flops if "netspec" in runners and runners["netspec"].flops else None
    xla_flops = runners["jax"].xla_flops if "jax" in runners else float("nan")
    summary = {"model": spec["name"], "spec_file": os.path.relpath(path, ROOT), "input": spec["input"],
               "batch_size": B, "flops_per_step": flops, "jax_xla_cost_flops": xla_flops, "frameworks": {},
               "ratios": {}}
    for fw in runners:
        meds = [rr[fw]["median_ms"] for rr in per_round if fw in rr]
        if not meds:
            continue
        med = statistics.median(meds)
        mins = [rr[fw]["min_ms"] for rr in per_round if fw in rr]
        cpus = [rr[fw]["cpu_ms"] for rr in per_round if fw in rr and rr[fw].get("cpu_ms")]
        f = {"median_ms_per_round": [round(m, 3) for m in meds], "median_ms": round(med, 3),
             "min_ms_per_round": [round(m, 3) for m in mins], "min_ms": round(min(mins), 3),
             "cpu_ms_per_round": [round(c, 3) for c in cpus],
             "p10_ms_per_round": [rr[fw]["p10_ms"] for rr in per_round if fw in rr],
             "p90_ms_per_round": [rr[fw]["p90_ms"] for rr in per_round if fw in rr],
             "img_per_s": round(B / med * 1e3, 1), "compile_s": runners[fw].compile_s}
        if flops:
            f["gflops"] = round(flops / med / 1e6, 1)
        summary["frameworks"][fw] = f
    if "netspec" in summary["frameworks"]:
        for fw in summary["frameworks"]:
            if fw == "netspec":
                continue
            both = [rr for rr in per_round if "netspec" in rr and fw in rr]
            rs = [rr["netspec"]["median_ms"] / rr[fw]["median_ms"] for rr in both]
            # Ratio of the fastest steps: on a loaded machine the least-disturbed step of each side
            # estimates its undisturbed cost better than the median does.
            rmin = [rr["netspec"]["min_ms"] / rr[fw]["min_ms"] for rr in both]
            # Ratio of process CPU time per step (all threads): excludes time spent waiting for a core.
            rcpu = [rr["netspec"]["cpu_ms"] / rr[fw]["cpu_ms"] for rr in both
                    if rr["netspec"].get("cpu_ms") and rr[fw].get("cpu_ms")]
            if rs:
                summary["ratios"][f"netspec/{fw}"] = {"per_round": [round(q, 3) for q in rs],
                                                      "cpu_per_round": [round(q, 3) for q in rcpu],
                                                      "cpu_median": round(statistics.median(rcpu), 3) if rcpu else None,
                                                      "median": round(statistics.median(rs), 3),
                                                      "min_step_per_round": [round(q, 3) for q in rmin],
                                                      "min_step_median": round(statistics.median(rmin), 3)}
        ns = runners["netspec"].last or {}
        summary["netspec_codegen_ms"] = ns.get("codegen_ms")
        summary["netspec_peak_rss_mib"] = ns.get("peak_rss_mib")
    return summary


def cpu_description():
    """The CPU model and the vector ISA levels the kernels can use, from /proc/cpuinfo (Linux)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                if key.strip() == "model name":
                    model = val.strip()
                elif key.strip() == "flags":
                    flags = set(val.split())
                    break
    except OSError:
        pass
    isa = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                       "avx512_bf16", "amx_tile", "amx_bf16") if f in flags]
    top = ("avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "avx" if "avx" in flags
           else "sse" if flags else "unknown")
    return {"cpu_model": model, "isa": top, "isa_flags": isa}


def loadavg():
    try:
        return os.getloadavg()
    except OSError:
        return None


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="mnist-mlp,mnist-cnn,cifar-cnn-bn,bench/resnet18-32.ns")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--frameworks", default="netspec,jax,torch,torch-compile")
    p.add_argument("--netspec", default=os.path.join(ROOT, "target", "release", "netspec"),
                   help="the netspec binary (default: target/release/netspec)")
    p.add_argument("--netspec-b", default=None,
                   help="a second netspec binary, framework 'netspec-b' (A/B of two builds in the same rounds)")
    p.add_argument("--json-out", default=None)
    p.add_argument("--matmul-n", type=int, default=4096)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--max-isa", choices=["avx2"], default=None,
                   help="hold every framework's kernels to AVX2 on an AVX-512 CPU (XLA's --xla_cpu_max_isa, "
                        "oneDNN's ONEDNN_MAX_CPU_ISA, PyTorch's ATEN_CPU_CAPABILITY, MKL_ENABLE_INSTRUCTIONS, "
                        "NETSPEC_MAX_ISA): the instruction set of an AVX2 machine, not its caches or clocks")
    args = p.parse_args()
    if args.max_isa:
        # Before torch and jax load (each reads its variable once); netspec's subprocess inherits them.
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_max_isa=AVX2").strip()
        for k, v in [("ONEDNN_MAX_CPU_ISA", "AVX2"), ("ATEN_CPU_CAPABILITY", "avx2"),
                     ("MKL_ENABLE_INSTRUCTIONS", "AVX2"), ("NETSPEC_MAX_ISA", "avx2")]:
            os.environ[k] = v

    def log(s):
        print(s, file=sys.stderr, flush=True)

    import torch
    import jax
    import numpy as np
    sys.path.insert(0, HERE)
    import matmul_peak
    torch.set_num_threads(args.threads)
    fws = args.frameworks.split(",")
    if "netspec" in fws and not os.access(args.netspec, os.X_OK):
        raise SystemExit(f"netspec binary not found at {args.netspec}: build it (cargo build --release -p netspec)"
                         " or pass --netspec PATH, or leave netspec out of --frameworks")
    env = {"python": platform.python_version(), "jax": jax.__version__, "torch": torch.__version__,
           "numpy": np.__version__, "cpu": platform.processor() or platform.machine(), **cpu_description(),
           "cores": os.cpu_count(), "threads": args.threads, "loadavg_start": loadavg(),
           "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "XLA_FLAGS": os.environ.get("XLA_FLAGS"),
           "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
           **{k: os.environ.get(k) for k in ["ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS",
                                             "NETSPEC_MAX_ISA"] if os.environ.get(k)}}
    log(f"environment: {env}")
    log("matmul peak (before)...")
    mm_before = matmul_peak.measure(args.matmul_n, 5, args.threads)
    log(f"  {[(r['library'], r['gflops_median']) for r in mm_before['results']]}")
    results = []
    for model in args.models.split(","):
        log(f"{model} batch {args.batch_size}:")
        results.append(bench_model(model, args, fws, log))
    log("matmul peak (after)...")
    mm_after = matmul_peak.measure(args.matmul_n, 5, args.threads)
    log(f"  {[(r['library'], r['gflops_median']) for r in mm_after['results']]}")
    peak = max(mm_before["peak_gflops"], mm_after["peak_gflops"])
    peak_cpu = max(mm_before.get("peak_gflop_per_cpu_s", 0), mm_after.get("peak_gflop_per_cpu_s", 0))
    env["loadavg_end"] = loadavg()
    for r in results:
        for f in r["frameworks"].values():
            if "gflops" in f:
                f["fraction_of_matmul_peak"] = round(f["gflops"] / peak, 3)
            cpus = f.get("cpu_ms_per_round") or []
            if r["flops_per_step"] and cpus and peak_cpu:
                # Load-independent: FLOPs per CPU-second of the step over those of the matmul.
                per_cpu_s = r["flops_per_step"] / (statistics.median(cpus) / 1e3) / 1e9
                f["gflop_per_cpu_s"] = round(per_cpu_s, 1)
                f["fraction_of_matmul_per_cpu_s"] = round(per_cpu_s / peak_cpu, 3)
    out = {"environment": env, "args": vars(args), "matmul_before": mm_before, "matmul_after": mm_after,
           "matmul_peak_gflops": peak, "matmul_peak_gflop_per_cpu_s": peak_cpu, "results": results}
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(out, f, indent=1)
    # Markdown table on stdout.
    cols = [fw for fw in ["netspec", "netspec-b", "jax", "torch", "torch-compile"] if fw in fws]
    print(f"CPU: {env['cpu_model']}, ISA {env['isa']} ({' '.join(env['isa_flags'])}), {env['cores']} cores")
    print(f"matmul peak {peak} GFLOP/s ({mm_before['peak_library']}, n={args.matmul_n}, {args.threads} threads); "
          f"load {env['loadavg_start']} -> {env['loadavg_end']}")
    print()
    print("| model | batch | " + " | ".join(f"{c} ms/step" for c in cols) + " | " +
          " | ".join(f"netspec/{c}" for c in cols if c != "netspec") + " | netspec GFLOP/s (% peak) |")
    print("|---" * (2 + len(cols) + len(cols) - 1 + 1) + "|")
    for r in results:
        fw = r["frameworks"]
        cells = [f"{fw[c]['median_ms']:.2f}" if c in fw else "n/a" for c in cols]
        ratio_cells = []
        for c in cols:
            if c == "netspec":
                continue
            rr = r["ratios"].get(f"netspec/{c}")
            ratio_cells.append("n/a" if not rr else
                               f"{rr['median']:.2f} ({', '.join(f'{q:.2f}' for q in rr['per_round'])}); "
                               f"min-step {rr['min_step_median']:.2f}; CPU {rr['cpu_median']}")
        g = fw.get("netspec", {})
        gcell = f"{g['gflops']} ({100 * g['fraction_of_matmul_peak']:.0f}%)" if "gflops" in g else "n/a"
        print(f"| {r['model']} | {r['batch_size']} | " + " | ".join(cells) + " | " + " | ".join(ratio_cells) +
              f" | {gcell} |")


if __name__ == "__main__":
    main()
