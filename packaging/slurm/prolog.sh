#!/usr/bin/env bash
# 9prdma Slurm prolog: mounts the job's 9P export on this node.
#
#   slurm.conf:  Prolog=/usr/share/9prdma/slurm/prolog.sh
#                Epilog=/usr/share/9prdma/slurm/epilog.sh
#   settings:    /etc/9prdma/slurm.conf ($P9_SLURM_CONF), see
#                /usr/share/doc/9prdma/examples/slurm.conf
#
# Mounts $P9_SERVER:$P9_EXPORT_BASE/$SLURM_JOB_ID on
# $P9_MOUNT_BASE/$SLURM_JOB_ID with access=$SLURM_JOB_UID,allow_other, so
# that the job's user, and only that user, can use it. With P9_CREATE=yes
# the job's directory is first created on the server (mode 0700, owned by
# the job's user) through a short root mount of $P9_EXPORT_BASE.
#
# Never hangs the node: everything that may wait on the network runs under
# timeout(1) with what is left of P9_MOUNT_TIMEOUT seconds, nothing touches
# a 9P mount otherwise, and mounts are looked up in /proc/self/mountinfo.
# Exit 0: mounted, or it failed and P9_REQUIRED=no. Non-zero: Slurm drains
# the node and requeues the job. Messages go to syslog (tag 9prdma-slurm)
# and stderr.
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C
umask 022

prog=9prdma-prolog
log() {
  logger -t 9prdma-slurm -p daemon.notice -- "$prog: ${SLURM_JOB_ID:+job $SLURM_JOB_ID: }$*" 2>/dev/null || true
  echo "$prog: $*" >&2
}
# Failing a required mount fails the prolog; otherwise the job runs without it.
fail() {
  log "error: $*"
  if [[ ${P9_REQUIRED:-yes} == no ]]; then exit 0; fi
  exit 1
}

conf=${P9_SLURM_CONF:-/etc/9prdma/slurm.conf}
P9_SERVER=
P9_EXPORT_BASE=/scratch
P9_MOUNT_BASE=/mnt/job
P9_OPTIONS=
P9_CREATE=yes
P9_REQUIRED=yes
P9_MOUNT_TIMEOUT=60
P9_UMOUNT_TIMEOUT=20
P9_HELPER=/sbin/mount.9prdma
[[ -r $conf ]] || fail "cannot read $conf"
bash -n "$conf" 2>/dev/null || fail "$conf is not valid shell syntax"
# shellcheck source=/dev/null
source "$conf" || fail "reading $conf failed"

# --- check everything before touching anything ------------------------------
job=${SLURM_JOB_ID:-}
uid=${SLURM_JOB_UID:-}
[[ $job =~ ^[0-9]+$ ]] || fail "SLURM_JOB_ID '${job}' is not a job id (run by slurmd as Prolog=)"
[[ $uid =~ ^[0-9]+$ ]] || fail "SLURM_JOB_UID '${uid}' is not a numeric uid"
[[ -n $P9_SERVER && $P9_SERVER =~ ^[^[:space:],/]+$ ]] || fail "P9_SERVER '${P9_SERVER}' must be a host name or address ($conf)"
[[ $P9_EXPORT_BASE =~ ^/[^[:space:],\\]*$ ]] || fail "P9_EXPORT_BASE '${P9_EXPORT_BASE}' must be an absolute path without spaces or commas ($conf)"
[[ $P9_MOUNT_BASE =~ ^/[^[:space:],\\]*$ ]] || fail "P9_MOUNT_BASE '${P9_MOUNT_BASE}' must be an absolute path without spaces or commas ($conf)"
[[ $P9_OPTIONS =~ ^[^[:space:]]*$ ]] || fail "P9_OPTIONS must not contain spaces ($conf)"
[[ ,$P9_OPTIONS, != *,access=* ]] || fail "P9_OPTIONS must not set access= (the prolog sets access=UID) ($conf)"
[[ $P9_MOUNT_TIMEOUT =~ ^[1-9][0-9]*$ ]] || fail "P9_MOUNT_TIMEOUT '${P9_MOUNT_TIMEOUT}' must be a number of seconds ($conf)"
[[ $P9_UMOUNT_TIMEOUT =~ ^[1-9][0-9]*$ ]] || fail "P9_UMOUNT_TIMEOUT '${P9_UMOUNT_TIMEOUT}' must be a number of seconds ($conf)"
[[ $P9_CREATE == yes || $P9_CREATE == no ]] || fail "P9_CREATE must be yes or no ($conf)"
[[ -x $P9_HELPER ]] || fail "$P9_HELPER is not installed (apt-get install 9prdma)"

