package io.pgrelay.proxy;

import io.netty.channel.EventLoop;
import io.netty.util.concurrent.FastThreadLocal;
import io.pgrelay.pool.PoolException;
import io.pgrelay.pool.Waiter;
import io.pgrelay.protocol.ErrorResponse;
import io.pgrelay.protocol.SqlState;
import io.pgrelay.routing.Backend;
import io.pgrelay.routing.Member;
import io.pgrelay.routing.PatroniRouter;
import io.pgrelay.routing.Role;
import io.pgrelay.routing.Topology;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How one client gets a server connection: which server (the router, the Patroni leader not yet
 * confirmed), which pool, waiting in it, holding while none may be given (PAUSE, no writable
 * primary), retrying a read on another replica, and taking a granted connection over so that it is
 * never in two hands. Runs on the client's event loop; the pool may answer on any thread.
 */
final class ServerLease {

    /** What the lease tells its client. */
    interface Client {
        /**
         * A connection is granted and is this client's now (at {@code now}, nanoTime): link it and
         * send what waits.
         */
        void attach(ServerConnection conn, long now);

        /**
         * A connection to the etcd leader, not confirmed writable yet, is granted: link it and ask
         * ({@link LeaderProbe}); then attach it, or {@link #notWritable} it.
         */
        void confirmLeader(ServerConnection conn, long now);

        /** Waiting (queued or held) begins or ends: reads pause while it lasts. */
        void waiting(boolean waiting);

        /** No server can be had: the requests waiting fail with this error. */
        void failed(ErrorResponse error);

        /** Something broke while taking a connection over; the client must be closed. */
        void fatal(ErrorResponse error);

        boolean isClosed();

        /** Still logging in: the lease is for a fresh welcome, not for a connection. */
        boolean isLoggingIn();

        /** The pool has a welcome from a login as new as the client. */
        void welcomed(ServerPool pool);
    }

    private static final Logger log = LoggerFactory.getLogger(ServerLease.class);

    private static final FastThreadLocal<int[]> INLINE_GRANTS =
            new FastThreadLocal<>() {
                @Override
                protected int[] initialValue() {
                    return new int[1];
                }
            };
    private static final int MAX_INLINE_GRANTS = 2;

    private final SessionServices relay;
    private final ClientSession session;
    private final Client client;
    private final EventLoop loop;
    private final Role role;
    private final long clientId;

    private Request request;

    /** The pool's answer to a client still logging in: a welcome (see PoolWelcome). */
    private CompletableFuture<Map<String, String>> welcomeWait;

    // Which pools this client's requests go to (set once the startup packet is read).
    private String database;
    private String user;
    private Map<String, String> startupParameters = Map.of();

    /** A granted connection not yet taken over by the client nor handed back. */
    private ServerConnection inHand;

    /** True while inside Pool.acquire (this loop), for the inline grant. */
    private boolean acquiring;

    private int readRetries;

    /** The replica whose refusal (shutting down, unreachable) a read is being retried after. */
    private Backend readRetryAvoids;

    // Read by SHOW CLIENTS and metrics from other threads.
    private volatile ServerPool homePool;
    private volatile long waitingSinceNanos;
    private volatile boolean held;

    private long heldSinceNanos;
    private long holdDeadlineNanos;

    /**
     * When the client was first held for the requests waiting now, or 0. Held clients are woken to
     * look again (every 200 ms, on routing changes) and held again if nothing changed: their wait
     * limit counts from here, until they are served, fail or leave.
     */
    private long holdStartNanos;

    private String holdReason;
    private String holdSqlState;

    ServerLease(SessionServices relay, ClientSession session, Client client, Role role) {
        this.relay = relay;
        this.session = session;
        this.client = client;
        this.loop = session.loop();
        this.role = role;
        this.clientId = session.id;
    }

    /**
     * The client's database and user, and the startup parameters its server connections log in with
     * (session mode: its own; transaction mode: none, they are SET).
     */
    void forClient(String database, String user, Map<String, String> startupParameters) {
        this.database = database;
        this.user = user;
        this.startupParameters = startupParameters;
    }

    /** Whether a server connection has been asked for and not yet granted. */
    boolean isPending() {
        return request != null;
    }

    boolean isHeld() {
        return held;
    }

    /** The pool this client last asked; SHOW CLIENTS reports it. */
    ServerPool homePool() {
        return homePool;
    }

    /** The pool a client that logged in without a lease belongs to. */
    void home(ServerPool pool) {
        homePool = pool;
    }

