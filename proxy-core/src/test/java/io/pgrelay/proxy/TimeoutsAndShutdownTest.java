package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** query_wait_timeout, idle timeouts, a dead backend, and the graceful shutdown. */
class TimeoutsAndShutdownTest {

    @RegisterExtension static final RelayExtension servers = RelayExtension.postgres();

    @Test
    void queryWaitTimeoutFailsTheRequestAndTheClientMayRetry() throws Exception {
        try (RelayFixture relay =
                        RelayFixture.builder(servers.primary())
                                .set("pool.default_pool_size", 1)
                                .set("pool.query_wait_timeout", "1s")
                                .start();
                Connection holder = relay.app();
                Connection waiter = relay.app()) {
            holder.setAutoCommit(false);
            one(holder, "select 1"); // holds the only server connection inside a transaction
            long start = System.nanoTime();
            SQLException e = assertThrows(SQLException.class, () -> one(waiter, "select 2"));
            assertEquals("57014", e.getSQLState(), e.getMessage());
            assertTrue(e.getMessage().contains("query_wait_timeout"), e.getMessage());
            assertTrue(System.nanoTime() - start >= TimeUnit.MILLISECONDS.toNanos(900));
            holder.commit();
            assertEquals("2", one(waiter, "select 2"));
        }
    }

    @Test
    void aHeldClientGetsItsTimeoutAlthoughHeldClientsAreWokenMeanwhile() throws Exception {
        // Held clients are woken every 200 ms to look again (and held again): the wait they are
        // allowed counts from when they were first held, not from the last wake.
        try (RelayFixture relay =
                        RelayFixture.builder(servers.primary())
                                .set("pool.query_wait_timeout", "1s")
                                .set("admin.admin_users", java.util.List.of("postgres"))
                                .start();
                Connection admin =
                        relay.connect(
                                relay.writePort(),
                                "pgbouncer",
                                "postgres",
                                "postgres",
                                java.util.Map.of("preferQueryMode", "simple"));
                Connection client = relay.app()) {
            assertEquals("1", one(client, "select 1"));
            admin.createStatement().execute("PAUSE appdb");
            long start = System.nanoTime();
            SQLException e = assertThrows(SQLException.class, () -> one(client, "select 2"));
            long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            assertEquals("57014", e.getSQLState(), e.getMessage());
            assertTrue(e.getMessage().contains("paused"), e.getMessage());
            assertTrue(millis >= 900 && millis < 5000, "failed after " + millis + " ms");
            admin.createStatement().execute("RESUME appdb");
            assertEquals("3", one(client, "select 3"));
        }
    }

    @Test
    void idleTransactionTimeoutDisconnectsTheClient() throws Exception {
        try (RelayFixture relay =
                        RelayFixture.builder(servers.primary())
                                .set("pool.idle_transaction_timeout", "1s")
                                .start();
                Connection c = relay.app();
                Connection other = relay.app()) {
            c.setAutoCommit(false);
            one(c, "select 1");
            Thread.sleep(2500);
            SQLException e = assertThrows(SQLException.class, () -> one(c, "select 1"));
            assertTrue(
                    e.getSQLState().startsWith("08") || e.getSQLState().equals("25P03"),
                    e.getSQLState());
            assertEquals("1", one(other, "select 1"));
        }
    }

    @Test
    void clientIdleTimeoutDisconnectsIdleClients() throws Exception {
        try (RelayFixture relay =
                        RelayFixture.builder(servers.primary())
                                .set("pool.client_idle_timeout", "1s")
                                .start();
                Connection c = relay.app()) {
            one(c, "select 1");
            Thread.sleep(2500);
            assertThrows(SQLException.class, () -> one(c, "select 1"));
            assertEquals(0, relay.relay().clientCount());
        }
    }

    @Test
    void deadBackendGivesAClearError() throws Exception {
        try (RelayFixture relay =
                RelayFixture.builder(servers.primary())
                        .set("backends.primary", "127.0.0.1:1")
                        .start()) {
            SQLException e = assertThrows(SQLException.class, relay::app);
            assertEquals("08006", e.getSQLState(), e.getMessage());
            assertTrue(e.getMessage().contains("127.0.0.1:1"), e.getMessage());
        }
    }

    @Test
    void gracefulShutdownServesConnectedClientsAndClosesThemBetweenTransactions() throws Exception {
        RelayFixture relay = RelayFixture.builder(servers.primary()).start();
        try (Connection inTx = relay.app();
                Connection idle = relay.app();
                Connection busy = relay.app()) {
            inTx.setAutoCommit(false);
            try (Statement st = inTx.createStatement()) {
                st.execute("create temp table t(i int)");
            }
            AtomicBoolean stop = new AtomicBoolean();
            AtomicLong lastOk = new AtomicLong();
            CompletableFuture<SQLException> busyLoop =
                    CompletableFuture.supplyAsync(
                            () -> {
                                while (!stop.get()) {
                                    try {
                                        one(busy, "select 1");
                                        lastOk.set(System.nanoTime());
                                        Thread.sleep(50);
                                    } catch (SQLException e) {
                                        return e;
                                    } catch (InterruptedException e) {
                                        return null;
                                    }
                                }
                                return null;
                            });
            long start = System.nanoTime();
            CompletableFuture<Void> stopping =
                    CompletableFuture.runAsync(
                            () -> {
                                try {
                                    relay.relay().shutdown(Duration.ofSeconds(8));
                                } catch (InterruptedException e) {
                                    Thread.currentThread().interrupt();
                                }
                            });
            Thread.sleep(300);
            // New clients are refused; the connected ones are still served.
            assertThrows(SQLException.class, relay::app);
            try (Statement st = inTx.createStatement()) {
                st.execute("insert into t values (1)");
            }
            // Idle for a second or more: closed (the janitor looks once a second).
            Thread.sleep(2500);
            SQLException closed = assertThrows(SQLException.class, () -> one(idle, "select 1"));
            assertEquals("57P01", closed.getSQLState(), closed.getMessage());
            // The open transaction still commits, and the busy client was never interrupted.
            inTx.commit();
            assertTrue(
                    !busyLoop.isDone(),
                    () -> "the busy client was closed in the drain: " + busyLoop.join());
            // In the last quarter (from 6 s) the busy client is closed between two statements.
            SQLException busyClosed = busyLoop.get(10, TimeUnit.SECONDS);
            assertTrue(busyClosed != null, "the busy client was closed");
            long servedFor = TimeUnit.NANOSECONDS.toMillis(lastOk.get() - start);
            assertTrue(servedFor >= 5_500, "busy client served for " + servedFor + " ms");
            stopping.get(10, TimeUnit.SECONDS);
            stop.set(true);
        } finally {
            relay.close();
        }
    }
}
