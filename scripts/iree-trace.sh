#!/usr/bin/env bash
# IREE's corner of the four-corner table (docs/ORACLE.md): the first steps of each model's recipe run
# (`netspec train MODEL --max-steps N` on XLA) replayed on IREE 3.13 with the run's own batches, rates
# and initial state; writes MODEL-xla.jsonl and MODEL-iree.jsonl into DIR for `netspec diff-traces`.
# Slow (IREE compiles the batch-128 step; the XLA run evaluates the test split): not in the suite.
# Usage: scripts/iree-trace.sh DIR [MODEL...]   (default: mnist-mlp; steps: NETSPEC_IREE_TRACE_STEPS, 20)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: scripts/iree-trace.sh DIR [MODEL...]" >&2; exit 2; }
dir=$(realpath -m "$1"); shift
scripts/setup.sh plugin data iree
models=$(IFS=,; echo "${*:-mnist-mlp}")
NETSPEC_IREE_TRACE_DIR="$dir" NETSPEC_IREE_TRACE_MODELS="$models" \
  cargo test --release -p train --test iree_trace -- --ignored --nocapture
