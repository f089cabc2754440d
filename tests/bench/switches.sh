#!/bin/bash
# Where a 4 KiB read's time goes in the Soft-RoCE guest: fio random reads at
# depth 1, cache=none over RDMA, for one or more mount.9prdma binaries side
# by side with the kernel's 9p client (rounds interleaved, one diod), with
# each client's mean and median latency and, for each mount.9prdma and the
# diod, the context switches per read of every thread that made any. On one
# vCPU every switch is CPU time on the reader's critical path, so this is how
# a waiter woken per request shows up (the session's recovery thread was
# woken at every tag taken or returned, 2 switches per read, until 048a7b7).
#
#   tests/vm/run --smp 1 tests/bench/switches.sh SHARE_DIR
#   tests/vm/run --smp 1 -c 'BINS="/tmp/old/mount.9prdma build/bin/mount.9prdma" \
#       ROUNDS=4 tests/bench/switches.sh' SHARE_DIR
#
# Not a pass/fail test: a measuring tool, like tests/bench/run.
set -uo pipefail
# shellcheck source=/dev/null
source "${VM_LIB:?not in the test guest: run it with tests/vm/run}"
export VM_LOG_DIR=${VM_SHARE:-/tmp}/logs
mkdir -p "$VM_LOG_DIR"
trap vm_teardown EXIT
repo=$VM_REPO
read -r -a bins <<<"${BINS:-$repo/build/bin/mount.9prdma}"
rounds=${ROUNDS:-3}
ios=${IOS:-3072}
exp=/srv/switches
mnt=/mnt/switches

vm_mkexport "$exp"
dd if=/dev/urandom of="$exp/data" bs=1M count=64 status=none
chown 65534:65534 "$exp/data"
vm_start_diod_rdma "$exp" 5641 >/dev/null
modprobe 9pnet_rdma

# threads PID...: "tid switches" (voluntary + involuntary) per thread.
threads() {
    local p t
    for p in "$@"; do
        for t in /proc/"$p"/task/*; do
            awk -v t="${t##*/}" '/^voluntary_ctxt/ { v = $2 } /^nonvoluntary_ctxt/ { n = $2 }
                END { print t, v + n }' "$t/status"
        done
    done | sort
}
# per_read BEFORE AFTER LABEL: every thread's switches per read.
per_read() {
    join "$1" "$2" | awk -v n="$ios" -v l="$3" '$3 > $2 {
        printf "  %s thread %s: %.2f switches/read\n", l, $1, ($3 - $2) / n }'
}

names=()
pids=()
for i in "${!bins[@]}"; do
    names+=("9prdma$i")
    mkdir -p "$mnt/9prdma$i"
    "${bins[i]}" "$VM_RDMA_IP:$exp" -o trans=rdma,port=5640,cache=none,msize=64k,timeout=30 \
        "$mnt/9prdma$i" || { echo "mount ${bins[i]} failed"; exit 1; }
    pids+=("$(pgrep -n -f "^${bins[i]} ")")
    echo "9prdma$i: ${bins[i]} (pid ${pids[i]})"
done
names+=(kernel)
mkdir -p "$mnt/kernel"
mount -t 9p -o "trans=rdma,port=5640,version=9p2000.L,aname=$exp,msize=65536,cache=none" \
    "$VM_RDMA_IP" "$mnt/kernel"
diod_pid=$(pgrep -n -f "^$VM_DIOD_RDMA ")

for r in $(seq "$rounds"); do
    for i in "${!names[@]}"; do
        name=${names[i]}
        echo 3 >/proc/sys/vm/drop_caches
        [[ $name == kernel ]] || threads "${pids[i]}" >/tmp/sw.c0
        threads "$diod_pid" >/tmp/sw.d0
        lat=$(fio --name=r --filename="$mnt/$name/data" --rw=randread --bs=4k --direct=0 \
            --fadvise_hint=1 --size=64M --io_size=$((ios * 4096)) --randrepeat=0 \
            --ioengine=psync --fallocate=none --output-format=json | python3 -c '
import json, sys
c = json.load(sys.stdin)["jobs"][0]["read"]["clat_ns"]
print("mean %.0f us, median %.0f us" % (c["mean"] / 1e3, c["percentile"]["50.000000"] / 1e3))')
        [[ $name == kernel ]] || threads "${pids[i]}" >/tmp/sw.c1
        threads "$diod_pid" >/tmp/sw.d1
        printf 'round %d %-8s %s\n' "$r" "$name" "$lat"
        if ((r == rounds)); then
            [[ $name == kernel ]] || per_read /tmp/sw.c0 /tmp/sw.c1 "$name"
            per_read /tmp/sw.d0 /tmp/sw.d1 "diod ($name)"
        fi
    done
done
for name in "${names[@]}"; do umount "$mnt/$name"; done
