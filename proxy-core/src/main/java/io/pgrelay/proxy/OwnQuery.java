package io.pgrelay.proxy;

import io.netty.buffer.ByteBuf;
import io.pgrelay.protocol.ErrorResponse;
import io.pgrelay.protocol.MessageFields;
import io.pgrelay.protocol.Messages;
import io.pgrelay.protocol.SqlState;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * A query pgrelay runs on a server connection for itself while no client holds it (the fingerprint
 * after login and in welcome checks, auth_query lookups), and what the server answered: the first
 * row and the first error, complete at ReadyForQuery. Fed on the connection's event loop only.
 */
final class OwnQuery {

    /**
     * The answer: the first DataRow's columns as text (a null column: NULL; a null list: no row),
     * and the error that failed the query, or the connection, or null.
     */
    record Answer(List<String> firstRow, ErrorResponse error) {

        /** The first row's first column, or null when there is none, it is NULL, or it failed. */
        String firstColumn() {
            return error != null || firstRow == null || firstRow.isEmpty() ? null : firstRow.get(0);
        }
    }

    private final CompletableFuture<Answer> answer = new CompletableFuture<>();
    private List<String> firstRow;
    private ErrorResponse error;

    CompletableFuture<Answer> answer() {
        return answer;
    }

    /**
     * One reply message (not released here). True at ReadyForQuery: the answer is complete, and
     * {@link #complete} may be called once the connection no longer counts this query as running.
     */
    boolean onReply(ByteBuf frame) {
        switch (Messages.type(frame)) {
            case Messages.DATA_ROW -> {
                if (firstRow == null && error == null) {
                    try {
                        firstRow = MessageFields.columns(frame, frame.readerIndex());
                    } catch (IndexOutOfBoundsException e) {
                        error =
                                ErrorResponse.error(
                                        SqlState.PROTOCOL_VIOLATION, "malformed DataRow message");
                    }
                }
            }
            case Messages.ERROR_RESPONSE -> {
                if (error == null) {
                    error = ErrorResponse.decode(frame);
                }
            }
            case Messages.READY_FOR_QUERY -> {
                return true;
            }
            default -> {
                // ParseComplete, BindComplete, RowDescription, CommandComplete, notices.
            }
        }
        return false;
    }

    /** Whether the server ended the session (a FATAL came): the connection is of no further use. */
    boolean fatal() {
        return error != null && error.isFatal();
    }

    void complete() {
        answer.complete(new Answer(error == null ? firstRow : null, error));
    }

    /** The connection is gone or gave no answer in time: the error it sent, or {@code why}. */
    void lost(String why) {
        answer.complete(
                new Answer(
                        null,
                        error != null && error.isFatal()
                                ? error
                                : ErrorResponse.error(SqlState.CONNECTION_FAILURE, why)));
    }
}
