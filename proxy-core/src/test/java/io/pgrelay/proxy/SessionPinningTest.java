package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static io.pgrelay.proxy.SessionStateTest.client;
import static io.pgrelay.proxy.SessionStateTest.exec;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pgrelay.testkit.Await;
import io.pgrelay.testkit.FreePorts;
import io.pgrelay.testkit.PgServer;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;

/**
 * Transaction pooling with state that cannot be set up again on another server connection (temp
 * tables, LISTEN, session advisory locks, WITH HOLD cursors, SQL PREPARE, an unreplayable setting):
 * the client keeps its server connection while it holds any ("pinned", as in session mode), is
 * unpinned when it holds none, and its disconnect hands the connection back reset. The console
 * (SHOW CLIENTS/SERVERS pinned, SHOW POOLS sv_pinned) and /metrics (pgrelay_pinned_clients) say who
 * is pinned and why; pool.max_pinned_connections bounds it.
 *
 * <p>Settings that can be replayed: {@link SessionStateTest}.
 */
class SessionPinningTest {

    /** One server connection: whatever a pinned client leaves on it, the next client gets. */
    @RegisterExtension
    static final RelayExtension servers =
            RelayExtension.postgres()
                    .withRelay(
                            relay ->
                                    relay.set("pool.default_pool_size", 1)
                                            // A client pinned too long makes the next one wait
                                            // for the only connection: fail in seconds.
                                            .set("pool.query_wait_timeout", "10s")
                                            .set("admin.admin_users", List.of("postgres"))
                                            .set("admin.http_port", FreePorts.next()));

    /** Two server connections: a pinned client has one, the others share the other. */
    static RelayFixture two;

    private static final Duration WAIT = Duration.ofSeconds(10);

    private static final List<String> REASONS =
            List.of("temp", "listen", "advisory_lock", "hold_cursor", "sql_prepare", "setting");

    private static final String TEMP_TABLES =
            "select count(*) from pg_class where relnamespace = pg_my_temp_schema()";

    @BeforeAll
    static void start() throws SQLException {
        // A role the app may switch to: SET ROLE is a setting pgrelay does not replay, so it pins.
        servers.primary()
                .psql(
                        PgServer.POSTGRES_DB,
                        "create role pin_role; grant pin_role to " + PgServer.APP_USER);
        // A new pool's first login has nothing to vouch for its welcome, so the second client to
        // connect gets a fresh login, which in a pool of one replaces the connection. Done here,
        // so that a test comparing backend pids sees the connection pgrelay reset, not a new one.
        for (int i = 0; i < 2; i++) {
            try (Connection c = servers.relay().app()) {
                one(c, "select 1");
            }
        }
        two =
                RelayFixture.builder(servers.primary())
                        .set("pool.default_pool_size", 2)
                        .set("pool.query_wait_timeout", "10s")
                        .start();
    }

    @AfterAll
    static void stop() {
        if (two != null) {
            two.close();
        }
    }

    @Test
    void tempTablesOutliveTransactionsAndStayTheirClients() throws Exception {
        try (Connection a = client(two, "temp-a", "");
                Connection b = client(two, "temp-b", "")) {
            exec(a, "create temp table t(v int)", "insert into t values (1)");
            a.setAutoCommit(false);
            exec(a, "insert into t values (2)");
            a.commit();
            a.setAutoCommit(true);
            exec(a, "select 5 as v into temp table t_into");
            String pid = one(a, "select pg_backend_pid()");
            for (int i = 0; i < 3; i++) {
                assertNull(one(b, "select to_regclass('pg_temp.t')::text"), "A's table seen by B");
                assertEquals("3", one(a, "select sum(v) from t"));
                assertEquals(pid, one(a, "select pg_backend_pid()"));
            }
            // B's own table of that name, on the other connection, while A keeps its own.
            exec(b, "create temp table t as select 100 as v");
            for (int i = 0; i < 3; i++) {
                assertEquals("100", one(b, "select sum(v) from t"));
                assertEquals("3", one(a, "select sum(v) from t"));
                assertEquals("5", one(a, "select v from t_into"));
            }
        }
    }

