package io.pgrelay.health;

import java.time.Duration;
import java.util.Objects;

/**
 * What the HTTP face grants one client, so that no client can hold it up for the others: the
 * endpoint is polled by orchestrators whose liveness probe restarts pgrelay when it times out.
 *
 * @param requestTimeout time to send a complete request (head and body) once it has begun, or after
 *     connecting; also the time a client gets to read a response
 * @param idleTimeout how long a keep-alive connection may wait for its next request
 * @param maxConnections open HTTP connections at once; further ones are closed when accepted
 * @param maxPendingRenders scrapes and status pages waiting for the render thread; more are
 *     answered 503 rather than queued
 */
public record HttpLimits(
        Duration requestTimeout, Duration idleTimeout, int maxConnections, int maxPendingRenders) {

    /**
     * Prometheus' own scrape timeout is 10 s; 60 s idle outlives the usual 15-30 s scrape interval.
     */
    public static final HttpLimits DEFAULTS =
            new HttpLimits(Duration.ofSeconds(10), Duration.ofSeconds(60), 256, 16);

    /** Longest request line (method, path, version). */
    static final int MAX_INITIAL_LINE = 4096;

    /** All request headers together. */
    static final int MAX_HEADERS = 8192;

    /**
     * Request bodies: no endpoint reads one, so a few KB only lets a client be told 405 politely.
     */
    static final int MAX_BODY = 4096;

    public HttpLimits {
        Objects.requireNonNull(requestTimeout, "requestTimeout");
        Objects.requireNonNull(idleTimeout, "idleTimeout");
        if (requestTimeout.isNegative() || requestTimeout.isZero()) {
            throw new IllegalArgumentException(
                    "requestTimeout must be positive: " + requestTimeout);
        }
        if (idleTimeout.isNegative() || idleTimeout.isZero()) {
            throw new IllegalArgumentException("idleTimeout must be positive: " + idleTimeout);
        }
        if (maxConnections < 1) {
            throw new IllegalArgumentException(
                    "maxConnections must be at least 1: " + maxConnections);
        }
        if (maxPendingRenders < 1) {
            throw new IllegalArgumentException(
                    "maxPendingRenders must be at least 1: " + maxPendingRenders);
        }
    }

    public HttpLimits withRequestTimeout(Duration timeout) {
        return new HttpLimits(timeout, idleTimeout, maxConnections, maxPendingRenders);
    }

    public HttpLimits withIdleTimeout(Duration timeout) {
        return new HttpLimits(requestTimeout, timeout, maxConnections, maxPendingRenders);
    }

    public HttpLimits withMaxConnections(int max) {
        return new HttpLimits(requestTimeout, idleTimeout, max, maxPendingRenders);
    }

    public HttpLimits withMaxPendingRenders(int max) {
        return new HttpLimits(requestTimeout, idleTimeout, maxConnections, max);
    }
}
