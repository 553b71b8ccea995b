package io.pgrelay.proxy;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.pgrelay.config.ProxyConfig.PoolMode;
import io.pgrelay.protocol.ErrorResponse;
import io.pgrelay.protocol.MessageFields;
import io.pgrelay.protocol.Messages;
import io.pgrelay.protocol.SqlState;
import io.pgrelay.session.ClientParameters;
import io.pgrelay.session.ExpectedReplies;
import io.pgrelay.session.ExpectedReply;
import io.pgrelay.session.SessionCheck;
import io.pgrelay.session.SessionCounters;
import io.pgrelay.session.SessionState;
import io.pgrelay.session.StatementMapper;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A client's half of the server → client direction: the server's replies relayed as slices of its
 * reads, the replies that decide something acted on (ReadyForQuery hands the connection back in
 * transaction mode, ParameterStatus keeps the client's settings, a FATAL is kept for the close that
 * follows), the session check and its pins, and the answers to pgrelay's own queries.
 *
 * <p>It runs on the client's loop and owns what only this direction writes: the held ReadyForQuery
 * and the server's last FATAL. What the session decides (its link, closing, handing the connection
 * back) it asks of the session through {@link Client}.
 */
final class ReplyRelay {

    private static final Logger log = LoggerFactory.getLogger(ClientSession.class);

    /** What the relay needs of its client session. */
    interface Client {
        /** The server connection linked now, or null. */
        ServerConnection linked();

        boolean closed();

        /** Logged in, not closed. */
        boolean ready();

        /** Graceful shutdown: the client goes when its transaction ends. */
        boolean closingWhenIdle();

        /** The key the client knows its session by; null before the greeting. */
        CancelKeys.Key cancelKey();

        /**
         * A ReadyForQuery arrived at {@code now}: the client's last activity, the event's clock.
         */
        void activeAt(long now);

        void applicationName(String value);

        /** Hands the linked connection back to its pool. */
        void releaseServer();

        void unlink(ServerConnection conn);

        void probeAnswered();

        void fatal(ErrorResponse error);
    }

    private final SessionServices relay;
    private final Client client;
    private final Channel channel;
    private final ClientOutput output;
    private final ExpectedReplies replies;
    private final StatementMapper statements;
    private final InjectedQueries injected;
    private final ClientParameters parameters;
    private final SessionCounters counters;
    private final PoolMode poolMode;
    private final boolean mapStatements;

    /** Null unless transaction mode tracks session state; {@link #pins} with it. */
    private final SessionState session;

    private final SessionPins pins;

    /** A transaction's ReadyForQuery kept back until its RESET is undone (see SessionState). */
    private ByteBuf heldReadyForQuery;

    /** A FATAL the server sent before closing: reported when the close arrives. */
    private ErrorResponse serverFatal;

    ReplyRelay(
            SessionServices relay,
            Client client,
            Channel channel,
            ClientOutput output,
            ExpectedReplies replies,
            StatementMapper statements,
            InjectedQueries injected,
            ClientParameters parameters,
            SessionCounters counters,
            SessionState session,
            SessionPins pins,
            PoolMode poolMode,
            boolean mapStatements) {
        this.relay = relay;
        this.client = client;
        this.channel = channel;
        this.output = output;
        this.replies = replies;
        this.statements = statements;
        this.injected = injected;
        this.parameters = parameters;
        this.counters = counters;
        this.session = session;
        this.pins = pins;
        this.poolMode = poolMode;
        this.mapStatements = mapStatements;
    }

    /** The FATAL the server sent before it closed, if any; forgotten once taken. */
    ErrorResponse takeServerFatal() {
        ErrorResponse error = serverFatal;
        serverFatal = null;
        return error;
    }

    /** The client is gone: a ReadyForQuery held back goes with it. */
    void close() {
        if (heldReadyForQuery != null) {
            heldReadyForQuery.release();
            heldReadyForQuery = null;
        }
    }

