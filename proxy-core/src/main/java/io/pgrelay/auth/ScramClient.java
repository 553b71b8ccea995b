package io.pgrelay.auth;

import java.security.MessageDigest;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The client side of one SCRAM-SHA-256 exchange, used by pgrelay to log in to PostgreSQL: send
 * {@link #clientFirst} in SASLInitialResponse, answer AuthenticationSASLContinue with {@link
 * #clientFinal}, check AuthenticationSASLFinal with {@link #verifyServerFinal}. One instance per
 * exchange; not thread-safe.
 */
public final class ScramClient {

    public static final String MECHANISM = ScramCrypto.MECHANISM;

    /**
     * Saves PBKDF2 on every new server connection; bounded against passwords or salts that keep
     * changing.
     */
    private static final int MAX_CACHED_KEYS = 10_000;

    /**
     * The most PBKDF2 iterations pgrelay runs for a server's salt: PostgreSQL's default is 4096,
     * and 1,000,000 (1-2 s, once per salt and count) leaves room for hardened settings such as
     * OWASP's 600,000. The count comes from the server and the derivation runs on an event loop
     * that other clients share: the 999,999,999 a server may ask for would stall them for tens of
     * minutes.
     */
    static final int MAX_ITERATIONS = 1_000_000;

    private static final Map<KeyInput, byte[][]> KEYS_FROM_PASSWORD = new ConcurrentHashMap<>();

    private record KeyInput(String password, String salt, int iterations) {}

    private enum Step {
        CLIENT_FIRST,
        CLIENT_FINAL,
        SERVER_FINAL,
        DONE
    }

    private final String password;
    private byte[] clientKey;
    private byte[] serverKey;
    private final String user;
    private final String clientNonce;
    private Step step = Step.CLIENT_FIRST;
    private String clientFirstBare;
    private byte[] expectedServerSignature;

    /**
     * Tests pass the RFC 7677 user name and a fixed nonce; pgrelay sends no user name and a random
     * nonce.
     */
    ScramClient(
            String password, byte[] clientKey, byte[] serverKey, String user, String clientNonce) {
        this.password = password;
        this.clientKey = clientKey;
        this.serverKey = serverKey;
        this.user = user;
        this.clientNonce = clientNonce;
    }

    /** Logs in with the user's password. */
    public static ScramClient withPassword(String password) {
        return new ScramClient(
                Objects.requireNonNull(password, "password"),
                null,
                null,
                "",
                ScramCrypto.randomNonce());
    }

    /**
     * Logs in without the password, with the ClientKey {@link ScramServer} recovered from the
     * client's own SCRAM login and the ServerKey of the auth file's secret (PgBouncer does the
     * same). This works only if that secret is the very one PostgreSQL stores for the user (same
     * salt and iterations): the salt and iteration count the server sends are not used here.
     */
    public static ScramClient withClientKey(byte[] clientKey, byte[] serverKey) {
        if (clientKey.length != ScramCrypto.KEY_LENGTH
                || serverKey.length != ScramCrypto.KEY_LENGTH) {
            throw new IllegalArgumentException(
                    "SCRAM-SHA-256 ClientKey and ServerKey must be 32 bytes");
        }
        return new ScramClient(
                null, clientKey.clone(), serverKey.clone(), "", ScramCrypto.randomNonce());
    }

    /**
     * The client-first-message, {@code n,,n=,r=<nonce>}: no channel binding, and no user name, as
     * libpq sends it (PostgreSQL takes the user from the startup packet).
     */
    public String clientFirst() {
        advance(Step.CLIENT_FIRST, Step.CLIENT_FINAL);
        clientFirstBare = "n=" + user.replace("=", "=3D").replace(",", "=2C") + ",r=" + clientNonce;
        return "n,," + clientFirstBare;
    }

    /**
     * Answers the server-first-message ({@code r=,s=,i=}) with the client-final-message ({@code
     * c=biws,r=,p=}).
     */
    public String clientFinal(String serverFirst) {
        advance(Step.CLIENT_FINAL, Step.SERVER_FINAL);
        String[] parts = serverFirst.split(",", -1);
        if (parts[0].startsWith("m=")) {
            throw new ScramException("server requires an unsupported SCRAM extension");
        }
        if (parts.length < 3) {
            throw new ScramException("malformed SCRAM server-first-message");
        }
        String nonce = ScramCrypto.attribute(parts[0], 'r', "server-first-message");
        if (!nonce.startsWith(clientNonce)
                || nonce.length() == clientNonce.length()
                || !ScramCrypto.isPrintable(nonce)) {
            throw new ScramException(
                    "invalid SCRAM server-first-message: nonce does not extend the client nonce");
        }
        String saltText = ScramCrypto.attribute(parts[1], 's', "server-first-message");
        String iterationsText = ScramCrypto.attribute(parts[2], 'i', "server-first-message");
        if (!iterationsText.matches("[0-9]{1,9}") || Integer.parseInt(iterationsText) < 1) {
            throw new ScramException("invalid SCRAM server-first-message: bad iteration count");
        }
        int iterations = Integer.parseInt(iterationsText);
        if (password != null) {
            if (iterations > MAX_ITERATIONS) {
                throw new ScramException(
                        "server asks for "
                                + iterations
                                + " SCRAM iterations; pgrelay computes at most "
                                + MAX_ITERATIONS);
            }
            byte[] salt;
            try {
                salt = ScramCrypto.unb64(saltText);
            } catch (IllegalArgumentException badBase64) {
                throw new ScramException("invalid SCRAM server-first-message: bad salt encoding");
            }
            byte[][] keys = keysFromPassword(password, saltText, salt, iterations);
            clientKey = keys[0];
            serverKey = keys[1];
        }
        String withoutProof = "c=biws,r=" + nonce; // biws = base64("n,,")
        String authMessage = clientFirstBare + "," + serverFirst + "," + withoutProof;
        byte[] storedKey = ScramCrypto.sha256(clientKey);
        byte[] proof = ScramCrypto.xor(clientKey, ScramCrypto.hmac(storedKey, authMessage));
        expectedServerSignature = ScramCrypto.hmac(serverKey, authMessage);
        return withoutProof + ",p=" + ScramCrypto.b64(proof);
    }

    /**
     * Checks the server-final-message: the server must prove it knows the secret too.
     *
     * @throws ScramException on a server error ({@code e=...}) or a server signature that does not
     *     match
     */
    public void verifyServerFinal(String serverFinal) {
        advance(Step.SERVER_FINAL, Step.DONE);
        String first = serverFinal.split(",", -1)[0];
        if (first.startsWith("e=")) {
            throw new ScramException("server rejected SCRAM authentication: " + first.substring(2));
        }
        byte[] signature;
        try {
            signature =
                    ScramCrypto.unb64(ScramCrypto.attribute(first, 'v', "server-final-message"));
        } catch (IllegalArgumentException badBase64) {
            throw new ScramException(
                    "malformed SCRAM server-final-message: bad signature encoding");
        }
        if (!MessageDigest.isEqual(signature, expectedServerSignature)) {
            throw new ScramException(
                    "SCRAM server signature does not match: the server does not know this user's secret");
        }
    }

    private static byte[][] keysFromPassword(
            String password, String saltText, byte[] salt, int iterations) {
        if (KEYS_FROM_PASSWORD.size() > MAX_CACHED_KEYS) {
            KEYS_FROM_PASSWORD.clear();
        }
        return KEYS_FROM_PASSWORD.computeIfAbsent(
                new KeyInput(password, saltText, iterations),
                key -> {
                    byte[] saltedPassword = ScramCrypto.saltedPassword(password, salt, iterations);
                    return new byte[][] {
                        ScramCrypto.clientKey(saltedPassword), ScramCrypto.serverKey(saltedPassword)
                    };
                });
    }

    private void advance(Step expected, Step next) {
        if (step != expected) {
            throw new IllegalStateException(
                    "SCRAM exchange is at " + step + ", cannot take " + expected);
        }
        step = next;
    }
}
