# shellcheck shell=bash
# tests/vm/lib.sh: helpers for scripts that tests/vm/run runs in the guest.
#
#   source "$VM_LIB"            # (VM_LIB is set in the guest)
#   trap vm_teardown EXIT
#   vm_rxe_up                   # Soft-RoCE rxe0 on veth0 = $VM_RDMA_IP
#   vm_mkexport /srv/x
#   vm_start_diod_rdma /srv/x   # RDMA diod: rdma port 5640 (+ tcp 5641)
#   vm_kmount_9p rdma /srv/x /mnt/x
#
# Every function returns non-zero (with a one-line "vm: error: ..." on stderr)
# on failure, so `set -e` scripts stop at the first problem. Everything a
# function starts or mounts is recorded and undone by vm_teardown.
# Layout: one rxe device (rxe0 on veth0, $VM_RDMA_IP); client and server both
# use that address (rxe loops back internally). veth1 is up without an address.

[[ ${VM_GUEST:-} == 1 ]] || { echo "vm: error: lib.sh is for scripts run by tests/vm/run" >&2; return 1; }

VM_RDMA_IP=${VM_RDMA_IP:-192.0.2.1}
VM_RDMA_DEV=${VM_RDMA_DEV:-rxe0}
VM_RDMA_NETDEV=${VM_RDMA_NETDEV:-veth0}
# Port of the RDMA diod's RDMA listener (fixed in diod 1.0.24).
VM_DIOD_RDMA_PORT=5640
# Where vm_bg (the diods...) logs; set it under $VM_SHARE to keep the logs.
VM_LOG_DIR=${VM_LOG_DIR:-/tmp/vm-logs}
export VM_RDMA_IP VM_RDMA_DEV VM_RDMA_NETDEV VM_DIOD_RDMA_PORT VM_LOG_DIR
# Background processes and mounts made here, for vm_teardown.
VM_PIDS=()
VM_MOUNTS=()
VM_LOGS=()

# vm_log MSG...: message on stderr, prefixed "vm: ".
vm_log() { echo "vm: $*" >&2; }

# vm_err MSG...: "vm: error: MSG" on stderr; returns 1.
vm_err() { echo "vm: error: $*" >&2; return 1; }

# vm_wait_until SECS DESCRIPTION CMD...: retry CMD every 0.1 s until it
# succeeds; error after SECS seconds.
vm_wait_until() {
    local secs=$1 what=$2 deadline
    shift 2
    deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { vm_err "timed out after ${secs}s waiting for $what"; return 1; }
        sleep 0.1
    done
}

# vm_rxe_up: load rdma_rxe/ib_uverbs/rdma_ucm, create the veth pair
# (MTU 9000, so RoCE MTU 4096), put $VM_RDMA_IP on veth0, add rxe0 on it and
# wait until its port is ACTIVE. Sets and exports VM_RDMA_IP and VM_RDMA_DEV.
# Idempotent.
vm_rxe_up() {
    if _vm_rxe_active; then
        return 0
    fi
    modprobe -a rdma_rxe ib_uverbs rdma_ucm || { vm_err "modprobe rdma_rxe ib_uverbs rdma_ucm failed"; return 1; }
    if ! ip link show "$VM_RDMA_NETDEV" >/dev/null 2>&1; then
        ip link add "$VM_RDMA_NETDEV" mtu 9000 type veth peer name veth1 mtu 9000 ||
            { vm_err "cannot create the veth pair"; return 1; }
    fi
    if ! { ip addr replace "$VM_RDMA_IP/24" dev "$VM_RDMA_NETDEV" &&
           ip link set veth1 up && ip link set "$VM_RDMA_NETDEV" up; }; then
        vm_err "cannot configure $VM_RDMA_NETDEV"; return 1
    fi
    if ! rdma link show "$VM_RDMA_DEV/1" >/dev/null 2>&1; then
        rdma link add "$VM_RDMA_DEV" type rxe netdev "$VM_RDMA_NETDEV" ||
            { vm_err "rdma link add $VM_RDMA_DEV failed"; return 1; }
    fi
    vm_wait_until 20 "$VM_RDMA_DEV to become ACTIVE" _vm_rxe_active || return 1
    [[ -c /dev/infiniband/rdma_cm && -e /dev/infiniband/uverbs0 ]] ||
        { vm_err "/dev/infiniband/{rdma_cm,uverbs0} missing"; return 1; }
    vm_log "$VM_RDMA_DEV up on $VM_RDMA_NETDEV, $VM_RDMA_IP"
}

# _vm_rxe_active: true if $VM_RDMA_DEV's port 1 is ACTIVE.
_vm_rxe_active() { [[ $(rdma link show "$VM_RDMA_DEV/1" 2>/dev/null) == *"state ACTIVE"* ]]; }

