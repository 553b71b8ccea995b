package io.pgrelay.pool;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A bounded pool of server connections for one (database, user, backend) key, shared by all event
 * loops.
 *
 * <h2>Design</h2>
 *
 * <ul>
 *   <li>One {@link ReentrantLock} guards all state. Every operation is a few deque and counter
 *       updates; pools hold tens of connections, so linear scans of the idle list and the wait
 *       queue beat anything cleverer.
 *   <li>No foreign code runs under the lock. {@link Waiter#granted}, {@link Waiter#failed}, {@link
 *       Connector#connect}, {@link Poolable#close} (and logging) are collected as "after" actions
 *       and run once the lock is released. Those callbacks re-enter the pool (granted() returning
 *       false is a release, a connect future may complete inline), and running them under the lock
 *       would stall every event loop behind one slow callback or deadlock against another pool. The
 *       single exception is {@link Poolable#isUsable()}, which must be a cheap read.
 *   <li>Bookkeeping lives in {@link Entry} objects in an identity map, not on the connection, so a
 *       release of a foreign or already released connection is recognised and ignored instead of
 *       corrupting counts.
 *   <li>The limit counts leased + idle + connecting. It is poolSize, or poolSize + reservePoolSize
 *       while the oldest waiter has waited at least reservePoolTimeout (PgBouncer's reserve pool).
 *       As in PgBouncer, reserve connections then stay until server_idle_timeout.
 *   <li>Every completed connect serves the oldest waiter, whoever started it, so the connects a
 *       queue needs are "waiters minus connects in flight". Connect failures fail the oldest
 *       waiter, and the others get fresh attempts: at most one attempt per waiter. (Retries across
 *       waiters that come back are the connector's business: pgrelay's backs off per server.)
 *       Refilling up to minPoolSize happens only in {@link #maintain()}, which bounds retries to
 *       the janitor's pace.
 *   <li>Waiters are served FIFO. Fairness beats affinity: a released connection goes to the oldest
 *       waiter even if a younger one lives on the same event loop. Affinity only picks among idle
 *       connections.
 *   <li>{@link #retire} bumps a generation counter: idle connections close at once, leased ones on
 *       release, and connects already in flight on arrival (they may have reached the backend's old
 *       role).
 * </ul>
 *
 * <h2>Hazards for callers</h2>
 *
 * <ul>
 *   <li>Release each lease exactly once. The pool ignores releases of connections it does not hold
 *       as leased, but a late double release of a connection already leased again is
 *       indistinguishable from a real one.
 *   <li>{@link Waiter} callbacks run on whatever thread triggered them; see {@link Waiter}.
 * </ul>
 */
public final class Pool<C extends Poolable> {

    private static final Logger log = LoggerFactory.getLogger(Pool.class);

    private final String name;
    private final Connector<C> connector;
    private final LongSupplier nanoClock;
    private final ReentrantLock lock = new ReentrantLock();

    // ---- guarded by lock ----
    private PoolSettings settings;
    private final Map<C, Entry> entries =
            new IdentityHashMap<>(); // every open connection, leased or idle
    private final ArrayDeque<Entry> idle = new ArrayDeque<>(); // most recently used first
    private final ArrayDeque<Queued<C>> waiters = new ArrayDeque<>(); // oldest first
    private int connecting;
    private int generation;
    // A fresh connection was asked for (refresh) while every slot was taken: the next released
    // connection makes way for it. Cleared by any connect start (every connect is a fresh login).
    private boolean refreshWanted;
    // Written under the lock; volatile so isClosed() can be read without it.
    private volatile boolean closed;
    private long connectsStarted;
    private long connectsFailed;
    private long waitTimeouts;
    private long leases;
    private long totalWaitNanos;

    /** Pool bookkeeping for one open connection. */
    private final class Entry {
        final C connection;
        final Object affinity; // read once: Poolable.affinity() is not called under the lock
        final long createdAt;
        final int generation;
        long lastUsedAt;
        boolean leased;

        Entry(C connection, Object affinity, long now, int generation) {
            this.connection = connection;
            this.affinity = affinity;
            this.createdAt = now;
            this.lastUsedAt = now;
            this.generation = generation;
        }
    }

    /**
     * A queued waiter; its affinity is read before locking for the same reason as Entry.affinity.
     */
    private record Queued<C extends Poolable>(Waiter<C> waiter, Object affinity, long since) {}

    public Pool(
            String name, PoolSettings settings, Connector<C> connector, LongSupplier nanoClock) {
        this.name = Objects.requireNonNull(name, "name");
        this.settings = Objects.requireNonNull(settings, "settings");
        this.connector = Objects.requireNonNull(connector, "connector");
        this.nanoClock = Objects.requireNonNull(nanoClock, "nanoClock");
    }

    public String name() {
        return name;
    }

    /**
     * Asks for a connection. The waiter gets an idle connection with its affinity if there is one
     * (most recently used first, to keep the rest idle long enough to time out), else any idle one,
     * else it is queued FIFO and a connect is started if the limit allows.
     */
    public void acquire(Waiter<C> waiter) {
        Object affinity = waiter.affinity();
        List<Runnable> after = new ArrayList<>(2);
        lock.lock();
        try {
            if (closed) {
                after.add(
                        () ->
                                fail(
                                        waiter,
                                        new PoolException(
                                                PoolException.Reason.CLOSED,
                                                "pool " + name + " is closed")));
            } else if (!waiters.isEmpty()) {
                // Someone is already waiting, so there is no idle connection: queue behind them.
                enqueue(waiter, affinity, after);
            } else {
                Entry entry = takeIdle(affinity, after);
                if (entry != null) {
                    lease(entry, waiter, 0, after);
                    warmUpFor(affinity, entry, after);
                } else {
                    enqueue(waiter, affinity, after);
                }
            }
        } finally {
            lock.unlock();
        }
        run(after);
    }

    /**
     * Whether an acquire now would wait for another holder to release: no idle connection, no room
     * for a new one, or others already waiting.
     */
    public boolean isSaturated() {
        lock.lock();
        try {
            return !waiters.isEmpty()
                    || (idle.isEmpty()
                            && entries.size() + connecting >= limit(nanoClock.getAsLong()));
        } finally {
            lock.unlock();
        }
    }

    /**
     * Starts one new connection although idle ones may be there, for a caller that needs a login
     * newer than all of them (what the server reports to a new session may have changed since they
     * logged in). Within the limit: now if there is room, else in place of the least recently used
     * idle connection, else in place of the next connection released. The new connection joins the
     * pool like any other (it serves the oldest waiter or goes idle). Asking again while a refresh
     * is still wanted adds nothing.
     *
     * @return false if the pool is closed (nothing will be started)
     */
    public boolean refresh() {
        List<Runnable> after = new ArrayList<>(2);
        lock.lock();
        try {
            if (closed) {
                return false;
            }
            long now = nanoClock.getAsLong();
            if (entries.size() + connecting >= limit(now)) {
                Entry oldest = idle.pollLast();
                if (oldest == null) {
                    refreshWanted = true; // every slot leased or connecting: the next release
                    return true;
                }
                forget(oldest, "replaced by a fresh login", after);
            }
            refreshWanted = true;
            startConnects(now, false, after);
        } finally {
            lock.unlock();
        }
        run(after);
        return true;
    }

    /**
     * The client went away while waiting. True if it was still queued; false if it was already
     * served or failed.
     */
    public boolean cancel(Waiter<C> waiter) {
        lock.lock();
        try {
            for (Iterator<Queued<C>> it = waiters.iterator(); it.hasNext(); ) {
                if (it.next().waiter() == waiter) {
                    it.remove();
                    return true;
                }
            }
            return false;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Returns a leased connection: to the oldest waiter, or to the idle list; closed instead if
     * unusable, past server_lifetime, retired, above the shrunk limit or the pool is closed.
     */
    public void release(C connection) {
        List<Runnable> after = new ArrayList<>(2);
        lock.lock();
        try {
            Entry entry = entries.get(connection);
            if (entry == null || !entry.leased) {
                after.add(
                        () ->
                                log.warn(
                                        "pool {}: ignoring release of a connection not leased from this pool: {}",
                                        name,
                                        connection));
            } else {
                handOff(entry, nanoClock.getAsLong(), after);
            }
        } finally {
            lock.unlock();
        }
        run(after);
    }

    /** Closes and forgets a connection (leased or idle), freeing its slot for a waiter. */
    public void discard(C connection, String reason) {
        List<Runnable> after = new ArrayList<>(2);
        lock.lock();
        try {
            Entry entry = entries.get(connection);
            if (entry == null) {
                // Already gone (e.g. the pool closed it while idle); still honour the close.
                after.add(() -> closeConnection(connection, reason));
            } else {
                if (!entry.leased) {
                    idle.remove(entry);
                }
                forget(entry, reason, after);
                startConnects(nanoClock.getAsLong(), false, after);
            }
        } finally {
            lock.unlock();
        }
        run(after);
    }

    /**
     * The janitor, to be called every 100-250 ms: fails waiters past query_wait_timeout, closes
     * idle connections past server_idle_timeout (down to minPoolSize) or server_lifetime, and opens
     * connections for waiters (from the reserve once the oldest waited reservePoolTimeout) and up
     * to minPoolSize.
     */
    public void maintain() {
        List<Runnable> after = new ArrayList<>();
        lock.lock();
        try {
            if (closed) {
                return;
            }
            long now = nanoClock.getAsLong();
            long waitTimeout = settings.queryWaitTimeout().toNanos();
            if (waitTimeout > 0) {
                // FIFO queue: waiters are ordered by age, so stop at the first one still within its
                // time.
                while (!waiters.isEmpty() && now - waiters.peekFirst().since() >= waitTimeout) {
                    Queued<C> expired = waiters.pollFirst();
                    waitTimeouts++;
                    PoolException e =
                            new PoolException(
                                    PoolException.Reason.WAIT_TIMEOUT,
                                    "pool "
                                            + name
                                            + ": no server connection within query_wait_timeout ("
                                            + settings.queryWaitTimeout().toMillis()
                                            + " ms)");
                    after.add(() -> fail(expired.waiter(), e));
                }
            }
            long idleTimeout = settings.idleTimeout().toNanos();
            long lifetime = settings.lifetime().toNanos();
            // Least recently used first, so idle timeout trims the connections the MRU policy keeps
            // cold.
            for (Iterator<Entry> it = idle.descendingIterator(); it.hasNext(); ) {
                Entry entry = it.next();
                String reason = null;
                if (!entry.connection.isUsable()) {
                    reason = "unusable";
                } else if (lifetime > 0 && now - entry.createdAt >= lifetime) {
                    reason = "server_lifetime expired";
                } else if (idleTimeout > 0
                        && now - entry.lastUsedAt >= idleTimeout
                        && entries.size() > settings.minPoolSize()) {
                    reason = "server_idle_timeout expired";
                }
                if (reason != null) {
                    it.remove();
                    forget(entry, reason, after);
                }
            }
            startConnects(now, true, after);
        } finally {
            lock.unlock();
        }
        run(after);
    }

    /**
     * Replaces every current connection, e.g. after the backend changed role or on RECONNECT: idle
     * connections close now, leased ones when released, connects in flight when they complete.
     */
    public void retire(String reason) {
        List<Runnable> after = new ArrayList<>();
        lock.lock();
        try {
            retireLocked(reason, after);
            after.add(() -> log.info("pool {}: retired all connections: {}", name, reason));
        } finally {
            lock.unlock();
        }
        run(after);
    }

    /**
     * {@link #retire} that also closes the leased connections now rather than when released: for a
     * backend whose transactions can no longer commit, such as a former leader after another member
     * took over. Their owners see the connection closed (and tell their clients) and discard it,
     * instead of waiting for an answer a black-holed host never sends.
     *
     * @return how many leased connections were closed
     */
    public int cut(String reason) {
        List<Runnable> after = new ArrayList<>();
        int leased = 0;
        lock.lock();
        try {
            retireLocked(reason, after);
            for (Entry entry : entries.values()) {
                if (entry.leased) {
                    C connection = entry.connection;
                    after.add(() -> closeConnection(connection, reason));
                    leased++;
                }
            }
            int count = leased;
            after.add(
                    () ->
                            log.info(
                                    "pool {}: retired all connections, {} in use cut: {}",
                                    name,
                                    count,
                                    reason));
        } finally {
            lock.unlock();
        }
        run(after);
        return leased;
    }

    /** Under the lock: a new generation (see {@link #retire}), idle connections closed. */
    private void retireLocked(String reason, List<Runnable> after) {
        generation++;
        for (Entry entry; (entry = idle.pollFirst()) != null; ) {
            forget(entry, "retired: " + reason, after);
        }
    }

    /**
     * Shuts the pool down: waiters fail with CLOSED, idle connections close now, leased ones when
     * released, connects in flight when they complete. Later acquires fail with CLOSED. Idempotent.
     */
    public void close(String reason) {
        List<Runnable> after = new ArrayList<>();
        lock.lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            PoolException e =
                    new PoolException(
                            PoolException.Reason.CLOSED, "pool " + name + " closed: " + reason);
            for (Queued<C> q; (q = waiters.pollFirst()) != null; ) {
                Waiter<C> waiter = q.waiter();
                after.add(() -> fail(waiter, e));
            }
            for (Entry entry; (entry = idle.pollFirst()) != null; ) {
                forget(entry, "pool closed: " + reason, after);
            }
            after.add(() -> log.info("pool {}: closed: {}", name, reason));
        } finally {
            lock.unlock();
        }
        run(after);
    }

    /**
     * Closes the pool only if nothing uses it: no open connection, no connect in flight, no waiter.
     * Check and close are one step under the lock, so an acquire cannot slip in between; one that
     * comes later fails with CLOSED. For removing pools nobody needs (a database the server
     * refused, a pool idle for long). Logs nothing.
     *
     * @return true if the pool is now closed by this call
     */
    public boolean closeIfUnused() {
        lock.lock();
        try {
            if (closed || !entries.isEmpty() || connecting > 0 || !waiters.isEmpty()) {
                return false;
            }
            closed = true;
            return true;
        } finally {
            lock.unlock();
        }
    }

    /** Whether {@link #close} or {@link #closeIfUnused} has closed the pool. */
    public boolean isClosed() {
        return closed;
    }

    /**
     * Applies reloaded settings. Shrinking closes surplus idle connections now (least recently used
     * first) and surplus leased ones on release; growing serves waiters at once.
     */
    public void updateSettings(PoolSettings newSettings) {
        Objects.requireNonNull(newSettings, "settings");
        List<Runnable> after = new ArrayList<>();
        lock.lock();
        try {
            settings = newSettings;
            while (entries.size() + connecting > newSettings.maxPoolSize() && !idle.isEmpty()) {
                forget(idle.pollLast(), "pool shrunk", after);
            }
            startConnects(nanoClock.getAsLong(), false, after);
        } finally {
            lock.unlock();
        }
        run(after);
    }

    public PoolStats stats() {
        lock.lock();
        try {
            Queued<C> oldest = waiters.peekFirst();
            long maxWait = oldest == null ? 0 : nanoClock.getAsLong() - oldest.since();
            return new PoolStats(
                    entries.size() - idle.size(),
                    idle.size(),
                    connecting,
                    waiters.size(),
                    maxWait,
                    entries.size() + connecting,
                    connectsStarted,
                    connectsFailed,
                    waitTimeouts,
                    leases,
                    totalWaitNanos);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public String toString() {
        return "Pool[" + name + "]";
    }

    /** For tests: lets fakes assert that no callback runs under the pool lock. */
    boolean isLockHeldByCurrentThread() {
        return lock.isHeldByCurrentThread();
    }

    // ---- internals; methods taking "after" run under the lock ----

    /** Queues a waiter; the clock is read only here, not for a lease served from the idle list. */
    private void enqueue(Waiter<C> waiter, Object affinity, List<Runnable> after) {
        long now = nanoClock.getAsLong();
        waiters.addLast(new Queued<>(waiter, affinity, now));
        startConnects(now, false, after);
    }

    /**
     * Removes and returns the MRU idle connection with this affinity, else the MRU one; drops
     * broken ones met on the way.
     */
    private Entry takeIdle(Object affinity, List<Runnable> after) {
        Entry fallback = null;
        for (Iterator<Entry> it = idle.iterator(); it.hasNext(); ) {
            Entry entry = it.next();
            if (!entry.connection.isUsable()) {
                it.remove();
                forget(entry, "unusable", after);
            } else if (affinity == null || affinity.equals(entry.affinity)) {
                it.remove();
                return entry;
            } else if (fallback == null) {
                fallback = entry;
            }
        }
        if (fallback != null) {
            idle.remove(fallback); // Entry has identity equals
        }
        return fallback;
    }

    /**
     * The waiter got a connection living on another thread (event loop): serve it now, but while
     * the pool is under its limit open one with the waiter's affinity, so later leases find a local
     * one. Without this a pool filled from one loop would make every client on another loop hop
     * threads twice per round trip, forever. One connect at a time keeps a burst from opening the
     * whole pool.
     */
    private void warmUpFor(Object affinity, Entry given, List<Runnable> after) {
        if (affinity == null
                || affinity.equals(given.affinity)
                || connecting > 0
                || entries.size() >= settings.poolSize()) {
            return;
        }
        connecting++;
        connectsStarted++;
        refreshWanted = false; // any connect is a fresh login
        int gen = generation;
        after.add(() -> connect(affinity, gen));
    }

    private void lease(Entry entry, Waiter<C> waiter, long waitedNanos, List<Runnable> after) {
        entry.leased = true;
        leases++;
        totalWaitNanos += waitedNanos;
        C connection = entry.connection;
        after.add(() -> grant(waiter, connection));
    }

    /** Places a connection that is neither idle nor leased (just released or just connected). */
    private void handOff(Entry entry, long now, List<Runnable> after) {
        entry.leased = false;
        String reason = reasonToClose(entry, now);
        if (reason == null && refreshWanted) {
            reason = "replaced by a fresh login";
        }
        if (reason != null) {
            forget(entry, reason, after);
            startConnects(now, false, after); // the freed slot may be needed by a waiter
            return;
        }
        Queued<C> oldest = waiters.pollFirst();
        if (oldest != null) {
            lease(entry, oldest.waiter(), now - oldest.since(), after);
        } else {
            entry.lastUsedAt = now;
            idle.addFirst(entry);
        }
    }

    private String reasonToClose(Entry entry, long now) {
        long lifetime = settings.lifetime().toNanos();
        if (closed) {
            return "pool closed";
        } else if (entry.generation != generation) {
            return "retired";
        } else if (!entry.connection.isUsable()) {
            return "unusable";
        } else if (lifetime > 0 && now - entry.createdAt >= lifetime) {
            return "server_lifetime expired";
        } else if (entries.size() + connecting > settings.maxPoolSize()) {
            return "pool shrunk";
        }
        return null;
    }

    private void forget(Entry entry, String reason, List<Runnable> after) {
        entries.remove(entry.connection);
        C connection = entry.connection;
        after.add(() -> closeConnection(connection, reason));
    }

    /** Current limit: the reserve opens up once the oldest waiter has waited reservePoolTimeout. */
    private int limit(long now) {
        Queued<C> oldest = waiters.peekFirst();
        boolean reserve =
                settings.reservePoolSize() > 0
                        && oldest != null
                        && now - oldest.since() >= settings.reservePoolTimeout().toNanos();
        return reserve ? settings.maxPoolSize() : settings.poolSize();
    }

    /**
     * Starts the connects waiters (and, from maintain(), minPoolSize) need, within the current
     * limit.
     */
    private void startConnects(long now, boolean fillMinimum, List<Runnable> after) {
        if (closed) {
            return;
        }
        int open = entries.size() + connecting;
        int needed = waiters.size() - connecting;
        if (refreshWanted) {
            needed = Math.max(needed, 0) + 1;
        }
        if (fillMinimum) {
            needed = Math.max(needed, settings.minPoolSize() - open);
        }
        int count = Math.min(needed, limit(now) - open);
        if (count <= 0) {
            return;
        }
        refreshWanted = false; // any connect is a fresh login
        if (open + count > settings.poolSize() && !waiters.isEmpty()) {
            long waited = now - waiters.peekFirst().since();
            after.add(
                    () ->
                            log.info(
                                    "pool {}: opening reserve connection(s), oldest client waited {} ms",
                                    name,
                                    TimeUnit.NANOSECONDS.toMillis(waited)));
        }
        // Aim each connect at a waiter not already covered by a connect in flight; minimum fill has
        // no affinity.
        Iterator<Queued<C>> uncovered = waiters.iterator();
        for (int i = 0; i < connecting && uncovered.hasNext(); i++) {
            uncovered.next();
        }
        int gen = generation;
        for (int i = 0; i < count; i++) {
            Object affinity = uncovered.hasNext() ? uncovered.next().affinity() : null;
            connecting++;
            connectsStarted++;
            after.add(() -> connect(affinity, gen));
        }
    }

    // ---- outside the lock ----

    private void connect(Object affinity, int gen) {
        CompletableFuture<C> future;
        try {
            future =
                    Objects.requireNonNull(
                            connector.connect(affinity), "connector returned a null future");
        } catch (RuntimeException e) {
            future = CompletableFuture.failedFuture(e);
        }
        future.whenComplete((connection, error) -> connected(connection, error, gen));
    }

    private void connected(C connection, Throwable error, int gen) {
        // Query the new connection before locking, like every other foreign call.
        Throwable failure =
                error instanceof CompletionException && error.getCause() != null
                        ? error.getCause()
                        : error;
        Object affinity = null;
        if (failure == null) {
            if (connection == null) {
                failure = new IllegalStateException("connector completed without a connection");
            } else if (!connection.isUsable()) {
                failure = new IllegalStateException("connector returned an unusable connection");
            } else {
                affinity = connection.affinity();
            }
        }
        List<Runnable> after = new ArrayList<>(2);
        lock.lock();
        try {
            long now = nanoClock.getAsLong();
            connecting--;
            if (failure == null) {
                Entry entry = new Entry(connection, affinity, now, gen);
                entries.put(connection, entry);
                handOff(entry, now, after);
            } else {
                connectsFailed++;
                if (connection != null) {
                    after.add(() -> closeConnection(connection, "connect failed"));
                }
                Queued<C> oldest = waiters.pollFirst();
                if (oldest != null) {
                    PoolException e =
                            new PoolException(
                                    PoolException.Reason.CONNECT_FAILED,
                                    "pool " + name + ": server connection failed: " + failure,
                                    failure);
                    after.add(() -> fail(oldest.waiter(), e));
                }
                Throwable logged = failure;
                if (connector.reportsFailures()) {
                    after.add(
                            () ->
                                    log.debug(
                                            "pool {}: connect failed: {}",
                                            name,
                                            logged.toString()));
                } else {
                    after.add(
                            () -> log.warn("pool {}: connect failed: {}", name, logged.toString()));
                }
                startConnects(now, false, after); // one fresh attempt per waiter still uncovered
            }
        } finally {
            lock.unlock();
        }
        run(after);
    }

    private void grant(Waiter<C> waiter, C connection) {
        boolean taken;
        try {
            taken = waiter.granted(connection);
        } catch (RuntimeException e) {
            // The waiter may have linked or written to the connection before it threw: its state is
            // unknown, so it must never be handed to another waiter. Close it instead.
            log.error("pool {}: waiter threw from granted(); closing the connection", name, e);
            discard(connection, "its waiter failed while taking it");
            return;
        }
        if (!taken) {
            release(connection);
        }
    }

    private void fail(Waiter<C> waiter, PoolException e) {
        try {
            waiter.failed(e);
        } catch (RuntimeException ex) {
            log.error("pool {}: waiter threw from failed()", name, ex);
        }
    }

    private void closeConnection(C connection, String reason) {
        try {
            connection.close(reason);
        } catch (RuntimeException e) {
            log.warn("pool {}: closing {} threw", name, connection, e);
        }
    }

    private void run(List<Runnable> after) {
        assert !lock.isHeldByCurrentThread() : "pool callbacks must run outside the lock";
        for (Runnable action : after) {
            try {
                action.run();
            } catch (RuntimeException e) {
                log.error("pool {}: callback failed", name, e);
            }
        }
    }
}
