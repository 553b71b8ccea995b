#!/usr/bin/env bash
# pgbench-compare.sh — benchmark, on loopback, direct PostgreSQL vs PgBouncer vs pgrelay.
#
# One run creates a throw-away PostgreSQL 15 instance (fast, non-durable settings, scram auth,
# user "bench"), initialises it with `pgbench -i -s $SCALE`, starts PgBouncer and pgrelay in front of
# it with the same pool size (transaction pooling), runs the select-only pgbench workload
# (`pgbench -n -S`) for every (protocol, clients) combination against every target, and prints a
# markdown table. Raw pgbench outputs, configs and logs go to benchmarks/results/<timestamp>/
# (ignored by git). Everything else (processes, temp dirs) is cleaned up on exit.
#
# Usage:
#   benchmarks/pgbench-compare.sh [--targets direct,pgbouncer,pgrelay] [--prepared] [--build]
#                                 [--clients 1,16,64,1000] [--protocols simple,extended]
#
#   --targets LIST    comma-separated subset of direct,pgbouncer,pgrelay (default: all three)
#   --prepared        also run the `-M prepared` protocol (PgBouncer 1.18 in transaction mode
#                     does not support protocol-level prepared statements: expect failures there)
#   --protocols LIST  override the protocol list (simple,extended,prepared)
#   --clients LIST    override the client counts (default 1,16,64,1000)
#   --build           build proxy-core/target/pgrelay.jar (mvn -B -q -DskipTests package) if missing
#   -h, --help        this text
#
# Environment:
#   DURATION=10       seconds measured per pgbench run
#   WARMUP=5          seconds of unrecorded pgbench per target and protocol before the runs
#   CONNECT_SLACK     seconds added to -T for opening the connections (default: clients/50, i.e.
#                     20 s for 1000 clients). pgbench 15 starts the -T clock before its clients
#                     have connected, and 1000 SCRAM logins take several seconds on 2 cores, so
#                     without it a short run measures nothing. tps excludes the connection phase
#                     either way; set CONNECT_SLACK=0 for a plain `-T $DURATION`.
#   SCALE=10          pgbench scale factor for -i
#   POOL_SIZE=20      server pool size of PgBouncer and pgrelay
#   PG_BINDIR=/usr/lib/postgresql/15/bin   PostgreSQL programs (initdb, pg_ctl, psql, pgbench)
#   PGBOUNCER=/usr/sbin/pgbouncer          PgBouncer binary
#   JAVA=java  JAVA_OPTS=                  JVM used for pgrelay and extra JVM options
#   PGRELAY_JAR=<repo>/proxy-core/target/pgrelay.jar
#   PGSSLMODE=disable  (libpq clients; same for every target)
#
# When run as root, PostgreSQL and PgBouncer run as the `postgres` OS user (runuser).
# Ports are chosen by the script in 20000-31999 (below the kernel's ephemeral range, so the
# 1000 client connections never collide with a listener).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

