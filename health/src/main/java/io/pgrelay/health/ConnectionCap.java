package io.pgrelay.health;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * At most {@code max} HTTP connections open at once, so that a flood of connections costs pgrelay a
 * bounded amount of memory and file descriptors. A refused connection is warned about at most once
 * a minute, with the count since the last warning: a flood must not flood the log. Thread-safe:
 * connections arrive on whichever event loop they are given.
 */
final class ConnectionCap {

    private static final Logger log = LoggerFactory.getLogger(HealthServer.class);
    private static final long WARNING_INTERVAL_NANOS = TimeUnit.MINUTES.toNanos(1);

    private final int max;
    private final AtomicInteger open = new AtomicInteger();
    private final AtomicInteger refusedSinceWarning = new AtomicInteger();
    private final AtomicLong nextWarningNanos = new AtomicLong(System.nanoTime());

    ConnectionCap(int max) {
        this.max = max;
    }

    /** Takes a slot for a new connection; false when all are taken (nothing to release then). */
    boolean tryOpen() {
        if (open.incrementAndGet() <= max) {
            return true;
        }
        open.decrementAndGet();
        refused();
        return false;
    }

    void closed() {
        open.decrementAndGet();
    }

    int open() {
        return open.get();
    }

    private void refused() {
        refusedSinceWarning.incrementAndGet();
        long now = System.nanoTime();
        long next = nextWarningNanos.get();
        if (now - next >= 0 && nextWarningNanos.compareAndSet(next, now + WARNING_INTERVAL_NANOS)) {
            log.warn(
                    "HTTP connection limit of {} reached: closed {} new connection(s) since the last warning "
                            + "(next warning in a minute at the earliest)",
                    max,
                    refusedSinceWarning.getAndSet(0));
        }
    }
}
