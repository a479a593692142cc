#!/usr/bin/env bash
# Installs the PJRT CUDA plugin and NVIDIA's CUDA libraries into the netspec cache, for machines with an
# NVIDIA GPU. Several GB; CI does not run it. Usage:
#
#   scripts/setup/cuda-plugin.sh [12|13]     # CUDA major version of the driver stack (default 12)
#
# Layout (what pjrt::find_plugin(Device::Cuda, None) looks for):
#   <root>/pjrt/cuda/cuda12/jax_plugins/xla_cuda12/xla_cuda_plugin.so   + <root>/pjrt/cuda/cuda12/nvidia/*/lib
#   <root>/pjrt/cuda/cuda13/jax_plugins/xla_cuda13/xla_cuda_plugin.so   + <root>/pjrt/cuda/cuda13/nvidia/...
# <root> is $NETSPEC_HOME, else $XDG_CACHE_HOME/netspec, else ~/.cache/netspec. netspec preloads every
# nvidia/*/lib/*.so* before loading the plugin, so no LD_LIBRARY_PATH is needed. libcuda.so.1 comes from
# the NVIDIA driver (CUDA 12 needs driver >= 525, CUDA 13 driver >= 580).
#
# Versions are pinned exactly (==); the CUDA 12 plugin wheel also by sha256. The NVIDIA wheel list follows jax-cuda1x-plugin 0.12.0.1's `with-cuda` requirements.
# Users with a system CUDA + cuDNN can instead install only the plugin wheel and set LD_LIBRARY_PATH.
set -euo pipefail

cuda="${1:-12}"
if [[ -n "${NETSPEC_HOME:-}" ]]; then root="$NETSPEC_HOME"
elif [[ -n "${XDG_CACHE_HOME:-}" ]]; then root="$XDG_CACHE_HOME/netspec"
else root="$HOME/.cache/netspec"; fi
py="${PYTHON:-python3}"
say() { echo "cuda-plugin.sh: $*" >&2; }

case "$cuda" in
  12)
    plugin_rel=jax_plugins/xla_cuda12/xla_cuda_plugin.so
    plugin_wheel_sha=5ec28e06198d094031c37590b4ea753ae8cde4879ab4b60baf40f0dffb673286
    reqs=(
      jax-cuda12-pjrt==0.12.0.1
      nvidia-cublas-cu12==12.9.3.13
      nvidia-cuda-cupti-cu12==12.9.79
      nvidia-cuda-nvcc-cu12==12.9.86
      nvidia-cuda-nvrtc-cu12==12.9.86
      nvidia-cuda-runtime-cu12==12.9.79
      nvidia-cudnn-cu12==9.27.0.42
      nvidia-cufft-cu12==11.4.1.4
      nvidia-cusolver-cu12==11.7.5.82
      nvidia-cusparse-cu12==12.5.10.65
      nvidia-nccl-cu12==2.32.3
      nvidia-nvjitlink-cu12==12.9.86
      nvidia-nvshmem-cu12==3.8.0
    ) ;;
  13)
    # CUDA 13 wheels dropped the -cu13 suffix for most components. Untested: no GPU was available.
    plugin_rel=jax_plugins/xla_cuda13/xla_cuda_plugin.so
    plugin_wheel_sha=""
    reqs=(
      jax-cuda13-pjrt==0.12.0.1
      nvidia-cublas==13.10.0.20
      nvidia-cuda-cupti==13.4.92
      nvidia-cuda-nvcc==13.5.37
      nvidia-cuda-nvrtc==13.5.37
      nvidia-cuda-runtime==13.5.37
      nvidia-cudnn-cu13==9.27.0.42
      nvidia-cufft==12.4.0.43
      nvidia-cusolver==12.4.1.2
      nvidia-cusparse==12.9.4.2
      nvidia-nccl-cu13==2.32.3
      nvidia-nvjitlink==13.5.37
      nvidia-nvshmem-cu13==3.8.0
    ) ;;
  *) say "usage: $0 [12|13]"; exit 2 ;;
esac

dest="$root/pjrt/cuda/cuda$cuda"
stamp="$dest/.netspec-requirements"
want="$(printf '%s\n' "${reqs[@]}")"
if [[ -f "$dest/$plugin_rel" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  say "CUDA $cuda plugin already installed in $dest"
else
  if ! command -v nvidia-smi >/dev/null 2>&1; then
    say "warning: nvidia-smi not found; the plugin needs an NVIDIA driver and GPU to create a client"
  fi
  say "installing ${reqs[*]} into $dest (several GB)"
  mkdir -p "$(dirname "$dest")"
  tmp=$(mktemp -d "$(dirname "$dest")/.tmp-cuda$cuda.XXXXXX")
  # --no-deps: the list is complete. The plugin goes first, alone, so that its wheel can be checked
  # against the pinned sha256 (pip's hash mode would otherwise demand hashes for every NVIDIA wheel).
  plugin_req="$tmp.req"
  if [[ -n "$plugin_wheel_sha" ]]; then
    printf '%s --hash=sha256:%s\n' "${reqs[0]}" "$plugin_wheel_sha" > "$plugin_req"
    hash_mode=(--require-hashes)
  else
    printf '%s\n' "${reqs[0]}" > "$plugin_req"
    hash_mode=()
  fi
  if ! "$py" -m pip install --quiet --no-deps --only-binary=:all: "${hash_mode[@]}" --target "$tmp" \
        -r "$plugin_req" >&2 \
     || ! "$py" -m pip install --quiet --no-deps --only-binary=:all: --target "$tmp" "${reqs[@]:1}" >&2; then
    rm -rf "$tmp" "$plugin_req"
    say "pip failed"
    exit 1
  fi
  rm -f "$plugin_req"
  echo "$want" > "$tmp/.netspec-requirements"
  rm -rf "$dest"
  mv "$tmp" "$dest"
fi
say "plugin (export NETSPEC_PJRT_CUDA_PLUGIN to override); check with: netspec doctor --device cuda"
echo "$dest/$plugin_rel"
