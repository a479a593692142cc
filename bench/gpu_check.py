"""The GPU check of scripts/gpu-check.sh: every step a session lent a GPU runs, in one process with a
time budget, writing OUT/summary.json (rewritten after every step, so a cut-off run still reports) and
one log per step under OUT/logs/.

    python3 bench/gpu_check.py --bundle DIR --out OUT [--dry-run] [--budget-s 460]

The bundle (made by `scripts/gpu-check.sh --prepare` on a machine with Rust) holds a stripped netspec
binary, Fashion-MNIST, the CPU reference traces of mnist-mlp, the model specs and their exported JAX
scripts (bundle/manifest.json lists them). Steps:

1. `netspec doctor --device cuda`: plugin, devices, an exactly checked module.
2. mnist-mlp, one epoch of its recipe on the device, traced; `netspec diff-traces` against the CPU
   trace made when the bundle was prepared, in `cross-gpu` mode (and `strict`, reported).
3. resnet50 and vit-tiny at 224x224, batch 128, f32 and bf16: `netspec bench` (compile time, ms/step,
   img/s, the step's FLOPs) and the same step in JAX (`bench/jax_step.py` on the exported script:
   the network and recipe netspec trains, jit with donation); netspec/JAX ms-per-step ratio; MFU
   against the H200's 989 TFLOP/s dense bf16 (netspec's FLOP count of the step for both).

`--dry-run` runs the same steps on the CPU plugin with the bundle's small variants (64x64 inputs,
batch 2, a 50-step mnist-mlp run compared with a 50-step CPU trace), so the script is exercised
where there is no GPU. The CUDA plugin is found inside the Python install that runs this file
(`jax_plugins.xla_cuda13`/`xla_cuda12`), with NVIDIA's libraries beside it (netspec preloads them).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

H200_BF16_DENSE_TFLOPS = 989.0


def find_cuda_plugin():
    """The CUDA PJRT plugin .so of this Python's jax install, or None."""
    import importlib.util
    for name in ("jax_plugins.xla_cuda13", "jax_plugins.xla_cuda12"):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            continue
        for d in spec.submodule_search_locations:
            p = os.path.join(d, "xla_cuda_plugin.so")
            if os.path.exists(p):
                return p
    return None


