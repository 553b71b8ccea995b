package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.column;
import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.spi.ILoggingEvent;
import io.pgrelay.routing.Backend;
import io.pgrelay.routing.Role;
import io.pgrelay.testkit.Await;
import io.pgrelay.testkit.CapturedLogs;
import io.pgrelay.testkit.FreePorts;
import io.pgrelay.testkit.PgServer;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.postgresql.util.PSQLException;

/**
 * Pools are removed when nobody needs them: at once when the server refused their login (a hostile
 * client naming made-up databases must not grow pgrelay, its logs or /metrics), after
 * autodb_idle_timeout otherwise; per-pool series stop at admin.max_pool_metrics.
 */
class PoolCleanupTest {

    @RegisterExtension static final RelayExtension servers = RelayExtension.postgres();

    @RegisterExtension final CapturedLogs logs = new CapturedLogs();

    private static RelayFixture.Builder relay() {
        return RelayFixture.builder(servers.primary())
                .set("admin.http_port", FreePorts.next())
                .set("admin.admin_users", List.of("postgres"))
                .userlist(
                        "\"app\" \"app-secret\"\n\"postgres\" \"postgres\"\n\"ghost\" \"ghost-secret\"\n");
    }

    private static String metrics(RelayFixture relay) throws Exception {
        HttpResponse<String> r =
                HttpClient.newHttpClient()
                        .send(
                                HttpRequest.newBuilder(
                                                URI.create(
                                                        "http://127.0.0.1:"
                                                                + relay.relay().httpPort()
                                                                + "/metrics"))
                                        .build(),
                                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, r.statusCode());
        return r.body();
    }

    /** database/user of every pool with per-pool series in /metrics. */
    private static Set<String> meteredPools(String metrics) {
        Set<String> pools = new TreeSet<>();
        Matcher m =
                Pattern.compile(
                                "^pgrelay_pool_transactions_total\\{[^}]*database=\"([^\"]*)\"[^}]*user=\"([^\"]*)\"",
                                Pattern.MULTILINE)
                        .matcher(metrics);
        while (m.find()) {
            pools.add(m.group(1) + "/" + m.group(2));
        }
        return pools;
    }

    private static double gauge(String metrics, String name) {
        Matcher m = Pattern.compile("^" + name + " (\\S+)$", Pattern.MULTILINE).matcher(metrics);
        assertTrue(m.find(), "no " + name + " in /metrics");
        return Double.parseDouble(m.group(1));
    }

    private static List<String> showPools(RelayFixture relay) throws SQLException {
        try (Connection console =
                relay.connect(relay.writePort(), "pgbouncer", "postgres", "postgres", Map.of())) {
            return column(console, "SHOW POOLS").stream().sorted().toList();
        }
    }

    /** pgjdbc login to {@code database} (any characters: the URL carries it encoded). */
    private static Connection login(
            RelayFixture relay, String database, String user, String password) throws SQLException {
        Properties p = new Properties();
        p.setProperty("user", user);
        p.setProperty("password", password);
        p.setProperty("connectTimeout", "10");
        p.setProperty("prepareThreshold", "0");
        return DriverManager.getConnection(
                "jdbc:postgresql://127.0.0.1:"
                        + relay.writePort()
                        + "/"
                        + URLEncoder.encode(database, StandardCharsets.UTF_8).replace("+", "%20"),
                p);
    }

