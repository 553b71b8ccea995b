package io.pgrelay.proxy;

import io.pgrelay.protocol.LogSafe;
import io.pgrelay.routing.Backend;
import io.pgrelay.routing.Role;

/**
 * One pool per database and user, as PgBouncer keys its pools, per backend and per role: a primary
 * that also takes reads (fallback) keeps its write and read connections apart, so a role change
 * retires exactly the connections that no longer fit.
 */
record PoolKey(String database, String user, Backend backend, Role role) {

    /**
     * For logs (it names the pool in every Pool log line): the client-chosen names quoted by {@link
     * LogSafe}.
     */
    @Override
    public String toString() {
        return LogSafe.quote(database)
                + "/"
                + LogSafe.quote(user)
                + "@"
                + backend
                + "/"
                + role.label();
    }
}
