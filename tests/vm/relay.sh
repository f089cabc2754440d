#!/bin/bash
# In the Soft-RoCE guest: 9prdma-relay in front of Debian's diod (TCP only).
#  1. our client library over RDMA through the relay: the whole diod suite;
#  2. the guest kernel's 9p client (trans=rdma) through the relay: metadata
#     operations and small I/O, proving the relay speaks the kernel's
#     convention exactly.
#   tests/vm/run tests/vm/relay.sh
set -euo pipefail
source "${VM_LIB:?not in the test guest: use tests/vm/run}"
trap vm_teardown EXIT
relay_port=5700

vm_rxe_up
vm_mkexport /srv/exp
vm_start_diod_tcp /srv/exp 5650
diod_pid=$VM_BG_PID
vm_bg relay "$VM_REPO/build/bin/9prdma-relay" --listen "$VM_RDMA_IP:$relay_port" \
    --to 127.0.0.1:5650 --msize 65536 -v
relay_pid=$VM_BG_PID
vm_wait_until 20 "the relay's RDMA listener" vm_rdma_listening "$relay_port"

echo "== our client -> relay -> diod (tcp)"
P9_TRANSPORT=rdma P9_DIOD_HOST=$VM_RDMA_IP P9_DIOD_PORT=$relay_port \
  P9_DIOD_EXPORT=/srv/exp P9_DIOD_PID=$diod_pid \
  "$VM_REPO/build/bin/diod_client_test" --gtest_brief=1
kill -0 "$relay_pid"

echo "== kernel trans=rdma -> relay -> diod (tcp)"
rm -rf /srv/exp/*
vm_kmount_9p rdma /srv/exp /mnt/k "$relay_port"
m=/mnt/k
mkdir $m/dir
echo "through the relay" > $m/dir/file
[[ $(cat /srv/exp/dir/file) == "through the relay" ]]
[[ $(cat $m/dir/file) == "through the relay" ]]
ln -s file $m/dir/link
[[ $(readlink $m/dir/link) == file && $(readlink /srv/exp/dir/link) == file ]]
mv $m/dir/file $m/dir/renamed
[[ -f /srv/exp/dir/renamed && ! -e /srv/exp/dir/file ]]
chmod 600 $m/dir/renamed
[[ $(stat -c %a /srv/exp/dir/renamed) == 600 ]]
for i in $(seq 50); do echo "$i" > "$m/dir/f$i"; done
[[ $(ls $m/dir | wc -l) == 52 ]]
head -c 1048576 /dev/urandom > /tmp/blob
cp /tmp/blob $m/blob
cmp /tmp/blob /srv/exp/blob
cmp /tmp/blob $m/blob
rm $m/dir/f*
rm $m/dir/link $m/dir/renamed
rmdir $m/dir
[[ ! -e /srv/exp/dir ]]
df $m >/dev/null
umount $m
kill -0 "$relay_pid"
echo "relay: PASS"