    /** How long the client has been waiting for a server (queued or held), or 0. */
    long waitingNanos(long now) {
        long since = waitingSinceNanos;
        return since == 0 ? (held ? now - heldSinceNanos : 0) : now - since;
    }

    boolean isWaiting() {
        return waitingSinceNanos != 0 || held;
    }

    /**
     * Asks for a server connection, or holds while none may be given; {@code now} (nanoTime) is
     * when the client's wait began.
     */
    void start(long now) {
        // No check for a shutdown here: a draining pgrelay serves its connected clients' next
        // transactions; once it has stopped, the closed pool refuses.
        String paused = relay.holdReason(database);
        if (paused != null) {
            hold(paused, relay.config().poolSettings().queryWaitTimeout(), SqlState.QUERY_CANCELED);
            return;
        }
        Optional<Backend> backend = relay.router().route(role);
        // A read retried after a replica refused it: the rotation is shared by all clients, so
        // the next turn may well be the same replica again; ask for another one (a few turns).
        for (int turn = 0;
                turn < 4
                        && readRetryAvoids != null
                        && backend.isPresent()
                        && backend.get().equals(readRetryAvoids);
                turn++) {
            backend = relay.router().route(role);
        }
        if (backend.isEmpty() && relay.patroni() != null) {
            Optional<Backend> candidate = leaderCandidate();
            if (candidate.isPresent()) {
                // Not confirmed writable yet: a connection to it will tell (in_hot_standby).
                log.debug("client {}: probing leader candidate {}", clientId, candidate.get());
                request(
                        relay.pools()
                                .pool(database, user, startupParameters, candidate.get(), role),
                        now);
                return;
            }
            log.debug("client {}: held: {}", clientId, relay.noPrimaryReason());
            holdForPrimary("");
            return;
        }
        if (backend.isEmpty()) {
            served();
            client.failed(
                    ErrorResponse.error(
                            SqlState.CONNECTION_FAILURE,
                            "no " + role.label() + " server available"));
            return;
        }
        request(relay.pools().pool(database, user, startupParameters, backend.get(), role), now);
    }

    /** The etcd leader, when it is worth a connection to see whether it is writable yet. */
    Optional<Backend> leaderCandidate() {
        PatroniRouter patroni = relay.patroni();
        if (role != Role.PRIMARY || patroni == null) {
            return Optional.empty();
        }
        Topology t = patroni.topology();
        if (t.switchoverPending()
                || !t.leaderMember().map(Member::isRunningPrimaryOrPromoting).orElse(false)) {
            return Optional.empty();
        }
        return patroni.leaderCandidate();
    }

    /** Holds the client until a writable primary is known, or leader_wait_timeout runs out. */
    void holdForPrimary(String detail) {
        hold(
                (role == Role.PRIMARY
                                ? "no writable primary: "
                                : "no replica or primary to read from: ")
                        + relay.noPrimaryReason()
                        + detail,
                relay.config().leaderWaitTimeout(),
                SqlState.CANNOT_CONNECT_NOW);
    }

    private void hold(String reason, Duration limit, String sqlState) {
        if (holdStartNanos == 0) {
            holdStartNanos = System.nanoTime();
        }
        heldSinceNanos = holdStartNanos;
        holdDeadlineNanos = limit.isZero() ? Long.MAX_VALUE : holdStartNanos + limit.toNanos();
        held = true;
        holdReason = reason;
        holdSqlState = sqlState;
        client.waiting(true);
        relay.hold(session);
    }

    /**
     * Called when whatever held the client may have changed (RESUME, new primary): true when it was
     * held, and is not any more (the client asks again).
     */
    boolean release() {
        if (!held) {
            return false;
        }
        held = false;
        relay.unhold(session);
        client.waiting(false);
        return true;
    }

    /**
     * The requests waiting now are answered (a connection linked, or an error): no hold goes on.
     */
    void served() {
        holdStartNanos = 0;
    }

    /** The error for a hold that has lasted past its deadline at {@code now}, or null. */
    ErrorResponse expiredHold(long now) {
        if (!held || now - holdDeadlineNanos <= 0) {
            return null;
        }
        release();
        served();
        long waitedSeconds = (now - heldSinceNanos) / 1_000_000_000L;
        return ErrorResponse.error(holdSqlState, holdReason + " (waited " + waitedSeconds + " s)");
    }

