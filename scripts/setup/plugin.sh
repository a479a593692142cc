#!/usr/bin/env bash
# Installs the pinned PJRT CPU plugin wheels into the netspec cache (idempotent).
#
#   lammps-jax-pjrt-cpu 0.11.2  the CPU plugin netspec runs on (PJRT C API 0.115)
#   xla-cpu-pjrt 0.0.1          an alternate plugin (API 0.81) that also ships pjrt_c_api.h, the header
#                               our hand-written bindings are checked against (crates/pjrt/tests/abi.rs)
#
# Cache root: $NETSPEC_HOME, else $XDG_CACHE_HOME/netspec, else ~/.cache/netspec (the same order as
# pjrt::find_plugin). Each wheel goes to <root>/pjrt/cpu/<name>-<version>/. A wheel is skipped when its
# stamp records the pinned sha256 and its key file still matches the hash in the wheel's RECORD.
# Prints the CPU plugin path on stdout (progress goes to stderr).
set -euo pipefail

if [[ -n "${NETSPEC_HOME:-}" ]]; then root="$NETSPEC_HOME"
elif [[ -n "${XDG_CACHE_HOME:-}" ]]; then root="$XDG_CACHE_HOME/netspec"
else root="$HOME/.cache/netspec"; fi
cpu_dir="$root/pjrt/cpu"
py="${PYTHON:-python3}"

say() { echo "plugin.sh: $*" >&2; }

# verify_record DIR RELPATH: the file's sha256 equals the one the wheel's RECORD lists for it.
verify_record() {
  "$py" - "$1" "$2" <<'PY'
import base64, glob, hashlib, sys
d, rel = sys.argv[1], sys.argv[2]
records = glob.glob(f"{d}/*.dist-info/RECORD")
if len(records) != 1:
    sys.exit(f"expected one RECORD in {d}, found {len(records)}")
want = None
for line in open(records[0], encoding="utf-8"):
    parts = line.rstrip("\n").rsplit(",", 2)
    if parts[0] == rel:
        want = parts[1]
if not want or not want.startswith("sha256="):
    sys.exit(f"{rel} has no sha256 in {records[0]}")
h = hashlib.sha256()
with open(f"{d}/{rel}", "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
got = "sha256=" + base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
if got != want:
    sys.exit(f"{d}/{rel}: hash {got} does not match RECORD {want}")
PY
}

# install NAME VERSION SHA256 KEYFILE: pip-installs one pinned wheel into cpu_dir/NAME-VERSION.
install() {
  local name=$1 version=$2 sha=$3 key=$4
  local dest="$cpu_dir/$name-$version"
  if [[ -f "$dest/.netspec-wheel-sha256" && "$(cat "$dest/.netspec-wheel-sha256")" == "$sha" \
        && -f "$dest/$key" ]]; then
    if verify_record "$dest" "$key" 2>/dev/null; then
      say "$name $version already installed and verified in $dest"
      return
    fi
    say "$dest/$key does not match its wheel's RECORD hash: reinstalling"
  fi
  say "installing $name==$version into $dest"
  mkdir -p "$cpu_dir"
  local tmp
  tmp=$(mktemp -d "$cpu_dir/.tmp-$name.XXXXXX")
  printf '%s==%s --hash=sha256:%s\n' "$name" "$version" "$sha" > "$tmp.req"
  # --no-deps: lammps-jax-pjrt-cpu declares a jax requirement it does not need at run time.
  if ! "$py" -m pip install --quiet --no-deps --only-binary=:all: --require-hashes \
        --target "$tmp" -r "$tmp.req" >&2; then
    rm -rf "$tmp" "$tmp.req"
    say "pip failed to install $name==$version"
    exit 1
  fi
  rm -f "$tmp.req"
  verify_record "$tmp" "$key"
  echo "$sha" > "$tmp/.netspec-wheel-sha256"
  # Swap in the complete install only now, so an interrupted run never looks installed.
  rm -rf "$dest"
  mv "$tmp" "$dest"
}

install lammps-jax-pjrt-cpu 0.11.2 1319390d948b39f69f7dade496b7c385149d9ca6097a6b62114da113216d9ad1 \
  lammps_jax_pjrt_cpu/pjrt_c_api_cpu_plugin.so
install xla-cpu-pjrt 0.0.1 55837b6b7b47daa717f2d9a5a03563ea0ceaa338d06a81a1e2d3f060d960decc \
  xla_plugins/xla_cpu_pjrt/include/pjrt_c_api.h

say "header: $cpu_dir/xla-cpu-pjrt-0.0.1/xla_plugins/xla_cpu_pjrt/include/pjrt_c_api.h"
say "plugin (export NETSPEC_PJRT_PLUGIN to override):"
echo "$cpu_dir/lammps-jax-pjrt-cpu-0.11.2/lammps_jax_pjrt_cpu/pjrt_c_api_cpu_plugin.so"
