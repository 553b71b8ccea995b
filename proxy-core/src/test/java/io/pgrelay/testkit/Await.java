package io.pgrelay.testkit;

import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.function.Predicate;

/** Bounded polling for tests: no unbounded waits. */
public final class Await {

    private static final long POLL_MILLIS = 100;

    private Await() {}

    /**
     * Polls {@code probe} until its value satisfies {@code accept} or {@code timeout} passes.
     * Exceptions thrown by the probe count as "not yet" (the last one is attached on timeout).
     *
     * @return the first accepted value
     * @throws AssertionError on timeout, naming {@code what} and the last value/exception seen
     */
    public static <T> T until(
            String what, Duration timeout, Callable<T> probe, Predicate<? super T> accept) {
        long deadline = System.nanoTime() + timeout.toNanos();
        T last = null;
        Exception lastError = null;
        while (true) {
            try {
                last = probe.call();
                lastError = null;
                if (accept.test(last)) {
                    return last;
                }
            } catch (Exception e) {
                lastError = e;
            }
            if (System.nanoTime() - deadline > 0) {
                AssertionError failure =
                        new AssertionError(
                                "timed out after "
                                        + timeout.toMillis()
                                        + " ms waiting for "
                                        + what
                                        + "; last value: "
                                        + last
                                        + (lastError != null ? "; last error: " + lastError : ""));
                if (lastError != null) {
                    failure.initCause(lastError);
                }
                throw failure;
            }
            try {
                Thread.sleep(POLL_MILLIS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted while waiting for " + what, e);
            }
        }
    }

    /** Polls a boolean condition until true or {@code timeout}; exceptions count as false. */
    public static void until(String what, Duration timeout, Callable<Boolean> condition) {
        until(what, timeout, condition, Boolean.TRUE::equals);
    }
}
