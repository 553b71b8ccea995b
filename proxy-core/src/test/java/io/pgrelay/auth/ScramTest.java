package io.pgrelay.auth;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Base64;
import org.junit.jupiter.api.Test;

class ScramTest {

    // RFC 7677 section 3
    private static final String RFC_CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO";
    private static final String RFC_SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    private static final byte[] RFC_SALT = Base64.getDecoder().decode("W22ZaJ0SNY7soEsUEjb6gQ==");
    private static final String RFC_CLIENT_FIRST = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    private static final String RFC_SERVER_FIRST =
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    private static final String RFC_CLIENT_FINAL =
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                    + "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    private static final String RFC_SERVER_FINAL = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    // Made by PostgreSQL 15 (CREATE ROLE ... PASSWORD with password_encryption = 'scram-sha-256').
    private static final String PG_SECRET_PENCIL =
            "SCRAM-SHA-256$4096:86zmph30laJLWnAw2ScC9w==$"
                    + "B3hvNc+4Y0WxOKe2DUvRAdpilawFLb/+9rt5QtMtwLY=:MKiFMX5aFgT5TmvxCOSnZBJ8NwWxpNCIKX+FKHDglwY=";
    private static final String PG_SECRET_NON_ASCII =
            "SCRAM-SHA-256$4096:k1dKAEVT7Mj0Iote2oNLIA==$"
                    + "kVtpfgWxJ+dn56blnvakJT0UMaVHDgQ2YH/Z4B3y6uo=:vsIPF5172hWO/VBuO8ymKoGK+arEIBL7meN/Heu9LDg=";
    private static final String PG_PASSWORD_NON_ASCII = "pässwörd ℌ";

    /**
     * Exercises SASLprep mapping: no-break space becomes a space, soft hyphen vanishes, NFKC turns
     * the ligature into "fi".
     */
    private static final String PG_SECRET_SASLPREP =
            "SCRAM-SHA-256$4096:jJe/Hj0vO8b8yrfJh51uGQ==$"
                    + "R2+5RX8wFagsHQBYA/bM3Wh3TENTCiC9H5eCVsTrO74=:wnlzWJPJsI5D9p8zBK0kDEiBcuND3WgSb4q/N0oasO0=";

    private static final String PG_PASSWORD_SASLPREP = "x\u00A0y\u00ADz\uFB01";

    @Test
    void clientMatchesRfc7677() {
        ScramClient client = new ScramClient("pencil", null, null, "user", RFC_CLIENT_NONCE);
        assertEquals(RFC_CLIENT_FIRST, client.clientFirst());
        assertEquals(RFC_CLIENT_FINAL, client.clientFinal(RFC_SERVER_FIRST));
        client.verifyServerFinal(RFC_SERVER_FINAL);
    }

    @Test
    void serverMatchesRfc7677() {
        ScramServer server =
                new ScramServer(
                        Secret.Scram.fromPassword("pencil", RFC_SALT, 4096),
                        false,
                        RFC_SERVER_NONCE);
        assertEquals(RFC_SERVER_FIRST, server.serverFirst(RFC_CLIENT_FIRST));
        ScramServer.Outcome outcome = server.clientFinal(RFC_CLIENT_FINAL);
        assertTrue(outcome.success(), outcome.failureReason());
        assertEquals(RFC_SERVER_FINAL, outcome.serverFinal());
        assertArrayEquals(
                ScramCrypto.clientKey(ScramCrypto.saltedPassword("pencil", RFC_SALT, 4096)),
                outcome.clientKey());
    }

    @Test
    void clientSendsNoUserName() {
        assertTrue(
                ScramClient.withPassword("pencil")
                        .clientFirst()
                        .matches("n,,n=,r=[A-Za-z0-9+/]{24}"));
    }

    @Test
    void passwordRoundTripWithPlainSecret() {
        ScramServer.Outcome outcome =
                exchange(
                        ScramServer.forSecret("alice", new Secret.Plain("s3cret")).orElseThrow(),
                        ScramClient.withPassword("s3cret"));
        assertTrue(outcome.success(), outcome.failureReason());
    }

    @Test
    void plainSecretKeepsItsSaltPerUser() {
        String salt =
                saltOffered(
                        ScramServer.forSecret("alice", new Secret.Plain("s3cret")).orElseThrow());
        assertEquals(
                salt,
                saltOffered(
                        ScramServer.forSecret("alice", new Secret.Plain("s3cret")).orElseThrow()));
        assertFalse(
                salt.equals(
                        saltOffered(
                                ScramServer.forSecret("bob", new Secret.Plain("s3cret"))
                                        .orElseThrow())));
        assertEquals(16, Base64.getDecoder().decode(salt).length);
    }

