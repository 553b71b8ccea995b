package io.pgrelay.proxy;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.Tags;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.pgrelay.health.LatencyHistograms;
import io.pgrelay.health.Metrics;
import io.pgrelay.pool.PoolStats;
import io.pgrelay.routing.Role;
import io.pgrelay.session.SessionCounters;
import io.pgrelay.session.SessionState;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.ToDoubleFunction;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * pgrelay's meters. Kept off the relay path: per-pool counts are the pools' own LongAdders, read by
 * function counters at scrape time; gauges are computed at scrape time; the only per-transaction
 * work is one histogram record per transaction, query and wait, tagged by role only (never per
 * pool: a multi-tenant cluster has hundreds of databases, and per-pool histograms would make
 * hundreds of thousands of series).
 */
final class ProxyMetrics implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(ProxyMetrics.class);

    private final Metrics metrics;
    private final PrometheusMeterRegistry registry;
    // Recorded on every transaction by the event loops: per-thread counters, summed at scrape
    // time (LatencyHistograms), not Micrometer timers (atomics shared by the event loops).
    private final Map<Role, LatencyHistograms.Histogram> transactionTimes =
            new EnumMap<>(Role.class);
    private final Map<Role, LatencyHistograms.Histogram> queryTimes = new EnumMap<>(Role.class);
    private final Map<Role, LatencyHistograms.Histogram> waitTimes = new EnumMap<>(Role.class);

    /** What each session's counters report to; one per role, not one per client. */
    private final Map<Role, SessionCounters.Timings> timings = new EnumMap<>(Role.class);

    private final Map<String, Counter> errorsByClass = new ConcurrentHashMap<>();
    private final LongAdder leaderChanges = new LongAdder();
    private final LongAdder sessionChecks = new LongAdder();
    private final LongAdder parameterReplays = new LongAdder();

    /** auth_query lookups sent to a server, by what they found. */
    private final Map<AuthQuery.Result, LongAdder> authQueries =
            new EnumMap<>(AuthQuery.Result.class);

    /** Clients pinned to a server connection, by reason (a client may count under several). */
    private final AtomicInteger[] pinnedClients =
            new AtomicInteger[SessionState.Pin.values().length];

    private final boolean histograms;
    private final RelayServices relay;

    /** Pools that have meters, at most admin.max_pool_metrics. */
    private final AtomicInteger meteredPools = new AtomicInteger();

    /** The limit last warned about: warn once, and again only after a reload changed it. */
    private final AtomicInteger warnedAtLimit = new AtomicInteger(-1);

    ProxyMetrics(RelayServices relay) {
        this.relay = relay;
        this.histograms = relay.config().metricsHistograms();
        this.metrics = Metrics.create();
        this.registry = metrics.registry();
        LatencyHistograms transactions =
                metrics.latencyHistograms(
                        "pgrelay.transactions",
                        "Transactions relayed, from first request to the ReadyForQuery that ends them");
        LatencyHistograms queries =
                metrics.latencyHistograms(
                        "pgrelay.queries",
                        "Requests relayed (a simple query or an extended-protocol batch up to Sync)");
        LatencyHistograms waits =
                metrics.latencyHistograms(
                        "pgrelay.client.wait", "Time clients waited for a server connection");
        for (Role role : Role.values()) {
            Tags tags = Tags.of("role", role.label());
            transactionTimes.put(role, transactions.histogram(tags));
            queryTimes.put(role, queries.histogram(tags));
            waitTimes.put(role, waits.histogram(tags));
        }
        for (String state : new String[] {"active", "waiting", "login"}) {
            Gauge.builder("pgrelay.client.connections", relay, r -> r.countClients(state))
                    .description(
                            "Client connections by state (active: logged in, waiting: queued for a server"
                                    + " connection, login: not logged in yet)")
                    .tag("state", state)
                    .register(registry);
        }
        Gauge.builder("pgrelay.buffered.messages", relay, RelayServices::bufferedMessageBytes)
                .description(
                        "Memory reserved by large client messages being received"
                                + " (limits.max_buffered_message_bytes)")
                .baseUnit("bytes")
                .register(registry);
        Gauge.builder("pgrelay.pools", relay, r -> r.pools().all().size())
                .description("Pools open (one per database, user, backend and role)")
                .register(registry);
        Gauge.builder(
                        "pgrelay.pools.unmetered",
                        relay,
                        r -> Math.max(0, r.pools().all().size() - meteredPools.get()))
                .description(
                        "Pools without per-pool series because admin.max_pool_metrics was reached")
                .register(registry);
        for (SessionState.Pin pin : SessionState.Pin.values()) {
            AtomicInteger count = new AtomicInteger();
            pinnedClients[pin.ordinal()] = count;
            Gauge.builder("pgrelay.pinned.clients", count, AtomicInteger::get)
                    .description(
                            "Transaction-mode clients keeping their server connection, by what their"
                                    + " session holds (track_session_state)")
                    .tag("reason", pin.label)
                    .register(registry);
        }
        FunctionCounter.builder("pgrelay.session.checks", sessionChecks, LongAdder::sum)
                .description(
                        "Queries asking a server what a client's transaction left in its session")
                .register(registry);
        FunctionCounter.builder("pgrelay.parameter.replays", parameterReplays, LongAdder::sum)
                .description(
                        "Queries bringing a server connection to a client's settings before its"
                                + " transaction")
                .register(registry);
        for (AuthQuery.Result result : AuthQuery.Result.values()) {
            LongAdder count = new LongAdder();
            authQueries.put(result, count);
            FunctionCounter.builder("pgrelay.auth.queries", count, LongAdder::sum)
                    .description(
                            "auth_query lookups run on a server (logins served from the cache not"
                                    + " counted), by result: found, not_found (no such role, or no"
                                    + " password), failed")
                    .tag("result", result.label)
                    .register(registry);
        }
        FunctionCounter.builder("pgrelay.leader.changes", leaderChanges, LongAdder::sum)
                .description("Changes of the primary the write port routes to")
                .register(registry);
        for (Role role : Role.values()) {
            timings.put(role, timingsOf(role));
        }
    }

    PrometheusMeterRegistry registry() {
        return registry;
    }

    /**
     * Gives a new pool its meters, unless admin.max_pool_metrics pools already have theirs: every
     * pool's series carry its database and user, names any client can choose, so without a cap a
     * client logging in to made-up databases grows the scrape without bound (164 MB at 1,200 pools
     * whose 9 kB database names were each repeated in 15 series).
     */
    void registerPool(ServerPool pool) {
        int limit = relay.config().maxPoolMetrics();
        if (meteredPools.incrementAndGet() > limit) {
            meteredPools.decrementAndGet();
            if (warnedAtLimit.getAndSet(limit) != limit) {
                log.warn(
                        "admin.max_pool_metrics ({}) reached: pool {} and further pools get no per-pool metrics"
                                + " until pools are removed (pgrelay_pools_unmetered counts them; SHOW POOLS lists all)",
                        limit,
                        pool.key());
            }
            return;
        }
        Tags tags =
                Tags.of(
                        "database",
                        pool.key().database(),
                        "user",
                        pool.key().user(),
                        "role",
                        pool.role().label(),
                        "backend",
                        pool.key().backend().toString());
        List<Meter> meters = new ArrayList<>(15);
        meters.add(serverGauge(pool, tags, "active", s -> s.active()));
        meters.add(serverGauge(pool, tags, "idle", s -> s.idle()));
        meters.add(serverGauge(pool, tags, "login", s -> s.connecting()));
        meters.add(
                Gauge.builder("pgrelay.pool.waiting.clients", pool, p -> p.pool().stats().waiting())
                        .description("Clients queued for a server connection of this pool")
                        .tags(tags)
                        .register(registry));
        meters.add(
                Gauge.builder(
                                "pgrelay.pool.max.wait",
                                pool,
                                p -> p.pool().stats().maxWaitNanos() / 1e9)
                        .description("How long the oldest queued client has waited")
                        .baseUnit("seconds")
                        .tags(tags)
                        .register(registry));
        meters.add(
                counter(
                        pool,
                        tags,
                        "pgrelay.pool.transactions",
                        "Transactions completed",
                        p -> p.transactions.sum()));
        meters.add(
                counter(
                        pool,
                        tags,
                        "pgrelay.pool.queries",
                        "Requests completed",
                        p -> p.queries.sum()));
        meters.add(
                counter(
                        pool,
                        tags,
                        "pgrelay.pool.received.bytes",
                        "Bytes from clients to servers",
                        p -> p.bytesReceived.sum()));
        meters.add(
                counter(
                        pool,
                        tags,
                        "pgrelay.pool.sent.bytes",
                        "Bytes from servers to clients",
                        p -> p.bytesSent.sum()));
        meters.add(
                counter(
                        pool,
                        tags,
                        "pgrelay.pool.server.assignments",
                        "Server connections given to clients",
                        p -> p.pool().stats().leases()));
        meters.add(
                counter(
                        pool,
                        tags,
                        "pgrelay.pool.server.connects",
                        "Server connections the pool asked for (while the backend is down, most"
                                + " are answered without an attempt: see"
                                + " pgrelay_backend_connect_failures_total)",
                        p -> p.pool().stats().connectsStarted()));
        meters.add(
                counter(
                        pool,
                        tags,
                        "pgrelay.pool.server.connect.failures",
                        "Server connections the pool asked for that failed, with or without an"
                                + " attempt (a backend that is down is tried once at a time)",
                        p -> p.pool().stats().connectsFailed()));
        meters.add(
                counter(
                        pool,
                        tags,
                        "pgrelay.prepared.client.parses",
                        "Parse messages from clients",
                        p -> p.clientParses.sum()));
        meters.add(
                counter(
                        pool,
                        tags,
                        "pgrelay.prepared.server.parses",
                        "Parse messages sent to servers",
                        p -> p.serverParses.sum()));
        meters.add(
                counter(
                        pool,
                        tags,
                        "pgrelay.prepared.binds",
                        "Bind messages from clients",
                        p -> p.binds.sum()));
        pool.meters.set(List.copyOf(meters));
    }

    /**
     * Removes a pool's meters and frees its slot. Idempotent: a removed pool may be unregistered
     * both by the janitor and by the client that replaces it, whichever comes first.
     */
    void unregisterPool(ServerPool pool) {
        List<Meter> meters = pool.meters.getAndSet(null);
        if (meters == null) {
            return;
        }
        for (Meter m : meters) {
            registry.remove(m);
        }
        meteredPools.decrementAndGet();
    }

    private Meter serverGauge(
            ServerPool pool, Tags tags, String state, ToDoubleFunction<PoolStats> value) {
        return Gauge.builder(
                        "pgrelay.server.connections",
                        pool,
                        p -> value.applyAsDouble(p.pool().stats()))
                .description(
                        "Server connections by state (active: held by a client, idle: in the pool,"
                                + " login: connecting)")
                .tags(tags)
                .tag("state", state)
                .register(registry);
    }

    private Meter counter(
            ServerPool pool,
            Tags tags,
            String name,
            String description,
            ToDoubleFunction<ServerPool> f) {
        return FunctionCounter.builder(name, pool, f)
                .description(description)
                .tags(tags)
                .register(registry);
    }

    /**
     * Topology meters: eligible replicas, etcd connection, per-member replica lag (registered as
     * members appear).
     */
    void registerTopology(RelayServices relay) {
        Gauge.builder("pgrelay.replicas.eligible", relay, r -> r.eligibleReplicaCount())
                .description("Replicas the read port may use right now")
                .register(registry);
        if (relay.patroni() == null) {
            return;
        }
        Gauge.builder(
                        "pgrelay.etcd.connected",
                        relay,
                        r -> r.patroni().topology().sourceConnected() ? 1 : 0)
                .description(
                        "1 while the etcd watch is connected (routing follows the cluster), 0 while pgrelay"
                                + " routes on the last known topology")
                .register(registry);
    }

    /**
     * Meters of one backend (host:port), registered when pgrelay first connects to it and removed
     * with its last pool: backends are the configured servers and the Patroni members, not names
     * clients choose.
     */
    void registerBackend(BackendHealth health) {
        String backend = health.backend().toString();
        List<Meter> meters = new ArrayList<>(2);
        meters.add(
                FunctionCounter.builder(
                                "pgrelay.backend.connect.failures", health.failures, LongAdder::sum)
                        .description(
                                "Server connect attempts that found the backend unreachable (refused, timed"
                                        + " out, closed during login, 57P03); while it is down at most one"
                                        + " attempt runs at a time")
                        .tag("backend", backend)
                        .register(registry));
        meters.add(
                Gauge.builder("pgrelay.backend.down", health, h -> h.isDown() ? 1 : 0)
                        .description(
                                "1 while the last connect attempt to the backend found it"
                                        + " unreachable (pgrelay then tries it once at a time, at"
                                        + " growing intervals)")
                        .tag("backend", backend)
                        .register(registry));
        health.meters = List.copyOf(meters);
    }

    /** Removes a backend's meters (no pool connects to it any more). */
    void unregisterBackend(BackendHealth health) {
        for (Meter m : health.meters) {
            registry.remove(m);
        }
        health.meters = List.of();
    }

    private final Set<String> laggingMembers = ConcurrentHashMap.newKeySet();

    /** Called on every topology update: a lag gauge for each member not seen before. */
    void watchMembers(RoutingState routing, Iterable<String> memberNames) {
        for (String name : memberNames) {
            if (laggingMembers.add(name)) {
                Gauge.builder("pgrelay.replica.lag.bytes", routing, r -> r.replicaLagBytes(name))
                        .description(
                                "How far a member's WAL position is behind the leader (status.optime minus"
                                        + " xlog_location, as Patroni last published them)")
                        .baseUnit("bytes")
                        .tag("member", name)
                        .register(registry);
            }
        }
    }

    void transaction(Role role, long nanos, long now) {
        if (histograms) {
            transactionTimes.get(role).record(nanos, now);
        }
    }

    void query(Role role, long nanos, long now) {
        if (histograms) {
            queryTimes.get(role).record(nanos, now);
        }
    }

    /** A session's query and transaction durations, for its role's histograms. */
    SessionCounters.Timings timings(Role role) {
        return timings.get(role);
    }

    private SessionCounters.Timings timingsOf(Role role) {
        return new SessionCounters.Timings() {
            @Override
            public void query(long nanos, long now) {
                ProxyMetrics.this.query(role, nanos, now);
            }

            @Override
            public void transaction(long nanos, long now) {
                ProxyMetrics.this.transaction(role, nanos, now);
            }
        };
    }

    void clientWait(Role role, long nanos, long now) {
        if (histograms) {
            waitTimes.get(role).record(nanos, now);
        }
    }

    /** Errors sent to clients, by SQLSTATE class (first two characters). */
    void error(String sqlState) {
        String sqlClass =
                sqlState != null && sqlState.length() >= 2 ? sqlState.substring(0, 2) : "XX";
        errorsByClass
                .computeIfAbsent(
                        sqlClass,
                        c ->
                                Counter.builder("pgrelay.errors")
                                        .description(
                                                "ErrorResponses sent to clients, by SQLSTATE class")
                                        .tag("class", c)
                                        .register(registry))
                .increment();
    }

    void sessionChecked() {
        sessionChecks.increment();
    }

    void parametersReplayed() {
        parameterReplays.increment();
    }

    /** A client's pins went from {@code was} to {@code now} (bit sets of SessionState.Pin). */
    void pinsChanged(int was, int now) {
        for (SessionState.Pin pin : SessionState.Pin.values()) {
            int bit = SessionState.bit(pin);
            if ((was & bit) != (now & bit)) {
                pinnedClients[pin.ordinal()].addAndGet((now & bit) != 0 ? 1 : -1);
            }
        }
    }

    void authQuery(AuthQuery.Result result) {
        authQueries.get(result).increment();
    }

    /** auth_query lookups run so far with this result (tests, SHOW). */
    long authQueries(AuthQuery.Result result) {
        return authQueries.get(result).sum();
    }

    void leaderChanged() {
        leaderChanges.increment();
    }

    @Override
    public void close() {
        metrics.close();
    }
}
