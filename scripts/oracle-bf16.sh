#!/usr/bin/env bash
# The bf16 JAX oracle over every layer family (19 cases; the suite runs three of them).
# Needs the PJRT CPU plugin and the oracle venv (scripts/setup.sh plugin oracle). The table is
# printed and written to target/tmp/oracle-bf16-19.md; docs/ORACLE.md holds a measured copy.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh plugin oracle
exec cargo test --release -p jaxgen --test oracle oracle_bf16_every_layer_family -- --ignored --nocapture
