package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pgrelay.admin.AdminView;
import io.pgrelay.routing.EtcdTopologySource;
import io.pgrelay.testkit.Await;
import io.pgrelay.testkit.PatroniCluster;
import io.pgrelay.testkit.PgServer;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * pgrelay in front of a real 3-node Patroni cluster on a real etcd: routing, a planned switchover
 * under load, an etcd outage, a stopped replica and a killed leader. One cluster for the whole
 * class; the tests run in order and each leaves the cluster healthy for the next, except the last.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@Timeout(300)
class PatroniRoutingTest {

    @RegisterExtension
    static final RelayExtension servers =
            RelayExtension.patroni("pgrelay" + ProcessHandle.current().pid())
                    .withRelay(
                            relay ->
                                    relay.set("pool.default_pool_size", 10)
                                            .set("routing.patroni.leader_wait_timeout", "60s"));

    @BeforeAll
    static void start() {
        PatroniCluster cluster = servers.cluster();
        cluster.psql(
                cluster.leaderName(),
                PgServer.APP_DB,
                "create table writes(thread int, seq bigint, primary key (thread, seq)); alter table writes owner to app");
        Await.until(
                "pgrelay confirms the leader",
                Duration.ofSeconds(30),
                () -> {
                    try (Connection c = servers.relay().app()) {
                        return "f".equals(one(c, "select pg_is_in_recovery()"));
                    } catch (SQLException e) {
                        return false;
                    }
                });
    }

    /**
     * Asks each replica directly, every 5 ms, whether it is still in recovery: when the new leader
     * became writable, independent of pgrelay.
     */
    static final class PromotionWatch implements AutoCloseable {
        private final Map<String, Long> promotedAt = new ConcurrentHashMap<>();
        private final AtomicBoolean running = new AtomicBoolean(true);
        private final List<Thread> threads = new ArrayList<>();

        PromotionWatch(List<String> members) throws SQLException {
            for (String member : members) {
                Connection c =
                        servers.relay()
                                .connect(
                                        servers.cluster().memberPort(member),
                                        PgServer.APP_DB,
                                        "app",
                                        "app-secret",
                                        Map.of());
                Thread t =
                        new Thread(
                                () -> {
                                    try (c) {
                                        while (running.get()) {
                                            if ("f".equals(one(c, "select pg_is_in_recovery()"))) {
                                                promotedAt.putIfAbsent(member, System.nanoTime());
                                                return;
                                            }
                                            Thread.sleep(5);
                                        }
                                    } catch (SQLException | InterruptedException e) {
                                        // the member restarted or the test ended: nothing to see
                                    }
                                },
                                "promotion-watch");
                t.setDaemon(true);
                t.start();
                threads.add(t);
            }
        }

        long promotedAt(String member) {
            Long at = promotedAt.get(member);
            assertTrue(at != null, member + " was not seen leaving recovery");
            return at;
        }

        @Override
        public void close() throws InterruptedException {
            running.set(false);
            for (Thread t : threads) {
                t.join(5_000);
            }
        }
    }

    private static Set<String> portsOf(List<String> names) {
        Set<String> ports = new HashSet<>();
        for (String n : names) {
            ports.add(String.valueOf(servers.cluster().memberPort(n)));
        }
        return ports;
    }

    @Test
    @Order(1)
    void writesGoToTheLeaderAndReadsAreSpreadOverBothReplicas() throws Exception {
        String leader = servers.cluster().leaderName();
        try (Connection w = servers.relay().app();
                Connection r = servers.relay().appRead()) {
            assertEquals("f", one(w, "select pg_is_in_recovery()"));
            assertEquals(
                    String.valueOf(servers.cluster().memberPort(leader)),
                    one(w, "select inet_server_port()"));
            Set<String> ports = new HashSet<>();
            for (int i = 0; i < 20; i++) {
                // One statement, one transaction: each transaction is routed on its own.
                String[] answer =
                        one(r, "select pg_is_in_recovery()::text || ' ' || inet_server_port()")
                                .split(" ");
                assertEquals("true", answer[0]);
                ports.add(answer[1]);
            }
            assertEquals(portsOf(servers.cluster().replicaNames()), ports);
        }
    }

