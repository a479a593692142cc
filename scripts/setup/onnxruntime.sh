#!/usr/bin/env bash
# Creates the venv of the ONNX export check (crates/onnx/tests/ort.rs) at
# $NETSPEC_HOME/onnxruntime/ort-1.32.0: onnxruntime 1.32.0 and onnx 1.23.2 (onnx.checker), every wheel
# sha256-pinned (onnxruntime-requirements.txt). About 45 MB of wheels, 200 MB installed, 15 s. Used by
# the test suite (scripts/test.sh). Idempotent. Prints the venv's python on the last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
home=${NETSPEC_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/netspec}
venv="$home/onnxruntime/ort-1.32.0"
. "$here/venv-common.sh"
pinned_venv "$venv" "$here/onnxruntime-requirements.txt" onnxruntime
"$venv/bin/python" -c '
import onnxruntime as ort, onnx, numpy as np
assert ort.__version__ == "1.32.0" and onnx.__version__ == "1.23.2"
print("onnxruntime:", ort.__version__, "onnx", onnx.__version__, ort.get_available_providers())' >&2
echo "$venv/bin/python"
