package io.pgrelay.proxy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.pgrelay.auth.Md5Password;
import io.pgrelay.auth.ScramClient;
import io.pgrelay.auth.Secret;
import io.pgrelay.protocol.CStrings;
import io.pgrelay.protocol.MessageFields;
import io.pgrelay.protocol.Messages;
import io.pgrelay.routing.Backend;
import java.nio.charset.StandardCharsets;

/**
 * pgrelay's side of a server's authentication exchange, with the secret pgrelay holds for the user
 * (auth_file's, or auth_query's: {@link Credentials#secret}): cleartext, md5 (from a plain password
 * or the stored md5 hash), SCRAM-SHA-256 (from a plain password, or from the ClientKey the user's
 * own SCRAM login to pgrelay revealed, as PgBouncer does). Runs on the server connection's event
 * loop during its login.
 */
final class ServerAuthentication {

    private final Credentials credentials;
    private final String user;
    private final Backend backend;
    private ScramClient scram;

    ServerAuthentication(Credentials credentials, String user, Backend backend) {
        this.credentials = credentials;
        this.user = user;
        this.backend = backend;
    }

    /**
     * One Authentication request: the PasswordMessage or SASL response to send, or null (AuthOK,
     * SASLFinal).
     */
    ByteBuf onRequest(ByteBuf frame, ByteBufAllocator alloc) throws ServerLoginException {
        int start = frame.readerIndex();
        int code = MessageFields.authenticationCode(frame, start);
        switch (code) {
            case Messages.AUTH_OK -> {
                scram = null;
                return null;
            }
            case Messages.AUTH_CLEARTEXT_PASSWORD -> {
                if (!(secret() instanceof Secret.Plain plain)) {
                    throw cannotAuthenticate("a cleartext password", "only a hashed secret");
                }
                return Messages.passwordMessage(alloc, plain.password());
            }
            case Messages.AUTH_MD5_PASSWORD -> {
                byte[] salt = new byte[4];
                frame.getBytes(start + 9, salt);
                Secret secret = secret();
                String hash;
                if (secret instanceof Secret.Plain plain) {
                    hash = Md5Password.encode(user, plain.password());
                } else if (secret instanceof Secret.Md5 md5) {
                    hash = md5.hash();
                } else {
                    throw cannotAuthenticate("md5", "a SCRAM secret");
                }
                return Messages.passwordMessage(alloc, Md5Password.response(hash, salt));
            }
            case Messages.AUTH_SASL -> {
                // The mechanism names follow the request code.
                ByteBuf body = frame.slice(start + 9, frame.readableBytes() - 9);
                boolean offered = false;
                while (body.isReadable()) {
                    String mechanism = CStrings.read(body);
                    if (mechanism.isEmpty()) {
                        break;
                    }
                    offered |= mechanism.equals("SCRAM-SHA-256");
                }
                if (!offered) {
                    throw new ServerLoginException(
                            "server " + backend + " offers no SASL mechanism pgrelay supports");
                }
                scram = scramClient();
                byte[] first = scram.clientFirst().getBytes(StandardCharsets.UTF_8);
                return Messages.saslInitialResponse(alloc, "SCRAM-SHA-256", first);
            }
            case Messages.AUTH_SASL_CONTINUE -> {
                requireScram();
                String serverFirst =
                        frame.toString(
                                start + 9, frame.readableBytes() - 9, StandardCharsets.UTF_8);
                byte[] clientFinal =
                        scram.clientFinal(serverFirst).getBytes(StandardCharsets.UTF_8);
                return Messages.saslResponse(alloc, clientFinal);
            }
            case Messages.AUTH_SASL_FINAL -> {
                requireScram();
                scram.verifyServerFinal(
                        frame.toString(
                                start + 9, frame.readableBytes() - 9, StandardCharsets.UTF_8));
                return null;
            }
            default ->
                    throw new ServerLoginException(
                            "server "
                                    + backend
                                    + " requested an authentication method pgrelay does not support (code "
                                    + code
                                    + ")");
        }
    }

    private void requireScram() throws ServerLoginException {
        if (scram == null) {
            throw new ServerLoginException(
                    "server " + backend + " sent a SASL message out of order");
        }
    }

    private ScramClient scramClient() throws ServerLoginException {
        Secret secret = secret();
        if (secret instanceof Secret.Plain plain) {
            return ScramClient.withPassword(plain.password());
        }
        if (secret instanceof Secret.Scram s) {
            byte[] clientKey = credentials.clientKey(user, s);
            if (clientKey == null) {
                throw ServerLoginException.credentials(
                        "cannot log in to server "
                                + backend
                                + " as \""
                                + user
                                + "\" yet: pgrelay holds only a SCRAM secret, which works once the user has logged in"
                                + " to pgrelay with SCRAM");
            }
            return ScramClient.withClientKey(clientKey, s.serverKey());
        }
        throw cannotAuthenticate("SCRAM-SHA-256", "an md5 secret");
    }

    private Secret secret() throws ServerLoginException {
        return credentials
                .secret(user)
                .orElseThrow(
                        () ->
                                ServerLoginException.credentials(
                                        "cannot log in to server "
                                                + backend
                                                + ": no secret for user \""
                                                + user
                                                + "\" in auth_file (nor from auth_query)"));
    }

    private ServerLoginException cannotAuthenticate(String requested, String have) {
        return ServerLoginException.credentials(
                "server "
                        + backend
                        + " requested "
                        + requested
                        + " authentication for user \""
                        + user
                        + "\" but pgrelay holds "
                        + have);
    }
}
