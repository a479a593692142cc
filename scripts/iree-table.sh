#!/usr/bin/env bash
# The full IREE table of docs/ORACLE.md: every zoo model's predict and train step (batch 2, inputs cut to
# 64x64 where the spec allows) compiled by XLA and by IREE 3.13 (llvm-cpu), both compared with the
# reference interpreter's f64 results. Slow: IREE compiles big train steps for many minutes each (the
# suite runs only the predict programs and three small train steps). Output: the table on stdout.
# Usage: scripts/iree-table.sh [MODEL...]   (default: every zoo model)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh plugin iree
models=$(IFS=,; echo "$*")
NETSPEC_IREE_MODELS="$models" cargo test --release -p interp --test iree -- --ignored --nocapture --test-threads 1 full_table
