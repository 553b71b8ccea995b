package io.pgrelay.bench.harness;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the parts of one benchmark run share: the settings, the directories, and the state of the
 * TLS mode being measured (which targets listen where, why others do not).
 */
final class Context {
    final Settings settings;
    final Proc proc;
    final Ports ports;
    final Path repoRoot;
    final Path work;
    final Path results;
    final Path tlsDir;
    final int cores;
    int pgPort;

    /** The mode being measured and its prefix of result file names (empty for off). */
    TlsMode tlsMode = TlsMode.OFF;

    String prefix = "";

    /** Target -> its listening port; direct is PostgreSQL itself. */
    final Map<String, Integer> port = new HashMap<>();

    final Map<String, String> skipReason = new LinkedHashMap<>();

    /** pgbouncer / pgbouncer125 / odyssey -> the first line of its --version. */
    final Map<String, String> version = new HashMap<>();

    /** pgrelay / baseline -> the "TLS engine: ..." line of its log (TLS modes). */
    final Map<String, String> tlsEngine = new HashMap<>();

    String haproxyVersion = "";

    Context(Settings settings, Proc proc, Path repoRoot, Path work, Path results, int cores) {
        this.settings = settings;
        this.proc = proc;
        this.ports = new Ports(proc);
        this.repoRoot = repoRoot;
        this.work = work;
        this.results = results;
        this.tlsDir = work.resolve("tls");
        this.cores = cores;
    }

    Path tlsKeyFile() {
        return tlsDir.resolve("server.key");
    }

    Path tlsCertFile() {
        return tlsDir.resolve("server.crt");
    }

    /** libpq's sslmode towards a target in the current mode. */
    String clientSslmode(String target) {
        return tlsMode.clientSslmode(target, settings.pgsslmode);
    }

    /** A real login and query through a target; the result's output is psql's messages. */
    Proc.Result checkSql(int port, String target) {
        return selectOne(port, Map.of("PGSSLMODE", clientSslmode(target)));
    }

    /**
     * psql's "select 1" as the benchmark user on a port, with these libpq variables (sslmode,
     * channel binding) beside the password.
     */
    Proc.Result selectOne(int port, Map<String, String> libpq) {
        Map<String, String> env = new HashMap<>(libpq);
        env.put("PGPASSWORD", Settings.BENCH_PASSWORD);
        return proc.capture(
                List.of(
                        "timeout",
                        "30",
                        settings.pgBindir + "/psql",
                        "-X",
                        "-q",
                        "-At",
                        "-h",
                        Settings.HOST,
                        "-p",
                        Integer.toString(port),
                        "-U",
                        Settings.BENCH_USER,
                        "-d",
                        Settings.BENCH_DB,
                        "-c",
                        "select 1"),
                env);
    }

    /** The open-files soft limit this process (and so every child) has, or -1 when unlimited. */
    static long openFilesLimit() {
        for (String line : Text.lines(Path.of("/proc/self/limits"))) {
            if (line.startsWith("Max open files")) {
                String soft = line.substring("Max open files".length()).trim().split("\\s+")[0];
                return soft.equals("unlimited") ? -1 : Long.parseLong(soft);
            }
        }
        return -1;
    }

    /** A value of /proc/PID/limits or /proc/PID/status for the start-up log lines, or "?". */
    static String procField(long pid, String file, String prefix, int field) {
        for (String line : Text.lines(Path.of("/proc/" + pid + "/" + file))) {
            if (line.startsWith(prefix)) {
                String[] words = line.trim().split("\\s+");
                return words.length > field ? words[field] : "?";
            }
        }
        return "?";
    }
}
