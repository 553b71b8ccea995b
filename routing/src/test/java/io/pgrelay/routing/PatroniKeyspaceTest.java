package io.pgrelay.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class PatroniKeyspaceTest {

    private static final String P = "/service/demo/";
    private static final String NODE1 =
            "{\"conn_url\":\"postgres://127.0.0.1:15432/postgres\",\"api_url\":"
                    + "\"http://127.0.0.1:18008/patroni\",\"state\":\"running\",\"role\":\"master\",\"version\":\"3.0.2\","
                    + "\"xlog_location\":67108864,\"timeline\":1}";
    private static final String NODE2 =
            "{\"conn_url\":\"postgres://127.0.0.1:15433/postgres\",\"api_url\":"
                    + "\"http://127.0.0.1:18009/patroni\",\"state\":\"running\",\"role\":\"replica\",\"version\":\"3.0.2\","
                    + "\"xlog_location\":50331648,\"timeline\":1,\"tags\":{\"noloadbalance\":true,\"nofailover\":\"yes\"}}";

    private static Topology topology(PatroniKeyspace keys) {
        Instant now = Instant.now();
        return keys.toTopology(true, now, 7, now);
    }

    @Test
    void prefixFollowsPatroniSlashRules() {
        assertEquals("/service/demo/", PatroniKeyspace.prefixFor("/service/", "demo"));
        assertEquals("/service/demo/", PatroniKeyspace.prefixFor("service", "demo"));
        assertEquals("/service/demo/", PatroniKeyspace.prefixFor(null, "demo"));
        assertEquals("/a/b/demo/", PatroniKeyspace.prefixFor("//a//b/", "demo"));
        assertThrows(
                IllegalArgumentException.class, () -> PatroniKeyspace.prefixFor("/service/", ""));
    }

    @Test
    void readsTheLiveDumpShape() {
        PatroniKeyspace keys = new PatroniKeyspace(P);
        assertTrue(keys.put(P + "leader", "node1"));
        assertTrue(keys.put(P + "members/node1", NODE1));
        assertTrue(keys.put(P + "members/node2", NODE2));
        assertTrue(keys.put(P + "status", "{\"optime\":67108864,\"slots\":{\"node2\":1}}"));
        assertFalse(keys.put(P + "config", "{\"ttl\":30}"));
        assertFalse(keys.put(P + "initialize", "7312345678901234567"));
        assertFalse(keys.put("/service/other/leader", "x"));

        Topology t = topology(keys);
        assertEquals("node1", t.leader());
        assertEquals(67108864L, t.optime());
        assertFalse(t.switchoverPending());
        Member n1 = t.leaderMember().orElseThrow();
        assertEquals(
                new Member(
                        "node1",
                        Backend.parse("127.0.0.1:15432"),
                        "master",
                        "running",
                        1,
                        67108864L,
                        false,
                        false),
                n1);
        Member n2 = t.members().get("node2");
        assertTrue(n2.noLoadBalance());
        assertTrue(n2.noFailover());
        assertTrue(n2.isRunningReplica());
        assertEquals(67108864L - 50331648L, t.lagBytes(n2));
        assertEquals(List.of("node1", "node2"), List.copyOf(t.members().keySet()));
    }

    @Test
    void pgrelayPeerKeysBecomeTopologyPeersAndLeaveRoutingAlone() {
        PatroniKeyspace keys = new PatroniKeyspace(P);
        keys.put(P + "leader", "node1");
        keys.put(P + "members/node1", NODE1);
        Peer a = new Peer(1, "relay \"a\"\\1", "10.0.0.5", 5432);
        assertTrue(keys.put(P + "pgrelay/peers/1", a.toJson()));
        assertTrue(
                keys.put(
                        P + "pgrelay/peers/2",
                        "{\"instance_id\":\"b\",\"host\":\"10.0.0.6\",\"port\":6432}"));
        // Not peer keys: ignored, as are unreadable values (logged once).
        assertFalse(keys.put(P + "pgrelay/peers/0", a.toJson()));
        assertFalse(keys.put(P + "pgrelay/peers/16384", a.toJson()));
        assertFalse(keys.put(P + "pgrelay/peers/x", a.toJson()));
        assertTrue(keys.put(P + "pgrelay/peers/3", "{\"host\":\"10.0.0.7\"}"));

        Topology t = topology(keys);
        assertEquals(Map.of(1, a, 2, new Peer(2, "b", "10.0.0.6", 6432)), t.peers());
        assertEquals("node1", t.leader());
        assertEquals(1, t.members().size());

        Topology before = t;
        assertTrue(keys.delete(P + "pgrelay/peers/1"));
        Topology after = topology(keys);
        assertEquals(Map.of(2, new Peer(2, "b", "10.0.0.6", 6432)), after.peers());
        assertFalse(after.sameStateAs(before));
        assertEquals(
                List.of("pgrelay peer 1 (relay \"a\"\\1) left"),
                TopologyChanges.describe(before, after, "watch", null));
    }

    @Test
    void unreadableMemberIsSkippedAndReplacesAnOldValue() {
        PatroniKeyspace keys = new PatroniKeyspace(P);
        keys.put(P + "members/node1", NODE1);
        keys.put(P + "members/node2", NODE2);
        keys.put(P + "members/node2", "{not json");
        keys.put(P + "members/node3", "{\"role\":\"replica\"}"); // no conn_url
        assertEquals(List.of("node1"), List.copyOf(topology(keys).members().keySet()));
        keys.put(P + "members/node2", NODE2);
        assertEquals(List.of("node1", "node2"), List.copyOf(topology(keys).members().keySet()));
    }

    @Test
    void deletesRemoveLeaderAndMembers() {
        PatroniKeyspace keys = new PatroniKeyspace(P);
        keys.put(P + "leader", "node1");
        keys.put(P + "members/node1", NODE1);
        keys.delete(P + "leader");
        keys.delete(P + "members/node1");
        Topology t = topology(keys);
        assertNull(t.leader());
        assertTrue(t.members().isEmpty());
    }

    @Test
    void failoverKey() {
        PatroniKeyspace keys = new PatroniKeyspace(P);
        keys.put(P + "failover", "{\"leader\":\"node1\",\"member\":\"node2\"}");
        assertTrue(topology(keys).switchoverPending());
        assertEquals("node1 → node2", keys.failover().orElseThrow().describe());
        keys.put(P + "failover", "{}");
        assertFalse(topology(keys).switchoverPending());
        keys.put(P + "failover", "{\"leader\":\"node1\"}");
        keys.delete(P + "failover");
        assertFalse(topology(keys).switchoverPending());
        keys.put(P + "failover", "");
        assertFalse(topology(keys).switchoverPending());
        keys.put(P + "failover", "garbage");
        assertTrue(topology(keys).switchoverPending(), "unreadable request counts as pending");
    }

    @Test
    void scheduledSwitchoverIsPendingOnlyFromItsTime() {
        PatroniKeyspace keys = new PatroniKeyspace(P);
        keys.put(
                P + "failover",
                "{\"leader\":\"node1\",\"member\":\"node2\",\"scheduled_at\":\"2030-01-01T12:00:00+00:00\"}");
        Instant at = Instant.parse("2030-01-01T12:00:00Z");
        assertFalse(keys.toTopology(true, at, 1, at.minusSeconds(1)).switchoverPending());
        assertTrue(keys.toTopology(true, at, 1, at).switchoverPending());
    }

    @Test
    void legacyOptimeKey() {
        PatroniKeyspace keys = new PatroniKeyspace(P);
        keys.put(P + "optime/leader", "12345");
        assertEquals(12345L, topology(keys).optime());
        keys.delete(P + "optime/leader");
        assertEquals(-1L, topology(keys).optime());
    }

    @Test
    void connUrls() {
        assertEquals(
                Backend.parse("127.0.0.1:15432"),
                PatroniKeyspace.backendFromConnUrl("postgres://127.0.0.1:15432/postgres"));
        assertEquals(
                Backend.parse("db1:5432"),
                PatroniKeyspace.backendFromConnUrl("postgresql://db1/postgres"));
        assertEquals(
                Backend.parse("db1:6000"),
                PatroniKeyspace.backendFromConnUrl("postgres://u:p@db1:6000"));
        assertEquals(
                new Backend("::1", 15432),
                PatroniKeyspace.backendFromConnUrl("postgres://[::1]:15432/postgres"));
        assertEquals(
                new Backend("::1", 5432),
                PatroniKeyspace.backendFromConnUrl("postgres://[::1]/postgres"));
        assertThrows(
                IllegalArgumentException.class,
                () -> PatroniKeyspace.backendFromConnUrl("127.0.0.1:15432"));
    }

    @Test
    void changesAreDescribed() {
        PatroniKeyspace keys = new PatroniKeyspace(P);
        keys.put(P + "leader", "node1");
        keys.put(P + "members/node1", NODE1);
        keys.put(P + "members/node2", NODE2);
        Topology before = topology(keys);
        keys.put(P + "failover", "{\"leader\":\"node1\",\"member\":\"node2\"}");
        keys.delete(P + "leader");
        keys.put(P + "members/node1", NODE1.replace("\"master\"", "\"demoted\""));
        Topology after = topology(keys);
        List<String> lines = TopologyChanges.describe(before, after, "watch", "node1 → node2");
        assertEquals(
                List.of(
                        "leader node1 → (none) (released for a switchover, watch)",
                        "member node1 role master → demoted",
                        "switchover announced: node1 → node2; writes are held until the new leader is confirmed"),
                lines);
    }
}
