#!/usr/bin/env bash
# Creates the IREE venv (test dependency only: iree-compile + IREE's Python runtime) at
# $NETSPEC_HOME/iree/iree-3.13.0, pinned by hash. Runnable on its own; idempotent (a venv whose pip freeze
# matches the pins is kept). Prints the venv's python last.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
home=${NETSPEC_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/netspec}
venv="$home/iree/iree-3.13.0"
req="$here/iree-requirements.txt"
want=$(grep -E '^[a-z_-]+==' "$req" | sed 's/ .*//' | tr 'A-Z_' 'a-z-' | sort)
if [ -x "$venv/bin/python" ]; then
  have=$("$venv/bin/python" -m pip freeze 2>/dev/null | tr 'A-Z_' 'a-z-' | sort)
  if [ "$have" = "$want" ]; then echo "iree: $venv/bin/python (iree 3.13.0, up to date)"; exit 0; fi
  echo "iree: $venv does not match the pins; recreating"
  rm -rf "$venv"
fi
command -v python3 >/dev/null || { echo "iree: python3 not found; install CPython 3.11 (needed by the pinned wheels)" >&2; exit 1; }
pyver=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$pyver" = "3.11" ] || echo "iree: warning: python3 is $pyver; the pinned wheels are for CPython 3.11" >&2
mkdir -p "$(dirname "$venv")"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --only-binary=:all: --require-hashes -r "$req"
"$venv/bin/python" -c 'import iree.compiler, iree.runtime; print("iree: compiler and runtime import ok")'
"$venv/bin/iree-compile" --version | head -1
echo "iree: $venv/bin/python"
