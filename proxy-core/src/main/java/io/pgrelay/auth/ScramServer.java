package io.pgrelay.auth;

import java.security.MessageDigest;
import java.util.Arrays;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The server side of one SCRAM-SHA-256 exchange (RFC 5802 / RFC 7677, as PostgreSQL runs it), used
 * to authenticate pgrelay's clients. Call {@link #serverFirst} with the SASLInitialResponse data,
 * then {@link #clientFinal} with the SASLResponse data. One instance per exchange; not thread-safe.
 *
 * <p>Over TLS the session offers {@value #MECHANISM_PLUS} too ({@link #offerChannelBinding}):
 * channel binding of type {@code tls-server-end-point} binds the proof to the certificate pgrelay
 * presented, which is the client's TLS peer. Without TLS a client that insists on binding ({@code
 * p=}) is refused.
 *
 * <p>Malformed or out-of-protocol messages throw {@link ScramException} (PostgreSQL reports those
 * as protocol violations); a wrong password is a failed {@link Outcome}, never an exception.
 */
public final class ScramServer {

    public static final String MECHANISM = ScramCrypto.MECHANISM;
    public static final String MECHANISM_PLUS = MECHANISM + "-PLUS";
    private static final String BINDING_TYPE = "tls-server-end-point";

    /**
     * Beyond this many cached plaintext-derived secrets (e.g. passwords rotating for ages) start
     * over.
     */
    private static final int MAX_CACHED_SECRETS = 10_000;

    private static final Map<UserPassword, Secret.Scram> SECRETS_FROM_PLAIN =
            new ConcurrentHashMap<>();

    /**
     * Makes mock salts unpredictable across processes, yet stable for one user within this process.
     */
    private static final byte[] MOCK_SALT_KEY = ScramCrypto.randomBytes(32);

    private record UserPassword(String user, String password) {}

    private enum Step {
        CLIENT_FIRST,
        CLIENT_FINAL,
        DONE
    }

    private final Secret.Scram secret;

    /** A mock exchange: looks like any other, always fails. */
    private final boolean doomed;

    private final String serverNonce;
    private Step step = Step.CLIENT_FIRST;
    private String gs2Header;
    private String clientFirstBare;
    private String serverFirst;
    private String nonce;

    /** tls-server-end-point data when -PLUS was offered, else null. */
    private byte[] channelBinding;

    /** The client chose -PLUS: its final message must carry {@link #channelBinding}. */
    private boolean bound;

    /** Tests pass a fixed server nonce; otherwise null picks a random one. */
    ScramServer(Secret.Scram secret, boolean doomed, String serverNonce) {
        this.secret = secret;
        this.doomed = doomed;
        this.serverNonce = serverNonce != null ? serverNonce : ScramCrypto.randomNonce();
    }

    /**
     * An exchange that checks the client against {@code secret}. A SCRAM secret is used as is. A
     * plaintext password gets a SCRAM secret with 4096 iterations and a random salt that stays the
     * same for this user and password for the life of the process (so PBKDF2 runs once, not on
     * every login, and the salt a client sees does not change between logins); an empty password
     * never authenticates, so it gets a {@link #mock} exchange. An MD5 secret cannot do SCRAM:
     * empty (callers typically fall back to {@link #mock}, as PostgreSQL does, or offer MD5
     * authentication instead).
     */
    public static Optional<ScramServer> forSecret(String user, Secret secret) {
        if (secret instanceof Secret.Scram scram) {
            return Optional.of(new ScramServer(scram, false, null));
        }
        if (secret instanceof Secret.Plain plain) {
            if (plain.password().isEmpty()) {
                return Optional.of(mock(user));
            }
            return Optional.of(
                    new ScramServer(secretFromPlain(user, plain.password()), false, null));
        }
        return Optional.empty();
    }

