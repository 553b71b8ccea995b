package io.pgrelay.proxy;

import io.netty.channel.EventLoop;
import io.pgrelay.pool.Connector;
import io.pgrelay.pool.Pool;
import io.pgrelay.pool.PoolException;
import io.pgrelay.pool.PoolStats;
import io.pgrelay.protocol.LogSafe;
import io.pgrelay.routing.Backend;
import io.pgrelay.routing.Role;
import java.util.Collection;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Every pool pgrelay has opened, created on first use of a (database, user, backend, role) and
 * removed again when nobody needs it: at once when the server refused its login (a client can name
 * any database; the pool, its log lines and its /metrics series must not outlive the refusal), or
 * after autodb_idle_timeout without use, as PgBouncer frees its auto-databases.
 *
 * <p>A pool is removed only while it has no server connection, no connect in flight, no waiter
 * ({@link Pool#closeIfUnused}, atomic) and no logged-in client homed on it (SHOW POOLS counts
 * those). A client that looked the pool up just before it closed gets CLOSED from its acquire and
 * asks again ({@link #wasRemoved}); {@link #pool} never hands out a closed pool.
 */
final class ServerPools {

    private static final Logger log = LoggerFactory.getLogger(ServerPools.class);

    /** How often the janitor looks for idle pools: autodb_idle_timeout has second resolution. */
    private static final long IDLE_CHECK_NANOS = TimeUnit.SECONDS.toNanos(1);

    private final RelayServices relay;
    private final Map<PoolKey, ServerPool> pools = new ConcurrentHashMap<>();

    /** Per backend (host:port): down or up, probing; removed with the last pool of the backend. */
    private final Map<Backend, BackendHealth> backends = new ConcurrentHashMap<>();

    /** Pools whose last login the server refused; the janitor removes them once unused. */
    private final Set<ServerPool> refused = ConcurrentHashMap.newKeySet();

    /** Janitor thread only. */
    private long lastIdleCheckNanos = System.nanoTime();

    ServerPools(RelayServices relay) {
        this.relay = relay;
    }

    /**
     * The pool for these names; {@code parameters}: the startup parameters its server connections
     * log in with (session mode: the client's own, interned; transaction mode: none).
     */
    ServerPool pool(
            String database,
            String user,
            Map<String, String> parameters,
            Backend backend,
            Role role) {
        PoolKey key = new PoolKey(database, user, parameters, backend, role);
        ServerPool existing = pools.get(key);
        if (existing != null && !existing.pool().isClosed()) {
            return existing;
        }
        return pools.compute(
                key,
                (k, current) -> {
                    if (current != null && (!current.pool().isClosed() || relay.isShuttingDown())) {
                        return current;
                    }
                    if (current != null) {
                        // Closed by the janitor, which has not taken it out yet: free its meters
                        // before the
                        // successor registers the same ones (Micrometer would hand back the old
                        // meters).
                        relay.metrics().unregisterPool(current);
                    }
                    return create(k);
                });
    }

    private ServerPool create(PoolKey key) {
        ServerPool[] self = new ServerPool[1];
        Connector<ServerConnection> connector =
                new Connector<>() {
                    @Override
                    public CompletableFuture<ServerConnection> connect(Object affinity) {
                        return login(self[0], affinity);
                    }

                    @Override
                    public boolean reportsFailures() {
                        return true; // login() and BackendHealth log them
                    }
                };
        Pool<ServerConnection> pool =
                new Pool<>(
                        key.toString(), relay.config().poolSettings(), connector, System::nanoTime);
        self[0] = new ServerPool(key, pool);
        relay.metrics().registerPool(self[0]);
        // Each name once, quoted and cut: a client may pick a 9 kB database name with newlines in
        // it.
        log.info(
                "new pool: database {} user {} on {} backend {} (pool_size {}, {} mode)",
                LogSafe.quote(key.database()),
                LogSafe.quote(key.user()),
                key.role().label(),
                key.backend(),
                relay.config().poolSettings().poolSize(),
                relay.config().poolMode().name().toLowerCase());
        return self[0];
    }

    /**
     * Opens a server connection for the pool; every login, whatever it is for, tells the pool's
     * welcome what the server reports to a new session now. A login the server refused is noted for
     * {@link #maintain} to remove the pool.
     */
    private CompletableFuture<ServerConnection> login(ServerPool pool, Object affinity) {
        long started = System.nanoTime();
        pool.loginStarted(started);
        Executor failLater =
                affinity instanceof EventLoop loop ? loop : relay.transport().group().next();
        CompletableFuture<ServerConnection> login =
                backend(pool.key().backend())
                        .connect(() -> ServerConnection.open(relay, pool, affinity), failLater);
        login.whenComplete(
                (conn, error) -> {
                    if (error == null) {
                        pool.loggedIn(conn, started);
                        return;
                    }
                    Throwable cause =
                            error instanceof CompletionException ? error.getCause() : error;
                    if (cause instanceof ServerLoginException e && e.isRefusal()) {
                        refused.add(pool);
                    }
                    if (!(cause instanceof ServerLoginException e && e.isUnreachable())) {
                        // The server answered (or pgrelay failed): about this pool, not the
                        // backend, which BackendHealth reports.
                        log.warn("pool {}: connect failed: {}", pool.key(), String.valueOf(cause));
                    }
                    pool.loginFailed(started, cause);
                });
        return login;
    }

    /** The health of {@code backend}, shared by all pools connecting to it. */
    BackendHealth backend(Backend backend) {
        BackendHealth health = backends.get(backend);
        if (health != null) {
            return health;
        }
        return backends.computeIfAbsent(
                backend,
                b -> {
                    BackendHealth h = new BackendHealth(b);
                    relay.metrics().registerBackend(h);
                    return h;
                });
    }

    /** Backends pgrelay has connected to (or tried). */
    Collection<BackendHealth> backends() {
        return backends.values();
    }

    /**
     * True when {@code failure} came from a pool removed as unused just as the client asked it for
     * a connection: the client should simply ask again (and get a fresh pool). While pgrelay stops,
     * a closed pool means what it says.
     */
    boolean wasRemoved(ServerPool pool, PoolException failure) {
        return failure.reason() == PoolException.Reason.CLOSED
                && pool.pool().isClosed()
                && !relay.isShuttingDown();
    }

    /**
     * A pool of this database, user and startup parameters whose welcome comes from a login that
     * started at {@code sinceNanos} or later, one of the same role first (its in_hot_standby is the
     * one the client should see), or null.
     */
    ServerPool withWelcome(
            String database,
            String user,
            Map<String, String> parameters,
            Role role,
            long sinceNanos) {
        ServerPool other = null;
        for (ServerPool p : pools.values()) {
            if (p.freshWelcome(sinceNanos) != null
                    && p.key().database().equals(database)
                    && p.key().user().equals(user)
                    && p.key().parameters().equals(parameters)) {
                if (p.role() == role) {
                    return p;
                }
                other = p;
            }
        }
        return other;
    }

    Collection<ServerPool> all() {
        return pools.values();
    }

    /**
     * The pool janitor, every 100 ms: pool timeouts; refused pools at once; idle pools once a
     * second.
     */
    void maintain() {
        long waitTimeout = relay.config().poolSettings().queryWaitTimeout().toNanos();
        for (ServerPool p : pools.values()) {
            p.pool().maintain();
            p.expireWelcomeWaits(System.nanoTime(), waitTimeout);
        }
        long now = System.nanoTime();
        boolean idleCheck = now - lastIdleCheckNanos >= IDLE_CHECK_NANOS;
        if (refused.isEmpty() && !idleCheck) {
            return;
        }
        Set<ServerPool> homed = homedPools();
        if (!refused.isEmpty()) {
            removeRefused(homed);
        }
        if (idleCheck) {
            lastIdleCheckNanos = now;
            removeIdle(homed, now);
        }
    }

    /** Pools that logged-in clients call home (one pass over the sessions, not one per pool). */
    private Set<ServerPool> homedPools() {
        Set<ServerPool> homed = Collections.newSetFromMap(new IdentityHashMap<>());
        for (ClientSession s : relay.sessions()) {
            ServerPool home = s.homePool();
            // A client still logging in is a waiter of its pool, or one whose login just failed.
            String state = s.stateLabel();
            if (home != null && (state.equals("active") || state.equals("waiting"))) {
                homed.add(home);
            }
        }
        return homed;
    }

    private void removeRefused(Set<ServerPool> homed) {
        for (Iterator<ServerPool> it = refused.iterator(); it.hasNext(); ) {
            ServerPool p = it.next();
            PoolStats st = p.pool().stats();
            if (st.connecting() > 0 || st.waiting() > 0) {
                continue; // a login still under way: look again next time
            }
            it.remove();
            // Open connections or logged-in clients: the refusal hit one user of a pool in use
            // (a password changed under it, a database dropped); the idle timeout decides later.
            if (st.total() == 0 && !homed.contains(p) && remove(p)) {
                // DEBUG: the refusal itself was logged (connect failed), and any client can cause
                // one.
                log.debug("pool {}: removed: the server refused its login", p.key());
            }
        }
    }

    private void removeIdle(Set<ServerPool> homed, long now) {
        long timeout = relay.config().autodbIdleTimeout().toNanos();
        for (ServerPool p : pools.values()) {
            PoolStats st = p.pool().stats();
            // Any lease, connect or login since the last check counts as use, however short.
            long activity = st.leases() + st.connectsStarted() + p.clientLogins.sum();
            boolean inUse =
                    st.total() > 0
                            || st.waiting() > 0
                            || homed.contains(p)
                            || activity != p.lastActivity;
            p.lastActivity = activity;
            if (inUse) {
                p.lastUsedNanos = now;
            } else if (timeout > 0 && now - p.lastUsedNanos >= timeout && remove(p)) {
                log.info(
                        "pool {}: removed: unused for autodb_idle_timeout ({} s)",
                        p.key(),
                        relay.config().autodbIdleTimeout().toSeconds());
            }
        }
    }

    /**
     * Closes, unregisters and forgets {@code p} if it is still unused; the next client gets a new
     * pool. False if a client came in since the check.
     */
    private boolean remove(ServerPool p) {
        if (!p.pool().closeIfUnused()) {
            return false;
        }
        // Meters go before the mapping: a successor registering while the old meters are still
        // there would be handed them back by Micrometer, and lose them with the old pool.
        pools.computeIfPresent(
                p.key(),
                (k, current) -> {
                    if (current == p) {
                        relay.metrics().unregisterPool(p);
                        return null;
                    }
                    return current;
                });
        relay.metrics().unregisterPool(p); // no-op unless a successor already replaced p
        refused.remove(p);
        forgetBackendIfUnused(p.key().backend());
        return true;
    }

    /**
     * Drops a backend's health and meters once no pool connects to it (a Patroni member replaced by
     * another host, a pool removed as idle): its down gauge must not stay 1 forever. Under the
     * map's lock for that key, so a pool created meanwhile gets a fresh one with its own meters.
     */
    private void forgetBackendIfUnused(Backend backend) {
        backends.computeIfPresent(
                backend,
                (b, health) -> {
                    for (ServerPool other : pools.values()) {
                        if (other.key().backend().equals(b)) {
                            return health;
                        }
                    }
                    relay.metrics().unregisterBackend(health);
                    return null;
                });
    }

    void close(String reason) {
        for (ServerPool p : pools.values()) {
            p.pool().close(reason);
        }
    }
}
