package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.column;
import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pgrelay.testkit.PgServer;
import java.io.ByteArrayOutputStream;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.postgresql.PGConnection;
import org.postgresql.copy.CopyManager;
import org.postgresql.util.PSQLException;

/** Transaction pooling through pgrelay against a real primary and streaming replica. */
class TransactionPoolingTest {

    @RegisterExtension
    static final RelayExtension servers =
            RelayExtension.postgres()
                    .withReplica()
                    .withRelay(relay -> relay.set("pool.default_pool_size", 4));

    @BeforeAll
    static void createTable() {
        servers.primary()
                .psql(
                        PgServer.APP_DB,
                        "create table items(id int primary key, name text); "
                                + "alter table items owner to app");
    }

    @Test
    void simpleAndExtendedQueries() throws Exception {
        try (Connection c = servers.relay().app()) {
            assertEquals("3", one(c, "select 1 + 2"));
            try (PreparedStatement ps = c.prepareStatement("select ?::int * 2, ?::text")) {
                ps.setInt(1, 21);
                ps.setString(2, "héllo");
                try (ResultSet rs = ps.executeQuery()) {
                    assertTrue(rs.next());
                    assertEquals(42, rs.getInt(1));
                    assertEquals("héllo", rs.getString(2));
                }
            }
            assertEquals(
                    String.valueOf(servers.primary().port()), one(c, "select inet_server_port()"));
        }
    }

    @Test
    void writesGoToThePrimaryAndReadsToTheReplica() throws Exception {
        try (Connection w = servers.relay().app();
                Connection r = servers.relay().appRead()) {
            assertEquals("f", one(w, "select pg_is_in_recovery()"));
            assertEquals("t", one(r, "select pg_is_in_recovery()"));
            assertEquals(
                    String.valueOf(servers.replica().port()), one(r, "select inet_server_port()"));
        }
    }

