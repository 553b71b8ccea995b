package io.pgrelay.routing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Peer ids claimed in a real etcd: free ids, a held id, the id of a previous run, the lease. */
class EtcdPeerRegistrationTest {

    private static final String SCOPE = "peers";
    private static final Duration WAIT = Duration.ofSeconds(15);

    private EtcdProcess etcd;

    @BeforeEach
    void start() {
        etcd = EtcdProcess.startNew();
    }

    @AfterEach
    void stop() {
        etcd.close();
    }

    @Test
    void instancesTakeTheLowestFreeIdsAndWithdrawThemOnClose() {
        try (EtcdPeerRegistration a = registration(0, "a", 5432);
                EtcdPeerRegistration b = registration(0, "b", 5432)) {
            a.start();
            awaitId(a, 1);
            b.start();
            awaitId(b, 2);
            assertEquals(new Peer(1, "a", "10.0.0.1", 5432), Peer.fromJson(1, etcd.get(key(1))));
            a.close();
            // Revoked, not left to expire: gone at once.
            assertNull(etcd.get(key(1)));
            assertNotNull(etcd.get(key(2)));
        }
    }

    @Test
    void aConfiguredIdHeldByAnotherInstanceIsNotTaken() {
        try (EtcdPeerRegistration a = registration(7, "a", 5432);
                EtcdPeerRegistration b = registration(7, "b", 5432)) {
            a.start();
            awaitId(a, 7);
            b.start();
            sleep(1500);
            assertEquals(0, b.id());
            assertEquals("a", Peer.fromJson(7, etcd.get(key(7))).instanceId());
        }
    }

    @Test
    void aRestartedInstanceTakesBackItsIdBeforeTheOldLeaseExpires() {
        // The previous run died without revoking: its key stays until the lease's TTL.
        etcd.etcdctl("lease", "grant", "60");
        String lease =
                etcd.etcdctl("lease", "list")
                        .lines()
                        .filter(l -> l.matches("[0-9a-f]+"))
                        .findFirst()
                        .orElseThrow();
        etcd.etcdctl(
                "put", "--lease=" + lease, key(1), new Peer(1, "x", "10.0.0.1", 5432).toJson());
        etcd.etcdctl("put", key(2), new Peer(2, "a", "10.0.0.1", 5432).toJson());
        try (EtcdPeerRegistration a = registration(0, "a", 5432);
                EtcdPeerRegistration x = registration(0, "x", 6000)) {
            a.start();
            awaitId(a, 2);
            // Same instance id at another address: not the same instance, so a fresh id.
            x.start();
            awaitId(x, 3);
        }
    }

    private EtcdPeerRegistration registration(int id, String instance, int port) {
        return new EtcdPeerRegistration(
                EtcdTopologySource.Settings.of(List.of(etcd.endpoint()), "/service/", SCOPE),
                id,
                instance,
                "10.0.0.1",
                port);
    }

    private static String key(int id) {
        return "/service/" + SCOPE + "/pgrelay/peers/" + id;
    }

    private static void awaitId(EtcdPeerRegistration r, int id) {
        Poll.until("peer id " + id, WAIT, r::id, got -> got == id);
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
