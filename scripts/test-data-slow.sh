#!/usr/bin/env bash
# The slow checks of your own data (issue 12), not part of scripts/test.sh: all 70,000 Fashion-MNIST
# images written as a PNG class folder and read back equal to the IDX files as a set
# (crates/train/tests/sources.rs), and `netspec train mnist-mlp` for one epoch on that folder against
# the IDX files: the test accuracies agree within 1 point (crates/cli/tests/data.rs). The suite runs
# the same comparison on a 10,000-image subset.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh plugin data
cargo test --release -p train --test sources -- --ignored --nocapture "$@"
cargo test --release -p netspec --test data -- --ignored --nocapture "$@"
