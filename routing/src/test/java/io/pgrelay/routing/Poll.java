package io.pgrelay.routing;

import java.time.Duration;
import java.util.function.Predicate;
import java.util.function.Supplier;

/** Bounded polling for the routing tests (proxy-core's Await is not visible here). */
final class Poll {

    private Poll() {}

    /** Polls {@code probe} every 50 ms until {@code accept} holds; fails after {@code timeout}. */
    static <T> T until(
            String what, Duration timeout, Supplier<T> probe, Predicate<? super T> accept) {
        long deadline = System.nanoTime() + timeout.toNanos();
        T last;
        while (true) {
            last = probe.get();
            if (accept.test(last)) {
                return last;
            }
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError(
                        "timed out after "
                                + timeout.toMillis()
                                + " ms waiting for "
                                + what
                                + "; last value: "
                                + last);
            }
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted while waiting for " + what, e);
            }
        }
    }
}
