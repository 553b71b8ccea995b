package io.pgrelay.health;

import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What each path answers, apart from how the bytes travel: {@link HttpConnection} does the HTTP.
 *
 * <p>Every request gets an answer: a check or scrape that throws becomes a 503 carrying the
 * exception message, because a health endpoint that hangs or resets the connection reads to a
 * prober as "dead" for the wrong reason.
 */
final class Endpoints {

    private static final Logger log = LoggerFactory.getLogger(HealthServer.class);

    static final String PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8";
    static final String OPENMETRICS_TEXT =
            "application/openmetrics-text; version=1.0.0; charset=utf-8";
    static final String JSON = "application/json";
    static final String HTML = "text/html; charset=utf-8";
    static final String TEXT = "text/plain; charset=utf-8";
    private static final Set<String> PATHS =
            Set.of("/", "/status", "/metrics", "/health", "/ready");

    /** One answer; {@code allow} is the Allow header of a 405, else null. */
    record Response(int status, String contentType, byte[] body, String allow) {

        static Response of(int status, String contentType, String body) {
            return new Response(status, contentType, body.getBytes(StandardCharsets.UTF_8), null);
        }
    }

    private final PrometheusMeterRegistry registry;
    private final Supplier<Health> liveness;
    private final Supplier<Health> readiness;
    private final Supplier<List<StatusPage.Section>> status;
    // Warn once, not on every probe: orchestrators poll every few seconds.
    private final AtomicBoolean checkFailureLogged = new AtomicBoolean();
    private volatile boolean shuttingDown;

    Endpoints(
            PrometheusMeterRegistry registry,
            Supplier<Health> liveness,
            Supplier<Health> readiness,
            Supplier<List<StatusPage.Section>> status) {
        this.registry = Objects.requireNonNull(registry, "registry");
        this.liveness = Objects.requireNonNull(liveness, "liveness");
        this.readiness = Objects.requireNonNull(readiness, "readiness");
        this.status = Objects.requireNonNull(status, "status");
    }

    void beginShutdown() {
        shuttingDown = true;
    }

    /**
     * True for the answers that take real work: a scrape walks every meter and the status page
     * every pool, milliseconds to tens of ms with many pools. Those must not run on an event loop.
     */
    static boolean isSlow(String method, String path) {
        return (method.equals("GET") || method.equals("HEAD"))
                && (path.equals("/metrics") || path.equals("/") || path.equals("/status"));
    }

    /** The answer to {@code method path}; {@code accept} is the request's Accept header or null. */
    Response answer(String method, String path, String accept) {
        try {
            if (!PATHS.contains(path)) {
                return Response.of(404, TEXT, "not found: " + path + "\n");
            }
            if (!method.equals("GET") && !method.equals("HEAD")) {
                byte[] body =
                        ("method not allowed: " + method + "\n").getBytes(StandardCharsets.UTF_8);
                return new Response(405, TEXT, body, "GET, HEAD");
            }
            return switch (path) {
                case "/metrics" -> metrics(accept);
                case "/health" -> health(check(liveness));
                case "/ready" -> health(shuttingDown ? Health.shuttingDown() : check(readiness));
                default -> statusPage();
            };
        } catch (RuntimeException | Error e) {
            log.warn("health request failed", e);
            return Response.of(500, TEXT, describe(e) + "\n");
        }
    }

    private Response metrics(String accept) {
        String contentType =
                accept != null && accept.contains("application/openmetrics-text")
                        ? OPENMETRICS_TEXT
                        : PROMETHEUS_TEXT;
        try {
            return Response.of(200, contentType, registry.scrape(contentType));
        } catch (RuntimeException e) {
            logCheckFailure("metrics scrape", e);
            return Response.of(503, TEXT, "scrape failed: " + describe(e) + "\n");
        }
    }

    private static Response health(Health health) {
        return Response.of(health.isUp() ? 200 : 503, JSON, health.toJson());
    }

    private Response statusPage() {
        Health ready = shuttingDown ? Health.shuttingDown() : check(readiness);
        List<StatusPage.Section> sections;
        try {
            sections = Objects.requireNonNull(status.get(), "status supplier returned null");
        } catch (RuntimeException e) {
            logCheckFailure("status page", e);
            return Response.of(
                    503,
                    HTML,
                    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                            + "<title>pgrelay status</title></head><body><h1>status unavailable</h1><p>"
                            + StatusPage.escape(describe(e))
                            + "</p></body></html>\n");
        }
        return Response.of(200, HTML, StatusPage.render("pgrelay status", ready, sections));
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

    static String describe(Throwable e) {
        String message = e.getMessage();
        return message == null
                ? e.getClass().getName()
                : e.getClass().getSimpleName() + ": " + message;
    }
}
