#!/usr/bin/env bash
# The whole test suite, from a clean clone: provision (plugin, data, JAX oracle, IREE), then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh plugin data oracle iree
cargo test --release --workspace "$@"