class Check:
    def __init__(self, args):
        self.args = args
        self.out = os.path.abspath(args.out)
        self.bundle = os.path.abspath(args.bundle)
        self.logs = os.path.join(self.out, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.t0 = time.time()
        self.deadline = self.t0 + args.budget_s
        with open(os.path.join(self.bundle, "manifest.json")) as f:
            self.manifest = json.load(f)
        self.netspec = os.path.join(self.bundle, "netspec")
        self.device = "cpu" if args.dry_run else "cuda"
        self.env = dict(os.environ)
        self.summary = {
            "kind": "netspec-gpu-check", "dry_run": args.dry_run, "device": self.device,
            "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.t0)),
            "host": platform.node(), "python": sys.version.split()[0],
            "bundle": self.manifest, "budget_s": args.budget_s, "steps": [], "checks": {},
        }
        if not args.dry_run:
            plugin = args.plugin or find_cuda_plugin()
            self.summary["cuda_plugin"] = plugin
            if plugin:
                self.env["NETSPEC_PJRT_CUDA_PLUGIN"] = plugin
        else:
            self.env["JAX_PLATFORMS"] = "cpu"
        try:
            import jax
            self.summary["jax_version"] = jax.__version__
        except Exception as e:  # the JAX steps then report the error themselves
            self.summary["jax_version"] = "unavailable: %s" % e
        self.write()

    def write(self):
        self.summary["wall_s"] = round(time.time() - self.t0, 1)
        tmp = os.path.join(self.out, "summary.json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.summary, f, indent=1)
        os.replace(tmp, os.path.join(self.out, "summary.json"))

    def run(self, name, cmd, limit_s):
        """Runs cmd with a timeout (never past the budget); logs stdout+stderr; returns (rc, stdout)."""
        left = self.deadline - time.time() - 5
        limit = max(1, min(limit_s, left))
        entry = {"name": name, "cmd": cmd, "limit_s": round(limit, 1)}
        if left < 10:
            entry.update(rc=None, skipped="time budget spent")
            self.summary["steps"].append(entry)
            self.write()
            return None, ""
        t = time.time()
        log = os.path.join(self.logs, name + ".log")
        try:
            p = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=limit)
            rc, out, err = p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired as e:
            rc, out, err = "timeout", (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or ""), \
                (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        except OSError as e:
            rc, out, err = "error", "", str(e)
        with open(log, "w") as f:
            f.write("$ %s\n--- stdout\n%s\n--- stderr\n%s\n" % (" ".join(cmd), out, err))
        entry.update(rc=rc, wall_s=round(time.time() - t, 1), log=os.path.relpath(log, self.out))
        if rc != 0:
            entry["tail"] = (err or out)[-800:]
        self.summary["steps"].append(entry)
        self.write()
        return rc, out

    def b(self, *parts):
        return os.path.join(self.bundle, *parts)

    def doctor(self):
        rc, out = self.run("doctor", [self.netspec, "doctor", "--device", self.device], 240)
        self.summary["checks"]["doctor_ok"] = rc == 0

    def mnist(self):
        m = self.manifest["mnist"]["dry" if self.args.dry_run else "full"]
        trace = os.path.join(self.out, "mnist-mlp-%s.jsonl" % self.device)
        cmd = [self.netspec, "train", "mnist-mlp", "--device", self.device, "--data", self.b("data"),
               "--trace", trace, "--checkpoint-dir", os.path.join(self.out, "checkpoints")] + m["flags"]
        rc, out = self.run("mnist-mlp-train", cmd, 300)
        res = {"flags": m["flags"], "train_rc": rc}
        for line in out.splitlines():
            if line.startswith("test accuracy"):
                res["final"] = line.strip()
        if rc == 0:
            for mode in ("cross-gpu", "strict"):
                drc, dout = self.run("mnist-mlp-diff-" + mode,
                                     [self.netspec, "diff-traces", trace, self.b(m["reference"]), "--mode", mode], 60)
                res["diff_" + mode] = {0: "agree", 1: "differ"}.get(drc, "error %s" % drc)
        self.summary["mnist_mlp"] = res
        self.summary["checks"]["mnist_mlp_cuda_vs_cpu_cross_gpu"] = res.get("diff_cross-gpu") == "agree"
        self.write()

    def models(self):
        rows = []
        self.summary["models"] = rows
        py = self.args.python or sys.executable
        for entry in self.manifest["models"]["dry" if self.args.dry_run else "full"]:
            steps, warmup = entry["steps"], entry["warmup"]
            for prec in ("f32", "bf16"):
                tag = "%s-%s" % (entry["name"], prec)
                row = {"model": entry["name"], "precision": prec, "batch_size": entry["batch"],
                       "input": entry["input"]}
                rows.append(row)
                rc, out = self.run("netspec-bench-" + tag,
                                   [self.netspec, "bench", self.b(entry["spec"]), "--batch-size", str(entry["batch"]),
                                    "--precision", prec, "--steps", str(steps), "--warmup", str(warmup),
                                    "--device", self.device], 420)
                ns = last_json(out) if rc == 0 else None
                if ns:
                    row["netspec"] = {k: ns.get(k) for k in ("compile_s", "ms_per_step_median", "ms_per_step_p10",
                                                             "ms_per_step_p90", "img_per_s", "flops_per_step",
                                                             "platform", "peak_rss_mib")}
                rc, out = self.run("jax-step-" + tag,
                                   [py, os.path.join(os.path.dirname(os.path.abspath(__file__)), "jax_step.py"),
                                    self.b(entry["jax"][prec]), "--steps", str(steps), "--warmup", str(warmup)], 420)
                jx = last_json(out) if rc == 0 else None
                if jx:
                    row["jax"] = {k: jx.get(k) for k in ("compile_s", "ms_per_step_median", "ms_per_step_p10",
                                                         "ms_per_step_p90", "img_per_s", "backend", "jax_version",
                                                         "matmul_precision")}
                if ns and jx:
                    row["ratio_netspec_over_jax_ms"] = round(ns["ms_per_step_median"] / jx["ms_per_step_median"], 3)
                if ns:
                    tflops = ns["flops_per_step"] / (ns["ms_per_step_median"] / 1e3) / 1e12
                    row["netspec_tflops"] = round(tflops, 2)
                    row["netspec_mfu_vs_989"] = round(tflops / H200_BF16_DENSE_TFLOPS, 4)
                    if jx:
                        jt = ns["flops_per_step"] / (jx["ms_per_step_median"] / 1e3) / 1e12
                        row["jax_mfu_vs_989"] = round(jt / H200_BF16_DENSE_TFLOPS, 4)
                self.write()
        r50 = [r for r in rows if r["model"].startswith("resnet50") and r["precision"] == "bf16"]
        if r50 and not self.args.dry_run:
            r = r50[0]
            self.summary["checks"]["resnet50_bf16_ratio_le_1"] = r.get("ratio_netspec_over_jax_ms", 9e9) <= 1.0
            self.summary["checks"]["resnet50_bf16_img_per_s_ge_2500"] = \
                (r.get("netspec") or {}).get("img_per_s", 0) >= 2500
        self.write()


def last_json(out):
    for line in reversed(out.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dry-run", action="store_true", help="CPU plugin, small sizes")
    ap.add_argument("--budget-s", type=float, default=460, help="stop starting steps after this (default 460)")
    ap.add_argument("--plugin", help="the CUDA plugin .so (default: found in this Python's jax_plugins)")
    ap.add_argument("--python", help="Python for the JAX steps (default: this one)")
    args = ap.parse_args()
    c = Check(args)
    for stage in (c.doctor, c.mnist, c.models):
        try:
            stage()
        except Exception as e:  # record and go on: the summary must come back
            c.summary.setdefault("errors", []).append("%s: %r" % (stage.__name__, e))
            c.write()
    c.summary["finished"] = True
    c.write()
    print(json.dumps({"summary": os.path.join(c.out, "summary.json"), "checks": c.summary["checks"],
                      "wall_s": c.summary["wall_s"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
