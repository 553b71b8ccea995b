package io.pgrelay.proxy;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.pgrelay.auth.Md5Password;
import io.pgrelay.auth.ScramException;
import io.pgrelay.auth.ScramServer;
import io.pgrelay.auth.Secret;
import io.pgrelay.config.ProxyConfig.AuthType;
import io.pgrelay.protocol.CStrings;
import io.pgrelay.protocol.LogSafe;
import io.pgrelay.protocol.MessageFields;
import io.pgrelay.protocol.Messages;
import io.pgrelay.protocol.ProtocolException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The server side of one client's login: which Authentication request to send for {@code auth_type}
 * and the user's secret, and what each PasswordMessage (cleartext, md5, SASLInitialResponse,
 * SASLResponse) leads to. Knows nothing of channels: the session writes the replies and acts on the
 * outcome.
 *
 * <p>Unknown users go through the same exchange as known ones and fail at the same step with the
 * same message, so a client cannot tell them from a wrong password.
 */
final class PasswordExchange {

    private static final Logger log = LoggerFactory.getLogger(PasswordExchange.class);
    private static final SecureRandom RANDOM = new SecureRandom();

    enum Outcome {
        CONTINUE,
        SUCCEEDED,
        FAILED
    }

    /**
     * What a message led to. {@code reply}: what to send the client first (an Authentication
     * request, SASLContinue, or SASLFinal before AuthenticationOk), or null. {@code failure}: why a
     * FAILED exchange failed, for the log.
     */
    record Step(Outcome outcome, ByteBuf reply, String failure) {
        static Step next(ByteBuf reply) {
            return new Step(Outcome.CONTINUE, reply, null);
        }

        static Step succeeded(ByteBuf reply) {
            return new Step(Outcome.SUCCEEDED, reply, null);
        }

        static Step failed(String why) {
            return new Step(Outcome.FAILED, null, why);
        }
    }

    private enum Expecting {
        PASSWORD,
        MD5,
        SASL_INITIAL,
        SASL_FINAL,
        NOTHING
    }

    private final String user;
    private final Secret secret;
    private final Credentials credentials;

    /** tls-server-end-point data of the client's TLS connection, or null (no -PLUS offer). */
    private final byte[] channelBinding;

    private Expecting expecting = Expecting.NOTHING;
    private ScramServer scram;
    private byte[] md5Salt;

    PasswordExchange(String user, Secret secret, Credentials credentials) {
        this(user, secret, credentials, null);
    }

    /** {@code channelBinding}: see {@link io.pgrelay.tls.ChannelBinding}; null without TLS. */
    PasswordExchange(String user, Secret secret, Credentials credentials, byte[] channelBinding) {
        this.user = user;
        this.secret = secret;
        this.credentials = credentials;
        this.channelBinding = channelBinding;
    }

    /** The first step: the Authentication request for {@code type}, or the result of trust. */
    Step start(AuthType type, ByteBufAllocator alloc) {
        return switch (type) {
            case TRUST ->
                    secret == null
                            ? Step.failed("no such user in auth_file")
                            : Step.succeeded(null);
            case PLAIN -> {
                expecting = Expecting.PASSWORD;
                yield Step.next(Messages.authenticationCleartextPassword(alloc));
            }
            case MD5 -> {
                if (secret instanceof Secret.Scram) {
                    yield startScram(alloc);
                }
                expecting = Expecting.MD5;
                md5Salt = new byte[4];
                RANDOM.nextBytes(md5Salt);
                yield Step.next(Messages.authenticationMd5Password(alloc, md5Salt));
            }
            case SCRAM_SHA_256 -> startScram(alloc);
        };
    }

    private Step startScram(ByteBufAllocator alloc) {
        Optional<ScramServer> real =
                secret == null ? Optional.empty() : ScramServer.forSecret(user, secret);
        if (secret != null && real.isEmpty()) {
            log.warn(
                    "user {} cannot log in with SCRAM: its secret is an md5 hash",
                    LogSafe.quote(user));
        }
        scram = real.orElseGet(() -> ScramServer.mock(user));
        expecting = Expecting.SASL_INITIAL;
        if (channelBinding == null) {
            return Step.next(Messages.authenticationSasl(alloc, List.of(ScramServer.MECHANISM)));
        }
        // PostgreSQL's order: the bound mechanism first, for clients that take the first they
        // know.
        scram.offerChannelBinding(channelBinding);
        return Step.next(
                Messages.authenticationSasl(
                        alloc, List.of(ScramServer.MECHANISM_PLUS, ScramServer.MECHANISM)));
    }

