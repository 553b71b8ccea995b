package io.pgrelay.proxy;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.EventLoop;
import io.netty.channel.socket.DuplexChannel;
import io.pgrelay.admin.AdminSession;
import io.pgrelay.config.ProxyConfig;
import io.pgrelay.config.ProxyConfig.PoolMode;
import io.pgrelay.protocol.ErrorResponse;
import io.pgrelay.protocol.FrameDecoder;
import io.pgrelay.protocol.LogSafe;
import io.pgrelay.protocol.Messages;
import io.pgrelay.protocol.SqlState;
import io.pgrelay.routing.Role;
import io.pgrelay.session.ClientParameters;
import io.pgrelay.session.ExpectedReplies;
import io.pgrelay.session.SessionCounters;
import io.pgrelay.session.SessionParameters;
import io.pgrelay.session.SessionState;
import io.pgrelay.session.StartupParser;
import io.pgrelay.session.StatementMapper;
import java.time.Instant;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client connection: startup and login, then the relay to and from whatever server connection
 * it holds, with backpressure, timeouts and cleanup.
 *
 * <p>Everything here runs on the client channel's event loop; no field needs a lock. Server frames
 * arrive through {@link #onServerMessages} on this loop too (ServerConnection hops over when it
 * lives elsewhere). The parts: {@link StartupParser} reads the first packet, {@link
 * PasswordExchange} the login, {@link ServerLease} finds a server connection, {@link LeaderProbe}
 * confirms an unconfirmed leader, {@link ExpectedReplies} counts what the server owes (and says
 * when the connection may go back), {@link StatementMapper} renames prepared statements in
 * transaction mode, {@link SessionCounters} keeps the statistics, {@link ReplyRelay} relays and
 * acts on the server's replies, {@link PendingRequests} holds what waits for a server, {@link
 * ClientOutput} writes and flushes towards the client.
 *
 * <p>One transaction: the client's Query arrives in {@link #channelRead}; with no server linked it
 * is queued and {@link ServerLease#start} asks the pool; the grant {@link #attach}es the
 * connection, brings its parameters in line and sends what was queued; replies come back through
 * {@link #onServerMessages} to the {@link ReplyRelay}, relayed as slices of the server's read; the
 * ReadyForQuery that leaves nothing owed in transaction mode hands the connection back ({@link
 * #releaseServer}).
 *
 * <p>When a server connection is lost, or no server can be had, every request the client is waiting
 * on is answered with an ErrorResponse and ReadyForQuery, an unfinished extended batch is skipped
 * up to its Sync (as PostgreSQL itself does after an error), and the client connection stays open
 * for its next transaction.
 */
final class ClientSession extends ChannelInboundHandlerAdapter {

    private static final Logger log = LoggerFactory.getLogger(ClientSession.class);

    /**
     * How long a draining client must have been between transactions before it is closed. Pools
     * hand out a connection used moments ago without checking it (HikariCP checks one idle for more
     * than 500 ms), so closing sooner would fail the application's next statement; one idle this
     * long is checked first, and a closed one is quietly replaced.
     */
    private static final long DRAIN_IDLE_NANOS = TimeUnit.SECONDS.toNanos(1);

    /** Tests only: runs right after a granted connection is linked, to make that path throw. */
    static volatile Consumer<ServerConnection> attachFaultForTests;

    private enum State {
        STARTUP,
        AUTHENTICATING,
        LOGGING_IN,
        READY,
        CLOSED
    }

    private final SessionServices relay;
    private final Role role;
    private final long connectedAtNanos = System.nanoTime();
    final long id;
    final Instant connectedAt = Instant.now();

    private Channel channel;
    private EventLoop loop;
    private volatile State state = State.STARTUP;

    /** Holds a slot in ClientSlots: a login slot until {@link #loggedIn}, then a client slot. */
    private boolean counted;

    private boolean loggedIn;
    private String user;
    private String database;
    private volatile String applicationName = "";
    private boolean consoleDatabase;

    /** What the client asked for at startup, until it is greeted. */
    private StartupParser.Startup startup;

    /** The client's session parameters, kept in line on every server it gets. */
    private final ClientParameters parameters = new ClientParameters();

    private CancelKeys.Key cancelKey;

    /** The first packet and the password exchange, until the client is in. */
    private ClientLogin login;

    /** Set for clients of the admin console database. */
    private AdminSession admin;

    private volatile ServerConnection server;
    private ServerLease lease;
    private final LeaderProbe probe;

    /** Transaction mode: the client's statement names map to shared, renamed statements. */
    private final boolean mapStatements;

    /** Decided once: a reload does not turn a session's server connection into a shared one. */
    private final PoolMode poolMode;

    private StatementMapper statements;
    private ExpectedReplies replies;

    /**
     * Transaction mode with track_session_state: what the client's session holds beyond its
     * settings, and whether the server must be asked after this transaction. Null otherwise.
     */
    private final SessionState session;

    /** The pins of {@link #session}, counted in the pool and the metrics; null with it. */
    private final SessionPins pins;

    private final SessionCounters counters;

    /** Queries pgrelay sent itself (parameter sync, the leader probe), whose replies it drops. */
    private final InjectedQueries injected;

    private ClientOutput output;
    private ReplyRelay replyRelay;
    private ReadPause readPause;
    private RequestRelay requests;

    /**
     * A client read is being handled. A connection granted inside it (an idle one on this loop) is
     * not flushed when linked but at the read's end, with the rest of the read: flushed at once,
     * the first message of a batch (the Parse of Parse/Bind/Describe/Execute/Sync) would reach
     * PostgreSQL alone, and wake it twice per transaction.
     */
    private boolean reading;

    private boolean closeWhenIdle;
    private boolean draining;
    private volatile long lastActivityNanos = connectedAtNanos;

    /**
     * When the event being handled began (a client read, a connection granted later, a
     * ReadyForQuery): the clock is read once per event, and the event's timestamps (waiting, query
     * start, link) all use that reading.
     */
    private long eventNanos = connectedAtNanos;

    private boolean cleanedUp;

    /** An unexpected exception was thrown while serving this client. */
    private boolean internalError;

    ClientSession(SessionServices relay, Role role) {
        this.relay = relay;
        this.role = role;
        this.id = relay.nextClientId();
        ProxyConfig config = relay.config();
        // Decided once: renaming cannot start or stop in the middle of a session's statements.
        this.mapStatements =
                config.poolMode() == PoolMode.TRANSACTION && config.maxPreparedStatements() > 0;
        this.poolMode = config.poolMode();
        this.session =
                config.poolMode() == PoolMode.TRANSACTION && config.trackSessionState()
                        ? new SessionState()
                        : null;
        this.pins = session == null ? null : new SessionPins(session, relay.metrics());
        this.probe = new LeaderProbe(relay);
        this.injected = new InjectedQueries(relay, probe);
        this.counters = new SessionCounters(relay.metrics().timings(role));
    }

    // ---------------------------------------------------------------- read by the console

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

    /** Why the client keeps its server connection ("temp,listen"); empty when it does not. */
    String pinLabel() {
        SessionState s = session;
        return s == null ? "" : SessionState.label(s.pins());
    }

    /**
     * PgBouncer's client states: login (not logged in yet), waiting (queued for a server), active.
     */
    String stateLabel() {
        State s = state;
        if (s != State.READY) {
            return s == State.CLOSED ? "closed" : "login";
        }
        ServerLease l = lease;
        return l != null && l.isWaiting() ? "waiting" : "active";
    }

    long waitingNanos(long now) {
        ServerLease l = lease;
        return l == null ? 0 : l.waitingNanos(now);
    }

    ServerPool homePool() {
        ServerLease l = lease;
        return l == null ? null : l.homePool();
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

    /** The oldest server login this client may be greeted from (pool.welcome_max_age). */
    long welcomeSinceNanos() {
        return connectedAtNanos - relay.config().welcomeMaxAge().toNanos();
    }

    int preparedStatementCount() {
        StatementMapper mapper = statements;
        return mapper == null ? 0 : mapper.size();
    }

    EventLoop loop() {
        return loop;
    }

    Role role() {
        return role;
    }

    /** Closes this connection if it has still not logged in (ClientSlots making room). */
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

    // ---------------------------------------------------------------- channel events

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
        channel = ctx.channel();
        loop = channel.eventLoop();
        output = new ClientOutput(channel, counters);
        readPause = new ReadPause(channel);
        login = new ClientLogin(relay, channel, new LoginEvents());
        lease = new ServerLease(relay, this, new LeaseEvents(), role);
        statements =
                new StatementMapper(relay.preparedStatements(), relay::config, channel.alloc());
        replies = new ExpectedReplies(statements);
        statements.replyTo(replies);
        statements.reportTo(session);
        replyRelay =
                new ReplyRelay(
                        relay,
                        new ReplyEvents(),
                        channel,
                        output,
                        replies,
                        statements,
                        injected,
                        parameters,
                        counters,
                        session,
                        pins,
                        poolMode,
                        mapStatements);
        requests =
                new RequestRelay(
                        relay,
                        new RequestEvents(),
                        channel,
                        output,
                        lease,
                        probe,
                        replies,
                        statements,
                        replyRelay,
                        counters,
                        session,
                        mapStatements);
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
        eventNanos = System.nanoTime();
        lastActivityNanos = eventNanos;
        reading = true;
        try {
            if (state == State.STARTUP) {
                login.onStartupPacket(in);
                return;
            }
            int i = in.readerIndex();
            int end = in.writerIndex();
            while (i < end && state != State.CLOSED) {
                if (state == State.READY && admin == null) {
                    requests.onMessages(in, i);
                    return;
                }
                int next = Messages.end(in, i);
                onLoginOrConsoleMessage(in.retainedSlice(i, next - i));
                i = next;
            }
        } finally {
            in.release();
        }
    }

    /** One message outside the relay: console, password exchange, queued while logging in. */
    private void onLoginOrConsoleMessage(ByteBuf frame) {
        if (state == State.READY) {
            admin.onFrame(frame);
            if (admin.wantsClose()) {
                state = State.CLOSED;
                channel.close();
            }
            return;
        }
        try {
            if (state == State.AUTHENTICATING) {
                login.onPasswordMessage(frame);
            } else if (state == State.LOGGING_IN) {
                requests.holdDuringLogin(frame.retain());
            }
        } finally {
            frame.release();
        }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
        reading = false;
        requests.flush();
        output.flush();
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
        ClientFault fault = ClientFault.of(cause, channel.remoteAddress(), user);
        if (fault.internal()) {
            // Never released to anyone else: see cleanup.
            internalError = true;
        }
        if (fault.answer() != null) {
            fatal(fault.answer());
        } else {
            state = State.CLOSED;
            ctx.close();
        }
    }

    // ---------------------------------------------------------------- login

    /** What the login reports, acted on here. */
    private final class LoginEvents implements ClientLogin.Session {
        @Override
        public void started(StartupParser.Startup accepted) {
            startup = accepted;
            user = accepted.user();
            database = accepted.database();
            consoleDatabase = accepted.isConsole();
            applicationName = accepted.applicationName();
            state = State.AUTHENTICATING;
        }

        @Override
        public void authenticated() {
            if (!relay.clientLoggedIn(ClientSession.this)) {
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

        @Override
        public void refused(ErrorResponse error) {
            fatal(error);
        }

        @Override
        public void closed() {
            state = State.CLOSED;
            channel.close();
        }

        @Override
        public Role role() {
            return role;
        }

        @Override
        public boolean ended() {
            return state == State.CLOSED;
        }
    }

    /**
     * Greets the client with a pool's welcome; logs in to a server first when no pool knows one.
     */
    private void continueLogin() {
        Map<String, String> startupParameters =
                poolMode == PoolMode.SESSION
                        ? SessionParameters.intern(startup.requested())
                        : Map.of();
        lease.forClient(database, user, startupParameters);
        ServerPool known =
                relay.pools()
                        .withWelcome(database, user, startupParameters, role, welcomeSinceNanos());
        if (known != null) {
            completeLogin(known);
        } else {
            // No welcome from a login as new as this client (settings may have changed since):
            // the pool logs in afresh, and the client is greeted with what that login reported.
            lease.start(eventNanos);
        }
    }

    private void startConsole() {
        admin = login.openConsole(startup);
        if (admin != null) {
            ready();
        }
    }

    private void completeLogin(ServerPool pool) {
        pool.clientLogins.increment();
        lease.home(pool);
        login.greet(
                parameters.start(
                        pool.welcome(), startup.requested(), poolMode == PoolMode.SESSION));
        ready();
        eventNanos = System.nanoTime();
        lastActivityNanos = eventNanos;
        // Anything the client pipelined behind its startup goes through the normal path now.
        if (requests.hasPending()) {
            requests.relayPending();
            channelReadComplete(null);
        }
    }

    /** The greeting's end: the client is in, and the login's state can go. */
    private void ready() {
        cancelKey = relay.cancelKeys().register(this);
        login.ready(cancelKey);
        login = null;
        startup = null;
        state = State.READY;
    }

    // ---------------------------------------------------------------- relay: client → server

    /** What the request relay asks of this session. */
    private final class RequestEvents implements RequestRelay.Client {
        @Override
        public ServerConnection linked() {
            return server;
        }

        @Override
        public boolean ready() {
            return state == State.READY;
        }

        @Override
        public long eventNanos() {
            return eventNanos;
        }

        @Override
        public void terminate() {
            state = State.CLOSED;
            channel.close();
        }

        @Override
        public void pauseReads() {
            readPause.add(ReadPause.WAITING);
        }

        @Override
        public void fatal(ErrorResponse error) {
            ClientSession.this.fatal(error);
        }
    }

    /** Fails every queued request; a client still logging in hears it as a FATAL. */
    private void failRequests(ErrorResponse error) {
        if (state == State.LOGGING_IN) {
            fatal(error.withSeverity("FATAL"));
        } else {
            requests.failPending(error);
        }
    }

    // ---------------------------------------------------------------- taking a server

    /** What the lease reports, acted on here. */
    private final class LeaseEvents implements ServerLease.Client {
        @Override
        public void attach(ServerConnection conn, long now) {
            eventNanos = now;
            ClientSession.this.attach(conn);
        }

        @Override
        public void confirmLeader(ServerConnection conn, long now) {
            eventNanos = now;
            link(conn);
            readPause.add(ReadPause.WAITING);
            injected.sent();
            probe.ask(conn, channel.alloc());
        }

        @Override
        public void waiting(boolean waiting) {
            if (waiting) {
                readPause.add(ReadPause.WAITING);
            } else {
                readPause.remove(ReadPause.WAITING);
            }
        }

        @Override
        public void failed(ErrorResponse error) {
            failRequests(error);
        }

        @Override
        public void fatal(ErrorResponse error) {
            ClientSession.this.fatal(error);
        }

        @Override
        public boolean isClosed() {
            return state == State.CLOSED;
        }

        @Override
        public boolean isLoggingIn() {
            return state == State.LOGGING_IN;
        }

        @Override
        public void welcomed(ServerPool pool) {
            completeLogin(pool);
        }
    }

    /** Called on this loop when whatever held the client may have changed (RESUME, new primary). */
    void retryHeld() {
        if (state == State.CLOSED || !lease.release()) {
            return;
        }
        if (state == State.LOGGING_IN && !lease.isPending()) {
            continueLogin();
        } else if (requests.hasPending() && !lease.isPending() && server == null) {
            eventNanos = System.nanoTime();
            lease.start(eventNanos);
        }
    }

    private void link(ServerConnection conn) {
        server = conn;
        lease.linked(conn);
        conn.link(this, eventNanos);
        statements.use(conn);
    }

    private void unlink(ServerConnection conn) {
        server = null;
        statements.use(null);
        conn.unlink();
    }

    /** The lease's fallback after a failure: unlinks {@code conn} if it is this client's. */
    boolean dropLinked(ServerConnection conn) {
        if (server != conn) {
            return false;
        }
        probe.done();
        injected.reset();
        unlink(conn);
        return true;
    }

    /** The probe's answer is in: go on with this connection, or let it go and wait. */
    private void onProbeAnswered() {
        eventNanos = System.nanoTime();
        ServerConnection conn = probe.done();
        unlink(conn);
        readPause.remove(ReadPause.WAITING);
        if (conn.isUsable() && lease.isPrimary(conn)) {
            attach(conn);
        } else {
            lease.notWritable(conn);
        }
    }

    /** Links a granted server connection: parameters synchronized, queued requests sent. */
    private void attach(ServerConnection conn) {
        lease.served();
        link(conn);
        Consumer<ServerConnection> fault = attachFaultForTests;
        if (fault != null) {
            fault.accept(conn);
        }
        if (!conn.isUsable()) {
            // It died between the pool handing it out and now. Linking first and checking second
            // (both volatile) means either we see it dead here or its close reaches us: never
            // neither.
            unlink(conn);
            conn.pool().pool().discard(conn, "closed before use");
            if (requests.hasPending()) {
                lease.start(eventNanos);
            }
            return;
        }
        if (!channel.isWritable()) {
            conn.setAutoRead(false);
        }
        String sync = conn.synchronizeTo(parameters.interned());
        if (sync != null) {
            relay.metrics().parametersReplayed();
            conn.write(Messages.query(channel.alloc(), sync));
            injected.sent();
            requests.wroteToServer();
        }
        requests.sendPending();
        if (!reading) {
            requests.flush();
        } // else channelReadComplete flushes, once the rest of the read has been added
    }

    // ---------------------------------------------------------------- relay: server → client

    /** Relays a run of server messages; see {@link ReplyRelay#onMessages}. */
    int onServerMessages(ServerConnection conn, ByteBuf run, int from) {
        return replyRelay.onMessages(conn, run, from);
    }

    /** What the reply relay asks of this session. */
    private final class ReplyEvents implements ReplyRelay.Client {
        @Override
        public ServerConnection linked() {
            return server;
        }

        @Override
        public boolean closed() {
            return state == State.CLOSED;
        }

        @Override
        public boolean ready() {
            return state == State.READY;
        }

        @Override
        public boolean closingWhenIdle() {
            return closeWhenIdle;
        }

        @Override
        public CancelKeys.Key cancelKey() {
            return cancelKey;
        }

        @Override
        public void activeAt(long now) {
            eventNanos = now;
            lastActivityNanos = now;
        }

        @Override
        public void applicationName(String value) {
            applicationName = value;
        }

        @Override
        public void releaseServer() {
            ClientSession.this.releaseServer();
        }

        @Override
        public void unlink(ServerConnection conn) {
            ClientSession.this.unlink(conn);
        }

        @Override
        public void probeAnswered() {
            onProbeAnswered();
        }

        @Override
        public void fatal(ErrorResponse error) {
            ClientSession.this.fatal(error);
        }
    }

    void onServerReadComplete(ServerConnection conn) {
        output.flush();
    }

    void onServerWritabilityChanged(ServerConnection conn, boolean writable) {
        if (conn != server) {
            return;
        }
        if (writable) {
            readPause.remove(ReadPause.BACKPRESSURE);
        } else {
            readPause.add(ReadPause.BACKPRESSURE);
        }
    }

    void onServerClosed(ServerConnection conn) {
        if (conn != server) {
            return;
        }
        if (probe.isAsking()) {
            probe.done();
            injected.reset();
            replyRelay.takeServerFatal();
            unlink(conn);
            conn.pool().pool().discard(conn, "closed while probing");
            readPause.remove(ReadPause.WAITING);
            if (state != State.CLOSED) {
                relay.reportUnavailable(conn.backend());
                lease.holdForPrimary("");
            }
            return;
        }
        ErrorResponse fatal = replyRelay.takeServerFatal();
        ErrorResponse error =
                fatal != null
                        ? fatal
                        : ErrorResponse.error(
                                SqlState.CONNECTION_FAILURE,
                                conn.closeReason() == null
                                        ? "server connection to " + conn.backend() + " was lost"
                                        : "server connection to "
                                                + conn.backend()
                                                + " was closed by pgrelay: "
                                                + conn.closeReason());
        ExpectedReplies.Lost lost = replies.serverLost();
        unlink(conn);
        counters.addTo(conn.pool());
        counters.abandon();
        conn.pool().pool().discard(conn, "server closed the connection");
        readPause.remove(ReadPause.BACKPRESSURE);
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
        if (poolMode == PoolMode.SESSION || replyRelay.holdsSessionState()) {
            // Its session (temporary tables, locks, LISTEN...) died with the server: as in session
            // mode, the client hears so instead of going on without it.
            if (pins != null) {
                pins.drop();
            }
            fatal(error.withSeverity("FATAL"));
            return;
        }
        injected.reset();
        requests.serverLost(lost, error);
    }

    private void releaseServer() {
        ServerConnection conn = server;
        unlink(conn);
        readPause.remove(ReadPause.BACKPRESSURE);
        conn.pool().pool().release(conn);
    }

    // ---------------------------------------------------------------- timeouts, shutdown, close

    /** Runs on this session's loop, about once a second; reads the settings in force now. */
    void checkTimeouts(long now) {
        if (state == State.CLOSED) {
            return;
        }
        ProxyConfig config = relay.config();
        long idle = now - lastActivityNanos;
        if (state != State.READY) {
            long login = config.clientLoginTimeout().toNanos();
            if (login > 0 && now - connectedAtNanos > login && !lease.isHeld()) {
                fatal(
                        ErrorResponse.fatal(
                                SqlState.CONNECTION_FAILURE,
                                "client_login_timeout: login took too long"));
            }
            return;
        }
        ErrorResponse expired = lease.expiredHold(now);
        if (expired != null) {
            failRequests(expired);
            return;
        }
        if (draining && idle >= DRAIN_IDLE_NANOS && betweenTransactions()) {
            fatal(ErrorResponse.fatal(SqlState.ADMIN_SHUTDOWN, "pgrelay is shutting down"));
            return;
        }
        long clientIdle = config.clientIdleTimeout().toNanos();
        if (clientIdle > 0
                && (server == null || idlePinned())
                && !lease.isPending()
                && !lease.isHeld()
                && admin == null
                && idle > clientIdle) {
            fatal(
                    ErrorResponse.fatal(
                            SqlState.IDLE_SESSION_TIMEOUT,
                            "client_idle_timeout: closing idle connection"));
            return;
        }
        long idleTx = config.idleTransactionTimeout().toNanos();
        if (idleTx > 0
                && server != null
                && replies.transactionStatus() != Messages.IDLE
                && replies.isEmpty()
                && idle > idleTx) {
            fatal(
                    ErrorResponse.fatal(
                            SqlState.IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
                            "terminating connection due to idle-in-transaction timeout (idle_transaction_timeout)"));
        }
    }

    /** Pinned to a server connection with nothing running on it: idle, as far as timeouts go. */
    private boolean idlePinned() {
        return session != null
                && session.isPinned()
                && replies.releasable()
                && !injected.outstanding();
    }

    /**
     * Graceful shutdown, first phase: the client is served as usual and closed once it has been
     * between transactions for {@link #DRAIN_IDLE_NANOS}, so that application pools can retire
     * their connections on their own. A login in progress goes on (the client connected before the
     * listeners closed, and may be no pool that would retry); console sessions go now.
     */
    void drain() {
        if (state == State.CLOSED) {
            return;
        }
        if (admin != null) {
            fatal(ErrorResponse.fatal(SqlState.ADMIN_SHUTDOWN, "pgrelay is shutting down"));
        } else {
            draining = true;
        }
    }

    /**
     * Graceful shutdown, last phase: idle clients go now, clients inside a transaction when it
     * ends.
     */
    void closeAfterTransaction() {
        if (state == State.CLOSED) {
            return;
        }
        if (state != State.READY || (server == null && !lease.isPending()) || idlePinned()) {
            fatal(ErrorResponse.fatal(SqlState.ADMIN_SHUTDOWN, "pgrelay is shutting down"));
        } else {
            closeWhenIdle = true;
        }
    }

    /** No transaction open and nothing owed, whether or not a server connection is attached. */
    private boolean betweenTransactions() {
        if (server == null) {
            return !lease.isPending() && !lease.isHeld();
        }
        return replies.releasable()
                && replies.transactionStatus() == Messages.IDLE
                && !injected.outstanding();
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
                    .addListener((ChannelFutureListener) ClientSession::closeAfterError);
        } else {
            channel.close();
        }
        state = State.CLOSED;
        cleanup();
    }

    private static void closeAfterError(ChannelFuture f) {
        if (f.isSuccess() && f.channel() instanceof DuplexChannel duplex) {
            duplex.shutdownOutput();
            f.channel().eventLoop().schedule(() -> f.channel().close(), 1, TimeUnit.SECONDS);
        } else {
            f.channel().close();
        }
    }

    private void cleanup() {
        state = State.CLOSED;
        if (cleanedUp) {
            return;
        }
        cleanedUp = true;
        if (admin != null) {
            admin.close();
        }
        if (lease != null) {
            lease.cancel();
        }
        if (requests != null) {
            requests.releaseAll();
        }
        if (server != null) {
            ServerConnection conn = server;
            counters.addTo(conn.pool());
            boolean clean =
                    !internalError
                            && replies.releasable()
                            && !injected.outstanding()
                            && conn.isUsable();
            unlink(conn);
            if (!clean) {
                // Mid-transaction or mid-request: its state is unknown, never hand it to someone
                // else.
                conn.pool()
                        .pool()
                        .discard(
                                conn,
                                "client disconnected with a transaction or request in progress");
            } else if (poolMode == PoolMode.SESSION || replyRelay.holdsSessionState()) {
                String reset = relay.config().serverResetQuery();
                if (poolMode == PoolMode.TRANSACTION && (reset == null || reset.isBlank())) {
                    // Nothing would clear what the client left there: nobody else may have it.
                    conn.pool().pool().discard(conn, "pinned, and no server_reset_query");
                } else {
                    conn.resetAndRelease(reset);
                }
            } else {
                conn.pool().pool().release(conn);
            }
        }
        if (pins != null) {
            pins.drop();
        }
        if (replyRelay != null) {
            replyRelay.close();
        }
        replies.clear();
        statements.releaseAll();
        if (cancelKey != null) {
            relay.cancelKeys().unregister(cancelKey);
        }
        if (counted) {
            counted = false;
            relay.clientDisconnected(this, loggedIn);
        }
    }
}
