package io.pgrelay.proxy;

import io.pgrelay.protocol.ErrorResponse;
import io.pgrelay.protocol.SqlState;

/**
 * A server connection could not be opened or logged in. Carries what the client should be
 * told: the server's own ErrorResponse (3D000 unknown database, 28P01, 53300...) when there
 * was one, else a connection failure (08006) naming the backend and the cause.
 */
final class ServerLoginException extends Exception {

    private static final long serialVersionUID = 1L;

    private final transient ErrorResponse error;

    ServerLoginException(ErrorResponse serverError) {
        super(serverError.toString(), null, false, false);
        this.error = serverError;
    }

    ServerLoginException(String message) {
        super(message, null, false, false);
        this.error = ErrorResponse.error(SqlState.CONNECTION_FAILURE, message);
    }

    ErrorResponse error() {
        return error;
    }
}
