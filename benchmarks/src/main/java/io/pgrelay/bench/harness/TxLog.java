package io.pgrelay.bench.harness;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

/**
 * Latency from pgbench's per-transaction logs ({@code --log}): pgbench's own summary has only the
 * mean, and the tables want the p99 over every transaction of a run, across all its threads.
 */
final class TxLog {
    private TxLog() {}

    /** count, mean, p50, p99 and max in ms as the shell version printed them ("-" without data). */
    record Summary(long count, String mean, String p50, String p99, String max) {
        static final Summary EMPTY = new Summary(0, "-", "-", "-", "-");

        String line() {
            return count + " " + mean + " " + p50 + " " + p99 + " " + max;
        }
    }

    /** The files {@code <prefix>.<pid>[.<thread>]} pgbench wrote. */
    static List<Path> files(Path prefix) throws IOException {
        String name = prefix.getFileName() + ".";
        try (Stream<Path> s = Files.list(prefix.getParent())) {
            return s.filter(p -> p.getFileName().toString().startsWith(name)).sorted().toList();
        }
    }

    static Summary read(List<Path> files) throws IOException {
        long[] values = new long[1024];
        int n = 0;
        for (Path f : files) {
            try (BufferedReader r = Files.newBufferedReader(f, StandardCharsets.ISO_8859_1)) {
                for (String line; (line = r.readLine()) != null; ) {
                    Long latency = latencyField(line);
                    if (latency != null) {
                        if (n == values.length) {
                            values = Arrays.copyOf(values, n * 2);
                        }
                        values[n++] = latency;
                    }
                }
            }
        }
        return summarize(Arrays.copyOf(values, n));
    }

    /** Field 3 (latency in µs) of a log line; failed or skipped transactions have a word there. */
    static Long latencyField(String line) {
        String[] f = line.trim().split("\\s+");
        if (f.length < 3 || !f[2].matches("[0-9]+")) {
            return null;
        }
        return Long.parseLong(f[2]);
    }

    /** Nearest-rank percentiles over the latencies (µs), reported in ms. */
    static Summary summarize(long[] latencies) {
        int n = latencies.length;
        if (n == 0) {
            return Summary.EMPTY;
        }
        long[] sorted = latencies.clone();
        Arrays.sort(sorted);
        double sum = 0;
        for (long v : sorted) {
            sum += v;
        }
        // The shell version passed the sum through "%.0f" before dividing.
        sum = Double.parseDouble(NumFmt.fixed(sum, 0));
        long p50 = sorted[(int) Stats.nearestRank(n, 50) - 1];
        long p99 = sorted[(int) Stats.nearestRank(n, 99) - 1];
        long max = sorted[n - 1];
        return new Summary(
                n,
                NumFmt.fixed(sum / n / 1000, 3),
                NumFmt.fixed(p50 / 1000.0, 3),
                NumFmt.fixed(p99 / 1000.0, 3),
                NumFmt.fixed(max / 1000.0, 3));
    }
}
