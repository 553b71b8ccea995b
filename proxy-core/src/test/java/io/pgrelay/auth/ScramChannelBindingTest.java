package io.pgrelay.auth;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** SCRAM-SHA-256-PLUS on the server side: the flag rules and the binding data in c=. */
class ScramChannelBindingTest {

    private static final byte[] SALT = "0123456789abcdef".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] BINDING = ScramCrypto.sha256("pgrelay's certificate".getBytes());
    private static final String HEADER = "p=tls-server-end-point,,";
    private static final String CLIENT_NONCE = "clientnonce123";

    private static ScramServer server() {
        ScramServer s =
                new ScramServer(Secret.Scram.fromPassword("pencil", SALT, 4096), false, "srv");
        s.offerChannelBinding(BINDING);
        return s;
    }

    /**
     * The client's final message for {@code header}, bound to {@code binding}, proven with pencil.
     */
    private static String clientFinal(String header, byte[] binding, String serverFirst) {
        String bare = "n=,r=" + CLIENT_NONCE;
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        byte[] c = Arrays.copyOf(h, h.length + binding.length);
        System.arraycopy(binding, 0, c, h.length, binding.length);
        String nonce = serverFirst.substring(2, serverFirst.indexOf(','));
        String withoutProof = "c=" + ScramCrypto.b64(c) + ",r=" + nonce;
        String authMessage = bare + "," + serverFirst + "," + withoutProof;
        byte[] clientKey = ScramCrypto.clientKey(ScramCrypto.saltedPassword("pencil", SALT, 4096));
        byte[] signature = ScramCrypto.hmac(ScramCrypto.sha256(clientKey), authMessage);
        return withoutProof + ",p=" + ScramCrypto.b64(ScramCrypto.xor(clientKey, signature));
    }

    @Test
    void boundExchangeSucceedsWithTheRightCertificateHash() {
        ScramServer s = server();
        String serverFirst = s.serverFirst(HEADER + "n=,r=" + CLIENT_NONCE, true);
        assertTrue(s.clientFinal(clientFinal(HEADER, BINDING, serverFirst)).success());
    }

    @Test
    void anotherCertificateHashFails() {
        ScramServer s = server();
        String serverFirst = s.serverFirst(HEADER + "n=,r=" + CLIENT_NONCE, true);
        byte[] other = BINDING.clone();
        other[0] ^= 1;
        ScramException e =
                assertThrows(
                        ScramException.class,
                        () -> s.clientFinal(clientFinal(HEADER, other, serverFirst)));
        assertEquals("SCRAM channel binding check failed", e.getMessage());
    }

    @Test
    void unboundClientStillWorksWhenPlusWasOffered() {
        ScramServer s = server();
        String serverFirst = s.serverFirst("n,,n=,r=" + CLIENT_NONCE, false);
        assertTrue(s.clientFinal(clientFinal("n,,", new byte[0], serverFirst)).success());
    }

    @Test
    void flagRules() {
        // 'y' while -PLUS was offered: the offer was stripped on the way (downgrade)
        assertThrows(ScramException.class, () -> server().serverFirst("y,,n=,r=abc", false));
        // -PLUS chosen without binding data, or with another binding type
        assertThrows(ScramException.class, () -> server().serverFirst("n,,n=,r=abc", true));
        assertThrows(
                ScramException.class, () -> server().serverFirst("p=tls-unique,,n=,r=abc", true));
        // binding data with the plain mechanism
        assertThrows(ScramException.class, () -> server().serverFirst(HEADER + "n=,r=abc", false));
        // nothing offered (no TLS): -PLUS and p= refused, 'y' fine
        ScramServer plain =
                new ScramServer(Secret.Scram.fromPassword("pencil", SALT, 4096), false, "srv");
        assertThrows(ScramException.class, () -> plain.serverFirst(HEADER + "n=,r=abc", true));
        ScramServer plain2 =
                new ScramServer(Secret.Scram.fromPassword("pencil", SALT, 4096), false, "srv");
        assertFalse(plain2.serverFirst("y,,n=,r=abc", false).isEmpty());
    }
}