    /**
     * Relays a run of complete server messages starting at {@code from} (the caller owns the run).
     * Replies that decide nothing go to the client as slices of the run, one per stretch of
     * consecutive bytes, so a result set costs one write however many rows it has; the messages
     * that drive decisions (ReadyForQuery, ParameterStatus, ErrorResponse, ...) and everything
     * while injected replies are outstanding go through {@link #onServerFrame} one by one. Returns
     * where this client's part ends: the run's end, or just past a message that unlinked the
     * connection (ReadyForQuery handing it back), whose rest belongs to others.
     */
    int onMessages(ServerConnection conn, ByteBuf run, int from) {
        int end = run.writerIndex();
        if (conn != client.linked() || client.closed()) {
            return end;
        }
        int relayFrom = from;
        int i = from;
        while (i < end) {
            byte type = run.getByte(i);
            int next = Messages.end(run, i);
            if (session != null && type == Messages.COMMAND_COMPLETE && !injected.outstanding()) {
                session.commandComplete(run, i);
            }
            if (!injected.outstanding() && isPlainReply(type, run, i)) {
                ExpectedReply done = replies.replied(type);
                if (done != null) {
                    if (done.isSwallowed()) {
                        relay(run, relayFrom, i);
                        relayFrom = next;
                    }
                    if (replies.synthesizedDue()) {
                        relay(run, relayFrom, next);
                        relayFrom = next;
                        emitSynthesized();
                    }
                }
                i = next;
                continue;
            }
            relay(run, relayFrom, i);
            onServerFrame(conn, run.retainedSlice(i, next - i));
            i = next;
            relayFrom = next;
            if (conn != client.linked() || client.closed()) {
                return next;
            }
        }
        relay(run, relayFrom, end);
        return end;
    }

    /** True for replies that need nothing beyond the expected-reply queue. */
    private boolean isPlainReply(byte type, ByteBuf run, int index) {
        return switch (type) {
            case Messages.READY_FOR_QUERY,
                    Messages.PARAMETER_STATUS,
                    Messages.ERROR_RESPONSE,
                    Messages.COPY_IN_RESPONSE,
                    Messages.NOTICE_RESPONSE,
                    Messages.NOTIFICATION_RESPONSE ->
                    false;
            case Messages.COMMAND_COMPLETE -> !mapStatements || !isDeallocateAll(run, index);
            default -> true;
        };
    }

    /** Whether the CommandComplete at {@code index} reports DISCARD ALL or DEALLOCATE ALL. */
    private static boolean isDeallocateAll(ByteBuf buf, int index) {
        return MessageFields.commandTagIs(buf, index, "DISCARD ALL")
                || MessageFields.commandTagIs(buf, index, "DEALLOCATE ALL");
    }

    /** Writes bytes [from, to) of a run to the client, as one retained slice. */
    private void relay(ByteBuf run, int from, int to) {
        if (to > from) {
            output.reply(run.retainedSlice(from, to - from));
        }
    }

    private void onServerFrame(ServerConnection conn, ByteBuf frame) {
        byte type = Messages.type(frame);
        if (type == Messages.NOTIFICATION_RESPONSE) {
            // The client's, whenever it comes: a listener's notifications are sent before the
            // ReadyForQuery of whatever runs, pgrelay's own session check included.
            onNotification(conn, frame);
            return;
        }
        if (injected.outstanding()) {
            onInjectedReply(conn, type, frame);
            return;
        }
        int at = frame.readerIndex();
        switch (type) {
            case Messages.READY_FOR_QUERY -> {
                onReadyForQuery(frame);
                return;
            }
            case Messages.PARAMETER_STATUS -> {
                onParameterStatus(
                        conn,
                        MessageFields.parameterName(frame, at),
                        MessageFields.parameterValue(frame, at));
                output.reply(frame);
                return;
            }
            case Messages.NOTICE_RESPONSE -> {
                output.reply(frame);
                return;
            }
            case Messages.ERROR_RESPONSE -> {
                onServerError(frame);
                return;
            }
            case Messages.COPY_IN_RESPONSE -> replies.copyInStarted();
            case Messages.COMMAND_COMPLETE -> {
                if (mapStatements && isDeallocateAll(frame, at)) {
                    statements.forgetAll();
                }
            }
            default -> {}
        }
        ExpectedReply done = replies.replied(type);
        if (done != null && done.isSwallowed()) {
            frame.release();
        } else {
            output.reply(frame);
        }
        emitSynthesized();
    }

