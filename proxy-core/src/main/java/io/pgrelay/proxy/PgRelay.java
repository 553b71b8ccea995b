package io.pgrelay.proxy;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.socket.SocketChannel;
import io.pgrelay.admin.AdminView;
import io.pgrelay.auth.UserList;
import io.pgrelay.config.ProxyConfig;
import io.pgrelay.health.Health;
import io.pgrelay.health.HealthServer;
import io.pgrelay.health.HttpLimits;
import io.pgrelay.health.StatusPage;
import io.pgrelay.protocol.FrameDecoder;
import io.pgrelay.protocol.MessageMemory;
import io.pgrelay.protocol.StartupMessage;
import io.pgrelay.routing.Backend;
import io.pgrelay.routing.EtcdTopologySource;
import io.pgrelay.routing.Member;
import io.pgrelay.routing.PatroniRouter;
import io.pgrelay.routing.Role;
import io.pgrelay.routing.Router;
import io.pgrelay.routing.StaticRouter;
import io.pgrelay.routing.Topology;
import io.pgrelay.routing.TopologySource;
import io.pgrelay.session.PreparedStatements;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The running proxy: two listeners (write port → primary, read port → replicas), the pools, the
 * router, and the janitor that drives timeouts. Create, {@link #start()}, and {@link
 * #shutdown(Duration)} or {@link #close()}.
 */
public final class PgRelay implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(PgRelay.class);

    /** Settings a RELOAD or SET may change on a running proxy (prefixes of setting paths). */
    static final List<String> RELOADABLE =
            List.of(
                    "pool.max_client_conn",
                    "pool.default_pool_size",
                    "pool.min_pool_size",
                    "pool.reserve_pool",
                    "pool.query_wait_timeout",
                    "pool.server_idle_timeout",
                    "pool.server_lifetime",
                    "pool.autodb_idle_timeout",
                    "pool.server_connect_timeout",
                    "pool.client_idle_timeout",
                    "pool.idle_transaction_timeout",
                    "pool.client_login_timeout",
                    "pool.server_reset_query",
                    "pool.ignore_startup_parameters",
                    "pool.max_prepared_statements",
                    "pool.pool_mode",
                    "auth.",
                    "admin.admin_users",
                    "admin.stats_users",
                    "admin.max_pool_metrics",
                    "protocol.",
                    "routing.patroni.max_replica_lag_bytes",
                    "routing.patroni.read_fallback_to_primary",
                    "routing.patroni.leader_wait_timeout",
                    "limits.max_client_prepared_statements",
                    "limits.max_client_prepared_statement_bytes",
                    "limits.max_login_clients");

    private volatile ProxyConfig config;
    private final File configFile;
    private final Credentials credentials;
    private final ProxyMetrics metrics;
    private final AdminConsole console = new AdminConsole(this);
    private final AtomicLong clientIds = new AtomicLong();
    private final Set<String> pausedDatabases = ConcurrentHashMap.newKeySet();
    private volatile boolean pausedAll;
    private final Set<String> disabledDatabases = ConcurrentHashMap.newKeySet();
    private final Set<ClientSession> heldSessions = ConcurrentHashMap.newKeySet();
    private final List<Runnable> janitorChecks = new CopyOnWriteArrayList<>();
    private HealthServer health;
    private final Router router;

    /** The router when following Patroni, else null. */
    private final PatroniRouter patroni;

    private final TopologySource topologySource;
    private volatile Backend lastPrimary;
    private final ServerPools pools = new ServerPools(this);
    private final CancelKeys cancelKeys = new CancelKeys();
    private final PreparedStatements preparedStatements;
    private final MessageMemory messageMemory;
    private final Set<ClientSession> sessions = ConcurrentHashMap.newKeySet();
    private final ClientSlots slots = new ClientSlots();
    private Transport transport;
    private Channel writeListener;
    private Channel readListener;
    private ScheduledFuture<?> poolJanitor;
    private ScheduledFuture<?> sessionJanitor;
    private ScheduledFuture<?> statsJanitor;
    private int heldTicks;

    /** PgBouncer's stats_period: averages in SHOW STATS cover the last full period. */
    private static final int STATS_PERIOD_SECONDS = 15;

    private volatile boolean shuttingDown;

    public PgRelay(ProxyConfig config) {
        this(config, null);
    }

    /** With the file the config came from, so RELOAD and SIGHUP can read it again. */
    public PgRelay(ProxyConfig config, File configFile) {
        this.config = config;
        this.configFile = configFile;
        this.preparedStatements =
                new PreparedStatements(config.limits().preparedStatementCacheBytes());
        this.messageMemory = new MessageMemory(config.limits().maxBufferedMessageBytes());
        this.credentials = new Credentials(loadUsers(config));
        if (config.routingSource().equals("patroni")) {
            PatroniRouter patroni =
                    new PatroniRouter(config.maxReplicaLagBytes(), config.readFallbackToPrimary());
            this.router = patroni;
            this.patroni = patroni;
            this.topologySource =
                    new EtcdTopologySource(
                            EtcdTopologySource.Settings.of(
                                            config.etcdEndpoints(),
                                            config.patroniNamespace(),
                                            config.patroniScope())
                                    .withRequestTimeout(config.etcdRequestTimeout()));
        } else {
            this.router = new StaticRouter(config.primary(), config.replicas());
            this.patroni = null;
            this.topologySource = null;
        }
        this.metrics = new ProxyMetrics(this);
        metrics.registerTopology(this);
    }

    private static UserList loadUsers(ProxyConfig config) {
        try {
            return UserList.load(config.authFile());
        } catch (IOException e) {
            throw new UncheckedIOException(
                    "pgrelay.auth.auth_file: cannot read "
                            + config.authFile().toAbsolutePath()
                            + ": "
                            + e.getMessage(),
                    e);
        }
    }

    public synchronized PgRelay start() throws InterruptedException {
        transport =
                Transport.create(config.useEpoll(), config.useIoUring(), config.workerThreads());
        log.info(
                "pgrelay starting: {} transport, {} event loops, pool_mode {}, auth_type {}",
                transport.name(),
                transport.threads(),
                config.poolMode().name().toLowerCase(),
                config.authType().name().toLowerCase().replace('_', '-'));
        try {
            writeListener = listen(config.writePort(), Role.PRIMARY);
            readListener = listen(config.readPort(), Role.REPLICA);
        } catch (InterruptedException | RuntimeException e) {
            close();
            throw e;
        }
        if (patroni != null) {
            log.info(
                    "routing: Patroni scope \"{}\" in etcd {} (namespace {})",
                    config.patroniScope(),
                    config.etcdEndpoints(),
                    config.patroniNamespace());
            patroni.addListener(this::onRoutingChange);
            topologySource.start(
                    t -> {
                        patroni.update(t);
                        metrics.watchMembers(this, t.members().keySet());
                        // Any cluster event (a member turning master, a key moving) is a good
                        // moment for
                        // held writes to look again, even when the routing answer itself did not
                        // change.
                        if (!heldSessions.isEmpty()) {
                            wakeHeld();
                        }
                    });
        } else {
            log.info("backend primary {}", config.primary());
            for (Backend replica : config.replicas()) {
                log.info("backend replica {}", replica);
            }
            if (config.replicas().isEmpty()) {
                log.info("no replicas configured: the read port uses the primary");
            }
        }
        poolJanitor =
                transport
                        .group()
                        .scheduleAtFixedRate(
                                () -> {
                                    pools.maintain();
                                    janitorChecks.forEach(Runnable::run);
                                    // Safety net for held clients: a promotion is normally seen at
                                    // once (ParameterStatus
                                    // in_hot_standby on a pooled connection), but an unconfirmed
                                    // leader is re-probed too.
                                    if (!heldSessions.isEmpty() && ++heldTicks % 2 == 0) {
                                        wakeHeld();
                                    }
                                },
                                100,
                                100,
                                TimeUnit.MILLISECONDS);
        sessionJanitor =
                transport.group().scheduleAtFixedRate(this::checkSessions, 1, 1, TimeUnit.SECONDS);
        statsJanitor =
                transport
                        .group()
                        .scheduleAtFixedRate(
                                console::rollStatsPeriod,
                                STATS_PERIOD_SECONDS,
                                STATS_PERIOD_SECONDS,
                                TimeUnit.SECONDS);
        if (config.httpPort() > 0) {
            try {
                // On pgrelay's own loops: no extra threads but the render thread, and /health then
                // also says the loops are turning.
                health =
                        HealthServer.start(
                                config.httpHost(),
                                config.httpPort(),
                                metrics.registry(),
                                Health::up,
                                this::readiness,
                                this::statusPage,
                                HttpLimits.DEFAULTS,
                                transport.group(),
                                transport.serverChannelClass());
            } catch (IOException e) {
                close();
                throw new IllegalStateException(
                        "pgrelay.admin.http_port: cannot listen on "
                                + config.httpHost()
                                + ":"
                                + config.httpPort()
                                + ": "
                                + e.getMessage(),
                        e);
            }
            log.info(
                    "HTTP on {}:{} (/metrics, /health, /ready, /)",
                    config.httpHost(),
                    health.port());
        }
        return this;
    }

    private Channel listen(int port, Role role) throws InterruptedException {
        ServerBootstrap b =
                new ServerBootstrap()
                        .group(transport.group())
                        .channel(transport.serverChannelClass())
                        .option(ChannelOption.SO_BACKLOG, 4096)
                        .option(ChannelOption.SO_REUSEADDR, true)
                        .childOption(ChannelOption.TCP_NODELAY, true)
                        .childOption(ChannelOption.SO_KEEPALIVE, true)
                        .childHandler(
                                new ChannelInitializer<SocketChannel>() {
                                    @Override
                                    protected void initChannel(SocketChannel ch) {
                                        ch.pipeline()
                                                .addLast(
                                                        "frames",
                                                        FrameDecoder.frontendRuns(
                                                                config.maxMessageSize(),
                                                                messageMemory));
                                        ch.pipeline()
                                                .addLast(
                                                        "session",
                                                        new ClientSession(PgRelay.this, role));
                                    }
                                });
        Channel ch;
        try {
            ch = b.bind(config.listenHost(), port).sync().channel();
        } catch (Exception e) {
            if (e instanceof InterruptedException ie) {
                throw ie;
            }
            throw new IllegalStateException(
                    "pgrelay.listen."
                            + (role == Role.PRIMARY ? "write_port" : "read_port")
                            + ": cannot listen on "
                            + config.listenHost()
                            + ":"
                            + port
                            + ": "
                            + e.getMessage(),
                    e);
        }
        log.info(
                "listening on {} for {} ({})",
                ch.localAddress(),
                role == Role.PRIMARY ? "writes" : "reads",
                role == Role.PRIMARY ? "primary" : "replicas, primary as fallback");
        return ch;
    }

    public int writePort() {
        return ((InetSocketAddress) writeListener.localAddress()).getPort();
    }

    public int readPort() {
        return ((InetSocketAddress) readListener.localAddress()).getPort();
    }

    ProxyConfig config() {
        return config;
    }

    /** The HTTP port actually bound, or 0 when HTTP is off. */
    public int httpPort() {
        return health == null ? 0 : health.port();
    }

    ProxyMetrics metrics() {
        return metrics;
    }

    AdminConsole console() {
        return console;
    }

    Set<ClientSession> sessions() {
        return sessions;
    }

    long nextClientId() {
        return clientIds.incrementAndGet();
    }

    double countClients(String state) {
        int n = 0;
        for (ClientSession s : sessions) {
            if (s.stateLabel().equals(state)) {
                n++;
            }
        }
        return n;
    }

    Transport transport() {
        return transport;
    }

    Credentials credentials() {
        return credentials;
    }

    Router router() {
        return router;
    }

    ServerPools pools() {
        return pools;
    }

    PreparedStatements preparedStatements() {
        return preparedStatements;
    }

    CancelKeys cancelKeys() {
        return cancelKeys;
    }

    boolean isShuttingDown() {
        return shuttingDown;
    }

    /**
     * A new connection, counted as logging in; false when the login slots are full
     * (limits.max_login_clients). It is counted until it goes.
     */
    boolean clientConnected(ClientSession session) {
        sessions.add(session);
        return slots.startLogin(session, config().limits().maxLoginClients());
    }

    /**
     * The client has logged in: it moves to a client slot; false when max_client_conn are taken.
     */
    boolean clientLoggedIn(ClientSession session) {
        if (!slots.addClient(config().maxClientConn())) {
            return false; // keeps its login slot until it goes
        }
        slots.endLogin(session);
        return true;
    }

    /** The connection went away; {@code loggedIn} says which slot it held. */
    void clientDisconnected(ClientSession session, boolean loggedIn) {
        if (sessions.remove(session)) {
            if (loggedIn) {
                slots.removeClient();
            } else {
                slots.endLogin(session);
            }
        }
    }

    /** Bytes reserved by large messages being received (limits.max_buffered_message_bytes). */
    public long bufferedMessageBytes() {
        return messageMemory.used();
    }

    /** Logged-in clients (those still logging in are not counted: see ClientSlots). */
    public int clientCount() {
        return slots.clients();
    }

    /**
     * One task per event loop, not per client: 10,000 idle clients cost 2 tasks a second, not
     * 10,000.
     */
    private void checkSessions() {
        long now = System.nanoTime();
        Map<io.netty.channel.EventLoop, List<ClientSession>> byLoop =
                new java.util.IdentityHashMap<>();
        for (ClientSession s : sessions) {
            byLoop.computeIfAbsent(s.loop(), loop -> new ArrayList<>()).add(s);
        }
        byLoop.forEach(
                (loop, batch) ->
                        loop.execute(
                                () -> {
                                    for (ClientSession s : batch) {
                                        s.checkTimeouts(now);
                                    }
                                }));
    }

    /** Sends a CancelRequest to a server on a connection of its own, as libpq does. */
    void sendCancel(Backend backend, int processId, int secretKey) {
        transport
                .serverBootstrap(transport.group(), config.serverConnectTimeout().toMillis())
                .handler(
                        new ChannelInitializer<Channel>() {
                            @Override
                            protected void initChannel(Channel ch) {}
                        })
                .connect(backend.host(), backend.port())
                .addListener(
                        (ChannelFutureListener)
                                f -> {
                                    if (f.isSuccess()) {
                                        f.channel()
                                                .writeAndFlush(
                                                        StartupMessage.encodeCancelRequest(
                                                                f.channel().alloc(),
                                                                processId,
                                                                secretKey))
                                                .addListener(ChannelFutureListener.CLOSE);
                                    } else {
                                        log.info(
                                                "cancel request to {} failed: {}",
                                                backend,
                                                f.cause().toString());
                                    }
                                });
    }

    /**
     * Graceful stop: no new clients, idle clients disconnected, clients inside a transaction
     * disconnected when it ends, for at most {@code timeout}; then everything closes.
     */
    public void shutdown(Duration timeout) throws InterruptedException {
        shuttingDown = true;
        if (health != null) {
            health.beginShutdown();
        }
        closeListeners();
        log.info(
                "shutting down: {} clients, waiting up to {} s for transactions in flight",
                clientCount(),
                timeout.toSeconds());
        for (ClientSession s : sessions) {
            s.loop().execute(s::shutdown);
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!sessions.isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        if (!sessions.isEmpty()) {
            log.warn(
                    "shutdown_timeout reached with {} clients still in a transaction; closing them",
                    sessions.size());
        }
        close();
    }

    private void closeListeners() {
        for (Channel l : new Channel[] {writeListener, readListener}) {
            if (l != null) {
                l.close().awaitUninterruptibly();
            }
        }
    }

    @Override
    public synchronized void close() {
        shuttingDown = true;
        if (transport == null) {
            return;
        }
        if (poolJanitor != null) {
            poolJanitor.cancel(false);
            sessionJanitor.cancel(false);
            statsJanitor.cancel(false);
        }
        if (health != null) {
            health.close();
        }
        if (topologySource != null) {
            topologySource.close();
        }
        metrics.close();
        closeListeners();
        pools.close("pgrelay is stopping");
        transport.group().shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly();
        transport = null;
        log.info("pgrelay stopped");
    }

    // ------------------------------------------------------------------ holding, PAUSE, KILL...

    /**
     * Why a client of {@code database} must wait before it may get a server connection, or null.
     */
    String holdReason(String database) {
        if (pausedAll || (database != null && pausedDatabases.contains(database))) {
            return "database \"" + database + "\" is paused (PAUSE)";
        }
        return null;
    }

    PatroniRouter patroni() {
        return patroni;
    }

    /**
     * Why writes have nowhere to go right now (Patroni routing), for the error a held client
     * finally gets.
     */
    String noPrimaryReason() {
        if (patroni == null) {
            return "no primary";
        }
        Topology t = patroni.topology();
        String etcd =
                t.sourceConnected() ? "" : " (etcd unreachable, using the last known topology)";
        if (t.switchoverPending()) {
            return "switchover in progress" + etcd;
        }
        if (t.leader() == null) {
            return "the cluster has no leader" + etcd;
        }
        return "leader " + t.leader() + " is not confirmed writable" + etcd;
    }

    /**
     * The router's answer changed: wake held clients, retire pools whose backend no longer serves
     * their role (idle connections close now, busy ones when released), count leader changes.
     */
    private void onRoutingChange() {
        Backend primary = router.route(Role.PRIMARY).orElse(null);
        if (primary != null && !primary.equals(lastPrimary)) {
            if (lastPrimary != null) {
                metrics.leaderChanged();
            }
            log.info("writes now go to {}", primary);
            lastPrimary = primary;
        }
        for (ServerPool p : pools.all()) {
            if (!router.stillServes(p.key().backend(), p.role())) {
                p.pool().retire(p.key().backend() + " no longer serves " + p.role().label());
            }
        }
        wakeHeld();
    }

    double eligibleReplicaCount() {
        return patroni != null ? patroni.replicas().size() : config.replicas().size();
    }

    double replicaLagBytes(String member) {
        Topology t = patroni.topology();
        Member m = t.members().get(member);
        if (m == null) {
            return Double.NaN;
        }
        long lag = member.equals(t.leader()) ? 0 : t.lagBytes(m);
        return lag == Long.MAX_VALUE ? Double.NaN : lag;
    }

    /**
     * Connecting to {@code backend} failed: if it was the confirmed leader, writes wait for a new
     * confirmation.
     */
    void reportUnavailable(Backend backend) {
        if (patroni != null) {
            patroni.confirmWritable(backend, false);
        }
    }

    /** A server connection reported in_hot_standby (at login, or when it changed: promotion). */
    void reportHotStandby(Backend backend, String value) {
        if (patroni != null && value != null) {
            patroni.confirmWritable(backend, value.equals("off"));
        }
    }

    boolean isPaused(String database) {
        return database == null ? pausedAll : pausedAll || pausedDatabases.contains(database);
    }

    boolean isDisabled(String database) {
        return disabledDatabases.contains(database);
    }

    void setDisabled(String database, boolean disabled) {
        if (disabled) {
            disabledDatabases.add(database);
        } else {
            disabledDatabases.remove(database);
        }
    }

    void hold(ClientSession session) {
        heldSessions.add(session);
    }

    void unhold(ClientSession session) {
        heldSessions.remove(session);
    }

    /** Lets held clients try again (each on its own loop); they hold again if still not allowed. */
    void wakeHeld() {
        for (ClientSession s : heldSessions) {
            s.loop().execute(s::retryHeld);
        }
    }

    private boolean matches(ServerPool p, String database) {
        return database == null || p.key().database().equals(database);
    }

    /**
     * PAUSE: new transactions wait; completes once no server connection of the database is in use.
     * A RESUME (or another PAUSE) before that completes it too, so a PAUSE racing a RESUME never
     * hangs (pgbouncer#715).
     */
    CompletableFuture<String> pause(String database) {
        if (database == null) {
            pausedAll = true;
        } else {
            pausedDatabases.add(database);
        }
        CompletableFuture<String> done = new CompletableFuture<>();
        Runnable[] check = new Runnable[1];
        check[0] =
                () -> {
                    boolean stillPaused =
                            database == null
                                    ? pausedAll
                                    : pausedDatabases.contains(database) || pausedAll;
                    int active = 0;
                    for (ServerPool p : pools.all()) {
                        if (matches(p, database)) {
                            active += p.pool().stats().active();
                        }
                    }
                    if (!stillPaused) {
                        done.complete("resumed before all server connections were released");
                    } else if (active == 0) {
                        done.complete(null);
                    }
                    if (done.isDone()) {
                        janitorChecks.remove(check[0]);
                    }
                };
        janitorChecks.add(check[0]);
        check[0].run();
        return done;
    }

    CompletableFuture<String> resume(String database) {
        if (database == null) {
            pausedAll = false;
            pausedDatabases.clear();
        } else if (!pausedDatabases.remove(database) && !pausedAll) {
            return CompletableFuture.completedFuture("database \"" + database + "\" is not paused");
        }
        wakeHeld();
        return CompletableFuture.completedFuture(null);
    }

    /**
     * RECONNECT: every server connection of the database is closed, idle ones now, the others when
     * released.
     */
    void reconnect(String database) {
        for (ServerPool p : pools.all()) {
            if (matches(p, database)) {
                p.pool().retire("RECONNECT");
            }
        }
    }

    /** KILL: drop the database's clients and server connections; new clients wait until RESUME. */
    void kill(String database) {
        if (database == null) {
            pausedAll = true;
        } else {
            pausedDatabases.add(database);
        }
        for (ClientSession s : sessions) {
            if (!s.isConsole() && (database == null || database.equals(s.database()))) {
                s.disconnect(
                        io.pgrelay.protocol.SqlState.ADMIN_SHUTDOWN,
                        "database \"" + s.database() + "\" was killed (KILL)");
            }
        }
        for (ServerPool p : pools.all()) {
            if (matches(p, database)) {
                p.pool().retire("KILL");
                for (ServerConnection c : p.connections) {
                    c.close("KILL");
                }
            }
        }
    }

    boolean killClient(long id) {
        for (ClientSession s : sessions) {
            if (s.id == id) {
                s.disconnect(
                        io.pgrelay.protocol.SqlState.ADMIN_SHUTDOWN, "client killed (KILL_CLIENT)");
                return true;
            }
        }
        return false;
    }

    /** WAIT_CLOSE: completes when every server connection of the database open now has closed. */
    CompletableFuture<String> waitClose(String database) {
        Set<ServerConnection> open = ConcurrentHashMap.newKeySet();
        for (ServerPool p : pools.all()) {
            if (matches(p, database)) {
                open.addAll(p.connections);
            }
        }
        CompletableFuture<String> done = new CompletableFuture<>();
        Runnable[] check = new Runnable[1];
        check[0] =
                () -> {
                    open.removeIf(c -> !c.channel().isOpen());
                    if (open.isEmpty()) {
                        done.complete(null);
                        janitorChecks.remove(check[0]);
                    }
                };
        janitorChecks.add(check[0]);
        check[0].run();
        return done;
    }

    void shutdownInBackground(boolean immediate) {
        Thread t =
                new Thread(
                        () -> {
                            try {
                                if (immediate) {
                                    close();
                                } else {
                                    shutdown(config.shutdownTimeout());
                                }
                            } catch (InterruptedException e) {
                                Thread.currentThread().interrupt();
                            }
                        },
                        "pgrelay-shutdown");
        t.setDaemon(true);
        t.start();
    }

    // ------------------------------------------------------------------ reload

    /**
     * RELOAD / SIGHUP: re-reads the config file and the auth file. Returns an error message or
     * null.
     */
    public String reload() {
        ProxyConfig next;
        try {
            next = ProxyConfig.load(configFile);
        } catch (RuntimeException e) {
            log.warn("reload rejected, keeping the running configuration: {}", e.getMessage());
            return "reload rejected: " + e.getMessage();
        }
        return apply(next, "reload");
    }

    /** SET key = value from the console: as if the file said so. */
    String set(String key, String value) {
        String path = key.startsWith("pgrelay.") ? key.substring(8) : key;
        if (!config.settings().containsKey(path)) {
            // PgBouncer names without the section: find the one setting that ends with it.
            List<String> candidates =
                    config.settings().keySet().stream().filter(k -> k.endsWith("." + key)).toList();
            if (candidates.size() != 1) {
                return "unknown setting: " + key;
            }
            path = candidates.get(0);
        }
        final String settingPath = path;
        if (RELOADABLE.stream().noneMatch(settingPath::startsWith)) {
            return "setting " + settingPath + " cannot be changed while running (restart pgrelay)";
        }
        ProxyConfig next;
        try {
            com.typesafe.config.Config override =
                    com.typesafe.config.ConfigFactory.parseString(
                            "pgrelay."
                                    + settingPath
                                    + " = "
                                    + com.typesafe.config.ConfigUtil.quoteString(value));
            com.typesafe.config.Config merged = override.withFallback(currentAsConfig()).resolve();
            next = ProxyConfig.from(merged.getConfig("pgrelay"));
        } catch (RuntimeException e) {
            return "invalid value for " + settingPath + ": " + e.getMessage();
        }
        return apply(next, "SET " + settingPath);
    }

    private com.typesafe.config.Config currentAsConfig() {
        java.util.Map<String, Object> m = new java.util.HashMap<>();
        com.typesafe.config.Config defaults = ProxyConfig.defaults().resolve();
        config.settings()
                .forEach(
                        (k, v) -> {
                            com.typesafe.config.ConfigValue d =
                                    defaults.hasPath("pgrelay." + k)
                                            ? defaults.getValue("pgrelay." + k)
                                            : null;
                            if (d != null
                                    && d.valueType() == com.typesafe.config.ConfigValueType.LIST) {
                                m.put(
                                        "pgrelay." + k,
                                        v.isEmpty() ? List.of() : List.of(v.split(",")));
                            } else {
                                m.put("pgrelay." + k, v);
                            }
                        });
        return com.typesafe.config.ConfigFactory.parseMap(m).withFallback(defaults);
    }

    private synchronized String apply(ProxyConfig next, String why) {
        ProxyConfig old = config;
        io.pgrelay.auth.UserList users;
        try {
            users = io.pgrelay.auth.UserList.load(next.authFile());
        } catch (IOException | RuntimeException e) {
            log.warn("{} rejected: auth_file {}: {}", why, next.authFile(), e.getMessage());
            return why + " rejected: auth_file " + next.authFile() + ": " + e.getMessage();
        }
        List<String> needRestart = new java.util.ArrayList<>();
        old.settings()
                .forEach(
                        (k, v) -> {
                            if (!v.equals(next.settings().get(k))
                                    && RELOADABLE.stream().noneMatch(k::startsWith)) {
                                needRestart.add(k);
                            }
                        });
        credentials.replace(users);
        config = next;
        if (patroni != null) {
            patroni.reconfigure(next.maxReplicaLagBytes(), next.readFallbackToPrimary());
        }
        if (!next.poolSettings().equals(old.poolSettings())) {
            for (ServerPool p : pools.all()) {
                p.pool().updateSettings(next.poolSettings());
            }
        }
        List<String> changed = new java.util.ArrayList<>();
        next.settings()
                .forEach(
                        (k, v) -> {
                            if (!v.equals(old.settings().get(k)) && !needRestart.contains(k)) {
                                changed.add(k + "=" + v);
                            }
                        });
        log.info(
                "{}: applied {}{}",
                why,
                changed.isEmpty() ? "no changes" : changed,
                needRestart.isEmpty() ? "" : "; need a restart to take effect: " + needRestart);
        return null;
    }

    // ------------------------------------------------------------------ health, status page,
    // topology

    private Health readiness() {
        if (shuttingDown) {
            return Health.shuttingDown();
        }
        List<String> unmet = new java.util.ArrayList<>();
        if (writeListener == null || !writeListener.isActive()) {
            unmet.add("write port not listening");
        }
        if (router.route(Role.PRIMARY).isEmpty()) {
            unmet.add("no writable primary: " + noPrimaryReason());
        }
        return Health.readiness(unmet);
    }

    List<AdminView.TopologyRow> topologyRows() {
        List<AdminView.TopologyRow> rows = new java.util.ArrayList<>();
        if (patroni != null) {
            Topology t = patroni.topology();
            List<Backend> eligible = patroni.replicas();
            for (Member m : t.members().values()) {
                boolean leader = m.name().equals(t.leader());
                rows.add(
                        new AdminView.TopologyRow(
                                m.name(),
                                m.backend().host(),
                                m.backend().port(),
                                m.role(),
                                m.state(),
                                leader ? 0L : t.lagBytes(m),
                                eligible.contains(m.backend()),
                                leader,
                                "etcd "
                                        + config.patroniScope()
                                        + (t.switchoverPending() ? " (switchover pending)" : ""),
                                t.sourceConnected(),
                                t.lastChange()));
            }
            rows.sort((a, b) -> a.member().compareTo(b.member()));
            return rows;
        }
        rows.add(
                new AdminView.TopologyRow(
                        "primary",
                        config.primary().host(),
                        config.primary().port(),
                        "primary",
                        "configured",
                        null,
                        config.replicas().isEmpty(),
                        true,
                        "static",
                        true,
                        null));
        int i = 0;
        for (Backend r : config.replicas()) {
            rows.add(
                    new AdminView.TopologyRow(
                            "replica" + (++i),
                            r.host(),
                            r.port(),
                            "replica",
                            "configured",
                            null,
                            true,
                            false,
                            "static",
                            true,
                            null));
        }
        return rows;
    }

    private List<StatusPage.Section> statusPage() {
        List<List<String>> topology = new java.util.ArrayList<>();
        for (AdminView.TopologyRow t : topologyRows()) {
            topology.add(
                    List.of(
                            t.member(),
                            t.host() + ":" + t.port(),
                            t.role(),
                            t.state(),
                            t.lagBytes() == null ? "" : String.valueOf(t.lagBytes()),
                            t.readEligible() ? "yes" : "no",
                            t.leader() ? "leader" : "",
                            t.source()));
        }
        List<List<String>> poolRows = new java.util.ArrayList<>();
        for (AdminView.PoolRow p : console.pools()) {
            poolRows.add(
                    List.of(
                            p.database(),
                            p.user(),
                            p.role(),
                            p.backend(),
                            String.valueOf(p.clActive()),
                            String.valueOf(p.clWaiting()),
                            String.valueOf(p.svActive()),
                            String.valueOf(p.svIdle()),
                            String.valueOf(p.svLogin()),
                            String.format("%.3f", p.maxWaitMicros() / 1e6)));
        }
        List<List<String>> statRows = new java.util.ArrayList<>();
        for (AdminView.StatsRow s : console.stats()) {
            statRows.add(
                    List.of(
                            s.database(),
                            String.valueOf(s.total().xactCount()),
                            String.valueOf(s.total().queryCount()),
                            String.valueOf(s.average().xactCount()),
                            String.valueOf(s.average().queryCount()),
                            String.valueOf(s.average().xactTime()),
                            String.valueOf(s.average().waitTime())));
        }
        return List.of(
                new StatusPage.Section(
                        "Topology",
                        List.of(
                                "member",
                                "address",
                                "role",
                                "state",
                                "lag bytes",
                                "reads",
                                "leader",
                                "source"),
                        topology),
                new StatusPage.Section(
                        "Pools",
                        List.of(
                                "database",
                                "user",
                                "role",
                                "backend",
                                "cl_active",
                                "cl_waiting",
                                "sv_active",
                                "sv_idle",
                                "sv_login",
                                "maxwait s"),
                        poolRows),
                new StatusPage.Section(
                        "Rates (last " + STATS_PERIOD_SECONDS + " s)",
                        List.of(
                                "database",
                                "xacts",
                                "queries",
                                "xacts/s",
                                "queries/s",
                                "avg xact µs",
                                "avg wait µs"),
                        statRows),
                new StatusPage.Section(
                        "Clients",
                        List.of("active", "waiting", "login", "max_client_conn"),
                        List.of(
                                List.of(
                                        String.valueOf((int) countClients("active")),
                                        String.valueOf((int) countClients("waiting")),
                                        String.valueOf((int) countClients("login")),
                                        String.valueOf(config.maxClientConn())))));
    }
}
