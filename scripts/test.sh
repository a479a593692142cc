#!/usr/bin/env bash
# The whole test suite, from a clean clone: provision (plugin, data, JAX oracle, IREE, onnxruntime), then
# every test. (PyTorch parity is a separate command: scripts/parity.sh.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh plugin data onednn oracle iree onnxruntime
# No panics in the binary and its libraries: unwrap/expect are denied outside tests (crate attributes;
# each remaining one carries an #[allow] with its reason). Checking only, about 30 s warm.
cargo clippy --release --workspace --lib --bins -- -D warnings
# Test binaries open PJRT clients themselves; keep XLA's informational start-up lines out of the log, as
# the netspec binary does (warnings and errors still print).
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-1}"
cargo test --release --workspace "$@"
