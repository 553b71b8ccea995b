package io.pgrelay.proxy;

import io.pgrelay.pool.Pool;
import io.pgrelay.pool.PoolException;
import io.pgrelay.pool.Waiter;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

/**
 * What a pool's new clients are greeted with: the ParameterStatus values a server login reports
 * (server version, encoding, the defaults a new session gets), like PgBouncer's per-pool "welcome",
 * except that it is never older than the client it greets.
 *
 * <p>Why not learn it once: a database's or role's settings ({@code ALTER DATABASE/ROLE ... SET}, a
 * reload of postgresql.conf, a database dropped and created again) change what the server reports
 * to a new session, while sessions already logged in keep their old defaults. So every login
 * refreshes the welcome (newest start wins), and a client is greeted only with a welcome known to
 * be valid since it connected ({@link #since}):
 *
 * <ul>
 *   <li>from a login that started after the client connected; or
 *   <li>from an older login confirmed by a <em>check</em> that started after the client connected:
 *       one query on a pooled connection reading what a new session's defaults depend on ({@link
 *       ServerConnection#FINGERPRINT}: the database's and role's settings, the configuration's load
 *       time). The same fingerprint as at the welcome's login means the same welcome. A different
 *       one (or a check that cannot run) asks the pool for a fresh login ({@link Pool#refresh}),
 *       within its limits.
 * </ul>
 *
 * <p>Checks and logins are coalesced: one in flight at a time serves every client that connected
 * before it started, so a connection storm costs a check per round trip, not a login per client.
 *
 * <p>A login's fingerprint is read just after it logged in, so it can be newer than the values the
 * server gave that login: an ALTER DATABASE committed between the two would pair the old values
 * with the new fingerprint, and every later check would confirm the stale welcome. So a login's
 * fingerprint vouches for its values only when the same fingerprint had already been read before
 * the login started (nothing changed in between); otherwise the welcome has none, and the next
 * client that needs a fresher welcome gets a login instead of a check.
 */
final class PoolWelcome {

    /**
     * What a login reported, when it started, since when it is known valid, and its fingerprint.
     */
    private record Welcome(
            Map<String, String> values,
            long startedNanos,
            long validSinceNanos,
            String fingerprint) {}

    /** A client waiting to be greeted with a welcome valid since sinceNanos. */
    private record Wait(
            long sinceNanos, long askedNanos, CompletableFuture<Map<String, String>> future) {}

    private enum Next {
        NOTHING,
        CHECK,
        LOGIN,
        /** Greet the waits with the welcome as it is. */
        STALE
    }

    private final ServerPool owner;
    private volatile Welcome welcome;

    // Guarded by this (logins and checks are rare next to queries; a monitor is plenty).
    private final List<Wait> waits = new ArrayList<>();
    private boolean loginAsked;
    private int loginsInFlight;
    private boolean checkInFlight;
    private long checkStart;

    /** The newest fingerprint read (by a login or a check), and when that read had completed. */
    private String seenFingerprint;

    private long seenAtNanos;

    PoolWelcome(ServerPool owner) {
        this.owner = owner;
    }

    /** The newest login's values, or null until a server connection has logged in. */
    Map<String, String> values() {
        Welcome w = welcome;
        return w == null ? null : w.values();
    }

    /** The welcome if it is known valid since {@code sinceNanos}, else null. */
    Map<String, String> since(long sinceNanos) {
        Welcome w = welcome;
        return w != null && w.validSinceNanos() - sinceNanos >= 0 ? w.values() : null;
    }

    /**
     * A welcome valid since {@code sinceNanos}: at once if there is one, else when a check or login
     * that started late enough completes. Fails with a login's error (CONNECT_FAILED), CLOSED when
     * the pool closed, WAIT_TIMEOUT after query_wait_timeout ({@link #expireWaits}).
     */
    CompletableFuture<Map<String, String>> await(long sinceNanos) {
        Map<String, String> valid = since(sinceNanos);
        if (valid != null) {
            return CompletableFuture.completedFuture(valid);
        }
        CompletableFuture<Map<String, String>> future = new CompletableFuture<>();
        Next next;
        synchronized (this) {
            valid = since(sinceNanos);
            if (valid != null) {
                return CompletableFuture.completedFuture(valid);
            }
            waits.add(new Wait(sinceNanos, System.nanoTime(), future));
            next = next();
        }
        run(next);
        return future;
    }

