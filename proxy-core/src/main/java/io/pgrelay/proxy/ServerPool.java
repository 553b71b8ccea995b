package io.pgrelay.proxy;

import io.micrometer.core.instrument.Meter;
import io.pgrelay.pool.Pool;
import io.pgrelay.pool.PoolException;
import io.pgrelay.routing.Role;
import io.pgrelay.session.SessionCounters;
import io.pgrelay.session.StatementMapper;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;

/**
 * A {@link Pool} of server connections for one {@link PoolKey}, plus what pgrelay learnt from the
 * newest login to it: the ParameterStatus values new clients are greeted with (server version,
 * encoding, defaults), a per-pool "welcome" message like PgBouncer's, except that it is never older
 * than the client it greets.
 *
 * <p>Why not learn it once: a database's or role's settings ({@code ALTER DATABASE/ROLE ... SET}, a
 * database dropped and created again) change what the server reports to a new session, while
 * sessions already logged in keep their old defaults. Only a fresh login tells. So every login
 * refreshes the welcome (newest start wins), and a client is greeted only with a welcome from a
 * login that started no earlier than the client connected (started, not completed: a login that
 * began before an ALTER committed may have read the old settings). When there is none, {@link
 * #welcomeSince} asks the pool for one fresh connection ({@link Pool#refresh}): coalesced, one such
 * login in flight serves every client that connected before it started, so a connection storm costs
 * one login, not one per client; within the pool's limits, because the login is a pool connection
 * (in a free slot, or in place of the least recently used idle one, or of the next one released).
 * Clients then get SET to the fresh values on older server connections by the usual parameter sync.
 *
 * <p>Also the pool's statistics (SHOW STATS, /metrics): sessions count locally while they hold a
 * server connection and add their totals here when they let it go, so the relay path touches no
 * shared counter per message.
 */
final class ServerPool implements SessionCounters.Totals, StatementMapper.Counts {

    private final PoolKey key;
    private final Role role;
    private final Pool<ServerConnection> pool;

    /** What the newest login reported, and when that login started (System.nanoTime). */
    private record Welcome(Map<String, String> values, long startedNanos) {}

    /** A client waiting to be greeted with a login that started at sinceNanos or later. */
    private record WelcomeWait(
            long sinceNanos, long askedNanos, CompletableFuture<Map<String, String>> future) {}

    private volatile Welcome welcome;

    // Guarded by this (logins are rare next to queries; a monitor is plenty).
    private final List<WelcomeWait> welcomeWaits = new ArrayList<>();
    private long newestLoginStart;
    private boolean anyLoginStarted;
    private boolean refreshAsked;
    private int loginsInFlight;

    /** Logged-in server connections of this pool, for SHOW SERVERS and WAIT_CLOSE. */
    final Set<ServerConnection> connections = ConcurrentHashMap.newKeySet();

    // PgBouncer's SHOW STATS counters. Times in microseconds.
    final LongAdder transactions = new LongAdder();
    final LongAdder queries = new LongAdder();
    final LongAdder bytesReceived = new LongAdder();
    final LongAdder bytesSent = new LongAdder();
    final LongAdder transactionMicros = new LongAdder();
    final LongAdder queryMicros = new LongAdder();
    final LongAdder waitMicros = new LongAdder();
    final LongAdder clientLogins = new LongAdder();
    // Parse messages from clients, Parse messages sent to servers (a mapped statement is
    // prepared once per server connection), Binds.
    final LongAdder clientParses = new LongAdder();
    final LongAdder serverParses = new LongAdder();
    final LongAdder binds = new LongAdder();

    /** The pool's meters while it has them (null: over admin.max_pool_metrics, or removed). */
    final AtomicReference<List<Meter>> meters = new AtomicReference<>();

    // The janitor's idle bookkeeping (ServerPools.maintain, one thread): the activity count seen
    // at the last check, and when the pool was last seen in use.
    long lastActivity;
    long lastUsedNanos = System.nanoTime();

    ServerPool(PoolKey key, Pool<ServerConnection> pool) {
        this.key = key;
        this.role = key.role();
        this.pool = pool;
    }

    @Override
    public void add(
            long bytesReceived,
            long bytesSent,
            long queries,
            long queryMicros,
            long transactions,
            long transactionMicros) {
        this.bytesReceived.add(bytesReceived);
        this.bytesSent.add(bytesSent);
        this.queries.add(queries);
        this.queryMicros.add(queryMicros);
        this.transactions.add(transactions);
        this.transactionMicros.add(transactionMicros);
    }

    @Override
    public void clientParse() {
        clientParses.increment();
    }

    @Override
    public void serverParse() {
        serverParses.increment();
    }

    @Override
    public void bind() {
        binds.increment();
    }

    PoolKey key() {
        return key;
    }

    /** The role the pool was created for (a primary may also serve reads as a fallback). */
    Role role() {
        return role;
    }

    Pool<ServerConnection> pool() {
        return pool;
    }

    /**
     * The newest login's ParameterStatus values, or null until a server connection has logged in.
     */
    Map<String, String> welcome() {
        Welcome w = welcome;
        return w == null ? null : w.values();
    }

    /**
     * The welcome if a login that started at {@code sinceNanos} or later reported it, else null.
     */
    Map<String, String> freshWelcome(long sinceNanos) {
        Welcome w = welcome;
        return w != null && w.startedNanos() - sinceNanos >= 0 ? w.values() : null;
    }

