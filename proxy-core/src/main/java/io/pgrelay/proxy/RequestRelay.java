package io.pgrelay.proxy;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.pgrelay.protocol.ErrorResponse;
import io.pgrelay.protocol.MessageChecks;
import io.pgrelay.protocol.MessageFields;
import io.pgrelay.protocol.Messages;
import io.pgrelay.protocol.SqlState;
import io.pgrelay.session.ExpectedReplies;
import io.pgrelay.session.FailedRequests;
import io.pgrelay.session.SessionCheck;
import io.pgrelay.session.SessionCounters;
import io.pgrelay.session.SessionState;
import io.pgrelay.session.StatementMapper;

/**
 * A client's half of the client → server direction: its messages forwarded to the linked server (as
 * slices of the client's reads, renamed where prepared statements are mapped), queued while there
 * is none, and answered here with an error when none can be had or the one it had was lost.
 *
 * <p>It runs on the client's loop and owns the queue, the failed requests and whether the server
 * needs a flush; the link, the lease and closing are the session's, asked for through {@link
 * Client}.
 */
final class RequestRelay {

    /** What the relay needs of its client session. */
    interface Client {
        /** The server connection linked now, or null. */
        ServerConnection linked();

        /** Logged in, not closed. */
        boolean ready();

        /** When the event being handled began (see ClientSession). */
        long eventNanos();

        /** The client sent Terminate. */
        void terminate();

        /** Requests queue up beyond the limit: the client is paused until a server takes them. */
        void pauseReads();

        void fatal(ErrorResponse error);
    }

    private final SessionServices relay;
    private final Client client;
    private final Channel channel;
    private final ClientOutput output;
    private final ServerLease lease;
    private final LeaderProbe probe;
    private final ExpectedReplies replies;
    private final StatementMapper statements;
    private final ReplyRelay replyRelay;
    private final SessionCounters counters;
    private final boolean mapStatements;

    /** Null unless transaction mode tracks session state. */
    private final SessionState session;

    private final PendingRequests pending = new PendingRequests();

    /** Requests answered with an error here: the server was lost, or none could be had. */
    private final FailedRequests failures = new FailedRequests(new FailureAnswers());

    private boolean wroteToServer;

    RequestRelay(
            SessionServices relay,
            Client client,
            Channel channel,
            ClientOutput output,
            ServerLease lease,
            LeaderProbe probe,
            ExpectedReplies replies,
            StatementMapper statements,
            ReplyRelay replyRelay,
            SessionCounters counters,
            SessionState session,
            boolean mapStatements) {
        this.relay = relay;
        this.client = client;
        this.channel = channel;
        this.output = output;
        this.lease = lease;
        this.probe = probe;
        this.replies = replies;
        this.statements = statements;
        this.replyRelay = replyRelay;
        this.counters = counters;
        this.session = session;
        this.mapStatements = mapStatements;
    }

    /** A message the client pipelined behind its startup packet: relayed once it is in. */
    void holdDuringLogin(ByteBuf frame) {
        pending.hold(frame);
    }

    boolean hasPending() {
        return !pending.isEmpty();
    }

    /** Relays what waited (for the login's end, a server, the probe) through the normal path. */
    void relayPending() {
        pending.takeAll().forEach(this::onFrame);
    }

    /** A server was linked: what waited for it goes to it, as long as it stays linked. */
    void sendPending() {
        while (!pending.isEmpty() && client.linked() != null) {
            onFrame(pending.poll());
        }
    }

    /** The session wrote to the linked server itself (a parameter sync): flush it with the rest. */
    void wroteToServer() {
        wroteToServer = true;
    }

    /** Flushes the linked server if anything was written to it since the last flush. */
    void flush() {
        ServerConnection server = client.linked();
        if (wroteToServer && server != null) {
            server.flush();
        }
        wroteToServer = false;
    }

    /** Fails every queued request in order, each as its own failed request. */
    void failPending(ErrorResponse error) {
        failures.endOfQueue();
        for (ByteBuf frame : pending.takeAll()) {
            byte type = Messages.type(frame);
            frame.release();
            failures.failEach(error, type);
        }
        failures.endOfQueue();
    }

    /**
     * The linked server was lost: what it owed is answered with {@code error}, and requests queued
     * meanwhile need a new server.
     */
    void serverLost(ExpectedReplies.Lost lost, ErrorResponse error) {
        failures.serverLost(lost, error);
        if (!pending.isEmpty() && !lease.isPending()) {
            relayPending();
        }
    }

    void releaseAll() {
        pending.releaseAll();
    }

    /**
     * Relays the messages of a run from {@code from} on (the caller owns the run). While a server
     * connection is linked, messages forwarded unchanged are written as one slice per stretch of
     * consecutive bytes (Parse/Bind/Describe/Execute/Sync: one write, not five); anything else (no
     * server yet, statements to rename, errors being skipped, Terminate) goes through {@link
     * #onFrame} one by one.
     */
    void onMessages(ByteBuf run, int from) {
        int end = run.writerIndex();
        int forwardFrom = from;
        int i = from;
        ServerConnection server = client.linked();
        while (i < end && client.ready()) {
            byte type = run.getByte(i);
            int next = Messages.end(run, i);
            if (server != null
                    && !failures.skippingToSync()
                    && !probe.isAsking()
                    && !replies.skipping()
                    && type != Messages.TERMINATE
                    && !(mapStatements && StatementMapper.needsMapping(type, run, i))
                    && !(replies.batchOpen() && isSimpleRequest(type))) {
                noteForwarded(type, run, i, next - i);
                i = next;
                continue;
            }
            forward(run, forwardFrom, i);
            onFrame(run.retainedSlice(i, next - i));
            server = client.linked();
            i = next;
            forwardFrom = next;
        }
        if (client.ready()) {
            forward(run, forwardFrom, i);
        }
    }

