package io.pgrelay.proxy;

import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Connection slots, counted apart for connections still logging in ({@code
 * limits.max_login_clients}) and logged-in clients ({@code max_client_conn}).
 *
 * <p>PgBouncer counts both against max_client_conn, so a few thousand idle TCP connections lock
 * every login out until client_login_timeout. Here they can only fill the login slots, and when
 * those are full a new connection takes the slot of the oldest one that has been logging in for
 * over a second: a real client logs in within milliseconds, so an attacker would need to open
 * connections faster than that to keep one out. Only when no login is that old is the new
 * connection refused.
 */
final class ClientSlots {

    private static final Logger log = LoggerFactory.getLogger(ClientSlots.class);
    private static final long STALE_LOGIN_NANOS = TimeUnit.SECONDS.toNanos(1);
    private static final long WARN_EVERY_NANOS = TimeUnit.SECONDS.toNanos(10);

    private final AtomicInteger loggingIn = new AtomicInteger();
    private final AtomicInteger loggedIn = new AtomicInteger();

    /** Connections logging in, oldest first. */
    private final ConcurrentLinkedDeque<ClientSession> logins = new ConcurrentLinkedDeque<>();

    private final AtomicLong lastWarning = new AtomicLong(System.nanoTime() - WARN_EVERY_NANOS);
    private final AtomicLong evicted = new AtomicLong();
    private final AtomicLong refused = new AtomicLong();

    /** A new connection; false when it may not log in now (the login slots are full). */
    boolean startLogin(ClientSession session, int maxLoginClients) {
        logins.add(session);
        if (loggingIn.incrementAndGet() <= maxLoginClients) {
            return true;
        }
        long now = System.nanoTime();
        for (ClientSession oldest : logins) {
            if (now - oldest.connectedAtNanos() < STALE_LOGIN_NANOS) {
                break;
            }
            if (logins.remove(oldest)) {
                evicted.incrementAndGet();
                warn(maxLoginClients, "closing the oldest to make room");
                oldest.disconnectIfLoggingIn(
                        "53300",
                        "too many connections are logging in (limits.max_login_clients);"
                                + " this one took too long");
                return true;
            }
        }
        refused.incrementAndGet();
        warn(maxLoginClients, "refusing new connections");
        return false;
    }

    /** The connection finished logging in, or went away before it did. */
    void endLogin(ClientSession session) {
        logins.remove(session);
        loggingIn.decrementAndGet();
    }

    /** A client finished logging in; false when max_client_conn clients are already in. */
    boolean addClient(int maxClientConn) {
        if (loggedIn.incrementAndGet() <= maxClientConn) {
            return true;
        }
        loggedIn.decrementAndGet();
        return false;
    }

    void removeClient() {
        loggedIn.decrementAndGet();
    }

    int clients() {
        return loggedIn.get();
    }

    int loggingIn() {
        return loggingIn.get();
    }

    private void warn(int max, String action) {
        long now = System.nanoTime();
        long last = lastWarning.get();
        if (now - last >= WARN_EVERY_NANOS && lastWarning.compareAndSet(last, now)) {
            log.warn(
                    "{} connections are logging in, more than limits.max_login_clients ({}): {}; so far {} closed"
                            + " for taking over a second, {} refused (idle or half-open connections?)",
                    loggingIn.get(),
                    max,
                    action,
                    evicted.get(),
                    refused.get());
        }
    }
}
