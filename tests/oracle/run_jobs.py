"""Runs a list of oracle jobs against exported netspec JAX scripts, in one Python process.

Usage: python run_jobs.py JOBS.json RESULTS.json

JOBS.json is a list of objects, each with "kind" and "script" (a script from `netspec export-jax`):
  grads:    init, batch, out, label_smoothing, adam_lr  → the script's dump_grads (loss, gradients,
            loss after one Adam step) written to `out` (safetensors)
  init:     seed, out                                   → the script's spec::init reimplementation
  order:    n, seed, epoch, shuffle                     → the epoch's data order
  schedule: steps, peak, schedule, warmup, total        → learning rates of updates 0..steps
  shapes:   batch                                       → traces loss and gradients with abstract
            values (jax.eval_shape): every parameter read exactly once, logits [B, classes]
RESULTS.json gets one object per job: {"ok": true, ...} or {"ok": false, "error": "..."}.
Used by crates/jaxgen/tests/*.rs; nothing here is needed at run time.
"""
import importlib.util
import json
import sys
import time
import traceback

_modules = {}


def load(path):
    if path not in _modules:
        spec = importlib.util.spec_from_file_location("netspec_export_%d" % len(_modules), path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _modules[path] = module
    return _modules[path]


def run(job):
    m = load(job["script"])
    kind = job["kind"]
    if kind == "grads":
        m.dump_grads(job["init"], job["batch"], job["out"], job["label_smoothing"], job["adam_lr"])
        return {}
    if kind == "init":
        params, stats = m.init_state(job["seed"])
        tensors = [(n, params[n]) for n, _, _, _ in m.PARAMS] + [(n, stats[n]) for n, _, _ in m.BUFFERS]
        m.write_safetensors(job["out"], tensors)
        return {}
    if kind == "order":
        return {"order": m.epoch_order(job["n"], job["seed"], job["epoch"], job["shuffle"])}
    if kind == "schedule":
        return {"lr": [m.learning_rate(s, job["peak"], job["schedule"], job["warmup"], job["total"])
                       for s in range(job["steps"])]}
    if kind == "shapes":
        jax, jnp = m.jax, m.jnp
        params = {n: jax.ShapeDtypeStruct(s, jnp.float32) for n, s, _, _ in m.PARAMS}
        stats = {n: jax.ShapeDtypeStruct(s, jnp.float32) for n, s, _ in m.BUFFERS}
        b = job["batch"]
        x = jax.ShapeDtypeStruct((b,) + tuple(m.INPUT), jnp.float32)
        y = jax.ShapeDtypeStruct((b,), jnp.int32)
        logits = jax.eval_shape(lambda p, s, x: m.run_forward(m.Ctx(p, s, False), x), params, stats, x)
        (loss, (new_stats, _)), grads = jax.eval_shape(
            lambda p, s, x, y: jax.value_and_grad(m.loss_fn, has_aux=True)(p, s, x, y, 0.1), params, stats, x, y)
        if tuple(logits.shape) != (b, m.NUM_CLASSES):
            raise ValueError("logits %s, expected %s" % (logits.shape, (b, m.NUM_CLASSES)))
        if set(new_stats) != set(stats):
            raise ValueError("train mode updated %s, buffers are %s" % (sorted(new_stats), sorted(stats)))
        for n, s, _, _ in m.PARAMS:
            if tuple(grads[n].shape) != tuple(s):
                raise ValueError("gradient of %s has shape %s" % (n, grads[n].shape))
        return {"loss_shape": list(loss.shape)}
    raise ValueError("unknown job kind %r" % kind)


def main():
    jobs = json.load(open(sys.argv[1]))
    results = []
    for job in jobs:
        t0 = time.time()
        try:
            r = run(job)
            r["ok"] = True
        except Exception as e:  # reported per job; the Rust test decides
            r = {"ok": False, "error": "%s: %s\n%s" % (type(e).__name__, e, traceback.format_exc(limit=4))}
        r["seconds"] = time.time() - t0
        results.append(r)
    json.dump(results, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
