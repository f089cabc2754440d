#!/usr/bin/env bash
# ./packaging/build-deb.sh [-B BUILD_DIR] [-o OUT_DIR] [-j JOBS] [--no-install]
#
# Builds the Debian package of 9prdma with CPack: installs the Debian
# packages the build needs if they are missing (as root; --no-install only
# checks), configures BUILD_DIR (default build-deb) if it is not yet,
# builds mount.9prdma, 9prdma, 9prdma-relay and the man pages, runs cpack (DEB
# generator; Depends from dpkg-shlibdeps), checks the result and prints the
# path of the .deb as the last line of standard output (progress goes to
# standard error). OUT_DIR defaults to BUILD_DIR/package.
#
#   sudo dpkg -i "$(./packaging/build-deb.sh)"
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
prog="build-deb.sh"
die() { echo "$prog: $*" >&2; exit 1; }
say() { echo "$prog: $*" >&2; }

build=$repo/build-deb
out=
jobs=2
install=1
while (($#)); do
  case $1 in
    -B) build=${2:?-B needs a directory}; shift 2 ;;
    -o) out=${2:?-o needs a directory}; shift 2 ;;
    -j) jobs=${2:?-j needs a number}; shift 2 ;;
    --no-install) install=0; shift ;;
    -h | --help) sed -n '2,13s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "-j needs a number, not '$jobs'"
mkdir -p "$build"
build=$(cd "$build" && pwd)
out=${out:-$build/package}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# --- tools ------------------------------------------------------------------
# Build dependencies, plus dpkg-dev (dpkg-shlibdeps, dpkg-parsechangelog)
# and file(1), which CPack's shlibdeps step needs.
packages=(cmake ninja-build g++ pkg-config libfuse3-dev libabsl-dev libibverbs-dev librdmacm-dev
  libmunge-dev libgtest-dev libgmock-dev dpkg-dev file gzip)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  ((install)) || die "missing packages: ${missing[*]} (apt-get install them, or run without --no-install as root)"
  [[ $(id -u) -eq 0 ]] || die "missing packages: ${missing[*]}; run as root to install them"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    die "apt-get install ${missing[*]} failed"
fi

# --- configure --------------------------------------------------------------
cache=$build/CMakeCache.txt
if [[ -f $cache ]]; then
  # A sanitized or fuzzing build must never become a package.
  if grep -Eq '^P9_SANITIZE:[A-Z]+=.+' "$cache" || grep -Eq '^P9_FUZZ:BOOL=(ON|TRUE|1)$' "$cache"; then
    die "$build is a sanitizer or fuzzing build; package from a plain build (-B DIR)"
  fi
fi
if [[ ! -f $cache ]]; then
  # Debian's hardening flags (fortify, stack protector, relro, bindnow), as
  # dpkg-buildpackage would use. CMake reads CPPFLAGS nowhere: fold it in.
  export DEB_BUILD_MAINT_OPTIONS=hardening=+all
  cppflags=$(dpkg-buildflags --get CPPFLAGS)
  CFLAGS="$(dpkg-buildflags --get CFLAGS) $cppflags"
  CXXFLAGS="$(dpkg-buildflags --get CXXFLAGS) $cppflags"
  LDFLAGS=$(dpkg-buildflags --get LDFLAGS)
  export CFLAGS CXXFLAGS LDFLAGS
  say "configuring $build (RelWithDebInfo, Debian hardening flags)"
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/configure-deb.log" 2>&1 ||
    { tail -n 30 "$build/configure-deb.log" >&2; die "configuring $build failed (log: $build/configure-deb.log)"; }
elif [[ ! -f $build/CPackConfig.cmake ]]; then
  say "re-configuring $build (no CPackConfig.cmake yet)"
  cmake "$build" >"$build/configure-deb.log" 2>&1 ||
    { tail -n 30 "$build/configure-deb.log" >&2; die "configuring $build failed (log: $build/configure-deb.log)"; }
fi
[[ -f $build/CPackConfig.cmake ]] || die "$build has no CPackConfig.cmake (is packaging/CMakeLists.txt included?)"

cpack_var() { sed -n "s/^set($1 \"\\(.*\\)\")\$/\\1/p" "$build/CPackConfig.cmake"; }
name=$(cpack_var CPACK_PACKAGE_NAME)
version=$(cpack_var CPACK_PACKAGE_VERSION)
release=$(cpack_var CPACK_DEBIAN_PACKAGE_RELEASE)
[[ -n $name && -n $version && -n $release ]] || die "cannot read the package name and version from $build/CPackConfig.cmake"
# The newest entry of debian/changelog must describe this version.
changelog_version=$(dpkg-parsechangelog -l "$repo/packaging/debian/changelog" -S Version)
[[ $changelog_version == "$version-$release" ]] ||
  die "packaging/debian/changelog is at $changelog_version, the package is $version-$release: add a changelog entry"

# --- build ------------------------------------------------------------------
targets=(mount.9prdma 9prdma 9prdma-relay p9_packaging_files)
for t in "${targets[@]}"; do
  ninja -C "$build" -t query "$t" >/dev/null 2>&1 ||
    die "$build has no target $t (9prdma-relay needs libibverbs-dev and librdmacm-dev at configure time)"
done
say "building ${targets[*]} in $build"
ninja -C "$build" -j "$jobs" "${targets[@]}" >&2 || die "build failed"

# --- package ----------------------------------------------------------------
arch=$(dpkg --print-architecture)
deb=$out/${name}_${version}-${release}_${arch}.deb
rm -f "$deb"
say "running cpack (log: $out/cpack.log)"
(cd "$build" && cpack --config "$build/CPackConfig.cmake" -G DEB -B "$out") >"$out/cpack.log" 2>&1 ||
  { tail -n 30 "$out/cpack.log" >&2; die "cpack failed (log: $out/cpack.log)"; }
[[ -f $deb ]] || die "cpack did not make $deb (log: $out/cpack.log)"

# --- check --------------------------------------------------------------------
depends=$(dpkg-deb -f "$deb" Depends)
[[ $depends == *libc6* && $depends == *libfuse3-3* && $depends == *librdmacm1* ]] ||
  die "Depends '$depends' lacks the shared libraries (did dpkg-shlibdeps run? see $out/cpack.log)"
contents=$(dpkg-deb -c "$deb")
for f in ./sbin/mount.9prdma ./usr/bin/9prdma ./usr/sbin/9prdma-relay ./usr/share/man/man8/mount.9prdma.8.gz \
  ./usr/share/man/man8/9prdma-relay.8.gz ./usr/share/man/man1/9prdma.1.gz ./lib/systemd/system/9prdma-relay@.service \
  ./usr/share/doc/9prdma/copyright; do
  grep -q " $f\$" <<<"$contents" || die "$deb lacks $f"
done
grep -q ' \./usr/sbin/mount\.9prdma$' <<<"$contents" && die "$deb holds mount.9prdma twice (/usr/sbin and /sbin)"
say "$(dpkg-deb -f "$deb" Package Version Architecture Installed-Size | tr '\n' ' ')"
say "Depends: $depends"
echo "$deb"