    /**
     * A notification for a listening client. One its own session sent carries the server's pid,
     * which the client knows by another (its cancel key's): a pinned client's connection is its
     * own, so that pid is the client's, and it gets the one it knows, as it would directly.
     */
    private void onNotification(ServerConnection conn, ByteBuf frame) {
        int pidAt = frame.readerIndex() + MessageFields.HEADER;
        if (session != null
                && session.isPinned()
                && client.cancelKey() != null
                && frame.getInt(pidAt) == conn.processId()) {
            frame.setInt(pidAt, client.cancelKey().processId());
        }
        output.reply(frame);
    }

    /** A parameter the server reports changed (SET, or a reload): the client's view follows. */
    private void onParameterStatus(ServerConnection conn, String name, String value) {
        conn.reportParameter(name, value);
        parameters.reported(name, value);
        if (name.equals("application_name")) {
            client.applicationName(value);
        } else if (name.equals("in_hot_standby")) {
            relay.reportHotStandby(conn.backend(), value);
        }
    }

    /** Writes the replies pgrelay made up that are due now (nothing owed before them). */
    void emitSynthesized() {
        ExpectedReply reply;
        while ((reply = replies.nextSynthesized()) != null) {
            statements.emitted(reply);
            output.write(reply.message());
        }
    }

    private void onServerError(ByteBuf frame) {
        ErrorResponse error = ErrorResponse.decode(frame);
        if (error.isFatal()) {
            // The server closes next; the error is reported (and counted) then, as a plain ERROR,
            // so the client connection survives its server.
            serverFatal = error;
            frame.release();
            return;
        }
        ErrorResponse replacement = replies.serverError();
        if (replacement != null) {
            // pgrelay's own failing request: the client hears pgrelay's error, not the server's.
            frame.release();
            frame = replacement.encode(channel.alloc());
        }
        relay.metrics().error(replacement != null ? replacement.sqlState() : error.sqlState());
        output.reply(frame);
    }

    private void onReadyForQuery(ByteBuf frame) {
        byte status = MessageFields.transactionStatus(frame, frame.readerIndex());
        int unanswered = replies.readyForQuery(status);
        if (unanswered > 0) {
            log.warn(
                    "client {}: ReadyForQuery while {} more request(s) were owed a reply",
                    channel.remoteAddress(),
                    unanswered);
        }
        long now = System.nanoTime();
        client.activeAt(now);
        if (counters.readyForQuery(now, status == Messages.IDLE, !replies.isEmpty())) {
            counters.addTo(client.linked().pool());
        }
        if (session != null
                && session.checkDue()
                && (session.holdsReadyForQuery() || cannotPin())
                && replies.releasable()
                && !client.closingWhenIdle()) {
            heldReadyForQuery = frame;
            endOfTransaction();
            return;
        }
        output.reply(frame);
        emitSynthesized();
        if (!replies.releasable()) {
            return;
        }
        if (client.closingWhenIdle()) {
            output.flush();
            if (!holdsSessionState()) {
                client.releaseServer();
            } // else cleanup resets it before anyone else gets it
            client.fatal(ErrorResponse.fatal(SqlState.ADMIN_SHUTDOWN, "pgrelay is shutting down"));
        } else if (poolMode == PoolMode.TRANSACTION) {
            endOfTransaction();
        }
    }

    /**
     * Transaction mode, the transaction is over and nothing is owed: the server connection goes
     * back, unless the session must be checked first (the client's RFQ has gone out; the check runs
     * off its path) or the client is pinned to it.
     */
    private void endOfTransaction() {
        if (session != null && session.checkDue()) {
            ServerConnection server = client.linked();
            SessionState.Check check = pins.checkSent(server.pool());
            injected.checkSent(check);
            server.write(
                    Messages.query(
                            channel.alloc(),
                            SessionCheck.query(server.pool().key().user(), check)));
            server.flush();
            relay.metrics().sessionChecked();
            output.flush();
            return;
        }
        output.flush();
        if (session == null || !session.isPinned()) {
            client.releaseServer();
        }
    }

    /**
     * Not pinned, and the pool has max_pinned_connections pinned: if the transaction pinned, the
     * client must hear so before its ReadyForQuery (the statement that pinned fails).
     */
    private boolean cannotPin() {
        return pins.mayNotPin(client.linked().pool(), relay.config().maxPinnedConnections());
    }

    /** Whether the linked server's session may hold this client's state (pinned, or unchecked). */
    boolean holdsSessionState() {
        return session != null && (session.isPinned() || session.checkDue() || injected.checking());
    }