    @Test
    @Order(2)
    void instancesFindEachOtherInEtcdAndForwardCancels() throws Exception {
        RelayFixture first = servers.relay();
        try (RelayFixture second =
                RelayFixture.patroni(servers.cluster())
                        .set("runtime.instance_id", "second")
                        .set("routing.patroni.leader_wait_timeout", "60s")
                        .start()) {
            Peers a = first.relay().peers();
            Peers b = second.relay().peers();
            Await.until(
                    "both instances hold a peer id and see each other in etcd",
                    Duration.ofSeconds(20),
                    () ->
                            a.ownId() != 0
                                    && b.ownId() != 0
                                    && a.rows().size() == 2
                                    && b.rows().size() == 2);
            assertNotEquals(a.ownId(), b.ownId());
            AdminView.PeerRow secondSeenByFirst =
                    a.rows().stream().filter(r -> !r.self()).findFirst().orElseThrow();
            assertEquals("second", secondSeenByFirst.instanceId());
            assertEquals("etcd", secondSeenByFirst.source());
            assertEquals(second.writePort(), secondSeenByFirst.port());

            try (RawClient client = RawClient.app(first)) {
                assertEquals(a.ownId(), CancelKeys.peerOf(client.processId));
                client.send(RawClient.query("select pg_sleep(20)"));
                Thread.sleep(100);
                RawClient.cancel(second.writePort(), client.processId, client.secretKey);
                String sqlState = null;
                for (RawClient.Message m : client.untilReady()) {
                    if (m.type() == 'E') {
                        sqlState = m.fields().get('C');
                    }
                }
                assertEquals("57014", sqlState, "cancelled through the other instance");
            }
        }
        // A stopped instance withdraws its key at once (its lease is revoked).
        Await.until(
                "the stopped instance leaves the first one's peers",
                Duration.ofSeconds(10),
                () -> first.relay().peers().rows().size() == 1);
    }

    @Test
    @Order(3)
    void aStoppedReplicaLeavesTheRotationAndRejoins() throws Exception {
        String replica = servers.cluster().replicaNames().get(0);
        int port = servers.cluster().memberPort(replica);
        try (WriteReadLoad load = new WriteReadLoad(servers::relay, 0, 2)) {
            Thread.sleep(500);
            servers.cluster().stopMember(replica);
            Await.until(
                    replica + " out of the read rotation",
                    Duration.ofSeconds(30),
                    () ->
                            !servers.relay()
                                    .relay()
                                    .patroni()
                                    .replicas()
                                    .contains(new io.pgrelay.routing.Backend("127.0.0.1", port)));
            int errorsAtExclusion = load.readErrors.size();
            load.readPorts.clear();
            Thread.sleep(1500);
            assertFalse(load.readPorts.contains(port), "reads still reach the stopped replica");
            assertEquals(
                    errorsAtExclusion,
                    load.readErrors.size(),
                    "read errors after the replica left: " + load.readErrors);
            // Only transactions cut by the replica's own shutdown may have failed.
            for (String e : load.readErrors) {
                assertTrue(e.startsWith("57P01") || e.startsWith("08"), e);
            }
            System.out.println(
                    "PatroniRoutingTest: replica stop cut " + load.readErrors.size() + " read(s)");
            servers.cluster().startMember(replica);
            servers.cluster().awaitHealthy(Duration.ofSeconds(60));
            Await.until(
                    replica + " back in the read rotation",
                    Duration.ofSeconds(30),
                    () -> load.readPorts.contains(port));
        }
    }

    @Test
    @Order(4)
    void plannedSwitchoverUnderLoadHasNoClientErrors() throws Exception {
        String oldLeader = servers.cluster().leaderName();
        WriteReadLoad load = new WriteReadLoad(servers::relay, 8, 2);
        long requested;
        long promoted;
        try (PromotionWatch watch = new PromotionWatch(servers.cluster().replicaNames())) {
            Thread.sleep(2000);
            requested = System.nanoTime();
            String newLeader = servers.cluster().switchover(null);
            assertNotEquals(oldLeader, newLeader);
            Thread.sleep(3000);
            promoted = watch.promotedAt(newLeader);
        } finally {
            load.close();
        }
        long firstWrite = load.firstWriteAfter(promoted);
        long lastWriteBefore = load.lastWriteBefore(promoted);
        // For the record (README, issue notes): where the write gap goes. Not asserted: timing.
        System.out.printf(
                "PatroniRoutingTest: switchover: %d writes, %d write errors, %d read errors, longest write"
                        + " gap %d ms; from the switchover request: last write on the old leader"
                        + " %+d ms, new leader out of recovery %+d ms (seen directly), first write"
                        + " through pgrelay %+d ms (%d ms after the promotion)%n",
                load.acknowledged.size(),
                load.writeErrors.size(),
                load.readErrors.size(),
                load.longestGapNanos.get() / 1_000_000,
                (lastWriteBefore - requested) / 1_000_000,
                (promoted - requested) / 1_000_000,
                (firstWrite - requested) / 1_000_000,
                (firstWrite - promoted) / 1_000_000);
        assertEquals(List.of(), load.writeErrors);
        assertEquals(List.of(), load.readErrors);
        load.assertAllAcknowledgedWritesPresent();
        try (Connection w = servers.relay().app()) {
            assertEquals(
                    String.valueOf(servers.cluster().memberPort(servers.cluster().leaderName())),
                    one(w, "select inet_server_port()"));
        }
        servers.cluster().awaitHealthy(Duration.ofSeconds(60));
    }

