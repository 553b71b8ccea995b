package io.pgrelay.proxy;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.pgrelay.admin.AdminSession;
import io.pgrelay.admin.AdminView;
import io.pgrelay.config.ProxyConfig;
import io.pgrelay.pool.PoolStats;
import io.pgrelay.routing.Backend;
import io.pgrelay.tls.TlsContexts;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * What the admin console shows (its control commands are {@link AdminActions}), over pgrelay's live
 * state. Views are computed on demand from the sessions, pools and connections (cheap enough for
 * thousands of clients, and nothing is kept up to date for a console nobody is looking at).
 */
final class AdminConsole implements AdminView {

    static final String VERSION = "0.1.0";

    /** PgBouncer's stats_period: averages in SHOW STATS cover the last full period. */
    static final int STATS_PERIOD_SECONDS = 15;

    private final RelayServices services;
    private final AdminActions actions;

    /** Totals at the start of the current stats period, per database, for the averages. */
    private Map<String, long[]> periodStart = Map.of();

    private long periodStartNanos = System.nanoTime();
    private Map<String, long[]> lastPeriodDelta = Map.of();
    private double lastPeriodSeconds = 1;

    AdminConsole(RelayServices services, AdminActions actions) {
        this.services = services;
        this.actions = actions;
    }

    /** A console session for a client that has logged in to the console database. */
    AdminSession open(boolean mayControl, Channel channel) {
        return new AdminSession(
                this,
                actions,
                mayControl,
                channel.alloc(),
                channel.eventLoop(),
                new AdminSession.Output() {
                    @Override
                    public void write(ByteBuf messages) {
                        channel.writeAndFlush(messages, channel.voidPromise());
                    }

                    @Override
                    public void close() {
                        channel.close();
                    }
                });
    }

    // ------------------------------------------------------------------ views

    @Override
    public List<PoolRow> pools() {
        Map<ServerPool, int[]> clients = new HashMap<>();
        for (ClientSession s : services.sessions()) {
            ServerPool home = s.homePool();
            if (home != null && !s.isConsole()) {
                int[] c = clients.computeIfAbsent(home, k -> new int[2]);
                c[s.stateLabel().equals("waiting") ? 1 : 0]++;
            }
        }
        List<PoolRow> rows = new ArrayList<>();
        for (ServerPool p : sortedPools()) {
            PoolStats st = p.pool().stats();
            int[] c = clients.getOrDefault(p, new int[2]);
            rows.add(
                    new PoolRow(
                            p.key().database(),
                            p.key().user(),
                            c[0],
                            Math.max(c[1], st.waiting()),
                            0,
                            0,
                            st.active(),
                            0,
                            0,
                            st.idle(),
                            0,
                            0,
                            st.connecting(),
                            st.maxWaitNanos() / 1000,
                            services.config().poolMode().name().toLowerCase(),
                            null,
                            p.role().label(),
                            p.key().backend().toString(),
                            p.pinned()));
        }
        return rows;
    }

    private List<ServerPool> sortedPools() {
        List<ServerPool> pools = new ArrayList<>(services.pools().all());
        // By the raw names: PoolKey.toString() is cut for logs, and it would allocate per
        // comparison.
        pools.sort(
                Comparator.comparing((ServerPool p) -> p.key().database())
                        .thenComparing(p -> p.key().user())
                        .thenComparing(p -> p.key().backend().toString())
                        .thenComparing(p -> p.role()));
        return pools;
    }

    /**
     * Per database: assignments, xacts, queries, received, sent, xact µs, query µs, wait µs,
     * parses, server parses, binds, logins.
     */
    private Map<String, long[]> totals() {
        Map<String, long[]> t = new TreeMap<>();
        for (ServerPool p : services.pools().all()) {
            long[] v = t.computeIfAbsent(p.key().database(), k -> new long[12]);
            v[0] += p.pool().stats().leases();
            v[1] += p.transactions.sum();
            v[2] += p.queries.sum();
            v[3] += p.bytesReceived.sum();
            v[4] += p.bytesSent.sum();
            v[5] += p.transactionMicros.sum();
            v[6] += p.queryMicros.sum();
            v[7] += p.waitMicros.sum();
            v[8] += p.clientParses.sum();
            v[9] += p.serverParses.sum();
            v[10] += p.binds.sum();
            v[11] += p.clientLogins.sum();
        }
        return t;
    }

