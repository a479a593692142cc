#!/usr/bin/env bash
# Every zoo model's bf16 train step compiles and takes two donated steps (CPU plugin, batch 2, inputs
# of at most 64x64 as in crates/nn/tests/zoo.rs), with finite state and a first loss within 25 % of the
# f32 step's (a sanity bound; it also prints the f32 loss at the bf16-rounded point). Every model is
# tried; the failures are listed at the end. Not part of scripts/test.sh: compiling the 17 models' f32
# and bf16 steps takes ~10 minutes; the suite checks every model's bf16 programs structurally and runs
# two. Measured: BENCHMARKS.md, "Mixed precision (bf16) on the CPU".
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh plugin
exec cargo test --release -p nn --test precision every_zoo_model_bf16_train_step_compiles -- --ignored --nocapture
