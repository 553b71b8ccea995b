#!/usr/bin/env bash
# pgbench-compare.sh — benchmark, on loopback, direct PostgreSQL vs PgBouncer vs pgrelay (vs HAProxy
# → PgBouncer, PgBouncer 1.25, Odyssey, a second pgrelay build), plus the memory each proxy needs
# per idle client connection, and print markdown tables.
#
# The harness is a Java program in the benchmarks module (io.pgrelay.bench.harness.PgbenchCompare);
# this wrapper builds the benchmarks jar when it is missing or older than the module's sources, and
# runs the program with the same arguments.
#
# Usage: benchmarks/pgbench-compare.sh [options]
#   --help prints the full documentation: options, environment variables, measurements, time cost.
# A quick check:
#   DURATION=2 WARMUP=1 RUNS=2 benchmarks/pgbench-compare.sh --clients 1,16 --protocols simple,prepared
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
JAR=$SCRIPT_DIR/target/benchmarks.jar

# The shaded jar's Main-Class is JMH's, so the program is started by class name.
if [[ ! -f $JAR || -n $(find "$SCRIPT_DIR/src/main" "$SCRIPT_DIR/pom.xml" -type f -newer "$JAR" -print -quit) ]]; then
    printf '[%s] building %s (mvn -B -q -pl benchmarks -am package -DskipTests)\n' "$(date +%H:%M:%S)" "$JAR" >&2
    (cd "$REPO_ROOT" && mvn -B -q -pl benchmarks -am package -DskipTests) >&2
fi

# pgbench and the proxies inherit this process's open-files limit: 1000 clients need more than
# the usual 1024, and N idle clients N plus the pool.
WANT_FDS=65536
HARD_FDS=$(ulimit -Hn)
if [[ $HARD_FDS == unlimited ]] || ((HARD_FDS >= WANT_FDS)); then
    ulimit -n "$WANT_FDS"
else
    ulimit -n "$HARD_FDS"
fi

# -XX:-MaxFDLimit: the JVM would otherwise raise its (and so every child's) limit to the hard one.
exec java -XX:-MaxFDLimit "-Dpgrelay.repo=$REPO_ROOT" -cp "$JAR" \
    io.pgrelay.bench.harness.PgbenchCompare "$@"
