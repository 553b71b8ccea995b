package io.pgrelay.auth;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.nio.charset.StandardCharsets;

/**
 * Both ends of SCRAM-SHA-256 against whatever the peer sends. The nonces are fixed so the fuzzer
 * can get past the nonce checks to the proof and signature parsing. Messages are made from bytes as
 * pgrelay makes them (UTF-8, malformed sequences replaced). The only failure allowed is a
 * ScramException (ScramServer also reports a wrong proof as a failed Outcome).
 */
class ScramFuzzTest {

    private static final String PASSWORD = "pencil";
    private static final String CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO";
    private static final String SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";

    /** Few iterations: a fuzz run must be fast, and the count is not what is under test here. */
    private static final Secret.Scram SECRET =
            Secret.Scram.fromPassword(
                    PASSWORD, "W22ZaJ0SNY7soEsUEjb6gQ==".getBytes(StandardCharsets.US_ASCII), 16);

    /** pgrelay as the server: client-first-message, then client-final-message, from a client. */
    @FuzzTest
    void server(FuzzedDataProvider data) {
        boolean doomed = data.consumeBoolean();
        ScramServer server = new ScramServer(SECRET, doomed, SERVER_NONCE);
        String clientFirst = utf8(data.consumeBytes(data.consumeInt(0, 200)));
        String clientFinal = utf8(data.consumeRemainingAsBytes());
        try {
            assertNotNull(server.serverFirst(clientFirst));
        } catch (ScramException expected) {
            return;
        }
        ScramServer.Outcome outcome;
        try {
            outcome = server.clientFinal(clientFinal);
        } catch (ScramException expected) {
            return;
        }
        if (outcome.success()) {
            // Only a client that knows the password gets here; a mock exchange never succeeds.
            assertFalse(doomed, "mock SCRAM exchange succeeded");
            assertNotNull(outcome.serverFinal());
        } else {
            assertNull(outcome.serverFinal());
            assertNotNull(outcome.failureReason());
        }
    }

    /**
     * pgrelay as the client logging in to a server: server-first-message, then
     * server-final-message.
     */
    @FuzzTest
    void client(FuzzedDataProvider data) {
        ScramClient client =
                data.consumeBoolean()
                        ? new ScramClient(PASSWORD, null, null, "", CLIENT_NONCE)
                        : new ScramClient(
                                null,
                                ScramCrypto.clientKey(
                                        ScramCrypto.saltedPassword(PASSWORD, SECRET.salt(), 16)),
                                SECRET.serverKey(),
                                "",
                                CLIENT_NONCE);
        client.clientFirst();
        String serverFirst = utf8(data.consumeBytes(data.consumeInt(0, 200)));
        String serverFinal = utf8(data.consumeRemainingAsBytes());
        try {
            assertNotNull(client.clientFinal(serverFirst));
            client.verifyServerFinal(serverFinal);
        } catch (ScramException expected) {
            // malformed, or a server that does not prove it knows the secret
        }
    }

    private static String utf8(byte[] bytes) {
        return new String(bytes, StandardCharsets.UTF_8);
    }
}
