package io.pgrelay.pool;

/** Why a {@link Waiter} did not get a connection. */
public final class PoolException extends Exception {

    public enum Reason {
        WAIT_TIMEOUT,
        CONNECT_FAILED,
        CLOSED
    }

    private final Reason reason;

    public PoolException(Reason reason, String message, Throwable cause) {
        // No stack trace: it would only show the pool janitor or a connect callback, never the
        // client's call
        // site, and wait timeouts can come in bursts. The cause keeps its own trace.
        super(message, cause, true, false);
        this.reason = reason;
    }

    public PoolException(Reason reason, String message) {
        this(reason, message, null);
    }

    public Reason reason() {
        return reason;
    }
}
