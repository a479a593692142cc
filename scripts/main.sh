#!/usr/bin/env bash
# The main job, from a clean clone: provision (plugin, data), build, and train mnist-mlp on Fashion-MNIST on
# the CPU with its default recipe (lean4-mlir's: Adam(W) 1e-3 with weight decay 1e-4 on kernels, batch 128,
# cosine schedule with 1 warmup epoch, 12 epochs). One line per epoch; the last line states the test accuracy.
# Writes runs/mnist-mlp/{trace.jsonl,curves.png,last.safetensors}. Extra arguments go to `netspec train`
# (e.g. `--resume` to continue an interrupted run, `--max-steps 100` for a quick check).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh plugin data onednn
cargo build --release -q -p netspec
bin="${CARGO_TARGET_DIR:-target}/release/netspec"
out=runs/mnist-mlp
mkdir -p "$out"
"$bin" train mnist-mlp --device cpu --trace "$out/trace.jsonl" --checkpoint-dir "$out" "$@"
"$bin" plot "$out/trace.jsonl" -o "$out/curves.png"
