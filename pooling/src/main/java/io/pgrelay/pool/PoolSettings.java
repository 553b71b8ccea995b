package io.pgrelay.pool;

import java.time.Duration;
import java.util.Objects;

/**
 * Limits and timeouts of one pool, named after their PgBouncer counterparts in validation messages.
 *
 * @param poolSize default_pool_size: connections (leased + idle + connecting) normally allowed
 * @param minPoolSize min_pool_size: connections kept open even when idle
 * @param reservePoolSize reserve_pool_size: extra connections allowed once a client waited
 *     reservePoolTimeout
 * @param reservePoolTimeout reserve_pool_timeout
 * @param queryWaitTimeout query_wait_timeout: longest wait for a connection; ZERO = wait forever
 * @param idleTimeout server_idle_timeout: idle connections above minPoolSize are closed after this;
 *     ZERO = never
 * @param lifetime server_lifetime: connections are closed at their first idle moment after this;
 *     ZERO = never
 */
public record PoolSettings(
        int poolSize,
        int minPoolSize,
        int reservePoolSize,
        Duration reservePoolTimeout,
        Duration queryWaitTimeout,
        Duration idleTimeout,
        Duration lifetime) {

    public PoolSettings {
        if (poolSize < 1) {
            throw new IllegalArgumentException(
                    "default_pool_size must be >= 1 (got " + poolSize + ")");
        }
        if (minPoolSize < 0) {
            throw new IllegalArgumentException(
                    "min_pool_size must be >= 0 (got " + minPoolSize + ")");
        }
        if (minPoolSize > poolSize) {
            throw new IllegalArgumentException(
                    "min_pool_size must be <= default_pool_size (got "
                            + minPoolSize
                            + " > "
                            + poolSize
                            + ")");
        }
        if (reservePoolSize < 0) {
            throw new IllegalArgumentException(
                    "reserve_pool_size must be >= 0 (got " + reservePoolSize + ")");
        }
        checkDuration("reserve_pool_timeout", reservePoolTimeout);
        checkDuration("query_wait_timeout", queryWaitTimeout);
        checkDuration("server_idle_timeout", idleTimeout);
        checkDuration("server_lifetime", lifetime);
    }

    /** Hard cap on connections: poolSize plus the reserve. */
    public int maxPoolSize() {
        return poolSize + reservePoolSize;
    }

    private static void checkDuration(String setting, Duration value) {
        Objects.requireNonNull(value, setting + " must not be null");
        if (value.isNegative()) {
            throw new IllegalArgumentException(setting + " must be >= 0 (got " + value + ")");
        }
    }
}
