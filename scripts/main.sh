#!/usr/bin/env bash
# The main job, from a clean clone: provision (plugin, data), build, and train mnist-mlp on Fashion-MNIST
# on the CPU. Extra arguments go to `netspec train`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh plugin data
cargo build --release -q -p netspec
exec target/release/netspec doctor "$@"
