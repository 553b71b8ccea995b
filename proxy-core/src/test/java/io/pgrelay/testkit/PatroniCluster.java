package io.pgrelay.testkit;

import io.pgrelay.routing.EtcdProcess;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.HttpURLConnection;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A real 3-node Patroni 3 cluster (PostgreSQL 15) with its own single-member etcd, all on loopback,
 * for failover tests.
 *
 * <pre>{@code
 * try (PatroniCluster cluster = PatroniCluster.start("t" + System.nanoTime())) {
 *     String old = cluster.leaderName();
 *     cluster.switchover(null);
 * }
 * }</pre>
 *
 * <p>Layout: {@code <tmp>/pgrelay-patroni-*} holds {@code etcd.log}, {@code etcd-data/} and one dir
 * per node ({@code node1..3}: {@code patroni.yml}, {@code patroni.log}, {@code data/} with
 * PostgreSQL's own {@code log/postgresql.log}, {@code sock/}, {@code pgpass}). Failures quote the
 * tails of those logs.
 *
 * <p>DCS settings are tuned for quick tests: {@code ttl 20}, {@code loop_wait 2}, {@code
 * retry_timeout 5}, and {@code failsafe_mode: true} so the primary keeps serving during an etcd
 * outage while it can reach every member. Roles match {@link PgServer}: {@value
 * PgServer#SUPERUSER}/{@value PgServer#SUPERUSER_PASSWORD} superuser, {@value
 * PgServer#APP_USER}/{@value PgServer#APP_PASSWORD} owning {@value PgServer#APP_DB}, {@value
 * PgServer#REPLICATION_USER}/{@value PgServer#REPLICATION_PASSWORD}; pg_hba: local trust,
 * replication md5, everything else scram-sha-256 on 127.0.0.1.
 *
 * <p>Processes: each node is {@code runuser -u postgres -- patroni node.yml}; Patroni detaches the
 * postmaster from itself, so killing a node means killing the Patroni tree <em>and</em> the
 * postmaster tree found through {@code postmaster.pid}. {@link #close()}, a JVM shutdown hook, and
 * the orphan reaper (for JVMs that died without hooks; it kills every process whose command line
 * names an orphaned directory) all do that and delete the directory.
 */
public final class PatroniCluster implements AutoCloseable {

    public static final String NAMESPACE = "/service/";
    public static final int NODES = 3;
    public static final Duration BOOTSTRAP_TIMEOUT = Duration.ofSeconds(90);

    /** Members run with ssl = on and this CA's certificate; null: without TLS. */
    private TestPki pki;

    private static final String DIR_PREFIX = "pgrelay-patroni-";
    private static final String OWNER_FILE = PgServer.OWNER_FILE;
    private static final Set<PatroniCluster> LIVE = ConcurrentHashMap.newKeySet();
    private static final Object INIT_LOCK = new Object();
    private static boolean initialized;

    /**
     * Where the cluster runs when not all on loopback: node {@code i} on {@code nodeHosts.get(i)}
     * (its PostgreSQL and REST API on that host's bridge address), the DCS on {@code etcd}'s
     * members; {@code synchronousMode}: Patroni's {@code synchronous_mode} (and {@code
     * synchronous_commit = on}, so a commit waits for the synchronous standby).
     */
    public record Placement(
            List<TestNetwork.Host> nodeHosts, EtcdCluster etcd, boolean synchronousMode) {
        public Placement {
            if (nodeHosts.size() != NODES) {
                throw new IllegalArgumentException(NODES + " node hosts, got " + nodeHosts);
            }
        }
    }

    /**
     * One Patroni node's fixed identity. {@code host}: the {@link TestNetwork} host it runs on, or
     * null on loopback; {@code address}: where its PostgreSQL and REST API listen.
     */
    public record MemberInfo(
            String name,
            int pgPort,
            int restPort,
            Path dir,
            String address,
            TestNetwork.Host host) {

        public Path dataDir() {
            return dir.resolve("data");
        }

        public Path socketDir() {
            return dir.resolve("sock");
        }

        public Path config() {
            return dir.resolve("patroni.yml");
        }
    }

    private final String scope;
    private final Path baseDir;
    private final Map<String, MemberInfo> members = new LinkedHashMap<>();
    private final Map<String, Process> patroni = new ConcurrentHashMap<>();
    private EtcdProcess etcd;
    private Placement placement;
    private volatile boolean closed;

    private PatroniCluster(String scope, Path baseDir) {
        this.scope = scope;
        this.baseDir = baseDir;
    }

    // ------------------------------------------------------------------------------------------
    // Lifecycle
    // ------------------------------------------------------------------------------------------

    /**
     * Starts etcd and three Patroni nodes, waits for a leader with two streaming replicas, and
     * creates the test roles and {@value PgServer#APP_DB}. Use a scope unique per test.
     */
    public static PatroniCluster start(String scope) {
        return start(scope, null);
    }

    /**
     * {@link #start(String)} with {@code ssl = on} on every member, presenting {@code pki}'s {@link
     * TestPki.Kind#GOOD} certificate (127.0.0.1 and localhost, the members' conn_url host); null:
     * no TLS.
     */
    public static PatroniCluster start(String scope, TestPki pki) {
        return start(scope, pki, null);
    }

    /**
     * {@link #start(String)} on simulated hosts: each node in its own {@link TestNetwork} host,
     * etcd as {@code placement.etcd()} (started by the caller, closed by the caller).
     */
    public static PatroniCluster startOn(String scope, Placement placement) {
        return start(scope, null, placement);
    }

    private static PatroniCluster start(String scope, TestPki pki, Placement placement) {
        initOnce();
        PatroniCluster cluster = new PatroniCluster(scope, newBaseDir());
        cluster.pki = pki;
        cluster.placement = placement;
        LIVE.add(cluster);
        try {
            if (placement == null) {
                cluster.etcd = EtcdProcess.startIn(cluster.baseDir.resolve("etcd"));
            }
            for (int i = 1; i <= NODES; i++) {
                String name = "node" + i;
                Path dir = cluster.baseDir.resolve(name);
                createDirOwned(dir);
                createDirOwned(dir.resolve("sock"));
                TestNetwork.Host host = placement == null ? null : placement.nodeHosts().get(i - 1);
                MemberInfo m =
                        new MemberInfo(
                                name,
                                FreePorts.next(),
                                FreePorts.next(),
                                dir,
                                host == null ? "127.0.0.1" : host.address(),
                                host);
                cluster.members.put(name, m);
                cluster.writeConfig(m);
            }
            for (String name : cluster.members.keySet()) {
                cluster.startMember(name);
            }
            String leader = cluster.awaitLeaderRunning(BOOTSTRAP_TIMEOUT);
            cluster.createRoles(leader);
            cluster.awaitHealthy(BOOTSTRAP_TIMEOUT);
            cluster.awaitAppDbEverywhere(Duration.ofSeconds(30));
            return cluster;
        } catch (RuntimeException | Error e) {
            IllegalStateException failure =
                    new IllegalStateException(
                            "Patroni cluster '"
                                    + scope
                                    + "' did not start: "
                                    + e.getMessage()
                                    + "\n"
                                    + cluster.logTails(),
                            e);
            cluster.close();
            throw failure;
        }
    }

    /** Kills everything (Patroni, PostgreSQL, etcd) and deletes the directory. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            for (MemberInfo m : members.values()) {
                killNode(m);
            }
            if (etcd != null) {
                etcd.close();
            }
            killProcessesNaming(baseDir);
        } finally {
            LIVE.remove(this);
            deleteRecursively(baseDir);
        }
    }

    // ------------------------------------------------------------------------------------------
    // Facts
    // ------------------------------------------------------------------------------------------

    public String scope() {
        return scope;
    }

    public String namespace() {
        return NAMESPACE;
    }

    /** {@code http://127.0.0.1:<port>} of the cluster's etcd (loopback clusters only). */
    public String etcdEndpoint() {
        return etcd.endpoint();
    }

    /** Every etcd endpoint the cluster uses. */
    public List<String> etcdEndpoints() {
        return placement == null ? List.of(etcd.endpoint()) : placement.etcd().endpoints();
    }

    /** The loopback cluster's own etcd; null for a cluster on {@link Placement placed} hosts. */
    public EtcdProcess etcd() {
        return etcd;
    }

    public List<MemberInfo> members() {
        return List.copyOf(members.values());
    }

    public MemberInfo member(String name) {
        MemberInfo m = members.get(name);
        if (m == null) {
            throw new IllegalArgumentException("no member '" + name + "' in " + members.keySet());
        }
        return m;
    }

    /** PostgreSQL port of {@code name}. */
    public int memberPort(String name) {
        return member(name).pgPort();
    }

    /** The member holding the leader key per etcd, or null (no leader, or etcd down). */
    public String leaderName() {
        try {
            String key = NAMESPACE + scope + "/leader";
            return placement == null ? etcd.get(key) : placement.etcd().get(key);
        } catch (RuntimeException e) {
            return null;
        }
    }

    /** Names of members other than the current leader. */
    public List<String> replicaNames() {
        String leader = leaderName();
        return members.keySet().stream().filter(n -> !n.equals(leader)).toList();
    }

    /** {@code patronictl list -f json} output (roles and states as Patroni reports them). */
    public String patronictlList() {
        return patronictl("list", "-f", "json", scope).stdout();
    }

    // ------------------------------------------------------------------------------------------
    // Actions
    // ------------------------------------------------------------------------------------------

    /**
     * Planned switchover from the current leader to {@code candidateOrNull} (any healthy replica
     * when null); waits until another member holds the leader key and is a running primary.
     *
     * @return the new leader's name
     */
    public String switchover(String candidateOrNull) {
        String old = leaderName();
        if (old == null) {
            throw new IllegalStateException("no leader to switch over from");
        }
        List<String> args = new ArrayList<>(List.of("switchover", scope, "--leader", old));
        if (candidateOrNull != null) {
            args.add("--candidate");
            args.add(candidateOrNull);
        }
        args.add("--force");
        Proc.Result r = patronictl(args.toArray(new String[0]));
        if (!r.ok() || !r.stdout().contains("Successfully")) {
            throw new IllegalStateException(
                    "switchover "
                            + old
                            + " → "
                            + candidateOrNull
                            + " failed:\n"
                            + r.stdout()
                            + r.stderr()
                            + "\n"
                            + logTails());
        }
        return awaitCondition(
                "a new running leader after switchover from " + old,
                Duration.ofSeconds(60),
                () -> {
                    String now = leaderName();
                    boolean done =
                            now != null
                                    && !now.equals(old)
                                    && (candidateOrNull == null || candidateOrNull.equals(now))
                                    && httpStatus(member(now), "/primary") == 200;
                    return done ? now : null;
                });
    }

    /**
     * SIGKILLs the leader's Patroni and its PostgreSQL (the node "dies"; its leader key expires
     * after ttl). The node stays down until {@link #startMember}.
     *
     * @return the killed member's name
     */
    public String killLeader() {
        String leader = leaderName();
        if (leader == null) {
            throw new IllegalStateException("no leader to kill");
        }
        killNode(member(leader));
        return leader;
    }

    /**
     * Changes the cluster's dynamic configuration ({@code patronictl edit-config --set key=value},
     * e.g. {@code synchronous_mode=false}); Patroni applies it within a loop_wait.
     */
    public void setDynamic(String key, String value) {
        Proc.Result r = patronictl("edit-config", scope, "--force", "--set", key + "=" + value);
        if (!r.ok()) {
            throw new IllegalStateException(
                    "edit-config " + key + "=" + value + " failed:\n" + r.stdout() + r.stderr());
        }
    }

    /** SIGTERM to Patroni: it stops PostgreSQL (fast) and, if leader, releases the leader key. */
    public void stopMember(String name) {
        MemberInfo m = member(name);
        Process p = patroni.remove(name);
        if (p == null) {
            return;
        }
        Optional<ProcessHandle> patroniProcess = patroniHandle(p, m);
        if (patroniProcess.isPresent()) {
            patroniProcess.get().destroy();
        } else {
            p.destroy();
        }
        try {
            if (!p.waitFor(60, TimeUnit.SECONDS)) {
                throw new IllegalStateException(
                        "Patroni " + name + " did not stop within 60 s\n" + logTail(m));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        } finally {
            if (p.isAlive()) {
                killNode(m);
            }
        }
        // Patroni stops PostgreSQL before exiting; make sure no postmaster is left behind
        awaitCondition(
                "postmaster of " + name + " to exit",
                Duration.ofSeconds(30),
                () -> postmaster(m).isEmpty() ? Boolean.TRUE : null);
    }

    /** Starts (or restarts) Patroni for {@code name}; does not wait for PostgreSQL. */
    public void startMember(String name) {
        MemberInfo m = member(name);
        Process running = patroni.get(name);
        if (running != null && running.isAlive()) {
            return;
        }
        List<String> cmd =
                Proc.of("patroni", m.config().toString()).asPostgresOwner().commandLine();
        if (m.host() != null) {
            cmd = m.host().proc(cmd).commandLine();
        }
        ProcessBuilder pb =
                new ProcessBuilder(cmd)
                        .directory(m.dir().toFile())
                        .redirectErrorStream(true)
                        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                        .redirectOutput(
                                ProcessBuilder.Redirect.appendTo(
                                        m.dir().resolve("patroni.log").toFile()));
        Map<String, String> env = pb.environment();
        env.keySet().removeIf(k -> k.startsWith("PG") || k.startsWith("PATRONI"));
        env.put("LC_ALL", "C.UTF-8");
        try {
            patroni.put(name, pb.start());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start Patroni " + name, e);
        }
    }

    /** Stops the loopback cluster's etcd. */
    public void stopEtcd() {
        etcd.stop();
    }

    /** Starts the loopback cluster's etcd again. */
    public void startEtcd() {
        etcd.start();
    }

    /**
     * Waits until one member holds the leader key and answers {@code /primary}, the two others
     * answer {@code /replica}, and the leader sees two streaming replication connections.
     */
    public void awaitHealthy(Duration timeout) {
        awaitCondition(
                "leader + " + (NODES - 1) + " streaming replicas",
                timeout,
                () -> {
                    String leader = leaderName();
                    if (leader == null || httpStatus(member(leader), "/primary") != 200) {
                        return null;
                    }
                    for (MemberInfo m : members.values()) {
                        if (!m.name().equals(leader) && httpStatus(m, "/replica") != 200) {
                            return null;
                        }
                    }
                    String streaming =
                            psql(
                                    leader,
                                    PgServer.POSTGRES_DB,
                                    "select count(*) from pg_stat_replication where state = 'streaming'");
                    return Integer.parseInt(streaming.trim()) >= NODES - 1 ? Boolean.TRUE : null;
                });
    }

    /**
     * Runs SQL on {@code member} through its unix socket as the superuser; returns unaligned
     * output.
     */
    public String psql(String member, String db, String sql) {
        return psqlProc(member(member), db, Duration.ofSeconds(30))
                .stdin(sql)
                .check()
                .stdoutTrimmed();
    }

    /** psql as the superuser through {@code m}'s unix socket, unaligned, SQL from stdin. */
    private static Proc psqlProc(MemberInfo m, String db, Duration timeout) {
        return Proc.of(
                        PgServer.pgBinDir().resolve("psql").toString(),
                        "-X",
                        "-q",
                        "-A",
                        "-t",
                        "-v",
                        "ON_ERROR_STOP=1",
                        "-h",
                        m.socketDir().toString(),
                        "-p",
                        Integer.toString(m.pgPort()),
                        "-U",
                        PgServer.SUPERUSER,
                        "-d",
                        db,
                        "-f",
                        "-")
                .asPostgresOwner()
                .cleanPgEnv()
                .timeout(timeout);
    }

    /**
     * True if {@code member}'s PostgreSQL runs and is not in recovery (asked through its unix
     * socket, which no network fault blocks); false if it is stopped or a standby.
     */
    public boolean isWritablePrimary(String member) {
        Proc.Result r =
                psqlProc(member(member), PgServer.POSTGRES_DB, Duration.ofSeconds(10))
                        .stdin("select pg_is_in_recovery()")
                        .run();
        return r.ok() && r.stdout().trim().equals("f");
    }

    /** Tails of every node's patroni.log and postgresql.log, and etcd's log. */
    public String logTails() {
        StringBuilder sb = new StringBuilder();
        for (MemberInfo m : members.values()) {
            sb.append(logTail(m));
        }
        if (etcd != null) {
            sb.append("--- etcd.log ---\n").append(etcd.logTail(15)).append('\n');
        }
        if (placement != null) {
            sb.append(placement.etcd().logTails());
        }
        return sb.toString();
    }

    // ------------------------------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------------------------------

    private void writeConfig(MemberInfo m) {
        String yaml =
                "# written by io.pgrelay.testkit.PatroniCluster\n"
                        + "scope: "
                        + scope
                        + "\n"
                        + "namespace: "
                        + NAMESPACE
                        + "\n"
                        + "name: "
                        + m.name()
                        + "\n"
                        + "log:\n"
                        + "  level: INFO\n"
                        + "restapi:\n"
                        + "  listen: "
                        + m.address()
                        + ":"
                        + m.restPort()
                        + "\n"
                        + "  connect_address: "
                        + m.address()
                        + ":"
                        + m.restPort()
                        + "\n"
                        + "etcd3:\n"
                        + "  hosts: "
                        + (placement == null ? etcd.hostPort() : placement.etcd().hostPorts())
                        + "\n"
                        + "bootstrap:\n"
                        + "  dcs:\n"
                        + "    ttl: 20\n"
                        + "    loop_wait: 2\n"
                        + "    retry_timeout: 5\n"
                        + "    maximum_lag_on_failover: 1048576\n"
                        + "    failsafe_mode: true\n"
                        + (synchronousMode() ? "    synchronous_mode: true\n" : "")
                        + "    postgresql:\n"
                        + "      use_pg_rewind: true\n"
                        + "      parameters:\n"
                        + "        max_connections: 200\n"
                        + "        wal_level: replica\n"
                        + "        hot_standby: 'on'\n"
                        + "        max_wal_senders: 10\n"
                        + "        max_replication_slots: 10\n"
                        + "        wal_keep_size: 256MB\n"
                        + "        wal_log_hints: 'on'\n"
                        + "        password_encryption: scram-sha-256\n"
                        + "  initdb:\n"
                        + "  - encoding: UTF8\n"
                        + "  - locale: C\n"
                        + "  - data-checksums\n"
                        + "  pg_hba:\n"
                        + "  - local all all trust\n"
                        + "  - host replication "
                        + PgServer.REPLICATION_USER
                        + " "
                        + clientNetwork()
                        + " md5\n"
                        + "  - host all all "
                        + clientNetwork()
                        + " scram-sha-256\n"
                        + "postgresql:\n"
                        + "  listen: "
                        + m.address()
                        + ":"
                        + m.pgPort()
                        + "\n"
                        + "  connect_address: "
                        + m.address()
                        + ":"
                        + m.pgPort()
                        + "\n"
                        + "  data_dir: "
                        + m.dataDir()
                        + "\n"
                        + "  bin_dir: "
                        + PgServer.pgBinDir()
                        + "\n"
                        + "  pgpass: "
                        + m.dir().resolve("pgpass")
                        + "\n"
                        // the default spread checkpoint can hold a second concurrent basebackup for
                        // minutes
                        + "  basebackup:\n"
                        + "  - checkpoint: fast\n"
                        + "  authentication:\n"
                        + "    superuser: {username: "
                        + PgServer.SUPERUSER
                        + ", password: "
                        + PgServer.SUPERUSER_PASSWORD
                        + "}\n"
                        + "    replication: {username: "
                        + PgServer.REPLICATION_USER
                        + ", password: "
                        + PgServer.REPLICATION_PASSWORD
                        + "}\n"
                        + "  parameters:\n"
                        + "    unix_socket_directories: "
                        + m.socketDir()
                        + "\n"
                        // speed over durability: only processes die in these tests, never the
                        // machine
                        + "    fsync: 'off'\n"
                        + "    synchronous_commit: '"
                        + (synchronousMode() ? "on" : "off")
                        + "'\n"
                        + "    shared_buffers: 32MB\n"
                        + "    logging_collector: 'on'\n"
                        + "    log_directory: log\n"
                        + "    log_filename: postgresql.log\n"
                        + "    log_line_prefix: '%m [%p] %q%u@%d '\n"
                        + sslParameters(m);
        try {
            Files.writeString(m.config(), yaml, StandardCharsets.UTF_8);
            PgServer.chownToPostgres(m.config());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private boolean synchronousMode() {
        return placement != null && placement.synchronousMode();
    }

    /** Where clients (pgrelay, the other members) connect from: loopback, or the test network. */
    private String clientNetwork() {
        return placement == null ? "127.0.0.1/32" : "0.0.0.0/0";
    }

    /** The ssl lines of a member's postgresql.parameters, its files copied in; "" without TLS. */
    private String sslParameters(MemberInfo m) {
        if (pki == null) {
            return "";
        }
        TestPki.CertKey cert = pki.serverCert(TestPki.Kind.GOOD);
        try {
            PgServer.copyOwned(cert.cert(), m.dir().resolve("server.crt"), "rw-r--r--");
            PgServer.copyOwned(cert.key(), m.dir().resolve("server.key"), "rw-------");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return "    ssl: 'on'\n"
                + "    ssl_cert_file: "
                + m.dir().resolve("server.crt")
                + "\n"
                + "    ssl_key_file: "
                + m.dir().resolve("server.key")
                + "\n";
    }

    private void createRoles(String leader) {
        psql(
                leader,
                PgServer.POSTGRES_DB,
                "SET password_encryption = 'scram-sha-256';\n"
                        + "ALTER ROLE "
                        + PgServer.SUPERUSER
                        + " PASSWORD '"
                        + PgServer.SUPERUSER_PASSWORD
                        + "';\n"
                        + "CREATE ROLE "
                        + PgServer.APP_USER
                        + " LOGIN PASSWORD '"
                        + PgServer.APP_PASSWORD
                        + "';\n"
                        + "CREATE DATABASE "
                        + PgServer.APP_DB
                        + " OWNER "
                        + PgServer.APP_USER
                        + ";\n");
    }

    private String awaitLeaderRunning(Duration timeout) {
        return awaitCondition(
                "a bootstrapped leader",
                timeout,
                () -> {
                    String leader = leaderName();
                    return leader != null && httpStatus(member(leader), "/primary") == 200
                            ? leader
                            : null;
                });
    }

    private void awaitAppDbEverywhere(Duration timeout) {
        for (MemberInfo m : members.values()) {
            awaitCondition(
                    PgServer.APP_DB + " replicated to " + m.name(),
                    timeout,
                    () ->
                            "1"
                                            .equals(
                                                    psql(
                                                            m.name(),
                                                            PgServer.POSTGRES_DB,
                                                            "select 1 from pg_database where datname = '"
                                                                    + PgServer.APP_DB
                                                                    + "'"))
                                    ? Boolean.TRUE
                                    : null);
        }
    }

    /** Polls until {@code probe} returns non-null; failures carry the node log tails. */
    private <T> T awaitCondition(
            String what, Duration timeout, java.util.concurrent.Callable<T> probe) {
        try {
            return Await.until(what, timeout, probe, v -> v != null);
        } catch (AssertionError e) {
            AssertionError withLogs =
                    new AssertionError(e.getMessage() + "\n" + logTails(), e.getCause());
            throw withLogs;
        }
    }

    private Proc.Result patronictl(String... args) {
        List<String> cmd = new ArrayList<>(List.of("patronictl", "-c", anyConfig().toString()));
        cmd.addAll(List.of(args));
        return Proc.of(cmd)
                .asPostgresOwner()
                .cleanPgEnv()
                .env("LC_ALL", "C.UTF-8")
                .timeout(Duration.ofSeconds(90))
                .run();
    }

    private Path anyConfig() {
        for (MemberInfo m : members.values()) {
            Process p = patroni.get(m.name());
            if (p != null && p.isAlive()) {
                return m.config();
            }
        }
        return members.values().iterator().next().config();
    }

    /** HTTP status of Patroni's REST endpoint, or -1 when it does not answer. */
    private static int httpStatus(MemberInfo m, String path) {
        try {
            HttpURLConnection c =
                    (HttpURLConnection)
                            URI.create("http://" + m.address() + ":" + m.restPort() + path)
                                    .toURL()
                                    .openConnection();
            c.setConnectTimeout(1000);
            c.setReadTimeout(2000);
            try {
                return c.getResponseCode();
            } finally {
                c.disconnect();
            }
        } catch (IOException e) {
            return -1;
        }
    }

    /** SIGKILL to the node's Patroni tree and its postmaster tree. */
    private void killNode(MemberInfo m) {
        Process p = patroni.remove(m.name());
        if (p != null) {
            Proc.killTree(p.toHandle());
            try {
                p.waitFor(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        postmaster(m)
                .ifPresent(
                        pm -> {
                            Proc.killTree(pm);
                            try {
                                pm.onExit().get(10, TimeUnit.SECONDS);
                            } catch (Exception ignored) {
                                // checked by callers that care
                            }
                        });
    }

    /** The live postmaster of {@code m}, from {@code postmaster.pid}. */
    private static Optional<ProcessHandle> postmaster(MemberInfo m) {
        return postmasterOf(m.dataDir());
    }

    private static Optional<ProcessHandle> postmasterOf(Path dataDir) {
        try {
            String first =
                    Files.readAllLines(dataDir.resolve("postmaster.pid"), StandardCharsets.UTF_8)
                            .get(0)
                            .trim();
            Optional<ProcessHandle> h =
                    ProcessHandle.of(Long.parseLong(first)).filter(ProcessHandle::isAlive);
            // a stale pid file can name an unrelated process that reused the pid
            return h.filter(
                    ph -> ph.info().commandLine().map(c -> c.contains("postgres")).orElse(true));
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    /**
     * The python process under {@code runuser} (signals to runuser itself are not always relayed).
     * Matched on the config path: the postmaster's command line also contains "patroni", through
     * the data dir.
     */
    private static Optional<ProcessHandle> patroniHandle(Process runner, MemberInfo m) {
        String config = m.config().toString();
        return runner.toHandle()
                .descendants()
                .filter(ph -> ph.info().commandLine().map(c -> c.contains(config)).orElse(false))
                .findFirst();
    }

    private String logTail(MemberInfo m) {
        StringBuilder sb = new StringBuilder();
        sb.append("--- ")
                .append(m.name())
                .append(" patroni.log ---\n")
                .append(tailOf(m.dir().resolve("patroni.log"), 25))
                .append('\n');
        sb.append("--- ")
                .append(m.name())
                .append(" postgresql.log ---\n")
                .append(tailOf(m.dataDir().resolve("log").resolve("postgresql.log"), 10))
                .append('\n');
        return sb.toString();
    }

    private static String tailOf(Path file, int lines) {
        try {
            return Proc.tail(Files.readString(file, StandardCharsets.UTF_8).stripTrailing(), lines);
        } catch (IOException e) {
            return "(none)";
        }
    }

    // ------------------------------------------------------------------------------------------
    // Process and directory hygiene
    // ------------------------------------------------------------------------------------------

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
                                        for (PatroniCluster c : List.copyOf(LIVE)) {
                                            try {
                                                c.close();
                                            } catch (RuntimeException ignored) {
                                                // best effort at exit
                                            }
                                        }
                                    },
                                    "pgrelay-testkit-patroni-cleanup"));
            reapOrphans();
        }
    }

    /** Clusters left by test JVMs that died without running hooks: kill what runs there, delete. */
    private static void reapOrphans() {
        try (Stream<Path> dirs = Files.list(tempRoot())) {
            for (Path dir :
                    dirs.filter(p -> p.getFileName().toString().startsWith(DIR_PREFIX)).toList()) {
                long owner;
                try {
                    owner =
                            Long.parseLong(
                                    Files.readString(
                                                    dir.resolve(OWNER_FILE), StandardCharsets.UTF_8)
                                            .trim());
                } catch (IOException | NumberFormatException e) {
                    continue;
                }
                if (ProcessHandle.of(owner).filter(ProcessHandle::isAlive).isPresent()) {
                    continue;
                }
                // Patroni first, or it restarts the postmaster we are about to kill
                killProcessesNaming(dir);
                try (Stream<Path> nodes = Files.list(dir)) {
                    nodes.forEach(
                            node -> postmasterOf(node.resolve("data")).ifPresent(Proc::killTree));
                }
                deleteRecursively(dir);
            }
        } catch (IOException | RuntimeException ignored) {
            // best effort
        }
    }

    /** SIGKILLs every process whose command line mentions {@code dir} (Patroni, etcd). */
    private static void killProcessesNaming(Path dir) {
        String needle = dir.toString() + "/";
        long self = ProcessHandle.current().pid();
        ProcessHandle.allProcesses()
                .filter(ph -> ph.pid() != self)
                .filter(ph -> ph.info().commandLine().map(c -> c.contains(needle)).orElse(false))
                .forEach(Proc::killTree);
    }

    private static Path tempRoot() {
        return PgServer.tempRoot();
    }

    private static Path newBaseDir() {
        return PgServer.newOwnedTempDir(DIR_PREFIX);
    }

    private static void createDirOwned(Path dir) {
        PgServer.createDirOwned(dir);
    }

    private static void deleteRecursively(Path root) {
        if (root != null && Files.exists(root)) {
            Proc.of("rm", "-rf", root.toString()).timeout(Duration.ofSeconds(60)).run();
        }
    }
}
