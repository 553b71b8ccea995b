package io.pgrelay.proxy;

import io.pgrelay.routing.Backend;

/** One pool per database, user and backend, as PgBouncer keys its pools (plus the backend). */
record PoolKey(String database, String user, Backend backend) {

    @Override
    public String toString() {
        return database + "/" + user + "@" + backend;
    }
}
