package io.pgrelay.config;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigParseOptions;
import io.pgrelay.pool.PoolSettings;
import io.pgrelay.routing.Backend;
import java.io.File;
import java.math.BigDecimal;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * The settings pgrelay runs with, read once from HOCON and checked before anything starts. Layers,
 * strongest first: JVM system properties ({@code -Dpgrelay.x=...}), environment variables with
 * readable names ({@code PGRELAY_POOL_DEFAULT_POOL_SIZE}, see {@link EnvOverrides}), Typesafe
 * Config's environment overrides ({@code CONFIG_FORCE_pgrelay_...}), the given file, then the
 * defaults in the bundled copy of {@code conf/pgrelay.conf}. A bad value fails with {@link
 * ConfigException}, whose message names the setting.
 */
public record ProxyConfig(
        String listenHost,
        int writePort,
        int readPort,
        String routingSource,
        List<String> etcdEndpoints,
        String patroniNamespace,
        String patroniScope,
        Duration etcdRequestTimeout,
        long maxReplicaLagBytes,
        boolean readFallbackToPrimary,
        Duration leaderWaitTimeout,
        Backend primary,
        List<Backend> replicas,
        AuthType authType,
        Path authFile,
        /** Clients connecting to pgrelay (client_tls_*). */
        TlsSettings clientTls,
        /** pgrelay connecting to PostgreSQL (server_tls_*). */
        TlsSettings serverTls,
        /** auth_user, auth_query, auth_dbname, auth_query_cache_time. */
        AuthQuerySettings authQuery,
        /** The instance id and the cancel forwarding between instances. */
        PeerSettings peers,
        PoolMode poolMode,
        int maxClientConn,
        PoolSettings poolSettings,
        /** PgBouncer's autodb_idle_timeout: pools unused this long are removed; ZERO = never. */
        Duration autodbIdleTimeout,
        /**
         * How old the server login a new client is greeted from may be, counted back from the
         * client's connect; ZERO = a login that started after the client connected.
         */
        Duration welcomeMaxAge,
        Duration serverConnectTimeout,
        Duration clientIdleTimeout,
        Duration idleTransactionTimeout,
        Duration clientLoginTimeout,
        String serverResetQuery,
        Set<String> ignoreStartupParameters,
        int maxPreparedStatements,
        /** Transaction mode: replay each client's settings, pin what cannot be replayed. */
        boolean trackSessionState,
        /** Pinned server connections a pool may have; 0 = as many as the pool has. */
        int maxPinnedConnections,
        int maxMessageSize,
        Limits limits,
        /** PgBouncer's tcp_keepalive, tcp_keepidle, ...: client and server sockets. */
        TcpSettings tcp,
        int workerThreads,
        Duration shutdownTimeout,
        boolean useEpoll,
        boolean useIoUring,
        Set<String> adminUsers,
        Set<String> statsUsers,
        String httpHost,
        int httpPort,
        boolean metricsHistograms,
        /**
         * Pools that get per-pool meters (/metrics series labelled by database and user); later
         * pools get none.
         */
        int maxPoolMetrics,
        /** The effective settings, for SHOW CONFIG: "pool.default_pool_size" → "20". */
        SortedMap<String, String> settings) {

    public enum PoolMode {
        SESSION,
        TRANSACTION
    }

    public enum AuthType {
        SCRAM_SHA_256,
        MD5,
        PLAIN,
        TRUST
    }

    /** Loads {@code file} (may be null: defaults only) with system property and env overrides. */
    public static ProxyConfig load(File file) {
        return load(file, System.getenv());
    }

    /** {@link #load(File)} with {@code env} in place of the process's PGRELAY_ variables. */
    static ProxyConfig load(File file, Map<String, String> env) {
        Config defaults = defaults();
        Config fromFile =
                file == null
                        ? ConfigFactory.empty()
                        : ConfigFactory.parseFile(
                                file, ConfigParseOptions.defaults().setAllowMissing(false));
        EnvOverrides fromEnv = EnvOverrides.from(env, defaults);
        Config systemProperties = ConfigFactory.systemProperties();
        Config config =
                systemProperties
                        .withFallback(fromEnv.config())
                        .withFallback(ConfigFactory.systemEnvironmentOverrides())
                        .withFallback(fromFile)
                        .withFallback(defaults)
                        .resolve();
        try {
            config.checkValid(defaults, "pgrelay");
            return from(config.getConfig("pgrelay"));
        } catch (ConfigException e) {
            throw fromEnv.blame(e, systemProperties);
        }
    }

    /** The bundled copy of conf/pgrelay.conf: every setting with its default. */
    public static Config defaults() {
        return ConfigFactory.parseResources(
                ProxyConfig.class.getClassLoader(),
                "pgrelay.conf",
                ConfigParseOptions.defaults().setAllowMissing(false));
    }

    public static ProxyConfig from(Config c) {
        String routingSource = c.getString("routing.source");
        if (!routingSource.equals("static") && !routingSource.equals("patroni")) {
            throw new ConfigException.BadValue(
                    c.origin(),
                    "pgrelay.routing.source",
                    "'" + routingSource + "' (expected: static or patroni)");
        }
        long maxLag = c.getLong("routing.patroni.max_replica_lag_bytes");
        if (maxLag < -1) {
            throw new ConfigException.BadValue(
                    "pgrelay.routing.patroni.max_replica_lag_bytes",
                    maxLag + " (expected: -1 or >= 0)");
        }
        List<String> endpoints = c.getStringList("routing.patroni.etcd_endpoints");
        if (routingSource.equals("patroni") && endpoints.isEmpty()) {
            throw new ConfigException.BadValue(
                    "pgrelay.routing.patroni.etcd_endpoints", "empty (expected: at least one)");
        }
        PoolSettings poolSettings =
                new PoolSettings(
                        positive(c, "pool.default_pool_size"),
                        nonNegative(c, "pool.min_pool_size"),
                        nonNegative(c, "pool.reserve_pool_size"),
                        duration(c, "pool.reserve_pool_timeout"),
                        duration(c, "pool.query_wait_timeout"),
                        duration(c, "pool.server_idle_timeout"),
                        duration(c, "pool.server_lifetime"));
        int writePort = port(c, "listen.write_port");
        int readPort = port(c, "listen.read_port");
        if (writePort != 0 && writePort == readPort) {
            throw new ConfigException.BadValue(
                    "pgrelay.listen.read_port",
                    "must differ from listen.write_port (both " + writePort + ")");
        }
        long maxMessage = c.getBytes("protocol.max_message_size");
        if (maxMessage < 1024 || maxMessage > Integer.MAX_VALUE) {
            throw new ConfigException.BadValue(
                    "pgrelay.protocol.max_message_size",
                    maxMessage + " (expected: 1024.." + Integer.MAX_VALUE + ")");
        }
        Limits limits =
                new Limits(
                        positive(c, "limits.max_client_prepared_statements"),
                        positiveBytes(c, "limits.max_client_prepared_statement_bytes"),
                        positiveBytes(c, "limits.prepared_statement_cache_size"),
                        positiveBytes(c, "limits.max_buffered_message_bytes"),
                        positive(c, "limits.max_login_clients"));
        if (limits.maxBufferedMessageBytes() < maxMessage) {
            throw new ConfigException.BadValue(
                    "pgrelay.limits.max_buffered_message_bytes",
                    limits.maxBufferedMessageBytes()
                            + " (expected: >= protocol.max_message_size, "
                            + maxMessage
                            + ")");
        }
        Set<String> ignored = new TreeSet<>(String.CASE_INSENSITIVE_ORDER);
        ignored.addAll(c.getStringList("pool.ignore_startup_parameters"));
        PeerSettings peers = PeerSettings.from(c);
        return new ProxyConfig(
                c.getString("listen.host"),
                writePort,
                readPort,
                routingSource,
                List.copyOf(endpoints),
                c.getString("routing.patroni.namespace"),
                c.getString("routing.patroni.scope"),
                positiveDuration(c, "routing.patroni.etcd_request_timeout"),
                maxLag,
                c.getBoolean("routing.patroni.read_fallback_to_primary"),
                duration(c, "routing.patroni.leader_wait_timeout"),
                backend(c, "backends.primary"),
                c.getStringList("backends.replicas").stream()
                        .map(s -> parseBackend("backends.replicas", s))
                        .toList(),
                enumValue(c, "auth.auth_type", AuthType.class),
                Path.of(c.getString("auth.auth_file")),
                TlsSettings.from(c, "client"),
                TlsSettings.from(c, "server"),
                authQuery(c),
                peers,
                enumValue(c, "pool.pool_mode", PoolMode.class),
                positive(c, "pool.max_client_conn"),
                poolSettings,
                duration(c, "pool.autodb_idle_timeout"),
                duration(c, "pool.welcome_max_age"),
                positiveDuration(c, "pool.server_connect_timeout"),
                duration(c, "pool.client_idle_timeout"),
                duration(c, "pool.idle_transaction_timeout"),
                duration(c, "pool.client_login_timeout"),
                c.getString("pool.server_reset_query"),
                ignored,
                nonNegative(c, "pool.max_prepared_statements"),
                c.getBoolean("pool.track_session_state"),
                nonNegative(c, "pool.max_pinned_connections"),
                (int) maxMessage,
                limits,
                TcpSettings.from(c),
                nonNegative(c, "runtime.worker_threads"),
                duration(c, "runtime.shutdown_timeout"),
                c.getBoolean("runtime.use_epoll"),
                c.getBoolean("runtime.use_io_uring"),
                Set.copyOf(c.getStringList("admin.admin_users")),
                Set.copyOf(c.getStringList("admin.stats_users")),
                c.getString("admin.http_host"),
                port(c, "admin.http_port"),
                c.getBoolean("admin.metrics_histograms"),
                nonNegative(c, "admin.max_pool_metrics"),
                flatten(c, peers));
    }

    private static AuthQuerySettings authQuery(Config c) {
        AuthQuerySettings s =
                new AuthQuerySettings(
                        c.getString("auth.auth_user"),
                        c.getString("auth.auth_query"),
                        c.getString("auth.auth_dbname"),
                        duration(c, "auth.auth_query_cache_time"));
        if (s.enabled() && s.query().isBlank()) {
            throw new ConfigException.BadValue(
                    "pgrelay.auth.auth_query",
                    "empty (expected: a query returning usename, passwd for $1, as auth_user is set)");
        }
        return s;
    }

    private static SortedMap<String, String> flatten(Config c, PeerSettings peers) {
        SortedMap<String, String> out = new TreeMap<>();
        for (var e : c.entrySet()) {
            Object v = e.getValue().unwrapped();
            out.put(
                    e.getKey(),
                    v instanceof List<?> l
                            ? String.join(",", l.stream().map(String::valueOf).toList())
                            : String.valueOf(v));
        }
        // What an empty setting resolved to: the name the console and the status page show.
        out.put("runtime.instance_id", peers.instanceId());
        out.put("peers.advertise_host", peers.advertiseHost());
        return Collections.unmodifiableSortedMap(out);
    }

    private static Backend backend(Config c, String path) {
        return parseBackend(path, c.getString(path));
    }

    private static Backend parseBackend(String path, String value) {
        try {
            return Backend.parse(value);
        } catch (IllegalArgumentException e) {
            throw new ConfigException.BadValue("pgrelay." + path, e.getMessage());
        }
    }

    static <E extends Enum<E>> E enumValue(Config c, String path, Class<E> type) {
        String raw = c.getString(path);
        try {
            return Enum.valueOf(type, raw.trim().toUpperCase(Locale.ROOT).replace('-', '_'));
        } catch (IllegalArgumentException e) {
            StringBuilder allowed = new StringBuilder();
            for (E v : type.getEnumConstants()) {
                allowed.append(allowed.length() == 0 ? "" : ", ")
                        .append(v.name().toLowerCase(Locale.ROOT).replace('_', '-'));
            }
            throw new ConfigException.BadValue(
                    "pgrelay." + path, "'" + raw + "' (expected one of: " + allowed + ")");
        }
    }

    private static int port(Config c, String path) {
        int p = c.getInt(path);
        if (p < 0 || p > 65535) {
            throw new ConfigException.BadValue("pgrelay." + path, p + " (expected: 0..65535)");
        }
        return p;
    }

    private static int positive(Config c, String path) {
        int v = c.getInt(path);
        if (v < 1) {
            throw new ConfigException.BadValue("pgrelay." + path, v + " (expected: >= 1)");
        }
        return v;
    }

    private static int nonNegative(Config c, String path) {
        int v = c.getInt(path);
        if (v < 0) {
            throw new ConfigException.BadValue("pgrelay." + path, v + " (expected: >= 0)");
        }
        return v;
    }

    private static long positiveBytes(Config c, String path) {
        long v = c.getBytes(path);
        if (v < 1) {
            throw new ConfigException.BadValue("pgrelay." + path, v + " (expected: >= 1)");
        }
        return v;
    }

    /** A number without a unit: seconds, as in PgBouncer ("client_idle_timeout = 4"). */
    private static final Pattern SECONDS = Pattern.compile("\\d+(\\.\\d+)?");

    /**
     * A duration with a unit ("500ms", "5s", "10m"), or a bare number of seconds, in the file and
     * on the console alike: HOCON alone would read a bare number as milliseconds, which would turn
     * a PgBouncer user's {@code client_idle_timeout = 4} into four milliseconds.
     */
    private static Duration duration(Config c, String path) {
        String raw = String.valueOf(c.getValue(path).unwrapped()).trim();
        Duration d =
                SECONDS.matcher(raw).matches()
                        ? Duration.ofNanos(new BigDecimal(raw).movePointRight(9).longValueExact())
                        : c.getDuration(path);
        if (d.isNegative()) {
            throw new ConfigException.BadValue("pgrelay." + path, d + " (expected: >= 0)");
        }
        return d;
    }

    private static Duration positiveDuration(Config c, String path) {
        Duration d = duration(c, path);
        if (d.isZero()) {
            throw new ConfigException.BadValue("pgrelay." + path, "0 (expected: > 0)");
        }
        return d;
    }
}
