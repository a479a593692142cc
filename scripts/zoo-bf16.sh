#!/usr/bin/env bash
# Every zoo model's bf16 train step compiles and takes two donated steps (CPU plugin, batch 2, inputs
# of at most 64x64 as in crates/nn/tests/zoo.rs). Not part of scripts/test.sh: compiling the 16 bf16
# steps takes minutes; the suite checks every model's bf16 programs structurally and runs two.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh plugin
exec cargo test --release -p nn --test precision every_zoo_model_bf16_train_step_compiles -- --ignored --nocapture
