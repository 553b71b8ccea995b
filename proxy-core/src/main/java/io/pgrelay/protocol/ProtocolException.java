package io.pgrelay.protocol;

/**
 * A violation of the wire protocol by the peer. Carries the SQLSTATE the client is told before its
 * connection is closed (08P01 protocol_violation unless said otherwise).
 */
public final class ProtocolException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final String sqlState;
    private final boolean answered;

    public ProtocolException(String sqlState, String message) {
        this(sqlState, message, true);
    }

    private ProtocolException(String sqlState, String message, boolean answered) {
        super(message, null, false, false);
        this.sqlState = sqlState;
        this.answered = answered;
    }

    /**
     * A violation PostgreSQL only logs (COMMERROR) and answers by closing the connection, such as a
     * startup packet of impossible length: a client that sent Terminate before its startup packet,
     * or something that is not a PostgreSQL client at all.
     */
    public static ProtocolException unanswered(String message) {
        return new ProtocolException(SqlState.PROTOCOL_VIOLATION, message, false);
    }

    public ProtocolException(String message) {
        this(SqlState.PROTOCOL_VIOLATION, message);
    }

    public String sqlState() {
        return sqlState;
    }

    /** Whether the peer gets an ErrorResponse before the close; false: a quiet close. */
    public boolean answered() {
        return answered;
    }
}