    @Test
    void pinnedListenerHearsNotificationsWhileIdle() throws Exception {
        try (Connection a = client(two, "listen-a", "");
                Connection b = client(two, "notify-b", "")) {
            exec(a, "listen pinned_chan");
            for (int i = 0; i < 3; i++) {
                assertEquals("1", one(a, "select 1")); // A between transactions
                exec(b, "notify pinned_chan, 'autocommit-" + i + "'");
                assertEquals(List.of("pinned_chan:autocommit-" + i), notifications(a));
            }
            // Sent at the commit of B's transaction, heard by A idle all the while.
            b.setAutoCommit(false);
            one(b, "select pg_notify('pinned_chan', 'committed')");
            b.commit();
            assertEquals(List.of("pinned_chan:committed"), notifications(a));

            // A notification sent at once after LISTEN, while pgrelay's check of A's session
            // runs, and one A sends itself: that one carries the pid A knows as its own.
            b.setAutoCommit(true);
            exec(a, "listen pinned_chan_2");
            exec(b, "notify pinned_chan_2, 'during the check'");
            assertEquals(List.of("pinned_chan_2:during the check"), notifications(a));
            exec(a, "notify pinned_chan, 'self'");
            PGNotification[] own = a.unwrap(PGConnection.class).getNotifications(10_000);
            assertEquals(1, own.length);
            assertEquals("self", own[0].getParameter());
            assertEquals(a.unwrap(PGConnection.class).getBackendPID(), own[0].getPID());
        }
    }

    @Test
    void advisoryLockOutlivesTransactionsAndDiesWithTheClient() throws Exception {
        String locks =
                "select count(*) from pg_locks where locktype = 'advisory' and objid = 42"
                        + " and pid = pg_backend_pid()";
        try (Connection b = client(two, "lock-b", "")) {
            try (Connection a = client(two, "lock-a", "")) {
                exec(a, "select pg_advisory_lock(42)");
                for (int i = 0; i < 3; i++) {
                    assertEquals("f", one(b, "select pg_try_advisory_lock(42)"));
                    a.setAutoCommit(false);
                    assertEquals("1", one(a, locks));
                    a.commit();
                    a.setAutoCommit(true);
                    assertEquals("1", one(a, locks));
                }
            }
            // A's disconnect resets its server connection (DISCARD ALL unlocks).
            Await.until(
                    "A's lock released",
                    WAIT,
                    () -> "t".equals(one(b, "select pg_try_advisory_lock(42)")));
            assertEquals("t", one(b, "select pg_advisory_unlock(42)"));
        }
    }

    /**
     * A server-prepared statement (pgjdbc names it after prepareThreshold uses) is parsed once;
     * later executions are a Bind alone, with no text to read. Its text was read when it was first
     * prepared, so a Bind of it still counts: the lock it takes pins.
     */
    @Test
    void aLockTakenByAPreparedStatementPins() throws Exception {
        Map<String, String> props = SessionStateTest.props("prepared-lock-a", "");
        props.put("prepareThreshold", "1");
        try (Connection b = client(two, "prepared-lock-b", "");
                Connection a =
                        two.connect(
                                two.writePort(),
                                PgServer.APP_DB,
                                PgServer.APP_USER,
                                PgServer.APP_PASSWORD,
                                props);
                var lock = a.prepareStatement("select pg_advisory_lock(?)");
                var unlock = a.prepareStatement("select pg_advisory_unlock(?)")) {
            for (int key : new int[] {61, 62}) {
                lock.setInt(1, key);
                lock.executeQuery().close();
                unlock.setInt(1, key);
                unlock.executeQuery().close();
            }
            // Named by now: this execution sends Bind/Execute of "S_1", no Parse.
            lock.setInt(1, 63);
            lock.executeQuery().close();
            for (int i = 0; i < 3; i++) {
                assertEquals("f", one(b, "select pg_try_advisory_lock(63)"));
                assertEquals("1", one(a, "select 1"));
            }
        }
    }