    @Test
    void pipelinedBatchAndErrorInTheMiddle() throws Exception {
        try (Connection c = servers.relay().app()) {
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("insert into items values (?, ?)")) {
                for (int i = 1000; i < 1100; i++) {
                    ps.setInt(1, i);
                    ps.setString(2, "item" + i);
                    ps.addBatch();
                }
                assertEquals(100, ps.executeBatch().length);
            }
            c.commit();
            assertEquals(
                    "100", one(c, "select count(*) from items where id between 1000 and 1099"));
            c.commit();
            // A failing statement in a batch: the batch fails, the connection goes on.
            try (PreparedStatement ps = c.prepareStatement("insert into items values (?, ?)")) {
                for (int id : new int[] {2000, 1000, 2001}) {
                    ps.setInt(1, id);
                    ps.setString(2, "x");
                    ps.addBatch();
                }
                assertThrows(SQLException.class, ps::executeBatch);
            }
            c.rollback();
            assertEquals("0", one(c, "select count(*) from items where id in (2000, 2001)"));
            c.commit();
        }
    }

    @Test
    void transactionKeepsItsServerConnectionWhileOthersInterleave() throws Exception {
        try (Connection a = servers.relay().app();
                Connection b = servers.relay().app()) {
            a.setAutoCommit(false);
            String pid = one(a, "select pg_backend_pid()");
            Set<String> otherPids = new HashSet<>();
            for (int i = 0; i < 20; i++) {
                otherPids.add(one(b, "select pg_backend_pid()"));
                assertEquals(pid, one(a, "select pg_backend_pid()"));
            }
            assertFalse(
                    otherPids.contains(pid),
                    "another client used a server connection inside a transaction");
            a.commit();
        }
    }

    @Test
    void copyInAndOut() throws Exception {
        try (Connection c = servers.relay().app()) {
            CopyManager copy = c.unwrap(PGConnection.class).getCopyAPI();
            StringBuilder data = new StringBuilder();
            for (int i = 5000; i < 7000; i++) {
                data.append(i).append('\t').append("copied ").append(i).append('\n');
            }
            long in = copy.copyIn("copy items from stdin", new StringReader(data.toString()));
            assertEquals(2000, in);
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            long n =
                    copy.copyOut(
                            "copy (select * from items where id >= 5000 and id < 7000 order by id) to stdout",
                            out);
            assertEquals(2000, n);
            assertEquals(data.toString(), out.toString(StandardCharsets.UTF_8));
            // A COPY that fails on the server leaves the connection usable.
            assertThrows(
                    SQLException.class,
                    () ->
                            copy.copyIn(
                                    "copy items from stdin",
                                    new StringReader("5000\tduplicate\n")));
            assertEquals("1", one(c, "select 1"));
        }
    }

    @Test
    void cancelStopsTheQueryOnItsServer() throws Exception {
        try (Connection c = servers.relay().app();
                Statement st = c.createStatement()) {
            ExecutorService ex = Executors.newSingleThreadExecutor();
            try {
                long start = System.nanoTime();
                Future<?> cancel =
                        ex.submit(
                                () -> {
                                    Thread.sleep(300);
                                    st.cancel();
                                    return null;
                                });
                SQLException e =
                        assertThrows(SQLException.class, () -> st.execute("select pg_sleep(10)"));
                long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
                assertEquals("57014", e.getSQLState());
                assertTrue(ms < 1300, "cancel took " + ms + " ms");
                cancel.get();
            } finally {
                ex.shutdownNow();
            }
            assertEquals("1", one(c, "select 1"));
        }
    }

    @Test
    void terminatedBackendFailsOnlyItsClient() throws Exception {
        try (Connection victim = servers.relay().app();
                Connection bystander = servers.relay().app();
                Connection admin =
                        servers.primary()
                                .connect(
                                        PgServer.APP_DB,
                                        PgServer.SUPERUSER,
                                        PgServer.SUPERUSER_PASSWORD)) {
            victim.setAutoCommit(false);
            String pid = one(victim, "select pg_backend_pid()");
            one(admin, "select pg_terminate_backend(" + pid + ")");
            SQLException e = assertThrows(SQLException.class, () -> one(victim, "select 1"));
            assertEquals("57P01", e.getSQLState(), e.getMessage());
            assertEquals("1", one(bystander, "select 1"));
            // The same client connection goes on with its next transaction on another server
            // connection.
            victim.rollback();
            assertEquals("2", one(victim, "select 2"));
            victim.commit();
        }
    }

    @Test
    void sessionParametersFollowEachClient() throws Exception {
        Map<String, String> berlin =
                Map.of(
                        "prepareThreshold",
                        "0",
                        "options",
                        "-c TimeZone=Europe/Berlin -c search_path=public",
                        "ApplicationName",
                        "berlin-app");
        Map<String, String> tokyo =
                Map.of(
                        "prepareThreshold",
                        "0",
                        "options",
                        "-c TimeZone=Asia/Tokyo",
                        "ApplicationName",
                        "tokyo-app");
        try (Connection b =
                        servers.relay()
                                .connect(
                                        servers.relay().writePort(),
                                        PgServer.APP_DB,
                                        "app",
                                        "app-secret",
                                        berlin);
                Connection t =
                        servers.relay()
                                .connect(
                                        servers.relay().writePort(),
                                        PgServer.APP_DB,
                                        "app",
                                        "app-secret",
                                        tokyo)) {
            for (int i = 0; i < 10; i++) {
                assertEquals("Europe/Berlin", one(b, "show timezone"));
                assertEquals("berlin-app", one(b, "select current_setting('application_name')"));
                assertEquals("Asia/Tokyo", one(t, "show timezone"));
                assertEquals("tokyo-app", one(t, "select current_setting('application_name')"));
                assertEquals("\"$user\", public", one(t, "show search_path"));
                assertEquals("public", one(b, "show search_path"));
            }
            // A SET by the client itself sticks to the client, not to a server connection.
            try (Statement st = t.createStatement()) {
                st.execute("set application_name = 'tokyo-renamed'");
            }
            for (int i = 0; i < 5; i++) {
                assertEquals("tokyo-renamed", one(t, "select current_setting('application_name')"));
                assertEquals("berlin-app", one(b, "select current_setting('application_name')"));
            }
        }
    }

    @Test
    void badPasswordAndUnknownDatabase() throws Exception {
        PSQLException wrong =
                assertThrows(PSQLException.class, () -> servers.relay().connect("app", "nope"));
        assertEquals("28P01", wrong.getSQLState());
        assertTrue(wrong.getMessage().contains("password authentication failed for user \"app\""));
        PSQLException unknown =
                assertThrows(PSQLException.class, () -> servers.relay().connect("nobody", "nope"));
        assertEquals("28P01", unknown.getSQLState());
        assertTrue(
                unknown.getMessage()
                        .contains("password authentication failed for user \"nobody\""));
        PSQLException db =
                assertThrows(
                        PSQLException.class,
                        () ->
                                servers.relay()
                                        .connect(
                                                servers.relay().writePort(),
                                                "nodb",
                                                "app",
                                                "app-secret",
                                                Map.of()));
        assertEquals("3D000", db.getSQLState());
        try (Connection c = servers.relay().app()) {
            assertEquals("1", one(c, "select 1"));
        }
    }

    @Test
    void manyClientsShareFewServerConnections() throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(16);
        try (Connection admin =
                servers.primary()
                        .connect(
                                PgServer.POSTGRES_DB,
                                PgServer.SUPERUSER,
                                PgServer.SUPERUSER_PASSWORD)) {
            var futures = new java.util.ArrayList<Future<Integer>>();
            for (int t = 0; t < 16; t++) {
                futures.add(
                        pool.submit(
                                () -> {
                                    int done = 0;
                                    try (Connection c = servers.relay().app()) {
                                        for (int i = 0; i < 50; i++) {
                                            assertEquals("1", one(c, "select 1"));
                                            done++;
                                        }
                                    }
                                    return done;
                                }));
            }
            int peak = 0;
            for (Future<Integer> f : futures) {
                while (!f.isDone()) {
                    peak =
                            Math.max(
                                    peak,
                                    Integer.parseInt(
                                            one(
                                                    admin,
                                                    "select count(*) from pg_stat_activity where usename = 'app' and datname = 'appdb'"
                                                            + " and client_port is not null and backend_type = 'client backend'")));
                }
                assertEquals(50, f.get());
            }
            assertTrue(
                    peak <= 4,
                    "server connections for appdb/app: " + peak + " > default_pool_size 4");
        } finally {
            pool.shutdownNow();
        }
        assertTrue(column(servers.relay().app(), "select 1").size() == 1);
    }
}
