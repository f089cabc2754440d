#!/usr/bin/env bash
# ./tests/run.sh [LABEL]
#
# Installs what is missing (packaging/install-deps.sh), configures and builds
# the project, the ThreadSanitizer and AddressSanitizer+UBSan builds and the
# clang libFuzzer build, then runs every test through ctest and ends with
# ctest's summary. With LABEL (unit, integration, fuzz, stress, vm, tsan,
# asan, libfuzzer, …) only tests with that label run, and only the builds
# they need are made.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
label=${1:-}

./packaging/install-deps.sh

configure() {
  local dir=$1
  shift
  mkdir -p "$dir"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >"$dir/configure.log" 2>&1 \
    || { cat "$dir/configure.log" >&2; echo "run.sh: configuring $dir failed" >&2; exit 1; }
}
build() {
  echo "== building $1"
  ninja -C "$1"
}

configure build
build build

wants() { [[ -z "$label" ]] || [[ " $* " == *" $label "* ]]; }
if wants tsan sanitizer; then
  configure build-tsan -DP9_SANITIZE=thread
  build build-tsan
fi
if wants asan sanitizer; then
  configure build-asan -DP9_SANITIZE=address
  build build-asan
fi
if wants fuzz libfuzzer; then
  configure build-fuzz -DP9_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
  build build-fuzz
fi

args=(--test-dir build --output-on-failure)
[[ -n "$label" ]] && args+=(-L "^${label}\$")
exec ctest "${args[@]}"
