package io.pgrelay.proxy;

import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.netty.buffer.ByteBuf;
import io.pgrelay.auth.Md5Password;
import io.pgrelay.auth.Secret;
import io.pgrelay.auth.UserList;
import io.pgrelay.config.ProxyConfig.AuthType;
import io.pgrelay.protocol.ProtocolException;
import io.pgrelay.testkit.QuietLogs;
import io.pgrelay.testkit.TrackingAllocator;
import java.nio.charset.StandardCharsets;

/**
 * A client's login, as ClientSession runs it: the exchange for an auth_type and a secret, then
 * whatever messages the client sends until the exchange is over. Allowed: a Step, or a
 * ProtocolException (the session reports it and closes). An unknown user or an empty password never
 * logs in, and every reply buffer is released.
 */
class PasswordExchangeFuzzTest {

    static {
        QuietLogs.pgrelay();
    }

    private static final String USER = "alice";
    private static final String PASSWORD = "s3cret";

    /** Few iterations: cleartext login against a SCRAM secret runs PBKDF2 for every message. */
    private static final Secret SCRAM =
            Secret.Scram.fromPassword(
                    PASSWORD, "c2FsdHNhbHRzYWx0".getBytes(StandardCharsets.US_ASCII), 16);

    private static final Secret[] SECRETS = {
        null,
        new Secret.Plain(PASSWORD),
        new Secret.Plain(""),
        Secret.parse(Md5Password.encode(USER, PASSWORD)),
        SCRAM,
    };

    @FuzzTest
    void passwordMessages(FuzzedDataProvider data) {
        AuthType type = data.pickValue(AuthType.values());
        int secretIndex = data.consumeInt(0, SECRETS.length - 1);
        Secret secret = SECRETS[secretIndex];
        boolean mayLogIn = secret != null && secretIndex != 2;
        TrackingAllocator alloc = new TrackingAllocator();
        PasswordExchange exchange =
                new PasswordExchange(USER, secret, new Credentials(UserList.parse("", "test")));
        PasswordExchange.Step step = exchange.start(type, alloc);
        release(step);
        for (int i = 0;
                i < 4
                        && step.outcome() == PasswordExchange.Outcome.CONTINUE
                        && data.remainingBytes() > 0;
                i++) {
            byte messageType = data.consumeBoolean() ? (byte) 'p' : data.consumeByte();
            byte[] body = data.consumeBytes(data.consumeInt(0, 512));
            // A whole frame, as FrameDecoder hands it on: type, length, body.
            ByteBuf frame =
                    alloc.buffer(5 + body.length)
                            .writeByte(messageType)
                            .writeInt(4 + body.length)
                            .writeBytes(body);
            try {
                step = exchange.onPasswordMessage(frame, alloc);
            } catch (ProtocolException e) {
                assertNotNull(e.getMessage());
                break; // the session sends a FATAL and closes
            } finally {
                frame.release();
            }
            release(step);
            if (!mayLogIn) {
                assertNotEquals(
                        PasswordExchange.Outcome.SUCCEEDED,
                        step.outcome(),
                        "logged in as an unknown user or with an empty password");
            }
        }
        alloc.assertAllReleased();
    }

    private static void release(PasswordExchange.Step step) {
        if (step.reply() != null) {
            step.reply().release();
        }
    }
}
