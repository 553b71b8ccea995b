package io.pgrelay.bench;

import io.pgrelay.pool.Connector;
import io.pgrelay.pool.Pool;
import io.pgrelay.pool.PoolException;
import io.pgrelay.pool.PoolSettings;
import io.pgrelay.pool.PoolStats;
import io.pgrelay.pool.Poolable;
import io.pgrelay.pool.Waiter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;
import org.openjdk.jmh.infra.ThreadParams;

/**
 * One lease/release round trip on {@link Pool}: {@code acquire} with an idle connection available
 * (granted synchronously inside {@code acquire}), then {@code release} back to the idle list.
 *
 * <p>In transaction mode pgrelay does this once per transaction, on the client's event loop, and
 * every event loop shares the pool's single lock. The uncontended score is the pool's fixed cost
 * per transaction; the contended one shows what the shared lock costs when all loops start and
 * finish transactions at once. The connections are pre-created (the pool is filled once in
 * {@code @Setup} and everything released), so no connect happens while measuring — the
 * {@code @TearDown} check fails the run if one did, or if anything was left leased or waiting.
 *
 * <p>Realism: settings are pgrelay's defaults except the size (reserve 0, query_wait_timeout 120 s,
 * server_idle_timeout 600 s, server_lifetime 3600 s, so release does the lifetime check), {@code
 * System::nanoTime} as the clock, a new {@link Waiter} per lease as {@code ClientSession} does, and
 * affinity: four "event loop" tokens, connections spread over them round robin, each benchmark
 * thread asking for its own loop's connection (a miss falls back to the most recently used idle
 * one, as in the relay). {@link FakeConnection#isUsable()} is a volatile read, like {@code
 * Channel.isActive()}.
 *
 * <p>Contended runs use 4 threads: with a pool of 4 every connection can be leased at once, so a
 * thread may find the idle list empty and wait in the FIFO queue to be granted by another thread's
 * release (it then spins on its waiter, which a real event loop would not: it would run other
 * tasks). Note the number of cores the run has: with fewer than 4, threads are descheduled while
 * holding the lock and the score measures the scheduler as much as the pool.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(2)
@State(Scope.Benchmark)
public class PoolBenchmark {

    /** Stand-ins for the event loops connections and clients live on. */
    static final Object[] LOOPS = {"loop-0", "loop-1", "loop-2", "loop-3"};

    @Param({"4", "20"})
    public int poolSize;

    Pool<FakeConnection> pool;
    final AtomicInteger connects = new AtomicInteger();
    final AtomicInteger closes = new AtomicInteger();

    /** A server connection that is always healthy. */
    static final class FakeConnection implements Poolable {
        private final Object loop;
        private final AtomicInteger closes;
        private volatile boolean open = true;

        FakeConnection(Object loop, AtomicInteger closes) {
            this.loop = loop;
            this.closes = closes;
        }

        @Override
        public void close(String reason) {
            if (open) {
                open = false;
                closes.incrementAndGet();
            }
        }

        @Override
        public boolean isUsable() {
            return open;
        }

        @Override
        public Object affinity() {
            return loop;
        }
    }

    /** One client's request, as ClientSession's Lease: granted on whichever thread releases. */
    static final class Lease implements Waiter<FakeConnection> {
        private final Object loop;
        volatile FakeConnection connection;
        volatile PoolException failure;

        Lease(Object loop) {
            this.loop = loop;
        }

        @Override
        public Object affinity() {
            return loop;
        }

        @Override
        public boolean granted(FakeConnection c) {
            connection = c;
            return true;
        }

        @Override
        public void failed(PoolException e) {
            failure = e;
        }

        FakeConnection await() {
            FakeConnection c;
            while ((c = connection) == null) {
                if (failure != null) {
                    throw new IllegalStateException("lease failed", failure);
                }
                Thread.onSpinWait();
            }
            return c;
        }
    }

    /** The benchmark thread's event loop. */
    @State(Scope.Thread)
    public static class Client {
        Object loop;

        @Setup(Level.Trial)
        public void setUp(ThreadParams thread) {
            loop = LOOPS[thread.getThreadIndex() % LOOPS.length];
        }
    }

    @Setup(Level.Trial)
    public void setUp() {
        PoolSettings settings =
                new PoolSettings(
                        poolSize,
                        0,
                        0,
                        Duration.ofSeconds(5),
                        Duration.ofSeconds(120),
                        Duration.ofSeconds(600),
                        Duration.ofSeconds(3600));
        Connector<FakeConnection> connector =
                affinity -> {
                    connects.incrementAndGet();
                    return CompletableFuture.completedFuture(new FakeConnection(affinity, closes));
                };
        pool = new Pool<>("bench", settings, connector, System::nanoTime);
        // Fill the pool: each acquire finds nothing idle, queues, and the (inline) connect grants
        // it.
        List<FakeConnection> leased = new ArrayList<>();
        for (int i = 0; i < poolSize; i++) {
            Lease lease = new Lease(LOOPS[i % LOOPS.length]);
            pool.acquire(lease);
            leased.add(lease.await());
        }
        leased.forEach(pool::release);
        PoolStats stats = pool.stats();
        if (stats.idle() != poolSize
                || stats.active() != 0
                || stats.connecting() != 0
                || connects.get() != poolSize) {
            throw new IllegalStateException("pool not filled: " + stats);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        PoolStats stats = pool.stats();
        if (stats.idle() != poolSize
                || stats.active() != 0
                || stats.waiting() != 0
                || connects.get() != poolSize
                || closes.get() != 0) {
            throw new IllegalStateException(
                    "pool changed while measuring: "
                            + stats
                            + ", connects "
                            + connects.get()
                            + ", closes "
                            + closes.get());
        }
        pool.close("benchmark done");
    }

    @Benchmark
    @Threads(1)
    public void leaseRelease(Client client, Blackhole bh) {
        roundTrip(client, bh);
    }

    @Benchmark
    @Threads(4)
    public void leaseReleaseContended(Client client, Blackhole bh) {
        roundTrip(client, bh);
    }

    private void roundTrip(Client client, Blackhole bh) {
        Lease lease = new Lease(client.loop);
        pool.acquire(lease);
        FakeConnection connection = lease.await();
        bh.consume(connection);
        pool.release(connection);
    }
}
