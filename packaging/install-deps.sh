#!/usr/bin/env bash
# Installs every Debian (bookworm) package that building, testing and the
# demo need. Idempotent: installs only what is missing, and touches the
# network only then. Run as root.
set -euo pipefail

packages=(
  # build
  cmake ninja-build g++ pkg-config clang clang-14 libclang-rt-14-dev
  libfuse3-dev fuse3 libabsl-dev librdmacm-dev libibverbs-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # auth=munge: MUNGE credentials for diod's Tauth
  libmunge-dev
  # tests and demo
  diod munge fio attr acl util-linux mount iproute2 procps psmisc python3 libpython3.11-testsuite
  git tar xz-utils make gcc
  # packaging tests
  dpkg-dev file shellcheck groff-base man-db systemd
  # benchmark report chart (tests/bench/run)
  python3-matplotlib
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing packages (${missing[*]}); run as root" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# FUSE needs its device; load the module if this kernel has it as one.
[[ -e /dev/fuse ]] || modprobe fuse 2>/dev/null || true

# The Soft-RoCE test guest (kernel, qemu, RDMA-enabled diod), if present.
here=$(cd "$(dirname "$0")/.." && pwd)
if [[ -x "$here/tests/vm/setup" && -z "${P9_SKIP_VM_SETUP:-}" ]]; then
  "$here/tests/vm/setup"
fi
