#!/usr/bin/env bash
# netspec's own provisioning. Each part is pinned and checked, idempotent, and runnable alone:
#   plugin  the XLA CPU PJRT plugin (pip wheel, sha256-pinned) into $NETSPEC_HOME/pjrt
#   data    Fashion-MNIST (Debian package dataset-fashion-mnist, sha256-checked files)
#   onednn  oneDNN 2.6.3 (Debian libdnnl-dev, sha256-checked): the CPU step's convolutions as custom calls
#   oracle  the JAX venv used only by tests (pinned wheels) into $NETSPEC_HOME/oracle
#   iree    the IREE compiler + runtime venv used only by tests (pinned wheels) into $NETSPEC_HOME/iree
#   onnxruntime  the onnxruntime + onnx venv of the ONNX export check (pinned wheels, ~45 MB)
#   parity  the PyTorch + torchvision + timm venv of scripts/parity.sh (pinned, 2.4 GB; not for CI)
#   cuda    the CUDA PJRT plugin + NVIDIA wheels (GBs; only on machines with an NVIDIA GPU)
#   bench   the benchmark harness venv (JAX + PyTorch, pinned; not used by tests or CI)
# $NETSPEC_HOME defaults to ${XDG_CACHE_HOME:-~/.cache}/netspec.
# Usage: scripts/setup.sh [plugin|data|onednn|oracle|iree|onnxruntime|parity|cuda|bench]...   (no argument: plugin data onednn)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(plugin data onednn)
for p in "${parts[@]}"; do
  case "$p" in
    plugin) "$here/setup/plugin.sh" ;;
    data) "$here/setup/data.sh" ;;
    onednn) "$here/setup/onednn.sh" ;;
    oracle) "$here/setup/oracle.sh" ;;
    iree) "$here/setup/iree.sh" ;;
    onnxruntime) "$here/setup/onnxruntime.sh" ;;
    parity) "$here/setup/parity.sh" ;;
    cuda) "$here/setup/cuda-plugin.sh" ;;
    bench) "$here/setup/bench.sh" ;;
    *) echo "setup.sh: unknown part '$p' (expected plugin, data, onednn, oracle, iree, onnxruntime, parity, cuda or bench)" >&2; exit 2 ;;
  esac
done
