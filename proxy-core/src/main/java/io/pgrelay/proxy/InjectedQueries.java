package io.pgrelay.proxy;

import io.netty.buffer.ByteBuf;
import io.pgrelay.protocol.ErrorResponse;
import io.pgrelay.protocol.MessageFields;
import io.pgrelay.protocol.Messages;
import io.pgrelay.session.SessionCheck;
import io.pgrelay.session.SessionState;

/**
 * Queries pgrelay sends on a client's server connection ahead of the client's own: the SETs that
 * bring the connection to the client's parameters, the leader probe, and the session check after a
 * transaction that may have changed the session. Their replies are not the client's; they are read
 * here and dropped, up to each query's ReadyForQuery. Runs on the client's event loop.
 */
final class InjectedQueries {

    /** What a reply meant. */
    enum Outcome {
        /** Nothing to do. */
        NONE,
        /** The leader probe has its answer: the client decides with the router's primary. */
        PROBE_ANSWERED,
        /** The server refused the sync: PostgreSQL would have refused these parameters at login. */
        REFUSED,
        /** The session check is answered: {@link #checkResult()}. */
        CHECKED,
        /** The last outstanding sync is done: the client's replies come next, if any are owed. */
        DONE
    }

    private final SessionServices relay;
    private final LeaderProbe probe;
    private int outstanding;
    private ErrorResponse error;

    /** The session check in flight; sent only when nothing else is outstanding, so alone. */
    private SessionCheck check;

    private SessionCheck.Result checkResult;

    InjectedQueries(SessionServices relay, LeaderProbe probe) {
        this.relay = relay;
        this.probe = probe;
    }

    /** Whether replies to injected queries are still due (the client's replies come after). */
    boolean outstanding() {
        return outstanding > 0;
    }

    /** A query went out; its replies end with a ReadyForQuery. */
    void sent() {
        outstanding++;
    }

    /** The session check of these parts went out, with nothing else outstanding. */
    void checkSent(SessionState.Check what) {
        check = new SessionCheck(what.parts(), what.names() == null);
        outstanding++;
    }

    /** Whether the session check is in flight. */
    boolean checking() {
        return check != null;
    }

    /** What the check found, once {@link Outcome#CHECKED} was returned; null if it failed. */
    SessionCheck.Result checkResult() {
        return checkResult;
    }

    /** The connection is gone or handed over: nothing more is due on it. */
    void reset() {
        outstanding = 0;
        error = null;
        check = null;
    }

    /** The error that refused the sync, once {@link Outcome#REFUSED} was returned. */
    ErrorResponse refusal() {
        ErrorResponse refused = error;
        error = null;
        return refused;
    }

    /** One reply on {@code conn} (the caller releases the frame). */
    Outcome onReply(ServerConnection conn, byte type, ByteBuf frame) {
        if (check != null) {
            return onCheckReply(type, frame);
        }
        int at = frame.readerIndex();
        switch (type) {
            case Messages.PARAMETER_STATUS -> {
                // A promotion reported as the probe is answered; other reports are the sync's own.
                String name = MessageFields.parameterName(frame, at);
                if (name.equals("in_hot_standby")) {
                    String value = MessageFields.parameterValue(frame, at);
                    conn.reportParameter(name, value);
                    relay.reportHotStandby(conn.backend(), value);
                }
            }
            case Messages.ERROR_RESPONSE -> error = ErrorResponse.decode(frame);
            case Messages.READY_FOR_QUERY -> {
                if (--outstanding == 0 && probe.isAsking()) {
                    return Outcome.PROBE_ANSWERED;
                }
                if (error != null) {
                    return Outcome.REFUSED;
                }
                if (outstanding == 0) {
                    return Outcome.DONE;
                }
            }
            default -> {
                if (probe.isAsking()) {
                    probe.onReply(type, frame);
                }
            }
        }
        return Outcome.NONE;
    }

    private Outcome onCheckReply(byte type, ByteBuf frame) {
        switch (type) {
            case Messages.DATA_ROW -> check.row(frame);
            case Messages.ERROR_RESPONSE -> check.failed();
            case Messages.READY_FOR_QUERY -> {
                outstanding--;
                checkResult = check.result();
                check = null;
                return Outcome.CHECKED;
            }
            default -> {}
        }
        return Outcome.NONE;
    }
}
