package io.pgrelay.config;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * One side's TLS settings, with PgBouncer's names and meanings: {@code client_tls_*} for clients
 * connecting to pgrelay, {@code server_tls_*} for pgrelay connecting to PostgreSQL. Files are
 * checked when the TLS context is built ({@link io.pgrelay.tls.TlsContexts}), not here, so that a
 * RELOAD can name the file that is wrong.
 *
 * @param keyFile null when not set
 * @param certFile null when not set
 * @param caFile null when not set
 * @param protocols Java protocol names (TLSv1.2, TLSv1.3)
 * @param ciphers cipher suites to allow, or empty for the engine's defaults
 */
public record TlsSettings(
        Mode mode,
        Path keyFile,
        Path certFile,
        Path caFile,
        List<String> protocols,
        List<String> ciphers) {

    /** libpq's sslmode values, as PgBouncer uses them for both sides. */
    public enum Mode {
        DISABLE,
        ALLOW,
        PREFER,
        REQUIRE,
        VERIFY_CA,
        VERIFY_FULL;

        /** Plain text is refused. */
        public boolean requiresTls() {
            return compareTo(REQUIRE) >= 0;
        }

        /** The peer's certificate is checked against the CA. */
        public boolean verifiesPeer() {
            return compareTo(VERIFY_CA) >= 0;
        }

        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT).replace('_', '-');
        }
    }

    public static final TlsSettings DISABLED =
            new TlsSettings(
                    Mode.DISABLE, null, null, null, List.of("TLSv1.2", "TLSv1.3"), List.of());

    /** PgBouncer's cipher shortcuts: all mean "what the engine considers safe" here. */
    private static final Set<String> CIPHER_SHORTCUTS =
            Set.of("default", "secure", "fast", "normal", "compat", "legacy", "insecure", "all");

    /** Reads {@code tls.<side>_tls_*}; {@code side} is "client" or "server". */
    static TlsSettings from(Config c, String side) {
        String prefix = "tls." + side + "_tls_";
        Mode mode = ProxyConfig.enumValue(c, prefix + "sslmode", Mode.class);
        Path key = path(c, prefix + "key_file");
        Path cert = path(c, prefix + "cert_file");
        Path ca = path(c, prefix + "ca_file");
        if (side.equals("client") && mode != Mode.DISABLE && (key == null || cert == null)) {
            throw new ConfigException.BadValue(
                    "pgrelay." + prefix + "sslmode",
                    mode + " needs " + prefix + "key_file and " + prefix + "cert_file");
        }
        if (side.equals("client") && mode.verifiesPeer() && ca == null) {
            throw new ConfigException.BadValue(
                    "pgrelay." + prefix + "sslmode",
                    mode
                            + " needs "
                            + prefix
                            + "ca_file (the CA client certificates must chain to)");
        }
        if ((key == null) != (cert == null)) {
            throw new ConfigException.BadValue(
                    "pgrelay." + prefix + (key == null ? "key_file" : "cert_file"),
                    "empty, but " + prefix + (key == null ? "cert_file" : "key_file") + " is set");
        }
        return new TlsSettings(
                mode,
                key,
                cert,
                ca,
                protocols(c.getString(prefix + "protocols"), "pgrelay." + prefix + "protocols"),
                ciphers(c.getString(prefix + "ciphers")));
    }

    private static Path path(Config c, String setting) {
        String v = c.getString(setting).trim();
        return v.isEmpty() ? null : Path.of(v);
    }

    /**
     * PgBouncer's syntax: "secure" (TLS 1.2 and 1.3), "all" or "legacy" (every version), or a list
     * of tlsv1.0, tlsv1.1, tlsv1.2, tlsv1.3, separated by commas, colons or blanks.
     */
    static List<String> protocols(String value, String setting) {
        String v = value.trim().toLowerCase(Locale.ROOT);
        if (v.equals("secure") || v.equals("default")) {
            return List.of("TLSv1.2", "TLSv1.3");
        }
        if (v.equals("all") || v.equals("legacy")) {
            return List.of("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3");
        }
        List<String> out = new ArrayList<>();
        for (String p : v.split("[,:\\s]+")) {
            switch (p) {
                case "tlsv1.0", "tlsv1" -> out.add("TLSv1");
                case "tlsv1.1" -> out.add("TLSv1.1");
                case "tlsv1.2" -> out.add("TLSv1.2");
                case "tlsv1.3" -> out.add("TLSv1.3");
                default ->
                        throw new ConfigException.BadValue(
                                setting,
                                "'"
                                        + value
                                        + "' (expected: secure, all, legacy, or a list of"
                                        + " tlsv1.0, tlsv1.1, tlsv1.2, tlsv1.3)");
            }
        }
        return List.copyOf(out);
    }

    /** OpenSSL-style "A:B:C" lists, or a PgBouncer shortcut (the engine's defaults). */
    static List<String> ciphers(String value) {
        String v = value.trim();
        if (v.isEmpty() || CIPHER_SHORTCUTS.contains(v.toLowerCase(Locale.ROOT))) {
            return List.of();
        }
        return Arrays.stream(v.split("[:,\\s]+")).filter(s -> !s.isEmpty()).toList();
    }
}
