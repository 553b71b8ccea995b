package io.pgrelay.proxy;

import io.pgrelay.pool.Pool;
import java.util.Map;
import java.util.concurrent.atomic.LongAdder;

/**
 * A {@link Pool} of server connections for one {@link PoolKey}, plus what pgrelay learnt from
 * the first login to it: the ParameterStatus values new clients are greeted with (server
 * version, encoding, defaults), as PgBouncer keeps a per-pool "welcome" message.
 */
final class ServerPool {

    private final PoolKey key;
    private final Pool<ServerConnection> pool;
    private volatile Map<String, String> welcome;

    // PgBouncer's statement counters (SHOW STATS): Parse messages from clients, Parse messages
    // sent to servers (a mapped statement is prepared once per server connection), Binds.
    final LongAdder clientParses = new LongAdder();
    final LongAdder serverParses = new LongAdder();
    final LongAdder binds = new LongAdder();

    ServerPool(PoolKey key, Pool<ServerConnection> pool) {
        this.key = key;
        this.pool = pool;
    }

    PoolKey key() {
        return key;
    }

    Pool<ServerConnection> pool() {
        return pool;
    }

    /** Login ParameterStatus values, or null until a server connection has logged in. */
    Map<String, String> welcome() {
        return welcome;
    }

    void learnWelcome(ServerConnection conn) {
        if (welcome == null) {
            welcome = Map.copyOf(conn.loginParameters);
        }
    }
}