    /** Writes bytes [from, to) of a run to the linked server, as one retained slice. */
    private void forward(ByteBuf run, int from, int to) {
        if (to > from) {
            client.linked().write(run.retainedSlice(from, to - from));
            wroteToServer = true;
        }
    }

    void onFrame(ByteBuf frame) {
        byte type = Messages.type(frame);
        if (type == Messages.TERMINATE) {
            frame.release();
            client.terminate();
        } else if (probe.isAsking()) {
            pending.hold(frame);
        } else if (client.linked() != null && !failures.skippingToSync()) {
            forward(frame);
        } else if (failures.active()) {
            frame.release();
            failures.absorb(type);
        } else if (type == Messages.COPY_DATA
                || type == Messages.COPY_DONE
                || type == Messages.COPY_FAIL) {
            // COPY data whose server is gone (its error has been reported): nowhere to go.
            frame.release();
        } else if (pending.isEmpty()
                && !lease.isPending()
                && !lease.isHeld()
                && rejectedBeforeLease(type, frame)) {
            // Answered already.
        } else {
            boolean full = pending.queue(frame);
            if (!lease.isPending() && !lease.isHeld()) {
                lease.start(client.eventNanos());
            } else if (full) {
                client.pauseReads();
            }
        }
    }

    /**
     * A malformed first message of a request is answered before any server is asked for (as
     * PostgreSQL does: an error, then everything up to Sync ignored). Behind queued requests it
     * waits its turn and is rejected in {@link #forward(ByteBuf)}, so replies keep their order.
     */
    private boolean rejectedBeforeLease(byte type, ByteBuf frame) {
        if (!mapStatements || !StatementMapper.needsMapping(type, frame, frame.readerIndex())) {
            return false;
        }
        String malformed = MessageChecks.malformation(frame, frame.readerIndex());
        if (malformed == null) {
            return false;
        }
        frame.release();
        ErrorResponse error = ErrorResponse.error(SqlState.PROTOCOL_VIOLATION, malformed);
        relay.metrics().error(error.sqlState());
        output.write(error.encode(channel.alloc()));
        failures.reportedSkipToSync();
        return true;
    }

    /** Writes one client frame to the linked server, noting what it will be answered with. */
    private void forward(ByteBuf frame) {
        byte type = Messages.type(frame);
        if (replies.batchOpen() && isSimpleRequest(type)) {
            // If anything earlier in the batch fails, the server skips this request up to the
            // Sync and never answers it; if nothing does, it answers. pgrelay cannot know which
            // before it must decide where the next ReadyForQuery belongs, so it refuses the
            // sequence instead of losing count of the replies. (Clients do send a Query right
            // after Close messages, pgjdbc among them; a well-formed Close cannot fail, so that
            // does not open a batch.)
            frame.release();
            client.fatal(
                    ErrorResponse.fatal(
                            SqlState.PROTOCOL_VIOLATION,
                            (type == Messages.QUERY ? "Query" : "FunctionCall")
                                    + " inside an extended-protocol batch: send Sync first (not supported by pgrelay)"));
            return;
        }
        if (replies.skipping() && type != Messages.SYNC) {
            // After an error the server would ignore everything up to Sync; so do we.
            frame.release();
            return;
        }
        if (mapStatements
                && StatementMapper.needsMapping(type, frame, frame.readerIndex())
                // A malformed one goes to the server unchanged: it answers, and fails the
                // transaction, exactly as it would without pgrelay (nothing here reads it).
                && MessageChecks.malformation(frame, frame.readerIndex()) == null) {
            counters.request(frame.readableBytes(), client.eventNanos());
            statements.map(frame);
            wroteToServer = true;
            replyRelay.emitSynthesized();
            return;
        }
        noteForwarded(type, frame, frame.readerIndex(), frame.readableBytes());
        client.linked().write(frame);
        wroteToServer = true;
    }

    /** Query and FunctionCall: answered by their own ReadyForQuery, outside any batch. */
    private static boolean isSimpleRequest(byte type) {
        return type == Messages.QUERY || type == Messages.FUNCTION_CALL;
    }

    /** Bookkeeping for a message forwarded unchanged (at {@code index} of {@code buf}). */
    private void noteForwarded(byte type, ByteBuf buf, int index, int length) {
        counters.request(length, client.eventNanos());
        replies.forwarded(type, buf, index);
        if (session != null) {
            if (type == Messages.QUERY || type == Messages.PARSE) {
                int text = index + MessageFields.HEADER;
                if (type == Messages.PARSE) {
                    // Past the statement name (a malformed one, unterminated: no text at all).
                    int nameEnd = buf.indexOf(text, index + length, (byte) 0);
                    text = nameEnd < 0 ? index + length : nameEnd + 1;
                }
                session.sent(SessionState.signs(buf, text, index + length));
            } else if (type == Messages.FUNCTION_CALL) {
                session.hint(SessionCheck.ALL);
            }
        }
        if (type == Messages.BIND && mapStatements) {
            client.linked().pool().binds.increment();
        }
    }

    /** Answers for requests that fail here, written as PostgreSQL writes them. */
    private final class FailureAnswers implements FailedRequests.Client {
        @Override
        public void fail(ErrorResponse error) {
            relay.metrics().error(error.sqlState());
            channel.write(error.withSeverity("ERROR").encode(channel.alloc()));
            readyForQuery();
        }

        @Override
        public void readyForQuery() {
            channel.write(Messages.readyForQueryIdle());
            channel.flush();
        }
    }
}