    /**
     * A welcome from a login that started at {@code sinceNanos} or later: at once if there is one,
     * else when the login in flight that started late enough completes, else after a fresh login
     * asked for now. Fails with the login's error (CONNECT_FAILED), CLOSED when the pool closed,
     * WAIT_TIMEOUT after query_wait_timeout ({@link #expireWelcomeWaits}).
     */
    CompletableFuture<Map<String, String>> welcomeSince(long sinceNanos) {
        Map<String, String> fresh = freshWelcome(sinceNanos);
        if (fresh != null) {
            return CompletableFuture.completedFuture(fresh);
        }
        CompletableFuture<Map<String, String>> future = new CompletableFuture<>();
        boolean ask;
        synchronized (this) {
            fresh = freshWelcome(sinceNanos);
            if (fresh != null) {
                return CompletableFuture.completedFuture(fresh);
            }
            welcomeWaits.add(new WelcomeWait(sinceNanos, System.nanoTime(), future));
            ask = needsRefresh();
        }
        if (ask) {
            askRefresh();
        }
        return future;
    }

    /** A login of this pool starts now (before its connect). */
    synchronized void loginStarted(long startedNanos) {
        if (!anyLoginStarted || startedNanos - newestLoginStart > 0) {
            newestLoginStart = startedNanos;
            anyLoginStarted = true;
        }
        refreshAsked = false; // the pool started a connect: that was it, or one as good
        loginsInFlight++;
    }

    /** A login that started at {@code startedNanos} completed: newest start wins the welcome. */
    void loggedIn(ServerConnection conn, long startedNanos) {
        List<WelcomeWait> served;
        Map<String, String> values;
        boolean ask;
        synchronized (this) {
            Welcome w = welcome;
            if (w == null || startedNanos - w.startedNanos() >= 0) {
                // Keep the same map while nothing changed: clients' interned values stay shared.
                Map<String, String> reported = conn.loginParameters;
                welcome =
                        new Welcome(
                                w != null && w.values().equals(reported)
                                        ? w.values()
                                        : Collections.unmodifiableMap(
                                                new LinkedHashMap<>(reported)),
                                startedNanos);
            }
            values = welcome.values();
            served = takeWaits(startedNanos);
            loginsInFlight--;
            ask = needsRefresh();
        }
        for (WelcomeWait wait : served) {
            wait.future().complete(values);
        }
        if (ask) {
            askRefresh();
        }
    }

    /**
     * A login that started at {@code startedNanos} failed: the clients it was to greet get its
     * error, as they would have logging in directly; later ones get a login of their own.
     */
    void loginFailed(long startedNanos, Throwable cause) {
        List<WelcomeWait> failed;
        boolean ask;
        synchronized (this) {
            failed = takeWaits(startedNanos);
            loginsInFlight--;
            ask = needsRefresh();
        }
        if (!failed.isEmpty()) {
            PoolException e =
                    new PoolException(
                            PoolException.Reason.CONNECT_FAILED,
                            "pool " + key + ": server connection failed: " + cause,
                            cause);
            failed.forEach(wait -> wait.future().completeExceptionally(e));
        }
        if (ask) {
            askRefresh();
        }
    }

    /**
     * The janitor: clients waiting longer than {@code timeoutNanos} for a fresh login (every
     * connection of a full pool leased, none released) give up, as they would waiting for a server
     * connection; a refresh still needed is asked for again (a closed pool fails the waits).
     */
    void expireWelcomeWaits(long now, long timeoutNanos) {
        List<WelcomeWait> expired = new ArrayList<>();
        boolean ask;
        synchronized (this) {
            if (welcomeWaits.isEmpty()) {
                return;
            }
            for (Iterator<WelcomeWait> it = welcomeWaits.iterator(); it.hasNext(); ) {
                WelcomeWait wait = it.next();
                if (wait.future().isDone()
                        || (timeoutNanos > 0 && now - wait.askedNanos() >= timeoutNanos)) {
                    it.remove();
                    expired.add(wait);
                }
            }
            ask = needsRefresh();
        }
        PoolException e =
                new PoolException(
                        PoolException.Reason.WAIT_TIMEOUT,
                        "pool " + key + ": no fresh server login within query_wait_timeout");
        expired.forEach(wait -> wait.future().completeExceptionally(e));
        if (ask || pool.isClosed()) {
            askRefresh();
        }
    }

    /** Takes the waits a login that started at {@code startedNanos} answers. Under this. */
    private List<WelcomeWait> takeWaits(long startedNanos) {
        if (welcomeWaits.isEmpty()) {
            return List.of();
        }
        List<WelcomeWait> taken = new ArrayList<>();
        for (Iterator<WelcomeWait> it = welcomeWaits.iterator(); it.hasNext(); ) {
            WelcomeWait wait = it.next();
            if (startedNanos - wait.sinceNanos() >= 0) {
                it.remove();
                taken.add(wait);
            }
        }
        return taken;
    }

    /**
     * Whether a wait is not covered by a login started late enough, while no login is in flight and
     * no refresh is asked for (coalescing: a login in flight is awaited, and the next one then
     * serves every client that came meanwhile, so a storm costs one login at a time, not one per
     * client). Under this; marks the refresh asked.
     */
    private boolean needsRefresh() {
        if (refreshAsked || loginsInFlight > 0) {
            return false;
        }
        for (WelcomeWait wait : welcomeWaits) {
            if (!anyLoginStarted || wait.sinceNanos() - newestLoginStart > 0) {
                refreshAsked = true;
                return true;
            }
        }
        return false;
    }

    private void askRefresh() {
        if (pool.refresh()) {
            return;
        }
        // Closed: the clients ask again and get the pool's successor (ServerPools.wasRemoved).
        List<WelcomeWait> failed;
        synchronized (this) {
            failed = new ArrayList<>(welcomeWaits);
            welcomeWaits.clear();
            refreshAsked = false;
        }
        PoolException e =
                new PoolException(PoolException.Reason.CLOSED, "pool " + key + " is closed");
        failed.forEach(wait -> wait.future().completeExceptionally(e));
    }
}