base=${P9_EXPORT_BASE%/}
source_path="$base/$job"
mnt="${P9_MOUNT_BASE%/}/$job"
deadline=$((SECONDS + P9_MOUNT_TIMEOUT))
tmp=$(mktemp -d /run/9prdma-prolog.XXXXXX)
staging=

# The filesystem type mounted exactly at $1 (no filesystem access: a dead
# server cannot block this). Fails when nothing is mounted there.
mount_type() {
  awk -v t="$1" '$5 == t { for (i = 6; i <= NF; i++) if ($i == "-") { type = $(i + 1); break } }
                 END { if (type == "") exit 1; print type }' /proc/self/mountinfo
}

# bounded CMD...: runs CMD with the seconds left before the deadline (then
# SIGTERM, and SIGKILL 5 s later). Its stderr goes to $tmp/err.
bounded() {
  local left=$((deadline - SECONDS))
  if ((left <= 0)); then
    echo "no time left (P9_MOUNT_TIMEOUT=$P9_MOUNT_TIMEOUT)" >"$tmp/err"
    return 124
  fi
  local rc=0
  timeout -k 5 "$left" "$@" </dev/null >/dev/null 2>"$tmp/err" || rc=$?
  if ((rc == 124 || rc == 137)); then
    echo "timed out (P9_MOUNT_TIMEOUT=$P9_MOUNT_TIMEOUT): $*" >>"$tmp/err"
  fi
  return "$rc"
}
why() { tr '\n' ' ' <"$tmp/err" | sed 's/ *$//'; }

# Unmounts $1 if something is mounted there: normally, else lazily. -c: no
# path canonicalisation, which would stat the (maybe dead) mount.
release() {
  mount_type "$1" >/dev/null || return 0
  timeout -k 2 "$P9_UMOUNT_TIMEOUT" umount -c "$1" 2>/dev/null ||
    timeout -k 2 "$P9_UMOUNT_TIMEOUT" umount -c -l "$1" 2>/dev/null || true
}

cleanup() {
  if [[ -n $staging ]]; then
    release "$staging"
    rmdir "$staging" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

if type=$(mount_type "$mnt"); then
  [[ $type == fuse.9prdma ]] || fail "$mnt already has a $type mount"
  log "$mnt is already mounted"
  exit 0
fi

# --- the job's directory on the server -------------------------------------
if [[ $P9_CREATE == yes ]]; then
  gid=${SLURM_JOB_GID:-}
  if [[ ! $gid =~ ^[0-9]+$ ]]; then
    # Older Slurm: the user's primary group (bounded: NSS may be remote).
    gid=$(timeout -k 2 10 getent passwd "$uid" | cut -d: -f4) || gid=
    [[ $gid =~ ^[0-9]+$ ]] || fail "no passwd entry (primary group) for uid $uid"
  fi
  staging=$(mktemp -d /run/9prdma-prolog-base.XXXXXX)
  bounded "$P9_HELPER" ${P9_OPTIONS:+-o "$P9_OPTIONS"} "$P9_SERVER:$base" "$staging" ||
    fail "cannot mount $P9_SERVER:$base to create $job in it: $(why)"
  dir="$staging/$job"
  # Every node of the job races to do this: each step tolerates the others.
  if ! bounded test -d "$dir"; then
    bounded mkdir -m 0700 "$dir" || bounded test -d "$dir" ||
      fail "cannot create $P9_SERVER:$source_path: $(why)"
  fi
  # Made by root (here or on another node) and not handed over yet.
  owner=$(timeout -k 2 10 stat -c %u "$dir" 2>/dev/null) || fail "cannot stat $P9_SERVER:$source_path"
  if [[ $owner == 0 && $uid != 0 ]]; then
    bounded chown "$uid:$gid" "$dir" || fail "cannot chown $P9_SERVER:$source_path to $uid:$gid: $(why)"
  fi
  release "$staging"
  rmdir "$staging" 2>/dev/null || true
  staging=
fi

# --- the job's mount ----------------------------------------------------------
mkdir -p "$P9_MOUNT_BASE" "$mnt" || fail "cannot create mount point $mnt"
opts="${P9_OPTIONS:+$P9_OPTIONS,}access=$uid,allow_other"
if ! bounded "$P9_HELPER" -o "$opts" "$P9_SERVER:$source_path" "$mnt"; then
  msg=$(why)
  # A helper killed by the timeout may leave its daemon to finish later:
  # take down whatever got mounted.
  release "$mnt"
  rmdir "$mnt" 2>/dev/null || true
  fail "mounting $P9_SERVER:$source_path on $mnt failed: $msg"
fi
log "mounted $P9_SERVER:$source_path on $mnt for uid $uid"
