package io.pgrelay.bench.harness;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** The markdown tables of one TLS mode's points: throughput with ratios, then per target. */
final class PointsReport {
    static final List<String> RATIO_PAIRS =
            List.of(
                    "pgrelay/pgbouncer",
                    "pgrelay/direct",
                    "pgrelay/haproxy",
                    "haproxy/pgbouncer",
                    "haproxy/direct",
                    "pgrelay/pgbouncer125",
                    "pgrelay/odyssey");

    /** What the tables show of a run beyond the settings; made by the harness or by a test. */
    record Section(
            TlsMode tlsMode,
            List<String> active,
            Map<String, String> skipReason,
            Results results,
            String date,
            int cores) {}

    private final Settings s;
    private final Section sec;

    /** Median tps of every point with at least one ok run, for the ratios. */
    private final Map<String, String> med = new HashMap<>();

    final List<String> ratios = new ArrayList<>();
    final boolean withBaseline;
    final boolean withCpu2;

    PointsReport(Settings s, Section sec) {
        this.s = s;
        this.sec = sec;
        for (Settings.Point p : s.points) {
            for (String t : sec.active()) {
                Aggregate a = agg(t, p);
                if (a.ok() > 0) {
                    med.put(Results.key(t, p.protocol(), p.clients()), a.tps());
                }
            }
        }
        withBaseline = sec.active().contains("pgrelay") && sec.active().contains("baseline");
        if (withBaseline) {
            ratios.add("pgrelay/baseline");
        }
        for (String pair : RATIO_PAIRS) {
            String[] ab = pair.split("/");
            if (s.hasTarget(ab[0]) && s.hasTarget(ab[1])) {
                ratios.add(pair);
            }
        }
        withCpu2 = sec.active().contains("haproxy");
    }

    Aggregate agg(String target, Settings.Point p) {
        return Aggregate.of(sec.results(), target, p.protocol(), p.clients(), s.runs);
    }

    private String med(String target, Settings.Point p) {
        return med.get(Results.key(target, p.protocol(), p.clients()));
    }

    /** The heading, the interleaving sentence and both tables, each line ending in a newline. */
    String tables() {
        StringBuilder out = new StringBuilder();
        List<String> active = sec.active();
        List<String> rot = active.isEmpty() ? List.of() : RunLoop.rotated(active, 2);
        out.append(
                String.format(
                        "## pgbench -n -S%s, %s s x %s run(s) per point, scale %s, pool size %s, %s (%s cores)\n\n",
                        sec.tlsMode().heading(s.tlsUsed),
                        s.duration,
                        s.runs,
                        s.scale,
                        s.poolSize,
                        sec.date(),
                        sec.cores()));
        out.append(
                String.format(
                        "Each point: %s run(s) of %s s per target, interleaved: run r runs every target once, in"
                                + " the order rotated by r-1 (run 1: %s; run 2: %s; ...). Medians over the runs.\n\n",
                        s.runs, s.duration, String.join(",", active), String.join(",", rot)));
        out.append("### Throughput (median tps) and ratios\n\n");
        StringBuilder header = new StringBuilder("| protocol | clients |");
        StringBuilder sep = new StringBuilder("|---|---:|");
        for (String t : s.targets) {
            header.append(' ').append(sec.tlsMode().label(t)).append(" |");
            sep.append("---:|");
        }
        for (String pair : ratios) {
            header.append(' ').append(pair).append(" |");
            sep.append("---:|");
        }
        out.append(header).append('\n').append(sep).append('\n');
        for (Settings.Point p : s.points) {
            StringBuilder row = new StringBuilder("| " + p.protocol() + " | " + p.clients() + " |");
            for (String t : s.targets) {
                row.append(' ').append(Cells.mark(tpsCell(t, p), t, p.protocol())).append(" |");
            }
            for (String pair : ratios) {
                String[] ab = pair.split("/");
                String r = NumFmt.ratio(med(ab[0], p), med(ab[1], p));
                row.append(' ').append(Cells.mark(r, pair, p.protocol())).append(" |");
            }
            out.append(row).append('\n');
        }
        out.append("\n### Per target\n\n");
        header =
                new StringBuilder(
                        "| protocol | clients | target | tps (median) | tps min–max | mean ms | p99 ms | failed | cpu ms/1k tx |");
        sep = new StringBuilder("|---|---:|---|---:|---:|---:|---:|---:|---:|");
        if (withCpu2) {
            header.append(" haproxy+pgbouncer cpu ms/1k tx |");
            sep.append("---:|");
        }
        header.append(" runs ok | / pgbouncer | / direct |");
        sep.append("---:|---:|---:|");
        if (withBaseline) {
            header.append(" / baseline |");
            sep.append("---:|");
        }
        out.append(header).append('\n').append(sep).append('\n');
        for (Settings.Point p : s.points) {
            for (String t : active) {
                out.append(perTargetRow(t, p)).append('\n');
            }
        }
        return out.toString();
    }

