package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pgrelay.testkit.Await;
import io.pgrelay.testkit.PgServer;
import io.pgrelay.testkit.TestNetwork;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A server whose host stops answering (the packets vanish: a host powered off, a partition), made
 * real with a {@link TestNetwork} host: pgrelay reaches PostgreSQL through a forwarder inside the
 * host, which is then black-holed (every packet to and from it dropped), so nothing is acknowledged
 * and nothing is refused. Without tcp_user_timeout and keepalive, such a connection waits ~15
 * minutes of retransmissions (idle: 2 h 11 min). Needs root and {@code ip netns} (skipped
 * otherwise) and {@code nft} for the black hole (aborted otherwise).
 */
class BlackHoledServerTest {

    @RegisterExtension static final RelayExtension servers = RelayExtension.postgres();

    private static TestNetwork net;
    private static TestNetwork.Host server;

    @BeforeAll
    static void network() {
        TestNetwork.assumeAvailable();
        net = TestNetwork.create("pghost");
        server = net.host("pghost");
        // PostgreSQL listens on loopback; pgrelay connects to it through the host.
        net.forward(server, 5432, PgServer.HOST, servers.primary().port());
    }

    @AfterAll
    static void cleanUp() {
        if (net != null) {
            net.close();
        }
    }

    @AfterEach
    void lift() {
        if (net != null) {
            net.heal(server);
        }
    }

    private RelayFixture.Builder relay() {
        return RelayFixture.builder(servers.primary())
                .set("backends.primary", server.address() + ":5432");
    }

    @Test
    void aQueryToASilentServerFailsWithinTcpUserTimeout() throws Exception {
        try (RelayFixture relay = relay().set("tcp.server_tcp_user_timeout", 3000).start();
                Connection c = relay.app()) {
            c.setAutoCommit(false);
            assertEquals("1", one(c, "select 1")); // its server connection is through the hole
            net.blackHole(server);
            long start = System.nanoTime();
            SQLException e = assertThrows(SQLException.class, () -> one(c, "select 2"));
            long millis = Duration.ofNanos(System.nanoTime() - start).toMillis();
            System.out.printf(
                    "query to a black-holed server failed after %d ms: %s %s%n",
                    millis, e.getSQLState(), e.getMessage());
            // 3 s of unacknowledged data; without it, pgjdbc's own socketTimeout (60 s) would end
            // the wait long after.
            assertTrue(millis >= 2500 && millis < 10_000, "failed after " + millis + " ms: " + e);
        }
    }

    @Test
    void anIdlePooledConnectionToASilentServerIsDroppedByKeepalive() throws Exception {
        try (RelayFixture relay =
                        relay().set("tcp.tcp_keepidle", 1)
                                .set("tcp.tcp_keepintvl", 1)
                                .set("tcp.tcp_keepcnt", 2)
                                .set("tcp.tcp_user_timeout", 0)
                                .set("tcp.server_tcp_user_timeout", 0)
                                .start();
                Connection c = relay.app()) {
            assertEquals("1", one(c, "select 1"));
            List<ServerPool> pools = List.copyOf(relay.relay().pools().all());
            assertEquals(1, pools.size());
            // Back in the pool once the server's ReadyForQuery is handled (the client may be
            // first).
            Await.until(
                    "the server connection idle in the pool",
                    Duration.ofSeconds(5),
                    () -> pools.get(0).pool().stats().idle() == 1);
            net.blackHole(server);
            long start = System.nanoTime();
            // 1 s idle, then 2 unanswered probes 1 s apart.
            Await.until(
                    "the idle server connection is dropped",
                    Duration.ofSeconds(15),
                    () -> pools.get(0).pool().stats().total() == 0);
            long millis = Duration.ofNanos(System.nanoTime() - start).toMillis();
            System.out.printf(
                    "idle connection to a black-holed server dropped after %d ms%n", millis);
            assertTrue(millis < 8000, "dropped after " + millis + " ms");
        }
    }
}
