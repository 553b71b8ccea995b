package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.spi.ILoggingEvent;
import io.pgrelay.testkit.Await;
import io.pgrelay.testkit.CapturedLogs;
import io.pgrelay.testkit.FreePorts;
import io.pgrelay.testkit.PatroniCluster;
import io.pgrelay.testkit.PgServer;
import io.pgrelay.testkit.TestNetwork;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * pgrelay cut off from etcd but not from PostgreSQL (issue 15, #2): its only etcd endpoint is a
 * forwarder inside a {@link TestNetwork} host, which is then black-holed (packets dropped, no RST),
 * while Patroni and etcd stay on loopback and keep talking. pgrelay keeps the last topology and
 * serves; SHOW TOPOLOGY, /metrics, /ready and the log say etcd is unreachable; a switchover done
 * during the cut is caught up once the path heals. Needs root and {@code ip netns}; skipped
 * otherwise.
 */
@Timeout(240)
class EtcdPartitionTest {

    @RegisterExtension
    static final RelayExtension servers =
            RelayExtension.patroni("pgrelaycut" + ProcessHandle.current().pid());

    @RegisterExtension final CapturedLogs logs = new CapturedLogs();

    private static TestNetwork net;
    private static TestNetwork.Host hop;
    private static RelayFixture relay;

    @BeforeAll
    static void start() throws Exception {
        TestNetwork.assumeAvailable();
        PatroniCluster cluster = servers.cluster();
        cluster.psql(
                cluster.leaderName(),
                PgServer.APP_DB,
                "create table writes(thread int, seq bigint, primary key (thread, seq)); alter table writes owner to app");
        net = TestNetwork.create("etcdhop");
        hop = net.host("etcdhop");
        // etcd listens on loopback; pgrelay's only etcd endpoint goes through the host. The
        // Patroni nodes keep using etcd on loopback directly.
        URI etcd = URI.create(cluster.etcdEndpoint());
        net.forward(hop, 2379, etcd.getHost(), etcd.getPort());
        relay =
                RelayFixture.patroni(cluster)
                        .set(
                                "routing.patroni.etcd_endpoints",
                                List.of("http://" + hop.address() + ":2379"))
                        .set("routing.patroni.leader_wait_timeout", "60s")
                        .set("pool.default_pool_size", 10)
                        .set("admin.admin_users", List.of("postgres"))
                        .set("admin.http_port", FreePorts.next())
                        .start();
        Await.until(
                "pgrelay (through the hop) confirms the leader",
                Duration.ofSeconds(30),
                () -> {
                    try (Connection c = relay.app()) {
                        return "f".equals(one(c, "select pg_is_in_recovery()"));
                    } catch (SQLException e) {
                        return false;
                    }
                });
    }

    @AfterAll
    static void stop() {
        try {
            if (relay != null) {
                relay.close();
            }
        } finally {
            if (net != null) {
                net.close();
            }
        }
    }

    @Test
    void cutOffFromEtcdItKeepsServingSaysSoAndCatchesUpAfterwards() throws Exception {
        PatroniCluster cluster = servers.cluster();
        String oldLeader = cluster.leaderName();
        String oldLeaderPort = String.valueOf(cluster.memberPort(oldLeader));
        WriteReadLoad load = new WriteReadLoad(() -> relay, 4, 2);
        long cutAt;
        long noticedAt;
        long switchedAt;
        long switchoverReturnedAt;
        long healedAt;
        long reconnectedAt;
        String newLeader;
        long acksBeforeSwitchover;
        long readsDuringCut;
        String readyWhileCut;
        try {
            Thread.sleep(2000);
            assertEquals("yes", sourceConnected());
            assertEquals("1", etcdConnectedMetric());

            cutAt = System.nanoTime();
            net.blackHole(hop);
            Await.until(
                    "pgrelay notices etcd is unreachable",
                    Duration.ofSeconds(30),
                    () -> !relay.relay().patroni().topology().sourceConnected());
            noticedAt = System.nanoTime();
            assertEquals("no", sourceConnected());
            assertEquals("0", etcdConnectedMetric());
            assertTrue(logged("etcd disconnected"), "no WARN etcd disconnected in " + messages());
            HttpResponse<String> ready = get("/ready");
            readyWhileCut = ready.statusCode() + " " + ready.body();
            assertEquals(200, ready.statusCode(), readyWhileCut);
            assertTrue(ready.body().contains("etcd unreachable"), readyWhileCut);

            // Still serving on the last topology, reads and writes.
            long acks = load.acknowledged.size();
            long reads = load.reads.get();
            Thread.sleep(2000);
            assertTrue(load.acknowledged.size() > acks, "writes stopped while cut off");
            assertTrue(load.reads.get() > reads, "reads stopped while cut off");
            assertEquals(List.of(), load.writeErrors);
            assertEquals(List.of(), load.readErrors);

            // The cluster, which still has etcd, switches over; pgrelay cannot see it.
            acksBeforeSwitchover = load.acknowledged.size();
            switchedAt = System.nanoTime();
            newLeader = cluster.switchover(null);
            switchoverReturnedAt = System.nanoTime();
            assertNotEquals(oldLeader, newLeader);
            Thread.sleep(5000);
            readsDuringCut = load.reads.get() - reads;

            healedAt = System.nanoTime();
            net.heal(hop);
            Await.until(
                    "pgrelay reconnects to etcd",
                    Duration.ofSeconds(40),
                    () -> relay.relay().patroni().topology().sourceConnected());
            reconnectedAt = System.nanoTime();
            long heal = healedAt;
            Await.until(
                    "a write acknowledged after the heal",
                    Duration.ofSeconds(30),
                    () -> load.firstWriteAfter(heal) > 0);
        } finally {
            load.close();
        }
        long firstWriteAfterHeal = load.firstWriteAfter(healedAt);
        long acksDuringCutAfterSwitchover =
                load.writeTimes.stream().filter(t -> t >= switchedAt && t < healedAt).count();
        // The old leader is demoted (shut down) before switchover() sees the new one running: from
        // then until pgrelay learns of it, no write can be acknowledged anywhere.
        long returned = switchoverReturnedAt;
        long acksAfterSwitchoverBeforeHeal =
                load.writeTimes.stream().filter(t -> t >= returned && t < healedAt).count();
        System.out.printf(
                "EtcdPartitionTest: black hole -> pgrelay notices %d ms; /ready while cut: %s;"
                        + " %d writes (%d before the switchover, %d while it ran, %d after it until"
                        + " the heal), %d write errors %s, %d read errors, %d reads"
                        + " during the cut, longest write gap %d ms; switchover %s -> %s took %d ms;"
                        + " heal -> reconnected %d ms, heal -> first acknowledged write %d ms%n",
                (noticedAt - cutAt) / 1_000_000,
                readyWhileCut,
                load.acknowledged.size(),
                acksBeforeSwitchover,
                acksDuringCutAfterSwitchover - acksAfterSwitchoverBeforeHeal,
                acksAfterSwitchoverBeforeHeal,
                load.writeErrors.size(),
                load.writeErrors.stream().limit(5).toList(),
                load.readErrors.size(),
                readsDuringCut,
                load.longestGapNanos.get() / 1_000_000,
                oldLeader,
                newLeader,
                (switchoverReturnedAt - switchedAt) / 1_000_000,
                (reconnectedAt - healedAt) / 1_000_000,
                (firstWriteAfterHeal - healedAt) / 1_000_000);
        assertEquals("yes", sourceConnected());
        assertEquals("1", etcdConnectedMetric());
        assertTrue(!get("/ready").body().contains("etcd unreachable"));
        try (Connection w = relay.app()) {
            String port = one(w, "select inet_server_port()");
            assertEquals(String.valueOf(cluster.memberPort(newLeader)), port);
            assertNotEquals(oldLeaderPort, port);
        }
        load.assertAllAcknowledgedWritesPresent();
        assertEquals(0, acksAfterSwitchoverBeforeHeal, "writes acknowledged on the demoted leader");
        // Writes held while cut off (0 errors, asserted above). Only the statements in flight when
        // the old leader's PostgreSQL shut down for its demotion fail: pgrelay could not see the
        // switchover coming (with etcd it drains first, PatroniRoutingTest: 0 errors). After
        // that the writes hold until etcd is back (at most a few errors, not one per retry).
        for (String e : load.writeErrors) {
            assertTrue(e.startsWith("57P01") || e.startsWith("08"), e);
        }
        assertTrue(load.writeErrors.size() <= 8, "writes failed instead of holding");
        assertEquals(List.of(), load.readErrors);
        assertTrue((noticedAt - cutAt) / 1_000_000 < 25_000, "noticed too late");
        assertTrue((reconnectedAt - healedAt) / 1_000_000 < 20_000, "reconnected too late");
    }

    private static String sourceConnected() throws SQLException {
        try (Connection c = relay.console();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("SHOW TOPOLOGY")) {
            assertTrue(rs.next(), "SHOW TOPOLOGY has no rows");
            return rs.getString("source_connected");
        }
    }

    private static String etcdConnectedMetric() throws Exception {
        for (String line : get("/metrics").body().split("\n")) {
            if (line.startsWith("pgrelay_etcd_connected ")) {
                String v = line.substring(line.indexOf(' ') + 1).trim();
                return v.endsWith(".0") ? v.substring(0, v.length() - 2) : v;
            }
        }
        throw new AssertionError("no pgrelay_etcd_connected in /metrics");
    }

    private static HttpResponse<String> get(String path) throws Exception {
        return HttpClient.newHttpClient()
                .send(
                        HttpRequest.newBuilder(
                                        URI.create(
                                                "http://127.0.0.1:"
                                                        + relay.relay().httpPort()
                                                        + path))
                                .timeout(Duration.ofSeconds(10))
                                .build(),
                        HttpResponse.BodyHandlers.ofString());
    }

    private List<String> messages() {
        List<ILoggingEvent> events = logs.events();
        List<String> out = new ArrayList<>();
        for (int i = 0; i < events.size(); i++) {
            ILoggingEvent e = events.get(i);
            if (e != null) {
                out.add(e.getLevel() + " " + e.getFormattedMessage());
            }
        }
        return out;
    }

    private boolean logged(String text) {
        return messages().stream().anyMatch(m -> m.startsWith("WARN") && m.contains(text));
    }
}
