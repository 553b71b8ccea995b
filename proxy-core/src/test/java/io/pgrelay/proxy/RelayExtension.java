package io.pgrelay.proxy;

import io.pgrelay.testkit.PatroniCluster;
import io.pgrelay.testkit.PgServer;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.function.Supplier;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * The servers a proxy integration test class runs against, started once before its tests and closed
 * after them: a real PostgreSQL primary (with a streaming replica if asked) or a Patroni cluster,
 * and, if asked, a pgrelay in front of it ({@link RelayFixture}).
 *
 * <pre>{@code
 * @RegisterExtension
 * static final RelayExtension pg =
 *         RelayExtension.postgres().withRelay(b -> b.set("pool.default_pool_size", 4));
 *
 * @Test
 * void works() throws Exception {
 *     try (Connection c = pg.relay().app()) { ... }
 * }
 * }</pre>
 *
 * <p>Tests that start their own relays per test register {@code RelayExtension.postgres()} alone
 * and use {@link #primary()}. What a class sets up on top (tables, a connection held for the whole
 * class) goes in its own {@code @BeforeAll}, which JUnit runs after this extension's {@code
 * beforeAll}; its {@code @AfterAll} runs before this extension closes anything.
 *
 * <p>Closing is in reverse order of starting (relay, replica, primary or cluster) and happens even
 * when starting failed part way; every close is attempted, failures are reported together.
 */
final class RelayExtension implements BeforeAllCallback, AfterAllCallback {

    private final Supplier<PatroniCluster> patroni;
    private boolean withReplica;
    private UnaryOperator<RelayFixture.Builder> relaySettings;

    private final Deque<AutoCloseable> started = new ArrayDeque<>();
    private PgServer primary;
    private PgServer replica;
    private PatroniCluster cluster;
    private RelayFixture relay;

    private RelayExtension(Supplier<PatroniCluster> patroni) {
        this.patroni = patroni;
    }

    /** A PostgreSQL primary ({@link PgServer#startPrimary()}). */
    static RelayExtension postgres() {
        return new RelayExtension(null);
    }

    /** A Patroni cluster on etcd ({@link PatroniCluster#start(String)}) with this scope. */
    static RelayExtension patroni(String scope) {
        return new RelayExtension(() -> PatroniCluster.start(scope));
    }

    /** Also a streaming replica of the primary; a relay gets it as {@code backends.replicas}. */
    RelayExtension withReplica() {
        if (patroni != null) {
            throw new IllegalStateException("a Patroni cluster has its own replicas");
        }
        withReplica = true;
        return this;
    }

    /** A relay with the test defaults of {@link RelayFixture}. */
    RelayExtension withRelay() {
        return withRelay(UnaryOperator.identity());
    }

    /**
     * A relay in front of the servers: {@link RelayFixture#builder} (with the replica, if any) or
     * {@link RelayFixture#patroni}, then {@code settings}.
     */
    RelayExtension withRelay(UnaryOperator<RelayFixture.Builder> settings) {
        relaySettings = settings;
        return this;
    }

    @Override
    public void beforeAll(ExtensionContext context) {
        if (patroni != null) {
            cluster = started(patroni.get());
        } else {
            primary = started(PgServer.startPrimary());
            if (withReplica) {
                replica = started(primary.startReplica());
            }
        }
        if (relaySettings != null) {
            RelayFixture.Builder builder;
            if (cluster != null) {
                builder = RelayFixture.patroni(cluster);
            } else {
                builder = RelayFixture.builder(primary);
                if (replica != null) {
                    builder.replicas(replica);
                }
            }
            relay = started(relaySettings.apply(builder).start());
        }
    }

    private <T extends AutoCloseable> T started(T resource) {
        started.push(resource);
        return resource;
    }

    @Override
    public void afterAll(ExtensionContext context) throws Exception {
        Exception failure = null;
        while (!started.isEmpty()) {
            try {
                started.pop().close();
            } catch (Exception e) {
                if (failure == null) {
                    failure = e;
                } else {
                    failure.addSuppressed(e);
                }
            }
        }
        relay = null;
        replica = null;
        primary = null;
        cluster = null;
        if (failure != null) {
            throw failure;
        }
    }

    PgServer primary() {
        return running(primary, "primary");
    }

    PgServer replica() {
        return running(replica, "replica");
    }

    PatroniCluster cluster() {
        return running(cluster, "Patroni cluster");
    }

    RelayFixture relay() {
        return running(relay, "relay");
    }

    private static <T> T running(T resource, String what) {
        if (resource == null) {
            throw new IllegalStateException(
                    "no " + what + " running: not asked for, or outside the test class's lifetime");
        }
        return resource;
    }
}
