#!/usr/bin/env bash
# The whole test suite, from a clean clone: provision (plugin, data, JAX oracle, IREE, onnxruntime), then
# every test. (PyTorch parity is a separate command: scripts/parity.sh.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh plugin data oracle iree onnxruntime
cargo test --release --workspace "$@"
