package io.pgrelay.proxy;

import io.micrometer.core.instrument.Meter;
import io.pgrelay.pool.Pool;
import io.pgrelay.routing.Role;
import io.pgrelay.session.SessionCounters;
import io.pgrelay.session.StatementMapper;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;

/**
 * A {@link Pool} of server connections for one {@link PoolKey}, what its new clients are greeted
 * with ({@link PoolWelcome}), and its statistics (SHOW STATS, /metrics): sessions count locally
 * while they hold a server connection and add their totals here when they let it go, so the relay
 * path touches no shared counter per message.
 */
final class ServerPool implements SessionCounters.Totals, StatementMapper.Counts {

    private final PoolKey key;
    private final Role role;
    private final Pool<ServerConnection> pool;

    private final PoolWelcome welcome = new PoolWelcome(this);

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

    /** Server connections of this pool pinned to a client (track_session_state). */
    private final AtomicInteger pinned = new AtomicInteger();

    /** Session checks in flight for clients not pinned yet: pins that may be on their way. */
    private final AtomicInteger pinChecks = new AtomicInteger();

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

    /** Server connections pinned to clients now (SHOW POOLS sv_pinned). */
    int pinned() {
        return pinned.get();
    }

    /** A client pins one of this pool's connections, unless {@code max} (over 0) are pinned. */
    boolean tryPin(int max) {
        if (pinned.incrementAndGet() > max && max > 0) {
            pinned.decrementAndGet();
            return false;
        }
        return true;
    }

    void unpin() {
        pinned.decrementAndGet();
    }

    /** Whether a new pin might go over {@code max}: pinned plus checks in flight that may pin. */
    boolean pinsMayReach(int max) {
        return max > 0 && pinned.get() + pinChecks.get() >= max;
    }

    void pinCheckStarted() {
        pinChecks.incrementAndGet();
    }

    void pinCheckEnded() {
        pinChecks.decrementAndGet();
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

    /** The newest login's ParameterStatus values, or null until a connection has logged in. */
    Map<String, String> welcome() {
        return welcome.values();
    }

    /** The welcome if it is known valid since {@code sinceNanos} (see PoolWelcome), else null. */
    Map<String, String> freshWelcome(long sinceNanos) {
        return welcome.since(sinceNanos);
    }

    /** A welcome valid since {@code sinceNanos}, now or once a check or login tells. */
    CompletableFuture<Map<String, String>> welcomeSince(long sinceNanos) {
        return welcome.await(sinceNanos);
    }

    void loginStarted(long startedNanos) {
        welcome.loginStarted(startedNanos);
    }

    void loggedIn(ServerConnection conn, long startedNanos) {
        welcome.loggedIn(conn, startedNanos);
    }

    void loginFailed(long startedNanos, Throwable cause) {
        welcome.loginFailed(startedNanos, cause);
    }

    void expireWelcomeWaits(long now, long timeoutNanos) {
        welcome.expireWaits(now, timeoutNanos);
    }
}
