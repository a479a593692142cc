"""How far netspec's and JAX's bf16 gradients are from the f32 referee, tensor by tensor.

Usage: python bf16_referee_stats.py SCRATCH_DIR
SCRATCH_DIR is the directory a bf16 oracle run leaves (`$TMPDIR/jaxgen-oracle-bf16-PID`, printed by
`scripts/oracle-bf16.sh` nowhere else): per case k, `casek-netspec.safetensors` (netspec's bf16
gradients), `casek-jax.safetensors` (JAX's bf16 gradients, `grad.NAME`) and
`casek-referee.safetensors` (JAX's f32 gradients at the bf16-rounded point). Prints, over all
gradient tensors, the distribution of netspec's error over JAX's error (RMS and max) against the
referee: the figures behind the oracle's REFEREE_FACTOR (docs/ORACLE.md, "bf16").
"""
import glob
import json
import os
import struct
import sys

import numpy as np


def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] != "F32":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=np.float32).astype(np.float64).reshape(t["shape"])
    return out


def main():
    d = sys.argv[1]
    u = 2.0 ** -8
    rows = []
    for ns_path in sorted(glob.glob(os.path.join(d, "case*-netspec.safetensors"))):
        k = os.path.basename(ns_path).split("-")[0]
        ns, jx, rf = read(ns_path), read(os.path.join(d, k + "-jax.safetensors")), read(os.path.join(d, k + "-referee.safetensors"))
        g = max(np.abs(jx["grad." + n]).max() for n in ns)
        for n, a in ns.items():
            j, r = jx["grad." + n], rf["grad." + n]
            rms = lambda x: float(np.sqrt(np.mean((x - r) ** 2)))
            mx = lambda x: float(np.abs(x - r).max())
            rows.append((k, n, rms(a) / g, rms(j) / g, mx(a) / g, mx(j) / g, float(np.abs(r).max()) / g))
    print("%d tensors in %d cases" % (len(rows), len({r[0] for r in rows})))
    for label, i, jj in (("RMS", 2, 3), ("max", 4, 5)):
        ratio = np.array([r[i] / r[jj] for r in rows if r[jj] > 0])
        q = np.array([r[i] / (2 * r[jj] + u) for r in rows])
        print("%s error, netspec / JAX against the referee: median %.2f, 90%% %.2f, 99%% %.2f, max %.2f; "
              "geometric mean %.3f; netspec/(2·JAX + u·G) max %.2f, > 1 in %d tensors"
              % (label, np.median(ratio), np.quantile(ratio, 0.9), np.quantile(ratio, 0.99), ratio.max(),
                 float(np.exp(np.mean(np.log(ratio)))), q.max(), int((q > 1).sum())))
        worst = sorted(rows, key=lambda r: -(r[i] / max(r[jj], 1e-30)))[:5]
        for r in worst:
            print("   %s %-28s netspec %.2e JAX %.2e (/G)  ratio %.2f" % (r[0], r[1], r[i], r[jj], r[i] / max(r[jj], 1e-30)))
    ns_all = np.array([r[2] for r in rows])
    jx_all = np.array([r[3] for r in rows])
    print("RMS error / G, all tensors: netspec mean %.3e, JAX mean %.3e" % (ns_all.mean(), jx_all.mean()))


if __name__ == "__main__":
    main()
