package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.column;
import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pgrelay.testkit.PgServer;
import io.pgrelay.testkit.Proc;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** The PgBouncer-compatible console through psql and pgjdbc, and its control commands. */
class AdminConsoleTest {

    @RegisterExtension
    static final RelayExtension servers =
            RelayExtension.postgres()
                    .withRelay(
                            relay ->
                                    relay.set("pool.default_pool_size", 4)
                                            .set("admin.admin_users", List.of("postgres"))
                                            .set("admin.stats_users", List.of("app")));

    /** psql -A output of one console command: header line, then rows. */
    private static List<String> psql(String user, String password, String command) {
        String out =
                Proc.of(
                                "psql",
                                "-X",
                                "-A",
                                "-F",
                                "|",
                                "-P",
                                "footer=off",
                                "-h",
                                "127.0.0.1",
                                "-p",
                                String.valueOf(servers.relay().writePort()),
                                "-U",
                                user,
                                "-d",
                                "pgbouncer",
                                "-c",
                                command)
                        .cleanPgEnv()
                        .env("PGPASSWORD", password)
                        .check()
                        .stdout();
        return List.of(out.strip().split("\n"));
    }

    private static Connection console(String user, String password) throws SQLException {
        return servers.relay()
                .connect(
                        servers.relay().writePort(),
                        "pgbouncer",
                        user,
                        password,
                        Map.of("preferQueryMode", "extended"));
    }

    @Test
    void everyShowCommandHasPgBouncersColumns() {
        try (Connection app = servers.relay().app()) {
            one(app, "select 1");
        } catch (SQLException e) {
            throw new AssertionError(e);
        }
        Map<String, String> expectedHeaders =
                Map.ofEntries(
                        Map.entry(
                                "SHOW POOLS",
                                "database|user|cl_active|cl_waiting|cl_active_cancel_req|cl_waiting_cancel_req"
                                        + "|sv_active|sv_active_cancel|sv_being_canceled|sv_idle|sv_used|sv_tested|sv_login|maxwait"
                                        + "|maxwait_us|pool_mode|load_balance_hosts"),
                        Map.entry(
                                "SHOW STATS",
                                "database|total_server_assignment_count|total_xact_count|total_query_count"),
                        Map.entry(
                                "SHOW STATS_TOTALS",
                                "database|server_assignment_count|xact_count|query_count"),
                        Map.entry(
                                "SHOW STATS_AVERAGES",
                                "database|server_assignment_count|xact_count|query_count"),
                        Map.entry(
                                "SHOW CLIENTS",
                                "type|user|database|replication|state|addr|port|local_addr|local_port"
                                        + "|connect_time|request_time|wait|wait_us|close_needed|ptr|link|remote_pid|tls"
                                        + "|application_name|prepared_statements|id"),
                        Map.entry("SHOW SERVERS", "type|user|database|replication|state|addr|port"),
                        Map.entry(
                                "SHOW DATABASES",
                                "name|host|port|database|force_user|pool_size|min_pool_size"
                                        + "|reserve_pool_size|server_lifetime|pool_mode|load_balance_hosts|max_connections"
                                        + "|current_connections|max_client_connections|current_client_connections|paused|disabled"),
                        Map.entry("SHOW USERS", "name"),
                        Map.entry("SHOW LISTS", "list|items"),
                        Map.entry("SHOW CONFIG", "key|value|default|changeable"),
                        Map.entry("SHOW VERSION", "version"),
                        Map.entry("show state;", "key|value"),
                        Map.entry("SHOW TOPOLOGY", "member|host|port|role|state|lag_bytes"));
        expectedHeaders.forEach(
                (command, header) -> {
                    List<String> lines = psql("postgres", "postgres", command);
                    assertTrue(
                            lines.get(0).startsWith(header), command + " header: " + lines.get(0));
                });
        List<String> pools = psql("app", "app-secret", "show pools");
        assertTrue(
                pools.stream().anyMatch(l -> l.startsWith("appdb|app|")), String.join("\n", pools));
        List<String> version = psql("app", "app-secret", "SHOW VERSION");
        assertTrue(version.get(1).startsWith("PgBouncer 1.25.0 (pgrelay"), version.get(1));
    }

    @Test
    void pgjdbcRunsShowPoolsWithTheExtendedProtocol() throws Exception {
        try (Connection c = console("app", "app-secret")) {
            try (Statement st = c.createStatement();
                    ResultSet rs = st.executeQuery("SHOW POOLS")) {
                ResultSetMetaData md = rs.getMetaData();
                assertEquals("database", md.getColumnName(1));
                assertEquals("cl_active", md.getColumnName(3));
                while (rs.next()) {
                    assertTrue(rs.getInt("sv_idle") >= 0);
                }
            }
            for (int i = 0; i < 7; i++) {
                try (PreparedStatement ps = c.prepareStatement("SHOW STATS");
                        ResultSet rs = ps.executeQuery()) {
                    assertTrue(rs.getMetaData().getColumnCount() > 10);
                }
            }
        }
    }

