package io.pgrelay.bench;

import io.pgrelay.routing.Backend;
import io.pgrelay.routing.Member;
import io.pgrelay.routing.PatroniRouter;
import io.pgrelay.routing.Role;
import io.pgrelay.routing.Router;
import io.pgrelay.routing.StaticRouter;
import io.pgrelay.routing.Topology;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

/**
 * {@link Router#route} for the write and the read port, on a {@link PatroniRouter} following a
 * healthy 3-member Patroni cluster and on a {@link StaticRouter} with the same addresses.
 *
 * <p>In transaction mode the router is asked once per transaction, on the client's event loop,
 * before the pool lease: it must stay a few nanoseconds. PatroniRouter's hot path is one volatile
 * read of an immutable snapshot (plus, for reads, one shared atomic increment for round robin);
 * StaticRouter is the baseline without Patroni. Replica routing is where the two differ: both
 * rotate over two replicas with an {@code AtomicInteger}.
 *
 * <p>The topology is what {@code EtcdTopologySource} publishes for a Patroni 3.x cluster: leader
 * {@code pg-1} (role {@code master}, running, timeline 4) and replicas {@code pg-2}, {@code pg-3}
 * (running, a few KB behind), status optime known, no switchover pending; the router allows 16 MB
 * of replica lag and falls back to the primary for reads, and the leader has been confirmed
 * writable (as after a successful {@code in_hot_standby=off} probe). {@code @Setup} checks that
 * writes route to the leader and reads rotate over both replicas.
 *
 * <p>The benchmarks unwrap the {@code Optional} and sink the {@link Backend}, as the relay's
 * callers do right away, so escape analysis may remove the {@code Optional} the way it can in the
 * relay.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(2)
@Threads(1)
@State(Scope.Benchmark)
public class RouterBenchmark {

    static final Backend PG1 = new Backend("10.20.0.11", 5432);
    static final Backend PG2 = new Backend("10.20.0.12", 5432);
    static final Backend PG3 = new Backend("10.20.0.13", 5432);

    PatroniRouter patroni;
    StaticRouter fixed;

    @Setup(Level.Trial)
    public void setUp() {
        long optime = 0x3_0A00_1F28L;
        Topology topology =
                new Topology(
                        Map.of(
                                "pg-1",
                                        new Member(
                                                "pg-1",
                                                PG1,
                                                Member.ROLE_MASTER,
                                                Member.STATE_RUNNING,
                                                4,
                                                optime,
                                                false,
                                                false),
                                "pg-2",
                                        new Member(
                                                "pg-2",
                                                PG2,
                                                Member.ROLE_REPLICA,
                                                Member.STATE_RUNNING,
                                                4,
                                                optime - 4_096,
                                                false,
                                                false),
                                "pg-3",
                                        new Member(
                                                "pg-3",
                                                PG3,
                                                Member.ROLE_REPLICA,
                                                Member.STATE_RUNNING,
                                                4,
                                                optime - 12_288,
                                                false,
                                                false)),
                        "pg-1",
                        optime,
                        false,
                        true,
                        Instant.now(),
                        4_711);
        patroni = new PatroniRouter(16L * 1024 * 1024, true);
        patroni.update(topology);
        patroni.confirmWritable(PG1, true);
        fixed = new StaticRouter(PG1, List.of(PG2, PG3));

        for (Router router : new Router[] {patroni, fixed}) {
            check(router.route(Role.PRIMARY), PG1, router);
            Backend first = router.route(Role.REPLICA).orElseThrow();
            Backend second = router.route(Role.REPLICA).orElseThrow();
            if (first.equals(second) || first.equals(PG1) || second.equals(PG1)) {
                throw new IllegalStateException(
                        router
                                + ": reads do not rotate over the replicas: "
                                + first
                                + ", "
                                + second);
            }
        }
    }

    private static void check(Optional<Backend> routed, Backend expected, Router router) {
        if (!routed.equals(Optional.of(expected))) {
            throw new IllegalStateException(
                    router + " routed " + routed + ", expected " + expected);
        }
    }

    @Benchmark
    public void patroniPrimary(Blackhole bh) {
        bh.consume(patroni.route(Role.PRIMARY).orElse(null));
    }

    @Benchmark
    public void patroniReplica(Blackhole bh) {
        bh.consume(patroni.route(Role.REPLICA).orElse(null));
    }

    @Benchmark
    public void staticPrimary(Blackhole bh) {
        bh.consume(fixed.route(Role.PRIMARY).orElse(null));
    }

    @Benchmark
    public void staticReplica(Blackhole bh) {
        bh.consume(fixed.route(Role.REPLICA).orElse(null));
    }
}
