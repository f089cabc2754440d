#!/usr/bin/env bash
# tests/packaging/deb_test.sh [BUILD_DIR]
#
# The Debian package, end to end, on this machine (root; meant for CI or a
# throwaway machine). Run under tests/integration/with_diod.sh, which serves
# a fresh export with diod on 127.0.0.1 (P9_DIOD_HOST/PORT/EXPORT).
#
#  1. builds the .deb with packaging/build-deb.sh -B BUILD_DIR (default
#     build-deb beside the sources), checks its file list and that Depends
#     names the package of every shared library the binaries link;
#  2. installs it with dpkg -i, checks dpkg -L, the man pages (man -l,
#     groff -ww, every option of --help documented), the systemd unit
#     (systemd-analyze verify) and the fstab line of the docs through
#     systemd-fstab-generator;
#  3. mounts with the installed helper: mount -t 9prdma, then fstab lines
#     through mount -a -T FILE (a temporary fstab: /etc/fstab is untouched);
#  4. runs the installed Slurm prolog and epilog for fake jobs: mount,
#     job-scoped access, a repeated prolog, a busy mount in the epilog, an
#     unreachable and a silent server (bounded by the prolog's timeout);
#  5. removes the package (dpkg --purge) and checks nothing is left.
# Always unmounts and removes the package on the way out. Refuses to run
# when 9prdma is already installed (it would remove it).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$repo/build-deb}
pkg=9prdma
t0=$SECONDS

fail() { echo "deb_test: FAIL: $*" >&2; exit 1; }
step() { printf '== [%3ss] %s\n' "$((SECONDS - t0))" "$*"; }

[[ $(id -u) -eq 0 ]] || fail "run as root (dpkg -i, mounts)"
[[ -n ${P9_DIOD_PORT:-} && -d ${P9_DIOD_EXPORT:-} ]] || fail "run under tests/integration/with_diod.sh"
[[ -e /dev/fuse ]] || fail "/dev/fuse is missing (modprobe fuse)"
for tool in dpkg-deb man groff readelf systemd-analyze setpriv timeout python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (packaging/install-deps.sh)"
done
if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
  fail "$pkg is already installed here; this test installs and removes it (dpkg -r $pkg first)"
fi
[[ ! -e /sbin/mount.9prdma ]] || fail "/sbin/mount.9prdma exists outside dpkg; remove it first"

host=${P9_DIOD_HOST:-127.0.0.1}
port=$P9_DIOD_PORT
export_dir=$P9_DIOD_EXPORT
work=$(mktemp -d /tmp/9prdma-pkgtest.XXXXXX)
chmod 755 "$work" "$export_dir"
installed=0
mounted_fusectl=0
bg_pids=()