    @Test
    void consoleAndMetricsNameEachReason() throws Exception {
        String[][] cases = {
            {"temp", "create temp table pin_t(x int)", "drop table pin_t"},
            {"listen", "listen pin_chan", "unlisten *"},
            {
                "advisory_lock",
                "select pg_try_advisory_lock_shared(7)",
                "select pg_advisory_unlock_shared(7)"
            },
            {"hold_cursor", "declare pin_c cursor with hold for select 1", "close pin_c"},
            {"sql_prepare", "prepare pin_p as select 1", "deallocate pin_p"},
        };
        try (Connection admin = console();
                Connection a = client(servers.relay(), "console-a", "")) {
            assertPinned(admin, "console-a");
            for (String[] c : cases) {
                exec(a, c[1]);
                assertPinned(admin, "console-a", c[0]);
                exec(a, c[2]);
                assertPinned(admin, "console-a");
            }
            // Two reasons at once: both named, and dropping one leaves the other.
            exec(a, "create temp table pin_t(x int)", "create temp table pin_u(x int)");
            exec(a, "listen pin_chan");
            assertPinned(admin, "console-a", "temp", "listen");
            exec(a, "drop table pin_t");
            assertPinned(admin, "console-a", "temp", "listen"); // pin_u is left
            exec(a, "drop table pin_u");
            assertPinned(admin, "console-a", "listen");
            exec(a, "unlisten *");
            assertPinned(admin, "console-a");
        }
    }

    /**
     * A client logs in while the pool's only connection is pinned to another (as PgBouncer greets
     * clients whatever its pool holds); its first query waits for the connection, and gets it clean
     * when the pinned client leaves.
     */
    @Test
    void loginDoesNotWaitForAPinnedConnection() throws Exception {
        String answer;
        try (Connection a = client(servers.relay(), "login-a", "")) {
            exec(a, "create temp table login_t(x int)");
            long start = System.nanoTime();
            // Named at startup: pgjdbc's SET application_name after login would be a query.
            try (Connection b = namedAtStartup("login-b")) {
                assertTrue(
                        System.nanoTime() - start < Duration.ofSeconds(5).toNanos(),
                        "B logged in while A held the connection");
                var pending =
                        java.util.concurrent.CompletableFuture.supplyAsync(
                                () -> {
                                    try {
                                        return one(b, TEMP_TABLES);
                                    } catch (SQLException e) {
                                        return e.getSQLState();
                                    }
                                });
                Thread.sleep(200);
                assertFalse(pending.isDone(), "B waits while A is pinned");
                a.close();
                answer = pending.get(WAIT.toSeconds(), java.util.concurrent.TimeUnit.SECONDS);
            }
        }
        assertEquals("0", answer, "B's connection was reset when A left");
    }

    @Test
    void discardAllUnpins() throws Exception {
        // application_name in the startup packet (pgjdbc otherwise SETs it after login, and DISCARD
        // ALL would clear it, as directly), so that the console still finds A afterwards.
        try (Connection admin = console();
                Connection a = namedAtStartup("discard-a")) {
            exec(
                    a,
                    "set search_path = before_discard",
                    "create temp table d_t(x int)",
                    "listen d_chan",
                    "select pg_advisory_lock(9)",
                    "declare d_c cursor with hold for select 1",
                    "prepare d_p as select 1",
                    "set role pin_role");
            assertPinned(admin, "discard-a", REASONS.toArray(String[]::new));
            exec(a, "discard all");
            assertPinned(admin, "discard-a");
            assertEquals("\"$user\", public", one(a, "show search_path"));
            // The only server connection is free for others again.
            try (Connection b = client(servers.relay(), "discard-b", "")) {
                assertEquals("0", one(b, "select count(*) from pg_listening_channels()"));
            }
        }
    }

