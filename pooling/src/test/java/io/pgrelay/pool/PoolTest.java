package io.pgrelay.pool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Single-threaded behaviour of {@link Pool}, driven by hand-completed connects and a fake clock.
 */
class PoolTest {

    private static final Object LOOP_A = "loop-A";
    private static final Object LOOP_B = "loop-B";

    private final AtomicLong clock = new AtomicLong(1_000_000_000L);
    private final FakeConnector connector = new FakeConnector();
    private final AtomicInteger callbacksUnderLock = new AtomicInteger();
    private Pool<FakeConnection> pool;

    // ---- fakes ----

    final class FakeConnection implements Poolable {
        final int id;
        final Object affinity;
        volatile boolean usable = true;
        volatile String closedReason;

        FakeConnection(int id, Object affinity) {
            this.id = id;
            this.affinity = affinity;
        }

        @Override
        public void close(String reason) {
            checkNoLock();
            if (closedReason == null) {
                closedReason = reason;
            }
        }

        @Override
        public boolean isUsable() {
            return usable && closedReason == null;
        }

        @Override
        public Object affinity() {
            return affinity;
        }

        boolean isClosed() {
            return closedReason != null;
        }

        @Override
        public String toString() {
            return "conn" + id;
        }
    }

    final class FakeConnector implements Connector<FakeConnection> {
        record Pending(Object affinity, CompletableFuture<FakeConnection> future) {}

        final ConcurrentLinkedDeque<Pending> pending = new ConcurrentLinkedDeque<>();
        final AtomicInteger ids = new AtomicInteger();

        @Override
        public CompletableFuture<FakeConnection> connect(Object affinity) {
            checkNoLock();
            CompletableFuture<FakeConnection> f = new CompletableFuture<>();
            pending.add(new Pending(affinity, f));
            return f;
        }

        /** Completes the oldest pending connect with a connection on the requested affinity. */
        FakeConnection completeNext() {
            Pending p = pending.poll();
            assertNotNull(p, "no connect pending");
            FakeConnection c = new FakeConnection(ids.incrementAndGet(), p.affinity());
            p.future().complete(c);
            return c;
        }

        FakeConnection completeNext(Object affinity) {
            Pending p = pending.poll();
            assertNotNull(p, "no connect pending");
            FakeConnection c = new FakeConnection(ids.incrementAndGet(), affinity);
            p.future().complete(c);
            return c;
        }

        void failNext(Throwable cause) {
            Pending p = pending.poll();
            assertNotNull(p, "no connect pending");
            p.future().completeExceptionally(cause);
        }

        int pendingCount() {
            return pending.size();
        }
    }

    class FakeWaiter implements Waiter<FakeConnection> {
        final Object affinity;
        volatile boolean gone;
        final List<FakeConnection> grants = new ArrayList<>();
        volatile PoolException failure;

        FakeWaiter(Object affinity) {
            this.affinity = affinity;
        }

        @Override
        public Object affinity() {
            return affinity;
        }

        @Override
        public boolean granted(FakeConnection connection) {
            checkNoLock();
            if (gone) {
                return false;
            }
            grants.add(connection);
            return true;
        }

        @Override
        public void failed(PoolException e) {
            checkNoLock();
            assertNull(failure, "failed twice");
            failure = e;
        }

        FakeConnection connection() {
            assertEquals(1, grants.size(), "expected exactly one grant");
            return grants.get(0);
        }

        boolean waiting() {
            return grants.isEmpty() && failure == null;
        }
    }

    private void checkNoLock() {
        if (pool != null && pool.isLockHeldByCurrentThread()) {
            callbacksUnderLock.incrementAndGet();
        }
    }

    @AfterEach
    void noCallbackRanUnderTheLock() {
        assertEquals(0, callbacksUnderLock.get(), "a callback ran while the pool lock was held");
    }

    // ---- helpers ----

    private static PoolSettings settings(
            int size,
            int min,
            int reserve,
            Duration reserveTimeout,
            Duration waitTimeout,
            Duration idleTimeout,
            Duration lifetime) {
        return new PoolSettings(
                size, min, reserve, reserveTimeout, waitTimeout, idleTimeout, lifetime);
    }

