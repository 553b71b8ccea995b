package io.pgrelay.proxy;

import io.pgrelay.session.SessionState;

/**
 * One transaction-mode client's pins, counted where they are limited and watched: in the pool
 * (connections pinned, and session checks in flight that may pin: max_pinned_connections) and in
 * the metrics (pgrelay_pinned_clients by reason). Runs on the client's event loop.
 */
final class SessionPins {

    private final SessionState state;
    private final ProxyMetrics metrics;

    /** The pool counting this client's pinned connection; null while not pinned. */
    private ServerPool pinnedIn;

    /** The pool counting this client's check in flight as a possible pin; null when none is. */
    private ServerPool checkingIn;

    SessionPins(SessionState state, ProxyMetrics metrics) {
        this.state = state;
        this.metrics = metrics;
    }

    /** A session check goes out on a connection of {@code pool}; returns what it reads. */
    SessionState.Check checkSent(ServerPool pool) {
        if (pinnedIn == null) {
            checkingIn = pool;
            pool.pinCheckStarted();
        }
        return state.checkSent();
    }

    /**
     * Whether pinning in {@code pool} now might go over {@code max}: the client must hear first.
     */
    boolean mayNotPin(ServerPool pool, int max) {
        return pinnedIn == null && pool.pinsMayReach(max);
    }

    /**
     * The check's answer: the client's pins are {@code pins} now. False if that would pin one
     * connection of {@code pool} more than {@code max} allows; nothing is pinned then.
     */
    boolean update(ServerPool pool, int pins, int max) {
        checkDone();
        if (pins != 0 && pinnedIn == null) {
            if (!pool.tryPin(max)) {
                return false;
            }
            pinnedIn = pool;
        } else if (pins == 0 && pinnedIn != null) {
            pinnedIn.unpin();
            pinnedIn = null;
        }
        metrics.pinsChanged(state.checked(pins), pins);
        return true;
    }

    /** The client's pins are gone with it or with its server connection. */
    void drop() {
        checkDone();
        metrics.pinsChanged(state.checked(0), 0);
        if (pinnedIn != null) {
            pinnedIn.unpin();
            pinnedIn = null;
        }
    }

    private void checkDone() {
        if (checkingIn != null) {
            checkingIn.pinCheckEnded();
            checkingIn = null;
        }
    }
}
