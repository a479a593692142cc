"""Runs netspec's exported ONNX models with onnxruntime, in one Python process.

Usage: python ort_check.py JOBS.json RESULTS.json

JOBS.json is a list of objects {"model", "onnx", "runs": [{"x", "shape", "out"}]}: each run feeds the
raw little-endian f32 file `x` of the given [B, C, H, W] shape to the model's `images` input and writes
its `logits` output to `out` (raw f32). When the `onnx` package is importable the model is also
checked with `onnx.checker.check_model(full_check=True)` (type and shape inference). RESULTS.json gets
one object per job: {"ok", "error"?, "seconds", "checker"}. Used by crates/onnx/tests/ort.rs; nothing
here is needed at run time.
"""
import json
import sys
import time
import traceback

import numpy as np
import onnxruntime as ort

try:
    import onnx
except ImportError:
    onnx = None


def run(job):
    t0 = time.time()
    checker = "not installed"
    if onnx is not None:
        onnx.checker.check_model(onnx.load(job["onnx"]), full_check=True)
        checker = "passed"
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(job["onnx"], opts, providers=["CPUExecutionProvider"])
    for r in job["runs"]:
        x = np.fromfile(r["x"], dtype="<f4").reshape(r["shape"])
        (y,) = sess.run(["logits"], {"images": x})
        np.asarray(y, dtype="<f4").tofile(r["out"])
    return {"seconds": time.time() - t0, "checker": checker}


def main():
    jobs = json.load(open(sys.argv[1]))
    results = []
    for job in jobs:
        try:
            r = run(job)
            r["ok"] = True
        except Exception:
            r = {"ok": False, "error": traceback.format_exc()}
        r["model"] = job["model"]
        results.append(r)
    json.dump({"onnxruntime": ort.__version__, "onnx": onnx.__version__ if onnx else None,
               "results": results}, open(sys.argv[2], "w"), indent=1)


if __name__ == "__main__":
    main()
