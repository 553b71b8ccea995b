package io.pgrelay.session;

import io.netty.buffer.ByteBuf;
import io.pgrelay.protocol.ErrorResponse;
import io.pgrelay.protocol.Messages;
import io.pgrelay.session.PreparedStatements.Statement;

/**
 * What a request written to the server will be answered with, queued in write order so that replies
 * pgrelay makes up itself (a ParseComplete for a statement the server already has, a CloseComplete,
 * an error) and replies it must swallow (to a Parse or Close it injected) fall in exactly the
 * places the client expects.
 *
 * <p>Each request ends with one terminal reply: ParseComplete, BindComplete, RowDescription or
 * NoData, CommandComplete/EmptyQueryResponse/PortalSuspended, CloseComplete, ReadyForQuery.
 * Anything else (DataRow, ParameterDescription, notices, COPY traffic, and everything a simple
 * Query produces before its ReadyForQuery) passes through without moving the queue. After an
 * ErrorResponse in the extended protocol the server skips up to Sync, and so does the queue.
 */
public final class ExpectedReply {

    enum Kind {
        PARSE,
        BIND,
        DESCRIBE,
        EXECUTE,
        CLOSE,
        SYNC,
        QUERY,
        /** pgrelay's own Parse before a Bind/Describe: its ParseComplete is swallowed. */
        INJECTED_PARSE,
        /** pgrelay's own Close of an evicted statement: its CloseComplete is swallowed. */
        EVICTION_CLOSE,
        /** Answered by pgrelay when it reaches the head of the queue. */
        SYNTHESIZED_PARSE_COMPLETE,
        SYNTHESIZED_CLOSE_COMPLETE,
        /**
         * A request pgrelay makes fail on the server, so that the server aborts the transaction and
         * skips to Sync as it would for the client's own failed request; the server's error is
         * replaced with pgrelay's.
         */
        FAILURE
    }

    static final ExpectedReply PARSE = new ExpectedReply(Kind.PARSE, null, null, null);
    static final ExpectedReply BIND = new ExpectedReply(Kind.BIND, null, null, null);
    static final ExpectedReply DESCRIBE = new ExpectedReply(Kind.DESCRIBE, null, null, null);
    static final ExpectedReply EXECUTE = new ExpectedReply(Kind.EXECUTE, null, null, null);
    static final ExpectedReply CLOSE = new ExpectedReply(Kind.CLOSE, null, null, null);
    static final ExpectedReply SYNC = new ExpectedReply(Kind.SYNC, null, null, null);
    static final ExpectedReply QUERY = new ExpectedReply(Kind.QUERY, null, null, null);

    final Kind kind;

    /** The statement a Parse, injected Parse or synthesized reply is about. */
    final Statement statement;

    /** The client's name for it, for undoing the client's mapping if the request is skipped. */
    final String clientName;

    /** The error the client gets for a FAILURE. */
    final ErrorResponse error;

    private ExpectedReply(Kind kind, Statement statement, String clientName, ErrorResponse error) {
        this.kind = kind;
        this.statement = statement;
        this.clientName = clientName;
        this.error = error;
    }

    static ExpectedReply parse(Statement statement, String clientName) {
        return new ExpectedReply(Kind.PARSE, statement, clientName, null);
    }

    static ExpectedReply evictionClose(Statement statement) {
        return new ExpectedReply(Kind.EVICTION_CLOSE, statement, null, null);
    }

    static ExpectedReply injectedParse(Statement statement) {
        return new ExpectedReply(Kind.INJECTED_PARSE, statement, null, null);
    }

    static ExpectedReply parseComplete(Statement statement, String clientName) {
        return new ExpectedReply(Kind.SYNTHESIZED_PARSE_COMPLETE, statement, clientName, null);
    }

    static ExpectedReply closeComplete(Statement statement, String clientName) {
        return new ExpectedReply(Kind.SYNTHESIZED_CLOSE_COMPLETE, statement, clientName, null);
    }

    static ExpectedReply failure(ErrorResponse error) {
        return new ExpectedReply(Kind.FAILURE, null, null, error);
    }

    public boolean isSynthesized() {
        return kind == Kind.SYNTHESIZED_PARSE_COMPLETE || kind == Kind.SYNTHESIZED_CLOSE_COMPLETE;
    }

    public boolean endsWithReadyForQuery() {
        return kind == Kind.SYNC || kind == Kind.QUERY;
    }

    public boolean isSwallowed() {
        return kind == Kind.INJECTED_PARSE || kind == Kind.EVICTION_CLOSE;
    }

    /** Whether a backend message of this type is the last reply to this request. */
    public boolean isTerminal(byte type) {
        return switch (kind) {
            case PARSE, INJECTED_PARSE -> type == Messages.PARSE_COMPLETE;
            case BIND -> type == Messages.BIND_COMPLETE;
            case DESCRIBE -> type == Messages.ROW_DESCRIPTION || type == Messages.NO_DATA;
            case EXECUTE ->
                    type == Messages.COMMAND_COMPLETE
                            || type == Messages.EMPTY_QUERY_RESPONSE
                            || type == Messages.PORTAL_SUSPENDED;
            case CLOSE, EVICTION_CLOSE -> type == Messages.CLOSE_COMPLETE;
            case SYNC, QUERY -> type == Messages.READY_FOR_QUERY;
            default -> false;
        };
    }

    /** The reply pgrelay gives itself for a synthesized entry; the caller writes it. */
    public ByteBuf message() {
        return switch (kind) {
            case SYNTHESIZED_PARSE_COMPLETE -> Messages.parseComplete();
            case SYNTHESIZED_CLOSE_COMPLETE -> Messages.closeComplete();
            default -> throw new IllegalStateException("not synthesized: " + this);
        };
    }

    @Override
    public String toString() {
        return kind + (statement == null ? "" : "(" + statement + ")");
    }
}
