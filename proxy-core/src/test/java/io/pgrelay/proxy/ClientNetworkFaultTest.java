package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pgrelay.config.TcpSettings;
import io.pgrelay.testkit.Await;
import io.pgrelay.testkit.HostProcess;
import io.pgrelay.testkit.PgServer;
import io.pgrelay.testkit.Proc;
import io.pgrelay.testkit.TestNetwork;
import io.pgrelay.testkit.TestNetwork.Host;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Issue 15, scenario 5: a client's network dies in the middle of a transaction (the link of its
 * namespace goes down: no FIN, no RST, nothing). Its server connection must be rolled back and
 * given back within a bound, and nobody else may be held by it. pgrelay (in this JVM) listens on
 * the root namespace's bridge address with one server connection per pool, so a connection the dead
 * client kept would stall every other client; the dead client is psql in a namespace, the others
 * are pgjdbc in the root namespace and psql in a second namespace.
 */
@Timeout(90)
class ClientNetworkFaultTest {

    private static final Duration IDLE_TX_TIMEOUT = Duration.ofSeconds(3);

    /** idle_transaction_timeout + the janitor's one-second period + slack. */
    private static final Duration BOUND = IDLE_TX_TIMEOUT.plusSeconds(3);

    private static PgServer pg;

    @BeforeAll
    static void start() throws Exception {
        TestNetwork.assumeAvailable();
        pg = PgServer.startPrimary();
        pg.psql(PgServer.APP_DB, "create table dead_client(tag text)");
        pg.psql(PgServer.APP_DB, "grant all on dead_client to " + PgServer.APP_USER);
    }

    @AfterAll
    static void stop() {
        if (pg != null) {
            pg.close();
        }
    }

    @Test
    void idleTransactionTimeoutRollsBackAndReturnsTheDeadClientsServerConnection()
            throws Exception {
        try (TestNetwork net = TestNetwork.create("client", "other");
                RelayFixture relay = relay(net).set("pool.idle_transaction_timeout", "3s").start();
                Connection direct = superuser();
                Connection console = relay.console()) {
            Host client = net.host("client");
            HostProcess psql = openTransaction(net, relay, client, "t1");

            // idle_transaction_timeout counts from the client's last message, a little before.
            String idleBefore =
                    one(
                            direct,
                            "select (extract(epoch from clock_timestamp() - state_change) * 1000)"
                                    + "::int from pg_stat_activity where usename = 'app'"
                                    + " and state like 'idle in transaction%'");
            long down = System.nanoTime();
            net.linkDown(client);
            CompletableFuture<String> waiter = countThroughRelay(relay, "t1");
            Await.until(
                    "the dead client's transaction to be rolled back",
                    BOUND,
                    () -> idleInTransaction(direct) == 0);
            long rolledBack = System.nanoTime();
            assertEquals("0", waiter.get(BOUND.toMillis(), TimeUnit.MILLISECONDS));
            long served = System.nanoTime();

            // The pool has its one server connection back, idle, and nobody waits; the dead
            // client is gone from SHOW CLIENTS.
            Map<String, String> pool = appPool(console);
            assertEquals("0", pool.get("cl_waiting"), pool.toString());
            assertEquals("0", pool.get("sv_active"), pool.toString());
            assertEquals(
                    1,
                    Integer.parseInt(pool.get("sv_idle")) + Integer.parseInt(pool.get("sv_used")),
                    pool.toString());
            assertTrue(
                    show(console, "SHOW CLIENTS").stream()
                            .noneMatch(c -> client.address().equals(c.get("addr"))),
                    "the dead client is still listed");
            // Another host is served as well.
            assertEquals("0", psqlCount(net.host("other"), net, relay, "t1"));
            // The uncommitted row never shows up, and the dead client's transaction cannot
            // come back.
            net.linkUp(client);
            psql.send("COMMIT;\n");
            int exit = psql.waitFor(Duration.ofSeconds(15));
            assertTrue(exit > 0, "psql exit " + exit + ": " + psql.stderr());
            assertEquals("0", one(direct, countSql("t1")));

            System.out.printf(
                    "ClientNetworkFaultTest: idle_transaction_timeout=%d s, client idle in its"
                            + " transaction for %s ms when its link went down; link down ->"
                            + " server transaction rolled back %d ms, -> next client served %d ms;"
                            + " SHOW POOLS %s; dead client's psql: %s%n",
                    IDLE_TX_TIMEOUT.toSeconds(),
                    idleBefore,
                    millis(rolledBack - down),
                    millis(served - down),
                    pool,
                    psql.stderr().strip().replace('\n', ' '));
        }
    }

