package io.pgrelay.health;

import io.micrometer.core.instrument.Tag;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.distribution.DistributionStatisticConfig;
import io.netty.util.concurrent.FastThreadLocal;
import io.prometheus.metrics.model.registry.MultiCollector;
import io.prometheus.metrics.model.snapshots.ClassicHistogramBuckets;
import io.prometheus.metrics.model.snapshots.GaugeSnapshot;
import io.prometheus.metrics.model.snapshots.HistogramSnapshot;
import io.prometheus.metrics.model.snapshots.Labels;
import io.prometheus.metrics.model.snapshots.MetricSnapshots;
import io.prometheus.metrics.model.snapshots.PrometheusNaming;
import io.prometheus.metrics.model.snapshots.Unit;
import java.time.Duration;
import java.util.List;
import java.util.NavigableSet;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * One latency histogram family ({@code pgrelay_transactions_seconds} and its {@code _max}), as
 * {@link Metrics#timer} would publish it, for values recorded on every transaction by the event
 * loops: each recording thread writes counters of its own, with plain stores (no atomic
 * read-modify-write, no shared cache line), and a scrape adds them up. A Micrometer timer costs 86
 * ns per record on one thread and 423 ns with two, this 11 and 12 ns (JMH {@code
 * MetricsBenchmark}); three per transaction were a measurable part of pgrelay's CPU.
 *
 * <p>What a scrape sees is exact: the same bucket bounds as Micrometer's percentile histogram with
 * {@link Metrics}' service-level buckets, bucket counts whose {@code +Inf} is the count, the sum,
 * and a maximum over the last two minutes (Micrometer's default window: three 40-second slots). A
 * value recorded while a scrape runs is in this scrape or the next, never lost.
 *
 * <p>Single writer per counter set: a thread gets its own {@link Recorder} (a {@link
 * FastThreadLocal}, a field read on Netty's event-loop threads) the first time it records; the
 * recorders live as long as the family.
 */
public final class LatencyHistograms implements MultiCollector {

    private static final long SLOT_NANOS = Duration.ofSeconds(40).toNanos();
    private static final int SLOTS = 3;

    private final String name;
    private final String help;
    private final Labels commonLabels;
    private final long[] bounds; // upper bounds in nanoseconds, ascending; +Inf is implicit
    private final List<Histogram> histograms = new CopyOnWriteArrayList<>();

    LatencyHistograms(String name, String help, Tags commonTags, NavigableSet<Double> nanos) {
        this.name = PrometheusNaming.sanitizeMetricName(name.replace('.', '_') + "_seconds");
        this.help = help;
        this.commonLabels = labels(commonTags);
        this.bounds = nanos.stream().mapToLong(Double::longValue).toArray();
    }

    /** The bucket bounds {@link Metrics#timer} publishes, in nanoseconds. */
    static NavigableSet<Double> timerBuckets(Duration[] slos, Duration min, Duration max) {
        double[] sloNanos = new double[slos.length];
        for (int i = 0; i < slos.length; i++) {
            sloNanos[i] = slos[i].toNanos();
        }
        return DistributionStatisticConfig.builder()
                .percentilesHistogram(true)
                .serviceLevelObjectives(sloNanos)
                .minimumExpectedValue((double) min.toNanos())
                .maximumExpectedValue((double) max.toNanos())
                .build()
                .merge(DistributionStatisticConfig.DEFAULT)
                .getHistogramBuckets(true);
    }

    /** The histogram with these tags (besides the common ones); create each once, at start-up. */
    public Histogram histogram(Tags tags) {
        Histogram h = new Histogram(commonLabels.merge(labels(tags)));
        histograms.add(h);
        return h;
    }

    @Override
    public MetricSnapshots collect() {
        long epoch = Math.floorDiv(System.nanoTime(), SLOT_NANOS);
        HistogramSnapshot.Builder histogram = HistogramSnapshot.builder().name(name).help(help);
        histogram.unit(Unit.SECONDS);
        GaugeSnapshot.Builder max = GaugeSnapshot.builder().name(name + "_max").help(help);
        for (Histogram h : histograms) {
            long[] counts = new long[bounds.length + 1];
            long sum = 0;
            long maxNanos = 0;
            for (Recorder r : h.recorders) {
                sum += r.addTo(counts);
                maxNanos = Math.max(maxNanos, r.max(epoch));
            }
            ClassicHistogramBuckets.Builder buckets = ClassicHistogramBuckets.builder();
            for (int i = 0; i < counts.length; i++) {
                double le = i < bounds.length ? bounds[i] / 1e9 : Double.POSITIVE_INFINITY;
                buckets.bucket(le, counts[i]);
            }
            histogram.dataPoint(
                    HistogramSnapshot.HistogramDataPointSnapshot.builder()
                            .labels(h.labels)
                            .classicHistogramBuckets(buckets.build())
                            .sum(sum / 1e9)
                            .build());
            max.dataPoint(
                    GaugeSnapshot.GaugeDataPointSnapshot.builder()
                            .labels(h.labels)
                            .value(maxNanos / 1e9)
                            .build());
        }
        return MetricSnapshots.of(histogram.build(), max.build());
    }

    @Override
    public List<String> getPrometheusNames() {
        return List.of(name, name + "_max");
    }

    private static Labels labels(Tags tags) {
        Labels.Builder b = Labels.builder();
        for (Tag t : tags) {
            b.label(PrometheusNaming.sanitizeLabelName(t.getKey()), t.getValue());
        }
        return b.build();
    }

    /** One histogram of the family (one label set); record from any thread. */
    public final class Histogram {
        private final Labels labels;
        private final List<Recorder> recorders = new CopyOnWriteArrayList<>();
        private final FastThreadLocal<Recorder> local =
                new FastThreadLocal<>() {
                    @Override
                    protected Recorder initialValue() {
                        Recorder r = new Recorder(bounds.length);
                        recorders.add(r);
                        return r;
                    }
                };

        private Histogram(Labels labels) {
            this.labels = labels;
        }

        /** A value of {@code nanos} that ended at {@code nowNanos} ({@link System#nanoTime()}). */
        public void record(long nanos, long nowNanos) {
            local.get()
                    .record(bucket(nanos), Math.max(0, nanos), Math.floorDiv(nowNanos, SLOT_NANOS));
        }

        private int bucket(long nanos) {
            int lo = 0;
            int hi = bounds.length; // bounds.length: the +Inf bucket
            while (lo < hi) {
                int mid = (lo + hi) >>> 1;
                if (nanos <= bounds[mid]) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            return lo;
        }
    }

    /**
     * One thread's counters: written only by that thread (plain loads and ordered stores, {@code
     * lazySet}), read by scrapes. Layout of {@code cells}: per-bucket counts (not cumulative), then
     * the sum in nanoseconds, then {@value #SLOTS} (epoch, max) pairs.
     */
    static final class Recorder {
        private final AtomicLongArray cells;
        private final int sumIndex;

        Recorder(int bounds) {
            this.sumIndex = bounds + 1;
            this.cells = new AtomicLongArray(sumIndex + 1 + 2 * SLOTS);
            for (int s = 0; s < SLOTS; s++) {
                cells.set(sumIndex + 1 + 2 * s, Long.MIN_VALUE); // no epoch yet
            }
        }

        void record(int bucket, long nanos, long epoch) {
            cells.lazySet(bucket, cells.getPlain(bucket) + 1);
            cells.lazySet(sumIndex, cells.getPlain(sumIndex) + nanos);
            int slot = sumIndex + 1 + 2 * (int) Math.floorMod(epoch, SLOTS);
            if (cells.getPlain(slot) != epoch) {
                cells.lazySet(slot + 1, 0);
                cells.lazySet(slot, epoch);
            }
            if (nanos > cells.getPlain(slot + 1)) {
                cells.lazySet(slot + 1, nanos);
            }
        }

        /**
         * Adds the per-bucket counts (not cumulative: the exposition accumulates them) to {@code
         * counts}; returns the sum in nanoseconds.
         */
        long addTo(long[] counts) {
            for (int i = 0; i < counts.length; i++) {
                counts[i] += cells.get(i);
            }
            return cells.get(sumIndex);
        }

        /** The largest value recorded in the slots of the last two minutes before {@code epoch}. */
        long max(long epoch) {
            long max = 0;
            for (int s = 0; s < SLOTS; s++) {
                int slot = sumIndex + 1 + 2 * s;
                long slotEpoch = cells.get(slot);
                if (slotEpoch > epoch - SLOTS && slotEpoch <= epoch) {
                    max = Math.max(max, cells.get(slot + 1));
                }
            }
            return max;
        }
    }
}
