#!/usr/bin/env bash
# 9prdma Slurm epilog: unmounts the job's 9P export mounted by prolog.sh.
#
#   slurm.conf:  Epilog=/usr/share/9prdma/slurm/epilog.sh
#   settings:    /etc/9prdma/slurm.conf ($P9_SLURM_CONF), as for prolog.sh
#
# Unmounts $P9_MOUNT_BASE/$SLURM_JOB_ID and removes the mount point. When
# the unmount fails (a leftover process still uses the mount, or the server
# is gone), the mount's FUSE connection is aborted, so that whatever still
# waits on it gets an error, and the mount is detached (umount -l).
# Every unmount runs under timeout(1) (P9_UMOUNT_TIMEOUT seconds) with
# umount -c, which does not stat the mount; mounts are looked up in
# /proc/self/mountinfo. Nothing here can hang on a dead server.
# Exit 0 unless the mount could not even be detached (Slurm then drains the
# node). The job's directory on the server is left alone.
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C
umask 022

prog=9prdma-epilog
log() {
  logger -t 9prdma-slurm -p daemon.notice -- "$prog: ${SLURM_JOB_ID:+job $SLURM_JOB_ID: }$*" 2>/dev/null || true
  echo "$prog: $*" >&2
}
fail() {
  log "error: $*"
  exit 1
}

conf=${P9_SLURM_CONF:-/etc/9prdma/slurm.conf}
P9_MOUNT_BASE=/mnt/job
P9_UMOUNT_TIMEOUT=20
[[ -r $conf ]] || fail "cannot read $conf"
bash -n "$conf" 2>/dev/null || fail "$conf is not valid shell syntax"
# shellcheck source=/dev/null
source "$conf" || fail "reading $conf failed"

job=${SLURM_JOB_ID:-}
[[ $job =~ ^[0-9]+$ ]] || fail "SLURM_JOB_ID '${job}' is not a job id (run by slurmd as Epilog=)"
[[ $P9_MOUNT_BASE =~ ^/[^[:space:],\\]*$ ]] || fail "P9_MOUNT_BASE '${P9_MOUNT_BASE}' must be an absolute path without spaces or commas ($conf)"
[[ $P9_UMOUNT_TIMEOUT =~ ^[1-9][0-9]*$ ]] || fail "P9_UMOUNT_TIMEOUT '${P9_UMOUNT_TIMEOUT}' must be a number of seconds ($conf)"
mnt="${P9_MOUNT_BASE%/}/$job"

# Field $1 of the mount at $2 from /proc/self/mountinfo: "type" or "dev"
# (major:minor). Fails when nothing is mounted there.
mount_field() {
  awk -v want="$1" -v t="$2" '
    $5 == t { dev = $3; for (i = 6; i <= NF; i++) if ($i == "-") { type = $(i + 1); break } }
    END { if (type == "") exit 1; print (want == "type" ? type : dev) }' /proc/self/mountinfo
}

# Fails every request pending on the FUSE mount at $1 and disconnects its
# daemon (needs fusectl on /sys/fs/fuse/connections, which systemd mounts).
abort_fuse() {
  local dev minor
  dev=$(mount_field dev "$1") || return 0
  minor=${dev#*:}
  if [[ -w /sys/fs/fuse/connections/$minor/abort ]]; then
    log "aborting the FUSE connection of $1 (/sys/fs/fuse/connections/$minor)"
    echo 1 >"/sys/fs/fuse/connections/$minor/abort" || true
  else
    log "no /sys/fs/fuse/connections/$minor/abort (fusectl not mounted): detaching only"
  fi
}

if ! type=$(mount_field type "$mnt"); then
  # Nothing mounted (the prolog failed, or P9_REQUIRED=no): tidy up only.
  rmdir "$mnt" 2>/dev/null || true
  exit 0
fi
if [[ $type != fuse.9prdma ]]; then
  log "$mnt has a $type mount, not a 9prdma one: left alone"
  exit 0
fi

err=$(mktemp)
trap 'rm -f "$err"' EXIT
if timeout -k 5 "$P9_UMOUNT_TIMEOUT" umount -c "$mnt" 2>"$err"; then
  log "unmounted $mnt"
else
  log "umount $mnt failed ($(tr '\n' ' ' <"$err" | sed 's/ *$//')); detaching it"
  abort_fuse "$mnt"
  # After an abort the plain unmount usually works; lazy if not.
  timeout -k 5 "$P9_UMOUNT_TIMEOUT" umount -c "$mnt" 2>/dev/null ||
    timeout -k 5 "$P9_UMOUNT_TIMEOUT" umount -c -l "$mnt" 2>"$err" ||
    log "umount -l $mnt failed: $(tr '\n' ' ' <"$err" | sed 's/ *$//')"
  if mount_field type "$mnt" >/dev/null; then
    fail "$mnt is still mounted"
  fi
  log "detached $mnt"
fi
rmdir "$mnt" 2>/dev/null || log "could not remove the mount point $mnt"
