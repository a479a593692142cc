#!/usr/bin/env bash
# Creates the PyTorch parity venv (crates/train/tests/parity.rs) at
# $NETSPEC_HOME/parity/torch-2.15.0-tv-0.29.2-timm-1.0.31: torch 2.15.0 (with the CUDA libraries
# `import torch` loads), torchvision 0.29.2, timm 1.0.31, safetensors, every wheel sha256-pinned
# (parity-requirements.txt). 2.4 GB of wheels, 4.2 GB installed; measured 101 s download + 127 s
# install on this project's 2-core machine. Not run by the test suite or CI: scripts/parity.sh runs it.
# Idempotent. Prints the venv's python on the last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
home=${NETSPEC_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/netspec}
venv="$home/parity/torch-2.15.0-tv-0.29.2-timm-1.0.31"
. "$here/venv-common.sh"
pinned_venv "$venv" "$here/parity-requirements.txt" parity
"$venv/bin/python" -c '
import torch, torchvision, timm, safetensors
assert torch.__version__.startswith("2.15.0") and torchvision.__version__.startswith("0.29.2")
assert timm.__version__ == "1.0.31"
m = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10)
print("parity: torch", torch.__version__, "torchvision", torchvision.__version__, "timm", timm.__version__,
      sum(p.numel() for p in m.parameters()), "params in vit_tiny")' >&2
echo "$venv/bin/python"
