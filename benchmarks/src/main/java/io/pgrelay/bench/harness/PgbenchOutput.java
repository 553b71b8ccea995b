package io.pgrelay.bench.harness;

import java.util.List;

/** The numbers of one pgbench run, read from its output the way the shell version's awk did. */
record PgbenchOutput(
        String tps, String failed, String processed, int abortedClients, boolean runAborted) {

    static PgbenchOutput parse(List<String> lines) {
        String tps = null;
        String fallbackTps = null;
        String failed = null;
        String processed = null;
        int aborted = 0;
        boolean runAborted = false;
        for (String line : lines) {
            String[] f = line.trim().split("\\s+");
            if (line.startsWith("tps = ")) {
                // pgbench 13 and older print two tps lines; "excluding connections establishing" is
                // ours.
                if (tps == null
                        && line.contains("excluding connections establishing")
                        && f.length > 2) {
                    tps = f[2];
                }
                if (fallbackTps == null
                        && !line.contains("including connections establishing")
                        && f.length > 2) {
                    fallbackTps = f[2];
                }
            }
            if (failed == null
                    && line.startsWith("number of failed transactions:")
                    && f.length > 4) {
                failed = f[4];
            }
            if (processed == null
                    && line.startsWith("number of transactions actually processed:")
                    && f.length > 5) {
                processed = f[5].split("/", -1)[0];
            }
            if (line.contains("aborted in command")) {
                aborted++;
            }
            if (line.contains("Run was aborted")) {
                runAborted = true;
            }
        }
        return new PgbenchOutput(
                tps != null ? tps : fallbackTps, failed, processed, aborted, runAborted);
    }

    long processedCount() {
        return processed == null || !processed.matches("[0-9]+") ? 0 : Long.parseLong(processed);
    }

    /** processed / tps: the measured window, connection phase excluded. */
    String window() {
        double t = NumFmt.parse(tps);
        return t > 0 ? NumFmt.fixed(NumFmt.parse(processed) / t, 1) : "0";
    }

    /** pgbench's "latency average = X ms": the mean when there is no per-transaction log. */
    static String latencyAverage(List<String> lines) {
        for (String line : lines) {
            if (line.startsWith("latency average = ")) {
                String[] f = line.trim().split("\\s+");
                return f.length > 3 ? f[3] : "";
            }
        }
        return "";
    }
}