    /** A login of this pool starts now (before its connect). */
    synchronized void loginStarted(long startedNanos) {
        loginAsked = false; // the pool started a connect: that was it, or one as good
        loginsInFlight++;
    }

    /** A login that started at {@code startedNanos} completed: newest start wins the welcome. */
    void loggedIn(ServerConnection conn, long startedNanos) {
        List<Wait> served;
        Map<String, String> values;
        Next next;
        synchronized (this) {
            Welcome w = welcome;
            String read = conn.loginFingerprint();
            String vouched =
                    read != null && read.equals(seenFingerprint) && startedNanos - seenAtNanos > 0
                            ? read
                            : null;
            seen(read);
            if (w == null || startedNanos - w.startedNanos() >= 0) {
                // Keep the same map while nothing changed: clients' interned values stay shared.
                Map<String, String> reported = conn.loginParameters;
                welcome =
                        new Welcome(
                                w != null && w.values().equals(reported)
                                        ? w.values()
                                        : Collections.unmodifiableMap(
                                                new LinkedHashMap<>(reported)),
                                startedNanos,
                                startedNanos,
                                vouched);
            }
            values = welcome.values();
            served = takeWaits(welcome.validSinceNanos());
            loginsInFlight--;
            next = next();
        }
        served.forEach(wait -> wait.future().complete(values));
        run(next);
    }

    /**
     * A login that started at {@code startedNanos} failed: the clients it was to greet get its
     * error, as they would have logging in directly; later ones get a login of their own.
     */
    void loginFailed(long startedNanos, Throwable cause) {
        List<Wait> failed;
        Next next;
        synchronized (this) {
            failed = takeWaits(startedNanos);
            loginsInFlight--;
            next = next();
        }
        if (!failed.isEmpty()) {
            PoolException e =
                    new PoolException(
                            PoolException.Reason.CONNECT_FAILED,
                            "pool " + owner.key() + ": server connection failed: " + cause,
                            cause);
            failed.forEach(wait -> wait.future().completeExceptionally(e));
        }
        run(next);
    }

    /**
     * The janitor: clients waiting longer than {@code timeoutNanos} (every connection of a full
     * pool leased, none released) give up, as they would waiting for a server connection; what is
     * still needed is asked for again (a closed pool fails the waits).
     */
    void expireWaits(long now, long timeoutNanos) {
        List<Wait> expired = new ArrayList<>();
        Next next;
        synchronized (this) {
            if (waits.isEmpty()) {
                return;
            }
            for (Iterator<Wait> it = waits.iterator(); it.hasNext(); ) {
                Wait wait = it.next();
                if (wait.future().isDone()
                        || (timeoutNanos > 0 && now - wait.askedNanos() >= timeoutNanos)) {
                    it.remove();
                    expired.add(wait);
                }
            }
            next = next();
        }
        PoolException e =
                new PoolException(
                        PoolException.Reason.WAIT_TIMEOUT,
                        "pool "
                                + owner.key()
                                + ": no fresh server login within query_wait_timeout");
        expired.forEach(wait -> wait.future().completeExceptionally(e));
        run(owner.pool().isClosed() && next == Next.NOTHING ? Next.LOGIN : next);
    }

    /** A fingerprint read has just completed. Under this. */
    private void seen(String fingerprint) {
        if (fingerprint != null) {
            seenFingerprint = fingerprint;
            seenAtNanos = System.nanoTime();
        }
    }

    /** Takes the waits a welcome valid since {@code validSince} answers. Under this. */
    private List<Wait> takeWaits(long validSince) {
        if (waits.isEmpty()) {
            return List.of();
        }
        List<Wait> taken = new ArrayList<>();
        for (Iterator<Wait> it = waits.iterator(); it.hasNext(); ) {
            Wait wait = it.next();
            if (validSince - wait.sinceNanos() >= 0) {
                it.remove();
                taken.add(wait);
            }
        }
        return taken;
    }

