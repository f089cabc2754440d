#!/bin/bash
# The floor under a 4 KiB read through FUSE in the Soft-RoCE guest: fio
# random reads at depth 1 (as tests/bench/run's rand_read_qd1 runs them),
# rounds interleaved, on mount.9prdma (cache=none over RDMA), the kernel's
# 9p client (cache=none over RDMA, same diod), memfs with no caching
# (tests/bench/memfs.cc: a FUSE file system answering from memory, so its
# latency is the FUSE crossing's alone) and the export read directly. The
# kernel's latency plus memfs's minus direct's is as low as any FUSE client
# of this server can go; what 9prdma takes above it is the daemon's own.
#
#   tests/vm/run --smp 1 tests/bench/fuse_floor.sh SHARE_DIR
#   tests/vm/run --smp 1 -c 'ROUNDS=6 tests/bench/fuse_floor.sh' SHARE_DIR
#
# Prints one line per round: median latency in µs of each. Not a pass/fail
# test: a measuring tool, like tests/bench/run.
set -uo pipefail
# shellcheck source=/dev/null
source "${VM_LIB:?not in the test guest: run it with tests/vm/run}"
export VM_LOG_DIR=${VM_SHARE:-/tmp}/logs
mkdir -p "$VM_LOG_DIR"
trap vm_teardown EXIT
bin=$VM_REPO/build/bin
rounds=${ROUNDS:-4}
exp=/srv/floor
mnt=/mnt/floor
vm_mkexport "$exp"
dd if=/dev/urandom of="$exp/seq.bin" bs=1M count=8 status=none
chown -R 65534:65534 "$exp"
vm_start_diod_rdma "$exp" 5641 >/dev/null
modprobe 9pnet_rdma
mkdir -p "$mnt/ours" "$mnt/kernel" "$mnt/memfs"
"$bin/mount.9prdma" "$VM_RDMA_IP:$exp" -o trans=rdma,port=5640,cache=none,msize=64k,timeout=30 \
    "$mnt/ours" || exit 1
mount -t 9p -o "trans=rdma,port=5640,version=9p2000.L,aname=$exp,msize=65536,cache=none" \
    "$VM_RDMA_IP" "$mnt/kernel" || exit 1
"$bin/memfs" --preload "$exp" --timeout 0 --direct-io "$mnt/memfs" &
for _ in $(seq 50); do mountpoint -q "$mnt/memfs" && break; sleep 0.2; done
median_us() {
    echo 3 > /proc/sys/vm/drop_caches
    fio --name=r --filename="$1/seq.bin" --rw=randread --bs=4k --direct=0 --fadvise_hint=1 \
        --size=8m --io_size=$((512 * 4096)) --randrepeat=0 --output-format=json 2>/dev/null |
        python3 -c 'import json, sys
c = json.load(sys.stdin)["jobs"][0]["read"]["clat_ns"]
print("%.1f" % (c["percentile"]["50.000000"] / 1e3))'
}
for r in $(seq "$rounds"); do
    line="round $r:"
    for n in ours kernel memfs; do line+=" $n=$(median_us "$mnt/$n")"; done
    echo "$line direct=$(median_us "$exp")"
done
umount "$mnt/ours" "$mnt/kernel" "$mnt/memfs"
