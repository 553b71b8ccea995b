package io.pgrelay.bench.harness;

import java.util.List;
import java.util.Map;

/** The whole markdown summary: each TLS mode's section, the notes, the idle-connection table. */
final class Summary {
    private Summary() {}

    /** One TLS mode's tables and footnotes, then the targets that did not run and why. */
    static String section(Context ctx, PointsReport.Section sec) {
        StringBuilder out = new StringBuilder();
        Settings s = ctx.settings;
        if (!s.points.isEmpty()) {
            PointsReport report = new PointsReport(s, sec);
            out.append(report.tables()).append('\n');
            out.append(new Footnotes(ctx, report, sec).render());
        }
        for (String t : s.targets) {
            String why = sec.skipReason().get(t);
            if (why != null && !why.isEmpty()) {
                out.append("- ").append(t).append(" not run (n/a): ").append(why).append('\n');
            }
        }
        return out.toString();
    }

    static String render(
            Settings s,
            List<String> sections,
            List<String> notes,
            List<IdleTest.Reading> idleDone,
            Map<String, String> idleNotes,
            String date,
            int cores,
            String resultsRelative) {
        StringBuilder out = new StringBuilder();
        if (s.points.isEmpty()) {
            out.append(
                    String.format(
                            "## pgrelay vs PgBouncer: idle client connections, %s (%s cores)\n",
                            date, cores));
        }
        for (int m = 0; m < sections.size(); m++) {
            if (m > 0) {
                out.append('\n');
            }
            out.append(sections.get(m));
        }
        for (String note : notes) {
            out.append("- ").append(note).append('\n');
        }
        if (s.idleClients > 0) {
            out.append(idleTable(s, idleDone, idleNotes));
        }
        out.append("- raw outputs: ").append(resultsRelative).append('\n');
        return out.toString();
    }

    static String idleTable(Settings s, List<IdleTest.Reading> done, Map<String, String> notes) {
        StringBuilder out = new StringBuilder();
        out.append(
                String.format(
                        "\n### %s idle client connections per proxy (SCRAM login, then idle), one proxy at a time\n\n",
                        s.idleClients));
        out.append(
                "| proxy | logged in | login time s | RSS before MB | RSS with idle MB | RSS growth MB | kB per connection | RSS after closing MB | live heap kB per connection |\n");
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (IdleTest.Reading r : done) {
            int n = r.loggedIn();
            String heap = "-";
            if (r.heapWith() != null && r.heapClosed() != null && n > 0) {
                heap =
                        NumFmt.fixed(
                                (Double.parseDouble(r.heapWith())
                                                - Double.parseDouble(r.heapClosed()))
                                        / n,
                                2);
            }
            out.append(
                    String.format(
                            "| %s | %d/%d | %d | %s | %s | %s | %s | %s | %s |\n",
                            r.target(),
                            n,
                            s.idleClients,
                            r.seconds(),
                            NumFmt.fixed(r.before() / 1024.0, 1),
                            NumFmt.fixed(r.with() / 1024.0, 1),
                            NumFmt.fixed((r.with() - r.before()) / 1024.0, 1),
                            n > 0 ? NumFmt.fixed((double) (r.with() - r.before()) / n, 2) : "-",
                            NumFmt.fixed(r.closed() / 1024.0, 1),
                            heap));
        }
        out.append('\n');
        out.append(
                String.format(
                        "- connections opened by benchmarks/src/main/java/io/pgrelay/bench/IdleClients.java (%s threads; startup + SCRAM-SHA-256 as user %s, then no traffic); max_client_conn (Odyssey: client_max) %s on every proxy; while one proxy is measured the others are idle.\n",
                        s.idleThreads, Settings.BENCH_USER, s.maxClientConn));
        out.append(
                        "- RSS: VmRSS of the proxy process, each reading taken once two samples 2 s apart agree within 1 % or 256 kB; kB per connection = (with idle - before) / logged in.")
                .append(
                        s.points.isEmpty()
                                ? ""
                                : " Measured after the pgbench runs, so pgrelay's JVM heap had already grown to its working size.")
                .append('\n');
        out.append(
                "- live heap (pgrelay): Java heap used right after a full GC (jcmd GC.run, then GC.heap_info) with the connections open minus after they closed, per connection; taken after the RSS readings.\n");
        for (String t : List.of("pgrelay", "baseline", "pgbouncer", "pgbouncer125", "odyssey")) {
            String note = notes.get(t);
            if (note != null && !note.isEmpty()) {
                out.append("- ").append(t).append(": ").append(note).append('\n');
            }
        }
        return out.toString();
    }
}
