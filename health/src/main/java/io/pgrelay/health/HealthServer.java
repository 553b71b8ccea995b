package io.pgrelay.health;

import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.HttpDecoderConfig;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The proxy's HTTP face for operators and orchestrators, on Netty:
 *
 * <ul>
 *   <li>{@code GET /metrics}: Prometheus text (or OpenMetrics when the scraper asks for it);
 *   <li>{@code GET /health}: liveness, 200 or 503 from the liveness check;
 *   <li>{@code GET /ready}: readiness, 200 or 503 with reasons; {@code SHUTTING_DOWN} after {@link
 *       #beginShutdown()} so load balancers stop sending before listeners close;
 *   <li>{@code GET /} and {@code /status}: the HTML stats page.
 * </ul>
 *
 * {@code HEAD} works on every path, other methods get 405, unknown paths 404.
 *
 * <p>No client can hold the endpoint up for the others, since an orchestrator restarts pgrelay when
 * its liveness probe times out: connections are served on event loops rather than a few blocking
 * threads, each must send its request in time ({@link HttpLimits}), requests are small, connections
 * are capped, and the slow answers (scrape, status page) run on one render thread with a bounded
 * queue. /health and /ready are answered on the event loop, so their checks must only read state
 * the proxy already keeps.
 */
public final class HealthServer implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(HealthServer.class);

    static final String PROMETHEUS_TEXT = Endpoints.PROMETHEUS_TEXT;
    static final String OPENMETRICS_TEXT = Endpoints.OPENMETRICS_TEXT;

    private final Endpoints endpoints;
    private final HttpLimits limits;
    private final ConnectionCap cap;
    private final ThreadPoolExecutor renderThread;

    /** The loops this server made for itself, or null when it runs on the caller's. */
    private final EventLoopGroup ownLoops;

    private final Set<Channel> connections = ConcurrentHashMap.newKeySet();
    private final AtomicBoolean closed = new AtomicBoolean();
    private volatile Channel listener;

    private HealthServer(Endpoints endpoints, HttpLimits limits, EventLoopGroup ownLoops) {
        this.endpoints = endpoints;
        this.limits = limits;
        this.cap = new ConnectionCap(limits.maxConnections());
        this.ownLoops = ownLoops;
        // One thread: scrapes are rare (every few seconds per scraper) and need no parallelism;
        // the bounded queue turns a flood of them into quick 503s instead of memory.
        this.renderThread =
                new ThreadPoolExecutor(
                        1,
                        1,
                        0,
                        TimeUnit.MILLISECONDS,
                        new ArrayBlockingQueue<>(limits.maxPendingRenders()),
                        new DefaultThreadFactory("pgrelay-http-render", true));
    }

    /**
     * Binds {@code host:port} (port 0 picks a free one, see {@link #port()}) and starts serving on
     * an event loop of its own, with {@link HttpLimits#DEFAULTS}.
     *
     * @throws IOException when the address cannot be bound
     */
    public static HealthServer start(
            String host,
            int port,
            PrometheusMeterRegistry registry,
            Supplier<Health> liveness,
            Supplier<Health> readiness,
            Supplier<List<StatusPage.Section>> status)
            throws IOException {
        return start(host, port, registry, liveness, readiness, status, HttpLimits.DEFAULTS);
    }

    /**
     * As {@link #start(String, int, PrometheusMeterRegistry, Supplier, Supplier, Supplier)}, with
     * other limits.
     */
    public static HealthServer start(
            String host,
            int port,
            PrometheusMeterRegistry registry,
            Supplier<Health> liveness,
            Supplier<Health> readiness,
            Supplier<List<StatusPage.Section>> status,
            HttpLimits limits)
            throws IOException {
        Endpoints endpoints = new Endpoints(registry, liveness, readiness, status);
        EventLoopGroup loop =
                new MultiThreadIoEventLoopGroup(
                        1,
                        new DefaultThreadFactory("pgrelay-http", true),
                        NioIoHandler.newFactory());
        return bind(
                new HealthServer(endpoints, limits, loop),
                loop,
                NioServerSocketChannel.class,
                host,
                port);
    }

    /**
     * Serves on the caller's event loops (pgrelay's own, so the HTTP face costs no threads but the
     * render thread). {@link #close()} closes this server's channels and leaves {@code group}
     * running.
     *
     * @param channelClass the server channel type that fits {@code group} (NIO, epoll, io_uring)
     * @throws IOException when the address cannot be bound
     */
    public static HealthServer start(
            String host,
            int port,
            PrometheusMeterRegistry registry,
            Supplier<Health> liveness,
            Supplier<Health> readiness,
            Supplier<List<StatusPage.Section>> status,
            HttpLimits limits,
            EventLoopGroup group,
            Class<? extends ServerChannel> channelClass)
            throws IOException {
        Objects.requireNonNull(group, "group");
        Objects.requireNonNull(channelClass, "channelClass");
        Endpoints endpoints = new Endpoints(registry, liveness, readiness, status);
        return bind(new HealthServer(endpoints, limits, null), group, channelClass, host, port);
    }

    private static HealthServer bind(
            HealthServer server,
            EventLoopGroup group,
            Class<? extends ServerChannel> channelClass,
            String host,
            int port)
            throws IOException {
        try {
            if (port < 0 || port > 65535) {
                throw new IllegalArgumentException(
                        "health port: " + port + " (expected: 0..65535)");
            }
            ServerBootstrap bootstrap =
                    new ServerBootstrap()
                            .group(group)
                            .channel(channelClass)
                            .option(ChannelOption.SO_REUSEADDR, true)
                            .childOption(ChannelOption.TCP_NODELAY, true)
                            .childHandler(server.new Initializer());
            server.listener = bootstrap.bind(host, port).syncUninterruptibly().channel();
        } catch (Exception e) {
            server.close();
            // Netty rethrows the bind's IOException (BindException) undeclared; callers expect it
            // declared.
            if (e instanceof IOException io) {
                throw io;
            }
            if (e instanceof RuntimeException re) {
                throw re;
            }
            throw new IOException(e);
        }
        log.info("health endpoint listening on http://{}:{}", host, server.port());
        return server;
    }

    /** Sets up each accepted connection, or closes it at once when the cap is reached. */
    private final class Initializer extends ChannelInitializer<Channel> {

        @Override
        protected void initChannel(Channel ch) {
            if (closed.get() || !cap.tryOpen()) {
                ch.close();
                return;
            }
            connections.add(ch);
            ch.closeFuture()
                    .addListener(
                            f -> {
                                connections.remove(ch);
                                cap.closed();
                            });
            ConnectionDeadlines deadlines = new ConnectionDeadlines(limits);
            HttpDecoderConfig decoding =
                    new HttpDecoderConfig()
                            .setMaxInitialLineLength(HttpLimits.MAX_INITIAL_LINE)
                            .setMaxHeaderSize(HttpLimits.MAX_HEADERS);
            ch.pipeline()
                    .addLast("deadlines", deadlines)
                    .addLast("http", new HttpServerCodec(decoding))
                    .addLast("aggregate", new RequestAggregator())
                    .addLast(
                            "endpoints",
                            new HttpConnection(
                                    endpoints,
                                    renderThread,
                                    limits.maxPendingRenders(),
                                    deadlines));
        }
    }

    public int port() {
        return address().getPort();
    }

    public InetSocketAddress address() {
        return (InetSocketAddress) listener.localAddress();
    }

    /** Connections open now (for tests). */
    int openConnections() {
        return cap.open();
    }

    /**
     * Scrapes and status pages waiting for the render thread, not counting the one it is on (for
     * tests).
     */
    int pendingRenders() {
        return renderThread.getQueue().size();
    }

    /** From now on /ready answers 503 SHUTTING_DOWN, whatever the readiness check says. */
    public void beginShutdown() {
        endpoints.beginShutdown();
    }

    /** Stops listening and closes every connection; the port is free when this returns. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        Channel l = listener;
        if (l != null) {
            await(l.close());
        }
        for (Channel c : connections) {
            await(c.close());
        }
        renderThread.shutdownNow();
        if (ownLoops != null) {
            ownLoops.shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly();
        }
    }

    /** Waits unless called on the channel's own loop, where waiting would deadlock. */
    private static void await(ChannelFuture future) {
        if (!future.channel().eventLoop().inEventLoop()) {
            future.awaitUninterruptibly(2, TimeUnit.SECONDS);
        }
    }
}
