package io.pgrelay.proxy;

import io.pgrelay.config.ProxyConfig;
import io.pgrelay.health.Health;
import io.pgrelay.health.HealthServer;
import io.pgrelay.health.HttpLimits;
import io.pgrelay.routing.PatroniRouter;
import io.pgrelay.session.PreparedStatements;
import java.io.File;
import java.io.IOException;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The running proxy: two listeners (write port → primary, read port → replicas), the janitors that
 * drive pools, timeouts and stats, and the HTTP server, around the shared {@link RelayServices}.
 * Create, {@link #start()}, and {@link #shutdown(Duration)} or {@link #close()}.
 */
public final class PgRelay implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(PgRelay.class);

    private final RelayServices services;

    private HealthServer health;
    private final ClientListeners listeners;
    private ScheduledFuture<?> poolJanitor;
    private ScheduledFuture<?> sessionJanitor;
    private ScheduledFuture<?> statsJanitor;
    private int heldTicks;

    public PgRelay(ProxyConfig config) {
        this(config, null);
    }

    /** With the file the config came from, so RELOAD and SIGHUP can read it again. */
    public PgRelay(ProxyConfig config, File configFile) {
        this.services = new RelayServices(config, configFile, this::stop);
        this.listeners = new ClientListeners(services);
    }

    public synchronized PgRelay start() throws InterruptedException {
        ProxyConfig config = services.config();
        Transport transport =
                Transport.create(config.useEpoll(), config.useIoUring(), config.workerThreads());
        services.useTransport(transport);
        log.info(
                "pgrelay starting: {} transport ({}), {} event loops, pool_mode {}, auth_type {}",
                transport.name(),
                transport.why(),
                transport.threads(),
                config.poolMode().name().toLowerCase(),
                config.authType().name().toLowerCase().replace('_', '-'));
        TcpOptions.warnIfIgnored(transport, config.tcp());
        try {
            listeners.bind();
        } catch (InterruptedException | RuntimeException e) {
            close();
            throw e;
        }
        services.routing().start(config);
        services.peers().start(listeners.writePort());
        HeldClients held = services.held();
        poolJanitor = every(100, TimeUnit.MILLISECONDS, () -> poolTick(held));
        sessionJanitor = every(1, TimeUnit.SECONDS, services.clients()::checkTimeouts);
        statsJanitor =
                every(
                        AdminConsole.STATS_PERIOD_SECONDS,
                        TimeUnit.SECONDS,
                        services.console()::rollStatsPeriod);
        if (config.httpPort() > 0) {
            startHttp(config, transport);
        }
        return this;
    }

    private ScheduledFuture<?> every(long period, TimeUnit unit, Runnable task) {
        return services.transport().group().scheduleAtFixedRate(task, period, period, unit);
    }

    private void poolTick(HeldClients held) {
        services.pools().maintain();
        services.actions().runPendingChecks();
        // Safety net for held clients: a promotion is normally seen at once (ParameterStatus
        // in_hot_standby on a pooled connection), but an unconfirmed leader is re-probed too.
        if (held.anyHeld() && ++heldTicks % 2 == 0) {
            held.wake();
        }
    }

    private void startHttp(ProxyConfig config, Transport transport) {
        ProxyStatus status = services.status();
        try {
            // On pgrelay's own loops: no extra threads but the render thread, and /health then
            // also says the loops are turning.
            health =
                    HealthServer.start(
                            config.httpHost(),
                            config.httpPort(),
                            services.metrics().registry(),
                            Health::up,
                            () -> status.readiness(listeners.writePortListening()),
                            status::statusPage,
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
        log.info("HTTP on {}:{} (/metrics, /health, /ready, /)", config.httpHost(), health.port());
    }

    public int writePort() {
        return listeners.writePort();
    }

    public int readPort() {
        return listeners.readPort();
    }

    /** The HTTP port actually bound, or 0 when HTTP is off. */
    public int httpPort() {
        return health == null ? 0 : health.port();
    }

    /** Bytes reserved by large messages being received (limits.max_buffered_message_bytes). */
    public long bufferedMessageBytes() {
        return services.bufferedMessageBytes();
    }

    /** Logged-in clients (those still logging in are not counted: see ClientSlots). */
    public int clientCount() {
        return services.clients().loggedInCount();
    }

    /**
     * RELOAD / SIGHUP: re-reads the config file and the auth file. Returns an error message or
     * null.
     */
    public String reload() {
        return services.reloader().reload();
    }

    // For the tests in this package.

    ProxyConfig config() {
        return services.config();
    }

    String set(String key, String value) {
        return services.reloader().set(key, value);
    }

    ServerPools pools() {
        return services.pools();
    }

    ProxyMetrics metrics() {
        return services.metrics();
    }

    Transport transport() {
        return services.transport();
    }

    PatroniRouter patroni() {
        return services.patroni();
    }

    PreparedStatements preparedStatements() {
        return services.preparedStatements();
    }

    Set<ClientSession> sessions() {
        return services.sessions();
    }

    Peers peers() {
        return services.peers();
    }

    // ------------------------------------------------------------------ stopping

    /**
     * Graceful stop, bounded by {@code timeout}: /ready turns 503 and the listeners close at once.
     * For the first three quarters of the time connected clients are served as usual, and each is
     * closed once it has been between transactions for a second; an application pool whose
     * connections live shorter than that retires them all without an error. In the last quarter
     * idle clients are closed at once and the others when their transaction ends; at {@code
     * timeout} whatever is left is closed.
     */
    public void shutdown(Duration timeout) throws InterruptedException {
        services.beginShutdown();
        if (health != null) {
            health.beginShutdown();
        }
        listeners.close();
        Set<ClientSession> sessions = services.sessions();
        log.info(
                "shutting down: {} clients; serving them until they leave or have been idle for a"
                        + " second, for up to {} s",
                clientCount(),
                timeout.toSeconds());
        for (ClientSession s : sessions) {
            s.loop().execute(s::drain);
        }
        long start = System.nanoTime();
        long lastQuarter = start + timeout.toNanos() / 4 * 3;
        long deadline = start + timeout.toNanos();
        boolean closing = false;
        while (!sessions.isEmpty() && System.nanoTime() < deadline) {
            if (!closing && System.nanoTime() >= lastQuarter) {
                closing = true;
                log.info(
                        "shutting down: {} clients still connected; closing each as its transaction"
                                + " ends",
                        sessions.size());
                for (ClientSession s : sessions) {
                    s.loop().execute(s::closeAfterTransaction);
                }
            }
            Thread.sleep(50);
        }
        if (!sessions.isEmpty()) {
            log.warn(
                    "shutdown_timeout reached with {} clients still in a transaction; closing them",
                    sessions.size());
        } else {
            log.info(
                    "shutting down: every client left after {} ms",
                    TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
        }
        close();
    }

    @Override
    public synchronized void close() {
        services.beginShutdown();
        Transport transport = services.transport();
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
        services.peers().close();
        services.routing().close();
        services.metrics().close();
        listeners.close();
        services.pools().close("pgrelay is stopping");
        transport.group().shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly();
        services.useTransport(null);
        log.info("pgrelay stopped");
    }

    /** SHUTDOWN from the console. */
    private void stop(boolean immediate) throws InterruptedException {
        if (immediate) {
            close();
        } else {
            shutdown(services.config().shutdownTimeout());
        }
    }
}
