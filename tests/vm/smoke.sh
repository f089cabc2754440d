#!/bin/bash
# Smoke test of the Soft-RoCE guest (ctest vm_smoke; runs inside the guest):
#   tests/vm/run tests/vm/smoke.sh
# An unprivileged FUSE mount (fusermount3); rxe up; rping; a short
# ib_send_bw -R; Debian's diod over TCP mounted by the guest kernel
# (trans=tcp); the RDMA diod mounted with trans=rdma; small files written and
# read back through the mounts and on the exported file systems.
set -euo pipefail
# shellcheck source=lib.sh
source "${VM_LIB:?not in the test guest: use tests/vm/run}"
trap vm_teardown EXIT

step() {
    local up
    read -r up _ < /proc/uptime
    echo "== [${up}s] $*"
}

step "guest: $(uname -r), $(nproc) CPUs"

step "FUSE: an unprivileged mount through fusermount3"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
fd=$(mktemp -d /tmp/fuse.XXXXXX)
mkdir "$fd/lower" "$fd/upper" "$fd/work" "$fd/mnt"
echo "fuse lower" > "$fd/lower/a"
chown -R nobody:nogroup "$fd"
as_nobody fuse-overlayfs -o "lowerdir=$fd/lower,upperdir=$fd/upper,workdir=$fd/work" "$fd/mnt"
grep " $fd/mnt " /proc/mounts
[[ $(as_nobody cat "$fd/mnt/a") == "fuse lower" ]]
as_nobody sh -c "echo 'fuse upper' > '$fd/mnt/b'"
[[ $(cat "$fd/upper/b") == "fuse upper" ]]
as_nobody fusermount3 -u "$fd/mnt"

step "Soft-RoCE"
vm_rxe_up
info=$(ibv_devinfo -d "$VM_RDMA_DEV")
grep -E 'transport|state|active_mtu' <<< "$info"
grep -q 'active_mtu:.*4096' <<< "$info"

step "rping"
vm_bg rping-server timeout 60 rping -s -a "$VM_RDMA_IP" -C 5
srv=$VM_BG_PID
vm_wait_until 20 "the rping server" vm_rdma_listening 7174
timeout 60 rping -c -a "$VM_RDMA_IP" -C 5 -v
wait "$srv"

step "ib_send_bw (rdma_cm)"
vm_bg ib_send_bw-server timeout 60 ib_send_bw -d "$VM_RDMA_DEV" -R -n 100 -s 65536
srv=$VM_BG_PID
vm_wait_until 20 "the ib_send_bw server" vm_rdma_listening 18515
timeout 60 ib_send_bw -d "$VM_RDMA_DEV" -R -n 100 -s 65536 "$VM_RDMA_IP" | grep -A1 '#bytes'
wait "$srv"

step "diod over TCP, kernel trans=tcp"
vm_mkexport /srv/tcp
vm_start_diod_tcp /srv/tcp 5650
vm_kmount_9p tcp /srv/tcp /mnt/tcp
echo "hello over tcp" > /mnt/tcp/hello
[[ $(cat /srv/tcp/hello) == "hello over tcp" ]]

step "RDMA diod, kernel trans=rdma"
vm_mkexport /srv/rdma
vm_start_diod_rdma /srv/rdma
vm_kmount_9p rdma /srv/rdma /mnt/rdma
grep " /mnt/rdma " /proc/mounts
echo "hello over rdma" > /mnt/rdma/hello
head -c 200000 /dev/urandom > /srv/rdma/blob
[[ $(cat /mnt/rdma/hello) == "hello over rdma" ]]
[[ $(cat /srv/rdma/hello) == "hello over rdma" ]]
cmp /srv/rdma/blob /mnt/rdma/blob
cp /mnt/rdma/blob /mnt/rdma/blob2
cmp /srv/rdma/blob /srv/rdma/blob2
ls -l /mnt/rdma

step "teardown"
vm_teardown
step "vm smoke: PASS"