    private void request(ServerPool pool, long now) {
        Request r = new Request(pool);
        request = r;
        homePool = pool;
        waitingSinceNanos = now;
        if (client.isLoggingIn()) {
            // Greet with what a login recent enough for this client reported (welcome_max_age).
            welcomeWait = pool.welcomeSince(session.welcomeSinceNanos());
            welcomeWait.whenComplete((welcome, error) -> loop.execute(() -> onWelcome(r, error)));
            return;
        }
        acquiring = true;
        try {
            pool.pool().acquire(r);
        } finally {
            acquiring = false;
        }
        // Not granted at once: reads go on (a client normally sends nothing more until it has
        // its answer); only a client that keeps pipelining while it waits is paused. Toggling
        // autoRead costs an epoll_ctl each way, per waiting transaction.
    }

    /** The pool has a welcome fresh enough for this client, or could not get one. */
    private void onWelcome(Request granted, Throwable error) {
        if (error != null) {
            Throwable cause =
                    error instanceof CompletionException && error.getCause() != null
                            ? error.getCause()
                            : error;
            onFailed(
                    granted,
                    cause instanceof PoolException e
                            ? e
                            : new PoolException(
                                    PoolException.Reason.CONNECT_FAILED, cause.toString(), cause));
            return;
        }
        if (granted != request || client.isClosed()) {
            return;
        }
        request = null;
        waitingSinceNanos = 0;
        served();
        client.waiting(false);
        client.welcomed(granted.pool);
    }

    /** The client is gone: stop waiting and holding. */
    void cancel() {
        served();
        if (welcomeWait != null) {
            welcomeWait.cancel(false); // the pool drops a wait that is done
        }
        if (held) {
            held = false;
            relay.unhold(session);
        }
        if (request != null) {
            request.pool.pool().cancel(request);
            request = null;
        }
    }

    /** A request for a server connection; answered on any thread, acted on in the client's loop. */
    private final class Request implements Waiter<ServerConnection> {
        final ServerPool pool;

        Request(ServerPool pool) {
            this.pool = pool;
        }

        @Override
        public Object affinity() {
            return loop;
        }

        @Override
        public boolean granted(ServerConnection connection) {
            int[] depth = INLINE_GRANTS.get();
            if (loop.inEventLoop() && (acquiring || depth[0] < MAX_INLINE_GRANTS)) {
                // Same thread: take the connection now, inside our own acquire() or inside the
                // release that handed it over, instead of one task-queue round later. A release
                // inside granted (login, not yet writable) recurses into the next waiter, so the
                // depth is bounded and deeper grants go through the task queue.
                depth[0]++;
                try {
                    takeGranted(this, connection);
                } finally {
                    depth[0]--;
                }
            } else {
                loop.execute(() -> takeGranted(this, connection));
            }
            return true;
        }

        @Override
        public void failed(PoolException e) {
            loop.execute(() -> onFailed(this, e));
        }
    }

    /**
     * Takes a granted connection over, and makes sure a failure while doing so cannot leave it in
     * two hands: whatever is thrown, a connection still in hand or linked to the client is closed,
     * not returned to the pool, and the client is disconnected. The pool never sees the exception,
     * so it cannot take back a connection the client still points at.
     */
    private void takeGranted(Request granted, ServerConnection conn) {
        inHand = conn;
        try {
            onGranted(granted, conn);
        } catch (RuntimeException | AssertionError | LinkageError e) {
            log.error(
                    "client {}: failed while taking over server connection {}; closing both",
                    clientId,
                    conn,
                    e);
            boolean ours = inHand == conn || session.dropLinked(conn);
            if (ours) {
                conn.pool().pool().discard(conn, "its client failed while taking it over");
            }
            if (request == granted) {
                request = null;
            }
            client.fatal(
                    ErrorResponse.fatal(
                            SqlState.INTERNAL_ERROR,
                            "internal error in pgrelay while assigning a server"
                                    + " connection; the connection is closed"));
        } finally {
            inHand = null;
        }
    }

    /** Returns a connection to the pool unused; from then on it is the pool's alone. */
    void handBack(ServerConnection conn) {
        inHand = null;
        conn.pool().pool().release(conn);
    }

    /** The client has linked the connection in hand: it is the client's to release now. */
    void linked(ServerConnection conn) {
        if (inHand == conn) {
            inHand = null;
        }
    }

