package io.pgrelay.proxy;

import io.netty.buffer.ByteBuf;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;

/**
 * Client messages waiting, in arrival order: for a server connection, for the leader probe's
 * answer, or for the login to end (a client that pipelines its first query behind the startup
 * packet). Only those waiting for a server count toward the limit: the wait for a pool can be long,
 * and a client that keeps sending meanwhile must be paused, not buffered without end.
 */
final class PendingRequests {

    /** Queued bytes beyond which a waiting client's reads are paused. */
    private static final long MAX_BYTES = 1 << 20;

    private final ArrayDeque<ByteBuf> frames = new ArrayDeque<>(4);

    /** Bytes of the frames queued for a server since the queue was last empty. */
    private long bytes;

    /** Queues a frame that waits moments (the probe, the login): not counted. */
    void hold(ByteBuf frame) {
        frames.add(frame);
    }

    /** Queues a frame that waits for a server; true when the client should now be paused. */
    boolean queue(ByteBuf frame) {
        frames.add(frame);
        bytes += frame.readableBytes();
        return bytes > MAX_BYTES;
    }

    boolean isEmpty() {
        return frames.isEmpty();
    }

    /** The oldest frame (the caller owns it), or null. */
    ByteBuf poll() {
        ByteBuf frame = frames.poll();
        if (frames.isEmpty()) {
            bytes = 0;
        }
        return frame;
    }

    /** Everything queued, oldest first (the caller owns the frames); the queue is empty after. */
    List<ByteBuf> takeAll() {
        List<ByteBuf> all = new ArrayList<>(frames);
        frames.clear();
        bytes = 0;
        return all;
    }

    void releaseAll() {
        ByteBuf frame;
        while ((frame = frames.poll()) != null) {
            frame.release();
        }
        bytes = 0;
    }
}
