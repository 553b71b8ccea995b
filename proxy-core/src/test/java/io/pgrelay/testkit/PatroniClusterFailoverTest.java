package io.pgrelay.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pgrelay.routing.EtcdTopologySource;
import io.pgrelay.routing.Topology;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The Patroni test kit's disruptive actions against a real cluster, with the topology source
 * watching: etcd outage under failsafe mode, a killed leader, a stopped replica. Slower than the
 * smoke test (a killed leader's key only expires after ttl = 20 s): about a minute.
 */
@Timeout(300)
class PatroniClusterFailoverTest {

    @Test
    void etcdOutageKilledLeaderAndStoppedReplica() throws Exception {
        long t0 = System.nanoTime();
        try (PatroniCluster cluster = PatroniCluster.start("failover" + ProcessHandle.current().pid());
             EtcdTopologySource source = new EtcdTopologySource(EtcdTopologySource.Settings
                     .of(List.of(cluster.etcdEndpoint()), cluster.namespace(), cluster.scope())
                     .withClientRebuildAfter(Duration.ofSeconds(5)))) {
            List<Topology> seen = new CopyOnWriteArrayList<>();
            source.start(seen::add);
            String leader = cluster.leaderName();
            Await.until("source sees 3 members", Duration.ofSeconds(20),
                    () -> source.current().members().size() == 3 && leader.equals(source.current().leader()));
            PatroniClusterTest.queryAsApp(cluster.memberPort(leader), "create table t(id int)");

            // etcd outage: with failsafe_mode the primary stays writable past retry_timeout (5 s)
            long t1 = System.nanoTime();
            cluster.stopEtcd();
            Await.until("source notices the outage", Duration.ofSeconds(20), () -> !source.current().sourceConnected());
            assertEquals(leader, source.current().leader(), "last topology kept");
            Thread.sleep(10_000);
            assertNull(cluster.leaderName(), "etcd is down");
            assertEquals("f", PatroniClusterTest.queryAsApp(cluster.memberPort(leader), "select pg_is_in_recovery()"));
            PatroniClusterTest.queryAsApp(cluster.memberPort(leader), "insert into t values (1)");
            cluster.startEtcd();
            Await.until("source reconnects", Duration.ofSeconds(30), () -> source.current().sourceConnected());
            cluster.awaitHealthy(Duration.ofSeconds(60));
            assertEquals(leader, cluster.leaderName(), "same leader after the outage");
            System.out.printf("etcd outage round took %d ms%n", (System.nanoTime() - t1) / 1_000_000);

            // leader killed: its key expires after ttl, a replica takes over
            long t2 = System.nanoTime();
            String killed = cluster.killLeader();
            String next = Await.until("a new leader", Duration.ofSeconds(90), cluster::leaderName,
                    n -> n != null && !n.equals(killed));
            Await.until("source follows the failover", Duration.ofSeconds(20),
                    () -> next.equals(source.current().leader()));
            assertTrue(seen.stream().anyMatch(t -> t.leader() == null), "leader key expiry was seen");
            assertFalse(source.current().members().containsKey(killed), "the dead node's member key expired too");
            System.out.printf("failover after kill -9 of %s took %d ms (new leader %s)%n", killed,
                    (System.nanoTime() - t2) / 1_000_000, next);
            cluster.startMember(killed);
            cluster.awaitHealthy(Duration.ofSeconds(90));
            assertEquals("1", PatroniClusterTest.queryAsApp(cluster.memberPort(next), "select count(*) from t"));

            // graceful stop of a replica: its member key goes away, then comes back
            String replica = cluster.replicaNames().get(0);
            cluster.stopMember(replica);
            Await.until("stopped replica leaves", Duration.ofSeconds(30),
                    () -> !source.current().members().containsKey(replica)
                            || !source.current().members().get(replica).isRunningReplica());
            cluster.startMember(replica);
            cluster.awaitHealthy(Duration.ofSeconds(60));
            assertNotEquals(replica, cluster.leaderName());
            Await.until("replica back in the topology", Duration.ofSeconds(20),
                    () -> source.current().members().containsKey(replica)
                            && source.current().members().get(replica).isRunningReplica());
        }
        System.out.printf("PatroniClusterFailoverTest total %d ms%n", (System.nanoTime() - t0) / 1_000_000);
    }
}
