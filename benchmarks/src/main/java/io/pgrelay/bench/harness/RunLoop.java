package io.pgrelay.bench.harness;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Every point of one TLS mode, RUNS times, the targets interleaved: run r runs every target once,
 * in the order rotated by r-1, so drift (thermal, page cache, neighbours) hits all targets alike.
 */
final class RunLoop {
    static final String CSV_HEADER =
            "protocol,clients,run,position,target,status,tps,mean_ms,p50_ms,p99_ms,max_ms,logged_tx,"
                    + "processed_tx,failed_tx,aborted_clients,cpu_ms_per_1k_tx,cpu_with_pgbouncer_ms_per_1k_tx";

    private final Context ctx;
    private final Targets targets;
    private final PgbenchRun pgbench;

    RunLoop(Context ctx, Targets targets, Results results, long clockTicks) {
        this.ctx = ctx;
        this.targets = targets;
        this.pgbench = new PgbenchRun(ctx, targets, results, clockTicks);
    }

    /** The order of run r (1-based): the targets rotated left by r-1. */
    static List<String> rotated(List<String> order, int run) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < order.size(); i++) {
            out.add(order.get((i + run - 1) % order.size()));
        }
        return out;
    }

    void runAll() {
        Settings s = ctx.settings;
        Path csv = ctx.results.resolve(ctx.prefix + "runs.csv");
        Text.write(csv, CSV_HEADER + "\n");
        pgbench.csv(csv);
        if (s.points.isEmpty()) {
            return;
        }
        warmUp();
        long est = 0;
        for (Settings.Point point : s.points) {
            est += (long) (s.duration + slack(point.clients()) + 1) * targets.active.size();
        }
        Log.log(
                "pgbench"
                        + (ctx.tlsMode == TlsMode.OFF ? "" : " (TLS " + ctx.tlsMode.word + ")")
                        + ": "
                        + s.points.size()
                        + " points (protocol, clients) x "
                        + s.runs
                        + " runs x "
                        + targets.active.size()
                        + " targets, about "
                        + (est * s.runs / 60 + 1)
                        + " min");
        for (Settings.Point point : s.points) {
            List<String> order = new ArrayList<>();
            for (String t : targets.active) {
                if (t.equals("direct") && point.clients() > Settings.PG_MAX_CONNECTIONS - 10) {
                    pgbench.skip(t, point);
                    continue;
                }
                order.add(t);
            }
            for (int run = 1; run <= s.runs; run++) {
                List<String> rotation = rotated(order, run);
                for (int i = 0; i < rotation.size(); i++) {
                    pgbench.run(rotation.get(i), point, run, i + 1);
                }
            }
        }
    }

    /**
     * Seconds added to -T for opening the connections: pgbench starts its clock before they are.
     */
    int slack(int clients) {
        return ctx.settings.connectSlack != null ? ctx.settings.connectSlack : clients / 50;
    }

    // pgrelay runs on a JVM that compiles its hot path during the first seconds: every target gets
    // the same unrecorded run first, so the tables compare steady states.
    private void warmUp() {
        Settings s = ctx.settings;
        if (s.warmup <= 0) {
            return;
        }
        for (String target : targets.active) {
            Log.log("warm-up: " + target + ", " + s.warmup + "s per protocol (not recorded)");
            for (String proto : s.pointProtocols) {
                List<String> cmd = new ArrayList<>(List.of(s.pgBindir + "/pgbench", "-n", "-S"));
                cmd.addAll(PgbenchRun.modeArgs(proto));
                cmd.addAll(
                        List.of(
                                "-c",
                                "16",
                                "-j",
                                "1",
                                "-T",
                                Integer.toString(s.warmup),
                                "-h",
                                Settings.HOST,
                                "-p",
                                Integer.toString(ctx.port.get(target)),
                                "-U",
                                Settings.BENCH_USER,
                                Settings.BENCH_DB));
                ctx.proc.runTo(
                        cmd,
                        Map.of(
                                "PGPASSWORD",
                                Settings.BENCH_PASSWORD,
                                "PGSSLMODE",
                                ctx.clientSslmode(target)),
                        null);
            }
        }
    }
}
