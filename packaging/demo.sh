#!/bin/sh
# ./packaging/demo.sh — mount.9prdma in two minutes.
#
# Starts diod on loopback exporting a demo directory, mounts it with the
# built mount.9prdma, shows a few operations working (and the same files on
# the server side), and unmounts. Needs root (diod and the FUSE mount) and a
# build (cmake -S . -B build -G Ninja && ninja -C build).
#
# Transport: over RDMA when this host has an active RDMA device with an IPv4
# address (e.g. Soft-RoCE in the test VM): Debian's diod speaks TCP only, so
# build/bin/9prdma-relay accepts the RDMA connection in front of it. Without
# an RDMA device the demo runs over TCP on 127.0.0.1 and says so.
# DEMO_TRANSPORT=tcp|rdma forces one.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)

# Set-up, so the demo works on a fresh machine: packages, then the build.
# Skipped for the inner run in the test guest (it shares this build).
if [ -z "${P9_DEMO_INNER:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (packages, diod, FUSE mount)" >&2; exit 1; }
  "$repo/packaging/install-deps.sh"
  cmake -S "$repo" -B "$repo/build" -G Ninja >/dev/null
  ninja -C "$repo/build" mount.9prdma 9prdma-relay >/dev/null
  # No RDMA device on this host: run the demo over real RDMA (Soft-RoCE) in
  # the test guest instead, unless a transport was asked for.
  if [ -z "${DEMO_TRANSPORT:-}" ] && ! ls /dev/infiniband/uverbs* >/dev/null 2>&1 \
     && [ -x "$repo/tests/vm/run" ]; then
    echo "demo.sh: no RDMA device here; running the demo in the Soft-RoCE test guest (tests/vm)"
    exec "$repo/tests/vm/run" --timeout 400 -c \
      ". \"\$VM_LIB\"; vm_rxe_up && mkdir -p /run/demo && mount -t tmpfs demo /run/demo &&
       TMPDIR=/run/demo P9_DEMO_INNER=1 \"$repo/packaging/demo.sh\""
  fi
fi

bin=${MOUNT_9PRDMA:-$repo/build/bin/mount.9prdma}
relay=${P9_RELAY:-$(dirname "$bin")/9prdma-relay}
diod=$(command -v diod || echo /usr/sbin/diod)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; sh -c "$*"; }

[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (diod + FUSE mount)" >&2; exit 1; }
[ -x "$bin" ] || { echo "demo.sh: $bin not built (cmake -S . -B build -G Ninja && ninja -C build)" >&2; exit 1; }
[ -x "$diod" ] || { echo "demo.sh: diod not installed (apt-get install diod)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/9prdma-demo.XXXXXX")
export_dir=$work/export
mnt=$work/mnt
mkdir -p "$export_dir/docs" "$mnt"
chmod 755 "$work"
echo "hello from the server side" >"$export_dir/docs/README"
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
port=$(free_port)
diod_pid=
relay_pid=

# The IPv4 address of the first active RDMA link's network device, if any.
rdma_ip() {
  command -v rdma >/dev/null 2>&1 || return 0
  netdev=$(rdma link show 2>/dev/null | awk '/state ACTIVE/ { for (i = 1; i < NF; i++) if ($i == "netdev") { print $(i + 1); exit } }')
  [ -n "$netdev" ] || return 0
  ip -4 -o addr show dev "$netdev" 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }'
}
transport=${DEMO_TRANSPORT:-}
ip=$(rdma_ip)
if [ -z "$transport" ]; then
  if [ -n "$ip" ] && [ -x "$relay" ]; then transport=rdma; else transport=tcp; fi
fi
if [ "$transport" = rdma ] && { [ -z "$ip" ] || [ ! -x "$relay" ]; }; then
  echo "demo.sh: DEMO_TRANSPORT=rdma needs an active RDMA device with an IPv4 address and $relay" >&2
  exit 1
fi

cleanup() {
  if grep -q " $mnt " /proc/mounts 2>/dev/null; then umount "$mnt" 2>/dev/null || umount -l "$mnt"; fi
  [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null && wait "$relay_pid" 2>/dev/null
  [ -n "$diod_pid" ] && kill "$diod_pid" 2>/dev/null && wait "$diod_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

if [ "$transport" = rdma ]; then
  say "Transport: RDMA to $ip (diod behind 9prdma-relay)"
else
  say "Transport: TCP on loopback (no active RDMA device with an IPv4 address here; on an RDMA host the same demo runs over RDMA)"
fi
say "Starting diod on 127.0.0.1:$port exporting $export_dir"
"$diod" -f -n -c /dev/null -e "$export_dir" -l "127.0.0.1:$port" -L "$work/diod.log" &
diod_pid=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do
  /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
  sleep 0.2
done

source=127.0.0.1:$export_dir
opts=trans=tcp,port=$port
if [ "$transport" = rdma ]; then
  rport=$(free_port)
  say "Starting 9prdma-relay: RDMA $ip:$rport -> TCP 127.0.0.1:$port"
  "$relay" --listen "$ip:$rport" --to "127.0.0.1:$port" &
  relay_pid=$!
  sleep 1
  source=$ip:$export_dir
  opts=trans=rdma,port=$rport
fi

say "Mounting"
run "$bin -o $opts,cache=loose $source $mnt"
run "grep ' $mnt ' /proc/mounts"
run "df -h $mnt"

say "Operations on the mount"
run "cat $mnt/docs/README"
run "echo 'written through 9P' > $mnt/docs/new.txt && mkdir -p $mnt/src/a/b"
run "dd if=/dev/urandom of=$mnt/blob bs=1M count=32 status=none && sha256sum $mnt/blob"
run "ln -s docs/new.txt $mnt/link && mv $mnt/docs/new.txt $mnt/docs/renamed.txt && readlink $mnt/link"
# User xattrs need the export's file system to have them (the guest's
# tmpfs, on Linux 6.1, does not).
xattrs=no
if python3 -c "import os; os.setxattr('$export_dir', 'user.probe', b'1')" 2>/dev/null; then
  xattrs=yes
  run "python3 -c \"import os; os.setxattr('$mnt/blob', 'user.color', b'blue'); print(os.getxattr('$mnt/blob', 'user.color'))\""
else
  echo "(the export's file system has no user xattrs: skipping the xattr step)"
fi
run "ls -laR $mnt | head -30"

say "The same files on the server side"
run "sha256sum $export_dir/blob"
run "cat $export_dir/docs/renamed.txt"
[ "$xattrs" = no ] || run "python3 -c \"import os; print(os.getxattr('$export_dir/blob', 'user.color'))\""

say "Unmounting"
run "umount $mnt"
sleep 0.5
if pgrep -f "mount.9prdma.* $mnt" | xargs -r ps -o stat= -p 2>/dev/null | grep -qv Z; then
  echo "demo.sh: the mount daemon is still running" >&2
  exit 1
fi
echo "unmounted; the mount daemon has exited"
say "Done"