    /**
     * What the waits need next, marking it started: nothing while a login or check in flight may
     * still serve them (its completion decides again); a check when a welcome with a fingerprint
     * exists; else a login. Under this.
     */
    private Next next() {
        // A wait still here with nothing in flight is served by nothing: a login that started
        // after it and succeeded would have taken it, and a failed or unrelated one does not count.
        if (loginAsked || loginsInFlight > 0 || checkInFlight || waits.isEmpty()) {
            return Next.NOTHING;
        }
        Welcome w = welcome;
        if (w != null && owner.pool().isSaturated()) {
            // Every connection is held (session mode, pinned clients, long transactions): a check
            // would make this login wait for someone else's transaction. Greet with the newest
            // welcome, as PgBouncer always does; the next client with a free connection checks.
            return Next.STALE;
        }
        if (w != null && w.fingerprint() != null && !owner.pool().isClosed()) {
            checkInFlight = true;
            checkStart = System.nanoTime();
            return Next.CHECK;
        }
        loginAsked = true;
        return Next.LOGIN;
    }

    private void run(Next next) {
        switch (next) {
            case CHECK -> check();
            case LOGIN -> login();
            case STALE -> greetAsIs();
            case NOTHING -> {}
        }
    }

    /** Runs the fingerprint query on a pooled connection, as a waiter of the pool like clients. */
    private void check() {
        long started;
        synchronized (this) {
            started = checkStart;
        }
        owner.pool()
                .acquire(
                        new Waiter<>() {
                            @Override
                            public Object affinity() {
                                return null;
                            }

                            @Override
                            public boolean granted(ServerConnection conn) {
                                CompletableFuture<String> answer;
                                try {
                                    answer = conn.fingerprint();
                                } catch (RuntimeException e) {
                                    owner.pool().discard(conn, "check failed: " + e);
                                    checked(started, null);
                                    return true;
                                }
                                answer.whenComplete(
                                        (fingerprint, error) -> {
                                            if (conn.isUsable()) {
                                                owner.pool().release(conn);
                                            } else {
                                                owner.pool().discard(conn, "closed during a check");
                                            }
                                            checked(started, fingerprint);
                                        });
                                return true;
                            }

                            @Override
                            public void failed(PoolException e) {
                                checked(started, null);
                            }
                        });
    }

    /**
     * A check that started at {@code started} read {@code fingerprint} (null: it could not). The
     * same as the welcome's means a login now would report the same: the welcome is valid since
     * then. Anything else asks for a login.
     */
    private void checked(long started, String fingerprint) {
        List<Wait> served = List.of();
        Map<String, String> values = null;
        Next next;
        synchronized (this) {
            checkInFlight = false;
            seen(fingerprint);
            Welcome w = welcome;
            if (fingerprint != null && w != null && fingerprint.equals(w.fingerprint())) {
                if (started - w.validSinceNanos() > 0) {
                    w = new Welcome(w.values(), w.startedNanos(), started, w.fingerprint());
                    welcome = w;
                }
                values = w.values();
                served = takeWaits(w.validSinceNanos());
                next = next();
            } else if (loginsInFlight == 0 && !loginAsked) {
                loginAsked = true;
                next = Next.LOGIN;
            } else {
                next = Next.NOTHING; // the login in flight decides again when it completes
            }
        }
        Map<String, String> greeting = values;
        served.forEach(wait -> wait.future().complete(greeting));
        run(next);
    }

    private void greetAsIs() {
        List<Wait> served;
        Map<String, String> values;
        synchronized (this) {
            served = new ArrayList<>(waits);
            waits.clear();
            values = welcome.values();
        }
        served.forEach(wait -> wait.future().complete(values));
    }

    private void login() {
        if (owner.pool().refresh()) {
            return;
        }
        // Closed: the clients ask again and get the pool's successor (ServerPools.wasRemoved).
        List<Wait> failed;
        synchronized (this) {
            failed = new ArrayList<>(waits);
            waits.clear();
            loginAsked = false;
        }
        PoolException e =
                new PoolException(
                        PoolException.Reason.CLOSED, "pool " + owner.key() + " is closed");
        failed.forEach(wait -> wait.future().completeExceptionally(e));
    }
}
