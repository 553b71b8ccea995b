package io.pgrelay.proxy;

import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelInitializer;
import io.pgrelay.auth.UserList;
import io.pgrelay.config.ProxyConfig;
import io.pgrelay.protocol.MessageMemory;
import io.pgrelay.protocol.StartupMessage;
import io.pgrelay.routing.Backend;
import io.pgrelay.routing.PatroniRouter;
import io.pgrelay.routing.Router;
import io.pgrelay.session.PreparedStatements;
import io.pgrelay.tls.TlsContexts;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The parts of a running proxy that sessions, the console and the HTTP pages share, and the
 * configuration in force (replaced as a whole by a RELOAD or SET).
 */
final class RelayServices implements SessionServices {

    private static final Logger log = LoggerFactory.getLogger(RelayServices.class);

    private volatile ProxyConfig config;
    private volatile Transport transport;
    private volatile boolean shuttingDown;
    private final Credentials credentials;

    /** Replaced whole by a RELOAD that could read every file. */
    private volatile TlsContexts tls;

    private final AuthQuery authQuery;
    private final PreparedStatements preparedStatements;
    private final MessageMemory messageMemory;
    private final Peers peers = new Peers(this);
    private final CancelKeys cancelKeys = new CancelKeys(peers);
    private final ClientRegistry clients = new ClientRegistry();
    private final HeldClients held = new HeldClients();
    private final ServerPools pools = new ServerPools(this);
    private final ProxyMetrics metrics;
    private final RoutingState routing;
    private final ConfigReloader reloader;
    private final AdminActions actions;
    private final AdminConsole console;
    private final ProxyStatus status = new ProxyStatus(this);

    /**
     * {@code configFile} is where RELOAD reads the configuration again (null: nowhere); {@code
     * stop} is what SHUTDOWN on the console does.
     */
    RelayServices(ProxyConfig config, File configFile, AdminActions.Stop stop) {
        this.config = config;
        this.preparedStatements =
                new PreparedStatements(config.limits().preparedStatementCacheBytes());
        this.messageMemory = new MessageMemory(config.limits().maxBufferedMessageBytes());
        this.credentials = new Credentials(loadUsers(config));
        this.tls = TlsContexts.build(config.clientTls(), config.serverTls());
        this.authQuery = new AuthQuery(this, config.authQuery());
        this.metrics = new ProxyMetrics(this);
        this.routing =
                new RoutingState(
                        config,
                        metrics,
                        pools,
                        held,
                        () -> transport == null ? null : transport.group());
        metrics.registerTopology(this);
        this.reloader = new ConfigReloader(this, configFile);
        this.actions = new AdminActions(this, reloader, stop);
        this.console = new AdminConsole(this, actions);
    }

    private static UserList loadUsers(ProxyConfig config) {
        try {
            return UserList.load(config.authFile());
        } catch (IOException e) {
            throw new UncheckedIOException(
                    "pgrelay.auth.auth_file: cannot read "
                            + config.authFile().toAbsolutePath()
                            + ": "
                            + e.getMessage(),
                    e);
        }
    }

    @Override
    public ProxyConfig config() {
        return config;
    }

    @Override
    public TlsContexts tls() {
        return tls;
    }

    /** The TLS contexts a RELOAD built; new connections use them, connected ones keep theirs. */
    void replaceTls(TlsContexts next) {
        tls = next;
    }

    /** The configuration a RELOAD or SET accepted; every later read of {@link #config} sees it. */
    void replaceConfig(ProxyConfig next) {
        config = next;
    }

    @Override
    public Transport transport() {
        return transport;
    }

    void useTransport(Transport transport) {
        this.transport = transport;
    }

    @Override
    public boolean isShuttingDown() {
        return shuttingDown;
    }

    void beginShutdown() {
        shuttingDown = true;
    }

    @Override
    public ProxyMetrics metrics() {
        return metrics;
    }

