package io.pgrelay.bench.harness;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * Options and environment variables, with the shell version's defaults and checks. Only what can be
 * decided without touching the machine lives here (binaries are looked up through {@link Machine}),
 * so the parsing can be tested with a made-up environment.
 */
final class Settings {
    static final List<String> ALL_TARGETS =
            List.of("direct", "pgbouncer", "pgbouncer125", "odyssey", "pgrelay", "haproxy");
    static final int PG_MAX_CONNECTIONS = 300;
    static final String HOST = "127.0.0.1";
    static final String BENCH_USER = "bench";
    static final String BENCH_PASSWORD = "benchpw";
    static final String BENCH_DB = "bench";
    static final int START_TIMEOUT = 30;

    /** What the settings need to know about the machine: the repository, cwd and binaries. */
    record Machine(
            Path repoRoot,
            Path cwd,
            int cores,
            Predicate<String> executable,
            Map<String, String> env) {}

    boolean help;
    int duration;
    int runs;
    int warmup;
    int scale;
    int poolSize;
    int idleClients;
    int idleThreads;
    int maxClientConn = 2000;
    Integer connectSlack;
    String pgBindir;
    String pgbouncer;
    String haproxy;
    String pgbouncer125;
    String odyssey;
    int odysseyWorkers;
    String java;
    String javaOpts;
    String jvmOptionsFile;
    String pgrelayJar;
    String baselineJar;
    String baselineOpts;
    String baselineJava;
    String tlsKey;
    String pgsslmode;
    boolean build;
    boolean targetsGiven;
    boolean tlsUsed;
    List<String> targets = new ArrayList<>(ALL_TARGETS);
    List<String> protocols = new ArrayList<>(List.of("simple", "extended", "prepared"));
    List<String> clients = new ArrayList<>(List.of("1", "16", "64", "256", "1000"));
    List<String> connectClients = new ArrayList<>();
    List<String> tlsModes = new ArrayList<>();

    /** "protocol|clients": the pgbench -S points, then the connection-rate points. */
    List<Point> points = new ArrayList<>();

    /** The protocols that have points, each warmed up. */
    List<String> pointProtocols = new ArrayList<>();

    /** Lines of the summary about targets left out of the default list. */
    List<String> notes = new ArrayList<>();

    record Point(String protocol, int clients) {}

    boolean hasTarget(String target) {
        return targets.contains(target);
    }

