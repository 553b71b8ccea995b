package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pgrelay.testkit.PgServer;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A console SET (like a RELOAD) reaches clients connected before it, as in PgBouncer: the
 * per-client timeouts and limits apply to them from their next check, not only to clients
 * connecting after.
 */
class SetReachesConnectedClientsTest {

    @RegisterExtension static final RelayExtension servers = RelayExtension.postgres();

    private static RelayFixture relay() {
        return RelayFixture.builder(servers.primary())
                .set("admin.admin_users", List.of("postgres"))
                .start();
    }

    private static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("not within 10 s: " + what);
            }
            Thread.sleep(100);
        }
    }

    @Test
    void clientIdleTimeoutDropsClientsConnectedBeforeTheSet() throws Exception {
        try (RelayFixture relay = relay();
                Connection before = relay.app();
                Connection admin = relay.console()) {
            assertEquals("1", one(before, "select 1"));
            // A bare number is seconds, as PgBouncer reads it.
            admin.createStatement().execute("SET client_idle_timeout = 2");
            try (Connection after = relay.app()) {
                assertEquals("2", one(after, "select 2"));
                long set = System.nanoTime();
                // Only the console is left: it is never idle-timed out.
                await(() -> relay.relay().clientCount() == 1, "both idle clients dropped");
                assertTrue(
                        System.nanoTime() - set >= TimeUnit.MILLISECONDS.toNanos(1500),
                        "dropped before client_idle_timeout");
                for (Connection c : List.of(before, after)) {
                    SQLException e = assertThrows(SQLException.class, () -> one(c, "select 3"));
                    assertEquals("57P05", e.getSQLState(), e.getMessage());
                }
            }
        }
    }

    @Test
    void idleTransactionTimeoutEndsATransactionOpenedBeforeTheSet() throws Exception {
        try (RelayFixture relay = relay();
                Connection inTx = relay.app();
                Connection admin = relay.console()) {
            inTx.setAutoCommit(false);
            assertEquals("1", one(inTx, "select 1"));
            admin.createStatement().execute("SET idle_transaction_timeout = '1s'");
            await(() -> relay.relay().clientCount() == 1, "the idle transaction ended");
            SQLException e = assertThrows(SQLException.class, () -> one(inTx, "select 2"));
            assertEquals("25P03", e.getSQLState(), e.getMessage());
            try (Connection other = relay.app()) {
                assertEquals("3", one(other, "select 3"));
            }
        }
    }

    @Test
    void preparedStatementLimitAppliesToAClientConnectedBeforeTheSet() throws Exception {
        try (RelayFixture relay = relay();
                Connection c =
                        relay.connect(
                                relay.writePort(),
                                PgServer.APP_DB,
                                PgServer.APP_USER,
                                PgServer.APP_PASSWORD,
                                Map.of("prepareThreshold", "1"));
                Connection admin = relay.console()) {
            assertEquals(1, prepared(c, 1)); // a named statement: one of one allowed, then two
            admin.createStatement().execute("SET max_client_prepared_statements = 2");
            assertEquals(2, prepared(c, 2));
            SQLException e = assertThrows(SQLException.class, () -> prepared(c, 3));
            assertEquals("53400", e.getSQLState(), e.getMessage());
            assertTrue(
                    e.getMessage().contains("limits.max_client_prepared_statements"),
                    e.getMessage());
            assertEquals(1, prepared(c, 1)); // the statements it has still work
        }
    }

    /** Runs "select n" as its own prepared statement (pgjdbc names it at the first run). */
    private static int prepared(Connection c, int n) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("select " + n + " where ? = 1")) {
            ps.setInt(1, 1);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getInt(1);
            }
        }
    }
}