    @Override
    public AdminConsole console() {
        return console;
    }

    AdminActions actions() {
        return actions;
    }

    ConfigReloader reloader() {
        return reloader;
    }

    ProxyStatus status() {
        return status;
    }

    HeldClients held() {
        return held;
    }

    ClientRegistry clients() {
        return clients;
    }

    RoutingState routing() {
        return routing;
    }

    @Override
    public Credentials credentials() {
        return credentials;
    }

    @Override
    public AuthQuery authQuery() {
        return authQuery;
    }

    @Override
    public Router router() {
        return routing.router();
    }

    @Override
    public PatroniRouter patroni() {
        return routing.patroni();
    }

    @Override
    public ServerPools pools() {
        return pools;
    }

    @Override
    public PreparedStatements preparedStatements() {
        return preparedStatements;
    }

    @Override
    public CancelKeys cancelKeys() {
        return cancelKeys;
    }

    Peers peers() {
        return peers;
    }

    MessageMemory messageMemory() {
        return messageMemory;
    }

    Set<ClientSession> sessions() {
        return clients.all();
    }

    // ------------------------------------------------------------------ clients

    @Override
    public long nextClientId() {
        return clients.nextId();
    }

    @Override
    public boolean clientConnected(ClientSession session) {
        return clients.connected(session, config.limits().maxLoginClients());
    }

    @Override
    public boolean clientLoggedIn(ClientSession session) {
        return clients.loggedIn(session, config.maxClientConn());
    }

    @Override
    public void clientDisconnected(ClientSession session, boolean loggedIn) {
        clients.disconnected(session, loggedIn);
    }

    double countClients(String state) {
        return clients.count(state);
    }

    /** Bytes reserved by large messages being received (limits.max_buffered_message_bytes). */
    long bufferedMessageBytes() {
        return messageMemory.used();
    }

    @Override
    public void sendCancel(Backend backend, int processId, int secretKey) {
        transport
                .serverBootstrap(
                        transport.group(),
                        config.serverConnectTimeout().toMillis(),
                        config.tcp().forServers())
                .handler(
                        new ChannelInitializer<Channel>() {
                            @Override
                            protected void initChannel(Channel ch) {}
                        })
                .connect(backend.host(), backend.port())
                .addListener(
                        (ChannelFutureListener)
                                f -> {
                                    if (f.isSuccess()) {
                                        f.channel()
                                                .writeAndFlush(
                                                        StartupMessage.encodeCancelRequest(
                                                                f.channel().alloc(),
                                                                processId,
                                                                secretKey))
                                                .addListener(ChannelFutureListener.CLOSE);
                                    } else {
                                        log.info(
                                                "cancel request to {} failed: {}",
                                                backend,
                                                f.cause().toString());
                                    }
                                });
    }

    // ------------------------------------------------------------------ PAUSE, DISABLE, routing

    @Override
    public String holdReason(String database) {
        return held.holdReason(database);
    }

    @Override
    public boolean isDisabled(String database) {
        return held.isDisabled(database);
    }

    boolean isPaused(String database) {
        return held.isPaused(database);
    }

    @Override
    public void hold(ClientSession session) {
        held.hold(session);
    }

    @Override
    public void unhold(ClientSession session) {
        held.unhold(session);
    }

    @Override
    public String noPrimaryReason() {
        return routing.noPrimaryReason();
    }

    @Override
    public void reportUnavailable(Backend backend) {
        routing.reportUnavailable(backend);
    }

    @Override
    public void reportHotStandby(Backend backend, String value) {
        routing.reportHotStandby(backend, value);
    }

    @Override
    public void leaderStillInRecovery(Backend backend) {
        routing.leaderStillInRecovery(backend);
    }

    double eligibleReplicaCount() {
        return routing.eligibleReplicaCount(config);
    }

    double replicaLagBytes(String member) {
        return routing.replicaLagBytes(member);
    }
}
