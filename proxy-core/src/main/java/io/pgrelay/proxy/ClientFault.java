package io.pgrelay.proxy;

import io.netty.handler.codec.DecoderException;
import io.pgrelay.protocol.ErrorResponse;
import io.pgrelay.protocol.LogSafe;
import io.pgrelay.protocol.ProtocolException;
import io.pgrelay.protocol.SqlState;
import java.io.IOException;
import java.net.SocketAddress;
import javax.net.ssl.SSLException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What an exception on a client connection means for the client, logged at the level it deserves. A
 * malformed startup packet is closed without a word (PostgreSQL does the same), a protocol
 * violation gets its FATAL, a failed TLS handshake or a broken socket just closes (nothing can be
 * said over them), and anything else is a defect of pgrelay's: the client hears so, and whatever
 * server connection it holds is in an unknown state and must not serve anyone else.
 *
 * @param answer the FATAL to send before closing; null to close without a word
 * @param internal pgrelay's own defect
 */
record ClientFault(ErrorResponse answer, boolean internal) {

    private static final Logger log = LoggerFactory.getLogger(ClientSession.class);

    static ClientFault of(Throwable cause, SocketAddress client, String user) {
        Throwable root =
                cause instanceof DecoderException && cause.getCause() != null
                        ? cause.getCause()
                        : cause;
        if (root instanceof ProtocolException pe && !pe.answered()) {
            log.info(
                    "client {}: {}; closing without a reply, as PostgreSQL does",
                    client,
                    LogSafe.escape(pe.getMessage(), 300));
            return new ClientFault(null, false);
        }
        if (root instanceof ProtocolException pe) {
            if (pe.sqlState().equals(SqlState.OUT_OF_MEMORY)) {
                log.warn("client {} (user {}): {}", client, LogSafe.quote(user), pe.getMessage());
            } else {
                log.info(
                        "client {}: protocol violation: {}",
                        client,
                        LogSafe.escape(pe.getMessage(), 300));
            }
            return new ClientFault(ErrorResponse.fatal(pe.sqlState(), pe.getMessage()), false);
        }
        if (root instanceof SSLException) {
            log.info("client {}: TLS: {}", client, root.getMessage());
            return new ClientFault(null, false);
        }
        if (root instanceof IOException) {
            log.debug("client {}: {}", client, root.toString());
            return new ClientFault(null, false);
        }
        log.error("client {}: internal error; closing the connection", client, root);
        return new ClientFault(
                ErrorResponse.fatal(
                        SqlState.INTERNAL_ERROR,
                        "internal error in pgrelay; the connection is closed"),
                true);
    }
}
