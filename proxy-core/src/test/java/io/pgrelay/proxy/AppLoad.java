package io.pgrelay.proxy;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;
import javax.sql.DataSource;

/**
 * An application's load through its connection pool: writers insert unique ids into {@value
 * #TABLE}, in autocommit or three to a transaction, and remember the ids whose write was
 * acknowledged; readers look up the latest acknowledged id and count it as an error if it is not
 * there. Each operation borrows a connection and gives it back, as application code does, with a
 * few milliseconds of think time in between. A failure is recorded, never retried: it is what the
 * application's user would see.
 */
final class AppLoad {

    static final String TABLE = "rolling_writes";
    static final String CREATE_TABLE = "create table " + TABLE + " (id bigint primary key)";

    /** One failed operation: when (ms since the load started), which worker, what it said. */
    record Failure(long atMillis, String worker, String sqlState, String message) {
        /** Grouping key: SQLSTATE and the message with numbers blanked (ids, pool counters). */
        String kind() {
            return sqlState + " " + message.replaceAll("\\d+", "#");
        }

        @Override
        public String toString() {
            return "%7.1f s %-12s %s %s".formatted(atMillis / 1000.0, worker, sqlState, message);
        }
    }

    private final DataSource pool;
    private final long startNanos = System.nanoTime();
    private final AtomicLong nextId = new AtomicLong();
    private final AtomicLong latestAcknowledged = new AtomicLong();
    private final Set<Long> acknowledged = ConcurrentHashMap.newKeySet();
    private final List<Failure> failures = new ArrayList<>();
    private final AtomicLong operations = new AtomicLong();
    private final List<Worker> workers = new ArrayList<>();
    private volatile boolean running = true;

    AppLoad(DataSource pool, int autocommitWriters, int transactionWriters, int readers) {
        this.pool = pool;
        for (int i = 0; i < autocommitWriters; i++) {
            workers.add(new Worker("autocommit-" + i, this::insertOne));
        }
        for (int i = 0; i < transactionWriters; i++) {
            workers.add(new Worker("tx-" + i, this::insertThreeInATransaction));
        }
        for (int i = 0; i < readers; i++) {
            workers.add(new Worker("reader-" + i, this::readLatest));
        }
    }

    void start() {
        workers.forEach(w -> w.thread.start());
    }

    /** Lets each worker finish its operation, then returns. */
    void stop() throws InterruptedException {
        running = false;
        for (Worker w : workers) {
            w.thread.join(Duration.ofMinutes(1).toMillis());
        }
    }

    long millisSinceStart() {
        return Duration.ofNanos(System.nanoTime() - startNanos).toMillis();
    }

    Set<Long> acknowledged() {
        return Set.copyOf(acknowledged);
    }

    long operations() {
        return operations.get();
    }

    synchronized List<Failure> failures() {
        return List.copyOf(failures);
    }

    /** Failures counted by {@link Failure#kind()}. */
    Map<String, Integer> failureCounts() {
        Map<String, Integer> counts = new TreeMap<>();
        for (Failure f : failures()) {
            counts.merge(f.kind(), 1, Integer::sum);
        }
        return counts;
    }

    /**
     * The longest time any worker went between two successful operations (its operations' duration
     * and think time included): how long the application stood still.
     */
    Duration longestStall() {
        return Duration.ofNanos(workers.stream().mapToLong(w -> w.longestGapNanos).max().orElse(0));
    }

    /** Which worker had the longest stall, and when (ms since start) it ended. */
    String longestStallWhere() {
        Worker w =
                workers.stream()
                        .max((a, b) -> Long.compare(a.longestGapNanos, b.longestGapNanos))
                        .orElseThrow();
        return w.name + ", ending at " + w.longestGapEndMillis / 1000.0 + " s";
    }

    private void insertOne() throws SQLException {
        long id = nextId.incrementAndGet();
        try (Connection c = pool.getConnection();
                PreparedStatement insert = c.prepareStatement(insertSql())) {
            insert.setLong(1, id);
            insert.executeUpdate();
        }
        acknowledge(id);
    }

    private void insertThreeInATransaction() throws SQLException {
        long[] ids = {nextId.incrementAndGet(), nextId.incrementAndGet(), nextId.incrementAndGet()};
        try (Connection c = pool.getConnection()) {
            c.setAutoCommit(false);
            try (PreparedStatement insert = c.prepareStatement(insertSql())) {
                for (long id : ids) {
                    insert.setLong(1, id);
                    insert.executeUpdate();
                }
            }
            // If commit() fails the outcome is unknown, so the ids are only acknowledged after it.
            c.commit();
        }
        for (long id : ids) {
            acknowledge(id);
        }
    }

    private void readLatest() throws SQLException {
        long id = latestAcknowledged.get();
        try (Connection c = pool.getConnection();
                PreparedStatement select =
                        c.prepareStatement("select count(*) from " + TABLE + " where id = ?")) {
            select.setLong(1, id);
            try (ResultSet rs = select.executeQuery()) {
                rs.next();
                if (id > 0 && rs.getLong(1) != 1) {
                    // Not an exception the driver throws, but just as wrong for the application.
                    throw new SQLException("acknowledged id " + id + " not found", "XXACK");
                }
            }
        }
    }

    private static String insertSql() {
        return "insert into " + TABLE + " (id) values (?)";
    }

    private void acknowledge(long id) {
        acknowledged.add(id);
        latestAcknowledged.accumulateAndGet(id, Math::max);
    }

    private synchronized void fail(String worker, Exception e) {
        String state = e instanceof SQLException sql ? sql.getSQLState() : e.getClass().getName();
        failures.add(
                new Failure(millisSinceStart(), worker, state, String.valueOf(e.getMessage())));
    }

    private final class Worker implements Runnable {
        final String name;
        final Operation operation;
        final Thread thread;
        volatile long longestGapNanos;
        volatile long longestGapEndMillis;

        Worker(String name, Operation operation) {
            this.name = name;
            this.operation = operation;
            this.thread = new Thread(this, "app-" + name);
        }

        @Override
        public void run() {
            // From the first success on: the pool filling itself at start is no stall.
            long lastSuccess = 0;
            while (running) {
                try {
                    operation.run();
                    operations.incrementAndGet();
                    long now = System.nanoTime();
                    if (lastSuccess != 0 && now - lastSuccess > longestGapNanos) {
                        longestGapNanos = now - lastSuccess;
                        longestGapEndMillis = millisSinceStart();
                    }
                    lastSuccess = now;
                } catch (SQLException | RuntimeException e) {
                    fail(name, e);
                }
                try {
                    Thread.sleep(ThreadLocalRandom.current().nextInt(1, 10));
                } catch (InterruptedException e) {
                    return;
                }
            }
        }
    }

    @FunctionalInterface
    private interface Operation {
        void run() throws SQLException;
    }
}