    @Test
    void clientKeyFromClientLoginLogsInToServer() {
        Secret.Scram secret = (Secret.Scram) Secret.parse(PG_SECRET_PENCIL);
        ScramServer.Outcome clientLogin =
                exchange(
                        ScramServer.forSecret("alice", secret).orElseThrow(),
                        ScramClient.withPassword("pencil"));
        assertTrue(clientLogin.success(), clientLogin.failureReason());

        // pgrelay now logs in to "PostgreSQL" (holding the same secret) without knowing the
        // password
        ScramServer.Outcome serverLogin =
                exchange(
                        ScramServer.forSecret("alice", secret).orElseThrow(),
                        ScramClient.withClientKey(clientLogin.clientKey(), secret.serverKey()));
        assertTrue(serverLogin.success(), serverLogin.failureReason());
        assertArrayEquals(clientLogin.clientKey(), serverLogin.clientKey());
    }

    @Test
    void postgresqlSecretsAcceptTheirPasswords() {
        for (String[] secretAndPassword :
                new String[][] {
                    {PG_SECRET_PENCIL, "pencil"},
                    {PG_SECRET_NON_ASCII, PG_PASSWORD_NON_ASCII},
                    {PG_SECRET_SASLPREP, PG_PASSWORD_SASLPREP}
                }) {
            Secret secret = Secret.parse(secretAndPassword[0]);
            ScramServer.Outcome outcome =
                    exchange(
                            ScramServer.forSecret("u", secret).orElseThrow(),
                            ScramClient.withPassword(secretAndPassword[1]));
            assertTrue(outcome.success(), secretAndPassword[1]);
            Secret.Scram scram = (Secret.Scram) secret;
            assertEquals(
                    secret,
                    Secret.Scram.fromPassword(
                            secretAndPassword[1], scram.salt(), scram.iterations()));
        }
    }

    @Test
    void wrongPasswordFailsWithoutThrowing() {
        ScramServer.Outcome outcome =
                exchange(
                        ScramServer.forSecret("alice", Secret.parse(PG_SECRET_PENCIL))
                                .orElseThrow(),
                        ScramClient.withPassword("crayon"));
        assertFalse(outcome.success());
        assertNull(outcome.serverFinal());
        assertNull(outcome.clientKey());
    }

    @Test
    void mockAlwaysFailsAndLooksReal() {
        ScramServer mock = ScramServer.mock("nobody");
        ScramClient client = ScramClient.withPassword("anything");
        String serverFirst = mock.serverFirst(client.clientFirst());
        assertTrue(serverFirst.matches("r=[^,]+,s=[A-Za-z0-9+/]{22}==,i=4096"), serverFirst);
        assertFalse(mock.clientFinal(client.clientFinal(serverFirst)).success());
        assertEquals(
                saltOffered(ScramServer.mock("nobody")), saltOffered(ScramServer.mock("nobody")));
        assertFalse(
                saltOffered(ScramServer.mock("nobody"))
                        .equals(saltOffered(ScramServer.mock("somebody"))));
    }

    @Test
    void emptyPlainPasswordNeverAuthenticates() {
        assertFalse(
                exchange(
                                ScramServer.forSecret("alice", new Secret.Plain("")).orElseThrow(),
                                ScramClient.withPassword(""))
                        .success());
    }

    @Test
    void md5SecretCannotDoScram() {
        assertTrue(
                ScramServer.forSecret("alice", Secret.parse(Md5Password.encode("alice", "x")))
                        .isEmpty());
    }

    @Test
    void serverAcceptsYFlagAndChecksItInFinal() {
        ScramServer server =
                new ScramServer(
                        Secret.Scram.fromPassword("pencil", RFC_SALT, 4096),
                        false,
                        RFC_SERVER_NONCE);
        server.serverFirst("y,,n=user,r=" + RFC_CLIENT_NONCE);
        // the client-final must echo "y,," (eSws), not "n,," (biws)
        assertThrows(ScramException.class, () -> server.clientFinal(RFC_CLIENT_FINAL));
    }

