package io.pgrelay.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.pgrelay.auth.Md5Password;
import io.pgrelay.auth.ScramClient;
import io.pgrelay.auth.Secret;
import io.pgrelay.auth.UserList;
import io.pgrelay.config.ProxyConfig.AuthType;
import io.pgrelay.protocol.Messages;
import io.pgrelay.protocol.ProtocolException;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/**
 * Each auth_type's exchange message by message, with pgrelay's own SCRAM client on the other side.
 */
class PasswordExchangeTest {

    private static final ByteBufAllocator ALLOC = new UnpooledByteBufAllocator(false);
    private static final String PASSWORD = "s3cret";

    private static PasswordExchange exchange(Secret secret) {
        return new PasswordExchange("alice", secret, new Credentials(UserList.parse("", "test")));
    }

    /** The authentication request code of an 'R' message, after checking its type. */
    private static int authCode(ByteBuf message) {
        assertEquals('R', Messages.type(message));
        return message.getInt(message.readerIndex() + 5);
    }

    private static String saslData(ByteBuf message) {
        return message.toString(
                message.readerIndex() + 9, message.readableBytes() - 9, StandardCharsets.UTF_8);
    }

    private static PasswordExchange.Step answer(PasswordExchange ex, ByteBuf message) {
        try {
            return ex.onPasswordMessage(message, ALLOC);
        } finally {
            message.release();
        }
    }

    @Test
    void trustNeedsOnlyAKnownUser() {
        assertEquals(
                PasswordExchange.Outcome.SUCCEEDED,
                exchange(new Secret.Plain(PASSWORD)).start(AuthType.TRUST, ALLOC).outcome());
        PasswordExchange.Step unknown = exchange(null).start(AuthType.TRUST, ALLOC);
        assertEquals(PasswordExchange.Outcome.FAILED, unknown.outcome());
        assertEquals("no such user in auth_file", unknown.failure());
    }

    @Test
    void cleartextPassword() {
        PasswordExchange ex = exchange(new Secret.Plain(PASSWORD));
        ByteBuf request = ex.start(AuthType.PLAIN, ALLOC).reply();
        assertEquals(Messages.AUTH_CLEARTEXT_PASSWORD, authCode(request));
        request.release();
        assertEquals(
                PasswordExchange.Outcome.SUCCEEDED,
                answer(ex, Messages.passwordMessage(ALLOC, PASSWORD)).outcome());

        PasswordExchange wrong = exchange(new Secret.Plain(PASSWORD));
        wrong.start(AuthType.PLAIN, ALLOC).reply().release();
        PasswordExchange.Step failed = answer(wrong, Messages.passwordMessage(ALLOC, "guess"));
        assertEquals(PasswordExchange.Outcome.FAILED, failed.outcome());
        assertEquals("password mismatch", failed.failure());
    }

    @Test
    void emptyCleartextPasswordNeverAuthenticates() {
        // Found by PasswordExchangeFuzzTest: md5 and SCRAM refused it, cleartext let it in.
        PasswordExchange ex = exchange(new Secret.Plain(""));
        ex.start(AuthType.PLAIN, ALLOC).reply().release();
        assertEquals(
                PasswordExchange.Outcome.FAILED,
                answer(ex, Messages.passwordMessage(ALLOC, "")).outcome());
    }

    @Test
    void md5AgainstAnMd5Secret() {
        PasswordExchange ex = exchange(Secret.parse(Md5Password.encode("alice", PASSWORD)));
        ByteBuf request = ex.start(AuthType.MD5, ALLOC).reply();
        assertEquals(Messages.AUTH_MD5_PASSWORD, authCode(request));
        byte[] salt = new byte[4];
        request.getBytes(request.readerIndex() + 9, salt);
        request.release();
        String response = Md5Password.response(Md5Password.encode("alice", PASSWORD), salt);
        assertEquals(
                PasswordExchange.Outcome.SUCCEEDED,
                answer(ex, Messages.passwordMessage(ALLOC, response)).outcome());
    }

    @Test
    void scramWithAPlainSecret() {
        PasswordExchange ex = exchange(new Secret.Plain(PASSWORD));
        ByteBuf request = ex.start(AuthType.SCRAM_SHA_256, ALLOC).reply();
        assertEquals(Messages.AUTH_SASL, authCode(request));
        request.release();

        ScramClient client = ScramClient.withPassword(PASSWORD);
        PasswordExchange.Step first =
                answer(
                        ex,
                        Messages.saslInitialResponse(
                                ALLOC,
                                ScramClient.MECHANISM,
                                client.clientFirst().getBytes(StandardCharsets.UTF_8)));
        assertEquals(PasswordExchange.Outcome.CONTINUE, first.outcome());
        assertEquals(Messages.AUTH_SASL_CONTINUE, authCode(first.reply()));
        String clientFinal = client.clientFinal(saslData(first.reply()));
        first.reply().release();

        PasswordExchange.Step last =
                answer(
                        ex,
                        Messages.saslResponse(ALLOC, clientFinal.getBytes(StandardCharsets.UTF_8)));
        assertEquals(PasswordExchange.Outcome.SUCCEEDED, last.outcome());
        assertEquals(Messages.AUTH_SASL_FINAL, authCode(last.reply()));
        client.verifyServerFinal(saslData(last.reply()));
        last.reply().release();
    }

    @Test
    void scramForAnUnknownUserFailsOnlyAtTheEnd() {
        PasswordExchange ex = exchange(null);
        ex.start(AuthType.SCRAM_SHA_256, ALLOC).reply().release();
        ScramClient client = ScramClient.withPassword(PASSWORD);
        PasswordExchange.Step first =
                answer(
                        ex,
                        Messages.saslInitialResponse(
                                ALLOC,
                                ScramClient.MECHANISM,
                                client.clientFirst().getBytes(StandardCharsets.UTF_8)));
        assertEquals(PasswordExchange.Outcome.CONTINUE, first.outcome());
        String clientFinal = client.clientFinal(saslData(first.reply()));
        first.reply().release();
        PasswordExchange.Step last =
                answer(
                        ex,
                        Messages.saslResponse(ALLOC, clientFinal.getBytes(StandardCharsets.UTF_8)));
        assertEquals(PasswordExchange.Outcome.FAILED, last.outcome());
        assertNull(last.reply());
        assertNotNull(last.failure());
    }

    @Test
    void anythingButAPasswordMessageIsAProtocolViolation() {
        PasswordExchange ex = exchange(new Secret.Plain(PASSWORD));
        ex.start(AuthType.PLAIN, ALLOC).reply().release();
        ProtocolException e =
                assertThrows(
                        ProtocolException.class,
                        () -> answer(ex, Messages.query(ALLOC, "select 1")));
        assertEquals("expected password response, got message type 'Q'", e.getMessage());
    }

    @Test
    void saslInitialResponseWithAnotherMechanismIsRefused() {
        PasswordExchange ex = exchange(new Secret.Plain(PASSWORD));
        ex.start(AuthType.SCRAM_SHA_256, ALLOC).reply().release();
        ProtocolException e =
                assertThrows(
                        ProtocolException.class,
                        () ->
                                answer(
                                        ex,
                                        Messages.saslInitialResponse(
                                                ALLOC,
                                                "SCRAM-SHA-1",
                                                "n,,n=,r=x".getBytes(StandardCharsets.UTF_8))));
        assertEquals("client selected an invalid SASL authentication mechanism", e.getMessage());
    }
}
