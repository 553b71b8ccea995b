#!/usr/bin/env bash
# What hostile clients make pgrelay hold, for two builds side by side (interleaved per scenario):
#   benchmarks/hostile-memory.sh BEFORE_HOME AFTER_HOME
# Each HOME is a pgrelay checkout with proxy-core/target/pgrelay.jar built and bin/pgrelay (its own
# conf/jvm.options). A throwaway PostgreSQL 15 (trust) is started on a free port; pgrelay runs with
# auth_type plain so the load tool (benchmarks/src/main/java/io/pgrelay/bench/HostileLoad.java)
# needs no SCRAM. Prints, per scenario and build, what the clients saw and pgrelay's VmRSS / VmHWM.
set -euo pipefail
BEFORE=$1; AFTER=$2
HERE=$(cd "$(dirname "$0")" && pwd)
TOOL=$HERE/src/main/java/io/pgrelay/bench/HostileLoad.java
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
WORK=$(mktemp -d /tmp/pgrelay-hostile-XXXXXX); chmod 755 "$WORK"
AS_PG=(); [ "$(id -u)" = 0 ] && AS_PG=(runuser -u postgres --)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PG_PORT=$(free_port); PORT=$(free_port); READ_PORT=$(free_port)
PGDATA=$WORK/pgdata; mkdir -p "$PGDATA"; [ "$(id -u)" = 0 ] && chown postgres "$PGDATA"
cleanup() {
    [ -n "${PID:-}" ] && kill -9 "$PID" 2>/dev/null || true
    "${AS_PG[@]}" "$PG_BINDIR/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
"${AS_PG[@]}" "$PG_BINDIR/initdb" -D "$PGDATA" -A trust -U postgres >/dev/null
"${AS_PG[@]}" "$PG_BINDIR/pg_ctl" -D "$PGDATA" -w -l "$PGDATA/log" \
    -o "-p $PG_PORT -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "create role app login password 'app-secret'" \
    -c "create database appdb owner app"
printf '"app" "app-secret"\n' > "$WORK/userlist.txt"
cat > "$WORK/pgrelay.conf" <<CONF
pgrelay.listen.write_port = $PORT
pgrelay.listen.read_port = $READ_PORT
pgrelay.backends.primary = "127.0.0.1:$PG_PORT"
pgrelay.auth.auth_file = "$WORK/userlist.txt"
pgrelay.auth.auth_type = plain
pgrelay.admin.http_port = 0
pgrelay.pool.max_client_conn = 2000
CONF
mem() { awk '/VmRSS|VmHWM/ {printf "%s %d MB  ", $1, $2/1024}' "/proc/$PID/status" 2>/dev/null || echo "(exited)"; }

run() { # run LABEL HOME ARGS...
    local label=$1 home=$2; shift 2
    (cd "$home" && exec bin/pgrelay "$WORK/pgrelay.conf") > "$WORK/$label.log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.2; done
    echo "  $label at start: $(mem)"
    if [ "$1" = statements ]; then
        # The tool holds its statements until its stdin closes: read RSS while they are held.
        mkfifo "$WORK/hold"
        java "$TOOL" "$PORT" "$@" < "$WORK/hold" > "$WORK/$label.tool" 2>&1 &
        local tool=$!
        exec 4>"$WORK/hold"
        for _ in $(seq 600); do
            grep -q holding "$WORK/$label.tool" 2>/dev/null && break
            kill -0 $tool 2>/dev/null || break
            sleep 0.5
        done
        sleep 10 # let a collection or two run: RSS of what is live, not of garbage
        sed "s/^/  $label: /" "$WORK/$label.tool"
        echo "  $label while held: $(mem)"
        exec 4>&-
        wait $tool || true
        rm -f "$WORK/hold"
    else
        java -Xmx4g "$TOOL" "$PORT" "$@" 2>&1 | sed "s/^/  $label: /" || true
        echo "  $label after: $(mem)"
    fi
    if kill -0 "$PID" 2>/dev/null; then kill -TERM "$PID"; wait "$PID" 2>/dev/null || true
    else echo "  $label: pgrelay exited: $(grep -m1 -i -E 'OutOfMemory|exit' "$WORK/$label.log" || true)"; fi
    grep -E ' (WARN|ERROR) ' "$WORK/$label.log" | cut -c1-240 | sed "s/^/  $label log: /" | head -5 || true
    PID=
}

IFS=';' read -r -a SCENARIOS <<< "${SCENARIOS:-statements 100 100 200;flood 21;big 3 200000000;big 3 268434432;idle 5000 10}"
for scenario in "${SCENARIOS[@]}"; do
    echo "== $scenario"
    run before "$BEFORE" $scenario
    run after "$AFTER" $scenario
done
