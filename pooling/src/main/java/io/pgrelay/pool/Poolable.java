package io.pgrelay.pool;

/**
 * A server connection as the pool sees it. The pool keeps its own bookkeeping (creation time, last
 * use, generation, leased or idle) beside the connection, so implementations carry no pool state.
 */
public interface Poolable {

    /**
     * Closes the connection. Must be idempotent and non-blocking; the pool calls it outside its
     * lock.
     */
    void close(String reason);

    /**
     * False once the connection is broken, so the pool drops it instead of reusing it. Called under
     * the pool lock, hence it must be a cheap non-blocking read (for example {@code
     * Channel.isActive()}).
     */
    boolean isUsable();

    /**
     * Where the connection lives, e.g. its event loop; may be null. Read once when the connection
     * enters the pool, so it must not change afterwards.
     */
    Object affinity();
}