    /**
     * An exchange for an unknown user (or one without a usable secret) that runs like a real one
     * and always fails, so clients cannot tell which users exist. Its salt is derived from the user
     * name, as PostgreSQL does, so repeated attempts for one name see the same salt, like a real
     * user's.
     */
    public static ScramServer mock(String user) {
        byte[] name = ScramCrypto.utf8(user);
        byte[] input = Arrays.copyOf(name, name.length + MOCK_SALT_KEY.length);
        System.arraycopy(MOCK_SALT_KEY, 0, input, name.length, MOCK_SALT_KEY.length);
        byte[] salt = Arrays.copyOf(ScramCrypto.sha256(input), ScramCrypto.SALT_LENGTH);
        byte[] unusedKey = new byte[ScramCrypto.KEY_LENGTH];
        return new ScramServer(
                new Secret.Scram(ScramCrypto.DEFAULT_ITERATIONS, salt, unusedKey, unusedKey),
                true,
                null);
    }

    static Secret.Scram secretFromPlain(String user, String password) {
        if (SECRETS_FROM_PLAIN.size() > MAX_CACHED_SECRETS) {
            SECRETS_FROM_PLAIN.clear();
        }
        return SECRETS_FROM_PLAIN.computeIfAbsent(
                new UserPassword(user, password),
                key ->
                        Secret.Scram.fromPassword(
                                password,
                                ScramCrypto.randomBytes(ScramCrypto.SALT_LENGTH),
                                ScramCrypto.DEFAULT_ITERATIONS));
    }

    /**
     * Offers channel binding: the session offers {@value #MECHANISM_PLUS} besides {@value
     * #MECHANISM}, with {@code data} being the hash of its certificate (see {@code
     * io.pgrelay.tls.ChannelBinding}). Call before {@link #serverFirst}.
     */
    public void offerChannelBinding(byte[] data) {
        channelBinding = data.clone();
    }

    /** {@link #serverFirst(String, boolean)} for {@value #MECHANISM}. */
    public String serverFirst(String clientFirstMessage) {
        return serverFirst(clientFirstMessage, false);
    }

    /**
     * Takes the client-first-message ({@code n,,n=<ignored>,r=<nonce>}; {@code p=...} when the
     * client chose {@value #MECHANISM_PLUS}, which {@code plus} says) and returns the
     * server-first-message ({@code r=<nonce>,s=<salt>,i=<iterations>}). The user name in it is
     * ignored, as PostgreSQL does: the user comes from the startup packet.
     */
    public String serverFirst(String clientFirstMessage, boolean plus) {
        advance(Step.CLIENT_FIRST, Step.CLIENT_FINAL);
        String[] parts = clientFirstMessage.split(",", -1);
        String flag = parts[0];
        if (plus) {
            if (channelBinding == null) {
                throw new ScramException(
                        "client selected " + MECHANISM_PLUS + ", which was not offered");
            }
            if (!flag.startsWith("p=")) {
                throw new ScramException(
                        "client selected " + MECHANISM_PLUS + " without channel binding data");
            }
            if (!flag.equals("p=" + BINDING_TYPE)) {
                throw new ScramException("unsupported SCRAM channel-binding type");
            }
            bound = true;
        } else if (flag.startsWith("p=")) {
            throw new ScramException(
                    channelBinding == null
                            ? "client requires SCRAM channel binding, which needs TLS"
                            : "client sent channel binding data but selected " + MECHANISM);
        } else if (flag.equals("y") && channelBinding != null) {
            // The client could bind but believes the server cannot: someone removed -PLUS from
            // the mechanisms on the way (RFC 5802's downgrade check).
            throw new ScramException(
                    "SCRAM channel binding negotiation error: the client supports channel"
                            + " binding but thinks the server does not, and it does");
        } else if (!flag.equals("n") && !flag.equals("y")) {
            throw new ScramException(
                    "malformed SCRAM client-first-message: unexpected channel binding flag");
        }
        if (parts.length < 4) {
            throw new ScramException("malformed SCRAM client-first-message");
        }
        if (!parts[1].isEmpty()) {
            throw new ScramException("SCRAM authorization identity (a=) is not supported");
        }
        if (parts[2].startsWith("m=")) {
            throw new ScramException("client requires an unsupported SCRAM extension");
        }
        ScramCrypto.attribute(parts[2], 'n', "client-first-message");
        String clientNonce = ScramCrypto.attribute(parts[3], 'r', "client-first-message");
        if (!ScramCrypto.isPrintable(clientNonce)) {
            throw new ScramException("malformed SCRAM client-first-message: invalid nonce");
        }
        gs2Header = flag + ",,";
        clientFirstBare = clientFirstMessage.substring(gs2Header.length());
        nonce = clientNonce + serverNonce;
        serverFirst =
                "r=" + nonce + ",s=" + ScramCrypto.b64(secret.salt()) + ",i=" + secret.iterations();
        return serverFirst;
    }

