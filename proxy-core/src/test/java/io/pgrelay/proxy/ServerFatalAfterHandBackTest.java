package io.pgrelay.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.netty.channel.EventLoop;
import io.netty.channel.uring.IoUring;
import io.pgrelay.testkit.PgServer;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A server's FATAL that arrives just after the ReadyForQuery that handed its connection back, for a
 * client on another event loop (ServerConnection.handOverBatch). It used to be dropped as "meant
 * for the client that just let go": the connection went back to the pool as usable although its
 * backend was exiting, and the next client's query was lost to the close (08006, "server connection
 * ... was lost", instead of the server's 57P01). Seen under churn on io_uring
 * (PreparedStatementMappingTest.serverConnectionChurn).
 *
 * <p>Made deterministic from outside: the first client's event loop is held busy while the server
 * sends ReadyForQuery and then, on pg_terminate_backend, its FATAL, so both are read and batched
 * for that client before it sees either. The backend owns many temporary tables, so it takes a
 * while to exit after the FATAL: long enough for a second client, queued for the only connection,
 * to be handed it and send its query before the close is seen.
 */
class ServerFatalAfterHandBackTest {

    @RegisterExtension static final RelayExtension servers = RelayExtension.postgres();

    @Test
    void fatalAfterHandBackOnIoUring() throws Exception {
        assumeTrue(
                IoUring.isAvailable(),
                () -> "io_uring not available here: " + IoUring.unavailabilityCause());
        run(true);
    }

    @Test
    void fatalAfterHandBackOnEpoll() throws Exception {
        run(false);
    }

    private static Connection jdbc(RelayFixture relay) throws SQLException {
        return relay.connect(
                relay.writePort(),
                PgServer.APP_DB,
                PgServer.APP_USER,
                PgServer.APP_PASSWORD,
                Map.of("prepareThreshold", "0"));
    }

    private static void run(boolean ioUring) throws Exception {
        try (RelayFixture relay =
                        RelayFixture.builder(servers.primary())
                                .set("pool.default_pool_size", 1)
                                .set("runtime.worker_threads", 2)
                                .set("runtime.use_io_uring", ioUring)
                                // The opener's temporary tables must stay on the shared
                                // connection (they slow its exit), not pin it to the opener.
                                .set("pool.track_session_state", false)
                                .start();
                Connection admin =
                        servers.primary()
                                .connect(
                                        PgServer.APP_DB,
                                        PgServer.SUPERUSER,
                                        PgServer.SUPERUSER_PASSWORD)) {
            assertEquals(ioUring ? "io_uring" : "epoll", relay.relay().transport().name());
            // Accepted connections go round the two loops; the server connection opens on the loop
            // of the first client that needs it, so the second client is on the other loop.
            Connection opener = jdbc(relay);
            Connection a = jdbc(relay);
            Connection b = jdbc(relay);
            // Slow the backend's exit: it drops its temporary tables first.
            try (var st = opener.createStatement()) {
                st.execute(
                        "do $$ begin for i in 1..3000 loop execute format("
                                + "'create temp table if not exists t%s(a int)', i); end loop; end $$");
            }
            ServerConnection conn =
                    relay.relay().pools().all().iterator().next().connections.iterator().next();
            int pid = conn.processId();
            EventLoop serverLoop = conn.channel().eventLoop();
            EventLoop other = null;
            for (var e : relay.relay().transport().group()) {
                if (e != serverLoop) {
                    other = (EventLoop) e;
                }
            }
            // a's query runs while a's loop (the other one) is held; b waits for the connection.
            CompletableFuture<String> aResult =
                    CompletableFuture.supplyAsync(
                            () -> {
                                try {
                                    return RelayFixture.one(a, "select 'a' from pg_sleep(0.3)");
                                } catch (SQLException e) {
                                    return e.getSQLState();
                                }
                            });
            waitFor(admin, pid, "active");
            CountDownLatch held = new CountDownLatch(1);
            CountDownLatch release = new CountDownLatch(1);
            other.execute(
                    () -> {
                        held.countDown();
                        try {
                            release.await(10, TimeUnit.SECONDS);
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                    });
            assertTrue(held.await(5, TimeUnit.SECONDS));
            CompletableFuture<String> bResult;
            try {
                bResult =
                        CompletableFuture.supplyAsync(
                                () -> {
                                    try {
                                        return RelayFixture.one(b, "select 'b'");
                                    } catch (SQLException e) {
                                        return e.getSQLState();
                                    }
                                });
                // The reply to a is sent (and read, and batched for a's held loop); then the FATAL.
                waitFor(admin, pid, "idle");
                Thread.sleep(50);
                RelayFixture.one(admin, "select pg_terminate_backend(" + pid + ")");
                Thread.sleep(50);
            } finally {
                release.countDown();
            }
            assertEquals("a", aResult.get(30, TimeUnit.SECONDS));
            // b either got a fresh connection (the FATAL was seen before b was handed this one)
            // or hears the server's own reason; never a bare 08006, and never waits.
            String bAnswer = bResult.get(30, TimeUnit.SECONDS);
            assertTrue(bAnswer.equals("b") || bAnswer.equals("57P01"), bAnswer);
            // Whatever happened, b goes on.
            assertEquals("1", RelayFixture.one(b, "select 1"));
            opener.close();
            a.close();
            b.close();
        }
    }

    private static void waitFor(Connection admin, int pid, String state) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() < deadline) {
            String s =
                    RelayFixture.column(
                                    admin,
                                    "select coalesce(state, '') from pg_stat_activity where pid = "
                                            + pid)
                            .stream()
                            .findFirst()
                            .orElse("gone");
            if (s.equals(state)) {
                return;
            }
            Thread.sleep(5);
        }
        throw new AssertionError("backend " + pid + " never became " + state);
    }
}