    static Settings parse(List<String> args, Machine machine) {
        Map<String, String> env = machine.env();
        Settings s = new Settings();
        String duration = env(env, "DURATION", "10");
        String runs = env(env, "RUNS", "3");
        String warmup = env(env, "WARMUP", "15");
        String scale = env(env, "SCALE", "10");
        String poolSize = env(env, "POOL_SIZE", "20");
        String idleClients = env(env, "IDLE_CLIENTS", "0");
        String idleThreads = env(env, "IDLE_THREADS", "4");
        String connectSlack = env(env, "CONNECT_SLACK", "");
        s.pgBindir = env(env, "PG_BINDIR", "/usr/lib/postgresql/15/bin");
        s.pgbouncer = env(env, "PGBOUNCER", "/usr/sbin/pgbouncer");
        s.haproxy = env(env, "HAPROXY", "/usr/sbin/haproxy");
        s.pgbouncer125 = env.get("PGBOUNCER125");
        if (s.pgbouncer125 == null || s.pgbouncer125.isEmpty()) {
            s.pgbouncer125 = NewestBuild.find("/opt/anchors/pgbouncer-1.25.*/bin/pgbouncer");
        }
        s.odyssey = env.get("ODYSSEY");
        if (s.odyssey == null || s.odyssey.isEmpty()) {
            s.odyssey = NewestBuild.find("/opt/anchors/odyssey-*/bin/odyssey");
        }
        String workers =
                env(env, "ODYSSEY_WORKERS", Integer.toString(Math.max(machine.cores() / 2, 1)));
        s.java = env(env, "JAVA", "java");
        s.javaOpts = env(env, "JAVA_OPTS", "");
        s.jvmOptionsFile =
                env(
                        env,
                        "PGRELAY_JVM_OPTIONS",
                        machine.repoRoot().resolve("conf/jvm.options").toString());
        s.pgrelayJar =
                absolute(
                        env(
                                env,
                                "PGRELAY_JAR",
                                machine.repoRoot()
                                        .resolve("proxy-core/target/pgrelay.jar")
                                        .toString()),
                        machine.cwd());
        s.baselineJar = env(env, "BASELINE_JAR", "");
        s.baselineOpts = env(env, "BASELINE_OPTS", "");
        s.baselineJava = env(env, "BASELINE_JAVA", "");
        String tls = env(env, "TLS", "off");
        s.tlsKey = env(env, "TLS_KEY", "ec");
        String connectList = env(env, "CONNECT_CLIENTS", "");
        s.pgsslmode = env(env, "PGSSLMODE", "disable");
        boolean withPrepared = false;

        for (int i = 0; i < args.size(); i++) {
            String arg = args.get(i);
            String name = arg.contains("=") ? arg.substring(0, arg.indexOf('=')) : arg;
            String value = null;
            boolean takesValue =
                    List.of(
                                    "--targets",
                                    "--protocols",
                                    "--clients",
                                    "--runs",
                                    "--idle-clients",
                                    "--baseline-jar",
                                    "--tls",
                                    "--connect-clients")
                            .contains(name);
            if (takesValue) {
                if (arg.contains("=")) {
                    value = arg.substring(arg.indexOf('=') + 1);
                } else if (i + 1 < args.size()) {
                    value = args.get(++i);
                } else {
                    throw new HarnessException(name + " needs a value");
                }
            }
            switch (takesValue ? name : arg) {
                case "--targets" -> {
                    s.targets = split(value);
                    s.targetsGiven = true;
                }
                case "--protocols" -> s.protocols = split(value);
                case "--clients" -> s.clients = split(value);
                case "--runs" -> runs = value;
                case "--idle-clients" -> idleClients = value;
                case "--baseline-jar" -> s.baselineJar = value;
                case "--tls" -> tls = value;
                case "--connect-clients" -> connectList = value;
                case "--prepared" -> withPrepared = true;
                case "--build" -> s.build = true;
                case "-h", "--help" -> {
                    s.help = true;
                    return s;
                }
                default -> throw new UsageException("unknown argument: " + arg);
            }
        }

        if (!s.baselineJar.isEmpty()) {
            s.baselineJar = absolute(s.baselineJar, machine.cwd());
        }
        // A baseline jar adds the baseline target to the default list, right after pgrelay.
        if (!s.targetsGiven && !s.baselineJar.isEmpty()) {
            s.targets =
                    new ArrayList<>(
                            List.of(
                                    "direct",
                                    "pgbouncer",
                                    "pgbouncer125",
                                    "odyssey",
                                    "pgrelay",
                                    "baseline",
                                    "haproxy"));
        }
        if (withPrepared && !s.protocols.contains("prepared")) {
            s.protocols.add("prepared");
        }
        if (s.clients.equals(List.of("none"))) {
            s.clients = new ArrayList<>();
        }
        s.tlsModes = split(tls);
        s.connectClients = split(connectList);
        if (s.connectClients.equals(List.of("none"))) {
            s.connectClients = new ArrayList<>();
        }
        SettingsChecks.lists(s);
        for (String p : s.protocols) {
            for (String c : s.clients) {
                s.points.add(new Point(p, Integer.parseInt(c)));
            }
        }
        for (String c : s.connectClients) {
            s.points.add(new Point("connect", Integer.parseInt(c)));
        }
        if (!s.clients.isEmpty()) {
            s.pointProtocols.addAll(s.protocols);
        }
        if (!s.connectClients.isEmpty()) {
            s.pointProtocols.add("connect");
        }
        s.duration =
                SettingsChecks.positive(
                        duration, "DURATION must be a positive integer (seconds), got '%s'");
        s.runs =
                SettingsChecks.positive(runs, "RUNS / --runs must be a positive integer, got '%s'");
        s.warmup = SettingsChecks.natural(warmup, "WARMUP must be an integer (seconds), got '%s'");
        s.scale = SettingsChecks.positive(scale, "SCALE must be a positive integer, got '%s'");
        if (!connectSlack.isEmpty()) {
            s.connectSlack =
                    SettingsChecks.natural(
                            connectSlack, "CONNECT_SLACK must be an integer (seconds)");
        }
        s.poolSize =
                SettingsChecks.positive(poolSize, "POOL_SIZE must be a positive integer, got '%s'");
        s.idleClients =
                SettingsChecks.natural(
                        idleClients, "IDLE_CLIENTS / --idle-clients must be an integer, got '%s'");
        s.idleThreads =
                SettingsChecks.positive(
                        idleThreads, "IDLE_THREADS must be a positive integer, got '%s'");
        s.odysseyWorkers =
                SettingsChecks.positive(
                        workers, "ODYSSEY_WORKERS must be a positive integer, got '%s'");
        if (s.points.isEmpty() && s.idleClients <= 0) {
            throw new HarnessException("nothing to do: --clients none and no --idle-clients");
        }
        if (s.idleClients > 0 && s.tlsUsed) {
            throw new HarnessException(
                    "--idle-clients runs in plain text only: run it without --tls (or with --tls off)");
        }
        if (s.tlsUsed && !machine.executable().test("openssl")) {
            throw new HarnessException(
                    "--tls " + tls + " needs openssl (for the throw-away certificates)");
        }
        for (String tool : List.of("initdb", "pg_ctl", "psql", "pgbench", "pg_isready")) {
            if (!machine.executable().test(s.pgBindir + "/" + tool)) {
                throw new HarnessException(s.pgBindir + "/" + tool + " not found (set PG_BINDIR)");
            }
        }
        SettingsChecks.dropMissingDefaults(s, machine.executable());
        // Idle connections need max_client_conn above their count on every proxy.
        if (s.idleClients + 1000 > s.maxClientConn) {
            s.maxClientConn = s.idleClients + 1000;
        }
        return s;
    }

    /** The shell version's {@code ${VAR:-default}}: unset and empty both mean the default. */
    static String env(Map<String, String> env, String name, String fallback) {
        String value = env.get(name);
        return value == null || value.isEmpty() ? fallback : value;
    }

    /**
     * Splits on commas like bash's {@code IFS=,} word splitting: inner empties stay, a trailing one
     * goes.
     */
    static List<String> split(String list) {
        List<String> out = new ArrayList<>();
        if (list.isEmpty()) {
            return out;
        }
        out.addAll(List.of(list.split(",")));
        return out;
    }

    private static String absolute(String path, Path cwd) {
        return path.startsWith("/") ? path : cwd + "/" + path;
    }

    /** An unknown argument: the usage text goes to stderr before the error. */
    static final class UsageException extends HarnessException {
        UsageException(String message) {
            super(message);
        }
    }
}
