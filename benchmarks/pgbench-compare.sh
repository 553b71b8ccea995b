#!/usr/bin/env bash
# pgbench-compare.sh — benchmark, on loopback, direct PostgreSQL vs PgBouncer vs pgrelay
# (vs HAProxy → PgBouncer, vs PgBouncer 1.25 and Odyssey where built), plus the memory each proxy
# needs per idle client connection.
#
# One command creates a throw-away PostgreSQL 15 instance (fast, non-durable settings, scram auth,
# user "bench"), initialises it with `pgbench -i -s $SCALE`, starts PgBouncer and pgrelay in front of
# it with the same pool size (transaction pooling) and, where /usr/sbin/haproxy exists, HAProxy in
# TCP mode in front of that PgBouncer (the HAProxy → PgBouncer setup pgrelay replaces); where they
# have been built from source (see "Optional peers" below), also PgBouncer 1.25 (target
# pgbouncer125, which maps protocol-level prepared statements) and Yandex Odyssey (target odyssey).
# It then runs the select-only workload (`pgbench -n -S`) for every (protocol, clients) point, RUNS
# times per point, interleaving the targets: run r of a point runs every target once, in the target
# order rotated by r-1 (run 1: direct,pgbouncer,pgrelay,haproxy; run 2: pgbouncer,pgrelay,haproxy,
# direct; ...; with the optional peers: direct,pgbouncer,pgbouncer125,odyssey,pgrelay,haproxy), so
# drift (thermal, page cache, neighbours) hits all targets alike. It prints a markdown summary:
# median tps (min–max over the runs), mean and p99 latency (from pgbench's per-transaction log),
# failed transactions, CPU seconds each proxy process used per 1,000 transactions, and tps ratios
# against PgBouncer and direct (and of pgrelay against pgbouncer125 and odyssey). With
# --idle-clients N it finally measures the RSS of pgrelay and of PgBouncer (and of pgbouncer125 and
# odyssey when they run) holding N idle authenticated client connections, each proxy in turn while
# the others are idle. With --baseline-jar (or BASELINE_JAR) a second pgrelay, the target
# `baseline`, runs from another jar next to the first one, so one interleaved run compares two
# builds (before/after a change). With --tls MODES the points run once per TLS mode (plain, TLS
# between client and proxy, TLS on both sides), the proxies restarted with that mode's settings,
# each mode with its own tables; --connect-clients adds connection-rate points (pgbench -C).
# Raw per-run pgbench outputs, configs and logs go to benchmarks/results/<timestamp>/ (ignored by
# git); processes and temp dirs are cleaned up on exit.
#
# Usage:
#   benchmarks/pgbench-compare.sh [--targets LIST] [--clients LIST] [--protocols LIST] [--prepared]
#                                 [--runs N] [--idle-clients N] [--build] [--baseline-jar PATH]
#                                 [--tls MODES] [--connect-clients LIST]
#
#   --targets LIST    comma-separated subset of direct,pgbouncer,pgbouncer125,odyssey,pgrelay,
#                     baseline,haproxy (default: direct,pgbouncer,pgbouncer125,odyssey,pgrelay,haproxy,
#                     plus baseline after pgrelay when a baseline jar is given; haproxy, pgbouncer125
#                     and odyssey only if their binaries, $HAPROXY, $PGBOUNCER125 and $ODYSSEY,
#                     exist; otherwise the summary says they were not run). haproxy forwards to the
#                     PgBouncer (1.18) instance, which is started for it even if pgbouncer itself is
#                     not a target. A target asked for explicitly whose binary (or jar) is missing
#                     is an n/a column with the reason.
#   --clients LIST    client counts (default 1,16,64,256,1000). direct is skipped above
#                     max_connections-10 (290).
#   --protocols LIST  pgbench -M protocols (default simple,extended,prepared). PgBouncer 1.18 in
#                     transaction mode does not support protocol-level prepared statements: with
#                     more than one client its prepared runs abort, and the table says so. The
#                     prepared points compare pgrelay with pgbouncer125 and odyssey only (which
#                     map prepared statements across server connections); the tables mark the
#                     prepared cells of pgbouncer and haproxy (1.18 behind them) with †.
#   --prepared        add prepared to --protocols (kept for compatibility)
#   --runs N          measured runs per (protocol, clients, target), default $RUNS or 3; the table
#                     shows medians, and the tps range over the runs
#   --idle-clients N  after the pgbench runs, hold N idle logged-in client connections (SCRAM,
#                     opened by benchmarks/src/main/java/io/pgrelay/bench/IdleClients.java, run as a
#                     single source file) on pgrelay, then on PgBouncer (then on pgbouncer125 and
#                     odyssey when they run), and report the RSS growth per connection. Default
#                     $IDLE_CLIENTS or 0 (skip). Every proxy then gets max_client_conn (Odyssey:
#                     client_max) = N + 1000. The issue's measurement is --idle-clients 10000;
#                     idle only, without pgbench points: --clients none.
#   --build           build proxy-core/target/pgrelay.jar (mvn -B -q -DskipTests package) if missing
#   --baseline-jar PATH  the jar of the `baseline` target (default $BASELINE_JAR): a second pgrelay
#                     started exactly like the `pgrelay` target (bin/pgrelay, same JVM options and
#                     -D settings) but from this jar and on its own ports; it takes part in the
#                     interleaving, the warm-up, every table, the idle test, and adds the ratio
#                     column pgrelay/baseline. Never built by --build. E.g. the jar of the commit
#                     before a refactoring: git worktree add /tmp/before <commit>, build it there.
#   --tls MODES       comma-separated TLS modes, each a section of its own (default $TLS or off):
#                       off     plain text everywhere (the default; alone, the run is exactly the
#                               one without --tls; next to other modes, pgrelay and PgBouncer get
#                               their TLS settings explicitly off, and the heading says "no TLS")
#                       client  TLS between pgbench and the proxies (client_tls_sslmode=require,
#                               PGSSLMODE=require), plain text from the proxies to PostgreSQL
#                               (server_tls_sslmode=disable); direct stays plain (marked so)
#                       both    also TLS from the proxies to PostgreSQL (server_tls_sslmode=require;
#                               PostgreSQL ssl=on) and for direct (PGSSLMODE=require)
#                     The script makes a throw-away CA and one server certificate for 127.0.0.1 /
#                     localhost with openssl (key: unencrypted PKCS#8 PEM, as pgrelay requires);
#                     PgBouncer, pgrelay and PostgreSQL all use those same files. Each mode
#                     restarts PgBouncer, pgrelay (and baseline, HAProxy) with its settings and
#                     warms them up again; the targets are interleaved within a mode, not across
#                     modes. Not with --idle-clients (the idle client speaks plain text only).
#                     E.g. --tls off,client,both compares the three in one run.
#   --connect-clients LIST  client counts of connection-rate points (default $CONNECT_CLIENTS or
#                     none): pgbench -n -S -M simple -C, a new connection (TCP, TLS handshake in
#                     the TLS modes, SCRAM login) per transaction; its tps is new connections per
#                     second and its cpu column CPU per 1,000 connections. They are rows of
#                     protocol "connect" after the --protocols points, warmed up with -C as well.
#                     Only connection-rate points: --clients none --connect-clients 1,16.
#   -h, --help        this text
#
# Environment:
#   DURATION=10       seconds measured per pgbench run
#   RUNS=3            runs per point (same as --runs)
#   WARMUP=15         seconds of unrecorded pgbench (16 clients) per target and protocol before the
#                     runs. pgrelay's JIT compiles for ~15-20 s: a shorter warm-up makes whichever
#                     point runs first look 20-40 % more expensive in CPU than the steady state
#   CONNECT_SLACK     seconds added to -T for opening the connections (default: clients/50, i.e.
#                     20 s for 1000 clients). pgbench 15 starts the -T clock before its clients
#                     have connected, and 1000 SCRAM logins take several seconds on 2 cores, so
#                     without it a short run measures nothing. tps excludes the connection phase
#                     either way; set CONNECT_SLACK=0 for a plain `-T $DURATION`.
#   SCALE=10          pgbench scale factor for -i
#   POOL_SIZE=20      server pool size of PgBouncer and pgrelay
#   IDLE_CLIENTS=0    same as --idle-clients;  IDLE_THREADS=4  login threads of the idle client
#   PG_BINDIR=/usr/lib/postgresql/15/bin   PostgreSQL programs (initdb, pg_ctl, psql, pgbench)
#   PGBOUNCER=/usr/sbin/pgbouncer          PgBouncer binary (Debian 12: 1.18)
#   HAPROXY=/usr/sbin/haproxy              HAProxy binary (Debian: apt-get install haproxy)
#   PGBOUNCER125=<newest /opt/anchors/pgbouncer-1.25.*/bin/pgbouncer>   target pgbouncer125
#   ODYSSEY=<newest /opt/anchors/odyssey-*/bin/odyssey>                  target odyssey
#   ODYSSEY_WORKERS=<half the cores, at least 1>  Odyssey's worker threads: pgrelay's default
#                                          number of event loops (runtime.worker_threads = 0);
#                                          PgBouncer is single-threaded
#   JAVA=java  JAVA_OPTS=                  JVM used for pgrelay and baseline (and the idle client);
#                                          extra JVM options for both, after those of
#   PGRELAY_JVM_OPTIONS=<repo>/conf/jvm.options  (what bin/pgrelay uses; /dev/null for none)
#   PGRELAY_JAR=<repo>/proxy-core/target/pgrelay.jar
#   BASELINE_JAR=                          same as --baseline-jar (empty: no baseline)
#   BASELINE_OPTS=                         extra JVM options for the baseline only, e.g. the same
#                                          jar with -Dpgrelay.pool.track_session_state=false
#   BASELINE_JAVA=                         the java command for the baseline only (default $JAVA),
#                                          e.g. the same jar on another runtime
#   PGSSLMODE=disable  (libpq clients; same for every target; in the TLS modes the script sets it per
#                      target: require, or disable for direct in mode client)
#   TLS=off            same as --tls;  TLS_KEY=ec  key of the throw-away certificates: ec (P-256) or
#                      rsa (2048 bits)
#   CONNECT_CLIENTS=   same as --connect-clients
#
# Measurements:
#   tps       pgbench's "tps ... (without initial connection time)" of each run; median over runs.
#   latency   mean and p99 (nearest rank) over every successful transaction of the run, from
#             `pgbench --log` (field 3 of each line, in µs; one file per pgbench thread); the
#             median of the per-run values is shown. The logs are deleted after use; each raw
#             output keeps a "# txlog:" summary line, and runs.csv has every run's numbers.
#   cpu       user+system CPU of the proxy process (/proc/PID/stat) during the run, connection
#             phase included, per 1,000 transactions, in ms; for haproxy both HAProxy alone and
#             HAProxy + PgBouncer. pgbench and PostgreSQL share the same 2 cores.
#             For pgrelay and baseline: their own JVM process each.
#   idle RSS  VmRSS of the proxy before and with N idle connections (each read once it is stable:
#             two samples 2 s apart within 1 % / 256 kB); (after - before) / N per connection.
#             For pgrelay (and baseline) also the live Java heap (jcmd GC.run; GC.heap_info) with
#             the N connections and after they closed, taken after the RSS readings.
#
# Time: about points x RUNS x targets x (DURATION + clients/50 + ~1) s; the defaults (15 points,
# 3 runs, 4 targets, 10 s) take about 45 minutes. Each TLS mode takes that time again. A quick check:
#   DURATION=2 WARMUP=1 RUNS=2 benchmarks/pgbench-compare.sh --clients 1,16 --protocols simple,prepared
# TLS overhead and connection rate, plain vs TLS, in one run (about 25 minutes):
#   DURATION=5 WARMUP=10 benchmarks/pgbench-compare.sh --targets direct,pgbouncer,pgrelay \
#       --protocols simple --clients 1,16,64,256 --connect-clients 1,16 --tls off,client,both
# The prepared-statement comparison, against the peers that map prepared statements:
#   benchmarks/pgbench-compare.sh --targets pgbouncer125,odyssey,pgrelay --protocols prepared
# Before/after a change, in one run (the baseline jar built from the older commit):
#   benchmarks/pgbench-compare.sh --targets pgbouncer,pgrelay,baseline --baseline-jar /tmp/b.jar
#
# Optional peers, built from their published sources with Debian's compilers and libraries (their
# code is never part of this repository; as root the scripts apt-get what the build needs):
#   pgbouncer125  git clone --bare https://github.com/pgbouncer/pgbouncer /tmp/pgbouncer.git
#                 benchmarks/build-pgbouncer.sh /tmp/pgbouncer.git      # -> /opt/anchors/pgbouncer-1.25.2
#                 Configured like pgbouncer (same ini: transaction mode, pool size, scram, userlist)
#                 plus max_prepared_statements = 200, so pgbench -M prepared works with any number
#                 of clients.
#   odyssey       git clone --bare https://github.com/yandex/odyssey /tmp/odyssey.git
#                 benchmarks/build-odyssey.sh /tmp/odyssey.git [TAG]    # -> /opt/anchors/odyssey-<ver>
#                 (TAG: default the newest release vX.Y.Z). One route bench.bench: pool
#                 "transaction", pool_size $POOL_SIZE, authentication "scram-sha-256" with the
#                 benchmark user's password (the same secret as PgBouncer's userlist) and
#                 storage_password for the server login, pool_reserve_prepared_statement yes,
#                 pool_discard no (PgBouncer runs no reset query in transaction mode either),
#                 workers $ODYSSEY_WORKERS; the config is saved with the results (odyssey.conf).
#
# When run as root, PostgreSQL, PgBouncer, Odyssey and HAProxy run as the `postgres` OS user (setpriv, or
# runuser). Ports are chosen by the script in 20000-31999 (below the kernel's ephemeral range, so
# the client connections never collide with a listener).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-15}
SCALE=${SCALE:-10}
POOL_SIZE=${POOL_SIZE:-20}
IDLE_CLIENTS=${IDLE_CLIENTS:-0}
IDLE_THREADS=${IDLE_THREADS:-4}
MAX_CLIENT_CONN=2000
PG_MAX_CONNECTIONS=300
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PGBOUNCER=${PGBOUNCER:-/usr/sbin/pgbouncer}
HAPROXY=${HAPROXY:-/usr/sbin/haproxy}
newest_build() { # newest_build <glob>: the highest version among the files the glob names (or the glob)
    local f
    f=$(compgen -G "$1" | sort -V | tail -n1 || true)
    printf '%s' "${f:-$1}"
}
PGBOUNCER125=${PGBOUNCER125:-$(newest_build '/opt/anchors/pgbouncer-1.25.*/bin/pgbouncer')}
ODYSSEY=${ODYSSEY:-$(newest_build '/opt/anchors/odyssey-*/bin/odyssey')}
ODYSSEY_WORKERS=${ODYSSEY_WORKERS:-$(($(nproc) / 2 > 0 ? $(nproc) / 2 : 1))}
JAVA=${JAVA:-java}
JAVA_OPTS=${JAVA_OPTS:-}
JVM_OPTIONS_FILE=${PGRELAY_JVM_OPTIONS:-$REPO_ROOT/conf/jvm.options}
PGRELAY_JAR=${PGRELAY_JAR:-$REPO_ROOT/proxy-core/target/pgrelay.jar}
[[ $PGRELAY_JAR == /* ]] || PGRELAY_JAR=$PWD/$PGRELAY_JAR
BASELINE_JAR=${BASELINE_JAR:-}
BASELINE_OPTS=${BASELINE_OPTS:-}
BASELINE_JAVA=${BASELINE_JAVA:-}
IDLE_CLIENT_SRC=$SCRIPT_DIR/src/main/java/io/pgrelay/bench/IdleClients.java
TLS=${TLS:-off}
TLS_KEY=${TLS_KEY:-ec}
CONNECT_LIST=${CONNECT_CLIENTS:-}
BENCH_USER=bench
BENCH_PASSWORD=benchpw
BENCH_DB=bench
HOST=127.0.0.1
START_TIMEOUT=30

TARGETS=(direct pgbouncer pgbouncer125 odyssey pgrelay haproxy)
TARGETS_GIVEN=0
PROTOCOLS=(simple extended prepared)
CLIENTS=(1 16 64 256 1000)
TLS_MODES=()
CONNECT_CLIENTS=()
WITH_PREPARED=0
BUILD=0

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() {
    sed -n '2,/^set -euo pipefail/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

split_list() { # split_list <out-array-name> <comma-separated list>
    local -n out=$1
    local IFS=,
    # shellcheck disable=SC2206 # intentional word splitting on commas
    out=($2)
}

while (($# > 0)); do
    case $1 in
        --targets) [[ $# -ge 2 ]] || die "--targets needs a value"; split_list TARGETS "$2"; TARGETS_GIVEN=1; shift 2 ;;
        --targets=*) split_list TARGETS "${1#*=}"; TARGETS_GIVEN=1; shift ;;
        --protocols) [[ $# -ge 2 ]] || die "--protocols needs a value"; split_list PROTOCOLS "$2"; shift 2 ;;
        --protocols=*) split_list PROTOCOLS "${1#*=}"; shift ;;
        --clients) [[ $# -ge 2 ]] || die "--clients needs a value"; split_list CLIENTS "$2"; shift 2 ;;
        --clients=*) split_list CLIENTS "${1#*=}"; shift ;;
        --runs) [[ $# -ge 2 ]] || die "--runs needs a value"; RUNS=$2; shift 2 ;;
        --runs=*) RUNS=${1#*=}; shift ;;
        --idle-clients) [[ $# -ge 2 ]] || die "--idle-clients needs a value"; IDLE_CLIENTS=$2; shift 2 ;;
        --idle-clients=*) IDLE_CLIENTS=${1#*=}; shift ;;
        --prepared) WITH_PREPARED=1; shift ;;
        --build) BUILD=1; shift ;;
        --baseline-jar) [[ $# -ge 2 ]] || die "--baseline-jar needs a value"; BASELINE_JAR=$2; shift 2 ;;
        --baseline-jar=*) BASELINE_JAR=${1#*=}; shift ;;
        --tls) [[ $# -ge 2 ]] || die "--tls needs a value"; TLS=$2; shift 2 ;;
        --tls=*) TLS=${1#*=}; shift ;;
        --connect-clients) [[ $# -ge 2 ]] || die "--connect-clients needs a value"; CONNECT_LIST=$2; shift 2 ;;
        --connect-clients=*) CONNECT_LIST=${1#*=}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

[[ -z $BASELINE_JAR || $BASELINE_JAR == /* ]] || BASELINE_JAR=$PWD/$BASELINE_JAR
# A baseline jar adds the baseline target to the default list, right after pgrelay.
if ((!TARGETS_GIVEN)) && [[ -n $BASELINE_JAR ]]; then
    TARGETS=(direct pgbouncer pgbouncer125 odyssey pgrelay baseline haproxy)
fi
if ((WITH_PREPARED)) && [[ " ${PROTOCOLS[*]} " != *" prepared "* ]]; then
    PROTOCOLS+=(prepared)
fi
if [[ ${CLIENTS[*]} == none ]]; then
    CLIENTS=()
fi
split_list TLS_MODES "$TLS"
split_list CONNECT_CLIENTS "$CONNECT_LIST"
[[ ${CONNECT_CLIENTS[*]} == none ]] && CONNECT_CLIENTS=()
for t in "${TARGETS[@]}"; do
    case $t in
        direct | pgbouncer | pgbouncer125 | odyssey | pgrelay | baseline | haproxy) ;;
        *) die "unknown target '$t' (direct, pgbouncer, pgbouncer125, odyssey, pgrelay, baseline, haproxy)" ;;
    esac
done
for p in "${PROTOCOLS[@]}"; do
    case $p in simple | extended | prepared) ;; *) die "unknown protocol '$p' (simple, extended, prepared)" ;; esac
done
for c in "${CLIENTS[@]}" "${CONNECT_CLIENTS[@]}"; do
    [[ $c =~ ^[1-9][0-9]*$ ]] || die "bad client count '$c'"
done
TLS_USED=0 # 1 when a mode other than off runs: then every mode sets its TLS settings explicitly
for m in "${TLS_MODES[@]}"; do
    case $m in
        off) ;;
        client | both) TLS_USED=1 ;;
        *) die "unknown TLS mode '$m' (off, client, both)" ;;
    esac
done
((${#TLS_MODES[@]} > 0)) || die "--tls needs at least one mode (off, client, both)"
[[ $TLS_KEY == ec || $TLS_KEY == rsa ]] || die "TLS_KEY must be ec or rsa, got '$TLS_KEY'"
# The points: "protocol|clients", the pgbench -S points, then the connection-rate points.
POINTS=()
for p in "${PROTOCOLS[@]}"; do
    for c in "${CLIENTS[@]}"; do
        POINTS+=("$p|$c")
    done
done
for c in "${CONNECT_CLIENTS[@]}"; do
    POINTS+=("connect|$c")
done
POINT_PROTOCOLS=() # the protocols that have points, each warmed up
((${#CLIENTS[@]})) && POINT_PROTOCOLS+=("${PROTOCOLS[@]}")
((${#CONNECT_CLIENTS[@]})) && POINT_PROTOCOLS+=(connect)
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive integer (seconds), got '$DURATION'"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS / --runs must be a positive integer, got '$RUNS'"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP must be an integer (seconds), got '$WARMUP'"
[[ $SCALE =~ ^[1-9][0-9]*$ ]] || die "SCALE must be a positive integer, got '$SCALE'"
[[ -z ${CONNECT_SLACK:-} || $CONNECT_SLACK =~ ^[0-9]+$ ]] || die "CONNECT_SLACK must be an integer (seconds)"
[[ $POOL_SIZE =~ ^[1-9][0-9]*$ ]] || die "POOL_SIZE must be a positive integer, got '$POOL_SIZE'"
[[ $IDLE_CLIENTS =~ ^[0-9]+$ ]] || die "IDLE_CLIENTS / --idle-clients must be an integer, got '$IDLE_CLIENTS'"
[[ $IDLE_THREADS =~ ^[1-9][0-9]*$ ]] || die "IDLE_THREADS must be a positive integer, got '$IDLE_THREADS'"
[[ $ODYSSEY_WORKERS =~ ^[1-9][0-9]*$ ]] || die "ODYSSEY_WORKERS must be a positive integer, got '$ODYSSEY_WORKERS'"
((${#POINTS[@]} > 0 || IDLE_CLIENTS > 0)) || die "nothing to do: --clients none and no --idle-clients"
if ((IDLE_CLIENTS > 0 && TLS_USED)); then
    die "--idle-clients runs in plain text only: run it without --tls (or with --tls off)"
fi
if ((TLS_USED)) && ! command -v openssl >/dev/null 2>&1; then
    die "--tls $TLS needs openssl (for the throw-away certificates)"
fi
for tool in initdb pg_ctl psql pgbench pg_isready; do
    [[ -x $PG_BINDIR/$tool ]] || die "$PG_BINDIR/$tool not found (set PG_BINDIR)"
done

declare -A SKIP_REASON=()
NOTES=()
# haproxy, pgbouncer125 and odyssey are in the default list only where their binaries exist; asked
# for explicitly, a missing binary makes the target an n/a column with the reason.
drop_default_target() { # drop_default_target <target> <note>
    local t
    local -a kept=()
    for t in "${TARGETS[@]}"; do
        [[ $t == "$1" ]] || kept+=("$t")
    done
    TARGETS=("${kept[@]}")
    NOTES+=("$1 not run: $2")
}
if ((!TARGETS_GIVEN)); then
    [[ -x $HAPROXY ]] ||
        drop_default_target haproxy "$HAPROXY not found (apt-get install haproxy to include HAProxy → PgBouncer)"
    [[ -x $PGBOUNCER125 ]] ||
        drop_default_target pgbouncer125 "$PGBOUNCER125 not found (benchmarks/build-pgbouncer.sh GIT_DIR builds PgBouncer 1.25; or set PGBOUNCER125)"
    [[ -x $ODYSSEY ]] ||
        drop_default_target odyssey "$ODYSSEY not found (benchmarks/build-odyssey.sh GIT_DIR builds Odyssey; or set ODYSSEY)"
fi

has_target() { [[ " ${TARGETS[*]} " == *" $1 "* ]]; }

# Idle connections need max_client_conn above their count on both proxies.
if ((IDLE_CLIENTS + 1000 > MAX_CLIENT_CONN)); then
    MAX_CLIENT_CONN=$((IDLE_CLIENTS + 1000))
fi

# ---------------------------------------------------------------------------------------------
# Environment: OS user for PostgreSQL/PgBouncer/HAProxy, fd limit, libpq variables
# ---------------------------------------------------------------------------------------------
AS_PG=()
PG_OS_USER=$(id -un)
if [[ $(id -u) -eq 0 ]]; then
    PG_OS_USER=postgres
    id "$PG_OS_USER" >/dev/null 2>&1 || die "running as root but there is no '$PG_OS_USER' OS user"
    if command -v setpriv >/dev/null 2>&1; then
        # setpriv keeps this shell's raised fd limit (runuser's PAM session resets it to 1024).
        AS_PG=(setpriv "--reuid=$PG_OS_USER" "--regid=$PG_OS_USER" --init-groups --)
    else
        AS_PG=(runuser -u "$PG_OS_USER" --)
    fi
fi

# 1000 clients need >1000 fds in pgbench and ~2x that in the proxies (and in HAProxy); N idle
# clients need N in the idle client and N + pool in the proxy.
WANT_FDS=65536
HARD_FDS=$(ulimit -Hn)
if [[ $HARD_FDS == unlimited ]] || ((HARD_FDS >= WANT_FDS)); then
    ulimit -n "$WANT_FDS"
else
    ulimit -n "$HARD_FDS"
fi
NEED_FDS=100
for c in "${CLIENTS[@]}" "${CONNECT_CLIENTS[@]}"; do
    ((2 * c + 100 > NEED_FDS)) && NEED_FDS=$((2 * c + 100))
done
((IDLE_CLIENTS + POOL_SIZE + 100 > NEED_FDS)) && NEED_FDS=$((IDLE_CLIENTS + POOL_SIZE + 100))
if (($(ulimit -n) < NEED_FDS)); then
    log "warning: open-files limit is $(ulimit -n), these runs need about $NEED_FDS (raise the hard limit)"
fi

# Only what we pass explicitly reaches libpq.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGSERVICEFILE PGOPTIONS PGPASSFILE \
    PGTARGETSESSIONATTRS PGAPPNAME
export PGSSLMODE=${PGSSLMODE:-disable}
export PGCONNECT_TIMEOUT=10
export LC_ALL=C

# ---------------------------------------------------------------------------------------------
# Temp dir, results dir, cleanup
# ---------------------------------------------------------------------------------------------
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS_ROOT=$SCRIPT_DIR/results
RESULTS=$RESULTS_ROOT/$STAMP
mkdir -p "$RESULTS"
# Keep results out of git without touching tracked files ("*" also ignores this .gitignore).
[[ -e $RESULTS_ROOT/.gitignore ]] || printf '*\n' >"$RESULTS_ROOT/.gitignore"

WORK=$(mktemp -d /tmp/pgrelay-bench.XXXXXX)
chmod 755 "$WORK"
PGDATA_DIR=$WORK/pgdata
SOCK_DIR=$WORK/sock
mkdir -p "$SOCK_DIR"
if ((${#AS_PG[@]})); then
    chown "$PG_OS_USER": "$WORK" "$SOCK_DIR"
fi

cd "$WORK"

PG_STARTED=0
PGBOUNCER_PIDFILE=$WORK/pgbouncer.pid
PGBOUNCER125_PIDFILE=$WORK/pgbouncer125.pid
ODYSSEY_PIDFILE=$WORK/odyssey.pid
HAPROXY_PIDFILE=$WORK/haproxy.pid
declare -A RELAY_PID=() # pgrelay / baseline -> pid of its JVM
declare -A TLS_ENGINE=() # pgrelay / baseline -> the "TLS engine: ..." line of its log (TLS modes)
IDLE_PID=
IDLE_FD=

terminate() { # terminate <pid> [signal]: SIGTERM (or the signal given), up to 10 s to exit, then SIGKILL
    kill -0 "$1" 2>/dev/null || return 0
    kill "-${2:-TERM}" "$1" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null || true
}

stop_pgrelay() { # stop_pgrelay <pgrelay|baseline>
    local pid=${RELAY_PID[$1]:-}
    [[ -n $pid ]] || return 0
    terminate "$pid"
    wait "$pid" 2>/dev/null || true
    RELAY_PID[$1]=
}

# stop_pidfile <pidfile> [signal]: stop the daemon it names (PgBouncer 1.18, HAProxy and Odyssey
# without clients exit at once on SIGTERM; PgBouncer 1.23+ waits for its clients on SIGTERM and
# shuts down at once on SIGQUIT)
stop_pidfile() {
    [[ -s $1 ]] || return 0
    local pid
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] && terminate "$pid" "${2:-TERM}"
    rm -f "$1"
}
stop_pgbouncer() { stop_pidfile "$PGBOUNCER_PIDFILE"; }
stop_pgbouncer125() { stop_pidfile "$PGBOUNCER125_PIDFILE" QUIT; }
stop_odyssey() { stop_pidfile "$ODYSSEY_PIDFILE"; }
stop_haproxy() { stop_pidfile "$HAPROXY_PIDFILE"; }

stop_idle_client() { # close the idle client's stdin (it then closes its connections), or kill it
    if [[ -n $IDLE_FD ]]; then
        exec {IDLE_FD}>&-
        IDLE_FD=
    fi
    [[ -n $IDLE_PID ]] || return 0
    local i
    for ((i = 0; i < 300; i++)); do
        kill -0 "$IDLE_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$IDLE_PID" 2>/dev/null || true
    wait "$IDLE_PID" 2>/dev/null || true
    IDLE_PID=
}

stop_postgres() {
    ((PG_STARTED)) || return 0
    "${AS_PG[@]}" "$PG_BINDIR/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 30 stop >/dev/null 2>&1 ||
        "${AS_PG[@]}" "$PG_BINDIR/pg_ctl" -D "$PGDATA_DIR" -m immediate -w -t 15 stop >/dev/null 2>&1 || true
    local pid
    if [[ -s $PGDATA_DIR/postmaster.pid ]]; then
        pid=$(head -n1 "$PGDATA_DIR/postmaster.pid")
        if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    PG_STARTED=0
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    stop_idle_client
    stop_haproxy
    stop_pgrelay pgrelay
    stop_pgrelay baseline
    stop_pgbouncer
    stop_pgbouncer125
    stop_odyssey
    stop_postgres
    # Keep the logs next to the raw results.
    [[ -f $WORK/pgbouncer.log ]] && cp "$WORK/pgbouncer.log" "$RESULTS/" 2>/dev/null
    [[ -f $WORK/pgbouncer125.log ]] && cp "$WORK/pgbouncer125.log" "$RESULTS/" 2>/dev/null
    [[ -f $WORK/odyssey.log ]] && cp "$WORK/odyssey.log" "$RESULTS/" 2>/dev/null
    [[ -f $WORK/pgrelay.log ]] && cp "$WORK/pgrelay.log" "$RESULTS/" 2>/dev/null
    [[ -f $WORK/baseline.log ]] && cp "$WORK/baseline.log" "$RESULTS/" 2>/dev/null
    [[ -f $WORK/haproxy.out ]] && cp "$WORK/haproxy.out" "$RESULTS/" 2>/dev/null
    [[ -f $WORK/postgres.log ]] && cp "$WORK/postgres.log" "$RESULTS/" 2>/dev/null
    for f in "$WORK"/tls-*.log; do # pgrelay / baseline logs of the TLS modes
        [[ -f $f ]] && cp "$f" "$RESULTS/" 2>/dev/null
    done
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------------------------
USED_PORTS=" "

port_in_use() {
    if command -v ss >/dev/null 2>&1; then
        [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]] && return 0
    fi
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

FREE_PORT=
free_port() { # sets FREE_PORT to an unused loopback port (never the same twice in one run)
    local port i
    for ((i = 0; i < 500; i++)); do
        port=$((20000 + (RANDOM % 12000)))
        [[ $USED_PORTS == *" $port "* ]] && continue
        port_in_use "$port" && continue
        USED_PORTS+="$port "
        FREE_PORT=$port
        return 0
    done
    die "no free port found"
}

wait_for_port() { # wait_for_port <port> <timeout-s> [pid-that-must-stay-alive]
    local port=$1 deadline=$((SECONDS + $2)) pid=${3:-}
    while ((SECONDS < deadline)); do
        if (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; then
            return 0
        fi
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.2
    done
    return 1
}

check_sql() { # check_sql <port> [target]: a real login + query through a target
    PGPASSWORD=$BENCH_PASSWORD PGSSLMODE=$(client_sslmode "${2:-direct}") \
        timeout 30 "$PG_BINDIR/psql" -X -q -At -h "$HOST" -p "$1" \
        -U "$BENCH_USER" -d "$BENCH_DB" -c 'select 1' 2>&1
}

# ---------------------------------------------------------------------------------------------
# TLS: one throw-away CA and server certificate, used by PostgreSQL, PgBouncer and pgrelay alike
# ---------------------------------------------------------------------------------------------
TLS_MODE=off # the mode being measured: off, client or both
P=           # its prefix of result file names: empty for off, else tls-<mode>-
TLS_DIR=$WORK/tls
TLS_KEY_FILE=$TLS_DIR/server.key
TLS_CERT_FILE=$TLS_DIR/server.crt

client_sslmode() { # client_sslmode <target>: libpq's sslmode towards a target in the current mode
    case $TLS_MODE in
        off) printf '%s' "$PGSSLMODE" ;;
        client) if [[ $1 == direct ]]; then printf 'disable'; else printf 'require'; fi ;;
        both) printf 'require' ;;
    esac
}

server_sslmode() { # the proxies' server_tls_sslmode in the current mode
    if [[ $TLS_MODE == both ]]; then printf 'require'; else printf 'disable'; fi
}

tls_note() { # for the start-up log lines: ", TLS ..." in the TLS modes
    [[ $TLS_MODE == off ]] || printf ', TLS %s (client_tls_sslmode=require, server_tls_sslmode=%s)' \
        "$TLS_MODE" "$(server_sslmode)"
}

make_tls_files() { # a CA and a server certificate for $HOST and localhost, signed by it
    local -a alg=(-algorithm EC -pkeyopt ec_paramgen_curve:P-256)
    [[ $TLS_KEY == rsa ]] && alg=(-algorithm RSA -pkeyopt rsa_keygen_bits:2048)
    mkdir -p "$TLS_DIR"
    # genpkey writes unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY"), the only key format pgrelay reads.
    if ! (
        set -e
        cd "$TLS_DIR"
        openssl genpkey "${alg[@]}" -out ca.key
        openssl req -x509 -new -key ca.key -sha256 -days 7 -subj '/CN=pgrelay benchmark CA' -out ca.crt
        openssl genpkey "${alg[@]}" -out server.key
        openssl req -new -key server.key -subj "/CN=$HOST" -out server.csr
        printf '%s\n' "subjectAltName = IP:$HOST, DNS:localhost" 'basicConstraints = CA:FALSE' \
            'keyUsage = critical, digitalSignature, keyEncipherment' 'extendedKeyUsage = serverAuth' >server.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 -sha256 \
            -extfile server.ext -out server.crt
    ) >"$WORK/openssl.log" 2>&1; then
        cat "$WORK/openssl.log" >&2
        die "openssl could not make the test certificates"
    fi
    grep -q 'BEGIN PRIVATE KEY' "$TLS_KEY_FILE" || die "$TLS_KEY_FILE is not PKCS#8 PEM"
    # PostgreSQL wants its key private to its OS user; PgBouncer runs as that user too.
    chmod 600 "$TLS_DIR"/*.key
    if ((${#AS_PG[@]})); then
        chown -R "$PG_OS_USER": "$TLS_DIR"
    fi
    cp "$TLS_DIR/ca.crt" "$TLS_CERT_FILE" "$RESULTS/"
    log "TLS: throw-away CA and server certificate ($TLS_KEY, $(openssl x509 -in "$TLS_CERT_FILE" -noout -ext subjectAltName | tail -n1 | sed 's/^ *//')) in $TLS_DIR"
}

if ((TLS_USED)); then
    make_tls_files
fi

# ---------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------
free_port
PG_PORT=$FREE_PORT
log "PostgreSQL: initdb in $PGDATA_DIR, port $PG_PORT (as $PG_OS_USER)"
"${AS_PG[@]}" "$PG_BINDIR/initdb" -D "$PGDATA_DIR" -U postgres --auth-local=trust \
    --auth-host=scram-sha-256 -E UTF8 --locale=C --no-sync >"$WORK/initdb.log" 2>&1 ||
    { cat "$WORK/initdb.log" >&2; die "initdb failed"; }

cat >"$WORK/bench.conf" <<EOF
# pgrelay benchmark overrides (fast, NOT durable)
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = '$SOCK_DIR'
max_connections = $PG_MAX_CONNECTIONS
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 256MB
wal_level = replica
max_wal_senders = 10
password_encryption = 'scram-sha-256'
log_line_prefix = '%m [%p] %q%u@%d '
EOF
# TLS to PostgreSQL is only in mode both; otherwise it stays as it was, without ssl.
if [[ " ${TLS_MODES[*]} " == *" both "* ]]; then
    cat >>"$WORK/bench.conf" <<EOF
ssl = on
ssl_cert_file = '$TLS_CERT_FILE'
ssl_key_file = '$TLS_KEY_FILE'
EOF
fi
cat "$WORK/bench.conf" >>"$PGDATA_DIR/postgresql.conf"
cat >"$PGDATA_DIR/pg_hba.conf" <<EOF
local   all   all                  trust
host    all   all   $HOST/32   scram-sha-256
EOF
if ((${#AS_PG[@]})); then
    chown "$PG_OS_USER": "$PGDATA_DIR/pg_hba.conf"
fi
cp "$WORK/bench.conf" "$RESULTS/postgresql-overrides.conf"

"${AS_PG[@]}" "$PG_BINDIR/pg_ctl" -D "$PGDATA_DIR" -l "$WORK/postgres.log" -w -t "$START_TIMEOUT" start \
    >/dev/null 2>&1 || { tail -n 30 "$WORK/postgres.log" >&2 || true; die "PostgreSQL did not start"; }
PG_STARTED=1
"$PG_BINDIR/pg_isready" -q -h "$HOST" -p "$PG_PORT" -t "$START_TIMEOUT" || die "PostgreSQL not ready"

"${AS_PG[@]}" "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK_DIR" -p "$PG_PORT" -U postgres -d postgres \
    >/dev/null <<EOF
CREATE ROLE $BENCH_USER LOGIN PASSWORD '$BENCH_PASSWORD';
CREATE DATABASE $BENCH_DB OWNER $BENCH_USER;
EOF

log "pgbench -i -s $SCALE"
PGPASSWORD=$BENCH_PASSWORD "$PG_BINDIR/pgbench" -i -q -s "$SCALE" -h "$HOST" -p "$PG_PORT" -U "$BENCH_USER" \
    "$BENCH_DB" >"$RESULTS/pgbench-init.txt" 2>&1 || { tail -n 20 "$RESULTS/pgbench-init.txt" >&2; die "pgbench -i failed"; }

printf '"%s" "%s"\n' "$BENCH_USER" "$BENCH_PASSWORD" >"$WORK/userlist.txt"
chmod 600 "$WORK/userlist.txt"
if ((${#AS_PG[@]})); then
    chown "$PG_OS_USER": "$WORK/userlist.txt"
fi

declare -A PORT=()
declare -A VERSION=() # pgbouncer / pgbouncer125 / odyssey -> the first line of its --version
PORT[direct]=$PG_PORT

# ---------------------------------------------------------------------------------------------
# PgBouncer: pgbouncer (Debian's 1.18) and pgbouncer125 (built from source), the same ini
# ---------------------------------------------------------------------------------------------
# start_pgbouncer <pgbouncer|pgbouncer125>: its own ini, pidfile, log and port
start_pgbouncer() {
    local target=${1:-pgbouncer} bin pidfile
    if [[ $target == pgbouncer125 ]]; then
        bin=$PGBOUNCER125 pidfile=$PGBOUNCER125_PIDFILE
    else
        bin=$PGBOUNCER pidfile=$PGBOUNCER_PIDFILE
    fi
    if [[ ! -x $bin ]]; then
        if [[ $target == pgbouncer125 ]]; then
            SKIP_REASON[$target]="$bin not found (build it: benchmarks/build-pgbouncer.sh GIT_DIR; or set PGBOUNCER125)"
        else
            SKIP_REASON[$target]="$bin not found"
        fi
        return 1
    fi
    local port out ini=$WORK/$target.ini logfile=$WORK/$target.log
    free_port
    port=$FREE_PORT
    cat >"$ini" <<EOF
[databases]
$BENCH_DB = host=$HOST port=$PG_PORT dbname=$BENCH_DB

[pgbouncer]
listen_addr = $HOST
listen_port = $port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $WORK/userlist.txt
pool_mode = transaction
default_pool_size = $POOL_SIZE
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = $MAX_CLIENT_CONN
max_db_connections = 0
ignore_startup_parameters = extra_float_digits
server_tls_sslmode = $(server_sslmode)
log_connections = 0
log_disconnections = 0
logfile = $logfile
pidfile = $pidfile
EOF
    if [[ $target == pgbouncer125 ]]; then
        # 1.21+ maps protocol-level named prepared statements in transaction mode (1.22+ defaults
        # to 200; set here so the saved ini shows it).
        printf 'max_prepared_statements = 200\n' >>"$ini"
    fi
    if [[ $TLS_MODE != off ]]; then
        cat >>"$ini" <<EOF
client_tls_sslmode = require
client_tls_key_file = $TLS_KEY_FILE
client_tls_cert_file = $TLS_CERT_FILE
EOF
    fi
    if ((${#AS_PG[@]})); then
        chown "$PG_OS_USER": "$ini"
    fi
    cp "$ini" "$RESULTS/${P}$target.ini"
    VERSION[$target]=$("$bin" --version | head -n1)
    log "$target: ${VERSION[$target]} ($bin), port $port, pool_size $POOL_SIZE, transaction mode$([[ $target == pgbouncer125 ]] && printf ', max_prepared_statements 200')$(tls_note)"
    if ! out=$("${AS_PG[@]}" "$bin" -d -q "$ini" 2>&1); then
        SKIP_REASON[$target]="$target failed to start: $out $(tail -n 5 "$logfile" 2>/dev/null)"
        return 1
    fi
    if ! wait_for_port "$port" "$START_TIMEOUT"; then
        SKIP_REASON[$target]="$target not listening on $port after ${START_TIMEOUT}s: $(tail -n 5 "$logfile" 2>/dev/null)"
        stop_pidfile "$pidfile" QUIT
        return 1
    fi
    if ! out=$(check_sql "$port" "$target"); then
        SKIP_REASON[$target]="login through $target failed: $out"
        stop_pidfile "$pidfile" QUIT
        return 1
    fi
    local pid
    pid=$(<"$pidfile")
    log "$target pid $pid, open-files limit $(awk '/Max open files/ {print $4}' "/proc/$pid/limits" 2>/dev/null || echo '?')"
    PORT[$target]=$port
}

# ---------------------------------------------------------------------------------------------
# Odyssey (built from source: benchmarks/build-odyssey.sh)
# ---------------------------------------------------------------------------------------------
start_odyssey() {
    if [[ ! -x $ODYSSEY ]]; then
        SKIP_REASON[odyssey]="$ODYSSEY not found (build it: benchmarks/build-odyssey.sh GIT_DIR; or set ODYSSEY)"
        return 1
    fi
    local port out conf=$WORK/odyssey.conf logfile=$WORK/odyssey.log listen_tls=disable
    free_port
    port=$FREE_PORT
    [[ $TLS_MODE != off ]] && listen_tls=require
    mkdir -p "$WORK/odyssey-locks"
    cat >"$conf" <<EOF
# Odyssey for pgbench-compare.sh: transaction pooling, pool size and logins as PgBouncer's
daemonize yes
pid_file "$ODYSSEY_PIDFILE"
log_file "$logfile"
log_to_stdout no
log_format "%p %t %l [%i %s] (%c) %m\n"
log_config yes
log_session no
log_query no
log_stats no
log_debug no
# worker threads: pgrelay's default number of event loops (half the cores, at least one)
workers $ODYSSEY_WORKERS
resolvers 1
client_max $MAX_CLIENT_CONN
nodelay yes
enable_online_restart no
locks_dir "$WORK/odyssey-locks"
graceful_shutdown_timeout_ms 1000

listen {
    host "$HOST"
    port $port
    # PgBouncer's listen_backlog default
    backlog 128
    tls "$listen_tls"
EOF
    if [[ $TLS_MODE != off ]]; then
        cat >>"$conf" <<EOF
    tls_cert_file "$TLS_CERT_FILE"
    tls_key_file "$TLS_KEY_FILE"
EOF
    fi
    cat >>"$conf" <<EOF
}

storage "postgres" {
    type "remote"
    host "$HOST"
    port $PG_PORT
    tls "$(server_sslmode)"
}

database "$BENCH_DB" {
    user "$BENCH_USER" {
        # the plain-text secret PgBouncer reads from the userlist: SCRAM towards the client, and
        # storage_password for Odyssey's own SCRAM login to PostgreSQL
        authentication "scram-sha-256"
        password "$BENCH_PASSWORD"
        storage "postgres"
        storage_password "$BENCH_PASSWORD"
        pool "transaction"
        pool_size $POOL_SIZE
        pool_timeout 0
        pool_ttl 0
        # no reset query between transactions (PgBouncer runs none in transaction mode)
        pool_discard no
        pool_smart_discard no
        pool_cancel yes
        pool_rollback yes
        # protocol-level prepared statements mapped across server connections (pgbench -M prepared)
        pool_reserve_prepared_statement yes
        client_fwd_error yes
        log_debug no
    }
}
EOF
    if ((${#AS_PG[@]})); then
        chown -R "$PG_OS_USER": "$conf" "$WORK/odyssey-locks"
    fi
    cp "$conf" "$RESULTS/${P}odyssey.conf"
    VERSION[odyssey]=$("$ODYSSEY" --version 2>/dev/null | head -n1)
    log "odyssey: ${VERSION[odyssey]} ($ODYSSEY), port $port, pool_size $POOL_SIZE, transaction mode, workers $ODYSSEY_WORKERS, pool_reserve_prepared_statement yes$(tls_note)"
    if ! out=$("${AS_PG[@]}" "$ODYSSEY" "$conf" 2>&1); then
        SKIP_REASON[odyssey]="odyssey failed to start: $(tr '\n' ' ' <<<"$out") $(tail -n 5 "$logfile" 2>/dev/null | tr '\n' ' ')"
        stop_odyssey
        return 1
    fi
    if ! wait_for_port "$port" "$START_TIMEOUT"; then
        SKIP_REASON[odyssey]="odyssey not listening on $port after ${START_TIMEOUT}s: $(tail -n 5 "$logfile" 2>/dev/null | tr '\n' ' ')"
        stop_odyssey
        return 1
    fi
    if ! out=$(check_sql "$port" odyssey); then
        SKIP_REASON[odyssey]="login through odyssey failed: $(tr '\n' ' ' <<<"$out")"
        stop_odyssey
        return 1
    fi
    local pid
    pid=$(pidfile_pid "$ODYSSEY_PIDFILE")
    log "odyssey pid ${pid:-?}, threads $(awk '/^Threads:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo '?'), open-files limit $(awk '/Max open files/ {print $4}' "/proc/$pid/limits" 2>/dev/null || echo '?')"
    PORT[odyssey]=$port
}

# ---------------------------------------------------------------------------------------------
# pgrelay
# ---------------------------------------------------------------------------------------------
# start_pgrelay <target> <jar>: target pgrelay (the jar --build makes) or baseline (another build,
# started the same way on its own ports).
start_pgrelay() {
    local target=$1 jar=$2
    if [[ $target == baseline && -z $jar ]]; then
        SKIP_REASON[baseline]="no baseline jar given (--baseline-jar PATH or BASELINE_JAR=PATH)"
        return 1
    fi
    if [[ ! -f $jar ]]; then
        if ((BUILD)) && [[ $target == pgrelay ]]; then
            log "building pgrelay: mvn -B -q -DskipTests package"
            if ! (cd "$REPO_ROOT" && mvn -B -q -DskipTests package) >"$RESULTS/pgrelay-build.log" 2>&1; then
                SKIP_REASON[pgrelay]="build failed (see $RESULTS/pgrelay-build.log): $(tail -n 3 "$RESULTS/pgrelay-build.log" | tr '\n' ' ')"
                return 1
            fi
        fi
        if [[ ! -f $jar ]]; then
            if [[ $target == pgrelay ]]; then
                SKIP_REASON[pgrelay]="$jar missing (pass --build to build it)"
            else
                SKIP_REASON[baseline]="baseline jar $jar not found"
            fi
            return 1
        fi
    fi
    if ! command -v "${BASELINE_JAVA:-$JAVA}" >/dev/null 2>&1 || ! command -v "$JAVA" >/dev/null 2>&1; then
        SKIP_REASON[$target]="java ('$JAVA' / '${BASELINE_JAVA:-$JAVA}') not found"
        return 1
    fi
    local write_port read_port out pid
    free_port
    write_port=$FREE_PORT
    free_port
    read_port=$FREE_PORT
    # Started the way users start it: bin/pgrelay (conf/jvm.options, then JAVA_OPTS; the JVM
    # replaces the script, so $! is the JVM's pid), with the benchmark's settings as -D overrides.
    local opts="$JAVA_OPTS -Dpgrelay.listen.write_port=$write_port -Dpgrelay.listen.read_port=$read_port"
    opts+=" -Dpgrelay.listen.host=$HOST -Dpgrelay.backends.primary=$HOST:$PG_PORT"
    opts+=" -Dpgrelay.auth.auth_file=$WORK/userlist.txt -Dpgrelay.pool.default_pool_size=$POOL_SIZE"
    opts+=" -Dpgrelay.pool.max_client_conn=$MAX_CLIENT_CONN -Dpgrelay.admin.http_port=0"
    if ((TLS_USED)); then # every mode explicit, even off (server_tls_sslmode defaults to prefer)
        if [[ $TLS_MODE == off ]]; then
            opts+=" -Dpgrelay.tls.client_tls_sslmode=disable"
        else
            opts+=" -Dpgrelay.tls.client_tls_sslmode=require -Dpgrelay.tls.client_tls_key_file=$TLS_KEY_FILE"
            opts+=" -Dpgrelay.tls.client_tls_cert_file=$TLS_CERT_FILE"
        fi
        opts+=" -Dpgrelay.tls.server_tls_sslmode=$(server_sslmode)"
    fi
    local java=$JAVA
    if [[ $target == baseline ]]; then
        opts+=" $BASELINE_OPTS"
        java=${BASELINE_JAVA:-$JAVA}
    fi
    local -a cmd=(env "JAVA=$java" "PGRELAY_JAR=$jar" "PGRELAY_JVM_OPTIONS=$JVM_OPTIONS_FILE"
        "JAVA_OPTS=$opts" "$REPO_ROOT/bin/pgrelay")
    local logfile=$WORK/$P$target.log
    printf '%q ' "${cmd[@]}" >"$RESULTS/$P$target-command.txt"
    echo >>"$RESULTS/$P$target-command.txt"
    log "$target: $jar, write port $write_port, read port $read_port, pool_size $POOL_SIZE$(tls_note)"
    "${cmd[@]}" >"$logfile" 2>&1 </dev/null &
    pid=$!
    RELAY_PID[$target]=$pid
    if ! wait_for_port "$write_port" "$START_TIMEOUT" "$pid"; then
        local why="not listening on $write_port after ${START_TIMEOUT}s"
        if ! kill -0 "$pid" 2>/dev/null; then
            local code=0
            wait "$pid" 2>/dev/null || code=$?
            why="exited with code $code before listening on $write_port"
            RELAY_PID[$target]=
        fi
        SKIP_REASON[$target]="$target $why; log tail: $(tail -n 5 "$logfile" 2>/dev/null | tr '\n' ' ')"
        stop_pgrelay "$target"
        return 1
    fi
    if ! out=$(check_sql "$write_port" "$target"); then
        SKIP_REASON[$target]="login through $target failed: $(tr '\n' ' ' <<<"$out")"
        stop_pgrelay "$target"
        return 1
    fi
    PORT[$target]=$write_port
    if [[ $TLS_MODE != off ]]; then
        TLS_ENGINE[$target]=$(grep -m1 -o 'TLS engine: .*' "$logfile" || true)
        log "$target ${TLS_ENGINE[$target]:-(no \"TLS engine\" line in its log)}"
    fi
}

# ---------------------------------------------------------------------------------------------
# HAProxy (TCP mode) in front of PgBouncer
# ---------------------------------------------------------------------------------------------
start_haproxy() {
    if [[ ! -x $HAPROXY ]]; then
        SKIP_REASON[haproxy]="$HAPROXY not found (apt-get install haproxy)"
        return 1
    fi
    if [[ -z ${PORT[pgbouncer]:-} ]]; then
        SKIP_REASON[haproxy]="it forwards to PgBouncer, which is not running: ${SKIP_REASON[pgbouncer]:-?}"
        return 1
    fi
    local port out hmax
    free_port
    port=$FREE_PORT
    # HAProxy refuses to start when maxconn needs more fds (two per connection) than it may open;
    # it only serves the pgbench points (at most 1000 clients), not the idle test.
    hmax=$((MAX_CLIENT_CONN + 100))
    if [[ $(ulimit -n) != unlimited ]] && ((hmax > ($(ulimit -n) - 200) / 2)); then
        hmax=$((($(ulimit -n) - 200) / 2))
    fi
    cat >"$WORK/haproxy.cfg" <<EOF
# HAProxy -> PgBouncer in TCP mode (the setup pgrelay replaces)
global
    maxconn $hmax

defaults
    mode tcp
    timeout connect 5s
    # generous: idle pgbench clients (e.g. while 1000 others log in) must not be cut
    timeout client 1h
    timeout server 1h
    timeout check 5s

frontend pgsql
    bind $HOST:$port
    maxconn $((hmax - 100))
    default_backend pgbouncer

backend pgbouncer
    balance first
    server pgbouncer $HOST:${PORT[pgbouncer]} check inter 2s
EOF
    if ((${#AS_PG[@]})); then
        chown "$PG_OS_USER": "$WORK/haproxy.cfg"
    fi
    cp "$WORK/haproxy.cfg" "$RESULTS/haproxy.cfg"
    if ! out=$("$HAPROXY" -c -q -f "$WORK/haproxy.cfg" 2>&1); then
        SKIP_REASON[haproxy]="haproxy -c rejects the config: $(tr '\n' ' ' <<<"$out")"
        return 1
    fi
    HAPROXY_VERSION=$("$HAPROXY" -v 2>/dev/null | awk 'NR == 1 {print $1, $3; exit}')
    log "HAProxy: $HAPROXY_VERSION, port $port, mode tcp -> PgBouncer port ${PORT[pgbouncer]}"
    if ! "${AS_PG[@]}" "$HAPROXY" -D -f "$WORK/haproxy.cfg" -p "$HAPROXY_PIDFILE" >"$WORK/haproxy.out" 2>&1; then
        SKIP_REASON[haproxy]="haproxy failed to start: $(tail -n 5 "$WORK/haproxy.out" 2>/dev/null | tr '\n' ' ')"
        stop_haproxy
        return 1
    fi
    if ! wait_for_port "$port" "$START_TIMEOUT"; then
        SKIP_REASON[haproxy]="haproxy not listening on $port after ${START_TIMEOUT}s: $(tail -n 5 "$WORK/haproxy.out" 2>/dev/null | tr '\n' ' ')"
        stop_haproxy
        return 1
    fi
    if ! out=$(check_sql "$port" haproxy); then
        SKIP_REASON[haproxy]="login through haproxy -> pgbouncer failed: $(tr '\n' ' ' <<<"$out")"
        stop_haproxy
        return 1
    fi
    log "HAProxy pid $(pidfile_pid "$HAPROXY_PIDFILE")"
    PORT[haproxy]=$port
}

pidfile_pid() { # the pid in a pidfile, or nothing
    local pid=
    [[ -s $1 ]] && pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] && printf '%s' "$pid"
    return 0
}

HAPROXY_VERSION=
ACTIVE=()
start_targets() { # starts the proxies for the current TLS mode; sets ACTIVE
    SKIP_REASON=()
    # PgBouncer also runs when only haproxy (which forwards to it) is a target.
    if has_target pgbouncer || has_target haproxy; then
        start_pgbouncer pgbouncer || log "SKIP pgbouncer: ${SKIP_REASON[pgbouncer]}"
    fi
    if has_target pgbouncer125; then
        start_pgbouncer pgbouncer125 || log "SKIP pgbouncer125: ${SKIP_REASON[pgbouncer125]}"
    fi
    if has_target odyssey; then
        start_odyssey || log "SKIP odyssey: ${SKIP_REASON[odyssey]}"
    fi
    if has_target pgrelay; then
        start_pgrelay pgrelay "$PGRELAY_JAR" || log "SKIP pgrelay: ${SKIP_REASON[pgrelay]}"
    fi
    if has_target baseline; then
        start_pgrelay baseline "$BASELINE_JAR" || log "SKIP baseline: ${SKIP_REASON[baseline]}"
    fi
    if has_target haproxy && ((${#POINTS[@]} > 0)); then
        start_haproxy || log "SKIP haproxy: ${SKIP_REASON[haproxy]}"
    fi
    ACTIVE=()
    local t
    for t in "${TARGETS[@]}"; do
        if [[ $t == direct || -n ${PORT[$t]:-} ]]; then
            ACTIVE+=("$t")
        fi
    done
}

stop_targets() { # stops the proxies (before the next TLS mode starts them with its settings)
    stop_haproxy
    stop_pgrelay pgrelay
    stop_pgrelay baseline
    stop_pgbouncer
    stop_pgbouncer125
    stop_odyssey
    PORT=([direct]=$PG_PORT)
    TLS_ENGINE=()
}

# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------
# Per run, keyed "target|protocol|clients|run".
declare -A R_TPS=() R_LAT=() R_P99=() R_FAILED=() R_STATUS=() R_CPU=() R_CPU2=() R_ABORTED=()
declare -A POINT_SKIPPED=() # "target|protocol|clients" -> 1 (direct above max_connections)
CLK_TCK=$(getconf CLK_TCK)
TXLOG_DIR=$WORK/txlog
mkdir -p "$TXLOG_DIR"
RUNS_CSV=

proxy_pid() { # the process whose CPU a target costs (empty for direct PostgreSQL)
    case $1 in
        pgbouncer) pidfile_pid "$PGBOUNCER_PIDFILE" ;;
        pgbouncer125) pidfile_pid "$PGBOUNCER125_PIDFILE" ;;
        odyssey) pidfile_pid "$ODYSSEY_PIDFILE" ;; # its worker threads included (/proc/PID/stat)
        pgrelay | baseline) printf '%s' "${RELAY_PID[$1]:-}" ;;
        haproxy) pidfile_pid "$HAPROXY_PIDFILE" ;;
    esac
    return 0
}

cpu_ticks() { # user+system clock ticks of a process so far (fields 14 and 15 of /proc/PID/stat)
    [[ -n $1 && -r /proc/$1/stat ]] || { printf '0'; return 0; }
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

cpu_per_1k() { # cpu_per_1k <ticks> <transactions>: CPU ms per 1,000 transactions
    awk -v t="$1" -v hz="$CLK_TCK" -v n="$2" 'BEGIN { printf "%.1f", t / hz * 1000 / n * 1000 }'
}

# txlog_stats <prefix>: "count mean_ms p50_ms p99_ms max_ms" over the successful transactions in
# pgbench's per-transaction logs <prefix>.<pid>[.<thread>] (field 3: latency in µs; failed or
# skipped transactions have a word there). p50/p99 are nearest-rank percentiles.
txlog_stats() {
    local -a files
    local n sum max k50 k99
    shopt -s nullglob
    files=("$1".*)
    shopt -u nullglob
    if ((${#files[@]} == 0)); then
        printf '0 - - - -\n'
        return 0
    fi
    read -r n sum max < <(awk '$3 ~ /^[0-9]+$/ { n++; s += $3; if ($3 + 0 > m) m = $3 + 0 }
        END { printf "%d %.0f %d\n", n, s, m }' "${files[@]}")
    if ((n == 0)); then
        printf '0 - - - -\n'
        return 0
    fi
    k50=$(((n * 50 + 99) / 100))
    k99=$(((n * 99 + 99) / 100))
    awk '$3 ~ /^[0-9]+$/ { print $3 }' "${files[@]}" | sort -n -S 64M -T "$TXLOG_DIR" |
        awk -v k50="$k50" -v k99="$k99" -v n="$n" -v s="$sum" -v m="$max" '
            NR == k50 { p50 = $1 } NR == k99 { p99 = $1 }
            END { printf "%d %.3f %.3f %.3f %.3f\n", n, s / n / 1000, p50 / 1000, p99 / 1000, m / 1000 }'
}

pgbench_mode_args() { # pgbench_mode_args <protocol>: -M <protocol>; connect: -M simple -C
    if [[ $1 == connect ]]; then printf -- '-M simple -C'; else printf -- '-M %s' "$1"; fi
}

run_one() { # run_one <target> <protocol> <clients> <run> <position in this run's order>
    local target=$1 proto=$2 clients=$3 run=$4 pos=$5 key="$1|$2|$3|$4"
    local jobs=1 file name prefix rc=0 slack run_secs
    if ((clients >= 1000)); then jobs=2; fi
    if ((jobs > clients)); then jobs=$clients; fi
    slack=${CONNECT_SLACK:-$((clients / 50))}
    run_secs=$((DURATION + slack))
    name=${P}${target}-${proto}-c${clients}-r${run}
    file=$RESULTS/$name.txt
    prefix=$TXLOG_DIR/$name
    local -a cmd=("$PG_BINDIR/pgbench" -n -S $(pgbench_mode_args "$proto") -c "$clients" -j "$jobs" -T "$run_secs"
        --log "--log-prefix=$prefix" -h "$HOST" -p "${PORT[$target]}" -U "$BENCH_USER" "$BENCH_DB")
    log "run $run/$RUNS #$pos: $target protocol=$proto clients=$clients jobs=$jobs -T ${run_secs}s (${DURATION}s + ${slack}s connect allowance)$([[ $TLS_MODE == off ]] || printf ', TLS %s, PGSSLMODE=%s' "$TLS_MODE" "$(client_sslmode "$target")")"
    {
        printf '# target=%s protocol=%s clients=%s jobs=%s run=%s position=%s\n# ' \
            "$target" "$proto" "$clients" "$jobs" "$run" "$pos"
        printf '%q ' "${cmd[@]}"
        printf '\n'
    } >"$file"
    local pid pid2='' ticks_before ticks2_before=0
    pid=$(proxy_pid "$target")
    [[ $target == haproxy ]] && pid2=$(proxy_pid pgbouncer)
    ticks_before=$(cpu_ticks "$pid")
    [[ -n $pid2 ]] && ticks2_before=$(cpu_ticks "$pid2")
    PGPASSWORD=$BENCH_PASSWORD PGSSLMODE=$(client_sslmode "$target") \
        timeout --kill-after=10 "$((run_secs + 180))" "${cmd[@]}" >>"$file" 2>&1 || rc=$?
    local ticks_used ticks2_used=0
    ticks_used=$(($(cpu_ticks "$pid") - ticks_before))
    [[ -n $pid2 ]] && ticks2_used=$(($(cpu_ticks "$pid2") - ticks2_before))
    printf '# exit code %s\n' "$rc" >>"$file"

    local tps failed processed window aborted
    tps=$(awk '/^tps = / && /excluding connections establishing/ {print $3; exit}' "$file")
    [[ -n $tps ]] || tps=$(awk '/^tps = / && !/including connections establishing/ {print $3; exit}' "$file")
    failed=$(awk '/^number of failed transactions:/ {print $5; exit}' "$file")
    processed=$(awk '/^number of transactions actually processed:/ {split($6, a, "/"); print a[1]; exit}' "$file")
    aborted=$(grep -c 'aborted in command' "$file" || true)
    window=$(awk -v n="${processed:-0}" -v t="${tps:-0}" 'BEGIN { if (t > 0) printf "%.1f", n / t; else print 0 }')
    printf '# measured window (processed / tps, connection phase excluded): %s s\n' "$window" >>"$file"

    local n mean p50 p99 max
    read -r n mean p50 p99 max < <(txlog_stats "$prefix")
    rm -f "$prefix".*
    printf '# txlog: %s successful transactions logged, latency mean %s ms, p50 %s ms, p99 %s ms, max %s ms\n' \
        "$n" "$mean" "$p50" "$p99" "$max" >>"$file"
    if [[ $mean == - ]]; then # no per-transaction log: fall back to pgbench's average
        mean=$(awk '/^latency average = / {print $4; exit}' "$file")
    fi
    R_TPS[$key]=$tps
    R_LAT[$key]=${mean:-}
    [[ $p99 != - ]] && R_P99[$key]=$p99
    R_FAILED[$key]=$failed
    R_ABORTED[$key]=$aborted
    # CPU the proxy process(es) used per 1,000 transactions (connection phase included), in ms.
    if [[ -n $pid && ${processed:-0} -gt 0 ]]; then
        R_CPU[$key]=$(cpu_per_1k "$ticks_used" "$processed")
        if [[ -n $pid2 ]]; then
            R_CPU2[$key]=$(cpu_per_1k "$((ticks_used + ticks2_used))" "$processed")
        fi
    fi
    if ((rc != 0)) || grep -q 'Run was aborted' "$file"; then
        R_STATUS[$key]="aborted (exit $rc)"
        log "  -> $target $proto c=$clients: aborted (exit $rc, $aborted clients aborted), tps=${tps:-n/a}; see $file"
        grep -m 2 -iE 'error|fatal|abort' "$file" | sed 's/^/     /' >&2 || true
    elif [[ -z $tps || ${processed:-0} == 0 ]]; then
        R_STATUS[$key]="no transactions within -T ${run_secs}s (connecting took longer; raise CONNECT_SLACK)"
        log "  -> $target $proto c=$clients: ${R_STATUS[$key]}; see $file"
    else
        R_STATUS[$key]=ok
        log "  -> tps=${tps} mean=${mean:-n/a} ms p99=${p99} ms failed=${failed:-n/a} cpu=${R_CPU[$key]:--} ms/1k tx (measured over ${window}s)"
    fi
    printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$proto" "$clients" "$run" "$pos" "$target" \
        "${R_STATUS[$key]%% *}" "${tps:-}" "${mean:-}" "$p50" "$p99" "$max" "$n" "${processed:-}" "${failed:-}" \
        "$aborted" "${R_CPU[$key]:-}" "${R_CPU2[$key]:-}" >>"$RUNS_CSV"
}

run_points() { # every point of the current TLS mode, RUNS times, the targets interleaved
    local target proto clients point est run i
    local -a order
    RUNS_CSV=$RESULTS/${P}runs.csv
    printf '%s\n' 'protocol,clients,run,position,target,status,tps,mean_ms,p50_ms,p99_ms,max_ms,logged_tx,processed_tx,failed_tx,aborted_clients,cpu_ms_per_1k_tx,cpu_with_pgbouncer_ms_per_1k_tx' >"$RUNS_CSV"
    ((${#POINTS[@]} > 0)) || return 0
    # JIT warm-up: pgrelay runs on a JVM that compiles its hot path during the first seconds; give
    # every target the same unrecorded run first so the table compares steady states.
    if ((WARMUP > 0)); then
        for target in "${ACTIVE[@]}"; do
            log "warm-up: $target, ${WARMUP}s per protocol (not recorded)"
            for proto in "${POINT_PROTOCOLS[@]}"; do
                # shellcheck disable=SC2046 # pgbench_mode_args: words on purpose
                PGPASSWORD=$BENCH_PASSWORD PGSSLMODE=$(client_sslmode "$target") "$PG_BINDIR/pgbench" -n -S \
                    $(pgbench_mode_args "$proto") -c 16 -j 1 -T "$WARMUP" \
                    -h "$HOST" -p "${PORT[$target]}" -U "$BENCH_USER" "$BENCH_DB" >/dev/null 2>&1 || true
            done
        done
    fi

    est=0
    for point in "${POINTS[@]}"; do
        clients=${point#*|}
        est=$((est + (DURATION + ${CONNECT_SLACK:-$((clients / 50))} + 1) * ${#ACTIVE[@]}))
    done
    log "pgbench$([[ $TLS_MODE == off ]] || printf ' (TLS %s)' "$TLS_MODE"): ${#POINTS[@]} points (protocol, clients) x $RUNS runs x ${#ACTIVE[@]} targets, about $((est * RUNS / 60 + 1)) min"

    for point in "${POINTS[@]}"; do
        proto=${point%|*} clients=${point#*|}
        order=()
        for target in "${ACTIVE[@]}"; do
            if [[ $target == direct ]] && ((clients > PG_MAX_CONNECTIONS - 10)); then
                POINT_SKIPPED["$target|$proto|$clients"]=1
                continue
            fi
            order+=("$target")
        done
        # Interleave: run r runs every target once, in the order rotated by r-1.
        for ((run = 1; run <= RUNS; run++)); do
            for ((i = 0; i < ${#order[@]}; i++)); do
                run_one "${order[(i + run - 1) % ${#order[@]}]}" "$proto" "$clients" "$run" "$((i + 1))"
            done
        done
    done
}

# ---------------------------------------------------------------------------------------------
# Idle connections: RSS per idle authenticated client, one proxy at a time
# ---------------------------------------------------------------------------------------------
declare -A IDLE_OK=() IDLE_BEFORE=() IDLE_WITH=() IDLE_CLOSED=() IDLE_HEAP_WITH=() IDLE_HEAP_CLOSED=() IDLE_NOTE=() IDLE_SECS=()
IDLE_DONE=()

rss_kb() { # VmRSS of a process in kB (0 if gone)
    local v
    v=$(awk '/^VmRSS:/ {print $2; exit}' "/proc/$1/status" 2>/dev/null || true)
    printf '%s' "${v:-0}"
}

stable_rss() { # a VmRSS reading (kB) once two samples 2 s apart agree within 1 % or 256 kB (<= ~30 s)
    local pid=$1 a b d i
    a=$(rss_kb "$pid")
    b=$a
    for ((i = 0; i < 15; i++)); do
        sleep 2
        b=$(rss_kb "$pid")
        d=$((b > a ? b - a : a - b))
        if ((d <= 256 || d * 100 <= a)); then
            break
        fi
        a=$b
    done
    printf '%s' "$b"
}

established() { # proxy-side established TCP connections on a listening port
    ss -Htn state established "( sport = :$1 )" 2>/dev/null | wc -l
}

JCMD=
if command -v "$JAVA" >/dev/null 2>&1; then
    JCMD=$(dirname "$(readlink -f "$(command -v "$JAVA")")")/jcmd
    [[ -x $JCMD ]] || JCMD=
fi

heap_live_kb() { # used Java heap right after a full GC (jcmd GC.run), kB; empty without jcmd
    [[ -n $JCMD ]] || return 0
    "$JCMD" "$1" GC.run >/dev/null 2>&1 || return 0
    "$JCMD" "$1" GC.heap_info 2>/dev/null | awk '/total [0-9]+K, used [0-9]+K/ {
            for (i = 1; i < NF; i++) if ($i == "used") { v = $(i + 1); sub(/K,?$/, "", v); s += v } }
        END { if (s) print s }' || true
}

idle_measure() { # idle_measure <target> <pid> <port>
    local target=$1 pid=$2 port=$3 n=$IDLE_CLIENTS
    local out=$RESULTS/idle-$target.txt fifo=$WORK/idle-$target.fifo
    local before with closed ok est deadline t0
    log "idle: $target (pid $pid, port $port): RSS before"
    before=$(stable_rss "$pid")
    log "idle: $target: opening $n connections ($IDLE_THREADS login threads, RSS before $((before / 1024)) MB)"
    mkfifo "$fifo"
    t0=$SECONDS
    "$JAVA" "$IDLE_CLIENT_SRC" "$HOST" "$port" "$BENCH_USER" "$BENCH_PASSWORD" "$BENCH_DB" "$n" "$IDLE_THREADS" \
        <"$fifo" >"$out" 2>&1 &
    IDLE_PID=$!
    exec {IDLE_FD}>"$fifo" # holds the client's stdin open; closing it makes the client disconnect
    deadline=$((SECONDS + 120 + n / 20)) # PgBouncer 1.18 logs in ~50 SCRAM clients/s here
    while ! grep -q '^ready ' "$out"; do
        if ! kill -0 "$IDLE_PID" 2>/dev/null || ((SECONDS > deadline)); then
            IDLE_NOTE[$target]="idle client did not finish logging in: $(tail -n 3 "$out" | tr '\n' ' ')"
            log "idle: $target: ${IDLE_NOTE[$target]}"
            stop_idle_client
            return 1
        fi
        sleep 1
    done
    IDLE_SECS[$target]=$((SECONDS - t0))
    ok=$(awk '/^ready / {print $2; exit}' "$out")
    if grep -q '^failed ' "$out"; then
        IDLE_NOTE[$target]=$(grep -m1 '^failed ' "$out")
        log "idle: $target: ${IDLE_NOTE[$target]}"
    fi
    deadline=$((SECONDS + 30))
    while (($(established "$port") < ok && SECONDS < deadline)); do
        sleep 1
    done
    est=$(established "$port")
    log "idle: $target: $ok logged in ($est established on the proxy's port) in ${IDLE_SECS[$target]}s; waiting for a stable RSS"
    with=$(stable_rss "$pid")
    if [[ $target == pgrelay || $target == baseline ]]; then
        IDLE_HEAP_WITH[$target]=$(heap_live_kb "$pid")
    fi
    stop_idle_client
    deadline=$((SECONDS + 60))
    while (($(established "$port") > 5 && SECONDS < deadline)); do
        sleep 1
    done
    closed=$(stable_rss "$pid")
    if [[ $target == pgrelay || $target == baseline ]]; then
        IDLE_HEAP_CLOSED[$target]=$(heap_live_kb "$pid")
    fi
    rm -f "$fifo"
    IDLE_OK[$target]=$ok
    IDLE_BEFORE[$target]=$before
    IDLE_WITH[$target]=$with
    IDLE_CLOSED[$target]=$closed
    IDLE_DONE+=("$target")
    log "idle: $target: RSS $((before / 1024)) MB -> $((with / 1024)) MB with $ok idle -> $((closed / 1024)) MB after closing;" \
        "$(awk -v a="$before" -v b="$with" -v n="$ok" 'BEGIN { if (n > 0) printf "%.2f", (b - a) / n; else print "-" }') kB per connection"
}

run_idle_test() { # with --idle-clients: each proxy in turn, the last TLS mode's (only off allows it)
    ((IDLE_CLIENTS > 0)) || return 0
    local t
    local -a idle_targets
    if [[ ! -f $IDLE_CLIENT_SRC ]]; then
        NOTES+=("idle test not run: $IDLE_CLIENT_SRC missing")
    elif ! command -v "$JAVA" >/dev/null 2>&1; then
        NOTES+=("idle test not run: java ('$JAVA') not found")
    else
        idle_targets=(pgrelay pgbouncer)
        has_target baseline && idle_targets=(pgrelay baseline pgbouncer)
        has_target pgbouncer125 && idle_targets+=(pgbouncer125)
        has_target odyssey && idle_targets+=(odyssey)
        for t in "${idle_targets[@]}"; do
            if [[ -z ${PORT[$t]:-} ]]; then
                IDLE_NOTE[$t]="not running${SKIP_REASON[$t]:+: ${SKIP_REASON[$t]}}"
                continue
            fi
            idle_measure "$t" "$(proxy_pid "$t")" "${PORT[$t]}" || true
        done
    fi
}

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
med3() { # med3 <numbers...>: "median min max" (median of an even count: mean of the middle two)
    (($# > 0)) || return 0
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
        END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; print m, a[1], a[NR] }'
}

# agg <target|protocol|clients>: aggregates its runs into A_* (medians over the ok runs; over the
# aborted runs that reported a tps when none was ok).
agg() {
    local key=$1 r k st use
    local -a tps=() lat=() p99=() cpu=() cpu2=()
    A_OK=0 A_AB=0 A_NOTX=0 A_FAILED=0 A_ABCLIENTS=0 A_N=0
    A_TPS='' A_TPS_MIN='' A_TPS_MAX='' A_LAT='' A_P99='' A_CPU='' A_CPU2=''
    for ((r = 1; r <= RUNS; r++)); do
        st=${R_STATUS[$key|$r]:-}
        case $st in
            ok) A_OK=$((A_OK + 1)) ;;
            aborted*) A_AB=$((A_AB + 1)) ;;
            no*) A_NOTX=$((A_NOTX + 1)) ;;
        esac
        [[ ${R_FAILED[$key|$r]:-} =~ ^[0-9]+$ ]] && A_FAILED=$((A_FAILED + R_FAILED[$key|$r]))
        [[ ${R_ABORTED[$key|$r]:-} =~ ^[0-9]+$ ]] && A_ABCLIENTS=$((A_ABCLIENTS + R_ABORTED[$key|$r]))
    done
    for ((r = 1; r <= RUNS; r++)); do
        k="$key|$r"
        st=${R_STATUS[$k]:-}
        use=0
        if ((A_OK > 0)); then
            [[ $st == ok ]] && use=1
        elif [[ $st == aborted* && -n ${R_TPS[$k]:-} ]]; then
            use=1
        fi
        ((use)) || continue
        A_N=$((A_N + 1))
        [[ -n ${R_TPS[$k]:-} ]] && tps+=("${R_TPS[$k]}")
        [[ -n ${R_LAT[$k]:-} ]] && lat+=("${R_LAT[$k]}")
        [[ -n ${R_P99[$k]:-} ]] && p99+=("${R_P99[$k]}")
        [[ -n ${R_CPU[$k]:-} ]] && cpu+=("${R_CPU[$k]}")
        [[ -n ${R_CPU2[$k]:-} ]] && cpu2+=("${R_CPU2[$k]}")
    done
    local _
    if ((${#tps[@]})); then read -r A_TPS A_TPS_MIN A_TPS_MAX < <(med3 "${tps[@]}"); fi
    if ((${#lat[@]})); then read -r A_LAT _ < <(med3 "${lat[@]}"); fi
    if ((${#p99[@]})); then read -r A_P99 _ < <(med3 "${p99[@]}"); fi
    if ((${#cpu[@]})); then read -r A_CPU _ < <(med3 "${cpu[@]}"); fi
    if ((${#cpu2[@]})); then read -r A_CPU2 _ < <(med3 "${cpu2[@]}"); fi
}

fmt() { # fmt <decimals> <value>: the number rounded, or "-" when empty
    if [[ -n $2 ]]; then printf '%.*f' "$1" "$2"; else printf -- '-'; fi
}

cell_tps() { # tps cell of the current A_* aggregate
    local target=${1%%|*}
    if [[ -n ${SKIP_REASON[$target]:-} ]]; then
        printf 'n/a'
    elif [[ -n ${POINT_SKIPPED[$1]:-} ]]; then
        printf 'skip'
    elif ((A_OK > 0)); then
        printf '%.0f' "$A_TPS"
        ((A_AB > 0)) && printf ' (%s/%s runs aborted)' "$A_AB" "$RUNS"
        return 0
    elif [[ -n $A_TPS ]]; then
        printf '%.0f (aborted)' "$A_TPS"
    elif ((A_NOTX > 0)); then
        printf '0 (no tx)'
    else
        printf 'ERR'
    fi
}

ratio() { # ratio <a> <b>: a/b to 2 decimals, "-" unless both are there
    awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a != "" && b + 0 > 0) printf "%.2f", a / b; else printf "-" }'
}

# mark <cell> <target or pair> <protocol>: the cell, with " †" when it is a prepared point of
# PgBouncer 1.18 (pgbouncer, or haproxy in front of it) or a ratio against it: 1.18 has no
# prepared-statement support in transaction mode, so that is not a comparison (see the footnote)
mark() {
    printf '%s' "$1"
    [[ $3 == prepared && $1 != - && $1 != n/a && $1 != skip ]] || return 0
    case /$2/ in
        */pgbouncer/* | */haproxy/*) printf ' †' ;;
    esac
    return 0
}

declare -A MED=() # median tps of every point with at least one ok run, for the ratios
RATIOS=()  # pgrelay/baseline (the two builds) when both ran, then the pairs of targets asked for
for pair in pgrelay/pgbouncer pgrelay/direct pgrelay/haproxy haproxy/pgbouncer haproxy/direct \
    pgrelay/pgbouncer125 pgrelay/odyssey; do
    if has_target "${pair%/*}" && has_target "${pair#*/}"; then
        RATIOS+=("$pair")
    fi
done

jar_id() { # jar_id <jar>: its modification time and the start of its sha256 (tells builds apart)
    local sum
    sum=$(sha256sum "$1" 2>/dev/null | cut -c1-12)
    printf '%s, sha256 %s' "$(date -u -r "$1" '+%Y-%m-%d %H:%M UTC' 2>/dev/null || echo '?')" "${sum:-?}"
}

first_error() { # first error line of a point's runs, for the footnotes
    local f
    for f in "$RESULTS/$1"-r*.txt; do
        [[ -f $f ]] || continue
        grep -m1 -E 'ERROR|FATAL|error:' "$f" | sed -e 's/^pgbench: error: //' -e 's/[|`]/ /g' | cut -c1-160 && return 0
    done
    return 0
}

tls_heading() { # the TLS mode in the section's heading (nothing without --tls)
    case $TLS_MODE in
        off) ((TLS_USED)) && printf ', no TLS (plain text everywhere)' ;;
        client) printf ', TLS client side (pgbench → proxy over TLS, proxy → PostgreSQL plain; direct plain)' ;;
        both) printf ', TLS both sides (pgbench → proxy → PostgreSQL over TLS; direct over TLS)' ;;
    esac
    return 0
}

target_label() { # a target's name in the tables; direct says when it runs without TLS in a TLS mode
    if [[ $1 == direct && $TLS_MODE == client ]]; then printf 'direct (no TLS)'; else printf '%s' "$1"; fi
}

tls_session() { # tls_session <port>: protocol, cipher and key exchange one openssl s_client handshake gets
    timeout 10 openssl s_client -starttls postgres -connect "$HOST:$1" </dev/null 2>/dev/null | awk '
        /^New, / { p = $2; sub(/,$/, "", p); c = $NF }
        /^Server Temp Key:/ { k = $0; sub(/^Server Temp Key: /, "", k); sub(/, [0-9]+ bits$/, "", k) }
        END { if (c != "") printf "%s %s%s", p, c, (k != "" ? " " k : "") }' || true
}

channel_binding() { # channel_binding <target>: "yes" when a login with channel_binding=require works
    if PGPASSWORD=$BENCH_PASSWORD PGSSLMODE=require PGCHANNELBINDING=require timeout 30 "$PG_BINDIR/psql" \
        -X -q -At -h "$HOST" -p "${PORT[$1]}" -U "$BENCH_USER" -d "$BENCH_DB" -c 'select 1' >/dev/null 2>&1; then
        printf 'yes'
    else
        printf 'no'
    fi
}

tls_footnotes() { # what the TLS modes configure, and what each target negotiated
    local t list='' cb=''
    printf -- '- TLS %s: one throw-away CA and server certificate (%s, SAN IP:%s and DNS:localhost; ca.crt and server.crt in the results) for every TLS endpoint. PgBouncer (1.18 and 1.25): client_tls_sslmode = require, client_tls_key_file, client_tls_cert_file, server_tls_sslmode = %s; pgrelay: the same as -Dpgrelay.tls.* settings; Odyssey: listen tls "require", tls_cert_file, tls_key_file, storage tls "%s"; ' \
        "$TLS_MODE" "$([[ $TLS_KEY == rsa ]] && printf 'RSA 2048' || printf 'EC P-256')" "$HOST" "$(server_sslmode)" "$(server_sslmode)"
    if [[ $TLS_MODE == both ]]; then
        printf 'PostgreSQL: ssl = on with the same files; pgbench: PGSSLMODE=require for every target.\n'
    else
        printf 'pgbench: PGSSLMODE=require towards the proxies, disable towards direct (plain text, no TLS in this mode).\n'
    fi
    for t in "${ACTIVE[@]}"; do
        [[ $(client_sslmode "$t") == require ]] || continue
        list+="${list:+; }$t $(tls_session "${PORT[$t]}")"
        cb+="${cb:+, }$t $(channel_binding "$t")"
    done
    printf -- '- negotiated (one openssl s_client -starttls postgres handshake each; protocol, cipher, key exchange): %s.\n' "$list"
    printf -- '- SCRAM-SHA-256-PLUS (channel binding, which libpq'"'"'s default channel_binding=prefer uses when the server offers it): %s.\n' "$cb"
    for t in pgrelay baseline; do
        [[ -n ${TLS_ENGINE[$t]:-} ]] && printf -- '- %s log: %s\n' "$t" "${TLS_ENGINE[$t]}"
    done
    return 0
}

peer_footnotes() { # what the PgBouncer and Odyssey targets ran, and what the prepared points compare
    local t list=''
    for t in pgbouncer pgbouncer125 odyssey; do
        [[ -n ${PORT[$t]:-} && -n ${VERSION[$t]:-} ]] && list+="${list:+; }$t: ${VERSION[$t]}"
    done
    [[ -n $list ]] && printf -- '- versions: %s.\n' "$list"
    if [[ -n ${PORT[pgbouncer125]:-} ]]; then
        printf -- '- pgbouncer125: %s, built from source (benchmarks/build-pgbouncer.sh), the same settings as pgbouncer (%spgbouncer125.ini) plus max_prepared_statements = 200.\n' \
            "$PGBOUNCER125" "$P"
    fi
    if [[ -n ${PORT[odyssey]:-} ]]; then
        printf -- '- odyssey: %s, built from source (benchmarks/build-odyssey.sh); %sodyssey.conf: pool "transaction", pool_size %s, workers %s, authentication "scram-sha-256" with the same password as the userlist (storage_password for its server logins), pool_reserve_prepared_statement yes, pool_discard no (no reset query between transactions, as PgBouncer in transaction mode), Odyssey'"'"'s defaults otherwise (e.g. pool_attach_check yes); its cpu column is the whole process (all its threads).\n' \
            "$ODYSSEY" "$P" "$POOL_SIZE" "$ODYSSEY_WORKERS"
    fi
    if [[ " ${PROTOCOLS[*]} " == *" prepared "* ]] && ((${#CLIENTS[@]} > 0)); then
        local peers=''
        for t in pgbouncer125 odyssey; do
            [[ -n ${PORT[$t]:-} ]] && peers+="${peers:+ and }$t"
        done
        printf -- '- prepared (pgbench -M prepared: protocol-level named prepared statements, each client prepares once and then sends Bind/Execute): comparable only between the proxies that carry prepared statements across server connections in transaction mode: pgrelay, pgbouncer125 (max_prepared_statements) and odyssey (pool_reserve_prepared_statement); %s.' \
            "$([[ -n $peers ]] && printf 'in this run: %s' "$peers" || printf 'neither of those two ran here (--help says how to build them)')"
        if has_target pgbouncer || has_target haproxy; then
            printf ' † PgBouncer 1.18 (pgbouncer, and haproxy, which forwards to it) cannot: with more than one client its prepared runs abort (prepared statement "P_0" already exists / does not exist), and with one client they can pass only because PgBouncer keeps handing that client the server connection it used last (server_round_robin = 0); its prepared cells and the ratios against it are not a comparison.'
        fi
        printf '\n'
    fi
    return 0
}

report_points() { # the tables of the current TLS mode's points and its footnotes, in markdown
    local proto clients point t pair key row header sep range failed runs_cell rb rd rl err with_baseline with_cpu2
    MED=()
    for point in "${POINTS[@]}"; do
        for t in "${ACTIVE[@]}"; do
            agg "$t|$point"
            ((A_OK > 0)) && MED[$t|$point]=$A_TPS
        done
    done
    with_baseline=0
    if [[ " ${ACTIVE[*]} " == *" pgrelay "* && " ${ACTIVE[*]} " == *" baseline "* ]]; then
        with_baseline=1
    fi
    RATIOS=()
    ((with_baseline)) && RATIOS+=(pgrelay/baseline)
    for pair in pgrelay/pgbouncer pgrelay/direct pgrelay/haproxy haproxy/pgbouncer haproxy/direct \
    pgrelay/pgbouncer125 pgrelay/odyssey; do
        if has_target "${pair%/*}" && has_target "${pair#*/}"; then
            RATIOS+=("$pair")
        fi
    done

    if ((${#POINTS[@]} > 0)); then
        printf '## pgbench -n -S%s, %s s x %s run(s) per point, scale %s, pool size %s, %s (%s cores)\n\n' \
            "$(tls_heading)" "$DURATION" "$RUNS" "$SCALE" "$POOL_SIZE" "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)"
        rot=()
        ((${#ACTIVE[@]} > 0)) && rot=("${ACTIVE[@]:1}" "${ACTIVE[0]}")
        printf 'Each point: %s run(s) of %s s per target, interleaved: run r runs every target once, in the order rotated by r-1 (run 1: %s; run 2: %s; ...). Medians over the runs.\n\n' \
            "$RUNS" "$DURATION" "$(IFS=,; printf '%s' "${ACTIVE[*]}")" "$(IFS=,; printf '%s' "${rot[*]}")"

        printf '### Throughput (median tps) and ratios\n\n'
        header='| protocol | clients |'
        sep='|---|---:|'
        for t in "${TARGETS[@]}"; do
            header+=" $(target_label "$t") |"
            sep+='---:|'
        done
        for pair in "${RATIOS[@]}"; do
            header+=" $pair |"
            sep+='---:|'
        done
        printf '%s\n%s\n' "$header" "$sep"
        for point in "${POINTS[@]}"; do
            proto=${point%|*} clients=${point#*|}
            row="| $proto | $clients |"
            for t in "${TARGETS[@]}"; do
                agg "$t|$proto|$clients"
                row+=" $(mark "$(cell_tps "$t|$proto|$clients")" "$t" "$proto") |"
            done
            for pair in "${RATIOS[@]}"; do
                row+=" $(mark "$(ratio "${MED[${pair%/*}|$proto|$clients]:-}" "${MED[${pair#*/}|$proto|$clients]:-}")" "$pair" "$proto") |"
            done
            printf '%s\n' "$row"
        done

        printf '\n### Per target\n\n'
        with_cpu2=0
        [[ " ${ACTIVE[*]} " == *" haproxy "* ]] && with_cpu2=1
        header='| protocol | clients | target | tps (median) | tps min–max | mean ms | p99 ms | failed | cpu ms/1k tx |'
        sep='|---|---:|---|---:|---:|---:|---:|---:|---:|'
        if ((with_cpu2)); then
            header+=' haproxy+pgbouncer cpu ms/1k tx |'
            sep+='---:|'
        fi
        header+=' runs ok | / pgbouncer | / direct |'
        sep+='---:|---:|---:|'
        if ((with_baseline)); then
            header+=' / baseline |'
            sep+='---:|'
        fi
        printf '%s\n%s\n' "$header" "$sep"
        for point in "${POINTS[@]}"; do
            proto=${point%|*} clients=${point#*|}
            for t in "${ACTIVE[@]}"; do
                key="$t|$proto|$clients"
                if [[ -n ${POINT_SKIPPED[$key]:-} ]]; then
                    row="| $proto | $clients | $(target_label "$t") | skip | - | - | - | - | - |"
                    ((with_cpu2)) && row+=' - |'
                    row+=' - | - | - |'
                    ((with_baseline)) && row+=' - |'
                    printf '%s\n' "$row"
                    continue
                fi
                agg "$key"
                range=-
                [[ -n $A_TPS_MIN ]] && range=$(printf '%.0f–%.0f' "$A_TPS_MIN" "$A_TPS_MAX")
                failed=$A_FAILED
                ((A_ABCLIENTS > 0)) && failed+=" (+$A_ABCLIENTS clients aborted)"
                row="| $proto | $clients | $(target_label "$t") | $(mark "$(cell_tps "$key")" "$t" "$proto") | $range | $(fmt 3 "$A_LAT") | $(fmt 3 "$A_P99") | $failed |"
                if [[ $t == direct ]]; then row+=' - |'; else row+=" $(fmt 1 "$A_CPU") |"; fi
                if ((with_cpu2)); then
                    if [[ $t == haproxy ]]; then row+=" $(fmt 1 "$A_CPU2") |"; else row+=' - |'; fi
                fi
                runs_cell="$A_OK/$RUNS"
                ((A_AB > 0)) && runs_cell+=" ($A_AB aborted)"
                ((A_NOTX > 0)) && runs_cell+=" ($A_NOTX no tx)"
                rb=-
                rd=-
                if [[ $t != pgbouncer ]]; then rb=$(mark "$(ratio "${MED[$key]:-}" "${MED[pgbouncer|$proto|$clients]:-}")" pgbouncer "$proto"); fi
                if [[ $t != direct ]]; then rd=$(ratio "${MED[$key]:-}" "${MED[direct|$proto|$clients]:-}"); fi
                row+=" $runs_cell | $rb | $rd |"
                if ((with_baseline)); then
                    rl=-
                    if [[ $t != baseline ]]; then rl=$(ratio "${MED[$key]:-}" "${MED[baseline|$proto|$clients]:-}"); fi
                    row+=" $rl |"
                fi
                printf '%s\n' "$row"
            done
        done
        printf '\n'
        printf -- '- %s run(s) per point and target, %s s measured each, targets interleaved (order rotated every run); tps = median of the runs'"'"' pgbench tps (without initial connection time), min–max over the same runs.\n' "$RUNS" "$DURATION"
        printf -- '- mean / p99 ms: per run, the mean and the nearest-rank 99th percentile of every successful transaction'"'"'s latency in pgbench --log (µs, all threads'"'"' files); the table shows the median of the per-run values. Each raw output ends with a "# txlog:" line; %sruns.csv has every run.\n' "$P"
        printf -- '- failed: pgbench'"'"'s failed transactions, summed over the runs; clients that pgbench aborted on an error are counted separately. A point whose runs all aborted shows the aborted runs'"'"' median tps marked "(aborted)"; otherwise medians use the ok runs only.\n'
        printf -- '- cpu ms/1k tx: user+system CPU of the proxy process during the run (connection phase included) per 1,000 transactions, median over runs; pgbench and PostgreSQL run on the same %s cores.\n' "$(nproc)"
        if ((with_cpu2)); then
            printf -- '- haproxy: %s, mode tcp, balance first, one server (PgBouncer above, same instance), default threads; its cpu column is HAProxy alone, the next one HAProxy + PgBouncer.\n' "${HAPROXY_VERSION:-HAProxy}"
        fi
        printf -- '- ratios: median tps of the row'"'"'s target (or the left one) over the other'"'"'s, where both have ok runs.\n'
        peer_footnotes
        if has_target baseline && [[ -n ${PORT[baseline]:-} ]]; then
            printf -- '- baseline: a second pgrelay, started like pgrelay (bin/pgrelay, same JVM options and settings, own ports) from %s (%s); pgrelay: %s (%s).\n' \
                "$BASELINE_JAR" "$(jar_id "$BASELINE_JAR")" "$PGRELAY_JAR" "$(jar_id "$PGRELAY_JAR")"
        fi
        if [[ -n ${CONNECT_SLACK:-} ]]; then
            printf -- '- each run: pgbench -T %s (DURATION %s + CONNECT_SLACK %s).\n' \
                "$((DURATION + CONNECT_SLACK))" "$DURATION" "$CONNECT_SLACK"
        else
            printf -- '- each run: pgbench -T DURATION + clients/50 s (connect allowance; 1000 clients: -T %s); -j 2 from 1000 clients, else -j 1.\n' \
                "$((DURATION + 20))"
        fi
        if has_target direct; then
            printf -- '- direct PostgreSQL has max_connections=%s and is skipped ("skip") above %s clients.\n' \
                "$PG_MAX_CONNECTIONS" "$((PG_MAX_CONNECTIONS - 10))"
        fi
        if ((${#CONNECT_CLIENTS[@]})); then
            printf -- '- connect: pgbench -n -S -M simple -C, a new connection per transaction (TCP connect, %sstartup, SCRAM-SHA-256 login, one SELECT, Terminate); its tps (pgbench'"'"'s, including reconnection times) is new connections per second, its cpu column CPU ms per 1,000 connections; mean / p99 ms time the SELECT only (pgbench logs the connection apart: "average connection time" in the raw outputs).\n' \
                "$([[ $TLS_MODE == off ]] || printf 'SSLRequest and TLS handshake, ')"
        fi
        [[ $TLS_MODE == off ]] || tls_footnotes
        for point in "${POINTS[@]}"; do
            proto=${point%|*} clients=${point#*|}
            for t in "${ACTIVE[@]}"; do
                agg "$t|$proto|$clients"
                if ((A_AB + A_NOTX > 0)); then
                    printf -- '- %s %s %s clients: %s of %s runs aborted, %s without transactions' \
                        "$t" "$proto" "$clients" "$A_AB" "$RUNS" "$A_NOTX"
                    err=$(first_error "$P$t-$proto-c$clients")
                    [[ -n $err ]] && printf ' (%s)' "$err"
                    printf ', see %s%s-%s-c%s-r*.txt\n' "$P" "$t" "$proto" "$clients"
                fi
            done
        done
    fi
    for t in "${TARGETS[@]}"; do
        if [[ -n ${SKIP_REASON[$t]:-} ]]; then
            printf -- '- %s not run (n/a): %s\n' "$t" "${SKIP_REASON[$t]}"
        fi
    done
}

# ---------------------------------------------------------------------------------------------
# Every TLS mode in turn: its proxies, its runs, its tables; then the idle test; then the summary
# ---------------------------------------------------------------------------------------------
SECTIONS=() # the report_points output of each mode
for ((m = 0; m < ${#TLS_MODES[@]}; m++)); do
    TLS_MODE=${TLS_MODES[m]}
    P=
    [[ $TLS_MODE == off ]] || P=tls-$TLS_MODE-
    if ((m > 0)); then
        log "TLS mode $TLS_MODE: restarting the proxies"
        stop_targets
    fi
    R_TPS=() R_LAT=() R_P99=() R_FAILED=() R_STATUS=() R_CPU=() R_CPU2=() R_ABORTED=() POINT_SKIPPED=()
    start_targets
    run_points
    report_points >"$WORK/section-$m.md"
    SECTIONS+=("$WORK/section-$m.md")
done
run_idle_test

{
    if ((${#POINTS[@]} == 0)); then
        printf '## pgrelay vs PgBouncer: idle client connections, %s (%s cores)\n' \
            "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)"
    fi
    for ((m = 0; m < ${#SECTIONS[@]}; m++)); do
        ((m == 0)) || printf '\n'
        cat "${SECTIONS[m]}"
    done
    for note in "${NOTES[@]}"; do
        printf -- '- %s\n' "$note"
    done

    if ((IDLE_CLIENTS > 0)); then
        printf '\n### %s idle client connections per proxy (SCRAM login, then idle), one proxy at a time\n\n' "$IDLE_CLIENTS"
        printf '| proxy | logged in | login time s | RSS before MB | RSS with idle MB | RSS growth MB | kB per connection | RSS after closing MB | live heap kB per connection |\n'
        printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|\n'
        for t in "${IDLE_DONE[@]}"; do
            b=${IDLE_BEFORE[$t]} w=${IDLE_WITH[$t]} c=${IDLE_CLOSED[$t]} n=${IDLE_OK[$t]}
            heap=-
            if [[ -n ${IDLE_HEAP_WITH[$t]:-} && -n ${IDLE_HEAP_CLOSED[$t]:-} ]] && ((n > 0)); then
                heap=$(awk -v a="${IDLE_HEAP_CLOSED[$t]}" -v b="${IDLE_HEAP_WITH[$t]}" -v n="$n" 'BEGIN { printf "%.2f", (b - a) / n }')
            fi
            awk -v t="$t" -v n="$n" -v N="$IDLE_CLIENTS" -v s="${IDLE_SECS[$t]}" -v b="$b" -v w="$w" -v c="$c" -v h="$heap" 'BEGIN {
                printf "| %s | %d/%d | %d | %.1f | %.1f | %.1f | %s | %.1f | %s |\n", t, n, N, s, b / 1024, w / 1024,
                    (w - b) / 1024, (n > 0 ? sprintf("%.2f", (w - b) / n) : "-"), c / 1024, h }'
        done
        printf '\n'
        printf -- '- connections opened by benchmarks/src/main/java/io/pgrelay/bench/IdleClients.java (%s threads; startup + SCRAM-SHA-256 as user %s, then no traffic); max_client_conn (Odyssey: client_max) %s on every proxy; while one proxy is measured the others are idle.\n' \
            "$IDLE_THREADS" "$BENCH_USER" "$MAX_CLIENT_CONN"
        printf -- '- RSS: VmRSS of the proxy process, each reading taken once two samples 2 s apart agree within 1 %% or 256 kB; kB per connection = (with idle - before) / logged in.%s\n' \
            "$( ((${#POINTS[@]} > 0)) && printf ' Measured after the pgbench runs, so pgrelay'"'"'s JVM heap had already grown to its working size.')"
        printf -- '- live heap (pgrelay): Java heap used right after a full GC (jcmd GC.run, then GC.heap_info) with the connections open minus after they closed, per connection; taken after the RSS readings.\n'
        for t in pgrelay baseline pgbouncer pgbouncer125 odyssey; do
            if [[ -n ${IDLE_NOTE[$t]:-} ]]; then
                printf -- '- %s: %s\n' "$t" "${IDLE_NOTE[$t]}"
            fi
        done
    fi
    printf -- '- raw outputs: %s\n' "${RESULTS#"$REPO_ROOT"/}"
} | tee "$RESULTS/summary.md"
