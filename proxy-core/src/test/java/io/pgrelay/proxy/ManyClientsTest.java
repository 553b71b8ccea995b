package io.pgrelay.proxy;

import static io.pgrelay.proxy.RelayFixture.one;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pgrelay.testkit.PgServer;
import java.sql.Connection;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** 1,000 concurrent clients on default_pool_size 20: never more than 20 server connections. */
class ManyClientsTest {

    @Test
    void thousandClientsOnTwentyServerConnections() throws Exception {
        try (PgServer primary = PgServer.startPrimary();
                RelayFixture relay =
                        RelayFixture.builder(primary).set("pool.default_pool_size", 20).start();
                Connection admin =
                        primary.connect(
                                PgServer.POSTGRES_DB,
                                PgServer.SUPERUSER,
                                PgServer.SUPERUSER_PASSWORD)) {
            int clients = 1000;
            int threads = 50;
            List<Connection> conns = new ArrayList<>();
            ExecutorService pool = Executors.newFixedThreadPool(threads);
            AtomicInteger peak = new AtomicInteger();
            AtomicBoolean sampling = new AtomicBoolean(true);
            Thread sampler =
                    new Thread(
                            () -> {
                                while (sampling.get()) {
                                    try {
                                        peak.accumulateAndGet(
                                                Integer.parseInt(
                                                        one(
                                                                admin,
                                                                "select count(*) from pg_stat_activity"
                                                                        + " where usename = 'app' and backend_type = 'client backend'")),
                                                Math::max);
                                        Thread.sleep(20);
                                    } catch (Exception e) {
                                        return;
                                    }
                                }
                            });
            try {
                List<Future<Connection>> opened = new ArrayList<>();
                for (int i = 0; i < clients; i++) {
                    opened.add(pool.submit(relay::app));
                }
                for (Future<Connection> f : opened) {
                    conns.add(f.get(60, TimeUnit.SECONDS));
                }
                assertEquals(clients, relay.relay().clientCount());
                sampler.start();
                AtomicInteger ok = new AtomicInteger();
                List<Future<?>> work = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    int first = t;
                    work.add(
                            pool.submit(
                                    () -> {
                                        for (int round = 0; round < 5; round++) {
                                            for (int i = first; i < clients; i += threads) {
                                                assertEquals(
                                                        String.valueOf(i),
                                                        one(conns.get(i), "select " + i));
                                                ok.incrementAndGet();
                                            }
                                        }
                                        return null;
                                    }));
                }
                for (Future<?> f : work) {
                    f.get(120, TimeUnit.SECONDS);
                }
                assertEquals(clients * 5, ok.get());
            } finally {
                sampling.set(false);
                sampler.join();
                for (Connection c : conns) {
                    c.close();
                }
                pool.shutdownNow();
            }
            System.out.println(
                    "ManyClientsTest: peak server connections for 1000 clients: " + peak.get());
            assertTrue(
                    peak.get() >= 1 && peak.get() <= 20, "peak server connections " + peak.get());
        }
    }
}
