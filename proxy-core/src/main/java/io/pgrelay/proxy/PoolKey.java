package io.pgrelay.proxy;

import io.pgrelay.protocol.LogSafe;
import io.pgrelay.routing.Backend;
import io.pgrelay.routing.Role;
import java.util.Map;

/**
 * One pool per database and user, as PgBouncer keys its pools, per backend and per role: a primary
 * that also takes reads (fallback) keeps its write and read connections apart, so a role change
 * retires exactly the connections that no longer fit.
 *
 * <p>And per set of startup parameters the server connections log in with: in session mode a
 * client's server connection is opened with the client's own startup parameters, so that RESET,
 * RESET ALL and DISCARD ALL return to the client's values, and a connection opened for one set must
 * never serve a client asking for another. Empty in transaction mode. Interned maps
 * (SessionParameters.intern), compared by value.
 */
record PoolKey(
        String database, String user, Map<String, String> parameters, Backend backend, Role role) {

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
                + role.label()
                + (parameters.isEmpty()
                        ? ""
                        : "/"
                                + parameters.size()
                                + " startup parameters #"
                                + Integer.toHexString(parameters.hashCode()));
    }
}