    @Test
    void pinnedClientsDisconnectLeavesACleanConnection() throws Exception {
        String pid;
        try (Connection a = client(servers.relay(), "leaving-a", "")) {
            exec(
                    a,
                    "set search_path = a_only",
                    "create temp table a_t(x int)",
                    "listen a_chan",
                    "select pg_advisory_lock(43)",
                    "declare a_c cursor with hold for select 1",
                    "prepare a_p as select 1");
            pid = one(a, "select pg_backend_pid()");
        }
        try (Connection b = client(servers.relay(), "after-a", "")) {
            // The same (only) server connection, reset before B got it: not a new one.
            assertEquals(pid, one(b, "select pg_backend_pid()"));
            assertEquals("0", one(b, TEMP_TABLES));
            assertEquals("0", one(b, "select count(*) from pg_listening_channels()"));
            assertEquals(
                    "0",
                    one(
                            b,
                            "select count(*) from pg_locks where locktype = 'advisory'"
                                    + " and pid = pg_backend_pid()"));
            assertEquals("0", one(b, "select count(*) from pg_cursors where is_holdable"));
            assertEquals("0", one(b, "select count(*) from pg_prepared_statements where from_sql"));
            assertEquals("\"$user\", public", one(b, "show search_path"));
        }
    }

    @Test
    void pinBeyondTheLimitFailsOnlyThatClient() throws Exception {
        try (RelayFixture limited =
                        RelayFixture.builder(servers.primary())
                                .set("pool.default_pool_size", 2)
                                .set("pool.max_pinned_connections", 1)
                                .set("pool.query_wait_timeout", "10s")
                                .start();
                Connection b = client(limited, "limit-b", "")) {
            try (Connection a = client(limited, "limit-a", "");
                    Connection c = client(limited, "limit-c", "")) {
                exec(a, "create temp table a_t(x int)");
                SQLException e =
                        assertThrows(
                                SQLException.class, () -> exec(c, "create temp table c_t(x int)"));
                assertEquals("53300", e.getSQLState(), e.getMessage());
                assertTrue(e.getMessage().contains("max_pinned_connections"), e.getMessage());
                assertThrows(SQLException.class, () -> one(c, "select 1"), "C is disconnected");
                // C's server connection was closed, and its temp table with it.
                Await.until(
                        "C's temp table gone",
                        WAIT,
                        () ->
                                "0"
                                        .equals(
                                                one(
                                                        b,
                                                        "select count(*) from pg_class where"
                                                                + " relname = 'c_t' and relpersistence = 't'")));
                for (int i = 0; i < 3; i++) {
                    assertEquals("0", one(a, "select count(*) from a_t"));
                    b.setAutoCommit(false);
                    assertEquals("0", one(b, TEMP_TABLES));
                    b.commit();
                    b.setAutoCommit(true);
                }
            }
            // A gone, its pin is free for another client.
            Await.until(
                    "a new client may pin",
                    WAIT,
                    () -> {
                        try (Connection d = client(limited, "limit-d", "")) {
                            exec(d, "create temp table d_t(x int)");
                            return true;
                        }
                    });
        }
    }

    // ------------------------------------------------------------------------------------------

    /** A client whose application_name is in its startup packet, not SET after login. */
    private static Connection namedAtStartup(String applicationName) throws SQLException {
        Map<String, String> props = SessionStateTest.props(applicationName, "");
        props.put("assumeMinServerVersion", "15");
        RelayFixture relay = servers.relay();
        return relay.connect(
                relay.writePort(),
                PgServer.APP_DB,
                PgServer.APP_USER,
                PgServer.APP_PASSWORD,
                props);
    }

    private static Connection console() throws SQLException {
        RelayFixture relay = servers.relay();
        return relay.connect(
                relay.writePort(),
                "pgbouncer",
                "postgres",
                "postgres",
                Map.of("preferQueryMode", "extended"));
    }

    /**
     * What the console and /metrics say of pins: the client's reasons (SHOW CLIENTS, found by
     * application_name), those of the pool's server connections (SHOW SERVERS), sv_pinned (SHOW
     * POOLS) and pgrelay_pinned_clients per reason.
     */
    record Pins(Set<String> client, Set<String> servers, String svPinned, Map<String, Long> gauge) {

