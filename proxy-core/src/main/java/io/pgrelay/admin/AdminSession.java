package io.pgrelay.admin;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.pgrelay.admin.AdminCommand.Verb;
import io.pgrelay.admin.ResultWriter.Field;
import io.pgrelay.protocol.CStrings;
import io.pgrelay.protocol.LogSafe;
import io.pgrelay.protocol.MessageFields;
import io.pgrelay.protocol.Messages;
import io.pgrelay.protocol.ProtocolException;
import io.pgrelay.protocol.SqlState;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One admin console client (database {@code pgbouncer}), after pgrelay has authenticated it and
 * sent AuthenticationOk ... ReadyForQuery. Every frontend frame goes to {@link #onFrame}; replies
 * go to {@link Output} as batches of whole messages, one batch per frame handled.
 *
 * <p>Both query protocols are served. Simple Query may carry several ';'-separated statements; each
 * gets its result and CommandComplete, an error ends the query, and one ReadyForQuery closes it.
 * The extended protocol (Parse/Bind/Describe/Execute/Close/Sync/Flush) works as in PostgreSQL, so
 * JDBC tools work: statements are parsed at Parse, run at Execute (Execute with a row limit
 * suspends the portal), results are text unless Bind asks for binary, and after an error every
 * message up to Sync is discarded. Console statements take no parameters; Bind's parameter values
 * are ignored.
 *
 * <p>Control commands may finish later (PAUSE and WAIT_CLOSE wait for servers to be released):
 * until their future completes the session queues incoming frames and writes nothing more, then
 * continues where it stopped on {@code executor} (pass the channel's event loop). Only Terminate is
 * acted on at once. Hazard: the session is confined to that thread; every method must be called on
 * it, and the view is read on it.
 *
 * <p>Buffers: {@link #onFrame} takes ownership of the frame; queued frames are released when
 * handled or at {@link #close()}, which the owner must call when the connection goes away.
 */
public final class AdminSession {

    private static final Logger log = LoggerFactory.getLogger(AdminSession.class);

    /** Where the session's replies go; called on the session's thread. */
    public interface Output {

        /** Whole backend messages; the callee owns (writes and flushes, or releases) the buffer. */
        void write(ByteBuf messages);

        /** The client sent Terminate or broke the protocol (already told): close the connection. */
        void close();
    }

    private final AdminView view;
    private final AdminControl control;
    private final boolean mayControl;
    private final Executor executor;
    private final Output output;
    private final ResultWriter writer;

    private final Map<String, AdminCommand> statements = new HashMap<>(); // null value: empty query
    private final Map<String, Portal> portals = new HashMap<>();
    private final ArrayDeque<ByteBuf> held = new ArrayDeque<>();
    private boolean waiting;
    private boolean skipUntilSync;
    private boolean closed;

    /**
     * @param mayControl true for admin_users, false for stats_users (SHOW only)
     * @param executor runs the continuation of a control command that completed later; the
     *     session's own thread (the channel's event loop)
     */
    public AdminSession(
            AdminView view,
            AdminControl control,
            boolean mayControl,
            ByteBufAllocator alloc,
            Executor executor,
            Output output) {
        this.view = view;
        this.control = control;
        this.mayControl = mayControl;
        this.executor = executor;
        this.output = output;
        this.writer = new ResultWriter(alloc, output::write);
    }

    /** Handles one whole frontend message (type, length, body) and releases it. */
    public void onFrame(ByteBuf frame) {
        if (closed) {
            frame.release();
            return;
        }
        if (waiting && frame.getByte(frame.readerIndex()) != Messages.TERMINATE) {
            held.add(frame);
            return;
        }
        try {
            process(frame);
        } finally {
            frame.release();
        }
        writer.flush();
    }

    /** True once the client sent Terminate, broke the protocol, or {@link #close()} was called. */
    public boolean wantsClose() {
        return closed;
    }

    /** True while a control command's completion is awaited (frames are being queued). */
    public boolean isWaiting() {
        return waiting && !closed;
    }

    /**
     * The connection is gone: drop queued frames and pending output; a later completion is ignored.
     */
    public void close() {
        closed = true;
        writer.discard();
        releaseHeld();
    }

    // ---- dispatch ----

    private void process(ByteBuf frame) {
        byte type = frame.getByte(frame.readerIndex());
        if (type == Messages.TERMINATE) {
            terminate();
            return;
        }
        if (skipUntilSync && type != Messages.SYNC) {
            return; // after an error in the extended protocol, as PostgreSQL does
        }
        try {
            ByteBuf body = MessageFields.body(frame, frame.readerIndex());
            switch (type) {
                case Messages.QUERY -> simpleQuery(CStrings.read(body));
                case Messages.PARSE -> parse(body);
                case Messages.BIND -> bind(body);
                case Messages.DESCRIBE -> describe(body);
                case Messages.EXECUTE -> execute(body);
                case Messages.CLOSE -> closeStatementOrPortal(body);
                case Messages.SYNC -> sync();
                case Messages.FLUSH -> {} // every frame's output is flushed anyway
                default ->
                        throw new ProtocolException(
                                "invalid frontend message type "
                                        + (type >= 32 && type < 127
                                                ? "'" + (char) type + "'"
                                                : String.valueOf(type & 0xff))
                                        + " for the admin console");
            }
        } catch (AdminException e) {
            failExtended(e); // simple queries report their own errors
        } catch (ProtocolException | IndexOutOfBoundsException e) {
            writer.error(
                    "FATAL",
                    SqlState.PROTOCOL_VIOLATION,
                    e instanceof ProtocolException ? e.getMessage() : "invalid message format");
            terminate();
        }
    }

    private void terminate() {
        closed = true;
        writer.flush();
        releaseHeld();
        statements.clear();
        portals.clear();
        output.close();
    }

    private void releaseHeld() {
        ByteBuf frame;
        while ((frame = held.poll()) != null) {
            frame.release();
        }
    }

    /** Handles the frames that arrived while waiting, until done or waiting again. */
    private void drainHeld() {
        ByteBuf frame;
        while (!waiting && !closed && (frame = held.poll()) != null) {
            try {
                process(frame);
            } finally {
                frame.release();
            }
        }
        writer.flush();
    }

    // ---- simple query ----

    private void simpleQuery(String query) {
        // A simple Query ends the unnamed statement and portal, as in PostgreSQL.
        statements.remove("");
        portals.remove("");
        List<String> parts = AdminCommand.split(query);
        if (parts.isEmpty()) {
            writer.emptyQueryResponse();
            writer.readyForQuery();
            return;
        }
        runStatements(parts, 0);
    }

    /**
     * Runs statements from {@code next} on; stops at an error, or to wait for a control command.
     */
    private void runStatements(List<String> parts, int next) {
        try {
            for (int i = next; i < parts.size(); i++) {
                Outcome outcome = run(AdminCommand.parse(parts.get(i)));
                if (outcome instanceof Pending p && !p.future().isDone()) {
                    int following = i + 1;
                    await(
                            p,
                            () -> {
                                try {
                                    writeWhole(settle(p));
                                } catch (AdminException e) {
                                    writeError(e);
                                    writer.readyForQuery();
                                    return;
                                }
                                runStatements(parts, following);
                            });
                    return;
                }
                writeWhole(outcome instanceof Pending p ? settle(p) : (Result) outcome);
            }
        } catch (AdminException e) {
            writeError(e);
        }
        writer.readyForQuery();
    }

    private void writeWhole(Result r) {
        if (r.notice() != null) {
            writer.notice(r.notice(), r.noticeDetail());
        }
        if (r.fields() != null) {
            writer.rowDescription(r.fields(), null);
            for (Object[] row : r.rows()) {
                writer.dataRow(r.fields(), row, null);
            }
        }
        writer.commandComplete(r.tag());
    }

    // ---- extended query ----

    private static final class Portal {
        final AdminCommand command;
        final short[] formats;
        Result result;
        int sent;

        Portal(AdminCommand command, short[] formats) {
            this.command = command;
            this.formats = formats;
        }
    }

    private void parse(ByteBuf body) {
        String name = CStrings.read(body);
        String query = CStrings.read(body);
        // Parameter type OIDs follow; console statements have no parameters to type.
        List<String> parts = AdminCommand.split(query);
        if (parts.size() > 1) {
            throw new AdminException(
                    AdminException.SYNTAX_ERROR,
                    "cannot insert multiple commands into a prepared statement");
        }
        AdminCommand command = parts.isEmpty() ? null : AdminCommand.parse(parts.get(0));
        if (!name.isEmpty() && statements.containsKey(name)) {
            throw new AdminException(
                    AdminException.DUPLICATE_PREPARED_STATEMENT,
                    "prepared statement \"" + name + "\" already exists");
        }
        statements.put(name, command);
        writer.parseComplete();
    }

    private void bind(ByteBuf body) {
        String portalName = CStrings.read(body);
        String statementName = CStrings.read(body);
        // The counts are unsigned, as PostgreSQL reads them (pq_getmsgint). Read as signed, a
        // count of 0x8000 or more made skipBytes or the array below throw an exception that
        // escaped onFrame instead of a short message's IndexOutOfBoundsException.
        body.skipBytes(2 * body.readUnsignedShort()); // parameter format codes
        int parameters = body.readUnsignedShort();
        for (int i = 0; i < parameters; i++) {
            int length = body.readInt();
            body.skipBytes(Math.max(length, 0)); // ignored: console statements have no parameters
        }
        short[] formats = new short[body.readUnsignedShort()];
        for (int i = 0; i < formats.length; i++) {
            formats[i] = body.readShort();
            if (formats[i] != ResultWriter.TEXT_FORMAT
                    && formats[i] != ResultWriter.BINARY_FORMAT) {
                throw new AdminException(
                        AdminException.INVALID_PARAMETER_VALUE,
                        "unsupported format code: " + formats[i]);
            }
        }
        AdminCommand command = statement(statementName);
        List<Field> fields = fields(command);
        if (fields != null && formats.length > 1 && formats.length != fields.size()) {
            throw new AdminException(
                    SqlState.PROTOCOL_VIOLATION,
                    "bind message has "
                            + formats.length
                            + " result formats but query has "
                            + fields.size()
                            + " columns");
        }
        if (!portalName.isEmpty() && portals.containsKey(portalName)) {
            throw new AdminException(
                    AdminException.DUPLICATE_CURSOR,
                    "cursor \"" + portalName + "\" already exists");
        }
        portals.put(portalName, new Portal(command, formats));
        writer.bindComplete();
    }

    private void describe(ByteBuf body) {
        byte kind = body.readByte();
        String name = CStrings.read(body);
        List<Field> fields;
        short[] formats = null;
        if (kind == Messages.TARGET_STATEMENT) {
            fields = fields(statement(name));
            writer.noParameters();
        } else if (kind == Messages.TARGET_PORTAL) {
            Portal portal = portal(name);
            fields = fields(portal.command);
            formats = portal.formats;
        } else {
            throw new AdminException(
                    SqlState.PROTOCOL_VIOLATION, "invalid DESCRIBE message subtype " + kind);
        }
        if (fields == null) {
            writer.noData();
        } else {
            writer.rowDescription(fields, formats);
        }
    }

    private void execute(ByteBuf body) {
        Portal portal = portal(CStrings.read(body));
        int maxRows = body.readInt();
        if (portal.command == null) {
            writer.emptyQueryResponse();
            return;
        }
        if (portal.result == null) {
            Outcome outcome = run(portal.command);
            if (outcome instanceof Pending p && !p.future().isDone()) {
                await(
                        p,
                        () -> {
                            try {
                                started(portal, settle(p));
                                sendRows(portal, maxRows);
                            } catch (AdminException e) {
                                failExtended(e);
                            }
                        });
                return;
            }
            started(portal, outcome instanceof Pending p ? settle(p) : (Result) outcome);
        }
        sendRows(portal, maxRows);
    }

    private void started(Portal portal, Result result) {
        portal.result = result;
        if (result.notice() != null) {
            writer.notice(result.notice(), result.noticeDetail());
        }
    }

    /**
     * The portal's next rows, then PortalSuspended if the row limit cut it short, else
     * CommandComplete.
     */
    private void sendRows(Portal portal, int maxRows) {
        Result r = portal.result;
        int end = r.rows().size();
        if (maxRows > 0 && end - portal.sent > maxRows) {
            end = portal.sent + maxRows;
        }
        for (int i = portal.sent; i < end; i++) {
            writer.dataRow(r.fields(), r.rows().get(i), portal.formats);
        }
        portal.sent = end;
        if (end < r.rows().size()) {
            writer.portalSuspended();
        } else {
            writer.commandComplete(r.tag());
        }
    }

    private void closeStatementOrPortal(ByteBuf body) {
        byte kind = body.readByte();
        String name = CStrings.read(body);
        if (kind == Messages.TARGET_STATEMENT) {
            statements.remove(name);
        } else if (kind == Messages.TARGET_PORTAL) {
            portals.remove(name);
        } else {
            throw new AdminException(
                    SqlState.PROTOCOL_VIOLATION, "invalid CLOSE message subtype " + kind);
        }
        writer.closeComplete();
    }

    private void sync() {
        skipUntilSync = false;
        portals.clear(); // portals live until the end of the (implicit) transaction
        writer.readyForQuery();
    }

    private AdminCommand statement(String name) {
        if (!statements.containsKey(name)) {
            throw new AdminException(
                    AdminException.INVALID_SQL_STATEMENT_NAME,
                    "prepared statement \"" + name + "\" does not exist");
        }
        return statements.get(name);
    }

    private Portal portal(String name) {
        Portal portal = portals.get(name);
        if (portal == null) {
            throw new AdminException(
                    AdminException.INVALID_CURSOR_NAME, "portal \"" + name + "\" does not exist");
        }
        return portal;
    }

    private void failExtended(AdminException e) {
        writeError(e);
        skipUntilSync = true;
    }

    private void writeError(AdminException e) {
        writer.error("ERROR", e.sqlState(), e.getMessage());
    }

    // ---- commands ----

    private sealed interface Outcome permits Result, Pending {}

    /** A finished command: rows (when {@code fields} is not null), an optional notice, the tag. */
    private record Result(
            List<Field> fields, List<Object[]> rows, String notice, String noticeDetail, String tag)
            implements Outcome {

        static Result tag(String tag) {
            return new Result(null, List.of(), null, null, tag);
        }
    }

    /** A control command in progress; {@code failureState} is the SQLSTATE of its error message. */
    private record Pending(CompletableFuture<String> future, String tag, String failureState)
            implements Outcome {}

    /** The columns a statement returns, or null if it returns none. */
    private static List<Field> fields(AdminCommand command) {
        if (command == null
                || command.verb() != Verb.SHOW
                || command.argument().equals(ShowTables.HELP)) {
            return null;
        }
        return ShowTables.table(command.argument()).fields();
    }

    private Outcome run(AdminCommand command) {
        try {
            return switch (command.verb()) {
                case SHOW -> show(command.argument());
                case SET -> {
                    if (ShowTables.SESSION_PARAMETERS.containsKey(
                            command.argument().toLowerCase(Locale.ROOT))) {
                        yield new Result(null, List.of(), "SET ignored", null, "SET");
                    }
                    requireAdmin();
                    yield pending(
                            control.set(command.argument(), command.value()),
                            "SET",
                            AdminException.INVALID_PARAMETER_VALUE);
                }
                default -> {
                    requireAdmin();
                    yield pending(
                            control(command),
                            command.verb().name(),
                            AdminException.OBJECT_NOT_IN_PREREQUISITE_STATE);
                }
            };
        } catch (AdminException e) {
            throw e;
        } catch (RuntimeException e) {
            throw internalError(command, e);
        }
    }

    private Result show(String subject) {
        if (subject.equals(ShowTables.HELP)) {
            return new Result(null, List.of(), "Console usage", ShowTables.HELP_TEXT, "SHOW");
        }
        ShowTables.Table<?> table = ShowTables.table(subject);
        return new Result(table.fields(), table.rows(view), null, null, "SHOW");
    }

    private CompletableFuture<String> control(AdminCommand command) {
        String arg = command.argument();
        return switch (command.verb()) {
            case PAUSE -> control.pause(arg);
            case RESUME -> control.resume(arg);
            case RECONNECT -> control.reconnect(arg);
            case KILL -> control.kill(arg);
            case KILL_CLIENT -> control.killClient(Long.parseLong(arg));
            case DISABLE -> control.disable(arg);
            case ENABLE -> control.enable(arg);
            case RELOAD -> control.reload();
            case SHUTDOWN ->
                    control.shutdown(
                            arg == null
                                    ? AdminControl.ShutdownMode.IMMEDIATE
                                    : AdminControl.ShutdownMode.valueOf(arg));
            case WAIT_CLOSE -> control.waitClose(arg);
            case SHOW, SET -> throw new IllegalStateException("not a control command: " + command);
        };
    }

    private void requireAdmin() {
        if (!mayControl) {
            throw new AdminException(AdminException.INSUFFICIENT_PRIVILEGE, "admin access needed");
        }
    }

    private static Pending pending(
            CompletableFuture<String> future, String tag, String failureState) {
        return new Pending(future == null ? AdminControl.done() : future, tag, failureState);
    }

    /** The result of a completed control future: its tag, or its error message thrown. */
    private static Result settle(Pending p) {
        String error;
        try {
            error = p.future().join();
        } catch (CompletionException | CancellationException e) {
            Throwable cause =
                    e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
            throw internalError(p.tag(), cause);
        }
        if (error != null) {
            throw new AdminException(p.failureState(), error);
        }
        return Result.tag(p.tag());
    }

    /**
     * Parks the session until the control future completes, then runs {@code then} on the executor,
     * flushes, and handles the frames that arrived meanwhile.
     */
    private void await(Pending p, Runnable then) {
        waiting = true;
        p.future()
                .whenComplete(
                        (ignored, failure) -> {
                            try {
                                executor.execute(
                                        () -> {
                                            if (closed) {
                                                return;
                                            }
                                            waiting = false;
                                            then.run();
                                            writer.flush();
                                            drainHeld();
                                        });
                            } catch (RejectedExecutionException e) {
                                // The event loop is shutting down, and the connection with it;
                                // close() releases.
                                log.debug("console continuation rejected", e);
                            }
                        });
    }

    private static AdminException internalError(Object command, Throwable e) {
        log.warn(
                "admin console command failed: {}",
                LogSafe.escape(String.valueOf(command), 300),
                e);
        return new AdminException(SqlState.INTERNAL_ERROR, "internal error: " + e);
    }
}
