package io.pgrelay.proxy;

import io.pgrelay.protocol.ErrorResponse;
import io.pgrelay.protocol.LogSafe;
import io.pgrelay.protocol.SqlState;

/**
 * A server connection could not be opened or logged in. Carries what the client should be told: the
 * server's own ErrorResponse (3D000 unknown database, 28P01, 53300...) when there was one, else a
 * connection failure (08006) naming the backend and the cause.
 *
 * <p>The exception's own message is for logs: escaped and cut (see {@link LogSafe}), because it
 * echoes the database and user names the client chose. The client gets {@link #error()} as is.
 */
final class ServerLoginException extends Exception {

    private static final long serialVersionUID = 1L;

    /** Enough for a server message that quotes a 63-byte name, plus pgrelay's context. */
    private static final int LOG_LIMIT = 300;

    private final transient ErrorResponse error;
    private final boolean refusal;
    private final boolean unreachable;

    ServerLoginException(ErrorResponse serverError) {
        super(LogSafe.escape(serverError.toString(), LOG_LIMIT), null, false, false);
        this.error = serverError;
        this.refusal = isRefusal(serverError.sqlState());
        this.unreachable = serverError.sqlState().equals(SqlState.CANNOT_CONNECT_NOW);
    }

    ServerLoginException(String message) {
        this(message, false, false);
    }

    private ServerLoginException(String message, boolean refusal, boolean unreachable) {
        super(LogSafe.escape(message, LOG_LIMIT), null, false, false);
        this.error = ErrorResponse.error(SqlState.CONNECTION_FAILURE, message);
        this.refusal = refusal;
        this.unreachable = unreachable;
    }

    /**
     * The server could not be reached or did not answer: the TCP connect failed or timed out, the
     * login did not finish within server_connect_timeout, or the connection closed during it. What
     * {@link BackendHealth} backs off from.
     */
    static ServerLoginException unreachable(String message) {
        return new ServerLoginException(message, false, true);
    }

    /**
     * pgrelay cannot log in as this user at all (no secret, or one the server's method cannot use):
     * as permanent for the pool as the server's own 28P01, whatever the SQLSTATE says.
     */
    static ServerLoginException credentials(String message) {
        return new ServerLoginException(message, true, false);
    }

    ErrorResponse error() {
        return error;
    }

    /**
     * True when the server (or pgrelay, for credentials) refused this database or user, as opposed
     * to not being reachable right now: retrying gets the same answer until someone creates the
     * database, the role or the grant, so the pool need not be kept.
     */
    boolean isRefusal() {
        return refusal;
    }

    /**
     * True when the backend is not there to log in to right now: not reachable, not answering, or
     * answering 57P03 (starting up, shutting down, in recovery without hot standby). Not for an
     * answer about this database or user, nor for out of connection slots (53300): the server is
     * up.
     */
    boolean isUnreachable() {
        return unreachable;
    }

    /**
     * Refusals: invalid_authorization_specification and invalid_password (class 28: no such role,
     * bad password, pg_hba reject), invalid_catalog_name (3D000: no such database),
     * insufficient_privilege (42501: no CONNECT privilege, role without LOGIN) and
     * object_not_in_prerequisite_state (55000: datallowconn = false). Everything else, 08xxx
     * connection failures, 57P0x shutdown and startup, 53300 too many connections, counts as
     * transient.
     */
    static boolean isRefusal(String sqlState) {
        return sqlState.startsWith("28")
                || sqlState.equals("3D000")
                || sqlState.equals("42501")
                || sqlState.equals("55000");
    }
}
