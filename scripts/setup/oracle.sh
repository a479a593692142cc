#!/usr/bin/env bash
# Creates the JAX oracle venv (test dependency only) at $NETSPEC_HOME/oracle/jax-0.10.2, pinned by hash.
# Runnable on its own; idempotent (a venv whose pip freeze matches the pins is kept).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
home=${NETSPEC_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/netspec}
venv="$home/oracle/jax-0.10.2"
req="$here/oracle-requirements.txt"
want=$(grep -E '^[a-z_]+==' "$req" | sed 's/ .*//' | tr 'A-Z' 'a-z' | sort)
if [ -x "$venv/bin/python" ]; then
  have=$("$venv/bin/python" -m pip freeze 2>/dev/null | tr 'A-Z' 'a-z' | sort)
  if [ "$have" = "$want" ]; then echo "oracle: $venv/bin/python (jax 0.10.2, up to date)"; exit 0; fi
  echo "oracle: $venv does not match the pins; recreating"
  rm -rf "$venv"
fi
command -v python3 >/dev/null || { echo "oracle: python3 not found; install CPython 3.11 (needed by jax 0.10.2 wheels)" >&2; exit 1; }
pyver=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$pyver" = "3.11" ] || echo "oracle: warning: python3 is $pyver; the pinned wheels are for CPython 3.11" >&2
mkdir -p "$(dirname "$venv")"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --only-binary=:all: --require-hashes -r "$req"
"$venv/bin/python" -c 'import jax, jax.numpy as jnp; assert jax.__version__ == "0.10.2"; print("oracle: jax", jax.__version__, "ok:", float(jnp.ones(3).sum()))'
echo "oracle: $venv/bin/python"