    @Test
    void withoutIdleTransactionTimeoutOnlyTcpKeepaliveWouldEverFreeIt() throws Exception {
        Duration held = Duration.ofSeconds(5);
        try (TestNetwork net = TestNetwork.create("client");
                RelayFixture relay =
                        relay(net).set("pool.query_wait_timeout", held.toSeconds() + "s").start();
                Connection direct = superuser();
                Connection console = relay.console()) {
            Host client = net.host("client");
            HostProcess psql = openTransaction(net, relay, client, "t2");

            long down = System.nanoTime();
            net.linkDown(client);
            // Nothing tells pgrelay the client is gone: the next client waits out
            // query_wait_timeout, and the transaction is still open on the server.
            CompletableFuture<String> waiter = countThroughRelay(relay, "t2");
            ExecutionException e =
                    assertThrows(
                            ExecutionException.class,
                            () ->
                                    waiter.get(
                                            held.plusSeconds(5).toMillis(), TimeUnit.MILLISECONDS));
            assertTrue(e.getCause() instanceof SQLException, String.valueOf(e.getCause()));
            assertEquals("57014", ((SQLException) e.getCause()).getSQLState(), e.getMessage());
            long stillHeld = System.nanoTime();
            assertEquals(1, idleInTransaction(direct));
            assertTrue(
                    show(console, "SHOW CLIENTS").stream()
                            .anyMatch(c -> client.address().equals(c.get("addr"))));
            // What would free it: the keepalive timer on pgrelay's socket to the client.
            String socket =
                    Proc.of("ss", "-tnoH", "state", "established", "dst", client.address())
                            .timeout(Duration.ofSeconds(10))
                            .check()
                            .stdoutTrimmed();
            // pgrelay's tcp block sets these on its client sockets (the kernel's are the fallback).
            TcpSettings tcp = relay.relay().config().tcp();
            String keepalive =
                    tcp.keepIdleSeconds() + "/" + tcp.keepIntervalSeconds() + "/" + tcp.keepCount();
            assertTrue(socket.contains("timer:(keepalive"), socket);

            // The network comes back and the client goes away normally: freed at once.
            net.linkUp(client);
            long up = System.nanoTime();
            psql.closeStdin();
            Await.until(
                    "the server transaction to end once the client is back and quits",
                    Duration.ofSeconds(10),
                    () -> idleInTransaction(direct) == 0);
            long freed = System.nanoTime();
            assertEquals("0", countThroughRelay(relay, "t2").get(10, TimeUnit.SECONDS));

            System.out.printf(
                    "ClientNetworkFaultTest: no idle_transaction_timeout: server connection still"
                            + " held %d ms after the client's link went down (next client: 57014"
                            + " after query_wait_timeout=%d s); pgrelay's socket to the client: %s;"
                            + " keepalive idle/intvl/probes = %s s, so a dead client would"
                            + " be noticed after time + intvl x probes at the earliest; link back"
                            + " up and psql quits -> freed in %d ms%n",
                    millis(stillHeld - down),
                    held.toSeconds(),
                    socket.replaceAll("\\s+", " "),
                    keepalive,
                    millis(freed - up));
        }
    }

    // ------------------------------------------------------------------------------------------

    private static RelayFixture.Builder relay(TestNetwork net) {
        return RelayFixture.builder(pg)
                .set("listen.host", net.rootAddress())
                .set("pool.default_pool_size", 1)
                .set("pool.query_wait_timeout", "30s")
                .set("admin.admin_users", List.of("postgres"));
    }

