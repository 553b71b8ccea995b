package io.pgrelay.health;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Hostile and sloppy clients must not make the endpoint unavailable to the prober that decides
 * whether pgrelay is restarted. Timeouts of 5 s on the client side only keep a failing test from
 * hanging; nothing here asserts how fast the server is.
 */
class HealthServerAbuseTest {

    private static final Duration CLIENT_TIMEOUT = Duration.ofSeconds(5);

    // HTTP/1.1: with h2c upgrade attempts the JDK client may hold a second request back for the
    // first.
    private final HttpClient http =
            HttpClient.newBuilder()
                    .version(HttpClient.Version.HTTP_1_1)
                    .connectTimeout(CLIENT_TIMEOUT)
                    .build();
    private final Metrics metrics = Metrics.create();
    private final List<AutoCloseable> toClose = new ArrayList<>();
    private HealthServer server;

    @AfterEach
    void stop() throws Exception {
        for (AutoCloseable c : toClose) {
            c.close();
        }
        if (server != null) {
            server.close();
        }
        metrics.close();
    }

    private HealthServer start(HttpLimits limits) throws IOException {
        return start(limits, List::of);
    }

    private HealthServer start(HttpLimits limits, Supplier<List<StatusPage.Section>> status)
            throws IOException {
        server =
                HealthServer.start(
                        "127.0.0.1", 0, metrics.registry(), Health::up, Health::up, status, limits);
        return server;
    }

    private RawHttp connect() throws IOException {
        RawHttp raw = new RawHttp(server.port());
        toClose.add(raw);
        return raw;
    }

    @Test
    void clientsThatSendOneByteAndStopDoNotHoldUpTheEndpoints() throws Exception {
        start(HttpLimits.DEFAULTS);
        for (int i = 0; i < 4; i++) {
            connect().send("G");
        }
        // The stalled connections are accepted and held open (10 s request timeout) while we ask.
        awaitTrue(() -> server.openConnections() == 4, "4 stalled connections open");

        for (int round = 0; round < 3; round++) {
            assertEquals(200, get("/health").statusCode());
            assertEquals(200, get("/ready").statusCode());
            HttpResponse<String> scrape = get("/metrics");
            assertEquals(200, scrape.statusCode());
            assertTrue(scrape.body().contains("jvm_memory_used_bytes"), scrape.body());
        }
        assertTrue(
                server.openConnections() >= 4,
                "the stalled connections were still open during the requests");
    }

    @Test
    void anIncompleteRequestIsClosedAfterTheRequestTimeout() throws Exception {
        start(HttpLimits.DEFAULTS.withRequestTimeout(Duration.ofSeconds(1)));
        RawHttp partialHead = connect().send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        RawHttp silent = connect();

        assertTrue(partialHead.closedByServer(), "a request head that never ends is cut off");
        assertTrue(silent.closedByServer(), "a connection that never sends a request is cut off");
        awaitTrue(() -> server.openConnections() == 0, "their slots given back");
    }

    @Test
    void keepAliveServesSeveralRequestsThenClosesWhenIdle() throws Exception {
        start(HttpLimits.DEFAULTS.withIdleTimeout(Duration.ofSeconds(1)));
        RawHttp client = connect();

        RawHttp.Response first = client.send(RawHttp.get("/health")).read();
        RawHttp.Response second = client.send(RawHttp.get("/metrics")).read();
        RawHttp.Response third = client.send(RawHttp.get("/ready")).read();

        assertEquals(200, first.status());
        assertEquals("{\"status\":\"UP\"}", first.body());
        assertFalse(first.headers().containsKey("connection"), first.headers().toString());
        assertEquals(HealthServer.PROMETHEUS_TEXT, second.headers().get("content-type"));
        assertEquals(200, third.status());
        assertTrue(
                client.closedByServer(),
                "an idle keep-alive connection is closed after the idle timeout");
    }

