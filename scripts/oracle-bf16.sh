#!/usr/bin/env bash
# The bf16 JAX oracle over every layer family (22 cases; the suite runs three of them),
# each also against an f32 referee (docs/ORACLE.md, "bf16").
# Needs the PJRT CPU plugin and the oracle venv (scripts/setup.sh plugin oracle). The table is
# printed and written to target/tmp/oracle-bf16-22.md; docs/ORACLE.md holds a measured copy.
# NETSPEC_ORACLE_CASES=name,name runs a few. The scratch directory ($TMPDIR/jaxgen-oracle-bf16-PID)
# keeps both sides' gradients: tests/oracle/bf16_referee_stats.py DIR summarises them.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh plugin oracle
exec cargo test --release -p jaxgen --test oracle oracle_bf16_every_layer_family -- --ignored --nocapture
