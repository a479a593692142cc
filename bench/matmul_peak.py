"""The machine's practical fp32 matmul limit: GFLOP/s of an n×n by n×n product (2·n³ FLOPs).

Measured with numpy (its bundled BLAS), JAX (XLA:CPU's dot) and PyTorch (its BLAS) on the same data,
each with the thread count given (default: every core). The highest median is the "matmul peak" that
the comparison harness divides achieved training GFLOP/s by.

    python bench/matmul_peak.py [--n 4096] [--reps 5] [--threads 2]

Prints one JSON object on stdout. Import `measure` to run it inside another harness.
"""
import argparse
import json
import os
import statistics
import sys
import time


def _timed(fn, reps):
    """Wall times of `reps` calls after one warm-up call, and the process CPU time they used."""
    fn()  # warm-up: first call allocates, compiles, spins up thread pools
    times = []
    c0 = time.process_time()
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times, time.process_time() - c0


def _summary(name, timed, flops, version):
    times, cpu = timed
    gf = sorted(flops / t / 1e9 for t in times)
    # FLOPs per CPU-second (all threads): what one busy core delivers, whatever the machine's load.
    # Times the thread count it estimates the unloaded multi-threaded rate (if threads scale).
    per_cpu_s = flops * len(times) / cpu / 1e9 if cpu > 0 else float("nan")
    return {"library": name, "version": version, "gflops_median": round(statistics.median(gf), 1),
            "gflops_best": round(gf[-1], 1), "gflops_worst": round(gf[0], 1), "reps": len(times),
            "gflop_per_cpu_s": round(per_cpu_s, 1)}


def measure(n=4096, reps=5, threads=None, libraries=("numpy", "jax", "torch")):
    """Returns {"n", "threads", "results": [...], "peak_gflops", "peak_library"}."""
    threads = threads or os.cpu_count()
    flops = 2.0 * n ** 3
    results = []
    import numpy as np
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    if "numpy" in libraries:
        # numpy's BLAS thread count is fixed at import from the environment (OPENBLAS_NUM_THREADS);
        # compare.py sets it before importing numpy.
        results.append(_summary("numpy", _timed(lambda: a @ b, reps), flops, np.__version__))
    if "jax" in libraries:
        import jax
        import jax.numpy as jnp
        ja, jb = jax.device_put(a), jax.device_put(b)
        f = jax.jit(jnp.matmul)
        results.append(_summary("jax (XLA:CPU)", _timed(lambda: f(ja, jb).block_until_ready(), reps), flops,
                                jax.__version__))
    if "torch" in libraries:
        import torch
        torch.set_num_threads(threads)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        out = torch.empty_like(ta)
        with torch.no_grad():
            results.append(_summary("torch", _timed(lambda: torch.matmul(ta, tb, out=out), reps), flops,
                                    torch.__version__))
    best = max(results, key=lambda r: r["gflops_median"])
    best_cpu = max(results, key=lambda r: r["gflop_per_cpu_s"])
    return {"n": n, "threads": threads, "results": results, "peak_gflops": best["gflops_median"],
            "peak_library": best["library"], "peak_gflop_per_cpu_s": best_cpu["gflop_per_cpu_s"],
            "peak_cpu_library": best_cpu["library"]}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4096)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--libraries", default="numpy,jax,torch")
    a = p.parse_args()
    r = measure(a.n, a.reps, a.threads, tuple(a.libraries.split(",")))
    for x in r["results"]:
        print(f"{x['library']:>14}: median {x['gflops_median']} GFLOP/s (best {x['gflops_best']}, "
              f"worst {x['gflops_worst']}, {x['reps']} reps); {x['gflop_per_cpu_s']} GFLOP per CPU-second",
              file=sys.stderr)
    print(json.dumps(r))


if __name__ == "__main__":
    main()
