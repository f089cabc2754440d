#!/bin/bash
# The Soft-RoCE guest part of tests/bench/run (which prepares the data and
# the share directory, then runs: tests/vm/run tests/bench/guest.sh build/bench/guest).
#
# One tmpfs export, served over RDMA by the RDMA-enabled diod (port 5640) and
# over TCP by Debian's diod (port 5650: the same diod 1.0.24 without the RDMA
# patch; a separate process so that the experimental RDMA server, which has
# been seen to stop answering under this load, cannot take the TCP clients
# down with it). Measured side by side: mount.9prdma trans=rdma and trans=tcp,
# and the guest kernel's 9p client trans=tcp and trans=rdma, each with
# cache=none and cache=loose, msize 64 KiB for all (the RDMA diod's limit),
# each pair against the same server; and the raw link
# (ib_send_bw, ib_send_lat over rdma_cm on rxe0). A client that cannot mount
# (an option or transport that does not exist yet) is reported "n/a" with its
# error; a mount.9prdma trans=rdma that is not really on RDMA (no QP of its
# own) is n/a too. Writes guest.jsonl, link.json, env.json into $VM_SHARE.
set -euo pipefail
# shellcheck source=/dev/null
source "${VM_LIB:?not in the test guest: run it with tests/vm/run}"
share=${VM_SHARE:?run it with a share directory}
# shellcheck source=/dev/null
source "$share/guest.conf"  # PROFILE RUNS ONLY BUDGET
export VM_LOG_DIR=$share/logs
bench=$VM_REPO/tests/bench
bin=$VM_REPO/build/bin
PY=/usr/bin/python3
exp=/srv/bench
mnt=/mnt/bench
mounted=()
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
    local rc=$? m
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        m=${mounted[i]}
        grep -q " $m " /proc/mounts || continue
        timeout 30 umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
    # An RDMA diod started again by the --on-hang command is not vm_teardown's.
    pkill -f "^$VM_DIOD_RDMA " 2>/dev/null || true
    (exit "$rc")
    vm_teardown
}
trap cleanup EXIT
step() { local up; read -r up _ < /proc/uptime; echo "== [guest ${up%.*}s] $*"; }

step "guest $(uname -r), $(nproc) vCPUs, profile $PROFILE"
rm -f "$share/guest.jsonl" "$share/link.json"
vm_mkexport "$exp"
tar -C "$exp" -xf "$share/data.tar"
mv "$exp/src.tar" /tmp/bench-src.tar
chown -R 65534:65534 "$exp"
vm_start_diod_rdma "$exp" 5641
vm_start_diod_tcp "$exp" 5650
modprobe 9pnet_rdma

# json STRING: STRING as a JSON string (no python: each exec costs ~1 s here).
json() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }

step "raw link: ib_send_bw, ib_send_lat (rdma_cm, rxe0)"
link_bw='' link_lat='' link_err=''
# With one vCPU, two busy-polling processes take turns once per scheduler
# tick (ms): there both wait for completion events instead (-e), which
# gives the higher bandwidth and the lower latency.
ev=()
(($(nproc) > 1)) || ev=(-e)
# perftest TOOL SIZE COLUMN: runs TOOL's server and client on rxe0 and sets
# pt_value to COLUMN of the SIZE row, or adds to link_err on failure. Up to
# three attempts: the client has been seen to fail at once with "ERRNO:
# Operation not supported" (its server log empty) in one run of several.
perftest() {
    local tool=$1 size=$2 col=$3 attempt o srv v i
    pt_value=''
    local opts=(-d "$VM_RDMA_DEV" -R -s "$size" -n 1000 "${ev[@]}")
    for attempt in 1 2 3; do
        o=''
        vm_bg "$tool-server" timeout 120 "$tool" "${opts[@]}"
        srv=$VM_BG_PID
        if vm_wait_until 30 "the $tool server" vm_rdma_listening 18515 &&
            o=$(timeout 120 "$tool" "${opts[@]}" "$VM_RDMA_IP" 2>&1); then
            v=$(awk -v s="$size" -v c="$col" '$1 == s { print $c; exit }' <<< "$o")
        fi
        kill "$srv" 2>/dev/null || true
        wait "$srv" 2>/dev/null || true
        for i in $(seq 50); do vm_rdma_listening 18515 || break; sleep 0.1; done
        if [[ -n ${v:-} ]]; then
            pt_value=$v
            return 0
        fi
        echo "$tool attempt $attempt failed: $(tail -n 1 <<< "${o:-no server}")" >&2
        sleep 2
    done
    link_err+="${link_err:+; }$tool: $(tail -n 1 <<< "${o:-no server}")"
    return 1
}
# "#bytes #iterations BW peak[MB/sec] BW average[MB/sec] MsgRate[Mpps]"
perftest ib_send_bw 65536 4 && link_bw=$pt_value
# "#bytes #iterations t_min[usec] t_max[usec] t_typical[usec] t_avg[usec] ..."
perftest ib_send_lat 64 5 && link_lat=$pt_value
printf '{"send_bw_MBps_64k": %s, "send_lat_us_64B": %s, "events": %s, "error": %s}\n' \
    "${link_bw:-null}" "${link_lat:-null}" "$( (($(nproc) > 1)) && echo false || echo true)" \
    "$( [[ -n $link_err ]] && json "$link_err" || echo null)" > "$share/link.json"
