package io.pgrelay.pool;

/**
 * A client waiting for a server connection. Exactly one of {@link #granted} or {@link #failed} is
 * called per {@link Pool#acquire}, unless {@link Pool#cancel} returned true. Both run outside the
 * pool lock, on whichever thread released, connected or ran maintenance: they must not block, and
 * {@code granted} should hand the connection over to the client's own thread rather than releasing
 * it inline (an inline release recurses straight into the next waiter's {@code granted}).
 */
public interface Waiter<C extends Poolable> {

    /** Preferred location of the connection, e.g. the client's event loop; null = no preference. */
    Object affinity();

    /**
     * The connection is now leased to this waiter. Return false if the waiter is already gone; the
     * pool then takes the connection back exactly as if it had been released.
     */
    boolean granted(C connection);

    /** The wait ended without a connection: wait timeout, connect failure or pool closed. */
    void failed(PoolException e);
}
