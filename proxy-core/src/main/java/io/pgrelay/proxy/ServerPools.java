package io.pgrelay.proxy;

import io.pgrelay.pool.Pool;
import io.pgrelay.routing.Backend;
import io.pgrelay.routing.Role;
import java.util.Collection;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Every pool pgrelay has opened, created on first use of a (database, user, backend). */
final class ServerPools {

    private static final Logger log = LoggerFactory.getLogger(ServerPools.class);

    private final PgRelay relay;
    private final Map<PoolKey, ServerPool> pools = new ConcurrentHashMap<>();

    ServerPools(PgRelay relay) {
        this.relay = relay;
    }

    ServerPool pool(String database, String user, Backend backend, Role role) {
        PoolKey key = new PoolKey(database, user, backend, role);
        ServerPool existing = pools.get(key);
        return existing != null ? existing : pools.computeIfAbsent(key, k -> create(k, role));
    }

    private ServerPool create(PoolKey key, Role role) {
        ServerPool[] self = new ServerPool[1];
        Pool<ServerConnection> pool = new Pool<>(key.toString(), relay.config().poolSettings(),
                affinity -> ServerConnection.open(relay, self[0], affinity), System::nanoTime);
        self[0] = new ServerPool(key, pool);
        relay.metrics().registerPool(self[0]);
        log.info("pool {}: database \"{}\" user \"{}\" on {} backend {} (pool_size {}, {} mode)", key,
                key.database(), key.user(), role.label(), key.backend(), relay.config().poolSettings().poolSize(),
                relay.config().poolMode().name().toLowerCase());
        return self[0];
    }

    /**
     * A pool of this database and user that already knows what to greet clients with, one of
     * the same role first (its in_hot_standby is the one the client should see), or null.
     */
    ServerPool withWelcome(String database, String user, Role role) {
        ServerPool other = null;
        for (ServerPool p : pools.values()) {
            if (p.welcome() != null && p.key().database().equals(database) && p.key().user().equals(user)) {
                if (p.role() == role) {
                    return p;
                }
                other = p;
            }
        }
        return other;
    }

    Collection<ServerPool> all() {
        return pools.values();
    }

    void maintain() {
        for (ServerPool p : pools.values()) {
            p.pool().maintain();
        }
    }

    void close(String reason) {
        for (ServerPool p : pools.values()) {
            p.pool().close(reason);
        }
    }
}