    private static PoolSettings size(int size) {
        return settings(
                size, 0, 0, Duration.ofSeconds(5), Duration.ZERO, Duration.ZERO, Duration.ZERO);
    }

    private Pool<FakeConnection> newPool(PoolSettings s) {
        pool = new Pool<>("db/user@pg1", s, connector, clock::get);
        return pool;
    }

    private FakeWaiter acquire(Object affinity) {
        FakeWaiter w = new FakeWaiter(affinity);
        pool.acquire(w);
        return w;
    }

    private void advance(Duration d) {
        clock.addAndGet(d.toNanos());
    }

    /**
     * Leases a fresh connection for a new waiter (a connect must be pending or started by the
     * acquire).
     */
    private FakeWaiter leaseNew(Object affinity) {
        FakeWaiter w = acquire(affinity);
        connector.completeNext();
        return w;
    }

    // ---- tests ----

    @Test
    void limitIsNeverExceededAndReleasedConnectionsServeWaiters() {
        newPool(size(2));
        List<FakeWaiter> ws = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            ws.add(acquire(null));
        }
        assertEquals(2, connector.pendingCount(), "connects count against the limit");
        connector.completeNext();
        connector.completeNext();
        assertFalse(ws.get(0).waiting());
        assertFalse(ws.get(1).waiting());
        PoolStats s = pool.stats();
        assertEquals(2, s.active());
        assertEquals(3, s.waiting());
        assertEquals(2, s.total());