# vm_rdma_listening PORT: true if an rdma_cm id listens on PORT.
vm_rdma_listening() {
    local ids
    ids=$(rdma res show cm_id 2>/dev/null) || return 1
    grep -Eq "state LISTEN .*src-addr [^ ]*:$1( |\$)" <<< "$ids"
}

# vm_tcp_listening PORT: true if a TCP socket listens on PORT.
vm_tcp_listening() {
    [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]
}

# vm_bg LOGNAME CMD...: start CMD in the background with its output in
# $VM_LOG_DIR/LOGNAME.log; records its pid for vm_teardown; sets VM_BG_PID.
vm_bg() {
    local log=$VM_LOG_DIR/$1.log
    shift
    mkdir -p "$VM_LOG_DIR"
    "$@" > "$log" 2>&1 < /dev/null &
    VM_BG_PID=$!
    VM_PIDS+=("$VM_BG_PID")
    VM_LOGS+=("$log")
}

# vm_mkexport DIR: make DIR a fresh tmpfs (unmounted by vm_teardown) to be
# exported by a diod, owned by nobody:nogroup since the diods run with -S (all
# users squashed to "nobody"). Export only real file systems: the guest's root
# is an overlayfs whose non-directories have another st_dev than their
# directory, which diod takes for mount points (walks fail with ENOTDIR).
vm_mkexport() {
    (($# == 1)) || { vm_err "usage: vm_mkexport DIR"; return 1; }
    if ! { mkdir -p "$1" && mount -t tmpfs -o mode=0755,uid=65534,gid=65534 vmexport "$1"; }; then
        vm_err "cannot create export $1"; return 1
    fi
    VM_MOUNTS+=("$1")
}

# _vm_diod_up NAME PID PORT: 0 if diod PID listens (TCP PORT, and RDMA for
# diod-rdma), 1 if not yet, 2 if it is gone.
_vm_diod_up() {
    kill -0 "$2" 2>/dev/null || return 2
    vm_tcp_listening "$3" || return 1
    [[ $1 != diod-rdma ]] || vm_rdma_listening "$VM_DIOD_RDMA_PORT"
}

# _vm_start_diod NAME BINARY EXPORT TCP_PORT [DIOD_OPTS...]: start a diod and
# wait until its TCP listener is up (and its RDMA one if NAME is diod-rdma).
_vm_start_diod() {
    local name=$1 bin=$2 export=$3 port=$4 pid
    shift 4
    [[ -x $bin ]] || { vm_err "$bin missing (run tests/vm/setup)"; return 1; }
    [[ -d $export ]] || { vm_err "export $export is not a directory (see vm_mkexport)"; return 1; }
    vm_tcp_listening "$port" && { vm_err "TCP port $port already in use"; return 1; }
    ulimit -l unlimited
    # -f foreground, -n no munge auth, -S all-squash to nobody, -c /dev/null:
    # ignore the host's /etc/diod.conf; -L: log to stderr, i.e. the log file.
    vm_bg "$name-$port" "$bin" -f -n -S -c /dev/null -e "$export" \
        -l "0.0.0.0:$port" -L stderr "$@"
    pid=$VM_BG_PID
    local deadline=$((SECONDS + 30)) rc
    while :; do
        rc=0; _vm_diod_up "$name" "$pid" "$port" || rc=$?
        ((rc == 0)) && break
        if ((rc == 2)); then
            cat "$VM_LOG_DIR/$name-$port.log" >&2
            vm_err "$name exited at startup (log above)"; return 1
        fi
        ((SECONDS < deadline)) || { vm_err "$name did not start listening within 30s"; return 1; }
        sleep 0.1
    done
    local where="tcp:$port"
    [[ $name != diod-rdma ]] || where+=" and rdma:$VM_DIOD_RDMA_PORT"
    vm_log "$name (pid $pid) exports $export on $where"
}

# vm_start_diod_tcp EXPORT PORT [DIOD_OPTS...]: start Debian's diod
# (/usr/sbin/diod) exporting EXPORT on TCP 0.0.0.0:PORT; sets
# VM_DIOD_TCP_PORT=PORT (the default port of vm_kmount_9p tcp).
vm_start_diod_tcp() {
    (($# >= 2)) || { vm_err "usage: vm_start_diod_tcp EXPORT PORT [DIOD_OPTS...]"; return 1; }
    local export=$1 port=$2
    shift 2
    _vm_start_diod diod-tcp /usr/sbin/diod "$export" "$port" "$@" || return 1
    VM_DIOD_TCP_PORT=$port
}

# vm_start_diod_rdma EXPORT [TCP_PORT [DIOD_OPTS...]]: start the RDMA-enabled
# diod ($VM_DIOD_RDMA, built by tests/vm/build-diod-rdma) exporting EXPORT on
# RDMA port 5640 (all addresses; fixed in diod) and on TCP TCP_PORT (default
# 5641). Brings rxe up (vm_rxe_up) if needed. Its msize is at most 65536.
vm_start_diod_rdma() {
    (($# >= 1)) || { vm_err "usage: vm_start_diod_rdma EXPORT [TCP_PORT [DIOD_OPTS...]]"; return 1; }
    local export=$1 port=${2:-5641}
    shift; (($# == 0)) || shift
    vm_rdma_listening "$VM_DIOD_RDMA_PORT" && { vm_err "RDMA port $VM_DIOD_RDMA_PORT already in use"; return 1; }
    vm_rxe_up || return 1
    _vm_start_diod diod-rdma "$VM_DIOD_RDMA" "$export" "$port" "$@"
}

# vm_kmount_9p tcp|rdma EXPORT MOUNTPOINT [PORT [EXTRA_OPTS]]: mount EXPORT
# with the guest kernel's 9p client (9p2000.L) at MOUNTPOINT (created).
# tcp: server 127.0.0.1, PORT default $VM_DIOD_TCP_PORT (last vm_start_diod_tcp).
# rdma: server $VM_RDMA_IP, PORT default 5640, msize=65536 (diod's limit).
# EXTRA_OPTS (comma-separated) are appended, e.g. "cache=loose,msize=32768".
vm_kmount_9p() {
    (($# >= 3)) || { vm_err "usage: vm_kmount_9p tcp|rdma EXPORT MOUNTPOINT [PORT [EXTRA_OPTS]]"; return 1; }
    local trans=$1 export=$2 mnt=$3 port=${4:-} extra=${5:-} addr opts
    case $trans in
        tcp)
            port=${port:-${VM_DIOD_TCP_PORT:-}}
            [[ -n $port ]] || { vm_err "vm_kmount_9p tcp: no PORT and no vm_start_diod_tcp"; return 1; }
            addr=127.0.0.1
            opts="trans=tcp,port=$port" ;;
        rdma)
            port=${port:-$VM_DIOD_RDMA_PORT}
            addr=$VM_RDMA_IP
            modprobe 9pnet_rdma || { vm_err "modprobe 9pnet_rdma failed"; return 1; }
            opts="trans=rdma,port=$port,msize=65536" ;;
        *) vm_err "vm_kmount_9p: transport must be tcp or rdma, not '$trans'"; return 1 ;;
    esac
    opts+=",version=9p2000.L,aname=$export${extra:+,$extra}"
    mkdir -p "$mnt"
    timeout 60 mount -t 9p -o "$opts" "$addr" "$mnt" ||
        { vm_err "mount -t 9p -o $opts $addr $mnt failed"; dmesg | tail -n 5 >&2; return 1; }
    VM_MOUNTS+=("$mnt")
    vm_log "mounted $trans:$addr:$port $export at $mnt ($opts)"
}

# vm_show_logs: print the tail of every log written by vm_bg, and of dmesg.
vm_show_logs() {
    local log
    for log in "${VM_LOGS[@]}"; do
        [[ -f $log ]] || continue
        echo "--- $log (last 20 lines)" >&2
        tail -n 20 "$log" >&2
    done
    echo "--- dmesg (last 20 lines)" >&2
    dmesg | tail -n 20 >&2
}

# vm_teardown: unmount what vm_kmount_9p mounted, stop what vm_bg started
# (TERM, then KILL after 0.5 s: the RDMA diod ignores TERM while it waits
# for RDMA connections), remove rxe0 and the veth pair.
# Meant as `trap vm_teardown EXIT`: when the script is failing (exit status
# != 0) it first shows the logs (vm_show_logs). Idempotent.
vm_teardown() {
    local rc=$? i pid alive
    ((rc == 0)) || vm_show_logs
    for ((i = ${#VM_MOUNTS[@]} - 1; i >= 0; i--)); do
        timeout 30 umount "${VM_MOUNTS[i]}" 2>/dev/null || umount -l "${VM_MOUNTS[i]}" 2>/dev/null || true
    done
    VM_MOUNTS=()
    alive=()
    for pid in "${VM_PIDS[@]}"; do
        if kill "$pid" 2>/dev/null; then alive+=("$pid"); fi
    done
    if ((${#alive[@]})); then
        sleep 0.5
        for pid in "${alive[@]}"; do
            kill -9 "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        done
    fi
    VM_PIDS=()
    rdma link delete "$VM_RDMA_DEV" 2>/dev/null || true
    ip link delete "$VM_RDMA_NETDEV" 2>/dev/null || true
    return "$rc"
}