    /** Called by the janitor once per stats period: the averages describe the last full period. */
    synchronized void rollStatsPeriod() {
        long now = System.nanoTime();
        Map<String, long[]> current = totals();
        Map<String, long[]> delta = new HashMap<>();
        current.forEach(
                (db, v) -> {
                    long[] before = periodStart.getOrDefault(db, new long[12]);
                    long[] d = new long[12];
                    for (int i = 0; i < 12; i++) {
                        // A pool removed (autodb_idle_timeout) takes its totals with it: no
                        // negative rates.
                        d[i] = Math.max(0, v[i] - before[i]);
                    }
                    delta.put(db, d);
                });
        lastPeriodDelta = delta;
        lastPeriodSeconds = Math.max(1e-3, (now - periodStartNanos) / 1e9);
        periodStart = current;
        periodStartNanos = now;
    }

    @Override
    public synchronized List<StatsRow> stats() {
        List<StatsRow> rows = new ArrayList<>();
        totals().forEach(
                        (db, v) -> {
                            long[] d = lastPeriodDelta.getOrDefault(db, new long[12]);
                            double s = lastPeriodSeconds;
                            StatCounters total =
                                    new StatCounters(
                                            v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8],
                                            v[9], v[10], v[11]);
                            // PgBouncer's averages: counts and bytes per second; times per
                            // transaction, query, assignment.
                            StatCounters average =
                                    new StatCounters(
                                            (long) (d[0] / s),
                                            (long) (d[1] / s),
                                            (long) (d[2] / s),
                                            (long) (d[3] / s),
                                            (long) (d[4] / s),
                                            d[1] == 0 ? 0 : d[5] / d[1],
                                            d[2] == 0 ? 0 : d[6] / d[2],
                                            d[0] == 0 ? 0 : d[7] / d[0],
                                            (long) (d[8] / s),
                                            (long) (d[9] / s),
                                            (long) (d[10] / s),
                                            (long) (d[11] / s));
                            rows.add(new StatsRow(db, total, average));
                        });
        return rows;
    }

    @Override
    public List<ConnectionRow> clients() {
        long now = System.nanoTime();
        List<ConnectionRow> rows = new ArrayList<>();
        for (ClientSession s : services.sessions()) {
            InetSocketAddress remote = address(s.channel().remoteAddress());
            InetSocketAddress local = address(s.channel().localAddress());
            ServerConnection linked = s.linkedServer();
            rows.add(
                    new ConnectionRow(
                            s.user(),
                            s.database(),
                            null,
                            s.stateLabel(),
                            host(remote),
                            port(remote),
                            host(local),
                            port(local),
                            s.connectedAt,
                            ago(now, s.lastActivityNanos()),
                            s.waitingNanos(now) / 1000,
                            false,
                            Long.toHexString(s.id),
                            linked == null ? null : Long.toHexString(linked.id),
                            0,
                            TlsContexts.describe(s.channel()),
                            s.applicationName(),
                            s.preparedStatementCount(),
                            s.id,
                            s.pinLabel()));
        }
        rows.sort((a, b) -> Long.compare(a.id(), b.id()));
        return rows;
    }

    @Override
    public List<ConnectionRow> servers() {
        long now = System.nanoTime();
        List<ConnectionRow> rows = new ArrayList<>();
        for (ServerPool p : sortedPools()) {
            for (ServerConnection c : p.connections) {
                ClientSession client = c.client();
                InetSocketAddress local = address(c.channel().localAddress());
                rows.add(
                        new ConnectionRow(
                                p.key().user(),
                                p.key().database(),
                                null,
                                client != null ? "active" : "idle",
                                p.key().backend().host(),
                                p.key().backend().port(),
                                host(local),
                                port(local),
                                c.connectedAt,
                                ago(now, c.lastUsedNanos),
                                0,
                                false,
                                Long.toHexString(c.id),
                                client == null ? null : Long.toHexString(client.id),
                                c.processId(),
                                TlsContexts.describe(c.channel()),
                                Objects.requireNonNullElse(c.parameter("application_name"), ""),
                                c.statements().size(),
                                c.id,
                                client == null ? "" : client.pinLabel()));
            }
        }
        return rows;
    }

    @Override
    public List<DatabaseRow> databases() {
        ProxyConfig cfg = services.config();
        Map<String, int[]> clientsPerDb = new HashMap<>();
        for (ClientSession s : services.sessions()) {
            if (s.database() != null) {
                clientsPerDb.computeIfAbsent(s.database(), k -> new int[1])[0]++;
            }
        }
        Map<String, DatabaseRow> rows = new TreeMap<>();
        for (ServerPool p : sortedPools()) {
            String db = p.key().database();
            Backend b = p.key().backend();
            String name = db + (rows.containsKey(db) ? "@" + b : "");
            int current = 0;
            for (ServerPool q : services.pools().all()) {
                if (q.key().database().equals(db) && q.key().backend().equals(b)) {
                    current += q.pool().stats().total();
                }
            }
            rows.putIfAbsent(
                    name,
                    new DatabaseRow(
                            name,
                            b.host(),
                            b.port(),
                            db,
                            null,
                            cfg.poolSettings().poolSize(),
                            cfg.poolSettings().minPoolSize(),
                            cfg.poolSettings().reservePoolSize(),
                            (int) cfg.poolSettings().lifetime().toSeconds(),
                            cfg.poolMode().name().toLowerCase(),
                            null,
                            0,
                            current,
                            0,
                            clientsPerDb.getOrDefault(db, new int[1])[0],
                            services.isPaused(db),
                            services.isDisabled(db)));
        }
        List<DatabaseRow> out = new ArrayList<>();
        out.add(
                new DatabaseRow(
                        "pgbouncer",
                        null,
                        0,
                        "pgbouncer",
                        "pgbouncer",
                        2,
                        0,
                        0,
                        0,
                        "statement",
                        null,
                        0,
                        0,
                        0,
                        clientsPerDb.getOrDefault("pgbouncer", new int[1])[0]
                                + clientsPerDb.getOrDefault("pgrelay", new int[1])[0],
                        false,
                        false));
        out.addAll(rows.values());
        return out;
    }

    @Override
    public List<UserRow> users() {
        Map<String, int[]> perUser = new HashMap<>();
        for (ClientSession s : services.sessions()) {
            if (s.user() != null) {
                perUser.computeIfAbsent(s.user(), k -> new int[1])[0]++;
            }
        }
        Map<String, Integer> servers = new HashMap<>();
        for (ServerPool p : services.pools().all()) {
            servers.merge(p.key().user(), p.pool().stats().total(), Integer::sum);
        }
        List<UserRow> rows = new ArrayList<>();
        for (String u : new TreeSet<>(services.credentials().users())) {
            rows.add(
                    new UserRow(
                            u,
                            null,
                            null,
                            null,
                            0,
                            servers.getOrDefault(u, 0),
                            0,
                            perUser.getOrDefault(u, new int[1])[0]));
        }
        return rows;
    }

    @Override
    public Lists lists() {
        int used = 0;
        int login = 0;
        for (ClientSession s : services.sessions()) {
            if (s.stateLabel().equals("login")) {
                login++;
            } else {
                used++;
            }
        }
        int freeServers = 0;
        int usedServers = 0;
        Set<String> databases = new TreeSet<>();
        Set<String> users = new TreeSet<>();
        for (ServerPool p : services.pools().all()) {
            PoolStats st = p.pool().stats();
            freeServers += st.idle();
            usedServers += st.active() + st.connecting();
            databases.add(p.key().database());
            users.add(p.key().user());
        }
        return new Lists(
                databases.size() + 1,
                services.credentials().users().size(),
                services.pools().all().size(),
                0,
                used,
                login,
                freeServers,
                usedServers);
    }

    @Override
    public List<ConfigRow> config() {
        Map<String, String> defaults =
                ProxyConfig.from(ProxyConfig.defaults().resolve().getConfig("pgrelay")).settings();
        List<ConfigRow> rows = new ArrayList<>();
        services.config()
                .settings()
                .forEach(
                        (k, v) ->
                                rows.add(
                                        new ConfigRow(
                                                k,
                                                v,
                                                defaults.getOrDefault(k, ""),
                                                ConfigReloader.isReloadable(k))));
        return rows;
    }

    @Override
    public State state() {
        return services.isPaused(null) ? State.PAUSED : State.ACTIVE;
    }

    @Override
    public String version() {
        return AdminView.versionString(VERSION);
    }

    @Override
    public List<TopologyRow> topology() {
        return services.status().topologyRows();
    }

    @Override
    public List<AdminView.PeerRow> peers() {
        return services.peers().rows();
    }

    @Override
    public List<PreparedStatementRow> preparedStatements() {
        return services.preparedStatements().rows();
    }

    private static InetSocketAddress address(SocketAddress a) {
        return a instanceof InetSocketAddress i ? i : null;
    }

    private static String host(InetSocketAddress a) {
        return a == null
                ? null
                : a.getAddress() == null ? a.getHostString() : a.getAddress().getHostAddress();
    }

    private static int port(InetSocketAddress a) {
        return a == null ? 0 : a.getPort();
    }

    private static Instant ago(long now, long thenNanos) {
        return Instant.now().minusNanos(Math.max(0, now - thenNanos));
    }
}
