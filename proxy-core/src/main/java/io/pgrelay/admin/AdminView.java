package io.pgrelay.admin;

import java.time.Instant;
import java.util.List;

/**
 * What the admin console shows: one method per SHOW command, each returning an immutable snapshot
 * with exactly the data that command prints. The console calls these on the client's event loop
 * while it writes the reply, so they should be cheap (read counters, copy a list) and safe to call
 * from any event loop.
 *
 * <p>Column names, types and order are the console's business ({@link ShowTables}); the view
 * supplies values. Nullable components are printed as SQL NULL, as PgBouncer does.
 */
public interface AdminView {

    /** SHOW POOLS: one row per (database, user) pool. */
    List<PoolRow> pools();

    /** SHOW STATS, STATS_TOTALS and STATS_AVERAGES: one row per database. */
    List<StatsRow> stats();

    /** SHOW CLIENTS. */
    List<ConnectionRow> clients();

    /** SHOW SERVERS. */
    List<ConnectionRow> servers();

    /** SHOW DATABASES. */
    List<DatabaseRow> databases();

    /** SHOW USERS. */
    List<UserRow> users();

    /** SHOW LISTS. */
    Lists lists();

    /** SHOW CONFIG: every setting, in a stable order. */
    List<ConfigRow> config();

    /** SHOW STATE. */
    State state();

    /** SHOW VERSION; see {@link #versionString}. */
    String version();

    /** SHOW TOPOLOGY: the members the router knows, one row each. */
    List<TopologyRow> topology();

    /** SHOW PEERS: the pgrelay instances cancel requests are forwarded to, this one included. */
    List<PeerRow> peers();

    /** SHOW PREPARED_STATEMENTS: the shared prepared-statement cache. */
    default List<PreparedStatementRow> preparedStatements() {
        return List.of();
    }

    /**
     * The SHOW VERSION text: {@code PgBouncer 1.25.0 (pgrelay <version>)}. Monitoring tools
     * (Datadog's check, pgmetrics) pick their column sets from the first {@code x.y.z} after
     * "PgBouncer", and pgrelay serves the 1.25 columns; people reading it still see pgrelay.
     */
    static String versionString(String pgrelayVersion) {
        return "PgBouncer 1.25.0 (pgrelay " + pgrelayVersion + ")";
    }

    /**
     * Pause state of the whole proxy (PAUSE without a database; per-database pauses show in
     * DATABASES).
     */
    enum State {
        ACTIVE,
        PAUSED,
        SUSPENDED
    }

    /**
     * A pool's connection counts. {@code maxWaitMicros} is how long the oldest waiting client has
     * waited (printed as maxwait seconds + maxwait_us remainder). {@code poolMode} is
     * session|transaction|statement; {@code loadBalanceHosts} may be null. {@code role}
     * (primary|replica) and {@code backend} (host:port now serving the pool, null if none) are
     * pgrelay's extra columns at the end.
     */
    record PoolRow(
            String database,
            String user,
            int clActive,
            int clWaiting,
            int clActiveCancelReq,
            int clWaitingCancelReq,
            int svActive,
            int svActiveCancel,
            int svBeingCanceled,
            int svIdle,
            int svUsed,
            int svTested,
            int svLogin,
            long maxWaitMicros,
            String poolMode,
            String loadBalanceHosts,
            String role,
            String backend,
            /** Server connections pinned to a client (transaction mode keeping session state). */
            int svPinned) {}

    /**
     * One database's statistics: the running totals and the averages over the last stats period,
     * computed as PgBouncer does (see {@link StatCounters}).
     */
    record StatsRow(String database, StatCounters total, StatCounters average) {}

    /**
     * The statistics PgBouncer keeps per database. As totals: counts, bytes and microseconds since
     * start. As averages over the last stats period: counts and bytes are per second; {@code
     * xactTime}, {@code queryTime} and {@code waitTime} are microseconds per transaction, per query
     * and per server assignment.
     */
    record StatCounters(
            long serverAssignmentCount,
            long xactCount,
            long queryCount,
            long bytesReceived,
            long bytesSent,
            long xactTime,
            long queryTime,
            long waitTime,
            long clientParseCount,
            long serverParseCount,
            long bindCount,
            long clientLoginCount) {

        public static final StatCounters ZERO =
                new StatCounters(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    }

    /**
     * A client (SHOW CLIENTS) or server connection (SHOW SERVERS). {@code replication} is
     * none|logical|physical; {@code state} as PgBouncer names them (clients: active, idle, waiting,
     * ...; servers: active, idle, used, tested, new, ...). {@code waitMicros} is how long a waiting
     * client has waited. {@code ptr}/{@code link} identify this connection and its partner (null
     * when unpaired); {@code tls} is empty without TLS. Times may be null.
     */
    record ConnectionRow(
            String user,
            String database,
            String replication,
            String state,
            String addr,
            int port,
            String localAddr,
            int localPort,
            Instant connectTime,
            Instant requestTime,
            long waitMicros,
            boolean closeNeeded,
            String ptr,
            String link,
            int remotePid,
            String tls,
            String applicationName,
            int preparedStatements,
            long id,
            /** Why the client keeps its server connection ("temp,listen"); empty when not. */
            String pinned) {}

    /**
     * A configured database. {@code forceUser}, {@code poolMode} (when not overridden) and {@code
     * loadBalanceHosts} may be null. {@code serverLifetime} is in seconds.
     */
    record DatabaseRow(
            String name,
            String host,
            int port,
            String database,
            String forceUser,
            int poolSize,
            int minPoolSize,
            int reservePoolSize,
            int serverLifetime,
            String poolMode,
            String loadBalanceHosts,
            int maxConnections,
            int currentConnections,
            int maxClientConnections,
            int currentClientConnections,
            boolean paused,
            boolean disabled) {}

    /** A user with its overrides (null when not overridden) and connection counts. */
    record UserRow(
            String name,
            Integer poolSize,
            Integer reservePoolSize,
            String poolMode,
            int maxUserConnections,
            int currentConnections,
            int maxUserClientConnections,
            int currentClientConnections) {}

    /** The SHOW LISTS counts pgrelay has (peers and DNS cache rows print 0). */
    record Lists(
            int databases,
            int users,
            int pools,
            int freeClients,
            int usedClients,
            int loginClients,
            int freeServers,
            int usedServers) {}

    /**
     * A pgrelay instance: {@code source} static (peers.static_peers) or etcd, {@code self} for this
     * instance, {@code cancelsForwarded} the CancelRequests this instance sent on to it.
     */
    record PeerRow(
            int peerId,
            String host,
            int port,
            String instanceId,
            String source,
            boolean self,
            long cancelsForwarded) {}

    /** One setting: current and default value as written in the config file. */
    record ConfigRow(String key, String value, String defaultValue, boolean changeable) {}

    /**
     * A cluster member as the router sees it. {@code role} primary|replica|..., {@code state} as
     * the topology source reports it (e.g. running), {@code lagBytes} null when unknown, {@code
     * source} the topology source (etcd, static), {@code lastChange} when this member last changed
     * role, state or eligibility (null if never).
     */
    record TopologyRow(
            String member,
            String host,
            int port,
            String role,
            String state,
            Long lagBytes,
            boolean readEligible,
            boolean leader,
            String source,
            boolean sourceConnected,
            Instant lastChange) {}

    /**
     * An entry of the shared prepared-statement cache: the server-side name, the query text, its
     * parameter types (comma-separated OIDs), how many client statements map to it and on how many
     * server connections it is prepared.
     */
    record PreparedStatementRow(
            String name, String query, String parameterTypes, int clientRefs, int servers) {}
}
