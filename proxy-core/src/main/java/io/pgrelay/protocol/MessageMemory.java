package io.pgrelay.protocol;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Memory for large messages being received, shared by every connection of the process.
 *
 * <p>pgrelay receives a message whole before it relays it. A few concurrent messages near
 * max_message_size would otherwise exhaust direct memory, and Netty would then fail whichever read
 * came next, with a reset and no error. Instead each large message reserves its size here when its
 * header arrives, and a message that does not fit fails its own connection with SQLSTATE 53200 (out
 * of memory) before any of its body is buffered.
 */
public final class MessageMemory {

    /** Messages up to this size are not accounted: they cost less than the accounting matters. */
    public static final int LARGE_MESSAGE = 64 * 1024;

    private final long max;
    private final AtomicLong used = new AtomicLong();

    public MessageMemory(long max) {
        this.max = max;
    }

    /** Reserves {@code bytes}, or returns false (reserving nothing) when they do not fit. */
    public boolean tryReserve(long bytes) {
        long now;
        do {
            now = used.get();
            if (now + bytes > max) {
                return false;
            }
        } while (!used.compareAndSet(now, now + bytes));
        return true;
    }

    public void release(long bytes) {
        used.addAndGet(-bytes);
    }

    public long used() {
        return used.get();
    }

    public long max() {
        return max;
    }
}
