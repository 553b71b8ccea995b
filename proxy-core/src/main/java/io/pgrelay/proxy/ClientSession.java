package io.pgrelay.proxy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.EventLoop;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.codec.DecoderException;
import io.pgrelay.admin.AdminSession;
import io.pgrelay.config.ProxyConfig.PoolMode;
import io.pgrelay.pool.PoolException;
import io.pgrelay.pool.Waiter;
import io.pgrelay.protocol.CStrings;
import io.pgrelay.protocol.ErrorResponse;
import io.pgrelay.protocol.FrameDecoder;
import io.pgrelay.protocol.LogSafe;
import io.pgrelay.protocol.MessageChecks;
import io.pgrelay.protocol.Messages;
import io.pgrelay.protocol.ProtocolException;
import io.pgrelay.protocol.SqlState;
import io.pgrelay.protocol.StartupMessage;
import io.pgrelay.proxy.PreparedStatements.Statement;
import io.pgrelay.routing.Backend;
import io.pgrelay.routing.Member;
import io.pgrelay.routing.PatroniRouter;
import io.pgrelay.routing.Role;
import io.pgrelay.routing.Topology;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client connection: startup, authentication, then the relay to and from whatever server
 * connection it holds.
 *
 * <p>Everything here runs on the client channel's event loop; no field needs a lock. Server frames
 * arrive through {@link #onServerFrame} on this loop too (ServerConnection hops over when it lives
 * elsewhere).
 *
 * <p>Transaction pooling rests on counting: every Query, Sync and FunctionCall sent to the server
 * will be answered by exactly one ReadyForQuery (a Sync sent during COPY IN is ignored by the
 * server and not counted). The server goes back to the pool when a ReadyForQuery says idle, no
 * answer is outstanding and no extended-protocol batch has been started without its Sync. While
 * waiting for a server, the client's frames are queued and its reads paused.
 *
 * <p>When a server connection is lost, or no server can be had, every request the client is waiting
 * on is answered with an ErrorResponse and ReadyForQuery, an unfinished extended batch is skipped
 * up to its Sync (as PostgreSQL itself does after an error), and the client connection stays open
 * for its next transaction.
 */
final class ClientSession extends ChannelInboundHandlerAdapter {

    private static final Logger log = LoggerFactory.getLogger(ClientSession.class);
    private static final ByteBuf SSL_REFUSED =
            Unpooled.unreleasableBuffer(Unpooled.directBuffer(1).writeByte('N')).asReadOnly();

    private enum State {
        STARTUP,
        AUTHENTICATING,
        LOGGING_IN,
        READY,
        CLOSED
    }

    private static final io.netty.util.concurrent.FastThreadLocal<int[]> INLINE_GRANTS =
            new io.netty.util.concurrent.FastThreadLocal<>() {
                @Override
                protected int[] initialValue() {
                    return new int[1];
                }
            };
    private static final int MAX_INLINE_GRANTS = 2;

    private static final int BLOCKED_WAITING = 1;
    private static final int BLOCKED_BACKPRESSURE = 2;

    private final SessionServices relay;
    private final Role role;

    /** Fixed for the session, like mapStatements; every other setting is read where used. */
    private final PoolMode poolMode;

    private final long connectedAtNanos = System.nanoTime();
    final long id;
    final Instant connectedAt = Instant.now();

    private Channel channel;
    private EventLoop loop;
    private FrameDecoder decoder;
    private volatile State state = State.STARTUP;
    private boolean sslRequested;
    private boolean gssRequested;

    /**
     * Holds a slot in the relay's ClientSlots: a login slot until {@link #loggedIn}, then a client
     * slot.
     */
    private boolean counted;

    private boolean loggedIn;

    private String user;
    private String database;

    /** Parameters from the startup packet (canonical names). */
    private Map<String, String> requested = new LinkedHashMap<>();

    /** The client's view of its session parameters, kept in line on every server it gets. */
    private Map<String, String> values;

    /** {@link #values} interned (see SessionParameters.intern); null when values changed since. */
    private Map<String, String> internedValues;

    private CancelKeys.Key cancelKey;

    /** The password exchange while AUTHENTICATING. */
    private PasswordExchange login;

    private volatile ServerConnection server;

    /** A granted connection not yet linked as {@link #server} nor handed back (see takeGranted). */
    private ServerConnection inHand;

    private Lease lease;

    /** Tests only: runs right after a granted connection is linked, to make that path throw. */
    static volatile java.util.function.Consumer<ServerConnection> attachFaultForTests;

    private final ArrayDeque<ByteBuf> pending = new ArrayDeque<>(4);

    /**
     * Bytes queued in {@link #pending} since it was last empty (approximate: reset when drained).
     */
    private long pendingBytes;

    /** Queued bytes beyond which a waiting client's reads are paused. */
    private static final long MAX_PENDING_BYTES = 1 << 20;

    /** Replies owed by the linked server, in order (see ExpectedReply). */
    private final ArrayDeque<ExpectedReply> expected = new ArrayDeque<>(4);

    /** The server reported an error mid-batch and skips everything up to the next Sync. */
    private boolean serverSkipping;

    /** pgrelay answered an error itself mid-batch; the rest of the batch is dropped up to Sync. */
    private boolean clientSkipping;

    /**
     * An extended-protocol message that the server may fail went to it since the last Sync: a
     * failure would make it skip everything up to that Sync, simple Queries included.
     */
    private boolean batchOpen;

    /** Transaction mode: the client's statement names map to shared, renamed statements. */
    private final boolean mapStatements;

    private final ClientStatements statements = new ClientStatements();
    private boolean copyIn;
    private byte txStatus = Messages.IDLE;
    private int injectedReplies;
    private ErrorResponse injectedError;
    private ErrorResponse serverFatal;

    /** Set: skip frames up to the next Sync, then answer it with this error. */
    private ErrorResponse skipUntilSync;

    /** {@link #skipUntilSync} when the error went out already: the Sync gets ReadyForQuery only. */
    private static final ErrorResponse ALREADY_REPORTED =
            ErrorResponse.error(SqlState.PROTOCOL_VIOLATION, "reported");

    /** Set: the next request fails with this error (its transaction was lost with its server). */
    private ErrorResponse failNext;

    private boolean wroteToServer;
    private boolean wroteToClient;
    private int readBlocks;
    private boolean closeWhenIdle;
    private volatile long lastActivityNanos = connectedAtNanos;

    // Read by SHOW CLIENTS / metrics from other threads.
    private volatile ServerPool homePool;
    private volatile long waitingSinceNanos;
    private volatile String applicationName = "";
    // Held: no server may be asked for now (PAUSE, or no writable primary); reads are paused.
    private volatile boolean held;
    private long heldSinceNanos;

    /** Why the client is held and until when; the error it gets when the wait runs out. */
    private String holdReason;

    private long holdDeadlineNanos;
    private String holdSqlState;
    private int readRetries;

    /** The replica whose refusal (shutting down, unreachable) a read is being retried after. */
    private Backend readRetryAvoids;

    /** True while this session is inside Pool.acquire (its own loop), for the inline grant. */
    private boolean acquiring;

    /**
     * Waiting for the answer to an empty query that makes an unconfirmed leader report
     * in_hot_standby.
     */
    private boolean probing;

    // Statistics while a server connection is held, added to its pool at the end of each
    // transaction so the relay path never touches a shared counter per message.
    private long bytesIn;
    private long bytesOut;
    private long queryCount;
    private long queryNanos;
    private long transactionCount;
    private long transactionNanos;
    private long queryStartNanos;
    private long transactionStartNanos;

    /** Set for clients of the admin console database. */
    private AdminSession admin;

    private boolean consoleDatabase;

    ClientSession(SessionServices relay, Role role) {
        this.relay = relay;
        this.role = role;
        this.poolMode = relay.config().poolMode();
        this.mapStatements =
                poolMode == PoolMode.TRANSACTION && relay.config().maxPreparedStatements() > 0;
        this.id = relay.nextClientId();
    }

    String user() {
        return user;
    }

    String database() {
        return database;
    }

    String applicationName() {
        return applicationName;
    }

    long lastActivityNanos() {
        return lastActivityNanos;
    }

    /**
     * PgBouncer's client states: login (not logged in yet), waiting (queued for a server), active.
     */
    String stateLabel() {
        State s = state;
        if (s != State.READY) {
            return s == State.CLOSED ? "closed" : "login";
        }
        return waitingSinceNanos != 0 || held ? "waiting" : "active";
    }

    long waitingNanos(long now) {
        long since = waitingSinceNanos;
        return since == 0 ? (held ? now - heldSinceNanos : 0) : now - since;
    }

    ServerPool homePool() {
        return homePool;
    }

    boolean isConsole() {
        return consoleDatabase;
    }

    Channel channel() {
        return channel;
    }

    ServerConnection linkedServer() {
        return server;
    }

    long connectedAtNanos() {
        return connectedAtNanos;
    }