cat "$share/link.json"

# uses_rdma MOUNTPOINT: the mount.9prdma serving MOUNTPOINT owns an RDMA QP.
# (Run by bench.py through bash -c: exported below.)
# shellcheck disable=SC2317
uses_rdma() {
    local p pid=''
    for p in $(pgrep -x mount.9prdma); do
        if tr '\0' '\n' < "/proc/$p/cmdline" 2>/dev/null | grep -qxF "$1"; then pid=$p; break; fi
    done
    [[ -n $pid ]] || { echo "no mount.9prdma process for $1" >&2; return 1; }
    rdma res show qp | grep -q "pid $pid " ||
        { echo "mount.9prdma (pid $pid) has no RDMA QP: not on RDMA (TCP fallback?)" >&2; return 1; }
}
export -f uses_rdma

step "targets"
targets=()
add() {  # NAME MOUNT-CMD [VERIFY-CMD]
    local root=$mnt/$1 verify=null
    [[ -z ${3:-} ]] || verify=$(json "$3")
    mkdir -p "$root"
    mounted+=("$root")
    targets+=("{\"name\": $(json "$1"), \"root\": $(json "$root"), \"mount\": $(json "$2 $root"),
  \"umount\": $(json "umount $root"), \"verify\": $verify, \"backing\": $(json "$exp")}")
}
# The export directory itself, no mount: the floor of each workload in this
# guest (git's and python's own CPU time under TCG).
targets+=("{\"name\": \"direct\", \"root\": $(json "$exp"), \"mount\": null,
  \"umount\": null, \"verify\": null, \"backing\": $(json "$exp")}")
kopts="version=9p2000.L,aname=$exp,msize=65536"
for c in none loose; do
    add "9prdma-rdma-$c" \
        "$bin/mount.9prdma $VM_RDMA_IP:$exp -o trans=rdma,port=5640,cache=$c,msize=64k,timeout=30" \
        "uses_rdma $mnt/9prdma-rdma-$c"
    add "9prdma-tcp-$c" "$bin/mount.9prdma 127.0.0.1:$exp -o trans=tcp,port=5650,cache=$c,msize=64k,timeout=30"
    add "kernel-rdma-$c" "mount -t 9p -o trans=rdma,port=5640,$kopts,cache=$c $VM_RDMA_IP"
    add "kernel-tcp-$c" "mount -t 9p -o trans=tcp,port=5650,$kopts,cache=$c 127.0.0.1"
done
# The writeback cache: writes gathered by the kernel, sent in large requests.
add "9prdma-rdma-wb" \
    "$bin/mount.9prdma $VM_RDMA_IP:$exp -o trans=rdma,port=5640,cache=loose,writeback_cache,msize=64k,timeout=30" \
    "uses_rdma $mnt/9prdma-rdma-wb"
(IFS=,; echo "[${targets[*]}]") > "$share/targets.json"
printf '{"kernel": %s, "vcpus": %d, "rxe_mtu": %s, "diod": %s}\n' "$(json "$(uname -r)")" "$(nproc)" \
    "$(json "$(ibv_devinfo -d "$VM_RDMA_DEV" | awk '/active_mtu/ { print $2 }')")" \
    "$(json "RDMA: diod 1.0.24 built with RDMA (tests/vm/build-diod-rdma); TCP: Debian's diod $(dpkg-query -W -f='${Version}' diod 2>/dev/null)")" \
    > "$share/env.json"

# A client that hangs over RDMA can leave the RDMA diod no longer accepting
# connections (its log ends in "recv error - dropping connection" and a
# connection request that is never established), and then every RDMA client
# hangs after it. bench.py runs this after a hang: for an RDMA client, a new
# RDMA diod on the same export. mount.9prdma reconnects by itself; a kernel
# client gets bench.py's one remount after its next failure.
on_hang="[[ \$1 == *rdma* ]] || exit 0
source \"\$VM_LIB\"
export VM_LOG_DIR=$(printf %q "$VM_LOG_DIR")
log=\$VM_LOG_DIR/diod-rdma-5641.log
[[ ! -f \$log ]] || mv \"\$log\" \"\$log.before-\$1-hung\"
pkill -f $(printf %q "^$VM_DIOD_RDMA ") || true
for i in \$(seq 50); do vm_rdma_listening $VM_DIOD_RDMA_PORT || break; sleep 0.1; done
pkill -9 -f $(printf %q "^$VM_DIOD_RDMA ") || true
for i in \$(seq 50); do vm_rdma_listening $VM_DIOD_RDMA_PORT || break; sleep 0.1; done
vm_start_diod_rdma $(printf %q "$exp") 5641 && echo \"RDMA diod restarted after \$1 hung\""

step "measuring ${#targets[@]} clients side by side (budget ${BUDGET}s)"
rc=0
timeout -k 10 $((BUDGET + 120)) "$PY" "$bench/bench.py" measure --profile "$PROFILE" \
    --targets "$share/targets.json" --export "$exp" --tarball /tmp/bench-src.tar \
    --out "$share/guest.jsonl" --deadline "$BUDGET" --op-timeout 90 \
    --on-hang "$on_hang" \
    ${RUNS:+--runs "$RUNS"} ${ONLY:+--only "$ONLY"} || rc=$?
step "measurement finished (exit $rc)"
exit "$rc"
