package io.pgrelay.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.pgrelay.protocol.ErrorResponse;
import io.pgrelay.routing.Backend;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** The backoff's state machine, with connect attempts the test completes and a clock it moves. */
class BackendHealthTest {

    private final AtomicLong clock = new AtomicLong(TimeUnit.SECONDS.toNanos(1000));
    private final BackendHealth health =
            new BackendHealth(new Backend("10.0.0.1", 5432), clock::get);

    /** Attempts started, in order; the test completes them. */
    private final List<CompletableFuture<ServerConnection>> attempts = new ArrayList<>();

    /** Failures handed to the "later" executor (run at once here). */
    private final List<Runnable> later = new ArrayList<>();

    private CompletableFuture<ServerConnection> connect() {
        return health.connect(
                () -> {
                    CompletableFuture<ServerConnection> f = new CompletableFuture<>();
                    attempts.add(f);
                    return f;
                },
                later::add);
    }

    private static final ServerLoginException REFUSED =
            ServerLoginException.unreachable("could not connect to server 10.0.0.1:5432: refused");

    private void advanceMillis(long ms) {
        clock.addAndGet(TimeUnit.MILLISECONDS.toNanos(ms));
    }

    private static Throwable failure(CompletableFuture<ServerConnection> f) {
        assertTrue(f.isCompletedExceptionally(), "failed");
        try {
            f.get();
            throw new AssertionError("not failed");
        } catch (ExecutionException e) {
            return e.getCause();
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void upConnectsGoThroughAndTheFirstUnreachableFailureMarksItDown() {
        CompletableFuture<ServerConnection> a = connect();
        CompletableFuture<ServerConnection> b = connect();
        assertEquals(2, attempts.size(), "both attempted while up");
        attempts.get(0).completeExceptionally(REFUSED);
        assertTrue(health.isDown());
        assertSame(REFUSED, failure(a));
        // b was in flight before: it still runs, and its failure counts.
        attempts.get(1).completeExceptionally(REFUSED);
        assertSame(REFUSED, failure(b));
        assertEquals(2, health.failures.sum());
    }

    @Test
    void whileDownOneProbePerGrowingIntervalAndTheRestFailWithTheLastError() {
        connect();
        attempts.get(0).completeExceptionally(REFUSED);
        // Before the first interval (100 ms): no attempt, the last error, never inline.
        CompletableFuture<ServerConnection> early = connect();
        assertEquals(1, attempts.size());
        assertFalse(early.isDone(), "failed through the executor, not inline");
        later.forEach(Runnable::run);
        assertSame(REFUSED, failure(early));

        long[] intervals = {100, 200, 400, 800, 1600, 2000, 2000};
        for (long interval : intervals) {
            int before = attempts.size();
            advanceMillis(interval - 1);
            connect();
            assertEquals(before, attempts.size(), "no attempt before " + interval + " ms");
            advanceMillis(1);
            connect(); // due: this one is the probe
            assertEquals(before + 1, attempts.size(), "one probe after " + interval + " ms");
            // While it is out, others wait for it rather than try.
            CompletableFuture<ServerConnection> waiting = connect();
            assertEquals(before + 1, attempts.size());
            assertFalse(waiting.isDone());
            ServerLoginException timedOut =
                    ServerLoginException.unreachable("login to server 10.0.0.1:5432 timed out");
            attempts.get(attempts.size() - 1).completeExceptionally(timedOut);
            assertSame(timedOut, failure(waiting), "the waiting connect fails with the probe");
        }
        assertEquals(1 + intervals.length, health.failures.sum(), "only attempts count");
        assertTrue(health.isDown());
    }

    @Test
    void aProbeThatGetsThroughBringsItBackAndStartsTheConnectsThatWaited() throws Exception {
        connect();
        attempts.get(0).completeExceptionally(REFUSED);
        advanceMillis(100);
        connect(); // the probe
        CompletableFuture<ServerConnection> w1 = connect();
        CompletableFuture<ServerConnection> w2 = connect();
        assertEquals(2, attempts.size());
        attempts.get(1).complete(null);
        assertFalse(health.isDown());
        assertEquals(4, attempts.size(), "the two that waited are attempted now");
        attempts.get(2).complete(null);
        attempts.get(3).complete(null);
        assertTrue(w1.isDone() && !w1.isCompletedExceptionally());
        assertTrue(w2.isDone() && !w2.isCompletedExceptionally());
        // Up again: connects go straight through.
        connect();
        connect();
        assertEquals(6, attempts.size());
        assertEquals(1, health.failures.sum());
    }

    @Test
    void aServerThatAnswersIsUpEvenWhenItRefusesTheLogin() {
        connect();
        attempts.get(0).completeExceptionally(REFUSED);
        advanceMillis(100);
        connect();
        attempts.get(1)
                .completeExceptionally(
                        new ServerLoginException(
                                ErrorResponse.fatal("28P01", "password authentication failed")));
        assertFalse(health.isDown(), "the server answered");
        assertEquals(1, health.failures.sum());
        // 57P03 (starting up, shutting down) counts as not there.
        connect();
        attempts.get(2)
                .completeExceptionally(
                        new ServerLoginException(
                                ErrorResponse.fatal(
                                        "57P03", "the database system is starting up")));
        assertTrue(health.isDown());
    }
}
