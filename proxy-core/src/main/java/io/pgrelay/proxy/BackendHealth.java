package io.pgrelay.proxy;

import io.micrometer.core.instrument.Meter;
import io.pgrelay.routing.Backend;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.LongSupplier;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Whether one backend (host:port) answers, shared by every pool that connects to it (one per
 * database, user and startup parameter set), so that a dead server is tried once at a time rather
 * than once per waiting client.
 *
 * <p>Up: connects go through. The first connect that fails because the server is not there ({@link
 * ServerLoginException#isUnreachable}: refused, timed out, closed during login, 57P03) marks it
 * down, logged once at WARN. While down, one connect at a time is let through (the probe), the
 * first one asked for once the retry interval has passed; the interval starts at {@link
 * #FIRST_RETRY_NANOS} and doubles after each failed probe up to {@link #MAX_RETRY_NANOS}. Connects
 * asked for while a probe is out wait for its outcome (a refusal comes at once; silence ends at
 * server_connect_timeout, as their own attempts would) and then go on or fail with it; connects
 * asked for between probes fail at once with the last failure. Either way the waiter gets the error
 * a failed connect gives (a held write holds again, a read moves to another replica, a client of a
 * static primary gets 08006 naming the cause). Probes are made only when a connection is wanted:
 * with nobody asking, nothing is tried. The first connect that succeeds (or that the server
 * answers, even with a refusal) marks it up again, logged once at INFO with the failures in
 * between.
 *
 * <p>Failed attempts are counted ({@code pgrelay_backend_connect_failures_total}) and logged at
 * DEBUG; connects failed without an attempt are not counted.
 */
final class BackendHealth {

    private static final Logger log = LoggerFactory.getLogger(BackendHealth.class);

    /** The wait before the first probe after the backend went down. */
    static final long FIRST_RETRY_NANOS = TimeUnit.MILLISECONDS.toNanos(100);

    /** The longest wait between probes: how late at most a returning server is noticed. */
    static final long MAX_RETRY_NANOS = TimeUnit.SECONDS.toNanos(2);

    private final Backend backend;

    /** Failed connect attempts, ever (the metric). */
    final LongAdder failures = new LongAdder();

    /** Its meters (ProxyMetrics), set and cleared under ServerPools' map lock for the backend. */
    volatile List<Meter> meters = List.of();

    // ---- guarded by this ----
    /** When it went down (nanoTime), 0 while up. */
    private long downSinceNanos;

    private long failuresSinceDown;
    private long retryIntervalNanos;
    private long nextProbeNanos;
    private boolean probing;
    private ServerLoginException lastFailure;

    /** Connects asked for while a probe is out: they go on, or fail, with its outcome. */
    private List<Waiting> waiting = new ArrayList<>();

    private record Waiting(
            Supplier<CompletableFuture<ServerConnection>> attempt,
            CompletableFuture<ServerConnection> result) {}

    private final LongSupplier nanoClock;

    BackendHealth(Backend backend) {
        this(backend, System::nanoTime);
    }

    /** With a clock of its own, for tests. */
    BackendHealth(Backend backend, LongSupplier nanoClock) {
        this.backend = backend;
        this.nanoClock = nanoClock;
    }

    Backend backend() {
        return backend;
    }

    /** Whether the last connect attempt to this backend found it unreachable. */
    synchronized boolean isDown() {
        return downSinceNanos != 0;
    }

    /**
     * Runs {@code attempt} (a server login) if the backend is up or a probe is due; waits for the
     * probe out, if any; otherwise fails at once, through {@code failLater} (never inline: a pool
     * starts its next waiter's connect from the failure callback, and an inline failure would
     * recurse once per waiter).
     */
    CompletableFuture<ServerConnection> connect(
            Supplier<CompletableFuture<ServerConnection>> attempt, Executor failLater) {
        boolean probe;
        ServerLoginException refuse = null;
        synchronized (this) {
            probe = downSinceNanos != 0;
            if (probe) {
                if (probing) {
                    // Its answer is near (a refusal is immediate; silence ends at
                    // server_connect_timeout, as this connect's own would).
                    CompletableFuture<ServerConnection> later = new CompletableFuture<>();
                    waiting.add(new Waiting(attempt, later));
                    return later;
                } else if (nanoClock.getAsLong() - nextProbeNanos < 0) {
                    refuse = lastFailure;
                } else {
                    probing = true;
                }
            }
        }
        if (refuse != null) {
            CompletableFuture<ServerConnection> failed = new CompletableFuture<>();
            ServerLoginException e = refuse;
            failLater.execute(() -> failed.completeExceptionally(e));
            return failed;
        }
        return start(attempt, probe);
    }

    private CompletableFuture<ServerConnection> start(
            Supplier<CompletableFuture<ServerConnection>> attempt, boolean probe) {
        CompletableFuture<ServerConnection> result;
        try {
            result = attempt.get();
        } catch (RuntimeException e) {
            result = CompletableFuture.failedFuture(e);
        }
        result.whenComplete((conn, error) -> outcome(probe, error));
        return result;
    }

    /** The probe is answered: the connects that waited for it go on (up) or fail with it. */
    private void release(List<Waiting> released, ServerLoginException failure) {
        for (Waiting w : released) {
            if (failure != null) {
                w.result().completeExceptionally(failure);
                continue;
            }
            start(w.attempt(), false)
                    .whenComplete(
                            (conn, error) -> {
                                if (error != null) {
                                    w.result().completeExceptionally(error);
                                } else if (!w.result().complete(conn)) {
                                    conn.close("its connect was abandoned");
                                }
                            });
        }
    }

    private List<Waiting> takeWaiting() {
        if (waiting.isEmpty()) {
            return List.of();
        }
        List<Waiting> taken = waiting;
        waiting = new ArrayList<>();
        return taken;
    }

    private void outcome(boolean probe, Throwable error) {
        Throwable cause =
                error instanceof CompletionException && error.getCause() != null
                        ? error.getCause()
                        : error;
        long now = nanoClock.getAsLong();
        if (!(cause instanceof ServerLoginException e) || !e.isUnreachable()) {
            // Logged in, or the server answered (a refusal is about the database or user): up.
            long failed;
            long downFor;
            List<Waiting> released = List.of();
            synchronized (this) {
                if (probe) {
                    probing = false;
                    released = takeWaiting();
                }
                if (downSinceNanos == 0) {
                    release(released, null);
                    return;
                }
                failed = failuresSinceDown;
                downFor = now - downSinceNanos;
                downSinceNanos = 0;
                failuresSinceDown = 0;
                lastFailure = null;
            }
            log.info(
                    "backend {} is back after {} failed connect attempt{} over {} s",
                    backend,
                    failed,
                    failed == 1 ? "" : "s",
                    String.format("%.1f", downFor / 1e9));
            release(released, null);
            return;
        }
        failures.increment();
        boolean wentDown;
        long interval;
        List<Waiting> released = List.of();
        synchronized (this) {
            if (probe) {
                probing = false;
                released = takeWaiting();
            }
            lastFailure = e;
            failuresSinceDown++;
            wentDown = downSinceNanos == 0;
            if (wentDown) {
                downSinceNanos = now;
                retryIntervalNanos = FIRST_RETRY_NANOS;
                nextProbeNanos = now + retryIntervalNanos;
            } else if (probe) {
                retryIntervalNanos = Math.min(retryIntervalNanos * 2, MAX_RETRY_NANOS);
                nextProbeNanos = now + retryIntervalNanos;
            }
            interval = retryIntervalNanos;
        }
        if (wentDown) {
            log.warn(
                    "backend {} is down: {}; connecting to it once at a time, every {} ms growing"
                            + " to {} s, until it answers (connects in between fail with this"
                            + " error)",
                    backend,
                    e.getMessage(),
                    TimeUnit.NANOSECONDS.toMillis(FIRST_RETRY_NANOS),
                    TimeUnit.NANOSECONDS.toSeconds(MAX_RETRY_NANOS));
        } else {
            log.debug(
                    "backend {}: connect attempt failed ({}), next in {} ms: {}",
                    backend,
                    probe ? "probe" : "started before it went down",
                    TimeUnit.NANOSECONDS.toMillis(interval),
                    e.getMessage());
        }
        release(released, e);
    }

    @Override
    public String toString() {
        return "BackendHealth[" + backend + "]";
    }
}
