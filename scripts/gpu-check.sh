#!/usr/bin/env bash
# The GPU check: one prepared run for a session that is lent an NVIDIA GPU (an H200) for a few minutes.
#
#   scripts/gpu-check.sh --prepare          # here (Rust, the CPU plugin, Fashion-MNIST): build the bundle
#   scripts/gpu-check.sh --dry-run [OUT]    # here: the same steps on the CPU plugin, small sizes (~5 min)
#   scripts/gpu-check.sh [OUT]              # on the GPU machine (no Rust, no network): the real check
#
# The bundle is target/gpu-check/bundle (41 MB: a stripped netspec binary, Fashion-MNIST, the CPU
# reference traces of mnist-mlp, the resnet50/vit-tiny specs and their exported JAX steps). The device
# tool carries it: run(command="scripts/gpu-check.sh", carry=["target/gpu-check/bundle"], timeout_s=540).
# The GPU machine's python3 must have jax with jax-cuda13-pjrt (or -cuda12) and NVIDIA's libraries: the
# CUDA PJRT plugin is found inside that install. OUT defaults to $OUT; it receives summary.json (rewritten
# after every step) and logs/. The steps and their time budget are in bench/gpu_check.py; BENCHMARKS.md
# ("GPU") says what each figure means.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
bundle="$here/target/gpu-check/bundle"
mode=run
case "${1:-}" in
  --prepare) mode=prepare; shift ;;
  --dry-run) mode=dry; shift ;;
  -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
esac

if [[ $mode == prepare ]]; then
  data="${NETSPEC_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}"
  # GPU_CHECK_SKIP_BUILD=1: bundle the binary already in target/release (built from this tree).
  [[ "${GPU_CHECK_SKIP_BUILD:-0}" == 1 ]] || cargo build --release -p netspec
  rm -rf "$bundle"
  mkdir -p "$bundle"/{data,ref,specs,jax}
  strip -o "$bundle/netspec" target/release/netspec
  cp "$data"/*-ubyte.gz "$bundle/data/"
  ns="$bundle/netspec"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  # CPU reference traces of mnist-mlp (its recipe, one epoch; and the first 50 steps for the dry run).
  "$ns" train mnist-mlp --epochs 1 --data "$bundle/data" --trace "$bundle/ref/mnist-mlp-cpu.jsonl" \
    --checkpoint-dir "$tmp/a" | tail -1
  "$ns" train mnist-mlp --epochs 1 --max-steps 50 --data "$bundle/data" \
    --trace "$bundle/ref/mnist-mlp-cpu-50.jsonl" --checkpoint-dir "$tmp/b" | tail -1
  for m in resnet50 vit-tiny; do
    "$ns" zoo "$m" > "$bundle/specs/$m.ns"
    sed 's/^input 3 224 224$/input 3 64 64/' "$bundle/specs/$m.ns" > "$bundle/specs/$m-64.ns"
    grep -q '^input 3 64 64$' "$bundle/specs/$m-64.ns"
    for p in f32 bf16; do
      "$ns" export-jax "$bundle/specs/$m.ns" --batch-size 128 --precision "$p" -o "$bundle/jax/$m-$p.py"
      "$ns" export-jax "$bundle/specs/$m-64.ns" --batch-size 2 --precision "$p" -o "$bundle/jax/$m-64-$p.py"
    done
  done
  commit="$(git rev-parse HEAD)$(git diff --quiet HEAD || echo '+dirty')"
  python3 - "$bundle" "$commit" <<'EOF'
import json, os, sys, time
b, commit = sys.argv[1], sys.argv[2]
def model(name, spec, batch, inp, steps, warmup, suffix):
    return {"name": name, "spec": "specs/" + spec, "batch": batch, "input": inp, "steps": steps, "warmup": warmup,
            "jax": {p: "jax/%s%s-%s.py" % (name, suffix, p) for p in ("f32", "bf16")}}
m = {
    "commit": commit, "prepared_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "mnist": {"full": {"flags": ["--epochs", "1"], "reference": "ref/mnist-mlp-cpu.jsonl"},
              "dry": {"flags": ["--epochs", "1", "--max-steps", "50"], "reference": "ref/mnist-mlp-cpu-50.jsonl"}},
    "models": {"full": [model("resnet50", "resnet50.ns", 128, 224, 30, 5, ""),
                        model("vit-tiny", "vit-tiny.ns", 128, 224, 30, 5, "")],
               "dry": [model("resnet50", "resnet50-64.ns", 2, 64, 3, 1, "-64"),
                       model("vit-tiny", "vit-tiny-64.ns", 2, 64, 3, 1, "-64")]},
}
json.dump(m, open(os.path.join(b, "manifest.json"), "w"), indent=1)
EOF
  du -sh "$bundle"
  exit 0
fi

[[ -x "$bundle/netspec" && -f "$bundle/manifest.json" ]] || {
  echo "gpu-check.sh: no bundle at $bundle: run scripts/gpu-check.sh --prepare on the build machine" >&2
  exit 2
}
out="${1:-${OUT:-}}"
[[ -n "$out" ]] || { echo "gpu-check.sh: give OUT (or set \$OUT)" >&2; exit 2; }
mkdir -p "$out"
if [[ $mode == dry ]]; then
  # Here the JAX steps run in the oracle venv (CPU jax); netspec finds the CPU plugin in its cache.
  py="${NETSPEC_ORACLE_PYTHON:-${NETSPEC_HOME:-$HOME/.cache/netspec}/oracle/jax-0.10.2/bin/python}"
  exec "$py" bench/gpu_check.py --bundle "$bundle" --out "$out" --dry-run --budget-s "${GPU_CHECK_BUDGET_S:-1500}"
fi
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
exec python3 bench/gpu_check.py --bundle "$bundle" --out "$out" --budget-s "${GPU_CHECK_BUDGET_S:-460}"
