package io.pgrelay.session;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.pgrelay.config.Limits;
import io.pgrelay.config.ProxyConfig;
import io.pgrelay.protocol.ErrorResponse;
import io.pgrelay.protocol.MessageFields;
import io.pgrelay.protocol.Messages;
import io.pgrelay.protocol.SqlState;
import io.pgrelay.session.PreparedStatements.Statement;
import java.nio.charset.StandardCharsets;
import java.util.function.Supplier;

/**
 * Transaction mode's prepared statements for one client: the client's names map to shared
 * statements ({@link PreparedStatements}) with pgrelay-wide server-side names, prepared on each
 * server connection the first time a client there needs them.
 *
 * <p>A Parse of a statement the server already has is answered here; a Bind or Describe of one it
 * lacks is preceded by pgrelay's own Parse, whose reply is swallowed; a Close is answered here (the
 * shared statement stays prepared on servers). Each server keeps at most max_prepared_statements,
 * least recently used out first. Every reply this owes or makes up goes through the client's {@link
 * ExpectedReplies}, so replies stay in request order.
 *
 * <p>Runs on the client's event loop. The server connection is the one linked right now ({@link
 * #use}).
 */
public final class StatementMapper implements ExpectedReplies.Undo {

    /** The linked server connection, as the mapper sees it. */
    public interface Server {
        ServerStatements statements();

        void write(ByteBuf message);

        Counts counts();
    }

    /** What the mapping counts, per pool (SHOW STATS). */
    public interface Counts {
        void clientParse();

        void serverParse();

        void bind();
    }

    /** Text that is not SQL, its terminator, no parameter types: a Parse of it always fails. */
    private static final byte[] NOT_SQL =
            "pgrelay: not SQL\0\0\0".getBytes(StandardCharsets.US_ASCII);

    private final ClientStatements names = new ClientStatements();
    private final PreparedStatements cache;

    /**
     * The settings in force now: limits and max_prepared_statements apply from the next message.
     */
    private final Supplier<ProxyConfig> config;

    private final ByteBufAllocator alloc;

    private ExpectedReplies replies;
    private Server server;

    /** Told when a Bind runs a statement whose text may change the session; null: nobody asks. */
    private SessionState session;

    public StatementMapper(
            PreparedStatements cache, Supplier<ProxyConfig> config, ByteBufAllocator alloc) {
        this.cache = cache;
        this.config = config;
        this.alloc = alloc;
    }

    /** The queue replies go through; set once, before the first message. */
    public void replyTo(ExpectedReplies replies) {
        this.replies = replies;
    }

    /** Set once, before the first message, when the client's session state is tracked. */
    public void reportTo(SessionState session) {
        this.session = session;
    }

    /** The server connection linked now, or null when none is. */
    public void use(Server linked) {
        this.server = linked;
    }

    /**
     * Whether a message names a prepared statement, which transaction pooling renames: Parse or
     * Bind of a named statement, Describe or Close of one. Unnamed statements and portals pass
     * unchanged. Reads header bytes only; a message too short to say is taken out of the fast path
     * too, to be rejected there.
     */
    public static boolean needsMapping(byte type, ByteBuf buf, int index) {
        int end = Messages.end(buf, index);
        int body = index + MessageFields.HEADER;
        return switch (type) {
            case Messages.PARSE -> body >= end || buf.getByte(body) != 0;
            case Messages.BIND -> {
                int portalEnd = buf.indexOf(body, end, (byte) 0);
                yield portalEnd < 0 || portalEnd + 1 >= end || buf.getByte(portalEnd + 1) != 0;
            }
            case Messages.DESCRIBE, Messages.CLOSE ->
                    body + 1 >= end
                            || (buf.getByte(body) == Messages.TARGET_STATEMENT
                                    && buf.getByte(body + 1) != 0);
            default -> false;
        };
    }

    /**
     * A well-formed message for which {@link #needsMapping} holds, with a server linked: sends it
     * on renamed, or answers it here. Takes ownership of {@code frame}. Anything but a Close opens
     * a batch, as the message would have had it gone to the server unchanged.
     */
    public void map(ByteBuf frame) {
        int index = frame.readerIndex();
        if (Messages.type(frame) != Messages.CLOSE) {
            replies.batchStarted();
        }
        switch (Messages.type(frame)) {
            case Messages.PARSE -> onParse(frame, index);
            case Messages.BIND -> onBind(frame, index);
            case Messages.DESCRIBE -> onDescribe(frame, index);
            default -> onClose(frame, index);
        }
    }

