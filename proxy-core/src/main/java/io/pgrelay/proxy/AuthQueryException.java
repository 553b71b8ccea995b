package io.pgrelay.proxy;

import io.pgrelay.protocol.LogSafe;

/**
 * An auth_query lookup failed: no answer could be had, as opposed to an answer saying there is no
 * such user. The message is for the log (escaped and cut: it quotes names clients chose, and the
 * server's error); the client is told only that the lookup failed, with {@link #sqlState}.
 */
final class AuthQueryException extends Exception {

    private static final long serialVersionUID = 1L;

    private final String sqlState;

    /**
     * @param sqlState 08006 when the server could not be reached or did not answer in time (it may
     *     work on the next try), 28000 when it answered no (auth_user refused, the query failed)
     */
    AuthQueryException(String sqlState, String message) {
        super(LogSafe.escape(message, 500), null, false, false);
        this.sqlState = sqlState;
    }

    String sqlState() {
        return sqlState;
    }
}
