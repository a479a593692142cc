"""Compiles StableHLO modules with iree-compile (llvm-cpu) and runs them with IREE's runtime.

Test helper of crates/interp/tests/iree.rs (IREE is a cross-check of netspec's programs, never a runtime).
Usage: python run_iree.py JOBS.json RESULTS.json, with the IREE 3.13.0 venv's python
(scripts/setup/iree.sh). JOBS.json: {"jobs": [{"name", "mlir", "vmfb", "inputs": [{"file", "dtype",
"shape"}], "out_dir"}]}. Inputs and outputs are raw little-endian arrays (i1 as one byte). RESULTS.json
gets one object per job: {"name", "compile_s", "run_s", "outputs": [{"file", "dtype", "shape"}]} or
{"name", "compile_s", "error"} (with "timeout": true when iree-compile ran past the job's optional
"compile_timeout_s" and was stopped).

A job with "steps" is a training loop (crates/train/tests/iree_trace.rs): "inputs" are the first call's
arguments; before call k the inputs named in steps[k] ({"INDEX": {"file", "dtype", "shape"}}: the batch
and its learning rate) replace theirs, and after it each [output, input] pair of "feedback" (the state:
parameters, optimizer state, BN statistics, step counter) moves that output into that input. Its result
has "losses": output "loss_out" of every call, instead of "outputs".
"""

import json
import os
import subprocess
import sys
import time

import numpy as np
import iree.runtime as rt

FLAGS = [
    "--iree-input-type=stablehlo",
    "--iree-hal-target-device=local",
    "--iree-hal-local-target-device-backends=llvm-cpu",
    "--iree-llvmcpu-target-cpu=host",
]
DTYPES = {
    "f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64,
    "ui8": np.uint8, "ui32": np.uint32, "ui64": np.uint64, "i1": np.bool_,
}
NAMES = {np.dtype(v): k for k, v in DTYPES.items()}


def load(i):
    return np.fromfile(i["file"], dtype=DTYPES[i["dtype"]]).reshape(i["shape"])


def run_loop(job, module, args, res):
    losses = []
    t = time.time()
    for step in job["steps"]:
        for k, i in step.items():
            args[int(k)] = load(i)
        out = module.main(*args)
        out = [np.asarray(o) for o in (out if isinstance(out, tuple) else (out,))]
        losses.append(float(out[job["loss_out"]]))
        for o, i in job["feedback"]:
            args[i] = out[o]
    res["run_s"] = time.time() - t
    res["losses"] = losses
    return res


def run_job(job, compiler):
    res = {"name": job["name"]}
    t = time.time()
    try:
        p = subprocess.run([compiler, *FLAGS, job["mlir"], "-o", job["vmfb"]], capture_output=True,
                           text=True, timeout=job.get("compile_timeout_s"))
    except subprocess.TimeoutExpired:
        res["compile_s"] = time.time() - t
        res["error"] = "iree-compile stopped after %.0f s (compile_timeout_s)" % res["compile_s"]
        res["timeout"] = True
        return res
    res["compile_s"] = time.time() - t
    if p.returncode != 0:
        res["error"] = "iree-compile failed:\n" + p.stderr[-6000:]
        return res
    args = [load(i) for i in job["inputs"]]
    module = rt.load_vm_flatbuffer_file(job["vmfb"], driver="local-task")
    if "steps" in job:
        return run_loop(job, module, args, res)
    t = time.time()
    out = module.main(*args)
    if not isinstance(out, tuple):
        out = (out,)
    out = [np.asarray(o) for o in out]
    res["run_s"] = time.time() - t
    os.makedirs(job["out_dir"], exist_ok=True)
    outs = []
    for k, o in enumerate(out):
        f = os.path.join(job["out_dir"], "out%d.bin" % k)
        np.ascontiguousarray(o).tofile(f)
        outs.append({"file": f, "dtype": NAMES[o.dtype], "shape": list(o.shape)})
    res["outputs"] = outs
    return res


def main():
    jobs = json.load(open(sys.argv[1]))["jobs"]
    compiler = os.path.join(os.path.dirname(sys.executable), "iree-compile")
    results = []
    for job in jobs:
        try:
            results.append(run_job(job, compiler))
        except Exception as e:  # reported per job; the Rust test fails with the message
            results.append({"name": job["name"], "error": "%s: %s" % (type(e).__name__, e)})
        sys.stderr.write("iree: %s %s\n" % (job["name"], "error" if "error" in results[-1] else "ok"))
    with open(sys.argv[2] + ".tmp", "w") as f:
        json.dump({"results": results}, f)
    os.replace(sys.argv[2] + ".tmp", sys.argv[2])


if __name__ == "__main__":
    main()
