package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.pgrelay.testkit.Await;
import io.pgrelay.testkit.FreePorts;
import io.pgrelay.testkit.Proc;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Real monitoring tools against pgrelay: Debian's prometheus-pgbouncer-exporter on the console, a
 * real Prometheus scraping /metrics (with the example config from conf/monitoring), and the status
 * page in headless Chromium. Skipped where a tool is not installed (.ci/run installs them).
 */
class MonitoringToolsTest {

    @RegisterExtension
    static final RelayExtension servers =
            RelayExtension.postgres()
                    .withRelay(
                            relay ->
                                    relay.set("admin.admin_users", List.of("postgres"))
                                            .set("admin.http_port", FreePorts.next()));

    static Path work;

    @BeforeAll
    static void start() throws Exception {
        work = Files.createTempDirectory("pgrelay-monitoring");
        try (Connection c = servers.relay().app()) {
            for (int i = 0; i < 50; i++) {
                one(c, "select " + i);
            }
        }
    }

    private static boolean installed(String binary) {
        return Files.isExecutable(Path.of("/usr/bin", binary));
    }

    private static String get(int port, String path) throws Exception {
        return HttpClient.newHttpClient()
                .send(
                        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                                .timeout(Duration.ofSeconds(10))
                                .build(),
                        HttpResponse.BodyHandlers.ofString())
                .body();
    }

    private static Process spawn(Path log, String... command) throws Exception {
        return new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .start();
    }

    @Test
    void debianPgBouncerExporterScrapesTheConsole() throws Exception {
        assumeTrue(
                installed("prometheus-pgbouncer-exporter"),
                "prometheus-pgbouncer-exporter not installed");
        int port = FreePorts.next();
        ProcessBuilder pb =
                new ProcessBuilder(
                        "prometheus-pgbouncer-exporter",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        String.valueOf(port),
                        "--pgbouncer-host",
                        "127.0.0.1",
                        "--pgbouncer-port",
                        String.valueOf(servers.relay().writePort()),
                        "--pgbouncer-user",
                        "postgres");
        pb.environment().put("PGPASSWORD", "postgres");
        pb.environment().remove("CONFIG");
        Path log = work.resolve("exporter.log");
        pb.redirectErrorStream(true).redirectOutput(log.toFile());
        Process exporter = pb.start();
        try {
            String[] metrics = new String[1];
            Await.until(
                    "exporter serves pgbouncer metrics",
                    Duration.ofSeconds(30),
                    () -> {
                        try {
                            metrics[0] = get(port, "/metrics");
                            return metrics[0].contains(
                                    "pgbouncer_requests_total{database=\"appdb\"}");
                        } catch (Exception e) {
                            return false;
                        }
                    });
            for (String expected :
                    new String[] {
                        "pgbouncer_active_clients{database=\"appdb\",user=\"app\"}",
                        "pgbouncer_pool_size{database=\"appdb\"}",
                        "pgbouncer_used_clients",
                        "pgbouncer_free_servers"
                    }) {
                assertTrue(metrics[0].contains(expected), "missing " + expected);
            }
            String output = Files.readString(log);
            assertTrue(!output.contains("Traceback") && !output.contains("ERROR"), output);
            System.out.println(
                    "MonitoringToolsTest: exporter metrics:\n"
                            + metrics[0]
                                    .lines()
                                    .filter(l -> l.startsWith("pgbouncer_"))
                                    .reduce("", (a, b) -> a + b + "\n"));
        } finally {
            exporter.destroyForcibly().waitFor();
        }
    }

    @Test
    void prometheusScrapesAndAHistogramQueryAnswers() throws Exception {
        assumeTrue(installed("prometheus"), "prometheus not installed");
        int port = FreePorts.next();
        String example =
                Files.readString(
                        Path.of(System.getProperty("user.dir"))
                                .getParent()
                                .resolve("conf/monitoring/prometheus.yml"));
        Path config = work.resolve("prometheus.yml");
        Files.writeString(
                config,
                example.replace("scrape_interval: 15s", "scrape_interval: 1s")
                        .replace(
                                "127.0.0.1:7000",
                                "127.0.0.1:" + servers.relay().relay().httpPort()));
        Process prometheus =
                spawn(
                        work.resolve("prometheus.log"),
                        "prometheus",
                        "--config.file=" + config,
                        "--storage.tsdb.path=" + work.resolve("tsdb"),
                        "--web.listen-address=127.0.0.1:" + port);
        AtomicBoolean load = new AtomicBoolean(true);
        Thread traffic =
                new Thread(
                        () -> {
                            try (Connection c = servers.relay().app()) {
                                while (load.get()) {
                                    one(c, "select 1");
                                    Thread.sleep(10);
                                }
                            } catch (Exception ignored) {
                                // the test decides
                            }
                        });
        traffic.start();
        try {
            String query =
                    "histogram_quantile(0.99, sum by (le) (rate(pgrelay_transactions_seconds_bucket[15s])))";
            String[] answer = new String[1];
            Await.until(
                    "Prometheus answers a histogram query",
                    Duration.ofSeconds(60),
                    () -> {
                        try {
                            answer[0] =
                                    get(
                                            port,
                                            "/api/v1/query?query="
                                                    + URLEncoder.encode(
                                                            query, StandardCharsets.UTF_8));
                            return answer[0].contains("\"status\":\"success\"")
                                    && answer[0].contains("\"value\":[")
                                    && !answer[0].contains("\"NaN\"");
                        } catch (Exception e) {
                            return false;
                        }
                    });
            System.out.println("MonitoringToolsTest: Prometheus: " + answer[0]);
            String targets = get(port, "/api/v1/targets");
            assertTrue(targets.contains("\"health\":\"up\""), targets);
        } finally {
            load.set(false);
            traffic.join();
            prometheus.destroy();
            prometheus.waitFor();
        }
    }

    @Test
    void statusPageRendersInHeadlessChromium() throws Exception {
        assumeTrue(installed("chromium"), "chromium not installed");
        Path shot = Path.of("target", "status-page.png").toAbsolutePath();
        Files.createDirectories(shot.getParent());
        String url = "http://127.0.0.1:" + servers.relay().relay().httpPort() + "/";
        List<String> flags =
                List.of(
                        "--headless",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-background-networking",
                        "--disable-component-update",
                        "--disable-sync",
                        "--no-first-run",
                        "--user-data-dir=" + work.resolve("chromium"));
        List<String> dump = new java.util.ArrayList<>(List.of("chromium"));
        dump.addAll(flags);
        dump.add("--dump-dom");
        dump.add(url);
        String dom = Proc.of(dump).timeout(Duration.ofSeconds(60)).check().stdout();
        assertTrue(dom.contains(servers.primary().hostPort()), dom);
        assertTrue(dom.contains("primary"), dom);
        List<String> screenshot = new java.util.ArrayList<>(List.of("chromium"));
        screenshot.addAll(flags);
        screenshot.add("--window-size=1280,1000");
        screenshot.add("--screenshot=" + shot);
        screenshot.add(url);
        Proc.of(screenshot).timeout(Duration.ofSeconds(60)).check();
        assertTrue(Files.size(shot) > 1000, "screenshot " + shot);
        System.out.println("MonitoringToolsTest: status page screenshot at " + shot);
    }
}
