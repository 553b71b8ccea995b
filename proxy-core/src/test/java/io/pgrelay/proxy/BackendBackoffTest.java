package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.spi.ILoggingEvent;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.pgrelay.pool.PoolStats;
import io.pgrelay.testkit.CapturedLogs;
import io.pgrelay.testkit.PgServer;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * A dead backend is tried once at a time, at growing intervals, however many clients want it: said
 * once at WARN when it goes, once at INFO when it is back, counted per backend.
 */
class BackendBackoffTest {

    @RegisterExtension static final RelayExtension servers = RelayExtension.postgres();

    @RegisterExtension final CapturedLogs logs = new CapturedLogs();

    private static final int CLIENTS = 50;
    private static final int POOL_SIZE = 5;

    @Test
    void aStoppedServerIsProbedOnceAtATimeAndClientsRecoverWhenItIsBack() throws Exception {
        PgServer pg = servers.primary();
        String backend = pg.hostPort();
        ExecutorService threads = Executors.newFixedThreadPool(CLIENTS);
        List<Connection> clients = new ArrayList<>();
        try (RelayFixture relay =
                RelayFixture.builder(pg).set("pool.default_pool_size", POOL_SIZE).start()) {
            for (int i = 0; i < CLIENTS; i++) {
                Connection c = relay.app();
                clients.add(c);
                assertEquals("1", one(c, "select 1"));
            }
            pg.stop();

            // Every client keeps asking, as an application retrying in a loop would.
            AtomicBoolean stop = new AtomicBoolean();
            AtomicLong errors = new AtomicLong();
            ConcurrentHashMap<String, String> unexpected = new ConcurrentHashMap<>();
            List<Future<?>> loops = new ArrayList<>();
            long start = System.nanoTime();
            for (Connection c : clients) {
                loops.add(
                        threads.submit(
                                () -> {
                                    while (!stop.get()) {
                                        try {
                                            one(c, "select 1");
                                            unexpected.put("success", "a query succeeded");
                                        } catch (SQLException e) {
                                            errors.incrementAndGet();
                                            if (!"08006".equals(e.getSQLState())
                                                    || !e.getMessage().contains(backend)) {
                                                unexpected.put(e.getSQLState(), String.valueOf(e));
                                            }
                                        }
                                    }
                                    return null;
                                }));
            }
            Thread.sleep(4000);
            stop.set(true);
            for (Future<?> f : loops) {
                f.get(30, TimeUnit.SECONDS);
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            double failures = failures(relay, backend);
            long poolConnects =
                    poolStats(relay).stream().mapToLong(PoolStats::connectsStarted).sum();
            System.out.printf(
                    "dead backend, %d clients retrying for %.1f s: %d client errors, %.0f connect"
                            + " attempts failed (backend metric), %d pool connects started%n",
                    CLIENTS, seconds, errors.get(), failures, poolConnects);
            assertTrue(unexpected.isEmpty(), "unexpected answers: " + unexpected);
            assertTrue(errors.get() >= CLIENTS, "clients got their errors: " + errors.get());
            // Connects in flight when it went down (at most a pool's worth), then one probe after
            // 0.1, 0.2, 0.4, 0.8, 1.6, 2, 2 ... s: about 7 in 4 s.
            assertTrue(
                    failures >= 2 && failures <= POOL_SIZE + 10,
                    "connect attempts against the dead backend in " + seconds + " s: " + failures);
            assertEquals(1.0, down(relay, backend), "pgrelay_backend_down");
            assertEquals(1, count(Level.WARN, "backend " + backend + " is down: "), logs());
            assertEquals(0, count(Level.WARN, "connect failed"), logs());

            pg.start();
            long restarted = System.nanoTime();
            loops.clear();
            for (Connection c : clients) {
                loops.add(
                        threads.submit(
                                () -> {
                                    long deadline =
                                            System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
                                    while (true) {
                                        try {
                                            return one(c, "select 1");
                                        } catch (SQLException e) {
                                            if (System.nanoTime() - deadline > 0) {
                                                throw e;
                                            }
                                            Thread.sleep(50);
                                        }
                                    }
                                }));
            }
            for (Future<?> f : loops) {
                assertEquals("1", f.get(30, TimeUnit.SECONDS));
            }
            double recoveredIn = (System.nanoTime() - restarted) / 1e9;
            System.out.printf(
                    "all %d clients served %.2f s after the server was up%n", CLIENTS, recoveredIn);
            // Noticed within one probe interval (2 s at most) of the server being up.
            assertTrue(recoveredIn < 5, "recovered in " + recoveredIn + " s");
            double total = failures(relay, backend);
            assertEquals(
                    1,
                    count(
                            Level.INFO,
                            "backend "
                                    + backend
                                    + " is back after "
                                    + (long) total
                                    + " failed connect attempt"),
                    logs());
            assertEquals(1, count(Level.WARN, "backend " + backend + " is down: "), logs());
            assertEquals(0.0, down(relay, backend), "pgrelay_backend_down");
        } finally {
            threads.shutdownNow();
            for (Connection c : clients) {
                c.close();
            }
            pg.start();
        }
    }

    private static double failures(RelayFixture relay, String backend) {
        FunctionCounter c =
                relay.relay()
                        .metrics()
                        .registry()
                        .find("pgrelay.backend.connect.failures")
                        .tag("backend", backend)
                        .functionCounter();
        return c == null ? 0 : c.count();
    }

    private static double down(RelayFixture relay, String backend) {
        Gauge g =
                relay.relay()
                        .metrics()
                        .registry()
                        .find("pgrelay.backend.down")
                        .tag("backend", backend)
                        .gauge();
        return g == null ? Double.NaN : g.value();
    }

    private static List<PoolStats> poolStats(RelayFixture relay) {
        return relay.relay().pools().all().stream().map(p -> p.pool().stats()).toList();
    }

    private long count(Level level, String text) {
        return logs.events().stream()
                .filter(e -> e.getLevel() == level && e.getFormattedMessage().contains(text))
                .count();
    }

    private String logs() {
        StringBuilder b = new StringBuilder();
        for (ILoggingEvent e : List.copyOf(logs.events())) {
            if (e.getLevel().isGreaterOrEqual(Level.INFO)) {
                b.append(e.getLevel()).append(' ').append(e.getFormattedMessage()).append('\n');
            }
        }
        return b.toString();
    }
}
