package io.pgrelay.testkit;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.nio.file.attribute.UserPrincipalLookupService;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A real, throw-away PostgreSQL 15 instance on 127.0.0.1 for integration tests.
 *
 * <pre>{@code
 * try (PgServer primary = PgServer.startPrimary();
 *      PgServer replica = primary.startReplica()) {
 *     primary.psql(PgServer.APP_DB, "create table t(id int)");
 *     try (Connection c = replica.connect(PgServer.APP_DB, PgServer.APP_USER, PgServer.APP_PASSWORD)) { ... }
 * }
 * }</pre>
 *
 * <p>Each instance lives in its own temp directory ({@code <tmp>/pgrelay-pg-*}: {@code data/},
 * {@code sock/}, {@code pg_ctl.log}), listens on a free port from {@link FreePorts} and on a unix
 * socket in {@code sock/}. Settings are tuned for speed (fsync=off etc.), never for durability.
 * When the JVM runs as root every PostgreSQL program runs as the {@code postgres} OS user (see
 * {@link Proc#asPostgresOwner()}) and the directories are chowned to it.
 *
 * <p>Roles created on a primary (replicas inherit them):
 *
 * <ul>
 *   <li>{@value #SUPERUSER} / {@value #SUPERUSER_PASSWORD} — superuser (scram)
 *   <li>{@value #APP_USER} / {@value #APP_PASSWORD} — LOGIN, scram, owner of database {@value
 *       #APP_DB}
 *   <li>{@value #MD5_USER} / {@value #MD5_PASSWORD} — LOGIN, password stored as md5, md5 auth over
 *       TCP
 *   <li>{@value #REPLICATION_USER} / {@value #REPLICATION_PASSWORD} — LOGIN REPLICATION (scram)
 * </ul>
 *
 * pg_hba.conf: local trust; TCP scram-sha-256, except {@value #MD5_USER} which uses md5.
 *
 * <p>TLS (off unless {@link Options#ssl} is given): {@code ssl = on} with a {@link TestPki} server
 * certificate (copied into PGDATA as {@code server.crt}/{@code server.key}, owned by the PostgreSQL
 * OS user, key 0600) and the test CA as {@code ssl_ca_file} ({@code root.crt}), so the server asks
 * for, and verifies, client certificates. The TCP lines above then accept TLS and plain connections
 * alike, or only TLS ({@code hostssl}) with {@link Options#sslOnly()}; role {@value #CERT_USER} (no
 * password) logs in with a client certificate whose CN is {@value #CERT_USER} ({@code hostssl ...
 * cert}).
 *
 * <p>Cleanup: {@link #close()} stops the server and deletes its directory. A JVM shutdown hook does
 * the same (with {@code pg_ctl -m immediate}) for servers still alive at exit, and directories left
 * by a JVM that died without running hooks are reaped when the next server starts.
 *
 * <p>System properties: {@code pgrelay.testkit.pg_bindir} (default {@code
 * /usr/lib/postgresql/15/bin}, else {@code pg_config --bindir}), {@code pgrelay.testkit.tmpdir}
 * (default {@code /tmp} when root, else {@code java.io.tmpdir}), {@code pgrelay.testkit.pg_os_user}
 * (default {@code postgres}).
 */
public final class PgServer implements AutoCloseable {

    public static final String HOST = "127.0.0.1";

    public static final String SUPERUSER = "postgres";
    public static final String SUPERUSER_PASSWORD = "postgres";
    public static final String APP_USER = "app";
    public static final String APP_PASSWORD = "app-secret";
    public static final String APP_DB = "appdb";
    public static final String MD5_USER = "md5user";
    public static final String MD5_PASSWORD = "md5-secret";
    public static final String REPLICATION_USER = "replicator";
    public static final String REPLICATION_PASSWORD = "rep";

    /** With {@link Options#ssl}: a LOGIN role authenticated by client certificate (CN) only. */
    public static final String CERT_USER = "certuser";

    /** The maintenance database that always exists. */
    public static final String POSTGRES_DB = "postgres";

    /** Default bound for start/readiness waits. */
    public static final Duration READY_TIMEOUT = Duration.ofSeconds(30);

    private static final String DIR_PREFIX = "pgrelay-pg-";
    static final String OWNER_FILE = "owner.pid";
    private static final String CONF_FILE = "pgrelay_testkit.conf";
    private static final String LOG_DIR = "log";
    private static final String LOG_FILE = "postgresql.log";
    // Names inside PGDATA; postgresql.conf resolves relative file names against it.
    private static final String SSL_CERT = "server.crt";
    private static final String SSL_KEY = "server.key";
    private static final String SSL_CA = "root.crt";

    private static final Set<PgServer> LIVE = ConcurrentHashMap.newKeySet();
    private static final Object INIT_LOCK = new Object();
    private static boolean initialized;
    private static volatile Path binDir;

    private final Options options;
    private final PgServer primary;
    private final Path baseDir;
    private final Path dataDir;
    private final Path socketDir;
    private volatile int port;
    private volatile boolean closed;

    private PgServer(Options options, PgServer primary, Path baseDir, int port) {
        this.options = options;
        this.primary = primary;
        this.baseDir = baseDir;
        this.dataDir = baseDir.resolve("data");
        this.socketDir = baseDir.resolve("sock");
        this.port = port;
    }

    // ------------------------------------------------------------------------------------------
    // Options
    // ------------------------------------------------------------------------------------------

    /** Start options; mutable builder, copied when a server starts. */
    public static final class Options {
        private int maxConnections = 200;
        private Duration readyTimeout = READY_TIMEOUT;
        private final Map<String, String> settings = new LinkedHashMap<>();
        private TestPki.CertKey sslCert;
        private Path sslCa;
        private boolean sslOnly;

        /** Defaults: max_connections=200, 30 s ready timeout, no extra settings, ssl off. */
        public static Options defaults() {
            return new Options();
        }

        /** max_connections (default 200). */
        public Options maxConnections(int value) {
            if (value < 1) {
                throw new IllegalArgumentException("max_connections must be >= 1");
            }
            this.maxConnections = value;
            return this;
        }

        /** Bound for waiting until the server accepts connections (default 30 s). */
        public Options readyTimeout(Duration value) {
            this.readyTimeout = value;
            return this;
        }

        /**
         * An extra postgresql.conf line {@code name = value}. {@code value} is written verbatim:
         * quote string values yourself, e.g. {@code setting("application_name", "'x'")}; numbers
         * and booleans need no quotes. Overrides the built-in settings of the same name.
         */
        public Options setting(String name, String value) {
            settings.put(name, value);
            return this;
        }

        /**
         * {@code ssl = on} with {@code pki}'s {@link TestPki.Kind#GOOD} certificate (localhost,
         * 127.0.0.1) and {@code pki}'s CA for client certificates.
         */
        public Options ssl(TestPki pki) {
            return ssl(pki.serverCert(TestPki.Kind.GOOD), pki.caCert());
        }

        /**
         * {@code ssl = on} with any server certificate (e.g. {@link TestPki.Kind#WRONG_HOST} to
         * test a client's host name check) and {@code caCert} as {@code ssl_ca_file}. The files are
         * copied when the server is set up, so later changes to them do not reach it (see {@link
         * PgServer#installServerCert}).
         */
        public Options ssl(TestPki.CertKey serverCert, Path caCert) {
            this.sslCert = serverCert;
            this.sslCa = caCert;
            return this;
        }

        /**
         * With {@link #ssl}: TCP logins over TLS only ({@code hostssl}); plain ones are refused.
         */
        public Options sslOnly() {
            this.sslOnly = true;
            return this;
        }

        public boolean sslEnabled() {
            return sslCert != null;
        }

        public int maxConnections() {
            return maxConnections;
        }

        public Duration readyTimeout() {
            return readyTimeout;
        }

        public Map<String, String> settings() {
            return Map.copyOf(settings);
        }

        Options copy() {
            Options o = new Options();
            o.maxConnections = maxConnections;
            o.readyTimeout = readyTimeout;
            o.settings.putAll(settings);
            o.sslCert = sslCert;
            o.sslCa = sslCa;
            o.sslOnly = sslOnly;
            return o;
        }
    }

    // ------------------------------------------------------------------------------------------
    // Factories
    // ------------------------------------------------------------------------------------------

    /** Starts a primary with {@link Options#defaults()}. */
    public static PgServer startPrimary() {
        return startPrimary(Options.defaults());
    }

    /** initdb + configure + start + create the test roles and {@value #APP_DB}. */
    public static PgServer startPrimary(Options options) {
        if (options.sslOnly && !options.sslEnabled()) {
            throw new IllegalArgumentException("sslOnly() needs ssl(...)");
        }
        initOnce();
        PgServer server = new PgServer(options.copy(), null, newBaseDir(), FreePorts.next());
        LIVE.add(server);
        try {
            server.initdb();
            server.writeConfig();
            server.writeHba();
            server.firstStart();
            server.createRoles();
            return server;
        } catch (RuntimeException | Error e) {
            server.closeAfterFailure(e);
            throw e;
        }
    }

    /**
     * Starts a streaming hot standby of {@code primary}; same as {@code primary.startReplica()}.
     */
    public static PgServer startReplica(PgServer primary) {
        return primary.startReplica();
    }

    /**
     * pg_basebackup -R (as {@value #REPLICATION_USER}) from this server into a new directory, then
     * starts it on its own port and waits until it accepts connections and is in recovery.
     */
    public PgServer startReplica() {
        initOnce();
        ensureOpen();
        PgServer replica = new PgServer(options.copy(), this, newBaseDir(), FreePorts.next());
        LIVE.add(replica);
        try {
            replica.basebackupFrom(this);
            replica.writeConfig();
            replica.firstStart();
            Await.until(
                    "replica on port " + replica.port + " to be in recovery",
                    options.readyTimeout(),
                    () -> "t".equals(replica.psql(POSTGRES_DB, "select pg_is_in_recovery()")));
            return replica;
        } catch (RuntimeException | Error e) {
            replica.closeAfterFailure(e);
            throw e;
        }
    }

    // ------------------------------------------------------------------------------------------
    // Accessors
    // ------------------------------------------------------------------------------------------

    /** Always {@value #HOST}. */
    public String host() {
        return HOST;
    }

    public int port() {
        return port;
    }

    /** {@code host:port}. */
    public String hostPort() {
        return HOST + ":" + port;
    }

    /** PGDATA of this instance. */
    public Path dataDir() {
        return dataDir;
    }

    /** The temp directory holding data/, sock/ and pg_ctl.log; deleted by {@link #close()}. */
    public Path baseDir() {
        return baseDir;
    }

    /** Directory of the unix socket ({@code unix_socket_directories}). */
    public Path socketDir() {
        return socketDir;
    }

    /** The server log (logging_collector output, log_line_prefix has the pid). */
    public Path logFile() {
        return dataDir.resolve(LOG_DIR).resolve(LOG_FILE);
    }

    /** True if this instance was created by {@link #startReplica()}. */
    public boolean isReplica() {
        return primary != null;
    }

    /** The server this replica was cloned from, if any. */
    public Optional<PgServer> primary() {
        return Optional.ofNullable(primary);
    }

    public Options options() {
        return options.copy();
    }

    /** {@code jdbc:postgresql://127.0.0.1:<port>/<db>}. */
    public String jdbcUrl(String db) {
        return "jdbc:postgresql://" + HOST + ":" + port + "/" + db;
    }

    /**
     * Replaces the server certificate and key (copied into PGDATA) and reloads the configuration;
     * returns once new connections get the new certificate. For server-side rotation tests.
     */
    public void installServerCert(TestPki.CertKey serverCert) {
        ensureOpen();
        if (!options.sslEnabled()) {
            throw new IllegalStateException(this + " runs without ssl");
        }
        options.sslCert = serverCert;
        String before = psql(POSTGRES_DB, "select pg_conf_load_time()");
        copySslFiles();
        psql(POSTGRES_DB, "select pg_reload_conf()");
        // The postmaster reloads the SSL context in the same signal handler that re-reads the
        // config, before forking anyone: a session that sees the new load time has the new cert.
        Await.until(
                "server on port " + port + " to reload its configuration",
                options.readyTimeout(),
                () -> !before.equals(psql(POSTGRES_DB, "select pg_conf_load_time()")));
    }

    /** A pgjdbc connection over TCP (connect timeout 10 s). */
    public Connection connect(String db, String user, String password) throws SQLException {
        Properties props = new Properties();
        props.setProperty("user", user);
        props.setProperty("password", password);
        props.setProperty("connectTimeout", "10");
        props.setProperty("ApplicationName", "pgrelay-testkit");
        return DriverManager.getConnection(jdbcUrl(db), props);
    }

    /**
     * Runs {@code sql} with psql as the superuser over the unix socket ({@code -X -q -A -t},
     * ON_ERROR_STOP, statements fed on stdin so several statements and CREATE DATABASE work).
     *
     * @return stdout with trailing newlines removed: unaligned rows, columns separated by {@code |}
     * @throws Proc.ProcException with psql's stderr on error
     */
    public String psql(String db, String sql) {
        return psqlProc(db).stdin(sql + "\n").check().stdoutTrimmed();
    }

    /** Process id of the postmaster, or -1 if it is not running. */
    public long postmasterPid() {
        Path pidFile = dataDir.resolve("postmaster.pid");
        try {
            List<String> lines = Files.readAllLines(pidFile, StandardCharsets.UTF_8);
            if (lines.isEmpty() || lines.get(0).isBlank()) {
                return -1;
            }
            long pid = Long.parseLong(lines.get(0).trim());
            return ProcessHandle.of(pid).filter(ProcessHandle::isAlive).isPresent() ? pid : -1;
        } catch (NoSuchFileException e) {
            return -1;
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
    }

    /** True if the postmaster process is alive. */
    public boolean isRunning() {
        return postmasterPid() > 0;
    }

    /** Last {@code maxLines} lines of the server log and of pg_ctl's startup log. */
    public String logTail(int maxLines) {
        StringBuilder sb = new StringBuilder();
        for (Path p : List.of(baseDir.resolve("pg_ctl.log"), logFile())) {
            sb.append("--- ").append(p).append(" ---\n");
            try {
                sb.append(Proc.tail(Files.readString(p, StandardCharsets.UTF_8), maxLines))
                        .append('\n');
            } catch (IOException e) {
                sb.append("(unreadable: ").append(e).append(")\n");
            }
        }
        return sb.toString();
    }

    @Override
    public String toString() {
        return (isReplica() ? "PgServer[replica " : "PgServer[primary ")
                + hostPort()
                + " "
                + dataDir
                + "]";
    }

    // ------------------------------------------------------------------------------------------
    // Lifecycle
    // ------------------------------------------------------------------------------------------

    /**
     * Starts the (stopped or killed) server and waits, bounded by the ready timeout, until it
     * accepts TCP connections. Called by the factories; use it to restart after {@link #stop()} or
     * {@link #kill()}. On failure the server log tail is in the exception message.
     */
    public void start() {
        ensureOpen();
        if (isRunning()) {
            return;
        }
        Duration timeout = options.readyTimeout();
        long deadline = System.nanoTime() + timeout.toNanos();
        Proc.Result r =
                pg(
                                "pg_ctl",
                                "-D",
                                dataDir.toString(),
                                "-l",
                                baseDir.resolve("pg_ctl.log").toString(),
                                "-w",
                                "-t",
                                Long.toString(Math.max(1, timeout.toSeconds())),
                                "start")
                        .timeout(timeout.plusSeconds(10))
                        .run();
        if (!r.ok()) {
            String tail = logTail(40);
            stopQuietly();
            throw new IllegalStateException(
                    "PostgreSQL on port "
                            + port
                            + " did not start (pg_ctl exit "
                            + r.exitCode()
                            + "): "
                            + r.stderr()
                            + r.stdout()
                            + "\n"
                            + tail);
        }
        while (true) {
            Proc.Result ready =
                    pg(
                                    "pg_isready",
                                    "-h",
                                    HOST,
                                    "-p",
                                    Integer.toString(port),
                                    "-U",
                                    SUPERUSER,
                                    "-d",
                                    POSTGRES_DB,
                                    "-t",
                                    "2")
                            .timeout(Duration.ofSeconds(10))
                            .run();
            if (ready.ok()) {
                return;
            }
            if (System.nanoTime() - deadline > 0 || !isRunning()) {
                String tail = logTail(40);
                stopQuietly();
                throw new IllegalStateException(
                        "PostgreSQL on port "
                                + port
                                + " not ready within "
                                + timeout.toSeconds()
                                + " s (pg_isready: "
                                + ready.stdoutTrimmed()
                                + ")\n"
                                + tail);
            }
            sleep(100);
        }
    }

    /**
     * First start from a factory: if another process grabbed the port in the meantime (e.g. a
     * parallel test JVM), retry on a fresh port. Later {@link #start()} calls keep the port.
     */
    private void firstStart() {
        for (int attempt = 1; ; attempt++) {
            try {
                start();
                return;
            } catch (IllegalStateException e) {
                String msg = String.valueOf(e.getMessage());
                if (attempt >= 3
                        || !(msg.contains("Address already in use")
                                || msg.contains("could not bind"))) {
                    throw e;
                }
                port = FreePorts.next();
                writeConfig();
            }
        }
    }

    /**
     * Stops the server: {@code pg_ctl -m fast}, falling back to {@code -m immediate} and then to
     * SIGKILL. No-op if it is not running.
     */
    public void stop() {
        if (!isRunning()) {
            return;
        }
        Proc.Result r =
                pg("pg_ctl", "-D", dataDir.toString(), "-m", "fast", "-w", "-t", "30", "stop")
                        .timeout(Duration.ofSeconds(40))
                        .run();
        if (r.ok() && !isRunning()) {
            return;
        }
        r =
                pg("pg_ctl", "-D", dataDir.toString(), "-m", "immediate", "-w", "-t", "15", "stop")
                        .timeout(Duration.ofSeconds(25))
                        .run();
        if (r.ok() && !isRunning()) {
            return;
        }
        kill();
    }

    /**
     * Simulates a crash: SIGKILLs the postmaster and all its child processes (so client sockets are
     * reset at once) and waits until they are gone. {@link #start()} brings it back with crash
     * recovery. No-op if it is not running.
     */
    public void kill() {
        long pid = postmasterPid();
        if (pid <= 0) {
            return;
        }
        Optional<ProcessHandle> handle = ProcessHandle.of(pid);
        if (handle.isEmpty()) {
            return;
        }
        List<ProcessHandle> all = new ArrayList<>(handle.get().descendants().toList());
        all.add(0, handle.get());
        Proc.killTree(handle.get());
        for (ProcessHandle h : all) {
            try {
                h.onExit().get(10, TimeUnit.SECONDS);
            } catch (Exception ignored) {
                // best effort; checked below
            }
        }
        if (handle.get().isAlive()) {
            throw new IllegalStateException("postmaster " + pid + " survived SIGKILL");
        }
    }

    /** {@code pg_ctl promote -w}: turns a replica into a primary. */
    public void promote() {
        ensureOpen();
        pg("pg_ctl", "-D", dataDir.toString(), "-w", "-t", "30", "promote")
                .timeout(Duration.ofSeconds(40))
                .check();
        Await.until(
                "server on port " + port + " to leave recovery",
                options.readyTimeout(),
                () -> "f".equals(psql(POSTGRES_DB, "select pg_is_in_recovery()")));
    }

    /**
     * Stops the server (fast, falling back to immediate/SIGKILL) and deletes its directory.
     * Idempotent.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        try {
            stop();
        } finally {
            closed = true;
            LIVE.remove(this);
            deleteRecursively(baseDir);
        }
    }

    // ------------------------------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------------------------------

    private void initdb() {
        createDirOwned(socketDir);
        pg(
                        "initdb",
                        "-D",
                        dataDir.toString(),
                        "-U",
                        SUPERUSER,
                        "--auth-local=trust",
                        "--auth-host=scram-sha-256",
                        "-E",
                        "UTF8",
                        "--locale=C",
                        "--no-sync",
                        "--no-instructions")
                .timeout(Duration.ofSeconds(120))
                .check();
        appendLine(
                dataDir.resolve("postgresql.conf"),
                "\n# pgrelay testkit overrides\ninclude '" + CONF_FILE + "'\n");
    }

    private void basebackupFrom(PgServer source) {
        createDirOwned(socketDir);
        pg(
                        "pg_basebackup",
                        "-D",
                        dataDir.toString(),
                        "-R",
                        "-X",
                        "stream",
                        "-c",
                        "fast",
                        "--no-sync",
                        "-h",
                        HOST,
                        "-p",
                        Integer.toString(source.port),
                        "-U",
                        REPLICATION_USER,
                        "-w")
                .env("PGPASSWORD", REPLICATION_PASSWORD)
                .timeout(Duration.ofSeconds(120))
                .check();
        // The copy carries the primary's logs and startup log; start the replica with fresh ones.
        deleteRecursively(dataDir.resolve(LOG_DIR));
    }

    private void writeConfig() {
        Map<String, String> conf = new LinkedHashMap<>();
        conf.put("listen_addresses", quote(HOST));
        conf.put("port", Integer.toString(port));
        conf.put("unix_socket_directories", quote(socketDir.toString()));
        conf.put("max_connections", Integer.toString(options.maxConnections()));
        conf.put("wal_level", "replica");
        conf.put("max_wal_senders", "10");
        conf.put("max_replication_slots", "10");
        conf.put("wal_keep_size", "'256MB'");
        conf.put("hot_standby", "on");
        conf.put("fsync", "off");
        conf.put("synchronous_commit", "off");
        conf.put("full_page_writes", "off");
        conf.put("shared_buffers", "'32MB'");
        conf.put("logging_collector", "on");
        conf.put("log_directory", quote(LOG_DIR));
        conf.put("log_filename", quote(LOG_FILE));
        conf.put("log_rotation_age", "0");
        conf.put("log_rotation_size", "0");
        conf.put("log_line_prefix", quote("%m [%p] %q%u@%d "));
        conf.put("password_encryption", quote("scram-sha-256"));
        if (options.sslEnabled()) {
            copySslFiles();
            conf.put("ssl", "on");
            conf.put("ssl_cert_file", quote(SSL_CERT));
            conf.put("ssl_key_file", quote(SSL_KEY));
            conf.put("ssl_ca_file", quote(SSL_CA));
        }
        conf.putAll(options.settings);
        StringBuilder sb = new StringBuilder("# written by io.pgrelay.testkit.PgServer\n");
        conf.forEach((k, v) -> sb.append(k).append(" = ").append(v).append('\n'));
        writeOwned(dataDir.resolve(CONF_FILE), sb.toString());
    }

    private void writeHba() {
        // "host" matches TLS and plain TCP, "hostssl" TLS only: with sslOnly nothing matches a
        // plain connection, which PostgreSQL refuses ("no pg_hba.conf entry ... no encryption").
        String host = options.sslOnly ? "hostssl" : "host   ";
        String hba =
                "# written by io.pgrelay.testkit.PgServer\n"
                        + "# TYPE  DATABASE     USER       ADDRESS        METHOD\n"
                        + "local   all          all                       trust\n"
                        + (options.sslEnabled()
                                ? "hostssl all          " + CERT_USER + "   127.0.0.1/32   cert\n"
                                : "")
                        + host
                        + " replication  all        127.0.0.1/32   scram-sha-256\n"
                        + host
                        + " all          "
                        + MD5_USER
                        + "    127.0.0.1/32   md5\n"
                        + host
                        + " all          all        127.0.0.1/32   scram-sha-256\n";
        writeOwned(dataDir.resolve("pg_hba.conf"), hba);
    }

    /**
     * Copies the TLS files into PGDATA, owned by the PostgreSQL OS user (which may not read the
     * test's own directory) and the key 0600 (else PostgreSQL refuses to start).
     */
    private void copySslFiles() {
        try {
            copyOwned(options.sslCert.cert(), dataDir.resolve(SSL_CERT), "rw-r--r--");
            copyOwned(options.sslCert.key(), dataDir.resolve(SSL_KEY), "rw-------");
            copyOwned(options.sslCa, dataDir.resolve(SSL_CA), "rw-r--r--");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Copied aside, chowned, then renamed over the target, so PostgreSQL never reads half. */
    static void copyOwned(Path from, Path to, String mode) throws IOException {
        Path tmp = to.resolveSibling(to.getFileName() + ".tmp");
        Files.copy(from, tmp, StandardCopyOption.REPLACE_EXISTING);
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString(mode));
        chownToPostgres(tmp);
        Files.move(tmp, to, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private void createRoles() {
        String sql =
                "ALTER ROLE "
                        + SUPERUSER
                        + " PASSWORD "
                        + literal(SUPERUSER_PASSWORD)
                        + ";\n"
                        + "SET password_encryption = 'scram-sha-256';\n"
                        + "CREATE ROLE "
                        + APP_USER
                        + " LOGIN PASSWORD "
                        + literal(APP_PASSWORD)
                        + ";\n"
                        + "CREATE ROLE "
                        + REPLICATION_USER
                        + " LOGIN REPLICATION PASSWORD "
                        + literal(REPLICATION_PASSWORD)
                        + ";\n"
                        + "SET password_encryption = 'md5';\n"
                        + "CREATE ROLE "
                        + MD5_USER
                        + " LOGIN PASSWORD "
                        + literal(MD5_PASSWORD)
                        + ";\n"
                        + "RESET password_encryption;\n"
                        + (options.sslEnabled() ? "CREATE ROLE " + CERT_USER + " LOGIN;\n" : "")
                        + "CREATE DATABASE "
                        + APP_DB
                        + " OWNER "
                        + APP_USER
                        + ";\n";
        psqlProc(POSTGRES_DB).stdin(sql).check();
    }

    private Proc psqlProc(String db) {
        return pg(
                        "psql",
                        "-X",
                        "-q",
                        "-A",
                        "-t",
                        "-v",
                        "ON_ERROR_STOP=1",
                        "-h",
                        socketDir.toString(),
                        "-p",
                        Integer.toString(port),
                        "-U",
                        SUPERUSER,
                        "-d",
                        db,
                        "-f",
                        "-")
                .timeout(Duration.ofSeconds(60));
    }

    /** A PostgreSQL program from the bin dir, run as the PostgreSQL owner with a clean PG* env. */
    private Proc pg(String tool, String... args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(pgBinDir().resolve(tool).toString());
        cmd.addAll(List.of(args));
        return Proc.of(cmd).asPostgresOwner().cleanPgEnv().directory(baseDir);
    }

    /** Directory holding initdb, pg_ctl, psql, ... */
    public static Path pgBinDir() {
        Path dir = binDir;
        if (dir == null) {
            String configured =
                    System.getProperty("pgrelay.testkit.pg_bindir", System.getenv("PG_BINDIR"));
            if (configured != null && !configured.isBlank()) {
                dir = Path.of(configured);
            } else if (Files.isExecutable(Path.of("/usr/lib/postgresql/15/bin/initdb"))) {
                dir = Path.of("/usr/lib/postgresql/15/bin");
            } else {
                Proc.Result r =
                        Proc.of("pg_config", "--bindir").timeout(Duration.ofSeconds(10)).run();
                if (!r.ok()) {
                    throw new IllegalStateException(
                            "cannot find the PostgreSQL bin dir; set -Dpgrelay.testkit.pg_bindir");
                }
                dir = Path.of(r.stdoutTrimmed());
            }
            binDir = dir;
        }
        return dir;
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException(this + " is closed");
        }
    }

    private void stopQuietly() {
        try {
            stop();
        } catch (RuntimeException ignored) {
            // reported by the caller's exception
        }
    }

    private void closeAfterFailure(Throwable failure) {
        try {
            close();
        } catch (RuntimeException e) {
            failure.addSuppressed(e);
        }
    }

    /** Shutdown-hook path: immediate stop, SIGKILL if needed, delete the directory. */
    private void emergencyCleanup() {
        try {
            if (isRunning()) {
                pg("pg_ctl", "-D", dataDir.toString(), "-m", "immediate", "-w", "-t", "10", "stop")
                        .timeout(Duration.ofSeconds(15))
                        .run();
                kill();
            }
        } catch (RuntimeException ignored) {
            // best effort
        } finally {
            closed = true;
            deleteRecursively(baseDir);
        }
    }

    private static void initOnce() {
        synchronized (INIT_LOCK) {
            if (initialized) {
                return;
            }
            initialized = true;
            Runtime.getRuntime()
                    .addShutdownHook(
                            new Thread(
                                    () -> {
                                        for (PgServer s : List.copyOf(LIVE)) {
                                            s.emergencyCleanup();
                                        }
                                    },
                                    "pgrelay-testkit-pg-cleanup"));
            reapOrphans();
        }
    }

    /**
     * Removes directories (and stops servers) left behind by test JVMs that died without running
     * shutdown hooks (e.g. SIGKILL). Only directories whose recorded owner JVM is gone are touched.
     */
    private static void reapOrphans() {
        Path tmp = tempRoot();
        try (Stream<Path> dirs = Files.list(tmp)) {
            for (Path dir :
                    dirs.filter(p -> p.getFileName().toString().startsWith(DIR_PREFIX)).toList()) {
                Path owner = dir.resolve(OWNER_FILE);
                long ownerPid;
                try {
                    ownerPid =
                            Long.parseLong(Files.readString(owner, StandardCharsets.UTF_8).trim());
                } catch (IOException | NumberFormatException e) {
                    continue; // not ours or still being created
                }
                if (isLiveProcess(ownerPid)) {
                    continue;
                }
                Path data = dir.resolve("data");
                if (Files.exists(data.resolve("postmaster.pid"))) {
                    Proc.of(
                                    pgBinDir().resolve("pg_ctl").toString(),
                                    "-D",
                                    data.toString(),
                                    "-m",
                                    "immediate",
                                    "-w",
                                    "-t",
                                    "10",
                                    "stop")
                            .asPostgresOwner()
                            .cleanPgEnv()
                            .timeout(Duration.ofSeconds(15))
                            .run();
                }
                deleteRecursively(dir);
            }
        } catch (IOException | RuntimeException ignored) {
            // best effort
        }
    }

    /** Alive and not a zombie (a SIGKILLed JVM may linger as a zombie until reaped). */
    private static boolean isLiveProcess(long pid) {
        if (ProcessHandle.of(pid).filter(ProcessHandle::isAlive).isEmpty()) {
            return false;
        }
        try {
            String stat =
                    Files.readString(
                            Path.of("/proc", Long.toString(pid), "stat"), StandardCharsets.UTF_8);
            int close = stat.lastIndexOf(')');
            return close < 0 || close + 2 >= stat.length() || stat.charAt(close + 2) != 'Z';
        } catch (IOException e) {
            return true; // no /proc: trust ProcessHandle
        }
    }

    /** Where test directories go: /tmp when root (the postgres user must traverse the parents). */
    static Path tempRoot() {
        String configured = System.getProperty("pgrelay.testkit.tmpdir");
        if (configured != null && !configured.isBlank()) {
            return Path.of(configured);
        }
        return Path.of(Proc.isRoot() ? "/tmp" : System.getProperty("java.io.tmpdir"));
    }

    /**
     * A new directory owned by the postgres user, marked with this JVM's pid for the orphan reaper.
     */
    static Path newOwnedTempDir(String prefix) {
        try {
            Path dir = Files.createTempDirectory(tempRoot(), prefix);
            Files.writeString(
                    dir.resolve(OWNER_FILE),
                    Long.toString(ProcessHandle.current().pid()),
                    StandardCharsets.UTF_8);
            chownToPostgres(dir);
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create a temp dir under " + tempRoot(), e);
        }
    }

    private static Path newBaseDir() {
        return newOwnedTempDir(DIR_PREFIX);
    }

    static void createDirOwned(Path dir) {
        try {
            Files.createDirectories(dir);
            chownToPostgres(dir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void writeOwned(Path file, String content) {
        try {
            Files.writeString(file, content, StandardCharsets.UTF_8);
            chownToPostgres(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void appendLine(Path file, String content) {
        try {
            Files.writeString(
                    file, content, StandardCharsets.UTF_8, java.nio.file.StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** When root, gives {@code path} to the PostgreSQL OS user (no-op otherwise). */
    static void chownToPostgres(Path path) throws IOException {
        if (!Proc.isRoot()) {
            return;
        }
        UserPrincipalLookupService lookup = path.getFileSystem().getUserPrincipalLookupService();
        UserPrincipal user = lookup.lookupPrincipalByName(Proc.postgresOsUser());
        GroupPrincipal group;
        try {
            group = lookup.lookupPrincipalByGroupName(Proc.postgresOsUser());
        } catch (IOException e) {
            group = null;
        }
        PosixFileAttributeView view =
                Files.getFileAttributeView(path, PosixFileAttributeView.class);
        view.setOwner(user);
        if (group != null) {
            view.setGroup(group);
        }
    }

    private static void deleteRecursively(Path root) {
        if (root == null || !Files.exists(root)) {
            return;
        }
        try {
            Files.walkFileTree(
                    root,
                    new SimpleFileVisitor<>() {
                        @Override
                        public FileVisitResult visitFile(Path file, BasicFileAttributes attrs)
                                throws IOException {
                            Files.deleteIfExists(file);
                            return FileVisitResult.CONTINUE;
                        }

                        @Override
                        public FileVisitResult visitFileFailed(Path file, IOException exc) {
                            return FileVisitResult.CONTINUE;
                        }

                        @Override
                        public FileVisitResult postVisitDirectory(Path dir, IOException exc)
                                throws IOException {
                            Files.deleteIfExists(dir);
                            return FileVisitResult.CONTINUE;
                        }
                    });
        } catch (IOException e) {
            // A non-root JVM cannot always remove files created by another user: fall back to rm.
            Proc.of("rm", "-rf", root.toString()).timeout(Duration.ofSeconds(60)).run();
        }
    }

    private static String quote(String value) {
        return "'" + value.replace("'", "''") + "'";
    }

    private static String literal(String value) {
        return "'" + value.replace("'", "''") + "'";
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }
}