    /**
     * The client's answer (a whole message, type 'p'; not released here). Malformed or out-of-turn
     * messages throw {@link ProtocolException} (08P01, as PostgreSQL answers them).
     */
    Step onPasswordMessage(ByteBuf frame, ByteBufAllocator alloc) {
        if (Messages.type(frame) != Messages.PASSWORD_MESSAGE) {
            throw new ProtocolException(
                    "expected password response, got message type '"
                            + (char) Messages.type(frame)
                            + "'");
        }
        ByteBuf body = MessageFields.body(frame, frame.readerIndex());
        try {
            return switch (expecting) {
                case PASSWORD ->
                        done(
                                secret != null && passwordMatches(CStrings.read(body)),
                                null,
                                "password mismatch");
                case MD5 ->
                        done(
                                secret != null
                                        && Md5Password.verify(
                                                secret, user, md5Salt, CStrings.read(body)),
                                null,
                                "md5 password mismatch");
                case SASL_INITIAL -> {
                    String mechanism = CStrings.read(body);
                    boolean plus =
                            channelBinding != null && mechanism.equals(ScramServer.MECHANISM_PLUS);
                    if (!plus && !mechanism.equals(ScramServer.MECHANISM)) {
                        throw new ProtocolException(
                                "client selected an invalid SASL authentication mechanism");
                    }
                    int dataLength = body.readInt();
                    if (dataLength < 0 || dataLength != body.readableBytes()) {
                        throw new ProtocolException("malformed SASLInitialResponse message");
                    }
                    String serverFirst =
                            scram.serverFirst(body.toString(StandardCharsets.UTF_8), plus);
                    expecting = Expecting.SASL_FINAL;
                    yield Step.next(
                            Messages.authenticationSaslContinue(
                                    alloc, serverFirst.getBytes(StandardCharsets.UTF_8)));
                }
                case SASL_FINAL -> {
                    ScramServer.Outcome outcome =
                            scram.clientFinal(body.toString(StandardCharsets.UTF_8));
                    if (!outcome.success()) {
                        yield done(false, null, outcome.failureReason());
                    }
                    if (secret instanceof Secret.Scram s) {
                        // Lets pgrelay log in to PostgreSQL as this user with the same SCRAM
                        // secret.
                        credentials.rememberClientKey(user, s, outcome.clientKey());
                    }
                    yield done(
                            true,
                            Messages.authenticationSaslFinal(
                                    alloc, outcome.serverFinal().getBytes(StandardCharsets.UTF_8)),
                            null);
                }
                case NOTHING -> throw new ProtocolException("unexpected password message");
            };
        } catch (ScramException e) {
            throw new ProtocolException(e.getMessage());
        } catch (IndexOutOfBoundsException e) {
            throw new ProtocolException("malformed password message");
        }
    }

    private Step done(boolean success, ByteBuf reply, String failure) {
        expecting = Expecting.NOTHING;
        scram = null;
        md5Salt = null;
        return success ? Step.succeeded(reply) : Step.failed(failure);
    }

    private boolean passwordMatches(String password) {
        if (secret instanceof Secret.Plain plain) {
            // An empty password never authenticates, as with md5 and SCRAM (and in PostgreSQL):
            // a user listed with "" must not get in by sending an empty password.
            return !plain.password().isEmpty() && constantTimeEquals(plain.password(), password);
        }
        if (secret instanceof Secret.Md5 md5) {
            return constantTimeEquals(md5.hash(), Md5Password.encode(user, password));
        }
        Secret.Scram s = (Secret.Scram) secret;
        return s.equals(Secret.Scram.fromPassword(password, s.salt(), s.iterations()));
    }

    private static boolean constantTimeEquals(String a, String b) {
        return MessageDigest.isEqual(
                a.getBytes(StandardCharsets.UTF_8), b.getBytes(StandardCharsets.UTF_8));
    }
}
