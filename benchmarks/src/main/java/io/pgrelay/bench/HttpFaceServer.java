package io.pgrelay.bench;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Tags;
import io.pgrelay.health.Health;
import io.pgrelay.health.HealthServer;
import io.pgrelay.health.Metrics;
import io.pgrelay.health.StatusPage;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * pgrelay's HTTP face alone, with a registry shaped like a proxy's with many pools, for {@link
 * HttpScrapeLoad}. Uses only the six-argument {@code HealthServer.start}, so the same file runs
 * against older versions of the health module:
 *
 * <pre>
 * java -cp HEALTH_CLASSES:DEPENDENCIES benchmarks/src/main/java/io/pgrelay/bench/HttpFaceServer.java port [pools]
 * </pre>
 *
 * Serves until killed. Default 50 pools: per pool ten counters and gauges like ProxyMetrics'
 * per-pool meters, three latency histograms per role, and the JVM and process meters of {@link
 * Metrics}.
 */
public final class HttpFaceServer {

    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        int pools = args.length > 1 ? Integer.parseInt(args[1]) : 50;
        Metrics metrics = Metrics.create();
        List<List<String>> rows = new ArrayList<>();
        for (int i = 0; i < pools; i++) {
            Tags tags =
                    Tags.of(
                            "database",
                            "db" + i,
                            "user",
                            "app",
                            "role",
                            i % 2 == 0 ? "primary" : "replica");
            for (String name :
                    List.of(
                            "transactions",
                            "queries",
                            "received.bytes",
                            "sent.bytes",
                            "server.assignments",
                            "server.connects")) {
                Counter.builder("pgrelay.pool." + name)
                        .description(name)
                        .tags(tags)
                        .register(metrics.registry())
                        .increment(i * 10.0);
            }
            int n = i;
            for (String name : List.of("waiting.clients", "max.wait.seconds", "active", "idle")) {
                Gauge.builder("pgrelay.pool." + name, () -> n)
                        .description(name)
                        .tags(tags)
                        .register(metrics.registry());
            }
            rows.add(List.of("db" + i, "app", String.valueOf(i), String.valueOf(2 * i)));
        }
        // Histograms are per role only, as in ProxyMetrics.
        for (String role : List.of("primary", "replica")) {
            for (String name :
                    List.of("pgrelay.transactions", "pgrelay.queries", "pgrelay.client.wait")) {
                Metrics.timer(metrics.registry(), name, name, Tags.of("role", role))
                        .record(Duration.ofMillis(3));
            }
        }
        List<StatusPage.Section> sections =
                List.of(
                        new StatusPage.Section(
                                "Pools", List.of("database", "user", "active", "idle"), rows));
        HealthServer server =
                HealthServer.start(
                        "127.0.0.1",
                        port,
                        metrics.registry(),
                        Health::up,
                        Health::up,
                        () -> sections);
        System.out.println(
                "listening on "
                        + server.port()
                        + ", "
                        + metrics.registry().scrape().length()
                        + " bytes per scrape");
        Thread.sleep(Long.MAX_VALUE);
    }
}