    @Test
    void refusedDatabasesAndUsersLeaveNoPoolSeriesOrRawLogLine() throws Exception {
        try (RelayFixture relay = relay().start();
                Connection app = relay.app()) {
            assertEquals("1", one(app, "select 1"));
            int poolsBefore = relay.relay().pools().all().size();
            List<String> showPoolsBefore = showPools(relay);
            assertEquals(List.of("appdb"), showPoolsBefore);

            for (int i = 0; i < 50; i++) {
                // Plain names, 3,000-character names, and names that would forge a log line or
                // drive a terminal if logged raw.
                String db =
                        switch (i % 3) {
                            case 0 -> "nodb_" + i;
                            case 1 -> "nodb_" + i + "_" + "x".repeat(3000);
                            default -> "nodb_" + i + "\nFORGED 00:00:00 ERROR \u001b[31m\u202e";
                        };
                PSQLException e =
                        assertThrows(
                                PSQLException.class,
                                () -> login(relay, db, "app", "app-secret").close());
                assertEquals("3D000", e.getSQLState(), e.getMessage());
            }
            // Users pgrelay knows but PostgreSQL does not: 28P01 from the server.
            for (int i = 0; i < 5; i++) {
                PSQLException e =
                        assertThrows(
                                PSQLException.class,
                                () ->
                                        login(relay, PgServer.APP_DB, "ghost", "ghost-secret")
                                                .close());
                assertEquals("28P01", e.getSQLState(), e.getMessage());
            }

            Await.until(
                    "the refused pools to be removed",
                    Duration.ofSeconds(10),
                    () -> relay.relay().pools().all().size() == poolsBefore);
            assertEquals(showPoolsBefore, showPools(relay));
            String metrics = metrics(relay);
            assertFalse(metrics.contains("nodb_"), "series of a refused database left in /metrics");
            assertFalse(
                    metrics.contains("user=\"ghost\""),
                    "series of a refused user left in /metrics");
            assertEquals(Set.of("appdb/app"), meteredPools(metrics));
            assertEquals(1.0, gauge(metrics, "pgrelay_pools"));
            // The client that was there all along is unaffected.
            assertEquals("1", one(app, "select 1"));

            List<String> lines =
                    logs.events().stream().map(ILoggingEvent::getFormattedMessage).toList();
            assertTrue(
                    lines.stream()
                            .anyMatch(l -> l.contains("new pool: database \"nodb_2\\nFORGED")),
                    "escaped");
            for (String line : lines) {
                assertFalse(
                        line.contains("\n") || line.contains("\u001b") || line.contains("\u202e"),
                        "raw control character in a log line: " + line);
                assertFalse(line.contains("x".repeat(65)), "uncut name in a log line: " + line);
                assertTrue(
                        line.length() < 1000,
                        "log line of " + line.length() + " characters: " + line);
            }
        }
    }

    @Test
    void unreachableServersDoNotRemoveThePool() throws Exception {
        int closedPort = FreePorts.next();
        try (RelayFixture relay =
                relay().set("backends.primary", "127.0.0.1:" + closedPort).start()) {
            PSQLException e = assertThrows(PSQLException.class, () -> relay.app().close());
            assertTrue(e.getSQLState().startsWith("08"), e.getSQLState() + " " + e.getMessage());
            Thread.sleep(500); // five janitor rounds
            assertEquals(
                    1,
                    relay.relay().pools().all().size(),
                    "a connection failure is transient: pool kept");
        }
    }

    @Test
    void idlePoolsAreRemovedAfterAutodbIdleTimeoutButNotWhileAClientIsHome() throws Exception {
        try (RelayFixture relay =
                relay().set("pool.autodb_idle_timeout", "1s")
                        .set("pool.server_idle_timeout", "1s")
                        .start()) {
            ServerPool first;
            String backendSeries =
                    "pgrelay_backend_down{backend=\"" + servers.primary().hostPort() + "\"} 0.0";
            try (Connection c = relay.app()) {
                assertEquals("1", one(c, "select 1"));
                first = relay.relay().pools().all().iterator().next();
                assertTrue(metrics(relay).contains(backendSeries), "backend series while in use");
                // Its server connection times out; the logged-in client still keeps the pool.
                Await.until(
                        "the idle server connection to close",
                        Duration.ofSeconds(10),
                        () -> first.pool().stats().total() == 0);
                Thread.sleep(2500);
                assertSame(
                        first,
                        relay.relay().pools().all().iterator().next(),
                        "a homed client keeps its pool");
                assertEquals(List.of("appdb"), showPools(relay));
                assertEquals("1", one(c, "select 1"));
            }
            Await.until(
                    "the unused pool to be removed",
                    Duration.ofSeconds(10),
                    () -> relay.relay().pools().all().isEmpty());
            assertTrue(first.pool().isClosed());
            String metrics = metrics(relay);
            assertEquals(Set.of(), meteredPools(metrics));
            assertFalse(
                    metrics.contains("database=\"appdb\""),
                    "series of a removed pool left in /metrics");
            assertFalse(
                    metrics.contains("pgrelay_backend_down{"),
                    "the backend's series go with its last pool");
            assertTrue(
                    logs.events().stream()
                            .anyMatch(
                                    l ->
                                            l.getFormattedMessage()
                                                    .contains(
                                                            "removed: unused for autodb_idle_timeout (1 s)")));

            // The next client gets a new pool (and a fresh server login for its greeting).
            try (Connection c = relay.app()) {
                assertEquals("appdb", one(c, "select current_database()"));
                assertEquals("1", one(c, "select 1"));
            }
            ServerPool second = relay.relay().pools().all().iterator().next();
            assertNotSame(first, second);
            assertEquals(Set.of("appdb/app"), meteredPools(metrics(relay)));
            assertTrue(metrics(relay).contains(backendSeries), "and come back with the next");
        }
    }

