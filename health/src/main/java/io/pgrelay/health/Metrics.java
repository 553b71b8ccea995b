package io.pgrelay.health;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.FileDescriptorMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.time.Duration;
import java.util.Objects;

/**
 * The process's one meter registry, with JVM and process metrics bound.
 *
 * <p>Naming: pgrelay's own meters are named in Micrometer's dotted form with a {@value #PREFIX}
 * prefix and a base unit left to the meter type, e.g. {@code pgrelay.pool.acquire} (a timer),
 * {@code pgrelay.client.connections} (a gauge), {@code pgrelay.server.errors} (a counter). The
 * Prometheus naming convention turns these into {@code pgrelay_pool_acquire_seconds_bucket}, {@code
 * pgrelay_client_connections}, {@code pgrelay_server_errors_total}. Variable parts (pool, database,
 * user, backend) are tags, never part of the name; every meter gets a description, which becomes
 * its {@code # HELP} line.
 *
 * <p>Closing releases the GC notification listeners {@link JvmGcMetrics} installs and closes the
 * registry.
 */
public final class Metrics implements AutoCloseable {

    public static final String PREFIX = "pgrelay.";

    // Service-level buckets from 100 µs (a pooled lease with an idle connection) to 30 s (a
    // client stuck behind a full pool); they give histogram_quantile fixed, readable edges on
    // top of Micrometer's percentile buckets.
    private static final Duration[] LATENCY_BUCKETS = {
        Duration.ofNanos(100_000), Duration.ofNanos(250_000), Duration.ofNanos(500_000),
        Duration.ofMillis(1), Duration.ofNanos(2_500_000), Duration.ofMillis(5),
        Duration.ofMillis(10), Duration.ofMillis(25), Duration.ofMillis(50),
        Duration.ofMillis(100), Duration.ofMillis(250), Duration.ofMillis(500),
        Duration.ofSeconds(1), Duration.ofMillis(2500), Duration.ofSeconds(5),
        Duration.ofSeconds(10), Duration.ofSeconds(30),
    };
    private static final Duration MIN_EXPECTED_LATENCY = Duration.ofNanos(100_000);
    private static final Duration MAX_EXPECTED_LATENCY = Duration.ofSeconds(60);

    private final PrometheusMeterRegistry registry;
    private final JvmGcMetrics gcMetrics;
    private final Tags commonTags;

    private Metrics(PrometheusMeterRegistry registry, JvmGcMetrics gcMetrics, Tags commonTags) {
        this.registry = registry;
        this.gcMetrics = gcMetrics;
        this.commonTags = commonTags;
    }

    public static Metrics create() {
        return create(Tags.empty());
    }

    /**
     * {@code commonTags} (e.g. {@code instance}, {@code cluster}) go on every meter, JVM ones
     * included.
     */
    public static Metrics create(Tags commonTags) {
        Objects.requireNonNull(commonTags, "commonTags");
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        // Common tags apply only to meters registered afterwards, so they go before any binder.
        registry.config().commonTags(commonTags);
        new JvmMemoryMetrics().bindTo(registry);
        JvmGcMetrics gcMetrics = new JvmGcMetrics();
        gcMetrics.bindTo(registry);
        new JvmThreadMetrics().bindTo(registry);
        new ClassLoaderMetrics().bindTo(registry);
        new ProcessorMetrics().bindTo(registry);
        new UptimeMetrics().bindTo(registry);
        new FileDescriptorMetrics().bindTo(registry);
        return new Metrics(registry, gcMetrics, commonTags);
    }

    public PrometheusMeterRegistry registry() {
        return registry;
    }

    /**
     * A latency timer with a percentile histogram published (so p50/p99 come from {@code
     * histogram_quantile} over {@code _bucket} series, aggregatable across instances) and the fixed
     * buckets above. Use it for every pgrelay latency so dashboards can treat them alike. Each
     * timer costs about a hundred series per tag combination; keep tags low-cardinality.
     */
    public static Timer timer(MeterRegistry registry, String name, String description, Tags tags) {
        return Timer.builder(name)
                .description(description)
                .tags(tags)
                .publishPercentileHistogram()
                .serviceLevelObjectives(LATENCY_BUCKETS)
                .minimumExpectedValue(MIN_EXPECTED_LATENCY)
                .maximumExpectedValue(MAX_EXPECTED_LATENCY)
                .register(registry);
    }

    /**
     * {@link #timer}'s histogram and maximum under the same names, bounds and meaning, for values
     * recorded on every transaction by the event loops: each thread records into counters of its
     * own, without atomic read-modify-writes, summed at scrape time. Create each family once.
     */
    public LatencyHistograms latencyHistograms(String name, String description) {
        LatencyHistograms family =
                new LatencyHistograms(
                        name,
                        description,
                        commonTags,
                        LatencyHistograms.timerBuckets(
                                LATENCY_BUCKETS, MIN_EXPECTED_LATENCY, MAX_EXPECTED_LATENCY));
        registry.getPrometheusRegistry().register(family);
        return family;
    }

    @Override
    public void close() {
        gcMetrics.close();
        registry.close();
    }
}
