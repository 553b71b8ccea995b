package io.pgrelay.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pgrelay.routing.Backend;
import io.pgrelay.routing.EtcdTopologySource;
import io.pgrelay.routing.Member;
import io.pgrelay.routing.PatroniRouter;
import io.pgrelay.routing.Role;
import io.pgrelay.routing.Topology;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Smoke test of the Patroni test kit — bootstrap, roles, one switchover — with the etcd topology
 * source and router following the real cluster.
 */
@Timeout(240)
class PatroniClusterTest {

    @Test
    void bootstrapsAndSwitchesOver() throws Exception {
        long t0 = System.nanoTime();
        try (PatroniCluster cluster =
                        PatroniCluster.start("smoke" + ProcessHandle.current().pid());
                EtcdTopologySource source =
                        new EtcdTopologySource(
                                List.of(cluster.etcdEndpoint()),
                                cluster.namespace(),
                                cluster.scope())) {
            System.out.printf(
                    "Patroni cluster bootstrapped in %d ms%n",
                    (System.nanoTime() - t0) / 1_000_000);
            String leader = cluster.leaderName();
            assertNotNull(leader);
            List<String> replicas = cluster.replicaNames();
            assertEquals(2, replicas.size());

            String list = cluster.patronictlList();
            assertEquals(1, count(list, "\"Role\": \"Leader\""), list);
            assertEquals(2, count(list, "\"Role\": \"Replica\""), list);

            // the app role logs in over TCP with scram, on the primary and on a replica
            assertEquals("f", queryAsApp(cluster.memberPort(leader), "select pg_is_in_recovery()"));
            assertEquals(
                    "t",
                    queryAsApp(cluster.memberPort(replicas.get(0)), "select pg_is_in_recovery()"));

            PatroniRouter router = new PatroniRouter(-1, true);
            List<Topology> seen = new CopyOnWriteArrayList<>();
            source.start(
                    t -> {
                        seen.add(t);
                        router.update(t);
                    });
            Backend leaderBackend = new Backend("127.0.0.1", cluster.memberPort(leader));
            Await.until(
                    "router sees the cluster",
                    Duration.ofSeconds(20),
                    () -> router.replicas().size() == 2 && router.leaderCandidate().isPresent());
            assertEquals(leaderBackend, router.leaderCandidate().orElseThrow());
            Topology initial = source.current();
            assertTrue(initial.leaderMember().orElseThrow().isRunningPrimary(), initial.toString());
            assertTrue(initial.optime() > 0, "status optime published: " + initial);
            router.confirmWritable(leaderBackend, true);
            assertEquals(leaderBackend, router.route(Role.PRIMARY).orElseThrow());

            long t1 = System.nanoTime();
            String target = replicas.get(1);
            String newLeader = cluster.switchover(target);
            System.out.printf(
                    "switchover %s → %s took %d ms%n",
                    leader, newLeader, (System.nanoTime() - t1) / 1_000_000);
            assertEquals(target, newLeader);
            assertNotEquals(leader, cluster.leaderName());
            assertEquals(
                    "f", queryAsApp(cluster.memberPort(newLeader), "select pg_is_in_recovery()"));

            Backend newBackend = new Backend("127.0.0.1", cluster.memberPort(newLeader));
            Await.until(
                    "source follows the switchover",
                    Duration.ofSeconds(20),
                    () ->
                            newLeader.equals(source.current().leader())
                                    && source.current()
                                            .leaderMember()
                                            .map(Member::isRunningPrimary)
                                            .orElse(false)
                                    && !source.current().switchoverPending());
            assertEquals(newBackend, router.leaderCandidate().orElseThrow());
            assertTrue(router.route(Role.PRIMARY).isEmpty(), "the new leader is not confirmed yet");
            router.confirmWritable(newBackend, true);
            assertEquals(newBackend, router.route(Role.PRIMARY).orElseThrow());
            assertTrue(
                    seen.stream().anyMatch(Topology::switchoverPending), "failover key was seen");
            assertTrue(
                    seen.stream().anyMatch(t -> t.leader() == null), "leader key release was seen");
            System.out.println(
                    "topology sequence during the switchover:\n  "
                            + String.join("\n  ", summaries(seen)));

            cluster.awaitHealthy(Duration.ofSeconds(60));
            assertTrue(cluster.replicaNames().contains(leader), "old leader rejoined as a replica");
        }
        System.out.printf("PatroniClusterTest total %d ms%n", (System.nanoTime() - t0) / 1_000_000);
    }

    static List<String> summaries(List<Topology> topologies) {
        List<String> out = new ArrayList<>();
        for (Topology t : topologies) {
            StringBuilder sb =
                    new StringBuilder("leader=")
                            .append(t.leader())
                            .append(t.switchoverPending() ? " SWITCHOVER" : "")
                            .append(t.sourceConnected() ? "" : " DISCONNECTED");
            for (Member m : t.members().values()) {
                sb.append(' ')
                        .append(m.name())
                        .append('=')
                        .append(m.role())
                        .append('/')
                        .append(m.state());
            }
            out.add(sb.toString());
        }
        return out;
    }

    static String queryAsApp(int port, String sql) throws Exception {
        Properties props = new Properties();
        props.setProperty("user", PgServer.APP_USER);
        props.setProperty("password", PgServer.APP_PASSWORD);
        props.setProperty("connectTimeout", "10");
        try (Connection c =
                        DriverManager.getConnection(
                                "jdbc:postgresql://127.0.0.1:" + port + "/" + PgServer.APP_DB,
                                props);
                Statement st = c.createStatement()) {
            if (!st.execute(sql)) {
                return null;
            }
            try (ResultSet rs = st.getResultSet()) {
                rs.next();
                return rs.getString(1);
            }
        }
    }

    private static int count(String text, String needle) {
        int n = 0;
        for (int i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + 1)) {
            n++;
        }
        return n;
    }
}
