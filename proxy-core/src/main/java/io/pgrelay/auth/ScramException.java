package io.pgrelay.auth;

/**
 * A SCRAM exchange that cannot go on: a malformed or unsupported message, or (client side) a server
 * that failed to prove it knows the password. A wrong password on the server side is not one of
 * these: {@link ScramServer#clientFinal} reports it as a failed {@link ScramServer.Outcome}.
 */
public final class ScramException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public ScramException(String message) {
        super(message);
    }
}
