package io.pgrelay.routing;

import java.util.function.Consumer;

/**
 * Follows a cluster's DCS and reports every change of its {@link Topology}.
 *
 * <p>Implementations call the listener from one thread at a time, in order, never concurrently; a
 * slow listener delays the following updates, so it should only swap snapshots and wake waiters.
 */
public interface TopologySource extends AutoCloseable {

    /** Starts following; the listener receives the first topology once the first read completes. */
    void start(Consumer<Topology> listener);

    /** The latest topology ({@link Topology#empty()} before the first successful read). */
    Topology current();

    /** Stops following and releases connections and threads. Idempotent. */
    @Override
    void close();
}
