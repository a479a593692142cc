# Shared by the pinned-venv setup scripts: `pinned_venv VENV REQUIREMENTS TAG` creates VENV from the
# sha256-pinned REQUIREMENTS (no dependency resolution, wheels only) unless it already matches them,
# in which case it is kept. Messages are prefixed with TAG and go to stderr.
pinned_venv() {
  local venv=$1 req=$2 tag=$3
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
    print("; ".join(bad), file=sys.stderr)
    sys.exit(1)
PY
  }
  if [ -x "$venv/bin/python" ] && check "$venv/bin/python"; then
    echo "$tag: $venv/bin/python (up to date)" >&2
    return 0
  fi
  [ -x "$venv/bin/python" ] && { echo "$tag: $venv does not match the pins; recreating" >&2; rm -rf "$venv"; }
  command -v python3 >/dev/null || { echo "$tag: python3 not found; install CPython 3.11" >&2; return 1; }
  local pyver
  pyver=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  [ "$pyver" = "3.11" ] || echo "$tag: warning: python3 is $pyver; the pinned wheels are for CPython 3.11" >&2
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --require-hashes -r "$req" >&2
  check "$venv/bin/python"
}
