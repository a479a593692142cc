#!/usr/bin/env bash
# Logit parity with the reference PyTorch models (torchvision, timm) for every zoo model that is one,
# and the torchvision/timm -> netspec -> torchvision/timm weights round trip: provisions the plugin and
# the pinned PyTorch venv (scripts/setup/parity.sh, 2.4 GB of wheels), then runs the ignored test
# crates/train/tests/parity.rs. Not part of scripts/test.sh (see README, "PyTorch parity").
# Measured: 489 s for the 10 models on the 2-core machine under load (load average 12); the Python side
# (the reference models in float32 and float64) is most of it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh plugin
NETSPEC_PARITY_PYTHON=$(scripts/setup/parity.sh | tail -n 1)
export NETSPEC_PARITY_PYTHON
cargo test --release -p train --test parity -- --ignored --nocapture "$@"
