#!/usr/bin/env bash
# Build PgBouncer from a fetched snapshot of github.com/pgbouncer/pgbouncer (a bare git dir) into
# /opt/anchors/pgbouncer-VER/bin/pgbouncer, for the `pgbouncer125` target of
# benchmarks/pgbench-compare.sh. PgBouncer's code is only unpacked into a temp dir and built there:
# nothing of it goes into this repo.
#
# usage: benchmarks/build-pgbouncer.sh GIT_DIR [TAG]
#   GIT_DIR  a bare clone (git clone --bare https://github.com/pgbouncer/pgbouncer), or a repo's .git
#   TAG      default pgbouncer_1_25_2 (libusual is vendored under lib/ in the tag's tree: no submodule)
# Environment: PREFIX (default /opt/anchors/pgbouncer-VER), JOBS (default nproc).
# Needs Debian's build-essential, autoconf, automake, libtool, pkg-config, libevent-dev and
# libssl-dev; as root it installs them with apt-get. Built without c-ares, PAM and LDAP; only the
# binary (the docs need pandoc). Prints the binary's path; a binary already there is kept (delete it
# to rebuild).
set -euo pipefail
G=${1:?usage: build-pgbouncer.sh GIT_DIR [TAG]}
TAG=${2:-pgbouncer_1_25_2}
git --git-dir="$G" rev-parse --git-dir >/dev/null 2>&1 || { echo "$G is not a git dir" >&2; exit 1; }
git --git-dir="$G" rev-parse -q --verify "$TAG^{commit}" >/dev/null || { echo "no such ref: $TAG" >&2; exit 1; }
VER=$(echo "$TAG" | sed 's/^pgbouncer_//; s/_/./g')
PREFIX=${PREFIX:-/opt/anchors/pgbouncer-$VER}
JOBS=${JOBS:-$(nproc)}
[ -x "$PREFIX/bin/pgbouncer" ] && { echo "$PREFIX/bin/pgbouncer"; exit 0; }

if [[ $(id -u) -eq 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential autoconf automake libtool \
        pkg-config libevent-dev libssl-dev >/dev/null
fi

W=$(mktemp -d /tmp/pgbouncer-build.XXXXXX)
git --git-dir="$G" archive "$TAG" | tar -x -C "$W"
if ! (cd "$W" && ./autogen.sh && ./configure --prefix="$PREFIX" --without-cares --without-pam --without-ldap &&
    make -j"$JOBS" pgbouncer) >"$W/build.log" 2>&1; then
    tail -n 30 "$W/build.log" >&2
    echo "build failed in $W (log: $W/build.log)" >&2
    exit 1
fi
mkdir -p "$PREFIX/bin"
cp "$W/pgbouncer" "$PREFIX/bin/pgbouncer"
printf '%s (tag %s, commit %s), built %s with %s\n' "$("$PREFIX/bin/pgbouncer" --version | head -n1)" "$TAG" \
    "$(git --git-dir="$G" rev-parse --short "$TAG^{commit}")" "$(date -u '+%Y-%m-%d %H:%M UTC')" \
    "$(gcc --version | head -n1)" >"$PREFIX/BUILD-INFO"
rm -rf "$W"
echo "$PREFIX/bin/pgbouncer"