    @Test
    void aPoolClosedUnderAClientIsReplacedWithItsMeters() throws Exception {
        try (RelayFixture relay = relay().start()) {
            Backend backend = Backend.parse(servers.primary().hostPort());
            ServerPools pools = relay.relay().pools();
            ServerPool old =
                    pools.pool(PgServer.APP_DB, "app", java.util.Map.of(), backend, Role.PRIMARY);
            // What the janitor does first when it removes a pool; a client may look it up right
            // then.
            assertTrue(old.pool().closeIfUnused());
            ServerPool successor =
                    pools.pool(PgServer.APP_DB, "app", java.util.Map.of(), backend, Role.PRIMARY);
            assertNotSame(old, successor);
            assertFalse(successor.pool().isClosed());
            assertNull(old.meters.get(), "the closed pool's meters are gone");
            try (Connection c = relay.app()) {
                assertEquals("1", one(c, "select 1"));
            }
            assertEquals(List.of(successor), List.copyOf(pools.all()));
            String metrics = metrics(relay);
            assertEquals(Set.of("appdb/app"), meteredPools(metrics));
            // The series reads the successor's counters, not the closed pool's (which stayed at 0).
            Matcher m =
                    Pattern.compile(
                                    "^pgrelay_pool_server_assignments_total\\{[^}]*database=\"appdb\"[^}]*\\} (\\S+)$",
                                    Pattern.MULTILINE)
                            .matcher(metrics);
            assertTrue(m.find(), metrics);
            assertTrue(successor.pool().stats().leases() > 0);
            assertEquals(
                    (double) successor.pool().stats().leases(), Double.parseDouble(m.group(1)));
        }
    }

    @Test
    void autodbIdleTimeoutAndMaxPoolMetricsAreReloadableAndShownInShowConfig() throws Exception {
        try (RelayFixture relay = relay().start()) {
            assertEquals(Duration.ofSeconds(3600), relay.relay().config().autodbIdleTimeout());
            assertEquals(500, relay.relay().config().maxPoolMetrics());
            assertNull(relay.relay().set("autodb_idle_timeout", "2s"));
            assertNull(relay.relay().set("max_pool_metrics", "10"));
            assertEquals(Duration.ofSeconds(2), relay.relay().config().autodbIdleTimeout());
            assertEquals(10, relay.relay().config().maxPoolMetrics());
            try (Connection console =
                    relay.connect(
                            relay.writePort(), "pgbouncer", "postgres", "postgres", Map.of())) {
                List<String> keys = column(console, "SHOW CONFIG");
                assertTrue(keys.contains("pool.autodb_idle_timeout"), keys.toString());
                assertTrue(keys.contains("admin.max_pool_metrics"), keys.toString());
            }
        }
    }

    @Test
    void perPoolSeriesStopAtMaxPoolMetricsAndARemovedPoolFreesItsSlot() throws Exception {
        try (RelayFixture relay = relay().set("admin.max_pool_metrics", 2).start()) {
            try (Connection c = relay.app()) {
                one(c, "select 1");
            }
            // Second slot: a refused database's pool has meters until it is removed.
            assertThrows(
                    PSQLException.class, () -> login(relay, "nodb", "app", "app-secret").close());
            Await.until(
                    "the refused pool to be removed",
                    Duration.ofSeconds(10),
                    () -> relay.relay().pools().all().size() == 1);
            try (Connection c = login(relay, PgServer.POSTGRES_DB, "app", "app-secret")) {
                one(c, "select 1");
            }
            // Over the limit: pools without series.
            try (Connection c = login(relay, PgServer.APP_DB, "postgres", "postgres");
                    Connection d = login(relay, PgServer.POSTGRES_DB, "postgres", "postgres")) {
                one(c, "select 1");
                one(d, "select 1");
            }
            String metrics = metrics(relay);
            assertEquals(Set.of("appdb/app", "postgres/app"), meteredPools(metrics));
            assertEquals(4.0, gauge(metrics, "pgrelay_pools"));
            assertEquals(2.0, gauge(metrics, "pgrelay_pools_unmetered"));
            assertEquals(
                    List.of("appdb", "appdb", "postgres", "postgres"),
                    showPools(relay),
                    "all listed");
            long warnings =
                    logs.events().stream()
                            .filter(
                                    l ->
                                            l.getFormattedMessage()
                                                    .contains("admin.max_pool_metrics (2) reached"))
                            .count();
            assertEquals(1, warnings, "warned once");
        }
    }
}
