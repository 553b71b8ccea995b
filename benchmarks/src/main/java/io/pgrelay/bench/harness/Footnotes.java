package io.pgrelay.bench.harness;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/** The footnotes under a TLS mode's tables: how it was measured, what ran, what went wrong. */
final class Footnotes {
    private final Context ctx;
    private final Settings s;
    private final PointsReport report;
    private final PointsReport.Section sec;
    private final StringBuilder out = new StringBuilder();

    Footnotes(Context ctx, PointsReport report, PointsReport.Section sec) {
        this.ctx = ctx;
        this.s = ctx.settings;
        this.report = report;
        this.sec = sec;
    }

    private void line(String format, Object... args) {
        out.append(String.format(format, args));
    }

    String render() {
        int cores = sec.cores();
        line(
                "- %s run(s) per point and target, %s s measured each, targets interleaved (order rotated every run); tps = median of the runs' pgbench tps (without initial connection time), min–max over the same runs.\n",
                s.runs, s.duration);
        line(
                "- mean / p99 ms: per run, the mean and the nearest-rank 99th percentile of every successful transaction's latency in pgbench --log (µs, all threads' files); the table shows the median of the per-run values. Each raw output ends with a \"# txlog:\" line; %sruns.csv has every run.\n",
                ctx.prefix);
        line(
                "- failed: pgbench's failed transactions, summed over the runs; clients that pgbench aborted on an error are counted separately. A point whose runs all aborted shows the aborted runs' median tps marked \"(aborted)\"; otherwise medians use the ok runs only.\n");
        line(
                "- cpu ms/1k tx: user+system CPU of the proxy process during the run (connection phase included) per 1,000 transactions, median over runs; pgbench and PostgreSQL run on the same %s cores.\n",
                cores);
        if (report.withCpu2) {
            line(
                    "- haproxy: %s, mode tcp, balance first, one server (PgBouncer above, same instance), default threads; its cpu column is HAProxy alone, the next one HAProxy + PgBouncer.\n",
                    ctx.haproxyVersion.isEmpty() ? "HAProxy" : ctx.haproxyVersion);
        }
        line(
                "- ratios: median tps of the row's target (or the left one) over the other's, where both have ok runs.\n");
        out.append(new PeerFootnotes(ctx).render());
        if (s.hasTarget("baseline") && ctx.port.containsKey("baseline")) {
            line(
                    "- baseline: a second pgrelay, started like pgrelay (bin/pgrelay, same JVM options and settings, own ports) from %s (%s); pgrelay: %s (%s).\n",
                    s.baselineJar, jarId(s.baselineJar), s.pgrelayJar, jarId(s.pgrelayJar));
        }
        if (s.connectSlack != null) {
            line(
                    "- each run: pgbench -T %s (DURATION %s + CONNECT_SLACK %s).\n",
                    s.duration + s.connectSlack, s.duration, s.connectSlack);
        } else {
            line(
                    "- each run: pgbench -T DURATION + clients/50 s (connect allowance; 1000 clients: -T %s); -j 2 from 1000 clients, else -j 1.\n",
                    s.duration + 20);
        }
        if (s.hasTarget("direct")) {
            line(
                    "- direct PostgreSQL has max_connections=%s and is skipped (\"skip\") above %s clients.\n",
                    Settings.PG_MAX_CONNECTIONS, Settings.PG_MAX_CONNECTIONS - 10);
        }
        if (!s.connectClients.isEmpty()) {
            line(
                    "- connect: pgbench -n -S -M simple -C, a new connection per transaction (TCP connect, %sstartup, SCRAM-SHA-256 login, one SELECT, Terminate); its tps (pgbench's, including reconnection times) is new connections per second, its cpu column CPU ms per 1,000 connections; mean / p99 ms time the SELECT only (pgbench logs the connection apart: \"average connection time\" in the raw outputs).\n",
                    ctx.tlsMode == TlsMode.OFF ? "" : "SSLRequest and TLS handshake, ");
        }
        if (ctx.tlsMode != TlsMode.OFF) {
            out.append(new TlsFootnotes(ctx, sec.active()).render());
        }
        for (Settings.Point p : s.points) {
            for (String t : sec.active()) {
                Aggregate a = report.agg(t, p);
                if (a.aborted() + a.noTx() > 0) {
                    String base = ctx.prefix + t + "-" + p.protocol() + "-c" + p.clients();
                    line(
                            "- %s %s %s clients: %s of %s runs aborted, %s without transactions",
                            t, p.protocol(), p.clients(), a.aborted(), s.runs, a.noTx());
                    String err = firstError(ctx.results, base);
                    if (!err.isEmpty()) {
                        line(" (%s)", err);
                    }
                    line(", see %s-r*.txt\n", base);
                }
            }
        }
        return out.toString();
    }

    /** The first error line of a point's runs (first file that has one), for the footnotes. */
    static String firstError(Path dir, String base) {
        List<Path> files = new ArrayList<>();
        try (Stream<Path> list = Files.list(dir)) {
            list.filter(
                            p -> {
                                String n = p.getFileName().toString();
                                return n.startsWith(base + "-r") && n.endsWith(".txt");
                            })
                    .sorted()
                    .forEach(files::add);
        } catch (IOException e) {
            return "";
        }
        for (Path f : files) {
            for (String line : Text.lines(f)) {
                if (line.contains("ERROR") || line.contains("FATAL") || line.contains("error:")) {
                    String cleaned =
                            line.replaceFirst("^pgbench: error: ", "").replaceAll("[|`]", " ");
                    return cleaned.length() > 160 ? cleaned.substring(0, 160) : cleaned;
                }
            }
        }
        return "";
    }

    /** A jar's modification time and the start of its sha256: tells two builds apart. */
    String jarId(String jar) {
        String date =
                ctx.proc
                        .capture(
                                List.of("date", "-u", "-r", jar, "+%Y-%m-%d %H:%M UTC"),
                                java.util.Map.of())
                        .output();
        Proc.Result sum = ctx.proc.capture(List.of("sha256sum", jar), java.util.Map.of());
        String hash = sum.ok() && sum.output().length() >= 12 ? sum.output().substring(0, 12) : "?";
        return (date.isEmpty() || date.startsWith("date:") ? "?" : date) + ", sha256 " + hash;
    }
}