    @Test
    @Order(5)
    void etcdOutageKeepsRoutingAndASwitchoverIsFollowedAfterwards() throws Exception {
        WriteReadLoad load = new WriteReadLoad(servers::relay, 4, 2);
        try {
            Thread.sleep(1000);
            servers.cluster().stopEtcd();
            Await.until(
                    "pgrelay notices etcd is gone",
                    Duration.ofSeconds(20),
                    () -> !servers.relay().relay().patroni().topology().sourceConnected());
            Thread.sleep(30_000);
            servers.cluster().startEtcd();
            Await.until(
                    "pgrelay reconnects to etcd",
                    Duration.ofSeconds(60),
                    () -> servers.relay().relay().patroni().topology().sourceConnected());
        } finally {
            load.close();
        }
        System.out.printf(
                "PatroniRoutingTest: etcd outage: %d writes, %d write errors, %d read errors, longest write"
                        + " gap %d ms%n",
                load.acknowledged.size(),
                load.writeErrors.size(),
                load.readErrors.size(),
                load.longestGapNanos.get() / 1_000_000);
        assertEquals(List.of(), load.writeErrors);
        assertEquals(List.of(), load.readErrors);
        servers.cluster().awaitHealthy(Duration.ofSeconds(60));
        String newLeader = servers.cluster().switchover(null);
        Await.until(
                "writes follow the switchover after the outage",
                Duration.ofSeconds(30),
                () -> {
                    try (Connection w = servers.relay().app()) {
                        return String.valueOf(servers.cluster().memberPort(newLeader))
                                .equals(one(w, "select inet_server_port()"));
                    } catch (SQLException e) {
                        return false;
                    }
                });
        servers.cluster().awaitHealthy(Duration.ofSeconds(60));
    }

    @Test
    @Order(6)
    void killedLeaderWritesResumeOnTheNewLeader() throws Exception {
        List<long[]> leaderChanges = new CopyOnWriteArrayList<>();
        String oldLeader = servers.cluster().leaderName();
        try (EtcdTopologySource watch =
                new EtcdTopologySource(
                        List.of(servers.cluster().etcdEndpoint()),
                        servers.cluster().namespace(),
                        servers.cluster().scope())) {
            watch.start(
                    t -> {
                        if (t.leader() != null && !t.leader().equals(oldLeader)) {
                            leaderChanges.add(new long[] {System.nanoTime()});
                        }
                    });
            WriteReadLoad load = new WriteReadLoad(servers::relay, 4, 0);
            try {
                Thread.sleep(1000);
                servers.cluster().killLeader();
                Await.until(
                        "a new leader key", Duration.ofSeconds(60), () -> !leaderChanges.isEmpty());
                long keyAt = leaderChanges.get(0)[0];
                Await.until(
                        "a write after the new leader key",
                        Duration.ofSeconds(30),
                        () -> load.firstWriteAfter(keyAt) > 0);
                long delayMs = (load.firstWriteAfter(keyAt) - keyAt) / 1_000_000;
                System.out.printf(
                        "PatroniRoutingTest: killed leader: first write %d ms after the new leader key;"
                                + " %d write errors (transactions cut by the kill)%n",
                        delayMs, load.writeErrors.size());
            } finally {
                load.close();
            }
            // With asynchronous replication a killed primary may take its last commits with it
            // (Patroni bounds it by maximum_lag_on_failover); report, do not assert.
            long lost = 0;
            try (Connection c = servers.relay().app()) {
                for (long key : load.acknowledged) {
                    lost +=
                            "0"
                                            .equals(
                                                    one(
                                                            c,
                                                            "select count(*) from writes where thread = "
                                                                    + (key / 1_000_000_000L)
                                                                    + " and seq = "
                                                                    + (key % 1_000_000_000L)))
                                    ? 1
                                    : 0;
                }
            }
            System.out.printf(
                    "PatroniRoutingTest: killed leader: %d of %d acknowledged writes were not replicated"
                            + " before the kill (asynchronous replication)%n",
                    lost, load.acknowledged.size());
        }
    }
}
