package io.pgrelay.pool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * Many threads acquire, release, discard, abandon and run maintenance against one small pool while
 * connects complete on another thread. Checks that the limit holds at every moment, that no
 * connection is leased twice, and that every waiter that stays is eventually served. Bounded
 * iterations; the join timeout only guards against a hang.
 */
class PoolStressTest {

    private static final int POOL_SIZE = 4;
    private static final int THREADS = 8;
    private static final int ITERATIONS = 3_000;

    static final class Conn implements Poolable {
        final Object affinity;
        final AtomicBoolean inUse = new AtomicBoolean();
        volatile boolean usable = true;
        volatile boolean closed;

        Conn(Object affinity) {
            this.affinity = affinity;
        }

        @Override
        public void close(String reason) {
            closed = true;
        }

        @Override
        public boolean isUsable() {
            return usable && !closed;
        }

        @Override
        public Object affinity() {
            return affinity;
        }
    }

    /** A client: completes its future on grant, refuses the grant once it gave up. */
    static final class Client implements Waiter<Conn> {
        final Object affinity;
        final CompletableFuture<Conn> result = new CompletableFuture<>();

        Client(Object affinity) {
            this.affinity = affinity;
        }

        @Override
        public Object affinity() {
            return affinity;
        }

        @Override
        public boolean granted(Conn connection) {
            return result.complete(connection); // false once cancelled: the pool takes it back
        }

        @Override
        public void failed(PoolException e) {
            result.completeExceptionally(e);
        }
    }

    @Test
    void limitHoldsAndEveryWaiterIsServedUnderConcurrency() throws Exception {
        ExecutorService connectThread = Executors.newSingleThreadExecutor();
        ExecutorService workers = Executors.newFixedThreadPool(THREADS);
        AtomicLong clock = new AtomicLong();
        Queue<Conn> created = new ConcurrentLinkedQueue<>();
        Connector<Conn> connector =
                affinity ->
                        CompletableFuture.supplyAsync(
                                () -> {
                                    Conn c = new Conn(affinity);
                                    created.add(c);
                                    return c;
                                },
                                connectThread);
        Pool<Conn> pool =
                new Pool<>(
                        "stress",
                        new PoolSettings(
                                POOL_SIZE,
                                1,
                                0,
                                Duration.ofSeconds(5),
                                Duration.ZERO,
                                Duration.ofMillis(1),
                                Duration.ZERO),
                        connector,
                        clock::get);

        AtomicInteger leasedNow = new AtomicInteger();
        AtomicInteger maxLeased = new AtomicInteger();
        AtomicInteger served = new AtomicInteger();
        AtomicInteger abandoned = new AtomicInteger();
        // Only the first few violations are kept: a broken pool would otherwise flood memory.
        AtomicInteger violationCount = new AtomicInteger();
        Queue<String> violations = new ConcurrentLinkedQueue<>();
        Consumer<String> violation =
                message -> {
                    if (violationCount.getAndIncrement() < 10) {
                        violations.add(message);
                    }
                };
        AtomicBoolean running = new AtomicBoolean(true);

        // Janitor thread: maintenance plus a snapshot check that the limit holds.
        Thread janitor =
                new Thread(
                        () -> {
                            while (running.get()) {
                                clock.addAndGet(
                                        TimeUnit.MILLISECONDS.toNanos(
                                                1)); // lets idle timeout close and min fill reopen
                                pool.maintain();
                                PoolStats s = pool.stats();
                                if (s.total() > POOL_SIZE || s.active() > POOL_SIZE) {
                                    violation.accept("limit exceeded: " + s);
                                }
                                Thread.onSpinWait();
                            }
                        });
        janitor.start();

        Object[] loops = {"loop-0", "loop-1", null};
        List<Future<?>> futures = new ArrayList<>();
        for (int t = 0; t < THREADS; t++) {
            futures.add(
                    workers.submit(
                            () -> {
                                ThreadLocalRandom random = ThreadLocalRandom.current();
                                for (int i = 0; i < ITERATIONS; i++) {
                                    Client client = new Client(loops[random.nextInt(loops.length)]);
                                    pool.acquire(client);
                                    if (random.nextInt(20) == 0) {
                                        // Client disconnects while waiting. Either it was still
                                        // queued, or a grant raced with us and
                                        // is refused by granted(), or it had already arrived and we
                                        // must give it back.
                                        client.result.cancel(false);
                                        pool.cancel(client);
                                        Conn got =
                                                client.result.isCancelled()
                                                        ? null
                                                        : client.result.getNow(null);
                                        if (got != null) {
                                            pool.release(got);
                                        }
                                        // Otherwise it was dequeued, or its grant is on the way and
                                        // will be refused.
                                        abandoned.incrementAndGet();
                                        continue;
                                    }
                                    Conn c;
                                    try {
                                        c = client.result.get(60, TimeUnit.SECONDS);
                                    } catch (Exception e) {
                                        violation.accept("waiter not served: " + e);
                                        return null;
                                    }
                                    if (!c.inUse.compareAndSet(false, true)) {
                                        violation.accept("connection leased twice");
                                    }
                                    int now = leasedNow.incrementAndGet();
                                    maxLeased.accumulateAndGet(now, Math::max);
                                    if (c.closed) {
                                        violation.accept("closed connection handed out");
                                    }
                                    if (random.nextInt(4) == 0) {
                                        Thread.yield();
                                    }
                                    leasedNow.decrementAndGet();
                                    c.inUse.set(false);
                                    served.incrementAndGet();
                                    int action = random.nextInt(50);
                                    if (action == 0) {
                                        pool.discard(c, "server error");
                                    } else if (action == 1) {
                                        c.usable =
                                                false; // broke during use: the pool must drop it on
                                        // release
                                        pool.release(c);
                                    } else {
                                        pool.release(
                                                c); // (double release is unit-tested only: here
                                        // another thread may own it already)
                                    }
                                }
                                return null;
                            }));
        }
        for (Future<?> f : futures) {
            f.get(5, TimeUnit.MINUTES);
        }
        running.set(false);
        janitor.join();
        workers.shutdown();

        assertEquals(
                0,
                violationCount.get(),
                () -> violationCount.get() + " violations, first: " + violations);
        assertTrue(maxLeased.get() <= POOL_SIZE, "max leased " + maxLeased.get());
        assertEquals(THREADS * ITERATIONS, served.get() + abandoned.get());

        // Let connects still in flight land, then everything must be idle and accounted for.
        PoolStats s = pool.stats();
        while (s.connecting() > 0) {
            connectThread.submit(() -> {}).get();
            s = pool.stats();
        }
        assertTrue(s.leases() > s.connectsStarted(), "connections were reused: " + s);
        assertEquals(0, s.waiting());
        assertEquals(0, s.active(), "every lease was returned: " + s);
        assertTrue(s.total() <= POOL_SIZE);
        long open = created.stream().filter(c -> !c.closed).count();
        assertEquals(s.idle(), open, "open connections are exactly the idle ones: " + s);
        pool.close("test done");
        assertEquals(0, created.stream().filter(c -> !c.closed).count());
        connectThread.shutdown();
    }
}
