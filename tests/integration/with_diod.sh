#!/usr/bin/env bash
# with_diod.sh COMMAND [ARGS...]
# Starts Debian's diod on 127.0.0.1 on a free port, exporting a fresh
# temporary directory, runs COMMAND with P9_DIOD_HOST, P9_DIOD_PORT,
# P9_DIOD_EXPORT and P9_DIOD_PID in its environment, and always stops diod
# and removes the export afterwards. Exits with COMMAND's status.
set -euo pipefail

die() { echo "with_diod: $*" >&2; exit 1; }
command -v diod >/dev/null || die "diod is not installed (run packaging/install-deps.sh)"

export_dir=$(mktemp -d "${TMPDIR:-/tmp}/p9-export.XXXXXX")
log=$(mktemp "${TMPDIR:-/tmp}/p9-diod-log.XXXXXX")
diod_pid=""
cleanup() {
  if [[ -n "$diod_pid" ]] && kill -0 "$diod_pid" 2>/dev/null; then
    kill "$diod_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$diod_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$diod_pid" 2>/dev/null || true
  fi
  [[ -n "${P9_DIOD_KEEPLOG:-}" ]] && cp "$log" "$P9_DIOD_KEEPLOG"
  rm -rf "$export_dir" "$log"
}
trap cleanup EXIT INT TERM

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

port=""
for attempt in 1 2 3 4 5; do
  port=$(free_port)
  # -c /dev/null: ignore /etc/diod.conf; -n: no auth (loopback test server).
  diod -f -n -c /dev/null -e "$export_dir" -l "127.0.0.1:$port" -L "$log" ${P9_DIOD_DEBUG:+-d 1} &
  diod_pid=$!
  for _ in $(seq 100); do
    if /usr/bin/python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; then
      break 2
    fi
    kill -0 "$diod_pid" 2>/dev/null || break
    sleep 0.05
  done
  kill "$diod_pid" 2>/dev/null || true
  wait "$diod_pid" 2>/dev/null || true
  diod_pid=""
done
[[ -n "$diod_pid" ]] || { cat "$log" >&2; die "diod did not start"; }

export P9_DIOD_HOST=127.0.0.1 P9_DIOD_PORT=$port P9_DIOD_EXPORT=$export_dir P9_DIOD_PID=$diod_pid
set +e
"$@"
rc=$?
set -e
if ! kill -0 "$diod_pid" 2>/dev/null; then
  echo "with_diod: diod exited during the test; its log:" >&2
  cat "$log" >&2
  [[ $rc -ne 0 ]] || rc=1
fi
exit $rc