        static Pins expected(String... reasons) {
            Map<String, Long> gauge = new TreeMap<>();
            for (String r : REASONS) {
                gauge.put(r, Arrays.asList(reasons).contains(r) ? 1L : 0L);
            }
            Set<String> set = new TreeSet<>(Arrays.asList(reasons));
            return new Pins(set, set, reasons.length == 0 ? "0" : "1", gauge);
        }
    }

    /** Polls until the console and /metrics say the client is pinned for exactly these reasons. */
    private static void assertPinned(Connection admin, String applicationName, String... reasons) {
        Pins expected = Pins.expected(reasons);
        Await.until(
                applicationName + " pinned " + expected,
                WAIT,
                () -> pins(admin, applicationName),
                expected::equals);
    }

    private static Pins pins(Connection admin, String applicationName) throws Exception {
        Set<String> client = null;
        for (Map<String, String> row : show(admin, "SHOW CLIENTS")) {
            if (applicationName.equals(row.get("application_name"))) {
                client = reasons(row.get("pinned"));
            }
        }
        Set<String> servers = new TreeSet<>();
        for (Map<String, String> row : show(admin, "SHOW SERVERS")) {
            if ("appdb".equals(row.get("database"))) {
                servers.addAll(reasons(row.get("pinned")));
            }
        }
        String svPinned = null;
        for (Map<String, String> row : show(admin, "SHOW POOLS")) {
            if ("appdb".equals(row.get("database")) && "app".equals(row.get("user"))) {
                svPinned = row.get("sv_pinned");
            }
        }
        return new Pins(client, servers, svPinned, gauge());
    }

    /** A pinned column: comma-separated reasons, empty when not pinned. */
    private static Set<String> reasons(String pinned) {
        Set<String> out = new TreeSet<>();
        if (pinned == null) {
            out.add("(no pinned column)");
        } else if (!pinned.isBlank()) {
            for (String r : pinned.split(",")) {
                out.add(r.trim());
            }
        }
        return out;
    }

    /** The rows of a console SHOW, columns by name. */
    private static List<Map<String, String>> show(Connection admin, String command)
            throws SQLException {
        try (Statement st = admin.createStatement();
                ResultSet rs = st.executeQuery(command)) {
            ResultSetMetaData md = rs.getMetaData();
            List<Map<String, String>> rows = new ArrayList<>();
            while (rs.next()) {
                Map<String, String> row = new HashMap<>();
                for (int i = 1; i <= md.getColumnCount(); i++) {
                    row.put(md.getColumnName(i), rs.getString(i));
                }
                rows.add(row);
            }
            return rows;
        }
    }

    /** pgrelay_pinned_clients per reason from /metrics (a reason with no series counts 0). */
    private static Map<String, Long> gauge() throws Exception {
        String body =
                HttpClient.newHttpClient()
                        .send(
                                HttpRequest.newBuilder(
                                                URI.create(
                                                        "http://127.0.0.1:"
                                                                + servers.relay().relay().httpPort()
                                                                + "/metrics"))
                                        .build(),
                                HttpResponse.BodyHandlers.ofString())
                        .body();
        Map<String, Long> gauge = new TreeMap<>();
        REASONS.forEach(r -> gauge.put(r, 0L));
        Matcher m =
                Pattern.compile(
                                "^pgrelay_pinned_clients\\{[^}]*reason=\"([^\"]*)\"[^}]*\\} (\\S+)$",
                                Pattern.MULTILINE)
                        .matcher(body);
        while (m.find()) {
            long value = (long) Double.parseDouble(m.group(2));
            if (REASONS.contains(m.group(1)) || value != 0) {
                gauge.merge(m.group(1), value, Long::sum);
            }
        }
        return gauge;
    }

    /** The notifications A hears within 10 s, as channel:payload. */
    private static List<String> notifications(Connection c) throws SQLException {
        List<String> got = new ArrayList<>();
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (got.isEmpty() && System.nanoTime() < deadline) {
            PGNotification[] batch = c.unwrap(PGConnection.class).getNotifications(500);
            for (PGNotification n : batch == null ? new PGNotification[0] : batch) {
                got.add(n.getName() + ":" + n.getParameter());
            }
        }
        return got;
    }
}
