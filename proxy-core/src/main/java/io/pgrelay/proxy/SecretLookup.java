package io.pgrelay.proxy;

import io.pgrelay.auth.Secret;
import io.pgrelay.auth.SecretCache;
import io.pgrelay.config.AuthQuerySettings;
import io.pgrelay.pool.PoolException;
import io.pgrelay.pool.Waiter;
import io.pgrelay.protocol.ErrorResponse;
import io.pgrelay.protocol.Messages;
import io.pgrelay.protocol.SqlState;
import io.pgrelay.routing.Backend;
import io.pgrelay.routing.Role;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One auth_query lookup on a server. It asks auth_user's pool for the auth database on the backend
 * the client's port routes to for a connection, as a waiter like any client (so lookups share
 * pooled connections, as PgBouncer's auth_user pool does), runs the query with the user name bound
 * as its parameter, gives the connection back, and reads the first row.
 *
 * <p>Bounded twice by server_connect_timeout: once to get a connection (opening one included), once
 * for the answer ({@link ServerConnection#ownQuery} closes a server that does not answer).
 */
final class SecretLookup implements Waiter<ServerConnection> {

    private final SessionServices relay;
    private final AuthQuerySettings settings;
    private final SecretCache.Key key;
    private final Role role;
    private final CompletableFuture<Optional<Secret>> result = new CompletableFuture<>();

    /** Claimed by whichever comes first: the grant, the pool's failure, the deadline. */
    private final AtomicBoolean settled = new AtomicBoolean();

    private volatile Backend backend;
    private volatile ServerPool pool;
    private volatile ScheduledFuture<?> deadline;
    private volatile boolean retried;

    private SecretLookup(
            SessionServices relay, AuthQuerySettings settings, SecretCache.Key key, Role role) {
        this.relay = relay;
        this.settings = settings;
        this.key = key;
        this.role = role;
    }

    /**
     * Looks {@code key.user()} up in {@code key.database()}; completes with its secret, empty when
     * there is no such user (or no password), or fails with {@link AuthQueryException}.
     */
    static CompletableFuture<Optional<Secret>> run(
            SessionServices relay, AuthQuerySettings settings, SecretCache.Key key, Role role) {
        SecretLookup lookup = new SecretLookup(relay, settings, key, role);
        try {
            lookup.start();
        } catch (RuntimeException e) { // e.g. the event loops are stopping
            lookup.fail(SqlState.CONNECTION_FAILURE, "auth_query could not start: " + e);
        }
        return lookup.result;
    }

    /**
     * What the first row says (null: there was none): the second column is the secret; NULL or
     * empty means no password, which fails every login as no such role does.
     */
    static Optional<Secret> secretFrom(List<String> firstRow) throws AuthQueryException {
        if (firstRow == null) {
            return Optional.empty();
        }
        if (firstRow.size() < 2) {
            throw new AuthQueryException(
                    SqlState.INVALID_AUTHORIZATION_SPECIFICATION,
                    "auth_query returned "
                            + firstRow.size()
                            + " column(s); it must return usename, passwd");
        }
        String passwd = firstRow.get(1);
        return passwd == null || passwd.isEmpty()
                ? Optional.empty()
                : Optional.of(Secret.parse(passwd));
    }

    private void start() {
        // Roles are the same on every member: any server the client could be sent to will do.
        Optional<Backend> to = relay.router().route(role);
        if (to.isEmpty() && role != Role.PRIMARY) {
            to = relay.router().route(Role.PRIMARY);
        }
        if (to.isEmpty() && relay.patroni() != null) {
            to = relay.patroni().leaderCandidate(); // reading works before it is writable
        }
        if (to.isEmpty()) {
            fail(
                    SqlState.CONNECTION_FAILURE,
                    "no server to run auth_query on: " + relay.noPrimaryReason());
            return;
        }
        backend = to.get();
        long timeout = relay.config().serverConnectTimeout().toMillis();
        deadline =
                relay.transport()
                        .group()
                        .schedule(() -> timedOut(timeout), timeout, TimeUnit.MILLISECONDS);
        acquire();
    }

    private void acquire() {
        pool = relay.pools().pool(key.database(), settings.user(), Map.of(), backend, role);
        pool.pool().acquire(this);
    }

    @Override
    public Object affinity() {
        return null;
    }

    @Override
    public boolean granted(ServerConnection conn) {
        if (!settled.compareAndSet(false, true)) {
            return false; // timed out meanwhile: the pool takes it back
        }
        deadline.cancel(false);
        CompletableFuture<OwnQuery.Answer> answer;
        try {
            answer =
                    conn.ownQuery(
                            alloc ->
                                    Messages.extendedQuery(
                                            alloc, settings.query(), List.of(key.user())));
        } catch (RuntimeException e) {
            pool.pool().discard(conn, "auth_query could not be sent: " + e);
            fail(SqlState.CONNECTION_FAILURE, "auth_query could not be sent: " + e);
            return true;
        }
        answer.whenComplete(
                (a, error) -> {
                    if (conn.isUsable()) {
                        pool.pool().release(conn);
                    } else {
                        pool.pool().discard(conn, "closed during auth_query");
                    }
                    answered(a);
                });
        return true;
    }

    @Override
    public void failed(PoolException e) {
        if (!retried && relay.pools().wasRemoved(pool, e)) {
            // Removed as unused just as we asked: its successor will serve us.
            retried = true;
            acquire();
            return;
        }
        if (!settled.compareAndSet(false, true)) {
            return;
        }
        deadline.cancel(false);
        if (e.reason() == PoolException.Reason.CONNECT_FAILED
                && e.getCause() instanceof ServerLoginException sle) {
            fail(
                    sle.isRefusal()
                            ? SqlState.INVALID_AUTHORIZATION_SPECIFICATION
                            : SqlState.CONNECTION_FAILURE,
                    "auth_user could not log in to " + where() + ": " + sle.getMessage());
        } else {
            fail(
                    SqlState.CONNECTION_FAILURE,
                    "no connection to " + where() + ": " + e.getMessage());
        }
    }

    private void timedOut(long timeoutMillis) {
        if (!settled.compareAndSet(false, true)) {
            return;
        }
        pool.pool().cancel(this); // if the grant is on its way anyway, granted() hands it back
        fail(
                SqlState.CONNECTION_FAILURE,
                "no connection to "
                        + where()
                        + " within "
                        + timeoutMillis
                        + " ms (server_connect_timeout)");
    }

    private void answered(OwnQuery.Answer answer) {
        ErrorResponse error = answer.error();
        if (error != null) {
            String s = error.sqlState();
            fail(
                    s.startsWith("08") || s.startsWith("57P")
                            ? SqlState.CONNECTION_FAILURE
                            : SqlState.INVALID_AUTHORIZATION_SPECIFICATION,
                    "auth_query failed on " + where() + ": " + error);
            return;
        }
        try {
            result.complete(secretFrom(answer.firstRow()));
        } catch (AuthQueryException e) {
            result.completeExceptionally(e);
        }
    }

    private String where() {
        return "database \"" + key.database() + "\" as \"" + settings.user() + "\" on " + backend;
    }

    private void fail(String sqlState, String message) {
        result.completeExceptionally(new AuthQueryException(sqlState, message));
    }
}
