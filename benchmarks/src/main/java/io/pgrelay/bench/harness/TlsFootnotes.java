package io.pgrelay.bench.harness;

import java.util.List;
import java.util.Map;

/** What the TLS modes configure, and what each target negotiated (asked of it, not assumed). */
final class TlsFootnotes {
    private final Context ctx;
    private final List<String> active;

    TlsFootnotes(Context ctx, List<String> active) {
        this.ctx = ctx;
        this.active = active;
    }

    String render() {
        Settings s = ctx.settings;
        String server = ctx.tlsMode.serverSslmode();
        StringBuilder out = new StringBuilder();
        out.append(
                String.format(
                        "- TLS %s: one throw-away CA and server certificate (%s, SAN IP:%s and DNS:localhost; ca.crt and server.crt in the results) for every TLS endpoint. PgBouncer (1.18 and 1.25): client_tls_sslmode = require, client_tls_key_file, client_tls_cert_file, server_tls_sslmode = %s; pgrelay: the same as -Dpgrelay.tls.* settings; Odyssey: listen tls \"require\", tls_cert_file, tls_key_file, storage tls \"%s\"; ",
                        ctx.tlsMode.word,
                        s.tlsKey.equals("rsa") ? "RSA 2048" : "EC P-256",
                        Settings.HOST,
                        server,
                        server));
        if (ctx.tlsMode == TlsMode.BOTH) {
            out.append(
                    "PostgreSQL: ssl = on with the same files; pgbench: PGSSLMODE=require for every target.\n");
        } else {
            out.append(
                    "pgbench: PGSSLMODE=require towards the proxies, disable towards direct (plain text, no TLS in this mode).\n");
        }
        StringBuilder list = new StringBuilder();
        StringBuilder cb = new StringBuilder();
        for (String t : active) {
            if (!ctx.clientSslmode(t).equals("require")) {
                continue;
            }
            int port = ctx.port.get(t);
            list.append(list.length() > 0 ? "; " : "").append(t).append(' ').append(session(port));
            cb.append(cb.length() > 0 ? ", " : "")
                    .append(t)
                    .append(' ')
                    .append(channelBinding(port));
        }
        out.append(
                        "- negotiated (one openssl s_client -starttls postgres handshake each; protocol, cipher, key exchange): ")
                .append(list)
                .append(".\n");
        out.append(
                        "- SCRAM-SHA-256-PLUS (channel binding, which libpq's default channel_binding=prefer uses when the server offers it): ")
                .append(cb)
                .append(".\n");
        for (String t : List.of("pgrelay", "baseline")) {
            String engine = ctx.tlsEngine.get(t);
            if (engine != null && !engine.isEmpty()) {
                out.append("- ").append(t).append(" log: ").append(engine).append('\n');
            }
        }
        return out.toString();
    }

    /** Protocol, cipher and key exchange of one openssl s_client handshake. */
    private String session(int port) {
        String text =
                ctx.proc
                        .capture(
                                List.of(
                                        "sh",
                                        "-c",
                                        "timeout 10 openssl s_client -starttls postgres -connect \"$0\" </dev/null 2>/dev/null",
                                        Settings.HOST + ":" + port),
                                Map.of())
                        .output();
        String protocol = "";
        String cipher = "";
        String key = "";
        for (String line : text.split("\n")) {
            if (line.startsWith("New, ")) {
                String[] f = line.trim().split("\\s+");
                protocol = f[1].replaceFirst(",$", "");
                cipher = f[f.length - 1];
            }
            if (line.startsWith("Server Temp Key:")) {
                key =
                        line.replaceFirst("^Server Temp Key: ", "")
                                .replaceFirst(", [0-9]+ bits$", "");
            }
        }
        return cipher.isEmpty() ? "" : protocol + " " + cipher + (key.isEmpty() ? "" : " " + key);
    }

    /** "yes" when a login with channel_binding=require works. */
    private String channelBinding(int port) {
        Proc.Result r =
                ctx.selectOne(port, Map.of("PGSSLMODE", "require", "PGCHANNELBINDING", "require"));
        return r.ok() ? "yes" : "no";
    }
}
