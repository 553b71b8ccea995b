package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pgrelay.config.ProxyConfig;
import io.pgrelay.testkit.FreePorts;
import io.pgrelay.testkit.PgServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.SQLException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** /metrics, /health, /ready and the status page; RELOAD of the config and auth files. */
class HttpAndReloadTest {

    @RegisterExtension static final RelayExtension servers = RelayExtension.postgres();

    private static HttpResponse<String> get(int port, String path) throws Exception {
        return HttpClient.newHttpClient()
                .send(
                        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                                .build(),
                        HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void metricsHealthReadyAndStatusPage() throws Exception {
        try (RelayFixture relay =
                RelayFixture.builder(servers.primary())
                        .set("admin.http_port", FreePorts.next())
                        .start()) {
            try (Connection c = relay.app()) {
                for (int i = 0; i < 20; i++) {
                    one(c, "select 1");
                }
                assertThrows(SQLException.class, () -> one(c, "select * from no_such_table"));
            }
            int port = relay.relay().httpPort();
            HttpResponse<String> metrics = get(port, "/metrics");
            assertEquals(200, metrics.statusCode());
            String body = metrics.body();
            for (String expected :
                    new String[] {
                        "pgrelay_transactions_seconds_bucket{role=\"primary\"",
                        "pgrelay_queries_seconds_count{role=\"primary\"}",
                        "pgrelay_client_wait_seconds_bucket",
                        "pgrelay_client_connections{state=\"active\"}",
                        "pgrelay_server_connections{backend=\""
                                + servers.primary().hostPort()
                                + "\",database=\"appdb\"",
                        "pgrelay_pool_transactions_total{",
                        "pgrelay_pool_received_bytes_total{",
                        "pgrelay_errors_total{class=\"42\"}",
                        "pgrelay_prepared_binds_total{",
                        "jvm_memory_used_bytes",
                        "# HELP pgrelay_transactions_seconds",
                    }) {
                assertTrue(body.contains(expected), "missing " + expected + " in\n" + body);
            }
            assertEquals(200, get(port, "/health").statusCode());
            HttpResponse<String> ready = get(port, "/ready");
            assertEquals(200, ready.statusCode(), ready.body());
            HttpResponse<String> page = get(port, "/");
            assertEquals(200, page.statusCode());
            assertTrue(page.body().contains(servers.primary().hostPort()), page.body());
            assertTrue(page.body().contains("Pools"), page.body());
        }
    }

    @Test
    void reloadChangesPoolSizeAndPasswordsAndRejectsABrokenFile() throws Exception {
        Path dir = Files.createTempDirectory("pgrelay-reload");
        Path users = dir.resolve("userlist.txt");
        Path conf = dir.resolve("pgrelay.conf");
        Files.writeString(users, "\"app\" \"app-secret\"\n\"postgres\" \"postgres\"\n");
        String base =
                "pgrelay.listen.write_port = 0\npgrelay.listen.read_port = 0\npgrelay.admin.http_port = 0\n"
                        + "pgrelay.backends.primary = \""
                        + servers.primary().hostPort()
                        + "\"\n"
                        + "pgrelay.auth.auth_file = \""
                        + users
                        + "\"\n";
        Files.writeString(conf, base + "pgrelay.pool.default_pool_size = 3\n");
        PgRelay relay = new PgRelay(ProxyConfig.load(conf.toFile()), conf.toFile()).start();
        try {
            assertEquals(3, relay.config().poolSettings().poolSize());
            try (Connection c = connect(relay, "app-secret")) {
                one(c, "select 1");
                Files.writeString(
                        conf,
                        base
                                + "pgrelay.pool.default_pool_size = 7\npgrelay.listen.host = \"127.0.0.2\"\n");
                // A password change in the auth file: the client must use the new one; PostgreSQL
                // keeps its own.
                servers.primary()
                        .psql(PgServer.POSTGRES_DB, "alter role app password 'app-secret-2'");
                Files.writeString(users, "\"app\" \"app-secret-2\"\n\"postgres\" \"postgres\"\n");
                assertEquals(null, relay.reload());
                assertEquals(7, relay.config().poolSettings().poolSize());
                for (ServerPool p : relay.pools().all()) {
                    assertEquals(
                            7,
                            p.pool().stats().total() >= 0
                                    ? relay.config().poolSettings().poolSize()
                                    : -1);
                }
                // The connected client is not dropped.
                assertEquals("1", one(c, "select 1"));
            }
            assertThrows(SQLException.class, () -> connect(relay, "app-secret"));
            try (Connection c = connect(relay, "app-secret-2")) {
                assertEquals("1", one(c, "select 1"));
            }
            Files.writeString(conf, base + "pgrelay.pool.default_pool_size = \"many\"\n");
            String error = relay.reload();
            assertNotNull(error);
            assertTrue(error.contains("default_pool_size"), error);
            assertEquals(7, relay.config().poolSettings().poolSize());
            try (Connection c = connect(relay, "app-secret-2")) {
                assertEquals("1", one(c, "select 1"));
            }
        } finally {
            servers.primary().psql(PgServer.POSTGRES_DB, "alter role app password 'app-secret'");
            relay.close();
        }
    }

    private static Connection connect(PgRelay relay, String password) throws SQLException {
        java.util.Properties p = new java.util.Properties();
        p.setProperty("user", "app");
        p.setProperty("password", password);
        p.setProperty("prepareThreshold", "0");
        return java.sql.DriverManager.getConnection(
                "jdbc:postgresql://127.0.0.1:" + relay.writePort() + "/appdb", p);
    }
}
