package io.pgrelay.auth;

import java.util.Arrays;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * What an auth file (or pg_authid.rolpassword) holds for a user: a plaintext password, an MD5 hash
 * or a SCRAM-SHA-256 secret. toString() never shows the secret: MD5 hashes and SCRAM keys are
 * password-equivalent for some exchanges.
 */
public sealed interface Secret permits Secret.Plain, Secret.Md5, Secret.Scram {

    /**
     * Decides the kind as PostgreSQL does: MD5 and SCRAM only when well formed, anything else is
     * plaintext.
     */
    static Secret parse(String text) {
        Objects.requireNonNull(text, "secret");
        if (Md5.FORMAT.matcher(text).matches()) {
            return new Md5(text);
        }
        Scram scram = Scram.tryParse(text);
        return scram != null ? scram : new Plain(text);
    }

    record Plain(String password) implements Secret {
        public Plain {
            Objects.requireNonNull(password, "password");
        }

        @Override
        public String toString() {
            return "Plain[***]";
        }
    }

    /** {@code "md5" + hex(md5(password + user))}, as stored in pg_authid. */
    record Md5(String hash) implements Secret {
        static final Pattern FORMAT = Pattern.compile("md5[0-9a-f]{32}");

        public Md5 {
            if (!FORMAT.matcher(hash).matches()) {
                throw new IllegalArgumentException(
                        "MD5 secret must be 'md5' followed by 32 lowercase hex digits");
            }
        }

        @Override
        public String toString() {
            return "Md5[***]";
        }
    }

    /**
     * A SCRAM-SHA-256 secret, written {@code
     * SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>} (base64). Arrays are copied in and
     * out so a secret cannot be changed after parsing.
     */
    record Scram(int iterations, byte[] salt, byte[] storedKey, byte[] serverKey)
            implements Secret {
        private static final String PREFIX = ScramCrypto.MECHANISM + "$";

        public Scram {
            if (iterations < 1) {
                throw new IllegalArgumentException(
                        "SCRAM iterations must be >= 1, got " + iterations);
            }
            if (salt.length == 0) {
                throw new IllegalArgumentException("SCRAM salt must not be empty");
            }
            if (storedKey.length != ScramCrypto.KEY_LENGTH
                    || serverKey.length != ScramCrypto.KEY_LENGTH) {
                throw new IllegalArgumentException(
                        "SCRAM-SHA-256 StoredKey and ServerKey must be 32 bytes");
            }
            salt = salt.clone();
            storedKey = storedKey.clone();
            serverKey = serverKey.clone();
        }

        /**
         * Derives the secret PostgreSQL would store for this password, salt and iteration count.
         */
        public static Scram fromPassword(String password, byte[] salt, int iterations) {
            byte[] saltedPassword = ScramCrypto.saltedPassword(password, salt, iterations);
            return new Scram(
                    iterations,
                    salt,
                    ScramCrypto.sha256(ScramCrypto.clientKey(saltedPassword)),
                    ScramCrypto.serverKey(saltedPassword));
        }

        /** The {@code SCRAM-SHA-256$...} text form, as in pg_authid and auth files. */
        public String encode() {
            return PREFIX
                    + iterations
                    + ":"
                    + ScramCrypto.b64(salt)
                    + "$"
                    + ScramCrypto.b64(storedKey)
                    + ":"
                    + ScramCrypto.b64(serverKey);
        }

        @Override
        public byte[] salt() {
            return salt.clone();
        }

        @Override
        public byte[] storedKey() {
            return storedKey.clone();
        }

        @Override
        public byte[] serverKey() {
            return serverKey.clone();
        }

        @Override
        public boolean equals(Object other) {
            return other instanceof Scram that
                    && iterations == that.iterations
                    && Arrays.equals(salt, that.salt)
                    && Arrays.equals(storedKey, that.storedKey)
                    && Arrays.equals(serverKey, that.serverKey);
        }

        @Override
        public int hashCode() {
            return 31
                            * (31 * (31 * iterations + Arrays.hashCode(salt))
                                    + Arrays.hashCode(storedKey))
                    + Arrays.hashCode(serverKey);
        }

        @Override
        public String toString() {
            return "Scram[iterations=" + iterations + ", ***]";
        }

        /** null unless the text is a complete, well-formed SCRAM-SHA-256 secret. */
        static Scram tryParse(String text) {
            if (!text.startsWith(PREFIX)) {
                return null;
            }
            String[] halves = text.substring(PREFIX.length()).split("\\$", -1);
            if (halves.length != 2) {
                return null;
            }
            String[] iterationsAndSalt = halves[0].split(":", -1);
            String[] keys = halves[1].split(":", -1);
            if (iterationsAndSalt.length != 2
                    || keys.length != 2
                    || !iterationsAndSalt[0].matches("[0-9]{1,9}")) {
                return null;
            }
            try {
                return new Scram(
                        Integer.parseInt(iterationsAndSalt[0]),
                        ScramCrypto.unb64(iterationsAndSalt[1]),
                        ScramCrypto.unb64(keys[0]),
                        ScramCrypto.unb64(keys[1]));
            } catch (
                    IllegalArgumentException
                            notScram) { // bad base64, wrong key length, zero iterations
                return null;
            }
        }
    }
}