    private void onParse(ByteBuf frame, int index) {
        String name = MessageFields.parseStatementName(frame, index);
        int bodyStart = MessageFields.parseQueryStart(frame, index);
        byte[] body = new byte[Messages.end(frame, index) - bodyStart];
        frame.getBytes(bodyStart, body);
        frame.release();
        server.counts().clientParse();
        if (names.containsKey(name)) {
            failOnServer(
                    SqlState.DUPLICATE_PREPARED_STATEMENT,
                    "prepared statement \"" + name + "\" already exists");
            return;
        }
        Limits limit = config.get().limits();
        String overLimit =
                limit.checkClientStatements(
                        names.size() + 1, names.bytes() + 2L * name.length() + body.length);
        if (overLimit != null) {
            failOnServer(SqlState.CONFIGURATION_LIMIT_EXCEEDED, overLimit);
            return;
        }
        Statement statement = cache.intern(body);
        if (statement == null) {
            failOnServer(
                    SqlState.CONFIGURATION_LIMIT_EXCEEDED,
                    "the shared prepared statement cache is full ("
                            + limit.preparedStatementCacheBytes()
                            + " bytes of statement text,"
                            + " limits.prepared_statement_cache_size)");
            return;
        }
        names.put(name, statement);
        if (server.statements().has(statement)) {
            replies.answer(ExpectedReply.parseComplete(statement, name));
        } else {
            sendParse(statement);
            replies.expect(ExpectedReply.parse(statement, name));
        }
    }

    /** Bind to a named statement: prepare it on this server first if needed, and rename it. */
    private void onBind(ByteBuf frame, int index) {
        int nameStart = MessageFields.bindStatementNameStart(frame, index);
        String name = MessageFields.bindStatementName(frame, index);
        Statement statement = names.get(name);
        if (statement == null) {
            frame.release();
            failOnServer(SqlState.INVALID_SQL_STATEMENT_NAME, notFound(name));
            return;
        }
        server.counts().bind();
        if (session != null) {
            session.sent(statement.signs);
        }
        prepareOnServer(statement);
        // A new header with the server-side name; the parameters travel as a slice, not a copy.
        // The portal name is kept as is: portals live only inside one transaction on one server.
        byte[] serverName = statement.serverName.getBytes(StandardCharsets.US_ASCII);
        int portalBytes = nameStart - index - MessageFields.HEADER;
        int rest = MessageFields.bindParametersStart(frame, index);
        int restLength = Messages.end(frame, index) - rest;
        ByteBuf header = alloc.buffer(MessageFields.HEADER + portalBytes + serverName.length + 1);
        header.writeByte(Messages.BIND)
                .writeInt(4 + portalBytes + serverName.length + 1 + restLength)
                .writeBytes(frame, index + MessageFields.HEADER, portalBytes)
                .writeBytes(serverName)
                .writeByte(0);
        ByteBuf renamed =
                alloc.compositeBuffer(2)
                        .addComponents(true, header, frame.retainedSlice(rest, restLength));
        frame.release();
        replies.expect(ExpectedReply.BIND);
        server.write(renamed);
    }

    private void onDescribe(ByteBuf frame, int index) {
        String name = MessageFields.targetName(frame, index);
        frame.release();
        Statement statement = names.get(name);
        if (statement == null) {
            failOnServer(SqlState.INVALID_SQL_STATEMENT_NAME, notFound(name));
            return;
        }
        prepareOnServer(statement);
        replies.expect(ExpectedReply.DESCRIBE);
        server.write(statementMessage(Messages.DESCRIBE, statement));
    }

    /** Close: the client's name goes; the shared statement stays prepared on servers. */
    private void onClose(ByteBuf frame, int index) {
        String name = MessageFields.targetName(frame, index);
        frame.release();
        replies.answer(ExpectedReply.closeComplete(names.remove(name), name));
    }

    private static String notFound(String name) {
        return "prepared statement \"" + name + "\" does not exist";
    }

