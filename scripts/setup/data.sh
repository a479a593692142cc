#!/usr/bin/env bash
# Installs Fashion-MNIST (Debian package dataset-fashion-mnist, pinned) and verifies the sha256 of its
# four files. Idempotent: when the files are present and match, nothing is installed.
#
# Files land in /usr/share/datasets/fashion-mnist/ (the default of train::data::DatasetKind::FashionMnist):
#   train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz  t10k-images-idx3-ubyte.gz  t10k-labels-idx1-ubyte.gz
set -euo pipefail

pkg=dataset-fashion-mnist
version=0.0~git20200523.55506a9-1
dir=/usr/share/datasets/fashion-mnist
declare -A sha=(
  [train-images-idx3-ubyte.gz]=b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7
  [train-labels-idx1-ubyte.gz]=0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056
  [t10k-images-idx3-ubyte.gz]=cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa
  [t10k-labels-idx1-ubyte.gz]=8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05
)

say() { echo "data.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

# verify [quiet]: every file exists and has its pinned hash; prints each problem unless quiet.
verify() {
  local ok=0 f got
  for f in "${!sha[@]}"; do
    if [[ ! -f "$dir/$f" ]]; then
      [[ "${1:-}" == quiet ]] || say "$dir/$f is missing"
      ok=1
      continue
    fi
    got=$(sha256sum "$dir/$f" | cut -d' ' -f1)
    if [[ "$got" != "${sha[$f]}" ]]; then
      [[ "${1:-}" == quiet ]] || say "$dir/$f has sha256 $got, expected ${sha[$f]}"
      ok=1
    fi
  done
  return $ok
}

if verify quiet; then
  say "Fashion-MNIST present and verified in $dir"
  exit 0
fi

command -v apt-get >/dev/null || die "apt-get not found: install $pkg=$version by other means, or place the four files in $dir"
if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null; then
  as_root=(sudo)
else
  die "installing $pkg needs root, and sudo is not available"
fi
apt() { "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "$@"; }

say "installing $pkg=$version"
# --reinstall repairs files that are present but altered; a stale package list gets one update.
if ! apt install -y -q --reinstall "$pkg=$version" >&2; then
  say "apt-get install failed; updating the package lists once and retrying"
  apt update -q >&2 || die "apt-get update failed"
  apt install -y -q --reinstall "$pkg=$version" >&2 || die "apt-get install $pkg=$version failed (is the version still in the archive?)"
fi

verify || die "the installed files do not match their pinned sha256 (see above)"
say "Fashion-MNIST installed and verified in $dir"
