package io.pgrelay.bench;

import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.pgrelay.health.LatencyHistograms;
import io.pgrelay.health.Metrics;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What a transaction's metrics cost on the event loop: one {@code Timer.record} into a timer built
 * as pgrelay builds its per-transaction timers ({@link Metrics#timer}: a Prometheus percentile
 * histogram with service-level buckets), and one {@link System#nanoTime()} read. pgrelay records
 * recorded three such timers (transaction, query, wait) per transaction and reads the clock a few
 * times; {@code histogramRecord} is what it records into now ({@link LatencyHistograms}: counters
 * per thread). The {@code Contended} variants run on 2 threads, as pgrelay's two event loops.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
@State(Scope.Benchmark)
public class MetricsBenchmark {

    private Metrics metrics;
    private Timer timer;
    private LatencyHistograms.Histogram histogram;
    private long value;

    @Setup
    public void setUp() {
        metrics = Metrics.create();
        timer =
                Metrics.timer(
                        metrics.registry(),
                        "bench.transactions",
                        "benchmark",
                        Tags.of("role", "x"));
        histogram =
                metrics.latencyHistograms("bench.queries", "benchmark")
                        .histogram(Tags.of("role", "x"));
    }

    @TearDown
    public void tearDown() {
        metrics.close();
    }

    @Benchmark
    @Threads(1)
    public void record() {
        value = (value + 7919) & 0xFFFFF; // 0 to 1 ms, spread over the buckets
        timer.record(50_000 + value, TimeUnit.NANOSECONDS);
    }

    @Benchmark
    @Threads(2)
    public void recordContended() {
        timer.record(80_000, TimeUnit.NANOSECONDS);
    }

    /** The same values into what pgrelay records per transaction now: per-thread counters. */
    @Benchmark
    @Threads(1)
    public void histogramRecord() {
        value = (value + 7919) & 0xFFFFF;
        histogram.record(50_000 + value, value);
    }

    @Benchmark
    @Threads(2)
    public void histogramRecordContended() {
        histogram.record(80_000, 0);
    }

    @Benchmark
    @Threads(1)
    public long nanoTime() {
        return System.nanoTime();
    }
}
