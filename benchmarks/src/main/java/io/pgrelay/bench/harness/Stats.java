package io.pgrelay.bench.harness;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/** Median, range and nearest-rank percentiles, computed the way the shell version did. */
final class Stats {
    private Stats() {}

    /**
     * Median, min and max of numbers given as text. The values stay text where the shell version
     * passed awk's input through unchanged (min, max, the median of an odd count), and become awk's
     * {@code %.6g} rendering where awk computed them (the mean of the middle two of an even count).
     */
    record Median(String median, String min, String max) {}

    static Median med3(List<String> values) {
        if (values.isEmpty()) {
            return null;
        }
        List<String> sorted = new ArrayList<>(values);
        sorted.sort(Comparator.comparingDouble(NumFmt::parse));
        int n = sorted.size();
        String median;
        if (n % 2 == 1) {
            median = sorted.get(n / 2);
        } else {
            double a = NumFmt.parse(sorted.get(n / 2 - 1));
            double b = NumFmt.parse(sorted.get(n / 2));
            median = NumFmt.awk((a + b) / 2);
        }
        return new Median(median, sorted.get(0), sorted.get(n - 1));
    }

    /** The 1-based nearest rank of a percentile: ceil(n * pct / 100). */
    static long nearestRank(long n, int percent) {
        return (n * percent + 99) / 100;
    }
}
