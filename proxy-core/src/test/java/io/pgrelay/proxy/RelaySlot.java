package io.pgrelay.proxy;

import io.pgrelay.testkit.Await;
import io.pgrelay.testkit.FreePorts;
import io.pgrelay.testkit.Haproxy;
import io.pgrelay.testkit.PgServer;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/**
 * One pgrelay instance of several behind a load balancer, on fixed ports, so that a restarted one
 * comes back where the load balancer looks for it. The ports are below the ephemeral range: while
 * the instance is down, no outgoing connection can take one of them.
 */
final class RelaySlot implements AutoCloseable {

    private static final HttpClient HTTP =
            HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

    private final String name;
    private final PgServer primary;
    private final Duration shutdownTimeout;
    private final int writePort = FreePorts.next();
    private final int readPort = FreePorts.next();
    private final int httpPort = FreePorts.next();
    private RelayFixture relay;

    RelaySlot(String name, PgServer primary, Duration shutdownTimeout) {
        this.name = name;
        this.primary = primary;
        this.shutdownTimeout = shutdownTimeout;
    }

    String name() {
        return name;
    }

    /** How the load balancer sees it: the write port, checked on the HTTP port's /ready. */
    Haproxy.Server server() {
        return new Haproxy.Server(name, writePort, httpPort);
    }

    /** Starts pgrelay (static routing to the primary) and waits until /ready says 200. */
    void start() {
        relay =
                RelayFixture.builder(primary)
                        .set("listen.write_port", writePort)
                        .set("listen.read_port", readPort)
                        .set("admin.http_port", httpPort)
                        .set("pool.pool_mode", "transaction")
                        .set("runtime.shutdown_timeout", shutdownTimeout.toMillis() + "ms")
                        .start();
        Await.until(name + "'s /ready to say 200", Duration.ofSeconds(15), () -> ready() == 200);
    }

    /** The status /ready answers with. */
    int ready() throws IOException, InterruptedException {
        HttpRequest get =
                HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + httpPort + "/ready"))
                        .timeout(Duration.ofSeconds(2))
                        .build();
        return HTTP.send(get, HttpResponse.BodyHandlers.discarding()).statusCode();
    }

    /**
     * What SIGTERM does ({@link PgRelay#shutdown} with runtime.shutdown_timeout); returns how long
     * it took.
     */
    Duration stopGracefully() throws InterruptedException {
        long start = System.nanoTime();
        relay.relay().shutdown(relay.relay().config().shutdownTimeout());
        Duration took = Duration.ofNanos(System.nanoTime() - start);
        relay.close();
        relay = null;
        return took;
    }

    @Override
    public void close() {
        if (relay != null) {
            relay.close();
            relay = null;
        }
    }
}
