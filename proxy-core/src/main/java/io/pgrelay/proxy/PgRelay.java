package io.pgrelay.proxy;

import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.socket.SocketChannel;
import io.pgrelay.auth.UserList;
import io.pgrelay.config.ProxyConfig;
import io.pgrelay.protocol.FrameDecoder;
import io.pgrelay.protocol.StartupMessage;
import io.pgrelay.routing.Backend;
import io.pgrelay.routing.Role;
import io.pgrelay.routing.Router;
import io.pgrelay.routing.StaticRouter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The running proxy: two listeners (write port → primary, read port → replicas), the pools,
 * the router, and the janitor that drives timeouts. Create, {@link #start()}, and
 * {@link #shutdown(Duration)} or {@link #close()}.
 */
public final class PgRelay implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(PgRelay.class);

    private final ProxyConfig config;
    private final Credentials credentials;
    private final Router router;
    private final ServerPools pools = new ServerPools(this);
    private final CancelKeys cancelKeys = new CancelKeys();
    private final PreparedStatements preparedStatements = new PreparedStatements();
    private final Set<ClientSession> sessions = ConcurrentHashMap.newKeySet();
    private final AtomicInteger clientCount = new AtomicInteger();
    private Transport transport;
    private Channel writeListener;
    private Channel readListener;
    private ScheduledFuture<?> poolJanitor;
    private ScheduledFuture<?> sessionJanitor;
    private volatile boolean shuttingDown;

    public PgRelay(ProxyConfig config) {
        this.config = config;
        this.credentials = new Credentials(loadUsers(config));
        this.router = new StaticRouter(config.primary(), config.replicas());
    }

    private static UserList loadUsers(ProxyConfig config) {
        try {
            return UserList.load(config.authFile());
        } catch (IOException e) {
            throw new UncheckedIOException("pgrelay.auth.auth_file: cannot read " + config.authFile().toAbsolutePath()
                    + ": " + e.getMessage(), e);
        }
    }

    public synchronized PgRelay start() throws InterruptedException {
        transport = Transport.create(config.useEpoll(), config.workerThreads());
        log.info("pgrelay starting: {} transport, {} event loops, pool_mode {}, auth_type {}", transport.name(),
                transport.threads(), config.poolMode().name().toLowerCase(),
                config.authType().name().toLowerCase().replace('_', '-'));
        try {
            writeListener = listen(config.writePort(), Role.PRIMARY);
            readListener = listen(config.readPort(), Role.REPLICA);
        } catch (InterruptedException | RuntimeException e) {
            close();
            throw e;
        }
        log.info("backend primary {}", config.primary());
        for (Backend replica : config.replicas()) {
            log.info("backend replica {}", replica);
        }
        if (config.replicas().isEmpty()) {
            log.info("no replicas configured: the read port uses the primary");
        }
        poolJanitor = transport.group().scheduleAtFixedRate(pools::maintain, 100, 100, TimeUnit.MILLISECONDS);
        sessionJanitor = transport.group().scheduleAtFixedRate(this::checkSessions, 1, 1, TimeUnit.SECONDS);
        return this;
    }

    private Channel listen(int port, Role role) throws InterruptedException {
        ServerBootstrap b = new ServerBootstrap()
                .group(transport.group())
                .channel(transport.serverChannelClass())
                .option(ChannelOption.SO_BACKLOG, 4096)
                .option(ChannelOption.SO_REUSEADDR, true)
                .childOption(ChannelOption.TCP_NODELAY, true)
                .childOption(ChannelOption.SO_KEEPALIVE, true)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        ch.pipeline().addLast("frames", FrameDecoder.frontend(config.maxMessageSize()));
                        ch.pipeline().addLast("session", new ClientSession(PgRelay.this, role));
                    }
                });
        Channel ch;
        try {
            ch = b.bind(config.listenHost(), port).sync().channel();
        } catch (Exception e) {
            if (e instanceof InterruptedException ie) {
                throw ie;
            }
            throw new IllegalStateException("pgrelay.listen." + (role == Role.PRIMARY ? "write_port" : "read_port")
                    + ": cannot listen on " + config.listenHost() + ":" + port + ": " + e.getMessage(), e);
        }
        log.info("listening on {} for {} ({})", ch.localAddress(), role == Role.PRIMARY ? "writes" : "reads",
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

    /** Counts a new client; false when that puts it over max_client_conn (it is still counted until it goes). */
    boolean clientConnected(ClientSession session) {
        sessions.add(session);
        return clientCount.incrementAndGet() <= config.maxClientConn() && !shuttingDown;
    }

    void clientDisconnected(ClientSession session) {
        if (sessions.remove(session)) {
            clientCount.decrementAndGet();
        }
    }

    public int clientCount() {
        return clientCount.get();
    }

    private void checkSessions() {
        long now = System.nanoTime();
        for (ClientSession s : sessions) {
            s.loop().execute(() -> s.checkTimeouts(now));
        }
    }

    /** Sends a CancelRequest to a server on a connection of its own, as libpq does. */
    void sendCancel(Backend backend, int processId, int secretKey) {
        new Bootstrap()
                .group(transport.group())
                .channel(transport.channelClass())
                .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) config.serverConnectTimeout().toMillis())
                .handler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                    }
                })
                .connect(backend.host(), backend.port())
                .addListener((ChannelFutureListener) f -> {
                    if (f.isSuccess()) {
                        f.channel().writeAndFlush(StartupMessage.encodeCancelRequest(f.channel().alloc(), processId,
                                secretKey)).addListener(ChannelFutureListener.CLOSE);
                    } else {
                        log.info("cancel request to {} failed: {}", backend, f.cause().toString());
                    }
                });
    }

    /**
     * Graceful stop: no new clients, idle clients disconnected, clients inside a transaction
     * disconnected when it ends, for at most {@code timeout}; then everything closes.
     */
    public void shutdown(Duration timeout) throws InterruptedException {
        shuttingDown = true;
        closeListeners();
        log.info("shutting down: {} clients, waiting up to {} s for transactions in flight", clientCount.get(),
                timeout.toSeconds());
        for (ClientSession s : sessions) {
            s.loop().execute(s::shutdown);
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!sessions.isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        if (!sessions.isEmpty()) {
            log.warn("shutdown_timeout reached with {} clients still in a transaction; closing them", sessions.size());
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
        }
        closeListeners();
        pools.close("pgrelay is stopping");
        transport.group().shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly();
        transport = null;
        log.info("pgrelay stopped");
    }
}
