package io.pgrelay.protocol;

/**
 * A violation of the wire protocol by the peer. Carries the SQLSTATE the client is told before its
 * connection is closed (08P01 protocol_violation unless said otherwise).
 */
public final class ProtocolException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final String sqlState;

    public ProtocolException(String sqlState, String message) {
        super(message, null, false, false);
        this.sqlState = sqlState;
    }

    public ProtocolException(String message) {
        this(SqlState.PROTOCOL_VIOLATION, message);
    }

    public String sqlState() {
        return sqlState;
    }
}
