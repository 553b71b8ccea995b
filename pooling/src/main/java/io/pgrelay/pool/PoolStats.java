package io.pgrelay.pool;

/**
 * A consistent snapshot of one pool (taken under its lock).
 *
 * @param active connections leased to clients
 * @param idle connections ready for reuse
 * @param connecting connects in flight
 * @param waiting clients queued for a connection
 * @param maxWaitNanos how long the oldest queued client has waited, 0 if none
 * @param total active + idle + connecting: what counts against the pool limit
 * @param connectsStarted cumulative connect attempts
 * @param connectsFailed cumulative failed connect attempts
 * @param waitTimeouts cumulative clients failed with WAIT_TIMEOUT
 * @param leases cumulative connection assignments to clients (a grant refused by a departed waiter
 *     counts too)
 * @param totalWaitNanos cumulative wait of the clients that got a connection (avg_wait_time =
 *     totalWaitNanos / leases)
 */
public record PoolStats(
        int active,
        int idle,
        int connecting,
        int waiting,
        long maxWaitNanos,
        int total,
        long connectsStarted,
        long connectsFailed,
        long waitTimeouts,
        long leases,
        long totalWaitNanos) {}
