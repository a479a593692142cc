#!/usr/bin/env bash
# Soak benchmark (not part of scripts/test.sh): host memory over a long training run.
# Trains mnist-mlp on Fashion-MNIST and prints the process's resident memory (VmRSS from
# /proc/PID/status) when each epoch line appears, for EPOCHS epochs (default 20); then stops the run
# with SIGTERM (the schedule has one epoch more, so the process is still training when the last
# figure is read, not exiting) and prints the growth from epoch 1 to epoch EPOCHS.
#   scripts/soak.sh [EPOCHS] [extra netspec train flags, e.g. --data DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
epochs="${1:-20}"
shift || true
bin="${NETSPEC_BIN:-target/release/netspec}"
[ -x "$bin" ] || cargo build --release -p netspec
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
out="$work/out.txt"
"$bin" train mnist-mlp --epochs "$((epochs + 1))" --checkpoint-dir "$work/ck" "$@" \
    >"$out" 2>"$work/err.txt" &
pid=$!
seen=0
first=""
last=""
mib() { echo "scale=1; $1/1024" | bc; }
while [ "$seen" -lt "$epochs" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
        cat "$work/err.txt" >&2
        echo "soak: the run ended after $seen epochs" >&2
        exit 1
    fi
    n=$(grep -c '^epoch ' "$out" || true)
    if [ "$n" -gt "$seen" ]; then
        seen=$n
        last=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
        [ -n "$first" ] || first=$last
        echo "after epoch $n: RSS $(mib "$last") MiB ($(mib $((last - first))) MiB since epoch 1)"
    fi
    sleep 0.05
done
kill -TERM "$pid"
wait "$pid" || true
echo "RSS after epoch 1: $(mib "$first") MiB; after epoch $seen: $(mib "$last") MiB; growth $(mib $((last - first))) MiB"