    private String perTargetRow(String t, Settings.Point p) {
        String proto = p.protocol();
        String label = sec.tlsMode().label(t);
        StringBuilder row = new StringBuilder();
        if (sec.results().skipped(t, proto, p.clients())) {
            row.append("| ")
                    .append(proto)
                    .append(" | ")
                    .append(p.clients())
                    .append(" | ")
                    .append(label)
                    .append(" | skip | - | - | - | - | - |");
            if (withCpu2) {
                row.append(" - |");
            }
            row.append(" - | - | - |");
            if (withBaseline) {
                row.append(" - |");
            }
            return row.toString();
        }
        Aggregate a = agg(t, p);
        String range =
                a.tpsMin().isEmpty()
                        ? "-"
                        : NumFmt.fixed(a.tpsMin(), 0) + "–" + NumFmt.fixed(a.tpsMax(), 0);
        String failed = Long.toString(a.failed());
        if (a.abortedClients() > 0) {
            failed += " (+" + a.abortedClients() + " clients aborted)";
        }
        row.append("| ")
                .append(proto)
                .append(" | ")
                .append(p.clients())
                .append(" | ")
                .append(label)
                .append(" | ")
                .append(Cells.mark(tpsCell(t, p), t, proto))
                .append(" | ")
                .append(range)
                .append(" | ")
                .append(NumFmt.orDash(a.mean(), 3))
                .append(" | ")
                .append(NumFmt.orDash(a.p99(), 3))
                .append(" | ")
                .append(failed)
                .append(" |");
        row.append(t.equals("direct") ? " - |" : " " + NumFmt.orDash(a.cpu(), 1) + " |");
        if (withCpu2) {
            row.append(
                    t.equals("haproxy")
                            ? " " + NumFmt.orDash(a.cpuWithPgbouncer(), 1) + " |"
                            : " - |");
        }
        String runsCell = a.ok() + "/" + s.runs;
        if (a.aborted() > 0) {
            runsCell += " (" + a.aborted() + " aborted)";
        }
        if (a.noTx() > 0) {
            runsCell += " (" + a.noTx() + " no tx)";
        }
        String mine = med(t, p);
        String rb =
                t.equals("pgbouncer")
                        ? "-"
                        : Cells.mark(NumFmt.ratio(mine, med("pgbouncer", p)), "pgbouncer", proto);
        String rd = t.equals("direct") ? "-" : NumFmt.ratio(mine, med("direct", p));
        row.append(' ')
                .append(runsCell)
                .append(" | ")
                .append(rb)
                .append(" | ")
                .append(rd)
                .append(" |");
        if (withBaseline) {
            String rl = t.equals("baseline") ? "-" : NumFmt.ratio(mine, med("baseline", p));
            row.append(' ').append(rl).append(" |");
        }
        return row.toString();
    }

    /** The tps cell: the median, or why there is none. */
    String tpsCell(String t, Settings.Point p) {
        String reason = sec.skipReason().get(t);
        if (reason != null && !reason.isEmpty()) {
            return "n/a";
        }
        if (sec.results().skipped(t, p.protocol(), p.clients())) {
            return "skip";
        }
        Aggregate a = agg(t, p);
        if (a.ok() > 0) {
            String cell = NumFmt.fixed(a.tps(), 0);
            return a.aborted() > 0
                    ? cell + " (" + a.aborted() + "/" + s.runs + " runs aborted)"
                    : cell;
        }
        if (!a.tps().isEmpty()) {
            return NumFmt.fixed(a.tps(), 0) + " (aborted)";
        }
        return a.noTx() > 0 ? "0 (no tx)" : "ERR";
    }
}