    @Test
    void serverRejectsUnsupportedOrMalformedClientFirst() {
        for (String clientFirst :
                new String[] {
                    "p=tls-server-end-point,,n=,r=abc",
                    "n,a=admin,n=,r=abc",
                    "n,,m=ext,n=,r=abc",
                    "n,,n=,x=abc",
                    "n,,n=",
                    "x,,n=,r=abc",
                    "n,,n=,r="
                }) {
            assertThrows(
                    ScramException.class,
                    () -> ScramServer.mock("u").serverFirst(clientFirst),
                    clientFirst);
        }
    }

    @Test
    void serverRejectsNonceMismatchAndBadProof() {
        ScramServer server =
                new ScramServer(
                        Secret.Scram.fromPassword("pencil", RFC_SALT, 4096),
                        false,
                        RFC_SERVER_NONCE);
        server.serverFirst(RFC_CLIENT_FIRST);
        assertThrows(
                ScramException.class,
                () -> server.clientFinal(RFC_CLIENT_FINAL.replace("k0,", "k1,")));

        ScramServer other =
                new ScramServer(
                        Secret.Scram.fromPassword("pencil", RFC_SALT, 4096),
                        false,
                        RFC_SERVER_NONCE);
        other.serverFirst(RFC_CLIENT_FIRST);
        assertThrows(
                ScramException.class,
                () -> other.clientFinal(RFC_CLIENT_FINAL.replace("AndVQ=", "And")));
    }

    @Test
    void stepsMustComeInOrder() {
        ScramServer server = ScramServer.mock("u");
        assertThrows(IllegalStateException.class, () -> server.clientFinal(RFC_CLIENT_FINAL));
        assertThrows(
                IllegalStateException.class,
                () -> ScramClient.withPassword("p").clientFinal(RFC_SERVER_FIRST));
    }

    @Test
    void clientRejectsBadServerFirst() {
        for (String serverFirst :
                new String[] {
                    "r=someoneElsesNonce,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                    "r="
                            + RFC_CLIENT_NONCE
                            + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", // not extended by the server
                    "r=" + RFC_CLIENT_NONCE + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
                    "r=" + RFC_CLIENT_NONCE + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1",
                    "r=" + RFC_CLIENT_NONCE + "x,s=***,i=4096",
                    "m=ext,r=" + RFC_CLIENT_NONCE + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                    // PBKDF2 on an event loop for minutes (found by ScramFuzzTest)
                    "r=" + RFC_CLIENT_NONCE + "x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=999999999"
                }) {
            ScramClient client = new ScramClient("pencil", null, null, "", RFC_CLIENT_NONCE);
            client.clientFirst();
            assertThrows(ScramException.class, () -> client.clientFinal(serverFirst), serverFirst);
        }
    }

    @Test
    void clientRejectsServerThatDoesNotKnowTheSecret() {
        ScramClient wrongSignature =
                new ScramClient("pencil", null, null, "user", RFC_CLIENT_NONCE);
        wrongSignature.clientFirst();
        wrongSignature.clientFinal(RFC_SERVER_FIRST);
        assertThrows(
                ScramException.class,
                () ->
                        wrongSignature.verifyServerFinal(
                                "v=" + Base64.getEncoder().encodeToString(new byte[32])));

        ScramClient serverError = new ScramClient("pencil", null, null, "user", RFC_CLIENT_NONCE);
        serverError.clientFirst();
        serverError.clientFinal(RFC_SERVER_FIRST);
        ScramException error =
                assertThrows(
                        ScramException.class,
                        () -> serverError.verifyServerFinal("e=invalid-proof"));
        assertTrue(error.getMessage().contains("invalid-proof"));
    }

    @Test
    void saslPrepKeepsAsciiAndNormalizesTheRest() {
        assertEquals("a\tb c", ScramCrypto.saslPrep("a\tb c"));
        assertEquals("x yzfi", ScramCrypto.saslPrep(PG_PASSWORD_SASLPREP));
        assertEquals("\u00C5", ScramCrypto.saslPrep("A\u030A"));
    }

    private static ScramServer.Outcome exchange(ScramServer server, ScramClient client) {
        String serverFirst = server.serverFirst(client.clientFirst());
        ScramServer.Outcome outcome = server.clientFinal(client.clientFinal(serverFirst));
        if (outcome.success()) {
            client.verifyServerFinal(outcome.serverFinal());
        }
        return outcome;
    }

    private static String saltOffered(ScramServer server) {
        String serverFirst = server.serverFirst("n,,n=,r=nonce");
        return serverFirst.split(",")[1].substring(2);
    }
}
