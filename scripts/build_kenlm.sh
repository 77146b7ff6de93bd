#!/usr/bin/env bash
# Build KenLM's lmplz and build_binary from the kenlm 0.3.0 sdist into $VENV/bin.
# No package ships these binaries; the Python module (pip kenlm) only queries models.
# Usage: scripts/build_kenlm.sh [VENV]   (idempotent: does nothing when both exist)
# Built binaries are kept in ~/.cache/ambert/ (AMBERT_CACHE_DIR, XDG_CACHE_HOME), as pip keeps the wheels it
# builds: another clone on this machine copies them once their shared libraries resolve (else it rebuilds).
set -euo pipefail
venv=${1:-.venv}
version=0.3.0
bin="$venv/bin"
tools=(lmplz build_binary)
if [ -x "$bin/lmplz" ] && [ -x "$bin/build_binary" ]; then
  exit 0
fi
cache="${AMBERT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ambert}/kenlm-$version-order6-$(uname -m)"
usable() {  # both tools in $1, and every shared library they link found
  for tool in "${tools[@]}"; do
    [ -x "$1/$tool" ] && ! ldd "$1/$tool" 2>/dev/null | grep -q "not found" || return 1
  done
}
if usable "$cache"; then
  install -m 0755 "${tools[@]/#/$cache/}" "$bin/"
  echo "build_kenlm: installed $bin/lmplz and $bin/build_binary (kenlm $version, built before: $cache)"
  exit 0
fi
debs=(cmake g++ make libboost-program-options-dev libboost-system-dev libboost-thread-dev
      libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev)
missing=()
for d in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$d" 2>/dev/null | grep -q "install ok installed" || missing+=("$d")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "build_kenlm: installing Debian packages: ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "build_kenlm: cannot build lmplz/build_binary: missing Debian packages ${missing[*]}." >&2
    echo "  Install them (as root: apt-get install ${missing[*]}) and rerun 'make setup'." >&2
    exit 1
  fi
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$venv/bin/pip" download -q --no-deps --no-binary kenlm "kenlm==$version" -d "$work" 2>&1 \
  | { grep -v "is ignored: it is neither a file nor a directory" >&2 || true; } \
  || { echo "build_kenlm: could not download the kenlm==$version source distribution from PyPI." >&2; exit 1; }
tar -xzf "$work/kenlm-$version.tar.gz" -C "$work"
src="$work/kenlm-$version"
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DKENLM_MAX_ORDER=6 >"$work/cmake.log" 2>&1 \
  || { tail -30 "$work/cmake.log" >&2; echo "build_kenlm: cmake configure failed (log above)." >&2; exit 1; }
cmake --build "$work/build" --target lmplz build_binary -j "$(nproc)" >"$work/build.log" 2>&1 \
  || { tail -30 "$work/build.log" >&2; echo "build_kenlm: compiling lmplz/build_binary failed (log above)." >&2; exit 1; }
install -m 0755 "$work/build/bin/lmplz" "$work/build/bin/build_binary" "$bin/"
mkdir -p "$cache" 2>/dev/null && install -m 0755 "$work/build/bin/lmplz" "$work/build/bin/build_binary" "$cache/" \
  2>/dev/null || echo "build_kenlm: could not keep a copy in $cache (the next clone builds again)" >&2
echo "build_kenlm: installed $bin/lmplz and $bin/build_binary (kenlm $version)"
