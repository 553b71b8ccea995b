package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.pgrelay.testkit.PgServer;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Supplier;

/**
 * The failover tests' application: writer threads doing autocommit INSERTs into {@code writes
 * (thread int, seq bigint, primary key (thread, seq))} and reader threads doing SELECTs, each on
 * one pgjdbc connection (replaced when it breaks), through pgrelay's write and read ports; errors,
 * acknowledged writes, the read ports seen and the longest gap between writes are counted.
 */
final class WriteReadLoad implements AutoCloseable {

    /** Each load writes with thread ids of its own, so loads in one table never collide. */
    private static final AtomicLong RUN = new AtomicLong();

    final AtomicBoolean running = new AtomicBoolean(true);
    final Set<Long> acknowledged = ConcurrentHashMap.newKeySet();
    final List<String> writeErrors = new CopyOnWriteArrayList<>();
    final List<String> readErrors = new CopyOnWriteArrayList<>();
    final Set<Integer> readPorts = ConcurrentHashMap.newKeySet();
    final Map<Integer, LongAdder> readsPerPort = new ConcurrentHashMap<>();
    final AtomicLong reads = new AtomicLong();
    final AtomicLong lastWriteNanos = new AtomicLong(System.nanoTime());
    final AtomicLong longestGapNanos = new AtomicLong();
    final List<Long> writeTimes = new CopyOnWriteArrayList<>();
    private final List<Thread> threads = new ArrayList<>();
    private final Supplier<RelayFixture> relay;

    WriteReadLoad(Supplier<RelayFixture> relay, int writers, int readers) {
        this.relay = relay;
        long run = RUN.incrementAndGet();
        for (int t = 0; t < writers; t++) {
            int thread = (int) (run * 100 + t);
            threads.add(started(() -> write(thread)));
        }
        for (int r = 0; r < readers; r++) {
            threads.add(started(this::read));
        }
    }

    private static Thread started(Runnable r) {
        Thread t = new Thread(r, "load");
        t.setDaemon(true);
        t.start();
        return t;
    }

    private Connection connect(boolean write) throws SQLException {
        RelayFixture r = relay.get();
        return r.connect(
                write ? r.writePort() : r.readPort(),
                PgServer.APP_DB,
                "app",
                "app-secret",
                Map.of());
    }

    private void write(int thread) {
        long seq = 0;
        Connection c = null;
        while (running.get()) {
            try {
                if (c == null) {
                    c = connect(true);
                }
                try (PreparedStatement ps =
                        c.prepareStatement("insert into writes values (?, ?)")) {
                    ps.setInt(1, thread);
                    ps.setLong(2, seq);
                    ps.executeUpdate();
                }
                acknowledged.add(thread * 1_000_000_000L + seq);
                seq++;
                long now = System.nanoTime();
                long before = lastWriteNanos.getAndSet(now);
                longestGapNanos.accumulateAndGet(now - before, Math::max);
                writeTimes.add(now);
                Thread.sleep(5);
            } catch (SQLException e) {
                writeErrors.add(e.getSQLState() + " " + e.getMessage());
                seq++;
                c = closeIfBroken(c);
            } catch (InterruptedException e) {
                return;
            }
        }
        closeQuietly(c);
    }

    private void read() {
        Connection c = null;
        while (running.get()) {
            try {
                if (c == null) {
                    c = connect(false);
                }
                int port = Integer.parseInt(one(c, "select inet_server_port()"));
                readPorts.add(port);
                readsPerPort.computeIfAbsent(port, p -> new LongAdder()).increment();
                reads.incrementAndGet();
                Thread.sleep(5);
            } catch (SQLException e) {
                readErrors.add(e.getSQLState() + " " + e.getMessage());
                c = closeIfBroken(c);
            } catch (InterruptedException e) {
                return;
            }
        }
        closeQuietly(c);
    }

    private static Connection closeIfBroken(Connection c) {
        try {
            if (c != null && c.isClosed()) {
                return null;
            }
        } catch (SQLException ignored) {
            return null;
        }
        return c;
    }

    private static void closeQuietly(Connection c) {
        try {
            if (c != null) {
                c.close();
            }
        } catch (SQLException ignored) {
            // done
        }
    }

    /** Reads answered by the server on {@code port} so far. */
    long readsOn(int port) {
        LongAdder n = readsPerPort.get(port);
        return n == null ? 0 : n.sum();
    }

    long firstWriteAfter(long nanos) {
        return writeTimes.stream().filter(t -> t >= nanos).min(Long::compare).orElse(-1L);
    }

    long lastWriteBefore(long nanos) {
        return writeTimes.stream().filter(t -> t < nanos).max(Long::compare).orElse(-1L);
    }

    /** Every acknowledged INSERT is in the table (asked through pgrelay's write port). */
    void assertAllAcknowledgedWritesPresent() throws SQLException {
        try (Connection c = relay.get().app()) {
            for (long key : acknowledged) {
                String found =
                        one(
                                c,
                                "select count(*) from writes where thread = "
                                        + (key / 1_000_000_000L)
                                        + " and seq = "
                                        + (key % 1_000_000_000L));
                assertEquals("1", found, "acknowledged write " + key + " is missing");
            }
        }
    }

    @Override
    public void close() throws InterruptedException {
        running.set(false);
        for (Thread t : threads) {
            t.join(30_000);
        }
    }
}
