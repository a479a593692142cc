#!/usr/bin/env bash
# Cross-backend trace check: MODEL trained for STEPS steps by `netspec train` (CPU plugin) and by its
# `netspec export-jax` script, from the same seeded init (spec::init, reproduced bit for bit by the
# script) without shuffling; then `netspec diff-traces` in MODE. Usage:
#   tests/oracle/cross_backend.sh MODEL STEPS MODE [OUTDIR]
# Needs: the netspec binary (NETSPEC, default target/release/netspec), the JAX oracle venv
# (scripts/setup/oracle.sh) and Fashion-MNIST (scripts/setup/data.sh).
set -euo pipefail
model=$1 steps=$2 mode=$3
out=${4:-$(mktemp -d)}
netspec=${NETSPEC:-target/release/netspec}
home=${NETSPEC_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/netspec}
py=${NETSPEC_ORACLE_PYTHON:-$home/oracle/jax-0.10.2/bin/python}
mkdir -p "$out"
"$netspec" export-jax "$model" -o "$out/$model.py"
t0=$(date +%s)
"$netspec" train "$model" --no-shuffle --max-steps "$steps" --trace "$out/$model-netspec.jsonl" \
  --checkpoint-dir "$out/ck" > "$out/$model-netspec.log" 2>&1
t1=$(date +%s)
JAX_PLATFORMS=cpu "$py" "$out/$model.py" --no-shuffle --max-steps "$steps" --trace "$out/$model-jax.jsonl" \
  > "$out/$model-jax.log" 2>&1
t2=$(date +%s)
echo "$model: netspec $((t1 - t0)) s, jax $((t2 - t1)) s (wall, including compile and eval)"
"$netspec" diff-traces --mode "$mode" "$out/$model-jax.jsonl" "$out/$model-netspec.jsonl"
