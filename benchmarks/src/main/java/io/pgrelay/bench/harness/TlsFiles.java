package io.pgrelay.bench.harness;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * One throw-away CA and server certificate for 127.0.0.1 and localhost, used by PostgreSQL,
 * PgBouncer, Odyssey and pgrelay alike, so the TLS modes compare the proxies, not certificates.
 */
final class TlsFiles {
    private TlsFiles() {}

    static void make(Context ctx) {
        List<String> alg =
                ctx.settings.tlsKey.equals("rsa")
                        ? List.of("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
                        : List.of("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256");
        Path dir = ctx.tlsDir;
        Path log = ctx.work.resolve("openssl.log");
        try {
            Files.createDirectories(dir);
            Files.deleteIfExists(log);
        } catch (java.io.IOException e) {
            throw new HarnessException("cannot create " + dir + ": " + e.getMessage());
        }
        Text.write(
                dir.resolve("server.ext"),
                "subjectAltName = IP:"
                        + Settings.HOST
                        + ", DNS:localhost\n"
                        + "basicConstraints = CA:FALSE\n"
                        + "keyUsage = critical, digitalSignature, keyEncipherment\n"
                        + "extendedKeyUsage = serverAuth\n");
        // genpkey writes unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY"), the only key format pgrelay
        // reads.
        List<List<String>> steps =
                List.of(
                        concat(List.of("openssl", "genpkey"), alg, List.of("-out", "ca.key")),
                        List.of(
                                "openssl",
                                "req",
                                "-x509",
                                "-new",
                                "-key",
                                "ca.key",
                                "-sha256",
                                "-days",
                                "7",
                                "-subj",
                                "/CN=pgrelay benchmark CA",
                                "-out",
                                "ca.crt"),
                        concat(List.of("openssl", "genpkey"), alg, List.of("-out", "server.key")),
                        List.of(
                                "openssl",
                                "req",
                                "-new",
                                "-key",
                                "server.key",
                                "-subj",
                                "/CN=" + Settings.HOST,
                                "-out",
                                "server.csr"),
                        List.of(
                                "openssl",
                                "x509",
                                "-req",
                                "-in",
                                "server.csr",
                                "-CA",
                                "ca.crt",
                                "-CAkey",
                                "ca.key",
                                "-CAcreateserial",
                                "-days",
                                "7",
                                "-sha256",
                                "-extfile",
                                "server.ext",
                                "-out",
                                "server.crt"));
        for (List<String> step : steps) {
            List<String> cmd = List.of("sh", "-c", "cd \"$0\" && exec \"$@\"", dir.toString());
            List<String> full = new ArrayList<>(cmd);
            full.addAll(step);
            if (ctx.proc.runTo(full, Map.of(), log) != 0) {
                System.err.print(Text.read(log));
                throw new HarnessException("openssl could not make the test certificates");
            }
        }
        if (!Text.read(ctx.tlsKeyFile()).contains("BEGIN PRIVATE KEY")) {
            throw new HarnessException(ctx.tlsKeyFile() + " is not PKCS#8 PEM");
        }
        // PostgreSQL wants its key private to its OS user; PgBouncer runs as that user too.
        ctx.proc.capture(
                List.of(
                        "chmod",
                        "600",
                        dir.resolve("ca.key").toString(),
                        ctx.tlsKeyFile().toString()),
                Map.of());
        ctx.proc.chownToPg(dir);
        try {
            Files.copy(
                    dir.resolve("ca.crt"),
                    ctx.results.resolve("ca.crt"),
                    StandardCopyOption.REPLACE_EXISTING);
            Files.copy(
                    ctx.tlsCertFile(),
                    ctx.results.resolve("server.crt"),
                    StandardCopyOption.REPLACE_EXISTING);
        } catch (java.io.IOException e) {
            throw new HarnessException("cannot copy the certificates: " + e.getMessage());
        }
        String san =
                ctx.proc
                        .capture(
                                List.of(
                                        "openssl",
                                        "x509",
                                        "-in",
                                        ctx.tlsCertFile().toString(),
                                        "-noout",
                                        "-ext",
                                        "subjectAltName"),
                                Map.of())
                        .output();
        String[] sanLines = san.split("\n");
        Log.log(
                "TLS: throw-away CA and server certificate ("
                        + ctx.settings.tlsKey
                        + ", "
                        + sanLines[sanLines.length - 1].replaceFirst("^ *", "")
                        + ") in "
                        + dir);
    }

    private static List<String> concat(List<String> a, List<String> b, List<String> c) {
        List<String> out = new ArrayList<>(a);
        out.addAll(b);
        out.addAll(c);
        return out;
    }
}
