package io.pgrelay.routing;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.Client;
import io.etcd.jetcd.KeyValue;
import io.etcd.jetcd.Watch;
import io.etcd.jetcd.kv.GetResponse;
import io.etcd.jetcd.options.GetOption;
import io.etcd.jetcd.options.WatchOption;
import io.etcd.jetcd.watch.WatchEvent;
import io.etcd.jetcd.watch.WatchResponse;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Follows a Patroni cluster in etcd v3: one prefix GET of {@code <namespace><scope>/}, then a
 * prefix watch from the GET's revision + 1, each event applied to a {@link PatroniKeyspace} and the
 * resulting {@link Topology} handed to the listener.
 *
 * <p>Everything (reads, event application, listener calls, retries) runs on one dedicated thread,
 * so the listener sees topologies strictly in etcd order. Watch callbacks arrive on jetcd/Vert.x
 * threads and are only queued onto that thread, tagged with the watch generation they belong to;
 * callbacks of a watch we already abandoned are dropped.
 *
 * <p>Hazards this class exists to contain (see the jetcd issue tracker):
 *
 * <ul>
 *   <li>{@code kv.get(..).get()} can block forever while etcd is unreachable (jetcd #1509): every
 *       call here has {@link Settings#requestTimeout()}.
 *   <li>jetcd re-subscribes a watch by itself only on UNAVAILABLE/INTERNAL, resuming from its own
 *       revision; on compaction, "no leader" or server-side completion it just closes it. Rather
 *       than reason about which case we are in, <em>any</em> watch error or completion abandons the
 *       watch and starts over with a full GET: Patroni's keyspace is a handful of small keys, and a
 *       re-read can never miss an event or trip over a compacted revision.
 *   <li>After an outage the gRPC channel sits in reconnect backoff (1 s growing to 120 s; jetcd
 *       #1616) and keeps failing calls with UNAVAILABLE although etcd is back — measured here: 20 s
 *       after a 25 s outage. So while disconnected, each retry first tries a plain TCP connect to
 *       the endpoints: if one accepts but the client still fails, the client is stuck and is
 *       rebuilt (at most once per {@link Settings#maxBackoff()}). Independently, a client that has
 *       been disconnected for {@link Settings#clientRebuildAfter()} is rebuilt anyway.
 * </ul>
 *
 * <p>While disconnected the last topology is kept and republished with {@code
 * sourceConnected=false}; no leader is ever invented or dropped on our own.
 */
public final class EtcdTopologySource implements TopologySource {

    private static final Logger log = LoggerFactory.getLogger(EtcdTopologySource.class);

    /** How often a continuing outage is logged again at WARN (each retry is at DEBUG). */
    private static final long OUTAGE_LOG_INTERVAL_NANOS = TimeUnit.SECONDS.toNanos(30);

    /**
     * Connection settings.
     *
     * @param endpoints etcd client URLs ({@code http://host:port}; bare {@code host:port} gets
     *     http://)
     * @param namespace Patroni's {@code namespace} (default {@code /service/})
     * @param scope Patroni's {@code scope} (the cluster name)
     * @param requestTimeout bound on every etcd call (connect, GET)
     * @param initialBackoff first retry delay after a failure; doubled per failure
     * @param maxBackoff retry delay ceiling
     * @param clientRebuildAfter disconnected this long ⇒ throw the jetcd client away and build a
     *     new one
     */
    public record Settings(
            List<String> endpoints,
            String namespace,
            String scope,
            Duration requestTimeout,
            Duration initialBackoff,
            Duration maxBackoff,
            Duration clientRebuildAfter) {

        public static final String DEFAULT_NAMESPACE = "/service/";
        public static final Duration DEFAULT_REQUEST_TIMEOUT = Duration.ofSeconds(3);
        public static final Duration DEFAULT_INITIAL_BACKOFF = Duration.ofMillis(500);
        public static final Duration DEFAULT_MAX_BACKOFF = Duration.ofSeconds(5);
        public static final Duration DEFAULT_CLIENT_REBUILD_AFTER = Duration.ofSeconds(30);

        public Settings {
            endpoints = List.copyOf(endpoints);
            if (endpoints.isEmpty()) {
                throw new IllegalArgumentException("at least one etcd endpoint is required");
            }
            for (String endpoint : endpoints) {
                URI uri;
                try {
                    uri = endpointUri(endpoint);
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException(
                            "etcd endpoint '" + endpoint + "' is not a URL", e);
                }
                if (uri.getHost() == null || uri.getPort() < 1) {
                    throw new IllegalArgumentException(
                            "etcd endpoint '"
                                    + endpoint
                                    + "' (expected: http://host:port or host:port)");
                }
            }
            namespace = namespace == null || namespace.isBlank() ? DEFAULT_NAMESPACE : namespace;
            if (scope == null || scope.isBlank()) {
                throw new IllegalArgumentException("Patroni scope must not be empty");
            }
            requirePositive("requestTimeout", requestTimeout);
            requirePositive("initialBackoff", initialBackoff);
            requirePositive("maxBackoff", maxBackoff);
            requirePositive("clientRebuildAfter", clientRebuildAfter);
            if (maxBackoff.compareTo(initialBackoff) < 0) {
                throw new IllegalArgumentException(
                        "maxBackoff: "
                                + maxBackoff
                                + " (expected: >= initialBackoff "
                                + initialBackoff
                                + ")");
            }
        }

        /**
         * Default timeouts: 3 s per call, retry 0.5 s doubling to 5 s, rebuild the client after 30
         * s.
         */
        public static Settings of(List<String> endpoints, String namespace, String scope) {
            return new Settings(
                    endpoints,
                    namespace,
                    scope,
                    DEFAULT_REQUEST_TIMEOUT,
                    DEFAULT_INITIAL_BACKOFF,
                    DEFAULT_MAX_BACKOFF,
                    DEFAULT_CLIENT_REBUILD_AFTER);
        }

        public Settings withRequestTimeout(Duration value) {
            return new Settings(
                    endpoints,
                    namespace,
                    scope,
                    value,
                    initialBackoff,
                    maxBackoff,
                    clientRebuildAfter);
        }

        public Settings withBackoff(Duration initial, Duration max) {
            return new Settings(
                    endpoints, namespace, scope, requestTimeout, initial, max, clientRebuildAfter);
        }

        public Settings withClientRebuildAfter(Duration value) {
            return new Settings(
                    endpoints, namespace, scope, requestTimeout, initialBackoff, maxBackoff, value);
        }

        /** {@code host:port} gets {@code http://}; anything with a scheme is taken as is. */
        static URI endpointUri(String endpoint) {
            String trimmed = endpoint.trim();
            return URI.create(trimmed.contains("://") ? trimmed : "http://" + trimmed);
        }

        /** The scope's key prefix, e.g. {@code /service/demo/}. */
        public String keyPrefix() {
            return PatroniKeyspace.prefixFor(namespace, scope);
        }

        private static void requirePositive(String name, Duration value) {
            if (value == null || value.isNegative() || value.isZero()) {
                throw new IllegalArgumentException(name + ": " + value + " (expected: > 0)");
            }
        }
    }

    private final Settings settings;
    private final PatroniKeyspace keys;
    private final ByteSequence prefixKey;
    private final ScheduledExecutorService loop;
    private volatile Topology current = Topology.empty();
    private volatile boolean closed;
    private volatile boolean started;

    // ---- confined to the loop thread ----
    private Consumer<Topology> listener;
    private Client client;
    private long clientBuiltNanos;
    private Watch.Watcher watcher;

    /** Bumped whenever a watch is abandoned, so its late callbacks are recognised and dropped. */
    private long watchGeneration;

    private boolean connected;
    private boolean everConnected;
    private long disconnectedSinceNanos;
    private long lastOutageLogNanos;
    private long backoffMillis;
    private int failedAttempts;
    private ScheduledFuture<?> switchoverCheck;

    public EtcdTopologySource(Settings settings) {
        this.settings = Objects.requireNonNull(settings, "settings");
        this.keys = new PatroniKeyspace(settings.keyPrefix());
        this.prefixKey = ByteSequence.from(keys.prefix(), StandardCharsets.UTF_8);
        this.backoffMillis = settings.initialBackoff().toMillis();
        ScheduledThreadPoolExecutor executor =
                new ScheduledThreadPoolExecutor(
                        1,
                        r -> {
                            Thread t = new Thread(r, "pgrelay-etcd-" + settings.scope());
                            t.setDaemon(true);
                            return t;
                        });
        // a retry scheduled for later must not run (and reconnect) after close()
        executor.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
        executor.setRemoveOnCancelPolicy(true);
        this.loop = executor;
    }

    public EtcdTopologySource(List<String> endpoints, String namespace, String scope) {
        this(Settings.of(endpoints, namespace, scope));
    }

    public Settings settings() {
        return settings;
    }

    @Override
    public void start(Consumer<Topology> listener) {
        Objects.requireNonNull(listener, "listener");
        if (closed) {
            throw new IllegalStateException("closed");
        }
        synchronized (this) {
            if (started) {
                throw new IllegalStateException("already started");
            }
            started = true;
        }
        log.info(
                "following Patroni scope '{}' at {} in etcd {}",
                settings.scope(),
                keys.prefix(),
                settings.endpoints());
        onLoop(
                () -> {
                    this.listener = listener;
                    this.disconnectedSinceNanos = System.nanoTime();
                    readAndWatch();
                });
    }

    @Override
    public Topology current() {
        return current;
    }

    /** Closes the watch and the client; waits up to the request timeout (+2 s) for the thread. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            loop.execute(this::releaseClient);
        } catch (RejectedExecutionException ignored) {
            // already shut down
        }
        loop.shutdown();
        try {
            if (!loop.awaitTermination(
                    settings.requestTimeout().toMillis() + 2000, TimeUnit.MILLISECONDS)) {
                loop.shutdownNow();
                log.warn(
                        "etcd topology thread for scope '{}' did not stop in time",
                        settings.scope());
            }
        } catch (InterruptedException e) {
            loop.shutdownNow();
            Thread.currentThread().interrupt();
        }
    }

    // ------------------------------------------------------------------------------------------
    // Loop thread
    // ------------------------------------------------------------------------------------------

    /** Full read of the prefix, then a watch from the read's revision + 1. */
    private void readAndWatch() {
        if (closed) {
            return;
        }
        abandonWatch();
        GetResponse response;
        CompletableFuture<GetResponse> pending = null;
        try {
            rebuildClientIfStuck();
            if (client == null) {
                client = newClient();
            }
            pending =
                    client.getKVClient().get(prefixKey, GetOption.builder().isPrefix(true).build());
            response = pending.get(settings.requestTimeout().toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        } catch (ExecutionException | TimeoutException | RuntimeException e) {
            if (pending != null) {
                pending.cancel(true);
            }
            onFailure("read of " + keys.prefix() + " failed", e);
            return;
        }
        long revision = response.getHeader().getRevision();
        keys.clear();
        for (KeyValue kv : response.getKvs()) {
            keys.put(
                    kv.getKey().toString(StandardCharsets.UTF_8),
                    kv.getValue().toString(StandardCharsets.UTF_8));
        }
        boolean firstRead = !everConnected;
        if (everConnected) {
            long outageMillis =
                    TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - disconnectedSinceNanos);
            log.info(
                    "etcd reconnected after {} ms (revision {}); re-read {} keys",
                    outageMillis,
                    revision,
                    response.getKvs().size());
        }
        connected = true;
        everConnected = true;
        failedAttempts = 0;
        backoffMillis = settings.initialBackoff().toMillis();
        try {
            watchFrom(revision + 1);
        } catch (RuntimeException e) {
            onFailure("watch could not be created", e);
            return;
        }
        publish(revision, firstRead ? "initial read" : "re-read after reconnect");
    }

    private void watchFrom(long revision) {
        long generation = ++watchGeneration;
        WatchOption option =
                WatchOption.builder()
                        .isPrefix(true)
                        .withPrevKV(true)
                        .withRevision(revision)
                        // a member cut off from the etcd quorum must not feed us a frozen picture
                        .withRequireLeader(true)
                        .build();
        watcher =
                client.getWatchClient()
                        .watch(
                                prefixKey,
                                option,
                                new Watch.Listener() {
                                    @Override
                                    public void onNext(WatchResponse response) {
                                        onLoop(
                                                () -> {
                                                    if (generation == watchGeneration) {
                                                        applyWatchResponse(response);
                                                    }
                                                });
                                    }

                                    @Override
                                    public void onError(Throwable error) {
                                        onLoop(
                                                () -> {
                                                    if (generation == watchGeneration) {
                                                        onFailure("watch failed", error);
                                                    }
                                                });
                                    }

                                    @Override
                                    public void onCompleted() {
                                        onLoop(
                                                () -> {
                                                    if (generation == watchGeneration) {
                                                        onFailure("watch closed by etcd", null);
                                                    }
                                                });
                                    }
                                });
    }

    private void applyWatchResponse(WatchResponse response) {
        long revision = Math.max(current.revision(), response.getHeader().getRevision());
        for (WatchEvent event : response.getEvents()) {
            KeyValue kv = event.getKeyValue();
            String key = kv.getKey().toString(StandardCharsets.UTF_8);
            switch (event.getEventType()) {
                case PUT -> keys.put(key, kv.getValue().toString(StandardCharsets.UTF_8));
                case DELETE -> keys.delete(key);
                default -> log.debug("ignoring unrecognized watch event on {}", key);
            }
            revision = Math.max(revision, kv.getModRevision());
        }
        // all events of one response share a revision (e.g. a lease expiry deleting leader and
        // member together): publish once, so no consumer sees half of it
        publish(revision, "watch");
    }

    private void onFailure(String what, Throwable error) {
        if (closed) {
            return;
        }
        abandonWatch();
        long now = System.nanoTime();
        String cause = what + (error == null ? "" : ": " + describe(error));
        if (connected) {
            connected = false;
            disconnectedSinceNanos = now;
            lastOutageLogNanos = now;
            log.warn(
                    "etcd disconnected ({}); keeping the last topology (leader {}, {} members) until it is back",
                    cause,
                    current.leader() == null ? "(none)" : current.leader(),
                    current.members().size());
            Topology kept = current.withSourceConnected(false, Instant.now());
            current = kept;
            notifyListener(kept);
        } else if (failedAttempts == 0 || now - lastOutageLogNanos > OUTAGE_LOG_INTERVAL_NANOS) {
            lastOutageLogNanos = now;
            log.warn(
                    "etcd unreachable for {} ms ({}); retrying",
                    TimeUnit.NANOSECONDS.toMillis(now - disconnectedSinceNanos),
                    cause);
        } else {
            log.debug("etcd still unreachable: {}", cause);
        }
        failedAttempts++;
        // the first retry after a broken watch is immediate: most often etcd is fine and the
        // watch was just compacted or cancelled
        long delay = failedAttempts == 1 && what.startsWith("watch") ? 0 : backoffMillis;
        if (delay > 0) {
            backoffMillis = Math.min(backoffMillis * 2, settings.maxBackoff().toMillis());
        }
        try {
            loop.schedule(this::readAndWatch, delay, TimeUnit.MILLISECONDS);
        } catch (RejectedExecutionException ignored) {
            // closing
        }
    }

    private void publish(long revision, String how) {
        Instant now = Instant.now();
        Topology before = current;
        Topology next = keys.toTopology(connected, before.lastChange(), revision, now);
        if (next.sameStateAs(before)) {
            current = next; // only the revision moved: nothing to tell anyone
            return;
        }
        next = keys.toTopology(connected, now, revision, now);
        current = next;
        String switchover =
                keys.failover().map(PatroniKeyspace.FailoverRequest::describe).orElse(null);
        for (String line : TopologyChanges.describe(before, next, how, switchover)) {
            log.info("scope {}: {}", settings.scope(), line);
        }
        log.debug("scope {}: {}", settings.scope(), next);
        scheduleSwitchoverCheck(now);
        notifyListener(next);
    }

    /**
     * A switchover scheduled for later becomes pending at its time; no etcd event marks that
     * moment.
     */
    private void scheduleSwitchoverCheck(Instant now) {
        if (switchoverCheck != null) {
            switchoverCheck.cancel(false);
            switchoverCheck = null;
        }
        keys.failover()
                .map(PatroniKeyspace.FailoverRequest::scheduledAt)
                .filter(at -> at.isAfter(now))
                .ifPresent(
                        at -> {
                            log.info(
                                    "scope {}: switchover scheduled at {}; writes are held from then on",
                                    settings.scope(),
                                    at);
                            long delay = Math.max(0, Duration.between(now, at).toMillis()) + 1;
                            switchoverCheck =
                                    loop.schedule(
                                            () ->
                                                    publish(
                                                            current.revision(),
                                                            "scheduled switchover time reached"),
                                            delay,
                                            TimeUnit.MILLISECONDS);
                        });
    }

    private void notifyListener(Topology topology) {
        Consumer<Topology> l = listener;
        if (l == null) {
            return;
        }
        try {
            l.accept(topology);
        } catch (RuntimeException e) {
            log.error("topology listener failed", e);
        }
    }

    private void abandonWatch() {
        watchGeneration++;
        Watch.Watcher w = watcher;
        watcher = null;
        if (w != null) {
            try {
                w.close();
            } catch (RuntimeException e) {
                log.debug("closing an abandoned watch failed", e);
            }
        }
    }

    /** jetcd #1616: see the class comment. */
    private void rebuildClientIfStuck() {
        if (client == null || connected) {
            return;
        }
        long now = System.nanoTime();
        long age = now - clientBuiltNanos;
        long outage = now - disconnectedSinceNanos;
        String reason = null;
        if (outage > settings.clientRebuildAfter().toNanos()
                && age > settings.clientRebuildAfter().toNanos()) {
            reason = "unreachable for " + TimeUnit.NANOSECONDS.toMillis(outage) + " ms";
        } else if (age > settings.maxBackoff().toNanos() && anyEndpointAcceptsTcp()) {
            reason = "reachable again but the client is still in reconnect backoff";
        }
        if (reason != null) {
            log.info("etcd {}: rebuilding the etcd client", reason);
            closeClientQuietly();
        }
    }

    /** A bare TCP connect, bounded by a fraction of the request timeout per endpoint. */
    private boolean anyEndpointAcceptsTcp() {
        int timeoutMillis =
                (int) Math.max(100, Math.min(1000, settings.requestTimeout().toMillis() / 3));
        for (String endpoint : settings.endpoints()) {
            try {
                URI uri = Settings.endpointUri(endpoint);
                try (Socket socket = new Socket()) {
                    socket.connect(
                            new InetSocketAddress(uri.getHost(), uri.getPort()), timeoutMillis);
                    return true;
                }
            } catch (IOException | IllegalArgumentException e) {
                // try the next one
            }
        }
        return false;
    }

    private Client newClient() {
        Client c = EtcdClients.build(settings);
        clientBuiltNanos = System.nanoTime();
        return c;
    }

    private void releaseClient() {
        abandonWatch();
        if (switchoverCheck != null) {
            switchoverCheck.cancel(false);
        }
        closeClientQuietly();
    }

    private void closeClientQuietly() {
        abandonWatch();
        Client c = client;
        client = null;
        if (c != null) {
            try {
                c.close();
            } catch (RuntimeException e) {
                log.debug("closing the etcd client failed", e);
            }
        }
    }

    private void onLoop(Runnable task) {
        if (closed) {
            return;
        }
        try {
            loop.execute(
                    () -> {
                        try {
                            task.run();
                        } catch (RuntimeException e) {
                            // never let one bad event kill the only thread that follows etcd
                            log.error("etcd topology update failed; re-reading", e);
                            onFailure("internal error", e);
                        }
                    });
        } catch (RejectedExecutionException ignored) {
            // closing
        }
    }

    private static String describe(Throwable error) {
        Throwable t = error;
        while ((t instanceof ExecutionException || t instanceof CompletionException)
                && t.getCause() != null) {
            t = t.getCause();
        }
        if (t instanceof TimeoutException) {
            return "no answer within the request timeout";
        }
        String message = t.getMessage();
        return t.getClass().getSimpleName() + (message == null ? "" : ": " + message);
    }
}