DURATION=${DURATION:-10}
SCALE=${SCALE:-10}
POOL_SIZE=${POOL_SIZE:-20}
MAX_CLIENT_CONN=2000
PG_MAX_CONNECTIONS=300
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PGBOUNCER=${PGBOUNCER:-/usr/sbin/pgbouncer}
JAVA=${JAVA:-java}
JAVA_OPTS=${JAVA_OPTS:-}
PGRELAY_JAR=${PGRELAY_JAR:-$REPO_ROOT/proxy-core/target/pgrelay.jar}
[[ $PGRELAY_JAR == /* ]] || PGRELAY_JAR=$PWD/$PGRELAY_JAR
BENCH_USER=bench
BENCH_PASSWORD=benchpw
BENCH_DB=bench
HOST=127.0.0.1
START_TIMEOUT=30

TARGETS=(direct pgbouncer pgrelay)
PROTOCOLS=(simple extended)
CLIENTS=(1 16 64 1000)
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
        --targets) [[ $# -ge 2 ]] || die "--targets needs a value"; split_list TARGETS "$2"; shift 2 ;;
        --targets=*) split_list TARGETS "${1#*=}"; shift ;;
        --protocols) [[ $# -ge 2 ]] || die "--protocols needs a value"; split_list PROTOCOLS "$2"; shift 2 ;;
        --protocols=*) split_list PROTOCOLS "${1#*=}"; shift ;;
        --clients) [[ $# -ge 2 ]] || die "--clients needs a value"; split_list CLIENTS "$2"; shift 2 ;;
        --clients=*) split_list CLIENTS "${1#*=}"; shift ;;
        --prepared) WITH_PREPARED=1; shift ;;
        --build) BUILD=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

if ((WITH_PREPARED)) && [[ " ${PROTOCOLS[*]} " != *" prepared "* ]]; then
    PROTOCOLS+=(prepared)
fi
for t in "${TARGETS[@]}"; do
    case $t in direct | pgbouncer | pgrelay) ;; *) die "unknown target '$t' (direct, pgbouncer, pgrelay)" ;; esac
done
for p in "${PROTOCOLS[@]}"; do
    case $p in simple | extended | prepared) ;; *) die "unknown protocol '$p' (simple, extended, prepared)" ;; esac
done
for c in "${CLIENTS[@]}"; do
    [[ $c =~ ^[1-9][0-9]*$ ]] || die "bad client count '$c'"
done
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive integer (seconds), got '$DURATION'"
[[ $SCALE =~ ^[1-9][0-9]*$ ]] || die "SCALE must be a positive integer, got '$SCALE'"
[[ -z ${CONNECT_SLACK:-} || $CONNECT_SLACK =~ ^[0-9]+$ ]] || die "CONNECT_SLACK must be an integer (seconds)"
[[ $POOL_SIZE =~ ^[1-9][0-9]*$ ]] || die "POOL_SIZE must be a positive integer, got '$POOL_SIZE'"
for tool in initdb pg_ctl psql pgbench pg_isready; do
    [[ -x $PG_BINDIR/$tool ]] || die "$PG_BINDIR/$tool not found (set PG_BINDIR)"
done

has_target() { [[ " ${TARGETS[*]} " == *" $1 "* ]]; }

# ---------------------------------------------------------------------------------------------
# Environment: OS user for PostgreSQL/PgBouncer, fd limit, libpq variables
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

# 1000 clients need >1000 fds in pgbench and ~2x that in the proxies.
WANT_FDS=65536
HARD_FDS=$(ulimit -Hn)
if [[ $HARD_FDS == unlimited ]] || ((HARD_FDS >= WANT_FDS)); then
    ulimit -n "$WANT_FDS"
else
    ulimit -n "$HARD_FDS"
fi
if (($(ulimit -n) < 2 * MAX_CLIENT_CONN + 100)); then
    log "warning: open-files limit is $(ulimit -n); 1000-client runs may fail (raise the hard limit)"
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
PGRELAY_PID=

stop_pgrelay() {
    [[ -n $PGRELAY_PID ]] || return 0
    if kill -0 "$PGRELAY_PID" 2>/dev/null; then
        kill -TERM "$PGRELAY_PID" 2>/dev/null || true
        local i
        for ((i = 0; i < 100; i++)); do
            kill -0 "$PGRELAY_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$PGRELAY_PID" 2>/dev/null || true
    fi
    wait "$PGRELAY_PID" 2>/dev/null || true
    PGRELAY_PID=
}

stop_pgbouncer() {
    [[ -s $PGBOUNCER_PIDFILE ]] || return 0
    local pid i
    pid=$(<"$PGBOUNCER_PIDFILE")
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true # SIGTERM: immediate shutdown in 1.18
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PGBOUNCER_PIDFILE"
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
    stop_pgrelay
    stop_pgbouncer
    stop_postgres
    # Keep the logs next to the raw results.
    [[ -f $WORK/pgbouncer.log ]] && cp "$WORK/pgbouncer.log" "$RESULTS/" 2>/dev/null
    [[ -f $WORK/pgrelay.log ]] && cp "$WORK/pgrelay.log" "$RESULTS/" 2>/dev/null
    [[ -f $WORK/postgres.log ]] && cp "$WORK/postgres.log" "$RESULTS/" 2>/dev/null
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

check_sql() { # check_sql <port> : a real login + query through a target
    PGPASSWORD=$BENCH_PASSWORD timeout 30 "$PG_BINDIR/psql" -X -q -At -h "$HOST" -p "$1" \
        -U "$BENCH_USER" -d "$BENCH_DB" -c 'select 1' 2>&1
}

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

declare -A PORT=() SKIP_REASON=()
PORT[direct]=$PG_PORT

# ---------------------------------------------------------------------------------------------
# PgBouncer
# ---------------------------------------------------------------------------------------------
start_pgbouncer() {
    if [[ ! -x $PGBOUNCER ]]; then
        SKIP_REASON[pgbouncer]="$PGBOUNCER not found"
        return 1
    fi
    local port out
    free_port
    port=$FREE_PORT
    cat >"$WORK/pgbouncer.ini" <<EOF
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
server_tls_sslmode = disable
log_connections = 0
log_disconnections = 0
logfile = $WORK/pgbouncer.log
pidfile = $PGBOUNCER_PIDFILE
EOF
    if ((${#AS_PG[@]})); then
        chown "$PG_OS_USER": "$WORK/pgbouncer.ini"
    fi
    cp "$WORK/pgbouncer.ini" "$RESULTS/pgbouncer.ini"
    log "PgBouncer: $("$PGBOUNCER" --version | head -n1), port $port, pool_size $POOL_SIZE, transaction mode"
    if ! out=$("${AS_PG[@]}" "$PGBOUNCER" -d -q "$WORK/pgbouncer.ini" 2>&1); then
        SKIP_REASON[pgbouncer]="pgbouncer failed to start: $out $(tail -n 5 "$WORK/pgbouncer.log" 2>/dev/null)"
        return 1
    fi
    if ! wait_for_port "$port" "$START_TIMEOUT"; then
        SKIP_REASON[pgbouncer]="pgbouncer not listening on $port after ${START_TIMEOUT}s: $(tail -n 5 "$WORK/pgbouncer.log" 2>/dev/null)"
        stop_pgbouncer
        return 1
    fi
    if ! out=$(check_sql "$port"); then
        SKIP_REASON[pgbouncer]="login through pgbouncer failed: $out"
        stop_pgbouncer
        return 1
    fi
    local pid
    pid=$(<"$PGBOUNCER_PIDFILE")
    log "PgBouncer pid $pid, open-files limit $(awk '/Max open files/ {print $4}' "/proc/$pid/limits" 2>/dev/null || echo '?')"
    PORT[pgbouncer]=$port
}

# ---------------------------------------------------------------------------------------------
# pgrelay
# ---------------------------------------------------------------------------------------------
start_pgrelay() {
    if [[ ! -f $PGRELAY_JAR ]]; then
        if ((BUILD)); then
            log "building pgrelay: mvn -B -q -DskipTests package"
            if ! (cd "$REPO_ROOT" && mvn -B -q -DskipTests package) >"$RESULTS/pgrelay-build.log" 2>&1; then
                SKIP_REASON[pgrelay]="build failed (see $RESULTS/pgrelay-build.log): $(tail -n 3 "$RESULTS/pgrelay-build.log" | tr '\n' ' ')"
                return 1
            fi
        fi
        if [[ ! -f $PGRELAY_JAR ]]; then
            SKIP_REASON[pgrelay]="$PGRELAY_JAR missing (pass --build to build it)"
            return 1
        fi
    fi
    if ! command -v "$JAVA" >/dev/null 2>&1; then
        SKIP_REASON[pgrelay]="java ('$JAVA') not found"
        return 1
    fi
    local write_port read_port out
    free_port
    write_port=$FREE_PORT
    free_port
    read_port=$FREE_PORT
    local -a cmd=("$JAVA")
    if [[ -n $JAVA_OPTS ]]; then
        local -a extra
        read -r -a extra <<<"$JAVA_OPTS"
        cmd+=("${extra[@]}")
    fi
    cmd+=(
        "-Dpgrelay.listen.write_port=$write_port"
        "-Dpgrelay.listen.read_port=$read_port"
        "-Dpgrelay.listen.host=$HOST"
        "-Dpgrelay.backends.primary=$HOST:$PG_PORT"
        "-Dpgrelay.auth.auth_file=$WORK/userlist.txt"
        "-Dpgrelay.pool.default_pool_size=$POOL_SIZE"
        "-Dpgrelay.pool.max_client_conn=$MAX_CLIENT_CONN"
        "-Dpgrelay.admin.http_port=0"
        -jar "$PGRELAY_JAR"
    )
    printf '%q ' "${cmd[@]}" >"$RESULTS/pgrelay-command.txt"
    echo >>"$RESULTS/pgrelay-command.txt"
    log "pgrelay: write port $write_port, read port $read_port, pool_size $POOL_SIZE"
    "${cmd[@]}" >"$WORK/pgrelay.log" 2>&1 </dev/null &
    PGRELAY_PID=$!
    if ! wait_for_port "$write_port" "$START_TIMEOUT" "$PGRELAY_PID"; then
        local why="not listening on $write_port after ${START_TIMEOUT}s"
        if ! kill -0 "$PGRELAY_PID" 2>/dev/null; then
            local code=0
            wait "$PGRELAY_PID" 2>/dev/null || code=$?
            why="exited with code $code before listening on $write_port"
            PGRELAY_PID=
        fi
        SKIP_REASON[pgrelay]="pgrelay $why; log tail: $(tail -n 5 "$WORK/pgrelay.log" 2>/dev/null | tr '\n' ' ')"
        stop_pgrelay
        return 1
    fi
    if ! out=$(check_sql "$write_port"); then
        SKIP_REASON[pgrelay]="login through pgrelay failed: $(tr '\n' ' ' <<<"$out")"
        stop_pgrelay
        return 1
    fi
    PORT[pgrelay]=$write_port
}

ACTIVE=()
for t in "${TARGETS[@]}"; do
    case $t in
        direct) ACTIVE+=(direct) ;;
        pgbouncer) if start_pgbouncer; then ACTIVE+=(pgbouncer); else log "SKIP pgbouncer: ${SKIP_REASON[pgbouncer]}"; fi ;;
        pgrelay) if start_pgrelay; then ACTIVE+=(pgrelay); else log "SKIP pgrelay: ${SKIP_REASON[pgrelay]}"; fi ;;
        *) die "unknown target $t" ;;
    esac
done

# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------
declare -A TPS=() LAT=() FAILED=() STATUS=() CPU=()
CLK_TCK=$(getconf CLK_TCK)

proxy_pid() { # the process whose CPU a target costs (empty for direct PostgreSQL)
    case $1 in
        pgbouncer) [[ -s $PGBOUNCER_PIDFILE ]] && cat "$PGBOUNCER_PIDFILE" ;;
        pgrelay) printf '%s' "$PGRELAY_PID" ;;
    esac
}

cpu_ticks() { # user+system clock ticks of a process so far (fields 14 and 15 of /proc/PID/stat)
    [[ -n $1 && -r /proc/$1/stat ]] || { printf '0'; return; }
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

run_one() { # run_one <target> <protocol> <clients>
    local target=$1 proto=$2 clients=$3 key="$1|$2|$3"
    local jobs=1 file rc=0 slack run_secs
    ((clients >= 1000)) && jobs=2
    ((jobs > clients)) && jobs=$clients
    slack=${CONNECT_SLACK:-$((clients / 50))}
    run_secs=$((DURATION + slack))
    file=$RESULTS/${target}-${proto}-c${clients}.txt
    local -a cmd=("$PG_BINDIR/pgbench" -n -S -M "$proto" -c "$clients" -j "$jobs" -T "$run_secs"
        -h "$HOST" -p "${PORT[$target]}" -U "$BENCH_USER" "$BENCH_DB")
    log "run: $target protocol=$proto clients=$clients jobs=$jobs -T ${run_secs}s (${DURATION}s + ${slack}s connect allowance)"
    {
        printf '# target=%s protocol=%s clients=%s jobs=%s\n# ' "$target" "$proto" "$clients" "$jobs"
        printf '%q ' "${cmd[@]}"
        printf '\n'
    } >"$file"
    local pid ticks_before
    pid=$(proxy_pid "$target")
    ticks_before=$(cpu_ticks "$pid")
    PGPASSWORD=$BENCH_PASSWORD timeout --kill-after=10 "$((run_secs + 180))" "${cmd[@]}" >>"$file" 2>&1 || rc=$?
    local ticks_used=$(( $(cpu_ticks "$pid") - ticks_before ))
    printf '# exit code %s\n' "$rc" >>"$file"

    local tps lat failed processed window
    tps=$(awk '/^tps = / && /excluding connections establishing/ {print $3; exit}' "$file")
    [[ -n $tps ]] || tps=$(awk '/^tps = / && !/including connections establishing/ {print $3; exit}' "$file")
    lat=$(awk '/^latency average = / {print $4; exit}' "$file")
    failed=$(awk '/^number of failed transactions:/ {print $5; exit}' "$file")
    processed=$(awk '/^number of transactions actually processed:/ {split($6, a, "/"); print a[1]; exit}' "$file")
    window=$(awk -v n="${processed:-0}" -v t="${tps:-0}" 'BEGIN { if (t > 0) printf "%.1f", n / t; else print 0 }')
    printf '# measured window (processed / tps, connection phase excluded): %s s\n' "$window" >>"$file"
    TPS[$key]=$tps
    # CPU the proxy process used per 1,000 transactions (connection phase included), in ms.
    if [[ -n $pid && ${processed:-0} -gt 0 ]]; then
        CPU[$key]=$(awk -v t="$ticks_used" -v hz="$CLK_TCK" -v n="$processed" 'BEGIN { printf "%.1f", t / hz * 1000 / n * 1000 }')
    fi
    LAT[$key]=$lat
    FAILED[$key]=$failed
    if ((rc != 0)) || grep -q 'Run was aborted' "$file"; then
        STATUS[$key]="aborted (exit $rc)"
        log "  -> $target $proto c=$clients: aborted (exit $rc), tps=${tps:-n/a}; see $file"
        grep -m 3 -iE 'error|fatal|abort' "$file" | sed 's/^/     /' >&2 || true
    elif [[ -z $tps || ${processed:-0} == 0 ]]; then
        STATUS[$key]="no transactions within -T ${run_secs}s (connecting took longer; raise CONNECT_SLACK)"
        log "  -> $target $proto c=$clients: ${STATUS[$key]}; see $file"
    else
        STATUS[$key]=ok
        log "  -> tps=${tps} latency=${lat:-n/a} ms failed=${failed:-n/a} (measured over ${window}s)"
    fi
}

# JIT warm-up: pgrelay runs on a JVM that compiles its hot path during the first seconds; give
# every target the same unrecorded run first so the table compares steady states.
for target in "${ACTIVE[@]}"; do
    log "warm-up: $target, ${WARMUP:-5}s (not recorded)"
    for proto in "${PROTOCOLS[@]}"; do
        PGPASSWORD=$BENCH_PASSWORD "$PG_BINDIR/pgbench" -n -S -M "$proto" -c 8 -j 1 -T "${WARMUP:-5}" \
            -h "$HOST" -p "${PORT[$target]}" -U "$BENCH_USER" "$BENCH_DB" >/dev/null 2>&1 || true
    done
done

for proto in "${PROTOCOLS[@]}"; do
    for clients in "${CLIENTS[@]}"; do
        for target in "${ACTIVE[@]}"; do
            key="$target|$proto|$clients"
            if [[ $target == direct ]] && ((clients > PG_MAX_CONNECTIONS - 10)); then
                STATUS[$key]="skipped"
                continue
            fi
            run_one "$target" "$proto" "$clients"
        done
    done
done

# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
cell_tps() { # tps cell: value, or why there is none
    local key=$1 target=${1%%|*}
    if [[ -n ${SKIP_REASON[$target]:-} ]]; then
        printf 'n/a'
    elif [[ ${STATUS[$key]:-} == skipped ]]; then
        printf 'skip'
    elif [[ ${STATUS[$key]:-} == ok ]]; then
        printf '%.0f' "${TPS[$key]:-0}"
    elif [[ ${STATUS[$key]:-} == "no transactions"* ]]; then
        printf '0 (no tx)'
    elif [[ -n ${TPS[$key]:-} ]]; then
        printf '%.0f (aborted)' "${TPS[$key]}"
    else
        printf 'ERR'
    fi
}

cell_plain() { # cell_plain <value> <status>
    if [[ $2 == ok || -n $1 ]]; then printf '%s' "${1:--}"; else printf -- '-'; fi
}

{
    printf '## pgbench -n -S, %ss per run, scale %s, pool size %s, %s (%s cores)\n\n' \
        "$DURATION" "$SCALE" "$POOL_SIZE" "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)"
    header='| protocol | clients |'
    sep='|---|---:|'
    for t in "${TARGETS[@]}"; do
        header+=" $t tps | $t lat ms | $t failed |"
        sep+='---:|---:|---:|'
        if [[ $t != direct ]]; then
            header+=" $t cpu ms/1k tx |"
            sep+='---:|'
        fi
    done
    header+=' pgrelay/pgbouncer tps |'
    sep+='---:|'
    printf '%s\n%s\n' "$header" "$sep"
    for proto in "${PROTOCOLS[@]}"; do
        for clients in "${CLIENTS[@]}"; do
            row="| $proto | $clients |"
            for t in "${TARGETS[@]}"; do
                key="$t|$proto|$clients"
                row+=" $(cell_tps "$key") | $(cell_plain "${LAT[$key]:-}" "${STATUS[$key]:-}") | $(cell_plain "${FAILED[$key]:-}" "${STATUS[$key]:-}") |"
                if [[ $t != direct ]]; then
                    row+=" ${CPU[$key]:--} |"
                fi
            done
            ratio='-'
            kr="pgrelay|$proto|$clients"
            kb="pgbouncer|$proto|$clients"
            if [[ ${STATUS[$kr]:-} == ok && ${STATUS[$kb]:-} == ok && -n ${TPS[$kr]:-} && -n ${TPS[$kb]:-} ]]; then
                ratio=$(awk -v a="${TPS[$kr]}" -v b="${TPS[$kb]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
            fi
            row+=" $ratio |"
            printf '%s\n' "$row"
        done
    done
    printf '\n'
    printf -- '- tps excludes initial connection time; latency is pgbench'"'"'s average; "failed" is pgbench'"'"'s failed-transaction count.\n'
    if [[ -n ${CONNECT_SLACK:-} ]]; then
        printf -- '- each run: pgbench -T %s (DURATION %s + CONNECT_SLACK %s).\n' \
            "$((DURATION + CONNECT_SLACK))" "$DURATION" "$CONNECT_SLACK"
    else
        printf -- '- each run: pgbench -T DURATION + clients/50 s (connect allowance; 1000 clients: -T %s).\n' \
            "$((DURATION + 20))"
    fi
    printf -- '- direct PostgreSQL has max_connections=%s and is skipped ("skip") above %s clients.\n' \
        "$PG_MAX_CONNECTIONS" "$((PG_MAX_CONNECTIONS - 10))"
    for t in "${TARGETS[@]}"; do
        if [[ -n ${SKIP_REASON[$t]:-} ]]; then
            printf -- '- %s not run (n/a): %s\n' "$t" "${SKIP_REASON[$t]}"
        fi
    done
    for key in "${!STATUS[@]}"; do
        if [[ ${STATUS[$key]} != ok && ${STATUS[$key]} != skipped ]]; then
            IFS='|' read -r t p c <<<"$key"
            printf -- '- %s %s %s clients: %s, see %s-%s-c%s.txt\n' "$t" "$p" "$c" "${STATUS[$key]}" "$t" "$p" "$c"
        fi
    done
    printf -- '- raw outputs: %s\n' "${RESULTS#"$REPO_ROOT"/}"
} | tee "$RESULTS/summary.md"
