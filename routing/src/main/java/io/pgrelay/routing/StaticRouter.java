package io.pgrelay.routing;

import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Routing for users without Patroni: a fixed primary, and a fixed list of replicas taken in turn.
 * Reads fall back to the primary when the list is empty.
 */
public final class StaticRouter implements Router {

    private final Backend primary;
    private final List<Backend> replicas;
    private final AtomicInteger next = new AtomicInteger();

    public StaticRouter(Backend primary, List<Backend> replicas) {
        this.primary = primary;
        this.replicas = List.copyOf(replicas);
    }

    @Override
    public Optional<Backend> route(Role role) {
        if (role == Role.PRIMARY || replicas.isEmpty()) {
            return Optional.of(primary);
        }
        // floorMod keeps the index valid after the counter wraps past Integer.MAX_VALUE
        return Optional.of(replicas.get(Math.floorMod(next.getAndIncrement(), replicas.size())));
    }

    public Backend primary() {
        return primary;
    }

    public List<Backend> replicas() {
        return replicas;
    }
}
