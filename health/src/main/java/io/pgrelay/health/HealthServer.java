package io.pgrelay.health;

import com.sun.net.httpserver.Headers;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The proxy's HTTP face for operators and orchestrators, on the JDK's built-in server so the
 * module needs nothing beyond Micrometer:
 * <ul>
 *   <li>{@code GET /metrics}: Prometheus text (or OpenMetrics when the scraper asks for it);</li>
 *   <li>{@code GET /health}: liveness, 200 or 503 from the liveness check;</li>
 *   <li>{@code GET /ready}: readiness, 200 or 503 with reasons; {@code SHUTTING_DOWN} after
 *       {@link #beginShutdown()} so load balancers stop sending before listeners close;</li>
 *   <li>{@code GET /} and {@code /status}: the HTML stats page.</li>
 * </ul>
 * {@code HEAD} works on every path, other methods get 405, unknown paths 404.
 *
 * <p>Every request is answered: a check or scrape that throws becomes a 503 carrying the
 * exception message, because a health endpoint that hangs or resets the connection reads to a
 * prober as "dead" for the wrong reason. Checks run on the two request threads, so a check that
 * blocks would stall the endpoint; they should read state the proxy already keeps.
 */
public final class HealthServer implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(HealthServer.class);

    static final String PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8";
    static final String OPENMETRICS_TEXT = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    private static final String JSON = "application/json";
    private static final String HTML = "text/html; charset=utf-8";
    private static final String TEXT = "text/plain; charset=utf-8";
    private static final Set<String> PATHS = Set.of("/", "/status", "/metrics", "/health", "/ready");
    private static final int REQUEST_THREADS = 2;

    private final HttpServer server;
    private final ExecutorService requestThreads;
    private final PrometheusMeterRegistry registry;
    private final Supplier<Health> liveness;
    private final Supplier<Health> readiness;
    private final Supplier<List<StatusPage.Section>> status;
    private final AtomicBoolean closed = new AtomicBoolean();
    // Warn once, not on every probe: orchestrators poll every few seconds.
    private final AtomicBoolean checkFailureLogged = new AtomicBoolean();
    private volatile boolean shuttingDown;

    private HealthServer(HttpServer server, ExecutorService requestThreads, PrometheusMeterRegistry registry,
            Supplier<Health> liveness, Supplier<Health> readiness, Supplier<List<StatusPage.Section>> status) {
        this.server = server;
        this.requestThreads = requestThreads;
        this.registry = registry;
        this.liveness = liveness;
        this.readiness = readiness;
        this.status = status;
    }

    /**
     * Binds {@code host:port} (port 0 picks a free one, see {@link #port()}) and starts serving.
     *
     * @throws IOException when the address cannot be bound
     */
    public static HealthServer start(String host, int port, PrometheusMeterRegistry registry,
            Supplier<Health> liveness, Supplier<Health> readiness,
            Supplier<List<StatusPage.Section>> status) throws IOException {
        Objects.requireNonNull(registry, "registry");
        Objects.requireNonNull(liveness, "liveness");
        Objects.requireNonNull(readiness, "readiness");
        Objects.requireNonNull(status, "status");
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("health port: " + port + " (expected: 0..65535)");
        }
        HttpServer server = HttpServer.create(new InetSocketAddress(host, port), 0);
        ExecutorService requestThreads = Executors.newFixedThreadPool(REQUEST_THREADS, daemonThreads());
        HealthServer health = new HealthServer(server, requestThreads, registry, liveness, readiness, status);
        server.createContext("/", health::handle);
        server.setExecutor(requestThreads);
        server.start();
        log.info("health endpoint listening on http://{}:{}", host, health.port());
        return health;
    }

    public int port() {
        return server.getAddress().getPort();
    }

    public InetSocketAddress address() {
        return server.getAddress();
    }

    /** From now on /ready answers 503 SHUTTING_DOWN, whatever the readiness check says. */
    public void beginShutdown() {
        shuttingDown = true;
    }

    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        // stop(0): on JDK 17 any positive delay is waited out in full even when no request is open.
        server.stop(0);
        requestThreads.shutdownNow();
    }

    private void handle(HttpExchange exchange) {
        try {
            String path = exchange.getRequestURI().getPath();
            String method = exchange.getRequestMethod();
            if (!PATHS.contains(path)) {
                respond(exchange, 404, TEXT, "not found: " + path + "\n");
            } else if (!method.equals("GET") && !method.equals("HEAD")) {
                exchange.getResponseHeaders().set("Allow", "GET, HEAD");
                respond(exchange, 405, TEXT, "method not allowed: " + method + "\n");
            } else {
                switch (path) {
                    case "/metrics" -> serveMetrics(exchange);
                    case "/health" -> serveHealth(exchange, check(liveness));
                    case "/ready" -> serveHealth(exchange, shuttingDown ? Health.shuttingDown() : check(readiness));
                    default -> serveStatusPage(exchange);
                }
            }
        } catch (IOException e) {
            log.debug("health request aborted: {}", e.toString());
        } catch (RuntimeException | Error e) {
            log.warn("health request failed", e);
            if (exchange.getResponseCode() == -1) {
                try {
                    respond(exchange, 500, TEXT, describe(e) + "\n");
                } catch (IOException | RuntimeException ignored) {
                    // The client is gone or the response is broken; close() below is all we can do.
                }
            }
        } finally {
            exchange.close();
        }
    }

    private void serveMetrics(HttpExchange exchange) throws IOException {
        String accept = exchange.getRequestHeaders().getFirst("Accept");
        String contentType = accept != null && accept.contains("application/openmetrics-text")
                ? OPENMETRICS_TEXT : PROMETHEUS_TEXT;
        String body;
        try {
            body = registry.scrape(contentType);
        } catch (RuntimeException e) {
            logCheckFailure("metrics scrape", e);
            respond(exchange, 503, TEXT, "scrape failed: " + describe(e) + "\n");
            return;
        }
        respond(exchange, 200, contentType, body);
    }

    private static void serveHealth(HttpExchange exchange, Health health) throws IOException {
        respond(exchange, health.isUp() ? 200 : 503, JSON, health.toJson());
    }

    private void serveStatusPage(HttpExchange exchange) throws IOException {
        Health ready = shuttingDown ? Health.shuttingDown() : check(readiness);
        List<StatusPage.Section> sections;
        try {
            sections = Objects.requireNonNull(status.get(), "status supplier returned null");
        } catch (RuntimeException e) {
            logCheckFailure("status page", e);
            String message = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>pgrelay status</title>"
                    + "</head><body><h1>status unavailable</h1><p>" + StatusPage.escape(describe(e))
                    + "</p></body></html>\n";
            respond(exchange, 503, HTML, message);
            return;
        }
        respond(exchange, 200, HTML, StatusPage.render("pgrelay status", ready, sections));
    }

    private Health check(Supplier<Health> supplier) {
        try {
            Health health = supplier.get();
            return health != null ? health : Health.down("health check returned null");
        } catch (RuntimeException e) {
            logCheckFailure("health check", e);
            return Health.down(describe(e));
        }
    }

    private void logCheckFailure(String what, RuntimeException e) {
        if (checkFailureLogged.compareAndSet(false, true)) {
            log.warn("{} threw; answering 503 (further failures are logged at debug)", what, e);
        } else {
            log.debug("{} threw", what, e);
        }
    }

    private static String describe(Throwable e) {
        String message = e.getMessage();
        return message == null ? e.getClass().getName() : e.getClass().getSimpleName() + ": " + message;
    }

    private static void respond(HttpExchange exchange, int code, String contentType, String body) throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        Headers headers = exchange.getResponseHeaders();
        headers.set("Content-Type", contentType);
        headers.set("Cache-Control", "no-store");
        if (exchange.getRequestMethod().equals("HEAD")) {
            // The JDK server sends no body for HEAD; a length passed to sendResponseHeaders only
            // earns a warning, so the header is set by hand to say what GET would return.
            headers.set("Content-Length", Integer.toString(bytes.length));
            exchange.sendResponseHeaders(code, -1);
            return;
        }
        exchange.sendResponseHeaders(code, bytes.length == 0 ? -1 : bytes.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(bytes);
        }
    }

    private static ThreadFactory daemonThreads() {
        AtomicInteger count = new AtomicInteger();
        return task -> {
            Thread thread = new Thread(task, "pgrelay-health-" + count.incrementAndGet());
            thread.setDaemon(true);
            return thread;
        };
    }
}
