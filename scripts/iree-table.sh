#!/usr/bin/env bash
# The full IREE table of docs/ORACLE.md: every zoo model's predict and train step (batch 2, inputs cut to
# 64x64 where the spec allows) compiled by XLA and by IREE 3.13 (llvm-cpu), both compared with the
# reference interpreter's f64 results. Slow: IREE compiles big train steps for many minutes each (the
# suite runs only seven predict programs and three small train steps). Output: the table on stdout, one
# row per program as soon as it is measured.
# Usage: scripts/iree-table.sh [MODEL...]   (default: every zoo model)
# Environment: NETSPEC_IREE_PROGRAMS=predict|train|all (default all); NETSPEC_IREE_COMPILE_TIMEOUT=SECONDS
# (iree-compile is stopped after that long; the row says "not compiled", no failure).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh plugin iree
models=$(IFS=,; echo "$*")
NETSPEC_IREE_MODELS="$models" cargo test --release -p interp --test iree -- --ignored --nocapture --test-threads 1 full_table