    private void prepareOnServer(Statement statement) {
        if (!server.statements().has(statement)) {
            sendParse(statement);
            replies.expect(ExpectedReply.injectedParse(statement));
        }
    }

    /**
     * Prepares a statement on the server, keeping its statements within max_prepared_statements,
     * least recently used out first. Evicting one that an earlier request in this pipeline uses is
     * safe: the server handles requests in order, and a later Bind finds it missing here and
     * prepares it again.
     */
    private void sendParse(Statement statement) {
        ServerStatements prepared = server.statements();
        Statement evicted;
        // At least one: a reload to 0 stops mapping for new sessions only (decided at their start).
        int max = Math.max(1, config.get().maxPreparedStatements());
        while ((evicted = prepared.evictBeyond(max - 1)) != null) {
            server.write(statementMessage(Messages.CLOSE, evicted));
            replies.expect(ExpectedReply.evictionClose(evicted));
        }
        prepared.add(statement);
        server.write(statement.parseMessage(alloc));
        server.counts().serverParse();
    }

    /** Describe or Close of a statement by its server-side name. */
    private ByteBuf statementMessage(byte type, Statement statement) {
        byte[] serverName = statement.serverName.getBytes(StandardCharsets.US_ASCII);
        return alloc.buffer(7 + serverName.length)
                .writeByte(type)
                .writeInt(6 + serverName.length)
                .writeByte(Messages.TARGET_STATEMENT)
                .writeBytes(serverName)
                .writeByte(0);
    }

    /**
     * Fails the client's request as the server would, on the server: a Parse of text that is not
     * SQL fails whatever the connection holds (the syntax error comes before any name is looked up,
     * and nothing is created), so the server aborts the transaction and skips to Sync exactly as
     * the client's own request would have made it (work done earlier in the batch or transaction
     * must not commit behind an error the client was told about); its error is replaced with this
     * one.
     */
    private void failOnServer(String sqlState, String message) {
        replies.expect(ExpectedReply.failure(ErrorResponse.error(sqlState, message)));
        server.write(Messages.parse(alloc, "pgrelay: error", NOT_SQL));
    }

    /** A synthesized reply is being written: a CloseComplete lets go of its statement. */
    public void emitted(ExpectedReply reply) {
        if (reply.kind == ExpectedReply.Kind.SYNTHESIZED_CLOSE_COMPLETE
                && reply.statement != null) {
            cache.release(reply.statement);
        }
    }

    @Override
    public void undo(ExpectedReply reply, boolean serverStillHasIt) {
        switch (reply.kind) {
            case PARSE -> {
                if (reply.statement != null) {
                    if (server != null) {
                        server.statements().remove(reply.statement);
                    }
                    dropName(reply.clientName, reply.statement);
                }
            }
            case INJECTED_PARSE -> {
                if (server != null && !serverStillHasIt) {
                    server.statements().remove(reply.statement);
                }
            }
            case EVICTION_CLOSE -> {
                // Skipped after an error: the server still has the statement.
                if (server != null && !serverStillHasIt) {
                    server.statements().add(reply.statement);
                }
            }
            case SYNTHESIZED_PARSE_COMPLETE -> dropName(reply.clientName, reply.statement);
            case SYNTHESIZED_CLOSE_COMPLETE -> {
                if (reply.statement != null && !names.containsKey(reply.clientName)) {
                    names.put(reply.clientName, reply.statement);
                } else if (reply.statement != null) {
                    cache.release(reply.statement);
                }
            }
            default -> {}
        }
    }

    private void dropName(String name, Statement statement) {
        if (names.get(name) == statement) {
            names.remove(name);
            cache.release(statement);
        }
    }

    /**
     * DEALLOCATE ALL or DISCARD ALL ran: the client's names are gone, and so is everything on that
     * server.
     */
    public void forgetAll() {
        releaseAll();
        if (server != null) {
            server.statements().clear();
        }
    }

    /** The client is gone: its names let go of their shared statements. */
    public void releaseAll() {
        for (Statement s : names.values()) {
            cache.release(s);
        }
        names.clear();
    }

    /** The client's named statements, for SHOW CLIENTS. */
    public int size() {
        return names.size();
    }
}
