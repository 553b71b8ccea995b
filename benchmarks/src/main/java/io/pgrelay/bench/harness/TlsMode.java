package io.pgrelay.bench.harness;

/** A --tls mode: which legs are encrypted, and how the tables and logs name it. */
enum TlsMode {
    OFF("off"),
    CLIENT("client"),
    BOTH("both");

    final String word;

    TlsMode(String word) {
        this.word = word;
    }

    static TlsMode of(String word) {
        for (TlsMode m : values()) {
            if (m.word.equals(word)) {
                return m;
            }
        }
        throw new HarnessException("unknown TLS mode '" + word + "' (off, client, both)");
    }

    /** Mode client leaves direct in plain text: there is no proxy in front of it to encrypt. */
    String clientSslmode(String target, String plainDefault) {
        return switch (this) {
            case OFF -> plainDefault;
            case CLIENT -> target.equals("direct") ? "disable" : "require";
            case BOTH -> "require";
        };
    }

    /** The proxies' server_tls_sslmode. */
    String serverSslmode() {
        return this == BOTH ? "require" : "disable";
    }

    /** Result file names of the TLS modes carry the mode, so one run keeps all of them apart. */
    String prefix() {
        return this == OFF ? "" : "tls-" + word + "-";
    }

    /** For the start-up log lines. */
    String note() {
        return this == OFF
                ? ""
                : ", TLS "
                        + word
                        + " (client_tls_sslmode=require, server_tls_sslmode="
                        + serverSslmode()
                        + ")";
    }

    /** The mode in the section heading; nothing when --tls was not used at all. */
    String heading(boolean tlsUsed) {
        return switch (this) {
            case OFF -> tlsUsed ? ", no TLS (plain text everywhere)" : "";
            case CLIENT ->
                    ", TLS client side (pgbench → proxy over TLS, proxy → PostgreSQL plain; direct plain)";
            case BOTH ->
                    ", TLS both sides (pgbench → proxy → PostgreSQL over TLS; direct over TLS)";
        };
    }

    /** A target's name in the tables; direct says when it runs without TLS in a TLS mode. */
    String label(String target) {
        return target.equals("direct") && this == CLIENT ? "direct (no TLS)" : target;
    }
}
