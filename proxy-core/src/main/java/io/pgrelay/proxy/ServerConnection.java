package io.pgrelay.proxy;

import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoop;
import io.pgrelay.pool.Poolable;
import io.pgrelay.protocol.ErrorResponse;
import io.pgrelay.protocol.FrameDecoder;
import io.pgrelay.protocol.LogSafe;
import io.pgrelay.protocol.MessageFields;
import io.pgrelay.protocol.Messages;
import io.pgrelay.protocol.StartupMessage;
import io.pgrelay.routing.Backend;
import io.pgrelay.session.ServerStatements;
import io.pgrelay.session.SessionParameters;
import io.pgrelay.session.StatementMapper;
import io.pgrelay.tls.TlsContexts;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One connection from pgrelay to a PostgreSQL server: connect, log in, then relay frames to
 * whichever {@link ClientSession} holds it.
 *
 * <p>Threads: the channel lives on one event loop; the client holding it may live on another.
 * Frames for a client on another loop are collected during one read and handed over in one task at
 * read-complete, so a busy cross-loop relay costs one task per read, not per message. Everything
 * the client decides (release, parameter sync) runs on the client's loop; this class only forwards.
 * The pool's lock gives the happens-before edge when a connection changes hands.
 *
 * <p>While idle in the pool the connection may still hear from the server (a ParameterStatus such
 * as in_hot_standby on promotion, a FATAL before an administrator's shutdown); those are handled
 * here and a closed connection removes itself from the pool.
 */
final class ServerConnection extends ChannelInboundHandlerAdapter
        implements Poolable, StatementMapper.Server {

    private static final Logger log = LoggerFactory.getLogger(ServerConnection.class);

    private final SessionServices relay;
    private final ServerPool pool;
    private final ServerAuthentication authentication;
    private final CompletableFuture<ServerConnection> loggedIn = new CompletableFuture<>();

    /**
     * Server-side values of session parameters, as reported: at login and by ParameterStatus, seen
     * here while idle or by the linked client while it holds the connection.
     */
    private final Map<String, String> parameters = new ConcurrentHashMap<>();

    /** ParameterStatus values reported at login, in order, for the pool's welcome. */
    final Map<String, String> loginParameters = new LinkedHashMap<>();

    /** Transaction mode's shared statements prepared here; changed by the linked client. */
    private final ServerStatements statements = new ServerStatements();

    /**
     * The interned client parameter set this connection was last made to match, or null when its
     * parameters changed some other way since. Set by the linked client, on its loop.
     */
    private volatile Map<String, String> syncedTo;

    /**
     * One text value that changes whenever what PostgreSQL gives a new session for this database
     * and user may have changed: the database's and role's settings (ALTER DATABASE / ROLE ... SET,
     * in pg_db_role_setting, readable by every user), the configuration's load time
     * (postgresql.conf, ALTER SYSTEM, after a reload; per session, so a connection older than a
     * reload differs and costs one login), the database itself (re-created: another oid, encoding),
     * is_superuser and in_hot_standby. The load time as a numeric epoch, so that neither the
     * session's TimeZone nor its extra_float_digits changes the text; every name qualified, so that
     * a search_path a client left on the connection cannot change what it reads.
     */
    static final String FINGERPRINT =
            "SELECT pg_catalog.concat_ws('|',"
                    + " EXTRACT(epoch FROM pg_catalog.pg_conf_load_time()),"
                    + " d.oid, d.encoding, r.rolsuper, pg_catalog.pg_is_in_recovery(),"
                    + " (SELECT pg_catalog.string_agg(pg_catalog.concat_ws(':', s.setdatabase,"
                    + " s.setrole, pg_catalog.array_to_string(s.setconfig, ',')), ';'"
                    + " ORDER BY s.setdatabase, s.setrole)"
                    + " FROM pg_catalog.pg_db_role_setting s"
                    + " WHERE (s.setdatabase OPERATOR(pg_catalog.=) 0"
                    + " OR s.setdatabase OPERATOR(pg_catalog.=) d.oid)"
                    + " AND (s.setrole OPERATOR(pg_catalog.=) 0"
                    + " OR s.setrole OPERATOR(pg_catalog.=) r.oid)))"
                    + " FROM pg_catalog.pg_database d, pg_catalog.pg_roles r"
                    + " WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()"
                    + " AND r.rolname OPERATOR(pg_catalog.=) session_user";

    private static final AtomicLong IDS = new AtomicLong();

    final long id = IDS.incrementAndGet();
    volatile Instant connectedAt;
    volatile long lastUsedNanos = System.nanoTime();
    private Channel channel;
    private volatile ClientSession client;
    private volatile boolean broken;
    // Why pgrelay closed it (null: it did not), for the error its client gets.
    private volatile String closeReason;
    private volatile boolean resetting;

    /**
     * What a new session's defaults depend on, read right after login (see {@link #FINGERPRINT});
     * null when it could not be read.
     */
    private volatile String loginFingerprint;

    /** pgrelay's own query running while no client holds the connection. */
    private OwnQuery ownQuery;

    private int processId;
    private int secretKey;

    // Cross-loop batch, touched only on this connection's loop.
    private List<ByteBuf> batch;
    private ClientSession batchFor;

    private ServerConnection(SessionServices relay, ServerPool pool) {
        this.relay = relay;
        this.pool = pool;
        this.authentication =
                new ServerAuthentication(
                        relay.credentials(), pool.key().user(), pool.key().backend());
        // Logged in with these; the ones the server does not report keep these values.
        parameters.putAll(pool.key().parameters());
    }

    /** Opens and logs in a server connection for {@code pool}, on {@code loop} when given. */
    static CompletableFuture<ServerConnection> open(
            SessionServices relay, ServerPool pool, Object affinity) {
        ServerConnection conn = new ServerConnection(relay, pool);
        EventLoop loop = affinity instanceof EventLoop l ? l : relay.transport().group().next();
        Backend backend = pool.key().backend();
        long timeoutMillis = relay.config().serverConnectTimeout().toMillis();
        TlsContexts tls = relay.tls();
        Bootstrap bootstrap =
                relay.transport()
                        .serverBootstrap(loop, timeoutMillis, relay.config().tcp().forServers())
                        .handler(
                                new ChannelInitializer<Channel>() {
                                    @Override
                                    protected void initChannel(Channel ch) {
                                        if (tls.connectsWithTls()) {
                                            ch.pipeline()
                                                    .addLast(
                                                            "tls-request",
                                                            new ServerTlsRequest(
                                                                    tls,
                                                                    backend,
                                                                    conn::sendStartup,
                                                                    conn::failLogin));
                                        }
                                        ch.pipeline()
                                                .addLast(
                                                        "frames",
                                                        FrameDecoder.backendRuns(
                                                                Integer.MAX_VALUE));
                                        ch.pipeline().addLast("server", conn);
                                    }
                                });
        bootstrap
                .connect(backend.host(), backend.port())
                .addListener(
                        (ChannelFutureListener)
                                f -> {
                                    if (!f.isSuccess()) {
                                        conn.loggedIn.completeExceptionally(
                                                ServerLoginException.unreachable(
                                                        "could not connect to server "
                                                                + backend
                                                                + ": "
                                                                + describe(f.cause())));
                                        return;
                                    }
                                    conn.channel = f.channel();
                                    // server_connect_timeout covers the login too: a server that
                                    // accepts and then stalls
                                    // must not hold a pool slot forever.
                                    conn.channel
                                            .eventLoop()
                                            .schedule(
                                                    () -> {
                                                        if (!conn.loggedIn.isDone()) {
                                                            conn.failLogin(
                                                                    ServerLoginException
                                                                            .unreachable(
                                                                                    "login to server "
                                                                                            + backend
                                                                                            + " timed out after "
                                                                                            + timeoutMillis
                                                                                            + " ms (server_connect_timeout)"));
                                                        }
                                                    },
                                                    timeoutMillis,
                                                    TimeUnit.MILLISECONDS);
                                    if (tls.connectsWithTls()) {
                                        conn.send(StartupMessage.sslRequest(conn.channel.alloc()));
                                    } else {
                                        conn.sendStartup();
                                    }
                                });
        return conn.loggedIn;
    }

    private void sendStartup() {
        Map<String, String> startup = new LinkedHashMap<>();
        startup.put("user", pool.key().user());
        startup.put("database", pool.key().database());
        // Session mode: the client's own startup parameters, so its RESET lands on its values
        // (PoolKey).
        startup.putAll(pool.key().parameters());
        send(StartupMessage.encode(channel.alloc(), startup));
    }

    private static String describe(Throwable t) {
        String m = t.getMessage();
        return m == null ? t.getClass().getSimpleName() : m;
    }

    Backend backend() {
        return pool.key().backend();
    }

    ServerPool pool() {
        return pool;
    }

    int processId() {
        return processId;
    }

    int secretKey() {
        return secretKey;
    }

    Channel channel() {
        return channel;
    }

    /** What a new session's defaults depended on at this connection's login, or null. */
    String loginFingerprint() {
        return loginFingerprint;
    }

    /**
     * Reads {@link #FINGERPRINT} now, on a connection leased to pgrelay itself (no client holds
     * it); completes with null when it cannot be read.
     */
    CompletableFuture<String> fingerprint() {
        return ownQuery(alloc -> Messages.query(alloc, FINGERPRINT))
                .thenApply(OwnQuery.Answer::firstColumn);
    }

    /**
     * Runs pgrelay's own {@code request} (a simple Query, or an extended query ending in Sync) on
     * this connection, leased to pgrelay itself (no client holds it). Completes on the connection's
     * loop, with the server's error (or a connection failure) when it failed.
     */
    CompletableFuture<OwnQuery.Answer> ownQuery(Function<ByteBufAllocator, ByteBuf> request) {
        OwnQuery query = new OwnQuery();
        channel.eventLoop()
                .execute(
                        () -> {
                            if (!isUsable() || client != null || ownQuery != null) {
                                query.lost("server connection to " + backend() + " not usable");
                                return;
                            }
                            ownQuery = query;
                            channel.writeAndFlush(request.apply(channel.alloc()));
                            // Bounded like a login: a server that does not answer (partitioned,
                            // or the query waits on a lock) must not hold up whoever asked.
                            long timeout = relay.config().serverConnectTimeout().toMillis();
                            channel.eventLoop()
                                    .schedule(
                                            () -> {
                                                if (ownQuery == query) {
                                                    ownQuery = null;
                                                    broken = true; // its state is unknown now
                                                    channel.close();
                                                    query.lost(
                                                            "no answer from server "
                                                                    + backend()
                                                                    + " within "
                                                                    + timeout
                                                                    + " ms (server_connect_timeout)");
                                                }
                                            },
                                            timeout,
                                            TimeUnit.MILLISECONDS);
                        });
        return query.answer();
    }

    /** The server's value of a session parameter, as last reported; null when never reported. */
    String parameter(String name) {
        return parameters.get(name);
    }

    /** The server's session parameters as reported (a live view; do not change it). */
    Map<String, String> parameters() {
        return parameters;
    }

    /** A ParameterStatus from the server: its value changed, so no client set is matched now. */
    void reportParameter(String name, String value) {
        parameters.put(name, value);
        syncedTo = null;
    }

    /**
     * The SQL that brings this connection's parameters to a client's (interned) values, or null
     * when nothing differs; from then on the connection counts as matching them. The linked client
     * sends it before its own requests.
     */
    String synchronizeTo(Map<String, String> clientValues) {
        if (syncedTo == clientValues) {
            return null;
        }
        String sql = SessionParameters.synchronize(clientValues, parameters);
        syncedTo = clientValues;
        return sql;
    }

    /**
     * The server listed the settings this session changed ({@code all}), or the current values of
     * some it SET ({@link io.pgrelay.session.SessionCheck}): what the connection knows of its
     * parameters becomes exactly that, over the values it logged in with.
     */
    void settled(Map<String, String> sessionSettings, boolean all) {
        if (all) {
            parameters
                    .keySet()
                    .removeIf(
                            name ->
                                    !loginParameters.containsKey(name)
                                            && !sessionSettings.containsKey(name));
        }
        parameters.putAll(sessionSettings);
        syncedTo = null;
    }

    @Override
    public ServerStatements statements() {
        return statements;
    }

    @Override
    public StatementMapper.Counts counts() {
        return pool;
    }

    @Override
    public Object affinity() {
        return channel.eventLoop();
    }

    @Override
    public boolean isUsable() {
        return !broken && channel.isActive();
    }

    @Override
    public void close(String reason) {
        closeReason = reason;
        broken = true;
        if (channel != null && channel.isOpen()) {
            log.debug("closing server connection {} pid {}: {}", backend(), processId, reason);
            channel.writeAndFlush(Messages.terminate(channel.alloc()))
                    .addListener(ChannelFutureListener.CLOSE);
        }
    }

    /** Why pgrelay itself closed this connection; null if it did not (the server or TCP did). */
    String closeReason() {
        return closeReason;
    }

    /**
     * Marks the connection unusable so the pool will not reuse it; the client decides when to hand
     * it back.
     */
    void markBroken() {
        broken = true;
    }

    void link(ClientSession session, long now) {
        client = session;
        lastUsedNanos = now;
    }

    ClientSession client() {
        return client;
    }

    void unlink() {
        client = null;
        channel.config().setAutoRead(true);
    }

    /** Session mode: runs server_reset_query, then returns to the pool once the server is idle. */
    void resetAndRelease(String resetQuery) {
        client = null;
        channel.config().setAutoRead(true);
        if (resetQuery == null || resetQuery.isBlank()) {
            pool.pool().release(this);
            return;
        }
        // DISCARD ALL puts every parameter back to its login value; the server re-reports the ones
        // it reports, the others we forget unless they were startup parameters.
        // Parameters it logged in with go back to those values (reported or not).
        parameters.keySet().retainAll(loginParameters.keySet());
        pool.key()
                .parameters()
                .forEach(
                        (name, value) -> {
                            if (!loginParameters.containsKey(name)) {
                                parameters.put(name, value);
                            }
                        });
        syncedTo = null;
        resetting = true;
        channel.writeAndFlush(Messages.query(channel.alloc(), resetQuery));
    }

    /**
     * Writes without flushing; callable from any thread (Netty queues writes from other threads in
     * order).
     */
    @Override
    public void write(ByteBuf frame) {
        channel.write(frame, channel.voidPromise());
    }

    void flush() {
        channel.flush();
    }

    void setAutoRead(boolean on) {
        channel.config().setAutoRead(on);
    }

    /**
     * A run of complete messages from the server (see {@link FrameDecoder#backendRuns}). The linked
     * client relays it; a message that hands the connection back (ReadyForQuery in transaction
     * mode) ends the client's part, and whatever follows is dispatched again, to the next client or
     * to the idle handling here.
     */
    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        dispatch((ByteBuf) msg, ((ByteBuf) msg).readerIndex());
    }

    /** Dispatches a run from {@code from} on, as it is linked now; releases the run. */
    private void dispatch(ByteBuf run, int from) {
        try {
            int i = from;
            int end = run.writerIndex();
            while (i < end) {
                ClientSession c = client;
                if (c != null && loggedIn.isDone()) {
                    if (c.loop().inEventLoop()) {
                        i = c.onServerMessages(this, run, i);
                    } else {
                        if (batch == null) {
                            batch = new ArrayList<>();
                        }
                        batch.add(run.retainedSlice(i, end - i));
                        batchFor = c;
                        return;
                    }
                } else {
                    int next = Messages.end(run, i);
                    onMessageWithoutClient(run.retainedSlice(i, next - i));
                    i = next;
                }
            }
        } finally {
            run.release();
        }
    }

    private void onMessageWithoutClient(ByteBuf frame) {
        if (loggedIn.isDone()) {
            onUnlinkedMessage(frame);
            return;
        }
        try {
            onLoginMessage(frame);
        } catch (ServerLoginException e) {
            failLogin(e);
        } catch (RuntimeException e) {
            failLogin(
                    new ServerLoginException(
                            "login to server " + backend() + " failed: " + describe(e)));
        } finally {
            frame.release();
        }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
        afterRead();
    }

    private void afterRead() {
        if (batch != null) {
            handOverBatch();
            return;
        }
        ClientSession c = client;
        if (c != null && c.loop().inEventLoop()) {
            c.onServerReadComplete(this);
        }
    }

    private void handOverBatch() {
        List<ByteBuf> runs = batch;
        ClientSession c = batchFor;
        batch = null;
        batchFor = null;
        c.loop()
                .execute(
                        () -> {
                            // On the client's loop. The runs were read while c held the
                            // connection, but c may have let go since (a ReadyForQuery handing it
                            // back, in an earlier run or in the middle of this one). What follows
                            // a hand-back is not c's: it goes back to this connection's loop and
                            // is dispatched again, to whoever holds the connection now or to the
                            // idle handling, exactly as channelRead does on one loop. Typically it
                            // is the FATAL of a backend terminated just after its last reply
                            // (pg_terminate_backend on an idle connection): dropping it, as this
                            // used to, put a connection whose backend was gone back into the
                            // pool as usable, and its next client lost its query to the close
                            // (08006 instead of 57P01). Any transport can do this; io_uring's
                            // timing hit it often (PreparedStatementMappingTest churn).
                            for (ByteBuf run : runs) {
                                boolean handedOn = false;
                                try {
                                    int i =
                                            client == c
                                                    ? c.onServerMessages(
                                                            this, run, run.readerIndex())
                                                    : run.readerIndex();
                                    if (i < run.writerIndex()) {
                                        channel.eventLoop()
                                                .execute(
                                                        () -> {
                                                            dispatch(run, i);
                                                            afterRead();
                                                        });
                                        handedOn = true;
                                    }
                                } finally {
                                    if (!handedOn) {
                                        run.release();
                                    }
                                }
                            }
                            c.onServerReadComplete(this);
                        });
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
        ClientSession c = client;
        if (c != null) {
            boolean writable = ctx.channel().isWritable();
            c.loop().execute(() -> c.onServerWritabilityChanged(this, writable));
        }
        ctx.fireChannelWritabilityChanged();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        broken = true;
        if (ownQuery != null && loggedIn.isDone()) {
            OwnQuery query = ownQuery;
            ownQuery = null;
            query.lost("server " + backend() + " closed the connection");
        }
        pool.connections.remove(this);
        if (!loggedIn.isDone()) {
            failLogin(
                    ServerLoginException.unreachable(
                            "server " + backend() + " closed the connection during login"));
            return;
        }
        if (loggedIn.isCompletedExceptionally()) {
            return; // never made it into the pool
        }
        if (batch != null) {
            handOverBatch();
        }
        ClientSession c = client;
        if (c != null) {
            c.loop().execute(() -> c.onServerClosed(this));
        } else {
            pool.pool().discard(this, "server closed the connection");
        }
        log.debug("server connection {} pid {} closed", backend(), processId);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        log.debug("server connection {} pid {}: {}", backend(), processId, cause.toString());
        broken = true;
        ctx.close();
    }

    private void failLogin(ServerLoginException e) {
        broken = true;
        if (loggedIn.completeExceptionally(e) && channel != null) {
            channel.close();
        }
    }

    private void onUnlinkedMessage(ByteBuf frame) {
        if (ownQuery != null) {
            try {
                onOwnQueryReply(frame);
            } finally {
                frame.release();
            }
            return;
        }
        try {
            switch (Messages.type(frame)) {
                case Messages.READY_FOR_QUERY -> {
                    if (resetting) {
                        resetting = false;
                        pool.pool().release(this);
                    }
                }
                case Messages.PARAMETER_STATUS -> {
                    String name = MessageFields.parameterName(frame, frame.readerIndex());
                    String value = MessageFields.parameterValue(frame, frame.readerIndex());
                    reportParameter(name, value);
                    if (name.equals("in_hot_standby")) {
                        // A promotion seen on an idle pooled connection confirms the new leader at
                        // once.
                        relay.reportHotStandby(backend(), value);
                    }
                }
                case Messages.ERROR_RESPONSE -> {
                    ErrorResponse error = ErrorResponse.decode(frame);
                    log.debug("server {} pid {} while idle: {}", backend(), processId, error);
                    if (error.isFatal() || resetting) {
                        // A failed reset leaves unknown session state behind: never reuse it.
                        broken = true;
                        handOverLateFatal(frame, error);
                        if (resetting) {
                            resetting = false;
                            pool.pool()
                                    .discard(this, "server_reset_query failed: " + error.message());
                        }
                    }
                }
                default -> {
                    // Replies to the reset query and stray notices are not anybody's business.
                }
            }
        } finally {
            frame.release();
        }
    }

    /**
     * A client may have been granted this connection between the read that found it unlinked and
     * {@code broken} being set, and linked it on its own loop while it still looked usable. Such a
     * client must hear the FATAL (its close then reports the server's own error), so it is handed
     * on: either the client's attach sees {@code broken}, or the client gets this.
     */
    private void handOverLateFatal(ByteBuf frame, ErrorResponse error) {
        ClientSession c = client;
        if (c == null || !error.isFatal()) {
            return;
        }
        ByteBuf late = frame.retainedDuplicate();
        c.loop()
                .execute(
                        () -> {
                            try {
                                c.onServerMessages(this, late, late.readerIndex());
                            } finally {
                                late.release();
                            }
                            c.onServerReadComplete(this);
                        });
    }

    /** A reply to pgrelay's own query; its answer completes at ReadyForQuery. */
    private void onOwnQueryReply(ByteBuf frame) {
        int at = frame.readerIndex();
        if (Messages.type(frame) == Messages.PARAMETER_STATUS) {
            reportParameter(
                    MessageFields.parameterName(frame, at),
                    MessageFields.parameterValue(frame, at));
            return;
        }
        OwnQuery query = ownQuery;
        boolean done = query.onReply(frame);
        if (query.fatal()) {
            broken = true;
        }
        if (done) {
            ownQuery = null;
            query.complete();
        }
    }

    private void onLoginMessage(ByteBuf frame) throws ServerLoginException {
        if (ownQuery != null) {
            onOwnQueryReply(frame);
            return;
        }
        switch (Messages.type(frame)) {
            case Messages.AUTHENTICATION -> {
                ByteBuf reply = authentication.onRequest(frame, channel.alloc());
                if (reply != null) {
                    send(reply);
                }
            }
            case Messages.PARAMETER_STATUS -> {
                String name = MessageFields.parameterName(frame, frame.readerIndex());
                String value = MessageFields.parameterValue(frame, frame.readerIndex());
                parameters.put(name, value);
                loginParameters.put(name, value);
            }
            case Messages.BACKEND_KEY_DATA -> {
                processId = MessageFields.processId(frame, frame.readerIndex());
                secretKey = MessageFields.secretKey(frame, frame.readerIndex());
            }
            case Messages.ERROR_RESPONSE ->
                    throw new ServerLoginException(ErrorResponse.decode(frame));
            case Messages.READY_FOR_QUERY -> {
                // Logged in; what the welcome depends on is read before anyone gets it.
                ownQuery = new OwnQuery();
                ownQuery.answer().thenAccept(answer -> loggedIn(answer.firstColumn()));
                send(Messages.query(channel.alloc(), FINGERPRINT));
            }
            default -> {
                // NoticeResponse, NegotiateProtocolVersion: nothing to do.
            }
        }
    }

    private void loggedIn(String fingerprint) {
        if (broken) {
            return; // a FATAL arrived: the close fails the login
        }
        loginFingerprint = fingerprint;
        log.debug(
                "logged in to {} as {} (pid {})",
                backend(),
                LogSafe.quote(pool.key().user()),
                processId);
        connectedAt = Instant.now();
        relay.reportHotStandby(backend(), parameters.get("in_hot_standby"));
        pool.connections.add(this);
        loggedIn.complete(this);
    }

    private void send(ByteBuf message) {
        channel.writeAndFlush(message, channel.voidPromise());
    }
}
