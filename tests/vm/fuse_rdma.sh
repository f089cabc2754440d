#!/bin/bash
# In the Soft-RoCE guest: mount.9prdma over real RDMA.
#  1. through 9prdma-relay to Debian's diod (TCP): the FUSE syscall suite with
#     queues=1 (relay-syscalls-q1) and queues=4 (relay-syscalls-q4); a check
#     from the stats file that all four queues carried traffic, and that the
#     daemon exits promptly after umount with many inodes known
#     (relay-queues);
#  2. to the RDMA-enabled diod (a server nobody here wrote): workloads (tar,
#     make, 8 concurrent processes: rdma-diod-workloads) and 64 MiB written
#     and read back with checksums (rdma-diod-64m) — the load that kills the
#     kernel client's connection here.
#   tests/vm/run tests/vm/fuse_rdma.sh    (FUSE_RDMA_SUITES="..." to pick)
set -euo pipefail
[[ -n ${FUSE_RDMA_SUITES:-} ]] && set -- $FUSE_RDMA_SUITES
source "${VM_LIB:?not in the test guest: use tests/vm/run}"
trap vm_teardown EXIT
py=/usr/bin/python3
fuse_tests=$VM_REPO/tests/integration/fuse
suites=("$@")
((${#suites[@]})) || suites=(relay-syscalls-q1 relay-syscalls-q4 relay-queues rdma-diod-workloads rdma-diod-64m)
want() { [[ " ${suites[*]} " == *" $1 "* ]]; }

vm_rxe_up
# Exports must live on a real file system (see vm_mkexport).
vm_mkexport /srv/p9test
chmod 1777 /srv/p9test
export P9_TEST_TMP=/srv/p9test P9_RDMA_IP=$VM_RDMA_IP
export MOUNT_9PRDMA=$VM_REPO/build/bin/mount.9prdma

for q in 1 4; do
  if want relay-syscalls-q$q; then
    echo "== relay, queues=$q: syscall suite"
    P9_TEST_TRANSPORT=relay $py "$fuse_tests/syscalls_test.py" --opts queues=$q
  fi
done

if want relay-queues; then
  echo "== relay, queues=4: every queue carries traffic"
  vm_mkexport /srv/q4
  vm_start_diod_tcp /srv/q4 5660
  vm_bg relay-q4 "$VM_REPO/build/bin/9prdma-relay" --listen "$VM_RDMA_IP:5661" --to 127.0.0.1:5660
  vm_wait_until 20 "the relay" vm_rdma_listening 5661
  mkdir -p /mnt/q4
  "$MOUNT_9PRDMA" -o trans=rdma,port=5661,queues=4 "$VM_RDMA_IP:/srv/q4" /mnt/q4
  VM_MOUNTS+=(/mnt/q4)
  pids=()
  for i in $(seq 8); do
    (head -c 2097152 /dev/urandom > /mnt/q4/f$i && cmp /mnt/q4/f$i /srv/q4/f$i) &
    pids+=($!)
  done
  # Only these: a bare `wait` would also wait for the servers vm_bg started.
  for p in "${pids[@]}"; do wait "$p"; done
  sleep 1.5
  stats=/run/9prdma/-mnt-q4.stats
  cat "$stats"
  [[ $(grep -c '^queue ' "$stats") == 4 ]]
  if grep '^queue ' "$stats" | grep -q ' requests=0 '; then
    echo "a queue carried no traffic" >&2
    exit 1
  fi
  grep -q 'trans=rdma' "$stats"

  echo "== relay, queues=4: the daemon exits promptly after umount"
  # Every file looked up by four processes at once: fids on every queue for
  # each of them. Clunking those one by one at unmount kept the daemon
  # alive for tens of seconds here.
  mkdir /srv/q4/many
  (cd /srv/q4/many && seq -f 'f%04g' 250 | xargs touch)
  pids=()
  for i in 1 2 3 4; do
    $py -c 'import os, sys; os.chdir(sys.argv[1]); [os.lstat(n) for n in sorted(os.listdir("."))]' \
      /mnt/q4/many &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  daemon=$(pgrep -f "mount.9prdma .*/mnt/q4\$")
  start=$(date +%s%N)
  umount /mnt/q4
  vm_wait_until 5 "the mount daemon to exit after umount" bash -c "! kill -0 $daemon"
  echo "daemon exited $((($(date +%s%N) - start) / 1000000)) ms after umount began"
fi

if want rdma-diod-workloads; then
  # tar and make with cache=loose, as their users would mount: with
  # cache=none every path component of every call is looked up again (a
  # walk, a getattr and a clunk each), which took 140 s for tar here; the
  # syscall suites cover cache=none. tar extracts a small tree (gtest,
  # fuse3 and links of every kind), not the host's 2,000 files.
  for w in tar:cache=loose make:cache=loose concurrent:; do
    echo "== RDMA diod: workload ${w%%:*} (-o ${w#*:})"
    P9_TAR_TREES="gtest fuse3" P9_TEST_TRANSPORT=rdma-diod \
      $py "$fuse_tests/workloads_test.py" "${w%%:*}" --opts "${w#*:}"
  done
fi

if want rdma-diod-64m; then
  echo "== RDMA diod: 64 MiB sequential write + read-back with checksums"
  vm_mkexport /srv/big
  vm_start_diod_rdma /srv/big 5670
  mkdir -p /mnt/big
  "$MOUNT_9PRDMA" -o trans=rdma,port=5640 "$VM_RDMA_IP:/srv/big" /mnt/big
  VM_MOUNTS+=(/mnt/big)
  head -c 67108864 /dev/urandom > /tmp/big.src
  want_sum=$(sha256sum < /tmp/big.src)
  start=$SECONDS
  dd if=/tmp/big.src of=/mnt/big/big bs=1M conv=fsync status=none
  [[ $(sha256sum < /srv/big/big) == "$want_sum" ]]
  echo 3 > /proc/sys/vm/drop_caches
  [[ $(sha256sum < /mnt/big/big) == "$want_sum" ]]
  echo "64 MiB written and read back in $((SECONDS - start)) s"
  umount /mnt/big
fi
echo "fuse over rdma: PASS"