# Mount points under $work, deepest first, from mountinfo (no stat).
our_mounts() { awk -v w="$work/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r; }
is_mounted() { awk -v t="$1" '$5 == t { f = 1 } END { exit !f }' /proc/self/mountinfo; }
mount_type() {
  awk -v t="$1" '$5 == t { for (i = 6; i <= NF; i++) if ($i == "-") { print $(i + 1); exit } }' /proc/self/mountinfo
}
mount_count() { awk -v t="$1" '$5 == t { n++ } END { print n + 0 }' /proc/self/mountinfo; }

cleanup() {
  local rc=$? m p
  for m in $(our_mounts); do
    timeout 20 umount -c "$m" 2>/dev/null || timeout 20 umount -c -l "$m" 2>/dev/null || true
  done
  for p in "${bg_pids[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if ((mounted_fusectl)); then umount /sys/fs/fuse/connections 2>/dev/null || true; fi
  if ((installed)); then
    DEBIAN_FRONTEND=noninteractive dpkg --purge "$pkg" >/dev/null 2>&1 ||
      echo "deb_test: WARNING: dpkg --purge $pkg failed; remove it by hand" >&2
  fi
  rm -rf "$work"
  if ((rc == 0)); then
    echo "deb_test: PASS in $((SECONDS - t0)) s"
  else
    echo "deb_test: failed after $((SECONDS - t0)) s" >&2
  fi
}
trap cleanup EXIT

# --- 1. build and inspect ---------------------------------------------------
step "building the package (packaging/build-deb.sh -B $build)"
deb=$("$repo/packaging/build-deb.sh" -B "$build" 2>"$work/build.log") ||
  { tail -n 40 "$work/build.log" >&2; fail "build-deb.sh failed"; }
[[ -f $deb ]] || fail "build-deb.sh printed '$deb', which is not a file"
echo "$deb"

[[ $(dpkg-deb -f "$deb" Package) == "$pkg" ]] || fail "package name is not $pkg"
expected_files="./lib/systemd/system/9prdma-relay@.service
./sbin/mount.9prdma
./usr/bin/9prdma
./usr/sbin/9prdma-relay
./usr/share/9prdma/slurm/epilog.sh
./usr/share/9prdma/slurm/prolog.sh
./usr/share/doc/9prdma/README.md.gz
./usr/share/doc/9prdma/changelog.Debian.gz
./usr/share/doc/9prdma/copyright
./usr/share/doc/9prdma/examples/fstab
./usr/share/doc/9prdma/examples/relay.conf
./usr/share/doc/9prdma/examples/slurm.conf
./usr/share/man/man1/9prdma.1.gz
./usr/share/man/man8/9prdma-relay.8.gz
./usr/share/man/man8/mount.9prdma.8.gz"
actual_files=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { print $6 }' | sort)
[[ $actual_files == "$expected_files" ]] ||
  fail "unexpected file list:$(diff <(echo "$expected_files") <(echo "$actual_files") | sed 's/^/  /')"

# Depends must name the package of every library the binaries need.
depends=$(dpkg-deb -f "$deb" Depends)
mkdir "$work/x"
dpkg-deb -x "$deb" "$work/x"
for bin in sbin/mount.9prdma usr/bin/9prdma usr/sbin/9prdma-relay; do
  for soname in $(readelf -d "$work/x/$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    libpath=$(ldconfig -p | awk -v s="$soname" '$1 == s && !p { p = $NF } END { print p }')
    [[ -n $libpath ]] || fail "$bin needs $soname, which ldconfig does not know"
    # Merged /usr: dpkg knows the library under /lib or /usr/lib.
    owner=$(dpkg -S "$(readlink -f "$libpath")" 2>/dev/null || dpkg -S "$libpath" 2>/dev/null) ||
      fail "no package owns $libpath ($soname, needed by $bin)"
    owner=${owner%%:*}
    [[ ", $depends," == *", $owner "* || ", $depends," == *", $owner,"* ]] ||
      fail "$bin links $soname from $owner, but Depends is: $depends"
  done
done
[[ ", $depends," == *", fuse3,"* ]] || fail "Depends lacks fuse3: $depends"
echo "Depends: $depends"

# --- 2. install and inspect -------------------------------------------------
step "dpkg -i $(basename "$deb")"
installed=1
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >"$work/dpkg.log" 2>&1 ||
  { cat "$work/dpkg.log" >&2; fail "dpkg -i failed"; }
dpkg-query -W -f='${Status}' "$pkg" | grep -q 'install ok installed' || fail "dpkg does not list $pkg as installed"
listed=$(dpkg -L "$pkg")
while read -r f; do
  f=${f#.}
  grep -qx -- "$f" <<<"$listed" || fail "dpkg -L $pkg lacks $f"
  [[ -f $f ]] || fail "$f is not on disk after dpkg -i"
done <<<"$expected_files"
[[ $(stat -c '%a %U' /sbin/mount.9prdma) == "755 root" ]] || fail "/sbin/mount.9prdma is not 0755 root"
/sbin/mount.9prdma --version | grep -q '^mount.9prdma [0-9]' || fail "mount.9prdma --version"
/usr/sbin/9prdma-relay --help >/dev/null || fail "9prdma-relay --help failed"
/usr/bin/9prdma --version | grep -q '^9prdma [0-9]' || fail "9prdma --version"

step "man pages"
for page in mount.9prdma.8 9prdma-relay.8 9prdma.1; do
  file=/usr/share/man/man${page##*.}/$page.gz
  page=${page%.*}
  [[ $(man -w "$page") == "$file" ]] || fail "man -w $page does not find $file"
  warnings=$(zcat "$file" | groff -man -Tutf8 -ww -z 2>&1)
  [[ -z $warnings ]] || fail "groff warns about $page: $warnings"
  MANWIDTH=250 man -l "$file" 2>"$work/man.err" >"$work/$page.txt" || fail "man -l $file failed: $(cat "$work/man.err")"
  [[ ! -s $work/man.err ]] || fail "man -l $file: $(cat "$work/man.err")"
  grep -q '^NAME' "$work/$page.txt" || fail "man -l $file printed no NAME section"
  grep -q '^EXAMPLES' "$work/$page.txt" || fail "$page has no EXAMPLES section"
done
# Every option of --help, and every FUSE/ignored option of fuse/options.cc,
# is in the man page.
man_text=" $(tr -s ' \n' '  ' <"$work/mount.9prdma.txt") "
checked=()
documented() { # documented TEXT WORD: WORD appears as a word of TEXT
  [[ $1 =~ [^a-zA-Z0-9_-]${2//./\\.}([^a-zA-Z0-9_-]|$) ]]
}
# Option lines of --help: "  -h, --help    text", "  sq=N, rq=N   text";
# the option column ends at two spaces (or at the first word after "--x ").
while IFS= read -r line; do
  column=${line%%  *}
  IFS=',' read -ra parts <<<"$column"
  for part in "${parts[@]}"; do
    part=${part# }
    word=${part%% *}
    key=${word%%=*}
    value=${word#*=}
    if [[ $word == *=* && $value =~ ^[a-z]+$ ]]; then
      documented "$man_text" "$key=$value" || fail "mount.9prdma(8) does not document $word (from --help)"
    elif [[ $word == *=* ]]; then
      [[ $man_text == *" $key="* ]] || fail "mount.9prdma(8) does not document $key= (from --help)"
    else
      documented "$man_text" "$word" || fail "mount.9prdma(8) does not document $word (from --help)"
    fi
    checked+=("$word")
  done
done < <(/sbin/mount.9prdma --help | sed -n 's/^  \([^ ].*\)$/\1/p')
((${#checked[@]} >= 15)) || fail "found only ${#checked[@]} options in mount.9prdma --help: ${checked[*]}"
echo "mount.9prdma(8) documents every --help option: ${checked[*]}"
for array in kFusePassThrough kIgnored; do
  words=$(awk "/$array\\[\\] = \\{/,/\\};/" "$repo/fuse/options.cc" | grep -o '"[^"]*"' | tr -d '"')
  [[ -n $words ]] || fail "cannot read $array from fuse/options.cc"
  for word in $words; do
    documented "$man_text" "$word" || fail "mount.9prdma(8) does not mention the option $word ($array in fuse/options.cc)"
  done
done
for word in sq= rq= queues= trans=rdma trans=tcp 5640 564 timeout= x-systemd.automount x-systemd.mount-timeout= _netdev; do
  [[ $man_text == *"$word"* ]] || fail "mount.9prdma(8) does not mention $word"
done
relay_text=" $(tr -s ' \n' '  ' <"$work/9prdma-relay.txt") "
for flag in $(/usr/sbin/9prdma-relay --help | grep -oE '^  (-[a-z], )?--[a-z-]+' | grep -oE -- '--?[a-z-]+'); do
  documented "$relay_text" "$flag" || fail "9prdma-relay(8) does not document $flag (from --help)"
done

stats_text=" $(tr -s ' \n' '  ' <"$work/9prdma.txt") "
for flag in $(/usr/bin/9prdma --help | grep -oE -- '(^|[ [])--?[a-z-]+' | grep -oE -- '--?[a-z-]+' | sort -u); do
  documented "$stats_text" "$flag" || fail "9prdma(1) does not document $flag (from --help)"
done

step "systemd unit"
unit=/lib/systemd/system/9prdma-relay@.service
mkdir "$work/units"
cp "$unit" "$work/units/9prdma-relay@pkgtest.service"
verify_rc=0
systemd-analyze verify "$work/units/9prdma-relay@pkgtest.service" >"$work/verify.log" 2>&1 || verify_rc=$?
if ((verify_rc)) || grep -q 9prdma "$work/verify.log"; then
  cat "$work/verify.log" >&2
  fail "systemd-analyze verify $unit (as 9prdma-relay@pkgtest.service) failed"
fi
# shellcheck disable=SC2016  # the unit's own ${VAR} syntax
for line in 'EnvironmentFile=/etc/9prdma/relay-%i.conf' 'LimitMEMLOCK=infinity' 'Restart=on-failure' \
  'ExecStart=/usr/sbin/9prdma-relay --listen ${LISTEN} --to ${TO} $OPTIONS'; do
  grep -qxF -- "$line" "$unit" || fail "$unit lacks the line: $line"
done
# The example instance settings are accepted by the relay: on a host
# without RDMA it stops at the listener, not at the arguments.
(
  # shellcheck source=/dev/null
  source /usr/share/doc/$pkg/examples/relay.conf
  # shellcheck disable=SC2086  # $OPTIONS is split, as systemd splits it
  timeout 5 /usr/sbin/9prdma-relay --listen "$LISTEN" --to "$TO" $OPTIONS
) >"$work/relay.out" 2>&1 && fail "9prdma-relay with the example settings exited 0 at once"
if grep -Eq 'unknown argument|must be|needs a value|required' "$work/relay.out"; then
  fail "9prdma-relay rejects the example relay.conf: $(cat "$work/relay.out")"
fi
(($(wc -l <"$work/relay.out") <= 1)) || fail "9prdma-relay failing to listen printed more than one line: $(cat "$work/relay.out")"
echo "relay with the example settings: $(cat "$work/relay.out")"

step "systemd-fstab-generator on the documented fstab line"
auto_mnt=$work/auto
fstab_opts="_netdev,nofail,x-systemd.automount,x-systemd.mount-timeout=30,trans=tcp,port=$port,cache=loose"
printf '%s:%s %s 9prdma %s 0 0\n' "$host" "$export_dir" "$auto_mnt" "$fstab_opts" >"$work/gen.fstab"
mkdir "$work/gen"
SYSTEMD_FSTAB=$work/gen.fstab SYSTEMD_LOG_LEVEL=warning /lib/systemd/system-generators/systemd-fstab-generator \
  "$work/gen" "$work/gen" "$work/gen" || fail "systemd-fstab-generator failed"
unit_base=$(systemd-escape --path "$auto_mnt")
[[ -f $work/gen/$unit_base.automount ]] || fail "no $unit_base.automount from x-systemd.automount"
mount_unit=$work/gen/$unit_base.mount
[[ -f $mount_unit ]] || fail "no $unit_base.mount generated"
grep -qx 'Type=9prdma' "$mount_unit" || fail "generated mount unit lacks Type=9prdma"
grep -Eqx 'TimeoutSec=30s?' "$mount_unit" || fail "x-systemd.mount-timeout=30 did not become TimeoutSec=30"
# Without _netdev systemd takes type 9prdma for a local filesystem
# (local-fs.target, before the network); with it, a remote one.
[[ -L $work/gen/remote-fs.target.wants/$unit_base.automount ]] ||
  fail "_netdev did not make $unit_base.automount part of remote-fs.target"
[[ ! -e $work/gen/local-fs.target.wants/$unit_base.automount ]] || fail "the 9prdma automount is wanted by local-fs.target"

# --- 3. mounts through the installed helper ---------------------------------
helper_exe=$(readlink -f /sbin/mount.9prdma)
# PIDs of mount.9prdma daemons (by executable) serving mount point $1.
daemons_for() {
  local p
  for p in /proc/[0-9]*; do
    [[ $(readlink "$p/exe" 2>/dev/null) == "$helper_exe" ]] || continue
    [[ " $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) " == *" $1 "* ]] && echo "${p#/proc/}"
  done
  return 0
}
wait_gone() { # wait_gone PID...: up to 10 s for the processes to exit
  local p alive
  for _ in $(seq 100); do
    alive=0
    for p in "$@"; do [[ -d /proc/$p ]] && alive=1; done
    ((alive)) || return 0
    sleep 0.1
  done
  return 1
}

step "mount -t 9prdma"
mnt=$work/mnt
mkdir "$mnt"
mount -t 9prdma -o "trans=tcp,port=$port" "$host:$export_dir" "$mnt" || fail "mount -t 9prdma failed"
is_mounted "$mnt" || fail "mount -t 9prdma returned 0 but $mnt is not mounted"
[[ $(mount_type "$mnt") == fuse.9prdma ]] || fail "$mnt is a $(mount_type "$mnt") mount"
awk -v t="$mnt" -v s="$host:$export_dir" '$5 == t { for (i = 6; i <= NF; i++) if ($i == "-") { exit ($(i + 2) != s) } }' \
  /proc/self/mountinfo || fail "source of $mnt is not $host:$export_dir"
pids=$(daemons_for "$mnt")
[[ -n $pids ]] || fail "no daemon of the installed $helper_exe serves $mnt"
echo "served by the installed helper, pid $pids"
stats=/run/9prdma/${mnt//\//-}.stats
for _ in $(seq 30); do [[ -s $stats ]] && break; sleep 0.1; done
grep -q '^queue 0 ' "$stats" || fail "no per-queue line in the stats file $stats"
/usr/bin/9prdma stats "$mnt" >"$work/stats.txt" || fail "9prdma stats $mnt failed"
grep -q "^0 .*tcp $host:$port" "$work/stats.txt" || fail "9prdma stats $mnt shows no queue 0: $(cat "$work/stats.txt")"
echo "through the mount" >"$mnt/from-client"
[[ $(cat "$export_dir/from-client") == "through the mount" ]] || fail "a file written through the mount is not on the server"
echo "on the server" >"$export_dir/from-server"
[[ $(cat "$mnt/from-server") == "on the server" ]] || fail "a file written on the server is not visible through the mount"
umount "$mnt" || fail "umount $mnt failed"
! is_mounted "$mnt" || fail "$mnt still mounted after umount"
# shellcheck disable=SC2086
wait_gone $pids || fail "the mount daemon did not exit after umount"
[[ ! -e $stats ]] || fail "the stats file $stats is left after umount"

step "fstab lines through mount -a -T (temporary fstab)"
mkdir -p "$export_dir/ro" "$work/rw" "$work/ro" "$work/manual"
chmod 755 "$export_dir/ro"
echo "read-only data" >"$export_dir/ro/data"
fstab=$work/fstab
{
  echo "# test fstab (deb_test.sh)"
  printf '%s:%s %s 9prdma %s,noatime 0 0\n' "$host" "$export_dir" "$work/rw" "$fstab_opts"
  printf '%s:%s/ro %s 9prdma _netdev,nofail,trans=tcp,port=%s,ro,cache=readonly 0 0\n' "$host" "$export_dir" "$work/ro" "$port"
  printf '%s:%s %s 9prdma noauto,_netdev,trans=tcp,port=%s,timeout=10 0 0\n' "$host" "$export_dir" "$work/manual" "$port"
} >"$fstab"
mount -a -T "$fstab" || fail "mount -a -T $fstab failed"
is_mounted "$work/rw" || fail "mount -a did not mount $work/rw"
is_mounted "$work/ro" || fail "mount -a did not mount $work/ro"
! is_mounted "$work/manual" || fail "mount -a mounted the noauto line"
mount -a -T "$fstab" || fail "a second mount -a -T $fstab failed"
[[ $(mount_count "$work/rw") == 1 && $(mount_count "$work/ro") == 1 ]] || fail "a second mount -a mounted again"
[[ $(cat "$work/rw/from-server") == "on the server" ]] || fail "read through the fstab mount"
[[ $(cat "$work/ro/data") == "read-only data" ]] || fail "read through the ro fstab mount"
if touch "$work/ro/new" 2>/dev/null; then fail "writing to the ro mount succeeded"; fi
awk -v t="$work/ro" '$5 == t { exit ($6 !~ /(^|,)ro(,|$)/) }' /proc/self/mountinfo || fail "$work/ro is not mounted ro"
umount "$work/rw" || fail "umount $work/rw failed"
umount "$work/ro" || fail "umount $work/ro failed"
mount -T "$fstab" "$work/manual" || fail "mount -T $fstab MOUNTPOINT (the noauto line) failed"
is_mounted "$work/manual" || fail "mount -T $fstab $work/manual did not mount"
umount "$work/manual" || fail "umount $work/manual failed"
mount -T "$fstab" "$work/rw" || fail "mount -T $fstab $work/rw failed"
umount "$work/rw" || fail "umount $work/rw failed"

# --- 4. Slurm prolog and epilog ---------------------------------------------
prolog=/usr/share/$pkg/slurm/prolog.sh
epilog=/usr/share/$pkg/slurm/epilog.sh
mkdir -p "$export_dir/scratch"
chmod 755 "$export_dir/scratch"
slurm_conf() { # slurm_conf FILE PORT [EXTRA LINES]
  {
    echo "P9_SERVER=$host"
    echo "P9_EXPORT_BASE=$export_dir/scratch"
    echo "P9_MOUNT_BASE=$work/job"
    echo "P9_OPTIONS=trans=tcp,port=$2,timeout=10"
    echo "P9_MOUNT_TIMEOUT=30"
    echo "P9_UMOUNT_TIMEOUT=10"
    printf '%s\n' "${@:3}"
  } >"$1"
}
slurm_conf "$work/slurm.conf" "$port"
# run_job SCRIPT JOBID [CONF]: the script as slurmd runs it for a job of nobody.
run_job() {
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin SLURM_JOB_ID="$2" SLURM_JOB_UID=65534 SLURM_JOB_GID=65534 \
    SLURM_JOB_USER=nobody P9_SLURM_CONF="${3:-$work/slurm.conf}" "$1"
}
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

step "Slurm prolog: job 4242"
job_mnt=$work/job/4242
run_job "$prolog" 4242 || fail "prolog failed for job 4242"
is_mounted "$job_mnt" || fail "prolog did not mount $job_mnt"
[[ $(stat -c '%u %a' "$export_dir/scratch/4242") == "65534 700" ]] ||
  fail "prolog made $export_dir/scratch/4242 with owner/mode $(stat -c '%u %a' "$export_dir/scratch/4242"), not 65534 700"
as_nobody sh -c "echo job-output >'$job_mnt/result'" || fail "the job's user cannot write to $job_mnt"
[[ $(stat -c %u "$export_dir/scratch/4242/result") == 65534 ]] || fail "the job's file is not owned by the job's user on the server"
if timeout 10 ls "$job_mnt" >/dev/null 2>&1; then fail "root can use the job-scoped mount (access=UID)"; fi
run_job "$prolog" 4242 || fail "a second prolog for job 4242 failed"
[[ $(mount_count "$job_mnt") == 1 ]] || fail "a second prolog mounted $job_mnt again"
pids=$(daemons_for "$job_mnt")

step "Slurm epilog: job 4242"
run_job "$epilog" 4242 || fail "epilog failed for job 4242"
! is_mounted "$job_mnt" || fail "epilog left $job_mnt mounted"
[[ ! -e $job_mnt ]] || fail "epilog left the mount point $job_mnt"
# shellcheck disable=SC2086
wait_gone $pids || fail "the job's mount daemon did not exit after the epilog"
[[ $(cat "$export_dir/scratch/4242/result") == job-output ]] || fail "the job's data is not on the server"
run_job "$epilog" 4242 || fail "epilog for a job with nothing mounted failed"

step "Slurm epilog with the mount still in use: job 4243"
job_mnt=$work/job/4243
run_job "$prolog" 4243 || fail "prolog failed for job 4243"
# Not through as_nobody: $! must be the process itself, not a subshell.
setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "cd '$job_mnt' && exec sleep 300" \
  </dev/null >/dev/null 2>&1 &
holder=$!
bg_pids+=("$holder")
for _ in $(seq 50); do
  [[ $(readlink "/proc/$holder/cwd" 2>/dev/null) == "$job_mnt" ]] && break
  sleep 0.1
done
[[ $(readlink "/proc/$holder/cwd" 2>/dev/null) == "$job_mnt" ]] || fail "could not start a process inside $job_mnt"
# The epilog aborts the FUSE connection through fusectl, which systemd
# mounts on a normal system; mount it for this step if it is not.
pids=$(daemons_for "$job_mnt")
if ! is_mounted /sys/fs/fuse/connections && mount -t fusectl fusectl /sys/fs/fuse/connections 2>/dev/null; then
  mounted_fusectl=1
fi
started=$SECONDS
run_job "$epilog" 4243 2>"$work/epilog.err" || { cat "$work/epilog.err" >&2; fail "epilog failed on a busy mount"; }
((SECONDS - started < 30)) || fail "epilog on a busy mount took $((SECONDS - started)) s"
cat "$work/epilog.err"
grep -q 'detached' "$work/epilog.err" || fail "epilog did not report detaching the busy mount"
if ((mounted_fusectl)) || is_mounted /sys/fs/fuse/connections; then
  grep -q 'aborting the FUSE connection' "$work/epilog.err" || fail "epilog did not abort the busy mount's FUSE connection"
fi
if ((mounted_fusectl)); then
  umount /sys/fs/fuse/connections || fail "umount /sys/fs/fuse/connections failed"
  mounted_fusectl=0
fi
! is_mounted "$job_mnt" || fail "epilog left the busy $job_mnt mounted"
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
# shellcheck disable=SC2086
wait_gone $pids || fail "the busy mount's daemon did not exit after the epilog and its last user"

step "Slurm prolog against a closed port: job 4244"
closed_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
slurm_conf "$work/closed.conf" "$closed_port"
if run_job "$prolog" 4244 "$work/closed.conf" 2>"$work/prolog.err"; then fail "prolog succeeded against a closed port"; fi
grep -q 'error:' "$work/prolog.err" || fail "prolog failed without an error message"
cat "$work/prolog.err"
! is_mounted "$work/job/4244" || fail "failed prolog left a mount"
[[ ! -e $work/job/4244 ]] || fail "failed prolog left the mount point"
slurm_conf "$work/optional.conf" "$closed_port" "P9_REQUIRED=no"
run_job "$prolog" 4244 "$work/optional.conf" 2>/dev/null || fail "prolog with P9_REQUIRED=no failed the job"

step "Slurm prolog against a server that never answers: job 4245"
python3 -u -c '
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1]); sys.stdout.flush()
held = []
while True:
    held.append(s.accept()[0])' </dev/null >"$work/silent.port" 2>/dev/null &
silent=$!
bg_pids+=("$silent")
for _ in $(seq 50); do [[ -s $work/silent.port ]] && break; sleep 0.1; done
silent_port=$(cat "$work/silent.port")
[[ $silent_port =~ ^[0-9]+$ ]] || fail "the silent server did not start"
# timeout=60 per request, but the prolog's own deadline is 3 s.
slurm_conf "$work/silent.conf" "$silent_port" "P9_MOUNT_TIMEOUT=3" "P9_CREATE=no" \
  "P9_OPTIONS=trans=tcp,port=$silent_port,timeout=60"
started=$SECONDS
if run_job "$prolog" 4245 "$work/silent.conf" 2>"$work/prolog.err"; then fail "prolog succeeded against a silent server"; fi
elapsed=$((SECONDS - started))
cat "$work/prolog.err"
((elapsed <= 15)) || fail "prolog took $elapsed s against a silent server (P9_MOUNT_TIMEOUT=3)"
grep -q 'timed out' "$work/prolog.err" || fail "prolog did not say it timed out"
echo "prolog gave up after $elapsed s"
# The helper's daemon half, still waiting, fails once the server hangs up.
kill "$silent"
wait "$silent" 2>/dev/null || true
sleep 1
! is_mounted "$work/job/4245" || fail "a mount appeared after the prolog gave up"

# --- 5. removal -------------------------------------------------------------
step "dpkg --purge $pkg"
[[ -z $(our_mounts) ]] || fail "mounts left before removal: $(our_mounts | tr '\n' ' ')"
DEBIAN_FRONTEND=noninteractive dpkg --purge "$pkg" >"$work/dpkg.log" 2>&1 ||
  { cat "$work/dpkg.log" >&2; fail "dpkg --purge $pkg failed"; }
installed=0
if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q installed; then fail "$pkg still listed after purge"; fi
while read -r f; do
  [[ ! -e ${f#.} ]] || fail "${f#.} is left after dpkg --purge"
done <<<"$expected_files"
[[ ! -e /usr/share/doc/$pkg && ! -e /usr/share/$pkg ]] || fail "package directories left after purge"
