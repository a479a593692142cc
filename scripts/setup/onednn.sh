#!/usr/bin/env bash
# Installs oneDNN 2.6.3 (Debian packages libdnnl-dev + libdnnl2, pinned) and verifies the sha256 of the
# library and of the headers netspec compiles against. netspec's build compiles its oneDNN convolution
# kernels (crates/pjrt/csrc/onednn_conv.c) when the header is present, and opens libdnnl.so.2 at run time:
# the XLA:CPU step then runs its f32 convolutions as oneDNN custom calls (ARCHITECTURE.md, "Convolution
# custom calls"). Idempotent: when the files are present and match, nothing is installed.
set -euo pipefail

pkgs=(libdnnl2=2.6.3-1 libdnnl-dev=2.6.3-1)
declare -A sha=(
  [/usr/lib/x86_64-linux-gnu/libdnnl.so.2.6]=a4f9d8057729f5ce8ddbbed61ef8d68425a9ca8a01415b7a8360ecb86bcb932e
  [/usr/include/oneapi/dnnl/dnnl.h]=6a207243b944178223023832e6a5d5327ac4cc2d61583fcf89b68befd3eb9ba6
  [/usr/include/oneapi/dnnl/dnnl_types.h]=946922fc2912da48b0bc29673fe76ca4b2ebc48378d6879cca9ec0d1c844bd5f
  [/usr/include/oneapi/dnnl/dnnl_config.h]=df8a8992f8ae73a493735d0effa6a1ff1703c9dc64dc3f64cd40aac28fb056c4
  [/usr/include/oneapi/dnnl/dnnl_version.h]=ae93feb696094a1a3aa655592a4fa235ef143e359f796909248e03fe40ecfbff
)

say() { echo "onednn.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

verify() {
  local ok=0 f got
  for f in "${!sha[@]}"; do
    if [[ ! -f "$f" ]]; then
      [[ "${1:-}" == quiet ]] || say "$f is missing"
      ok=1
      continue
    fi
    got=$(sha256sum "$f" | cut -d' ' -f1)
    if [[ "$got" != "${sha[$f]}" ]]; then
      [[ "${1:-}" == quiet ]] || say "$f has sha256 $got, expected ${sha[$f]}"
      ok=1
    fi
  done
  return $ok
}

if verify quiet; then
  say "oneDNN 2.6.3 present and verified"
  exit 0
fi

if [[ $(uname -m) != x86_64 ]]; then
  say "skipped: the pinned oneDNN packages are for x86_64; netspec builds and runs without the oneDNN custom calls here"
  exit 0
fi
command -v apt-get >/dev/null || die "apt-get not found: install ${pkgs[*]} by other means"
if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null; then
  as_root=(sudo)
else
  die "installing ${pkgs[*]} needs root, and sudo is not available"
fi
apt() { "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "$@"; }

say "installing ${pkgs[*]}"
if ! apt install -y -q --reinstall --no-install-recommends "${pkgs[@]}" >&2; then
  say "apt-get install failed; updating the package lists once and retrying"
  apt update -q >&2 || die "apt-get update failed"
  apt install -y -q --reinstall --no-install-recommends "${pkgs[@]}" >&2 || die "apt-get install ${pkgs[*]} failed (are the versions still in the archive?)"
fi
verify || die "the installed oneDNN files do not match their pinned hashes"
say "oneDNN 2.6.3 installed and verified"