    /**
     * Closes this connection if it has still not logged in (ClientSlots making room); on its loop.
     */
    void disconnectIfLoggingIn(String sqlState, String message) {
        loop.execute(
                () -> {
                    if (!loggedIn && state != State.CLOSED) {
                        fatal(ErrorResponse.fatal(sqlState, message));
                    }
                });
    }

    /** Disconnects this client (KILL, KILL_CLIENT); runs on its loop. */
    void disconnect(String sqlState, String message) {
        loop.execute(() -> fatal(ErrorResponse.fatal(sqlState, message)));
    }

    int preparedStatementCount() {
        return statements.size();
    }

    EventLoop loop() {
        return loop;
    }

    Role role() {
        return role;
    }

    // ---------------------------------------------------------------- channel events

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
        channel = ctx.channel();
        loop = channel.eventLoop();
        decoder = channel.pipeline().get(FrameDecoder.class);
        counted = true;
        ctx.fireChannelActive();
        if (!relay.clientConnected(this)) {
            // Refused at once, not after a startup packet that an idle connection never sends:
            // a flood of them must not pile up here.
            fatal(
                    ErrorResponse.fatal(
                            SqlState.TOO_MANY_CONNECTIONS,
                            "too many connections are logging in (limits.max_login_clients)"));
        }
    }

    /**
     * One startup packet while in STARTUP; after that a run of complete typed messages (see {@link
     * FrameDecoder#frontendRuns}), which this method owns.
     */
    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        ByteBuf in = (ByteBuf) msg;
        lastActivityNanos = System.nanoTime();
        if (state == State.CLOSED) {
            in.release();
            return;
        }
        if (state == State.STARTUP) {
            try {
                onStartupPacket(in);
            } finally {
                in.release();
            }
            return;
        }
        try {
            int i = in.readerIndex();
            int end = in.writerIndex();
            while (i < end) {
                if (state == State.READY && admin == null) {
                    onClientMessages(in, i);
                    return;
                }
                int next = Messages.end(in, i);
                onTypedMessage(in.retainedSlice(i, next - i));
                i = next;
            }
        } finally {
            in.release();
        }
    }

    /** One message outside the relay: console, password exchange, queued while logging in. */
    private void onTypedMessage(ByteBuf frame) {
        if (state == State.READY) {
            admin.onFrame(frame);
            if (admin.wantsClose()) {
                state = State.CLOSED;
                channel.close();
            }
            return;
        }
        try {
            switch (state) {
                case AUTHENTICATING -> onPasswordMessage(frame);
                case LOGGING_IN -> {
                    // A client that pipelines its first query behind the startup packet.
                    pending.add(frame.retain());
                }
                default -> {
                    // CLOSED: drop.
                }
            }
        } finally {
            frame.release();
        }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
        if (wroteToServer && server != null) {
            server.flush();
        }
        wroteToServer = false;
        if (wroteToClient) {
            // Replies pgrelay answered itself (ParseComplete, CloseComplete, errors).
            wroteToClient = false;
            channel.flush();
        }
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
        if (server != null) {
            // A slow client must slow its server down, not fill pgrelay's memory.
            server.setAutoRead(channel.isWritable());
        }
        ctx.fireChannelWritabilityChanged();
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        cleanup();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        Throwable root =
                cause instanceof DecoderException && cause.getCause() != null
                        ? cause.getCause()
                        : cause;
        if (root instanceof ProtocolException pe && pe.sqlState().equals(SqlState.OUT_OF_MEMORY)) {
            log.warn(
                    "client {} (user {}): {}",
                    channel.remoteAddress(),
                    LogSafe.quote(user),
                    pe.getMessage());
            fatal(ErrorResponse.fatal(pe.sqlState(), pe.getMessage()));
        } else if (root instanceof ProtocolException pe) {
            log.info(
                    "client {}: protocol violation: {}",
                    channel.remoteAddress(),
                    LogSafe.escape(pe.getMessage(), 300));
            fatal(ErrorResponse.fatal(pe.sqlState(), pe.getMessage()));
        } else if (root instanceof java.io.IOException) {
            log.debug("client {}: {}", channel.remoteAddress(), root.toString());
            ctx.close();
        } else {
            // A defect of pgrelay's: whatever server connection this client holds is in an
            // unknown state and must not serve anyone else (see cleanup).
            log.error(
                    "client {}: internal error; closing the connection",
                    channel.remoteAddress(),
                    root);
            internalError = true;
            fatal(
                    ErrorResponse.fatal(
                            SqlState.INTERNAL_ERROR,
                            "internal error in pgrelay; the connection is closed"));
        }
    }

    // ---------------------------------------------------------------- startup

    private void onStartupPacket(ByteBuf packet) {
        int length = packet.readableBytes();
        int code = StartupMessage.code(packet);
        // Each may be asked once; a second one falls through to the version check and is
        // refused as an unsupported protocol, as PostgreSQL does.
        if ((code == StartupMessage.SSL_REQUEST_CODE && !sslRequested)
                || (code == StartupMessage.GSSENC_REQUEST_CODE && !gssRequested)) {
            sslRequested |= code == StartupMessage.SSL_REQUEST_CODE;
            gssRequested |= code == StartupMessage.GSSENC_REQUEST_CODE;
            if (length != 8) {
                throw new ProtocolException(
                        "invalid length of "
                                + (code == StartupMessage.SSL_REQUEST_CODE
                                        ? "SSLRequest"
                                        : "GSSENCRequest")
                                + ": "
                                + length);
            }
            // TLS and GSS encryption are not offered: 'N' and the client goes on in the clear.
            channel.writeAndFlush(SSL_REFUSED.duplicate());
            return;
        }
        if (code == StartupMessage.CANCEL_REQUEST_CODE) {
            if (length == 16) {
                relay.cancelKeys()
                        .cancel(
                                packet.getInt(packet.readerIndex() + 8),
                                packet.getInt(packet.readerIndex() + 12));
            }
            state = State.CLOSED;
            channel.close();
            return;
        }
        if (relay.isShuttingDown()) {
            // Checked here, after CancelRequest: clients finishing their transactions may still
            // cancel.
            fatal(ErrorResponse.fatal(SqlState.CANNOT_CONNECT_NOW, "pgrelay is shutting down"));
            return;
        }
        int major = code >>> 16;
        int minor = code & 0xffff;
        if (major != 3) {
            fatal(
                    ErrorResponse.fatal(
                            SqlState.FEATURE_NOT_SUPPORTED,
                            "unsupported frontend protocol "
                                    + major
                                    + "."
                                    + minor
                                    + ": server supports 3.0 to 3.0"));
            return;
        }
        Map<String, String> params = StartupMessage.parameters(packet);
        decoder.typedPhase();
        List<String> unrecognized = new ArrayList<>();
        params.keySet().stream().filter(k -> k.startsWith("_pq_.")).forEach(unrecognized::add);
        if (minor > 0 || !unrecognized.isEmpty()) {
            channel.write(Messages.negotiateProtocolVersion(channel.alloc(), 0, unrecognized));
        }
        user = params.get("user");
        if (user == null || user.isEmpty()) {
            fatal(
                    ErrorResponse.fatal(
                            SqlState.INVALID_AUTHORIZATION_SPECIFICATION,
                            "no PostgreSQL user name specified in startup packet"));
            return;
        }
        database = params.getOrDefault("database", "");
        if (database.isEmpty()) {
            database = user;
        }
        consoleDatabase = database.equals("pgbouncer") || database.equals("pgrelay");
        applicationName = params.getOrDefault("application_name", "");
        if (!consoleDatabase && relay.isDisabled(database)) {
            fatal(
                    ErrorResponse.fatal(
                            "55000",
                            "database \"" + database + "\" does not allow connections (DISABLE)"));
            return;
        }
        String replication = params.get("replication");
        if (replication != null
                && !List.of("false", "off", "no", "0").contains(replication.toLowerCase())) {
            fatal(
                    ErrorResponse.fatal(
                            SqlState.FEATURE_NOT_SUPPORTED,
                            "replication connections are not supported by pgrelay"));
            return;
        }
        try {
            requested =
                    SessionParameters.requested(params, relay.config().ignoreStartupParameters());
        } catch (IllegalArgumentException e) {
            fatal(ErrorResponse.fatal(SqlState.PROTOCOL_VIOLATION, e.getMessage()));
            return;
        }
        state = State.AUTHENTICATING;
        startAuthentication();
    }

    // ---------------------------------------------------------------- authentication

    private void startAuthentication() {
        login =
                new PasswordExchange(
                        user, relay.credentials().secret(user).orElse(null), relay.credentials());
        onLoginStep(login.start(relay.config().authType(), channel.alloc()));
    }

    private void onPasswordMessage(ByteBuf frame) {
        onLoginStep(login.onPasswordMessage(frame, channel.alloc()));
    }

    private void onLoginStep(PasswordExchange.Step step) {
        if (step.reply() != null) {
            channel.write(step.reply());
        }
        switch (step.outcome()) {
            case CONTINUE -> channel.flush();
            case SUCCEEDED -> authenticated();
            case FAILED -> authenticationFailed(step.failure());
        }
    }

    private void authenticationFailed(String why) {
        log.info(
                "client {}: password authentication failed for user {}: {}",
                channel.remoteAddress(),
                LogSafe.quote(user),
                LogSafe.escape(why, 300));
        fatal(
                ErrorResponse.fatal(
                        SqlState.INVALID_PASSWORD,
                        "password authentication failed for user \"" + user + "\""));
    }

    private void authenticated() {
        // The exchange is over: an idle client should not keep its SCRAM state alive.
        login = null;
        if (!relay.clientLoggedIn(this)) {
            fatal(
                    ErrorResponse.fatal(
                            SqlState.TOO_MANY_CONNECTIONS,
                            "no more connections allowed (max_client_conn)"));
            return;
        }
        loggedIn = true;
        channel.write(Messages.authenticationOk());
        if (consoleDatabase) {
            startConsole();
            return;
        }
        state = State.LOGGING_IN;
        channel.flush();
        continueLogin();
    }

    /**
     * Greets the client with a pool's welcome; logs in to a server first when no pool knows one.
     */
    private void continueLogin() {
        ServerPool known = relay.pools().withWelcome(database, user, role);
        if (known != null) {
            completeLogin(known);
            return;
        }
        // First client of this database and user: log in to a server once to learn what to greet
        // with.
        startLease();
    }

    private void startConsole() {
        boolean mayControl = relay.config().adminUsers().contains(user);
        if (!mayControl && !relay.config().statsUsers().contains(user)) {
            fatal(
                    ErrorResponse.fatal(
                            "42501",
                            "user \""
                                    + user
                                    + "\" is not allowed to use the admin console"
                                    + " (admin_users, stats_users)"));
            return;
        }
        Map<String, String> greeting = new LinkedHashMap<>();
        greeting.put("server_version", "15.0");
        greeting.put("server_encoding", "UTF8");
        greeting.put("client_encoding", requested.getOrDefault("client_encoding", "UTF8"));
        greeting.put("DateStyle", "ISO, MDY");
        greeting.put("TimeZone", "UTC");
        greeting.put("integer_datetimes", "on");
        greeting.put("standard_conforming_strings", "on");
        greeting.put("application_name", applicationName);
        greeting.forEach((k, v) -> channel.write(Messages.parameterStatus(channel.alloc(), k, v)));
        cancelKey = relay.cancelKeys().register(this);
        channel.write(
                Messages.backendKeyData(
                        channel.alloc(), cancelKey.processId(), cancelKey.secretKey()));
        channel.write(Messages.readyForQueryIdle());
        channel.flush();
        state = State.READY;
        AdminConsole console = relay.console();
        admin =
                new AdminSession(
                        console,
                        console,
                        mayControl,
                        channel.alloc(),
                        loop,
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

    private void shareValues(Map<String, String> interned) {
        values = interned;
        internedValues = interned;
    }

    private void completeLogin(ServerPool pool) {
        Map<String, String> welcome = pool.welcome();
        homePool = pool;
        pool.clientLogins.increment();
        values = new LinkedHashMap<>(welcome);
        values.putAll(requested);
        for (String name : welcome.keySet()) {
            channel.write(Messages.parameterStatus(channel.alloc(), name, values.get(name)));
        }
        // Clients that asked for the same settings share one immutable map until one changes a
        // parameter (copy on write): an idle client holds a reference, not a map of its own.
        shareValues(SessionParameters.intern(values));
        requested = null;
        cancelKey = relay.cancelKeys().register(this);
        channel.write(
                Messages.backendKeyData(
                        channel.alloc(), cancelKey.processId(), cancelKey.secretKey()));
        channel.write(Messages.readyForQueryIdle());
        channel.flush();
        state = State.READY;
        lastActivityNanos = System.nanoTime();
        // Anything the client pipelined behind its startup goes through the normal path now.
        if (!pending.isEmpty()) {
            List<ByteBuf> early = new ArrayList<>(pending);
            pending.clear();
            pendingBytes = 0;
            early.forEach(this::onClientFrame);
            channelReadComplete(null);
        }
    }

    // ---------------------------------------------------------------- relay: client → server

    /**
     * Relays the messages of a run from {@code from} on (the caller owns the run). While a server
     * connection is linked, messages forwarded unchanged are written as one slice per stretch of
     * consecutive bytes (Parse/Bind/Describe/Execute/Sync: one write, not five); anything else (no
     * server yet, statements to rename, errors being skipped, Terminate) goes through {@link
     * #onClientFrame} one by one.
     */
    private void onClientMessages(ByteBuf run, int from) {
        int end = run.writerIndex();
        int forwardFrom = from;
        int i = from;
        while (i < end && state == State.READY) {
            byte type = run.getByte(i);
            int next = Messages.end(run, i);
            if (server != null
                    && skipUntilSync == null
                    && !probing
                    && !clientSkipping
                    && !serverSkipping
                    && type != Messages.TERMINATE
                    && !(mapStatements && needsMapping(type, run, i))
                    && !(batchOpen && isSimpleRequest(type))) {
                noteForwarded(type, run, i, next - i);
                i = next;
                continue;
            }
            forward(run, forwardFrom, i);
            onClientFrame(run.retainedSlice(i, next - i));
            i = next;
            forwardFrom = next;
        }
        if (state == State.READY) {
            forward(run, forwardFrom, i);
        }
    }

    /** Writes bytes [from, to) of a run to the linked server, as one retained slice. */
    private void forward(ByteBuf run, int from, int to) {
        if (to > from) {
            server.write(run.retainedSlice(from, to - from));
            wroteToServer = true;
        }
    }

    private void onClientFrame(ByteBuf frame) {
        byte type = Messages.type(frame);
        if (type == Messages.TERMINATE) {
            frame.release();
            state = State.CLOSED;
            channel.close();
            return;
        }
        if (probing) {
            pending.add(frame);
            return;
        }
        if (server != null && skipUntilSync == null) {
            forward(frame);
            return;
        }
        if (skipUntilSync != null || failNext != null) {
            absorbFailed(frame);
            return;
        }
        if (type == Messages.COPY_DATA
                || type == Messages.COPY_DONE
                || type == Messages.COPY_FAIL) {
            // COPY data whose server is gone (its error has been reported): nowhere to go.
            frame.release();
            return;
        }
        if (pending.isEmpty() && lease == null && !held && rejectedBeforeLease(type, frame)) {
            return;
        }
        pending.add(frame);
        pendingBytes += frame.readableBytes();
        if (lease == null && !held) {
            startLease();
        } else if (pendingBytes > MAX_PENDING_BYTES) {
            block(BLOCKED_WAITING);
        }
    }

    /**
     * A malformed first message of a request is answered before any server is asked for (as
     * PostgreSQL does: an error, then everything up to Sync ignored). Behind queued requests it
     * waits its turn and is rejected in {@link #forward(ByteBuf)}, so replies keep their order.
     */
    private boolean rejectedBeforeLease(byte type, ByteBuf frame) {
        if (!mapStatements || !needsMapping(type, frame, frame.readerIndex())) {
            return false;
        }
        String malformed = MessageChecks.malformation(frame, frame.readerIndex());
        if (malformed == null) {
            return false;
        }
        frame.release();
        // Parse, Bind, Describe, Close: the error now, then the rest up to Sync is ignored.
        ErrorResponse error = ErrorResponse.error(SqlState.PROTOCOL_VIOLATION, malformed);
        relay.metrics().error(error.sqlState());
        channel.write(error.encode(channel.alloc()));
        wroteToClient = true;
        skipUntilSync = ALREADY_REPORTED;
        return true;
    }

    /**
     * Asks for a server connection for the queued requests, or holds them while none may be given.
     */
    private void startLease() {
        if (relay.isShuttingDown()) {
            fatal(ErrorResponse.fatal(SqlState.ADMIN_SHUTDOWN, "pgrelay is shutting down"));
            return;
        }
        String paused = relay.holdReason(database);
        if (paused != null) {
            hold(paused, relay.config().poolSettings().queryWaitTimeout(), SqlState.QUERY_CANCELED);
            return;
        }
        Optional<Backend> backend = relay.router().route(role);
        // A read retried after a replica refused it: the rotation is shared by all clients, so
        // the next turn may well be the same replica again; ask for another one (a few turns).
        for (int turn = 0;
                turn < 4
                        && readRetryAvoids != null
                        && backend.isPresent()
                        && backend.get().equals(readRetryAvoids);
                turn++) {
            backend = relay.router().route(role);
        }
        if (backend.isEmpty() && relay.patroni() != null) {
            Optional<Backend> candidate = probeCandidate();
            if (candidate.isPresent()) {
                // Not confirmed writable yet: a connection to it will tell (in_hot_standby).
                log.debug("client {}: probing leader candidate {}", id, candidate.get());
                requestServer(relay.pools().pool(database, user, candidate.get(), role));
                return;
            }
            log.debug("client {}: held: {}", id, relay.noPrimaryReason());
            hold(
                    role == Role.PRIMARY
                            ? "no writable primary: " + relay.noPrimaryReason()
                            : "no replica or primary to read from: " + relay.noPrimaryReason(),
                    relay.config().leaderWaitTimeout(),
                    SqlState.CANNOT_CONNECT_NOW);
            return;
        }
        if (backend.isEmpty()) {
            failRequests(
                    ErrorResponse.error(
                            SqlState.CONNECTION_FAILURE,
                            "no " + role.label() + " server available"));
            return;
        }
        requestServer(relay.pools().pool(database, user, backend.get(), role));
    }

    /** The etcd leader, when it is worth a connection to see whether it is writable yet. */
    private Optional<Backend> probeCandidate() {
        PatroniRouter patroni = relay.patroni();
        if (role != Role.PRIMARY) {
            return Optional.empty();
        }
        Topology t = patroni.topology();
        if (t.switchoverPending()
                || !t.leaderMember().map(Member::isRunningPrimaryOrPromoting).orElse(false)) {
            return Optional.empty();
        }
        return patroni.leaderCandidate();
    }

    private void hold(String reason, java.time.Duration limit, String sqlState) {
        if (!held) {
            heldSinceNanos = System.nanoTime();
            holdDeadlineNanos = limit.isZero() ? Long.MAX_VALUE : heldSinceNanos + limit.toNanos();
        }
        held = true;
        holdReason = reason;
        holdSqlState = sqlState;
        block(BLOCKED_WAITING);
        relay.hold(this);
    }

    /** Called on this loop when whatever held the client may have changed (RESUME, new primary). */
    void retryHeld() {
        if (!held || state == State.CLOSED) {
            return;
        }
        held = false;
        relay.unhold(this);
        unblock(BLOCKED_WAITING);
        if (state == State.LOGGING_IN && lease == null) {
            continueLogin();
        } else if (!pending.isEmpty() && lease == null && server == null) {
            startLease();
        }
    }

    /** Writes one client frame to the linked server, noting what it will be answered with. */
    private void forward(ByteBuf frame) {
        byte type = Messages.type(frame);
        if (batchOpen && isSimpleRequest(type)) {
            // If anything earlier in the batch fails, the server skips this request up to the
            // Sync and never answers it; if nothing does, it answers. pgrelay cannot know which
            // before it must decide where the next ReadyForQuery belongs, so it refuses the
            // sequence instead of losing count of the replies. (Clients do send a Query right
            // after Close messages, pgjdbc among them; a well-formed Close cannot fail, so that
            // does not open a batch: see noteForwarded.)
            frame.release();
            fatal(
                    ErrorResponse.fatal(
                            SqlState.PROTOCOL_VIOLATION,
                            (type == Messages.QUERY ? "Query" : "FunctionCall")
                                    + " inside an extended-protocol batch: send Sync first (not supported by pgrelay)"));
            return;
        }
        if ((clientSkipping || serverSkipping) && type != Messages.SYNC) {
            // After an error the server would ignore everything up to Sync; so do we.
            frame.release();
            return;
        }
        if (mapStatements
                && needsMapping(type, frame, frame.readerIndex())
                // A malformed one goes to the server unchanged: it answers, and fails the
                // transaction, exactly as it would without pgrelay (nothing here reads it).
                && MessageChecks.malformation(frame, frame.readerIndex()) == null) {
            countRequest(frame.readableBytes());
            // A named Close is answered here and cannot fail; the others may reach the server.
            batchOpen |= type != Messages.CLOSE;
            switch (type) {
                case Messages.PARSE -> onParse(frame);
                case Messages.BIND -> onBind(frame);
                case Messages.DESCRIBE -> onDescribeOrClose(frame, true);
                default -> onDescribeOrClose(frame, false);
            }
            return;
        }
        noteForwarded(type, frame, frame.readerIndex(), frame.readableBytes());
        server.write(frame);
        wroteToServer = true;
    }

    /**
     * Whether a message names a prepared statement, which transaction pooling renames: Parse or
     * Bind of a named statement, Describe or Close of one ('S'). Unnamed statements and portals
     * pass unchanged. Reads the header bytes only.
     */
    private static boolean needsMapping(byte type, ByteBuf buf, int index) {
        int end = Messages.end(buf, index);
        int body = index + 5;
        // A message too short to say is taken out of the fast path too, to be rejected there.
        return switch (type) {
            case Messages.PARSE -> body >= end || buf.getByte(body) != 0;
            case Messages.BIND -> {
                int portalEnd = buf.indexOf(body, end, (byte) 0);
                yield portalEnd < 0 || portalEnd + 1 >= end || buf.getByte(portalEnd + 1) != 0;
            }
            case Messages.DESCRIBE, Messages.CLOSE ->
                    body + 1 >= end || (buf.getByte(body) == 'S' && buf.getByte(body + 1) != 0);
            default -> false;
        };
    }

    private void countRequest(int length) {
        bytesIn += length;
        if (queryStartNanos == 0) {
            queryStartNanos = System.nanoTime();
            if (transactionStartNanos == 0) {
                transactionStartNanos = queryStartNanos;
            }
        }
    }

    /** Query and FunctionCall: answered by their own ReadyForQuery, outside any batch. */
    private static boolean isSimpleRequest(byte type) {
        return type == Messages.QUERY || type == Messages.FUNCTION_CALL;
    }

    /**
     * Bookkeeping for a message forwarded unchanged (at {@code index} of {@code buf}): the reply it
     * will be answered with.
     */
    private void noteForwarded(byte type, ByteBuf buf, int index, int length) {
        countRequest(length);
        // batchOpen: Parse, Bind, Describe and Execute may always fail; a Flush or Close only when
        // malformed.
        switch (type) {
            case Messages.QUERY, Messages.FUNCTION_CALL -> expect(ExpectedReply.QUERY);
            case Messages.SYNC -> {
                if (copyIn) {
                    // The server ignores Sync during COPY IN: no ReadyForQuery will answer it.
                    break;
                }
                clientSkipping = false;
                serverSkipping = false;
                batchOpen = false;
                expect(ExpectedReply.SYNC);
            }
            case Messages.PARSE -> {
                batchOpen = true;
                expect(ExpectedReply.PARSE);
            }
            case Messages.BIND -> {
                batchOpen = true;
                if (mapStatements) {
                    pool().binds.increment();
                }
                expect(ExpectedReply.BIND);
            }
            case Messages.DESCRIBE -> {
                batchOpen = true;
                expect(ExpectedReply.DESCRIBE);
            }
            case Messages.CLOSE -> {
                batchOpen |= MessageChecks.malformedFlushOrClose(buf, index);
                expect(ExpectedReply.CLOSE);
            }
            case Messages.EXECUTE -> {
                batchOpen = true;
                expect(ExpectedReply.EXECUTE);
            }
            case Messages.FLUSH -> batchOpen |= MessageChecks.malformedFlushOrClose(buf, index);
            case Messages.COPY_DONE, Messages.COPY_FAIL -> copyIn = false;
            default -> {
                // CopyData: relayed, nothing to expect.
            }
        }
    }

    private void expect(ExpectedReply reply) {
        expected.add(reply);
    }

    /**
     * Queues a reply pgrelay gives itself; written at once when nothing is outstanding before it.
     */
    private void answer(ExpectedReply reply) {
        if (expected.isEmpty()) {
            emit(reply);
        } else {
            expected.add(reply);
        }
    }

    private void emit(ExpectedReply reply) {
        switch (reply.kind) {
            case SYNTHESIZED_PARSE_COMPLETE -> channel.write(Messages.parseComplete());
            case SYNTHESIZED_CLOSE_COMPLETE -> {
                if (reply.statement != null) {
                    relay.preparedStatements().release(reply.statement);
                }
                channel.write(Messages.closeComplete());
            }
            case SYNTHESIZED_ERROR -> channel.write(reply.error);
            default -> throw new IllegalStateException("not synthesized: " + reply);
        }
        wroteToClient = true;
    }

    private void answerError(String sqlState, String message) {
        relay.metrics().error(sqlState);
        answer(ExpectedReply.error(ErrorResponse.error(sqlState, message).encode(channel.alloc())));
        clientSkipping = true;
    }

    /**
     * Parse of a named statement (transaction mode): map the client's name to the shared entry;
     * answer ParseComplete ourselves when this server already has it, else send it renamed. Returns
     * true when the frame was consumed.
     */
    private void onParse(ByteBuf frame) {
        ByteBuf body = frame.duplicate().skipBytes(5);
        String name = CStrings.read(body);
        byte[] statementBody = ByteBufUtil.getBytes(body);
        frame.release();
        pool().clientParses.increment();
        if (statements.containsKey(name)) {
            answerError("42P05", "prepared statement \"" + name + "\" already exists");
            return;
        }
        String overLimit =
                relay.config()
                        .limits()
                        .checkClientStatements(
                                statements.size() + 1,
                                statements.bytes() + 2L * name.length() + statementBody.length);
        if (overLimit != null) {
            answerError(SqlState.CONFIGURATION_LIMIT_EXCEEDED, overLimit);
            return;
        }
        Statement statement = relay.preparedStatements().intern(statementBody);
        if (statement == null) {
            answerError(
                    SqlState.CONFIGURATION_LIMIT_EXCEEDED,
                    "the shared prepared statement cache is full ("
                            + relay.config().limits().preparedStatementCacheBytes()
                            + " bytes of statement text,"
                            + " limits.prepared_statement_cache_size)");
            return;
        }
        statements.put(name, statement);
        if (server.prepared.get(statement) != null) {
            answer(ExpectedReply.parseComplete(statement, name));
        } else {
            makeRoomOnServer();
            server.prepared.put(statement, Boolean.TRUE);
            server.write(statement.parseMessage(channel.alloc()));
            pool().serverParses.increment();
            expect(ExpectedReply.parse(statement, name));
            wroteToServer = true;
        }
    }

    /** Bind to a named statement: prepare it on this server first if needed, and rename it. */
    private void onBind(ByteBuf frame) {
        int start = frame.readerIndex();
        ByteBuf body = frame.duplicate().skipBytes(5);
        String portal = CStrings.read(body);
        int nameStart = body.readerIndex();
        String name = CStrings.read(body);
        Statement statement = statements.get(name);
        if (statement == null) {
            frame.release();
            answerError("26000", "prepared statement \"" + name + "\" does not exist");
            return;
        }
        pool().binds.increment();
        prepareOnServer(statement);
        // New header with the server-side name; the parameters travel as a slice, not a copy.
        byte[] serverName = statement.serverName.getBytes(StandardCharsets.US_ASCII);
        int restStart = body.readerIndex();
        int restLength = frame.writerIndex() - restStart;
        int length = 4 + (nameStart - start - 5) + serverName.length + 1 + restLength;
        ByteBuf header = channel.alloc().buffer(5 + nameStart - start - 5 + serverName.length + 1);
        header.writeByte(Messages.BIND).writeInt(length);
        header.writeBytes(frame, start + 5, nameStart - start - 5);
        header.writeBytes(serverName).writeByte(0);
        ByteBuf renamed =
                channel.alloc()
                        .compositeBuffer(2)
                        .addComponents(true, header, frame.retainedSlice(restStart, restLength));
        frame.release();
        // The portal name is kept as is: portals live only inside one transaction on one server.
        expect(ExpectedReply.BIND);
        server.write(renamed);
        wroteToServer = true;
    }

    /** Describe or Close of a named statement ('S'); portals pass through. */
    private void onDescribeOrClose(ByteBuf frame, boolean describe) {
        ByteBuf body = frame.duplicate().skipBytes(6); // header and 'S' (needsMapping checked it)
        String name = CStrings.read(body);
        frame.release();
        if (!describe) {
            // Close: the client's name goes; the shared statement stays prepared on servers.
            Statement statement = statements.remove(name);
            answer(ExpectedReply.closeComplete(statement, name));
            return;
        }
        Statement statement = statements.get(name);
        if (statement == null) {
            answerError("26000", "prepared statement \"" + name + "\" does not exist");
            return;
        }
        prepareOnServer(statement);
        byte[] serverName = statement.serverName.getBytes(StandardCharsets.US_ASCII);
        ByteBuf renamed =
                channel.alloc()
                        .buffer(7 + serverName.length)
                        .writeByte(Messages.DESCRIBE)
                        .writeInt(6 + serverName.length)
                        .writeByte('S')
                        .writeBytes(serverName)
                        .writeByte(0);
        expect(ExpectedReply.DESCRIBE);
        server.write(renamed);
        wroteToServer = true;
    }

    private void prepareOnServer(Statement statement) {
        if (server.prepared.get(statement) != null) {
            return;
        }
        makeRoomOnServer();
        server.prepared.put(statement, Boolean.TRUE);
        server.write(statement.parseMessage(channel.alloc()));
        pool().serverParses.increment();
        expect(ExpectedReply.injectedParse(statement));
        wroteToServer = true;
    }

    /**
     * Keeps the server's statements within max_prepared_statements, least recently used out first.
     * Evicting one that an earlier request in this pipeline uses is safe: the server handles
     * requests in order, and a later Bind finds it missing here and prepares it again.
     */
    private void makeRoomOnServer() {
        int max = relay.config().maxPreparedStatements();
        var it = server.prepared.keySet().iterator();
        while (server.prepared.size() >= max && it.hasNext()) {
            Statement evicted = it.next();
            it.remove();
            byte[] serverName = evicted.serverName.getBytes(StandardCharsets.US_ASCII);
            server.write(
                    channel.alloc()
                            .buffer(7 + serverName.length)
                            .writeByte(Messages.CLOSE)
                            .writeInt(6 + serverName.length)
                            .writeByte('S')
                            .writeBytes(serverName)
                            .writeByte(0));
            expect(ExpectedReply.EVICTION_CLOSE);
        }
    }

    /**
     * A request that will get no reply (failed or skipped): undo what it did to the statement maps.
     */
    private void undo(ExpectedReply reply, boolean serverStillHasIt) {
        switch (reply.kind) {
            case PARSE -> {
                if (reply.statement != null) {
                    if (server != null) {
                        server.prepared.remove(reply.statement);
                    }
                    dropClientName(reply.clientName, reply.statement);
                }
            }
            case INJECTED_PARSE -> {
                if (server != null && !serverStillHasIt) {
                    server.prepared.remove(reply.statement);
                }
            }
            case SYNTHESIZED_PARSE_COMPLETE -> dropClientName(reply.clientName, reply.statement);
            case SYNTHESIZED_CLOSE_COMPLETE -> {
                if (reply.statement != null && !statements.containsKey(reply.clientName)) {
                    statements.put(reply.clientName, reply.statement);
                } else if (reply.statement != null) {
                    relay.preparedStatements().release(reply.statement);
                }
            }
            case SYNTHESIZED_ERROR -> reply.error.release();
            default -> {}
        }
    }

    private void dropClientName(String name, Statement statement) {
        if (statements.get(name) == statement) {
            statements.remove(name);
            relay.preparedStatements().release(statement);
        }
    }

    /**
     * DEALLOCATE ALL / DISCARD ALL ran: the client's names are gone, and so is everything on that
     * server.
     */
    private void forgetAllStatements() {
        for (Statement s : statements.values()) {
            relay.preparedStatements().release(s);
        }
        statements.clear();
        if (server != null) {
            server.prepared.clear();
        }
    }

    /** Requests that fail without reaching a server: answer each one as PostgreSQL would. */
    private void absorbFailed(ByteBuf frame) {
        byte type = Messages.type(frame);
        frame.release();
        if (skipUntilSync == null) {
            if (type == Messages.QUERY || type == Messages.SYNC || type == Messages.FUNCTION_CALL) {
                replyError(failNext);
                failNext = null;
                return;
            }
            if (type == Messages.COPY_DATA
                    || type == Messages.COPY_DONE
                    || type == Messages.COPY_FAIL) {
                return;
            }
            skipUntilSync = failNext;
            failNext = null;
        }
        if (type == Messages.SYNC) {
            if (skipUntilSync == ALREADY_REPORTED) {
                channel.write(Messages.readyForQueryIdle());
                channel.flush();
            } else {
                replyError(skipUntilSync);
            }
            skipUntilSync = null;
        }
    }

    private void replyError(ErrorResponse error) {
        relay.metrics().error(error.sqlState());
        channel.write(error.withSeverity("ERROR").encode(channel.alloc()));
        channel.write(Messages.readyForQueryIdle());
        channel.flush();
    }

    // ---------------------------------------------------------------- leasing

    private void requestServer(ServerPool pool) {
        lease = new Lease(pool);
        homePool = pool;
        waitingSinceNanos = System.nanoTime();
        Lease requested = lease;
        acquiring = true;
        try {
            pool.pool().acquire(requested);
        } finally {
            acquiring = false;
        }
        // Not granted at once: reads go on (a client normally sends nothing more until it has
        // its answer); only a client that keeps pipelining while it waits is paused, in
        // onClientFrame. Toggling autoRead costs an epoll_ctl each way, per waiting transaction.
    }

    /**
     * A request for a server connection; answered on any thread, acted on in this session's loop.
     */
    private final class Lease implements Waiter<ServerConnection> {
        final ServerPool pool;

        Lease(ServerPool pool) {
            this.pool = pool;
        }

        @Override
        public Object affinity() {
            return loop;
        }

        @Override
        public boolean granted(ServerConnection connection) {
            int[] depth = INLINE_GRANTS.get();
            if (loop.inEventLoop() && (acquiring || depth[0] < MAX_INLINE_GRANTS)) {
                // Same thread: take the connection now, inside our own acquire() or inside the
                // release that handed it over, instead of one task-queue round later. A release
                // inside onGranted (login, not yet writable) recurses into the next waiter, so
                // the depth is bounded and deeper grants go through the task queue.
                depth[0]++;
                try {
                    takeGranted(this, connection);
                } finally {
                    depth[0]--;
                }
            } else {
                loop.execute(() -> takeGranted(this, connection));
            }
            return true;
        }

        @Override
        public void failed(PoolException e) {
            loop.execute(() -> onLeaseFailed(this, e));
        }
    }

    /**
     * Takes a granted connection over, and makes sure a failure while doing so cannot leave it in
     * two hands: whatever is thrown, a connection this session still holds (linked, or granted and
     * not yet handed back) is closed, not returned to the pool, and the client is disconnected. The
     * pool never sees the exception, so it cannot take back a connection the session still points
     * at.
     */
    private void takeGranted(Lease granted, ServerConnection conn) {
        inHand = conn;
        try {
            onGranted(granted, conn);
        } catch (RuntimeException | AssertionError | LinkageError e) {
            log.error(
                    "client {}: failed while taking over server connection {}; closing both",
                    id,
                    conn,
                    e);
            boolean ours = inHand == conn || server == conn;
            if (server == conn) {
                server = null;
                probing = false;
                injectedReplies = 0;
                conn.unlink();
            }
            if (ours) {
                conn.pool().pool().discard(conn, "its client failed while taking it over");
            }
            if (lease == granted) {
                lease = null;
            }
            fatal(
                    ErrorResponse.fatal(
                            SqlState.INTERNAL_ERROR,
                            "internal error in pgrelay while assigning a server"
                                    + " connection; the connection is closed"));
        } finally {
            inHand = null;
        }
    }

    /** Returns a granted connection to the pool unused; from then on it is the pool's alone. */
    private void handBack(ServerConnection conn) {
        inHand = null;
        conn.pool().pool().release(conn);
    }

    private void onGranted(Lease granted, ServerConnection conn) {
        if (granted != lease || state == State.CLOSED) {
            handBack(conn);
            return;
        }
        lease = null;
        readRetries = 0;
        readRetryAvoids = null;
        unblock(BLOCKED_WAITING);
        long waited = System.nanoTime() - waitingSinceNanos;
        waitingSinceNanos = 0;
        granted.pool.waitMicros.add(waited / 1000);
        relay.metrics().clientWait(role, waited);
        granted.pool.learnWelcome(conn);
        if (state == State.LOGGING_IN) {
            handBack(conn);
            completeLogin(granted.pool);
            return;
        }
        if (role == Role.PRIMARY && relay.patroni() != null) {
            relay.reportHotStandby(conn.backend(), conn.parameters.get("in_hot_standby"));
            if (!conn.backend().equals(relay.router().route(Role.PRIMARY).orElse(null))) {
                if (conn.backend().equals(probeCandidate().orElse(null))) {
                    // The etcd leader, not yet confirmed: PostgreSQL reports in_hot_standby only
                    // at login and when it next answers, so ask it (an empty query) before
                    // deciding.
                    server = conn;
                    inHand = null;
                    conn.link(this);
                    probing = true;
                    block(BLOCKED_WAITING);
                    injectedReplies++;
                    // PostgreSQL before 14 has no in_hot_standby: ask pg_is_in_recovery() instead.
                    boolean reports = conn.parameters.containsKey("in_hot_standby");
                    conn.write(
                            Messages.query(
                                    channel.alloc(), reports ? "" : "SELECT pg_is_in_recovery()"));
                    conn.flush();
                    return;
                }
                notWritable(conn);
                return;
            }
        }
        attach(conn);
    }

    /**
     * Still in recovery, or the leader moved (or a switchover began) while we waited: never start a
     * write transaction on anything but the confirmed leader.
     */
    private void notWritable(ServerConnection conn) {
        log.debug(
                "client {}: {} is not the writable primary (in_hot_standby {})",
                id,
                conn.backend(),
                conn.parameters.get("in_hot_standby"));
        handBack(conn);
        hold(
                "no writable primary: " + relay.noPrimaryReason(),
                relay.config().leaderWaitTimeout(),
                SqlState.CANNOT_CONNECT_NOW);
    }

    /** The probe's answer is in: go on with this connection, or let it go and wait. */
    private void onProbeAnswered(ServerConnection conn) {
        probing = false;
        server = null;
        conn.unlink();
        unblock(BLOCKED_WAITING);
        if (conn.backend().equals(relay.router().route(Role.PRIMARY).orElse(null))
                && conn.isUsable()) {
            attach(conn);
        } else {
            notWritable(conn);
        }
    }

    /** Links a granted server connection: parameters synchronized, queued requests sent. */
    private void attach(ServerConnection conn) {
        server = conn;
        inHand = null;
        conn.link(this);
        java.util.function.Consumer<ServerConnection> fault = attachFaultForTests;
        if (fault != null) {
            fault.accept(conn);
        }
        if (!conn.isUsable()) {
            // It died between the pool handing it out and now. Linking first and checking second
            // (both volatile) means either we see it dead here or its close reaches us: never
            // neither.
            server = null;
            conn.unlink();
            conn.pool().pool().discard(conn, "closed before use");
            if (!pending.isEmpty()) {
                startLease();
            }
            return;
        }
        if (!channel.isWritable()) {
            conn.setAutoRead(false);
        }
        if (internedValues == null) {
            shareValues(SessionParameters.intern(values));
        }
        if (conn.syncedTo != internedValues) {
            String sync = SessionParameters.synchronize(values, conn.parameters);
            if (sync != null) {
                conn.write(Messages.query(channel.alloc(), sync));
                injectedReplies++;
                wroteToServer = true;
            }
            conn.syncedTo = internedValues;
        }
        while (!pending.isEmpty() && server != null) {
            onClientFrame(pending.poll());
        }
        if (pending.isEmpty()) {
            pendingBytes = 0;
        }
        if (wroteToServer && server != null) {
            server.flush();
        }
        wroteToServer = false;
    }

    private void onLeaseFailed(Lease failed, PoolException e) {
        if (failed != lease || state == State.CLOSED) {
            return;
        }
        lease = null;
        waitingSinceNanos = 0;
        unblock(BLOCKED_WAITING);
        if (relay.pools().wasRemoved(failed.pool, e)) {
            startLease(); // removed as unused just as we asked: its successor will serve us
            return;
        }
        ErrorResponse error =
                switch (e.reason()) {
                    case WAIT_TIMEOUT ->
                            ErrorResponse.error(
                                    SqlState.QUERY_CANCELED,
                                    "query_wait_timeout: no server connection to "
                                            + failed.pool.key().backend()
                                            + " became free within "
                                            + relay.config()
                                                    .poolSettings()
                                                    .queryWaitTimeout()
                                                    .toSeconds()
                                            + " s");
                    case CONNECT_FAILED ->
                            e.getCause() instanceof ServerLoginException sle
                                    ? sle.error()
                                    : ErrorResponse.error(
                                            SqlState.CONNECTION_FAILURE,
                                            "could not connect to server "
                                                    + failed.pool.key().backend()
                                                    + ": "
                                                    + e.getMessage());
                    case CLOSED ->
                            ErrorResponse.error(
                                    SqlState.ADMIN_SHUTDOWN, "pgrelay is shutting down");
                };
        if (e.reason() == PoolException.Reason.CONNECT_FAILED
                && relay.patroni() != null
                && isUnavailable(error.sqlState())) {
            Backend backend = failed.pool.key().backend();
            if (role == Role.PRIMARY) {
                // The leader went away (killed, shutting down) before etcd says so: stop routing
                // writes to it and wait for the next leader instead of failing.
                relay.reportUnavailable(backend);
                hold(
                        "no writable primary: "
                                + relay.noPrimaryReason()
                                + "; "
                                + backend
                                + ": "
                                + error.message(),
                        relay.config().leaderWaitTimeout(),
                        SqlState.CANNOT_CONNECT_NOW);
                return;
            }
            if (++readRetries <= 3) {
                readRetryAvoids = backend;
                // A replica that is stopping: the round robin moves on to the next one.
                startLease();
                return;
            }
        }
        if (state == State.LOGGING_IN) {
            fatal(error.withSeverity("FATAL"));
            return;
        }
        failRequests(error);
    }

    /**
     * Errors that say the server is not there (now), as opposed to "you may not" or "no such
     * database".
     */
    private static boolean isUnavailable(String sqlState) {
        return sqlState.startsWith("08")
                || sqlState.equals("57P01")
                || sqlState.equals("57P02")
                || sqlState.equals(SqlState.CANNOT_CONNECT_NOW);
    }

    /**
     * Fails every queued request in order; an extended batch without its Sync yet fails at that
     * Sync.
     */
    private void failRequests(ErrorResponse error) {
        if (state == State.LOGGING_IN) {
            fatal(error.withSeverity("FATAL"));
            return;
        }
        failNext = null;
        pendingBytes = 0;
        while (!pending.isEmpty()) {
            ByteBuf frame = pending.poll();
            if (skipUntilSync == null && failNext == null) {
                failNext = error;
            }
            absorbFailed(frame);
        }
        failNext = null;
    }

    // ---------------------------------------------------------------- relay: server → client

    /**
     * Relays a run of complete server messages starting at {@code from} (the caller owns the run).
     * Replies that decide nothing go to the client as slices of the run, one per stretch of
     * consecutive bytes, so a result set costs one write however many rows it has; the messages
     * that drive decisions (ReadyForQuery, ParameterStatus, ErrorResponse, ...) and everything
     * while injected replies are outstanding go through {@link #onServerFrame} one by one. Returns
     * where this client's part ends: the run's end, or just past a message that unlinked the
     * connection (ReadyForQuery handing it back), whose rest belongs to others.
     */
    int onServerMessages(ServerConnection conn, ByteBuf run, int from) {
        int end = run.writerIndex();
        if (conn != server || state == State.CLOSED) {
            return end;
        }
        int relayFrom = from;
        int i = from;
        while (i < end) {
            byte type = run.getByte(i);
            int next = Messages.end(run, i);
            if (injectedReplies == 0 && isPlainReply(type, run, i)) {
                ExpectedReply head = expected.peek();
                if (head != null && head.isTerminal(type)) {
                    expected.poll();
                    if (head.isSwallowed()) {
                        relay(run, relayFrom, i);
                        relayFrom = next;
                    }
                    if (!expected.isEmpty() && expected.peek().isSynthesized()) {
                        relay(run, relayFrom, next);
                        relayFrom = next;
                        emitSynthesizedHead();
                    }
                }
                i = next;
                continue;
            }
            relay(run, relayFrom, i);
            onServerFrame(conn, run.retainedSlice(i, next - i));
            i = next;
            relayFrom = next;
            if (conn != server || state == State.CLOSED) {
                return next;
            }
        }
        relay(run, relayFrom, end);
        return end;
    }

    /**
     * True for replies that need nothing from {@link #onServerFrame} beyond the expected-reply
     * queue.
     */
    private boolean isPlainReply(byte type, ByteBuf run, int index) {
        return switch (type) {
            case Messages.READY_FOR_QUERY,
                    Messages.PARAMETER_STATUS,
                    Messages.ERROR_RESPONSE,
                    Messages.COPY_IN_RESPONSE,
                    Messages.NOTICE_RESPONSE,
                    NOTIFICATION_RESPONSE ->
                    false;
            case COMMAND_COMPLETE -> !mapStatements || !isDeallocateAll(run, index);
            default -> true;
        };
    }

    /** Writes bytes [from, to) of a run to the client, as one retained slice. */
    private void relay(ByteBuf run, int from, int to) {
        if (to > from) {
            toClient(run.retainedSlice(from, to - from));
        }
    }

    void onServerFrame(ServerConnection conn, ByteBuf frame) {
        if (conn != server || state == State.CLOSED) {
            frame.release();
            return;
        }
        byte type = Messages.type(frame);
        if (injectedReplies > 0) {
            onInjectedReply(type, frame);
            return;
        }
        switch (type) {
            case Messages.READY_FOR_QUERY -> {
                onReadyForQuery(frame);
                return;
            }
            case Messages.PARAMETER_STATUS -> {
                ByteBuf body = frame.duplicate().skipBytes(5);
                String name = CStrings.read(body);
                String value = CStrings.read(body);
                conn.parameters.put(name, value);
                conn.syncedTo = null;
                if (values == internedValues) {
                    values = new HashMap<>(values);
                }
                values.put(name, value);
                internedValues = null;
                if (name.equals("application_name")) {
                    applicationName = value;
                } else if (name.equals("in_hot_standby")) {
                    relay.reportHotStandby(conn.backend(), value);
                }
                toClient(frame);
                return;
            }
            case Messages.NOTICE_RESPONSE, NOTIFICATION_RESPONSE -> {
                toClient(frame);
                return;
            }
            case Messages.ERROR_RESPONSE -> {
                onServerError(frame);
                return;
            }
            case Messages.COPY_IN_RESPONSE -> copyIn = true;
            case COMMAND_COMPLETE -> {
                if (mapStatements && isDeallocateAll(frame, frame.readerIndex())) {
                    forgetAllStatements();
                }
            }
            default -> {}
        }
        ExpectedReply head = expected.peek();
        if (head != null && head.isTerminal(type)) {
            expected.poll();
            if (head.isSwallowed()) {
                frame.release();
            } else {
                toClient(frame);
            }
            emitSynthesizedHead();
        } else {
            toClient(frame);
        }
    }

    private static final byte NOTIFICATION_RESPONSE = 'A';
    private static final byte DATA_ROW = 'D';
    private static final byte COMMAND_COMPLETE = 'C';

    private void toClient(ByteBuf frame) {
        bytesOut += frame.readableBytes();
        channel.write(frame, channel.voidPromise());
        wroteToClient = true;
    }

    private void emitSynthesizedHead() {
        while (!expected.isEmpty() && expected.peek().isSynthesized()) {
            emit(expected.poll());
        }
    }

    /**
     * Whether the CommandComplete message at {@code index} reports DISCARD ALL or DEALLOCATE ALL.
     */
    private static boolean isDeallocateAll(ByteBuf buf, int index) {
        int length = buf.getInt(index + 1) - 5; // the tag, without its terminating zero
        if (length != 11 && length != 14) {
            return false;
        }
        String tag = buf.toString(index + 5, length, StandardCharsets.US_ASCII);
        return tag.equals("DISCARD ALL") || tag.equals("DEALLOCATE ALL");
    }

    private void onServerError(ByteBuf frame) {
        ErrorResponse error = ErrorResponse.decode(frame);
        relay.metrics().error(error.sqlState());
        if (error.isFatal()) {
            // The server closes next; the error is reported then, as a plain ERROR, so the
            // client connection survives its server.
            serverFatal = error;
            frame.release();
            return;
        }
        ExpectedReply head = expected.peek();
        if (head != null && !head.endsWithReadyForQuery()) {
            // An extended-protocol request failed: the server now skips to the next Sync.
            expected.poll();
            undo(head, false);
            while (!expected.isEmpty() && expected.peek().kind != ExpectedReply.Kind.SYNC) {
                undo(expected.poll(), false);
            }
            serverSkipping = expected.isEmpty();
        }
        toClient(frame);
    }

    private void onReadyForQuery(ByteBuf frame) {
        txStatus = Messages.transactionStatus(frame);
        while (!expected.isEmpty()) {
            ExpectedReply done = expected.poll();
            if (done.endsWithReadyForQuery()) {
                break;
            }
            log.warn(
                    "client {}: ReadyForQuery while still expecting a reply to {}",
                    channel.remoteAddress(),
                    LogSafe.escape(done.toString(), 300));
            undo(done, true);
        }
        long now = System.nanoTime();
        lastActivityNanos = now;
        countCompleted(now);
        toClient(frame);
        emitSynthesizedHead();
        // An open batch (a Flush after a Query, say) keeps the connection: an error still to come
        // would leave the server skipping to a Sync that only this client will send.
        if (txStatus == Messages.IDLE
                && expected.isEmpty()
                && !clientSkipping
                && !copyIn
                && !batchOpen
                && (poolMode == PoolMode.TRANSACTION || closeWhenIdle)) {
            channel.flush();
            wroteToClient = false;
            releaseServer();
            if (closeWhenIdle) {
                fatal(ErrorResponse.fatal(SqlState.ADMIN_SHUTDOWN, "pgrelay is shutting down"));
            }
        }
    }

    private void onInjectedReply(byte type, ByteBuf frame) {
        if (type == Messages.PARAMETER_STATUS) {
            ByteBuf body = frame.duplicate().skipBytes(5);
            String name = CStrings.read(body);
            if (name.equals("in_hot_standby")) {
                String value = CStrings.read(body);
                server.parameters.put(name, value);
                relay.reportHotStandby(server.backend(), value);
            }
        } else if (type == DATA_ROW && probing) {
            // The answer to SELECT pg_is_in_recovery(): one column, 't' or 'f'.
            if (frame.readableBytes() >= 12 && frame.getInt(frame.readerIndex() + 7) == 1) {
                boolean inRecovery = frame.getByte(frame.readerIndex() + 11) == 't';
                relay.reportHotStandby(server.backend(), inRecovery ? "on" : "off");
            }
        } else if (type == Messages.ERROR_RESPONSE) {
            injectedError = ErrorResponse.decode(frame);
        } else if (type == Messages.READY_FOR_QUERY) {
            injectedReplies--;
            if (probing && injectedReplies == 0) {
                frame.release();
                onProbeAnswered(server);
                return;
            }
            if (injectedError != null) {
                // PostgreSQL would have refused these startup parameters at login.
                ErrorResponse error = injectedError;
                injectedError = null;
                server.markBroken();
                frame.release();
                fatal(error.withSeverity("FATAL"));
                return;
            }
        }
        frame.release();
    }

    void onServerReadComplete(ServerConnection conn) {
        if (wroteToClient) {
            wroteToClient = false;
            channel.flush();
        }
    }

    void onServerWritabilityChanged(ServerConnection conn, boolean writable) {
        if (conn != server) {
            return;
        }
        if (writable) {
            unblock(BLOCKED_BACKPRESSURE);
        } else {
            block(BLOCKED_BACKPRESSURE);
        }
    }

    void onServerClosed(ServerConnection conn) {
        if (conn != server) {
            return;
        }
        if (probing) {
            probing = false;
            server = null;
            injectedReplies = 0;
            serverFatal = null;
            conn.pool().pool().discard(conn, "closed while probing");
            unblock(BLOCKED_WAITING);
            if (state != State.CLOSED) {
                relay.reportUnavailable(conn.backend());
                hold(
                        "no writable primary: " + relay.noPrimaryReason(),
                        relay.config().leaderWaitTimeout(),
                        SqlState.CANNOT_CONNECT_NOW);
            }
            return;
        }
        ErrorResponse error =
                serverFatal != null
                        ? serverFatal
                        : ErrorResponse.error(
                                SqlState.CONNECTION_FAILURE,
                                "server connection to " + conn.backend() + " was lost");
        serverFatal = null;
        int unanswered = 0;
        boolean unsynced = serverSkipping || clientSkipping;
        while (!expected.isEmpty()) {
            ExpectedReply r = expected.poll();
            if (r.endsWithReadyForQuery()) {
                unanswered++;
                unsynced = false;
            } else {
                unsynced = true;
            }
            undo(r, false);
        }
        unsynced |= batchOpen; // the client still owes the Sync that ends its batch
        server = null;
        addStatistics(conn.pool());
        queryStartNanos = transactionStartNanos = 0;
        conn.pool().pool().discard(conn, "server closed the connection");
        unblock(BLOCKED_BACKPRESSURE);
        relay.metrics().error(error.sqlState());
        if (state == State.CLOSED) {
            return;
        }
        log.info(
                "client {}: server connection {} pid {} lost: {}",
                channel.remoteAddress(),
                conn.backend(),
                conn.processId(),
                LogSafe.escape(error.toString(), 300));
        if (poolMode == PoolMode.SESSION) {
            fatal(error.withSeverity("FATAL"));
            return;
        }
        for (int i = 0; i < unanswered; i++) {
            channel.write(error.withSeverity("ERROR").encode(channel.alloc()));
            channel.write(Messages.readyForQueryIdle());
        }
        injectedReplies = 0;
        injectedError = null;
        serverSkipping = false;
        clientSkipping = false;
        batchOpen = false;
        if (unsynced) {
            skipUntilSync = error;
        } else if (unanswered == 0 && txStatus != Messages.IDLE) {
            failNext = error;
        }
        copyIn = false;
        txStatus = Messages.IDLE;
        channel.flush();
        // Frames queued meanwhile now need a new server.
        if (!pending.isEmpty() && lease == null) {
            List<ByteBuf> queued = new ArrayList<>(pending);
            pending.clear();
            pendingBytes = 0;
            queued.forEach(this::onClientFrame);
        }
    }

    private void countCompleted(long now) {
        if (queryStartNanos != 0) {
            long q = now - queryStartNanos;
            queryCount++;
            queryNanos += q;
            relay.metrics().query(role, q);
            queryStartNanos = expected.isEmpty() ? 0 : now;
        }
        if (txStatus == Messages.IDLE && transactionStartNanos != 0) {
            long x = now - transactionStartNanos;
            transactionCount++;
            transactionNanos += x;
            relay.metrics().transaction(role, x);
            transactionStartNanos = queryStartNanos;
            addStatistics(server.pool());
        }
    }

    /** Adds what this client counted while holding a server connection to that pool's totals. */
    private void addStatistics(ServerPool pool) {
        pool.bytesReceived.add(bytesIn);
        pool.bytesSent.add(bytesOut);
        pool.queries.add(queryCount);
        pool.queryMicros.add(queryNanos / 1000);
        pool.transactions.add(transactionCount);
        pool.transactionMicros.add(transactionNanos / 1000);
        bytesIn = bytesOut = queryCount = queryNanos = transactionCount = transactionNanos = 0;
    }

    private void releaseServer() {
        ServerConnection conn = server;
        server = null;
        unblock(BLOCKED_BACKPRESSURE);
        conn.unlink();
        conn.pool().pool().release(conn);
    }

    private ServerPool pool() {
        return server.pool();
    }

    // ---------------------------------------------------------------- timeouts, shutdown, close

    /** Runs on this session's loop, about once a second. */
    void checkTimeouts(long now) {
        if (state == State.CLOSED) {
            return;
        }
        long idle = now - lastActivityNanos;
        if (state != State.READY) {
            long login = relay.config().clientLoginTimeout().toNanos();
            if (login > 0 && now - connectedAtNanos > login && !held) {
                fatal(
                        ErrorResponse.fatal(
                                SqlState.CONNECTION_FAILURE,
                                "client_login_timeout: login took too long"));
            }
            return;
        }
        if (held && now - holdDeadlineNanos > 0) {
            held = false;
            relay.unhold(this);
            unblock(BLOCKED_WAITING);
            long waitedSeconds = (now - heldSinceNanos) / 1_000_000_000L;
            failRequests(
                    ErrorResponse.error(
                            holdSqlState, holdReason + " (waited " + waitedSeconds + " s)"));
            return;
        }
        long clientIdle = relay.config().clientIdleTimeout().toNanos();
        if (clientIdle > 0
                && server == null
                && lease == null
                && !held
                && admin == null
                && idle > clientIdle) {
            fatal(ErrorResponse.fatal("57P05", "client_idle_timeout: closing idle connection"));
            return;
        }
        long idleTx = relay.config().idleTransactionTimeout().toNanos();
        if (idleTx > 0
                && server != null
                && txStatus != Messages.IDLE
                && expected.isEmpty()
                && idle > idleTx) {
            fatal(
                    ErrorResponse.fatal(
                            SqlState.IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
                            "terminating connection due to idle-in-transaction timeout (idle_transaction_timeout)"));
        }
    }

    /** Graceful shutdown: idle clients go now, clients inside a transaction when it ends. */
    void shutdown() {
        if (state == State.CLOSED) {
            return;
        }
        if (state != State.READY || (server == null && lease == null)) {
            fatal(ErrorResponse.fatal(SqlState.ADMIN_SHUTDOWN, "pgrelay is shutting down"));
        } else {
            closeWhenIdle = true;
        }
    }

    /** Forwards a cancel request to the server this client holds right now, if any. */
    void cancelCurrentQuery() {
        ServerConnection conn = server;
        if (conn != null) {
            relay.sendCancel(conn.backend(), conn.processId(), conn.secretKey());
        }
    }

    private void fatal(ErrorResponse error) {
        if (channel.isActive() && state != State.CLOSED) {
            relay.metrics().error(error.sqlState());
            // Closing while the client's bytes are still unread makes the kernel send a reset,
            // which can overtake the error on its way to the client. So: error, then FIN, keep
            // reading (and dropping) until the client closes, or a second has passed.
            channel.config().setAutoRead(true);
            channel.writeAndFlush(error.encode(channel.alloc()))
                    .addListener(
                            (ChannelFutureListener)
                                    f -> {
                                        if (f.isSuccess()
                                                && f.channel() instanceof DuplexChannel duplex) {
                                            duplex.shutdownOutput();
                                            f.channel()
                                                    .eventLoop()
                                                    .schedule(
                                                            () -> {
                                                                f.channel().close();
                                                            },
                                                            1,
                                                            TimeUnit.SECONDS);
                                        } else {
                                            f.channel().close();
                                        }
                                    });
        } else {
            channel.close();
        }
        state = State.CLOSED;
        cleanup();
    }

    private void block(int reason) {
        if (readBlocks == 0) {
            channel.config().setAutoRead(false);
        }
        readBlocks |= reason;
    }

    private void unblock(int reason) {
        if (readBlocks == 0) {
            return;
        }
        readBlocks &= ~reason;
        if (readBlocks == 0) {
            channel.config().setAutoRead(true);
        }
    }

    private boolean cleanedUp;

    /** An unexpected exception was thrown while serving this client. */
    private boolean internalError;

    private void cleanup() {
        state = State.CLOSED;
        if (cleanedUp) {
            return;
        }
        cleanedUp = true;
        if (admin != null) {
            admin.close();
        }
        if (held) {
            held = false;
            relay.unhold(this);
        }
        if (lease != null) {
            lease.pool.pool().cancel(lease);
            lease = null;
        }
        while (!pending.isEmpty()) {
            pending.poll().release();
        }
        if (server != null) {
            ServerConnection conn = server;
            server = null;
            addStatistics(conn.pool());
            conn.unlink();
            boolean clean =
                    !internalError
                            && !batchOpen
                            && expected.isEmpty()
                            && !serverSkipping
                            && !clientSkipping
                            && !copyIn
                            && txStatus == Messages.IDLE
                            && injectedReplies == 0
                            && conn.isUsable();
            if (!clean) {
                // Mid-transaction or mid-request: its state is unknown, never hand it to someone
                // else.
                conn.pool()
                        .pool()
                        .discard(
                                conn,
                                "client disconnected with a transaction or request in progress");
            } else if (poolMode == PoolMode.SESSION) {
                conn.resetAndRelease(relay.config().serverResetQuery());
            } else {
                conn.pool().pool().release(conn);
            }
        }
        while (!expected.isEmpty()) {
            undo(expected.poll(), true);
        }
        for (Statement st : statements.values()) {
            relay.preparedStatements().release(st);
        }
        statements.clear();
        if (cancelKey != null) {
            relay.cancelKeys().unregister(cancelKey);
        }
        if (counted) {
            counted = false;
            relay.clientDisconnected(this, loggedIn);
        }
    }
}
