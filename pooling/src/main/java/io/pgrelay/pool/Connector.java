package io.pgrelay.pool;

import java.util.concurrent.CompletableFuture;

/** Opens server connections for a pool. */
public interface Connector<C extends Poolable> {

    /**
     * Starts opening a connection, preferably on {@code affinity} (the waiter's event loop; null =
     * anywhere). The future may complete on any thread, even before this method returns, with a
     * logged-in connection or exceptionally. Throwing instead of returning a failed future is
     * tolerated.
     */
    CompletableFuture<C> connect(Object affinity);

    /**
     * True when the connector logs its failed connects itself (e.g. once per unreachable server
     * rather than once per attempt): the pool then logs each failure at DEBUG only, not WARN.
     */
    default boolean reportsFailures() {
        return false;
    }
}
