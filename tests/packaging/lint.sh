#!/usr/bin/env bash
# tests/packaging/lint.sh [VERSION]
#
# Static checks of packaging/ (no build, no root): shellcheck of every
# packaging script, groff -ww of the man pages (no warnings), the man pages
# and debian/changelog at the project VERSION, the example configuration
# files readable the way they are used, and the unit template's keys known
# to systemd.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
version=${1:-}
fail() { echo "lint: FAIL: $*" >&2; exit 1; }
cd "$repo"

for tool in shellcheck groff systemd-analyze; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (packaging/install-deps.sh)"
done

scripts=(packaging/build-deb.sh packaging/slurm/prolog.sh packaging/slurm/epilog.sh
  packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm
  tests/packaging/deb_test.sh tests/packaging/lint.sh)
for s in "${scripts[@]}"; do
  [[ -x $s ]] || fail "$s is not executable"
done
shellcheck -x "${scripts[@]}" || fail "shellcheck found problems"
for s in packaging/build-deb.sh packaging/slurm/prolog.sh packaging/slurm/epilog.sh tests/packaging/*.sh; do
  grep -qx 'set -euo pipefail' "$s" || fail "$s lacks set -euo pipefail"
done

for page in packaging/man/*.[18]; do
  out=$(groff -man -Tutf8 -ww -z "$page" 2>&1) || fail "groff failed on $page"
  [[ -z $out ]] || fail "groff warns about $page: $out"
  if [[ -n $version ]]; then
    grep -q "^\.TH .*\"9prdma $version\"" "$page" || fail "$page: .TH does not say 9prdma $version"
  fi
done
if [[ -n $version ]] && command -v dpkg-parsechangelog >/dev/null; then
  v=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
  [[ ${v%-*} == "$version" ]] || fail "packaging/debian/changelog is at $v, the project at $version"
fi

# slurm.conf is sourced by bash; relay.conf is read by systemd, so keep it to
# plain VAR=value lines that bash reads the same way.
bash -n packaging/examples/slurm.conf || fail "examples/slurm.conf is not valid bash"
(
  set +u
  # shellcheck source=/dev/null
  source packaging/examples/relay.conf
  [[ -n $LISTEN && -n $TO ]]
) || fail "examples/relay.conf does not set LISTEN and TO"
# shellcheck disable=SC2016  # a regular expression, not an expansion
if grep -Ev '^(#.*|[A-Z_]+=("[^"$`]*"|[^ "$`]*)|)$' packaging/examples/relay.conf; then
  fail "examples/relay.conf: lines above are not plain VAR=value"
fi
awk '!/^#/ && NF { if (NF != 6 || $3 != "9prdma" || $4 !~ /_netdev/) { print; bad = 1 } } END { exit bad }' \
  packaging/examples/fstab || fail "examples/fstab: lines above are not 6-field 9prdma lines with _netdev"

# Unknown keys or sections in the unit (the full verify, with the binary
# installed, runs in deb_test.sh).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp packaging/systemd/9prdma-relay@.service "$tmp/9prdma-relay@lint.service"
systemd-analyze verify --man=no "$tmp/9prdma-relay@lint.service" >"$tmp/verify.log" 2>&1 || true
if grep -E 'Unknown (key|section)|Failed to parse|Invalid|bad-setting' "$tmp/verify.log"; then
  fail "systemd-analyze verify: the unit template has the problems above"
fi
echo "lint: OK"
