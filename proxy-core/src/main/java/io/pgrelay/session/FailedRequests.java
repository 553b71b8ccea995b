package io.pgrelay.session;

import io.pgrelay.protocol.ErrorResponse;
import io.pgrelay.protocol.Messages;
import io.pgrelay.protocol.SqlState;

/**
 * Requests answered with an error without reaching a server: after the server connection was lost
 * mid-transaction, when no server can be had, or when pgrelay itself rejected the first message of
 * an extended-protocol batch. Each is answered as PostgreSQL answers a failed request: a simple
 * Query (or FunctionCall, or a lone Sync) with an ErrorResponse and ReadyForQuery; an extended
 * batch with one ErrorResponse, everything after it ignored up to its Sync, which gets the
 * ReadyForQuery. Runs on the client's event loop.
 */
public final class FailedRequests {

    /** Where the answers go. */
    public interface Client {
        /** An ErrorResponse (severity ERROR) followed by ReadyForQuery, flushed. */
        void fail(ErrorResponse error);

        /** ReadyForQuery alone, flushed. */
        void readyForQuery();
    }

    /** {@link #skipUntilSync} when the error went out already: the Sync gets ReadyForQuery only. */
    private static final ErrorResponse ALREADY_REPORTED =
            ErrorResponse.error(SqlState.PROTOCOL_VIOLATION, "reported");

    private final Client client;

    /** Set: skip messages up to the next Sync, then answer it with this error. */
    private ErrorResponse skipUntilSync;

    /** Set: the next request fails with this error (its transaction was lost with its server). */
    private ErrorResponse failNext;

    public FailedRequests(Client client) {
        this.client = client;
    }

    /** Whether the next client message is answered here rather than sent anywhere. */
    public boolean active() {
        return skipUntilSync != null || failNext != null;
    }

    /** Whether messages are being dropped up to the next Sync. */
    public boolean skippingToSync() {
        return skipUntilSync != null;
    }

    /** An unfinished batch was lost: the rest of it up to Sync is dropped, the Sync fails. */
    public void skipToSync(ErrorResponse error) {
        skipUntilSync = error;
    }

    /** The error for this batch went out already: drop up to Sync, answer it with ReadyForQuery. */
    public void reportedSkipToSync() {
        skipUntilSync = ALREADY_REPORTED;
    }

    /** The transaction was lost between requests: the next request fails with this error. */
    public void failNext(ErrorResponse error) {
        failNext = error;
    }

    /**
     * The server connection was lost: each request the client waits on fails now; an unfinished
     * batch fails at its Sync; a transaction lost between requests fails the next one.
     */
    public void serverLost(ExpectedReplies.Lost lost, ErrorResponse error) {
        for (int i = 0; i < lost.unanswered(); i++) {
            client.fail(error);
        }
        if (lost.unsynced()) {
            skipUntilSync = error;
        } else if (lost.unanswered() == 0 && lost.inTransaction()) {
            failNext = error;
        }
    }

    /** One client message of type {@code type} while {@link #active}. */
    public void absorb(byte type) {
        if (skipUntilSync == null) {
            if (type == Messages.QUERY || type == Messages.SYNC || type == Messages.FUNCTION_CALL) {
                client.fail(failNext);
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
                client.readyForQuery();
            } else {
                client.fail(skipUntilSync);
            }
            skipUntilSync = null;
        }
    }

    /**
     * Fails a run of queued requests, given by type, in order with {@code error}: each request
     * fails on its own, and an extended batch without its Sync yet fails at that Sync.
     */
    public void failEach(ErrorResponse error, byte type) {
        if (skipUntilSync == null && failNext == null) {
            failNext = error;
        }
        absorb(type);
    }

    /** After a run of {@link #failEach}: a later request is a new one, not part of the failure. */
    public void endOfQueue() {
        failNext = null;
    }
}
