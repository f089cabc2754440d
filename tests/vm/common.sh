# shellcheck shell=bash
# Host-side definitions shared by tests/vm/setup, build-diod-rdma and run.
# Sourced, never executed.
# shellcheck disable=SC2034  # used by the scripts that source this

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM_REPO=$(cd "$VM_DIR/../.." && pwd)
# Everything downloaded or built for the guest lives here (git-ignored).
VM_CACHE=${VM_CACHE:-$VM_REPO/build/vm-cache}

# Packages the guest harness needs on the host (the guest runs the host's /).
VM_PACKAGES=(
    qemu-system-x86 busybox-static kmod cpio xz-utils
    rdma-core ibverbs-utils ibverbs-providers rdmacm-utils perftest
    iproute2 diod fuse3 util-linux procps
    fuse-overlayfs  # a FUSE file system for the smoke test's FUSE check
)
# What tests/vm/build-diod-rdma needs to build diod 1.0.24 with RDMA.
# (Debian's Build-Depends minus debhelper/valgrind, plus autotools since the
# upstream tarball has no generated configure, plus the verbs/rdmacm headers.)
VM_DIOD_BUILD_PACKAGES=(
    build-essential pkg-config autoconf automake libtool patch
    libpopt-dev liblua5.1-0-dev libmunge-dev libcap-dev libncurses-dev
    libwrap0-dev libibverbs-dev librdmacm-dev
)

vm_die() { echo "${0##*/}: error: $*" >&2; exit 1; }
vm_log() { echo "${0##*/}: $*" >&2; }

# vm_missing_packages PKG... : print the packages that are not installed.
vm_missing_packages() {
    local p installed
    installed=" $(dpkg-query -W -f='${db:Status-Status}:${Package} ' "$@" 2>/dev/null || true) "
    for p in "$@"; do
        [[ $installed == *" installed:$p "* ]] || echo "$p"
    done
}

# vm_apt_install PKG... : install the missing ones (root only), updating the
# package lists first. No-op (and no root needed) when all are installed.
vm_apt_install() {
    local missing
    mapfile -t missing < <(vm_missing_packages "$@")
    ((${#missing[@]})) || return 0
    [[ $EUID -eq 0 ]] || vm_die "missing packages (${missing[*]}); run as root to install them"
    vm_log "installing: ${missing[*]}"
    vm_apt_update
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o DPkg::Lock::Timeout=600 \
        "${missing[@]}" >&2 || vm_die "apt-get install ${missing[*]} failed"
}

# vm_apt_update: 'apt-get update' at most once per process.
VM_APT_UPDATED=${VM_APT_UPDATED:-0}
vm_apt_update() {
    ((VM_APT_UPDATED)) && return 0
    apt-get update -q -o DPkg::Lock::Timeout=600 >&2 || vm_die "apt-get update failed"
    export VM_APT_UPDATED=1
}

# Guest-internal addresses of the Soft-RoCE veth pair (TEST-NET-1: exists only
# inside the guest, which has no network device at all).
VM_RDMA_IP=192.0.2.1
VM_RDMA_PEER_IP=192.0.2.2
