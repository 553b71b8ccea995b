package io.pgrelay.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@link EtcdTopologySource} against a real etcd started by the test: keys are written the way
 * Patroni writes them (with etcdctl, which — unlike a long-lived test client — is unaffected by the
 * outages the tests cause).
 */
@Timeout(120)
class EtcdTopologySourceTest {

    private static final Duration WAIT = Duration.ofSeconds(30);
    private static final String SCOPE = "demo";
    private static final String P = "/service/" + SCOPE + "/";

    private EtcdProcess etcd;
    private EtcdTopologySource source;
    private final List<Topology> seen = new CopyOnWriteArrayList<>();
    private final Set<String> listenerThreads = ConcurrentHashMap.newKeySet();

    @AfterEach
    void tearDown() {
        if (source != null) {
            source.close();
        }
        if (etcd != null) {
            etcd.close();
        }
    }

    private static String member(int port, String role, long xlog) {
        return "{\"conn_url\":\"postgres://127.0.0.1:"
                + port
                + "/postgres\",\"api_url\":\"http://127.0.0.1:"
                + (port + 1000)
                + "/patroni\",\"state\":\"running\",\"role\":\""
                + role
                + "\",\"version\":\"3.0.2\",\"xlog_location\":"
                + xlog
                + ",\"timeline\":1}";
    }

    private void put(String key, String value) {
        etcd.etcdctl("put", P + key, value);
    }

    private void seedCluster() {
        put("config", "{\"ttl\":20,\"loop_wait\":2}");
        put("initialize", "7312345678901234567");
        put("members/node1", member(15432, "master", 1000));
        put("members/node2", member(15433, "replica", 1000));
        put("members/node3", member(15434, "replica", 900));
        put("status", "{\"optime\":1000}");
        put("leader", "node1");
    }

    private EtcdTopologySource.Settings fastSettings(String endpoint) {
        return EtcdTopologySource.Settings.of(List.of(endpoint), "/service/", SCOPE)
                .withRequestTimeout(Duration.ofSeconds(2))
                .withBackoff(Duration.ofMillis(200), Duration.ofSeconds(1))
                .withClientRebuildAfter(Duration.ofSeconds(4));
    }

    private void startSource(EtcdTopologySource.Settings settings) {
        source = new EtcdTopologySource(settings);
        source.start(
                t -> {
                    listenerThreads.add(Thread.currentThread().getName());
                    seen.add(t);
                });
    }

    private Topology await(String what, Predicate<Topology> condition) {
        return Poll.until(what, WAIT, () -> source.current(), condition);
    }

    private long etcdRevision() {
        Map<String, Object> json =
                Json.parseObject(etcd.etcdctl("get", "--write-out=json", P + "leader").trim());
        return ((Number) ((Map<?, ?>) json.get("header")).get("revision")).longValue();
    }

    @Test
    void followsPatroniKeys() {
        etcd = EtcdProcess.startNew();
        seedCluster();
        put("members/broken", "{not json");
        startSource(fastSettings(etcd.endpoint()));

        Topology initial =
                await("initial read", t -> t.sourceConnected() && t.members().size() == 3);
        assertEquals("node1", initial.leader());
        assertEquals(1000L, initial.optime());
        assertFalse(initial.switchoverPending());
        assertEquals(
                Backend.parse("127.0.0.1:15432"), initial.leaderMember().orElseThrow().backend());
        assertEquals(100L, initial.lagBytes(initial.members().get("node3")));
        assertTrue(initial.revision() > 0);

        // a planned switchover, in Patroni's event order
        put("failover", "{\"leader\":\"node1\",\"member\":\"node2\"}");
        await("switchover announced", Topology::switchoverPending);
        put("members/node1", member(15432, "demoted", 1100));
        await("node1 demoted", t -> t.members().get("node1").role().equals("demoted"));
        etcd.etcdctl("del", P + "leader");
        await("leader released", t -> t.leader() == null);
        put("leader", "node2");
        await("node2 leads", t -> "node2".equals(t.leader()));
        put("members/node2", member(15433, "master", 1100));
        put("history", "[[1,1100,\"no recovery target specified\"]]");
        put("failover", "{}");
        Topology after =
                await(
                        "switchover done",
                        t ->
                                !t.switchoverPending()
                                        && t.leaderMember()
                                                .map(Member::isPrimaryRole)
                                                .orElse(false));
        assertEquals("node2", after.leader());

        put("status", "{\"optime\":5000}");
        await("optime moves", t -> t.optime() == 5000);

        etcd.etcdctl("del", P + "members/node3");
        await("node3 leaves", t -> !t.members().containsKey("node3"));

        put("members/node1", "{\"role\":");
        await("unreadable member dropped", t -> !t.members().containsKey("node1"));

        // a lease expiry removes the leader key and the leader's member key in one revision:
        // the listener must get both at once, never a leader without its member
        String lease = etcd.etcdctl("lease", "grant", "60").trim().split("\\s+")[1];
        put("members/node4", member(15435, "master", 6000));
        etcd.etcdctl("put", "--lease=" + lease, P + "leader", "node4");
        etcd.etcdctl("put", "--lease=" + lease, P + "members/node4", member(15435, "master", 6000));
        await("node4 leads", t -> "node4".equals(t.leader()));
        etcd.etcdctl("lease", "revoke", lease);
        await("lease gone", t -> t.leader() == null && !t.members().containsKey("node4"));
        for (Topology t : seen) {
            assertFalse(
                    "node4".equals(t.leader()) && !t.members().containsKey("node4"),
                    "half-applied revision seen: " + t);
        }

        assertEquals(1, listenerThreads.size(), "listener ran on one thread: " + listenerThreads);
        for (int i = 1; i < seen.size(); i++) {
            assertTrue(
                    seen.get(i).revision() >= seen.get(i - 1).revision(),
                    "topologies arrive in etcd order");
        }
    }

