package io.pgrelay.health;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Tags;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class HealthServerTest {

    private final HttpClient http =
            HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    private final AtomicReference<Health> liveness = new AtomicReference<>(Health.up());
    private final AtomicReference<Health> readiness =
            new AtomicReference<>(
                    Health.notReady("listeners not bound", "no confirmed writable primary"));
    private final AtomicReference<List<StatusPage.Section>> sections =
            new AtomicReference<>(List.of());
    private Metrics metrics;
    private HealthServer server;

    @BeforeEach
    void start() throws IOException {
        metrics = Metrics.create();
        server = startWith(liveness::get, readiness::get, sections::get);
    }

    @AfterEach
    void stop() {
        server.close();
        metrics.close();
    }

    private HealthServer startWith(
            Supplier<Health> live,
            Supplier<Health> ready,
            Supplier<List<StatusPage.Section>> status)
            throws IOException {
        return HealthServer.start("127.0.0.1", 0, metrics.registry(), live, ready, status);
    }

    @Test
    void metricsRenderOwnCountersTimersAndJvmMetricsInPrometheusText() throws Exception {
        Counter.builder("pgrelay.test")
                .description("test counter")
                .register(metrics.registry())
                .increment(3);
        Metrics.timer(
                        metrics.registry(),
                        "pgrelay.test.latency",
                        "test timer",
                        Tags.of("pool", "app"))
                .record(Duration.ofMillis(3));

        HttpResponse<String> response = get("/metrics");

        assertEquals(200, response.statusCode());
        assertEquals(
                HealthServer.PROMETHEUS_TEXT,
                response.headers().firstValue("Content-Type").orElseThrow());
        String body = response.body();
        assertTrue(body.contains("# HELP pgrelay_test_total test counter"), body);
        assertTrue(body.contains("pgrelay_test_total 3.0"), body);
        assertTrue(body.contains("jvm_memory_used_bytes{"), body);
        assertTrue(body.contains("process_uptime_seconds"), body);
        assertTrue(
                body.contains("pgrelay_test_latency_seconds_bucket{pool=\"app\",le=\"0.0025\"} 0"),
                body);
        assertTrue(
                body.contains("pgrelay_test_latency_seconds_bucket{pool=\"app\",le=\"0.005\"} 1"),
                body);
        assertTrue(
                body.contains("pgrelay_test_latency_seconds_bucket{pool=\"app\",le=\"+Inf\"} 1"),
                body);
        assertTrue(body.contains("pgrelay_test_latency_seconds_count{pool=\"app\"} 1"), body);
    }

    @Test
    void metricsAnswerOpenMetricsWhenTheScraperAsksForIt() throws Exception {
        HttpResponse<String> response =
                http.send(
                        request("/metrics")
                                .header(
                                        "Accept",
                                        "application/openmetrics-text;version=1.0.0;q=0.6,text/plain;q=0.3")
                                .build(),
                        HttpResponse.BodyHandlers.ofString());

        assertEquals(200, response.statusCode());
        assertEquals(
                HealthServer.OPENMETRICS_TEXT,
                response.headers().firstValue("Content-Type").orElseThrow());
        assertTrue(response.body().endsWith("# EOF\n"), response.body());
    }

    @Test
    void commonTagsReachJvmMetrics() throws Exception {
        try (Metrics tagged = Metrics.create(Tags.of("instance", "relay-1"))) {
            String body = tagged.registry().scrape();
            assertTrue(body.contains("jvm_memory_used_bytes{area=\"heap\",id="), body);
            assertTrue(body.contains("instance=\"relay-1\""), body);
        }
    }

    @Test
    void healthIsUpWhileTheCheckSaysSo() throws Exception {
        HttpResponse<String> response = get("/health");

        assertEquals(200, response.statusCode());
        assertEquals(
                "application/json", response.headers().firstValue("Content-Type").orElseThrow());
        assertEquals("{\"status\":\"UP\"}", response.body());
    }

    @Test
    void healthIs503WithTheReasonWhenDown() throws Exception {
        liveness.set(Health.down("event loop \"boss\" stalled"));

        HttpResponse<String> response = get("/health");

        assertEquals(503, response.statusCode());
        assertEquals(
                "{\"status\":\"DOWN\",\"reasons\":[\"event loop \\\"boss\\\" stalled\"]}",
                response.body());
    }

    @Test
    void readyListsReasonsUntilReadyThenAnswers200() throws Exception {
        HttpResponse<String> notReady = get("/ready");
        assertEquals(503, notReady.statusCode());
        assertEquals(
                "{\"status\":\"NOT_READY\",\"reasons\":"
                        + "[\"listeners not bound\",\"no confirmed writable primary\"]}",
                notReady.body());

        readiness.set(Health.readiness(List.of()));
        HttpResponse<String> ready = get("/ready");
        assertEquals(200, ready.statusCode());
        assertEquals("{\"status\":\"UP\"}", ready.body());
    }

    @Test
    void readyDrainsOnceShutdownBeginsWhileLivenessStaysUp() throws Exception {
        readiness.set(Health.up());
        server.beginShutdown();

        HttpResponse<String> ready = get("/ready");
        assertEquals(503, ready.statusCode());
        assertEquals("{\"status\":\"SHUTTING_DOWN\"}", ready.body());
        assertEquals(200, get("/health").statusCode());
    }

    @Test
    void statusPageRendersSectionsEscaped() throws Exception {
        readiness.set(Health.up());
        sections.set(
                List.of(
                        new StatusPage.Section(
                                "Pools",
                                List.of("database", "user", "active", "idle"),
                                List.of(
                                        List.of("app<db>", "bob & \"alice\"", "3", "7"),
                                        List.of("reports"))),
                        new StatusPage.Section(
                                "Backends",
                                List.of("member", "role", "lag"),
                                List.of(List.of("<script>alert('x')</script>", "leader", "0")))));

        for (String path : List.of("/", "/status")) {
            HttpResponse<String> response = get(path);
            assertEquals(200, response.statusCode());
            assertEquals(
                    "text/html; charset=utf-8",
                    response.headers().firstValue("Content-Type").orElseThrow());
            String html = response.body();
            assertTrue(html.contains("<meta http-equiv=\"refresh\" content=\"5\">"), html);
            assertTrue(html.contains("<h2>Pools</h2>"), html);
            assertTrue(
                    html.contains("<th>database</th><th>user</th><th>active</th><th>idle</th>"),
                    html);
            assertTrue(
                    html.contains("<td>app&lt;db&gt;</td><td>bob &amp; &quot;alice&quot;</td>"),
                    html);
            assertTrue(html.contains("<td class=\"n\">3</td>"), html);
            assertTrue(html.contains("<tr><td>reports</td><td></td><td></td><td></td></tr>"), html);
            assertTrue(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"), html);
            assertFalse(html.contains("<script>"), html);
        }
    }

    @Test
    void headAnswersEveryEndpointWithoutABody() throws Exception {
        for (String path : List.of("/", "/status", "/metrics", "/health", "/ready")) {
            HttpResponse<String> head =
                    http.send(
                            request(path)
                                    .method("HEAD", HttpRequest.BodyPublishers.noBody())
                                    .build(),
                            HttpResponse.BodyHandlers.ofString());
            assertEquals(path.equals("/ready") ? 503 : 200, head.statusCode(), path);
            assertEquals("", head.body(), path);
            assertTrue(head.headers().firstValue("Content-Type").isPresent(), path);
        }
        HttpResponse<String> head =
                http.send(
                        request("/health")
                                .method("HEAD", HttpRequest.BodyPublishers.noBody())
                                .build(),
                        HttpResponse.BodyHandlers.ofString());
        assertEquals("15", head.headers().firstValue("Content-Length").orElseThrow());
    }

    @Test
    void unknownPathIs404AndOtherMethodsAre405() throws Exception {
        assertEquals(404, get("/nope").statusCode());
        assertEquals(404, get("/metrics/extra").statusCode());

        HttpResponse<String> post =
                http.send(
                        request("/health").POST(HttpRequest.BodyPublishers.ofString("x")).build(),
                        HttpResponse.BodyHandlers.ofString());
        assertEquals(405, post.statusCode());
        assertEquals("GET, HEAD", post.headers().firstValue("Allow").orElseThrow());
        HttpResponse<String> delete =
                http.send(request("/").DELETE().build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(405, delete.statusCode());
    }

    @Test
    void throwingSuppliersAnswer503WithTheMessage() throws Exception {
        Supplier<Health> brokenCheck =
                () -> {
                    throw new IllegalStateException("topology source unreachable");
                };
        Supplier<List<StatusPage.Section>> brokenStatus =
                () -> {
                    throw new IllegalStateException("pool <stats> unavailable");
                };
        try (HealthServer broken = startWith(brokenCheck, brokenCheck, brokenStatus)) {
            String expected =
                    "{\"status\":\"DOWN\",\"reasons\":[\"IllegalStateException: topology source unreachable\"]}";
            HttpResponse<String> health = get(broken, "/health");
            assertEquals(503, health.statusCode());
            assertEquals(expected, health.body());
            HttpResponse<String> ready = get(broken, "/ready");
            assertEquals(503, ready.statusCode());
            assertEquals(expected, ready.body());
            HttpResponse<String> status = get(broken, "/status");
            assertEquals(503, status.statusCode());
            assertTrue(
                    status.body().contains("IllegalStateException: pool &lt;stats&gt; unavailable"),
                    status.body());
        }
    }

    @Test
    void nullFromASupplierIsDownNotAnError() throws Exception {
        try (HealthServer server = startWith(() -> null, Health::up, List::of)) {
            HttpResponse<String> health = get(server, "/health");
            assertEquals(503, health.statusCode());
            assertEquals(
                    "{\"status\":\"DOWN\",\"reasons\":[\"health check returned null\"]}",
                    health.body());
        }
    }

    @Test
    void closeFreesThePort() throws Exception {
        HealthServer other = startWith(Health::up, Health::up, List::of);
        int port = other.port();
        assertTrue(port > 0);
        assertEquals(200, get(other, "/health").statusCode());

        other.close();
        other.close();

        Listening.assertNothingListensOn(port);
    }

    private HttpResponse<String> get(String path) throws Exception {
        return get(server, path);
    }

    private HttpResponse<String> get(HealthServer target, String path) throws Exception {
        return http.send(request(target, path).GET().build(), HttpResponse.BodyHandlers.ofString());
    }

    private HttpRequest.Builder request(String path) {
        return request(server, path);
    }

    private static HttpRequest.Builder request(HealthServer target, String path) {
        return HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + target.port() + path))
                .timeout(Duration.ofSeconds(30));
    }
}