        pool.release(ws.get(0).connection());
        assertSame(ws.get(0).connection(), ws.get(2).connection());
        assertEquals(
                2,
                pool.stats().connectsStarted(),
                "a release serves the queue without new connects");
        assertEquals(0, connector.pendingCount());
    }

    @Test
    void waitersAreServedFifoAndWaitTimeIsRecorded() {
        newPool(size(1));
        FakeWaiter first = leaseNew(null);
        List<FakeWaiter> queued = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            queued.add(acquire(i % 2 == 0 ? LOOP_A : LOOP_B));
            advance(Duration.ofMillis(10));
        }
        assertEquals(Duration.ofMillis(40).toNanos(), pool.stats().maxWaitNanos());
        FakeConnection c = first.connection();
        for (FakeWaiter w : queued) {
            assertTrue(w.waiting());
            pool.release(c);
            assertSame(c, w.connection(), "oldest waiter first, regardless of affinity");
        }
        PoolStats s = pool.stats();
        assertEquals(5, s.leases());
        // waits: 40, 30, 20, 10 ms at the moment of each release
        assertEquals(Duration.ofMillis(100).toNanos(), s.totalWaitNanos());
    }

    @Test
    void idleConnectionWithSameAffinityIsPreferredThenMostRecentlyUsed() {
        newPool(size(4));
        FakeWaiter a1 = acquire(LOOP_A);
        FakeWaiter a2 = acquire(LOOP_A);
        FakeWaiter b1 = acquire(LOOP_B);
        assertEquals(
                List.of(LOOP_A, LOOP_A, LOOP_B),
                connector.pending.stream().map(FakeConnector.Pending::affinity).toList(),
                "connects aimed at the waiters");
        connector.completeNext();
        connector.completeNext();
        connector.completeNext();
        FakeConnection ca1 = a1.connection();
        FakeConnection ca2 = a2.connection();
        FakeConnection cb1 = b1.connection();
        pool.release(cb1);
        pool.release(ca1);
        pool.release(ca2); // idle, MRU first: ca2, ca1, cb1

        assertSame(cb1, acquire(LOOP_B).connection(), "same affinity beats recency");
        assertSame(ca2, acquire(LOOP_A).connection(), "most recently used among the same affinity");
        pool.release(ca2);
        assertSame(ca2, acquire("loop-C").connection(), "no match: most recently used");
        assertSame(ca1, acquire(null).connection());
        // loop-C was served from another loop; under the limit the pool opens one on loop-C for
        // next time.
        assertEquals(4, pool.stats().connectsStarted());
        assertEquals("loop-C", connector.pending.peekLast().affinity());
    }

    @Test
    void servingFromAnotherLoopWarmsUpALocalConnection() {
        newPool(size(4));
        FakeWaiter a = acquire(LOOP_A);
        connector.completeNext();
        pool.release(a.connection());
        FakeWaiter b = acquire(LOOP_B);
        assertSame(a.connection(), b.connection(), "served at once from the other loop");
        assertEquals(LOOP_B, connector.pending.peekLast().affinity());
        connector.completeNext();
        assertEquals(1, pool.stats().idle(), "the warmed-up connection waits idle");
        pool.release(b.connection());
        FakeWaiter again = acquire(LOOP_B);
        assertEquals(LOOP_B, again.connection().affinity(), "now served locally");
        // At the limit nothing more is opened.
        newPool(size(1));
        FakeWaiter only = acquire(LOOP_A);
        connector.completeNext();
        pool.release(only.connection());
        acquire(LOOP_B);
        assertEquals(1, pool.stats().connectsStarted());
    }

    @Test
    void waitersTimeOutAfterQueryWaitTimeout() {
        newPool(
                settings(
                        1,
                        0,
                        0,
                        Duration.ofSeconds(5),
                        Duration.ofSeconds(5),
                        Duration.ZERO,
                        Duration.ZERO));
        leaseNew(null);
        FakeWaiter early = acquire(null);
        advance(Duration.ofSeconds(3));
        FakeWaiter late = acquire(null);
        advance(Duration.ofMillis(1999));
        pool.maintain();
        assertTrue(early.waiting());
        advance(Duration.ofMillis(1));
        pool.maintain();
        assertEquals(PoolException.Reason.WAIT_TIMEOUT, early.failure.reason());
        assertTrue(late.waiting());
        assertEquals(1, pool.stats().waitTimeouts());
        assertEquals(1, pool.stats().waiting());
    }

    @Test
    void zeroQueryWaitTimeoutWaitsForever() {
        newPool(size(1));
        leaseNew(null);
        FakeWaiter w = acquire(null);
        advance(Duration.ofDays(1));
        pool.maintain();
        assertTrue(w.waiting());
    }

    @Test
    void reservePoolOpensOnlyAfterReservePoolTimeout() {
        newPool(
                settings(
                        1,
                        0,
                        1,
                        Duration.ofSeconds(5),
                        Duration.ZERO,
                        Duration.ZERO,
                        Duration.ZERO));
        leaseNew(null);
        FakeWaiter w = acquire(null);
        advance(Duration.ofSeconds(4));
        pool.maintain();
        assertEquals(0, connector.pendingCount(), "reserve not yet available");
        advance(Duration.ofSeconds(1));
        pool.maintain();
        assertEquals(1, connector.pendingCount(), "oldest waiter waited reserve_pool_timeout");
        connector.completeNext();
        assertNotNull(w.connection());
        assertEquals(2, pool.stats().total());

        FakeWaiter more = acquire(null);
        advance(Duration.ofMinutes(1));
        pool.maintain();
        assertEquals(0, connector.pendingCount(), "never beyond poolSize + reservePoolSize");
        assertTrue(more.waiting());
    }

    @Test
    void idleTimeoutClosesLeastRecentlyUsedDownToMinPoolSize() {
        newPool(
                settings(
                        3,
                        1,
                        0,
                        Duration.ofSeconds(5),
                        Duration.ZERO,
                        Duration.ofSeconds(10),
                        Duration.ZERO));
        FakeWaiter w1 = acquire(null);
        FakeWaiter w2 = acquire(null);
        FakeWaiter w3 = acquire(null);
        connector.completeNext();
        connector.completeNext();
        connector.completeNext();
        pool.release(w1.connection());
        pool.release(w2.connection());
        pool.release(w3.connection()); // MRU
        advance(Duration.ofSeconds(9));
        pool.maintain();
        assertEquals(3, pool.stats().idle());
        advance(Duration.ofSeconds(1));
        pool.maintain();
        assertEquals(1, pool.stats().idle());
        assertEquals("server_idle_timeout expired", w1.connection().closedReason);
        assertTrue(w2.connection().isClosed());
        assertFalse(
                w3.connection().isClosed(), "the most recently used one stays for min_pool_size");
        advance(Duration.ofHours(1));
        pool.maintain();
        assertFalse(w3.connection().isClosed());
        assertEquals(0, connector.pendingCount());
    }

    @Test
    void lifetimeClosesOnReleaseAndWhileIdle() {
        newPool(
                settings(
                        2,
                        0,
                        0,
                        Duration.ofSeconds(5),
                        Duration.ZERO,
                        Duration.ZERO,
                        Duration.ofSeconds(60)));
        FakeWaiter leased = leaseNew(null);
        FakeWaiter idleOne = leaseNew(null);
        pool.release(idleOne.connection());
        advance(Duration.ofSeconds(59));
        pool.maintain();
        assertFalse(idleOne.connection().isClosed());
        advance(Duration.ofSeconds(1));
        pool.maintain();
        assertEquals("server_lifetime expired", idleOne.connection().closedReason);
        assertFalse(
                leased.connection().isClosed(),
                "a leased connection is never closed under the client");
        FakeWaiter waiting = acquire(null);
        assertEquals(1, connector.pendingCount());
        pool.release(leased.connection());
        assertTrue(
                leased.connection().isClosed(),
                "past lifetime: closed on release instead of reused");
        assertTrue(waiting.waiting());
        connector.completeNext();
        assertNotNull(waiting.connection());
    }

    @Test
    void maintainFillsMinPoolSize() {
        newPool(
                settings(
                        5,
                        2,
                        0,
                        Duration.ofSeconds(5),
                        Duration.ZERO,
                        Duration.ofSeconds(1),
                        Duration.ZERO));
        pool.maintain();
        assertEquals(2, connector.pendingCount());
        pool.maintain();
        assertEquals(2, connector.pendingCount(), "connects in flight count towards the minimum");
        assertTrue(
                connector.pending.stream().allMatch(p -> p.affinity() == null),
                "minimum fill has no affinity");
        connector.completeNext();
        connector.completeNext();
        PoolStats s = pool.stats();
        assertEquals(2, s.idle());
        assertEquals(0, s.connecting());
        advance(Duration.ofSeconds(30));
        pool.maintain();
        assertEquals(2, pool.stats().idle(), "idle timeout respects min_pool_size");
    }

    @Test
    void retireReplacesIdleNowLeasedOnReleaseAndInFlightOnArrival() {
        newPool(size(3));
        FakeWaiter leased = leaseNew(null);
        FakeWaiter first = leaseNew(null);
        FakeConnection reused = first.connection();
        pool.release(reused);
        assertSame(reused, acquire(null).connection(), "leased again from idle");
        FakeWaiter connecting = acquire(null);
        assertEquals(1, connector.pendingCount());

        pool.retire("backend changed role");
        assertFalse(reused.isClosed(), "leased connections are not closed under the client");
        pool.release(reused);
        assertEquals("retired", reused.closedReason);

        FakeConnection stale = connector.completeNext();
        assertTrue(
                stale.isClosed(), "a connect started before retire may have reached the old role");
        assertTrue(connecting.waiting());
        assertEquals(1, connector.pendingCount(), "a fresh connect replaces it for the waiter");
        FakeConnection fresh = connector.completeNext();
        assertSame(fresh, connecting.connection());

        pool.release(fresh);
        pool.retire("RECONNECT");
        assertEquals("retired: RECONNECT", fresh.closedReason);
        pool.release(leased.connection());
        assertTrue(leased.connection().isClosed());
        assertEquals(0, pool.stats().total());
    }

    @Test
    void cutClosesLeasedConnectionsTooAndTheirReleaseFreesTheSlot() {
        newPool(size(3));
        FakeWaiter a = leaseNew(null);
        FakeWaiter b = leaseNew(null);
        FakeWaiter idleOne = leaseNew(null);
        pool.release(idleOne.connection());

        assertEquals(2, pool.cut("node1 is no longer the leader"));
        assertTrue(idleOne.connection().isClosed());
        assertEquals("node1 is no longer the leader", a.connection().closedReason);
        assertEquals("node1 is no longer the leader", b.connection().closedReason);
        // Their owners hand them back (or discard them) once they noticed: never reused.
        pool.release(a.connection());
        pool.discard(b.connection(), "server closed the connection");
        assertEquals(0, pool.stats().total());
        FakeWaiter next = acquire(null);
        FakeConnection fresh = connector.completeNext();
        assertSame(fresh, next.connection(), "a fresh connection, not a cut one");
    }

    @Test
    void closeFailsWaitersClosesIdleAndLaterLeasedAndRejectsAcquire() {
        newPool(size(3));
        FakeWaiter leased = leaseNew(null);
        FakeWaiter idleOne = leaseNew(null);
        pool.release(idleOne.connection());
        acquire(null); // takes the idle one
        FakeWaiter queued = acquire(null);
        FakeWaiter queued2 = acquire(null);
        assertEquals(1, connector.pendingCount(), "one slot left");

        pool.close("shutdown");
        assertEquals(PoolException.Reason.CLOSED, queued.failure.reason());
        assertEquals(PoolException.Reason.CLOSED, queued2.failure.reason());
        assertFalse(leased.connection().isClosed());
        pool.release(leased.connection());
        assertEquals("pool closed", leased.connection().closedReason);
        FakeConnection late = connector.completeNext();
        assertTrue(late.isClosed(), "a connect completing after close is closed");

        FakeWaiter after = acquire(null);
        assertEquals(PoolException.Reason.CLOSED, after.failure.reason());
        pool.maintain();
        assertEquals(0, connector.pendingCount(), "a closed pool opens nothing");
        pool.close("again"); // idempotent
    }

    @Test
    void closeIfUnusedRefusesWhileAnythingUsesThePool() {
        newPool(size(2));
        FakeWaiter w = acquire(null);
        assertFalse(pool.closeIfUnused(), "a waiter and a connect in flight");
        connector.completeNext();
        assertFalse(pool.closeIfUnused(), "a leased connection");
        pool.release(w.connection());
        assertFalse(pool.closeIfUnused(), "an idle connection");
        assertFalse(pool.isClosed());
        pool.discard(w.connection(), "test");

        assertTrue(pool.closeIfUnused());
        assertTrue(pool.isClosed());
        assertFalse(pool.closeIfUnused(), "only the first call closes it");
        FakeWaiter late = acquire(null);
        assertEquals(
                PoolException.Reason.CLOSED,
                late.failure.reason(),
                "an acquire after the close fails at once");
        assertEquals(0, connector.pendingCount(), "and opens nothing");
    }

    @Test
    void closeIfUnusedAfterARefusedConnectClosesThePool() {
        newPool(size(2));
        FakeWaiter w = acquire(null);
        connector.failNext(new RuntimeException("FATAL 3D000 database does not exist"));
        assertNotNull(w.failure);
        assertTrue(pool.closeIfUnused(), "the failed connect left nothing behind");
    }

    @Test
    void connectFailureFailsOldestWaiterAndRetriesForTheOthers() {
        newPool(size(1));
        FakeWaiter w1 = acquire(null);
        FakeWaiter w2 = acquire(null);
        FakeWaiter w3 = acquire(null);
        assertEquals(1, connector.pendingCount());
        RuntimeException cause = new RuntimeException("connection refused");
        connector.failNext(cause);
        assertEquals(PoolException.Reason.CONNECT_FAILED, w1.failure.reason());
        assertSame(cause, w1.failure.getCause());
        assertTrue(w2.waiting());
        assertEquals(
                1, connector.pendingCount(), "slot freed and a new connect started for the rest");
        connector.completeNext();
        assertNotNull(w2.connection());
        assertTrue(w3.waiting());
        PoolStats s = pool.stats();
        assertEquals(2, s.connectsStarted());
        assertEquals(1, s.connectsFailed());
    }

    @Test
    void connectFailureDoesNotStartMoreConnectsThanUncoveredWaiters() {
        newPool(size(3));
        FakeWaiter w1 = acquire(null);
        acquire(null);
        acquire(null);
        assertEquals(3, connector.pendingCount());
        connector.failNext(new RuntimeException("boom"));
        assertNotNull(w1.failure);
        assertEquals(2, connector.pendingCount(), "two waiters, two connects already in flight");
    }

    @Test
    void connectorThrowingOrUnusableConnectionCountsAsFailure() {
        pool =
                new Pool<>(
                        "p",
                        size(1),
                        affinity -> {
                            throw new IllegalStateException("no route");
                        },
                        clock::get);
        FakeWaiter w = acquire(null);
        assertEquals(PoolException.Reason.CONNECT_FAILED, w.failure.reason());
        assertEquals(0, pool.stats().total());

        newPool(size(1));
        FakeWaiter w2 = acquire(null);
        FakeConnection broken = new FakeConnection(99, null);
        broken.usable = false;
        connector.pending.poll().future().complete(broken);
        assertEquals(PoolException.Reason.CONNECT_FAILED, w2.failure.reason());
        assertTrue(broken.isClosed());
    }

    @Test
    void grantedReturningFalseActsAsRelease() {
        newPool(size(1));
        FakeWaiter gone = acquire(null);
        FakeWaiter next = acquire(null);
        gone.gone = true;
        FakeConnection c = connector.completeNext();
        assertTrue(gone.grants.isEmpty());
        assertSame(c, next.connection(), "taken back and handed to the next waiter");
        pool.release(c);
        FakeWaiter goneAgain = new FakeWaiter(null);
        goneAgain.gone = true;
        pool.acquire(goneAgain);
        PoolStats s = pool.stats();
        assertEquals(1, s.idle());
        assertEquals(0, s.active());
    }

    @Test
    void grantedThrowingClosesTheConnectionInsteadOfSharingIt() {
        newPool(size(1));
        FakeWaiter thrower =
                new FakeWaiter(null) {
                    @Override
                    public boolean granted(FakeConnection connection) {
                        super.granted(connection); // it took the connection, then failed
                        throw new IndexOutOfBoundsException("index: 5, length: 1");
                    }
                };
        pool.acquire(thrower);
        FakeWaiter next = acquire(null);
        FakeConnection c = connector.completeNext();
        assertSame(c, thrower.grants.get(0));
        assertTrue(c.isClosed(), "a connection its waiter may still hold is closed");
        assertTrue(next.grants.stream().noneMatch(g -> g == c), "never handed to another waiter");
        FakeConnection fresh = connector.completeNext();
        assertSame(fresh, next.connection(), "the freed slot is refilled for the next waiter");
        assertEquals(1, pool.stats().active());
    }

    @Test
    void cancelRemovesQueuedWaiterOnly() {
        newPool(size(1));
        FakeWaiter w = acquire(null);
        assertTrue(pool.cancel(w));
        assertFalse(pool.cancel(w));
        assertEquals(0, pool.stats().waiting());
        connector.completeNext();
        assertTrue(w.waiting(), "a cancelled waiter is never served");
        assertEquals(1, pool.stats().idle());
        FakeWaiter served = acquire(null);
        assertFalse(pool.cancel(served), "already served");
    }

    @Test
    void doubleAndForeignReleasesAreIgnored() {
        newPool(size(2));
        FakeWaiter w = leaseNew(null);
        FakeConnection c = w.connection();
        pool.release(c);
        pool.release(c);
        pool.release(new FakeConnection(42, null));
        PoolStats s = pool.stats();
        assertEquals(1, s.idle());
        assertEquals(0, s.active());
        assertEquals(1, s.total());
        assertFalse(c.isClosed());
        FakeWaiter a = acquire(null);
        FakeWaiter b = acquire(null);
        assertSame(c, a.connection());
        assertTrue(b.waiting(), "the double release did not create a second idle copy");
        assertEquals(1, connector.pendingCount());
    }

    @Test
    void discardFreesTheSlotForAWaiter() {
        newPool(size(1));
        FakeWaiter holder = leaseNew(null);
        FakeWaiter waiting = acquire(null);
        assertEquals(0, connector.pendingCount());
        pool.discard(holder.connection(), "server error");
        assertEquals("server error", holder.connection().closedReason);
        assertEquals(1, connector.pendingCount());
        connector.completeNext();
        assertNotNull(waiting.connection());
        pool.release(holder.connection()); // release after discard: ignored
        assertEquals(1, pool.stats().total());
    }

    @Test
    void brokenIdleConnectionIsNotHandedOut() {
        newPool(size(2));
        FakeWaiter w = leaseNew(null);
        FakeConnection c = w.connection();
        pool.release(c);
        c.usable = false;
        FakeWaiter next = acquire(null);
        assertTrue(c.isClosed());
        assertTrue(next.waiting());
        assertEquals(1, connector.pendingCount());
    }

    @Test
    void shrinkingClosesSurplusIdleNowAndSurplusLeasedOnRelease() {
        newPool(size(4));
        List<FakeWaiter> ws = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            ws.add(acquire(null));
            connector.completeNext();
        }
        pool.release(ws.get(0).connection());
        pool.release(ws.get(1).connection()); // idle MRU first: 1, 0; leased: 2, 3
        pool.updateSettings(size(3));
        assertTrue(ws.get(0).connection().isClosed(), "least recently used surplus goes first");
        assertFalse(ws.get(1).connection().isClosed());
        pool.updateSettings(size(1));
        assertTrue(ws.get(1).connection().isClosed());
        pool.release(ws.get(2).connection());
        assertEquals("pool shrunk", ws.get(2).connection().closedReason);
        pool.release(ws.get(3).connection());
        assertFalse(ws.get(3).connection().isClosed(), "down to the new size, kept");
        assertEquals(1, pool.stats().total());

        FakeWaiter a = acquire(null);
        FakeWaiter b = acquire(null);
        assertTrue(b.waiting());
        pool.updateSettings(size(2));
        assertEquals(1, connector.pendingCount(), "growing serves waiters at once");
        assertNotNull(a.connection());
    }

    @Test
    void settingsValidationNamesTheSetting() {
        Duration s5 = Duration.ofSeconds(5);
        assertEquals(
                "default_pool_size must be >= 1 (got 0)",
                assertThrows(
                                IllegalArgumentException.class,
                                () -> settings(0, 0, 0, s5, s5, s5, s5))
                        .getMessage());
        assertEquals(
                "min_pool_size must be <= default_pool_size (got 5 > 3)",
                assertThrows(
                                IllegalArgumentException.class,
                                () -> settings(3, 5, 0, s5, s5, s5, s5))
                        .getMessage());
        assertEquals(
                "reserve_pool_size must be >= 0 (got -1)",
                assertThrows(
                                IllegalArgumentException.class,
                                () -> settings(3, 0, -1, s5, s5, s5, s5))
                        .getMessage());
        assertEquals(
                "query_wait_timeout must be >= 0 (got PT-1S)",
                assertThrows(
                                IllegalArgumentException.class,
                                () -> settings(3, 0, 0, s5, Duration.ofSeconds(-1), s5, s5))
                        .getMessage());
        assertTrue(
                assertThrows(NullPointerException.class, () -> settings(3, 0, 0, s5, s5, null, s5))
                        .getMessage()
                        .contains("server_idle_timeout"));
        assertEquals(5, settings(3, 0, 2, s5, s5, s5, s5).maxPoolSize());
        assertEquals(
                0,
                settings(1, 1, 0, Duration.ZERO, Duration.ZERO, Duration.ZERO, Duration.ZERO)
                        .reservePoolSize());
    }
}
