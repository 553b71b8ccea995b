package io.pgrelay.proxy;

import io.pgrelay.config.ProxyConfig;
import io.pgrelay.routing.Backend;
import io.pgrelay.routing.PatroniRouter;
import io.pgrelay.routing.Router;
import io.pgrelay.session.PreparedStatements;
import io.pgrelay.tls.TlsContexts;

/**
 * What a client session and its server connections use of the running proxy: the shared parts
 * (pools, router, credentials, statement cache, metrics), the client slots, the PAUSE/DISABLE
 * gates, and where routing news goes.
 */
interface SessionServices {

    /**
     * The configuration in force now. A RELOAD or SET replaces it, so read it where a setting is
     * used, not once per session, or connected clients keep the old values.
     */
    ProxyConfig config();

    ProxyMetrics metrics();

    AdminConsole console();

    long nextClientId();

    Transport transport();

    Credentials credentials();

    /** TLS towards clients and servers as configured now (a RELOAD may replace them). */
    TlsContexts tls();

    /** Secrets of users missing from auth_file (auth_query). */
    AuthQuery authQuery();

    Router router();

    /** The router when following Patroni, else null. */
    PatroniRouter patroni();

    ServerPools pools();

    PreparedStatements preparedStatements();

    CancelKeys cancelKeys();

    boolean isShuttingDown();

    /**
     * A new connection, counted as logging in; false when the login slots are full
     * (limits.max_login_clients). It is counted until it goes.
     */
    boolean clientConnected(ClientSession session);

    /**
     * The client has logged in: it moves to a client slot; false when max_client_conn are taken.
     */
    boolean clientLoggedIn(ClientSession session);

    /** The connection went away; {@code loggedIn} says which slot it held. */
    void clientDisconnected(ClientSession session, boolean loggedIn);

    /** Sends a CancelRequest to a server on a connection of its own, as libpq does. */
    void sendCancel(Backend backend, int processId, int secretKey);

    /**
     * Why a client of {@code database} must wait before it may get a server connection (PAUSE), or
     * null.
     */
    String holdReason(String database);

    /** DISABLE: new clients of the database are refused. */
    boolean isDisabled(String database);

    /**
     * The session waits for a PAUSE to end or for a writable primary: it is asked to retry when
     * either may have happened.
     */
    void hold(ClientSession session);

    void unhold(ClientSession session);

    /**
     * Why writes have nowhere to go right now (Patroni routing), for the error a held client
     * finally gets.
     */
    String noPrimaryReason();

    /**
     * Connecting to {@code backend} failed: if it was the confirmed leader, writes wait for a new
     * confirmation.
     */
    void reportUnavailable(Backend backend);

    /** A server connection reported in_hot_standby (at login, or when it changed: promotion). */
    void reportHotStandby(Backend backend, String value);

    /** {@code backend}, the etcd leader, answered that it is still in recovery: ask again soon. */
    void leaderStillInRecovery(Backend backend);
}