    private void onGranted(Request granted, ServerConnection conn) {
        if (granted != request || client.isClosed()) {
            handBack(conn);
            return;
        }
        request = null;
        readRetries = 0;
        readRetryAvoids = null;
        // Granted inside our own acquire: no time has passed worth a clock read.
        long now = acquiring ? waitingSinceNanos : System.nanoTime();
        long waited = now - waitingSinceNanos;
        waitingSinceNanos = 0;
        client.waiting(false);
        granted.pool.waitMicros.add(waited / 1000);
        relay.metrics().clientWait(role, waited, now);
        switch (writable(conn)) {
            case YES -> client.attach(conn, now);
            case NO -> notWritable(conn);
            case ASK -> client.confirmLeader(conn, now);
        }
    }

    /**
     * Whether a granted connection may take writes: it is the router's primary. When it is the etcd
     * leader not yet confirmed, the answer is "ask it" ({@link LeaderProbe}).
     */
    private Writable writable(ServerConnection conn) {
        if (role != Role.PRIMARY || relay.patroni() == null) {
            return Writable.YES;
        }
        // Only "off" counts here: the value is the one the connection last heard, and an "on"
        // from before a promotion proves nothing now (reporting it would take back a confirmation
        // another connection just made).
        if ("off".equals(conn.parameter("in_hot_standby"))) {
            relay.reportHotStandby(conn.backend(), "off");
        }
        if (isPrimary(conn)) {
            return Writable.YES;
        }
        return conn.backend().equals(leaderCandidate().orElse(null)) ? Writable.ASK : Writable.NO;
    }

    /** Whether the connection is to the router's primary now. */
    boolean isPrimary(ServerConnection conn) {
        return conn.backend().equals(relay.router().route(Role.PRIMARY).orElse(null));
    }

    private enum Writable {
        YES,
        NO,
        ASK
    }

    /**
     * Still in recovery, or the leader moved (or a switchover began) while we waited: never start a
     * write transaction on anything but the confirmed leader.
     */
    void notWritable(ServerConnection conn) {
        log.debug(
                "client {}: {} is not the writable primary (in_hot_standby {})",
                clientId,
                conn.backend(),
                conn.parameter("in_hot_standby"));
        boolean promoting = conn.backend().equals(leaderCandidate().orElse(null));
        handBack(conn);
        holdForPrimary("");
        if (promoting) {
            relay.leaderStillInRecovery(conn.backend());
        }
    }

    private void onFailed(Request failed, PoolException e) {
        if (failed != request || client.isClosed()) {
            return;
        }
        request = null;
        waitingSinceNanos = 0;
        client.waiting(false);
        if (relay.pools().wasRemoved(failed.pool, e)) {
            // Removed as unused just as we asked: its successor will serve us.
            start(System.nanoTime());
            return;
        }
        ErrorResponse error = errorFor(failed.pool, e);
        if (e.reason() == PoolException.Reason.CONNECT_FAILED
                && relay.patroni() != null
                && isUnavailable(error.sqlState())) {
            Backend backend = failed.pool.key().backend();
            if (role == Role.PRIMARY) {
                // The leader went away (killed, shutting down) before etcd says so: stop routing
                // writes to it and wait for the next leader instead of failing.
                relay.reportUnavailable(backend);
                holdForPrimary("; " + backend + ": " + error.message());
                return;
            }
            if (++readRetries <= 3) {
                // A replica that is stopping: the round robin moves on to the next one.
                readRetryAvoids = backend;
                start(System.nanoTime());
                return;
            }
        }
        served();
        client.failed(error);
    }

    private ErrorResponse errorFor(ServerPool pool, PoolException e) {
        return switch (e.reason()) {
            case WAIT_TIMEOUT ->
                    ErrorResponse.error(
                            SqlState.QUERY_CANCELED,
                            "query_wait_timeout: no server connection to "
                                    + pool.key().backend()
                                    + " became free within "
                                    + relay.config().poolSettings().queryWaitTimeout().toSeconds()
                                    + " s");
            case CONNECT_FAILED ->
                    e.getCause() instanceof ServerLoginException sle
                            ? sle.error()
                            : ErrorResponse.error(
                                    SqlState.CONNECTION_FAILURE,
                                    "could not connect to server "
                                            + pool.key().backend()
                                            + ": "
                                            + e.getMessage());
            case CLOSED -> ErrorResponse.error(SqlState.ADMIN_SHUTDOWN, "pgrelay is shutting down");
        };
    }

    /**
     * Errors that say the server is not there (now), as opposed to "you may not" or "no such
     * database".
     */
    private static boolean isUnavailable(String sqlState) {
        return sqlState.startsWith("08")
                || sqlState.equals(SqlState.ADMIN_SHUTDOWN)
                || sqlState.equals("57P02")
                || sqlState.equals(SqlState.CANNOT_CONNECT_NOW);
    }
}