    @Test
    void connectionCloseAndHttp10AreHonoured() throws Exception {
        start(HttpLimits.DEFAULTS);
        RawHttp closing =
                connect().send("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assertEquals("close", closing.read().headers().get("connection"));
        assertTrue(closing.closedByServer());

        RawHttp old = connect().send("GET /health HTTP/1.0\r\n\r\n");
        assertEquals(200, old.read().status());
        assertTrue(old.closedByServer(), "HTTP/1.0 without keep-alive closes after the response");

        RawHttp oldKeepAlive =
                connect().send("GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assertEquals("keep-alive", oldKeepAlive.read().headers().get("connection"));
        assertEquals(
                200,
                oldKeepAlive
                        .send("GET /ready HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                        .read()
                        .status());
    }

    @Test
    void connectionsBeyondTheCapAreClosedAtOnceAndTheirSlotsComeBack() throws Exception {
        start(HttpLimits.DEFAULTS.withMaxConnections(2));
        RawHttp first = connect().send("G");
        connect().send("G");
        awaitTrue(() -> server.openConnections() == 2, "2 connections open");

        RawHttp excess = connect();
        assertTrue(excess.closedByServer(), "a connection over the cap is closed");
        assertEquals(2, server.openConnections());

        first.close();
        awaitTrue(() -> server.openConnections() == 1, "the closed connection's slot given back");
        assertEquals(200, get("/health").statusCode());
    }

    @Test
    void pipelinedRequestsAreAnsweredInOrder() throws Exception {
        start(HttpLimits.DEFAULTS);
        // The scrape is answered from the render thread, /health on the loop: order must hold
        // anyway.
        RawHttp client =
                connect()
                        .send(
                                RawHttp.get("/metrics")
                                        + "HEAD /status HTTP/1.1\r\nHost: x\r\n\r\n"
                                        + RawHttp.get("/health")
                                        + RawHttp.get("/nope"));

        assertEquals(HealthServer.PROMETHEUS_TEXT, client.read().headers().get("content-type"));
        RawHttp.Response head = client.read(false);
        assertEquals("text/html; charset=utf-8", head.headers().get("content-type"));
        assertTrue(
                Integer.parseInt(head.headers().get("content-length")) > 0,
                head.headers().toString());
        assertEquals("{\"status\":\"UP\"}", client.read().body());
        assertEquals(404, client.read().status());
    }

    @Test
    void oversizedRequestsAreRefusedAndClosed() throws Exception {
        start(HttpLimits.DEFAULTS);
        RawHttp longLine =
                connect().send("GET /" + "a".repeat(10_000) + " HTTP/1.1\r\nHost: x\r\n\r\n");
        assertEquals(414, longLine.read().status());
        assertTrue(longLine.closedByServer());

        RawHttp bigHeaders =
                connect()
                        .send(
                                "GET /health HTTP/1.1\r\nHost: x\r\nX-Filler: "
                                        + "b".repeat(20_000)
                                        + "\r\n\r\n");
        assertEquals(431, bigHeaders.read().status());
        assertTrue(bigHeaders.closedByServer());

        RawHttp bigBody =
                connect()
                        .send(
                                "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
                                        + "c".repeat(8192));
        assertEquals(413, bigBody.read().status());
        assertTrue(bigBody.closedByServer());

        RawHttp garbage = connect().send("\u0001\u0002 nonsense\r\n\r\n");
        assertEquals(400, garbage.read().status());
        assertTrue(garbage.closedByServer());

        assertEquals(200, get("/health").statusCode());
    }

    @Test
    void slowRendersRunOffTheLoopAndAFullQueueIsAnswered503() throws Exception {
        CountDownLatch rendering = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        start(
                HttpLimits.DEFAULTS.withMaxPendingRenders(1),
                () -> {
                    rendering.countDown();
                    try {
                        release.await(30, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    return List.of();
                });
        try {
            CompletableFuture<HttpResponse<String>> stuck = getAsync("/status");
            assertTrue(rendering.await(5, TimeUnit.SECONDS), "the status page is being rendered");
            CompletableFuture<HttpResponse<String>> queued = getAsync("/");
            awaitTrue(() -> server.pendingRenders() == 1, "a second status page waiting");

            HttpResponse<String> refused = get("/metrics");
            assertEquals(503, refused.statusCode());
            assertTrue(refused.body().startsWith("busy:"), refused.body());
            assertEquals(
                    200,
                    get("/health").statusCode(),
                    "health is answered while the render thread is stuck");
            assertEquals(200, get("/ready").statusCode());

            release.countDown();
            assertEquals(200, stuck.get(5, TimeUnit.SECONDS).statusCode());
            assertEquals(200, queued.get(5, TimeUnit.SECONDS).statusCode());
        } finally {
            release.countDown();
        }
    }

    @Test
    void servesOnTheCallersEventLoopsAndLeavesThemRunning() throws Exception {
        EventLoopGroup group = new MultiThreadIoEventLoopGroup(2, NioIoHandler.newFactory());
        try {
            HealthServer shared =
                    HealthServer.start(
                            "127.0.0.1",
                            0,
                            metrics.registry(),
                            Health::up,
                            Health::up,
                            List::of,
                            HttpLimits.DEFAULTS,
                            group,
                            NioServerSocketChannel.class);
            int port = shared.port();
            assertEquals(
                    200,
                    http.send(
                                    HttpRequest.newBuilder(
                                                    URI.create(
                                                            "http://127.0.0.1:"
                                                                    + port
                                                                    + "/metrics"))
                                            .timeout(CLIENT_TIMEOUT)
                                            .build(),
                                    HttpResponse.BodyHandlers.ofString())
                            .statusCode());

            shared.close();

            assertFalse(group.isShuttingDown(), "the caller's loops keep running");
            Listening.assertNothingListensOn(port);
        } finally {
            group.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
        }
    }

    private HttpResponse<String> get(String path) throws Exception {
        return http.send(request(path), HttpResponse.BodyHandlers.ofString());
    }

    private CompletableFuture<HttpResponse<String>> getAsync(String path) {
        return http.sendAsync(request(path), HttpResponse.BodyHandlers.ofString());
    }

    private HttpRequest request(String path) {
        return HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + path))
                .timeout(CLIENT_TIMEOUT)
                .build();
    }

    private static void awaitTrue(BooleanSupplier condition, String what)
            throws InterruptedException {
        long deadline = System.nanoTime() + CLIENT_TIMEOUT.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for: " + what);
            }
            Thread.sleep(10);
        }
    }
}
