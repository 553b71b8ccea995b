package io.pgrelay.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class PatroniRouterTest {

    private static final Backend N1 = Backend.parse("127.0.0.1:15432");
    private static final Backend N2 = Backend.parse("127.0.0.1:15433");
    private static final Backend N3 = Backend.parse("127.0.0.1:15434");

    // ---- topology builders ----

    private static Member primary(String name, Backend backend) {
        return new Member(name, backend, "master", "running", 1, 1000, false, false);
    }

    private static Member replica(String name, Backend backend, long xlog) {
        return new Member(name, backend, "replica", "running", 1, xlog, false, false);
    }

    private static Member with(Member m, String role, String state) {
        return new Member(
                m.name(),
                m.backend(),
                role,
                state,
                m.timeline(),
                m.xlogLocation(),
                m.noLoadBalance(),
                m.noFailover());
    }

    private static Topology topology(
            String leader, long optime, boolean switchover, Member... members) {
        Map<String, Member> map = new LinkedHashMap<>();
        for (Member m : members) {
            map.put(m.name(), m);
        }
        return new Topology(map, leader, optime, switchover, true, Instant.now(), 0);
    }

    /** node1 primary, node2 and node3 replicas caught up. */
    private static Topology healthy() {
        return topology(
                "node1",
                1000,
                false,
                primary("node1", N1),
                replica("node2", N2, 1000),
                replica("node3", N3, 1000));
    }

    private static List<Backend> reads(PatroniRouter router, int n) {
        List<Backend> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(router.route(Role.REPLICA).orElse(null));
        }
        return out;
    }

    // ---- reload ----

    @Test
    void reconfigureAppliesANewLagLimitAtOnce() {
        PatroniRouter router = new PatroniRouter(-1, true);
        router.update(
                topology(
                        "node1",
                        10_000,
                        false,
                        primary("node1", N1),
                        replica("node2", N2, 10_000),
                        replica("node3", N3, 1_000)));
        assertEquals(List.of(N2, N3), router.replicas());
        router.reconfigure(5_000, true);
        assertEquals(List.of(N2), router.replicas());
        assertEquals(5_000, router.maxReplicaLagBytes());
        router.reconfigure(-1, false);
        assertEquals(List.of(N2, N3), router.replicas());
    }

    // ---- writes ----

    @Test
    void emptyRouterRoutesNothing() {
        PatroniRouter router = new PatroniRouter(-1, true);
        assertEquals(Optional.empty(), router.route(Role.PRIMARY));
        assertEquals(Optional.empty(), router.route(Role.REPLICA));
        assertEquals(Optional.empty(), router.leaderCandidate());
        assertFalse(router.stillServes(N1, Role.PRIMARY));
    }

    @Test
    void unconfirmedLeaderIsOnlyACandidate() {
        PatroniRouter router = new PatroniRouter(-1, false);
        router.update(healthy());
        assertEquals(Optional.empty(), router.route(Role.PRIMARY));
        assertEquals(Optional.of(N1), router.leaderCandidate());

        router.confirmWritable(N1, true);
        assertEquals(Optional.of(N1), router.route(Role.PRIMARY));
        assertTrue(router.leaderConfirmed());
    }

    @Test
    void confirmationOfANonLeaderIsIgnored() {
        PatroniRouter router = new PatroniRouter(-1, false);
        router.update(healthy());
        router.confirmWritable(N2, true);
        assertEquals(Optional.empty(), router.route(Role.PRIMARY));
        assertFalse(router.leaderConfirmed());
    }

    @Test
    void readOnlyReportRevokesConfirmation() {
        PatroniRouter router = new PatroniRouter(-1, false);
        router.update(healthy());
        router.confirmWritable(N1, true);
        router.confirmWritable(N1, false);
        assertEquals(Optional.empty(), router.route(Role.PRIMARY));
    }

    @Test
    void leaderChangeStartsUnconfirmed() {
        PatroniRouter router = new PatroniRouter(-1, false);
        router.update(healthy());
        router.confirmWritable(N1, true);

        // failover: node1 gone, node2 takes the key, first as "promoted", then master
        router.update(
                topology(
                        null, 1000, false, replica("node2", N2, 1000), replica("node3", N3, 1000)));
        assertEquals(Optional.empty(), router.route(Role.PRIMARY));
        assertEquals(Optional.empty(), router.leaderCandidate());

        router.update(
                topology(
                        "node2",
                        1000,
                        false,
                        with(replica("node2", N2, 1000), "promoted", "running"),
                        replica("node3", N3, 1000)));
        assertEquals(Optional.of(N2), router.leaderCandidate());
        assertEquals(Optional.empty(), router.route(Role.PRIMARY), "the key alone is never enough");

        // PostgreSQL says it is writable before Patroni republishes its member key as master
        router.confirmWritable(N2, true);
        assertEquals(Optional.of(N2), router.route(Role.PRIMARY));
        router.update(
                topology("node2", 1000, false, primary("node2", N2), replica("node3", N3, 1000)));
        assertEquals(
                Optional.of(N2),
                router.route(Role.PRIMARY),
                "the promotion settling keeps the confirmation");

        // an old report about node1 arriving late changes nothing
        router.confirmWritable(N1, true);
        assertEquals(Optional.of(N2), router.route(Role.PRIMARY));
    }

    @Test
    void keyHolderStillPublishedAsReplicaIsRoutableOnceConfirmed() {
        // Patroni 3.0.2 order: leader key moves, failover key clears, member role "master" one HA
        // cycle later
        PatroniRouter router = new PatroniRouter(-1, false);
        router.update(
                topology(
                        "node2",
                        1000,
                        false,
                        replica("node1", N1, 1000),
                        replica("node2", N2, 1000)));
        assertEquals(Optional.empty(), router.route(Role.PRIMARY));
        router.confirmWritable(N2, false); // probed while still in recovery
        assertEquals(Optional.empty(), router.route(Role.PRIMARY));
        router.confirmWritable(N2, true); // in_hot_standby went off
        assertEquals(Optional.of(N2), router.route(Role.PRIMARY));
        assertEquals(List.of(N1, N1), reads(router, 2), "the key holder is no read replica");
    }

    @Test
    void demotedOrStandbyLeaderNeverTakesWrites() {
        for (String role : List.of("demoted", "standby_leader", "uninitialized")) {
            PatroniRouter router = new PatroniRouter(-1, false);
            router.update(
                    topology("node1", 1000, false, with(primary("node1", N1), role, "running")));
            router.confirmWritable(N1, true);
            assertEquals(Optional.empty(), router.route(Role.PRIMARY), role);
            assertFalse(router.stillServes(N1, Role.PRIMARY), role);
        }
    }

    @Test
    void demotionDropsConfirmation() {
        PatroniRouter router = new PatroniRouter(-1, false);
        router.update(healthy());
        router.confirmWritable(N1, true);
        router.update(
                topology(
                        "node1",
                        1000,
                        false,
                        with(primary("node1", N1), "demoted", "running"),
                        replica("node2", N2, 1000)));
        router.update(healthy());
        assertEquals(
                Optional.empty(),
                router.route(Role.PRIMARY),
                "a new confirmation is needed after a demotion");
    }

    @Test
    void directLeaderChangeDropsConfirmation() {
        PatroniRouter router = new PatroniRouter(-1, false);
        router.update(healthy());
        router.confirmWritable(N1, true);
        router.update(
                topology(
                        "node2",
                        1000,
                        false,
                        replica("node1", N1, 1000),
                        primary("node2", N2),
                        replica("node3", N3, 1000)));
        assertEquals(Optional.empty(), router.route(Role.PRIMARY));
        assertEquals(Optional.of(N2), router.leaderCandidate());
    }

    @Test
    void leaderThatStopsBeingARunningPrimaryMustBeConfirmedAgain() {
        PatroniRouter router = new PatroniRouter(-1, false);
        router.update(healthy());
        router.confirmWritable(N1, true);
        // PostgreSQL on the leader restarted under Patroni; the leader key never moved
        router.update(
                topology(
                        "node1",
                        1000,
                        false,
                        with(primary("node1", N1), "master", "starting"),
                        replica("node2", N2, 1000)));
        assertEquals(Optional.empty(), router.route(Role.PRIMARY));
        router.update(
                topology("node1", 1000, false, primary("node1", N1), replica("node2", N2, 1000)));
        assertEquals(
                Optional.empty(),
                router.route(Role.PRIMARY),
                "confirmation was dropped with the restart");
        router.confirmWritable(N1, true);
        assertEquals(Optional.of(N1), router.route(Role.PRIMARY));
    }

    @Test
    void leaderKeyWithoutMemberKeyRoutesNoWrites() {
        PatroniRouter router = new PatroniRouter(-1, true);
        router.update(topology("node9", 1000, false, replica("node2", N2, 1000)));
        assertEquals(Optional.empty(), router.route(Role.PRIMARY));
        assertEquals(Optional.empty(), router.leaderCandidate());
        assertEquals(Optional.of(N2), router.route(Role.REPLICA));
    }

    @Test
    void switchoverPendingHoldsWritesUntilLeaderChanges() {
        PatroniRouter router = new PatroniRouter(-1, true);
        router.update(healthy());
        router.confirmWritable(N1, true);

        Topology announced =
                topology(
                        "node1",
                        1000,
                        true,
                        primary("node1", N1),
                        replica("node2", N2, 1000),
                        replica("node3", N3, 1000));
        router.update(announced);
        assertEquals(Optional.empty(), router.route(Role.PRIMARY));
        assertEquals(Optional.of(N1), router.leaderCandidate());
        assertTrue(
                router.stillServes(N1, Role.PRIMARY),
                "existing connections are not retired by an announcement");

        // new leader node2; failover key still set until Patroni writes {}
        router.update(
                topology(
                        "node2",
                        1000,
                        true,
                        with(replica("node1", N1, 900), "demoted", "stopped"),
                        primary("node2", N2),
                        replica("node3", N3, 1000)));
        router.confirmWritable(N2, true);
        assertEquals(Optional.empty(), router.route(Role.PRIMARY));
        assertFalse(router.stillServes(N1, Role.PRIMARY));

        router.update(
                topology(
                        "node2",
                        1000,
                        false,
                        replica("node1", N1, 1000),
                        primary("node2", N2),
                        replica("node3", N3, 1000)));
        assertEquals(Optional.of(N2), router.route(Role.PRIMARY));
    }

    @Test
    void cancelledSwitchoverRestoresTheOldLeader() {
        PatroniRouter router = new PatroniRouter(-1, false);
        router.update(healthy());
        router.confirmWritable(N1, true);
        router.update(
                topology("node1", 1000, true, primary("node1", N1), replica("node2", N2, 1000)));
        assertEquals(Optional.empty(), router.route(Role.PRIMARY));
        router.update(
                topology("node1", 1000, false, primary("node1", N1), replica("node2", N2, 1000)));
        assertEquals(Optional.of(N1), router.route(Role.PRIMARY));
    }

    @Test
    void disconnectedSourceKeepsRouting() {
        PatroniRouter router = new PatroniRouter(-1, false);
        router.update(healthy());
        router.confirmWritable(N1, true);
        router.update(healthy().withSourceConnected(false, Instant.now()));
        assertEquals(Optional.of(N1), router.route(Role.PRIMARY));
        assertEquals(List.of(N2, N3), router.replicas());
    }

    // ---- reads ----

    @Test
    void readsRoundRobinOverRunningReplicas() {
        PatroniRouter router = new PatroniRouter(-1, true);
        router.update(healthy());
        assertEquals(List.of(N2, N3, N2, N3), reads(router, 4));
    }

    @Test
    void replicasThatAreNotRunningAreSkipped() {
        PatroniRouter router = new PatroniRouter(-1, false);
        router.update(
                topology(
                        "node1",
                        1000,
                        false,
                        primary("node1", N1),
                        with(replica("node2", N2, 1000), "replica", "starting"),
                        replica("node3", N3, 1000)));
        assertEquals(List.of(N3, N3), reads(router, 2));
        assertFalse(router.stillServes(N2, Role.REPLICA));
    }

    @Test
    void noLoadBalanceReplicaGetsNoReads() {
        PatroniRouter router = new PatroniRouter(-1, false);
        router.update(
                topology(
                        "node1",
                        1000,
                        false,
                        primary("node1", N1),
                        new Member("node2", N2, "replica", "running", 1, 1000, true, false),
                        replica("node3", N3, 1000)));
        assertEquals(List.of(N3, N3, N3), reads(router, 3));
        assertFalse(router.stillServes(N2, Role.REPLICA));
        assertTrue(router.stillServes(N3, Role.REPLICA));
    }

    @Test
    void lagFilterUsesOptimeMinusXlogLocation() {
        PatroniRouter router = new PatroniRouter(100, false);
        router.update(
                topology(
                        "node1",
                        1000,
                        false,
                        primary("node1", N1),
                        replica("node2", N2, 900),
                        replica("node3", N3, 899)));
        assertEquals(List.of(N2, N2), reads(router, 2), "node3 is 101 bytes behind");
        // lag does not retire existing connections: it flaps
        assertTrue(router.stillServes(N3, Role.REPLICA));
    }

    @Test
    void lagFilterOffAcceptsAnyLag() {
        PatroniRouter router = new PatroniRouter(-1, false);
        router.update(
                topology(
                        "node1",
                        1_000_000,
                        false,
                        primary("node1", N1),
                        replica("node2", N2, 0),
                        replica("node3", N3, -1)));
        assertEquals(List.of(N2, N3), reads(router, 2));
    }

    @Test
    void unknownLagIsExcludedWhenFiltering() {
        PatroniRouter router = new PatroniRouter(1 << 20, false);
        router.update(
                topology(
                        "node1",
                        -1,
                        false,
                        primary("node1", N1),
                        replica("node2", N2, 1000),
                        replica("node3", N3, -1)));
        // no status optime: the leader's xlog_location (1000) is the reference; node3 publishes
        // none
        assertEquals(List.of(N2, N2), reads(router, 2));
    }

    @Test
    void readsFallBackToThePrimaryWhenEnabled() {
        PatroniRouter router = new PatroniRouter(10, true);
        Topology allLagging =
                topology("node1", 1000, false, primary("node1", N1), replica("node2", N2, 0));
        router.update(allLagging);
        // fallback does not need write confirmation: reads are fine on a node still in recovery
        assertEquals(Optional.of(N1), router.route(Role.REPLICA));
        assertTrue(router.stillServes(N1, Role.REPLICA));

        PatroniRouter strict = new PatroniRouter(10, false);
        strict.update(allLagging);
        assertEquals(Optional.empty(), strict.route(Role.REPLICA));
        assertFalse(strict.stillServes(N1, Role.REPLICA));
    }

    @Test
    void noReadFallbackToALeaderThatIsSwitchingOver() {
        PatroniRouter router = new PatroniRouter(-1, true);
        router.update(topology("node1", 1000, true, primary("node1", N1)));
        assertEquals(Optional.empty(), router.route(Role.REPLICA));
    }

    @Test
    void leaderIsNeverAReplicaTarget() {
        PatroniRouter router = new PatroniRouter(-1, false);
        // node2 holds the key but Patroni has not promoted it yet: still role replica
        router.update(
                topology(
                        "node2",
                        1000,
                        false,
                        replica("node2", N2, 1000),
                        replica("node3", N3, 1000)));
        assertEquals(List.of(N3, N3), reads(router, 2));
    }

    // ---- retirement ----

    @Test
    void stillServesFollowsRoleChanges() {
        PatroniRouter router = new PatroniRouter(-1, false);
        router.update(healthy());
        assertTrue(router.stillServes(N1, Role.PRIMARY));
        assertTrue(router.stillServes(N2, Role.REPLICA));
        assertFalse(router.stillServes(N2, Role.PRIMARY));
        assertFalse(
                router.stillServes(N1, Role.REPLICA),
                "no read fallback: the primary serves no reads");

        // switchover node1 -> node2
        router.update(
                topology(
                        "node2",
                        1000,
                        false,
                        replica("node1", N1, 1000),
                        primary("node2", N2),
                        replica("node3", N3, 1000)));
        assertFalse(router.stillServes(N1, Role.PRIMARY));
        assertTrue(router.stillServes(N1, Role.REPLICA));
        assertTrue(router.stillServes(N2, Role.PRIMARY));
        assertFalse(router.stillServes(N2, Role.REPLICA));

        // node3 leaves
        router.update(
                topology("node2", 1000, false, replica("node1", N1, 1000), primary("node2", N2)));
        assertFalse(router.stillServes(N3, Role.REPLICA));
        assertFalse(router.stillServes(Backend.parse("127.0.0.1:1"), Role.REPLICA));
    }

    // ---- listeners ----

    @Test
    void listenersFireOnRoutingChangesOnly() {
        PatroniRouter router = new PatroniRouter(-1, false);
        AtomicInteger fired = new AtomicInteger();
        router.addListener(fired::incrementAndGet);

        router.update(healthy());
        assertEquals(1, fired.get(), "candidate and replicas appeared");
        router.update(healthy());
        assertEquals(1, fired.get(), "same outcome: no wake-up");
        router.update(
                topology(
                        "node1",
                        2000,
                        false,
                        primary("node1", N1),
                        replica("node2", N2, 2000),
                        replica("node3", N3, 1999)));
        assertEquals(1, fired.get(), "WAL positions moved, routing did not");

        router.confirmWritable(N1, true);
        assertEquals(2, fired.get(), "leader confirmed");
        router.confirmWritable(N1, true);
        assertEquals(2, fired.get());

        router.update(
                topology("node1", 2000, false, primary("node1", N1), replica("node2", N2, 2000)));
        assertEquals(3, fired.get(), "replica set changed");
    }

    @Test
    void failingListenerDoesNotBreakRouting() {
        PatroniRouter router = new PatroniRouter(-1, false);
        AtomicInteger fired = new AtomicInteger();
        router.addListener(
                () -> {
                    throw new IllegalStateException("boom");
                });
        router.addListener(fired::incrementAndGet);
        router.update(healthy());
        assertEquals(1, fired.get());
        assertEquals(Optional.of(N2), router.route(Role.REPLICA));
    }
}