    @Test
    void keepsTheLastTopologyWhileEtcdIsDownAndReconnects() {
        etcd = EtcdProcess.startNew();
        seedCluster();
        startSource(fastSettings(etcd.endpoint()));
        await("initial read", t -> t.sourceConnected() && "node1".equals(t.leader()));

        etcd.stop();
        Topology kept = await("disconnect noticed", t -> !t.sourceConnected());
        assertEquals("node1", kept.leader(), "the last leader is kept, never dropped on our own");
        assertEquals(3, kept.members().size());

        // long enough for the client rebuild (4 s in these settings) to kick in
        sleep(6000);
        assertFalse(source.current().sourceConnected());
        assertEquals("node1", source.current().leader());

        etcd.start();
        await("reconnected", Topology::sourceConnected);
        put("leader", "node2");
        await("follows changes after the outage", t -> "node2".equals(t.leader()));
    }

    @Test
    void compactionDuringAnOutageIsHandledByReReading() {
        etcd = EtcdProcess.startNew();
        seedCluster();
        // slow retries, so the changes and the compaction land before the source comes back
        startSource(
                EtcdTopologySource.Settings.of(List.of(etcd.endpoint()), "/service/", SCOPE)
                        .withRequestTimeout(Duration.ofSeconds(2))
                        .withBackoff(Duration.ofSeconds(6), Duration.ofSeconds(6)));
        await("initial read", t -> t.sourceConnected() && "node1".equals(t.leader()));

        etcd.stop();
        await("disconnect noticed", t -> !t.sourceConnected());
        int disconnectedAt = seen.size();
        // let the immediate retry after the broken watch fail; the next one is 6 s away
        sleep(2500);
        etcd.start();
        put("members/node1", member(15432, "replica", 1000));
        put("leader", "node3");
        put("members/node3", member(15434, "master", 1200));
        etcd.etcdctl("del", P + "members/node2");
        long compactedAt = etcdRevision();
        etcd.etcdctl("compact", Long.toString(compactedAt));

        Topology t =
                await(
                        "caught up after compaction",
                        x ->
                                x.sourceConnected()
                                        && "node3".equals(x.leader())
                                        && !x.members().containsKey("node2"));
        assertEquals("master", t.members().get("node3").role());
        assertEquals("replica", t.members().get("node1").role());
        assertTrue(
                t.revision() >= compactedAt, "re-read at or after the compaction: " + t.revision());
        Topology firstAfterOutage = seen.get(disconnectedAt);
        assertTrue(
                firstAfterOutage.sourceConnected() && "node3".equals(firstAfterOutage.leader()),
                "one re-read brought everything, no replay of compacted history: "
                        + firstAfterOutage);

        put("failover", "{\"leader\":\"node3\"}");
        await("watch works after the re-read", Topology::switchoverPending);
    }

    @Test
    void startsWhileEtcdIsDown() {
        etcd = EtcdProcess.startNew();
        seedCluster();
        etcd.stop();
        startSource(fastSettings(etcd.endpoint()));
        sleep(1500);
        Topology none = source.current();
        assertFalse(none.sourceConnected());
        assertNull(none.leader());
        assertTrue(seen.isEmpty(), "nothing is published before the first successful read");

        etcd.start();
        Topology t =
                await(
                        "first read once etcd is up",
                        x -> x.sourceConnected() && "node1".equals(x.leader()));
        assertEquals(3, t.members().size());
    }

    @Test
    void feedsARouter() {
        etcd = EtcdProcess.startNew();
        seedCluster();
        PatroniRouter router = new PatroniRouter(-1, false);
        source = new EtcdTopologySource(fastSettings(etcd.endpoint()));
        source.start(router::update);
        Poll.until("replicas routed", WAIT, router::replicas, r -> r.size() == 2);
        assertEquals(Backend.parse("127.0.0.1:15432"), router.leaderCandidate().orElseThrow());
        router.confirmWritable(Backend.parse("127.0.0.1:15432"), true);
        assertEquals(Backend.parse("127.0.0.1:15432"), router.route(Role.PRIMARY).orElseThrow());

        put("failover", "{\"leader\":\"node1\",\"member\":\"node2\"}");
        Poll.until(
                "writes held", WAIT, () -> router.route(Role.PRIMARY), java.util.Optional::isEmpty);
        put("failover", "{}");
        Poll.until(
                "cancelled switchover: writes resume",
                WAIT,
                () -> router.route(Role.PRIMARY),
                java.util.Optional::isPresent);
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }
}
