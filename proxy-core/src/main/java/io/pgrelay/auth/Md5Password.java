package io.pgrelay.auth;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** PostgreSQL's MD5 password scheme (AuthenticationMD5Password). */
public final class Md5Password {

    private static final String PREFIX = "md5";

    private Md5Password() {}

    /** The pg_authid form of a password: {@code "md5" + hex(md5(password + user))}. */
    public static String encode(String user, String password) {
        return PREFIX + md5Hex(utf8(password + user));
    }

    /**
     * What a client puts in the PasswordMessage for AuthenticationMD5Password: {@code "md5" +
     * hex(md5(hex-part-of-md5Hash + salt))}.
     */
    public static String response(String md5Hash, byte[] salt) {
        if (!Secret.Md5.FORMAT.matcher(md5Hash).matches()) {
            throw new IllegalArgumentException(
                    "not an MD5 password hash ('md5' + 32 lowercase hex digits)");
        }
        if (salt.length != 4) {
            throw new IllegalArgumentException("MD5 salt must be 4 bytes, got " + salt.length);
        }
        byte[] hex = md5Hash.substring(PREFIX.length()).getBytes(StandardCharsets.US_ASCII);
        byte[] salted = new byte[hex.length + salt.length];
        System.arraycopy(hex, 0, salted, 0, hex.length);
        System.arraycopy(salt, 0, salted, hex.length, salt.length);
        return PREFIX + md5Hex(salted);
    }

    /**
     * Checks a client's MD5 response against a {@link Secret.Plain} or {@link Secret.Md5} secret.
     * An empty plaintext password never matches (PostgreSQL refuses empty passwords too).
     *
     * @throws IllegalArgumentException for a {@link Secret.Scram} secret, which cannot check an MD5
     *     response (PostgreSQL switches to SCRAM for such users instead)
     */
    public static boolean verify(Secret secret, String user, byte[] salt, String clientResponse) {
        String expected;
        if (secret instanceof Secret.Plain plain) {
            if (plain.password().isEmpty()) {
                return false;
            }
            expected = response(encode(user, plain.password()), salt);
        } else if (secret instanceof Secret.Md5 md5) {
            expected = response(md5.hash(), salt);
        } else {
            throw new IllegalArgumentException(
                    "a SCRAM secret cannot verify an MD5 response; use SCRAM");
        }
        // constant time, so response timing reveals nothing about the expected hash
        return clientResponse != null
                && MessageDigest.isEqual(utf8(expected), utf8(clientResponse));
    }

    private static byte[] utf8(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    private static String md5Hex(byte[] data) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("MD5").digest(data));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("JDK lacks MD5", e);
        }
    }
}
