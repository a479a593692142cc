#!/usr/bin/env bash
# Creates the benchmark harness venv at $NETSPEC_HOME/bench/jax-0.10.2-torch-2.15.0: the JAX oracle's pins
# plus PyTorch 2.15.0 and torchvision 0.29.2 (CPU use; see bench-requirements.txt for why some NVIDIA wheels
# are still needed, and why torchvision 0.29.2). Every wheel is pinned by sha256. Not run by CI; about 3 GB
# on disk. Idempotent: a venv whose installed versions match the pins is kept. Prints the venv's python on the last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
home=${NETSPEC_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/netspec}
venv="$home/bench/jax-0.10.2-torch-2.15.0"
req="$here/bench-requirements.txt"

# check PYTHON: exit 0 when every pinned distribution is installed at its pinned version.
check() {
  "$1" - "$req" <<'PY'
import sys, re, importlib.metadata as md
bad = []
for line in open(sys.argv[1]):
    m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line)
    if not m:
        continue
    try:
        have = md.version(m.group(1))
    except md.PackageNotFoundError:
        have = None
    if have != m.group(2):
        bad.append(f"{m.group(1)}: want {m.group(2)}, have {have}")
if bad:
    print("bench: " + "; ".join(bad), file=sys.stderr)
    sys.exit(1)
PY
}

if [ -x "$venv/bin/python" ] && check "$venv/bin/python"; then
  echo "bench: $venv/bin/python (up to date)" >&2
else
  [ -x "$venv/bin/python" ] && { echo "bench: $venv does not match the pins; recreating" >&2; rm -rf "$venv"; }
  command -v python3 >/dev/null || { echo "bench: python3 not found; install CPython 3.11" >&2; exit 1; }
  pyver=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  [ "$pyver" = "3.11" ] || echo "bench: warning: python3 is $pyver; the pinned wheels are for CPython 3.11" >&2
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --require-hashes -r "$req" >&2
  check "$venv/bin/python"
fi
# The smoke test: both frameworks import and compute on the CPU.
"$venv/bin/python" -c '
import jax, jax.numpy as jnp, torch, torchvision, PIL
from torchvision.transforms import v2
assert jax.__version__ == "0.10.2" and torch.__version__.startswith("2.15.0")
x = v2.Compose([v2.RandomResizedCrop(8), v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])(
    PIL.Image.new("RGB", (16, 12)))
assert tuple(x.shape) == (3, 8, 8)
print("bench: jax", jax.__version__, float(jnp.ones(3).sum()), "torch", torch.__version__,
      float(torch.ones(3).sum()), "torchvision", torchvision.__version__, "pillow", PIL.__version__,
      "threads", torch.get_num_threads())' >&2
echo "$venv/bin/python"
