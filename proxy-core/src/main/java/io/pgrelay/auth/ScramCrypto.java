package io.pgrelay.auth;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.text.Normalizer;
import java.util.Base64;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * SCRAM-SHA-256 building blocks (RFC 5802 / RFC 7677) shared by {@link ScramServer}, {@link
 * ScramClient} and {@link Secret.Scram}.
 */
final class ScramCrypto {

    static final String MECHANISM = "SCRAM-SHA-256";
    static final int KEY_LENGTH = 32;

    /**
     * PostgreSQL's defaults (SCRAM_DEFAULT_ITERATIONS, SCRAM_DEFAULT_SALT_LEN,
     * SCRAM_RAW_NONCE_LEN).
     */
    static final int DEFAULT_ITERATIONS = 4096;

    static final int SALT_LENGTH = 16;
    static final int NONCE_LENGTH = 18;

    static final SecureRandom RANDOM = new SecureRandom();

    private ScramCrypto() {}

    static byte[] randomBytes(int length) {
        byte[] bytes = new byte[length];
        RANDOM.nextBytes(bytes);
        return bytes;
    }

    static String randomNonce() {
        return b64(randomBytes(NONCE_LENGTH));
    }

    static String b64(byte[] bytes) {
        return Base64.getEncoder().encodeToString(bytes);
    }

    /** Throws IllegalArgumentException on anything that is not standard base64. */
    static byte[] unb64(String text) {
        return Base64.getDecoder().decode(text);
    }

    static byte[] utf8(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    static byte[] sha256(byte[] data) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(data);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("JDK lacks SHA-256", e);
        }
    }

    static Mac hmac(byte[] key) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            // SecretKeySpec refuses an empty key (an empty password); HMAC zero-pads keys, so {0}
            // is the same key
            mac.init(new SecretKeySpec(key.length == 0 ? new byte[1] : key, "HmacSHA256"));
            return mac;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("JDK lacks HmacSHA256", e);
        }
    }

    static byte[] hmac(byte[] key, String message) {
        return hmac(key).doFinal(utf8(message));
    }

    /** Hi() of RFC 5802, i.e. PBKDF2-HMAC-SHA-256 with one output block. */
    static byte[] hi(byte[] password, byte[] salt, int iterations) {
        Mac mac = hmac(password);
        mac.update(salt);
        byte[] u = mac.doFinal(new byte[] {0, 0, 0, 1});
        byte[] result = u.clone();
        for (int i = 1; i < iterations; i++) {
            u = mac.doFinal(u);
            for (int j = 0; j < result.length; j++) {
                result[j] ^= u[j];
            }
        }
        return result;
    }

    static byte[] xor(byte[] a, byte[] b) {
        byte[] result = new byte[a.length];
        for (int i = 0; i < a.length; i++) {
            result[i] = (byte) (a[i] ^ b[i]);
        }
        return result;
    }

    /**
     * SaltedPassword of RFC 5802; the expensive step, so callers cache what they derive from it.
     */
    static byte[] saltedPassword(String password, byte[] salt, int iterations) {
        return hi(utf8(saslPrep(password)), salt, iterations);
    }

    static byte[] clientKey(byte[] saltedPassword) {
        return hmac(saltedPassword, "Client Key");
    }

    static byte[] serverKey(byte[] saltedPassword) {
        return hmac(saltedPassword, "Server Key");
    }

    /**
     * A simplified SASLprep (RFC 4013), matching PostgreSQL's pg_saslprep for all ASCII passwords
     * and for ordinary non-ASCII ones: ASCII is used as is (as PostgreSQL does); otherwise
     * non-ASCII spaces map to U+0020, "commonly mapped to nothing" characters are dropped, and the
     * result is NFKC-normalized. Not done: the prohibited-output, unassigned-code-point and bidi
     * checks. When those fail PostgreSQL falls back to the raw password, so passwords with control,
     * private-use, unassigned or mixed right-to-left characters may not match what PostgreSQL
     * derives.
     */
    static String saslPrep(String password) {
        if (password.chars().allMatch(c -> c < 0x80)) {
            return password;
        }
        StringBuilder mapped = new StringBuilder(password.length());
        password.codePoints()
                .forEach(
                        cp -> {
                            if (isNonAsciiSpace(cp)) {
                                mapped.append(' ');
                            } else if (!isMappedToNothing(cp)) {
                                mapped.appendCodePoint(cp);
                            }
                        });
        return Normalizer.normalize(mapped, Normalizer.Form.NFKC);
    }

    /** RFC 3454 table C.1.2; checked before B.1 as PostgreSQL does, so U+200B becomes a space. */
    private static boolean isNonAsciiSpace(int cp) {
        return cp == 0x00A0
                || cp == 0x1680
                || (cp >= 0x2000 && cp <= 0x200B)
                || cp == 0x202F
                || cp == 0x205F
                || cp == 0x3000;
    }

    /** RFC 3454 table B.1. */
    private static boolean isMappedToNothing(int cp) {
        return cp == 0x00AD
                || cp == 0x034F
                || cp == 0x1806
                || (cp >= 0x180B && cp <= 0x180D)
                || (cp >= 0x200B && cp <= 0x200D)
                || cp == 0x2060
                || (cp >= 0xFE00 && cp <= 0xFE0F)
                || cp == 0xFEFF;
    }

    /** Nonces must be printable ASCII without ',' (RFC 5802 "printable"). */
    static boolean isPrintable(String value) {
        return !value.isEmpty() && value.chars().allMatch(c -> c >= 0x21 && c <= 0x7E && c != ',');
    }

    /** The value of {@code name=value}, or a ScramException naming what was expected. */
    static String attribute(String part, char name, String message) {
        if (part.length() < 2 || part.charAt(0) != name || part.charAt(1) != '=') {
            throw new ScramException(
                    "malformed SCRAM " + message + ": expected attribute '" + name + "='");
        }
        return part.substring(2);
    }
}