    /**
     * Takes the client-final-message ({@code c=<gs2 header>,r=<nonce>,p=<proof>}) and checks the
     * proof. On success the outcome carries the server-final-message and the client's ClientKey.
     */
    public Outcome clientFinal(String clientFinalMessage) {
        advance(Step.CLIENT_FINAL, Step.DONE);
        String[] parts = clientFinalMessage.split(",", -1);
        if (parts.length < 3) {
            throw new ScramException("malformed SCRAM client-final-message");
        }
        String binding = ScramCrypto.attribute(parts[0], 'c', "client-final-message");
        if (!binding.equals(ScramCrypto.b64(expectedBinding()))) {
            throw new ScramException("SCRAM channel binding check failed");
        }
        if (!ScramCrypto.attribute(parts[1], 'r', "client-final-message").equals(nonce)) {
            throw new ScramException("invalid SCRAM response: nonce does not match");
        }
        byte[] proof;
        try {
            proof =
                    ScramCrypto.unb64(
                            ScramCrypto.attribute(
                                    parts[parts.length - 1], 'p', "client-final-message"));
        } catch (IllegalArgumentException badBase64) {
            throw new ScramException(
                    "malformed SCRAM client-final-message: invalid proof encoding");
        }
        if (proof.length != ScramCrypto.KEY_LENGTH) {
            throw new ScramException("malformed SCRAM client-final-message: invalid proof length");
        }
        String withoutProof =
                clientFinalMessage.substring(0, clientFinalMessage.lastIndexOf(",p="));
        String authMessage = clientFirstBare + "," + serverFirst + "," + withoutProof;

        byte[] storedKey = secret.storedKey();
        byte[] clientKey = ScramCrypto.xor(proof, ScramCrypto.hmac(storedKey, authMessage));
        boolean proven = MessageDigest.isEqual(ScramCrypto.sha256(clientKey), storedKey);
        if (doomed) {
            return Outcome.failed("no SCRAM secret for this user (mock authentication)");
        }
        if (!proven) {
            return Outcome.failed("SCRAM client proof does not match (wrong password)");
        }
        String serverFinal =
                "v=" + ScramCrypto.b64(ScramCrypto.hmac(secret.serverKey(), authMessage));
        return new Outcome(true, serverFinal, clientKey, null);
    }

    /** What c= must hold: the GS2 header, followed by the binding data when bound. */
    private byte[] expectedBinding() {
        byte[] header = ScramCrypto.utf8(gs2Header);
        if (!bound) {
            return header;
        }
        byte[] out = Arrays.copyOf(header, header.length + channelBinding.length);
        System.arraycopy(channelBinding, 0, out, header.length, channelBinding.length);
        return out;
    }

    private void advance(Step expected, Step next) {
        if (step != expected) {
            throw new IllegalStateException(
                    "SCRAM exchange is at " + step + ", cannot take " + expected);
        }
        step = next;
    }

    /**
     * How an exchange ended. On success: {@code serverFinal} is the server-final-message ({@code
     * v=<ServerSignature>}, sent in AuthenticationSASLFinal) and {@code clientKey} the client's
     * ClientKey (ClientProof XOR ClientSignature, checked against StoredKey), which lets pgrelay
     * log in to PostgreSQL as this user with {@link ScramClient#withClientKey} (only for a SCRAM
     * secret that PostgreSQL holds too: a plaintext secret's ClientKey belongs to pgrelay's own
     * salt, so use the password). On failure both are null and {@code failureReason} says why, for
     * the log only: the client must just be told authentication failed.
     */
    public record Outcome(
            boolean success, String serverFinal, byte[] clientKey, String failureReason) {
        static Outcome failed(String reason) {
            return new Outcome(false, null, null, reason);
        }
    }
}