    /**
     * The session check is answered: the connection and the client learn the client's settings (a
     * RESET of a startup parameter is announced back to what the client started with, which its
     * next transaction gets), and the pins follow what the session holds.
     */
    private void onSessionChecked(ServerConnection conn) {
        SessionCheck.Result result = injected.checkResult();
        if (result == null) {
            // Not known (the check failed: a statement_timeout of 1 ms, say): keep the
            // connection, and ask again after the next transaction.
            session.hint(SessionCheck.ALL);
        }
        int now =
                result == null
                        ? SessionState.bit(SessionState.Pin.UNKNOWN)
                        // Pins of parts the check did not read stay as they were.
                        : (session.pins()
                                        & ~result.pinsRead()
                                        & ~SessionState.bit(SessionState.Pin.UNKNOWN))
                                | result.pins();
        if (!pinsChanged(conn, now)) {
            return; // over max_pinned_connections: the client is closed
        }
        if (result != null && result.settings() != null) {
            conn.settled(result.settings(), result.allSettings());
            parameters
                    .settle(result.settings(), result.allSettings())
                    .forEach(
                            (name, value) -> {
                                output.reply(
                                        Messages.parameterStatus(channel.alloc(), name, value));
                                if (name.equals("application_name")) {
                                    client.applicationName(value);
                                }
                            });
        }
        if (heldReadyForQuery != null) {
            // The client's settings go back on this connection before anything it sends next.
            String sync = conn.synchronizeTo(parameters.interned());
            if (sync != null) {
                conn.write(Messages.query(channel.alloc(), sync));
                conn.flush();
                injected.sent();
                relay.metrics().parametersReplayed();
            }
            output.reply(heldReadyForQuery);
            heldReadyForQuery = null;
        }
        endOfTransactionIfIdle(conn);
        output.flush();
    }

    /** Nothing owed on {@code conn} any more, pgrelay's own queries included: as at the RFQ. */
    private void endOfTransactionIfIdle(ServerConnection conn) {
        if (client.ready()
                && client.linked() == conn
                && replies.releasable()
                && !injected.outstanding()) {
            endOfTransaction();
        }
    }

    /**
     * Records the client's new pins; false when pinning would exceed max_pinned_connections, in
     * which case the client is closed and its server connection (with the state) discarded.
     */
    private boolean pinsChanged(ServerConnection conn, int now) {
        int was = session.pins();
        int max = relay.config().maxPinnedConnections();
        if (!pins.update(conn.pool(), now, max)) {
            log.info(
                    "client {}: cannot pin a server connection ({}): pool {} has"
                            + " max_pinned_connections ({}) pinned",
                    channel.remoteAddress(),
                    SessionState.label(now),
                    conn.pool().key(),
                    max);
            client.unlink(conn);
            conn.pool()
                    .pool()
                    .discard(conn, "its client's pin would exceed max_pinned_connections");
            client.fatal(
                    ErrorResponse.fatal(
                            SqlState.TOO_MANY_CONNECTIONS,
                            "pgrelay cannot keep this session's state ("
                                    + SessionState.label(now)
                                    + "): max_pinned_connections ("
                                    + max
                                    + ") server connections of this pool are pinned"));
            return false;
        }
        if (was != now && log.isDebugEnabled()) {
            log.debug(
                    "client {}: {} server connection {} pid {}",
                    channel.remoteAddress(),
                    now == 0 ? "unpinned from" : "pinned (" + SessionState.label(now) + ") to",
                    conn.backend(),
                    conn.processId());
        }
        return true;
    }

    /** Replies to what pgrelay sent itself: the parameter sync, the leader probe. */
    private void onInjectedReply(ServerConnection conn, byte type, ByteBuf frame) {
        InjectedQueries.Outcome outcome;
        try {
            outcome = injected.onReply(conn, type, frame);
        } finally {
            frame.release();
        }
        if (outcome == InjectedQueries.Outcome.PROBE_ANSWERED) {
            client.probeAnswered();
        } else if (outcome == InjectedQueries.Outcome.CHECKED) {
            onSessionChecked(conn);
        } else if (outcome == InjectedQueries.Outcome.DONE && session != null) {
            endOfTransactionIfIdle(conn);
        } else if (outcome == InjectedQueries.Outcome.REFUSED) {
            conn.markBroken();
            client.fatal(injected.refusal().withSeverity("FATAL"));
        }
    }
}
