package io.pgrelay.tls;

/** A TLS setting or file that cannot be used; the message names the setting and the reason. */
public final class TlsSetupException extends RuntimeException {

    public TlsSetupException(String message) {
        super(message);
    }

    public TlsSetupException(String message, Throwable cause) {
        super(message, cause);
    }
}
