package io.pgrelay.routing;

import java.util.Optional;

/**
 * Chooses the backend for the next server connection lease. Called once per transaction in
 * transaction mode (once per client in session mode), from any event-loop thread, so
 * implementations must be cheap and thread-safe.
 */
public interface Router {

    /** The backend to use now for {@code role}, or empty when none is available. */
    Optional<Backend> route(Role role);

    /**
     * Whether a server connection to {@code backend} may still serve {@code role} (role changes
     * retire pools).
     */
    default boolean stillServes(Backend backend, Role role) {
        return true;
    }
}
