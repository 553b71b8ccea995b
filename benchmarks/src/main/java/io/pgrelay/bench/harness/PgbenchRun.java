package io.pgrelay.bench.harness;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** One measured pgbench run of one target: its raw output file, its numbers, its runs.csv line. */
final class PgbenchRun {
    private final Context ctx;
    private final Targets targets;
    private final Results results;
    private final long clockTicks;
    private final Path txlogDir;
    private Path csv;

    PgbenchRun(Context ctx, Targets targets, Results results, long clockTicks) {
        this.ctx = ctx;
        this.targets = targets;
        this.results = results;
        this.clockTicks = clockTicks;
        this.txlogDir = ctx.work.resolve("txlog");
        try {
            Files.createDirectories(txlogDir);
        } catch (IOException e) {
            throw new HarnessException("cannot create " + txlogDir);
        }
    }

    void csv(Path file) {
        this.csv = file;
    }

    void skip(String target, Settings.Point point) {
        results.skip(target, point.protocol(), point.clients());
    }

    /** pgbench's protocol options; connect is the simple protocol with a new connection per tx. */
    static List<String> modeArgs(String protocol) {
        return protocol.equals("connect") ? List.of("-M", "simple", "-C") : List.of("-M", protocol);
    }

    void run(String target, Settings.Point point, int run, int pos) {
        Settings s = ctx.settings;
        String proto = point.protocol();
        int clients = point.clients();
        int jobs = Math.min(clients >= 1000 ? 2 : 1, clients);
        int slack = s.connectSlack != null ? s.connectSlack : clients / 50;
        int runSecs = s.duration + slack;
        String name = ctx.prefix + target + "-" + proto + "-c" + clients + "-r" + run;
        Path file = ctx.results.resolve(name + ".txt");
        Path prefix = txlogDir.resolve(name);
        List<String> cmd = new ArrayList<>(List.of(s.pgBindir + "/pgbench", "-n", "-S"));
        cmd.addAll(modeArgs(proto));
        cmd.addAll(
                List.of(
                        "-c",
                        Integer.toString(clients),
                        "-j",
                        Integer.toString(jobs),
                        "-T",
                        Integer.toString(runSecs),
                        "--log",
                        "--log-prefix=" + prefix,
                        "-h",
                        Settings.HOST,
                        "-p",
                        Integer.toString(ctx.port.get(target)),
                        "-U",
                        Settings.BENCH_USER,
                        Settings.BENCH_DB));
        String sslmode = ctx.clientSslmode(target);
        Log.log(
                String.format(
                        "run %d/%d #%d: %s protocol=%s clients=%d jobs=%d -T %ds (%ds + %ds connect"
                                + " allowance)%s",
                        run,
                        s.runs,
                        pos,
                        target,
                        proto,
                        clients,
                        jobs,
                        runSecs,
                        s.duration,
                        slack,
                        ctx.tlsMode == TlsMode.OFF
                                ? ""
                                : ", TLS " + ctx.tlsMode.word + ", PGSSLMODE=" + sslmode));
        Text.write(
                file,
                String.format(
                        "# target=%s protocol=%s clients=%d jobs=%d run=%d position=%d\n# %s\n",
                        target, proto, clients, jobs, run, pos, Text.shellQuoted(cmd)));

        // CPU of the proxy (and for haproxy of the PgBouncer behind it) around the whole run.
        Long pid = targets.pid(target);
        Long pid2 = target.equals("haproxy") ? targets.pid("pgbouncer") : null;
        long before = Cpu.ticks(pid);
        long before2 = pid2 != null ? Cpu.ticks(pid2) : 0;
        List<String> timed =
                new ArrayList<>(
                        List.of("timeout", "--kill-after=10", Integer.toString(runSecs + 180)));
        timed.addAll(cmd);
        Map<String, String> env =
                Map.of("PGPASSWORD", Settings.BENCH_PASSWORD, "PGSSLMODE", sslmode);
        int rc = ctx.proc.runTo(timed, env, file);
        long used = Cpu.ticks(pid) - before;
        long used2 = pid2 != null ? Cpu.ticks(pid2) - before2 : 0;
        Text.append(file, "# exit code " + rc + "\n");

        List<String> lines = Text.lines(file);
        PgbenchOutput out = PgbenchOutput.parse(lines);
        String window = out.window();
        Text.append(
                file,
                "# measured window (processed / tps, connection phase excluded): "
                        + window
                        + " s\n");
        TxLog.Summary tx = latencies(prefix);
        Text.append(
                file,
                String.format(
                        "# txlog: %d successful transactions logged, latency mean %s ms, p50 %s"
                                + " ms, p99 %s ms, max %s ms\n",
                        tx.count(), tx.mean(), tx.p50(), tx.p99(), tx.max()));
        String mean = tx.mean();
        if (mean.equals("-")) { // no per-transaction log: fall back to pgbench's average
            mean = PgbenchOutput.latencyAverage(Text.lines(file));
        }
        String tps = out.tps() == null ? "" : out.tps();
        // CPU the proxy process(es) used per 1,000 transactions (connection phase included), in ms.
        String cpu = "";
        String cpu2 = "";
        if (pid != null && out.processedCount() > 0) {
            cpu = Cpu.perThousand(used, clockTicks, out.processedCount());
            if (pid2 != null) {
                cpu2 = Cpu.perThousand(used + used2, clockTicks, out.processedCount());
            }
        }
        String where = target + " " + proto + " c=" + clients;
        String status;
        if (rc != 0 || out.runAborted()) {
            status = "aborted (exit " + rc + ")";
            Log.log(
                    String.format(
                            "  -> %s: aborted (exit %d, %d clients aborted), tps=%s; see %s",
                            where, rc, out.abortedClients(), tps.isEmpty() ? "n/a" : tps, file));
            lines.stream()
                    .filter(l -> l.toLowerCase().matches(".*(error|fatal|abort).*"))
                    .limit(2)
                    .forEach(l -> System.err.println("     " + l));
        } else if (tps.isEmpty() || out.processedCount() == 0) {
            status =
                    "no transactions within -T "
                            + runSecs
                            + "s (connecting took longer; raise CONNECT_SLACK)";
            Log.log("  -> " + where + ": " + status + "; see " + file);
        } else {
            status = "ok";
            Log.log(
                    String.format(
                            "  -> tps=%s mean=%s ms p99=%s ms failed=%s cpu=%s ms/1k tx (measured"
                                    + " over %ss)",
                            tps,
                            mean.isEmpty() ? "n/a" : mean,
                            tx.p99(),
                            out.failed() == null ? "n/a" : out.failed(),
                            cpu.isEmpty() ? "-" : cpu,
                            window));
        }
        String p99 = tx.p99().equals("-") ? "" : tx.p99();
        results.put(
                target,
                proto,
                clients,
                run,
                new RunRecord(
                        status, tps, mean, p99, out.failed(), out.abortedClients(), cpu, cpu2));
        List<String> row =
                List.of(
                        proto,
                        Integer.toString(clients),
                        Integer.toString(run),
                        Integer.toString(pos),
                        target,
                        status.split(" ")[0],
                        tps,
                        mean,
                        tx.p50(),
                        tx.p99(),
                        tx.max(),
                        Long.toString(tx.count()),
                        nz(out.processed()),
                        nz(out.failed()),
                        Integer.toString(out.abortedClients()),
                        cpu,
                        cpu2);
        Text.append(csv, String.join(",", row) + "\n");
    }

    /**
     * The per-transaction logs summed up, then deleted: the raw output keeps their "# txlog:" line.
     */
    private static TxLog.Summary latencies(Path prefix) {
        try {
            List<Path> logs = TxLog.files(prefix);
            TxLog.Summary tx = logs.isEmpty() ? TxLog.Summary.EMPTY : TxLog.read(logs);
            for (Path p : logs) {
                Files.deleteIfExists(p);
            }
            return tx;
        } catch (IOException e) {
            return TxLog.Summary.EMPTY;
        }
    }

    private static String nz(String v) {
        return v == null ? "" : v;
    }
}
