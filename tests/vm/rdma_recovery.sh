#!/bin/bash
# In the Soft-RoCE guest: mount.9prdma over RDMA survives losing its RDMA
# connection (recover=on).
#  1. the relay is killed (SIGKILL) while a file is open and being read and
#     written, then started again: the same descriptors carry on;
#  2. the rxe link (veth0) goes down for a few seconds under a read/write
#     loop, then up: no call hangs and every read is correct;
#  3. unmount with the relay gone is prompt.
#   tests/vm/run tests/vm/rdma_recovery.sh
set -euo pipefail
source "${VM_LIB:?not in the test guest: use tests/vm/run}"
trap vm_teardown EXIT
relay_port=5710
mnt=/mnt/rr
stats=/run/9prdma/-mnt-rr.stats

vm_rxe_up
vm_mkexport /srv/rr
vm_start_diod_tcp /srv/rr 5660
start_relay() {
  vm_bg relay "$VM_REPO/build/bin/9prdma-relay" --listen "$VM_RDMA_IP:$relay_port" \
      --to 127.0.0.1:5660
  relay_pid=$VM_BG_PID
  vm_wait_until 20 "the relay's RDMA listener" vm_rdma_listening "$relay_port"
}
start_relay
mkdir -p $mnt
# In the foreground under vm_bg, so its log is shown if this fails.
vm_bg mount9 "$VM_REPO/build/bin/mount.9prdma" -f -v -o trans=rdma,port=$relay_port,timeout=15 \
    "$VM_RDMA_IP:/srv/rr" $mnt
vm_wait_until 30 "the mount" mountpoint -q $mnt
VM_MOUNTS+=($mnt)
# Sum of the queues' reconnect counters (the stats file is rewritten every second).
reconnects() { sleep 1.2; grep -o 'reconnects=[0-9]*' "$stats" | awk -F= '{s += $2} END {print s + 0}'; }

echo "== 1. relay killed and restarted under open files"
head -c 4194304 /dev/urandom > /tmp/src
cp /tmp/src /srv/rr/src
# One process holds both descriptors across the restart; the shell signals
# it through files when to go on.
python3 - "$mnt" <<'EOF' &
import hashlib, os, sys, time
m = sys.argv[1]
rd = open(os.path.join(m, "src"), "rb", buffering=0)
wr = open(os.path.join(m, "dst"), "wb", buffering=0)
data = open("/tmp/src", "rb").read()
half = len(data) // 2
assert rd.read(half) == data[:half]
wr.write(data[:half]); os.fsync(wr.fileno())
open("/tmp/phase1", "w").close()
while not os.path.exists("/tmp/phase2"):
    time.sleep(0.05)
rest = b""
while len(rest) < len(data) - half:
    chunk = rd.read(len(data) - half - len(rest))
    assert chunk, "early EOF after reconnect"
    rest += chunk
assert rest == data[half:], "data read after reconnect differs"
wr.write(data[half:]); os.fsync(wr.fileno())
rd.close(); wr.close()
EOF
py=$!
vm_wait_until 60 "the first half" test -e /tmp/phase1
before=$(reconnects)
kill -9 "$relay_pid"
sleep 2
start_relay
touch /tmp/phase2
wait "$py"
cmp /tmp/src /srv/rr/dst
after=$(reconnects)
echo "reconnects: $before -> $after"
((after > before))

echo "== 2. rxe link down for 4 s under a read/write loop"
# Soft-RoCE in this kernel does not come back by itself from a link that
# went down under traffic (afterwards even rping cannot connect, and
# deleting rxe0 hung in our runs), so what is tested here is that nothing
# hangs: every call ends within timeout= (+ the flush timeout), and no read
# returns wrong data.
python3 - "$mnt" <<'EOF' &
import os, sys, time
m = sys.argv[1]
deadline = time.monotonic() + 20
i = ok = err = 0
while time.monotonic() < deadline:
    p = os.path.join(m, f"loop{i % 8}")
    data = os.urandom(65536 + i)
    try:
        with open(p, "wb") as f:
            f.write(data)
        with open(p, "rb") as f:
            got = f.read()
        if got != data:
            print(f"loop: file {p} differs after reading back", file=sys.stderr)
            sys.exit(1)
        ok += 1
    except OSError as e:
        print(f"loop: {p}: {e}", file=sys.stderr)
        err += 1
    i += 1
print(f"loop: {ok} ok, {err} failed with an error", file=sys.stderr)
sys.exit(0 if ok > 0 else 1)
EOF
loop=$!
sleep 3
ip link set "$VM_RDMA_NETDEV" down
sleep 4
ip link set "$VM_RDMA_NETDEV" up
start=$SECONDS
# Each call is bounded by timeout=15 (+ the flush timeout): the loop's last
# call ends within a minute of its deadline.
wait "$loop"
echo "loop finished $((SECONDS - start)) s after the link came back"
((SECONDS - start < 90))
# The mount still answers (with an error, if the fabric stays wedged)
# within its timeout: no call hangs.
start=$SECONDS
if stat $mnt/loop0 >/dev/null 2>&1; then r=ok; else r=error; fi
echo "stat after the outage: $r in $((SECONDS - start)) s"
((SECONDS - start < 60))

echo "== 3. unmount with the relay gone"
kill -9 "$relay_pid" 2>/dev/null || true
sleep 1
start=$SECONDS
timeout 60 umount $mnt
echo "umount took $((SECONDS - start)) s"
((SECONDS - start < 20))
VM_MOUNTS=()
echo "rdma recovery: OK"
