"""How accurate IREE 3.13's (llvm-cpu) f32 sums are at the size of train-mode batch norm statistics.

Usage: python reduction_accuracy.py [N C H W], with the IREE 3.13.0 venv's python (scripts/setup/iree.sh);
default 128 32 28 28 (mnist-cnn's first BN at its recipe batch). Sums x and x*x over dims 0, 2, 3 (what a BN's
mean and variance reduce), x ~ N(0.5, 1) in f32, and prints the largest relative error per channel against
float64, next to numpy's f32 pairwise and sequential sums. Measured facts for docs/ORACLE.md ("Four corners").
"""

import os
import subprocess
import sys
import tempfile

import numpy as np
import iree.runtime as rt

from run_iree import FLAGS


def main():
    n, c, h, w = (int(a) for a in sys.argv[1:5]) if len(sys.argv) >= 5 else (128, 32, 28, 28)
    t = "tensor<%dx%dx%dx%dxf32>" % (n, c, h, w)
    text = """func.func @main(%%x: %(t)s) -> (tensor<%(c)dxf32>, tensor<%(c)dxf32>) {
  %%z = stablehlo.constant dense<0.0> : tensor<f32>
  %%s = stablehlo.reduce(%%x init: %%z) applies stablehlo.add across dimensions = [0, 2, 3] : (%(t)s, tensor<f32>) -> tensor<%(c)dxf32>
  %%x2 = stablehlo.multiply %%x, %%x : %(t)s
  %%s2 = stablehlo.reduce(%%x2 init: %%z) applies stablehlo.add across dimensions = [0, 2, 3] : (%(t)s, tensor<f32>) -> tensor<%(c)dxf32>
  return %%s, %%s2 : tensor<%(c)dxf32>, tensor<%(c)dxf32>
}
""" % {"t": t, "c": c}
    compiler = os.path.join(os.path.dirname(sys.executable), "iree-compile")
    with tempfile.TemporaryDirectory() as d:
        src, vmfb = os.path.join(d, "r.mlir"), os.path.join(d, "r.vmfb")
        open(src, "w").write(text)
        subprocess.run([compiler, *FLAGS, src, "-o", vmfb], check=True)
        m = rt.load_vm_flatbuffer_file(vmfb, driver="local-task")
        x = (np.random.default_rng(0).standard_normal((n, c, h, w)) + 0.5).astype(np.float32)
        s, s2 = [np.asarray(o).astype(np.float64) for o in m.main(x)]
    xd = x.astype(np.float64)
    for name, got, f in [("sum x", s, lambda v: v), ("sum x*x", s2, lambda v: v * v)]:
        ref = f(xd).sum(axis=(0, 2, 3))
        pair = f(x).sum(axis=(0, 2, 3), dtype=np.float32).astype(np.float64)
        seq = np.array([np.cumsum(f(x[:, k]).ravel(), dtype=np.float32)[-1] for k in range(c)], dtype=np.float64)
        rel = lambda v: float((np.abs(v - ref) / np.abs(ref)).max())
        print("%s over %d values per channel: IREE %.2e, numpy f32 pairwise %.2e, f32 sequential %.2e (max relative error over %d channels)"
              % (name, n * h * w, rel(got), rel(pair), rel(seq), c))


if __name__ == "__main__":
    main()