    @Test
    void accessIsChecked() throws Exception {
        try (Connection stats = console("app", "app-secret")) {
            SQLException e =
                    assertThrows(
                            SQLException.class,
                            () -> stats.createStatement().execute("PAUSE appdb"));
            assertEquals("42501", e.getSQLState());
        }
        SQLException e = assertThrows(SQLException.class, () -> console("md5user", "md5-secret"));
        assertEquals("42501", e.getSQLState());
    }

    @Test
    void pauseHoldsTheNextTransactionUntilResume() throws Exception {
        try (Connection admin = console("postgres", "postgres");
                Connection client = servers.relay().app()) {
            assertEquals("1", one(client, "select 1"));
            admin.createStatement().execute("PAUSE appdb");
            CompletableFuture<String> next =
                    CompletableFuture.supplyAsync(
                            () -> {
                                try {
                                    return one(client, "select 42");
                                } catch (SQLException ex) {
                                    throw new RuntimeException(ex);
                                }
                            });
            Thread.sleep(1000);
            assertFalse(next.isDone(), "a paused database must hold the transaction");
            assertTrue(column(admin, "SHOW DATABASES").size() > 0);
            admin.createStatement().execute("RESUME appdb");
            assertEquals("42", next.get(10, TimeUnit.SECONDS));
        }
    }

    @Test
    void pauseWaitsForTheTransactionInFlightAndResumeRacesSafely() throws Exception {
        try (Connection admin = console("postgres", "postgres");
                Connection admin2 = console("postgres", "postgres");
                Connection client = servers.relay().app()) {
            client.setAutoCommit(false);
            one(client, "select 1"); // holds a server connection inside a transaction
            CompletableFuture<Void> pause =
                    CompletableFuture.runAsync(
                            () -> {
                                try {
                                    admin.createStatement().execute("PAUSE appdb");
                                } catch (SQLException ex) {
                                    // a RESUME overtaking the PAUSE reports it; either way it
                                    // returns
                                }
                            });
            Thread.sleep(500);
            assertFalse(
                    pause.isDone(), "PAUSE completes only when the server connection is released");
            admin2.createStatement().execute("RESUME appdb");
            pause.get(5, TimeUnit.SECONDS);
            client.commit();
        }
    }

    @Test
    void killDropsClientsAndReconnectReplacesServerConnections() throws Exception {
        try (Connection admin = console("postgres", "postgres");
                Connection pg =
                        servers.primary()
                                .connect(
                                        PgServer.APP_DB,
                                        PgServer.SUPERUSER,
                                        PgServer.SUPERUSER_PASSWORD)) {
            Set<String> before;
            try (Connection c = servers.relay().app()) {
                one(c, "select 1");
                before =
                        new HashSet<>(
                                column(
                                        pg,
                                        "select pid from pg_stat_activity where usename = 'app'"));
                assertFalse(before.isEmpty());
                admin.createStatement().execute("RECONNECT appdb");
                for (int i = 0; i < 5; i++) {
                    one(c, "select 1");
                }
                List<String> after = new ArrayList<>();
                for (int i = 0; i < 50; i++) {
                    after = column(pg, "select pid from pg_stat_activity where usename = 'app'");
                    if (after.stream().noneMatch(before::contains)) {
                        break;
                    }
                    Thread.sleep(100);
                }
                assertTrue(
                        after.stream().noneMatch(before::contains),
                        "old server connections survived RECONNECT");
                admin.createStatement().execute("KILL appdb");
                assertThrows(SQLException.class, () -> one(c, "select 1"));
            } finally {
                admin.createStatement().execute("RESUME appdb");
            }
            try (Connection c = servers.relay().app()) {
                assertEquals("1", one(c, "select 1"));
            }
        }
    }

    @Test
    void setChangesARunningSetting() throws Exception {
        try (Connection admin = console("postgres", "postgres")) {
            admin.createStatement().execute("SET default_pool_size = 6");
            List<String> config = psql("postgres", "postgres", "SHOW CONFIG");
            assertTrue(
                    config.stream().anyMatch(l -> l.startsWith("pool.default_pool_size|6|20|")),
                    String.join("\n", config));
            SQLException e =
                    assertThrows(
                            SQLException.class,
                            () -> admin.createStatement().execute("SET write_port = 1"));
            assertTrue(e.getMessage().contains("cannot be changed while running"), e.getMessage());
            admin.createStatement().execute("SET default_pool_size = 4");
        }
    }
}