    /**
     * psql in {@code host}, through pgrelay: BEGIN and an INSERT, then it waits (standard input
     * stays open). Returns once psql has the INSERT's answer and the server shows the transaction
     * idle in it.
     */
    private static HostProcess openTransaction(
            TestNetwork net, RelayFixture relay, Host host, String tag) throws Exception {
        HostProcess psql =
                host.spawn(
                        Map.of("PGPASSWORD", PgServer.APP_PASSWORD, "PGCONNECT_TIMEOUT", "10"),
                        psqlArgs(net, relay));
        psql.send(
                "BEGIN;\nINSERT INTO dead_client VALUES ('"
                        + tag
                        + "');\n\\echo inserted-"
                        + tag
                        + "\n");
        // psql has the INSERT's answer (not only the server: pgrelay may still be relaying it,
        // and a link cut then leaves those bytes unacknowledged on pgrelay's socket).
        psql.awaitStdout("inserted-" + tag, Duration.ofSeconds(20));
        try (Connection direct = superuser()) {
            Await.until(
                    "psql in "
                            + host
                            + " to be idle in its transaction (stderr: "
                            + psql.stderr()
                            + ")",
                    Duration.ofSeconds(20),
                    () -> idleInTransaction(direct) == 1);
        }
        return psql;
    }

    private static List<String> psqlArgs(TestNetwork net, RelayFixture relay) {
        return List.of(
                "psql",
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                net.rootAddress(),
                "-p",
                String.valueOf(relay.writePort()),
                "-U",
                PgServer.APP_USER,
                "-d",
                PgServer.APP_DB);
    }

    private static String psqlCount(Host host, TestNetwork net, RelayFixture relay, String tag) {
        List<String> cmd = new ArrayList<>(psqlArgs(net, relay));
        cmd.add("-c");
        cmd.add(countSql(tag));
        return host.proc(cmd)
                .cleanPgEnv()
                .env("PGPASSWORD", PgServer.APP_PASSWORD)
                .timeout(Duration.ofSeconds(20))
                .check()
                .stdoutTrimmed();
    }

    /** pgjdbc from the root namespace: the number of rows with this tag, on a separate thread. */
    private static CompletableFuture<String> countThroughRelay(RelayFixture relay, String tag) {
        return CompletableFuture.supplyAsync(
                () -> {
                    try (Connection c = relay.app()) {
                        return one(c, countSql(tag));
                    } catch (SQLException e) {
                        throw new java.util.concurrent.CompletionException(e);
                    }
                });
    }

    private static String countSql(String tag) {
        return "select count(*) from dead_client where tag = '" + tag + "'";
    }

    private static Connection superuser() throws SQLException {
        return pg.connect(PgServer.APP_DB, PgServer.SUPERUSER, PgServer.SUPERUSER_PASSWORD);
    }

    private static int idleInTransaction(Connection direct) throws SQLException {
        return Integer.parseInt(
                one(
                        direct,
                        "select count(*) from pg_stat_activity where usename = 'app'"
                                + " and state like 'idle in transaction%'"));
    }

    private static Map<String, String> appPool(Connection console) throws SQLException {
        return show(console, "SHOW POOLS").stream()
                .filter(p -> PgServer.APP_DB.equals(p.get("database")))
                .filter(p -> PgServer.APP_USER.equals(p.get("user")))
                .findFirst()
                .orElseThrow();
    }

    private static List<Map<String, String>> show(Connection console, String command)
            throws SQLException {
        List<Map<String, String>> rows = new ArrayList<>();
        try (Statement st = console.createStatement();
                ResultSet rs = st.executeQuery(command)) {
            int n = rs.getMetaData().getColumnCount();
            while (rs.next()) {
                Map<String, String> row = new LinkedHashMap<>();
                for (int i = 1; i <= n; i++) {
                    row.put(rs.getMetaData().getColumnName(i), rs.getString(i));
                }
                rows.add(row);
            }
        }
        return rows;
    }

    private static long millis(long nanos) {
        return TimeUnit.NANOSECONDS.toMillis(nanos);
    }
}
