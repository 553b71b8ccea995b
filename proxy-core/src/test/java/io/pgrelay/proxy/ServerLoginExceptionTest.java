package io.pgrelay.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pgrelay.protocol.ErrorResponse;
import org.junit.jupiter.api.Test;

/**
 * Which login failures let ServerPools drop a pool at once, and what the log and the client see.
 */
class ServerLoginExceptionTest {

    private static boolean refusal(String sqlState) {
        return new ServerLoginException(ErrorResponse.fatal(sqlState, "x")).isRefusal();
    }

    @Test
    void theServerRefusingTheDatabaseOrUserIsARefusal() {
        for (String s : new String[] {"3D000", "28000", "28P01", "42501", "55000"}) {
            assertTrue(refusal(s), s);
        }
    }

    @Test
    void aServerNotThereRightNowIsNot() {
        for (String s :
                new String[] {
                    "08006", "08001", "08P01", "57P01", "57P02", "57P03", "53300", "53200", "XX000"
                }) {
            assertFalse(refusal(s), s);
        }
        assertFalse(
                new ServerLoginException("could not connect to server 127.0.0.1:5432: refused")
                        .isRefusal());
    }

    @Test
    void missingCredentialsArePgrelaysOwnRefusalWithTheSameSqlStateAsBefore() {
        ServerLoginException e =
                ServerLoginException.credentials("no secret for user \"bob\" in auth_file");
        assertTrue(e.isRefusal());
        assertEquals("08006", e.error().sqlState());
    }

    @Test
    void theLogMessageIsEscapedAndCutTheClientErrorIsNot() {
        String db = "nodb\n" + "x".repeat(1000);
        ServerLoginException e =
                new ServerLoginException(
                        ErrorResponse.fatal("3D000", "database \"" + db + "\" does not exist"));
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        assertTrue(e.getMessage().length() < 320, e.getMessage());
        assertTrue(e.getMessage().startsWith("FATAL 3D000 database \"nodb\\nxxx"), e.getMessage());
        assertEquals("database \"" + db + "\" does not exist", e.error().message());
    }
}
