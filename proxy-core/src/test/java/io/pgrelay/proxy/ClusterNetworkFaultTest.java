package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pgrelay.routing.Backend;
import io.pgrelay.testkit.Await;
import io.pgrelay.testkit.EtcdCluster;
import io.pgrelay.testkit.FreePorts;
import io.pgrelay.testkit.PatroniCluster;
import io.pgrelay.testkit.PgServer;
import io.pgrelay.testkit.TestNetwork;
import io.pgrelay.testkit.TestNetwork.Host;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.Timeout;

/**
 * Silent faults in a Patroni cluster whose every node and etcd member is a host of its own (issue
 * 15, scenarios 1 to 4): three PostgreSQL/Patroni hosts and three etcd hosts on a {@link
 * TestNetwork}, pgrelay and its pgjdbc clients (4 writers, 2 readers) in the root namespace. Faults
 * are nftables drops: packets vanish, nobody gets an RST. Each scenario prints its figures (errors,
 * longest write gap, acknowledged writes lost, time to recover) and heals the cluster for the next.
 * Needs root, {@code ip netns} and {@code nft}; skipped otherwise.
 */
@Timeout(900)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ClusterNetworkFaultTest {

    private static final Duration REJOIN = Duration.ofSeconds(120);

    private static TestNetwork net;
    private static EtcdCluster etcd;
    private static PatroniCluster cluster;
    private static RelayFixture relay;

    @BeforeAll
    static void start() {
        TestNetwork.assumeAvailable();
        Assumptions.assumeTrue(TestNetwork.nftAvailable(), "nft (Debian nftables) is missing");
        net = TestNetwork.create("pg1", "pg2", "pg3", "etcd1", "etcd2", "etcd3");
        etcd = EtcdCluster.start(List.of(net.host("etcd1"), net.host("etcd2"), net.host("etcd3")));
        cluster =
                PatroniCluster.startOn(
                        "pgrelaynet" + ProcessHandle.current().pid(),
                        new PatroniCluster.Placement(
                                List.of(net.host("pg1"), net.host("pg2"), net.host("pg3")),
                                etcd,
                                true));
        cluster.psql(
                cluster.leaderName(),
                PgServer.APP_DB,
                "create table writes(thread int, seq bigint, primary key (thread, seq)); alter table writes owner to app;"
                        + " create table ballast(b text); alter table ballast owner to app");
        relay =
                RelayFixture.patroni(cluster)
                        .set("routing.patroni.leader_wait_timeout", "90s")
                        .set("routing.patroni.max_replica_lag_bytes", 4 * 1024 * 1024)
                        .set("routing.patroni.read_fallback_to_primary", false)
                        .set("pool.default_pool_size", 10)
                        .set("admin.admin_users", List.of("postgres"))
                        .set("admin.http_port", FreePorts.next())
                        .start();
        awaitWritable(Duration.ofSeconds(30));
    }

    @AfterAll
    static void stop() {
        try {
            if (relay != null) {
                relay.close();
            }
        } finally {
            try {
                if (cluster != null) {
                    cluster.close();
                }
            } finally {
                try {
                    if (etcd != null) {
                        etcd.close();
                    }
                } finally {
                    if (net != null) {
                        net.close();
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------------------------------------
    // Scenario 1: the leader's host black-holed, with and without synchronous_mode
    // ------------------------------------------------------------------------------------------

    @Test
    @Order(1)
    void leaderBlackHoledWithSynchronousModeLosesNoAcknowledgedWrite() throws Exception {
        Outcome o = blackHoleLeader("synchronous_mode: true");
        assertEquals(0, o.lost, "acknowledged writes lost with synchronous_mode: " + o);
    }

    @Test
    @Order(2)
    void leaderBlackHoledWithoutSynchronousMode() throws Exception {
        synchronousMode(false);
        // Lost writes are possible here (asynchronous replication): reported, not asserted.
        blackHoleLeader("asynchronous");
    }

    // ------------------------------------------------------------------------------------------
    // Scenario 3: etcd members black-holed, one of three, then two (quorum lost, failsafe_mode)
    // ------------------------------------------------------------------------------------------

    @Test
    @Order(3)
    void etcdMembersBlackHoledOneThenTwo() throws Exception {
        String leader = cluster.leaderName();
        Host e1 = net.host("etcd1");
        Host e2 = net.host("etcd2");
        WriteReadLoad load = new WriteReadLoad(() -> relay, 4, 2);
        Timeline timeline = new Timeline(load);
        long oneWrites;
        int oneErrors;
        long oneGap;
        long quorumLostAt;
        long healedAt;
        long twoWrites;
        try {
            Thread.sleep(2000);
            long t0 = System.nanoTime();
            net.blackHole(e1);
            timeline.mark("etcd1 black-holed");
            Thread.sleep(25_000);
            oneWrites = load.writeTimes.stream().filter(t -> t >= t0).count();
            oneErrors = load.writeErrors.size() + load.readErrors.size();
            oneGap = load.longestGapNanos.get() / 1_000_000;
            assertEquals(leader, cluster.leaderName(), "one etcd member gone moved the leader");

            quorumLostAt = System.nanoTime();
            net.blackHole(e2);
            timeline.mark("etcd2 black-holed too: no quorum");
            // Longer than ttl (20 s): without failsafe_mode Patroni would demote the leader.
            Thread.sleep(35_000);
            assertFalse(etcd.serving(), "etcd still has a quorum");
            twoWrites = load.writeTimes.stream().filter(t -> t >= quorumLostAt).count();
            healedAt = System.nanoTime();
            net.heal(e1);
            net.heal(e2);
            timeline.mark("etcd1 and etcd2 healed");
            Await.until("etcd has a quorum again", Duration.ofSeconds(30), etcd::serving);
            Await.until(
                    "pgrelay follows etcd again",
                    Duration.ofSeconds(40),
                    () -> relay.relay().patroni().topology().sourceConnected());
            timeline.mark("pgrelay's etcd watch is back");
            Thread.sleep(2000);
        } finally {
            timeline.close();
            load.close();
        }
        System.out.println(timeline);
        System.out.printf(
                "ClusterNetworkFaultTest etcd: one member of three black-holed for 25 s: %d writes,"
                        + " %d errors, longest write gap so far %d ms; two black-holed (no quorum)"
                        + " for 35 s: %d writes, leader %s kept (failsafe_mode); overall %d write"
                        + " errors %s, %d read errors, longest write gap %d ms, %d acknowledged"
                        + " writes missing%n",
                oneWrites,
                oneErrors,
                oneGap,
                twoWrites,
                leader,
                load.writeErrors.size(),
                load.writeErrors.stream().limit(3).toList(),
                load.readErrors.size(),
                load.longestGapNanos.get() / 1_000_000,
                missingAcknowledged(load));
        assertEquals(leader, cluster.leaderName(), "the leader changed");
        assertEquals(List.of(), load.writeErrors);
        assertEquals(List.of(), load.readErrors);
        assertTrue(oneWrites > 1000, "writes stalled with one etcd member gone: " + oneWrites);
        assertTrue(twoWrites > 1000, "writes stalled without an etcd quorum: " + twoWrites);
        assertEquals(0, missingAcknowledged(load));
        cluster.awaitHealthy(REJOIN);
    }

    // ------------------------------------------------------------------------------------------
    // Scenario 4: a replica's host lossy (and slow where the kernel has netem), then lagging
    // ------------------------------------------------------------------------------------------

    @Test
    @Order(4)
    void lossyReplicaKeepsServingLaggingReplicaLeavesTheRotationAndReturns() throws Exception {
        // Asynchronous: with synchronous_mode the leader's commits would wait for a standby cut
        // off from it (until Patroni picks the other one), which is not what this is about.
        synchronousMode(false);
        String leader = cluster.leaderName();
        String replica = cluster.replicaNames().get(0);
        Host replicaHost = cluster.member(replica).host();
        Host leaderHost = cluster.member(leader).host();
        int replicaPort = cluster.memberPort(replica);
        Backend replicaBackend = new Backend(replicaHost.address(), replicaPort);
        String netem = net.netemUnavailableReason();
        WriteReadLoad load = new WriteReadLoad(() -> relay, 4, 2);
        Timeline timeline = new Timeline(load);
        long lossyReads;
        long leftAfter;
        long returnedAfter;
        long readsWhileOut;
        try {
            Thread.sleep(2000);
            net.loss(replicaHost, 10);
            if (netem == null) {
                net.delay(replicaHost, Duration.ofMillis(100), Duration.ZERO);
            }
            timeline.mark(replica + ": 10 % loss" + (netem == null ? ", 2 x 100 ms delay" : ""));
            long before = load.readsOn(replicaPort);
            Thread.sleep(10_000);
            lossyReads = load.readsOn(replicaPort) - before;

            // Replication to it stops (partitioned from the leader, still seen by pgrelay and
            // etcd) while the leader writes 8 MB more WAL than it has: more than
            // max_replica_lag_bytes (4 MB).
            long partitionedAt = System.nanoTime();
            net.partition(replicaHost, leaderHost);
            timeline.mark(replica + " partitioned from the leader " + leader);
            cluster.psql(
                    leader,
                    PgServer.APP_DB,
                    "insert into ballast select repeat(md5(i::text), 32) from generate_series(1, 8000) i");
            Await.until(
                    replica + " leaves the read rotation",
                    Duration.ofSeconds(30),
                    () -> !relay.relay().patroni().replicas().contains(replicaBackend));
            leftAfter = (System.nanoTime() - partitionedAt) / 1_000_000;
            timeline.mark(replica + " out of the rotation");
            long outAt = load.readsOn(replicaPort);
            long othersBefore = load.reads.get();
            Thread.sleep(3000);
            readsWhileOut = load.reads.get() - othersBefore;
            // A read already leased there may finish; no new ones go there.
            assertTrue(load.readsOn(replicaPort) - outAt <= 2, "reads still go to " + replica);

            long healedAt = System.nanoTime();
            net.heal(replicaHost);
            timeline.mark(replica + " healed");
            Await.until(
                    replica + " back in the read rotation",
                    Duration.ofSeconds(40),
                    () -> relay.relay().patroni().replicas().contains(replicaBackend));
            returnedAfter = (System.nanoTime() - healedAt) / 1_000_000;
            long back = load.readsOn(replicaPort);
            Await.until(
                    "reads on " + replica + " again",
                    Duration.ofSeconds(10),
                    () -> load.readsOn(replicaPort) > back);
        } finally {
            timeline.close();
            load.close();
        }
        System.out.println(timeline);
        System.out.printf(
                "ClusterNetworkFaultTest replica %s: 10 %% loss%s for 10 s: %d reads on it;"
                        + " lagging: out of the rotation %d ms after replication stopped, %d reads"
                        + " on the other replica meanwhile (3 s), back %d ms after the heal;"
                        + " %d read errors, %d write errors, longest write gap %d ms%n",
                replica,
                netem == null ? " and 200 ms round trip" : " (no netem here: " + netem + ")",
                lossyReads,
                leftAfter,
                readsWhileOut,
                returnedAfter,
                load.readErrors.size(),
                load.writeErrors.size(),
                load.longestGapNanos.get() / 1_000_000);
        assertTrue(lossyReads > 0, "no reads on the lossy replica");
        assertTrue(readsWhileOut > 0, "reads stopped while one replica was out");
        assertEquals(List.of(), load.readErrors);
        assertEquals(List.of(), load.writeErrors);
        cluster.awaitHealthy(REJOIN);
    }

    // ------------------------------------------------------------------------------------------
    // Scenario 2, the dangerous variant: pgrelay cut off from etcd while the leader is fenced off
    // ------------------------------------------------------------------------------------------

    @Test
    @Order(5)
    void fencedOldLeaderGetsNoAcknowledgedWriteWhilePgrelayIsCutOffFromEtcd() throws Exception {
        synchronousMode(true);
        String oldLeader = cluster.leaderName();
        Host oldHost = cluster.member(oldLeader).host();
        List<Host> etcdHosts = etcd.hosts();
        WriteReadLoad load = new WriteReadLoad(() -> relay, 4, 2);
        Timeline timeline = new Timeline(load);
        AtomicLong demotedAt = new AtomicLong();
        long cutAt;
        long newKeyAt;
        long healedAt;
        String newLeader;
        try {
            Thread.sleep(2000);
            cutAt = System.nanoTime();
            for (Host e : etcdHosts) {
                net.partition(net.root(), e);
                net.partition(oldHost, e);
            }
            for (Host pg : net.hosts()) {
                if (pg.name().startsWith("pg") && pg != oldHost) {
                    net.partition(oldHost, pg);
                }
            }
            timeline.mark(
                    "pgrelay cut off from etcd; "
                            + oldLeader
                            + " cut off from etcd and the other nodes");
            // Patroni demotes a leader that reaches neither etcd nor (failsafe_mode) all members:
            // PostgreSQL stops ("offline") and comes back read-only once Patroni can follow.
            Await.until(
                    oldLeader + " stops being a writable primary",
                    Duration.ofSeconds(60),
                    () -> !cluster.isWritablePrimary(oldLeader));
            demotedAt.set(System.nanoTime());
            timeline.mark(oldLeader + " demoted (stopped or in recovery)");
            newLeader = awaitLeaderOtherThan(oldLeader, "the others elect a new leader");
            newKeyAt = System.nanoTime();
            timeline.mark(newLeader + " holds the leader key (pgrelay cannot see it)");
            Thread.sleep(5000);
            healedAt = System.nanoTime();
            for (Host e : etcdHosts) {
                net.heal(e);
            }
            timeline.mark("pgrelay reaches etcd again (" + oldLeader + " still cut off)");
            long heal = healedAt;
            Await.until(
                    "a write acknowledged after the heal",
                    Duration.ofSeconds(60),
                    () -> load.firstWriteAfter(heal) > 0);
            Thread.sleep(2000);
        } finally {
            timeline.close();
            load.close();
        }
        System.out.println(timeline);
        long demoted = demotedAt.get();
        long acksAfterDemotionBeforeHeal =
                load.writeTimes.stream().filter(t -> t >= demoted && t < healedAt).count();
        long lost = missingAcknowledged(load);
        System.out.printf(
                "ClusterNetworkFaultTest fenced leader: %s demoted %d ms after the cut, %s took"
                        + " the key %d ms after the cut; writes acknowledged after the demotion"
                        + " before pgrelay saw etcd again: %d; first write %d ms after the heal;"
                        + " longest write gap %d ms; %d write errors %s; %d read errors;"
                        + " %d acknowledged writes missing%n",
                oldLeader,
                (demoted - cutAt) / 1_000_000,
                newLeader,
                (newKeyAt - cutAt) / 1_000_000,
                acksAfterDemotionBeforeHeal,
                (load.firstWriteAfter(healedAt) - healedAt) / 1_000_000,
                load.longestGapNanos.get() / 1_000_000,
                load.writeErrors.size(),
                load.writeErrors.stream().limit(4).toList(),
                load.readErrors.size(),
                lost);
        assertEquals(0, acksAfterDemotionBeforeHeal, "writes acknowledged by the demoted leader");
        assertEquals(0, lost, "acknowledged writes lost");
        try (Connection w = relay.app()) {
            assertEquals(
                    String.valueOf(cluster.memberPort(newLeader)),
                    one(w, "select inet_server_port()"));
        }
        net.heal(oldHost);
        cluster.awaitHealthy(REJOIN);
    }

    /** Waits (60 s at most) until etcd names a leader other than {@code old}; returns it. */
    private static String awaitLeaderOtherThan(String old, String what) {
        return Await.until(
                what + " (was " + old + ")",
                Duration.ofSeconds(60),
                () -> {
                    String now = cluster.leaderName();
                    return now != null && !now.equals(old) ? now : null;
                },
                v -> v != null);
    }

    /** Sets Patroni's synchronous_mode and waits until the leader's PostgreSQL applied it. */
    private static void synchronousMode(boolean on) {
        cluster.setDynamic("synchronous_mode", String.valueOf(on));
        Await.until(
                "synchronous_mode " + on + " applied",
                Duration.ofSeconds(30),
                () ->
                        cluster.psql(
                                                cluster.leaderName(),
                                                PgServer.POSTGRES_DB,
                                                "show synchronous_standby_names")
                                        .isEmpty()
                                != on);
    }

    private record Outcome(
            int writeErrors, int readErrors, long lost, long gapMillis, long keyToWriteMillis) {}

    /**
     * Black-holes the leader's host under load; writes must hold (only those in flight on it fail),
     * resume on the new leader, reads stay on the replicas; then heals it and waits for it to
     * rejoin as a replica.
     */
    private static Outcome blackHoleLeader(String mode) throws Exception {
        String oldLeader = cluster.leaderName();
        Host oldHost = cluster.member(oldLeader).host();
        int oldPort = cluster.memberPort(oldLeader);
        WriteReadLoad load = new WriteReadLoad(() -> relay, 4, 2);
        Timeline timeline = new Timeline(load);
        long cutAt;
        long newKeyAt;
        String newLeader;
        long readsOnOldAfterCut;
        try {
            Thread.sleep(2000);
            assertTrue(load.acknowledged.size() > 0, "no writes before the fault");
            cutAt = System.nanoTime();
            net.blackHole(oldHost);
            timeline.mark(oldLeader + " black-holed");
            newLeader = awaitLeaderOtherThan(oldLeader, "a new leader key after black-holing it");
            newKeyAt = System.nanoTime();
            timeline.mark(newLeader + " holds the leader key");
            long key = newKeyAt;
            Await.until(
                    "a write acknowledged after the new leader key",
                    Duration.ofSeconds(60),
                    () -> load.firstWriteAfter(key) > 0);
            Thread.sleep(2000);
            readsOnOldAfterCut = load.readsOn(oldPort);
        } finally {
            timeline.close();
            load.close();
        }
        System.out.println(timeline);
        long firstWrite = load.firstWriteAfter(newKeyAt);
        long lost = missingAcknowledged(load);
        Outcome o =
                new Outcome(
                        load.writeErrors.size(),
                        load.readErrors.size(),
                        lost,
                        load.longestGapNanos.get() / 1_000_000,
                        (firstWrite - newKeyAt) / 1_000_000);
        System.out.printf(
                "ClusterNetworkFaultTest leader black-holed (%s): %s -> %s; new leader key %d ms"
                        + " after the black hole, first write %d ms after the key; longest write gap"
                        + " %d ms; %d writes, %d write errors %s; %d reads, %d read errors %s;"
                        + " %d acknowledged writes missing%n",
                mode,
                oldLeader,
                newLeader,
                (newKeyAt - cutAt) / 1_000_000,
                o.keyToWriteMillis,
                o.gapMillis,
                load.acknowledged.size(),
                o.writeErrors,
                load.writeErrors.stream().limit(4).toList(),
                load.reads.get(),
                o.readErrors,
                load.readErrors.stream().limit(4).toList(),
                lost);
        try (Connection w = relay.app()) {
            assertEquals(
                    String.valueOf(cluster.memberPort(newLeader)),
                    one(w, "select inet_server_port()"));
        }
        // Only the statements in flight on the old leader can fail; new ones were held.
        assertTrue(o.writeErrors <= 4, "writes failed instead of being held: " + load.writeErrors);
        for (String e : load.writeErrors) {
            assertTrue(e.startsWith("08"), e);
        }
        assertEquals(List.of(), load.readErrors, "reads failed");
        // Bounded by the new leader, not by TCP: the statements in flight on the black-holed host
        // are cut when another member is confirmed writable (else server_tcp_user_timeout, 60 s).
        assertTrue(o.keyToWriteMillis < 10_000, "writes resumed too late: " + o);
        net.heal(oldHost);
        cluster.awaitHealthy(REJOIN);
        return o;
    }

    /** Once a second: writes and reads done, and what pgrelay's router says, for the report. */
    private static final class Timeline implements AutoCloseable {
        private final StringBuffer lines = new StringBuffer("timeline:\n");
        private final Thread thread;
        private final long start = System.nanoTime();

        Timeline(WriteReadLoad load) {
            thread =
                    new Thread(
                            () -> {
                                long writes = 0;
                                long reads = 0;
                                while (!Thread.currentThread().isInterrupted()) {
                                    try {
                                        Thread.sleep(1000);
                                    } catch (InterruptedException e) {
                                        return;
                                    }
                                    var router = relay.relay().patroni();
                                    long w = load.acknowledged.size();
                                    long r = load.reads.get();
                                    lines.append(
                                            String.format(
                                                    "  %5.1f s: +%d writes, +%d reads, leader %s%s,"
                                                            + " replicas %s, etcd %s%n",
                                                    (System.nanoTime() - start) / 1e9,
                                                    w - writes,
                                                    r - reads,
                                                    router.leaderCandidate().orElse(null),
                                                    router.leaderConfirmed() ? " (confirmed)" : "",
                                                    router.replicas(),
                                                    router.topology().sourceConnected()
                                                            ? "connected"
                                                            : "unreachable"));
                                    writes = w;
                                    reads = r;
                                }
                            },
                            "timeline");
            thread.setDaemon(true);
            thread.start();
        }

        void mark(String event) {
            lines.append(
                    String.format("  %5.1f s: %s%n", (System.nanoTime() - start) / 1e9, event));
        }

        @Override
        public void close() {
            thread.interrupt();
            try {
                thread.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        @Override
        public String toString() {
            return lines.toString();
        }
    }

    /** Acknowledged writes the cluster's leader does not have (asked directly, not via pgrelay). */
    private static long missingAcknowledged(WriteReadLoad load) {
        String leader = cluster.leaderName();
        String present =
                cluster.psql(
                        leader,
                        PgServer.APP_DB,
                        "select string_agg((thread::bigint * 1000000000 + seq)::text, ',') from writes");
        java.util.Set<Long> have = new java.util.HashSet<>();
        for (String s : present.split(",")) {
            if (!s.isBlank()) {
                have.add(Long.parseLong(s.trim()));
            }
        }
        return load.acknowledged.stream().filter(k -> !have.contains(k)).count();
    }

    private static void awaitWritable(Duration timeout) {
        Await.until(
                "pgrelay confirms the leader",
                timeout,
                () -> {
                    try (Connection c = relay.app()) {
                        return "f".equals(one(c, "select pg_is_in_recovery()"));
                    } catch (SQLException e) {
                        return false;
                    }
                });
    }
}
