#!/usr/bin/env bash
# Build Yandex Odyssey from a fetched snapshot of github.com/yandex/odyssey (a bare git dir) into
# /opt/anchors/odyssey-VER/bin/odyssey, for the `odyssey` target of benchmarks/pgbench-compare.sh.
# Odyssey's code is only unpacked into a temp dir and built there: nothing of it goes into this repo.
#
# usage: benchmarks/build-odyssey.sh GIT_DIR [TAG]
#   GIT_DIR  a bare clone (git clone --bare https://github.com/yandex/odyssey), or a repo's .git
#   TAG      default: the newest release tag vX.Y.Z (release candidates -rcN skipped)
# Environment: PREFIX (default /opt/anchors/odyssey-VER), BUILD_TYPE (default Release: -O2 -g),
#   JOBS (default nproc).
# Needs Debian's cmake, gcc/make (build-essential) and libssl-dev; as root it installs them with
# apt-get when missing. Odyssey 1.5 vendors what it takes from PostgreSQL (SCRAM, MD5), so it needs
# neither libpq-dev nor postgresql-server-dev; PAM, LDAP and Prometheus support are built only when
# their -dev packages are present (the benchmark uses none of them).
# Prints the binary's path; a binary already there is kept (delete it to rebuild).
set -euo pipefail
G=${1:?usage: build-odyssey.sh GIT_DIR [TAG]}
git --git-dir="$G" rev-parse --git-dir >/dev/null 2>&1 || { echo "$G is not a git dir" >&2; exit 1; }
TAG=${2:-$(git --git-dir="$G" tag -l 'v[0-9]*' | grep -E '^v[0-9]+\.[0-9]+(\.[0-9]+)?$' | sort -V | tail -n1)}
[[ -n $TAG ]] || { echo "no release tag vX.Y.Z in $G; pass TAG" >&2; exit 1; }
git --git-dir="$G" rev-parse -q --verify "$TAG^{commit}" >/dev/null || { echo "no such ref: $TAG" >&2; exit 1; }
VER=${TAG#v}
PREFIX=${PREFIX:-/opt/anchors/odyssey-$VER}
BUILD_TYPE=${BUILD_TYPE:-Release}
JOBS=${JOBS:-$(nproc)}
[ -x "$PREFIX/bin/odyssey" ] && { echo "$PREFIX/bin/odyssey"; exit 0; }

missing=()
for p in cmake gcc make; do command -v "$p" >/dev/null 2>&1 || missing+=("$p"); done
[[ -e /usr/include/openssl/ssl.h ]] || missing+=(libssl-dev)
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential cmake libssl-dev >/dev/null
    else
        echo "missing: ${missing[*]} (apt-get install build-essential cmake libssl-dev)" >&2
        exit 1
    fi
fi

W=$(mktemp -d /tmp/odyssey-build.XXXXXX)
git --git-dir="$G" archive "$TAG" | tar -x -C "$W"
COMMIT=$(git --git-dir="$G" rev-parse --short "$TAG^{commit}")
# Odyssey's CMakeLists.txt reads the version from VERSION and the git hash from ODYSSEY_GIT_HASH
# (there is no .git in the unpacked tree).
if ! (cd "$W" && ODYSSEY_GIT_HASH=$COMMIT cmake -S . -B build -DCMAKE_BUILD_TYPE="$BUILD_TYPE" &&
    make -C build -j"$JOBS" odyssey) >"$W/build.log" 2>&1; then
    tail -n 30 "$W/build.log" >&2
    echo "build failed in $W (log: $W/build.log)" >&2
    exit 1
fi
mkdir -p "$PREFIX/bin"
cp "$W/build/sources/odyssey" "$PREFIX/bin/odyssey"
printf 'odyssey %s (tag %s, commit %s), CMAKE_BUILD_TYPE=%s, built %s with %s\n' "$VER" "$TAG" "$COMMIT" \
    "$BUILD_TYPE" "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(gcc --version | head -n1)" >"$PREFIX/BUILD-INFO"
rm -rf "$W"
echo "$PREFIX/bin/odyssey"
