"""Times the train step of a `netspec export-jax` script, the way bench/compare.py times JAX: jit with
the state donated, the batch already on the device, each step timed to completion (the loss read).

    python bench/jax_step.py SCRIPT.py [--steps 30] [--warmup 5] [--matmul-precision default|highest]

The script is the network and its recipe exactly as netspec trains it (batch size, optimizer, label
smoothing, `--precision`): its `make_train_step` is the step. Parameters are drawn with jax.random
(the values do not matter for timing; the script's own `spec::init` is bit-exact but pure Python, too
slow for ResNet-50). `--matmul-precision default` (the default here) lets XLA choose the f32
matmul/convolution algorithm as it does for netspec's programs, whose products carry no precision
attribute; the exported script itself asks for HIGHEST (full f32: the oracle's setting). bf16 operands
are unaffected. Prints one JSON line: compile_s, ms_per_step (median, p10, p90), img_per_s, loss.
"""
import argparse
import importlib.util
import json
import statistics
import sys
import time


def load(path, precision_mode):
    src = open(path).read()
    if precision_mode == "default":
        src = src.replace('jax.config.update("jax_default_matmul_precision", "highest")\n', "")
        src = src.replace("precision=lax.Precision.HIGHEST", "precision=None")
    spec = importlib.util.spec_from_loader("exported_step", loader=None)
    mod = importlib.util.module_from_spec(spec)
    mod.__file__ = path
    exec(compile(src, path, "exec"), mod.__dict__)
    return mod


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("script")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--matmul-precision", choices=["default", "highest"], default="default")
    args = ap.parse_args()
    m = load(args.script, args.matmul_precision)
    jax, jnp = m.jax, m.jnp
    cfg = dict(m.RECIPE)
    m.set_precision(cfg.get("precision", "f32"))
    b = cfg["batch_size"]
    key = jax.random.PRNGKey(0)
    params = {}
    for i, (name, shape, init, _) in enumerate(m.PARAMS):
        k = jax.random.fold_in(key, i)
        if init[0] == "zeros":
            params[name] = jnp.zeros(shape, jnp.float32)
        elif init[0] == "ones":
            params[name] = jnp.ones(shape, jnp.float32)
        else:  # ("he", fan_in) or ("normal", std), as spec::init draws them
            std = (2.0 / init[1]) ** 0.5 if init[0] == "he" else init[1]
            params[name] = std * jax.random.normal(k, shape, jnp.float32)
    stats = {}
    for name, shape, init in m.BUFFERS:
        stats[name] = (jnp.ones if init[0] == "ones" else jnp.zeros)(shape, jnp.float32)
    opt = m.init_opt_state(params, cfg["optimizer"])
    step_fn = m.make_train_step(cfg)
    c, h, w = m.INPUT
    x = jax.random.uniform(jax.random.fold_in(key, 10_000), (b, c, h, w), jnp.float32, -1.0, 1.0)
    y = jax.random.randint(jax.random.fold_in(key, 10_001), (b,), 0, m.NUM_CLASSES, jnp.int32)
    lr, dkey = jnp.float32(1e-3), jax.random.PRNGKey(1)
    t = time.perf_counter()
    compiled = step_fn.lower(params, opt, stats, jnp.int32(0), x, y, lr, dkey).compile()
    compile_s = time.perf_counter() - t
    times = []
    s = 0
    for i in range(args.warmup + args.steps):
        t = time.perf_counter()
        params, opt, stats, loss, correct = compiled(params, opt, stats, jnp.int32(s), x, y, lr, dkey)
        loss.block_until_ready()
        if i >= args.warmup:
            times.append(time.perf_counter() - t)
        s += 1
    times.sort()
    med = statistics.median(times)
    out = {
        "framework": "jax", "jax_version": jax.__version__, "backend": jax.default_backend(),
        "model": m.NAME, "batch_size": b, "precision": cfg.get("precision", "f32"),
        "matmul_precision": args.matmul_precision, "compile_s": round(compile_s, 3),
        "ms_per_step_median": round(med * 1e3, 3),
        "ms_per_step_p10": round(times[len(times) // 10] * 1e3, 3),
        "ms_per_step_p90": round(times[min(len(times) - 1, (9 * len(times)) // 10)] * 1e3, 3),
        "img_per_s": round(b / med, 1), "steps": args.steps, "warmup": args.warmup,
        "last_loss": float(loss),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
