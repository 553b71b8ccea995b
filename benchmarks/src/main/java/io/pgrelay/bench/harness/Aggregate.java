package io.pgrelay.bench.harness;

import java.util.ArrayList;
import java.util.List;

/**
 * The runs of one (target, protocol, clients) point summed up: medians over the ok runs, or over
 * the aborted runs that reported a tps when none was ok (so a point that always aborts still shows
 * what it reached).
 */
record Aggregate(
        int ok,
        int aborted,
        int noTx,
        long failed,
        long abortedClients,
        int used,
        String tps,
        String tpsMin,
        String tpsMax,
        String mean,
        String p99,
        String cpu,
        String cpuWithPgbouncer) {

    static Aggregate of(Results results, String target, String protocol, int clients, int runs) {
        int ok = 0;
        int aborted = 0;
        int noTx = 0;
        long failed = 0;
        long abortedClients = 0;
        List<RunRecord> all = new ArrayList<>();
        for (int r = 1; r <= runs; r++) {
            RunRecord rec = results.get(target, protocol, clients, r);
            all.add(rec);
            if (rec == null) {
                continue;
            }
            if (rec.status().equals("ok")) {
                ok++;
            } else if (rec.status().startsWith("aborted")) {
                aborted++;
            } else if (rec.status().startsWith("no")) {
                noTx++;
            }
            if (rec.failed() != null && rec.failed().matches("[0-9]+")) {
                failed += Long.parseLong(rec.failed());
            }
            abortedClients += rec.abortedClients();
        }
        List<String> tps = new ArrayList<>();
        List<String> mean = new ArrayList<>();
        List<String> p99 = new ArrayList<>();
        List<String> cpu = new ArrayList<>();
        List<String> cpu2 = new ArrayList<>();
        int used = 0;
        for (RunRecord rec : all) {
            if (rec == null) {
                continue;
            }
            boolean use =
                    ok > 0
                            ? rec.status().equals("ok")
                            : rec.status().startsWith("aborted") && present(rec.tps());
            if (!use) {
                continue;
            }
            used++;
            addIfPresent(tps, rec.tps());
            addIfPresent(mean, rec.mean());
            addIfPresent(p99, rec.p99());
            addIfPresent(cpu, rec.cpu());
            addIfPresent(cpu2, rec.cpuWithPgbouncer());
        }
        Stats.Median t = Stats.med3(tps);
        return new Aggregate(
                ok,
                aborted,
                noTx,
                failed,
                abortedClients,
                used,
                t == null ? "" : t.median(),
                t == null ? "" : t.min(),
                t == null ? "" : t.max(),
                median(mean),
                median(p99),
                median(cpu),
                median(cpu2));
    }

    private static String median(List<String> values) {
        Stats.Median m = Stats.med3(values);
        return m == null ? "" : m.median();
    }

    private static boolean present(String v) {
        return v != null && !v.isEmpty();
    }

    private static void addIfPresent(List<String> list, String v) {
        if (present(v)) {
            list.add(v);
        }
    }
}
