package io.pgrelay.auth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class Md5PasswordTest {

    private static final byte[] SALT = {0x01, 0x02, 0x03, 0x04};

    @Test
    void encodesAsPostgresqlStoresIt() {
        assertEquals(
                "md53175bce1d3201d16594cebf9d7eb3f9d", Md5Password.encode("postgres", "postgres"));
        // made by PostgreSQL 15: password_encryption = 'md5', CREATE ROLE carol PASSWORD 'postgres'
        assertEquals(
                "md5cccabbaf1ba7c687c87efbeefcd6f1dc", Md5Password.encode("carol", "postgres"));
    }

    @Test
    void responseHashesTheHashWithTheSalt() {
        // md5("3175bce1d3201d16594cebf9d7eb3f9d" + bytes 01 02 03 04), computed independently with
        // Python's hashlib
        assertEquals(
                "md568be9ed08db75f318087ab337aaea044",
                Md5Password.response("md53175bce1d3201d16594cebf9d7eb3f9d", SALT));
    }

    @Test
    void verifiesPlainAndMd5Secrets() {
        String response = Md5Password.response(Md5Password.encode("postgres", "postgres"), SALT);
        assertTrue(Md5Password.verify(new Secret.Plain("postgres"), "postgres", SALT, response));
        assertTrue(
                Md5Password.verify(
                        Secret.parse("md53175bce1d3201d16594cebf9d7eb3f9d"),
                        "postgres",
                        SALT,
                        response));
        assertFalse(Md5Password.verify(new Secret.Plain("postgres"), "other", SALT, response));
        assertFalse(
                Md5Password.verify(
                        new Secret.Plain("postgres"),
                        "postgres",
                        new byte[] {9, 9, 9, 9},
                        response));
        assertFalse(Md5Password.verify(new Secret.Plain("postgres"), "postgres", SALT, null));
        assertFalse(
                Md5Password.verify(
                        new Secret.Plain(""),
                        "postgres",
                        SALT,
                        Md5Password.response(Md5Password.encode("postgres", ""), SALT)));
    }

    @Test
    void scramSecretCannotVerifyMd5() {
        Secret scram = Secret.Scram.fromPassword("postgres", new byte[16], 4096);
        assertThrows(
                IllegalArgumentException.class,
                () -> Md5Password.verify(scram, "postgres", SALT, "md5"));
    }

    @Test
    void rejectsBadInput() {
        assertThrows(
                IllegalArgumentException.class,
                () -> Md5Password.response("3175bce1d3201d16594cebf9d7eb3f9d", SALT));
        assertThrows(
                IllegalArgumentException.class,
                () -> Md5Password.response("md53175bce1d3201d16594cebf9d7eb3f9d", new byte[3]));
    }
}
